"""MemCube: dump/load round trips, tamper detection, conflicts, compose, migrate, CLI.

Everything runs on real SQLite files, real cube directories and the real CLI (CliRunner);
the hash embedder stands in for a model except in the slow MiniLM migration.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvault import ConfigurationError, Conflict, IntegrityError, InvalidInput, Vault
from memvault.activation.blocks import block_hash
from memvault.cli import cli
from memvault.cube import compose, dump, inspect, load, migrate, verify
from memvault.cube.format import write_manifest
from memvault.cube.merge import derived_id
from memvault.storage.migrate import store_digest
from cube_fixtures import FP, write_block
from pg_fixtures import pg_dsn, pg_server  # noqa: F401  (fixtures)

QUERIES = ["where does alice live", "peanuts allergy", "lighthouse painting", "gardening"]


def _populate(v: Vault) -> dict[str, str]:
    """History, tombstones, archive, links, chat turns (thread links), heat."""
    a = v.add("Alice lives in Paris", user_id="alice", kind="fact", tags=["home"],
              metadata={"n": 1, "deep": {"x": [1, 2.5, None]}}, event_time="2024-05-01")
    time.sleep(0.002)
    v.update(a.id, "Alice lives in Berlin", reason="moved")
    v.update(a.id, metadata={"verified": True})
    b = v.add("Alice is allergic to peanuts", user_id="alice", expires_at="2031-02-03")
    v.delete(b.id, reason="asked")
    v.restore(b.id)
    c = v.add("Café in Zürich serves crème brûlée ☕", user_id="alice")
    v.archive(c.id)
    v.add_messages([{"role": "user", "name": "Mel", "content": "Did you finish the lighthouse painting?"},
                    {"role": "user", "name": "Caro", "content": "Yes! Last weekend."}],
                   user_id="alice", session_id="s1")
    bob = v.add("Bob likes gardening and tomatoes", user_id="bob")
    v.link(a.id, b.id, kind="entity", weight=0.7)
    v.link(a.id, bob.id)  # crosses users: dropped from a scoped cube
    for q in QUERIES:
        v.search(q)
    v.flush()
    return {"a": a.id, "b": b.id, "c": c.id, "bob": bob.id}


def _history(v: Vault) -> list[dict[str, Any]]:
    return [i.to_dict() for i in v.export(history=True)]


def _activation(dirpath: Path) -> tuple[str, str]:
    """One activation block as the ActivationStore writes it (json entry + safetensors);
    its two paths as they appear in a cube."""
    entry, tensors = write_block(dirpath)
    return f"activation/{entry}", f"activation/{tensors}"


#: The paths of _activation's block inside a cube (deterministic: same tokens, same model).
ENTRY = f"activation/{FP.key}/{block_hash(FP, (1, 2, 3), None)}.json"
TENSORS = ENTRY[:-len(".json")] + ".safetensors"


@pytest.fixture
def source(tmp_path: Path) -> tuple[Vault, dict[str, str]]:
    v = Vault(tmp_path / "src.db", embedder="hash")
    ids = _populate(v)
    _activation(tmp_path / "src.db.activation")
    yield v, ids
    v.close()


def test_round_trip_preserves_versions_links_as_of_and_audit(tmp_path: Path, source) -> None:
    v, ids = source
    out = tmp_path / "cube"
    manifest = dump(v, out)
    assert manifest["format_version"] == "1.0" and manifest["embedder"] == {"id": "hash-256",
                                                                             "dim": 256}
    assert {e["path"] for e in manifest["files"]} == {"plaintext.sqlite", TENSORS, ENTRY}
    assert manifest["models"]["activation"] == [FP.to_dict()]
    assert sorted(os.listdir(out)) == ["activation", "manifest.json", "plaintext.sqlite"]
    info = inspect(out)
    assert info["verified"] and info["bytes"]["activation"] > 0
    first = _history(v)[0]["valid_from"]
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        report = load(w, out)
        assert report["new"] == len({h["id"] for h in _history(v)}) and report["files"] == 2
        assert _history(w) == _history(v)  # every version, field for field, heat included
        assert w.get(ids["a"], as_of=first).text == "Alice lives in Paris"
        for q in QUERIES:
            for as_of in (None, first):
                assert [h.item.id for h in w.search(q, as_of=as_of, status="any")] == \
                    [h.item.id for h in v.search(q, as_of=as_of, status="any")]
        assert w.get(ids["a"]).links == v.get(ids["a"]).links
        ours = [(e.action, e.item_id, e.version) for e in v.audit(limit=1000)]
        replayed = [(e.action, e.item_id, e.version) for e in w.audit(limit=1000)
                    if e.action != "cube_load"]
        assert replayed == ours
        assert all(e.details["origin"]["cube"] == manifest["cube_id"]
                   for e in w.audit(limit=1000) if e.action != "cube_load")
        assert w.check()["ok"]
        rel = ENTRY.removeprefix("activation/")
        assert (tmp_path / "dst.db.activation" / rel).read_text() == \
            (tmp_path / "src.db.activation" / rel).read_text()
        again = load(w, out)  # idempotent
        assert again["identical"] == report["new"] and again["versions"] == 0
        assert _history(w) == _history(v)
    v.link(ids["b"], ids["c"], kind="entity")  # a new link between unchanged memories
    dump(v, tmp_path / "cube2")
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        assert load(w, tmp_path / "cube2")["versions"] == 0
        assert w.get(ids["b"]).links == v.get(ids["b"]).links


def test_scoped_dump_keeps_only_that_scope(tmp_path: Path, source) -> None:
    v, ids = source
    manifest = dump(v, tmp_path / "alice", user_id="alice")
    assert manifest["scope"] == {"user_id": "alice"} and manifest["owner"] == "alice"
    assert "activation" not in manifest["models"] or manifest["models"]["activation"] == []
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        load(w, tmp_path / "alice")
        users = {h["user_id"] for h in _history(w)}
        assert users == {"alice"}
        assert [link.target for link in w.get(ids["a"]).links] == [ids["b"]]
        assert all(e.item_id != ids["bob"] for e in w.audit(limit=1000))


def test_dump_from_postgres_and_load_into_sqlite(tmp_path: Path, pg_dsn: str) -> None:  # noqa: F811
    """The cube writer reads through copy_store, so a PostgreSQL vault dumps the same way."""
    with Vault(pg_dsn, embedder="hash") as v:
        ids = _populate(v)
        manifest = dump(v, tmp_path / "cube", user_id="alice")
        expected = [h for h in _history(v) if h["user_id"] == "alice"]
    assert manifest["plaintext"]["items"] == len({h["id"] for h in expected})
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        load(w, tmp_path / "cube")
        unlinked = lambda hs: [{**h, "links": None} for h in hs]  # noqa: E731
        assert unlinked(_history(w)) == unlinked(expected)  # the link to bob stays behind
        assert [link.target for link in w.get(ids["a"]).links] == [ids["b"]]


_OPS = st.lists(st.tuples(st.sampled_from(["add", "update", "delete", "restore", "archive",
                                           "link", "dump"]),
                          st.integers(0, 50), st.sampled_from(["u1", "u2"])),
                min_size=1, max_size=25)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS, scoped=st.booleans())
def test_property_loading_successive_dumps_reproduces_the_scope(tmp_path_factory, ops,
                                                                 scoped: bool) -> None:
    """Any sequence of writes, dumped now and then and loaded each time into one target:
    the target ends up with exactly the source's histories for the scope (fast-forwards)."""
    work = tmp_path_factory.mktemp("prop")
    scope = {"user_id": "u1"} if scoped else {}
    with Vault(work / "src.db", embedder="hash") as v, \
            Vault(work / "dst.db", embedder="hash") as w:
        ids: list[str] = []
        for n, (op, pick, user) in enumerate(ops + [("dump", 0, "u1")]):
            target = ids[pick % len(ids)] if ids else None
            try:
                if op == "add" or target is None:
                    ids.append(v.add(f"memory {n} of {user}", user_id=user).id)
                elif op == "update":
                    v.update(target, f"changed {n}")
                elif op == "link":
                    v.link(target, ids[(pick * 7 + 1) % len(ids)])
                elif op == "dump":
                    out = work / f"cube{n}"
                    dump(v, out, **scope)
                    load(w, out)
                else:
                    getattr(v, op)(target)
            except Conflict:
                pass  # e.g. archiving a deleted memory: refused, nothing changed
        expected = [h for h in _history(v) if not scoped or h["user_id"] == "u1"]
        keep = {h["id"] for h in expected}
        strip = lambda hs: [{**h, "links": sorted(json.dumps(x) for x in h["links"]  # noqa: E731
                                                  if x["target"] in keep),
                             "access_count": None, "last_accessed_at": None} for h in hs]
        assert strip(_history(w)) == strip(expected)
        assert w.check()["ok"]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rel", ["plaintext.sqlite", TENSORS, ENTRY])
def test_a_flipped_byte_in_any_file_is_detected(tmp_path: Path, source, rel: str) -> None:
    v, _ = source
    dump(v, tmp_path / "cube")
    _flip(tmp_path / "cube" / rel)
    with pytest.raises(IntegrityError, match="checksum mismatch: " + rel):
        verify(tmp_path / "cube")
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        w.add("already here")
        before = store_digest(w.store)
        with pytest.raises(IntegrityError):
            load(w, tmp_path / "cube")
        assert store_digest(w.store) == before  # nothing lost, nothing added


def _edit_manifest(cube: Path, change: Any) -> None:
    doc = json.loads((cube / "manifest.json").read_text())
    change(doc)
    (cube / "manifest.json").write_text(json.dumps(doc))


def test_missing_extra_future_and_unsafe_entries_are_refused(tmp_path: Path, source) -> None:
    v, _ = source
    cube = tmp_path / "cube"
    dump(v, cube)
    pristine = (cube / "manifest.json").read_text()

    (cube / ENTRY).rename(tmp_path / "moved.json")
    with pytest.raises(IntegrityError, match="missing.*" + ENTRY):
        verify(cube)
    (tmp_path / "moved.json").rename(cube / ENTRY)

    (cube / "activation" / "stowaway.bin").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="does not list: activation/stowaway.bin"):
        verify(cube)
    (cube / "activation" / "stowaway.bin").unlink()

    os.symlink("/etc/passwd", cube / "activation" / "link")
    with pytest.raises(InvalidInput, match="symlink"):
        verify(cube)
    (cube / "activation" / "link").unlink()
    verify(cube)  # back to intact

    _edit_manifest(cube, lambda d: d.update(format_version="2.0"))
    with pytest.raises(IntegrityError, match="format 2.0.*upgrade memvault"):
        verify(cube)
    _edit_manifest(cube, lambda d: d.update(format_version="1.7"))  # newer minor: readable
    verify(cube)

    for bad in ("../outside.txt", "/etc/passwd", "activation/../../x", "a/./b"):
        (cube / "manifest.json").write_text(pristine)
        _edit_manifest(cube, lambda d: d["files"].append(
            {"path": bad, "sha256": "0" * 64, "size": 1}))
        with pytest.raises(InvalidInput, match="unsafe path|bad path"):
            verify(cube)
    (cube / "manifest.json").write_text("{not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        verify(cube)


def test_a_resealed_but_tampered_plaintext_is_refused(tmp_path: Path, source) -> None:
    """Checksums only prove the files match the manifest; the content is checked too."""
    v, ids = source
    cube = tmp_path / "cube"
    manifest = dump(v, cube)
    conn = sqlite3.connect(cube / "plaintext.sqlite")
    conn.execute("CREATE TRIGGER evil AFTER INSERT ON meta BEGIN DELETE FROM versions; END")
    conn.commit()
    conn.close()
    write_manifest(cube, {k: v for k, v in manifest.items() if k != "files"})
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        with pytest.raises(IntegrityError, match="schema"):
            load(w, cube)
        assert w.count(status="any") == 0
    conn = sqlite3.connect(cube / "plaintext.sqlite")
    conn.execute("DROP TRIGGER evil")
    conn.execute("UPDATE versions SET valid_to = valid_to - 5 WHERE id = ? AND version = 1",
                 (ids["a"],))  # a gap in the history
    conn.commit()
    conn.close()
    write_manifest(cube, {k: v for k, v in manifest.items() if k != "files"})
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        with pytest.raises(IntegrityError, match="inconsistent"):
            load(w, cube)


def test_opaque_file_clash_follows_the_policy(tmp_path: Path, source) -> None:
    v, _ = source
    dump(v, tmp_path / "cube")
    mine = tmp_path / "dst.db.activation" / ENTRY.removeprefix("activation/")
    mine.parent.mkdir(parents=True)
    mine.write_text(json.dumps({**json.loads((tmp_path / "cube" / ENTRY).read_text()),
                                "created_at": "other"}))
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        with pytest.raises(Conflict, match=ENTRY):
            load(w, tmp_path / "cube")
        assert w.count(status="any") == 0  # checked before the plaintext was imported
        assert load(w, tmp_path / "cube", on_conflict="ours")["files"] == 1  # the block only
        assert "other" in mine.read_text()
        assert load(w, tmp_path / "cube", on_conflict="theirs")["files"] == 1
        assert mine.read_bytes() == (tmp_path / "cube" / ENTRY).read_bytes()


def test_load_refuses_another_embedder_and_points_to_migrate(tmp_path: Path, source) -> None:
    v, _ = source
    dump(v, tmp_path / "cube")
    with Vault(tmp_path / "dst.db", embedder="hash-64") as w:
        with pytest.raises(ConfigurationError, match="cube migrate"):
            load(w, tmp_path / "cube")


def test_conflict_policies(tmp_path: Path) -> None:
    with Vault(tmp_path / "a.db", embedder="hash") as a, \
            Vault(tmp_path / "b.db", embedder="hash") as b:
        x = a.add("the meeting is on Monday", user_id="u")
        y = a.add("the budget is 10k", user_id="u")
        dump(a, tmp_path / "c1")
        load(b, tmp_path / "c1")
        a.update(y.id, "the budget is 12k")  # a moves on: b can fast-forward
        a.update(x.id, "the meeting is on Tuesday")
        b.update(x.id, "the meeting is on Wednesday")  # b diverges on x
        dump(a, tmp_path / "c2")
        before = store_digest(b.store)
        with pytest.raises(Conflict, match=x.id):
            load(b, tmp_path / "c2")
        assert store_digest(b.store) == before
        r = load(b, tmp_path / "c2", on_conflict="ours")
        assert (r["ours"], r["fast-forward"]) == (1, 1)
        assert b.get(x.id).text == "the meeting is on Wednesday"
        assert [i.text for i in b.history(y.id)] == [i.text for i in a.history(y.id)]
        r = load(b, tmp_path / "c2", on_conflict="keep-both")
        copy = derived_id(x.id, json.loads((tmp_path / "c2" / "manifest.json").read_text())
                          ["cube_id"])
        assert r["keep-both"] == 1 and b.get(x.id).text == "the meeting is on Wednesday"
        assert [i.text for i in b.history(copy)] == [i.text for i in a.history(x.id)]
        assert (x.id, "diverged_from") in [(link.target, link.kind)
                                           for link in b.get(copy).links]
        again = load(b, tmp_path / "c2", on_conflict="keep-both")
        assert again["identical"] == 2 and again["versions"] == 0  # idempotent
        r = load(b, tmp_path / "c2", on_conflict="theirs")
        assert r["theirs"] == 1
        assert [i.text for i in b.history(x.id)] == [
            "the meeting is on Monday", "the meeting is on Wednesday",
            "the meeting is on Tuesday"]
        assert b.check()["ok"]
        assert b.search("meeting Tuesday", k=1)[0].item.id in (x.id, copy)


def test_theirs_never_moves_a_memory_to_another_scope(tmp_path: Path) -> None:
    with Vault(tmp_path / "a.db", embedder="hash") as a, \
            Vault(tmp_path / "b.db", embedder="hash") as b:
        a.add("alice's secret", user_id="alice", id="same-id")
        b.add("bob's note", user_id="bob", id="same-id")
        dump(a, tmp_path / "c")
        with pytest.raises(Conflict, match="another scope"):
            load(b, tmp_path / "c", on_conflict="theirs")
        assert [i.text for i in b.history("same-id")] == ["bob's note"]
        assert load(b, tmp_path / "c", on_conflict="keep-both")["keep-both"] == 1
        assert b.get("same-id").user_id == "bob"


def test_compose_unions_with_provenance_and_keeps_both_sides_of_a_conflict(
        tmp_path: Path) -> None:
    with Vault(tmp_path / "a.db", embedder="hash") as a, \
            Vault(tmp_path / "b.db", embedder="hash") as b:
        shared = a.add("the office is in Lyon", user_id="team")
        both = a.add("the wifi password is on the fridge", user_id="team")
        ext = a.add("the printer is broken", user_id="team")
        dump(a, tmp_path / "base")
        load(b, tmp_path / "base")
        b.update(ext.id, "the printer is fixed")  # b extends a's history: no conflict
        a.update(shared.id, "the office moved to Nantes")
        time.sleep(0.01)
        b.update(shared.id, "the office moved to Lille")  # b writes later: b wins the id
        only_a = a.add("Ann joined the team", user_id="team")
        only_b = b.add("Ben left the team", user_id="team")
        _activation(tmp_path / "a_act")
        ma = dump(a, tmp_path / "ca", name="cube-a", activation_dir=tmp_path / "a_act")
        mb = dump(b, tmp_path / "cb", name="cube-b")
    m = compose(tmp_path / "ca", tmp_path / "cb", tmp_path / "ab", cube_id="cube-ab")
    loser = derived_id(shared.id, "cube-a")
    assert m["provenance"]["composed_from"] == ["cube-a", "cube-b"]
    assert m["provenance"]["conflicts"] == [{"id": shared.id, "winner": "cube-b",
                                             "kept_as": loser}]
    assert m["plaintext"]["items"] == 6 and m["models"]["activation"] == [FP.to_dict()]
    assert ma["cube_id"] == "cube-a" and mb["cube_id"] == "cube-b"
    verify(tmp_path / "ab")
    with Vault(tmp_path / "dst.db", embedder="hash") as w:
        load(w, tmp_path / "ab")
        assert w.get(shared.id).text == "the office moved to Lille"
        assert [i.text for i in w.history(loser)] == ["the office is in Lyon",
                                                      "the office moved to Nantes"]
        assert (shared.id, "diverged_from") in [(k.target, k.kind) for k in w.get(loser).links]
        assert w.get(only_a.id).provenance["cube"] == "cube-a"
        assert w.get(only_b.id).provenance["cube"] == "cube-b"
        assert {i.provenance["cube"] for i in w.history(shared.id)} == {"cube-b"}
        assert {i.provenance["cube"] for i in w.history(loser)} == {"cube-a"}
        assert len(w.history(both.id)) == 1  # identical on both sides: one copy
        assert [(i.text, i.provenance["cube"]) for i in w.history(ext.id)] == [
            ("the printer is broken", "cube-a"), ("the printer is fixed", "cube-b")]
        assert w.count(status="any") == 6 and w.check()["ok"]


def test_migrate_hash256_to_hash64_keeps_everything(tmp_path: Path, source) -> None:
    v, ids = source
    old = dump(v, tmp_path / "cube")
    new = migrate(tmp_path / "cube", tmp_path / "cube64", "hash-64")
    assert new["embedder"] == {"id": "hash-64", "dim": 64}
    assert new["plaintext"]["counts"] == old["plaintext"]["counts"]
    for table in ("versions", "audit"):
        assert new["plaintext"]["sha256"][table] == old["plaintext"]["sha256"][table]
    assert new["plaintext"]["sha256"]["vectors"] != old["plaintext"]["sha256"]["vectors"]
    assert new["provenance"]["migrated_from"]["embedder"]["id"] == "hash-256"
    verify(tmp_path / "cube")  # the source is untouched
    with Vault(tmp_path / "dst.db", embedder="hash-64") as w:
        load(w, tmp_path / "cube64")
        assert _history(w) == _history(v)
        assert w.search("where does alice live", user_id="alice")[0].item.id == ids["a"]
        assert w.check()["ok"]
    with pytest.raises(Conflict, match="not an empty directory"):
        migrate(tmp_path / "cube", tmp_path / "cube64", "hash-64")


@pytest.mark.slow
def test_migrate_to_minilm(tmp_path: Path, source) -> None:
    v, ids = source
    dump(v, tmp_path / "cube")
    new = migrate(tmp_path / "cube", tmp_path / "mini", "minilm")
    assert new["embedder"]["dim"] == 384
    with Vault(tmp_path / "dst.db", embedder="minilm") as w:
        load(w, tmp_path / "mini")
        assert _history(w) == _history(v)
        # semantic, not lexical: no word of the query is in the memory
        assert w.search("which city is her home", user_id="alice", k=1)[0].item.id == ids["a"]


def test_cli_dump_inspect_corrupt_load_compose_migrate(tmp_path: Path) -> None:
    runner = CliRunner()
    db, dst = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    base = ["--db", db, "--embedder", "hash"]
    assert runner.invoke(cli, [*base, "add", "Alice lives in Paris", "--user", "alice"]
                         ).exit_code == 0
    out = runner.invoke(cli, [*base, "cube", "dump", str(tmp_path / "c"), "--user", "alice",
                              "--name", "alice-cube"])
    assert out.exit_code == 0 and "1 memories" in out.output, out.output
    out = runner.invoke(cli, ["cube", "inspect", str(tmp_path / "c"), "--json"])
    info = json.loads(out.output)
    assert info["verified"] and info["cube_id"] == "alice-cube"
    assert "verified" in runner.invoke(cli, ["cube", "inspect", str(tmp_path / "c")]).output

    _flip(tmp_path / "c" / "plaintext.sqlite")
    out = runner.invoke(cli, ["--db", dst, "--embedder", "hash", "cube", "load",
                              str(tmp_path / "c")])
    assert out.exit_code == 2
    assert "error [integrity_error]: checksum mismatch: plaintext.sqlite" in out.output
    _flip(tmp_path / "c" / "plaintext.sqlite")  # flipped back: intact again
    out = runner.invoke(cli, ["cube", "load", str(tmp_path / "c"), "--db", dst,
                              "--embedder", "hash"])
    assert out.exit_code == 0 and "new 1" in out.output, out.output

    out = runner.invoke(cli, ["cube", "migrate", str(tmp_path / "c"), str(tmp_path / "m"),
                              "--to", "hash-32"])
    assert out.exit_code == 0 and "checksums match" in out.output, out.output
    out = runner.invoke(cli, ["cube", "compose", str(tmp_path / "c"), str(tmp_path / "m"),
                              str(tmp_path / "x")])
    assert out.exit_code == 2 and "migrate one" in out.output
    out = runner.invoke(cli, ["cube", "compose", str(tmp_path / "c"), str(tmp_path / "c"),
                              str(tmp_path / "cc"), "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["plaintext"]["items"] == 1
    out = runner.invoke(cli, ["--db", str(tmp_path / "e.db"), "--embedder", "hash-32",
                              "cube", "load", str(tmp_path / "m"), "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["new"] == 1
    # no embedder named: a new vault takes the cube's, and later commands the vault's
    out = runner.invoke(cli, ["--db", str(tmp_path / "f.db"), "cube", "load",
                              str(tmp_path / "m"), "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["new"] == 1, out.output
    out = runner.invoke(cli, ["--db", str(tmp_path / "f.db"), "--json", "search", "Paris"])
    assert out.exit_code == 0 and "Alice lives in Paris" in out.output, out.output
