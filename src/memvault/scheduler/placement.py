"""Promotion, demotion and distillation decisions, from heat.

Per owner scope (user, agent, cube) the hottest active memories form the activation
block. Rebuilding a block costs a prefill, so a block is rebuilt only when one of its
members changed or left, or when enough of the hot set is new (hysteresis); a scope
with nothing hot loses its block. Memories that are hot, read often, and unchanged for
a while are queued for LoRA distillation once per version. Distillation runs first, so
that a pass which waits for it (``wait``) builds the blocks under the new adapter; a tier
that can tell a block went out of date otherwise (:class:`CheckedActivationTier`: the
scope's adapter changed) gets it rebuilt too. Finished distillations are collected from a
:class:`ManagedParametricTier` and audited as ``distilled`` / ``distill_failed``.

The scheduler's own state (which block holds what, what was queued) is kept as JSON in
the store's meta table, so it survives restarts and is shared by processes on one store.
Every move is an audit row: ``promote``, ``demote``, ``queue_distill``, and a queued
job's outcome ``distilled`` / ``distill_failed`` / ``distill_superseded``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import InvalidInput, MemvaultError
from ..storage.base import AuditOp
from ..types import MemoryItem
from ._scan import OWNER_FIELDS, scope_of
from .tiers import (ActivationTier, CheckedActivationTier, ManagedParametricTier,
                    ParametricTier)

if TYPE_CHECKING:
    from ..vault import Vault

__all__ = ["PlacementConfig", "PlacementReport", "place"]

ACTIVATION_KEY = "scheduler.activation"
PARAMETRIC_KEY = "scheduler.parametric"
_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class PlacementConfig:
    #: Memories per activation block (the hottest of the scope).
    promote_top: int = 8
    #: Minimum heat to be promoted (a fresh, never-read memory has heat 1.0).
    promote_min_heat: float = 1.5
    #: Share of the block that must be new before a still-valid block is rebuilt.
    rebuild_fraction: float = 0.25
    distill_min_heat: float = 2.0
    distill_min_access: int = 5
    #: Days a version must have stayed unchanged before it is distilled.
    distill_stable_days: float = 7.0
    distill_kinds: tuple[str, ...] = ("fact", "preference", "profile", "note", "summary")

    def __post_init__(self) -> None:
        if not 0 < self.promote_top <= 1000:
            raise InvalidInput("promote_top must be in 1..1000", field="promote_top")
        if not 0 < self.rebuild_fraction <= 1:
            raise InvalidInput("rebuild_fraction must be in (0, 1]", field="rebuild_fraction")


@dataclass(slots=True)
class PlacementReport:
    promoted: list[dict[str, Any]] = field(default_factory=list)
    demoted: list[dict[str, Any]] = field(default_factory=list)
    queued: list[dict[str, Any]] = field(default_factory=list)
    #: Distillations that finished (``key``) or failed (``error``) since the last pass.
    distilled: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"promoted": self.promoted, "demoted": self.demoted, "queued": self.queued,
                "distilled": self.distilled, "errors": self.errors}


def _load(vault: "Vault", key: str) -> dict[str, Any]:
    try:
        value = json.loads(vault.store.meta().get(key, "{}"))
    except ValueError:
        value = {}  # a damaged state only costs a rebuild, never the run
    return value if isinstance(value, dict) else {}


def _needs_rebuild(block: dict[str, Any] | None, hot: Sequence[MemoryItem],
                   current: dict[str, int], cfg: PlacementConfig) -> bool:
    if block is None:
        return True
    members = {m[0]: m[1] for m in block.get("members", [])}
    if any(current.get(i) != v for i, v in members.items()):
        return True  # a member changed (new version) or is no longer active
    new = sum(1 for item in hot if item.id not in members)
    return new >= max(1, math.ceil(cfg.rebuild_fraction * cfg.promote_top))


def _activation(vault: "Vault", tier: ActivationTier,
                ranked: dict[str, list[tuple[MemoryItem, float]]], cfg: PlacementConfig,
                report: PlacementReport) -> None:
    state = _load(vault, ACTIVATION_KEY)
    for owner in sorted(set(ranked) | set(state)):
        scored = ranked.get(owner, [])
        hot = [(i, h) for i, h in scored if h >= cfg.promote_min_heat][:cfg.promote_top]
        current = {i.id: i.version for i, _ in scored}
        block = state.get(owner)
        scope = scope_of(owner, OWNER_FIELDS)
        try:
            outdated = (block is not None and isinstance(tier, CheckedActivationTier)
                        and not tier.current(scope, block["block_id"]))
            if hot and (outdated or _needs_rebuild(block, [i for i, _ in hot], current, cfg)):
                items = [i for i, _ in hot]
                block_id = tier.promote(scope, items)
                vault.store.apply([AuditOp("promote", None, None, vault.actor, {
                    "tier": "activation", "scope": scope, "block_id": block_id,
                    "items": [i.id for i in items], "heat": [round(h, 4) for _, h in hot]})])
                report.promoted.append({"scope": scope, "block_id": block_id,
                                        "items": [i.id for i in items]})
                state[owner] = {"block_id": block_id,
                                "members": [[i.id, i.version] for i in items]}
                vault.store.set_meta(ACTIVATION_KEY, json.dumps(state, sort_keys=True))
                if block is not None and block.get("block_id") != block_id:
                    _demote(vault, tier, scope, block, "replaced", report)
            elif not hot and block is not None:
                del state[owner]
                vault.store.set_meta(ACTIVATION_KEY, json.dumps(state, sort_keys=True))
                _demote(vault, tier, scope, block, "nothing hot", report)
        except MemvaultError as exc:  # one scope's failure does not stop the others
            report.errors.append(f"activation {scope}: {exc.code}: {exc.message}")


def _demote(vault: "Vault", tier: ActivationTier, scope: dict[str, Any],
            block: dict[str, Any], why: str, report: PlacementReport) -> None:
    tier.demote(block["block_id"])
    vault.store.apply([AuditOp("demote", None, None, vault.actor, {
        "tier": "activation", "scope": scope, "block_id": block["block_id"], "reason": why})])
    report.demoted.append({"scope": scope, "block_id": block["block_id"], "reason": why})


def _parametric(vault: "Vault", tier: ParametricTier,
                ranked: dict[str, list[tuple[MemoryItem, float]]], now: datetime,
                cfg: PlacementConfig, report: PlacementReport) -> None:
    """Queue newly stable hot memories; re-distil a scope whose distilled memories changed
    or left (their old text must leave the weights too), or drop its adapter when none of
    them is left."""
    state = _load(vault, PARAMETRIC_KEY)
    for owner in sorted(set(ranked) | set(state)):
        scored = ranked.get(owner, [])
        done = {tuple(m) for m in state.get(owner, [])}
        live = {i.id: i for i, _ in scored}
        ready = [i for i, h in scored
                 if h >= cfg.distill_min_heat and i.access_count >= cfg.distill_min_access
                 and i.kind in cfg.distill_kinds and (i.id, i.version) not in done
                 and i.valid_from is not None
                 and (now - i.valid_from).total_seconds() >= cfg.distill_stable_days * _DAY]
        changed = sorted(m[0] for m in done if m[0] not in live or live[m[0]].version != m[1])
        if not ready and not changed:
            continue
        scope = scope_of(owner, OWNER_FIELDS)
        items = list({i.id: i for i in [*ready, *(live[m[0]] for m in sorted(done)
                                                   if m[0] in live)]}.values())
        try:
            if not items:
                _drop(vault, tier, scope, changed, report)
                state.pop(owner, None)
                vault.store.set_meta(PARAMETRIC_KEY, json.dumps(state, sort_keys=True))
                continue
            job = tier.queue(scope, items if changed else ready)
        except MemvaultError as exc:
            report.errors.append(f"parametric {scope}: {exc.code}: {exc.message}")
            continue
        ids = [i.id for i in (items if changed else ready)]
        details = {"tier": "parametric", "scope": scope, "job": job, "items": ids}
        if changed:
            details["changed"] = changed
        vault.store.apply([AuditOp("queue_distill", None, None, vault.actor, details)])
        report.queued.append({k: v for k, v in details.items() if k != "tier"})
        state[owner] = sorted((i.id, i.version) for i in items)
        vault.store.set_meta(PARAMETRIC_KEY, json.dumps(state, sort_keys=True))


def _drop(vault: "Vault", tier: ParametricTier, scope: dict[str, Any], gone: list[str],
          report: PlacementReport) -> None:
    if not isinstance(tier, ManagedParametricTier):
        return  # the tier cannot drop: forget the bookkeeping only
    dropped = tier.drop(scope)
    vault.store.apply([AuditOp("demote", None, None, vault.actor, {
        "tier": "parametric", "scope": scope, "adapter": dropped, "items": gone,
        "reason": "its memories are gone"})])
    report.demoted.append({"scope": scope, "adapter": dropped,
                           "reason": "its memories are gone"})


def _collect(vault: "Vault", tier: ManagedParametricTier, timeout: float | None,
             report: PlacementReport) -> None:
    for doc in tier.collect(timeout):
        action = ("distilled" if "key" in doc else
                  "distill_superseded" if doc.get("superseded") else "distill_failed")
        vault.store.apply([AuditOp(action, None, None, vault.actor,
                                   {"tier": "parametric", **doc})])
        report.distilled.append(doc)
        if action == "distill_failed":
            report.errors.append(f"parametric {doc.get('scope')}: {doc['error']}")


def place(vault: "Vault", ranked: dict[str, list[tuple[MemoryItem, float]]], now: datetime,
          config: PlacementConfig, *, activation: ActivationTier | None = None,
          parametric: ParametricTier | None = None,
          wait: float | bool = False) -> PlacementReport:
    """Distillation queueing (parametric), then promotion/demotion (activation).

    ``ranked`` maps an owner key to its active memories with heat, hottest first.
    ``wait``: True (or a number of seconds) waits for the distillations queued so far
    before placing blocks; False only reports those already finished."""
    report = PlacementReport()
    if parametric is not None:
        _parametric(vault, parametric, ranked, now, config, report)
        if isinstance(parametric, ManagedParametricTier):
            timeout = (None if wait is True else float(wait)) if wait is not False else 0.0
            _collect(vault, parametric, timeout, report)
    if activation is not None:
        _activation(vault, activation, ranked, config, report)
    return report
