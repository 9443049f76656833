"""A question naming a speaker also searches in that speaker's voice (``text.in_voice``),
and what a named speaker said is also indexed in the third person (``text.in_third``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memvault import Settings, Vault
from memvault.index.vector import VectorIndex
from memvault.retrieval.searcher import SearchConfig
from memvault.retrieval.context import part_texts
from memvault.retrieval.text import in_third, in_voice
from memvault.types import MemoryItem


@pytest.mark.parametrize("query, names, expected", [
    ("What did Caroline paint?", ["Caroline", "Melanie"], "What did I paint?"),
    ("What are the names of Andrew's dogs?", ["Andrew"], "What are the names of my dogs?"),
    ("What are the names of Andrew’s dogs?", ["Andrew"], "What are the names of my dogs?"),
    ("did jon and GINA both dance?", ["Jon", "Gina"], "did I and I both dance?"),
    # the longer name wins where one contains the other
    ("What does Mary Ann like?", ["Mary", "Mary Ann"], "What does I like?"),
])
def test_named_speakers_become_the_first_person(query: str, names: list[str],
                                                expected: str) -> None:
    assert in_voice(query, names) == expected


@pytest.mark.parametrize("query, names", [
    ("What did Jonathan say?", ["Jon"]),  # whole words only
    ("What did she paint?", ["Caroline"]),
    ("What did Caroline paint?", []),
    ("What did Caroline paint?", ["", "  "]),
])
def test_no_voice_without_a_named_speaker(query: str, names: list[str]) -> None:
    assert in_voice(query, names) is None


def test_the_index_lists_the_speakers_in_a_scope() -> None:
    index = VectorIndex(4)
    vecs = np.eye(4, dtype=np.float32)
    index.upsert([("a", 1, {"user_id": "u", "speaker": "Ann"}),
                  ("b", 2, {"user_id": "u", "speaker": None}),
                  ("c", 3, {"user_id": "v", "speaker": "Bob"}),
                  ("d", 4, {"user_id": "u", "speaker": "Cy"})], vecs)
    assert sorted(index.values("speaker")) == ["Ann", "Bob", "Cy"]
    assert sorted(index.values("speaker", index.mask({"user_id": "u"}))) == ["Ann", "Cy"]
    index.remove("d")
    assert index.values("speaker", index.mask({"user_id": "u"})) == ["Ann"]
    assert sorted(index.known("speaker")) == ["Ann", "Bob", "Cy"]  # a superset, removed too


CHAT = [
    ("Andrew", "I went fishing at the lake with my girlfriend last weekend."),
    ("Audrey", "Andrew is always outdoors, hiking and climbing with friends."),
    ("Andrew", "I started a new job as a financial analyst."),
    ("Audrey", "I bought new beds for my dogs yesterday."),
    ("Andrew", "I have been baking bread to unwind after work."),
    ("Audrey", "Andrew told me he loves his job and his outdoor hobbies."),
]
BREAD = "I have been baking bread to unwind after work."


def add_chat(v: Vault, user: str = "u") -> None:
    v.add_messages([{"role": "user", "name": s, "content": t} for s, t in CHAT], user_id=user)


def test_the_speakers_voice_finds_what_they_said(tmp_path: Path) -> None:
    """Real MiniLM. "What does Andrew do to relax?" is closest to what Audrey says *about*
    Andrew; asked as Andrew would ("What does I do to relax?") it is closest to his own
    "I have been baking bread to unwind". The speaker cue, links and third-person
    sentences are off, so the voice list alone decides."""
    firsts = {}
    for weight in (0.0, 1.0):
        search = SearchConfig(voice_weight=weight, speaker_gamma=0.0, link_beta=0.0,
                              third_person=False)
        with Vault(settings=Settings(path=tmp_path / f"{weight}.db", embedder="minilm",
                                     search=search)) as v:
            add_chat(v)
            hits = v.search("What does Andrew do to relax?", user_id="u", k=6)
            firsts[weight] = hits[0].item.text
            if weight:
                best = {key: max(hits, key=lambda h: h.sources.get(key, -1.0)).item.text
                        for key in ("dense", "voice")}
                assert best == {"dense": CHAT[5][1], "voice": BREAD}
    assert firsts == {0.0: CHAT[1][1], 1.0: BREAD}


def test_the_third_person_finds_what_they_said(tmp_path: Path) -> None:
    """Real MiniLM, the document side of the test above: with no voiced query, indexing
    Andrew's "I have been baking bread to unwind" also as "Andrew have been baking bread
    to unwind" is what brings it first for the third-person question."""
    firsts = {}
    for third in (False, True):
        search = SearchConfig(voice_weight=0.0, speaker_gamma=0.0, link_beta=0.0,
                              third_person=third)
        with Vault(settings=Settings(path=tmp_path / f"{third}.db", embedder="minilm",
                                     search=search)) as v:
            add_chat(v)
            firsts[third] = v.search("What does Andrew do to relax?", user_id="u",
                                     k=6)[0].item.text
    assert firsts == {False: CHAT[1][1], True: BREAD}


@pytest.mark.parametrize("text, said", [
    ("I have been baking bread.", "Andrew have been baking bread."),  # verbs stay
    ("I'm sure I'll go; I've been, I'd say.", "Andrew is sure Andrew will go; Andrew has been, "
     "Andrew would say."),
    ("My dog is mine, she loves me and myself.",
     "Andrew's dog is Andrew's, she loves Andrew and Andrew."),
    ("I\u2019m in Iowa, it is iconic", "Andrew is in Iowa, it is iconic"),
    ("Sounds great, Maria!", "Sounds great, Maria!"),
])
def test_in_third(text: str, said: str) -> None:
    assert in_third(text, " Andrew ") == said


def test_third_person_parts_only_for_named_speakers() -> None:
    named = MemoryItem(id="t", text="Great! I painted a lake. Do you paint?", kind="turn",
                       metadata={"speaker": "Mel"})
    assert part_texts(named, "speaker", third=True) == [
        "Mel: Great!", "Mel: I painted a lake.", "Mel: Do you paint?", "Mel painted a lake."]
    assert part_texts(named, "speaker", third=False) == [
        "Mel: Great!", "Mel: I painted a lake.", "Mel: Do you paint?"]
    # one sentence: no part but its third-person form; no name (a role only): none
    one = MemoryItem(id="t", text="I painted a lake.", kind="turn", metadata={"speaker": "Mel"})
    assert part_texts(one, "speaker", third=True) == ["Mel painted a lake."]
    role = MemoryItem(id="t", text="I painted a lake.", kind="turn", metadata={"role": "user"})
    assert part_texts(role, "speaker", third=True) == []


def test_only_speakers_in_the_callers_scope_are_voiced(tmp_path: Path) -> None:
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash")) as v:
        add_chat(v, user="u")
        v.add("baking bread is relaxing", user_id="other")
        mine = v.search("What does Andrew do to relax?", user_id="u", k=6)
        theirs = v.search("What does Andrew do to relax?", user_id="other", k=6)
    assert any("voice" in h.sources for h in mine)
    assert theirs and not any("voice" in h.sources for h in theirs)


def test_the_speaker_survives_an_index_snapshot(tmp_path: Path) -> None:
    """The speaker is kept in the snapshot: a reopened vault still voices the question."""
    settings = Settings(path=tmp_path / "v.db", embedder="hash")
    with Vault(settings=settings) as v:
        add_chat(v)
    with Vault(settings=settings) as v:
        assert v.searcher.report["index"] == "loaded snapshot"
        hits = v.search("What does Andrew do to relax?", user_id="u", k=6)
    assert any("voice" in h.sources for h in hits)


def test_a_snapshot_without_third_person_rows_is_rebuilt(tmp_path: Path) -> None:
    """The snapshot of a vault indexed without third-person sentences (an older memvault,
    or ``third_person=False``) is not trusted by one that wants them, and vice versa."""
    path = tmp_path / "v.db"
    with Vault(settings=Settings(path=path, embedder="hash",
                                 search=SearchConfig(third_person=False))) as v:
        add_chat(v)
    reports, rows = [], []
    for third in (True, True, False):
        settings = Settings(path=path, embedder="hash", search=SearchConfig(third_person=third))
        with Vault(settings=settings) as v:
            reports.append(v.searcher.report["index"].split(" (")[0])
            rows.append(v.searcher._index._live)
    assert reports == ["rebuilt", "loaded snapshot", "rebuilt"]
    # six chat turns, five of them in the first person: one more row each
    assert rows == [11, 11, 6]


STORY = [
    ("Andrew", "I went fishing at the lake. It was great! My girlfriend caught two trout."),
    ("Audrey", "Nice! I bought new beds for my dogs. They love them."),
    ("Andrew", "Work has been stressful. I bake bread to unwind."),
]


def test_a_rebuild_for_other_settings_reuses_the_sentence_vectors(tmp_path: Path) -> None:
    """Turning third-person sentences on rebuilds the index, but the sentence vectors the
    old snapshot holds are taken from it, not embedded again: only the new third-person
    texts are. The result searches exactly like an index built with the setting from the
    start."""
    def open_(path: Path, third: bool) -> Vault:
        return Vault(settings=Settings(path=path, embedder="hash",
                                       search=SearchConfig(third_person=third)))

    def messages() -> list[dict[str, str]]:
        return [{"role": "user", "name": s, "content": t} for s, t in STORY]

    spoken = sum(len(part_texts(MemoryItem(id="t", text=t, kind="turn", metadata={"speaker": s}),
                                "speaker")) for s, t in STORY)
    third = sum(len(part_texts(MemoryItem(id="t", text=t, kind="turn", metadata={"speaker": s}),
                               "speaker", third=True)) for s, t in STORY) - spoken
    assert spoken == 8 and third == 4  # the sentences; the first-person ones again
    path = tmp_path / "v.db"
    with open_(path, False) as v:
        v.add_messages(messages(), user_id="u")
        assert (v.searcher.report["reused"], v.searcher.report["embedded"]) == (0, 0)
    with open_(path, True) as v:
        report = v.searcher.report
        assert report["index"].startswith("rebuilt")
        assert (report["reused"], report["embedded"]) == (spoken, third)
        reopened = [(h.item.text, round(h.score, 6))
                    for h in v.search("What does Andrew do to relax?", user_id="u", k=3)]
    with open_(tmp_path / "fresh.db", True) as v:
        v.add_messages(messages(), user_id="u")
        fresh = [(h.item.text, round(h.score, 6))
                 for h in v.search("What does Andrew do to relax?", user_id="u", k=3)]
    assert reopened == fresh
    with open_(path, False) as v:  # and back: every sentence vector is in the snapshot
        assert (v.searcher.report["reused"], v.searcher.report["embedded"]) == (spoken, 0)


def _as_format_2(snapshot: Path) -> None:
    """Rewrite a snapshot as memvault wrote it before it kept the speaker (format 2)."""
    import hashlib
    import json

    meta = json.loads((snapshot / "meta.json").read_text())
    with np.load(snapshot / "rows.npz", allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files if name != "code_speaker"}
    np.savez(snapshot / "rows.npz", **arrays)
    meta["format"] = 2
    del meta["vocab"]["speaker"]
    meta["sha256"]["rows.npz"] = hashlib.sha256((snapshot / "rows.npz").read_bytes()).hexdigest()
    (snapshot / "meta.json").write_text(json.dumps(meta))


def test_an_older_snapshot_gets_its_speakers_from_the_store(tmp_path: Path) -> None:
    """Upgrading must not re-embed a vault: a format-2 snapshot loads, and the speakers it
    lacks are read from the store."""
    from memvault.models import HashEmbedder

    class Counting(HashEmbedder):
        texts = 0

        def embed(self, texts):  # type: ignore[no-untyped-def]
            Counting.texts += len(texts)
            return super().embed(texts)

    settings = Settings(path=tmp_path / "v.db")
    with Vault(settings=settings, embedder=Counting(256)) as v:
        add_chat(v)
    _as_format_2(settings.resolved_index_dir)
    Counting.texts = 0
    with Vault(settings=settings, embedder=Counting(256)) as v:
        assert v.searcher.report["index"] == "loaded snapshot (speakers read from the store)"
        assert Counting.texts == 0  # nothing re-embedded
        hits = v.search("What does Andrew do to relax?", user_id="u", k=6)
    assert any("voice" in h.sources for h in hits)
    with Vault(settings=settings, embedder=Counting(256)) as v:  # saved as format 3 on close
        assert v.searcher.report["index"] == "loaded snapshot"
