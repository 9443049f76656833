"""The decision step: ADD, UPDATE (supersede), DELETE (tombstone) or NOOP for each fact.

Each extracted fact is compared with its nearest existing memories of the fact kinds in
the same owner scope (user, agent, cube; not session: facts outlive sessions):

1. an exact duplicate (same normal form) is a NOOP, without asking anyone;
2. with no neighbour above ``min_similarity`` the fact is simply added;
3. a near duplicate (cosine >= ``near_duplicate``) that the rules see no conflict in
   is a NOOP;
4. otherwise the LLM decides, if there is one and its reply validates (the action is one
   of the four, an UPDATE/DELETE names one of the numbered neighbours, and is about the
   same subject and attribute as the new fact, read by the same statement rules as the
   write path: a small model answered "UPDATE 1" to almost everything, and rewrote
   "Maya's partner is Tom." into a job); if not, the rules decide (a negation retires the
   memory it negates, a new value of a single-valued slot such as home or job supersedes
   the old one, anything else is added). With no LLM the rules decide directly.

Applying a decision goes through the public :class:`~memvault.Vault` calls, so an UPDATE
writes a new version and closes the old one (``history`` and ``as_of`` keep it) and a
DELETE is a restorable tombstone with the reason in the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .. import _validate as check
from ..errors import Conflict, ModelError, NotFound
from ..models.llm import LLM
from ..types import MemoryItem
from .facts import FACT_KINDS, MAX_FACT_CHARS, Fact, norm_hash, normalize, parse_json_reply
from .rules import content_words, is_negation, slots, subject

if TYPE_CHECKING:
    from ..vault import Vault

log = logging.getLogger("memvault.reader")

__all__ = ["Decision", "DecideConfig", "Decider", "ACTIONS", "DECIDE_SCHEMA"]

ACTIONS = ("ADD", "UPDATE", "DELETE", "NOOP")
#: Bounded to fit the decision's 128-token budget (see ``extract.EXTRACT_SCHEMA``).
DECIDE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"action": {"type": "string", "enum": list(ACTIONS)},
                   "target": {"type": ["integer", "null"]},
                   "text": {"type": ["string", "null"], "maxLength": 160},
                   "reason": {"type": "string", "maxLength": 60}},
    "required": ["action", "target", "text", "reason"], "additionalProperties": False,
}
SYSTEM = (
    "You keep a memory store consistent. Compare the NEW fact with the EXISTING memories "
    "and choose one action: ADD if the new fact is new information; UPDATE if it changes "
    "an existing memory about the same thing (target = that memory's number, text = the "
    "corrected memory); DELETE if it says an existing memory is no longer true (target = "
    "its number); NOOP if it is already known. Reply with JSON only: "
    '{"action": "ADD|UPDATE|DELETE|NOOP", "target": number or null, "text": string or '
    'null, "reason": "short reason"}.'
)
EXAMPLE = [  # one worked example (see extract.EXAMPLE for why)
    {"role": "user", "content": "EXISTING:\n1. Tom lives in Rome.\n2. Tom likes tea.\n"
                                "NEW: Tom moved to Milan."},
    {"role": "assistant", "content": '{"action": "UPDATE", "target": 1, "text": '
                                     '"Tom lives in Milan.", "reason": "Tom moved"}'},
]
_OWNER_SCOPE = ("user_id", "agent_id", "cube_id")


@dataclass(frozen=True, slots=True)
class DecideConfig:
    #: Neighbours compared with each fact.
    candidates: int = 5
    #: Below this cosine a memory is unrelated: with no neighbour above it, ADD directly.
    min_similarity: float = 0.35
    #: Near-duplicate threshold (cosine) for dedup; > 1 disables near dedup.
    near_duplicate: float = 0.92
    #: Exact (normal-form hash) dedup; off only to measure what dedup saves.
    exact_dedup: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    fact: Fact
    #: The existing memory the action is about (UPDATE, DELETE, NOOP).
    target: MemoryItem | None = None
    #: The new text for an UPDATE.
    text: str | None = None
    reason: str = ""
    #: "exact", "near", "llm", "rules" (no LLM), "fallback" (LLM failed), "guard" (the
    #: LLM's UPDATE/DELETE was about another subject or attribute), "new".
    decided_by: str = "rules"
    similarity: float | None = None
    #: The version written by :meth:`Decider.apply` (ADD/UPDATE/DELETE).
    item: MemoryItem | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "fact": self.fact.text, "kind": self.fact.kind,
                "target": self.target.id if self.target else None, "text": self.text,
                "reason": self.reason, "decided_by": self.decided_by,
                "similarity": None if self.similarity is None else round(self.similarity, 4),
                "item": self.item.id if self.item else None, "error": self.error}


@dataclass(slots=True)
class _Neighbour:
    item: MemoryItem
    similarity: float


@dataclass(slots=True)
class Decider:
    """Decides and applies, fact by fact, so each fact sees the ones written before it."""

    vault: "Vault"
    llm: LLM | None = None
    config: DecideConfig = field(default_factory=DecideConfig)

    def process(self, facts: Sequence[Fact], scope: Mapping[str, str | None]) -> list[Decision]:
        owner = {k: scope.get(k) for k in _OWNER_SCOPE if scope.get(k)}
        return [self.apply(self.decide(fact, owner), owner) for fact in facts]

    # -- deciding ---------------------------------------------------------------------------
    def decide(self, fact: Fact, owner: Mapping[str, str]) -> Decision:
        seen = self._already_read(fact, owner)
        if seen is not None:
            return Decision("NOOP", fact, seen, reason="already read from the same turn",
                            decided_by="exact", similarity=1.0)
        if self.config.exact_dedup:
            same = self.vault.list(**owner, filters={"kind": list(FACT_KINDS), "metadata": {
                "norm_hash": fact.norm_hash}}, limit=1).items
            if same:
                return Decision("NOOP", fact, same[0], reason="exact duplicate",
                                decided_by="exact", similarity=1.0)
        near = [n for n in self._neighbours(fact, owner)
                if n.similarity >= self.config.min_similarity or _rule_related(fact, n.item)]
        if not near:
            return Decision("ADD", fact, reason="no related memory", decided_by="new")
        by_rules = rule_decision(fact, near, self.config)
        if by_rules.decided_by == "near" or self.llm is None:
            return by_rules
        try:
            asked = self._ask_llm(fact, near)
        except (ModelError, ValueError) as exc:
            log.info("decision fell back to rules: %s", exc)
            return replace(by_rules, decided_by="fallback", error=str(exc)[:300])
        if asked.action in ("UPDATE", "DELETE") and asked.target is not None and \
                (by_rules.action, by_rules.target) != (asked.action, asked.target) and \
                not _claims_agree(fact, asked.target, asked.action):
            return replace(by_rules, decided_by="guard", error=(
                f"LLM {asked.action} of {asked.target.text!r} overruled by the rules: it "
                f"is not about the subject and attribute {fact.text!r} states"))
        return asked

    def _already_read(self, fact: Fact, owner: Mapping[str, str]) -> MemoryItem | None:
        """A version (any, even superseded) written from the same turn with the same text.

        Re-reading a turn (a job restarted mid-batch) must not re-apply an old value over
        a newer one, while a new turn that restates an old value still may."""
        if not fact.source_ids:
            return None
        q = check.row_query(owner, {"kind": list(FACT_KINDS)}, status=None)
        q.metadata["norm_hash"], q.all_versions = fact.norm_hash, True
        sources = set(fact.source_ids)
        for row in self.vault.store.select(q):
            if sources & set(row.item.metadata.get("source_turns") or ()):
                return row.item
        return None

    def _neighbours(self, fact: Fact, owner: Mapping[str, str]) -> list[_Neighbour]:
        q = check.row_query(owner, {"kind": list(FACT_KINDS)})
        found = self.vault.searcher.search(fact.text, q, self.config.candidates)
        if not found:
            return []
        vecs = self.vault.store.embeddings([c.seq for c in found])
        query = self.vault.embedder.embed([fact.text])[0]
        out = [_Neighbour(c.row.item, float(np.dot(query, vecs[c.seq])))
               for c in found if c.seq in vecs]
        return sorted(out, key=lambda n: -n.similarity)

    def _ask_llm(self, fact: Fact, near: list[_Neighbour]) -> Decision:
        assert self.llm is not None
        listing = "\n".join(f"{i}. {n.item.text}" for i, n in enumerate(near, 1))
        messages = [{"role": "system", "content": SYSTEM}, *EXAMPLE,
                    {"role": "user", "content": f"EXISTING:\n{listing}\nNEW: {fact.text}"}]
        raw = parse_json_reply(self.llm.complete(messages, max_tokens=128, temperature=0.0,
                                                 json_schema=DECIDE_SCHEMA))
        if not isinstance(raw, Mapping):
            raise ValueError("decision reply is not an object")
        action = str(raw.get("action", "")).strip().upper()
        if action not in ACTIONS:
            raise ValueError(f"unknown action {raw.get('action')!r}")
        reason = raw.get("reason") if isinstance(raw.get("reason"), str) else ""
        target = _target(raw.get("target"), near)
        if action in ("UPDATE", "DELETE") and target is None:
            raise ValueError(f"{action} without a valid target: {raw.get('target')!r}")
        text = None
        if action == "UPDATE":
            text = raw.get("text")
            if not isinstance(text, str) or "\x00" in text or \
                    len(content_words(text) & content_words(fact.text)) * 2 < \
                    len(content_words(fact.text)):
                text = fact.text  # a missing or unrelated merge: the new fact as is
            text = " ".join(text.split())[:MAX_FACT_CHARS]
        return Decision(action, fact, target.item if target else None, text=text,
                        reason=reason[:300], decided_by="llm",
                        similarity=target.similarity if target else None)

    # -- applying ---------------------------------------------------------------------------
    def apply(self, decision: Decision, owner: Mapping[str, str]) -> Decision:
        fact = decision.fact
        turns = list(fact.source_ids[:50])
        if decision.action == "UPDATE" and decision.target is not None:
            target, text = decision.target, decision.text or fact.text
            meta = {**target.metadata, "norm_hash": norm_hash(text), "source_turns": turns,
                    "extractor": fact.extractor, "decided_by": decision.decided_by}
            meta.pop("said", None)
            if fact.extra.get("said"):  # when it was said, beside the date it states
                meta["said"] = fact.extra["said"]
            try:
                item = self.vault.update(target.id, text, kind=fact.kind, metadata=meta,
                                         event_time=fact.event_time,
                                         reason=decision.reason or f"superseded by: {text}")
                return replace(decision, item=item)
            except (Conflict, NotFound) as exc:  # deleted meanwhile: keep the fact anyway
                decision = replace(decision, action="ADD", target=None, error=str(exc))
        if decision.action == "DELETE" and decision.target is not None:
            try:
                item = self.vault.delete(decision.target.id,
                                         reason=decision.reason or f"contradicted by: {fact.text}")
                return replace(decision, item=item)
            except NotFound as exc:
                return replace(decision, action="NOOP", error=str(exc))
        if decision.action == "ADD":
            meta = {"norm_hash": fact.norm_hash, "source_turns": turns,
                    "extractor": fact.extractor, "decided_by": decision.decided_by}
            if fact.extra.get("said"):
                meta["said"] = fact.extra["said"]
            if fact.speaker:
                meta["speaker"] = fact.speaker
            prov = {"source": "reader", "turns": turns, "extractor": fact.extractor,
                    **({"llm": fact.extra["llm"]} if fact.extra.get("llm") else {})}
            item = self.vault.add(fact.text, kind=fact.kind, event_time=fact.event_time,
                                  metadata=meta, provenance=prov, **owner)
            return replace(decision, item=item)
        return decision


def _target(value: Any, near: list[_Neighbour]) -> _Neighbour | None:
    """A numbered neighbour (1-based; its id is accepted too); None if it names none."""
    if isinstance(value, str):
        hit = next((n for n in near if n.item.id == value.strip()), None)
        if hit is not None:
            return hit
        value = value.strip().lstrip("#")
        value = int(value) if value.isdigit() else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(near):
        return near[value - 1]
    return None


def _negates(fact: Fact, item: MemoryItem) -> bool:
    """``fact`` says "no longer <item>": same subject and most of item's content words."""
    who = subject(fact.text)
    if not is_negation(fact.text) or is_negation(item.text) or subject(item.text) != who:
        return False
    words = content_words(fact.text) - {who}
    return len(words & content_words(item.text)) >= min(2, len(words))


def _shared_slots(fact: Fact, item: MemoryItem) -> set[str]:
    """Single-valued slots both state for the same subject, with different wording."""
    if subject(item.text) != subject(fact.text) or normalize(item.text) == normalize(fact.text):
        return set()
    return slots(fact.text) & slots(item.text)


def _attributes(text: str) -> set[tuple[str, str]]:
    """(subject, attribute) pairs a fact states, read by the same rules as the write path
    ("Maya lives in Porto." -> ("maya", "home")), plus the reader's own slots."""
    from ..temporal.statements import statements

    who = subject(text)
    found = {(s.subject or who, s.attribute) for s in statements(text, names=None)}
    return found | {(who, slot) for slot in slots(text)}


def _claims_agree(fact: Fact, item: MemoryItem, action: str) -> bool:
    """May an LLM's UPDATE or DELETE of ``item`` stand for ``fact``? Only when both are
    about the same subject and the same attribute (or, for a DELETE, the fact negates
    the item): a small model must never rewrite an unrelated memory ("Maya's partner is
    Tom." into "Maya works as a teacher.")."""
    if subject(item.text) != subject(fact.text):
        return False
    if action == "DELETE" and _negates(fact, item):
        return True
    return bool(_attributes(fact.text) & _attributes(item.text))


def _rule_related(fact: Fact, item: MemoryItem) -> bool:
    return _negates(fact, item) or bool(_shared_slots(fact, item))


def rule_decision(fact: Fact, near: list[_Neighbour], config: DecideConfig) -> Decision:
    """The deterministic fallback (see the module docstring)."""
    for n in near:
        if _negates(fact, n.item):
            return Decision("DELETE", fact, n.item, reason=f"no longer true: {fact.text}",
                            similarity=n.similarity)
    for n in near:
        shared = _shared_slots(fact, n.item)
        if shared:
            return Decision("UPDATE", fact, n.item, text=fact.text,
                            reason=f"new value for {', '.join(sorted(shared))}",
                            similarity=n.similarity)
    best = near[0]
    if best.similarity >= config.near_duplicate:
        return Decision("NOOP", fact, best.item, reason="near duplicate", decided_by="near",
                        similarity=best.similarity)
    return Decision("ADD", fact, reason="new information", similarity=best.similarity)
