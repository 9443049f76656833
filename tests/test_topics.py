"""Current truth where no statement rule fires: what a clause is about, handles named by
greetings, corrections, and the topic prior through ``Vault.search`` (real MiniLM).

The phrasings here are written for these tests; the rules were not written from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import Settings, Vault
from memvault.retrieval.searcher import SearchConfig
from memvault.temporal.statements import addressed
from memvault.temporal.topics import CORRECTION, about, asked


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


@pytest.mark.parametrize("text", [
    "Had to move my physio appointment to Friday, ugh.",  # moving a thing, not house
    "The dog barks at the neighbours all night.",         # names no place
    "Our office swapped the old printer for a new one.",  # no employer named
    "I quit karate last month, my knees said no.",        # a hobby, not a job
    "Work update: My manager only drinks espresso.",      # someone else, after a header
    "Been browsing flats in Leeds, purely for fun.",      # shopping around
    "In another life I'd have married a chef.",           # counterfactual
])
def test_topic_words_without_a_value_assert_nothing(text: str) -> None:
    assert about(text, speaker="priya") == {}


@pytest.mark.parametrize("text, expected", [
    ("Leeds born and raised, never left.", {"home"}),
    ("Home for me is Leeds these days.", {"home"}),
    ("Sam and I have been together since 2019.", {"partner"}),
    ("Guess who just got hired at Acme Corp? Me!", {"work"}),
    ("I'm single again, long story.", {"partner"}),       # a change that names no one
    ("I got laid off on Friday.", {"work"}),
])
def test_more_ways_to_state_an_attribute(text: str, expected: set[str]) -> None:
    assert about(text, speaker="priya") == {"priya": expected}


def test_reported_news_of_a_named_person() -> None:
    said = about("My gran tells everyone that Priya lives in Leeds now.", speaker="sam",
                 names=["priya"])
    assert said == {"priya": {"home"}}
    assert about("My gran tells everyone that Priya lives in Leeds now.", speaker="sam") == {}


@pytest.mark.parametrize("text, correction", [
    ("Scratch that: Leeds, not York.", True),
    ("Make that Leeds. York was a slip.", True),
    ("Wait, correction: it's Leeds.", True),
    ("Actually it's Leeds, not York.", True),
    ("I typed York by mistake, it's Leeds.", True),
    ("My bad, Leeds not York.", True),
    ("York should be Leeds, sorry.", True),
    ("Not really, no.", False),               # chatter, no value
    ("Not bad, you?", False),
    ("It should be fun though.", False),
    ("It's Sunday, not much going on.", False),
    ("Actually it's fine.", False),
])
def test_corrections_need_a_value(text: str, correction: bool) -> None:
    assert bool(CORRECTION.search(text)) is correction


def test_statements_are_found_by_what_they_are_about(tmp_path: Path) -> None:
    """A statement sharing no searchable word with the question is still weighed: the
    write records what it is about (``topic|who|attribute`` keys), the read asks for it."""
    chat = [(PRIYA, "Hi, I'm Priya, by the way!", "2024-01-10")]
    chat += [(PRIYA, f"Which city is best for living these days, do you think? ({i})",
              "2024-01-10") for i in range(30)]
    statement = (PRIYA, "Life in Leeds suits me, the weather aside, and the people are lovely.",
                 "2024-02-01")
    cfg = SearchConfig(candidates=10, rerank_depth=10)
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash", search=cfg)) as vault:
        session(vault, chat, 0)
        leeds = session(vault, [statement], 1)[0]
        keys = vault.get(leeds.id).provenance["truth_keys"]
        assert {"topic|priya|home", f"topic|{PRIYA}|home"} <= set(keys)
        hits = vault.search("Which city is Priya living in these days?", user_id="u", k=5)
        assert hits[0].item.id == leeds.id
        # a topic key is not a statement: nothing was closed or grouped by it
        assert vault.get(leeds.id).invalid_at is None


@pytest.mark.parametrize("text, expected", [
    ("I'm in Lagos now, still unpacking.", {"home"}),            # a city, no word of living
    ("We traded Leeds for Glasgow in the end.", {"home"}),
    ("I'm at Contoso Health these days.", {"work"}),            # an organisation
    ("I joined Fabrikam Robotics in spring.", {"work"}),
])
def test_a_named_place_or_organisation_states_the_attribute(text: str, expected: set[str]) -> None:
    assert about(text, speaker="priya") == {"priya": expected}


@pytest.mark.parametrize("text", [
    "We flew to Lisbon for a long weekend.",   # a trip
    "I had lunch at Hyde Park.",               # a venue, not an employer
    "I met Jamie Lee at the gym.",             # a person met somewhere
    "The cat moved in with me last week.",     # the cat moved
])
def test_trips_and_venues_are_not_where_one_lives_or_works(text: str) -> None:
    assert about(text, speaker="priya") == {}


def test_the_later_message_of_one_timestamp_is_the_later_word(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        rows = session(vault, [(PRIYA, "Hi, I'm Priya!", "2024-03-01"),
                               (PRIYA, "Finally moved to Leeds!", "2024-03-01"),
                               (PRIYA, "Oops, not Leeds: York!", "2024-03-01")], 0)
        session(vault, [(PRIYA, "I moved to Hull in June.", "2024-07-01")], 1)  # closes York
        hits = vault.search("Where did Priya live in April 2024?", user_id="u", k=3)
        assert hits[0].item.id == rows[2].id


def test_colleagues_at_an_organisation_and_a_greeting_that_is_no_name() -> None:
    assert about("My manager at Contoso Health is lovely.", speaker="priya") == {"priya": {"work"}}
    assert about("My manager drinks cold brew all day.", speaker="priya") == {}
    assert addressed("Hello! It's Priya, from the climbing gym.") is None
    assert addressed("Hello, Priya!") == "priya"


def test_a_present_tense_question_asks_for_now(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        session(vault, [(PRIYA, "Hi, I'm Priya!", "2024-01-02"),
                        (PRIYA, "Life in Leeds suits me, honestly.", "2024-01-02")], 0)
        glasgow = session(vault, [(PRIYA, "We traded Leeds for Glasgow in the end.",
                                   "2024-06-01")], 1)[0]
        assert vault.search("Where does Priya live?", user_id="u", k=3)[0].item.id == glasgow.id


def test_questions_about_someones_thing_or_a_cause_ask_no_attribute() -> None:
    assert asked("What diet are Priya's dogs on?") == set()
    assert asked("Which organization is Priya volunteering with for her charity work?") == set()
    assert asked("What is Priya's usual drink now?") == {"drink"}
    assert asked("Which organisation does Priya work for?") == {"work"}


@pytest.mark.parametrize("text, expected", [
    ("finally moved to glasgow!!", {"priya": {"home"}}),   # a writer who capitalises nothing
    ("ok so i'm in bilbao now lol", {"priya": {"home"}}),
    ("my flat is tiny lol", {}),                            # no place named
    ("started my new job today, so tired", {"priya": {"work"}}),
])
def test_a_writer_who_capitalises_nothing(text: str, expected: dict) -> None:
    assert about(text, speaker="priya") == expected


def test_who_someone_is_with() -> None:
    assert asked("Who's Priya with these days?") == {"partner"}
    assert asked("Who was Priya with in March 2023?") == {"partner"}
    assert asked("Who was Priya with at the party?") == set()
    assert about("I'll be working from home tomorrow, so free all day.", speaker="priya") == {}
    assert about("These days I teach at Leeds Beckett, two days a week.",
                 speaker="priya") == {"priya": {"work"}}


def test_sign_ins_name_a_handle_not_a_named_speaker(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        rows = session(vault, [(PRIYA, "Hej! This is Priya, from the climbing gym.", "2024-01-02"),
                               ("Sam", "This is Max, our new puppy!", "2024-01-02"),
                               ("Sam", "And this is Rex.", "2024-01-02")], 0)
        assert vault.get(rows[0].id).provenance.get("speaker_name") == "Priya"
        assert "speaker_name" not in vault.get(rows[2].id).provenance  # Sam has a name


def test_idioms_sign_in_no_one_and_the_present_perfect_sums_up() -> None:
    from memvault.retrieval.rerank import topic_question
    from memvault.temporal.statements import self_name
    assert self_name("Same here honestly.", handle=True) is None
    assert self_name("Priya here, finally!", handle=True) == "priya"
    assert topic_question("Who has Priya been in a relationship with?", None) is None
    assert topic_question("Where does Priya live?", None) == ("now", {"home"})
