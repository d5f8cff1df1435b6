"""Greedy scaling: n = 10^3 .. 10^6 queries at 16 options.

Each size runs in a fresh subprocess (so peak memory is that size's alone): the instance
(``synthetic(n, "llm_like")``, 4 models x 4 batch sizes = 16 options) is generated and
compiled, the greedy warmed up on a small instance (JIT), then timed at budget fraction 0.3:

- **time**: median of ``REPEATS`` solves after the warm-up (``ro.solve`` end to end:
  validation, hulls, LP threshold, coupling repair, local moves, grading);
- **NumPy pass**: one ``cost.sum() + utility.sum()`` over the same (n, 16) arrays, median of
  two before each solve (interleaved with the solves, so that a change in the machine's
  load hits both); the ratio says how many array passes a solve costs;
- **peak memory**: the process's peak resident memory during the solves minus its resident
  memory just before them (Linux: the peak is reset through ``/proc/self/clear_refs`` after
  the instance is built, so instance generation does not mask the solve; elsewhere
  ``ru_maxrss`` growth, a lower bound), and the size of one (n, 16) float64 array for scale.

Run as pytest-benchmark (``--benchmark-only``) or through ``run_all.py``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

import pytest

SIZES = (1_000, 10_000, 100_000, 1_000_000)
FRACTION = 0.3
REPEATS = 5


def _child(n: int) -> dict:
    """Measure one size in this process (called in a subprocess)."""
    import numpy as np

    import robatch_opt as ro

    from robatch_opt.kernels.warmup import warm_up

    warm = ro.workloads.synthetic(2000, "llm_like", seed=1)
    ro.solve(warm, budget=ro.budget_from_fraction(warm, FRACTION), method="greedy")
    warm_up(parallel=True)      # the large sizes run the parallel kernel variants (compiled on first use)
    inst = ro.workloads.synthetic(n, "llm_like", seed=0)
    table = ro.compile_options(inst)
    budget = ro.budget_from_fraction(inst, FRACTION)
    cost, util = table.cost, table.utility

    def numpy_pass() -> float:
        t = time.perf_counter()
        float(cost.sum() + util.sum())
        return time.perf_counter() - t

    import gc

    gc.collect()
    reset = _reset_peak_rss()
    rss_before = _status_kb("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, passes, plan = [], [], None
    for _ in range(REPEATS):
        # Interleaved, so that load from other users of the machine hits both alike.
        passes += [numpy_pass(), numpy_pass()]
        t = time.perf_counter()
        plan = ro.solve(inst, budget=budget, method="greedy")
        times.append(time.perf_counter() - t)
    rss_after = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "options": inst.n_options, "time_s": statistics.median(times), "times_s": times,
            "numpy_pass_s": statistics.median(passes), "peak_reset": reset,
            "peak_rss_growth_mb": (rss_after - rss_before) / 1024.0, "peak_rss_mb": rss_after / 1024.0,
            "array_mb": cost.nbytes / 2**20, "gap": plan.gap, "utility": plan.utility,
            "cost_usd": plan.cost_usd, "budget_usd": budget}


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_kb("VmHWM")
        return True
    except (OSError, KeyError):
        return False


def measure_size(n: int) -> dict:
    """Run :func:`_child` in a fresh interpreter and return its measurements."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), str(n)], capture_output=True, text=True,
                         check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["ratio_to_numpy_pass"] = row["time_s"] / row["numpy_pass_s"]
    return row


def measure(sizes=SIZES, log=None):
    rows = []
    for n in sizes:
        row = measure_size(n)
        rows.append(row)
        if log:
            log(f"scaling n={n:>9,d}: {row['time_s']:.3f} s, {row['ratio_to_numpy_pass']:.0f}x a NumPy pass, "
                f"peak RSS +{row['peak_rss_growth_mb']:.0f} MB")
    return rows


# ------------------------------------------------------------------ pytest-benchmark
@pytest.mark.parametrize("n", SIZES[:3])
def test_greedy_scaling(benchmark, n):
    import robatch_opt as ro

    inst = ro.workloads.synthetic(n, "llm_like", seed=0)
    budget = ro.budget_from_fraction(inst, FRACTION)
    ro.solve(inst, budget=budget, method="greedy")                       # warm-up (JIT)
    plan = benchmark.pedantic(ro.solve, args=(inst,), kwargs=dict(budget=budget, method="greedy"),
                              rounds=3, iterations=1)
    benchmark.group = "greedy scaling (16 options)"
    benchmark.extra_info.update(objective=plan.utility, certificate_gap=plan.gap, n=n)
    assert plan.cost_usd <= budget * (1 + 1e-12)


if __name__ == "__main__":
    print(json.dumps(_child(int(sys.argv[1]))))
