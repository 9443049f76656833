"""What ``GET /v1/scheduler`` shows a principal: the activation blocks and LoRA adapters
built from its memories, read from the vault's ``<db>.activation/`` and ``<db>.adapters/``.

A block or adapter belongs to a principal when it was made from the principal's memories:
at least one of its source memories is the principal's and none is someone else's. (Purged
sources no longer exist and count for no one.) Read-only, and no model is loaded: this is
index JSON, not tensors.

The files may have come from a MemCube made elsewhere: an entry or adapter that cannot be
read is skipped and counted under ``skipped`` (how many, not which: the files are not the
caller's), never a 500 for every principal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .. import _validate as check
from ..errors import IntegrityError, InvalidInput, ModelError, NotFound

if TYPE_CHECKING:
    from ..governance import ScopedVault

__all__ = ["scheduler_state"]


def _mine(sv: "ScopedVault", ids: Sequence[str]) -> bool:
    own, others = sv.owners_of(ids)
    return bool(own) and not others


def scheduler_state(sv: "ScopedVault") -> dict[str, Any]:
    from ..activation.tier import pager_status
    from ..chat import default_activation_store
    from ..activation.blocks import stale_ids
    from ..parametric.adapters import AdapterStore
    from .._sidecars import default_dirs

    dirs = default_dirs(sv.vault)
    out: dict[str, Any] = {
        "activation": {"available": dirs["activation"] is not None, "blocks": [], "skipped": 0},
        "adapters": {"available": dirs["parametric"] is not None, "adapters": [], "skipped": 0}}
    store = default_activation_store(sv.vault) if dirs["activation"] is not None else None
    blocks, bad = store.scan() if store is not None else ([], [])
    out["activation"]["skipped"] = len(bad)
    for block in blocks:
        if not _mine(sv, block.item_ids):
            continue
        stale = stale_ids(block, sv.vault.store)
        out["activation"]["blocks"].append({
            "hash": block.hash, "model": block.fingerprint.key, "n_tokens": block.n_tokens,
            "item_ids": block.item_ids, "stale": bool(stale), "stale_ids": stale,
            "adapter": block.adapter, "created_at": block.created_at or None,
            "quant": block.quant})
    adapters = AdapterStore(dirs["parametric"]) if dirs["parametric"] is not None else None
    for name in adapters.names() if adapters is not None else []:
        try:
            adapter = adapters.get(name)  # type: ignore[union-attr]
            sources = adapter.meta.get("sources")
            ids = [check.item_id(s.get("id")) for s in
                   (sources if isinstance(sources, list) else ()) if isinstance(s, dict)]
            size = adapter.size_bytes
        except (InvalidInput, IntegrityError, NotFound, ModelError, OSError):
            out["adapters"]["skipped"] += 1
            continue
        if not _mine(sv, ids):
            continue
        out["adapters"]["adapters"].append({
            "name": adapter.name, "key": adapter.key, "model": adapter.fingerprint.key,
            "sources": len(ids), "created_at": adapter.meta.get("created_at"),
            "size_bytes": size})
    out["activation"]["blocks"].sort(key=lambda b: b["created_at"] or "", reverse=True)
    out["pager"] = pager_status(sv.vault)  # aggregates only: no other principal's pages
    return out
