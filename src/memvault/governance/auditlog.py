"""Querying the audit log by who, what, which memory and since when.

The store indexes the log by sequence number, memory and action; the other filters are
applied while paging through it, so a query costs one scan of the matching range, not
one scan per filter. ``read`` events name no single memory (one read returns many): a
query for one memory also finds the reads whose listed ids include it.
"""

from __future__ import annotations

from typing import Any

from .. import _validate as check
from .._time import parse_time
from ..errors import InvalidInput
from ..types import AuditEvent
from ..vault import Vault

__all__ = ["query_audit"]


def query_audit(vault: Vault, *, item_id: str | None = None, action: str | None = None,
                actor: str | None = None, since: Any = None, after: int = 0,
                limit: int = 50) -> list[AuditEvent]:
    """Events matching every given filter, oldest first, at most ``limit``."""
    page = vault.limits.max_page
    limit = check.bounded_int(limit, field="limit", low=1, high=page)
    after = check.bounded_int(after, field="after", low=0, high=2**62)
    if item_id is not None:
        check.item_id(item_id)
    if actor is not None and not isinstance(actor, str):
        raise InvalidInput("actor must be a string", field="actor")
    start = parse_time(since, field="since") if since is not None else None
    # reads of the memory are found only by scanning; other events through the index
    by_item = item_id if item_id is not None and action not in (None, "read") else None

    def wanted(e: AuditEvent) -> bool:
        if actor is not None and e.actor != actor:
            return False
        if start is not None and e.at < start:
            return False
        if item_id is not None and e.item_id != item_id:
            return e.action == "read" and item_id in (e.details.get("ids") or ())
        return True

    out: list[AuditEvent] = []
    cursor = after
    while len(out) < limit:
        events = vault.audit(item_id=by_item, action=action, after=cursor, limit=page)
        for e in events:
            if wanted(e):
                out.append(e)
                if len(out) == limit:
                    break
        if len(events) < page:
            break
        cursor = events[-1].seq
    return out
