"""Near-duplicate writes: the memory an ``add`` restates, if the caller asked to know.

``Vault.add(text, dedup="noop" | "version")`` looks for an active memory of the same kind
and owner (user, agent, cube: not session, since a fact restated in a later session is
still the same fact) whose stored vector is within ``SearchConfig.dedup_threshold``
(cosine) of the new text's. A cosine alone merges too much: MiniLM puts "Ana has two
cats" and "Ana has three cats" at 0.97, "Maya lives in Lisbon" and "... in Porto" at 0.89,
so a candidate must also *state the same values*: the same numbers, the same names
(capitalised words inside a sentence), the same negation, and no state attribute
(home, job, ...) with another value (read by the same statement rules as current truth,
:mod:`memvault.temporal.statements`). Rewordings ("lives in" / "resides in", "has" /
"owns") pass; a changed value never does, and is left to current truth to supersede.

``benchmarks/dedup_quality.py`` measures the wrong-merge rate on a labelled set of
rewordings and near-miss pairs, next to the reader's dedup on the same pairs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..storage.base import RowQuery
from ..types import MemoryItem

if TYPE_CHECKING:  # numpy only when a dedup runs: a by-id read imports this module
    import numpy as np

    from .searcher import Searcher

__all__ = ["POLICIES", "policy", "same_values", "near_duplicate"]

#: "off": every add is a new memory; "noop": an add that restates a memory returns that
#: memory and writes nothing; "version": it writes a new version of that memory.
POLICIES = ("off", "noop", "version")
#: Neighbours compared with the new text (the nearest by the dense index).
_NEIGHBOURS = 5
_OWNER = ("user_id", "agent_id", "cube_id")

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,:]\d+)*")
_NUMBERS = frozenset("""zero one two three four five six seven eight nine ten eleven twelve
thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty
sixty seventy eighty ninety hundred thousand million first second third fourth fifth
sixth seventh eighth ninth tenth half twice once dozen""".split())
_NEGATIONS = frozenset("""not no never none nobody nothing nor n't cannot without
longer anymore""".split())
#: Capitalised words that are not names (sentence openers and pronouns).
_NOT_NAMES = frozenset("i i'm i've i'd i'll the a an my our we he she they it".split())


def policy(value: Any) -> str:
    """The dedup policy, checked (``InvalidInput`` names the choices)."""
    if value not in POLICIES:
        raise InvalidInput(f"dedup must be one of {', '.join(POLICIES)}", field="dedup")
    return value


def _values(text: str) -> tuple[set[str], set[str], set[str]]:
    """What a statement asserts beyond its wording: (numbers and negation, names, every
    word), lower-cased. Names are capitalised words (a sentence's opener too, unless it
    is a common one); another text names the same thing if it has the word in any case."""
    values: set[str] = set()
    names: set[str] = set()
    words: set[str] = set()
    start = True  # the first word of a sentence is capitalised anyway
    for match in _WORD.finditer(text):
        word = match.group()
        low = word.lower().replace("’", "'")
        words.add(low.removesuffix("'s"))
        if word[0].isdigit() or low in _NUMBERS:
            values.add(low)
        elif low in _NEGATIONS or low.endswith("n't"):
            values.add("not")
        elif word[0].isupper() and low not in _NOT_NAMES and \
                not (start and low in _COMMON_OPENERS):
            names.add(low.removesuffix("'s"))
        tail = text[match.end():match.end() + 2].lstrip(" ")
        start = tail[:1] in (".", "!", "?")
    return values, names, words


#: Openers of a sentence that are not names: a capital on them says nothing.
_COMMON_OPENERS = frozenset("""the a an this that these those my our your his her their
its it he she they we you i there here yes no so and but also today yesterday tomorrow
now then when what who where why how""".split())


def same_values(a: str, b: str) -> bool:
    """Do ``a`` and ``b`` assert the same values (numbers, names, negation, and no state
    attribute with two values)? Two rewordings do; two facts about one thing do not."""
    values_a, names_a, words_a = _values(a)
    values_b, names_b, words_b = _values(b)
    if values_a != values_b or not (names_a <= words_b and names_b <= words_a):
        return False
    from ..temporal.statements import statements

    held_a = {(s.subject, s.attribute): (s.value, s.holds) for s in statements(a)}
    held_b = {(s.subject, s.attribute): (s.value, s.holds) for s in statements(b)}
    return all(held_b[key] == value for key, value in held_a.items() if key in held_b)


def near_duplicate(searcher: "Searcher", item: MemoryItem, vector: "np.ndarray",
                   threshold: float) -> MemoryItem | None:
    """The active memory of ``item``'s kind and owner that ``item`` restates, if any: the
    most similar neighbour at cosine >= ``threshold`` that states the same values.

    ``vector`` is the new item's embedding, of the same input the store keeps for it, so
    the cosine is the one the stored vectors have with each other."""
    owner = {f: getattr(item, f) for f in _OWNER}
    query = RowQuery(scope={k: v for k, v in owner.items() if v is not None},
                     kinds=[item.kind])
    found = searcher.dense(vector, query, _NEIGHBOURS)
    if not found:
        return None
    rows = searcher.store.by_seqs([seq for seq, _ in found], query)
    stored = searcher.store.embeddings(list(rows))
    best: tuple[float, MemoryItem] | None = None
    for seq, row in rows.items():
        other = row.item
        if seq not in stored or any(getattr(other, f) != v for f, v in owner.items()):
            continue  # another owner's memory (None scopes match None only)
        cosine = float(vector @ stored[seq])
        if cosine >= threshold and (best is None or cosine > best[0]) and \
                same_values(item.text, other.text):
            best = (cosine, other)
    return None if best is None else best[1]
