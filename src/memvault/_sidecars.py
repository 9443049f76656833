"""Where a SQLite vault keeps its activation blocks and LoRA adapters: beside its file.

Low on purpose: chat, the scheduler's tiers, the server's scheduler view and cube dumps
all ask the same question, and none of them should import another to answer it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .storage.sqlite import SQLiteStore

__all__ = ["default_dirs", "dirs_beside"]

_SIDECARS = {"activation": ".activation", "parametric": ".adapters"}


def dirs_beside(db: Path | None) -> dict[str, Path | None]:
    """``<db>.activation`` and ``<db>.adapters`` next to the SQLite file ``db`` (all None
    for None), for callers that know the path without opening the vault."""
    if db is None:
        return {k: None for k in _SIDECARS}
    return {k: db.with_name(db.name + suffix) for k, suffix in _SIDECARS.items()}


def default_dirs(vault: Any) -> dict[str, Path | None]:
    """``<db>.activation`` and ``<db>.adapters`` next to a SQLite vault (None otherwise:
    a store without a file, such as PostgreSQL, has no default place)."""
    if not isinstance(vault.store, SQLiteStore):
        return dirs_beside(None)
    return dirs_beside(Path(vault.store.path))
