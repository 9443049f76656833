"""More ways people say a state changed (break-ups by idiom, meeting someone, a move
between employers, a car's end, a subject that opens with a lead-in), the listener's
echo that is no statement of the speaker's, and the rules reader's writes: a plan takes
no slot, and a second change said in the same turn keeps the turn's valid time.

The phrasings are written for these tests; the rules were not written from them."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from memvault import Vault
from memvault.reader.rules import slots
from memvault.temporal.statements import clauses
from memvault.temporal.topics import about, attributes


@pytest.mark.parametrize("text, expected", [
    ("Sam and I called it quits last month, amicably.", {"partner"}),
    ("It's over with Jess. Onwards and upwards.", {"partner"}),
    ("Noor and I are finally together, it took us long enough.", {"partner"}),
    ("Chris asked me out on Friday and we're dating now.", {"partner"}),
    ("I had sworn off dating for a year, but then I met Ellis.", {"partner"}),
    ("Anyway, the move to Oslo happened last week, boxes everywhere.", {"home"}),
    ("I switched from Contoso Health to Fabrikam Robotics in May.", {"work"}),
    ("Ok so sold the Vespa and bought a Fiat Panda, finally.", {"car"}),
    ("Sadly the Corolla was written off on Tuesday. Bikes for now.", {"car"}),
    ("Believe it or not, I moved to Leeds and bought a Kia Picanto.", {"home", "car"}),
    ("You know me: rooibos, always.", {"drink"}),
    ("Guess who drives a Honda Jazz now? Me.", {"car"}),
    ("Took a Golf for a test drive and bought it on the spot.", {"car"}),
    ("I started at Contoso Health and switched to decaf last month.", {"work", "drink"}),
    ("No more Leeds rent for me, I'm in Glasgow now.", {"home"}),
    ("My LinkedIn finally says Fabrikam Robotics.", {"work"}),
    ("Honestly I'm a Glasgow local by now.", {"home"}),
])
def test_changes_said_by_idiom(text: str, expected: set[str]) -> None:
    assert about(text, speaker="priya") == {"priya": expected}


@pytest.mark.parametrize("text", [
    "A colleague quit and joined Fabrikam Robotics, bold move.",   # another person's job
    "Chess night: he played a risky move and lost the queen.",
    "So oat lattes now, huh. Fancy.",                              # the listener's news
    "I met Ellis for lunch, the pasta was great.",                 # meeting is no dating
    "Oat lattes, nice. Is it what you hoped?",
    "Save the date: in May I cycle from Leeds to Whitby.",          # a trip
    "I booked everything to take my parents to Lisbon in June.",
    "I've decided to spend the summer in Porto.",                   # a plan
    "Ok so I quit Spanish lessons, too much homework.",             # a pastime, no job
    "Hilary tells me you've been on the local radio!",              # the listener's news
])
def test_no_change(text: str) -> None:
    assert about(text, speaker="priya") == {}


def test_a_second_verb_keeps_the_subject_after_a_lead_in() -> None:
    assert list(clauses("Update from my end: believe it or not, I moved to Leeds and "
                        "bought a van.")) == ["believe it or not, I moved to Leeds",
                                              "I bought a van."]
    assert list(clauses("A friend from work quit and joined Fabrikam Robotics.")) == [
        "A friend from work quit", "A friend joined Fabrikam Robotics."]


def test_a_correction_takes_the_attribute_of_a_statement_named_by_what_happened() -> None:
    assert attributes("Noor and I are officially together!") == {"partner"}
    assert attributes("I'd sworn off dating, then I met Ellis.") == {"partner"}


def _session(vault: Vault, rows: list[tuple[str, str]], day: str, n: int) -> None:
    vault.add_messages([{"role": "user", "name": who, "content": text, "timestamp": day}
                        for who, text in rows], user_id="u", session_id=f"s{n}")


def test_a_corrected_name_is_the_current_partner(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db") as vault:
        _session(vault, [("Maya", "My partner Sam says hi."), ("Viktor", "Hi Sam!")],
                 "2023-01-10T10:00:00+00:00", 1)
        _session(vault, [("Maya", "Sam and I called it quits. I'd sworn off dating, but then "
                                  "I met Robin."),
                         ("Viktor", "Oh wow, good for you."),
                         ("Maya", "Sorry, I meant Ellis, not Robin! Autocorrect.")],
                 "2023-03-02T10:00:00+00:00", 2)
        top = vault.search("Who is Maya dating these days?", user_id="u", k=3)[0]
        assert top.item.text.startswith("Sorry, I meant Ellis")


def test_the_listeners_echo_is_not_the_speakers_drink(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db") as vault:
        _session(vault, [("Priya", "Hi! I'm Priya."), ("Viktor", "Hey Priya, I'm Viktor.")],
                 "2023-01-10T10:00:00+00:00", 1)
        _session(vault, [("Priya", "Nothing beats green tea in the morning.")],
                 "2023-02-10T10:00:00+00:00", 2)
        _session(vault, [("Viktor", "I've switched to oat lattes."),
                         ("Priya", "So oat lattes now, huh. Fancy.")],
                 "2023-03-10T10:00:00+00:00", 3)
        top = vault.search("What does Priya drink these days?", user_id="u", k=3)[0]
        assert "green tea" in top.item.text


def test_a_plan_takes_no_slot_in_the_rules_reader(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db") as vault:
        for day, text in [("2023-01-05", "I work at Contoso Health, it's fine."),
                          ("2023-02-05", "I might apply to Fabrikam Robotics, their job ad "
                                         "looked fun.")]:
            vault.remember([{"role": "user", "name": "Priya", "content": text,
                             "timestamp": day + "T09:00:00+00:00"}],
                           mode="fine", llm="none", user_id="u")
        facts = [m for m in vault.list(user_id="u", limit=100) if m.kind != "turn"]
        works = [m for m in facts if m.text == "Priya works at Contoso Health."]
        assert works and len(vault.history(works[0].id)) == 1  # not replaced by the plan
        assert any("might apply to Fabrikam Robotics" in m.text for m in facts)


def test_a_second_change_in_one_turn_holds_from_the_turn(tmp_path: Path) -> None:
    then = datetime(2022, 12, 17, 19, 35, tzinfo=timezone.utc)
    with Vault(tmp_path / "v.db") as vault:
        item = vault.add("Priya works at Contoso Health.", user_id="u",
                         event_time=datetime(2022, 10, 1, tzinfo=timezone.utc))
        vault.update(item.id, "Priya no longer works at Contoso Health.", event_time=then)
        last = vault.update(item.id, "Priya works at Fabrikam Robotics.", event_time=then)
        assert last.valid_at == then and last.event_time == then
        assert vault.get(item.id, as_of="2023-01-01").text == "Priya works at Fabrikam Robotics."


def test_the_rules_reader_reads_no_job_into_a_pastime_or_a_residence(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db") as vault:
        for text in ["I quit Spanish lessons, too much homework.",
                     "I'm a Lisbon resident now, paperwork done.",
                     "Said goodbye to Leeds and moved to Glasgow on 3 May."]:
            vault.remember([{"role": "user", "name": "Priya", "content": text,
                             "timestamp": "2023-05-20T09:00:00+00:00"}],
                           mode="fine", llm="none", user_id="u")
        facts = {m.text for m in vault.list(user_id="u", limit=100) if m.kind != "turn"}
        assert not any("works" in f for f in facts), facts
        assert "Priya lives in Glasgow." in facts
        assert not any(f.startswith("Said ") for f in facts), facts


def test_a_month_named_may_is_no_plan(tmp_path: Path) -> None:
    assert slots("Priya moved to Porto in May 2023.") == {"home"}  # "may" the verb is a plan
    assert slots("Priya may move to Porto.") == set()
    with Vault(tmp_path / "v.db") as vault:
        for day, text in [("2023-01-05", "I live in Lisbon, have done for years."),
                          ("2023-06-05", "I moved to Porto in May, still unpacking.")]:
            vault.remember([{"role": "user", "name": "Priya", "content": text,
                             "timestamp": day + "T09:00:00+00:00"}],
                           mode="fine", llm="none", user_id="u")
        facts = [m for m in vault.list(user_id="u", limit=100) if m.kind != "turn"]
        homes = [m.text for m in facts if "lives in" in m.text]
        assert homes == ["Priya lives in Porto."], homes
