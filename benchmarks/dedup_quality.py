#!/usr/bin/env python
"""Near-duplicate writes: how often a dedup merges two different facts (junk), and how
often it keeps a rewording twice (missed), on hand-labelled pairs.

    python benchmarks/dedup_quality.py [--embedder minilm] [--out benchmarks/results]

For each pair (first, second) a fresh owner scope gets ``first``, then ``second`` is
written through one of the policies below; the pair is *merged* when no new memory was
made for ``second``:

* ``Vault.add(dedup="noop")`` (and "version": the same decision, another outcome);
* a cosine-only rule at the same threshold (what ``add`` would do without its value
  check: the baseline it is measured against);
* the reader's decision step (``reader.decide.Decider``, rules only, no LLM) on the same
  pair as a fact: NOOP (exact or near duplicate) is a merge; UPDATE/DELETE supersede or
  retire ``first`` (current truth) and are counted apart.

Wrong merges = merged "different" pairs / all "different" pairs; missed = rewordings
stored twice / all rewordings. Used by ``bench_lifecycle.py`` (``make bench-lifecycle``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memvault import Vault  # noqa: E402
from memvault.reader.decide import Decider  # noqa: E402
from memvault.reader.facts import Fact, norm_hash  # noqa: E402

PAIRS = Path(__file__).resolve().parent / "data" / "dedup_pairs.json"


def run(embedder: str = "minilm") -> dict[str, Any]:
    pairs = json.loads(PAIRS.read_text(encoding="utf-8"))
    labelled = [(a, b, "same") for a, b in pairs["same"]] + \
               [(a, b, "different") for a, b in pairs["different"]]
    counts = {name: {"same": 0, "different": 0} for name in ("add_noop", "cosine_only",
                                                               "reader_noop")}
    superseded = {"same": 0, "different": 0}
    wrong: dict[str, list[list[str]]] = {"add_noop": [], "reader_noop": []}
    with tempfile.TemporaryDirectory(prefix="dedup-quality-") as work:
        vault = Vault(Path(work) / "v.db", embedder=embedder)
        threshold = vault.settings.search.dedup_threshold
        decider = Decider(vault)
        for i, (a, b, label) in enumerate(labelled):
            owner = {"user_id": f"pair{i}"}
            first = vault.add(a, kind="fact", metadata={"norm_hash": norm_hash(a)}, **owner)
            va, vb = vault.embedder.embed([a, b])
            if float(np.dot(va, vb)) >= threshold:
                counts["cosine_only"][label] += 1
            decision = decider.decide(Fact(b, kind="fact"), owner)
            if decision.action == "NOOP":
                counts["reader_noop"][label] += 1
                if label == "different":
                    wrong["reader_noop"].append([a, b])
            elif decision.action in ("UPDATE", "DELETE"):
                superseded[label] += 1
            kept = vault.add(b, kind="fact", dedup="noop", **owner)
            if kept.id == first.id:
                counts["add_noop"][label] += 1
                if label == "different":
                    wrong["add_noop"].append([a, b])
        vault.close()
    n_same, n_diff = len(pairs["same"]), len(pairs["different"])
    out: dict[str, Any] = {"pairs": {"same": n_same, "different": n_diff},
                           "embedder": embedder, "threshold": threshold}
    for name, c in counts.items():
        out[name] = {"wrong_merge_rate": round(c["different"] / n_diff, 3),
                     "missed_rate": round(1 - c["same"] / n_same, 3),
                     "merged_same": c["same"], "merged_different": c["different"]}
    out["reader_superseded"] = superseded
    out["wrong_merges"] = wrong
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = [f"### Near-duplicate writes ({r['pairs']['same']} rewordings, "
             f"{r['pairs']['different']} different facts about the same thing; "
             f"{r['embedder']}, cosine >= {r['threshold']})", "",
             "| policy | wrong merges (junk) | rewordings kept twice (missed) |",
             "|---|---|---|"]
    names = {"add_noop": "`Vault.add(dedup=\"noop\")`: cosine + same values",
             "cosine_only": "cosine only (baseline, same threshold)",
             "reader_noop": "reader's dedup (rules, no LLM): NOOP"}
    for key, label in names.items():
        m = r[key]
        lines.append(f"| {label} | {m['wrong_merge_rate']:.0%} ({m['merged_different']}) | "
                     f"{m['missed_rate']:.0%} |")
    s = r["reader_superseded"]
    lines += ["", f"The reader also superseded or retired the first fact (UPDATE/DELETE, "
              f"current truth) on {s['different']} different and {s['same']} same pairs.",
              ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", default="minilm")
    args = ap.parse_args()
    r = run(args.embedder)
    print(markdown(r))
    print(json.dumps(r["wrong_merges"], indent=1))


if __name__ == "__main__":
    main()
