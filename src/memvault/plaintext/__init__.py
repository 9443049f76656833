"""Plaintext memory: text with its metadata, versions and links, found by search.

It is the kind the other two are made from, so its parts are the vault's own layers and
keep their own packages: :mod:`memvault.storage` (the record store: SQLite or
PostgreSQL, append-only versions, one transaction per write), :mod:`memvault.index` (the
vector index beside it, derived state) and :mod:`memvault.retrieval` (hybrid search,
fusion and re-ranking). This module names the kind and gathers its main types in one
place; the scheduler's plaintext policies (heat, forgetting, links, consolidation) are
in :mod:`memvault.scheduler`, the cube's serialisation of it in
:mod:`memvault.cube.plaintext`, and its JSON forms (import files, the export read back)
in :mod:`memvault.plaintext.jsonl`.

The names are imported on first use: :mod:`.jsonl` is read by commands that need
neither faiss nor the searcher until they write.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..index.vector import VectorIndex
    from ..retrieval.searcher import SearchConfig, Searcher
    from ..storage import RecordStore, RowQuery, SQLiteStore, StoredRow, open_store

_HOMES = {"VectorIndex": "..index.vector", "SearchConfig": "..retrieval.config",
          "Searcher": "..retrieval.searcher", "RecordStore": "..storage",
          "RowQuery": "..storage", "SQLiteStore": "..storage", "StoredRow": "..storage",
          "open_store": "..storage"}

__all__ = ["RecordStore", "RowQuery", "SQLiteStore", "SearchConfig", "Searcher", "StoredRow",
           "VectorIndex", "open_store"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
