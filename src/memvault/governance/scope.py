"""The vault as one principal sees it.

:class:`ScopedVault` has the :class:`~memvault.Vault` interface and forwards every call to
the vault it wraps, confined to the principal's scope:

* writes are stamped with the principal's ``user_id`` (and ``agent_id`` if the key has
  one); asking for another scope is refused with PermissionDenied;
* reads (search, list, count, export, audit) are filtered to that scope;
* calls naming a memory (get, update, delete, restore, archive, purge, history, link,
  unlink) on one outside the scope raise NotFound, exactly as if it did not exist.

With a :class:`~memvault.governance.grants.GrantStore` it also sees what was shared with
it (see :mod:`memvault.governance.acl` for the rules): get, history, list, search and
export return its own memories plus the shared ones valid at the moment of the call,
redacted as the grants say; a write grant allows update, delete, archive, restore and
link. Naming one's own ``user_id`` or ``agent_id`` in a read restricts it to one's own
memories. Shared candidates are not searched separately: the one search of the vault gets
an allow-list of ids (own + shared), and every result still passes the policy.

A filter on a field a grant hides judges that memory by the empty value the principal
sees, never by the hidden one (see :meth:`ScopedVault._allowed_ids`). A quarantined memory
is shown to its owner only. An id the principal chooses for a new memory must be in its
namespace (:mod:`.namespace`), so that ``add(id=...)`` says nothing about other scopes.

Every call acts as the principal: its name is the ``actor`` of the audit rows and of
the provenance it writes. With ``audit_reads`` each read also leaves one ``read`` event
(the ids it returned, at most :data:`READ_IDS_LOGGED` of them).

Scope fields of a memory never change after it is written (updates keep them), so a
memory checked to be in scope stays in scope for the rest of the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .. import _validate as check
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..storage.base import AuditOp
from ..types import AuditEvent, MemoryItem, Page, SearchHit, utcnow
from ..api import Record, VaultAPI
from ..vault import Vault
from .acl import Access, Policy, redacted
from .allowlist import scope_ids
from .sharing import Sharing
from .scoped_models import ModelCalls
from .grants import GrantStore
from .namespace import chosen_id
from .principals import Principal

__all__ = ["ScopedVault", "READ_IDS_LOGGED"]

#: How many of the ids a read returned its audit event lists (the count is always kept).
READ_IDS_LOGGED = 100
#: The redactable field each read filter looks at (``session_id`` is an argument).
_FILTERED_FIELDS = {"metadata": "metadata", "tags": "tags", "event_after": "event_time",
                    "event_before": "event_time"}


@contextlib.contextmanager
def _in_use() -> Iterator[None]:
    """A new memory's id already taken: said without the version the store reports
    (a chosen id is in the caller's namespace, see :mod:`.namespace`)."""
    try:
        yield
    except Conflict as exc:
        taken = exc.details.get("id")
        raise Conflict(f"memory id {taken} is already in use" if taken else
                       "an id in this request is already in use",
                       **({"id": taken} if taken else {})) from None


class ScopedVault(Sharing, ModelCalls, VaultAPI):
    """``vault`` confined to ``principal``; does not own (or close) the vault."""

    def __init__(self, vault: Vault, principal: Principal, *,
                 grants: GrantStore | None = None, audit_reads: bool = False) -> None:
        self.vault = vault
        self.principal = principal
        self.grant_store = grants
        self.audit_reads = audit_reads
        #: None: each read's event is committed as it happens. A list: the events are
        #: appended to it instead, for the caller to commit with a later write (see
        #: ``Vault.noting``): the memory proxy keeps a read out of the request's own time
        #: and records it in the transaction of the exchange it answered.
        self.held_reads: list[AuditOp] | None = None

    def __repr__(self) -> str:
        return f"ScopedVault(principal={self.principal.name!r}, scope={self.principal.scope})"

    # -- scope helpers -----------------------------------------------------------------
    def _pin(self, user_id: Any, agent_id: Any) -> dict[str, Any]:
        """The principal's scope, refusing an explicit request for another one."""
        given = check.scope({"user_id": user_id, "agent_id": agent_id})
        p = self.principal
        if "user_id" in given and given["user_id"] != p.user_id:
            raise PermissionDenied(f"this key is confined to user_id {p.user_id!r}",
                                   field="user_id")
        if p.agent_id is not None and "agent_id" in given and given["agent_id"] != p.agent_id:
            raise PermissionDenied(f"this key is confined to agent_id {p.agent_id!r}",
                                   field="agent_id")
        return {"user_id": p.user_id,
                "agent_id": p.agent_id if p.agent_id is not None else given.get("agent_id")}

    def _in_scope(self, ids: Sequence[str], *, own: bool = True) -> dict[str, MemoryItem]:
        """The current version of each of ``ids`` that is in scope (any status); with
        ``own`` false, wherever it is (for policy checks)."""
        found: dict[str, MemoryItem] = {}
        unique = list(dict.fromkeys(ids))
        step = self.vault.limits.max_page
        scope = self._pin(None, None) if own else {}
        for start in range(0, len(unique), step):
            chunk = unique[start:start + step]
            page = self.vault.list(filters={"ids": chunk}, status="any", limit=len(chunk),
                                   **scope)
            found.update((item.id, item) for item in page.items)
        return found

    def owners_of(self, ids: Sequence[str]) -> tuple[set[str], set[str]]:
        """(those of ``ids`` that are the principal's own memories, those that exist and
        are someone else's): who a derived artefact (a KV block, an adapter) belongs to."""
        anywhere = self._in_scope(ids, own=False)
        own = set(self._in_scope(list(anywhere))) if anywhere else set()
        return own, set(anywhere) - own

    def _pruned(self, policy: Policy, items: list[MemoryItem]) -> list[MemoryItem]:
        """``items`` with the links to memories the principal may not see removed (a
        shared memory may link to its owner's private ones, and a writer's link to its
        own memory shows in the owner's)."""
        targets = {link.target for item in items for link in item.links}
        if not targets:
            return items
        found = self._in_scope(sorted(targets), own=False)
        seen = {t for t, item in found.items() if policy.access(item) is not None}
        return [dataclasses.replace(i, links=tuple(k for k in i.links if k.target in seen))
                if any(k.target not in seen for k in i.links) else i for i in items]

    def _require(self, id: Any) -> MemoryItem:
        """The principal's own memory ``id`` (NotFound if it is not theirs)."""
        check.item_id(id)
        item = self._in_scope([id]).get(id)
        if item is None:
            raise NotFound(f"no memory {id}", id=id)
        return item

    def _policy(self) -> Policy:
        if self.grant_store is None:
            return Policy(self.principal, (), utcnow())
        return self.grant_store.policy(self.principal)

    def _access(self, id: Any, *, write: bool = False, policy: Policy | None = None) -> Access:
        """What the principal may do with memory ``id``: NotFound if it may not see it,
        PermissionDenied if it may see but not change it (``write``)."""
        check.item_id(id)
        policy = policy or self._policy()
        page = self.vault.list(filters={"ids": [id]}, status="any", limit=1)
        access = policy.access(page.items[0]) if page.items else None
        if access is None:
            raise NotFound(f"no memory {id}", id=id)
        if write and not access.write:
            raise PermissionDenied(f"memory {id} is shared with you read-only", id=id)
        return access

    def _shared_scope(self, user_id: Any, agent_id: Any, policy: Policy) -> bool:
        """Whether a read should include shared memories: there are some, and the caller
        did not restrict it to its own scope."""
        self._pin(user_id, agent_id)  # refuses another user's scope
        return policy.shares and user_id is None and agent_id is None

    def _visible(self, policy: Policy) -> dict[str, frozenset[str]]:
        """Every memory id the principal may see (any status), with the fields hidden
        from it: none for its own memories, for a shared one what every grant covering
        it hides. Coverage is exact: an item grant counts only while its id is still in
        its owner's scope (an id can be purged and used again elsewhere)."""
        store = self.vault.store
        own = scope_ids(store, self._pin(None, None))
        hidden: dict[str, frozenset[str]] = {}
        for g in policy.grants:
            owner = {"user_id": g.owner_user_id, "agent_id": g.owner_agent_id}
            if g.item_id is not None:
                covered: Iterable[str] = {g.item_id} & scope_ids(store, owner)
            else:
                covered = scope_ids(store, {**owner, "cube_id": g.cube_id})
            fields = frozenset(g.redact)
            for i in covered:
                if i not in own:
                    hidden[i] = hidden[i] & fields if i in hidden else fields
        return {**hidden, **{i: frozenset() for i in own}}

    def _allowed_ids(self, policy: Policy, filters: Mapping[str, Any] | None, *,
                     session_id: Any = None, status: Any = "active",
                     as_of: Any = None, known_at: Any = None) -> dict[str, Any]:
        """``filters`` with an id allow-list: the principal's own memories plus those the
        policy's grants name (any status; the read's own status filter still applies).

        A filter on a field a grant hides (``metadata``, ``tags``, ``event_after`` /
        ``event_before`` on event_time, ``session_id``) judges such a memory by what the
        principal sees, the field's empty value, never by the hidden one: otherwise
        asking for ``metadata.pin == 4711`` or bisecting ``event_after`` would read the
        hidden value back one yes/no at a time."""
        if filters is not None and not isinstance(filters, Mapping):
            raise InvalidInput("filters must be an object", field="filters")
        out = dict(filters or {})
        visible = self._visible(policy)
        ids = set(visible)
        if out.get("ids") is not None:  # the caller's own id filter narrows further
            wanted = check.row_query({}, {"ids": out["ids"]}).ids or []
            ids.intersection_update(wanted)
        read = {field for key, field in _FILTERED_FIELDS.items() if out.get(key)}
        if session_id is not None:
            read.add("session_id")
        masked = {i: visible[i] & read for i in ids if visible[i] & read}
        if masked:
            query = check.row_query({"session_id": session_id}, out, as_of=as_of,
                                    known_at=known_at, status=status)  # validates before any decision
            # only "metadata.key is missing/null" matches a hidden (empty) metadata;
            # no tag, event-time window or session matches an empty one
            empty_ok = bool(query.metadata) and all(v is None for v in query.metadata.values())
            seen_empty = {i for i, h in masked.items() if h == {"metadata"} and empty_ok}
            ids.difference_update(masked)
            if seen_empty:  # the metadata filter now applies to the others only
                ids = self._matching(sorted(ids), query.metadata, status, as_of,
                                     known_at) | seen_empty
                out.pop("metadata")
        out["ids"] = sorted(ids)
        return out

    def _matching(self, ids: Sequence[str], metadata: Mapping[str, Any], status: Any,
                  as_of: Any, known_at: Any = None) -> set[str]:
        """Those of ``ids`` whose metadata matches ``metadata`` (in the read's status and
        time), found by the store."""
        found: set[str] = set()
        step = self.vault.limits.max_page
        for start in range(0, len(ids), step):
            offset: int | None = 0
            while offset is not None:
                page = self.vault.list(filters={"ids": ids[start:start + step],
                                                "metadata": dict(metadata)},
                                       status=status, as_of=as_of, known_at=known_at,
                                       limit=step, offset=offset)
                found.update(i.id for i in page.items)
                offset = page.next_offset
        return found

    def _log_read(self, op: str, ids: Sequence[str], **details: Any) -> None:
        """One ``read`` event per read call (if read auditing is on)."""
        if not self.audit_reads:
            return
        event = AuditOp("read", None, None, self.principal.name, {
            "op": op, "n": len(ids), "ids": list(ids[:READ_IDS_LOGGED]), **details})
        if self.held_reads is not None:
            self.held_reads.append(event)
        else:
            self.vault.store.apply([event])

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Nothing to release: the wrapped vault belongs to whoever opened it."""

    def flush(self) -> None:
        self.vault.flush()

    def __enter__(self) -> "ScopedVault":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------
    def _act(self) -> Any:
        """Calls made inside act (and are audited) as the principal."""
        return self.vault.acting_as(self.principal.name)

    def add(self, text: str, *, kind: str = "note", user_id: str | None = None,
            agent_id: str | None = None, session_id: str | None = None,
            cube_id: str | None = None, metadata: Mapping[str, Any] | None = None,
            provenance: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
            event_time: Any = None, importance: float = 0.5, expires_at: Any = None,
            id: str | None = None, dedup: str = "off") -> MemoryItem:
        scope = self._pin(user_id, agent_id)
        if id is not None:
            chosen_id(id, scope["user_id"], scope["agent_id"])
        with self._act(), _in_use():
            return self.vault.add(text, kind=kind, **scope,
                                  session_id=session_id, cube_id=cube_id, metadata=metadata,
                                  provenance=provenance, tags=tags, event_time=event_time,
                                  importance=importance, expires_at=expires_at, id=id,
                                  dedup=dedup)

    def add_messages(self, messages: Sequence[Mapping[str, Any]], *,
                     user_id: str | None = None, agent_id: str | None = None,
                     session_id: str | None = None, cube_id: str | None = None,
                     metadata: Mapping[str, Any] | None = None,
                     event_time: Any = None) -> list[MemoryItem]:
        with self._act():
            return self.vault.add_messages(messages, **self._pin(user_id, agent_id),
                                           session_id=session_id, cube_id=cube_id,
                                           metadata=metadata, event_time=event_time)

    def add_many(self, records: Iterable[Record], *, batch_size: int = 256,
                 progress: Callable[[int], None] | None = None,
                 **defaults: Any) -> list[MemoryItem]:
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise InvalidInput("records must be a list of strings or objects", field="records")
        defaults.update(self._pin(defaults.get("user_id"), defaults.get("agent_id")))
        if defaults.get("agent_id") is None:
            del defaults["agent_id"]

        def stamped() -> Iterator[Record]:
            for record in records:
                if isinstance(record, Mapping) and ("user_id" in record or "agent_id" in record):
                    self._pin(record.get("user_id"), record.get("agent_id"))
                chosen = record.get("id") if isinstance(record, Mapping) else None
                chosen = chosen if chosen is not None else defaults.get("id")
                if chosen is not None:
                    agent = record.get("agent_id") if isinstance(record, Mapping) else None
                    chosen_id(chosen, self.principal.user_id,
                              agent if agent is not None else defaults.get("agent_id"))
                yield record
        with self._act(), _in_use():
            return self.vault.add_many(stamped(), batch_size=batch_size, progress=progress,
                                       **defaults)

    def update(self, id: str, text: str | None = None, *, kind: str | None = None,
               metadata: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
               event_time: Any = None, importance: float | None = None,
               expires_at: Any = None, reason: str | None = None) -> MemoryItem:
        access = self._access(id, write=True)
        with self._act():
            item = self.vault.update(id, text, kind=kind, metadata=metadata, tags=tags,
                                     event_time=event_time, importance=importance,
                                     expires_at=expires_at, reason=reason)
        return redacted(item, access.redact)

    def delete(self, id: str, *, reason: str | None = None) -> MemoryItem:
        access = self._access(id, write=True)
        with self._act():
            return redacted(self.vault.delete(id, reason=reason), access.redact)

    def restore(self, id: str) -> MemoryItem:
        access = self._access(id, write=True)
        with self._act():
            return redacted(self.vault.restore(id), access.redact)

    def archive(self, id: str, *, reason: str | None = None) -> MemoryItem:
        access = self._access(id, write=True)
        with self._act():
            return redacted(self.vault.archive(id, reason=reason), access.redact)

    def purge(self, id: str, *, reason: str | None = None) -> int:
        """Owners only: a write grant does not allow erasing the owner's history."""
        self._require(id)
        with self._act():
            return self.vault.purge(id, reason=reason)

    def link(self, src: str, dst: str, *, kind: str = "related", weight: float = 1.0) -> None:
        self._access(src, write=True), self._access(dst)
        with self._act():
            self.vault.link(src, dst, kind=kind, weight=weight)

    def unlink(self, src: str, dst: str, *, kind: str = "related") -> None:
        self._access(src, write=True), self._access(dst)
        with self._act():
            self.vault.unlink(src, dst, kind=kind)

    # -- reads -------------------------------------------------------------------------
    def get(self, id: str, *, as_of: Any = None, known_at: Any = None) -> MemoryItem:
        policy = self._policy()
        access = self._access(id, policy=policy)
        item = self.vault.get(id, as_of=as_of, known_at=known_at)
        if not access.owner and item.status == "quarantined":  # an old, held version
            raise NotFound(f"no memory {id}", id=id)
        item = redacted(item, access.redact)
        self._log_read("get", [item.id])
        return self._pruned(policy, [item])[0]

    def history(self, id: str, *, known_at: Any = None) -> list[MemoryItem]:
        policy = self._policy()
        access = self._access(id, policy=policy)
        versions = [redacted(v, access.redact)
                    for v in self.vault.history(id, known_at=known_at)
                    if access.owner or v.status != "quarantined"]
        self._log_read("history", [id], versions=len(versions))
        return self._pruned(policy, versions)

    def list(self, *, user_id: str | None = None, agent_id: str | None = None,
             session_id: str | None = None, cube_id: str | None = None,
             filters: Mapping[str, Any] | None = None, status: Any = "active",
             as_of: Any = None, limit: int = 50, offset: int = 0,
             order: str = "created_desc", known_at: Any = None) -> Page:
        policy = self._policy()
        if self._shared_scope(user_id, agent_id, policy):
            allowed = self._allowed_ids(policy, filters, session_id=session_id,
                                        status=status, as_of=as_of, known_at=known_at)
            page = self.vault.list(session_id=session_id, cube_id=cube_id, filters=allowed,
                                   status=status, as_of=as_of, limit=limit, offset=offset,
                                   order=order, known_at=known_at)
            page = dataclasses.replace(page, items=policy.views(page.items))
        else:
            page = self.vault.list(**self._pin(user_id, agent_id), session_id=session_id,
                                   cube_id=cube_id, filters=filters, status=status,
                                   as_of=as_of, limit=limit, offset=offset, order=order,
                                   known_at=known_at)
        page = dataclasses.replace(page, items=self._pruned(policy, page.items))
        self._log_read("list", [i.id for i in page.items])
        return page

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               session_id: str | None = None, cube_id: str | None = None,
               filters: Mapping[str, Any] | None = None, k: int = 10, as_of: Any = None,
               status: Any = "active", known_at: Any = None) -> list[SearchHit]:
        policy = self._policy()
        if self._shared_scope(user_id, agent_id, policy):
            allowed = self._allowed_ids(policy, filters, session_id=session_id,
                                        status=status, as_of=as_of, known_at=known_at)
            raw = self.vault.search(query, session_id=session_id, cube_id=cube_id,
                                    filters=allowed, k=k, as_of=as_of, status=status,
                                    known_at=known_at)
            hits = []
            for h in raw:
                item = policy.view(h.item)
                if item is not None:
                    hits.append(dataclasses.replace(h, item=item, rank=len(hits) + 1))
        else:
            hits = self.vault.search(query, **self._pin(user_id, agent_id),
                                     session_id=session_id, cube_id=cube_id, filters=filters,
                                     k=k, as_of=as_of, status=status, known_at=known_at)
        self._log_read("search", [h.item.id for h in hits])
        items = self._pruned(policy, [h.item for h in hits])
        return [dataclasses.replace(h, item=i) for h, i in zip(hits, items)]

    def count(self, *, user_id: str | None = None, status: Any = "active") -> int:
        """The principal's own memories (shared ones are not counted)."""
        return self.vault.list(**self._pin(user_id, None), status=status, limit=1).total

    def audit(self, *, item_id: str | None = None, action: str | None = None,
              after: int = 0, limit: int = 100) -> list[AuditEvent]:
        """Events of memories in scope, oldest first.

        Events of a purged memory go with it (its id is no longer in anyone's scope), and
        when an id is reused after a purge only the events of the current memory show.
        """
        page = self.vault.limits.max_page
        limit = check.bounded_int(limit, field="limit", low=1, high=page)
        after = check.bounded_int(after, field="after", low=0, high=2**62)
        if action is not None and not isinstance(action, str):
            raise InvalidInput("action must be a string", field="action")
        fixed = {item_id: self._require(item_id)} if item_id is not None else None
        out: list[AuditEvent] = []
        cursor = after
        while len(out) < limit:
            events = self.vault.audit(item_id=item_id, action=action, after=cursor, limit=page)
            if not events:
                break
            mine = fixed if fixed is not None else \
                self._in_scope([e.item_id for e in events if e.item_id is not None])
            for e in events:
                item = mine.get(e.item_id) if e.item_id is not None else None
                if item is not None and (item.created_at is None or e.at >= item.created_at):
                    out.append(e)
                    if len(out) == limit:
                        break
            cursor = events[-1].seq
            if len(events) < page:
                break
        return out

    def export(self, *, history: bool = False) -> Iterator[MemoryItem]:
        """Every memory in scope plus those shared with the principal (all statuses),
        oldest first; with ``history`` every version of each."""
        policy = self._policy()
        scope: dict[str, Any] = self._pin(None, None)
        filters = None
        if policy.shares:
            scope, filters = {}, self._allowed_ids(policy, None)
        self._log_read("export", [], history=history)
        step = self.vault.limits.max_page
        offset: int | None = 0
        while offset is not None:
            listing = self.vault.list(**scope, filters=filters, status="any", limit=step,
                                      offset=offset, order="created_asc")
            for item in listing.items:
                access = policy.access(item)
                if access is None:
                    continue
                if not history:
                    yield self._pruned(policy, [redacted(item, access.redact)])[0]
                    continue
                try:
                    versions = [redacted(v, access.redact) for v in self.vault.history(item.id)
                                if access.owner or v.status != "quarantined"]
                except NotFound:  # purged meanwhile
                    continue
                yield from self._pruned(policy, versions)
            offset = listing.next_offset

    def check(self) -> dict[str, Any]:
        raise PermissionDenied("integrity checks cover the whole store: run them as the "
                               "operator (memvault check), not through a scoped key")
