"""Where a principal may choose memory ids: its own namespace.

Memory ids are global (one store, one id space), so a caller-chosen id that anyone may
pick is an oracle: ``add(id=X)`` succeeding or answering "already in use" says whether
someone, somewhere, holds X. Through a scoped face (REST, MCP, the remote client, a
:class:`~memvault.governance.ScopedVault`) a chosen id must therefore name the scope the
memory is written in: ``<user>:<rest>``, or ``<user>:<agent>:<rest>`` for a memory of an
agent, where ``<rest>`` has no ``:``. An id outside that namespace is refused the same
way whether or not it is in use, and inside it only memories of that very scope live
(the operator aside, who writes with the unscoped Vault), all of them visible to the
caller. Ids the vault makes (UUIDv7) need none of this: nobody can aim at them.

A user or agent id that is not made of letters, digits, ``_`` and ``-`` (at most 64)
appears as ``.`` + 16 hex digits of its SHA-256, so that every scope has a prefix that is
itself a valid id and no two scopes share one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .. import _validate as check
from ..errors import PermissionDenied

__all__ = ["id_prefix", "chosen_id"]

_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_REST = re.compile(r"[A-Za-z0-9_.-]+")


def _part(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    return "." + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def id_prefix(user_id: str, agent_id: str | None = None) -> str:
    """The prefix of the ids a principal may choose for memories of this scope."""
    prefix = _part(user_id) + ":"
    return prefix + _part(agent_id) + ":" if agent_id is not None else prefix


def chosen_id(value: Any, user_id: str, agent_id: str | None) -> str:
    """``value`` checked as a caller-chosen id of a memory in scope (``user_id``,
    ``agent_id``): PermissionDenied unless it is in that scope's namespace (a well-formed
    id this key may not choose, used or not)."""
    check.item_id(value)
    prefix = id_prefix(user_id, agent_id)
    rest = value[len(prefix):]
    if not value.startswith(prefix) or not _REST.fullmatch(rest):
        raise PermissionDenied(f"an id chosen through an API key must be {prefix!r} followed by "
                           "letters, digits, '_', '.' or '-' (the memory's own scope; leave "
                           "the id out to get a new one)", field="id", prefix=prefix)
    return value
