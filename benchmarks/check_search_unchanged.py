#!/usr/bin/env python
"""Check that this tree's search returns what another tree's does, for a vault at rest.

    python benchmarks/check_search_unchanged.py --baseline-src /path/to/other/checkout/src

Each tree, in its own process: builds the same vault from scratch (``--n`` short turns and
a few chat exchanges of several sentences through ``remember``, so memories own sentence
vectors; then ``prepare()``), closes it, reopens it from its snapshot and answers the same
``--queries`` questions; the hits (ids in order, scores to 6 decimals) must be identical.
Both build from the same seed, so the memories are the same; ids are replaced by texts.
Exits 1 and prints the first differences if any query differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, random, sys
sys.path.insert(0, sys.argv[4])
from bench_proxy import sentence
from memvault import Vault
db, n, queries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(11)
with Vault(db, embedder=sys.argv[5]) as v:
    v.add_many(({"text": sentence(rng), "kind": "turn", "user_id": "u"} for _ in range(n)),
               batch_size=500)
    for i in range(40):
        v.remember([{"role": "user", "content": f"{sentence(rng)}. I loved it. Day {i} was long."},
                    {"role": "assistant", "content": f"Nice! {sentence(rng)}? Tell me more."}],
                   user_id="u")
    v.prepare()
out = {}
with Vault(db, embedder=sys.argv[5]) as v:
    for _ in range(queries):
        q = f"What do you remember about {sentence(rng)}?"
        out[q] = [[h.item.text, round(h.score, 6)] for h in v.search(q, user_id="u", k=10)]
print(json.dumps(out))
"""


def results(src: Path, workdir: Path, args: argparse.Namespace) -> dict[str, list[list]]:
    db = workdir / f"{abs(hash(str(src)))}.db"
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(db), str(args.n), str(args.queries),
                           str(Path(__file__).resolve().parent), args.embedder],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the run with {src} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-src", required=True)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embedder", default="minilm")
    args = ap.parse_args()
    if not 1 <= args.n <= 100_000 or not 1 <= args.queries <= 10_000:
        raise SystemExit("--n in 1..1e5, --queries in 1..1e4")
    this = Path(__file__).resolve().parent.parent / "src"
    with tempfile.TemporaryDirectory(prefix="check-search-") as tmp:
        mine = results(this, Path(tmp), args)
        base = results(Path(args.baseline_src).resolve(), Path(tmp), args)
    differ = [q for q in base if base[q] != mine.get(q)]
    print(f"{len(base) - len(differ)}/{len(base)} queries identical (ids in order, scores to "
          f"6 decimals), {args.n} memories + 80 turns with sentences, {args.embedder}")
    for q in differ[:3]:
        print(q, "\n  baseline", base[q][:3], "\n  this    ", mine.get(q, [])[:3])
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
