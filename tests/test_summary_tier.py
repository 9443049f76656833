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


def test_descent_reaches_turns_under_the_best_summaries(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    _fill(db)
    with Vault(settings=_settings(db)) as v:
        summaries = v.list(user_id="ana", filters={"kind": "summary"}).items
        under = {link.target for s in summaries for link in s.links
                 if link.kind == "summarizes"}
        trip_ids = {i.id for i in v.list(user_id="ana", filters={"kind": "turn"},
                                         limit=100).items if i.text in TRIP}
    assert summaries and trip_ids <= under
    hits = _search(db, "Lisbon trip sardines", k=10, tier="summaries")
    via = [h for h in hits if "tier" in h.sources]
    assert via, "the tier ranked nothing"
    assert all(h.item.kind != "summary" or h.item.user_id == "ana" for h in hits)
    assert all(h.item.user_id == "ana" for h in hits)  # never Bo's copy of the trip
    assert {h.item.id for h in via if h.item.kind == "turn"} <= under
    flat = _search(db, "Lisbon trip sardines", k=10)
    assert all("tier" not in h.sources for h in flat)


def test_auto_stays_flat_on_a_small_scope_and_descends_on_a_large_one(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    _fill(db)
    flat = _search(db, "the tram to the castle", k=8)
    small = _search(db, "the tram to the castle", k=8, tier="auto")
    assert [h.item.id for h in small] == [h.item.id for h in flat]
    large = _search(db, "the tram to the castle", k=8, tier="auto", tier_min_memories=1)
    forced = _search(db, "the tram to the castle", k=8, tier="summaries")
    assert [h.item.id for h in large] == [h.item.id for h in forced]
    assert any("tier" in h.sources for h in forced)


def test_a_query_by_kind_is_flat(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    _fill(db)
    with Vault(settings=_settings(db, tier="summaries")) as v:
        hits = v.search("Lisbon", user_id="ana", filters={"kind": "summary"}, k=3)
    assert hits and all(h.item.kind == "summary" and "tier" not in h.sources for h in hits)
