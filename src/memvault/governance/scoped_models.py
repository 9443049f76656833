"""The calls of :class:`~memvault.governance.ScopedVault` that read or write through the
reader, the chat loop or the quarantine, each pinned to the principal's scope like every
other scoped call: ``remember``, ``chat``, ``quarantined`` and ``release``.

A mixin (as :class:`~memvault.governance.sharing.Sharing` is) so that scope.py stays
about the scope rules themselves.
"""

from __future__ import annotations

from typing import Any, ContextManager, Mapping, Sequence

from ..errors import NotFound, PermissionDenied
from ..types import MemoryItem, Page
from ..vault import Vault
from .principals import Principal

__all__ = ["ModelCalls"]


class ModelCalls:
    """Mixed into ScopedVault, which provides the attributes and helpers below."""

    vault: Vault
    principal: Principal

    def _act(self) -> ContextManager[Any]:
        raise NotImplementedError

    def _pin(self, user_id: Any, agent_id: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _log_read(self, op: str, ids: Sequence[str], **details: Any) -> None:
        raise NotImplementedError

    def list(self, **kwargs: Any) -> Page:
        raise NotImplementedError

    def remember(self, messages: Sequence[Mapping[str, Any]], *, mode: str = "fast",
                 llm: Any = None, user_id: str | None = None, agent_id: str | None = None,
                 session_id: str | None = None, cube_id: str | None = None,
                 event_time: Any = None) -> Any:
        """:meth:`Vault.remember` in the principal's scope: the turns and every fact read
        from them are the principal's (the reader decides against its memories only)."""
        with self._act():
            return self.vault.remember(messages, mode=mode, llm=llm,
                                       **self._pin(user_id, agent_id), session_id=session_id,
                                       cube_id=cube_id, event_time=event_time)

    def chat(self, query: str, *, llm: Any = None, user_id: str | None = None,
             agent_id: str | None = None, session_id: str | None = None,
             cube_id: str | None = None, k: int = 5, activation: Any = True,
             adapter: Any = None, remember: bool = False, max_tokens: int = 256) -> Any:
        """:meth:`Vault.chat` in the principal's scope: it retrieves (and, with
        ``remember``, writes) the principal's own memories only, never shared ones (a
        grant lets a principal read a memory, not put it into its model's prompts)."""
        with self._act():
            result = self.vault.chat(query, llm=llm, **self._pin(user_id, agent_id),
                                     session_id=session_id, cube_id=cube_id, k=k,
                                     activation=activation, adapter=adapter,
                                     remember=remember, max_tokens=max_tokens)
        self._log_read("chat", [h.item.id for h in result.memories] + list(result.block_items))
        return result

    def quarantined(self, *, user_id: str | None = None, agent_id: str | None = None,
                    session_id: str | None = None, cube_id: str | None = None,
                    limit: int = 50, offset: int = 0) -> Page:
        """The principal's own quarantined memories (reviewing is the owner's business)."""
        return self.list(**self._pin(user_id, agent_id), session_id=session_id,
                         cube_id=cube_id, status="quarantined", limit=limit, offset=offset)

    def release(self, id: str, *, reason: str | None = None,
                actor: str | None = None) -> MemoryItem:
        """Release one of the principal's own memories; the principal is the actor."""
        if actor is not None and actor != self.principal.name:
            raise PermissionDenied("a scoped release is made by the key's principal",
                                   field="actor")
        # anyone else's memory is NotFound, as for every call naming one outside the scope
        page = self.list(user_id=self.principal.user_id, filters={"ids": [id]},  # type: ignore[attr-defined]
                         status="any", limit=1)
        if not page.items:
            raise NotFound(f"no memory {id}", id=id)
        return self.vault.release(id, actor=self.principal.name, reason=reason)
