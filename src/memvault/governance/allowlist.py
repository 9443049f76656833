"""The ids of the memories in a scope, for the allow-list a sharing read passes to search.

Listing a scope's memories decodes every row (~0.15 ms each). The sequence numbers of a
scope's current rows are cheap to read (one indexed query, no decoding) and change
whenever the scope's memories do (a new memory, a new version, a purge all change the
set), so the ids are decoded again only when the set of sequence numbers differs from the
one they were decoded for. The result is exact: a seq names one row of one memory.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Mapping

from ..storage.base import RecordStore, RowQuery

__all__ = ["scope_ids"]

_MAX_SCOPES = 256  # per store; least recently used scopes are forgotten first
_Key = tuple[tuple[str, str], ...]
_cache: "weakref.WeakKeyDictionary[object, OrderedDict[_Key, tuple[frozenset[int], frozenset[str]]]]" = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def scope_ids(store: RecordStore, scope: Mapping[str, str | None]) -> frozenset[str]:
    """Ids of every current memory (any status) in ``scope`` (``None`` values ignored)."""
    fixed = {k: v for k, v in scope.items() if v is not None}
    key: _Key = tuple(sorted(fixed.items()))
    query = RowQuery(scope=fixed, statuses=None)
    seqs = frozenset(store.seqs(query))
    with _lock:
        per_store = _cache.setdefault(store, OrderedDict())
        hit = per_store.get(key)
        if hit is not None and hit[0] == seqs:
            per_store.move_to_end(key)
            return hit[1]
    ids = frozenset(r.item.id for r in store.select(RowQuery(
        seqs=sorted(seqs), statuses=None, all_versions=True))) \
        if seqs else frozenset()
    with _lock:
        per_store = _cache.setdefault(store, OrderedDict())
        per_store[key] = (seqs, ids)
        per_store.move_to_end(key)
        while len(per_store) > _MAX_SCOPES:
            per_store.popitem(last=False)
    return ids
