"""PostgreSQL + pgvector benchmark: bulk load, HNSW build, concurrent k-NN.

    .venv/bin/python benchmarks/bench_pg.py --n 20000                   # quick check
    make bench-pg-1m                                                   # the 1M run (~45 min)

What it does, all on this machine:

1. Makes ``N + queries`` synthetic embedding-like vectors (see ``make_vectors``; 384-d,
   float32, unit length): a Gaussian mixture around ``N/1000`` random unit centres (at
   least 16), plus a shared offset direction (real sentence embeddings are anisotropic:
   unrelated texts still have cosine ~0.1), plus isotropic noise of std 1/sqrt(d) per
   dimension, then normalised. The queries are held-out draws from the same mixture.
   ``benchmarks/calibrate_vectors.py`` compares them with real MiniLM embeddings.
2. Starts a private PostgreSQL 18 + pgvector (memvault.storage.pgserver) unless ``--dsn``
   is given, opens a PostgresStore without its HNSW index, and bulk-loads one memory per
   vector (``vectors`` + ``versions`` rows) with COPY through ``PostgresStore.import_raw``
   (``--reuse`` with ``--dsn``: skip this and the next step, the database has them).
3. Builds the HNSW index (``vector_cosine_ops``, ``--m``, ``--ef-construction``) and times it.
4. One untimed pass of the queries at the largest ef (steady state: index pages in
   memory), then the queries through ``PostgresStore.vector_search(q, RowQuery(), 10)``
   from ``--threads`` client threads (each its own pooled connection) and from one, at
   each ``--ef``: latency p50/p95/p99 per query (wall time inside the thread), throughput,
   and recall@10 against exact numpy search over the same vectors.
5. The same workload on the embedded path, at ``--sqlite-n`` vectors (default
   min(N, 100000)): a SQLiteStore bulk-written in one transaction, the Searcher's faiss
   index built from it (library defaults: HNSW M=32, efConstruction=80), and
   ``Searcher.dense`` from the same threads at the same efSearch values.
6. After each backend's store-level numbers, ``Vault.search`` end to end from
   ``--app-procs`` separate app processes on the same store (``bench_pg_e2e.py`` says
   how): p50/p95/p99, QPS, recall@10 against the same pipeline with exact dense
   candidates, each process's start time and peak RSS. Memory texts come from
   ``bench_pg_e2e.memory_text`` so BM25 has real work.

Writes ``--out``/<name>.json (every number and the environment) and <name>.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from memvault.models.base import HashEmbedder
from memvault.retrieval.searcher import SearchConfig, Searcher
from memvault.storage.base import RowQuery
from memvault.storage.migrate import _sqlite_write
from memvault.storage.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pg_e2e import (exact_store, memory_text, query_texts, recall,  # noqa: E402
                          reference_top10, run_apps, save_table)

DIM = 384


# -- data -----------------------------------------------------------------------------------

DATA_DESCRIPTION = (
    "Gaussian mixture: max(16, N/1000) random unit centres + shared offset 0.4 + isotropic "
    "noise 1/sqrt(d) per dim, normalised (HNSW recall below that of real MiniLM "
    "embeddings of as many sentences at ef 10-40, equal at ef 80: "
    "results/vector-calibration.md)")


def make_vectors(n: int, n_queries: int, dim: int = DIM, seed: int = 0,
                 chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """``n`` data and ``n_queries`` held-out query vectors, unit length, float32.

    Each cluster spreads isotropically over all 384 dimensions, so the ten nearest
    neighbours of a point are nearly equidistant (local intrinsic dimension ~85; real
    MiniLM sentence embeddings: ~23). ``benchmarks/calibrate_vectors.py`` measures both
    side by side: HNSW recall on these vectors is below recall on real embeddings at small
    ef and equal at ef 80, so a recall figure measured here is not flattered by the data.
    """
    rng = np.random.default_rng(seed)
    n_centres = max(16, n // 1000)
    centres = rng.standard_normal((n_centres, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    shared = rng.standard_normal(dim).astype(np.float32)
    shared *= 0.4 / np.linalg.norm(shared)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), np.float32)
        for start in range(0, m, chunk):
            k = min(chunk, m - start)
            x = centres[rng.integers(0, n_centres, k)] + shared
            x += rng.standard_normal((k, dim), dtype=np.float32) / np.sqrt(dim)
            out[start:start + k] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def exact_top(data: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Row indices of the exact top k by inner product (= cosine on unit rows)."""
    out = np.empty((len(queries), k), np.int64)
    for i in range(0, len(queries), 50):
        scores = queries[i:i + 50] @ data.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        out[i:i + 50] = np.take_along_axis(part, order, axis=1)
    return out


def raw_chunks(vectors: np.ndarray, chunk: int = 10_000) -> Iterator[tuple[str, list[tuple]]]:
    """Raw store rows (the layout of ``_pg_rows.RAW_COLUMNS``): memory i has seq i + 1."""
    now = time.time()
    for start in range(0, len(vectors), chunk):
        block = vectors[start:start + chunk]
        hashes = [hashlib.sha256(f"bench-{start + j}".encode()).hexdigest()
                  for j in range(len(block))]
        yield "vectors", [(h, DIM, v.astype("<f4").tobytes()) for h, v in zip(hashes, block)]
        rows = []
        for j, h in enumerate(hashes):
            i = start + j
            text = memory_text(i)
            rows.append((i + 1, f"bench-{i:08d}", 1, text, text, "note", f"user{i % 100}",
                         None, None, None, "{}", "{}", "[]", now, None, now, None, "active",
                         0.5, None, h, now, None))  # valid_at, invalid_at
        yield "versions", rows


# -- measuring ------------------------------------------------------------------------------

def run_concurrent(fn: Callable[[np.ndarray], list[tuple[int, float]]], queries: np.ndarray,
                   threads: int, warmup: int = 20) -> tuple[list[float], list[list[int]], float]:
    for q in queries[:warmup]:
        fn(q)
    latencies = [0.0] * len(queries)
    results: list[list[int]] = [[] for _ in queries]

    def one(i: int) -> None:
        t = time.perf_counter()
        hits = fn(queries[i])
        latencies[i] = (time.perf_counter() - t) * 1000
        results[i] = [s for s, _ in hits]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(len(queries))))
    return latencies, results, time.perf_counter() - started


def summarise(latencies: list[float], results: list[list[int]], truth: np.ndarray,
              wall: float) -> dict[str, Any]:
    recall = np.mean([len(set(r[:10]) & {int(t) + 1 for t in row}) / 10
                      for r, row in zip(results, truth)])
    q = statistics.quantiles(latencies, n=100)
    return {"p50_ms": round(statistics.median(latencies), 3), "p95_ms": round(q[94], 3),
            "p99_ms": round(q[98], 3), "qps": round(len(latencies) / wall, 1),
            "recall@10": round(float(recall), 4)}


def _measure(out: dict[str, Any], fn: Callable[[np.ndarray], list[tuple[int, float]]],
             queries: np.ndarray, truth: np.ndarray, ef: int, threads: int, name: str) -> None:
    """``threads`` concurrent clients, then one client alone (the latency floor)."""
    for n in (threads, 1):
        lat, res, wall = run_concurrent(fn, queries, n)
        key = f"ef_search={ef},threads={n}"
        out["search"][key] = summarise(lat, res, truth, wall)
        print(f"  {name} {key}: {out['search'][key]}", flush=True)


# -- the two backends -----------------------------------------------------------------------

def bench_postgres(args: argparse.Namespace, data: np.ndarray, queries: np.ndarray,
                   truth: np.ndarray) -> dict[str, Any]:
    from memvault.storage.pgserver import LocalPostgres
    from memvault.storage.postgres import PostgresStore

    server = None
    dsn = args.dsn
    if dsn is None:
        server = LocalPostgres(settings={
            "shared_buffers": args.shared_buffers, "maintenance_work_mem": args.maintenance_mem,
            "max_parallel_maintenance_workers": args.build_workers,
            "effective_cache_size": "8GB", "max_wal_size": "8GB", "checkpoint_timeout": "30min"})
        server.start()
        dsn = server.create_database("bench")
    out: dict[str, Any] = {"n": len(data), "dsn": "private server" if server else "external"}
    try:
        store = PostgresStore(dsn, pool_size=args.threads + 1, dim=DIM, hnsw_index=False)
        if args.reuse:  # an earlier run with --dsn loaded and indexed this database
            with store._conn("reuse") as conn:
                rows = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
            if rows != len(data) or not store.has_vector_index():
                raise SystemExit(f"--reuse: the database holds {rows:,} rows (want "
                                 f"{len(data):,}) and index={store.has_vector_index()}")
            out["reused"] = True
        else:
            t = time.perf_counter()
            store.import_raw(raw_chunks(data))
            out["load_s"] = round(time.perf_counter() - t, 2)
            out["load_rows_per_s"] = round(len(data) / out["load_s"])
        with store._conn("analyze") as conn:
            conn.execute("ANALYZE vectors")
            conn.execute("ANALYZE versions")
            out["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
            out["pgvector"] = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
            out["shared_buffers"] = conn.execute("SHOW shared_buffers").fetchone()[0]
        if not args.reuse:
            t = time.perf_counter()
            store.create_vector_index(m=args.m, ef_construction=args.ef_construction)
            out["hnsw_build_s"] = round(time.perf_counter() - t, 2)
        with store._conn("sizes") as conn:
            out["hnsw_index_mb"] = round(conn.execute(
                "SELECT pg_relation_size('vectors_hnsw')").fetchone()[0] / 2**20, 1)
            out["vectors_table_mb"] = round(conn.execute(
                "SELECT pg_total_relation_size('vectors')").fetchone()[0] / 2**20, 1)
            sql, params = store._vector_sql(RowQuery())
            conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false)")
            plan = conn.execute("EXPLAIN " + sql, [queries[0], *params, queries[0], 10]).fetchall()
            out["plan"] = [re.sub(r"'\[[^']*\]'", "'[...]'", r[0]) for r in plan]
        out["index_params"] = {"m": args.m, "ef_construction": args.ef_construction,
                               "ops": "vector_cosine_ops"}
        out["search"] = {}
        # Steady state, not a cold cache: one untimed pass at the largest ef reads the
        # index pages a query can reach into memory before anything is timed.
        for q in queries:
            store.vector_search(q, RowQuery(), 10, ef_search=max(args.ef))
        for ef in args.ef:
            fn = lambda q, ef=ef: store.vector_search(q, RowQuery(), 10, ef_search=ef)  # noqa: E731
            _measure(out, fn, queries, truth, ef, args.threads, "postgres")
        store.close()
        if args.app_procs:
            out["vault_search"] = e2e(args, dsn, data, queries, truth, PostgresStore)
    finally:
        if server is not None:
            server.stop()
    return out


def bench_sqlite(args: argparse.Namespace, data: np.ndarray, queries: np.ndarray,
                 truth: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(data)}
    with tempfile.TemporaryDirectory(prefix="memvault-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        SQLiteStore(path).close()  # create the schema
        t = time.perf_counter()
        _sqlite_write(path, raw_chunks(data))
        out["load_s"] = round(time.perf_counter() - t, 2)
        out["load_rows_per_s"] = round(len(data) / out["load_s"])
        store = SQLiteStore(path)
        cfg = SearchConfig()
        t = time.perf_counter()
        searcher = Searcher(store, HashEmbedder(DIM), config=cfg)
        out["faiss_build_s"] = round(time.perf_counter() - t, 2)
        out["index_params"] = {"m": cfg.hnsw_m, "ef_construction": cfg.ef_construction,
                               "kind": "faiss IndexHNSWFlat, inner product"}
        out["search"] = {}
        for ef in args.ef:
            searcher._index.ef_search = ef  # benchmark-only: the setting SearchConfig fixes
            fn = lambda q: searcher.dense(q, RowQuery(), 10)  # noqa: E731
            _measure(out, fn, queries, truth, ef, args.threads, "sqlite+faiss")
        searcher.close()
        store.close()
        if args.app_procs:
            out["vault_search"] = e2e(args, str(path), data, queries, truth, SQLiteStore,
                                      index_dir=Path(tmp) / "index")
    return out


def e2e(args: argparse.Namespace, store_arg: str, data: np.ndarray, queries: np.ndarray,
        truth: np.ndarray, store_cls: type, index_dir: Path | None = None) -> dict[str, Any]:
    """``Vault.search`` from ``--app-procs`` app processes (bench_pg_e2e.py), with recall@10
    against the same pipeline on exact dense candidates. On SQLite a first vault builds
    the faiss index and saves its snapshot (what a deployment's first start does); the app
    processes then load it."""
    from memvault import Settings, Vault
    from memvault.retrieval.config import SearchConfig

    texts = query_texts(truth)
    store_args = (store_arg,) if store_cls.__name__ == "PostgresStore" else (Path(store_arg),)
    with tempfile.TemporaryDirectory(prefix="memvault-e2e-") as work:
        table = save_table(Path(work) / "table.npz", texts, queries)
        out: dict[str, Any] = {}
        if index_dir is not None:
            t = time.perf_counter()
            s = Settings(path=Path(work) / "unused.db", index_dir=index_dir,
                         search=SearchConfig(ef_search=args.e2e_ef))
            with Vault(settings=s, embedder=table, store=store_cls(*store_args)) as v:
                v.prepare()
            out["first_open_with_index_build_s"] = round(time.perf_counter() - t, 2)
        print(f"  Vault.search from {args.app_procs} app processes, ef {args.e2e_ef}", flush=True)
        out.update(run_apps(store_arg, texts, Path(work) / "table.npz", args.app_procs,
                            args.e2e_ef, index_dir, Path(work)))
        ref_store = exact_store(store_cls, data)(*store_args)
        t = time.perf_counter()
        ref = reference_top10(ref_store, texts, table, args.e2e_ef)
        out["reference_s"] = round(time.perf_counter() - t, 2)
        out["recall@10_vs_exact_dense_pipeline"] = recall(out.pop("top10"), ref)
        print(f"  {json.dumps({k: v for k, v in out.items()})}", flush=True)
        return out


# -- report ---------------------------------------------------------------------------------

def write_markdown(result: dict[str, Any], path: Path) -> None:
    pg, sq = result["postgres"], result.get("sqlite")
    lines = [
        "# PostgreSQL + pgvector benchmark", "",
        f"Machine: {result['env']['cpus']} cores, load average {result['env']['load_start']} "
        f"at start, {result['env']['load_end']} at end; PostgreSQL {pg.get('postgres')}, "
        f"pgvector {pg.get('pgvector')}, shared_buffers {pg.get('shared_buffers')}. Vectors: {result['data']['description']}",
        "", "Command: `" + result["command"] + "`", "",
        "## Load and index build", "",
        "| backend | n | bulk load s | rows/s | index build s | index |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| PostgreSQL (COPY) | {pg['n']:,} | {pg.get('load_s', 'reused')} | "
        f"{format(pg['load_rows_per_s'], ',') if 'load_rows_per_s' in pg else '-'} | "
        f"{pg.get('hnsw_build_s', 'reused')} | pgvector HNSW m={pg['index_params']['m']} "
        f"ef_c={pg['index_params']['ef_construction']}, {pg['hnsw_index_mb']} MB |",
    ]
    if sq:
        lines.append(f"| SQLite (one txn) + faiss | {sq['n']:,} | {sq['load_s']} | "
                     f"{sq['load_rows_per_s']:,} | {sq['faiss_build_s']} | faiss HNSW "
                     f"M={sq['index_params']['m']} efC={sq['index_params']['ef_construction']} |")
    lines += ["", f"## k-NN search, k=10, {result['queries']} queries", "",
              "| backend | n | ef_search | client threads | p50 ms | p95 ms | p99 ms | QPS "
              "| recall@10 |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, part in (("PostgreSQL vector_search", pg), ("SQLite + faiss Searcher.dense", sq)):
        if not part:
            continue
        for key, s in part["search"].items():
            ef, threads = (kv.split("=")[1] for kv in key.split(","))
            lines.append(f"| {name} | {part['n']:,} | {ef} | {threads} | {s['p50_ms']} | "
                         f"{s['p95_ms']} | {s['p99_ms']} | {s['qps']} | {s['recall@10']} |")
    lines += ["", "Latency is wall time per query inside each client thread, so with 4 "
              "threads on 2 cores it includes waiting for a core (and, for faiss, for the "
              "Searcher's lock: one search at a time). PostgreSQL timings include the round "
              "trip (settings and query pipelined), the join to `versions` for the "
              "current/active filter and psycopg decoding; faiss timings include the "
              "Searcher's change-feed poll. The index build for SQLite is `Searcher(...)`: "
              "scan_current plus faiss insertion. The two HNSW graphs may differ (pgvector m "
              "above vs the library's faiss M=32), which explains most of any recall gap at "
              "equal ef_search."]
    parts = [(name, part) for name, part in (("PostgreSQL", pg), ("SQLite + faiss", sq))
             if part and part.get("vault_search")]
    if parts:
        e = parts[0][1]["vault_search"]
        lines += ["", f"## `Vault.search` end to end: {e['procs']} app processes, k=10, "
                  f"ef_search {e['ef_search']}, {e['queries']} queries", "",
                  "| backend | n | p50 ms | p95 ms | p99 ms | QPS | recall@10 vs the exact-dense "
                  "pipeline | app start s (each) | first search ms | RSS MB | dense candidates |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |"]
        for name, part in parts:
            v = part["vault_search"]
            lines.append(
                f"| {name} | {part['n']:,} | {v['p50_ms']} | {v['p95_ms']} | {v['p99_ms']} | "
                f"{v['qps']} | {v['recall@10_vs_exact_dense_pipeline']} | "
                f"{' / '.join(map(str, v['start_s']))} | "
                f"{' / '.join(map(str, v['first_search_ms']))} | "
                f"{' / '.join(map(str, v['rss_mb']))} | {v['index']} |")
        lines += ["", "Each app process is a new interpreter that imports memvault, opens a "
                  "`Vault` on the store and calls `prepare()` (as `memvault serve` does before "
                  "it is ready): *app start* is spawn to ready, imports included, one process "
                  "at a time. The processes then search together (one untimed pass over their "
                  "queries, then the timed one): dense candidates, BM25, fusion, link "
                  "expansion, boosts, row fetch and access bookkeeping; query embedding is a "
                  "table lookup (bench_pg_e2e.TableEmbedder), so add the embedder's time. "
                  "*recall@10* compares each top 10 with the same pipeline fed exact dense "
                  "candidates (numpy over the stored vectors). *RSS* is each app process's "
                  "peak resident memory: on SQLite it holds the faiss index (loaded from the "
                  "snapshot a first vault saved"
                  + (f", {sq['vault_search']['first_open_with_index_build_s']} s to build"
                     if sq and sq.get("vault_search") else "")
                  + "); on PostgreSQL no process holds an index."]
    lines += ["", "Query plan (PostgreSQL):", "", "```", *pg["plan"], "```", ""]
    path.write_text("\n".join(lines))


def _redacted(argv: list[str]) -> list[str]:
    """The command line as recorded in the results: a --dsn carries a password."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--dsn" and i + 1 < len(out):
            out[i + 1] = "<dsn>"
        elif arg.startswith("--dsn="):
            out[i] = "--dsn=<dsn>"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--sqlite-n", type=int, default=None,
                    help="vectors for the SQLite + faiss comparison (default min(n, 100000); 0 skips)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--ef", type=int, nargs="+", default=[40, 100])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--m", type=int, default=16, help="pgvector HNSW m")
    ap.add_argument("--ef-construction", type=int, default=64, help="pgvector HNSW ef_construction")
    ap.add_argument("--reuse", action="store_true",
                    help="with --dsn: the database already holds these N vectors and the "
                         "HNSW index (from an earlier run): measure search only")
    ap.add_argument("--name", default="pg", help="result file stem: <out>/<name>.json and .md")
    ap.add_argument("--dsn", default=None, help="use this server instead of a private one")
    ap.add_argument("--shared-buffers", default="1GB")
    ap.add_argument("--maintenance-mem", default="2GB",
                    help="maintenance_work_mem: the HNSW build is fast while the graph fits")
    ap.add_argument("--build-workers", type=int, default=1,
                    help="max_parallel_maintenance_workers for the HNSW build")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--app-procs", type=int, default=4,
                    help="app processes timing Vault.search end to end (0 skips)")
    ap.add_argument("--e2e-ef", type=int, default=SearchConfig().ef_search,
                    help="ef_search of the vaults in the end-to-end run (the library default)")
    args = ap.parse_args(argv)
    sqlite_n = min(args.n, 100_000) if args.sqlite_n is None else args.sqlite_n

    env = {"cpus": os.cpu_count(), "python": platform.python_version(),
           "platform": platform.platform(), "load_start": round(os.getloadavg()[0], 2)}
    t = time.perf_counter()
    data, queries = make_vectors(max(args.n, sqlite_n), args.queries, seed=args.seed)
    print(f"data: {len(data):,} x {DIM} in {time.perf_counter() - t:.1f}s", flush=True)
    result: dict[str, Any] = {
        "command": "benchmarks/bench_pg.py "
                   + " ".join(_redacted(sys.argv[1:] if argv is None else argv)),
        "threads": args.threads, "queries": args.queries, "env": env,
        "data": {"dim": DIM, "seed": args.seed, "clusters": max(16, len(data) // 1000),
                 "description": f"{DIM}-d unit vectors from a {DATA_DESCRIPTION}; queries "
                                "held out from the same mixture"}}
    truth = exact_top(data[:args.n], queries)
    print(f"postgres at n={args.n:,}", flush=True)
    result["postgres"] = bench_postgres(args, data[:args.n], queries, truth)
    if sqlite_n:
        print(f"sqlite+faiss at n={sqlite_n:,}", flush=True)
        truth_s = truth if sqlite_n == args.n else exact_top(data[:sqlite_n], queries)
        result["sqlite"] = bench_sqlite(args, data[:sqlite_n], queries, truth_s)
    env["load_end"] = round(os.getloadavg()[0], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    write_markdown(result, args.out / f"{args.name}.md")
    print(f"wrote {args.out / args.name}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
