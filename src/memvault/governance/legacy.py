"""The one-time import of ``<db>.keys.sqlite``, where memvault kept keys and grants before
they moved into the vault's record store.

Every key (its hash, scope, label, times, revocation), every grant and every team
membership is copied as it was, in one transaction of the vault's store together with an
audit row (``keys_import``, with the counts) and a marker in ``meta``; a principal name is
bound to the scope of its first key. The marker makes the import happen once, also when
several processes open the vault at the same moment (the second one's insert of the
marker conflicts and its whole batch rolls back). The old file is then renamed to
``<file>.imported`` (kept, never deleted). Nothing is unpickled: the file is read with
SQL only, read-only.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import Conflict, StorageError
from ..storage.base import AuditOp, GovernanceOp, RecordStore

__all__ = ["import_legacy_keys", "IMPORTED"]

#: The meta key recording that (and from where) the legacy file was imported.
IMPORTED = "governance_imported"


def _rows(conn: sqlite3.Connection, table: str, columns: str) -> list[tuple[Any, ...]]:
    try:
        return conn.execute(f"SELECT {columns} FROM {table}").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # an older file had keys only
            return []
        raise


def import_legacy_keys(store: RecordStore, path: Path) -> dict[str, int] | None:
    """Import the keys file at ``path`` into ``store`` unless that was done already;
    returns the counts imported, or ``None`` when there was nothing to do."""
    if not path.exists() or IMPORTED in store.meta():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"opening the old key file {path}: {exc}") from exc
    try:
        conn.execute("BEGIN")  # one snapshot of the three tables
        keys = _rows(conn, "api_keys", "key_id, principal, user_id, agent_id, name, "
                                       "secret_hash, created_at, revoked_at")
        grants = _rows(conn, "grants", "grant_id, grantee, owner_user, owner_agent, cube_id, "
                                       "item_id, permission, redact, granted_by, created_at, "
                                       "valid_from, valid_to, revoked_by")
        members = _rows(conn, "team_members", "team, member, valid_from, valid_to, added_by, "
                                              "removed_by")
    except sqlite3.Error as exc:
        raise StorageError(f"reading the old key file {path}: {exc}") from exc
    finally:
        conn.close()
    ops: list[Any] = [GovernanceOp("import_marker", {"value": str(path)})]
    bound: set[str] = set()
    for k in sorted(keys, key=lambda r: (r[6], r[0])):  # oldest key binds its principal
        if k[1] not in bound:
            bound.add(k[1])
            ops.append(GovernanceOp("principal_bind", {
                "name": k[1], "user_id": k[2], "agent_id": k[3], "admin": 0,
                "created_at": k[6]}))
        ops.append(GovernanceOp("import_key", dict(zip(
            ("key_id", "principal", "user_id", "agent_id", "name", "secret_hash",
             "created_at", "revoked_at"), k))))
    for g in grants:
        row = dict(zip(("grant_id", "grantee", "owner_user", "owner_agent", "cube_id",
                        "item_id", "permission", "redact", "granted_by", "created_at",
                        "valid_from", "valid_to", "revoked_by"), g))
        row["redact"] = json.dumps(json.loads(row["redact"] or "[]"))
        ops.append(GovernanceOp("import_grant", row))
    for m in members:
        ops.append(GovernanceOp("import_member", dict(zip(
            ("team", "member", "valid_from", "valid_to", "added_by", "removed_by"), m))))
    counts = {"keys": len(keys), "grants": len(grants), "team_members": len(members)}
    ops.append(AuditOp("keys_import", None, None, None, {"file": str(path), **counts}))
    try:
        store.apply(ops)
    except Conflict:
        if IMPORTED in store.meta():  # another process imported it meanwhile
            return None
        raise
    for suffix in ("", "-wal", "-shm"):  # the file and its WAL stay one database
        old = path.with_name(path.name + suffix)
        try:
            if old.exists():
                old.rename(path.with_name(path.name + ".imported" + suffix))
        except OSError:
            pass  # the marker already says it is imported; the file is only left in place
    return counts
