"""Per-principal isolation over real HTTP: what B stored is invisible and untouchable to A,
through the remote client and through raw REST, and guessing ids gets the same 404 as
an id that does not exist."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from memvault import NotFound, PermissionDenied, Vault
from memvault.client import RemoteVault, connect
from memvault.governance import KeyStore, Principal, ScopedVault, Unauthorized
from memvault.server.app import create_app
from memvault.server.serve import BackgroundServer


class World:
    """One vault behind one server, with two users' keys and B's memories in it."""

    def __init__(self, path: Path) -> None:
        self.vault = Vault(path, embedder="hash")
        self.keys = KeyStore.for_vault(path)
        self.server = BackgroundServer(create_app(self.vault, self.keys)).start()
        self.url = self.server.url
        self.token_a = self.keys.create("alice-app", "alice")
        self.token_b = self.keys.create("bob-app", "bob")
        self.a = connect(self.url, self.token_a)
        self.b = connect(self.url, self.token_b)
        self.b_items = [self.b.add("Bob's bank PIN is 4711", kind="fact", tags=["secret"],
                                   metadata={"lang": "en"}, session_id="s1"),
                        self.b.add("Bob is allergic to penicillin", kind="fact")]
        self.b.update(self.b_items[0].id, "Bob's bank PIN is 4712")
        self.b.link(self.b_items[0].id, self.b_items[1].id)
        self.a_item = self.a.add("Alice's bank is in Lisbon", kind="fact")

    def snapshot(self) -> list[dict[str, Any]]:
        """B's memories as the vault holds them: every version, every field but heat."""
        out = []
        for item in self.b_items:
            for v in self.vault.history(item.id):
                d = v.to_dict()
                d.pop("access_count"), d.pop("last_accessed_at")
                out.append(d)
        return out

    def close(self) -> None:
        self.a.close()
        self.b.close()
        self.server.stop()
        self.keys.close()
        self.vault.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "vault.db")
    yield w
    w.close()


@pytest.fixture(params=["remote", "local"])
def alice(request: pytest.FixtureRequest, world: World) -> RemoteVault | ScopedVault:
    """Alice through the remote client, and through a ScopedVault on the same vault."""
    if request.param == "remote":
        return world.a
    return ScopedVault(world.vault, Principal(name="alice-app", user_id="alice"))


def test_alice_cannot_touch_bobs_memories(world: World, alice: Any) -> None:
    before = world.snapshot()
    a_id = world.a_item.id
    for b_item in world.b_items:
        bid = b_item.id
        calls: list[Callable[[], Any]] = [
            lambda: alice.get(bid), lambda: alice.get(bid, as_of=b_item.created_at),
            lambda: alice.history(bid), lambda: alice.update(bid, "hacked"),
            lambda: alice.update(bid, metadata={"owned": True}), lambda: alice.delete(bid),
            lambda: alice.restore(bid), lambda: alice.archive(bid), lambda: alice.purge(bid),
            lambda: alice.link(a_id, bid), lambda: alice.link(bid, a_id),
            lambda: alice.unlink(world.b_items[0].id, world.b_items[1].id),
            lambda: alice.audit(item_id=bid)]
        for call in calls:
            with pytest.raises(NotFound) as err:
                call()
            assert err.value.code == "not_found"
    # searches and listings never show them, whatever the filters ask for
    ids = [i.id for i in world.b_items]
    assert {h.item.id for h in alice.search("Bob bank PIN penicillin", k=50)} == {a_id}
    assert alice.search("PIN", filters={"ids": ids}) == []
    assert alice.search("PIN", filters={"tags": ["secret"]}, status="any") == []
    assert alice.list(filters={"ids": ids}, status="any").total == 0
    assert [i.id for i in alice.list(status="any").items] == [a_id]
    assert [i.id for i in alice.export(history=True)] == [a_id]
    assert alice.count(status="any") == 1
    assert {e.item_id for e in alice.audit(limit=1000)} == {a_id}
    # naming Bob's scope explicitly is refused, not silently answered
    for call in (lambda: alice.search("PIN", user_id="bob"), lambda: alice.list(user_id="bob"),
                 lambda: alice.count(user_id="bob"), lambda: alice.add("x", user_id="bob")):
        with pytest.raises(PermissionDenied):
            call()
    assert world.snapshot() == before
    assert world.vault.get(ids[0]).links[0].target == ids[1]


def test_purge_by_owner_leaves_no_trace_for_others(world: World) -> None:
    bid = world.b_items[0].id
    assert world.b.purge(bid) == 2
    assert all(e.item_id != bid for e in world.a.audit(limit=1000))
    assert {e.action for e in world.b.audit(limit=1000) if e.item_id == bid} == set()
    with pytest.raises(NotFound):
        world.a.get(bid)


def test_writes_are_stamped_with_the_keys_scope(world: World) -> None:
    item = world.a.add("no user given")
    assert item.user_id == "alice"
    many = world.a.add_many([{"text": "r1"}, "r2"], kind="fact")
    turns = world.a.add_messages([{"role": "user", "content": "hi"}])
    assert {i.user_id for i in [*many, *turns]} == {"alice"}
    assert world.vault.list(user_id="bob").total == 2  # nothing landed in Bob's scope


def test_agent_scoped_key(world: World) -> None:
    token = world.keys.create("alice-agent", "alice", "planner", name="planner bot")
    with connect(world.url, token) as agent:
        mine = agent.add("plan: buy milk")
        assert (mine.user_id, mine.agent_id) == ("alice", "planner")
        assert [i.id for i in agent.list().items] == [mine.id]
        with pytest.raises(NotFound):  # Alice's other memories are outside the agent's scope
            agent.get(world.a_item.id)
        with pytest.raises(PermissionDenied):
            agent.add("x", agent_id="other-agent")
        assert agent.whoami() == {"name": "alice-agent", "user_id": "alice",
                                  "agent_id": "planner", "key_id": token.split("_")[1],
                                  "id_prefix": "alice:planner:"}
    # the user-level key sees the agent's memory (it is in Alice's scope)
    assert world.a.get(mine.id).text == "plan: buy milk"
    assert {h.item.id for h in world.a.search("plan milk", agent_id="planner")} == {mine.id}


def test_guessed_ids_get_the_same_404_as_missing_ones(world: World) -> None:
    http = httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {world.token_a}"})
    bid, ghost = world.b_items[0].id, str(uuid.uuid4())

    def probe(id_: str) -> list[tuple[int, dict[str, Any]]]:
        out = []
        for method, path, kwargs in (
                ("GET", f"/v1/memories/{id_}", {}),
                ("GET", f"/v1/memories/{id_}/history", {}),
                ("PATCH", f"/v1/memories/{id_}", {"json": {"text": "hacked"}}),
                ("DELETE", f"/v1/memories/{id_}", {}),
                ("POST", f"/v1/memories/{id_}/restore", {}),
                ("POST", f"/v1/memories/{id_}/archive", {}),
                ("POST", f"/v1/memories/{id_}/purge", {}),
                ("GET", "/v1/audit", {"params": {"item_id": id_}}),
                ("POST", "/v1/links", {"json": {"src": world.a_item.id, "dst": id_}})):
            r = http.request(method, path, **kwargs)
            body = r.json()
            out.append((r.status_code, {**body, "message": body["message"].replace(id_, "ID"),
                                        "details": {"id": "ID"}}))
        return out
    try:
        answers = probe(bid)
        assert all(status == 404 and body["code"] == "not_found" for status, body in answers)
        assert answers == probe(ghost)
        r = http.post("/v1/search", json={"query": "PIN", "filters": {"ids": [bid]}})
        assert r.status_code == 200 and r.json() == {"hits": []}
    finally:
        http.close()
    assert world.b.get(bid).version == 2 and world.b.get(bid).status == "active"


def test_revoked_and_forged_keys_are_refused(world: World) -> None:
    token = world.keys.create("temp", "carol")
    with connect(world.url, token) as carol:
        carol.add("carol's note")
        key_id = token.split("_")[1]
        world.keys.revoke(key_id)
        with pytest.raises(Unauthorized):
            carol.list()
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    real_key_other_secret = f"mv_{world.token_b.split('_')[1]}_{'A' * 43}"
    for bad in (forged, real_key_other_secret, "mv_nothex00000_" + "a" * 43, "x"):
        r = httpx.get(f"{world.url}/v1/memories", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_reused_id_does_not_expose_old_events(world: World) -> None:
    """The operator gives Bob's purged id to Alice: she sees only her memory's events."""
    world.vault.add("bob's", id="shared-name", user_id="bob")
    world.b.update("shared-name", "bob's, edited", reason="private reason")
    world.b.purge("shared-name")
    world.vault.add("alice's", id="shared-name", user_id="alice")
    events = world.a.audit(item_id="shared-name")
    assert [e.action for e in events] == ["add"]
    assert all("private reason" not in str(e.details) for e in world.a.audit(limit=1000))


# -- sharing -----------------------------------------------------------------------------
def test_server_actions_carry_the_principal(world: World) -> None:
    item = world.a.add("who wrote me?")
    world.a.update(item.id, "who wrote me? alice")
    assert [(e.action, e.actor) for e in world.vault.audit(item_id=item.id)] == \
        [("add", "alice-app"), ("update", "alice-app")]
    assert world.vault.get(item.id).provenance["actor"] == "alice-app"
    world.a.search("who wrote")  # the server audits reads, with the reader's name
    last = world.vault.audit(action="read")[-1]
    assert (last.actor, last.details["op"], last.item_id) == ("alice-app", "search", None)
    assert item.id in last.details["ids"]


def _mcp_get(scoped: ScopedVault, id_: str) -> dict[str, Any]:
    """``memory_get`` through the MCP tool layer: the item, or the error body."""
    import anyio
    from mcp import Client

    from memvault.server.mcp import build_mcp

    async def main() -> dict[str, Any]:
        async with Client(build_mcp(scoped)) as client:
            result = await client.call_tool("memory_get", {"id": id_})
            return result.structured_content or {}
    return anyio.run(main)


def test_a_shared_item_is_visible_only_to_those_it_is_shared_with(world: World) -> None:
    from memvault.governance import GrantStore

    token_c = world.keys.create("carol-app", "carol")
    carol = connect(world.url, token_c)
    secret, shared = world.b_items
    grant = world.b.share(shared.id, to="alice-app", redact=["metadata"])
    grants = GrantStore(world.keys)
    faces = {n: ScopedVault(world.vault, Principal(n, u), grants=grants)
             for n, u in (("alice-app", "alice"), ("carol-app", "carol"))}
    try:
        # alice, through the client, REST and MCP: the shared item, nothing else of Bob's
        assert world.a.get(shared.id).text == shared.text
        assert {h.item.id for h in world.a.search("Bob allergic PIN bank", k=50)} == \
            {shared.id, world.a_item.id}
        assert {i.id for i in world.a.list(status="any").items} == {shared.id, world.a_item.id}
        assert [v.version for v in world.a.history(shared.id)] == [1]
        assert {i.id for i in world.a.export()} == {shared.id, world.a_item.id}
        assert _mcp_get(faces["alice-app"], shared.id)["id"] == shared.id
        assert _mcp_get(faces["alice-app"], secret.id)["code"] == "not_found"
        with pytest.raises(NotFound):
            world.a.get(secret.id)
        # read-only: no changes, no purge, no re-sharing
        before = world.snapshot()
        with pytest.raises(PermissionDenied):
            world.a.update(shared.id, "hacked")
        with pytest.raises(PermissionDenied):
            world.a.delete(shared.id)
        for call in (lambda: world.a.purge(shared.id),
                     lambda: world.a.share(shared.id, to="carol-app"),
                     lambda: world.a.unshare(grant.grant_id)):
            with pytest.raises(NotFound):
                call()
        assert world.snapshot() == before
        # carol: nothing, through every face
        for id_ in (secret.id, shared.id):
            with pytest.raises(NotFound):
                carol.get(id_)
            assert _mcp_get(faces["carol-app"], id_)["code"] == "not_found"
            r = httpx.get(f"{world.url}/v1/memories/{id_}",
                          headers={"Authorization": f"Bearer {token_c}"})
            assert r.status_code == 404
        assert carol.search("Bob allergic PIN bank", k=50) == []
        assert carol.list(status="any").total == 0
        # revoked: gone for alice everywhere, kept on record
        closed = world.b.unshare(grant.grant_id)
        assert closed.valid_to is not None
        with pytest.raises(NotFound):
            world.a.get(shared.id)
        assert _mcp_get(faces["alice-app"], shared.id)["code"] == "not_found"
        assert {i.id for i in world.a.list(status="any").items} == {world.a_item.id}
        assert [(e.action, e.actor) for e in world.b.audit(item_id=shared.id)
                if e.action in ("share", "unshare")] == [("share", "bob-app"),
                                                         ("unshare", "bob-app")]
    finally:
        carol.close()


def test_share_routes_over_rest(world: World) -> None:
    http = httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {world.token_b}"})
    try:
        bid = world.b_items[1].id
        r = http.post(f"/v1/memories/{bid}/shares",
                      json={"to": "team:doctors", "write": True, "redact": ["tags"]})
        assert r.status_code == 201, r.text
        item_grant = r.json()
        assert (item_grant["resource"], item_grant["permission"]) == ("item", "write")
        r = http.post("/v1/shares", json={"to": "alice-app", "cube_id": "health"})
        assert r.status_code == 201 and r.json()["resource"] == "cube"
        assert http.post("/v1/shares", json={"to": "alice-app"}).status_code == 422
        assert http.post(f"/v1/memories/{bid}/shares",
                         json={"to": "x", "cube_id": "c"}).status_code == 422
        assert http.post("/v1/shares", json={"to": "alice-app", "everything": True,
                                             "redact": ["text"]}).json()["code"] == "invalid_input"
        listed = http.get(f"/v1/memories/{bid}/shares").json()["grants"]
        assert [g["grant_id"] for g in listed] == [item_grant["grant_id"]]
        assert len(http.get("/v1/shares").json()["grants"]) == 2
        # alice may not revoke bob's grant; bob may
        r = httpx.delete(f"{world.url}/v1/shares/{item_grant['grant_id']}",
                         headers={"Authorization": f"Bearer {world.token_a}"})
        assert r.status_code == 404
        r = http.delete(f"/v1/shares/{item_grant['grant_id']}")
        assert r.status_code == 200 and r.json()["revoked_by"] == "bob-app"
        assert len(http.get("/v1/shares").json()["grants"]) == 1
        assert len(http.get("/v1/shares", params={"include_revoked": "true"}).json()["grants"]) == 2
        # alice sees bob's grant to her
        assert [g.cube_id for g in world.a.grants()] == ["health"]
    finally:
        http.close()


def test_sharing_through_mcp_tools(world: World) -> None:
    import anyio
    from mcp import Client

    from memvault.governance import GrantStore
    from memvault.server.mcp import build_mcp

    grants = GrantStore(world.keys)
    bob = ScopedVault(world.vault, Principal("bob-app", "bob"), grants=grants)
    alice = ScopedVault(world.vault, Principal("alice-app", "alice"), grants=grants)
    shared = world.b_items[1]

    async def main() -> None:
        async with Client(build_mcp(bob)) as b, Client(build_mcp(alice)) as a:
            async def call(client: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
                return (await client.call_tool(tool, args)).structured_content or {}
            before = await call(a, "memory_search", {"query": "penicillin allergic", "k": 50})
            assert shared.id not in {h["item"]["id"] for h in before["hits"]}
            grant = await call(b, "memory_share", {"to": "alice-app", "id": shared.id,
                                                   "redact": ["metadata"]})
            assert grant["item_id"] == shared.id and grant["granted_by"] == "bob-app"
            found = await call(a, "memory_search", {"query": "penicillin allergic", "k": 50})
            assert shared.id in {h["item"]["id"] for h in found["hits"]}
            assert [g["grant_id"] for g in (await call(a, "memory_grants", {}))["grants"]] == \
                [grant["grant_id"]]
            refused = await call(a, "memory_unshare", {"grant_id": grant["grant_id"]})
            assert refused["code"] == "not_found"
            closed = await call(b, "memory_unshare", {"grant_id": grant["grant_id"]})
            assert closed["valid_to"] is not None
            assert (await call(a, "memory_get", {"id": shared.id}))["code"] == "not_found"
    anyio.run(main)
