"""The raw row layout shared by :mod:`~memvault.storage.postgres` and
:mod:`~memvault.storage.migrate`, and how JSON crosses between jsonb and SQLite's text.

(The WHERE clause and the row -> MemoryItem code both stores use are in ``_dialect.py``
and ``_rows.py``.)
"""

from __future__ import annotations

import json
from typing import Any

#: The raw interchange layout used to copy a store row for row (see migrate.py). JSON
#: columns travel as canonical text (``json.dumps(sort_keys=True)``, as SQLite stores
#: them), embeddings as little-endian float32 bytes.
RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "vectors": ("content_hash", "dim", "embedding"),
    "versions": ("seq", "id", "version", "text", "search_text", "kind", "user_id", "agent_id",
                 "session_id", "cube_id", "metadata", "provenance", "tags", "created_at",
                 "event_time", "valid_from", "valid_to", "status", "importance", "expires_at",
                 "content_hash", "valid_at", "invalid_at"),
    "links": ("src", "dst", "kind", "weight", "created_at"),
    "access": ("id", "count", "last_at"),
    "audit": ("seq", "at", "actor", "action", "item_id", "version", "details"),
}
#: Import order (foreign keys: versions reference vectors).
RAW_TABLES: tuple[str, ...] = ("meta", "vectors", "versions", "links", "access", "audit")
JSON_COLUMNS = {"versions": ("metadata", "provenance", "tags"), "audit": ("details",)}


def sorted_json_loads(text: str | bytes) -> Any:
    """``json.loads`` with keys in sorted order, so PostgreSQL's jsonb (which reorders keys)
    hands back dicts ordered exactly as SQLite's ``json.dumps(sort_keys=True)`` text does."""
    return json.loads(text, object_pairs_hook=lambda pairs: dict(sorted(pairs)))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
