"""Exact engines (CP-SAT, HiGHS, CBC) on LLM workloads: proofs, agreement, times, greedy gap.

Sections (script mode ``python benchmarks/bench_exact.py [SECTION ...] [options]``):

``n200``
    Seeded ``ro.workloads.llm`` instances (Qwen3 pool, ``price="api"``: 4 paid models x
    batch sizes (1, 2, 4, 8) = 16 options per query), n = 200, budgets at fractions 0.1,
    0.3 and 0.6 of the way from the cheapest to the most useful plan. Per instance: every
    engine's status, whether the proven optima agree (1e-9 relative), and
    ``greedy utility <= exact <= greedy upper bound``. Per engine: proofs, median and max of
    the engine's solve time and, separately, of the model-building time (NumPy model +
    engine model); greedy median and max gap to the optimum. ``--n 1000`` runs the same
    grid at another size (issue 17, item 3: n = 1,000 at 60 s, HiGHS at n = 5,000 at 120 s).
``large``
    n = 1,000 and 5,000 (16 options, fraction 0.3): per engine, proved within the limit?,
    wall time, gap at the limit (to the engine's best valid bound).
``ablation``
    What each tightening buys (HiGHS and CP-SAT on n = 200 instances): all on, and each of
    link cuts, call-count bounds, Lagrangian fixing, partial-call dominance, the task count
    and fill cuts, pruning turned off, and the amortized
    knapsack row turned on; plus the number of interchangeable (identical) query pairs,
    which is what symmetry breaking could exploit.
``timelimit``
    Wall time of a 2 s limit on n = 5,000 (the issue's "limit + 1 s" figure; with the count
    cuts n = 1,000 is no longer safely beyond a 2 s proof).
``auto``
    CP-SAT proof times by n (16 options) to choose ``AUTO_EXACT_MAX_CELLS``.

The machine is shared: every table ends with the load average. Under pytest
(``pytest benchmarks/bench_exact.py``) one pytest-benchmark test times HiGHS on one n = 200
instance.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import robatch_opt as ro
from robatch_opt.workloads.llm import llm

ENGINES = {"cpsat": ("cpsat", {}), "highs": ("milp", {"solver": "highs"}), "cbc": ("milp", {"solver": "cbc"})}
LEVELS = (0.1, 0.3, 0.6)


def instance(n: int, seed: int) -> ro.Instance:
    """The benchmark family: Qwen3 pool, API prices (16 options per query)."""
    return llm("qwen3", n=n, price="api", seed=seed)


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} ({os.cpu_count()} cores)"


def _times(plan: ro.Plan) -> tuple[float, float]:
    """(build seconds, engine solve seconds) of an exact plan."""
    info = plan.info
    return float(info.get("model_s", 0.0)) + float(info.get("build_s", 0.0)), float(info.get("solve_s", 0.0))


def _solve(inst, budget, engine, limit_s, **extra):
    method, opts = ENGINES[engine]
    t0 = time.perf_counter()
    plan = ro.solve(inst, budget, method=method, time_limit_s=limit_s, **opts, **extra)
    return plan, time.perf_counter() - t0


def bench_n200(seeds: int, engines: list[str], limit_s: float, n: int = 200, first_seed: int = 0,
               cases: list[tuple[int, float]] | None = None) -> None:
    """The n = 200 table; ``cases`` (seed, level) pairs replace the seeds x levels grid."""
    ro.solve(instance(20, 0), ro.budget_from_fraction(instance(20, 0), 0.3), method="greedy")   # JIT warm-up
    rows = []
    if cases is None:
        cases = [(seed, level) for seed in range(first_seed, first_seed + seeds) for level in LEVELS]
        print(f"## n = {n}, seeds {first_seed}..{first_seed + seeds - 1} x levels {LEVELS}, limit {limit_s:g} s, "
              f"engines {engines}")
    else:
        print(f"## n = {n}, cases {' '.join(f'{s}@{lv:g}' for s, lv in cases)}, limit {limit_s:g} s, "
              f"engines {engines}")
    print("seed level | greedy U | " + " | ".join(f"{e} status U build_s solve_s" for e in engines) + " | agree | sandwich")
    for seed, level in cases:
        inst = instance(n, seed)
        budget = ro.budget_from_fraction(inst, level)
        g = ro.solve(inst, budget, method="greedy")
        res = {}
        for e in engines:
            plan, wall = _solve(inst, budget, e, limit_s)
            b, s = _times(plan)
            res[e] = (plan, wall, b, s)
        opt = [res[e][0].utility for e in engines if res[e][0].status == ro.Status.OPTIMAL]
        agree = bool(opt) and max(opt) - min(opt) <= 1e-9 * max(opt)
        best = max(opt) if opt else None
        sandwich = best is not None and g.utility <= best * (1 + 1e-12) and best <= g.upper_bound * (1 + 1e-12)
        rows.append(dict(seed=seed, level=level, greedy=g.utility, greedy_ub=g.upper_bound, best=best,
                         agree=agree, sandwich=sandwich, res=res, all_proved=len(opt) == len(engines)))
        cells = " | ".join(f"{res[e][0].status.value} {res[e][0].utility:.6f} {res[e][2]:.2f} {res[e][3]:.2f}"
                           for e in engines)
        print(f"{seed:3d} {level:.1f} | {g.utility:.6f} | {cells} | {agree} | {sandwich}", flush=True)
    print()
    print("| engine | proved | median wall s | max wall s | median solve s | max solve s | median build s | max build s |")
    print("|---|---|---|---|---|---|---|---|")
    for e in engines:
        wall_s = [r["res"][e][1] for r in rows]
        solve_s = [r["res"][e][3] for r in rows]
        build_s = [r["res"][e][2] for r in rows]
        proved = sum(r["res"][e][0].status == ro.Status.OPTIMAL for r in rows)
        print(f"| {e} | {proved}/{len(rows)} | {statistics.median(wall_s):.2f} | {max(wall_s):.2f} | "
              f"{statistics.median(solve_s):.2f} | {max(solve_s):.2f} | "
              f"{statistics.median(build_s):.3f} | {max(build_s):.3f} |")
    gaps = [(r["best"] - r["greedy"]) / r["best"] for r in rows if r["best"]]
    print(f"\nall engines proved and agree: {sum(r['all_proved'] and r['agree'] for r in rows)}/{len(rows)}; "
          f"proven optima agree (where >= 1 engine proved): {sum(r['agree'] for r in rows if r['best'])}/"
          f"{sum(1 for r in rows if r['best'])}; greedy <= exact <= greedy UB: "
          f"{sum(r['sandwich'] for r in rows if r['best'])}/{sum(1 for r in rows if r['best'])}")
    if gaps:
        print(f"greedy gap to the optimum: median {statistics.median(gaps):.3e}, max {max(gaps):.3e} "
              f"(over {len(gaps)} proven optima)")
    print(_load())


def bench_large(ns: list[int], engines: list[str], limit_s: float, level: float = 0.3) -> None:
    print(f"## large: n in {ns}, 16 options, fraction {level}, limit {limit_s:g} s")
    print("| n | engine | status | proved | wall s | build s | utility | bound | gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        inst = instance(n, 0)
        budget = ro.budget_from_fraction(inst, level)
        g = ro.solve(inst, budget, method="greedy")
        print(f"| {n} | greedy | {g.status.value} | - | {g.wall_time_s:.2f} | - | {g.utility:.6f} | "
              f"{g.upper_bound:.6f} | {g.gap:.2e} |", flush=True)
        for e in engines:
            plan, wall = _solve(inst, budget, e, limit_s)
            b, _ = _times(plan)
            print(f"| {n} | {e} | {plan.status.value} | {plan.status == ro.Status.OPTIMAL} | {wall:.2f} | "
                  f"{b:.2f} | {plan.utility:.6f} | {plan.upper_bound:.6f} | {plan.gap:.2e} |", flush=True)
    print(_load())


VARIANTS = {
    "default": {},
    "no link cuts": {"link_cuts": False},
    "no call bounds": {"call_bounds": False},
    "no lp fixing": {"lp_fixing": False},
    "no dominance": {"dominance": False},
    "no count cuts": {"count_cuts": False},
    "no fill cuts": {"fill_cuts": False},
    "no count/fill cuts": {"count_cuts": False, "fill_cuts": False},
    "no pruning": {"prune": False},
    "+ amortized row": {"amortized_cut": True},
    "no greedy hint": {"hint": False, "lp_fixing": False},
}


def bench_ablation(seeds: int, engines: list[str], limit_s: float, n: int = 200, level: float = 0.3,
                   variants: list[str] | None = None) -> None:
    print(f"## ablation: n = {n}, seeds 0..{seeds - 1}, fraction {level}, limit {limit_s:g} s")
    for seed in range(seeds):
        inst = instance(n, seed)
        rows = np.column_stack([inst.query_task, inst.input_tokens, inst.output_tokens, inst.utility])
        _, counts = np.unique(rows, axis=0, return_counts=True)
        pairs = int((counts * (counts - 1) // 2).sum())
        print(f"seed {seed}: identical query pairs (symmetry breaking could use): {pairs}")
    print("| engine | variant | proved | median wall s | max wall s | median nodes/branches |")
    print("|---|---|---|---|---|---|")
    for e in engines:
        for name, kw in VARIANTS.items():
            if variants is not None and name not in variants:
                continue
            if e == "cpsat" and name in ("+ amortized row",):
                kw = {"amortized_cut": False}
                name = "no amortized row"
            walls, proved, nodes = [], 0, []
            for seed in range(seeds):
                inst = instance(n, seed)
                budget = ro.budget_from_fraction(inst, level)
                plan, wall = _solve(inst, budget, e, limit_s, **kw)
                walls.append(wall)
                proved += plan.status == ro.Status.OPTIMAL
                nodes.append(plan.info.get("nodes", plan.info.get("branches", -1)))
            print(f"| {e} | {name} | {proved}/{seeds} | {statistics.median(walls):.2f} | {max(walls):.2f} | "
                  f"{statistics.median(nodes):.0f} |", flush=True)
    print(_load())


def bench_timelimit(engines: list[str], limit_s: float = 2.0, n: int = 5000) -> None:
    inst = instance(n, 7)
    budget = ro.budget_from_fraction(inst, 0.1)
    print(f"## time limit {limit_s:g} s on n = {n} (seed 7, fraction 0.1)")
    print("| engine | status | wall s | over limit s | gap |")
    print("|---|---|---|---|---|")
    for e in engines:
        plan, wall = _solve(inst, budget, e, limit_s)
        print(f"| {e} | {plan.status.value} | {wall:.2f} | {wall - limit_s:+.2f} | {plan.gap:.2e} |", flush=True)
    print(_load())


def bench_auto(ns: list[int], seeds: int, limit_s: float) -> None:
    print(f"## CP-SAT proof time by n (16 options, fractions {LEVELS}, {seeds} seeds, limit {limit_s:g} s)")
    print("| n | cells | proved | median s | max s |")
    print("|---|---|---|---|---|")
    for n in ns:
        walls, proved = [], 0
        for seed in range(seeds):
            inst = instance(n, seed)
            for level in LEVELS:
                plan, wall = _solve(inst, ro.budget_from_fraction(inst, level), "cpsat", limit_s)
                walls.append(wall)
                proved += plan.status == ro.Status.OPTIMAL
        print(f"| {n} | {n * 16} | {proved}/{len(walls)} | {statistics.median(walls):.2f} | {max(walls):.2f} |",
              flush=True)
    print(_load())


def test_highs_n200(benchmark):
    """pytest-benchmark: HiGHS proving one n = 200 instance (objective and gap in extra_info)."""
    inst = instance(200, 0)
    budget = ro.budget_from_fraction(inst, 0.6)
    plan = benchmark.pedantic(lambda: ro.solve(inst, budget, method="milp", solver="highs"), rounds=1,
                              warmup_rounds=0)
    benchmark.extra_info.update(utility=plan.utility, gap=plan.gap, status=plan.status.value)
    assert plan.status == ro.Status.OPTIMAL


def _cases(text: str) -> list[tuple[int, float]]:
    """``"0@0.3,17@0.1"`` -> ``[(0, 0.3), (17, 0.1)]`` (argparse type of ``--cases``)."""
    try:
        out = [(int(seed), float(level)) for seed, level in (c.split("@") for c in text.split(",") if c)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seed@level[,seed@level...], got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("no seed@level pair given")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sections", nargs="*", default=["n200", "large", "ablation", "timelimit", "auto"])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="n200: first seed (split a long run: --first-seed 10 --seeds 10)")
    ap.add_argument("--cases", type=_cases, default=None,
                    help="n200: only these seed@level pairs, e.g. 0@0.3,17@0.3 (re-run misses at a longer limit)")
    ap.add_argument("--n", type=int, default=200,
                    help="n200: queries per instance (issue 17 item 3 runs the same grid at 1000 and 5000)")
    ap.add_argument("--engines", default="highs,cbc,cpsat")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--large-n", default="1000,5000")
    ap.add_argument("--ablation-seeds", type=int, default=5)
    ap.add_argument("--ablation-level", type=float, default=0.3)
    ap.add_argument("--ablation-variants", default=",".join(VARIANTS))
    ap.add_argument("--ablation-engines", default="highs",
                    help="engines of the ablation (CP-SAT and CBC reach the limit at n = 200)")
    ap.add_argument("--auto-n", default="25,50,100")
    ap.add_argument("--auto-seeds", type=int, default=3)
    args = ap.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    print(_load(), flush=True)
    for sec in args.sections:
        if sec == "n200":
            bench_n200(args.seeds, engines, args.time_limit, n=args.n, first_seed=args.first_seed, cases=args.cases)
        elif sec == "large":
            bench_large([int(x) for x in args.large_n.split(",")], engines, args.time_limit)
        elif sec == "ablation":
            bench_ablation(args.ablation_seeds, args.ablation_engines.split(","), args.time_limit,
                           level=args.ablation_level, variants=args.ablation_variants.split(","))
        elif sec == "timelimit":
            bench_timelimit(engines)
        elif sec == "auto":
            bench_auto([int(x) for x in args.auto_n.split(",")], args.auto_seeds, args.time_limit)
        else:
            sys.exit(f"unknown section {sec!r}")
        print(flush=True)


if __name__ == "__main__":
    main()
