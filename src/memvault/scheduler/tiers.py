"""Where hot memory goes: the interfaces the scheduler drives, implemented elsewhere.

The scheduler decides; the tiers do the work. An activation tier turns a scope's hottest
memories into a precomputed KV-cache block for a model; a parametric tier distils stable,
hot memories into a LoRA adapter (usually later, in a queue, because training takes
minutes). Both are small Protocols so the activation and LoRA engines, or a test's
in-memory recorder, plug in without the scheduler knowing them.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from ..types import MemoryItem

__all__ = ["ActivationTier", "CheckedActivationTier", "ManagedParametricTier",
           "ParametricTier", "Scope"]

#: ``{"user_id": ..., "agent_id": ..., "cube_id": ...}`` (None for unset fields)
Scope = Mapping[str, "str | None"]


@runtime_checkable
class ActivationTier(Protocol):
    def promote(self, scope: Scope, items: Sequence[MemoryItem]) -> str:
        """Build (or reuse) an activation block holding ``items``; return its id."""
        ...

    def demote(self, block_id: str) -> None:
        """Drop a block the scheduler no longer wants resident."""
        ...


@runtime_checkable
class ParametricTier(Protocol):
    def queue(self, scope: Scope, items: Sequence[MemoryItem]) -> str | None:
        """Queue ``items`` for distillation into the scope's adapter; return a job id."""
        ...


@runtime_checkable
class CheckedActivationTier(ActivationTier, Protocol):
    """An activation tier that can tell when a block went out of date for reasons the
    scheduler cannot see in the store (e.g. the scope's adapter was re-distilled, so the
    chats now look for a block computed under the new weights)."""

    def current(self, scope: Scope, block_id: str) -> bool:
        """True while ``block_id`` is still the block the scope's readers would use."""
        ...


@runtime_checkable
class ManagedParametricTier(ParametricTier, Protocol):
    """A parametric tier whose queued jobs report back, so the scheduler can audit the
    finished move (``distilled`` / ``distill_failed``) from its own thread, and that can
    drop a scope's adapter once every memory it was distilled from is gone."""

    def collect(self, timeout: float | None = 0.0) -> list[dict[str, Any]]:
        """Jobs finished since the last call (waiting up to ``timeout`` s for running
        ones; None: until done): ``{"job", "scope", "items", "key" | "error", ...}``."""
        ...

    def drop(self, scope: Scope) -> str | None:
        """Delete the scope's adapter (cancel its running job); return what was dropped."""
        ...
