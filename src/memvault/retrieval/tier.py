"""The summary tier: search the summaries first, then descend to the turns they cover.

After a scheduler pass a vault holds a hierarchical temporal index above its turns (see
:mod:`memvault.scheduler.consolidate`): topic summaries ``summarizes`` session summaries,
which ``summarizes`` the turns of one session. A tiered search:

1. runs the flat search, and ranks the summaries in the query's scope with the usual
   pipeline;
2. (``tier="auto"``, the planner) goes on only if the best summary stands out: its fused
   score at least ``tier_margin`` times the runner-up's. Otherwise the answer is flat's;
3. descends the ``summarizes`` links of the best ``tier_summaries`` (a topic to its
   sessions, a session to its turns), at most ``tier_max_turns`` memories, and ranks
   those turns with the usual pipeline (a small pool: the session the summaries chose is
   searched in full);
4. places the descent's best ``tier_insert`` turns that flat's first ``tier_keep`` hits
   do not already hold right after those hits; the rest of flat follows, in its order.

Why that merge and not a fusion of the two rankings: fused, the descended turns pushed
flat's first right hit down on every suite (MRR fell everywhere, and R@10 on LoCoMo).
Flat's head is where it is most often right; the descent is worth most just below it,
where flat's hits are weaker. Why the planner's test: a question about one episode makes
one summary stand out; where every summary scores alike, the turns under an arbitrary one
only displace flat hits. Both were chosen on dev data and checked on held-out data
(``benchmarks/bench_summary_tier.py``; the README's lifecycle section).

``SearchConfig.tier_rank`` "first" does steps 1 and 3's rankings with the first stage
alone (:meth:`Searcher.first_stage`: dense with the query vectors the flat search left in
the cache, and BM25, fused; no rows, links or priors), and finds the turns under a
summary by their kind alone instead of reading each one's row: the planner's test (on
the fused first-stage scores) and the merge are unchanged, and a tiered search costs one
pipeline plus two index searches instead of three pipelines.

``SearchConfig.tier``: "flat" never descends; "summaries" always does when the scope has
summaries (no planner test); "auto" is the per-query planner, in scopes of at least
``tier_min_memories`` memories (0: any). A query that names kinds or ids, or reads the
past (``as_of``, ``known_at``), is flat, as is one whose ``k`` is within the kept head.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from ..storage.base import RowQuery
from ..types import MemoryItem

if TYPE_CHECKING:
    from .searcher import Candidate, Searcher

__all__ = ["TIERS", "tiered", "descend", "merge", "stands_out"]

TIERS = ("flat", "summaries", "auto")
SUMMARY_KIND = "summary"
LINK_KIND = "summarizes"


def descend(searcher: "Searcher", summary_ids: list[str], query: RowQuery,
            limit: int, *, light: bool = False,
            items: Sequence[MemoryItem] = ()) -> list[str]:
    """Ids of the memories (not summaries) under ``summary_ids``, best summary first, at
    most ``limit``; topic summaries are followed to their session summaries' turns.

    ``items``: rows of those summaries already read (not read again). ``light``: a
    target's kind is asked of the store for the summaries only (few rows), not read from
    every target's row; a target that is gone or out of scope then still counts toward
    ``limit`` (the narrowed search drops it)."""
    out: dict[str, None] = {}
    known: dict[str, MemoryItem] = {i.id: i for i in items}
    frontier = list(summary_ids)
    for _ in range(3):  # topic -> session -> turns (and one spare level)
        if not frontier or len(out) >= limit:
            break
        need = [f for f in frontier if f not in known]
        if need:
            known.update((r.item.id, r.item) for r in searcher.store.select(
                RowQuery(ids=need, scope=dict(query.scope), limit=len(need))))
        targets: list[str] = []
        for sid in frontier:
            item = known.get(sid)
            if item is not None:
                targets += [link.target for link in item.links if link.kind == LINK_KIND]
        if not targets:
            break
        unique = list(dict.fromkeys(targets))
        rows = searcher.store.select(RowQuery(
            ids=unique, kinds=[SUMMARY_KIND] if light else None, scope=dict(query.scope),
            limit=len(unique)))
        known.update((r.item.id, r.item) for r in rows if r.item.kind == SUMMARY_KIND)
        kinds = {r.item.id: r.item.kind for r in rows}
        if light:
            kinds = {t: kinds.get(t, "") for t in unique}
        frontier = []
        for t in unique:
            if t not in kinds:
                continue  # gone, or outside the query's scope
            if kinds[t] == SUMMARY_KIND:
                frontier.append(t)
            elif len(out) < limit:
                out[t] = None
    return list(out)


def _eligible(searcher: "Searcher", query: RowQuery, k: int, tier: str) -> bool:
    """Can a descent change this query's answer at all? (before any search)"""
    c = searcher.config
    if query.kinds is not None or query.ids or query.seqs or \
            query.as_of is not None or query.known_at is not None:
        return False
    if k <= c.tier_keep:  # the whole answer is flat's untouched head
        return False
    if tier == "auto" and c.tier_min_memories > 0:
        scoped = replace(query, limit=None, offset=0)
        if searcher.store.count(scoped) < c.tier_min_memories:
            return False
    return True


def stands_out(scores: list[float], margin: float) -> bool:
    """The planner's test: does the best summary beat the runner-up by ``margin`` (a
    ratio of fused scores)? A question about one episode makes one summary stand out; one
    whose words every session shares ("what does she like?") does not, and there the
    turns under an arbitrary summary only displace flat hits."""
    return len(scores) >= 2 and scores[1] > 0 and scores[0] >= margin * scores[1]


def merge(flat: list["Candidate"], below: list["Candidate"], k: int, keep: int,
          insert: int) -> list["Candidate"]:
    """Flat's first ``keep`` hits untouched, then at most ``insert`` of the descent's best
    turns not among them, then the rest of flat. The inserted hits take the score of the
    flat hit they displace, so scores still fall with rank (their own come from another
    ranking, on another scale: a first-stage one under ``tier_rank="first"``)."""
    head = flat[:keep]
    seen = {h.seq for h in head}
    extra = [h for h in below if h.seq not in seen][:insert]
    if not extra:
        return flat[:k]
    moved = {h.seq for h in extra}
    rest = [h for h in flat[keep:] if h.seq not in moved]
    floor = rest[0].score if rest else head[-1].score if head else None
    lifted = [replace(h, score=h.score if floor is None else floor,
                      sources={**h.sources, "tier": float(rank)})
              for rank, h in enumerate(extra, 1)]
    return (head + lifted + rest)[:k]


def _ranked(searcher: "Searcher", text: str, query: RowQuery, k: int,
            first: bool) -> list["Candidate"]:
    """The best ``k`` of ``query``: the usual pipeline, or (``first``) the first stage
    alone, with rows read for those ``k`` only."""
    if not first:
        return searcher.search(text, query, k, tier="flat")
    return searcher.first_ranked(text, query, k)


def tiered(searcher: "Searcher", text: str, query: RowQuery, k: int,
           tier: str) -> list["Candidate"]:
    """``Searcher.search`` with the summary tier (see the module docstring)."""
    c = searcher.config
    if not _eligible(searcher, query, k, tier):
        return searcher.search(text, query, k, tier="flat")
    flat = searcher.search(text, query, k, tier="flat")
    first = c.tier_rank == "first"
    top = _ranked(searcher, text, replace(query, kinds=[SUMMARY_KIND], exclude_kinds=None),
                  max(c.tier_summaries, 2), first)
    if tier == "auto" and not stands_out([h.score for h in top], c.tier_margin):
        return flat
    best = [h.row.item for h in top[:c.tier_summaries]]
    under = descend(searcher, [i.id for i in best], query, c.tier_max_turns, light=first,
                    items=best)
    if not under:  # no summaries in scope, or none with turns: nothing to descend
        return flat
    narrowed = replace(query, ids=under, limit=None, offset=0)
    below = _ranked(searcher, text, narrowed, c.tier_keep + c.tier_insert, first)
    return merge(flat, below, k, c.tier_keep, c.tier_insert)
