"""The few ways SQLite and PostgreSQL SQL differ for memvault's reads, in one place.

Both record stores read the same tables with the same queries (see ``_reads.py``); only
these details change between them: the placeholder, how a list of values is bound, how
tags and metadata are matched, and which column values the driver hands back still
encoded (SQLite gives JSON as text and embeddings as bytes; psycopg decodes jsonb itself
and turns pgvector's binary ``vector`` into numpy through the loaders postgres.py
registers).

Safety: every function here returns a fixed SQL fragment (only column names chosen by
memvault's own code are spliced in) plus the values to bind for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence


from ..errors import InvalidInput
from ..types import SCOPE_FIELDS
from .base import RowQuery

if TYPE_CHECKING:  # numpy is imported where vectors are handled: a by-id read needs none
    import numpy as np

__all__ = ["Dialect", "Fragment", "SQLITE", "POSTGRES", "where_clause"]

#: A SQL fragment and the values bound by its placeholders, in order.
Fragment = tuple[str, list[Any]]


def _identity(value: Any) -> Any:
    return value


def _as_type(values: Sequence[Any], sql_type: str) -> list[Any]:
    return [int(v) for v in values] if sql_type == "bigint" else list(values)


@dataclass(frozen=True)
class Dialect:
    """What one database needs to run the shared reads."""

    name: str
    #: The parameter placeholder (``?`` or ``%s``).
    ph: str
    #: ``in_list(column, values, sql_type)``: "column is one of values", values bound as
    #: one parameter (``sql_type`` is ``text`` or ``bigint``).
    in_list: Callable[[str, Sequence[Any], str], Fragment]
    #: ``tags_any(tags)``: the row's tags share at least one of ``tags``.
    tags_any: Callable[[Sequence[str]], Fragment]
    #: ``metadata_eq(dotted_key, value)``: metadata at that path equals the JSON scalar
    #: ``value`` with its JSON type (``1`` never matches ``true``); None: missing or null.
    metadata_eq: Callable[[str, Any], Fragment]
    #: A JSON column value as the driver returns it -> the Python value.
    json: Callable[[Any], Any]
    #: An embedding column value as the driver returns it -> float32 numpy vector.
    embedding: Callable[[Any], np.ndarray]
    #: A cursor for rows with embeddings (psycopg: binary, so vectors skip text parsing).
    vector_cursor: Callable[[Any], Any]


# -- SQLite: lists travel as JSON text and are unpacked with json_each ---------------------
def _sqlite_in_list(column: str, values: Sequence[Any], sql_type: str) -> Fragment:
    return (f"{column} IN (SELECT value FROM json_each(?))",
            [json.dumps(_as_type(values, sql_type))])


def _sqlite_tags_any(tags: Sequence[str]) -> Fragment:
    return ("EXISTS (SELECT 1 FROM json_each(v.tags) t WHERE t.value IN "
            "(SELECT value FROM json_each(?)))", [json.dumps(list(tags))])


def _sqlite_metadata_eq(key: str, value: Any) -> Fragment:
    path = "$." + ".".join(f'"{p}"' for p in key.split("."))
    if value is None:
        return "json_extract(v.metadata, ?) IS NULL", [path]
    if isinstance(value, bool):
        return "json_type(v.metadata, ?) = ?", [path, "true" if value else "false"]
    # json_extract gives 1 for JSON true: compare the JSON type too
    types = "('text')" if isinstance(value, str) else "('integer', 'real')"
    return (f"json_type(v.metadata, ?) IN {types} AND json_extract(v.metadata, ?) = ?",
            [path, path, value])


def _float32(blob: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(blob, dtype="<f4")


SQLITE = Dialect(
    name="sqlite", ph="?", in_list=_sqlite_in_list, tags_any=_sqlite_tags_any,
    metadata_eq=_sqlite_metadata_eq, json=json.loads,
    embedding=_float32,
    vector_cursor=lambda conn: conn.cursor())


# -- PostgreSQL: lists are arrays; jsonb operators (GIN-indexable) ------------------------
_PG_ARRAYS = {"text": "text[]", "bigint": "bigint[]"}  # the only types spliced in


def _pg_in_list(column: str, values: Sequence[Any], sql_type: str) -> Fragment:
    return f"{column} = ANY(%s::{_PG_ARRAYS[sql_type]})", [_as_type(values, sql_type)]


def _pg_tags_any(tags: Sequence[str]) -> Fragment:
    return "v.tags ?| %s::text[]", [list(tags)]


def _pg_metadata_eq(key: str, value: Any) -> Fragment:
    path = key.split(".")
    if value is None:  # SQLite's json_extract(...) IS NULL: missing or JSON null
        return "coalesce(jsonb_typeof(v.metadata #> %s::text[]), 'null') = 'null'", [path]
    nested: Any = value  # containment on the nested object: a scalar's equality
    for p in reversed(path):
        nested = {p: nested}
    return "v.metadata @> %s::jsonb", [json.dumps(nested)]


POSTGRES = Dialect(
    name="postgres", ph="%s", in_list=_pg_in_list, tags_any=_pg_tags_any,
    metadata_eq=_pg_metadata_eq, json=_identity, embedding=_identity,
    vector_cursor=lambda conn: conn.cursor(binary=True))


# -- the one WHERE clause ------------------------------------------------------------------
_TIME_BOUNDS = (("event_time", ">=", "event_after"), ("event_time", "<", "event_before"),
                ("created_at", ">=", "created_after"), ("created_at", "<", "created_before"))


def _time_travel(as_of: float | None, known_at: float | None, p: str) -> Fragment:
    """Which version of each memory a read sees.

    * neither: the current record (``valid_to IS NULL``);
    * ``known_at`` K only: the version that was the record at K (transaction time);
    * ``as_of`` t (and K, default: everything recorded): among the versions recorded by K,
      the latest one whose statement had begun to hold by t, if it still held at t.
      A later version that only closes the valid time (a superseded statement) or
      corrects the value therefore wins over the earlier one, and a version whose
      ``invalid_at`` is past t hides the memory at t.
    """
    if as_of is None:
        if known_at is None:
            return "v.valid_to IS NULL", []
        return f"v.valid_from <= {p} AND (v.valid_to IS NULL OR v.valid_to > {p})", \
            [known_at, known_at]
    recorded = "" if known_at is None else f" AND w.valid_from <= {p}"
    own = "" if known_at is None else f"v.valid_from <= {p} AND "
    params: list[Any] = [] if known_at is None else [known_at]
    params += [as_of, as_of]
    params += ([] if known_at is None else [known_at]) + [as_of]
    return (f"{own}coalesce(v.valid_at, v.valid_from) <= {p} "
            f"AND (v.invalid_at IS NULL OR v.invalid_at > {p}) "
            f"AND v.version = (SELECT max(w.version) FROM versions w WHERE w.id = v.id"
            f"{recorded} AND coalesce(w.valid_at, w.valid_from) <= {p})"), params


def where_clause(q: RowQuery, d: Dialect) -> Fragment:
    """``RowQuery`` -> (WHERE condition over ``versions v``, bound values) for ``d``."""
    p = d.ph
    parts: list[str] = []
    params: list[Any] = []

    def add(fragment: Fragment) -> None:
        parts.append(fragment[0])
        params.extend(fragment[1])

    if not q.all_versions:
        add(_time_travel(q.as_of, q.known_at, p))
    if q.statuses is not None:
        add(d.in_list("v.status", q.statuses, "text"))
    if q.ids is not None:
        add(d.in_list("v.id", q.ids, "text"))
    if q.seqs is not None:
        add(d.in_list("v.seq", q.seqs, "bigint"))
    # SQLite finds rows by their statement keys through the keys' own index: the unary
    # "+" keeps its planner from walking the owner's index row by row instead
    keyed = "+" if q.truth_any and d.name == "sqlite" else ""
    for key, value in q.scope.items():
        if key not in SCOPE_FIELDS:  # validated upstream too; never let a key reach SQL
            raise InvalidInput(f"unknown scope field {key!r}")
        add((f"{keyed}v.{key} = {p}", [value]))
    if q.kinds is not None:
        add(d.in_list("v.kind", q.kinds, "text"))
    if q.exclude_kinds:
        fragment, values = d.in_list("v.kind", q.exclude_kinds, "text")
        add((f"NOT ({fragment})", values))
    if q.tags_any:
        add(d.tags_any(q.tags_any))
    for key, value in q.metadata.items():
        add(d.metadata_eq(key, value))
    if q.truth_any:
        if d.name == "postgres":
            add(("v.provenance -> 'truth_keys' ?| %s::text[]", [list(q.truth_any)]))
        else:
            # the keys' own table (migration 0004, kept by triggers): an index lookup
            # instead of reading the JSON of every row in scope
            marks = ",".join("?" * len(q.truth_any))
            add((f"v.seq IN (SELECT seq FROM truth_keys WHERE key IN ({marks}))",
                 list(q.truth_any)))
    for column, op, attr in _TIME_BOUNDS:
        value = getattr(q, attr)
        if value is not None:
            add((f"v.{column} {op} {p}", [value]))
    return (" AND ".join(parts) or "1=1"), params
