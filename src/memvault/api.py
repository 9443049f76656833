"""``VaultAPI``: the one interface of a vault, whoever holds it.

Three classes implement it and declare it: :class:`~memvault.Vault` (in-process, the
whole store), :class:`~memvault.governance.ScopedVault` (the vault as one principal sees
it) and :class:`~memvault.client.RemoteVault` (the REST server, over HTTP). Code written
against ``VaultAPI`` runs unchanged on any of them, and ``tests/test_client_conformance.py``
runs one suite against all three; ``tests/test_architecture.py`` fails when their
signatures drift apart.

Adding a parameter to a method means adding it in every place that carries it:

1. here, in the Protocol;
2. ``vault.py`` (the behaviour);
3. ``governance/scope.py`` or ``governance/scoped_models.py`` (pinned to the principal);
4. ``client.py`` (sent over HTTP) and ``server/models.py`` + the route in ``server/``;
5. ``server/mcp.py`` if the MCP tool exposes it, and the ``cli/`` command if the CLI does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from .types import AuditEvent, MemoryItem, Page, SearchHit

if TYPE_CHECKING:
    from .chat import ChatResult
    from .reader.pipeline import RememberResult

__all__ = ["Record", "VaultAPI"]

#: One record for ``add_many``: a text, or an object with ``text`` and the fields of ``add``.
Record = str | Mapping[str, Any]


class VaultAPI(Protocol):
    """What every vault offers. Ids outside the caller's view are ``NotFound``; bad input
    is ``InvalidInput``; a refused call changes nothing (see :mod:`memvault.errors`)."""

    # -- writes ------------------------------------------------------------------------
    def add(self, text: str, *, kind: str = "note", user_id: str | None = None,
            agent_id: str | None = None, session_id: str | None = None,
            cube_id: str | None = None, metadata: Mapping[str, Any] | None = None,
            provenance: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
            event_time: Any = None, importance: float = 0.5, expires_at: Any = None,
            id: str | None = None, dedup: str = "off") -> MemoryItem: ...

    def add_messages(self, messages: Sequence[Mapping[str, Any]], *,
                     user_id: str | None = None, agent_id: str | None = None,
                     session_id: str | None = None, cube_id: str | None = None,
                     metadata: Mapping[str, Any] | None = None,
                     event_time: Any = None) -> list[MemoryItem]: ...

    def add_many(self, records: Iterable[Record], *, batch_size: int = 256,
                 progress: Callable[[int], None] | None = None,
                 **defaults: Any) -> list[MemoryItem]: ...

    def update(self, id: str, text: str | None = None, *, kind: str | None = None,
               metadata: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
               event_time: Any = None, importance: float | None = None,
               expires_at: Any = None, reason: str | None = None) -> MemoryItem: ...

    def delete(self, id: str, *, reason: str | None = None) -> MemoryItem: ...

    def restore(self, id: str) -> MemoryItem: ...

    def archive(self, id: str, *, reason: str | None = None) -> MemoryItem: ...

    def purge(self, id: str, *, reason: str | None = None) -> int: ...

    def link(self, src: str, dst: str, *, kind: str = "related", weight: float = 1.0) -> None: ...

    def unlink(self, src: str, dst: str, *, kind: str = "related") -> None: ...

    # -- reads -------------------------------------------------------------------------
    def get(self, id: str, *, as_of: Any = None, known_at: Any = None) -> MemoryItem: ...

    def history(self, id: str, *, known_at: Any = None) -> list[MemoryItem]: ...

    def list(self, *, user_id: str | None = None, agent_id: str | None = None,
             session_id: str | None = None, cube_id: str | None = None,
             filters: Mapping[str, Any] | None = None, status: Any = "active",
             as_of: Any = None, limit: int = 50, offset: int = 0,
             order: str = "created_desc", known_at: Any = None) -> Page: ...

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               session_id: str | None = None, cube_id: str | None = None,
               filters: Mapping[str, Any] | None = None, k: int = 10, as_of: Any = None,
               status: Any = "active", known_at: Any = None) -> list[SearchHit]: ...

    def count(self, *, user_id: str | None = None, status: Any = "active") -> int: ...

    def audit(self, *, item_id: str | None = None, action: str | None = None,
              after: int = 0, limit: int = 100) -> list[AuditEvent]: ...

    def export(self, *, history: bool = False) -> Iterator[MemoryItem]: ...

    def check(self) -> dict[str, Any]: ...

    # -- the reader, chat and the quarantine -------------------------------------------
    def remember(self, messages: Sequence[Mapping[str, Any]], *, mode: str = "fast",
                 llm: Any = None, user_id: str | None = None, agent_id: str | None = None,
                 session_id: str | None = None, cube_id: str | None = None,
                 event_time: Any = None) -> "RememberResult": ...

    def chat(self, query: str, *, llm: Any = None, user_id: str | None = None,
             agent_id: str | None = None, session_id: str | None = None,
             cube_id: str | None = None, k: int = 5, activation: Any = True,
             adapter: Any = None, remember: bool = False,
             max_tokens: int = 256) -> "ChatResult": ...

    def quarantined(self, *, user_id: str | None = None, agent_id: str | None = None,
                    session_id: str | None = None, cube_id: str | None = None,
                    limit: int = 50, offset: int = 0) -> Page: ...

    def release(self, id: str, *, reason: str | None = None,
                actor: str | None = None) -> MemoryItem: ...

    # -- lifecycle ---------------------------------------------------------------------
    def flush(self) -> None: ...

    def close(self) -> None: ...
