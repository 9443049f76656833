#!/usr/bin/env python
"""The summary tier against flat search, in the same run (issue 29 part 3).

    python benchmarks/bench_summary_tier.py --locomo locomo10.json \
        --gen seed1.json ... --limit 2 --scale 100000 --out benchmarks/results

Quality, per suite (LoCoMo-format files; ``--limit`` conversations each): every
conversation's turns are stored as ``make bench-locomo`` stores them, one scheduler pass
writes the session and topic summaries, then every question is searched (k=20) once per
``SearchConfig.tier`` on the same vault: recall@10, MRR, and the tokens a caller would put
in context (whitespace tokens of the returned memories' text): for the top 10, and for the
smallest k at which the row reaches flat search's recall@10 ("same recall").

At scale (``--scale N``, :mod:`tier_scale`): one owner holding N memories - the first
``--scale-limit`` conversations of every suite among generated filler conversations, one
consolidation pass - and every tier searched on it: the same figures per suite, plus each
search's latency (p50, p95).

Writes ``summary_tier.json`` and ``summary_tier.md``; ``bench_lifecycle.py`` includes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, write  # noqa: E402
import tier_scale  # noqa: E402

from memvault import Vault  # noqa: E402
from memvault.evaluation import locomo  # noqa: E402
from memvault.retrieval.config import SearchConfig  # noqa: E402
from memvault.scheduler import Scheduler  # noqa: E402
from memvault.scheduler.summarize import token_count  # noqa: E402
from memvault.settings import Settings  # noqa: E402

TIERS = ("flat", "summaries", "auto")
K = 20


def _load(path: str) -> list[locomo.Conversation]:
    import lifecycle_quality  # its loader also reads the generated suite's dates

    return lifecycle_quality.load(path)


def rows_for(margins: list[float]) -> dict[str, SearchConfig]:
    """One row per tier, plus "auto" at each extra planner margin asked for."""
    out = {t: replace(SearchConfig(), tier=t) for t in TIERS}
    for t in TIERS[1:]:  # the same tiers ranked by the first stage alone (tier_rank)
        out[f"{t}-first"] = replace(SearchConfig(), tier=t, tier_rank="first")
    for m in margins:
        out[f"auto, margin {m}"] = replace(SearchConfig(), tier="auto", tier_margin=m)
    return out


def quality(path: str, limit: int, embedder: str,
            configs: dict[str, SearchConfig]) -> dict[str, Any]:
    """Per row: recall@k for k = 1..20, MRR, tokens of the top k, over ``limit`` convs."""
    convs = _load(path)[:limit]
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in configs}
    with tempfile.TemporaryDirectory(prefix="tier-quality-") as work:
        for ci, conv in enumerate(convs):
            base = Settings(path=Path(work) / f"{ci}.db", embedder=embedder)
            with Vault(settings=base) as vault:
                locomo.ingest(vault, conv)
                Scheduler().run_once(vault)
            for tier, config in configs.items():
                with Vault(settings=base.replace(search=config)) as vault:
                    for q in conv.questions:
                        if not q.evidence:
                            continue
                        hits = vault.search(q.question, user_id=conv.sample_id, k=K)
                        ranks: dict[str, int] = {}
                        for h in hits:
                            dia = h.item.metadata.get("dia_id")
                            if h.item.kind == "turn" and dia and dia not in ranks:
                                ranks[dia] = h.rank
                        rows[tier].append({
                            "ranks": [ranks.get(e) for e in q.evidence],
                            "tokens": [token_count(h.item.text) for h in hits]})
    out: dict[str, Any] = {"conversations": len(convs),
                           "questions": len(rows["flat"])}
    for tier, rs in rows.items():
        recall = [sum(sum(1 for r in row["ranks"] if r is not None and r <= k)
                      / len(row["ranks"]) for row in rs) / max(len(rs), 1)
                  for k in range(1, K + 1)]
        best = [min((r for r in row["ranks"] if r is not None), default=None) for row in rs]
        tokens = [sum(sum(row["tokens"][:k]) for row in rs) / max(len(rs), 1)
                  for k in range(1, K + 1)]
        out[tier] = {"recall@10": round(recall[9], 4),
                     "mrr": round(sum(1 / b for b in best if b) / max(len(rs), 1), 4),
                     "tokens@10": round(tokens[9], 1),
                     "recall_by_k": [round(r, 4) for r in recall],
                     "tokens_by_k": [round(t, 1) for t in tokens]}
    target = out["flat"]["recall@10"]
    for tier in configs:
        rec = out[tier]["recall_by_k"]
        k = next((i + 1 for i, r in enumerate(rec) if r >= target), None)
        out[tier]["k_for_flat_recall"] = k
        out[tier]["tokens_for_flat_recall"] = None if k is None else out[tier]["tokens_by_k"][k - 1]
    return out


def run(locomo_path: str | None, gen: list[str], limit: int, scale: int, queries: int,
        embedder: str, margins: tuple[float, ...] = (), scale_limit: int = 1,
        cache: str | None = None) -> dict[str, Any]:
    """Quality per suite with each conversation alone (``limit`` per suite), then, with
    ``scale``, every tier on one owner's ``scale`` memories (:mod:`tier_scale`:
    ``scale_limit`` conversations per suite, at most ``queries`` questions each)."""
    suites = {}
    configs = rows_for(list(margins))
    for path in [p for p in [locomo_path, *gen] if p]:
        suites[Path(path).stem] = quality(path, limit, embedder, configs)
    res: dict[str, Any] = {"embedder": embedder, "suites": suites,
                           "tier_config": {f: getattr(SearchConfig(), f) for f in
                                           ("tier_summaries", "tier_max_turns", "tier_keep",
                                            "tier_insert", "tier_margin",
                                            "tier_min_memories", "tier_rank")}}
    lower = {tier: [name for name, s in suites.items()
                    if s[tier]["recall@10"] < s["flat"]["recall@10"]
                    or s[tier]["mrr"] < s["flat"]["mrr"]] for tier in configs if tier != "flat"}
    res["lowers_recall_or_mrr_on"] = lower
    paths = [p for p in [locomo_path, *gen] if p]
    if scale and paths:
        res["scale"] = tier_scale.run(paths, scale_limit, scale, embedder, queries, cache)
    return res


def markdown(r: dict[str, Any]) -> str:
    lines = [f"### Summary tier vs flat search ({r['embedder']}, after one scheduler pass)",
             "", "| suite | tier | R@10 | MRR | tokens in top 10 | k for flat's R@10 | "
             "tokens at that k |", "|---|---|---|---|---|---|---|"]
    for name, s in r["suites"].items():
        for tier in [t for t in s if isinstance(s[t], dict)]:
            m = s[tier]
            lines.append(f"| {name} ({s['questions']} q) | {tier} | {m['recall@10']:.3f} | "
                         f"{m['mrr']:.3f} | {m['tokens@10']:.0f} | "
                         f"{m['k_for_flat_recall'] or '> 20'} | "
                         f"{m['tokens_for_flat_recall'] if m['tokens_for_flat_recall'] is not None else '-'} |")
    for tier, names in r["lowers_recall_or_mrr_on"].items():
        lines.append("")
        lines.append(f"- `tier=\"{tier}\"` lowers R@10 or MRR on: "
                     f"{', '.join(names) if names else 'no suite'}")
    same = all(s["auto"]["recall_by_k"] == s["flat"]["recall_by_k"] and
               s["auto"]["mrr"] == s["flat"]["mrr"] for s in r["suites"].values())
    if r["suites"] and same:
        lines += ["", "`auto` equals `flat` on every quality suite: the planner never "
                  "descended there; its rule result says nothing about the descent itself."]
    c = r["tier_config"]
    lines += ["", f"Tier settings: {c}."]
    if r.get("env"):
        lines += [f"Machine load during these rows: {r['env']['load_start']} -> "
                  f"{r['env']['load_end']} (2 shared cores)."]
    lines += [""]
    if "scale" in r:
        lines += ["", tier_scale.markdown(r["scale"])]
    if "scale_25k" in r:  # kept from an earlier run, for comparison
        lines += ["", "Earlier run, kept for comparison (" + r["scale_25k"].get("note", "")
                  + "):", "", tier_scale.markdown(r["scale_25k"])]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locomo")
    ap.add_argument("--gen", nargs="*", default=[])
    ap.add_argument("--limit", type=int, default=2, help="conversations per suite")
    ap.add_argument("--scale", type=int, default=0,
                    help="memories of the one-owner vault for the tiers at scale (0: skip)")
    ap.add_argument("--scale-limit", type=int, default=1,
                    help="conversations per suite evaluated in the scale vault")
    ap.add_argument("--queries", type=int, default=200,
                    help="questions per suite at most, in the scale vault")
    ap.add_argument("--cache", help="keep the scale vault here and reuse it (same inputs)")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--tier-margins", type=float, nargs="*", default=[],
                    help="extra rows: tier=auto at these planner margins")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    result = run(args.locomo, args.gen, args.limit, args.scale, args.queries, args.embedder,
                 tuple(args.tier_margins), args.scale_limit, args.cache)
    result["env"] = machine(load_start)
    write(args.out, "summary_tier", result, markdown)
    print(json.dumps({k: v for k, v in result.items() if k != "suites"}, indent=1))


if __name__ == "__main__":
    main()
