"""LangGraph's long-term memory store on a memvault vault: :class:`MemvaultStore`.

A LangGraph agent (or LangMem's memory tools) that writes to a ``BaseStore`` writes
memvault memories: versioned, searchable with memvault's hybrid search, screened by the
injection guard, visible to the REST server, the proxy and ``Vault.chat``.

How LangGraph's model maps onto memvault's (stable: the ids and metadata below are a
storage format, ``lg_v`` is its version):

* **(namespace, key) -> one memory** with a deterministic id
  ``lg-<sha256(store scope, namespace, key)[:40]>``, so ``get`` is one lookup by id.
* **namespace -> scope + metadata.** The store is bound to a memvault scope (the
  ``user_id``/``agent_id``/``session_id``/``cube_id`` given to the constructor; a
  ``ScopedVault`` pins its principal's). ``namespace_scope={"user_id": 1}`` makes the
  label at position 1 of each namespace the memory's ``user_id`` (so
  ``("memories", "alice")`` is Alice's memory for every memvault face, too). The whole
  namespace is also kept as ``metadata.lg_ns = {"0": label0, "1": label1, ...}`` with
  ``metadata.lg_depth``: a namespace prefix is an equality filter on dotted paths.
* **key -> metadata.lg_key; value -> metadata.lg_value**, exactly as put (a JSON
  object, bounded by ``Limits.max_metadata_bytes``, 16 KiB by default). The memory's
  *text* is what search and the guard read: the string leaves of the value, or the
  fields named by ``fields=`` / ``put(index=[...])`` (``index=False``: the key).
* **put -> add, or update (a new version)**: ``history`` and ``as_of`` work on
  LangGraph memories; a put of an unchanged value writes nothing. **delete -> a
  tombstone** (restorable, kept in history). **TTL -> expires_at** (+ ``metadata.lg_ttl``
  in minutes); expired items are never returned; reads re-arm the expiry at most once a
  minute (each re-arm is a version), and :meth:`MemvaultStore.sweep_ttl` (or the
  scheduler's forget pass) retires them.
* **search(query=...)** is memvault's hybrid search (dense + BM25); **filter** matches
  values as LangGraph's ``InMemoryStore`` does (equality, nested objects, ``$eq``,
  ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``); string equalities are also pushed down
  to the store as metadata filters. Without a query, results are newest first.

A value the injection guard flags is stored quarantined (memvault never drops a write)
and is not returned until someone releases it (``memvault quarantine``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from langgraph.store.base import (BaseStore, GetOp, InvalidNamespaceError, Item,
                                  ListNamespacesOp, MatchCondition, Op, PutOp, Result,
                                  SearchItem, SearchOp, TTLConfig, get_text_at_path,
                                  validate_op_namespace)

from ..api import VaultAPI
from ..errors import Conflict, InvalidInput, NotFound
from ..types import MemoryItem

__all__ = ["MemvaultStore", "FORMAT"]

log = logging.getLogger("memvault.integrations.langgraph")

#: Version of the metadata layout above (``metadata.lg_v``).
FORMAT = 1
MAX_DEPTH = 16
MAX_LABEL_CHARS = 256
MAX_KEY_CHARS = 1024
MAX_TEXT_BYTES = 60_000  # the derived search text; the value itself is never cut
_SCOPE_FIELDS = ("user_id", "agent_id", "session_id", "cube_id")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PAGE = 500
_MAX_K = 1000
# memvault's update cannot unset a field: an expiry far beyond any TTL stands for "none"
_NO_EXPIRY = datetime(2199, 1, 1, tzinfo=timezone.utc)
_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


class MemvaultStore(BaseStore):
    """A LangGraph ``BaseStore`` whose items are memories of ``vault`` (any
    :class:`~memvault.VaultAPI`: a ``Vault``, a principal's ``ScopedVault``, a
    ``RemoteVault``). The caller owns the vault. See the module docstring for the mapping.

    ``kind`` is the memvault kind of the memories (default ``note``); ``fields`` the value
    paths whose text is indexed (LangGraph's path syntax; ``["$"]``: every string).
    """

    supports_ttl = True

    def __init__(self, vault: VaultAPI, *, user_id: str | None = None,
                 agent_id: str | None = None, session_id: str | None = None,
                 cube_id: str | None = None, namespace_scope: Mapping[str, int] | None = None,
                 kind: str = "note", fields: Sequence[str] = ("$",),
                 ttl: TTLConfig | None = None) -> None:
        self.vault = vault
        given = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id,
                 "cube_id": cube_id}
        self._scope = {k: v for k, v in given.items() if v is not None}
        self._ns_scope: dict[str, int] = {}
        for field, pos in (namespace_scope or {}).items():
            if field not in _SCOPE_FIELDS:
                raise InvalidInput(f"namespace_scope maps onto {_SCOPE_FIELDS}, not {field!r}",
                                   field="namespace_scope")
            if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < MAX_DEPTH:
                raise InvalidInput(f"namespace_scope[{field!r}] must be a label position "
                                   f"0..{MAX_DEPTH - 1}", field="namespace_scope")
            if field in self._scope:
                raise InvalidInput(f"{field} is both fixed and taken from the namespace",
                                   field="namespace_scope")
            self._ns_scope[field] = pos
        if isinstance(fields, str) or not fields:
            raise InvalidInput("fields must be a non-empty list of paths", field="fields")
        self.kind, self.fields = kind, list(fields)
        self.ttl_config = TTLConfig(refresh_on_read=True, **(ttl or {}))

    # -- LangGraph's two required methods -------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Reads see the store as it was before the batch; puts run last, one per
        (namespace, key), the last one winning: the semantics of LangGraph's own stores."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
        results: list[Result] = [None] * len(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = self._get(op.namespace, op.key, refresh=op.refresh_ttl)
            elif isinstance(op, SearchOp):
                results[i] = self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op)
            elif isinstance(op, PutOp):
                _check_namespace(op.namespace, put=True)
                puts[(op.namespace, _check_key(op.key))] = op
            else:
                raise InvalidInput(f"unknown store operation {type(op).__name__}")
        for op in puts.values():
            self._put(op)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` on a worker thread: vault calls block, the event loop must not."""
        return await asyncio.to_thread(self.batch, list(ops))

    # -- what LangGraph's interface cannot say --------------------------------------------
    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None,
            as_of: Any = None) -> Item | None:
        """The item, or with ``as_of`` (a time) the value it had then."""
        if as_of is None:
            return super().get(namespace, key, refresh_ttl=refresh_ttl)
        _check_namespace(namespace)
        try:
            mem = self.vault.get(self._id(namespace, _check_key(key)), as_of=as_of)
        except NotFound:
            return None
        return self._item(mem, namespace, key, check_expiry=False)

    def history(self, namespace: tuple[str, ...], key: str) -> list[Item]:
        """Every value this key has had, oldest first (deleted stretches left out)."""
        _check_namespace(namespace)
        try:
            versions = self.vault.history(self._id(namespace, _check_key(key)))
        except NotFound:
            return []
        items = (self._item(m, namespace, key, check_expiry=False) for m in versions)
        return [i for i in items if i is not None]

    def sweep_ttl(self) -> int:
        """Tombstone every expired item of this store; returns how many."""
        now = datetime.now(timezone.utc)
        expired = [m.id for m in self._scan({}, {}) if m.expires_at is not None
                   and m.expires_at <= now]
        for id in expired:
            self._delete(id)
        return len(expired)

    # -- mapping ----------------------------------------------------------------------------
    def _id(self, namespace: tuple[str, ...], key: str) -> str:
        doc = json.dumps([self._scope, list(namespace), key], ensure_ascii=False,
                         sort_keys=True)
        digest = "lg-" + hashlib.sha256(doc.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return self._prefix(self._scope_of(namespace)) + digest

    def _prefix(self, scope: Mapping[str, str]) -> str:
        """The id namespace of the memory's owner: a principal's face (ScopedVault,
        RemoteVault) accepts chosen ids only under ``<user>:[<agent>:]`` (see
        :mod:`memvault.governance.namespace`); the operator's Vault takes any."""
        from ..governance.namespace import id_prefix

        owner = getattr(self, "_owner", None)
        if owner is None:
            principal = getattr(self.vault, "principal", None)
            whoami = getattr(self.vault, "whoami", None)
            if principal is not None:
                owner = (principal.user_id, principal.agent_id)
            elif callable(whoami):
                me = whoami()
                owner = (me.get("user_id"), me.get("agent_id"))
            else:
                owner = (None, None)
            self._owner = owner
        user = owner[0] or scope.get("user_id")
        agent = owner[1] or (scope.get("agent_id") if owner[0] is None else None)
        return id_prefix(user, agent) if user else ""

    def _scope_of(self, labels: Sequence[str]) -> dict[str, str]:
        scope = dict(self._scope)
        for field, pos in self._ns_scope.items():
            if pos < len(labels) and labels[pos] != "*":
                scope[field] = labels[pos]
        return scope

    def _item(self, mem: MemoryItem, namespace: tuple[str, ...] | None = None,
              key: str | None = None, *, score: float | None = None, search: bool = False,
              check_expiry: bool = True) -> Item | None:
        """The LangGraph item a memory stands for, or None when it stands for nothing
        right now (not ours, deleted, quarantined, expired)."""
        meta = mem.metadata
        if meta.get("lg_v") != FORMAT or meta.get("lg_del") or mem.status != "active":
            return None
        if check_expiry and mem.expires_at is not None and \
                mem.expires_at <= datetime.now(timezone.utc):
            return None
        try:
            ns = tuple(meta["lg_ns"][str(i)] for i in range(meta["lg_depth"]))
            found_key, value = meta["lg_key"], meta["lg_value"]
        except (KeyError, TypeError):
            return None  # a memory someone else wrote with our prefix
        if (namespace is not None and ns != tuple(namespace)) or \
                (key is not None and found_key != key):
            return None
        created, updated = mem.created_at or mem.valid_from, mem.valid_from or mem.created_at
        if search:
            return SearchItem(namespace=ns, key=found_key, value=value, created_at=created,
                              updated_at=updated, score=score)
        return Item(value=value, key=found_key, namespace=ns, created_at=created,
                    updated_at=updated)

    def _text(self, key: str, value: Mapping[str, Any], index: Any) -> str:
        parts: list[str] = []
        if index is not False:
            for path in (self.fields if index is None else list(index)):
                parts += _leaves(value) if path == "$" else get_text_at_path(value, path)
        text = "\n".join(p for p in parts if p.strip()) or key
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > MAX_TEXT_BYTES:
            text = data[:MAX_TEXT_BYTES].decode("utf-8", "ignore")
        return text

    # -- reads ------------------------------------------------------------------------------
    def _get(self, namespace: tuple[str, ...], key: str, *, refresh: bool) -> Item | None:
        _check_namespace(namespace)
        key = _check_key(key)
        try:
            mem = self.vault.get(self._id(namespace, key))
        except NotFound:
            return None
        item = self._item(mem, namespace, key)
        if item is not None and refresh:
            self._refresh([mem])
        return item

    def _filters(self, prefix: Sequence[str], value_filter: Mapping[str, Any] | None
                 ) -> dict[str, Any]:
        meta: dict[str, Any] = {"lg_v": FORMAT, "lg_del": None}
        for i, label in enumerate(prefix):
            if label != "*":
                meta[f"lg_ns.{i}"] = label
        for name, cond in (value_filter or {}).items():
            _push_down(("lg_value", name), cond, meta)
        return {"metadata": meta}

    def _scan(self, prefix: Sequence[str], value_filter: Mapping[str, Any] | None
              ) -> Iterator[MemoryItem]:
        """Every live memory of this store under ``prefix`` (pushed-down filters only)."""
        filters, scope = self._filters(prefix, value_filter), self._scope_of(prefix)
        offset = 0
        while True:
            page = self.vault.list(filters=filters, limit=_PAGE, offset=offset,
                                   order="created_desc", **scope)
            yield from page.items
            if page.next_offset is None or not page.items:
                return
            offset = page.next_offset

    def _search(self, op: SearchOp) -> list[SearchItem]:
        _check_namespace(op.namespace_prefix)
        if op.filter is not None and not isinstance(op.filter, Mapping):
            raise InvalidInput("filter must be an object", field="filter")
        _check_filter(op.filter or {})
        limit, offset = _bounded(op.limit, "limit"), _bounded(op.offset, "offset")
        prefix, want = tuple(op.namespace_prefix), offset + limit

        def keep(mem: MemoryItem, score: float | None = None) -> SearchItem | None:
            item = self._item(mem, score=score, search=True)
            if item is None or item.namespace[:len(prefix)] != prefix:
                return None
            return item if _matches(item.value, op.filter) else None  # type: ignore[return-value]

        found: list[tuple[MemoryItem, SearchItem]] = []
        if op.query:
            k = min(max(want * 2, 10), _MAX_K)
            while True:
                hits = self.vault.search(op.query, filters=self._filters(prefix, op.filter),
                                         k=k, **self._scope_of(prefix))
                found = [(h.item, item) for h in hits
                         if (item := keep(h.item, h.score)) is not None]
                if len(found) >= want or len(hits) < k or k >= _MAX_K:
                    break
                k = min(k * 4, _MAX_K)
        else:
            for mem in self._scan(prefix, op.filter):
                item = keep(mem)
                if item is not None:
                    found.append((mem, item))
                    if len(found) >= want:
                        break
        chosen = found[offset:want]
        if op.refresh_ttl:
            self._refresh([mem for mem, _ in chosen])
        return [item for _, item in chosen]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        limit, offset = _bounded(op.limit, "limit"), _bounded(op.offset, "offset")
        if op.max_depth is not None:
            _bounded(op.max_depth, "max_depth")
        conditions = list(op.match_conditions or ())
        prefix: tuple[str, ...] = ()
        for cond in conditions:
            if cond.match_type == "prefix":
                prefix = tuple(cond.path)
        seen: set[tuple[str, ...]] = set()
        for mem in self._scan(prefix, None):
            item = self._item(mem)
            if item is not None and all(_ns_matches(c, item.namespace) for c in conditions):
                seen.add(item.namespace)
        if op.max_depth is not None:
            seen = {ns[:op.max_depth] for ns in seen}
        return sorted(seen)[offset:offset + limit]

    def _refresh(self, mems: Sequence[MemoryItem]) -> None:
        """Re-arm the TTL of items just read, unless it was re-armed under a minute (or a
        tenth of the TTL) ago: a refresh is a version, reads should not each write one."""
        now = datetime.now(timezone.utc)
        for mem in mems:
            minutes = mem.metadata.get("lg_ttl")
            if not isinstance(minutes, (int, float)) or isinstance(minutes, bool):
                continue
            target = now + timedelta(minutes=minutes)
            grace = timedelta(seconds=min(60.0, minutes * 6.0))
            if mem.expires_at is None or mem.expires_at < target - grace:
                try:
                    self.vault.update(mem.id, expires_at=target, reason="langgraph ttl refresh")
                except (Conflict, NotFound):
                    pass  # written or removed meanwhile: that write decides the expiry

    # -- writes -----------------------------------------------------------------------------
    def _put(self, op: PutOp) -> None:
        namespace, key = tuple(op.namespace), op.key
        id = self._id(namespace, key)
        if op.value is None:
            self._delete(id)
            return
        if not isinstance(op.value, Mapping):
            raise InvalidInput(f"a store value must be a JSON object, not "
                               f"{type(op.value).__name__}", field="value")
        value = dict(op.value)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"the value of {namespace}/{key!r} is not JSON: {exc}",
                               field="value") from None
        meta: dict[str, Any] = {"lg_v": FORMAT, "lg_depth": len(namespace),
                                "lg_ns": {str(i): label for i, label in enumerate(namespace)},
                                "lg_key": key, "lg_value": value}
        expires: datetime | None = None
        if op.ttl is not None:
            if isinstance(op.ttl, bool) or not isinstance(op.ttl, (int, float)) or \
                    not 0 < op.ttl <= 100 * 365 * 24 * 60:
                raise InvalidInput("ttl must be a positive number of minutes (at most a "
                                   "century)", field="ttl")
            meta["lg_ttl"] = op.ttl
            expires = datetime.now(timezone.utc) + timedelta(minutes=op.ttl)
        text = self._text(key, value, op.index)
        for _ in range(5):  # another writer may get in between: last write wins
            try:
                self._write(id, namespace, text, meta, expires)
                return
            except Conflict:
                continue
        raise Conflict(f"{namespace}/{key!r} kept changing under this put; retry it", id=id)

    def _write(self, id: str, namespace: tuple[str, ...], text: str, meta: dict[str, Any],
               expires: datetime | None) -> None:
        try:
            current = self.vault.get(id)
        except NotFound:
            current = None
        try:
            if current is None:
                mem = self.vault.add(text, id=id, kind=self.kind, metadata=meta,
                                     expires_at=expires, provenance={"source": "langgraph"},
                                     **self._scope_of(namespace))
            else:
                if current.status in ("deleted", "archived"):
                    # the tombstone carries lg_del, so until the update below lands the
                    # restored version still reads as deleted (a crash here loses nothing)
                    self.vault.restore(id)
                if expires is None and current.expires_at is not None:
                    expires = _NO_EXPIRY
                mem = self.vault.update(id, text, kind=self.kind, metadata=meta,
                                        expires_at=expires, reason="langgraph put")
        except InvalidInput as exc:
            if exc.details.get("field") == "metadata":
                raise InvalidInput(f"the value of {namespace}/{meta['lg_key']!r} cannot be "
                                   f"stored: {exc.message}", field="value") from exc
            raise
        if mem.status == "quarantined":
            log.warning("memvault's injection guard quarantined %s/%r (memory %s); it is "
                        "not returned until released", namespace, meta["lg_key"], id)

    def _delete(self, id: str) -> None:
        try:
            current = self.vault.get(id)
        except NotFound:
            return
        if current.status == "deleted":
            return
        if not current.metadata.get("lg_del"):  # see _write: a restore must not resurrect
            self.vault.update(id, metadata={**current.metadata, "lg_del": True},
                              reason="langgraph delete")
        self.vault.delete(id, reason="langgraph delete")


# -- helpers --------------------------------------------------------------------------------
def _check_namespace(namespace: Any, *, put: bool = False) -> None:
    if not isinstance(namespace, tuple):
        raise InvalidNamespaceError(f"a namespace is a tuple of strings, not {namespace!r}")
    if put and not namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    if len(namespace) > MAX_DEPTH:
        raise InvalidInput(f"namespaces are at most {MAX_DEPTH} labels deep", field="namespace")
    for label in namespace:
        if isinstance(label, str) and len(label) > MAX_LABEL_CHARS:
            raise InvalidInput(f"namespace labels are at most {MAX_LABEL_CHARS} characters",
                               field="namespace")


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or "\x00" in key or len(key) > MAX_KEY_CHARS:
        raise InvalidInput(f"a key is a non-empty string of at most {MAX_KEY_CHARS} "
                           "characters without NUL", field="key")
    return key


def _bounded(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31:
        raise InvalidInput(f"{name} must be a non-negative integer", field=name)
    return value


def _leaves(value: Any, depth: int = 0) -> list[str]:
    """Every string in a JSON value, in order (keys left out: they are structure)."""
    if depth > 64:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _leaves(v, depth + 1)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _leaves(v, depth + 1)]
    return []


def _push_down(path: tuple[str, ...], cond: Any, out: dict[str, Any]) -> None:
    """Add the string equalities of a value filter as metadata filters (a superset of
    the Python check, which still runs)."""
    if len(path) > 8 or not all(_SEGMENT.match(p) for p in path):
        return
    if isinstance(cond, str):
        out[".".join(path)] = cond
    elif isinstance(cond, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in cond):
            if isinstance(cond.get("$eq"), str):
                out[".".join(path)] = cond["$eq"]
        else:
            for name, sub in cond.items():
                if isinstance(name, str):
                    _push_down(path + (name,), sub, out)


def _check_filter(cond: Any, depth: int = 0) -> None:
    """Unknown operators are refused before anything is read (bounded depth)."""
    if depth > 32:
        raise InvalidInput("the filter is nested too deeply", field="filter")
    if isinstance(cond, Mapping):
        for name, sub in cond.items():
            if isinstance(name, str) and name.startswith("$") and name not in _OPS:
                raise InvalidInput(f"unsupported filter operator {name!r}; known: "
                                   f"{', '.join(_OPS)}", field="filter")
            _check_filter(sub, depth + 1)
    elif isinstance(cond, (list, tuple)):
        for sub in cond:
            _check_filter(sub, depth + 1)


def _matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    return not filter or all(_compare(value.get(k), v) for k, v in filter.items())


def _compare(have: Any, want: Any) -> bool:
    """LangGraph's InMemoryStore filter semantics (JSONB-like), which the parity tests pin."""
    if isinstance(want, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in want):
            return all(_operator(have, op, arg) for op, arg in want.items())
        return isinstance(have, Mapping) and all(_compare(have.get(k), v)
                                                 for k, v in want.items())
    if isinstance(want, (list, tuple)):
        return isinstance(have, (list, tuple)) and len(have) == len(want) and \
            all(_compare(h, w) for h, w in zip(have, want))
    return bool(have == want)


def _operator(have: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return bool(have == arg)
    if op == "$ne":
        return bool(have != arg)
    if op not in _OPS:
        raise InvalidInput(f"unsupported filter operator {op!r}; known: {', '.join(_OPS)}",
                           field="filter")
    try:
        a, b = float(have), float(arg)
    except (TypeError, ValueError):
        return False  # a missing or non-numeric field does not compare
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _ns_matches(cond: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(cond.path)
    if len(namespace) < len(path):
        return False
    pairs = zip(namespace, path) if cond.match_type == "prefix" else \
        zip(reversed(namespace), reversed(path))
    if cond.match_type not in ("prefix", "suffix"):
        raise InvalidInput(f"unknown match type {cond.match_type!r}", field="match_type")
    return all(p == "*" or n == p for n, p in pairs)

