"""PostgreSQL dialect helpers: RowQuery -> WHERE clause, a result row -> MemoryItem, and the
raw row layout shared by :mod:`~memvault.storage.postgres` and :mod:`~memvault.storage.migrate`.

Only fixed SQL fragments are concatenated here; every value (ids, scope values, metadata
paths and values, times) travels as a bound parameter.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from .._time import from_epoch
from ..types import SCOPE_FIELDS, Link, MemoryItem
from .base import RowQuery

#: Same order as sqlite.py's ``_COLUMNS`` (seq first, access stats last).
COLUMNS = ("v.seq, v.id, v.version, v.text, v.kind, v.user_id, v.agent_id, v.session_id, "
           "v.cube_id, v.metadata, v.provenance, v.tags, v.created_at, v.event_time, "
           "v.valid_from, v.valid_to, v.status, v.importance, v.expires_at, v.content_hash, "
           "a.count, a.last_at")
ORDER = {"created_desc": "v.created_at DESC, v.seq DESC",
         "created_asc": "v.created_at ASC, v.seq ASC",
         "seq_asc": "v.seq ASC"}

#: The raw interchange layout used to copy a store row for row (see migrate.py). JSON
#: columns travel as canonical text (``json.dumps(sort_keys=True)``, as SQLite stores
#: them), embeddings as little-endian float32 bytes.
RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "vectors": ("content_hash", "dim", "embedding"),
    "versions": ("seq", "id", "version", "text", "search_text", "kind", "user_id", "agent_id",
                 "session_id", "cube_id", "metadata", "provenance", "tags", "created_at",
                 "event_time", "valid_from", "valid_to", "status", "importance", "expires_at",
                 "content_hash"),
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


def where_clause(q: RowQuery) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    if not q.all_versions:
        if q.as_of is None:
            parts.append("v.valid_to IS NULL")
        else:
            parts.append("v.valid_from <= %s AND (v.valid_to IS NULL OR v.valid_to > %s)")
            params += [q.as_of, q.as_of]
    if q.statuses is not None:
        parts.append("v.status = ANY(%s::text[])")
        params.append(list(q.statuses))
    if q.ids is not None:
        parts.append("v.id = ANY(%s::text[])")
        params.append(list(q.ids))
    if q.seqs is not None:
        parts.append("v.seq = ANY(%s::bigint[])")
        params.append([int(s) for s in q.seqs])
    for key, value in q.scope.items():
        if key not in SCOPE_FIELDS:  # validated upstream too; never let a key reach SQL
            raise ValueError(f"unknown scope field {key!r}")
        parts.append(f"v.{key} = %s")
        params.append(value)
    if q.kinds is not None:
        parts.append("v.kind = ANY(%s::text[])")
        params.append(list(q.kinds))
    if q.tags_any:
        parts.append("v.tags ?| %s::text[]")
        params.append(list(q.tags_any))
    for key, value in q.metadata.items():
        path = key.split(".")
        if value is None:  # SQLite's json_extract(...) IS NULL: missing or JSON null
            parts.append("coalesce(jsonb_typeof(v.metadata #> %s::text[]), 'null') = 'null'")
            params.append(path)
        else:  # containment on the nested object: equality of a scalar, GIN-indexable
            nested: Any = value
            for p in reversed(path):
                nested = {p: nested}
            parts.append("v.metadata @> %s::jsonb")
            params.append(json.dumps(nested))
    for column, op, value in (("event_time", ">=", q.event_after),
                              ("event_time", "<", q.event_before),
                              ("created_at", ">=", q.created_after),
                              ("created_at", "<", q.created_before)):
        if value is not None:
            parts.append(f"v.{column} {op} %s")
            params.append(value)
    return (" AND ".join(parts) or "TRUE"), params


def row_to_item(r: Sequence[Any], links: Sequence[tuple[str, str, float]]) -> MemoryItem:
    """Column order is :data:`COLUMNS`; jsonb columns arrive already decoded."""
    return MemoryItem(
        id=r[1], version=r[2], text=r[3], kind=r[4], user_id=r[5], agent_id=r[6],
        session_id=r[7], cube_id=r[8], metadata=r[9], provenance=r[10],
        tags=tuple(r[11]), created_at=from_epoch(r[12]), event_time=from_epoch(r[13]),
        valid_from=from_epoch(r[14]), valid_to=from_epoch(r[15]), status=r[16],
        importance=r[17], expires_at=from_epoch(r[18]), access_count=r[20] or 0,
        last_accessed_at=from_epoch(r[21]),
        links=tuple(Link(target=d, kind=k, weight=w) for d, k, w in links))
