"""Where hot memory goes: the interfaces the scheduler drives, implemented elsewhere.

The scheduler decides; the tiers do the work. An activation tier turns a scope's hottest
memories into a precomputed KV-cache block for a model; a parametric tier distils stable,
hot memories into a LoRA adapter (usually later, in a queue, because training takes
minutes). Both are small Protocols so the activation and LoRA engines, or a test's
in-memory recorder, plug in without the scheduler knowing them.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

from ..types import MemoryItem

__all__ = ["ActivationTier", "ParametricTier", "Scope"]

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
