"""Markdown, plots and the default rule for evidence-retrieval runs.

The default rule is why several suites run together: a heuristic stays on by
default only if, on every suite (LoCoMo dev and several seeds of the generated suite),
it lowers neither R@10 nor MRR against the row above it, and the default must beat every
plain baseline on each suite. :func:`rule` computes both and :func:`markdown` shows them
next to the per-suite ablation tables, so a default tuned to one dataset is visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .locomo import GENERATED_CATEGORIES, LOCOMO_CATEGORIES

__all__ = ["markdown", "rule", "plot", "plot_suites", "BASELINES", "DEFAULT", "RULE_METRICS"]

#: Plain rows every default must beat, and the product default's row.
BASELINES: tuple[str, ...] = ("bm25", "dense", "hybrid")
DEFAULT = "memvault"
RULE_METRICS: tuple[str, ...] = ("recall@10", "mrr")
_SHORT = {"information-extraction": "extraction", "multi-session": "multi-session",
          "temporal-reasoning": "temporal-r", "knowledge-update-now": "update now",
          "knowledge-update-then": "update then", "abstention": "abstention"}


def _scored(report: dict[str, Any]) -> list[str]:
    """Categories with at least one scored question, in the report's order."""
    first = next(iter(report["variants"].values()))["metrics"]
    return [c for c in first if c != "overall" and first[c].get("n") and "mrr" in first[c]]


def _drops(row: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    """Metrics of the rule where ``row`` is below ``ref`` (negative deltas)."""
    out = {}
    for metric in RULE_METRICS:
        delta = row["metrics"]["overall"].get(metric, 0.0) - ref["metrics"]["overall"].get(
            metric, 0.0)
        if delta < 0:
            out[metric] = round(delta, 4)
    return out


def rule(suites: dict[str, dict[str, Any]],
         previous: dict[str, str] | None = None) -> dict[str, Any]:
    """For each non-baseline row: the suites on which it lowers R@10 or MRR against the
    row above it and against the default; and per suite, the default against each
    plain baseline (it must beat each on both metrics).

    ``previous``: each row's predecessor in the full ablation; a row whose row above in
    this run is another one (a ``--variant`` subset) is marked as more than one change.
    """
    names = list(next(iter(suites.values()))["variants"])
    rows: dict[str, Any] = {}
    for i, name in enumerate(names):
        if name in BASELINES or i == 0:
            continue
        above = names[i - 1]
        entry: dict[str, Any] = {"above": above, "vs_above": {}, "vs_default": {},
                                 "one_change": True}
        for label, report in suites.items():
            v = report["variants"]
            entry["one_change"] = _comparable(v[name], v[above]) and (
                previous is None or previous.get(name) == above)
            if drop := _drops(v[name], v[above]):
                entry["vs_above"][label] = drop
            if DEFAULT in v and name != DEFAULT and (drop := _drops(v[name], v[DEFAULT])):
                entry["vs_default"][label] = drop
        rows[name] = entry
    versus: dict[str, Any] = {}
    for label, report in suites.items():
        v = report["variants"]
        if DEFAULT not in v:
            continue
        versus[label] = {}
        for base in BASELINES:
            if base in v:
                deltas = {m: round(v[DEFAULT]["metrics"]["overall"].get(m, 0.0)
                                   - v[base]["metrics"]["overall"].get(m, 0.0), 4)
                          for m in RULE_METRICS}
                versus[label][base] = {**deltas, "beats": all(d > 0 for d in deltas.values())}
    return {"metrics": list(RULE_METRICS), "default": DEFAULT, "baselines": list(BASELINES),
            "rows": rows, "default_vs_baselines": versus}


def markdown(report: dict[str, Any], baseline: str = "hybrid") -> str:
    """One suite's tables, or, for a several-suite report, the rule then every suite."""
    if "suites" not in report:
        return _suite(report, baseline)
    suites = report["suites"]
    lines = [f"Evidence retrieval on {len(suites)} suites (the same rows on each).", ""]
    lines += [f"- **{label}**: `{r['dataset']}`, ingest {r['ingest']}, {r['conversations']} "
              f"conversations, {r['questions']} questions, {r['turns']} turns, embedder "
              f"{r['embedder']}" for label, r in suites.items()]
    lines += ["", *_rule_lines(report["rule"], list(suites)), ""]
    for label, r in suites.items():
        lines += [f"## {label}", "", _suite(r, baseline)]
    return "\n".join(lines)


def _fmt_drops(found: dict[str, dict[str, float]]) -> str:
    if not found:
        return "none"
    return "; ".join(f"{label} ({', '.join(f'{m} {d:+.3f}' for m, d in drop.items())})"
                     for label, drop in found.items())


def _rule_lines(r: dict[str, Any], labels: list[str]) -> list[str]:
    lines = ["Default rule: a row may join the default only if it lowers "
             "neither R@10 nor MRR on any suite against the row above it; the default must "
             "beat every plain baseline on every suite.", "",
             "| row | lowers R@10/MRR vs the row above on | lowers R@10/MRR vs the default on |",
             "|---|---|---|"]
    for name, e in r["rows"].items():
        above = f"{e['above']!r}" + ("" if e["one_change"] else ", more than one change")
        lines.append(f"| {name} (above: {above}) | {_fmt_drops(e['vs_above'])} | "
                     f"{_fmt_drops(e['vs_default']) if name != r['default'] else '-'} |")
    versus = r["default_vs_baselines"]
    bases = [b for b in r["baselines"] if any(b in v for v in versus.values())]
    if bases:  # none ran: no table of empty columns
        lines += ["", f"Default ({r['default']!r}) minus each baseline, R@10 / MRR "
                  "(yes: beats it on both):", "",
                  "| suite | " + " | ".join(bases) + " |", "|---" * (len(bases) + 1) + "|"]
        for label in labels:
            cells = []
            for b in bases:
                d = versus.get(label, {}).get(b)
                cells.append("-" if d is None else f"{d['recall@10']:+.3f} / {d['mrr']:+.3f} "
                             f"{'yes' if d['beats'] else 'NO'}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _suite(report: dict[str, Any], baseline: str) -> str:
    names = list(report["variants"])
    base = report["variants"].get(baseline) or report["variants"][names[0]]
    b10 = base["metrics"]["overall"].get("recall@10") or 1.0
    cats = _scored(report)
    generated = any(c in GENERATED_CATEGORIES.values() for c in cats)
    which = ("categories 1-4" if set(cats) <= set(LOCOMO_CATEGORIES.values())
             else ", ".join(cats))
    title = "Generated suite" if generated else "LoCoMo"
    lines = [
        f"{title} evidence retrieval: {report['conversations']} conversations, "
        f"{report['questions']} questions ({which}), {report['turns']} turns, "
        f"embedder {report['embedder']}, ingest {report.get('ingest', 'turns')}"
        + "".join(f"; row {n!r}: {v['embedder']}" for n, v in report["variants"].items()
                  if v.get("embedder", report["embedder"]) != report["embedder"]) + ".",
        "",
        "| variant | R@5 | R@10 | R@20 | all@10 | MRR | hit@1 | "
        + " | ".join(f"{_SHORT.get(c, c)} R@10" for c in cats)
        + f" | R@10 vs {baseline} | p50 ms | p95 ms |",
        "|---" * (10 + len(cats)) + "|",
    ]
    for name in names:
        v = report["variants"][name]
        m, o = v["metrics"], v["metrics"]["overall"]
        lines.append(
            f"| {name} | {o.get('recall@5', 0):.3f} | {o.get('recall@10', 0):.3f} | "
            f"{o.get('recall@20', 0):.3f} | {o.get('all@10', 0):.3f} | {o.get('mrr', 0):.3f} | "
            f"{o.get('hit@1', 0):.3f} | "
            + " | ".join(f"{m[c].get('recall@10', 0):.3f}" for c in cats)
            + f" | {o.get('recall@10', 0) / b10:.2f}x | {v['latency_ms']['p50']:.1f} | "
            f"{v['latency_ms']['p95']:.1f} |")
    lines += ["", "MRR / hit@1 per category (rank of the best-ranked evidence turn):", "",
              "| variant | " + " | ".join(_SHORT.get(c, c) for c in cats) + " |",
              "|---" * (1 + len(cats)) + "|"]
    for name in names:
        m = report["variants"][name]["metrics"]
        lines.append(f"| {name} | " + " | ".join(
            f"{m[c].get('mrr', 0):.3f} / {m[c].get('hit@1', 0):.3f}" for c in cats) + " |")
    lines += _abstention(report)
    lines += _by_conversation(report, baseline)
    lines += ["", "Variants:", ""]
    lines += [f"- **{n}**: {report['variants'][n]['description']}" for n in names]
    how = ("`Vault.remember(mode=\"fine\")`, rules only" if report.get("ingest") == "fine"
           else "`Vault.add_messages`")
    lines += ["", f"Ingest (turns/s, {how} + index update, indexed as the last "
              f"row of each context indexes): {report['ingest_turns_per_s']}"]
    if report.get("lifecycle_seconds"):
        lines += [f"Scheduler passes (rows with a lifecycle, all conversations): "
                  f"{report['lifecycle_seconds']} s"]
    lines += [""]
    return "\n".join(lines)


def _abstention(report: dict[str, Any]) -> list[str]:
    """Questions with no evidence are not scored; show how many, and whether the top
    hit's score sets them apart from answerable ones (a hint for a future abstain)."""
    first = next(iter(report["variants"].values()))["metrics"]
    empty = {c: b["no_evidence"] for c, b in first.items() if b.get("no_evidence")}
    if not empty:
        return []
    total = sum(empty.values())
    cells = []
    for name, v in report["variants"].items():
        m = v["metrics"]
        tops = [m[c].get("mean_top_score") for c in empty]
        if tops and tops[0] is not None:
            cells.append(f"{name} {tops[0]:.3f} vs {m['overall'].get('mean_top_score', 0):.3f}")
    return ["", f"No evidence: {total} questions ({', '.join(empty)}) ask about things "
            "never said; recall, MRR and hit@1 leave them out. Mean top-hit score, "
            "unanswerable vs answerable: " + "; ".join(cells) + "."]


def _by_conversation(report: dict[str, Any], baseline: str) -> list[str]:
    """R@10 per conversation for the baseline and the last four rows, and how many
    conversations each of those rows improves over the row above it."""
    names = list(report["variants"])
    shown = [n for n in dict.fromkeys([baseline, *names[-4:]]) if n in report["variants"]]
    per = {n: report["variants"][n].get("recall@10_by_conversation", {}) for n in names}
    convs = list(per[shown[-1]]) if shown else []
    if not convs:
        return []
    lines = ["", "Recall@10 per conversation:", "",
             "| conversation | " + " | ".join(shown) + " |",
             "|---" * (len(shown) + 1) + "|"]
    lines += [f"| {c} | " + " | ".join(f"{per[n].get(c, 0):.3f}" for n in shown) + " |"
              for c in convs]
    wins = []
    for n in shown[1:]:
        if names.index(n) == 0:  # the first row has no row above
            continue
        above = names[names.index(n) - 1]
        if not _comparable(report["variants"][n], report["variants"][above]):
            continue
        better = sum(per[n].get(c, 0) > per[above].get(c, 0) for c in convs)
        wins.append(f"{n!r} beats {above!r} on {better} of {len(convs)}")
    return lines + (["", "; ".join(wins) + "."] if wins else [])


def _comparable(row: dict[str, Any], above: dict[str, Any]) -> bool:
    """Whether ``row`` is one change from ``above`` (a model, a scheduler pass, settings):
    "memvault, mpnet" is, "+lifecycle, every link" under it is not."""
    return sum(row.get(f) != above.get(f) for f in ("embedder", "lifecycle")) < 2


def plot_suites(report: dict[str, Any], path: Path) -> bool:
    """R@10, MRR and knowledge-update hit@1 (now, then) per suite, a bar per row: does a
    row's gain hold on every suite? Skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    suites = report["suites"]
    labels = list(suites)
    names = list(next(iter(suites.values()))["variants"])
    panels = [("overall", "recall@10", "R@10"), ("overall", "mrr", "MRR"),
              ("knowledge-update-now", "hit@1", "update now hit@1"),
              ("knowledge-update-then", "hit@1", "update then hit@1")]
    fig, axes = plt.subplots(1, len(panels), figsize=(17, 4.8), sharey=True)
    width = 0.8 / len(names)
    for ax, (cat, metric, title) in zip(axes, panels):
        for i, name in enumerate(names):
            ax.bar([j + i * width for j in range(len(labels))],
                   [suites[lb]["variants"][name]["metrics"].get(cat, {}).get(metric, 0)
                    for lb in labels], width, label=name)
        ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(labels))], labels,
                      rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    handles, legend = axes[0].get_legend_handles_labels()
    fig.legend(handles, legend, loc="upper center", ncol=min(len(names), 8), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot(report: dict[str, Any], path: Path) -> bool:
    """Recall@5/10/20 per category for the baselines and the product rows (bars), and
    recall@10 per category along the ablation, row by row (lines); skipped without
    matplotlib. Bars for all ~20 rows were unreadable: colours repeat after ten."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(report["variants"])
    cats = ["overall", *_scored(report)]
    shown = list(dict.fromkeys(names[:3] + [n for n in names if n.startswith("memvault")]))
    fig = plt.figure(figsize=(15, 8.5))
    grid = fig.add_gridspec(2, 3, height_ratios=(1, 1.1))
    width = 0.8 / len(shown)
    labels = [_SHORT.get(c, c) for c in cats]
    for col, k in enumerate((5, 10, 20)):
        ax = fig.add_subplot(grid[0, col])
        for i, name in enumerate(shown):
            m = report["variants"][name]["metrics"]
            ax.bar([c + i * width for c in range(len(cats))],
                   [m[c].get(f"recall@{k}", 0) for c in cats], width, label=name)
        ax.set_xticks([c + width * (len(shown) - 1) / 2 for c in range(len(cats))], labels,
                      rotation=20, fontsize=8)
        ax.set_title(f"evidence recall@{k}")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    handles, legend = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, legend, loc="upper center", ncol=len(shown), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.955))
    ax = fig.add_subplot(grid[1, :])
    for cat in cats:
        ax.plot(range(len(names)),
                [report["variants"][n]["metrics"][cat].get("recall@10", 0) for n in names],
                marker="o", label=_SHORT.get(cat, cat),
                linewidth=2.5 if cat == "overall" else 1.2)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_title("recall@10 along the ablation (each row adds to the one before)")
    locomo = not any(c in GENERATED_CATEGORIES.values() for c in cats)
    if locomo:
        for goal, colour in ((0.80, "C0"), (0.60, "C1")):  # the goals: overall, multi-hop
            ax.axhline(goal, linestyle="--", color=colour, alpha=0.5, linewidth=1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=len(cats), frameon=False,
              title="dashed: goal R@10 0.80 overall, 0.60 multi-hop" if locomo else None,
              title_fontsize=8)
    title = "LoCoMo" if locomo else f"Generated suite ({Path(report['dataset']).stem})"
    fig.suptitle(f"{title} ({report['conversations']} conversations, "
                 f"{report['questions']} questions)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
