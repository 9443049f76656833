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
import logging
import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, ContextManager, Mapping, Protocol, Sequence, runtime_checkable

from .._sidecars import default_dirs
from ..errors import InvalidInput, MemvaultError, ModelError, NotFound
from ..models.local import LocalLLM
from ..storage.base import RowQuery
from ..types import MemoryItem
from . import runtime as lora_runtime
from .adapters import Adapter, AdapterStore, validate_name
from .distill import DistillJob, start_distill

if TYPE_CHECKING:
    from ..vault import Vault

__all__ = ["AdapterHandle", "AdapterTier", "adapter_name", "default_adapter_store", "scope_adapter"]

log = logging.getLogger("memvault.parametric")

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
    """Distils per-scope adapters into ``store`` on ``llm``; ``options`` go to distill.

    One job per adapter at a time: queueing a scope whose job is still running cancels
    that job and starts one over both item sets (else the later job, built from the
    adapter on disk, would silently lose the earlier job's memories). Finished jobs are
    handed to the scheduler by :meth:`collect`, which audits them in its own thread.
    """

    def __init__(self, store: AdapterStore, llm: LocalLLM, *, vault: "Vault | None" = None,
                 **options: Any) -> None:
        self.store = store
        self.llm = llm
        self.vault = vault
        self.options = options
        self.jobs: dict[str, "DistillJob"] = {}
        self._running: dict[str, tuple[str, list[MemoryItem]]] = {}  # name -> (job id, items)
        self._meta: dict[str, dict[str, Any]] = {}  # job id -> scope, items
        self._lock = threading.Lock()

    def adapter_for(self, scope: Mapping[str, str | None]) -> Adapter | None:
        """The scope's current adapter, or None if none was distilled yet."""
        try:
            return self.store.get(adapter_name(scope))
        except NotFound:
            return None

    def _earlier_sources(self, name: str, exclude: set[str],
                         pending: Sequence[MemoryItem] = ()) -> list[MemoryItem]:
        """The adapter's sources and a superseded job's items, as they are now in the
        vault (active only: what was deleted meanwhile is not trained again)."""
        if self.vault is None:
            return [i for i in pending if i.id not in exclude]
        ids = [i.id for i in pending]
        if name in self.store.names():
            ids += [s["id"] for s in self.store.get(name).sources if isinstance(s, dict)]
        ids = sorted({i for i in ids if isinstance(i, str)} - exclude)
        if not ids:
            return []
        rows = self.vault.store.select(RowQuery(ids=ids, limit=len(ids)))  # active only
        return [r.item for r in rows]

    def _supersede(self, name: str) -> list[MemoryItem]:
        """Cancel the scope's running job (caller holds the lock); return its items."""
        running = self._running.pop(name, None)
        if running is None or self.jobs[running[0]].done():
            return []
        self.jobs[running[0]].cancel()
        self._meta.get(running[0], {})["superseded"] = True
        return running[1]

    def queue(self, scope: Mapping[str, str | None], items: Sequence[MemoryItem]) -> str:
        """Start re-distilling the scope's adapter; returns the job id (see :attr:`jobs`)."""
        name = adapter_name(scope)
        chosen = {i.id: i for i in items}
        with self._lock:
            pending = self._supersede(name)  # its items join this job
            for item in self._earlier_sources(name, set(chosen), pending):
                chosen[item.id] = item
            options = dict(self.options)
            if self.vault is not None:  # retention is measured through chat's gate
                options.setdefault("gate_embedder", getattr(self.vault, "embedder", None))
            job = start_distill(self.store, self.llm, list(chosen.values()), name,
                                overwrite=True, **options)
            job_id = f"distill:{name}:{uuid.uuid4().hex[:8]}"
            self.jobs[job_id] = job
            self._running[name] = (job_id, list(chosen.values()))
            self._meta[job_id] = {"scope": dict(scope), "adapter": name,
                                  "items": list(chosen)}
        return job_id

    def drop(self, scope: Mapping[str, str | None]) -> str | None:
        """Cancel the scope's running job, unload and delete its adapter; returns the
        adapter's key (None: there was none). Chats stop finding it at once."""
        name = adapter_name(scope)
        with self._lock:
            running = self._running.get(name)
            self._supersede(name)
            if running is not None:  # a job past its last cancel check would save after us
                self.jobs[running[0]].wait()
            current = self.adapter_for(scope)
            self._unload(name)
            if current is None:
                return None
            try:
                self.store.delete(name)
            except NotFound:
                pass  # deleted meanwhile
            return current.key

    def _unload(self, name: str, keep: str | None = None) -> None:
        """Unload the model's copies of adapter ``name`` (earlier weights, or all), so
        superseded versions do not sit in memory until the LRU drops them."""
        for key in lora_runtime.loaded_keys(self.llm):
            if key.startswith(f"lora:{name}:") and key != keep:
                try:
                    lora_runtime.uninstall(self.llm, key)
                except ModelError:
                    pass  # on in a generation right now; the LRU unloads it later

    def collect(self, timeout: float | None = 0.0) -> list[dict[str, Any]]:
        """Jobs that finished since the last call, forgotten here once reported:
        ``{"job", "scope", "adapter", "items", "key"}`` on success, ``"error"`` instead of
        ``"key"`` otherwise (and ``"superseded": True`` for a job cancelled because a newer
        one took over its items). ``timeout``: how long to wait for running jobs (None: until
        they finish; 0: report only what is done)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            jobs = list(self.jobs.items())
        out = []
        for job_id, job in jobs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job.wait(left):
                continue
            doc = {"job": job_id, **self._meta.pop(job_id, {})}
            error = job.exception()
            if error is None:
                doc["key"] = job.result().key
                self._unload(job.name, keep=doc["key"])
            elif isinstance(error, MemvaultError):
                doc["error"] = f"{error.code}: {error.message}"
            else:
                doc["error"] = repr(error)
            with self._lock:
                self.jobs.pop(job_id, None)
                name = doc.get("adapter")
                if name is not None and self._running.get(name, ("",))[0] == job_id:
                    del self._running[name]
            out.append(doc)
        return out


@runtime_checkable
class AdapterHandle(Protocol):
    """A LoRA adapter that can be switched on for the duration of a generation.

    ``id`` must change when the adapter's weights change: an activation block computed
    with an adapter on is only valid with that same adapter.
    """

    id: str

    def active(self, llm: Any) -> ContextManager[Any]:
        ...


def default_adapter_store(vault: Any, *, pager: Any = None) -> AdapterStore | None:
    """A vault's adapters: ``<db>.adapters/`` next to its SQLite file, where
    ``memvault adapter distill`` and the scheduler's :class:`memvault.parametric.tier.AdapterTier`
    write them (None for a store without a file). ``pager``: the RAM budget its adapters
    count against (see :func:`memvault.activation.pager.vault_pager`)."""
    root = default_dirs(vault)["parametric"]
    return None if root is None else AdapterStore(root, pager=pager)


def scope_adapter(store: AdapterStore | None, scope: Mapping[str, str | None],
                  llm: Any) -> Any:
    """The owner scope's distilled adapter in ``store`` (named by
    :func:`memvault.parametric.tier.adapter_name`, the scheduler's naming), or None: no store,
    not a local model, a scope without user/agent/cube, no adapter yet, or one trained on
    another model (a LoRA delta is meaningless on other weights). Chat and the activation
    tier both call this, so a promoted block is computed under the adapter chat will use."""
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
