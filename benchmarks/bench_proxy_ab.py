#!/usr/bin/env python
"""The memory proxy's added latency, this source tree against another one, in one run.

    python benchmarks/bench_proxy_ab.py --baseline-src /path/to/other/checkout/src

On a shared machine the load moves by a factor of several within minutes, so two
``bench_proxy.py`` runs cannot be compared. Here both proxies run at once (``memvault
serve --proxy-to``, each in its own process, each on its own copy of the same preloaded
vault, in front of the same scripted upstream) and take turns in blocks of ``--block``
requests, so both see the same load. Within a block the requests are back to back as in
``bench_proxy.py``; a block's first request follows the other proxy's block (its write
had time to finish), so it is not timed. Patterns: back to back with a new conversation
each (waits for the previous exchange to be searchable), and back to back with the
conversation going on (carries the exchange in its history, waits for nothing).

Writes ``proxy-ab.json`` and ``proxy-ab.md``: per proxy and pattern, the p50/p95 added
over the direct upstream call timed just before it, and the ratio of this tree's p50 to
the baseline's.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
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
from bench_proxy import REPLY, free_port, pct, preload, sentence  # noqa: E402

from memvault.governance import KeyStore  # noqa: E402
from memvault.models.scripted import ScriptedLLMServer  # noqa: E402

PATTERNS = {"new": "back to back, a new conversation each",
            "conv": "back to back, the conversation goes on"}


def serve(src: Path, db: Path, embedder: str, upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "memvault", "serve", "--db", str(db), "--embedder", embedder,
         "--port", str(port), "--proxy-to", upstream, "--log-level", "warning",
         "--threads", "4"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).is_success:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the server from {src} did not start: "
                             f"{proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.2)


def ask(client: OpenAI, messages: list[dict[str, str]], stream: bool) -> tuple[float, str]:
    t0 = time.perf_counter()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="m", messages=messages, stream=True) if c.choices)
    else:
        text = client.chat.completions.create(model="m",
                                              messages=messages).choices[0].message.content
    return time.perf_counter() - t0, text or ""


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    keep = Path(args.keep_vaults) if args.keep_vaults else None
    template = workdir / "template.db"
    preload(template, args.embedder, args.n, rng, keep)
    trees = {"this": Path(__file__).resolve().parent.parent / "src",
             "baseline": Path(args.baseline_src).resolve()}
    procs: list[subprocess.Popen[bytes]] = []
    times: dict[str, dict[str, list[float]]] = {
        t: {f"{k}_{p}": [] for k in ("direct", "proxy") for p in PATTERNS} for t in trees}
    with ScriptedLLMServer(default=REPLY) as upstream:
        try:
            clients: dict[str, OpenAI] = {}
            for name, src in trees.items():
                db = workdir / f"{name}.db"
                shutil.copy(template, db)
                shutil.copytree(f"{template}.index", f"{db}.index")
                with KeyStore.for_vault(db) as keys:
                    key = keys.create("bench-app", "alice")
                proc, url = serve(src, db, args.embedder, upstream.base_url)
                procs.append(proc)
                clients[name] = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            direct = OpenAI(base_url=upstream.base_url, api_key="sk-upstream", max_retries=0)
            blocks = -(-args.requests // (args.block - 1))
            previous: dict[str, list[dict[str, str]]] = {t: [] for t in trees}
            steps = len(PATTERNS) * (blocks + 1) * len(trees) * args.block
            with tqdm(total=steps, desc="requests", unit="req") as bar:
                for pattern in PATTERNS:
                    for b in range(blocks + 1):  # block 0 warms both up
                        order = list(trees) if b % 2 == 0 else list(trees)[::-1]
                        for name in order:
                            for j in range(args.block):
                                question = f"What do you remember about {sentence(rng)}?"
                                history = previous[name] if pattern == "conv" else []
                                messages = history + [{"role": "user", "content": question}]
                                stream = j % 2 == 1
                                d, _ = ask(direct, messages, stream)
                                p, text = ask(clients[name], messages, stream)
                                assert text == REPLY, text
                                previous[name] = [messages[-1],
                                                  {"role": "assistant", "content": text}]
                                if b > 0 and j > 0:
                                    times[name][f"direct_{pattern}"].append(d)
                                    times[name][f"proxy_{pattern}"].append(p)
                                bar.update()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(60)
    out: dict[str, Any] = {"embedder": args.embedder, "memories": args.n,
                           "block": args.block, "baseline_src": str(trees["baseline"])}
    for pattern in PATTERNS:
        row: dict[str, Any] = {}
        for name in trees:
            d, p = times[name][f"direct_{pattern}"], times[name][f"proxy_{pattern}"]
            row[name] = {"n": len(p), "direct_p50_ms": pct(d, .5), "proxy_p50_ms": pct(p, .5),
                         "proxy_p95_ms": pct(p, .95),
                         "added_p50_ms": round(pct(p, .5) - pct(d, .5), 2),
                         "added_p95_ms": round(pct(p, .95) - pct(d, .95), 2)}
        base = row["baseline"]["added_p50_ms"]
        row["ratio_added_p50"] = round(row["this"]["added_p50_ms"] / base, 2) if base > 0 else None
        out[pattern] = row
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Memory proxy: this tree against a baseline, same run", "",
             f"{result['memories']:,} memories, {result['embedder']} embedder; both proxies "
             f"served at once and taking turns in blocks of {result['block']} requests "
             f"(the first of each block untimed). Baseline: `{result['baseline_src']}`.", "",
             "| pattern | proxy | n | direct p50 (ms) | via proxy p50 / p95 (ms) "
             "| added p50 / p95 (ms) |", "|---|---|---|---|---|---|"]
    for pattern, label in PATTERNS.items():
        for name in ("baseline", "this"):
            r = result[pattern][name]
            lines.append(f"| {label} | {name} | {r['n']} | {r['direct_p50_ms']} | "
                         f"{r['proxy_p50_ms']} / {r['proxy_p95_ms']} | "
                         f"**{r['added_p50_ms']}** / {r['added_p95_ms']} |")
    lines += ["", "Added p50, this / baseline: " + "; ".join(
        f"{label}: {result[p]['ratio_added_p50']}" for p, label in PATTERNS.items()), "",
        f"Machine: {os.cpu_count()} cores shared with other work, load "
        f"{result['env']['load_start']} -> {result['env']['load_end']}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-src", required=True, help="the other tree's src/ directory")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--requests", type=int, default=60, help="timed requests per proxy and pattern")
    ap.add_argument("--block", type=int, default=6)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--name", default="proxy-ab")
    ap.add_argument("--keep-vaults", default=None)
    args = ap.parse_args()
    if not 1 <= args.n <= 1_000_000 or not 1 <= args.requests <= 10_000 or \
            not 2 <= args.block <= 100 or not (Path(args.baseline_src) / "memvault").is_dir():
        raise SystemExit("--n in 1..1e6, --requests in 1..1e4, --block in 2..100, and "
                         "--baseline-src must hold the memvault package")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-proxy-ab-") as tmp:
        result = run(args, Path(tmp))
    result["env"] = machine(load)
    write(args.out, args.name, result, markdown)


if __name__ == "__main__":
    main()
