#!/usr/bin/env python
"""Memory tiers benchmark: what the scheduler's moves cost and what chat gains from them.

    python benchmarks/bench_tiers.py --facts 30 --steps 8 --out benchmarks/results

Writes ``tiers.json`` and ``tiers.md``. On one vault (hash embedder, the bundled SmolLM2,
one torch thread), baselines measured in the same run:

* a scheduler pass with the real tiers (``scheduler.for_vault``: promote the hottest facts
  into a KV-cache block, distil them into the scope's LoRA adapter, waiting for it) vs a
  pass of the same scheduler config without tiers;
* ``Vault.chat`` with ``max_tokens=1`` (about the time to first token), median over the
  queries: the promoted block as ``past_key_values`` without the adapter (the baseline)
  vs the default (block + the scope's adapter: what the adapter costs) vs plaintext only
  (``activation=False, adapter=False``: k retrieved facts, no block, so a shorter prompt
  that holds less; its token count is shown beside it).
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
from memvault import Vault
from memvault.scheduler import PlacementConfig, Scheduler, SchedulerConfig, for_vault

QUERIES = ["What is my cat called?", "Where do I work?", "Which city do I like best?",
           "What do I do on Sundays?", "What is my sister's name?"]


def facts(n: int) -> list[str]:
    base = ["Zoe's cat is called Miso.", "Zoe works at Acme Robotics in Lyon.",
            "Zoe's favourite city is Kyoto.", "Zoe plays football on Sundays.",
            "Zoe's sister is called Ines."]
    extra = [f"Zoe's project number {i} is about topic {i * 7 % 13} and started in "
             f"{2010 + i % 14}." for i in range(max(0, n - len(base)))]
    return (base + extra)[:n]


def chat_ms(vault: Vault, llm: Any, **kw: Any) -> tuple[float, dict[str, Any]]:
    vault.chat(QUERIES[0], llm=llm, max_tokens=1, user_id="zoe", **kw)  # warm: build/load
    samples, last = [], None
    for q in QUERIES:
        started = time.perf_counter()
        last = vault.chat(q, llm=llm, max_tokens=1, user_id="zoe", **kw)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 1), {
        "activation": last.activation, "cached_tokens": last.cached_tokens,
        "prompt_tokens": last.prompt_tokens, "adapter": last.adapter}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from memvault.models.local import load_local_llm

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-tiers-"))
    try:
        vault = Vault(work / "v.db", embedder="hash")
        items = [vault.add(t, kind="fact", user_id="zoe") for t in facts(args.facts)]
        for _ in range(4):
            for item in items:
                vault.get(item.id)
        vault.flush()
        t0 = time.perf_counter()
        llm = load_local_llm()
        load_s = time.perf_counter() - t0
        config = SchedulerConfig(forget=None, link=None, consolidate=None,
                                 placement=PlacementConfig(promote_top=args.facts,
                                                           distill_stable_days=0,
                                                           distill_min_access=3))
        t0 = time.perf_counter()
        Scheduler(config).run_once(vault)
        plain_pass = time.perf_counter() - t0
        sched = for_vault(vault, llm, config, steps=args.steps, batch_size=8)
        t0 = time.perf_counter()
        report = sched.run_once(vault, wait=True).steps["placement"]
        tier_pass = time.perf_counter() - t0
        assert not report["errors"], report["errors"]
        t0 = time.perf_counter()
        idle = sched.run_once(vault, wait=True).steps["placement"]
        idle_pass = time.perf_counter() - t0
        assert not idle["promoted"] and not idle["queued"]
        base_ms, base = chat_ms(vault, llm, activation=False, adapter=False)
        all_ms, full = chat_ms(vault, llm)
        block_ms, block = chat_ms(vault, llm, adapter=False)
        vault.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "facts": args.facts, "distill_steps": args.steps, "model_load_s": round(load_s, 1),
        "pass_without_tiers_s": round(plain_pass, 3), "pass_with_tiers_s": round(tier_pass, 2),
        "pass_idle_with_tiers_s": round(idle_pass, 3),
        "promoted_items": len(report["promoted"][0]["items"]),
        "distilled": [d.get("key") for d in report["distilled"]],
        "chat_plaintext_ms": base_ms, "chat_all_three_ms": all_ms, "chat_block_only_ms": block_ms,
        "all_three_vs_block_only": round(all_ms / block_ms, 3),
        "plaintext_vs_block_only": round(base_ms / block_ms, 3),
        "chat_plaintext": base, "chat_all_three": full, "chat_block_only": block,
    }


def markdown(r: dict[str, Any]) -> str:
    rows = [
        ("scheduler pass, no tiers (baseline)", f"{r['pass_without_tiers_s']} s", ""),
        (f"scheduler pass with tiers: promote {r['promoted_items']} facts + distil "
         f"{r['distill_steps']} steps (waited)", f"{r['pass_with_tiers_s']} s", ""),
        ("next pass, nothing changed", f"{r['pass_idle_with_tiers_s']} s", "no rebuild, no queue"),
        ("chat, block without adapter (baseline), max_tokens=1",
         f"{r['chat_block_only_ms']} ms",
         f"{r['chat_block_only']['cached_tokens']} of {r['chat_block_only']['prompt_tokens']} "
         "prompt tokens cached"),
        ("chat, block + adapter (the default)", f"{r['chat_all_three_ms']} ms",
         f"{r['all_three_vs_block_only']}x; "
         f"{r['chat_all_three']['cached_tokens']} tokens cached"),
        ("chat, plaintext only (k retrieved facts, no block)", f"{r['chat_plaintext_ms']} ms",
         f"{r['plaintext_vs_block_only']}x; {r['chat_plaintext']['prompt_tokens']} prompt "
         "tokens, none cached"),
    ]
    return measure_table(f"Memory tiers benchmark ({r['facts']} hot facts, SmolLM2, 1 thread)",
                         rows, r["env"], f"model load {r['model_load_s']} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", type=int, default=30)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    result = run(args)
    result["env"] = machine(load_start)
    write(args.out, "tiers", result, markdown)


if __name__ == "__main__":
    main()
