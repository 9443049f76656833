"""Heat: how much a memory is in use right now, from its access statistics.

Heat drives every move the scheduler makes (promotion into an activation block, LoRA
distillation, archiving cold memories), so it must be cheap, explainable and monotone:

    heat = (1 + access_weight * ln(1 + access_count))      # how often it was recalled
           * 0.5 ** (age / half_life)                      # how long ago (last access,
                                                           #  or creation if never read)
           * (1 + importance_weight * (importance - 0.5))  # what the writer said it's worth

A memory read often and recently is hot; one never read cools from its creation with the
configured half-life; importance scales both (the default 0.5 is neutral). Logarithmic
counts keep one burst of reads from pinning a memory forever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from ..errors import InvalidInput
from ..types import MemoryItem, utcnow

__all__ = ["HeatConfig", "heat", "rank_by_heat"]

_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class HeatConfig:
    #: Days after which an unread memory's heat halves.
    half_life_days: float = 7.0
    access_weight: float = 1.0
    importance_weight: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_life_days) and self.half_life_days > 0):
            raise InvalidInput("half_life_days must be a positive number",
                               field="half_life_days")
        for name in ("access_weight", "importance_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 2):
                raise InvalidInput(f"{name} must be in 0..2", field=name)


def last_touch(item: MemoryItem) -> datetime | None:
    """When the memory was last read, or else written (what recency is measured from)."""
    return item.last_accessed_at or item.created_at or item.valid_from


def heat(item: MemoryItem, now: datetime | None = None,
         config: HeatConfig = HeatConfig()) -> float:
    """The heat of one memory at ``now`` (default: the current time); always >= 0."""
    now = now or utcnow()
    touched = last_touch(item)
    age = max(0.0, (now - touched).total_seconds()) if touched else 0.0
    decay = 0.5 ** (age / (config.half_life_days * _DAY))
    activity = 1.0 + config.access_weight * math.log1p(max(0, item.access_count))
    worth = 1.0 + config.importance_weight * (item.importance - 0.5)
    return activity * decay * worth


def rank_by_heat(items: Iterable[MemoryItem], now: datetime | None = None,
                 config: HeatConfig = HeatConfig()) -> list[tuple[MemoryItem, float]]:
    """Items with their heat, hottest first (ties: newest first, then id, stable)."""
    now = now or utcnow()
    scored = [(item, heat(item, now, config)) for item in items]
    scored.sort(key=lambda p: (-p[1], -(p[0].created_at.timestamp() if p[0].created_at else 0),
                               p[0].id))
    return scored
