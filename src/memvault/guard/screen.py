"""The memory-injection guard: does this text try to instruct the agent that reads it?

A memory is read back into a prompt later, by an agent that trusts its own memory. Text
that *talks to that agent* (override its instructions, leak its system prompt, put it in
a jailbreak persona, smuggle a tool call, plant a standing order "from now on ...",
or hide any of that in invisible characters or base64) is the attack described for
A-MemGuard / AgentSys. The guard flags such text so the vault can quarantine it.

It is pure Python: rules (English in :mod:`.rules`, ten more languages in
:mod:`.languages`) plus a small learned head over hashed words (:mod:`.learned`, a
``.npz`` shipped with the package), sub-millisecond per chat turn, and every verdict is
explainable (which rule, which family, the matching words, the head's probability).
Rules have weights; independent evidence combines as ``1 - prod(1 - w)`` and the text
is flagged at ``score >= threshold``. Strong rules (``ignore previous instructions``)
flag alone, weak cues (``you are now``) only together; prose *about* attacks (a talk, a
red-team note) discounts the instruction rules.

Before matching, text is normalised so cheap obfuscation does not help: invisible
characters are removed (and reported), NFKC folds full-width and compatibility forms,
accents are stripped, common Cyrillic/Greek homoglyphs map to Latin, letter-spaced words
("i g n o r e") and leetspeak ("1gn0re") are rejoined, and payloads hidden in Unicode
tag characters or base64/hex are decoded and scanned too.

The rules live in :mod:`.rules`, the normalisation in :mod:`.text`; this module
combines them into verdicts.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol

from .languages import LANG_RULES, LANGUAGES, languages_in
from .learned import Head, bundled_head
from .rules import RULES
from .text import LEETISH, SPACED, WS, decoded, deleet, despace, fold, hidden, rewritten

__all__ = ["InjectionGuard", "Verdict", "Reason", "Screen", "FAMILIES"]

FAMILIES: tuple[str, ...] = ("override", "exfiltration", "jailbreak", "tool", "poisoning",
                             "hidden_unicode", "encoded", "learned")


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that matched: its family, its name, its weight and the words it saw."""

    family: str
    rule: str
    weight: float
    evidence: str
    via: str = "text"  # which view of the text matched: text, despaced, leet, tags, base64, hex

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "rule": self.rule, "weight": self.weight,
                "evidence": self.evidence, "via": self.via}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard's answer: flagged or not, the combined score, and every rule that fired
    (kept with a quarantined memory so a reviewer sees why)."""

    flagged: bool
    score: float
    reasons: tuple[Reason, ...] = ()

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.family for r in self.reasons))

    def to_dict(self) -> dict[str, Any]:
        return {"flagged": self.flagged, "score": round(self.score, 4),
                "families": list(self.families), "reasons": [r.to_dict() for r in self.reasons]}


class Screen(Protocol):
    """What the vault needs from a guard: an id (recorded with verdicts) and ``check``."""

    id: str

    def check(self, text: str) -> Verdict: ...


def _snippet(text: str, m: re.Match[str]) -> str:
    s = WS.sub(" ", m.group(0)).strip()
    return s if len(s) <= 80 else s[:77] + "..."


#: Prose *about* attacks (a talk, a paper, a red-team note, a probe's description) names
#: the same phrases as an attack. Where such a cue is present the instruction-like rules
#: count for less (x ``_DISCUSSED``): a single quoted "ignore previous instructions" in a
#: security note no longer flags alone, an attack with several rules still does.
_DISCUSSION = re.compile(
    r"\b(?:attackers?|adversar(?:y|ies|ial)|prompt[\s-]+injections?|(?:injection|jailbreak)"
    r"(?:s|ing)?\s+(?:attacks?|defen[cs]es?|research|techniques?|examples?|detection|risks?)|"
    r"red[\s-]+team\w*|(?:research|reading)\s+group|case\s+study|blog\s+post|(?:the|a|our|this|"
    r"my|his|her)\s+(?:paper|talk|slides?|thesis|article|workshop|lecture|course|probe|"
    r"benchmark)|owasp|security\s+review|threat\s+model|defen[cs]es?\s+against|"
    r"injection\s+de\s+prompts?|inyeccion\s+de\s+prompts?|injecao\s+de\s+prompts?)\b"
    r"|提示词注入|プロンプトインジェクション", re.I)
_DISCUSSED = 0.5
_DISCOUNTED = frozenset(("override", "exfiltration", "jailbreak", "poisoning"))
#: The learned head reads prose: a string of fewer words (a role name in metadata such as
#: "assistant", a tag, "see you tomorrow") gives its character n-grams too little to go on,
#: and it leaned positive there (an assistant turn's metadata was quarantined). The rules
#: still read every string.
HEAD_MIN_WORDS = 4
#: ``check`` remembers its verdicts on strings up to this long, at most this many.
_SHORT_CHARS = 128
_SHORT_ENTRIES = 4096
# the learned head reads the quoted attack phrases too: it is discounted the same way

#: Longer texts are searched only near the rules' trigger words (every rule's matches are
#: shorter than the window), which keeps a 10 KB jailbreak prompt in the milliseconds.
_WINDOW = 400


#: Every rule's trigger substrings, once: a view is tested against each trigger once,
#: not once per rule naming it (a rule runs if any of its triggers is present).
_TRIGGERS: tuple[str, ...] = tuple(sorted({t for *_, triggers in RULES for t in triggers}))


#: trigger -> positions in RULES of the rules it can start
_RULES_OF: dict[str, tuple[int, ...]] = {
    t: tuple(i for i, (*_, triggers) in enumerate(RULES) if t in triggers) for t in _TRIGGERS}


def _present(low: str) -> frozenset[str]:
    """The triggers of any rule that occur in ``low``: what decides which rules run.

    Computing this set once per view and testing each rule with ``isdisjoint`` is the
    same decision as ``any(t in low for t in triggers)`` per rule, at a fraction of the
    cost (one substring test per distinct trigger, no generator per rule): benign text,
    which is nearly every write, is where the guard spent its time."""
    return frozenset([t for t in _TRIGGERS if t in low])


def _search(pattern: re.Pattern[str], triggers: tuple[str, ...], view: str,
            low: str, present: frozenset[str] | None = None) -> re.Match[str] | None:
    if present is not None:
        if present.isdisjoint(triggers):
            return None
    elif not any(t in low for t in triggers):
        return None
    if len(view) <= 4 * _WINDOW or len(low) != len(view):
        return pattern.search(view)
    spans: list[list[int]] = []
    for start in sorted(i for t in triggers for i in _find_all(low, t)):
        lo, hi = max(0, start - _WINDOW), start + _WINDOW
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = hi
        else:
            spans.append([lo, hi])
    for lo, hi in spans:
        m = pattern.search(view, lo, hi)
        if m:
            return m
    return None


def _find_all(text: str, needle: str) -> Iterator[int]:
    i = text.find(needle)
    while i != -1:
        yield i
        i = text.find(needle, i + 1)


class InjectionGuard:
    """Flags text that addresses the agent rather than recording something about the world.

    ``check`` never raises on any string and returns a :class:`Verdict`; ``threshold`` is
    the score at which text is flagged (0.5: one strong rule, or two weak ones).
    ``languages`` limits the non-English rule tables that run (default: all of
    :data:`~.languages.LANGUAGES`); ``head`` is the learned scorer (default: the one
    bundled with the package; ``learned=False`` runs rules only).
    """

    id = "injection-guard/2"

    def __init__(self, *, threshold: float = 0.5, languages: Iterable[str] | None = None,
                 head: Head | None = None, learned: bool = True) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        langs = set(LANGUAGES) if languages is None else set(languages)
        unknown = langs - set(LANGUAGES)
        if unknown:
            raise ValueError(f"no rules for language(s) {sorted(unknown)}; "
                             f"known: {sorted(LANGUAGES)}")
        self.languages = frozenset(langs)
        self.head = head if head is not None else (bundled_head() if learned else None)
        self._short: dict[str, Verdict] = {}  # verdicts on short strings (see ``check``)
        self._short_for: tuple[Any, ...] = ()

    def _views(self, text: str) -> tuple[list[Reason], list[tuple[str, str, str]]]:
        visible, found, tag_payload = hidden(text)
        reasons = [Reason("hidden_unicode", *f) for f in found]
        spaced, mixed = fold(visible)
        if mixed:
            reasons.append(Reason("hidden_unicode", "homoglyph_mix", 0.35,
                                  "letters from another script inside Latin words"))
        folded = WS.sub(" ", spaced).strip()
        views: list[tuple[str, str]] = [("text", folded)]
        despaced = rewritten(spaced, SPACED, despace)
        if despaced:
            views.append(("despaced", despaced))
        leet = rewritten(folded, LEETISH, deleet)
        if leet:
            views.append(("leet", leet))
        if tag_payload.strip():
            views.append(("tags", WS.sub(" ", fold(tag_payload)[0])))
        for via, plain in decoded(visible):
            reasons.append(Reason("encoded", f"{via}_text", 0.5,
                                  f"{via} that decodes to text: {plain[:50]!r}", via))
            views.append((via, WS.sub(" ", fold(plain)[0])))
        return reasons, [(via, view, view.lower()) for via, view in views]

    def lowered_views(self, text: str) -> str:
        """Every normalised view of ``text``, lower-cased and joined: what the learned
        head reads (so the training script sees exactly what ``check`` scores)."""
        return " ".join(low for _, _, low in self._views(text)[1])

    def head_reads(self, text: str) -> bool:
        """Whether the learned head scores ``text`` (:data:`HEAD_MIN_WORDS`)."""
        return len(self._views(text)[1][0][1].split()) >= HEAD_MIN_WORDS

    def check(self, text: str) -> Verdict:
        """The verdict on ``text``; the same for the same text and settings.

        Short strings are remembered: a chat turn's metadata ("speaker", "Caroline",
        "role", "user") is screened with every turn, 6 of the 7 checks per LoCoMo turn."""
        if len(text) > _SHORT_CHARS:
            return self._check(text)
        settings = (self.threshold, self.languages, id(self.head))
        if settings != self._short_for:  # changed after construction: forget
            self._short, self._short_for = {}, settings
        verdict = self._short.get(text)
        if verdict is None:
            verdict = self._check(text)
            if len(self._short) >= _SHORT_ENTRIES:
                self._short = {}
            self._short[text] = verdict
        return verdict

    def _check(self, text: str) -> Verdict:
        reasons, lowered = self._views(text)
        folded = lowered[0][1]
        seen = {r.rule for r in reasons}
        present = [_present(low) for _, _, low in lowered]
        # only rules with a trigger in some view can match; RULES order is kept
        runs = sorted({i for found in present for t in found for i in _RULES_OF[t]})
        for family, rule, weight, pattern, triggers in (RULES[i] for i in runs):
            if rule in seen:
                continue
            for (via, view, low), found in zip(lowered, present):
                m = _search(pattern, triggers, view, low, found)
                if m:
                    reasons.append(Reason(family, rule, weight, _snippet(view, m), via))
                    seen.add(rule)
                    break
        for via, view, low in lowered:
            for lang in languages_in(low):
                if lang not in self.languages:
                    continue
                for family, rule, weight, pattern in LANG_RULES[lang]:
                    if rule not in seen:
                        m = pattern.search(view)
                        if m:
                            reasons.append(Reason(family, rule, weight, _snippet(view, m), via))
                            seen.add(rule)
        cue = _DISCUSSION.search(folded)
        if cue:
            reasons = [dataclasses.replace(r, weight=round(r.weight * _DISCUSSED, 4))
                       if r.family in _DISCOUNTED else r for r in reasons]
            reasons.append(Reason("context", "discussion", 0.0,
                                  f"talks about attacks ({_snippet(folded, cue)}): rules count less"))
        if self.head is not None and len(folded.split()) >= HEAD_MIN_WORDS:
            p = self.head.prob_of(self.head.features(" ".join(low for _, _, low in lowered),
                                                     [r.rule for r in reasons]))
            weight = round(self.head.weight(p) * (_DISCUSSED if cue else 1.0), 4)
            if weight > 0:
                reasons.append(Reason("learned", "head", weight, f"learned head p={p:.2f}"))
        score = 1.0
        for r in reasons:
            score *= 1.0 - r.weight
        score = 1.0 - score
        return Verdict(score >= self.threshold, score, tuple(reasons))
