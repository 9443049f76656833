"""The plaintext part of a cube: writing ``plaintext.sqlite`` and reading it back safely.

Writing reuses :func:`~memvault.storage.migrate.copy_store` with a row transform: the
source is read in one snapshot with versions before vectors, so the transform can keep
one scope (whole items, every version) and only the vectors, links, access counts and
audit events of those items, and, for ``migrate``, re-embed each distinct content with a
new embedder. copy_store then verifies counts and checksums of what arrived.

Reading never opens the cube's own file: the caller copies it to a private directory and
checks the copy's SHA-256 (no window between check and use). Its schema must then be
exactly memvault's (no extra triggers or views: the file is untrusted), and every history
must be well formed before anything is imported. Its JSON columns (metadata, provenance,
tags, audit details) are bounded in nesting before they are parsed.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .. import _validate as check
from ..errors import IntegrityError, InvalidInput, MemvaultError
from ..models import Embedder
from ..settings import Limits
from ..retrieval.context import embed_text
from ..storage._rows import row_to_item
from ..storage.migrate import copy_store, raw_rows
from ..storage.sqlite import SQLiteStore, sql_statements
from ..types import STATUSES, MemoryItem
from ..ids import content_hash

__all__ = ["Plaintext", "write_plaintext", "read_plaintext", "raw_item", "scope_of",
           "VERSIONS_FIRST"]

Chunk = tuple[str, list[tuple]]
#: Read order for the transforms: versions before vectors (which they filter or rebuild).
VERSIONS_FIRST = ("meta", "versions", "vectors", "links", "access", "audit")
_SCOPE_COL = {"user_id": 6, "agent_id": 7, "session_id": 8, "cube_id": 9}
_HASH = 20  # content_hash column of a raw version row


def raw_item(raw: tuple) -> MemoryItem:
    """A raw version row (``RAW_COLUMNS["versions"]``) as a MemoryItem (no links/heat)."""
    return row_to_item(tuple(raw[:4]) + tuple(raw[5:21]) + (None, None) + tuple(raw[21:23]), ())


@dataclass
class Plaintext:
    """A cube's rows grouped by item; ``versions[id]`` is ordered by version."""

    meta: dict[str, str] = field(default_factory=dict)
    vectors: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    versions: dict[str, list[tuple]] = field(default_factory=dict)
    links: list[tuple] = field(default_factory=list)
    access: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    audit: list[tuple] = field(default_factory=list)

    def embedding(self, raw: tuple) -> np.ndarray:
        return np.frombuffer(self.vectors[raw[_HASH]][1], dtype="<f4")


class _CubeRows:
    """The copy_store transform: scope filter, new meta, optional re-embedding."""

    def __init__(self, scope: Mapping[str, str], meta: dict[str, str],
                 embedder: Embedder | None) -> None:
        self.scope = {_SCOPE_COL[k]: v for k, v in scope.items()}
        self.meta, self.embedder = meta, embedder
        self.ids: set[str] = set()
        self._wanted: set[str] | None = None
        self._sources: dict[str, str] | None = None

    def __call__(self, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        held: list[tuple] = []
        flushed = False
        yield "meta", sorted(self.meta.items())  # the cube's identity, not the source's
        for table, rows in chunks:
            if table == "meta":
                continue
            if table == "versions":
                kept = [r for r in rows if all(r[c] == v for c, v in self.scope.items())]
                held += kept
                self.ids.update(r[1] for r in kept)
            elif table == "vectors":
                yield "vectors", self._vectors(held, rows)
            else:
                if not flushed:
                    yield "versions", held
                    flushed = True
                if table == "links":
                    keep = [r for r in rows if r[0] in self.ids and r[1] in self.ids]
                else:
                    keep = [r for r in rows if r[0 if table == "access" else 4] in self.ids]
                yield table, keep
        if not flushed:
            yield "versions", held

    def _vectors(self, held: list[tuple], rows: list[tuple]) -> list[tuple]:
        if self._wanted is None:  # versions are complete once vectors arrive
            self._wanted = {r[_HASH] for r in held}
        rows = [r for r in rows if r[0] in self._wanted]
        if self.embedder is None or not rows:
            return rows
        if self._sources is None:
            self._sources = _embed_sources(held)
        sources = self._sources
        missing = [r[0] for r in rows if r[0] not in sources]
        if missing:
            raise IntegrityError(f"cannot tell which text {len(missing)} stored vector(s) "
                                 "embed (content hash matches no version's text); nothing "
                                 "was migrated", hashes=missing[:5])
        vecs = self.embedder.embed([sources[r[0]] for r in rows])
        dim = self.embedder.dim
        return [(r[0], dim, np.ascontiguousarray(v, dtype="<f4").tobytes())
                for r, v in zip(rows, vecs)]


def _embed_sources(versions: list[tuple]) -> dict[str, str]:
    """content hash -> the embedder input that produced it (as the Vault built it)."""
    out: dict[str, str] = {}
    for raw in versions:
        if raw[_HASH] in out:
            continue
        item = raw_item(raw)
        for candidate in (embed_text(item, "speaker"), item.text, raw[4]):
            if content_hash(candidate) == raw[_HASH]:
                out[raw[_HASH]] = candidate
                break
    return out


def write_plaintext(source: Any, path: Path, *, scope: Mapping[str, str],
                    meta: dict[str, str], embedder: Embedder | None = None
                    ) -> dict[str, Any]:
    """Copy ``scope`` of the record store ``source`` into a new SQLite file at ``path``.

    ``embedder`` re-embeds every content (migrate). Returns copy_store's verified report
    plus ``items``. The file ends up in rollback-journal mode: one self-contained file.
    """
    transform = _CubeRows(scope, meta, embedder)
    dst = SQLiteStore(path)
    try:
        report = copy_store(source, dst, transform=transform, tables=VERSIONS_FIRST)
    finally:
        dst.close()
    _finalize(path)
    return {**report, "items": len(transform.ids)}


def _finalize(path: Path) -> None:
    # the cube file is private until the dump is renamed into place: the store's
    # between-process write lock file has nothing to guard and must not ship in the cube
    Path(f"{path}-writelock").unlink(missing_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        raise IntegrityError(f"finishing {path}: {exc}") from exc
    finally:
        conn.close()


_SCHEMAS: list[list[tuple]] | None = None


def _schema(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                        "ORDER BY type, name").fetchall()


def _expected_schemas() -> list[list[tuple]]:
    """memvault's schema after each migration, oldest first: a cube written by an older
    memvault has one of them, and its private copy is upgraded like a vault file."""
    global _SCHEMAS
    if _SCHEMAS is None:
        scripts = sorted((p for p in resources.files("memvault.storage.migrations.sqlite")
                          .iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
        conn = sqlite3.connect(":memory:")
        try:
            schemas = []
            for script in scripts:
                for stmt in sql_statements(script.read_text()):
                    conn.execute(stmt)
                schemas.append(_schema(conn))
            _SCHEMAS = schemas
        finally:
            conn.close()
    return _SCHEMAS


def read_plaintext(path: Path, dim: int, limits: Limits | None = None) -> Plaintext:
    """Read and validate a private copy of a cube's ``plaintext.sqlite``."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA trusted_schema=OFF")
            ok = conn.execute("PRAGMA integrity_check").fetchall()
            schema = _schema(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise IntegrityError(f"the cube's plaintext is not a readable SQLite file: {exc}") \
            from exc
    if ok != [("ok",)]:
        raise IntegrityError(f"the cube's plaintext failed SQLite's integrity check: {ok[:3]}")
    if schema not in _expected_schemas():
        raise IntegrityError("the cube's plaintext does not have memvault's schema "
                             "(made by another version, or tampered with)")
    store = SQLiteStore(path)
    try:
        p = Plaintext()
        for table, rows in raw_rows(store):
            if table == "meta":
                p.meta.update(rows)
            elif table == "vectors":
                p.vectors.update((h, (d, bytes(e))) for h, d, e in rows)
            elif table == "versions":
                for r in rows:
                    p.versions.setdefault(r[1], []).append(r)
            elif table == "links":
                p.links += rows
            elif table == "access":
                p.access.update((r[0], (r[1], r[2])) for r in rows)
            else:
                p.audit += rows
    finally:
        store.close()
    _validate(p, dim, limits or Limits())
    return p


def _validate(p: Plaintext, dim: int, limits: Limits) -> None:
    """Refuse malformed histories or vectors before a single row is imported; texts,
    metadata and tags within the bounds a write has (a load is a write)."""
    depth = limits.max_json_depth
    def bad(msg: str) -> IntegrityError:
        return IntegrityError(f"the cube's plaintext is inconsistent: {msg}")

    for h, (d, blob) in p.vectors.items():
        if d != dim or len(blob) != 4 * dim:
            raise bad(f"vector {h[:12]} has dimension {d}, the manifest says {dim}")
        if not np.isfinite(np.frombuffer(blob, dtype="<f4")).all():
            raise bad(f"vector {h[:12]} has non-finite values")
    for item_id, rows in p.versions.items():
        rows.sort(key=lambda r: r[2])
        try:
            check.item_id(item_id)
            for r in rows:
                check.kind(r[5])
                check.scope({f: r[c] for f, c in _SCOPE_COL.items()})
                if not isinstance(r[3], str) or \
                        len(r[3].encode("utf-8", "surrogatepass")) > limits.max_text_bytes:
                    raise InvalidInput(f"v{r[2]}: text is not a string of at most "
                                       f"{limits.max_text_bytes} bytes")
                if isinstance(r[10], str) and len(r[10].encode()) > limits.max_metadata_bytes:
                    raise InvalidInput(f"v{r[2]}: metadata is larger than "
                                       f"{limits.max_metadata_bytes} bytes")
                for c, name in ((10, "metadata"), (11, "provenance"), (12, "tags")):
                    if not isinstance(r[c], str):
                        raise InvalidInput(f"{name} is not JSON text")
                    check.parse_json(r[c], max_depth=depth, what=name)
                check.tags(raw_item(r).tags, limits)
        except (MemvaultError, ValueError, TypeError) as exc:
            raise bad(f"memory {item_id!r}: {exc}") from exc
        if [r[2] for r in rows] != list(range(1, len(rows) + 1)):
            raise bad(f"memory {item_id} has versions {[r[2] for r in rows]}")
        for prev, nxt in zip(rows, rows[1:]):
            if prev[16] != nxt[15]:
                raise bad(f"memory {item_id} v{prev[2]} is not closed when v{nxt[2]} opens")
        if rows[-1][16] is not None:
            raise bad(f"memory {item_id}'s latest version is closed")
        for r in rows:
            if r[17] not in STATUSES or r[_HASH] not in p.vectors or \
                    not isinstance(r[18], (int, float)) or not math.isfinite(r[18]) or \
                    any(t is not None and (not isinstance(t, (int, float)) or
                                           not math.isfinite(t)) for t in r[21:23]):
                raise bad(f"memory {item_id} v{r[2]} has a bad status, importance, valid "
                          "time or vector")
    for src, dst, kind, weight, _ in p.links:
        if src not in p.versions or dst not in p.versions:
            raise bad(f"link {src} -> {dst} points outside the cube")
        try:
            check.kind(kind)
            check.finite(weight, field="weight", low=0.0, high=1e6)
        except InvalidInput as exc:
            raise bad(f"link {src} -> {dst}: {exc}") from exc
    for r in p.audit:
        try:
            if not isinstance(r[6], str) or \
                    not isinstance(check.parse_json(r[6], max_depth=depth, what="details"), dict):
                raise InvalidInput("details must be a JSON object")
        except InvalidInput as exc:
            raise bad(f"audit event {r[0]} has bad details: {exc}") from exc


def scope_of(values: Mapping[str, Any]) -> dict[str, str]:
    """Validated scope selection (None values dropped)."""
    return check.scope({k: v for k, v in values.items() if v is not None})

