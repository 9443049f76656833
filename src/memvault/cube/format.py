"""The MemCube on disk: a directory whose ``manifest.json`` vouches for every file in it.

Layout (format 1.0)::

    cube/
      manifest.json      format + format_version, cube_id, owner, scope, created_at,
                         updated_at, embedder {id, dim}, models {activation, parametric}
                         (fingerprints read from the json sidecars), plaintext {counts,
                         sha256} (the store digest), provenance, and files: every other file
                         as {path, sha256, size}, sorted by path
      plaintext.sqlite   a memvault SQLite store (journal_mode=DELETE: one self-contained
                         file): every version, link, access count and audit event of the
                         cube's memories, with their embeddings
      activation/...     opaque files (KV-cache safetensors + json), copied as they are
      parametric/...     opaque files (LoRA adapters + json), copied as they are

A cube comes from elsewhere, so :func:`verify` trusts nothing: the format must be known
(a newer *major* version is refused, a newer minor one is read), every listed file must be
present with its size and SHA-256, nothing unlisted may be present, and no path may be
absolute, contain ``..``, or be (or pass through) a symlink. Nothing is ever unpickled:
the manifest is JSON, the plaintext SQLite, the rest safetensors/json for their owners.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from .._files import sha256_file
from ..errors import IntegrityError, InvalidInput

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "PLAINTEXT", "SUBDIRS", "verify",
           "read_manifest", "write_manifest", "file_entries", "sha256_file", "copy_tree",
           "safe_relpath", "fingerprints"]

FORMAT = "memvault-cube"
FORMAT_VERSION = "1.0"
MANIFEST = "manifest.json"
PLAINTEXT = "plaintext.sqlite"
SUBDIRS = ("activation", "parametric")
_MAX_MANIFEST = 64 * 1024 * 1024


def safe_relpath(value: Any) -> str:
    """A manifest path: relative, POSIX, no ``..``/``.``/empty parts, no backslashes."""
    if not isinstance(value, str) or not value or "\\" in value or "\x00" in value:
        raise InvalidInput(f"bad path in the cube manifest: {value!r}")
    p = PurePosixPath(value)
    if p.is_absolute() or value.startswith("/") or any(part in ("", ".", "..")
                                                       for part in value.split("/")):
        raise InvalidInput(f"unsafe path in the cube manifest (absolute or with '..'): "
                           f"{value!r}")
    if value == MANIFEST:
        raise InvalidInput("the manifest cannot list itself")
    return value


def _walk(root: Path) -> Iterable[str]:
    """Every file under ``root`` as a relative POSIX path; symlinks are refused."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in dirnames + filenames:
            full = base / name
            if full.is_symlink():
                raise InvalidInput(f"symlinks are not allowed in a cube: "
                                   f"{full.relative_to(root).as_posix()}")
        for name in filenames:
            full = base / name
            if not full.is_file():
                raise InvalidInput(f"not a regular file in a cube: {full}")
            yield full.relative_to(root).as_posix()


def file_entries(root: Path) -> list[dict[str, Any]]:
    """``{path, sha256, size}`` of every file under ``root`` except the manifest."""
    return [{"path": rel, "sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size}
            for rel in sorted(_walk(root)) if rel != MANIFEST]


def copy_tree(src: Path, dst: Path) -> int:
    """Copy the regular files under ``src`` to ``dst`` (no symlinks followed); file count."""
    n = 0
    for rel in _walk(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)
        n += 1
    return n


def fingerprints(root: Path) -> list[Any]:
    """Model fingerprints found in the json sidecars under ``root`` (absent: none).

    The activation and parametric writers own their formats; we only collect the values
    of ``fingerprint``/``model_fingerprint`` keys from top-level json objects, deduplicated.
    """
    found: list[Any] = []
    if not root.is_dir():
        return found
    for rel in sorted(_walk(root)):
        if not rel.endswith(".json"):
            continue
        try:
            doc = json.loads((root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            for key in ("fingerprint", "model_fingerprint"):
                if key in doc and doc[key] not in found:
                    found.append(doc[key])
    return found


def write_manifest(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Checksum every file under ``root`` into ``manifest["files"]`` and write it."""
    manifest = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION,
                "files": file_entries(root)}
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, root / MANIFEST)
    return manifest


def read_manifest(root: Path) -> dict[str, Any]:
    """Parse and sanity-check ``manifest.json`` (format, version, field types); no files."""
    path = Path(root) / MANIFEST
    if not Path(root).is_dir():
        raise InvalidInput(f"{root} is not a cube directory")
    if path.is_symlink() or not path.is_file():
        raise IntegrityError(f"{root} has no {MANIFEST}: not a MemCube, or damaged")
    if path.stat().st_size > _MAX_MANIFEST:
        raise IntegrityError(f"{path} is implausibly large")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IntegrityError(f"{path} is not a MemCube manifest (format != {FORMAT!r})")
    version = doc.get("format_version")
    try:
        major, minor = (int(x) for x in str(version).split("."))
    except ValueError:
        raise IntegrityError(f"bad format_version {version!r} in {path}") from None
    if major > int(FORMAT_VERSION.split(".")[0]):
        raise IntegrityError(f"this cube uses format {version}; this memvault reads format "
                             f"{FORMAT_VERSION.split('.')[0]}.x: upgrade memvault",
                             format_version=version)
    emb = doc.get("embedder")
    if not isinstance(doc.get("cube_id"), str) or not isinstance(emb, dict) or \
            not isinstance(emb.get("id"), str) or not isinstance(emb.get("dim"), int) or \
            not isinstance(doc.get("files"), list):
        raise IntegrityError(f"{path} lacks cube_id, embedder {{id, dim}} or files")
    return doc


def verify(root: str | Path) -> dict[str, Any]:
    """The manifest of the cube at ``root``, after checking every file against it.

    Raises IntegrityError (damaged, missing, extra or unknown-format content) or
    InvalidInput (unsafe paths); the messages name the offending file.
    """
    root = Path(root)
    doc = read_manifest(root)
    listed: dict[str, dict[str, Any]] = {}
    for entry in doc["files"]:
        if not isinstance(entry, dict):
            raise IntegrityError("bad file entry in the cube manifest")
        rel = safe_relpath(entry.get("path"))
        if rel in listed:
            raise IntegrityError(f"{rel} is listed twice in the cube manifest")
        if not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("size"), int):
            raise IntegrityError(f"the manifest entry for {rel} lacks sha256 or size")
        listed[rel] = entry
    if PLAINTEXT not in listed:
        raise IntegrityError(f"the cube manifest does not list {PLAINTEXT}")
    present = set(_walk(root)) - {MANIFEST}
    extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
    if missing:
        raise IntegrityError(f"file(s) missing from the cube: {', '.join(missing[:5])}",
                             missing=missing)
    if extra:
        raise IntegrityError(f"file(s) in the cube that its manifest does not list: "
                             f"{', '.join(extra[:5])}", extra=extra)
    for rel, entry in sorted(listed.items()):
        full = root / rel
        if full.stat().st_size != entry["size"] or sha256_file(full) != entry["sha256"]:
            raise IntegrityError(f"checksum mismatch: {rel} is damaged or was modified",
                                 path=rel)
    return doc
