"""Pisinger's knapPI instances through the knapsack -> RwB reduction.

For each of the 21 instances in ``/work/shared/data/knapPI/`` (classes 1-3: uncorrelated,
weakly and strongly correlated; n = 100 to 10,000) this builds the RwB instance with
:func:`robatch_opt.reductions.knapsack_to_rwb` and measures

- CP-SAT through the reduction (``ro.solve(method="cpsat")``): wall time and whether the
  decoded packing reaches the published optimum (``optima.txt``);
- CP-SAT on the knapsack directly (the same engine, the same 2 workers, a plain
  ``sum w x <= C`` model): the reference time the reduction should stay within 2x of;
- the greedy: decoded value and its gap to the optimum;
- ``method="milp"`` with HiGHS and with CBC: whether each proves optimality within the
  time limit (default 60 s), and its time.

Script mode prints a table (``python benchmarks/bench_knappi.py [--time-limit S]
[--only NAME ...] [--skip-milp]``); under pytest (``pytest benchmarks/bench_knappi.py``)
the ``test_*`` functions run pytest-benchmark on the n = 100 to 1,000 instances. The
machine is shared: the table ends with the load average (``os.getloadavg``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import robatch_opt as ro
from robatch_opt.reductions import KnapsackReduction, knapsack_to_rwb

DATA = Path(os.environ.get("KNAPPI_DIR", "/work/shared/data/knapPI"))
WORKERS = 2


@dataclass(frozen=True)
class KnapPI:
    """One knapPI instance and its published optimum."""

    name: str
    values: np.ndarray
    weights: np.ndarray
    capacity: int
    optimum: int

    @property
    def n(self) -> int:
        return int(self.values.shape[0])


def read_optima(path: Path = DATA / "optima.txt") -> dict[str, int]:
    out = {}
    for line in path.read_text().split("\n"):
        if line.strip():
            name, value = line.split()
            out[name] = int(value)
    return out


def read_instance(name: str, optima: dict[str, int] | None = None) -> KnapPI:
    """Read ``NAME.txt``: ``n capacity``, then n lines ``value weight`` (then a 0/1 line)."""
    lines = (DATA / f"{name}.txt").read_text().split("\n")
    n, capacity = (int(x) for x in lines[0].split())
    rows = np.array([[int(x) for x in lines[1 + i].split()] for i in range(n)], dtype=np.int64)
    optima = read_optima() if optima is None else optima
    return KnapPI(name, rows[:, 0], rows[:, 1], capacity, optima[name])


def instance_names() -> list[str]:
    """The 21 instances, ordered by class then size."""
    names = list(read_optima())
    return sorted(names, key=lambda s: (int(s.split("_")[1]), int(s.split("_")[2])))


def cpsat_direct(k: KnapPI, time_limit_s: float) -> tuple[int, bool, float]:
    """CP-SAT on the knapsack itself: (value, proven optimal, wall seconds)."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(k.n)]
    # The capacity row and the objective, with the integer data as given.
    model.add(sum(int(w) * xi for w, xi in zip(k.weights, x)) <= int(k.capacity))
    model.maximize(sum(int(v) * xi for v, xi in zip(k.values, x)))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = WORKERS
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.random_seed = 0
    status = solver.solve(model)
    value = int(round(solver.objective_value)) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else -1
    return value, status == cp_model.OPTIMAL, time.perf_counter() - t0


def through_reduction(k: KnapPI, red: KnapsackReduction, method: str, time_limit_s: float, **opts):
    """Solve the reduced instance; return (decoded value, status, wall seconds, plan)."""
    t0 = time.perf_counter()
    plan = ro.solve(red.instance, red.budget_usd, method=method, time_limit_s=time_limit_s, **opts)
    wall = time.perf_counter() - t0
    take = red.decode(plan)
    assert red.weight(take) <= k.capacity, f"{k.name}: decoded packing over capacity"
    return int(round(red.value(take))), plan.status, wall, plan


def run(names: list[str], time_limit_s: float, milp: bool) -> list[dict]:
    optima = read_optima()
    rows = []
    # Warm-up: Numba compilation and OR-Tools' first-call start-up are not the instances' time.
    warm = read_instance(names[0], optima)
    red = knapsack_to_rwb(warm.values, warm.weights, warm.capacity)
    ro.solve(red.instance, red.budget_usd, method="greedy")
    ro.solve(red.instance, red.budget_usd, method="cpsat", time_limit_s=time_limit_s, workers=WORKERS)
    cpsat_direct(warm, time_limit_s)
    for name in names:
        k = read_instance(name, optima)
        t0 = time.perf_counter()
        red = knapsack_to_rwb(k.values, k.weights, k.capacity)
        build_s = time.perf_counter() - t0
        row = {"name": name, "n": k.n, "optimum": k.optimum, "build_s": build_s}
        v, st, wall, _ = through_reduction(k, red, "cpsat", time_limit_s, workers=WORKERS)
        row.update(cpsat_value=v, cpsat_status=st.value, cpsat_s=wall, cpsat_hits=v == k.optimum)
        dv, dproven, dwall = cpsat_direct(k, time_limit_s)
        row.update(direct_value=dv, direct_proven=dproven, direct_s=dwall)
        v, st, wall, plan = through_reduction(k, red, "greedy", time_limit_s)
        row.update(greedy_value=v, greedy_s=wall, greedy_gap=(k.optimum - v) / k.optimum,
                   greedy_lp_bound=plan.upper_bound * red.value_scale)
        for engine in (("highs", "cbc") if milp else ()):
            v, st, wall, _ = through_reduction(k, red, "milp", time_limit_s, solver=engine)
            row.update({f"{engine}_value": v, f"{engine}_proved": st == ro.Status.OPTIMAL, f"{engine}_s": wall})
        rows.append(row)
        print(_line(row, milp), flush=True)
    return rows


_HEAD = (f"{'instance':<24s} {'n':>6s} {'optimum':>8s} | {'CP-SAT(RwB)':>11s} {'hit':>3s} {'direct':>7s} "
         f"{'ratio':>5s} | {'greedy gap':>10s} {'s':>6s}")


def _line(r: dict, milp: bool) -> str:
    s = (f"{r['name']:<24s} {r['n']:>6d} {r['optimum']:>8d} | {r['cpsat_s']:>10.2f}s {'yes' if r['cpsat_hits'] else 'NO':>3s} "
         f"{r['direct_s']:>6.2f}s {r['cpsat_s'] / r['direct_s']:>5.2f} | {100 * r['greedy_gap']:>9.4f}% "
         f"{r['greedy_s']:>6.3f}")
    if milp:
        for e in ("highs", "cbc"):
            s += f" | {e} {'proved' if r[e + '_proved'] else 'open':<6s} {r[e + '_s']:>6.2f}s"
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per engine and instance")
    ap.add_argument("--only", nargs="*", help="instance names (default: all 21)")
    ap.add_argument("--skip-milp", action="store_true", help="do not run HiGHS and CBC")
    args = ap.parse_args(argv)
    names = args.only or instance_names()
    print(f"knapPI through the knapsack -> RwB reduction; CP-SAT with {WORKERS} workers; "
          f"time limit {args.time_limit:g} s")
    print(_HEAD + ("" if args.skip_milp else " | HiGHS (milp)          | CBC (milp)"))
    t0 = time.perf_counter()
    rows = run(names, args.time_limit, not args.skip_milp)
    hits = sum(r["cpsat_hits"] for r in rows)
    ratio = [r["cpsat_s"] / r["direct_s"] for r in rows]
    print(f"\nCP-SAT through the reduction reaches the published optimum on {hits}/{len(rows)}; "
          f"time ratio to CP-SAT on the knapsack: median {np.median(ratio):.2f}, max {max(ratio):.2f}")
    gaps = [r["greedy_gap"] for r in rows]
    print(f"greedy gap to the optimum: mean {100 * np.mean(gaps):.4f}%, max {100 * max(gaps):.4f}%")
    if not args.skip_milp:
        for e in ("highs", "cbc"):
            proved = [r["name"] for r in rows if r[e + "_proved"]]
            print(f"{e} proves {len(proved)}/{len(rows)} within {args.time_limit:g} s; open: "
                  f"{[r['name'] for r in rows if not r[e + '_proved']]}")
    print(f"total {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()}")
    return 0 if hits == len(rows) else 1


# --------------------------------------------------------------------- pytest-benchmark
def _small(name: str = "knapPI_1_100_1000_1") -> tuple[KnapPI, KnapsackReduction]:
    k = read_instance(name)
    return k, knapsack_to_rwb(k.values, k.weights, k.capacity)


def test_cpsat_through_reduction(benchmark):
    k, red = _small()
    result = benchmark(lambda: through_reduction(k, red, "cpsat", 60.0, workers=WORKERS))
    benchmark.extra_info.update(instance=k.name, value=result[0], optimum=k.optimum)
    assert result[0] == k.optimum


def test_cpsat_direct(benchmark):
    k, _ = _small()
    value, proven, _ = benchmark(lambda: cpsat_direct(k, 60.0))
    benchmark.extra_info.update(instance=k.name, value=value, optimum=k.optimum)
    assert value == k.optimum and proven


def test_greedy_through_reduction(benchmark):
    k, red = _small("knapPI_3_1000_1000_1")
    ro.solve(red.instance, red.budget_usd, method="greedy")          # warm up Numba
    result = benchmark(lambda: through_reduction(k, red, "greedy", 60.0))
    benchmark.extra_info.update(instance=k.name, value=result[0], optimum=k.optimum,
                                gap=(k.optimum - result[0]) / k.optimum)


if __name__ == "__main__":
    sys.exit(main())
