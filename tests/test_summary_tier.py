"""The summary tier (``SearchConfig.tier``), through ``Vault.search`` on a real vault.

Why: a tiered search must only add what the summaries lead to (turns under the best
summaries), must equal flat search where there is nothing to descend (no scheduler pass
yet, a small scope under "auto", a query by kind), and must never leave the caller's scope.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from memvault import Vault
from memvault.errors import ConfigurationError
from memvault.retrieval.config import SearchConfig
from memvault.scheduler import consolidate
from memvault.settings import Settings

TRIP = ["We finally went to Lisbon for the long weekend.",
        "The tram up to the castle was packed but worth it.",
        "We ate grilled sardines by the river every evening.",
        "The fado bar in Alfama was the best night of the trip.",
        "I bought blue tiles for the kitchen as a souvenir."]
WORK = ["The quarterly report is due on Friday.",
        "My manager wants the charts redone in the new template.",
        "We hired two engineers for the data team.",
        "The office coffee machine broke again.",
        "I will present the roadmap at the all-hands."]


def _settings(path: Path, **search: object) -> Settings:
    return Settings(path=path, embedder="hash", search=replace(SearchConfig(), **search))


def _fill(path: Path, owner: str = "ana", sessions: int = 2) -> None:
    with Vault(settings=_settings(path)) as v:
        for n in range(sessions):
            for texts, name in ((TRIP, "trip"), (WORK, "work")):
                v.add_messages([{"role": "user", "name": "Ana", "content": t}
                                for t in texts], user_id=owner, session_id=f"{name}{n}")
        v.add_messages([{"role": "user", "name": "Bo", "content": t} for t in TRIP],
                       user_id="bo", session_id="bo-trip")
        consolidate(v)


def _search(path: Path, query: str, k: int = 5, **search: object) -> list:
    with Vault(settings=_settings(path, **search)) as v:
        return v.search(query, user_id="ana", k=k)


def test_tier_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        SearchConfig(tier="deep")


def test_flat_vault_without_summaries_searches_as_flat(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with Vault(settings=_settings(db)) as v:
        v.add_messages([{"role": "user", "content": t} for t in TRIP], user_id="ana",
                       session_id="s1")
    flat = _search(db, "Lisbon trip sardines")
    tiered = _search(db, "Lisbon trip sardines", tier="summaries")
    assert [h.item.id for h in tiered] == [h.item.id for h in flat]
    assert all("tier" not in h.sources for h in tiered)


@pytest.mark.parametrize("rank", ["full", "first"])
def test_descent_reaches_turns_under_the_best_summaries(tmp_path: Path, rank: str) -> None:
    db = tmp_path / "v.db"
    _fill(db)
    with Vault(settings=_settings(db)) as v:
        summaries = v.list(user_id="ana", filters={"kind": "summary"}).items
        under = {link.target for s in summaries for link in s.links
                 if link.kind == "summarizes"}
        trip_ids = {i.id for i in v.list(user_id="ana", filters={"kind": "turn"},
                                         limit=100).items if i.text in TRIP}
    assert summaries and trip_ids <= under
    hits = _search(db, "Lisbon trip sardines", k=10, tier="summaries", tier_rank=rank)
    via = [h for h in hits if "tier" in h.sources]
    assert via, "the tier ranked nothing"
    assert all(h.item.kind != "summary" or h.item.user_id == "ana" for h in hits)
    assert all(h.item.user_id == "ana" for h in hits)  # never Bo's copy of the trip
    assert {h.item.id for h in via if h.item.kind == "turn"} <= under
    flat = _search(db, "Lisbon trip sardines", k=10)
    assert all("tier" not in h.sources for h in flat)


def test_auto_stays_flat_below_its_scope_floor(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    _fill(db)
    flat = _search(db, "the tram to the castle", k=8)
    small = _search(db, "the tram to the castle", k=8, tier="auto", tier_margin=1.0,
                    tier_min_memories=10_000)
    assert [h.item.id for h in small] == [h.item.id for h in flat]
    large = _search(db, "the tram to the castle", k=8, tier="auto", tier_margin=1.0,
                    tier_min_memories=1)
    forced = _search(db, "the tram to the castle", k=8, tier="summaries")
    assert [h.item.id for h in large] == [h.item.id for h in forced]


def _ids(hits: list) -> list[str]:
    return [h.item.id for h in hits]


def _via(hits: list) -> list[tuple[str, bool]]:
    return [(h.item.id, "tier" in h.sources) for h in hits]


@pytest.mark.parametrize("rank", ["full", "first"])
def test_the_descent_never_reorders_flats_head(tmp_path: Path, rank: str) -> None:
    """Flat's first ``tier_keep`` hits stay where they are; at most ``tier_insert`` turns
    from under the summaries come right after them; the rest is flat's order."""
    db = tmp_path / "v.db"
    _fill(db, sessions=3)
    query = "the fado bar and the sardines by the river"
    flat = _search(db, query, k=10)
    for keep, insert in ((2, 2), (4, 1), (0, 3)):
        hits = _search(db, query, k=10, tier="summaries", tier_keep=keep,
                       tier_insert=insert, tier_rank=rank)
        assert _ids(hits[:keep]) == _ids(flat[:keep])
        via = [i for i, h in enumerate(hits) if "tier" in h.sources]
        assert via and via == list(range(keep, keep + len(via))) and len(via) <= insert
        assert all(hits[i].item.kind == "turn" for i in via)
        moved = {hits[i].item.id for i in via}
        assert _ids(hits[keep + len(via):]) == \
            [i for i in _ids(flat[keep:]) if i not in moved][:10 - keep - len(via)]
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)


def test_auto_descends_only_when_the_best_summary_stands_out(tmp_path: Path) -> None:
    """The planner compares the best summary's score with the runner-up's (the scores a
    search of the summaries returns): a margin just under that ratio descends, just
    over it stays flat."""
    db = tmp_path / "v.db"
    _fill(db, sessions=3)
    query = "the fado bar and the sardines by the river"
    with Vault(settings=_settings(db)) as v:
        top = v.search(query, user_id="ana", filters={"kind": "summary"}, k=2)
    ratio = top[0].score / top[1].score
    assert ratio > 1.0
    flat = _search(db, query, k=10)
    forced = _search(db, query, k=10, tier="summaries")
    assert any("tier" in h.sources for h in forced), "nothing descended: proves nothing"
    under = _search(db, query, k=10, tier="auto", tier_margin=ratio * 0.999)
    over = _search(db, query, k=10, tier="auto", tier_margin=ratio * 1.001)
    assert _via(under) == _via(forced)
    assert _via(over) == _via(flat) and all("tier" not in h.sources for h in over)


def test_a_k_within_the_kept_head_is_flat(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    _fill(db)
    flat = _search(db, "Lisbon trip sardines", k=3)
    hits = _search(db, "Lisbon trip sardines", k=3, tier="summaries", tier_keep=3)
    assert _ids(hits) == _ids(flat) and all("tier" not in h.sources for h in hits)


@pytest.mark.parametrize("bad", [{"tier_margin": 0.5}, {"tier_keep": -1},
                                 {"tier_insert": -2}, {"tier_summaries": 0},
                                 {"tier_rank": "fast"}])
def test_tier_settings_are_checked(bad: dict) -> None:
    with pytest.raises(ConfigurationError):
        SearchConfig(**bad)


def test_a_query_by_kind_is_flat(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    _fill(db)
    with Vault(settings=_settings(db, tier="summaries")) as v:
        hits = v.search("Lisbon", user_id="ana", filters={"kind": "summary"}, k=3)
    assert hits and all(h.item.kind == "summary" and "tier" not in h.sources for h in hits)


def test_first_stage_ranking_keeps_the_planner_and_the_scope(tmp_path: Path) -> None:
    """``tier_rank="first"`` ranks the summaries and the turns under them without the
    second stage, but decides the same way: "auto" at margin 1 descends exactly as
    "summaries" does, at a margin no score ratio reaches it is flat search; and a descent
    through a topic summary (topic -> sessions -> turns) still never leaves the owner."""
    db = tmp_path / "v.db"
    _fill(db, sessions=3)
    with Vault(settings=_settings(db)) as v:
        topics = [s for s in v.list(user_id="ana", filters={"kind": "summary"}).items
                  if s.metadata.get("level") == "topic"]
    assert topics, "no topic summary: the two-level descent is not exercised"
    query = "the fado bar and the sardines by the river"
    flat = _search(db, query, k=10)
    forced = _search(db, query, k=10, tier="summaries", tier_rank="first")
    assert any("tier" in h.sources for h in forced), "nothing descended: proves nothing"
    assert all(h.item.user_id == "ana" for h in forced)
    always = _search(db, query, k=10, tier="auto", tier_rank="first", tier_margin=1.0)
    never = _search(db, query, k=10, tier="auto", tier_rank="first", tier_margin=1e9)
    assert _via(always) == _via(forced)
    assert _via(never) == _via(flat)
    # a topic summary's turns are reached even when only topics are searched first
    topic_only = _search(db, "Lisbon", k=10, tier="summaries", tier_rank="first",
                         tier_summaries=1)
    assert all(h.item.user_id == "ana" for h in topic_only)
