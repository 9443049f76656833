"""Cheap entity extraction: capitalised names and numbers, no model.

Good enough to say that two memories talk about the same person, place or date, which
is all the linker and the topic summaries need. Sentence-initial words are only taken
when they are not common English words ("Yesterday", "We" are not entities; "Maya" is).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

from ..retrieval.text import STOPWORDS

__all__ = ["entities", "entity_counts"]

_SENTENCE = re.compile(r"(?:^|[.!?:;\n]\s*|[\"“(]\s*)$")
_TOKEN = re.compile(r"[A-Z][\w'’-]*\w|\d+(?:[.,:/-]\d+)*")
_COMMON_STARTS = STOPWORDS | frozenset("""
yes no oh ok okay hey hi hello thanks thank well so also yeah wow sure great nice good
really maybe sorry please anyway actually today yesterday tomorrow tonight last next
that's it's i'm i've i'll i'd we're you're they're there's what's let's
""".split())
_NEVER = frozenset({"i", "i'm", "i've", "i'll", "i'd"})


def entities(text: str, *, strict: bool = False) -> set[str]:
    """Lowercased entity tokens of ``text`` (possessive ``'s`` removed).

    ``strict`` takes a sentence-initial word only when it is an acronym ("LGBTQ") or the
    text also writes it capitalised mid-sentence: chat starts sentences with any word
    ("Seeing my kids...", "Plus, ...", "Gonna ..."), and a link on one is noise."""
    out: set[str] = set()
    initial: set[str] = set()
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        if token[0].isdigit():
            if len(token) >= 2:
                out.add(token)
            continue
        word = re.sub(r"['’]s$", "", token).lower()
        if word in _NEVER or len(word) < 2:
            continue
        if _SENTENCE.search(text[:m.start()]):
            if word in _COMMON_STARTS:
                continue
            if strict and not (token.isupper() and len(token) > 1):
                initial.add(word)
                continue
        out.add(word)
    return out | (initial & out)


def entity_counts(texts: Iterable[str]) -> Counter[str]:
    """In how many of ``texts`` each entity occurs."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(entities(text))
    return counts
