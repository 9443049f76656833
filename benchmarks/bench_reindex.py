#!/usr/bin/env python
"""Index rebuild benchmark: what opening a vault costs when its snapshot cannot be used.

    python benchmarks/bench_reindex.py --locomo ../shared/data/locomo-dev.json --out benchmarks/results

Writes ``reindex.json`` and ``reindex.md``. The LoCoMo turns (every conversation, one
vault, bundled MiniLM) are ingested with third-person sentences off and the vault closed
(snapshot saved); then, each open timed (median of ``--repeats``, the snapshot put back
before each):

* **baseline**: the snapshot deleted, opened with ``third_person=True``: the index is
  rebuilt from the store and every sentence embedded;
* **settings change**: the snapshot kept, opened with ``third_person=True``: rebuilt, but
  the sentence vectors the snapshot holds are reused and only the third-person texts are
  embedded (``report["reused"]``, ``report["embedded"]``);
* **snapshot loads**: opened with the settings it was written with (``third_person=False``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import machine, measure_table, write
from memvault import Settings, Vault
from memvault.evaluation import locomo
from memvault.models import get_embedder
from memvault.retrieval.searcher import SearchConfig


def _open(path: Path, emb: Any, third: bool) -> tuple[float, dict[str, Any]]:
    settings = Settings(path=path, embedder=emb.id, index_context="thread",
                        search=SearchConfig(third_person=third))
    started = time.perf_counter()
    vault = Vault(settings=settings, embedder=emb)
    seconds = time.perf_counter() - started
    report = dict(vault.searcher.report)
    vault.close()  # saves a snapshot for these settings: put the old one back after
    return seconds, report


def run(args: argparse.Namespace) -> dict[str, Any]:
    emb = get_embedder("minilm")
    emb.embed(["warm up"])  # weights load outside the timings
    work = Path(tempfile.mkdtemp(prefix="bench-reindex-"))
    try:
        path = work / "v.db"
        settings = Settings(path=path, embedder=emb.id, index_context="thread",
                            search=SearchConfig(third_person=False))
        turns = 0
        with Vault(settings=settings, embedder=emb) as vault:
            for conv in locomo.load(args.locomo):
                locomo.ingest(vault, conv)
                turns += len(conv.turns)
        snapshot = settings.resolved_index_dir
        saved = work / "snapshot"
        shutil.copytree(snapshot, saved)
        cases = {"baseline": (True, False), "settings change": (True, True),
                 "snapshot loads": (False, True)}
        timings: dict[str, list[float]] = {name: [] for name in cases}
        reports: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeats):
            for name, (third, keep) in cases.items():
                shutil.rmtree(snapshot, ignore_errors=True)
                if keep:
                    shutil.copytree(saved, snapshot)
                seconds, reports[name] = _open(path, emb, third)
                timings[name].append(seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {name: round(statistics.median(t), 3) for name, t in timings.items()}
    return {"turns": turns, "repeats": args.repeats, "open_s": median, "timings_s": timings,
            "reports": {name: {k: r.get(k) for k in ("index", "indexed", "reused", "embedded")}
                        for name, r in reports.items()},
            "vs_baseline": {name: round(s / median["baseline"], 3) for name, s in median.items()}}


def markdown(r: dict[str, Any]) -> str:
    rows = []
    for name, seconds in r["open_s"].items():
        rep = r["reports"][name]
        what = rep["index"].split(" (")[0]
        rows.append((f"open, {name}: {what}, sentence vectors reused {rep['reused']}, "
                     f"embedded {rep['embedded']}", f"{seconds} s",
                     f"{r['vs_baseline'][name]:.3f}x"))
    return measure_table(f"Index rebuild benchmark ({r['turns']} LoCoMo turns, MiniLM)", rows,
                         r["env"], f"median of {r['repeats']} opens each, after ingesting "
                         "with third-person sentences off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locomo", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    result = run(args)
    result["env"] = machine(load_start)
    write(args.out, "reindex", result, markdown)


if __name__ == "__main__":
    main()
