"""Governance state in the record store: principals, API keys, teams and grants.

They live in the vault's own store (tables of migration 0003, on SQLite and PostgreSQL
alike), so that every app host sharing a PostgreSQL database sees the same keys and
grants, and so that a change and its audit row are one transaction: a
:class:`~memvault.storage.base.GovernanceOp` goes into the same ``apply`` batch as the
:class:`~memvault.storage.base.AuditOp` that records it.

Both stores run the same named statements, written once here with ``:name``
placeholders (SQLite's own; PostgreSQL's ``%(name)s`` is substituted). Nothing but these
fixed statements ever reaches SQL: callers name a statement and pass values.

A ``check`` statement is a SELECT that must find a row, or the whole batch is rolled
back with :class:`~memvault.errors.Conflict` carrying the statement's message (how a key
for a principal name that is bound to another scope is refused inside the transaction
that would have stored it).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..errors import Conflict, InvalidInput

__all__ = ["WRITES", "CHECKS", "READS", "sql_for", "run_write", "run_read"]

_PRINCIPAL_COLS = "name, user_id, agent_id, admin, created_at"
_KEY_COLS = "key_id, principal, user_id, agent_id, name, secret_hash, created_at, revoked_at"
GRANT_COLS = ("grant_id, grantee, owner_user, owner_agent, cube_id, item_id, permission, "
              "redact, granted_by, created_at, valid_from, valid_to, revoked_by")
_VALID_AT = "valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)"

#: Changes, each one statement.
WRITES: dict[str, str] = {
    # the first key of a name binds it to a scope; later keys must match (see CHECKS)
    "principal_bind": f"INSERT INTO principals({_PRINCIPAL_COLS}) VALUES (:name, :user_id, "
                      ":agent_id, :admin, :created_at) ON CONFLICT (name) DO NOTHING",
    "principal_admin": "UPDATE principals SET admin = :admin WHERE name = :name",
    "key_insert": f"INSERT INTO api_keys({_KEY_COLS}) VALUES (:key_id, :principal, :user_id, "
                  ":agent_id, :name, :secret_hash, :created_at, NULL)",
    "key_revoke": "UPDATE api_keys SET revoked_at = :at WHERE key_id = :key_id AND "
                  "revoked_at IS NULL",
    "grant_insert": f"INSERT INTO grants({GRANT_COLS}) VALUES (:grant_id, :grantee, "
                    ":owner_user, :owner_agent, :cube_id, :item_id, :permission, :redact, "
                    ":granted_by, :created_at, :valid_from, :valid_to, NULL)",
    "grant_close": "UPDATE grants SET valid_to = :at, revoked_by = :actor WHERE "
                   "grant_id = :grant_id AND (valid_to IS NULL OR valid_to > :at)",
    "team_join": "INSERT INTO team_members(team, member, valid_from, valid_to, added_by, "
                 "removed_by) VALUES (:team, :member, :at, NULL, :actor, NULL)",
    "team_leave": "UPDATE team_members SET valid_to = :at, removed_by = :actor WHERE "
                  "team = :team AND member = :member AND valid_to IS NULL",
    # the one-time import of a <db>.keys.sqlite file keeps every row as it was; its
    # marker has no ON CONFLICT: a second importer's whole batch rolls back
    "import_marker": "INSERT INTO meta(key, value) VALUES ('governance_imported', :value)",
    "import_key": f"INSERT INTO api_keys({_KEY_COLS}) VALUES (:key_id, :principal, "
                  ":user_id, :agent_id, :name, :secret_hash, :created_at, :revoked_at) "
                  "ON CONFLICT (key_id) DO NOTHING",
    "import_grant": f"INSERT INTO grants({GRANT_COLS}) VALUES (:grant_id, :grantee, "
                    ":owner_user, :owner_agent, :cube_id, :item_id, :permission, :redact, "
                    ":granted_by, :created_at, :valid_from, :valid_to, :revoked_by) "
                    "ON CONFLICT (grant_id) DO NOTHING",
    "import_member": "INSERT INTO team_members(team, member, valid_from, valid_to, added_by, "
                     "removed_by) VALUES (:team, :member, :valid_from, :valid_to, :added_by, "
                     ":removed_by)",
}

#: Conditions checked inside the transaction: (SELECT that must find a row, message).
CHECKS: dict[str, tuple[str, str]] = {
    "principal_is": ("SELECT 1 FROM principals WHERE name = :name AND user_id = :user_id AND "
                     "((agent_id IS NULL AND CAST(:agent_id AS TEXT) IS NULL) OR "
                     "agent_id = :agent_id)",
                     "principal {name!r} already exists with another scope (keys of one "
                     "principal name share its user and agent, and what was shared with it)"),
}

#: Reads; each returns rows (tuples) in the order of its columns.
READS: dict[str, str] = {
    "key": "SELECT k.principal, k.user_id, k.agent_id, k.secret_hash, k.revoked_at, "
           "coalesce(p.admin, 0) FROM api_keys k LEFT JOIN principals p ON "
           "p.name = k.principal WHERE k.key_id = :key_id",
    "key_info": f"SELECT {_KEY_COLS} FROM api_keys WHERE key_id = :key_id",
    "keys": f"SELECT {_KEY_COLS} FROM api_keys ORDER BY created_at, key_id",
    "principal": f"SELECT {_PRINCIPAL_COLS} FROM principals WHERE name = :name",
    "principals": f"SELECT {_PRINCIPAL_COLS} FROM principals ORDER BY name",
    "grant": f"SELECT {GRANT_COLS} FROM grants WHERE grant_id = :grant_id",
    "grants": f"SELECT {GRANT_COLS} FROM grants ORDER BY created_at, grant_id",
    "grants_to": f"SELECT {GRANT_COLS} FROM grants WHERE grantee = :grantee "
                 "ORDER BY created_at, grant_id",
    "grants_of_owner": f"SELECT {GRANT_COLS} FROM grants WHERE owner_user = :owner_user "
                       "ORDER BY created_at, grant_id",
    "grants_valid_for": f"SELECT {GRANT_COLS} FROM grants WHERE {_VALID_AT} AND (grantee = "
                        f":name OR grantee IN (SELECT team FROM team_members WHERE "
                        f"member = :name AND {_VALID_AT})) ORDER BY created_at, grant_id",
    "teams_of": f"SELECT DISTINCT team FROM team_members WHERE member = :member AND "
                f"{_VALID_AT} ORDER BY team",
    "members": f"SELECT DISTINCT member FROM team_members WHERE team = :team AND "
               f"{_VALID_AT} ORDER BY member",
    "counts": "SELECT (SELECT count(*) FROM api_keys), (SELECT count(*) FROM grants), "
              "(SELECT count(*) FROM team_members)",
}

_NAMED = re.compile(r":([a-z_]+)\b")


def sql_for(text: str, dialect: str) -> str:
    """``text`` with ``:name`` placeholders in the dialect's style (SQLite: as is)."""
    return text if dialect == "sqlite" else _NAMED.sub(r"%(\1)s", text)


def _params(text: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Exactly the parameters ``text`` names (a missing one is a programming error)."""
    names = set(_NAMED.findall(text))
    missing = names - set(params)
    if missing:
        raise InvalidInput(f"governance statement needs {sorted(missing)}")
    return {n: params[n] for n in names}


def run_write(conn: Any, dialect: str, statement: str, params: Mapping[str, Any]) -> None:
    """Run one named write or check on ``conn`` (inside the caller's transaction)."""
    if statement in WRITES:
        text = WRITES[statement]
        conn.execute(sql_for(text, dialect), _params(text, params))
        return
    if statement in CHECKS:
        text, message = CHECKS[statement]
        if conn.execute(sql_for(text, dialect), _params(text, params)).fetchone() is None:
            raise Conflict(message.format(**params), **{k: v for k, v in params.items()
                                                          if k in ("name",)})
        return
    raise InvalidInput(f"unknown governance statement {statement!r}")


def run_read(conn: Any, dialect: str, query: str, params: Mapping[str, Any]) -> list[tuple]:
    if query not in READS:
        raise InvalidInput(f"unknown governance query {query!r}")
    text = READS[query]
    return [tuple(r) for r in conn.execute(sql_for(text, dialect), _params(text, params))]
