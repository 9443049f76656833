#!/usr/bin/env python
"""Routing by budget: serve a scope's whole history from its cached prefix, or retrieve?

    python benchmarks/bench_routing.py --seeds 1,2 --questions 2 --sizes 2,4,8,16,32,64 \
        --out benchmarks/results

With the bundled SmolLM2-135M (one torch thread) and the vault's default embedder. From
each generated suite (``memvault.evaluation.generate``, seeds ``--seeds``) the first
``--questions`` single-fact questions (category 6, one evidence turn, a short answer) are
taken; for each, and each size N in ``--sizes``, a scope of N memories is written to a
real vault: the evidence turn and the turns around it in the conversation ("speaker:
text", dated). Then, all through ``Vault.chat`` except the reference:

* **full context** (the reference): every memory in the prompt, oldest first, one full
  prefill, greedy ``--check-tokens`` tokens (no cache; ``LocalLLM.generate_ids``);
* **all, cached** (routing by budget): ``Vault.chat`` with
  ``activation=Composition(all_within=32768)``: every memory served from the cached
  prefix. TTFT (``max_tokens=1``) on the scope's first query (nothing cached yet: a full
  prefill), on the next query (all cached) and after one new memory arrives (only it is
  prefilled);
* **retrieval** (the route above the threshold): ``Vault.chat`` on a vault whose
  ``chat_all_within`` is 0, ``k`` = ``--k`` (the default 5).

Answer agreement with the full-context answer: the first ``--check-tokens`` greedy
tokens identical; and the looser measure, whether the expected answer (the suite's gold
string) appears in the reply, for each route and for the reference. TTFT is the wall time
of a ``max_tokens=1`` call (search, prompt, page-in and the first token).

The threshold rule (applied by :func:`pick_threshold`): the default is the largest
memory-token size at which a conversation of ``--conversation`` questions (default 5) to
a scope is no slower served from all memories than by retrieval, the first question
paying the cold prefill (``all_cold + (Q - 1) * all_warm <= Q * retrieval`` at the
medians), and that answers the gold fact at least as often as retrieval; read off as the
largest median memory-token count of a size bucket that passes both, with every smaller
bucket passing too, rounded down to a multiple of 64. (The first rule, written before
the first run, compared warm TTFT only; it made the default 2,368 tokens, where a
scope's first question waited 71 s against 4 s for retrieval, so the first query now
counts.) ``--rescore FILE`` applies the rule to a saved ``routing.json`` again.
Writes ``routing.json`` / ``.md`` / ``.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results  # noqa: E402

from memvault import Vault  # noqa: E402
from memvault.activation.compose import ChunkCache, Composition, prompt_pieces  # noqa: E402
from memvault.activation.tier import system_messages  # noqa: E402
from memvault.chat import MEMORY_MARKER, memory_lines, user_message  # noqa: E402
from memvault.evaluation.generate import generate  # noqa: E402
from memvault.settings import Settings  # noqa: E402
from memvault.types import SearchHit  # noqa: E402

ALL = 32_768


def turns(sample: dict[str, Any]) -> list[tuple[str, str, datetime | None]]:
    """(dia_id, "speaker: text", session date) in conversation order."""
    conv, out = sample["conversation"], []
    n = 1
    while f"session_{n}" in conv:
        stamp = conv.get(f"session_{n}_date_time")
        when = None
        for fmt in ("%B %d, %Y, %I:%M %p", "%I:%M %p on %d %B, %Y", "%Y-%m-%d"):
            try:
                when = datetime.strptime(stamp, fmt) if stamp else None
                break
            except ValueError:
                continue
        for turn in conv[f"session_{n}"]:
            out.append((turn["dia_id"], f"{turn['speaker']}: {turn['text']}", when))
        n += 1
    return out


def pick_questions(suite: list[dict[str, Any]], n: int) -> list[tuple[dict, dict]]:
    """Single-fact questions with a short gold answer, one per conversation first."""
    chosen: list[tuple[dict, dict]] = []
    for round_ in range(4):
        for sample in suite:
            good = [q for q in sample["qa"] if q.get("category") == 6
                    and len(q.get("evidence", [])) == 1 and len(q["answer"].split()) <= 3]
            if len(good) > round_ and len(chosen) < n:
                chosen.append((sample, good[round_]))
    return chosen


def window(all_turns: list[tuple[str, str, Any]], evidence: str, size: int
           ) -> tuple[list[tuple[str, str, Any]], tuple[str, str, Any] | None]:
    """``size`` consecutive turns around the evidence, and the turn after them."""
    at = next(i for i, t in enumerate(all_turns) if t[0] == evidence)
    start = max(0, min(at - size // 2, len(all_turns) - size - 1))
    part = all_turns[start:start + size]
    after = all_turns[start + size] if start + size < len(all_turns) else None
    return part, after


def gold_in(answer: str, gold: str) -> bool:
    g = gold.lower().strip().rstrip(".")
    for art in ("a ", "an ", "the "):
        if g.startswith(art):
            g = g[len(art):]
    return g in answer.lower()


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def measure(llm: Any, root: Path, sample: dict, qa: dict, size: int, tag: str,
            k: int, check: int) -> dict[str, Any]:
    part, after = window(turns(sample), qa["evidence"][0], size)
    user = f"{tag}-n{size}"
    settings = Settings(path=root / f"{user}.db", chat_all_within=0)
    out: dict[str, Any] = {"size": size, "question": qa["question"], "gold": qa["answer"]}
    with Vault(settings=settings) as vault:
        for _, text, when in part:
            vault.add(text, user_id=user, event_time=when)
        items = vault.list(user_id=user, limit=size, order="created_asc").items
        out["memories"] = len(items)  # the guard may have quarantined a turn
        hits = [SearchHit(item=i, score=1.0, rank=r) for r, i in enumerate(items)]
        messages = [*system_messages([]), user_message(qa["question"], hits)]
        head, chunks, tail = prompt_pieces(llm, messages, memory_lines(hits), MEMORY_MARKER)
        import torch

        ids = torch.tensor([[*head, *(t for c in chunks for t in c), *tail]])
        out["memory_tokens"] = sum(len(c) for c in chunks)
        out["prompt_tokens"] = int(ids.shape[-1])
        ref = llm.decode(llm.generate_ids(ids, max_tokens=check)).strip()
        cache = ChunkCache()
        how = Composition(all_within=ALL, cache=cache)
        ask = {"llm": llm, "user_id": user, "adapter": False}
        first, out["all_cold_s"] = timed(lambda: vault.chat(qa["question"], max_tokens=1,
                                                            activation=how, **ask))
        assert first.route.startswith("all:"), first.route
        _, out["all_warm_s"] = timed(lambda: vault.chat(qa["question"], max_tokens=1,
                                                        activation=how, **ask))
        whole = vault.chat(qa["question"], max_tokens=check, activation=how, **ask)
        assert whole.activation.startswith(f"prefix: {len(items)} memories reused")
        _, out["retrieval_s"] = timed(lambda: vault.chat(qa["question"], k=k, max_tokens=1,
                                                         **ask))
        found = vault.chat(qa["question"], k=k, max_tokens=check, **ask)
        assert found.route == "retrieval"
        if after is not None:  # the history grows by one memory
            vault.add(after[1], user_id=user, event_time=after[2])
            grown, out["all_append_s"] = timed(lambda: vault.chat(
                qa["question"], max_tokens=1, activation=how, **ask))
            assert grown.activation.startswith(f"prefix: {len(items)} memories reused")
    out.update({"reference": ref, "all": whole.answer, "retrieval": found.answer,
                "evidence_retrieved": any(h.item.text == next(
                    t[1] for t in part if t[0] == qa["evidence"][0]) for h in found.memories),
                "all_same": whole.answer == ref, "retrieval_same": found.answer == ref,
                "ref_gold": gold_in(ref, qa["answer"]), "all_gold": gold_in(whole.answer,
                                                                            qa["answer"]),
                "retrieval_gold": gold_in(found.answer, qa["answer"])})
    return out


def summarise(rows: list[dict[str, Any]], sizes: list[int]) -> list[dict[str, Any]]:
    curve = []
    for n in sizes:
        rs = [r for r in rows if r["size"] == n]
        if not rs:
            continue
        mean = lambda key: round(statistics.fmean(float(r[key]) for r in rs), 3)  # noqa: E731
        med = lambda key: round(statistics.median(r[key] for r in rs if key in r), 4)  # noqa: E731
        curve.append({"size": n, "scopes": len(rs),
                      "memory_tokens_p50": int(statistics.median(r["memory_tokens"]
                                                                 for r in rs)),
                      "memory_tokens_max": max(r["memory_tokens"] for r in rs),
                      "all_same": mean("all_same"), "retrieval_same": mean("retrieval_same"),
                      "ref_gold": mean("ref_gold"), "all_gold": mean("all_gold"),
                      "retrieval_gold": mean("retrieval_gold"),
                      "evidence_retrieved": mean("evidence_retrieved"),
                      "all_cold_s": med("all_cold_s"), "all_warm_s": med("all_warm_s"),
                      "all_append_s": med("all_append_s") if any("all_append_s" in r
                                                                  for r in rs) else None,
                      "retrieval_s": med("retrieval_s")})
    return curve


def pick_threshold(curve: list[dict[str, Any]], conversation: int = 5) -> tuple[int, str]:
    """The rule in the module docstring."""
    best, why = 0, "no size passed: routing stays off"
    for row in curve:
        fast = row["all_cold_s"] + (conversation - 1) * row["all_warm_s"] <= \
            conversation * row["retrieval_s"]
        right = row["all_gold"] >= row["retrieval_gold"]
        if not (fast and right):
            why = (f"stops at {row['size']} memories ({row['memory_tokens_p50']} tokens): "
                   + (f"a {conversation}-question conversation is slower than retrieval"
                      if not fast else
                      "fewer gold answers than retrieval"))
            break
        best = row["memory_tokens_p50"]
        why = f"every measured size passed (up to {row['size']} memories)"
    return (best // 64) * 64, why


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--questions", type=int, default=2, help="per suite")
    ap.add_argument("--sizes", default="2,4,8,16,32,64")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--check-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--conversation", type=int, default=5,
                    help="questions per scope the rule amortises the first prefill over")
    ap.add_argument("--rescore", type=Path, default=None,
                    help="apply the rule to this saved routing.json; no model run")
    args = ap.parse_args(argv)
    if args.rescore is not None:
        import json

        result = json.loads(args.rescore.read_text())
        result["threshold_tokens"], result["threshold_why"] = pick_threshold(
            result["curve"], args.conversation)
        result["rule"], result["conversation"] = _rule(args.conversation), args.conversation
        _results.write(args.out, "routing", result, markdown)
        plot(result, Path(args.out) / "routing.png")
        return 0
    import torch

    from memvault.models.local import load_local_llm

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    started = time.perf_counter()
    llm = load_local_llm()
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Vault(settings=Settings(path=root / "warm.db")) as warm:  # load the embedder
            warm.add("warm-up", user_id="w")
            warm.search("warm-up", user_id="w")
        for seed in (int(s) for s in args.seeds.split(",")):
            for qi, (sample, qa) in enumerate(pick_questions(generate(seed), args.questions)):
                for n in sizes:
                    row = measure(llm, root, sample, qa, n, f"s{seed}q{qi}", args.k,
                                  args.check_tokens)
                    rows.append({"seed": seed, **row})
                    print(f"seed {seed} q{qi} n={n}: tokens {row['memory_tokens']} cold "
                          f"{row['all_cold_s']:.2f}s warm {row['all_warm_s']:.2f}s retrieval "
                          f"{row['retrieval_s']:.2f}s same all/retr {row['all_same']}/"
                          f"{row['retrieval_same']} gold ref/all/retr {row['ref_gold']}/"
                          f"{row['all_gold']}/{row['retrieval_gold']}",
                          file=sys.stderr, flush=True)
    curve = summarise(rows, sizes)
    threshold, why = pick_threshold(curve, args.conversation)
    result = {"benchmark": "routing", "model": llm.id, "seeds": args.seeds,
              "questions_per_suite": args.questions, "k": args.k,
              "check_tokens": args.check_tokens, "threads": args.threads,
              "curve": curve, "threshold_tokens": threshold, "threshold_why": why,
              "rule": _rule(args.conversation), "conversation": args.conversation,
              "rows": rows, "seconds": round(time.perf_counter() - started, 1),
              "machine": _results.machine(load0)}
    _results.write(args.out, "routing", result, markdown)
    plot(result, Path(args.out) / "routing.png")
    return 0


def _rule(conversation: int) -> str:
    return (f"largest size bucket (median memory tokens, every smaller bucket passing too) "
            f"where a {conversation}-question conversation served from all memories, the "
            f"first question cold (cold + {conversation - 1} x warm TTFT p50), is no slower "
            f"than {conversation} retrievals, and the gold-answer rate >= retrieval's; "
            f"rounded down to a multiple of 64")


def markdown(r: dict[str, Any]) -> str:
    out = ["# Routing by budget: all memories from the cached prefix vs retrieval", "",
           f"{r['model']}, {r['threads']} torch thread(s), generated suites (seeds "
           f"{r['seeds']}), {r['questions_per_suite']} single-fact questions each; per size, "
           f"a scope of that many conversation turns around the evidence. Retrieval: "
           f"k={r['k']}. Agreement: the first {r['check_tokens']} greedy tokens identical to "
           f"the full-context answer; gold: the expected answer appears in the reply. TTFT: "
           f"p50 of a `Vault.chat` call with max_tokens=1.", "",
           "| memories | memory tokens p50 (max) | same as full: all / retrieval | gold: full / "
           "all / retrieval | evidence retrieved | TTFT all, first query | TTFT all, cached "
           "| TTFT all, +1 memory | TTFT retrieval |", "|---|---|---|---|---|---|---|---|---|"]
    for c in r["curve"]:
        app = f"{1000 * c['all_append_s']:.0f} ms" if c["all_append_s"] is not None else "—"
        out.append(f"| {c['size']} | {c['memory_tokens_p50']} ({c['memory_tokens_max']}) | "
                   f"{c['all_same']:.2f} / {c['retrieval_same']:.2f} | {c['ref_gold']:.2f} / "
                   f"{c['all_gold']:.2f} / {c['retrieval_gold']:.2f} | "
                   f"{c['evidence_retrieved']:.2f} | {1000 * c['all_cold_s']:.0f} ms | "
                   f"{1000 * c['all_warm_s']:.0f} ms | {app} | "
                   f"{1000 * c['retrieval_s']:.0f} ms |")
    out += ["", f"Rule: {r['rule']}. Result: **{r['threshold_tokens']} tokens** "
            f"({r['threshold_why']}).", "",
            f"{r['seconds']} s, load {r['machine']['load_start']} -> "
            f"{r['machine']['load_end']} (shared machine).", ""]
    return "\n".join(out)


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = r["curve"]
    xs = [row["memory_tokens_p50"] for row in c]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(xs, [row["all_same"] for row in c], "o-", label="all, cached: same as full")
    a.plot(xs, [row["retrieval_same"] for row in c], "s-", label="retrieval: same as full")
    a.plot(xs, [row["all_gold"] for row in c], "o--", label="all, cached: gold answer")
    a.plot(xs, [row["retrieval_gold"] for row in c], "s--", label="retrieval: gold answer")
    a.plot(xs, [row["ref_gold"] for row in c], "k:", label="full context: gold answer")
    b.plot(xs, [1000 * row["all_warm_s"] for row in c], "o-", label="all, cached")
    b.plot(xs, [1000 * row["all_cold_s"] for row in c], "o:", label="all, first query")
    b.plot(xs, [1000 * row["retrieval_s"] for row in c], "s-", label="retrieval")
    for ax in (a, b):
        ax.axvline(r["threshold_tokens"], color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("the scope's memory tokens (p50 per size)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    a.set_ylabel("share of answers")
    b.set_ylabel("TTFT p50, ms")
    fig.suptitle(f"Routing by budget ({r['model']}); default threshold "
                 f"{r['threshold_tokens']} tokens")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
