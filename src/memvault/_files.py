"""File helpers shared by the parts that checksum what they write (index snapshots,
MemCube files, model fingerprints)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["sha256_file", "load_safetensors"]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (model files are ~100 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_safetensors(path: Path, sha256: str, what: str, **details: Any) -> dict[str, Any]:
    """Tensors of a safetensors file whose sha256 was recorded when it was written.

    The checksum is verified on the bytes read, before parsing: a damaged or swapped file is
    an IntegrityError, a missing one NotFound; nothing is ever unpickled."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from .errors import IntegrityError, NotFound

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotFound(f"{what} {path} is missing", **details) from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityError(f"{what} {path} fails its checksum", **details)
    try:
        return load(data)
    except (SafetensorError, ValueError) as exc:
        raise IntegrityError(f"unreadable {what} {path}: {exc}", **details) from exc
