"""Block-diagonal Walsh-Hadamard rotation of a head vector (SAW-INT4's rotation).

Rotating each token's head vector by an orthonormal Hadamard matrix (blocks of
:data:`HADAMARD_BLOCK` channels) spreads a few large-magnitude channels over the block,
so one low-bit grid per token fits them all; the inverse is the transpose.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

HADAMARD_BLOCK = 64


@lru_cache(maxsize=8)
def _hadamard(n: int) -> "torch.Tensor":
    """The orthonormal Walsh-Hadamard matrix of order ``n`` (a power of two)."""
    import torch

    h = torch.ones(1, 1, dtype=torch.float32)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / math.sqrt(n)


def block_size(head_dim: int) -> int:
    """The rotation's block size for this head size: the largest power of two <= 64
    dividing it (1 = no rotation, for odd sizes)."""
    b = HADAMARD_BLOCK
    while b > 1 and head_dim % b:
        b //= 2
    return b


def rotate(x: "torch.Tensor", inverse: bool = False) -> "torch.Tensor":
    """Block-diagonal Hadamard rotation of the last dimension (per token, per head)."""
    d = x.shape[-1]
    b = block_size(d)
    if b == 1:
        return x
    h = _hadamard(b)
    shaped = x.reshape(*x.shape[:-1], d // b, b)
    out = shaped @ (h.T if inverse else h)  # h is symmetric and orthonormal: h.T = h^-1
    return out.reshape(x.shape)
