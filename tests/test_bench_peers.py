"""The peers benchmark's own parts (issue 25): memvault's driver end to end on a tiny
LoCoMo-format file and synthetic memories, the shared scorer, and the scale curve's
vector cache. The peers themselves live in a benchmark-only venv and are exercised by
``make bench-peers``, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench_modules import load
from memvault.models.base import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"




def _locomo(path: Path) -> None:
    turns = [("Alice", "I adopted a grey kitten called Pixel last week."),
             ("Bob", "Congratulations! I started learning the cello in March."),
             ("Alice", "My sister lives in Lisbon and works as an architect."),
             ("Bob", "I bought a secondhand road bike at the flea market.")]
    session = [{"speaker": s, "text": t, "dia_id": f"D1:{i + 1}"} for i, (s, t) in
               enumerate(turns)]
    sample = {"sample_id": "conv-t", "conversation": {
        "speaker_a": "Alice", "speaker_b": "Bob", "session_1": session,
        "session_1_date_time": "1:56 pm on 8 May, 2023"},
        "qa": [{"question": "What is the name of Alice's kitten?", "answer": "Pixel",
                "evidence": ["D1:1"], "category": 4},
               {"question": "Which instrument is Bob learning?", "answer": "cello",
                "evidence": ["D1:2"], "category": 4},
               {"question": "Where does Alice's sister live?", "answer": "Lisbon",
                "evidence": ["D1:3"], "category": 4}]}
    path.write_text(json.dumps([sample]))


def test_memvault_driver_end_to_end(tmp_path: Path) -> None:
    peers = load("bench_peers")
    src = tmp_path / "locomo.json"
    _locomo(src)
    data = tmp_path / "data"
    data.mkdir()
    info = peers.prepare(data, src, 0, 60, 6, seed=7)
    assert info["turns"] == 4 and len(info["questions"]) == 3
    out = {}
    for phase in ("locomo", "synth"):
        res = peers.run_driver(sys.executable, "memvault", phase, data, tmp_path / "work",
                               tmp_path / f"{phase}.json", "", 2, timeout=600)
        assert "error" not in res, res
        out[phase] = res
    synth = out["synth"]
    assert synth["memories"] == 60 and synth["ingest_per_s"] > 0
    assert synth["search_1"]["n"] == 6 and synth["search_2"]["n"] == 6
    assert synth["hit_at_10"] >= 0.5  # each question paraphrases one stored memory
    assert synth["disk_bytes_per_memory"] > 0 and synth["rss_end_bytes"] > 0
    loc = out["locomo"]
    summary = peers.score_locomo(info, loc)
    assert summary["overall"]["n"] == 3
    assert summary["overall"]["recall@10"] == 1.0  # 4 turns: every evidence is in the top 10
    assert summary["overall"]["mrr"] > 0.5


def test_scorer_maps_text_hits_and_ranks() -> None:
    peers = load("bench_peers")
    info = {"questions": [{"conv": "c", "category": "single-hop", "evidence": ["D1:2"]},
                          {"conv": "c", "category": "temporal", "evidence": ["D1:1", "D1:9"]}],
            "text_of": {("c", "A: hello"): "D1:1", ("c", "B: world"): "D1:2"}}
    # Mem0 returns texts, the others dia_ids: both land on the same turn ids
    res = {"hits": [["A: hello", "B: world"], ["D1:1"]]}
    s = peers.score_locomo(info, res)
    assert s["single-hop"]["mrr"] == 0.5
    assert s["temporal"]["recall@10"] == 0.5
    assert s["overall"]["recall@10"] == 0.75


def test_driver_refuses_a_peer_without_model_dir(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "peers_driver.py"), "--system", "mem0",
                           "--phase", "synth", "--data", str(tmp_path), "--work",
                           str(tmp_path / "w"), "--out", str(tmp_path / "o.json"),
                           "--model-dir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "is not a model directory" in proc.stderr and "Traceback" not in proc.stderr


def test_scale_vector_cache_round_trip(tmp_path: Path) -> None:
    scale = load("bench_scale")
    inner = HashEmbedder(32)
    rec = scale.RecordingEmbedder(inner, tmp_path)
    texts = ["one memory", "another memory", "a third"]
    want = rec.embed(texts)
    rec.embed(["a query, not recorded"])
    rec._texts.close()
    rec._vecs.close()
    cached = scale.CachedEmbedder(inner, tmp_path)
    assert np.array_equal(cached.embed(texts[::-1]), want[::-1])
    assert cached.misses == 0
    cached.embed(["a query, not recorded"])
    assert cached.misses == 1
