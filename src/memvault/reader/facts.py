"""What the reader extracts: atomic facts, and the normal form used to deduplicate them.

A fact is one self-contained sentence ("Maya moved to Porto on 2024-05-02"): it names
its subject (no pronouns), carries absolute dates, and remembers which turns it came
from. Two facts are exact duplicates when their normal forms (NFKC, case-folded,
punctuation and articles dropped, whitespace collapsed) hash the same.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Fact", "FACT_KINDS", "normalize", "norm_hash", "parse_json_reply"]

#: Kinds the reader writes; the decision step only compares facts with these.
FACT_KINDS: tuple[str, ...] = ("fact", "preference", "event", "profile")
MAX_FACT_CHARS = 500

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_FILLER = {"a", "an", "the"}


@dataclass(frozen=True, slots=True)
class Fact:
    text: str
    kind: str = "fact"
    event_time: datetime | None = None
    speaker: str | None = None
    #: Ids of the turns the fact was read from (provenance).
    source_ids: tuple[str, ...] = ()
    #: Which extractor produced it: "llm" or "rules".
    extractor: str = "rules"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def norm_hash(self) -> str:
        return norm_hash(self.text)


def normalize(text: str) -> str:
    """Case, punctuation, articles and spacing do not make a fact new."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("'s ", " ")
    words = _PUNCT.sub(" ", text).split()
    return " ".join(w for w in words if w not in _FILLER)


def norm_hash(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()[:32]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def parse_json_reply(reply: str) -> Any:
    """The JSON value in an LLM reply, tolerating code fences and chatter around it.

    Raises ValueError when there is none: callers then use their rule-based fallback.
    """
    if not isinstance(reply, str) or not reply.strip():
        raise ValueError("empty reply")
    candidates = [reply.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(reply)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = reply.find(opener), reply.rfind(closer)
        if 0 <= start < end:
            candidates.append(reply[start:end + 1])
    for text in candidates:
        try:
            return json.loads(text)
        except ValueError:
            continue
    raise ValueError(f"no JSON value in reply {reply[:80]!r}")
