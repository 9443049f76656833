"""LoCoMo evidence-retrieval evaluation through the public Vault API.

The dataset is not shipped (CC BY-NC): callers pass its path. Every conversation is
ingested into its own scope, each turn as a chat message (speaker as ``name``, session
date as ``timestamp``, ``dia_id`` in metadata); each question of categories 1-4 is then
searched and scored by where its evidence turns rank.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import InvalidInput
from ..vault import Vault

__all__ = ["Turn", "Question", "Conversation", "load", "ingest", "rank_evidence",
           "CATEGORIES", "summarize"]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_DATE = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+(\w+),?\s+(\d{4})", re.I)
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"], start=1)}


@dataclass(frozen=True, slots=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    session: int
    date: datetime


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int


@dataclass(slots=True)
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def parse_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> aware UTC datetime."""
    m = _DATE.search(text)
    if not m:
        raise InvalidInput(f"unrecognised LoCoMo date {text!r}")
    hour, minute, ampm, day, month, year = m.groups()
    h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
    return datetime(int(year), _MONTHS[month.lower()], int(day), h, int(minute),
                    tzinfo=timezone.utc)


def normalize_evidence(raw: Iterable[str]) -> tuple[str, ...]:
    """Fix the known malformed ids ('D8:6; D9:17', 'D:11:26', 'D30:05')."""
    out: list[str] = []
    for chunk in raw:
        for part in re.split(r"[;,\s]+", str(chunk)):
            m = re.fullmatch(r"D:?(\d+):0*(\d+)", part.strip())
            if m:
                out.append(f"D{int(m.group(1))}:{int(m.group(2))}")
    return tuple(dict.fromkeys(out))


def load(path: str | Path) -> list[Conversation]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read LoCoMo file {path}: {exc}") from exc
    convs = []
    for sample in data:
        c = sample["conversation"]
        conv = Conversation(str(sample.get("sample_id", f"conv-{len(convs)}")),
                            (c["speaker_a"], c["speaker_b"]))
        sessions = sorted(int(k.split("_")[1]) for k in c
                          if re.fullmatch(r"session_\d+", k) and c[k])
        for n in sessions:
            date = parse_date(c[f"session_{n}_date_time"])
            for t in c[f"session_{n}"]:
                text = t["text"]
                if t.get("blip_caption"):
                    text = f"{text} [shares a photo of {t['blip_caption']}]"
                conv.turns.append(Turn(t["dia_id"], t["speaker"], text, n, date))
        for q in sample["qa"]:
            if q.get("category") in CATEGORIES:
                conv.questions.append(Question(q["question"], str(q.get("answer", "")),
                                               normalize_evidence(q.get("evidence", [])),
                                               int(q["category"])))
        convs.append(conv)
    return convs


def ingest(vault: Vault, conv: Conversation) -> float:
    """Store every turn through ``Vault.add_messages``, one call per session, and bring the
    search index up to date (it embeds sentence vectors then); return seconds."""
    started = time.perf_counter()
    by_session: dict[int, list[Turn]] = {}
    for t in conv.turns:
        by_session.setdefault(t.session, []).append(t)
    for n, turns in by_session.items():
        vault.add_messages(
            [{"role": "user", "name": t.speaker, "content": t.text, "timestamp": t.date,
              "metadata": {"dia_id": t.dia_id}} for t in turns],
            user_id=conv.sample_id, session_id=f"{conv.sample_id}/session_{n}")
    vault.searcher.sync()
    return time.perf_counter() - started


def rank_evidence(vault: Vault, conv: Conversation, q: Question, k: int
                  ) -> tuple[list[int | None], float]:
    """Rank (1-based, None if not in the top ``k``) of each evidence turn, and seconds."""
    started = time.perf_counter()
    hits = vault.search(q.question, user_id=conv.sample_id, k=k)
    seconds = time.perf_counter() - started
    ranks = {h.item.metadata.get("dia_id"): h.rank for h in hits}
    return [ranks.get(e) for e in q.evidence], seconds


def summarize(results: list[dict[str, Any]], ks: Iterable[int] = (5, 10, 20)) -> dict[str, Any]:
    """Per-category and overall evidence recall@k, all-evidence@k and MRR."""
    ks = tuple(ks)

    def block(rows: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(rows)}
        if not rows:
            return out
        for k in ks:
            rec = [sum(1 for r in row["ranks"] if r is not None and r <= k) / len(row["ranks"])
                   for row in rows]
            allf = [all(r is not None and r <= k for r in row["ranks"]) for row in rows]
            out[f"recall@{k}"] = round(sum(rec) / len(rows), 4)
            out[f"all@{k}"] = round(sum(allf) / len(rows), 4)
        mrr = [1.0 / min((r for r in row["ranks"] if r is not None), default=float("inf"))
               for row in rows]
        out["mrr"] = round(sum(mrr) / len(rows), 4)
        return out

    scored = [r for r in results if r["ranks"]]
    summary = {"overall": block(scored)}
    for cat, name in CATEGORIES.items():
        summary[name] = block([r for r in scored if r["category"] == cat])
    return summary


def run_conversation(vault: Vault, conv: Conversation, k: int,
                     on_question: Callable[[], None] | None = None) -> tuple[list[dict[str, Any]], list[float]]:
    results, latencies = [], []
    for q in conv.questions:
        ranks, seconds = rank_evidence(vault, conv, q, k)
        latencies.append(seconds)
        results.append({"conv": conv.sample_id, "category": q.category, "ranks": ranks})
        if on_question:
            on_question()
    return results, latencies
