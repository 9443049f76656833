"""The row layout both record stores select, and a result row -> MemoryItem."""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from .._time import from_epoch
from ..types import Link, MemoryItem

__all__ = ["COLUMNS", "ORDER", "row_to_item"]

#: What ``select``/``scan_current`` read, in this order (seq first, access stats, then
#: valid time); ``row_to_item`` and the ``r[19]`` (content hash) / ``r[24]`` (embedding)
#: reads rely on it.
COLUMNS = ("v.seq, v.id, v.version, v.text, v.kind, v.user_id, v.agent_id, v.session_id, "
           "v.cube_id, v.metadata, v.provenance, v.tags, v.created_at, v.event_time, "
           "v.valid_from, v.valid_to, v.status, v.importance, v.expires_at, v.content_hash, "
           "a.count, a.last_at, v.valid_at, v.invalid_at")
ORDER = {"created_desc": "v.created_at DESC, v.seq DESC",
         "created_asc": "v.created_at ASC, v.seq ASC",
         "seq_asc": "v.seq ASC"}


def row_to_item(r: Sequence[Any], links: Sequence[tuple[str, str, float]],
                decode_json: Callable[[Any], Any] = json.loads) -> MemoryItem:
    """Column order is :data:`COLUMNS`. ``decode_json`` turns a JSON column as the driver
    returns it into Python: ``json.loads`` for SQLite's text (the default, also what raw
    exported rows hold), the identity for psycopg's already decoded jsonb."""
    return MemoryItem(
        id=r[1], version=r[2], text=r[3], kind=r[4], user_id=r[5], agent_id=r[6],
        session_id=r[7], cube_id=r[8], metadata=decode_json(r[9]),
        provenance=decode_json(r[10]), tags=tuple(decode_json(r[11])),
        created_at=from_epoch(r[12]), event_time=from_epoch(r[13]),
        valid_from=from_epoch(r[14]), valid_to=from_epoch(r[15]), status=r[16],
        importance=r[17], expires_at=from_epoch(r[18]), access_count=r[20] or 0,
        last_accessed_at=from_epoch(r[21]), valid_at=from_epoch(r[22]),
        invalid_at=from_epoch(r[23]),
        links=tuple(Link(target=d, kind=k, weight=w) for d, k, w in links))
