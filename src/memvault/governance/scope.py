"""The vault as one principal sees it.

:class:`ScopedVault` has the :class:`~memvault.Vault` interface and forwards every call to
the vault it wraps, confined to the principal's scope:

* writes are stamped with the principal's ``user_id`` (and ``agent_id`` if the key has
  one); asking for another scope is refused with PermissionDenied;
* reads (search, list, count, export, audit) are filtered to that scope;
* calls naming a memory (get, update, delete, restore, archive, purge, history, link,
  unlink) on one outside the scope raise NotFound, exactly as if it did not exist.

Scope fields of a memory never change after it is written (updates keep them), so a
memory checked to be in scope stays in scope for the rest of the call.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .. import _validate as check
from ..errors import InvalidInput, NotFound, PermissionDenied
from ..types import AuditEvent, MemoryItem, Page, SearchHit
from ..vault import Record, Vault
from .principals import Principal

__all__ = ["ScopedVault"]


class ScopedVault:
    """``vault`` confined to ``principal``; does not own (or close) the vault."""

    def __init__(self, vault: Vault, principal: Principal) -> None:
        self.vault = vault
        self.principal = principal

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

    def _in_scope(self, ids: Sequence[str]) -> dict[str, MemoryItem]:
        """The current version of each of ``ids`` that is in scope (any status)."""
        found: dict[str, MemoryItem] = {}
        unique = list(dict.fromkeys(ids))
        step = self.vault.limits.max_page
        for start in range(0, len(unique), step):
            chunk = unique[start:start + step]
            page = self.vault.list(filters={"ids": chunk}, status="any", limit=len(chunk),
                                   **self._pin(None, None))
            found.update((item.id, item) for item in page.items)
        return found

    def _require(self, id: Any) -> MemoryItem:
        check.item_id(id)
        item = self._in_scope([id]).get(id)
        if item is None:
            raise NotFound(f"no memory {id}", id=id)
        return item

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
    def add(self, text: str, *, kind: str = "note", user_id: str | None = None,
            agent_id: str | None = None, session_id: str | None = None,
            cube_id: str | None = None, metadata: Mapping[str, Any] | None = None,
            provenance: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
            event_time: Any = None, importance: float = 0.5, expires_at: Any = None,
            id: str | None = None) -> MemoryItem:
        return self.vault.add(text, kind=kind, **self._pin(user_id, agent_id),
                              session_id=session_id, cube_id=cube_id, metadata=metadata,
                              provenance=provenance, tags=tags, event_time=event_time,
                              importance=importance, expires_at=expires_at, id=id)

    def add_messages(self, messages: Sequence[Mapping[str, Any]], *,
                     user_id: str | None = None, agent_id: str | None = None,
                     session_id: str | None = None, cube_id: str | None = None,
                     metadata: Mapping[str, Any] | None = None,
                     event_time: Any = None) -> list[MemoryItem]:
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
                yield record
        return self.vault.add_many(stamped(), batch_size=batch_size, progress=progress,
                                   **defaults)

    def update(self, id: str, text: str | None = None, *, kind: str | None = None,
               metadata: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
               event_time: Any = None, importance: float | None = None,
               expires_at: Any = None, reason: str | None = None) -> MemoryItem:
        self._require(id)
        return self.vault.update(id, text, kind=kind, metadata=metadata, tags=tags,
                                 event_time=event_time, importance=importance,
                                 expires_at=expires_at, reason=reason)

    def delete(self, id: str, *, reason: str | None = None) -> MemoryItem:
        self._require(id)
        return self.vault.delete(id, reason=reason)

    def restore(self, id: str) -> MemoryItem:
        self._require(id)
        return self.vault.restore(id)

    def archive(self, id: str, *, reason: str | None = None) -> MemoryItem:
        self._require(id)
        return self.vault.archive(id, reason=reason)

    def purge(self, id: str, *, reason: str | None = None) -> int:
        self._require(id)
        return self.vault.purge(id, reason=reason)

    def link(self, src: str, dst: str, *, kind: str = "related", weight: float = 1.0) -> None:
        self._require(src), self._require(dst)
        self.vault.link(src, dst, kind=kind, weight=weight)

    def unlink(self, src: str, dst: str, *, kind: str = "related") -> None:
        self._require(src), self._require(dst)
        self.vault.unlink(src, dst, kind=kind)

    # -- reads -------------------------------------------------------------------------
    def get(self, id: str, *, as_of: Any = None) -> MemoryItem:
        self._require(id)
        return self.vault.get(id, as_of=as_of)

    def history(self, id: str) -> list[MemoryItem]:
        self._require(id)
        return self.vault.history(id)

    def list(self, *, user_id: str | None = None, agent_id: str | None = None,
             session_id: str | None = None, cube_id: str | None = None,
             filters: Mapping[str, Any] | None = None, status: Any = "active",
             as_of: Any = None, limit: int = 50, offset: int = 0,
             order: str = "created_desc") -> Page:
        return self.vault.list(**self._pin(user_id, agent_id), session_id=session_id,
                               cube_id=cube_id, filters=filters, status=status, as_of=as_of,
                               limit=limit, offset=offset, order=order)

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               session_id: str | None = None, cube_id: str | None = None,
               filters: Mapping[str, Any] | None = None, k: int = 10, as_of: Any = None,
               status: Any = "active") -> list[SearchHit]:
        return self.vault.search(query, **self._pin(user_id, agent_id), session_id=session_id,
                                 cube_id=cube_id, filters=filters, k=k, as_of=as_of,
                                 status=status)

    def count(self, *, user_id: str | None = None, status: Any = "active") -> int:
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
        """Every memory in scope (all statuses), oldest first; with ``history`` every
        version of each."""
        step = self.vault.limits.max_page
        offset: int | None = 0
        while offset is not None:
            listing = self.vault.list(**self._pin(None, None), status="any", limit=step,
                                      offset=offset, order="created_asc")
            for item in listing.items:
                if not history:
                    yield item
                    continue
                try:
                    yield from self.vault.history(item.id)
                except NotFound:  # purged meanwhile
                    continue
            offset = listing.next_offset

    def check(self) -> dict[str, Any]:
        raise PermissionDenied("integrity checks cover the whole store: run them as the "
                               "operator (memvault check), not through a scoped key")
