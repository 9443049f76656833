"""The vault through the real bundled model (all-MiniLM-L6-v2 in numpy), not the fake."""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import Settings, Vault
from memvault.retrieval.searcher import SearchConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder():
    from memvault.models.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def test_dense_search_finds_paraphrases_with_no_shared_words(tmp_path: Path, embedder) -> None:
    settings = Settings(path=tmp_path / "v.db", embedder=embedder.id,
                        search=SearchConfig(retrievers=("dense",)))
    with Vault(settings=settings, embedder=embedder) as v:
        car = v.add("I bought a second-hand automobile last week.", user_id="u")
        v.add("My sister is learning to play the cello.", user_id="u")
        v.add("The quarterly tax return is due in April.", user_id="u")
        hits = v.search("new car purchase", user_id="u", k=3)
        assert hits[0].item.id == car.id
        assert hits[0].sources["dense"] > hits[1].sources["dense"]


def test_sample_conversation_questions(tmp_path: Path, embedder) -> None:
    import json
    from importlib import resources

    data = json.loads(resources.files("memvault.data").joinpath(
        "sample_conversation.json").read_text())
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder=embedder.id),
               embedder=embedder) as v:
        for n, session in enumerate(data["sessions"]):
            v.add_messages([{"role": "user", "name": t["speaker"], "content": t["text"],
                             "timestamp": session["date"]} for t in session["turns"]],
                           user_id="demo", session_id=f"s{n}")
        top = [h.item.text for h in v.search("What is Maya's dog called?", user_id="demo", k=3)]
        assert any("Pixel" in t for t in top)
        top = [h.item.text for h in v.search("Where does Maya live now?", user_id="demo", k=3)]
        assert any("Porto" in t for t in top)
        assert v.check()["ok"]
