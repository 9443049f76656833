"""A question asking for things known by name ("Which cities has John been to?") prefers
the memories that name something (``text.asks_for_names``, ``text.names_something``,
``rerank.name_boost``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import Settings, Vault
from memvault.retrieval.searcher import SearchConfig
from memvault.retrieval.text import asks_for_names, name_words, names_something


@pytest.mark.parametrize("query, asks", [
    ("Which cities has John been to?", True),
    ("What books has Tim read?", True),
    ("what are the names of Audrey's dogs?", True),
    ("Who is Tim's favourite basketball player?", True),
    ("What did Tim read?", False),  # no kind of named thing
    ("Did Tim read any books?", False),  # not a what/which/who question
    ("Where does John live?", False),
])
def test_asks_for_names(query: str, asks: bool) -> None:
    assert asks_for_names(query) is asks


@pytest.mark.parametrize("text, known, names", [
    ("We played a game in Chicago last month.", (), True),
    ("I just finished 'The Name of the Wind'!", (), True),
    ("I read \u201cDune\u201d twice", (), True),
    ("We ate at McGee's pub.", (), True),
    ("Thanks, Maria! That was fun.", ["Maria"], False),  # a speaker's name is not it
    ("Thanks, Maria! That was fun.", ["maria "], False),
    ("Hi Mary, hi Ann!", ["Mary Ann"], False),
    ("Thanks, Maria! That was fun.", (), True),
    ("Chicago was great.", (), False),  # a sentence's first word may be any word
    ("Last Sunday in May was fun, Mom said.", (), False),  # days, months, family words
    ("I love the LGBTQ community and I can't wait", (), False),  # acronyms, "I"
    ("Nice! [shares a photo of the Eiffel Tower in Paris]", (), False),  # asides
])
def test_names_something(text: str, known: tuple[str, ...], names: bool) -> None:
    assert names_something(text, name_words(known)) is names


CHAT = [
    ("John", "I love exploring new cities, the energy and the food are amazing!"),
    ("Tim", "That sounds fun. I have been reading a lot of fantasy lately."),
    ("John", "We played a game in Chicago last month and the fans were great."),
    ("Tim", "Cities are great for food. What city do you like most?"),
    ("John", "Our team might travel somewhere new next season."),
]
CHICAGO = CHAT[2][1]


def test_the_turn_naming_a_city_rises(tmp_path: Path) -> None:
    """Real MiniLM: for "Which cities has John been to?" the first stage puts the turns
    that say "cities" first and the one naming Chicago fourth; the cue lifts it to second,
    and marks it (and only it) in the hit's sources."""
    ranks = {}
    for gamma in (0.0, 0.3):
        with Vault(settings=Settings(path=tmp_path / f"{gamma}.db", embedder="minilm",
                                     search=SearchConfig(name_gamma=gamma))) as v:
            v.add_messages([{"role": "user", "name": s, "content": t} for s, t in CHAT],
                           user_id="u")
            hits = v.search("Which cities has John been to?", user_id="u", k=5)
            texts = [h.item.text for h in hits]
            ranks[gamma] = texts.index(CHICAGO) + 1
            assert [h.item.text for h in hits if "name" in h.sources] == (
                [CHICAGO] if gamma else [])
            # a question that asks for no named things is left alone
            other = v.search("What has John been doing?", user_id="u", k=5)
            assert not any("name" in h.sources for h in other)
    assert ranks == {0.0: 4, 0.3: 2}
