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
absolute, contain ``..``, or be (or pass through) a symlink. Every file must be a regular
file with one link (a hard link would import the content of a file outside the cube; a
FIFO or device would hang or stream forever), and sizes are capped by
:class:`~memvault.settings.Limits` (per activation/parametric file, per cube, file count),
checked against the manifest and ``lstat`` before anything is hashed or copied. Files are
opened without following links and re-checked on the open descriptor, and every copy is
hashed as it is written. The manifest's JSON is bounded in size and nesting before it is
parsed. Nothing is ever unpickled: the manifest is JSON, the plaintext SQLite, the rest
safetensors/json for their owners.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterable

from .. import _validate as check
from .._files import sha256_file
from ..errors import IntegrityError, InvalidInput, PayloadTooLarge
from ..settings import Limits

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "PLAINTEXT", "SUBDIRS", "CUBE_ID", "verify",
           "read_manifest", "write_manifest", "file_entries", "sha256_file", "copy_tree",
           "copy_file", "read_file", "safe_relpath", "fingerprints"]

FORMAT = "memvault-cube"
FORMAT_VERSION = "1.0"
MANIFEST = "manifest.json"
PLAINTEXT = "plaintext.sqlite"
SUBDIRS = ("activation", "parametric")
#: A cube id: it names cubes in audit events, provenance and derived memory ids.
CUBE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_MAX_MANIFEST = 64 * 1024 * 1024
_MAX_SIDECAR = 16 * 1024 * 1024
_BLOCK = 1 << 20


def safe_relpath(value: Any) -> str:
    """A manifest path: relative, POSIX, no ``..``/``.``/empty parts, no backslashes."""
    if not isinstance(value, str) or not value or "\\" in value or "\x00" in value \
            or len(value) > 1024:
        raise InvalidInput(f"bad path in the cube manifest: {value!r}"[:300])
    p = PurePosixPath(value)
    if p.is_absolute() or value.startswith("/") or any(part in ("", ".", "..")
                                                       for part in value.split("/")):
        raise InvalidInput(f"unsafe path in the cube manifest (absolute or with '..'): "
                           f"{value!r}")
    if value == MANIFEST:
        raise InvalidInput("the manifest cannot list itself")
    return value


def _check_regular(st: os.stat_result, rel: str) -> None:
    """A cube holds regular files with one link each: no FIFOs, devices or sockets (they
    hang or stream forever), no hard links (they import a file from outside the cube)."""
    if stat.S_ISLNK(st.st_mode):
        raise InvalidInput(f"symlinks are not allowed in a cube: {rel}")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"not a regular file in a cube: {rel}")
    if st.st_nlink != 1:
        raise InvalidInput(f"hard links are not allowed in a cube: {rel} has "
                           f"{st.st_nlink} links")


def _walk(root: Path) -> Iterable[str]:
    """Every file under ``root`` as a relative POSIX path; symlinks, hard links and special
    files are refused."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                raise InvalidInput(f"symlinks are not allowed in a cube: "
                                   f"{(base / name).relative_to(root).as_posix()}")
        for name in filenames:
            rel = (base / name).relative_to(root).as_posix()
            _check_regular(os.lstat(base / name), rel)
            yield rel


def _open(path: Path, rel: str, max_bytes: int) -> BinaryIO:
    """``path`` opened for reading, never through a symlink and never blocking on a FIFO;
    checked again on the descriptor (the directory may change after it was walked)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if path.is_symlink():
            raise InvalidInput(f"symlinks are not allowed in a cube: {rel}") from None
        raise IntegrityError(f"cannot read {rel} in the cube: {exc.strerror}") from None
    fh = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)
        _check_regular(st, rel)
        _cap(rel, st.st_size, max_bytes)
    except BaseException:
        fh.close()
        raise
    return fh


def _cap(rel: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PayloadTooLarge(f"{rel} is {size} bytes; a cube file may have at most "
                              f"{max_bytes} (Limits.max_cube_file_bytes)", path=rel,
                              limit=max_bytes)


def _stream(fh: BinaryIO, rel: str, max_bytes: int, out: BinaryIO | None) -> str:
    h, n = hashlib.sha256(), 0
    for block in iter(lambda: fh.read(_BLOCK), b""):
        n += len(block)
        _cap(rel, n, max_bytes)  # the file grew after it was checked
        h.update(block)
        if out is not None:
            out.write(block)
    return h.hexdigest()


def _hash(path: Path, rel: str, max_bytes: int) -> str:
    with _open(path, rel, max_bytes) as fh:
        return _stream(fh, rel, max_bytes, None)


def copy_file(src: Path, dst: Path, *, max_bytes: int, sha256: str | None = None,
              rel: str | None = None) -> str:
    """Copy one cube file (regular, one link, at most ``max_bytes``) to ``dst``, hashing
    the bytes as they are written; with ``sha256`` a copy that differs is removed and
    refused. Returns the copy's sha256."""
    rel = rel or src.name
    try:
        with _open(src, rel, max_bytes) as fh, open(dst, "wb") as out:
            digest = _stream(fh, rel, max_bytes, out)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    if sha256 is not None and digest != sha256:
        dst.unlink(missing_ok=True)
        raise IntegrityError(f"{rel} changed while it was being read", path=rel)
    return digest


def read_file(path: Path, rel: str, max_bytes: int) -> bytes:
    """The bytes of one (small) cube file, under the same rules as :func:`copy_file`."""
    with _open(path, rel, max_bytes) as fh:
        data = fh.read(max_bytes + 1)
    _cap(rel, len(data), max_bytes)
    return data


def file_entries(root: Path) -> list[dict[str, Any]]:
    """``{path, sha256, size}`` of every file under ``root`` except the manifest."""
    return [{"path": rel, "sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size}
            for rel in sorted(_walk(root)) if rel != MANIFEST]


def copy_tree(src: Path, dst: Path, limits: Limits | None = None) -> int:
    """Copy the regular files under ``src`` to ``dst`` (no links followed or copied, each
    at most ``limits.max_cube_file_bytes``); file count."""
    cap = (limits or Limits()).max_cube_file_bytes
    n = 0
    for rel in _walk(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_file(src / rel, target, max_bytes=cap, rel=rel)
        n += 1
    return n


def fingerprints(root: Path, limits: Limits | None = None) -> list[Any]:
    """Model fingerprints found in the json sidecars under ``root`` (absent: none).

    The activation and parametric writers own their formats; we only collect the values
    of ``fingerprint``/``model_fingerprint`` keys from top-level json objects, deduplicated.
    The sidecars may come from a foreign cube (compose, migrate): bounded reads only.
    """
    depth = (limits or Limits()).max_json_depth
    found: list[Any] = []
    if not root.is_dir():
        return found
    for rel in sorted(_walk(root)):
        if not rel.endswith(".json"):
            continue
        try:
            doc = check.parse_json(read_file(root / rel, rel, _MAX_SIDECAR), max_depth=depth,
                                   what=rel)
        except (InvalidInput, IntegrityError):
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


def read_manifest(root: Path, limits: Limits | None = None) -> dict[str, Any]:
    """Parse and sanity-check ``manifest.json`` (format, version, field types); no files.

    Bounded before parsing (64 MiB, ``limits.max_json_depth`` levels): a crafted manifest
    is an IntegrityError, never a RecursionError."""
    limits = limits or Limits()
    path = Path(root) / MANIFEST
    if not Path(root).is_dir():
        raise InvalidInput(f"{root} is not a cube directory")
    if path.is_symlink() or not path.is_file():
        raise IntegrityError(f"{root} has no {MANIFEST}: not a MemCube, or damaged")
    try:
        raw = read_file(path, MANIFEST, _MAX_MANIFEST)
    except PayloadTooLarge:
        raise IntegrityError(f"{path} is implausibly large") from None
    doc = check.parse_json(raw, max_depth=limits.max_json_depth, what=str(path),
                           error=IntegrityError)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IntegrityError(f"{path} is not a MemCube manifest (format != {FORMAT!r})")
    version = doc.get("format_version")
    try:
        major, minor = (int(x) for x in str(version).split("."))
    except ValueError:
        raise IntegrityError(f"bad format_version {str(version)[:40]!r} in {path}") from None
    if major > int(FORMAT_VERSION.split(".")[0]):
        raise IntegrityError(f"this cube uses format {version}; this memvault reads format "
                             f"{FORMAT_VERSION.split('.')[0]}.x: upgrade memvault",
                             format_version=version)
    emb = doc.get("embedder")
    if not isinstance(doc.get("cube_id"), str) or not isinstance(emb, dict) or \
            not isinstance(emb.get("id"), str) or not isinstance(emb.get("dim"), int) or \
            not isinstance(doc.get("files"), list):
        raise IntegrityError(f"{path} lacks cube_id, embedder {{id, dim}} or files")
    if not CUBE_ID.match(doc["cube_id"]):
        raise IntegrityError(f"{path}: the cube id must be 1-128 of A-Z a-z 0-9 _ . : -, not "
                             f"{doc['cube_id'][:140]!r}")
    if isinstance(emb["dim"], bool) or not 1 <= emb["dim"] <= 65536 or \
            not 0 < len(emb["id"]) <= 200:
        raise IntegrityError(f"{path}: implausible embedder {str(emb)[:200]}")
    if not isinstance(doc.get("scope", {}), dict):
        raise IntegrityError(f"{path}: scope must be an object")
    try:
        check.scope(doc.get("scope") or {})
    except InvalidInput as exc:
        raise IntegrityError(f"{path}: bad scope: {exc}") from None
    return doc


def verify(root: str | Path, limits: Limits | None = None) -> dict[str, Any]:
    """The manifest of the cube at ``root``, after checking every file against it.

    Raises IntegrityError (damaged, missing, extra or unknown-format content),
    InvalidInput (unsafe paths, links, special files) or PayloadTooLarge (over the
    ``limits`` caps); the messages name the offending file.
    """
    limits = limits or Limits()
    root = Path(root)
    doc = read_manifest(root, limits)
    if len(doc["files"]) > limits.max_cube_files:
        raise PayloadTooLarge(f"the cube lists {len(doc['files'])} files; the limit is "
                              f"{limits.max_cube_files} (Limits.max_cube_files)")
    listed: dict[str, dict[str, Any]] = {}
    total = 0
    for entry in doc["files"]:
        if not isinstance(entry, dict):
            raise IntegrityError("bad file entry in the cube manifest")
        rel = safe_relpath(entry.get("path"))
        if rel in listed:
            raise IntegrityError(f"{rel} is listed twice in the cube manifest")
        size = entry.get("size")
        if not isinstance(entry.get("sha256"), str) or not isinstance(size, int) or \
                isinstance(size, bool) or size < 0:
            raise IntegrityError(f"the manifest entry for {rel} lacks sha256 or size")
        _cap(rel, size, _file_cap(rel, limits))
        total += size
        if total > limits.max_cube_bytes:
            raise PayloadTooLarge(f"the cube holds more than {limits.max_cube_bytes} bytes "
                                  "(Limits.max_cube_bytes)", limit=limits.max_cube_bytes)
        listed[rel] = entry
    if PLAINTEXT not in listed:
        raise IntegrityError(f"the cube manifest does not list {PLAINTEXT}")
    present: set[str] = set()
    for rel in _walk(root):
        if rel != MANIFEST:
            present.add(rel)
        if len(present) > limits.max_cube_files:
            raise PayloadTooLarge(f"the cube holds more than {limits.max_cube_files} files")
    extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
    if missing:
        raise IntegrityError(f"file(s) missing from the cube: {', '.join(missing[:5])}",
                             missing=missing[:100])
    if extra:
        raise IntegrityError(f"file(s) in the cube that its manifest does not list: "
                             f"{', '.join(extra[:5])}", extra=extra[:100])
    for rel, entry in sorted(listed.items()):  # every size first: no hashing of a liar
        if os.lstat(root / rel).st_size != entry["size"]:
            raise IntegrityError(f"checksum mismatch: {rel} is damaged or was modified",
                                 path=rel)
    for rel, entry in sorted(listed.items()):
        if _hash(root / rel, rel, _file_cap(rel, limits)) != entry["sha256"]:
            raise IntegrityError(f"checksum mismatch: {rel} is damaged or was modified",
                                 path=rel)
    return doc


def _file_cap(rel: str, limits: Limits) -> int:
    """The plaintext is bounded by the cube's total; every other file by the per-file cap."""
    return limits.max_cube_bytes if rel == PLAINTEXT else limits.max_cube_file_bytes
