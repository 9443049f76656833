"""Normalising text for the injection guard, so cheap obfuscation does not hide a rule.

Invisible characters are removed and counted (legitimate uses excepted: emoji ZWJ
sequences, ZWJ/ZWNJ inside scripts that need them, a leading BOM, flag tag sequences,
single variation selectors after emoji or ideographs); NFKC folds full-width and
compatibility forms; accents are stripped and common Cyrillic/Greek homoglyphs mapped to
Latin; letter-spaced words and leetspeak are rejoined around where they occur; text
hidden in tag characters, variation selectors, base64 or hex is decoded.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Any, Iterator

__all__ = ["hidden", "fold", "plain", "despace", "deleet", "rewritten", "decoded", "SPACED",
           "LEETISH", "WS"]

#: Cyrillic / Greek / other letters that render like Latin ones.
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ɡ": "g", "ɑ": "a", "ı": "i", "ʏ": "y", "ӏ": "l",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I",
    "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s"})
#: A word with a letter and a digit (or @/$) inside it: "1gn0re", "pr3vious", "s@y".
_LEET_TOKEN = re.compile(r"(?<![\w@$])(?=[\w@$]*[A-Za-z])[\w@$]*[A-Za-z@$][013457@$][\w@$]*"
                         r"|(?<![\w@$])[013457@$][\w@$]*[A-Za-z][\w@$]*")
SPACED = re.compile(r"(?<![\w])(?:\w[ ._*\-/|+]{1,3}){3,}\w(?![\w])")
WS = re.compile(r"\s+")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{24,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){16,}\b")
_WORDY = re.compile(r"[A-Za-z]{2,}")

_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad"
                        "\u034f\u115f\u1160\u3164")
_SCRIPT_JOINERS = ((0x0600, 0x08FF), (0x0900, 0x0DFF), (0x1780, 0x17FF))  # ZWJ/ZWNJ are legit


_INVISIBLE = re.compile("[\u00ad\u034f\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u2064\u2066-\u2069\u3164\ufe00-\ufe0f\ufeff"
                        "\U000e0000-\U000e007f\U000e0100-\U000e01ef]")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
                        "\u064b-\u065f\u0670\u093c]")  # + Arabic harakat, Devanagari nukta


def _is_pictograph(ch: str) -> bool:
    o = ord(ch)
    return 0x1F000 <= o < 0xE0000 or 0x2600 <= o <= 0x27BF or o == 0xFE0F or \
        0x1F3FB <= o <= 0x1F3FF or o in (0x2640, 0x2642, 0x20E3)


def _is_selector(ch: str) -> bool:
    o = ord(ch)
    return 0xE0100 <= o <= 0xE01EF or 0xFE00 <= o <= 0xFE0F


def _in_joining_script(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _SCRIPT_JOINERS)


def hidden(text: str) -> tuple[str, list[tuple[str, float, str]], str]:
    """Remove invisible characters; report them as ``(rule, weight, evidence)``; return the
    payload decoded from tag characters / variation selectors.

    Legitimate uses are kept quiet: ZWJ inside emoji sequences, ZWJ/ZWNJ between letters
    of scripts that need them, a leading BOM, and flag emoji tag sequences (🏴 + tags)."""
    if text.isascii() or not _INVISIBLE.search(text):
        return text, [], ""
    out: list[str] = []
    counts = {"tags": 0, "bidi": 0, "zero_width": 0, "selectors": 0}
    payload: list[str] = []
    n = len(text)
    flag_run = False  # inside a run of tag characters that follows 🏴 (a flag emoji)
    for i, ch in enumerate(text):
        o = ord(ch)
        if 0xE0000 <= o <= 0xE007F:
            if not (i and 0xE0000 <= ord(text[i - 1]) <= 0xE007F):
                flag_run = i > 0 and text[i - 1] == "\U0001F3F4"
            if not flag_run:
                counts["tags"] += 1
                if 0xE0020 <= o <= 0xE007E:
                    payload.append(chr(o - 0xE0000))
            continue
        if 0xE0100 <= o <= 0xE01EF or 0xFE00 <= o <= 0xFE0F:
            # one variation selector after an emoji or ideograph is how they are meant to
            # be used; runs of them (or one after plain text) can carry a hidden payload
            prev = text[i - 1] if i else ""
            if prev and (_is_pictograph(prev) or unicodedata.category(prev) == "Lo") \
                    and not (i + 1 < n and _is_selector(text[i + 1])):
                out.append(ch)
            else:
                counts["selectors"] += 1
                if 0xE0100 <= o <= 0xE01EF and o - 0xE0100 < 128:
                    payload.append(chr(o - 0xE0100))
            continue
        if ch in _BIDI:
            counts["bidi"] += 1
            continue
        if ch in _ZERO_WIDTH:
            prev = text[i - 1] if i else ""
            nxt = text[i + 1] if i + 1 < n else ""
            legit = (ch == "\ufeff" and i == 0) or (
                ch in "\u200c\u200d" and prev and nxt and (
                    _is_pictograph(prev) or _is_pictograph(nxt)
                    or (_in_joining_script(prev) and _in_joining_script(nxt))))
            if not legit:
                counts["zero_width"] += 1
            continue
        out.append(ch)
    reasons = []
    weights = {"tags": 0.9, "bidi": 0.6, "zero_width": 0.6, "selectors": 0.6}
    for kind, count in counts.items():
        if count:
            w = weights[kind] if kind != "zero_width" or count > 1 else 0.35
            reasons.append((f"invisible_{kind}", w,
                            f"{count} invisible {kind.replace('_', '-')} character(s)"))
    return "".join(out), reasons, "".join(payload)


def fold(text: str) -> tuple[str, bool]:
    """NFKC, accents off, homoglyphs to Latin (whitespace kept); and whether a word mixed
    Latin with look-alike letters (a homoglyph trick rather than a foreign language).

    Only words that mix scripts are mapped to Latin: a Russian or Greek sentence keeps
    its own letters, so the rules written for those languages still see them. Arabic
    vowel marks and tatweel, the Devanagari nukta and Arabic alef variants are folded
    too, so a rule need not spell every optional mark."""
    text = plain(text)
    mixed = False
    if not text.isascii():
        if _HOMOGLYPH_CHARS.search(text):
            words = text.split(" ")
            for i, w in enumerate(words):
                if not w.isascii() and _mixed_word(w):
                    mixed = True
                    words[i] = w.translate(_HOMOGLYPHS)
            text = " ".join(words)
    return text, mixed


def plain(text: str) -> str:
    """NFKC, combining marks off, Arabic letter variants folded: what every rule sees
    (rule tables are passed through it too, so they spell letters the same way)."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    text = unicodedata.normalize("NFC", _COMBINING.sub("", unicodedata.normalize("NFD", text)))
    return text.translate(_SCRIPT_FOLD)


#: Arabic alef variants and alef maqsura to their plain letters, tatweel removed.
_SCRIPT_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ـ": None})


def _mixed_word(word: str) -> bool:
    latin = other = False
    for c in word:
        if c.isascii():
            latin = latin or c.isalpha()
        elif c in _HOMOGLYPH_KEYS:
            other = True
    return latin and other


_HOMOGLYPH_KEYS = frozenset(chr(k) for k in _HOMOGLYPHS)
_HOMOGLYPH_CHARS = re.compile("[" + "".join(sorted(_HOMOGLYPH_KEYS)) + "]")
LEETISH = re.compile(r"[A-Za-z][013457@$]|[013457@$][A-Za-z]")


def despace(text: str) -> str:
    """``i g n o r e  a l l`` -> ``ignore all``: single letters joined, wide gaps kept."""
    def join(m: re.Match[str]) -> str:
        words = re.split(r"\s{2,}|\s*/\s*", m.group(0))
        return " ".join(re.sub(r"[ ._*\-|+]", "", w) for w in words)
    return SPACED.sub(join, text)


def deleet(text: str) -> str:
    return _LEET_TOKEN.sub(lambda m: m.group(0).translate(_LEET), text)


def rewritten(text: str, pattern: re.Pattern[str], rewrite: Any, context: int = 120) -> str:
    """``rewrite`` applied only around the matches of ``pattern`` (each with ``context``
    characters either side), the windows joined: a long text with one letter-spaced
    word is rescanned in a few hundred characters, not in full. Empty if no match."""
    spans: list[list[int]] = []
    for m in pattern.finditer(text):
        lo, hi = max(0, m.start() - context), m.end() + context
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = hi
        else:
            spans.append([lo, hi])
    return " ... ".join(WS.sub(" ", rewrite(text[lo:hi])).strip() for lo, hi in spans)


def decoded(text: str) -> Iterator[tuple[str, str]]:
    """Readable text hidden as base64 or hex (a SHA-256 or a token decodes to noise)."""
    if not any(len(w) >= 24 for w in text.split()) and not _HEX.search(text):
        return
    for m in _B64.finditer(text):
        raw = m.group(0)
        if raw.isalpha() and (raw.islower() or raw.isupper()):
            continue  # a long plain word, not base64
        try:
            data = base64.b64decode(raw.replace("-", "+").replace("_", "/")
                                    + "=" * (-len(raw) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        plain = _readable(data)
        if plain:
            yield "base64", plain
    for m in _HEX.finditer(text):
        try:
            data = bytes.fromhex(re.sub(r"[ :]", "", m.group(0)))
        except ValueError:
            continue
        plain = _readable(data)
        if plain:
            yield "hex", plain


def _readable(data: bytes) -> str:
    if len(data) < 12:
        return ""
    try:
        plain = data.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    printable = sum(c.isprintable() or c in "\n\t" for c in plain)
    words = _WORDY.findall(plain)
    letters = sum(len(w) for w in words)
    return plain if printable >= 0.95 * len(plain) and len(words) >= 3 and \
        letters >= 0.5 * len(plain) else ""
