"""Principals and their API keys.

A principal is whoever holds a key: a person, an agent, a service. Its name is bound to
one scope (a ``user_id`` and, optionally, an ``agent_id``) by its first key; every later
key of that name must have the same scope, so that a name that grants were given to
keeps meaning the same principal. The
:class:`~memvault.governance.scope.ScopedVault` confines every call made with a key.

A token looks like ``mv_<key id>_<secret>``: 12 hex characters that name the key, then
32 random bytes (url-safe base64). It is shown once, when created. Only its SHA-256 is
stored; :meth:`KeyStore.verify` looks the key up by its id and compares hashes with
:func:`hmac.compare_digest`.

Keys, principals, teams and grants live in the vault's own record store (tables of
migration 0003, SQLite and PostgreSQL alike; see :mod:`memvault.storage.governance`):
every app host sharing a database sees the same keys, and each change is one
transaction with the audit row that records it (``key_create``, ``key_revoke``,
``share``, ...). A ``<db>.keys.sqlite`` file of an older memvault is imported once, the
first time the vault's keys are opened (see :mod:`.legacy`). Principal names starting
with ``team:`` are reserved for teams.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .._time import from_epoch
from ..errors import InvalidInput, NotFound, PayloadTooLarge, StorageError, Unauthorized
from ..settings import Settings
from ..storage import is_dsn, open_store
from ..storage.base import AuditOp, GovernanceOp, RecordStore

__all__ = ["Principal", "KeyInfo", "KeyStore", "Unauthorized", "PayloadTooLarge",
           "keys_path", "principal_name", "operator"]

_TOKEN = re.compile(r"^mv_([0-9a-f]{12})_([A-Za-z0-9_-]{43})\Z")
_NAME = re.compile(r"^[A-Za-z0-9_.@:+-]{1,128}\Z")
_KEY_ID = re.compile(r"^[0-9a-f]{12}\Z")
# Compared against when a key id is unknown, so a miss costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"memvault-no-such-key").hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and the scope every one of their calls is confined to."""

    name: str
    user_id: str
    agent_id: str | None = None
    key_id: str | None = None
    #: May read server-wide state (per-route request metrics); grants no memory access.
    admin: bool = False

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
    """Where an older memvault kept the keys of the vault at ``vault_path`` (imported
    once into the vault's store; see :mod:`.legacy`)."""
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


def operator() -> str:
    """The actor of a command-line change: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (e.g. a container's anonymous uid)
        return "cli"


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
    """API keys and principals of one vault, in its record store.

    ``KeyStore(store)`` uses a store someone else owns (e.g. ``vault.store``);
    :meth:`for_vault` opens one (and closes it with the KeyStore)."""

    def __init__(self, store: RecordStore, *, owned: bool = False) -> None:
        self.store = store
        self._owned = owned
        self._closed = False

    @classmethod
    def for_vault(cls, vault: Any) -> "KeyStore":
        """The keys of ``vault``: an open Vault (its store is shared), its Settings, a
        SQLite path or a ``postgresql://`` DSN (a store is opened for the KeyStore). A
        SQLite vault's ``<db>.keys.sqlite`` from an older memvault is imported first."""
        from .legacy import import_legacy_keys

        store, path, owned = _store_of(vault)
        keys = cls(store, owned=owned)
        try:
            if path is not None:
                import_legacy_keys(store, keys_path(path))
        except BaseException:
            keys.close()
            raise
        return keys

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owned:
                self.store.close()

    def __enter__(self) -> "KeyStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, query: str, **params: Any) -> list[tuple]:
        if self._closed:
            raise StorageError("the key store is closed")
        return self.store.governance(query, params)

    # -- the interface -----------------------------------------------------------------
    def create(self, principal: str, user_id: str, agent_id: str | None = None, *,
               name: str | None = None, admin: bool = False,
               actor: str | None = None) -> str:
        """Make a key for ``principal`` confined to ``user_id`` (and ``agent_id``); with
        ``admin`` the principal may also read server-wide metrics.

        The first key of a name binds it to that scope: a key for a name that exists with
        another scope is refused (Conflict), so that grants given to a name keep reaching
        the principal they were meant for. Returns the token; it is not stored and cannot
        be shown again. Audited as ``key_create`` (by ``actor``), never with the secret.
        """
        if not isinstance(principal, str) or not _NAME.match(principal) or \
                principal.startswith("team:"):
            raise InvalidInput("principal must be 1-128 characters of letters, digits and "
                               "_ . @ : + -, not starting with 'team:'", field="principal")
        user = _scope_value(user_id, "user_id", required=True)
        agent = _scope_value(agent_id, "agent_id", required=False)
        if name is not None and (not isinstance(name, str) or len(name) > 256 or "\x00" in name):
            raise InvalidInput("name must be a string of at most 256 characters", field="name")
        if not isinstance(admin, bool):
            raise InvalidInput("admin must be true or false", field="admin")
        if self._closed:
            raise StorageError("the key store is closed")
        key_id = secrets.token_hex(6)
        token = f"mv_{key_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        scope = {"name": principal, "user_id": user, "agent_id": agent}
        ops: list[Any] = [
            GovernanceOp("principal_bind", {**scope, "admin": int(admin), "created_at": now}),
            GovernanceOp("principal_is", scope),
            GovernanceOp("key_insert", {"key_id": key_id, "principal": principal,
                                        "user_id": user, "agent_id": agent, "name": name,
                                        "secret_hash": _hash(token), "created_at": now})]
        if admin:
            ops.append(GovernanceOp("principal_admin", {"name": principal, "admin": 1}))
        ops.append(AuditOp("key_create", None, None, actor, {
            "key_id": key_id, "principal": principal, "user_id": user, "agent_id": agent,
            "name": name, "admin": admin}))
        self.store.apply(ops)
        return token

    def verify(self, token: Any) -> Principal | None:
        """The principal a token stands for, or ``None`` (malformed, unknown, revoked)."""
        if not isinstance(token, str) or len(token) > 100:
            return None
        m = _TOKEN.match(token)
        if m is None:
            return None
        rows = self._read("key", key_id=m.group(1))
        row = rows[0] if rows else None
        stored = row[3] if row else _DUMMY_HASH
        if not hmac.compare_digest(stored, _hash(token)) or row is None or row[4] is not None:
            return None
        return Principal(name=row[0], user_id=row[1], agent_id=row[2], key_id=m.group(1),
                         admin=bool(row[5]))

    def revoke(self, key_id: str, *, actor: str | None = None) -> KeyInfo:
        """Revoke a key (idempotent); its token stops working at once. Audited as
        ``key_revoke`` the first time."""
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            raise InvalidInput(f"not a key id: {key_id!r}", field="key_id")
        rows = self._read("key_info", key_id=key_id)
        if not rows:
            raise NotFound(f"no key {key_id}", key_id=key_id)
        if rows[0][7] is None:
            self.store.apply([GovernanceOp("key_revoke", {"key_id": key_id, "at": time.time()}),
                              AuditOp("key_revoke", None, None, actor,
                                      {"key_id": key_id, "principal": rows[0][1]})])
            rows = self._read("key_info", key_id=key_id)
        return _info(rows[0])

    def list(self, *, include_revoked: bool = True) -> list[KeyInfo]:
        """Every key, oldest first; never the secrets."""
        infos = [_info(r) for r in self._read("keys")]
        return infos if include_revoked else [k for k in infos if k.active]


def _store_of(vault: Any) -> tuple[RecordStore, Path | None, bool]:
    """(store, SQLite path whose legacy keys file to import or None, owned by us)."""
    settings = getattr(vault, "settings", None)
    store = getattr(vault, "store", None)
    if settings is not None and store is not None:  # an open Vault
        return store, (None if settings.store else settings.path), False
    if isinstance(vault, Settings):
        location: Any = vault.store or vault.path
        durability = vault.durability
    elif isinstance(vault, (str, Path)):
        location, durability = vault, "full"
    else:
        raise InvalidInput("KeyStore.for_vault takes a Vault, Settings, a path or a DSN")
    opened = open_store(location, durability=durability)
    return opened, (None if is_dsn(location) else Path(location)), True


def _info(row: tuple[Any, ...]) -> KeyInfo:
    """A KeyInfo from a ``key_info``/``keys`` row (the hash in column 5 is dropped)."""
    return KeyInfo(key_id=row[0], principal=row[1], user_id=row[2], agent_id=row[3],
                   name=row[4], created_at=from_epoch(row[6]),  # type: ignore[arg-type]
                   revoked_at=from_epoch(row[7]))
