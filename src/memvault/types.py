"""The data model: what a memory is, what a search returns.

Times are timezone-aware UTC datetimes in the API and float epoch seconds in storage;
conversion happens only in the store, so callers never see two representations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Literal

Status = Literal["active", "archived", "deleted", "quarantined"]
STATUSES: tuple[str, ...] = ("active", "archived", "deleted", "quarantined")

#: Kinds we know; any short lowercase word is accepted so applications can add their own.
KNOWN_KINDS: tuple[str, ...] = (
    "turn", "fact", "summary", "preference", "note", "event", "profile",
)

SCOPE_FIELDS: tuple[str, ...] = ("user_id", "agent_id", "session_id", "cube_id")

#: Kinds of working memory (:mod:`memvault.working`): an agent's task tree, files and
#: instruction stack. They are versioned items like any memory, but they are what the
#: agent is doing, not what was said: ``search`` leaves them out unless ``filters.kind``
#: asks for them, statements in them never supersede facts, and forgetting skips them.
WORKING_KINDS: tuple[str, ...] = ("wm_task", "wm_file", "wm_frame")


@dataclass(frozen=True, slots=True)
class Link:
    target: str
    kind: str = "related"
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One version of one plaintext memory.

    Two times, kept apart (bi-temporal, as Zep/Graphiti do):

    * **transaction time**: ``valid_from``/``valid_to`` bound when this version was the
      memory's current record in the vault. An update closes the old version instead of
      overwriting it; ``known_at`` reads by this time ("what did the vault know then").
    * **valid time**: ``valid_at``/``invalid_at`` bound when what the version states held
      in the world: from the message timestamp, an explicit ``event_time`` or a date the
      text states; ``invalid_at`` is set when a later statement about the same subject and
      attribute supersedes it (a new version, never a deletion). ``as_of`` reads by this
      time ("what was true then"); ``invalid_at`` None means it still holds.
    """

    id: str
    text: str
    kind: str = "note"
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    cube_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    event_time: datetime | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    version: int = 1
    status: Status = "active"
    importance: float = 0.5
    expires_at: datetime | None = None
    access_count: int = 0
    last_accessed_at: datetime | None = None
    links: tuple[Link, ...] = ()
    valid_at: datetime | None = None
    invalid_at: datetime | None = None

    @property
    def scope(self) -> dict[str, str | None]:
        return {f: getattr(self, f) for f in SCOPE_FIELDS}

    @property
    def is_current(self) -> bool:
        """The vault's current record of the memory (transaction time)."""
        return self.valid_to is None

    def holds_at(self, when: datetime) -> bool:
        """Did what this version states hold in the world at ``when`` (valid time)?"""
        start = self.valid_at or self.valid_from
        return ((start is None or start <= when)
                and (self.invalid_at is None or when < self.invalid_at))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO-8601 times); the wire format of every face."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif f.name == "tags":
                value = list(value)
            elif f.name == "links":
                value = [dataclasses.asdict(link) for link in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MemoryItem":
        from ._time import parse_time

        kwargs = dict(data)
        for name in ("created_at", "event_time", "valid_from", "valid_to", "expires_at",
                     "last_accessed_at", "valid_at", "invalid_at"):
            if kwargs.get(name) is not None:
                kwargs[name] = parse_time(kwargs[name], field=name)
        kwargs["tags"] = tuple(kwargs.get("tags") or ())
        kwargs["links"] = tuple(Link(**link) for link in kwargs.get("links") or ())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in kwargs.items() if k in known})


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A memory with why it was found: fused score plus the per-retriever evidence."""

    item: MemoryItem
    score: float
    rank: int
    sources: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": self.score, "sources": dict(self.sources),
                "item": self.item.to_dict()}


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a listing; pass ``next_offset`` back to get the next one.

    Iterating a page (``for item in vault.list(...)``) yields its items; ``total`` counts
    the items of every page."""

    items: list[MemoryItem]
    total: int
    offset: int
    next_offset: int | None

    def __iter__(self) -> Iterator[MemoryItem]:
        return iter(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "total": self.total,
                "offset": self.offset, "next_offset": self.next_offset}


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str | None
    action: str
    item_id: str | None
    version: int | None
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["at"] = self.at.isoformat()
        return d


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
