#!/usr/bin/env python
"""Quantized activation memory: bytes per token and output fidelity of int8 / int4 blocks.

    python benchmarks/bench_quant.py --prompts 60 --suites seed1.json ... \
        --out benchmarks/results

On a busy machine a run splits over processes: ``--prompts 30`` (prompts 0-29) and
``--prompts 60 --offset 30`` (30-59), each with its stderr kept, then ``--merge
a.err b.err`` (``LOG:N`` takes the counts after N prompts) sums them into one result.

Prompts are built from memories, as ``Vault.chat`` builds them: for each question of the
given LoCoMo-format suites (taken round-robin over the suites), the turns of its
conversation around the evidence (``--turns`` of them, the evidence turns first) become
the scope's block, rendered by :func:`memvault.activation.tier.system_messages`; the
question is the user message. With the bundled SmolLM2-135M (one torch thread) each block
is built once (fp32), then saved and read back from disk by an :class:`ActivationStore`
per scheme (fp16, int8, int4: :mod:`memvault.activation.quant`), and for each scheme:

* greedy exact match: the first ``--gen`` generated tokens equal the fp16 block's;
* next-token fidelity, teacher-forced along the fp16 block's greedy output (``--gen`` + 1
  positions per prompt): top-1 token agreement with fp16 and the mean KL(fp16 || scheme);
* bytes per token of the block file (input ids included) and the ratio to fp16.

Two baselines in the same run say how sensitive the exact-match figure is: ``fp32``, the
block as the model computed it (before any rounding), compared like the schemes; and
determinism, the fp16 block generated twice (the first ``--rerun`` prompts). For every
prompt a scheme diverges on, the fp16 block's margin between its top two tokens at the
first differing position is recorded (a near tie flips on any perturbation).

Writes ``quant.json`` and ``quant.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results  # noqa: E402

from memvault.activation import quant  # noqa: E402
from memvault.activation.blocks import ActivationStore, build_block  # noqa: E402
from memvault.activation.tier import system_messages  # noqa: E402
from memvault.types import MemoryItem  # noqa: E402


def prompts(suites: list[str], n: int, turns: int) -> list[tuple[str, list[MemoryItem], str]]:
    """(suite, block memories, question), round-robin over the suites."""
    per_suite = []
    for path in suites:
        rows = []
        for sample in json.loads(Path(path).read_text()):
            conv = sample["conversation"]
            all_turns = [t for key, value in conv.items()
                         if key.startswith("session_") and isinstance(value, list)
                         for t in value]
            by_id = {t["dia_id"]: i for i, t in enumerate(all_turns)}
            for qa in sample["qa"]:
                if "answer" not in qa:
                    continue
                idx = [by_id[e] for e in qa.get("evidence", []) if e in by_id]
                around = sorted({j for i in idx for j in range(i - 2, i + 3)
                                 if 0 <= j < len(all_turns)})
                chosen = list(dict.fromkeys(idx + around))[:turns]
                if not chosen:
                    continue
                items = [MemoryItem(id=f"m{j}", kind="fact", user_id="bench",
                                    text=f"{all_turns[j]['speaker']}: {all_turns[j]['text']}")
                         for j in sorted(chosen)]
                rows.append((Path(path).name, items, qa["question"]))
        per_suite.append(rows)
    out: list[tuple[str, list[MemoryItem], str]] = []
    i = 0
    while len(out) < n and any(i < len(r) for r in per_suite):
        for rows in per_suite:
            if i < len(rows) and len(out) < n:
                out.append(rows[i])
        i += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=60)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--turns", type=int, default=12)
    ap.add_argument("--rerun", type=int, default=10,
                    help="prompts whose fp16 generation is repeated (determinism)")
    ap.add_argument("--offset", type=int, default=0,
                    help="skip this many of the prompts (to split a run over processes)")
    ap.add_argument("--suites", nargs="+", required=True)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--merge", nargs="+", metavar="LOG[:N]",
                    help="instead of running: sum the progress line after N prompts (default "
                         "the last) of each log, the stderr of runs over disjoint --offset "
                         "ranges, into one result")
    args = ap.parse_args()
    if args.merge:
        merge(args)
        return

    import torch

    from memvault.models.local import load_local_llm

    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    llm = load_local_llm()
    cases = prompts(args.suites, args.prompts, args.turns)[args.offset:]
    schemes = list(quant.SCHEMES)
    stats: dict[str, dict[str, Any]] = {s: {"exact": 0, "top1": 0, "positions": 0, "kl": 0.0,
                                            "bytes": 0, "tokens": 0, "margins": []}
                                        for s in [*schemes, "fp32"]}
    reruns = [0, 0]  # identical, tried
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {s: ActivationStore(Path(tmp) / s, quant=s, max_loaded=0) for s in schemes}
        for n, (_, items, question) in enumerate(cases):
            prefix = system_messages(items)
            built = build_block(llm, prefix, items=items)
            ids = llm.encode_chat([*prefix, {"role": "user", "content": question}])
            k = built.block.n_tokens
            ref_gen = ref_logp = None
            for s in [*schemes, "fp32"]:
                if s == "fp32":  # the block as computed, never written
                    loaded = built
                else:
                    store = stores[s]
                    saved = store.save(built)
                    path = store.root / saved.fingerprint.key / f"{saved.hash}.safetensors"
                    stats[s]["bytes"] += path.stat().st_size
                    stats[s]["tokens"] += k
                    loaded = store.load(llm, store.entry(saved.fingerprint, saved.hash))
                gen = llm.generate_ids(ids, max_tokens=args.gen,
                                       cache=loaded.fresh_cache(llm)).tolist()
                if ref_gen is None:
                    ref_gen = gen
                    if n < args.rerun:
                        again = llm.generate_ids(ids, max_tokens=args.gen,
                                                 cache=loaded.fresh_cache(llm)).tolist()
                        reruns[0] += int(again == gen)
                        reruns[1] += 1
                forced = torch.cat([ids, torch.tensor([ref_gen], dtype=ids.dtype)], dim=1)
                with torch.inference_mode():
                    logits = llm.model(forced[:, k:], cache=loaded.fresh_cache(llm),
                                       use_cache=True).logits[0]
                # positions predicting the first answer token and each later one
                logp = torch.log_softmax(logits[ids.shape[1] - k - 1:].float(), dim=-1)
                if ref_logp is None:
                    ref_logp = logp
                stats[s]["exact"] += int(gen == ref_gen)
                if gen != ref_gen:
                    at = next((i for i, (a, b) in enumerate(zip(gen, ref_gen)) if a != b),
                              min(len(gen), len(ref_gen)))
                    top2 = ref_logp[min(at, ref_logp.shape[0] - 1)].topk(2).values
                    stats[s]["margins"].append(float(top2[0] - top2[1]))
                stats[s]["top1"] += int((logp.argmax(-1) == ref_logp.argmax(-1)).sum())
                stats[s]["positions"] += int(logp.shape[0])
                kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
                stats[s]["kl"] += float(kl.sum())
            # progress, with the running counts (a stopped run is not lost)
            print(f"{n + 1}/{len(cases)} prompts " + json.dumps(
                {"reruns": reruns, **{s: {x: y for x, y in st.items()}
                                      for s, st in stats.items()}}),
                file=sys.stderr, flush=True)
    result = summarize(stats, reruns, len(cases), args, llm.id)
    result.update(seconds=round(time.perf_counter() - started, 1),
                  machine=_results.machine(load0))
    _results.write(args.out, "quant", result, markdown)


def merge(args: argparse.Namespace) -> None:
    """One result from runs over disjoint prompt ranges: their running counts summed."""
    from memvault.models.local import bundled_model_file

    stats: dict[str, dict[str, Any]] = {}
    reruns, prompts_done = [0, 0], 0
    for spec in args.merge:
        log, _, upto = spec.partition(":")
        lines = [line for line in Path(log).read_text().splitlines() if " prompts {" in line]
        last = next(x for x in lines if x.startswith(f"{upto}/")) if upto else lines[-1]
        prompts_done += int(last.split("/", 1)[0])
        doc = json.loads(last[last.index("{"):])
        reruns = [a + b for a, b in zip(reruns, doc.pop("reruns"))]
        for s, st in doc.items():
            acc = stats.setdefault(s, {"exact": 0, "top1": 0, "positions": 0, "kl": 0.0,
                                       "bytes": 0, "tokens": 0, "margins": []})
            for key, value in st.items():
                acc[key] = acc[key] + value
    result = summarize(stats, reruns, prompts_done, args,
                       f"local:{bundled_model_file().stem}")
    result.update(seconds=None, merged_from=len(args.merge),
                  machine=_results.machine(os.getloadavg()[0]))
    _results.write(args.out, "quant", result, markdown)


def summarize(stats: dict[str, dict[str, Any]], reruns: list[int], n_prompts: int,
              args: argparse.Namespace, model: str) -> dict[str, Any]:
    schemes = list(quant.SCHEMES)
    fp16_bpt = stats["fp16"]["bytes"] / stats["fp16"]["tokens"]
    rows = {}
    for s in [*schemes, "fp32"]:
        st = stats[s]
        bpt = st["bytes"] / st["tokens"] if st["tokens"] else None
        margins = sorted(st["margins"])
        rows[s] = {"bytes_per_token": None if bpt is None else round(bpt, 1),
                   "ratio_vs_fp16": None if bpt is None else round(bpt / fp16_bpt, 4),
                   "exact_match_first_n": round(st["exact"] / n_prompts, 4),
                   "top1_agreement": round(st["top1"] / st["positions"], 4),
                   "mean_kl": round(st["kl"] / st["positions"], 7),
                   "diverged": len(margins),
                   "median_fp16_margin_at_divergence":
                       round(margins[len(margins) // 2], 4) if margins else None}
    return {"benchmark": "quant", "model": model, "prompts": n_prompts,
              "gen_tokens": args.gen, "turns_per_block": args.turns,
              "mean_block_tokens": round(stats["fp16"]["tokens"] / n_prompts, 1),
              "suites": [Path(s).name for s in args.suites], "schemes": rows,
              "layout": quant.LAYOUT, "sink_tokens": quant.SINK_TOKENS,
              "fp16_rerun_identical": f"{reruns[0]}/{reruns[1]}",
              "goals": {"int8": "exact match >= 0.99 at <= 0.52x bytes",
                        "int4": "<= 0.30x bytes with top-1 agreement >= 0.97"},
              "met": {"int8": rows["int8"]["exact_match_first_n"] >= 0.99
                      and rows["int8"]["ratio_vs_fp16"] <= 0.52,
                      "int4": rows["int4"]["ratio_vs_fp16"] <= 0.30
                      and rows["int4"]["top1_agreement"] >= 0.97}}


def markdown(r: dict[str, Any]) -> str:
    out = ["# Quantized activation blocks (int8, int4 + Hadamard) vs fp16", "",
           f"{r['prompts']} prompts built from memories of {', '.join(r['suites'])} "
           f"({r['turns_per_block']} turns per block, {r['mean_block_tokens']} tokens on "
           f"average), {r['model']}, greedy; fidelity against the fp16 block. File layout "
           f"{r['layout']}: the first {r['sink_tokens']} token(s) of a block in fp16, "
           "all bytes (codes, scales, zero points, fp16 tokens, ids, header) counted.", "",
           f"| block | bytes/token | vs fp16 | exact match, first {r['gen_tokens']} tokens "
           "| top-1 agreement | mean KL | fp16 top-2 margin where it diverges (median) |",
           "|---|---|---|---|---|---|---|"]
    for s, row in r["schemes"].items():
        size = ("not stored | -" if row["bytes_per_token"] is None else
                f"{row['bytes_per_token']:.0f} | {row['ratio_vs_fp16']:.3f}x")
        margin = row["median_fp16_margin_at_divergence"]
        where = "-" if margin is None else f"{margin:.4f} ({row['diverged']} prompts)"
        out.append(f"| {s} | {size} | {100 * row['exact_match_first_n']:.1f} % | "
                   f"{100 * row['top1_agreement']:.2f} % | {row['mean_kl']:.6f} | {where} |")
    out += ["", "fp32 = the block as the model computed it, unrounded: how often mere fp16 "
            "rounding changes the first tokens (the metric's noise floor). fp16 generated "
            f"twice: {r['fp16_rerun_identical']} identical."]
    m = r["machine"]
    out += ["", f"Goals: int8 {r['goals']['int8']} ({'met' if r['met']['int8'] else 'not met'}); "
            f"int4 {r['goals']['int4']} ({'met' if r['met']['int4'] else 'not met'}). "
            + (f"{r['seconds']} s" if r["seconds"] is not None else
             f"Run as {r['merged_from']} processes over disjoint prompt ranges, counts summed")
            + (f", load {m['load_start']} -> {m['load_end']}." if r["seconds"] is not None
               else f" (machine load when merged: {m['load_end']}).") + "", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
