"""Lifecycle jobs on a real SQLite vault (hash embedder): entities, heat, A-MEM links,
forgetting, and incremental hierarchical consolidation, with the audit trail of each."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvault import Vault
from memvault.errors import InvalidInput
from memvault.models.scripted import Reply, ScriptedLLMServer
from memvault.scheduler import (ConsolidateConfig, ForgetPolicy, HeatConfig, LinkConfig,
                                consolidate, forget, heat, link_new, plan_forget,
                                rank_by_heat)
from memvault.scheduler.entities import entities
from memvault.scheduler.forget import apply_forget
from memvault.scheduler.summarize import summarize
from memvault.settings import Settings as VaultSettings
from memvault.types import MemoryItem, utcnow

U = "maya"


def events(vault: Vault, action: str) -> list:
    return vault.audit(action=action, limit=1000)


# -- entities and heat -------------------------------------------------------------------
def test_entities_are_names_and_numbers_not_sentence_starters() -> None:
    found = entities("Yesterday I met Ana in Lisbon. We paid 1,200 euros in 2023! "
                     "Thanks, Ana's brother Rui said it's 3 stops.")
    assert found == {"ana", "lisbon", "1,200", "2023", "rui"}


def test_heat_decays_with_half_life_and_orders_by_use(vault: Vault) -> None:
    now = utcnow()
    cfg = HeatConfig(half_life_days=7)
    base = vault.add("a memory", user_id=U)
    week = dataclasses.replace(base, created_at=now - timedelta(days=7), last_accessed_at=None)
    fresh = dataclasses.replace(base, created_at=now)
    assert heat(fresh, now, cfg) == pytest.approx(1.0)
    assert heat(week, now, cfg) == pytest.approx(0.5)  # one half-life
    read = dataclasses.replace(week, access_count=5, last_accessed_at=now - timedelta(days=1))
    stale = dataclasses.replace(read, last_accessed_at=now - timedelta(days=30))
    important = dataclasses.replace(fresh, importance=1.0)
    ranked = [i for i, _ in rank_by_heat([stale, fresh, read, important], now, cfg)]
    assert ranked == [read, important, fresh, stale]
    with pytest.raises(InvalidInput):
        HeatConfig(half_life_days=0)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 10**6), days=st.floats(0, 3650), more_days=st.floats(0.01, 365),
       importance=st.floats(0, 1), half_life=st.floats(0.1, 365))
def test_heat_is_monotone_in_age_and_use(count: int, days: float, more_days: float,
                                         importance: float, half_life: float) -> None:
    now = utcnow()
    cfg = HeatConfig(half_life_days=half_life)
    item = MemoryItem(id="x", text="x", created_at=now - timedelta(days=days + more_days),
                      last_accessed_at=now - timedelta(days=days), access_count=count,
                      importance=importance)
    older = dataclasses.replace(item, last_accessed_at=now - timedelta(days=days + more_days))
    busier = dataclasses.replace(item, access_count=count + 1)
    assert 0 <= heat(older, now, cfg) <= heat(item, now, cfg) <= heat(busier, now, cfg)


def test_heat_reads_real_access_statistics(vault: Vault) -> None:
    hot = vault.add("Maya climbs at the boulder gym", user_id=U)
    cold = vault.add("Maya once bought a kettle", user_id=U)
    for _ in range(3):
        vault.get(hot.id)
    vault.flush()
    items = {i.id: i for i in vault.list(user_id=U).items}
    assert items[hot.id].access_count == 3
    assert heat(items[hot.id]) > heat(items[cold.id])


# -- links --------------------------------------------------------------------------------
def test_links_connect_shared_entities_within_one_owner_and_are_audited(vault: Vault) -> None:
    a = vault.add("Maya adopted a greyhound called Pixel", user_id=U)
    b = vault.add("Pixel chewed the sofa cushions", user_id=U)
    other = vault.add("Pixel is also the name of my phone", user_id="someone-else")
    unrelated = vault.add("the weather was grey", user_id=U)
    report = link_new(vault, LinkConfig(similar_k=0))
    assert report.links == {"entity": 1}
    assert {l.target for l in vault.get(b.id).links} == {a.id}
    for item in (other, unrelated):
        assert vault.get(item.id).links == ()
    (event,) = [e for e in events(vault, "link") if e.item_id == b.id]
    assert event.details["kind"] == "entity" and "pixel" in event.details["reason"]
    assert link_new(vault).links == {}  # watermark: nothing new, nothing written
    assert len(events(vault, "link")) == 1


def test_similar_and_session_links(vault: Vault) -> None:
    a = vault.add("we love hiking in the mountains every summer", user_id=U)
    b = vault.add("we love hiking in the mountains every summer with friends", user_id=U)
    vault.add_messages([{"role": "user", "content": "booked the tickets"}], user_id=U,
                       session_id="s1")
    turn = vault.list(user_id=U, session_id="s1").items[0]
    fact = vault.add("tickets cost a lot", kind="fact", user_id=U, session_id="s1")
    link_new(vault, LinkConfig(similar_min=0.7, entity_k=0))
    kinds_b = {(l.target, l.kind) for l in vault.get(b.id).links}
    assert (a.id, "similar") in kinds_b
    assert (turn.id, "session") in {(l.target, l.kind) for l in vault.get(fact.id).links}


@pytest.mark.parametrize("follow", [False, True])
def test_entity_links_feed_expansion_only_when_search_follows_them(
        tmp_path: Path, follow: bool) -> None:
    """By default search does not spread relevance along the links the scheduler derives
    (``SearchConfig.link_skip``: on LoCoMo they flood the top k); they are still stored,
    shown on the memory, and followed by a vault configured to."""
    from memvault.retrieval.searcher import SearchConfig

    search = SearchConfig(link_skip=()) if follow else SearchConfig()
    with Vault(settings=VaultSettings(path=tmp_path / "v.db", embedder="hash",
                                      search=search)) as vault:
        vault.add_many([f"filler note number {i} about groceries" for i in range(30)],
                       user_id=U)
        a = vault.add("Maya adopted a greyhound called Pixel", user_id=U)
        b = vault.add("Pixel hates thunderstorms", user_id=U)
        query = "which dog did Maya adopt, the greyhound?"
        before = {h.item.id: h for h in vault.search(query, user_id=U, k=10)}
        assert a.id in before and "links" not in before.get(b.id, before[a.id]).sources
        link_new(vault, LinkConfig(similar_k=0))  # the fillers are near-duplicates
        assert (a.id, "entity") in {(link.target, link.kind) for link in vault.get(b.id).links}
        after = {h.item.id: h for h in vault.search(query, user_id=U, k=10)}
        if follow:
            assert b.id in after and "links" in after[b.id].sources
            if b.id in before:
                assert after[b.id].score > before[b.id].score
        else:
            assert all("links" not in h.sources for h in after.values())
            assert {i: h.score for i, h in after.items()} == \
                {i: h.score for i, h in before.items()}


def test_evolution_adds_entities_to_neighbours_as_audited_versions(vault: Vault) -> None:
    a = vault.add("Pixel is a greyhound", user_id=U, tags=["pets"])
    vault.add("Maya walks Pixel along the Tagus", user_id=U)
    report = link_new(vault, LinkConfig(evolve=True, similar_k=0))
    assert report.evolved == 1
    versions = vault.history(a.id)
    assert [v.version for v in versions] == [1, 2] and versions[0].tags == ("pets",)
    assert set(versions[1].tags) == {"pets", "maya", "pixel", "tagus"}
    assert versions[1].text == versions[0].text
    (event,) = vault.audit(item_id=a.id, action="update")
    assert event.details["reason"].startswith("evolve: linked from")
    # evolved tags are indexed: a tag-only word now finds the neighbour lexically
    assert a.id in {h.item.id for h in vault.search("Tagus", user_id=U, k=3)}


def test_auto_link_on_add_behind_the_setting(tmp_path: Path) -> None:
    on = VaultSettings(path=tmp_path / "v.db", auto_link=True)
    with Vault(settings=on, embedder="hash") as v:
        a = v.add("Ana moved to Porto", user_id=U)
        b = v.add("Ana likes Porto wine", user_id=U)
        assert a.id in {l.target for l in v.get(b.id).links}
    with Vault(tmp_path / "off.db", embedder="hash") as v:
        v.add("Ana moved to Porto", user_id=U)
        b = v.add("Ana likes Porto wine", user_id=U)
        assert v.get(b.id).links == ()


# -- forgetting ---------------------------------------------------------------------------
def test_ttl_expiry_archives_then_purges_after_grace(vault: Vault) -> None:
    keep = vault.add("Maya's passport number is on file", user_id=U)
    temp = vault.add("parking spot 42 for today", user_id=U,
                     expires_at=utcnow() + timedelta(hours=1))
    soon = utcnow() + timedelta(hours=2)
    dry = forget(vault, dry_run=True, now=soon)
    assert [(d.item_id, d.rule) for d in dry.decisions] == [(temp.id, "expired")]
    assert vault.get(temp.id).status == "active"  # dry run changed nothing
    report = forget(vault, now=soon)
    assert report.count("archive") == 1
    assert vault.get(temp.id).status == "archived"
    assert temp.id not in {h.item.id for h in vault.search("parking spot", user_id=U)}
    (archived,) = vault.audit(item_id=temp.id, action="archive")
    assert archived.details["reason"].startswith("forget: expired")
    assert forget(vault, now=soon + timedelta(days=29)).decisions == []  # within grace
    later = forget(vault, now=soon + timedelta(days=31))
    assert [(d.item_id, d.action) for d in later.decisions] == [(temp.id, "purge")]
    assert [h.item.id for h in vault.search("parking", user_id=U)] != [temp.id]
    with pytest.raises(Exception):
        vault.get(temp.id)
    (purged,) = vault.audit(item_id=temp.id, action="purge")
    assert purged.details["reason"].startswith("forget: archived")
    assert vault.get(keep.id).status == "active"


def test_cold_unimportant_memories_are_archived_but_not_important_or_protected(
        vault: Vault) -> None:
    trivia = vault.add("the lift was slow", user_id=U, importance=0.1)
    vital = vault.add("Maya is allergic to penicillin", user_id=U, importance=0.9)
    profile = vault.add("Maya was born in 1990", kind="profile", user_id=U, importance=0.1)
    read = vault.add("the gym opens at 6", user_id=U, importance=0.1)
    later = utcnow() + timedelta(days=60)
    policy = ForgetPolicy(cold_heat_below=0.05, cold_importance_below=0.3,
                          cold_min_age_days=30)
    vault.get(read.id)
    vault.flush()
    # the read was 60 days before `later` too; only decay since it counts
    decisions = {d.item_id: d for d in plan_forget(vault, policy, now=later)}
    assert trivia.id in decisions and decisions[trivia.id].rule == "cold"
    assert vital.id not in decisions and profile.id not in decisions
    assert plan_forget(vault, policy, now=utcnow() + timedelta(days=10)) == []  # too young


def test_purge_only_what_forget_archived_and_dry_run_is_pure(vault: Vault) -> None:
    mine = vault.add("kept out of sight on purpose", user_id=U)
    vault.archive(mine.id, reason="user archived")
    assert plan_forget(vault, now=utcnow() + timedelta(days=365)) == []
    seq = vault.store.last_change()
    forget(vault, dry_run=True, now=utcnow() + timedelta(days=365))
    assert vault.store.last_change() == seq
    with pytest.raises(InvalidInput):
        ForgetPolicy(purge_after_days=-1)


def test_restored_memory_is_not_purged_by_a_stale_decision(vault: Vault) -> None:
    temp = vault.add("temporary", user_id=U, expires_at=utcnow() + timedelta(seconds=1))
    forget(vault, now=utcnow() + timedelta(minutes=1))
    decisions = plan_forget(vault, now=utcnow() + timedelta(days=31))
    assert [d.action for d in decisions] == ["purge"]
    vault.restore(temp.id)  # someone restores it between plan and apply
    report = apply_forget(vault, decisions)
    assert report.count("purge") == 0 and temp.id in report.skipped
    assert vault.get(temp.id).status == "active"
    assert vault.audit(item_id=temp.id, action="purge") == []


# -- consolidation ------------------------------------------------------------------------
def _sessions(vault: Vault) -> None:
    vault.add_messages([
        {"role": "user", "name": "Maya", "content": "I moved to Lisbon in March."},
        {"role": "user", "name": "Bob", "content": "Lisbon! Do you still work at Marlow?"},
        {"role": "user", "name": "Maya", "content": "Yes, Marlow lets me work from Lisbon."},
    ], user_id=U, session_id="s1", event_time="2024-03-10")
    vault.add_messages([
        {"role": "user", "name": "Maya", "content": "My sister Ana visited me in Lisbon."},
        {"role": "user", "name": "Bob", "content": "Did Ana like the trams?"},
    ], user_id=U, session_id="s2", event_time="2024-04-02")


def _summaries(vault: Vault, level: str) -> dict[str, Any]:
    """Active summaries of one level, by session id or topic."""
    page = vault.list(user_id=U, filters={"kind": "summary", "metadata": {"level": level}})
    return {(i.session_id if level == "session" else i.metadata["topic"]): i
            for i in page.items}


def test_consolidation_builds_a_hierarchy_with_provenance(vault: Vault) -> None:
    _sessions(vault)
    report = consolidate(vault)
    assert report.created == {"session": 2, "topic": 1}
    sessions = _summaries(vault, "session")
    s1 = sessions["s1"]
    turns = vault.list(user_id=U, session_id="s1", filters={"kind": "turn"}).items
    assert s1.metadata["sources"] == [t.id for t in sorted(turns, key=lambda t: t.created_at)]
    assert {l.target for l in s1.links if l.kind == "summarizes"} == {t.id for t in turns}
    assert s1.text.startswith("Session s1 (2024-03-10):") and "Lisbon" in s1.text
    assert s1.metadata["summarizer"] == "extractive" and s1.session_id == "s1"
    assert s1.event_time is not None and s1.event_time.date().isoformat() == "2024-03-10"
    (topic,) = _summaries(vault, "topic").values()
    assert topic.metadata["topic"] == "lisbon" and topic.session_id is None
    assert {l.target for l in topic.links} == {s.id for s in sessions.values()}
    adds = {e.item_id for e in events(vault, "add")}
    assert {s1.id, sessions["s2"].id, topic.id} <= adds
    link_events = [e for e in events(vault, "link") if e.details.get("kind") == "summarizes"]
    assert len(link_events) == 3


def test_consolidation_is_incremental(vault: Vault) -> None:
    _sessions(vault)
    consolidate(vault)
    again = consolidate(vault)
    assert not again.created and not again.rewritten and again.sessions_checked == 0
    vault.add_messages([{"role": "user", "name": "Bob", "content": "Ana loved Porto too."}],
                       user_id=U, session_id="s2")
    report = consolidate(vault)
    assert report.sessions_checked == 1 and report.rewritten == {"session": 1, "topic": 1}
    sessions = _summaries(vault, "session")
    assert sessions["s1"].version == 1  # untouched session: not rewritten
    assert sessions["s2"].version == 2 and "Porto" in sessions["s2"].text
    assert "Porto" not in vault.history(sessions["s2"].id)[0].text  # old text kept
    assert sessions["s2"].metadata["source_count"] == 3
    assert len([l for l in sessions["s2"].links if l.kind == "summarizes"]) == 3
    # a full re-check rewrites nothing: the digests still match
    full = consolidate(vault, full=True)
    assert full.sessions_checked == 2 and not full.rewritten and not full.created


def test_consolidation_follows_archived_turns_and_tag_changes_do_not_rewrite(
        vault: Vault) -> None:
    _sessions(vault)
    consolidate(vault)
    s1_turns = vault.list(user_id=U, session_id="s1", filters={"kind": "turn"}).items
    vault.update(s1_turns[0].id, tags=["moving"])  # no text change
    assert not consolidate(vault).rewritten
    vault.archive(s1_turns[0].id, reason="test")
    report = consolidate(vault)
    assert report.rewritten["session"] == 1 and report.links_removed == 1
    s1 = _summaries(vault, "session")["s1"]
    assert s1_turns[0].id not in {l.target for l in s1.links}
    vault.delete(s1_turns[1].id)  # one turn left: below min_sources, the summary retires
    assert consolidate(vault).archived == 2  # and "lisbon" is now in one session only
    assert "s1" not in _summaries(vault, "session") and _summaries(vault, "topic") == {}
    (event,) = vault.audit(item_id=s1.id, action="archive")
    assert event.details["reason"] == "consolidate: session has 1 sources left"


def test_consolidation_with_a_scripted_llm_and_its_fallbacks(vault: Vault) -> None:
    _sessions(vault)
    good = "Maya moved to Lisbon in March and still works for Marlow remotely."
    script = [good, Reply.error(500, "overloaded"), "Sure! Here is a summary: ok"]
    with ScriptedLLMServer(script) as server:
        llm = server.llm(retries=0)
        report = consolidate(vault, llm, ConsolidateConfig(topics=True))
        prompt = server.requests[0]["messages"][-1]["content"]
    sessions = _summaries(vault, "session")
    assert sessions["s1"].text == good and sessions["s1"].metadata["summarizer"] == llm.id
    assert "Maya: I moved to Lisbon in March." in prompt
    s2 = sessions["s2"]
    assert s2.metadata["summarizer"] == "extractive"
    assert s2.metadata["fallback"].startswith("model error")
    (topic,) = _summaries(vault, "topic").values()
    assert topic.metadata["fallback"].startswith("rejected")
    assert set(report.fallbacks) == {s2.id, topic.id}


def test_summarize_rejects_invented_names_and_refusals() -> None:
    class Fixed:
        id = "fixed"

        def __init__(self, answer: str) -> None:
            self.answer = answer

        def complete(self, messages, **kw) -> str:  # noqa: ANN001, ANN003
            return self.answer

    lines = ["Maya: I moved to Lisbon.", "Bob: Nice, Lisbon is sunny."]
    ok = summarize("Session s1", lines, Fixed("Maya told Bob she moved to Lisbon."))
    assert ok.summarizer == "fixed" and ok.fallback is None
    made_up = summarize("Session s1", lines, Fixed("Gandalf told Bob that Frodo moved to Mordor."))
    assert made_up.summarizer == "extractive" and "names not in the source" in made_up.fallback
    refusal = summarize("Session s1", lines, Fixed("I'm sorry, as an AI I cannot do that."))
    assert refusal.fallback and refusal.text.startswith("Session s1:")


@pytest.mark.slow
def test_consolidation_with_the_bundled_model(vault: Vault, local_llm) -> None:  # noqa: ANN001
    vault.add_messages([
        {"role": "user", "name": "Maya", "content": "I adopted a greyhound named Pixel."},
        {"role": "user", "name": "Bob", "content": "Pixel is a great name for a dog!"},
    ], user_id=U, session_id="s1")
    report = consolidate(vault, local_llm, ConsolidateConfig(topics=False))
    (summary,) = _summaries(vault, "session").values()
    assert report.created == {"session": 1} and not report.fallbacks
    # greedy decoding, seen here: "In a meeting, Maya and Bob discussed the adoption of a
    # greyhound named Pixel."
    assert summary.metadata["summarizer"] == local_llm.id
    assert "pixel" in summary.text.lower() and not summary.text.startswith("Session s1:")
