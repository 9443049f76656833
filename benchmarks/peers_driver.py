#!/usr/bin/env python
"""One system, one phase of the peers benchmark, in its own process (``bench_peers.py``
starts it: memvault's driver in memvault's venv, Mem0's and Chroma's in ``.venv-peers``).

    python peers_driver.py --system chroma --phase synth --data DIR --work DIR --out F.json

Why a separate process per system and phase: each peer lives in its own virtualenv (it is
never a dependency of memvault), and the resident set and bytes on disk then belong to
that one system alone. This file imports neither memvault nor a peer at module level, so
it runs in either venv.

Phases (inputs are files ``bench_peers.py`` wrote to ``--data``):

* ``locomo``: every LoCoMo dev turn stored (one scope per conversation), then every scored
  question searched in its conversation's scope, k=10; writes the dia_ids of the hits in
  rank order (the orchestrator scores them, the same code for all systems).
* ``synth``: ``synth.jsonl`` stored in one scope, then ``synth_queries.jsonl`` searched
  from 1 client and from ``--concurrency`` client threads; hit@10 of the memory each
  question paraphrases.

Timings: ingest from the first write until the system can serve the data it took
(memvault's vector-index catch-up included); search per call, end to end (query
embedding included). Model loading is timed on its own (``open_s``), not in either.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

K = 10
SYNTH_USER = "synth"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(samples: Sequence[float]) -> dict[str, float]:
    s = sorted(samples)
    if not s:
        return {"n": 0}

    def at(p: float) -> float:
        return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1000

    return {"p50_ms": round(at(50), 3), "p95_ms": round(at(95), 3), "p99_ms": round(at(99), 3),
            "mean_ms": round(sum(s) / len(s) * 1000, 3), "n": len(s)}


def progress(done: int, total: int, what: str, started: float, before: int | None = None
             ) -> None:
    """One line each time a tenth of the work is crossed (the driver's output is a log,
    not a terminal); ``before``: the count before this step, when steps are uneven."""
    step = max(1, total // 10)
    prev = done - 1 if before is None else before
    if done == total or done // step > prev // step:
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(f"  {what}: {done}/{total} ({rate:.0f}/s)", file=sys.stderr, flush=True)


# -- the systems ---------------------------------------------------------------------------
class System:
    """What the benchmark asks of each system: store turns or memories, search a scope."""

    settings: dict[str, Any] = {}

    def add_session(self, conv: str, turns: list[dict[str, Any]]) -> None: ...
    def add_synth(self, rows: list[dict[str, Any]]) -> None: ...
    def finish_ingest(self) -> None:
        _query_threads()

    def search(self, scope: str, query: str) -> list[Any]: ...  # keys in rank order
    def close(self) -> None: ...


def _query_threads() -> None:
    """The peers' torch gets memvault's own thread policy: one thread for a single text
    (a query; every Mem0 add), the default for batches. Two threads busy-wait for each
    other on a loaded 2-core machine: a single query then takes ~10x longer."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


class Memvault(System):
    def __init__(self, work: Path, batch: int) -> None:
        from memvault import Vault

        self.vault = Vault(work / "vault.db")
        self.batch = batch
        self.settings = {"class": "memvault.Vault(path) (SQLite, every default)",
                         "embedder": type(self.vault.embedder).__name__ + " (bundled all-MiniLM-L6-v2)",
                         "index_context": self.vault.settings.index_context,
                         "locomo_ingest": "Vault.add_messages per session (name=speaker)",
                         "synth_ingest": f"Vault.add_many(batch_size={batch})",
                         "search": "Vault.search(query, user_id=scope, k=10): hybrid dense+BM25"}

    def add_session(self, conv: str, turns: list[dict[str, Any]]) -> None:
        self.vault.add_messages([{"role": "user", "name": t["speaker"], "content": t["text"],
                                  "timestamp": t["date"], "metadata": {"dia_id": t["dia_id"]}}
                                 for t in turns], user_id=conv)

    def add_synth(self, rows: list[dict[str, Any]]) -> None:
        self.vault.add_many([{"text": r["text"], "metadata": {"sid": r["sid"]}} for r in rows],
                            batch_size=self.batch, user_id=SYNTH_USER)

    def finish_ingest(self) -> None:
        self.vault.searcher.sync()  # the index catches up from the change log: part of ingest

    def search(self, scope: str, query: str) -> list[Any]:
        hits = self.vault.search(query, user_id=scope, k=K)
        return [h.item.metadata.get("dia_id", h.item.metadata.get("sid")) for h in hits]

    def close(self) -> None:
        self.vault.close()


def _speaker_text(t: dict[str, Any]) -> str:
    # Peers get "Speaker: text" (LoCoMo questions name the speaker; memvault's default
    # index_context indexes the same, plus the previous turn).
    return f"{t['speaker']}: {t['text']}"


class Chroma(System):
    """Embedded ``PersistentClient``; we supply the vectors (the same bundled MiniLM through
    sentence-transformers, in this process), so Chroma's default ONNX embedder, which would
    download, is never built."""

    def __init__(self, work: Path, model_dir: str, batch: int) -> None:
        import chromadb
        from chromadb.config import Settings
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_dir, device="cpu")
        self.client = chromadb.PersistentClient(path=str(work / "chroma"),
                                                settings=Settings(anonymized_telemetry=False))
        self.space = {"hnsw:space": "cosine"}
        self.col = self.client.create_collection("bench", metadata=self.space,
                                                 embedding_function=None)
        self.batch = batch
        self.embed_s = 0.0
        self.settings = {"class": "chromadb.PersistentClient (embedded, on disk)",
                         "version": chromadb.__version__, "anonymized_telemetry": False,
                         "collection": "one collection, metadata " + json.dumps(self.space)
                         + " (HNSW defaults otherwise)",
                         "embedder": f"sentence-transformers {model_dir} (normalized), vectors "
                                     "passed to add()/query(); embedding_function=None",
                         "scope": "where={'user': scope}",
                         "locomo_text": "'Speaker: text'",
                         "synth_ingest": f"embed + collection.add in batches of {batch}",
                         "search": "embed query + collection.query(n_results=10, where=scope)",
                         "torch_threads": "default for batch embedding, 1 for queries"}

    def _embed(self, texts: list[str]) -> list[list[float]]:
        t0 = time.perf_counter()
        v = self.model.encode(texts, batch_size=64, normalize_embeddings=True,
                              convert_to_numpy=True)
        self.embed_s += time.perf_counter() - t0
        return v.tolist()

    def add_session(self, conv: str, turns: list[dict[str, Any]]) -> None:
        self.col.add(ids=[f"{conv}/{t['dia_id']}" for t in turns],
                     embeddings=self._embed([_speaker_text(t) for t in turns]),
                     documents=[_speaker_text(t) for t in turns],
                     metadatas=[{"user": conv, "dia_id": t["dia_id"]} for t in turns])

    def add_synth(self, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), self.batch):
            chunk = rows[i:i + self.batch]
            self.col.add(ids=[str(r["sid"]) for r in chunk],
                         embeddings=self._embed([r["text"] for r in chunk]),
                         documents=[r["text"] for r in chunk],
                         metadatas=[{"user": SYNTH_USER, "sid": r["sid"]} for r in chunk])

    def search(self, scope: str, query: str) -> list[Any]:
        q = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True)
        res = self.col.query(query_embeddings=q.tolist(), n_results=K, where={"user": scope},
                             include=["metadatas"])
        return [m.get("dia_id", m.get("sid")) for m in res["metadatas"][0]]

    def close(self) -> None:
        del self.col
        self.client = None


class Mem0(System):
    """``mem0.Memory`` with ``infer=False`` (no LLM call), its default local vector store
    (Qdrant, embedded, on disk under ``--work``) and its huggingface embedder pointed at
    the bundled MiniLM directory."""

    def __init__(self, work: Path, model_dir: str, batch: int) -> None:
        os.environ["MEM0_TELEMETRY"] = "False"  # read at import time
        os.environ["MEM0_DIR"] = str(work / "mem0home")
        os.environ.setdefault("OPENAI_API_KEY", "unused-infer-false")  # LLM built, never called
        from mem0 import Memory

        config = {
            "embedder": {"provider": "huggingface",
                         "config": {"model": model_dir, "embedding_dims": 384}},
            "vector_store": {"provider": "qdrant",
                             "config": {"path": str(work / "qdrant"), "embedding_model_dims": 384,
                                        "collection_name": "bench"}},
            "history_db_path": str(work / "history.db"),
        }
        self.memory = Memory.from_config(config)
        _query_threads()  # Mem0 embeds one text per call, at add and at search
        self.batch = batch
        import mem0

        self.settings = {"class": "mem0.Memory.from_config", "version": getattr(
            mem0, "__version__", "?"), "MEM0_TELEMETRY": "False", "config": config,
            "torch_threads": 1,
            "add": f"Memory.add(messages, user_id=scope, infer=False), {batch} messages a call",
            "locomo_text": "'Speaker: text' as the message content, name=speaker",
            "search": "Memory.search(query, top_k=10, filters={'user_id': scope}, "
                      "threshold=0.0)",
            "offline_notes": "BM25 keyword search off (needs fastembed's Qdrant/bm25 model "
                             "from the HF hub); spaCy lemmas/entity boost off (en_core_web_sm "
                             "is not on PyPI under its own name): semantic search only"}

    def add_session(self, conv: str, turns: list[dict[str, Any]]) -> None:
        self.memory.add([{"role": "user", "content": _speaker_text(t), "name": t["speaker"]}
                         for t in turns], user_id=conv, metadata={"conv": conv},
                        infer=False)
        # dia_id per turn: Mem0 takes one metadata dict per add() call, so one call per
        # turn would be needed to attach it; the hit's text maps back to its turn instead.

    def add_synth(self, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), self.batch):
            self.memory.add([{"role": "user", "content": r["text"]}
                             for r in rows[i:i + self.batch]], user_id=SYNTH_USER, infer=False)

    def search(self, scope: str, query: str) -> list[Any]:
        res = self.memory.search(query, top_k=K, filters={"user_id": scope}, threshold=0.0)
        return [r["memory"] for r in res["results"]]

    def close(self) -> None:
        try:
            self.memory.vector_store.client.close()
        except Exception:
            pass


# -- the phases ---------------------------------------------------------------------------
def timed_queries(fn: Callable[[dict[str, Any]], Any], queries: list[dict[str, Any]],
                  clients: int) -> tuple[list[float], list[Any], float]:
    lat = [0.0] * len(queries)
    out: list[Any] = [None] * len(queries)
    done = [0]
    lock = threading.Lock()
    started = time.perf_counter()

    def one(i: int) -> None:
        t0 = time.perf_counter()
        out[i] = fn(queries[i])
        lat[i] = time.perf_counter() - t0
        with lock:
            done[0] += 1
            progress(done[0], len(queries), f"search x{clients}", started)

    if clients == 1:
        for i in range(len(queries)):
            one(i)
    else:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, range(len(queries))))
    return lat, out, time.perf_counter() - started


def run_locomo(system: System, data: Path) -> dict[str, Any]:
    turns = read_jsonl(data / "locomo_turns.jsonl")
    questions = read_jsonl(data / "locomo_questions.jsonl")
    sessions: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for t in turns:
        sessions.setdefault((t["conv"], t["session"]), []).append(t)
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    for (conv, _s), group in sessions.items():
        system.add_session(conv, group)
        done += len(group)
        progress(done, len(turns), "ingest", t0, done - len(group))
    system.finish_ingest()
    ingest_s, ingest_cpu = time.perf_counter() - t0, time.process_time() - c0
    for q in questions[:3]:
        system.search(q["conv"], q["question"])  # warm-up, not measured
    lat, hits, _ = timed_queries(lambda q: system.search(q["conv"], q["question"]), questions, 1)
    return {"memories": len(turns), "ingest_s": ingest_s, "ingest_per_s": len(turns) / ingest_s,
            "ingest_cpu_s": ingest_cpu, "ingest_per_cpu_s": len(turns) / ingest_cpu,
            "search_1": pct(lat), "hits": hits}


def run_synth(system: System, data: Path, concurrency: int) -> dict[str, Any]:
    rows = read_jsonl(data / "synth.jsonl")
    queries = read_jsonl(data / "synth_queries.jsonl")
    chunk = 512  # rows handed over in chunks (a multiple of every batch), for progress
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), chunk):
        system.add_synth(rows[i:i + chunk])
        progress(min(i + chunk, len(rows)), len(rows), "ingest", t0, i)
    system.finish_ingest()
    ingest_s, ingest_cpu = time.perf_counter() - t0, time.process_time() - c0
    for q in queries[:5]:
        system.search(SYNTH_USER, q["question"])  # warm-up
    search = lambda q: system.search(SYNTH_USER, q["question"])  # noqa: E731
    c1 = time.process_time()
    lat1, hits, wall1 = timed_queries(search, queries, 1)
    search_cpu = time.process_time() - c1
    latc, _, wallc = timed_queries(search, queries, concurrency)
    texts = {r["sid"]: r["text"] for r in rows}
    found = [q["sid"] in h or texts[q["sid"]] in h for q, h in zip(queries, hits)]
    return {"memories": len(rows), "ingest_s": ingest_s, "ingest_per_s": len(rows) / ingest_s,
            "ingest_cpu_s": ingest_cpu, "ingest_per_cpu_s": len(rows) / ingest_cpu,
            "search_1": {**pct(lat1), "qps": len(queries) / wall1,
                         "cpu_ms_per_query": search_cpu / len(queries) * 1000},
            f"search_{concurrency}": {**pct(latc), "qps": len(queries) / wallc},
            "hit_at_10": sum(found) / len(found)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", required=True, choices=["memvault", "mem0", "chroma"])
    ap.add_argument("--phase", required=True, choices=["locomo", "synth"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model-dir", default="", help="the bundled MiniLM directory (peers)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args(argv)
    if args.system != "memvault" and not Path(args.model_dir, "config.json").is_file():
        ap.error(f"--model-dir {args.model_dir!r} is not a model directory")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    system: System = (Memvault(args.work, args.batch) if args.system == "memvault" else
                      Chroma(args.work, args.model_dir, args.batch) if args.system == "chroma"
                      else Mem0(args.work, args.model_dir, args.batch))
    open_s = time.perf_counter() - t0
    rss_open = rss_bytes()
    if args.phase == "locomo":
        res = run_locomo(system, args.data)
    else:
        res = run_synth(system, args.data, args.concurrency)
    res.update({"system": args.system, "phase": args.phase, "open_s": open_s,
                "rss_start_bytes": rss0, "rss_after_open_bytes": rss_open,
                "rss_end_bytes": rss_bytes(),
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "settings": system.settings, "python": sys.version.split()[0]})
    if isinstance(system, Chroma):
        res["embed_s"] = system.embed_s
        res["ingest_per_s_excl_embed"] = res["memories"] / max(res["ingest_s"] - system.embed_s,
                                                               1e-9)
    system.close()
    res["disk_bytes"] = dir_bytes(args.work)
    res["disk_bytes_per_memory"] = res["disk_bytes"] / max(res["memories"], 1)
    args.out.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
