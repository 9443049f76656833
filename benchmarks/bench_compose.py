#!/usr/bin/env python
"""Blocks composed in any order: time to first token and answer agreement vs recompute.

    python benchmarks/bench_compose.py --questions 16 --k 8 --out benchmarks/results

With the bundled SmolLM2-135M (``--threads`` torch threads), two sets of memories are
stored in real vaults (hash embedder): ``synthetic`` (``--facts`` one-line facts, one
question about each of ``--questions`` of them) and ``locomo`` (the turns of the first
LoCoMo dev conversation, its first ``--questions`` questions; ``--locomo`` path). For
each question the top ``--k`` memories are retrieved (``Vault.search``, in its order)
and rendered exactly as ``Vault.chat`` renders them; each memory line is a chunk whose
KV is computed once and cached (:mod:`memvault.activation.compose`, warmed before
timing, as after the memory's first use). Then, for each setting (selection, recompute
fraction):

* TTFT: compose the chunks' KV (re-rotated to their offsets) + recompute the selected
  tokens + the question + the first token's logits, vs a full prefill of the same
  token ids (timed before and after the settings, paired per question: the ratio is the
  median of per-question ratios to the mean of the two);
* agreement with the full prefill, decoded greedily by the same loop: the first 32
  tokens identical (up to end of text), the first token identical, and the KL
  divergence of the first token's distribution (full || composed).

Writes ``compose.json``, ``compose.md`` and ``compose.png`` to ``--out``.
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

CURVE = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
# (selection, firsts, recompute): the default's curve, then what it is compared with
SETTINGS = ([("deviation", 4, r) for r in CURVE]
            + [("deviation", 0, 0.1), ("deviation", 0, 0.3),
               ("tail", 0, 0.3), ("tail", 0, 0.5)])


def synthetic(vault: Any, n: int, pool: int) -> list[tuple[str, str]]:
    for item in facts(pool):
        vault.add(item.text, kind="fact", user_id="synthetic")
    out = []
    for i in range(n):
        f = facts(pool)[(i * 37) % pool].text  # "Fact i: the user's friend W keeps a X in ..."
        who = f.split("friend ")[1].split(" keeps")[0]
        what = f.split("keeps a ")[1].split(" in a flat")[0]
        out.append(("synthetic", f"Where does my friend {who} keep the {what}?"))
    return out


def locomo(vault: Any, n: int, path: str) -> list[tuple[str, str]]:
    from memvault.evaluation.locomo import load

    conv = load(path)[0]
    for t in conv.turns:
        vault.add(f"{t.speaker}: {t.text}", kind="turn", user_id="locomo", event_time=t.date)
    return [("locomo", q.question) for q in conv.questions[:n]]


def greedy(llm: Any, ids: list[int], cache: Any, start: int, n: int
           ) -> tuple[Any, list[int], float]:
    """First-token log-probs, ``n`` greedy tokens (cut after end of text) and the time to
    the first token's logits, feeding ``ids[start:]`` over ``cache`` (None: from 0).
    Logits of the last position only, as ``generate`` computes them."""
    import torch
    from transformers import DynamicCache

    t = time.perf_counter()
    cache = cache if cache is not None else DynamicCache(config=llm.model.config)
    with torch.inference_mode():
        x = torch.tensor([ids[start:]])
        logits = llm.model(x, cache=cache, use_cache=True, logits_to_keep=1).logits[0, -1]
        ttft = time.perf_counter() - t
        first = logits.log_softmax(-1)
        out = [int(logits.argmax())]
        while len(out) < n and out[-1] != llm.tokenizer.eos_token_id:
            nxt = llm.model(torch.tensor([[out[-1]]]), cache=cache, use_cache=True).logits
            out.append(int(nxt[0, -1].argmax()))
    return first, out, ttft


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--facts", type=int, default=200)
    p.add_argument("--questions", type=int, default=16, help="per dataset")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--datasets", default="synthetic,locomo")
    p.add_argument("--locomo", default="/work/shared/data/locomo-dev.json")
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
    llm = load_local_llm()
    work = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    vault = Vault(work / "v.db", embedder="hash")
    asks: list[tuple[str, str]] = []
    for name in args.datasets.split(","):
        asks += (synthetic(vault, args.questions, args.facts) if name == "synthetic"
                 else locomo(vault, args.questions, args.locomo))
    cache = ChunkCache(max_chunks=4096, max_bytes=2 * 1024**3)
    rows: list[dict[str, Any]] = []
    for n, (user, q) in enumerate(asks, 1):
        print(f"[bench-compose {time.strftime('%H:%M:%S')}] question {n}/{len(asks)} "
              f"load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        hits = vault.search(q, k=args.k, user_id=user)
        messages = [*system_messages([], INSTRUCTIONS), user_message(q, hits)]
        head, chunks, tail = prompt_pieces(llm, messages, memory_lines(hits), MEMORY_MARKER)
        compose(llm, head, chunks, tail, cache=cache)  # warm: every chunk's KV cached
        ids = head + [t for c in chunks for t in c] + tail
        ref_first, reference, full_a = greedy(llm, ids, None, 0, args.check_tokens)
        row: dict[str, Any] = {"dataset": user, "question": q, "prompt_tokens": len(ids),
                               "chunk_tokens": sum(map(len, chunks)), "settings": {}}
        for select, firsts, r in SETTINGS:
            t = time.perf_counter()
            c = compose(llm, head, chunks, tail, recompute=r, cache=cache, select=select,
                        firsts=firsts)
            built = time.perf_counter() - t
            first, out, rest = greedy(llm, ids, c.cache, c.cached, args.check_tokens)
            kl = float((ref_first.exp() * (ref_first - first)).sum())
            row["settings"][f"{select}/{firsts}/{r}"] = {
                "ttft_s": built + rest, "identical": out == reference,
                "first_token": out[:1] == reference[:1], "kl": max(kl, 0.0),
                "recomputed": c.recomputed, "reply": llm.decode(out)}
        full_b = greedy(llm, ids, None, 0, 1)[2]
        row.update(ttft_full_s=(full_a + full_b) / 2, reference=llm.decode(reference))
        rows.append(row)
    vault.close()
    result = {"benchmark": "compose", "model": llm.id, "facts": args.facts,
              "datasets": args.datasets.split(","), "questions": len(rows), "k": args.k,
              "check_tokens": args.check_tokens, "threads": args.threads,
              "prompt_tokens_median": statistics.median(x["prompt_tokens"] for x in rows),
              "chunk_tokens_median": statistics.median(x["chunk_tokens"] for x in rows),
              "ttft_full_ms_median": 1e3 * statistics.median(x["ttft_full_s"] for x in rows),
              "curve": summarise(rows, [s for s in SETTINGS if s[:2] == ("deviation", 4)]),
              "others": summarise(rows, [s for s in SETTINGS if s[:2] != ("deviation", 4)]),
              "rows": rows, "environment": machine(load_start)}
    write(args.out, "compose", result, markdown)
    plot(result, Path(args.out) / "compose.png")
    return 0


def summarise(rows: list[dict[str, Any]], settings: list[tuple[str, int, float]]
              ) -> list[dict[str, Any]]:
    out = []
    for select, firsts, r in settings:
        per = [x["settings"][f"{select}/{firsts}/{r}"] for x in rows]
        entry: dict[str, Any] = {
            "select": select, "firsts": firsts, "recompute": r,
            "recomputed_share": statistics.mean(p["recomputed"] / x["chunk_tokens"]
                                                for p, x in zip(per, rows)),
            "ttft_ratio_median": statistics.median(p["ttft_s"] / x["ttft_full_s"]
                                                   for p, x in zip(per, rows)),
            "ttft_ms_median": 1e3 * statistics.median(p["ttft_s"] for p in per),
            "identical": sum(p["identical"] for p in per) / len(per),
            "first_token_identical": sum(p["first_token"] for p in per) / len(per),
            "kl_median": statistics.median(p["kl"] for p in per)}
        for name in sorted({x["dataset"] for x in rows}):
            mine = [p for p, x in zip(per, rows) if x["dataset"] == name]
            entry[f"identical_{name}"] = sum(p["identical"] for p in mine) / len(mine)
        out.append(entry)
    return out


def markdown(r: dict[str, Any]) -> str:
    env = r["environment"]
    names = sorted({x["dataset"] for x in r["rows"]})
    lines = ["# Composed activation blocks: TTFT and agreement vs recompute fraction", "",
             f"Model {r['model']}, CPU, {r['threads']} torch thread(s). {r['questions']} "
             f"questions ({', '.join(names)}), top {r['k']} memories retrieved (hash "
             f"embedder), in retrieval order; median prompt {r['prompt_tokens_median']:.0f} "
             f"tokens, of which {r['chunk_tokens_median']:.0f} in memory chunks. Baseline: "
             f"full prefill of the same token ids, median TTFT "
             f"{r['ttft_full_ms_median']:.0f} ms. Greedy, same decoding loop for both. "
             "Goal: TTFT <= 25 % of full prefill with >= 95 % of answers identical.", "",
             f"| selection | recompute | TTFT vs full (median ratio) | TTFT ms (median) | "
             f"identical, first {r['check_tokens']} tokens "
             f"({' / '.join(names)}) | first token identical | KL, first token (median) |",
             "|---|---|---|---|---|---|---|"]
    for c in [*r["curve"], *r["others"]]:
        how = {"tail": "tail of the context",
               "deviation": f"layer-1 deviation, first {c['firsts']} of each chunk"}
        per = " / ".join(f"{c[f'identical_{n}']:.0%}" for n in names)
        lines.append(f"| {how[c['select']]} | {c['recomputed_share']:.0%} | "
                     f"{c['ttft_ratio_median']:.0%} | {c['ttft_ms_median']:.0f} | "
                     f"{c['identical']:.0%} ({per}) | {c['first_token_identical']:.0%} | "
                     f"{c['kl_median']:.3f} |")
    lines += ["", f"Load {env['load_start']} -> {env['load_end']} (shared machine, 2 cores).",
              ""]
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [100 * c["recomputed_share"] for c in r["curve"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [100 * c["ttft_ratio_median"] for c in r["curve"]], "o-",
            label="TTFT, % of full prefill")
    ax.plot(xs, [100 * c["identical"] for c in r["curve"]], "s-",
            label=f"replies identical ({r['check_tokens']} tokens), %")
    ax.plot(xs, [100 * c["first_token_identical"] for c in r["curve"]], "^-",
            label="first token identical, %")
    ax.axhline(25, color="grey", ls=":", lw=1)
    ax.axhline(95, color="grey", ls=":", lw=1)
    ax.set_xlabel("chunk tokens recomputed, %")
    ax.set_title(f"Composed blocks, {r['model']}, {r['questions']} questions", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
