"""Where ingest time goes: chat turns (``Vault.add_messages`` per session) and raw memories
(``Vault.add_many``), each against the embedder alone in the same run (issue 25).

    python benchmarks/bench_ingest.py --locomo /work/shared/data/locomo-dev.json --convs 2 \
        --synthetic 2000 [--profile] --out benchmarks/results

Each phase writes into a fresh vault and stops when the data is searchable (the vector
index's catch-up, where a turn's sentence and third-person vectors are embedded, is part
of ingest, as in ``bench_peers``). The embedder is wrapped in a counter (it delegates,
nothing is faked): how many calls, how many texts per turn, how many distinct, and the
time inside ``embed``. Baselines, same process, same texts:

- ``embed alone, same texts``: every text the vault embedded, in batches of 256: the
  ceiling for this vault's work; ``vs embed-alone`` is vault rate / that rate.
- ``embed alone, one per record``: one text per turn / memory (what Mem0 and Chroma embed).

Rates are given per wall second and per CPU second of the process (``time.process_time``,
all threads): on a shared machine the CPU figure moves least with other work. ``--profile``
adds a cProfile (CPU clock) of each phase's vault work: the top functions by own time.

The synthetic memories are written twice: in one ``add_many`` call (batch N+1 is embedded
while batch N is written) and in one call per batch (nothing to embed ahead), alternated
``--repeat`` times: what embedding ahead is worth, in one process.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from bench_core import Corpus  # noqa: E402

from memvault import Vault  # noqa: E402
from memvault.evaluation.locomo import load  # noqa: E402
from memvault.models import get_embedder  # noqa: E402


class CountingEmbedder:
    """Delegates to ``inner``; records calls, texts and the time spent inside ``embed``."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls, self.texts, self.seconds = 0, [], 0.0

    def embed(self, texts: Sequence[str]) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            with self._lock:
                self.calls += 1
                self.texts += list(texts)
                self.seconds += time.perf_counter() - t0


def _embed_alone(embedder: Any, texts: list[str], batch: int = 256) -> dict[str, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch):
        embedder.embed(texts[i:i + batch])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"texts": len(texts), "s": wall, "cpu_s": cpu, "per_s": len(texts) / wall,
            "per_cpu_s": len(texts) / cpu}


def _profiled(fn: Callable[[], Any], enabled: bool, top: int = 25) -> tuple[Any, str]:
    if not enabled:
        return fn(), ""
    prof = cProfile.Profile(time.process_time)
    result = prof.runcall(fn)
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return result, buf.getvalue()


def _phase(name: str, counter: CountingEmbedder, work: Path, records: int,
           write: Callable[[Vault], None], baseline_texts: list[str],
           profile: bool) -> dict[str, Any]:
    """One fresh vault: ``write`` then index catch-up, timed; then the baselines."""
    vault = Vault(work / f"{name}.db", embedder=counter)
    try:
        vault.prepare()  # searcher and guard built before timing (model already warm)
        counter.reset()

        def run() -> None:
            write(vault)
            vault.searcher.sync()

        t0, c0 = time.perf_counter(), time.process_time()
        _, prof = _profiled(run, profile)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        embedded = list(counter.texts)
        calls, embed_s = counter.calls, counter.seconds
    finally:
        vault.close()
    same = _embed_alone(counter.inner, embedded)
    one = same if embedded == baseline_texts else _embed_alone(counter.inner, baseline_texts)
    rate = records / wall
    return {
        "records": records, "s": wall, "cpu_s": cpu, "per_s": rate, "per_cpu_s": records / cpu,
        "embed_calls": calls, "texts_embedded": len(embedded),
        "distinct_texts": len(set(embedded)), "texts_per_record": len(embedded) / records,
        "embed_s": embed_s, "other_s": wall - embed_s,
        "embed_alone_same": same, "embed_alone_one": one,
        "vs_embed_same": rate / (len(embedded) / same["s"]) * len(embedded) / records
        if embedded else None,
        "vs_embed_same_cpu": records / cpu / (same["per_cpu_s"] / (len(embedded) / records))
        if embedded else None,
        "vs_embed_one": rate / one["per_s"],
        "vs_embed_one_cpu": records / cpu / one["per_cpu_s"],
        "profile": prof,
    }


def locomo_sessions(path: Path, convs: int) -> list[tuple[str, list[dict[str, Any]]]]:
    sessions: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for c in load(path)[:convs]:
        for t in c.turns:
            sessions.setdefault((c.sample_id, t.session), []).append(
                {"role": "user", "name": t.speaker, "content": t.text,
                 "timestamp": t.date.isoformat(), "metadata": {"dia_id": t.dia_id}})
    return [(conv, msgs) for (conv, _), msgs in sessions.items()]


def markdown(r: dict[str, Any]) -> str:
    env = r["env"]
    out = [f"# Ingest against the embedder alone (same run){r['label']}", "",
           f"`{r['command']}`", "",
           f"Embedder `{r['embedder']}`; machine: {os.cpu_count()} cores, shared; load "
           f"{env['load_start']} -> {env['load_end']} (`uptime` at start: {r['uptime']}).", "",
           "| phase | records | /s | /CPU s | texts embedded per record | embed calls | "
           "time in embed | embed alone, same texts /s | vault vs embed-alone (wall / CPU) | "
           "embed alone, one text per record /s | vault vs that (wall / CPU) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, p in r["phases"].items():
        out.append(
            f"| {name} | {p['records']} | {p['per_s']:.0f} | {p['per_cpu_s']:.0f} | "
            f"{p['texts_per_record']:.2f} ({p['distinct_texts'] / p['records']:.2f} distinct) | "
            f"{p['embed_calls']} | {p['embed_s'] / p['s']:.0%} | "
            f"{p['embed_alone_same']['per_s'] / p['texts_per_record']:.0f} records "
            f"({p['embed_alone_same']['per_s']:.0f} texts) | {p['vs_embed_same']:.2f}x / "
            f"{p['vs_embed_same_cpu']:.2f}x | {p['embed_alone_one']['per_s']:.0f} | "
            f"{p['vs_embed_one']:.2f}x / {p['vs_embed_one_cpu']:.2f}x |")
    out += ["", "`/s`: records until searchable per wall second (index catch-up included); "
            "`/CPU s`: per second of the process's CPU time. `vault vs embed-alone`: the "
            "vault's rate over the rate at which the embedder alone embeds the same texts "
            "in batches of 256 (1.00x = nothing but embedding). `one text per record`: "
            "the embedder alone on one text per record (what a peer embeds).", ""]
    for name, p in r["phases"].items():
        if p.get("profile"):
            out += [f"## cProfile: {name} (CPU clock)", "", "```",
                    p["profile"].strip()[:6000], "```", ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locomo", type=Path, default=None, help="LoCoMo dev JSON (not shipped)")
    ap.add_argument("--convs", type=int, default=2)
    ap.add_argument("--synthetic", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="synthetic phases, alternated")
    ap.add_argument("--name", default="ingest")
    ap.add_argument("--label", default="", help="a note for the title (e.g. the branch)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    uptime = os.popen("uptime").read().strip()
    counter = CountingEmbedder(get_embedder(args.embedder))
    counter.inner.embed(["warm up the model"] * 8)
    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="memvault-ingest-") as tmp:
        work = Path(tmp)
        if args.locomo is not None:
            sessions = locomo_sessions(args.locomo, args.convs)
            n = sum(len(m) for _, m in sessions)

            def turns(v: Vault) -> None:
                for conv, msgs in sessions:
                    v.add_messages(msgs, user_id=conv)

            one = [f"{m['name']}: {m['content']}" for _, ms in sessions for m in ms]
            phases["locomo turns (add_messages per session)"] = _phase(
                "locomo", counter, work, n, turns, one, args.profile)
        if args.synthetic:
            texts = Corpus(args.synthetic).texts

            def many(v: Vault) -> None:
                v.add_many([{"text": t} for t in texts], batch_size=args.batch, user_id="u")

            def per_batch(v: Vault) -> None:  # one batch a call: nothing embedded ahead
                for i in range(0, len(texts), args.batch):
                    v.add_many([{"text": t} for t in texts[i:i + args.batch]],
                               batch_size=args.batch, user_id="u")

            for rep in range(args.repeat):  # alternated, so both see the same load
                tag = f" #{rep + 1}" if args.repeat > 1 else ""
                phases[f"synthetic (add_many, batch {args.batch}){tag}"] = _phase(
                    f"synth{rep}", counter, work, len(texts), many, texts, args.profile)
                phases[f"synthetic (one add_many per batch of {args.batch}){tag}"] = _phase(
                    f"synth-per-batch{rep}", counter, work, len(texts), per_batch, texts,
                    args.profile)
    result = {"command": "python benchmarks/bench_ingest.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "label": f" ({args.label})" if args.label else "",
              "embedder": counter.id, "uptime": uptime, "phases": phases,
              "env": _results.machine(load_start)}
    _results.write(args.out, args.name, result, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
