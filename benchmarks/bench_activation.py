#!/usr/bin/env python
"""Activation memory: time-to-first-token with a cached memory block vs recomputing it.

    python benchmarks/bench_activation.py --tokens 1500 --repeats 3 --out benchmarks/results

With the bundled SmolLM2-135M (one torch thread): a memory block of at least ``--tokens``
tokens (synthetic facts rendered as the system message, exactly as ``Vault.chat`` renders
a scope's block) is built once and saved as fp16 safetensors. Then, ``--repeats`` times,
interleaved so machine load hits all variants alike, the first token of the answer to a
question after the block is generated three ways:

* *recompute*: the whole prompt is prefilled (the baseline);
* *cached (memory)*: the loaded block is copied into a fresh ``DynamicCache`` and only the
  question is prefilled (what ``Vault.chat`` does once the block is loaded);
* *cached (disk)*: the same, but the block is first read from disk (checksum, fp16 ->
  fp32) by a new ``ActivationStore``: the cost of the first use in a new process.

It also checks that greedy output (``--check-tokens`` tokens) is identical with and
without the cache, and records the block's size on disk per token and save/load times.
Writes ``activation.json`` and ``activation.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memvault.chat import system_messages, user_message
from memvault.activation.blocks import ActivationStore, build_block
from memvault.types import MemoryItem

PEOPLE = "Alice Bob Carmen Dmitri Emeka Farah Goran Hana Ivan Jun Keiko Liam Maya".split()
THINGS = ("violin", "kayak", "teapot", "compass", "bicycle", "lantern", "chessboard",
          "passport", "umbrella", "telescope", "notebook", "guitar")
CITIES = ("Porto", "Oslo", "Kyoto", "Lagos", "Quito", "Dublin", "Hanoi", "Tunis", "Lima")


def facts(n: int) -> list[MemoryItem]:
    out = []
    for i in range(n):
        who, what = PEOPLE[i % len(PEOPLE)], THINGS[(i * 7) % len(THINGS)]
        where = CITIES[(i * 5) % len(CITIES)]
        out.append(MemoryItem(id=f"f{i}", kind="fact", user_id="bench",
                              text=f"Fact {i}: the user's friend {who} keeps a {what} "
                                   f"in a flat in {where}."))
    return out


def block_of_at_least(llm: Any, tokens: int) -> list[MemoryItem]:
    n = 16
    while True:
        items = facts(n)
        ids = llm.encode_chat(system_messages(items), add_generation_prompt=False)
        if ids.shape[-1] >= tokens:
            return items
        n = int(n * max(1.1, tokens / ids.shape[-1])) + 1


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--tokens", type=int, default=1500, help="minimum block size in tokens")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)

    import torch

    from memvault.models.local import load_local_llm

    torch.set_num_threads(args.threads)
    load_avg_start = os.getloadavg()
    load_s, llm = timed(load_local_llm)
    items = block_of_at_least(llm, args.tokens)
    prefix = system_messages(items)
    question = user_message("Which city is the telescope of Ivan in?", [])
    ids = llm.encode_chat([*prefix, question])

    workdir = Path(tempfile.mkdtemp(prefix="memvault-bench-activation-"))
    build_s, loaded = timed(lambda: build_block(llm, prefix, items=items))
    block = loaded.block
    assert loaded.matches_prefix(ids), "the block's tokens must prefix the prompt"
    save_s, saved = timed(lambda: ActivationStore(workdir).save(loaded, name="bench"))
    path = workdir / block.fingerprint.key / f"{block.hash}.safetensors"
    disk_bytes = path.stat().st_size

    def recompute() -> float:
        return timed(lambda: llm.generate_ids(ids, max_tokens=1))[0]

    def cached_memory() -> float:
        return timed(lambda: llm.generate_ids(ids, max_tokens=1,
                                              cache=loaded.fresh_cache(llm)))[0]

    load_times: list[float] = []

    def cached_disk() -> float:
        def run() -> Any:
            t, from_disk = timed(lambda: ActivationStore(workdir).load(llm, saved))
            load_times.append(t)
            return llm.generate_ids(ids, max_tokens=1,
                                    cache=from_disk.fresh_cache(llm))
        return timed(run)[0]

    cached_memory()  # warm-up: first-call allocations, not what a user waits for
    runs: dict[str, list[float]] = {"recompute": [], "cached_memory": [], "cached_disk": []}
    for _ in range(args.repeats):
        runs["recompute"].append(recompute())
        runs["cached_memory"].append(cached_memory())
        runs["cached_disk"].append(cached_disk())

    reference = llm.generate_ids(ids, max_tokens=args.check_tokens).tolist()
    from_disk = ActivationStore(workdir).load(llm, saved)
    with_cache = llm.generate_ids(ids, max_tokens=args.check_tokens,
                                  cache=from_disk.fresh_cache(llm)).tolist()
    median = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "model": llm.id, "fingerprint": llm.fingerprint.to_dict(),
        "block_tokens": block.n_tokens, "prompt_tokens": int(ids.shape[-1]),
        "block_facts": len(items), "repeats": args.repeats,
        "ttft_s": {k: [round(x, 4) for x in v] for k, v in runs.items()},
        "ttft_median_s": {k: round(v, 4) for k, v in median.items()},
        "ratio_cached_memory_vs_recompute": round(median["cached_memory"] / median["recompute"], 4),
        "ratio_cached_disk_vs_recompute": round(median["cached_disk"] / median["recompute"], 4),
        "goal_ratio": 0.10,
        "identical_greedy_output": reference == with_cache, "checked_tokens": len(reference),
        "disk_bytes": disk_bytes, "disk_bytes_per_token_fp16": round(disk_bytes / block.n_tokens, 1),
        "memory_bytes_fp32": loaded.nbytes,
        "build_s": round(build_s, 4), "save_s": round(save_s, 4),
        "load_from_disk_s_median": round(statistics.median(load_times), 4),
        "model_load_s": round(load_s, 2),
        "env": {"python": sys.version.split()[0], "torch": torch.__version__,
                "platform": platform.platform(), "cpus": os.cpu_count(),
                "torch_threads": args.threads, "loadavg_start": load_avg_start,
                "loadavg_end": os.getloadavg()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "activation.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "activation.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["identical_greedy_output"] else 1


def markdown(r: dict[str, Any]) -> str:
    m = r["ttft_median_s"]
    ok = "PASS" if r["ratio_cached_memory_vs_recompute"] <= r["goal_ratio"] else "FAIL"
    return "\n".join([
        "# Activation memory: TTFT with a cached block vs recompute",
        "",
        f"Model `{r['model']}`, block of {r['block_tokens']} tokens ({r['block_facts']} facts) "
        f"+ question = {r['prompt_tokens']} prompt tokens; median of {r['repeats']} "
        f"interleaved repeats, {r['env']['torch_threads']} torch thread(s); load average "
        f"{r['env']['loadavg_start'][0]:.1f} at start, {r['env']['loadavg_end'][0]:.1f} at end.",
        "",
        "| variant | TTFT median (s) | all runs (s) | vs recompute |",
        "|---|---:|---|---:|",
        f"| recompute (baseline) | {m['recompute']:.3f} | {r['ttft_s']['recompute']} | 1.00 |",
        f"| cached, block in memory | {m['cached_memory']:.3f} | {r['ttft_s']['cached_memory']} "
        f"| {r['ratio_cached_memory_vs_recompute']:.3f} ({ok}, goal <= {r['goal_ratio']}) |",
        f"| cached, block read from disk | {m['cached_disk']:.3f} | {r['ttft_s']['cached_disk']} "
        f"| {r['ratio_cached_disk_vs_recompute']:.3f} |",
        "",
        "| block | value |",
        "|---|---:|",
        f"| greedy output identical ({r['checked_tokens']} tokens) | {r['identical_greedy_output']} |",
        f"| on disk (fp16 safetensors) | {r['disk_bytes'] / 2**20:.1f} MiB |",
        f"| bytes per token on disk (fp16) | {r['disk_bytes_per_token_fp16']:.0f} |",
        f"| in memory (fp32) | {r['memory_bytes_fp32'] / 2**20:.1f} MiB |",
        f"| build (prefill) | {r['build_s']:.2f} s |",
        f"| save | {r['save_s'] * 1e3:.0f} ms |",
        f"| load from disk (checksum + fp16->fp32), median | {r['load_from_disk_s_median'] * 1e3:.0f} ms |",
        f"| model load | {r['model_load_s']:.1f} s |",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
