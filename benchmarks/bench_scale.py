#!/usr/bin/env python
"""memvault's scale curve: ingest rate, search p50/p95, RSS and disk from 10k memories up
to ``--max`` on SQLite, and on PostgreSQL + pgvector beside it from ``--pg-from`` up
(issue 25 part 4).

    make bench-scale                                   # --max 1000000
    .venv/bin/python benchmarks/bench_scale.py --max 30000 --out benchmarks/results

Each backend runs in its own child process (this script with ``--child``), so its resident
set is its own. One vault per backend grows through the sizes: the memories from 10k to
30k are added to the 10k vault, and so on, each memory embedded once per backend at most:
the SQLite child appends every vector it computes to a cache file, and the PostgreSQL
child reads it back instead of embedding the same texts again (its ingest rate is then
reported without embedding, and with the embedding time the SQLite run measured for the
same memories added back, so the two are comparable).

At each size: ingest rate of the step (memories/s, wall and per CPU second, the vector
index brought up to date included), search p50/p95 end to end (``Vault.search``, k=10,
query embedding included) from 1 client and from ``--concurrency`` threads, hit@10 of the
memory each question paraphrases, process RSS (and, for PostgreSQL, the server's), and
bytes on disk per memory. Writes ``scale.json``, ``scale.md`` and ``scale.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from bench_core import Corpus  # noqa: E402

LADDER = (10_000, 30_000, 100_000, 300_000, 1_000_000)
K = 10


def status_kb(field: str, pid: str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_bytes(paths: Sequence[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_blocks * 512
        elif p.is_dir():
            for root, _d, files in os.walk(p):
                total += sum(os.lstat(os.path.join(root, f)).st_blocks * 512 for f in files)
    return total


class RecordingEmbedder:
    """The vault's own embedder, unchanged, with every (text, vector) it computes appended
    to a cache file (read back by the PostgreSQL child); nothing kept in memory."""

    def __init__(self, inner: Any, cache: Path) -> None:
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        self._texts = (cache / "texts.jsonl").open("a", encoding="utf-8")
        self._vecs = (cache / "vectors.f32").open("ab")
        self.seconds = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.embed(texts)
        self.seconds += time.perf_counter() - t0
        if len(texts) > 1:  # batches are ingest; single texts are queries
            for t in texts:
                self._texts.write(json.dumps(t) + "\n")
            self._vecs.write(np.ascontiguousarray(out, dtype=np.float32).tobytes())
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CachedEmbedder:
    """Vectors the SQLite child computed, looked up by text; any other text (queries)
    goes to the real embedder, so search is measured with real query embedding."""

    def __init__(self, inner: Any, cache: Path) -> None:
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        with (cache / "texts.jsonl").open(encoding="utf-8") as fh:
            self.row = {json.loads(line): i for i, line in enumerate(fh)}
        self.vecs = np.fromfile(cache / "vectors.f32", dtype=np.float32).reshape(-1, inner.dim)
        self.misses = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self.row.get(t) for t in texts]
        if all(r is not None for r in rows):
            return self.vecs[rows]
        self.misses += sum(r is None for r in rows)
        return self.inner.embed(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def latencies(vault: Any, queries: list[tuple[int, str]], clients: int) -> dict[str, Any]:
    lat = [0.0] * len(queries)
    found = [False] * len(queries)

    def one(i: int) -> None:
        t0 = time.perf_counter()
        hits = vault.search(queries[i][1], k=K)
        lat[i] = time.perf_counter() - t0
        found[i] = any(h.item.metadata.get("sid") == queries[i][0] for h in hits)

    started = time.perf_counter()
    if clients == 1:
        for i in range(len(queries)):
            one(i)
    else:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, range(len(queries))))
    wall = time.perf_counter() - started
    a = np.asarray(lat) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "qps": len(queries) / wall, "hit_at_10": float(np.mean(found))}


def child(args: argparse.Namespace) -> int:
    """One backend's whole curve, in this process."""
    from tqdm import tqdm

    from memvault import Vault

    sizes = [n for n in args.sizes if n >= (args.pg_from if args.child == "postgres" else 0)]
    corpus = Corpus(sizes[-1], args.seed)
    cache = Path(args.cache)
    server, paths = None, []
    base_rss = status_kb("VmRSS")
    from memvault.models import get_embedder

    real = get_embedder("minilm")
    if args.child == "sqlite":
        embedder: Any = RecordingEmbedder(real, cache)
        db = Path(args.work) / "scale.db"
        vault = Vault(db, embedder=embedder)
        paths = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + ".index")]
    else:
        from memvault.storage.pgserver import LocalPostgres

        embedder = CachedEmbedder(real, cache)
        server = LocalPostgres()
        server.start()
        vault = Vault(server.create_database("scale"), embedder=embedder)
        paths = [Path(server.data_dir)]
    base_rss = status_kb("VmRSS")
    points, done = [], 0
    rng = random.Random(args.seed)
    with tqdm(total=sizes[-1], desc=f"{args.child} ingest", unit="mem") as bar:
        for n in sizes:
            t0, c0, e0 = time.perf_counter(), time.process_time(), embedder_seconds(embedder)
            vault.add_many(({"text": corpus.texts[i], "metadata": {"sid": i}}
                            for i in range(done, n)), batch_size=256, user_id="scale",
                           progress=bar.update)
            vault.searcher.sync()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            step = n - done
            done = n
            vault.flush()
            picked = rng.sample(range(n), args.queries)
            queries = [(i, corpus._question[i]) for i in picked]
            for _, q in queries[:5]:
                vault.search(q, k=K)  # warm-up
            point: dict[str, Any] = {
                "n": n, "step": step, "ingest_s": wall, "ingest_per_s": step / wall,
                "ingest_per_cpu_s": step / cpu,
                "embed_s": embedder_seconds(embedder) - e0,
                "search_1": latencies(vault, queries, 1),
                f"search_{args.concurrency}": latencies(vault, queries, args.concurrency),
                "rss_bytes": status_kb("VmRSS") * 1024,
                "rss_above_start_bytes": (status_kb("VmRSS") - base_rss) * 1024,
                "disk_bytes": tree_bytes(paths)}
            point["disk_bytes_per_memory"] = point["disk_bytes"] / n
            if server is not None:
                point["server_rss_bytes"] = server_rss(server)
            points.append(point)
            tqdm.write(f"{args.child} n={n}: {point['ingest_per_s']:.0f}/s, p50 "
                       f"{point['search_1']['p50_ms']:.1f} ms, disk/mem "
                       f"{point['disk_bytes_per_memory']:.0f} B")
            Path(args.result).write_text(json.dumps({"backend": args.child, "points": points,
                                                      "cache_misses": getattr(
                                                          embedder, "misses", None)}))
    vault.close()
    if server is not None:
        server.stop()
    return 0


def embedder_seconds(embedder: Any) -> float:
    return float(getattr(embedder, "seconds", 0.0))


def server_rss(server: Any) -> int:
    """Resident set of every postgres process of the private server (shared buffers once
    per process that touched them: an upper bound)."""
    total = 0
    pidfile = Path(server.data_dir) / "postmaster.pid"
    try:
        master = pidfile.read_text().split()[0]
        pids = [master] + subprocess.run(["pgrep", "-P", master], capture_output=True,
                                         text=True).stdout.split()
    except (OSError, IndexError):
        return 0
    for pid in pids:
        total += status_kb("VmRSS", pid) * 1024
    return total


def markdown(result: dict[str, Any]) -> str:
    env, c = result["env"], result["config"]["concurrency"]
    out = ["# memvault scale curve (SQLite, PostgreSQL + pgvector)", "",
           f"`{result['command']}`", "",
           f"Machine: {env['cpus']} cores, shared; load {env['load_start']} -> {env['load_end']} "
           f"(`uptime` at start: {env['uptime']}). Synthetic memories (bench_core.Corpus), "
           "one scope, real MiniLM.", "",
           "| backend | n | ingest /s (step) | /CPU s | search p50 / p95 ms (1) | "
           f"p50 / p95 ms ({c}) | QPS ({c}) | hit@10 | RSS | disk / memory |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cum, total = {0: 0.0}, 0.0  # SQLite's embedding seconds up to each size
    for p in result.get("sqlite", {}).get("points", []):
        total += p["embed_s"]
        cum[p["n"]] = total
    prev = 0
    for b in ("sqlite", "postgres"):
        for p in result.get(b, {}).get("points", []):
            s1, sc = p["search_1"], p[f"search_{c}"]
            rss = f"{p['rss_bytes'] / 2**20:.0f} MiB"
            if "server_rss_bytes" in p:
                rss += f" + server {p['server_rss_bytes'] / 2**20:.0f} MiB"
            ing = f"{p['ingest_per_s']:.0f}"
            if b == "postgres":  # its vectors came from the cache: add SQLite's embed time
                ing += " cached"
                if p["n"] in cum and prev in cum:
                    est = p["step"] / (p["ingest_s"] + cum[p["n"]] - cum[prev])
                    ing += f", ~{est:.0f} with embedding"
                prev = p["n"]
            out.append(f"| {b} | {p['n']:,} | {ing} | {p['ingest_per_cpu_s']:.0f} | "
                       f"{s1['p50_ms']:.1f} / {s1['p95_ms']:.1f} | {sc['p50_ms']:.1f} / "
                       f"{sc['p95_ms']:.1f} | {sc['qps']:.1f} | {s1['hit_at_10']:.3f} | {rss} | "
                       f"{p['disk_bytes_per_memory']:.0f} B |")
    for b in ("sqlite", "postgres"):
        if result.get(b, {}).get("error"):
            out.append(f"\n{b}: {result[b]['error']}")
    out += ["", "PostgreSQL's ingest reads the vectors the SQLite run computed (\"cached\"); "
            "\"with embedding\" adds back the embedding seconds SQLite spent on the same "
            "memories. RSS: the benchmark process (corpus texts included), plus the private "
            "PostgreSQL server's processes.", "", result.get("verdict", ""), ""]
    return "\n".join(out)


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 4, figsize=(15, 3.4))
    for b, style in (("sqlite", "o-"), ("postgres", "s--")):
        pts = result.get(b, {}).get("points", [])
        if not pts:
            continue
        n = [p["n"] for p in pts]
        ax[0].plot(n, [p["ingest_per_s"] for p in pts], style, label=b)
        ax[1].plot(n, [p["search_1"]["p50_ms"] for p in pts], style, label=f"{b} p50")
        ax[1].plot(n, [p["search_1"]["p95_ms"] for p in pts], style, alpha=0.5, label=f"{b} p95")
        ax[2].plot(n, [p["rss_bytes"] / 2**20 for p in pts], style, label=b)
        ax[3].plot(n, [p["disk_bytes_per_memory"] for p in pts], style, label=b)
    for a, t in zip(ax, ("ingest memories/s", "search ms (1 client)", "RSS MiB (client)",
                         "disk bytes / memory")):
        a.set_xscale("log")
        a.set_title(t)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def verdict(result: dict[str, Any]) -> str:
    """Where SQLite stops being the right backend, from the measured points only."""
    sq = {p["n"]: p for p in result.get("sqlite", {}).get("points", [])}
    pg = {p["n"]: p for p in result.get("postgres", {}).get("points", [])}
    both = sorted(set(sq) & set(pg))
    if not both:
        return (f"Measured up to {max(sq) if sq else 0:,} memories on SQLite only; "
                "no PostgreSQL point to compare at these sizes.")
    notes = []
    for n in both:
        r = sq[n]["search_1"]["p50_ms"] / pg[n]["search_1"]["p50_ms"]
        notes.append(f"at {n:,}: SQLite search p50 is {r:.2f}x PostgreSQL's")
    return "; ".join(notes) + "."


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max", type=int, default=1_000_000, help="largest size on the ladder")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help=f"explicit sizes instead of the ladder {LADDER} up to --max")
    ap.add_argument("--pg-from", type=int, default=100_000,
                    help="PostgreSQL from this size up (0: every size; -1: no PostgreSQL)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--name", default="scale")
    ap.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = sorted(set(args.sizes or [n for n in LADDER if n <= args.max]))
    if not sizes or sizes[0] < 100 or args.queries < 1 or args.queries > sizes[0]:
        ap.error("sizes must be >= 100 and --queries between 1 and the smallest size")
    args.sizes = sizes
    if args.child:
        return child(args)
    load_start = os.getloadavg()[0]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result: dict[str, Any] = {
        "command": "python benchmarks/bench_scale.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "config": {"sizes": sizes, "pg_from": args.pg_from, "queries": args.queries,
                   "concurrency": args.concurrency, "seed": args.seed}}
    backends = ["sqlite"] + (["postgres"] if args.pg_from >= 0
                             and any(n >= args.pg_from for n in sizes) else [])
    with tempfile.TemporaryDirectory(prefix="memvault-scale-") as tmp:
        for b in backends:
            out = Path(tmp) / f"{b}.json"
            cmd = [sys.executable, __file__, "--child", b, "--cache", tmp, "--work", tmp,
                   "--result", str(out), "--pg-from", str(args.pg_from), "--queries",
                   str(args.queries), "--concurrency", str(args.concurrency), "--seed",
                   str(args.seed), "--sizes", *map(str, sizes)]
            rc = subprocess.run(cmd).returncode
            # a child that stopped part way still leaves the sizes it finished
            result[b] = json.loads(out.read_text()) if out.is_file() else {"points": []}
            if rc != 0:
                result[b]["error"] = f"child exited {rc} after {len(result[b]['points'])} sizes"
    result["env"] = {**_results.machine(load_start), "cpus": os.cpu_count(), "uptime": uptime}
    result["verdict"] = verdict(result)
    _results.write(args.out, args.name, result, markdown)
    plot(result, args.out / f"{args.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
