"""Tests for the ONNX Runtime (int8) path of the bundled MiniLM encoder.

Why these exist: the default embedder runs int8 dense layers when onnxruntime is
installed, which makes ingest and query embedding several times faster; a quantisation
or graph bug would drift every stored vector. The int8 path must stay within cosine 0.99
of the float32 numpy port on 1,000 real texts, the float32 ONNX graph must be the same
network as the numpy port, and rows must come back in input order.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from memvault.errors import InvalidInput, ModelError
from memvault.evaluation.generate import generate
from memvault.models.minilm import MiniLMEmbedder

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="the fast extra (onnxruntime, onnx) is not installed")


def _texts(n: int) -> list[str]:
    """Distinct conversation turns from the generated suite: real chat-like sentences."""
    out: list[str] = []
    seen: set[str] = set()
    samples = (s for seed in range(1, 50) for s in generate(seed, conversations=4))
    for sample in samples:
        if len(out) >= n:
            break
        conv = sample["conversation"]
        for key in sorted(k for k in conv if k.startswith("session_") and
                          isinstance(conv[k], list)):
            for turn in conv[key]:
                text = turn["text"]
                if text not in seen:
                    seen.add(text)
                    out.append(text)
    assert len(out) >= n, len(out)
    return out[:n]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _texts(1000)


@pytest.fixture(scope="module")
def fp32() -> np.ndarray:
    return MiniLMEmbedder(backend="numpy")


@pytest.fixture(scope="module")
def reference(fp32: MiniLMEmbedder, texts: list[str]) -> np.ndarray:
    return fp32.embed(texts)


def test_default_backend_is_float32_onnx_and_int8_is_named() -> None:
    from memvault.models import get_embedder

    emb = MiniLMEmbedder()
    emb.embed(["warm up"])
    assert emb.active_backend == "onnx"
    int8 = get_embedder("minilm-int8")
    int8.embed(["warm up"])
    assert int8.active_backend == "onnx-int8" and int8.id == emb.id


@pytest.mark.slow
def test_int8_within_cosine_099_of_fp32_on_1000_texts(texts: list[str],
                                                     reference: np.ndarray) -> None:
    got = MiniLMEmbedder(backend="onnx-int8").embed(texts)
    assert got.shape == reference.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = np.sum(got.astype(np.float64) * reference, axis=1)
    worst = int(np.argmin(cos))
    assert cos[worst] >= 0.99, f"text {worst} ({texts[worst][:50]!r}) cosine {cos[worst]:.4f}"
    # Same nearest neighbour for the large majority of texts (ranking is what search uses).
    nn_ref = np.argsort(-(reference @ reference.T), axis=1)[:, 1]
    nn_got = np.argsort(-(got @ got.T), axis=1)[:, 1]
    assert np.mean(nn_ref == nn_got) >= 0.9


def test_fp32_onnx_graph_is_the_numpy_network(texts: list[str], reference: np.ndarray) -> None:
    got = MiniLMEmbedder(backend="onnx").embed(texts[:200])
    cos = np.sum(got.astype(np.float64) * reference[:200], axis=1)
    assert cos.min() >= 0.9999


def test_rows_in_input_order_and_batching_independent(texts: list[str]) -> None:
    emb = MiniLMEmbedder(backend="onnx-int8", batch_size=16)
    mixed = texts[:40:3] + ["", "ok", " ".join(["apple river stone"] * 150)] + texts[1:40:3]
    together = emb.embed(mixed)
    alone = np.stack([emb.embed([t])[0] for t in mixed])  # one-thread query session
    assert np.sum(together * alone, axis=1).min() >= 0.999
    reversed_ = emb.embed(mixed[::-1])[::-1]
    assert np.sum(together * reversed_, axis=1).min() >= 0.999


def test_bad_backend_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as err:
        MiniLMEmbedder(backend="tensorrt")
    assert err.value.code == "invalid_input"
