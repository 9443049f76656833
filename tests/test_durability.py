"""Durability: an acknowledged write is on the disk, not only in the OS page cache.

The SIGKILL rounds of ``test_crash.py`` cannot see a missing fsync: the killed process's
writes stay in the page cache and the next open reads them. So this file checks what
those rounds cannot:

* the settings each backend runs with, read back from the backend
  (``RecordStore.durability()``): SQLite in WAL mode with ``synchronous=FULL`` by default,
  PostgreSQL with ``fsync`` and ``synchronous_commit`` on;
* with strace, that every acknowledged SQLite write was preceded by an fsync/fdatasync of
  the WAL file, and that ``durability="normal"`` (which promises less) shows the
  difference. strace is installed by ``scripts/install-test-deps.sh`` (``.ci/run``); when
  it is missing or may not trace, the test is skipped with the reason, unless
  ``MEMVAULT_REQUIRE_STRACE=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from memvault import Vault
from memvault.storage.sqlite import SQLiteStore

from pg_fixtures import _unavailable, pg_dsn, pg_server  # noqa: F401 - fixtures

REQUIRE_STRACE = "MEMVAULT_REQUIRE_STRACE"


# -- the settings, read back ----------------------------------------------------------------
def test_sqlite_runs_wal_with_synchronous_full_by_default(tmp_path: Path) -> None:
    with Vault(tmp_path / "v.db", embedder="hash") as vault:
        assert vault.settings.durability == "full"
        assert vault.store.durability() == {"backend": "sqlite", "journal_mode": "wal",
                                            "synchronous": "full", "fsync_per_commit": True}
    relaxed = SQLiteStore(tmp_path / "n.db", durability="normal")
    try:  # the report reads SQLite back: a weaker setting is visible, not assumed away
        assert relaxed.durability()["synchronous"] == "normal"
        assert relaxed.durability()["fsync_per_commit"] is False
    finally:
        relaxed.close()


def test_postgres_durability_is_read_from_the_server(pg_dsn: str) -> None:  # noqa: F811
    from memvault.storage.postgres import PostgresStore

    # the shared test server runs with fsync off (pg_fixtures: semantics, not fsync):
    # the report must say so rather than echo what the store would like
    store = PostgresStore(pg_dsn)
    try:
        got = store.durability()
    finally:
        store.close()
    if os.environ.get("MEMVAULT_PG_DSN"):
        pytest.skip("an external server: its settings are not this test's to know")
    assert got["fsync"] == "off" and got["fsync_per_commit"] is False, got


@pytest.mark.slow
def test_postgres_local_server_defaults_are_durable() -> None:
    """A LocalPostgres started without settings (what ``memvault`` users get) fsyncs
    every commit."""
    try:
        from memvault.storage.pgserver import LocalPostgres, PgServerUnavailable
        from memvault.storage.postgres import PostgresStore
    except ImportError as exc:
        _unavailable(f"missing Python package ({exc})")
        return
    try:
        server = LocalPostgres().start()
    except (PgServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"could not start a local server: {exc}")
        return
    try:
        dsn = server.create_database("durable")
        store = PostgresStore(dsn)
        try:
            got = store.durability()
        finally:
            store.close()
    finally:
        server.stop()
    assert got["fsync"] == "on" and got["synchronous_commit"] == "on", got
    assert got["full_page_writes"] == "on" and got["fsync_per_commit"] is True, got


# -- fsync per acknowledged write, seen by strace ---------------------------------------------
CHILD = textwrap.dedent("""
    import os, sys
    from memvault import Vault
    from memvault.settings import Settings
    db, acks, durability = sys.argv[1], sys.argv[2], sys.argv[3]
    vault = Vault(db, embedder="hash", settings=Settings(durability=durability))
    fd = os.open(acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, b"BEGIN\\n")
    ids = []
    for i in range(8):
        ids.append(vault.add(f"memory number {i} about the river Douro", user_id="u").id)
        os.write(fd, b"ACK\\n")
    for i in ids[:4]:
        vault.update(i, f"changed text of {i}")
        os.write(fd, b"ACK\\n")
    vault.delete(ids[-1])
    os.write(fd, b"ACK\\n")
    vault.add_many([f"batch memory {j}" for j in range(5)], user_id="u")
    os.write(fd, b"ACK\\n")
    os.write(fd, b"END\\n")
    os.close(fd)
    vault.close()
""")
N_ACKS = 8 + 4 + 1 + 1

_SYNC = re.compile(r"\b(?:fsync|fdatasync)\(\d+<([^>]*)>\)")
_MARK = re.compile(r"\bwrite\(\d+<([^>]*)>, \"(BEGIN|ACK|END)\\n\"")


def _strace_or_skip() -> str:
    def unavailable(reason: str) -> None:
        message = f"fsync-per-write test NOT RUN: {reason}"
        if os.environ.get(REQUIRE_STRACE, "").strip() not in ("", "0", "false", "no"):
            pytest.fail(f"{message} ({REQUIRE_STRACE} is set)", pytrace=False)
        warnings.warn(message, stacklevel=3)
        pytest.skip(message)

    strace = shutil.which("strace")
    if strace is None:
        unavailable("strace is not installed (scripts/install-test-deps.sh installs it)")
    probe = subprocess.run([strace, "-f", "-e", "trace=fsync", "-o", os.devnull, "true"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        unavailable(f"strace cannot trace here: {probe.stderr.strip()[-300:]}")
    return str(strace)


def wal_syncs_per_ack(tmp_path: Path, durability: str) -> list[int]:
    """Run the child under strace; per acknowledged write, how many times the WAL file
    was fsynced/fdatasynced since the previous acknowledgement."""
    strace = _strace_or_skip()
    run = tmp_path / durability
    run.mkdir()
    db, acks, trace = run / "vault.db", run / "acks", run / "trace.txt"
    Vault(db, embedder="hash").close()  # schema and index created outside the trace
    done = subprocess.run(
        [strace, "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,write", "-e", "signal=none",
         "-o", str(trace), sys.executable, "-c", CHILD, str(db), str(acks), durability],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    wal = str(db) + "-wal"
    counts: list[int] = []
    current: int | None = None
    for line in trace.read_text().splitlines():
        mark = _MARK.search(line)
        if mark and mark.group(1) == str(acks):
            if current is not None and mark.group(2) == "ACK":
                counts.append(current)
            current = 0
            if mark.group(2) == "END":
                break
            continue
        sync = _SYNC.search(line)
        if sync and current is not None and sync.group(1) == wal:
            current += 1
    assert len(counts) == N_ACKS, f"saw {len(counts)} acknowledgements in the trace"
    return counts


@pytest.mark.skipif(sys.platform != "linux", reason="strace")
def test_every_acknowledged_write_fsynced_the_wal_first(tmp_path: Path) -> None:
    full = wal_syncs_per_ack(tmp_path, "full")
    assert all(n >= 1 for n in full), f"WAL syncs per acknowledged write: {full}"
    # the control: "normal" syncs the WAL only at checkpoints, and the probe sees that
    normal = wal_syncs_per_ack(tmp_path, "normal")
    assert sum(n >= 1 for n in normal) <= 1, f"WAL syncs per write with 'normal': {normal}"
