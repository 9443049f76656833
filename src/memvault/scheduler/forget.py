"""Forgetting: expired or cold memories are archived, and archived ones purged later.

Two steps on purpose. Archiving hides a memory from search and listing but keeps every
version, so a wrong decision can be undone with ``Vault.restore`` during the grace
period; only then is it purged for good. Every move goes through ``Vault.archive`` /
``Vault.purge``, so each one is one transaction with an audit row whose ``reason`` says
which rule fired. ``dry_run`` computes the same decisions and changes nothing.

Only memories this policy archived are purged (their archive audit reason starts with
``forget:``): an application that archives a memory itself is keeping it out of sight,
not asking for it to be destroyed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable

from .._time import parse_time
from ..errors import Conflict, InvalidInput, NotFound
from ..storage.base import RowQuery
from ..types import WORKING_KINDS, MemoryItem, utcnow
from ._scan import iter_items
from .heat import HeatConfig, heat

if TYPE_CHECKING:
    from ..vault import Vault

__all__ = ["ForgetPolicy", "ForgetDecision", "ForgetReport", "plan_forget", "apply_forget",
           "forget"]

_DAY = 86_400.0
REASON_PREFIX = "forget:"


@dataclass(frozen=True, slots=True)
class ForgetPolicy:
    archive_expired: bool = True
    #: Archive memories colder than this (None: never archive for coldness) ...
    cold_heat_below: float | None = 0.05
    #: ... that are also less important than this ...
    cold_importance_below: float = 0.3
    #: ... and older than this many days.
    cold_min_age_days: float = 30.0
    #: Purge what this policy archived after this many days (None: never purge).
    purge_after_days: float | None = 30.0
    #: Kinds never archived for coldness (expiry still applies: it was asked for).
    protect_kinds: tuple[str, ...] = ("profile", "summary", *WORKING_KINDS)
    heat: HeatConfig = field(default_factory=HeatConfig)

    def __post_init__(self) -> None:
        for name in ("cold_heat_below", "cold_min_age_days", "purge_after_days"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InvalidInput(f"{name} must be a non-negative number", field=name)
        if not 0 <= self.cold_importance_below <= 1:
            raise InvalidInput("cold_importance_below must be in 0..1",
                               field="cold_importance_below")


@dataclass(frozen=True, slots=True)
class ForgetDecision:
    item_id: str
    version: int  # the version decided on: a newer one is re-judged next run
    action: str  # "archive" | "purge"
    rule: str  # "expired" | "cold" | "grace"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ForgetReport:
    dry_run: bool
    decisions: list[ForgetDecision] = field(default_factory=list)
    #: Decisions not applied because the memory changed in between (id -> why).
    skipped: dict[str, str] = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(1 for d in self.decisions if d.action == action
                   and d.item_id not in self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "archived": self.count("archive"),
                "purged": self.count("purge"), "skipped": dict(self.skipped),
                "decisions": [d.to_dict() for d in self.decisions]}


def _archive_reason(item: MemoryItem, policy: ForgetPolicy, now: datetime
                    ) -> tuple[str, str] | None:
    if policy.archive_expired and item.expires_at is not None and item.expires_at <= now:
        return "expired", f"{REASON_PREFIX} expired at {item.expires_at.isoformat()}"
    if policy.cold_heat_below is None or item.kind in policy.protect_kinds:
        return None
    if item.importance >= policy.cold_importance_below or item.created_at is None:
        return None
    if (now - item.created_at).total_seconds() < policy.cold_min_age_days * _DAY:
        return None
    h = heat(item, now, policy.heat)
    if h < policy.cold_heat_below:
        return "cold", (f"{REASON_PREFIX} cold (heat {h:.4f} < {policy.cold_heat_below}, "
                        f"importance {item.importance:g})")
    return None


def _forgotten_by_policy(vault: "Vault", item: MemoryItem) -> bool:
    """Was the memory's current archived state written by this policy?"""
    events = vault.store.audit_events(item_id=item.id, action="archive", limit=1000)
    last = next((e for e in reversed(events) if e.version == item.version), None)
    reason = (last.details.get("reason") or "") if last else ""
    return isinstance(reason, str) and reason.startswith(REASON_PREFIX)


def plan_forget(vault: "Vault", policy: ForgetPolicy = ForgetPolicy(), *,
                now: Any = None, active: Iterable[MemoryItem] | None = None
                ) -> list[ForgetDecision]:
    """What :func:`forget` would do at ``now``; reads only. ``active`` (every current
    active memory) saves the scan when the caller has just made one."""
    now = parse_time(now, field="now") if now is not None else utcnow()
    if active is None:
        vault.flush()  # heat needs the buffered access counts
        active = iter_items(vault.store)
    out: list[ForgetDecision] = []
    for item in active:
        found = _archive_reason(item, policy, now)
        if found:
            out.append(ForgetDecision(item.id, item.version, "archive", *found))
    if policy.purge_after_days is not None:
        for item in iter_items(vault.store, statuses=("archived",)):
            archived_at = item.valid_from or now
            days = (now - archived_at).total_seconds() / _DAY
            if days >= policy.purge_after_days and _forgotten_by_policy(vault, item):
                out.append(ForgetDecision(
                    item.id, item.version, "purge", "grace",
                    f"{REASON_PREFIX} archived {days:.1f} days ago "
                    f"(grace {policy.purge_after_days:g} days)"))
    return out


def forget(vault: "Vault", policy: ForgetPolicy = ForgetPolicy(), *, dry_run: bool = False,
           now: Any = None, active: Iterable[MemoryItem] | None = None) -> ForgetReport:
    """Apply the policy: archive what expired or went cold, purge what outlived its grace.

    Each move is its own audited transaction; a memory that changed since it was read
    (updated, restored, purged by someone else) is skipped, not forced.
    """
    decisions = plan_forget(vault, policy, now=now, active=active)
    if dry_run:
        return ForgetReport(dry_run=True, decisions=decisions)
    return apply_forget(vault, decisions)


def apply_forget(vault: "Vault", decisions: list[ForgetDecision]) -> ForgetReport:
    """Carry out planned decisions; one whose memory has a newer version is skipped."""
    report = ForgetReport(dry_run=False, decisions=decisions)
    for d in decisions:
        rows = vault.store.select(RowQuery(ids=[d.item_id], statuses=None, limit=1))
        if not rows or rows[0].item.version != d.version:
            report.skipped[d.item_id] = "changed since it was judged"
            continue
        try:
            if d.action == "archive":
                vault.archive(d.item_id, reason=d.reason)
            else:
                vault.purge(d.item_id, reason=d.reason)
        except (Conflict, NotFound) as exc:
            report.skipped[d.item_id] = exc.message
    return report
