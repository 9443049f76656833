"""Composed blocks repaired where they are wrong: CacheBlend's selective recompute.

Stitching per-chunk KV (:mod:`.compose`) is exact in layer 0 (a token's layer-0 keys and
values depend only on the token and its position, and RoPE re-rotation moves them
exactly) and wrong from layer 1 on, because a chunk's tokens never attended to the
chunks before it. Recomputing the *tail* of the context (``compose(recompute=r)``)
repairs only the last chunks; the first chunks keep their error however large ``r`` is,
and the question attends to all of them.

CacheBlend (Yao et al., 2024) measures where the error is instead: run layer 0 over
every context token (cheap: one layer of thirty), project layer 1's keys/values from
it, and compare them with the cached ones. The tokens whose KV deviates most are the
ones whose cross-chunk attention mattered; only those (a ``recompute`` fraction of the
chunk tokens) and the question are carried through the remaining layers, attending to
the stitched cache in which their fresh KV replaces the stale one, layer by layer.
At ``recompute=1`` this is a full prefill (tested against the model's own forward).

The forward is written out here (pre-norm Llama decoder layers: RMSNorm, grouped-query
attention with RoPE, gated MLP) because transformers has no way to run a layer over a
subset of positions; :func:`supports` says whether a model has that shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..errors import InvalidInput, ModelError
from ..models.local import LocalLLM

if TYPE_CHECKING:
    import torch

__all__ = ["blend", "deviation", "supports"]

_LLAMA_LIKE = {"llama", "mistral", "qwen2"}


def supports(llm: LocalLLM) -> bool:
    """Whether ``llm`` is a pre-norm Llama-shaped decoder this forward reproduces."""
    config = getattr(llm.model, "config", None)
    return (getattr(config, "model_type", None) in _LLAMA_LIKE
            and not getattr(config, "sliding_window", None)
            and hasattr(getattr(llm.model, "model", None), "layers"))


def _rope(llm: LocalLLM, x: "torch.Tensor", positions: "torch.Tensor"
          ) -> tuple["torch.Tensor", "torch.Tensor"]:
    cos, sin = llm.model.model.rotary_emb(x, positions[None, :])
    return cos[:, None], sin[:, None]  # (1, 1, n, dim): broadcast over heads


def _rotate(x: "torch.Tensor", cos: "torch.Tensor", sin: "torch.Tensor") -> "torch.Tensor":
    import torch

    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _qkv(layer: Any, normed: "torch.Tensor", cos: "torch.Tensor", sin: "torch.Tensor"
         ) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """Rotated queries, rotated keys and values (batch, heads, n, dim) of ``normed``."""
    attn = layer.self_attn
    shape = (*normed.shape[:-1], -1, attn.head_dim)
    q = attn.q_proj(normed).view(shape).transpose(1, 2)
    k = attn.k_proj(normed).view(shape).transpose(1, 2)
    v = attn.v_proj(normed).view(shape).transpose(1, 2)
    return _rotate(q, cos, sin), _rotate(k, cos, sin), v


def _finish(layer: Any, hidden: "torch.Tensor", q: "torch.Tensor", keys: "torch.Tensor",
            values: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """The rest of a decoder layer for the query tokens: attention over all keys allowed
    by ``mask`` (queries x keys, True = attend), output projection, MLP, residuals."""
    import torch

    attn = layer.self_attn
    groups = attn.num_key_value_groups
    keys = keys.repeat_interleave(groups, dim=1)
    values = values.repeat_interleave(groups, dim=1)
    out = torch.nn.functional.scaled_dot_product_attention(
        q, keys, values, attn_mask=mask, scale=attn.scaling)
    out = attn.o_proj(out.transpose(1, 2).reshape(*hidden.shape[:-1], -1))
    hidden = hidden + out
    return hidden + layer.mlp(layer.post_attention_layernorm(hidden))


def deviation(fresh: tuple["torch.Tensor", "torch.Tensor"],
              cached: tuple["torch.Tensor", "torch.Tensor"]) -> "torch.Tensor":
    """Per-token distance between two (keys, values) of one layer, relative to the
    cached vectors' size so that keys and values weigh alike: (n,)."""
    dk = (fresh[0] - cached[0]).norm(dim=-1) / cached[0].norm(dim=-1).clamp_min(1e-6)
    dv = (fresh[1] - cached[1]).norm(dim=-1) / cached[1].norm(dim=-1).clamp_min(1e-6)
    return (dk + dv).sum(dim=(0, 1))


def blend(llm: LocalLLM, stitched: Sequence[tuple["torch.Tensor", "torch.Tensor"]],
          head: int, ids: Sequence[int], tail: int, recompute: float,
          starts: Sequence[int] = (), firsts: int = 0) -> tuple[list[tuple[Any, Any]], int]:
    """KV of the whole prompt ``ids`` from the ``stitched`` KV of its first
    ``len(ids) - tail`` tokens (head exact, chunks re-rotated), repaired by recomputing
    the ``recompute`` share of the chunk tokens: first up to ``firsts`` tokens at the start
    of every chunk (``starts``: where each chunk begins), then those whose layer-1 KV
    deviates most; the ``tail`` (question) is always computed. Returns the KV per layer and how many
    chunk tokens were recomputed."""
    import torch

    if not supports(llm):
        raise ModelError(f"{llm.id}: selective recompute needs a Llama-shaped decoder")
    if not 0.0 <= float(recompute) <= 1.0:
        raise InvalidInput("recompute is a fraction in [0, 1]", field="recompute")
    n = len(ids)
    ctx = n - tail
    if tail < 1 or not 0 < head <= ctx:
        raise InvalidInput("a blended prompt needs a head, and a tail (the question)")
    model = llm.model.model
    layers = model.layers
    try:
        with llm.lock, torch.inference_mode():
            chunk_n = ctx - head
            budget = int(round(float(recompute) * chunk_n))
            # layer 0 over every token after the head (its KV is exact either way) when
            # some are to be chosen by their layer-1 KV; else over the question only
            first = head if budget > 0 else ctx
            x = model.embed_tokens(torch.tensor([list(ids[first:])], dtype=torch.long))
            positions = torch.arange(first, n)
            cos, sin = _rope(llm, x, positions)
            key_pos = torch.arange(n)
            layer = layers[0]
            q, k, v = _qkv(layer, layer.input_layernorm(x), cos, sin)
            keys = torch.cat((stitched[0][0][:, :, :first], k), dim=2)
            values = torch.cat((stitched[0][1][:, :, :first], v), dim=2)
            hidden = _finish(layer, x, q, keys, values, key_pos[None, :] <= positions[:, None])
            out: list[tuple[Any, Any]] = [(keys, values)]
            chosen = torch.zeros(chunk_n, dtype=torch.bool)
            if budget > 0:
                # a chunk's first tokens go first (index 0 of every chunk, then index 1,
                # ...): with no earlier chunk to attend to, they settle where the chunk's
                # later tokens look; then the largest layer-1 deviations
                layer = layers[1]
                _, k1, v1 = _qkv(layer, layer.input_layernorm(hidden[:, :chunk_n]),
                                 cos[:, :, :chunk_n], sin[:, :, :chunk_n])
                score = deviation((k1, v1), (stitched[1][0][:, :, head:ctx],
                                             stitched[1][1][:, :, head:ctx]))
                score = score / score.max().clamp_min(1e-6)  # in [0, 1]
                bounds = [max(0, s - head) for s in starts] + [chunk_n]
                for a, b in zip(bounds, bounds[1:]):
                    m = min(firsts, b - a)
                    score[a:a + m] += 2.0 + torch.arange(m, 0, -1, dtype=score.dtype)
                chosen[score.topk(budget).indices] = True
                keep = torch.cat((chosen, torch.ones(tail, dtype=torch.bool)))
            else:
                keep = torch.ones(tail, dtype=torch.bool)
            sel = torch.nonzero(keep).squeeze(1)  # offsets after ``first``
            hidden = hidden[:, sel]
            cos, sin = cos[:, :, sel], sin[:, :, sel]
            at = first + sel  # positions of the tokens carried on
            mask = key_pos[None, :] <= at[:, None]
            for i in range(1, len(layers)):
                layer = layers[i]
                q, k, v = _qkv(layer, layer.input_layernorm(hidden), cos, sin)
                keys = torch.cat((stitched[i][0][:, :, :ctx],
                                  k.new_zeros((*k.shape[:2], tail, k.shape[-1]))), dim=2)
                values = torch.cat((stitched[i][1][:, :, :ctx],
                                    v.new_zeros((*v.shape[:2], tail, v.shape[-1]))), dim=2)
                keys[:, :, at] = k
                values[:, :, at] = v
                hidden = _finish(layer, hidden, q, keys, values, mask)
                out.append((keys, values))
    except (InvalidInput, ModelError):
        raise
    except Exception as exc:
        raise ModelError(f"selective recompute failed: {exc}") from exc
    return out, int(chosen.sum())
