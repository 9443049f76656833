"""``make bench-working``: the working-memory end-to-end run, measured.

The scripted agent builds ``calclib`` over MCP (streamable HTTP, the official SDK) twice:
uninterrupted (the baseline) and with the server SIGKILLed before ``--kills`` random tool
calls and restarted. Reports steps, context tokens per step against putting every file
in context, tool-call latency p50/p95 of both runs, and whether the files match.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results  # noqa: E402
import working_e2e as e2e  # noqa: E402

from memvault.governance.principals import KeyStore  # noqa: E402
from memvault.vault import Vault  # noqa: E402


def _vault(path: Path) -> str:
    with Vault(path, embedder="hash"):
        pass
    with KeyStore.for_vault(path) as keys:
        return keys.create("builder", "dev", "agent-1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--modules", type=int, default=6)
    ap.add_argument("--functions", type=int, default=6)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kills in (("uninterrupted", 0), ("killed", args.kills)):
            db = Path(tmp) / f"{name}.db"
            started = time.perf_counter()
            runs[name] = e2e.run_build(db, _vault(db), kills=kills, seed=args.seed,
                                       modules=args.modules, functions=args.functions,
                                       budget_tokens=args.budget)
            runs[name]["seconds"] = time.perf_counter() - started
    base, hit = runs["uninterrupted"], runs["killed"]
    steps = base["steps"]
    ctx = [s.context_tokens for s in steps]
    every = [s.all_files_tokens for s in steps]
    result = {
        "planned_steps": base["planned_steps"], "steps_uninterrupted": len(steps),
        "steps_killed_run": len(hit["steps"]), "kills": hit["kills"],
        "server_starts": hit["server_starts"], "same_files": hit["files"] == base["files"],
        "files": len(base["files"]), "budget_tokens": args.budget,
        "context_tokens": {"mean": statistics.mean(ctx), "max": max(ctx)},
        "all_files_tokens": {"mean": statistics.mean(every), "max": max(every),
                             "final": every[-1]},
        "latency_ms": {name: {"p50": 1000 * e2e.percentile(r["latencies"], 0.5),
                              "p95": 1000 * e2e.percentile(r["latencies"], 0.95),
                              "calls": len(r["latencies"])} for name, r in runs.items()},
        "seconds": {name: r["seconds"] for name, r in runs.items()},
        "machine": _results.machine(load)}
    _results.write(args.out, "working", result, _markdown)


def _markdown(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    rows = [
        ("steps (planned / done uninterrupted / done with kills, replays included)",
         f"{r['planned_steps']} / {r['steps_uninterrupted']} / {r['steps_killed_run']}", ""),
        ("server SIGKILLs / starts", f"{r['kills']} / {r['server_starts']}", ""),
        ("same files as the uninterrupted run", str(r["same_files"]), f"{r['files']} files"),
        ("context tokens per step, mean / max", f"{r['context_tokens']['mean']:.0f} / "
         f"{r['context_tokens']['max']}", f"budget {r['budget_tokens']}"),
        ("every file in context instead, mean / max", f"{r['all_files_tokens']['mean']:.0f} / "
         f"{r['all_files_tokens']['max']}",
         f"{r['all_files_tokens']['mean'] / r['context_tokens']['mean']:.1f}x the context"),
        ("tool call p50 / p95 (with kills)", f"{lat['killed']['p50']:.1f} / "
         f"{lat['killed']['p95']:.1f} ms", f"uninterrupted {lat['uninterrupted']['p50']:.1f}"
         f" / {lat['uninterrupted']['p95']:.1f} ms"),
        ("wall time, uninterrupted / with kills", f"{r['seconds']['uninterrupted']:.0f} / "
         f"{r['seconds']['killed']:.0f} s", "restarts included")]
    return _results.measure_table("Working memory: long-horizon build over MCP", rows,
                                  r["machine"], "hash embedder, SQLite, one MCP server "
                                  "subprocess, tokens = characters / 4")


if __name__ == "__main__":
    main()
