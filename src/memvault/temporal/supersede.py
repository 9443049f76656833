"""Supersession: a new statement closes the valid time of the earlier one it replaces.

Called by the vault on every write, inside the write's transaction, for turns and facts
alike: when a new memory states that a person's single-valued attribute changed ("I moved
to Porto" after "I live in Lisbon"), or that it ended ("I quit Deloitte"), the earlier
memory gets a new version whose ``invalid_at`` is the new statement's ``valid_at``, and a
``supersedes`` link from the new memory to it. Nothing is deleted: the old memory still
answers "where did she live in March?", and history shows when the vault learned it.

Order does not matter: a statement ingested late (an old chat imported after a newer one)
is itself closed at the start of the later statement instead of closing it. A correction
("actually it's Braga") closes the corrected statement where it began: as now believed,
it never held. Restating the same value changes nothing.

Who a statement is about: the speaker (first person; by their handle and by the name
they introduced themselves with, "I'm Maya") or a named person (third person, "Maya moved
to Porto", resolved through the same names). Other people's changes never close the
speaker's statements. The keys each memory carries are in ``provenance["truth_keys"]``
(what the store indexes) and the statements in ``provenance["truth"]``.
"""

from __future__ import annotations

import dataclasses
import re
from bisect import bisect_left
from datetime import datetime
from typing import Any, Iterable, Sequence

from ..storage.base import AuditOp, InsertVersion, LinkOp, RecordStore, RowQuery
from ..types import WORKING_KINDS, MemoryItem
from .statements import Statement, addressed, self_name, statements
from .topics import CORRECTION, about, attributes

__all__ = ["annotate", "forget", "plan", "topic_keys", "LINK_KIND", "KEYS", "TRUTH", "TOPIC_KEY"]

LINK_KIND = "supersedes"
KEYS = "truth_keys"
TRUTH = "truth"
_OWNER = ("user_id", "agent_id", "cube_id")


def _speaker(item: MemoryItem) -> str:
    """The first person of ``item``: its speaker's handle, else its owner."""
    name = item.metadata.get("speaker")
    if isinstance(name, str) and name.strip():
        return name.strip().lower()
    return (item.user_id or item.agent_id or "user").lower()


def _owner(item: MemoryItem) -> dict[str, str]:
    return {f: getattr(item, f) for f in _OWNER if getattr(item, f) is not None}


class _Names:
    """Who is who in one owner scope: speaker handles and the names they go by."""

    def __init__(self, store: RecordStore, owner: dict[str, str]) -> None:
        self.store, self.owner = store, owner
        self.alias: dict[str, set[str]] = {}  # handle -> names, name -> handles

    def learn(self, handle: str, name: str) -> None:
        self.alias.setdefault(handle, set()).add(name)
        self.alias.setdefault(name, set()).add(handle)

    def lookup(self, who: str) -> set[str]:
        """``who`` and everyone known to be the same person (asks the store once)."""
        if who not in self.alias:
            self.alias[who] = set()
            rows = self.store.select(RowQuery(scope=dict(self.owner), truth_any=[f"alias|{who}"],
                                              limit=20))
            for row in rows:
                for s in row.item.provenance.get(TRUTH, []):
                    if s.get("a") == "alias":
                        self.learn(s["s"], s["v"])
        return {who} | self.alias.get(who, set())


_NAME_LIKE = re.compile(r"[A-Z][a-z'-]+(?: [A-Z][a-z'-]+){0,3}")


def _greeted(items: Sequence[MemoryItem]) -> dict[str, tuple[str, str]]:
    """Item id -> (listener's handle, name) for the turns of a two-person session that
    greet the listener by a name ("Hey Nikolai!") while the listener's handle is not a
    name (a phone number, "mk_92"): real messaging exports name people by handles, and
    the people in them call each other by name. A handle that already is a name keeps
    it: "Hey Mel!" to Melanie is a nickname, not who she is."""
    sessions: dict[tuple[Any, ...], list[MemoryItem]] = {}
    for item in items:
        sid = item.session_id
        if item.kind == "turn" and sid and isinstance(item.metadata.get("speaker"), str):
            sessions.setdefault((tuple(sorted(_owner(item).items())), sid), []).append(item)
    out: dict[str, tuple[str, str]] = {}
    for turns in sessions.values():
        speakers = {_speaker(t) for t in turns}
        if len(speakers) != 2:
            continue
        for t in turns:
            name = addressed(t.text)
            me = _speaker(t)
            (other,) = speakers - {me}
            raw = next(str(u.metadata["speaker"]).strip() for u in turns if _speaker(u) == other)
            if name and name != me and not _NAME_LIKE.fullmatch(raw):
                out[t.id] = (other, name)
    return out


TOPICS = "topics"


def _corrections(items: Sequence[MemoryItem]) -> list[MemoryItem]:
    """``items``, a correction ("Oops, not Lisbon: Porto!") carrying in
    ``provenance["topics"]`` the attributes of its speaker's previous turn in the batch,
    the statement it corrects: its own words name none (``topics.about`` reads them)."""
    last: dict[tuple[Any, str], MemoryItem] = {}
    out: list[MemoryItem] = []
    for item in items:
        if item.kind == "turn":
            who = (item.session_id, _speaker(item))
            prev = last.get(who)
            if prev is not None and CORRECTION.search(item.text):
                found = sorted(attributes(prev.text))
                if found:
                    item = dataclasses.replace(item, provenance={**item.provenance,
                                                                 TOPICS: found})
            last[who] = item
        out.append(item)
    return out


def annotate(item: MemoryItem, names: _Names,
             greets: tuple[str, str] | None = None) -> MemoryItem:
    """``item`` with its statements recorded in provenance and, when a statement gives the
    date of its change ("I moved here in July"), ``valid_at`` moved back to that date.
    ``greets``: (listener's handle, name) when the turn greets its listener by name."""
    if item.kind in WORKING_KINDS:  # an agent's files and tasks state no facts
        return item
    speaker = _speaker(item)
    said = item.event_time or item.valid_at or item.created_at
    raw = item.metadata.get("speaker")
    handle = isinstance(raw, str) and not _NAME_LIKE.fullmatch(raw.strip())
    intro = self_name(item.text, handle=handle) if item.kind == "turn" else None
    if intro:
        names.learn(speaker, intro)
    if item.kind == "turn" and isinstance(item.metadata.get("speaker"), str):
        known = sorted(names.lookup(speaker) - {speaker})
        if len(known) == 1:  # the speaker is a handle with one known name
            item = dataclasses.replace(
                item, provenance={**item.provenance, "speaker_name": known[0].title()})
    found = statements(item.text, said=said)
    keys = topic_keys(item, speaker, names)
    if not found and not intro and not greets and not keys:
        return item
    truth: list[dict[str, Any]] = []
    if intro:
        truth.append({"s": speaker, "a": "alias", "v": intro, "h": True})
        keys |= {f"alias|{intro}", f"alias|{speaker}"}
    if greets:
        truth.append({"s": greets[0], "a": "alias", "v": greets[1], "h": True})
        keys |= {f"alias|{greets[1]}", f"alias|{greets[0]}"}
    valid_at = item.valid_at
    for s in found:
        subjects = names.lookup(s.subject or speaker)
        truth.append({"s": sorted(subjects), "a": s.attribute, "v": s.value, "h": s.holds,
                      "c": s.correction, "single": s.single})
        keys |= {f"{who}|{s.attribute}" for who in subjects}
        if s.when is not None and (valid_at is None or s.when < valid_at):
            valid_at = s.when
    provenance = {**item.provenance, TRUTH: truth, KEYS: sorted(keys)}
    return dataclasses.replace(item, provenance=provenance, valid_at=valid_at)


#: Prefix of the keys that say what a memory asserts something about ("topic|maya|home"):
#: the read path's topic prior finds a person's statements about an attribute by them,
#: however few words they share with the question. They close nothing.
TOPIC_KEY = "topic|"


def topic_keys(item: MemoryItem, speaker: str, names: _Names) -> set[str]:
    """``topic|<who>|<attribute>`` for what ``item`` asserts about its speaker (by every
    name the speaker is known by) or a known person (:func:`.topics.about`)."""
    if item.kind in WORKING_KINDS:
        return set()
    mine = names.lookup(speaker)
    said = about(item.text, speaker=speaker, names=mine,
                 inherited=item.provenance.get(TOPICS) or ())
    return {f"{TOPIC_KEY}{n}|{a}" for who, attrs in said.items() for a in attrs
            for n in (mine if who in mine else {who})}


def forget(provenance: dict[str, Any]) -> dict[str, Any]:
    """``provenance`` without the statements of an older text (an update re-reads them)."""
    return {k: v for k, v in provenance.items()
            if k not in (TRUTH, KEYS, TOPICS, "speaker_name")}


def _closes(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Does statement ``new`` end statement ``old`` (same subject and attribute)?"""
    if not old.get("h") or old.get("a") != new.get("a") or new.get("a") == "alias":
        return False
    if not set(old["s"]) & set(new["s"]):
        return False
    if not new.get("h"):  # "I quit Deloitte" ends Deloitte; "I quit my job" ends any
        return new.get("v") is None or new.get("v") == old.get("v")
    return bool(new.get("single")) and new.get("v") != old.get("v")


def _pairs(new: MemoryItem, old: MemoryItem) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for n in new.provenance.get(TRUTH, []):
        for o in old.provenance.get(TRUTH, []):
            if _closes(n, o):
                yield n, o


def _start(item: MemoryItem) -> datetime:
    return item.valid_at or item.valid_from or item.created_at  # type: ignore[return-value]


def plan(store: RecordStore, items: Sequence[MemoryItem], *, actor: str | None,
         now: datetime) -> tuple[list[MemoryItem], list[Any]]:
    """Annotate ``items`` (new memories about to be written) and return them with the
    operations that close what they supersede (to apply in the same transaction)."""
    by_owner: dict[tuple[tuple[str, str], ...], _Names] = {}
    greeted = _greeted(items)
    for item in items:  # names first: a greeting names its listener's earlier turns too
        if item.id in greeted:
            owner = _owner(item)
            names = by_owner.setdefault(tuple(sorted(owner.items())), _Names(store, owner))
            names.learn(*greeted[item.id])
    out: list[MemoryItem] = []
    for item in _corrections(items):
        owner = _owner(item)
        names = by_owner.setdefault(tuple(sorted(owner.items())), _Names(store, owner))
        out.append(annotate(item, names, greeted.get(item.id)))
    if not any(i.provenance.get(TRUTH) for i in out):
        return out, []
    closes: dict[str, tuple[datetime, str]] = {}  # stored id -> (invalid_at, by)
    batch_links: list[Any] = []
    stored: dict[str, Any] = {}
    # positions in ``out`` per owner, so that each item looks at the earlier items of its
    # owner only (comparing every pair of a batch was quadratic in the batch size)
    owners = [tuple(sorted(_owner(i).items())) for i in out]
    of_owner: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for idx, key in enumerate(owners):
        of_owner.setdefault(key, []).append(idx)
    for idx, item in enumerate(out):
        keys = [k for k in item.provenance.get(KEYS, [])
                if not k.startswith(("alias|", TOPIC_KEY))]
        if not keys:
            continue
        mine = of_owner[owners[idx]]
        earlier = [(None, out[j]) for j in mine[:bisect_left(mine, idx)]]
        rows = store.select(RowQuery(scope=_owner(item), truth_any=keys, limit=200))
        earlier += [(r, r.item) for r in rows if r.item.id != item.id]
        for row, old in earlier:
            for n, _o in _pairs(item, old):
                start_new, start_old = _start(item), _start(old)
                end = start_old if n.get("c") else start_new  # a correction: never held
                if start_old <= start_new:
                    if old.invalid_at is not None and old.invalid_at <= end:
                        continue
                    if row is None:
                        j = next(i for i, o in enumerate(out) if o.id == old.id)
                        out[j] = dataclasses.replace(out[j], invalid_at=end)
                        batch_links.append(LinkOp(item.id, old.id, LINK_KIND))
                    else:
                        prev = closes.get(old.id)
                        if prev is None or end < prev[0]:
                            closes[old.id] = (end, item.id)
                            stored[old.id] = row
                elif item.invalid_at is None or start_old < item.invalid_at:
                    out[idx] = item = dataclasses.replace(item, invalid_at=start_old)
    ops: list[Any] = list(batch_links)
    for old_id, (end, by) in closes.items():
        row = stored[old_id]
        old = row.item
        version = dataclasses.replace(old, version=old.version + 1, valid_from=now,
                                      valid_to=None, invalid_at=end, access_count=0,
                                      last_accessed_at=None, links=(),
                                      valid_at=old.valid_at or old.valid_from)
        ops += [InsertVersion(version, None, row.content_hash, expected_version=old.version),
                AuditOp("supersede", old.id, version.version, actor,
                        {"by": by, "invalid_at": end.isoformat()}),
                LinkOp(by, old.id, LINK_KIND)]
    return out, ops


def statement_of(item: MemoryItem) -> list[Statement]:
    """The statements recorded on ``item`` (for display and tests)."""
    return [Statement("|".join(s["s"]) if isinstance(s["s"], list) else s["s"], s["a"],
                      s.get("v"), bool(s.get("h")), bool(s.get("c")))
            for s in item.provenance.get(TRUTH, [])]
