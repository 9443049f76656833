"""The facade: the one object every face (Python, CLI, REST, MCP) talks to.

A write validates everything first, embeds outside the transaction, then hands the store
one batch of operations (version row + audit row) that commits atomically; only then is
the call acknowledged. Reads go through the :class:`~memvault.retrieval.Searcher`, which
keeps the derived vector index in step with the store.

The searcher (numpy, faiss, the index snapshot) is opened on the first search or write,
not with the vault: a by-id read (``get``, ``history``, ``list``) needs only the store,
and a command line that answers one such read should not pay for loading an index it
never consults. Opening still checks the embedder identity; closing a vault that saw
writes from elsewhere opens the searcher then, so the snapshot stays as fresh as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from . import _validate as check
from ._time import parse_time
from .ids import content_hash, new_id
from ._batches import batched, write_ahead
from ._messages import message_records
from . import hooks
from .api import Record, VaultAPI
from .errors import ConfigurationError, Conflict, InvalidInput, NotFound
from .models import DEFAULT_EMBEDDER, Embedder, get_embedder
from .models.base import embed_unique
from .retrieval import dedup as near
from .retrieval.context import MODES as CONTEXT_MODES
from .retrieval.context import embed_text, search_text
from .settings import Settings
from .storage.base import AuditOp, InsertVersion, LinkOp, PurgeOp, RecordStore, RowQuery
from .storage import is_dsn, open_store
from .storage.sqlite import SQLiteStore
from .types import WORKING_KINDS, AuditEvent, MemoryItem, Page, SearchHit, utcnow

__all__ = ["Vault", "message_records"]

_RECORD_KEYS = frozenset({"text", "kind", "user_id", "agent_id", "session_id", "cube_id",
                          "metadata", "provenance", "tags", "event_time", "importance",
                          "expires_at", "id"})

#: Vectors ``embed_ahead`` keeps for writes to come (a few per request in flight).
_AHEAD = 64

_UNSET: Any = object()


def guard_module() -> Any:
    """:mod:`memvault.guard.quarantine`, imported when a write first needs it."""
    from .guard import quarantine

    return quarantine


class Vault(VaultAPI):
    """Versioned, searchable memory for one store.

    ``Vault()`` with no path is a throw-away vault in a temporary directory;
    ``Vault("memory.db")`` opens (or creates) a SQLite-backed vault.
    """

    def __init__(self, path: str | Path | None = None, *, settings: Settings | None = None,
                 embedder: Embedder | str | None = None, store: RecordStore | None = None,
                 actor: str | None = None) -> None:
        self._tmpdir: str | None = None
        if path is not None and is_dsn(path):  # Vault("postgresql://...")
            settings, path = (settings or Settings()).replace(store=str(path)), None
        if settings is None:
            if path is None and store is None:
                self._tmpdir = tempfile.mkdtemp(prefix="memvault-")
                path = Path(self._tmpdir) / "vault.db"
            settings = Settings(path=Path(path)) if path is not None else Settings()
        elif path is not None:
            settings = settings.replace(path=Path(path))
        if settings.index_context not in CONTEXT_MODES:
            raise ConfigurationError(f"index_context must be one of {CONTEXT_MODES}")
        self.settings = settings
        self.limits = settings.limits
        self.actor = actor
        if settings.guard not in ("on", "off"):  # the guard's own modes, checked now
            guard_module().guard_for(settings.guard)  # raises ConfigurationError
        self._guard: Any = _UNSET  # built on the first write (its rules take ~0.1 s)
        # who the current call acts for, set per call by acting_as (a shared vault serves
        # many principals at once: each request's context carries its own)
        self._acting: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"memvault_actor_{id(self)}", default=None)
        self._noted: contextvars.ContextVar[list[AuditOp] | None] = contextvars.ContextVar(
            f"memvault_noted_{id(self)}", default=None)  # see noting()
        if isinstance(embedder, str) or embedder is None:
            name = embedder or settings.embedder
            embedder = get_embedder(name) if name else None  # None: the vault's own
        if store is None and settings.store:
            store = open_store(settings.store)  # a DSN: its index dir is explicit or none
        self.store: RecordStore = store or SQLiteStore(settings.path,
                                                       durability=settings.durability)
        if embedder is None:
            try:
                embedder = self._own_embedder()
            except BaseException:
                self.store.close()
                raise
        self.embedder = embedder
        # With a store passed in, only an explicit index_dir is used (the default one is
        # next to a SQLite file); the snapshot's tag and watermark make either safe.
        self._index_dir = settings.resolved_index_dir if store is None else settings.index_dir
        self._snapshot = self._index_dir is not None and self._tmpdir is None
        self._searcher: Any = None
        self._searcher_lock = threading.Lock()
        try:
            self._check_identity()
            self._opened_change = self.store.last_change()
        except BaseException:
            self.store.close()  # a vault that failed to open holds no connections
            raise
        self._ahead: OrderedDict[str, Any] = OrderedDict()  # embed input -> its vector
        self._ahead_lock = threading.Lock()
        self._access: dict[str, tuple[int, float]] = {}
        self._access_lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._closed = False

    def prepare(self, *, defer_sentences: bool = False) -> None:
        """Open now what the first search or write would open: the searcher (index
        snapshot loaded or rebuilt, change feed replayed) and the guard. A server calls
        this before it reports ready, so that no request pays for it.

        ``defer_sentences``: index the memories written since as searchable now (by their
        whole text, dense and lexical) and leave their sentence vectors, the costly part,
        to :meth:`index_sentences`, which the caller then owns (searches never embed them
        on their own path; closing the vault does, before its index snapshot). The memory
        proxy does this right after its write, so a new conversation that must see the
        exchange waits only for the cheap half."""
        self.searcher.sync(defer_parts=defer_sentences)
        warm = getattr(self.store, "warm", None)  # SQLite: its in-memory BM25 index
        if warm is not None:
            warm()
        self.guard  # noqa: B018 - builds it

    def index_sentences(self, limit: int | None = None) -> int:
        """Embed and index the sentence vectors ``prepare(defer_sentences=True)`` left
        (at most ``limit``: call again for the rest); returns how many. Searches in other
        threads go on meanwhile."""
        return self.searcher.index_deferred(limit)

    def embed_ahead(self, query: str | None = None, *,
                    messages: Sequence[Mapping[str, Any]] = (), user_id: str | None = None,
                    agent_id: str | None = None, session_id: str | None = None,
                    cube_id: str | None = None) -> None:
        """Embed now what a search or a write to come will need, while the caller waits
        for something else: ``query`` goes to the searcher's query cache (the memory
        proxy embeds it while its read-your-writes wait lasts); ``messages`` (as for
        :meth:`add_messages`, same scope) are the turns a write will store soon, and it
        takes their vectors from here (the proxy embeds the user's message while the
        upstream model answers). Vectors are matched by the exact text embedded, so a
        write that stores something else embeds it as usual; at most ``_AHEAD`` are kept."""
        if query is not None:
            self.searcher.embed_queries([check.text(query, self.limits, field="query")])
        if messages:
            records = message_records(messages, user_id=user_id, agent_id=agent_id,
                                      session_id=session_id, cube_id=cube_id)
            inputs = [embed_text(self._new_item(r, {}), self.settings.index_context)
                      for r in records]
            vectors = self.embedder.embed(inputs)
            with self._ahead_lock:
                for text, vec in zip(inputs, vectors):
                    self._ahead[text] = vec
                    self._ahead.move_to_end(text)
                while len(self._ahead) > _AHEAD:
                    self._ahead.popitem(last=False)

    def _embed_inputs(self, inputs: list[str]) -> list[Any]:
        """The embedder's vectors for ``inputs``, those embedded ahead taken (once)."""
        with self._ahead_lock:
            found = {i: self._ahead.pop(t) for i, t in enumerate(inputs) if t in self._ahead}
        todo = [t for i, t in enumerate(inputs) if i not in found]
        rest = iter(embed_unique(self.embedder, todo) if todo else ())
        return [found[i] if i in found else next(rest) for i in range(len(inputs))]

    @property
    def guard(self) -> Any:
        """The injection guard that screens writes (None with ``guard="off"``): flagged
        writes are quarantined. Built on first use: a read never needs its rules."""
        if self._guard is _UNSET:
            self._guard = guard_module().guard_for(self.settings.guard)
        return self._guard

    @guard.setter
    def guard(self, value: Any) -> None:
        self._guard = value

    @property
    def _quarantine(self) -> Any:
        return guard_module()

    @property
    def searcher(self) -> Any:
        """The :class:`~memvault.retrieval.Searcher`, opened (snapshot loaded or index
        rebuilt, change feed replayed) on first use."""
        if self._searcher is None:
            with self._searcher_lock:
                if self._searcher is None:
                    from .retrieval import Searcher

                    self._searcher = Searcher(
                        self.store, self.embedder, config=self.settings.search,
                        index_dir=self._index_dir, store_tag=self.store.meta()["vault_id"],
                        context=self.settings.index_context)
        return self._searcher

    def _apply(self, ops: list[Any]) -> None:
        """Commit ``ops``; the searcher is open first (as when it opened with the vault),
        so it takes the write in from the change feed like any other."""
        self.searcher  # noqa: B018 - opens it
        noted = self._noted.get()
        self.store.apply([*noted, *ops] if noted else ops)
        if noted:
            noted.clear()  # committed with this write (kept if it failed: noting() retries)

    @property
    def actor(self) -> str | None:
        """Recorded in provenance and audit rows: the current acting_as, else the default."""
        return self._acting.get() or self._actor

    @actor.setter
    def actor(self, value: str | None) -> None:
        self._actor = value

    @contextlib.contextmanager
    def noting(self, events: Sequence[AuditOp]) -> Iterator[None]:
        """Commit audit ``events`` in the transaction of the first write made in this block
        (this thread/task), or alone when the block ends without one: a record of an
        earlier call (the memory proxy's read, kept with the exchange it answered) then
        costs no commit of its own. Written even if the block raises."""
        noted = list(events)
        token = self._noted.set(noted)
        try:
            yield
        finally:
            self._noted.reset(token)
            if noted:
                self.store.apply(noted)

    @contextlib.contextmanager
    def acting_as(self, actor: str | None) -> Iterator[None]:
        """Record ``actor`` for calls made in this block (this thread/task only)."""
        token = self._acting.set(actor)
        try:
            yield
        finally:
            self._acting.reset(token)

    def _own_embedder(self) -> Embedder:
        """The embedder this vault was created with (the default one for a new vault)."""
        stored = self.store.meta().get("embedder")
        try:
            return get_embedder(stored or DEFAULT_EMBEDDER)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"this vault was embedded with {stored!r}, which memvault cannot load by "
                "name; pass that embedder to Vault(embedder=...)", vault_embedder=stored) from exc

    def _check_identity(self) -> None:
        if "vault_id" not in self.store.meta():
            # two processes may open a fresh store at once: each key is written only if
            # absent, and what we then read back is what everyone sees
            for key, value in (("embedder", self.embedder.id), ("dim", str(self.embedder.dim)),
                               ("created_at", utcnow().isoformat()), ("vault_id", new_id())):
                self.store.set_meta(key, value, only_if_absent=True)
        meta = self.store.meta()
        if meta.get("embedder") != self.embedder.id:
            raise ConfigurationError(
                f"this vault was embedded with {meta.get('embedder')!r}, not "
                f"{self.embedder.id!r}; open it with that embedder or migrate it",
                vault_embedder=meta.get("embedder"))

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
            searcher = self._searcher
            if searcher is None and self._snapshot and \
                    self.store.last_change() != self._opened_change:
                searcher = self.searcher  # writes since open: the snapshot catches up now
            if searcher is not None:
                searcher.close()
                if self._snapshot:
                    searcher.save()
        finally:
            self.store.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> "Vault":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------
    def add(self, text: str, *, kind: str = "note", user_id: str | None = None,
            agent_id: str | None = None, session_id: str | None = None,
            cube_id: str | None = None, metadata: Mapping[str, Any] | None = None,
            provenance: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
            event_time: Any = None, importance: float = 0.5, expires_at: Any = None,
            id: str | None = None, dedup: str = "off") -> MemoryItem:
        """Store one memory; durable when this returns.

        ``dedup``: what to do when the text restates an active memory of the same kind and
        owner (``retrieval.dedup``: cosine >= ``settings.search.dedup_threshold`` and the
        same values): "off" stores it anyway, "noop" returns that memory and writes
        nothing, "version" writes the new text as that memory's next version. A chosen
        ``id`` cannot be combined with dedup (the memory kept may have another id)."""
        record = {k: v for k, v in locals().items() if k not in ("self", "dedup")}
        if near.policy(dedup) != "off":
            if id is not None:
                raise InvalidInput("id cannot be combined with dedup", field="dedup")
            match = self._near_duplicate(record)
            if match is not None and dedup == "noop":
                return match
            if match is not None:
                return self.update(match.id, text, metadata=metadata, tags=tags,
                                   event_time=event_time, expires_at=expires_at,
                                   reason="restated by an add (dedup=version)")
        return self.add_many([record])[0]

    def _near_duplicate(self, record: dict[str, Any]) -> MemoryItem | None:
        """The active memory ``record`` restates (see :mod:`memvault.retrieval.dedup`)."""
        item = self._new_item(record, {})
        vector = self.embedder.embed([embed_text(item, self.settings.index_context)])[0]
        return near.near_duplicate(self.searcher, item, vector,
                                   self.settings.search.dedup_threshold)

    def add_messages(self, messages: Sequence[Mapping[str, Any]], *,
                     user_id: str | None = None, agent_id: str | None = None,
                     session_id: str | None = None, cube_id: str | None = None,
                     metadata: Mapping[str, Any] | None = None,
                     event_time: Any = None) -> list[MemoryItem]:
        """Store chat messages (``{"role", "content", ["name"], ["timestamp"]}``) as turns."""
        return self.add_many(message_records(
            messages, user_id=user_id, agent_id=agent_id, session_id=session_id,
            cube_id=cube_id, metadata=metadata, event_time=event_time))

    def remember(self, messages: Sequence[Mapping[str, Any]], *, mode: str = "fast",
                 llm: Any = None, user_id: str | None = None, agent_id: str | None = None,
                 session_id: str | None = None, cube_id: str | None = None,
                 event_time: Any = None) -> Any:
        """Store chat turns and read memories from them (see :mod:`memvault.reader`).

        ``mode="fast"`` stores the turns only (extraction is deferred to
        ``memvault.reader.ExtractionJob``); ``"fine"`` also extracts facts now and applies
        ADD/UPDATE/DELETE/NOOP for each. ``llm``: an LLM, a spec, or None for
        ``settings.llm`` (unset: rule-based). Returns a ``RememberResult``.
        """
        return hooks.get("remember")(self, messages, mode=mode, llm=llm, user_id=user_id,
                                     agent_id=agent_id, session_id=session_id,
                                     cube_id=cube_id, event_time=event_time)

    def chat(self, query: str, *, llm: Any = None, user_id: str | None = None,
             agent_id: str | None = None, session_id: str | None = None,
             cube_id: str | None = None, k: int = 5, activation: Any = True,
             adapter: Any = None, remember: bool = False, max_tokens: int = 256) -> Any:
        """Answer with retrieved memories, the scope's KV-cache block and its adapter
        (see :mod:`memvault.chat`). ``llm``: an LLM or spec; default ``settings.llm``,
        else the bundled SmolLM2. ``activation``: True = blocks in ``<db>.activation/``
        next to the SQLite file (none for a throw-away or PostgreSQL vault), an
        ``ActivationStore``, or False. ``adapter``: None = the scope's own adapter in
        ``<db>.adapters/`` if it has one (local model only), a handle, or False.
        Routing by budget: with a local model and ``activation`` on, a scope whose
        memories fit ``settings.chat_all_within`` tokens is answered from all of them,
        served from their cached prefix, instead of the ``k`` retrieved (0 turns it off;
        ``activation=Composition(all_within=...)`` sets it per call). Blocks composed in
        any order: ``activation=Composition(recompute=...)``, or by default when
        ``settings.chat_compose`` is set, builds the prompt's KV from each retrieved
        memory's cached chunk (``result.activation`` says how many were reused).
        Returns a ``ChatResult`` (its ``route`` says which, its ``adapter`` which adapter
        was on)."""
        return hooks.get("chat")(self, query, llm=llm, user_id=user_id, agent_id=agent_id,
                                 session_id=session_id, cube_id=cube_id, k=k,
                                 activation=activation, adapter=adapter, remember=remember,
                                 max_tokens=max_tokens)

    def add_many(self, records: Iterable[Record], *, batch_size: int = 256,
                 progress: Callable[[int], None] | None = None, **defaults: Any) -> list[MemoryItem]:
        """Store many memories; each batch of ``batch_size`` is one transaction.

        ``defaults`` (e.g. ``user_id=...``) apply to records that do not set the field.
        All records of a batch are validated before any of them is written.
        """
        batch_size = check.bounded_int(batch_size, field="batch_size", low=1,
                                       high=self.limits.max_batch)
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise InvalidInput("records must be a list of strings or objects")
        unknown = set(defaults) - _RECORD_KEYS
        if unknown:
            raise InvalidInput(f"unknown default field(s) {sorted(unknown)}",
                               fields=sorted(unknown))
        read = batched(iter(records), batch_size, lambda r: self._new_item(r, defaults))
        return write_ahead(read, self._vectors_of, self._write_new, progress)

    def _new_item(self, record: Record, defaults: Mapping[str, Any]) -> MemoryItem:
        if isinstance(record, str):
            record = {"text": record}
        if not isinstance(record, Mapping):
            raise InvalidInput(f"a record must be a string or an object, not "
                               f"{type(record).__name__}")
        unknown = set(record) - _RECORD_KEYS
        if unknown:
            raise InvalidInput(f"unknown field(s) {sorted(unknown)}", fields=sorted(unknown))
        r = {**defaults, **{k: v for k, v in record.items() if v is not None}}
        now = utcnow()
        event_time = (parse_time(r["event_time"], field="event_time")
                      if r.get("event_time") is not None else None)
        lim = self.limits
        return MemoryItem(
            id=check.item_id(r["id"]) if r.get("id") else new_id(),
            text=check.text(r.get("text"), lim),
            kind=check.kind(r.get("kind", "note")),
            **check.scope({f: r.get(f) for f in ("user_id", "agent_id", "session_id", "cube_id")}),
            metadata=check.json_object(r.get("metadata"), lim, field="metadata"),
            provenance={**check.json_object(r.get("provenance"), lim, field="provenance"),
                        "actor": self.actor},  # the caller cannot claim another actor
            tags=check.tags(r.get("tags"), lim),
            created_at=now, valid_from=now, valid_at=event_time or now,
            event_time=event_time,
            importance=check.unit_float(r.get("importance", 0.5), field="importance"),
            expires_at=parse_time(r["expires_at"], field="expires_at") if r.get("expires_at") is not None else None,
        )

    def _vectors_of(self, items: Sequence[MemoryItem]) -> dict[str, Any]:
        """``{embedder input: vector}`` for ``items``, before they are written."""
        inputs = [embed_text(item, self.settings.index_context) for item in items]
        return dict(zip(inputs, self._embed_inputs(inputs)))

    def _write_new(self, items: list[MemoryItem],
                   ready: Mapping[str, Any] | None = None) -> list[MemoryItem]:
        """Screen, plan and commit ``items``; ``ready``: vectors embedded ahead, by input
        (an input not among them, if screening or planning changed it, is embedded here)."""
        if len({i.id for i in items}) != len(items):
            raise InvalidInput("duplicate ids in one batch")
        items = self._quarantine.screen_new(self.guard, items, recent=self._session_recent)
        closing: list[Any] = []
        if self.settings.supersede:  # current truth: what these statements end
            from .temporal import supersede

            items, closing = supersede.plan(self.store, items, actor=self.actor, now=utcnow())
        texts, thread_links = self._search_texts(items)
        inputs = [embed_text(item, self.settings.index_context) for item in items]
        ready = ready or {}
        missing = [t for t in inputs if t not in ready]
        if missing:
            ready = {**ready, **dict(zip(missing, self._embed_inputs(missing)))}
        vectors = [ready[t] for t in inputs]
        ops: list[Any] = []
        for item, text, source, vec in zip(items, texts, inputs, vectors):
            ops.append(InsertVersion(item, vec, content_hash(source), expected_version=0,
                                     search_text=text))
            ops.append(AuditOp("add", item.id, 1, self.actor,
                               {"kind": item.kind, **self._quarantine.audit_note(item)}))
        ops += [LinkOp(prev, nxt, "next") for prev, nxt in thread_links]
        self._apply(ops + closing)
        if self.settings.auto_link:
            hooks.get("after_write")(self, items)
        return items

    def _search_texts(self, items: Sequence[MemoryItem]
                      ) -> tuple[list[str], list[tuple[str, str]]]:
        """Index text per item, and (previous turn, turn) links for new turns.

        A turn's previous turn comes from the same batch or, for the first turn of a
        batch, from the store."""
        mode = self.settings.index_context
        last: dict[tuple[Any, ...], MemoryItem | None] = {}
        out: list[str] = []
        links: list[tuple[str, str]] = []
        for item in items:
            previous = None
            if mode == "thread" and item.kind == "turn" and item.session_id:
                key = (item.user_id, item.agent_id, item.session_id, item.cube_id)
                previous = last[key] if key in last else self._previous_turn(item)
                last[key] = item
                if previous is not None and item.version == 1:
                    links.append((previous.id, item.id))
            out.append(search_text(item, previous, mode))
        return out, links

    def _session_recent(self, item: MemoryItem, n: int) -> list[MemoryItem]:
        """The last ``n`` active memories of the item's session, oldest first: the guard
        reads a new memory after them (an instruction split over two writes)."""
        q = RowQuery(scope={k: v for k, v in item.scope.items() if v is not None}, limit=n)
        return [r.item for r in self.store.select(q) if r.item.id != item.id][::-1]

    def _previous_turn(self, item: MemoryItem) -> MemoryItem | None:
        q = RowQuery(scope={k: v for k, v in item.scope.items() if v is not None},
                     kinds=["turn"], created_before=item.created_at.timestamp()  # type: ignore[union-attr]
                     if item.version > 1 else None, limit=1)
        rows = [r for r in self.store.select(q) if r.item.id != item.id]
        return rows[0].item if rows else None

    def update(self, id: str, text: str | None = None, *, kind: str | None = None,
               metadata: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
               event_time: Any = None, importance: float | None = None,
               expires_at: Any = None, reason: str | None = None) -> MemoryItem:
        """Write a new version; the previous one is closed (``valid_to``), never lost.

        Fields left as ``None`` keep their value. An update that changes nothing returns
        the current version without writing.
        """
        current = self._current(id)
        if current.status == "deleted":
            raise Conflict(f"memory {id} is deleted; restore it before updating", id=id)
        lim = self.limits
        changes: dict[str, Any] = {}
        if text is not None:
            changes["text"] = check.text(text, lim)
        if kind is not None:
            changes["kind"] = check.kind(kind)
        if metadata is not None:
            changes["metadata"] = check.json_object(metadata, lim, field="metadata")
        if tags is not None:
            changes["tags"] = check.tags(tags, lim)
        if event_time is not None:
            changes["event_time"] = parse_time(event_time, field="event_time")
        if importance is not None:
            changes["importance"] = check.unit_float(importance, field="importance")
        if expires_at is not None:
            changes["expires_at"] = parse_time(expires_at, field="expires_at")
        changed = [k for k, v in changes.items() if getattr(current, k) != v]
        if not changed:
            return current
        new = {k: changes[k] for k in changed}
        if "text" in new and "event_time" in changes:  # the new statement held from then,
            new["event_time"] = changes["event_time"]  # even when the old one did too
        # new text, metadata or tags are screened like a new write
        new.update(self._quarantine.screen_changes(self.guard, current, new))
        return self._new_version(current, new, "update", {"changed": changed, "reason": reason})

    def delete(self, id: str, *, reason: str | None = None) -> MemoryItem:
        """Tombstone: hidden from search and list, kept in history, restorable until purged."""
        current = self._current(id)
        if current.status == "deleted":
            return current
        return self._new_version(current, {"status": "deleted"}, "delete", {"reason": reason})

    def restore(self, id: str) -> MemoryItem:
        current = self._current(id)
        if current.status not in ("deleted", "archived"):
            raise Conflict(f"memory {id} is {current.status}; only deleted or archived "
                           "memories can be restored", id=id)
        return self._new_version(current, {"status": self._quarantine.restored_status(current)},
                                 "restore", {})

    def archive(self, id: str, *, reason: str | None = None) -> MemoryItem:
        current = self._current(id)
        if current.status != "active":
            raise Conflict(f"memory {id} is {current.status}, not active", id=id)
        return self._new_version(current, {"status": "archived"}, "archive", {"reason": reason})

    def quarantined(self, *, user_id: str | None = None, agent_id: str | None = None,
                    session_id: str | None = None, cube_id: str | None = None,
                    limit: int = 50, offset: int = 0) -> Page:
        """Memories the injection guard held back (never served by search), newest first;
        each carries its verdict in ``provenance["guard"]``."""
        return self.list(user_id=user_id, agent_id=agent_id, session_id=session_id,
                         cube_id=cube_id, status="quarantined", limit=limit, offset=offset)

    def release(self, id: str, *, reason: str | None = None,
                actor: str | None = None) -> MemoryItem:
        """After review: serve a quarantined memory. A new, active version whose verdict
        records who released it (``actor``, default the vault's) and why; audited."""
        current = self._current(id)
        if current.status != "quarantined":
            raise Conflict(f"memory {id} is {current.status}, not quarantined", id=id)
        with self.acting_as(actor) if actor is not None else contextlib.nullcontext():
            provenance = self._quarantine.released_provenance(current, self.actor, reason)
            return self._new_version(current, {"status": "active", "provenance": provenance},
                                     "release", {"reason": reason})

    def purge(self, id: str, *, reason: str | None = None) -> int:
        """Remove every version for good; the audit log keeps only that it happened."""
        versions = self.history(id)
        self._apply([PurgeOp(id), AuditOp("purge", id, versions[-1].version, self.actor,
                                               {"versions": len(versions), "reason": reason})])
        return len(versions)

    def _new_version(self, current: MemoryItem, changes: dict[str, Any], action: str,
                     details: dict[str, Any]) -> MemoryItem:
        now = max(utcnow(), current.valid_from or utcnow())
        # valid time: a new statement holds from when it was made (or the event time the
        # caller gives); a validity change passes valid_at itself (see temporal/)
        valid_at = changes.pop("valid_at", changes.get("event_time", now))
        if "text" in changes:  # a new statement: it holds until something supersedes it
            from .temporal import supersede

            changes.setdefault("invalid_at", None)
            changes["provenance"] = supersede.forget(changes.get("provenance",
                                                                 current.provenance))
        item = dataclasses.replace(current, **changes, version=current.version + 1,
                                   valid_from=now, valid_to=None, access_count=0,
                                   last_accessed_at=None, links=(), valid_at=valid_at)
        closing: list[Any] = []
        if "text" in changes and self.settings.supersede:
            (item,), closing = supersede.plan(self.store, [item], actor=self.actor, now=now)
        text, vec, digest = None, None, None
        if "text" in changes:
            text = self._search_texts([item])[0][0]
            source = embed_text(item, self.settings.index_context)
            vec, digest = self.embedder.embed([source])[0], content_hash(source)
        else:  # same content: the stored vector (and indexed context) carry over
            digest = self.store.select(RowQuery(ids=[item.id], statuses=None,
                                                limit=1))[0].content_hash
        self._apply([
            InsertVersion(item, vec, digest,
                          expected_version=current.version, search_text=text),
            AuditOp(action, item.id, item.version, self.actor,
                    {k: v for k, v in details.items() if v is not None}),
            *closing,
        ])
        return item

    def link(self, src: str, dst: str, *, kind: str = "related", weight: float = 1.0) -> None:
        self._current(src), self._current(dst)
        weight = check.finite(weight, field="weight", low=0.0, high=1e6)
        self._apply([LinkOp(src, dst, check.kind(kind), weight),
                          AuditOp("link", src, None, self.actor, {"dst": dst, "kind": kind})])

    def unlink(self, src: str, dst: str, *, kind: str = "related") -> None:
        self._current(src), self._current(dst)
        self._apply([LinkOp(src, dst, check.kind(kind), remove=True),
                          AuditOp("unlink", src, None, self.actor, {"dst": dst, "kind": kind})])

    # -- reads -------------------------------------------------------------------------
    def _current(self, id: str, as_of: Any = None, known_at: Any = None) -> MemoryItem:
        check.item_id(id)
        q = check.row_query({}, None, as_of=as_of, known_at=known_at, status=None)
        q.ids, q.limit = [id], 1
        rows = self.store.select(q)
        if not rows:
            when = "".join(f" {label} {parse_time(t).isoformat()}" for label, t in
                           (("as of", as_of), ("known at", known_at)) if t is not None)
            raise NotFound(f"no memory {id}{when}", id=id)
        return rows[0].item

    def get(self, id: str, *, as_of: Any = None, known_at: Any = None) -> MemoryItem:
        """The current version (any status, so tombstones show); with ``as_of``, the one
        whose statement held in the world then (valid time); with ``known_at``, the one the
        vault had recorded then (transaction time). Both: what the vault, as it stood at
        ``known_at``, believed held at ``as_of``."""
        item = self._current(id, as_of, known_at)
        self._record_access([item.id])
        return item

    def history(self, id: str, *, known_at: Any = None) -> list[MemoryItem]:
        """Every version, oldest first (with ``known_at``: those recorded by then). Each
        version carries both times: ``valid_from``/``valid_to`` (recorded) and
        ``valid_at``/``invalid_at`` (held in the world)."""
        check.item_id(id)
        rows = self.store.select(RowQuery(ids=[id], statuses=None, all_versions=True,
                                          order="seq_asc"))
        cutoff = check.to_epoch(known_at, field="known_at")
        if cutoff is not None:
            rows = [r for r in rows if r.item.valid_from.timestamp() <= cutoff]  # type: ignore[union-attr]
        if not rows:
            raise NotFound(f"no memory {id}", id=id)
        return [r.item for r in rows]

    def list(self, *, user_id: str | None = None, agent_id: str | None = None,
             session_id: str | None = None, cube_id: str | None = None,
             filters: Mapping[str, Any] | None = None, status: Any = "active",
             as_of: Any = None, limit: int = 50, offset: int = 0,
             order: str = "created_desc", known_at: Any = None) -> Page:
        q = check.row_query({"user_id": user_id, "agent_id": agent_id,
                             "session_id": session_id, "cube_id": cube_id}, filters,
                            as_of=as_of, known_at=known_at, status=status)
        q.limit = check.bounded_int(limit, field="limit", low=1, high=self.limits.max_page)
        q.offset = check.bounded_int(offset, field="offset", low=0, high=2**62)
        if order not in ("created_desc", "created_asc"):
            raise InvalidInput("order must be created_desc or created_asc", field="order")
        q.order = order
        items = [r.item for r in self.store.select(q)]
        total = self.store.count(q)
        nxt = q.offset + len(items) if q.offset + len(items) < total else None
        return Page(items=items, total=total, offset=q.offset, next_offset=nxt)

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               session_id: str | None = None, cube_id: str | None = None,
               filters: Mapping[str, Any] | None = None, k: int = 10, as_of: Any = None,
               status: Any = "active", known_at: Any = None) -> list[SearchHit]:
        """Hybrid search (dense + BM25, fused); working memory (``WORKING_KINDS``) only when
        ``filters.kind`` names it. ``as_of``: among what held in the world then (valid
        time); ``known_at``: the vault as it was recorded then (see :meth:`get`).

        Quarantined memories are never served: ``status="any"`` means every other status,
        and asking for ``quarantined`` is refused (review them with :meth:`quarantined`)."""
        query = check.text(query, self.limits, field="query")
        k = check.bounded_int(k, field="k", low=1, high=self.limits.max_k)
        q = check.row_query({"user_id": user_id, "agent_id": agent_id,
                             "session_id": session_id, "cube_id": cube_id}, filters,
                            as_of=as_of, known_at=known_at, status=status)
        q.statuses = check.searchable(q.statuses)  # never quarantined text
        if q.kinds is None:  # working memory is found only when asked for by kind
            q.exclude_kinds = WORKING_KINDS
        candidates = self.searcher.search(query, q, k)
        hits = [SearchHit(item=c.row.item, score=c.score, rank=i + 1, sources=c.sources)
                for i, c in enumerate(candidates)]
        self._record_access([h.item.id for h in hits])
        return hits

    def count(self, *, user_id: str | None = None, status: Any = "active") -> int:
        return self.store.count(check.row_query({"user_id": user_id}, None, status=status))

    def audit(self, *, item_id: str | None = None, action: str | None = None,
              after: int = 0, limit: int = 100) -> list[AuditEvent]:
        limit = check.bounded_int(limit, field="limit", low=1, high=self.limits.max_page)
        after = check.bounded_int(after, field="after", low=0, high=2**62)
        if item_id is not None:
            check.item_id(item_id)
        if action is not None and (not isinstance(action, str) or len(action) > 64):
            raise InvalidInput("action must be a short string", field="action")
        return self.store.audit_events(item_id=item_id, action=action, after=after, limit=limit)

    def export(self, *, history: bool = False) -> Iterator[MemoryItem]:
        """Every memory (all statuses); with ``history`` every version, oldest first."""
        q = RowQuery(statuses=None, all_versions=history, order="seq_asc", limit=1000)
        while True:
            rows = self.store.select(q)
            yield from (r.item for r in rows)
            if len(rows) < 1000:
                return
            q.offset += 1000

    def check(self) -> dict[str, Any]:
        """Integrity report of the store, and of the vector index against it."""
        report = self.store.check()
        self.searcher.sync()
        active = self.store.count(RowQuery())
        report["indexed"] = self.searcher.indexed
        report["active"] = active
        report["index_consistent"] = active == self.searcher.indexed
        report["ok"] = report["ok"] and report["index_consistent"]
        report["recovery"] = dict(self.searcher.report)  # what opening repaired or replayed
        return report

    # -- access statistics (the scheduler's heat) ----------------------------------------
    def _record_access(self, ids: Sequence[str]) -> None:
        now = time.time()
        with self._access_lock:
            for i in ids:
                n, _ = self._access.get(i, (0, now))
                self._access[i] = (n + 1, now)
            due = len(self._access) >= 512 or time.monotonic() - self._last_flush > 5.0
        if due:
            self.flush()

    def flush(self) -> None:
        """Write buffered access counts. Heat is advisory: a crash may lose a few seconds."""
        with self._access_lock:
            pending, self._access = self._access, {}
            self._last_flush = time.monotonic()
        self.store.touch(pending)
