"""The forward pass shared by the bundled sentence encoders (BERT-family, numpy only).

Why numpy and not torch: a sentence encoder is a few matrix products per layer; with
numpy's BLAS it matches sentence-transformers' batch throughput and answers a single
query about twice as fast on 2 cores, without importing torch. Subclasses say where the
weights live and what the tensors are called (:mod:`.minilm`, :mod:`.mpnet`); the
numerics (exact-erf GELU, LayerNorm, mean pooling over real tokens, L2 normalisation)
and the batching live here once. Parity tests against sentence-transformers guard them.
"""

from __future__ import annotations

import contextlib
import threading
import functools
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from memvault.errors import InvalidInput, ModelError

if TYPE_CHECKING:
    import numpy as np
else:  # numpy loads on the first embed: opening a vault (by-id reads) does not need it
    from .._lazy import numpy as np

__all__ = ["SentenceEncoder", "BACKENDS"]

#: ``auto``: ONNX Runtime float32 when onnxruntime and onnx are installed, else numpy
#: (same network, same numerics: cosine >= 0.9999, so vaults mix both freely);
#: ``numpy``: the float32 numpy forward pass; ``onnx``: ONNX Runtime in float32;
#: ``onnx-int8``: ONNX Runtime with int8 dense layers (see :mod:`._onnx`).
BACKENDS = ("auto", "numpy", "onnx", "onnx-int8")


def _cores() -> int:
    from ._onnx import default_threads

    return default_threads()

_CONTROLLER: Any = None  # threadpoolctl controller, created on first small embed


@functools.cache
def _erfc_coefficients() -> tuple[Any, tuple[Any, ...]]:
    """Abramowitz & Stegun 7.1.26: erfc(z) ~= t*P(t) * exp(-z^2), t = 1/(1+p*z), z >= 0,
    with |error| <= 1.5e-7 (1.4e-7 measured in float64). Here z = |x|/sqrt2 is folded into
    p and the coefficients are pre-halved, so the polynomial yields erfc(z)/2 directly."""
    f32 = np.float32
    return f32(0.3275911 / np.sqrt(2.0)), tuple(
        f32(0.5 * c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736,
                               0.254829592))


_GELU_ROWS = 64  # row block for the element-wise GELU: fits in L2, measured fastest
_ROW_ALIGN = 16  # OpenBLAS sgemm is up to 2x slower when the row count is not a multiple
_SAFE_LOGIT = 80.0  # exp(+-80) is a normal float32, so no shift is needed inside this range
# Cap on batch * seq_len**2 so one batch's (B, heads, S, S) float32 scores stay ~32 MB.
_ATTN_BUDGET = 32 * 2**20 // (4 * 12)
#: Padding a padded batch may add, as a fraction of its real tokens (see ``_batches``).
#: 0: only texts of one token count share a batch. Against 0.1, 0.25, 0.5 and no cut (CPU
#: seconds, mean of 2, 788 LoCoMo turns by session / in one call / 2,000 synthetic
#: memories in calls of 256): 12.8 / 11.4 / 10.3 s at 0, 12.3 / 12.6 / 11.1 at 0.1,
#: 25.2 / 16.0 / 12.1 with no cut: an ORT call costs next to nothing.
_PAD_SLACK = 0.0


def _gelu_(x: np.ndarray) -> None:
    """Exact (erf) GELU in place, in cache-sized row blocks.

    Uses GELU(x) = x/2 + |x| * (1 - erfc(|x|/sqrt2)) / 2 with A&S erfc: float32-accurate
    to ~1 ulp, no scipy needed, and ~3.5x faster than ``scipy.special.erf`` (measured).
    """
    as_p, as_a = _erfc_coefficients()
    for i in range(0, x.shape[0], _GELU_ROWS):
        blk = x[i : i + _GELU_ROWS]
        a = np.abs(blk)
        t = a * as_p
        t += 1
        np.reciprocal(t, out=t)
        y = t * as_a[0]
        for c in as_a[1:]:
            y += c
            y *= t
        e = np.square(a)
        e *= np.float32(-0.5)
        np.exp(e, out=e)
        y *= e  # y = erfc(|x|/sqrt2) / 2
        np.subtract(np.float32(0.5), y, out=y)
        y *= a
        blk *= np.float32(0.5)
        blk += y


def _layer_norm_(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> None:
    """LayerNorm over the last axis, in place (x is always a scratch buffer here).

    Row statistics come from a matrix-vector product with a 1/d column: one BLAS call
    instead of numpy's slower mean/var reductions (it matters for short inputs).
    """
    avg = np.full((x.shape[1], 1), 1.0 / x.shape[1], dtype=np.float32)
    x -= np.matmul(x, avg)
    var = np.matmul(np.square(x), avg)
    var += np.float32(eps)
    np.sqrt(var, out=var)
    np.divide(np.float32(1), var, out=var)
    x *= var
    x *= gamma
    x += beta




Getter = Callable[[str], "np.ndarray"]


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence vectors from a post-LayerNorm transformer.

    Subclasses set ``id``, ``dim`` and ``_ATTN`` (the attention tensors' names), and
    implement :meth:`_read` (weights + tokenizer) and :meth:`_embeddings`.
    """

    id: str
    dim: int
    #: Names, under ``encoder.layer.N.attention.``, of q, k, v, output and its LayerNorm.
    _ATTN: tuple[str, str, str, str, str]

    def __init__(self, cfg: Mapping[str, Any], st_cfg: Mapping[str, Any], *, where: str,
                 batch_size: int, max_length: int | None, query_threads: int | None,
                 small_batch: int, backend: str = "numpy") -> None:
        if batch_size < 1:
            raise InvalidInput("batch_size must be >= 1", batch_size=batch_size)
        if backend not in BACKENDS:
            raise InvalidInput(f"backend must be one of {', '.join(BACKENDS)}", backend=backend)
        self.backend = backend
        try:
            n_pos, n_layers = int(cfg["max_position_embeddings"]), int(cfg["num_hidden_layers"])
            self._heads, self._eps = int(cfg["num_attention_heads"]), float(cfg["layer_norm_eps"])
            default_len = int(st_cfg.get("max_seq_length", n_pos))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"unreadable {self.id} config in {where}: {exc}") from exc
        if cfg.get("hidden_size") != self.dim or cfg.get("hidden_act") != "gelu":
            raise ModelError(f"model config is not a {self.dim}-wide gelu encoder", path=where)
        self.max_length = default_len if max_length is None else max_length
        if not 2 <= self.max_length <= n_pos:
            raise InvalidInput(f"max_length must be in [2, {n_pos}]", max_length=self.max_length)
        self.batch_size, self._n_layers, self._cfg = batch_size, n_layers, dict(cfg)
        self.query_threads, self.small_batch = query_threads, small_batch
        self._where = where
        self._lock = threading.Lock()
        self._rel_bias: np.ndarray | None = None
        self._loaded = False  # weights load on first embed(): constructing is cheap
        self._ort: Any = None  # the ONNX Runtime forward pass, when the backend uses it

    # -- what a subclass provides --------------------------------------------------------
    def _read(self) -> tuple[Mapping[str, np.ndarray], Any]:
        """Return the raw weights by name and a ``tokenizers.Tokenizer``."""
        raise NotImplementedError

    def _embeddings(self, g: Getter) -> tuple[np.ndarray, np.ndarray]:
        """Return (word embeddings, the table added at position 0, 1, ...)."""
        raise NotImplementedError

    # -- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            w, tok = self._read()
        except ModelError:
            raise
        except Exception as exc:  # corrupt files, missing dependencies, I/O errors
            raise ModelError(f"cannot load {self.id} from {self._where}: {exc}") from exc
        # tokenizer.json may ship with fixed padding; we pad per sorted batch instead.
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_length)
        self._tok = tok
        scale = np.float32(1.0 / np.sqrt(self.dim // self._heads))

        def g(name: str) -> np.ndarray:
            try:
                return np.ascontiguousarray(w[name], dtype=np.float32)
            except KeyError as exc:
                raise ModelError(f"weight {name!r} missing from {self.id}") from exc

        def wt(name: str) -> np.ndarray:  # torch Linear stores (out, in); we need x @ W
            return np.ascontiguousarray(g(name).T)

        self._word, self._pos_type = self._embeddings(g)
        self._emb_ln = (g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
        q, k, v, o, ln = self._ATTN
        self._layers: list[tuple[np.ndarray, ...]] = []
        for i in range(self._n_layers):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            # Fuse Q, K, V into one GEMM and fold 1/sqrt(head_dim) into Q.
            w_qkv = np.concatenate(
                [wt(a + q + ".weight") * scale, wt(a + k + ".weight"), wt(a + v + ".weight")],
                axis=1,
            )
            b_qkv = np.concatenate(
                [g(a + q + ".bias") * scale, g(a + k + ".bias"), g(a + v + ".bias")]
            )
            self._layers.append((
                np.ascontiguousarray(w_qkv), b_qkv,
                wt(a + o + ".weight"), g(a + o + ".bias"),
                g(a + ln + ".weight"), g(a + ln + ".bias"),
                wt(p + "intermediate.dense.weight"), g(p + "intermediate.dense.bias"),
                wt(p + "output.dense.weight"), g(p + "output.dense.bias"),
                g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"),
            ))  # fmt: skip
        self._rel_bias = self._relative_bias(g)
        self._ort = self._onnx_forward()
        self._loaded = True

    def _onnx_forward(self) -> Any:
        """Build the ONNX Runtime path if the backend asks for it (and can have it)."""
        from . import _onnx

        if self.backend == "numpy":
            return None
        usable = self._rel_bias is None and _onnx.available()
        if self.backend == "auto" and not usable:
            return None  # the numpy path computes the same network in float32
        if not usable:
            raise ModelError(f"backend {self.backend!r} needs onnxruntime and onnx (pip install "
                             "'memvault[fast]') and an encoder without relative position bias",
                             backend=self.backend)
        try:
            # auto stays float32: int8 moved LoCoMo dev R@10 0.849 -> 0.848 (2 conversations)
            return _onnx.OnnxForward(self, int8=self.backend == "onnx-int8")
        except Exception as exc:  # a broken onnxruntime install must not break embedding
            if self.backend == "auto":
                return None
            raise ModelError(f"cannot build the ONNX Runtime encoder: {exc}") from exc

    @property
    def active_backend(self) -> str:
        """What :meth:`embed` runs on: ``numpy``, ``onnx`` or ``onnx-int8`` (after loading)."""
        if self._ort is None:
            return "numpy"
        return "onnx-int8" if self._ort.int8 else "onnx"

    def _forward_ort(self, lens: np.ndarray, rows: Sequence[Sequence[int]],
                     threads: int) -> np.ndarray:
        """One length-sorted batch through ONNX Runtime; embeddings stay in numpy."""
        bsz, seq = len(lens), int(lens.max())
        ids = np.zeros((bsz, seq), np.int64)
        mask = np.zeros((bsz, seq), np.float32)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1.0
        x = self._word[ids.reshape(-1)]
        x += np.tile(self._pos_type[:seq], (bsz, 1))
        _layer_norm_(x, *self._emb_ln, self._eps)
        pooled = self._ort(x.reshape(bsz, seq, self.dim), mask, threads)
        return pooled / lens[:, None].astype(np.float32)

    def _relative_bias(self, g: Getter) -> np.ndarray | None:
        """(heads, S, S) additive attention bias by relative position; None: absolute only."""
        return None

    def _forward(self, lens: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Encode one batch of packed token ids; return mean-pooled, unnormalised (B, dim).

        Dense layers (nearly all the FLOPs) run on packed tokens, so padding costs nothing
        there; only attention scatters tokens into a padded (B, S) grid with a mask.
        """
        bsz, seq, n, dim = len(lens), int(lens.max()), len(ids), self.dim
        heads, hd = self._heads, dim // self._heads
        valid = np.arange(seq)[None, :] < lens[:, None]  # (B, S)
        flat = np.flatnonzero(valid)
        rows = -(-n // _ROW_ALIGN) * _ROW_ALIGN  # extra rows are harmless, never read back
        x = np.zeros((rows, dim), np.float32)
        np.add(self._word[ids], self._pos_type[flat % seq], out=x[:n])
        _layer_norm_(x, *self._emb_ln, self._eps)
        # Additive mask: padded keys get the most negative float, i.e. weight exactly 0.
        add_mask = np.where(valid, np.float32(0), np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
        ctx = np.zeros((rows, dim), np.float32)
        ones = np.ones((seq, 1), np.float32)
        # Equal lengths (common after sorting) need no scatter, gather or mask; otherwise
        # tokens are scattered into a zeroed grid whose padded keys stay 0 and are masked.
        grid = None if n == bsz * seq else np.zeros((bsz * seq, 3 * dim), np.float32)
        rel = None if self._rel_bias is None else self._rel_bias[:, :seq, :seq]
        for w_qkv, b_qkv, w_o, b_o, g1, b1, w_i, b_i, w_out, b_out, g2, b2 in self._layers:
            qkv = np.matmul(x, w_qkv)
            qkv += b_qkv
            if grid is not None:
                grid[flat] = qkv[:n]
            qkv_grid = qkv[:n] if grid is None else grid
            q, k, v = qkv_grid.reshape(bsz, seq, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            scores = np.matmul(q, k.transpose(0, 1, 3, 2))  # (B, H, S, S); Q is pre-scaled
            if rel is not None:
                scores += rel
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
        return np.add.reduceat(x[:n], starts, axis=0) / lens[:, None].astype(np.float32)

    def _batches(self, lengths: np.ndarray, *, padded: bool = False) -> list[np.ndarray]:
        """Group text indices by similar token count, capping rows and attention memory.

        ``padded``: every row of a batch is computed at the batch's longest length (the
        ONNX Runtime path), so a batch is also cut where padding would exceed
        ``_PAD_SLACK`` of its real tokens. Without that cut, one chat session's turns
        (10 to 100 tokens) went through as one batch at twice their real token count:
        embedding a conversation session by session cost 2x embedding it in one call
        (788 LoCoMo turns, benchmarks/results/speed-notes.md). Smaller batches cost little
        here: one ORT call's overhead is worth a few tokens of compute."""
        order = np.argsort(lengths, kind="stable")
        batches: list[np.ndarray] = []
        cur: list[int] = []
        real = 0
        for i in order.tolist():  # ascending, so the newest text sets the batch's seq len
            n = int(lengths[i])
            full = len(cur) >= self.batch_size
            wasteful = padded and (len(cur) + 1) * n > (1.0 + _PAD_SLACK) * (real + n)
            if cur and (full or wasteful or (len(cur) + 1) * n ** 2 > _ATTN_BUDGET):
                batches.append(np.array(cur))
                cur, real = [], 0
            cur.append(i)
            real += n
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
        """Return float32 (len(texts), dim) unit rows, in input order."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("embed() takes a sequence of str")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
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
        if self._ort is not None:
            small = len(texts) <= self.small_batch and self.query_threads is not None
            threads = self.query_threads if small else _cores()
            for idx in self._batches(lengths, padded=True):
                rows = [encs[i].ids for i in idx.tolist()]
                out[idx] = self._forward_ort(lengths[idx], rows, threads or 1)
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
            return out
        with self._threads(len(texts)):
            for idx in self._batches(lengths):
                ids = np.concatenate([encs[i].ids for i in idx.tolist()]).astype(np.int64)
                out[idx] = self._forward(lengths[idx], ids)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
        return out
