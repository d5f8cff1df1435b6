"""Hunt the greedy's worst relative gap to the optimum with ``hypothesis.target``.

Draws small instances (brute force is the ground truth), steers the search towards large
gaps, and prints the worst few as Python source ready to pin in ``tests/regressions.py``.

Usage::

    python benchmarks/hunt_greedy_gap.py [--examples 4000] [--seed 0] [--top 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings, target

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import robatch_opt as ro  # noqa: E402
from reference import brute_force  # noqa: E402
from strategies import instance_and_budgets  # noqa: E402


def instance_source(name: str, inst: ro.Instance, budget: float) -> str:
    """Python source of a factory returning ``(instance, budget)`` (inputs only, no results)."""
    models = ", ".join(f"ro.Model({m.name!r}, {m.price_in!r}, {m.price_out!r}, {m.context_window!r}, "
                       f"{m.batch_sizes!r})" for m in inst.models)
    tasks = ", ".join(f"ro.Task({t.name!r}, {t.system_tokens!r})" for t in inst.tasks)
    util = [[float(x) for x in row] for row in np.asarray(inst.utility)]
    return (f"def {name}():\n"
            f"    inst = ro.Instance(\n"
            f"        models=[{models}],\n"
            f"        tasks=[{tasks}],\n"
            f"        query_task={np.asarray(inst.query_task).tolist()!r},\n"
            f"        input_tokens={np.asarray(inst.input_tokens).tolist()!r},\n"
            f"        output_tokens={np.asarray(inst.output_tokens).tolist()!r},\n"
            f"        utility={util!r})\n"
            f"    return inst, {budget!r}\n")


def hunt(examples: int, rng_seed: int, top: int, max_queries: int = 6):
    found: list[tuple[float, ro.Instance, float]] = []

    @seed(rng_seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate, Phase.target], suppress_health_check=list(HealthCheck))
    @given(case=instance_and_budgets(max_queries=max_queries, max_models=3, max_tasks=2, max_options=6))
    def run(case):
        inst, budget, _ = case
        res = brute_force(inst, budget=budget)
        if res is None or res[0] <= 0:
            return
        optimum = res[0]
        greedy = ro.solve(inst, budget=budget, method="greedy")
        gap = (optimum - greedy.utility) / optimum
        target(gap, label="greedy relative gap")
        found.append((gap, inst, budget))

    t0 = time.perf_counter()
    run()
    found.sort(key=lambda x: -x[0])
    return found[:top], len(found), time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=3)
    args = p.parse_args(argv)
    worst, count, wall = hunt(args.examples, args.seed, args.top)
    print(f"# {count} instances graded in {wall:.1f} s; worst greedy gaps: "
          f"{', '.join(f'{100 * g:.2f}%' for g, _, _ in worst)}")
    for rank, (gap, inst, budget) in enumerate(worst, 1):
        print(f"\n# gap {100 * gap:.4f}% (seed {args.seed}, rank {rank})")
        print(instance_source(f"greedy_worst_seed{args.seed}_rank{rank}", inst, budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
