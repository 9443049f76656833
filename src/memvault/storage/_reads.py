"""The record-store reads both SQL stores share, written once over a :class:`Dialect`.

A store mixes in :class:`SQLReads`, names its dialect and provides two context
managers that yield a DB-API style connection (``conn.execute(sql, params)`` returning
a cursor) and translate driver errors into memvault errors:

* ``_reader(what)``: a connection to read with;
* ``_writer(what)``: a connection whose statements commit when the block ends.

What really differs between the stores stays in them: writes, migrations, lexical and
vector search, ``check``, raw import/export and connection handling.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Sequence

if TYPE_CHECKING:  # numpy is imported where vectors are handled: a by-id read needs none
    import numpy as np

from .._time import from_epoch
from ..types import AuditEvent
from ._dialect import Dialect, Fragment, where_clause
from ._rows import COLUMNS, ORDER, row_to_item
from .base import RowQuery, StoredRow, StoreReads
from .governance import run_read

__all__ = ["SQLReads"]


class SQLReads(StoreReads):
    dialect: ClassVar[Dialect]

    def _reader(self, what: str) -> AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def _writer(self, what: str) -> AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def _where(self, query: RowQuery) -> Fragment:
        return where_clause(query, self.dialect)

    # -- memories ------------------------------------------------------------------------
    def select(self, query: RowQuery) -> list[StoredRow]:
        d = self.dialect
        where, params = self._where(query)
        sql = (f"SELECT {COLUMNS} FROM versions v LEFT JOIN access a ON a.id = v.id "
               f"WHERE {where} ORDER BY {ORDER[query.order]}")
        if query.limit is not None:
            sql += f" LIMIT {d.ph} OFFSET {d.ph}"
            params += [query.limit, query.offset]
        with self._reader("reading memories") as conn:
            rows = conn.execute(sql, params).fetchall()
            links = self._links(conn, {r[1] for r in rows}) if rows else {}
        return [StoredRow(seq=r[0], item=row_to_item(r, links.get(r[1], ()), d.json),
                          content_hash=r[19]) for r in rows]

    def count(self, query: RowQuery) -> int:
        where, params = self._where(query)
        with self._reader("counting memories") as conn:
            return int(conn.execute(f"SELECT count(*) FROM versions v WHERE {where}",
                                    params).fetchone()[0])

    def seqs(self, query: RowQuery) -> list[int]:
        where, params = self._where(query)
        with self._reader("filtering memories") as conn:
            return [r[0] for r in conn.execute(f"SELECT v.seq FROM versions v WHERE {where}",
                                               params)]

    def embeddings(self, seqs: Sequence[int]) -> dict[int, np.ndarray]:
        d = self.dialect
        cond, params = d.in_list("v.seq", seqs, "bigint")
        with self._reader("reading embeddings") as conn:
            cur = d.vector_cursor(conn)
            cur.execute("SELECT v.seq, x.embedding FROM versions v JOIN vectors x "
                        f"USING (content_hash) WHERE {cond}", params)
            return {int(seq): d.embedding(vec) for seq, vec in cur}

    def scan_current(self, batch: int = 4096) -> Iterator[list[tuple[StoredRow, np.ndarray]]]:
        d, p = self.dialect, self.dialect.ph
        last = 0
        while True:  # keyset paging: one short read per batch, never a long-held snapshot
            with self._reader("scanning memories") as conn:
                cur = d.vector_cursor(conn)
                cur.execute(
                    f"SELECT {COLUMNS}, x.embedding FROM versions v "
                    "LEFT JOIN access a ON a.id = v.id JOIN vectors x USING (content_hash) "
                    f"WHERE v.valid_to IS NULL AND v.status = 'active' AND v.seq > {p} "
                    f"ORDER BY v.seq LIMIT {p}", (last, batch))
                chunk = cur.fetchall()
            if not chunk:
                return
            last = chunk[-1][0]
            yield [(StoredRow(r[0], row_to_item(r, (), d.json), r[19]), d.embedding(r[24]))
                   for r in chunk]

    # -- links ---------------------------------------------------------------------------
    def _links(self, conn: Any, ids: set[str]) -> dict[str, list[tuple]]:
        """Outgoing links of ``ids``, strongest first (ties in a fixed order)."""
        cond, params = self.dialect.in_list("src", list(ids), "text")
        out: dict[str, list[tuple]] = {}
        for src, dst, kind, weight in conn.execute(
                f"SELECT src, dst, kind, weight FROM links WHERE {cond} "
                "ORDER BY weight DESC, dst, kind", params):
            out.setdefault(src, []).append((dst, kind, weight))
        return out

    def links(self, ids: Sequence[str], skip: Sequence[str] = ()) -> list[tuple[str, str]]:
        """(src, dst) of every link touching ``ids``, in either direction, except links
        of the kinds in ``skip``."""
        d, ids = self.dialect, list(ids)
        by_src, p_src = d.in_list("src", ids, "text")
        by_dst, p_dst = d.in_list("dst", ids, "text")
        kinds, p_kind = d.in_list("kind", list(skip), "text") if skip else ("", [])
        keep = f" AND NOT ({kinds})" if skip else ""
        with self._reader("reading links") as conn:
            return [(r[0], r[1]) for r in conn.execute(
                f"SELECT src, dst FROM links WHERE {by_src}{keep} "
                f"UNION SELECT src, dst FROM links WHERE {by_dst}{keep}",
                p_src + p_kind + p_dst + p_kind)]

    # -- the change feed and the audit log -----------------------------------------------
    def changes(self, after: int) -> tuple[int, list[str]]:
        with self._reader("reading the change log") as conn:
            rows = conn.execute(f"SELECT seq, item_id FROM audit WHERE seq > {self.dialect.ph} "
                                "ORDER BY seq", (after,)).fetchall()
        if not rows:
            return after, []
        return int(rows[-1][0]), list(dict.fromkeys(r[1] for r in rows if r[1] is not None))

    def last_change(self) -> int:
        with self._reader("reading the change log") as conn:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM audit").fetchone()[0])

    def audit_events(self, *, item_id: str | None = None, action: str | None = None,
                     after: int = 0, limit: int = 100) -> list[AuditEvent]:
        d, p = self.dialect, self.dialect.ph
        sql = ("SELECT seq, at, actor, action, item_id, version, details FROM audit "
               f"WHERE seq > {p}")
        params: list[Any] = [after]
        if item_id is not None:
            sql += f" AND item_id = {p}"
            params.append(item_id)
        if action is not None:
            sql += f" AND action = {p}"
            params.append(action)
        sql += f" ORDER BY seq LIMIT {p}"
        params.append(limit)
        with self._reader("reading the audit log") as conn:
            return [AuditEvent(seq=r[0], at=from_epoch(r[1]), actor=r[2], action=r[3],  # type: ignore[arg-type]
                               item_id=r[4], version=r[5], details=d.json(r[6]))
                    for r in conn.execute(sql, params)]

    # -- governance (keys, principals, teams, grants) -------------------------------------
    def governance(self, query: str, params: dict[str, Any]) -> list[tuple]:
        with self._reader("reading governance state") as conn:
            return run_read(conn, self.dialect.name, query, params)

    # -- store metadata ------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        with self._reader("reading metadata") as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, key: str, value: str, *, only_if_absent: bool = False) -> None:
        p = self.dialect.ph
        conflict = "DO NOTHING" if only_if_absent else "DO UPDATE SET value = excluded.value"
        with self._writer("writing metadata") as conn:
            conn.execute(f"INSERT INTO meta(key, value) VALUES ({p}, {p}) "
                         f"ON CONFLICT (key) {conflict}", (key, value))
