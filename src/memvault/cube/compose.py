"""``compose`` two cubes into a new one, ``migrate`` a cube to another embedding model.

compose(a, b): the union of both cubes' memories, every version keeping its provenance
(``provenance["cube"]`` = the cube it came from). A memory id present in both:

* identical histories: one copy (provenance: the first cube);
* one history extends the other: the longer one (its extra versions say they came from
  the cube that had them);
* diverged: the *later writer wins* the id, i.e. the side whose current version opened
  last (a tie goes to ``b``); the other side keeps its whole history as a separate memory
  ``<id>:<12 hex>`` with a ``diverged_from`` link to the winner, so nothing is lost and
  the loser stays findable. The manifest lists each conflict.

Activation and parametric files are unioned by path; the same path with other bytes keeps
the later cube's file (by manifest ``updated_at``; tie: ``b``) and lists the other under
``provenance.dropped_files``: those kinds are derived from plaintext and can be rebuilt.

migrate(cube, embedder): a new cube whose vectors are recomputed with ``embedder`` from
the exact input each vector was made from (recovered by content hash); everything else
(ids, versions, validity times, links, heat, audit, activation and parametric files) is
copied unchanged, and this is checked: row counts per table and the checksums of the
versions and the audit log must equal the source's, every vector must have the new
dimension, and the opaque files must hash as before.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, IntegrityError, InvalidInput
from ..models import Embedder, get_embedder
from ..settings import Limits
from ..storage.migrate import store_digest
from ..storage.sqlite import SQLiteStore
from ..types import utcnow
from ..ids import new_id
from .format import PLAINTEXT, SUBDIRS, copy_file, verify
from .merge import _relation, derived_id, import_plaintext
from .plaintext import Plaintext, raw_item, write_plaintext
from .transfer import _ID, _summary, build_cube, open_plaintext

__all__ = ["compose", "migrate"]


def _winners(pa: Plaintext, pb: Plaintext, a_id: str, b_id: str
             ) -> tuple[dict[str, str], dict[str, str], list[dict[str, Any]]]:
    """Renames for the losing side of each diverged id, and the conflict list."""
    rename_a: dict[str, str] = {}
    rename_b: dict[str, str] = {}
    conflicts = []
    for item_id in sorted(set(pa.versions) & set(pb.versions)):
        ra, rb = pa.versions[item_id], pb.versions[item_id]
        if _relation([(raw_item(r), r[20]) for r in ra],
                     [(raw_item(r), r[20]) for r in rb]) != "diverged":
            continue
        b_wins = rb[-1][15] >= ra[-1][15]  # valid_from of the current versions
        if b_wins:
            rename_a[item_id] = derived_id(item_id, a_id)
        else:
            rename_b[item_id] = derived_id(item_id, b_id)
        conflicts.append({"id": item_id, "winner": b_id if b_wins else a_id,
                          "kept_as": rename_a.get(item_id) or rename_b[item_id]})
    return rename_a, rename_b, conflicts


def _union_files(a: Path, ma: dict[str, Any], b: Path, mb: dict[str, Any], stage: Path,
                 limits: Limits) -> list[dict[str, Any]]:
    """Copy both cubes' opaque files into ``stage``; the later cube wins a clash."""
    b_later = str(mb.get("updated_at", "")) >= str(ma.get("updated_at", ""))
    order = [(a, ma), (b, mb)] if b_later else [(b, mb), (a, ma)]  # winner copied last
    chosen: dict[str, tuple[Path, dict[str, Any], str]] = {}
    dropped = []
    for cube, manifest in order:
        for e in manifest["files"]:
            if e["path"] == PLAINTEXT:
                continue
            prev = chosen.get(e["path"])
            if prev is not None and prev[1]["sha256"] != e["sha256"]:
                dropped.append({**prev[1], "from": prev[2]})
            chosen[e["path"]] = (cube, e, manifest["cube_id"])
    for path, (cube, e, _) in chosen.items():
        dest = stage / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy_file(cube / path, dest, max_bytes=limits.max_cube_file_bytes, sha256=e["sha256"],
                  rel=path)
    return dropped


def compose(a: str | Path, b: str | Path, out: str | Path, *, cube_id: str | None = None,
            owner: str | None = None, limits: Limits | None = None) -> dict[str, Any]:
    """Write the union of cubes ``a`` and ``b`` to the new cube ``out``."""
    limits = limits or Limits()
    a, b = Path(a), Path(b)
    ma, mb = verify(a, limits), verify(b, limits)
    if ma["embedder"] != mb["embedder"]:
        raise ConfigurationError(
            f"the cubes use different embedders ({ma['embedder']['id']} and "
            f"{mb['embedder']['id']}): migrate one to the other's first")
    a_id, b_id = ma["cube_id"], mb["cube_id"]
    if cube_id is not None and not _ID.match(cube_id):
        raise InvalidInput(f"a cube id is 1-128 of A-Z a-z 0-9 _ . : -, not {cube_id!r}")
    with tempfile.TemporaryDirectory(prefix="memvault-compose-") as work:
        w = Path(work)
        (w / "a").mkdir(), (w / "b").mkdir()
        pa, pb = open_plaintext(a, ma, w / "a", limits), open_plaintext(b, mb, w / "b", limits)
        rename_a, rename_b, conflicts = _winners(pa, pb, a_id, b_id)
        merged = SQLiteStore(w / "merged.sqlite")
        try:
            ra = import_plaintext(merged, pa, cube_id=a_id, rename=rename_a,
                                  provenance={"cube": a_id})
            rb = import_plaintext(merged, pb, cube_id=b_id, rename=rename_b,
                                  provenance={"cube": b_id})
        finally:
            merged.close()
        stage = w / "files"
        dropped = _union_files(a, ma, b, mb, stage, limits)
        ident = cube_id or new_id()
        meta = {**pa.meta, "vault_id": ident, "cube_id": ident}
        source = SQLiteStore(w / "merged.sqlite")

        def fill(tmp: Path) -> dict[str, Any]:
            return {"plaintext": _summary(write_plaintext(source, tmp / PLAINTEXT,
                                                          scope={}, meta=meta))}

        now = utcnow().isoformat()
        try:
            manifest = build_cube(out, fill, {
                "cube_id": ident,
                "owner": owner or (ma.get("owner") if ma.get("owner") == mb.get("owner")
                                   else None),
                "scope": ma["scope"] if ma.get("scope") == mb.get("scope") else {},
                "created_at": now, "updated_at": now, "embedder": ma["embedder"],
                "provenance": {"composed_from": [a_id, b_id], "conflicts": conflicts,
                               "dropped_files": dropped,
                               "imported": {a_id: ra, b_id: rb}}},
                {sub: (stage / sub if (stage / sub).is_dir() else None) for sub in SUBDIRS},
                limits)
        finally:
            source.close()
    return manifest


def migrate(cube: str | Path, out: str | Path, embedder: Embedder | str, *,
            limits: Limits | None = None) -> dict[str, Any]:
    """Write ``cube`` re-embedded with ``embedder`` to the new cube ``out``; verified."""
    limits = limits or Limits()
    cube = Path(cube)
    if isinstance(embedder, str):
        embedder = get_embedder(embedder)
    manifest = verify(cube, limits)
    with tempfile.TemporaryDirectory(prefix="memvault-migrate-") as work:
        p = open_plaintext(cube, manifest, Path(work), limits)
        source = SQLiteStore(Path(work) / PLAINTEXT)
        try:
            before = store_digest(source)
            meta = {**p.meta, "embedder": embedder.id, "dim": str(embedder.dim)}
            report: dict[str, Any] = {}

            def fill(tmp: Path) -> dict[str, Any]:
                report.update(write_plaintext(source, tmp / PLAINTEXT, scope={}, meta=meta,
                                              embedder=embedder))
                return {"plaintext": _summary(report)}

            new = build_cube(out, fill, {
                **{k: v for k, v in manifest.items() if k not in ("files", "plaintext")},
                "updated_at": utcnow().isoformat(),
                "embedder": {"id": embedder.id, "dim": embedder.dim},
                "provenance": {**manifest.get("provenance", {}), "migrated_from": {
                    "embedder": manifest["embedder"], "at": utcnow().isoformat()}}},
                {sub: (cube / sub if (cube / sub).is_dir() else None) for sub in SUBDIRS},
                limits)
        finally:
            source.close()
    try:
        _check_migration(before, report, manifest, new, embedder.dim, Path(out))
    except IntegrityError:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return new


def _check_migration(before: dict[str, Any], after: dict[str, Any], old: dict[str, Any],
                     new: dict[str, Any], dim: int, out: Path) -> None:
    problems = [f"{t}: {before['counts'][t]} -> {after['counts'][t]}"
                for t in before["counts"] if before["counts"][t] != after["counts"][t]]
    problems += [f"{t} checksum differs" for t in ("versions", "audit")
                 if before["sha256"][t] != after["sha256"][t]]
    olds = {e["path"]: e["sha256"] for e in old["files"] if e["path"] != PLAINTEXT}
    news = {e["path"]: e["sha256"] for e in new["files"] if e["path"] != PLAINTEXT}
    if olds != news:
        problems.append("activation/parametric files differ from the source cube's")
    dims = _vector_dims(out / PLAINTEXT)
    if dims - {dim}:
        problems.append(f"vectors of dimension {sorted(dims)} (expected {dim})")
    if problems:
        raise IntegrityError(f"migration verification failed: {'; '.join(problems)}; the "
                             "new cube was removed", problems=problems)


def _vector_dims(path: Path) -> set[int]:
    """Distinct vector dimensions, read without touching the file (immutable, read-only)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT DISTINCT dim FROM vectors")}
    except sqlite3.Error as exc:
        raise IntegrityError(f"reading {path}: {exc}") from exc
    finally:
        conn.close()
