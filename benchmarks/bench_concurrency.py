#!/usr/bin/env python
"""Write throughput on one SQLite vault: one writer, N writer processes, N writer threads.

The process rows compare writers queueing on the store's lock file (``SQLiteStore``'s
``-writelock``, the default) with waiting in SQLite's busy handler alone (before).

    python benchmarks/bench_concurrency.py --seconds 10 --writers 8 --out benchmarks/results

Each scenario starts from a fresh vault (hash embedder, ``durability=full``: every add is
fsynced) and runs for ``--seconds``; every writer calls ``Vault.add`` in a loop and
times each call. Afterwards every acknowledged id is looked up (a missing one is a lost
write). The baseline is one writer in one process, measured in the same run; the other
rows are ratios to it. Writes ``concurrency.json`` and ``concurrency.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_server import percentiles  # noqa: E402

from memvault import Vault  # noqa: E402


def write_for(vault: Vault, seconds: float, tag: str
              ) -> tuple[list[str], list[float], float, float]:
    """Add until ``seconds`` have passed: (ids, latencies, start, end) on the wall clock."""
    ids, lat = [], []
    start = time.time()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        t = time.perf_counter()
        ids.append(vault.add(f"writer {tag} wrote memory number {n} tok{tag}x{n}").id)
        lat.append(time.perf_counter() - t)
        n += 1
    return ids, lat, start, time.time()


def _process(db: str, seconds: float, tag: str, go: Any, queue: Any, lockfile: bool) -> None:
    vault = Vault(db, embedder="hash")
    if not lockfile:  # the "before" row: writers wait in SQLite's busy handler only
        vault.store._wlock.close()  # type: ignore[attr-defined]
        vault.store._wlock = None  # type: ignore[attr-defined]
    go.wait()
    result = write_for(vault, seconds, tag)
    vault.close()
    queue.put(result)


def run(kind: str, writers: int, seconds: float, root: Path, lockfile: bool = True
        ) -> dict[str, Any]:
    db = root / f"{kind}-{writers}-{lockfile}.db"
    Vault(db, embedder="hash").close()
    results: list[tuple[list[str], list[float], float, float]] = []
    if kind == "processes":
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["memvault.vault"])
        go, queue = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_process, args=(str(db), seconds, str(i), go, queue,
                                                    lockfile))
                 for i in range(writers)]
        for p in procs:
            p.start()
        time.sleep(1.0)  # let every process open the vault before the clock starts
        go.set()
        results = [queue.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join(60)
    else:
        with Vault(db, embedder="hash") as vault:
            threads = [threading.Thread(target=lambda i=i: results.append(
                write_for(vault, seconds, str(i)))) for i in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    ids = [i for r in results for i in r[0]]
    lat = [x for r in results for x in r[1]]
    with Vault(db, embedder="hash") as vault:
        lost = len(set(ids) - {item.id for item in vault.export()})
        ok = vault.check()["ok"]
    name = f"{writers} {kind}" + ("" if lockfile else ", busy handler only (before)")
    return {"scenario": name if writers > 1 else "1 writer (baseline)",
            "writers": writers, "acknowledged": len(ids),
            "writes_per_s": round(len(ids) / elapsed, 1), **percentiles(lat),
            "lost_writes": lost, "check_ok": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="memvault-bench-conc-") as tmp:
        root = Path(tmp)
        rows = [run("threads", 1, args.seconds, root),
                run("processes", args.writers, args.seconds, root, lockfile=False),
                run("processes", args.writers, args.seconds, root),
                run("threads", args.writers, args.seconds, root)]
    base = rows[0]["writes_per_s"]
    for row in rows:
        row["vs_baseline"] = round(row["writes_per_s"] / base, 2) if base else None
    doc = {"seconds": args.seconds, "rows": rows,
           "env": {"python": platform.python_version(), "cpus": os.cpu_count(),
                   "load_avg_1m": round(os.getloadavg()[0], 2)}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concurrency.json").write_text(json.dumps(doc, indent=2))
    lines = ["# Concurrent writers on one SQLite vault", "",
             f"`python benchmarks/bench_concurrency.py --seconds {args.seconds:g} "
             f"--writers {args.writers}`; hash embedder, durability full (fsync per add); "
             f"load average at the end {doc['env']['load_avg_1m']} on "
             f"{doc['env']['cpus']} cores.", "",
             "| scenario | acknowledged | writes/s | vs 1 writer | p50 ms | p99 ms | max ms | "
             "lost | check |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['acknowledged']} | {r['writes_per_s']} | "
                     f"{r['vs_baseline']}x | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | "
                     f"{r['lost_writes']} | {'ok' if r['check_ok'] else 'FAILED'} |")
    (args.out / "concurrency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
