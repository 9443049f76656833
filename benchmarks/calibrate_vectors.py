"""How embedding-like are bench_pg's synthetic vectors? Real MiniLM embeddings side by side.

    .venv/bin/python benchmarks/calibrate_vectors.py --n 12000

Embeds ``--n`` English sentences (docstring sentences of the Python standard library on
this machine: real prose nobody here wrote, no download) with the bundled MiniLM, draws
the same number of vectors from ``bench_pg.make_vectors``, and
measures, with 500 held-out queries per set:

- local intrinsic dimension (Levina-Bickel MLE over the 20 nearest neighbours): how many
  directions the neighbourhood of a point spreads over; the higher, the harder for HNSW;
- cosine to the 1st and 10th neighbour and to a random vector, and the relative contrast
  (1 - mean cos) / (1 - cos to the 10th): neighbours barely closer than everything else
  make k-NN hard;
- faiss HNSW (M=16, efConstruction=64, the pgvector defaults) recall@10 at ef 10..80.

The synthetic vectors stand in for real embeddings at 1M only if they are at least as hard
by these measures. Writes ``--out``/vector-calibration.json and .md.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_pg import DATA_DESCRIPTION, make_vectors  # noqa: E402

from memvault.models import get_embedder  # noqa: E402


def stdlib_sentences(n: int, seed: int = 0) -> list[str]:
    """Sentences from the docstrings of the standard library (tests excluded)."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    found: set[str] = set()
    for path in sorted(lib.rglob("*.py")):
        if "test" in path.parts or "tests" in path.parts or "idlelib" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node)
            for para in re.split(r"\n\s*\n", doc or ""):
                for sent in re.split(r"(?<=[.!?])\s+", " ".join(para.split())):
                    if 30 <= len(sent) <= 300 and re.search(r"[a-z]{3}", sent):
                        found.add(sent)
    sentences = sorted(found)
    np.random.default_rng(seed).shuffle(sentences)
    if len(sentences) < n:
        raise SystemExit(f"only {len(sentences)} sentences found, asked for {n}")
    return sentences[:n]


def measure(vectors: np.ndarray, n_queries: int = 500, k: int = 20) -> dict[str, float]:
    import faiss

    queries, data = vectors[:n_queries], vectors[n_queries:]
    scores = queries @ data.T
    top_idx = np.argsort(-scores, axis=1)[:, :k]
    top = np.take_along_axis(scores, top_idx, axis=1)
    dist = np.sqrt(np.maximum(2 - 2 * top, 1e-12))
    lid = -1 / np.mean(np.log(dist[:, :-1] / dist[:, -1:]), axis=1)
    mean_cos = float(scores.mean())
    out = {"lid": float(np.mean(lid)), "cos_nn1": float(top[:, 0].mean()),
           "cos_nn10": float(top[:, 9].mean()), "cos_random": mean_cos,
           "contrast": float(np.mean((1 - mean_cos) / (1 - top[:, 9])))}
    index = faiss.IndexHNSWFlat(data.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(data)
    truth = top_idx[:, :10]
    for ef in (10, 20, 40, 80):
        index.hnsw.efSearch = ef
        _, found = index.search(queries, 10)
        out[f"recall_ef{ef}"] = float(np.mean(
            [len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
    return {key: round(value, 3) for key, value in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=12_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    sentences = stdlib_sentences(args.n)
    t = time.perf_counter()
    real = np.asarray(get_embedder("all-minilm-l6-v2").embed(sentences), np.float32)
    print(f"embedded {len(real):,} sentences in {time.perf_counter() - t:.0f} s", flush=True)
    rows: dict[str, Any] = {"real MiniLM (stdlib docstrings)": measure(real)}
    data, queries = make_vectors(args.n - 500, 500)
    rows["synthetic (bench_pg.make_vectors)"] = measure(np.vstack([queries, data]))
    for name, row in rows.items():
        print(name, row, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vector-calibration.json").write_text(json.dumps(
        {"n": args.n, "queries": 500, "synthetic": DATA_DESCRIPTION, "rows": rows}, indent=2))
    cols = list(next(iter(rows.values())))
    lines = ["# Synthetic vectors vs real MiniLM embeddings", "",
             f"n = {args.n:,} per set (500 of them queries); command: "
             f"`benchmarks/calibrate_vectors.py --n {args.n}`. lid = local intrinsic dimension "
             "(MLE, 20 neighbours); contrast = (1 - mean cosine) / (1 - cosine to the 10th "
             "neighbour); recall = faiss HNSW M=16 efConstruction=64 recall@10 at efSearch 10-80. "
             "Higher lid, lower contrast and lower recall mean harder for an ANN index.", "",
             "| vectors | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(row[c]) for c in cols) + " |"
              for name, row in rows.items()]
    lines += ["", f"Synthetic: {DATA_DESCRIPTION}.", ""]
    (args.out / "vector-calibration.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'vector-calibration.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
