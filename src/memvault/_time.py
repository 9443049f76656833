"""Time parsing in one place: every face accepts the same spellings of a time."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

from .errors import InvalidInput

# Times outside this window are almost surely mistakes (ms-vs-s epochs, year 0).
_MIN = datetime(1900, 1, 1, tzinfo=timezone.utc).timestamp()
_MAX = datetime(2200, 1, 1, tzinfo=timezone.utc).timestamp()


def parse_time(value: object, *, field: str = "time") -> datetime:
    """Accept a datetime, a date, an ISO-8601 string or epoch seconds; return aware UTC."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    elif isinstance(value, bool):
        raise InvalidInput(f"{field} must be a time, not a boolean", field=field)
    elif isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidInput(f"{field} is not a finite number", field=field)
        if not _MIN <= value <= _MAX:
            raise InvalidInput(f"{field}={value} is outside 1900..2200 (epoch seconds?)",
                               field=field)
        dt = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{field}={value!r} is not an ISO-8601 time", field=field) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
    else:
        raise InvalidInput(f"{field} must be a datetime, ISO string or epoch seconds, "
                           f"not {type(value).__name__}", field=field)
    try:
        dt = dt.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59-23:59
        raise InvalidInput(f"{field} is outside 1900..2200", field=field) from None
    if not _MIN <= dt.timestamp() <= _MAX:
        raise InvalidInput(f"{field}={dt.isoformat()} is outside 1900..2200", field=field)
    return dt


def to_epoch(value: object | None, *, field: str = "time") -> float | None:
    return None if value is None else parse_time(value, field=field).timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)
