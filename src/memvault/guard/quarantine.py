"""Quarantine: how the injection guard's verdicts become memory state.

A write the guard flags is still stored (nothing a caller sends is silently dropped), but
with status ``quarantined``: search, which serves ``active`` memories only, never returns
it, so it cannot reach a prompt until someone reviews and releases it.

The verdict lives in the item's ``provenance["guard"]`` (score, families, reasons, the
guard's id). Provenance is carried from version to version and callers cannot set this
key (a caller-supplied ``guard`` entry is dropped on every write), so the verdict
survives updates and a release records who let the memory through. A released memory
that is later deleted and restored comes back active; an unreleased one comes back
quarantined.

The functions here are what :class:`~memvault.Vault` calls on its write path, the review
calls (list, release) are the vault's and a ScopedVault's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from ..errors import ConfigurationError
from ..types import MemoryItem, utcnow
from .screen import InjectionGuard, Screen

__all__ = ["GUARD_MODES", "guard_for", "screen_new", "screen_text", "screen_imported",
           "restored_status", "released_provenance", "verdict_of"]

GUARD_MODES = ("on", "off")
KEY = "guard"


def guard_for(mode: str) -> Screen | None:
    """The guard a vault uses for ``Settings.guard`` ("on" or "off")."""
    if mode not in GUARD_MODES:
        raise ConfigurationError(f"guard must be one of {GUARD_MODES}, not {mode!r}")
    return InjectionGuard() if mode == "on" else None


def _without_verdict(provenance: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in provenance.items() if k != KEY}


def _record(guard: Screen, text: str) -> dict[str, Any] | None:
    verdict = guard.check(text)
    if not verdict.flagged:
        return None
    return {"guard": guard.id, **verdict.to_dict(), "at": utcnow().isoformat()}


def screen_new(guard: Screen | None, items: Sequence[MemoryItem]) -> list[MemoryItem]:
    """New items as they should be stored: flagged ones quarantined with their verdict."""
    out = []
    for item in items:
        provenance = _without_verdict(item.provenance)
        verdict = _record(guard, item.text) if guard is not None else None
        if verdict is None:
            out.append(item if provenance == item.provenance
                       else dataclasses.replace(item, provenance=provenance))
        else:
            out.append(dataclasses.replace(item, status="quarantined",
                                           provenance={**provenance, KEY: verdict}))
    return out


def screen_imported(guard: Screen | None, item: MemoryItem) -> MemoryItem:
    """A version arriving from elsewhere (a MemCube load), screened like a write.

    Its status is never trusted to *release*: the source may have had the guard off, may
    have released the memory by its own review, or may have flipped ``quarantined`` to
    ``active`` by hand. So flagged text is quarantined whatever the source said (with a
    fresh verdict: a release recorded elsewhere is not a release here), and a version that
    carries a verdict nobody released goes back to quarantine even when this guard is off
    or passes it. A source's ``quarantined`` always stays. Deleted and archived versions
    keep their status but get the verdict, so a later restore brings them back held.
    """
    verdict = _record(guard, item.text) if guard is not None else None
    if verdict is not None:
        return dataclasses.replace(
            item, status="quarantined" if item.status == "active" else item.status,
            provenance={**_without_verdict(item.provenance), KEY: verdict})
    if item.status == "active" and restored_status(item) == "quarantined":
        return dataclasses.replace(item, status="quarantined")
    return item


def screen_text(guard: Screen | None, current: MemoryItem, text: str) -> dict[str, Any]:
    """Extra changes for an update that replaces the text: quarantine it if flagged.

    A flagged new text quarantines the memory again even if an earlier version was
    released; a clean one leaves status and verdict as they are (a held memory stays held
    until someone releases it)."""
    if guard is None or current.status == "deleted":
        return {}
    verdict = _record(guard, text)
    if verdict is None:
        return {}
    return {"status": "quarantined",
            "provenance": {**_without_verdict(current.provenance), KEY: verdict}}


def verdict_of(item: MemoryItem) -> dict[str, Any] | None:
    value = item.provenance.get(KEY)
    return value if isinstance(value, dict) else None


def restored_status(item: MemoryItem) -> str:
    """Where ``restore`` takes a memory: back to quarantine if it was never released."""
    verdict = verdict_of(item)
    return "quarantined" if verdict is not None and "released_at" not in verdict else "active"


def released_provenance(item: MemoryItem, actor: str | None,
                        reason: str | None) -> dict[str, Any]:
    verdict = dict(verdict_of(item) or {})
    verdict.update({"released_at": utcnow().isoformat(), "released_by": actor})
    if reason:
        verdict["release_reason"] = reason
    return {**item.provenance, KEY: verdict}


def audit_note(item: MemoryItem) -> dict[str, Any]:
    """What an ``add`` audit row says about quarantine (nothing for a clean write)."""
    verdict = verdict_of(item) if item.status == "quarantined" else None
    if verdict is None:
        return {}
    return {"quarantined": True, "guard_score": verdict.get("score"),
            "families": verdict.get("families")}
