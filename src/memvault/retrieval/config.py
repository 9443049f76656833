"""What a search does, as one frozen settings object (no numpy, no index: the settings
of every vault carry one, and opening a vault for a by-id read must stay cheap)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigurationError
from .fusion import METHODS

__all__ = ["SearchConfig"]


@dataclass(frozen=True, slots=True)
class SearchConfig:
    hnsw_m: int = 32
    #: Search breadth of PostgreSQL's pgvector HNSW (its graph is built by the database
    #: with its own m / ef_construction, so it is tuned apart from the in-process one).
    ef_search: int = 256
    #: The in-process faiss graph: built with ``ef_construction`` and walked with
    #: ``index_ef_search``. With M=32, efConstruction 80 (barely above the 64 links a
    #: node keeps on level 0) left a graph that needed efSearch 256 for recall@10 0.994 at
    #: 100k MiniLM rows (1.58 ms); built with 160, the same recall takes a far narrower
    #: search (at 45k rows: efSearch 96-128 -> 1.000 vs 0.992-0.994 with 80; see
    #: benchmarks/results/speed-notes.md), so a search costs less for a slower build.
    ef_construction: int = 160
    index_ef_search: int = 128
    exact_below: int = 2_000
    #: "minmax" (scores rescaled per retriever, then summed) or "rrf" (ranks only).
    fusion: str = "minmax"
    rrf_k: int = 30  # used by fusion="rrf" only
    #: Which retrievers run: any of "dense", "lexical" (ablations and baselines use subsets).
    retrievers: tuple[str, ...] = ("dense", "lexical")
    weights: dict[str, float] = field(default_factory=lambda: {"dense": 1.0, "lexical": 1.0})
    #: How many hits each retriever returns (at least 2 x k). Like ``rerank_depth`` it does
    #: not grow with k for k <= 20, so the first 10 of a search for 20 are the search for 10.
    candidates: int = 50
    #: How many fused candidates the second stage (rows, links, speaker cue) looks at.
    rerank_depth: int = 40
    #: Link expansion: share of a candidate's score given to memories ``link_hops`` away.
    link_beta: float = 0.3
    link_hops: int = 2
    #: Link kinds expansion does not follow: the ones the lifecycle scheduler derives in
    #: bulk. "similar" and "entity" links restate what the first stage already scores
    #: (embedding similarity, shared words), and a summary's "summarizes" links join it
    #: to every turn it covers, so two hops through one reach a whole session; a score
    #: spread along them floods the top k with one topic. On LoCoMo after a scheduler
    #: pass (``make bench-locomo``, the rows with "lifecycle"), following them cut
    #: recall@10 from 0.834 to 0.717 and slowed search 2.3x. Thread links ("next"),
    #: "session" links and links people or agents add (any other kind) are followed.
    link_skip: tuple[str, ...] = ("similar", "entity", "summarizes")
    #: Boost for memories whose speaker the query names: x (1 + speaker_gamma); 0 disables.
    speaker_gamma: float = 1.0
    #: Boost for memories that name something (a capitalised word inside a sentence, a
    #: quoted title) when the query asks for named things ("Which books has Tim read?"):
    #: x (1 + name_gamma); 0 disables. See ``text.asks_for_names``.
    name_gamma: float = 0.3
    #: Length prior for chat turns: x (1 + length_beta * min(chars / length_chars, 1)),
    #: counting the characters outside questions, so "Thanks, that's great!" and "Cool!
    #: What do you play?" yield to a turn that says something (0 disables).
    length_beta: float = 0.6
    length_chars: int = 150
    #: Current truth (see ``rerank.validity_prior``): a superseded statement's score is
    #: multiplied by 1 - stale_penalty unless the question names another time; a state
    #: that still holds gains 1 + truth_gamma on a "now" question, and on a question
    #: naming a time the states that held then gain it. 0 and 0 disable.
    stale_penalty: float = 0.5
    truth_gamma: float = 0.3
    #: Current truth where no rule read a statement (``rerank.topic_prior``): on a
    #: question asking for a named person's attribute now or at a named time, the latest
    #: of the candidates asserting something about it (or the one that held then) is
    #: multiplied by 1 + topic_gamma and put first; the others of its group divided by
    #: it. 0 disables.
    topic_gamma: float = 1.0
    query_cache: int = 1024
    #: Kinds of memory whose sentences get vectors of their own in the dense index (a
    #: memory scores by its best vector). They are derived state, embedded when the index
    #: takes a memory in: a rebuild re-embeds them. () keeps one vector per memory.
    part_kinds: tuple[str, ...] = ("turn",)
    #: Turns of a named speaker also get their first-person sentences in the third person
    #: ("I painted a sunset" -> "Melanie painted a sunset"; ``text.in_third``), as part
    #: vectors: the document side of the voice below. Derived state, like the parts.
    third_person: bool = True
    #: A query that names a time ("on 25 May, 2022", "in April 2022", "yesterday",
    #: "two weeks ago", relative to the wall clock) also runs a dense
    #: search restricted to that window of event time, fused with this weight (0 disables);
    #: the window runs ``time_slack_days`` past the named date (see ``when.py``).
    time_weight: float = 1.0
    time_slack_days: float = 7.0
    #: A query that names a speaker ("What did Caroline paint?") also runs a dense search
    #: for it in that speaker's voice ("What did I paint?"), fused with this weight (0
    #: disables): chat turns are in the first person, and MiniLM matches "I painted a
    #: sunset" to the first-person question far better than to the third-person one.
    voice_weight: float = 1.0

    #: The summary tier (``retrieval.tier``): "flat" searches every memory at once;
    #: "summaries" also searches the summaries a scheduler pass wrote, descends to the
    #: turns under the best ``tier_summaries`` (at most ``tier_max_turns``), ranks them
    #: with the usual pipeline and places its best ``tier_insert`` right after flat's
    #: first ``tier_keep`` hits (flat's head is never reordered); "auto" is the per-query
    #: planner: it descends only when the best summary's fused score is at least
    #: ``tier_margin`` times the runner-up's (and the scope holds ``tier_min_memories``
    #: memories or more; 0: any). The values were chosen on dev data (LoCoMo conv-26,
    #: generated seed 1) and checked on held-out data; the README's lifecycle section has
    #: the figures, and the rule that decides the default.
    tier: str = "flat"
    tier_summaries: int = 3
    tier_max_turns: int = 400
    tier_keep: int = 3
    tier_insert: int = 1
    tier_margin: float = 1.1
    tier_min_memories: int = 0
    #: How the tier ranks the summaries and the turns under them: "full", the usual
    #: pipeline (rows, links, priors), twice more per query; "first", the first stage alone
    #: (dense with the query vectors flat search already embedded, and BM25, fused), rows
    #: read only for the few turns it inserts. Why "first" exists: "full" made a tiered
    #: search cost 4-5x a flat one at 25,000 memories; the planner's test and the merge are
    #: the same in both (``benchmarks/tier_scale.py`` measures the two side by side).
    tier_rank: str = "full"
    #: ``Vault.add(dedup=...)``: the cosine at or above which a memory of the same kind
    #: and owner is a candidate duplicate (it must also state the same values; see
    #: ``retrieval.dedup``). The reader's near-dedup threshold; on the labelled pairs of
    #: ``benchmarks/dedup_quality.py`` (``make bench-lifecycle``).
    dedup_threshold: float = 0.92

    def __post_init__(self) -> None:
        if self.fusion not in METHODS:
            raise ConfigurationError(f"fusion must be one of {METHODS}", fusion=self.fusion)
        if self.tier not in ("flat", "summaries", "auto"):
            raise ConfigurationError("tier must be flat, summaries or auto", tier=self.tier)
        if self.tier_rank not in ("full", "first"):
            raise ConfigurationError("tier_rank must be full or first", tier_rank=self.tier_rank)
        if self.tier_keep < 0 or self.tier_insert < 0 or self.tier_summaries < 1 or \
                self.tier_max_turns < 1 or self.tier_min_memories < 0:
            raise ConfigurationError("tier_keep, tier_insert and tier_min_memories must be "
                                     ">= 0, tier_summaries and tier_max_turns >= 1")
        if not self.tier_margin >= 1.0:
            raise ConfigurationError("tier_margin must be >= 1", tier_margin=self.tier_margin)
        if not 0.0 < self.dedup_threshold <= 1.0:
            raise ConfigurationError("dedup_threshold must be in (0, 1]",
                                     dedup_threshold=self.dedup_threshold)
