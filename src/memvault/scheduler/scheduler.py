"""The scheduler: one pass of every lifecycle job, on demand or on a background thread.

A pass (``run_once``) flushes buffered access counts, computes every active memory's
heat, then runs, each step optional:

1. forget     - archive expired / cold memories, purge those past their grace period;
2. link       - A-MEM links for memories added since the last pass;
3. consolidate - session and topic summaries for sessions that changed;
4. placement  - promote each scope's hottest memories into an activation block, demote
                cold blocks, queue stable hot memories for LoRA distillation.

Every move is an audit row (archive/purge/link/add/update/promote/demote/queue_distill).
It runs in-process: ``start()`` runs a pass every ``interval`` seconds on a daemon thread
until ``stop()``. Passes never overlap; a failing pass is logged and the next one runs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable

from .._time import parse_time
from ..errors import ConfigurationError, InvalidInput, MemvaultError
from ..models.llm import LLM
from ..types import MemoryItem, utcnow
from ._scan import OWNER_FIELDS, iter_items, scope_key
from .consolidate import ConsolidateConfig, consolidate
from .forget import ForgetPolicy, forget
from .heat import HeatConfig, rank_by_heat
from .links import LinkConfig, link_new
from .placement import PlacementConfig, place
from .tiers import ActivationTier, ParametricTier

if TYPE_CHECKING:
    from ..vault import Vault

__all__ = ["Scheduler", "SchedulerConfig", "RunReport"]

log = logging.getLogger("memvault.scheduler")


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    #: Seconds between passes of the background thread.
    interval: float = 300.0
    heat: HeatConfig = field(default_factory=HeatConfig)
    #: Each job's configuration; None switches the job off.
    forget: ForgetPolicy | None = field(default_factory=ForgetPolicy)
    link: LinkConfig | None = field(default_factory=LinkConfig)
    consolidate: ConsolidateConfig | None = field(default_factory=ConsolidateConfig)
    placement: PlacementConfig = field(default_factory=PlacementConfig)

    def __post_init__(self) -> None:
        if not 0.01 <= self.interval <= 7 * 86_400:
            raise InvalidInput("interval must be between 0.01 s and a week", field="interval")


@dataclass(slots=True)
class RunReport:
    started_at: datetime
    seconds: float = 0.0
    items: int = 0
    #: The hottest memories of the vault: [{"id", "heat", "scope"}], hottest first.
    hottest: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"started_at": self.started_at.isoformat(), "seconds": round(self.seconds, 4),
                "items": self.items, "hottest": self.hottest, **self.steps}


class Scheduler:
    """Lifecycle jobs for a vault; the tiers and the LLM are optional plug-ins."""

    def __init__(self, config: SchedulerConfig | None = None, *,
                 activation: ActivationTier | None = None,
                 parametric: ParametricTier | None = None, llm: LLM | None = None) -> None:
        self.config = config or SchedulerConfig()
        self.activation, self.parametric, self.llm = activation, parametric, llm
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.last_report: RunReport | None = None
        self.last_error: str | None = None

    def run_once(self, vault: "Vault", *, now: Any = None,
                 wait: float | bool = False) -> RunReport:
        """One pass of every configured job; ``now`` (for tests and replays) sets the clock
        that heat and the forget policy read. Distillation is queued to the background:
        ``wait=True`` (or seconds) waits for it, so this pass's blocks are built under the
        new adapters (tests, the CLI); the background thread never waits."""
        if not (isinstance(wait, bool) or (isinstance(wait, (int, float))
                                           and math.isfinite(wait) and wait >= 0)):
            raise InvalidInput("wait must be a bool or a number of seconds >= 0", field="wait")
        when = parse_time(now, field="now") if now is not None else utcnow()
        with self._run_lock:
            started = time.perf_counter()
            report = RunReport(started_at=when)
            cfg = self.config
            vault.flush()  # heat needs the buffered access counts
            active = list(iter_items(vault.store))  # one scan for forget and heat
            if cfg.forget is not None:
                done = forget(vault, cfg.forget, now=when, active=active)
                report.steps["forget"] = done.to_dict()
                gone = {d.item_id for d in done.decisions
                        if d.action == "archive" and d.item_id not in done.skipped}
                active = [i for i in active if i.id not in gone]
            if cfg.link is not None:
                report.steps["link"] = link_new(vault, cfg.link).to_dict()
            if cfg.consolidate is not None:
                # stop() cancels between two sessions; the next pass picks the rest up
                report.steps["consolidate"] = consolidate(
                    vault, self.llm, cfg.consolidate, cancel=self._stop.is_set).to_dict()
            ranked = self.heat_by_owner(vault, when, active)
            report.items = sum(len(v) for v in ranked.values())
            top = sorted(((i, h) for v in ranked.values() for i, h in v[:10]),
                         key=lambda p: -p[1])[:10]
            report.hottest = [{"id": i.id, "heat": round(h, 4), "kind": i.kind,
                               "scope": {f: getattr(i, f) for f in OWNER_FIELDS}}
                              for i, h in top]
            report.steps["placement"] = place(
                vault, ranked, when, cfg.placement, activation=self.activation,
                parametric=self.parametric, wait=wait).to_dict()
            report.seconds = time.perf_counter() - started
            self.runs += 1
            self.last_report = report
            return report

    def heat_by_owner(self, vault: "Vault", now: datetime | None = None,
                      active: Iterable[MemoryItem] | None = None
                      ) -> dict[str, list[tuple[MemoryItem, float]]]:
        """Active memories (default: a fresh scan) grouped by owner, hottest first.

        Memories written later in the same pass (new summaries) are ranked next pass."""
        if active is None:
            vault.flush()
            active = iter_items(vault.store)
        groups: dict[str, list[MemoryItem]] = {}
        for item in active:
            groups.setdefault(scope_key(item.scope, OWNER_FIELDS), []).append(item)
        return {k: rank_by_heat(v, now, self.config.heat) for k, v in groups.items()}

    # -- in-process background thread --------------------------------------------------
    def start(self, vault: "Vault") -> "Scheduler":
        """Run a pass every ``config.interval`` seconds until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            raise ConfigurationError("the scheduler is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(vault,), daemon=True,
                                        name="memvault-scheduler")
        self._thread.start()
        return self

    def _loop(self, vault: "Vault") -> None:
        while not self._stop.wait(self.config.interval):
            try:
                self.run_once(vault)
                self.last_error = None
            except MemvaultError as exc:
                self.last_error = f"{exc.code}: {exc.message}"
                log.warning("scheduler pass failed: %s", self.last_error)
            except Exception as exc:  # keep the thread alive; the pass is retried
                self.last_error = repr(exc)
                log.exception("scheduler pass crashed")

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread after the pass in progress (if any) finishes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
