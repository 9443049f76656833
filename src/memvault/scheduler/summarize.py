"""Summaries for consolidation: an LLM when one is given, extractive otherwise.

The LLM path is a short prompt plus validation, because a small model's output is
untrusted text: it may be empty, chatty ("Sure! Here is..."), a refusal, or name people
that are not in the conversation. Anything that fails validation, and any ModelError,
falls back to the extractive summary, and the reason is returned so it can be recorded.

The extractive summary keeps the few lines whose words recur most in the session (a
cheap centrality score) with an entity bonus, in their original order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from ..errors import ModelError
from ..models.llm import LLM
from ..retrieval.text import terms
from .entities import entities

__all__ = ["Summary", "summarize", "extractive", "validate_summary", "EXTRACTIVE_ID"]

EXTRACTIVE_ID = "extractive"
_SYSTEM = ("You write short factual summaries of conversations for a memory store. Use only "
           "facts stated in the text. Name the people involved. Answer with the summary only.")
_PREAMBLE = re.compile(r"^\s*(?:sure[,!.]?\s*)?(?:here(?:'s| is) (?:a |the )?(?:short )?"
                       r"summary[^:\n]*:|summary\s*:)\s*", re.IGNORECASE)
_REFUSAL = re.compile(r"\b(?:i'?m sorry|i cannot|i can'?t|as an ai|language model)\b",
                      re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MAX_INPUT_CHARS = 6000


@dataclass(frozen=True, slots=True)
class Summary:
    text: str
    summarizer: str  # the LLM's id, or "extractive"
    fallback: str | None = None  # why the LLM's answer was not used


def _line_scores(lines: Sequence[str]) -> list[float]:
    words = [terms(line, max_terms=64) for line in lines]
    freq = Counter(w for ws in words for w in set(ws))
    ents = Counter(e for line in lines for e in entities(line))
    scores = []
    for line, ws in zip(lines, words):
        centrality = sum(freq[w] - 1 for w in set(ws)) / math.sqrt(len(ws) + 1)
        scores.append(centrality + sum(ents[e] for e in entities(line)))
    return scores


def _clip(text: str, max_chars: int) -> str:
    """Cut at the last sentence end (or word) that fits in ``max_chars``."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    ends = [m.start() for m in _SENTENCE_END.finditer(cut)]
    if ends and ends[-1] > max_chars // 2:
        return cut[:ends[-1]].rstrip()
    return cut.rsplit(" ", 1)[0].rstrip(" ,;:") + "..."


def _best_lines(lines: Sequence[str], budget: int) -> list[str]:
    """The highest-scoring lines that fit in ``budget`` characters, in original order."""
    scores = _line_scores(lines)
    chosen, used = [], 0
    for i in sorted(range(len(lines)), key=lambda i: (-scores[i], i)):
        size = min(len(lines[i]), 240) + 1
        if used + size > budget and chosen:
            continue
        chosen.append(i)
        used += size
    return [lines[i] for i in sorted(chosen)]


def extractive(title: str, lines: Sequence[str], *, max_chars: int = 600) -> str:
    body = " ".join(_clip(line, 240) for line in _best_lines(lines, max_chars - len(title)))
    return _clip(f"{title}: {body}", max_chars)


def validate_summary(answer: str, source: str, *, max_chars: int) -> str:
    """The cleaned summary, or ValueError saying why it cannot be trusted."""
    text = answer.strip().strip("`").strip()
    text = _PREAMBLE.sub("", text).strip()
    if len(text.split()) < 4:
        raise ValueError("too short")
    if _REFUSAL.search(text):
        raise ValueError("refusal or meta-talk")
    source_terms = set(terms(source, max_terms=10_000))
    said = set(terms(text, max_terms=10_000))
    if not said & source_terms:
        raise ValueError("shares no words with the source")
    lowered = source.lower()
    invented = {e for e in entities(text) if e not in lowered}
    if invented and len(invented) > len(entities(text)) / 2:
        raise ValueError(f"names not in the source: {', '.join(sorted(invented)[:5])}")
    return _clip(text, max_chars)


def summarize(title: str, lines: Sequence[str], llm: LLM | None = None, *,
              max_chars: int = 600, max_tokens: int = 160) -> Summary:
    """Summarise ``lines`` (e.g. ``"Maya: I moved to Lisbon"``) under ``title``."""
    if llm is None:
        return Summary(extractive(title, lines, max_chars=max_chars), EXTRACTIVE_ID)
    source = "\n".join(_best_lines(lines, _MAX_INPUT_CHARS))
    messages = [{"role": "system", "content": _SYSTEM},
                {"role": "user", "content": f"{title}\n\n{source}\n\nSummarize the text "
                 "above in two or three sentences."}]
    try:
        answer = llm.complete(messages, max_tokens=max_tokens, temperature=0.0)
        text = validate_summary(answer, source, max_chars=max_chars)
    except ModelError as exc:
        reason = f"model error: {exc.message}"
    except ValueError as exc:
        reason = f"rejected: {exc}"
    else:
        return Summary(text, llm.id)
    return Summary(extractive(title, lines, max_chars=max_chars), EXTRACTIVE_ID, reason)
