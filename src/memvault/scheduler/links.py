"""A-MEM-style linking: a new memory is connected to the memories it relates to.

Three cheap signals, each giving its own link kind so retrieval and people can tell
them apart:

* ``entity``  - it names the same person, place or number (BM25 on the entities finds
  candidates, entity extraction on both sides confirms them). The speakers of the
  conversation do not count: every turn of a two-person chat names one of them, so on
  LoCoMo most entity links were "both mention Caroline". The owner's speakers are kept
  in the store's meta (``lifecycle.speakers/<owner>``), learned from every memory linked;
* ``similar`` - its embedding is close to theirs (cosine above a threshold, through the
  vault's dense index; the stored vector is reused, nothing is re-embedded);
* ``session`` - it is the next memory of the same session (unless a ``next`` link
  between consecutive turns already says so).

Links only connect memories of the same owner (user, agent, cube), never across owners.
They are for people and agents to navigate (``Vault.get(id).links``, the browser) and
for retrieval's link expansion along ``session`` links; search does not spread relevance
along ``entity`` and ``similar`` links, which restate what its first stage scores (on
LoCoMo after a scheduler pass, following them cut recall@10 from 0.834 to 0.717: see
``SearchConfig.link_skip``). Optional *evolution*
(A-MEM's memory update) adds the new memory's entities to its linked neighbours' tags,
which the lexical index sees, as a new audited version of each neighbour.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from .. import hooks
from ..errors import Conflict, InvalidInput, MemvaultError, NotFound
from ..retrieval.context import name_of, speaker_of
from ..retrieval.text import terms
from ..storage.base import AuditOp, LinkOp, RowQuery
from ..types import MemoryItem
from ._scan import OWNER_FIELDS, query_scope, same_scope, scope_key
from .entities import entities
from .topics import FILLER, is_filler_title

if TYPE_CHECKING:
    from ..vault import Vault

__all__ = ["LinkConfig", "LinkReport", "link_items", "link_new", "link_after_write",
           "WATERMARK_KEY"]

log = logging.getLogger("memvault.scheduler")

WATERMARK_KEY = "lifecycle.link_watermark"
SPEAKERS_KEY = "lifecycle.speakers/"
_MAX_SPEAKERS = 64
#: The link kinds written here. Search does not spread relevance along the first two
#: (``SearchConfig.link_skip``): they restate what its first stage already scores.
ENTITY, SIMILAR, SESSION = "entity", "similar", "session"
_SKIP_KINDS = ("summary",)  # summaries are linked by consolidation ("summarizes")


@dataclass(frozen=True, slots=True)
class LinkConfig:
    #: Cosine similarity at or above which two memories are linked "similar".
    similar_min: float = 0.6
    similar_k: int = 3
    entity_k: int = 3
    min_shared_entities: int = 1
    same_session: bool = True
    #: Add the new memory's entities to its neighbours' tags (new versions, audited).
    evolve: bool = False
    max_evolved_tags: int = 8

    def __post_init__(self) -> None:
        if not -1.0 <= self.similar_min <= 1.0:
            raise InvalidInput("similar_min must be a cosine in -1..1", field="similar_min")
        for name in ("similar_k", "entity_k", "min_shared_entities", "max_evolved_tags"):
            if not 0 <= getattr(self, name) <= 100:
                raise InvalidInput(f"{name} must be in 0..100", field=name)


@dataclass(slots=True)
class LinkReport:
    items: int = 0
    links: dict[str, int] = field(default_factory=dict)  # kind -> links written
    evolved: int = 0

    def merge(self, other: "LinkReport") -> None:
        self.items += other.items
        self.evolved += other.evolved
        for kind, n in other.links.items():
            self.links[kind] = self.links.get(kind, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "links": dict(self.links), "evolved": self.evolved}


def _owner_query(item: MemoryItem) -> RowQuery:
    owner = {f: getattr(item, f) for f in OWNER_FIELDS}
    return RowQuery(scope=query_scope(owner))


def _eligible(item: MemoryItem, other: MemoryItem) -> bool:
    return (other.id != item.id and other.status == "active" and other.kind not in _SKIP_KINDS
            and same_scope(other, {f: getattr(item, f) for f in OWNER_FIELDS}))


def _similar(vault: "Vault", item: MemoryItem, seq: int, cfg: LinkConfig
             ) -> list[tuple[MemoryItem, float]]:
    if cfg.similar_k == 0:
        return []
    vec = vault.store.embeddings([seq]).get(seq)
    if vec is None:
        return []
    q = _owner_query(item)
    found = [(s, score) for s, score in vault.searcher.dense(vec, q, 4 * cfg.similar_k + 1)
             if s != seq and score >= cfg.similar_min]
    rows = vault.store.by_seqs([s for s, _ in found])
    out = [(rows[s].item, score) for s, score in found
           if s in rows and _eligible(item, rows[s].item)]
    return out[:cfg.similar_k]


def speakers_of(vault: "Vault", items: Sequence[MemoryItem]) -> dict[str, set[str]]:
    """The speakers known for each owner of ``items`` (owner key -> lower-cased names),
    updated in the store's meta with the speakers of ``items``."""
    meta = vault.store.meta()
    out: dict[str, set[str]] = {}
    for item in items:
        owner = scope_key({f: getattr(item, f) for f in OWNER_FIELDS}, OWNER_FIELDS)
        if owner not in out:
            out[owner] = set(json.loads(meta.get(SPEAKERS_KEY + owner, "[]")))
        out[owner] |= {n.strip().lower() for n in (name_of(item), speaker_of(item))
                       if n and n.strip() and len(out[owner]) < _MAX_SPEAKERS}
    for owner, names in out.items():
        value = json.dumps(sorted(names))
        if meta.get(SPEAKERS_KEY + owner, "[]") != value:
            vault.store.set_meta(SPEAKERS_KEY + owner, value)
    return out


def topical(text: str, speakers: frozenset[str] | set[str], *, strict: bool = True
            ) -> set[str]:
    """The entities that say what a memory is about: not a speaker of the conversation
    nor a short form of one ("Mel"), not a capitalised function word or weekday ("Since",
    "Friday"); ``strict``: only names written mid-sentence or acronyms. A link needs the
    shared name written mid-sentence in at least one of its two memories."""
    return {e for e in entities(text, strict=strict) if e[0].isdigit()
            or (e not in FILLER and not is_filler_title(e, speakers))}


def _shared_entities(vault: "Vault", item: MemoryItem, ents: set[str], cfg: LinkConfig,
                     speakers: frozenset[str] | set[str]) -> list[tuple[MemoryItem, set[str]]]:
    names = topical(item.text, speakers)  # ents: the loose reading of the item
    if cfg.entity_k == 0 or not ents:
        return []
    hits = vault.store.lexical(terms(" ".join(sorted(ents))), _owner_query(item),
                               4 * cfg.entity_k + 1)
    rows = vault.store.by_seqs([s for s, _ in hits])
    out = []
    for s, _ in hits:
        other = rows[s].item if s in rows else None
        if other is None or not _eligible(item, other):
            continue
        shared = (names & topical(other.text, speakers, strict=False)) | \
            (ents & topical(other.text, speakers))
        if len(shared) >= max(1, cfg.min_shared_entities):
            out.append((other, shared))
    return out[:cfg.entity_k]


def _session_previous(vault: "Vault", item: MemoryItem) -> MemoryItem | None:
    if not item.session_id or item.created_at is None:
        return None
    q = RowQuery(scope=query_scope(item.scope), created_before=item.created_at.timestamp(),
                 limit=8)
    return next((r.item for r in vault.store.select(q)
                 if _eligible(item, r.item) and r.item.session_id == item.session_id), None)


def _link_one(vault: "Vault", item: MemoryItem, seq: int, cfg: LinkConfig,
              speakers: set[str]) -> LinkReport:
    report = LinkReport(items=1)
    linked = {n for pair in vault.store.links([item.id]) for n in pair} - {item.id}
    ents = topical(item.text, speakers, strict=False)
    proposals: dict[str, tuple[str, float, str]] = {}  # dst -> (kind, weight, why)
    for other, shared in _shared_entities(vault, item, ents, cfg, speakers):
        proposals.setdefault(other.id, (ENTITY, float(len(shared)),
                                        "shares " + ", ".join(sorted(shared)[:5])))
    for other, score in _similar(vault, item, seq, cfg):
        proposals.setdefault(other.id, (SIMILAR, round(score, 4), f"cosine {score:.3f}"))
    if cfg.same_session:
        prev = _session_previous(vault, item)
        if prev is not None:
            proposals.setdefault(prev.id, (SESSION, 1.0, "same session"))
    proposals = {dst: p for dst, p in proposals.items() if dst not in linked}
    if not proposals:
        return report
    ops: list[Any] = []
    for dst, (kind, weight, why) in proposals.items():
        ops.append(LinkOp(item.id, dst, kind, weight))
        ops.append(AuditOp("link", item.id, None, vault.actor,
                           {"dst": dst, "kind": kind, "reason": f"auto: {why}"}))
        report.links[kind] = report.links.get(kind, 0) + 1
    vault.store.apply(ops)
    if cfg.evolve and ents:
        report.evolved = _evolve(vault, item, [d for d, p in proposals.items()
                                               if p[0] != SESSION], ents, cfg)
    return report


def _evolve(vault: "Vault", item: MemoryItem, neighbours: Sequence[str], ents: set[str],
            cfg: LinkConfig) -> int:
    """Give each neighbour the new memory's entities as tags (A-MEM's memory evolution)."""
    evolved = 0
    for row in vault.store.select(RowQuery(ids=list(neighbours))) if neighbours else ():
        old = row.item.tags
        new = [e for e in sorted(ents) if e not in old][:cfg.max_evolved_tags]
        new = new[:max(0, vault.limits.max_tags - len(old))]
        if not new:
            continue
        try:
            vault.update(row.item.id, tags=[*old, *new], reason=f"evolve: linked from {item.id}")
            evolved += 1
        except (Conflict, NotFound):
            continue  # changed under us: a later link may evolve it again
    return evolved


def link_items(vault: "Vault", items: Sequence[MemoryItem],
               config: LinkConfig = LinkConfig()) -> LinkReport:
    """Link each of ``items`` (already stored) to its related memories."""
    report = LinkReport()
    if not items:
        return report
    rows = vault.store.select(RowQuery(ids=[i.id for i in items]))
    speakers = speakers_of(vault, [r.item for r in rows])
    for row in rows:
        if row.item.kind not in _SKIP_KINDS:
            owner = scope_key({f: getattr(row.item, f) for f in OWNER_FIELDS}, OWNER_FIELDS)
            report.merge(_link_one(vault, row.item, row.seq, config, speakers[owner]))
    return report


def link_new(vault: "Vault", config: LinkConfig = LinkConfig(), *,
             page: int = 500) -> LinkReport:
    """Link every memory added since the last run (a watermark in the store's meta)."""
    meta = vault.store.meta()
    after = int(meta.get(WATERMARK_KEY, "0"))
    report = LinkReport()
    while True:
        events = vault.store.audit_events(action="add", after=after, limit=page)
        if not events:
            break
        ids = list(dict.fromkeys(e.item_id for e in events if e.item_id))
        rows = vault.store.select(RowQuery(ids=ids))
        report.merge(link_items(vault, [r.item for r in rows], config))
        after = events[-1].seq
        vault.store.set_meta(WATERMARK_KEY, json.dumps(after))
        if len(events) < page:
            break
    return report


@hooks.provide("after_write")
def link_after_write(vault: "Vault", items: Sequence[MemoryItem]) -> None:
    """Auto-linking on add (``Settings.auto_link``): the write is already durable, so a
    failure here is logged, not raised; ``link_new`` links the memories on its next pass."""
    try:
        link_items(vault, items)
    except MemvaultError as exc:
        log.warning("auto-link of %d memories failed (%s): the scheduler will retry",
                    len(items), exc.message)
