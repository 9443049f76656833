"""The scheduler's parametric tier: one LoRA adapter per scope, re-distilled in the background.

:class:`memvault.scheduler.tiers.ParametricTier` asks to ``queue(scope, items)`` when
memories became stable and hot. Each call retrains the scope's adapter from scratch on the
new items *plus* the adapter's earlier sources that are still active in the vault, so a
memory that was deleted, archived or quarantined drops out of the weights at the next
distillation instead of living on in them. The job runs in a thread (see
:class:`~.distill.DistillJob`); the old adapter stays usable until the new one replaces it
atomically on disk. Chat code finds the scope's adapter with :meth:`adapter_for`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import InvalidInput, NotFound
from ..models.local import LocalLLM
from ..storage.base import RowQuery
from ..types import MemoryItem
from .parametric import Adapter, AdapterStore, validate_name

if TYPE_CHECKING:
    from ..vault import Vault
    from .distill import DistillJob

__all__ = ["AdapterTier", "adapter_name"]

_FIELDS = ("user_id", "agent_id", "cube_id", "session_id")


def adapter_name(scope: Mapping[str, str | None]) -> str:
    """``user-alice_agent-bot``; a digest when ids would not make a safe directory name."""
    parts = [f"{f[:-3]}-{scope[f]}" for f in _FIELDS if scope.get(f)]
    if not parts:
        raise InvalidInput("an adapter belongs to a scope: give a user, agent or cube id")
    name = "_".join(parts)
    try:
        return validate_name(name)
    except InvalidInput:
        digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
        return f"scope-{digest}"


class AdapterTier:
    """Distils per-scope adapters into ``store`` on ``llm``; ``options`` go to distill."""

    def __init__(self, store: AdapterStore, llm: LocalLLM, *, vault: "Vault | None" = None,
                 **options: Any) -> None:
        self.store = store
        self.llm = llm
        self.vault = vault
        self.options = options
        self.jobs: dict[str, "DistillJob"] = {}

    def adapter_for(self, scope: Mapping[str, str | None]) -> Adapter | None:
        """The scope's current adapter, or None if none was distilled yet."""
        try:
            return self.store.get(adapter_name(scope))
        except NotFound:
            return None

    def _earlier_sources(self, name: str, exclude: set[str]) -> list[MemoryItem]:
        if self.vault is None or name not in self.store.names():
            return []
        ids = [s["id"] for s in self.store.get(name).sources
               if isinstance(s, dict) and s.get("id") not in exclude]
        if not ids:
            return []
        rows = self.vault.store.select(RowQuery(ids=ids, limit=len(ids)))  # active only
        return [r.item for r in rows]

    def queue(self, scope: Mapping[str, str | None], items: Sequence[MemoryItem]) -> str:
        """Start re-distilling the scope's adapter; returns the job id (see :attr:`jobs`)."""
        name = adapter_name(scope)
        chosen = {i.id: i for i in items}
        for item in self._earlier_sources(name, set(chosen)):
            chosen[item.id] = item
        job = self.store.start_distill(self.llm, list(chosen.values()), name, overwrite=True,
                                       **self.options)
        job_id = f"distill:{name}:{uuid.uuid4().hex[:8]}"
        self.jobs[job_id] = job
        return job_id
