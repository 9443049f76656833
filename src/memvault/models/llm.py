"""The LLM contract: one attribute and one method.

Everything that writes text for memvault (the fine reader's fact extraction, the
ADD/UPDATE/DELETE/NOOP decision, session summaries, ``Vault.chat``) talks to an
:class:`LLM`. Implementations: the bundled SmolLM2 (:mod:`memvault.models.local`), any
OpenAI-compatible HTTP endpoint, and the scripted OpenAI-compatible server the tests use.
Callers must treat the output as untrusted text: a small model returns malformed JSON
often, and nothing it says may corrupt the store.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

__all__ = ["LLM", "Message"]

#: ``{"role": "system" | "user" | "assistant", "content": str}``
Message = Mapping[str, str]


@runtime_checkable
class LLM(Protocol):
    #: Stable identity of the model behind the adapter (recorded in provenance).
    id: str

    def complete(self, messages: Sequence[Message], *, max_tokens: int = 256,
                 temperature: float = 0.0,
                 json_schema: Mapping[str, Any] | None = None) -> str:
        """The assistant's reply to ``messages``.

        With ``json_schema`` the implementation asks for structured output where the
        backend supports it; the caller still validates what comes back. Failures raise
        :class:`~memvault.errors.ModelError`.
        """
        ...
