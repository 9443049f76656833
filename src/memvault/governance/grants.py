"""Grants and teams: who has been given which memories, and when.

Both live in the vault's record store beside the API keys (tables of migration 0003;
see :mod:`memvault.storage.governance`), so a principal, its keys, its teams and what was
shared with it are in one place, backed up (and shared by every app host) with the vault.

Nothing here is ever deleted. Revoking a grant closes it (``valid_to``), leaving a team
closes the membership: the tables are a history of who could see what when.

Every change is one transaction with its event in the vault's audit log (actions
``share``, ``unshare``, ``team_join``, ``team_leave``): there is no audited change that
did not happen, and no change that was not audited.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Any, Sequence

from .. import _validate as check
from .._time import from_epoch, parse_time
from ..errors import ConfigurationError, InvalidInput, NotFound
from ..storage.base import AuditOp, GovernanceOp
from ..types import utcnow
from ..vault import Vault
from .acl import PERMISSIONS, REDACTABLE, Grant, Policy
from .principals import KeyStore, Principal, principal_name

__all__ = ["GrantStore"]

_GRANT_ID = re.compile(r"^g_[0-9a-f]{16}\Z")


def _row(r: tuple[Any, ...]) -> Grant:
    return Grant(grant_id=r[0], grantee=r[1], owner_user_id=r[2], owner_agent_id=r[3],
                 cube_id=r[4], item_id=r[5], permission=r[6], redact=tuple(json.loads(r[7])),
                 granted_by=r[8], created_at=from_epoch(r[9]),  # type: ignore[arg-type]
                 valid_from=from_epoch(r[10]),  # type: ignore[arg-type]
                 valid_to=from_epoch(r[11]), revoked_by=r[12])


def _details(grant: Grant) -> dict[str, Any]:
    d = grant.to_dict()
    return {k: d[k] for k in ("grant_id", "grantee", "resource", "owner_user_id",
                              "owner_agent_id", "cube_id", "item_id", "permission", "redact",
                              "valid_from", "valid_to") if d[k] not in (None, [])}


class GrantStore:
    """Grants and team memberships of the vault whose keys are ``keys``."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def _read(self, query: str, **params: Any) -> list[tuple]:
        return self.keys._read(query, **params)

    def _apply(self, vault: Vault, ops: list[Any]) -> None:
        """One transaction of ``vault``'s store, which must be the keys' store (or the
        same database opened twice): grants and audit rows are never split."""
        if vault.store is not self.keys.store and \
                vault.store.meta().get("vault_id") != self.keys.store.meta().get("vault_id"):
            raise ConfigurationError("this grant store belongs to another vault")
        vault.store.apply(ops)

    # -- reading -----------------------------------------------------------------------
    def get(self, grant_id: Any) -> Grant:
        if not isinstance(grant_id, str) or not _GRANT_ID.match(grant_id):
            raise InvalidInput(f"not a grant id: {grant_id!r}", field="grant_id")
        rows = self._read("grant", grant_id=grant_id)
        if not rows:
            raise NotFound(f"no grant {grant_id}", grant_id=grant_id)
        return _row(rows[0])

    def list(self, *, owner_user_id: str | None = None, grantees: Sequence[str] | None = None,
             item_id: str | None = None, cube_id: str | None = None,
             include_revoked: bool = False, at: datetime | None = None) -> list[Grant]:
        """Grants matching every given filter, oldest first. Without ``include_revoked``
        only those valid at ``at`` (default now) or starting later."""
        if grantees is not None:
            rows = [r for g in dict.fromkeys(grantees) for r in self._read("grants_to", grantee=g)]
        elif owner_user_id is not None:
            rows = self._read("grants_of_owner", owner_user=owner_user_id)
        else:
            rows = self._read("grants")
        t = (at or utcnow()).timestamp()
        found = [_row(r) for r in rows
                 if (owner_user_id is None or r[2] == owner_user_id)
                 and (item_id is None or r[5] == item_id)
                 and (cube_id is None or r[4] == cube_id)
                 and (include_revoked or r[11] is None or r[11] > t)]
        return sorted(found, key=lambda g: (g.created_at, g.grant_id))

    def teams_of(self, member: str, at: datetime | None = None) -> list[str]:
        """The teams ``member`` belongs to at ``at`` (default now), as ``team:<name>``."""
        t = (at or utcnow()).timestamp()
        return [r[0] for r in self._read("teams_of", member=member, at=t)]

    def members(self, team: str, at: datetime | None = None) -> list[str]:
        team = principal_name(team, field="team", team=True)
        t = (at or utcnow()).timestamp()
        return [r[0] for r in self._read("members", team=team, at=t)]

    def valid_for(self, name: str, at: datetime) -> list[Grant]:
        """Grants to ``name`` or to a team it is in, valid at ``at``."""
        return [_row(r) for r in self._read("grants_valid_for", name=name, at=at.timestamp())]

    def policy(self, principal: Principal, at: datetime | None = None) -> Policy:
        """The decisions for ``principal`` at ``at`` (default: now)."""
        at = at or utcnow()
        return Policy(principal, self.valid_for(principal.name, at), at)

    # -- changing (each change one transaction with its audit row) -----------------------
    def share(self, vault: Vault, *, grantee: str, owner_user_id: str,
              owner_agent_id: str | None = None, item_id: str | None = None,
              cube_id: str | None = None, permission: str = "read",
              redact: Sequence[str] = (), valid_from: Any = None, valid_to: Any = None,
              actor: str | None = None) -> Grant:
        """Record a grant (audited as ``share``). The caller has checked that ``actor``
        may share these memories."""
        grant = self._prepare(grantee, owner_user_id, owner_agent_id, item_id, cube_id,
                              permission, redact, valid_from, valid_to, actor)
        self._apply(vault, [
            AuditOp("share", grant.item_id, None, actor, _details(grant)),
            GovernanceOp("grant_insert", {
                "grant_id": grant.grant_id, "grantee": grant.grantee,
                "owner_user": grant.owner_user_id, "owner_agent": grant.owner_agent_id,
                "cube_id": grant.cube_id, "item_id": grant.item_id,
                "permission": grant.permission, "redact": json.dumps(list(grant.redact)),
                "granted_by": grant.granted_by, "created_at": grant.created_at.timestamp(),
                "valid_from": grant.valid_from.timestamp(),
                "valid_to": grant.valid_to.timestamp() if grant.valid_to else None})])
        return grant

    def unshare(self, vault: Vault, grant_id: str, *, actor: str | None = None) -> Grant:
        """Close a grant now (audited as ``unshare``); idempotent: closing a closed grant
        changes (and audits) nothing."""
        grant = self.get(grant_id)
        now = utcnow()
        if grant.valid_to is not None and grant.valid_to <= now:
            return grant
        self._apply(vault, [
            AuditOp("unshare", grant.item_id, None, actor,
                    {**_details(grant), "valid_to": now.isoformat()}),
            GovernanceOp("grant_close", {"grant_id": grant_id, "at": now.timestamp(),
                                         "actor": actor})])
        return self.get(grant_id)

    def join(self, vault: Vault, team: str, member: str, *, actor: str | None = None) -> bool:
        """Put ``member`` into ``team`` (audited as ``team_join``); False if already in."""
        team, member = _team(team), principal_name(member, field="member")
        if team in self.teams_of(member):
            return False
        self._apply(vault, [
            AuditOp("team_join", None, None, actor, {"team": team, "member": member}),
            GovernanceOp("team_join", {"team": team, "member": member,
                                       "at": utcnow().timestamp(), "actor": actor})])
        return True

    def leave(self, vault: Vault, team: str, member: str, *, actor: str | None = None) -> bool:
        """Take ``member`` out of ``team`` (audited as ``team_leave``); False if not in."""
        team, member = _team(team), principal_name(member, field="member")
        if team not in self.teams_of(member):
            return False
        self._apply(vault, [
            AuditOp("team_leave", None, None, actor, {"team": team, "member": member}),
            GovernanceOp("team_leave", {"team": team, "member": member,
                                        "at": utcnow().timestamp(), "actor": actor})])
        return True

    def _prepare(self, grantee: Any, owner_user_id: Any, owner_agent_id: Any, item_id: Any,
                 cube_id: Any, permission: Any, redact: Any, valid_from: Any, valid_to: Any,
                 actor: str | None) -> Grant:
        """A validated, not yet stored grant."""
        grantee = principal_name(grantee, field="grantee", team=True)
        scope = check.scope({"user_id": owner_user_id, "agent_id": owner_agent_id,
                             "cube_id": cube_id})
        if "user_id" not in scope:
            raise InvalidInput("a grant needs the owner's user_id", field="owner_user_id")
        if item_id is not None:
            check.item_id(item_id)
        if permission not in PERMISSIONS:
            raise InvalidInput(f"permission must be one of {PERMISSIONS}", field="permission")
        if isinstance(redact, str) or not isinstance(redact, Sequence) or \
                any(f not in REDACTABLE for f in redact):
            raise InvalidInput(f"redact must be a list of fields among {sorted(REDACTABLE)}",
                               field="redact")
        now = utcnow()
        start = parse_time(valid_from, field="valid_from") if valid_from is not None else now
        end = parse_time(valid_to, field="valid_to") if valid_to is not None else None
        if end is not None and end <= start:
            raise InvalidInput("valid_to must be after valid_from", field="valid_to")
        return Grant(grant_id="g_" + secrets.token_hex(8), grantee=grantee,
                     owner_user_id=scope["user_id"], owner_agent_id=scope.get("agent_id"),
                     cube_id=scope.get("cube_id"), item_id=item_id, permission=permission,
                     redact=tuple(dict.fromkeys(redact)), granted_by=actor, created_at=now,
                     valid_from=start, valid_to=end)


def _team(name: str) -> str:
    team = principal_name(name, field="team", team=True)
    return team if team.startswith("team:") else "team:" + team
