"""Second stage: re-score the fused candidates with what the first stage cannot see.

* Link expansion: relevance flows along memory links (consecutive turns of a
  conversation, links people or agents add), so the turn *around* a strong match, which
  often holds the actual answer, enters the ranking even when it shares no words with
  the query. Not along the links the lifecycle derives in bulk (similar, shared entity,
  summary-to-source): see ``SearchConfig.link_skip``.
* Speaker cue: when the query names a person, what that person said is preferred.
* Name cue: when the query asks for things known by name ("Which books has Tim read?",
  "What cities has John been to?"), memories that name something are preferred: the
  first stage ranks "I love exploring new cities" above "I was in Chicago last week",
  since only the first says "city".
* Length prior: among chat turns, one that says something outranks "Wow, great!" or
  "Cool! What kind of music do you play?" at an equal first-stage score (BM25 normalises
  length away, and short acknowledgements and questions back share the names and topic
  words of the turns around them, while what a person tells is in their statements).

All four run on the top candidates only, with one or two small store reads.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from ..storage.base import RecordStore, RowQuery, StoredRow
from ..temporal.topics import LEXICON, SINGLE_TOPICS, about, asked, status_change, values_named
from .context import name_of
from .text import asks_for_names, name_words, named_in, names_something, sentences


def expand_links(store: RecordStore, query: RowQuery, scores: dict[int, float],
                 rows: dict[int, StoredRow], *, beta: float, hops: int, top: int,
                 skip: Sequence[str] = ()) -> dict[int, float]:
    """Add ``beta`` x a candidate's score to every memory within ``hops`` links of it,
    along links of any kind but those in ``skip`` (``SearchConfig.link_skip`` says why)."""
    if beta <= 0 or hops <= 0 or not rows:
        return scores
    seq_of = {r.item.id: seq for seq, r in rows.items()}
    seeds = {rows[s].item.id: scores[s] for s in
             sorted(scores, key=scores.get, reverse=True)[:top] if s in rows}  # type: ignore[arg-type]
    adjacency: dict[str, set[str]] = {}
    frontier, fetched = set(seeds), set()
    for _ in range(hops):  # one store read per hop, for the whole frontier
        todo = frontier - fetched
        for src, dst in store.links(list(todo), skip) if todo else ():
            adjacency.setdefault(src, set()).add(dst)
            adjacency.setdefault(dst, set()).add(src)
        fetched |= todo
        frontier = {n for i in frontier for n in adjacency.get(i, ())}
    gained: dict[str, float] = {}
    for seed, score in seeds.items():
        reached, layer = {seed}, {seed}
        for _ in range(hops):
            layer = {n for i in layer for n in adjacency.get(i, ())} - reached
            reached |= layer
        for item_id in reached - {seed}:
            gained[item_id] = gained.get(item_id, 0.0) + beta * score
    missing = [i for i in gained if i not in seq_of]
    if missing:  # neighbours must pass the same scope, status and time filters
        fetched = store.select(replace(query, ids=missing, seqs=None, limit=None, offset=0))
        for r in fetched:
            rows[r.seq] = r
            seq_of[r.item.id] = r.seq
    out = dict(scores)
    for item_id, extra in gained.items():
        seq = seq_of.get(item_id)
        if seq is not None:
            out[seq] = out.get(seq, 0.0) + extra
    return out


def speaker_boost(text: str, scores: dict[int, float], rows: dict[int, StoredRow],
                  *, gamma: float) -> dict[int, float]:
    """Multiply by ``1 + gamma`` the memories whose speaker is named in the query."""
    if gamma <= 0:
        return scores
    speaker = {seq: name_of(r.item) for seq, r in rows.items()}
    named = set(named_in(text, (s for s in speaker.values() if s)))
    return _boost(scores, 1.0 + gamma, lambda seq: speaker.get(seq) in named)


def name_boost(text: str, scores: dict[int, float], rows: dict[int, StoredRow],
               *, gamma: float) -> dict[int, float]:
    """Multiply by ``1 + gamma`` the memories that name something, if the query asks for
    named things (``text.asks_for_names``). The candidates' speakers do not count: "Thanks,
    Maria!" names the person being talked to, not a book or a city."""
    if gamma <= 0 or not asks_for_names(text):
        return scores
    skip = name_words(n for n in (name_of(r.item) for r in rows.values()) if n)
    return _boost(scores, 1.0 + gamma,
                  lambda seq: seq in rows and names_something(rows[seq].item.text, skip))


def _boost(scores: dict[int, float], factor: float,
           chosen: Callable[[int], bool]) -> dict[int, float]:
    """``scores`` with the chosen memories' scores multiplied by ``factor``."""
    return {seq: score * factor if chosen(seq) else score for seq, score in scores.items()}


def length_prior(scores: dict[int, float], rows: dict[int, StoredRow], *, beta: float,
                 chars: int) -> dict[int, float]:
    """Multiply a turn's score by ``1 + beta * min(stated / chars, 1)``, ``stated`` the
    length of its sentences that are not questions; other kinds of memory (facts, notes,
    summaries) are left alone: their length says nothing."""
    if beta <= 0 or chars <= 0:
        return scores
    out = dict(scores)
    for seq, score in scores.items():
        row = rows.get(seq)
        if row is not None and row.item.kind == "turn":
            out[seq] = score * (1.0 + beta * min(stated(row.item.text) / chars, 1.0))
    return out


_NOW = re.compile(r"\b(?:now|currently|current|these days|nowadays|at the moment|right now|"
                  r"still|latest|most recent|recently|new|newest|present|today|anymore|any more|"
                  r"presently|lately)\b", re.IGNORECASE)
_PAST = re.compile(r"\b(?:used to|previously|formerly|former|originally|at first|before|"
                   r"earlier|old|past|back then|once|initially|first)\b", re.IGNORECASE)


_PRESENT = re.compile(r"\b(?:does|do|is|are)\b|\w'(?:s|re)\b", re.IGNORECASE)
#: The past, and the present perfect that sums it up ("Who has Hana been with?", "Which
#: cities has she lived in?"): every value, not the current one.
_PAST_TENSE = re.compile(r"\b(?:did|was|were|had|has|have|ever|all)\b|\w'(?:ve)\b",
                         re.IGNORECASE)


def intent(text: str, window: tuple[float | None, float | None] | None) -> str:
    """What time a question asks about: "then" (it names a time, or says "used to",
    "before", "previously"), "now" ("now", "currently", "these days", "latest", ...) or
    "" (no cue: the present is assumed, mildly)."""
    if window is not None or _PAST.search(text):
        return "then"
    return "now" if _NOW.search(text) else ""


def validity_prior(text: str, scores: dict[int, float], rows: dict[int, StoredRow], *,
                   now: float, window: tuple[float | None, float | None] | None,
                   penalty: float, gamma: float) -> dict[int, float]:
    """Current truth first, among statements about the same thing.

    Only candidates that state the same subject's same attribute (a shared key in
    ``provenance["truth_keys"]``, written by :mod:`memvault.temporal`) are weighed against
    each other, so a question about anything else keeps its ranking. In such a group:
    with no time in the question (or "now", "currently", ...), a statement superseded in
    the past is multiplied by ``1 - penalty``, one that still holds by ``1 + gamma``, and
    the stale one never stays above the best current one; a question naming a time
    ("where did she live in March 2023?") prefers, the same way, the statements that held
    then. A question asking about the past without a date ("used to", "before") is left
    alone."""
    if penalty <= 0 and gamma <= 0:
        return scores
    cue = intent(text, window)
    if cue == "then" and window is None:
        return scores
    groups: dict[str, list[int]] = {}
    for seq in scores:
        row = rows.get(seq)
        if row is None:
            continue
        truth = row.item.provenance.get("truth") or ()
        single = {t.get("a") for t in truth if isinstance(t, dict) and t.get("single")}
        for k in row.item.provenance.get("truth_keys") or ():
            # which value held then is a question about one-at-a-time attributes (home,
            # employer, partner ...); hobbies and pets held then are no better an answer
            if k.startswith(("alias|", "topic|")):
                continue  # names, and what a memory is about: not statements
            if cue != "then" or k.partition("|")[2] in single:
                groups.setdefault(k, []).append(seq)
    factor: dict[int, float] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        held = {seq: _held(rows[seq].item, now, window if cue == "then" else None)
                for seq in members}
        if all(held.values()) or not any(held.values()):
            continue  # nothing to tell apart
        for seq, ok in held.items():
            factor[seq] = (1.0 + gamma) if ok else min(factor.get(seq, 1.0), 1.0 - penalty)
    out = dict(scores)
    for seq, f in factor.items():
        out[seq] = scores[seq] * f
    for members in groups.values():  # a stale statement never outranks a current one
        best = max((out[s] for s in members if factor.get(s, 1.0) > 1.0), default=None)
        if best is None:
            continue
        for seq in members:
            if factor.get(seq, 1.0) < 1.0 and out[seq] >= best:
                out[seq] = best * 0.999
    return out


def topic_question(text: str, window: tuple[float | None, float | None] | None
                   ) -> tuple[str, set[str]] | None:
    """(time cue, attributes) when ``text`` asks for one-at-a-time attributes now or at a
    named time (``topic_prior``), else None."""
    cue = intent(text, window)
    if cue == "" and _PRESENT.search(text) and not _PAST_TENSE.search(text):
        cue = "now"  # "Where does Maya live?" asks where she lives now
    if cue == "" or (cue == "then" and window is None):
        return None
    wanted = asked(text) & SINGLE_TOPICS
    return (cue, wanted) if wanted else None


def topic_words(attributes: set[str]) -> list[str]:
    """The words of ``attributes``' lexicons, for a lexical search that finds statements
    the question shares no word with ("Green tea has replaced rooibos in my life")."""
    words = {w for a in sorted(attributes) for phrase in LEXICON[a] for w in phrase.split()}
    return sorted(w for w in words if len(w) > 2 and w not in _FILLER)


_FILLER = frozenset("the and new with for about place life team first day".split())


def _people(name: str) -> set[str]:
    """What a question may call a speaker: "Rafael Kowalski" is also "Rafael", the handle
    "rafa.mendes" is also "rafa", "bex 🦔" is "bex"."""
    name = name.strip().lower()
    first = name.split()[0] if name.split() else name
    out = {name, first} if first.isalpha() and len(first) > 1 else {name}
    return out | {t for t in re.findall(r"[^\W\d_]{3,}", name)[:1]}


def named_by(word: str, handle: str) -> bool:
    """Whether a question's ``word`` (a name) may call the speaker ``handle``: a handle's
    first letters-only token that the name starts with or that starts with the name
    ("arj_p" is Arjun, "sunnivaaas" is Sunniva), covering most of the shorter."""
    word = word.lower()
    for token in re.findall(r"[^\W\d_]{3,}", handle.lower())[:1]:
        short, long = sorted((word, token), key=len)
        if long.startswith(short) and len(short) >= 0.6 * len(long):
            return True
    return False


def topic_prior(text: str, scores: dict[int, float], rows: dict[int, StoredRow], *,
                window: tuple[float | None, float | None] | None, gamma: float,
                ask: tuple[str, set[str]] | None,
                aliases: dict[str, set[str]] | None = None) -> dict[int, float]:
    """The latest word on a person's attribute first, when no rule read a statement.

    A question that names a person and asks for one of their one-at-a-time attributes
    now ("Which company is Maya working for these days?") or at a named time: among the
    candidates that assert something about that attribute for that person
    (:func:`memvault.temporal.topics.about`: their own first-person statements or
    third-person ones naming them, not questions, plans or other people's news), the
    most recent one (on a dated question: the most recent that began before the time
    ends) is multiplied by ``1 + gamma`` and put above every candidate; the group's
    others are divided by ``1 + gamma``. Other questions keep their ranking. ``ask``:
    :func:`topic_question` of the text (the searcher has it already). ``aliases``: name
    -> the handles known to go by it (a speaker named by a greeting after their earlier
    turns)."""
    if ask is None or gamma <= 0:
        return scores
    cue, wanted = ask
    calls: dict[str, set[str]] = {}  # what the question may call someone -> their names
    speakers = {seq: (name_of(r.item) or "").lower() for seq, r in rows.items()}
    for name in set(speakers.values()) - {""}:
        for alias in _people(name):
            calls.setdefault(alias, set()).add(name)
    for name, handles in (aliases or {}).items():
        calls.setdefault(name, set()).update(handles)
    for word in {w.lower() for w in re.findall(r"\b[A-Z][^\W\d_]+\b", text)} - set(calls):
        found = {h for h in set(speakers.values()) - {""} if named_by(word, h)}
        if found:
            calls[word] = found
    named = {n.lower() for n in named_in(text, calls)}
    subjects = {full for n in named for full in calls[n]} | named
    if not named:
        return scores
    group: list[int] = []
    for seq in scores:
        row = rows.get(seq)
        if row is None:
            continue
        handle = str(row.item.metadata.get("speaker") or "").strip().lower()
        speaker = handle if handle in subjects else speakers.get(seq)  # a misread name
        said = about(row.item.text, speaker=speaker or None, names=subjects,
                     inherited=row.item.provenance.get("topics") or ())
        if any(who in subjects and attrs & wanted for who, attrs in said.items()):
            group.append(seq)
    if not group:
        return scores
    after, before = window if cue == "then" and window is not None else (None, None)
    # said at the same time (one session's timestamp): the later message is the later word
    # ("Moved to Austin!" then "Correction: Cape Town.")
    timed = sorted((_latest(rows[s].item), _position(rows[s].item), s) for s in group)
    if after is not None and before is None:  # "after she moved": the first word since
        later = [e for e in timed if e[0] >= after]
        eligible = later[:1] or timed[-1:]
    else:
        eligible = [e for e in timed if before is None or e[0] < before]
    if not eligible:
        return scores
    chosen = _began_with(rows, [e[2] for e in eligible], subjects, wanted)
    out = dict(scores)
    for seq in group:
        out[seq] = scores[seq] / (1.0 + gamma)
    out[chosen] = max(max(scores.values()) * 1.001, scores[chosen] * (1.0 + gamma))
    return out


def _position(item: Any) -> int:
    """Where ``item`` came in the messages written with it (``add_messages``' index)."""
    index = item.provenance.get("index")
    return index if isinstance(index, int) else 0


def _began_with(rows: dict[int, StoredRow], timed: list[int], subjects: set[str],
                wanted: set[str]) -> int:
    """Of the words on one attribute in time order, the one the current value began with:
    the latest, or the earlier one that named the same value when nothing named another
    in between and nothing ended it ("I now work at Hatchards & Pym" before "Still at
    Hatchards & Pym")."""
    chosen = timed[-1]
    names = {n for n, a in values_named(rows[chosen].item.text, subjects).items() if a in wanted}
    if not names or _ended(rows[chosen].item.text, wanted):
        return chosen
    for seq in reversed(timed[:-1]):
        if _ended(rows[seq].item.text, wanted):
            break
        named = {n for n, a in values_named(rows[seq].item.text, subjects).items()
                 if a in wanted}
        if names <= named:
            chosen = seq
        elif named:
            break
    return chosen


#: Words that end a value rather than state it ("I left Contoso", "no more Fiat").
_ENDING = re.compile(r"\b(?:left|leaving|quit|no longer|anymore|goodbye|no more|sold|moved on|"
                     r"moved out|broke up|split up|let (?:me|us) go)\b", re.IGNORECASE)


def _ended(text: str, wanted: set[str]) -> bool:
    return bool(status_change(text) & wanted or _ENDING.search(text))


def _latest(item: Any) -> float:
    """The latest time ``item``'s statement can be placed at, to order the words on one
    attribute: a month it names ("I left Orchard in September", said on 2 October) may be
    any day of that month up to when it was said, so a word said on 8 September does not
    come after it, and "we moved to Bristol in October" did not yet hold on 5 October."""
    start = item.valid_at
    said = _said_at(item) or item.event_time or item.valid_from
    if start is None or said is None or start >= said or start.day != 1 \
            or (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0):
        return began(item)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return min(end.timestamp() - 1.0, said.timestamp())


def _said_at(item: Any) -> datetime | None:
    """When a fact was said, if the reader recorded it apart from the date it states."""
    raw = item.metadata.get("said")
    try:
        said = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:  # anyone may write metadata: a value that is no time is not one
        return None
    return said.replace(tzinfo=timezone.utc) if said and said.tzinfo is None else said


def began(item: Any) -> float:
    """When ``item``'s statement was made (valid time, else event time, else written)."""
    start = item.valid_at or item.event_time or item.valid_from
    return start.timestamp() if start is not None else 0.0


def _held(item: Any, now: float, window: tuple[float | None, float | None] | None) -> bool:
    """Did ``item``'s statement hold now (no window) or during ``window``?"""
    start = (item.valid_at or item.valid_from).timestamp()
    end = item.invalid_at.timestamp() if item.invalid_at is not None else None
    if window is None:
        return end is None or end > now
    after, before = window
    return (before is None or start < before) and (end is None or after is None or end > after)


def stated(text: str) -> int:
    """Characters of ``text`` outside its questions: "Cool! What do you play?" states 5.

    Remembered by text, up to 2,000 characters (the cache stays under ~10 MB): every
    search weighs its ~40 candidates' lengths, and a vault's questions keep finding the
    same turns (cutting them into sentences was ~5% of a search)."""
    return _stated(text) if len(text) > 2000 else _stated_short(text)


def _stated(text: str) -> int:
    return sum(len(s) for s in sentences(text) if not s.rstrip().endswith("?"))


_stated_short = lru_cache(maxsize=4096)(_stated)


def ranked(scores: dict[int, float], k: int) -> Sequence[tuple[int, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
