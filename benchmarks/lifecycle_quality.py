"""What consolidation and linking give back, measured on conversations (issue 29).

Used by ``bench_lifecycle.py --locomo ... --gen ...``; every figure is computed here from
the public API on LoCoMo-format files (LoCoMo dev, the generated suite):

* topic titles: the share that are filler (every word a stop word, interjection, pronoun,
  chatter word or speaker name), and one conversation's titles;
* evidence coverage of session summaries: for questions whose evidence lies in one
  session, the share whose evidence turns keep at least half of their content words in
  that session's summary, against the summary's length (share of the session's tokens),
  beside the old centrality summary at the same length;
* entity-link precision on the hand-labelled pairs of ``data/link_labels_conv26.json``,
  for the old rule (any shared capitalised word) and the current one;
* recall@10 with search following the kept entity links vs not, per suite;
* consolidation cost per 1,000 turns, and the incremental pass after one turn changed.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from memvault import Vault
from memvault.evaluation import locomo
from memvault.retrieval.context import name_of
from memvault.scheduler import LinkConfig, consolidate, link_new
from memvault.scheduler.entities import entities
from memvault.scheduler.links import topical
from memvault.scheduler.summarize import (content_words, extractive, summarize_session,
                                          token_count)
from memvault.scheduler.topics import is_filler_title, participants

LABELS = Path(__file__).resolve().parent / "data" / "link_labels_conv26.json"


def load(path: str) -> list[locomo.Conversation]:
    """LoCoMo's loader, with a fallback date parser for the generated suite's formats."""
    try:
        return locomo.load(path)
    except Exception:  # noqa: BLE001 - another date format: parse it here
        pass
    from dateutil import parser as dates

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    convs = []
    for sample in data:
        c = sample["conversation"]
        conv = locomo.Conversation(str(sample.get("sample_id", f"conv-{len(convs)}")),
                                   (c["speaker_a"], c["speaker_b"]))
        for n in sorted(int(k.split("_")[1]) for k in c
                        if re.fullmatch(r"session_\d+", k) and c[k]):
            date = dates.parse(c[f"session_{n}_date_time"], fuzzy=True)
            date = date if date.tzinfo else date.replace(tzinfo=timezone.utc)
            for t in c[f"session_{n}"]:
                conv.turns.append(locomo.Turn(t["dia_id"], t["speaker"], t["text"], n, date))
        for q in sample["qa"]:
            conv.questions.append(locomo.Question(
                q["question"], str(q.get("answer", "")),
                locomo.normalize_evidence(q.get("evidence", [])), int(q["category"])))
        convs.append(conv)
    return convs


def _vault(work: Path, name: str, embedder: str) -> Vault:
    return Vault(work / f"{name}.db", embedder=embedder)


def _sessions(conv: locomo.Conversation) -> dict[int, list[locomo.Turn]]:
    out: dict[int, list[locomo.Turn]] = {}
    for t in conv.turns:
        out.setdefault(t.session, []).append(t)
    return out


# -- 1 + 6: titles and cost -----------------------------------------------------------------
def titles_and_cost(suites: dict[str, list[locomo.Conversation]], work: Path
                    ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for suite, convs in suites.items():
        all_titles, filler, examples = 0, [], {}
        turns = seconds = 0.0
        inc: dict[str, Any] = {}
        for conv in convs:
            vault = _vault(work, f"titles-{suite}-{conv.sample_id}", "hash")
            locomo.ingest(vault, conv)
            report = consolidate(vault)
            turns += report.turns_read
            seconds += report.seconds
            items = vault.list(user_id=conv.sample_id, limit=1000,
                               filters={"kind": "summary", "metadata": {"level": "topic"}}).items
            names = set(conv.speakers) | {n for i in vault.list(
                user_id=conv.sample_id, limit=1000).items for n in [name_of(i)] if n}
            names |= participants(t.text for t in conv.turns)
            got = sorted(i.metadata["title"] for i in items)
            all_titles += len(got)
            filler += [t for t in got if is_filler_title(t, names)]
            examples[conv.sample_id] = got
            if not inc:  # one turn added to one session: only that session is re-read
                last = conv.turns[-1]
                vault.add_messages([{"role": "user", "name": last.speaker,
                                     "content": "One more thing: I adopted a cat named Miso.",
                                     "timestamp": last.date}], user_id=conv.sample_id,
                                   session_id=f"{conv.sample_id}/session_{last.session}")
                again = consolidate(vault)
                inc = {"sessions_checked": again.sessions_checked,
                       "rewritten": dict(again.rewritten), "seconds": round(again.seconds, 3),
                       "vs_full": round(again.seconds / report.seconds, 4)}
            vault.close()
        out[suite] = {"conversations": len(convs), "topics": all_titles,
                      "filler_share": round(len(filler) / all_titles, 4) if all_titles else None,
                      "filler_titles": filler[:20], "titles": examples,
                      "seconds_per_1000_turns": round(1000 * seconds / turns, 3) if turns else None,
                      "incremental_after_one_turn": inc}
    return out


# -- 2: evidence coverage -----------------------------------------------------------------
def _kept(evidence: Iterable[str], summary: str) -> float:
    want = set().union(*(content_words(e) for e in evidence))
    return len(want & content_words(summary)) / len(want) if want else 1.0


def _centrality(title: str, lines: list[str], budget: int) -> str:
    """The summary consolidation wrote before issue 29, cut to the same token budget."""
    chars = 8 * budget
    text = extractive(title, lines, max_chars=max(80, chars))
    while token_count(text) > budget and chars > 80:
        chars = int(chars * 0.9)
        text = extractive(title, lines, max_chars=max(80, chars))
    return text


def coverage(suites: dict[str, list[locomo.Conversation]], ratios: list[float]
             ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for suite, convs in suites.items():
        curve = []
        for ratio in ratios:
            hits = base_hits = n = 0
            share_sum = 0.0
            used = total = 0
            for conv in convs:
                by_dia = {t.dia_id: t for t in conv.turns}
                summaries, baseline = {}, {}
                for s, turns in _sessions(conv).items():
                    tokens = sum(token_count(t.text) for t in turns)
                    budget = max(24, int(ratio * tokens))
                    title = f"Session {s}"
                    text = summarize_session(title, [(t.speaker, t.text, t.date) for t in turns],
                                             max_tokens=budget).text
                    summaries[s] = text
                    baseline[s] = _centrality(title, [f"{t.speaker}: {t.text}" for t in turns],
                                              budget)
                    used += token_count(text)
                    total += tokens
                for q in conv.questions:
                    ev = [by_dia[e] for e in q.evidence if e in by_dia]
                    if not ev or len(ev) != len(q.evidence) or len({t.session for t in ev}) != 1:
                        continue
                    n += 1
                    share = _kept([t.text for t in ev], summaries[ev[0].session])
                    share_sum += share
                    hits += share >= 0.5
                    base_hits += _kept([t.text for t in ev], baseline[ev[0].session]) >= 0.5
            curve.append({"ratio": ratio, "questions": n,
                          "coverage": round(hits / n, 4) if n else None,
                          "mean_kept": round(share_sum / n, 4) if n else None,
                          "centrality_coverage": round(base_hits / n, 4) if n else None,
                          "tokens_share": round(used / total, 4) if total else None})
        out[suite] = curve
    return out


# -- 4: links -------------------------------------------------------------------------------
def link_precision(conv: locomo.Conversation) -> dict[str, Any]:
    labels = json.loads(LABELS.read_text())
    text = {t.dia_id: t.text for t in conv.turns}
    speakers = {s.lower() for s in conv.speakers}
    rules = {"old: any shared capitalised word": lambda a, b: entities(a) & entities(b),
             "new: shared name, not a speaker": lambda a, b:
             (topical(a, speakers) & topical(b, speakers, strict=False))
             | (topical(a, speakers, strict=False) & topical(b, speakers))}
    related = sum(p["related"] for p in labels["pairs"])
    out: dict[str, Any] = {"pairs": len(labels["pairs"]), "related": related}
    for name, rule in rules.items():
        kept = [p for p in labels["pairs"] if rule(text[p["a"]], text[p["b"]])]
        good = sum(p["related"] for p in kept)
        out[name] = {"kept": len(kept), "precision": round(good / len(kept), 4) if kept else None,
                     "related_kept": good}
    return out


def expansion(suites: dict[str, list[locomo.Conversation]], work: Path, embedder: str
              ) -> dict[str, Any]:
    """recall@10 with search skipping entity links (the default) vs following them."""
    out: dict[str, Any] = {}
    for suite, convs in suites.items():
        rows: dict[str, list[dict[str, Any]]] = {"flat": [], "follow_entity": []}
        links = 0
        for conv in convs:
            vault = _vault(work, f"links-{suite}-{conv.sample_id}", embedder)
            locomo.ingest(vault, conv)
            links += link_new(vault, LinkConfig()).links.get("entity", 0)
            base = vault.searcher.config
            for mode, skip in (("flat", base.link_skip),
                               ("follow_entity", tuple(k for k in base.link_skip
                                                       if k != "entity"))):
                vault.searcher.config = replace(base, link_skip=skip)
                rows[mode] += locomo.run_conversation(vault, conv, 10)[0]
            vault.searcher.config = base
            vault.close()
        res = {m: locomo.summarize(r, ks=(10,))["overall"].get("recall@10")
               for m, r in rows.items()}
        res["entity_links"] = links
        res["questions"] = len([r for r in rows["flat"] if r["ranks"]])
        out[suite] = res
    return out


def run(locomo_path: str | None, gen_paths: list[str], convs: int, embedder: str,
        ratios: list[float]) -> dict[str, Any]:
    suites: dict[str, list[locomo.Conversation]] = {}
    if locomo_path:
        suites["locomo-dev"] = load(locomo_path)[:convs]
    for p in gen_paths:
        suites[Path(p).stem] = load(p)[:convs]
    work = Path(tempfile.mkdtemp(prefix="bench-lifecycle-q-"))
    res: dict[str, Any] = {"conversations_per_suite": convs, "suites": list(suites)}
    try:
        started = time.perf_counter()
        res["titles"] = titles_and_cost(suites, work)
        res["coverage"] = coverage(suites, ratios)
        if locomo_path:
            conv26 = [c for c in load(locomo_path) if c.sample_id == "conv-26"]
            if conv26:
                res["link_precision"] = link_precision(conv26[0])
        res["expansion"] = expansion(suites, work, embedder)
        res["quality_seconds"] = round(time.perf_counter() - started, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def markdown(r: dict[str, Any]) -> str:
    out = [f"## Consolidation quality ({r['conversations_per_suite']} conversations per "
           "suite)", "", "| suite | topics | filler titles | consolidation s / 1,000 turns "
           "| incremental pass after 1 turn |", "|---|---|---|---|---|"]
    for s, t in r["titles"].items():
        inc = t["incremental_after_one_turn"]
        out.append(f"| {s} | {t['topics']} | {t['filler_share']} | {t['seconds_per_1000_turns']}"
                   f" | {inc.get('sessions_checked')} session re-read, {inc.get('vs_full')}x "
                   "the full pass |")
    first = next(iter(r["titles"].values()))
    conv, titles = next(iter(first["titles"].items()))
    out += ["", f"Topic titles of {conv}: " + "; ".join(titles), "",
            "Evidence coverage of session summaries (questions with evidence in one session; "
            "covered = at least half of the evidence turns' content words kept):", "",
            "| suite | budget (share of session tokens) | tokens used | coverage | "
            "mean share kept | old centrality summary, same budget |", "|---|---|---|---|---|---|"]
    for s, curve in r["coverage"].items():
        for p in curve:
            out.append(f"| {s} | {p['ratio']} | {p['tokens_share']} | {p['coverage']} | "
                       f"{p['mean_kept']} | {p['centrality_coverage']} |")
    if "link_precision" in r:
        lp = r["link_precision"]
        out += ["", f"Entity-link precision on {lp['pairs']} hand-labelled conv-26 pairs "
                f"({lp['related']} related):", "", "| rule | pairs linked | precision | "
                "related pairs kept |", "|---|---|---|---|"]
        for name, v in lp.items():
            if isinstance(v, dict):
                out.append(f"| {name} | {v['kept']} | {v['precision']} | {v['related_kept']} |")
    out += ["", "Search recall@10, not following vs following the kept entity links:", "",
            "| suite | questions | entity links | flat | following entity links |",
            "|---|---|---|---|---|"]
    for s, e in r["expansion"].items():
        out.append(f"| {s} | {e['questions']} | {e['entity_links']} | {e['flat']} | "
                   f"{e['follow_entity']} |")
    return "\n".join(out) + "\n"
