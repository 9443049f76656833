#!/usr/bin/env python
"""Do slow model calls hold up the rest of the REST server?

    python benchmarks/bench_server_models.py --out benchmarks/results

A server in this process (BackgroundServer, real HTTP on 127.0.0.1) whose LLM is the
scripted OpenAI-compatible server answering every chat after ``--model-delay`` seconds.
The same ``--requests`` searches (and health probes) are timed twice in one run: with no
model traffic (the baseline) and while ``--chatters`` threads keep ``POST /v1/chat`` busy.
Chats run on the server's model pool, so search and health latency under model load should
stay close to the baseline (ratio ~1) while chats queue behind each other.

Writes ``server_models.json`` and ``server_models.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import httpx

from memvault import Vault
from memvault.governance import KeyStore
from memvault.models.scripted import Reply, ScriptedLLMServer
from memvault.server.app import create_app
from memvault.server.serve import BackgroundServer


def timings(fn: Callable[[], Any], n: int) -> dict[str, float]:
    values = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        values.append((time.perf_counter() - started) * 1e3)
    values.sort()
    return {"p50_ms": round(statistics.median(values), 3),
            "p95_ms": round(values[min(len(values) - 1, int(0.95 * len(values)))], 3)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-models-"))
    vault = Vault(tmp / "vault.db", embedder="hash")
    keys = KeyStore.for_vault(tmp / "vault.db")
    token = keys.create("bench", "u1")
    headers = {"Authorization": f"Bearer {token}"}
    with ScriptedLLMServer(default=Reply.slow(args.model_delay, "ok")) as llm, \
            BackgroundServer(create_app(vault, keys, llm=llm.llm(timeout=60))) as srv, \
            httpx.Client(base_url=srv.url, headers=headers, timeout=60) as http:
        http.post("/v1/memories/batch", json={"records": [
            f"memory {i} about topic {i % 17}" for i in range(500)]}).raise_for_status()

        def search() -> None:
            http.post("/v1/search", json={"query": "topic 3", "k": 5}).raise_for_status()

        def health() -> None:
            http.get("/v1/health").raise_for_status()

        out: dict[str, Any] = {"idle": {"search": timings(search, args.requests),
                                        "health": timings(health, args.requests)}}
        stop, chats, depth = threading.Event(), [], []

        def chatter() -> None:
            with httpx.Client(base_url=srv.url, headers=headers, timeout=120) as own:
                while not stop.is_set():
                    started = time.perf_counter()
                    own.post("/v1/chat", json={"query": "topic 3?"}).raise_for_status()
                    chats.append(time.perf_counter() - started)

        threads = [threading.Thread(target=chatter) for _ in range(args.chatters)]
        for t in threads:
            t.start()
        time.sleep(args.model_delay * 2)  # let the model queue fill
        depth.append(http.get("/v1/health").json()["model"]["queue_depth"])
        out["model_load"] = {"search": timings(search, args.requests),
                             "health": timings(health, args.requests)}
        depth.append(http.get("/v1/health").json()["model"]["queue_depth"])
        stop.set()
        for t in threads:
            t.join(120)
    keys.close()
    vault.close()
    ratio = {k: round(out["model_load"][k]["p50_ms"] / out["idle"][k]["p50_ms"], 2)
             for k in ("search", "health")}
    return {"config": vars(args) | {"out": str(args.out)}, **out, "p50_ratio_loaded_vs_idle":
            ratio, "chats_completed": len(chats),
            "chat_latency_p50_s": round(statistics.median(chats), 3) if chats else None,
            "model_queue_depth_seen": depth,
            "env": {"python": platform.python_version(), "machine": platform.machine()}}


def markdown(r: dict[str, Any]) -> str:
    rows = [f"| {k} | {r['idle'][k]['p50_ms']} | {r['idle'][k]['p95_ms']} | "
            f"{r['model_load'][k]['p50_ms']} | {r['model_load'][k]['p95_ms']} | "
            f"{r['p50_ratio_loaded_vs_idle'][k]} |" for k in ("search", "health")]
    c = r["config"]
    return "\n".join([
        "# REST latency while the model is busy", "",
        f"{c['chatters']} clients keep POST /v1/chat busy (scripted LLM, "
        f"{c['model_delay']} s per answer, 1 model worker); {c['requests']} sequential "
        "requests timed per row, same run, same server.", "",
        "| route | idle p50 ms | idle p95 ms | model-loaded p50 ms | model-loaded p95 ms "
        "| p50 ratio |", "|---|---|---|---|---|---|", *rows, "",
        f"Chats completed: {r['chats_completed']}, chat latency p50 "
        f"{r['chat_latency_p50_s']} s (queued on the model pool: depth seen "
        f"{r['model_queue_depth_seen']}).", ""])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--chatters", type=int, default=4)
    ap.add_argument("--model-delay", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server_models.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "server_models.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
