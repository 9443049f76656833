"""Quantized activation memory: a block's keys/values in int8 or int4 on disk.

A KV block in fp16 costs ``2 * layers * kv_heads * head_dim * 2`` bytes per token (23 KB
for SmolLM2-135M), so a vault of profile blocks outgrows any RAM budget quickly. Two
schemes, chosen per vault (``Settings.kv_quant``) and recorded in each block's entry with
the file layout, so a vault may hold blocks of several schemes and layouts and every one
loads as what it is.

Where layout 1's error came from (SmolLM2-135M, 20 of bench-quant's prompts, next-token
KL teacher-forced along the fp16 block's greedy output, measured while designing layout
2): the keys, not the values (int8 keys alone: KL 1.0e-4, values alone 1.2e-5), and
among the keys the first token (int8 with it in fp16: 4.3e-5; int4: 5.8e-3 -> 2.4e-3).
It is the attention sink: in most layers its key is a quarter of the others' norm and
its value near zero, yet it takes much of the attention mass, so the grid sized for the
other tokens' keys costs it 4x their relative error, and a small error in its logit
moves a lot of mass. A zero point on int8's keys then took KL to 1.5e-5; rotating int4's
keys beat not rotating them (2.5e-3 against 3.0e-3). Layout 2 therefore:

* keeps the first :data:`SINK_TOKENS` token(s) of each block in fp16 (counted in the
  bytes), and quantizes the other tokens without them;
* ``int8``: keys per *channel* over the block's tokens, asymmetric (scale + zero point:
  rotary channels are offset, and a zero point halves their step), values per *token*,
  symmetric (the KIVI split), one byte per number: ~0.516x of fp16 for ~200-token blocks;
* ``int4``: each token's head vector rotated by a block-diagonal Walsh-Hadamard matrix
  (SAW-INT4; :mod:`._rotation`), then asymmetric 4-bit codes, two per byte: values per
  token and group of channels, keys per channel and run of :data:`INT4_TOKEN_GROUP`
  tokens: ~0.29x of fp16.
* all layers of a part are one tensor (a 120-tensor safetensors header cost ~50 bytes per
  token), token ids int32.

Layout 1 (:mod:`.quant_v1`, no sink tokens, one tensor per layer) still loads.

Both are dequantized on page-in (:func:`decode`), into the model's dtype; generation never
sees codes. :func:`decode` checks every name, dtype and shape against the model's, so a
damaged or foreign file is an :class:`~memvault.errors.IntegrityError`, never a wrong
cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import ConfigurationError, IntegrityError
from ..settings import KV_QUANTS
from . import quant_v1
from ._rotation import rotate

if TYPE_CHECKING:
    import torch

__all__ = ["SCHEMES", "LAYOUT", "LAYOUTS", "SINK_TOKENS", "INT4_TOKEN_GROUP", "check_scheme",
           "check_layout", "decode", "encode", "tensor_names", "sink_tokens"]

SCHEMES = KV_QUANTS
#: The layout new block files are written in; :data:`LAYOUTS` are the ones that load.
LAYOUT = 2
LAYOUTS = (1, 2)
#: Leading tokens of a block kept in fp16 (the attention sink).
SINK_TOKENS = 1
INT4_TOKEN_GROUP = 64
_PARTS = ("keys", "values")


@dataclass(frozen=True)
class _Spec:
    """How one part (keys or values) is quantized."""

    bits: int
    per_channel: bool  # scales shared along tokens (per channel) or along channels (per token)
    group: int | None  # tokens (per channel) or channels (per token) per scale; None = all
    symmetric: bool
    rotate: bool

    @property
    def suffixes(self) -> tuple[str, ...]:
        return (".sink", ".q", ".scale") + (() if self.symmetric else (".zero",))


_SPECS = {
    "int8": {"keys": _Spec(8, True, None, False, False),
             "values": _Spec(8, False, None, True, False)},
    "int4": {"keys": _Spec(4, True, INT4_TOKEN_GROUP, False, True),
             "values": _Spec(4, False, 64, False, True)},
}


def check_scheme(scheme: object) -> str:
    """The scheme name, or ConfigurationError naming the ones there are."""
    if scheme not in SCHEMES:
        raise ConfigurationError(f"kv_quant must be one of {', '.join(SCHEMES)}, "
                                 f"got {scheme!r}", field="kv_quant")
    return str(scheme)


def check_layout(layout: object, what: str = "activation block") -> int:
    """The layout number, or IntegrityError: a block from a newer memvault is refused
    with a message saying so, not misread."""
    if isinstance(layout, bool) or not isinstance(layout, int) or layout not in LAYOUTS:
        raise IntegrityError(f"{what}: file layout {str(layout)[:20]} is not one this "
                             f"memvault reads ({', '.join(map(str, LAYOUTS))}); upgrade "
                             f"memvault or rebuild the block")
    return layout


def sink_tokens(n_tokens: int) -> int:
    """How many leading tokens a layout-2 block of ``n_tokens`` keeps in fp16 (at least
    one token is always quantized, so the codes are never empty)."""
    return max(0, min(SINK_TOKENS, n_tokens - 1))


def tensor_names(scheme: str, n_layers: int, layout: int = LAYOUT) -> set[str]:
    """Every tensor name a block file of ``scheme`` holds (besides ``input_ids``)."""
    if check_layout(layout) == 1:
        return quant_v1.tensor_names(scheme, n_layers)
    if check_scheme(scheme) == "fp16":
        return set(_PARTS)
    return {p + s for p in _PARTS for s in _SPECS[scheme][p].suffixes}


def _channel_group(spec: _Spec, d: int) -> int:
    g = spec.group or d
    while g > 1 and d % g:
        g //= 2
    if spec.bits == 4 and d % 2:
        raise ConfigurationError(f"int4 KV needs an even head size, got {d}")
    return g


def _quantize(x: "torch.Tensor", spec: _Spec) -> dict[str, "torch.Tensor"]:
    """Codes (uint8/int8; 4-bit packed two per byte along channels), fp16 scale and zero
    point of ``x`` (``... x T x D``) under ``spec``."""
    import torch

    t, d = x.shape[-2], x.shape[-1]
    r = rotate(x) if spec.rotate else x
    if spec.per_channel:  # ... D x groups x g: each channel's runs of tokens
        g = spec.group or t
        pad = (-t) % g
        if pad:  # the last token repeated to fill the last run (not stored)
            r = torch.cat([r, r[..., -1:, :].expand(*r.shape[:-2], pad, d)], dim=-2)
        y = r.transpose(-1, -2)
        y = y.reshape(*y.shape[:-1], y.shape[-1] // g, g)
    else:  # ... T x groups x g: each token's runs of channels
        g = _channel_group(spec, d)
        y = r.reshape(*r.shape[:-1], d // g, g)
    levels = 2 ** spec.bits - 1
    # the smallest normal fp16, not less: a constant group (e.g. a run padded with its last
    # token) must not get a scale that rounds to 0 in fp16 and codes of 0/0
    tiny = torch.finfo(torch.float16).tiny
    if spec.symmetric:
        half = levels // 2
        scale = (y.abs().amax(-1, keepdim=True) / half).clamp_min(tiny).to(torch.float16)
        q = torch.round(y / scale.float()).clamp_(-half, half) + half
        zero = None
    else:
        lo, hi = y.amin(-1, keepdim=True), y.amax(-1, keepdim=True)
        scale = ((hi - lo) / levels).clamp_min(tiny).to(torch.float16)
        zero = lo.to(torch.float16)
        q = torch.round((y - zero.float()) / scale.float()).clamp_(0, levels)
    q = q.to(torch.uint8)
    if spec.per_channel:  # back to ... T x D, the padding dropped; scales ... groups x D
        q = q.reshape(*q.shape[:-2], -1).transpose(-1, -2)[..., :t, :]
        scale = scale[..., 0].transpose(-1, -2)
        zero = None if zero is None else zero[..., 0].transpose(-1, -2)
    else:
        q = q.reshape(*x.shape)
        scale = scale[..., 0]
        zero = None if zero is None else zero[..., 0]
    if spec.bits == 4:
        q = q[..., 0::2] | (q[..., 1::2] << 4)
    out = {".q": q.contiguous(), ".scale": scale.contiguous()}
    if zero is not None:
        out[".zero"] = zero.contiguous()
    return out


def _dequantize(parts: Mapping[str, "torch.Tensor"], spec: _Spec, t: int, d: int
                ) -> "torch.Tensor":
    import torch

    q = parts[".q"]
    if spec.bits == 4:
        codes = torch.empty((*q.shape[:-1], d), dtype=torch.uint8)
        codes[..., 0::2] = q & 0x0F
        codes[..., 1::2] = q >> 4
        q = codes
    y = q.float()
    if spec.symmetric:
        y = y - (2 ** spec.bits - 1) // 2
    scale = parts[".scale"].float()
    zero = parts[".zero"].float() if ".zero" in parts else None
    if spec.per_channel:  # each run of g tokens shares its channel's scale
        g = spec.group or t
        scale = scale.repeat_interleave(g, dim=-2)[..., :t, :]
        y = y * scale + (zero.repeat_interleave(g, dim=-2)[..., :t, :] if zero is not None else 0)
    else:
        g = _channel_group(spec, d)
        y = y.reshape(*y.shape[:-1], d // g, g) * scale[..., None]
        if zero is not None:
            y = y + zero[..., None]
        y = y.reshape(*q.shape[:-1], d)
    return rotate(y, inverse=True) if spec.rotate else y


def _scale_shape(spec: _Spec, lead: Sequence[int], t: int, d: int) -> tuple[int, ...]:
    if spec.per_channel:
        return (*lead, -(-t // (spec.group or t)), d)
    return (*lead, t, d // _channel_group(spec, d))


def encode(kv: Sequence[tuple["torch.Tensor", "torch.Tensor"]],
           scheme: str) -> dict[str, "torch.Tensor"]:
    """The block file's tensors for ``kv`` (per layer ``(keys, values)``, each
    ``1 x heads x tokens x head_dim``) under ``scheme``, in layout :data:`LAYOUT`."""
    import torch

    check_scheme(scheme)
    out: dict[str, torch.Tensor] = {}
    for j, part in enumerate(_PARTS):
        x = torch.stack([layer[j].detach().to(torch.float32) for layer in kv])
        if scheme == "fp16":
            out[part] = x.to(torch.float16).contiguous()
            continue
        s = sink_tokens(x.shape[-2])
        out[part + ".sink"] = x[..., :s, :].to(torch.float16).contiguous()
        for suffix, tensor in _quantize(x[..., s:, :], _SPECS[scheme][part]).items():
            out[part + suffix] = tensor
    return out


def decode(tensors: Mapping[str, "torch.Tensor"], scheme: str, *, n_layers: int,
           shape: tuple[int, ...], dtype: "torch.dtype", what: str = "activation block",
           layout: int = LAYOUT) -> list[tuple["torch.Tensor", "torch.Tensor"]]:
    """Per-layer ``(keys, values)`` of ``shape`` in ``dtype`` from a block file's tensors
    written in ``layout``; IntegrityError when a name, dtype or shape is not what
    ``scheme`` writes there."""
    import torch

    check_scheme(scheme)
    if check_layout(layout, what) == 1:
        return quant_v1.decode(tensors, scheme, n_layers=n_layers, shape=shape, dtype=dtype,
                               what=what)
    if set(tensors) - {"input_ids"} != tensor_names(scheme, n_layers, layout):
        raise IntegrityError(f"{what}: wrong tensor names for a {scheme} block "
                             f"(layout {layout})")
    *lead, t, d = (n_layers, *shape)
    parts = []
    for part in _PARTS:
        if scheme == "fp16":
            x = tensors[part]
            _expect(x, (*lead, t, d), (torch.float16,), part, what)
            parts.append(x)
            continue
        spec, s = _SPECS[scheme][part], sink_tokens(t)
        sink = tensors[part + ".sink"]
        _expect(sink, (*lead, s, d), (torch.float16,), part + ".sink", what)
        got = {suffix: tensors[part + suffix] for suffix in spec.suffixes[1:]}
        _expect(got[".q"], (*lead, t - s, d // (8 // spec.bits)), (torch.uint8,), part + ".q",
                what)
        for suffix in spec.suffixes[2:]:
            _expect(got[suffix], _scale_shape(spec, lead, t - s, d), (torch.float16,),
                    part + suffix, what)
        parts.append(torch.cat([sink.float(), _dequantize(got, spec, t - s, d)], dim=-2))
    return [(parts[0][i].to(dtype), parts[1][i].to(dtype)) for i in range(n_layers)]


def _expect(t: "torch.Tensor", shape: Sequence[int], dtypes: tuple["torch.dtype", ...],
            name: str, what: str) -> None:
    if tuple(t.shape) != tuple(shape) or t.dtype not in dtypes:
        raise IntegrityError(f"{what}: {name} is {tuple(t.shape)} {t.dtype}, expected "
                             f"{tuple(shape)} {dtypes[0]}")
