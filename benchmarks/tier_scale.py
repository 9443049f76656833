"""The summary tier against flat search at scale: one owner with N memories (issue 29).

Used by ``bench_summary_tier.py --scale N`` (and so by ``make bench-lifecycle``). Why not
synthetic sentences: the tier only pays, if ever, when an owner's scope is large and made
of many conversations, so the vault must look like that. It holds, all under one user:

* the evaluated part: the first ``limit`` conversations of each suite (LoCoMo dev, the
  generated seeds), stored as ``make bench-locomo`` stores them (one session per
  ``Vault.add_messages`` call; session ids ``<sample_id>/session_<n>``), screened by the
  injection guard;
* filler up to N memories: conversations from the generator (seeds from 1001 up, so never
  an evaluated suite's seed), sessions of 8-15 turns; a filler conversation whose people
  share a first name with an evaluated conversation's is skipped, so that a question
  still has one right answer ("Where does Maya live?" names one Maya in the vault).
  **Each distinct filler conversation is stored ``COPIES`` (4) times**, each copy under
  its own sample id and so its own session ids: real turns and, after consolidation,
  their own session summaries, written and indexed like any others. Why: the model is
  ~80% of the build, and a copy's texts are embedded once (below), so filler costs about
  a quarter of what distinct filler would, while the index, BM25 and the summaries hold
  as many entries as distinct filler would (the latency measured is that of N memories).
  What it changes: a filler distractor comes with three twins, and a filler summary that
  tops the summary ranking has twins right under it (``auto``'s test then stays flat).
  Filler skips the injection guard (a turn it would quarantine stays searchable, for
  every tier alike).

Cheaper without changing what is measured: the embedder is wrapped in a memo
(:class:`Memo`): a text embedded once is not embedded again; the model is deterministic,
so every memory gets the vector it would get anyway.

Resumable: conversations are written one transaction each in a fixed order (the
evaluated ones first), the index is synced and snapshotted every ``CHUNK`` memories, and
the memo is a SQLite file beside the vault, so a stopped build (SIGTERM keeps its
seconds) goes on where it stopped. While the writer writes, a second process
consolidates the sessions already written (session summaries; the writer's last pass
re-checks every session and chooses the topics): consolidation no longer waits for the
last turn. ``--finish`` closes a stopped build where it stands (a deadline), and the
figures then say how many memories it holds. One progress bar covers the whole build:
filler generated, turns written, turns indexed, sessions consolidated, summaries indexed.

Then every question with evidence is searched (k=20) by every row (:data:`ROWS`: the
tiers, and the tiered ones under ``tier_rank="first"``) on that vault, interleaved: per
suite recall@10, MRR, the tokens of the top k (and the k, and tokens, at which the row
reaches flat search's recall@10), and the latency of each search (p50, p95). A hit counts
for an evidence turn only if it is that turn of that conversation (session id prefix and
``dia_id``).

``cache``: a directory where the built vault is kept, resumed and reused by a later run
with the same inputs (N, embedder, suites' bytes, limit, copies); its build figures are
reported from the runs that built it. Without it the vault is built in a temporary
directory and deleted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from memvault import Vault
from memvault.vault import message_records
from memvault.evaluation import locomo
from memvault.evaluation.generate import generate
from memvault.models import get_embedder
from memvault.retrieval.config import SearchConfig
from memvault.scheduler import consolidate
from memvault.scheduler.consolidate import ConsolidateConfig
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


#: Each distinct filler conversation is stored this many times (see the module docstring).
COPIES = 4


def filler(n_turns: int, avoid: set[str], work: Path,
           progress: Callable[[int], None] | None = None, copies: int = COPIES
           ) -> tuple[list[locomo.Conversation], int]:
    """Generated conversations holding exactly ``n_turns`` turns (the last one cut at a
    turn), none naming a person in ``avoid``; and how many were skipped for that. Each
    distinct conversation comes ``copies`` times, under its own sample id (``#<copy>``),
    so under its own session ids."""
    import lifecycle_quality  # its loader reads the generated suite's date formats

    distinct: list[locomo.Conversation] = []
    have = skipped = 0
    seed = FILLER_SEED
    want = -(-n_turns // copies)
    while have < want:
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
            if have >= want:
                break
            conv.turns = conv.turns[:want - have]
            conv.questions = []
            have += len(conv.turns)
            distinct.append(conv)
        path.unlink()
        seed += 1
    out: list[locomo.Conversation] = []
    left = n_turns
    for c in range(copies):
        for conv in distinct:
            if left <= 0:
                break
            turns = conv.turns[:left]
            left -= len(turns)
            out.append(locomo.Conversation(f"{conv.sample_id}#{c}", conv.speakers, turns))
            if progress is not None:
                progress(len(turns))
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
    wrapped model's id, so the vault is the one the model would build.

    With ``path``, the vectors are also kept in a SQLite file beside the vault (a hash of
    the text -> its float32 bytes, read back with ``np.frombuffer``: nothing unpickled),
    so a build that was stopped resumes without embedding again what it had embedded."""

    def __init__(self, inner: Any, path: Path | None = None) -> None:
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        self.seen: dict[str, np.ndarray] = {}
        self.calls = self.hits = self.loaded = 0
        self.db = None
        if path is not None:
            self.db = sqlite3.connect(str(path), timeout=120)  # two processes share it
            self.db.execute("CREATE TABLE IF NOT EXISTS vec (h TEXT PRIMARY KEY, v BLOB)")

    @staticmethod
    def _h(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _load(self, texts: list[str]) -> None:
        """Fill ``seen`` from the file for the texts an earlier run embedded."""
        assert self.db is not None
        for start in range(0, len(texts), 500):
            part = {self._h(t): t for t in texts[start:start + 500]}
            rows = self.db.execute(
                f"SELECT h, v FROM vec WHERE h IN ({','.join('?' * len(part))})", list(part))
            for h, blob in rows:
                self.seen[part[h]] = np.frombuffer(blob, dtype=np.float32).copy()
                self.loaded += 1

    def embed(self, texts: Any) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.seen))
        if missing and self.db is not None:
            self._load(missing)
        todo = [t for t in missing if t not in self.seen]
        if todo:
            vecs = np.asarray(self.inner.embed(todo), dtype=np.float32)
            for t, vec in zip(todo, vecs):
                self.seen[t] = vec
            if self.db is not None:
                with self.db:
                    self.db.executemany("INSERT OR REPLACE INTO vec VALUES (?, ?)",
                                        [(self._h(t), v.tobytes()) for t, v in zip(todo, vecs)])
        self.calls += len(todo)
        self.hits += len(texts) - len(todo)
        if len(texts) == 0:
            return self.inner.embed([])
        return np.stack([self.seen[t] for t in texts])

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _key(n: int, embedder: str, paths: list[str], limit: int) -> str:
    h = hashlib.sha256(json.dumps([n, embedder, limit, FILLER_SEED, COPIES, 5]).encode())
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


#: Memories written between two index snapshots: what a stopped build may redo.
CHUNK = 5000


def _written(v: Vault, conv: locomo.Conversation) -> bool:
    """Is ``conv`` in the vault? (each conversation is one transaction: all or nothing)"""
    first = min(t.session for t in conv.turns)
    return v.list(user_id=OWNER, session_id=f"{conv.sample_id}/session_{first}",
                  filters={"kind": "turn"}, limit=1).total > 0


def _alongside(where: Path, embedder: str) -> None:
    """Consolidate the sessions already written while the writer goes on (a second
    process, ``tier_scale.py --alongside DIR``: the vault takes writers of several
    processes in turn). Session summaries only; the writer's last pass does the rest and
    the topics. Stops when the file ``alongside.stop`` appears; its seconds and the
    sessions it checked go to ``alongside.json`` (the writer's bar and figures read it)."""
    stop, report_path = where / "alongside.stop", where / "alongside.json"
    memo = Memo(get_embedder(embedder), where / "memo.db")
    spent, checked = 0.0, 0

    def note() -> None:
        report_path.write_text(json.dumps({"consolidate_s": spent, "checked": checked}))
    try:
        with Vault(settings=Settings(path=where / "v.db", embedder=embedder),
                   embedder=memo) as v:
            while not stop.exists():
                started = time.perf_counter()

                def tick() -> bool:
                    nonlocal checked
                    checked += 1
                    if checked % 50 == 0:
                        note()
                    return stop.exists()
                report = consolidate(v, config=ConsolidateConfig(topics=False), cancel=tick)
                spent += time.perf_counter() - started
                note()
                for _ in range(10 if not report.sessions_checked else 0):
                    if stop.exists():
                        break
                    time.sleep(1)
    finally:
        memo.close()
        note()


def _helper_checked(where: Path) -> int:
    try:
        return int(json.loads((where / "alongside.json").read_text())["checked"])
    except (OSError, ValueError, KeyError):
        return 0


def build(where: Path, evaluated: list[locomo.Conversation], avoid: set[str], n: int,
          embedder: str, more: bool = True) -> dict[str, Any]:
    """Write the vault ``where/v.db`` (see the module docstring); the build's figures.

    ``more=False`` finishes a stopped build where it stands (a deadline): no more turns
    are written, the last consolidation pass and the index run, and the figures say how
    many memories it holds (``memories``) against the ``target_memories`` asked for.

    Resumable: conversations are written in a fixed order, one transaction each, and the
    index is synced and snapshotted every ``CHUNK`` memories; a run that finds a partial
    vault in ``where`` skips the conversations it holds, replays the rest of the index
    from the snapshot (the memo file answers its sentences) and goes on. Consolidation is
    incremental by itself (a summary whose sources are unchanged is not rewritten). The
    figures add up the seconds of every run that worked on the vault."""
    eval_turns = sum(len(c.turns) for c in evaluated)
    if eval_turns >= n:
        raise SystemExit(f"--scale {n} must exceed the evaluated turns ({eval_turns})")
    state_path = where / "progress.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else \
        {"generate_s": 0.0, "ingest_s": 0.0, "index_s": 0.0, "consolidate_s": 0.0,
         "index_summaries_s": 0.0, "runs": 0, "texts_embedded": 0, "texts_reused": 0}
    state["runs"] += 1

    def save_state() -> None:
        state_path.write_text(json.dumps(state))

    def stop(signum: int, frame: Any) -> None:  # SIGTERM: keep the seconds spent so far
        sys.exit(128 + signum)
    previous = signal.signal(signal.SIGTERM, stop)

    # the bar: filler turns generated, turns written, turns indexed (sessions consolidated
    # and summaries indexed are added once the sessions are known)
    bar = tqdm(total=3 * n, desc=f"tier vault {n:,}", unit="step", mininterval=5)
    bar.update(eval_turns)
    bar.set_postfix_str("generating filler")
    started = time.perf_counter()
    fill, skipped = filler(n - eval_turns, avoid, where, progress=bar.update)
    state["generate_s"] += time.perf_counter() - started
    convs = evaluated + fill
    random.Random(0).shuffle(convs)
    sessions = len({(c.sample_id, t.session) for c in convs for t in c.turns})
    bar.total = 3 * n + 2 * sessions
    memo = Memo(get_embedder(embedder), where / "memo.db")
    helper: subprocess.Popen[bytes] | None = None
    out: dict[str, Any] = {"memories": n, "evaluated_turns": eval_turns,
                           "filler_turns": n - eval_turns, "filler_conversations": len(fill),
                           "filler_copies": COPIES,
                           "filler_skipped_for_names": skipped, "sessions": sessions}
    try:
        with Vault(settings=Settings(path=where / "v.db", embedder=embedder),
                   embedder=memo) as v:
            started = time.perf_counter()
            bar.set_postfix_str("opening the vault")
            v.searcher.sync()  # a resumed build: the snapshot plus what came after it
            state["index_s"] += time.perf_counter() - started
            # the evaluated conversations first: a build stopped part way still holds
            # every one of them, among the filler written so far
            todo = [c for c in convs if c.sample_id in {e.sample_id for e in evaluated}] + \
                [c for c in convs if c.sample_id not in {e.sample_id for e in evaluated}]
            todo = [c for c in todo if not _written(v, c)]
            have = sum(len(c.turns) for c in convs) - sum(len(c.turns) for c in todo)
            if not more:
                missing = {c.sample_id for c in todo} & {e.sample_id for e in evaluated}
                if missing:
                    raise SystemExit(f"stopped before the evaluated {sorted(missing)}")
                out.update(memories=have, target_memories=n, stopped_early=True,
                           filler_turns=have - eval_turns,
                           filler_conversations=len(fill) - len(todo))
                bar.total -= 2 * (n - have)
                todo = []
            bar.update(2 * have)
            screen = v.guard
            evaluated_ids = {c.sample_id for c in evaluated}
            pending = 0
            seen = 0
            (where / "alongside.json").unlink(missing_ok=True)
            (where / "alongside.stop").unlink(missing_ok=True)
            if todo:
                helper = subprocess.Popen([sys.executable, str(Path(__file__).resolve()),
                                           "--alongside", str(where), embedder])
            for i, c in enumerate(todo):
                bar.set_postfix_str("writing turns")
                started = time.perf_counter()
                v.guard = screen if c.sample_id in evaluated_ids else None
                records = _records(c)
                v.add_many(records, batch_size=max(len(records), 1), progress=bar.update)
                v.guard = screen
                state["ingest_s"] += time.perf_counter() - started
                pending += len(records)
                if pending >= CHUNK or i == len(todo) - 1:
                    bar.set_postfix_str("indexing turns")
                    started = time.perf_counter()
                    v.searcher.sync(progress=bar.update)
                    v.searcher.save()
                    state["index_s"] += time.perf_counter() - started
                    state["texts_embedded"] += memo.calls
                    state["texts_reused"] += memo.hits
                    memo.calls = memo.hits = 0
                    pending = 0
                    checked = _helper_checked(where)  # sessions the helper consolidated
                    bar.update(max(checked - seen, 0))
                    seen = max(seen, checked)
                    save_state()
            (where / "alongside.stop").touch()
            if helper is not None:
                helper.wait()
                helper = None
            bar.update(max(_helper_checked(where) - seen, 0))
            side = where / "alongside.json"
            if side.exists():
                state["consolidate_s"] += json.loads(side.read_text())["consolidate_s"]
                side.unlink()
            bar.total = bar.n + sessions  # the last pass checks every session once more
            bar.set_postfix_str("consolidating sessions")
            started = time.perf_counter()

            def tick() -> bool:
                bar.update(1)
                return False
            # full: the helper's passes moved the watermark past every session, and the
            # topics are chosen over all of them (unchanged sessions are not rewritten)
            report = consolidate(v, cancel=tick, full=True)
            state["consolidate_s"] += time.perf_counter() - started
            out["consolidate_s_per_1000_turns"] = report.seconds_per_1000_turns
            out["summaries_written"] = dict(report.created)
            out["sessions_checked"] = report.sessions_checked
            bar.set_postfix_str("indexing summaries")
            started = time.perf_counter()
            bar.total = bar.n + sessions
            v.searcher.sync(progress=lambda k: bar.update(min(k, max(bar.total - bar.n, 0))))
            v.searcher.save()
            bar.update(bar.total - bar.n)
            state["index_summaries_s"] += time.perf_counter() - started
            out["summary_memories"] = v.list(user_id=OWNER, filters={"kind": "summary"},
                                             limit=1).total
            out["total_memories"] = v.count(user_id=OWNER)
    finally:
        if helper is not None:  # stopped: the helper stops between two sessions
            (where / "alongside.stop").touch()
            try:
                helper.wait(timeout=120)
            except subprocess.TimeoutExpired:
                helper.terminate()
        bar.close()
        state["texts_embedded"] += memo.calls
        state["texts_reused"] += memo.hits
        memo.calls = memo.hits = 0
        memo.close()
        save_state()
        signal.signal(signal.SIGTERM, previous)
    for key in ("generate_s", "ingest_s", "index_s", "consolidate_s", "index_summaries_s"):
        out[key] = round(state[key], 1)
    out["runs"] = state["runs"]
    out["texts_embedded"], out["texts_reused"] = state["texts_embedded"], state["texts_reused"]
    out["build_s"] = round(sum(out[k] for k in ("generate_s", "ingest_s", "index_s",
                                                "consolidate_s", "index_summaries_s")), 1)
    out["memories_per_s"] = round(out["memories"] / out["build_s"], 1) \
        if out["build_s"] else None
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


#: The rows compared, each a SearchConfig change: the tiers, and the two tiered ones
#: ranked by the first stage alone (``tier_rank="first"``).
ROWS: dict[str, dict[str, str]] = {
    "flat": {"tier": "flat"}, "summaries": {"tier": "summaries"}, "auto": {"tier": "auto"},
    "summaries-first": {"tier": "summaries", "tier_rank": "first"},
    "auto-first": {"tier": "auto", "tier_rank": "first"}}


def evaluate(path: Path, embedder: str, suites: dict[str, list[locomo.Conversation]],
             max_questions: int) -> dict[str, Any]:
    """Per suite and row: recall@10, MRR, tokens, p50/p95 of the searches.

    Interleaved: one vault per row, all open on the same file, and each question searched
    by every row before the next question, the rows' order rotating per question; so
    load that drifts during the run (a shared machine) falls on every row alike."""
    names = list(ROWS)
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {s: {t: [] for t in names}
                                                        for s in suites}
    work = [(s, c, q) for s, convs in suites.items() for c in convs
            for q in [q for q in c.questions if q.evidence][:max_questions]]
    vaults: dict[str, Vault] = {}
    try:
        for name in tqdm(names, desc="open the vault per row", unit="row"):
            settings = Settings(path=path, embedder=embedder,
                                search=replace(SearchConfig(), **ROWS[name]))
            vaults[name] = Vault(settings=settings)
            vaults[name].search("warm up the searcher", user_id=OWNER, k=K)
        for i, (suite, conv, q) in enumerate(tqdm(work, desc="search, every row", unit="q",
                                                  mininterval=5)):
            for name in names[i % len(names):] + names[:i % len(names)]:
                ranks, tokens, seconds = _scored(vaults[name], conv, q)
                rows[suite][name].append({"ranks": ranks, "tokens": tokens,
                                          "seconds": seconds})
    finally:
        for v in vaults.values():
            v.close()
    out: dict[str, Any] = {}
    for suite, by_tier in rows.items():
        s: dict[str, Any] = {"conversations": len(suites[suite]),
                             "questions": len(by_tier["flat"])}
        for tier, rs in by_tier.items():
            s[tier] = _summary(rs)
        target = s["flat"]["recall@10"]
        for tier in names:
            rec = s[tier]["recall_by_k"]
            k = next((i + 1 for i, r in enumerate(rec) if r >= target), None)
            s[tier]["k_for_flat_recall"] = k
            s[tier]["tokens_for_flat_recall"] = None if k is None else \
                s[tier]["tokens_by_k"][k - 1]
        out[suite] = s
    every = {t: sorted(r["seconds"] for by in rows.values() for r in by[t]) for t in names}
    out["_all"] = {t: {"p50_ms": round(statistics.median(v) * 1000, 1),
                       "p95_ms": round(v[min(len(v) - 1, int(0.95 * len(v)))] * 1000, 1)}
                   for t, v in every.items() if v}
    for t in out["_all"]:
        out["_all"][t]["vs_flat_p50"] = round(out["_all"][t]["p50_ms"] /
                                              out["_all"]["flat"]["p50_ms"], 2)
    return out


def run(paths: list[str], limit: int, n: int, embedder: str, max_questions: int = 200,
        cache: str | None = None, build_only: bool = False,
        finish: bool = False) -> dict[str, Any]:
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
        else:  # new, or a stopped build to resume
            where.mkdir(parents=True, exist_ok=True)
            load = os.getloadavg()[0]
            built = build(where, evaluated, avoid, n, embedder, more=not finish)
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
             for t in ROWS if t != "flat"}
    lower_mrr = {t: [s for s in named if result[s][t]["mrr"] < result[s]["flat"]["mrr"]]
                 for t in ROWS if t != "flat"}
    return {"build": built, "suites": {s: result[s] for s in named},
            "latency": result["_all"], "lowers_recall_on": lower, "lowers_mrr_on": lower_mrr,
            "max_questions_per_suite": max_questions, "conversations_per_suite": limit}


def markdown(r: dict[str, Any]) -> str:
    b = r["build"]
    copies = b.get("filler_copies", 1)
    lines = [f"### Summary tier vs flat search at {b['memories']:,} memories of one owner",
             "", (f"**The build's target was {b['target_memories']:,} memories; it was "
                  f"stopped at {b['memories']:,} by the session's deadline and finished "
                  "there** (all evaluated conversations are written first). "
                  if b.get("stopped_early") else "") + f"Evaluated: {r['conversations_per_suite']} conversation(s) per suite "
             f"({b['evaluated_turns']} turns); filler: {b['filler_conversations']} generated "
             f"conversations ({b['filler_turns']} turns"
             + (f"; {b['filler_conversations'] // max(copies, 1)} distinct ones, each stored "
                f"{copies} times under its own session ids" if copies > 1 else "")
             + f"; {b['filler_skipped_for_names']} skipped for sharing a first name with an "
             f"evaluated one); {b['sessions']} sessions, {b.get('summary_memories')} "
             "summaries after one consolidation pass. Rows `-first`: `tier_rank=\"first\"`.",
             "", "| suite | tier | R@10 | MRR | tokens in top 10 | k for flat's R@10 | "
             "tokens at that k | p50 ms | p95 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for name, s in r["suites"].items():
        for tier in [t for t in ROWS if t in s]:
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
    lines += ["", f"Build: generate filler {b.get('generate_s', 0)} s, write {b['ingest_s']} s, "
              f"index {b['index_s']} s, consolidate {b['consolidate_s']} s "
              f"({b['consolidate_s_per_1000_turns']} s / 1,000 turns), index summaries "
              f"{b['index_summaries_s']} s"
              + (f" = {b['build_s']} s ({b['memories_per_s']} memories/s"
                 f"{', over ' + str(b['runs']) + ' runs (stopped and resumed)' if b.get('runs', 1) > 1 else ''})"
                 if b.get("build_s") else "")
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
    if sys.argv[1:2] == ["--alongside"]:  # the build's second process (see build)
        _alongside(Path(sys.argv[2]), sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("paths", nargs="+", help="LoCoMo-format suites, in bench order")
    ap.add_argument("--scale", type=int, default=100_000)
    ap.add_argument("--limit", type=int, default=1)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--cache")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--finish", action="store_true",
                    help="finish a stopped build in --cache where it stands (a deadline)")
    args = ap.parse_args()
    r = run(args.paths, args.limit, args.scale, args.embedder, args.questions, args.cache,
            args.build_only, args.finish)
    print(json.dumps(r["build"], indent=1) if args.build_only else markdown(r))


if __name__ == "__main__":
    main()
