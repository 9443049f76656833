"""The LoCoMo harness on a small file in LoCoMo's format (the real data is not shipped)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from memvault.cli import cli
from memvault.evaluation import locomo


def sample(tmp_path: Path) -> Path:
    conv = {
        "speaker_a": "Ann", "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a greyhound named Comet."},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! I started learning the cello."},
        ],
        "session_2_date_time": "10:00 am on 2 June, 2023",
        "session_2": [
            {"speaker": "Ann", "dia_id": "D2:1", "text": "Comet won a race yesterday.",
             "blip_caption": "a dog running on a track"},
            {"speaker": "Ben", "dia_id": "D2:2", "text": "My cello teacher moved to Oslo."},
        ],
    }
    qa = [
        {"question": "What is the name of Ann's greyhound?", "answer": "Comet",
         "evidence": ["D1:1"], "category": 4},
        {"question": "Which instrument does Ben learn and where did his teacher move?",
         "answer": "cello; Oslo", "evidence": ["D1:2; D2:02"], "category": 1},
        {"question": "Adversarial question", "answer": "", "evidence": ["D1:1"], "category": 5},
    ]
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([{"sample_id": "conv-x", "conversation": conv, "qa": qa}]))
    return path


def test_load_parses_dates_captions_and_malformed_evidence(tmp_path: Path) -> None:
    [conv] = locomo.load(sample(tmp_path))
    assert [t.dia_id for t in conv.turns] == ["D1:1", "D1:2", "D2:1", "D2:2"]
    assert conv.turns[0].date.isoformat() == "2023-05-08T13:56:00+00:00"
    assert "a dog running on a track" in conv.turns[2].text
    assert [q.category for q in conv.questions] == [4, 1]  # category 5 dropped
    assert conv.questions[1].evidence == ("D1:2", "D2:2")
    assert locomo.normalize_evidence(["D:11:26", "D30:05"]) == ("D11:26", "D30:5")


def test_summary_metrics() -> None:
    rows = [{"category": 4, "ranks": [1]}, {"category": 1, "ranks": [3, None]},
            {"category": 1, "ranks": [12, 2]}]
    s = locomo.summarize(rows, ks=(5, 10))
    assert s["single-hop"]["recall@5"] == 1.0
    assert s["multi-hop"]["recall@5"] == 0.5  # (1/2 + 1/2) / 2
    assert s["multi-hop"]["all@10"] == 0.0
    assert s["overall"]["mrr"] == round((1 + 1 / 3 + 1 / 2) / 3, 4)


def test_bench_command_writes_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["bench", "locomo", str(sample(tmp_path)), "--out",
                                      str(out), "--embedder", "hash"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "locomo.json").read_text())
    assert report["questions"] == 2 and report["turns"] == 4
    assert set(report["variants"]) >= {"bm25", "dense", "hybrid", "memvault"}
    single = report["variants"]["memvault"]["metrics"]["single-hop"]
    assert single["recall@5"] == 1.0  # the greyhound turn is found
    md = (out / "locomo.md").read_text()
    assert "| memvault |" in md
    per = report["variants"]["memvault"]["recall@10_by_conversation"]
    overall = report["variants"]["memvault"]["metrics"]["overall"]["recall@10"]
    assert list(per) == ["conv-x"] and per["conv-x"] == overall
    assert "Recall@10 per conversation" in md and "| conv-x |" in md
    assert (out / "locomo.png").stat().st_size > 1000


def test_a_row_can_use_another_embedder_and_rows_sharing_one_share_the_ingest(
        tmp_path: Path) -> None:
    from memvault.evaluation.runner import Variant, run

    rows = [Variant("a", "run's embedder"), Variant("b", "own embedder", embedder="hash-64"),
            Variant("c", "names the run's embedder", embedder="hash")]
    report = run(sample(tmp_path), tmp_path / "out", embedder="hash", variants=rows,
                 progress=False)
    ids = {n: v["embedder"] for n, v in report["variants"].items()}
    assert ids["a"] == ids["c"] != ids["b"]
    assert sorted(report["ingest_turns_per_s"]) == ["thread", f"thread, {ids['b']}"]
    assert report["variants"]["c"]["metrics"] == report["variants"]["a"]["metrics"]


def test_a_lifecycle_row_searches_after_a_scheduler_pass(tmp_path: Path) -> None:
    """The row ingests into a vault of its own (the pass writes links and summaries),
    times the pass, and its ingest does not count twice in the ingest speed."""
    from memvault.evaluation.runner import Variant, run

    rows = [Variant("plain", "no pass"), Variant("after", "one pass", lifecycle=True)]
    report = run(sample(tmp_path), tmp_path / "out", embedder="hash", variants=rows,
                 progress=False)
    assert report["variants"]["after"]["lifecycle"] is True
    assert report["lifecycle_seconds"] > 0
    assert list(report["ingest_turns_per_s"]) == ["thread"]
    assert "Scheduler passes" in (tmp_path / "out" / "locomo.md").read_text()


def test_baselines_run_none_of_memvaults_priors() -> None:
    """A plain baseline with a current-truth prior left on would flatter the baseline and
    hide what the default adds (it happened once: a new prior defaulted on)."""
    from memvault.evaluation.runner import BASELINES, VARIANTS
    for v in VARIANTS:
        if v.name in BASELINES:
            s = v.search
            assert (s.stale_penalty, s.truth_gamma, s.topic_gamma, s.name_gamma,
                    s.speaker_gamma, s.link_beta) == (0.0,) * 6, v.name
