"""What a clause is about, when no rule reads a full statement from it.

The statement rules (:mod:`.statements`) read subject, attribute and value, and only
fire on the phrasings they know: on chats of another shape they miss most state changes
("Green tea has replaced rooibos in my life", "I'm officially a Harbor Health employee").
This module answers a weaker question that holds across phrasings: is this clause the
speaker's (or a named person's) assertion *about* one of their one-at-a-time attributes
(where they live, where they work, their partner, their car, what they drink, their
diet, their phone)? It reads words, not sentence shapes: a lexicon of what each
attribute is talked about with, written from general knowledge, not from any benchmark's
templates.

The read path uses it (``rerank.topic_prior``): when a question asks for a named person's
attribute now ("Which company is Maya working for these days?") or at a time, the most
recent such assertion among the candidates (or the one that held then) comes first. No
value is needed for that, so nothing is closed or rewritten on write: a clause misread
here changes one ranking, never a stored version. Questions, hypotheticals and plans,
and other people's news ("my sister moved to Rome") are not assertions about the
speaker. English only; another language adds a ``LEXICON`` of its own words.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from .statements import (_HYPOTHETICAL, _OTHER, _QUESTION, capitalises_nothing, clauses,
                         places)

__all__ = ["LEXICON", "SINGLE_TOPICS", "CORRECTION", "asked", "about", "attributes",
           "mentions", "places", "status_change", "values_named"]

#: Attribute -> the words people use about it. Brands and kinds of things are world
#: knowledge (a Corolla is a car, a flat white is a drink), never a benchmark's values.
LEXICON: dict[str, tuple[str, ...]] = {
    "home": ("live", "lives", "living", "lived", "moved", "move", "moving", "relocated",
             "relocate", "relocating", "settled", "apartment", "apartments", "flat", "house",
             "address", "city", "town", "neighbourhood", "neighborhood", "rent", "renting",
             "rented", "landlord", "hometown", "resident", "residence", "reside", "based",
             "new home", "my home", "new place", "my place", "place in", "life in",
             "commute", "local", "moved in", "lease",
             "born and raised", "home is", "home for me", "call home", "calls home",
             "called home", "home base", "home now", "home these days"),
    "work": ("work", "works", "working", "job", "jobs", "company", "employer", "employee",
             "employed", "hired", "office", "colleague", "colleagues", "coworker",
             "coworkers", "co-workers", "boss", "position", "role", "career", "promoted",
             "promotion", "quit", "resigned", "resign", "laid off", "fired", "salary",
             "first day at", "firm", "startup", "start-up", "team at", "contract with",
             "shift", "shifts", "workplace", "payroll", "gig", "onboarding",
             "badge", "manager", "internship", "intern", "clocked", "started at",
             "new job", "new role", "hire", "new hire", "employ", "employs",
             "job offer", "took the offer", "accepted the offer", "the offer from",
             "teach at", "teaches at", "teaching at", "pays my bills", "pay my bills",
             "pays the bills", "full time", "full-time", "part time", "part-time",
             "paycheck", "paycheque", "pays me", "payslip", "linkedin"),
    "partner": ("partner", "boyfriend", "girlfriend", "husband", "wife", "spouse", "fiance",
                "fiancé", "fiancee", "fiancée", "dating", "dated", "married", "marry",
                "engaged", "engagement", "wedding", "relationship", "broke up", "break up",
                "breakup", "split up", "divorce", "divorced", "single", "my ex",
                "seeing someone", "other half", "significant other", "together with",
                "been together", "got together", "together since", "a couple",
                "made it official", "date again", "first date", "on a date", "asked me out"),
    "car": ("car", "cars", "drive", "drives", "driving", "drove", "vehicle", "truck", "van",
            "suv", "motorbike", "motorcycle", "scooter", "sedan", "hatchback", "pickup",
            "convertible", "hybrid", "ev", "tesla", "toyota", "honda", "ford", "volkswagen",
            "vw", "bmw", "audi", "mercedes", "subaru", "mazda", "nissan", "kia", "hyundai",
            "volvo", "fiat", "renault", "peugeot", "skoda", "jeep", "chevrolet", "chevy",
            "porsche", "lexus", "mini cooper", "prius", "corolla", "civic", "golf", "polo",
            "leaf", "model 3", "model y", "wheels", "garage", "mileage"),
    "drink": ("drink", "drinks", "drinking", "drank", "coffee", "coffees", "espresso",
              "espressos", "latte", "lattes", "cappuccino", "cappuccinos", "americano",
              "flat white", "mocha", "macchiato", "cold brew", "tea", "teas", "chai",
              "matcha", "green tea", "black tea", "herbal tea", "rooibos", "earl grey",
              "kombucha", "juice", "smoothie", "smoothies", "soda", "cola", "lemonade",
              "beer", "beers", "wine", "wines", "whisky", "whiskey", "cocktail", "cocktails",
              "hot chocolate", "cocoa", "yerba mate", "mate", "oat milk", "milkshake",
              "sparkling water", "decaf", "brew", "caffeine", "cuppa", "mug of", "cup of"),
    "diet": ("vegan", "vegetarian", "pescatarian", "keto", "gluten-free", "gluten free",
             "dairy-free", "diet", "plant-based", "meat", "paleo"),
    "phone": ("phone", "iphone", "android", "pixel", "galaxy", "smartphone", "cellphone",
              "mobile"),
}
#: All of the above hold one value at a time: a newer assertion is the current one.
SINGLE_TOPICS = frozenset(LEXICON)

_PATTERNS = {a: re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len,
                                                                             reverse=True))
                           + r")(?:s|es)?\b", re.IGNORECASE) for a, words in LEXICON.items()}
#: Not (yet) the speaker's state: trying things out, shopping around, interviews.
_TENTATIVE = re.compile(r"\b(?:test[- ]?dr[io]v\w*|just looking|save the date|plans?\s*:|shopping (?:for|around)|"
                        r"wants? to|wanted to|would like to|"
                        r"trying to|try to|interview\w*|appl(?:y|ying) (?:to|for)|"
                        r"next (?:week|month|year)|tomorrow|this weekend|would love|"
                        r"dreaming|daydream\w*|fingers crossed|browsing|window[- ]shopping|"
                        r"just for fun|in another life|in a parallel universe|"
                        r"(?:big |the |my |our )plans? (?:for|is|was)\b|plans? to|planning|"
                        r"(?:i|we)'d|promised myself|decided to|decide to|"
                        r"(?:all |everything'?s |everything is )set (?:for me |for us )?to)\b",
                        re.IGNORECASE)
#: A correction of what was just said ("Oops, not Lisbon: Porto!", "Scratch that: Braga",
#: "Montreal should be Tallinn", "I typed Austin by mistake"). A value being corrected is
#: a name, so the forms that could be chatter ("not really, no", "it should be fun") need
#: a capitalised word where the value goes.
CORRECTION = re.compile(
    r"^\W*(?:(?:wait|ugh|oh|sorry|oops|ok|okay|actually|hmm|no)\W+){0,2}"
    r"(?:correction|oops|sorry,? i meant|i meant|typo|autocorrect|scratch that|make that|"
    r"strike that|let me correct|to correct myself|no wait|wait,? (?:no|not)\b|"
    r"(?-i:not (?:in |at )?[A-Z][\w'-]*(?: [A-Z][\w'-]*){0,3})[:,]\s|"
    r"(?:actually,? )?(?:it'?s|it is|that'?s) (?-i:[A-Z])[\w'-]*(?: [A-Z][\w'-]*){0,3},? not (?:in |at )?(?-i:[A-Z]))"
    r"|(?-i:[A-Z][\w'-]*) should (?:be|read|say|have been) (?-i:[A-Z])"
    r"|\bby mistake\b|\bi (?:typed|misspoke|misspelled|misspelt)\b|\bwas a (?:typo|slip)\b"
    r"|\bmy (?:mistake|bad)\b", re.IGNORECASE)
#: Questions that ask for an attribute's value: the wh-word's answer is the home, the
#: employer, the partner ... ("Where does she live?", "Which company is he with now?").
#: A question that only uses such a word ("How is her new puppy adjusting to its new
#: home?", "Who did Maria have dinner with?") asks for something else.
_ASKED = [(re.compile(p, re.IGNORECASE), a) for p, a in (
    (r"\bwhere\b.*\b(?:live|lives|living|stay|staying|based|reside|resides|residing)\b",
     "home"),
    (r"\b(?:which|what)\s+(?:city|town|country|place|neighbou?rhood)\b.*\b(?:live|lives|"
     r"living|call home|home|based|reside)\b", "home"),
    (r"\bwhat\b.*\b(?:address|home town)\b", "home"),
    (r"\b(?:which|what)\s+(?:company|firm|employer)\b", "work"),
    (r"\b(?:which|what)\s+organi[sz]ation\b.*\b(?:work(?:s|ing)? (?:for|at)|employ\w*|job)\b",
     "work"),
    (r"\b(?:who|where)\b.*\b(?:work|works|working|employ\w*)\b", "work"),
    (r"\bwhat(?:\s+is|\s+was|'s)\b[^?]*\b(?:job|employer|occupation)\b", "work"),
    (r"\bwhat\b.*\bdo for (?:a )?(?:work|living)\b", "work"),
    # "Who's Bex with these days?": with whom, nothing after it but a time
    (r"\bwho(?:'s|\s+is|\s+was)\s+\S+\s+with(?:\s+(?:now|these days|nowadays|currently|"
     r"at the moment|lately|in \w+(?: \d{4})?|on [\w ,]+))?\s*\?", "partner"),
    (r"\bwho\b.*\b(?:partner|boyfriend|girlfriend|husband|wife|spouse|dating|seeing|"
     r"relationship|married to|engaged to)\b", "partner"),
    (r"\bwhat\b.*\b(?:drink|drinks|drinking|coffee order)\b", "drink"),
    (r"\b(?:what|which)\b.*\b(?:car|drive|drives|driving|vehicle)\b", "car"),
    (r"\bwhat\b.*\bdiet\b", "diet"),
    (r"\b(?:what|which)\s+(?:kind of\s+|type of\s+|model of\s+)?(?:phone|smartphone)\b",
     "phone"),
)]
#: A question framed by an event or an intention asks about that, not about the state:
#: "Where did they decide to live?", "What happened to his job?".
_EVENTFUL = re.compile(r"\b(?:decide[ds]?|deciding|happen(?:s|ed)?|plan(?:s|ned|ning)?|"
                       r"want(?:s|ed)?|hope[ds]?|think|thought|consider(?:s|ed)?|feel|felt)\b",
                       re.IGNORECASE)
_YOU = re.compile(r"\b(?:you|your|you've|you're|you'd|you'll)\b", re.IGNORECASE)
_SUBJECT_I = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|my|mine|we|we're|we've|our)\b",
                        re.IGNORECASE)
_FIRST = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|we|we're|we've|our)\b", re.IGNORECASE)
#: "My red Fiat sleeps on the street", "Our office moved the coffee machine": the clause is
#: about the thing the possessive names, so it asserts the speaker's attribute only
#: through that thing's own words (a car; not the office's move or its coffee). When the
#: thing names none, a copula's complement can ("My usual order is a flat white").
_POSSESSIVE = re.compile(r"^(?:my|our)\s+", re.IGNORECASE)
_COPULA = re.compile(r"(?:\s+(?:is|are|was|were|has been|have been|is now|has changed to|"
                     r"changed to|has become|became)|'s)\s+", re.IGNORECASE)
_DETERMINED = re.compile(r"\b(?:the|these|those|some|many|few|all|two|three|several)$",
                         re.IGNORECASE)
_NP_END = re.compile(r"\s+(?:has|have|had|got|gets|became|becomes|\w{3,}s|\w{3,}ed)\b",
                     re.IGNORECASE)
#: A short header before a colon ("Car news: my old Fiat is gone") is not the subject:
#: a possessive one is read after it.
_HEADER = re.compile(r"^(?:[^\s:.!?]+\s+){0,3}[^\s:.!?]+:\s+(?=\S)")
#: Someone else is the subject: "she moved", "your new job", "they live in".
_SOMEONE = re.compile(r"\b(?:he|she|they|you|his|her|their|your|he's|she's|they're|you're|"
                      r"you've|them|him)\b", re.IGNORECASE)
#: A clause with no person in it speaks for the speaker only if it says something (a
#: finite verb: "Nothing beats rooibos", not "Coffee in hand, ready to chat") about no
#: other thing ("The neighbours are renovating").
_VERB = re.compile(r"\b(?:is|are|was|were|am|has|have|had|been|do|does|did|\w+'s|\w+'re|\w+n't|"
                   r"\w{3,}s|\w{3,}ed)\b", re.IGNORECASE)
_THING = re.compile(r"^(?:the|a|an|this|that|these|those|some|every|each)\s+"
                    # ... but "the move to Krakow happened" is the speaker's own change
                    r"(?!(?:big\s+|actual\s+)?(?:move|relocation|breakup|break-up|split|switch)\b)"
                    r"\w+", re.IGNORECASE)
#: Phrases that use an attribute's word for something else.
_IDIOM = re.compile(r"\b(?:living room|for a living|work out|working out|worked out|"
                    r"at work|for work|after work|from work|to work|off work|work from|worked from|"
                    r"working from|works from|"
                    r"working on|work on|works on|hard work|works out|work out|work hours|"
                    r"work well|worth the work|lot of work|"
                    r"drive me|drives me|drove me|"
                    r"home from|back home|homework|in the works|works for me|that works|"
                    r"it works|worked for me|moved on|move on|moving on|"
                    # a move in a game or a career, not a house: "quit and joined X, brave move"
                    r"(?:brave|bold|smart|good|great|wise|clever|risky|gutsy|big|huge|nice|power|"
                    r"dumb|bad|classic|career|strange|weird|savvy|sweet|cool|solid|sensible) moves?|"
                    # "Rowan and I called it quits": a couple, not a job
                    r"call(?:ed|ing|s)? it quits|"
                    # "the local radio", "a local bakery": a place's things, not a home
                    r"(?:the|our|a few|some|at a) local\b|local (?:radio|news|paper|newspaper|pub|"
                    r"shops?|council|election|team|park|library|hospital|school|bakery|market|"
                    r"cafe|gym|bar|restaurant|band|artists?|business(?:es)?|time)\b|"
                    # quitting a pastime is no job: "I quit Japanese lessons", "quit the gym"
                    r"quit (?:my |the )?(?:[A-Z]?\w+ )?(?:lessons|classes|class|course|smoking|"
                    r"drinking|sugar|caffeine|gym|social media|knitting|pottery|running|yoga|"
                    r"choir|book club|league)\b|"
                    r"together with (?:the|my|our|his|her|their|a|an|some|all|friends|family)\b|"
                    # a pet's name is no phone or car: "my parrot Pixel", "the cat Tesla"
                    r"(?:dog|cat|puppy|kitten|parrot|rabbit|bunny|hamster|turtle|tortoise|pet|"
                    r"bird|fish|horse|ferret|lizard|snake|guinea pig)s?\s+(?-i:[A-Z])[\w'-]*|"
                    # "it just wasn't working": a relationship or a plan, not a job
                    r"(?:it|that|this|things)(?:'s|'re| is| was| are| were)?(?: just| really)?"
                    r"(?: not|n't| isn't| wasn't| aren't| weren't)? working|"
                    r"live with|lives with|living with|lived with|"
                    # "The cat moved in with me": the cat moved, not the speaker
                    r"mov(?:e|ed|es|ing) in with (?:me|us)|"
                    # moving a thing is not moving house: "I had to move my appointment"
                    r"mov(?:e|ed|es|ing) (?:my|the|a|an|our|this|that|it|them|some|all)"
                    r"(?! (?:house|home|flat|apartment|place|stuff|things|boxes|furniture|"
                    r"family|kids|life|whole)\b))\b", re.IGNORECASE)
#: Attributes whose value is a name: a place, an employer, a person. A clause that uses
#: their words without naming anything ("Neighbours loved it", "Our office moved the
#: coffee machine", "I quit pottery") talks about the topic but says nothing of its value.
NAMED_TOPICS = frozenset({"home", "work", "partner"})
#: ... unless the clause says the value is gone or changed without naming one: "We're
#: engaged!", "I'm single again", "I got laid off".
_STATUS = re.compile(r"\b(?:engaged|married|single|broke up|split up|divorced|separated|"
                     r"widowed|quit (?:my|the|this) (?:job|position|role)|resigned|laid off|"
                     r"(?:got|was|been) fired|retired|unemployed|between jobs|out of work|"
                     r"no longer with|not with \w+ anymore|homeless)\b", re.IGNORECASE)
#: Status changes that name the attribute by what happened, not by its words: "I'm not
#: with Jules anymore", "Sofia is off the market", "Willow Architecture let me go". One
#: capitalised word after "with" is a person; two or more are an organisation.
_STATUS_OF = (
    ("partner", re.compile(r"\b(?:broke up|split up|divorced|separated|widowed|"
                           r"off the market|single again|"
                           r"(?:are|got|been|back|we'?re) (?:(?:now|officially|finally|back) )*together|"
                           r"we'?re (?:(?:now|officially|finally) )*(?:a couple|an item|dating)|"
                           r"(?-i:[A-Z][a-z]+) and I (?:(?:have|had|just|finally|officially) )*"
                           r"(?:called it quits|parted ways|went (?:our )?separate ways|ended (?:it|things))|"
                           r"(?:called it quits|parted ways|ended (?:it|things)|broke it off) with "
                           r"(?-i:[A-Z][a-z]+)\b(?! (?-i:[A-Z]))|"
                           r"(?:it'?s|it is|things are) over (?:with|between us and) (?-i:[A-Z][a-z]+)\b|"
                           r"(?:i'?m|i am|we'?re) (?:now )?(?:single|engaged|married)|"
                           r"(?:not|no longer) with (?-i:[A-Z][a-z]+)\b(?! (?-i:[A-Z]))|"
                           r"(?:i'?m|i am) (?:now )?with (?-i:[A-Z][a-z]+)\b(?! (?-i:[A-Z]))"
                           r"(?= now| these days|[.!,]|$))", re.IGNORECASE)),
    ("work", re.compile(r"\b(?:let me go|laid off|layoffs?|job[- ]hunting|between jobs|"
                        r"out of work|unemployed|(?:got|was|been) fired|resigned|"
                        r"quit (?:my|the|this) (?:job|position|role)|"
                        r"(?:not|no longer) with (?-i:[A-Z][\w&'-]*(?: [A-Z][\w&'-]*)+))",
                        re.IGNORECASE)),
)
#: "No more electric Kia Niro", "Goodbye Atlas Freight, hello Harbor Health": a value
#: ended or begun, said by its name alone (the speaker's, as no one else is named).
_FAREWELL = re.compile(r"(?:^|[.!?:]\s+|\s[-\u2013\u2014:]\s+|,\s+)(?:no more|goodbye|good-bye|"
                       r"bye(?:-bye)?|farewell|so long|hello|welcome to)\s+"
                       r"(?P<v>[^.!?,;\u2013\u2014]+?)(?=\s+[-\u2013\u2014]\s|[.!?,;]|$)",
                       re.IGNORECASE)
_CAPITALISED = re.compile(r"(?<![\w'])[A-Z][\w'&.-]*")
#: Capitalised words that name nothing: sentence openers, pronouns, time words.
_NOT_NAMES = frozenset("""
i i'm i've i'd i'll my our the a an this that these those it it's its we we're we've you
your he she they his her their me us oh ok okay so well also and but or anyway btw plus
yeah yes no hey hi hello honestly basically finally actually wait sorry oops ugh wow lol
haha omg just still now today tonight tomorrow yesterday then there here what when where
who why how which big quick long new old random funny chaotic update news life good great
sad guess not nothing everything something some all any every each one two three after
before since last next on in at for with from to by of as if because mum mom dad home work
sure thanks thank cool nice awesome love dear meet
monday tuesday wednesday thursday friday saturday sunday january february march april may
june july august september october november december christmas easter
jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri sat sun
""".split())
_WORDS = frozenset(w for words in LEXICON.values() for p in words for w in p.split())
#: A place named where one lives ("I'm in Bilbao now", "We swapped Bilbao for Berlin",
#: "has left Tallinn"): a city or country after a word that places someone.
_UPPER = "A-Z\u00c0-\u00de\u0100-\u024f"  # Latin capitals: "Kraków", "Łódź"
_AT_PLACE = re.compile(r"\b(?:in|to|from|left|leaving|for|swapped|swap)\s+((?-i:[" + _UPPER +
                       r"][\w'.-]*(?: (?:[" + _UPPER + r"][\w'.-]*|de|la|del|upon)){0,3}))",
                       re.IGNORECASE)
#: ... unless it is a trip.
_TRAVEL = re.compile(r"\b(?:trip|visit\w*|holiday|vacation|weekend|conference|flight|flew|"
                     r"fly|flying|tour|touring|festival|concert|honeymoon|back from|layover|"
                     r"cruise|wedding|stopover|sightseeing|hotel|airbnb|volunteer\w*|booked|"
                     r"cycl\w*|hik(?:e|es|ed|ing)|road trip|(?:all |it'?s all )arranged|"
                     r"take (?:my|our|the) (?:parents|kids|family|mum|mom|dad|partner|folks) to)\b",
                     re.IGNORECASE)
_AT_PLACE_ANY = re.compile(r"\b(?:in|to|from|left|leaving|for|swapped|swap)\s+"
                           r"([a-z][\w'.-]*(?: [a-z][\w'.-]*){0,2})", re.IGNORECASE)
#: An organisation named where one works: a name of two to four capitalised words after
#: "at", "joined", "been with", "left" ("I'm at Lumen Optics these days"), not a place.
_AT_ORG = re.compile(r"\b(?:at|joined|been with|left)\s+((?-i:[A-Z][\w'&.-]*"
                     r"(?: (?:[A-Z][\w'&.-]*|&|of)){1,3}))", re.IGNORECASE)
#: Places one goes to, not employers: "lunch at Central Park".
_VENUES = frozenset("""park street road avenue square station airport mall centre center hotel
beach cafe bar pub museum gallery stadium arena church cathedral market gardens garden lake
river bridge zoo theatre theater cinema club restaurant bakery""".split())
#: "My boss at Lumen Optics": where the speaker works, said through the people there.
_COLLEAGUES_AT = re.compile(r"^(?:my|our)\s+(?:new\s+)?(?:boss|manager|team|colleagues?|"
                            r"co-?workers?)\s+at\s+(?-i:[A-Z])", re.IGNORECASE)
#: "Guess who's the newest hire at Acme? Me!" asks nothing.
_RHETORICAL = re.compile(r"^guess (?:who|what)\b", re.IGNORECASE)
#: "My mum keeps telling everyone that Freya lives in Denver": a named person's news.
_REPORTED = re.compile(r"\b(?:that|says|said)\s+([A-Z][\w'-]*)\s+(\S.*)$")
#: The speaker's habit, said as what the listener knows: "You know me: matcha, always."
_YOU_KNOW_ME = re.compile(r"^(?:you know me|as you know|like i said|as always)\W+(?=\w)",
                          re.IGNORECASE)
#: "So iced americanos now, huh": the listener's news said back to them, not the speaker's.
_ECHO = re.compile(r"^(?:(?:so|oh|ah|wow|wait)\W+)?[^.!?]{0,50}?\bnow\W+(?:huh|eh|then)\b",
                   re.IGNORECASE)
#: "I've moved from Orchard Software to Northwind Logistics": a move between employers
#: (names of two or more words that are no place) is a job change, not a new home.
_MOVED_ORG = re.compile(r"\b(?:mov(?:ed|ing|e)|switch(?:ed|ing)?|jump(?:ed|ing)|transferr(?:ed|ing))"
                        r"\s+(?:over\s+)?(?:from\s+.{2,60}?\s+)?to\s+((?-i:[A-Z][\w'&.-]*"
                        r"(?: (?:[A-Z][\w'&.-]*|&|of)){1,3}))", re.IGNORECASE)
#: "... and bought it on the spot": what it is, the turn said before.
_BOUGHT_IT = re.compile(r"^(?:(?:i|we)\s+)?(?:just\s+|then\s+|finally\s+)?(?:bought|leased|got|"
                        r"ordered|picked up)\s+(?:it|one)\b", re.IGNORECASE)
#: "After Jamie, I didn't think I'd date again, but then I met Quinn": meeting someone is
#: a new partner only in a turn that talks of dating.
_MET = re.compile(r"\b(?:i|we)\s+(?:(?:just|finally|then|recently)\s+)*met\s+"
                  r"(?-i:[A-Z][a-z]+)\b(?! (?-i:[A-Z]))", re.IGNORECASE)
_ROMANCE = re.compile(r"\b(?:date|dates|dating|dated|single|relationship|in love|fell for|"
                      r"asked me out|swip\w*|tinder|hinge|bumble|chemistry|boyfriend|girlfriend|"
                      r"partner|romance|romantic)\b", re.IGNORECASE)


def mentions(text: str) -> set[str]:
    """The attributes ``text`` uses words of; a word inside a longer phrase of another
    attribute counts for that one only ("flat white" is a drink, not a flat)."""
    spans = [(m.start(), m.end(), a) for a, rx in _PATTERNS.items() for m in rx.finditer(text)]
    return {a for s, e, a in spans
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)}


def asked(question: str) -> set[str]:
    """The attributes a question asks for ("Which city is Maya living in?": home); not
    those of someone's thing ("What diet do Nate's turtles have?")."""
    if _EVENTFUL.search(question):
        return set()
    for m in _THINGS_OF.finditer(question):
        if not mentions(m.group(1)) and m.group(1).lower() not in _ASK_ADJECTIVES:
            return set()
    return {a for rx, a in _ASKED if rx.search(question)}


#: "Nate's turtles": a question about a person's thing, unless the thing is the attribute.
_THINGS_OF = re.compile(r"\b[A-Z][a-z]+'s\s+([a-z-]+)")
_ASK_ADJECTIVES = frozenset("current new latest usual go-to favourite favorite main "
                            "present former previous old first".split())


def about(text: str, *, speaker: str | None, names: Iterable[str] = (),
          inherited: Iterable[str] = ()) -> dict[str, set[str]]:
    """Who -> the attributes ``text`` asserts something about. ``speaker`` (lower-cased
    name or handle) is who "I" is; a clause that opens with one of ``names`` ("Maya
    started at Siemens") is about that person. Questions, hypotheticals, plans and other
    people's news are skipped; a clause with no person in it ("Life in Porto is good")
    is the speaker's. ``inherited``: the attributes of the statement this one corrects
    (recorded on write, ``provenance["topics"]``): "Oops, not Lisbon: Porto!" names none."""
    known = {n.lower() for n in names}
    caseless = capitalises_nothing(text)
    # a clause may take its value from another clause of the turn: "I'm with Riley now.
    # We got together today.", "The van dropped the last boxes in Oslo, so that's home now"
    # (read only when a clause needs it: most turns name no attribute at all)
    seen: list[set[str]] = []

    def borrowed() -> set[str]:
        if not seen:
            seen.append(set() if caseless else _values_in(text, known))
        return seen[0]
    def said_of(part: str) -> set[str]:  # by its words, else by what it names
        return _valued(_said(part), part, known, caseless, borrowed) \
            or _named_only(part, known, caseless)
    out: dict[str, set[str]] = {}
    if speaker and inherited:
        out[speaker] = set(inherited) & SINGLE_TOPICS
    for clause in clauses(text):
        if (clause.endswith("?") and not _RHETORICAL.match(clause)) \
                or _QUESTION.match(clause) or _HYPOTHETICAL.search(clause):
            continue
        if _TENTATIVE.search(clause) or (_ECHO.match(clause) and not _FIRST.search(clause)):
            continue
        reported = _REPORTED.search(clause)
        if reported and reported.group(1).lower() in known:
            found = _valued(_said(reported.group(2)), reported.group(2), known, caseless)
            if found:
                out.setdefault(reported.group(1).lower(), set()).update(found)
            continue
        known_me = _YOU_KNOW_ME.match(clause)
        if speaker and known_me:  # "You know me: green tea, always."
            rest = clause[known_me.end():]
            found = said_of(rest)
            if found:
                out.setdefault(speaker, set()).update(found)
            continue
        body = _HEADER.sub("", clause)
        if speaker and _COLLEAGUES_AT.search(body):  # "my boss at Lumen Optics is nice"
            out.setdefault(speaker, set()).add("work")
            continue
        if speaker and (headed := _headed(clause, body, known)):
            out.setdefault(speaker, set()).update(headed)  # "Car update: a Skoda Octavia"
            continue
        upkeep = _UPKEEP.search(clause) if speaker else None
        if upkeep and mentions(upkeep.group(0)) & {"car"} \
                and not _SOMEONE.search(upkeep.group(0)) and not _OWNED.search(upkeep.group(0)):
            out.setdefault(speaker, set()).add("car")  # "the BMW i3 needs new tyres again"
            continue
        if _OTHER.match(clause) or _OTHER.match(body):
            continue
        first = clause.split(None, 1)[0].strip(",.:!'\"").lower() if clause.split() else ""
        # "Maya's job at Siemens ...", "Oskar Adeyemi's red Fiat ...": about that person,
        # through their thing's own words, as "my ..."
        owner = next((n for n in sorted(known, key=len, reverse=True)
                      if clause.lower().startswith(n + "'s ")), None)
        possessive = _POSSESSIVE.match(body)
        if owner:
            found = _valued(_possessed(clause[len(owner) + 3:]) | status_change(clause), clause,
                            known, caseless, borrowed)
            if found:
                out.setdefault(owner, set()).update(found)
            continue
        if first in known:
            who = first
        elif speaker and possessive:
            found = _valued(_possessed(body[possessive.end():]) | status_change(body), body, known,
                            caseless, borrowed)
            if found:
                out.setdefault(speaker, set()).update(found)
            continue
        elif speaker and _FIRST.search(clause) and not (_YOU.search(clause)
                                                        and not _SUBJECT_I.search(clause)):
            who = speaker  # not "Clare tells me you've been on the radio": yours, not mine
        elif speaker and _ELIDED.match(clause) and not _SOMEONE.search(clause):
            who = speaker  # "actually working at kestrel now": chat drops the "I"
        elif speaker and _home_since(clause):
            out.setdefault(speaker, set()).add("home")  # "Wrocław since the 1st!"
            continue
        elif speaker and not _SOMEONE.search(clause) and not _THING.match(clause) \
                and (_verb(clause) or status_change(clause)):
            who = speaker  # "Nothing beats rooibos in the morning" is the speaker's too
        else:
            continue
        found = said_of(clause)
        if who == speaker and _BOUGHT_IT.match(clause):  # "test drove a Golf and bought it"
            found = found | (mentions(text) & {"car", "phone"})
        moved = _MOVED_ORG.search(clause)
        if moved and moved.group(1).lower() not in places() \
                and ("home" in found or re.search(r"(?i)\bfrom\b", moved.group(0))):
            found = (found - {"home"}) | {"work"}
        if who == speaker and _MET.search(clause) and _ROMANCE.search(_IDIOM.sub(" ", text)):
            found = found | {"partner"}
        if found:
            out.setdefault(who, set()).update(found)
    if speaker:
        for m in _FAREWELL.finditer(text):
            value = m.group("v")
            if not _SOMEONE.search(value) and not _TENTATIVE.search(text):
                found = mentions(value) or _values_in(value, known, opener=False) - {"partner"}
                if found:
                    out.setdefault(speaker, set()).update(found)
    return out


#: A clause whose subject chat leaves out: it opens with the verb ("Moved to Leeds last
#: week", "actually working at Kestrel now", "Writing to you from our new house").
_ELIDED = re.compile(r"^(?:(?:actually|just|finally|now|officially|still|currently|also|"
                     r"already|recently|basically|literally|honestly|ok|okay|so|well|and)[\s,]+)*"
                     r"(?!(?:nothing|something|anything|everything|morning|evening|thing|"
                     r"things|wedding|spring|ceiling|speed|seed|need|feed|bed|red)\b)"
                     r"(?:[a-z]{3,}ing|[a-z]{3,}ed|got|left|joined|started|quit|moved|bought|"
                     r"sold|picked up|traded|swapped|took|became|found|signed)"
                     r"\s+(?:at|in|to|for|from|with|into|as|my|our|a|an|the|back|it|one)\b",
                     re.IGNORECASE)
#: "Wrocław since the 1st", "still in Leeds since March": a place and how long.
_SINCE = re.compile(r"^(?:(?:and|still|now|yes|so)\W+)*(?:in\s+)?"
                    r"(?P<p>[^\W\d_][\w'.-]*(?:\s+[^\W\d_][\w'.-]*){0,2}?)\s+since\b",
                    re.IGNORECASE)


#: A car is talked about through its upkeep, with "the" for one's own: "the Yaris needs
#: new tyres again", "the van failed its MOT".
_UPKEEP = re.compile(r"^(?:(?:ok|okay|so|well|and|sadly|ugh)[\s,]+)*(?:the|our)\s+.{1,40}?\b"
                     r"(?:needs? (?:new|a new|an?|its|some)\b|"
                     r"broke down|won't start|wouldn't start|is in the (?:shop|garage)|"
                     r"died|is dead|gave up the ghost|(?:got|was|is) (?:written off|totall?ed|"
                     r"stolen|scrapped|towed away)|"
                     r"failed its|passed its|got (?:a )?(?:dent|scratch|flat|ticket))",
                     re.IGNORECASE)
_OWNED = re.compile(r"\b\w+(?:'s|s')\s")  # "the neighbours' car": someone else's
#: "Update your address book: Ines Fernandes, Lisbon": the speaker's new address.
_ADDRESS_BOOK = re.compile(r"\baddress book\b\W+(?P<v>.+)$", re.IGNORECASE)


def _headed(clause: str, body: str, known: set[str]) -> set[str]:
    """The attribute a short header names ("New city, who dis: Austin!", "Car update: a
    Skoda Octavia", "Relationship status: taken") when what follows it is a value of it,
    or a new address given for the address book."""
    book = _ADDRESS_BOOK.search(clause)
    if book:
        return {"home"} if "home" in _values_in(book.group("v"), known, opener=False) \
            else set()
    if body == clause or _TENTATIVE.search(clause) or _OTHER.match(body) \
            or _SOMEONE.search(body) or _POSSESSIVE.match(body):
        return set()  # "Work update: my manager only drinks espresso" is the manager's
    wanted = mentions(clause[:len(clause) - len(body)])
    if not wanted:
        return set()
    named = _values_in(body, known, opener=False) | ({"car", "drink", "diet", "phone"}
                                                      & mentions(body))
    if re.match(r"(?i)(?:taken|single|engaged|married)\b", body):
        named.add("partner")
    return wanted & named


def _verb(clause: str) -> bool:
    """Whether ``clause`` says something: a finite verb, not a plural of the attribute's
    things ("Oat flat whites, nice." names a drink and asserts nothing)."""
    return any(not _thing(m.group(0).lower()) for m in _VERB.finditer(clause))


def _thing(word: str) -> bool:
    """An attribute's thing ending in s ("lattes", "whites", "rooibos"), not a verb."""
    return word.endswith("s") and len(word) > 4 and word.isalpha() and word not in _VERBS_S \
        and (word in _WORDS or word[:-1] in _WORDS or word[:-2] in _WORDS)


_VERBS_S = frozenset("lives works drives drinks moves rents dates quits".split())


def _home_since(clause: str) -> bool:
    m = _SINCE.match(clause)
    return bool(m) and m.group("p").lower() in places() and not _TRAVEL.search(clause)


def _said(clause: str) -> set[str]:
    """The attributes a clause speaks of: by their words, or by what happened to them."""
    return mentions(_IDIOM.sub(" ", clause)) | status_change(clause)


def status_change(text: str) -> set[str]:
    """The attributes ``text`` says ended or changed without naming a value ("we broke
    up", "they let me go")."""
    return {a for a, rx in _STATUS_OF if rx.search(text)}


_NAMED_RUN = re.compile(r"(?<![\w'])[" + "A-Z\u00c0-\u00de" + r"][\w'&.-]*"
                        r"(?:\s+(?:[A-Z\u00c0-\u00de][\w'&.-]*|de|la|of|&))*")


def _values_in(text: str, known: set[str], *, opener: bool = True) -> set[str]:
    """The named attributes ``text`` names a possible value of."""
    return set(values_named(text, known, opener=opener).values())


def values_named(text: str, known: Iterable[str] = (), *,
                 opener: bool = True) -> dict[str, str]:
    """Name -> the attribute it can be a value of, for the names in ``text`` (not those of
    ``known`` people): a known place (home), a name of two or more capitalised words that
    is no place (an organisation: work), one capitalised word inside a clause (a person:
    partner). ``opener``: the first word of a clause is capitalised anyway and names
    nothing by itself."""
    known = {k.lower() for k in known}
    found: dict[str, str] = {}
    known_places = places()
    for clause in (clauses(text) if opener else [text]):
        for m in _NAMED_RUN.finditer(clause):
            words = [w.rstrip(".'") for w in m.group(0).split()]
            while words and (words[0].lower() in _NOT_NAMES or words[0].lower() in known
                             or words[0].lower().removesuffix("'s") in known):
                words = words[1:]
            if not words:
                continue
            name = " ".join(words).lower()
            place = next((" ".join(words[:n]).lower() for n in range(len(words), 0, -1)
                          if " ".join(words[:n]).lower() in known_places), None)
            if place and not re.match(r"\s+and\s+I\b", clause[m.end():]):
                found[place] = "home"
            elif len(words) >= 2:
                found[name] = "work"
            elif opener and m.start() > 0 and name not in _WORDS and not name.endswith("ing"):
                found[name] = "partner"
    return found


def attributes(text: str) -> set[str]:
    """The attributes ``text`` talks about at all: by their words, or by a place or an
    organisation it names (what a correction that follows it corrects)."""
    found = mentions(text) | status_change(text)
    for clause in clauses(text):
        found |= _named_only(clause, set())
    return found


def _named_only(clause: str, known: set[str], caseless: bool = False) -> set[str]:
    """The attribute a clause using no word of any states by what it names: a place one
    is in or went to (home), an organisation one is at or joined (work). ``caseless``:
    the writer capitalises nothing ("moving to glasgow lol"), so a place is any word
    sequence the gazetteer knows."""
    found: set[str] = set()
    known_places = places()
    for m in (_AT_PLACE_ANY if caseless else _AT_PLACE).finditer(clause):
        words = m.group(1).rstrip(".'-").split()
        if any(" ".join(words[:n]).lower() in known_places for n in range(len(words), 0, -1)):
            if not _TRAVEL.search(clause):
                found.add("home")
            break
    for m in _AT_ORG.finditer(clause):
        name = m.group(1).rstrip(".'")
        low = name.lower()
        if low in known_places or any(w.lower() in _NOT_NAMES | known for w in name.split()) \
                or low.split()[-1] in _VENUES:
            continue
        found.add("work")
        break
    return found


def _valued(found: set[str], clause: str, known: set[str], caseless: bool = False,
            borrowed: Callable[[], set[str]] = set) -> set[str]:
    """``found`` without the named-value attributes when ``clause`` names nothing but the
    people it is about (:data:`NAMED_TOPICS`), unless its turn names a value of that
    attribute elsewhere (``borrowed``). A writer who capitalises nothing (``caseless``)
    names things in lower case: their clauses are taken as they are."""
    if not found & NAMED_TOPICS or _STATUS.search(clause):
        return found
    if caseless:  # a place can still be looked up; employers and people cannot
        return found if "home" not in found or _named_only(clause, known, True) \
            else found - {"home"}
    for m in _CAPITALISED.finditer(clause):
        word = m.group(0).lower().rstrip(".'")
        if word in _NOT_NAMES or word in known or word.removesuffix("'s") in known:
            continue
        if m.start() == 0 and (word in _WORDS or word.endswith("ing")):
            continue  # "Neighbours loved it", "Relocating was chaos"
        return found
    return found - (NAMED_TOPICS - borrowed())


def _possessed(rest: str) -> set[str]:
    """The attributes "my <rest>" asserts: the thing's own words, else (after a copula)
    its complement's."""
    copula = _COPULA.search(rest)
    end = next((m for m in _NP_END.finditer(rest)  # "these days" is a noun, not a verb
                if not _DETERMINED.search(rest[:m.start()])), None)
    if copula and (end is None or copula.start() <= end.start()):
        thing, complement = rest[:copula.start()], rest[copula.end():]
    else:  # the thing's own verb comes first: "our office moved ... and everyone is lost"
        thing, complement = (rest[:end.start()] if end else rest), ""
    return mentions(_IDIOM.sub(" ", thing)) or mentions(_IDIOM.sub(" ", complement))
