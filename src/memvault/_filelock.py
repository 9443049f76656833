"""Advisory file locks between processes (``flock``).

Used where several processes share files: SQLite writers queue on a lock file instead of
in SQLite's busy handler, and index snapshots are swapped in under one. The kernel drops
a ``flock`` when its holder dies, even by SIGKILL, so a crash never leaves a stale lock.
Waiting blocks in the kernel, which wakes a waiter the moment the lock is released; there
is no timeout, so hold these locks only around bounded work (one transaction, one rename),
never around caller code. On platforms without ``fcntl`` the lock is a no-op.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["file_lock", "LockFile"]


class LockFile:
    """One open lock file, to take and release many times (opening it each time costs).

    Not a lock between threads of one process (they share the open file): callers hold
    their own thread lock around it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] | None = open(self.path, "a+b") if fcntl is not None else None

    @contextmanager
    def hold(self, *, exclusive: bool = True) -> Iterator[None]:
        if self._fh is None:
            yield
            return
        fd = self._fh.fileno()
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@contextmanager
def file_lock(path: str | Path, *, exclusive: bool = True) -> Iterator[None]:
    """Open ``path`` (created if missing), hold the lock, close it."""
    lock = LockFile(path)
    try:
        with lock.hold(exclusive=exclusive):
            yield
    finally:
        lock.close()
