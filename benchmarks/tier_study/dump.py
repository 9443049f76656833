#!/usr/bin/env python
"""Record, per question, what the summary tier's planner sees (the study behind its defaults).

    # one conversation alone (its vault built here: ingest + one scheduler pass)
    python benchmarks/tier_study/dump.py alone SUITE.json INDEX OUT.json --work DIR
    # the first conversation of SUITE.json inside a tier_scale.py vault (owner "owner")
    python benchmarks/tier_study/dump.py scale VAULT.db SUITE.json OUT.json

Per question with evidence: flat search's top 40, the top 5 summaries, and the ranking of
the turns under the best 1, 2 and 3 summaries (each row: seq, fused score, kind, dia id
of the evaluated conversation or null, id). ``replay.py`` scores merge/planner variants
from these files without searching again. The defaults (keep 3, insert 1, margin 1.1)
were chosen on LoCoMo conv-26 and generated seed 1 (alone and at 5,000 memories) only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lifecycle_quality  # noqa: E402

from memvault import Vault  # noqa: E402
from memvault import _validate as check  # noqa: E402
from memvault.evaluation import locomo  # noqa: E402
from memvault.retrieval.tier import descend  # noqa: E402
from memvault.scheduler import Scheduler  # noqa: E402
from memvault.settings import Settings  # noqa: E402
from memvault.vault import WORKING_KINDS  # noqa: E402


def record(vault: Vault, conv: locomo.Conversation, owner: str, prefix: str | None
           ) -> list[dict[str, Any]]:
    s = vault.searcher

    def row(h: Any) -> list[Any]:
        it = h.row.item
        ours = prefix is None or (it.session_id or "").startswith(prefix)
        return [h.seq, round(h.score, 6), it.kind,
                it.metadata.get("dia_id") if ours else None, it.id]

    out = []
    for q in conv.questions:
        if not q.evidence:
            continue
        rq = check.row_query({"user_id": owner}, None, status="active")
        rq.statuses = check.searchable(rq.statuses)
        rq.exclude_kinds = WORKING_KINDS
        flat = s.search(q.question, rq, 40, tier="flat")
        top = s.search(q.question, replace(rq, kinds=["summary"], exclude_kinds=None), 5,
                       tier="flat")
        d: dict[str, Any] = {"q": q.question, "evidence": q.evidence,
                             "flat": [row(h) for h in flat], "sums": [row(h) for h in top],
                             "below": {}}
        for n in (1, 2, 3):
            under = descend(s, [h.row.item.id for h in top[:n]], rq, 400)
            if under:
                below = s.search(q.question, replace(rq, ids=under, limit=None, offset=0),
                                 40, tier="flat")
                d["below"][str(n)] = [row(h) for h in below]
        out.append(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("alone")
    a.add_argument("suite")
    a.add_argument("index", type=int)
    a.add_argument("out")
    a.add_argument("--work", required=True, help="where the conversation's vault is built")
    b = sub.add_parser("scale")
    b.add_argument("vault")
    b.add_argument("suite")
    b.add_argument("out")
    for p in (a, b):
        p.add_argument("--embedder", default="minilm")
    args = ap.parse_args()
    if args.mode == "alone":
        conv = lifecycle_quality.load(args.suite)[args.index]
        db = Path(args.work) / f"{Path(args.suite).stem}-{args.index}.db"
        settings = Settings(path=db, embedder=args.embedder)
        if not db.exists():
            with Vault(settings=settings) as v:
                locomo.ingest(v, conv)
                Scheduler().run_once(v)
        with Vault(settings=settings) as v:
            rows = record(v, conv, conv.sample_id, None)
    else:
        conv = lifecycle_quality.load(args.suite)[0]
        with Vault(settings=Settings(path=Path(args.vault), embedder=args.embedder)) as v:
            rows = record(v, conv, "owner", f"{conv.sample_id}/")
    Path(args.out).write_text(json.dumps(rows))
    print(args.out, len(rows))


if __name__ == "__main__":
    main()
