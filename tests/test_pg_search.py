"""Vault.search on PostgreSQL runs in the database: no in-memory index, shared by processes.

A real PostgreSQL + pgvector (pg_fixtures.py) and real app processes: the second vault is
a separate Python process on the same database, as a second app host would be.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from memvault import Settings, Vault
from memvault.retrieval.config import SearchConfig
from memvault.storage.sqlite import SQLiteStore

from pg_fixtures import pg_dsn, pg_server  # noqa: F401  (fixtures)

SRC = Path(__file__).resolve().parents[1] / "src"

_PEOPLE = ["Caroline", "Melanie", "Jon", "Gina", "Ivan"]
_THINGS = ["painted a sunset over the lake", "adopted a grey cat", "ran a half marathon",
           "started a pottery class", "bought a red bicycle", "moved to Lisbon",
           "read a book about whales", "planted tomatoes on the balcony"]


def _turns() -> list[dict[str, Any]]:
    out = []
    for i in range(80):
        who = _PEOPLE[i % len(_PEOPLE)]
        what = _THINGS[(i * 3) % len(_THINGS)]
        out.append({"text": f"I {what} last week, number {i}.", "kind": "turn",
                    "user_id": "u", "session_id": f"s{i // 10}",
                    "metadata": {"speaker": who}})
    return out


def _pg_vault(dsn: str, tmp: Path, **search: Any) -> Vault:
    from memvault.storage.postgres import PostgresStore

    s = Settings(path=tmp / "unused.db", embedder="hash", index_dir=tmp / "index",
                 search=SearchConfig(**search))
    return Vault(settings=s, embedder="hash", store=PostgresStore(dsn, pool_size=2))


def _other_process(dsn: str, tmp: Path, script: str) -> dict[str, Any]:
    """Run ``script`` in a new interpreter with ``vault`` open on ``dsn``; its last stdout
    line is JSON."""
    code = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from memvault import Settings, Vault
        from memvault.storage.postgres import PostgresStore
        dsn, tmp = sys.argv[1], Path(sys.argv[2])
        vault = Vault(settings=Settings(path=tmp / "unused.db", embedder="hash",
                                        index_dir=tmp / "index2"),
                      embedder="hash", store=PostgresStore(dsn, pool_size=2))
    """) + textwrap.dedent(script) + "\nvault.close()\n"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code, dsn, str(tmp)], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_searches_first_ones_writes_without_rebuild(
        pg_dsn: str, tmp_path: Path) -> None:  # noqa: F811
    with _pg_vault(pg_dsn, tmp_path) as a:
        a.add_many(_turns(), batch_size=40)
        a.add("Gina keeps bees on the roof of the library", user_id="u")
        seen = _other_process(pg_dsn, tmp_path, """
            hits = vault.search("who keeps bees on a roof", k=3, user_id="u")
            report = dict(vault.searcher.report)
            added = vault.add("Ivan repaired an old sailing boat in the harbour", user_id="u")
            print(json.dumps({"top": hits[0].item.text, "report": report, "id": added.id,
                              "check": vault.check()["index_consistent"]}))
        """)
        assert seen["top"] == "Gina keeps bees on the roof of the library"
        # the second process opened no index: nothing loaded, replayed or rebuilt
        assert seen["report"]["index"] == "in database (pgvector HNSW)"
        assert seen["report"]["replayed"] == 0 and seen["check"] is True
        # and the first one sees the second one's write at once, with no sync step
        hits = a.search("sailing boat repaired in the harbour", k=1, user_id="u")
        assert hits[0].item.id == seen["id"]
        report = a.check()
        assert report["index_consistent"] and report["indexed"] == report["active"] == 82


def test_no_index_is_built_or_snapshotted_on_postgres(pg_dsn: str,  # noqa: F811
                                                      tmp_path: Path) -> None:
    """Behaviour, not internals: with an index directory configured, a PostgreSQL vault
    that wrote, searched and closed leaves no snapshot there (a SQLite vault does), and
    reports its index as the database's."""
    with _pg_vault(pg_dsn, tmp_path) as v:
        v.add_many(_turns(), batch_size=40)
        assert v.search("who adopted a grey cat", k=5, user_id="u")
        assert v.searcher.report["index"] == "in database (pgvector HNSW)"
        assert v.searcher.indexed == 80
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").iterdir())
    s = Settings(path=tmp_path / "v.db", embedder="hash", index_dir=tmp_path / "sq-index")
    with Vault(settings=s, embedder="hash", store=SQLiteStore(tmp_path / "v.db")) as v:
        v.add_many(_turns(), batch_size=40)
        v.search("who adopted a grey cat", k=5, user_id="u")
    assert any((tmp_path / "sq-index").iterdir())  # the faiss path does snapshot


def test_voice_and_time_cues_rank_alike_on_both_backends(pg_dsn: str,  # noqa: F811
                                                         tmp_path: Path) -> None:
    """The pipeline after candidate generation is shared: with one vector per memory on
    both sides (``part_kinds=()``: PostgreSQL stores no sentence vectors), a query naming
    a speaker gets the voice search from the database's speaker names, and the rankings
    match SQLite + faiss."""
    # no stop words: FTS5 indexes them and PostgreSQL's english config drops them, a
    # lexical difference (test_store_conformance.py) this test is not about
    queries = ["Caroline painting sunset", "Jon grey cat", "Gina Lisbon",
               "Melanie tomatoes balcony", "Ivan whales book", "pottery class"]
    results: dict[str, list[list[tuple[str, float, tuple[str, ...]]]]] = {}
    sq = Settings(path=tmp_path / "v.db", embedder="hash", search=SearchConfig(part_kinds=()))
    with Vault(settings=sq, embedder="hash", store=SQLiteStore(tmp_path / "v.db")) as v:
        v.add_many(_turns(), batch_size=40)
        results["sqlite"] = [[(h.item.text, h.score, tuple(sorted(h.sources)))
                              for h in v.search(q, k=10, user_id="u")] for q in queries]
    with _pg_vault(pg_dsn, tmp_path, part_kinds=()) as v:
        v.add_many(_turns(), batch_size=40)
        results["postgres"] = [[(h.item.text, h.score, tuple(sorted(h.sources)))
                                for h in v.search(q, k=10, user_id="u")] for q in queries]
    assert any("voice" in src for hits in results["postgres"] for _, _, src in hits)
    for q, s, p in zip(queries, results["sqlite"], results["postgres"]):
        assert len(s) == len(p) == 10, q
        for i, ((ts, xs, srcs), (tp, xp, srcp)) in enumerate(zip(s, p)):
            assert abs(xs - xp) <= 1e-6 * max(1.0, abs(xs)), (q, i, xs, xp)
            if ts != tp:  # only hits tied to float32 rounding may sort either way
                near = [x for _, x, _ in s if abs(x - xs) <= 1e-6]
                assert len(near) > 1, (q, i, ts, tp)
            else:
                assert srcs == srcp, (q, i)


def test_speaker_names_follow_the_change_feed_and_scope(pg_dsn: str,  # noqa: F811
                                                        tmp_path: Path) -> None:
    with _pg_vault(pg_dsn, tmp_path) as v:
        v.add("I painted a barn", user_id="u1", metadata={"speaker": "Oona"}, kind="turn")
        dense = v.searcher._db
        assert dense.known_speakers() == ["Oona"]
        v.add("I fixed a kite", user_id="u2", metadata={"speaker": " Pele "}, kind="turn")
        assert dense.known_speakers() == ["Oona", "Pele"]
        from memvault.storage.base import RowQuery

        assert dense.speakers_in(["Oona", "Pele"], RowQuery(scope={"user_id": "u2"})) == ["Pele"]
        hits = v.search("What did Oona paint?", k=1, user_id="u1")
        assert "voice" in hits[0].sources


def test_common_terms_are_pruned_alike_on_both_backends(pg_dsn: str,  # noqa: F811
                                                        tmp_path: Path) -> None:
    """A lexical query matching more than ``max_lexical_matches`` rows drops its most
    common terms on PostgreSQL by SQLite's rule, so the two still rank alike."""
    from memvault.retrieval.text import terms
    from memvault.storage.base import RowQuery
    from memvault.storage.postgres import PostgresStore

    records = [{"text": f"note {i}: the {'red' if i % 2 else 'blue'} kite and "
                        f"{'a harbour' if i % 7 == 0 else 'the garden'} of {'Oona' if i % 11 == 0 else 'Pele'}",
                "user_id": "u"} for i in range(120)]
    got: dict[str, list[list[tuple[int, float]]]] = {}
    queries = ["red kite harbour", "blue garden Oona", "kite garden Pele harbour"]
    for name in ("sqlite", "postgres"):
        store: Any = SQLiteStore(tmp_path / "p.db") if name == "sqlite" else \
            PostgresStore(pg_dsn, pool_size=2)
        with Vault(settings=Settings(path=tmp_path / "p.db", embedder="hash"), embedder="hash",
                   store=store) as v:
            v.add_many(records, batch_size=60)
            got[name + "-all"] = [store.lexical(terms(q), RowQuery(), 10) for q in queries]
            store.max_lexical_matches = 30
            got[name] = [store.lexical(terms(q), RowQuery(), 10) for q in queries]
    for q, s, p, full in zip(queries, got["sqlite"], got["postgres"], got["postgres-all"]):
        assert [seq for seq, _ in s] == [seq for seq, _ in p], q
        assert [round(x, 9) for _, x in s] == [round(x, 9) for _, x in p], q
    assert got["postgres"] != got["postgres-all"]  # the limit did prune something
