"""One behaviour, every record store: the same Vault-level suite against SQLite and PostgreSQL.

Each test gets a ``backend`` (param "sqlite" or "postgres") that opens stores on one fresh
database and wraps them in ``Vault(settings=..., embedder="hash", store=...)``. The
PostgreSQL half needs a server (see pg_fixtures.py: skipped loudly when none can be
started, a failure under MEMVAULT_REQUIRE_PG=1).
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

import memvault.storage
from memvault import Conflict, InvalidInput, NotFound, Settings, Vault
from memvault.storage.base import AuditOp, InsertVersion, RowQuery
from memvault.storage.sqlite import SQLiteStore
from pg_fixtures import pg_dsn, pg_server  # noqa: F401  (fixtures)

BACKENDS = ("sqlite", "postgres")


class Backend:
    """Opens stores (and Vaults over them) on one database; closes them all at the end."""

    def __init__(self, name: str, tmp: Path, open_store: Callable[[], Any]) -> None:
        self.name, self.tmp, self._open_store = name, tmp, open_store
        self._open: list[Any] = []

    def store(self) -> Any:
        store = self._open_store()
        self._open.append(store)
        return store

    def vault(self, **settings: Any) -> Vault:
        s = Settings(path=self.tmp / "vault.db", embedder="hash", **settings)
        v = Vault(settings=s, embedder="hash", store=self.store())
        self._open.append(v)
        return v

    def close(self) -> None:
        for obj in reversed(self._open):
            obj.close()


def _make_backend(name: str, tmp: Path, request: pytest.FixtureRequest) -> Backend:
    if name == "sqlite":
        return Backend(name, tmp, lambda: SQLiteStore(tmp / "vault.db", durability="normal"))
    from memvault.storage.postgres import PostgresStore

    dsn = request.getfixturevalue("pg_dsn")
    return Backend(name, tmp, lambda: PostgresStore(dsn, pool_size=2))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = _make_backend(request.param, tmp_path, request)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def vault(backend: Backend) -> Vault:
    return backend.vault()


# -- CRUD, versions, history ------------------------------------------------------------

def test_add_get_roundtrip(vault: Vault) -> None:
    item = vault.add("Alice adopted a cat named Miso", user_id="alice", kind="fact",
                     metadata={"source": "chat", "n": 3, "deep": {"b": [1, 2], "a": None}},
                     tags=["pets", "cats"], event_time="2024-05-01T10:00:00Z", importance=0.9,
                     expires_at="2030-01-01", provenance={"source": "unit"})
    got = vault.get(item.id)
    assert got.text == item.text and got.id == item.id
    assert (got.kind, got.user_id, got.version, got.status) == ("fact", "alice", 1, "active")
    assert got.metadata == {"deep": {"a": None, "b": [1, 2]}, "n": 3, "source": "chat"}
    assert list(got.metadata) == ["deep", "n", "source"]  # same key order on every backend
    # the statement the text makes (current truth) is recorded beside the caller's keys
    assert got.provenance["truth_keys"] == ["alice|pet"]
    assert {k: v for k, v in got.provenance.items() if not k.startswith("truth")} == \
        {"actor": None, "source": "unit"}
    assert got.tags == ("pets", "cats")
    assert got.event_time.isoformat() == "2024-05-01T10:00:00+00:00"
    assert got.expires_at.year == 2030 and got.importance == 0.9
    assert got.valid_from == item.valid_from and got.created_at == item.created_at
    assert got.valid_to is None


def test_update_keeps_history_and_closes_old_version(vault: Vault) -> None:
    a = vault.add("Alice lives in Paris", user_id="alice")
    b = vault.update(a.id, "Alice lives in Berlin", reason="moved")
    c = vault.update(a.id, "Alice lives in Lisbon", tags=["home"])
    assert (b.version, c.version) == (2, 3)
    hist = vault.history(a.id)
    assert [h.text for h in hist] == ["Alice lives in Paris", "Alice lives in Berlin",
                                      "Alice lives in Lisbon"]
    assert hist[0].valid_to == hist[1].valid_from
    assert hist[1].valid_to == hist[2].valid_from
    assert hist[2].valid_to is None and hist[2].tags == ("home",)
    assert vault.get(a.id).text == "Alice lives in Lisbon"
    assert [e.action for e in vault.audit(item_id=a.id)] == ["add", "update", "update"]
    assert vault.audit(item_id=a.id)[1].details == {"changed": ["text"], "reason": "moved"}
    assert vault.update(a.id, "Alice lives in Lisbon").version == 3  # no change: no write
    assert len(vault.history(a.id)) == 3


def test_update_metadata_only_reuses_embedding(vault: Vault) -> None:
    a = vault.add("Bob plays the cello", user_id="bob")
    b = vault.update(a.id, metadata={"verified": True}, tags=["music"])
    assert b.version == 2 and b.text == a.text
    hits = vault.search("cello", user_id="bob")
    assert hits[0].item.id == a.id and hits[0].item.version == 2
    assert vault.check()["ok"]


def test_as_of_get_and_search(vault: Vault) -> None:
    a = vault.add("Alice lives in Paris", user_id="alice")
    t1 = vault.get(a.id).valid_from
    time.sleep(0.01)
    vault.update(a.id, "Alice lives in Berlin")
    t2 = vault.get(a.id).valid_from
    assert vault.get(a.id, as_of=t1).text == "Alice lives in Paris"
    assert vault.get(a.id, as_of=t2).text == "Alice lives in Berlin"
    with pytest.raises(NotFound):
        vault.get(a.id, as_of=t1 - timedelta(seconds=5))
    assert [h.item.text for h in vault.search("where does Alice live", user_id="alice",
                                              as_of=t1)] == ["Alice lives in Paris"]
    assert [h.item.text for h in vault.search("where does Alice live",
                                              user_id="alice")] == ["Alice lives in Berlin"]
    assert [i.text for i in vault.list(user_id="alice", as_of=t1).items] == \
        ["Alice lives in Paris"]


def test_tombstone_restore_purge(vault: Vault) -> None:
    a = vault.add("Carol is allergic to peanuts", user_id="carol")
    before = vault.get(a.id).valid_from
    d = vault.delete(a.id, reason="user asked")
    assert d.status == "deleted" and d.version == 2
    assert vault.search("peanuts allergy", user_id="carol") == []
    assert vault.list(user_id="carol").total == 0
    assert vault.list(user_id="carol", status="deleted").items[0].id == a.id
    assert vault.get(a.id).status == "deleted"
    assert vault.get(a.id, as_of=before).status == "active"
    with pytest.raises(Conflict):
        vault.update(a.id, "changed")
    assert vault.delete(a.id).version == 2
    r = vault.restore(a.id)
    assert r.status == "active" and r.version == 3
    assert vault.search("peanuts allergy", user_id="carol")[0].item.id == a.id
    other = vault.add("Carol is allergic to peanuts", user_id="dave")  # shares the vector
    vault.archive(other.id)
    assert vault.purge(a.id, reason="gdpr") == 3
    with pytest.raises(NotFound):
        vault.get(a.id)
    with pytest.raises(NotFound):
        vault.history(a.id)
    assert vault.search("peanuts", user_id="carol") == []
    assert vault.get(other.id).status == "archived"  # the shared vector survived
    assert vault.restore(other.id).status == "active"
    assert vault.search("peanuts", user_id="dave")[0].item.id == other.id
    events = vault.audit(item_id=a.id)
    assert events[-1].action == "purge" and events[-1].details["versions"] == 3
    assert vault.check()["ok"]


# -- filters, scopes, paging --------------------------------------------------------------

def test_filters_kind_tags_metadata_time(vault: Vault) -> None:
    vault.add("likes jazz", kind="preference", tags=["music"], metadata={"lang": "en"},
              event_time="2023-01-01")
    vault.add("went to a jazz concert", kind="event", tags=["music", "outing"],
              metadata={"lang": "en", "nested": {"city": "Oslo", "n": 2}},
              event_time="2024-06-01")
    vault.add("jazz in french: le jazz", kind="note", metadata={"lang": "fr", "flag": True})
    kinds = lambda hits: sorted(h.item.kind for h in hits)  # noqa: E731
    assert kinds(vault.search("jazz", filters={"kind": "event"})) == ["event"]
    assert kinds(vault.search("jazz", filters={"kind": ["event", "preference"]})) == \
        ["event", "preference"]
    assert kinds(vault.search("jazz", filters={"tags": ["outing"]})) == ["event"]
    assert kinds(vault.search("jazz", filters={"tags": ["outing", "music"]})) == \
        ["event", "preference"]
    assert kinds(vault.search("jazz", filters={"metadata": {"lang": "fr"}})) == ["note"]
    assert kinds(vault.search("jazz", filters={"metadata": {"nested.city": "Oslo"}})) == ["event"]
    assert kinds(vault.search("jazz", filters={"metadata": {"nested.n": 2}})) == ["event"]
    assert kinds(vault.search("jazz", filters={"metadata": {"nested.n": 2.0}})) == ["event"]
    assert kinds(vault.search("jazz", filters={"metadata": {"nested.n": "2"}})) == []
    assert kinds(vault.search("jazz", filters={"metadata": {"flag": True}})) == ["note"]
    assert kinds(vault.search("jazz", filters={"metadata": {"flag": False}})) == []
    assert kinds(vault.search("jazz", filters={"metadata": {"flag": None}})) == \
        ["event", "preference"]
    assert kinds(vault.search("jazz", filters={"event_after": "2024-01-01"})) == ["event"]
    assert kinds(vault.search("jazz", filters={"event_before": "2024-01-01"})) == ["preference"]
    assert vault.list(filters={"metadata": {"lang": "en"}}).total == 2
    assert vault.list(filters={"metadata": {"lang": "en"}, "kind": "event"}).total == 1


def test_created_time_filters(vault: Vault) -> None:
    first = vault.add("early bird note")
    time.sleep(0.02)
    cut = first.created_at + timedelta(seconds=0.01)
    vault.add("late bird note")
    assert [i.text for i in vault.list(filters={"created_before": cut}).items] == \
        ["early bird note"]
    assert [i.text for i in vault.list(filters={"created_after": cut}).items] == \
        ["late bird note"]
    assert [h.item.text for h in vault.search("bird", filters={"created_after": cut})] == \
        ["late bird note"]


def test_metadata_bool_and_number_filters(vault: Vault) -> None:
    vault.add("flagged", metadata={"flag": True, "n": 2})
    vault.add("unflagged", metadata={"flag": False, "n": 3})
    assert [i.text for i in vault.list(filters={"metadata": {"flag": True}}).items] == ["flagged"]
    assert [i.text for i in vault.list(filters={"metadata": {"flag": False}}).items] == \
        ["unflagged"]
    assert [i.text for i in vault.list(filters={"metadata": {"n": 3}}).items] == ["unflagged"]


def test_scope_isolation(vault: Vault) -> None:
    vault.add("Alice's password hint is her dog's name", user_id="alice")
    vault.add("Bob's password hint is his first car", user_id="bob")
    assert {h.item.user_id for h in vault.search("password hint", user_id="alice", k=10)} == \
        {"alice"}
    assert vault.list(user_id="bob").total == 1
    assert vault.search("password hint", user_id="nobody") == []
    assert len(vault.search("password hint", k=10)) == 2  # no scope: library-level view
    vault.add("turn one", user_id="u", agent_id="a1", session_id="s1", cube_id="c1")
    vault.add("turn two", user_id="u", agent_id="a2", session_id="s2", cube_id="c2")
    assert [h.item.agent_id for h in vault.search("turn", agent_id="a2")] == ["a2"]
    assert [h.item.session_id for h in vault.search("turn", session_id="s1")] == ["s1"]
    assert [h.item.cube_id for h in vault.search("turn", cube_id="c2")] == ["c2"]
    assert vault.list(user_id="u", agent_id="a1").total == 1
    assert vault.count(user_id="u") == 2


def test_list_paging(vault: Vault) -> None:
    ids = [i.id for i in vault.add_many([f"memory number {i}" for i in range(25)],
                                        batch_size=7, user_id="p")]
    for order, expected in (("created_asc", ids), ("created_desc", ids[::-1])):
        seen, offset = [], 0
        while offset is not None:
            page = vault.list(user_id="p", limit=10, offset=offset, order=order)
            assert page.total == 25
            seen += [i.id for i in page.items]
            offset = page.next_offset
        assert seen == expected
    assert [i.version for i in vault.export()] == [1] * 25


# -- links, audit, access, check ------------------------------------------------------------

def test_links(vault: Vault) -> None:
    a = vault.add("Alice works at Acme")
    b = vault.add("Acme is in Toronto")
    c = vault.add("Toronto has a tall tower")
    vault.link(a.id, b.id, kind="entity", weight=0.7)
    vault.link(a.id, c.id, kind="entity", weight=0.9)
    vault.link(a.id, b.id, kind="entity", weight=0.8)  # upsert: new weight
    assert [(link.target, link.weight) for link in vault.get(a.id).links] == \
        [(c.id, 0.9), (b.id, 0.8)]
    assert sorted(vault.store.links([b.id])) == [(a.id, b.id)]
    assert sorted(vault.store.links([a.id])) == sorted([(a.id, b.id), (a.id, c.id)])
    vault.link(c.id, b.id, kind="next")
    assert sorted(vault.store.links([b.id], skip=["entity"])) == [(c.id, b.id)]
    assert sorted(vault.store.links([b.id], skip=["entity", "next"])) == []
    assert sorted(vault.store.links([b.id], skip=["related"])) == [(a.id, b.id), (c.id, b.id)]
    vault.unlink(c.id, b.id, kind="next")
    vault.unlink(a.id, b.id, kind="entity")
    assert [link.target for link in vault.get(a.id).links] == [c.id]
    with pytest.raises(NotFound):
        vault.link(a.id, "no-such-id")
    assert [e.action for e in vault.audit(action="link")] == ["link"] * 4


def test_thread_links_and_context(vault: Vault) -> None:
    turns = vault.add_messages([
        {"role": "user", "name": "Melanie", "content": "Did you finish the lighthouse painting?"},
        {"role": "user", "name": "Caroline", "content": "Yes! Last weekend, finally."},
    ], user_id="u", session_id="s1")
    assert vault.get(turns[0].id).links[0].target == turns[1].id
    hits = vault.search("Caroline lighthouse painting", user_id="u", k=2)
    assert turns[1].id in [h.item.id for h in hits]


def test_audit_feed(vault: Vault) -> None:
    a = vault.add("audited one")
    b = vault.add("audited two")
    vault.update(a.id, "audited one, changed")
    vault.delete(b.id)
    events = vault.audit()
    assert [(e.action, e.item_id, e.version) for e in events] == [
        ("add", a.id, 1), ("add", b.id, 1), ("update", a.id, 2), ("delete", b.id, 2)]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert [e.action for e in vault.audit(after=seqs[1])] == ["update", "delete"]
    assert [e.action for e in vault.audit(action="add", limit=1)] == ["add"]
    store = vault.store
    assert store.last_change() == seqs[-1]
    mark, ids = store.changes(seqs[1])
    assert mark == seqs[-1] and ids == [a.id, b.id]
    assert store.changes(mark) == (mark, [])


def test_access_stats(vault: Vault) -> None:
    a = vault.add("heat me up")
    for _ in range(3):
        vault.search("heat")
    vault.flush()
    got = vault.get(a.id)
    assert got.access_count >= 3 and got.last_accessed_at is not None
    vault.store.touch({"no-such-id": (5, time.time())})  # ignored: no such memory
    assert vault.store.count(RowQuery(ids=["no-such-id"])) == 0


def test_meta_and_check(vault: Vault, backend: Backend) -> None:
    meta = vault.store.meta()
    assert meta["embedder"] == "hash-256" and meta["dim"] == "256" and "vault_id" in meta
    vault.store.set_meta("custom", "x")
    vault.store.set_meta("custom", "y")
    assert vault.store.meta()["custom"] == "y"
    vault.add_many([f"note {i}" for i in range(10)])
    report = vault.check()
    assert report["ok"] and report["index_consistent"] and report["active"] == 10
    with pytest.raises(Exception):  # a store on another embedder is refused
        Vault(settings=Settings(path=backend.tmp / "x.db", embedder="hash-128"),
              embedder="hash-128", store=backend.store())


# -- bad input, conflicts, atomicity --------------------------------------------------------

def test_bad_input_changes_nothing(vault: Vault) -> None:
    vault.add("keep me", id="keep-1")
    mark, count = vault.store.last_change(), vault.count()
    with pytest.raises(InvalidInput):
        vault.add_many(["fine", {"text": "bad", "kind": "Not A Kind"}])
    with pytest.raises(InvalidInput):
        vault.add("x" * (vault.limits.max_text_bytes + 1))
    with pytest.raises(InvalidInput):
        vault.search("jazz", filters={"metadata": {"a b": 1}})
    with pytest.raises(InvalidInput):
        vault.add_many([{"text": "a", "id": "same"}, {"text": "b", "id": "same"}])
    # A store-level conflict in the middle of a batch rolls the whole batch back.
    with pytest.raises(Conflict):
        vault.add_many([{"text": "new one", "id": "fresh-1"}, {"text": "clash", "id": "keep-1"}])
    with pytest.raises(NotFound):
        vault.get("fresh-1")
    assert vault.get("keep-1").text == "keep me"
    assert (vault.store.last_change(), vault.count()) == (mark, count)
    assert vault.check()["ok"]


def test_stale_version_is_a_conflict(vault: Vault) -> None:
    a = vault.add("version one")
    vault.update(a.id, "version two")
    stale = vault.history(a.id)[0]
    import dataclasses

    item = dataclasses.replace(stale, version=2, text="sneaky", valid_from=stale.valid_from)
    vec = vault.embedder.embed(["sneaky"])[0]
    with pytest.raises(Conflict):
        vault.store.apply([InsertVersion(item, vec, "h-sneaky", expected_version=1),
                           AuditOp("update", a.id, 2)])
    assert [h.text for h in vault.history(a.id)] == ["version one", "version two"]
    assert vault.check()["ok"]


def test_two_vaults_on_one_store_see_each_others_writes(backend: Backend) -> None:
    a, b = backend.vault(), backend.vault()
    item = a.add("written by a about kayaking")
    assert b.search("kayaking")[0].item.id == item.id
    b.update(item.id, "written by a about kayaking, edited by b")
    assert a.get(item.id).version == 2
    assert "edited by b" in a.search("kayaking")[0].item.text
    b.delete(item.id)
    assert a.search("kayaking") == []
    assert a.check()["ok"] and b.check()["ok"]


def test_concurrent_writers_one_winner_per_version(backend: Backend) -> None:
    """Writers with their own store (as separate processes would) race to update one
    memory: every version number is won exactly once, history stays contiguous, and the
    change feed misses nothing."""
    vaults = [backend.vault() for _ in range(4)]
    item = vaults[0].add("counter 0")
    conflicts = []
    barrier = threading.Barrier(len(vaults))

    def worker(v: Vault, n: int) -> None:
        barrier.wait()
        for i in range(8):
            try:
                current = v.get(item.id)
                v.update(item.id, f"counter {n}-{i} after v{current.version}")
            except Conflict:
                conflicts.append(n)

    threads = [threading.Thread(target=worker, args=(v, n)) for n, v in enumerate(vaults)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hist = vaults[1].history(item.id)
    assert [h.version for h in hist] == list(range(1, len(hist) + 1))
    assert sum(h.valid_to is None for h in hist) == 1
    assert len(hist) - 1 + len(conflicts) == 4 * 8
    for v in vaults:
        assert v.search("counter", k=5)[0].item.version == len(hist)
        assert v.check()["ok"]


# -- the store contract directly --------------------------------------------------------------

def test_lexical_ors_terms_and_respects_filters(vault: Vault) -> None:
    a = vault.add("the orchard grows apples", user_id="u1")
    b = vault.add("bananas ripen slowly", user_id="u1")
    vault.add("nothing relevant here", user_id="u1")
    c = vault.add("apples and bananas together", user_id="u2")
    store = vault.store
    seq_of = {r.item.id: r.seq for r in store.select(RowQuery())}
    got = store.lexical(["apples", "bananas"], RowQuery(), 10)
    assert {s for s, _ in got} == {seq_of[a.id], seq_of[b.id], seq_of[c.id]}
    assert got[0][0] == seq_of[c.id]  # matches both terms
    assert all(score > 0 for _, score in got)
    scoped = store.lexical(["apples", "bananas"], RowQuery(scope={"user_id": "u1"}), 10)
    assert {s for s, _ in scoped} == {seq_of[a.id], seq_of[b.id]}
    assert store.lexical(["apple"], RowQuery(), 10)[0][0] in (seq_of[a.id], seq_of[c.id])
    assert store.lexical([], RowQuery(), 10) == []
    assert store.lexical(["zzzunknown"], RowQuery(), 10) == []
    assert store.lexical(["'); DROP TABLE versions; --", "apples"], RowQuery(), 10)
    assert store.count(RowQuery()) == 4


def test_embeddings_seqs_and_scan(vault: Vault) -> None:
    items = vault.add_many([f"scan item {i}" for i in range(7)])
    vault.delete(items[0].id)
    store = vault.store
    rows = [r for batch in store.scan_current(batch=3) for r in batch]
    assert sorted(r.item.id for r, _ in rows) == sorted(i.id for i in items[1:])
    for row, vec in rows:
        assert vec.dtype == np.float32 and vec.shape == (256,)
        np.testing.assert_array_equal(vec, vault.embedder.embed([row.item.text])[0])
    seqs = store.seqs(RowQuery())
    assert sorted(seqs) == sorted(r.seq for r, _ in rows)
    embs = store.embeddings(seqs[:3])
    assert set(embs) == set(seqs[:3])
    assert store.count(RowQuery(statuses=None, all_versions=True)) == 8


# -- both backends side by side ----------------------------------------------------------------

_PEOPLE = ["Alice", "Bruno", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun"]
_CITIES = ["Lisbon", "Oslo", "Nairobi", "Quito", "Osaka", "Tallinn", "Perth", "Dakar"]
_THINGS = ["painting", "kayaking", "chess", "pottery", "sourdough baking", "birdwatching",
           "jazz piano", "rock climbing", "gardening", "astronomy"]
_PETS = ["a cat named Miso", "a parrot", "two dogs", "a tortoise", "no pets"]
_TEMPLATES = [
    "{p} moved to {c} last year and loves {t}.",
    "{p} has {pet} and talks about {t} every weekend.",
    "{p}'s sister lives in {c}; they meet for {t}.",
    "In {c}, {p} joined a club for {t}.",
    "{p} said the best {t} workshop is in {c}.",
    "{p} is allergic to peanuts and prefers {t} over parties.",
]


def _corpus(n: int = 200) -> list[dict[str, Any]]:
    rng = random.Random(8)
    out = []
    for i in range(n):
        text = rng.choice(_TEMPLATES).format(p=rng.choice(_PEOPLE), c=rng.choice(_CITIES),
                                             t=rng.choice(_THINGS), pet=rng.choice(_PETS))
        out.append({"id": f"m{i:03d}", "text": f"{text} (note {i})",
                    "user_id": f"user{i % 3}", "tags": [rng.choice(_THINGS).split()[0]]})
    return out


_QUERIES = ["Who moved to Lisbon?", "kayaking", "Who has a cat?", "peanut allergy",
            "jazz piano workshop", "Where does Chen's sister live?", "pottery club Osaka",
            "birdwatching weekend", "Farah parrot", "rock climbing in Perth",
            "sourdough", "astronomy club", "Dara painting Quito", "gardening Tallinn",
            "Who talks about chess?", "Emeka dogs", "best workshop", "Goran Dakar",
            "tortoise", "Ivan Nairobi sister"]


def _tie_groups(hits: list[Any]) -> list[frozenset[str]]:
    """Ids grouped by equal fused score (to float32 rounding: the two backends compute
    cosines in different code), best first: the order that is meaningful."""
    groups: list[tuple[float, set[str]]] = []
    for h in hits:
        if groups and abs(groups[-1][0] - h.score) <= 1e-6:
            groups[-1][1].add(h.item.id)
        else:
            groups.append((h.score, {h.item.id}))
    return [frozenset(g) for _, g in groups]


def test_hybrid_search_matches_across_backends(tmp_path: Path,
                                               request: pytest.FixtureRequest) -> None:
    """Same corpus (200 memories), same 20 queries, both backends: the same ranking.

    Dense retrieval is faiss over the store's vectors on SQLite and pgvector's HNSW inside
    PostgreSQL (no in-memory index there); on 200 rows both are exact, and their cosines
    agree to float32 rounding (~1e-7), so fused scores are compared with rtol 1e-6 and the
    rankings must still be equal. Lexical retrieval is BM25 with FTS5's constants on both sides, and on this
    corpus PostgreSQL's scores equal FTS5's to ~1e-15, so the rankings must be equal up
    to ties (only a tie of several hits at the end of a top 10 may be cut differently;
    every other group, the last one included, must hold the same ids). The tokenizers are not
    the same (FTS5: Porter, stop words indexed; PostgreSQL english: Snowball, stop words
    dropped but counted in the length; hyphenated words count their parts too), so text
    that leans on those differences can move near-ties; this corpus does not.
    """
    from memvault.retrieval.text import terms

    hits: dict[str, list[list[Any]]] = {}
    lexical: dict[str, list[list[tuple[int, float]]]] = {}
    for name in BACKENDS:
        b = _make_backend(name, tmp_path / name, request)
        try:
            v = b.vault()
            v.add_many(_corpus(), batch_size=64)
            hits[name] = [v.search(q, k=10) for q in _QUERIES] + \
                [v.search(q, k=10, user_id="user1") for q in _QUERIES[:5]]
            lexical[name] = [v.store.lexical(terms(q), RowQuery(), 50) for q in _QUERIES]
        finally:
            b.close()
    queries = _QUERIES + [f"{q} [user1]" for q in _QUERIES[:5]]
    for q, s, p in zip(queries, hits["sqlite"], hits["postgres"]):
        gs, gp = _tie_groups(s), _tie_groups(p)
        assert len(s) == len(p) and len(gs) == len(gp), q
        np.testing.assert_allclose([h.score for h in s], [h.score for h in p], rtol=1e-6)
        # every group, the last one too: only a tie of several hits cut by k may be cut
        # differently (equal scores to ~1e-15 can sort either way); its score still counts
        cut_tie = len(s) == 10 and len(gs[-1]) > 1
        assert gs[:-1] == gp[:-1] and (cut_tie or gs[-1] == gp[-1]), \
            (q, [h.item.id for h in s], [h.item.id for h in p])
    for q, s, p in zip(_QUERIES, lexical["sqlite"], lexical["postgres"]):
        assert [seq for seq, _ in s] == [seq for seq, _ in p], q
        np.testing.assert_allclose([x for _, x in s], [x for _, x in p], rtol=1e-9)


# -- PostgreSQL only ------------------------------------------------------------------------------

def _plan(dsn: str, store: Any, qvec: np.ndarray, query: RowQuery, k: int) -> str:
    """PostgreSQL's plan for ``vector_search``'s statement, with the same settings."""
    import psycopg
    from pgvector.psycopg import register_vector

    sql, params = store._vector_sql(query)
    vec = np.ascontiguousarray(qvec, dtype=np.float32)
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SELECT set_config('hnsw.ef_search', '400', false), "
                     "set_config('hnsw.iterative_scan', 'relaxed_order', false)")
        rows = conn.execute("EXPLAIN " + sql, [vec, *params, vec, k]).fetchall()
    return "\n".join(r[0] for r in rows)


def test_pg_vector_search_agrees_with_exact(pg_dsn: str) -> None:  # noqa: F811
    """pgvector's own dense ranking (the HNSW walk, not a sequential scan) against the
    exact one. Below some tens of thousands of rows the planner scans the table and sorts
    (exact), so the HNSW walk would never be compared: sequential scans are disabled for
    this database (every pooled session inherits it) and the plan is checked."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    from memvault.storage.postgres import PostgresStore

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET enable_seqscan = off").format(
            sql.Identifier(conninfo_to_dict(pg_dsn)["dbname"])))
    store = PostgresStore(pg_dsn, pool_size=2)
    with Vault(settings=Settings(path=Path("unused.db"), embedder="hash"), embedder="hash",
               store=store) as v:
        items = v.add_many([{"text": c["text"], "user_id": c["user_id"]}
                            for c in _corpus(600)], batch_size=300)
        v.delete(items[0].id)
        assert store.has_vector_index()
        assert store.check()["vector_index"] is True
        with psycopg.connect(pg_dsn, autocommit=True) as conn:  # what autovacuum does later
            conn.execute("ANALYZE versions, vectors")
        for text in ("Who moved to Lisbon?", "Farah parrot", "rock climbing in Perth"):
            qvec = v.embedder.embed([text])[0]
            for query in (RowQuery(), RowQuery(scope={"user_id": "user2"})):
                plan = _plan(pg_dsn, store, qvec, query, 10)
                assert "vectors_hnsw" in plan, plan
                exact = v.searcher._exact(qvec, query, 10)
                approx = store.vector_search(qvec, query, 10, ef_search=400)
                assert [s for s, _ in approx] == [s for s, _ in exact], (text, query)
                np.testing.assert_allclose([x for _, x in approx], [x for _, x in exact],
                                           atol=1e-5)


def test_pg_schema_is_versioned_and_reopen_is_idempotent(pg_dsn: str) -> None:  # noqa: F811
    import psycopg

    from memvault.storage.postgres import PostgresStore

    stores = []
    threads = [threading.Thread(target=lambda: stores.append(PostgresStore(pg_dsn, pool_size=1)))
               for _ in range(3)]  # racing first opens: the advisory lock serialises them
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores) == 3
    for s in stores:
        s.close()
    with psycopg.connect(pg_dsn) as conn:
        scripts = sorted(p.name for p in (Path(memvault.storage.__file__).parent / "migrations"
                                          / "postgres").glob("*.sql"))
        assert conn.execute("SELECT version, name FROM schema_version ORDER BY version"
                            ).fetchall() == list(enumerate(scripts, start=1))
    s = PostgresStore(pg_dsn, dim=64)
    assert s.has_vector_index()
    s.close()
    with pytest.raises(InvalidInput):
        PostgresStore(pg_dsn, dim=128)


def test_metadata_filter_types_are_strict(backend: Backend, request: pytest.FixtureRequest
                                          ) -> None:
    """A number filter matches numbers only: {"flag": 1} must not match ``true``."""
    v = backend.vault()
    v.add("flag true", metadata={"flag": True, "k": ["a"]})
    v.add("flag one", metadata={"flag": 1})
    assert [i.text for i in v.list(filters={"metadata": {"k": "a"}}).items] == []
    assert [i.text for i in v.list(filters={"metadata": {"flag": True}}).items] == ["flag true"]
    assert [i.text for i in v.list(filters={"metadata": {"flag": 1}}).items] == ["flag one"]


def test_pg_errors_are_translated(pg_dsn: str) -> None:  # noqa: F811
    from memvault import StorageError
    from memvault.storage.postgres import PostgresStore

    with pytest.raises(StorageError):  # nothing listens on port 1
        PostgresStore("postgresql://postgres:x@127.0.0.1:1/none", connect_timeout=2)
    store = PostgresStore(pg_dsn, pool_size=1)
    with Vault(settings=Settings(path=Path("unused.db"), embedder="hash"), embedder="hash",
               store=store) as v:
        a = v.add("a 256-d memory")
        import dataclasses

        item = dataclasses.replace(a, id="other-dim")
        with pytest.raises(InvalidInput):  # the column is vector(256) now
            store.apply([InsertVersion(item, np.ones(8, np.float32) / 8 ** 0.5, "h8", 0,
                                       search_text="x"), AuditOp("add", "other-dim", 1)])
        with pytest.raises(Conflict):  # a unique violation inside the pipeline
            store.apply([InsertVersion(a, v.embedder.embed(["x"])[0], "hx", 0,
                                       search_text="x"), AuditOp("add", a.id, 1)])
        assert v.count() == 1 and v.check()["ok"]
    with pytest.raises(StorageError):
        store.meta()  # closed
