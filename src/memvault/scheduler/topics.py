"""What a conversation is about: content phrases for topic summaries, and the filler test.

A topic used to be any capitalised token that recurred across sessions, so on LoCoMo the
topics were "we've", "since", "got", "glad" (capitalised after an emoji or a dash) and the
speakers' own names, which every session mentions. A topic here is a *content phrase*:

* a name that is not a speaker of the conversation ("Lisbon", "Pixel", "Silverleaf");
* a noun phrase, found without a tagger by where nouns stand in English: after a
  determiner or a possessive ("my *pottery class*", "the *adoption agency*", "a *charity
  race*"), cut at the first function word, so chatter verbs ("sounds", "got") never start
  one.

Phrases are keyed by their head noun (the last word, plural folded), so "pottery class"
and "pottery classes" are one topic, titled by the surface form people used most; the
modifier of a two-word phrase is a key too, so "pottery class" and "pottery teacher" in
two sessions make the topic "pottery".
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

from ..retrieval.text import STOPWORDS
from .entities import entities

__all__ = ["FILLER", "is_filler_title", "key_phrases", "title_words", "participants"]

#: Words that say nothing about a topic: interjections, pronouns, chatter, and nouns so
#: general that every conversation has them.
INTERJECTIONS = frozenset("""
oh ok okay hey hi hello thanks thank yes yeah yep no nope wow sure great nice good cool
awesome amazing lol haha hmm um uh ah aw aww omg wait well right alright bye cheers
congrats congratulations sorry please indeed glad true totally absolutely definitely
""".split())
PRONOUNS = frozenset("""
i me my mine myself we us our ours you your yours he him his she her hers it its they them
their theirs this that these those who whom what which one ones someone something anything
everything nothing somebody anybody everybody everyone anyone i'm i've i'll i'd we're
we've we'll you're you've they're it's that's there's what's let's
""".split())
CHATTER = frozenset("""
got get gets getting go goes going went gone say says said saying sounds sound seems seem
feel feels felt think thinks thought know knows knew mean means see sees saw look looks
looking love loved like liked really also since still just even though although maybe
lot lots bit kind sort way thing things stuff time times day days week weeks year years
moment moments today tomorrow yesterday tonight morning evening night recently lately
idea ideas part place people guy guys friend friends life world news update chat talk
much many more most very pretty quite so too always never sometimes often ever new old
last next first other another same different own whole little big
best worst better worse near around across behind inside outside ago hour hours minute
minutes month months can't won't don't didn't isn't wasn't couldn't wouldn't shouldn't
monday tuesday wednesday thursday friday saturday sunday weekend
""".split())
FILLER = STOPWORDS | INTERJECTIONS | PRONOUNS | CHATTER

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")
_DETERMINER = re.compile(
    r"\b(?:the|a|an|my|your|our|his|her|their|this|that|these|those|some|any|every|"
    r"each|new|first|\w+'s)\s+((?:[A-Za-z][\w'’-]*\s+){0,2}[A-Za-z][\w'’-]*)", re.IGNORECASE)


_ADDRESSED = re.compile(r"\b(?:hi|hey|hello|hiya|thanks|thank you|bye|congrats|dear|morning|"
                        r"night|sorry|miss you|love you|see you|cheers),?\s+([A-Z][a-z]+)\b"
                        r"|^([A-Z][a-z]+)\s+here\b", re.IGNORECASE)


def participants(texts: Iterable[str]) -> set[str]:
    """Names the speakers go by, read from how they talk: the name a greeting addresses
    ("Hi Felix", "Thanks, Mel"), a sign-in ("Nikolai here"), a self-introduction ("I'm
    Maya"). A chat handle ("+44 7700 900249") is not what people call each other."""
    from ..temporal.statements import self_name

    out: set[str] = set()
    for text in texts:
        for m in _ADDRESSED.finditer(text):
            name = m.group(1) or m.group(2)
            if name[0].isupper() and name.lower() not in FILLER:
                out.add(name.lower())
        intro = self_name(text)
        if intro:
            out.add(intro)
    return out


def title_words(title: str) -> list[str]:
    """The words of a title after its "About " / "Session ..." frame, lower-cased."""
    body = re.sub(r"^\s*about\s+", "", title, flags=re.IGNORECASE)
    return [w.lower().replace("’", "'") for w in _WORD.findall(body)]


def is_filler_title(title: str, speakers: Iterable[str] = ()) -> bool:
    """True when a title names no content: every word is a stop word, an interjection, a
    pronoun, chatter, or a speaker's name (or it has no word at all)."""
    names = {w.lower() for s in speakers for w in _WORD.findall(s)}
    words = title_words(title)
    return not [w for w in words if w not in FILLER and not _named(w, names) and len(w) > 2]


def _fold(word: str) -> str:
    """A cheap singular: "classes" -> "class", "dogs" -> "dog" ("glass", "bus" stay)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


#: Common verbs (base forms): a noun phrase ends where one follows ("my sister makes").
VERBS = frozenset("""
make take give keep want need try come leave start stop finish bring buy sell find
lose move live stay meet hope wish enjoy miss remember forget learn teach grow build eat
sleep open close tell ask agree happen inspire encourage share mean matter cost seem
become begin love like
""".split())


def _verb(word: str) -> bool:
    w = word.lower()
    return (w.endswith("ed") or w in VERBS or (w.endswith("s") and w[:-1] in VERBS)
            or (w.endswith("es") and w[:-2] in VERBS))


def _named(word: str, names: set[str]) -> bool:
    """A speaker's name or a short form of it ("Mel" for Melanie)."""
    return word in names or (len(word) >= 3 and any(n.startswith(word) for n in names))


def _content(word: str, names: set[str]) -> bool:
    w = word.lower().replace("’", "'")
    return len(w) > 2 and w not in FILLER and not _named(w, names) \
        and not w.endswith("'s") and not w.endswith("ly")


def key_phrases(text: str, speakers: Iterable[str] = ()) -> dict[str, str]:
    """Topic candidates of ``text``: head-noun key -> the phrase as written.

    Speakers' names are never candidates on their own (every turn of theirs names them);
    a phrase may still contain one ("Caroline's art show" is keyed on "show")."""
    names = {w.lower() for s in speakers for w in _WORD.findall(s)}
    out: dict[str, str] = {}
    for m in _DETERMINER.finditer(text):
        words = m.group(1).split()
        phrase: list[str] = []
        for w in words:
            bare = w.strip(".,!?;:\"()")
            if not bare.isalpha() or not _content(bare, names) or (
                    phrase and (_verb(bare) or bare.lower().endswith("ing"))):
                break
            phrase.append(bare)
            if bare != w:  # punctuation ends the phrase ("my dog.")
                break
        if not phrase or (len(phrase) == 1 and _verb(phrase[0])):
            continue
        phrase = phrase[-2:]
        out.setdefault(_fold(phrase[-1].lower()), " ".join(p.lower() for p in phrase))
        if len(phrase) == 2 and not _verb(phrase[0]):  # "pottery class", "pottery teacher"
            out.setdefault(_fold(phrase[0].lower()), phrase[0].lower())
    for ent in entities(text, strict=True):
        if ent[0].isdigit() or not _content(ent, names):
            continue
        surface = re.search(r"\b" + re.escape(ent) + r"\b", text, re.IGNORECASE)
        out[_fold(ent)] = surface.group(0) if surface else ent
    return out


def surface_counts(texts: Iterable[str], speakers: Iterable[str] = ()
                   ) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """How often each topic key occurs in ``texts`` and the surface forms it took."""
    names = list(speakers)
    counts: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for text in texts:
        for k, phrase in key_phrases(text, names).items():
            counts[k] += 1
            forms.setdefault(k, Counter())[phrase] += 1
    return counts, forms
