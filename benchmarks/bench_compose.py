#!/usr/bin/env python
"""Blocks composed in any order: time to first token and answer agreement vs recompute.

    python benchmarks/bench_compose.py --questions 10 --k 12 --out benchmarks/results

With the bundled SmolLM2-135M (one torch thread), ``--facts`` synthetic memories are
stored in a real vault (hash embedder). For each of ``--questions`` questions, the top
``--k`` memories are retrieved (``Vault.search``, in the order it returns them) and
rendered exactly as ``Vault.chat`` renders them; every memory line is a chunk whose KV
is computed once and cached (:mod:`memvault.activation.compose`, warmed before timing,
as it would be after the memory's first use). Then, per recompute fraction:

* TTFT: compose the chunks' KV (re-rotating keys to their offsets) + prefill the
  recomputed tail and the question + the first token, vs a full prefill of the same
  token ids + the first token (the baseline, timed in the same loop, paired per
  question: the ratio is the median of per-question ratios);
* agreement: the greedy reply's first ``--check-tokens`` tokens are identical to the
  full prefill's (and, separately, the first token).

Writes ``compose.json`` and ``compose.md`` to ``--out``.
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

from _results import machine, write  # noqa: E402
from bench_activation import facts  # noqa: E402


def questions(n: int, pool: int) -> list[str]:
    out = []
    for i in range(n):
        f = facts(pool)[(i * 37) % pool].text  # "Fact i: the user's friend W keeps a X in ..."
        who = f.split("friend ")[1].split(" keeps")[0]
        what = f.split("keeps a ")[1].split(" in a flat")[0]
        out.append(f"Where does my friend {who} keep the {what}?")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--facts", type=int, default=200)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--k", type=int, default=12)
    p.add_argument("--fractions", default="0,0.1,0.25,0.5,1")
    p.add_argument("--check-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    load_start = os.getloadavg()[0]

    import torch

    from memvault import Vault
    from memvault.activation.compose import ChunkCache, compose, prompt_pieces
    from memvault.activation.tier import INSTRUCTIONS
    from memvault.chat import MEMORY_MARKER, memory_lines, system_messages, user_message
    from memvault.models.local import load_local_llm

    torch.set_num_threads(args.threads)
    fractions = [float(x) for x in args.fractions.split(",")]
    llm = load_local_llm()
    work = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    vault = Vault(work / "v.db", embedder="hash")
    for item in facts(args.facts):
        vault.add(item.text, kind="fact", user_id="bench")
    cache = ChunkCache()
    rows: list[dict[str, Any]] = []
    for n, q in enumerate(questions(args.questions, args.facts), 1):
        print(f"[bench-compose {time.strftime('%H:%M:%S')}] question {n}/{args.questions}",
              file=sys.stderr, flush=True)
        hits = vault.search(q, k=args.k, user_id="bench")
        messages = [*system_messages([], INSTRUCTIONS), user_message(q, hits)]
        head, chunks, tail = prompt_pieces(llm, messages, memory_lines(hits), MEMORY_MARKER)
        compose(llm, head, chunks, tail, cache=cache)  # warm: every chunk's KV cached
        full = torch.tensor([head + [t for c in chunks for t in c] + tail])
        reference = llm.generate_ids(full, max_tokens=args.check_tokens).tolist()
        row: dict[str, Any] = {"question": q, "prompt_tokens": int(full.shape[-1]),
                               "chunk_tokens": sum(map(len, chunks)), "fractions": {}}
        t = time.perf_counter()
        llm.generate_ids(full, max_tokens=1)
        row["ttft_full_s"] = time.perf_counter() - t
        for r in fractions:
            t = time.perf_counter()
            c = compose(llm, head, chunks, tail, recompute=r, cache=cache)
            llm.generate_ids(c.input_ids, max_tokens=1, cache=c.cache)
            ttft = time.perf_counter() - t
            c = compose(llm, head, chunks, tail, recompute=r, cache=cache)
            out = llm.generate_ids(c.input_ids, max_tokens=args.check_tokens,
                                   cache=c.cache).tolist()
            row["fractions"][str(r)] = {"ttft_s": ttft, "identical": out == reference,
                                        "first_token": out[:1] == reference[:1],
                                        "cached_tokens": c.cached,
                                        "reply": llm.decode(out)}
        row["reference"] = llm.decode(reference)
        rows.append(row)
    vault.close()
    curve = []
    for r in fractions:
        per = [x["fractions"][str(r)] for x in rows]
        curve.append({
            "recompute": r,
            "ttft_ratio_median": statistics.median(p["ttft_s"] / x["ttft_full_s"]
                                                   for p, x in zip(per, rows)),
            "ttft_ms_median": 1e3 * statistics.median(p["ttft_s"] for p in per),
            "identical": sum(p["identical"] for p in per) / len(per),
            "first_token_identical": sum(p["first_token"] for p in per) / len(per)})
    result = {"benchmark": "compose", "model": llm.id, "facts": args.facts,
              "questions": len(rows), "k": args.k, "check_tokens": args.check_tokens,
              "threads": args.threads,
              "prompt_tokens_median": statistics.median(x["prompt_tokens"] for x in rows),
              "chunk_tokens_median": statistics.median(x["chunk_tokens"] for x in rows),
              "ttft_full_ms_median": 1e3 * statistics.median(x["ttft_full_s"] for x in rows),
              "curve": curve, "rows": rows, "environment": machine(load_start)}
    write(args.out, "compose", result, markdown)
    return 0


def markdown(r: dict[str, Any]) -> str:
    env = r["environment"]
    lines = ["# Composed activation blocks: TTFT and agreement vs recompute fraction", "",
             f"Model {r['model']}, CPU, {r['threads']} thread(s). {r['questions']} questions, "
             f"top {r['k']} of {r['facts']} memories retrieved (hash embedder), in retrieval "
             f"order; median prompt {r['prompt_tokens_median']:.0f} tokens, of which "
             f"{r['chunk_tokens_median']:.0f} in memory chunks. Baseline: full prefill of the "
             f"same token ids, median TTFT {r['ttft_full_ms_median']:.0f} ms. Goal: TTFT "
             "<= 25 % of full prefill with >= 95 % of answers identical.", "",
             f"| recompute (tail share of chunk tokens) | TTFT vs full prefill (median ratio) "
             f"| TTFT ms (median) | replies identical, first {r['check_tokens']} tokens "
             "| first token identical |", "|---|---|---|---|---|"]
    for c in r["curve"]:
        lines.append(f"| {c['recompute']:.0%} | {c['ttft_ratio_median']:.0%} | "
                     f"{c['ttft_ms_median']:.0f} | {c['identical']:.0%} | "
                     f"{c['first_token_identical']:.0%} |")
    lines += ["", f"Load {env['load_start']} -> {env['load_end']} (shared machine).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
