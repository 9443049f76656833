"""Access decisions: may this principal see (or change) this memory, right now, and how much
of it?

Pure functions over data, no I/O: :mod:`~memvault.governance.grants` loads the grants
valid at the moment of a call and :class:`~memvault.governance.scope.ScopedVault` asks
:class:`Policy` about each memory it is about to return or change.

The rules (see ``docs/governance.md``):

* A principal owns the memories in its key's scope (its ``user_id``, and its ``agent_id``
  if the key has one). Owners see everything and may do anything, purge included.
* A :class:`Grant` gives a grantee (a principal name, or ``team:<name>`` for every member
  of a team) ``read`` or ``write`` (write includes read) on memories of one owner: one
  item, one cube of the owner's, or all of the owner's memory. Write allows update,
  delete, archive, restore and link; purging and re-sharing stay with the owner.
* The decision uses only the memory's scope (``user_id``, ``agent_id``, ``cube_id``,
  ``id``), which never changes across versions (the immutable provenance of where it was
  written), and the grants valid at the moment of the read: a grant is valid from
  ``valid_from`` until ``valid_to``, set when it is revoked. Reading an old version
  (``as_of``, history) is decided by today's grants, not by the grants of back then.
* A grant may hide fields (``redact``). When several grants cover a memory a field is
  hidden only if every one of them hides it; write follows the most generous grant.
* A quarantined memory is shown to its owner only (for review), never through a grant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from .._time import parse_time
from ..types import MemoryItem
from .principals import Principal

__all__ = ["Grant", "Access", "Policy", "REDACTABLE", "PERMISSIONS", "redacted", "owns"]

PERMISSIONS = ("read", "write")
#: Fields a grant can hide, and what the grantee sees instead.
REDACTABLE: Mapping[str, Any] = {"metadata": {}, "provenance": {}, "tags": (),
                                 "session_id": None, "agent_id": None, "event_time": None,
                                 "links": ()}


@dataclass(frozen=True, slots=True)
class Grant:
    """One sharing decision: ``grantee`` may ``permission`` the owner's memories named by
    ``item_id`` / ``cube_id`` (neither: all of them) from ``valid_from`` to ``valid_to``."""

    grant_id: str
    grantee: str
    owner_user_id: str
    owner_agent_id: str | None
    cube_id: str | None
    item_id: str | None
    permission: str
    redact: tuple[str, ...]
    granted_by: str | None
    created_at: datetime
    valid_from: datetime
    valid_to: datetime | None = None
    revoked_by: str | None = None

    @property
    def resource(self) -> str:
        """``item``, ``cube`` or ``user`` (all of the owner's memory)."""
        return "item" if self.item_id else "cube" if self.cube_id else "user"

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def covers(self, item: MemoryItem) -> bool:
        """Whether ``item`` is one of the memories this grant names (validity aside)."""
        return (item.user_id == self.owner_user_id
                and (self.owner_agent_id is None or item.agent_id == self.owner_agent_id)
                and (self.cube_id is None or item.cube_id == self.cube_id)
                and (self.item_id is None or item.id == self.item_id))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["redact"] = list(self.redact)
        d["resource"] = self.resource
        for f in ("created_at", "valid_from", "valid_to"):
            d[f] = d[f].isoformat() if d[f] is not None else None
        return d

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Grant":
        kwargs = {f.name: doc.get(f.name) for f in dataclasses.fields(cls)}
        kwargs["redact"] = tuple(kwargs["redact"] or ())
        for f in ("created_at", "valid_from", "valid_to"):
            if kwargs[f] is not None:
                kwargs[f] = parse_time(kwargs[f], field=f)
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Access:
    """What a principal may do with one memory."""

    owner: bool
    write: bool
    redact: frozenset[str] = frozenset()


_OWNER = Access(owner=True, write=True)


def owns(principal: Principal, item: MemoryItem) -> bool:
    """Whether ``item`` is in ``principal``'s own scope."""
    return item.user_id == principal.user_id and (
        principal.agent_id is None or item.agent_id == principal.agent_id)


class Policy:
    """The decisions of one principal at one moment: its scope plus the grants (to it or
    its teams) valid then. Built once per call, so one call sees one consistent policy."""

    def __init__(self, principal: Principal, grants: Iterable[Grant], at: datetime) -> None:
        self.principal = principal
        self.at = at
        self.grants: tuple[Grant, ...] = tuple(g for g in grants if g.valid_at(at))

    @property
    def shares(self) -> bool:
        """Whether anything beyond the principal's own scope is visible."""
        return bool(self.grants)

    def access(self, item: MemoryItem) -> Access | None:
        """``None`` if the principal may not see ``item`` at all. A quarantined memory
        (or version) is its owner's to review: no grant shows it to anyone else."""
        if owns(self.principal, item):
            return _OWNER
        if item.status == "quarantined":
            return None
        matching = [g for g in self.grants if g.covers(item)]
        if not matching:
            return None
        hidden = frozenset(matching[0].redact).intersection(*(g.redact for g in matching[1:]))
        return Access(owner=False, write=any(g.permission == "write" for g in matching),
                      redact=hidden)

    def view(self, item: MemoryItem) -> MemoryItem | None:
        """``item`` as the principal may see it (redacted), or ``None``."""
        access = self.access(item)
        if access is None:
            return None
        return redacted(item, access.redact)

    def views(self, items: Sequence[MemoryItem]) -> list[MemoryItem]:
        """The visible ones among ``items``, redacted, in order."""
        out = []
        for item in items:
            seen = self.view(item)
            if seen is not None:
                out.append(seen)
        return out


def redacted(item: MemoryItem, fields: Iterable[str]) -> MemoryItem:
    """``item`` with ``fields`` replaced by their empty value."""
    changes = {f: REDACTABLE[f] for f in fields}
    return dataclasses.replace(item, **changes) if changes else item
