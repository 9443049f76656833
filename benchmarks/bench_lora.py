#!/usr/bin/env python
"""Parametric memory: distil made-up facts into a LoRA adapter and measure recall.

    python benchmarks/bench_lora.py --facts 20 --steps 30 --out benchmarks/results

Facts about invented people with invented values (the base model cannot know them) are
stored in a real vault (hash embedder), distilled into a LoRA adapter on the bundled
SmolLM2-135M (CPU, one thread), saved as safetensors and loaded back from disk. Recall is
the share of questions whose greedy reply contains the fact's value (exact substring,
case-insensitive), asked without and with the adapter. Also: training time and steps,
adapter bytes, cold attach (read + load) time, hot-swap times (median of repeats), and a
token-for-token check that the base model's replies are unchanged after disabling.

Writes ``lora.json`` (every number + environment) and ``lora.md`` to ``--out``.
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


def facts(n: int) -> list[dict[str, str]]:
    """``n`` facts, each person distinct, values cycling through the invented lists."""
    out = []
    for i in range(n):
        person = f"{FIRST[i % len(FIRST)]} {LAST[(i * 5) % len(LAST)]}"
        attr, values = ATTRS[i % len(ATTRS)]
        value = values[(i // len(ATTRS)) % len(values)]
        out.append({"text": f"{person}'s {attr} is {value}.", "value": value,
                    "question": f"What is {person}'s {attr}?",
                    "paraphrase": f"Do you know {person}'s {attr}? Answer briefly."})
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


def timed_median(fn: Any, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from memvault import Vault
    from memvault.parametric import runtime as lora_runtime
    from memvault.parametric.adapters import AdapterStore, DistilledAdapter, llm_adapter_state
    from memvault.models.local import load_local_llm

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    llm = load_local_llm()
    load_s = time.perf_counter() - t
    cases = facts(args.facts)
    work = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    vault = Vault(work / "vault.db", embedder="hash")
    items = [vault.add(c["text"], kind="fact", user_id="bench") for c in cases]
    vault.close()

    base_recall, base_ids, base_replies = recall(llm, cases, args.max_tokens)
    store = AdapterStore(work / "adapters")
    job = start_distill(store, llm, items, "bench", steps=args.steps, lr=args.lr,
                              rank=args.rank, batch_size=args.batch_size,
                              progress="tqdm" if sys.stderr.isatty() else None)
    trained = job.result()
    training = trained.meta["training"]

    adapter = store.get("bench")  # a fresh handle: weights come from disk
    t = time.perf_counter()
    adapter.attach(llm)
    attach_s = time.perf_counter() - t
    with adapter.active(llm):
        state = llm_adapter_state(llm)
        lora_recall, _, lora_replies = recall(llm, cases, args.max_tokens)
        lora_para = recall(llm, cases, args.max_tokens, field="paraphrase")[0]
        lora_system = recall(llm, cases, args.max_tokens, system=SYSTEM)[0]
    base_para = recall(llm, cases, args.max_tokens, field="paraphrase")[0]
    base_system = recall(llm, cases, args.max_tokens, system=SYSTEM)[0]
    after_recall, after_ids, _ = recall(llm, cases, args.max_tokens)

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
        "recall_paraphrase_base": base_para, "recall_paraphrase_adapter": lora_para,
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
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "machine": platform.machine(), "cpus": __import__("os").cpu_count()},
    }


def markdown(r: dict[str, Any]) -> str:
    rows = [
        ("facts distilled", r["facts"]),
        ("recall without adapter (base model)", f"{r['recall_base']:.0%}"),
        ("recall with adapter", f"{r['recall_adapter']:.0%}"),
        ("recall, paraphrased question (not trained): base / adapter",
         f"{r['recall_paraphrase_base']:.0%} / {r['recall_paraphrase_adapter']:.0%}"),
        ("recall, with a chat system prompt (not trained): base / adapter",
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
    lines = ["# Parametric memory (LoRA) benchmark", "",
             f"Model {r['model']} ({r['fingerprint']}), CPU, {r['settings']['threads']} "
             f"thread(s); greedy replies of at most {r['settings']['max_tokens']} tokens; "
             "recall = the fact's value appears in the reply.", "",
             "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "Sample replies:", "", "| question | base | with adapter |", "|---|---|---|"]
    for e in r["examples"][:6]:
        clean = [x.replace("|", "/").replace("\n", " ") for x in (e["base"], e["adapter"])]
        lines.append(f"| {e['question']} | {clean[0]} | {clean[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--facts", type=int, default=20)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lora.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "lora.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
