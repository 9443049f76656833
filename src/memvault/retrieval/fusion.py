"""Rank fusion. Reciprocal-rank fusion needs no score calibration between retrievers,
which matters because cosine similarities and BM25 scores live on unrelated scales."""

from __future__ import annotations

from typing import Mapping, Sequence


def rrf(rankings: Mapping[str, Sequence[tuple[int, float]]], *, k: int = 60,
        weights: Mapping[str, float] | None = None) -> list[tuple[int, float, dict[str, float]]]:
    """Fuse ranked ``(key, score)`` lists; return ``(key, fused, {source: raw score})`` best first."""
    fused: dict[int, float] = {}
    evidence: dict[int, dict[str, float]] = {}
    for source, ranked in rankings.items():
        w = 1.0 if weights is None else weights.get(source, 1.0)
        for rank, (key, score) in enumerate(ranked):
            fused[key] = fused.get(key, 0.0) + w / (k + rank + 1)
            evidence.setdefault(key, {})[source] = score
    order = sorted(fused, key=lambda key: (-fused[key], key))
    return [(key, fused[key], evidence[key]) for key in order]
