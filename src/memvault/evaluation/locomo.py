"""LoCoMo evidence-retrieval evaluation through the public Vault API.

The dataset is not shipped (CC BY-NC): callers pass its path. Every conversation is
ingested into its own scope, each turn as a chat message (speaker as ``name``, session
date as ``timestamp``, ``dia_id`` in metadata); each question of categories 1-4 is then
searched and scored by where its evidence turns rank.

The same format carries the generated suite (:mod:`memvault.evaluation.generate`): its
categories 6-11 are LongMemEval's question types, named in ``GENERATED_CATEGORIES``.
Abstention questions (no evidence) are counted but never scored for recall: nothing can
rank an answer that is not there.
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
from ..storage.base import RowQuery
from ..vault import Vault

__all__ = ["Turn", "Question", "Conversation", "load", "ingest", "rank_evidence",
           "CATEGORIES", "LOCOMO_CATEGORIES", "GENERATED_CATEGORIES", "INGEST_MODES",
           "summarize"]

#: A LoCoMo file is a few MB; refuse to read a runaway one into memory.
MAX_FILE_BYTES = 256 * 1024 * 1024

LOCOMO_CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
#: LoCoMo's 5 ("adversarial": its evidence names turns that do not answer it) is skipped.
SKIPPED_CATEGORIES = {5: "adversarial"}
#: The generated suite's question types (LongMemEval's), numbered after LoCoMo's.
GENERATED_CATEGORIES = {6: "information-extraction", 7: "multi-session",
                        8: "temporal-reasoning", 9: "knowledge-update-now",
                        10: "knowledge-update-then", 11: "abstention"}
CATEGORIES = {**LOCOMO_CATEGORIES, **GENERATED_CATEGORIES}
_DATE = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+(\w+),?\s+(\d{4})", re.I)
#: Other export formats: "2023-05-08 13:56", "May 8, 2023, 1:56 PM", "Mon, 8 May 2023 13:56".
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})")
_US = re.compile(r"([A-Za-z]+)\.? (\d{1,2}),? (\d{4}),? (\d{1,2}):(\d{2})\s*([ap]m)", re.I)
_DMY = re.compile(r"(\d{1,2}) ([A-Za-z]+)\.? (\d{4}),? (\d{1,2}):(\d{2})(?!\s*[ap]m)", re.I)
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"], start=1)}
_MONTHS.update({name[:3]: i for name, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9


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
    #: The category's name ("single-hop", "knowledge-update-now", ...).
    kind: str = ""


@dataclass(slots=True)
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def parse_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' (and the generated suite's other export formats:
    '2023-05-08 13:56', 'May 8, 2023, 1:56 PM', 'Mon, 8 May 2023 13:56') -> aware UTC."""
    if not isinstance(text, str) or len(text) > 200:
        raise InvalidInput(f"unrecognised LoCoMo date {str(text)[:80]!r}")
    try:
        if m := _DATE.search(text):
            hour, minute, ampm, day, month, year = m.groups()
            h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
            return datetime(int(year), _MONTHS[month.lower()], int(day), h, int(minute),
                            tzinfo=timezone.utc)
        if m := _ISO.search(text):
            return datetime(*map(int, m.groups()), tzinfo=timezone.utc)  # type: ignore[misc]
        if m := _US.search(text):
            month, day, year, hour, minute, ampm = m.groups()
            h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
            return datetime(int(year), _MONTHS[month.lower()], int(day), h, int(minute),
                            tzinfo=timezone.utc)
        if m := _DMY.search(text):
            day, month, year, hour, minute = m.groups()
            return datetime(int(year), _MONTHS[month.lower()], int(day), int(hour),
                            int(minute), tzinfo=timezone.utc)
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"unrecognised LoCoMo date {text[:80]!r}: {exc}") from exc
    raise InvalidInput(f"unrecognised LoCoMo date {text[:80]!r}")


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
    """Conversations and their scored questions (LoCoMo's 1-4, the generated suite's
    6-11, or any category the file names in a sample's ``category_names``)."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidInput(f"LoCoMo file {path} is {size} bytes; the limit is "
                               f"{MAX_FILE_BYTES}")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"cannot read LoCoMo file {path}: {exc}") from exc
    if not isinstance(data, list):
        raise InvalidInput(f"LoCoMo file {path} must hold a list of samples")
    convs = []
    for i, sample in enumerate(data):
        try:
            convs.append(_sample(sample, len(convs)))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise InvalidInput(f"LoCoMo file {path}, sample {i}: missing or malformed "
                               f"{exc}") from exc
    return convs


def _sample(sample: dict[str, Any], n: int) -> Conversation:
    c = sample["conversation"]
    conv = Conversation(str(sample.get("sample_id", f"conv-{n}")),
                        (c["speaker_a"], c["speaker_b"]))
    sessions = sorted(int(k.split("_")[1]) for k in c
                      if re.fullmatch(r"session_\d+", k) and c[k])
    for s in sessions:
        date = parse_date(c[f"session_{s}_date_time"])
        for t in c[f"session_{s}"]:
            text = str(t["text"])
            if t.get("blip_caption"):
                text = f"{text} [shares a photo of {t['blip_caption']}]"
            conv.turns.append(Turn(str(t["dia_id"]), str(t["speaker"]), text, s, date))
    names = {**{int(k): str(v) for k, v in (sample.get("category_names") or {}).items()},
             **CATEGORIES}
    for q in sample["qa"]:
        cat = q.get("category")
        if isinstance(cat, int) and cat in names and cat not in SKIPPED_CATEGORIES:
            conv.questions.append(Question(str(q["question"]), str(q.get("answer", "")),
                                           normalize_evidence(q.get("evidence") or []),
                                           cat, names[cat]))
    return conv


INGEST_MODES = ("turns", "fine")


def ingest(vault: Vault, conv: Conversation, mode: str = "turns",
           progress: Callable[[int], None] | None = None) -> float:
    """Store every turn, one call per session, and bring the search index up to date (it
    embeds sentence vectors then); return seconds.

    ``mode="turns"``: ``Vault.add_messages`` (raw turns). ``"fine"``: ``Vault.remember``
    in fine mode with the rules only (no LLM): the turns plus the facts read from them.
    """
    if mode not in INGEST_MODES:
        raise InvalidInput(f"ingest mode must be one of {INGEST_MODES}, not {mode!r}",
                           field="ingest")
    started = time.perf_counter()
    by_session: dict[int, list[Turn]] = {}
    for t in conv.turns:
        by_session.setdefault(t.session, []).append(t)
    for n, turns in by_session.items():
        messages = [{"role": "user", "name": t.speaker, "content": t.text, "timestamp": t.date,
                     "metadata": {"dia_id": t.dia_id}} for t in turns]
        scope = {"user_id": conv.sample_id, "session_id": f"{conv.sample_id}/session_{n}"}
        if mode == "fine":
            vault.remember(messages, mode="fine", llm="none", **scope)
        else:
            vault.add_messages(messages, **scope)
        if progress:
            progress(len(turns))
    vault.searcher.sync()
    return time.perf_counter() - started


def rank_evidence(vault: Vault, conv: Conversation, q: Question, k: int
                  ) -> tuple[list[int | None], float, float | None]:
    """Rank (1-based, None if not in the top ``k``) of each evidence turn, seconds, and
    the top hit's score.

    A hit counts for a turn when it is that turn or a fact read from it (the reader's
    ``source_turns`` name the turn's id), so a fine-mode ingest is scored on the turns
    its facts came from.
    """
    started = time.perf_counter()
    hits = vault.search(q.question, user_id=conv.sample_id, k=k)
    seconds = time.perf_counter() - started
    ranks: dict[str, int] = {}
    need = [h for h in hits if h.item.kind != "turn" and h.item.metadata.get("source_turns")]
    dia_of: dict[str, str] = {}
    if need:
        ids = list({i for h in need for i in h.item.metadata["source_turns"]})
        rows = vault.store.select(RowQuery(ids=ids, kinds=["turn"], statuses=None,
                                           limit=len(ids)))
        dia_of = {r.item.id: r.item.metadata["dia_id"] for r in rows
                  if r.item.metadata.get("dia_id")}
    for h in hits:
        dias = [h.item.metadata.get("dia_id")] if h.item.kind == "turn" else \
            [dia_of.get(i) for i in h.item.metadata.get("source_turns") or ()]
        for dia in dias:
            if dia and dia not in ranks:
                ranks[dia] = h.rank
    top = hits[0].score if hits else None
    return [ranks.get(e) for e in q.evidence], seconds, top


def summarize(results: list[dict[str, Any]], ks: Iterable[int] = (5, 10, 20)) -> dict[str, Any]:
    """Per-category and overall evidence recall@k, all-evidence@k, MRR and hit@1 (the
    best-ranked evidence turn at rank 1). Questions without evidence (abstention) are
    left out of every score and counted under ``no_evidence``."""
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
        best = [min((r for r in row["ranks"] if r is not None), default=None) for row in rows]
        out["mrr"] = round(sum(1.0 / b for b in best if b) / len(rows), 4)
        out["hit@1"] = round(sum(b == 1 for b in best) / len(rows), 4)
        tops = [row["top_score"] for row in rows if row.get("top_score") is not None]
        if tops:
            out["mean_top_score"] = round(sum(tops) / len(tops), 4)
        return out

    def name(row: dict[str, Any]) -> str:
        cat = row["category"]
        return CATEGORIES.get(cat, str(cat)) if isinstance(cat, int) else str(cat)

    scored = [r for r in results if r["ranks"]]
    summary: dict[str, Any] = {"overall": block(scored)}
    present = list(dict.fromkeys(name(r) for r in results))
    order = [n for n in CATEGORIES.values() if n in present] + \
        [n for n in present if n not in CATEGORIES.values()]
    for cat in dict.fromkeys([*LOCOMO_CATEGORIES.values(), *order]):
        rows = [r for r in results if name(r) == cat]
        if rows and not any(r["ranks"] for r in rows):
            tops = [r["top_score"] for r in rows if r.get("top_score") is not None]
            summary[cat] = {"n": len(rows), "no_evidence": len(rows),
                            "mean_top_score": round(sum(tops) / len(tops), 4) if tops else None}
        else:
            summary[cat] = block([r for r in rows if r["ranks"]])
    return summary


def run_conversation(vault: Vault, conv: Conversation, k: int,
                     on_question: Callable[[], None] | None = None
                     ) -> tuple[list[dict[str, Any]], list[float]]:
    results, latencies = [], []
    for q in conv.questions:
        ranks, seconds, top = rank_evidence(vault, conv, q, k)
        latencies.append(seconds)
        results.append({"conv": conv.sample_id, "category": q.kind or q.category,
                        "ranks": ranks, "top_score": top})
        if on_question:
            on_question()
    return results, latencies
