"""Frontiers on the Qwen3 and Gemma3 pools: joint vs routing-only vs batching-only.

For each pool, ``ro.workloads.llm(pool, n=N, seed=0)`` (the six tasks, uniform; compute
prices; batch sizes 1, 2, 4, 8) is swept at ``POINTS`` budgets from the joint instance's
cheapest plan to its most useful plan by the greedy (one shared walk per strategy), and:

- the three curves are compared point by point (the joint curve should be at or above both
  single-dimension curves at every budget; any dip is reported, not hidden);
- the **cost saved at matched accuracy**: the least cost at which each strategy reaches the
  mean accuracy of the best single model without batching (and 95 % of it), by solving the
  quality form (``min_mean_utility``) with the greedy; the joint plan's proven cost lower
  bound is kept, so the saving is bracketed;
- a PNG per pool: exact cost (USD) on x, mean expected accuracy on y, one line per
  strategy, each single model without batching as a star.

Run as pytest-benchmark (``--benchmark-only``) or through ``run_all.py``.
"""

from __future__ import annotations

import os

import pytest

import robatch_opt as ro
from robatch_opt.baselines import compare_strategies
from robatch_opt.frontier import plot_frontiers

POOLS = ("qwen3", "gemma3")
N = 2000
POINTS = 12
SEED = 0


def measure_pool(pool: str, figure_path: str | None = None, n: int = N, points: int = POINTS,
                 method: str = "greedy", **solve_kwargs):
    """Comparison of the three strategies on one pool; writes the figure if asked."""
    inst = ro.workloads.llm(pool, n=n, seed=SEED)
    cmp = compare_strategies(inst, points=points, method=method, progress=False, **solve_kwargs)
    if figure_path:
        markers = {f"{p.model} alone": (p.cost_usd, p.mean_utility) for p in cmp.single_models}
        plot_frontiers(cmp.frontiers, figure_path, markers=markers,
                       title=f"{pool}: {n} queries, six tasks ({method}; stars: one model, no batching)")
    return inst, cmp


@pytest.mark.parametrize("pool", POOLS)
def test_frontier_sweep(benchmark, pool):
    inst = ro.workloads.llm(pool, n=N, seed=SEED)
    ro.frontier(inst, points=3)                                             # warm-up (JIT)
    fr = benchmark.pedantic(ro.frontier, args=(inst,), kwargs=dict(points=POINTS), rounds=3, iterations=1)
    benchmark.group = "greedy frontier (one shared walk)"
    benchmark.extra_info.update(points=POINTS, max_gap=float(fr.gap.max()),
                                mean_utility_top=float(fr.mean_utility[-1]))
    assert (fr.cost_usd <= fr.budget_usd * (1 + 1e-12)).all()


if __name__ == "__main__":
    for pool in POOLS:
        _, c = measure_pool(pool, os.path.join(os.path.dirname(__file__), "figures", f"frontier_{pool}.png"))
        print(pool, c.matched, c.dominance)
