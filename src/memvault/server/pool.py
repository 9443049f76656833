"""A bounded pool of long-lived worker threads for blocking calls, with queue counters.

Why not anyio's default workers: they are retired after 10 s idle, and the SQLite store
keeps one reader connection per thread for the life of the store, so short-lived threads
would leak a connection (and its file descriptors) on every burst of traffic. Why count:
``waiting`` (submitted, not started) is the queue depth that health and metrics report.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ..errors import StorageError

__all__ = ["WorkerPool"]

T = TypeVar("T")


class WorkerPool:
    """``threads`` workers named ``<name>-N``, started on first use."""

    def __init__(self, threads: int, name: str = "memvault") -> None:
        self.threads, self.name = threads, name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.waiting = 0  # submitted, not started: the queue depth
        self.running = 0

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
            return self._pool

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a worker thread. Once submitted it runs to the end
        even if the client goes away: a write that was accepted completes (durably)."""
        def task() -> T:
            with self._lock:
                self.waiting -= 1
                self.running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        with self._lock:
            self.waiting += 1
        try:
            submitted = self._executor().submit(task)
        except RuntimeError:  # the pool is shutting down with the server
            with self._lock:
                self.waiting -= 1
            raise StorageError("the server is shutting down", reason="shutdown") from None
        future = asyncio.wrap_future(submitted)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "unretrieved"
        return await asyncio.shield(future)

    def stats(self) -> dict[str, int]:
        return {"threads": self.threads, "in_flight": self.running,
                "queue_depth": self.waiting}

    def close(self) -> None:
        """Wait for running calls and stop the workers (a later call starts new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
