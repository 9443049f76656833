"""Plaintext memory as JSON at the edges: import files in, the export read back.

Three shapes come in (``memvault import``): JSONL records (``{"text", ...}`` or a bare
string per line, what :meth:`Vault.add_many` takes); a chat (a JSON list of ``{role,
content, name?, timestamp?}`` messages, or ``{"messages": [...]}``); and an *export*:
what :meth:`Vault.export` / ``memvault export [--history]`` writes, one
``MemoryItem.to_dict()`` per line. :func:`parse_import` reads any of them from bytes and
raises :class:`InvalidInput` naming the line for anything it cannot take (bytes that are
not UTF-8, a line that is not JSON, nesting too deep, a line over
:data:`MAX_LINE_BYTES`), before a single record is written.

:func:`import_export` writes an export back with every version as it was (ids, version
numbers, validity, status, links, heat) through the cube importer
(:func:`memvault.cube.merge.import_plaintext`): one transaction, so a refused file
changes nothing, and ids collide by the rules of ``memvault cube load``: an identical
history is skipped (importing a file twice changes nothing), a history the file extends
is fast-forwarded, and a diverged one is refused unless ``on_conflict`` says ``ours``,
``theirs`` or ``keep-both``. Each written memory gets a ``cube_load`` audit event whose
``cube`` is ``export:<source>``. Vectors are not in an export: they are embedded again
with the vault's embedder.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import InvalidInput, MemvaultError

if TYPE_CHECKING:
    from ..types import MemoryItem
    from ..vault import Vault

__all__ = ["ImportFile", "parse_import", "decode_utf8", "loads", "import_export",
           "EXPORT_FIELDS", "MAX_LINE_BYTES"]

#: Longest JSONL line taken (a memory's text is at most 64 KiB; links can add more).
MAX_LINE_BYTES = 8 << 20
#: Fields of ``MemoryItem.to_dict()``: a record with ``version`` is an export record.
EXPORT_FIELDS = frozenset({"id", "text", "kind", "user_id", "agent_id", "session_id",
                           "cube_id", "metadata", "provenance", "tags", "created_at",
                           "event_time", "valid_from", "valid_to", "version", "status",
                           "importance", "expires_at", "access_count", "last_accessed_at",
                           "links", "valid_at", "invalid_at"})
_REQUIRED = ("id", "text", "version", "created_at", "valid_from", "status")


def decode_utf8(data: bytes) -> str:
    """``data`` as text (a leading BOM dropped); bytes that are not UTF-8 are refused
    with the line and column they are on."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InvalidInput(f"line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at "
                           f"column {column})", line=line) from None


def loads(text: str, *, line: int | None = None) -> Any:
    """``json.loads`` whose every failure is an InvalidInput (nesting too deep included)."""
    try:
        return json.loads(text)
    except RecursionError:
        where = f"line {line}: " if line else ""
        raise InvalidInput(f"{where}JSON nested too deeply", line=line) from None
    except json.JSONDecodeError as exc:
        at = line if line else exc.lineno
        raise InvalidInput(f"line {at}: not valid JSON ({exc.msg})", line=at) from None


@dataclass
class ImportFile:
    """A parsed import file: ``format`` is ``jsonl``, ``export`` or ``chat``; ``records``
    are ``(line, record)`` pairs (for a chat: ``(0, message)``)."""

    format: str
    records: list[tuple[int, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)


def parse_import(data: bytes) -> ImportFile:
    """Read an import file (see the module docstring); nothing is written here."""
    text = decode_utf8(data)
    lines = text.splitlines()
    first = next((n for n, raw in enumerate(lines) if raw.strip()), None)
    if first is None:
        raise InvalidInput("nothing to import: the input is empty")
    head: Any = None
    if len(lines[first].encode("utf-8")) <= MAX_LINE_BYTES:
        try:
            head = loads(lines[first], line=first + 1)
        except InvalidInput:
            head = None  # not a whole JSON value on one line: a multi-line document
    if head is None or isinstance(head, list) or (isinstance(head, dict) and "messages" in head):
        return _chat(text)
    out = ImportFile("export" if isinstance(head, dict) and "version" in head else "jsonl")
    for n, raw in enumerate(lines[first:], first + 1):
        if not raw.strip():
            continue
        if len(raw.encode("utf-8")) > MAX_LINE_BYTES:
            raise InvalidInput(f"line {n}: longer than {MAX_LINE_BYTES >> 20} MiB", line=n)
        record = loads(raw, line=n)
        if out.format == "export":
            if not isinstance(record, dict) or "version" not in record:
                raise InvalidInput(f"line {n}: not an export record (a file from `memvault "
                                   "export` has one memory version per line)", line=n)
        elif not isinstance(record, (dict, str)):
            raise InvalidInput(f"line {n}: a record must be a JSON object or string", line=n)
        elif isinstance(record, dict) and "version" in record:
            raise InvalidInput(f"line {n}: an export record among plain records", line=n)
        out.records.append((n, record))
    return out


def _chat(text: str) -> ImportFile:
    doc = loads(text)
    messages = doc.get("messages") if isinstance(doc, dict) else doc
    if not isinstance(messages, list):
        raise InvalidInput('a chat file must be a list of messages or {"messages": [...]}')
    return ImportFile("chat", [(0, m) for m in messages])


# -- the export read back -----------------------------------------------------------------
def _item(n: int, record: dict[str, Any], vault: "Vault") -> "MemoryItem":
    """One export record as a validated MemoryItem (what the vault would have stored)."""
    import dataclasses

    from .. import _validate as check
    from ..types import STATUSES, MemoryItem

    unknown = set(record) - EXPORT_FIELDS
    missing = [k for k in _REQUIRED if record.get(k) is None]
    if unknown or missing:
        what = f"unknown field(s) {sorted(unknown)}" if unknown else f"missing {missing}"
        raise InvalidInput(f"line {n}: {what}", line=n)
    try:
        item = MemoryItem.from_dict(record)
        lim = vault.limits
        version = record["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput("version must be a positive integer")
        if item.status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
        count = record.get("access_count") or 0
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput("access_count must be a non-negative integer")
        for link in item.links:
            check.item_id(link.target)
            check.kind(link.kind)
            check.finite(link.weight, field="weight", low=0.0, high=1e6)
        return dataclasses.replace(
            item, id=check.item_id(item.id), text=check.text(item.text, lim),
            kind=check.kind(item.kind), **check.scope(item.scope),
            metadata=check.json_object(item.metadata, lim, field="metadata"),
            provenance=check.json_object(item.provenance, lim, field="provenance"),
            tags=check.tags(list(item.tags), lim),
            importance=check.unit_float(item.importance, field="importance"))
    except MemvaultError as exc:
        raise InvalidInput(f"line {n}: {exc.message}", line=n) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"line {n}: not a memory version ({exc})", line=n) from None


def _histories(items: Sequence[tuple[int, "MemoryItem"]]
               ) -> dict[str, list[tuple[int, "MemoryItem"]]]:
    """Versions grouped by id and checked: consecutive numbers, each closed exactly when
    the next opens, the latest open."""
    out: dict[str, list[tuple[int, MemoryItem]]] = {}
    for n, item in items:
        out.setdefault(item.id, []).append((n, item))
    for item_id, versions in out.items():
        versions.sort(key=lambda v: v[1].version)
        numbers = [v.version for _, v in versions]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            raise InvalidInput(f"line {versions[0][0]}: memory {item_id} has versions "
                               f"{numbers} (each once, no gaps)", line=versions[0][0])
        for (_, a), (m, b) in zip(versions, versions[1:]):
            if a.valid_to is None or a.valid_to != b.valid_from:
                raise InvalidInput(f"line {m}: memory {item_id} v{a.version} is not closed "
                                   f"when v{b.version} opens", line=m)
        n, last = versions[-1]
        if last.valid_to is not None:
            raise InvalidInput(f"line {n}: memory {item_id}'s latest version (v{last.version}) "
                               "is closed (valid_to is set)", line=n)
    return out


def import_export(vault: "Vault", records: Sequence[tuple[int, Any]], *,
                  on_conflict: str = "fail", source: str = "jsonl",
                  progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write the export ``records`` (``(line, MemoryItem.to_dict())`` pairs) into ``vault``
    in one transaction; returns the cube importer's counts per outcome.

    ``progress(n)`` is called as versions are embedded (the slow part)."""
    from .._time import to_epoch
    from ..cube.merge import POLICIES, import_plaintext
    from ..cube.plaintext import Plaintext
    from ..ids import content_hash
    from ..retrieval.context import embed_text, search_text
    from ..storage.base import RowQuery

    if on_conflict not in POLICIES:
        raise InvalidInput(f"on_conflict must be one of {', '.join(POLICIES)}")
    items = [(n, _item(n, r, vault)) for n, r in records]
    histories = _histories(items)
    latest = {i: v[-1][1] for i, v in histories.items()}
    targets = {link.target for item in latest.values() for link in item.links} - set(latest)
    if targets:
        found: set[str] = set()
        wanted = sorted(targets)
        for i in range(0, len(wanted), 500):
            found |= {r.item.id for r in vault.store.select(
                RowQuery(ids=wanted[i:i + 500], statuses=None))}
        if targets - found:
            raise InvalidInput(f"links point to {len(targets - found)} memory id(s) neither in "
                               f"the file nor in the vault (e.g. {sorted(targets - found)[0]})")

    mode = vault.settings.index_context
    previous = {link.target: src for src, item in latest.items() for link in item.links
                if link.kind == "next" and link.target in histories}  # the thread, as written

    def replying_to(item: MemoryItem) -> MemoryItem | None:
        src = previous.get(item.id)
        if src is None:
            return None
        then = [v for _, v in histories[src] if v.valid_from <= item.valid_from]  # type: ignore[operator]
        return (then or [histories[src][0][1]])[-1]

    p = Plaintext()
    rows: list[tuple[Any, ...]] = []
    for item_id, versions in histories.items():
        lines = sorted(n for n, _ in versions)  # insert in version order, at the file's place
        for line, (_, item) in zip(lines, versions):
            source_text = embed_text(item, mode)
            rows.append((line, item_id, item.version, item.text,
                         search_text(item, replying_to(item), mode), item.kind, item.user_id,
                         item.agent_id, item.session_id, item.cube_id,
                         json.dumps(item.metadata, sort_keys=True),
                         json.dumps(item.provenance, sort_keys=True),
                         json.dumps(list(item.tags)), to_epoch(item.created_at),
                         to_epoch(item.event_time), to_epoch(item.valid_from),
                         to_epoch(item.valid_to), item.status, item.importance,
                         to_epoch(item.expires_at), content_hash(source_text),
                         to_epoch(item.valid_at or item.valid_from), to_epoch(item.invalid_at),
                         source_text))
        last = versions[-1][1]
        if last.access_count:
            p.access[item_id] = (last.access_count, to_epoch(last.last_accessed_at))
        p.links += [(item_id, link.target, link.kind, link.weight, None) for link in last.links]
    rows.sort()
    for start in range(0, len(rows), 256):  # embed each distinct content once
        chunk = rows[start:start + 256]
        todo = {r[20]: r[23] for r in chunk if r[20] not in p.vectors}
        if todo:
            vectors = vault.embedder.embed(list(todo.values()))
            for h, vec in zip(todo, vectors):
                p.vectors[h] = (len(vec), vec.astype("<f4").tobytes())
        if progress:
            progress(len(chunk))
    for r in rows:
        p.versions.setdefault(r[1], []).append(r[:23])  # the raw layout, without the source
    return import_plaintext(vault.store, p, cube_id=f"export:{source}", policy=on_conflict,
                            actor=vault.actor)
