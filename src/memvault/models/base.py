"""The embedder contract and the deterministic fake shipped for fast tests.

An embedder is one attribute pair and one method. Anything that turns texts into
L2-normalised float32 rows can be plugged in: the bundled MiniLM, an OpenAI-compatible
endpoint, or :class:`HashEmbedder` when a test needs speed and determinism more than
semantics.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # numpy is imported where vectors are handled: a by-id read needs none
    import numpy as np

__all__ = ["Embedder", "HashEmbedder", "normalize_rows", "embed_unique"]


@runtime_checkable
class Embedder(Protocol):
    #: Stable identity stored with every vault; a vault refuses a different embedder.
    id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dim) with unit-length rows."""
        ...


def normalize_rows(mat: np.ndarray) -> np.ndarray:
    import numpy as np

    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return mat / norms


def embed_unique(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """``embedder.embed(texts)``, each distinct text embedded once.

    Chat turns repeat themselves ("Caroline: Thanks!", the same sentence in its third-person
    form...). A text's vector does not depend on what else is embedded with it (up to float
    rounding in a batched product), so the rows are those ``embed`` returns."""
    import numpy as np

    first: dict[str, int] = {}
    where = [first.setdefault(t, len(first)) for t in texts]
    if len(first) == len(texts):
        return embedder.embed(list(texts))
    vectors = embedder.embed(list(first))
    return np.asarray(vectors)[np.asarray(where, dtype=np.int64)]


_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Feature-hashing embedder: words and character trigrams into signed buckets.

    Texts that share words get similar vectors, so retrieval tests behave sensibly, and
    the same text always maps to the same vector on every machine (blake2b, not hash()).
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.id = f"hash-{dim}"

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _WORD.findall(text)]
        feats = [f"w:{w}" for w in words]
        for w in words:
            padded = f"#{w}#"
            feats.extend(f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2))
        return feats

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = hashlib.blake2b(feat.encode(), digest_size=8).digest()
                bucket = int.from_bytes(h[:4], "little") % self.dim
                sign = 1.0 if h[4] & 1 else -1.0
                out[row, bucket] += sign * (2.0 if feat.startswith("w:") else 0.5)
        return normalize_rows(out)
