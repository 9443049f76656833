"""FTS5's BM25, computed in memory: the same scores, without FTS5's per-query work.

Why: FTS5 computes ``bm25()`` row by row through its extension API (about 1.6 us per
matching row, plus one document-size read each), and a search ranks every row that
matches any query word: at 10k memories that was 3-9 ms per search, at 100k 17 ms, the
largest part of ``Vault.search``. Here the postings live in numpy arrays and a query's
scores are a few vector operations over the matching rows.

Exactness, not an approximation: the tokens are FTS5's own (read from the table's
``fts5vocab`` instance view when the index is built, and produced by a private in-memory
FTS5 table with the same tokenizer for rows written later and for query words), and the
score follows ``fts5Bm25Function`` in SQLite's ``fts5_aux.c`` operation by operation, in
float64, phrase by phrase in the query's order: ``idf * ((f * (k1 + 1)) / (f + k1 * (1 - b
+ b * D / avgdl)))`` summed from 0.0, with ``idf = log((N - n + 0.5) / (n + 0.5))`` (1e-6
when not positive), ``N`` rows, ``n`` rows holding the phrase, ``D`` the row's tokens in
all columns, ``avgdl`` all tokens / ``N``, ``f`` the row's hits weighted by column.

Staying in step: before each query the index compares ``PRAGMA data_version`` of its
own connection (it moves on any other connection's commit, in this process or another);
on a change it reads the rows past its high-water mark (``seq`` is AUTOINCREMENT: never
reused) and checks its row and token totals against FTS5's own (the ``averages``
record). A mismatch (rows purged, a table rebuilt) means a rebuild. A query word FTS5
splits into a phrase ("gluten-free") is counted from its rows' tokens with positions; a
word with no token at all returns ``None`` and the caller asks FTS5.
"""

from __future__ import annotations

import json
import logging
import math
from array import array
import sqlite3
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # numpy loads on the first search, not when a store opens
    import numpy as np


__all__ = ["MemoryBM25"]

log = logging.getLogger("memvault.storage")

#: FTS5's bm25 constants (fts5_aux.c)
_K1 = 1.2
_B = 0.75
#: the column weights ``SQLiteStore.lexical`` asks FTS5 for: search_text, tags
WEIGHTS = (1.0, 0.5)
_TOKENIZER = "porter unicode61 remove_diacritics 2"  # as in migrations/sqlite/0001
#: query words whose tokens are remembered (each costs a round trip to the tokenizer)
_TERM_CACHE = 20_000
#: rows past the high-water mark above which a rebuild from FTS5's own instance list is
#: cheaper than tokenizing them again one by one
_REBUILD_AFTER = 5_000


class _Disagrees(Exception):
    """The index and FTS5's own totals differ after a rebuild."""


def _varints(blob: bytes) -> list[int]:
    """SQLite's varints (big-endian 7-bit groups, a 9th byte of 8 bits), as FTS5 stores
    its ``averages`` record: row count, then the token count of each column."""
    out, i = [], 0
    while i < len(blob):
        value = 0
        for j in range(9):
            byte = blob[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        out.append(value)
    return out


class MemoryBM25:
    """Postings of the ``versions_fts`` table in memory; see the module docstring.

    ``connect`` opens a connection to the store's database (this index keeps one of its
    own: its ``data_version`` is the change signal, and it reads new rows with it)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._tok: sqlite3.Connection | None = None
        self._version: int | None = None
        self._built = False
        self._broken = False
        self._terms: dict[str, tuple[str, ...]] = {}
        self._reset()

    def _reset(self) -> None:
        self._watermark = 0
        # compact arrays, not lists (4-8 bytes an entry, not ~36): 100k memories hold
        # millions of postings
        self._seqs: array[int] = array("q")  # doc index -> seq, ascending
        self._lens: array[int] = array("i")  # doc index -> tokens in all columns
        self._tokens = 0
        #: term -> ([doc index], [hits in search_text], [hits in tags]), docs ascending
        self._post: dict[str, tuple[array[int], array[int], array[int]]] = {}
        #: phrase (tokens) -> (doc indexes, weighted hits)
        self._arrays: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._seq_arr: np.ndarray | None = None
        self._len_arr: np.ndarray | None = None

    def close(self) -> None:
        with self._lock:
            for conn in (self._conn, self._tok):
                if conn is not None:
                    conn.close()
            self._conn = self._tok = None
            self._reset()
            self._built = False

    # -- keeping in step with the table ---------------------------------------------------
    def _sync(self) -> None:
        if self._conn is None:
            self._conn = self._connect()
            self._conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.memvault_fts_inst "
                               "USING fts5vocab(main, versions_fts, instance)")
        conn = self._conn
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._built and version == self._version:
            return
        conn.execute("BEGIN")
        try:
            found = conn.execute("SELECT block FROM versions_fts_data WHERE id = 1").fetchone()
            totals = _varints(found[0]) if found and found[0] else [0]
            rows, tokens = totals[0], sum(totals[1:])
            new = 0
            if self._built:
                new = conn.execute("SELECT count(*) FROM versions WHERE seq > ?",
                                   (self._watermark,)).fetchone()[0]
            if not self._built or new > _REBUILD_AFTER or len(self._seqs) + new != rows:
                self._build(conn)
            elif new:
                self._add(conn.execute("SELECT seq, search_text, tags FROM versions "
                                       "WHERE seq > ? ORDER BY seq",
                                       (self._watermark,)).fetchall())
            if len(self._seqs) != rows or self._tokens != tokens:
                self._build(conn)  # e.g. a row purged and another written in between
            if len(self._seqs) != rows or self._tokens != tokens:
                raise _Disagrees(f"in-memory BM25 disagrees with FTS5 ({len(self._seqs)} "
                                   f"rows / {self._tokens} tokens vs {rows} / {tokens})")
        finally:
            conn.execute("COMMIT")
        self._version, self._built = version, True

    def _build(self, conn: sqlite3.Connection) -> None:
        """Every row, from FTS5's own token list (no tokenizing again)."""
        self._reset()
        seqs = [r[0] for r in conn.execute("SELECT rowid FROM versions_fts_docsize "
                                           "ORDER BY rowid")]
        at = {seq: i for i, seq in enumerate(seqs)}
        lens = [0] * len(seqs)
        post = self._post
        for term, doc, col in conn.execute(
                "SELECT term, doc, col FROM temp.memvault_fts_inst"):
            i = at[doc]
            lens[i] += 1
            entry = post.get(term)
            if entry is None:
                entry = post[term] = (array("i"), array("I"), array("I"))
            docs = entry[0]
            if not docs or docs[-1] != i:
                if docs and docs[-1] > i:  # never seen: the view walks docs in order
                    raise _Disagrees("fts5vocab returned documents out of order")
                docs.append(i)
                entry[1].append(0)
                entry[2].append(0)
            entry[1 if col == "search_text" else 2][-1] += 1
        self._seqs, self._lens, self._tokens = array("q", seqs), array("i", lens), sum(lens)
        # every versions row has its FTS5 row (triggers, same transaction)
        self._watermark = seqs[-1] if seqs else 0

    def _tokenizer(self) -> sqlite3.Connection:
        if self._tok is None:
            tok = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            tok.execute(f"CREATE VIRTUAL TABLE t USING fts5(a, b, tokenize='{_TOKENIZER}')")
            tok.execute("CREATE VIRTUAL TABLE ti USING fts5vocab(t, instance)")
            self._tok = tok
        return self._tok

    def _tokenize(self, rows: Sequence[tuple[int, Any, Any]]
                  ) -> list[tuple[str, int, str, int]]:
        """(term, rowid, column, offset) of ``rows`` (rowid, search_text, tags), as
        FTS5 with the table's tokenizer makes them."""
        tok = self._tokenizer()
        tok.execute("BEGIN")
        try:
            tok.executemany("INSERT INTO t(rowid, a, b) VALUES (?,?,?)", rows)
            out = tok.execute("SELECT term, doc, col, offset FROM ti").fetchall()
            tok.execute("DELETE FROM t")
        finally:
            tok.execute("COMMIT")
        return out

    def _add(self, rows: list[tuple[int, Any, Any]]) -> None:
        by_doc: dict[int, dict[str, list[int]]] = {}
        for term, doc, col, _ in self._tokenize(rows):
            hits = by_doc.setdefault(doc, {}).setdefault(term, [0, 0])
            hits[0 if col == "a" else 1] += 1
        for seq, _, _ in rows:
            i = len(self._seqs)
            self._seqs.append(seq)
            terms = by_doc.get(seq, {})
            n = sum(a + b for a, b in terms.values())
            self._lens.append(n)
            self._tokens += n
            for term, (a, b) in terms.items():
                entry = self._post.get(term)
                if entry is None:
                    entry = self._post[term] = (array("i"), array("I"), array("I"))
                entry[0].append(i)
                entry[1].append(a)
                entry[2].append(b)
                self._arrays.pop((term,), None)
            self._watermark = seq
        for key in [key for key in self._arrays if len(key) > 1]:
            del self._arrays[key]  # phrases: counted again when asked
        self._seq_arr = self._len_arr = None

    # -- queries --------------------------------------------------------------------------
    def _tokens_of(self, words: Sequence[str]) -> list[tuple[str, ...]]:
        missing = [w for w in dict.fromkeys(words) if w not in self._terms]
        if missing:
            if len(self._terms) + len(missing) > _TERM_CACHE:
                self._terms.clear()
            found: dict[int, list[tuple[int, str]]] = {}
            rows = [(i + 1, w, None) for i, w in enumerate(missing)]
            for term, doc, _, offset in self._tokenize(rows):
                found.setdefault(doc, []).append((offset, term))
            for i, w in enumerate(missing):
                self._terms[w] = tuple(t for _, t in sorted(found.get(i + 1, [])))
        return [self._terms[w] for w in words]

    def _posting(self, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(doc indexes, weighted hits) of a phrase: one token, or several in a row."""
        import numpy as np
        arrays = self._arrays.get(key)
        if arrays is None:
            entry = self._post.get(key[0]) if len(key) == 1 else None
            if len(key) > 1:
                arrays = self._phrase(key)
            elif entry is None:
                arrays = (np.zeros(0, dtype=np.int64), np.zeros(0))
            else:
                a = np.array(entry[1], dtype=np.float64)
                b = np.array(entry[2], dtype=np.float64)
                # aFreq accumulates one weight per hit: a*1.0 + b*0.5 is exact in float64
                arrays = (np.array(entry[0], dtype=np.int64), a * WEIGHTS[0] + b * WEIGHTS[1])
            self._arrays[key] = arrays
        return arrays

    def _phrase(self, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """A phrase's hits ("gluten-free" is the tokens gluten, free in a row): the rows
        holding all its tokens are tokenized again, with positions, and the phrase
        counted where its tokens follow each other in one column, as FTS5 matches it."""
        import numpy as np
        docs = self._posting(key[:1])[0]
        for token in key[1:]:
            docs = np.intersect1d(docs, self._posting((token,))[0], assume_unique=True)
        if not len(docs):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        assert self._conn is not None
        seqs = [self._seqs[i] for i in docs.tolist()]
        rows = self._conn.execute(
            "SELECT seq, search_text, tags FROM versions WHERE seq IN "
            "(SELECT value FROM json_each(?))", (json.dumps(seqs),)).fetchall()
        at: dict[tuple[int, str, int], str] = {}
        for term, doc, col, offset in self._tokenize(rows):
            at[(doc, col, offset)] = term
        hits: dict[int, list[int]] = {}
        for (doc, col, offset), term in at.items():
            if term == key[0] and all(at.get((doc, col, offset + j)) == key[j]
                                      for j in range(1, len(key))):
                hits.setdefault(doc, [0, 0])[0 if col == "a" else 1] += 1
        index = {seq: i for seq, i in zip(seqs, docs.tolist())}
        found = sorted((index[seq], a * WEIGHTS[0] + b * WEIGHTS[1])
                       for seq, (a, b) in hits.items())
        return (np.asarray([d for d, _ in found], dtype=np.int64),
                np.asarray([f for _, f in found], dtype=np.float64))

    def rank(self, words: Sequence[str], max_matches: int
             ) -> tuple[np.ndarray, np.ndarray] | None:
        """Every row matching any of ``words`` as (seqs, scores), best first, ties by
        seq, with FTS5's scores for the query ``SQLiteStore.lexical`` would send (after
        its pruning of common words, the same rule on the same counts); None if this
        index cannot answer exactly (the caller asks FTS5)."""
        import numpy as np
        if self._broken or not self._lock.acquire(blocking=self._built):
            return None  # the first build is under way in another thread: FTS5 answers
        try:
            if not self._checked_sync():
                return None
            toks = self._tokens_of(list(words))
            if not all(toks):
                return None  # a word with no token: left to FTS5
            phrase = dict(zip(words, toks))
            kept = _prune(list(words), max_matches,
                          {w: len(self._posting(phrase[w])[0]) for w in words},
                          lambda ws: self._union(phrase[w] for w in ws))
            n_rows = len(self._seqs)
            if n_rows == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0)
            if self._seq_arr is None or self._len_arr is None:
                self._seq_arr = np.array(self._seqs, dtype=np.int64)  # a copy: the array grows
                self._len_arr = np.array(self._lens, dtype=np.float64)
            avgdl = float(self._tokens) / float(n_rows)
            scores = np.zeros(n_rows)
            hit = np.zeros(n_rows, dtype=bool)
            for w in kept:
                docs, f = self._posting(phrase[w])
                if not len(docs):
                    continue
                n_hit = len(docs)
                idf = math.log((n_rows - n_hit + 0.5) / (n_hit + 0.5))
                if idf <= 0.0:
                    idf = 1e-6
                dl = self._len_arr[docs]
                part = idf * ((f * (_K1 + 1.0)) / (f + _K1 * (1 - _B + _B * dl / avgdl)))
                scores[docs] += part
                hit[docs] = True
            idx = np.flatnonzero(hit)
            order = np.argsort(-scores[idx], kind="stable")  # docs ascend with seq: ties by seq
            top = idx[order]
            return self._seq_arr[top], scores[top]
        finally:
            self._lock.release()

    @property
    def usable(self) -> bool:
        """False once the index was found to disagree with FTS5 (FTS5 answers then)."""
        return not self._broken

    def warm(self) -> None:
        """Build the index, or catch up with the rows written since: what the next
        query would do first, done now (at open, after a write) off its path."""
        with self._lock:
            if not self._broken:
                self._checked_sync()

    def _checked_sync(self) -> bool:
        try:
            self._sync()
            return True
        except _Disagrees as exc:  # never seen; FTS5 stays right, so it answers
            log.error("in-memory BM25 disabled for this store: %s", exc)
            self._broken = True
            return False

    def _union(self, terms: Any) -> int:
        """Rows holding any of ``terms`` (what FTS5 counted for the OR query)."""
        import numpy as np
        mark = np.zeros(len(self._seqs), dtype=bool)
        if not len(mark):
            return 0
        for t in terms:
            mark[self._posting(t)[0]] = True
        return int(np.count_nonzero(mark))


def _prune(words: list[str], limit: int, df: dict[str, int],
           union: Callable[[list[str]], int]) -> list[str]:
    """``sqlite._prune_common_terms`` on counts from memory: the same words, same order."""
    if len(words) < 2:
        return words
    total = sum(df.values())
    if total <= limit or (max(df.values()) <= limit and union(words) <= limit):
        return words
    kept = sorted(words, key=lambda t: df[t])
    while len(kept) > 1 and sum(df[t] for t in kept) > limit:
        kept.pop()
    return kept
