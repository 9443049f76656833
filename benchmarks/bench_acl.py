#!/usr/bin/env python
"""What sharing and read auditing cost: search and get latency through a ScopedVault.

    python benchmarks/bench_acl.py --users 20 --per-user 250 --queries 40 --out benchmarks/results

A vault (hash embedder, so that the embedding does not drown the governance cost; real
SQLite) holds ``--users`` x ``--per-user`` memories. The principal reads its own memories
in several ways, interleaved query by query so that machine load hits every variant alike:

* *vault*: ``Vault.search(q, user_id=...)`` / ``Vault.get`` (the baseline, no governance);
* *scoped*: a ScopedVault with a grant store but no grants to it (the common case);
* *shared*: the same principal after another user shared one cube (``--shared`` memories)
  and one item with it: the id allow-list path;
* *shared+audit*: the same with read auditing on (one audit row per call, as the server).

Writes ``acl.json`` and ``acl.md`` (median ms and ratio to the baseline) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from memvault import Vault
from memvault.governance import GrantStore, KeyStore, Principal, ScopedVault

WORDS = ("tea coffee garden piano running Lisbon Porto cat dog bike river book film "
         "sister doctor train bread cheese winter summer").split()


def text(u: int, i: int) -> str:
    w = [WORDS[(u * 7 + i * k) % len(WORDS)] for k in (1, 3, 5, 11)]
    return f"user {u} note {i}: likes {w[0]} and {w[1]}, went to {w[2]} with {w[3]}"


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--per-user", type=int, default=250)
    ap.add_argument("--shared", type=int, default=50, help="memories in the shared cube")
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vault.db"
        vault = Vault(path, embedder="hash")
        keys = KeyStore.for_vault(path)
        store = GrantStore(keys)
        for u in range(args.users):
            vault.add_many([{"text": text(u, i), "user_id": f"u{u}",
                             "cube_id": "shared" if i < args.shared else "private"}
                            for i in range(args.per_user)])
        me = Principal("p0", "u0")
        plain = ScopedVault(vault, me, grants=store)
        owner = ScopedVault(vault, Principal("p1", "u1"), grants=store)
        mine = vault.list(user_id="u0", limit=args.queries).items
        queries = [f"{WORDS[i % len(WORDS)]} {WORDS[(i * 3 + 1) % len(WORDS)]}"
                   for i in range(args.queries)]

        # the no-grant variant first, then share and measure the rest, interleaved
        variants: dict[str, dict[str, list[float]]] = {}

        def run(name: str, sv: Any, q: str, item_id: str) -> None:
            rec = variants.setdefault(name, {"search": [], "get": []})
            if sv is None:
                rec["search"].append(timed(lambda: vault.search(q, user_id="u0", k=10)))
                rec["get"].append(timed(lambda: vault.get(item_id)))
            else:
                rec["search"].append(timed(lambda: sv.search(q, k=10)))
                rec["get"].append(timed(lambda: sv.get(item_id)))

        for q in queries[:3]:  # warm-up (index load, statement caches)
            run("warm", None, q, mine[0].id)
            run("warm", plain, q, mine[0].id)
        variants.pop("warm")
        for q, item in zip(queries, mine):
            run("vault", None, q, item.id)
            run("scoped", plain, q, item.id)
        owner.share(cube_id="shared", to="p0")
        owner.share(vault.list(user_id="u1", cube_id="private", limit=1).items[0].id, to="p0")
        shared = ScopedVault(vault, me, grants=store)
        audited = ScopedVault(vault, me, grants=store, audit_reads=True)
        for q, item in zip(queries, mine):
            run("vault (again)", None, q, item.id)
            run("shared", shared, q, item.id)
            run("shared+audit", audited, q, item.id)
        seen = {i.user_id for i in shared.list(status="any", limit=1000).items}
        assert seen == {"u0", "u1"}, seen  # the shared path really includes u1's memories
        keys.close()
        vault.close()

    rows = []
    base = {op: statistics.median(variants["vault"][op]) for op in ("search", "get")}
    base2 = {op: statistics.median(variants["vault (again)"][op]) for op in ("search", "get")}
    for name, rec in variants.items():
        ref = base2 if name in ("shared", "shared+audit", "vault (again)") else base
        rows.append({"variant": name,
                     **{f"{op}_ms": round(statistics.median(rec[op]), 3) for op in rec},
                     **{f"{op}_ratio": round(statistics.median(rec[op]) / ref[op], 2)
                        for op in rec}})
    doc = {"benchmark": "acl", "args": {k: str(v) for k, v in vars(args).items()},
           "items": args.users * args.per_user, "machine": platform.platform(),
           "results": rows,
           "note": "ratios of shared* are against 'vault (again)', measured interleaved "
                   "with them; the others against 'vault'"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "acl.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# Sharing and read-audit overhead ({doc['items']} memories, "
             f"{args.users} users, hash embedder, {args.queries} queries, median)", "",
             "| variant | search ms | x baseline | get ms | x baseline |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['search_ms']} | {r['search_ratio']} | "
                     f"{r['get_ms']} | {r['get_ratio']} |")
    lines += ["", doc["note"], ""]
    (args.out / "acl.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
