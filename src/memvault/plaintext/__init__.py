"""Plaintext memory: text with its metadata, versions and links, found by search.

It is the kind the other two are made from, so its parts are the vault's own layers and
keep their own packages: :mod:`memvault.storage` (the record store: SQLite or
PostgreSQL, append-only versions, one transaction per write), :mod:`memvault.index` (the
vector index beside it, derived state) and :mod:`memvault.retrieval` (hybrid search,
fusion and re-ranking). This module names the kind and gathers its main types in one
place; the scheduler's plaintext policies (heat, forgetting, links, consolidation) are
in :mod:`memvault.scheduler`, and the cube's serialisation of it in
:mod:`memvault.cube.plaintext`.
"""

from ..index.vector import VectorIndex
from ..retrieval.searcher import SearchConfig, Searcher
from ..storage import RecordStore, RowQuery, SQLiteStore, StoredRow, open_store

__all__ = ["RecordStore", "RowQuery", "SQLiteStore", "SearchConfig", "Searcher", "StoredRow",
           "VectorIndex", "open_store"]
