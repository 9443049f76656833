"""The summary tier against flat search at scale: one owner with N memories (issue 29).

Used by ``bench_summary_tier.py --scale N`` (and so by ``make bench-lifecycle``). Why not
synthetic sentences: the tier only pays, if ever, when an owner's scope is large and made
of many conversations, so the vault must look like that. It holds, all under one user:

* the evaluated part: the first ``limit`` conversations of each suite (LoCoMo dev, the
  generated seeds), stored as ``make bench-locomo`` stores them (one session per
  ``Vault.add_messages`` call; session ids ``<sample_id>/session_<n>``);
* filler up to N memories: conversations from the generator (seeds from 1001 up, so never
  an evaluated suite's seed), sessions of 8-15 turns; a filler conversation whose people
  share a first name with an evaluated conversation's is skipped, so that a question
  still has one right answer ("Where does Maya live?" names one Maya in the vault).

Conversations are stored in a seeded shuffled order, the index is brought up to date,
then one consolidation pass writes the session and topic summaries (``consolidate``
only: a full scheduler pass would also link every memory, ~40 ms each, an hour at 100k).
One progress bar covers the whole build: the turns written, the turns indexed, the
sessions consolidated and the summaries indexed.

What the build skips, and why it does not favour a tier: (1) the embedder is wrapped in a
memo (:class:`Memo`): a text embedded once is not embedded again (generated filler repeats
sentences); the model is deterministic, so every memory gets the vector it would get
anyway, only ~25-40% fewer model calls. (2) Filler is written with the injection guard off
(``Vault.guard = None`` for those writes; the evaluated conversations are screened as
``make bench-locomo`` screens them): a filler turn the guard would have quarantined is
searchable here, by flat and tiered search alike, so it only makes the haystack a little
bigger. Profiled at 2,500 memories (cProfile): the model is ~75% of the build, the guard
~8%, consolidation ~13%.

Then every question with evidence is searched (k=20) once per tier on that vault: per
suite recall@10, MRR, the tokens of the top k (and the k, and tokens, at which the row
reaches flat search's recall@10), and the latency of each search (p50, p95). A hit counts
for an evidence turn only if it is that turn of that conversation (session id prefix and
``dia_id``).

``cache``: a directory where the built vault is kept and reused by a later run with the
same inputs (N, embedder, suites' bytes, limit); its build figures are reported from the
run that built it. Without it the vault is built in a temporary directory and deleted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from memvault import Vault
from memvault.vault import message_records
from memvault.evaluation import locomo
from memvault.evaluation.generate import generate
from memvault.models import get_embedder
from memvault.retrieval.config import SearchConfig
from memvault.scheduler import consolidate
from memvault.scheduler.summarize import token_count
from memvault.settings import Settings

OWNER = "owner"
K = 20
FILLER_SEED = 1001
TIERS = ("flat", "summaries", "auto")


def _first(name: str) -> str:
    return name.split()[0].lower() if name.split() else ""


def _names(path: str, convs: list[locomo.Conversation]) -> set[str]:
    """First names of the people of ``convs`` (speakers, and the generator's people)."""
    out = {_first(s) for c in convs for s in c.speakers}
    ids = {c.sample_id for c in convs}
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    for sample in raw if isinstance(raw, list) else []:
        if str(sample.get("sample_id")) in ids:
            out |= {_first(p.get("name", "")) for p in
                    (sample.get("generator") or {}).get("people", [])}
    return out - {""}


def filler(n_turns: int, avoid: set[str], work: Path) -> tuple[list[locomo.Conversation], int]:
    """Generated conversations holding exactly ``n_turns`` turns (the last one cut at a
    turn), none naming a person in ``avoid``; and how many were skipped for that."""
    import lifecycle_quality  # its loader reads the generated suite's date formats

    out: list[locomo.Conversation] = []
    have = skipped = 0
    seed = FILLER_SEED
    while have < n_turns:
        samples = generate(seed, conversations=20, sessions=20)
        kept = []
        for s in samples:
            people = {_first(p["name"]) for p in s["generator"]["people"]}
            if people & avoid:
                skipped += 1
                continue
            s["sample_id"] = f"filler{seed}-{s['sample_id']}"
            kept.append(s)
        path = work / f"filler-{seed}.json"
        path.write_text(json.dumps(kept), encoding="utf-8")
        for conv in lifecycle_quality.load(str(path)):
            if have >= n_turns:
                break
            conv.turns = conv.turns[:n_turns - have]
            conv.questions = []
            have += len(conv.turns)
            out.append(conv)
        path.unlink()
        seed += 1
    return out, skipped


def _records(conv: locomo.Conversation) -> list[dict[str, Any]]:
    """The records ``locomo.ingest`` writes for ``conv`` (add_messages per session), under
    the one owner."""
    by_session: dict[int, list[locomo.Turn]] = {}
    for t in conv.turns:
        by_session.setdefault(t.session, []).append(t)
    out: list[dict[str, Any]] = []
    for n, turns in by_session.items():
        messages = [{"role": "user", "name": t.speaker, "content": t.text, "timestamp": t.date,
                     "metadata": {"dia_id": t.dia_id}} for t in turns]
        out += message_records(messages, user_id=OWNER,
                               session_id=f"{conv.sample_id}/session_{n}")
    return out


class Memo:
    """An embedder that embeds each distinct text once (see the module docstring): the
    wrapped model's id, so the vault is the one the model would build."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        self.seen: dict[str, np.ndarray] = {}
        self.calls = self.hits = 0

    def embed(self, texts: Any) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.seen))
        if todo:
            for t, vec in zip(todo, self.inner.embed(todo)):
                self.seen[t] = vec
        self.calls += len(todo)
        self.hits += len(texts) - len(todo)
        if len(texts) == 0:
            return self.inner.embed([])
        return np.stack([self.seen[t] for t in texts])


def _key(n: int, embedder: str, paths: list[str], limit: int) -> str:
    h = hashlib.sha256(json.dumps([n, embedder, limit, FILLER_SEED, 3]).encode())
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def build(path: Path, evaluated: list[locomo.Conversation], avoid: set[str], n: int,
          embedder: str) -> dict[str, Any]:
    """Write the vault at ``path`` (see the module docstring); the build's figures."""
    eval_turns = sum(len(c.turns) for c in evaluated)
    if eval_turns >= n:
        raise SystemExit(f"--scale {n} must exceed the evaluated turns ({eval_turns})")
    fill, skipped = filler(n - eval_turns, avoid, path.parent)
    convs = evaluated + fill
    random.Random(0).shuffle(convs)
    sessions = len({(c.sample_id, t.session) for c in convs for t in c.turns})
    memo = Memo(get_embedder(embedder))
    out: dict[str, Any] = {"memories": n, "evaluated_turns": eval_turns,
                           "filler_turns": n - eval_turns, "filler_conversations": len(fill),
                           "filler_skipped_for_names": skipped, "sessions": sessions}
    # turns written + turns indexed + sessions consolidated + summaries indexed (~sessions)
    with tqdm(total=2 * n + 2 * sessions, desc=f"tier vault {n:,}", unit="step",
              mininterval=5) as bar, Vault(settings=Settings(path=path, embedder=embedder),
                                           embedder=memo) as v:
        started = time.perf_counter()
        bar.set_postfix_str("writing turns")
        screen = v.guard
        evaluated_ids = {c.sample_id for c in evaluated}
        for c in convs:
            v.guard = screen if c.sample_id in evaluated_ids else None
            v.add_many(_records(c), batch_size=500, progress=bar.update)
        v.guard = screen
        out["ingest_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        bar.set_postfix_str("indexing turns")
        v.searcher.sync(progress=bar.update)
        out["index_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        bar.set_postfix_str("consolidating sessions")

        def tick() -> bool:
            bar.update(1)
            return False
        report = consolidate(v, cancel=tick)
        out["consolidate_s"] = round(time.perf_counter() - started, 1)
        out["consolidate_s_per_1000_turns"] = report.seconds_per_1000_turns
        out["summaries_written"] = dict(report.created)
        bar.set_postfix_str("indexing summaries")
        started = time.perf_counter()
        left = bar.total - bar.n
        bar.total = bar.n + max(left, 0)
        v.searcher.sync(progress=lambda k: bar.update(min(k, max(bar.total - bar.n, 0))))
        bar.update(bar.total - bar.n)
        out["index_summaries_s"] = round(time.perf_counter() - started, 1)
        out["summary_memories"] = v.list(user_id=OWNER, filters={"kind": "summary"},
                                         limit=1).total
        out["total_memories"] = v.count(user_id=OWNER)
    out["texts_embedded"], out["texts_reused"] = memo.calls, memo.hits
    return out


def _scored(vault: Vault, conv: locomo.Conversation, q: locomo.Question
            ) -> tuple[list[int | None], list[int], float]:
    started = time.perf_counter()
    hits = vault.search(q.question, user_id=OWNER, k=K)
    seconds = time.perf_counter() - started
    prefix = f"{conv.sample_id}/"
    ranks: dict[str, int] = {}
    for h in hits:
        dia = h.item.metadata.get("dia_id")
        if h.item.kind == "turn" and dia and (h.item.session_id or "").startswith(prefix) \
                and dia not in ranks:
            ranks[dia] = h.rank
    return [ranks.get(e) for e in q.evidence], [token_count(h.item.text) for h in hits], seconds


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = max(len(rows), 1)
    recall = [sum(sum(1 for r in row["ranks"] if r is not None and r <= k) / len(row["ranks"])
                  for row in rows) / n for k in range(1, K + 1)]
    best = [min((r for r in row["ranks"] if r is not None), default=None) for row in rows]
    tokens = [sum(sum(row["tokens"][:k]) for row in rows) / n for k in range(1, K + 1)]
    times = sorted(row["seconds"] for row in rows)
    return {"recall@10": round(recall[9], 4),
            "mrr": round(sum(1 / b for b in best if b) / n, 4),
            "tokens@10": round(tokens[9], 1),
            "p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
            "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))] * 1000, 1)
            if times else None,
            "recall_by_k": [round(r, 4) for r in recall],
            "tokens_by_k": [round(t, 1) for t in tokens]}


def evaluate(path: Path, embedder: str, suites: dict[str, list[locomo.Conversation]],
             max_questions: int) -> dict[str, Any]:
    """Per suite and tier: recall@10, MRR, tokens, p50/p95 of the searches."""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {s: {t: [] for t in TIERS}
                                                        for s in suites}
    work = [(s, c, q) for s, convs in suites.items() for c in convs
            for q in [q for q in c.questions if q.evidence][:max_questions]]
    for tier in TIERS:
        settings = Settings(path=path, embedder=embedder,
                            search=replace(SearchConfig(), tier=tier))
        with Vault(settings=settings) as vault:
            vault.search("warm up the searcher", user_id=OWNER, k=K)
            for suite, conv, q in tqdm(work, desc=f"search {tier}", unit="q", mininterval=5):
                ranks, tokens, seconds = _scored(vault, conv, q)
                rows[suite][tier].append({"ranks": ranks, "tokens": tokens,
                                          "seconds": seconds})
    out: dict[str, Any] = {}
    for suite, by_tier in rows.items():
        s: dict[str, Any] = {"conversations": len(suites[suite]),
                             "questions": len(by_tier["flat"])}
        for tier, rs in by_tier.items():
            s[tier] = _summary(rs)
        target = s["flat"]["recall@10"]
        for tier in TIERS:
            rec = s[tier]["recall_by_k"]
            k = next((i + 1 for i, r in enumerate(rec) if r >= target), None)
            s[tier]["k_for_flat_recall"] = k
            s[tier]["tokens_for_flat_recall"] = None if k is None else \
                s[tier]["tokens_by_k"][k - 1]
        out[suite] = s
    every = {t: sorted(r["seconds"] for by in rows.values() for r in by[t]) for t in TIERS}
    out["_all"] = {t: {"p50_ms": round(statistics.median(v) * 1000, 1),
                       "p95_ms": round(v[min(len(v) - 1, int(0.95 * len(v)))] * 1000, 1)}
                   for t, v in every.items() if v}
    for t in out["_all"]:
        out["_all"][t]["vs_flat_p50"] = round(out["_all"][t]["p50_ms"] /
                                              out["_all"]["flat"]["p50_ms"], 2)
    return out


def run(paths: list[str], limit: int, n: int, embedder: str, max_questions: int = 200,
        cache: str | None = None, build_only: bool = False) -> dict[str, Any]:
    """Build (or reuse) the N-memory vault and compare the tiers on it. With ``cache``,
    a run that finds another process building the same vault waits for it (a lock file
    beside it), then reuses it."""
    import lifecycle_quality

    suites = {Path(p).stem: lifecycle_quality.load(p)[:limit] for p in paths}
    avoid: set[str] = set()
    for p in paths:
        avoid |= _names(p, suites[Path(p).stem])
    evaluated = [c for convs in suites.values() for c in convs]
    key = _key(n, embedder, paths, limit)
    temp = None if cache else Path(tempfile.mkdtemp(prefix="tier-scale-"))
    where = Path(cache) / key if cache else temp
    assert where is not None
    lock = None
    try:
        if cache:
            Path(cache).mkdir(parents=True, exist_ok=True)
            lock = (Path(cache) / f"{key}.lock").open("w")
            fcntl.flock(lock, fcntl.LOCK_EX)  # another run building it: wait for it
        db, done = where / "v.db", where / "build.json"
        if done.exists():
            built = json.loads(done.read_text())
            built["reused_from_cache"] = True
        else:
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir(parents=True)
            load = os.getloadavg()[0]
            built = build(db, evaluated, avoid, n, embedder)
            built["load"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            done.write_text(json.dumps(built))
            built["reused_from_cache"] = False
        if lock is not None:
            lock.close()
            lock = None
        if build_only:
            return {"build": built}
        started = time.perf_counter()
        result = evaluate(db, embedder, suites, max_questions)
        built["evaluate_s"] = round(time.perf_counter() - started, 1)
    finally:
        if lock is not None:
            lock.close()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    named = [s for s in result if not s.startswith("_")]
    lower = {t: [s for s in named if result[s][t]["recall@10"] < result[s]["flat"]["recall@10"]]
             for t in TIERS if t != "flat"}
    lower_mrr = {t: [s for s in named if result[s][t]["mrr"] < result[s]["flat"]["mrr"]]
                 for t in TIERS if t != "flat"}
    return {"build": built, "suites": {s: result[s] for s in named},
            "latency": result["_all"], "lowers_recall_on": lower, "lowers_mrr_on": lower_mrr,
            "max_questions_per_suite": max_questions, "conversations_per_suite": limit}


def markdown(r: dict[str, Any]) -> str:
    b = r["build"]
    lines = [f"### Summary tier vs flat search at {b['memories']:,} memories of one owner",
             "", f"Evaluated: {r['conversations_per_suite']} conversation(s) per suite "
             f"({b['evaluated_turns']} turns); filler: {b['filler_conversations']} generated "
             f"conversations ({b['filler_turns']} turns, {b['filler_skipped_for_names']} "
             f"skipped for sharing a first name with an evaluated one); {b['sessions']} "
             f"sessions, {b.get('summary_memories')} summaries after one consolidation pass.",
             "", "| suite | tier | R@10 | MRR | tokens in top 10 | k for flat's R@10 | "
             "tokens at that k | p50 ms | p95 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for name, s in r["suites"].items():
        for tier in TIERS:
            m = s[tier]
            tok = m["tokens_for_flat_recall"]
            lines.append(f"| {name} ({s['questions']} q) | {tier} | {m['recall@10']:.3f} | "
                         f"{m['mrr']:.3f} | {m['tokens@10']:.0f} | "
                         f"{m['k_for_flat_recall'] or '> 20'} | "
                         f"{tok if tok is not None else '-'} | {m['p50_ms']} | {m['p95_ms']} |")
    lat = r["latency"]
    lines += ["", "All questions, search latency (k=20): " + "; ".join(
        f"{t} p50 {v['p50_ms']} ms / p95 {v['p95_ms']} ms ({v['vs_flat_p50']}x flat)"
        for t, v in lat.items())]
    for tier, names in r["lowers_recall_on"].items():
        mrr = r["lowers_mrr_on"][tier]
        lines.append(f"- `tier=\"{tier}\"` lowers R@10 on: "
                     f"{', '.join(names) if names else 'no suite'}; MRR on: "
                     f"{', '.join(mrr) if mrr else 'no suite'}")
    lines += ["", f"Build: write {b['ingest_s']} s, index {b['index_s']} s, consolidate "
              f"{b['consolidate_s']} s ({b['consolidate_s_per_1000_turns']} s / 1,000 turns), "
              f"index summaries {b['index_summaries_s']} s"
              + (f"; {b['texts_embedded']:,} texts embedded, {b['texts_reused']:,} repeats "
                 "taken from the memo" if "texts_embedded" in b else "")
              + (" (built by an earlier run with the same inputs, reused)"
                 if b.get("reused_from_cache") else "") + f"; evaluation {b['evaluate_s']} s."
              + (f" Build load {b['load'][0]} -> {b['load'][1]}." if b.get("load") else "")
              + (f" Search load {r['env']['load_start']} -> {r['env']['load_end']}."
                 if r.get("env") else ""), ""]
    return "\n".join(lines)


def main() -> None:
    """Build the vault into ``--cache`` ahead of a ``make bench-lifecycle TIER_CACHE=...``
    run (same inputs), or run the comparison alone."""
    import argparse
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("paths", nargs="+", help="LoCoMo-format suites, in bench order")
    ap.add_argument("--scale", type=int, default=100_000)
    ap.add_argument("--limit", type=int, default=1)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--cache")
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    r = run(args.paths, args.limit, args.scale, args.embedder, args.questions, args.cache,
            args.build_only)
    print(json.dumps(r["build"], indent=1) if args.build_only else markdown(r))


if __name__ == "__main__":
    main()
