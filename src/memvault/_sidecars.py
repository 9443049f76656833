"""Where a SQLite vault keeps its activation blocks and LoRA adapters: beside its file.

Low on purpose: chat, the scheduler's tiers, the server's scheduler view and cube dumps
all ask the same question, and none of them should import another to answer it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .storage.sqlite import SQLiteStore

__all__ = ["default_dirs"]

_SIDECARS = {"activation": ".activation", "parametric": ".adapters"}


def default_dirs(vault: Any) -> dict[str, Path | None]:
    """``<db>.activation`` and ``<db>.adapters`` next to a SQLite vault (None otherwise:
    a store without a file, such as PostgreSQL, has no default place)."""
    if not isinstance(vault.store, SQLiteStore):
        return {k: None for k in _SIDECARS}
    db = Path(vault.store.path)
    return {k: db.with_name(db.name + suffix) for k, suffix in _SIDECARS.items()}
