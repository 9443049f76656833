#!/usr/bin/env python
"""Latency the memory proxy adds over calling the upstream directly.

    python benchmarks/bench_proxy.py --n 10000 --embedders hash minilm --out benchmarks/results

For each embedder: a vault with ``--n`` memories of one user, served by ``memvault serve
--proxy-to`` in a subprocess (the CLI path an operator runs), in front of the scripted
OpenAI-compatible server (a fixed reply, no model: what is measured is the proxy). The
official ``openai`` client then sends ``--requests`` chat completions as that user, each
one alternately straight to the upstream (the baseline) and through the proxy, so both
see the same machine load. Through the proxy every request also searches the user's
memories, injects them, and remembers the exchange (fast mode; the next request of the
same user waits until it is searchable). Three request patterns, each timed: back to back
(the next request right after the answer, as an agent loop calling again at once: the
previous exchange's write is charged to it), after a pause (``--gap-ms``, a user reading the
answer: the write is done by then, so what is left is the search), and back to back in a
conversation that goes on (each request carries the previous exchange as its history, as
chat clients and agent loops send it: the proxy need not wait for that write). Streaming
requests are timed to the last chunk.

Writes ``proxy.json`` and ``proxy.md`` to ``--out``: p50/p95 per path and the added
latency (proxied minus direct, per percentile). Loopback only; bounded loops.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, write  # noqa: E402

from memvault import Vault  # noqa: E402
from memvault.governance import KeyStore  # noqa: E402
from memvault.models.scripted import ScriptedLLMServer  # noqa: E402

WORDS = """apple river mountain coffee jazz bicycle garden winter lighthouse violin ocean
market library museum harbour forest bakery station rooftop marathon painting kayak
guitar chess recipe passport birthday allergy dentist meeting""".split()
PEOPLE = "Alice Bob Carmen Dmitri Emeka Farah Goran Hana Ivan Jun Keiko Liam Maya".split()
REPLY = "Sure, I remember that. Here is a short answer of about twenty words, as a real " \
        "model would give to a question like yours."


def sentence(rng: random.Random) -> str:
    a, b = rng.sample(WORDS, 2)
    return f"{rng.choice(PEOPLE)} talked about the {a} and the {b} on day {rng.randint(1, 999)}"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(-(-q * len(s) // 1)) - 1))] * 1e3, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def preload(db: Path, embedder: str, n: int, rng: random.Random,
            keep: Path | None) -> float:
    """Fill ``db`` with ``n`` memories; returns seconds. With ``keep``, a vault preloaded
    there before (same embedder, n and seed) is copied instead, and a new one is kept."""
    kept = keep / f"{embedder}-{n}.db" if keep else None
    if kept is not None and kept.exists():
        shutil.copy(kept, db)
        shutil.copytree(f"{kept}.index", f"{db}.index")
        for _ in range(n):  # the same random stream as preloading it
            sentence(rng)
        return 0.0
    started = time.perf_counter()
    with Vault(db, embedder=embedder) as vault, tqdm(total=n, desc=f"preload {embedder}",
                                                     unit="mem") as bar:
        vault.add_many(({"text": sentence(rng), "kind": "turn", "user_id": "alice"}
                        for _ in range(n)), batch_size=500, progress=bar.update)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(db, kept)
        shutil.copytree(f"{db}.index", f"{kept}.index")
    return time.perf_counter() - started


def run_one(embedder: str, n: int, requests: int, workdir: Path, seed: int,
            gap_ms: int, keep: Path | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    db = workdir / f"{embedder}.db"
    preload_s = preload(db, embedder, n, rng, keep)
    with KeyStore.for_vault(db) as keys:
        key = keys.create("bench-app", "alice")
    port = free_port()
    with ScriptedLLMServer(default=REPLY) as upstream:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parent.parent / "src"),
             os.environ.get("PYTHONPATH", "")])}
        server = subprocess.Popen(
            [sys.executable, "-m", "memvault", "serve", "--db", str(db), "--embedder",
             embedder, "--port", str(port), "--proxy-to", upstream.base_url,
             "--log-level", "warning", "--threads", "4"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: "
                                     f"{server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                time.sleep(0.2)
            direct = OpenAI(base_url=upstream.base_url, api_key="sk-upstream", max_retries=0)
            proxied = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
            times: dict[str, list[float]] = {f"{k}{g}": [] for k in
                                             ("direct", "proxy", "direct_stream", "proxy_stream")
                                             for g in ("", "_gap", "_conv")}
            warmup = 10
            previous: list[dict[str, str]] = []
            for i in tqdm(range(3 * (warmup + requests)), desc=f"requests {embedder}",
                          unit="req"):
                gap = ("", "_gap", "_conv")[i // (warmup + requests)]
                if gap == "_gap":
                    time.sleep(gap_ms / 1000)
                question = f"What do you remember about {sentence(rng)}?"
                messages = (previous if gap == "_conv" else []) + \
                    [{"role": "user", "content": question}]
                stream = i % 2 == 1
                for name, client in (("direct", direct), ("proxy", proxied)):
                    t0 = time.perf_counter()
                    if stream:
                        text = "".join(c.choices[0].delta.content or "" for c in
                                       client.chat.completions.create(
                                           model="m", messages=messages, stream=True)
                                       if c.choices)
                    else:
                        text = client.chat.completions.create(
                            model="m", messages=messages).choices[0].message.content
                    elapsed = time.perf_counter() - t0
                    assert text == REPLY, text
                    previous = [messages[-1], {"role": "assistant", "content": text}]
                    if i % (warmup + requests) >= warmup:
                        times[name + ("_stream" if stream else "") + gap].append(elapsed)
            injected = sum(1 for r in upstream.requests
                           if any(m["role"] == "system" for m in r["messages"]))
            parts = stages(db, embedder, rng, min(requests, 60))
        finally:
            server.terminate()
            server.wait(60)
    out: dict[str, Any] = {"embedder": embedder, "memories": n, "requests": requests,
                           "preload_s": round(preload_s, 1),
                           "proxied_requests_with_memories": injected, "gap_ms": gap_ms,
                           "stages_in_process": parts}
    for mode in ("", "_stream", "_gap", "_stream_gap", "_conv", "_stream_conv"):
        d, p = times["direct" + mode], times["proxy" + mode]
        key_ = ("stream" if "stream" in mode else "plain") + mode.replace("_stream", "")
        out[key_] = {"n": len(p),
                     "direct_p50_ms": pct(d, .5), "direct_p95_ms": pct(d, .95),
                     "proxy_p50_ms": pct(p, .5), "proxy_p95_ms": pct(p, .95),
                     "added_p50_ms": round(pct(p, .5) - pct(d, .5), 2),
                     "added_p95_ms": round(pct(p, .95) - pct(d, .95), 2)}
    return out


def stages(db: Path, embedder: str, rng: random.Random, n: int) -> dict[str, float]:
    """The proxy's vault calls timed alone, in this process, on the same vault and load:
    how much of the added latency is memvault's search and write themselves. The write
    is timed in the proxy's steps: the user's turn embedded ahead (while the upstream
    answers if it is slow, or while a new conversation waits for the previous write), the
    exchange stored and made searchable with the search's read event (what a new
    conversation waits for; when nothing embedded the user's turn ahead this step embeds
    it too), and its sentence vectors (deferred until no request is in front)."""
    from memvault.governance import ScopedVault

    out: dict[str, list[float]] = {"search_p50_ms": [], "ahead_p50_ms": [],
                                   "searchable_p50_ms": [], "sentences_p50_ms": []}
    with Vault(db, embedder=embedder) as vault, KeyStore.for_vault(db) as keys:
        sv = ScopedVault(vault, keys.verify(keys.create("bench-stages", "alice")),
                         audit_reads=True)  # as the server does
        for _ in range(n):
            question = f"What do you remember about {sentence(rng)}?"
            asked = [{"role": "user", "content": question}]
            reads: list[Any] = []
            sv.held_reads = reads  # as the proxy does: committed with the write
            t0 = time.perf_counter()
            sv.search(question, k=5, user_id="alice")
            t1 = time.perf_counter()
            vault.embed_ahead(messages=asked)
            t2 = time.perf_counter()
            with vault.noting(reads):
                sv.remember(asked + [{"role": "assistant", "content": REPLY}], mode="fast")
            vault.prepare(defer_sentences=True)
            t3 = time.perf_counter()
            vault.index_sentences()
            out["search_p50_ms"].append(t1 - t0)
            out["ahead_p50_ms"].append(t2 - t1)
            out["searchable_p50_ms"].append(t3 - t2)
            out["sentences_p50_ms"].append(time.perf_counter() - t3)
    return {k: pct(v, .5) for k, v in out.items()}


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Memory proxy: latency added over the upstream", "",
             f"Goal: <= {result['goal_added_p50_ms']} ms added at p50 with a "
             f"{result['memories']:,}-memory vault.", "",
             "| embedder | request | pattern | direct p50 / p95 (ms) | via proxy p50 / p95 (ms) "
             "| added p50 / p95 (ms) |", "|---|---|---|---|---|---|"]
    for run in result["runs"]:
        for mode in ("plain", "stream", "plain_gap", "stream_gap", "plain_conv", "stream_conv"):
            r = run[mode]
            pattern = (f"after a {run['gap_ms']} ms pause" if "gap" in mode else
                       "back to back, the conversation goes on" if "conv" in mode else
                       "back to back, a new conversation each")
            lines.append(f"| {run['embedder']} | {mode.split('_')[0]} (n={r['n']}) | {pattern} "
                         f"| {r['direct_p50_ms']} / "
                         f"{r['direct_p95_ms']} | {r['proxy_p50_ms']} / {r['proxy_p95_ms']} | "
                         f"**{r['added_p50_ms']}** / {r['added_p95_ms']} |")
    env = result["env"]
    lines += ["", "The proxy's vault calls timed alone in the same run (same vault, same load):", ""]
    lines += [f"- {run['embedder']}: search (scoped, k=5; its read event committed with "
              f"the write) p50 "
              f"{run['stages_in_process']['search_p50_ms']} ms; the write's steps as with a "
              f"slow upstream: the user's turn embedded ahead p50 "
              f"{run['stages_in_process']['ahead_p50_ms']} ms, then the exchange stored and "
              f"searchable (fast mode) p50 {run['stages_in_process']['searchable_p50_ms']}"
              f" ms, its sentence vectors p50 {run['stages_in_process']['sentences_p50_ms']} ms"
              for run in result["runs"]]
    lines += ["", f"Each proxied request: search of the user's memories (k=5), one injected "
              f"system message, the upstream call (the user's turn is embedded meanwhile if it "
              f"takes over 50 ms: not this upstream's case), "
              f"and the exchange remembered after the answer is out (fast mode): first "
              f"stored and searchable, with the search's read event in the same transaction, "
              f"then its sentence vectors, one at a time, each once no request is in front. "
              f"Back to back, a new conversation waits for the first step "
              f"(read-your-writes; it embeds its query, then its own turn, meanwhile); after a "
              f"pause the write is done; a conversation that goes on carries the exchange in "
              f"its history, so it does not wait. "
              f"Server: `memvault serve --proxy-to` in its own process (4 worker threads); "
              f"upstream: the scripted OpenAI-compatible server; client: the official "
              f"`openai` package, direct and proxied requests interleaved. Machine: "
              f"{os.cpu_count()} cores shared with other work, load {env['load_start']} -> "
              f"{env['load_end']}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="memories in the vault")
    ap.add_argument("--embedders", nargs="+", default=["hash", "minilm"])
    ap.add_argument("--requests", type=int, default=200, help="timed requests per embedder")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gap-ms", type=int, default=1000,
                    help="the pause before each request in the second pattern")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--name", default="proxy")
    ap.add_argument("--keep-vaults", default=None,
                    help="a directory to keep the preloaded vaults in and copy them from "
                         "(for repeated runs; the preload is not what is timed)")
    args = ap.parse_args()
    if not 1 <= args.n <= 1_000_000 or not 1 <= args.requests <= 100_000:
        raise SystemExit("--n in 1..1e6 and --requests in 1..1e5")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        keep = Path(args.keep_vaults) if args.keep_vaults else None
        runs = [run_one(e, args.n, args.requests, Path(tmp), args.seed, args.gap_ms, keep)
                for e in args.embedders]
    write(args.out, args.name, {"memories": args.n, "goal_added_p50_ms": 40, "runs": runs,
                                "env": machine(load)}, markdown)


if __name__ == "__main__":
    main()
