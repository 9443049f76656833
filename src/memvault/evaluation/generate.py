"""A seeded generator of long two-person chats with facts that change over time.

Why: retrieval defaults tuned on one dataset (LoCoMo) fell below plain dense search on
chats where facts change. This builds a second, independent yardstick in LoCoMo's JSON
(``memvault bench locomo`` scores it as is) with the question types LongMemEval covers:
information extraction, multi-session aggregation, temporal reasoning, knowledge
updates ("now" and "then") and abstention.

What makes it hard on purpose, so no heuristic can ride on one surface form:

- people are exported under handles ("mk_92", a phone number) while the chat and the
  questions use their names ("Maya"), as real messaging exports do;
- every fact type is phrased >= 20 ways (see :mod:`._templates`), anywhere in a turn,
  first or third person, with dates in several formats ("yesterday", "on 3/14",
  "in March 2023", "last Tuesday"), two facts in one sentence, slips corrected in the
  next turn ("actually it's Y"), negations ("I no longer work at X");
- distractors that must not count as changes: other people's changes, hypotheticals,
  questions, plans (some later carried out, some never);
- session dates in several formats.

Everything is drawn from ``random.Random`` seeded per conversation: the same seed gives
the same bytes on every machine. The ground truth (every stated fact with its turn,
value and date bounds, every distractor turn) is kept under the sample's
``"generator"`` key, so evidence can be checked independently of how it was built.
"""

from __future__ import annotations

import json
import random
import re
import string
from calendar import monthrange
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from . import _lexicon as L
from ._questions import build_questions
from ._templates import (COMBOS, CORRECTIONS, DISTRACTORS, INTRO_REPLIES, INTROS,
                         MEET_PLACES, PHRASINGS, QUESTION_REPLIES)
from .locomo import GENERATED_CATEGORIES

__all__ = ["generate", "write", "phrasings", "FACT_TYPES", "SINGLE_VALUED",
           "CATEGORY_IDS", "DATE_FORMATS", "VERSION"]

VERSION = 1
FACT_TYPES: tuple[str, ...] = tuple(PHRASINGS)
#: Types holding one value at a time: a new value supersedes the old (knowledge updates).
SINGLE_VALUED: tuple[str, ...] = ("home", "employer", "partner", "car", "drink")
#: Category name -> number in the file (the names are LongMemEval's question types).
CATEGORY_IDS: dict[str, int] = {v: k for k, v in GENERATED_CATEGORIES.items()}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
#: Session date formats of the exports; the first is LoCoMo's own.
DATE_FORMATS: tuple[str, ...] = ("locomo", "locomo-nocomma", "iso", "us", "rfc")
_POOLS: dict[str, tuple[str, ...]] = {
    "home": L.CITIES, "employer": L.COMPANIES, "partner": L.OTHER_NAMES, "car": L.CARS,
    "pet": L.PET_NAMES, "hobby": L.HOBBIES, "health": L.HEALTH, "plan": L.PLANS,
    "drink": L.DRINKS,
}
MAX_CONVERSATIONS, MAX_SESSIONS = 200, 200
#: Words that stay capitalised mid-sentence: names, places, companies, months.
_PROPER = frozenset(w.split()[0] for pool in (
    L.FIRST_NAMES, L.OTHER_NAMES, L.SURNAMES, L.CITIES, L.COMPANIES, L.PET_NAMES, L.HOBBIES,
    L.DRINKS, _MONTHS, ("I", "I'm", "I've", "I'd", "I'll")) for w in pool if w[:1].isupper())


def phrasings(fact_type: str) -> tuple[str, ...]:
    """Every distinct template that states a fact of ``fact_type`` (all kinds)."""
    if fact_type not in PHRASINGS:
        raise InvalidInput(f"unknown fact type {fact_type!r}; known: {', '.join(FACT_TYPES)}",
                           field="fact_type")
    kinds = PHRASINGS[fact_type]
    return tuple(dict.fromkeys(t for kind in ("state", "change", "stop", "clause")
                               for t in kinds[kind]))


# -- the world ------------------------------------------------------------------------------
@dataclass
class _Person:
    idx: int
    name: str
    surname: str
    handle: str


@dataclass
class _Fact:
    """One stated fact: who, what, the value, and when it became true (``lo``..``hi``
    bound the event date when the text gives only a week, a month, or nothing)."""
    person: int
    type: str
    action: str  # "state" (held already), "change" (new value), "stop" (no value any more)
    value: str | None
    prev: str | None
    session: int
    date: date | None = None
    lo: date | None = None
    hi: date | None = None
    species: str | None = None
    month: str | None = None
    dia_id: str = ""
    template: str = ""
    when: str = ""
    slip: str | None = None  # a wrong value said first and corrected in a later turn
    combined: bool = False


@dataclass
class _Turn:
    speaker: int
    text: str
    facts: list[_Fact] = field(default_factory=list)
    distractor: dict[str, Any] | None = None


def _bare(value: str) -> str:
    return re.sub(r"^(a|an|the) ", "", value)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def _render(template: str, values: dict[str, Any]) -> str:
    text = template.format(**values)
    text = re.sub(r"\s+([.,!?;:])", r"\1", " ".join(text.split()))
    return _cap(text)


def _long(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _session_stamp(dt: datetime, style: str) -> str:
    h12 = dt.hour % 12 or 12
    ampm = "am" if dt.hour < 12 else "pm"
    month = _MONTHS[dt.month - 1]
    if style == "locomo":
        return f"{h12}:{dt.minute:02d} {ampm} on {dt.day} {month}, {dt.year}"
    if style == "locomo-nocomma":
        return f"{h12}:{dt.minute:02d} {ampm} on {dt.day} {month} {dt.year}"
    if style == "iso":
        return dt.strftime("%Y-%m-%d %H:%M")
    if style == "us":
        return f"{month} {dt.day}, {dt.year}, {h12}:{dt.minute:02d} {ampm.upper()}"
    return f"{dt:%a}, {dt.day} {month[:3]} {dt.year} {dt:%H:%M}"


class _Conversation:
    """Builds one chat: people, their timelines, the sessions, then the questions."""

    def __init__(self, rng: random.Random, sessions: int, turns: tuple[int, int],
                 style: str, sample_id: str) -> None:
        self.rng, self.n_sessions, self.turn_range = rng, sessions, turns
        self.style, self.sample_id = style, sample_id
        self.pools = {t: list(p) for t, p in _POOLS.items()}
        for pool in self.pools.values():
            rng.shuffle(pool)
        names = rng.sample(L.FIRST_NAMES, 2)
        surnames = rng.sample(L.SURNAMES, 2)
        self.people = [_Person(i, names[i], surnames[i], self._handle(names[i], surnames[i]))
                       for i in range(2)]
        if self.people[0].handle == self.people[1].handle:
            self.people[1].handle += "_2"
        start = datetime(2021, 1, 4) + timedelta(days=rng.randrange(0, 900))
        self.dates: list[datetime] = []
        day = start
        for _ in range(sessions):
            self.dates.append(day.replace(hour=rng.randrange(7, 23), minute=rng.randrange(60)))
            day = day + timedelta(days=rng.randrange(4, 21))
        self.facts: list[_Fact] = []
        self.distractors: list[dict[str, Any]] = []

    # -- people and values ---------------------------------------------------------------------
    def _handle(self, name: str, surname: str) -> str:
        rng = self.rng
        style = rng.choice(("initials", "initials", "word", "phone", "full", "first"))
        if style == "initials":
            return f"{name[0].lower()}{surname[0].lower()}_{rng.randrange(70, 100)}"
        if style == "word":
            return f"{rng.choice(L.HANDLE_WORDS)}{rng.randrange(1, 999)}"
        if style == "phone":
            return f"+44 7700 {rng.randrange(900000, 999999)}"
        return f"{name} {surname}" if style == "full" else name

    def _draw(self, ftype: str) -> Any:
        return self.pools[ftype].pop()

    def _held(self, person: int, ftype: str) -> set[str]:
        return {f.value for f in self.facts if f.person == person and f.type == ftype
                and f.value} | {f.slip for f in self.facts if f.person == person
                                and f.type == ftype and f.slip}

    # -- timelines ---------------------------------------------------------------------------
    def _slots(self, k: int, first: int, spacing: int, busy: dict[int, int]) -> list[int]:
        """Up to ``k`` sessions from ``first`` on, ``spacing`` apart, avoiding busy ones."""
        out: list[int] = []
        s = first
        while len(out) < k and s < self.n_sessions:
            room = self.n_sessions - s
            s += self.rng.randrange(0, max(1, min(room, 6)))
            if s >= self.n_sessions:
                break
            if busy.get(s, 0) < 3:
                out.append(s)
                busy[s] = busy.get(s, 0) + 1
                s += spacing
            else:
                s += 1
        return out

    def plan(self) -> None:
        rng, n = self.rng, self.n_sessions
        for p in range(2):
            busy: dict[int, int] = {}
            # single-valued: a first value said in passing early, then changes
            for ftype, start_max, p_has, changes in (
                    ("home", 2, 1.0, (1, 2, 2)), ("employer", 3, 1.0, (1, 1, 2)),
                    ("partner", 4, 0.6, (0, 1, 1)), ("car", 5, 0.6, (0, 1, 2)),
                    ("drink", 4, 1.0, (1, 1))):
                held = rng.random() < p_has
                current = None
                first = rng.randrange(0, min(start_max, n - 1) + 1)
                if held:
                    current = self._draw(ftype)
                    self.facts.append(_Fact(p, ftype, "state", current, None, first))
                k = rng.choice(changes) if held else (1 if rng.random() < 0.6 else 0)
                for s in self._slots(k, first + 2, 3, busy):
                    stop = (ftype in ("employer", "partner", "car") and current is not None
                            and rng.random() < 0.3)
                    if stop:
                        self.facts.append(_Fact(p, ftype, "stop", None, current, s))
                        current = None
                        continue
                    value = self._draw(ftype)
                    self.facts.append(_Fact(p, ftype, "change", value, current, s))
                    current = value
            # accumulating: pets, hobbies, health; plans
            species = rng.sample(L.PET_SPECIES, 2)
            for i, s in enumerate(self._slots(rng.choice((1, 2, 2)), 1, 3, busy)):
                self.facts.append(_Fact(p, "pet", "change", self._draw("pet"), None, s,
                                        species=species[i]))
            hobbies: list[str] = []
            for s in self._slots(rng.choice((2, 2, 3)), 1, 2, busy):
                hobbies.append(self._draw("hobby"))
                self.facts.append(_Fact(p, "hobby", "change", hobbies[-1], None, s))
            if len(hobbies) >= 2 and rng.random() < 0.4:
                last = max(f.session for f in self.facts if f.person == p and f.type == "hobby")
                later = [s for s in range(last + 2, n) if busy.get(s, 0) < 3]
                if later:
                    self.facts.append(_Fact(p, "hobby", "stop", None, hobbies[0],
                                            rng.choice(later)))
            for s in self._slots(rng.choice((1, 2)), 1, 4, busy):
                self.facts.append(_Fact(p, "health", "change", self._draw("health"), None, s))
            months_used: set[str] = set()
            for s in self._slots(rng.choice((1, 2)), 0, 3, busy):
                ahead = self.dates[s].month - 1 + rng.randrange(1, 5)
                month = _MONTHS[ahead % 12]
                if month in months_used:
                    continue
                months_used.add(month)
                self.facts.append(_Fact(p, "plan", "state", self._draw("plan"), None, s,
                                        month=month))
        self.facts.sort(key=lambda f: (f.session, f.person))
        for f in self.facts:
            if f.action == "change" and f.type != "plan" and f.type != "health" \
                    and rng.random() < 0.12:
                f.slip = self._draw(f.type) if f.type != "health" else None

    # -- dates -------------------------------------------------------------------------------
    def _date_phrase(self, fact: _Fact) -> str:
        """Pick when the event happened (after the previous session) and say it."""
        rng, today = self.rng, self.dates[fact.session].date()
        prev = self.dates[fact.session - 1].date() if fact.session else today - timedelta(30)
        gap = (today - prev).days
        o = rng.randrange(0, max(1, min(gap, 21)))
        day = today - timedelta(days=o)
        fact.date = fact.lo = fact.hi = day
        options: list[str] = []
        if o == 0:
            options += ["today", "this morning", "earlier today"]
        elif o == 1:
            options += ["yesterday", "last night"]
        else:
            options += [f"on {day.month}/{day.day}", f"on {day.day} {_MONTHS[day.month - 1][:3]}",
                        f"on {_MONTHS[day.month - 1]} {day.day}"]
            if o <= 6:
                options += [f"last {day:%A}", f"{o} days ago"]
            if o in (7, 14):
                options.append("a week ago" if o == 7 else "two weeks ago")
            if day.month != today.month:
                month_phrase = rng.choice((f"in {_MONTHS[day.month - 1]}",
                                           f"in {_MONTHS[day.month - 1]} {day.year}"))
                options += [month_phrase] * 2
            elif day.day >= 1 and o >= 2:
                options.append("earlier this month")
        phrase = rng.choice(options)
        if phrase.startswith("in ") or phrase == "earlier this month":
            first = day.replace(day=1)
            last = day.replace(day=monthrange(day.year, day.month)[1])
            fact.lo = max(first, prev + timedelta(days=1))
            fact.hi = min(last, today - timedelta(days=1)) if phrase != "earlier this month" \
                else today - timedelta(days=1)
            fact.date = fact.lo + (fact.hi - fact.lo) / 2
        return phrase

    def _undated(self, fact: _Fact) -> None:
        today = self.dates[fact.session].date()
        if fact.action == "state" or fact.session == 0:
            fact.date = fact.lo = fact.hi = today
            return
        prev = self.dates[fact.session - 1].date()
        fact.date, fact.lo, fact.hi = today, prev + timedelta(days=1), today

    # -- turns -------------------------------------------------------------------------------
    def _values(self, fact: _Fact, value: str | None) -> dict[str, Any]:
        me, other = self.people[fact.person], self.people[1 - fact.person]
        v = value or ""
        return {"value": v, "value_bare": _bare(v), "value_cap": _cap(v),
                "prev": fact.prev or "", "prev_bare": _bare(fact.prev or ""),
                "species": fact.species or "", "month": fact.month or "",
                "name": me.name, "surname": me.surname, "other": other.name, "when": ""}

    def _pick(self, templates: tuple[str, ...], available: set[str]) -> str:
        usable = [t for t in templates if _fields(t) <= available]
        return self.rng.choice(usable)

    def _say(self, fact: _Fact, value: str | None) -> str:
        kind = "state" if fact.action == "state" else fact.action
        available = {"value", "value_bare", "value_cap", "name", "surname", "other", "when"}
        if fact.prev:
            available |= {"prev", "prev_bare"}
        if fact.species:
            available.add("species")
        if fact.month:
            available.add("month")
        template = self._pick(PHRASINGS[fact.type][kind], available)
        fact.template = template
        values = self._values(fact, value)
        if "{when}" in template:
            values["when"] = fact.when = self._date_phrase(fact)
        else:
            self._undated(fact)
        return _render(template, values)

    def _decorate(self, sentence: str) -> str:
        """Put the statement anywhere in a turn: after an opener or small talk, before a
        question back. After a comma-like opener the sentence runs on in lower case
        unless it starts with "I" or a name."""
        rng = self.rng
        head = ""
        roll = rng.random()
        if roll < 0.3:
            head = rng.choice(L.OPENERS) + " "
        elif roll < 0.42:
            head = rng.choice(L.FILLER) + " Anyway, "
        first = sentence.split(" ", 1)[0].strip(",.!:;")
        if head and head.rstrip()[-1] not in ".!?:" and first not in _PROPER:
            sentence = sentence[:1].lower() + sentence[1:]
        tail = (" " + rng.choice(L.TAILS)) if rng.random() < 0.35 else ""
        return f"{head}{sentence}{tail}"

    def _reaction(self, speaker: int, fact: _Fact | None, value: str | None) -> _Turn:
        """The other person's answer: small talk after a value held already, surprise
        after a change, sometimes echoing the new value (an echo is never evidence)."""
        if fact is not None and fact.action == "state":
            return _Turn(speaker, self.rng.choice(L.FILLER_REPLIES))
        if fact is not None and (fact.action == "stop" or fact.type == "health"):
            return _Turn(speaker, self.rng.choice(L.SYMPATHY))
        if value and fact is not None and fact.type not in ("plan", "health") \
                and self.rng.random() < 0.3:
            return _Turn(speaker, _render(self.rng.choice(L.ECHOES), {"value": value}))
        return _Turn(speaker, self.rng.choice(L.REACTIONS))

    def _fact_units(self, facts: list[_Fact]) -> list[list[_Turn]]:
        rng, units = self.rng, []
        pending = list(facts)
        while pending:
            fact = pending.pop(0)
            other = 1 - fact.person
            mates = [g for g in pending if g.person == fact.person and g.action == "change"
                     and PHRASINGS[g.type]["clause"] and not g.slip]
            if (fact.action == "change" and PHRASINGS[fact.type]["clause"] and not fact.slip
                    and mates and rng.random() < 0.5):
                mate = mates[0]
                pending.remove(mate)
                units.append(self._combo(fact, mate))
                continue
            if fact.slip:
                slip_text = self._say(fact, fact.slip)
                turn = _Turn(fact.person, self._decorate(slip_text))
                turn.distractor = {"kind": "slip", "type": fact.type, "value": fact.slip,
                                   "person": self.people[fact.person].name}
                fix = _Turn(fact.person, _render(rng.choice(CORRECTIONS),
                                                 {"value": fact.value, "wrong": fact.slip}),
                            [fact])
                units.append([turn, self._reaction(other, fact, fact.slip), fix])
                continue
            turn = _Turn(fact.person, self._decorate(self._say(fact, fact.value)), [fact])
            unit = [turn]
            if rng.random() < 0.75:
                unit.append(self._reaction(other, fact, fact.value))
            units.append(unit)
        return units

    def _combo(self, a: _Fact, b: _Fact) -> list[_Turn]:
        rng = self.rng
        template = rng.choice(COMBOS)
        c1 = _render(rng.choice(PHRASINGS[a.type]["clause"]), self._values(a, a.value))
        c2 = _render(rng.choice(PHRASINGS[b.type]["clause"]), self._values(b, b.value))
        when = self._date_phrase(a) if "{when}" in template else ""
        if not when:
            self._undated(a)
        b.date, b.lo, b.hi, b.when = a.date, a.lo, a.hi, when
        a.when, a.combined = when, True
        b.combined = True
        a.template = b.template = template
        text = _render(template, {"c1": c1[:1].lower() + c1[1:], "c2": c2[:1].lower() + c2[1:],
                                  "when": when})
        return [_Turn(a.person, self._decorate(text), [a, b]),
                self._reaction(1 - a.person, a, None)]

    def _distractor(self, session: int, plan_of: _Fact | None = None) -> list[_Turn]:
        rng = self.rng
        if plan_of is not None:
            p, ftype, kind = plan_of.person, plan_of.type, "plan"
            x = plan_of.value
        else:
            p = rng.randrange(2)
            ftype = rng.choice(FACT_TYPES)
            kinds = [k for k, ts in DISTRACTORS[ftype].items() if ts]
            kind = rng.choice(kinds)
            held = self._held(p, ftype)
            choices = [v for v in self.pools[ftype] if v not in held] or ["somewhere new"]
            x = rng.choice(choices[:12])
        me = self.people[p]
        rel = rng.choice(L.RELATIVES)
        values = {"x": x, "rel": rel, "rel_cap": _cap(rel), "name": me.name,
                  "species": (plan_of.species if plan_of else None) or rng.choice(L.PET_SPECIES),
                  "month": rng.choice(_MONTHS)}
        template = rng.choice(DISTRACTORS[ftype][kind])
        said = x if "{x}" in template else values["species"]  # "Would you adopt a cat?"
        record = {"kind": kind, "type": ftype, "value": said, "person": me.name,
                  "template": template}
        if kind == "question":  # asked by the other, answered by the subject
            ask = _Turn(1 - p, _render(template, values), distractor=record)
            return [ask, _Turn(p, rng.choice(QUESTION_REPLIES))]
        turn = _Turn(p, self._decorate(_render(template, values)), distractor=record)
        return [turn] + ([_Turn(1 - p, rng.choice(L.FILLER_REPLIES))] if rng.random() < 0.6
                         else [])

    def build_sessions(self) -> dict[str, Any]:
        rng = self.rng
        conv: dict[str, Any] = {"speaker_a": self.people[0].handle,
                                "speaker_b": self.people[1].handle}
        plans_before: dict[int, list[_Fact]] = {}
        for f in self.facts:
            if f.action == "change" and f.type in ("home", "employer", "car", "hobby") \
                    and f.session >= 2 and not f.slip and rng.random() < 0.3:
                s = f.session - rng.randrange(1, min(3, f.session) + 1)
                plans_before.setdefault(s, []).append(f)
        for s in range(self.n_sessions):
            first = rng.randrange(2)
            a, b = self.people[first], self.people[1 - first]
            units: list[list[_Turn]] = []
            units += self._fact_units([f for f in self.facts if f.session == s])
            units += [self._distractor(s, f) for f in plans_before.get(s, [])]
            units += [self._distractor(s) for _ in range(rng.choice((0, 1, 1, 2, 2, 3)))]
            target = rng.randrange(*self.turn_range)
            while sum(len(u) for u in units) + 4 < target:
                who = rng.randrange(2)
                unit = [_Turn(who, rng.choice(L.FILLER))]
                if rng.random() < 0.7:
                    unit.append(_Turn(1 - who, rng.choice(L.FILLER_REPLIES)))
                units.append(unit)
            rng.shuffle(units)
            if s == 0:
                place = rng.choice(MEET_PLACES)
                head = [_Turn(a.idx, _render(rng.choice(INTROS), {"name": a.name, "place": place})),
                        _Turn(b.idx, _render(rng.choice(INTRO_REPLIES),
                                             {"name": b.name, "other": a.name}))]
            else:
                head = [_Turn(a.idx, _render(rng.choice(L.GREETINGS), {"other": b.name})),
                        _Turn(b.idx, _render(rng.choice(L.REPLIES_TO_GREETING),
                                             {"other": a.name}))]
            turns = head + [t for u in units for t in u]
            if rng.random() < 0.8:
                turns.append(_Turn(rng.randrange(2), rng.choice(L.GOODBYES)))
            rows = []
            for i, t in enumerate(turns, 1):
                dia = f"D{s + 1}:{i}"
                for f in t.facts:
                    f.dia_id = dia
                if t.distractor is not None:
                    self.distractors.append({**t.distractor, "dia_id": dia})
                rows.append({"speaker": self.people[t.speaker].handle, "dia_id": dia,
                             "text": t.text})
            conv[f"session_{s + 1}_date_time"] = _session_stamp(self.dates[s], self.style)
            conv[f"session_{s + 1}"] = rows
        return conv

    # -- questions ---------------------------------------------------------------------------
    def questions(self) -> list[dict[str, Any]]:
        return build_questions(self)

    def truth(self) -> dict[str, Any]:
        def row(f: _Fact) -> dict[str, Any]:
            d = asdict(f)
            d["person"] = self.people[f.person].name
            for key in ("date", "lo", "hi"):
                d[key] = d[key].isoformat() if d[key] else None
            return d

        return {"people": [{"name": p.name, "surname": p.surname, "handle": p.handle}
                           for p in self.people],
                "facts": [row(f) for f in self.facts], "distractors": self.distractors,
                "session_dates": [d.isoformat() for d in self.dates],
                "date_format": self.style}


def generate(seed: int, *, conversations: int = 4, sessions: int = 20,
             turns_per_session: tuple[int, int] = (8, 15)) -> list[dict[str, Any]]:
    """LoCoMo-format samples: ``conversations`` chats of ``sessions`` sessions each.

    Deterministic in ``seed``. Questions use the categories in
    ``memvault.evaluation.locomo.GENERATED_CATEGORIES`` (named in each sample's
    ``category_names``); each sample's ``generator`` key holds the ground truth.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInput("seed must be an integer", field="seed")
    if not 1 <= conversations <= MAX_CONVERSATIONS:
        raise InvalidInput(f"conversations must be 1..{MAX_CONVERSATIONS}", field="conversations")
    if not 6 <= sessions <= MAX_SESSIONS:
        raise InvalidInput(f"sessions must be 6..{MAX_SESSIONS}", field="sessions")
    low, high = turns_per_session
    if not 4 <= low < high <= 200:
        raise InvalidInput("turns_per_session must be (low, high) with 4 <= low < high <= 200",
                           field="turns_per_session")
    styles = list(DATE_FORMATS)
    random.Random(f"memvault-gen:{seed}:styles").shuffle(styles)
    samples = []
    for i in range(conversations):
        rng = random.Random(f"memvault-gen:{seed}:{i}")
        conv = _Conversation(rng, sessions, (low, high), styles[i % len(styles)],
                             f"gen{seed}-{i}")
        conv.plan()
        body = conv.build_sessions()
        samples.append({
            "sample_id": conv.sample_id, "conversation": body, "qa": conv.questions(),
            "category_names": {str(k): v for k, v in GENERATED_CATEGORIES.items()},
            "generator": {"version": VERSION, "seed": seed, "conversation": i, **conv.truth()},
        })
    return samples


def write(path: str | Path, seed: int, **options: Any) -> dict[str, int]:
    """Generate and write one suite file; returns its counts."""
    samples = generate(seed, **options)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(samples, indent=1, ensure_ascii=False), encoding="utf-8")
    turns = sum(len(v) for s in samples for k, v in s["conversation"].items()
                if re.fullmatch(r"session_\d+", k))
    return {"conversations": len(samples), "turns": turns,
            "questions": sum(len(s["qa"]) for s in samples)}
