"""The file store: an agent's files, per workspace, every write a new version.

L2MAC keeps the program being written outside the LLM's context and lets the agent read
and write it precisely; here each file is one ``wm_file`` memory item (text: the path on
the first line, then the content), so the vault's versions are the file's history,
``known_at`` reads the file as it was recorded then, and a deleted file is a tombstone.

Lines are numbered from 1 and ranges are inclusive (``start=3, end=5`` is three lines),
as editors and diffs show them. A write may replace a line range, so an agent edits a
function without sending the whole file back. Content is stored as Unicode NFC text (the
vault normalises every text) of at most the vault's text limit (64 KiB by default); the
workspace's files together stay under ``budget_bytes``.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidInput, NotFound, PayloadTooLarge
from ..types import MemoryItem
from ._base import Space

__all__ = ["FileStore", "FileView", "FileInfo", "BudgetExceeded", "DEFAULT_BUDGET_BYTES"]

KIND = "wm_file"
DEFAULT_BUDGET_BYTES = 4 * 1024 * 1024
MAX_PATH = 256
MAX_DEPTH = 16
_SEGMENT = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")


class BudgetExceeded(PayloadTooLarge):
    """The write would take the workspace's files past its size budget; nothing changed."""

    code = "budget_exceeded"


@dataclass(frozen=True)
class FileInfo:
    path: str
    bytes: int
    lines: int
    version: int
    sha256: str
    updated_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileView:
    """A file (or a line range of it) as read: ``start``..``end`` of ``lines``."""

    path: str
    content: str
    version: int
    lines: int
    start: int
    end: int
    updated_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_path(value: Any) -> str:
    """A relative POSIX path: segments of letters, digits and ``_.@+-``; no ``..``."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_PATH:
        raise InvalidInput(f"path must be a string of 1-{MAX_PATH} characters", field="path")
    parts = value.split("/")
    if len(parts) > MAX_DEPTH or any(p in (".", "..") or not _SEGMENT.match(p) for p in parts):
        raise InvalidInput(f"bad path {value!r}: relative, at most {MAX_DEPTH} segments of "
                           "letters, digits and _.@+- (no '.', '..' or empty segment)",
                           field="path")
    return value


def _content(item: MemoryItem) -> str:
    return item.text.split("\n", 1)[1] if "\n" in item.text else ""


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _line(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**7:
        raise InvalidInput(f"{field} must be a line number >= 1", field=field)
    return value


def _info(path: str, item: MemoryItem) -> FileInfo:
    body = _content(item)
    return FileInfo(path, len(body.encode("utf-8")), len(_lines(body)), item.version,
                    hashlib.sha256(body.encode("utf-8")).hexdigest(),
                    item.valid_from.isoformat() if item.valid_from else None)


class FileStore:
    """Files of one workspace (see the module docs)."""

    def __init__(self, space: Space, *, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.space = space
        self.budget_bytes = budget_bytes

    # -- writes ------------------------------------------------------------------------
    def write(self, path: str, content: str, *, start: int | None = None,
              end: int | None = None) -> FileInfo:
        """Write the whole file, or with ``start`` replace lines ``start``..``end`` with
        ``content`` (``end`` omitted: insert before line ``start``; ``start`` = lines+1
        appends). The same content again writes no new version."""
        path = check_path(path)
        if not isinstance(content, str):
            raise InvalidInput("content must be a string", field="content")
        current = self.space.find(KIND, path)
        live = current is not None and current.status != "deleted"
        old = _content(current) if live and current is not None else ""
        if start is None:
            if end is not None:
                raise InvalidInput("end needs start", field="end")
            new = content
        else:
            new = _splice(old, content, _line(start, "start"),
                          None if end is None else _line(end, "end"))
        self._check_budget(path, old if live else "", new)
        item = self.space.write(KIND, path, f"{path}\n{new}",
                                {"path": path, "bytes": len(new.encode("utf-8"))})
        return _info(path, item)

    def append(self, path: str, content: str) -> FileInfo:
        """Add ``content`` at the end (a new file if there is none)."""
        view = self._current(path, missing_ok=True)
        old = "" if view is None else _content(view)
        if old and not old.endswith("\n"):
            content = "\n" + content
        return self.write(path, old + content)

    def delete(self, path: str) -> bool:
        """Tombstone the file (its history stays); False if there was none."""
        return self.space.remove(KIND, check_path(path)) is not None

    # -- reads -------------------------------------------------------------------------
    def read(self, path: str, *, start: int | None = None, end: int | None = None,
             as_of: Any = None, known_at: Any = None) -> FileView:
        """The file, or lines ``start``..``end`` of it; ``known_at``: as recorded then
        (transaction time), ``as_of``: the version that held then (valid time)."""
        item = self._current(path, as_of=as_of, known_at=known_at)
        lines = _lines(_content(item))
        first = 1 if start is None else _line(start, "start")
        last = len(lines) if end is None else _line(end, "end")
        if last < first - 1:
            raise InvalidInput("end is before start", field="end")
        chunk = "".join(lines[first - 1:last])
        return FileView(item.text.split("\n", 1)[0], chunk, item.version, len(lines), first,
                        min(last, len(lines)),
                        item.valid_from.isoformat() if item.valid_from else None)

    def list(self, prefix: str = "") -> list[FileInfo]:
        """Current files whose path starts with ``prefix``, sorted by path."""
        if not isinstance(prefix, str) or len(prefix) > MAX_PATH:
            raise InvalidInput("prefix must be a short string", field="prefix")
        found = [_info(i.metadata["path"], i) for i in self.space.items(KIND)
                 if str(i.metadata.get("path", "")).startswith(prefix)]
        return sorted(found, key=lambda f: f.path)

    def used_bytes(self) -> int:
        return sum(f.bytes for f in self.list())

    def history(self, path: str) -> list[FileInfo]:
        """Every version, oldest first (a deletion shows as a version too)."""
        item = self._current(path, any_status=True)
        return [_info(path, v) for v in self.space.vault.history(item.id)]

    def version(self, path: str, version: int) -> str:
        """The content of one version."""
        item = self._current(path, any_status=True)
        for v in self.space.vault.history(item.id):
            if v.version == version:
                return _content(v)
        raise NotFound(f"{path} has no version {version}", path=path, version=version)

    def diff(self, path: str, a: int, b: int | None = None, *, context: int = 3) -> str:
        """Unified diff from version ``a`` to version ``b`` (default: the current one)."""
        if b is None:
            b = self._current(path, any_status=True).version
        old, new = self.version(path, a), self.version(path, b)
        return "".join(difflib.unified_diff(_lines(old), _lines(new), f"{path}@{a}",
                                            f"{path}@{b}", n=max(0, min(context, 100))))

    # -- internals ---------------------------------------------------------------------
    def _current(self, path: str, *, missing_ok: bool = False, any_status: bool = False,
                 as_of: Any = None, known_at: Any = None) -> Any:
        item = self.space.find(KIND, check_path(path), as_of=as_of, known_at=known_at)
        if item is None or (item.status == "deleted" and not any_status):
            if missing_ok:
                return None
            raise NotFound(f"no file {path}", path=path)
        return item

    def _check_budget(self, path: str, old: str, new: str) -> None:
        grow = len(new.encode("utf-8")) - len(old.encode("utf-8"))
        if grow <= 0:
            return
        used = self.used_bytes()
        if used + grow > self.budget_bytes:
            raise BudgetExceeded(f"writing {path} would use {used + grow} bytes; the "
                                 f"workspace budget is {self.budget_bytes}", path=path,
                                 used=used, budget=self.budget_bytes)


def _splice(old: str, content: str, start: int, end: int | None) -> str:
    lines = _lines(old)
    if start > len(lines) + 1:
        raise InvalidInput(f"start {start} is past the end (the file has {len(lines)} "
                           "lines; start = lines + 1 appends)", field="start")
    stop = start - 1 if end is None else end
    if stop < start - 1:
        raise InvalidInput("end is before start", field="end")
    new = _lines(content)
    after = lines[min(stop, len(lines)):]
    # whole lines in, whole lines out: the written lines end with a newline unless they
    # end a file whose last line had none
    if new and not new[-1].endswith(("\n", "\r")) and \
            (after or not lines or lines[-1].endswith(("\n", "\r"))):
        new[-1] += "\n"
    out = lines[:start - 1] + new + after
    for i in range(len(out) - 1):  # a line that something follows ends with a newline
        if not out[i].endswith(("\n", "\r")):
            out[i] += "\n"
    return "".join(out)
