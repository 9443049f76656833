"""Concurrency: 8 writer and 8 reader processes (and, shorter, threads) on one SQLite vault.

Each writer adds, updates, deletes and restores its own memories and also fights over a
few shared "hot" memories (where losing a race must be a ``Conflict``, never a lost
update). Each writer logs every acknowledged write (``ACK id version sha status``) only
after the call returned. Readers search, get, list and follow the audit feed, checking
on the way that

* what the audit feed announces is in the store (store and feed commit together),
* a memory's version never goes backwards for one reader,
* a hot memory's history has no gaps,
* a memory announced by the feed is found by searching its current text (the vector
  index of *another* process follows the store).

At the end: zero errors in every worker, every acknowledged write is in the history with
exactly its version, text hash and status, every writer's memory is at the last version
it acknowledged, hot memories got exactly one acknowledged write per version,
``vault.check()["ok"]``, and the vector index holds exactly the current active rows.

``MEMVAULT_CONCURRENCY_SECONDS`` (default 60) sets how long the processes run; the
thread variant runs a sixth of that (at least 5 s). The variable only steers this test.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from memvault import Conflict, Vault

sys.path.insert(0, str(Path(__file__).parent))
from crash_writer import make_text, sha  # noqa: E402
from test_crash import check_index, forkserver  # noqa: E402

SECONDS = float(os.environ.get("MEMVAULT_CONCURRENCY_SECONDS", "60"))
WRITERS = READERS = 8
HOT = 8


@dataclass
class Stats:
    ops: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ops": dict(self.ops), "errors": self.errors}


def _guard(stats: Stats, what: str, fn: Callable[[], None]) -> None:
    """Run one operation; anything but an allowed outcome is an error (with its trace)."""
    try:
        fn()
        stats.ops[what] += 1
    except Exception as exc:  # noqa: BLE001 - every failure is counted, none is hidden
        stats.errors.append(f"{what}: {type(exc).__name__}: {exc}\n"
                            + "".join(traceback.format_exc(limit=6)))


def write_loop(vault: Vault, rng: random.Random, deadline: float, hot: list[str],
               emit: Callable[[str], None]) -> Stats:
    """Write until ``deadline``; ``emit`` gets one ACK line per acknowledged write."""
    stats = Stats()
    mine: dict[str, int] = {}  # own memory -> acknowledged version
    deleted: list[str] = []

    def ack(item) -> None:  # noqa: ANN001
        emit(f"ACK {item.id} {item.version} {sha(item.text)} {item.status}")

    def add() -> None:
        item = vault.add(make_text(rng), kind=rng.choice(["note", "fact"]),
                         user_id=rng.choice(["u1", "u2", None]), tags=["c"])
        ack(item)
        mine[item.id] = 1

    def add_many() -> None:
        items = vault.add_many([make_text(rng) for _ in range(rng.randint(2, 10))],
                               batch_size=rng.choice([3, 256]), user_id="u1")
        for item in items:
            ack(item)
            mine[item.id] = 1

    def update() -> None:
        target = rng.choice(sorted(mine))
        item = vault.update(target, make_text(rng), importance=rng.random())
        assert item.version == mine[target] + 1, (target, item.version, mine[target])
        ack(item)
        mine[target] = item.version
        if rng.random() < 0.2:  # read your own write
            got = vault.get(target)
            assert (got.version, got.text) == (item.version, item.text), (got, item)

    def delete() -> None:
        target = rng.choice(sorted(mine))
        item = vault.delete(target, reason="concurrency")
        ack(item)
        del mine[target]
        deleted.append(target)
        deleted_versions[target] = item.version

    def restore() -> None:
        target = deleted.pop(rng.randrange(len(deleted)))
        item = vault.restore(target)
        assert item.version == deleted_versions[target] + 1
        ack(item)
        mine[target] = item.version

    def hot_update() -> None:
        try:
            item = vault.update(rng.choice(hot), make_text(rng))
        except Conflict:  # another writer got there first: a correct, reported outcome
            stats.ops["hot_conflict"] += 1
            return
        ack(item)

    def search() -> None:
        vault.search(make_text(rng), k=5)

    deleted_versions: dict[str, int] = {}
    while time.monotonic() < deadline:
        r = rng.random()
        if r < 0.25 or not mine:
            _guard(stats, "add", add)
        elif r < 0.40:
            _guard(stats, "add_many", add_many)
        elif r < 0.65:
            _guard(stats, "update", update)
        elif r < 0.72:
            _guard(stats, "delete", delete)
        elif r < 0.76 and deleted:
            _guard(stats, "restore", restore)
        elif r < 0.95:
            _guard(stats, "hot_update", hot_update)
        else:
            _guard(stats, "search", search)
    stats.ops["acked_versions"] = 0  # filled in by the parent from the ACK lines
    return stats


def read_loop(vault: Vault, rng: random.Random, deadline: float, hot: list[str]) -> Stats:
    """Read until ``deadline``, asserting the invariants in the module docstring."""
    stats = Stats()
    seen: dict[str, int] = {}  # id -> highest version this reader saw
    after = [vault.store.last_change()]

    def saw(item_id: str, version: int) -> None:
        assert version >= seen.get(item_id, 0), f"{item_id} went back to v{version}"
        seen[item_id] = version

    def follow_feed() -> None:
        events = vault.audit(after=after[0], limit=50)
        for event in events:
            after[0] = event.seq
            if event.action not in ("add", "update", "restore"):
                continue
            item = vault.get(event.item_id)  # in the feed => in the store
            assert item.version >= (event.version or 1), (event, item.version)
            saw(item.id, item.version)
        for event in rng.sample(events, min(2, len(events))):
            item = vault.get(event.item_id)
            if item.status != "active":
                continue
            hits = vault.search(item.text, k=10)
            if item.id not in [h.item.id for h in hits]:  # changed since? then it's fine
                now = vault.get(item.id)
                assert now.version > item.version or now.status != "active", (
                    f"{item.id} v{item.version} not found by its own text")
            stats.ops["found_by_text"] += 1

    def get_hot() -> None:
        item = vault.get(rng.choice(hot))
        saw(item.id, item.version)

    def history_hot() -> None:
        versions = [i.version for i in vault.history(rng.choice(hot))]
        assert versions == list(range(1, len(versions) + 1)), versions

    def search() -> None:
        for hit in vault.search(make_text(rng), k=10, user_id=rng.choice(["u1", None])):
            assert hit.item.status == "active"
            saw(hit.item.id, hit.item.version)

    def list_() -> None:
        # (page.total is counted in a second read, so it may differ from the items by the
        # writes in between; only the items themselves are checked.)
        user = rng.choice(["u1", "u2", None])
        for item in vault.list(limit=20, user_id=user).items:
            assert item.status == "active" and user in (None, item.user_id), item
            saw(item.id, item.version)

    ops = [("feed", follow_feed), ("get", get_hot), ("history", history_hot),
           ("search", search), ("list", list_)]
    while time.monotonic() < deadline:
        what, fn = rng.choice(ops)
        _guard(stats, what, fn)
    return stats


# -- the parent: verification ---------------------------------------------------------------
def parse_acks(lines: list[str]) -> list[tuple[str, int, str, str]]:
    out = []
    for line in lines:
        _, item_id, version, digest, status = line.split()
        out.append((item_id, int(version), digest, status))
    return out


def verify(db: Path, acks_by_writer: list[list[tuple[str, int, str, str]]],
           hot: list[str]) -> dict:
    """The end-state checks of the module docstring; returns counts for the summary."""
    with Vault(db, embedder="hash") as vault:
        versions = list(vault.export(history=True))
        history = {(i.id, i.version): (sha(i.text), i.status) for i in versions}
        current: dict[str, int] = {}
        for item in versions:
            current[item.id] = max(current.get(item.id, 0), item.version)
        all_acks = [a for acks in acks_by_writer for a in acks]
        for item_id, version, digest, status in all_acks:
            assert history.get((item_id, version)) == (digest, status), (
                f"acknowledged {item_id} v{version} is {history.get((item_id, version))}")
        for acks in acks_by_writer:  # own memories end at their last acknowledged version
            last: dict[str, int] = {}
            for item_id, version, _, _ in acks:
                if item_id not in hot:
                    last[item_id] = max(last.get(item_id, 0), version)
            wrong = {i: (v, current.get(i)) for i, v in last.items() if current.get(i) != v}
            assert not wrong, f"memories not at their acknowledged version: {wrong}"
        hot_acks = Counter((i, v) for i, v, _, _ in all_acks if i in hot)
        assert all(n == 1 for n in hot_acks.values()), "two writers won the same version"
        for item_id in hot:
            assert {v for i, v in hot_acks if i == item_id} == set(
                range(2, current[item_id] + 1)), f"hot {item_id}: an unacknowledged version"
        unknown = set(current) - set(hot) - {a[0] for a in all_acks}
        assert not unknown, f"memories nobody acknowledged: {sorted(unknown)[:5]}"
        report = vault.check()
        assert report["ok"], report
        check_index(vault)
        return {"memories": len(current), "versions": len(versions),
                "hot_versions": sum(current[h] for h in hot)}


def _summary(kind: str, seconds: float, stats: list[Stats], acks: int, end: dict) -> dict:
    total: Counter = Counter()
    for s in stats:
        total.update(s.ops)
    total.pop("acked_versions", None)
    doc = {"variant": kind, "seconds": seconds, "acknowledged_writes": acks,
           "errors": sum(len(s.errors) for s in stats), "ops": dict(total), **end}
    print(f"\nconcurrency {kind}: {json.dumps(doc)}")
    return doc


def _new_vault(db: Path) -> list[str]:
    with Vault(db, embedder="hash") as vault:
        return [i.id for i in vault.add_many([f"hot memory {n} about the shared plan "
                                              f"hot{n}" for n in range(HOT)])]


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [SECONDS])
def test_processes_write_and_read_one_vault(tmp_path: Path, seconds: float) -> None:
    db = tmp_path / "shared.db"
    hot = _new_vault(db)
    go = tmp_path / "go"
    seed = random.SystemRandom().randrange(2**31)
    ctx = forkserver()
    started = time.monotonic()
    procs = []
    for n in range(WRITERS + READERS):
        role = "writer" if n < WRITERS else "reader"
        out = tmp_path / f"{role}{n}.out"
        proc = ctx.Process(target=_worker, args=(role, db, seed + n, seconds, go, out, hot),
                           name=f"memvault-{role}{n}")
        proc.start()
        procs.append((role, out, proc))
    while not all(out.with_suffix(".ready").exists() for _, out, _ in procs):
        assert time.monotonic() - started < 120, "workers did not open the vault in time"
        assert all(p.is_alive() for _, _, p in procs), "a worker died while opening"
        time.sleep(0.02)
    go.touch()
    ready_s, started = time.monotonic() - started, time.monotonic()
    stats, acks = [], []
    for role, out, proc in procs:
        proc.join(seconds + 120)
        if proc.is_alive():
            proc.kill()
        assert proc.exitcode == 0, f"{role} exited with {proc.exitcode} (seed {seed})"
        lines = out.read_text().splitlines()
        doc = json.loads(lines[-1])
        stats.append(Stats(Counter(doc["ops"]), doc["errors"]))
        if role == "writer":
            acks.append(parse_acks(lines[:-1]))
    errors = [e for s in stats for e in s.errors]
    assert not errors, f"{len(errors)} errors (seed {seed}); first:\n{errors[0]}"
    run_s, started = time.monotonic() - started, time.monotonic()
    end = verify(db, acks, hot)
    end.update(open_s=round(ready_s, 1), run_s=round(run_s, 1),
               verify_s=round(time.monotonic() - started, 1))
    doc = _summary("processes", seconds, stats, sum(map(len, acks)), end)
    assert doc["acknowledged_writes"] > WRITERS * 10, "the writers hardly wrote"
    assert doc["ops"].get("found_by_text", 0) > 0, "readers never checked the feed"


@pytest.mark.slow
def test_threads_share_one_vault(tmp_path: Path) -> None:
    seconds = max(5.0, SECONDS / 6)
    db = tmp_path / "threads.db"
    hot = _new_vault(db)
    seed = random.SystemRandom().randrange(2**31)
    acks: list[list[str]] = [[] for _ in range(WRITERS)]
    stats: list[Stats] = []
    with Vault(db, embedder="hash") as vault:
        deadline = time.monotonic() + seconds

        def run(n: int) -> None:
            rng = random.Random(seed + n)
            if n < WRITERS:
                stats.append(write_loop(vault, rng, deadline, hot, acks[n].append))
            else:
                stats.append(read_loop(vault, rng, deadline, hot))
        threads = [threading.Thread(target=run, args=(n,)) for n in range(WRITERS + READERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)
        assert len(stats) == WRITERS + READERS, "a thread died"
    errors = [e for s in stats for e in s.errors]
    assert not errors, f"{len(errors)} errors (seed {seed}); first:\n{errors[0]}"
    parsed = [parse_acks(a) for a in acks]
    end = verify(db, parsed, hot)
    _summary("threads", seconds, stats, sum(map(len, parsed)), end)


def _open_and_add(db: Path, go: Path, n: int) -> None:
    while not go.exists():
        time.sleep(0.001)
    with Vault(db, embedder="hash") as vault:
        vault.add(f"first words of process {n}", id=f"proc-{n}")


@pytest.mark.slow
def test_processes_create_one_new_vault_at_once(tmp_path: Path) -> None:
    """Eight processes open a store that does not exist yet at the same moment: one
    schema, one vault id, every write there (schema migration and identity are raced)."""
    db, go = tmp_path / "fresh.db", tmp_path / "go"
    ctx = forkserver()
    procs = [ctx.Process(target=_open_and_add, args=(db, go, n)) for n in range(WRITERS)]
    for proc in procs:
        proc.start()
    time.sleep(0.5)
    go.touch()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0, proc.exitcode
    with Vault(db, embedder="hash") as vault:
        assert sorted(i.id for i in vault.export()) == [f"proc-{n}" for n in range(WRITERS)]
        assert len({e.item_id for e in vault.audit(action="add")}) == WRITERS
        assert vault.check()["ok"]


# -- the worker process ---------------------------------------------------------------------
def _worker(role: str, db: Path, seed: int, seconds: float, go: Path, out: Path,
            hot: list[str]) -> None:
    """One writer or reader process: ACK lines, then one JSON line of its stats."""
    vault = Vault(db, embedder="hash")
    out.with_suffix(".ready").touch()
    while not go.exists():
        time.sleep(0.01)
    deadline = time.monotonic() + seconds
    rng = random.Random(seed)
    with open(out, "w") as fh:
        def emit(line: str) -> None:
            fh.write(line + "\n")  # the parent reads the file after we exit
        if role == "writer":
            stats = write_loop(vault, rng, deadline, hot, emit)
        else:
            stats = read_loop(vault, rng, deadline, hot)
        _guard(stats, "close", vault.close)
        fh.write(json.dumps(stats.to_dict()) + "\n")
