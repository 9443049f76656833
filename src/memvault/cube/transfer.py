"""``dump`` a vault's memories to a MemCube directory, ``load`` one into a vault, ``inspect``.

dump: one scope selection (user/agent/session/cube id; none = the whole vault) with every
version, the links between its memories, their access counts and audit events, is copied
into ``plaintext.sqlite`` (verified by copy_store), the activation/parametric directories
are copied as opaque files, and the manifest checksums everything. The cube is built in a
hidden sibling directory and renamed into place, so a crash never leaves a half cube.

The activation and parametric directories default to ``<db>.activation/`` and
``<db>.adapters/`` next to a SQLite vault, but only for whole-vault dumps: their files are
not per-user, so a scoped dump includes them only when their paths are given explicitly.

load: :func:`~memvault.cube.format.verify` first (format, checksums, extra/missing files,
unsafe paths, links and special files, the size caps of the vault's ``Limits``), the
embedder must be the vault's (else: ``memvault cube migrate``), then the plaintext is
imported in one transaction under the collision rules of :mod:`~memvault.cube.merge`,
every version it writes screened by the vault's injection guard like a write (a cube's
status never releases a memory; see :func:`~memvault.guard.quarantine.screen_imported`).
Activation/parametric files are installed afterwards, each copied, re-hashed and renamed
into place (same path, same bytes: skipped; different bytes: the same ``on_conflict``
policy, checked before anything is written). Activation index files are validated first
(:func:`~memvault.activation.blocks.check_entry`); one that fails is not installed (nor
its tensor file) and is reported under ``rejected_files``, the rest still load.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, Conflict, IntegrityError, InvalidInput
from ..guard.quarantine import screen_imported
from ..settings import Limits
from ..types import MemoryItem, utcnow
from .._sidecars import default_dirs
from ..ids import new_id
from ..vault import Vault
from .format import (CUBE_ID, PLAINTEXT, copy_file, copy_tree, fingerprints, read_file,
                     read_manifest, sha256_file, verify, write_manifest)
from .merge import POLICIES, import_plaintext
from .plaintext import read_plaintext, scope_of, write_plaintext

__all__ = ["dump", "load", "inspect", "default_dirs", "build_cube", "open_plaintext"]

_ID: re.Pattern[str] = CUBE_ID


def build_cube(out: str | Path, fill: Any, manifest: dict[str, Any],
               trees: dict[str, Path | None], limits: Limits | None = None) -> dict[str, Any]:
    """Create the cube ``out`` atomically: ``fill(tmpdir)`` writes the plaintext and
    returns manifest fields; ``trees`` are copied to activation/ and parametric/."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = {**manifest, **fill(tmp)}
        for sub, src in trees.items():
            if src is not None:
                copy_tree(Path(src), tmp / sub, limits)
        manifest["models"] = {sub: fingerprints(tmp / sub, limits) for sub in trees}
        manifest = write_manifest(tmp, manifest)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def dump(vault: Vault, out: str | Path, *, user_id: str | None = None,
         agent_id: str | None = None, session_id: str | None = None,
         cube_id: str | None = None, name: str | None = None, owner: str | None = None,
         activation_dir: str | Path | None = None,
         parametric_dir: str | Path | None = None) -> dict[str, Any]:
    """Write the memories of one scope (default: all) of ``vault`` as a cube at ``out``."""
    scope = scope_of({"user_id": user_id, "agent_id": agent_id, "session_id": session_id,
                      "cube_id": cube_id})
    vault.flush()  # buffered access counts belong in the cube
    trees: dict[str, Path | None] = {"activation": None, "parametric": None}
    for sub, given in (("activation", activation_dir), ("parametric", parametric_dir)):
        if given is not None:
            if not Path(given).is_dir():
                raise InvalidInput(f"{sub} directory {given} does not exist")
            trees[sub] = Path(given)
        elif not scope:
            default = default_dirs(vault)[sub]
            trees[sub] = default if default is not None and default.is_dir() else None
    ident = name or cube_id or new_id()
    if not _ID.match(ident):
        raise InvalidInput(f"a cube id is 1-128 of A-Z a-z 0-9 _ . : -, not {ident!r}")
    meta_src = vault.store.meta()
    meta = {"embedder": vault.embedder.id, "dim": str(vault.embedder.dim),
            "created_at": meta_src.get("created_at", utcnow().isoformat()),
            "vault_id": ident, "cube_id": ident}

    def fill(tmp: Path) -> dict[str, Any]:
        report = write_plaintext(vault.store, tmp / PLAINTEXT, scope=scope, meta=meta)
        return {"plaintext": _summary(report)}

    now = utcnow().isoformat()
    return build_cube(out, fill, {
        "cube_id": ident, "owner": owner or next(iter(scope.values()), None),
        "scope": scope, "created_at": now, "updated_at": now,
        "embedder": {"id": vault.embedder.id, "dim": vault.embedder.dim},
        "provenance": {"dumped_from": meta_src.get("vault_id")}}, trees, vault.limits)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"counts": report["counts"], "sha256": report["sha256"], "items": report["items"]}


def open_plaintext(cube: Path, manifest: dict[str, Any], workdir: Path,
                   limits: Limits | None = None) -> Any:
    """Copy the verified cube's plaintext to ``workdir``, re-check its hash, read it."""
    limits = limits or Limits()
    entry = next(e for e in manifest["files"] if e["path"] == PLAINTEXT)
    copy = workdir / PLAINTEXT
    copy_file(cube / PLAINTEXT, copy, max_bytes=limits.max_cube_bytes, sha256=entry["sha256"],
              rel=PLAINTEXT)
    p = read_plaintext(copy, manifest["embedder"]["dim"], limits)
    if p.meta.get("embedder") != manifest["embedder"]["id"]:
        raise IntegrityError("the cube's plaintext and manifest disagree on the embedder")
    return p


def load(vault: Vault, cube: str | Path, *, on_conflict: str = "fail",
         activation_dir: str | Path | None = None,
         parametric_dir: str | Path | None = None) -> dict[str, Any]:
    """Verify the cube at ``cube`` and import it into ``vault``; return what happened."""
    if on_conflict not in POLICIES:
        raise InvalidInput(f"on_conflict must be one of {', '.join(POLICIES)}")
    cube = Path(cube)
    manifest = verify(cube, vault.limits)
    emb = manifest["embedder"]
    if emb["id"] != vault.embedder.id or emb["dim"] != vault.embedder.dim:
        raise ConfigurationError(
            f"the cube was embedded with {emb['id']!r} ({emb['dim']}-d), this vault uses "
            f"{vault.embedder.id!r}: run `memvault cube migrate {cube} NEW_DIR --to "
            f"{vault.embedder.id}` and load NEW_DIR", cube_embedder=emb["id"])
    dirs = default_dirs(vault)
    targets = {"activation": Path(activation_dir) if activation_dir else dirs["activation"],
               "parametric": Path(parametric_dir) if parametric_dir else dirs["parametric"]}
    rejected = _check_activation(cube, manifest, vault.limits)
    installs = _plan_files(cube, manifest, targets, on_conflict, set(rejected))

    def screen(item: MemoryItem) -> MemoryItem:
        return screen_imported(vault.guard, item)

    with tempfile.TemporaryDirectory(prefix="memvault-cube-") as work:
        p = open_plaintext(cube, manifest, Path(work), vault.limits)
        report = import_plaintext(vault.store, p, cube_id=manifest["cube_id"],
                                  policy=on_conflict, actor=vault.actor, screen=screen)
    report["files"] = _install(cube, installs, vault.limits)
    report["rejected_files"] = [{"path": path, "reason": why} for path, why in rejected.items()]
    report["skipped_files"] = [e["path"] for e in manifest["files"]
                               if e["path"] != PLAINTEXT and e["path"] not in rejected
                               and e["path"] not in {i[0]["path"] for i in installs}]
    report["cube_id"] = manifest["cube_id"]
    return report


def _check_activation(cube: Path, manifest: dict[str, Any], limits: Limits
                      ) -> dict[str, str]:
    """``{path: reason}`` for the activation index files the ActivationStore would read
    (``activation/<model>/<x>.json``) that it must not: malformed, over the bounds, or in
    the wrong place, with the tensor file of each such entry. The rest load."""
    from ..activation.blocks import (MAX_INDEX_BYTES, NAMES, check_entry, check_names,
                                     parse_index_file)

    rejected: dict[str, str] = {}
    for entry in manifest["files"]:
        parts = entry["path"].split("/")
        if len(parts) != 3 or parts[0] != "activation" or not parts[2].endswith(".json"):
            continue
        try:
            data = read_file(cube / entry["path"], entry["path"],
                             min(MAX_INDEX_BYTES, limits.max_cube_file_bytes))
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:  # what is installed
                raise IntegrityError(f"{entry['path']} changed while it was being read")
            doc = parse_index_file(data, entry["path"])
            if parts[2] == NAMES:
                check_names(doc)
            else:
                check_entry(doc, parts[1], parts[2])
        except (IntegrityError, InvalidInput) as exc:
            rejected[entry["path"]] = exc.message
            if parts[2] != NAMES:
                tensors = entry["path"][:-len(".json")] + ".safetensors"
                rejected[tensors] = f"its entry {parts[2]} was rejected"
    listed = {e["path"] for e in manifest["files"]}
    return {path: why for path, why in rejected.items() if path in listed}


def _plan_files(cube: Path, manifest: dict[str, Any], targets: dict[str, Path | None],
                policy: str, rejected: set[str]) -> list[tuple[dict[str, Any], Path]]:
    plan, clashes = [], []
    for entry in manifest["files"]:
        if entry["path"] in rejected:
            continue
        sub, _, rel = entry["path"].partition("/")
        if sub not in targets or targets[sub] is None or not rel:
            continue
        dest = targets[sub] / rel  # type: ignore[operator]
        if dest.exists():
            if dest.is_symlink() or not dest.is_file() or sha256_file(dest) != entry["sha256"]:
                if policy == "fail":
                    clashes.append(entry["path"])
                if policy != "theirs":
                    continue
            else:
                continue
        plan.append((entry, dest))
    if clashes:
        raise Conflict(f"{len(clashes)} file(s) already exist with other content (e.g. "
                       f"{clashes[0]}); nothing was loaded. Choose --on-conflict "
                       "ours|theirs|keep-both", paths=clashes[:100])
    return plan


def _install(cube: Path, plan: list[tuple[dict[str, Any], Path]], limits: Limits) -> int:
    for entry, dest in plan:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        copy_file(cube / entry["path"], tmp, max_bytes=limits.max_cube_file_bytes,
                  sha256=entry["sha256"], rel=entry["path"])
        os.replace(tmp, dest)
    return len(plan)


def inspect(cube: str | Path, *, check: bool = True,
            limits: Limits | None = None) -> dict[str, Any]:
    """The manifest plus a summary; ``check`` verifies every file first (else only parsed)."""
    cube = Path(cube)
    manifest = verify(cube, limits) if check else read_manifest(cube, limits)
    sizes: dict[str, int] = {}
    for e in manifest["files"]:
        top = e["path"].split("/")[0]
        sizes[top] = sizes.get(top, 0) + int(e["size"])
    return {**manifest, "verified": check, "bytes": sizes}
