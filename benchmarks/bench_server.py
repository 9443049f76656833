#!/usr/bin/env python
"""REST server load test on loopback: concurrent clients mixing add and search.

    python benchmarks/bench_server.py --seconds 60 --out benchmarks/results

Starts ``memvault.server.serve`` in a subprocess on 127.0.0.1 (a vault preloaded with
``--preload`` memories), then runs ``--clients`` threads, each with its own API key and
RemoteVault, for ``--seconds`` or until ``--max-requests`` per client. Each request is an
add (probability ``--write-ratio``) or a search. Afterwards the server is stopped
(SIGTERM), the vault reopened, and every acknowledged add looked up: a write that was
acknowledged but is missing is a lost write.

Writes ``server.json`` (every number, plus the environment) and ``server.md`` to ``--out``.
Only loopback traffic; every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import httpx

from _results import wait_healthy
from memvault import MemvaultError, Vault
from memvault.client import connect
from memvault.governance import KeyStore

WORDS = """apple river mountain coffee jazz bicycle garden winter lighthouse violin ocean
market library museum harbour forest bakery station rooftop marathon painting kayak
guitar chess recipe passport birthday allergy dentist meeting""".split()
PEOPLE = "Alice Bob Carmen Dmitri Emeka Farah Goran Hana Ivan Jun Keiko Liam Maya Nikhil".split()


def sentence(rng: random.Random) -> str:
    a, b = rng.sample(WORDS, 2)
    return f"{rng.choice(PEOPLE)} talked about the {a} and the {b} on day {rng.randint(1, 999)}"


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(values)
    pick = lambda q: s[min(len(s) - 1, max(0, int(-(-q * len(s) // 1)) - 1))]  # noqa: E731
    return {"p50_ms": round(pick(0.50) * 1e3, 2), "p95_ms": round(pick(0.95) * 1e3, 2),
            "p99_ms": round(pick(0.99) * 1e3, 2), "max_ms": round(s[-1] * 1e3, 2)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVER = """
import sys
from pathlib import Path
from memvault.settings import Settings
from memvault.server.serve import serve
path, embedder, durability, port, threads = sys.argv[1:6]
serve(Settings(path=Path(path), embedder=embedder, durability=durability), "127.0.0.1",
      int(port), threads=int(threads), log_level="warning")
"""


class Client(threading.Thread):
    def __init__(self, n: int, url: str, token: str, args: argparse.Namespace,
                 deadline: float) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.n, self.url, self.token, self.args, self.deadline = n, url, token, args, deadline
        self.rng = random.Random(args.seed * 1000 + n)
        self.latency: dict[str, list[float]] = {"add": [], "search": []}
        self.errors: Counter[str] = Counter()
        self.acked: list[str] = []
        self.attempted_adds = 0

    def run(self) -> None:
        with connect(self.url, self.token, timeout=self.args.timeout) as rv:
            for i in range(self.args.max_requests):
                if time.monotonic() >= self.deadline:
                    break
                op = "add" if self.rng.random() < self.args.write_ratio else "search"
                started = time.perf_counter()
                try:
                    if op == "add":
                        self.attempted_adds += 1
                        item = rv.add(f"[c{self.n} #{i}] {sentence(self.rng)}", kind="note",
                                      session_id=f"bench-{self.n}")
                        self.acked.append(item.id)
                    else:
                        rv.search(" ".join(self.rng.sample(WORDS, 2)), k=10)
                except MemvaultError as exc:
                    self.errors[f"{op}:{exc.code}"] += 1
                    continue
                self.latency[op].append(time.perf_counter() - started)


def monitor(url: str, stop: threading.Event, samples: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=url, timeout=5) as http:
        while not stop.wait(0.5):
            try:
                samples.append(http.get("/v1/health").json())
            except httpx.HTTPError:
                pass


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="memvault-bench-server-"))
    db = work / "vault.db"
    users = [f"bench-user-{i % args.users}" for i in range(args.clients)]
    try:
        preload_started = time.perf_counter()
        rng = random.Random(args.seed)
        with Vault(db, embedder=args.embedder) as v:
            for u in sorted(set(users)):
                v.add_many([sentence(rng) for _ in range(args.preload // len(set(users)))],
                           user_id=u, kind="fact")
            preloaded = v.count()
        preload_s = time.perf_counter() - preload_started
        with KeyStore.for_vault(db) as keys:
            # the first client's key reads the per-route metrics at the end: an admin key
            tokens = [keys.create(f"bench-{i}", users[i], admin=i == 0)
                      for i in range(args.clients)]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(db), args.embedder,
                                   args.durability, str(port), str(args.threads)])
        try:
            if not wait_healthy(url, server):
                raise SystemExit("the server did not start")
            stop, samples = threading.Event(), []
            watcher = threading.Thread(target=monitor, args=(url, stop, samples), daemon=True)
            watcher.start()
            started = time.monotonic()
            clients = [Client(i, url, tokens[i], args, started + args.seconds)
                       for i in range(args.clients)]
            for c in clients:
                c.start()
            for c in clients:
                c.join(args.seconds + args.timeout + 30)
            elapsed = time.monotonic() - started
            stop.set()
            watcher.join(5)
            server_metrics = httpx.get(f"{url}/v1/metrics", timeout=30, headers={
                "Authorization": f"Bearer {tokens[0]}"}).json()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        # after shutdown: is every acknowledged write there?
        acked = [i for c in clients for i in c.acked]
        with Vault(db, embedder=args.embedder) as v:
            after = v.count()
            present: set[str] = set()
            for start in range(0, len(acked), 1000):
                chunk = acked[start:start + 1000]
                present |= {i.id for i in v.list(filters={"ids": chunk}, limit=1000).items}
            check = v.check()
        lost = len(acked) - len(present)
        attempted = sum(c.attempted_adds for c in clients)
        lat = {op: [x for c in clients for x in c.latency[op]] for op in ("add", "search")}
        errors: Counter[str] = sum((c.errors for c in clients), Counter())
        total_ok = sum(len(v) for v in lat.values())
        return {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "preloaded": preloaded, "preload_s": round(preload_s, 2),
            "elapsed_s": round(elapsed, 2),
            "requests_ok": total_ok, "errors": dict(errors),
            "throughput_rps": round(total_ok / elapsed, 1),
            "ops": {op: {"count": len(values), "per_s": round(len(values) / elapsed, 1),
                         **percentiles(values)} for op, values in lat.items()},
            "all": percentiles(lat["add"] + lat["search"]),
            "writes": {"attempted": attempted, "acknowledged": len(acked),
                       "found_after_restart": len(present), "lost": lost,
                       "count_before": preloaded, "count_after": after,
                       "count_after_minus_acknowledged": after - preloaded - len(acked)},
            "store_check_ok": check["ok"],
            "server": {"max_queue_depth": max((s.get("queue_depth", 0) for s in samples),
                                              default=0),
                       "max_in_flight": max((s.get("in_flight", 0) for s in samples), default=0),
                       "routes": {k: v for k, v in server_metrics["routes"].items()
                                  if k in ("POST /v1/memories", "POST /v1/search")}},
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def env_info() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def markdown(result: dict[str, Any]) -> str:
    c, w = result["config"], result["writes"]
    rows = [f"| {op} | {o['count']} | {o['per_s']} | {o['p50_ms']} | {o['p95_ms']} | "
            f"{o['p99_ms']} | {o['max_ms']} |" for op, o in result["ops"].items()]
    a = result["all"]
    rows.append(f"| all | {result['requests_ok']} | {result['throughput_rps']} | {a['p50_ms']} "
                f"| {a['p95_ms']} | {a['p99_ms']} | {a['max_ms']} |")
    errors = ", ".join(f"{k}: {v}" for k, v in result["errors"].items()) or "none"
    env = result["env"]
    return "\n".join([
        "# REST server load test (loopback)", "",
        f"{c['clients']} clients for {result['elapsed_s']} s, write ratio {c['write_ratio']}, "
        f"embedder `{c['embedder']}`, durability `{c['durability']}`, {c['threads']} server "
        f"worker threads, {result['preloaded']} memories preloaded. Client-side wall-clock "
        "latency of whole calls (RemoteVault -> HTTP -> ScopedVault -> Vault and back).", "",
        "| op | ok | per s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Errors: {errors}.", "",
        f"Writes: {w['attempted']} attempted, {w['acknowledged']} acknowledged, "
        f"{w['found_after_restart']} found after the server stopped, **{w['lost']} lost**; "
        f"count after - count before - acknowledged = {w['count_after_minus_acknowledged']}. "
        f"Store check after the run: {'ok' if result['store_check_ok'] else 'FAILED'}.", "",
        f"Server: max queue depth {result['server']['max_queue_depth']}, max in flight "
        f"{result['server']['max_in_flight']} (sampled every 0.5 s).", "",
        f"Machine: {env['cpus']} cpus, python {env['python']}, load avg at start "
        f"{env['loadavg_start']}, at end {env['loadavg_end']}. Clients and server share the "
        "machine's cores, so client overhead is part of every number.", ""])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--max-requests", type=int, default=100_000, help="per client")
    ap.add_argument("--write-ratio", type=float, default=0.3)
    ap.add_argument("--users", type=int, default=4, help="distinct user scopes among clients")
    ap.add_argument("--preload", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8, help="server worker threads")
    ap.add_argument("--embedder", default="hash")
    ap.add_argument("--durability", default="full", choices=["full", "normal"])
    ap.add_argument("--timeout", type=float, default=30.0, help="per request")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary vault")
    args = ap.parse_args(argv)
    if not (0 < args.seconds <= 3600 and 1 <= args.clients <= 64 and args.max_requests >= 1):
        ap.error("--seconds in (0, 3600], --clients in 1..64, --max-requests >= 1")
    env = {**env_info(), "loadavg_start": env_info()["loadavg"]}
    result = run(args)
    env["loadavg_end"] = env_info()["loadavg"]
    result["env"] = env
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "server.md").write_text(markdown(result))
    print(markdown(result))
    return 1 if result["writes"]["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
