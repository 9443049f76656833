"""Hybrid retrieval: dense (vector index) + lexical (store BM25), fused (min-max or RRF).

The searcher keeps the in-memory vector index in step with the record store by reading
the store's change feed (the audit log) before each search, so writes made by other
processes sharing the same store are visible without any signalling between them.

A store that can search its own vectors (``dense_source``: PostgreSQL + pgvector) is asked
for the dense candidates instead, and no in-memory index is built: app processes sharing
the database share its index. Everything after candidate generation is the same code.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import re
import time
from concurrent.futures import ThreadPoolExecutor
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import IntegrityError, StorageError
from ..index.vector import ATTRS, VectorIndex, top_k
from ..models.base import Embedder, embed_unique
from ..storage.base import RecordStore, RowQuery, StoredRow
from .config import SearchConfig
from .fusion import fuse
from .context import name_of, part_texts
from .rerank import (expand_links, length_prior, name_boost, ranked, speaker_boost,
                     began, named_by, topic_prior, topic_question, topic_words,
                     validity_prior)
from .text import in_voice, named_in, terms
from .when import event_phrase, time_window
from ..temporal.topics import asked

log = logging.getLogger("memvault.retrieval")
#: Memories read and indexed per step of :meth:`Searcher.sync`.
_SYNC_BLOCK = 256

__all__ = ["Searcher", "SearchConfig", "Candidate"]


#: At most this many memories asserting the asked attribute join a question's candidates.
_ASSERTING = 200


@dataclass(frozen=True, slots=True)
class Candidate:
    seq: int
    score: float
    sources: dict[str, float]
    row: StoredRow


class Searcher:
    def __init__(self, store: RecordStore, embedder: Embedder, *,
                 index_dir: Path | None = None, config: SearchConfig | None = None,
                 store_tag: str = "", context: str = "speaker") -> None:
        self.store, self.embedder = store, embedder
        self.config = config or SearchConfig()
        self.index_dir = index_dir
        self.context = context  # the vault's index_context: how part vectors are embedded
        parts = ",".join(sorted(self.config.part_kinds))
        if parts and self.config.third_person:
            parts += "+third"
        # a snapshot built with other part settings holds other rows: the tag tells
        self._tag = f"{store_tag}|parts={parts}|{context}" if parts else store_tag
        self._lock = threading.RLock()
        #: sentence vectors left for later by ``sync(defer_parts=True)``: (item id, seq,
        #: texts, content keys) per memory; ``index_deferred`` embeds them
        self._deferred: list[tuple[str, int, list[str], list[int]]] = []
        self._inflight = 0  # deferred sentences being embedded now (outside the lock)
        self._idle = threading.Condition(self._lock)
        self._generation = 0  # bumped by a rebuild: deferred work from before is void
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        #: the store's own dense search, when it has one (then there is no faiss index)
        source = getattr(store, "dense_source", None)
        self._db: Any = source(self.config.ef_search) if callable(source) else None
        self._index = self._new_index() if self._db is None else None
        self._watermark = 0
        self._executor: ThreadPoolExecutor | None = None
        self.report: dict[str, Any] = {}
        #: sentence vectors taken from an old snapshot / embedded, since the vault opened
        self._parts = {"reused": 0, "embedded": 0}
        self._open()

    def _new_index(self) -> VectorIndex:
        c = self.config
        return VectorIndex(self.embedder.dim, m=c.hnsw_m, ef_search=c.index_ef_search,
                           ef_construction=c.ef_construction, exact_below=c.exact_below)

    # -- keeping the index in step with the store --------------------------------------
    def _open(self) -> None:
        """Load the snapshot (or rebuild from the store) and catch up with the change feed.

        ``report`` says what opening did, for ``Vault.check()`` and ``memvault check``:
        ``index`` (loaded snapshot / rebuilt (why) / built from store), ``replayed`` (memories
        re-read from the change feed after the snapshot), ``indexed`` and ``seconds``."""
        started = time.monotonic()
        replayed = 0
        if self._db is not None:  # nothing to load, replay or rebuild
            self.report.update(self._db.describe(), seconds=0.0)
            return
        if self.index_dir is not None and self.index_dir.exists():
            reuse: dict[int, np.ndarray] = {}
            try:
                mark, tag = self._index.load(self.index_dir)
                if tag != self._tag or mark > self.store.last_change():
                    # a sound snapshot of other settings or another state: its sentence
                    # vectors are still those of the same texts
                    reuse = self._index.reusable()
                    self._index = self._new_index()  # free it before the rebuild
                    raise IntegrityError("index snapshot belongs to another store state")
                self._watermark = mark
                self.report["index"] = "loaded snapshot"
                if self._index.unset:  # an older snapshot: read what it lacks, embed nothing
                    self._fill_unset()
                    self.report["index"] = "loaded snapshot (speakers read from the store)"
                replayed = self.sync()
            except IntegrityError as exc:
                log.warning("rebuilding vector index: %s", exc)
                self.report["index"] = f"rebuilt ({exc})"
                self.rebuild(reuse=reuse)
        else:
            self.report["index"] = "built from store"
            self.rebuild()
        self.report.update(replayed=replayed, indexed=len(self._index), **self._parts,
                           seconds=round(time.monotonic() - started, 3))

    def _fill_unset(self) -> None:
        """Give an older snapshot's rows the attributes it did not keep, from the store."""
        for attr in self._index.unset:
            offset, values = 0, {}
            while True:
                page = self.store.select(RowQuery(order="seq_asc", limit=5000, offset=offset))
                values.update({r.item.id: _attrs(r.item)[attr] for r in page})
                if len(page) < 5000:
                    break
                offset += len(page)
            self._index.fill(attr, values)

    def rebuild(self, reuse: Mapping[int, np.ndarray] | None = None) -> int:
        """Rebuild the index from the record store; returns the number of memories indexed.

        ``reuse``: sentence vectors by content key (``VectorIndex.reusable``) to take
        instead of embedding those sentences again."""
        if self._db is not None:
            return self._db.count()  # the database's index is kept by the database
        with self._lock:
            mark = self.store.last_change()
            index = self._new_index()
            self._deferred, self._generation = [], self._generation + 1  # all embedded here
            for batch in self.store.scan_current():
                self._upsert(index, [r for r, _ in batch], [v for _, v in batch], reuse)
            self._index, self._watermark = index, mark
            self.sync()
            return len(index)

    def sync(self, progress: Callable[[int], None] | None = None, *,
             defer_parts: bool = False) -> int:
        """Apply the store's changes since the watermark; returns how many memories.

        ``progress(n)`` is called as each block of memories is indexed (a turn's sentence
        vectors are embedded here: after a large import this is long work).

        ``defer_parts``: index each new memory by its own vector now and leave its
        sentence vectors to :meth:`index_deferred`, which embeds them without holding the
        index: a writer that must make its memories searchable at once (the memory
        proxy's read-your-writes) does the cheap half on the critical path and the rest
        after, while searches go on. Searches never embed deferred sentences themselves
        (the deferrer owns them), so until then they find those memories by their whole
        text (dense and lexical) but not by their sentences."""
        if self._db is not None:
            return 0  # the database's index is current as soon as a write commits
        with self._lock:
            if self.store.last_change() == self._watermark:
                return 0
            mark, ids = self.store.changes(self._watermark)
            for start in range(0, len(ids), _SYNC_BLOCK):
                block = ids[start:start + _SYNC_BLOCK]
                rows = self.store.select(RowQuery(ids=block, statuses=("active",)))
                active = {r.item.id for r in rows}
                for item_id in block:
                    if item_id not in active:
                        self._index.remove(item_id)
                if rows:
                    vecs = self.store.embeddings([r.seq for r in rows])
                    if defer_parts:
                        self._upsert_deferring(rows, [vecs[r.seq] for r in rows])
                    else:
                        self._upsert(self._index, rows, [vecs[r.seq] for r in rows])
                if progress is not None:
                    progress(len(block))
            if ids:
                self._index.maybe_compact()
            self._watermark = mark
            return len(ids)

    def _upsert(self, index: VectorIndex, rows: list[StoredRow], vectors: list[np.ndarray],
                reuse: Mapping[int, np.ndarray] | None = None) -> None:
        """Index each memory's stored vector, and its sentences' vectors if it has parts
        (embedded here, or taken from ``reuse`` by content key)."""
        entries = [(r.item.id, r.seq, _attrs(r.item)) for r in rows]
        kinds = self.config.part_kinds
        texts: list[str] = []
        for entry, r in zip(list(entries), rows):
            if r.item.kind in kinds:
                pieces = part_texts(r.item, self.context, third=self.config.third_person)
                entries += [entry] * len(pieces)
                texts += pieces
        keys = [0] * len(vectors)
        if texts:
            text_keys = [_content_key(self.embedder.id, t) for t in texts]
            found = [None if reuse is None else reuse.get(k) for k in text_keys]
            fresh = sum(v is None for v in found)  # counted as embedded now (not reused)
            # a sentence the index holds already (said before) is not embedded again
            held = index.by_key([k for k, v in zip(text_keys, found) if v is None])
            found = [held.get(k) if v is None else v for k, v in zip(text_keys, found)]
            todo = [i for i, v in enumerate(found) if v is None]
            if todo:
                for i, vec in zip(todo, embed_unique(self.embedder, [texts[i] for i in todo])):
                    found[i] = vec
            self._parts["reused"] += len(texts) - fresh
            self._parts["embedded"] += fresh
            vectors = vectors + found  # type: ignore[operator]
            keys += text_keys
        index.upsert(entries, np.stack(vectors), keys)

    def _upsert_deferring(self, rows: list[StoredRow], vectors: list[np.ndarray]) -> None:
        """``_upsert`` without the sentences: they are queued for :meth:`index_deferred`."""
        self._index.upsert([(r.item.id, r.seq, _attrs(r.item)) for r in rows], np.stack(vectors))
        kinds = self.config.part_kinds
        for r in rows:
            if r.item.kind in kinds:
                pieces = part_texts(r.item, self.context, third=self.config.third_person)
                if pieces:
                    self._deferred.append((r.item.id, r.seq, pieces,
                                           [_content_key(self.embedder.id, t) for t in pieces]))

    @property
    def deferred(self) -> int:
        """Memories whose sentence vectors wait for :meth:`index_deferred`."""
        return len(self._deferred)

    def index_deferred(self, limit: int | None = None) -> int:
        """Embed and index the sentences ``sync(defer_parts=True)`` left (the first
        ``limit`` of them, if given: a caller that yields to other work between calls);
        returns how many.

        The embedding runs without the index lock, so searches in other threads go on
        meanwhile (seeing those memories by their whole text). A memory deleted or
        changed in between is skipped: its new version is indexed with its own parts."""
        with self._lock:
            work, self._deferred = self._deferred, []
            if limit is not None and limit < sum(len(w[2]) for w in work):
                work, self._deferred = _first_parts(work, max(1, limit))
            if not work:
                return 0
            generation = self._generation
            self._inflight += 1
        try:
            texts = [t for _, _, pieces, _ in work for t in pieces]
            vectors = embed_unique(self.embedder, texts)
        except BaseException:
            with self._lock:
                self._deferred = work + self._deferred  # not lost: the next call retries
                self._inflight -= 1
                self._idle.notify_all()
            raise
        with self._lock:
            try:
                if generation == self._generation:  # else a rebuild embedded them all
                    at = 0
                    for item_id, seq, pieces, keys in work:
                        self._index.extend(item_id, seq, vectors[at:at + len(pieces)], keys)
                        at += len(pieces)
                    self._parts["embedded"] += len(texts)
            finally:
                self._inflight -= 1
                self._idle.notify_all()
        return len(texts)

    def _settle_deferred(self) -> None:
        """Index every deferred sentence, and wait for the ones other threads are
        embedding (call with the lock held): a snapshot must not skip them, since its
        watermark is past their memories and nothing would index them after a reload."""
        while self._deferred or self._inflight:
            if self._deferred:
                self.index_deferred()  # the lock is held: embedded under it, as sync does
            else:
                self._idle.wait()

    def save(self) -> bool:
        """Snapshot the index so the next open skips the rebuild; False if it failed.

        A failed save (disk full, I/O error) is logged and reported, not raised: the
        snapshot is derived state, and closing a vault must not fail for it."""
        if self.index_dir is None or self._db is not None:
            return False
        with self._lock:
            self.sync()
            self._settle_deferred()
            try:
                self._index.save(self.index_dir, self._watermark, self._tag)
            except StorageError as exc:
                log.warning("index snapshot not saved: %s", exc)
                self.report["snapshot"] = f"not saved ({exc.message})"
                return False
            self.report["snapshot"] = "saved"
            return True

    @property
    def indexed(self) -> int:
        return self._db.count() if self._db is not None else len(self._index)

    @property
    def sentence_vectors(self) -> dict[str, int]:
        """Sentence vectors since the vault opened: ``embedded`` now, or ``reused`` from
        an old snapshot (the costly part of indexing chat turns)."""
        return dict(self._parts)

    # -- search ------------------------------------------------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=4,
                                                        thread_name_prefix="memvault-lexical")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: list[str]) -> list[np.ndarray]:
        """Vectors for ``texts``, cached; the ones not cached are embedded in one batch
        (a question and its voiced form cost little more than one)."""
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vecs = self.embedder.embed(missing)
            with self._lock:
                for t, vec in zip(missing, vecs):
                    found[t] = self._cache[t] = vec
                while len(self._cache) > self.config.query_cache:
                    self._cache.popitem(last=False)
        return [found[t] for t in texts]

    def search(self, text: str, query: RowQuery, k: int, *,
               events: bool = True, tier: str | None = None) -> list[Candidate]:
        """First stage (dense + lexical, fused), then link expansion and speaker cue.

        ``events``: a question placed around an event ("before she moved to Porto")
        searches for the event first, to know when it was (one level deep, without the
        current-truth priors: the event is wanted as it was said). ``tier`` (default
        ``config.tier``): "flat", or through the summaries first ("summaries", "auto":
        see :mod:`.tier`)."""
        if (tier or self.config.tier) != "flat":
            from .tier import tiered

            return tiered(self, text, query, k, tier or self.config.tier)
        c = self.config
        n = max(c.candidates, 2 * k)
        fused = self.first_stage(text, query, n)[:max(c.rerank_depth, 2 * k)]
        sources = {seq: src for seq, _, src in fused}
        scores = {seq: score for seq, score, _ in fused}
        # the current-truth priors: not when time travel already chose, nor for an event
        # looked up for a question (it is wanted as it was said)
        priors = events and query.as_of is None and query.known_at is None
        window = time_window(text, now=time.time(), slack_days=0.0)
        span = None if window is None else (window.after, window.before)
        if span is None and priors and c.topic_gamma > 0 and asked(text):
            span = self._event_span(text, query)  # "before she moved to Porto"
        asks = topic_question(text, span) if priors and c.topic_gamma > 0 else None
        aliases = self._aliases(text, query) if asks is not None else None
        if asks is not None:  # statements sharing no word with the question
            low = min(scores.values(), default=1.0) * 0.5
            for seq in self._asserting(text, query, asks[1], aliases):
                scores.setdefault(seq, low)
            if "lexical" in c.retrievers:  # vaults written before the topic keys
                for seq, _ in self.store.lexical(topic_words(asks[1]), query, n):
                    scores.setdefault(seq, low)
        rows = self.store.by_seqs(list(scores), query)
        scores = {seq: s for seq, s in scores.items() if seq in rows}
        if c.link_beta > 0 and c.link_hops > 0:
            expanded = expand_links(self.store, query, scores, rows, beta=c.link_beta,
                                    hops=c.link_hops, top=n, skip=c.link_skip)
            for seq, s in expanded.items():
                if s != scores.get(seq, 0.0):
                    sources.setdefault(seq, {})["links"] = round(s - scores.get(seq, 0.0), 6)
            scores = expanded
        for cue, boost, gamma in (("speaker", speaker_boost, c.speaker_gamma),
                                  ("name", name_boost, c.name_gamma)):
            boosted = boost(text, scores, rows, gamma=gamma)
            for seq in (seq for seq, s in boosted.items() if s != scores[seq]):
                sources.setdefault(seq, {})[cue] = 1.0
            scores = boosted
        boosted = length_prior(scores, rows, beta=c.length_beta, chars=c.length_chars)
        if priors:
            boosted = validity_prior(text, boosted, rows, now=time.time(), window=span,
                                     penalty=c.stale_penalty, gamma=c.truth_gamma)
            boosted = topic_prior(text, boosted, rows, gamma=c.topic_gamma, window=span,
                                  ask=asks, aliases=aliases)
        return [Candidate(seq, s, sources.get(seq, {}), rows[seq])
                for seq, s in ranked(boosted, k) if seq in rows]

    def first_stage(self, text: str, query: RowQuery, n: int
                    ) -> list[tuple[int, float, dict[str, float]]]:
        """Dense (and voice, and when) + lexical, ``n`` each, fused: (seq, score, sources),
        best first, no rows read. The summary tier ranks with this alone: the query's
        vectors come from the cache the flat search filled, so a second ranking costs a
        masked index search and a BM25 query, not a second pipeline."""
        c = self.config
        rankings: dict[str, list[tuple[int, float]]] = {}
        lexical = None
        voiced: str | None = None
        if "dense" in c.retrievers:
            # first, before BM25 starts on another thread: these are Python, and would
            # wait for the GIL behind it (sync's 7 us query took 2-6 ms that way)
            self.sync()  # once: the voice reads the index's speakers, the lists its rows
            voiced = self._voiced(text, query) if c.voice_weight > 0 else None
        with self._lock:
            embeds = "dense" in c.retrievers and text not in self._cache
        if "lexical" in c.retrievers and (
                embeds or not getattr(self.store, "lexical_in_memory", False)):
            # BM25 needs no query vector: run it in the database while the query is
            # embedded (both release the GIL), so a search costs max(embed + dense, BM25),
            # not the sum. BM25 held in memory (SQLite) is ~1 ms of Python and numpy: with
            # no embedding to overlap, the hand-off to a thread (and the GIL the two
            # threads then share) cost more than that, so it runs here, after dense.
            lexical = self._pool().submit(self.store.lexical, terms(text), query, n)
        if "dense" in c.retrievers:
            qvec, *voice = self.embed_queries([text] if voiced is None else [text, voiced])
            found = self._dense_many([qvec, *voice], query, n, sync=False)
            rankings["dense"] = found[0]
            if voice:
                rankings["voice"] = found[1]
            dated = self._dated(text, query) if c.time_weight > 0 else None
            if dated is not None:
                rankings["when"] = self._dense_many([qvec], dated, n, sync=False)[0]
        if lexical is not None:
            rankings["lexical"] = lexical.result()
        elif "lexical" in c.retrievers:
            rankings["lexical"] = self.store.lexical(terms(text), query, n)
        weights = {"when": c.time_weight, "voice": c.voice_weight, **c.weights}
        return fuse(c.fusion, rankings, k=c.rrf_k, weights=weights)

    def first_ranked(self, text: str, query: RowQuery, k: int) -> list[Candidate]:
        """The best ``k`` by :meth:`first_stage` alone, rows read for those ``k`` only."""
        fused = self.first_stage(text, query, max(self.config.candidates, 2 * k))[:k]
        rows = self.store.by_seqs([seq for seq, _, _ in fused], query)
        return [Candidate(seq, score, dict(src), rows[seq]) for seq, score, src in fused
                if seq in rows]

    def _event_span(self, text: str, query: RowQuery) -> tuple[float | None, float | None] | None:
        """The valid-time window before or after the event ``text`` names, from the best
        memory of that event in the same scope."""
        found = event_phrase(text)
        if found is None:
            return None
        side, event = found
        hits = self.search(event, query, 1, events=False)
        if not hits:
            return None
        at = began(hits[0].row.item)
        return (None, at) if side == "before" else (at, None)

    def _asserting(self, text: str, query: RowQuery, wanted: set[str],
                   aliases: dict[str, set[str]] | None) -> list[int]:
        """The memories recorded on write as asserting one of ``wanted`` about a person
        ``text`` names (``topic|<who>|<attribute>`` keys, :mod:`memvault.temporal`), by
        any name or handle they go by: the topic prior sees every such statement, not
        only those the first stage found."""
        words = {w.lower() for w in re.findall(r"\b[A-Z][^\W\d_'-]+\b", text)}
        if not words:
            return []
        who = set(words)
        for handles in (aliases or {}).values():
            who |= handles
        if self._db is not None:
            speakers = self._db.known_speakers()
        else:
            with self._lock:
                speakers = self._index.known("speaker")
        who |= {s.lower() for s in speakers if s and s.strip()
                and (s.lower().split()[0] in words or any(named_by(w, s) for w in words))}
        keys = [f"topic|{w}|{a}" for w in sorted(who) for a in sorted(wanted)]
        rows = self.store.select(replace(query, truth_any=keys, limit=_ASSERTING))
        return [r.seq for r in rows]

    def _aliases(self, text: str, query: RowQuery) -> dict[str, set[str]]:
        """Name -> handles, for the names in ``text`` that speakers were found to go by
        (greetings and introductions, recorded on write by memvault.temporal)."""
        words = {w.lower() for w in re.findall(r"\b[A-Z][a-z]+\b", text)}
        if not words:
            return {}
        rows = self.store.select(RowQuery(scope=dict(query.scope), limit=50,
                                          truth_any=[f"alias|{w}" for w in sorted(words)]))
        out: dict[str, set[str]] = {}
        for row in rows:
            for s in row.item.provenance.get("truth") or ():
                if isinstance(s, dict) and s.get("a") == "alias" and s.get("v") in words:
                    out.setdefault(str(s["v"]), set()).add(str(s.get("s")).lower())
        return out

    def _voiced(self, text: str, query: RowQuery) -> str | None:
        """``text`` in the first person of the speakers it names, if it names any whose
        memories are in the query's scope (read from the index: ``search`` synced it)."""
        if self._db is not None:
            named = named_in(text, self._db.known_speakers())
            return in_voice(text, self._db.speakers_in(named, query)) if named else None
        with self._lock:
            if not named_in(text, self._index.known("speaker")):
                return None  # most queries: no mask over the whole index
            speakers = self._index.values("speaker", self._index.mask(dict(query.scope)))
        return in_voice(text, speakers)

    def _dated(self, text: str, query: RowQuery) -> RowQuery | None:
        """``query`` narrowed to the window of event time ``text`` names, if it names one
        and the window overlaps the query's own bounds."""
        window = time_window(text, now=time.time(), slack_days=self.config.time_slack_days)
        if window is None:
            return None
        after = max((t for t in (window.after, query.event_after) if t is not None),
                    default=None)
        before = min((t for t in (window.before, query.event_before) if t is not None),
                     default=None)
        if after is not None and before is not None and after >= before:
            return None
        return replace(query, event_after=after, event_before=before)

    def dense(self, qvec: np.ndarray, query: RowQuery, n: int) -> list[tuple[int, float]]:
        """Top ``n`` (seq, cosine) for ``qvec`` among the rows ``query`` selects."""
        return self._dense_many([qvec], query, n)[0]

    def _dense_many(self, qvecs: list[np.ndarray], query: RowQuery, n: int, *,
                    sync: bool = True) -> list[list[tuple[int, float]]]:
        """``dense`` for several query vectors over the same rows: one filter, one mask."""
        if self._db is not None:  # the store filters and walks its own index
            return self._db.search_many(qvecs, query, n)
        if query.as_of is not None or query.known_at is not None or \
                tuple(query.statuses or ()) != ("active",):
            # the index holds current active rows only
            return [self._exact(qvec, query, n) for qvec in qvecs]
        where: dict[str, Any] = dict(query.scope)
        if query.kinds is not None:
            where["kind"] = [k for k in query.kinds if k not in (query.exclude_kinds or ())]
        needs_sql = bool(query.ids or query.seqs or query.tags_any or query.metadata) or any(
            v is not None for v in (query.event_after, query.event_before,
                                    query.created_after, query.created_before))
        seqs = self.store.seqs(replace(query, limit=None, offset=0)) if needs_sql else None
        with self._lock:
            if sync:
                self.sync()
            if query.exclude_kinds and query.kinds is None:  # every kind the index has seen
                where["kind"] = [k for k in self._index.known("kind")
                                 if k not in query.exclude_kinds]
            mask = self._index.mask(where, seqs)
            return [self._index.search(qvec, n, mask) for qvec in qvecs]

    def _exact(self, qvec: np.ndarray, query: RowQuery, n: int) -> list[tuple[int, float]]:
        seqs = self.store.seqs(replace(query, limit=None, offset=0))
        vecs = self.store.embeddings(seqs)
        if not vecs:
            return []
        keys = np.fromiter(vecs.keys(), dtype=np.int64, count=len(vecs))
        scores = np.stack(list(vecs.values())) @ qvec
        top = top_k(scores, n, keys)
        return [(int(keys[i]), float(scores[i])) for i in top]


def _content_key(embedder_id: str, text: str) -> int:
    """A 64-bit key of what was embedded, by which embedder (never 0: 0 means none)."""
    digest = hashlib.blake2b(f"{embedder_id}\x00{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1


def _attrs(item: Any) -> dict[str, str | None]:
    out = {a: getattr(item, a) for a in ATTRS if a != "speaker"}
    out["speaker"] = name_of(item)
    return out


def _first_parts(work: list[Any], n: int) -> tuple[list[Any], list[Any]]:
    """Deferred sentence work split after its first ``n`` sentences (a memory's pieces
    may be split: the rest stay queued, in order)."""
    head: list[Any] = []
    for at, (item_id, seq, pieces, keys) in enumerate(work):
        if n <= 0:
            return head, work[at:]
        if len(pieces) > n:
            head.append((item_id, seq, pieces[:n], keys[:n]))
            return head, [(item_id, seq, pieces[n:], keys[n:]), *work[at + 1:]]
        head.append((item_id, seq, pieces, keys))
        n -= len(pieces)
    return head, []
