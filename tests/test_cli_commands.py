"""What a new user hits on the command line, each run as they would run it: a fresh
``python -m memvault`` process, real files, a real server, a real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import memvault
from memvault import InvalidInput, Vault
from memvault.retrieval.context import part_texts
from memvault.types import MemoryItem, Page

SRC = str(Path(memvault.__file__).parents[1])
README = Path(memvault.__file__).parents[2] / "README.md"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


def mv(*args: str, code: int | None = 0, input: str | bytes | None = None,
       env: dict[str, str] | None = None, cwd: Path | None = None
       ) -> subprocess.CompletedProcess[str]:
    """``python -m memvault ARGS`` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-m", "memvault", *args], capture_output=True,
                          text=not isinstance(input, bytes), input=input,
                          env=env or _env(), cwd=cwd, timeout=300)
    if isinstance(input, bytes):  # decode for the assertions
        proc = subprocess.CompletedProcess(proc.args, proc.returncode,
                                           proc.stdout.decode(), proc.stderr.decode())
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def one_error_line(proc: subprocess.CompletedProcess[str], code: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error [{code}]: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- (a) the demo and the quick start say how to run memvault from the venv -------------
def test_the_demo_ends_with_how_to_run_memvault_from_its_venv(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "memvault").exists():
        pytest.skip("no console script beside this interpreter")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if Path(p).resolve() != bin_dir.resolve())  # a new shell's PATH
    out = mv("demo", "--embedder", "hash", env=_env(PATH=path), cwd=tmp_path).stdout
    tail = out.strip().splitlines()[-3:]
    assert "PATH does not include" in tail[0]
    assert f"source {bin_dir}/activate" in tail[1]
    assert f"{bin_dir}/memvault add" in tail[2]
    # with the venv on PATH (activated), plain `memvault` is what to type
    out = mv("demo", "--embedder", "hash", env=_env(PATH=f"{bin_dir}{os.pathsep}{path}"),
             cwd=tmp_path).stdout
    assert out.strip().splitlines()[-1].startswith('Your turn: memvault add "..."')


def _block(after: str, lang: str) -> str:
    """The first ```lang block after the heading or text ``after`` in the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index(after)
    match = re.search(rf"```{lang}\n(.*?)```", text[start:], re.S)
    assert match, f"no {lang} block after {after!r}"
    return match.group(1)


def test_the_quick_start_works_pasted_into_a_new_shell(tmp_path: Path) -> None:
    """Every line of the quick start but `make`, in one new bash with a minimal PATH, run
    against this checkout's venv: memvault and the venv's python are found."""
    venv = Path(sys.executable).parent.parent
    if not (venv / "bin" / "activate").exists():
        pytest.skip("not running from a virtualenv")
    lines = [line.split("  #")[0].strip() for line in _block("## Quick start", "bash")
             .splitlines() if line.strip() and not line.startswith("make ")]
    assert any(line.startswith("source .venv/bin/activate") for line in lines)
    assert lines.index(next(l for l in lines if l.startswith("source"))) == 0  # first
    (tmp_path / ".venv").symlink_to(venv)  # the checkout's .venv, as `make` makes it
    script = "set -e\n" + "\n".join(lines) + "\n"
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": SRC, "MEMVAULT_EMBEDDER": "hash"})
    assert proc.returncode == 0, proc.stderr
    assert "Alice lives in Paris" in proc.stdout and "memvault.vault.Vault" in proc.stdout


# -- (b) export -> import round trip -------------------------------------------------------
def _history_export(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    src = tmp_path / "src.db"
    with Vault(src, embedder="hash") as v:
        a = v.add("Alice lives in Paris", user_id="alice", kind="fact", tags=["home"],
                  metadata={"floor": 3})
        v.update(a.id, "Alice lives in Berlin")
        b = v.add("Bob likes tea", user_id="bob")
        v.delete(b.id)
        turns = v.add_messages([{"role": "user", "name": "Maya", "content": "I adopted a "
                                 "dog. His name is Rex."},
                                {"role": "assistant", "content": "What breed is he?"}],
                               user_id="maya", session_id="s1")
        v.link(a.id, b.id, kind="related", weight=0.5)
        v.search("dog")  # access counts
        v.flush()
    dump = tmp_path / "dump.jsonl"
    mv("--db", str(src), "export", "--history", str(dump))
    return dump, {"a": a.id, "b": b.id, "turns": [t.id for t in turns]}


def _canonical(path: Path) -> list[str]:
    return [json.dumps(json.loads(line), sort_keys=True) for line in path.read_text().splitlines()]


def test_export_history_imports_back_exactly(tmp_path: Path) -> None:
    dump, ids = _history_export(tmp_path)
    dst = tmp_path / "dst.db"
    doc = json.loads(mv("--db", str(dst), "--embedder", "hash", "import", str(dump),
                        "--json").stdout)
    assert doc["format"] == "export" and doc["imported"] == 4 and doc["versions"] == 6
    again = tmp_path / "again.jsonl"
    mv("--db", str(dst), "export", "--history", str(again))
    assert _canonical(again) == _canonical(dump)  # every field: validity, status, links, heat
    history = json.loads(mv("--db", str(dst), "history", ids["a"], "--json").stdout)
    assert [(v["version"], v["status"], v["valid_to"] is None) for v in history["versions"]] \
        == [(1, "active", False), (2, "active", True)]
    assert mv("--db", str(dst), "search", "Rex").stdout.count("Rex") == 1  # indexed
    # the same file again: every history identical, nothing written
    doc = json.loads(mv("--db", str(dst), "import", str(dump), "--json").stdout)
    assert doc["identical"] == 4 and doc["versions"] == 0
    # the current-only export too, into a new vault: version numbers kept
    current = tmp_path / "current.jsonl"
    mv("--db", str(tmp_path / "src.db"), "export", str(current))
    mv("--db", str(tmp_path / "cur.db"), "--embedder", "hash", "import", str(current))
    got = json.loads(mv("--db", str(tmp_path / "cur.db"), "get", ids["a"], "--json").stdout)
    assert (got["version"], got["text"]) == (2, "Alice lives in Berlin")


def test_import_into_a_live_vault_refuses_a_diverged_history_unless_told(tmp_path: Path) -> None:
    dump, ids = _history_export(tmp_path)
    live = tmp_path / "src.db"
    mv("--db", str(live), "update", ids["a"], "Alice lives in Rome")
    doc = json.loads(mv("--db", str(live), "import", str(dump), "--json").stdout)
    assert doc["target-newer"] == 1 and doc["identical"] == 3 and doc["versions"] == 0
    # a file whose v2 of the same memory says something else: the histories diverge
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    for row in rows:
        if row["id"] == ids["a"] and row["version"] == 2:
            row["text"] = "Alice lives in Madrid"
    diverged = tmp_path / "diverged.jsonl"
    diverged.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = _canonical_export(live, tmp_path)
    failed = mv("--db", str(live), "import", str(diverged), code=2)
    assert "different history" in one_error_line(failed, "conflict")
    assert _canonical_export(live, tmp_path) == before  # nothing written
    doc = json.loads(mv("--db", str(live), "import", str(diverged), "--on-conflict",
                        "keep-both", "--json").stdout)
    assert doc["keep-both"] == 1 and doc["identical"] == 3
    kept = json.loads(mv("--db", str(live), "list", "--user", "alice", "--json").stdout)
    assert sorted(i["text"] for i in kept["items"]) == ["Alice lives in Madrid",
                                                       "Alice lives in Rome"]


def _canonical_export(db: Path, tmp_path: Path) -> list[str]:
    out = tmp_path / f"check-{time.monotonic_ns()}.jsonl"
    mv("--db", str(db), "export", "--history", str(out))
    return _canonical(out)


@pytest.mark.parametrize("bad, message", [
    ('{"id": "x1", "text": "t", "version": 1}', "missing ['created_at', 'valid_from', 'status']"),
    ("{}", "line 2: not an export record"),
])
def test_a_failed_import_creates_nothing(tmp_path: Path, bad: str, message: str) -> None:
    dump, _ = _history_export(tmp_path)
    lines = dump.read_text().splitlines()
    broken = tmp_path / "in" / "broken.jsonl"
    broken.parent.mkdir()
    broken.write_text("\n".join([lines[0], bad, *lines[1:]]) + "\n")
    target = tmp_path / "in" / "new.db"
    err = one_error_line(mv("--db", str(target), "import", str(broken), code=2),
                         "invalid_input")
    assert message in err
    assert listing(broken.parent) == ["broken.jsonl"]  # no db, no lock files, no index
    # a failure after the vault was opened (an id clash inside the file) is undone too
    clash = tmp_path / "in" / "clash.jsonl"
    clash.write_text(lines[0] + "\n" + lines[0] + "\n")
    one_error_line(mv("--db", str(target), "import", str(clash), code=2), "invalid_input")
    assert listing(broken.parent) == ["broken.jsonl", "clash.jsonl"]


# -- (c) the chat import's bar and rate cover the index work ------------------------------
def test_chat_import_counts_the_index_work_in_its_time(tmp_path: Path) -> None:
    messages = [{"role": "user", "name": "Maya", "content": f"I went to place {i}. I liked it "
                 f"a lot. Then I went home."} for i in range(10)]
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps(messages))
    db = tmp_path / "v.db"
    doc = json.loads(mv("--db", str(db), "--embedder", "hash", "import", str(chat),
                        "--batch-size", "4", "--json").stdout)
    expected = sum(len(part_texts(MemoryItem(id="t", text=m["content"], kind="turn",
                                             metadata={"speaker": "Maya"}), "speaker",
                                  third=True)) for m in messages)
    # the sentence vectors were embedded before the command reported its time and rate
    assert doc["imported"] == 10 and doc["indexed"] == 10
    assert doc["sentence_vectors"] == expected > 10
    assert doc["per_second"] == pytest.approx(10 / doc["seconds"], rel=0.01)
    with Vault(db) as vault:  # nothing left for the next open to embed
        assert vault.searcher.sentence_vectors == {"reused": 0, "embedded": 0}
        assert vault.searcher.report["index"] == "loaded snapshot"


def test_the_import_bar_moves_batch_by_batch_to_the_end(tmp_path: Path) -> None:
    """On a terminal (a pty with a window size, for stderr) the bar counts each stored and
    indexed batch, up to the end."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps([{"role": "user", "content": f"turn {i}. More text."}
                                for i in range(9)]))
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "memvault", "--db", str(tmp_path / "v.db"),
                             "--embedder", "hash", "import", str(chat), "--batch-size", "3"],
                            stdout=subprocess.PIPE, stderr=secondary, env=_env())
    os.close(secondary)
    seen = b""
    try:
        while select.select([main], [], [], 60)[0]:
            try:
                data = os.read(main, 4096)
            except OSError:  # EIO: the process closed its end
                break
            if not data:
                break
            seen += data
    finally:
        os.close(main)
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0 and "imported 9 memories (chat)" in out
    frames = re.findall(r"(\d+)/9", seen.decode(errors="replace"))
    assert frames[-1] == "9" and {"0", "3", "6"} <= set(frames), frames


# -- (d) keys create: the key alone on stdout; a malformed key is not echoed ----------------
def test_keys_create_prints_the_key_alone_and_the_client_hides_a_bad_one(tmp_path: Path) -> None:
    db = str(tmp_path / "v.db")
    made = mv("--db", db, "keys", "create", "app", "--user", "alice")
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and re.fullmatch(r"mv_[0-9a-f]{12}_[\w-]{43}", token)
    assert "not shown again" in made.stderr and token not in made.stderr
    two_lines = token + "\n(key ... for app, user alice; store it now)"
    for bad in (two_lines, token + " ", "mv_é"):
        with pytest.raises(InvalidInput) as err:
            memvault.connect("http://127.0.0.1:9", bad)
        assert "malformed" in err.value.message and token not in str(err.value)
        assert "mv_" not in str(err.value)


# -- (e) the README's remote snippet runs as written ----------------------------------------
def test_the_readme_remote_snippet_is_self_contained(tmp_path: Path) -> None:
    shell = _block("## Server and remote client", "bash")
    assert "export MEMVAULT_API_KEY=$(memvault --db memory.db keys create" in shell
    code = _block("for on stderr, so `$(...)` captures exactly the key", "python")
    db = tmp_path / "memory.db"
    key = mv("--db", str(db), "keys", "create", "alice-app", "--user", "alice").stdout.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "memvault", "--db", str(db), "--embedder",
                               "hash", "serve", "--port", str(port), "--log-level", "warning"],
                              env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.2)
        proc = subprocess.run([sys.executable, "-c", code.replace("8765", str(port))],
                              env=_env(MEMVAULT_API_KEY=key), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "Alice lives in Berlin" in proc.stdout
    finally:
        server.terminate()
        server.wait(60)


# -- (f) a read never creates a vault ------------------------------------------------------
@pytest.mark.parametrize("args", [["search", "alice"], ["get", "0190aaaa-0000-7000-8000-0000"
                                                                  "00000000"],
                                  ["list"], ["history", "x1"], ["export"], ["audit"],
                                  ["check"], ["quarantine", "list"], ["forget", "--dry-run"],
                                  ["grants"]])
def test_a_read_of_a_missing_vault_is_refused_and_creates_nothing(tmp_path: Path,
                                                                  args: list[str]) -> None:
    err = one_error_line(mv("--db", str(tmp_path / "memroy.db"), *args, code=2), "not_found")
    assert "no vault at" in err and "memroy.db" in err
    assert listing(tmp_path) == []


def test_only_writes_and_init_create_a_vault(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    made = json.loads(mv("--db", str(db), "--embedder", "hash", "init", "--json").stdout)
    assert made["created"] is True and made["embedder"] == "hash-256" and db.exists()
    assert json.loads(mv("--db", str(db), "init", "--json").stdout)["created"] is False
    assert "no memories" in mv("--db", str(db), "list").stdout


# -- (g) history says "superseded" -----------------------------------------------------------
def test_history_shows_a_replaced_version_as_superseded(tmp_path: Path) -> None:
    db = str(tmp_path / "v.db")
    item = mv("--db", db, "--embedder", "hash", "add", "Maya lives in Lisbon").stdout.strip()
    mv("--db", db, "update", item, "Maya lives in Porto")
    mv("--db", db, "delete", item)
    rows = mv("--db", db, "history", item).stdout.splitlines()
    assert rows[0].split()[:2] == ["V", "STATUS"]
    assert [r.split()[1] for r in rows[1:]] == ["superseded", "superseded", "deleted"]
    doc = json.loads(mv("--db", db, "history", item, "--json").stdout)
    assert [(v["status"], v["valid_to"] is None) for v in doc["versions"]] == \
        [("active", False), ("active", False), ("deleted", True)]  # the stored truth


# -- (h) tables wrap, are whole when piped, and --json is everywhere -------------------------
LONG = ("Maya said that her neighbour's dog, a very patient old greyhound called Biscuit, "
        "waits at the gate every morning for the postman and then follows him up the street")


def test_tables_show_the_whole_text(tmp_path: Path) -> None:
    db = str(tmp_path / "v.db")
    mv("--db", db, "--embedder", "hash", "add", LONG, "--user", "maya")
    piped = mv("--db", db, "list").stdout.splitlines()  # not a terminal: one line per row
    assert piped[1].endswith(LONG)
    narrow = mv("--db", db, "list", env=_env(COLUMNS="80")).stdout.splitlines()
    assert all(len(line) <= 80 for line in narrow)
    assert " ".join(" ".join(line.split()) for line in narrow[2:-1]) == LONG  # under the row
    for args in (["list"], ["search", "greyhound"], ["audit"], ["quarantine", "list"],
                 ["keys", "list"], ["grants"], ["history", piped[1].split()[0]]):
        doc = json.loads(mv("--db", db, *args, "--json").stdout)
        assert isinstance(doc, dict), args


# -- (i) serve on a busy port ------------------------------------------------------------------
def test_serve_on_a_busy_port_is_one_line_and_never_announced(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = mv("--db", str(tmp_path / "v.db"), "serve", "--port", str(port), code=2)
    err = one_error_line(proc, "configuration_error")
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in err
    assert "serving" not in proc.stderr
    assert listing(tmp_path) == []  # the vault was not opened


# -- (j) help that tells the truth; Page iterates --------------------------------------------
def test_chat_help_names_its_real_default_model() -> None:
    text = " ".join(mv("chat", "--help").stdout.split())
    assert "else local" in text and "SmolLM2" in text and "rules" not in text
    ingest = " ".join(mv("ingest", "--help").stdout.split())
    assert "else none (rule" in ingest  # the reader falls back to rules: true there


def test_a_page_iterates_over_its_items(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        made = [vault.add(f"memory {i}").id for i in range(3)]
        page = vault.list(limit=2)
        assert isinstance(page, Page) and [i.id for i in page] == [i.id for i in page.items]
        assert len(list(page)) == 2 and set(i.id for i in page) <= set(made)


# -- (k) invalid UTF-8 -----------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["import", "ingest"])
def test_invalid_utf8_names_the_line_and_imports_nothing(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "in.json"
    if command == "import":
        bad.write_bytes(b'{"text": "fine"}\n{"text": "also fine"}\n{"text": "caf\xe9"}\n')
        line = 3
    else:
        bad.write_bytes(b'[{"role": "user", "content": "hi"},\n'
                        b' {"role": "user", "content": "caf\xe9"}]\n')
        line = 2
    db = tmp_path / "v.db"
    err = one_error_line(mv("--db", str(db), command, str(bad), code=2), "invalid_input")
    assert f"line {line}: not valid UTF-8 (byte 0xe9" in err
    assert listing(tmp_path) == ["in.json"]
    mv("--db", str(db), "--embedder", "hash", "add", "already here")  # a live vault: untouched
    one_error_line(mv("--db", str(db), command, str(bad), code=2), "invalid_input")
    assert json.loads(mv("--db", str(db), "list", "--json").stdout)["total"] == 1
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in one_error_line(mv("--db", str(db), command, str(deep),
                                                    code=2), "invalid_input")


# -- (l) a local PostgreSQL for users ---------------------------------------------------------------
def test_postgres_start_status_stop(tmp_path: Path) -> None:
    try:
        from memvault.storage.pgserver import find_pg_bin

        find_pg_bin()
    except Exception as exc:  # noqa: BLE001 - the reason goes into the skip message
        pytest.skip(f"no PostgreSQL binaries: {exc}")
    base = Path(tempfile.mkdtemp(prefix="memvault-pgcli-", dir="/tmp"))  # reachable as root
    base.chmod(0o755)
    where = ["--dir", str(base / "pg")]
    try:
        stopped = mv("postgres", "status", *where, code=1)
        assert "not created yet" in stopped.stdout
        started = json.loads(mv("postgres", "start", *where, "--json").stdout)
        assert started["running"] and started["data_dir"] == str(base / "pg" / "data")
        dsn = mv("postgres", "status", *where, "--dsn").stdout.strip()
        assert dsn == started["dsn"] and dsn.endswith(f":{started['port']}/memvault")
        item = mv("--db", dsn, "--embedder", "hash", "add", "kept in postgres").stdout.strip()
        assert "kept in postgres" in mv("--db", dsn, "search", "postgres").stdout
        assert "stopped" in mv("postgres", "stop", *where).stdout
        assert "stopped" in mv("postgres", "status", *where, code=1).stdout
        mv("postgres", "start", *where)  # again: same data, port and password
        assert "kept in postgres" in mv("--db", dsn, "get", item).stdout
    finally:
        subprocess.run([sys.executable, "-m", "memvault", "postgres", "stop", *where],
                       env=_env(), capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
