"""One RAM budget for KV blocks and LoRA adapters together (S-LoRA's unified paging).

Both kinds of model-state memory are *pages*: a key, a kind (``"block"`` / ``"adapter"``),
the bytes it holds in RAM (the dequantized KV tensors; the LoRA weights injected into the
model) and how long it took to bring in. The :class:`Pager` owns their residency: a page is
brought in on demand by a loader the caller gives (read from disk, memory-mapped, only the
tensors needed), kept while it earns its place, and released through the caller's
``on_evict`` (drop the tensors; unload the adapter from the model). It never holds more
than its budget: before a page comes in, pages are evicted until it fits, and a page
larger than the whole budget is handed out without being kept (``bypass``).

Eviction policy (stated, because it decides the hit rate). Requests to scopes are close
to independent draws from a skewed law (Zipf): then the best any policy that does not see
the future can do is keep the set of pages with the most expected hits that fits the
budget (a knapsack on request probability per byte; ``make bench-pager`` checks this
against Belady's offline optimum). So the pager estimates each page's request rate and
keeps the pages with the most expected hits per byte::

    freq  = lookups of the page, each weighted 0.5 ** (lookups since then / half_life)
    value = freq / bytes

``freq`` counts lookups that missed as well as hits, and is remembered for a bounded
number of pages that are not resident (``history``), so a page that keeps coming back
earns its place. On a miss the lowest-value pages are the victims, and the newcomer is
admitted only when its expected hits beat theirs together (``freq`` against the victims'
summed ``freq``): otherwise it is handed out unkept (``bypass``) and the resident set
stays, instead of churning on every cold request. Ageing is counted in lookups, not
seconds, so the same half-life fits a busy and a quiet process; 1024 lookups won or
tied at Zipf s = 0.8, 1.1 and 1.4 and after a popularity shift against 256 to 16384
(``benchmarks/pager_replay.py``). Page-in cost
is measured and reported, not ranked by: per byte it is about constant within a kind,
and one sample is too noisy (p95/p50 of hundreds on a loaded machine) to order pages.
Pinned pages (an adapter switched on in a running generation) are never evicted; if only
pinned pages are left, the new page is handed out unkept.

The accounting is the tensors' own ``numel * element_size``; :meth:`Pager.stats` reports
it with hit/miss/eviction counts and page-in cost percentiles (seconds per MB), which the
scheduler view (``GET /v1/scheduler``, the web UI, ``memvault scheduler status``) shows.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from ..errors import ConfigurationError

__all__ = ["DEFAULT_BUDGET_MB", "Page", "Pager", "vault_pager"]

DEFAULT_BUDGET_MB = 512
DEFAULT_HALF_LIFE = 1024.0  # lookups
_MB = 1024 * 1024
_KEEP_SAMPLES = 512  # page-in cost samples kept for the percentiles


@dataclass(slots=True)
class Page:
    """A resident page (what :meth:`Pager.pages` lists)."""

    kind: str
    key: Hashable
    value: Any
    nbytes: int
    cost_s: float | None
    hits: int = 0
    last: float = 0.0
    pins: int = 0
    on_evict: Callable[[Any], None] | None = None


class Pager:
    """Budgeted residency for KV blocks and adapters (see the module docstring).

    ``budget_bytes``: the most the pages may hold together; ``half_life``: after how many
    lookups (of any page) a lookup counts half; ``history``: how many pages' use is
    remembered beyond the resident ones; ``clock``: seconds, monotonic (when each page
    was last used, for the status views; a test may pass its own).
    Thread-safe: one lock around the bookkeeping; loaders and ``on_evict`` callbacks run
    outside it, so a slow page-in does not stall hits on other pages, and a callback that
    takes the model's lock (unloading an adapter) cannot deadlock with a thread holding
    that lock while it asks the pager for a block. Two threads missing on the same key
    both load; the second result is dropped.
    """

    def __init__(self, budget_bytes: int, *, half_life: float = DEFAULT_HALF_LIFE,
                 history: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) \
                or budget_bytes < 0:
            raise ConfigurationError("the pager budget is a number of bytes >= 0",
                                     field="pager_budget_mb")
        if isinstance(half_life, bool) or not isinstance(half_life, (int, float)) \
                or not (math.isfinite(half_life) and half_life > 0):
            raise ConfigurationError("the pager half-life is a positive number of lookups")
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise ConfigurationError("the pager history is a number of pages >= 0")
        self.budget = budget_bytes
        self.half_life = float(half_life)
        self.history = history
        self.clock = clock
        self._pages: dict[tuple[str, Hashable], Page] = {}
        self._lock = threading.RLock()
        self._costs: dict[str, list[float]] = {}  # kind -> page-in seconds per byte
        self._use: dict[tuple[str, Hashable], tuple[float, int]] = {}  # freq, at lookup
        self._tick = 0  # lookups so far: the clock the use counts age by
        self.counts = {"hits": 0, "misses": 0, "evictions": 0, "bypass": 0}
        self.resident = 0
        self.peak = 0

    # -- the policy ----------------------------------------------------------------------
    def _freq(self, kind: str, key: Hashable) -> float:
        f, at = self._use.get((kind, key), (0.0, self._tick))
        return f * 0.5 ** ((self._tick - at) / self.half_life)

    def _used(self, kind: str, key: Hashable) -> None:
        """One more lookup of the page (lock held); forget the least used non-resident
        pages when the history is full."""
        self._tick += 1
        self._use[(kind, key)] = (self._freq(kind, key) + 1.0, self._tick)
        if len(self._use) > len(self._pages) + 2 * self.history:
            ghosts = sorted((k for k in self._use if k not in self._pages),
                            key=lambda k: self._freq(*k))
            for k in ghosts[:len(ghosts) - self.history]:
                del self._use[k]

    def value(self, page: Page) -> float:
        """What keeping ``page`` is worth: its expected hits per byte (higher stays)."""
        return self._freq(page.kind, page.key) / max(1, page.nbytes)

    def _make_room(self, need: int, out: list[Page], newcomer: float | None = None) -> bool:
        """Evict lowest-value unpinned pages until ``need`` more bytes fit (lock held);
        the evicted pages go to ``out`` (their callbacks run after the lock is released).
        With ``newcomer`` (its use count), nothing is evicted unless the newcomer's count
        beats the victims' together: False, and the resident set is left as it was."""
        if need > self.budget:
            return False
        if self.resident + need <= self.budget:
            return True
        victims, freed, lost = [], 0, 0.0
        for page in sorted((p for p in self._pages.values() if p.pins == 0), key=self.value):
            if self.resident - freed + need <= self.budget:
                break
            victims.append(page)
            freed += page.nbytes
            lost += self._freq(page.kind, page.key)
        if self.resident - freed + need > self.budget:
            return False  # only pinned pages left
        if newcomer is not None and newcomer <= lost:
            return False
        for page in victims:
            del self._pages[(page.kind, page.key)]
            self.resident -= page.nbytes
            self.counts["evictions"] += 1
            out.append(page)
        return True

    @staticmethod
    def _release(pages: list[Page]) -> None:
        for page in pages:
            if page.on_evict is not None:
                page.on_evict(page.value)

    # -- use -----------------------------------------------------------------------------
    def get(self, kind: str, key: Hashable, load: Callable[[], tuple[Any, int]], *,
            on_evict: Callable[[Any], None] | None = None,
            valid: Callable[[Any], bool] | None = None) -> Any:
        """The page's value: resident (a hit) or ``load()``-ed now (a miss), which returns
        ``(value, nbytes)``. ``valid(value)`` False means the resident copy went away
        behind the pager's back (e.g. an adapter unloaded elsewhere): it is dropped and
        loaded again."""
        with self._lock:
            page = self._pages.get((kind, key))
            if page is not None and valid is not None and not valid(page.value):
                del self._pages[(kind, key)]
                self.resident -= page.nbytes
                page = None
            self._used(kind, key)
            if page is not None:
                page.hits += 1
                page.last = self.clock()
                self.counts["hits"] += 1
                return page.value
            self.counts["misses"] += 1
        started = time.perf_counter()
        value, nbytes = load()
        cost = time.perf_counter() - started
        return self._admit(kind, key, value, int(nbytes), cost, on_evict)

    def put(self, kind: str, key: Hashable, value: Any, nbytes: int, *,
            on_evict: Callable[[Any], None] | None = None) -> bool:
        """Make a page resident that was produced rather than loaded (a block just built);
        True if it was kept."""
        with self._lock:
            self._used(kind, key)
        self._admit(kind, key, value, int(nbytes), None, on_evict)
        with self._lock:
            return (kind, key) in self._pages

    def _admit(self, kind: str, key: Hashable, value: Any, nbytes: int, cost: float | None,
               on_evict: Callable[[Any], None] | None) -> Any:
        evicted: list[Page] = []
        try:
            return self._admit_locked(kind, key, value, nbytes, cost, on_evict, evicted)
        finally:
            self._release(evicted)

    def _admit_locked(self, kind: str, key: Hashable, value: Any, nbytes: int,
                      cost: float | None, on_evict: Callable[[Any], None] | None,
                      evicted: list[Page]) -> Any:
        with self._lock:
            if cost is not None and nbytes > 0:
                samples = self._costs.setdefault(kind, [])
                samples.append(cost / nbytes)
                del samples[:-_KEEP_SAMPLES]
            old = self._pages.get((kind, key))
            if old is not None:  # a concurrent load won, or a rebuilt page replaces it
                if old.value is value:
                    return value
                self._pages.pop((kind, key))
                self.resident -= old.nbytes
                if old.pins == 0:
                    evicted.append(old)
            if not self._make_room(nbytes, evicted, newcomer=self._freq(kind, key)):
                self.counts["bypass"] += 1
                return value
            self._pages[(kind, key)] = Page(kind, key, value, nbytes, cost, hits=0,
                                            last=self.clock(), on_evict=on_evict)
            self.resident += nbytes
            self.peak = max(self.peak, self.resident)
            return value

    def pin(self, kind: str, key: Hashable, pinned: bool = True) -> None:
        """Protect a resident page from eviction while it is in use (nests)."""
        with self._lock:
            page = self._pages.get((kind, key))
            if page is not None:
                page.pins = max(0, page.pins + (1 if pinned else -1))

    def drop(self, kind: str, key: Hashable) -> None:
        """Forget a page (its file was deleted or replaced); ``on_evict`` is not called
        for a pinned one."""
        with self._lock:
            page = self._pages.pop((kind, key), None)
            if page is not None:
                self.resident -= page.nbytes
        if page is not None and page.pins == 0:
            self._release([page])

    def resize(self, budget_bytes: int) -> None:
        """A new budget; pages are evicted at once if they no longer fit."""
        evicted: list[Page] = []
        with self._lock:
            self.budget = max(0, int(budget_bytes))
            self._make_room(0, evicted)
        self._release(evicted)

    def clear(self) -> None:
        """Release every unpinned page."""
        with self._lock:
            pages = [p for p in self._pages.values() if p.pins == 0]
            for page in pages:
                del self._pages[(page.kind, page.key)]
                self.resident -= page.nbytes
        self._release(pages)

    # -- what it holds -------------------------------------------------------------------
    def holds(self, kind: str, key: Hashable) -> bool:
        """Is the page resident? False after a miss whose page was handed out unkept: the
        caller releases what it loaded when done with it (an adapter installed for one
        generation)."""
        with self._lock:
            return (kind, key) in self._pages

    def pages(self) -> list[Page]:
        with self._lock:
            return sorted(self._pages.values(), key=lambda p: -p.nbytes)

    def stats(self) -> dict[str, Any]:
        """Budget, what is resident (bytes and pages by kind), counts, hit rate, page-in
        cost p50/p95 in seconds per MB."""
        with self._lock:
            by_kind: dict[str, dict[str, int]] = {}
            for p in self._pages.values():
                row = by_kind.setdefault(p.kind, {"pages": 0, "bytes": 0})
                row["pages"] += 1
                row["bytes"] += p.nbytes
            lookups = self.counts["hits"] + self.counts["misses"]
            costs = sorted(c * _MB for samples in self._costs.values() for c in samples)
            return {"budget_bytes": self.budget, "resident_bytes": self.resident,
                    "peak_bytes": self.peak, "pages": len(self._pages), "by_kind": by_kind,
                    **self.counts,
                    "hit_rate": round(self.counts["hits"] / lookups, 4) if lookups else None,
                    "page_in_s_per_mb_p50": _pct(costs, 0.50),
                    "page_in_s_per_mb_p95": _pct(costs, 0.95),
                    "policy": "expected hits per byte (use count aged by lookups, "
                              f"half-life {self.half_life:g}), admission by use"}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 6)


_PAGERS: "weakref.WeakKeyDictionary[Any, Pager]" = weakref.WeakKeyDictionary()
_PAGERS_LOCK = threading.Lock()


def vault_pager(vault: Any) -> Pager:
    """The vault's one pager (its activation store and adapter store share it), with the
    budget of ``vault.settings.pager_budget_mb``."""
    with _PAGERS_LOCK:
        pager = _PAGERS.get(vault)
        if pager is None:
            mb = getattr(vault.settings, "pager_budget_mb", DEFAULT_BUDGET_MB)
            pager = _PAGERS[vault] = Pager(int(mb * _MB))
        return pager
