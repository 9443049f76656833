"""Sharing, as a principal: the ``share``, ``unshare`` and ``grants`` methods of
:class:`~memvault.governance.scope.ScopedVault`.

Only owners share (a memory in their scope, one of their cubes, or everything they own),
and only the owner who gave a grant revokes it. The grant store audits every change.
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import _validate as check
from ..errors import InvalidInput, NotFound, PermissionDenied
from ..types import MemoryItem
from ..vault import Vault
from .acl import Grant
from .grants import GrantStore
from .principals import Principal

__all__ = ["Sharing"]


class Sharing:
    """Mixed into ScopedVault, which provides the attributes below."""

    vault: Vault
    principal: Principal
    grant_store: GrantStore | None

    def _require(self, id: Any) -> MemoryItem:
        raise NotImplementedError

    def _grant_store(self) -> GrantStore:
        if self.grant_store is None:
            raise PermissionDenied("sharing is not enabled for this vault (no grant store)")
        return self.grant_store

    def share(self, id: str | None = None, *, to: str, cube_id: str | None = None,
              everything: bool = False, write: bool = False, redact: Sequence[str] = (),
              valid_from: Any = None, valid_to: Any = None) -> Grant:
        """Share one of the principal's memories (``id``), one of its cubes (``cube_id``)
        or ``everything`` it owns with ``to`` (a principal or ``team:<name>``)."""
        store = self._grant_store()
        if sum((id is not None, cube_id is not None, everything is True)) != 1:
            raise InvalidInput("share exactly one of: a memory id, a cube_id, everything")
        if id is not None:
            self._require(id)
        return store.share(self.vault, grantee=to, owner_user_id=self.principal.user_id,
                           owner_agent_id=self.principal.agent_id, item_id=id,
                           cube_id=cube_id, permission="write" if write else "read",
                           redact=redact, valid_from=valid_from, valid_to=valid_to,
                           actor=self.principal.name)

    def unshare(self, grant_id: str) -> Grant:
        """Revoke a grant the principal gave (it stays on record, closed)."""
        store = self._grant_store()
        grant = store.get(grant_id)
        if not self._gave(grant):
            raise NotFound(f"no grant {grant_id}", grant_id=grant_id)
        return store.unshare(self.vault, grant_id, actor=self.principal.name)

    def grants(self, *, item_id: str | None = None, cube_id: str | None = None,
               include_revoked: bool = False) -> list[Grant]:
        """Grants the principal gave, and those given to it or its teams."""
        store = self.grant_store
        if store is None:
            return []
        if item_id is not None:
            check.item_id(item_id)
        p = self.principal
        names = [p.name, *store.teams_of(p.name)]
        found = {g.grant_id: g for g in store.list(
            owner_user_id=p.user_id, item_id=item_id, cube_id=cube_id,
            include_revoked=include_revoked) if self._gave(g)}
        found.update((g.grant_id, g) for g in store.list(
            grantees=names, item_id=item_id, cube_id=cube_id, include_revoked=include_revoked))
        return sorted(found.values(), key=lambda g: (g.created_at, g.grant_id))

    def _gave(self, grant: Grant) -> bool:
        p = self.principal
        return grant.owner_user_id == p.user_id and (
            p.agent_id is None or grant.owner_agent_id == p.agent_id)

