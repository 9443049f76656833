"""The summary tier's scale benchmark (``benchmarks/tier_scale.py``) on a tiny vault.

Why: its figures decide whether the tier may be on by default, so the parts that could
make them lie are pinned here: the vault holds exactly N memories of one owner, the filler
never names an evaluated conversation's people, a hit counts only for the evaluated
conversation it belongs to (dia ids repeat across conversations), and a cached vault is
reused rather than rebuilt. The hash embedder keeps it fast; ``make bench-lifecycle``
runs it with MiniLM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bench_modules import load
from memvault import Vault
from memvault.evaluation.generate import write as write_suite

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"




@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "seed7.json"
    write_suite(path, 7, conversations=1, sessions=6)
    return path


def test_filler_has_exactly_n_turns_and_avoids_the_evaluated_names(tmp_path: Path) -> None:
    from memvault.evaluation.generate import generate

    ts = load("tier_scale")
    first = generate(ts.FILLER_SEED, conversations=1, sessions=20)[0]
    avoid = {ts._first(p["name"]) for p in first["generator"]["people"]}
    convs, skipped = ts.filler(1234, avoid, tmp_path)
    assert sum(len(c.turns) for c in convs) == 1234
    assert all(not c.questions for c in convs)
    assert skipped >= 1  # at least the conversation whose people were named
    assert not {c.sample_id for c in convs} & {f"filler{ts.FILLER_SEED}-{first['sample_id']}"}
    assert not list(tmp_path.iterdir())  # its temp files are gone


def test_scale_run_on_a_tiny_vault(suite: Path, tmp_path: Path) -> None:
    ts = load("tier_scale")
    cache = tmp_path / "cache"
    r = ts.run([str(suite)], 1, 600, "hash", max_questions=15, cache=str(cache))
    b = r["build"]
    assert b["total_memories"] == 600 + b["summary_memories"]
    assert b["evaluated_turns"] + b["filler_turns"] == 600 and not b["reused_from_cache"]
    assert b["summary_memories"] > b["sessions"] // 2  # the pass summarised the sessions
    s = r["suites"]["seed7"]
    assert s["questions"] == 15
    for tier in ts.TIERS:
        row = s[tier]
        assert row["recall_by_k"] == sorted(row["recall_by_k"])  # recall grows with k
        assert row["tokens_by_k"] == sorted(row["tokens_by_k"])
        assert 0 <= row["mrr"] <= 1
        assert row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"]
    assert s["flat"]["recall@10"] > 0  # the evaluated conversation is found at all
    assert s["flat"]["k_for_flat_recall"] <= 10
    # every tier keeps flat's first tier_keep hits where they are: same recall up to there
    from memvault.retrieval.config import SearchConfig

    keep = SearchConfig().tier_keep
    for tier in ("summaries", "auto"):
        assert s[tier]["recall_by_k"][:keep] == s["flat"]["recall_by_k"][:keep]
    assert b["texts_embedded"] > 0 and b["texts_reused"] >= 0
    assert "seed7" in ts.markdown(r)

    again = ts.run([str(suite)], 1, 600, "hash", max_questions=15, cache=str(cache))
    assert again["build"]["reused_from_cache"]
    assert again["suites"]["seed7"]["flat"]["recall_by_k"] == s["flat"]["recall_by_k"]


def test_a_hit_counts_only_for_its_own_conversation(suite: Path, tmp_path: Path) -> None:
    """The same dia id in another conversation of the owner is not the evidence."""
    ts = load("tier_scale")
    import lifecycle_quality

    conv = lifecycle_quality.load(str(suite))[0]
    q = next(q for q in conv.questions if q.evidence)
    evidence = next(t for t in conv.turns if t.dia_id == q.evidence[0])
    with Vault(tmp_path / "v.db", embedder="hash") as v:
        # another conversation of the owner with the evidence turn's dia id and words
        v.add_messages([{"role": "user", "name": "X", "content": evidence.text,
                         "metadata": {"dia_id": evidence.dia_id}}],
                       user_id=ts.OWNER, session_id="other/session_1")
        ranks, tokens, _ = ts._scored(v, conv, q)
        assert ranks[0] is None and tokens  # found, but not the evaluated conversation's
        v.add_messages([{"role": "user", "name": evidence.speaker, "content": evidence.text,
                         "metadata": {"dia_id": evidence.dia_id}}],
                       user_id=ts.OWNER, session_id=f"{conv.sample_id}/session_1")
        ranks, _, _ = ts._scored(v, conv, q)
        assert ranks[0] is not None


def test_build_only_cli_writes_the_cache(suite: Path, tmp_path: Path) -> None:
    import subprocess

    cache = tmp_path / "c"
    out = subprocess.run([sys.executable, str(BENCH / "tier_scale.py"), str(suite),
                          "--scale", "400", "--embedder", "hash", "--cache", str(cache),
                          "--build-only"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    built = json.loads(out.stdout)
    assert built["memories"] == 400
    assert [p.name for p in cache.iterdir() if p.is_dir()] and \
        all((p / "build.json").exists() for p in cache.iterdir() if p.is_dir())


def test_the_build_memo_gives_the_models_own_vectors() -> None:
    """The scale build embeds each distinct text once: the vectors must be the model's."""
    import numpy as np

    from memvault.models import get_embedder

    ts = load("tier_scale")
    inner = get_embedder("hash")
    memo = ts.Memo(get_embedder("hash"))
    texts = ["Ana: I moved to Porto.", "Bo: nice!", "Ana: I moved to Porto."]
    first = memo.embed(texts)
    again = memo.embed(texts[::-1])
    assert memo.id == inner.id and memo.dim == inner.dim
    assert np.array_equal(first, inner.embed(texts))
    assert np.array_equal(again, inner.embed(texts[::-1]))
    assert (memo.calls, memo.hits) == (2, 4)
    assert memo.embed([]).shape == (0, inner.dim)


def test_a_stopped_build_resumes_without_writing_or_embedding_again(suite: Path,
                                                                    tmp_path: Path) -> None:
    """A build that finds its vault and memo in the cache but no ``build.json`` (it was
    stopped) writes no conversation twice and embeds nothing the first run embedded; its
    figures add the runs up."""
    ts = load("tier_scale")
    cache = tmp_path / "cache"
    first = ts.run([str(suite)], 1, 600, "hash", cache=str(cache), build_only=True)["build"]
    (done,) = list(cache.glob("*/build.json"))
    done.unlink()  # as if the run had been stopped before it wrote its result
    again = ts.run([str(suite)], 1, 600, "hash", cache=str(cache), build_only=True)["build"]
    assert not again["reused_from_cache"] and again["runs"] == 2
    assert again["total_memories"] == first["total_memories"]  # nothing written twice
    assert again["summary_memories"] == first["summary_memories"]
    assert again["texts_embedded"] == first["texts_embedded"]  # the memo answered the rest
    with Vault(path=done.parent / "v.db", embedder="hash") as v:
        assert v.count(user_id=ts.OWNER) == first["total_memories"]
