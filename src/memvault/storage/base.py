"""The record-store contract.

The store is the single source of truth: every version of every memory, the audit log,
links and access statistics. Indexes held in memory (the vector index) are derived from
it and can always be rebuilt from it. A backend implements a handful of methods; reading
helpers such as ``get`` or ``history`` are derived in :class:`StoreReads`.

Storage rows use float epoch seconds; conversion to datetimes happens when a row becomes
a :class:`~memvault.types.MemoryItem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

if TYPE_CHECKING:  # numpy is imported where vectors are handled: a by-id read needs none
    import numpy as np

from ..types import AuditEvent, MemoryItem

__all__ = [
    "RowQuery", "InsertVersion", "AuditOp", "LinkOp", "PurgeOp", "GovernanceOp", "WriteOp",
    "StoredRow", "RecordStore", "StoreReads",
]


@dataclass(slots=True)
class RowQuery:
    """What rows to read. Defaults: the current, active version of every memory."""

    ids: Sequence[str] | None = None
    seqs: Sequence[int] | None = None
    scope: dict[str, str] = field(default_factory=dict)
    kinds: Sequence[str] | None = None
    #: Rows of none of these kinds (``search`` leaves working memory out this way).
    exclude_kinds: Sequence[str] | None = None
    tags_any: Sequence[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Rows whose statements carry any of these keys (``provenance.truth_keys``, see
    #: :mod:`memvault.temporal.supersede`).
    truth_any: Sequence[str] | None = None
    event_after: float | None = None
    event_before: float | None = None
    created_after: float | None = None
    created_before: float | None = None
    statuses: Sequence[str] | None = ("active",)
    #: Valid time: the version whose statement held in the world then (see MemoryItem).
    as_of: float | None = None
    #: Transaction time: the version that was the vault's record then.
    known_at: float | None = None
    all_versions: bool = False  # history: ignore currency, as_of and known_at
    limit: int | None = None
    offset: int = 0
    order: str = "created_desc"  # created_desc | created_asc | seq_asc


@dataclass(slots=True)
class InsertVersion:
    """Write a new version; the store closes the item's open version at ``item.valid_from``.

    ``expected_version`` is the version the writer read (0 for a new memory). If the
    stored current version differs, another writer got there first: the store raises
    Conflict and the whole batch is rolled back.
    """

    item: MemoryItem
    embedding: np.ndarray | None
    content_hash: str
    expected_version: int
    #: The text the indexes see (item text plus context); defaults to the item text.
    search_text: str | None = None


@dataclass(slots=True)
class AuditOp:
    action: str
    item_id: str | None = None
    version: int | None = None
    actor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LinkOp:
    src: str
    dst: str
    kind: str = "related"
    weight: float = 1.0
    remove: bool = False


@dataclass(slots=True)
class PurgeOp:
    item_id: str


@dataclass(slots=True)
class GovernanceOp:
    """A change to the governance tables (principals, keys, teams, grants): one of the
    named statements of :mod:`memvault.storage.governance` and its values. In an
    ``apply`` batch it commits (or not) together with the audit row that records it."""

    statement: str
    params: dict[str, Any] = field(default_factory=dict)


WriteOp = InsertVersion | AuditOp | LinkOp | PurgeOp | GovernanceOp


@dataclass(slots=True)
class StoredRow:
    seq: int
    item: MemoryItem
    content_hash: str


class RecordStore(Protocol):
    """What a backend must provide. All writes of one logical operation go through one
    ``apply`` call, which is one transaction: durable when it returns."""

    def apply(self, ops: Sequence[WriteOp]) -> int:
        """Apply atomically; return the highest audit sequence number written."""
        ...

    def select(self, query: RowQuery) -> list[StoredRow]: ...

    def count(self, query: RowQuery) -> int: ...

    def by_seqs(self, seqs: Sequence[int], query: RowQuery | None = None
                ) -> dict[int, StoredRow]:
        """The rows with these sequence numbers that ``query`` also selects (the searcher
        and the linker read candidates this way; :class:`StoreReads` derives it)."""
        ...

    def seqs(self, query: RowQuery) -> list[int]:
        """Sequence numbers of matching rows, unordered and unpaged (for index masks)."""
        ...

    def lexical(self, terms: Sequence[str], query: RowQuery, k: int) -> list[tuple[int, float]]:
        """Best ``k`` rows matching any of ``terms`` (BM25, higher is better)."""
        ...

    def embeddings(self, seqs: Sequence[int]) -> dict[int, np.ndarray]: ...

    def links(self, ids: Sequence[str], skip: Sequence[str] = ()) -> list[tuple[str, str]]:
        """(src, dst) pairs of every link that touches one of ``ids``, except links of
        the kinds in ``skip``."""
        ...

    def last_change(self) -> int:
        """Highest audit sequence number: cheap, polled before every search."""
        ...

    def changes(self, after: int) -> tuple[int, list[str]]:
        """Item ids written since audit sequence ``after``, and the new high-water mark."""
        ...

    def scan_current(self, batch: int = 4096) -> Iterator[list[tuple[StoredRow, np.ndarray]]]:
        """Current active rows with their embeddings, for rebuilding indexes."""
        ...

    def audit_events(self, *, item_id: str | None = None, action: str | None = None,
                     after: int = 0, limit: int = 100) -> list[AuditEvent]: ...

    def touch(self, counts: dict[str, tuple[int, float]]) -> None:
        """Add access counts (item id -> (count, last access epoch)); best effort."""
        ...

    def governance(self, query: str, params: dict[str, Any]) -> list[tuple]:
        """Rows of one named read of the governance tables (``storage/governance.py``)."""
        ...

    def meta(self) -> dict[str, str]: ...

    def set_meta(self, key: str, value: str, *, only_if_absent: bool = False) -> None: ...

    def check(self) -> dict[str, Any]:
        """Integrity report: ``{"ok": bool, ...}``."""
        ...

    def durability(self) -> dict[str, Any]:
        """The durability settings in force, read back from the backend;
        ``fsync_per_commit`` says whether a returned ``apply`` is on stable storage."""
        ...

    def close(self) -> None: ...


class StoreReads:
    """Reading helpers derived from ``select`` so that backends need not repeat them."""

    def select(self, query: RowQuery) -> list[StoredRow]:  # pragma: no cover - protocol
        raise NotImplementedError

    def current(self, item_id: str, *, as_of: float | None = None,
                known_at: float | None = None) -> StoredRow | None:
        rows = self.select(RowQuery(ids=[item_id], statuses=None, as_of=as_of,
                                    known_at=known_at, limit=1))
        return rows[0] if rows else None

    def history(self, item_id: str) -> list[StoredRow]:
        return self.select(RowQuery(ids=[item_id], statuses=None, all_versions=True,
                                    order="seq_asc"))

    def by_seqs(self, seqs: Sequence[int], query: RowQuery | None = None) -> dict[int, StoredRow]:
        if not seqs:
            return {}
        q = query or RowQuery(statuses=None, all_versions=True)
        q = RowQuery(**{**{f: getattr(q, f) for f in q.__slots__}, "seqs": list(seqs),
                        "limit": None, "offset": 0})
        return {row.seq: row for row in self.select(q)}
