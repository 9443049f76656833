"""The generated chat suite: deterministic, varied, and its evidence right by construction.

Evidence is re-derived here from the ground truth and from the turn texts themselves,
not from the generator's own bookkeeping of which turn answers which question.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from memvault.cli import cli
from memvault.errors import InvalidInput
from memvault.evaluation import locomo
from memvault.evaluation.generate import (DATE_FORMATS, FACT_TYPES, SINGLE_VALUED, generate,
                                          phrasings, write)

CAT = {v: k for k, v in locomo.GENERATED_CATEGORIES.items()}


@pytest.fixture(scope="module")
def suites() -> dict[int, list[dict]]:
    return {seed: generate(seed) for seed in (1, 2, 3)}


def turns_of(sample: dict) -> dict[str, dict]:
    conv = sample["conversation"]
    return {t["dia_id"]: t for k, v in conv.items() if re.fullmatch(r"session_\d+", k)
            for t in v}


def bare(value: str) -> str:
    return re.sub(r"^(a|an|the) ", "", value)


def test_same_seed_same_bytes_and_seeds_differ() -> None:
    a = json.dumps(generate(7, conversations=2, sessions=8))
    assert a == json.dumps(generate(7, conversations=2, sessions=8))
    assert a != json.dumps(generate(8, conversations=2, sessions=8))


def test_same_bytes_in_other_processes_whatever_their_string_hashing() -> None:
    """Set iteration order changes with PYTHONHASHSEED; the suite must not."""
    import hashlib
    import os
    import subprocess
    import sys

    code = ("import json, hashlib; from memvault.evaluation.generate import generate; "
            "print(hashlib.sha256(json.dumps(generate(4, conversations=2, sessions=8))"
            ".encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": str(h)})
               .stdout.strip() for h in (1, 2)}
    here = hashlib.sha256(json.dumps(generate(4, conversations=2, sessions=8)).encode())
    assert digests == {here.hexdigest()}


def test_every_fact_type_has_at_least_20_phrasings_and_many_are_used(suites) -> None:
    for ftype in FACT_TYPES:
        assert len(phrasings(ftype)) >= 20, ftype
    used: dict[str, set[str]] = {t: set() for t in FACT_TYPES}
    for samples in suites.values():
        for s in samples:
            for f in s["generator"]["facts"]:
                if not f["combined"]:
                    used[f["type"]].add(f["template"])
    for ftype, seen in used.items():
        assert seen <= set(phrasings(ftype)), ftype
        assert len(seen) >= 10, (ftype, len(seen))
    with pytest.raises(InvalidInput):
        phrasings("horoscope")


def test_evidence_exists_and_only_abstention_has_none(suites) -> None:
    for samples in suites.values():
        for s in samples:
            turns = turns_of(s)
            cats = {q["category"] for q in s["qa"]}
            assert cats == set(locomo.GENERATED_CATEGORIES), cats
            for q in s["qa"]:
                assert all(e in turns for e in q["evidence"]), q
                assert (q["category"] == CAT["abstention"]) == (not q["evidence"]), q


def _timeline(sample: dict, person: str, ftype: str) -> list[dict]:
    facts = [f for f in sample["generator"]["facts"]
             if f["person"] == person and f["type"] == ftype]
    return sorted(facts, key=lambda f: f["session"])


def _states(turn_text: str, fact: dict) -> bool:
    """The turn's own words carry the fact: its value, or for a negation the old one."""
    said = fact["value"] if fact["value"] else fact["prev"]
    return bare(said).lower() in turn_text.lower()


def test_now_and_then_evidence_is_the_turn_stating_the_value_valid_then(suites) -> None:
    checked = {"now": 0, "then": 0}
    for samples in suites.values():
        for s in samples:
            turns = turns_of(s)
            by_dia = {}
            for f in s["generator"]["facts"]:
                by_dia.setdefault(f["dia_id"], []).append(f)
            for q in s["qa"]:
                if q["category"] not in (CAT["knowledge-update-now"],
                                         CAT["knowledge-update-then"]):
                    continue
                [dia] = q["evidence"]
                person = next(p["name"] for p in s["generator"]["people"]
                              if p["name"] in q["question"])
                line = _timeline(s, person, q["type"])
                assert q["type"] in SINGLE_VALUED and len(line) >= 2
                [fact] = [f for f in by_dia[dia] if f["type"] == q["type"]
                          and f["person"] == person]
                assert _states(turns[dia]["text"], fact), (q, turns[dia]["text"])
                if fact["value"]:
                    assert q["answer"] == fact["value"]
                if q["category"] == CAT["knowledge-update-now"]:
                    assert fact is line[-1] or fact == line[-1]
                    checked["now"] += 1
                    continue
                asked_from = date.fromisoformat(q["asked_from"])
                asked_to = date.fromisoformat(q["asked_to"])
                i = line.index(fact)
                assert i < len(line) - 1  # "then" asks about a value that later changed
                # the value held from its latest possible start to the next change's
                # earliest possible date, with the asked dates strictly inside
                assert date.fromisoformat(fact["hi"]) < asked_from
                assert asked_to < date.fromisoformat(line[i + 1]["lo"])
                said = re.search(r"\b(?:in|on) ((?:\d{1,2} )?[A-Z][a-z]+ \d{4})\?$",
                                 q["question"])
                assert said and said.group(1).endswith(str(asked_from.year)), q
                checked["then"] += 1
    assert checked["now"] >= 60 and checked["then"] >= 60, checked


def test_distractors_and_slips_are_never_evidence(suites) -> None:
    kinds: set[str] = set()
    for samples in suites.values():
        for s in samples:
            turns = turns_of(s)
            evidence = {e for q in s["qa"] for e in q["evidence"]}
            for d in s["generator"]["distractors"]:
                kinds.add(d["kind"])
                assert d["dia_id"] not in evidence, d
                assert bare(d["value"]).lower() in turns[d["dia_id"]]["text"].lower(), d
            # an abstention question asks about a value the person never held
            for q in s["qa"]:
                if q["category"] == CAT["abstention"]:
                    person = next(p["name"] for p in s["generator"]["people"]
                                  if p["name"] in q["question"])
                    held = {f["value"] for f in s["generator"]["facts"]
                            if f["person"] == person and f["type"] == q["type"] and f["value"]}
                    assert not any(v and v in q["question"] for v in held), q
    assert kinds == {"other", "hypothetical", "question", "plan", "slip"}


def test_handles_are_not_names_and_names_are_said_in_the_chat(suites) -> None:
    handles_unlike_names = 0
    for samples in suites.values():
        for s in samples:
            people = s["generator"]["people"]
            conv = s["conversation"]
            assert [conv["speaker_a"], conv["speaker_b"]] == [p["handle"] for p in people]
            text = " ".join(t["text"] for t in turns_of(s).values())
            for p in people:
                assert p["name"] in text
                if p["name"] not in p["handle"]:  # some exports do use the name
                    handles_unlike_names += 1
                    assert all(p["handle"] not in q["question"] for q in s["qa"])
    assert handles_unlike_names >= 12  # most of the 24 people


def test_round_trips_through_the_locomo_loader_in_every_date_format(tmp_path: Path) -> None:
    path = tmp_path / "suite.json"
    counts = write(path, 5, conversations=len(DATE_FORMATS), sessions=8)
    samples = json.loads(path.read_text())
    convs = locomo.load(path)
    assert len(convs) == counts["conversations"] == len(DATE_FORMATS)
    assert {s["generator"]["date_format"] for s in samples} == set(DATE_FORMATS)
    assert sum(len(c.turns) for c in convs) == counts["turns"]
    assert sum(len(c.questions) for c in convs) == counts["questions"]
    for sample, conv in zip(samples, convs):
        stamps = sorted({(t.session, t.date) for t in conv.turns})
        expected = sample["generator"]["session_dates"]
        assert [d.strftime("%Y-%m-%dT%H:%M") for _, d in stamps] == \
            [e[:16] for e in expected]
        kinds = {q.kind for q in conv.questions}
        assert kinds == set(locomo.GENERATED_CATEGORIES.values())


def test_in_text_dates_come_in_several_forms(suites) -> None:
    phrases = {f["when"] for samples in suites.values() for s in samples
               for f in s["generator"]["facts"] if f["when"]}
    forms = {"relative": any(p in ("yesterday", "today", "last night") for p in phrases),
             "weekday": any(re.fullmatch(r"last [A-Z][a-z]+day", p) for p in phrases),
             "numeric": any(re.fullmatch(r"on \d{1,2}/\d{1,2}", p) for p in phrases),
             "month": any(re.fullmatch(r"in [A-Z][a-z]+( \d{4})?", p) for p in phrases),
             "ago": any(p.endswith("ago") for p in phrases)}
    assert all(forms.values()), forms


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        generate(1, sessions=2)
    with pytest.raises(InvalidInput):
        generate("1")  # type: ignore[arg-type]
    result = CliRunner().invoke(cli, ["bench", "generate", "--seed", "1", "--out",
                                      str(tmp_path / "x.json"), "--conversations", "0"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == \
        ["error [invalid_input]: conversations must be 1..200"]
    assert not (tmp_path / "x.json").exists()


def test_bench_scores_two_generated_suites_in_both_ingest_modes(tmp_path: Path) -> None:
    runner = CliRunner()
    files = []
    for seed in (1, 2):
        files.append(str(tmp_path / f"seed{seed}.json"))
        out = runner.invoke(cli, ["bench", "generate", "--seed", str(seed), "--out", files[-1],
                                  "--conversations", "1", "--sessions", "6"])
        assert out.exit_code == 0, out.output
    result = runner.invoke(cli, ["bench", "locomo", *files, "--out", str(tmp_path / "out"),
                                 "--name", "gen", "--embedder", "hash", "--variant", "hybrid",
                                 "--variant", "+speaker", "--variant", "memvault",
                                 "--ingest", "turns", "--ingest", "fine"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "gen.json").read_text())
    assert list(report["suites"]) == ["seed1", "seed1 [fine]", "seed2", "seed2 [fine]"]
    for label, suite in report["suites"].items():
        assert suite["ingest"] == ("fine" if "fine" in label else "turns")
        m = suite["variants"]["memvault"]["metrics"]
        for cat in ("knowledge-update-now", "knowledge-update-then", "multi-session"):
            assert {"mrr", "hit@1", "recall@10"} <= set(m[cat]), (label, cat)
            assert 0 <= m[cat]["hit@1"] <= 1 and 0 <= m[cat]["mrr"] <= 1
        assert m["abstention"]["no_evidence"] == m["abstention"]["n"] > 0
        assert "recall@10" not in m["abstention"]
    rows = report["rule"]["rows"]
    assert set(rows) == {"+speaker", "memvault"} and rows["+speaker"]["above"] == "hybrid"
    # "+speaker" follows "hybrid" in the ablation; "memvault" is many rows after "+speaker"
    assert rows["+speaker"]["one_change"] and not rows["memvault"]["one_change"]
    assert (tmp_path / "out" / "gen.png").stat().st_size > 1000
    assert set(report["rule"]["default_vs_baselines"]) == set(report["suites"])
    md = (tmp_path / "out" / "gen.md").read_text()
    assert "Default rule" in md and "## seed2 [fine]" in md and "update now" in md


def test_a_fact_read_in_fine_mode_ranks_for_its_source_turn(tmp_path: Path) -> None:
    """With the turn itself gone, the fact the reader wrote from it still finds it."""
    from memvault.models import get_embedder
    from memvault.settings import Settings
    from memvault.vault import Vault

    sample = {"sample_id": "c", "conversation": {
        "speaker_a": "mk_92", "speaker_b": "Jo",
        "session_1_date_time": "2023-05-08 13:56",
        "session_1": [{"speaker": "mk_92", "dia_id": "D1:1",
                       "text": "I adopted a greyhound named Comet yesterday."},
                      {"speaker": "Jo", "dia_id": "D1:2", "text": "Lovely!"}]},
        "qa": [{"question": "What is the name of the greyhound?", "answer": "Comet",
                "evidence": ["D1:1"], "category": 6}]}
    path = tmp_path / "one.json"
    path.write_text(json.dumps([sample]))
    [conv] = locomo.load(path)
    with Vault(settings=Settings(path=tmp_path / "v.db", embedder="hash"),
               embedder=get_embedder("hash")) as vault:
        locomo.ingest(vault, conv, "fine")
        facts = vault.list(user_id="c", filters={"kind": ["event", "fact", "profile"]}).items
        assert facts and "Comet" in facts[0].text
        turn = next(i for i in vault.list(user_id="c", filters={"kind": "turn"}).items
                    if i.metadata.get("dia_id") == "D1:1")
        vault.delete(turn.id)
        ranks, _, _ = locomo.rank_evidence(vault, conv, conv.questions[0], 10)
        assert ranks[0] is not None
        assert all(h.item.kind != "turn" or h.item.metadata.get("dia_id") != "D1:1"
                   for h in vault.search(conv.questions[0].question, user_id="c", k=10))


def test_loader_parses_the_export_date_formats_and_refuses_malformed_files(
        tmp_path: Path) -> None:
    want = "2023-05-08T13:56:00+00:00"
    for text in ("1:56 pm on 8 May, 2023", "1:56 pm on 8 May 2023", "2023-05-08 13:56",
                 "May 8, 2023, 1:56 PM", "Mon, 8 May 2023 13:56"):
        assert locomo.parse_date(text).isoformat() == want, text
    for bad in ("yesterday", "13:56 on 8 Maybe 2023", "x" * 500):
        with pytest.raises(InvalidInput):
            locomo.parse_date(bad)
    for doc in ({"a": 1}, [{"conversation": {}}], [{"conversation": {"speaker_a": "a",
                "speaker_b": "b", "session_1": [{"text": "hi"}],
                "session_1_date_time": "2023-05-08 13:56"}, "qa": []}]):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(InvalidInput):
            locomo.load(path)


def test_summary_reports_hit_at_1_and_counts_questions_without_evidence() -> None:
    rows = [{"category": "knowledge-update-now", "ranks": [1], "top_score": 0.9},
            {"category": "knowledge-update-now", "ranks": [3], "top_score": 0.7},
            {"category": "knowledge-update-now", "ranks": [None], "top_score": 0.5},
            {"category": "abstention", "ranks": [], "top_score": 0.2}]
    s = locomo.summarize(rows, ks=(10,))
    now = s["knowledge-update-now"]
    assert now["hit@1"] == round(1 / 3, 4) and now["mrr"] == round((1 + 1 / 3) / 3, 4)
    assert now["recall@10"] == round(2 / 3, 4)
    assert s["abstention"] == {"n": 1, "no_evidence": 1, "mean_top_score": 0.2}
    assert s["overall"]["n"] == 3


def test_the_rule_names_every_suite_where_a_row_lowers_r10_or_mrr() -> None:
    from memvault.evaluation.report import _rule_lines, rule

    def suite(rows: dict[str, tuple[float, float]]) -> dict:
        return {"variants": {n: {"embedder": "e", "lifecycle": False,
                                 "metrics": {"overall": {"recall@10": r, "mrr": m}}}
                             for n, (r, m) in rows.items()}}

    suites = {"a": suite({"hybrid": (0.5, 0.3), "+x": (0.6, 0.4), "memvault": (0.7, 0.5)}),
              "b": suite({"hybrid": (0.5, 0.3), "+x": (0.6, 0.2), "memvault": (0.6, 0.35)})}
    r = rule(suites)
    assert r["rows"]["+x"]["vs_above"] == {"b": {"mrr": -0.1}}
    assert r["rows"]["+x"]["vs_default"] == {"a": {"recall@10": -0.1, "mrr": -0.1},
                                             "b": {"mrr": -0.15}}
    assert r["rows"]["memvault"]["vs_above"] == {}
    assert r["default_vs_baselines"]["a"]["hybrid"]["beats"] is True
    assert r["default_vs_baselines"]["b"]["hybrid"] == {"recall@10": 0.1, "mrr": 0.05,
                                                        "beats": True}
    suites["b"]["variants"]["memvault"]["metrics"]["overall"]["mrr"] = 0.3
    r = rule(suites)
    assert r["default_vs_baselines"]["b"]["hybrid"]["beats"] is False
    text = "\n".join(_rule_lines(r, ["a", "b"]))
    assert "| b | +0.100 / +0.000 NO |" in text and "b (mrr -0.100)" in text
