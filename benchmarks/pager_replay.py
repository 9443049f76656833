#!/usr/bin/env python
"""Hit rate vs budget for the pager's workload, without a model: policies against bounds.

    python benchmarks/pager_replay.py --requests 20000 --seeds 5 --out benchmarks/results

The trace is :mod:`bench_pager`'s: ``--scopes`` scopes, each with a profile block and an
adapter (sizes as the bench builds them with the bundled model: the block's tokens x the
model's KV bytes per token, a rank-8 q/v adapter), requests drawn by a Zipf law
(s = ``--zipf``, popularity independent of size); every request looks up the scope's
block and its adapter. Hit rate = hits / lookups over the requests after ``--warmup``
(steady state: compulsory misses left out). Per budget (5-100 % of all pages' bytes),
mean over ``--seeds`` traces:

* **pager**: :class:`memvault.activation.pager.Pager` itself (expected hits per byte,
  use aged by lookups, admission by use);
* **LRU**; **heat x cost (before)**: the pager's previous policy (the scheduler's heat
  ``(1 + ln(1 + hits)) * 0.5 ** (age / half-life)`` times page-in cost per byte, always
  admitting; cost per byte is the same for every page in the replay, so it ranks by heat);
  **LFU-aged, no admission**: the pager's ranking without its admission test;
* **static optimum (IRM bound)**: the 0/1 knapsack of true request probability per page
  over bytes, solved exactly (dynamic programming). Under independent requests the cache
  of any policy that does not see the future is, before each request, some set that fits
  the budget, so its expected hit rate is at most this set's: ``expected`` is that bound,
  ``on trace`` the same set's hits on the sampled trace;
* **Belady-size (offline)**: sees the future: on a miss, the pages (the newcomer included)
  whose next use is farthest, weighted by size, go first. A real schedule, so a lower
  bound on the offline optimum;
* **offline optimum, LP bound** (``--lp-requests`` first requests of seed 0, budgets
  ``--lp-budgets``): the linear relaxation of optimal caching with sizes (FOO, Berger et
  al. 2018): one variable per interval between two uses of a page, the intervals held at
  each moment fit the budget. Its value is an upper bound on any policy's hits, offline
  included.

Writes ``pager_replay.json`` / ``.md`` / ``.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results  # noqa: E402

from memvault.activation.pager import Pager  # noqa: E402

KINDS = ("block", "adapter")
FRACTIONS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)


def zipf_law(scopes: int, s: float, seed: int) -> dict[int, float]:
    """Scope -> request probability (ranks shuffled by ``seed``, as ``bench_pager.trace``)."""
    rng = random.Random(seed)
    order = list(range(scopes))
    rng.shuffle(order)
    weights = [1 / (k + 1) ** s for k in range(scopes)]
    total = sum(weights)
    return {order[k]: weights[k] / total for k in range(scopes)}


def sample(law: dict[int, float], n: int, seed: int) -> list[int]:
    rng = random.Random(seed * 7919 + 1)
    scopes = sorted(law)
    return rng.choices(scopes, weights=[law[sc] for sc in scopes], k=n)


def lookups(requests: list[int]) -> list[tuple[str, int]]:
    return [(kind, sc) for sc in requests for kind in KINDS]


# -- policies (each returns hits per lookup index) --------------------------------------------
def run_pager(requests: list[int], sizes: list[dict[str, int]], budget: int,
              half_life: float | None = None) -> list[bool]:
    pager = Pager(budget) if half_life is None else Pager(budget, half_life=half_life)
    out = []
    for kind, sc in lookups(requests):
        before = pager.counts["hits"]
        size = sizes[sc][kind]
        pager.get(kind, sc, lambda: (None, size))
        out.append(pager.counts["hits"] > before)
    return out


def run_lru(requests: list[int], sizes: list[dict[str, int]], budget: int) -> list[bool]:
    cache: OrderedDict[tuple[str, int], int] = OrderedDict()
    used, out = 0, []
    for key in lookups(requests):
        size = sizes[key[1]][key[0]]
        hit = key in cache
        out.append(hit)
        if hit:
            cache.move_to_end(key)
        elif size <= budget:
            while used + size > budget:
                used -= cache.popitem(last=False)[1]
            cache[key] = size
            used += size
    return out


def run_ranked(requests: list[int], sizes: list[dict[str, int]], budget: int,
               score: Callable[[dict[str, float], int], float],
               update: Callable[[dict[str, float], int], None]) -> list[bool]:
    """A policy that always admits and evicts the lowest ``score``; per-page state is kept
    while resident (``update`` on every use of a resident page)."""
    cache: dict[tuple[str, int], dict[str, float]] = {}
    used, out = 0, []
    for t, key in enumerate(lookups(requests)):
        size = sizes[key[1]][key[0]]
        page = cache.get(key)
        out.append(page is not None)
        if page is not None:
            update(page, t)
            continue
        if size > budget:
            continue
        while used + size > budget:
            victim = min(cache, key=lambda k: score(cache[k], t))
            used -= int(cache.pop(victim)["size"])
        cache[key] = {"size": size, "hits": 0.0, "last": t, "freq": 1.0}
        used += size
    return out


def run_heat(requests: list[int], sizes: list[dict[str, int]], budget: int,
             half_life: float) -> list[bool]:
    """The pager's previous policy: heat over hits while resident, decayed by age."""
    def score(p: dict[str, float], t: int) -> float:
        return (1 + math.log1p(p["hits"])) * 0.5 ** ((t - p["last"]) / half_life)

    def update(p: dict[str, float], t: int) -> None:
        p["hits"] += 1
        p["last"] = t
    return run_ranked(requests, sizes, budget, score, update)


def run_lfu_no_admission(requests: list[int], sizes: list[dict[str, int]], budget: int,
                         half_life: float) -> list[bool]:
    """The pager's ranking (use aged by lookups, per byte) but every newcomer admitted and
    no memory of evicted pages."""
    def decayed(p: dict[str, float], t: int) -> float:
        return p["freq"] * 0.5 ** ((t - p["last"]) / half_life)

    def score(p: dict[str, float], t: int) -> float:
        return decayed(p, t) / p["size"]

    def update(p: dict[str, float], t: int) -> None:
        p["freq"] = decayed(p, t) + 1
        p["last"] = t
    return run_ranked(requests, sizes, budget, score, update)


def run_belady(requests: list[int], sizes: list[dict[str, int]], budget: int) -> list[bool]:
    """Offline: evict (or bypass) the pages whose next use is farthest x size first."""
    seq = lookups(requests)
    nxt = [math.inf] * len(seq)
    seen: dict[tuple[str, int], int] = {}
    for i in range(len(seq) - 1, -1, -1):
        nxt[i] = seen.get(seq[i], math.inf)
        seen[seq[i]] = i
    cache: dict[tuple[str, int], float] = {}  # key -> next use
    used, out = 0, []
    for i, key in enumerate(seq):
        size = sizes[key[1]][key[0]]
        hit = key in cache
        out.append(hit)
        if hit:
            cache[key] = nxt[i]
            continue
        if size > budget or nxt[i] == math.inf:
            continue
        if used + size <= budget:
            cache[key], used = nxt[i], used + size
            continue
        cand = sorted([*cache, key], key=lambda k: -(
            (nxt[i] if k == key else cache[k]) - i) * sizes[k[1]][k[0]])
        room, drop = budget - used, []
        for k in cand:
            if room >= size:
                break
            if k == key:
                break  # the newcomer's next use is the farthest: bypass
            room += sizes[k[1]][k[0]]
            drop.append(k)
        if room >= size:
            for k in drop:
                used -= sizes[k[1]][k[0]]
                del cache[k]
            cache[key], used = nxt[i], used + size
    return out


def static_set(law: dict[int, float], sizes: list[dict[str, int]], budget: int,
               units: int = 20_000) -> set[tuple[str, int]]:
    """The 0/1 knapsack of request probability over bytes (sizes rounded up to
    ``budget / units``, so the set found always fits)."""
    import numpy as np

    items = [(kind, sc) for sc in range(len(sizes)) for kind in KINDS]
    if sum(sizes[sc][k] for k, sc in items) <= budget:
        return set(items)
    unit = max(1, budget / units)
    cap = int(budget // unit)
    best = np.zeros(cap + 1)
    take = np.zeros((len(items), cap + 1), dtype=bool)
    for j, (kind, sc) in enumerate(items):
        w = math.ceil(sizes[sc][kind] / unit)
        if w > cap:
            continue
        cand = best[:cap + 1 - w] + law[sc]
        better = cand > best[w:]
        take[j, w:] = better
        best[w:] = np.where(better, cand, best[w:])
    chosen, c = set(), cap
    for j in range(len(items) - 1, -1, -1):
        if take[j, c]:
            kind, sc = items[j]
            chosen.add(items[j])
            c -= math.ceil(sizes[sc][kind] / unit)
    return chosen


def lp_bound(requests: list[int], sizes: list[dict[str, int]], budget: int,
             warmup: int) -> float:
    """Upper bound on any policy's steady-state hit rate (FOO's linear relaxation)."""
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    last: dict[int, int] = {}
    rows, cols, vals, obj = [], [], [], []
    var = 0
    for t, sc in enumerate(requests):
        if sc in last:
            a = last[sc]
            for kind in KINDS:  # held from request a until request t (a hit at t)
                span = range(a, t)
                rows.extend(span)
                cols.extend([var] * len(span))
                vals.extend([sizes[sc][kind]] * len(span))
                obj.append(-1.0 if t >= warmup else 0.0)
                var += 1
        last[sc] = t
    if var == 0:
        return 0.0
    a_ub = csr_matrix((np.array(vals, dtype=float) / budget, (rows, cols)),
                      shape=(len(requests), var))
    res = linprog(np.array(obj), A_ub=a_ub, b_ub=np.ones(len(requests)), bounds=(0, 1),
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"LP failed: {res.message}")
    return -res.fun / (2 * (len(requests) - warmup))


def steady(hits: list[bool], warmup: int) -> float:
    tail = hits[2 * warmup:]
    return sum(tail) / len(tail)


# -- the workload's page sizes ---------------------------------------------------------------
def page_sizes(scopes: int) -> tuple[list[dict[str, int]], str]:
    """Each scope's block and adapter bytes as :mod:`bench_pager` builds them, from the
    bundled model's tokenizer and shapes (no forward pass)."""
    import torch

    from bench_pager import adapter_shapes, scope_facts
    from memvault.activation.tier import system_messages
    from memvault.models.local import load_local_llm
    from memvault.parametric import runtime

    llm = load_local_llm()
    cfg = llm.model.config
    elem = torch.empty(0, dtype=llm.model.dtype).element_size()
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    per_token = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * head_dim * elem
    adapter = sum(t.numel() for t in adapter_shapes(llm).values()) * elem
    runtime.detach(llm)
    out = []
    for sc in range(scopes):
        ids = llm.encode_chat(system_messages(scope_facts(sc)), add_generation_prompt=False)
        out.append({"block": int(ids.shape[-1]) * per_token, "adapter": adapter})
    return out, llm.id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scopes", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--also-zipf", default="0.8,1.4",
                    help="other laws to check the policy on at --budget (comma list)")
    ap.add_argument("--budget", type=float, default=0.2)
    ap.add_argument("--lp-requests", type=int, default=4_000)
    ap.add_argument("--lp-budgets", default="0.1,0.2,0.4")
    ap.add_argument("--heat-half-life", type=float, default=540.0,
                    help="the previous policy's half-life in lookups (600 s at the "
                         "model bench's ~2.2 s per request, two lookups each)")
    ap.add_argument("--half-lives", default="256,1024,4096,16384",
                    help="the pager's half-life (lookups) checked at --budget on every law")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    started = time.perf_counter()
    sizes, model = page_sizes(args.scopes)
    total = sum(s["block"] + s["adapter"] for s in sizes)
    from memvault.activation.pager import DEFAULT_HALF_LIFE

    def policies(requests: list[int], budget: int) -> dict[str, float]:
        w = args.warmup
        return {"pager": steady(run_pager(requests, sizes, budget), w),
                "lru": steady(run_lru(requests, sizes, budget), w),
                "heat_before": steady(run_heat(requests, sizes, budget,
                                               args.heat_half_life), w),
                "lfu_no_admission": steady(run_lfu_no_admission(
                    requests, sizes, budget, DEFAULT_HALF_LIFE), w),
                "belady_size": steady(run_belady(requests, sizes, budget), w)}

    def static(law: dict[int, float], requests: list[int], budget: int) -> dict[str, float]:
        kept = static_set(law, sizes, budget)
        tail = requests[args.warmup:]
        return {"static_expected": sum(law[sc] * ((k, sc) in kept) for sc in law
                                       for k in KINDS) / 2,
                "static_on_trace": sum(((k, sc) in kept) for sc in tail for k in KINDS)
                / (2 * len(tail))}

    curve = []
    n = args.warmup + args.requests
    for f in FRACTIONS:
        budget = int(f * total)
        per_seed = []
        for seed in range(args.seeds):
            law = zipf_law(args.scopes, args.zipf, seed)
            requests = sample(law, n, seed)
            per_seed.append({**policies(requests, budget), **static(law, requests, budget)})
        row = {"budget": f, **{k: round(statistics.fmean(r[k] for r in per_seed), 4)
                               for k in per_seed[0]},
               "pager_min": round(min(r["pager"] for r in per_seed), 4)}
        curve.append(row)
        print(f"budget {f:.2f}: {row}", file=sys.stderr, flush=True)
    lp = []
    law0 = zipf_law(args.scopes, args.zipf, 0)
    short = sample(law0, args.lp_requests, 0)
    lp_warm = args.lp_requests // 10
    for f in (float(x) for x in args.lp_budgets.split(",") if x):
        budget = int(f * total)
        t0 = time.perf_counter()
        bound = lp_bound(short, sizes, budget, lp_warm)
        same = {"pager": steady(run_pager(short, sizes, budget), lp_warm),
                "belady_size": steady(run_belady(short, sizes, budget), lp_warm)}
        lp.append({"budget": f, "lp_bound": round(bound, 4), **{k: round(v, 4)
                                                                for k, v in same.items()},
                   "seconds": round(time.perf_counter() - t0, 1)})
        print(f"LP {f:.2f}: {lp[-1]}", file=sys.stderr, flush=True)
    other = []
    for s in [float(x) for x in args.also_zipf.split(",") if x]:
        budget = int(args.budget * total)
        per_seed = []
        for seed in range(args.seeds):
            law = zipf_law(args.scopes, s, seed)
            requests = sample(law, n, seed)
            per_seed.append({"pager": steady(run_pager(requests, sizes, budget), args.warmup),
                             "lru": steady(run_lru(requests, sizes, budget), args.warmup),
                             "heat_before": steady(run_heat(requests, sizes, budget,
                                                            args.heat_half_life),
                                                   args.warmup),
                             **static(law, requests, budget)})
        other.append({"zipf_s": s, **{k: round(statistics.fmean(r[k] for r in per_seed), 4)
                                      for k in per_seed[0]}})
    shifted = shift_check(sizes, int(args.budget * total), args)
    sensitivity = []
    for hl in (float(x) for x in args.half_lives.split(",") if x):
        budget, row = int(args.budget * total), {"half_life": hl}
        for s in [args.zipf, *(float(x) for x in args.also_zipf.split(",") if x)]:
            st, sh = [], []
            for seed in range(args.seeds):
                law, law2 = zipf_law(args.scopes, s, seed), zipf_law(args.scopes, s, seed + 1000)
                requests = sample(law, n, seed)
                st.append(steady(run_pager(requests, sizes, budget, hl), args.warmup))
                moved = requests[:n // 2] + sample(law2, n - n // 2, seed + 1000)
                sh.append(steady(run_pager(moved, sizes, budget, hl), n // 2 + n // 8))
            row[f"s={s}"] = round(statistics.fmean(st), 4)
            row[f"s={s} shifted"] = round(statistics.fmean(sh), 4)
        sensitivity.append(row)
        print(f"half-life {hl:g}: {row}", file=sys.stderr, flush=True)
    at = next(r for r in curve if abs(r["budget"] - args.budget) < 1e-9)
    result = {"benchmark": "pager_replay", "model": model, "scopes": args.scopes,
              "zipf_s": args.zipf, "requests": args.requests, "warmup": args.warmup,
              "seeds": args.seeds, "total_pages_mb": round(total / 2 ** 20, 1),
              "mean_block_mb": round(statistics.fmean(s["block"] for s in sizes) / 2 ** 20, 2),
              "adapter_mb": round(sizes[0]["adapter"] / 2 ** 20, 2),
              "pager_half_life_lookups": DEFAULT_HALF_LIFE,
              "heat_half_life_lookups": args.heat_half_life,
              "curve": curve, "lp": lp, "lp_requests": args.lp_requests,
              "other_laws": other, "popularity_shift": shifted,
              "half_life_sensitivity": sensitivity,
              "at_budget": {"budget": args.budget, **at},
              "goal_reachable": at["static_expected"] >= 0.80,
              "seconds": round(time.perf_counter() - started, 1),
              "machine": _results.machine(load0)}
    _results.write(args.out, "pager_replay", result, markdown)
    plot(result, Path(args.out) / "pager_replay.png")
    return 0


def shift_check(sizes: list[dict[str, int]], budget: int, args: Any) -> dict[str, Any]:
    """A law that changes: after half the trace, popularity is reshuffled. Steady-state
    hit rate over the second half's last 3/4 (time to adapt left out)."""
    out: dict[str, list[float]] = {"pager": [], "lru": [], "heat_before": [],
                                   "static_expected": []}
    half = (args.warmup + args.requests) // 2
    for seed in range(args.seeds):
        first, second = zipf_law(args.scopes, args.zipf, seed), \
            zipf_law(args.scopes, args.zipf, seed + 1000)
        requests = sample(first, half, seed) + sample(second, half, seed + 1000)
        skip = half + half // 4
        out["pager"].append(steady(run_pager(requests, sizes, budget), skip))
        out["lru"].append(steady(run_lru(requests, sizes, budget), skip))
        out["heat_before"].append(steady(run_heat(requests, sizes, budget,
                                                  args.heat_half_life), skip))
        kept = static_set(second, sizes, budget)
        out["static_expected"].append(sum(second[sc] * ((k, sc) in kept) for sc in second
                                          for k in KINDS) / 2)
    return {k: round(statistics.fmean(v), 4) for k, v in out.items()}


def markdown(r: dict[str, Any]) -> str:
    names = [("pager", "pager"), ("lfu_no_admission", "LFU-aged, no admission"),
             ("heat_before", "heat x cost (before)"), ("lru", "LRU"),
             ("static_expected", "static optimum, expected (IRM bound)"),
             ("static_on_trace", "static optimum, on trace"),
             ("belady_size", "Belady-size (offline)")]
    a = r["at_budget"]
    out = [f"# Pager replay: {r['scopes']} scopes (block + adapter), Zipf s={r['zipf_s']}",
           "",
           f"{r['requests']} requests after {r['warmup']} warm-up, mean of {r['seeds']} seeds "
           f"(steady-state hit rate: hits / lookups after the warm-up). Pages as "
           f"`bench_pager` builds them with {r['model']}: blocks {r['mean_block_mb']} MB "
           f"mean, adapters {r['adapter_mb']} MB, {r['total_pages_mb']} MB in all. Pager "
           f"half-life {r['pager_half_life_lookups']:g} lookups.", "",
           f"**At {100 * a['budget']:.0f} %:** pager {a['pager']:.3f} (worst seed "
           f"{a['pager_min']:.3f}), static optimum {a['static_expected']:.3f} expected / "
           f"{a['static_on_trace']:.3f} on the traces, Belady-size (offline) "
           f"{a['belady_size']:.3f}, LRU {a['lru']:.3f}, previous policy "
           f"{a['heat_before']:.3f}. The goal (hit rate >= 0.80) is "
           + ("within reach of an online policy." if r["goal_reachable"] else
              "out of reach of any online policy on this workload: under independent "
              "requests no policy that does not see the future beats the static optimum "
              "in expectation."), "",
           "| budget | " + " | ".join(label for _, label in names) + " |",
           "|---" * (len(names) + 1) + "|"]
    for row in r["curve"]:
        out.append(f"| {100 * row['budget']:.0f} % | "
                   + " | ".join(f"{row[k]:.3f}" for k, _ in names) + " |")
    if r["lp"]:
        out += ["", f"Offline optimum bounded above by the LP relaxation (first "
                f"{r['lp_requests']} requests of seed 0, the last 90 % counted):", "",
                "| budget | pager | Belady-size (offline) | LP upper bound |", "|---|---|---|---|"]
        out += [f"| {100 * row['budget']:.0f} % | {row['pager']:.3f} | "
                f"{row['belady_size']:.3f} | {row['lp_bound']:.3f} |" for row in r["lp"]]
    if r["other_laws"]:
        out += ["", f"Other laws at {100 * a['budget']:.0f} % (same sizes and seeds):", "",
                "| Zipf s | pager | heat x cost (before) | LRU | static optimum, expected |",
                "|---|---|---|---|---|"]
        out += [f"| {row['zipf_s']} | {row['pager']:.3f} | {row['heat_before']:.3f} | "
                f"{row['lru']:.3f} | {row['static_expected']:.3f} |" for row in r["other_laws"]]
    sh = r["popularity_shift"]
    out += ["", f"Popularity reshuffled half-way (counted from a quarter into the second "
            f"half): pager {sh['pager']:.3f}, previous policy {sh['heat_before']:.3f}, LRU "
            f"{sh['lru']:.3f}, static optimum of the new law {sh['static_expected']:.3f}.",
            ""]
    if r["half_life_sensitivity"]:
        cols = [k for k in r["half_life_sensitivity"][0] if k != "half_life"]
        out += [f"The pager's half-life at {100 * a['budget']:.0f} % (shifted: popularity "
                "reshuffled half-way, counted from an eighth into the second half):", "",
                "| half-life (lookups) | " + " | ".join(cols) + " |",
                "|---" * (len(cols) + 1) + "|"]
        out += [f"| {row['half_life']:g} | " + " | ".join(f"{row[c]:.3f}" for c in cols)
                + " |" for row in r["half_life_sensitivity"]]
    out += [
            "", f"{r['seconds']} s, load {r['machine']['load_start']} -> "
            f"{r['machine']['load_end']}.", ""]
    return "\n".join(out)


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [100 * row["budget"] for row in r["curve"]]
    for key, label, style in (("belady_size", "Belady-size (offline)", "k--"),
                              ("static_expected", "static optimum (online bound)", "k:"),
                              ("pager", "pager", "o-"),
                              ("lfu_no_admission", "LFU-aged, no admission", "^-"),
                              ("heat_before", "heat x cost (before)", "s-"),
                              ("lru", "LRU", "x-")):
        ax.plot(xs, [row[key] for row in r["curve"]], style, label=label)
    if r["lp"]:
        ax.plot([100 * row["budget"] for row in r["lp"]], [row["lp_bound"] for row in r["lp"]],
                "rv", label="offline optimum, LP bound")
    ax.axhline(0.8, color="grey", lw=0.8)
    ax.axvline(100 * r["at_budget"]["budget"], color="grey", lw=0.8)
    ax.set_xlabel("budget, % of all pages' bytes")
    ax.set_ylabel("steady-state hit rate")
    ax.set_title(f"{r['scopes']} scopes, Zipf s={r['zipf_s']}, {r['seeds']} seeds")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
