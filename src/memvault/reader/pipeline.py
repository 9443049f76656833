"""The reader's two modes and the deferred extraction job.

fast: the turns are stored as they come (one transaction, no LLM on the write path) and
      flagged ``metadata.extract = "deferred"``; :class:`ExtractionJob` reads them later.
fine: the turns are stored, then read at once: facts are extracted (LLM, or rules) and
      each one goes through the ADD/UPDATE/DELETE/NOOP decision.

The job's progress is a watermark in the store's meta table (the audit sequence number of
the last ``add`` it has read), written after the facts of a batch are applied. A job
killed mid-batch reads that batch again on restart; exact dedup turns the facts it had
already written into NOOPs, so a restart neither loses nor doubles facts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from .. import hooks
from ..errors import InvalidInput, MemvaultError
from ..models import get_llm
from ..models.llm import LLM
from ..storage.base import RowQuery
from ..types import MemoryItem
from .decide import DecideConfig, Decider, Decision
from .extract import extract

if TYPE_CHECKING:
    from ..vault import Vault

log = logging.getLogger("memvault.reader")

__all__ = ["remember", "read_turns", "RememberResult", "ExtractionJob", "WATERMARK_KEY",
           "MODES", "resolve_llm"]

MODES = ("fast", "fine")
WATERMARK_KEY = "reader.extract_after"


@dataclass(slots=True)
class RememberResult:
    mode: str
    turns: list[MemoryItem]
    decisions: list[Decision] = field(default_factory=list)
    #: How each window of turns was read: "llm", "rules" or "fallback".
    methods: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {a: 0 for a in ("ADD", "UPDATE", "DELETE", "NOOP")}
        for d in self.decisions:
            out[d.action] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "turns": [t.id for t in self.turns],
                "decisions": [d.to_dict() for d in self.decisions],
                "counts": self.counts(), "methods": self.methods}


def resolve_llm(vault: "Vault", llm: "LLM | str | None") -> LLM | None:
    """``llm`` as given, else the vault's ``settings.llm`` spec ("none" forces the rules)."""
    return get_llm(llm if llm is not None else vault.settings.llm)


def _turn_dict(item: MemoryItem) -> dict[str, Any]:
    # the name the speaker goes by when the write path learned it ("I'm Maya"), else the handle
    speaker = item.provenance.get("speaker_name") or item.metadata.get("speaker")
    return {"id": item.id, "text": item.text, "speaker": speaker,
            "role": item.metadata.get("role", "user"), "event_time": item.event_time}


def _windows(turns: Sequence[MemoryItem], size: int) -> Iterator[list[MemoryItem]]:
    """Consecutive turns of one scope (session), at most ``size`` per window."""
    current: list[MemoryItem] = []
    for item in turns:
        if current and (len(current) >= size or item.scope != current[0].scope):
            yield current
            current = []
        current.append(item)
    if current:
        yield current


def read_turns(vault: "Vault", turns: Sequence[MemoryItem], llm: LLM | None, *,
               window: int = 8, config: DecideConfig | None = None,
               progress: Callable[[int], None] | None = None) -> RememberResult:
    """Extract facts from stored turns and apply a decision for each."""
    decider = Decider(vault, llm, config or DecideConfig())
    result = RememberResult("fine", list(turns))
    for chunk in _windows(turns, window):
        extraction = extract([_turn_dict(t) for t in chunk], llm)
        result.methods.append(extraction.method)
        result.decisions += decider.process(extraction.facts, chunk[0].scope)
        if progress:
            progress(len(chunk))
    return result


@hooks.provide("remember")
def remember(vault: "Vault", messages: Sequence[Mapping[str, Any]], *, mode: str = "fast",
             llm: "LLM | str | None" = None, user_id: str | None = None,
             agent_id: str | None = None, session_id: str | None = None,
             cube_id: str | None = None, event_time: Any = None, window: int = 8,
             config: DecideConfig | None = None,
             progress: Callable[[int], None] | None = None) -> RememberResult:
    """Store chat ``messages`` as turns and read them now (fine) or later (fast)."""
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {MODES}, not {mode!r}", field="mode")
    model = resolve_llm(vault, llm) if mode == "fine" else None
    turns = vault.add_messages(messages, user_id=user_id, agent_id=agent_id,
                               session_id=session_id, cube_id=cube_id, event_time=event_time,
                               metadata={"extract": "deferred" if mode == "fast" else "inline"})
    if mode == "fast":
        if progress:
            progress(len(turns))
        return RememberResult("fast", turns)
    return read_turns(vault, turns, model, window=window, config=config, progress=progress)


class ExtractionJob:
    """Reads the turns that fast mode deferred, batch by batch, resumable after restarts.

    Run it to completion (:meth:`run`, what ``memvault extract`` does) or in a background
    thread (:meth:`start` / :meth:`stop`). Use one job per vault at a time.
    """

    def __init__(self, vault: "Vault", llm: "LLM | str | None" = None, *, batch: int = 64,
                 window: int = 8, config: DecideConfig | None = None) -> None:
        self.vault = vault
        self.llm = resolve_llm(vault, llm)
        self.batch = batch
        self.window = window
        self.config = config or DecideConfig()
        self.last_error: MemvaultError | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def watermark(self) -> int:
        return int(self.vault.store.meta().get(WATERMARK_KEY, "0"))

    def pending(self) -> int:
        """Deferred turns not yet read (an upper bound: deleted turns are skipped later)."""
        after, count = self.watermark, 0
        while True:
            events = self.vault.store.audit_events(action="add", after=after, limit=1000)
            ids = [e.item_id for e in events if e.details.get("kind") == "turn" and e.item_id]
            if ids:
                count += self.vault.store.count(RowQuery(ids=ids, kinds=["turn"],
                                                         metadata={"extract": "deferred"}))
            if len(events) < 1000:
                return count
            after = events[-1].seq

    def run_once(self, progress: Callable[[int], None] | None = None) -> RememberResult | None:
        """Read one batch; None when there is nothing left."""
        with self._lock:
            events = self.vault.store.audit_events(action="add", after=self.watermark,
                                                   limit=self.batch)
            if not events:
                return None
            ids = [e.item_id for e in events if e.details.get("kind") == "turn" and e.item_id]
            rows = self.vault.store.select(RowQuery(
                ids=ids, kinds=["turn"], metadata={"extract": "deferred"},
                order="seq_asc")) if ids else []
            result = read_turns(self.vault, [r.item for r in rows], self.llm,
                                window=self.window, config=self.config, progress=progress)
            self.vault.store.set_meta(WATERMARK_KEY, str(events[-1].seq))
            return result

    def run(self, *, progress: Callable[[int], None] | None = None,
            max_batches: int | None = None) -> RememberResult:
        """Read everything pending (or ``max_batches`` batches); the merged result."""
        total = RememberResult("fast", [])
        done = 0
        while max_batches is None or done < max_batches:
            step = self.run_once(progress)
            if step is None:
                break
            total.turns += step.turns
            total.decisions += step.decisions
            total.methods += step.methods
            done += 1
        return total

    # -- background ------------------------------------------------------------------------
    def start(self, interval: float = 1.0) -> None:
        """Poll for deferred turns every ``interval`` seconds in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval,),
                                        name="memvault-extract", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once() is not None:
                    continue
            except MemvaultError as exc:  # keep polling: the store may come back
                self.last_error = exc
                log.warning("deferred extraction failed: %s", exc)
            self._stop.wait(interval)
