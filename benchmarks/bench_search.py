#!/usr/bin/env python
"""``Vault.search`` latency, this tree against a baseline tree, on the same vaults in one run.

    python benchmarks/bench_search.py --baseline-src /path/to/other/checkout/src \\
        --sizes 10000 100000 --embedders hash minilm --locomo PATH --convs 2

Each vault is built once (synthetic ``bench_core`` memories through ``add_many``; LoCoMo
turns through ``add_messages`` per session, user = conversation, as ``bench_peers``),
then for every round each tree opens its own copy in a fresh process and answers the same
questions: synthetic ones unscoped (as ``bench_core``), LoCoMo ones scoped to their
conversation, k=10, every query text new to the query cache (cold). Per tree: p50/p95 of
the whole search and of the BM25 stage alone (``store.lexical``), and a digest of every
answer (ids and scores to 9 decimals): the two trees must return the same hits.
Rounds alternate the trees, so load drift hits both; the figures are the median of the
rounds' percentiles and the ratio this / baseline. The 1-minute load average is recorded
beside each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CHILD = r"""
import json, sys, time, hashlib
from memvault import Vault
from memvault.retrieval.text import terms
from memvault.storage.base import RowQuery
db, embedder, qfile = sys.argv[1], sys.argv[2], sys.argv[3]
questions = json.loads(open(qfile).read())
def pct(xs):
    s = sorted(xs)
    at = lambda p: s[min(len(s) - 1, int(round(p * (len(s) - 1))))] * 1e3
    return {"p50_ms": round(at(0.5), 3), "p95_ms": round(at(0.95), 3), "n": len(s)}
with Vault(db, embedder=embedder) as v:
    for q, user in questions[:5]:  # warm-up (not timed, then cleared from the cache)
        v.search(q + " warm", user_id=user, k=10)
    e2e, digest = [], hashlib.sha256()
    for q, user in questions:
        t = time.perf_counter()
        hits = v.search(q, user_id=user, k=10)
        e2e.append(time.perf_counter() - t)
        digest.update(json.dumps([[h.item.id, round(h.score, 9)] for h in hits]).encode())
    lex = []
    for q, user in questions:
        rq = RowQuery(scope={"user_id": user} if user else {})
        t = time.perf_counter()
        v.store.lexical(terms(q), rq, 40)
        lex.append(time.perf_counter() - t)
print(json.dumps({"e2e": pct(e2e), "lexical": pct(lex), "digest": digest.hexdigest(),
                  "load1": round(__import__("os").getloadavg()[0], 2)}))
"""


def build_synthetic(db: Path, n: int, embedder: str) -> None:
    from bench_core import Corpus
    from memvault import Vault

    corpus = Corpus(n)
    with Vault(db, embedder=embedder) as vault:
        vault.add_many(corpus.records(0, n), batch_size=1000)
        vault.searcher.sync()


def build_locomo(db: Path, path: Path, convs: int, embedder: str) -> list[list[Any]]:
    from memvault import Vault
    from memvault.evaluation.locomo import load

    conversations = load(path)[:convs]
    with Vault(db, embedder=embedder) as vault:
        for c in conversations:
            sessions: dict[int, list[Any]] = {}
            for t in c.turns:
                sessions.setdefault(t.session, []).append(t)
            for turns in sessions.values():
                vault.add_messages([{"role": "user", "name": t.speaker, "content": t.text,
                                     "timestamp": t.date.isoformat(),
                                     "metadata": {"dia_id": t.dia_id}} for t in turns],
                                   user_id=c.sample_id)
        vault.searcher.sync()
    return [[q.question, c.sample_id] for c in conversations for q in c.questions]


def run_child(src: Path, db: Path, embedder: str, qfile: Path, work: Path) -> dict[str, Any]:
    copy = work / "run.db"
    for p in work.glob("run.db*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    shutil.copy(db, copy)
    index = Path(f"{db}.index")
    if index.is_dir():
        shutil.copytree(index, Path(f"{copy}.index"))
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(copy), embedder, str(qfile)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the run with {src} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-src", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10000])
    ap.add_argument("--embedders", nargs="+", default=["hash"])
    ap.add_argument("--locomo", type=Path, default=None)
    ap.add_argument("--convs", type=int, default=2)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--vaults", type=Path, default=None,
                    help="keep built vaults here and reuse them (<kind>-<embedder>-<n>.db)")
    ap.add_argument("--name", default="search")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    this_src = HERE.parent / "src"
    from tqdm import tqdm

    from bench_core import Corpus

    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    vaults = args.vaults or work
    vaults.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[str, str, Path, Path]] = []  # (label, embedder, db, questions file)
    for embedder in args.embedders:
        for n in args.sizes:
            db = vaults / f"synthetic-{embedder}-{n}.db"
            if not db.exists():
                print(f"building {db.name}", file=sys.stderr, flush=True)
                build_synthetic(db, n, embedder)
            qs = [[q, None] for q in Corpus(n).queries(args.queries, n, 5)]
            qfile = work / f"q-synthetic-{n}.json"
            qfile.write_text(json.dumps(qs))
            cases.append((f"synthetic {n:,}", embedder, db, qfile))
        if args.locomo is not None:
            db = vaults / f"locomo-{embedder}-{args.convs}.db"
            qfile = work / f"q-locomo-{args.convs}.json"
            if not db.exists():
                print(f"building {db.name}", file=sys.stderr, flush=True)
                qs = build_locomo(db, args.locomo, args.convs, embedder)
            else:
                from memvault.evaluation.locomo import load

                qs = [[q.question, c.sample_id] for c in load(args.locomo)[:args.convs]
                      for q in c.questions]
            qfile.write_text(json.dumps(qs))
            cases.append((f"LoCoMo dev ({args.convs} conv., {len(qs)} q.)", embedder, db, qfile))

    rows: list[dict[str, Any]] = []
    trees = (("baseline", args.baseline_src.resolve()), ("this", this_src))
    with tqdm(total=len(cases) * args.rounds * 2, desc="search runs") as bar:
        for label, embedder, db, qfile in cases:
            runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "this": []}
            for _ in range(args.rounds):
                for tree, src in trees:
                    runs[tree].append(run_child(src, db, embedder, qfile, work))
                    bar.update(1)
            row: dict[str, Any] = {"case": label, "embedder": embedder}
            for tree in runs:
                for stage in ("e2e", "lexical"):
                    for p in ("p50_ms", "p95_ms"):
                        row[f"{tree}_{stage}_{p}"] = round(statistics.median(
                            r[stage][p] for r in runs[tree]), 3)
                row[f"{tree}_load1"] = [r["load1"] for r in runs[tree]]
                row[f"{tree}_rounds"] = [{"e2e": r["e2e"], "lexical": r["lexical"]}
                                         for r in runs[tree]]
            digests = {r["digest"] for rs in runs.values() for r in rs}
            row["same_hits"] = len(digests) == 1
            for stage in ("e2e", "lexical"):
                row[f"{stage}_p50_ratio"] = round(row[f"this_{stage}_p50_ms"]
                                                  / row[f"baseline_{stage}_p50_ms"], 3)
            rows.append(row)
    shutil.rmtree(work, ignore_errors=True)

    result = {"bench": "search", "baseline_src": str(args.baseline_src), "rounds": args.rounds,
              "queries": args.queries, "k": 10, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                       time.gmtime()),
              "cpus": os.cpu_count(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Vault.search, this tree vs baseline ({result['date']})", "",
             f"Same vaults, same questions, each tree in a fresh process, {args.rounds} "
             "rounds alternating the trees (median of the rounds), k=10, cold query cache. "
             f"Baseline: `{args.baseline_src}`. `{' '.join(sys.argv)}`", "",
             "| case | embedder | e2e p50 base / this (ms) | e2e p95 base / this | "
             "ratio p50 | BM25 p50 base / this | same hits | load (1 min) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['embedder']} | {r['baseline_e2e_p50_ms']} / "
            f"{r['this_e2e_p50_ms']} | {r['baseline_e2e_p95_ms']} / {r['this_e2e_p95_ms']} | "
            f"{r['e2e_p50_ratio']}x | {r['baseline_lexical_p50_ms']} / "
            f"{r['this_lexical_p50_ms']} | {'yes' if r['same_hits'] else 'NO'} | "
            f"{min(r['baseline_load1'] + r['this_load1'])}-"
            f"{max(r['baseline_load1'] + r['this_load1'])} |")
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not all(r["same_hits"] for r in rows):
        raise SystemExit("the trees returned different hits")


if __name__ == "__main__":
    main()
