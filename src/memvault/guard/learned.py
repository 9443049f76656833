"""The injection guard's learned head: a linear model over hashed features of the text.

Rules say what an attack family looks like; they miss phrasings nobody wrote a rule
for. The head scores the whole text from its words and word pairs (CJK characters and
character pairs, which have no spaces between words), learned from public injection
sets and from harmless texts written to look like attacks, so it sees "configuration",
"quietly" and "from here on" *together* where each rule saw one. It is a logistic
regression on feature hashing: no vocabulary file, a few microseconds per word, and the
weights are a plain ``.npz`` (indices and values; never a pickle).

A :class:`Spec` names the feature blocks a head reads, and is saved with its weights:
word uni/bigrams, optionally hashed character n-grams (script-agnostic: they carry over
to languages and spellings the words never met) and the names of the rules that fired
(so the head can learn which weak cues add up). Each block is scaled by one over the
square root of its size, so a long text does not outvote a short one and no block
drowns the others.

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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

import numpy as np

__all__ = ["DIM", "Head", "Spec", "Feats", "WORDS", "features", "fit", "fit_calibrated",
           "bundled_head"]

DIM = 1 << 18
_TOKEN = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]|[^\W\d_]+|\d+", re.U)
_SPACE = re.compile(r"\s+")
MAX_CHARS = 4000  # the head reads the start and end of very long texts
_PRIME = np.uint64(1099511628211)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


@dataclass(frozen=True)
class Spec:
    """Which feature blocks a head reads and how much each counts (saved with the head)."""

    words: bool = True
    chars: tuple[int, ...] = ()   # character n-gram sizes, e.g. (3, 4, 5)
    char_scale: float = 1.0
    rules: bool = False           # names of the rules that fired
    rule_scale: float = 1.0

    def encode(self) -> str:
        return (f"words={int(self.words)};chars={','.join(map(str, self.chars))};"
                f"char_scale={self.char_scale};rules={int(self.rules)};rule_scale={self.rule_scale}")

    @classmethod
    def decode(cls, s: str) -> "Spec":
        kv = dict(p.split("=", 1) for p in s.split(";") if "=" in p)
        return cls(words=kv.get("words", "1") == "1",
                   chars=tuple(int(x) for x in kv.get("chars", "").split(",") if x),
                   char_scale=float(kv.get("char_scale", 1.0)), rules=kv.get("rules") == "1",
                   rule_scale=float(kv.get("rule_scale", 1.0)))


WORDS = Spec()


@dataclass(frozen=True)
class Feats:
    """Hashed feature indices with their values (a sparse row)."""

    index: np.ndarray
    value: np.ndarray

    @property
    def size(self) -> int:
        return int(self.index.size)


def _clip(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    half = MAX_CHARS // 2
    return text[:half] + " " + text[-half:]


def _hash_strings(grams: Sequence[str]) -> np.ndarray:
    crc = zlib.crc32
    return np.unique(np.fromiter((crc(g.encode()) for g in grams), dtype=np.int64,
                                 count=len(grams)) % DIM)


def _word_index(text: str) -> np.ndarray:
    tokens = _TOKEN.findall(text)
    grams = [t if len(t) < 40 else t[:40] for t in tokens]
    grams += [a + " " + b for a, b in zip(tokens, tokens[1:])]
    return _hash_strings(grams) if grams else np.zeros(0, dtype=np.int64)


def _char_index(text: str, sizes: tuple[int, ...]) -> np.ndarray:
    """Hashed character n-grams of the whitespace-collapsed text, computed as a rolling
    polynomial hash over code points in numpy (no Python loop per n-gram; the n-gram
    hash extends the (n-1)-gram one)."""
    s = " " + _SPACE.sub(" ", text).strip() + " "
    cp = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    with np.errstate(over="ignore"):
        h = cp
        for n in range(2, max(sizes, default=0) + 1):
            if cp.size < n:
                break
            h = h[:-1] * _PRIME ^ cp[n - 1:]
            if n in sizes:
                x = h ^ np.uint64(n)
                x = (x ^ (x >> np.uint64(29))) * _MIX
                parts.append(((x ^ (x >> np.uint64(32))) % np.uint64(DIM)).astype(np.int64))
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def features(text: str, rules: Iterable[str] = (), spec: Spec = WORDS) -> Feats:
    """The feature row of (folded, lower-cased) ``text``; ``rules`` are the names of the
    rules that fired on it (read only if ``spec.rules``)."""
    text = _clip(text)
    idx: list[np.ndarray] = []
    val: list[np.ndarray] = []
    blocks = []
    if spec.words:
        blocks.append((_word_index(text), 1.0))
    if spec.chars:
        blocks.append((_char_index(text, spec.chars), spec.char_scale))
    if spec.rules:
        names = sorted(set(rules))
        blocks.append((_hash_strings(["\x00rule " + n for n in names] + ["\x00rules " + str(min(len(names), 4))]),
                       spec.rule_scale))
    for ix, scale in blocks:
        if ix.size:
            idx.append(ix)
            val.append(np.full(ix.size, scale / math.sqrt(ix.size)))
    if not idx:
        return Feats(np.zeros(0, dtype=np.int64), np.zeros(0))
    return Feats(np.concatenate(idx), np.concatenate(val))


class Head:
    """Linear weights over the hashed features; ``prob`` is the injection probability."""

    def __init__(self, index: np.ndarray, value: np.ndarray, bias: float,
                 info: dict[str, str] | None = None, alone: float = 0.92,
                 spec: Spec = WORDS) -> None:
        self.weights = np.zeros(DIM, dtype=np.float32)
        self.weights[index] = value
        self.bias = float(bias)
        self.info = dict(info or {})
        self.alone = float(alone)
        self.spec = spec

    def weight(self, p: float) -> float:
        """The rule weight a probability is worth: 0 up to 0.5, 0.5 (flags alone) at
        ``alone``, at most 0.6."""
        if p <= 0.5:
            return 0.0
        return min(0.6, 0.5 * (p - 0.5) / max(self.alone - 0.5, 1e-6))

    def features(self, text: str, rules: Iterable[str] = ()) -> Feats:
        return features(text, rules, self.spec)

    def prob_of(self, feats: Feats) -> float:
        z = self.bias
        if feats.size:
            z += float(np.dot(self.weights[feats.index], feats.value))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def prob(self, text: str, rules: Iterable[str] = ()) -> float:
        return self.prob_of(self.features(text, rules))

    def save(self, path: Path) -> None:
        nz = np.flatnonzero(self.weights)
        np.savez_compressed(path, index=nz.astype(np.int32), value=self.weights[nz],
                            bias=np.array([self.bias], dtype=np.float64),
                            alone=np.array([self.alone], dtype=np.float64),
                            spec=np.array([self.spec.encode()]),
                            info=np.array([f"{k}={v}" for k, v in sorted(self.info.items())]))

    @classmethod
    def load(cls, path: Path | str | BinaryIO) -> "Head":
        with np.load(path, allow_pickle=False) as z:
            info = dict(s.split("=", 1) for s in z["info"].tolist()) if "info" in z else {}
            spec = Spec.decode(str(z["spec"][0])) if "spec" in z else WORDS
            return cls(z["index"].astype(np.int64), z["value"], float(z["bias"][0]), info,
                       float(z["alone"][0]), spec)


def _as_feats(f: Feats | np.ndarray) -> Feats:
    if isinstance(f, Feats):
        return f
    return Feats(f, np.full(f.size, 1.0 / math.sqrt(f.size)) if f.size else np.zeros(0))


def _products(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int,
              n_cols: int) -> tuple:
    """``X @ w`` and ``X.T @ e`` for the sparse design matrix: scipy's sparse products
    when scipy is installed (ten times faster on character n-grams), else numpy's
    bincount (same numbers up to rounding)."""
    try:
        from scipy import sparse
    except ImportError:
        return (lambda w: np.bincount(rows, weights=w[cols] * vals, minlength=n_rows),
                lambda e: np.bincount(cols, weights=e[rows] * vals, minlength=n_cols))
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))
    XT = X.T.tocsr()
    return (lambda w: X @ w), (lambda e: XT @ e)


def fit(feats: Sequence[Feats], labels: Sequence[int], *, groups: Sequence[str] | None = None,
        group_power: float = 0.0, l2: float = 1e-4, steps: int = 300, lr: float = 0.5,
        spec: Spec = WORDS) -> Head:
    """Class-balanced logistic regression by full-batch Adam on the hashed features.

    ``groups`` with ``group_power`` > 0 also evens out sources inside each class (a
    source of n texts weighs n ** (1 - group_power)), so the largest public set does not
    decide what "injection" looks like. Plain numpy (no solver dependency) and
    deterministic: the same data gives the same weights, which is what lets the benchmark
    refit per fold and the shipped head be rebuilt from its recorded split."""
    y = np.asarray(labels, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("fit needs both classes")
    rows_f = [_as_feats(f) for f in feats]
    rows = np.concatenate([np.full(f.size, i, dtype=np.int64) for i, f in enumerate(rows_f)])
    cols = np.concatenate([f.index for f in rows_f]).astype(np.int64)
    vals = np.concatenate([f.value for f in rows_f]).astype(np.float64)
    used, cols = np.unique(cols, return_inverse=True)
    w = np.zeros(used.size)
    b = 0.0
    base = np.ones(y.size)
    if groups is not None and group_power > 0:
        g = np.asarray(groups)
        _, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
        base = counts[inv].astype(np.float64) ** -group_power
    sample_w = np.empty(y.size)
    for c in (0, 1):
        sel = y == c
        sample_w[sel] = 0.5 * base[sel] / base[sel].sum()
    times, times_t = _products(rows, cols, vals, y.size, used.size)
    m, v = np.zeros(used.size + 1), np.zeros(used.size + 1)
    for t in range(1, steps + 1):
        z = times(w) + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        err = (p - y) * sample_w
        g = np.append(times_t(err) + l2 * w, err.sum())
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        w -= step[:-1] * 0.01
        b -= step[-1] * 0.01
    return Head(used, w.astype(np.float32), b, spec=spec)


def fit_calibrated(feats: Sequence[Feats], labels: Sequence[int], *,
                   false_positives: float = 0.01, groups: Sequence[str] | None = None,
                   group_power: float = 0.0, l2: float = 1e-4, steps: int = 300,
                   spec: Spec = WORDS) -> Head:
    """:func:`fit` on everything, with ``alone`` set from held-out scores: each half of
    the data (split by a hash of its features) is scored by a head fitted on the other
    half, and ``alone`` is the probability that ``false_positives`` of the harmless texts
    exceed. No text outside ``feats`` is looked at."""
    rows_f = [_as_feats(f) for f in feats]
    halves = np.array([zlib.crc32(f.index.tobytes()) % 2 for f in rows_f])
    y = np.asarray(labels)
    kw = dict(group_power=group_power, l2=l2, steps=steps, spec=spec)
    neg_scores: list[float] = []
    for h in (0, 1):
        train = np.flatnonzero(halves != h)
        test = np.flatnonzero((halves == h) & (y == 0))
        if len(set(y[train].tolist())) < 2 or test.size == 0:
            continue
        part = fit([rows_f[i] for i in train], y[train].tolist(),
                   groups=None if groups is None else [groups[i] for i in train], **kw)
        neg_scores += [part.prob_of(rows_f[i]) for i in test]
    head = fit(rows_f, labels, groups=groups, **kw)
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


def batch_features(texts: Iterable[str], spec: Spec = WORDS) -> list[Feats]:
    return [features(t, (), spec) for t in texts]
