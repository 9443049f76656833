"""Dense candidates from inside PostgreSQL, so a vault on PostgreSQL holds no index.

On SQLite the Searcher keeps a faiss index of every current memory in process memory,
built from the store at open and kept in step by the change feed. On PostgreSQL that
would make every app process hold, and at start rebuild, a copy of the whole index: the
scale-out story would stop at one host's RAM and every process start would read every
vector. :class:`PgDense` asks pgvector's HNSW index instead (the lexical side already
runs in SQL: ``PostgresStore.lexical``), so app processes share one index, start without
reading any vector, and see each other's writes as soon as they commit.

What it gives the Searcher is the same as the faiss path: (seq, cosine) candidates for
one or more query vectors under a ``RowQuery``'s filters, and the speaker names the voice
cue needs. Fusion, link expansion and the boosts stay in Python, unchanged.

One difference remains: the faiss index also holds a vector per sentence of a chat turn
(``SearchConfig.part_kinds``, derived state embedded when the index takes a memory in).
Those are not stored in PostgreSQL yet, so on PostgreSQL a turn scores by its whole-text
vector only (``report["part_vectors"]`` says so).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .base import RowQuery

if TYPE_CHECKING:  # pragma: no cover
    from .postgres import PostgresStore

__all__ = ["PgDense", "SPEAKER_SQL"]

#: The speaker's name as ``retrieval.context.name_of`` reads it: the name the write path
#: recorded (``provenance.speaker_name``), else ``metadata.speaker``, stripped.
SPEAKER_SQL = ("coalesce(nullif(btrim(v.provenance ->> 'speaker_name', E' \\t\\n\\r'), ''), "
               "nullif(btrim(v.metadata ->> 'speaker', E' \\t\\n\\r'), ''))")

#: Query vectors in one round trip at most (a search sends 1-3: text, voice, time window).
_MAX_BATCH = 16


class PgDense:
    """Dense retrieval and speaker lookups for a Searcher over a :class:`PostgresStore`.

    ``ef_search`` is the HNSW search breadth per query (at least ``n``): the vault's
    ``SearchConfig.ef_search`` (the in-process faiss graph, built with other parameters,
    has its own ``index_ef_search``).
    """

    in_database = True

    def __init__(self, store: PostgresStore, ef_search: int) -> None:
        self.store = store
        self.ef_search = max(1, int(ef_search))
        self._lock = threading.Lock()
        self._speakers: set[str] | None = None  # every speaker name seen, loaded lazily
        self._speakers_mark = 0

    def search_many(self, qvecs: Sequence[np.ndarray], query: RowQuery,
                    n: int) -> list[list[tuple[int, float]]]:
        """Top ``n`` (seq, cosine) per query vector among the rows ``query`` selects:
        pgvector's HNSW walk with the filters applied during the walk (iterative scan),
        all vectors pipelined on one connection (one round trip)."""
        if n <= 0 or not qvecs:
            return [[] for _ in qvecs]
        out: list[list[tuple[int, float]]] = []
        sql, params = self.store._vector_sql(query)
        ef = str(max(self.ef_search, n))
        for start in range(0, len(qvecs), _MAX_BATCH):
            block = [np.ascontiguousarray(q, dtype=np.float32).reshape(-1)
                     for q in qvecs[start:start + _MAX_BATCH]]
            with self.store._conn("vector search") as conn:
                with conn.pipeline():
                    conn.execute("SELECT set_config('hnsw.ef_search', %s, false), "
                                 "set_config('hnsw.iterative_scan', 'relaxed_order', false)",
                                 (ef,))
                    # never a prepared statement: its generic plan (after five runs) may
                    # sort the whole table instead of walking the HNSW index
                    curs = [conn.execute(sql, [vec, *params, vec, n], prepare=False)
                            for vec in block]
                out += [[(int(s), float(x)) for s, x in cur.fetchall()] for cur in curs]
        return out

    def known_speakers(self) -> list[str]:
        """Every speaker name of a current memory the process has heard of: read once
        (one DISTINCT over the current rows, on the first search that needs it), then
        kept up to date from the change feed. A name may outlive its memories: callers
        narrow it to a scope with :meth:`speakers_in`, which asks the database."""
        with self._lock:
            mark = self.store.last_change()
            if self._speakers is None:
                with self.store._conn("reading speakers") as conn:
                    names = conn.execute(
                        f"SELECT DISTINCT {SPEAKER_SQL} FROM versions v WHERE "
                        "v.valid_to IS NULL AND v.status = 'active'").fetchall()
                self._speakers = {r[0] for r in names if r[0]}
            elif mark != self._speakers_mark:
                _, ids = self.store.changes(self._speakers_mark)
                for start in range(0, len(ids), 1000):
                    block = ids[start:start + 1000]
                    with self.store._conn("reading speakers") as conn:
                        rows = conn.execute(
                            f"SELECT DISTINCT {SPEAKER_SQL} FROM versions v WHERE "
                            "v.id = ANY(%s) AND v.valid_to IS NULL", (block,)).fetchall()
                    self._speakers.update(r[0] for r in rows if r[0])
            self._speakers_mark = mark
            return sorted(self._speakers)

    def speakers_in(self, names: Sequence[str], query: RowQuery) -> list[str]:
        """Those of ``names`` that speak in a memory ``query`` selects (its scope)."""
        if not names:
            return []
        where, params = self.store._where(RowQuery(scope=dict(query.scope)))
        with self.store._conn("reading speakers") as conn:
            rows = conn.execute(
                f"SELECT DISTINCT s.name FROM unnest(%s::text[]) AS s(name) WHERE EXISTS "
                f"(SELECT 1 FROM versions v WHERE {where} AND {SPEAKER_SQL} = s.name)",
                [list(names), *params]).fetchall()
        return sorted(r[0] for r in rows)

    def count(self) -> int:
        """Current active memories with a vector: what the index holds (``Vault.check``)."""
        with self.store._conn("counting indexed memories") as conn:
            return int(conn.execute(
                "SELECT count(*) FROM versions v WHERE v.valid_to IS NULL AND "
                "v.status = 'active' AND EXISTS (SELECT 1 FROM vectors x WHERE "
                "x.content_hash = v.content_hash)").fetchone()[0])

    def describe(self) -> dict[str, Any]:
        """What the Searcher reports about its dense side instead of an index snapshot."""
        return {"index": "in database (pgvector HNSW)", "replayed": 0,
                "indexed_in_process": 0, "ef_search": self.ef_search,
                "part_vectors": "not stored in PostgreSQL: whole-memory vectors only"}
