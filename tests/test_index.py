"""VectorIndex on its own: HNSW recall against exact search, filters, deletes, snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from memvault.errors import IntegrityError
from memvault.index.vector import VectorIndex


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    # clustered, embedding-like data rather than uniform noise
    centers = rng.normal(size=(256, dim))
    x = centers[rng.integers(0, 256, n)] + 0.15 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build(n: int = 30_000, dim: int = 64, **kw):
    rng = np.random.default_rng(0)
    vecs = unit(rng, n, dim)
    idx = VectorIndex(dim, **kw)
    rows = [(f"id{i}", i + 1, {"user_id": f"u{i % 10}", "kind": "fact" if i % 3 else "turn"})
            for i in range(n)]
    idx.upsert(rows, vecs)
    return idx, vecs, rng


def test_hnsw_recall_against_exact() -> None:
    idx, vecs, rng = build(exact_below=0)
    queries = vecs[rng.integers(0, len(vecs), 100)] + 0.1 * rng.normal(size=(100, vecs.shape[1]))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    recall = []
    for q in queries:
        got = {s for s, _ in idx.search(q, 10)}
        exact = set((np.argsort(-(vecs @ q))[:10] + 1).tolist())
        recall.append(len(got & exact) / 10)
    assert np.mean(recall) >= 0.95


def test_filtered_search_only_returns_matching_rows() -> None:
    idx, vecs, rng = build(exact_below=0)
    q = unit(rng, 1, vecs.shape[1])[0]
    hits = idx.search(q, 20, idx.mask({"user_id": "u3"}))  # 10 % selected: HNSW + bitmap
    assert len(hits) == 20 and all((s - 1) % 10 == 3 for s, _ in hits)
    # a selective filter takes the exact path and equals brute force
    idx.exact_below = 2000
    hits = idx.search(q, 20, idx.mask({"user_id": "u3", "kind": "turn"}))
    allowed = [i for i in range(len(vecs)) if i % 10 == 3 and i % 3 == 0]
    exact = [allowed[j] + 1 for j in np.argsort(-(vecs[allowed] @ q))[:20]]
    assert [s for s, _ in hits] == exact


def test_seq_filter_and_unknown_values() -> None:
    idx, vecs, rng = build(n=2000)
    q = vecs[5]
    assert [s for s, _ in idx.search(q, 3, idx.mask(seqs=[6, 7, 8]))][0] == 6
    assert idx.search(q, 5, idx.mask({"user_id": "nobody"})) == []


def test_upsert_replaces_and_remove_hides() -> None:
    idx, vecs, rng = build(n=2000)
    q = vecs[0]
    assert idx.search(q, 1)[0][0] == 1
    idx.upsert([("id0", 99_999, {"user_id": "u0"})], -q.reshape(1, -1))
    assert idx.search(q, 1)[0][0] != 1
    assert len(idx) == 2000 and idx.dead == 1
    idx.remove("id1")
    assert all(s != 2 for s, _ in idx.search(vecs[1], 50))


def test_compaction_keeps_live_rows() -> None:
    idx, vecs, rng = build(n=5000, exact_below=0)
    for i in range(2000):
        idx.remove(f"id{i}")
    assert idx.maybe_compact()
    assert idx.dead == 0 and len(idx) == 3000
    assert idx.search(vecs[4000], 1)[0][0] == 4001
    assert idx.mask({"user_id": "u1"}).sum() == 300


def test_snapshot_roundtrip_and_corruption(tmp_path) -> None:
    idx, vecs, rng = build(n=3000)
    idx.remove("id7")
    idx.save(tmp_path / "snap", watermark=42, tag="vault-1")
    other = VectorIndex(vecs.shape[1])
    assert other.load(tmp_path / "snap") == (42, "vault-1")
    q = vecs[100]
    assert other.search(q, 5) == idx.search(q, 5)
    assert len(other) == len(idx)
    (tmp_path / "snap" / "hnsw.faiss").write_bytes(b"garbage")
    with pytest.raises(IntegrityError):
        VectorIndex(vecs.shape[1]).load(tmp_path / "snap")
    with pytest.raises(IntegrityError):
        VectorIndex(32).load(tmp_path / "snap")


def test_a_memory_with_several_rows_scores_by_its_best_and_comes_back_once(tmp_path) -> None:
    """Sentence vectors: each memory owns a few rows; search returns it once, at its best."""
    rng = np.random.default_rng(1)
    n, parts, dim = 900, 3, 32
    vecs = unit(rng, n * parts, dim)
    rows = [(f"id{i}", i + 1, {"user_id": "u"}) for i in range(n) for _ in range(parts)]
    q = unit(rng, 1, dim)[0]
    best = (vecs @ q).reshape(n, parts).max(axis=1)
    expected = [int(i) + 1 for i in np.argsort(-best)[:10]]
    for exact_below in (10**6, 0):  # exact path, then HNSW
        idx = VectorIndex(dim, exact_below=exact_below, ef_search=512)
        idx.upsert(rows, vecs)
        assert len(idx) == n and idx.dead == 0
        hits = idx.search(q, 10)
        assert len({s for s, _ in hits}) == 10
        if exact_below:
            assert [s for s, _ in hits] == expected
            assert np.allclose([sc for _, sc in hits], best[np.array(expected) - 1], atol=1e-5)
        else:
            assert len(set(s for s, _ in hits) & set(expected)) >= 9
    idx.remove("id0")  # every row of the memory dies with it
    assert idx.dead == parts and all(s != 1 for s, _ in idx.search(vecs[0], 20))
    idx.upsert([("id1", 5000, {"user_id": "u"})], vecs[3:4])  # a new version: one row
    assert idx.dead == 2 * parts and len(idx) == n - 1
    idx.save(tmp_path / "snap", watermark=7)
    other = VectorIndex(dim, exact_below=10**6)
    other.load(tmp_path / "snap")
    idx.exact_below = 10**6
    assert other.search(q, 10) == idx.search(q, 10) and other.dead == idx.dead
    for i in range(2, 400):
        other.remove(f"id{i}")
    assert other.maybe_compact() and other.dead == 0 and len(other) == n - 400 + 1
    assert other.search(q, 10) == [h for h in idx.search(q, 500) if h[0] == 5000 or h[0] > 400][:10]


def test_content_keys_survive_compaction_and_snapshots(tmp_path) -> None:
    """Rows the index embedded itself keep a content key, so a rebuild can reuse their
    vectors (``reusable``); a snapshot written before keys existed has none to offer."""
    rng = np.random.default_rng(3)
    dim = 16
    vecs = unit(rng, 3000, dim)
    rows = [(f"id{i}", i + 1, {"user_id": "u"}) for i in range(3000)]
    keys = [0 if i % 2 else 1000 + i for i in range(3000)]  # odd rows: vectors from the store
    idx = VectorIndex(dim)
    idx.upsert(rows, vecs, keys)
    for i in range(0, 1200):
        idx.remove(f"id{i}")
    assert idx.maybe_compact()
    reusable = idx.reusable()
    assert sorted(reusable) == [1000 + i for i in range(1200, 3000, 2)]
    assert np.allclose(reusable[1000 + 2000], vecs[2000])
    idx.save(tmp_path / "snap", watermark=1)
    other = VectorIndex(dim)
    other.load(tmp_path / "snap")
    assert sorted(other.reusable()) == sorted(reusable)
    # an older snapshot (no "key" array): loads, offers nothing to reuse
    import hashlib
    import json

    snap = tmp_path / "snap"
    with np.load(snap / "rows.npz", allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files if name != "key"}
    np.savez(snap / "rows.npz", **arrays)
    meta = json.loads((snap / "meta.json").read_text())
    meta["sha256"]["rows.npz"] = hashlib.sha256((snap / "rows.npz").read_bytes()).hexdigest()
    (snap / "meta.json").write_text(json.dumps(meta))
    old = VectorIndex(dim)
    assert old.load(snap) == (1, "")
    assert old.reusable() == {} and len(old) == 1800
