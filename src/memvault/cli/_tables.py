"""Text in and out of the CLI: KEY=VALUE and import-file parsing; short times, one-line
cells and aligned tables for output.

No dependency beyond the standard library; widths count characters, which is right for
the Latin scripts of typical memories and merely a little off for wide (CJK) glyphs.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence

from ..errors import InvalidInput
from ..types import AuditEvent, MemoryItem, SearchHit

__all__ = ["parse_pairs", "read_import", "JsonlRecords",
           "ELLIPSIS", "terminal_width", "short_time", "one_line", "truncate", "table", "kv",
           "compact_json", "items_table", "hits_table", "history_table", "audit_table",
           "item_detail"]

ELLIPSIS = "…"
GAP = "  "


# -- input -------------------------------------------------------------------------------
def _scalar(text: str) -> Any:
    """``3`` -> 3, ``0.5`` -> 0.5, ``true`` -> True; anything else stays a string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
        return value
    return text


def parse_pairs(values: Iterable[str], *, option: str = "--meta") -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; numbers and booleans are typed."""
    out: dict[str, Any] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{option} expects KEY=VALUE, got {raw!r}", field=option)
        out[key.strip()] = _scalar(value)
    return out


class JsonlRecords:
    """The records of a JSONL stream; ``line`` is the line number of the last one read."""

    def __init__(self, numbered: Iterator[tuple[int, str]]) -> None:
        self._numbered = numbered
        self.line = 0

    def __iter__(self) -> Iterator[Any]:
        for self.line, raw in self._numbered:
            if raw.strip():
                try:
                    yield json.loads(raw)
                except ValueError as exc:
                    raise InvalidInput(f"not valid JSON ({exc.msg})") from None


def read_import(lines: Iterable[str]) -> JsonlRecords | list[Any]:
    """JSONL records, or the message list of a chat document (a JSON list of messages or
    ``{"messages": [...]}``): a first line that is a whole JSON value other than those
    means JSONL."""
    numbered = enumerate(lines, 1)
    for n, first in numbered:
        if first.strip():
            break
    else:
        raise InvalidInput("nothing to import: the input is empty")
    try:
        head = json.loads(first)
        if not isinstance(head, list) and not (isinstance(head, dict) and "messages" in head):
            return JsonlRecords(itertools.chain([(n, first)], numbered))
    except ValueError:
        pass  # not a whole JSON value on one line: a multi-line document
    try:
        doc = json.loads(first + "".join(line for _, line in numbered))
    except ValueError as exc:
        raise InvalidInput(f"neither JSONL records nor a chat JSON document: {exc}") from None
    messages = doc.get("messages") if isinstance(doc, dict) else doc
    if not isinstance(messages, list):
        raise InvalidInput('a chat file must be a list of messages or {"messages": [...]}')
    return messages


# -- output ------------------------------------------------------------------------------


def terminal_width(fallback: int = 100) -> int:
    """Columns of the terminal, or ``fallback`` when output is not a terminal."""
    return max(40, shutil.get_terminal_size((fallback, 24)).columns)


def short_time(value: datetime | None, *, precise: bool = False) -> str:
    """``2024-07-14 09:30:05`` in UTC (``precise``: with milliseconds); just the date for
    an exact midnight; ``-`` for none."""
    if value is None:
        return "-"
    dt = value.astimezone(timezone.utc) if value.tzinfo else value
    if (dt.hour, dt.minute, dt.second, dt.microsecond) == (0, 0, 0, 0):
        return dt.strftime("%Y-%m-%d")
    if precise:
        return dt.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def one_line(value: Any) -> str:
    """Any cell value as a single line with runs of whitespace collapsed."""
    if value is None:
        return "-"
    return " ".join(str(value).split())


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in an ellipsis when cut."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:max(width, 0)]
    return text[:width - 1].rstrip() + ELLIPSIS


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, flex: int = -1,
          right: Iterable[int] = (), width: int | None = None) -> str:
    """Align ``rows`` under ``headers``; the ``flex`` column shrinks to fit ``width``.

    Columns listed in ``right`` are right-aligned (numbers). Cells are flattened to one
    line; the flex column (default: the last) is truncated with an ellipsis so that no
    line is wider than the terminal.
    """
    cells = [[one_line(c) for c in row] for row in rows]
    ncol = len(headers)
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    limit = width if width is not None else terminal_width()
    flex %= ncol
    overflow = sum(widths) + len(GAP) * (ncol - 1) - limit
    if overflow > 0:
        widths[flex] = max(len(headers[flex]), 8, widths[flex] - overflow)
    right_cols = {i % ncol for i in right}

    def line(values: Sequence[str]) -> str:
        out = []
        for i, (value, w) in enumerate(zip(values, widths)):
            value = truncate(value, w)
            out.append(value.rjust(w) if i in right_cols else value.ljust(w))
        return GAP.join(out).rstrip()

    return "\n".join([line([h.upper() for h in headers]), *(line(r) for r in cells)])


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    """``key  value`` lines with the values aligned; multi-line values stay indented."""
    pairs = list(pairs)
    pad = max((len(k) for k, _ in pairs), default=0)
    lines = []
    for key, value in pairs:
        text = "-" if value is None else str(value)
        first, *rest = text.splitlines() or [""]
        lines.append(f"{key.ljust(pad)}{GAP}{first}".rstrip())
        lines.extend(" " * (pad + len(GAP)) + r for r in rest)
    return "\n".join(lines)


# -- renderings of the data model ------------------------------------------------------
def _when(item: MemoryItem) -> str:
    """When it happened if known, else when it was stored."""
    return short_time(item.event_time or item.created_at)


def items_table(items: Iterable[MemoryItem]) -> str:
    return table(["id", "kind", "status", "when", "text"],
                 [(i.id, i.kind, i.status, _when(i), i.text) for i in items])


def hits_table(hits: Iterable[SearchHit]) -> str:
    return table(["#", "score", "when", "kind", "id", "text"],
                 [(h.rank, f"{h.score:.4f}", _when(h.item), h.item.kind, h.item.id, h.item.text)
                  for h in hits], right=[0, 1])


def history_table(versions: Iterable[MemoryItem], *, precise: bool = False,
                  width: int | None = None) -> str:
    return table(["v", "status", "valid from", "valid to", "text"],
                 [(v.version, v.status, short_time(v.valid_from, precise=precise),
                   short_time(v.valid_to, precise=precise) if v.valid_to else "now", v.text)
                  for v in versions], right=[0], width=width)


def audit_table(events: Iterable[AuditEvent]) -> str:
    return table(["seq", "at", "actor", "action", "item", "v", "details"],
                 [(e.seq, short_time(e.at), e.actor or "", e.action, e.item_id, e.version,
                   compact_json(e.details) if e.details else "") for e in events], right=[0, 5])


def item_detail(item: MemoryItem) -> str:
    """Every field worth reading, one per line, with the full text last."""
    scope = ", ".join(f"{k.removesuffix('_id')}={v}" for k, v in item.scope.items() if v)
    valid_to = short_time(item.valid_to) if item.valid_to else "now"
    return kv([("id", item.id), ("version", f"{item.version} ({item.status})"),
               ("kind", item.kind), ("scope", scope or None),
               ("tags", ", ".join(item.tags) or None),
               ("metadata", compact_json(item.metadata) if item.metadata else None),
               ("event time", short_time(item.event_time)),
               ("created", short_time(item.created_at)),
               ("valid", f"{short_time(item.valid_from)} .. {valid_to}"),
               ("text", item.text)])
