"""The Vault facade through a real SQLite store: CRUD, versions, tombstones, as_of, scopes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from memvault import Conflict, NotFound, Settings, Vault


def test_add_get_roundtrip(vault: Vault) -> None:
    item = vault.add("Alice adopted a cat named Miso", user_id="alice", kind="fact",
                     metadata={"source": "chat", "n": 3}, tags=["pets"],
                     event_time="2024-05-01T10:00:00Z", importance=0.9)
    got = vault.get(item.id)
    assert got.text == "Alice adopted a cat named Miso"
    assert (got.kind, got.user_id, got.version, got.status) == ("fact", "alice", 1, "active")
    assert got.metadata == {"source": "chat", "n": 3}
    assert got.tags == ("pets",)
    assert got.event_time.isoformat() == "2024-05-01T10:00:00+00:00"
    assert got.importance == 0.9
    assert got.valid_to is None


def test_update_keeps_history_and_closes_old_version(vault: Vault) -> None:
    a = vault.add("Alice lives in Paris", user_id="alice")
    b = vault.update(a.id, "Alice lives in Berlin", reason="moved")
    c = vault.update(a.id, "Alice lives in Lisbon")
    assert (b.version, c.version) == (2, 3)
    hist = vault.history(a.id)
    assert [h.text for h in hist] == ["Alice lives in Paris", "Alice lives in Berlin",
                                      "Alice lives in Lisbon"]
    assert hist[0].valid_to == hist[1].valid_from
    assert hist[1].valid_to == hist[2].valid_from
    assert hist[2].valid_to is None
    assert vault.get(a.id).text == "Alice lives in Lisbon"
    actions = [e.action for e in vault.audit(item_id=a.id)]
    assert actions == ["add", "update", "update"]
    assert vault.audit(item_id=a.id)[1].details["reason"] == "moved"


def test_update_without_change_writes_nothing(vault: Vault) -> None:
    a = vault.add("same text")
    assert vault.update(a.id, "same text").version == 1
    assert len(vault.history(a.id)) == 1


def test_update_metadata_only_reuses_embedding(vault: Vault) -> None:
    a = vault.add("Bob plays the cello", user_id="bob")
    b = vault.update(a.id, metadata={"verified": True}, tags=["music"])
    assert b.version == 2 and b.text == a.text and b.metadata == {"verified": True}
    hits = vault.search("cello", user_id="bob")
    assert hits[0].item.id == a.id and hits[0].item.version == 2


def test_as_of_time_travel(vault: Vault) -> None:
    a = vault.add("Alice lives in Paris", user_id="alice")
    t1 = vault.get(a.id).valid_from
    time.sleep(0.01)
    vault.update(a.id, "Alice lives in Berlin")
    t2 = vault.get(a.id).valid_from
    assert vault.get(a.id, as_of=t1).text == "Alice lives in Paris"
    assert vault.get(a.id, as_of=t2).text == "Alice lives in Berlin"
    with pytest.raises(NotFound):
        vault.get(a.id, as_of=t1 - timedelta(seconds=5))
    old = vault.search("where does Alice live", user_id="alice", as_of=t1)
    assert [h.item.text for h in old] == ["Alice lives in Paris"]
    now = vault.search("where does Alice live", user_id="alice")
    assert [h.item.text for h in now] == ["Alice lives in Berlin"]


def test_delete_is_a_restorable_tombstone(vault: Vault) -> None:
    a = vault.add("Carol is allergic to peanuts", user_id="carol")
    before = vault.get(a.id).valid_from
    d = vault.delete(a.id, reason="user asked")
    assert d.status == "deleted" and d.version == 2
    assert vault.search("peanuts allergy", user_id="carol") == []
    assert vault.list(user_id="carol").total == 0
    assert vault.list(user_id="carol", status="deleted").items[0].id == a.id
    assert vault.get(a.id).status == "deleted"  # tombstones stay visible to get
    assert vault.get(a.id, as_of=before).status == "active"
    with pytest.raises(Conflict):
        vault.update(a.id, "changed")
    assert vault.delete(a.id).version == 2  # idempotent
    r = vault.restore(a.id)
    assert r.status == "active" and r.version == 3
    assert vault.search("peanuts allergy", user_id="carol")[0].item.id == a.id


def test_purge_really_removes(vault: Vault) -> None:
    a = vault.add("secret plan", user_id="dave")
    vault.update(a.id, "secret plan v2")
    assert vault.purge(a.id, reason="gdpr") == 2
    with pytest.raises(NotFound):
        vault.get(a.id)
    with pytest.raises(NotFound):
        vault.history(a.id)
    assert vault.search("secret plan") == []
    events = vault.audit(item_id=a.id)
    assert events[-1].action == "purge" and events[-1].details["versions"] == 2
    assert "secret plan" not in str([e.details for e in events])  # the log keeps no text
    assert vault.count(status="any") == 0
    assert vault.check()["ok"]


def test_restore_requires_deleted(vault: Vault) -> None:
    a = vault.add("x marks the spot")
    with pytest.raises(Conflict):
        vault.restore(a.id)


def test_scope_isolation(vault: Vault) -> None:
    vault.add("Alice's password hint is her dog's name", user_id="alice")
    vault.add("Bob's password hint is his first car", user_id="bob")
    hits = vault.search("password hint", user_id="alice", k=10)
    assert {h.item.user_id for h in hits} == {"alice"}
    assert vault.list(user_id="bob").total == 1
    assert vault.search("password hint", user_id="nobody") == []
    assert len(vault.search("password hint", k=10)) == 2  # no scope: library-level view


def test_scope_agent_and_session(vault: Vault) -> None:
    vault.add("turn one", user_id="u", agent_id="a1", session_id="s1")
    vault.add("turn two", user_id="u", agent_id="a2", session_id="s2")
    assert [h.item.agent_id for h in vault.search("turn", agent_id="a2")] == ["a2"]
    assert [h.item.session_id for h in vault.search("turn", session_id="s1")] == ["s1"]
    assert vault.list(user_id="u", agent_id="a1").total == 1


def test_filters_kind_tags_metadata_time(vault: Vault) -> None:
    vault.add("likes jazz", kind="preference", tags=["music"], metadata={"lang": "en"},
              event_time="2023-01-01")
    vault.add("went to a jazz concert", kind="event", tags=["music", "outing"],
              metadata={"lang": "en", "nested": {"city": "Oslo"}}, event_time="2024-06-01")
    vault.add("jazz in french: le jazz", kind="note", metadata={"lang": "fr"})
    kinds = lambda hits: sorted(h.item.kind for h in hits)  # noqa: E731
    assert kinds(vault.search("jazz", filters={"kind": "event"})) == ["event"]
    assert kinds(vault.search("jazz", filters={"kind": ["event", "preference"]})) == \
        ["event", "preference"]
    assert kinds(vault.search("jazz", filters={"tags": ["outing"]})) == ["event"]
    assert kinds(vault.search("jazz", filters={"metadata": {"lang": "fr"}})) == ["note"]
    assert kinds(vault.search("jazz", filters={"metadata": {"nested.city": "Oslo"}})) == ["event"]
    assert kinds(vault.search("jazz", filters={"event_after": "2024-01-01"})) == ["event"]
    assert kinds(vault.search("jazz", filters={"event_before": "2024-01-01"})) == ["preference"]
    assert vault.list(filters={"metadata": {"lang": "en"}}).total == 2


def test_metadata_bool_and_number_filters(vault: Vault) -> None:
    vault.add("flagged", metadata={"flag": True, "n": 2})
    vault.add("unflagged", metadata={"flag": False, "n": 3})
    assert [i.text for i in vault.list(filters={"metadata": {"flag": True}}).items] == ["flagged"]
    assert [i.text for i in vault.list(filters={"metadata": {"n": 3}}).items] == ["unflagged"]


def test_list_paging(vault: Vault) -> None:
    ids = [vault.add(f"memory number {i}", user_id="p").id for i in range(25)]
    seen = []
    offset = 0
    while offset is not None:
        page = vault.list(user_id="p", limit=10, offset=offset, order="created_asc")
        assert page.total == 25
        seen += [i.id for i in page.items]
        offset = page.next_offset
    assert seen == ids


def test_add_messages_stores_turns(vault: Vault) -> None:
    items = vault.add_messages([
        {"role": "user", "content": "I just moved to Denver", "name": "Sam",
         "timestamp": "2024-03-02T09:00:00Z"},
        {"role": "assistant", "content": "Congrats on the move!"},
    ], user_id="sam", session_id="s1")
    assert [i.kind for i in items] == ["turn", "turn"]
    assert items[0].metadata == {"role": "user", "speaker": "Sam"}
    assert items[0].event_time.year == 2024
    assert vault.search("Denver", user_id="sam")[0].item.id == items[0].id


def test_add_many_with_defaults_and_progress(vault: Vault) -> None:
    seen = []
    items = vault.add_many(["a one", {"text": "b two", "kind": "fact"}, "c three"],
                           batch_size=2, progress=seen.append, user_id="z")
    assert seen == [2, 1]
    assert [i.user_id for i in items] == ["z", "z", "z"]
    assert items[1].kind == "fact"
    assert vault.list(user_id="z").total == 3


def test_caller_supplied_id_and_duplicate_id_conflict(vault: Vault) -> None:
    vault.add("first", id="my-id-1")
    with pytest.raises(Conflict):
        vault.add("second", id="my-id-1")
    assert vault.get("my-id-1").text == "first"


def test_search_hits_carry_sources_and_rank(vault: Vault) -> None:
    vault.add("The quick brown fox jumps over the lazy dog")
    vault.add("A completely unrelated sentence about taxes")
    hits = vault.search("quick fox", k=2)
    assert hits[0].rank == 1 and "lexical" in hits[0].sources and "dense" in hits[0].sources
    assert hits[0].score >= hits[1].score


def test_access_stats_are_recorded(vault: Vault) -> None:
    a = vault.add("heat me up")
    b = vault.add("a sentence about taxes")
    for _ in range(3):
        vault.search("heat", k=1)
    vault.flush()
    # exactly once per search that returned it (">= 3" would let double counting pass),
    # and nothing for a memory no search returned
    assert vault.get(a.id).access_count == 3 and vault.get(b.id).access_count == 0
    vault.flush()  # the two gets above were reads of their memories too: once each
    assert vault.get(a.id).access_count == 4 and vault.get(b.id).access_count == 1
    assert vault.get(a.id).last_accessed_at is not None


def test_reopen_persists_everything(db_path) -> None:
    with Vault(db_path, embedder="hash") as v:
        a = v.add("persist me", user_id="u")
        v.update(a.id, "persist me v2")
    with Vault(db_path, embedder="hash") as v:
        assert v.get(a.id).text == "persist me v2"
        assert len(v.history(a.id)) == 2
        assert v.search("persist", user_id="u")[0].item.id == a.id
        assert v.searcher.report["index"] == "loaded snapshot"
        assert v.check()["ok"]


def test_index_rebuilt_when_snapshot_missing(db_path) -> None:
    import shutil

    with Vault(db_path, embedder="hash") as v:
        ids = [v.add(f"note {i} about gardening").id for i in range(30)]
    shutil.rmtree(db_path.with_name(db_path.name + ".index"))
    with Vault(db_path, embedder="hash") as v:
        assert v.searcher.report["index"] == "built from store"
        assert v.check()["index_consistent"]
        assert {h.item.id for h in v.search("gardening", k=30)} == set(ids)


def test_writes_from_another_vault_are_seen(db_path) -> None:
    """Two Vault objects (as two processes would) on one store see each other's writes."""
    with Vault(db_path, embedder="hash") as a, Vault(db_path, embedder="hash") as b:
        item = a.add("written by a about kayaking")
        assert b.search("kayaking")[0].item.id == item.id
        b.delete(item.id)
        assert a.search("kayaking") == []


def test_wrong_embedder_is_refused(db_path) -> None:
    from memvault import ConfigurationError

    Vault(db_path, embedder="hash").close()
    with pytest.raises(ConfigurationError):
        Vault(db_path, embedder="hash-128")


def test_a_vault_opens_with_its_own_embedder(db_path) -> None:
    """No embedder named: the one the vault was created with (MiniLM for a new one)."""
    with Vault(db_path, embedder="hash-64") as v:
        v.add("made with a 64-d hash embedder")
    with Vault(db_path) as v:
        assert v.embedder.id == "hash-64"
        assert [h.item.text for h in v.search("made with", k=1)] == [
            "made with a 64-d hash embedder"]
    with Vault(settings=Settings(path=db_path.with_name("new.db"))) as fresh:
        assert fresh.embedder.id == "all-minilm-l6-v2"


def test_a_stored_embedder_that_cannot_be_loaded_by_name_is_a_clear_error(db_path) -> None:
    from memvault import ConfigurationError
    from memvault.models import HashEmbedder

    class Custom(HashEmbedder):
        def __init__(self) -> None:
            super().__init__(32)
            self.id = "my-own-model"

    with Vault(db_path, embedder=Custom()) as v:
        v.add("kept")
    with pytest.raises(ConfigurationError) as err:
        Vault(db_path)
    assert err.value.details["vault_embedder"] == "my-own-model"
    with Vault(db_path, embedder=Custom()) as v:  # the failed open left nothing locked
        assert v.count() == 1


def test_temporary_vault() -> None:
    with Vault(embedder="hash") as v:
        v.add("ephemeral")
        assert v.count() == 1


def test_export_includes_history(vault: Vault) -> None:
    a = vault.add("v1 text")
    vault.update(a.id, "v2 text")
    vault.add("other")
    assert len(list(vault.export())) == 2
    assert [i.version for i in vault.export(history=True) if i.id == a.id] == [1, 2]


def test_links(vault: Vault) -> None:
    a = vault.add("Alice works at Acme")
    b = vault.add("Acme is in Toronto")
    vault.link(a.id, b.id, kind="entity", weight=0.7)
    assert vault.get(a.id).links[0].target == b.id
    vault.unlink(a.id, b.id, kind="entity")
    assert vault.get(a.id).links == ()
    with pytest.raises(NotFound):
        vault.link(a.id, "no-such-id")


def test_turns_are_indexed_with_speaker_and_thread(vault: Vault) -> None:
    """A reply that names neither speaker nor topic is found through its indexed context."""
    vault.add_messages([
        {"role": "user", "name": "Melanie", "content": "Did you finish the lighthouse painting?"},
        {"role": "user", "name": "Caroline", "content": "Yes! Last weekend, finally."},
        {"role": "user", "name": "Melanie", "content": "We should go hiking soon."},
    ], user_id="u", session_id="s1")
    hits = vault.search("Caroline lighthouse painting", user_id="u", k=3)
    assert hits[0].item.text == "Yes! Last weekend, finally." or \
        hits[1].item.text == "Yes! Last weekend, finally."
    assert "lexical" in next(h for h in hits if h.item.text.startswith("Yes")).sources
    # the stored text is untouched
    assert all(not h.item.text.startswith("Caroline:") for h in hits)


def test_thread_context_found_across_separate_adds(vault: Vault) -> None:
    vault.add_messages([{"role": "user", "name": "Ann", "content": "Where is the spare key?"}],
                       user_id="u", session_id="s9")
    reply = vault.add_messages([{"role": "user", "name": "Ben", "content": "Under the blue pot."}],
                               user_id="u", session_id="s9")[0]
    hits = vault.search("spare key", user_id="u", filters={"metadata": {"speaker": "Ben"}})
    assert hits and hits[0].item.id == reply.id
    assert "lexical" in hits[0].sources


def test_index_context_off_indexes_text_only(tmp_path) -> None:
    from memvault import Settings

    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash",
                                 index_context="off")) as v:
        v.add_messages([{"role": "user", "name": "Zed", "content": "hello there"}], user_id="u")
        hits = v.search("Zed", user_id="u")
        assert all("lexical" not in h.sources for h in hits)


def test_common_terms_are_pruned_only_on_large_matches(vault: Vault) -> None:
    """With a tiny match limit the most common word is dropped, the rare one still ranks."""
    vault.add_many([f"the weather report number {i}" for i in range(30)] +
                   ["weather in Reykjavik is windy"])
    store = vault.store
    store.max_lexical_matches = 5  # type: ignore[attr-defined]
    hits = vault.search("weather Reykjavik", k=3)
    assert hits[0].item.text == "weather in Reykjavik is windy"
    assert "lexical" in hits[0].sources
    lexical_hits = [h for h in vault.search("weather Reykjavik", k=31) if "lexical" in h.sources]
    assert len(lexical_hits) == 1  # "weather" (31 rows) was pruned, "reykjavik" kept
