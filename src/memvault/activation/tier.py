"""The activation tier: a scope's profile and hottest facts as one KV-cache block.

What :func:`memvault.chat.chat` injects and what the scheduler promotes are the same
block, rendered the same way and saved under the same name, so a block the scheduler built
ahead of time is the one chat finds. The blocks themselves (files, fingerprints, loading)
are :mod:`.blocks`.
"""

from __future__ import annotations

import json
import threading
import weakref
from contextlib import nullcontext
from typing import Any, Mapping, Sequence

from .. import _validate as check
from .._sidecars import default_dirs
from ..errors import NotFound
from ..models.local import LocalLLM
from ..parametric.adapters import AdapterStore
from ..parametric.tier import AdapterHandle, scope_adapter
from ..types import MemoryItem
from .blocks import ActivationStore, LoadedBlock, build_block, live_adapter, stale_ids
from .pager import vault_pager

__all__ = ["ActivationTierEngine", "BLOCK_KINDS", "INSTRUCTIONS", "block_name",
           "default_activation_store", "model_state", "pager_status", "render_items",
           "scope_block", "select_block_items", "system_messages"]

INSTRUCTIONS = ("You are a helpful assistant with a long-term memory of the user. "
                "Answer the user's question using what you remember when it is relevant. "
                "Be brief.")
#: Kinds that make up a scope's activation block (the stable core of what we know).
BLOCK_KINDS = ("profile", "preference", "fact", "summary")


_STORES: "weakref.WeakKeyDictionary[Any, ActivationStore]" = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def default_activation_store(vault: Any) -> ActivationStore | None:
    """A vault's blocks live in ``<db>.activation/`` next to its SQLite file (a throw-away
    vault's in its temporary directory, removed with it); a store without a file (e.g.
    PostgreSQL) has none unless one is passed explicitly. One store object per vault,
    so blocks stay loaded in memory between calls, within the vault's pager budget
    (:func:`~.pager.vault_pager`); new blocks are written in ``settings.kv_quant``."""
    with _STORES_LOCK:
        store = _STORES.get(vault)
        if store is None:
            root = default_dirs(vault)["activation"]
            if root is None:
                return None
            store = _STORES[vault] = ActivationStore(
                root, quant=getattr(vault.settings, "kv_quant", "fp16"),
                pager=vault_pager(vault))
        return store


def pager_status(vault: Any, *, disk: bool = False) -> dict[str, Any]:
    """The vault's RAM budget for blocks and adapters and what this process holds in it
    (:meth:`~.pager.Pager.stats`), the scheme new blocks are written in, and with
    ``disk`` the totals on disk the pager pages from (blocks by scheme, adapters)."""
    out: dict[str, Any] = {"kv_quant": getattr(vault.settings, "kv_quant", "fp16"),
                           **vault_pager(vault).stats()}
    if disk:
        dirs = default_dirs(vault)
        blocks: dict[str, dict[str, int]] = {}
        store = default_activation_store(vault)
        for block in store.all_blocks() if store is not None else []:
            path = store.root / block.fingerprint.key / f"{block.hash}.safetensors"
            row = blocks.setdefault(block.quant, {"blocks": 0, "bytes": 0, "tokens": 0})
            row["blocks"] += 1
            row["tokens"] += block.n_tokens
            row["bytes"] += path.stat().st_size if path.is_file() else 0
        adapters = {"adapters": 0, "bytes": 0}
        root = dirs["parametric"]
        for name in AdapterStore(root).names() if root is not None else []:
            weights = root / name / "adapter_model.safetensors"
            adapters["adapters"] += 1
            adapters["bytes"] += weights.stat().st_size if weights.is_file() else 0
        out["disk"] = {"blocks": blocks, "adapters": adapters}
    return out


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


def scope_block(vault: Any, llm: LocalLLM, store: ActivationStore, scope: Mapping[str, str],
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


