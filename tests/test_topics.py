"""Current truth where no statement rule fires: what a clause is about, handles named by
greetings, corrections, and the topic prior through ``Vault.search`` (real MiniLM).

The phrasings here are written for these tests; the rules were not written from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import Settings, Vault
from memvault.retrieval.searcher import SearchConfig
from memvault.temporal.statements import addressed
from memvault.temporal.topics import about, asked


@pytest.mark.parametrize("text, expected", [
    ("These days I'm a nurse at St Mary's, night shifts mostly.", {"work"}),
    ("Flat whites are my thing now, no more filter coffee.", {"drink"}),
    ("Life in Bristol suits me.", {"home"}),
    ("Mornings are for matcha these days.", {"drink"}),
    ("Honestly my old Corolla still runs fine.", {"car"}),
    ("We're engaged!!", {"partner"}),
    # a possessive subject speaks of the attribute its own words name, nothing else
    ("My usual order these days is an oat latte.", {"drink"}),
    ("My little Fiat sleeps on the street, no garage.", {"car"}),
    ("Team news: I'm with the Northwind office now.", {"work"}),
])
def test_assertions_about_an_attribute(text: str, expected: set[str]) -> None:
    assert about(text, speaker="priya") == {"priya": expected}


@pytest.mark.parametrize("text", [
    "Would you ever live in Oslo?",                  # a question
    "If the job in Oslo comes through I'd move.",    # a hypothetical
    "My cousin just moved to Leeds.",                # someone else's news
    "She works at the bakery now.",                  # someone else
    "I'm test-driving a Kia on Friday, just looking.",  # not (yet) theirs
    "I have an interview with Contoso next week.",   # a plan
    "Coffee in hand, ready for the day.",            # says nothing (no verb)
    "The neighbours moved out last week.",           # about something else
    "Our team moved the printer again.",             # about the team's printer
    "Priyanka wants to go for cocktails with me.",   # the speaker is only the object
    "Oh, no idea that was in the works!",            # an idiom
    "Moved on from that, anyway.",                   # an idiom
])
def test_no_assertion(text: str) -> None:
    assert about(text, speaker="priya") == {}


def test_a_named_person_and_a_question_attribute() -> None:
    assert about("Priya started at Northwind last month.", speaker="sam",
                 names=["priya"]) == {"priya": {"work"}}
    assert about("Priya's new flat is in Leeds.", speaker="sam",
                 names=["priya"]) == {"priya": {"home"}}
    # facts a reader rewrote in the third person about someone else of hers
    assert about("Priya's mum has switched to oat milk lattes.", speaker="priya",
                 names=["priya"]) == {}
    assert asked("Which city is Priya living in these days?") == {"home"}
    assert asked("Who is Priya's employer now?") == {"work"}


def test_greetings_name_a_listener_but_not_a_nickname() -> None:
    assert addressed("Hey Priya! How was the trip?") == "priya"
    assert addressed("Morning, Sam.") == "sam"
    assert addressed("Hey there!") is None
    assert addressed("Hi everyone") is None


def session(vault: Vault, rows: list[tuple[str, str, str]], n: int) -> list:
    return vault.add_messages([{"role": "user", "name": who, "content": text,
                                "timestamp": day} for who, text, day in rows],
                              user_id="u", session_id=f"s{n}")


PRIYA = "+44 7700 900123"
CHAT = [
    [("Sam", "Hey Priya! Long time no see.", "2024-01-10"),
     (PRIYA, "I know! These days I'm a nurse at St Mary's, night shifts mostly.", "2024-01-10"),
     (PRIYA, "Life in Bristol suits me though.", "2024-01-10"),
     ("Sam", "Night shifts sound brutal.", "2024-01-10")],
    [(PRIYA, "Hiya!", "2024-05-02"),
     (PRIYA, "Big change: I handed in my notice, I'm on the payroll of Northwind Labs now.",
      "2024-05-02"),
     ("Sam", "Would you ever work at Contoso?", "2024-05-02"),
     (PRIYA, "I moved to Leeds last week too!", "2024-05-02"),
     (PRIYA, "Oops, not Leeds: York!", "2024-05-02"),
     (PRIYA, "Maybe I'll apply to Contoso next year, who knows.", "2024-05-03")],
]


def test_the_latest_word_on_an_attribute_comes_first(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db") as vault:  # the real MiniLM embedder
        first = session(vault, CHAT[0], 0)
        second = session(vault, CHAT[1], 1)
        nurse, bristol = first[1], first[2]
        northwind, york = second[1], second[4]
        # the greeting named the phone-number handle, in the earlier session too
        assert vault.get(nurse.id).provenance.get("speaker_name") == "Priya"

        def top(q: str) -> str:
            return vault.search(q, user_id="u", k=5)[0].item.id

        assert top("Which company is Priya working for these days?") == northwind.id
        assert top("Where did Priya work in January 2024?") == nurse.id
        assert top("Which city is Priya living in now?") == york.id  # the correction
        assert top("Where did Priya live in February 2024?") == bristol.id
        # a question without a time cue is ranked as before
        plain = [h.item.id for h in vault.search("night shifts", user_id="u", k=3)]
    off = Settings(path=tmp_path / "v.db", search=SearchConfig(topic_gamma=0.0))
    with Vault(settings=off) as vault:
        assert [h.item.id for h in vault.search("night shifts", user_id="u", k=3)] == plain
        # off, the stale statement is not put below the current one
        ranked = [h.item.id for h in vault.search(
            "Which company is Priya working for these days?", user_id="u", k=10)]
        assert ranked[0] != northwind.id or nurse.id not in ranked[1:]


def test_a_name_like_handle_is_not_renamed_by_a_nickname(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        rows = session(vault, [("Caroline", "Hey Mel! How are the kids?", "2023-05-01"),
                               ("Melanie", "Great, busy as ever.", "2023-05-01")], 0)
        assert "speaker_name" not in vault.get(rows[1].id).provenance


def test_before_and_after_an_event(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db") as vault:  # the real MiniLM embedder
        rows = [("Ines", "I live in Lisbon, right by the river.", "2023-01-05"),
                ("Ines", "Big news: I moved to Porto!", "2023-06-10"),
                ("Ines", "Guess what, I moved to Braga for good.", "2023-09-02")]
        lisbon, porto, braga = [session(vault, [r], n)[0] for n, r in enumerate(rows)]

        def top(q: str) -> str:
            return vault.search(q, user_id="u", k=5)[0].item.id

        assert top("Where did Ines live before she moved to Porto?") == lisbon.id
        assert top("Where did Ines live before she moved to Braga?") == porto.id
        assert top("Where did Ines live after she moved to Porto?") == porto.id
