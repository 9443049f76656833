"""Record stores: the single source of truth behind every Vault."""

from .base import RecordStore, RowQuery, StoredRow
from .sqlite import SQLiteStore

__all__ = ["RecordStore", "RowQuery", "StoredRow", "SQLiteStore"]
