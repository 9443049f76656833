#!/usr/bin/env python
"""Embedder backends side by side: numpy fp32, ONNX Runtime fp32, ONNX Runtime int8.

    python benchmarks/bench_embed.py --texts 1024 --queries 100 --out benchmarks/results

All backends run in one process on the same texts, interleaved round by round, so a
loaded machine slows them alike and the ratios stay meaningful. Reports batch
throughput (texts/s), single-query latency (p50/p95 ms) and cosine to numpy fp32.
Writes ``embed.json`` and ``embed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import Corpus  # noqa: E402

from memvault.models.minilm import MiniLMEmbedder  # noqa: E402

BACKENDS = ("numpy", "onnx", "onnx-int8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256, help="texts per embed() call")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    corpus = Corpus(args.texts)
    texts, queries = corpus.texts, corpus.queries(args.queries, args.texts, 7)
    models = {b: MiniLMEmbedder(backend=b) for b in BACKENDS}
    ref = models["numpy"].embed(texts)
    res: dict[str, Any] = {b: {"batch_s": 0.0, "query_s": []} for b in BACKENDS}
    for b, m in models.items():
        m.embed(queries[:4])  # load weights / build sessions outside the timings
        cos = np.sum(m.embed(texts) * ref, axis=1)
        res[b]["cos_min"], res[b]["cos_mean"] = float(cos.min()), float(cos.mean())
    load0 = os.getloadavg()
    for _ in range(args.rounds):
        for b, m in models.items():
            t0 = time.perf_counter()
            for i in range(0, len(texts), args.batch):
                m.embed(texts[i:i + args.batch])
            res[b]["batch_s"] += time.perf_counter() - t0
            for q in queries:
                t0 = time.perf_counter()
                m.embed([q])
                res[b]["query_s"].append(time.perf_counter() - t0)
    out: dict[str, Any] = {"texts": args.texts, "queries": args.queries, "rounds": args.rounds,
                           "loadavg_start": list(load0), "loadavg_end": list(os.getloadavg()),
                           "finished_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "backends": {}}
    base = args.rounds * len(texts) / res["numpy"]["batch_s"]
    for b in BACKENDS:
        q = np.asarray(res[b]["query_s"]) * 1000
        per_s = args.rounds * len(texts) / res[b]["batch_s"]
        out["backends"][b] = {"texts_per_s": per_s, "vs_numpy": per_s / base,
                              "query_p50_ms": float(np.percentile(q, 50)),
                              "query_p95_ms": float(np.percentile(q, 95)),
                              "cos_min": res[b]["cos_min"], "cos_mean": res[b]["cos_mean"]}
    lines = ["# MiniLM embedder backends", "",
             f"{out['finished_at']} · {args.texts} texts, {args.queries} queries, "
             f"{args.rounds} interleaved rounds · load avg {load0[0]:.1f} -> "
             f"{out['loadavg_end'][0]:.1f} on {os.cpu_count()} cores", "",
             "| backend | texts/s | vs numpy | query p50 ms | query p95 ms | cos min | cos mean |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for b, r in out["backends"].items():
        lines.append(f"| {b} | {r['texts_per_s']:.0f} | {r['vs_numpy']:.2f}x | "
                     f"{r['query_p50_ms']:.2f} | {r['query_p95_ms']:.2f} | {r['cos_min']:.4f} | "
                     f"{r['cos_mean']:.4f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embed.json").write_text(json.dumps(out, indent=2))
    (args.out / "embed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
