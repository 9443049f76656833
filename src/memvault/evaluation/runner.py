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

from ..errors import InvalidInput
from ..models import Embedder, get_embedder
from ..retrieval.searcher import SearchConfig
from ..scheduler import Scheduler
from ..settings import Settings
from ..vault import Vault
from . import locomo
from .report import BASELINES, DEFAULT, markdown, plot, plot_suites, rule

__all__ = ["Variant", "VARIANTS", "run", "run_suites", "markdown", "BASELINES", "DEFAULT"]


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
    #: Write-time current truth (``Settings.supersede``): statements close the ones they
    #: replace, and handles get the names their speakers introduce.
    supersede: bool = True


_PLAIN = SearchConfig(fusion="rrf", rrf_k=60, weights={"dense": 1.0, "lexical": 1.0},
                      link_beta=0.0, speaker_gamma=0.0, length_beta=0.0, part_kinds=(),
                      time_weight=0.0, voice_weight=0.0, name_gamma=0.0, stale_penalty=0.0,
                      truth_gamma=0.0, topic_gamma=0.0)
#: Reciprocal-rank fusion with the second stage as it was tuned for it (the default
#: before min-max fusion): the base of the ablation rows up to "+length prior".
_RRF = replace(SearchConfig(), fusion="rrf", rrf_k=30, weights={"dense": 0.5, "lexical": 1.0},
               link_beta=0.2, speaker_gamma=0.5, length_beta=0.6, length_chars=200,
               part_kinds=(), time_weight=0.0, voice_weight=0.0, third_person=False,
               name_gamma=0.0, stale_penalty=0.0, truth_gamma=0.0, topic_gamma=0.0)
#: The product default before the lists added last (dated search, voice), the
#: third-person sentences, the shorter length scale and the name cue.
_NEW = replace(SearchConfig(), time_weight=0.0, voice_weight=0.0, third_person=False,
               length_chars=200, name_gamma=0.0, stale_penalty=0.0, truth_gamma=0.0,
               topic_gamma=0.0)
#: The product default before current truth (validity prior, supersession on write).
_NOTRUTH = replace(SearchConfig(), stale_penalty=0.0, truth_gamma=0.0, topic_gamma=0.0)
#: The product default before the name cue.
_LAST = replace(_NOTRUTH, name_gamma=0.0)

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
    Variant("+name cue", "name cue: x1.3 for memories naming something when the question "
            "asks for named things (\"Which cities has John been to?\")",
            _NOTRUTH, "thread", supersede=False),
    Variant("+current truth", "statements close the ones they replace on write "
            "(valid time), handles take the names people introduce or are greeted by; "
            "superseded memories x0.5 unless the question names another time",
            replace(SearchConfig(), topic_gamma=0.0), "thread"),
    Variant("memvault", "+ topic prior: a question for a named person's one-at-a-time "
            "attribute (home, work, partner, car, drink, diet, phone) now or at a named "
            "time puts the latest assertion about it (or the one that held then) first: "
            "the product default", SearchConfig(), "thread"),
    Variant("memvault, mpnet", "the product default with the accurate embedder "
            "(all-mpnet-base-v2, `--embedder mpnet`)", SearchConfig(), "thread", "mpnet"),
    Variant("+lifecycle, every link", "after one scheduler pass (`memvault scheduler "
            "run-once`: A-MEM links, session and topic summaries), link expansion along "
            "every link kind, as before `link_skip`", replace(SearchConfig(), link_skip=()),
            "thread", lifecycle=True),
    Variant("memvault, lifecycle", "the product default after one scheduler pass: "
            "expansion skips the similar, entity and summary links the pass adds",
            SearchConfig(), "thread", lifecycle=True),
    Variant("+summary tier", "after the scheduler pass, search the session and topic "
            "summaries too and, when the best one stands out, place the best turn under the "
            "best 3 right after flat's top 3 (the planner, `SearchConfig(tier=\"auto\")`)",
            replace(SearchConfig(), tier="auto"), "thread", lifecycle=True),
]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(path: str | Path, out_dir: str | Path | None = None, *,
        embedder: str | Embedder = "minilm", variants: list[Variant] | None = None,
        k: int = 20, limit: int | None = None, progress: bool = True,
        ingest: str = "turns", bar: Any = None) -> dict[str, Any]:
    """Every variant on one file; writes locomo.{json,md,png} to ``out_dir`` if given.

    ``ingest``: "turns" stores raw turns (``add_messages``), "fine" reads facts from them
    too (``remember(mode="fine")``, rules only). ``bar``: a shared tqdm bar (several
    suites in one run); otherwise the run makes its own. The bar counts every turn each
    ingest stores and every question each row asks, so it covers the whole run.
    """
    variants = variants or VARIANTS
    if ingest not in locomo.INGEST_MODES:
        raise InvalidInput(f"ingest must be one of {locomo.INGEST_MODES}", field="ingest")
    convs = locomo.load(path)[:limit] if limit else locomo.load(path)
    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    n_questions = sum(len(c.questions) for c in convs)
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    latencies: dict[str, list[float]] = {v.name: [] for v in variants}
    embedders = _embedders(emb, variants)
    groups = _groups(variants, embedders)
    ingest_seconds: dict[str, float] = {}
    lifecycle_seconds = 0.0
    turns = sum(len(c.turns) for c in convs)
    own = bar is None
    if own:
        from tqdm import tqdm

        bar = tqdm(total=work(convs, variants, embedders), unit=" step",
                   disable=not progress, desc="locomo", mininterval=2.0)
    with tempfile.TemporaryDirectory(prefix="memvault-locomo-") as tmp:
        for ci, conv in enumerate(convs):
            for (context, eid, lifecycle, truth), group in groups.items():
                e = embedders[group[0].embedder]
                db = Path(tmp) / (f"{ci}-{context}-{eid}{'-lifecycle' if lifecycle else ''}"
                                  f"{'' if truth else '-notruth'}.db")
                # ingest as the group's last row indexes (for "thread": the product default,
                # sentence vectors included), so the ingest speed is the product's
                base = Settings(path=db, embedder=eid, index_context=context,
                                search=group[-1].search, supersede=truth)
                key = context if e is emb else f"{context}, {eid}"  # ingest speed per model
                key += "" if truth else ", no current truth"
                with Vault(settings=base, embedder=e) as vault:
                    seconds = locomo.ingest(vault, conv, ingest, bar.update)
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
    if own:
        bar.close()
    report: dict[str, Any] = {
        "dataset": str(path), "ingest": ingest, "conversations": len(convs),
        "questions": n_questions, "turns": turns, "k": k, "embedder": emb.id,
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
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "locomo.json").write_text(json.dumps(report, indent=2))
        (out / "locomo.md").write_text(markdown(report))
        plot(report, out / "locomo.png")
    return report


def _groups(variants: list[Variant], embedders: dict[str | None, Embedder]
            ) -> dict[tuple[str, str, bool, bool], list[Variant]]:
    """Rows that index the same way with the same model (and the same scheduler pass and
    write-time current truth) share one ingest per conversation."""
    groups: dict[tuple[str, str, bool, bool], list[Variant]] = {}
    for v in variants:
        groups.setdefault((v.index_context, embedders[v.embedder].id, v.lifecycle,
                           v.supersede), []).append(v)
    return groups


def _embedders(emb: Embedder, variants: list[Variant]) -> dict[str | None, Embedder]:
    embedders: dict[str | None, Embedder] = {None: emb}
    for name in {v.embedder for v in variants if v.embedder}:
        other = get_embedder(name)  # cheap: weights load on first use
        embedders[name] = emb if other.id == emb.id else other
    return embedders


def work(convs: list[locomo.Conversation], variants: list[Variant],
         embedders: dict[str | None, Embedder]) -> int:
    """Progress steps of one run: turns per ingest, plus questions per row."""
    n_groups = len(_groups(variants, embedders))
    return sum(len(c.turns) * n_groups + len(c.questions) * len(variants) for c in convs)


def suite_label(path: str | Path, ingest: str, paths: list[str | Path]) -> str:
    """A short name for a (file, ingest) pair: the file's stem, unique among ``paths``."""
    stems = [Path(p).stem for p in paths]
    label = Path(path).stem if stems.count(Path(path).stem) == 1 else str(path)
    return label if ingest == "turns" else f"{label} [{ingest}]"


def run_suites(paths: list[str] | list[Path], out_dir: str | Path | None, *, name: str = "locomo",
               embedder: str | Embedder = "minilm", variants: list[Variant] | None = None,
               ingest: tuple[str, ...] = ("turns",), k: int = 20, limit: int | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Every variant on every (file, ingest mode), with the default rule checked across
    them (see :func:`report.rule`). One suite: the single-suite report, as :func:`run`.

    Writes ``<name>.json``, ``<name>.md`` and ``<name>.png``.
    """
    from tqdm import tqdm

    variants = variants or VARIANTS
    paths = list(dict.fromkeys(str(p) for p in paths))  # a file named twice runs once
    if not paths:
        raise InvalidInput("pass at least one file", field="paths")
    for mode in ingest:
        if mode not in locomo.INGEST_MODES:
            raise InvalidInput(f"ingest must be one of {locomo.INGEST_MODES}", field="ingest")
    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    convs = {str(p): (locomo.load(p)[:limit] if limit else locomo.load(p)) for p in paths}
    modes = tuple(dict.fromkeys(ingest))
    total = sum(work(c, variants, _embedders(emb, variants)) for c in convs.values()) * len(modes)
    suites: dict[str, dict[str, Any]] = {}
    with tqdm(total=total, unit=" step", disable=not progress, desc="locomo",
              mininterval=2.0) as bar:
        for p in paths:
            for mode in modes:
                suites[suite_label(p, mode, list(paths))] = run(
                    p, None, embedder=emb, variants=variants, k=k, limit=limit,
                    ingest=mode, bar=bar)
    previous = {v.name: VARIANTS[i - 1].name for i, v in enumerate(VARIANTS) if i}
    full: dict[str, Any] = (next(iter(suites.values())) if len(suites) == 1
                            else {"suites": suites, "rule": rule(suites, previous)})
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(full, indent=2))
        (out / f"{name}.md").write_text(markdown(full))
        if len(suites) == 1:
            plot(full, out / f"{name}.png")
        else:
            plot_suites(full, out / f"{name}.png")
    return full


