"""Quarantine: how the injection guard's verdicts become memory state.

The guard reads a memory's text and every string of its metadata and tags (an agent
reads those back too). A write the guard flags is still stored (nothing a caller sends is silently dropped), but
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
import itertools
from typing import Any, Iterator, Mapping, Sequence

from ..errors import ConfigurationError
from ..types import MemoryItem, utcnow
from .screen import InjectionGuard, Screen

__all__ = ["GUARD_MODES", "guard_for", "screen_new", "screen_text", "screen_changes",
           "restored_status", "released_provenance", "verdict_of", "MAX_FIELD_STRINGS"]

GUARD_MODES = ("on", "off")
KEY = "guard"


def guard_for(mode: str) -> Screen | None:
    """The guard a vault uses for ``Settings.guard`` ("on" or "off")."""
    if mode not in GUARD_MODES:
        raise ConfigurationError(f"guard must be one of {GUARD_MODES}, not {mode!r}")
    return InjectionGuard() if mode == "on" else None


def _without_verdict(provenance: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in provenance.items() if k != KEY}


#: At most this many strings of a memory's metadata (keys and values, at any depth) and
#: tags are screened besides its text; the store bounds metadata to 16 KiB anyway.
MAX_FIELD_STRINGS = 512


def _field_strings(metadata: Mapping[str, Any] | None,
                   tags: Sequence[str] | None) -> Iterator[tuple[str, str]]:
    """(where, string) for each tag and each string in ``metadata`` (keys too, nested
    objects and lists walked without recursion), at most :data:`MAX_FIELD_STRINGS`."""
    count = 0
    for tag in tags or ():
        if count == MAX_FIELD_STRINGS:
            return
        count += 1
        yield "tags", tag
    stack: list[tuple[str, Any]] = [("metadata", metadata or {})]
    while stack and count < MAX_FIELD_STRINGS:
        where, value = stack.pop()
        if isinstance(value, str):
            count += 1
            yield where, value
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                path = f"{where}.{key}"
                if isinstance(key, str) and count < MAX_FIELD_STRINGS:
                    count += 1
                    yield path, key
                stack.append((path, inner))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", inner) for i, inner in enumerate(value))


def _record(guard: Screen, text: str | None, metadata: Mapping[str, Any] | None = None,
            tags: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The verdict to keep if the text, or any string of the metadata or tags, is
    flagged (the first one found; ``field`` names it when it is not the text). An agent
    reads all three back, so an instruction hidden in a tag is as dangerous as one in
    the text."""
    candidates: Iterator[tuple[str, str]] = _field_strings(metadata, tags)
    if text is not None:
        candidates = itertools.chain([("text", text)], candidates)
    for where, value in candidates:
        verdict = guard.check(value)
        if verdict.flagged:
            found = {"guard": guard.id, **verdict.to_dict(), "at": utcnow().isoformat()}
            return found if where == "text" else {**found, "field": where}
    return None


def screen_new(guard: Screen | None, items: Sequence[MemoryItem]) -> list[MemoryItem]:
    """New items as they should be stored: flagged ones (text, metadata or tags)
    quarantined with their verdict."""
    out = []
    for item in items:
        provenance = _without_verdict(item.provenance)
        verdict = _record(guard, item.text, item.metadata, item.tags) \
            if guard is not None else None
        if verdict is None:
            out.append(item if provenance == item.provenance
                       else dataclasses.replace(item, provenance=provenance))
        else:
            out.append(dataclasses.replace(item, status="quarantined",
                                           provenance={**provenance, KEY: verdict}))
    return out


def screen_text(guard: Screen | None, current: MemoryItem, text: str) -> dict[str, Any]:
    """Extra changes for an update that replaces the text: quarantine it if flagged."""
    return screen_changes(guard, current, {"text": text})


def screen_changes(guard: Screen | None, current: MemoryItem,
                   changes: Mapping[str, Any]) -> dict[str, Any]:
    """Extra changes for an update: quarantine the memory if a new text, metadata or tags
    is flagged (only what changes is screened).

    A flagged change quarantines the memory again even if an earlier version was
    released; a clean one leaves status and verdict as they are (a held memory stays held
    until someone releases it)."""
    if guard is None or current.status == "deleted" or \
            not {"text", "metadata", "tags"} & set(changes):
        return {}
    verdict = _record(guard, changes.get("text"), changes.get("metadata"), changes.get("tags"))
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
