"""A question that names a date searches that window of event time too (retrieval/when.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from memvault import Settings, Vault
from memvault.retrieval.searcher import SearchConfig
from memvault.retrieval.when import time_window


NOW = datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc).timestamp()  # a Monday


def span(query: str) -> tuple[str | None, str | None] | None:
    window = time_window(query, now=NOW, slack_days=7)
    if window is None:
        return None
    as_date = lambda t: None if t is None else (  # noqa: E731
        datetime.fromtimestamp(t, timezone.utc).date().isoformat())
    return as_date(window.after), as_date(window.before)


@pytest.mark.parametrize("query, expected", [
    ("What did Nate do for Joanna on 25 May, 2022?", ("2022-05-25", "2022-06-02")),
    ("What book did Tim finish on 8th December, 2023?", ("2023-12-08", "2023-12-16")),
    ("Where was the picture taken on December 1,2023?", ("2023-12-01", "2023-12-09")),
    ("what happened on 2024-02-29", ("2024-02-29", "2024-03-08")),
    ("What did Nate undergo in April 2022?", ("2022-04-01", "2022-05-08")),
    ("Which country did James visit in 2021?", ("2021-01-01", "2022-01-08")),
    ("How many pets did Andrew have, as of September 2023?", (None, "2023-10-01")),
    ("What changed after March 3, 2023?", ("2023-03-03", None)),
    ("What did she do the weekend before 4th October, 2023?", ("2023-09-27", "2023-10-05")),
    ("What did they plan for the Saturday after October 28, 2023?", ("2023-10-28", "2023-11-05")),
    ("Where was John between 11 August 2023 and 15 August 2023?", ("2023-08-11", "2023-08-23")),
    # relative to now: whole UTC days up to the end of today
    ("what did I eat yesterday?", ("2026-11-22", "2026-11-24")),
    ("What did we decide today", ("2026-11-23", "2026-11-24")),
    ("What happened last week?", ("2026-11-09", "2026-11-24")),
    ("anything in the past 3 days", ("2026-11-20", "2026-11-24")),
    ("the bug two weeks ago", ("2026-11-02", "2026-11-17")),
    # an absolute date wins over a relative phrase around it
    ("What was Tim's issue last week, as mentioned on November 6, 2023?",
     ("2023-11-06", "2023-11-14")),
])
def test_dates_named_in_a_question_become_a_window(query: str, expected: tuple) -> None:
    assert span(query) == expected


@pytest.mark.parametrize("query", [
    "When did Melanie go camping in June?",  # which June: no year, no window
    "What did we talk about recently?",  # too vague to bound
    "I have 2000 apples",  # a number, not a year
    "what happened on 2023-02-30",  # not a date
    "What is the May queen's name?",
])
def test_no_window_without_a_dated_time(query: str) -> None:
    assert time_window(query, now=NOW) is None


def test_relative_times_need_a_clock() -> None:
    assert time_window("what did I eat yesterday?") is None
    assert time_window("what did I eat yesterday?", now=NOW) is not None


WALKS = ["walked the dog in the park this morning", "walked the dog in the park at noon",
         "walked the dog in the park after work", "walked the dog in the big park",
         "walked the dog around the park twice"]


def fill(v: Vault) -> dict[str, str]:
    """Walks in the park on many days; one by the river on 25 May 2022 (the target), and the
    same walk a month later, outside the window's week of slack."""
    ids = {}
    for i, text in enumerate(WALKS * 4):
        item = v.add(f"{text} ({i})", user_id="u",
                     event_time=datetime(2021 + i % 3, 1 + i % 12, 3, tzinfo=timezone.utc))
        ids[item.id] = "park"
    ids[v.add("walked the dog in the park by the river", user_id="u",
              event_time="2022-05-25T18:00:00Z").id] = "target"
    ids[v.add("walked the dog in the park by the river, again", user_id="u",
              event_time="2022-06-25T18:00:00Z").id] = "later"
    return ids


QUESTION = "Where did I walk the dog in the park on 25 May, 2022?"


@pytest.mark.parametrize("embedder", ["hash", "minilm"])
def test_a_question_naming_a_date_finds_the_memory_from_then(tmp_path: Path,
                                                             embedder: str) -> None:
    ranks = {}
    for weight in (0.0, 1.0):
        settings = Settings(path=tmp_path / f"{weight}.db", embedder=embedder,
                            search=SearchConfig(time_weight=weight))
        with Vault(settings=settings) as v:
            ids = fill(v)
            hits = v.search(QUESTION, user_id="u", k=30)
            ranks[weight] = [ids[h.item.id] for h in hits]
            if weight:
                assert "when" in hits[0].sources  # the dated search is why it is first
    assert ranks[0.0][0] == "park"  # without the window the park walks win
    assert ranks[1.0][0] == "target"
    assert ranks[1.0].index("later") > 1  # the same walk a month later gets no lift


def test_the_window_respects_the_callers_own_time_filter(tmp_path: Path) -> None:
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash")) as v:
        ids = fill(v)
        hits = v.search(QUESTION, user_id="u", k=30, filters={"event_before": "2022-01-01"})
        assert hits and all(ids[h.item.id] == "park" for h in hits)
        assert all(h.item.event_time < datetime(2022, 1, 1, tzinfo=timezone.utc)
                   for h in hits)
        assert not any("when" in h.sources for h in hits)


def test_yesterday_is_read_against_the_wall_clock(tmp_path: Path) -> None:
    """The searcher resolves "yesterday" with the real clock: the memory written with
    yesterday's event time outranks the same story from last year."""
    now = datetime.now(timezone.utc)
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash")) as v:
        old = v.add("had pasta with the team at the new place", user_id="u",
                    event_time=now - timedelta(days=400))
        for i, text in enumerate(WALKS):
            v.add(f"had pasta, {text}", user_id="u", event_time=now - timedelta(days=30 + i))
        recent = v.add("had pasta with the team at the place by the station", user_id="u",
                       event_time=now - timedelta(days=1))
        plain = [h.item.id for h in v.search("had pasta with the team at the new place",
                                             user_id="u", k=10)]
        dated = [h.item.id for h in v.search("had pasta with the team at the new place "
                                             "yesterday", user_id="u", k=10)]
    assert plain[0] == old.id and dated[0] == recent.id
