"""Questions for a generated chat, with evidence derived from the ground truth.

Evidence is the turn that *states* the answer: for "where does X live now?" the turn
that states the current value (the correction turn when the value was first mistyped,
the negation turn when there is no value any more); for "where did X live in March
2023?" the turn that stated the value valid then. A date asked about keeps a margin of
days from both ends of the value's interval, and those ends are the bounds of what the
text says ("in March" bounds the move to March), so the answer is never borderline.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from . import _lexicon as L
from ._templates import ABSTAIN, GERUNDS, INFINITIVES, QUESTIONS
from .locomo import GENERATED_CATEGORIES

if TYPE_CHECKING:
    from .generate import _Conversation, _Fact

_CAT = {v: k for k, v in GENERATED_CATEGORIES.items()}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
#: Days kept between an asked date and either end of the value's interval.
MARGIN_DAYS = 4


def _long(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _bare(value: str) -> str:
    return re.sub(r"^(a|an|the) ", "", value)


def _when(f: "_Fact") -> str:
    assert f.lo is not None and f.hi is not None
    return _long(f.lo) if f.lo == f.hi else f"between {_long(f.lo)} and {_long(f.hi)}"


def _none_answer(f: "_Fact") -> str:
    prev = f.prev or ""
    return {"employer": f"nowhere (left {prev})", "partner": f"no one (split up with {prev})",
            "car": f"no car (sold the {_bare(prev)})"}.get(f.type, f"none (no longer {prev})")


def then_dates(start: date, end: date) -> list[tuple[str, date, date]]:
    """Phrases for a date inside [start, end) with the margin: whole months first."""
    lo, hi = start + timedelta(days=MARGIN_DAYS), end - timedelta(days=MARGIN_DAYS)
    if hi < lo:
        return []
    out: list[tuple[str, date, date]] = []
    y, m = lo.year, lo.month
    while date(y, m, 1) <= hi:
        first, last = date(y, m, 1), date(y, m, monthrange(y, m)[1])
        if first >= lo and last <= hi:
            out.append((f"in {_MONTHS[m - 1]} {y}", first, last))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    if not out:
        day = lo + (hi - lo) / 2
        out.append((f"on {_long(day)}", day, day))
    return out


class _Builder:
    def __init__(self, conv: "_Conversation") -> None:
        self.conv, self.rng = conv, conv.rng
        self.out: list[dict[str, Any]] = []

    def add(self, category: str, ftype: str, templates: tuple[str, ...], fields: dict[str, Any],
            answer: str, evidence: list["_Fact"], **extra: Any) -> None:
        text = self.rng.choice(templates).format(**fields)
        text = text[:1].upper() + text[1:]
        self.out.append({"question": text, "answer": answer,
                         "evidence": list(dict.fromkeys(f.dia_id for f in evidence)),
                         "category": _CAT[category], "type": ftype, **extra})

    def person(self, p: int) -> None:
        conv = self.conv
        name = conv.people[p].name
        facts = [f for f in conv.facts if f.person == p]
        by_type = {t: [f for f in facts if f.type == t] for t in {f.type for f in facts}}
        for ftype in ("home", "employer", "partner", "car", "drink"):
            self.single_valued(name, ftype, by_type.get(ftype, []))
        pets = by_type.get("pet", [])
        for f in pets:
            self.add("information-extraction", "pet", QUESTIONS["single"]["pet"],
                     {"name": name, "species": f.species}, f.value or "", [f])
        if len(pets) >= 2:
            self.add("multi-session", "pet", QUESTIONS["aggregate"]["pet"], {"name": name},
                     ", ".join(f"{f.value} ({f.species})" for f in pets), pets)
        self.accumulating(name, "hobby", [f for f in by_type.get("hobby", [])
                                          if f.action == "change"])
        self.accumulating(name, "health", by_type.get("health", []))
        for f in by_type.get("plan", []):
            self.add("information-extraction", "plan", QUESTIONS["single"]["plan"],
                     {"name": name, "month": f.month}, f.value or "", [f])
        self.temporal(name, facts)
        self.abstain(p, name, by_type)

    def single_valued(self, name: str, ftype: str, line: list["_Fact"]) -> None:
        if not line:
            return
        if len(line) == 1:
            f = line[0]
            self.add("information-extraction", ftype, QUESTIONS["single"][ftype],
                     {"name": name}, f.value or "", [f])
            return
        last = line[-1]
        self.add("knowledge-update-now", ftype, QUESTIONS["now"][ftype], {"name": name},
                 last.value or _none_answer(last), [last])
        asked = []
        for f, nxt in zip(line, line[1:]):
            assert f.hi is not None and nxt.lo is not None
            options = then_dates(f.hi, nxt.lo)
            if options:
                asked.append((f, self.rng.choice(options)))
        for f, (phrase, lo, hi) in self.rng.sample(asked, min(2, len(asked))):
            self.add("knowledge-update-then", ftype, QUESTIONS["then"][ftype],
                     {"name": name, "date": phrase}, f.value or _none_answer(f), [f],
                     asked_from=lo.isoformat(), asked_to=hi.isoformat())
        held = [f for f in line if f.value]
        if len({f.value for f in held}) >= 2 and ftype in QUESTIONS["aggregate"]:
            self.add("multi-session", ftype, QUESTIONS["aggregate"][ftype], {"name": name},
                     ", ".join(dict.fromkeys(f.value or "" for f in held)), held)

    def accumulating(self, name: str, ftype: str, added: list["_Fact"]) -> None:
        """One question per item whose month is its own, and the list of them all."""
        def month(f: "_Fact") -> tuple[int, int] | None:
            if ftype == "health":  # "mentioned in": the session's month
                d = self.conv.dates[f.session]
                return d.year, d.month
            assert f.lo is not None and f.hi is not None
            return (f.lo.year, f.lo.month) if (f.lo.year, f.lo.month) == \
                (f.hi.year, f.hi.month) else None

        months = [month(f) for f in added]
        for f, m in zip(added, months):
            if m is not None and months.count(m) == 1:
                self.add("information-extraction", ftype, QUESTIONS["single"][ftype],
                         {"name": name, "date": f"in {_MONTHS[m[1] - 1]} {m[0]}"},
                         f.value or "", [f])
        if len(added) >= 2:
            self.add("multi-session", ftype, QUESTIONS["aggregate"][ftype], {"name": name},
                     ", ".join(f.value or "" for f in added), added)

    def temporal(self, name: str, facts: list["_Fact"]) -> None:
        rng = self.rng
        events = [f for f in facts if f.action == "change" and f.type in GERUNDS and f.value]
        precise = [f for f in events if f.lo == f.hi]
        for f in rng.sample(precise, min(2, len(precise))) or events[:1]:
            self.add("temporal-reasoning", f.type, QUESTIONS["when"][f.type],
                     {"name": name, "value": f.value}, _when(f), [f])
        pairs = [(a, b) for a in events for b in events
                 if a.session < b.session and a.hi is not None and b.lo is not None
                 and a.hi < b.lo and a.type != b.type]
        for a, b in rng.sample(pairs, min(2, len(pairs))):
            first, second = (a, b) if rng.random() < 0.5 else (b, a)
            g1 = GERUNDS[first.type].format(value=first.value)
            g2 = GERUNDS[second.type].format(value=second.value)
            self.add("temporal-reasoning", f"{a.type}+{b.type}", QUESTIONS["order"]["any"],
                     {"name": name, "g1": g1, "g2": g2},
                     GERUNDS[a.type].format(value=a.value), [a, b])
        exact = [(a, b) for a, b in pairs if a.lo == a.hi and b.lo == b.hi]
        if exact:
            a, b = rng.choice(exact)
            assert a.date is not None and b.date is not None
            days = (b.date - a.date).days
            self.add("temporal-reasoning", f"{a.type}+{b.type}", QUESTIONS["gap"]["any"],
                     {"name": name, "g1": GERUNDS[a.type].format(value=a.value),
                      "i2": INFINITIVES[b.type].format(value=b.value)},
                     f"{days} days (about {round(days / 7)} weeks)", [a, b])

    def abstain(self, p: int, name: str, by_type: dict[str, list["_Fact"]]) -> None:
        """Two questions about values never held, preferring ones the chat mentions in a
        distractor (a hypothetical, someone else's change, a slip)."""
        conv, rng = self.conv, self.rng
        options: list[tuple[str, dict[str, Any]]] = []
        for ftype in sorted(ABSTAIN):
            held = conv._held(p, ftype) - {f.slip for f in by_type.get(ftype, []) if f.slip}
            if ftype == "pet":
                kept = {f.species for f in by_type.get("pet", [])}
                for species in L.PET_SPECIES:
                    if species not in kept:
                        options.append((ftype, {"name": name, "species": species}))
                        break
                continue
            said = [d["value"] for d in conv.distractors
                    if d["person"] == name and d["type"] == ftype and d["value"] not in held]
            pool = said or [v for v in conv.pools[ftype] if v not in held][:3]
            if pool:
                options.append((ftype, {"name": name, "x": rng.choice(pool)}))
        for ftype, fields in rng.sample(options, min(2, len(options))):
            self.add("abstention", ftype, ABSTAIN[ftype], fields, "not mentioned", [])


def build_questions(conv: "_Conversation") -> list[dict[str, Any]]:
    b = _Builder(conv)
    for p in range(2):
        b.person(p)
    conv.rng.shuffle(b.out)
    return b.out
