"""The embedded default record store: one SQLite file in WAL mode.

Durability: every ``apply`` is one ``BEGIN IMMEDIATE`` transaction and, with the default
``synchronous=FULL``, the WAL is fsynced before ``apply`` returns, so an acknowledged
write survives ``kill -9`` and power loss. Lexical search is FTS5 with the porter stemmer,
kept in step with the versions table by triggers inside the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence


from .._filelock import LockFile
from ..errors import Conflict, IntegrityError, InvalidInput, StorageError
from ._dialect import SQLITE
from ._lexicon import MemoryBM25
from ._reads import SQLReads
from .base import AuditOp, GovernanceOp, InsertVersion, LinkOp, PurgeOp, RowQuery, WriteOp
from .governance import run_write

__all__ = ["SQLiteStore"]

_MAX_IDLE_READERS = 8


def _translate(exc: sqlite3.Error, what: str) -> Exception:
    """A memvault error for a sqlite3 one, with a ``reason`` a caller can act on.

    Python 3.11+ gives SQLite's own error name (``SQLITE_FULL``, ``SQLITE_IOERR_WRITE``,
    ...); older versions leave only the message, which the fallbacks read."""
    msg = str(exc).lower()
    name = getattr(exc, "sqlite_errorname", "") or ""
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"{what}: {exc}")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in msg \
            or "not a database" in msg or "corrupt" in msg:
        return IntegrityError(f"{what}: the database file is damaged ({exc})")
    if name == "SQLITE_FULL" or "full" in msg:
        return StorageError(f"{what}: the disk is full ({exc})", reason="disk_full")
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in msg:
        # e.g. EFBIG (file size limit) or EIO: nothing of this transaction was kept
        return StorageError(f"{what}: the disk refused the write ({exc})", reason="io_error")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in msg or "busy" in msg:
        return StorageError(f"{what}: the database stayed locked ({exc})", reason="locked")
    return StorageError(f"{what}: {exc}")


class SQLiteStore(SQLReads):
    """Reads shared with PostgreSQL come from :class:`SQLReads` (``_reads.py``)."""

    dialect = SQLITE

    def __init__(self, path: str | Path, *, durability: str = "full",
                 busy_timeout: float = 30.0, memory_bm25: bool = True) -> None:
        if durability not in ("full", "normal"):
            raise InvalidInput("durability must be 'full' or 'normal'")
        self.path = Path(path)
        #: Lexical queries matching more rows than this drop their most common terms.
        self.max_lexical_matches = 5000
        self._sync = durability.upper()
        self._timeout = busy_timeout
        self._lock = threading.RLock()
        self._idle: list[sqlite3.Connection] = []
        self._match_counts: dict[int, _MatchCounts] = {}  # per reader connection
        self._closed = False
        #: BM25 over postings kept in memory (``_lexicon.py``: FTS5's scores, faster);
        #: ``memory_bm25=False`` asks FTS5 for every query
        self._bm25 = (MemoryBM25(self._connect)
                      if memory_bm25 and str(path) != ":memory:" else None)
        self._wlock: LockFile | None = None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # writers of all processes queue here, not in SQLite's busy handler (which
            # sleeps up to 100 ms between tries and starves writers under contention)
            try:
                self._wlock = LockFile(f"{self.path}-writelock")
            except OSError as exc:
                raise StorageError(f"cannot open {self.path}-writelock: {exc}") from exc
        try:
            # Switching a new file to WAL needs an exclusive lock, and SQLite can answer
            # SQLITE_BUSY at once (no busy handler) when several processes race to do it:
            # they take turns on the write lock instead.
            with self._wlock.hold() if self._wlock else nullcontext():
                self._w = self._connect()
            self._migrate()
        except sqlite3.Error as exc:
            raise _translate(exc, f"opening {self.path}") from exc

    # -- connections -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=self._timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal" and str(self.path) != ":memory:":
            raise StorageError(f"could not enable WAL on {self.path} (got {mode})")
        conn.execute(f"PRAGMA synchronous={self._sync}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def _reader(self, what: str) -> Iterator[sqlite3.Connection]:
        """Borrow a reader connection from a small pool (WAL lets readers run in parallel).

        A pool rather than one connection per thread: servers retire worker threads, and
        per-thread connections would leak with them."""
        with self._lock:
            if self._closed:
                raise StorageError("the store is closed")
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
            yield conn
        except sqlite3.Error as exc:
            raise _translate(exc, what) from exc
        finally:
            if conn is not None:
                with self._lock:
                    keep = not self._closed and len(self._idle) < _MAX_IDLE_READERS
                    if keep:
                        self._idle.append(conn)
                    else:  # a later connection may get the same id: no stale counts
                        self._match_counts.pop(id(conn), None)
                if not keep:
                    conn.close()

    def _migrate(self) -> None:
        scripts = sorted(
            (p for p in resources.files("memvault.storage.migrations.sqlite").iterdir()
             if p.name.endswith(".sql")), key=lambda p: p.name)
        with self._writer("migrating the schema"):
            current = self._w.execute("PRAGMA user_version").fetchone()[0]
            if current > len(scripts):
                raise StorageError(f"{self.path} has schema version {current}; this "
                                   f"memvault knows up to {len(scripts)}: upgrade memvault")
            for number, script in enumerate(scripts, start=1):
                if number <= current:
                    continue
                for stmt in sql_statements(script.read_text()):
                    self._w.execute(stmt)
                self._w.execute(f"PRAGMA user_version={number}")

    # -- writes ------------------------------------------------------------------------
    @contextmanager
    def _writer(self, what: str) -> Iterator[sqlite3.Connection]:
        """The one write transaction at a time: this process's writers take the thread
        lock, then every process's writers queue on the lock file, then BEGIN IMMEDIATE."""
        with self._lock:
            if self._closed:
                raise StorageError("the store is closed")
            with self._wlock.hold() if self._wlock else nullcontext():
                try:
                    with immediate(self._w):
                        yield self._w
                except sqlite3.Error as exc:
                    raise _translate(exc, what) from exc

    def apply(self, ops: Sequence[WriteOp]) -> int:
        with self._writer("write") as conn:
            last = 0
            start = 0
            while start < len(ops):
                stop = _plain_run(ops, start)
                if stop - start > 1 and self._apply_new(conn, ops[start:stop]):
                    last = max(last, int(conn.execute(
                        "SELECT coalesce(max(seq), 0) FROM audit").fetchone()[0]))
                else:
                    for op in ops[start:max(stop, start + 1)]:
                        last = max(last, self._apply_one(conn, op))
                start = max(stop, start + 1)
        return last

    def _apply_new(self, conn: sqlite3.Connection, ops: Sequence[WriteOp]) -> bool:
        """A run of first versions (with their vectors) and audit rows, as one statement
        per table (``executemany``) instead of three or four per memory: what an import
        spends beside embedding. False, having written nothing, if any of the ids is
        already stored or repeated: then the ops go one by one and fail as they would."""
        inserts = [op for op in ops if isinstance(op, InsertVersion)]
        ids = [op.item.id for op in inserts]
        if len(set(ids)) != len(ids):
            return False
        if ids:
            marks = ",".join("?" * len(ids))
            if conn.execute(f"SELECT 1 FROM versions WHERE valid_to IS NULL AND id IN "
                            f"({marks}) LIMIT 1", ids).fetchone() is not None:
                return False
            import numpy as np  # here: a vault that only reads by id never loads numpy

            vecs = [np.ascontiguousarray(op.embedding, dtype="<f4") for op in inserts]
            conn.executemany(
                "INSERT OR IGNORE INTO vectors(content_hash, dim, embedding) VALUES (?,?,?)",
                [(op.content_hash, vec.shape[0], vec.tobytes())
                 for op, vec in zip(inserts, vecs)])
            conn.executemany(_INSERT_VERSION, [_version_row(op.item, op.search_text,  # type: ignore[arg-type]
                                                            op.content_hash) for op in inserts])
        audits = [op for op in ops if isinstance(op, AuditOp)]
        if audits:
            now = time.time()
            conn.executemany(_INSERT_AUDIT, [(now, op.actor, op.action, op.item_id, op.version,
                                              json.dumps(op.details, sort_keys=True))
                                             for op in audits])
        return True

    def _apply_one(self, conn: sqlite3.Connection, op: WriteOp) -> int:
        if isinstance(op, InsertVersion):
            self._insert(conn, op)
        elif isinstance(op, AuditOp):
            cur = conn.execute(_INSERT_AUDIT, (time.time(), op.actor, op.action, op.item_id,
                                               op.version, json.dumps(op.details, sort_keys=True)))
            return int(cur.lastrowid or 0)
        elif isinstance(op, LinkOp):
            if op.remove:
                conn.execute("DELETE FROM links WHERE src=? AND dst=? AND kind=?",
                             (op.src, op.dst, op.kind))
            else:
                conn.execute("INSERT INTO links(src, dst, kind, weight, created_at) "
                             "VALUES (?,?,?,?,?) ON CONFLICT(src, dst, kind) "
                             "DO UPDATE SET weight=excluded.weight",
                             (op.src, op.dst, op.kind, op.weight, time.time()))
        elif isinstance(op, PurgeOp):
            hashes = [r[0] for r in conn.execute(
                "SELECT DISTINCT content_hash FROM versions WHERE id=?", (op.item_id,))]
            conn.execute("DELETE FROM versions WHERE id=?", (op.item_id,))
            conn.execute("DELETE FROM access WHERE id=?", (op.item_id,))
            conn.execute("DELETE FROM links WHERE src=? OR dst=?", (op.item_id, op.item_id))
            conn.execute("DELETE FROM vectors WHERE content_hash IN (SELECT value FROM "
                         "json_each(?)) AND content_hash NOT IN (SELECT content_hash FROM "
                         "versions)", (json.dumps(hashes),))
        elif isinstance(op, GovernanceOp):
            run_write(conn, "sqlite", op.statement, op.params)
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown write op {op!r}")
        return 0

    def _insert(self, conn: sqlite3.Connection, op: InsertVersion) -> None:
        item = op.item
        row = conn.execute("SELECT version, search_text, content_hash FROM versions "
                           "WHERE id=? AND valid_to IS NULL", (item.id,)).fetchone()
        current = row[0] if row else 0
        search_text = op.search_text
        if search_text is None:  # same content as before (status change): keep its context
            search_text = row[1] if row and row[2] == op.content_hash else item.text
        if current != op.expected_version:
            raise Conflict(f"memory {item.id} is at version {current}, not "
                           f"{op.expected_version}: it changed under you; re-read and retry",
                           id=item.id)
        valid_from = item.valid_from.timestamp()  # type: ignore[union-attr]
        if row:
            conn.execute("UPDATE versions SET valid_to=? WHERE id=? AND valid_to IS NULL",
                         (valid_from, item.id))
        if op.embedding is not None:
            import numpy as np  # here: a vault that only reads by id never loads numpy

            vec = np.ascontiguousarray(op.embedding, dtype="<f4")
            conn.execute("INSERT OR IGNORE INTO vectors(content_hash, dim, embedding) "
                         "VALUES (?,?,?)", (op.content_hash, vec.shape[0], vec.tobytes()))
        elif conn.execute("SELECT 1 FROM vectors WHERE content_hash=?",
                          (op.content_hash,)).fetchone() is None:
            raise IntegrityError(f"no stored embedding for content {op.content_hash}")
        conn.execute(_INSERT_VERSION, _version_row(item, search_text, op.content_hash))

    def touch(self, counts: dict[str, tuple[int, float]]) -> None:
        if not counts:
            return
        rows = [(i, n, at, i) for i, (n, at) in counts.items()]
        with self._writer("recording access") as conn:
            conn.executemany(
                "INSERT INTO access(id, count, last_at) SELECT ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM versions WHERE id=?) ON CONFLICT(id) DO UPDATE SET "
                "count = count + excluded.count, "
                "last_at = max(coalesce(last_at, 0), excluded.last_at)", rows)

    # -- reads of SQLite's own (the shared ones are in _reads.py) -----------------------
    def lexical(self, terms: Sequence[str], query: RowQuery, k: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        if self._bm25 is not None:
            with self._lock:
                if self._closed:
                    raise StorageError("the store is closed")
            try:
                ranked = self._bm25.rank(list(terms), self.max_lexical_matches)
            except sqlite3.Error as exc:
                raise _translate(exc, "lexical search") from exc
            if ranked is not None:
                return self._filtered(ranked[0], ranked[1], query, k)
        return self._lexical_fts(terms, query, k)

    @property
    def lexical_in_memory(self) -> bool:
        """Whether ``lexical`` ranks in memory (about a millisecond, in this thread's
        Python) rather than in FTS5: the searcher then calls it inline, not on a thread."""
        return self._bm25 is not None and self._bm25.usable

    def warm(self) -> None:
        """Build the in-memory BM25 index, or bring it up to date, ahead of the next
        search (``Vault.prepare`` calls this; a search would otherwise do it first)."""
        if self._bm25 is not None:
            try:
                self._bm25.warm()
            except sqlite3.Error as exc:
                raise _translate(exc, "building the lexical index") from exc

    def _filtered(self, seqs: Any, scores: Any, query: RowQuery, k: int
                  ) -> list[tuple[int, float]]:
        """The best ``k`` of the ranked rows (numpy arrays, best first) that ``query``
        selects. The best few are checked by seq first (most searches stop there); if too
        few pass, the rows ``query`` selects are read when they are fewer than the
        matches left (a user's rows in a large vault), else every match left is checked."""
        if not len(seqs):
            return []
        import numpy as np  # with the arrays: numpy is loaded already

        where, params = self._where(query)
        by_seq = ("SELECT v.seq FROM json_each(?) j CROSS JOIN versions v ON v.seq = j.value "
                  f"WHERE {where}")
        first = min(len(seqs), max(2 * k, 64))
        with self._reader("lexical search") as conn:
            ok = {r[0] for r in conn.execute(by_seq, [json.dumps(seqs[:first].tolist()),
                                                      *params])}
            keep = np.fromiter((int(s) in ok for s in seqs[:first]), dtype=bool, count=first)
            if int(keep.sum()) < k and first < len(seqs):
                rest = seqs[first:]
                allowed = [r[0] for r in conn.execute(
                    f"SELECT v.seq FROM versions v WHERE {where} LIMIT ?",
                    [*params, len(rest)])]
                if len(allowed) < len(rest):  # the whole selection: no more to look up
                    more = np.isin(rest, np.asarray(allowed, dtype=np.int64))
                else:
                    ok = {r[0] for r in conn.execute(by_seq, [json.dumps(rest.tolist()),
                                                              *params])}
                    more = np.fromiter((int(s) in ok for s in rest), dtype=bool,
                                       count=len(rest))
                keep = np.concatenate([keep, more])
        top = np.flatnonzero(keep)[:k]
        return [(int(seqs[i]), float(scores[i])) for i in top]

    def _lexical_fts(self, terms: Sequence[str], query: RowQuery, k: int
                     ) -> list[tuple[int, float]]:
        where, params = self._where(query)
        # Stage 1 ranks only inside FTS (fast: no join per match), stage 2 filters the
        # best few hundred. If the filter leaves too few, rank every match instead.
        inner = max(8 * k, 400)
        staged = ("SELECT v.seq, s.score FROM (SELECT rowid, -bm25(versions_fts, 1.0, 0.5) "
                  "AS score FROM versions_fts WHERE versions_fts MATCH ? ORDER BY score DESC "
                  f"LIMIT ?) s JOIN versions v ON v.seq = s.rowid WHERE {where} "
                  "ORDER BY s.score DESC, v.seq LIMIT ?")
        full = ("SELECT v.seq, -bm25(versions_fts, 1.0, 0.5) AS score FROM versions_fts "
                "JOIN versions v ON v.seq = versions_fts.rowid "
                f"WHERE versions_fts MATCH ? AND {where} ORDER BY score DESC, v.seq LIMIT ?")
        with self._reader("lexical search") as conn:
            match = _prune_common_terms(conn, list(terms), self.max_lexical_matches,
                                        _counter(conn, self._match_counts))
            rows = conn.execute(staged, [match, inner, *params, k]).fetchall()
            if len(rows) < k:
                rows = conn.execute(full, [match, *params, k]).fetchall()
            return [(r[0], float(r[1])) for r in rows]

    def durability(self) -> dict[str, Any]:
        """The settings the writer connection runs with, read back from SQLite rather than
        taken from what was asked: a typo or a build that ignores a pragma would otherwise
        go unseen, and the crash tests cannot see it (SIGKILL keeps the page cache)."""
        with self._lock:
            if self._closed:
                raise StorageError("the store is closed")
            try:
                mode = str(self._w.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                level = int(self._w.execute("PRAGMA synchronous").fetchone()[0])
            except sqlite3.Error as exc:
                raise _translate(exc, "reading durability settings") from exc
        sync = {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(level, str(level))
        return {"backend": "sqlite", "journal_mode": mode, "synchronous": sync,
                # WAL + FULL/EXTRA: the WAL is fsynced before a commit returns
                "fsync_per_commit": mode == "wal" and level >= 2}

    def check(self) -> dict[str, Any]:
        """Run SQLite's own checks plus memvault's invariants; never raises on findings."""
        report: dict[str, Any] = {}
        with self._reader("checking integrity") as conn:
            report["sqlite"] = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            report["foreign_keys"] = len(conn.execute("PRAGMA foreign_key_check").fetchall())
            try:
                conn.execute("INSERT INTO versions_fts(versions_fts, rank) "
                             "VALUES ('integrity-check', 1)")
                report["fts"] = "ok"
            except sqlite3.DatabaseError as exc:
                report["fts"] = str(exc)
            report["open_versions_without_history"] = conn.execute(
                "SELECT count(*) FROM versions v WHERE v.version > 1 AND NOT EXISTS (SELECT 1 "
                "FROM versions p WHERE p.id = v.id AND p.version = v.version - 1)").fetchone()[0]
            report["bad_vectors"] = conn.execute(
                "SELECT count(*) FROM vectors WHERE length(embedding) != dim * 4").fetchone()[0]
            report["versions"] = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
        report["ok"] = (report["sqlite"] == ["ok"] and report["foreign_keys"] == 0
                        and report["fts"] == "ok" and report["bad_vectors"] == 0
                        and report["open_versions_without_history"] == 0)
        return report

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._wlock is not None:
                self._wlock.close()
            self._match_counts.clear()
            if self._bm25 is not None:
                self._bm25.close()
            for conn in [*self._idle, self._w]:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass


_INSERT_AUDIT = ("INSERT INTO audit(at, actor, action, item_id, version, details) "
                 "VALUES (?,?,?,?,?,?)")
_INSERT_VERSION = (
    "INSERT INTO versions(id, version, text, search_text, kind, user_id, agent_id, "
    "session_id, cube_id, metadata, provenance, tags, created_at, event_time, "
    "valid_from, valid_to, status, importance, expires_at, content_hash, valid_at, "
    "invalid_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?,?)")


def _ts(d: Any) -> float | None:
    return None if d is None else d.timestamp()


def _version_row(item: Any, search_text: str, content_hash: str) -> tuple[Any, ...]:
    return (item.id, item.version, item.text, search_text, item.kind, item.user_id,
            item.agent_id, item.session_id, item.cube_id,
            json.dumps(item.metadata, sort_keys=True),
            json.dumps(item.provenance, sort_keys=True), json.dumps(list(item.tags)),
            _ts(item.created_at), _ts(item.event_time), item.valid_from.timestamp(),
            item.status, item.importance, _ts(item.expires_at), content_hash,
            _ts(item.valid_at or item.valid_from), _ts(item.invalid_at))


def _plain_run(ops: Sequence[WriteOp], start: int) -> int:
    """End of the run from ``start`` of first versions that carry their vector and text
    (``InsertVersion`` at expected version 0) and audit rows: what ``_apply_new`` takes."""
    stop = start
    while stop < len(ops):
        op = ops[stop]
        if isinstance(op, InsertVersion):
            if op.expected_version != 0 or op.embedding is None or op.search_text is None:
                break
        elif not isinstance(op, AuditOp):
            break
        stop += 1
    return stop


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction (the write lock up front): commit, or roll back
    on any exception. Every SQLite write in memvault goes through this."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _fts_or(terms: Sequence[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class _MatchCounts:
    """How many rows an FTS query matches, remembered per reader connection until the
    database changes (``PRAGMA data_version`` moves when any other connection commits;
    readers never write). Queries share their words (names, places, "go"), and each
    count walks a whole document list: at 100k memories these counts were a fifth of a
    lexical search."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._counts: dict[str, int] = {}

    def __call__(self, conn: sqlite3.Connection, match: str) -> int:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version or len(self._counts) > 50_000:
            self._version, self._counts = version, {}
        found = self._counts.get(match)
        if found is None:
            found = self._counts[match] = conn.execute(
                "SELECT count(*) FROM versions_fts WHERE versions_fts MATCH ?",
                (match,)).fetchone()[0]
        return found


def _counter(conn: sqlite3.Connection, cache: dict[int, _MatchCounts]) -> Any:
    return cache.setdefault(id(conn), _MatchCounts())


def _prune_common_terms(conn: sqlite3.Connection, terms: list[str], limit: int,
                        count: Any = None) -> str:
    """The FTS query for ``terms``, without the most common ones if it would match > limit.

    BM25 costs time per matching row (about 1.5 us here), so a query whose words are all
    over a large store ranks tens of thousands of rows. Terms that match that many rows
    carry little IDF weight, so they are dropped, most common first, until the query
    matches at most ``limit`` rows or one term is left. Small stores are never pruned.

    ``count(conn, match)``: rows an FTS query matches (default: ask SQLite). The union
    is counted only when the terms' own counts cannot decide: it is at least the largest
    and at most the sum of them."""
    if count is None:
        count = lambda c, m: c.execute(  # noqa: E731
            "SELECT count(*) FROM versions_fts WHERE versions_fts MATCH ?", (m,)).fetchone()[0]
    match = _fts_or(terms)
    if len(terms) < 2:
        return match
    df = {t: count(conn, _fts_or([t])) for t in terms}
    total = sum(df.values())
    if total <= limit or (max(df.values()) <= limit and count(conn, match) <= limit):
        return match
    kept = sorted(terms, key=lambda t: df[t])
    while len(kept) > 1 and sum(df[t] for t in kept) > limit:
        kept.pop()
    return _fts_or(kept)


def sql_statements(script: str) -> Iterator[str]:
    """Split a migration into statements; trigger bodies contain ';' so use SQLite's parser."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if not buf and line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()
