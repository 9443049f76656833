"""Fault tolerance: SIGKILL of the server, a full disk, a damaged index snapshot.

* Server kill: a real server process (``memvault.server.serve.serve``, the function behind
  ``memvault serve``; a few rounds run the ``memvault serve`` command itself) takes
  acknowledged writes over HTTP from three client threads and is SIGKILLed at a random
  moment, round after round on the same store. After every kill the store must hold
  every acknowledged write with exactly its version, text hash and status; a request in
  flight at the kill may or may not have landed, but only whole; nothing else appears;
  ``vault.check()["ok"]`` and the index holds exactly the current active rows. With the
  writer kills of ``test_crash.py`` (60 + 20 rounds) the default 20 rounds here make 100
  kills per CI run (a restart costs ~3 s here, mostly building the FastAPI app).
  ``MEMVAULT_SERVER_KILL_ROUNDS`` sets another number.
* Disk full: SQLite meets ENOSPC (a tiny tmpfs: mounted directly as root, and, for
  everyone, in an unprivileged user namespace by a child run as an ordinary user) or
  EFBIG (``RLIMIT_FSIZE`` in a child process, anywhere on Linux). The write fails with a
  StorageError (code ``storage_error``), nothing acknowledged is lost, and the same vault
  works again once there is space.
* A damaged snapshot is rebuilt from the store, and ``Vault.check()`` and ``memvault
  check`` say so.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from click.testing import CliRunner

from memvault import StorageError, Vault
from memvault.governance import KeyStore
from memvault.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
from crash_writer import make_text, sha  # noqa: E402
from test_crash import check_index, forkserver  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL, rlimits, tmpfs")

ROUNDS = int(os.environ.get("MEMVAULT_SERVER_KILL_ROUNDS", "20"))
CLI_EVERY = 10  # every 10th round runs the `memvault serve` command in a fresh interpreter
SEED = int(os.environ.get("MEMVAULT_CRASH_SEED") or random.SystemRandom().randrange(2**31))


# -- server kill ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    pid: int
    wait: Callable[[], int | None]  # reaps the process; its exit status


def start_server(db: Path, cli: bool, http: httpx.Client) -> Server:
    port = free_port()
    if cli:  # the real command, in a fresh interpreter
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
        proc = subprocess.Popen([sys.executable, "-c", "from memvault.cli import main; main()",
                                 "--db", str(db), "--embedder", "hash", "serve", "--port",
                                 str(port), "--log-level", "warning", "--threads", "4"],
                                env=env, stderr=subprocess.DEVNULL)
        server = Server(f"http://127.0.0.1:{port}", proc.pid, lambda: proc.wait(30))
        alive: Callable[[], bool] = lambda: proc.poll() is None  # noqa: E731
    else:  # the same function, forked from a process that has it imported already
        from memvault.server.serve import serve

        child = forkserver().Process(
            target=serve, args=(Settings(path=db, embedder="hash"), "127.0.0.1", port),
            kwargs={"threads": 4, "log_level": "warning"})
        child.start()

        def reap() -> int | None:
            child.join(30)
            return child.exitcode
        server = Server(f"http://127.0.0.1:{port}", child.pid or 0, reap)
        alive = child.is_alive
    deadline = time.monotonic() + 90
    while True:
        try:
            if http.get(f"{server.url}/v1/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if not alive() or time.monotonic() > deadline:
            os.kill(server.pid, signal.SIGKILL) if alive() else None
            raise AssertionError(f"server on port {port} did not start")
        time.sleep(0.02)


@dataclass
class Flight:
    """A request in flight at the kill: it may have landed, whole, or not at all."""

    op: str
    item_id: str
    version: int  # the version it would create
    digest: str
    status: str


@dataclass
class Ledger:
    """What the clients were told: every acknowledged (id, version, sha, status)."""

    current: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    acked: list[tuple[str, int, str, str]] = field(default_factory=list)
    flights: list[Flight] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)

    def ack(self, doc: dict[str, Any]) -> None:
        state = (doc["version"], sha(doc["text"]), doc["status"])
        with self.lock:
            self.current[doc["id"]] = state
            self.acked.append((doc["id"], *state))


def client(http: httpx.Client, url: str, ledger: Ledger, mine: list[str],
           rng: random.Random, stop: threading.Event) -> None:
    """Write until the server dies; each client owns its memories (``mine``).

    ``http`` lives across rounds: making an httpx client loads the TLS trust store,
    which costs more than a whole round's worth of writes here."""
    while not stop.is_set():
        r = rng.random()
        if r < 0.45 or not mine:
            text, item_id = make_text(rng), "u1:" + _uuid(rng)  # the key's id namespace
            flight = Flight("add", item_id, 1, sha(text), "active")
            request = ("POST", "/v1/memories", {"text": text, "id": item_id})
        elif r < 0.85:
            item_id, text = rng.choice(mine), make_text(rng)
            flight = Flight("update", item_id, ledger.current[item_id][0] + 1, sha(text),
                            "active")
            request = ("PATCH", f"/v1/memories/{item_id}", {"text": text})
        else:
            item_id = mine.pop(rng.randrange(len(mine)))
            version, digest, _ = ledger.current[item_id]
            flight = Flight("delete", item_id, version + 1, digest, "deleted")
            request = ("DELETE", f"/v1/memories/{item_id}", None)
        method, path, body = request
        try:
            resp = http.request(method, url + path, json=body)
        except httpx.TransportError:  # the server is gone: this request is in flight
            with ledger.lock:
                ledger.flights.append(flight)
            return
        if resp.status_code not in (200, 201):
            ledger.errors.append(f"{flight.op} -> {resp.status_code} {resp.text[:300]}")
            return
        ledger.ack(resp.json())
        if flight.op == "add":
            mine.append(item_id)


def _uuid(rng: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def verify_after_kill(db: Path, ledger: Ledger) -> None:
    """Acknowledged writes are there exactly; in-flight ones landed whole or not at all."""
    with Vault(db, embedder="hash") as vault:
        versions = list(vault.export(history=True))
        history = {(i.id, i.version): (sha(i.text), i.status) for i in versions}
        latest: dict[str, int] = {}
        for item in versions:
            latest[item.id] = max(latest.get(item.id, 0), item.version)
        for flight in ledger.flights:  # adopt what landed
            got = history.get((flight.item_id, flight.version))
            if got is not None:
                assert got == (flight.digest, flight.status), (flight, got)
                ledger.current[flight.item_id] = (flight.version, *got)
        ledger.flights.clear()
        for item_id, version, digest, status in ledger.acked:
            assert history.get((item_id, version)) == (digest, status), (
                f"acknowledged {item_id} v{version} is {history.get((item_id, version))}")
        wrong = {i: (s[0], latest.get(i)) for i, s in ledger.current.items()
                 if latest.get(i) != s[0]}
        assert not wrong, f"not at the acknowledged version: {wrong}"
        unknown = set(latest) - set(ledger.current)
        assert not unknown, f"memories nobody wrote: {sorted(unknown)[:5]}"
        report = vault.check()
        assert report["ok"], report
        check_index(vault)


@pytest.mark.slow
def test_server_sigkill_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    Vault(db, embedder="hash").close()
    with KeyStore.for_vault(db) as keys:
        token = keys.create("writer", "u1")
    rng = random.Random(SEED)
    ledger = Ledger()
    owned: list[list[str]] = [[], [], []]
    https = [httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"})
             for _ in range(len(owned) + 1)]
    started = time.monotonic()
    cli_rounds = 0
    for n in range(ROUNDS):
        cli = n % CLI_EVERY == CLI_EVERY - 1
        cli_rounds += cli
        server = start_server(db, cli, https[-1])
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(http, server.url, ledger, mine,
                                                         random.Random(rng.random()), stop))
                   for http, mine in zip(https, owned)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(server.pid, signal.SIGKILL)
        assert server.wait() == -signal.SIGKILL
        stop.set()
        for t in threads:
            t.join(30)
        assert not ledger.errors, f"round {n} (MEMVAULT_CRASH_SEED={SEED}): {ledger.errors}"
        # a client whose delete was in flight dropped it from its list: pick it up again
        for mine in owned:
            mine[:] = [i for i in mine if ledger.current[i][2] == "active"]
        try:
            verify_after_kill(db, ledger)
        except AssertionError as exc:
            raise AssertionError(f"round {n} (MEMVAULT_CRASH_SEED={SEED}): {exc}") from exc
    for http in https:
        http.close()
    summary = {"rounds": ROUNDS, "cli_rounds": cli_rounds, "acknowledged": len(ledger.acked),
               "memories": len(ledger.current), "seconds": round(time.monotonic() - started, 1)}
    print(f"\nserver kills: {json.dumps(summary)}")
    assert len(ledger.acked) > ROUNDS, "the clients hardly wrote before each kill"


# -- disk full ------------------------------------------------------------------------------
def fill_until_full(vault: Vault, acked: dict[str, tuple[int, str]], rng: random.Random,
                    limit: int = 5000) -> StorageError:
    """Add and update until the disk is full; returns the error; records acknowledgements."""
    for _ in range(limit):
        try:
            if acked and rng.random() < 0.3:
                target = rng.choice(sorted(acked))
                item = vault.update(target, make_text(rng) + " " + "x" * 2000)
            else:
                item = vault.add(make_text(rng) + " " + "y" * 2000)
        except StorageError as exc:
            return exc
        acked[item.id] = (item.version, sha(item.text))
    raise AssertionError("the disk never filled up")


def check_acked(vault: Vault, acked: dict[str, tuple[int, str]]) -> None:
    for item_id, (version, digest) in acked.items():
        item = vault.get(item_id)
        assert (item.version, sha(item.text)) == (version, digest), item_id
    report = vault.check()
    assert report["ok"], report
    check_index(vault)


@contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path``; skips the test where mounting is not allowed."""
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(fs: Path, leave: int) -> Path:
    """A ballast file taking all but about ``leave`` bytes of the filesystem."""
    ballast = fs / "ballast"
    free = shutil.disk_usage(fs).free - leave
    with open(ballast, "wb") as fh:
        try:
            fh.write(b"\0" * max(free, 0))
        except OSError:
            pass
    return ballast


def disk_full_scenario(fs: Path, seed: int) -> None:
    """ENOSPC on the (tiny, otherwise empty) filesystem ``fs``: the write fails cleanly,
    nothing acknowledged is lost, and the vault writes again once there is space."""
    rng = random.Random(seed)
    db = fs / "vault.db"
    acked: dict[str, tuple[int, str]] = {}
    with Vault(db, embedder="hash") as vault:
        for item in vault.add_many([make_text(rng) for _ in range(50)]):
            acked[item.id] = (1, sha(item.text))
        ballast = fill_disk(fs, leave=256 * 1024)
        error = fill_until_full(vault, acked, rng)
        assert error.code == "storage_error", error.to_dict()
        assert error.details.get("reason") == "disk_full", error.to_dict()
        check_acked(vault, acked)  # reads still work; the failed write left no trace
        with pytest.raises(StorageError):  # still full: fails again, cleanly
            vault.add_many([make_text(rng) + " " + "z" * 4000 for _ in range(200)])
        # the index snapshot cannot be written either: reported, not raised (it is
        # derived state; closing a vault must not fail for it)
        assert vault.searcher.save() is False
        assert vault.searcher.report["snapshot"].startswith("not saved"), vault.searcher.report
        assert not list(fs.glob("vault.db.index.tmp-*")), "a half-written snapshot stayed"
        ballast.unlink()  # space comes back: the same vault writes again
        for item in vault.add_many([make_text(rng) for _ in range(20)]):
            acked[item.id] = (1, sha(item.text))
        target = rng.choice(sorted(acked))
        item = vault.update(target, make_text(rng))
        acked[target] = (item.version, sha(item.text))
        check_acked(vault, acked)
    with Vault(db, embedder="hash") as vault:  # and after a reopen
        check_acked(vault, acked)
        assert vault.check()["recovery"]["index"] == "loaded snapshot"


@pytest.mark.slow
def test_disk_full_on_a_tiny_filesystem(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "fs", "16m") as fs:
        disk_full_scenario(fs, SEED)


_NS_CHILD = """
import json, sys, traceback
from pathlib import Path
sys.path.insert(0, sys.argv[3])
fs, out, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[4])
try:
    import test_faults
    test_faults.disk_full_scenario(fs, seed)
    out.write_text(json.dumps({"ok": True}))
except BaseException as exc:
    out.write_text(json.dumps({"ok": False, "failure": "".join(traceback.format_exception(exc))}))
"""


@pytest.mark.slow
def test_disk_full_without_root_in_a_user_namespace() -> None:
    """The same ENOSPC scenario where mounting needs no root: an unprivileged user
    namespace (``unshare -rm``) mounts the tiny tmpfs for a child process. Run as root,
    the child is started as ``nobody`` when that user may run this interpreter, so this
    is what a developer without root gets; skipped with the reason where user namespaces
    are disabled."""
    import tempfile

    unshare = shutil.which("unshare")
    if sys.platform != "linux" or unshare is None:
        pytest.skip("needs Linux and unshare(1) (util-linux)")
    prefix: list[str] = []
    runuser = shutil.which("runuser")
    if os.geteuid() == 0 and runuser is not None:
        # drop to an ordinary user when it may run this interpreter (one under /root may
        # not be); otherwise root enters the same kind of user namespace itself
        probe = subprocess.run([runuser, "-u", "nobody", "--", sys.executable, "-c", "0"],
                               capture_output=True, timeout=60)
        if probe.returncode == 0:
            prefix = [runuser, "-u", "nobody", "--"]
    base = Path(tempfile.mkdtemp(prefix="memvault-nsfull-"))
    try:
        os.chmod(base, 0o777)  # the unprivileged child writes its result here
        fs, out = base / "fs", base / "result.json"
        fs.mkdir()
        os.chmod(fs, 0o777)
        script = ('mount -t tmpfs -o size=16m tmpfs "$1" || exit 77; shift; exec "$@"')
        done = subprocess.run(
            [*prefix, unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script,
             "sh", str(fs), sys.executable, "-c", _NS_CHILD, str(fs), str(out),
             str(Path(__file__).parent), str(SEED)],
            capture_output=True, text=True, timeout=600, cwd=base)
        if done.returncode == 77 or (not out.exists() and "unshare" in done.stderr):
            pytest.skip(f"no unprivileged mount here: {done.stderr.strip()[-300:]}")
        assert out.exists(), f"child exited {done.returncode}: {done.stderr[-3000:]}"
        result = json.loads(out.read_text())
        assert result["ok"], result.get("failure")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _rlimit_writer(db: Path, out: Path, seed: int) -> None:
    """Child: write until RLIMIT_FSIZE stops SQLite (EFBIG), then lift the limit."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not death
    rng = random.Random(seed)
    acked: dict[str, tuple[int, str]] = {}
    result: dict[str, Any] = {"acked": acked}
    try:
        vault = Vault(db, embedder="hash")
        for item in vault.add_many([make_text(rng) for _ in range(50)]):
            acked[item.id] = (1, sha(item.text))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        # Empty the WAL into the database first: otherwise an automatic checkpoint can
        # grow the database file past the limit on the very first write (a flake seen
        # once in CI), and no write would be acknowledged under the limit.
        with sqlite3.connect(db) as raw:
            busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the checkpoint was blocked"
        biggest = max(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
        # 1 MiB: about 25 writes of ~2 KB texts (each a few WAL pages) before EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 1024 * 1024, hard))
        error = fill_until_full(vault, acked, rng)
        result["error"] = {"code": error.code, **error.to_dict()}
        check_acked(vault, acked)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        for item in vault.add_many([make_text(rng) for _ in range(20)]):
            acked[item.id] = (1, sha(item.text))
        vault.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails
        import traceback

        result["failure"] = "".join(traceback.format_exception(exc))
    out.write_text(json.dumps(result, default=str))


@pytest.mark.slow
def test_disk_full_by_file_size_limit(tmp_path: Path) -> None:
    db, out = tmp_path / "vault.db", tmp_path / "result.json"
    Vault(db, embedder="hash").close()
    child = forkserver().Process(target=_rlimit_writer, args=(db, out, SEED))
    child.start()
    child.join(120)
    assert child.exitcode == 0, child.exitcode
    result = json.loads(out.read_text())
    assert "failure" not in result, result["failure"]
    assert result["error"]["code"] == "storage_error", result["error"]
    assert result["error"]["details"]["reason"] == "io_error", result["error"]  # EFBIG
    acked = {k: tuple(v) for k, v in result["acked"].items()}
    assert len(acked) > 70
    with Vault(db, embedder="hash") as vault:
        check_acked(vault, acked)  # type: ignore[arg-type]


# -- a damaged index snapshot ---------------------------------------------------------------
def test_damaged_snapshot_is_rebuilt_and_reported(tmp_path: Path) -> None:
    from memvault.cli import cli

    db = tmp_path / "vault.db"
    snapshot = db.with_name(db.name + ".index")
    with Vault(db, embedder="hash") as vault:
        vault.add_many([f"memory {i} about topic {i % 13}" for i in range(300)])
    raw = bytearray((snapshot / "hnsw.faiss").read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 512):
        raw[i] ^= 0xFF
    (snapshot / "hnsw.faiss").write_bytes(bytes(raw))
    with Vault(db, embedder="hash") as vault:
        report = vault.check()
        assert report["ok"], report
        recovery = report["recovery"]
        assert recovery["index"].startswith("rebuilt") and "checksum" in recovery["index"]
        assert recovery["indexed"] == 300
        check_index(vault)
        extra = vault.add("written after the rebuild")
    # the CLI opens the vault (repairing the damage) and says what it repaired
    rows = snapshot / "rows.npz"
    rows.write_bytes(rows.read_bytes()[:100])
    runner = CliRunner()
    human = runner.invoke(cli, ["--db", str(db), "--embedder", "hash", "check"])
    assert human.exit_code == 0, human.output
    assert "rebuilt" in human.output and "recovery" in human.output, human.output
    as_json = runner.invoke(cli, ["--db", str(db), "--embedder", "hash", "--json", "check"])
    doc = json.loads(as_json.output)
    assert doc["ok"] and doc["recovery"]["index"] == "loaded snapshot"  # repaired by now
    with Vault(db, embedder="hash") as vault:
        assert vault.search("written after the rebuild", k=1)[0].item.id == extra.id


def test_snapshot_swap_cleans_up_after_dead_savers(tmp_path: Path) -> None:
    """A process killed mid-save leaves ``<index>.tmp-<pid>-*``; the next save removes it
    (only for pids that are gone: a live process may still be writing its own)."""
    db = tmp_path / "vault.db"
    with Vault(db, embedder="hash") as vault:
        vault.add("something to index")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f"vault.db.index.tmp-{dead.pid}-0badf00d"
    live = tmp_path / f"vault.db.index.tmp-{os.getpid()}-0badf00d"
    for path in (orphan, live):
        path.mkdir()
        (path / "hnsw.faiss").write_bytes(b"half written")
    with Vault(db, embedder="hash") as vault:
        assert vault.check()["recovery"]["index"] == "loaded snapshot"
        assert vault.searcher.save() is True
    assert not orphan.exists() and live.exists()
    shutil.rmtree(live)
