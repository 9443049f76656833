"""Grants and teams: who has been given which memories, and when.

Both live in the governance database beside the API keys (``<db>.keys.sqlite``, reached
through :meth:`KeyStore.db`), so a principal, its keys, its teams and what was shared
with it are in one place the operator backs up with the vault.

Nothing here is ever deleted. Revoking a grant closes it (``valid_to``), leaving a team
closes the membership: the database is a history of who could see what when.

Every change is also an event in the vault's own audit log (actions ``share``,
``unshare``, ``team_join``, ``team_leave``), written *before* the change itself: the two
databases cannot share one transaction, and a crash between the two writes then leaves an
audited change that did not happen (harmless) rather than a change nobody audited.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Any, Sequence

from .. import _validate as check
from .._time import from_epoch, parse_time
from ..errors import InvalidInput, NotFound
from ..storage.base import AuditOp
from ..types import utcnow
from ..vault import Vault
from .acl import PERMISSIONS, REDACTABLE, Grant, Policy
from .principals import KeyStore, Principal, principal_name

__all__ = ["GrantStore"]

_GRANT_ID = re.compile(r"^g_[0-9a-f]{16}$")
_COLUMNS = ("grant_id, grantee, owner_user, owner_agent, cube_id, item_id, permission, "
            "redact, granted_by, created_at, valid_from, valid_to, revoked_by")
_VALID_AT = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"


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
    """Grants and team memberships in the governance database of ``keys``."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    # -- reading -----------------------------------------------------------------------
    def get(self, grant_id: Any) -> Grant:
        if not isinstance(grant_id, str) or not _GRANT_ID.match(grant_id):
            raise InvalidInput(f"not a grant id: {grant_id!r}", field="grant_id")
        with self.keys.db(write=False, what="reading grants") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM grants WHERE grant_id=?",
                               (grant_id,)).fetchone() if conn else None
        if row is None:
            raise NotFound(f"no grant {grant_id}", grant_id=grant_id)
        return _row(row)

    def list(self, *, owner_user_id: str | None = None, grantees: Sequence[str] | None = None,
             item_id: str | None = None, cube_id: str | None = None,
             include_revoked: bool = False, at: datetime | None = None) -> list[Grant]:
        """Grants matching every given filter, oldest first. Without ``include_revoked``
        only those valid at ``at`` (default now) or starting later."""
        sql, params = f"SELECT {_COLUMNS} FROM grants WHERE 1=1", []
        for column, value in (("owner_user", owner_user_id), ("item_id", item_id),
                              ("cube_id", cube_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if grantees is not None:
            sql += f" AND grantee IN ({','.join('?' * len(grantees))})"
            params += list(grantees)
        if not include_revoked:
            sql += " AND (valid_to IS NULL OR valid_to > ?)"
            params.append((at or utcnow()).timestamp())
        with self.keys.db(write=False, what="reading grants") as conn:
            rows = conn.execute(sql + " ORDER BY created_at, grant_id", params).fetchall() \
                if conn else []
        return [_row(r) for r in rows]

    def teams_of(self, member: str, at: datetime | None = None) -> list[str]:
        """The teams ``member`` belongs to at ``at`` (default now), as ``team:<name>``."""
        t = (at or utcnow()).timestamp()
        with self.keys.db(write=False, what="reading teams") as conn:
            rows = conn.execute(f"SELECT DISTINCT team FROM team_members WHERE member=? AND "
                                f"{_VALID_AT} ORDER BY team", (member, t, t)).fetchall() \
                if conn else []
        return [r[0] for r in rows]

    def members(self, team: str, at: datetime | None = None) -> list[str]:
        team = principal_name(team, field="team", team=True)
        t = (at or utcnow()).timestamp()
        with self.keys.db(write=False, what="reading teams") as conn:
            rows = conn.execute(f"SELECT DISTINCT member FROM team_members WHERE team=? AND "
                                f"{_VALID_AT} ORDER BY member", (team, t, t)).fetchall() \
                if conn else []
        return [r[0] for r in rows]

    def valid_for(self, name: str, at: datetime) -> list[Grant]:
        """Grants to ``name`` or to a team it is in, valid at ``at``."""
        t = at.timestamp()
        with self.keys.db(write=False, what="reading grants") as conn:
            if conn is None:
                return []
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM grants WHERE {_VALID_AT} AND (grantee = ? OR "
                f"grantee IN (SELECT team FROM team_members WHERE member = ? AND {_VALID_AT}))",
                (t, t, name, name, t, t)).fetchall()
        return [_row(r) for r in rows]

    def policy(self, principal: Principal, at: datetime | None = None) -> Policy:
        """The decisions for ``principal`` at ``at`` (default: now)."""
        at = at or utcnow()
        return Policy(principal, self.valid_for(principal.name, at), at)

    # -- changing (each change audited in ``vault`` first) -------------------------------
    def share(self, vault: Vault, *, grantee: str, owner_user_id: str,
              owner_agent_id: str | None = None, item_id: str | None = None,
              cube_id: str | None = None, permission: str = "read",
              redact: Sequence[str] = (), valid_from: Any = None, valid_to: Any = None,
              actor: str | None = None) -> Grant:
        """Record a grant (audited as ``share``). The caller has checked that ``actor``
        may share these memories."""
        grant = self._prepare(grantee, owner_user_id, owner_agent_id, item_id, cube_id,
                              permission, redact, valid_from, valid_to, actor)
        vault.store.apply([AuditOp("share", grant.item_id, None, actor, _details(grant))])
        with self.keys.db(write=True, what="recording a grant") as conn:
            conn.execute(f"INSERT INTO grants({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (grant.grant_id, grant.grantee, grant.owner_user_id,
                          grant.owner_agent_id, grant.cube_id, grant.item_id, grant.permission,
                          json.dumps(list(grant.redact)), grant.granted_by,
                          grant.created_at.timestamp(), grant.valid_from.timestamp(),
                          grant.valid_to.timestamp() if grant.valid_to else None, None))
        return grant

    def unshare(self, vault: Vault, grant_id: str, *, actor: str | None = None) -> Grant:
        """Close a grant now (audited as ``unshare``); idempotent: closing a closed grant
        changes (and audits) nothing."""
        grant = self.get(grant_id)
        now = utcnow()
        if grant.valid_to is not None and grant.valid_to <= now:
            return grant
        vault.store.apply([AuditOp("unshare", grant.item_id, None, actor,
                                   {**_details(grant), "valid_to": now.isoformat()})])
        with self.keys.db(write=True, what="revoking a grant") as conn:
            conn.execute("UPDATE grants SET valid_to = min(coalesce(valid_to, ?), ?), "
                         "revoked_by = ? WHERE grant_id = ?",
                         (now.timestamp(), now.timestamp(), actor, grant_id))
        return self.get(grant_id)

    def join(self, vault: Vault, team: str, member: str, *, actor: str | None = None) -> bool:
        """Put ``member`` into ``team`` (audited as ``team_join``); False if already in."""
        team = principal_name(team, field="team", team=True)
        if not team.startswith("team:"):
            team = "team:" + team
        member = principal_name(member, field="member")
        if team in self.teams_of(member):
            return False
        now = utcnow().timestamp()
        vault.store.apply([AuditOp("team_join", None, None, actor,
                                   {"team": team, "member": member})])
        with self.keys.db(write=True, what="joining a team") as conn:
            conn.execute("INSERT INTO team_members(team, member, valid_from, added_by) "
                         "VALUES (?,?,?,?)", (team, member, now, actor))
        return True

    def leave(self, vault: Vault, team: str, member: str, *, actor: str | None = None) -> bool:
        """Take ``member`` out of ``team`` (audited as ``team_leave``); False if not in."""
        team = principal_name(team, field="team", team=True)
        if not team.startswith("team:"):
            team = "team:" + team
        member = principal_name(member, field="member")
        if team not in self.teams_of(member):
            return False
        now = utcnow().timestamp()
        vault.store.apply([AuditOp("team_leave", None, None, actor,
                                   {"team": team, "member": member})])
        with self.keys.db(write=True, what="leaving a team") as conn:
            conn.execute("UPDATE team_members SET valid_to=?, removed_by=? WHERE team=? AND "
                         "member=? AND valid_to IS NULL", (now, actor, team, member))
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
