"""Rank fusion: turn several retrievers' ranked lists into one.

Two methods. Reciprocal-rank fusion (``rrf``) uses ranks only, so it needs no calibration
between cosine similarities and BM25 scores, which live on unrelated scales; but it
throws away *how much* better the first hit is than the tenth. Min-max fusion
(``minmax``, the default) keeps that: each list's scores are rescaled to [0, 1] over its
own candidates and summed with weights. On LoCoMo it ranks the evidence higher
(``make bench-locomo``, row "+score fusion": R@10 0.759 -> 0.768, MRR 0.562 -> 0.594).
"""

from __future__ import annotations

from typing import Mapping, Sequence

Rankings = Mapping[str, Sequence[tuple[int, float]]]
Fused = list[tuple[int, float, dict[str, float]]]

METHODS = ("minmax", "rrf")


def rrf(rankings: Rankings, *, k: int = 60,
        weights: Mapping[str, float] | None = None) -> Fused:
    """Fuse ranked ``(key, score)`` lists; return ``(key, fused, {source: raw score})`` best first."""
    fused: dict[int, float] = {}
    evidence: dict[int, dict[str, float]] = {}
    for source, ranked in rankings.items():
        w = 1.0 if weights is None else weights.get(source, 1.0)
        for rank, (key, score) in enumerate(ranked):
            fused[key] = fused.get(key, 0.0) + w / (k + rank + 1)
            evidence.setdefault(key, {})[source] = score
    return _ordered(fused, evidence)


def minmax(rankings: Rankings, *, weights: Mapping[str, float] | None = None) -> Fused:
    """Weighted sum of each list's scores rescaled to (0, 1].

    The best candidate gets 1. The floor is one average step *below* the last candidate,
    not the last candidate itself: a key absent from a list gets 0 from it (it ranked
    below everything the list returned), so the last one returned must still get more,
    or a later multiplicative boost could never lift it."""
    fused: dict[int, float] = {}
    evidence: dict[int, dict[str, float]] = {}
    for source, ranked in rankings.items():
        if not ranked:
            continue
        w = 1.0 if weights is None else weights.get(source, 1.0)
        hi = max(s for _, s in ranked)
        lo = min(s for _, s in ranked)
        floor = lo - ((hi - lo) / (len(ranked) - 1) if len(ranked) > 1 else 0.0)
        span = hi - floor
        for key, score in ranked:
            fused[key] = fused.get(key, 0.0) + w * ((score - floor) / span if span > 0 else 1.0)
            evidence.setdefault(key, {})[source] = score
    return _ordered(fused, evidence)


def fuse(method: str, rankings: Rankings, *, k: int,
         weights: Mapping[str, float] | None = None) -> Fused:
    return minmax(rankings, weights=weights) if method == "minmax" else \
        rrf(rankings, k=k, weights=weights)


def _ordered(fused: dict[int, float], evidence: dict[int, dict[str, float]]) -> Fused:
    order = sorted(fused, key=lambda key: (-fused[key], key))
    return [(key, fused[key], evidence[key]) for key in order]
