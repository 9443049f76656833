"""The in-memory BM25 (storage/_lexicon.py) answers what FTS5 answers, score for score.

Every check opens a second store on the same file with ``memory_bm25=False`` (FTS5
ranks each query, the code path every release before this one used) and compares the
two ``lexical`` answers exactly: same rows, same order, same float scores. The vault is
written through the public API: adds, batch adds, updates (new versions), deletes,
purges, tags, hyphenated words (phrases to FTS5), writers in another store and in a
process killed mid-write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from memvault import Vault
from memvault.retrieval.text import terms
from memvault.storage.base import RowQuery
from memvault.storage.sqlite import SQLiteStore

WORDS = ("tea coffee gluten-free full-time part-time co-workers start-up Lisbon Porto "
         "hiking climbing sister brother piano guitar moved bought visited sold painted "
         "garden river bakery concert museum flight Oslo green jazz bread bike dentist "
         "report quarterly free time start up co workers").split()
USERS = ("u1", "u2", "u3")


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 16)))


def _queries(rng: random.Random, n: int) -> list[list[str]]:
    out = [terms(" ".join(rng.sample(WORDS, rng.randint(1, 7)))) for _ in range(n)]
    return out + [["gluten-free"], ["full-time", "tea"], ["nothingmatches"], ["co-workers"]]


def _row_queries() -> list[RowQuery]:
    return [RowQuery(), RowQuery(scope={"user_id": "u2"}),
            RowQuery(statuses=None, all_versions=True),
            RowQuery(statuses=("deleted",), all_versions=True),
            RowQuery(kinds=["fact"]), RowQuery(tags_any=["work"])]


def assert_same(db: Path, rng: random.Random, *, n: int = 60, fast: Any = None,
                prune: int | None = None) -> int:
    """Every query x row filter x k: memory BM25 == FTS5. Returns how many answers had rows."""
    fts = SQLiteStore(db, memory_bm25=False)
    own = fast is None
    fast = fast or SQLiteStore(db)
    try:
        if prune is not None:
            fts.max_lexical_matches = fast.max_lexical_matches = prune
        nonempty = 0
        for words in _queries(rng, n):
            for rq in _row_queries():
                for k in (1, 5, 40):
                    want = fts.lexical(words, rq, k)
                    got = fast.lexical(words, rq, k)
                    assert got == want, (words, rq, k)
                    nonempty += bool(want)
        return nonempty
    finally:
        fts.close()
        if own:
            fast.close()


def _fill(vault: Vault, rng: random.Random, n: int) -> list[str]:
    ids = [vault.add(_text(rng), user_id=rng.choice(USERS),
                     kind=rng.choice(["fact", "note"]),
                     tags=rng.sample(["work", "gluten-free", "home"], rng.randint(0, 2))).id
           for _ in range(n // 2)]
    ids += [m.id for m in vault.add_many(
        [{"text": _text(rng), "user_id": rng.choice(USERS), "kind": "fact"}
         for _ in range(n - n // 2)], batch_size=50)]
    return ids


def test_same_ranking_as_fts5_through_writes_updates_deletes_and_purges(tmp_path: Path) -> None:
    rng = random.Random(1)
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as vault:
        ids = _fill(vault, rng, 300)
        fast = vault.store  # one long-lived store: it has to follow every write below
        assert assert_same(db, rng, fast=fast) > 100
        for i in rng.sample(ids, 40):
            vault.update(i, _text(rng))
        for i in rng.sample(ids, 20):
            try:
                vault.delete(i)
            except Exception:  # noqa: BLE001 - already deleted above: fine
                pass
        assert assert_same(db, rng, fast=fast) > 100
        for i in rng.sample(ids, 15):  # rows leave the FTS table: counts must follow
            vault.purge(i)
        _fill(vault, rng, 40)
        assert assert_same(db, rng, fast=fast) > 100
        # pruning of common words decided on the same counts
        assert assert_same(db, rng, fast=fast, prune=40) > 100


def test_a_writer_in_another_store_is_seen_and_a_reopen_gives_the_same(tmp_path: Path) -> None:
    rng = random.Random(2)
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as reader:
        _fill(reader, rng, 100)
        before = reader.store.lexical(["lisbon", "tea"], RowQuery(), 10)
        with Vault(db, embedder="hash") as writer:  # its own connections, as another process
            new = writer.add("Lisbon tea Lisbon tea Lisbon", user_id="u1").id
        after = reader.store.lexical(["lisbon", "tea"], RowQuery(), 10)
        assert after != before
        assert after[0][0] == reader.store.select(RowQuery(ids=[new]))[0].seq
        assert_same(db, rng, fast=reader.store)
        hits = [(h.item.id, h.score) for h in reader.search("Lisbon tea", k=10)]
    with Vault(db, embedder="hash") as reopened:
        assert [(h.item.id, h.score) for h in reopened.search("Lisbon tea", k=10)] == hits


def test_vault_search_identical_with_and_without_the_memory_index(tmp_path: Path) -> None:
    rng = random.Random(3)
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as vault:
        _fill(vault, rng, 200)
    questions = [" ".join(rng.sample(WORDS, 4)) for _ in range(30)]
    answers = []
    for memory in (True, False):
        store = SQLiteStore(db, memory_bm25=memory)
        with Vault(db, embedder="hash", store=store) as vault:
            answers.append([[(h.item.id, round(h.score, 12)) for h in
                             vault.search(q, user_id=u, k=8)]
                            for q in questions for u in (None, "u1")])
    assert answers[0] == answers[1]
    assert sum(map(bool, answers[0])) > 40


def test_phrase_words_match_only_adjacent_tokens(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as vault:
        a = vault.add("I eat gluten-free bread", user_id="u1").id
        vault.add("free gluten samples, free for all", user_id="u1")  # both words, no phrase
        b = vault.add("gluten free gluten free", user_id="u1").id
        store = vault.store
        got = [seq for seq, _ in store.lexical(["gluten-free"], RowQuery(), 10)]
        seqs = {r.item.id: r.seq for r in store.select(RowQuery())}
        assert set(got) == {seqs[a], seqs[b]}
        assert got[0] == seqs[b]  # two phrase hits in a short row
    assert_same(db, random.Random(4))


def test_a_process_killed_mid_write_leaves_a_store_the_index_rebuilds_from(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    writer = Path(__file__).parent / "crash_writer.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(writer), str(db), "7"], stdout=subprocess.PIPE,
                            env=env, text=True)
    try:
        acks, deadline = 0, time.monotonic() + 60
        assert proc.stdout is not None
        while acks < 150 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acks += line.startswith("ACK")
        assert acks >= 150, "the writer did not get going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = SQLiteStore(db)
    try:
        rng = random.Random(5)
        fts = SQLiteStore(db, memory_bm25=False)
        try:
            words = ["tea", "lisbon", "jazz", "concert", "alice", "report", "bread", "oslo"]
            for _ in range(40):
                q = rng.sample(words, rng.randint(1, 4))
                for rq in (RowQuery(), RowQuery(scope={"user_id": "u1"})):
                    assert store.lexical(q, rq, 20) == fts.lexical(q, rq, 20)
            assert store.lexical(["tea"], RowQuery(), 20)
        finally:
            fts.close()
    finally:
        store.close()


def test_a_word_without_tokens_is_answered_by_fts5(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as vault:
        vault.add("snake_case and under_score", user_id="u1")
        assert vault.store.lexical(["_"], RowQuery(), 5) == \
            SQLiteStore(db, memory_bm25=False).lexical(["_"], RowQuery(), 5)
        assert vault.store.lexical(["snake_case"], RowQuery(), 5)


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_row_stores(tmp_path: Path, n: int) -> None:
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as vault:
        if n:
            vault.add("tea in Lisbon", user_id="u1")
        got = vault.store.lexical(["tea"], RowQuery(), 5)
        assert len(got) == n
    assert_same(db, random.Random(6), n=5)
