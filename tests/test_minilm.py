"""Tests for the pure-numpy all-MiniLM-L6-v2 embedder.

Why these exist: every vault stores vectors from this embedder and searches them later,
so a silent numeric drift (wrong GELU, wrong pooling, rows returned out of order after
length-sorting) would quietly degrade retrieval without any other test failing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from memvault.errors import InvalidInput, ModelError
from memvault.models import _encoder
from memvault.models.minilm import MiniLMEmbedder, default_model_dir

MIXED = [
    "hello",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "",
    "Memory systems for LLM agents need versioned, crash-safe storage and hybrid retrieval.",
    "Ünïcödé café — 東京は晴れです。",
    "ok",
]

# A deterministic > 300-token text: 320 common words, one token each, plus [CLS]/[SEP].
LONG = " ".join(["apple", "river", "stone", "cloud", "green"] * 64)

PARITY = [
    "The cat sits on the mat",
    "A kitten is sitting on a rug",
    "Stock markets fell sharply today",
    "What did the user say about coffee in the morning meeting?",
    "Remember that Alice prefers tea over coffee and dislikes early calls.",
    "",
    "a",
    "I",
    "2024-03-17T09:30:00Z deploy v1.2.3 failed: ECONNRESET (retry=3)",
    "def embed(texts): return model.encode(texts)",
    "Café naïve façade résumé — coöperate, jalapeño, São Paulo, Zürich.",
    "東京は今日とても暑いです。明日は雨が降るでしょう。",
    "Москва — столица России, а Киев — столица Украины.",
    "مرحبا بالعالم، هذه جملة اختبار.",
    "Emoji test 🙂🚀 with symbols ©®™ and math ∑∫√π ≈ 3.14159",
    "UPPER CASE AND lower case Should Embed The Same After Lowercasing",
    "   leading and trailing whitespace   \n\t",
    "The meeting was moved from Tuesday to Thursday because the client was travelling.",
    LONG,
    " ".join(["Sentence-transformers truncates to max_seq_length tokens."] * 40),
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    # The float32 numpy port; the int8 ONNX default is held to fp32 in test_encoder_onnx.py.
    return MiniLMEmbedder(backend="numpy")


def test_shapes_dtype_and_unit_norms(embedder: MiniLMEmbedder) -> None:
    out = embedder.embed(MIXED)
    assert out.shape == (len(MIXED), 384) and out.dtype == np.float32
    assert MiniLMEmbedder.id == "all-minilm-l6-v2" and MiniLMEmbedder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(out).all()


def test_empty_input(embedder: MiniLMEmbedder) -> None:
    out = embedder.embed([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_deterministic_and_independent_of_batching(embedder: MiniLMEmbedder) -> None:
    """Sorting, packing and padding are internal: each row must equal the text alone."""
    first = embedder.embed(MIXED)
    assert np.array_equal(first, embedder.embed(MIXED))
    alone = np.vstack([embedder.embed([t]) for t in MIXED])
    np.testing.assert_allclose(first, alone, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(MIXED[::-1])[::-1], first, atol=1e-5)
    tiny_batches = MiniLMEmbedder(batch_size=2, backend="numpy").embed(MIXED)  # padded path
    np.testing.assert_allclose(tiny_batches, first, atol=1e-5)


def test_overflow_guarded_softmax_path_agrees(
    embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The max-shifted softmax (taken only for extreme logits) must give the same rows."""
    fast = embedder.embed(MIXED)
    monkeypatch.setattr(_encoder, "_SAFE_LOGIT", 0.0)  # force the shifted path everywhere
    np.testing.assert_allclose(embedder.embed(MIXED), fast, atol=1e-5)


def test_semantic_sanity(embedder: MiniLMEmbedder) -> None:
    cat, kitten, stocks = embedder.embed(
        ["The cat sits on the mat", "A kitten is sitting on a rug",
         "Stock markets fell sharply today"]
    )
    assert float(cat @ kitten) > float(cat @ stocks) + 0.2


def test_long_input_is_truncated_to_max_seq_length(embedder: MiniLMEmbedder) -> None:
    tail = LONG + " but this ending lies far beyond the 256 token window"
    a, b = embedder.embed([LONG, tail])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert embedder.max_length == 256
    short = MiniLMEmbedder(max_length=8).embed([LONG, tail])
    assert float(short[0] @ a) < 0.999  # a different window gives a different vector


def test_bad_arguments_raise_invalid_input(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(InvalidInput):
        embedder.embed("a bare string is a sequence of characters")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        embedder.embed(["ok", None])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        MiniLMEmbedder(batch_size=0)
    with pytest.raises(InvalidInput):
        MiniLMEmbedder(max_length=10_000)


def test_missing_model_files_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        MiniLMEmbedder(model_dir=tmp_path)


def test_missing_package_raises_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="not installed"):
        default_model_dir()

    def broken(name: str) -> None:
        raise ValueError("broken spec")

    monkeypatch.setattr(importlib.util, "find_spec", broken)
    with pytest.raises(ModelError) as info:
        default_model_dir()
    assert isinstance(info.value.__cause__, ValueError)


def test_corrupt_weights_raise_model_error_with_cause(tmp_path: Path) -> None:
    src = default_model_dir()
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json"):
        shutil.copy(src / name, tmp_path / name)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    emb = MiniLMEmbedder(model_dir=tmp_path)  # construction is cheap: loads on first use
    with pytest.raises(ModelError) as info:
        emb.embed(["x"])
    assert info.value.__cause__ is not None


def reference_vectors(name: str, texts: list[str]) -> np.ndarray:
    """sentence-transformers' vectors for ``texts``, written by scripts/parity_reference.py
    (the reference model needs torch + scipy + scikit-learn; the test venv does not)."""
    from safetensors import safe_open

    path = Path(__file__).parent / "data" / "parity" / f"{name}.safetensors"
    with safe_open(str(path), framework="numpy") as f:
        meta, vectors = f.metadata(), f.get_tensor("vectors")
    digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()
    assert meta["texts_sha256"] == digest, (
        f"the parity texts changed since {path.name} was written: "
        "run scripts/parity_reference.py")
    assert vectors.shape[0] == len(texts)
    return vectors


def test_parity_with_sentence_transformers(embedder: MiniLMEmbedder) -> None:
    """The numpy port must reproduce the reference model, truncation included."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    assert len(tokenizer.encode(LONG).ids) > 300  # really exercises truncation
    ref = reference_vectors("minilm", PARITY)
    ours = embedder.embed(PARITY)
    cosines = np.sum(ours.astype(np.float64) * ref, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= 0.9999, f"row {worst} ({PARITY[worst][:40]!r}) cosine {cosines[worst]}"
