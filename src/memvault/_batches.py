"""Batches written one transaction each, the next one prepared while this one is written."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def batched(rows: Iterator[Any], size: int, make: Callable[[Any], T]
            ) -> Callable[[], tuple[list[T], Exception | None]]:
    """A reader of the next batch of ``make(row)``, or of the error that cut it short:
    raised by :func:`write_ahead` once the batches before it are written, as when records
    were read one batch at a time."""
    def read() -> tuple[list[T], Exception | None]:
        batch: list[T] = []
        try:
            for row in rows:
                batch.append(make(row))
                if len(batch) >= size:
                    break
        except Exception as exc:  # noqa: BLE001 - re-raised in order by write_ahead
            return batch, exc
        return batch, None
    return read


def write_ahead(read: Callable[[], tuple[list[T], Exception | None]],
                prepare: Callable[[list[T]], Any], write: Callable[[list[T], Any], list[R]],
                progress: Callable[[int], None] | None = None) -> list[R]:
    """Write every batch ``read`` gives; batch N+1 is prepared (embedded) in a worker
    while batch N is written here: the encoder releases the GIL, so the write's Python and
    SQLite work need not wait for the next embedding. One batch starts no thread."""
    out: list[R] = []
    batch, error = read()
    prepared: Any = None
    with contextlib.ExitStack() as stack:
        pool: ThreadPoolExecutor | None = None
        while True:
            if error is not None:
                raise error  # its batch is not written
            if not batch:
                return out
            upcoming, error = read()
            pending = None
            if upcoming and error is None:
                if pool is None:
                    pool = stack.enter_context(ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix="memvault-embed"))
                pending = pool.submit(prepare, upcoming)
            out += write(batch, prepared)
            if progress:
                progress(len(batch))
            batch, prepared = upcoming, pending.result() if pending is not None else None
