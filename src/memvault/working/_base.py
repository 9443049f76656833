"""What the task tree, the file store and the instruction stack share: one workspace of
one owner, deterministic item ids, and reads/writes through any :class:`VaultAPI`.

Every working object is a memory item of a :data:`~memvault.types.WORKING_KINDS` kind
whose id is derived from (owner, workspace, kind, key). A retried write after a crash
therefore lands on the same item: an update with the same content writes nothing, so
replaying a step is harmless. History, ``as_of``/``known_at``, audit, per-principal
isolation and cubes are the vault's own.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ..api import VaultAPI
from ..errors import Conflict, InvalidInput, NotFound
from ..types import MemoryItem

__all__ = ["Space", "count_tokens", "check_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PAGE = 500


def count_tokens(text: str) -> int:
    """Approximate LLM tokens: one per 4 characters (the usual BPE average for English
    and code). Budgets only need a stable, model-free estimate; no tokenizer is loaded."""
    return math.ceil(len(text) / 4)


def check_name(value: Any, *, field: str) -> str:
    """A workspace name or a task key: a short word (letters, digits, ``_.-``)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(f"{field} must be 1-64 letters, digits or _.- (starting with a "
                           f"letter or digit), got {value!r}", field=field)
    return value


@dataclass
class Space:
    """One workspace of one owner in a vault. ``user_id``/``agent_id`` are the owner's
    scope (a :class:`~memvault.governance.ScopedVault` pins them to its principal; pass
    the principal's own so ids do not depend on who holds the vault)."""

    vault: VaultAPI
    name: str = "default"
    user_id: str | None = None
    agent_id: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name, field="workspace")

    def item_id(self, kind: str, key: str) -> str:
        """Deterministic: the same owner, workspace and key always name the same item."""
        raw = json.dumps([self.user_id, self.agent_id, self.name, kind, key])
        digest = "wm-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]
        if self.user_id is None:
            return digest
        # in the owner's id namespace: a principal's face accepts chosen ids only there
        from ..governance.namespace import id_prefix

        return id_prefix(self.user_id, self.agent_id) + digest

    def find(self, kind: str, key: str, *, as_of: Any = None,
             known_at: Any = None) -> MemoryItem | None:
        """The item (any status), or None if it was never written (or not at that time)."""
        try:
            return self.vault.get(self.item_id(kind, key), as_of=as_of, known_at=known_at)
        except NotFound:
            return None

    def items(self, kind: str, **metadata: Any) -> Iterator[MemoryItem]:
        """Every active item of ``kind`` in this workspace (with these metadata values)."""
        filters = {"kind": kind, "metadata": {"ws": self.name, **metadata}}
        offset: int | None = 0
        while offset is not None:
            page = self.vault.list(user_id=self.user_id, agent_id=self.agent_id,
                                   filters=filters, limit=_PAGE, offset=offset,
                                   order="created_asc")
            yield from page.items
            offset = page.next_offset

    def write(self, kind: str, key: str, text: str, metadata: Mapping[str, Any], *,
              reason: str | None = None) -> MemoryItem:
        """Create the item or write a new version of it (restoring it if deleted). The
        same text and metadata again write nothing: a replayed step is a no-op."""
        meta = {**metadata, "ws": self.name}
        current = self.find(kind, key)
        if current is None:
            try:
                return self.vault.add(text, kind=kind, user_id=self.user_id,
                                      agent_id=self.agent_id, metadata=meta,
                                      id=self.item_id(kind, key))
            except Conflict:  # a concurrent writer created it first: update it instead
                current = self.find(kind, key)
                if current is None:
                    raise
        if current.status in ("deleted", "archived"):
            current = self.vault.restore(current.id)
        return self.vault.update(current.id, text, metadata=meta, reason=reason)

    def remove(self, kind: str, key: str, *, reason: str | None = None) -> MemoryItem | None:
        """Tombstone the item (kept in its history); None if there was none."""
        current = self.find(kind, key)
        if current is None or current.status == "deleted":
            return None
        return self.vault.delete(current.id, reason=reason)
