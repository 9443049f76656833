"""In-memory vector index over the current, active version of every memory.

It is derived state: the record store holds every embedding, and the index can always be
rebuilt from it. Two search paths, chosen per query:

* HNSW (faiss ``IndexHNSWFlat``, inner product on unit vectors) for broad queries, with a
  bitmap selector so that filtered-out and dead rows are never returned;
* exact brute force over the selected rows when a filter leaves few of them, where graph
  search would wander through mostly-excluded nodes and lose recall.

HNSW cannot delete, so superseded rows are marked dead and skipped; once more than a
quarter of the rows are dead the graph is rebuilt from the live ones.

A memory may own several rows (its whole text and its sentences, see
``SearchConfig.part_kinds``): search scores a memory by its best row and returns it once.
A row embedded by the index itself (a sentence) keeps a content key of what was embedded,
so a rebuild can take its vector from the old snapshot instead of embedding it again.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import faiss
import numpy as np

from .._filelock import file_lock
from .._files import sha256_file
from ..errors import IntegrityError, StorageError

__all__ = ["VectorIndex", "ATTRS"]

#: Row attributes kept beside each vector so that scope/kind filters cost no SQL; the
#: speaker (``metadata["speaker"]``) also tells the searcher whose names a query may use.
ATTRS: tuple[str, ...] = ("user_id", "agent_id", "session_id", "cube_id", "kind", "speaker")
_FORMAT = 3  # 2: a memory may own several rows; 3: the speaker is kept
#: Attributes a format-2 snapshot lacks: it loads with them unset (see ``unset``).
_ADDED_IN_3 = ("speaker",)


class VectorIndex:
    def __init__(self, dim: int, *, m: int = 32, ef_search: int = 128,
                 ef_construction: int = 80, exact_below: int = 2_000) -> None:
        self.dim = dim
        self.m, self.ef_search, self.ef_construction = m, ef_search, ef_construction
        self.exact_below = exact_below
        self._reset()

    def _reset(self) -> None:
        self._hnsw = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        self._hnsw.hnsw.efConstruction = self.ef_construction
        self._hnsw.hnsw.efSearch = self.ef_search
        self._seq = np.zeros(0, dtype=np.int64)  # position -> store seq
        self._alive = np.zeros(0, dtype=bool)
        self._key = np.zeros(0, dtype=np.int64)  # content key of an embedded part; 0: none
        self._codes = {a: np.zeros(0, dtype=np.int32) for a in ATTRS}
        self._vocab: dict[str, dict[str | None, int]] = {a: {None: 0} for a in ATTRS}
        self._pos_of_item: dict[str, list[int]] = {}
        self._item_at: list[str] = []
        self._live = 0  # alive rows; more than len(self) when memories own several
        #: masks by filter, and the packed selector of the last one searched; both are
        #: dropped whenever a row or attribute changes (see ``_changed``)
        self._masks: dict[Any, np.ndarray] = {}
        self._packed: tuple[np.ndarray, int, np.ndarray] | None = None
        #: Attributes an older snapshot did not keep: every row has None until ``fill``.
        self.unset: tuple[str, ...] = ()

    def _changed(self) -> None:
        self._masks.clear()
        self._packed = None

    # -- maintenance -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pos_of_item)

    @property
    def dead(self) -> int:
        return len(self._seq) - self._live

    def upsert(self, rows: Sequence[tuple[str, int, Mapping[str, str | None]]],
               vectors: np.ndarray, keys: Sequence[int] | np.ndarray | None = None) -> None:
        """Add ``(item_id, seq, attrs)`` rows; an item's previous rows become dead.

        Rows repeating an item id in one call all belong to that item (its parts).
        ``keys``: per row, the content key of the text its vector was embedded from (0 for
        a vector that came from the store); see ``reusable``."""
        if not rows:
            return
        for item_id in {r[0] for r in rows}:
            self.remove(item_id)
        codes = {a: [self._vocab[a].setdefault(r[2].get(a), len(self._vocab[a])) for r in rows]
                 for a in ATTRS}
        self._append([r[0] for r in rows], [r[1] for r in rows], codes, vectors, keys)

    def extend(self, item_id: str, seq: int, vectors: np.ndarray, keys: Sequence[int]) -> bool:
        """Add rows to a memory indexed already (its sentences, embedded after it was made
        searchable), with the attributes of its first row. False, and nothing added, when
        the memory is no longer indexed at ``seq``: its newer version brings its own."""
        positions = self._pos_of_item.get(item_id)
        if not positions or int(self._seq[positions[0]]) != seq:
            return False
        n, p = len(keys), positions[0]
        codes = {a: [int(self._codes[a][p])] * n for a in ATTRS}
        self._append([item_id] * n, [seq] * n, codes, vectors, keys)
        return True

    def _append(self, items: Sequence[str], seqs: Sequence[int],
                codes: Mapping[str, Sequence[int]], vectors: np.ndarray,
                keys: Sequence[int] | np.ndarray | None) -> None:
        self._changed()
        n = len(items)
        key = (np.zeros(n, np.int64) if keys is None
               else np.asarray(keys, dtype=np.int64).reshape(n))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(n, self.dim)
        start = len(self._seq)
        self._hnsw.add(vectors)
        self._seq = np.concatenate([self._seq, np.asarray(seqs, np.int64)])
        self._alive = np.concatenate([self._alive, np.ones(n, bool)])
        self._key = np.concatenate([self._key, key])
        for a in ATTRS:
            self._codes[a] = np.concatenate([self._codes[a], np.asarray(codes[a], np.int32)])
        for offset, item_id in enumerate(items):
            self._pos_of_item.setdefault(item_id, []).append(start + offset)
            self._item_at.append(item_id)
        self._live += n

    def remove(self, item_id: str) -> None:
        positions = self._pos_of_item.pop(item_id, None)
        if positions is not None:
            self._changed()
            self._alive[positions] = False
            self._live -= len(positions)

    def maybe_compact(self) -> bool:
        """Rebuild the graph without dead rows once they are a quarter of it."""
        if self.dead <= max(1000, len(self._seq) // 4):
            return False
        live = np.flatnonzero(self._alive)
        vecs = self._vectors()[live].copy()
        keys = self._key[live].copy()
        rows = [(self._item_at[p], int(self._seq[p]),
                 {a: self._decode(a, self._codes[a][p]) for a in ATTRS}) for p in live]
        self._reset()
        self.upsert(rows, vecs, keys)
        return True

    def reusable(self) -> dict[int, np.ndarray]:
        """``{content key: vector}`` of the live rows the index embedded itself: what a
        rebuild with other settings can take instead of embedding the same text again.
        The vectors are rows of one copy, so the index can be dropped before the rebuild."""
        live = np.flatnonzero(self._alive & (self._key != 0))
        vecs = self._vectors()[live]  # fancy indexing: already a copy
        return dict(zip(self._key[live].tolist(), vecs))

    def by_key(self, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """``{content key: vector}`` for those of ``keys`` some row was embedded from: a
        sentence said again ("Thanks!", a turn's sentence in the third person that another
        turn said) is not embedded again. Dead rows count: faiss keeps their vectors until
        a compaction drops them."""
        if not len(keys) or not len(self._key):
            return {}
        hit = np.flatnonzero(np.isin(self._key, np.asarray(keys, dtype=np.int64)))
        if not hit.size:
            return {}
        vecs = self._vectors()
        return {int(self._key[p]): vecs[p].copy() for p in hit.tolist()}

    def _decode(self, attr: str, code: int) -> str | None:
        for value, c in self._vocab[attr].items():
            if c == code:
                return value
        return None

    def _vectors(self) -> np.ndarray:
        """The raw float32 rows held by faiss, viewed without copying."""
        n = self._hnsw.ntotal
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        flat = faiss.downcast_index(self._hnsw.storage)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    # -- search ------------------------------------------------------------------------
    def mask(self, where: Mapping[str, str | Sequence[str]] | None = None,
             seqs: Iterable[int] | None = None) -> np.ndarray:
        """Boolean mask over positions: alive, matching every attribute, within ``seqs``.

        Without ``seqs`` the mask is kept (read-only) until the index changes: nearly
        every search asks for the same one (all kinds but working memory, one scope), and
        at 100k rows building it cost as much as the graph search."""
        key = None
        if seqs is None:
            key = tuple(sorted((attr, (wanted,) if isinstance(wanted, str)
                                else tuple(sorted(wanted)))
                               for attr, wanted in (where or {}).items()))
            found = self._masks.get(key)
            if found is not None:
                return found
        mask = self._alive.copy()
        for attr, wanted in (where or {}).items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            vocab = self._vocab[attr]
            table = np.zeros(len(vocab) + 1, dtype=bool)  # code -> wanted (codes < len)
            table[[vocab[v] for v in values if v in vocab]] = True
            mask &= table[self._codes[attr]]
        if seqs is not None:
            mask &= np.isin(self._seq, np.fromiter(seqs, dtype=np.int64))
        if key is not None:
            if len(self._masks) >= 64:
                self._masks.clear()
            mask.flags.writeable = False
            self._masks[key] = mask
        return mask

    def fill(self, attr: str, values: Mapping[str, str | None]) -> None:
        """Set ``attr`` of each listed memory's rows (an older snapshot's missing one)."""
        self._changed()
        vocab, codes = self._vocab[attr], self._codes[attr]
        for item_id, value in values.items():
            positions = self._pos_of_item.get(item_id)
            if positions is not None:
                codes[positions] = vocab.setdefault(value, len(vocab))
        self.unset = tuple(a for a in self.unset if a != attr)

    def known(self, attr: str) -> list[str]:
        """Every value ``attr`` has had in this index (removed rows' too): a cheap superset."""
        return [v for v in self._vocab[attr] if v is not None]

    def values(self, attr: str, mask: np.ndarray | None = None) -> list[str]:
        """Distinct values of ``attr`` among the rows where ``mask`` is true (default: alive)."""
        codes = np.unique(self._codes[attr][self._alive if mask is None else mask])
        names = {c: v for v, c in self._vocab[attr].items()}
        return [v for v in (names.get(int(c)) for c in codes) if v is not None]

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None
               ) -> list[tuple[int, float]]:
        """Top ``k`` (seq, cosine) among rows where ``mask`` is true (default: all alive)."""
        if mask is None:
            mask = self._alive
        packed = self._packed
        if packed is not None and packed[0] is mask:  # the same (cached) mask again
            selected = packed[1]
        else:
            selected = int(mask.sum())
            packed = None
        if selected == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        if selected <= self.exact_below or selected < 0.02 * len(mask):
            positions = np.flatnonzero(mask)
            scores = self._vectors()[positions] @ q[0]  # gathers only the selected rows
            seqs = self._seq[positions]
            if self._live > len(self._pos_of_item):  # best row per memory
                order = np.lexsort((-scores, seqs))
                first = order[np.flatnonzero(np.r_[True, np.diff(seqs[order]) != 0])]
                scores, seqs = scores[first], seqs[first]
            top = top_k(scores, k, seqs)
            return [(int(seqs[i]), float(scores[i])) for i in top]
        # a memory's extra rows can crowd the top k: ask for as many more as there are
        extra = min(self._live - len(self._pos_of_item), 3 * k)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, k + extra)
        if selected < len(mask):
            if packed is None:
                packed = (mask, selected, np.packbits(mask, bitorder="little"))
                if not mask.flags.writeable:  # a cached mask: it cannot change under us
                    self._packed = packed
            bits = packed[2]
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        distances, labels = self._hnsw.search(q, k + extra, params=params)
        best: dict[int, float] = {}
        for p, d in zip(labels[0], distances[0]):  # best first, so the first row counts
            if p >= 0:
                best.setdefault(int(self._seq[p]), float(d))
        return list(best.items())[:k]

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path, watermark: int, tag: str = "") -> None:
        """Write a snapshot atomically; no pickle anywhere.

        Several processes may share one store and so one snapshot directory: each writes
        into its own temp dir, then swaps it in under an exclusive lock file. The last
        swap wins, which is safe because the watermark says where to resume the change
        feed. A failure (disk full, I/O error) is a StorageError; the old snapshot stays."""
        directory = Path(directory)
        tmp = directory.with_name(f"{directory.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            tmp.mkdir(parents=True)
            faiss.write_index(self._hnsw, str(tmp / "hnsw.faiss"))
            np.savez(tmp / "rows.npz", seq=self._seq, alive=self._alive, key=self._key,
                     **{f"code_{a}": self._codes[a] for a in ATTRS})
            meta = {"format": _FORMAT, "dim": self.dim, "m": self.m, "watermark": watermark,
                    "tag": tag, "rows": len(self._seq), "items": self._item_at,
                    "vocab": {a: [[k, v] for k, v in self._vocab[a].items()] for a in ATTRS}}
            meta["sha256"] = {name: sha256_file(tmp / name) for name in ("hnsw.faiss", "rows.npz")}
            (tmp / "meta.json").write_text(json.dumps(meta))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            with _locked(directory, exclusive=True):
                _remove_orphans(directory)
                old = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
                if directory.exists():
                    directory.rename(old)
                tmp.rename(directory)  # a crash just before leaves no snapshot: rebuilt
                shutil.rmtree(old, ignore_errors=True)
        except (OSError, RuntimeError) as exc:  # faiss reports write errors as RuntimeError
            full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG)
            raise StorageError(f"could not save the index snapshot at {directory}: {exc}",
                               reason="disk_full" if full else "io_error") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def load(self, directory: str | Path) -> tuple[int, str]:
        """Load a snapshot; return its (watermark, tag). IntegrityError if inconsistent."""
        directory = Path(directory)
        try:
            with _locked(directory, exclusive=False):
                return self._load(directory)
        except OSError as exc:  # the lock file itself could not be opened
            raise IntegrityError(f"index snapshot at {directory} is unreadable: {exc}") from exc

    def _load(self, directory: Path) -> tuple[int, str]:
        try:
            meta = json.loads((directory / "meta.json").read_text())
            if meta.get("format") not in (2, _FORMAT) or meta.get("dim") != self.dim:
                raise IntegrityError("index snapshot has another format or dimension")
            for name, digest in meta["sha256"].items():
                if sha256_file(directory / name) != digest:
                    raise IntegrityError(f"index snapshot file {name} fails its checksum")
            hnsw = faiss.read_index(str(directory / "hnsw.faiss"))
            with np.load(directory / "rows.npz", allow_pickle=False) as z:
                seq, alive = z["seq"], z["alive"]
                # "key" is newer than format 3 and optional: readers that predate it skip it
                key = z["key"] if "key" in z.files else np.zeros(len(seq), np.int64)
                unset = tuple(a for a in ATTRS if f"code_{a}" not in z.files)
                if set(unset) - set(_ADDED_IN_3):
                    raise IntegrityError(f"index snapshot lacks attributes {unset}")
                codes = {a: z[f"code_{a}"] if a not in unset else
                         np.zeros(len(seq), np.int32) for a in ATTRS}
        except IntegrityError:
            raise
        except Exception as exc:  # faiss raises RuntimeError, json ValueError, ...
            raise IntegrityError(f"index snapshot at {directory} is unreadable: {exc}") from exc
        n = meta["rows"]
        if not (hnsw.ntotal == n == len(seq) == len(alive) == len(key) == len(meta["items"])
                and all(len(c) == n for c in codes.values())):
            raise IntegrityError(f"index snapshot at {directory} is inconsistent")
        self._changed()
        self._hnsw = hnsw  # read_index returns the concrete class and owns it
        self._hnsw.hnsw.efSearch = self.ef_search
        self._seq, self._alive, self._codes = seq.astype(np.int64), alive.astype(bool), codes
        self._key = key.astype(np.int64)
        self._vocab = {a: {k: v for k, v in meta["vocab"].get(a, [[None, 0]])} for a in ATTRS}
        self.unset = unset
        self._item_at = list(meta["items"])
        self._pos_of_item = {}
        for p in np.flatnonzero(self._alive):
            self._pos_of_item.setdefault(self._item_at[p], []).append(int(p))
        self._live = int(self._alive.sum())
        return int(meta["watermark"]), str(meta.get("tag", ""))


def top_k(scores: np.ndarray, k: int, keys: np.ndarray) -> np.ndarray:
    """Indices of the ``k`` best scores, best first; ties broken by ``keys`` (store seq),
    so a rebuilt index, a loaded snapshot and an incrementally built one agree."""
    cand = np.arange(len(scores))
    if k < len(scores):
        # keep every row tied with the k-th score so the tie-break sees all of them
        kth = -np.partition(-scores, k - 1)[k - 1]
        cand = np.flatnonzero(scores >= kth)
    order = np.lexsort((keys[cand], -scores[cand]))
    return cand[order][:k]


def _locked(directory: Path, *, exclusive: bool) -> Any:
    """Hold ``<dir>.lock``: shared while loading, exclusive while swapping a snapshot in."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(directory.with_name(directory.name + ".lock"), exclusive=exclusive)


def _remove_orphans(directory: Path) -> None:
    """Temp dirs left by processes that died mid-save (the pid is in the name)."""
    for path in directory.parent.glob(f"{glob.escape(directory.name)}.*-*-*"):
        kind, pid = path.name[len(directory.name) + 1:].split("-", 2)[:2]
        if kind in ("tmp", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


