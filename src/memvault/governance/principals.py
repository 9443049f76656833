"""Principals and their API keys.

A principal is whoever holds a key: a person, an agent, a service. Each key is bound to
one principal and one scope (a ``user_id`` and, optionally, an ``agent_id``); the
:class:`~memvault.governance.scope.ScopedVault` confines every call made with it.

A token looks like ``mv_<key id>_<secret>``: 12 hex characters that name the key, then
32 random bytes (url-safe base64). It is shown once, when created. Only its SHA-256 is
stored; :meth:`KeyStore.verify` looks the key up by its id and compares hashes with
:func:`hmac.compare_digest`.

Keys live in a small SQLite file beside the vault (``<db>.keys.sqlite``, WAL, one
transaction per write), created on the first :meth:`KeyStore.create`. The interface is
deliberately small (create, verify, revoke, list) so the table can move into the record
store's migrations later without changing callers.

The same file is the governance database: it also holds the sharing grants and team
memberships of :mod:`memvault.governance.grants`, which reach it through
:meth:`KeyStore.db`. Principal names starting with ``team:`` are reserved for teams.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from .._time import from_epoch
from ..errors import InvalidInput, NotFound, PayloadTooLarge, StorageError, Unauthorized
from ..storage.sqlite import immediate

__all__ = ["Principal", "KeyInfo", "KeyStore", "Unauthorized", "PayloadTooLarge",
           "keys_path", "principal_name"]

_TOKEN = re.compile(r"^mv_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9_.@:+-]{1,128}$")
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    agent_id    TEXT,
    name        TEXT,
    secret_hash TEXT NOT NULL,
    created_at  REAL NOT NULL,
    revoked_at  REAL
)""", """
CREATE TABLE IF NOT EXISTS grants (
    grant_id    TEXT PRIMARY KEY,
    grantee     TEXT NOT NULL,      -- a principal name, or team:<name>
    owner_user  TEXT NOT NULL,      -- the items it covers belong to this user ...
    owner_agent TEXT,               -- ... (and this agent, if set)
    cube_id     TEXT,               -- a whole cube of the owner's, or
    item_id     TEXT,               -- one item; neither: all of the owner's memory
    permission  TEXT NOT NULL,      -- read | write
    redact      TEXT NOT NULL,      -- JSON list of fields hidden from the grantee
    granted_by  TEXT,
    created_at  REAL NOT NULL,
    valid_from  REAL NOT NULL,
    valid_to    REAL,               -- set by a revocation: grants are closed, never deleted
    revoked_by  TEXT
)""", "CREATE INDEX IF NOT EXISTS grants_grantee ON grants(grantee, valid_to)",
    "CREATE INDEX IF NOT EXISTS grants_owner ON grants(owner_user)", """
CREATE TABLE IF NOT EXISTS team_members (
    team        TEXT NOT NULL,
    member      TEXT NOT NULL,
    valid_from  REAL NOT NULL,
    valid_to    REAL,
    added_by    TEXT,
    removed_by  TEXT
)""", "CREATE INDEX IF NOT EXISTS team_members_member ON team_members(member, valid_to)")
# Compared against when a key id is unknown, so a miss costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"memvault-no-such-key").hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and the scope every one of their calls is confined to."""

    name: str
    user_id: str
    agent_id: str | None = None
    key_id: str | None = None

    @property
    def scope(self) -> dict[str, str]:
        out = {"user_id": self.user_id}
        if self.agent_id is not None:
            out["agent_id"] = self.agent_id
        return out


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What :meth:`KeyStore.list` shows about a key: everything but its secret."""

    key_id: str
    principal: str
    user_id: str
    agent_id: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "principal": self.principal, "user_id": self.user_id,
                "agent_id": self.agent_id, "name": self.name,
                "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "active": self.active}


def keys_path(vault_path: str | Path) -> Path:
    """Where the keys of the vault stored at ``vault_path`` live."""
    p = Path(vault_path)
    return p.with_name(p.name + ".keys.sqlite")


def principal_name(value: Any, *, field: str = "principal", team: bool = False) -> str:
    """``value`` checked as a principal name (``team`` true: ``team:<name>`` is allowed,
    naming a team)."""
    if isinstance(value, str) and _NAME.match(value):
        if not value.startswith("team:"):
            return value
        if team and _NAME.match(value[5:]) and not value[5:].startswith("team:"):
            return value
    kinds = "a principal or team:<name>" if team else "a principal name"
    raise InvalidInput(f"{field} must be {kinds} (letters, digits and _ . @ : + -)",
                       field=field)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _scope_value(value: Any, field: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 256 or "\x00" in value:
        raise InvalidInput(f"{field} must be a non-empty string of at most 256 characters",
                           field=field)
    return unicodedata.normalize("NFC", value)


class KeyStore:
    """API keys of one vault, in their own SQLite file (created on first write)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    def for_vault(cls, vault_path: str | Path) -> "KeyStore":
        return cls(keys_path(vault_path))

    # -- connection --------------------------------------------------------------------
    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        """The connection, opened on first use; ``None`` if there is no file yet and
        ``create`` is false (reads of a store that was never written find nothing)."""
        if self._closed:
            raise StorageError("the key store is closed")
        if self._conn is not None:
            return self._conn
        if not create and not self.path.exists():
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=self._timeout,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            with immediate(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
                if conn.execute("PRAGMA user_version").fetchone()[0] < 2:
                    conn.execute("PRAGMA user_version=2")
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"opening the key store {self.path}: {exc}") from exc
        self._conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def db(self, *, write: bool, what: str) -> Iterator[sqlite3.Connection | None]:
        """The governance database for one read or (``write``: one transaction) write,
        under this store's lock; ``None`` for a read before the file exists. sqlite3
        errors become StorageError (``what`` says what was being done)."""
        with self._lock:
            conn = self._connection(create=write)
            try:
                if write:
                    assert conn is not None
                    with immediate(conn):
                        yield conn
                else:
                    yield conn
            except sqlite3.Error as exc:
                raise StorageError(f"{what}: {exc}") from exc

    def __enter__(self) -> "KeyStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the interface -----------------------------------------------------------------
    def create(self, principal: str, user_id: str, agent_id: str | None = None, *,
               name: str | None = None) -> str:
        """Make a key for ``principal`` confined to ``user_id`` (and ``agent_id``).

        Returns the token; it is not stored and cannot be shown again.
        """
        if not isinstance(principal, str) or not _NAME.match(principal) or \
                principal.startswith("team:"):
            raise InvalidInput("principal must be 1-128 characters of letters, digits and "
                               "_ . @ : + -, not starting with 'team:'", field="principal")
        user = _scope_value(user_id, "user_id", required=True)
        agent = _scope_value(agent_id, "agent_id", required=False)
        if name is not None and (not isinstance(name, str) or len(name) > 256 or "\x00" in name):
            raise InvalidInput("name must be a string of at most 256 characters", field="name")
        key_id = secrets.token_hex(6)
        token = f"mv_{key_id}_{secrets.token_urlsafe(32)}"
        with self._lock:
            conn = self._connection(create=True)
            assert conn is not None
            try:
                with immediate(conn):
                    conn.execute(
                        "INSERT INTO api_keys(key_id, principal, user_id, agent_id, name, "
                        "secret_hash, created_at) VALUES (?,?,?,?,?,?,?)",
                        (key_id, principal, user, agent, name, _hash(token), time.time()))
            except sqlite3.Error as exc:
                raise StorageError(f"creating a key: {exc}") from exc
        return token

    def verify(self, token: Any) -> Principal | None:
        """The principal a token stands for, or ``None`` (malformed, unknown, revoked)."""
        if not isinstance(token, str) or len(token) > 100:
            return None
        m = _TOKEN.match(token)
        if m is None:
            return None
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                hmac.compare_digest(_DUMMY_HASH, _hash(token))
                return None
            try:
                row = conn.execute("SELECT principal, user_id, agent_id, secret_hash, "
                                   "revoked_at FROM api_keys WHERE key_id=?",
                                   (m.group(1),)).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"reading the key store: {exc}") from exc
        stored = row[3] if row else _DUMMY_HASH
        if not hmac.compare_digest(stored, _hash(token)) or row is None or row[4] is not None:
            return None
        return Principal(name=row[0], user_id=row[1], agent_id=row[2], key_id=m.group(1))

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key (idempotent); its token stops working at once."""
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            raise InvalidInput(f"not a key id: {key_id!r}", field="key_id")
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                raise NotFound(f"no key {key_id}", key_id=key_id)
            try:
                with immediate(conn):
                    conn.execute("UPDATE api_keys SET revoked_at=? WHERE key_id=? AND "
                                 "revoked_at IS NULL", (time.time(), key_id))
                    row = conn.execute(f"SELECT {_INFO_COLUMNS} FROM api_keys WHERE key_id=?",
                                       (key_id,)).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"revoking a key: {exc}") from exc
        if row is None:
            raise NotFound(f"no key {key_id}", key_id=key_id)
        return _info(row)

    def list(self, *, include_revoked: bool = True) -> list[KeyInfo]:
        """Every key, oldest first; never the secrets."""
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return []
            sql = f"SELECT {_INFO_COLUMNS} FROM api_keys"
            if not include_revoked:
                sql += " WHERE revoked_at IS NULL"
            try:
                rows = conn.execute(sql + " ORDER BY created_at, key_id").fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"reading the key store: {exc}") from exc
        return [_info(r) for r in rows]


_INFO_COLUMNS = "key_id, principal, user_id, agent_id, name, created_at, revoked_at"


def _info(row: tuple[Any, ...]) -> KeyInfo:
    return KeyInfo(key_id=row[0], principal=row[1], user_id=row[2], agent_id=row[3],
                   name=row[4], created_at=from_epoch(row[5]),  # type: ignore[arg-type]
                   revoked_at=from_epoch(row[6]))
