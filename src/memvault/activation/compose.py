"""Blocks composed in any order: one KV cache per memory chunk, stitched per prompt.

A prefix block (:mod:`.blocks`) is reusable only as the exact first tokens of a prompt.
Retrieval returns a different set and order of memories for every query, so here each
memory chunk's keys/values are computed once, on their own, and a prompt is assembled
from the chunks in whatever order retrieval gives (Cache-Craft, KVShare, CacheBlend):

* a chunk is prefilled right after the prompt's fixed *head* (the chat template's system
  turn and the start of the user turn), so it sees the same attention sink it sees in a
  real prompt; its KV is kept without the head's;
* placed at another offset, its keys are re-rotated: RoPE is a rotation by position, and
  rotations compose, so a key computed at position p moves to p + d by one more rotation
  by d (values carry no position and are reused as they are);
* what is lost is cross-chunk attention: a chunk's tokens never saw the chunks before it,
  and in SmolLM2 that moves their deep-layer values by ~50-70 % (relative norm), for
  every token, not a few. ``recompute`` (a share of the chunk tokens) repairs some:
  ``select="deviation"`` (default, :mod:`.blend`) recomputes each chunk's first tokens,
  then those whose layer-1 KV deviates most (CacheBlend), through every layer over the
  stitched cache; ``select="tail"`` prefills the context's last tokens again. 0: pure
  composition; 1: a full prefill (tested exact).

The result is a transformers ``DynamicCache`` over the prompt's first tokens; generation
prefills only the rest, so time to first token falls with the share of the prompt that
came from cached chunks. It is an approximation of a full prefill, measured by ``make
bench-compose`` (answer agreement, first-token KL and TTFT vs recompute fraction).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import InvalidInput, ModelError
from ..models.local import LocalLLM
from .blocks import live_adapter

if TYPE_CHECKING:
    import torch

__all__ = ["ChunkCache", "ChunkKV", "ComposedPrompt", "Composition", "compose", "compose_prefix",
           "prompt_pieces", "rerotate", "shared_cache"]

KV = list[tuple["torch.Tensor", "torch.Tensor"]]
SELECTIONS = ("tail", "deviation")


@dataclass
class ChunkKV:
    """One chunk's tokens and keys/values, computed at positions ``start ..`` after a head."""

    ids: list[int]
    kv: KV = field(repr=False)
    start: int  # the position its first token had when computed (the head's length)

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size()
                   for k, v in self.kv)


@dataclass
class ComposedPrompt:
    """The full prompt's ids, and a cache over its first ``cached`` tokens."""

    input_ids: "torch.Tensor"
    cache: Any
    cached: int
    chunk_tokens: int
    recomputed: int
    reused_chunks: int
    new_chunks: int


@dataclass(frozen=True)
class Composition:
    """Ask ``Vault.chat`` to compose the retrieved memories from per-chunk KV (pass it as
    ``activation=``, or set ``Settings.chat_compose``): ``recompute`` is the share of the
    chunk tokens computed again, chosen by ``select`` ("deviation": each chunk's first
    ``firsts`` tokens, then the largest layer-1 KV deviations, :mod:`.blend`; "tail": the
    last ones); ``cache`` defaults to the model's :func:`shared_cache`.

    ``all_within`` (tokens; None: off): routing by budget. A short history does not need
    retrieval: when all of the scope's memories fit in this many tokens, chat serves all
    of them (oldest first, so the prompt up to the newest memory is the same from one
    query to the next) from their cached prefix (:func:`compose_prefix`: exact, the full
    prefill's answer) instead of searching. Given here it overrides the vault's
    ``chat_all_within`` setting for the call; ``recompute`` does not apply to that route.
    """

    recompute: float = 0.05
    cache: "ChunkCache | None" = None
    all_within: int | None = None
    select: str = "deviation"
    firsts: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.recompute, bool) or not isinstance(self.recompute, (int, float)) \
                or not 0.0 <= float(self.recompute) <= 1.0:
            raise InvalidInput("recompute is a fraction in [0, 1]", field="recompute")
        if self.all_within is not None and (
                isinstance(self.all_within, bool) or not isinstance(self.all_within, int)
                or not 1 <= self.all_within <= 32_768):
            raise InvalidInput("all_within is a token budget in [1, 32768] or None",
                               field="all_within")
        if self.select not in SELECTIONS:
            raise InvalidInput(f"select is one of {', '.join(SELECTIONS)}", field="select")
        if isinstance(self.firsts, bool) or not isinstance(self.firsts, int) \
                or not 0 <= self.firsts <= 4096:
            raise InvalidInput("firsts is a token count in [0, 4096]", field="firsts")


def rerotate(keys: "torch.Tensor", delta: int, inv_freq: "torch.Tensor") -> "torch.Tensor":
    """Keys (..., n, dim) rotated by RoPE by ``delta`` more positions (NeoX half-split
    layout, as transformers' Llama applies it)."""
    import torch

    if delta == 0:
        return keys
    freqs = float(delta) * inv_freq.to(torch.float64)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(keys.dtype), emb.sin().to(keys.dtype)
    half = keys.shape[-1] // 2
    rotated = torch.cat((-keys[..., half:], keys[..., :half]), dim=-1)
    return keys * cos + rotated * sin


def _inv_freq(llm: LocalLLM) -> "torch.Tensor":
    rotary = getattr(getattr(llm.model, "model", None), "rotary_emb", None)
    inv = getattr(rotary, "inv_freq", None)
    if inv is None:
        raise ModelError(f"{llm.id}: no rotary embedding found; chunks cannot be re-placed")
    return inv


class ChunkCache:
    """Chunk KV in memory, keyed by model, adapter state, head and chunk tokens (LRU,
    at most ``max_chunks`` chunks and ``max_bytes`` of KV; not under the vault's pager).

    The head is part of the key because a chunk's KV depends on what preceded it when
    it was computed; the adapter state because LoRA changes every key and value.
    """

    def __init__(self, max_chunks: int = 512, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_chunks < 1:
            raise InvalidInput("a chunk cache holds at least one chunk", field="max_chunks")
        if max_bytes < 1:
            raise InvalidInput("a chunk cache holds at least one byte", field="max_bytes")
        self.max_chunks, self.max_bytes, self.nbytes = max_chunks, max_bytes, 0
        self._items: "OrderedDict[str, ChunkKV]" = OrderedDict()
        self._heads: "OrderedDict[str, KV]" = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def _key(llm: LocalLLM, head: Sequence[int], ids: Sequence[int]) -> str:
        doc = f"{llm.fingerprint.key}|{live_adapter(llm)}|{list(head)}|{list(ids)}"
        return hashlib.sha256(doc.encode()).hexdigest()

    def head(self, llm: LocalLLM, head: Sequence[int]) -> KV:
        """The head's own KV (the start of every composed cache)."""
        key = self._key(llm, head, [])
        with self._lock:
            kv = self._heads.get(key)
        if kv is None:
            kv = _prefill(llm, list(head), [], None)
            with self._lock:
                self._heads[key] = kv
                while len(self._heads) > 16:
                    self._heads.popitem(last=False)
        return kv

    def chunk(self, llm: LocalLLM, head: Sequence[int], ids: Sequence[int]
              ) -> tuple[ChunkKV, bool]:
        """The chunk's KV (computed after ``head`` on a miss); and whether it was cached."""
        key = self._key(llm, head, ids)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit, True
        kv = _prefill(llm, list(head), list(ids), self.head(llm, head))
        chunk = ChunkKV(list(ids), kv, len(head))
        with self._lock:
            self._keep(key, chunk)
        return chunk, False

    def _keep(self, key: str, chunk: ChunkKV) -> None:
        """Store a chunk and drop the least recently used beyond the count or the bytes
        (lock held): a chunk's KV is ~46 KB per token in float32 on SmolLM2."""
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._items[key] = chunk
        self.nbytes += chunk.nbytes
        while len(self._items) > 1 and (len(self._items) > self.max_chunks
                                        or self.nbytes > self.max_bytes):
            self.nbytes -= self._items.popitem(last=False)[1].nbytes

    def prefix(self, llm: LocalLLM, head: Sequence[int], chunks: Sequence[Sequence[int]]
               ) -> tuple[KV, int]:
        """The KV of ``head + chunks...`` (head included), exactly as one prefill computes
        it; and how many chunks came from the cache. Each chunk is kept under the hash of
        everything before it, so a prompt that grows by appending reuses all it had and
        prefills only the new chunks, over the cached ones; a chunk changed in the middle
        recomputes from there on."""
        import torch

        digest = hashlib.sha256(f"{llm.fingerprint.key}|{live_adapter(llm)}|"
                                f"{list(head)}".encode())
        keys = []
        for ids in chunks:
            digest = digest.copy()
            digest.update(("|" + ",".join(map(str, ids))).encode())
            keys.append("prefix:" + digest.hexdigest())
        found: list[ChunkKV] = []
        with self._lock:
            for key in keys:
                hit = self._items.get(key)
                if hit is None:
                    break
                self._items.move_to_end(key)
                found.append(hit)
        keys_, values_ = [], []
        for i, (k, v) in enumerate(self.head(llm, head)):
            keys_.append([k, *(c.kv[i][0] for c in found)])
            values_.append([v, *(c.kv[i][1] for c in found)])
        kv = [(torch.cat(k, dim=2), torch.cat(v, dim=2)) for k, v in zip(keys_, values_)]
        rest = [list(c) for c in chunks[len(found):]]
        if not any(rest):
            return kv, len(found)
        start = len(head) + sum(c.n_tokens for c in found)
        flat = [t for c in rest for t in c]
        new = _prefill(llm, [0] * start, flat, kv)  # positions only: the KV is given
        made, at = [], 0
        for key, ids in zip(keys[len(found):], rest):
            part = [(k[:, :, at:at + len(ids)].clone(), v[:, :, at:at + len(ids)].clone())
                    for k, v in new]
            made.append((key, ChunkKV(ids, part, start + at)))
            at += len(ids)
        with self._lock:
            for key, chunk in made:
                self._keep(key, chunk)
        return [(torch.cat((k, nk), dim=2), torch.cat((v, nv), dim=2))
                for (k, v), (nk, nv) in zip(kv, new)], len(found)


_SHARED: "weakref.WeakKeyDictionary[LocalLLM, ChunkCache]" = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_cache(llm: LocalLLM) -> ChunkCache:
    """The process-wide chunk cache of ``llm`` (what chat composes from)."""
    with _SHARED_LOCK:
        cache = _SHARED.get(llm)
        if cache is None:
            cache = _SHARED[llm] = ChunkCache()
        return cache


def prompt_pieces(llm: LocalLLM, messages: Sequence[Any], lines: Sequence[str],
                  marker: str) -> tuple[list[int], list[list[int]], list[int]]:
    """Split the chat-templated prompt into head (through ``marker``), one chunk per
    memory line (``line + "\n"``, in the order given) and tail, each tokenized alone.

    Tokenizing pieces apart can differ from tokenizing the whole text at a boundary; the
    composed prompt is still the same text, and the full prefill it is compared with (in
    the benchmark) uses the same pieces.
    """
    text = llm.tokenizer.apply_chat_template([dict(m) for m in messages],
                                             add_generation_prompt=True, tokenize=False)
    at = text.find(marker)
    if at < 0:
        raise InvalidInput("the prompt does not contain the memory marker", field="marker")
    pos = at + len(marker)
    chunks = []
    for line in lines:
        piece = line + "\n"
        if not text.startswith(piece, pos):
            raise InvalidInput("a memory line is not where the prompt should have it")
        chunks.append(llm.encode(piece)[0].tolist())
        pos += len(piece)
    return llm.encode(text[:at + len(marker)])[0].tolist(), chunks, \
        llm.encode(text[pos:])[0].tolist()


def _prefill(llm: LocalLLM, head: list[int], ids: list[int], head_kv: KV | None) -> KV:
    """KV of ``ids`` run after ``head`` (whose KV is ``head_kv``), without the head's."""
    import torch
    from transformers import DynamicCache

    try:
        with llm.lock, torch.inference_mode():
            if head_kv is None:
                x = torch.tensor([head], dtype=torch.long)
                out = llm.model(x, attention_mask=torch.ones_like(x), use_cache=True)
                return [(l.keys.clone(), l.values.clone()) for l in out.cache.layers]
            cache = DynamicCache(ddp_cache_data=[(k.clone(), v.clone()) for k, v in head_kv],
                                 config=llm.model.config)
            x = torch.tensor([ids], dtype=torch.long)
            mask = torch.ones((1, len(head) + len(ids)), dtype=torch.long)
            out = llm.model(x, attention_mask=mask, cache=cache, use_cache=True)
            n = len(head)
            return [(l.keys[:, :, n:].clone(), l.values[:, :, n:].clone())
                    for l in out.cache.layers]
    except Exception as exc:
        raise ModelError(f"local prefill failed: {exc}") from exc


def compose(llm: LocalLLM, head: Sequence[int], chunks: Sequence[Sequence[int]],
            tail: Sequence[int], *, recompute: float = 0.0,
            cache: ChunkCache | None = None, select: str = "tail",
            firsts: int = 0) -> ComposedPrompt:
    """The prompt ``head + chunks... + tail`` with a cache built from per-chunk KV.

    ``chunks`` in any order (each cached on its own in ``cache``); ``recompute``: the
    fraction of the chunks' tokens computed again over the composed cache, repairing
    their cross-chunk attention. ``select="tail"``: the last ones, left out of the cache
    so generation prefills them (with ``tail``, the question); ``select="deviation"``:
    each chunk's first ``firsts`` tokens, then the ones whose layer-1 KV deviates most
    from a recomputation (:mod:`.blend`, CacheBlend); the cache then covers all but the
    prompt's last token.
    """
    import torch
    from transformers import DynamicCache

    if not 0.0 <= float(recompute) <= 1.0:
        raise InvalidInput("recompute is a fraction in [0, 1]", field="recompute")
    if not head or not tail:
        raise InvalidInput("a composed prompt needs a head and a tail (the question)")
    if select not in SELECTIONS:
        raise InvalidInput(f"select is one of {', '.join(SELECTIONS)}", field="select")
    if isinstance(firsts, bool) or not isinstance(firsts, int) or not 0 <= firsts <= 4096:
        raise InvalidInput("firsts is a token count in [0, 4096]", field="firsts")
    cache = cache if cache is not None else ChunkCache()
    inv_freq = _inv_freq(llm)
    layers = [(k, v) for k, v in cache.head(llm, head)]
    keys = [[k] for k, _ in layers]
    values = [[v] for _, v in layers]
    pos, reused, starts = len(head), 0, []
    for ids in chunks:
        if not ids:
            continue
        starts.append(pos)
        chunk, hit = cache.chunk(llm, head, ids)
        reused += hit
        # one rotation for every layer's keys (same positions, same angles)
        moved = rerotate(torch.stack([k for k, _ in chunk.kv]), pos - chunk.start, inv_freq)
        for i, (_, v) in enumerate(chunk.kv):
            keys[i].append(moved[i])
            values[i].append(v)
        pos += chunk.n_tokens
    total = sum(len(c) for c in chunks)
    ids = [*head, *(t for c in chunks for t in c), *tail]
    made = sum(1 for c in chunks if c) - reused
    if select == "deviation":
        from .blend import blend

        stitched = [(torch.cat(k, dim=2), torch.cat(v, dim=2)) for k, v in zip(keys, values)]
        full, redo = blend(llm, stitched, len(head), ids, len(tail), float(recompute),
                           starts, firsts)
        keep = len(ids) - 1  # generation runs the last token, for its logits
        data = [(k[:, :, :keep].contiguous(), v[:, :, :keep].contiguous()) for k, v in full]
        return ComposedPrompt(torch.tensor([ids], dtype=torch.long),
                              DynamicCache(ddp_cache_data=data, config=llm.model.config),
                              keep, total, redo, reused, made)
    redo = int(round(float(recompute) * total))
    keep = pos - redo
    data = [(torch.cat(k, dim=2)[:, :, :keep].contiguous(),
             torch.cat(v, dim=2)[:, :, :keep].contiguous()) for k, v in zip(keys, values)]
    return ComposedPrompt(torch.tensor([ids], dtype=torch.long),
                          DynamicCache(ddp_cache_data=data, config=llm.model.config), keep,
                          total, redo, reused, made)


def compose_prefix(llm: LocalLLM, head: Sequence[int], chunks: Sequence[Sequence[int]],
                   tail: Sequence[int], *, cache: ChunkCache | None = None) -> ComposedPrompt:
    """The prompt ``head + chunks... + tail`` with a cache over ``head + chunks`` from
    :meth:`ChunkCache.prefix`: no approximation (each chunk was computed after the ones
    before it), so generation gives the full prefill's answer and prefills only ``tail``
    (and any chunk not cached yet). For a fixed order, as routing by budget uses."""
    import torch
    from transformers import DynamicCache

    if not head or not tail:
        raise InvalidInput("a composed prompt needs a head and a tail (the question)")
    cache = cache if cache is not None else ChunkCache()
    live = [list(c) for c in chunks if c]
    kv, reused = cache.prefix(llm, head, live)
    ids = [*head, *(t for c in live for t in c), *tail]
    cached = len(ids) - len(tail)
    return ComposedPrompt(torch.tensor([ids], dtype=torch.long),
                          DynamicCache(ddp_cache_data=[(k.contiguous(), v.contiguous())
                                                       for k, v in kv],
                                       config=llm.model.config),
                          cached, cached - len(head), 0, reused, len(live) - reused)
