#!/usr/bin/env python
"""Lifecycle benchmark: what links, consolidation and a scheduler pass cost.

    python benchmarks/bench_lifecycle.py --size 5000 --sessions 100 --out benchmarks/results

Writes ``lifecycle.json`` and ``lifecycle.md``. Every cost is shown next to a baseline
measured in the same run on the same vault:

* auto-link on add: ``Vault.add`` p50 with ``Settings.auto_link`` on vs off;
* scheduler linking: ``link_new`` per new memory vs one plain ``Vault.add``;
* consolidation: the incremental pass after one session changed vs the first full pass
  (and how many summaries each rewrote: the incremental one must rewrite exactly one);
* a scheduler pass with nothing new (heat over every memory, forget plan) vs the first.

Memories come from the core benchmark's synthetic corpus (people, places, dates).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, measure_table, write  # noqa: E402
from bench_core import Corpus  # noqa: E402  (the shared synthetic corpus)

import bench_summary_tier  # noqa: E402
import dedup_quality  # noqa: E402
import lifecycle_quality  # noqa: E402

from memvault import Vault  # noqa: E402
from memvault.scheduler import Scheduler, consolidate, link_new, plan_forget  # noqa: E402


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def p50_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def add_latency(vault: Vault, corpus: Corpus, start: int, n: int, auto_link: bool) -> list[float]:
    vault.settings = vault.settings.replace(auto_link=auto_link)
    out = []
    for rec in corpus.records(start, start + n):
        t, _ = timed(lambda: vault.add(**rec))
        out.append(t)
    vault.settings = vault.settings.replace(auto_link=False)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    n, sessions, turns = args.size, args.sessions, args.turns
    extra = 2 * args.adds + args.link_batch
    corpus = Corpus(n + extra + sessions * turns + 1)
    work = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    res: dict[str, Any] = {"size": n, "sessions": sessions, "turns_per_session": turns,
                           "embedder": args.embedder}
    try:
        vault = Vault(work / "v.db", embedder=args.embedder)
        t, _ = timed(lambda: vault.add_many(corpus.records(0, n)))
        res["base_ingest_s"] = round(t, 2)
        vault.store.set_meta("lifecycle.link_watermark", str(vault.store.last_change()))
        pos = n
        plain = add_latency(vault, corpus, pos, args.adds, auto_link=False)
        pos += args.adds
        linked = add_latency(vault, corpus, pos, args.adds, auto_link=True)
        pos += args.adds
        res["add_p50_ms"] = p50_ms(plain)
        res["add_auto_link_p50_ms"] = p50_ms(linked)
        res["auto_link_ratio"] = round(res["add_auto_link_p50_ms"] / res["add_p50_ms"], 2)

        vault.store.set_meta("lifecycle.link_watermark", str(vault.store.last_change()))
        vault.add_many(corpus.records(pos, pos + args.link_batch))
        pos += args.link_batch
        t, rep = timed(lambda: link_new(vault))
        res["link_new_ms_per_item"] = round(1000 * t / args.link_batch, 2)
        res["link_new_links"] = rep.links
        res["link_vs_add_ratio"] = round(res["link_new_ms_per_item"] / res["add_p50_ms"], 2)

        records = []
        for s in range(sessions):
            user = f"user{s % 20:03d}"
            for rec in corpus.records(pos, pos + turns):
                records.append({"text": rec["text"], "kind": "turn", "user_id": user,
                                "session_id": f"s{s:04d}",
                                "metadata": {"speaker": ("Ana", "Ben")[len(records) % 2]}})
                pos += 1
        vault.add_many(records)
        t_full, full = timed(lambda: consolidate(vault))
        vault.add("One more thing: Ana moved to Porto.", kind="turn", user_id="user000",
                  session_id="s0000", metadata={"speaker": "Ana"})
        t_inc, inc = timed(lambda: consolidate(vault))
        res.update({
            "consolidate_full_s": round(t_full, 3),
            "consolidate_full_written": dict(full.created),
            "consolidate_incremental_s": round(t_inc, 3),
            "consolidate_incremental_rewritten": dict(inc.rewritten),
            "consolidate_incremental_vs_full": round(t_inc / t_full, 4),
        })

        sched = Scheduler()
        t_first, first = timed(lambda: sched.run_once(vault))
        t_idle, idle = timed(lambda: sched.run_once(vault))
        t_plan, _ = timed(lambda: plan_forget(vault))
        res.update({"scheduler_first_pass_s": round(t_first, 3),
                    "scheduler_idle_pass_s": round(t_idle, 3),
                    "scheduler_items": idle.items,
                    "forget_plan_s": round(t_plan, 3),
                    "idle_vs_first_ratio": round(t_idle / t_first, 3)})
        vault.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def markdown(r: dict[str, Any]) -> str:
    rows = [
        ("Vault.add p50, auto_link off (baseline)", f"{r['add_p50_ms']} ms", ""),
        ("Vault.add p50, auto_link on", f"{r['add_auto_link_p50_ms']} ms",
         f"{r['auto_link_ratio']}x the baseline"),
        ("link_new per new memory (scheduler)", f"{r['link_new_ms_per_item']} ms",
         f"{r['link_vs_add_ratio']}x one add; links {r['link_new_links']}"),
        (f"consolidate, first pass ({r['sessions']} sessions)", f"{r['consolidate_full_s']} s",
         f"wrote {r['consolidate_full_written']}"),
        ("consolidate, after 1 session changed", f"{r['consolidate_incremental_s']} s",
         f"{r['consolidate_incremental_vs_full']}x the first pass; rewrote "
         f"{r['consolidate_incremental_rewritten']}"),
        ("scheduler pass, first", f"{r['scheduler_first_pass_s']} s", ""),
        (f"scheduler pass, nothing new ({r['scheduler_items']} memories)",
         f"{r['scheduler_idle_pass_s']} s", f"{r['idle_vs_first_ratio']}x the first pass"),
        ("forget plan (full scan)", f"{r['forget_plan_s']} s", ""),
    ]
    return measure_table(f"Lifecycle benchmark ({r['size']} memories, embedder {r['embedder']})",
                         rows, r["env"], f"ingest of the base vault {r['base_ingest_s']} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--adds", type=int, default=100)
    ap.add_argument("--link-batch", type=int, default=300)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--locomo", help="LoCoMo file for the consolidation quality figures")
    ap.add_argument("--gen", nargs="*", default=[], help="generated-suite files (same format)")
    ap.add_argument("--convs", type=int, default=1, help="conversations per suite")
    ap.add_argument("--ratios", type=float, nargs="*", default=[0.1, 0.15, 0.25, 0.4])
    ap.add_argument("--quality-embedder", default="minilm")
    ap.add_argument("--quality-only", action="store_true")
    ap.add_argument("--tier-only", action="store_true",
                    help="run only the summary tier part and replace it in the existing "
                         "lifecycle.json/.md (the other parts keep their last figures)")
    ap.add_argument("--tier-limit", type=int, default=2,
                    help="conversations per suite for the summary tier (0: skip it)")
    ap.add_argument("--tier-scale", type=int, default=100_000,
                    help="memories of the one-owner vault where the tiers are compared at "
                         "scale: quality, p50/p95 (0: skip)")
    ap.add_argument("--tier-scale-limit", type=int, default=1,
                    help="conversations per suite evaluated in that vault")
    ap.add_argument("--tier-questions", type=int, default=200,
                    help="questions per suite at most, in that vault")
    ap.add_argument("--tier-cache", help="keep that vault here and reuse it when the inputs "
                                         "are the same (its build figures come from the "
                                         "run that built it)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    # a quality-only run leaves the cost figures of the last full run in place
    name = "lifecycle-quality" if args.quality_only else "lifecycle"

    def save(stage: str) -> None:
        """Write what is measured so far (a long run that fails keeps its first parts)."""
        result["env"] = machine(load_start)
        stages.append(stage)
        result["env"]["stages_done"] = list(stages)
        write(args.out, name, result, full_markdown)

    stages: list[str] = []
    result: dict[str, Any] = {}
    if args.tier_only:  # the other parts (and their "env") keep their last figures
        previous = Path(args.out) / "lifecycle.json"
        result = json.loads(previous.read_text()) if previous.exists() else {}
        tier = result.get("summary_tier", {})
        if args.tier_limit:  # --tier-limit 0: keep the single-conversation rows
            scale = tier.get("scale")
            tier = bench_summary_tier.run(args.locomo, args.gen, args.tier_limit, 0,
                                          args.tier_questions, args.quality_embedder)
            tier["env"] = machine(load_start)
            if scale is not None and not args.tier_scale:
                tier["scale"] = scale
        if args.tier_scale:  # the scale rows alone (:mod:`tier_scale`), with their load
            paths = [p for p in [args.locomo, *args.gen] if p]
            tier["scale"] = bench_summary_tier.tier_scale.run(
                paths, args.tier_scale_limit, args.tier_scale, args.quality_embedder,
                args.tier_questions, args.tier_cache)
            tier["scale"]["env"] = machine(load_start)
        result["summary_tier"] = tier
        write(args.out, name, result, full_markdown)
        return
    if not args.quality_only:
        result.update(run(args))
        save("costs")
    if args.locomo or args.gen:
        result["quality"] = lifecycle_quality.run(args.locomo, args.gen, args.convs,
                                                  args.quality_embedder, args.ratios)
        save("quality")
        if args.tier_limit:
            result["summary_tier"] = bench_summary_tier.run(
                args.locomo, args.gen, args.tier_limit, args.tier_scale, args.tier_questions,
                args.quality_embedder, scale_limit=args.tier_scale_limit,
                cache=args.tier_cache)
            save("summary_tier")
    result["dedup"] = dedup_quality.run(args.quality_embedder)
    save("dedup")


def full_markdown(r: dict[str, Any]) -> str:
    text = markdown(r) if "size" in r else ""
    if "quality" in r:
        text += "\n" + lifecycle_quality.markdown(r["quality"])
    if "summary_tier" in r:
        text += "\n" + bench_summary_tier.markdown(r["summary_tier"])
    if "dedup" in r:
        text += "\n" + dedup_quality.markdown(r["dedup"])
    if "quality" in r:
        text += (f"\nMachine load {r['env']['load_start']} -> {r['env']['load_end']}.\n"
                 if "size" not in r else "")
    return text


if __name__ == "__main__":
    main()
