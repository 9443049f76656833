#!/usr/bin/env python
"""The pager's workload: many scopes' KV blocks and adapters under one RAM budget.

    python benchmarks/bench_pager.py --scopes 50 --requests 300 --warmup 100 --budget 0.2 \
        --out benchmarks/results

With the bundled SmolLM2-135M (one torch thread): ``--scopes`` scopes, each with a profile
block (4-12 synthetic facts rendered as ``Vault.chat`` renders a scope's block, built
under the scope's adapter and stored in ``--quant``) and a LoRA adapter (rank 8 on
q_proj/v_proj, random weights: the size and loading cost of a distilled one, not its
content). A trace of ``--warmup`` + ``--requests`` requests picks scopes by a Zipf law
(s = ``--zipf``; popularity ranks shuffled so size and popularity are independent).
Each request generates the first answer token for a question in its scope, the way
``Vault.chat`` does: adapter on, block from the store, only the question prefilled.
The same trace runs three ways, one after another (the model's adapters reset between):

* *no cache*: the block is recomputed (the whole prompt prefilled) and the adapter read
  from disk and installed every time (then unloaded). It keeps no state, so it runs on
  the first ``--baseline-requests`` requests after the warm-up only (time);
* *unbounded*: a :class:`~memvault.activation.pager.Pager` with no effective budget;
* *pager*: a pager whose budget is ``--budget`` of all pages' resident bytes.

Reported over the requests after the warm-up: page hit rate (block and adapter lookups),
both-resident rate per request, TTFT p50/p95 (page-in + first token), page-in cost
(s per MB, p50/p95, from the pager), the pager's peak bytes and the process RSS growth
(freed heap trimmed before measuring). A replay of the same trace at budgets from 5 % to
100 % (page sizes as measured; no model; :mod:`pager_replay`, which also runs the long
traces) gives the plot's hit-rate curve: the pager's policy and LRU between the static
optimum (the knapsack of true request probability per byte: the bound, in expectation,
for any policy that does not see the future) and Belady-size (offline). Writes
``pager.json``, ``pager.md`` and ``pager.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results  # noqa: E402
import pager_replay  # noqa: E402

from memvault.activation.blocks import ActivationStore, build_block  # noqa: E402
from memvault.activation.pager import Pager  # noqa: E402
from memvault.activation.tier import system_messages  # noqa: E402
from memvault.parametric import runtime  # noqa: E402
from memvault.parametric.adapters import AdapterStore, DistilledAdapter  # noqa: E402
from memvault.types import MemoryItem  # noqa: E402

MB = 1024 * 1024
PEOPLE = "Alice Bob Carmen Dmitri Emeka Farah Goran Hana Ivan Jun Keiko Liam Maya".split()
THINGS = ("violin", "kayak", "teapot", "compass", "bicycle", "lantern", "chessboard",
          "passport", "umbrella", "telescope", "notebook", "guitar")
CITIES = ("Porto", "Oslo", "Kyoto", "Lagos", "Quito", "Dublin", "Hanoi", "Tunis", "Lima")


def rss() -> int:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def scope_facts(scope: int) -> list[MemoryItem]:
    n = 4 + (scope * 7) % 9
    return [MemoryItem(id=f"s{scope}f{i}", kind="fact", user_id=f"u{scope}",
                       text=f"The user's friend {PEOPLE[(scope + i) % len(PEOPLE)]} keeps a "
                            f"{THINGS[(scope * 3 + i * 7) % len(THINGS)]} in a flat in "
                            f"{CITIES[(scope + i * 5) % len(CITIES)]}.")
            for i in range(n)]


_CONFIG = {"r": 8, "lora_alpha": 16.0, "target_modules": ["q_proj", "v_proj"]}


def adapter_shapes(llm: Any) -> dict[str, Any]:
    """The tensor names and shapes of a rank-8 q/v adapter for this model."""
    key = "training:shape"
    runtime.install(llm, key, _CONFIG)
    shapes = runtime.slot_tensors(llm, key)
    runtime.uninstall(llm, key)
    return shapes


def random_adapter(llm: Any, store: AdapterStore, name: str, seed: int,
                   shapes: dict[str, Any]) -> Any:
    import torch

    config = _CONFIG
    gen = torch.Generator().manual_seed(seed)
    tensors = {k: torch.randn(t.shape, generator=gen) * 0.01 for k, t in shapes.items()}
    return store.save(DistilledAdapter(name, config, tensors,
                                       {"fingerprint": llm.fingerprint.to_dict(),
                                        "sources": []}))


def trace(scopes: int, n: int, s: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    order = list(range(scopes))
    rng.shuffle(order)  # popularity rank -> scope
    weights = [1 / (k + 1) ** s for k in range(scopes)]
    return [order[i] for i in rng.choices(range(scopes), weights=weights, k=n)]


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def run(llm: Any, root: Path, quant: str, names: list[str], blocks: list[Any],
        questions: list[str], requests: list[int], warmup: int, budget: int | None
        ) -> dict[str, Any]:
    """One pass over the trace; budget None = no cache."""
    import torch

    pager = Pager(budget) if budget is not None else None
    store = ActivationStore(root / "activation", quant=quant, pager=pager, max_loaded=0)
    adapters = AdapterStore(root / "adapters", pager=pager)
    handles = [adapters.get(n) for n in names]
    base = rss()
    ttft, both, counted = [], 0, {"hits": 0, "misses": 0}
    for i, scope in enumerate(requests):
        block = blocks[scope]
        adapter = handles[scope]
        before = dict(pager.counts) if pager is not None else None
        resident = (pager is not None and
                    {("block", (str(store.root), block.fingerprint.key, block.hash)),
                     ("adapter", (id(llm), adapter.key))} <= {(p.kind, p.key)
                                                              for p in pager.pages()})
        ids = llm.encode_chat([*block.messages, {"role": "user", "content": questions[scope]}])
        started = time.perf_counter()
        with adapter.active(llm):
            if pager is None:
                llm.generate_ids(ids, max_tokens=1)  # the whole prompt prefilled
            else:
                loaded = store.load(llm, block)
                assert loaded.matches_prefix(ids) and loaded.block.adapter == adapter.key
                llm.generate_ids(ids, max_tokens=1, cache=loaded.fresh_cache(llm))
        elapsed = time.perf_counter() - started
        if pager is None:
            runtime.uninstall(llm, adapter.key)  # read from disk again next time
        if i >= warmup:
            ttft.append(elapsed)
            both += int(resident)
            if pager is not None:
                for k in counted:
                    counted[k] += pager.counts[k] - before[k]
    grown = rss() - base
    out: dict[str, Any] = {
        "ttft_p50_s": round(pct(ttft, 0.5), 4), "ttft_p95_s": round(pct(ttft, 0.95), 4),
        "ttft_mean_s": round(statistics.fmean(ttft), 4), "rss_growth_mb": round(grown / MB, 1)}
    if pager is not None:
        st = pager.stats()
        lookups = counted["hits"] + counted["misses"]
        out.update({"hit_rate": round(counted["hits"] / lookups, 4),
                    "both_resident_rate": round(both / len(ttft), 4),
                    "hit_rate_incl_warmup": st["hit_rate"],
                    "page_in_s_per_mb_p50": st["page_in_s_per_mb_p50"],
                    "page_in_s_per_mb_p95": st["page_in_s_per_mb_p95"],
                    "budget_mb": round(st["budget_bytes"] / MB, 1),
                    "peak_mb": round(st["peak_bytes"] / MB, 1),
                    "evictions": st["evictions"], "bypass": st["bypass"],
                    "_costs": {k: statistics.median(v) for k, v in pager._costs.items()}})
        pager.clear()
    runtime.detach(llm)
    del store, adapters, handles, pager
    torch.set_num_threads(1)
    return out


def replay(requests: list[int], sizes: list[dict[str, int]], budget: int, s: float,
           seed: int, warmup: int) -> dict[str, float]:
    """Hit rates on this trace at ``budget``, no model (:mod:`pager_replay`): the pager's
    policy, LRU, the static optimum (knapsack of true probability per byte: the bound for
    any policy that does not see the future, in expectation) and Belady-size (offline)."""
    tail = requests[warmup:]
    kept = pager_replay.static_set(pager_replay.zipf_law(len(sizes), s, seed), sizes, budget)
    return {"pager": pager_replay.steady(pager_replay.run_pager(requests, sizes, budget),
                                         warmup),
            "lru": pager_replay.steady(pager_replay.run_lru(requests, sizes, budget), warmup),
            "static_best": sum(((k, sc) in kept) for sc in tail for k in pager_replay.KINDS)
            / (2 * len(tail)),
            "belady_size": pager_replay.steady(pager_replay.run_belady(requests, sizes, budget),
                                               warmup)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scopes", type=int, default=50)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--baseline-requests", type=int, default=40)
    ap.add_argument("--budget", type=float, default=0.2)
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--quant", default="fp16", choices=["fp16", "int8", "int4"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    import torch

    from memvault.models.local import load_local_llm

    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    llm = load_local_llm()
    requests = trace(args.scopes, args.warmup + args.requests, args.zipf, args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_store = ActivationStore(root / "activation", quant=args.quant, max_loaded=0)
        adapters = AdapterStore(root / "adapters")
        names, blocks, questions, sizes = [], [], [], []
        elem = torch.empty(0, dtype=llm.model.dtype).element_size()
        shapes = adapter_shapes(llm)
        for scope in range(args.scopes):
            adapter = random_adapter(llm, adapters, f"scope-{scope}", seed=scope,
                                     shapes=shapes)
            items = scope_facts(scope)
            with adapter.active(llm):
                built = build_block(llm, system_messages(items), items=items)
            blocks.append(build_store.save(built))
            names.append(adapter.name)
            questions.append(f"Who keeps a {THINGS[scope % len(THINGS)]}?")
            sizes.append({"block": built.nbytes,
                          "adapter": sum(t.numel() for t in adapter.tensors().values()) * elem})
            print(f"built {scope + 1}/{args.scopes} scopes", file=sys.stderr, flush=True)
        runtime.detach(llm)
        del build_store
        total = sum(s["block"] + s["adapter"] for s in sizes)
        budget = int(args.budget * total)
        configs = {}
        for label, b in (("no cache", None), ("unbounded", 1 << 62), ("pager", budget)):
            t0 = time.perf_counter()
            trace_, warm = requests, args.warmup
            if b is None:
                trace_, warm = requests[args.warmup:args.warmup + args.baseline_requests], 0
            configs[label] = run(llm, root, args.quant, names, blocks, questions, trace_,
                                 warm, b)
            configs[label]["seconds"] = round(time.perf_counter() - t0, 1)
            print(label, configs[label], file=sys.stderr, flush=True)
    result_costs = {k: round(v * MB, 6) for k, v in configs["pager"].pop("_costs").items()}
    configs["unbounded"].pop("_costs", None)
    fractions = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]
    curve = [{"budget": f, **{k: round(v, 4) for k, v in replay(
        requests, sizes, int(f * total), args.zipf, args.seed, args.warmup).items()}}
             for f in fractions]
    p, u = configs["pager"], configs["unbounded"]
    result = {
        "benchmark": "pager", "model": llm.id, "scopes": args.scopes, "zipf_s": args.zipf,
        "requests": args.requests, "warmup": args.warmup, "quant": args.quant,
        "baseline_requests": args.baseline_requests,
        "budget_fraction": args.budget, "total_pages_mb": round(total / MB, 1),
        "mean_block_mb": round(statistics.fmean(s["block"] for s in sizes) / MB, 2),
        "adapter_mb": round(statistics.fmean(s["adapter"] for s in sizes) / MB, 2),
        "page_in_s_per_mb_by_kind": result_costs,
        "sizes": sizes, "configs": configs, "replay": curve,
        "ttft_p50_vs_unbounded": round(p["ttft_p50_s"] / u["ttft_p50_s"], 3),
        "ttft_p50_no_cache_vs_unbounded": round(configs["no cache"]["ttft_p50_s"]
                                                / u["ttft_p50_s"], 3),
        "goals": "hit rate >= 0.80 and TTFT p50 within 1.3x of unbounded",
        "met": {"hit_rate": p["hit_rate"] >= 0.80,
                "ttft": p["ttft_p50_s"] <= 1.3 * u["ttft_p50_s"]},
        "seconds": round(time.perf_counter() - started, 1),
        "machine": _results.machine(load0)}
    _results.write(args.out, "pager", result, markdown)
    plot(result, Path(args.out) / "pager.png")


def markdown(r: dict[str, Any]) -> str:
    c = r["configs"]
    out = [f"# Pager: {r['scopes']} scopes (block + adapter), Zipf s={r['zipf_s']}, budget "
           f"{100 * r['budget_fraction']:.0f} % of {r['total_pages_mb']} MB", "",
           f"{r['requests']} requests after {r['warmup']} warm-up (no cache: the first "
           f"{r['baseline_requests']} of them), {r['model']}, blocks in "
           f"{r['quant']} on disk (mean {r['mean_block_mb']} MB resident), adapters "
           f"{r['adapter_mb']} MB. TTFT = page-in + first token.", "",
           "| config | hit rate | both resident | TTFT p50 | TTFT p95 | page-in p50 / p95 "
           "| pager peak | RSS growth |", "|---|---|---|---|---|---|---|---|"]
    for label, row in c.items():
        hit = f"{row['hit_rate']:.3f}" if "hit_rate" in row else "—"
        both = f"{row['both_resident_rate']:.3f}" if "both_resident_rate" in row else "—"
        page = (f"{1000 * row['page_in_s_per_mb_p50']:.1f} / "
                f"{1000 * row['page_in_s_per_mb_p95']:.1f} ms/MB"
                if row.get("page_in_s_per_mb_p50") is not None else "—")
        peak = f"{row['peak_mb']} MB" if "peak_mb" in row else "—"
        out.append(f"| {label} | {hit} | {both} | {1000 * row['ttft_p50_s']:.0f} ms | "
                   f"{1000 * row['ttft_p95_s']:.0f} ms | {page} | {peak} | "
                   f"{row['rss_growth_mb']} MB |")
    out += ["", f"TTFT p50: pager {r['ttft_p50_vs_unbounded']}x unbounded, no cache "
            f"{r['ttft_p50_no_cache_vs_unbounded']}x. Goals: {r['goals']}: hit rate "
            f"{'met' if r['met']['hit_rate'] else 'not met'}, TTFT "
            f"{'met' if r['met']['ttft'] else 'not met'}.", "",
            "Replay of the same trace (page sizes as measured, no model; long traces: "
            "`pager_replay.md`):", "",
            "| budget | pager policy | LRU | static optimum (online bound) | Belady-size "
            "(offline) |", "|---|---|---|---|---|"]
    out += [f"| {100 * row['budget']:.0f} % | {row['pager']:.3f} | {row['lru']:.3f} | "
            f"{row['static_best']:.3f} | {row['belady_size']:.3f} |" for row in r["replay"]]
    m = r["machine"]
    out += ["", f"{r['seconds']} s, load {m['load_start']} -> {m['load_end']}.", ""]
    return "\n".join(out)


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [100 * row["budget"] for row in r["replay"]]
    a.plot(xs, [row["pager"] for row in r["replay"]], "o-", label="pager policy (replay)")
    a.plot(xs, [row["lru"] for row in r["replay"]], "s--", label="LRU (replay)")
    a.plot(xs, [row["static_best"] for row in r["replay"]], ":", label="static optimum")
    a.plot(xs, [row["belady_size"] for row in r["replay"]], "k--", label="Belady-size (offline)")
    a.plot([100 * r["budget_fraction"]], [r["configs"]["pager"]["hit_rate"]], "r*",
           markersize=12, label="pager (measured)")
    a.set_xlabel("budget, % of all pages")
    a.set_ylabel("page hit rate")
    a.legend()
    a.grid(alpha=0.3)
    for label, row in r["configs"].items():
        b.bar(label, 1000 * row["ttft_p50_s"], alpha=0.7)
        b.errorbar(label, 1000 * row["ttft_p50_s"],
                   yerr=[[0], [1000 * (row["ttft_p95_s"] - row["ttft_p50_s"])]], color="k",
                   capsize=4)
    b.set_ylabel("TTFT ms (p50, bar to p95)")
    fig.suptitle(f"{r['scopes']} scopes, Zipf s={r['zipf_s']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
