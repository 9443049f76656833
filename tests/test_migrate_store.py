"""copy_store: SQLite -> PostgreSQL -> SQLite, row for row, verified; real servers only."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from memvault.retrieval.config import SearchConfig
from memvault import Conflict, IntegrityError, Settings, Vault
from memvault.storage.base import RowQuery
from memvault.storage.migrate import copy_store, store_digest
from memvault.storage.sqlite import SQLiteStore
from pg_fixtures import pg_dsn, pg_server  # noqa: F401  (fixtures)

QUERIES = ["Where does Alice live?", "lighthouse painting", "peanuts", "café in Zürich",
           "kayaking trip", "note about gardening"]


def _settings(path: Path) -> Settings:
    # one vector per memory on both backends: PostgreSQL stores no per-sentence vectors of
    # chat turns (SearchConfig.part_kinds) yet, so with them the rankings differ by design
    return Settings(path=path, embedder="hash", search=SearchConfig(part_kinds=()))


def _populate(v: Vault) -> dict[str, str]:
    """A vault with every kind of row: history, tombstones, purges, links, heat, meta."""
    a = v.add("Alice lives in Paris", user_id="alice", kind="fact",
              metadata={"z": 1, "a": {"nested": [1, 2.5, None]}, "flag": True},
              tags=["home", "city"], event_time="2024-05-01T10:00:00Z", importance=0.8)
    time.sleep(0.002)
    v.update(a.id, "Alice lives in Berlin", reason="moved")
    v.update(a.id, metadata={"verified": True})
    b = v.add("Carol is allergic to peanuts", user_id="carol", expires_at="2031-02-03")
    v.delete(b.id, reason="asked")
    v.restore(b.id)
    c = v.add("Café in Zürich serves naïve crème brûlée ☕", user_id="alice")
    v.archive(c.id)
    gone = v.add("secret plan to be purged")
    v.update(gone.id, "secret plan v2")
    v.purge(gone.id, reason="gdpr")
    turns = v.add_messages([
        {"role": "user", "name": "Melanie", "content": "Did you finish the lighthouse painting?"},
        {"role": "user", "name": "Caroline", "content": "Yes! Last weekend, finally."},
        {"role": "user", "name": "Melanie", "content": "We should go on a kayaking trip."},
    ], user_id="u", session_id="s1")
    v.add_many([f"note {i} about gardening and tomatoes" for i in range(40)], user_id="g")
    v.link(a.id, b.id, kind="entity", weight=0.7)
    for q in QUERIES:
        v.search(q)
    v.flush()
    v.store.set_meta("custom", "kept")
    return {"a": a.id, "b": b.id, "c": c.id, "gone": gone.id, "turn": turns[1].id}


def _history(v: Vault) -> list[dict[str, Any]]:
    """Every version with every field (access statistics included); reads record no access."""
    return [i.to_dict() for i in v.export(history=True)]


def _assert_same_view(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal views, search scores to float32 rounding: on PostgreSQL pgvector computes the
    dense cosines in the database, on SQLite faiss does, and they differ by ~1e-7."""
    assert {k: v for k, v in a.items() if k != "search"} == \
        {k: v for k, v in b.items() if k != "search"}
    for hits_a, hits_b in zip(a["search"], b["search"], strict=True):
        assert len(hits_a) == len(hits_b)
        for i, ((ida, va, x), (idb, vb, y)) in enumerate(zip(hits_a, hits_b)):
            assert abs(x - y) <= 1e-6 * max(1.0, abs(x)), (x, y)
            if (ida, va) != (idb, vb):  # only hits tied in score may sort either way
                tied = [h for h in hits_a if abs(h[2] - x) <= 1e-6 * max(1.0, abs(x))]
                assert len(tied) > 1 and (idb, vb) in {h[:2] for h in tied}, (i, hits_a, hits_b)


def _snapshot(v: Vault) -> dict[str, Any]:
    """What a user sees; the history first, since the searches that follow add heat."""
    return {
        "history": _history(v),
        "audit": [e.to_dict() for e in v.audit(limit=1000)],
        "search": [[(h.item.id, h.item.version, round(h.score, 9)) for h in v.search(q, k=8)]
                   for q in QUERIES],
        "scoped": [[h.item.id for h in v.search(q, k=5, user_id="alice", status="any")]
                   for q in QUERIES],
        "meta": v.store.meta(),
    }


def test_sqlite_to_postgres_and_back(tmp_path: Path, pg_dsn: str) -> None:  # noqa: F811
    from memvault.storage.postgres import PostgresStore

    src_path = tmp_path / "src.db"
    with Vault(settings=_settings(src_path), embedder="hash") as v:
        ids = _populate(v)
    # Rebuild the source's vector index from the store, in seq order, as the destinations
    # will: the dense ranking of exactly tied scores follows index insertion order.
    shutil.rmtree(src_path.with_name(src_path.name + ".index"))
    with Vault(settings=_settings(src_path), embedder="hash") as v:
        before = _snapshot(v)
    with Vault(settings=_settings(src_path), embedder="hash") as v:  # the searches above
        before["history"] = _history(v)                               # changed access counts
    src = SQLiteStore(src_path)
    pg = PostgresStore(pg_dsn, pool_size=2)
    seen: dict[str, int] = {}
    report = copy_store(src, pg, progress=lambda t, n: seen.__setitem__(t, seen.get(t, 0) + n))
    src.close()
    assert report["ok"] and report["source"] == "sqlite" and report["destination"] == "postgres"
    assert seen == {t: n for t, n in report["counts"].items() if n}
    assert report["counts"]["versions"] == len(before["history"])
    assert report["counts"]["links"] >= 3 and report["counts"]["access"] > 0
    assert store_digest(pg)["sha256"] == report["sha256"]

    with Vault(settings=_settings(tmp_path / "unused.db"), embedder="hash", store=pg) as v:
        after_pg = _snapshot(v)
        _assert_same_view(after_pg, before)
        assert v.check()["ok"]
        assert v.get(ids["a"], as_of=v.history(ids["a"])[0].valid_from).text == \
            "Alice lives in Paris"
        new = v.add("written after the move")  # sequences continue past the copied rows
        assert v.audit(item_id=new.id)[0].seq > max(e["seq"] for e in before["audit"])
        assert v.search("written after the move")[0].item.id == new.id
        v.purge(new.id)
        after_pg = _snapshot(v)  # what the copy back must reproduce
    with Vault(settings=_settings(tmp_path / "unused.db"), embedder="hash",
               store=PostgresStore(pg_dsn, pool_size=1)) as v:
        after_pg["history"] = _history(v)

    back_path = tmp_path / "back.db"
    pg2 = PostgresStore(pg_dsn, pool_size=2)
    dst = SQLiteStore(back_path)
    report2 = copy_store(pg2, dst)
    dst.close()
    pg2.close()
    assert report2["ok"] and report2["destination"] == "sqlite"
    assert report2["sha256"]["versions"] == report["sha256"]["versions"]
    with Vault(settings=_settings(back_path), embedder="hash") as v:
        assert v.check()["ok"]
        _assert_same_view(_snapshot(v), after_pg)
        assert v.searcher.report["index"] == "built from store"


def test_destination_must_be_empty(tmp_path: Path, pg_dsn: str) -> None:  # noqa: F811
    from memvault.storage.postgres import PostgresStore

    with Vault(settings=_settings(tmp_path / "a.db"), embedder="hash") as v:
        v.add("one memory")
    with Vault(settings=_settings(tmp_path / "b.db"), embedder="hash") as v:
        v.add("another memory")
    a, b = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db")
    pg = PostgresStore(pg_dsn, pool_size=1)
    try:
        copy_store(a, pg)
        digest = store_digest(pg)
        with pytest.raises(Conflict):
            copy_store(b, pg)  # not empty any more: refused, nothing written
        assert store_digest(pg) == digest
        with pytest.raises(Conflict):
            copy_store(pg, b)
        assert b.count(RowQuery()) == 1
    finally:
        for s in (a, b, pg):
            s.close()


def test_verification_catches_a_lost_row(tmp_path: Path, pg_dsn: str,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from memvault.storage.postgres import PostgresStore

    with Vault(settings=_settings(tmp_path / "a.db"), embedder="hash") as v:
        v.add_many([f"memory {i}" for i in range(5)])
    pg = PostgresStore(pg_dsn, pool_size=1)
    real = pg.import_raw

    def lossy(chunks):  # a destination that silently drops the last audit row
        return real((t, rows[:-1] if t == "audit" else rows) for t, rows in chunks)

    monkeypatch.setattr(pg, "import_raw", lossy)
    src = SQLiteStore(tmp_path / "a.db")
    try:
        with pytest.raises(IntegrityError) as err:
            copy_store(src, pg)
        assert "audit" in str(err.value)
    finally:
        src.close()
        pg.close()


def test_migrate_store_command_and_dsn_vault(tmp_path: Path, pg_dsn: str) -> None:  # noqa: F811
    """The CLI face: SQLite -> PostgreSQL -> SQLite, then a Vault opened by DSN."""
    from click.testing import CliRunner

    from memvault.cli import cli

    src = tmp_path / "a.db"
    with Vault(src, embedder="hash") as v:
        item = v.add("Alice lives in Paris", user_id="alice")
        v.update(item.id, "Alice lives in Berlin")
    runner = CliRunner()
    out = runner.invoke(cli, ["migrate-store", str(src), pg_dsn, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["counts"]["versions"] == 2
    back = tmp_path / "b.db"
    out = runner.invoke(cli, ["migrate-store", pg_dsn, str(back)])
    assert out.exit_code == 0 and "checksums match" in out.output
    with Vault(back, embedder="hash") as v:
        assert [i.text for i in v.history(item.id)] == ["Alice lives in Paris",
                                                        "Alice lives in Berlin"]
    with Vault(pg_dsn, embedder="hash") as v:
        assert v.search("where does alice live", user_id="alice")[0].item.id == item.id
    out = runner.invoke(cli, ["migrate-store", str(src), pg_dsn])  # not empty any more
    assert out.exit_code == 2 and "error [" in out.output
