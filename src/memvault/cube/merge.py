"""Importing a cube's plaintext into a record store: the id-collision rules of load/compose.

Each cube memory is compared with the target's memory of the same id, version by version,
on content (text, kind, scope, metadata, tags, times, status, importance, content hash;
not provenance, which compose annotates, nor heat):

* absent from the target      -> imported with every version (``valid_from``/``valid_to``
                                  as in the cube, so ``as_of`` answers stay the same);
* identical history           -> skipped;
* the target's history is a prefix of the cube's -> fast-forward: the newer versions are
                                  appended (a cube dumped later from the same vault);
* the cube's is a prefix of the target's -> skipped (the target is already newer);
* diverged (both changed)     -> the policy decides:
    ``fail`` (default) Conflict naming the ids, nothing written;
    ``ours``       keep the target's memory, skip the cube's;
    ``theirs``     the cube's current state becomes a new version on top of the target's
                   (the target's history is kept below it); refused (Conflict) when the
                   two belong to different scopes: a cube may not take over another
                   user's memory;
    ``keep-both``  the cube's memory is imported under a derived id ``<id>:<12 hex>``
                   (deterministic, so loading twice is idempotent) with a
                   ``diverged_from`` link to the original.

Screening (a load passes ``screen``, compose does not): every version the load *writes*
goes through the target's injection guard like a write does
(:func:`~memvault.guard.quarantine.screen_imported`): a cube's status never releases a
memory. The comparison with the target uses the cube's rows as they are and as screened:
if either is identical to (or a prefix of, or extended by) the target's history, that
relation holds, so reloading a cube whose memories the guard held back stays idempotent.

Every link of the cube is (re)applied, also between memories that were skipped, but only
when both endpoints are the cube's memory in the target (new, copied under keep-both,
fast-forwarded, replaced by ``theirs``, or with the same history). A link touching a
memory the target kept under ``ours`` is dropped and reported: the cube's memory of that
id was not taken, so its links would attach the cube's memories to the target's own
(a stub carrying an existing id X plus a link X -> M would link the real X to M). A load
adds links and updates their weights, it never removes one (unlink is not carried).
Everything is written in ONE ``store.apply`` (one transaction): a refused cube changes
nothing. The cube's audit events are replayed with their original seq/time kept in
``details["origin"]`` (an existing origin is kept, so it survives compose then load), and
each written memory gets a ``cube_load`` audit event naming the cube and the outcome.
Access counts are added afterwards (heat is advisory, as elsewhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Callable, Sequence

from .._time import from_epoch
from ..errors import Conflict, InvalidInput
from ..storage.base import AuditOp, InsertVersion, LinkOp, RecordStore, RowQuery, WriteOp
from ..types import MemoryItem, utcnow
from .plaintext import Plaintext, raw_item

__all__ = ["POLICIES", "import_plaintext", "derived_id", "content_key"]

Pairs = list[tuple[MemoryItem, str]]  # (version, content hash), oldest first

POLICIES = ("fail", "ours", "theirs", "keep-both")
_HASH = 20


def derived_id(item_id: str, cube_id: str) -> str:
    """The id a diverged copy of ``item_id`` from ``cube_id`` gets (valid, <= 128 chars)."""
    tag = hashlib.sha256(f"{cube_id}\x00{item_id}".encode()).hexdigest()[:12]
    return f"{item_id[:115]}:{tag}"


def content_key(item: MemoryItem, digest: str) -> tuple:
    """What makes two versions 'the same': content and validity start, not heat/provenance."""
    d = item.to_dict()
    for name in ("provenance", "valid_to", "access_count", "last_accessed_at", "links", "id"):
        d.pop(name)
    return (json.dumps(d, sort_keys=True, default=str), digest)


def _target_histories(store: RecordStore, ids: Sequence[str]
                      ) -> dict[str, list[tuple[MemoryItem, str]]]:
    out: dict[str, list[tuple[MemoryItem, str]]] = {}
    ids = list(ids)
    for i in range(0, len(ids), 500):
        for row in store.select(RowQuery(ids=ids[i:i + 500], statuses=None, all_versions=True,
                                         order="seq_asc")):
            out.setdefault(row.item.id, []).append((row.item, row.content_hash))
    return out


def _relation(ours: Pairs, theirs: Pairs) -> str:
    a = [content_key(i, h) for i, h in ours]
    b = [content_key(i, h) for i, h in theirs]
    if a == b:
        return "identical"
    if len(a) < len(b) and b[:len(a)] == a:
        return "fast-forward"
    if len(b) < len(a) and a[:len(b)] == b:
        return "target-newer"
    return "diverged"


class _Plan:
    def __init__(self, p: Plaintext, cube_id: str, actor: str | None,
                 provenance: dict[str, Any] | None) -> None:
        self.p, self.cube_id, self.actor, self.provenance = p, cube_id, actor, provenance
        self.ops: list[WriteOp] = []
        self.inserts: list[tuple[float, InsertVersion]] = []  # (source seq, op)
        self.rename: dict[str, str] = {}
        self.written: dict[str, str] = {}  # id in target -> outcome
        self.since: dict[str, int] = {}  # id in target -> versions it already had
        self.outcome: dict[str, str] = {}  # id in the cube -> relation/policy applied
        self.dropped_links: list[list[str]] = []
        self.held: set[str] = set()  # ids in target whose written versions were quarantined

    def _item(self, item: MemoryItem, new_id: str | None) -> MemoryItem:
        changes: dict[str, Any] = {}
        if new_id:
            changes["id"] = new_id
        if self.provenance:
            changes["provenance"] = {**item.provenance, **self.provenance}
        return dataclasses.replace(item, **changes) if changes else item

    def versions(self, rows: list[tuple], items: Pairs, start: int,
                 new_id: str | None = None) -> None:
        for n, (raw, (item, _)) in enumerate(zip(rows[start:], items[start:]), start=start):
            self.inserts.append((raw[0], InsertVersion(
                self._item(item, new_id), self.p.embedding(raw), raw[_HASH],
                expected_version=n, search_text=raw[4])))

    def on_top(self, rows: list[tuple], items: Pairs, current: MemoryItem) -> None:
        """The cube's current state as a new version above the target's current one."""
        raw = rows[-1]
        item = dataclasses.replace(
            self._item(items[-1][0], None), version=current.version + 1, valid_to=None,
            valid_from=max(utcnow(), current.valid_from or utcnow()),
            provenance={**items[-1][0].provenance, **(self.provenance or {}),
                        "replaced_by_cube": self.cube_id})
        self.inserts.append((float("inf"), InsertVersion(
            item, self.p.embedding(raw), raw[_HASH], expected_version=current.version,
            search_text=raw[4])))

    def finish(self) -> None:
        # versions in the source's global write order: a fresh load then lists, pages and
        # indexes (ties included) exactly like the source
        self.ops = [op for _, op in sorted(self.inserts, key=lambda t: t[0])] + self.ops
        target = lambda i: self.rename.get(i, i)  # noqa: E731
        for item_id, outcome in self.written.items():
            note = {"quarantined": True} if item_id in self.held else {}
            self.ops.append(AuditOp("cube_load", item_id, None, self.actor,
                                    {"cube": self.cube_id, "outcome": outcome, **note}))
        originals = {v: k for k, v in self.rename.items()}
        for renamed, original in originals.items():
            self.ops.append(LinkOp(renamed, original, "diverged_from"))
        mine = {originals.get(i, i) for i in self.written}
        for src, dst, kind, weight, _ in self.p.links:  # upserts: new links on old memories too
            if self.outcome.get(src) == "ours" or self.outcome.get(dst) == "ours":
                self.dropped_links.append([src, dst, kind])  # an endpoint is not the cube's
                continue
            self.ops.append(LinkOp(target(src), target(dst), kind, weight))
        for seq, at, actor, action, item_id, version, details in self.p.audit:
            tid = target(item_id) if item_id is not None else None
            if item_id not in mine or self.written.get(tid) == "theirs":
                continue
            since = self.since.get(tid, 0)  # type: ignore[arg-type]
            if since and (version is None or version <= since):
                continue  # the target has these events already (fast-forward)
            d = json.loads(details)
            d.setdefault("origin", {"cube": self.cube_id, "seq": seq,
                                    "at": from_epoch(at).isoformat()})  # type: ignore[union-attr]
            self.ops.append(AuditOp(action, tid, version, actor, d))


def _screened(rows: list[tuple], screen: Callable[[MemoryItem], MemoryItem] | None
              ) -> tuple[Pairs, Pairs]:
    raw = [(raw_item(r), r[_HASH]) for r in rows]
    if screen is None:
        return raw, raw
    return raw, [(screen(i), h) for i, h in raw]


def _relation_either(have: Pairs, raw: Pairs, screened: Pairs) -> str:
    """Not diverged if the cube's rows as they are, or as screened, fit the target's."""
    rel = _relation(have, raw)
    return _relation(have, screened) if rel == "diverged" and screened is not raw else rel


def import_plaintext(store: RecordStore, p: Plaintext, *, cube_id: str, policy: str = "fail",
                     actor: str | None = None, provenance: dict[str, Any] | None = None,
                     rename: dict[str, str] | None = None,
                     screen: Callable[[MemoryItem], MemoryItem] | None = None
                     ) -> dict[str, Any]:
    """Import ``p`` into ``store`` in one transaction; return counts per outcome.

    ``rename`` maps cube ids to the ids they must take (compose uses it for the losing
    side of a conflict); ``provenance`` is merged into every imported version's;
    ``screen`` (a load: the target's guard) turns each version into what may be written.
    """
    if policy not in POLICIES:
        raise InvalidInput(f"on-conflict must be one of {', '.join(POLICIES)}")
    plan = _Plan(p, cube_id, actor, provenance)
    plan.rename = dict(rename or {})
    ids = [plan.rename.get(i, i) for i in p.versions]
    existing = _target_histories(store, ids + [derived_id(i, cube_id) for i in p.versions])
    counts = {k: 0 for k in ("new", "identical", "fast-forward", "target-newer", "ours",
                             "theirs", "keep-both")}
    diverged: list[str] = []
    for item_id, rows in p.versions.items():
        tid = plan.rename.get(item_id, item_id)
        have = existing.get(tid)
        raw, items = _screened(rows, screen)
        rel = "new" if have is None else _relation_either(have, raw, items)
        if rel == "diverged":
            if policy == "fail":
                diverged.append(item_id)
                continue
            if policy == "keep-both":
                tid = plan.rename[item_id] = derived_id(item_id, cube_id)
                have = existing.get(tid)
                rel = "new" if have is None else _relation_either(have, raw, items)
                if rel not in ("new", "identical", "fast-forward", "target-newer"):
                    raise Conflict(f"memory {item_id}: its keep-both copy {tid} exists "
                                   "and differs", id=item_id)
                rel = "keep-both" if rel == "new" else rel
            elif policy == "theirs" and have[-1][0].scope != raw[-1][0].scope:  # type: ignore[index]
                raise Conflict(f"memory {item_id} belongs to another scope in the target; "
                               "'theirs' would move it: use keep-both", id=item_id)
            else:
                rel = policy
        counts[rel] += 1
        plan.outcome[item_id] = rel
        start = {"new": 0, "keep-both": 0, "fast-forward": len(have or ())}.get(rel)
        if start is not None:
            plan.versions(rows, items, start, tid if tid != item_id else None)
            plan.since[tid] = start
        elif rel == "theirs":
            plan.on_top(rows, items, have[-1][0])  # type: ignore[index]
        if rel in ("new", "keep-both", "fast-forward", "theirs"):
            plan.written[tid] = rel
            first = len(items) - 1 if start is None else start
            if any(i.status != r.status for (i, _), (r, _) in zip(items[first:], raw[first:])):
                plan.held.add(tid)  # the guard held back what the cube said was servable
    if diverged:
        raise Conflict(f"{len(diverged)} memory id(s) exist in the target with a different "
                       f"history (e.g. {', '.join(diverged[:3])}); nothing was loaded. "
                       "Choose --on-conflict ours|theirs|keep-both", ids=diverged[:100])
    plan.finish()
    if plan.ops:
        store.apply(plan.ops)
    heat = {plan.rename.get(i, i): (n, at or 0.0) for i, (n, at) in p.access.items()
            if plan.written.get(plan.rename.get(i, i)) in ("new", "keep-both")}
    if heat:
        store.touch(heat)
    return {"items": len(p.versions), **counts,
            "versions": sum(isinstance(op, InsertVersion) for op in plan.ops),
            "quarantined": len(plan.held), "dropped_links": len(plan.dropped_links),
            "dropped_link_list": plan.dropped_links[:100]}
