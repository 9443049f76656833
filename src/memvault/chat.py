"""``Vault.chat``: answer a query with all three kinds of memory.

* plaintext: the scope's memories most relevant to the query are retrieved and written
  into the user message;
* activation: the scope's profile and hottest facts are rendered as the system message,
  whose KV cache (:mod:`memvault.cube.activation`) is injected as ``past_key_values`` so
  that block is not prefilled again;
* parametric: the scope's LoRA adapter, if any, is enabled while generating.

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

import json
import logging
import threading
import weakref
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, ContextManager, Mapping, Protocol, Sequence, runtime_checkable

from . import _validate as check
from .cube.activation import (ActivationStore, LoadedBlock, build_block, live_adapter,
                               stale_ids)
from .cube.parametric import AdapterStore
from .errors import InvalidInput, NotFound
from .models.llm import LLM, Message
from .models.local import LocalLLM
from .types import MemoryItem, SearchHit

__all__ = ["ActivationTierEngine", "AdapterHandle", "ChatResult", "chat", "default_activation_store",
           "default_adapter_store", "scope_adapter", "select_block_items", "block_name",
           "system_messages"]

log = logging.getLogger("memvault.chat")

INSTRUCTIONS = ("You are a helpful assistant with a long-term memory of the user. "
                "Answer the user's question using what you remember when it is relevant. "
                "Be brief.")
#: Kinds that make up a scope's activation block (the stable core of what we know).
BLOCK_KINDS = ("profile", "preference", "fact", "summary")


@runtime_checkable
class AdapterHandle(Protocol):
    """A LoRA adapter that can be switched on for the duration of a generation.

    ``id`` must change when the adapter's weights change: an activation block computed
    with an adapter on is only valid with that same adapter.
    """

    id: str

    def active(self, llm: Any) -> ContextManager[Any]:
        ...


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
    #: "used" | "built" (built now, then used) | "off: <why>" | "recomputed: <why>"
    activation: str = "off"
    remembered: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "model": self.model,
                "memories": [h.to_dict() for h in self.memories], "block": self.block,
                "block_items": list(self.block_items), "cached_tokens": self.cached_tokens,
                "prompt_tokens": self.prompt_tokens, "adapter": self.adapter,
                "activation": self.activation, "remembered": list(self.remembered)}


_STORES: "weakref.WeakKeyDictionary[Any, ActivationStore]" = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def default_activation_store(vault: Any) -> ActivationStore | None:
    """A vault's blocks live in ``<db>.activation/`` next to its SQLite file (a throw-away
    vault's in its temporary directory, removed with it); a store without a file (e.g.
    PostgreSQL) has none unless one is passed explicitly. One store object per vault,
    so blocks stay loaded in memory between calls."""
    from .cube.transfer import default_dirs  # where ``cube dump`` looks for them too

    with _STORES_LOCK:
        store = _STORES.get(vault)
        if store is None:
            root = default_dirs(vault)["activation"]
            if root is None:
                return None
            store = _STORES[vault] = ActivationStore(root)
        return store


def default_adapter_store(vault: Any) -> AdapterStore | None:
    """A vault's adapters: ``<db>.adapters/`` next to its SQLite file, where
    ``memvault adapter distill`` and the scheduler's :class:`~.cube.adapter_tier.AdapterTier`
    write them (None for a store without a file)."""
    from .cube.transfer import default_dirs

    root = default_dirs(vault)["parametric"]
    return None if root is None else AdapterStore(root)


def scope_adapter(store: AdapterStore | None, scope: Mapping[str, str | None],
                  llm: Any) -> Any:
    """The owner scope's distilled adapter in ``store`` (named by
    :func:`~.cube.adapter_tier.adapter_name`, the scheduler's naming), or None: no store,
    not a local model, a scope without user/agent/cube, no adapter yet, or one trained on
    another model (a LoRA delta is meaningless on other weights). Chat and the activation
    tier both call this, so a promoted block is computed under the adapter chat will use."""
    from .cube.adapter_tier import adapter_name

    if store is None or not isinstance(llm, LocalLLM):
        return None
    owner = {f: v for f, v in scope.items() if f != "session_id" and v is not None}
    if not owner:
        return None
    try:
        handle = store.get(adapter_name(owner))
    except NotFound:
        return None
    if handle.fingerprint != llm.fingerprint:
        log.warning("adapter %s was trained on model %s, not %s: not used", handle.name,
                    handle.fingerprint.key, llm.fingerprint.key)
        return None
    return handle


def block_name(scope: Mapping[str, str], state: str | None = None) -> str:
    """The name a scope's block is saved under: one current block per scope, model and
    adapter (``state``, see :func:`model_state`)."""
    name = "scope:" + json.dumps(dict(sorted(scope.items())), separators=(",", ":"))
    return name if state is None else f"{name}|adapter:{state}"


def render_items(items: Sequence[MemoryItem]) -> str:
    return "\n".join(f"- {' '.join(item.text.split())}" for item in items)


def system_messages(block_items: Sequence[MemoryItem],
                    instructions: str = INSTRUCTIONS) -> list[dict[str, str]]:
    """The prompt's prefix: the instructions and, when there are any, the block's facts."""
    content = instructions
    if block_items:
        content += "\n\nWhat you know about the user:\n" + render_items(block_items)
    return [{"role": "system", "content": content}]


def user_message(query: str, hits: Sequence[SearchHit]) -> dict[str, str]:
    if not hits:
        return {"role": "user", "content": query}
    lines = []
    for hit in hits:
        when = hit.item.event_time or hit.item.created_at
        date = f"({when.date().isoformat()}) " if when is not None else ""
        lines.append(f"- {date}{' '.join(hit.item.text.split())}")
    return {"role": "user",
            "content": "Memories that may help:\n" + "\n".join(lines) + "\n\n" + query}


def select_block_items(vault: Any, scope: Mapping[str, str], llm: LocalLLM, *,
                       budget_tokens: int = 1024, candidates: int = 500) -> list[MemoryItem]:
    """The scope's profile first, then its hottest facts, until ``budget_tokens`` is full.

    Heat is the access count (ties: importance, then recency). The order is fixed when the
    block is built; later changes of heat do not rebuild it (only changed memories do).
    """
    q = check.row_query(scope, None)
    q.kinds, q.limit = list(BLOCK_KINDS), candidates
    items = [r.item for r in vault.store.select(q)]
    items.sort(key=lambda i: (i.kind != "profile", -i.access_count, -i.importance,
                              -(i.created_at.timestamp() if i.created_at else 0.0)))
    chosen, used = [], 0
    for item in items:
        cost = len(llm.tokenizer.encode(render_items([item]), add_special_tokens=False)) + 1
        if used + cost > budget_tokens:
            continue
        chosen.append(item)
        used += cost
    return chosen


def model_state(llm: LocalLLM, adapter: AdapterHandle | None) -> str | None:
    """What, besides the base weights, a KV cache computed right now depends on: the
    adapter switched on in the model (``lora_runtime``), else the handle's id, else None.
    Call it inside the adapter's ``active`` block."""
    return live_adapter(llm) or (adapter.id if adapter is not None else None)


def _scope_block(vault: Any, llm: LocalLLM, store: ActivationStore, scope: Mapping[str, str],
                 state: str | None, budget_tokens: int,
                 instructions: str) -> tuple[LoadedBlock | None, str]:
    """The scope's current block, rebuilt when missing or stale. (block, how)."""
    name = block_name(scope, state)
    block = store.get(llm.fingerprint, name)
    if block is not None and not stale_ids(block, vault.store):
        return store.load(llm, block), "used"
    items = select_block_items(vault, scope, llm, budget_tokens=budget_tokens)
    if not items:
        if block is not None:
            store.delete(block)  # stale, and nothing left to rebuild it from
        return None, "off: no profile or fact memories in this scope"
    loaded = build_block(llm, system_messages(items, instructions), items=items, adapter=state)
    saved = store.save(loaded, name=name)
    if block is not None and block.hash != saved.hash:
        store.delete(block)  # the stale one
    return store.load(llm, saved), "built"


class ActivationTierEngine:
    """The scheduler's :class:`~memvault.scheduler.tiers.ActivationTier` for ``llm``:
    ``promote`` builds the scope's block from the items it chose (rendered exactly as
    :func:`chat` renders it, and saved under the name :func:`chat` looks up), ``demote``
    deletes a block. The block is computed under the adapter chat will use: ``adapter``
    (a fixed handle) or else the scope's own adapter in ``adapters`` (see
    :func:`scope_adapter`); ``current`` tells the scheduler when that adapter changed."""

    def __init__(self, llm: LocalLLM, store: ActivationStore, *,
                 adapter: AdapterHandle | None = None, adapters: AdapterStore | None = None,
                 instructions: str = INSTRUCTIONS) -> None:
        self.llm, self.store, self.adapter, self.instructions = llm, store, adapter, instructions
        self.adapters = adapters

    def _owner_and_adapter(self, scope: Mapping[str, str | None]
                           ) -> tuple[dict[str, str], AdapterHandle | None]:
        owner = {f: v for f, v in check.scope(scope).items() if f != "session_id"}
        adapter = (self.adapter if self.adapter is not None
                   else scope_adapter(self.adapters, owner, self.llm))
        return owner, adapter

    def promote(self, scope: Mapping[str, str | None], items: Sequence[MemoryItem]) -> str:
        owner, adapter = self._owner_and_adapter(scope)
        with adapter.active(self.llm) if adapter is not None else nullcontext():
            state = model_state(self.llm, adapter)
            loaded = build_block(self.llm, system_messages(items, self.instructions),
                                 items=items, adapter=state)
        name = block_name(owner, state)
        saved = self.store.save(loaded, name=name)
        self._drop_replaced(owner, name, saved.hash)
        return saved.hash

    def _drop_replaced(self, owner: Mapping[str, str], name: str, keep: str) -> None:
        """Delete the scope's blocks this one replaces: a chat's rebuild under the same
        name, and blocks under the scope's earlier adapters (no chat looks for those any
        more). A base-model block (``adapter=False`` chats) stays until it goes stale."""
        fp, prefix = self.llm.fingerprint, block_name(owner) + "|adapter:"
        for other, block_hash in self.store.names(fp).items():
            if block_hash != keep and (other == name or other.startswith(prefix)):
                try:
                    self.store.delete(self.store.entry(fp, block_hash))
                except NotFound:
                    pass

    def current(self, scope: Mapping[str, str | None], block_id: str) -> bool:
        """Is ``block_id`` still the block chat would use for the scope (same adapter,
        still on disk)? False after the scope's adapter was (re)distilled."""
        owner, adapter = self._owner_and_adapter(scope)
        block = self.store.get(self.llm.fingerprint,
                               block_name(owner, adapter.id if adapter is not None else None))
        return block is not None and block.hash == block_id

    def demote(self, block_id: str) -> None:
        try:
            self.store.delete(self.store.entry(self.llm.fingerprint, block_id))
        except NotFound:
            pass  # already gone: demoting is idempotent


def chat(vault: Any, query: str, *, llm: LLM, scope: Mapping[str, str | None] | None = None,
         k: int = 5, activation: ActivationStore | None = None,
         adapter: AdapterHandle | None = None, adapters: AdapterStore | None = None,
         remember: bool = False, max_tokens: int = 256, block_budget: int = 1024,
         instructions: str = INSTRUCTIONS) -> ChatResult:
    """Answer ``query`` for ``scope`` (see the module docstring).

    ``activation``: where the scope's KV-cache block lives (None: no activation memory);
    ``adapter``: a LoRA adapter handle to enable while generating, else the scope's own
    adapter from ``adapters`` if it has one (:func:`scope_adapter`; None: no lookup);
    ``remember``: store the query and the answer as turns of the scope.
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
    elif activation is None:
        result.activation = "off: no activation store"
    use_adapter = ((adapter if adapter is not None else scope_adapter(adapters, scope_, llm))
                   if local else None)

    with use_adapter.active(llm) if use_adapter is not None else nullcontext():
        loaded, state = None, model_state(llm, use_adapter) if local else None
        result.adapter = state
        if local and activation is not None:  # the block belongs to the owner, not a session
            owner = {f: v for f, v in scope_.items() if f != "session_id"}
            loaded, result.activation = _scope_block(vault, llm, activation, owner,
                                                     state, block_budget, instructions)
        block_items = set(loaded.block.item_ids) if loaded is not None else set()
        want = min(k + len(block_items), vault.limits.max_k)
        hits = vault.search(query, k=want, **scope_) if k else []
        hits = [h for h in hits if h.item.id not in block_items][:k]
        result.memories = hits
        prefix = list(loaded.block.messages) if loaded is not None else system_messages(
            [], instructions)
        messages: list[Message] = [*prefix, user_message(query, hits)]
        if local:
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
    return llm.decode(llm.generate_ids(ids, max_tokens=max_tokens,
                                       past_key_values=cache)).strip()
