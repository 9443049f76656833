"""Current truth through the public API: valid time vs transaction time, supersession
without an LLM on raw turns and on facts, and search that puts what holds now first."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

import memvault.storage
from memvault import NotFound, Settings, Vault
from memvault.reader import FACT_KINDS
from memvault.retrieval.searcher import SearchConfig
from memvault.temporal import statements

T = datetime(2024, 9, 1, tzinfo=timezone.utc)


def said(text: str) -> list[tuple[str, str, str | None, bool]]:
    return [(s.subject, s.attribute, s.value, s.holds)
            for s in statements(text, said=T, names=["maya"])]


@pytest.mark.parametrize("text, expected", [
    ("Big news: I moved to Porto!", [("", "home", "porto", True)]),
    ("Also I quit Deloitte.", [("", "employer", "deloitte", False)]),
    ("Tom and I broke up; my new partner is Sam.",
     [("", "partner", "tom", False), ("", "partner", "sam", True)]),
    ("I got a job at Google and moved to Zurich",
     [("", "employer", "google", True), ("", "home", "zurich", True)]),
    ("Maya moved to Porto last month.", [("maya", "home", "porto", True)]),
    ("I no longer work at Siemens.", [("", "employer", "siemens", False)]),
    ("We adopted a puppy named Biscuit", [("", "pet", "biscuit", True)]),
])
def test_statements_anywhere_in_a_turn(text: str, expected: list) -> None:
    assert sorted(said(text)) == sorted(expected)


@pytest.mark.parametrize("text", [
    "If I moved to Berlin I'd be so happy.",       # hypothetical
    "Are you moving to Oslo?",                      # question
    "My sister moved to Rome.",                     # someone else's change
    "We might move to Lyon next year.",             # a plan
    "Jordan moved to Paris.",                       # a stranger: not a known person
    "I love it.",                                   # no state
])
def test_no_statement(text: str) -> None:
    assert said(text) == []


def test_a_stated_date_is_when_the_change_held() -> None:
    (s,) = statements("I moved to Porto in July.", said=T)
    assert s.when == datetime(2024, 7, 1, tzinfo=timezone.utc)


def turns(vault: Vault, rows: list[tuple[str, str, str]], **scope: str) -> list:
    out = []
    for speaker, text, day in rows:  # one call per turn: the store path, not the batch
        out += vault.add_messages([{"role": "user", "name": speaker, "content": text,
                                    "timestamp": day}], **scope)
    return out


MAYA = [("mk_92", "Hi! I'm Maya, by the way.", "2023-01-03"),
        ("mk_92", "I live in Lisbon, it's lovely.", "2023-01-05"),
        ("tom", "How is work going?", "2023-02-01"),
        ("mk_92", "Work is fine, Deloitte keeps me busy.", "2023-02-01"),
        ("mk_92", "Big news: I moved to Porto!", "2023-06-10"),
        ("tom", "Did Maya move to Braga?", "2023-09-01"),
        ("mk_92", "Yes! I moved to Braga in August.", "2023-09-02")]


def test_supersession_closes_valid_time_and_keeps_every_version(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        intro, lisbon, _, _, porto, question, braga = turns(vault, MAYA, user_id="u")
        lisbon_now = vault.get(lisbon.id)
        assert lisbon_now.status == "active" and lisbon_now.version == 2  # a validity change
        assert lisbon_now.valid_at == datetime(2023, 1, 5, tzinfo=timezone.utc)
        assert lisbon_now.invalid_at == datetime(2023, 6, 10, tzinfo=timezone.utc)
        assert vault.get(porto.id).invalid_at == datetime(2023, 8, 1, tzinfo=timezone.utc)
        assert vault.get(braga.id).invalid_at is None
        assert vault.get(braga.id).valid_at == datetime(2023, 8, 1, tzinfo=timezone.utc)
        assert vault.get(question.id).version == 1  # a question supersedes nothing
        # never a deletion: the old statement is still there for the past...
        assert vault.get(lisbon.id, as_of="2023-03-01").text == lisbon.text
        with pytest.raises(NotFound):  # ...and does not hold after it was superseded
            vault.get(lisbon.id, as_of="2023-07-01")
        # ...and what the vault knew before it heard of Porto: Lisbon, open-ended
        assert vault.get(lisbon.id, known_at=porto.created_at).invalid_at is None
        assert [v.invalid_at for v in vault.history(lisbon.id)] == \
            [None, datetime(2023, 6, 10, tzinfo=timezone.utc)]
        links = {(link.target, link.kind) for link in vault.get(porto.id).links}
        assert (lisbon.id, "supersedes") in links
        events = vault.audit(action="supersede")
        assert {e.item_id for e in events} == {lisbon.id, porto.id}
        # the handle took the name its speaker introduced
        assert vault.get(braga.id).provenance["speaker_name"] == "Maya"


def test_an_old_statement_imported_late_is_closed_itself(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        new, = turns(vault, [("ana", "I moved to Oslo.", "2024-05-01")], user_id="u")
        old, = turns(vault, [("ana", "I live in Rome.", "2022-01-01")], user_id="u")
        assert vault.get(new.id).invalid_at is None and vault.get(new.id).version == 1
        assert vault.get(old.id).invalid_at == datetime(2024, 5, 1, tzinfo=timezone.utc)


def test_other_peoples_changes_and_other_scopes_do_not_supersede(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        mine, = turns(vault, [("ana", "I live in Rome.", "2022-01-01")], user_id="u")
        turns(vault, [("ana", "My brother moved to Paris.", "2023-01-01"),
                      ("bo", "I moved to Paris.", "2023-01-02")], user_id="u")
        turns(vault, [("ana", "I moved to Paris.", "2023-01-03")], user_id="someone-else")
        assert vault.get(mine.id).invalid_at is None


def test_restating_the_same_value_changes_nothing(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        first, = turns(vault, [("ana", "I live in Rome.", "2022-01-01")], user_id="u")
        turns(vault, [("ana", "I still live in Rome, love it.", "2023-01-01")], user_id="u")
        assert vault.get(first.id).version == 1


def test_supersession_can_be_turned_off(tmp_path: Path) -> None:
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash",
                                 supersede=False)) as vault:
        first, = turns(vault, [("ana", "I live in Rome.", "2022-01-01")], user_id="u")
        turns(vault, [("ana", "I moved to Oslo.", "2023-01-01")], user_id="u")
        assert vault.get(first.id).invalid_at is None


def test_default_search_puts_what_holds_now_first(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db") as vault:  # the real MiniLM embedder
        _, lisbon, _, _, porto, _, braga = turns(vault, MAYA, user_id="u")
        for q in ("Where does Maya live?", "Where does Maya live now?"):
            assert vault.search(q, user_id="u", k=3)[0].item.id == braga.id
        assert vault.search("Where did Maya live in March 2023?", user_id="u",
                            k=3)[0].item.id == lisbon.id
        assert vault.search("Where did Maya live in July 2023?", user_id="u",
                            k=3)[0].item.id == porto.id
        # as_of: only what held then is searched
        found = [h.item.id for h in vault.search("Where does Maya live?", user_id="u",
                                                 as_of="2023-03-01", k=10)]
        assert lisbon.id in found and porto.id not in found and braga.id not in found
        # the penalty is a setting: off, the stale memory is not pushed back
        plain = Settings(path=tmp_path / "v.db",
                         search=SearchConfig(stale_penalty=0.0, truth_gamma=0.0))
    with Vault(settings=plain) as vault:
        scores = {h.item.id: h.score for h in vault.search("Where does Maya live?",
                                                           user_id="u", k=10)}
    assert lisbon.id in scores


def test_fine_mode_facts_follow_the_chat_dates(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        for text, day in (("I live in Lisbon.", "2023-01-05"), ("I moved to Porto.", "2024-03-10")):
            vault.remember([{"role": "user", "name": "Maya", "content": text, "timestamp": day}],
                           mode="fine", llm="none", user_id="u")
        facts = vault.list(user_id="u", filters={"kind": list(FACT_KINDS)}).items
        assert facts
        fact = facts[0]
        assert vault.get(fact.id, as_of="2023-06-01").text == "Maya lives in Lisbon."
        assert "Porto" in vault.get(fact.id, as_of="2024-06-01").text


def test_a_vault_from_before_valid_time_migrates_without_loss(tmp_path: Path) -> None:
    """A schema-1 file (as the previous release wrote it) opens: every version keeps its
    text, first versions hold from their event time, later ones from when written."""
    db = tmp_path / "old.db"
    with Vault(db, embedder="hash") as vault:
        a = vault.add("Alice lives in Paris", event_time="2020-01-01")
        vault.update(a.id, "Alice lives in Berlin")
    conn = sqlite3.connect(db)  # back to schema 1: drop the new columns and later tables
    later = sorted((Path(memvault.storage.__file__).parent / "migrations" / "sqlite")
                   .glob("*.sql"))[2:]
    for script in later:
        for trigger in re.findall(r"CREATE TRIGGER (?:IF NOT EXISTS )?(\w+)", script.read_text()):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for table in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", script.read_text()):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.executescript("DROP INDEX versions_valid; ALTER TABLE versions DROP COLUMN valid_at;"
                       "ALTER TABLE versions DROP COLUMN invalid_at; PRAGMA user_version=1;")
    conn.close()
    with Vault(db) as vault:
        v1, v2 = vault.history(a.id)
        assert (v1.text, v2.text) == ("Alice lives in Paris", "Alice lives in Berlin")
        assert v1.valid_at == datetime(2020, 1, 1, tzinfo=timezone.utc)
        assert v2.valid_at == v2.valid_from
        assert vault.get(a.id, as_of="2021-01-01").text == "Alice lives in Paris"
        assert vault.get(a.id).text == "Alice lives in Berlin"
