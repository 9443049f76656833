"""Changes said by what happened rather than by an attribute's words, dates with a day,
and which of several words on one attribute is the current one (``Vault.search``).

The phrasings are written for these tests; the rules were not written from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import Vault
from memvault.temporal.statements import stated_time
from memvault.temporal.topics import about

PRIYA = "+44 7700 900123"


def session(vault: Vault, rows: list[tuple[str, str]], day: str, n: int) -> list:
    return vault.add_messages([{"role": "user", "name": who, "content": text,
                                "timestamp": day} for who, text in rows],
                              user_id="u", session_id=f"s{n}")


def top(vault: Vault, question: str) -> str:
    return vault.search(question, user_id="u", k=3)[0].item.text


@pytest.mark.parametrize("text, expected", [
    ("Anyway, no longer with Robin, it just wasn't working out.", {"partner"}),
    ("I'm not with Alex anymore, for the record.", {"partner"}),
    ("Kit and I are together now!", {"partner"}),
    ("Brightwave Labs let me go last week.", {"work"}),
    ("Layoffs everywhere. I'm job hunting.", {"work"}),
    ("No longer with Brightwave Labs, as of Friday.", {"work"}),
    # a value said by its name alone, ended or begun
    ("Goodbye Contoso Health, hello Fabrikam Robotics.", {"work"}),
    ("No more Vespa scooter - sold it on Sunday.", {"car"}),
    # a clause that names no value takes it from the rest of its turn
    ("The movers left the last boxes in Leeds, so that's home now.", {"home"}),
    ("Honestly, what a week. I switched jobs - Fabrikam Robotics called.", {"work"}),
    ("My employer is Contoso Health, in case you wondered.", {"work"}),
    ("Willow Studio pays my bills these days.", {"work"}),
    # chat leaves the "I" out
    ("good!! actually working at fabrikam now, badge and everything", {"work"}),
    ("Officially moved to Lyon! Feels surreal.", {"home"}),
    ("yes! glasgow since the 1st, boxes everywhere", {"home"}),
    # a short header names the attribute, what follows gives its value
    ("New city, who dis: Glasgow! Still unpacking.", {"home"}),
    ("Car update: a Honda Jazz, bought on 3 May.", {"car"}),
    ("Relationship status: taken, by Robin.", {"partner"}),
    ("Anyway, update your address book: Priya Shah, Leeds.", {"home"}),
    ("Ugh, the Corolla needs new tyres again, it's always something.", {"car"}),
    ("My usual order has changed to an oat latte.", {"drink"}),
    ("We made it official on 1 May: Robin and I are a couple.", {"partner"}),
])
def test_changes_said_by_what_happened(text: str, expected: set[str]) -> None:
    assert about(text, speaker="priya") == {"priya": expected}


@pytest.mark.parametrize("text", [
    "I love my new flat. Tom came over.",              # a home word, no place anywhere
    "First holiday together with the family, finally.",  # together, but not a couple
    "Big plan for May: a pottery course in Leeds.",     # a plan
    "The new timetable isn't working at all.",          # an idiom, not a job
    "4pm. working. pretending to",                     # a verb alone says no value
    "Glasgow since Monday, what a trip!",               # a trip
    "Work update: my manager only drinks espresso.",    # the manager's drink
    "The neighbours' car needs a new battery.",         # someone else's car
    "I promised myself I'd volunteer in Costa Rica.",   # a plan
])
def test_no_change(text: str) -> None:
    assert about(text, speaker="priya") == {}


def test_a_stated_day_is_kept() -> None:
    from datetime import datetime, timezone
    said = datetime(2024, 9, 6, 12, tzinfo=timezone.utc)
    assert stated_time("I moved to Hull on August 29.", said) == datetime(
        2024, 8, 29, tzinfo=timezone.utc)
    assert stated_time("since the 3rd of May 2023", said) == datetime(
        2023, 5, 3, tzinfo=timezone.utc)
    assert stated_time("they let me go on 8/28", said) == datetime(2024, 8, 28, tzinfo=timezone.utc)
    assert stated_time("on 5/6", said) is None  # May 6 or 5 June: not guessed
    assert stated_time("in October", said) == datetime(2023, 10, 1, tzinfo=timezone.utc)


def test_a_day_orders_two_moves_in_one_month(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        session(vault, [(PRIYA, "Hi, I'm Priya!"), (PRIYA, "I live in Leeds, have for years.")],
                "2024-06-01", 0)
        session(vault, [(PRIYA, "We swapped Leeds for York last night, still unpacking.")],
                "2024-08-01T18:00:00", 1)
        session(vault, [(PRIYA, "I packed everything up and moved to Hull on August 29.")],
                "2024-09-06", 2)
        assert "Hull" in top(vault, "Which city is Priya living in these days?")


def test_a_named_month_may_be_any_day_of_it(tmp_path: Path) -> None:
    """'I left Contoso in September', said on 2 October, is later than a word of 8
    September; 'we moved to York in October' did not yet hold on 5 October."""
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        session(vault, [(PRIYA, "Hi, I'm Priya!"),
                        (PRIYA, "I've been with Contoso Health for three years now.")],
                "2024-09-08", 0)
        session(vault, [(PRIYA, "I left Contoso Health in September, so I'm between jobs.")],
                "2024-10-02", 1)
        session(vault, [(PRIYA, "I found a flat in Leeds and moved there.")], "2024-09-24", 2)
        session(vault, [(PRIYA, "We finally moved to York in October 2024, boxes everywhere.")],
                "2024-11-01", 3)
        assert "between jobs" in top(vault, "Where does Priya work now?")
        assert "Leeds" in top(vault, "Where did Priya live on 5 October 2024?")


def test_the_current_value_is_found_where_it_began(tmp_path: Path) -> None:
    """A restatement ("Still at Fabrikam") says the same as the turn the value began
    with, which also says when; a change in between ends that run."""
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        session(vault, [(PRIYA, "Hi, I'm Priya!"), (PRIYA, "I'm at Contoso Health these days.")],
                "2024-01-10", 0)
        began = session(vault, [(PRIYA, "I now work at Fabrikam Robotics, started Monday.")],
                        "2024-05-02", 1)[0]
        session(vault, [(PRIYA, "Still at Fabrikam Robotics, and loving it.")], "2024-08-01", 2)
        assert top(vault, "Where does Priya work now?") == began.text
        session(vault, [(PRIYA, "Fabrikam Robotics let me go, sadly.")], "2024-09-01", 3)
        back = session(vault, [(PRIYA, "Back at Fabrikam Robotics, they rehired me!")],
                       "2024-10-01", 4)[0]
        assert top(vault, "Where does Priya work now?") == back.text


def test_the_rules_reader_reads_no_job_into_a_move_a_pet_or_a_relative(tmp_path: Path) -> None:
    """remember(fine) with the rules only: "I left Lisbon" ends a home, not a job; "I'm a
    cat parent now" is no occupation; "My dad quit and joined ..." is the dad's news."""
    from memvault.reader import FACT_KINDS, remember

    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        for text, day in (("I live in Lisbon, I work at Contoso Health.", "2024-01-05"),
                          ("I left Lisbon last week, I'm in Tallinn now.", "2024-03-10"),
                          ("I'm a cat parent now. Its name is Rufus.", "2024-03-11"),
                          ("My dad quit and joined Larkspur Games, brave move.", "2024-03-12")):
            remember(vault, [{"role": "user", "name": "Maya", "content": text,
                              "timestamp": day}], mode="fine", llm="none", user_id="u")
        facts = {f.text for f in vault.list(user_id="u", filters={"kind": list(FACT_KINDS)},
                                            limit=100)}
        assert "Maya no longer lives in Lisbon." in facts or "Maya lives in Lisbon." not in facts
        assert not any("works at Lisbon" in f or "works at Larkspur" in f for f in facts)
        assert not any("works as" in f for f in facts)
        assert "Maya works at Contoso Health." in facts


def test_a_fact_keeps_when_it_was_said_beside_the_date_it_states(tmp_path: Path) -> None:
    """remember(fine): "Maya lives in York." is dated October (the month the turn names)
    and was said on 1 November; both are kept, so the fact can be placed anywhere in
    October up to when it was said, like its turn."""
    from memvault.reader import remember

    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        for text, day in (("I moved to Leeds, found a flat near the park.", "2024-09-24"),
                          ("We finally moved to York in October 2024, boxes everywhere.",
                           "2024-11-01"),
                          ("Oskar Adeyemi's red Fiat lives on the street now.", "2024-11-02")):
            remember(vault, [{"role": "user", "name": "Maya", "content": text,
                              "timestamp": day}], mode="fine", llm="none", user_id="u")
        york = [f for f in vault.list(user_id="u", limit=50) if f.text == "Maya lives in York."]
        assert york and york[0].metadata["said"].startswith("2024-11-01")
    assert about("Oskar Adeyemi's red Fiat lives on the street now.", speaker="maya",
                 names=["oskar adeyemi"]) == {"oskar adeyemi": {"car"}}


def test_a_said_time_anyone_wrote_breaks_no_search(tmp_path: Path) -> None:
    """``metadata["said"]`` is read for ordering; a naive or bogus value a caller wrote
    orders as best it can and fails nothing."""
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        session(vault, [(PRIYA, "Hi, I'm Priya!")], "2024-01-01", 0)
        for said, text in (("2024-10-02", "I moved to Leeds in September."),
                           ("yesterday", "I moved to York in August."),
                           ("2024-10-03T09:00:00+02:00", "I moved to Hull in July.")):
            vault.add(text, user_id="u", kind="turn", event_time="2024-10-05",
                      metadata={"speaker": PRIYA, "said": said})
        assert vault.search("Where does Priya live now?", user_id="u", k=3)
