"""Working memory (issue 27): the task tree, file store and instruction stack through the
Python API on a real SQLite vault, isolation between principals (ScopedVault and over
real HTTP), search leaving working kinds out, and the ``task``/``file`` CLI in a
subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from memvault import Vault
from memvault.errors import Conflict, InvalidInput, MemvaultError, NotFound
from memvault.governance import KeyStore, ScopedVault
from memvault.scheduler.forget import ForgetPolicy
from memvault.server.app import create_app
from memvault.server.serve import BackgroundServer
from memvault.working import BudgetExceeded, Workspace, count_tokens


@pytest.fixture
def ws(vault: Vault) -> Workspace:
    return Workspace(vault, "proj", user_id="alice")


# -- tasks ---------------------------------------------------------------------------------
def test_task_tree_next_and_path(ws: Workspace) -> None:
    t = ws.tasks
    t.add("Build the package", key="root")
    t.add("Write models", parent="root", key="models")
    t.add("Write the API", parent="root", key="api", deps=["models"])
    t.add("Write tests", parent="root", key="tests", deps=["api"])
    assert [x.key for x in t.next()] == ["models"]  # root waits for its subtasks
    t.start("models")
    t.add("User class", parent="models", key="user")
    assert [x.key for x in t.next()] == ["user"]  # models has an open subtask now
    with pytest.raises(Conflict):
        t.complete("models")
    t.complete("user", result="class User(name)")
    assert [x.key for x in t.next()] == ["models"]
    t.complete("models", result="models.py: User")
    assert [x.key for x in t.next()] == ["api"]
    assert [x.key for x in t.path("api")] == ["root", "api"]
    text = t.context("api", budget_tokens=200)
    assert "root: Build the package" in text and "> [todo] api" in text
    assert "models gave: models.py: User" in text
    assert [(x.key, x.depth) for x in t.tree()] == [
        ("root", 0), ("models", 1), ("user", 2), ("api", 1), ("tests", 1)]


def test_task_path_keeps_the_task_within_a_small_budget(ws: Workspace) -> None:
    parent = None
    for i in range(30):
        parent = ws.tasks.add(f"Level {i} of a deep plan with a long title", parent=parent,
                              key=f"l{i}").key
    text = ws.tasks.context("l29", budget_tokens=60)
    assert count_tokens(text) <= 60
    assert text.startswith("...") and "l29: Level 29" in text and "l28" in text
    assert "l0:" not in text  # the root was dropped first


def test_task_writes_are_idempotent_and_versioned(ws: Workspace, vault: Vault) -> None:
    a = ws.tasks.add("Write models", key="models")
    assert ws.tasks.add("Write models", key="models") == a  # a replayed step
    with pytest.raises(Conflict):
        ws.tasks.add("Something else", key="models")
    ws.tasks.start("models")
    ws.tasks.start("models")  # no change: no new version
    ws.tasks.complete("models", result="done it")
    assert [v.status for v in ws.tasks.history("models")] == ["todo", "doing", "done"]
    first = ws.tasks.history("models")[0]
    assert ws.tasks.get("models", known_at=first.updated_at).status == "todo"


def test_task_bad_input_is_refused_and_changes_nothing(ws: Workspace) -> None:
    ws.tasks.add("A", key="a")
    ws.tasks.add("B", key="b", deps=["a"])
    with pytest.raises(Conflict):  # a -> b -> a
        ws.tasks.update("a", deps=["b"])
    with pytest.raises(Conflict):
        ws.tasks.move("a", "a")
    for bad in (lambda: ws.tasks.add("x\ny"), lambda: ws.tasks.add("x", key="no spaces"),
                lambda: ws.tasks.add("x", parent="nope"), lambda: ws.tasks.update(
                    "a", status="maybe"), lambda: ws.tasks.add("x", deps="a"),
                lambda: ws.tasks.context("a", budget_tokens=10**9)):
        with pytest.raises((InvalidInput, NotFound)):
            bad()
    assert [x.key for x in ws.tasks.tree()] == ["a", "b"]
    assert ws.tasks.get("a").deps == ()
    ws.tasks.add("C", key="c")
    ws.tasks.move("c", "b")
    assert ws.tasks.path("c")[0].key == "b"


# -- files ---------------------------------------------------------------------------------
def test_file_ranges_history_diff_and_as_of(ws: Workspace) -> None:
    f = ws.files
    f.write("pkg/a.py", "x = 1\ny = 2\nz = 3\n")
    before = time.time()
    time.sleep(0.01)
    f.write("pkg/a.py", "Y = 20", start=2, end=2)  # replace one line
    f.write("pkg/a.py", "w = 4", start=4)  # append
    f.write("pkg/a.py", "# head", start=1)  # insert before line 1
    assert f.read("pkg/a.py").content == "# head\nx = 1\nY = 20\nz = 3\nw = 4\n"
    view = f.read("pkg/a.py", start=2, end=3)
    assert (view.content, view.lines, view.version) == ("x = 1\nY = 20\n", 5, 4)
    assert f.write("pkg/a.py", "# head", start=1, end=1).version == 4  # same: no version
    assert [v.version for v in f.history("pkg/a.py")] == [1, 2, 3, 4]
    assert "-y = 2\n+Y = 20" in f.diff("pkg/a.py", 1, 2)
    assert f.read("pkg/a.py", known_at=before).content == "x = 1\ny = 2\nz = 3\n"
    f.write("pkg/b.py", "b\n")
    f.write("docs/readme.md", "hi\n")
    assert [i.path for i in f.list("pkg/")] == ["pkg/a.py", "pkg/b.py"]
    assert f.delete("pkg/b.py") and not f.delete("pkg/b.py")
    with pytest.raises(NotFound):
        f.read("pkg/b.py")
    f.write("pkg/b.py", "again\n")  # a deleted file comes back, its past kept
    assert len(f.history("pkg/b.py")) == 4  # write, delete, restore, write
    for bad in (lambda: f.write("../etc/passwd", "x"), lambda: f.write("/abs", "x"),
                lambda: f.write("a//b", "x"), lambda: f.read("pkg/a.py", start=0),
                lambda: f.write("pkg/a.py", "x", start=99), lambda: f.write("p", 3)):
        with pytest.raises(InvalidInput):
            bad()
    assert f.read("pkg/a.py").version == 4


def test_file_budget_per_workspace(vault: Vault) -> None:
    ws = Workspace(vault, "small", user_id="alice", budget_bytes=100)
    ws.files.write("a.txt", "x" * 60)
    with pytest.raises(BudgetExceeded) as err:
        ws.files.write("b.txt", "y" * 60)
    assert err.value.code == "budget_exceeded" and err.value.http_status == 413
    assert [i.path for i in ws.files.list()] == ["a.txt"]
    ws.files.write("a.txt", "x" * 10)  # shrinking is always allowed
    ws.files.write("b.txt", "y" * 60)
    other = Workspace(vault, "other", user_id="alice", budget_bytes=100)
    other.files.write("a.txt", "z" * 90)  # budgets are per workspace


# -- stack, context --------------------------------------------------------------------
def test_stack_and_scratchpad_survive_a_reopen(db_path: Path) -> None:
    with Vault(db_path, embedder="hash") as v:
        ws = Workspace(v, "proj", user_id="alice")
        ws.tasks.add("Build", key="build")
        ws.files.write("main.py", "print('hi')\n")
        ws.stack.push("build the package", task="build")
        ws.stack.push("write main.py")
        ws.stack.push("write main.py")  # replayed: still two frames
        ws.stack.write_scratch("next: tests")
        before = ws.context(reads=["main.py"], budget_tokens=300)
    with Vault(db_path, embedder="hash") as v:  # "after a crash": rebuilt from the store
        ws = Workspace(v, "proj", user_id="alice")
        after = ws.context(reads=["main.py"], budget_tokens=300)
        assert after == before and after.tokens <= 300
        assert "write main.py" in after.text and "next: tests" in after.text
        assert [f.instruction for f in ws.stack.frames()] == ["build the package",
                                                               "write main.py"]
        assert ws.stack.pop("ok").instruction == "write main.py"
        assert ws.stack.pop(expect="write main.py").depth == -1  # replayed pop: no-op
        assert ws.stack.top().instruction == "build the package"  # type: ignore[union-attr]
        ws.stack.pop()
        with pytest.raises(Conflict):
            ws.stack.pop()
        ws.stack.push("again")  # frame 0 reused: a new version of the same item
        assert ws.stack.frames()[0].version == 4  # push, pop, restore + new text


def test_context_respects_the_budget(ws: Workspace) -> None:
    ws.tasks.add("Do it", key="do")
    ws.files.write("big.txt", "word " * 5000)
    ctx = ws.context(reads=["big.txt"], budget_tokens=500)
    assert ctx.truncated and ctx.tokens <= 500 and ctx.task == "do"


# -- the vault around it -----------------------------------------------------------------
def test_search_leaves_working_memory_out_unless_asked(vault: Vault, ws: Workspace) -> None:
    vault.add("Alice lives in Lisbon", user_id="alice")
    ws.files.write("notes.md", "Alice lives in Porto\n")
    ws.tasks.add("Ask where Alice lives", key="ask")
    hits = vault.search("where does Alice live", user_id="alice", k=10)
    assert [h.item.kind for h in hits] == ["note"]
    asked = vault.search("Alice lives", user_id="alice", filters={"kind": ["wm_file"]})
    assert [h.item.kind for h in asked] == ["wm_file"]
    # a file's text states no facts: the note is not superseded by it
    assert vault.get(hits[0].item.id).invalid_at is None
    assert "wm_file" in ForgetPolicy().protect_kinds


def test_workspaces_are_isolated_between_principals(db_path: Path) -> None:
    with Vault(db_path, embedder="hash") as v, KeyStore.for_vault(db_path) as keys:
        alice = ScopedVault(v, keys.verify(keys.create("a", "alice")))  # type: ignore[arg-type]
        bob = ScopedVault(v, keys.verify(keys.create("b", "bob")))  # type: ignore[arg-type]
        wa = Workspace(alice, "proj", user_id="alice")
        wb = Workspace(bob, "proj", user_id="bob")
        wa.files.write("secret.py", "KEY = 1\n")
        wa.tasks.add("Alice's task", key="t")
        assert wb.files.list() == [] and wb.tasks.all() == {}
        with pytest.raises(NotFound):
            wb.files.read("secret.py")
        wb.files.write("secret.py", "bob's own\n")  # same path, its own item
        assert wa.files.read("secret.py").content == "KEY = 1\n"
        with pytest.raises(MemvaultError):  # bob cannot claim alice's scope
            Workspace(bob, "proj", user_id="alice").files.write("x.py", "x")


# -- REST over real HTTP -------------------------------------------------------------------
@pytest.fixture
def served(db_path: Path) -> Iterator[dict[str, Any]]:
    vault = Vault(db_path, embedder="hash")
    keys = KeyStore.for_vault(db_path)
    tokens = {n: keys.create(n, n) for n in ("alice", "bob")}
    server = BackgroundServer(create_app(vault, keys)).start()
    clients = {n: httpx.Client(base_url=server.url, timeout=30,
                               headers={"Authorization": f"Bearer {t}"})
               for n, t in tokens.items()}
    yield clients
    for c in clients.values():
        c.close()
    server.stop()
    keys.close()
    vault.close()


def test_rest_routes(served: dict[str, Any]) -> None:
    a, b = served["alice"], served["bob"]
    base = "/v1/work/proj"
    r = a.post(f"{base}/tasks", json={"title": "Build", "key": "build"})
    assert r.status_code == 201 and r.json()["key"] == "build"
    a.post(f"{base}/tasks", json={"title": "Models", "parent": "build", "key": "models"})
    assert [t["key"] for t in a.get(f"{base}/next").json()["tasks"]] == ["models"]
    assert a.patch(f"{base}/tasks/models", json={"status": "doing"}).json()["status"] == "doing"
    r = a.put(f"{base}/files/pkg/models.py", json={"content": "class User: ...\n"})
    assert r.status_code == 200 and r.json()["version"] == 1
    a.put(f"{base}/files/pkg/models.py", json={"content": "# models", "start": 1})
    r = a.get(f"{base}/files/pkg/models.py", params={"start": 2, "end": 2})
    assert r.json()["content"] == "class User: ...\n"
    assert "+# models" in a.get(f"{base}/diff/pkg/models.py", params={"a": 1}).json()["diff"]
    assert len(a.get(f"{base}/history/pkg/models.py").json()["versions"]) == 2
    assert a.post(f"{base}/tasks/models/complete", json={"result": "ok"}).json()["status"] == "done"
    assert a.post(f"{base}/stack", json={"instruction": "ship it"}).status_code == 201
    a.put(f"{base}/scratchpad", json={"text": "remember x"})
    ctx = a.post(f"{base}/context", json={"reads": ["pkg/models.py"],
                                          "budget_tokens": 200}).json()
    assert "ship it" in ctx["text"] and "remember x" in ctx["text"] and ctx["tokens"] <= 200
    assert a.post(f"{base}/stack/pop", json={"result": "done"}).json()["instruction"] == "ship it"
    # isolation: bob sees none of it, even at the same names
    assert b.get(f"{base}/tasks").json()["tasks"] == []
    assert b.get(f"{base}/files/pkg/models.py").status_code == 404
    assert b.get(f"{base}/files").json()["files"] == []
    # bad input: 4xx with a stable code, nothing changed
    for r, status, code in (
            (a.put(f"{base}/files/..%2Fx", json={"content": "x"}), 422, "invalid_input"),
            (a.post(f"{base}/tasks", json={"title": "x", "bogus": 1}), 422, "invalid_input"),
            (a.post(f"{base}/tasks", json={"title": "Other", "key": "build"}), 409, "conflict"),
            (a.get(f"{base}/tasks/nope"), 404, "not_found"),
            (a.post(f"{base}/stack/pop", json={}), 409, "conflict"),
            (a.get("/v1/work/bad name/tasks"), 422, "invalid_input")):
        assert r.status_code == status and r.json()["code"] == code, r.text
    assert len(a.get(f"{base}/tasks").json()["tasks"]) == 2


# -- CLI in a subprocess -------------------------------------------------------------------
def _cli(db: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "memvault", "--db", str(db),
                           "--embedder", "hash", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_task_and_file(db_path: Path) -> None:
    assert _cli(db_path, "task", "add", "Build", "--key", "build", "--user", "u").returncode == 0
    assert _cli(db_path, "task", "add", "Models", "--parent", "build", "--user", "u").returncode == 0
    out = _cli(db_path, "--json", "task", "next", "--user", "u")
    assert [t["key"] for t in json.loads(out.stdout)] == ["models"]
    assert _cli(db_path, "file", "write", "pkg/a.py", "--user", "u", stdin="a = 1\n").returncode == 0
    _cli(db_path, "file", "write", "pkg/a.py", "--content", "b = 2", "--start", "2",
         "--user", "u")
    assert _cli(db_path, "file", "read", "pkg/a.py", "--user", "u").stdout == "a = 1\nb = 2\n"
    assert "+b = 2" in _cli(db_path, "file", "diff", "pkg/a.py", "1", "--user", "u").stdout
    assert _cli(db_path, "file", "read", "pkg/a.py", "--user", "v").returncode == 2  # other owner
    bad = _cli(db_path, "file", "write", "../x", "--content", "x", "--user", "u")
    assert bad.returncode == 2 and bad.stderr.startswith("error [invalid_input]")
    assert "Traceback" not in bad.stderr
    done = _cli(db_path, "task", "done", "models", "--result", "ok", "--user", "u")
    assert done.returncode == 0 and "[done] models" in done.stdout
