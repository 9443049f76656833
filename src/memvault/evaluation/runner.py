"""Run the LoCoMo evaluation for several retrieval variants side by side.

Variants differ only in :class:`Settings` (write-time indexing options and the
:class:`SearchConfig`) and in whether the lifecycle scheduler ran once after the ingest, as
it does in a deployed vault, so every figure comes from the same ``Vault.search`` code path
and baselines are measured in the same run as the product default.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..models import Embedder, get_embedder
from ..retrieval.searcher import SearchConfig
from ..scheduler import Scheduler
from ..settings import Settings
from ..vault import Vault
from . import locomo

__all__ = ["Variant", "VARIANTS", "run"]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    search: SearchConfig = field(default_factory=SearchConfig)
    index_context: str = "thread"  # write-time option; variants sharing it share one ingest
    #: Embedder name for this row; None: the run's embedder (``--embedder``).
    embedder: str | None = None
    #: Run one scheduler pass (forget, A-MEM links, session and topic summaries) after
    #: the ingest and before the questions, as a deployed vault's scheduler would.
    lifecycle: bool = False


_PLAIN = SearchConfig(fusion="rrf", rrf_k=60, weights={"dense": 1.0, "lexical": 1.0},
                      link_beta=0.0, speaker_gamma=0.0, length_beta=0.0, part_kinds=(),
                      time_weight=0.0, voice_weight=0.0, name_gamma=0.0)
#: Reciprocal-rank fusion with the second stage as it was tuned for it (the default
#: before min-max fusion): the base of the ablation rows up to "+length prior".
_RRF = replace(SearchConfig(), fusion="rrf", rrf_k=30, weights={"dense": 0.5, "lexical": 1.0},
               link_beta=0.2, speaker_gamma=0.5, length_beta=0.6, length_chars=200,
               part_kinds=(), time_weight=0.0, voice_weight=0.0, third_person=False,
               name_gamma=0.0)
#: The product default before the lists added last (dated search, voice), the
#: third-person sentences, the shorter length scale and the name cue.
_NEW = replace(SearchConfig(), time_weight=0.0, voice_weight=0.0, third_person=False,
               length_chars=200, name_gamma=0.0)
#: The product default before the name cue.
_LAST = replace(SearchConfig(), name_gamma=0.0)

#: Baselines first, then one row per improvement, each adding to the row above; "memvault"
#: is the product default (``SearchConfig()`` with ``index_context="thread"``) and the
#: last row the same with the accurate embedder (``Settings(embedder="mpnet")``).
VARIANTS: list[Variant] = [
    Variant("bm25", "BM25 (FTS5, porter stemming) over the turn text",
            replace(_PLAIN, retrievers=("lexical",)), "off"),
    Variant("dense", "MiniLM dense over the turn text", replace(_PLAIN, retrievers=("dense",)),
            "off"),
    Variant("hybrid", "dense + BM25, reciprocal-rank fusion (k=60, equal weights)", _PLAIN,
            "off"),
    Variant("+speaker", "index each turn as 'Speaker: text'", _PLAIN, "speaker"),
    Variant("+thread", "also index the turn it replies to", _PLAIN, "thread"),
    Variant("+weights", "fusion k=30, dense weight 0.5",
            replace(_PLAIN, rrf_k=30, weights={"dense": 0.5, "lexical": 1.0}), "thread"),
    Variant("+links", "link expansion: 0.2 of a candidate's score to turns <= 2 links away",
            replace(_RRF, speaker_gamma=0.0, length_beta=0.0), "thread"),
    Variant("+speaker cue", "x1.5 for turns by a person the query names",
            replace(_RRF, length_beta=0.0), "thread"),
    Variant("+length prior", "x1 to x1.6 for chat turns up to 200 characters (outside "
            "questions)", _RRF, "thread"),
    Variant("+score fusion", "min-max score fusion instead of RRF, equal weights",
            replace(_NEW, link_beta=0.2, speaker_gamma=0.5, part_kinds=()), "thread"),
    Variant("+cue x2, links 0.3", "speaker cue x2, link share 0.3",
            replace(_NEW, part_kinds=()), "thread"),
    Variant("+sentence vectors", "a dense vector per sentence of a turn too", _NEW, "thread"),
    Variant("+dated search", "a question naming a date also searches that window of event "
            "time", replace(_NEW, time_weight=SearchConfig().time_weight), "thread"),
    Variant("+voice", "a question naming a speaker also searches in that speaker's voice "
            "(\"What did Caroline paint?\" as \"What did I paint?\")",
            replace(_LAST, third_person=False, length_chars=200), "thread"),
    Variant("+third person", "a named speaker's first-person sentences are also indexed in "
            "the third person (\"I painted a lake\" as \"Melanie painted a lake\")",
            replace(_LAST, length_chars=200), "thread"),
    Variant("+length 150", "length prior scale 150 characters (of statements) instead of 200",
            _LAST, "thread"),
    Variant("memvault", "name cue: x1.3 for memories naming something when the question "
            "asks for named things (\"Which cities has John been to?\"): the product default",
            SearchConfig(), "thread"),
    Variant("memvault, mpnet", "the product default with the accurate embedder "
            "(all-mpnet-base-v2, `--embedder mpnet`)", SearchConfig(), "thread", "mpnet"),
    Variant("+lifecycle, every link", "after one scheduler pass (`memvault scheduler "
            "run-once`: A-MEM links, session and topic summaries), link expansion along "
            "every link kind, as before `link_skip`", replace(SearchConfig(), link_skip=()),
            "thread", lifecycle=True),
    Variant("memvault, lifecycle", "the product default after one scheduler pass: "
            "expansion skips the similar, entity and summary links the pass adds",
            SearchConfig(), "thread", lifecycle=True),
]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(path: str | Path, out_dir: str | Path, *, embedder: str | Embedder = "minilm",
        variants: list[Variant] | None = None, k: int = 20, limit: int | None = None,
        progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    variants = variants or VARIANTS
    convs = locomo.load(path)[:limit] if limit else locomo.load(path)
    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    n_questions = sum(len(c.questions) for c in convs)
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    latencies: dict[str, list[float]] = {v.name: [] for v in variants}
    embedders: dict[str | None, Embedder] = {None: emb}
    for name in {v.embedder for v in variants if v.embedder}:
        other = get_embedder(name)  # cheap: weights load on first use
        embedders[name] = emb if other.id == emb.id else other
    # rows that index the same way with the same model (and the same scheduler pass)
    # share one ingest per conversation
    groups: dict[tuple[str, str, bool], list[Variant]] = {}
    for v in variants:
        groups.setdefault((v.index_context, embedders[v.embedder].id, v.lifecycle),
                          []).append(v)
    ingest_seconds: dict[str, float] = {}
    lifecycle_seconds = 0.0
    turns = sum(len(c.turns) for c in convs)
    bar = tqdm(total=n_questions * len(variants), unit=" q", disable=not progress,
               desc="locomo", mininterval=2.0)
    with tempfile.TemporaryDirectory(prefix="memvault-locomo-") as tmp:
        for ci, conv in enumerate(convs):
            for (context, eid, lifecycle), group in groups.items():
                e = embedders[group[0].embedder]
                db = Path(tmp) / f"{ci}-{context}-{eid}{'-lifecycle' if lifecycle else ''}.db"
                # ingest as the group's last row indexes (for "thread": the product default,
                # sentence vectors included), so the ingest speed is the product's
                base = Settings(path=db, embedder=eid, index_context=context,
                                search=group[-1].search)
                key = context if e is emb else f"{context}, {eid}"  # ingest speed per model
                with Vault(settings=base, embedder=e) as vault:
                    seconds = locomo.ingest(vault, conv)
                    if lifecycle:  # its ingest is another group's; time the pass instead
                        started = time.perf_counter()
                        Scheduler().run_once(vault)
                        lifecycle_seconds += time.perf_counter() - started
                    else:
                        ingest_seconds[key] = ingest_seconds.get(key, 0.0) + seconds
                for v in group:
                    with Vault(settings=base.replace(search=v.search), embedder=e) as vault:
                        res, lat = locomo.run_conversation(vault, conv, k, bar.update)
                    results[v.name] += res
                    latencies[v.name] += lat
    bar.close()
    report: dict[str, Any] = {
        "dataset": str(path), "conversations": len(convs), "questions": n_questions,
        "turns": turns, "k": k, "embedder": emb.id,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "ingest_turns_per_s": {str(c): round(turns / s, 1) for c, s in ingest_seconds.items()},
        "lifecycle_seconds": round(lifecycle_seconds, 3),
        "variants": {},
    }
    for v in variants:
        lat = latencies[v.name]
        report["variants"][v.name] = {
            "description": v.description, "index_context": v.index_context,
            "embedder": embedders[v.embedder].id, "lifecycle": v.lifecycle,
            "search": asdict(v.search), "metrics": locomo.summarize(results[v.name]),
            # does a gain hold on every conversation, or ride on one?
            "recall@10_by_conversation": {
                c.sample_id: locomo.summarize([r for r in results[v.name]
                                               if r["conv"] == c.sample_id])["overall"]
                .get("recall@10", 0.0) for c in convs},
            "latency_ms": {"p50": round(1000 * _percentile(lat, 0.5), 2),
                           "p95": round(1000 * _percentile(lat, 0.95), 2),
                           "mean": round(1000 * statistics.fmean(lat), 2) if lat else 0.0},
        }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "locomo.json").write_text(json.dumps(report, indent=2))
    (out / "locomo.md").write_text(markdown(report))
    plot(report, out / "locomo.png")
    return report


def markdown(report: dict[str, Any], baseline: str = "hybrid") -> str:
    names = list(report["variants"])
    base = report["variants"].get(baseline) or report["variants"][names[0]]
    b10 = base["metrics"]["overall"].get("recall@10") or 1.0
    lines = [
        f"LoCoMo evidence retrieval: {report['conversations']} conversations, "
        f"{report['questions']} questions (categories 1-4), {report['turns']} turns, "
        f"embedder {report['embedder']}"
        + "".join(f"; row {n!r}: {v['embedder']}" for n, v in report["variants"].items()
                  if v.get("embedder", report["embedder"]) != report["embedder"]) + ".",
        "",
        "| variant | R@5 | R@10 | R@20 | all@10 | MRR | multi-hop R@10 | temporal R@10 | "
        f"open-domain R@10 | single-hop R@10 | R@10 vs {baseline} | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        v = report["variants"][name]
        m = v["metrics"]
        o = m["overall"]
        lines.append(
            f"| {name} | {o['recall@5']:.3f} | {o['recall@10']:.3f} | {o['recall@20']:.3f} | "
            f"{o['all@10']:.3f} | {o['mrr']:.3f} | {m['multi-hop'].get('recall@10', 0):.3f} | "
            f"{m['temporal'].get('recall@10', 0):.3f} | {m['open-domain'].get('recall@10', 0):.3f} | "
            f"{m['single-hop'].get('recall@10', 0):.3f} | {o['recall@10'] / b10:.2f}x | "
            f"{v['latency_ms']['p50']:.1f} | {v['latency_ms']['p95']:.1f} |")
    lines += _by_conversation(report, baseline)
    lines += ["", "Variants:", ""]
    lines += [f"- **{n}**: {report['variants'][n]['description']}" for n in names]
    lines += ["", "Ingest (turns/s, `Vault.add_messages` + index update, indexed as the last "
              f"row of each context indexes): {report['ingest_turns_per_s']}"]
    if report.get("lifecycle_seconds"):
        lines += [f"Scheduler passes (rows with a lifecycle, all conversations): "
                  f"{report['lifecycle_seconds']} s"]
    lines += [""]
    return "\n".join(lines)


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
    cats = [c for c in report["variants"][names[0]]["metrics"]
            if "recall@10" in report["variants"][names[0]]["metrics"][c]]
    shown = list(dict.fromkeys(names[:3] + [n for n in names if n.startswith("memvault")]))
    fig = plt.figure(figsize=(15, 8.5))
    grid = fig.add_gridspec(2, 3, height_ratios=(1, 1.1))
    width = 0.8 / len(shown)
    for col, k in enumerate((5, 10, 20)):
        ax = fig.add_subplot(grid[0, col])
        for i, name in enumerate(shown):
            m = report["variants"][name]["metrics"]
            ax.bar([c + i * width for c in range(len(cats))],
                   [m[c].get(f"recall@{k}", 0) for c in cats], width, label=name)
        ax.set_xticks([c + width * (len(shown) - 1) / 2 for c in range(len(cats))], cats,
                      rotation=15)
        ax.set_title(f"evidence recall@{k}")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(shown), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.955))
    ax = fig.add_subplot(grid[1, :])
    for cat in cats:
        ax.plot(range(len(names)),
                [report["variants"][n]["metrics"][cat].get("recall@10", 0) for n in names],
                marker="o", label=cat, linewidth=2.5 if cat == "overall" else 1.2)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_title("recall@10 along the ablation (each row adds to the one before)")
    for goal, colour in ((0.80, "C0"), (0.60, "C1")):  # issue 3: overall, multi-hop
        ax.axhline(goal, linestyle="--", color=colour, alpha=0.5, linewidth=1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=len(cats), frameon=False,
              title="dashed: goal R@10 0.80 overall, 0.60 multi-hop", title_fontsize=8)
    fig.suptitle(f"LoCoMo ({report['conversations']} conversations, {report['questions']} questions)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
