"""Layout 1 of quantized activation blocks (written until layout 2, :mod:`.quant`).

Kept so blocks written by earlier versions still load exactly as they were written (and
so tests can write one); new blocks are written in layout 2. One tensor per layer and
keys/values, no fp16 attention-sink tokens.

A KV block in fp16 costs ``2 * layers * kv_heads * head_dim * 2`` bytes per token (23 KB
for SmolLM2-135M), so a vault of profile blocks outgrows any RAM budget quickly. Two
schemes, chosen per vault (``Settings.kv_quant``) and recorded in each block's entry, so
a vault may hold blocks of several schemes and every one loads as what it is:

* ``int8``: keys per *channel* (one scale per head and channel over the block's tokens:
  keys carry a few large-magnitude channels, and a per-token scale would spend its range
  on them), values per *token* (one scale per head and token), symmetric, round to nearest
  (the KIVI split). 1 byte per number + a few scales: ~0.51x of fp16.
* ``int4``: each token's head vector is rotated by a block-diagonal Walsh-Hadamard
  matrix (blocks of :data:`HADAMARD_BLOCK` channels; SAW-INT4's rotation), which spreads
  outlier channels over the block so one 4-bit grid fits all of them, then quantized
  asymmetrically (scale + zero point), two codes per byte: values per token and group of
  :data:`INT4_GROUP` channels, keys per channel and group of :data:`INT4_GROUP` tokens
  (the KIVI split again: on SmolLM2's blocks it halves the keys' error, 0.048 against
  0.086 relative, at the same bytes). ~0.28x of fp16. The rotation is orthogonal, so
  dequantizing is the transposed rotation of the dequantized codes.

Both are dequantized on page-in (:func:`decode`), into the model's dtype; generation
never sees codes. Tensors are stored under ``layers.<i>.<keys|values>.<part>`` names;
:func:`decode` checks every name, dtype and shape against the model's, so a damaged or
foreign file is an :class:`~memvault.errors.IntegrityError`, never a wrong cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import ConfigurationError, IntegrityError
from ..settings import KV_QUANTS
from ._rotation import HADAMARD_BLOCK, rotate as _rotate

if TYPE_CHECKING:
    import torch

__all__ = ["SCHEMES", "HADAMARD_BLOCK", "INT4_GROUP", "check_scheme", "decode", "encode",
           "tensor_names"]

SCHEMES = KV_QUANTS
INT4_GROUP = 64
_PARTS = {"fp16": ("",), "int8": (".q", ".scale"), "int4": (".q", ".scale", ".zero")}


def check_scheme(scheme: object) -> str:
    """The scheme name, or ConfigurationError naming the ones there are."""
    if scheme not in SCHEMES:
        raise ConfigurationError(f"kv_quant must be one of {', '.join(SCHEMES)}, "
                                 f"got {scheme!r}", field="kv_quant")
    return str(scheme)


def tensor_names(scheme: str, n_layers: int) -> set[str]:
    """Every tensor name a block file of ``scheme`` holds (besides ``input_ids``)."""
    return {f"layers.{i}.{w}{part}" for i in range(n_layers) for w in ("keys", "values")
            for part in _PARTS[check_scheme(scheme)]}


def _group(head_dim: int) -> int:
    g = INT4_GROUP
    while g > 2 and head_dim % g:
        g //= 2
    if head_dim % g or g % 2:
        raise ConfigurationError(f"int4 KV needs an even head size, got {head_dim}")
    return g


def encode(kv: Sequence[tuple["torch.Tensor", "torch.Tensor"]],
           scheme: str) -> dict[str, "torch.Tensor"]:
    """The block file's tensors for ``kv`` (per layer ``(keys, values)``, each
    ``1 x heads x tokens x head_dim``) under ``scheme``."""
    import torch

    check_scheme(scheme)
    out: dict[str, torch.Tensor] = {}
    for i, (k, v) in enumerate(kv):
        for name, x in (("keys", k), ("values", v)):
            x = x.detach().to(torch.float32)
            base = f"layers.{i}.{name}"
            if scheme == "fp16":
                out[base] = x.to(torch.float16).contiguous()
            elif scheme == "int8":
                # keys: a scale per channel (over tokens); values: per token (over channels)
                dim = -2 if name == "keys" else -1
                scale = (x.abs().amax(dim=dim, keepdim=True) / 127.0).clamp_min(1e-8)
                scale = scale.to(torch.float16)
                q = torch.round(x / scale.to(torch.float32)).clamp_(-127, 127)
                out[base + ".q"] = q.to(torch.int8).contiguous()
                out[base + ".scale"] = scale.contiguous()
            else:
                out.update(_encode_int4(base, x, per_channel=name == "keys"))
    return out


def _token_groups(x: "torch.Tensor") -> "torch.Tensor":
    """``... x T x D`` -> ``... x D x T' / g x g``: channels' runs of ``INT4_GROUP`` tokens
    (the last token repeated to fill the last run)."""
    import torch

    t = x.shape[-2]
    pad = (-t) % INT4_GROUP
    if pad:
        x = torch.cat([x, x[..., -1:, :].expand(*x.shape[:-2], pad, x.shape[-1])], dim=-2)
    y = x.transpose(-1, -2)
    return y.reshape(*y.shape[:-1], y.shape[-1] // INT4_GROUP, INT4_GROUP)


def _encode_int4(base: str, x: "torch.Tensor", *, per_channel: bool
                 ) -> dict[str, "torch.Tensor"]:
    import torch

    d = x.shape[-1]
    rotated = _rotate(x)
    if per_channel:
        r = _token_groups(rotated)  # ... D x groups x g
    else:
        g = _group(d)
        r = rotated.reshape(*x.shape[:-1], d // g, g)
    lo, hi = r.amin(dim=-1, keepdim=True), r.amax(dim=-1, keepdim=True)
    scale = ((hi - lo) / 15.0).clamp_min(1e-8).to(torch.float16)
    zero = lo.to(torch.float16)
    q = torch.round((r - zero.to(torch.float32)) / scale.to(torch.float32)).clamp_(0, 15)
    q = q.to(torch.uint8)
    if per_channel:  # back to ... T x D, the padding dropped
        q = q.reshape(*q.shape[:-2], -1).transpose(-1, -2)[..., : x.shape[-2], :]
        scale, zero = scale[..., 0].transpose(-1, -2), zero[..., 0].transpose(-1, -2)
    else:
        q = q.reshape(*x.shape[:-1], d)
        scale, zero = scale[..., 0], zero[..., 0]
    packed = q[..., 0::2] | (q[..., 1::2] << 4)
    return {base + ".q": packed.contiguous(), base + ".scale": scale.contiguous(),
            base + ".zero": zero.contiguous()}


def decode(tensors: Mapping[str, "torch.Tensor"], scheme: str, *, n_layers: int,
           shape: tuple[int, ...], dtype: "torch.dtype", what: str = "activation block"
           ) -> list[tuple["torch.Tensor", "torch.Tensor"]]:
    """Per-layer ``(keys, values)`` of ``shape`` in ``dtype`` from a block file's tensors;
    IntegrityError when a name, dtype or shape is not what ``scheme`` writes."""
    import torch

    check_scheme(scheme)
    names = set(tensors) - {"input_ids"}
    if names != tensor_names(scheme, n_layers):
        raise IntegrityError(f"{what}: wrong tensor names for a {n_layers}-layer {scheme} "
                             f"block")
    *lead, d = shape
    out = []
    for i in range(n_layers):
        pair = []
        for name in ("keys", "values"):
            base = f"layers.{i}.{name}"
            if scheme == "fp16":
                x = tensors[base]
                _expect(x, shape, (torch.float16,), base, what)
            elif scheme == "int8":
                q, scale = tensors[base + ".q"], tensors[base + ".scale"]
                sshape = (*lead[:-1], 1, d) if name == "keys" else (*lead, 1)
                _expect(q, shape, (torch.int8,), base, what)
                _expect(scale, sshape, (torch.float16,), base + ".scale", what)
                x = q.to(torch.float32) * scale.to(torch.float32)
            else:
                x = _decode_int4(tensors, base, tuple(shape), what, per_channel=name == "keys")
            pair.append(x.to(dtype))
        out.append((pair[0], pair[1]))
    return out


def _decode_int4(tensors: Mapping[str, "torch.Tensor"], base: str, shape: tuple[int, ...],
                 what: str, *, per_channel: bool) -> "torch.Tensor":
    import torch

    *lead, t, d = shape
    packed, scale, zero = (tensors[base + p] for p in (".q", ".scale", ".zero"))
    _expect(packed, (*lead, t, d // 2), (torch.uint8,), base, what)
    if per_channel:
        groups = -(-t // INT4_GROUP)
        sshape: tuple[int, ...] = (*lead, groups, d)
    else:
        g = _group(d)
        sshape = (*lead, t, d // g)
    _expect(scale, sshape, (torch.float16,), base + ".scale", what)
    _expect(zero, sshape, (torch.float16,), base + ".zero", what)
    q = torch.empty((*lead, t, d), dtype=torch.uint8)
    q[..., 0::2] = packed & 0x0F
    q[..., 1::2] = packed >> 4
    s32, z32 = scale.to(torch.float32), zero.to(torch.float32)
    if per_channel:  # each run of INT4_GROUP tokens shares its channel's scale
        s32 = s32.repeat_interleave(INT4_GROUP, dim=-2)[..., :t, :]
        z32 = z32.repeat_interleave(INT4_GROUP, dim=-2)[..., :t, :]
        r = q.to(torch.float32) * s32 + z32
    else:
        r = (q.to(torch.float32).reshape(*lead, t, d // g, g) * s32[..., None]
             + z32[..., None]).reshape(*lead, t, d)
    return _rotate(r, inverse=True)


def _expect(t: "torch.Tensor", shape: Sequence[int], dtypes: tuple["torch.dtype", ...],
            name: str, what: str) -> None:
    if tuple(t.shape) != tuple(shape) or t.dtype not in dtypes:
        raise IntegrityError(f"{what}: {name} is {tuple(t.shape)} {t.dtype}, expected "
                             f"{tuple(shape)} {dtypes[0]}")
