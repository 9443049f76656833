"""Activation files shaped exactly like :class:`memvault.activation.ActivationStore` writes
them (a JSON index entry + a safetensors file per block), without loading a model: the
cube tests need real entries, which a load validates, not look-alikes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors.numpy import save

from memvault.activation.blocks import ActivationBlock, BlockEntry, block_hash
from memvault.models.local import ModelFingerprint

#: A model that does not exist: blocks only need a fingerprint to be filed under.
FP = ModelFingerprint("TinyForCausalLM", "a" * 64, "float32", "b" * 64)


def write_block(root: Path, token_ids: Sequence[int] = (1, 2, 3),
                items: Sequence[tuple[str, int, str]] = (), name: str | None = None
                ) -> tuple[str, str]:
    """One block under ``root/<FP.key>/``; returns the (entry, tensors) paths relative to
    ``root``. ``items`` are (memory id, version, text) the block was rendered from."""
    h = block_hash(FP, token_ids, None)
    data = save({"input_ids": np.asarray(token_ids, dtype=np.int64),
                 "layers.0.keys": np.zeros((1, 1, len(token_ids), 2), dtype=np.float16),
                 "layers.0.values": np.zeros((1, 1, len(token_ids), 2), dtype=np.float16)})
    block = ActivationBlock(
        hash=h, fingerprint=FP, messages=({"role": "system", "content": "profile"},),
        token_ids=tuple(token_ids), created_at="2026-01-01T00:00:00+00:00",
        entries=tuple(BlockEntry(i, v, hashlib.sha256(t.encode()).hexdigest())
                      for i, v, t in items),
        file_sha256=hashlib.sha256(data).hexdigest())
    directory = root / FP.key
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{h}.safetensors").write_bytes(data)
    (directory / f"{h}.json").write_text(json.dumps(block.to_dict()))
    if name is not None:
        (directory / "names.json").write_text(json.dumps({name: h}))
    return f"{FP.key}/{h}.json", f"{FP.key}/{h}.safetensors"
