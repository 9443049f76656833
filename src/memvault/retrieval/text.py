"""Text helpers for retrieval: lexical terms (stop words dropped: they cost BM25 time and
add noise), sentences, a question put in the voice of the speaker it names, what a
speaker said put in the third person, and whether a question asks for named things and a
text names any."""

from __future__ import annotations

import re
from collections.abc import Container, Iterable

_WORD = re.compile(r"\w+", re.UNICODE)
# a sentence ends at . ! ? followed by space; a bracketed aside ("[shares a photo of ...]")
# is one of its own
_SENTENCE = re.compile(r"(?<=[.!?\]])\s+|\s+(?=\[)")

STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can could did do does doing don't down during each few for
from further had has have having he her here hers herself him himself his how i if in into
is it its itself just let me more most my myself no nor not now of off on once only or other
our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
s t d ll m re ve y
""".split())


def terms(query: str, *, max_terms: int = 32) -> list[str]:
    """Distinct lowercase word tokens, stop words removed (all kept if nothing else is left)."""
    words = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))[:max_terms]


def sentences(text: str) -> list[str]:
    """The text cut into sentences (pieces under 3 characters dropped; never empty)."""
    parts = [p.strip() for p in _SENTENCE.split(text)]
    return [p for p in parts if len(p) >= 3] or [text]


def named_in(text: str, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that ``text`` mentions as whole words, any case (stripped)."""
    lowered = text.lower()  # the substring test first: a vault may hold many names
    return [n for n in dict.fromkeys(n.strip() for n in names if n and n.strip())
            if n.lower() in lowered
            and re.search(r"\b" + re.escape(n.lower()) + r"\b", lowered)]


def in_voice(query: str, names: Iterable[str]) -> str | None:
    """The query as the person it names would say it, or None if it names none of ``names``.

    "What did Caroline paint?" -> "What did I paint?", "Where is Jon's studio?" -> "Where is
    my studio?". Memories of a conversation are what each speaker said, in the first person,
    while questions about a speaker are in the third: the embedder matches "I painted a
    sunset" to the first form far better. Only the names are replaced, so the grammar is
    off ("What has I bought?"); the embedder does not mind, and rewriting verbs would need a
    parser."""
    wanted = sorted(named_in(query, names), key=len, reverse=True)
    if not wanted:
        return None
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in wanted) + r")(['\u2019]s\b)?\b",
                         re.IGNORECASE)
    voiced, count = pattern.subn(lambda m: "my" if m.group(2) else "I", query)
    return voiced if count else None


# first-person forms and what they become in the third person, "{}" the speaker's name;
# contractions before the bare pronoun, so "I'm" does not become "Name'm"
_FIRST = [(re.compile(p, flags), r) for p, flags, r in (
    (r"\bI['\u2019]m\b", re.I, "{} is"), (r"\bI['\u2019]ve\b", re.I, "{} has"),
    (r"\bI['\u2019]d\b", re.I, "{} would"), (r"\bI['\u2019]ll\b", re.I, "{} will"),
    (r"\b(?:my|mine)\b", re.I, "{}'s"), (r"\b(?:myself|me)\b", re.I, "{}"),
    (r"\bI\b", 0, "{}"))]


def in_third(text: str, name: str) -> str:
    """What ``name`` said, with the first person replaced by the name.

    "I painted my lake sunrise" -> "Caroline painted Caroline's lake sunrise". The document
    side of ``in_voice``: the question "What has Caroline painted?" names her, the turn
    says "I"; indexing both forms lets either form of a question find it. Verbs are left
    as they are ("Caroline am"), as in ``in_voice``. A bare lower-case "i" is left alone:
    it is too often something else. ``reader.rules.rewrite_first_person`` conjugates the
    verbs too, for facts a person reads; indexing its form instead found no more on
    LoCoMo (a side run over the dev split), so the index keeps this cheap one."""
    name = name.strip()
    for pattern, form in _FIRST:
        said = form.format(name)
        text = pattern.sub(lambda _: said, text)
    return text


#: Kinds of thing people know by name. A question asking for them ("Which books has Tim
#: read?", "What are the names of Audrey's dogs?") wants the memories that name something.
_NAMED_KINDS = re.compile(
    r"\b(?:names?|cit(?:y|ies)|countr(?:y|ies)|places|states|locations?|destinations?"
    r"|books?|novels?|authors?|movies?|films?|shows?|series|characters?|songs?|albums?"
    r"|bands?|artists?|musicians?|singers?|games?|players?|teams?|brands?|compan(?:y|ies)"
    r"|sponsors?|restaurants?|titles?|people)\b", re.IGNORECASE)
_ASKS = re.compile(r"^\s*(?:what|which|who)\b", re.IGNORECASE)
# capitalised mid-sentence, yet not a name of anything a question would ask for
_NOT_NAMES = frozenset("""
monday tuesday wednesday thursday friday saturday sunday january february march april may
june july august september october november december mom dad thanks hey hi wow yeah yes no
oh ok okay sure
""".split())
_ASIDE = re.compile(r"\[[^\]]*\]")
_QUOTED_TITLE = re.compile(r"[\"\u201c'\u2018][^\W\d_]")


def asks_for_names(query: str) -> bool:
    """Whether ``query`` is a what/which/who question about a kind of thing that has names
    (books, films, cities, bands, people, ...)."""
    return bool(_ASKS.search(query) and _NAMED_KINDS.search(query))


def names_something(text: str, known: Container[str] = frozenset()) -> bool:
    """Whether ``text`` names something: a quoted title, or a capitalised word inside a
    sentence ("we went to Chicago"), other than the lower-case words in ``known`` (the
    speakers' names: see ``name_words``).

    Stricter than the linker's ``scheduler.entities``, which also takes a sentence's first
    word when it is not a common one: that is right for telling whether two memories share
    a name, but nearly every chat turn would then "name something" ("Congrats", "Awesome").
    Bracketed asides ("[shares a photo of ...]") are not what the speaker named."""
    for sentence in sentences(_ASIDE.sub(" ", text)):
        for m in _QUOTED_TITLE.finditer(sentence):
            if sentence[m.end() - 1].isupper():
                return True
        for word in _WORD.findall(sentence)[1:]:
            # "McGee" is a name, "LGBTQ" an acronym for a kind of thing
            if len(word) > 1 and word[0].isupper() and word[1].islower():
                low = word.lower()
                if low not in known and low not in _NOT_NAMES:
                    return True
    return False


def name_words(names: Iterable[str]) -> frozenset[str]:
    """The lower-case words of ``names`` ("Mary Ann" -> {"mary", "ann"}), for
    ``names_something``'s ``known``: built once per search, not once per memory."""
    return frozenset(w for n in names if n for w in _WORD.findall(n.lower()))
