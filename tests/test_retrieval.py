"""Second-stage retrieval through a real vault: link expansion, speaker cue, fusion."""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import Settings, Vault
from memvault.retrieval.fusion import minmax, rrf
from memvault.retrieval.searcher import SearchConfig
from memvault.retrieval.text import in_third, sentences
from memvault.storage.base import RowQuery


def make(tmp_path: Path, context: str = "thread", **search: object) -> Vault:
    return Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash",
                                   index_context=context,
                                   search=SearchConfig(**search)))  # type: ignore[arg-type]


CHAT = [
    {"name": "Ann", "content": "Guess what, I finally went to the pottery workshop."},
    {"name": "Ben", "content": "How was it?"},
    {"name": "Ann", "content": "Loved it. I made a wobbly blue bowl."},
    {"name": "Ben", "content": "Unrelated, my train was late again."},
]


def test_consecutive_turns_are_linked(tmp_path: Path) -> None:
    with make(tmp_path) as v:
        items = v.add_messages(CHAT, user_id="u", session_id="s")
        assert [link.target for link in v.get(items[0].id).links] == [items[1].id]
        assert v.get(items[3].id).links == ()


def test_link_expansion_brings_in_the_neighbouring_answer(tmp_path: Path) -> None:
    """'How was it?' shares no word with the query; it gains score through its link."""
    query = "pottery workshop"
    with make(tmp_path, context="speaker", link_beta=0.0) as v:
        items = v.add_messages(CHAT, user_id="u", session_id="s")
        v.link(items[0].id, items[1].id, kind="next")  # "speaker" mode adds no thread links
        plain = {h.item.id: h for h in v.search(query, user_id="u", k=4)}
    with make(tmp_path, context="speaker", link_beta=0.5, link_hops=1) as v:
        expanded = {h.item.id: h for h in v.search(query, user_id="u", k=4)}
    reply = items[1].id
    assert "links" not in plain[reply].sources
    assert "links" in expanded[reply].sources
    assert expanded[reply].score > plain[reply].score
    assert "links" not in expanded[items[3].id].sources  # not linked to anything


@pytest.mark.parametrize("kind", ["similar", "entity", "summarizes"])
def test_expansion_skips_the_links_the_lifecycle_derives(tmp_path: Path, kind: str) -> None:
    """The train turn is linked to the best hit: by the scheduler (similarity, a shared
    entity, a summary's source) it gains nothing; by a person ("related") it does."""
    with make(tmp_path, context="speaker", link_beta=0.5, link_hops=1) as v:
        items = v.add_messages(CHAT, user_id="u", session_id="s")
        train = items[3].id
        v.link(items[0].id, train, kind=kind)
        derived = {h.item.id: h for h in v.search("pottery workshop", user_id="u", k=4)}
        assert "links" not in derived[train].sources
        v.link(items[0].id, train, kind="related")
        told = {h.item.id: h for h in v.search("pottery workshop", user_id="u", k=4)}
        assert "links" in told[train].sources and told[train].score > derived[train].score
    with make(tmp_path, context="speaker", link_beta=0.5, link_hops=1, link_skip=()) as v:
        v.unlink(items[0].id, train, kind="related")
        every = {h.item.id: h for h in v.search("pottery workshop", user_id="u", k=4)}
        assert "links" in every[train].sources  # followed when nothing is skipped


def test_link_skip_names_the_kinds_the_scheduler_derives() -> None:
    """A kind renamed in the scheduler must not silently start flooding search."""
    from memvault.scheduler.consolidate import LINK_KIND
    from memvault.scheduler.links import ENTITY, SESSION, SIMILAR

    skip = SearchConfig().link_skip
    assert {ENTITY, SIMILAR, LINK_KIND} <= set(skip)
    assert SESSION not in skip and "next" not in skip  # what lies around a hit is followed


def test_expansion_respects_scope(tmp_path: Path) -> None:
    with make(tmp_path, link_beta=1.0) as v:
        a = v.add_messages(CHAT[:2], user_id="u1", session_id="s")
        b = v.add("Ben: How was it? (other user)", user_id="u2")
        v.link(a[0].id, b.id)  # a cross-scope link must not leak u2's memory into u1's search
        hits = v.search("pottery workshop", user_id="u1", k=10)
        assert {h.item.user_id for h in hits} == {"u1"}


def test_speaker_cue_prefers_the_named_person(tmp_path: Path) -> None:
    chat = [{"name": "Ann", "content": "I love hiking in the hills."},
            {"name": "Ben", "content": "I love hiking in the hills too."}]
    with make(tmp_path, speaker_gamma=0.5, link_beta=0.0) as v:
        v.add_messages(chat, user_id="u", session_id="s")
        top = v.search("does Ben love hiking in the hills", user_id="u", k=2)
        assert top[0].item.metadata["speaker"] == "Ben" and top[0].sources["speaker"] == 1.0
        top = v.search("does Ann love hiking in the hills", user_id="u", k=2)
        assert top[0].item.metadata["speaker"] == "Ann"


def test_retriever_subsets(tmp_path: Path) -> None:
    with make(tmp_path, retrievers=("lexical",)) as v:
        v.add("alpha beta gamma")
        v.add("completely different words")
        hits = v.search("alpha", k=5)
        assert [h.item.text for h in hits] == ["alpha beta gamma"]
        assert set(hits[0].sources) == {"lexical"}


def test_rrf_fuses_by_rank_and_weight() -> None:
    fused = rrf({"a": [(1, 9.0), (2, 5.0)], "b": [(2, 0.9), (3, 0.1)]}, k=10,
                weights={"a": 1.0, "b": 2.0})
    order = [key for key, _, _ in fused]
    assert order == [2, 3, 1]
    assert fused[0][2] == {"a": 5.0, "b": 0.9}


def test_minmax_fuses_rescaled_scores_and_keeps_the_last_candidate_above_absent_keys(
        ) -> None:
    fused = minmax({"dense": [(1, 0.9), (2, 0.5), (3, 0.1)], "lexical": [(3, 12.0), (4, 2.0)]},
                   weights={"dense": 1.0, "lexical": 0.5})
    scores = {key: round(score, 4) for key, score, _ in fused}
    # dense: floor 0.1 - 0.4 = -0.3, span 1.2; lexical: floor 2 - 10 = -8, span 20
    assert scores == {1: 1.0, 2: round(0.8 / 1.2, 4), 3: round(0.4 / 1.2 + 0.5, 4),
                      4: round(0.5 * 10 / 20, 4)}
    assert [key for key, _, _ in fused] == [1, 3, 2, 4]
    assert fused[1][2] == {"dense": 0.1, "lexical": 12.0}
    assert [s for _, s, _ in minmax({"a": [(7, 3.0)], "b": [(8, 1.0), (9, 1.0)]})] == [1.0] * 3
    assert minmax({"a": []}) == []


def test_fusion_method_is_validated() -> None:
    from memvault.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        SearchConfig(fusion="borda")


def test_length_prior_prefers_a_turn_that_says_something(tmp_path: Path) -> None:
    chat = [{"name": "Ann", "content": "Wow, pottery! Nice."},
            {"name": "Ann", "content": "I took a pottery class last week and made a bowl for my "
                                       "kids; we glazed it blue and it came out of the kiln today."}]
    # rank fusion, so the two turns' first-stage scores differ by one rank step only
    plain = {"retrievers": ("lexical",), "link_beta": 0.0, "speaker_gamma": 0.0,
             "fusion": "rrf"}
    (tmp_path / "off").mkdir()
    (tmp_path / "on").mkdir()
    with make(tmp_path / "off", "speaker", length_beta=0.0, **plain) as v:
        v.add_messages(chat, user_id="u", session_id="s")
        assert v.search("pottery", user_id="u", k=2)[0].item.text.startswith("Wow")  # BM25
    with make(tmp_path / "on", "speaker", length_beta=0.6, **plain) as v:
        v.add_messages(chat, user_id="u", session_id="s")
        assert v.search("pottery", user_id="u", k=2)[0].item.text.startswith("I took")
        # memories that are not chat turns keep their first-stage order
        v.add("pottery", user_id="n")
        v.add("pottery is a craft that people have practised for thousands of years, "
              "from coiled pots to wheel-thrown stoneware", user_id="n")
        assert v.search("pottery", user_id="n", k=2)[0].item.text == "pottery"


def test_sentences_split_turns_and_asides() -> None:
    text = "Hey Ben! I just finished Dune. [shares a photo of a book] What about you?"
    assert sentences(text) == ["Hey Ben!", "I just finished Dune.", "[shares a photo of a book]",
                               "What about you?"]
    assert sentences("ok") == ["ok"] and sentences("One plain sentence") == ["One plain sentence"]


BURIED = ("Hey Ben, so good to hear from you! The weather has been lovely and the kids are "
          "back at school. I finally finished reading Dune by Frank Herbert. Anyway, how is "
          "your family doing these days?")


def test_a_turn_scores_by_its_best_sentence(tmp_path: Path) -> None:
    """Through the real MiniLM: the buried sentence, not the blurred whole, scores the turn."""
    query = "What book did Ann read?"
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="minilm",
                                 index_context="speaker")) as v:
        turn = v.add_messages([{"name": "Ann", "content": BURIED},
                               {"name": "Ann", "content": "I like lazy weekends with coffee."}],
                              user_id="u", session_id="s")[0]
        emb = v.embedder
        q = v.searcher.embed_query(query)
        whole = float(emb.embed([f"Ann: {BURIED}"])[0] @ q)
        # each sentence as "Ann: ...", and in the third person where it says "I"/"my"
        pieces = [f"Ann: {s}" for s in sentences(BURIED)]
        pieces += [in_third(s, "Ann") for s in sentences(BURIED) if in_third(s, "Ann") != s]
        assert "Ann finally finished reading Dune by Frank Herbert." in pieces
        best = float(max(emb.embed(pieces) @ q))
        seq = v.store.select(RowQuery(ids=[turn.id]))[0].seq
        assert best > whole + 0.05
        assert dict(v.searcher.dense(q, RowQuery(), 5))[seq] == pytest.approx(best, abs=1e-5)
        assert v.search(query, user_id="u", k=1)[0].item.id == turn.id
    # opening with other part settings rebuilds the snapshot instead of trusting it
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="minilm",
                                 index_context="speaker",
                                 search=SearchConfig(part_kinds=()))) as v:
        assert v.searcher.report["index"].startswith("rebuilt")
        dense = dict(v.searcher.dense(v.searcher.embed_query(query), RowQuery(), 5))
        assert dense[seq] == pytest.approx(whole, abs=1e-5)


def test_the_first_hits_do_not_depend_on_k(tmp_path: Path) -> None:
    """Up to k=20 every k ranks the same candidates: a page of 10 is the start of a page of
    20 (what the LoCoMo bench relies on when it reads R@5 and R@10 off one search)."""
    topics = ["hiking", "painting", "cooking", "chess", "guitar", "running", "gardening"]
    with make(tmp_path) as v:
        v.add_messages([{"role": "user", "name": "Ann" if i % 2 else "Bob",
                         "content": f"I spent the weekend {topics[i % 7]} with friend {i}"}
                        for i in range(150)], user_id="u")
        lists = {k: [h.item.id for h in v.search("what did Ann do at the weekend with friends",
                                                 user_id="u", k=k)] for k in (1, 5, 10, 20)}
    assert len(lists[20]) == 20
    for k in (1, 5, 10):
        assert lists[k] == lists[20][:k]
