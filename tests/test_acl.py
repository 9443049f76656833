"""Sharing between principals: grants on items, cubes and whole memories, teams,
revocation, redacted views, write grants, audited reads and the CLI - on a real SQLite
vault and a real governance database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from memvault import InvalidInput, NotFound, PermissionDenied, Vault
from memvault.cli import cli
from memvault.governance import GrantStore, KeyStore, Principal, ScopedVault
from memvault.governance.auditlog import query_audit
from memvault.types import utcnow


class World:
    def __init__(self, path: Path) -> None:
        self.vault = Vault(path, embedder="hash")
        self.keys = KeyStore.for_vault(path)
        self.grants = GrantStore(self.keys)
        self.bob = self.face("bob-app", "bob")
        self.alice = self.face("alice-app", "alice")
        self.carol = self.face("carol-app", "carol")
        self.tea = self.bob.add("Bob drinks green tea every morning", cube_id="home",
                                metadata={"mood": "calm"}, tags=["drinks"], session_id="s1",
                                provenance={"source": "chat"})
        self.pin = self.bob.add("Bob's bank PIN is 4711", cube_id="bank")
        self.own = self.alice.add("Alice drinks coffee every morning")

    def face(self, name: str, user: str, agent: str | None = None, *,
             audit_reads: bool = False) -> ScopedVault:
        return ScopedVault(self.vault, Principal(name, user, agent), grants=self.grants,
                           audit_reads=audit_reads)

    def close(self) -> None:
        self.keys.close()
        self.vault.close()


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path / "vault.db")
    yield world
    world.close()


def ids(hits) -> set[str]:
    return {h.item.id for h in hits}


def test_item_share_is_visible_only_to_the_grantee_and_redacted(w: World) -> None:
    assert ids(w.alice.search("drinks every morning")) == {w.own.id}
    grant = w.bob.share(w.tea.id, to="alice-app", redact=["metadata", "provenance", "tags"])
    assert (grant.resource, grant.permission, grant.owner_user_id) == ("item", "read", "bob")

    assert ids(w.alice.search("drinks every morning")) == {w.own.id, w.tea.id}
    seen = w.alice.get(w.tea.id)
    assert seen.text == w.tea.text and seen.user_id == "bob"
    assert (seen.metadata, seen.provenance, seen.tags, seen.session_id) == ({}, {}, (), "s1")
    assert {i.id for i in w.alice.list().items} == {w.own.id, w.tea.id}
    assert [v.metadata for v in w.alice.history(w.tea.id)] == [{}]
    assert {i.id for i in w.alice.export()} == {w.own.id, w.tea.id}
    assert w.bob.get(w.tea.id).metadata == {"mood": "calm"}  # the owner sees everything
    # only this item, only alice
    with pytest.raises(NotFound):
        w.alice.get(w.pin.id)
    with pytest.raises(NotFound):
        w.carol.get(w.tea.id)
    assert ids(w.carol.search("drinks every morning")) == set()
    # naming her own user restricts alice to her own memories
    assert ids(w.alice.search("drinks every morning", user_id="alice")) == {w.own.id}
    with pytest.raises(PermissionDenied):
        w.alice.search("tea", user_id="bob")
    assert w.alice.count() == 1


def test_read_grant_allows_no_change_and_no_resharing(w: World) -> None:
    w.bob.share(w.tea.id, to="alice-app")
    for call in (lambda: w.alice.update(w.tea.id, "hacked"), lambda: w.alice.delete(w.tea.id),
                 lambda: w.alice.archive(w.tea.id), lambda: w.alice.link(w.tea.id, w.own.id)):
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(NotFound):
        w.alice.purge(w.tea.id)
    with pytest.raises(NotFound):  # only owners share
        w.alice.share(w.tea.id, to="carol-app")
    assert [v.text for v in w.vault.history(w.tea.id)] == [w.tea.text]


def test_revocation_closes_the_grant_and_is_audited(w: World) -> None:
    grant = w.bob.share(w.tea.id, to="alice-app")
    assert w.alice.get(w.tea.id).id == w.tea.id
    closed = w.bob.unshare(grant.grant_id)
    assert closed.valid_to is not None and closed.revoked_by == "bob-app"
    with pytest.raises(NotFound):
        w.alice.get(w.tea.id)
    assert ids(w.alice.search("green tea")) == {w.own.id}
    assert w.bob.unshare(grant.grant_id) == closed  # idempotent, no second event
    events = [(e.action, e.actor, e.details["grant_id"]) for e in w.vault.audit()
              if e.action in ("share", "unshare")]
    assert events == [("share", "bob-app", grant.grant_id), ("unshare", "bob-app",
                                                             grant.grant_id)]
    # kept on record; only the giver can revoke; the owner sees it in its grants
    assert [g.grant_id for g in w.bob.grants(include_revoked=True)] == [grant.grant_id]
    assert w.bob.grants() == []
    with pytest.raises(NotFound):
        w.alice.unshare(grant.grant_id)
    with pytest.raises(InvalidInput):
        w.bob.unshare("not-a-grant")


def test_cube_share_to_a_team_follows_membership(w: World) -> None:
    w.grants.join(w.vault, "family", "alice-app", actor="op")
    w.bob.share(cube_id="home", to="team:family")
    extra = w.bob.add("Bob's sofa is blue", cube_id="home")
    assert ids(w.alice.search("Bob")) >= {w.tea.id, extra.id}
    assert w.pin.id not in ids(w.alice.search("Bob PIN bank", k=50))
    assert w.carol.list().total == 0
    assert [g.grantee for g in w.alice.grants()] == ["team:family"]
    assert w.grants.leave(w.vault, "family", "alice-app", actor="op")
    assert not w.grants.leave(w.vault, "family", "alice-app", actor="op")
    assert ids(w.alice.search("Bob")) <= {w.own.id}
    actions = [e.action for e in w.vault.audit() if e.action.startswith("team_")]
    assert actions == ["team_join", "team_leave"]


def test_everything_share_and_agent_scoped_owner(w: World) -> None:
    agent_bob = w.face("bob-agent", "bob", "planner")
    planned = agent_bob.add("Bob plans a trip to Porto")
    grant = agent_bob.share(everything=True, to="carol-app")
    assert grant.owner_agent_id == "planner" and grant.resource == "user"
    assert {i.id for i in w.carol.list().items} == {planned.id}  # not bob's other agents
    w.bob.share(everything=True, to="carol-app")
    assert {i.id for i in w.carol.list().items} == {planned.id, w.tea.id, w.pin.id}
    with pytest.raises(InvalidInput):
        w.bob.share(w.tea.id, cube_id="home", to="carol-app")
    with pytest.raises(NotFound):  # the agent-bound key can only revoke what it covers
        agent_bob.unshare(w.bob.grants()[-1].grant_id)


def test_write_grant_allows_changes_as_the_grantee(w: World) -> None:
    w.bob.share(w.tea.id, to="alice-app", write=True, redact=["metadata"])
    updated = w.alice.update(w.tea.id, "Bob drinks sencha every morning")
    assert updated.version == 2 and updated.metadata == {}
    stored = w.vault.get(w.tea.id)
    assert stored.metadata == {"mood": "calm"} and stored.provenance["actor"] == "bob-app"
    last = w.vault.audit(item_id=w.tea.id)[-1]
    assert (last.action, last.actor) == ("update", "alice-app")
    assert w.alice.delete(w.tea.id).status == "deleted"
    assert w.alice.restore(w.tea.id).status == "active"
    with pytest.raises(NotFound):
        w.alice.purge(w.tea.id)  # purge stays with the owner


def test_redaction_is_the_intersection_of_grants(w: World) -> None:
    w.bob.share(w.tea.id, to="alice-app", redact=["metadata", "tags"])
    w.grants.join(w.vault, "ops", "alice-app")
    w.bob.share(cube_id="home", to="team:ops", redact=["metadata"])
    seen = w.alice.get(w.tea.id)
    assert seen.metadata == {} and seen.tags == ("drinks",)


def test_grants_change_over_time(w: World) -> None:
    now = utcnow()
    w.bob.share(w.tea.id, to="alice-app", valid_from=now + timedelta(hours=1))
    w.bob.share(w.pin.id, to="alice-app", valid_from=now - timedelta(hours=2),
                valid_to=now - timedelta(hours=1))
    with pytest.raises(NotFound):
        w.alice.get(w.tea.id)  # not yet
    with pytest.raises(NotFound):
        w.alice.get(w.pin.id)  # expired
    later = w.grants.policy(w.alice.principal, now + timedelta(hours=2))
    assert later.access(w.vault.get(w.tea.id)) is not None
    assert later.access(w.vault.get(w.pin.id)) is None


def test_bad_grants_are_refused_and_change_nothing(w: World) -> None:
    before = (len(w.vault.audit(limit=1000)), w.grants.list(include_revoked=True))
    for kwargs in ({"to": "alice-app", "redact": ["text"]},
                   {"to": "alice-app", "redact": "metadata"},
                   {"to": "team:"}, {"to": ""}, {"to": "x" * 300},
                   {"to": "alice-app", "valid_from": "2030-01-01", "valid_to": "2029-01-01"},
                   {"to": "alice-app", "valid_to": "not a time"}):
        with pytest.raises(InvalidInput):
            w.bob.share(w.tea.id, **kwargs)
    with pytest.raises(InvalidInput):
        w.grants.share(w.vault, grantee="a", owner_user_id="bob", permission="admin")
    with pytest.raises(NotFound):
        w.bob.share("01a20000-0000-7000-8000-000000000000", to="alice-app")
    with pytest.raises(InvalidInput):
        w.keys.create("team:eng", "eng")  # names starting with team: are teams
    assert (len(w.vault.audit(limit=1000)), w.grants.list(include_revoked=True)) == before
    w.bob.share(w.tea.id, to="alice-app")  # the sharing read path validates like the vault
    for bad in ("x", ["ids"], {"ids": "x"}, {"nope": 1}):
        with pytest.raises(InvalidInput):
            w.alice.search("tea", filters=bad)
        with pytest.raises(InvalidInput):
            w.alice.list(filters=bad)


def test_reads_are_audited_once_per_call(w: World) -> None:
    w.bob.share(w.tea.id, to="alice-app")
    alice = w.face("alice-app", "alice", audit_reads=True)
    hits = alice.search("drinks every morning")
    alice.get(w.tea.id)
    alice.list(limit=1)
    alice.history(w.tea.id)
    reads = w.vault.audit(action="read")
    assert [(e.actor, e.details["op"]) for e in reads] == [
        ("alice-app", "search"), ("alice-app", "get"), ("alice-app", "list"),
        ("alice-app", "history")]
    assert set(reads[0].details["ids"]) == ids(hits) and reads[0].details["n"] == len(hits)
    assert all(e.item_id is None for e in reads)  # reads never touch the change feed
    w.alice.get(w.tea.id)  # audit_reads off: nothing
    assert len(w.vault.audit(action="read")) == 4
    found = query_audit(w.vault, item_id=w.tea.id, actor="alice-app")
    assert [e.details["op"] for e in found] == ["search", "get", "history"]
    assert query_audit(w.vault, action="share", since=utcnow() + timedelta(seconds=5)) == []


def test_cli_share_grants_team_and_audit_filters(tmp_path: Path) -> None:
    db = tmp_path / "vault.db"
    with Vault(db, embedder="hash") as v:
        tea = v.add("Bob drinks green tea", user_id="bob", cube_id="home")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> dict:
        result = runner.invoke(cli, ["--db", str(db), "--embedder", "hash", "--json", *args])
        assert result.exit_code == code, result.output
        return json.loads(result.output) if code == 0 else {}

    g1 = run("share", tea.id, "--with", "alice-app", "--redact", "metadata,tags")
    assert (g1["item_id"], g1["redact"], g1["owner_user_id"]) == (tea.id, ["metadata", "tags"],
                                                                  "bob")
    assert run("team", "add", "eng", "alice-app")["changed"] is True
    g2 = run("share", "--cube", "home", "--user", "bob", "--with", "team:eng", "--write")
    assert g2["resource"] == "cube" and g2["permission"] == "write"
    run("share", "--cube", "home", "--with", "x", code=2)  # whose cube?
    run("share", tea.id, "--cube", "home", "--with", "x", code=2)
    assert run("team", "members", "eng")["members"] == ["alice-app"]
    assert [g["grant_id"] for g in run("grants")["grants"]] == [g1["grant_id"], g2["grant_id"]]
    run("unshare", g1["grant_id"])
    assert [g["grant_id"] for g in run("grants")["grants"]] == [g2["grant_id"]]
    assert len(run("grants", "--all", "--with", "alice-app")["grants"]) == 1
    events = run("audit", "--action", "share")["events"]
    assert [e["details"]["grant_id"] for e in events] == [g1["grant_id"], g2["grant_id"]]
    assert all(e["actor"].startswith("cli") for e in events)
    assert [e["action"] for e in run("audit", "--item", tea.id)["events"]] == \
        ["add", "share", "unshare"]
    assert run("audit", "--actor", "nobody")["events"] == []
    assert len(run("audit", "--since", "2000-01-01")["events"]) == 5
    human = runner.invoke(cli, ["--db", str(db), "--embedder", "hash", "grants", "--all"])
    assert human.exit_code == 0 and "team:eng" in human.output


def test_links_to_memories_one_may_not_see_are_not_shown(w: World) -> None:
    w.bob.link(w.tea.id, w.pin.id)  # the shared memory links to a private one
    w.bob.share(w.tea.id, to="alice-app", write=True)
    assert w.alice.get(w.tea.id).links == ()
    assert all(i.links == () for i in w.alice.list().items)
    w.alice.link(w.tea.id, w.own.id)  # alice's link to her own memory ...
    assert [k.target for k in w.alice.get(w.tea.id).links] == [w.own.id]
    # ... is not shown to bob, who cannot see it; bob's own link still is
    assert [k.target for k in w.bob.get(w.tea.id).links] == [w.pin.id]
    assert [k.target for k in w.bob.history(w.tea.id)[-1].links] == [w.pin.id]
    w.bob.share(w.pin.id, to="alice-app")
    assert {k.target for k in w.alice.get(w.tea.id).links} == {w.pin.id, w.own.id}
