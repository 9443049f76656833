"""Copy a whole record store to another backend, row for row, and prove it arrived intact.

``copy_store(src, dst)`` moves every version row (with its search text, content hash and
embedding), every link, the access statistics, the audit log and the metadata, keeping
ids, versions, ``valid_from``/``valid_to`` and the sequence numbers of versions and audit
events. Then it reads the destination back and compares row counts per table and SHA-256
checksums of the versions (id, version, text, status, valid_from, valid_to, content_hash),
of the embeddings and of the audit log against the same figures taken from the source
during the copy; any difference raises IntegrityError.

Supported pairs: SQLite -> PostgreSQL and PostgreSQL -> SQLite (and either to itself).
SQLite is read through its own read-only ``sqlite3`` connection (one read transaction:
a consistent snapshot) and written through a fresh connection in one ``BEGIN IMMEDIATE``
transaction; PostgreSQL through :meth:`PostgresStore.export_raw` (one REPEATABLE READ
snapshot) and :meth:`PostgresStore.import_raw` (one transaction, COPY). The destination
must be empty (no versions, audit, links or access rows): a fresh store.

``transform`` (with ``tables``, the order in which the source is read) lets a caller filter
or rewrite the rows on their way: the MemCube writer keeps one scope and re-embeds the
vectors with it. The digest is taken of what the transform yields, so verification still
proves that what was meant to be written arrived intact.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..errors import Conflict, IntegrityError, InvalidInput, StorageError
from ._pg_rows import RAW_COLUMNS, RAW_TABLES
from .sqlite import SQLiteStore, immediate

__all__ = ["copy_store", "store_digest", "raw_rows"]

Chunk = tuple[str, list[tuple]]
Progress = Callable[[str, int], None]

_V = RAW_COLUMNS["versions"]
_VERSION_KEY = [_V.index(c) for c in ("id", "version", "text", "status", "valid_from",
                                      "valid_to", "content_hash")]
_SQLITE_ORDER = {"meta": "key", "vectors": "content_hash", "versions": "seq",
                 "links": "src, dst, kind", "access": "id", "audit": "seq"}


# -- digests --------------------------------------------------------------------------------

class _Digest:
    """Row counts per table and order-independent SHA-256 checksums: each row is hashed on
    its own, the row hashes are sorted by a canonical key, and the sorted list is hashed."""

    def __init__(self) -> None:
        self.counts = {t: 0 for t in RAW_TABLES}
        self._rows: dict[str, list[tuple[Any, bytes]]] = {"versions": [], "vectors": [],
                                                          "audit": []}

    def add(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        self.counts[table] += len(rows)
        if table == "versions":
            for r in rows:
                key = [r[i] for i in _VERSION_KEY]
                self._rows[table].append(((r[1], r[2]), _h(key)))
        elif table == "vectors":
            for h, dim, emb in rows:
                self._rows[table].append((h, hashlib.sha256(
                    f"{h}\x00{dim}\x00".encode() + bytes(emb)).digest()))
        elif table == "audit":
            for r in rows:  # seq, at, actor, action, item_id, version, details (canonical)
                self._rows[table].append((r[0], _h(list(r))))

    def result(self) -> dict[str, Any]:
        sums = {}
        for table, rows in self._rows.items():
            h = hashlib.sha256()
            for _key, digest in sorted(rows, key=lambda kv: kv[0]):
                h.update(digest)
            sums[table] = h.hexdigest()
        return {"counts": dict(self.counts), "sha256": sums}


def _h(values: list[Any]) -> bytes:
    canon = json.dumps([repr(v) if isinstance(v, float) else v for v in values],
                       ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).digest()


# -- SQLite raw access ----------------------------------------------------------------------

def _sqlite_path(store: SQLiteStore) -> Path:
    if str(store.path) == ":memory:":
        raise InvalidInput("an in-memory SQLite store cannot be copied")
    return store.path


def _sqlite_rows(path: Path, tables: Sequence[str] = RAW_TABLES,
                 batch: int = 2000) -> Iterator[Chunk]:
    """Raw rows from a read-only connection, all tables from one read transaction."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"opening {path} read-only: {exc}") from exc
    try:
        conn.execute("BEGIN")
        for table in tables:
            cols = RAW_COLUMNS[table]
            cur = conn.execute(f"SELECT {', '.join(cols)} FROM {table} "
                               f"ORDER BY {_SQLITE_ORDER[table]}")
            while True:
                rows = cur.fetchmany(batch)
                if not rows:
                    break
                yield table, [tuple(r) for r in rows]
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageError(f"reading {path}: {exc}") from exc
    finally:
        conn.close()


def _sqlite_write(path: Path, chunks: Iterable[Chunk], busy_timeout: float = 30.0) -> None:
    """Write raw rows into the (empty) SQLite file at ``path`` in one transaction."""
    conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        with immediate(conn):
            busy = conn.execute(
                "SELECT (SELECT count(*) FROM versions) + (SELECT count(*) FROM audit) + "
                "(SELECT count(*) FROM links) + (SELECT count(*) FROM access)").fetchone()[0]
            if busy:
                raise Conflict(f"the destination store {path} is not empty")
            for table, rows in chunks:
                cols = RAW_COLUMNS[table]
                verb = "INSERT OR REPLACE" if table == "meta" else "INSERT"
                conn.executemany(f"{verb} INTO {table} ({', '.join(cols)}) "
                                 f"VALUES ({', '.join('?' * len(cols))})", rows)
    except sqlite3.Error as exc:
        if isinstance(exc, sqlite3.IntegrityError):
            raise Conflict(f"writing {path}: {exc}") from exc
        raise StorageError(f"writing {path}: {exc}") from exc
    finally:
        conn.close()


# -- dispatch -------------------------------------------------------------------------------

def _kind(store: Any) -> str:
    if isinstance(store, SQLiteStore):
        return "sqlite"
    try:
        from .postgres import PostgresStore
    except ImportError:  # pragma: no cover
        PostgresStore = None  # type: ignore[assignment,misc]
    if PostgresStore is not None and isinstance(store, PostgresStore):
        return "postgres"
    raise InvalidInput(f"copy_store supports SQLiteStore and PostgresStore, not "
                       f"{type(store).__name__}")


def _read(store: Any, tables: Sequence[str] = RAW_TABLES) -> Iterator[Chunk]:
    if _kind(store) == "sqlite":
        return _sqlite_rows(_sqlite_path(store), tables)
    return store.export_raw(tables=tables)


def raw_rows(store: Any, tables: Sequence[str] = RAW_TABLES) -> Iterator[Chunk]:
    """Raw rows (layout ``RAW_COLUMNS``) of ``tables`` from one consistent snapshot."""
    return _read(store, tables)


def store_digest(store: Any) -> dict[str, Any]:
    """Row counts and checksums of ``store``, as :func:`copy_store` compares them."""
    digest = _Digest()
    for table, rows in _read(store):
        digest.add(table, rows)
    return digest.result()


def copy_store(src: Any, dst: Any, progress: Progress | None = None, *,
               transform: Callable[[Iterator[Chunk]], Iterator[Chunk]] | None = None,
               tables: Sequence[str] = RAW_TABLES) -> dict[str, Any]:
    """Copy every row of ``src`` into the empty store ``dst``; verify; return a report.

    ``progress(table, rows)`` is called after each chunk is read from the source. The
    report has ``counts`` (rows per table), ``sha256`` (checksums of versions, vectors and
    audit, equal on both sides), ``seconds`` and ``ok`` (always True: a mismatch raises
    IntegrityError, and the destination should then be discarded).
    """
    src_kind, dst_kind = _kind(src), _kind(dst)
    if src is dst or (src_kind == dst_kind == "sqlite"
                      and Path(src.path).resolve() == Path(dst.path).resolve()):
        raise InvalidInput("source and destination are the same store")
    if sorted(tables) != sorted(RAW_TABLES):
        raise InvalidInput(f"tables must be an ordering of {RAW_TABLES}")
    started = time.monotonic()
    source = _Digest()

    def read() -> Iterator[Chunk]:
        for table, rows in _read(src, tables):
            if progress is not None:
                progress(table, len(rows))
            yield table, rows

    def stream() -> Iterator[Chunk]:
        for table, rows in (transform or (lambda c: c))(read()):
            source.add(table, rows)
            yield table, rows

    if dst_kind == "sqlite":
        _sqlite_write(_sqlite_path(dst), stream())
    else:
        dst.import_raw(stream())
    expected = source.result()
    actual = store_digest(dst)
    if actual != expected:
        bad = {k: (expected["counts"][k], actual["counts"][k]) for k in expected["counts"]
               if expected["counts"][k] != actual["counts"][k]}
        bad.update({f"sha256:{k}": "differs" for k in expected["sha256"]
                    if expected["sha256"][k] != actual["sha256"][k]})
        raise IntegrityError(f"copy verification failed ({src_kind} -> {dst_kind}): {bad}; "
                             "discard the destination and copy again", mismatches=bad)
    return {**expected, "source": src_kind, "destination": dst_kind,
            "seconds": round(time.monotonic() - started, 3), "ok": True}
