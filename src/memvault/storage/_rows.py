"""SQLite dialect helpers: RowQuery -> WHERE clause, and a result row -> MemoryItem."""

from __future__ import annotations

import json
from typing import Any, Sequence

from .._time import from_epoch
from ..types import Link, MemoryItem
from .base import RowQuery


def _json_list(values: Sequence[Any]) -> str:
    return json.dumps(list(values))


def where_clause(q: RowQuery) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    if not q.all_versions:
        if q.as_of is None:
            parts.append("v.valid_to IS NULL")
        else:
            parts.append("v.valid_from <= ? AND (v.valid_to IS NULL OR v.valid_to > ?)")
            params += [q.as_of, q.as_of]
    if q.statuses is not None:
        parts.append("v.status IN (SELECT value FROM json_each(?))")
        params.append(_json_list(q.statuses))
    if q.ids is not None:
        parts.append("v.id IN (SELECT value FROM json_each(?))")
        params.append(_json_list(q.ids))
    if q.seqs is not None:
        parts.append("v.seq IN (SELECT value FROM json_each(?))")
        params.append(_json_list(q.seqs))
    for key, value in q.scope.items():
        parts.append(f"v.{key} = ?")  # keys are validated against SCOPE_FIELDS upstream
        params.append(value)
    if q.kinds is not None:
        parts.append("v.kind IN (SELECT value FROM json_each(?))")
        params.append(_json_list(q.kinds))
    if q.tags_any:
        parts.append("EXISTS (SELECT 1 FROM json_each(v.tags) t WHERE t.value IN "
                     "(SELECT value FROM json_each(?)))")
        params.append(_json_list(q.tags_any))
    for key, value in q.metadata.items():
        path = "$." + ".".join(f'"{p}"' for p in key.split("."))
        if value is None:
            parts.append("json_extract(v.metadata, ?) IS NULL")
            params.append(path)
        elif isinstance(value, bool):
            parts.append("json_type(v.metadata, ?) = ?")
            params += [path, "true" if value else "false"]
        else:  # json_extract gives 1 for JSON true: compare the JSON type too
            types = "('text')" if isinstance(value, str) else "('integer', 'real')"
            parts.append(f"json_type(v.metadata, ?) IN {types} AND json_extract(v.metadata, ?) = ?")
            params += [path, path, value]
    for column, op, value in (("event_time", ">=", q.event_after),
                              ("event_time", "<", q.event_before),
                              ("created_at", ">=", q.created_after),
                              ("created_at", "<", q.created_before)):
        if value is not None:
            parts.append(f"v.{column} {op} ?")
            params.append(value)
    return (" AND ".join(parts) or "1=1"), params


def row_to_item(r: Sequence[Any], links: Sequence[tuple[str, str, float]]) -> MemoryItem:
    """Column order is ``_COLUMNS`` in sqlite.py (seq first, access stats last)."""
    return MemoryItem(
        id=r[1], version=r[2], text=r[3], kind=r[4], user_id=r[5], agent_id=r[6],
        session_id=r[7], cube_id=r[8], metadata=json.loads(r[9]), provenance=json.loads(r[10]),
        tags=tuple(json.loads(r[11])), created_at=from_epoch(r[12]), event_time=from_epoch(r[13]),
        valid_from=from_epoch(r[14]), valid_to=from_epoch(r[15]), status=r[16],
        importance=r[17], expires_at=from_epoch(r[18]), access_count=r[20] or 0,
        last_accessed_at=from_epoch(r[21]),
        links=tuple(Link(target=d, kind=k, weight=w) for d, k, w in links))
