"""Text in and out of the CLI: KEY=VALUE parsing; short times, one-line cells and aligned
tables (wrapped to the terminal, whole when piped) for output. Import files are parsed by
the library (:mod:`memvault.plaintext.jsonl`).

No dependency beyond the standard library; widths count characters, which is right for
the Latin scripts of typical memories and merely a little off for wide (CJK) glyphs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import textwrap
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from ..errors import InvalidInput
from ..types import AuditEvent, MemoryItem, SearchHit

__all__ = ["parse_pairs", "ELLIPSIS", "output_width", "terminal_width", "short_time", "one_line", "truncate", "table", "kv",
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


def output_width() -> int | None:
    """Columns a table may use: ``$COLUMNS`` if set, else the terminal's; None (no limit:
    whole cells, one row per line) when stdout is not a terminal, e.g. piped to grep."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return max(40, int(columns))
    return terminal_width() if sys.stdout.isatty() else None


#: Below this many columns the last column's text goes on lines of its own under the row.
MIN_WRAP = 30


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, flex: int = -1,
          right: Iterable[int] = (), width: int | None = None, overflow: str = "wrap") -> str:
    """Align ``rows`` under ``headers``; the ``flex`` column gives way to fit ``width``.

    ``width`` defaults to :func:`output_width` (unlimited when not a terminal). Columns
    listed in ``right`` are right-aligned (numbers). Cells are flattened to one line. A
    flex column that does not fit wraps onto continuation lines (``overflow="wrap"``);
    when fewer than :data:`MIN_WRAP` columns are left for the last column, its text goes
    under each row, indented, across the whole width (an id and a time leave little room
    at 80 columns). ``overflow="cut"`` truncates with an ellipsis instead.
    """
    cells = [[one_line(c) for c in row] for row in rows]
    ncol = len(headers)
    flex %= ncol
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    limit = width if width is not None else output_width()
    right_cols = {i % ncol for i in right}
    room = None if limit is None else \
        limit - (sum(widths) - widths[flex]) - len(GAP) * (ncol - 1)

    def line(values: Sequence[str], ws: Sequence[int]) -> str:
        out = [v.rjust(w) if i in right_cols else v.ljust(w)
               for i, (v, w) in enumerate(zip(values, ws))]
        return GAP.join(out).rstrip()

    if room is None or widths[flex] <= room:
        return "\n".join([line([h.upper() for h in headers], widths),
                          *(line(r, widths) for r in cells)])
    assert limit is not None
    if overflow == "cut":
        widths[flex] = max(len(headers[flex]), 8, room)
        return "\n".join([line([truncate(h.upper(), w) for h, w in zip(headers, widths)], widths),
                          *(line([truncate(v, w) for v, w in zip(r, widths)], widths)
                            for r in cells)])
    if room < MIN_WRAP and flex == ncol - 1:  # stacked: the text under its row
        indent = " " * 4
        out = [line([h.upper() for h in headers[:-1]], widths[:-1])]
        for r in cells:
            out.append(line(r[:-1], widths[:-1]))
            out += [indent + piece for piece in _wrap(r[-1], limit - len(indent))]
        return "\n".join(out)
    widths[flex] = max(len(headers[flex]), 8, room)
    out = [line([h.upper() for h in headers], widths)]
    for r in cells:
        pieces = _wrap(r[flex], widths[flex])
        out.append(line([pieces[0] if i == flex else v for i, v in enumerate(r)], widths))
        out += [line([p if i == flex else "" for i in range(ncol)], widths) for p in pieces[1:]]
    return "\n".join(out)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, max(width, 1), break_on_hyphens=False) or [""]


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


def shown_status(version: MemoryItem) -> str:
    """What a version's status means to a reader: a closed version that was active is
    ``superseded`` (the stored status, in the JSON, stays what it was while current)."""
    if version.valid_to is not None and version.status == "active":
        return "superseded"
    return version.status


def history_table(versions: Iterable[MemoryItem], *, precise: bool = False,
                  width: int | None = None) -> str:
    return table(["v", "status", "valid from", "valid to", "text"],
                 [(v.version, shown_status(v), short_time(v.valid_from, precise=precise),
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
    return kv([("id", item.id), ("version", f"{item.version} ({shown_status(item)})"),
               ("kind", item.kind), ("scope", scope or None),
               ("tags", ", ".join(item.tags) or None),
               ("metadata", compact_json(item.metadata) if item.metadata else None),
               ("event time", short_time(item.event_time)),
               ("created", short_time(item.created_at)),
               ("valid", f"{short_time(item.valid_from)} .. {valid_to}"),
               ("text", item.text)])
