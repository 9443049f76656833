"""``Vault.chat``: answer a query with all three kinds of memory.

* plaintext: the scope's memories most relevant to the query are retrieved and written
  into the user message; or, routing by budget, when all of them fit
  ``settings.chat_all_within`` tokens, all of them, oldest first, with their KV from the
  cached prefix (:func:`~memvault.activation.compose.compose_prefix`): a short history
  needs no retrieval, and the answer is the full-context one;
* activation: the scope's profile and hottest facts are rendered as the system message,
  whose KV cache (:mod:`memvault.activation`) is passed to generation as its ``cache`` so
  that block is not prefilled again;
* parametric: the scope's LoRA adapter, if any, is enabled while generating, when
  :func:`route_adapter` lets it: only for a query about the adapter's own memories (a
  topic gate), and never an adapter whose general-knowledge retention was not measured
  or is below 0.95 (:mod:`memvault.parametric.retention`). An adapter passed explicitly
  is the caller's choice and is used as given.

Activation and parametric memory need the model's weights, so they apply to a
:class:`~memvault.models.local.LocalLLM` only; any other :class:`~memvault.models.llm.LLM`
(an OpenAI-compatible endpoint) gets the same messages as plain text.

The prefix trick: the full prompt is ``[system(block), user(hits + query)]`` through the
chat template, and the cached block is ``[system(block)]`` through the same template, so
the block's token ids are the prompt's first tokens. That is checked on every call; when
it does not hold (a template that rewrites earlier turns), the prompt is recomputed and
the result says so in ``activation``.
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from . import _validate as check
from . import hooks
from .activation.blocks import ActivationStore, LoadedBlock
from .activation.blend import supports as blend_supports
from .activation.compose import (ChunkCache, Composition, compose, compose_prefix,
                                  prompt_pieces, shared_cache)
from .activation.pager import vault_pager
from .activation.tier import (INSTRUCTIONS, ActivationTierEngine, block_name,
                              default_activation_store, model_state, scope_block,
                              select_block_items, system_messages)
from .parametric.adapters import AdapterStore
from .parametric import retention as retention_mod
from .parametric.adapters import Adapter
from .parametric.tier import AdapterHandle, default_adapter_store, scope_adapter
from .storage.base import RowQuery
from .errors import ConfigurationError, InvalidInput
from .models import get_llm
from .models.llm import LLM, Message
from .models.local import LocalLLM
from .types import SearchHit

__all__ = ["ActivationTierEngine", "AdapterHandle", "ChatResult", "chat", "default_activation_store",
           "default_adapter_store", "scope_adapter", "select_block_items", "block_name",
           "system_messages"]

log = logging.getLogger("memvault.chat")

@dataclass(slots=True)
class ChatResult:
    """The answer and everything that went into it."""

    answer: str
    model: str
    memories: list[SearchHit] = field(default_factory=list)
    block: str | None = None
    block_items: list[str] = field(default_factory=list)
    cached_tokens: int = 0
    prompt_tokens: int | None = None
    adapter: str | None = None
    #: how the memories were chosen: "retrieval" or "all: <n> memories, <t> tokens <= <b>"
    route: str = "retrieval"
    #: why the scope's adapter is on or off: "on: ...", "off: ...", "refused: ..."
    adapter_route: str = "off: no adapter"
    #: "used" | "built" (built now, then used) | "off: <why>" | "recomputed: <why>"
    activation: str = "off"
    remembered: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "model": self.model,
                "memories": [h.to_dict() for h in self.memories], "block": self.block,
                "block_items": list(self.block_items), "cached_tokens": self.cached_tokens,
                "prompt_tokens": self.prompt_tokens, "adapter": self.adapter,
                "adapter_route": self.adapter_route, "route": self.route,
                "activation": self.activation, "remembered": list(self.remembered)}


MEMORY_MARKER = "Memories that may help:\n"


def memory_lines(hits: Sequence[SearchHit]) -> list[str]:
    """One "- (date) text" line per hit: the unit composed from cached chunks."""
    lines = []
    for hit in hits:
        when = hit.item.event_time or hit.item.created_at
        date = f"({when.date().isoformat()}) " if when is not None else ""
        lines.append(f"- {date}{' '.join(hit.item.text.split())}")
    return lines


def user_message(query: str, hits: Sequence[SearchHit]) -> dict[str, str]:
    if not hits:
        return {"role": "user", "content": query}
    return {"role": "user",
            "content": MEMORY_MARKER + "\n".join(memory_lines(hits)) + "\n\n" + query}


def chat(vault: Any, query: str, *, llm: LLM, scope: Mapping[str, str | None] | None = None,
         k: int = 5, activation: ActivationStore | None = None,
         adapter: AdapterHandle | None = None, adapters: AdapterStore | None = None,
         remember: bool = False, max_tokens: int = 256, block_budget: int = 1024,
         instructions: str = INSTRUCTIONS,
         min_retention: float = retention_mod.MIN_RETENTION,
         composition: Composition | None = None,
         all_within: int | None = None) -> ChatResult:
    """Answer ``query`` for ``scope`` (see the module docstring).

    ``activation``: where the scope's KV-cache block lives (None: no activation memory);
    ``adapter``: a LoRA adapter handle to enable while generating, else the scope's own
    adapter from ``adapters`` if it has one (:func:`scope_adapter`; None: no lookup),
    routed by :func:`route_adapter` (``min_retention``: the refusal threshold);
    ``remember``: store the query and the answer as turns of the scope;
    ``composition``: build the prompt's KV from per-memory chunks in retrieval order
    (:mod:`memvault.activation.compose`) instead of the scope's prefix block;
    ``all_within`` (tokens; None: off; a ``composition``'s own ``all_within`` wins):
    routing by budget: when all of the scope's memories fit, they are all served, oldest
    first, from their cached prefix (:func:`compose_prefix`) and nothing is retrieved
    (not with ``k=0``: no plaintext memories asked for).
    """
    query = check.text(query, vault.limits, field="query")
    scope_ = check.scope(scope or {})
    k = check.bounded_int(k, field="k", low=0, high=vault.limits.max_k)
    max_tokens = check.bounded_int(max_tokens, field="max_tokens", low=1, high=4096)
    if adapter is not None and not isinstance(adapter, AdapterHandle):
        raise InvalidInput("adapter must have an id and an active(llm) context manager")
    local = isinstance(llm, LocalLLM)
    result = ChatResult(answer="", model=llm.id)
    if not local:
        result.activation = "off: the model is not local"
    elif activation is None and composition is None:
        result.activation = "off: no activation store"
    use_adapter = None
    if local and adapter is not None:
        use_adapter, result.adapter_route = adapter, "on: passed by the caller"
    elif local:
        use_adapter, result.adapter_route = route_adapter(
            vault, scope_adapter(adapters, scope_, llm), query, min_retention)

    if composition is not None:
        all_within = composition.all_within
    elif all_within is not None:
        all_within = check.bounded_int(all_within, field="all_within", low=0, high=32_768)

    with use_adapter.active(llm) if use_adapter is not None else nullcontext():
        loaded, state = None, model_state(llm, use_adapter) if local else None
        result.adapter = state
        everything = (all_within_budget(vault, llm, scope_, all_within)
                      if local and all_within and k else None)
        if local and activation is not None and composition is None and everything is None:
            owner = {f: v for f, v in scope_.items() if f != "session_id"}  # its block
            loaded, result.activation = scope_block(vault, llm, activation, owner,
                                                     state, block_budget, instructions)
        block_items = set(loaded.block.item_ids) if loaded is not None else set()
        if everything is not None:
            hits, result.route = everything
        else:
            want = min(k + len(block_items), vault.limits.max_k)
            hits = vault.search(query, k=want, **scope_) if k else []
            hits = [h for h in hits if h.item.id not in block_items][:k]
        result.memories = hits
        prefix = list(loaded.block.messages) if loaded is not None else system_messages(
            [], instructions)
        messages: list[Message] = [*prefix, user_message(query, hits)]
        if everything is not None:
            chunks = composition.cache if composition is not None else None
            result.answer = _generate_prefix(llm, messages, hits, chunks, max_tokens, result)
        elif local and composition is not None and hits:
            result.answer = _generate_composed(llm, messages, hits, composition, max_tokens,
                                               result)
        elif local:
            result.answer = _generate_local(llm, messages, loaded, max_tokens, result, state)
        else:
            result.answer = llm.complete(messages, max_tokens=max_tokens)
    if loaded is not None:  # its memories are in the prompt (cached_tokens: was it reused?)
        result.block, result.block_items = loaded.block.hash, loaded.block.item_ids
    if remember:
        turns = vault.add_messages([{"role": "user", "content": query},
                                    {"role": "assistant", "content": result.answer or "…"}],
                                   metadata={"chat_model": llm.id}, **scope_)
        result.remembered = [t.id for t in turns]
    return result


def route_adapter(vault: Any, handle: Any, query: str,
                  min_retention: float = retention_mod.MIN_RETENTION) -> tuple[Any, str]:
    """The scope's adapter if it may answer ``query``, else None; and why.

    An adapter that memorised a few facts damages answers about everything else, so it
    is on only for queries close to one of its source memories (still active in the
    vault) under the vault's embedder, with the threshold its retention was measured
    at; and it is refused outright when that retention is unknown or below
    ``min_retention`` (see :mod:`memvault.parametric.retention`).
    """
    if handle is None:
        return None, "off: no adapter"
    if not isinstance(handle, Adapter):  # another AdapterHandle: no metadata to judge
        return handle, "on: not a stored adapter, used as given"
    embedder = getattr(vault, "embedder", None)
    why = retention_mod.servable(handle.meta, getattr(embedder, "id", None), min_retention)
    if why is not None:
        log.info("adapter %s refused: %s", handle.name, why)
        return None, f"refused: {why}"
    gate_doc = handle.meta["retention"].get("gate")
    if gate_doc is None or embedder is None:
        return handle, "on: measured without a gate"
    ids = [s["id"] for s in handle.sources if isinstance(s, dict) and isinstance(s.get("id"), str)]

    def texts() -> list[str]:
        rows = vault.store.select(RowQuery(ids=ids, limit=max(1, len(ids))))
        return [r.item.text for r in rows]

    if not ids or not (live := texts()):
        return None, "off: none of the adapter's memories is active any more"
    digest = hashlib.sha256("\x00".join(live).encode()).hexdigest()[:16]
    gate = retention_mod.gate_for(f"{handle.key}:{digest}", embedder, lambda: live,
                                  float(gate_doc.get("threshold", retention_mod.DEFAULT_THRESHOLD)))
    score = gate.score(query)
    if score < gate.threshold:
        return None, f"off: the query is not about the adapter's memories ({score:.2f} < " \
                     f"{gate.threshold:.2f})"
    return handle, f"on: the query is about the adapter's memories ({score:.2f})"


def all_within_budget(vault: Any, llm: LocalLLM, scope: Mapping[str, str | None],
                      budget: int) -> tuple[list[SearchHit], str] | None:
    """All of the scope's active memories as hits (oldest first), if their memory lines
    fit in ``budget`` tokens; None when they do not (chat retrieves instead)."""
    limit = min(vault.limits.max_page, max(1, budget // 4))  # a line is >= ~4 tokens
    page = vault.list(**scope, limit=limit, order="created_asc")
    if not page.items or page.total > len(page.items):
        return None
    hits = [SearchHit(item=item, score=1.0, rank=i) for i, item in enumerate(page.items)]
    tokens = sum(int(llm.encode(line + "\n").shape[-1]) for line in memory_lines(hits))
    if tokens > budget:
        return None
    return hits, f"all: {len(hits)} memories, {tokens} tokens <= {budget}"


@hooks.provide("chat")
def vault_chat(vault: Any, query: str, *, llm: Any = None, user_id: str | None = None,
               agent_id: str | None = None, session_id: str | None = None,
               cube_id: str | None = None, k: int = 5, activation: Any = True,
               adapter: Any = None, remember: bool = False, max_tokens: int = 256) -> ChatResult:
    """:meth:`Vault.chat`: the vault's settings and sidecar stores resolved into a
    :func:`chat` call (see the method's docstring for the arguments)."""
    model = get_llm(llm if llm is not None else (vault.settings.llm or "local"))
    if model is None:
        raise ConfigurationError("chat needs an LLM; llm='none' was given")
    composition = activation if isinstance(activation, Composition) else None
    if activation is True and vault.settings.chat_compose is not None:
        composition = Composition(recompute=vault.settings.chat_compose,
                                  all_within=vault.settings.chat_all_within or None)
    store = (None if composition is not None
             else default_activation_store(vault) if activation is True else activation or None)
    routed = (vault.settings.chat_all_within or None
              if composition is None and activation is not None and activation is not False
              else None)
    adapters = default_adapter_store(vault, pager=vault_pager(vault)) if adapter is None else None
    return chat(vault, query, llm=model, k=k, activation=store,
                adapter=None if adapter is False else adapter, adapters=adapters,
                remember=remember, max_tokens=max_tokens, composition=composition,
                all_within=routed, scope={"user_id": user_id, "agent_id": agent_id,
                       "session_id": session_id, "cube_id": cube_id})


def _generate_local(llm: LocalLLM, messages: Sequence[Message], loaded: LoadedBlock | None,
                    max_tokens: int, result: ChatResult, state: str | None = None) -> str:
    ids = llm.encode_chat(messages)
    result.prompt_tokens = int(ids.shape[-1])
    cache = None
    if loaded is not None:
        if loaded.block.adapter != state:
            result.activation = (f"recomputed: the block was built with adapter "
                                 f"{loaded.block.adapter!r}, the model runs {state!r}")
        elif loaded.matches_prefix(ids):
            cache = loaded.fresh_cache(llm)
            result.cached_tokens = loaded.block.n_tokens
        else:
            result.activation = "recomputed: the prompt does not start with the block's tokens"
    return llm.decode(llm.generate_ids(ids, max_tokens=max_tokens, cache=cache)).strip()


def _generate_composed(llm: LocalLLM, messages: Sequence[Message], hits: Sequence[SearchHit],
                       composition: Composition, max_tokens: int, result: ChatResult) -> str:
    """Generate from a cache composed of the hits' chunk KV, in retrieval order."""
    head, chunks, tail = prompt_pieces(llm, messages, memory_lines(hits), MEMORY_MARKER)
    cache = composition.cache if composition.cache is not None else shared_cache(llm)
    select = composition.select if blend_supports(llm) else "tail"
    prompt = compose(llm, head, chunks, tail, recompute=composition.recompute, cache=cache,
                     select=select, firsts=composition.firsts)
    result.prompt_tokens = int(prompt.input_ids.shape[-1])
    result.cached_tokens = prompt.cached
    result.activation = (f"composed: {prompt.reused_chunks} chunks reused, "
                         f"{prompt.new_chunks} computed, {prompt.recomputed} tokens "
                         f"recomputed ({composition.recompute:.0%}, {select})")
    return llm.decode(llm.generate_ids(prompt.input_ids, max_tokens=max_tokens,
                                       cache=prompt.cache)).strip()


def _generate_prefix(llm: LocalLLM, messages: Sequence[Message], hits: Sequence[SearchHit],
                     chunks: ChunkCache | None, max_tokens: int, result: ChatResult) -> str:
    """Generate over the cached prefix of all the scope's memories (routing by budget)."""
    head, lines, tail = prompt_pieces(llm, messages, memory_lines(hits), MEMORY_MARKER)
    prompt = compose_prefix(llm, head, lines, tail,
                            cache=chunks if chunks is not None else shared_cache(llm))
    result.prompt_tokens = int(prompt.input_ids.shape[-1])
    result.cached_tokens = prompt.cached
    result.activation = (f"prefix: {prompt.reused_chunks} memories reused, "
                         f"{prompt.new_chunks} computed")
    return llm.decode(llm.generate_ids(prompt.input_ids, max_tokens=max_tokens,
                                       cache=prompt.cache)).strip()
