"""Which learned-head recipe generalises best to injection sources it never saw?

    python benchmarks/guard_head_search.py [--only NAME ...] [--out benchmarks/results]

Every recipe (features + training regime) is scored by the headline protocol of
``bench_guard.py``: leave-one-source-out, the head refitted per fold without the
held-out source and without near-copies of its texts, calibrated on its own training
data only, combined with the (fixed) rule scores exactly as ``InjectionGuard.check``
combines them. Only pooled counts and per-source rates are printed: no held-out text is
shown, so a recipe cannot be fitted to the misses it is judged on.

Writes ``guard_head_search.{json,md}``: one row per recipe tried, kept or rejected, so
the final choice can be checked against everything else that was measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from _results import machine, write
from bench_guard import Scorer, held_out_train
from guard_corpus import NEAR_MISS, Row, load
from guard_recipes import RECIPES

HERE = Path(__file__).parent


def loso_recipe(rows: list[Row], sc: Scorer) -> dict[str, Any]:
    """Leave-one-source-out counts for the scorer's recipe (the same folds, near-copy
    removal and score combination as ``bench_guard.loso``)."""
    per: dict[str, Any] = {}
    for group in sorted({r.group for r in rows}):
        test = [r for r in rows if r.group == group]
        train = held_out_train([r for r in rows if r.group != group], test)
        flags = sc.flags([r.text for r in test], sc.train(train))
        per[group] = {"label": test[0].label, "origin": test[0].origin,
                      "hits": [sum(flags), len(flags)]}
    pub = [v["hits"] for v in per.values() if v["label"] and v["origin"] == "public"]
    near = [v["hits"] for g, v in per.items() if not v["label"] and g in NEAR_MISS]
    neg = [v["hits"] for v in per.values() if not v["label"]]
    return {"per_source": per,
            "public_recall": [sum(a for a, _ in pub), sum(n for _, n in pub)],
            "public_macro": float(np.mean([a / n for a, n in pub])),
            "near_miss_fp": [sum(a for a, _ in near), sum(n for _, n in near)],
            "all_negatives_fp": [sum(a for a, _ in neg), sum(n for _, n in neg)]}


def pct(p: Sequence[int]) -> str:
    return f"{100 * p[0] / p[1]:.1f}% ({p[0]}/{p[1]})" if p[1] else "-"


def markdown(rep: dict[str, Any]) -> str:
    L = ["# Learned-head recipes under leave-one-source-out", "",
         "Each recipe was scored by the guard benchmark's headline protocol (head refitted "
         "per held-out source, near-copies removed, calibrated on its training data only). "
         "Goals: public pooled recall >= 85 %, near-miss false positives <= 5 %.", "",
         "| recipe | what | public recall (pooled) | mean per source | near-miss FP | all harmless FP | fit s |",
         "|---|---|---|---|---|---|---|"]
    for name, v in rep["recipes"].items():
        L.append(f"| {name} | {v['what']} | {pct(v['public_recall'])} | {100 * v['public_macro']:.1f}% "
                 f"| {pct(v['near_miss_fp'])} | {pct(v['all_negatives_fp'])} | {v['seconds']:.0f} |")
    groups = sorted({g for v in rep["recipes"].values() for g in v["per_source"]})
    names = list(rep["recipes"])
    L += ["", "## Per held-out source (recall for injections, false positives for harmless)", "",
          "| source | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for g in groups:
        cells = []
        for n in names:
            h = rep["recipes"][n]["per_source"].get(g)
            cells.append(f"{100 * h['hits'][0] / h['hits'][1]:.1f}%" if h else "-")
        L.append(f"| {g} | " + " | ".join(cells) + " |")
    L += ["", "## Notes", ""] + [f"* {n}" for n in NOTES]
    L += ["", f"Command: `{rep['command']}`; {rep['env']}.", ""]
    return "\n".join(L)


NOTES = [
    "Chosen: B (the best pooled public recall of the recipes that finished, with near-miss false "
    "positives under 5 %); the rule (pooled public recall first, near-miss <= 5 % and LoCoMo <= 1 % "
    "as constraints) is the issue's, fixed before the runs.",
    "E (rule names as features) raised near-miss false positives to 6.1 % (the rules were written "
    "on some training sources, so their names look more decisive than they are) and lowered recall.",
    "F (sources evened, n^0.5) changed almost nothing for the words-only head (+1 text).",
    "C (B with sources evened) and D (B + rule names) were started but stopped unfinished for "
    "time (each character-gram recipe takes 12+ minutes on the shared machine); they have no row.",
    "Not tried: regularisation picked by an inner cross-validation on the training sources (about "
    "200 extra fits per recipe: no time on this machine), a multilingual encoder (a transformer "
    "forward pass per memory would not fit the 2 ms CPU budget; not searched further).",
    "These rows were scored before the head was discounted in prose about attacks (as the rules "
    "are; added after a unit test's quoted 'ignore previous instructions' flagged); "
    "`bench_guard.py` scores the shipped recipe with that discount (guard.md).",
    "*fit s* is wall time on a shared machine (load 10-20): compare within one run only.",
]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="recipe names (default: all)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    rows = load()
    rules: dict[Any, Any] = {}  # rule verdicts are shared: only the head changes
    prev_path = args.out / "guard_head_search.json"
    rep: dict[str, Any] = {"recipes": {}}
    if prev_path.is_file():  # keep earlier recipes' rows: the table lists every one tried
        import json
        rep["recipes"] = json.loads(prev_path.read_text())["recipes"]
    for name, recipe in RECIPES.items():
        if args.only and name not in args.only:
            continue
        t0 = time.time()
        sc = Scorer(recipe=recipe)
        sc.rules = rules
        res = loso_recipe(rows, sc)
        res.update({"what": recipe.what, "seconds": time.time() - t0})
        rep["recipes"][name] = res
        print(f"{name}: public {pct(res['public_recall'])} macro {100 * res['public_macro']:.1f}% "
              f"near-miss {pct(res['near_miss_fp'])} harmless {pct(res['all_negatives_fp'])} "
              f"({res['seconds']:.0f} s)", file=sys.stderr, flush=True)
    rep.update({"command": "python benchmarks/guard_head_search.py", "env": str(machine(load_start))})
    if prev_path.is_file():  # another run may have added recipes meanwhile: keep them
        import json
        done = json.loads(prev_path.read_text())["recipes"]
        rep["recipes"] = {**done, **{k: v for k, v in rep["recipes"].items()
                                     if k not in done or k in (args.only or RECIPES)}}
        rep["recipes"] = {k: rep["recipes"][k] for k in RECIPES if k in rep["recipes"]}
    write(args.out, "guard_head_search", rep, markdown)


if __name__ == "__main__":
    main()
