"""State statements in chat text: who, which attribute, which value, held or ended.

A memory system must know what is true *now* without an LLM on the read path, so the
write path reads, from every memory's text, the statements that change a person's state:
"Big news: I moved to Porto", "Also I quit Deloitte", "Tom and I broke up; my new partner
is Sam", "Maya works at Siemens now", "actually it's Braga, not Porto". Each becomes a
:class:`Statement` (subject, attribute, value, held or ended, the date it states), and a
later statement about the same subject and single-valued attribute closes the valid time
of the earlier one (:mod:`.supersede`).

Rules, not a model: clauses are found anywhere in a turn, in the first or third person;
questions, hypotheticals and plans ("if I moved to Berlin", "we might move", "are you
moving?") and other people's changes ("my sister moved to Rome") are not statements about
the speaker. English only; the patterns are per attribute, so another language adds its
own table (``PATTERNS``) without touching the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from datetime import datetime, timedelta
from typing import Iterable, Iterator

__all__ = ["Statement", "statements", "clauses", "SINGLE", "self_name", "addressed", "key",
           "capitalises_nothing"]

#: Attributes with one value at a time: a new value ends the old one.
SINGLE = frozenset({"home", "employer", "job", "partner", "car", "diet", "phone"})
_MULTI = frozenset({"pet", "hobby", "health"})


@dataclass(frozen=True, slots=True)
class Statement:
    """``subject`` is ``""`` for the speaker, else a lower-cased name; ``value`` is
    lower-cased (None: the attribute ended without a new value, "I quit my job")."""

    subject: str
    attribute: str
    value: str | None
    holds: bool = True
    correction: bool = False
    when: datetime | None = None

    @property
    def single(self) -> bool:
        return self.attribute in SINGLE


def key(subject: str, attribute: str) -> str:
    """The index key of a (resolved) subject's attribute: ``"maya|home"``."""
    return f"{subject.lower()}|{attribute}"


# -- clauses ---------------------------------------------------------------------------
_SPLIT = re.compile(r"(?<=[.!?;])\s+|\s*;\s*|\s+(?:but|though|whereas)\s+|,\s*(?:and|so|also)\s+"
                    r"|\s+and\s+(?=(?:i|i'm|i've|my|we)\b)(?!i\s+(?:broke|split|separated|divorced|called|"
                    r"are|were|have|got|just))|\s+-+\s+|\n+", re.IGNORECASE)
# "I got a job at Google and moved to Zurich": the second verb keeps the first's subject
_VERB_SPLIT = re.compile(r"\s+(?:and|then|and then|,)\s+(?=(?:just\s+|then\s+|also\s+)?"
                         r"(?:moved|relocated|started|joined|quit|left|got|bought|adopted|"
                         r"married|became|took up|switched|sold)\b)", re.IGNORECASE)
_LEAD = re.compile(r"^(?:(?:oh|ok|okay|so|well|also|and|anyway|btw|by the way|plus|guess what"
                   r"|big news|news|(?:quick |small |little |life |big )*update(?: from (?:my end|me|here))?|fun fact|lol|haha|omg|yeah|yes|no(?!\s+(?:longer|more)\b)|hey"
                   r"|hi|hello|honestly|basically|finally|good news|great news|sad news)"
                   r"[\s,:!.-]+)+", re.IGNORECASE)
_CORRECTION = re.compile(r"^(?:correction|sorry,? i meant|sorry,? i mean|oops,? i meant|i meant|"
                         r"i mean|to be clear|let me correct that)\b[\s,:-]*", re.IGNORECASE)
_LOOSE = re.compile(r"^(?:actually|wait|sorry|oops)\b[\s,:-]*", re.IGNORECASE)
# "Actually I live in Braga, not Porto": the earlier value is denied, not replaced
_DENIED = re.compile(r"(?:,\s*|\s)not\s+(?:in\s+|at\s+)?[A-Z]\w+")
_HYPOTHETICAL = re.compile(
    r"\b(?:if|would|could|might|maybe|perhaps|someday|one day|thinking (?:about|of)|"
    r"considering|plan(?:ning)? to|going to|gonna|want(?:ing)? to|wanna|hope to|hoping to|"
    r"wish|dream(?:ing)? (?:of|about)|imagine|what if|should i|whether|unless|"
    r"about to|might be|may be|in case(?! you (?:were )?wonder)|pretend|suppose|supposing)\b", re.IGNORECASE)
_QUESTION = re.compile(r"^(?:are|is|do|does|did|have|has|will|would|could|can|should|where|"
                       r"what|when|who|why|how|which)\b", re.IGNORECASE)
RELATIONS = (r"(?:sister|brother|mom|mum|mother|dad|father|friend|cousin|aunt|uncle|boss|"
             r"colleague|coworker|neighbou?r|son|daughter|kid|kids|parents|roommate|grandma|"
             r"grandpa|niece|nephew|flatmate|housemate)")
_OTHER = re.compile(r"^(?:my|our|his|her|their|[^\s']+(?:\s[^\s']+){0,3}'s)\s+(?:\w+\s+)?"
                    + RELATIONS + r"\b", re.IGNORECASE)

_NAME = (r"(?P<v>[A-Z][\w'&.-]*(?:\s+(?:[A-Z][\w'&.-]*|(?:of|de|da|do|du|la|le|van|von|&)\b"
         r"(?=\s+[A-Z]))){0,4})")
_THING = r"(?P<v>[\w'&. -]{2,40}?)"
_END = (r"(?=\s*(?:$|[,.;!?]|\s(?:now|today|again|too|as well|since|last|this|in|on|at|for|"
        r"with|because|after|before|and|which|where|who|but|so|lol|haha)\b))")
_VEHICLE = (r"(?P<v>[A-Z][\w-]*(?:\s+[A-Z0-9][\w-]*){0,3}|(?:\w+\s+)?(?:car|truck|motorbike|motorcycle|"
            r"bike|scooter|van|suv|ev|hatchback|sedan|convertible))")
_ANIMAL = r"(?:dog|puppy|cat|kitten|rabbit|bunny|parrot|hamster|turtle|horse|bird|fish|lizard|snake)"
#: Words that do not name a hobby's object ("started looking into", "started playing five ...")
_FUNCTION = (r"(?:about|into|to|for|with|more|some|out|here|there|at|on|in|by|up|a|an|the|my|"
             r"our|it|this|that|again|now|one|two|three|four|five|six|ten|so|and|but|as|"
             r"when|because|after|before|since|every|all|lots?|again|people|things)\b")
_I = r"\b(?:i|we)(?:'ve| have|'ve been| have been)?\s+(?:just\s+|finally\s+|recently\s+|officially\s+|now\s+)?"

# (attribute, holds, verb part (case-insensitive), value part (case-sensitive: names are
# capitalised) or None when the verb part carries its own value group)
_TABLE: list[tuple[str, bool, str, str | None]] = [
    ("home", True, _I + r"(?:moved|relocated|moving back|moved back|settled)\s+(?:back\s+)?"
                   r"(?:to|in|into)\s+(?:the city of\s+)?", _NAME),
    ("home", True, r"\b(?:i|we)(?:'m| am| are|'re|'ve been| have been)?\s+(?:now\s+|currently\s+|"
                   r"still\s+)?(?:live|living|based|residing|reside|settled)\s+(?:now\s+)?in\s+", _NAME),
    ("home", True, r"\bmy\s+(?:new\s+)?(?:home|place|apartment|flat|house|address)\s+(?:is\s+)?"
                   r"(?:now\s+)?in\s+", _NAME),
    ("home", False, r"\bi\s+(?:no longer|don't|do not)\s+live\s+in\s+", _NAME),
    ("home", False, r"\b(?:i|we)\s+(?:moved|moved away|left)\s+(?:away\s+)?from\s+", _NAME),
    ("employer", True, r"\bi(?:'m| am)?\s+(?:now\s+|still\s+)?(?:work|working)\s+(?:now\s+)?"
                       r"(?:as\s+an?\s+[\w -]+?\s+)?(?:at|for)\s+", _NAME),
    ("employer", True, _I + r"(?:joined|started (?:a new job |working |my new job )?(?:at|with)|"
                       r"got (?:a job|hired|an offer|a position|a role) (?:at|with|from|by)|"
                       r"accepted (?:an|the|a job) offer (?:from|at)|signed with|"
                       r"landed (?:a|my) (?:new )?(?:job|role|position) at|(?:was|got) hired by)\s+", _NAME),
    ("employer", True, r"\bmy\s+(?:new\s+)?(?:employer|company|workplace|firm)\s+is\s+(?:now\s+)?", _NAME),
    ("employer", True, r"\bmy new (?:job|role|position) (?:is )?at\s+", _NAME),
    ("employer", False, _I + r"(?:quit|left|resigned from|walked out of|(?:was|got) laid off "
                        r"(?:from|by)|(?:got|was) fired from|no longer work (?:at|for)|"
                        r"don't work (?:at|for)|stopped working (?:at|for))\s+", _NAME),
    ("employer", False, _I + r"(?:quit|left|lost) my job\b()", None),
    ("job", True, r"\bi(?:'m| am)\s+(?:now\s+)?(?:working\s+as\s+)?an?\s+", _THING
                  + r"\s+(?:now|these days)\b"),
    ("job", True, r"\bi\s+(?:now\s+)?work\s+as\s+an?\s+", _THING + _END),
    ("job", True, _I + r"(?:became|become|got promoted to|(?:was|been) promoted to|started as)\s+"
                  r"(?:an?\s+)?", _THING + _END),
    ("job", True, r"\bmy\s+new\s+(?:role|job title|position|job)\s+is\s+(?:an?\s+)?", _THING + _END),
    ("partner", True, r"\bmy\s+(?:new\s+)?(?:partner|boyfriend|girlfriend|husband|wife|fianc[eé]e?|"
                      r"bf|gf|spouse|other half|significant other)(?:'s name)?\s*(?:is|,)\s+", _NAME),
    ("partner", True, r"\bi(?:'m| am|'ve been| have been)\s+(?:now\s+)?(?:dating|seeing|"
                      r"engaged to|married to|in a relationship with|together with)\s+", _NAME),
    ("partner", True, _I + r"(?:started dating|started seeing|got together with|married|"
                      r"got engaged to|got married to|moved in with)\s+", _NAME),
    ("partner", False, r"\b", r"(?P<v>[A-Z]\w+)(?i: and i\s+(?:have\s+|just\s+|finally\s+)?"
                       r"(?:broke up|split up|split|separated|divorced|called it quits|"
                       r"are done|are over))"),
    ("partner", False, r"\bi\s+(?:just\s+)?(?:broke up|split up|split)\s+with\s+", _NAME),
    ("partner", False, r"\bi(?:'m| am)\s+(?:single|not seeing anyone|not dating anyone)\b()", None),
    ("pet", True, _I + r"(?:got|adopted|rescued|brought home|have)\s+(?:a|an|our|my)\s+"
                  r"(?:new\s+)?(?:\w+\s+)?" + _ANIMAL + r"\s+(?:named|called)\s+", _NAME),
    ("pet", False, r"\b(?:my|our)\s+" + _ANIMAL + r"\s+", _NAME + r"(?i:\s+(?:passed away|died|"
                   r"ran away|is gone))"),
    ("car", True, _I + r"(?:bought|leased|picked up|drive|got)\s+(?:a|an|my)\s+(?:new\s+|used\s+)?",
     _VEHICLE + _END),
    ("car", False, r"\bi\s+(?:just\s+)?sold\s+my\s+(?:old\s+)?", _VEHICLE + _END),
    ("hobby", True, _I + r"(?:started|took up|picked up|got into|began)\s+"
                    r"(?P<v>(?!working|living|dating|seeing|going|looking|caring|trying|feeling|thinking)"
                    r"\w+ing(?:\s+(?!" + _FUNCTION + r")\w+)?)", None),
    ("hobby", False, _I + r"(?:stopped|quit|gave up|given up|no longer do)\s+"
                     r"(?P<v>(?!working|living|dating|seeing)\w+ing(?:\s+(?!" + _FUNCTION + r")\w+)?)", None),
    ("diet", True, r"\bi(?:'m| am)\s+(?:now\s+|fully\s+)?(?:a\s+)?(?P<v>vegan|vegetarian|"
                   r"pescatarian|keto|gluten[- ]free|dairy[- ]free)\b", None),
    ("diet", False, r"\bi(?:'m| am)\s+no longer\s+(?:a\s+)?(?P<v>vegan|vegetarian|pescatarian|"
                    r"keto)\b", None),
    ("health", True, r"\bi\s+(?:just\s+)?(?:broke|sprained|injured|hurt|fractured|tore)\s+my\s+"
                     r"(?P<v>\w+)", None),
    ("health", True, r"\bi(?:'ve| have| was| got)\s+(?:just\s+)?(?:been\s+)?diagnosed with\s+",
     _THING + _END),
]
#: The compiled table; another language appends its own rows.
PATTERNS: list[tuple[str, bool, re.Pattern[str]]] = [
    (a, h, re.compile(f"(?i:{verb}){value}" if value is not None else verb, re.IGNORECASE
                      if value is None else 0)) for a, h, verb, value in _TABLE]
# third person: "<Name> moved to X" etc. (the name stands where "i" stands above)
_THIRD = re.compile(r"^(?!(?:We|They|He|She|You|It|This|That|There|Just|Recently|Finally|Also|"
                    r"Then|Today|Yesterday|Now|Actually|Really|So|And|But|Still|Lately|"
                    r"Last|Next|Once|Soon|Already|Even|Only|Well|Oh|Yeah|Yes|No|Thanks|"
                    r"Everyone|Someone|Nobody|Everybody|Officially|Basically|Honestly|"
                    r"Literally|Apparently|Seriously|Technically|Hopefully|Luckily|Sadly|"
                    r"Unfortunately|Fortunately|Surprisingly|Eventually|Suddenly|Definitely|"
                    r"Probably|Obviously|Clearly|Currently|Happily|Thankfully|Naturally|"
                    r"Personally|Totally|Somehow|Anyway|Meanwhile|Guess|Big|Quick|Random)\b)(?P<who>[A-Z][a-z]+)\s+(?:has\s+|just\s+|finally\s+|now\s+)*"
                    r"(?=(?:moved|relocated|lives|is living|works|is working|joined|started|quit|"
                    r"left|resigned|got|adopted|is dating|is engaged|married|broke up|is now)\b)")
_VERB_3RD = {"lives": "live", "works": "work", "is living": "am living", "is working": "am working",
             "is dating": "am dating", "is engaged": "am engaged", "is now": "am now"}
_INTRO = re.compile(r"(?i:\b(?:i'm|i am|my name is|my name's|call me))\s+(?P<v>[A-Z][a-z]+)\b"
                    r"(?!\s+(?:and|from|at|in|with)\b)")
_NOT_NAMES = frozenset("""sorry so glad happy here back home fine good okay ok just really
not also still going moving working living tired sure excited new done the a an very""".split())
_STOP_VALUES = frozenset("it that this there here them him her us you one home work".split())
_MONTH_NAMES = (r"(?:january|february|march|april|may|june|july|august|september|october|"
                r"november|december)")
#: "in March", "on April 19", "since 12 March 2023", "on the 3rd of May": the day is kept
#: when it is given, so two changes in one month keep their order.
_DATE_IN = re.compile(r"\b(?:(?:in|since|on|back in|as of)\s+(?P<m>" + _MONTH_NAMES + r")"
                      r"(?:\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\b)?"
                      r"|(?:on\s+)?(?:the\s+)?(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?"
                      r"(?P<m2>" + _MONTH_NAMES + r"))"
                      r"(?:,?\s+(?P<y>(?:19|20)\d\d))?\b", re.IGNORECASE)
#: "on 5/28", "on 28/5/2021": read only when one of the two numbers cannot be a month.
_DATE_NUM = re.compile(r"\bon\s+(?P<a>[0-3]?\d)/(?P<b>[0-3]?\d)(?:/(?P<y>(?:19|20)?\d\d))?\b")
_RELATIVE = re.compile(r"\b(?:(?P<n>\d+|a|one|two|three|four|five|six)\s+(?P<u>day|week|month)s?"
                       r"\s+ago|last\s+(?P<lu>week|month|year)|yesterday)\b", re.IGNORECASE)
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_NUM = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def clauses(text: str) -> Iterator[str]:
    """The clauses of ``text`` that can each state one thing: split at sentence ends,
    semicolons, "but", ", and", "and I ..."; lead-ins ("Big news:", "Also") dropped; a
    second verb keeps the first clause's subject ("I got a job and moved to X")."""
    return _clauses(text)


_SUBJECT = re.compile(r"(?i:i|we)\b|(?i:my|our|his|her|their|a|an|the)\s+[\w-]+|[A-Z][a-z]+\b")
_OBJECT_NEXT = re.compile(r"\s+(?:a|an|the|my|our|his|her|their|to|for|up|it|one|some|"
                          r"back|off|goodbye|hello|farewell|bye)\b", re.IGNORECASE)
_ME = re.compile(r"(?<![\w'])(?i:i|we)(?![\w'])")
_OWNERS = frozenset({"i", "we", "my", "our", "his", "her", "their"})


def _clauses(text: str) -> Iterator[str]:
    for clause in _SPLIT.split(" ".join(text.split())):
        clause = _LEAD.sub("", clause.strip(" ,"))
        if not clause:
            continue
        first, *rest = _VERB_SPLIT.split(clause)
        yield first
        # "My dad quit and joined Larkspur": the dad joined, not "My"
        # "Believe it or not, I moved to Aarhus and bought a van": I bought it, not "Believe"
        start = _SUBJECT.match(first)
        if start and _OBJECT_NEXT.match(first, start.end()):  # "Took a Golf for a spin and
            start = None                                      # bought it": a verb, no name
        me = _ME.search(first)
        subject = (start.group(0) if start and (not me or not start.group(0)[0].isupper()
                                                or start.group(0).split()[0].lower() in _OWNERS)
                   else me.group(0) if me else None)
        for part in rest:
            yield f"{subject} {part}" if subject else part


def _value(raw: str | None) -> str | None:
    if raw is None:
        return None
    v = re.sub(r"^(?:the|a|an|my)\s+", "", raw.strip(" .,!'\"").lower())
    v = re.sub(r"\s+(?:now|today|again|too|already|finally)$", "", v)
    if not v or v in _STOP_VALUES or len(v) > 60:
        return None
    return v


def stated_time(text: str, said: datetime | None) -> datetime | None:
    """The date a clause gives for its change, read against when it was said: "in March"
    (the last March on or before then), "in July 2023", "two weeks ago", "last month"."""
    m = _DATE_IN.search(text)
    if m and said is not None:
        month = _MONTHS.index((m.group("m") or m.group("m2")).lower()) + 1
        day = int(m.group("d") or m.group("d2") or 1)
        return _dated(said, m.group("y"), month, day)
    n = _DATE_NUM.search(text)
    if n and said is not None:
        a, b = int(n.group("a")), int(n.group("b"))
        if (a > 12) != (b > 12):  # 28/5 or 5/28; 5/6 could be either
            month, day = (b, a) if a > 12 else (a, b)
            y = n.group("y")
            return _dated(said, ("20" + y if y and len(y) == 2 else y), month, day)
    r = _RELATIVE.search(text)
    if r and said is not None:
        if r.group(0).lower() == "yesterday":
            return said - timedelta(days=1)
        if r.group("lu"):
            return said - timedelta(days={"week": 7, "month": 30, "year": 365}[r.group("lu").lower()])
        n = int(r.group("n")) if r.group("n").isdigit() else _NUM[r.group("n").lower()]
        return said - timedelta(days=n * {"day": 1, "week": 7, "month": 30}[r.group("u").lower()])
    return None


@lru_cache(maxsize=1)
def places() -> frozenset[str]:
    """Lower-cased names of the world's cities of >= 100,000 people and its countries
    (GeoNames, CC BY 4.0; ``scripts/build_places.py``)."""
    text = resources.files(__package__).joinpath("places.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def _dated(said: datetime, year: str | None, month: int, day: int) -> datetime | None:
    """That day (the last one on or before ``said`` when no year is given), or None."""
    try:
        if year:
            return said.replace(year=int(year), month=month, day=day, hour=0, minute=0,
                                second=0, microsecond=0)
        when = said.replace(month=month, day=day, hour=0, minute=0, second=0, microsecond=0)
    except ValueError:  # "31 February"
        return None
    return when if when <= said else _dated(said, str(said.year - 1), month, day)


def self_name(text: str, *, handle: bool = False) -> str | None:
    """The name a speaker introduces themself by ("I'm Maya", "call me Jo"), if any. A
    speaker known only by a handle (a phone number, "mk_92") also signs in ("Hej! This is
    Hanna, from the project", "Maya! Yes! Zanele here"); from a speaker with a name, "This
    is Max" introduces a dog more often than themself."""
    for rx in (_INTRO, _THIS_IS, _HERE) if handle else (_INTRO,):
        m = rx.search(text)
        if m and m.group("v").lower() not in _NOT_NAMES | _NOT_ADDRESSED | _NOT_SIGNED:
            return m.group("v").lower()
    return None


#: Words that sign in no one: "Same here", "Nothing here", "Winter here is long".
_NOT_SIGNED = frozenset("""same me you us all everyone everybody nobody somebody someone
nothing everything something right over out back up down life love things stuff weather
news work home dinner lunch breakfast summer winter spring autumn fall rain sun snow sorry
thanks cheers bye hello morning evening night today tomorrow yesterday week weekend month
year time traffic coffee tea""".split())


_THIS_IS = re.compile(r"(?:^|[.!?]\s+)\W*(?:(?:hi|hey|hello|hej|hola|ciao|hallo|yo)\W+)*"
                      r"(?i:this is|it's|it is)\s+(?P<v>[A-Z][^\W\d_]+)\b"
                      r"(?!\s+[a-z]+ing\b|,?\s+(?i:my|our|the)\b)")
_HERE = re.compile(r"(?:^|[.!?]\s+)\W*(?P<v>[A-Z][^\W\d_]+)\s+(?i:here)\b(?!\s+(?:is|are|in|at))")


_GREETING = re.compile(
    r"^\W*(?:(?:ah|oh|ok|okay|well|so|and|aw+|omg|lol)\W+)?"
    r"(?:hi|hey|hello|hiya|heya|hej|hola|yo|morning|good morning|afternoon|good afternoon|"
    r"evening|good evening|thanks|thank you|ty|congrats|congratulations|welcome back|"
    r"happy birthday|happy new year|merry christmas|dear)[\s,]+(?P<v>[A-Z][^\W\d_]+)\b"
    r"(?!\s+[a-z]|')", re.IGNORECASE)
_NOT_ADDRESSED = frozenset("""there everyone everybody all guys folks friend friends buddy mate
pal man dude girl again you yourself team yes yeah yep no nope sure it this that what
so ok okay nobody somebody someone anyone everyone mum mom dad mama papa babe baby honey
love sweetie darling bro sis sister brother boss all lol how why when where who""".split()) \
    | _NOT_NAMES


#: A capital other than the pronoun "I" ("I'm", "I've" included).
_CAPITAL = re.compile(r"[A-Z](?<!\bI)|\bI[a-z]")


def capitalises_nothing(text: str) -> bool:
    """Whether ``text`` starts in lower case and has no capital but "I": its writer
    capitalises nothing, names included ("finally moved to glasgow!!")."""
    first = re.search(r"[A-Za-z]", text)
    return first is not None and first.group(0).islower() and not _CAPITAL.search(text)


def addressed(text: str) -> str | None:
    """The name a turn greets its listener by ("Hey Nikolai!", "Morning, Sam.", and from a
    writer who capitalises nothing, "ah hi dorota!"): in a two-person chat it names the
    other speaker, whose handle may be a phone number."""
    m = _GREETING.match(text)
    if m is None:
        return None
    if not m.group("v")[0].isupper() and not capitalises_nothing(text):
        return None
    name = m.group("v").lower()
    return None if name in _NOT_ADDRESSED else name


def statements(text: str, *, said: datetime | None = None,
               names: Iterable[str] | None = None) -> list[Statement]:
    """The state statements in ``text`` (a turn or a fact). ``names``: the people the
    third person may name (None: anyone; a statement about someone else only ever closes
    statements about that same person, never the speaker's)."""
    known = None if names is None else {n.lower() for n in names}
    out: list[Statement] = []
    for clause in _clauses(text):
        if clause.endswith("?") or _QUESTION.match(clause) or _HYPOTHETICAL.search(clause):
            continue
        correction = bool(_CORRECTION.match(clause) or _DENIED.search(clause))
        clause = _LOOSE.sub("", _CORRECTION.sub("", clause))
        if _OTHER.match(clause):
            continue  # my sister moved to Rome: not the speaker's change
        subject, body = "", clause
        third = _THIRD.match(clause)
        if third:
            who = third.group("who").lower()
            if known is not None and who not in known:
                continue
            subject, body = who, "I " + clause[third.end():]
            for verb, first in _VERB_3RD.items():
                body = re.sub(rf"^I {verb}\b", f"I {first}", body)
        elif _ELIDED_I.match(clause):  # chat leaves the "I" out: "moved to Berlin on 22 Apr"
            body = "I " + clause
        elif not re.search(r"\b(?:i|i'm|i've|my|we|we're|we've)\b", clause, re.IGNORECASE):
            continue
        when = stated_time(clause, said)
        for attribute, holds, pattern in PATTERNS:
            for m in pattern.finditer(body):
                raw = m.groupdict().get("v")
                value = _value(raw)
                if raw and value is None:
                    continue
                if attribute == "partner" and value in _NOT_NAMES:
                    continue
                if attribute == "job" and value and (value.split()[-1] in _NOT_JOBS
                                                     or value.split()[0] in places()):
                    continue  # "I'm a cat parent now", "I'm a Nantes resident now"
                if attribute == "employer" and _PASTIME.match(body, m.end()):
                    continue  # "I quit Japanese lessons": no employer
                # "I left Lisbon": a move, not a job
                moved = attribute == "employer" and not holds and value in places()
                out.append(Statement(subject, "home" if moved else attribute, value, holds,
                                     correction, when))
    return _dedupe(out)


_ELIDED_I = re.compile(r"^(?:(?:just|finally|then|also|recently|officially)\s+)?(?:moved|relocated|"
                       r"started|joined|quit|left|bought|adopted|switched|sold)\s+"
                       r"(?:to|at|from|in|a|an|my|our)\b", re.IGNORECASE)
_PASTIME = re.compile(r"\s+(?:lessons|classes|class|course|club|practice|league|choir)\b",
                      re.IGNORECASE)
#: What "I'm a ... now" calls oneself that is no occupation.
_NOT_JOBS = frozenset("""parent mum mom dad mother father owner person people fan lover addict
mess wreck convert believer regular member grandma grandpa aunt uncle auntie newbie beginner
morning night fanatic nerd geek snob resident local native citizen expat immigrant newcomer
transplant""".split())


def _dedupe(found: list[Statement]) -> list[Statement]:
    """One statement per (subject, attribute, value, holds); a closure with a value wins
    over a bare one for the same attribute."""
    seen: dict[tuple[str, str, str | None, bool], Statement] = {}
    for s in found:
        seen.setdefault((s.subject, s.attribute, s.value, s.holds), s)
    keep = list(seen.values())
    valued = {(s.subject, s.attribute) for s in keep if not s.holds and s.value}
    return [s for s in keep if s.holds or s.value or (s.subject, s.attribute) not in valued]
