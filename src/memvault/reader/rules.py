"""Rule-based reading: what memvault does when there is no LLM, or the LLM talks nonsense.

The rules are modest on purpose. Extraction keeps first-person statements ("I moved to
Porto yesterday"), rewrites them in the third person with the speaker's name ("Maya
moved to Porto"; present-tense verbs are conjugated: "I live" -> "Maya lives"), and
turns relative dates into absolute ones from the turn's timestamp. The decision side
recognises a few single-valued "slots" (where someone lives, their job, their age, a
favourite X, relationship status) so that a new value supersedes the old one, and
negations ("no longer", "anymore") that retire a memory. Anything else is added.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Mapping

from .facts import MAX_FACT_CHARS, Fact, normalize

__all__ = ["extract_rules", "rewrite_first_person", "resolve_dates", "slots", "subject",
           "is_negation", "kind_of", "statement_facts", "is_junk"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FIRST_PERSON = re.compile(r"^(i|i'm|i’m|i've|i’ve|i'd|i’d|i'll|i’ll|my)\b", re.IGNORECASE)
_FILLER = re.compile(r"^(i (think|guess|know|see|mean|agree|hope so|am not sure)|"
                     r"i'm (fine|good|ok|okay|sure|glad|sorry)|i’m (fine|good|sure))\b\W*$",
                     re.IGNORECASE)
_CONTRACTIONS = [(r"\bI['’]m\b", "I am"), (r"\bI['’]ve\b", "I have"), (r"\bI['’]d\b", "I would"),
                 (r"\bI['’]ll\b", "I will"), (r"\bdon['’]t\b", "do not"),
                 (r"\bcan['’]t\b", "cannot"), (r"\bdidn['’]t\b", "did not")]
_FIXED = {"am": "is", "have": "has", "do": "does", "go": "goes", "was": "was",
          "would": "would", "will": "will", "did": "did", "had": "had", "can": "can",
          "cannot": "cannot", "could": "could", "should": "should", "might": "might",
          "must": "must", "may": "may", "used": "used"}
_PAST = set("""went were got made saw met took came left bought found gave told thought felt
became began kept ran wrote ate drove flew sold won lost spent heard knew paid sent built
taught caught brought fell grew slept sat stood swam wore broke chose forgot quit hit put
set cut lived""".split())
_ADVERBS = {"really", "also", "still", "just", "now", "actually", "usually", "always",
            "never", "often", "finally", "recently", "currently", "definitely", "totally",
            "no", "longer", "sometimes", "mostly", "only", "even", "already", "absolutely"}


def _third_person(verb: str) -> str:
    low = verb.lower()
    if low in _FIXED:
        return _FIXED[low]
    if not low.isalpha() or low.endswith("ed") or low in _PAST:
        return verb  # past tense or not a word: leave as is
    if re.search(r"(s|sh|ch|x|z|o)$", low):
        return verb + "es"
    if re.search(r"[^aeiou]y$", low):
        return verb[:-1] + "ies"
    return verb + "s"


def rewrite_first_person(sentence: str, name: str) -> str:
    """'I really love my cat' -> 'Maya really loves Maya's cat'."""
    for pattern, repl in _CONTRACTIONS:
        sentence = re.sub(pattern, repl, sentence, flags=re.IGNORECASE)
    words = sentence.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        bare = word.strip(",;:")
        if bare in ("I", "i"):
            out.append(name + word[len(bare):])
            j = i + 1
            while j < len(words) and words[j].lower() in _ADVERBS:
                out.append(words[j])
                j += 1
            if j < len(words):
                out.append(_third_person(words[j]))
            i = j + 1
            continue
        low = bare.lower()
        if low in ("my", "mine"):
            out.append(f"{name}'s" + word[len(bare):])
        elif low in ("me", "myself"):
            out.append(name + word[len(bare):])
        else:
            out.append(word)
        i += 1
    return " ".join(out)


# -- dates ----------------------------------------------------------------------------
_REL = re.compile(r"\b(yesterday|today|tonight|tomorrow|last (week|month|year)|"
                  r"next (week|month|year)|this (week|month|year)|(\d+|a|two|three) "
                  r"(days?|weeks?) ago)\b", re.IGNORECASE)
_NUM = {"a": 1, "two": 2, "three": 3}


def resolve_dates(text: str, when: datetime | None) -> tuple[str, datetime | None]:
    """Replace relative dates with absolute ones; also return the date the text refers to."""
    if when is None:
        return text, None
    found: list[datetime] = []

    def repl(m: re.Match[str]) -> str:
        phrase = m.group(0).lower()
        if phrase in ("today", "tonight"):
            day = when
        elif phrase == "yesterday":
            day = when - timedelta(days=1)
        elif phrase == "tomorrow":
            day = when + timedelta(days=1)
        elif phrase.endswith("ago"):
            n_raw, unit = phrase.split()[:2]
            n = int(n_raw) if n_raw.isdigit() else _NUM[n_raw]
            day = when - timedelta(days=n * (7 if unit.startswith("week") else 1))
        else:
            rel, unit = phrase.split()
            shift = {"last": -1, "next": 1, "this": 0}[rel]
            if unit == "week":
                day = when + timedelta(weeks=shift)
                found.append(day)
                return f"in the week of {day:%Y-%m-%d}"
            if unit == "month":
                month = when.month - 1 + shift
                day = when.replace(year=when.year + month // 12, month=month % 12 + 1, day=1)
                found.append(day)
                return f"in {day:%B %Y}"
            day = when.replace(year=when.year + shift, month=1, day=1)
            found.append(day)
            return f"in {day:%Y}"
        found.append(day)
        return f"on {day:%Y-%m-%d}"

    return _REL.sub(repl, text), (found[0] if found else None)


# -- kinds ------------------------------------------------------------------------------
_PREFERENCE = re.compile(r"\b(likes?|loves?|prefers?|enjoys?|hates?|dislikes?|"
                         r"favou?rite|cannot stand|is into|is a fan of)\b", re.IGNORECASE)
_PROFILE = re.compile(r"\b(name is|years old|lives?|living|works? (as|at|for)|job|born|"
                      r"allergic|vegetarian|vegan|married|engaged|single|divorced|"
                      r"is an? [a-z]+(ist|er|or|ian|ant)\b)", re.IGNORECASE)
_EVENT = re.compile(r"\b(on \d{4}-\d\d-\d\d|in the week of|went|moved|visited|bought|met|"
                    r"started|finished|got|travel(l)?ed|adopted|graduated|\w+ed)\b",
                    re.IGNORECASE)


def kind_of(text: str) -> str:
    if _PREFERENCE.search(text):
        return "preference"
    if _PROFILE.search(text):
        return "profile"
    if _EVENT.search(text):
        return "event"
    return "fact"


# -- extraction -----------------------------------------------------------------------
def speaker_name(turn: Mapping[str, Any]) -> str | None:
    """The person a turn speaks for: its speaker name, or "User" for a user turn."""
    name = turn.get("speaker")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return "User" if turn.get("role", "user") == "user" else None


def extract_rules(turns: list[Mapping[str, Any]]) -> list[Fact]:
    """Facts from ``turns`` (``{"id", "text", "speaker", "role", "event_time"}``).

    Each clause of a turn is read on its own, wherever it stands ("Big news: I moved to
    Porto", "Tom and I broke up; my new partner is Sam" is two facts). A clause that
    changes a state becomes one canonical fact ("Maya lives in Porto."); another
    first-person clause is kept in the third person, unless it says nothing without its
    context ("I love it.")."""
    from ..temporal.statements import clauses

    facts: list[Fact] = []
    for turn in turns:
        name = speaker_name(turn)
        if name is None:  # assistant/system turns say nothing about the user
            continue
        said = turn.get("event_time")
        sources = (turn["id"],) if turn.get("id") else ()
        for clause in clauses(str(turn.get("text", ""))):
            stated = statement_facts(clause, name, said)
            for text, when in stated:
                # when it was said, beside the date it states ("in October"): which of two
                # words on one attribute is the later one depends on both
                extra = {"said": said.isoformat()} if isinstance(said, datetime) \
                    and when != said else {}
                facts.append(Fact(text=text[:MAX_FACT_CHARS], kind=kind_of(text),
                                  event_time=when, speaker=name, source_ids=sources,
                                  extractor="rules", extra=extra))
            sentence = clause.strip()
            if (stated or not _FIRST_PERSON.match(sentence) or sentence.endswith("?")
                    or _FILLER.match(sentence) or len(sentence.split()) < 3
                    or is_junk(sentence)):
                continue
            text, when = resolve_dates(rewrite_first_person(sentence.rstrip("!."), name), said)
            text = text[:MAX_FACT_CHARS].rstrip() + "."
            # valid time: the date the sentence states, else when it was said
            facts.append(Fact(text=text, kind=kind_of(text), event_time=when or said,
                              speaker=name, source_ids=sources, extractor="rules"))
    return facts


# -- decision features ------------------------------------------------------------------
_SLOTS = [
    ("home", re.compile(r"\b(lives?|living|lived|moved|moves|relocated|relocates|resides?)"
                        r"( back)? (in|to)\b", re.IGNORECASE)),
    ("job", re.compile(r"\b(works?|working|worked) (as|at|for)\b|\bjob\b|\bemployed\b",
                       re.IGNORECASE)),
    ("age", re.compile(r"\b\d+ years? old\b", re.IGNORECASE)),
    ("name", re.compile(r"\bname is\b", re.IGNORECASE)),
    ("relationship", re.compile(r"\b(married|engaged|dating|single|divorced|partner)\b",
                                re.IGNORECASE)),
]
_FAVOURITE = re.compile(r"\bfavou?rite (\w+)", re.IGNORECASE)
_NEGATION = re.compile(r"\b(no longer|not any ?more|anymore|any more|stopped|quit|gave up|"
                       r"got rid of|does not have|doesn't have|is not|isn't)\b", re.IGNORECASE)


#: Not (yet) a state: "Maya might apply to Pinecrest Labs, their job ad looked good" is
#: kept as a fact, but takes no slot (it must not replace where she works).
_TENTATIVE = re.compile(r"\b(?:might|(?-i:may)|could|would|thinking (?:about|of)|considering|"
                        r"planning|plans? to|wants? to|wanted to|hopes? to|hoping|"
                        r"apply(?:ing)? (?:to|for)|applied (?:to|for)|interview\w*|dream\w*|"
                        r"someday|one day|if)\b", re.IGNORECASE)


def slots(text: str) -> set[str]:
    """Single-valued attributes the text states (a new value replaces the old one)."""
    if _TENTATIVE.search(text):
        return set()
    found = {name for name, pattern in _SLOTS if pattern.search(text)}
    found |= {"favourite:" + m.group(1).lower() for m in _FAVOURITE.finditer(text)}
    return found


def subject(text: str) -> str:
    """The fact's subject: its first word, normalised (facts start with the name)."""
    words = normalize(text).split()
    return words[0] if words else ""


def is_negation(text: str) -> bool:
    return bool(_NEGATION.search(text))


def content_words(text: str) -> set[str]:
    """Words that carry meaning, for telling a negation's target apart from other facts."""
    stop = {"no", "longer", "not", "anymore", "any", "more", "does", "do", "is", "isn",
            "doesn", "t", "have", "has", "stopped", "quit", "gave", "up", "got", "rid", "of"}
    return {w for w in normalize(text).split() if w not in stop and len(w) > 2}


# -- statements as facts ------------------------------------------------------------------
_CANON = {  # (attribute, holds) -> how a fact states it; {s} the person, {v} the value
    ("home", True): "{s} lives in {v}.", ("home", False): "{s} no longer lives in {v}.",
    ("employer", True): "{s} works at {v}.", ("employer", False): "{s} no longer works at {v}.",
    ("job", True): "{s} works as {a} {v}.", ("partner", True): "{s}'s partner is {v}.",
    ("partner", False): "{s} broke up with {v}.", ("pet", True): "{s} has a pet named {v}.",
    ("pet", False): "{s}'s pet {v} is gone.", ("car", True): "{s} drives {a} {v}.",
    ("car", False): "{s} sold their {v}.", ("hobby", True): "{s} took up {v}.",
    ("hobby", False): "{s} stopped {v}.", ("diet", True): "{s} is {v}.",
    ("diet", False): "{s} is no longer {v}.", ("health", True): "{s} has a health issue: {v}.",
}
_ANIMAL = re.compile(r"\b(?:dog|puppy|cat|kitten|rabbit|bunny|parrot|hamster|turtle|horse|bird|"
                     r"fish|lizard|snake)\b", re.IGNORECASE)
_ENDED = {"employer": "{s} left their job.", "partner": "{s} is single."}
_PRONOUNS = frozenset("""it its them they this that these those him her he she you your us we
me my i one ones something anything everything nothing so too very really much lot lots
""".split())
_STOP = frozenset("""a an the and or but to of in on at for with is am are was were be been
has have had do does did not no yes just also still now then there here what which who
""".split())


def _original(value: str, text: str) -> str:
    """``value`` (lower-cased by the statement reader) as the turn wrote it."""
    m = re.search(re.escape(value), text, re.IGNORECASE)
    return m.group(0) if m else value


def statement_facts(text: str, name: str, when: datetime | None) -> list[tuple[str, Any]]:
    """One canonical fact per state statement in ``text``: "Maya lives in Porto.",
    "Maya no longer works at Deloitte." (with the date the change held, if stated)."""
    from ..temporal.statements import statements

    out = []
    for s in statements(text, said=when, names=None):
        if s.subject:  # about someone else, by name: their fact, not the speaker's
            who = s.subject.title()
        else:
            who = name
        if s.value is None:
            template = _ENDED.get(s.attribute)
            if template is None:
                continue
            fact = template.format(s=who)
        else:
            value = _original(s.value, text)
            article = "an" if value[:1].lower() in "aeiou" else "a"
            fact = _CANON[(s.attribute, s.holds)].format(s=who, v=value, a=article)
            animal = _ANIMAL.search(text) if s.attribute == "pet" else None
            if animal:  # "Maya has a dog named Rex.", not "a pet"
                fact = fact.replace(" pet ", f" {animal.group(0).lower()} ")
        out.append((fact, s.when or when))
    return out


def is_junk(sentence: str) -> bool:
    """A first-person sentence that says nothing on its own: "I love it.", "I did that!"
    (its words past the subject and verb are pronouns or function words)."""
    words = [w.strip(".,!?;:'\"").lower() for w in sentence.split()]
    words = [w for w in words if w]
    body = words[2:] if words and words[0] in ("i", "i'm", "i've", "my", "we") else words[1:]
    return not [w for w in body if w not in _PRONOUNS and w not in _STOP and
                w not in _ADVERBS and len(w) > 1]
