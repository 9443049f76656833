#!/usr/bin/env python
"""MemCube benchmark: dump, verify, load, reload and migrate, against copy_store.

    python benchmarks/bench_cube.py --n 20000 --out benchmarks/results

Builds one SQLite vault (hash embedder, so the numbers measure the cube machinery and
not a model) with ``n`` memories in 10 users, 10 % of them updated once, then times in the
same run: ``copy_store`` of the whole vault (the baseline: a verified raw copy), ``dump``
of the whole vault and of one user, ``verify`` (every checksum), ``load`` into an empty
vault, ``load`` again (every memory identical: skipped) and ``migrate`` to hash-64.
Writes ``cube.json`` and ``cube.md`` (seconds, memories/s, ratio to copy_store).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _results import write
from memvault import Vault
from memvault.cube import dump, load, migrate, verify
from memvault.storage.migrate import copy_store
from memvault.storage.sqlite import SQLiteStore


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def run(n: int, work: Path) -> dict[str, Any]:
    src = work / "src.db"
    with Vault(src, embedder="hash") as v:
        items = v.add_many([{"text": f"memory {i}: user {i % 10} likes topic {i % 97} "
                                     f"and place {i % 53}", "user_id": f"u{i % 10}"}
                            for i in range(n)], batch_size=1000)
        for item in items[: n // 10]:
            v.update(item.id, item.text + " (revised)")
        versions = n + n // 10
        rows: dict[str, float] = {}
        store = SQLiteStore(work / "copy.db")
        rows["copy_store (baseline)"], _ = _timed(lambda: copy_store(v.store, store))
        store.close()
        rows["dump whole vault"], _ = _timed(lambda: dump(v, work / "cube"))
        rows["dump one user (10 %)"], _ = _timed(lambda: dump(v, work / "u0", user_id="u0"))
    rows["verify (all checksums)"], _ = _timed(lambda: verify(work / "cube"))
    with Vault(work / "dst.db", embedder="hash") as w:
        rows["load into empty vault"], _ = _timed(lambda: load(w, work / "cube"))
        rows["load again (all identical)"], _ = _timed(lambda: load(w, work / "cube"))
    rows["migrate hash-256 -> hash-64"], _ = _timed(
        lambda: migrate(work / "cube", work / "cube64", "hash-64"))
    base = rows["copy_store (baseline)"]
    size = (work / "cube" / "plaintext.sqlite").stat().st_size
    return {"n": n, "versions": versions, "plaintext_bytes": size,
            "platform": platform.platform(), "python": platform.python_version(),
            "rows": [{"step": k, "seconds": round(s, 3),
                      "memories_per_s": round((n // 10 if "one user" in k else n) / s),
                      "ratio_to_copy_store": round(s / base, 2)} for k, s in rows.items()]}


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# MemCube: {report['n']:,} memories ({report['versions']:,} versions, "
             f"plaintext {report['plaintext_bytes'] / 1e6:.1f} MB), hash embedder", "",
             "| step | seconds | memories/s | × copy_store |", "|---|---:|---:|---:|"]
    lines += [f"| {r['step']} | {r['seconds']:.2f} | {r['memories_per_s']:,} | "
              f"{r['ratio_to_copy_store']:.2f} |" for r in report["rows"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="memvault-bench-cube-"))
    try:
        report = run(args.n, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(args.out, "cube", report, markdown)


if __name__ == "__main__":
    main()
