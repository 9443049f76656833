"""The summary tier: search the summaries first, then descend to the turns they cover.

After a scheduler pass a vault holds a hierarchical temporal index above its turns (see
:mod:`memvault.scheduler.consolidate`): topic summaries ``summarizes`` session summaries,
which ``summarizes`` the turns of one session. A tiered search:

1. ranks the summaries in the query's scope with the usual pipeline and keeps the best
   ``tier_summaries``;
2. descends their ``summarizes`` links (a topic to its sessions, a session to its turns),
   at most ``tier_max_turns`` memories;
3. ranks those turns with the usual pipeline (restricted to them: a small pool, so the
   session the summaries chose is searched in full);
4. merges that ranking with the flat search by reciprocal rank (``tier_weight`` for the
   descent, 1 for the flat list), so a turn both find rises, and one only the flat
   search finds keeps its place relative to the others: recall stays where flat search
   put it unless the summaries add evidence.

``SearchConfig.tier``: "flat" never descends; "summaries" always does when the scope has
summaries; "auto" (the planner) descends only when the scope is large enough that the flat
candidate lists are diluted (``tier_min_memories`` memories in scope) and it has summaries.
A query that names kinds or ids, or reads the past (``as_of``, ``known_at``), is flat.

What it buys and costs is measured in the same run as flat search:
``benchmarks/bench_summary_tier.py`` (recall@10, MRR, the tokens of the top k, and p50 at
scale); whether it is on by default follows the rule in the README's lifecycle section.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..storage.base import RowQuery
from .fusion import fuse

if TYPE_CHECKING:
    from .searcher import Candidate, Searcher

__all__ = ["TIERS", "tiered", "descend"]

TIERS = ("flat", "summaries", "auto")
SUMMARY_KIND = "summary"
LINK_KIND = "summarizes"


def descend(searcher: "Searcher", summary_ids: list[str], query: RowQuery,
            limit: int) -> list[str]:
    """Ids of the memories (not summaries) under ``summary_ids``, best summary first, at
    most ``limit``; topic summaries are followed to their session summaries' turns."""
    out: dict[str, None] = {}
    frontier = list(summary_ids)
    for _ in range(3):  # topic -> session -> turns (and one spare level)
        if not frontier or len(out) >= limit:
            break
        rows = searcher.store.select(RowQuery(ids=frontier, scope=dict(query.scope),
                                              limit=len(frontier)))
        by_id = {r.item.id: r.item for r in rows}
        targets: list[str] = []
        for sid in frontier:
            item = by_id.get(sid)
            if item is not None:
                targets += [link.target for link in item.links if link.kind == LINK_KIND]
        if not targets:
            break
        kinds = {r.item.id: r.item.kind for r in searcher.store.select(
            RowQuery(ids=list(dict.fromkeys(targets)), scope=dict(query.scope),
                     limit=len(targets)))}
        frontier = []
        for t in dict.fromkeys(targets):
            if t not in kinds:
                continue  # gone, or outside the query's scope
            if kinds[t] == SUMMARY_KIND:
                frontier.append(t)
            elif len(out) < limit:
                out[t] = None
    return list(out)


def _plans(searcher: "Searcher", query: RowQuery, tier: str) -> bool:
    """Does this query descend? (the planner; see the module docstring)"""
    if query.kinds is not None or query.ids or query.seqs or \
            query.as_of is not None or query.known_at is not None:
        return False
    if tier == "auto":
        scoped = replace(query, limit=None, offset=0)
        if searcher.store.count(scoped) < searcher.config.tier_min_memories:
            return False
    return True


def tiered(searcher: "Searcher", text: str, query: RowQuery, k: int,
           tier: str) -> list["Candidate"]:
    """``Searcher.search`` with the summary tier (see the module docstring)."""
    c = searcher.config
    if not _plans(searcher, query, tier):
        return searcher.search(text, query, k, tier="flat")
    # the flat list at the depth the merge may lift from (the first k of it are the flat
    # search for k: the candidate lists do not grow with k up to 20)
    flat = searcher.search(text, query, max(k, c.tier_depth), tier="flat")
    top = searcher.search(text, replace(query, kinds=[SUMMARY_KIND], exclude_kinds=None),
                          c.tier_summaries, tier="flat")
    under = descend(searcher, [h.row.item.id for h in top], query, c.tier_max_turns)
    if not under:  # no summaries in scope, or none with turns: nothing to descend
        return flat[:k]
    narrowed = replace(query, ids=under, limit=None, offset=0)
    below = searcher.search(text, narrowed, max(k, c.tier_depth), tier="flat")
    rows = {h.seq: h for h in flat}
    rows.update({h.seq: h for h in below if h.seq not in rows})
    fused = fuse("rrf", {"flat": [(h.seq, h.score) for h in flat],
                         "tier": [(h.seq, h.score) for h in below]},
                 k=c.rrf_k, weights={"flat": 1.0, "tier": c.tier_weight})
    out = []
    for seq, score, src in fused[:k]:
        hit = rows[seq]
        sources = dict(hit.sources)
        if "tier" in src:
            sources["tier"] = round(src["tier"], 6)
        out.append(replace(hit, score=score, sources=sources))
    return out
