"""Crash safety: SIGKILL a writer at random moments; every acknowledged write survives.

A child process (``tests/crash_writer.py``'s loop, in a process forked from a fork server
that has memvault imported, so a round costs no interpreter start) writes to one SQLite
vault in a loop and reports each call on stdout (``TRY`` before it, ``ACK`` per
acknowledged write after it, ``END``). The parent kills it 20-400 ms after it starts writing, then opens the SAME store
and checks it against a model built only from what the child reported:

* every write ever acknowledged is in the history with exactly its version, text hash and
  status, and every memory's current version is what the acknowledged writes say, except
  that the one call in flight at the kill may or may not have landed, and only whole
  transactions of it (an ``add_many`` with ``batch_size=5`` commits in chunks of 5);
* nothing else is in the store;
* ``vault.check()["ok"]``, and the vector index holds exactly the current active rows,
  with the vectors the store holds for them;
* searching for a just-written text finds it.

The store is reopened round after round, so damage would accumulate. The rounds default
to 60 (with the 20 snapshot-damage rounds and the 20 server kills of ``test_faults.py``,
100 kills per CI run); ``MEMVAULT_CRASH_ROUNDS`` sets more for a soak run and
``MEMVAULT_CRASH_SEED`` replays one schedule of operations and kill delays (kill timing
itself stays racy).
These variables only steer this test; the library never sees them.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import multiprocessing.context
import os
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from memvault import Vault
from memvault.storage.base import RowQuery

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

sys.path.insert(0, str(Path(__file__).parent))  # crash_writer, for the forked children
ROUNDS = int(os.environ.get("MEMVAULT_CRASH_ROUNDS", "60"))
SEED = int(os.environ.get("MEMVAULT_CRASH_SEED") or random.SystemRandom().randrange(2**31))
READY_TIMEOUT = 60.0


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- running the child ------------------------------------------------------------------
@dataclass
class Call:
    """One call the child started: its TRY line, the ACKs it printed, whether it ENDed."""

    op: str
    batch_size: int
    items: list[tuple[str, str]]  # (id or "-", sha256 or "-")
    acks: list[tuple[str, int, str]] = field(default_factory=list)  # (id, version, sha)
    ended: bool = False


@dataclass
class Round:
    ready: str
    calls: list[Call]
    stderr: str


def forkserver() -> multiprocessing.context.ForkServerContext:
    """Child processes forked from a server that has memvault imported already.

    Starting Python and importing memvault costs ~1 s of CPU per process, which would
    dominate a round; forked children are still separate processes with their own
    SQLite connections (the fork server never opens one). The fork server does not get
    this test directory on its path, so it preloads the libraries, not these modules."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["memvault.vault", "memvault.server.serve", "pytest", "httpx"])
    return ctx


def _writer_in_fork(out: Connection, errfile: str, cwd: str, argv: list[str]) -> None:
    """The forked child: stdout is the pipe, stderr the file, then the writer's loop."""
    os.dup2(out.fileno(), 1)
    os.dup2(os.open(errfile, os.O_WRONLY | os.O_APPEND), 2)
    os.chdir(cwd)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
    import crash_writer

    sys.exit(crash_writer.main(argv))


def run_child(db: Path, rng: random.Random, *, allow_save: bool = True) -> Round:
    """Start the writer, SIGKILL it 20-400 ms after READY, and return what it reported."""
    errfile = db.parent / "writer.stderr"
    errfile.write_text("")
    argv = [str(db), str(rng.randrange(2**31))]
    if not allow_save:
        argv.append("--no-save")
    lines: list[str] = []
    ready = threading.Event()
    ctx = forkserver()
    pipe_r, pipe_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_writer_in_fork,
                       args=(pipe_w, str(errfile), str(db.parent), argv))
    proc.start()
    pipe_w.close()  # the child holds the only write end: EOF when it dies
    read_fd = os.dup(pipe_r.fileno())
    pipe_r.close()
    with open(read_fd, encoding="utf-8") as stdout:

        def pump() -> None:  # drain the pipe so the child never blocks on a full buffer
            for line in stdout:
                lines.append(line)
                if line.startswith("READY"):
                    ready.set()
            ready.set()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            ready.wait(READY_TIMEOUT)
            if proc.is_alive():
                time.sleep(rng.uniform(0.020, 0.400))
                if proc.is_alive():
                    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
        finally:
            if proc.is_alive() and not ready.is_set():
                proc.kill()
            proc.join(30)
            reader.join(timeout=30)
    stderr = errfile.read_text()
    assert proc.exitcode == -signal.SIGKILL, (
        f"writer ended with {proc.exitcode} instead of being killed (seed {SEED}):\n"
        f"{stderr[-3000:]}")
    assert lines and lines[0].startswith("READY"), f"writer never got ready:\n{stderr[-3000:]}"

    calls: list[Call] = []
    for line in lines[1:]:
        if not line.endswith("\n"):  # cannot happen with atomic pipe writes; be safe
            break
        kind, *rest = line.split()
        if kind == "TRY":
            op, bs, items = rest
            calls.append(Call(op, int(bs), [tuple(x.split(":")) for x in items.split(",")]))  # type: ignore[misc]
        elif kind == "ACK":
            op, item_id, version, digest = rest
            assert op == calls[-1].op, line
            calls[-1].acks.append((item_id, int(version), digest))
        elif kind == "END":
            calls[-1].ended = True
        else:  # pragma: no cover - protocol error
            raise AssertionError(f"unexpected line from writer: {line!r}")
    return Round(lines[0].split(" ", 1)[1].strip(), calls, stderr)


# -- the model of what must be in the store ---------------------------------------------
State = tuple[int, str, str]  # (version, sha256 of text, status)


@dataclass
class Model:
    current: dict[str, State] = field(default_factory=dict)  # verified after each round
    acked: list[tuple[str, int, str, str]] = field(default_factory=list)  # every ACK ever

    def apply_acks(self, calls: list[Call]) -> None:
        """Fold the acknowledged writes into the model; they must follow on from it."""
        for call in calls:
            for item_id, version, digest in call.acks:
                before = self.current.get(item_id)
                if call.op in ("add", "add_many"):
                    assert before is None and version == 1, (call.op, item_id, before, version)
                    assert digest in {s for _, s in call.items}
                    state = (1, digest, "active")
                elif call.op == "update":
                    assert before is not None and version == before[0] + 1, (item_id, before)
                    state = (version, digest, "active")
                elif call.op == "delete":
                    assert before is not None and version == before[0] + 1, (item_id, before)
                    assert digest == before[1], "a delete must keep the text"
                    state = (version, digest, "deleted")
                else:  # pragma: no cover
                    raise AssertionError(call.op)
                self.current[item_id] = state
                self.acked.append((item_id, *state))

    def verify(self, vault: Vault, calls: list[Call]) -> dict[str, str]:
        """Check the store against the model; adopt what the in-flight call did land.

        Returns id -> text of the memories the last round acknowledged or landed and that
        are still active, for the search check.
        """
        versions = list(vault.export(history=True))
        history = {(i.id, i.version): (sha(i.text), i.status) for i in versions}
        latest: dict[str, object] = {}
        for item in versions:
            prev = latest.get(item.id)
            if prev is None or item.version > prev.version:  # type: ignore[attr-defined]
                latest[item.id] = item
        for item_id, item in latest.items():
            assert all((item_id, v) in history for v in range(1, item.version + 1)), (  # type: ignore[attr-defined]
                f"{item_id} has a gap in its history")
        observed: dict[str, State] = {
            i: (it.version, sha(it.text), it.status) for i, it in latest.items()}  # type: ignore[attr-defined]

        inflight = calls[-1] if calls and not calls[-1].ended else None
        extras = set(observed) - set(self.current)
        if inflight is not None and inflight.op in ("add", "add_many"):
            acked = {d for _, _, d in inflight.acks}
            pending = [(i, d) for i, d in inflight.items if d not in acked]
            extra_by_sha = {observed[i][1]: i for i in extras}
            landed = [k for k, (_, d) in enumerate(pending) if d in extra_by_sha]
            n = len(landed)
            assert landed == list(range(n)), f"non-prefix subset of a batch landed: {landed}"
            if inflight.acks:  # the call returned: all of it is durable
                assert n == len(pending), "an acknowledged add_many is only partly there"
            elif inflight.op == "add_many" and n != len(inflight.items):
                # whole transactions only: add_many commits batch_size records at a time
                assert n % inflight.batch_size == 0, (
                    f"{n} of {len(inflight.items)} records of one add_many landed with "
                    f"batch_size {inflight.batch_size}: a transaction was torn")
            for want_id, digest in pending[:n]:
                got_id = extra_by_sha[digest]
                if want_id != "-":
                    assert got_id == want_id
                assert observed[got_id] == (1, digest, "active"), observed[got_id]
                self.current[got_id] = observed[got_id]
                extras.discard(got_id)
        assert not extras, f"the store holds memories nobody wrote: {sorted(extras)[:5]}"
        lost = set(self.current) - set(observed)
        assert not lost, f"acknowledged memories are gone: {sorted(lost)[:5]}"

        if inflight is not None and inflight.op in ("update", "delete") and not inflight.acks:
            target, digest = inflight.items[0]
            version, old_digest, _ = self.current[target]
            if observed[target] != self.current[target]:
                new = ((version + 1, digest, "active") if inflight.op == "update"
                       else (version + 1, old_digest, "deleted"))
                assert observed[target] == new, (inflight.op, target, observed[target], new)
                self.current[target] = new

        wrong = {i: (observed[i], s) for i, s in self.current.items() if observed[i] != s}
        assert not wrong, f"current versions differ from the acknowledged ones: {wrong}"
        for item_id, version, digest, status in self.acked:
            assert history.get((item_id, version)) == (digest, status), (
                f"acknowledged {item_id} v{version} is {history.get((item_id, version))}, "
                f"not {(digest, status)}")

        touched = {i for c in calls for i, _, _ in c.acks}
        return {i: latest[i].text for i in touched  # type: ignore[attr-defined]
                if self.current[i][2] == "active"}


def check_index(vault: Vault) -> None:
    """The vector index holds exactly the current active rows, with the stored vectors.

    White-box on purpose: ``vault.check()`` compares counts; this compares contents.
    """
    index = vault.searcher._index
    alive = np.flatnonzero(index._alive)
    seqs = index._seq[alive]
    expected = {r.seq for r in vault.store.select(RowQuery())}
    assert set(seqs.tolist()) == expected, "index rows differ from the store's active rows"
    stored = vault.store.embeddings([int(s) for s in seqs])
    held = index._vectors()[alive]
    bad = [int(s) for s, v in zip(seqs, held) if not np.array_equal(stored[int(s)], v)]
    assert not bad, f"index vectors differ from the stored ones at seqs {bad[:5]}"


def verify_round(db: Path, model: Model, rnd: Round, rng: random.Random,
                 expect_rebuilt: bool = False) -> None:
    model.apply_acks(rnd.calls)
    vault = Vault(db, embedder="hash")
    try:
        if expect_rebuilt:
            assert vault.searcher.report["index"].startswith("rebuilt"), vault.searcher.report
        recent = model.verify(vault, rnd.calls)
        report = vault.check()
        assert report["ok"], report
        check_index(vault)
        for item_id in rng.sample(sorted(recent), min(3, len(recent))):
            hits = vault.search(recent[item_id], k=10)
            assert item_id in [h.item.id for h in hits], "a just-written memory is not found"
        for item_id in rng.sample(sorted(model.current), min(10, len(model.current))):
            assert len(vault.history(item_id)) == model.current[item_id][0]
    finally:
        vault.close()


# -- the tests ----------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "crash.db"
    model = Model()
    writes = 0
    for n in range(ROUNDS):
        rnd = run_child(db, rng)
        writes += sum(len(c.acks) for c in rnd.calls)
        try:
            verify_round(db, model, rnd, rng)
        except AssertionError as exc:
            raise AssertionError(f"round {n} (MEMVAULT_CRASH_SEED={SEED}): {exc}") from exc
    assert writes > ROUNDS, "the writer hardly wrote anything before each kill"
    assert len(model.current) > 0


def _rewrite(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def corrupt(index_dir: Path) -> None:
        path = index_dir / name
        path.write_bytes(change(path.read_bytes()))
    corrupt.__name__ = f"{name}:{getattr(change, '__name__', 'change')}"
    return corrupt


def _half(b: bytes) -> bytes:
    return b[: len(b) // 2]


def _empty(b: bytes) -> bytes:
    return b""


def _garble_head(b: bytes) -> bytes:
    return bytes(x ^ 0xA5 for x in b[:64]) + b[64:]


def _garble_middle(b: bytes) -> bytes:
    m = len(b) // 2
    return b[:m] + bytes(x ^ 0x5A for x in b[m:m + 256]) + b[m + 256:]


def _meta(**changes: object) -> Callable[[bytes], bytes]:
    def change(b: bytes) -> bytes:
        meta = json.loads(b)
        for key, value in changes.items():
            meta[key] = value(meta[key]) if callable(value) else value
        return json.dumps(meta).encode()
    change.__name__ = "meta(" + ",".join(changes) + ")"
    return change


def _delete(name: str) -> Callable[[Path], None]:
    def corrupt(index_dir: Path) -> None:
        (index_dir / name).unlink()
    corrupt.__name__ = f"{name}:delete"
    return corrupt


CORRUPTIONS: list[Callable[[Path], None]] = [
    _rewrite("hnsw.faiss", _half),
    _rewrite("hnsw.faiss", _empty),
    _rewrite("hnsw.faiss", _garble_head),
    _rewrite("rows.npz", _half),
    _rewrite("rows.npz", _garble_middle),
    _rewrite("meta.json", _garble_middle),
    _rewrite("meta.json", _half),
    _rewrite("meta.json", _meta(watermark=lambda w: w + 1000)),  # ahead of the store
    _rewrite("meta.json", _meta(tag="another-vault")),
    _delete("rows.npz"),
]


@pytest.mark.slow
def test_corrupt_index_snapshot_is_rebuilt_between_crashes(tmp_path: Path) -> None:
    """Damage the snapshot before the writer opens it and again before the parent does."""
    rng = random.Random(SEED + 1)
    db = tmp_path / "crash.db"
    index_dir = db.with_name(db.name + ".index")
    pristine = tmp_path / "pristine.index"
    model = Model()
    rounds = max(len(CORRUPTIONS), ROUNDS // 3)
    for n in range(rounds):
        before_child = CORRUPTIONS[n % len(CORRUPTIONS)]
        after_kill = CORRUPTIONS[(n + 3) % len(CORRUPTIONS)]
        where = f"round {n}, corruptions {before_child.__name__} / {after_kill.__name__}"
        if n > 0:  # round 0 creates the store; later ones find the parent's snapshot
            shutil.rmtree(pristine, ignore_errors=True)
            shutil.copytree(index_dir, pristine)
            before_child(index_dir)
        rnd = run_child(db, rng, allow_save=False)  # no save: the damage stays in place
        if n > 0:
            assert rnd.ready.startswith("rebuilt"), f"{where}: writer loaded {rnd.ready!r}"
            shutil.rmtree(index_dir)
            shutil.copytree(pristine, index_dir)
            after_kill(index_dir)
        try:
            verify_round(db, model, rnd, rng, expect_rebuilt=n > 0)
        except AssertionError as exc:
            raise AssertionError(f"{where} (MEMVAULT_CRASH_SEED={SEED}): {exc}") from exc


def test_garbled_snapshot_vectors_are_detected(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with Vault(db, embedder="hash") as vault:
        vault.add_many([f"memory number {i} about topic {i % 17}" for i in range(300)])
    path = db.with_name(db.name + ".index") / "hnsw.faiss"
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) - 2048, len(raw) - 1024):  # inside the stored float32 rows
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    with Vault(db, embedder="hash") as vault:
        assert vault.searcher.report["index"].startswith("rebuilt"), vault.searcher.report
        check_index(vault)
