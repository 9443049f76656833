#!/usr/bin/env python
"""Parametric memory: distil made-up facts into a LoRA adapter and measure recall.

    python benchmarks/bench_lora.py --facts 20 --steps 30 --out benchmarks/results

Facts about invented people with invented values (the base model cannot know them) are
stored in a real vault (hash embedder), distilled into a LoRA adapter on the bundled
SmolLM2-135M (CPU, one thread), saved as safetensors and loaded back from disk. Recall is
the share of questions whose greedy reply contains the fact's value (exact substring,
case-insensitive), asked without and with the adapter, on four sets:

* the training prompts themselves ("What is <person>'s <attribute>?", what distillation
  trains on): memorisation, not yet generalisation;
* held-out phrasings: three per fact, other wording and sentence structure, checked
  against the training prompts (none of them was seen in training);
* a control set: the same questions about invented people the adapter was never trained
  on; a reply that states one of the trained values invents a fact (lower is better);
* general knowledge: the product's 231 everyday questions
  (:mod:`memvault.parametric.general`); those the base model answers right are asked
  with the adapter on (does the adapter damage what the base model knew?).

Then routing, what ``Vault.chat`` does by default: the adapter is on only for questions
its topic gate routes to it (cosine to a source memory >= threshold, ``--gate-embedder``),
else the base model answers. Every set is scored again as chat would answer it, and the
retention the distillation itself measured (what chat's refusal reads) is reported.

Also: training time and steps, adapter bytes, cold attach (read + load) time, hot-swap
times (median of repeats), and a token-for-token check that the base model's replies are
unchanged after disabling.

Writes ``<name>.json`` (every number + environment) and ``<name>.md`` to ``--out``
(``--name`` defaults to ``lora``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

FIRST = ["Quorvel", "Tamsk", "Yselde", "Brannoch", "Ilvara", "Zettrin", "Morwick", "Aveline",
         "Drusk", "Pellimer", "Orsolya", "Keffrin", "Varrow", "Ulmira", "Jaskel", "Noriel"]
LAST = ["Baxtane", "Ollivere", "Marrowick", "Quenby", "Fellgrave", "Tarquist", "Vosslin",
        "Hethering", "Crandolph", "Ysmere", "Pardell", "Wendrake"]
ATTRS = [("favourite fruit", ["glimberry", "moonquince", "sunplum", "velvetfig", "starpear",
                              "duskmelon"]),
         ("pet's name", ["Pindrax", "Mofflet", "Tundrel", "Quaffle", "Zephyrin", "Borrik"]),
         ("home town", ["Vorlunde", "Orrindale", "Sarnhaven", "Quillmoor", "Drevenport",
                        "Halvercombe"]),
         ("favourite colour", ["cobalt rose", "ember teal", "frost amber", "moss violet",
                               "ash gold", "rust lilac"])]


#: Held-out phrasings per attribute: other wording and structure than the training
#: template ("What is X's <attribute>?"); ``run`` checks none is a training prompt.
HELD_OUT = {
    "favourite fruit": ["Which fruit does {p} like best?",
                        "If you bought fruit for {p}, which one would please them most?",
                        "{p} has one fruit they love above all others. Name it."],
    "pet's name": ["What is the name of {p}'s pet?",
                   "What does {p} call their pet?",
                   "{p} has a pet. What is it called?"],
    "home town": ["Where does {p} come from?",
                  "Which town did {p} grow up in?",
                  "Name the town {p} calls home."],
    "favourite colour": ["Which colour does {p} like most?",
                         "If {p} painted a room in the colour they love most, what colour "
                         "would it be?",
                         "What colour is {p}'s favourite?"],
}

#: People for the control set: no first or last name shared with the trained people.
CONTROL_FIRST = ["Harlan", "Sefira", "Odalric", "Merewyn", "Tobiah", "Liesl", "Caspian",
                 "Runa", "Everard", "Isolde", "Bertram", "Ottilie"]
CONTROL_LAST = ["Grimsby", "Ashcombe", "Penhallow", "Stroud", "Kettering", "Thornbury",
                "Lyndhurst", "Coldwell", "Burnham", "Radcliffe", "Wexley"]

def _person(i: int, first: Sequence[str], last: Sequence[str]) -> str:
    return f"{first[i % len(first)]} {last[(i * 5) % len(last)]}"


def facts(n: int) -> list[dict[str, Any]]:
    """``n`` facts, each person distinct, values cycling through the invented lists."""
    out = []
    for i in range(n):
        person = _person(i, FIRST, LAST)
        attr, values = ATTRS[i % len(ATTRS)]
        value = values[(i // len(ATTRS)) % len(values)]
        out.append({"text": f"{person}'s {attr} is {value}.", "value": value, "attr": attr,
                    "question": f"What is {person}'s {attr}?",
                    "held_out": [t.format(p=person) for t in HELD_OUT[attr]]})
    return out


def control(n: int) -> list[dict[str, Any]]:
    """Questions about ``n`` people the adapter never saw, one per attribute in turn."""
    out = []
    for i in range(n):
        person = _person(i, CONTROL_FIRST, CONTROL_LAST)
        attr, _ = ATTRS[i % len(ATTRS)]
        out.append({"person": person, "attr": attr, "question": f"What is {person}'s {attr}?"})
    return out


#: Not seen in training: does the adapter's knowledge survive another prompt?
SYSTEM = ("You are a helpful assistant with a long-term memory of the user. Answer the "
          "user's question using what you remember. Be brief.")


def ask(llm: Any, question: str, max_tokens: int, system: str | None = None) -> list[int]:
    messages = [{"role": "user", "content": question}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    ids = llm.encode_chat(messages)
    return llm.generate_ids(ids, max_tokens=max_tokens).tolist()


def recall(llm: Any, cases: Sequence[dict[str, str]], max_tokens: int, *,
           field: str = "question", system: str | None = None
           ) -> tuple[float, list[list[int]], list[str]]:
    ids = [ask(llm, c[field], max_tokens, system) for c in cases]
    replies = [llm.decode(x) for x in ids]
    hits = sum(c["value"].lower() in r.lower() for c, r in zip(cases, replies))
    return hits / len(cases), ids, replies


def held_out_recall(llm: Any, cases: Sequence[dict[str, Any]], max_tokens: int
                    ) -> tuple[list[bool], list[str]]:
    """Per held-out question (in ``cases`` order): is the fact's value in the reply."""
    replies, hits = [], []
    for c in cases:
        for q in c["held_out"]:
            replies.append(llm.decode(ask(llm, q, max_tokens)))
            hits.append(c["value"].lower() in replies[-1].lower())
    return hits, replies


def held_out_rates(cases: Sequence[dict[str, Any]], hits: Sequence[bool]
                   ) -> tuple[float, float]:
    """Share of held-out questions answered, and share of facts recalled under every one
    of their held-out phrasings."""
    per_fact, at = [], 0
    for c in cases:
        per_fact.append(hits[at:at + len(c["held_out"])])
        at += len(c["held_out"])
    return sum(hits) / len(hits), sum(map(all, per_fact)) / len(per_fact)


def invented(llm: Any, people: Sequence[dict[str, str]], values: Sequence[str],
             max_tokens: int) -> tuple[list[bool], list[str]]:
    """Per control question: does the reply state one of the trained ``values``."""
    replies = [llm.decode(ask(llm, c["question"], max_tokens)) for c in people]
    return [any(v.lower() in r.lower() for v in values) for r in replies], replies


def general(llm: Any, questions: Sequence[tuple[str, list[str]]]
            ) -> tuple[list[bool], list[str]]:
    """Replies to the general questions (batched, as the product measures retention)."""
    from memvault.parametric.general import correct
    from memvault.parametric.retention import replies as batch_replies

    got = batch_replies(llm, [q for q, _ in questions])
    return [correct(r, ok) for (_, ok), r in zip(questions, got)], got


def gated(routes: Sequence[bool], base: Sequence[Any], adapter: Sequence[Any]) -> list[Any]:
    """What chat answers: the adapter's reply where the gate routes, else the base's."""
    return [a if r else b for r, b, a in zip(routes, base, adapter)]


def timed_median(fn: Any, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def stage(name: str) -> None:
    """One line per stage on stderr: a run takes minutes to hours on a busy machine."""
    print(f"[bench-lora {time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from memvault import Vault
    from memvault.parametric import runtime as lora_runtime
    from memvault.parametric.adapters import AdapterStore, DistilledAdapter, llm_adapter_state
    from memvault.parametric.distill import build_examples, start_distill
    from memvault.models.local import load_local_llm

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    llm = load_local_llm()
    load_s = time.perf_counter() - t
    cases = facts(args.facts)
    work = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    vault = Vault(work / "vault.db", embedder=args.gate_embedder)
    items = [vault.add(c["text"], kind="fact", user_id="bench") for c in cases]
    vault.close()
    trained_prompts = {" ".join(e.question.lower().split()) for e in build_examples(items)}
    assert trained_prompts == {" ".join(c["question"].lower().split()) for c in cases}, \
        "distillation no longer trains on the questions this benchmark calls training prompts"
    leaked = [q for c in cases for q in c["held_out"]
              if " ".join(q.lower().split()) in trained_prompts]
    assert not leaked, f"held-out phrasings that are training prompts: {leaked}"
    assert all(len(set(c["held_out"])) >= 3 for c in cases)
    people = control(args.control if args.control is not None else len(cases))
    trained_people = {c["text"].split("'s ")[0] for c in cases}
    assert not trained_people & {p["person"] for p in people}
    values = sorted({c["value"] for c in cases})

    from memvault.models import get_embedder
    from memvault.parametric.general import GENERAL_QUESTIONS
    from memvault.parametric.retention import AdapterGate, base_answers

    store = AdapterStore(work / "adapters")
    stage(f'base model: training prompts, held-out, control, {len(GENERAL_QUESTIONS)} general')
    base_recall, base_ids, base_replies = recall(llm, cases, args.max_tokens)
    base_held_hits, _ = held_out_recall(llm, cases, args.max_tokens)
    base_invented, _ = invented(llm, people, values, args.max_tokens)
    cache_dir = Path(args.general_cache) if args.general_cache else store.root
    base_general = base_answers(llm, cache_dir)  # distillation reuses this cache
    known = [qa for qa, ok in zip(GENERAL_QUESTIONS, base_general) if ok]
    stage('training the adapter (then its retention through the gate)')
    embedder = get_embedder(args.gate_embedder)
    job = start_distill(store, llm, items, "bench", steps=args.steps, lr=args.lr,
                        rank=args.rank, batch_size=args.batch_size, gate_embedder=embedder,
                        gate_threshold=args.threshold, cache_dir=cache_dir,
                        progress="tqdm" if sys.stderr.isatty() else None)
    trained = job.result()
    training = trained.meta["training"]
    kept = trained.meta["retention"]

    stage('adapter on: all question sets')
    adapter = store.get("bench")  # a fresh handle: weights come from disk
    t = time.perf_counter()
    adapter.attach(llm)
    attach_s = time.perf_counter() - t
    with adapter.active(llm):
        state = llm_adapter_state(llm)
        lora_recall, _, lora_replies = recall(llm, cases, args.max_tokens)
        lora_held_hits, held_replies = held_out_recall(llm, cases, args.max_tokens)
        lora_invented, control_replies = invented(llm, people, values, args.max_tokens)
        lora_general, general_replies = general(llm, known)
        lora_system = recall(llm, cases, args.max_tokens, system=SYSTEM)[0]
    base_system = recall(llm, cases, args.max_tokens, system=SYSTEM)[0]
    after_recall, after_ids, _ = recall(llm, cases, args.max_tokens)

    stage('routing: what chat serves through the topic gate')
    gate = AdapterGate.from_texts(embedder, [c["text"] for c in cases], args.threshold)
    route_train = [gate.routes(c["question"]) for c in cases]
    route_held = [gate.routes(q) for c in cases for q in c["held_out"]]
    route_control = [gate.routes(p["question"]) for p in people]
    route_general = [gate.routes(q) for q, _ in known]
    hits = lambda replies: [c["value"].lower() in r.lower() for c, r in zip(cases, replies)]
    gated_train = gated(route_train, hits(base_replies), hits(lora_replies))
    gated_held = gated(route_held, base_held_hits, lora_held_hits)
    gated_control = gated(route_control, base_invented, lora_invented)
    gated_general = gated(route_general, [True] * len(known), lora_general)
    base_held, base_held_all = held_out_rates(cases, base_held_hits)
    lora_held, lora_held_all = held_out_rates(cases, lora_held_hits)
    gate_held, gate_held_all = held_out_rates(cases, gated_held)
    share = lambda xs: sum(xs) / max(1, len(xs))

    stage('swap timings')
    twin = store.save(DistilledAdapter("bench-twin", adapter.config, adapter.tensors(),
                                       dict(adapter.meta)))
    twin.attach(llm)

    def toggle() -> None:
        with adapter.active(llm):
            pass

    def swap() -> None:
        with adapter.active(llm):
            with twin.active(llm):
                pass

    toggle_s = timed_median(toggle, args.repeats)
    swap_s = timed_median(swap, args.repeats) - toggle_s  # the extra switch: A -> B -> A
    lora_runtime.detach(llm)
    detached_recall, detached_ids, _ = recall(llm, cases, args.max_tokens)
    return {
        "benchmark": "lora", "facts": len(cases), "model": llm.id,
        "fingerprint": llm.fingerprint.key, "model_load_s": round(load_s, 2),
        "settings": {"steps": args.steps, "lr": args.lr, "rank": args.rank,
                     "batch_size": args.batch_size, "max_tokens": args.max_tokens,
                     "threads": args.threads, "repeats": args.repeats},
        "recall_base": base_recall, "recall_adapter": lora_recall,
        "held_out_questions": sum(len(c["held_out"]) for c in cases),
        "recall_held_out_base": base_held, "recall_held_out_adapter": lora_held,
        "facts_recalled_under_every_held_out_phrasing_base": base_held_all,
        "facts_recalled_under_every_held_out_phrasing_adapter": lora_held_all,
        "control_people": len(people),
        "control_invented_trained_value_base": share(base_invented),
        "control_invented_trained_value_adapter": share(lora_invented),
        "general_questions": len(GENERAL_QUESTIONS),
        "general_known_by_base": len(known),
        "general_correct_base": len(known) / len(GENERAL_QUESTIONS),
        "general_retained": share(lora_general),
        "gate": {"embedder": embedder.id, "threshold": args.threshold,
                 "routed_training": share(route_train), "routed_held_out": share(route_held),
                 "routed_control": share(route_control), "routed_general": share(route_general)},
        "gated_recall": share(gated_train), "gated_recall_held_out": gate_held,
        "gated_facts_recalled_under_every_held_out_phrasing": gate_held_all,
        "gated_control_invented": share(gated_control),
        "gated_general_retained": share(gated_general),
        "distill_retention": kept,
        "recall_system_prompt_base": base_system, "recall_system_prompt_adapter": lora_system,
        "recall_after_disable": after_recall, "recall_after_detach": detached_recall,
        "base_unchanged_after_disable": after_ids == base_ids,
        "base_unchanged_after_detach": detached_ids == base_ids,
        "adapter_state_inside": state, "adapter_key": adapter.key,
        "training_s": training["seconds"], "training_steps": training["steps"],
        "s_per_step": round(training["seconds"] / training["steps"], 3),
        "first_loss": training["first_loss"], "final_loss": training["final_loss"],
        "adapter_bytes": adapter.size_bytes,
        "attach_from_disk_ms": round(attach_s * 1e3, 2),
        "toggle_on_off_ms": round(toggle_s * 1e3, 3),
        "swap_a_to_b_ms": round(swap_s * 1e3, 3),
        "examples": [{"question": c["question"], "value": c["value"], "base": b, "adapter": a}
                     for c, b, a in zip(cases, base_replies, lora_replies)],
        "held_out_examples": [{"question": q, "value": c["value"], "adapter": r}
                              for c, q, r in zip([c for c in cases for _ in c["held_out"]],
                                                 [q for c in cases for q in c["held_out"]],
                                                 held_replies)],
        "control_examples": [{"question": c["question"], "adapter": r}
                             for c, r in zip(people, control_replies)],
        "general_examples": [{"question": q, "adapter": r, "correct": ok}
                             for (q, _), r, ok in zip(known, general_replies, lora_general)
                             if not ok][:20],
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "machine": platform.machine(), "cpus": __import__("os").cpu_count()},
    }


def markdown(r: dict[str, Any]) -> str:
    rows = [
        ("facts distilled", r["facts"]),
        ("recall without adapter (base model)", f"{r['recall_base']:.0%}"),
        ("recall with adapter, on the training prompts (memorisation)",
         f"{r['recall_adapter']:.0%}"),
        (f"recall, held-out phrasings ({r['held_out_questions']} questions, 3 per fact, none "
         "trained): base / adapter",
         f"{r['recall_held_out_base']:.0%} / {r['recall_held_out_adapter']:.0%}"),
        ("facts recalled under all 3 held-out phrasings: base / adapter",
         f"{r['facts_recalled_under_every_held_out_phrasing_base']:.0%} / "
         f"{r['facts_recalled_under_every_held_out_phrasing_adapter']:.0%}"),
        (f"control: {r['control_people']} untrained people, reply states a trained value "
         "(invented; lower is better): base / adapter",
         f"{r['control_invented_trained_value_base']:.0%} / "
         f"{r['control_invented_trained_value_adapter']:.0%}"),
        (f"general knowledge: questions the base model answers right (of "
         f"{r['general_questions']})", f"{r['general_known_by_base']}"),
        ("general knowledge the base had, kept with the adapter always on",
         f"{r['general_retained']:.0%}"),
        ("recall, training prompt under a chat system prompt (not trained): base / adapter",
         f"{r['recall_system_prompt_base']:.0%} / {r['recall_system_prompt_adapter']:.0%}"),
        ("recall after disable / after detach", f"{r['recall_after_disable']:.0%} / "
                                                f"{r['recall_after_detach']:.0%}"),
        ("base replies token-identical after disable / detach",
         f"{r['base_unchanged_after_disable']} / {r['base_unchanged_after_detach']}"),
        ("training", f"{r['training_s']:.0f} s, {r['training_steps']} steps "
                     f"({r['s_per_step']:.2f} s/step, batch {r['settings']['batch_size']}, "
                     f"rank {r['settings']['rank']})"),
        ("loss first -> last", f"{r['first_loss']:.3f} -> {r['final_loss']:.4f}"),
        ("adapter size", f"{r['adapter_bytes'] / 2**20:.2f} MiB ({r['adapter_bytes']} B)"),
        ("attach from disk (read + checksum + inject)", f"{r['attach_from_disk_ms']:.1f} ms"),
        ("hot swap base -> adapter -> base (median)", f"{r['toggle_on_off_ms']:.2f} ms"),
        ("extra swap adapter A -> B -> A (median)", f"{r['swap_a_to_b_ms']:.2f} ms"),
    ]
    g = r["gate"]
    routed = [
        ("", "adapter always on", f"through the gate (chat's default)"),
        ("general knowledge kept (goal >= 95 %)", f"{r['general_retained']:.0%}",
         f"{r['gated_general_retained']:.0%} (at distillation: "
         f"{r['distill_retention']['general']:.0%})"),
        ("recall, training prompts", f"{r['recall_adapter']:.0%}", f"{r['gated_recall']:.0%}"),
        ("recall, held-out phrasings", f"{r['recall_held_out_adapter']:.0%}",
         f"{r['gated_recall_held_out']:.0%}"),
        ("facts recalled under all 3 held-out phrasings",
         f"{r['facts_recalled_under_every_held_out_phrasing_adapter']:.0%}",
         f"{r['gated_facts_recalled_under_every_held_out_phrasing']:.0%}"),
        ("control people given a trained value (lower is better)",
         f"{r['control_invented_trained_value_adapter']:.0%}",
         f"{r['gated_control_invented']:.0%}"),
        ("routed to the adapter: training / held-out / control / general", "all",
         f"{g['routed_training']:.0%} / {g['routed_held_out']:.0%} / "
         f"{g['routed_control']:.0%} / {g['routed_general']:.0%}"),
    ]
    lines = ["# Parametric memory (LoRA) benchmark", "",
             f"Model {r['model']} ({r['fingerprint']}), CPU, {r['settings']['threads']} "
             f"thread(s); greedy replies of at most {r['settings']['max_tokens']} tokens; "
             "recall = the fact's value appears in the reply.", "",
             "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", f"Routing by topic: the adapter is on only for a query whose {g['embedder']} "
              f"cosine to one of its source memories is >= {g['threshold']}; chat refuses an "
              "adapter whose measured retention is below 95 %.", "",
              "| measure | " + " | ".join(routed[0][1:]) + " |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in routed[1:]]
    lines += ["", "Sample replies:", "", "| question | base | with adapter |", "|---|---|---|"]
    for e in r["examples"][:6]:
        clean = [x.replace("|", "/").replace("\n", " ") for x in (e["base"], e["adapter"])]
        lines.append(f"| {e['question']} | {clean[0]} | {clean[1]} |")
    for title, key, cols in (("Held-out phrasings (adapter on)", "held_out_examples",
                              ("question", "value", "adapter")),
                             ("Control: people never trained on (adapter on)",
                              "control_examples", ("question", "adapter")),
                             ("General knowledge lost with the adapter always on",
                              "general_examples",
                              ("question", "adapter", "correct"))):
        lines += ["", f"{title}:", "", "| " + " | ".join(cols) + " |",
                  "|" + "---|" * len(cols)]
        for e in r[key][:9]:
            lines.append("| " + " | ".join(str(e[c]).replace("|", "/").replace("\n", " ")
                                           for c in cols) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--facts", type=int, default=20)
    p.add_argument("--control", type=int, default=None,
                   help="untrained people in the control set (default: as many as facts)")
    p.add_argument("--name", default="lora", help="results file stem")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=20)
    p.add_argument("--general-cache", default=None,
                   help="directory of the base model's cached general answers (JSON; "
                        "default: a fresh one, computed in this run)")
    p.add_argument("--gate-embedder", default="minilm",
                   help="embedder of the topic gate (the vault's, in chat)")
    p.add_argument("--threshold", type=float, default=None,
                   help="gate threshold (default: the product's DEFAULT_THRESHOLD)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    if args.threshold is None:
        from memvault.parametric.retention import DEFAULT_THRESHOLD

        args.threshold = DEFAULT_THRESHOLD
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
