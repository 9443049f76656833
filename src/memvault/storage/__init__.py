"""Record stores: the single source of truth behind every Vault."""

from __future__ import annotations

from pathlib import Path

from .base import RecordStore, RowQuery, StoredRow
from .sqlite import SQLiteStore

__all__ = ["RecordStore", "RowQuery", "StoredRow", "SQLiteStore", "open_store", "is_dsn"]


def is_dsn(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path, *, durability: str = "full") -> RecordStore:
    """A SQLite file path (the embedded default) or a ``postgresql://`` DSN."""
    if is_dsn(location):
        from .._extras import requires

        with requires("postgres", "a PostgreSQL store"):
            from .postgres import PostgresStore

        return PostgresStore(str(location))
    return SQLiteStore(location, durability=durability)
