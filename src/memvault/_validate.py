"""Input validation shared by every write and read path.

Everything here runs before storage is touched, so a refused request changes nothing.
Text is NFC-normalised so that visually identical strings hash and match identically.
JSON is bounded in depth as well as size, both as Python values (:func:`json_depth`) and
as text (:func:`parse_json`, which measures the nesting before the parser sees it): the
standard library recurses once per level, and a few thousand levels exhaust its stack.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any, Mapping, Sequence

from ._time import to_epoch
from .errors import InvalidInput, MemvaultError
from .settings import Limits
from .storage.base import RowQuery
from .types import SCOPE_FIELDS, STATUSES

# \Z, not $: "$" also matches before a final newline, which would let "id\n" through
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
_META_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}\Z")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
FILTER_KEYS = frozenset({"kind", "tags", "metadata", "event_after", "event_before",
                         "created_after", "created_before", "ids"})


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def finite(value: Any, *, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not low <= value <= high:
        raise InvalidInput(f"{field} must be a number in {low}..{high}", field=field)
    return float(value)


def text(value: Any, limits: Limits, *, field: str = "text") -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {type(value).__name__}", field=field)
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL byte", field=field)
    value = unicodedata.normalize("NFC", value)
    if not value.strip():
        raise InvalidInput(f"{field} is empty", field=field)
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limits.max_text_bytes:
        raise InvalidInput(f"{field} is {size} bytes; the limit is {limits.max_text_bytes}",
                           field=field, limit=limits.max_text_bytes)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} contains unpaired surrogates", field=field) from None
    return value


def kind(value: Any) -> str:
    if not isinstance(value, str) or not _KIND.match(value):
        raise InvalidInput(f"kind must be a short lowercase word, got {value!r}", field="kind")
    return value


def item_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f"not a memory id: {value!r}", field="id")
    return value


def scope(values: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if key not in SCOPE_FIELDS:
            raise InvalidInput(f"unknown scope field {key!r}", field=key)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > 256 or "\x00" in value:
            raise InvalidInput(f"{key} must be a non-empty string of at most 256 characters",
                               field=key)
        out[key] = unicodedata.normalize("NFC", value)
    return out


def json_depth(value: Any, limit: int, *, field: str, max_nodes: int | None = None) -> int:
    """How deep ``value``'s dicts and lists nest (a scalar: 0); InvalidInput past ``limit``
    levels or ``max_nodes`` values. Iterative, so a cycle or 100k levels cost no stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    deepest, nodes = 0, 0
    while stack:
        v, depth = stack.pop()
        nodes += 1
        if max_nodes is not None and nodes > max_nodes:
            raise InvalidInput(f"{field} has more than {max_nodes} values", field=field)
        if isinstance(v, Mapping):
            children: Any = v.values()
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        depth += 1
        if depth > limit:
            raise InvalidInput(f"{field} nests deeper than {limit} levels", field=field,
                               limit=limit)
        deepest = max(deepest, depth)
        stack.extend((c, depth) for c in children)
    return deepest


def nesting(text: str) -> int:
    """How deep the arrays and objects of the JSON ``text`` nest, measured on the text
    (strings skipped) so that it is known before a recursive parser runs."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    import numpy as np  # here: a by-id read (the CLI's `get`) never needs numpy

    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return max(0, int(np.cumsum(steps).max()))


def parse_json(text: str | bytes, *, max_depth: int, what: str, max_bytes: int | None = None,
               error: type[MemvaultError] = InvalidInput) -> Any:
    """``json.loads`` for untrusted text: size and nesting are checked first, and every
    failure is ``error`` (a MemvaultError) naming ``what``, never RecursionError."""
    if max_bytes is not None and len(text) > max_bytes:
        raise error(f"{what} is larger than {max_bytes} bytes", limit=max_bytes)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not valid JSON: {exc}") from None
    depth = nesting(text)
    if depth > max_depth:
        raise error(f"{what} nests {depth} levels deep; the limit is {max_depth}",
                    limit=max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # not reachable after the nesting check; kept as a last guard
        raise error(f"{what} nests too deeply") from None
    except ValueError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None


def json_object(value: Any, limits: Limits, *, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{field} must be a JSON object, not {type(value).__name__}",
                           field=field)
    json_depth(value, limits.max_json_depth, field=field, max_nodes=limits.max_metadata_bytes)
    try:
        encoded = json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} is not valid JSON: {exc}", field=field) from None
    if "\\u0000" in encoded:
        raise InvalidInput(f"{field} contains a NUL character", field=field)
    if not _encodable(json.dumps(value, sort_keys=True, ensure_ascii=False)):
        raise InvalidInput(f"{field} contains an unpaired surrogate", field=field)
    if len(encoded.encode()) > limits.max_metadata_bytes:
        raise InvalidInput(f"{field} is larger than {limits.max_metadata_bytes} bytes",
                           field=field)
    return json.loads(encoded)


def tags(value: Any, limits: Limits) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput("tags must be a list of strings", field="tags")
    if len(value) > limits.max_tags:
        raise InvalidInput(f"at most {limits.max_tags} tags", field="tags")
    out = []
    for tag in value:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 64 or "\x00" in tag \
                or not _encodable(tag):
            raise InvalidInput(f"bad tag {tag!r}: non-empty string up to 64 chars", field="tags")
        out.append(unicodedata.normalize("NFC", tag.strip()))
    return tuple(dict.fromkeys(out))


def unit_float(value: Any, *, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{field} must be a number between 0 and 1", field=field)
    return float(value)


def bounded_int(value: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{field} must be an integer in {low}..{high}, got {value!r}",
                           field=field)
    return value


def statuses(value: Any) -> tuple[str, ...] | None:
    if value is None or value == "any":
        return None
    values = [value] if isinstance(value, str) else list(value)
    for s in values:
        if s not in STATUSES:
            raise InvalidInput(f"unknown status {s!r}; known: {', '.join(STATUSES)}",
                               field="status")
    return tuple(values)


def searchable(values: Sequence[str] | None) -> tuple[str, ...]:
    """The statuses a search may serve: never ``quarantined`` (held text reaches no
    prompt until its owner releases it), so ``None`` (any) means every other status and
    naming ``quarantined`` is refused."""
    if values is None:
        return tuple(s for s in STATUSES if s != "quarantined")
    if "quarantined" in values:
        raise InvalidInput("search never serves quarantined memories; review them with "
                           "quarantined() (GET /v1/quarantine), as their owner",
                           field="status")
    return tuple(values)


def row_query(scope_values: Mapping[str, Any], filters: Mapping[str, Any] | None,
              *, as_of: Any = None, known_at: Any = None,
              status: Any = "active") -> RowQuery:
    """Turn the public (scope, filters, as_of, known_at, status) arguments into a RowQuery."""
    q = RowQuery(scope=scope(scope_values), statuses=statuses(status),
                 as_of=to_epoch(as_of, field="as_of"),
                 known_at=to_epoch(known_at, field="known_at"))
    if filters is None:
        return q
    if not isinstance(filters, Mapping):
        raise InvalidInput("filters must be an object", field="filters")
    unknown = set(filters) - FILTER_KEYS
    if unknown:
        raise InvalidInput(f"unknown filter(s) {sorted(unknown)}; known: {sorted(FILTER_KEYS)}",
                           field="filters")
    if filters.get("kind") is not None:
        kinds = filters["kind"]
        q.kinds = [kind(k) for k in ([kinds] if isinstance(kinds, str) else kinds)]
    if filters.get("tags") is not None:
        q.tags_any = list(tags(filters["tags"], Limits()))
    if filters.get("ids") is not None:
        ids = filters["ids"]
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            raise InvalidInput("filters.ids must be a list of ids", field="filters.ids")
        q.ids = [item_id(i) for i in ids]
    meta = filters.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise InvalidInput("filters.metadata must be an object", field="filters.metadata")
    for key, value in meta.items():
        if not isinstance(key, str) or not _META_KEY.match(key):
            raise InvalidInput(f"bad metadata filter key {key!r}", field="filters.metadata")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"metadata filter {key!r} must compare with a scalar",
                               field="filters.metadata")
        if (isinstance(value, int) and not -2**63 <= value < 2**63) or \
                (isinstance(value, float) and not math.isfinite(value)) or \
                (isinstance(value, str) and not _encodable(value)):
            raise InvalidInput(f"metadata filter {key!r} has an unstorable value",
                               field="filters.metadata")
    q.metadata = dict(meta)
    for name in ("event_after", "event_before", "created_after", "created_before"):
        if filters.get(name) is not None:
            setattr(q, name, to_epoch(filters[name], field=f"filters.{name}"))
    return q
