"""The scale-out record store: PostgreSQL + pgvector, behind the same RecordStore contract.

Same semantics as :class:`~memvault.storage.sqlite.SQLiteStore`, with these choices:

* ``apply`` is one transaction on one pooled connection (psycopg 3 + psycopg_pool).
  Transactions that write audit rows first take a transaction-scoped advisory lock, held
  to commit, so audit ``seq`` order is commit order. Without it two writers could commit
  seqs 11 then 10, and a Searcher that had already moved its watermark to 11 would never
  see 10: the change feed (``changes``/``last_change``) relies on this, as it relies on
  SQLite's single writer.
* An update locks the item's open version (``SELECT ... FOR UPDATE``) before its
  optimistic version check; a unique partial index allows one open version per memory,
  so racing creators of one id get Conflict, never two open versions.
* Embeddings live in ``vectors`` (keyed by content hash) as pgvector ``vector(dim)``; the
  column gets its dimension, and the HNSW index (``vector_cosine_ops``), with the first
  embedding written (or at open, given ``dim``). The Searcher asks it for dense
  candidates (:meth:`PostgresStore.dense_source`, ``pg_search.py``): no process holds
  or rebuilds an in-memory index of a PostgreSQL vault.
* Lexical search is Okapi BM25 computed in SQL with FTS5's formula and constants
  (k1 = 1.2, b = 0.75, text weight 1.0, tags 0.5, as sqlite.py calls ``bm25()``): a
  stored generated ``tsvector`` (english stemming, GIN index) finds the rows, stored
  generated ``tf``/``doc_len`` columns give term frequencies and lengths, and
  trigger-kept counters give the row count and mean length. Where the tokenizers agree
  the scores equal FTS5's to rounding. ``ts_rank_cd`` is not used: it has no inverse
  document frequency, which is what ranks a rare matching term above a common one in
  an OR query.
* Durability is the server's: with PostgreSQL's defaults (``fsync``,
  ``synchronous_commit=on``) a returned ``apply`` has been flushed to the WAL.
* Migrations are numbered scripts in ``migrations/postgres`` applied under an advisory
  lock, recorded in ``schema_version``.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from importlib import resources
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import (ConfigurationError, Conflict, IntegrityError, InvalidInput,
                      StorageError)
from ._dialect import POSTGRES
from ._pg_rows import JSON_COLUMNS, RAW_COLUMNS, RAW_TABLES, canonical_json, sorted_json_loads
from ._reads import SQLReads
from .base import AuditOp, GovernanceOp, InsertVersion, LinkOp, PurgeOp, RowQuery, WriteOp
from .governance import run_write

try:  # optional dependency: memvault[postgres]
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.adapt import Loader
    from psycopg.pq import Format
    from psycopg.types.json import Jsonb, set_json_loads
    from psycopg_pool import ConnectionPool, PoolTimeout
    from pgvector.psycopg import register_vector
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]
    _IMPORT_ERROR: ImportError | None = _exc
else:
    _IMPORT_ERROR = None

__all__ = ["PostgresStore"]

# Advisory lock keys (bigint), one per purpose; scoped to the database by PostgreSQL.
_LOCK_MIGRATE = 0x6D656D7661756C01
_LOCK_AUDIT = 0x6D656D7661756C02
_LOCK_DDL = 0x6D656D7661756C03

_HNSW_MAX_DIM = 2000        # pgvector's limit for indexing the vector type


def _translate(exc: Exception, what: str) -> Exception:
    """psycopg / pool errors -> memvault errors (the caller raises ``from exc``)."""
    if _IMPORT_ERROR is None:
        if isinstance(exc, PoolTimeout):
            return StorageError(f"{what}: no database connection available ({exc})",
                                reason="unavailable")
        if isinstance(exc, pg_errors.IntegrityError):  # unique, foreign key, check
            return Conflict(f"{what}: {exc}")
        if isinstance(exc, (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)):
            return Conflict(f"{what}: concurrent writers collided, retry ({exc})")
        if isinstance(exc, (pg_errors.DataCorrupted, pg_errors.IndexCorrupted)):
            return IntegrityError(f"{what}: the database reports corruption ({exc})")
        if isinstance(exc, pg_errors.DiskFull):
            return StorageError(f"{what}: the disk is full ({exc})", reason="disk_full")
        if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.QueryCanceled)):
            return StorageError(f"{what}: timed out waiting ({exc})", reason="locked")
        if isinstance(exc, pg_errors.DataError):
            return InvalidInput(f"{what}: the database refused a value ({exc})")
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return ConfigurationError(f"{what}: permission denied ({exc})")
        if isinstance(exc, psycopg.OperationalError):
            return StorageError(f"{what}: the database is unreachable ({exc})",
                                reason="unavailable")
    return StorageError(f"{what}: {exc}")


class _NumpyVectorLoader(Loader if _IMPORT_ERROR is None else object):  # type: ignore[misc]
    """pgvector binary ``vector`` -> native float32 numpy row (no Python float list)."""

    format = Format.BINARY if _IMPORT_ERROR is None else None

    def load(self, data: Any) -> np.ndarray:
        return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)


class _NumpyVectorTextLoader(Loader if _IMPORT_ERROR is None else object):  # type: ignore[misc]
    format = Format.TEXT if _IMPORT_ERROR is None else None

    def load(self, data: Any) -> np.ndarray:
        text = bytes(data).decode()
        return np.array(text[1:-1].split(","), dtype=np.float32)


class PostgresStore(SQLReads):
    """``PostgresStore("postgresql://user:pw@host/db")``: creates or upgrades the schema.

    ``dim`` fixes the embedding dimension at open (otherwise the first embedding written
    does); ``hnsw_index=False`` leaves the pgvector index out (create it after a bulk load
    with :meth:`create_vector_index`). Reads shared with SQLite come from
    :class:`SQLReads` (``_reads.py``).
    """

    dialect = POSTGRES

    def __init__(self, dsn: str, *, pool_size: int = 4, dim: int | None = None,
                 hnsw_index: bool = True, hnsw_m: int = 16, hnsw_ef_construction: int = 64,
                 ef_search: int = 40, connect_timeout: float = 10.0,
                 pool_timeout: float = 30.0) -> None:
        if _IMPORT_ERROR is not None:
            raise ConfigurationError("PostgresStore needs psycopg[binary], psycopg-pool and "
                                     f"pgvector: pip install 'memvault[postgres]' ({_IMPORT_ERROR})")
        if pool_size < 1:
            raise InvalidInput("pool_size must be at least 1")
        self.dsn = dsn
        self.hnsw_index = hnsw_index
        self.hnsw_m, self.hnsw_ef_construction = int(hnsw_m), int(hnsw_ef_construction)
        self.ef_search = int(ef_search)
        self._connect_timeout = max(1, int(round(connect_timeout)))  # libpq: 0 = forever
        self._closed = False
        self._dim: int | None = None
        self._dim_lock = threading.Lock()
        self._df_lock = threading.Lock()
        self._df_cache: dict[str, tuple[tuple[str, ...], int]] = {}
        self._df_key: tuple[int, int, int] | None = None
        #: Lexical queries matching more rows than this drop their most common terms
        #: (the rule and limit of ``SQLiteStore``: both backends rank alike).
        self.max_lexical_matches = 5000
        self._migrate()
        self._pool = ConnectionPool(
            dsn, min_size=1, max_size=pool_size, open=False, timeout=pool_timeout,
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout},
            configure=self._configure, name="memvault")
        try:
            self._pool.open(wait=True, timeout=self._connect_timeout + 5)
        except Exception as exc:
            self._pool.close()
            raise _translate(exc, "connecting to PostgreSQL") from exc
        try:
            with self._conn("opening the store") as conn:
                self._dim = self._column_dim(conn)
                if dim is not None:
                    txn: dict[str, Any] = {}
                    with conn.transaction():
                        self._ensure_dim(conn, int(dim), txn)
                    self._committed(txn)
        except BaseException:
            self.close()
            raise

    # -- connections ---------------------------------------------------------------------
    @staticmethod
    def _configure(conn: Any) -> None:
        register_vector(conn)
        oid = conn.adapters.types["vector"].oid
        conn.adapters.register_loader(oid, _NumpyVectorLoader)
        conn.adapters.register_loader(oid, _NumpyVectorTextLoader)
        set_json_loads(sorted_json_loads, conn)

    @contextmanager
    def _conn(self, what: str) -> Iterator[Any]:
        """A pooled connection (autocommit: use ``conn.transaction()`` to group)."""
        if self._closed:
            raise StorageError("the store is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise _translate(exc, what) from exc

    # SQLReads reads and writes (autocommit: one statement, one transaction) through these
    _reader = _conn
    _writer = _conn

    def _migrate(self) -> None:
        scripts = sorted(
            (p for p in resources.files("memvault.storage.migrations.postgres").iterdir()
             if p.name.endswith(".sql")), key=lambda p: p.name)
        try:
            with psycopg.connect(self.dsn, autocommit=True,
                                 connect_timeout=self._connect_timeout) as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
                    conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                                 "version integer PRIMARY KEY, name text NOT NULL, "
                                 "applied_at timestamptz NOT NULL DEFAULT now())")
                    current = conn.execute(
                        "SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
                    if current > len(scripts):
                        raise StorageError(f"the database has schema version {current}; this "
                                           f"memvault knows up to {len(scripts)}: upgrade memvault")
                    for number, script in enumerate(scripts, start=1):
                        if number <= current:
                            continue
                        try:
                            conn.execute(script.read_text())
                        except pg_errors.InsufficientPrivilege as exc:
                            raise ConfigurationError(
                                f"migration {script.name} needs privileges this role lacks "
                                "(is the pgvector extension installed? a superuser must run "
                                f"'CREATE EXTENSION vector' in this database): {exc}") from exc
                        conn.execute("INSERT INTO schema_version(version, name) VALUES (%s, %s)",
                                     (number, script.name))
        except (ConfigurationError, StorageError):
            raise
        except psycopg.Error as exc:
            if isinstance(exc, pg_errors.UndefinedFile | pg_errors.FeatureNotSupported):
                raise ConfigurationError(f"pgvector is not available on this server: {exc}") from exc
            raise _translate(exc, "migrating the PostgreSQL schema") from exc

    # -- the vector column and its index -------------------------------------------------
    @staticmethod
    def _column_dim(conn: Any) -> int | None:
        mod = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = "
                           "'vectors'::regclass AND attname = 'embedding'").fetchone()[0]
        return int(mod) if mod is not None and mod > 0 else None

    def _ensure_dim(self, conn: Any, dim: int, txn: dict[str, Any]) -> None:
        """Inside a transaction: give ``vectors.embedding`` its dimension (once).

        ``txn`` carries what this transaction already did; ``self._dim`` is set only after
        the transaction commits (see :meth:`_committed`)."""
        known = self._dim or txn.get("dim")
        if known == dim:
            return
        if known is not None:
            raise InvalidInput(f"this store holds {known}-d embeddings, not {dim}-d")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_DDL,))
        current = self._column_dim(conn)
        if current is None:
            conn.execute(f"ALTER TABLE vectors ALTER COLUMN embedding TYPE vector({int(dim)})")
            if self.hnsw_index:
                self._create_index(conn, int(dim))
        elif current != dim:
            raise InvalidInput(f"this store holds {current}-d embeddings, not {dim}-d")
        txn["dim"] = dim

    def _committed(self, txn: dict[str, Any]) -> None:
        if txn.get("dim") and self._dim is None:
            with self._dim_lock:
                self._dim = txn["dim"]

    def _create_index(self, conn: Any, dim: int, m: int | None = None,
                      ef_construction: int | None = None) -> bool:
        if dim > _HNSW_MAX_DIM:
            return False
        conn.execute(
            "CREATE INDEX IF NOT EXISTS vectors_hnsw ON vectors USING hnsw "
            f"(embedding vector_cosine_ops) WITH (m = {int(m or self.hnsw_m)}, "
            f"ef_construction = {int(ef_construction or self.hnsw_ef_construction)})")
        return True

    def create_vector_index(self, *, m: int | None = None,
                            ef_construction: int | None = None) -> bool:
        """Build the HNSW index now (e.g. after a bulk load); False if it cannot exist."""
        with self._conn("building the vector index") as conn:
            dim = self._dim or self._column_dim(conn)
            if dim is None:
                raise InvalidInput("no embeddings yet: the vector dimension is unknown")
            return self._create_index(conn, dim, m, ef_construction)

    def drop_vector_index(self) -> None:
        with self._conn("dropping the vector index") as conn:
            conn.execute("DROP INDEX IF EXISTS vectors_hnsw")

    def has_vector_index(self) -> bool:
        with self._conn("reading the catalog") as conn:
            return conn.execute("SELECT to_regclass('vectors_hnsw') IS NOT NULL").fetchone()[0]

    # -- writes --------------------------------------------------------------------------
    def apply(self, ops: Sequence[WriteOp]) -> int:
        ops = list(ops)
        audited = any(isinstance(op, AuditOp) for op in ops)
        txn: dict[str, Any] = {}
        with self._conn("write") as conn:
            try:
                with conn.transaction():
                    if audited:  # commit order == seq order for the change feed
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_AUDIT,))
                    # Pipelined: statements whose results are not needed (new rows, audit,
                    # links) go out without waiting; reads (FOR UPDATE) flush the pipeline.
                    with conn.pipeline():
                        for op in ops:
                            self._apply_one(conn, op, txn)
                    # Under the audit lock nobody else writes audit rows: ours are newest.
                    last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM audit")
                               .fetchone()[0]) if audited else 0
            except pg_errors.UniqueViolation as exc:
                ids = [op.item.id for op in ops if isinstance(op, InsertVersion)]
                raise Conflict("write: a memory with that id and version already exists "
                               f"(created or updated concurrently?): {exc.diag.message_detail}",
                               ids=ids[:10]) from exc
        self._committed(txn)
        return last

    def _apply_one(self, conn: Any, op: WriteOp, txn: dict[str, Any]) -> None:
        if isinstance(op, InsertVersion):
            self._insert(conn, op, txn)
        elif isinstance(op, AuditOp):
            conn.execute("INSERT INTO audit(at, actor, action, item_id, version, details) "
                         "VALUES (%s, %s, %s, %s, %s, %s)",
                         (time.time(), op.actor, op.action, op.item_id, op.version,
                          Jsonb(op.details)))
        elif isinstance(op, LinkOp):
            if op.remove:
                conn.execute("DELETE FROM links WHERE src = %s AND dst = %s AND kind = %s",
                             (op.src, op.dst, op.kind))
            else:
                conn.execute("INSERT INTO links(src, dst, kind, weight, created_at) "
                             "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (src, dst, kind) "
                             "DO UPDATE SET weight = excluded.weight",
                             (op.src, op.dst, op.kind, op.weight, time.time()))
        elif isinstance(op, PurgeOp):
            hashes = [r[0] for r in conn.execute(
                "SELECT DISTINCT content_hash FROM versions WHERE id = %s", (op.item_id,))]
            conn.execute("DELETE FROM versions WHERE id = %s", (op.item_id,))
            conn.execute("DELETE FROM access WHERE id = %s", (op.item_id,))
            conn.execute("DELETE FROM links WHERE src = %s OR dst = %s",
                         (op.item_id, op.item_id))
            if hashes:
                conn.execute("DELETE FROM vectors x WHERE x.content_hash = ANY(%s::text[]) "
                             "AND NOT EXISTS (SELECT 1 FROM versions v "
                             "WHERE v.content_hash = x.content_hash)", (hashes,))
        elif isinstance(op, GovernanceOp):
            run_write(conn, "postgres", op.statement, op.params)
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown write op {op!r}")

    def _insert(self, conn: Any, op: InsertVersion, txn: dict[str, Any]) -> None:
        item = op.item
        if op.expected_version == 0 and op.search_text is not None:
            # A new memory: nothing to read or lock. If the id exists after all, the
            # unique indexes (one open version; (id, version)) raise, and apply turns
            # that into Conflict with the whole batch rolled back.
            row, search_text = None, op.search_text
        else:
            row = conn.execute("SELECT version, search_text, content_hash FROM versions "
                               "WHERE id = %s AND valid_to IS NULL FOR UPDATE",
                               (item.id,)).fetchone()
            current = row[0] if row else 0
            if row is None and op.expected_version != 0:
                # Either no such memory, or a concurrent writer closed the version we
                # waited for: report what is there now.
                current = conn.execute("SELECT coalesce(max(version), 0) FROM versions "
                                       "WHERE id = %s", (item.id,)).fetchone()[0]
            search_text = op.search_text
            if search_text is None:  # same content (status change): keep its context
                search_text = row[1] if row and row[2] == op.content_hash else item.text
            if current != op.expected_version or (row is None and current != 0):
                raise Conflict(f"memory {item.id} is at version {current}, not "
                               f"{op.expected_version}: it changed under you; re-read and "
                               "retry", id=item.id)
        valid_from = item.valid_from.timestamp()  # type: ignore[union-attr]
        if row:
            conn.execute("UPDATE versions SET valid_to = %s WHERE id = %s AND valid_to IS NULL",
                         (valid_from, item.id))
        if op.embedding is not None:
            vec = np.ascontiguousarray(op.embedding, dtype=np.float32).reshape(-1)
            self._ensure_dim(conn, int(vec.shape[0]), txn)
            conn.execute("INSERT INTO vectors(content_hash, dim, embedding) VALUES (%s, %s, %s) "
                         "ON CONFLICT (content_hash) DO NOTHING",
                         (op.content_hash, int(vec.shape[0]), vec))
        elif conn.execute("SELECT 1 FROM vectors WHERE content_hash = %s",
                          (op.content_hash,)).fetchone() is None:
            raise IntegrityError(f"no stored embedding for content {op.content_hash}")
        ts = lambda d: None if d is None else d.timestamp()  # noqa: E731
        conn.execute(
            "INSERT INTO versions(id, version, text, search_text, kind, user_id, agent_id, "
            "session_id, cube_id, metadata, provenance, tags, created_at, event_time, "
            "valid_from, valid_to, status, importance, expires_at, content_hash, valid_at, "
            "invalid_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,NULL,%s,%s,%s,%s,"
            "%s,%s)",
            (item.id, item.version, item.text, search_text, item.kind, item.user_id,
             item.agent_id, item.session_id, item.cube_id, Jsonb(item.metadata),
             Jsonb(item.provenance), Jsonb(list(item.tags)), ts(item.created_at),
             ts(item.event_time), valid_from, item.status, item.importance,
             ts(item.expires_at), op.content_hash, ts(item.valid_at or item.valid_from),
             ts(item.invalid_at)))

    def touch(self, counts: dict[str, tuple[int, float]]) -> None:
        if not counts:
            return
        # Sorted ids: two processes touching overlapping sets lock rows in the same order.
        rows = [(i, n, at, i) for i, (n, at) in sorted(counts.items())]
        with self._conn("recording access") as conn:
            with conn.transaction():
                conn.cursor().executemany(
                    "INSERT INTO access(id, count, last_at) SELECT %s, %s, %s WHERE EXISTS "
                    "(SELECT 1 FROM versions WHERE id = %s) ON CONFLICT (id) DO UPDATE SET "
                    "count = access.count + excluded.count, "
                    "last_at = greatest(coalesce(access.last_at, 0), excluded.last_at)", rows)

    # -- reads of PostgreSQL's own (the shared ones are in _reads.py) -------------------
    def lexical(self, terms: Sequence[str], query: RowQuery, k: int) -> list[tuple[int, float]]:
        """BM25 over the english-stemmed tsvector; any term may match (OR).

        Each term becomes ``phraseto_tsquery('english', %s)`` (bound, never spliced into
        the SQL), as FTS5 treats each quoted term as a phrase; a term's frequency in a row
        is that of its rarest lexeme, read from the stored ``tf`` map. IDF counts every
        stored version, as FTS5 does; terms that stem to nothing (stop words) are dropped.
        """
        terms = list(dict.fromkeys(t for t in terms if isinstance(t, str) and t.strip()))
        if not terms or k <= 0:
            return []
        where, where_params = self._where(query)
        with self._conn("lexical search") as conn:
            mark, docs, tokens = conn.execute(
                "SELECT (SELECT coalesce(max(seq), 0) FROM audit), coalesce(sum(docs), 0), "
                "coalesce(sum(tokens), 0) FROM lexical_stats").fetchone()
            stats = self._term_stats(conn, terms, (int(mark), int(docs), int(tokens)))
            kept = [(t, *stats[t]) for t in terms if stats[t][0]]
            if not kept:
                return []
            kept = self._prune_common(conn, kept)
            docs = int(docs)
            avgdl = max(int(tokens) / docs if docs else 1.0, 1e-9)
            freq, score, params_tf, params_idf = [], [], [], []
            for i, (_term, lexemes, n) in enumerate(kept):
                parts = ["coalesce((v.tf ->> %s)::float8, 0)"] * len(lexemes)
                freq.append((f"least({', '.join(parts)})" if len(parts) > 1 else parts[0])
                            + f" AS f{i}")
                params_tf += list(lexemes)
                idf = math.log((docs - n + 0.5) / (n + 0.5)) if docs else 0.0
                score.append(f"%s * f.f{i} / (f.f{i} + kd.kd)")
                params_idf.append(idf if idf > 0 else 1e-6)
            match = " || ".join(["phraseto_tsquery('english'::regconfig, %s)"] * len(kept))
            sql = (f"SELECT v.seq, 2.2 * ({' + '.join(score)}) AS score FROM versions v "
                   f"CROSS JOIN LATERAL (SELECT {', '.join(freq)}) f "
                   "CROSS JOIN LATERAL (SELECT 1.2 * (0.25 + 0.75 * v.doc_len / %s) AS kd) kd "
                   f"WHERE v.search_tsv @@ ({match}) AND {where} "
                   "ORDER BY score DESC, v.seq LIMIT %s")
            params = [*params_idf, *params_tf, avgdl, *[t for t, _, _ in kept],
                      *where_params, k]
            # unprepared: a generic plan of this statement may not use the GIN index
            return [(int(s), float(x)) for s, x in conn.execute(sql, params, prepare=False)]

    def _prune_common(self, conn: Any, kept: list[tuple[str, tuple[str, ...], int]]
                      ) -> list[tuple[str, tuple[str, ...], int]]:
        """``kept`` without its most common terms if the query would match more than
        ``max_lexical_matches`` rows: BM25 in SQL costs time per matching row, and terms
        that frequent carry little IDF weight. The same rule as SQLite's
        ``_prune_common_terms`` (union count first, then drop by document frequency until
        the sum fits or one term is left), so the backends keep ranking alike."""
        limit = self.max_lexical_matches
        if len(kept) < 2 or sum(n for _, _, n in kept) <= limit:
            return kept  # the union is at most the sum: no count needed
        match = " || ".join(["phraseto_tsquery('english'::regconfig, %s)"] * len(kept))
        union = conn.execute(f"SELECT count(*) FROM versions v WHERE v.search_tsv @@ ({match})",
                             [t for t, _, _ in kept]).fetchone()[0]
        if union <= limit:
            return kept
        order = sorted(kept, key=lambda e: e[2])
        while len(order) > 1 and sum(n for _, _, n in order) > limit:
            order.pop()
        return [e for e in kept if e in order]

    def _term_stats(self, conn: Any, terms: Sequence[str],
                    key: tuple[int, int, int]) -> dict[str, tuple[tuple[str, ...], int]]:
        """term -> (its lexemes, rows containing it). Document frequencies cost a GIN scan
        each, so they are cached until the store changes (audit mark, row and token
        counts all equal), which keeps them exact."""
        with self._df_lock:
            if key != self._df_key:
                self._df_cache, self._df_key = {}, key
            out = {t: self._df_cache[t] for t in terms if t in self._df_cache}
        missing = [t for t in terms if t not in out]
        if missing:
            rows = conn.execute(
                "SELECT t.term, tsvector_to_array(to_tsvector('english'::regconfig, t.term)), "
                "(SELECT count(*) FROM versions v WHERE v.search_tsv @@ "
                " phraseto_tsquery('english'::regconfig, t.term)) "
                "FROM unnest(%s::text[]) AS t(term)", (missing,)).fetchall()
            fresh = {term: (tuple(lex or ()), int(n)) for term, lex, n in rows}
            with self._df_lock:
                if key == self._df_key and len(self._df_cache) < 10_000:
                    self._df_cache.update(fresh)
            out.update(fresh)
        return out

    def vector_search(self, qvec: np.ndarray, query: RowQuery, k: int, *,
                      ef_search: int | None = None) -> list[tuple[int, float]]:
        """Best ``k`` (seq, cosine) among rows matching ``query``, from pgvector's HNSW.

        Filters are applied during the graph walk (``hnsw.iterative_scan``), so a
        selective filter still returns ``k`` rows when they exist. Approximate, like the
        faiss index; without the HNSW index PostgreSQL scans exactly.
        """
        if k <= 0:
            return []
        vec = np.ascontiguousarray(qvec, dtype=np.float32).reshape(-1)
        sql, params = self._vector_sql(query)
        ef = str(int(ef_search or max(self.ef_search, k)))
        with self._conn("vector search") as conn:
            # Session settings, re-sent with every search (every vector_search sets them,
            # nothing else reads them); pipelined with the query: one round trip.
            with conn.pipeline():
                conn.execute("SELECT set_config('hnsw.ef_search', %s, false), "
                             "set_config('hnsw.iterative_scan', 'relaxed_order', false)", (ef,))
                cur = conn.execute(sql, [vec, *params, vec, k])
            rows = cur.fetchall()
        return [(int(s), float(score)) for s, score in rows]

    def dense_source(self, ef_search: int) -> Any:
        """Dense candidates from pgvector for the Searcher (instead of a faiss index
        built in every app process): see :mod:`memvault.storage.pg_search`."""
        from .pg_search import PgDense

        return PgDense(self, ef_search)

    def _vector_sql(self, query: RowQuery) -> tuple[str, list[Any]]:
        """The k-NN statement; parameters are ``[query vector, *params, k]``. The inner
        ORDER BY/LIMIT is what lets the planner walk the HNSW index; the outer sort fixes
        the slight disorder of ``relaxed_order`` iterative scans."""
        where, params = self._where(query)
        return ("WITH hits AS MATERIALIZED (SELECT v.seq, x.embedding <=> %b::vector AS d "
                "FROM vectors x JOIN versions v ON v.content_hash = x.content_hash "
                f"WHERE {where} ORDER BY x.embedding <=> %b::vector LIMIT %s) "
                "SELECT seq, 1 - d FROM hits ORDER BY d, seq"), params

    def durability(self) -> dict[str, Any]:
        """The server's durability settings as this store's sessions see them. Durability
        is the server's (module docstring): a server run with ``fsync=off`` or
        ``synchronous_commit=off`` acknowledges commits that a power loss can take back."""
        names = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        with self._conn("reading durability settings") as conn:
            got = {n: str(conn.execute(f"SHOW {n}").fetchone()[0]).lower() for n in names}
        return {"backend": "postgres", **got,
                "fsync_per_commit": got["fsync"] == "on" and got["synchronous_commit"] in (
                    "on", "remote_write", "remote_apply", "local")}

    def check(self) -> dict[str, Any]:
        """The server's view plus memvault's invariants; never raises on findings."""
        report: dict[str, Any] = {}
        with self._conn("checking integrity") as conn:
            one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
            report["postgres"] = one("SHOW server_version")
            report["pgvector"] = one("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            report["schema_version"] = one("SELECT max(version) FROM schema_version")
            report["invalid_indexes"] = [r[0] for r in conn.execute(
                "SELECT i.indexrelid::regclass::text FROM pg_index i "
                "WHERE i.indrelid IN ('versions'::regclass, 'vectors'::regclass, "
                "'links'::regclass, 'audit'::regclass, 'access'::regclass, 'meta'::regclass) "
                "AND NOT (i.indisvalid AND i.indisready)")]
            report["open_versions_without_history"] = one(
                "SELECT count(*) FROM versions v WHERE v.version > 1 AND NOT EXISTS (SELECT 1 "
                "FROM versions p WHERE p.id = v.id AND p.version = v.version - 1)")
            report["multiple_open_versions"] = one(
                "SELECT count(*) FROM (SELECT id FROM versions WHERE valid_to IS NULL "
                "GROUP BY id HAVING count(*) > 1) s")
            report["bad_vectors"] = one(
                "SELECT count(*) FROM vectors WHERE vector_dims(embedding) != dim")
            report["fts_stale"] = one(
                "SELECT count(*) FROM versions WHERE search_tsv IS DISTINCT FROM "
                "memvault_tsv(search_text, tags)")
            docs, tokens = conn.execute("SELECT coalesce(sum(docs), 0), coalesce(sum(tokens), 0) "
                                        "FROM lexical_stats").fetchone()
            real_docs, real_tokens = conn.execute(
                "SELECT count(*), coalesce(sum(doc_len), 0) FROM versions").fetchone()
            report["lexical_stats"] = ("ok" if (docs, tokens) == (real_docs, real_tokens) else
                                       f"counters say {docs} rows / {tokens} tokens, table has "
                                       f"{real_docs} / {real_tokens}")
            report["vector_index"] = one("SELECT to_regclass('vectors_hnsw') IS NOT NULL")
            report["versions"] = int(real_docs)
        report["ok"] = (not report["invalid_indexes"] and report["bad_vectors"] == 0
                        and report["open_versions_without_history"] == 0
                        and report["multiple_open_versions"] == 0 and report["fts_stale"] == 0
                        and report["lexical_stats"] == "ok")
        return report

    # -- raw copy (migrate.py) -----------------------------------------------------------
    def export_raw(self, batch: int = 2000,
                   tables: Sequence[str] = RAW_TABLES) -> Iterator[tuple[str, list[tuple]]]:
        """Every row of ``tables`` in the raw layout of ``_pg_rows.RAW_COLUMNS``, from one
        consistent snapshot (REPEATABLE READ, READ ONLY), in chunks of ``batch`` rows."""
        order = {"meta": "key", "vectors": "content_hash", "versions": "seq",
                 "links": "src, dst, kind", "access": "id", "audit": "seq"}
        with self._conn("exporting rows") as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                for table in tables:
                    cols = RAW_COLUMNS[table]
                    json_idx = [cols.index(c) for c in JSON_COLUMNS.get(table, ())]
                    emb_idx = cols.index("embedding") if table == "vectors" else None
                    with conn.cursor(name=f"memvault_export_{table}", binary=True) as cur:
                        cur.execute(f"SELECT {', '.join(cols)} FROM {table} "
                                    f"ORDER BY {order[table]}")
                        while True:
                            rows = cur.fetchmany(batch)
                            if not rows:
                                break
                            if json_idx or emb_idx is not None:
                                rows = [_raw_out(r, json_idx, emb_idx) for r in rows]
                            yield table, rows

    def import_raw(self, chunks: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> dict[str, int]:
        """Load raw rows (the layout of :meth:`export_raw`) into this empty store, in one
        transaction, keeping every seq; returns rows written per table."""
        counts = {t: 0 for t in RAW_TABLES}
        txn: dict[str, Any] = {}
        with self._conn("importing rows") as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_AUDIT,))
                busy = conn.execute(
                    "SELECT (SELECT count(*) FROM versions) + (SELECT count(*) FROM audit) + "
                    "(SELECT count(*) FROM links) + (SELECT count(*) FROM access)").fetchone()[0]
                if busy:
                    raise Conflict("the destination store is not empty")
                for table, rows in chunks:
                    if not rows:
                        continue
                    if table == "meta":
                        conn.cursor().executemany(
                            "INSERT INTO meta(key, value) VALUES (%s, %s) ON CONFLICT (key) "
                            "DO UPDATE SET value = excluded.value", [tuple(r) for r in rows])
                    elif table == "vectors":
                        self._ensure_dim(conn, int(rows[0][1]), txn)
                        with conn.cursor().copy("COPY vectors (content_hash, dim, embedding) "
                                                "FROM STDIN (FORMAT BINARY)") as cp:
                            cp.set_types(["text", "int4", "vector"])
                            for h, dim, emb in rows:
                                cp.write_row((h, dim, np.frombuffer(emb, dtype="<f4")))
                    elif table in RAW_COLUMNS:
                        cols = RAW_COLUMNS[table]
                        with conn.cursor().copy(f"COPY {table} ({', '.join(cols)}) "
                                                "FROM STDIN") as cp:
                            for r in rows:
                                cp.write_row(r)
                    else:
                        raise InvalidInput(f"unknown table {table!r} in raw rows")
                    counts[table] += len(rows)
                for table in ("versions", "audit"):
                    conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "
                                 f"coalesce((SELECT max(seq) FROM {table}), 0) + 1, false)")
        self._committed(txn)
        return counts

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()


def _raw_out(row: Sequence[Any], json_idx: Sequence[int], emb_idx: int | None) -> tuple:
    out = list(row)
    for i in json_idx:
        out[i] = canonical_json(out[i])
    if emb_idx is not None:
        out[emb_idx] = np.ascontiguousarray(out[emb_idx], dtype="<f4").tobytes()
    return tuple(out)
