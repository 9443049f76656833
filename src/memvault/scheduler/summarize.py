"""Summaries for consolidation: an LLM when one is given, extractive otherwise.

The LLM path is a short prompt plus validation, because a small model's output is
untrusted text: it may be empty, chatty ("Sure! Here is..."), a refusal, or name people
that are not in the conversation. Anything that fails validation, and any ModelError,
falls back to the extractive summary, and the reason is returned so it can be recorded.

A session's extractive summary (:func:`condense`) keeps the facts and drops the chatter:
every turn is cut into clauses (:func:`memvault.temporal.statements.clauses`); a clause
that states a person's state becomes the rules reader's canonical fact ("Maya lives in
Porto."); greetings, thanks, questions and clauses that say nothing alone ("I love it")
are dropped; the rest is put in the third person with relative dates made absolute. The
clauses are then chosen greedily for the content words they add that the summary does not
have yet (budgeted maximum coverage), up to a share of the session's tokens, and printed
in their original order. Coverage, not centrality: the point of the summary is that a
fact said once is still in it.

A topic's extractive summary keeps the lines whose words recur most (a cheap centrality
score) with an entity bonus, in their original order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from ..errors import ModelError
from ..models.llm import LLM
from ..reader.rules import is_junk, resolve_dates, rewrite_first_person, statement_facts
from ..retrieval.text import STOPWORDS, terms
from ..temporal.statements import clauses
from .entities import entities
from .topics import CHATTER, INTERJECTIONS, PRONOUNS

__all__ = ["Summary", "summarize", "summarize_session", "condense", "extractive",
           "validate_summary", "content_words", "token_count", "EXTRACTIVE_ID"]

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


# -- session summaries: facts kept, chatter dropped --------------------------------------
_NOT_CONTENT = STOPWORDS | INTERJECTIONS | PRONOUNS
_WORDS = re.compile(r"[a-z0-9][a-z0-9'’-]*")
_GREETING = re.compile(r"^(?:hi|hey|hello|good (?:morning|evening|afternoon|night)|bye|"
                       r"goodbye|see you|talk (?:to you )?(?:soon|later)|take care|thanks?|"
                       r"thank you|congrat\w*|wow|aww?|haha|lol|omg|sounds? (?:great|good|"
                       r"fun|amazing|awesome|lovely)|that(?:'s| is| sounds) (?:great|awesome|"
                       r"amazing|so \w+|really \w+|cool|nice|wonderful|lovely)|"
                       r"i'?m (?:so )?(?:glad|happy|sorry) (?:to hear|for you))\b",
                       re.IGNORECASE)
_FIRST = re.compile(r"\b(?:i|i'm|i’m|i've|i’ve|i'd|i'll|my|me|myself|mine)\b", re.IGNORECASE)
_MAX_CLAUSE_WORDS = 60


def token_count(text: str) -> int:
    """Whitespace tokens: the unit of a summary's budget (model-independent)."""
    return len(text.split())


def _stem(word: str) -> str:
    """Enough folding that "loves"/"love", "painted"/"paint" match across a rewrite."""
    for end in ("ing", "ed", "es", "s"):
        if word.endswith(end) and len(word) - len(end) >= 3 and not word.endswith("ss"):
            word = word[:-len(end)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> set[str]:
    """The words of ``text`` that carry meaning (stems), without function words,
    pronouns, interjections or the chatter verbs."""
    out = set()
    for w in _WORDS.findall(text.lower().replace("’", "'")):
        w = re.sub(r"'s$", "", w).strip("'-")
        if len(w) > 2 and w not in _NOT_CONTENT and w not in CHATTER:
            out.add(_stem(w))
    return out


@dataclass(frozen=True, slots=True)
class _Candidate:
    order: tuple[int, int]
    text: str
    words: frozenset[str]
    bonus: float


def _candidates(turns: Sequence[tuple[str | None, str, datetime | None]]) -> list[_Candidate]:
    out: list[_Candidate] = []
    for t, (name, text, when) in enumerate(turns):
        who = name or "Someone"
        for c, clause in enumerate(clauses(text)):
            sentence = " ".join(clause.split()[:_MAX_CLAUSE_WORDS]).strip(" ,")
            facts = statement_facts(sentence, who, when)
            for i, (fact, _) in enumerate(facts):  # a state change: its canonical fact
                out.append(_Candidate((t, 2 * c + i), fact, frozenset(content_words(fact)),
                                      2.0))
            if facts or sentence.endswith("?") or _GREETING.match(sentence):
                continue
            if _FIRST.search(sentence):
                if is_junk(sentence):
                    continue
                sentence, _ = resolve_dates(rewrite_first_person(sentence, who), when)
            else:
                sentence = f"{who}: {sentence}"
            words = content_words(sentence) - content_words(who)
            if len(words) < 2:  # says nothing on its own ("Love that for you")
                continue
            out.append(_Candidate((t, 2 * c + 1), sentence.rstrip(" ,;:") +
                                  ("" if sentence[-1:] in ".!" else "."),
                                  frozenset(words), 0.0))
    return out


def condense(turns: Sequence[tuple[str | None, str, datetime | None]], *,
             max_tokens: int) -> list[str]:
    """The session's facts (``(speaker, text, said)`` per turn), greedily chosen for the
    content words they add, within ``max_tokens``, in the order they were said."""
    cands = _candidates(turns)
    counts = Counter(w for c in cands for w in c.words)
    chosen: list[_Candidate] = []
    have: set[str] = set()
    used = 0
    left = list(cands)
    while left:
        def gain(c: _Candidate) -> float:
            new = c.words - have
            # a word said more than once in the session weighs a little more
            return (sum(1.0 + 0.25 * min(counts[w] - 1, 4) for w in new)
                    + (c.bonus if new else 0.0)) / math.sqrt(token_count(c.text))
        best = max(left, key=gain)
        if gain(best) <= 0:
            break
        left.remove(best)
        size = token_count(best.text)
        if used + size > max_tokens:
            continue
        chosen.append(best)
        have |= best.words
        used += size
    return [c.text for c in sorted(chosen, key=lambda c: c.order)]


def _kept_facts(answer: str, facts: Sequence[str]) -> float:
    """The share of ``facts`` whose content words mostly appear in ``answer``."""
    if not facts:
        return 1.0
    said = content_words(answer)
    kept = [f for f in facts if len(content_words(f) & said) * 2 >= len(content_words(f))]
    return len(kept) / len(facts)


def summarize_session(title: str, turns: Sequence[tuple[str | None, str, datetime | None]],
                      llm: LLM | None = None, *, max_tokens: int,
                      max_chars: int = 4000, llm_tokens: int = 200) -> Summary:
    """A session summary within ``max_tokens`` (whitespace tokens, title included).

    With an LLM, the model writes it from the session's lines, and its answer must keep
    at least half of the facts the extractive summary kept (the state statements and the
    clauses that carry the most content); otherwise the extractive one is used."""
    body = max(8, max_tokens - token_count(title) - 1)
    facts = condense(turns, max_tokens=body)
    fallback = _clip(f"{title}: {' '.join(facts)}" if facts else
                     extractive(title, [f"{n}: {t}" if n else t for n, t, _ in turns],
                                max_chars=max_chars), max_chars)
    if llm is None:
        return Summary(fallback, EXTRACTIVE_ID)
    lines = [f"{n}: {t}" if n else t for n, t, _ in turns]
    source = "\n".join(_best_lines(lines, _MAX_INPUT_CHARS))
    messages = [{"role": "system", "content": _SYSTEM},
                {"role": "user", "content": f"{title}\n\n{source}\n\nSummarize the text "
                 f"above in at most {body} words. Keep every fact: names, places, dates, "
                 "numbers, what people did and plan. Leave out greetings and small talk."}]
    def check(answer: str) -> str:
        text = " ".join(validate_summary(answer, source, max_chars=max_chars).split()[:body])
        if _kept_facts(text, facts) < 0.5:
            raise ValueError("drops the session's facts")
        return text
    return _from_llm(llm, messages, llm_tokens, check, lambda: fallback)


def summarize(title: str, lines: Sequence[str], llm: LLM | None = None, *,
              max_chars: int = 600, max_tokens: int = 160) -> Summary:
    """Summarise ``lines`` (e.g. ``"Maya: I moved to Lisbon"``) under ``title``."""
    if llm is None:
        return Summary(extractive(title, lines, max_chars=max_chars), EXTRACTIVE_ID)
    source = "\n".join(_best_lines(lines, _MAX_INPUT_CHARS))
    messages = [{"role": "system", "content": _SYSTEM},
                {"role": "user", "content": f"{title}\n\n{source}\n\nSummarize the text "
                 "above in two or three sentences."}]
    return _from_llm(llm, messages, max_tokens,
                     lambda answer: validate_summary(answer, source, max_chars=max_chars),
                     lambda: extractive(title, lines, max_chars=max_chars))


def _from_llm(llm: LLM, messages: list[dict[str, str]], max_tokens: int,
              check: Callable[[str], str], fallback: Callable[[], str]) -> Summary:
    """The model's summary if ``check`` accepts it (it raises ValueError otherwise), else
    the extractive ``fallback`` with the reason kept."""
    try:
        text = check(llm.complete(messages, max_tokens=max_tokens, temperature=0.0))
    except ModelError as exc:
        reason = f"model error: {exc.message}"
    except ValueError as exc:
        reason = f"rejected: {exc}"
    else:
        return Summary(text, llm.id)
    return Summary(fallback(), EXTRACTIVE_ID, reason)
