"""Train the injection guard's learned head and write it into the package.

    python benchmarks/train_guard_head.py [--out src/memvault/guard/head.npz]

Trains on every labelled text of the guard corpus (``guard_corpus.load``: public and
authored positives, near-miss and ordinary harmless texts); LoCoMo is never used for
training (it is evaluation only). The list of training texts' ids (sha256 prefixes) and
their groups is written to ``benchmarks/data/guard/head_split.json`` so the shipped head can
be rebuilt and audited. The benchmark refits the same way per fold, leaving a source or
a language out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Sequence

from guard_corpus import Row, load

from guard_recipes import FINAL, RECIPES, Recipe

from memvault.guard.learned import Head, fit_calibrated
from memvault.guard.screen import InjectionGuard

ROOT = Path(__file__).resolve().parents[1]


def guard_view(text: str) -> str:
    """The text as the head sees it inside the guard (folded, lower-cased views)."""
    return _PROBE.lowered_views(text)


_PROBE = InjectionGuard(learned=False)


def train(rows: Sequence[Row], cache: dict[str, object] | None = None,
          recipe: Recipe | None = None) -> Head:
    recipe = recipe or RECIPES[FINAL]
    feats = []
    for r in rows:
        if cache is not None and r.text in cache:
            feats.append(cache[r.text])
        else:
            names = [x.rule for x in _PROBE.check(r.text).reasons]
            f = recipe.features(guard_view(r.text), names)
            if cache is not None:
                cache[r.text] = f
            feats.append(f)
    return fit_calibrated(feats, [r.label for r in rows], groups=[r.group for r in rows],  # type: ignore[arg-type]
                          **recipe.fit_kwargs())


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "memvault" / "guard" / "head.npz")
    args = ap.parse_args(argv)
    rows = load()
    head = train(rows)
    head.info = {"alone": f"{head.alone:.4f}", "trained_on": f"{len(rows)} texts of benchmarks/data/guard "
                               f"({sum(r.label for r in rows)} injections)",
                 "script": "benchmarks/train_guard_head.py",
                 "recipe": FINAL}
    head.save(args.out)
    split = {"texts": [{"id": hashlib.sha256(r.text.encode()).hexdigest()[:12], "group": r.group,
                        "label": r.label} for r in rows]}
    (ROOT / "benchmarks" / "data" / "guard" / "head_split.json").write_text(json.dumps(split) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({(args.out.stat().st_size + 1023) // 1024} KB) from {len(rows)} texts",
          file=sys.stderr)


if __name__ == "__main__":
    main()
