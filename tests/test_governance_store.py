"""Governance state in the record store (issue 22, items 11 and 12): one conformance suite
for keys, principals, teams and grants on SQLite and PostgreSQL; every change is one
transaction with its audit row; the one-time import of an older ``<db>.keys.sqlite``
loses nothing; and ``memvault keys create`` as a subprocess, on both backends.

The PostgreSQL cases need a real server (``tests/pg_fixtures.py``): skipped without one
unless ``MEMVAULT_REQUIRE_PG=1``."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from pg_fixtures import pg_dsn, pg_server  # noqa: F401  (fixtures)

from memvault import Conflict, NotFound, Vault
from memvault.governance import GrantStore, KeyStore, Principal, ScopedVault
from memvault.storage.base import AuditOp, GovernanceOp


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a vault lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "vault.db")
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
def vault(location: str) -> Iterator[Vault]:
    v = Vault(location, embedder="hash")
    yield v
    v.close()


def _actions(vault: Vault) -> list[str]:
    return [e.action for e in vault.audit(limit=1000)]


# -- the conformance suite (both backends) -----------------------------------------------
def test_keys_bind_a_principal_to_one_scope(vault: Vault, location: str) -> None:
    with KeyStore.for_vault(vault) as keys:
        token = keys.create("bob-app", "bob", name="laptop")
        assert keys.verify(token) == Principal("bob-app", "bob", None, token.split("_")[1])
        second = keys.create("bob-app", "bob", name="phone")  # same scope: fine
        assert keys.verify(second).name == "bob-app"
        for user, agent in (("mallory", None), ("bob", "planner")):
            with pytest.raises(Conflict) as refused:
                keys.create("bob-app", user, agent)
            assert refused.value.code == "conflict" and "bob-app" in refused.value.message
        assert [k.name for k in keys.list()] == ["laptop", "phone"]  # nothing stored
        admin = keys.create("ops", "ops-user", admin=True)
        assert keys.verify(admin).admin and not keys.verify(token).admin
        info = keys.revoke(token.split("_")[1], actor="cli:test")
        assert not info.active and keys.verify(token) is None
        keys.revoke(token.split("_")[1])  # idempotent, audited once
    assert _actions(vault) == ["key_create", "key_create", "key_create", "key_revoke"]
    assert all("secret" not in json.dumps(e.details) and token not in json.dumps(e.details)
               for e in vault.audit())
    # a second app host on the same database sees the same keys at once
    with KeyStore.for_vault(location) as other:
        assert other.verify(second).user_id == "bob" and other.verify(token) is None


def test_grants_and_teams_are_audited_in_one_transaction(vault: Vault) -> None:
    item = vault.add("Bob's allergy: penicillin", user_id="bob")
    with KeyStore.for_vault(vault) as keys:
        grants = GrantStore(keys)
        g = grants.share(vault, grantee="team:doctors", owner_user_id="bob", item_id=item.id,
                         redact=["metadata"], actor="bob-app")
        assert grants.join(vault, "doctors", "carol-app", actor="ops") is True
        assert grants.join(vault, "doctors", "carol-app", actor="ops") is False
        carol = ScopedVault(vault, Principal("carol-app", "carol"), grants=grants)
        assert carol.get(item.id).text == item.text
        assert grants.leave(vault, "doctors", "carol-app", actor="ops") is True
        with pytest.raises(NotFound):
            carol.get(item.id)
        closed = grants.unshare(vault, g.grant_id, actor="bob-app")
        assert closed.valid_to is not None and closed.revoked_by == "bob-app"
        assert grants.unshare(vault, g.grant_id).valid_to == closed.valid_to  # idempotent
        assert [x.grant_id for x in grants.list(include_revoked=True)] == [g.grant_id]
        assert grants.list() == []
        assert grants.members("team:doctors") == []
        # a change that cannot be stored leaves no audit row: one transaction
        before = _actions(vault)
        with pytest.raises(Conflict):
            vault.store.apply([AuditOp("share", None, None, "x", {"grant_id": g.grant_id}),
                               GovernanceOp("grant_insert", {
                                   "grant_id": g.grant_id, "grantee": "eve", "owner_user": "bob",
                                   "owner_agent": None, "cube_id": None, "item_id": None,
                                   "permission": "read", "redact": "[]", "granted_by": "x",
                                   "created_at": 0.0, "valid_from": 0.0, "valid_to": None})])
        assert _actions(vault) == before
    assert [a for a in before if a != "add"] == ["share", "team_join", "team_leave", "unshare"]


def test_racing_keys_for_one_name_bind_it_once(vault: Vault, location: str) -> None:
    """Two hosts create the first key of one name with different scopes at once: the
    principal gets one scope, and only the keys of that scope exist."""
    results: dict[str, Any] = {}

    def create(user: str) -> None:
        with KeyStore.for_vault(location) as keys:
            try:
                results[user] = keys.create("contested", user)
            except Conflict as exc:
                results[user] = exc
    threads = [threading.Thread(target=create, args=(u,)) for u in ("u1", "u2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [u for u, r in results.items() if isinstance(r, str)]
    assert len(won) == 1
    with KeyStore.for_vault(vault) as keys:
        assert [(k.principal, k.user_id) for k in keys.list()] == [("contested", won[0])]


# -- the one-time import of <db>.keys.sqlite -------------------------------------------
_OLD_SCHEMA = """
CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, principal TEXT NOT NULL, user_id TEXT NOT NULL,
    agent_id TEXT, name TEXT, secret_hash TEXT NOT NULL, created_at REAL NOT NULL,
    revoked_at REAL);
CREATE TABLE grants (grant_id TEXT PRIMARY KEY, grantee TEXT NOT NULL, owner_user TEXT NOT NULL,
    owner_agent TEXT, cube_id TEXT, item_id TEXT, permission TEXT NOT NULL, redact TEXT NOT NULL,
    granted_by TEXT, created_at REAL NOT NULL, valid_from REAL NOT NULL, valid_to REAL,
    revoked_by TEXT);
CREATE TABLE team_members (team TEXT NOT NULL, member TEXT NOT NULL, valid_from REAL NOT NULL,
    valid_to REAL, added_by TEXT, removed_by TEXT);
"""


def _old_keys_file(path: Path) -> dict[str, str]:
    """A keys file as memvault wrote it before the move (its schema, version 2)."""
    tokens = {"alice": "mv_aaaaaaaaaaaa_" + "A" * 43, "old": "mv_bbbbbbbbbbbb_" + "B" * 43,
              "carol": "mv_cccccccccccc_" + "C" * 43}
    h = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in tokens.items()}
    now = time.time()
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_SCHEMA)
    conn.executemany("INSERT INTO api_keys VALUES (?,?,?,?,?,?,?,?)", [
        ("aaaaaaaaaaaa", "alice-app", "alice", None, "laptop", h["alice"], now - 30, None),
        ("bbbbbbbbbbbb", "alice-app", "alice", None, "old", h["old"], now - 40, now - 20),
        ("cccccccccccc", "carol-app", "carol", None, None, h["carol"], now - 30, None)])
    conn.execute("INSERT INTO grants VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 ("g_00000000000000aa", "team:friends", "alice", None, None, None, "read",
                  '["metadata"]', "alice-app", now - 10, now - 10, None, None))
    conn.execute("INSERT INTO team_members VALUES (?,?,?,?,?,?)",
                 ("team:friends", "carol-app", now - 10, None, "cli:root", None))
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    return tokens


def test_an_old_keys_file_is_imported_once_and_nothing_is_lost(tmp_path: Path) -> None:
    db = tmp_path / "vault.db"
    tokens = _old_keys_file(tmp_path / "vault.db.keys.sqlite")
    with Vault(db, embedder="hash") as vault:
        note = vault.add("Alice's garden has three apple trees", user_id="alice",
                         metadata={"private": True})
        with KeyStore.for_vault(vault) as keys:
            alice = keys.verify(tokens["alice"])
            assert alice is not None and (alice.name, alice.user_id) == ("alice-app", "alice")
            assert keys.verify(tokens["old"]) is None  # revoked stays revoked
            assert {k.key_id: k.active for k in keys.list()} == {
                "aaaaaaaaaaaa": True, "bbbbbbbbbbbb": False, "cccccccccccc": True}
            grants = GrantStore(keys)
            assert [g.grant_id for g in grants.list()] == ["g_00000000000000aa"]
            assert grants.teams_of("carol-app") == ["team:friends"]
            carol = ScopedVault(vault, keys.verify(tokens["carol"]), grants=grants)
            seen = carol.get(note.id)
            assert seen.text == note.text and seen.metadata == {}  # shared, redacted
            with pytest.raises(Conflict):  # the import bound alice-app to alice
                keys.create("alice-app", "mallory")
        events = [e for e in vault.audit(limit=1000) if e.action == "keys_import"]
        assert [e.details["keys"] for e in events] == [3]
        assert (events[0].details["grants"], events[0].details["team_members"]) == (1, 1)
    assert not (tmp_path / "vault.db.keys.sqlite").exists()
    assert (tmp_path / "vault.db.keys.sqlite.imported").exists()  # kept, not deleted
    # opening again imports nothing twice, even if the old file were put back
    (tmp_path / "vault.db.keys.sqlite.imported").rename(tmp_path / "vault.db.keys.sqlite")
    with KeyStore.for_vault(db) as keys:
        assert len(keys.list()) == 3
        assert GrantStore(keys).members("team:friends") == ["carol-app"]
        assert len(keys.store.governance("counts", {})) == 1
        assert keys.store.governance("counts", {})[0] == (3, 1, 1)


# -- the command line, as a subprocess ---------------------------------------------------
def _cli(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
    env.update(HOME=str(home), MEMVAULT_EMBEDDER="hash")
    return subprocess.run([sys.executable, "-m", "memvault", *args], env=env,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_keys_create_through_the_cli(location: str, tmp_path: Path) -> None:
    """`memvault --db LOCATION keys create`: the key lands in that vault's store (for
    PostgreSQL: not in any file under ~/.memvault), a name keeps its scope, --admin."""
    home = tmp_path / "home"
    home.mkdir()
    made = _cli(["--db", location, "--json", "keys", "create", "bob-app", "--user", "bob"], home)
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    refused = _cli(["--db", location, "keys", "create", "bob-app", "--user", "mallory"], home)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error [conflict]: ") and refused.stderr.count("\n") == 1
    admin = _cli(["--db", location, "--json", "keys", "create", "ops", "--user", "ops",
                  "--admin"], home)
    assert admin.returncode == 0, admin.stderr
    listed = _cli(["--db", location, "--json", "keys", "list"], home)
    assert [k["principal"] for k in json.loads(listed.stdout)["keys"]] == ["bob-app", "ops"]
    with KeyStore.for_vault(location) as keys:  # another process, the same store
        assert keys.verify(token).user_id == "bob"
        assert keys.verify(json.loads(admin.stdout)["token"]).admin
    if location.startswith("postgresql://"):
        assert not (home / ".memvault").exists() or \
            not list((home / ".memvault").glob("*.keys.sqlite"))
