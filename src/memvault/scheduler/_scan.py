"""Reading whole populations of memories in pages, for the lifecycle jobs.

Jobs scan first and act afterwards: offset paging over a set that the job itself is
shrinking (archiving, purging) would skip rows.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping, Sequence

from ..storage.base import RecordStore, RowQuery
from ..types import SCOPE_FIELDS, MemoryItem

_PAGE = 1000

#: Scope fields that own a memory, without the session: the unit of promotion and topics.
OWNER_FIELDS: tuple[str, ...] = ("user_id", "agent_id", "cube_id")


def iter_items(store: RecordStore, *, statuses: Sequence[str] | None = ("active",),
               kinds: Sequence[str] | None = None, scope: Mapping[str, str] | None = None,
               metadata: Mapping[str, Any] | None = None) -> Iterator[MemoryItem]:
    """Current versions matching the filters, oldest first, read ``_PAGE`` at a time."""
    q = RowQuery(statuses=statuses, kinds=kinds, scope=dict(scope or {}),
                 metadata=dict(metadata or {}), order="created_asc", limit=_PAGE)
    while True:
        rows = store.select(q)
        yield from (r.item for r in rows)
        if len(rows) < _PAGE:
            return
        q.offset += _PAGE


def scope_key(scope: Mapping[str, str | None], fields: Sequence[str] = SCOPE_FIELDS) -> str:
    """A stable string naming a scope (JSON of the fields, ``null`` for unset ones)."""
    return json.dumps([scope.get(f) for f in fields])


def scope_of(key: str, fields: Sequence[str] = SCOPE_FIELDS) -> dict[str, str | None]:
    return dict(zip(fields, json.loads(key)))


def same_scope(item: MemoryItem, scope: Mapping[str, str | None]) -> bool:
    """Exact equality on every given field (a RowQuery scope ignores unset fields)."""
    return all(getattr(item, f) == v for f, v in scope.items())


def query_scope(scope: Mapping[str, str | None]) -> dict[str, str]:
    """The RowQuery form of a scope: only the fields that are set."""
    return {k: v for k, v in scope.items() if v is not None}
