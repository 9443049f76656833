#!/usr/bin/env python
"""How fast the command line answers: wall time of whole processes, as a user waits.

    python benchmarks/bench_cli.py --runs 15 --out benchmarks/results

Builds a vault with the default embedder (MiniLM) and ``--n`` memories, then runs, round
robin so that load on this shared machine hits every command alike, ``--runs`` times each:

* ``python -c pass``            the interpreter alone (the floor; the baseline of ratios)
* ``python -c "import memvault"``  the package import
* ``memvault --help``           the root group lists every command without importing one
* ``memvault --db X get ID``    a by-id read: the store, no searcher, no model weights
* ``memvault --db X search Q``  a search: the index snapshot and the model are loaded

Each is a fresh process (``subprocess.run``); reported are p50 and p90 of the wall time,
the p50 of its CPU time (user + system, from ``getrusage``), and both against ``python -c
pass``. On this shared machine wall time is mostly waiting for a core when the load is
high; CPU time is what the command itself costs. The goal (issue: "the CLI must answer at
once"): ``--help`` and ``get`` wall p50 <= 0.35 s. Writes ``cli.json`` and ``cli.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import machine, measure_table, write

GOAL_SECONDS = 0.35


def _command() -> list[str]:
    """The console script beside this interpreter (what users run), else ``-m``."""
    script = Path(sys.executable).with_name("memvault")
    return [str(script)] if script.exists() else [sys.executable, "-m", "memvault"]


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=300)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def run(n: int, runs: int, work: Path, compare: Path | None = None) -> dict[str, Any]:
    from memvault import Vault

    db = work / "vault.db"
    with Vault(db) as vault:  # the default embedder, as a user's vault
        items = vault.add_many([f"memory {i}: someone in city {i % 40} likes topic {i % 97}"
                                for i in range(n)])
        vault.search("warm the snapshot")  # close() then saves the index snapshot
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run it: the warm-up writes .pyc
    mv = _command()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import memvault"': [sys.executable, "-c", "import memvault"],
        "memvault --help": [*mv, "--help"],
        "memvault --db X get ID": [*mv, "--db", str(db), "get", items[n // 2].id],
        "memvault --db X search Q": [*mv, "--db", str(db), "search", "who likes topic 7"],
    }
    envs = {name: env for name in cases}
    if compare is not None:  # the same commands run by another source tree (e.g. before)
        other = {**env, "PYTHONPATH": os.pathsep.join([str(compare), env.get("PYTHONPATH", "")])}
        for name in ("memvault --help", "memvault --db X get ID", "memvault --db X search Q"):
            cases[f"{name} [{compare.name}]"] = cases[name]
            envs[f"{name} [{compare.name}]"] = other
    for name, argv in cases.items():  # one warm-up each: the OS page cache, .pyc files
        _run(argv, envs[name])
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            wall, cpu = _run(argv, envs[name])
            times[name].append(wall)
            cpus[name].append(cpu)
    base = statistics.median(times["python -c pass"])
    base_cpu = statistics.median(cpus["python -c pass"])
    rows = {}
    for name, values in times.items():
        p50, cpu = statistics.median(values), statistics.median(cpus[name])
        rows[name] = {"p50": round(p50, 4),
                      "p90": round(sorted(values)[max(0, round(0.9 * len(values)) - 1)], 4),
                      "min": round(min(values), 4), "ratio_to_python": round(p50 / base, 2),
                      "cpu_p50": round(cpu, 4), "cpu_ratio_to_python": round(cpu / base_cpu, 2),
                      "runs": [round(v, 4) for v in values],
                      "cpu_runs": [round(v, 4) for v in cpus[name]]}
    return {"n": n, "runs": runs, "command": " ".join(mv), "goal_seconds": GOAL_SECONDS,
            "goal_met": {k: rows[k]["p50"] <= GOAL_SECONDS
                         for k in ("memvault --help", "memvault --db X get ID")},
            "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    rows = [(name, f"wall p50 {r['p50']:.3f} s (p90 {r['p90']:.3f}, min {r['min']:.3f}); "
                   f"CPU p50 {r['cpu_p50']:.3f} s",
             f"wall {r['ratio_to_python']:.1f}x, CPU {r['cpu_ratio_to_python']:.1f}x")
            for name, r in result["rows"].items()]
    met = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in result["goal_met"].items())
    setup = (f"{result['runs']} runs of each, round robin, fresh processes; a MiniLM vault of "
             f"{result['n']} memories; command `{result['command']}`; goal p50 <= "
             f"{result['goal_seconds']} s ({met})")
    return measure_table("CLI wall time (whole process)", rows, result["env"], setup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="memories in the vault")
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (10+)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--compare-src", type=Path, metavar="DIR",
                        help="Also run the memvault commands with DIR first on sys.path "
                             "(e.g. `git archive` of an older commit's src/), same run.")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="memvault-bench-cli-") as tmp:
        result = run(args.n, max(10, args.runs), Path(tmp), args.compare_src)
    result["env"] = machine(load_start)
    write(args.out, "cli", result, markdown)


if __name__ == "__main__":
    main()
