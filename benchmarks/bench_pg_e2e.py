"""``Vault.search`` end to end from several app processes (the part of bench_pg.py that
times what an app calls, not one store method).

Each app process is a fresh Python interpreter (``python bench_pg_e2e.py worker ...``)
that imports memvault, opens a ``Vault`` on the benchmark's store and calls
``vault.prepare()`` (what ``memvault serve`` does before it reports ready): its *start
time* is from the parent's spawn to that point, interpreter start and imports included.
When all are ready they start together and each runs its share of the queries through
``vault.search(text, k=10)``: dense candidates (pgvector inside PostgreSQL, or the
process's own faiss index on SQLite), BM25, fusion, link expansion, boosts, row fetch
and access bookkeeping. One untimed pass over the same queries first (steady state, as
the store benchmark does), then the timed pass.

Query text -> vector: the memories carry synthetic vectors (bench_pg.make_vectors), so
the app processes use :class:`TableEmbedder`, which returns the precomputed vector of each
query text (a dict lookup): the timings leave out query embedding (MiniLM: ~5-15 ms per
query, the same on both backends; ``make bench`` measures it).

Recall@10 vs exact: the same ``Vault.search`` pipeline with exact dense candidates (numpy
over the very vectors stored, :class:`ExactDense` through the Searcher's ``dense_source``
seam), run once in the parent; recall is the share of that top 10 the app processes
returned. Without a filter or a time or speaker cue (these queries have none), the exact
source sees the same rows as the approximate one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
EMBEDDER_ID = "bench-table-384"
_WORDS = 20_000  # synthetic vocabulary (content words: stop words are not indexed anyway)
_ZIPF_S, _ZIPF_Q = 1.1, 30.0  # Zipf-Mandelbrot: p(rank r) ~ 1 / (r + q)^s


# -- texts ------------------------------------------------------------------------------------

def _vocab() -> list[str]:
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "zo", "fi", "ba",
            "he", "ju", "wy", "xo", "ce", "qu", "ro", "ni"]
    n = len(syll)
    return [f"{syll[i % n]}{syll[(i // n) % n]}{syll[(i // n ** 2) % n]}{syll[(i // n ** 3) % n]}"
            for i in range(_WORDS)]


VOCAB = _vocab()
_P = 1.0 / (np.arange(_WORDS) + _ZIPF_Q) ** _ZIPF_S
_CDF = np.cumsum(_P / _P.sum())


def memory_text(i: int) -> str:
    """Deterministic 10-word text of memory ``i``: content words from a Zipf-Mandelbrot
    distribution over 20,000 words, so the most common word is in ~5 % of memories (like
    a frequent content word once stop words are gone) and most words are rare."""
    u = np.random.default_rng(1_000_003 + i).random(10)
    ranks = np.minimum(np.searchsorted(_CDF, u), _WORDS - 1)
    return f"memory {i}: " + " ".join(VOCAB[r] for r in ranks)


def query_texts(truth: np.ndarray, seed: int = 7) -> list[str]:
    """Query j: three words of its exact nearest neighbour's text (lexical and dense
    partly agree, as for a real question) and its own marker (no row contains it)."""
    rng = np.random.default_rng(seed)
    out = []
    for j, row in enumerate(truth):
        words = memory_text(int(row[0])).split(": ", 1)[1].split()
        pick = rng.choice(len(words), size=min(3, len(words)), replace=False)
        out.append(f"q{j} " + " ".join(words[p] for p in sorted(pick)))
    return out


# -- the embedder and the exact dense source ----------------------------------------------------

class TableEmbedder:
    """Returns the precomputed vector of each query text (loaded from an .npz without
    pickles); any other text is refused."""

    dim = 384
    id = EMBEDDER_ID

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    @classmethod
    def load(cls, path: Path) -> "TableEmbedder":
        with np.load(path, allow_pickle=False) as z:
            texts, vecs = list(z["texts"]), z["vectors"]
        return cls({str(t): v for t, v in zip(texts, vecs)})

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            raise KeyError(f"the benchmark embedder knows no vector for {missing[0]!r}")
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


class ExactDense:
    """Exact dense candidates (numpy over ``data``; row i is memory seq i + 1) for the
    reference run. Benchmark rows have no speakers, so the voice cue never fires."""

    in_database = False

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def search_many(self, qvecs: Sequence[np.ndarray], query: Any,
                    n: int) -> list[list[tuple[int, float]]]:
        out = []
        for q in qvecs:
            scores = self.data @ np.asarray(q, dtype=np.float32)
            part = np.argpartition(-scores, n)[:n]
            part = part[np.lexsort((part, -scores[part]))]
            out.append([(int(i) + 1, float(scores[i])) for i in part])
        return out

    def known_speakers(self) -> list[str]:
        return []

    def speakers_in(self, names: Sequence[str], query: Any) -> list[str]:
        return []

    def count(self) -> int:
        return len(self.data)

    def describe(self) -> dict[str, Any]:
        return {"index": "exact (numpy, benchmark reference)", "replayed": 0}


def exact_store(base: type, data: np.ndarray) -> type:
    """``base`` (a store class) whose ``dense_source`` is :class:`ExactDense` over ``data``:
    the Searcher's seam, used for the reference run on either backend."""

    class ExactStore(base):  # type: ignore[misc, valid-type]
        def dense_source(self, ef_search: int) -> ExactDense:
            return ExactDense(data)

    return ExactStore


def reference_top10(store: Any, texts: list[str], table: TableEmbedder,
                    ef: int) -> list[list[int]]:
    """Top 10 seqs of ``Vault.search`` over ``store`` (an :func:`exact_store`), per query."""
    from memvault import Settings, Vault
    from memvault.retrieval.config import SearchConfig

    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(path=Path(tmp) / "unused.db", search=SearchConfig(ef_search=ef))
        with Vault(settings=s, embedder=table, store=store) as v:
            return [[_seq(h) for h in v.search(t, k=10)] for t in texts]


def _seq(hit: Any) -> int:
    return int(hit.item.id.split("-")[1]) + 1  # "bench-00001234" is seq 1235


# -- app processes --------------------------------------------------------------------------

def run_apps(store_arg: str, texts: list[str], table_path: Path, procs: int, ef: int,
             index_dir: Path | None, work: Path) -> dict[str, Any]:
    """Spawn ``procs`` app processes, each with every procs-th query, one after another
    (each start is timed alone, as an app host joining a running deployment would be),
    then let them search together; gather their timings."""
    go = work / "go"
    go.unlink(missing_ok=True)
    spawned: list[float] = []
    children: list[subprocess.Popen[bytes]] = []
    for i in range(procs):
        qfile = work / f"queries-{i}.json"
        qfile.write_text(json.dumps(texts[i::procs]))
        cmd = [sys.executable, str(HERE / "bench_pg_e2e.py"), "worker", "--store", store_arg,
               "--table", str(table_path), "--queries", str(qfile), "--ef", str(ef),
               "--go", str(go), "--out", str(work / f"out-{i}.json")]
        if index_dir is not None:
            cmd += ["--index-dir", str(index_dir)]
        spawned.append(time.time())
        children.append(subprocess.Popen(cmd, env=os.environ.copy()))
        deadline = time.monotonic() + 3600
        while not (work / f"out-{i}.json.ready").exists():
            if any(c.poll() not in (None, 0) for c in children) or time.monotonic() > deadline:
                for c in children:
                    c.kill()
                raise SystemExit("an app process failed to start")
            time.sleep(0.02)
    go.write_text(str(time.time()))
    for c in children:
        if c.wait(timeout=3600) != 0:
            raise SystemExit("an app process failed")
    outs = [json.loads((work / f"out-{i}.json").read_text()) for i in range(procs)]
    latencies = [x for o in outs for x in o["latencies_ms"]]
    q = statistics.quantiles(latencies, n=100)
    wall = max(o["finished"] for o in outs) - float(go.read_text())
    results = {t: r for o in outs for t, r in zip(o["texts"], o["top10"])}
    return {"procs": procs, "ef_search": ef, "queries": len(latencies),
            "p50_ms": round(statistics.median(latencies), 2), "p95_ms": round(q[94], 2),
            "p99_ms": round(q[98], 2), "qps": round(len(latencies) / wall, 1),
            "start_s": [round(o["ready"] - s, 2) for o, s in zip(outs, spawned)],
            "open_s": [o["open_s"] for o in outs], "first_search_ms": [o["first_ms"] for o in outs],
            "rss_mb": [o["rss_mb"] for o in outs], "index": outs[0]["report"].get("index"),
            "top10": [results[t] for t in texts]}


def save_table(path: Path, texts: list[str], queries: np.ndarray) -> TableEmbedder:
    np.savez(path, texts=np.array(texts), vectors=queries.astype(np.float32))
    return TableEmbedder({t: q for t, q in zip(texts, queries)})


def recall(top: list[list[int]], ref: list[list[int]]) -> float:
    return round(float(np.mean([len(set(a) & set(b)) / max(len(b), 1)
                                for a, b in zip(top, ref)])), 4)


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: per address space, so not inherited
    from the parent the way getrusage's ru_maxrss is across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def worker(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    from memvault import Settings, Vault
    from memvault.retrieval.config import SearchConfig

    table = TableEmbedder.load(Path(args.table))
    texts = json.loads(Path(args.queries).read_text())
    from memvault.storage import is_dsn

    if is_dsn(args.store):
        from memvault.storage.postgres import PostgresStore

        store: Any = PostgresStore(args.store, pool_size=2)
    else:
        from memvault.storage.sqlite import SQLiteStore

        store = SQLiteStore(Path(args.store))
    s = Settings(path=Path(tempfile.gettempdir()) / "unused.db",
                 index_dir=Path(args.index_dir) if args.index_dir else None,
                 search=SearchConfig(ef_search=args.ef))
    vault = Vault(settings=s, embedder=table, store=store)
    vault.prepare()
    open_s = round(time.perf_counter() - t0, 3)
    ready = time.time()
    t = time.perf_counter()
    vault.search(texts[0], k=10)
    first_ms = round((time.perf_counter() - t) * 1000, 2)
    Path(args.out + ".ready").write_text("1")
    while not Path(args.go).exists():
        time.sleep(0.01)
    for text in texts:  # untimed pass: steady state
        vault.search(text, k=10)
    lat, top = [], []
    for text in texts:
        t = time.perf_counter()
        hits = vault.search(text, k=10)
        lat.append((time.perf_counter() - t) * 1000)
        top.append([_seq(h) for h in hits])
    finished = time.time()
    rss = _peak_rss_mb()
    report = dict(vault.searcher.report)
    vault.close()
    Path(args.out).write_text(json.dumps({
        "latencies_ms": lat, "top10": top, "texts": texts, "ready": ready, "open_s": open_s,
        "first_ms": first_ms, "finished": finished, "rss_mb": round(rss, 1),
        "report": {k: v for k, v in report.items() if isinstance(v, (str, int, float))}}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="one app process of the end-to-end benchmark")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--store", required=True)
    w.add_argument("--table", required=True)
    w.add_argument("--queries", required=True)
    w.add_argument("--ef", type=int, required=True)
    w.add_argument("--go", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--index-dir", default=None)
    args = ap.parse_args(argv)
    return worker(args)


if __name__ == "__main__":
    raise SystemExit(main())
