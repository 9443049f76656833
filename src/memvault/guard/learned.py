"""The injection guard's learned head: a linear model over hashed words of the text.

Rules say what an attack family looks like; they miss phrasings nobody wrote a rule
for. The head scores the whole text from its words and word pairs (CJK characters and
character pairs, which have no spaces between words), learned from public injection
sets and from harmless texts written to look like attacks, so it sees "configuration",
"quietly" and "from here on" *together* where each rule saw one. It is a logistic
regression on feature hashing: no vocabulary file, a few microseconds per word, and the
weights are a plain ``.npz`` (indices and values; never a pickle).

Its probability becomes a rule-like reason whose weight reaches the flag threshold
alone only above ``alone``: the probability that only 1 % of harmless training texts
reach when scored by a head that did not see them (two-fold, inside the training data;
see :func:`fit_calibrated`). Below that, a fairly sure head and weak rule evidence flag
together.

Training lives in ``benchmarks/train_guard_head.py`` (the data split is recorded next to
the weights); the benchmark refits it per fold for leave-one-source-out evaluation.
"""

from __future__ import annotations

import math
import re
import zlib
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

import numpy as np

__all__ = ["DIM", "Head", "features", "fit", "fit_calibrated", "bundled_head"]

DIM = 1 << 18
_TOKEN = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]|[^\W\d_]+|\d+", re.U)
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MAX_CHARS = 4000  # the head reads the start and end of very long texts


def _clip(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    half = MAX_CHARS // 2
    return text[:half] + " " + text[-half:]


def features(text: str) -> np.ndarray:
    """Hashed unigram + bigram indices of folded, lower-cased text (duplicates removed)."""
    tokens = _TOKEN.findall(_clip(text))
    grams = [t if len(t) < 40 else t[:40] for t in tokens]
    grams += [a + " " + b for a, b in zip(tokens, tokens[1:])]
    if not grams:
        return np.zeros(0, dtype=np.int64)
    crc = zlib.crc32
    return np.unique(np.fromiter((crc(g.encode()) for g in grams), dtype=np.int64,
                                 count=len(grams)) % DIM)


class Head:
    """Linear weights over the hashed features; ``prob`` is the injection probability."""

    def __init__(self, index: np.ndarray, value: np.ndarray, bias: float,
                 info: dict[str, str] | None = None, alone: float = 0.92) -> None:
        self.weights = np.zeros(DIM, dtype=np.float32)
        self.weights[index] = value
        self.bias = float(bias)
        self.info = dict(info or {})
        self.alone = float(alone)

    def weight(self, p: float) -> float:
        """The rule weight a probability is worth: 0 up to 0.5, 0.5 (flags alone) at
        ``alone``, at most 0.6."""
        if p <= 0.5:
            return 0.0
        return min(0.6, 0.5 * (p - 0.5) / max(self.alone - 0.5, 1e-6))

    def prob_of(self, feats: np.ndarray) -> float:
        if feats.size == 0:
            z = self.bias
        else:
            z = self.bias + float(self.weights[feats].sum()) / math.sqrt(feats.size)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def prob(self, text: str) -> float:
        return self.prob_of(features(text))

    def save(self, path: Path) -> None:
        nz = np.flatnonzero(self.weights)
        np.savez_compressed(path, index=nz.astype(np.int32), value=self.weights[nz],
                            bias=np.array([self.bias], dtype=np.float64),
                            alone=np.array([self.alone], dtype=np.float64),
                            info=np.array([f"{k}={v}" for k, v in sorted(self.info.items())]))

    @classmethod
    def load(cls, path: Path | str | BinaryIO) -> "Head":
        with np.load(path, allow_pickle=False) as z:
            info = dict(s.split("=", 1) for s in z["info"].tolist()) if "info" in z else {}
            return cls(z["index"].astype(np.int64), z["value"], float(z["bias"][0]), info,
                       float(z["alone"][0]))


def fit(feats: Sequence[np.ndarray], labels: Sequence[int], *, l2: float = 1e-4,
        steps: int = 300, lr: float = 0.5) -> Head:
    """Class-balanced logistic regression by full-batch Adam on the hashed features.

    Plain numpy (no solver dependency) and deterministic: the same data gives the same
    weights, which is what lets the benchmark refit per fold and the shipped head be
    rebuilt from its recorded split."""
    y = np.asarray(labels, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("fit needs both classes")
    rows = np.concatenate([np.full(f.size, i, dtype=np.int64) for i, f in enumerate(feats)])
    cols = np.concatenate(list(feats)).astype(np.int64)
    scale = np.array([1.0 / math.sqrt(f.size) if f.size else 0.0 for f in feats])
    vals = scale[rows]
    used, cols = np.unique(cols, return_inverse=True)
    w = np.zeros(used.size)
    b = 0.0
    pos = y.sum()
    sample_w = np.where(y == 1, 0.5 / pos, 0.5 / (y.size - pos))
    m, v = np.zeros(used.size + 1), np.zeros(used.size + 1)
    for t in range(1, steps + 1):
        z = np.bincount(rows, weights=w[cols] * vals, minlength=y.size) + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        err = (p - y) * sample_w
        g = np.append(np.bincount(cols, weights=err[rows] * vals, minlength=used.size) + l2 * w,
                      err.sum())
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        w -= step[:-1] * 0.01
        b -= step[-1] * 0.01
    return Head(used, w.astype(np.float32), b)


def fit_calibrated(feats: Sequence[np.ndarray], labels: Sequence[int], *,
                   false_positives: float = 0.01) -> Head:
    """:func:`fit` on everything, with ``alone`` set from held-out scores: each half of
    the data (split by a hash of its features) is scored by a head fitted on the other
    half, and ``alone`` is the probability that ``false_positives`` of the harmless texts
    exceed. No text outside ``feats`` is looked at."""
    halves = np.array([zlib.crc32(f.tobytes()) % 2 for f in feats])
    y = np.asarray(labels)
    neg_scores: list[float] = []
    for h in (0, 1):
        train = np.flatnonzero(halves != h)
        test = np.flatnonzero((halves == h) & (y == 0))
        if len(set(y[train].tolist())) < 2 or test.size == 0:
            continue
        part = fit([feats[i] for i in train], y[train].tolist())
        neg_scores += [part.prob_of(feats[i]) for i in test]
    head = fit(feats, labels)
    if neg_scores:
        head.alone = float(min(0.99, max(0.8, np.quantile(neg_scores, 1 - false_positives))))
    return head


_BUNDLED: list[Head | None] = []


def bundled_head() -> Head | None:
    """The head shipped in the package (``guard/head.npz``), or None if it is missing."""
    if not _BUNDLED:
        ref = resources.files(__package__).joinpath("head.npz")
        if ref.is_file():
            with ref.open("rb") as fh:
                _BUNDLED.append(Head.load(fh))
        else:
            _BUNDLED.append(None)
    return _BUNDLED[0]


def batch_features(texts: Iterable[str]) -> list[np.ndarray]:
    return [features(t) for t in texts]
