#!/usr/bin/env python
"""Score summary-tier merge/planner variants on ``dump.py`` files, without searching.

    python benchmarks/tier_study/replay.py DUMP.json ...

For every setting (descend into the best 1 or 3 summaries; keep flat's top ``keep``,
insert ``insert`` descended turns after them; planner margin, 1.0 meaning always descend)
prints R@10 and MRR minus flat's per file, and whether it lowers neither anywhere.
Replays ``retrieval/tier.py``'s merge on the recorded lists (flat and the descent searched
at k=40, where the product searches at k; the benchmark is the judge, this is the map).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

K = 20


def score(d: dict[str, Any], order: list[int], rows: dict[int, list[Any]]
          ) -> tuple[float, float]:
    ranks: dict[str, int] = {}
    for i, seq in enumerate(order[:K]):
        row = rows[seq]
        if row[2] == "turn" and row[3] and row[3] not in ranks:
            ranks[row[3]] = i + 1
    rs = [ranks.get(e) for e in d["evidence"]]
    best = min((r for r in rs if r is not None), default=None)
    return (sum(1 for r in rs if r is not None and r <= 10) / len(rs),
            1 / best if best else 0.0)


def plan(d: dict[str, Any], n: int, keep: int, insert: int, margin: float) -> list[int]:
    flat = [r[0] for r in d["flat"][:K]]
    below = d["below"].get(str(n), [])[:K]
    sums = [r[1] for r in d["sums"]]
    if not below or (margin > 1.0 and not (len(sums) >= 2 and sums[1] > 0
                                           and sums[0] >= margin * sums[1])):
        return flat
    head = flat[:keep]
    extra = [r[0] for r in below if r[0] not in head][:insert]
    return (head + extra + [s for s in flat[keep:] if s not in extra])[:K]


def main() -> None:
    dumps = {Path(f).stem: json.loads(Path(f).read_text()) for f in sys.argv[1:]}
    rows = {name: {r[0]: r for d in ds for r in d["flat"] + [x for b in d["below"].values()
                                                              for x in b]}
            for name, ds in dumps.items()}

    def run(n: int, keep: int, insert: int, margin: float) -> dict[str, tuple[float, float]]:
        out = {}
        for name, ds in dumps.items():
            got = [score(d, plan(d, n, keep, insert, margin), rows[name]) for d in ds]
            out[name] = (sum(g[0] for g in got) / len(ds), sum(g[1] for g in got) / len(ds))
        return out

    base = run(1, K, 0, 1.0)  # keep everything: flat
    print("flat", {k: (round(v[0], 4), round(v[1], 4)) for k, v in base.items()})
    for n in (1, 3):
        for margin in (1.0, 1.05, 1.1, 1.15, 1.2, 1.3):
            for keep, insert in ((3, 1), (3, 2), (4, 2), (5, 1), (5, 2), (6, 2), (5, 3),
                                 (7, 2)):
                r = run(n, keep, insert, margin)
                dr = [round(r[k][0] - base[k][0], 4) for k in r]
                dm = [round(r[k][1] - base[k][1], 4) for k in r]
                ok = min(dr) >= 0 and min(dm) >= 0
                print(ok, f"n={n} margin={margin} keep={keep} insert={insert}",
                      "dR", dr, "dMRR", dm)


if __name__ == "__main__":
    main()
