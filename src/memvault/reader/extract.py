"""Fine reading: an LLM turns a window of chat turns into atomic facts.

The LLM's reply is untrusted: it is parsed leniently (code fences and chatter are
tolerated), every fact is validated (non-empty text, a known kind, an optional ISO
date), and anything that does not survive is dropped. When the LLM fails or nothing in
its reply parses, the rule-based extractor reads the same turns instead, so a bad
model can cost recall but never store garbage.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .._time import parse_time
from ..errors import InvalidInput, ModelError
from ..models.llm import LLM
from .facts import FACT_KINDS, MAX_FACT_CHARS, Fact, parse_json_reply
from .rules import extract_rules, rewrite_first_person, speaker_name

log = logging.getLogger("memvault.reader")

__all__ = ["extract", "Extraction", "EXTRACT_SCHEMA", "render_turns"]

#: Bounded so that a complete reply always fits the token budget (``extract``'s
#: max_tokens=384: 5 facts of <= 160 characters, ~40 tokens each, plus the JSON around
#: them): constrained decoding keeps every token a valid prefix, and the bounds make the
#: model close the document before the budget cuts it off.
EXTRACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"facts": {"type": "array", "maxItems": 5, "items": {
        "type": "object",
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 160},
                       "kind": {"type": "string", "enum": list(FACT_KINDS)},
                       "date": {"type": ["string", "null"], "maxLength": 10}},
        "required": ["text", "kind", "date"], "additionalProperties": False}}},
    "required": ["facts"], "additionalProperties": False,
}

SYSTEM = (
    "You extract long-term memories from a conversation. Return JSON "
    '{"facts": [{"text": "...", "kind": "fact|preference|event|profile", '
    '"date": "YYYY-MM-DD or null"}]}. Rules: one atomic fact per item; write each fact as '
    "a full sentence that names the person (never I, me, my, he, she, they); turn relative "
    "dates (yesterday, last week) into absolute dates using the date of the message; "
    "kind is preference for likes and dislikes, profile for lasting traits (home, job, "
    "age, family), event for things that happened, fact otherwise; skip greetings, "
    'questions and small talk. If nothing is worth remembering, return {"facts": []}.'
)


#: One worked example: small models copy an example far better than they follow a schema
#: (SmolLM2-135M echoed the schema back without it, and wrote valid JSON with it).
EXAMPLE = [
    {"role": "user", "content": "Conversation:\n[2022-03-01] Tom: Hello! I work as a baker. "
                                "Do you like tea?\n[2022-03-01] Tom: I got a dog yesterday."},
    {"role": "assistant", "content": json.dumps({"facts": [
        {"text": "Tom works as a baker.", "kind": "profile", "date": None},
        {"text": "Tom got a dog on 2022-02-28.", "kind": "event", "date": "2022-02-28"}]})},
]
_FIRST_PERSON = re.compile(r"\b(I|me|my|mine|myself)\b|\bI['’]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Extraction:
    facts: list[Fact]
    #: "llm", "rules" (no LLM configured) or "fallback" (the LLM failed or talked nonsense).
    method: str
    error: str | None = None


def render_turns(turns: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for t in turns:
        who = speaker_name(t) or str(t.get("role", "assistant")).title()
        when = t.get("event_time")
        stamp = f"[{when:%Y-%m-%d}] " if when is not None else ""
        lines.append(f"{stamp}{who}: {' '.join(str(t.get('text', '')).split())}")
    return "\n".join(lines)


def _validate(raw: Any, turns: Sequence[Mapping[str, Any]], llm_id: str) -> list[Fact]:
    items = raw.get("facts") if isinstance(raw, Mapping) else raw
    if not isinstance(items, list):
        raise ValueError("reply has no facts list")
    sources = tuple(t["id"] for t in turns if t.get("id"))
    speakers = {speaker_name(t) for t in turns} - {None}
    speaker = speakers.pop() if len(speakers) == 1 else None
    default_time = next((t["event_time"] for t in reversed(turns) if t.get("event_time")), None)
    facts: list[Fact] = []
    for entry in items:
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, Mapping):
            continue
        text = entry.get("text")
        if not isinstance(text, str) or len(text.split()) < 2 or "\x00" in text:
            continue
        text = " ".join(text.split())[:MAX_FACT_CHARS]
        if _FIRST_PERSON.search(text):  # "I love ramen": resolve, or drop if we cannot
            if speaker is None:
                continue
            text = rewrite_first_person(text, speaker)
        kind = entry.get("kind")
        kind = kind.strip().lower() if isinstance(kind, str) else "fact"
        when = default_time
        if isinstance(entry.get("date"), str) and entry["date"].strip():
            try:
                when = parse_time(entry["date"].strip(), field="date")
            except InvalidInput:
                pass  # a bad date costs the date, not the fact
        facts.append(Fact(text=text, kind=kind if kind in FACT_KINDS else "fact",
                          event_time=when, speaker=speaker, source_ids=sources,
                          extractor="llm",
                          extra={"llm": llm_id}))
    if items and not facts:
        raise ValueError(f"none of the {len(items)} facts in the reply is valid")
    return facts


def extract(turns: Sequence[Mapping[str, Any]], llm: LLM | None, *,
            max_tokens: int = 384) -> Extraction:
    """Facts from ``turns`` (dicts with id, text, speaker, role, event_time)."""
    turns = list(turns)
    if not turns:
        return Extraction([], "rules" if llm is None else "llm")
    if llm is None:
        return Extraction(extract_rules(turns), "rules")
    messages = [{"role": "system", "content": SYSTEM}, *EXAMPLE,
                {"role": "user", "content": "Conversation:\n" + render_turns(turns)}]
    try:
        reply = llm.complete(messages, max_tokens=max_tokens, temperature=0.0,
                             json_schema=EXTRACT_SCHEMA)
        facts = _validate(parse_json_reply(reply), turns, llm.id)
    except (ModelError, ValueError) as exc:
        log.info("fact extraction fell back to rules: %s", exc)
        return Extraction(extract_rules(turns), "fallback", error=str(exc)[:300])
    return Extraction(facts, "llm")
