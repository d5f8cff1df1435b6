"""Compile (or load from the cache) every kernel a solve uses, once, and say how long it took.

The first solve after an install compiles the Numba kernels (about 20-40 s on two cores);
afterwards they load from the per-user cache in well under a second
(:mod:`robatch_opt.kernels._cache`). :func:`warm_up` does that work up front on a tiny
instance, so that a caller can tell the user it is happening and report it apart from the
solve time (``robatch-opt solve`` does both).
"""

from __future__ import annotations

import time

from ._cache import kernels_cached, mark_cached

__all__ = ["warm_up", "kernels_cached"]

_done = False


def warm_up() -> float:
    """Run the greedy (both forms) and a greedy frontier on a tiny instance; return the seconds.

    Only the first call in a process does any work (later calls return 0.0). The tiny
    instance has several tasks, models and batch sizes, so every kernel of the greedy
    (hulls, the ratio histogram, the coupled repair and local moves) runs once.
    """
    global _done
    if _done:
        return 0.0
    import numpy as np

    from ..instance import Instance, Model, Task
    from ..frontier import frontier
    from ..solve import budget_from_fraction, solve

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    n = 24
    models = [Model("small", 0.1, 0.4, 8192, (1, 2, 4)), Model("large", 1.0, 4.0, 8192, (1, 4))]
    inst = Instance(models=models, tasks=[Task("a", 400), Task("b", 900)],
                    query_task=np.arange(n) % 2, input_tokens=rng.integers(20, 200, n),
                    output_tokens=rng.integers(5, 50, (n, 2)),
                    utility=np.sort(rng.uniform(0.2, 0.9, (n, 5)), axis=1))
    for fraction in (0.0, 0.3, 1.0):
        solve(inst, budget=budget_from_fraction(inst, fraction), method="greedy")
    solve(inst, min_mean_utility=float(inst.utility.max(axis=1).mean()) * 0.9, method="greedy")
    solve(inst, budget=budget_from_fraction(inst, 0.5), method="greedy", max_queries_per_model=[n, n // 3])
    frontier(inst, points=3)                 # the shared budget walk's own kernels
    mark_cached()
    _done = True
    return time.perf_counter() - t0
