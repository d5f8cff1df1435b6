"""Compile (or load from the cache) the kernels a solve uses, once, and say how long it took.

The first solve after an install compiles the Numba kernels it runs (about 15 s for the
greedy's budget form on two shared cores); afterwards they load from the per-user
cache in well under a second (:mod:`robatch_opt.kernels._cache`). :func:`warm_up` does
that work up front on a tiny instance, so that a caller can tell the user it is happening
and report it apart from the solve time (``robatch-opt solve`` does both).

Only what a call needs is compiled: the warm-up covers the greedy without capacities
(both forms); the parallel variants of the two heaviest kernels, the frontier's walk and
the capacitated walk are compiled when asked for here, or on their first use (a second or
two each).
"""

from __future__ import annotations

import time

from ._cache import kernels_cached, mark_cached

__all__ = ["warm_up", "kernels_cached"]

_done: set[str] = set()


def warm_up(*, quality: bool = True, parallel: bool = False, frontier: bool = False) -> float:
    """Run the greedy on a tiny instance; return the seconds it took.

    Parameters
    ----------
    quality : bool
        Also solve the quality form (its exact fallback walk has kernels of its own);
        the budget form is always run.
    parallel : bool
        Also compile the parallel variants (hulls, best moves, plan totals, the restriction
        screen), which a
        solve runs when it uses more than one thread (instances of at least
        ``robatch_opt.solvers.greedy.PARALLEL_MIN_CELLS`` query x option cells).
    frontier : bool
        Also run a greedy frontier (its shared budget walk has a kernel of its own).

    Notes
    -----
    Work already done in this process is not repeated (a second call returns 0.0). The
    tiny instance has several tasks, models and batch sizes, so every kernel of the
    uncapacitated greedy (hulls, the ratio histogram, the coupled repair and local moves)
    runs once.
    """
    parts = {"core"} | {p for p, on in (("quality", quality), ("parallel", parallel), ("frontier", frontier)) if on}
    todo = parts - _done
    if not todo:
        return 0.0
    import numpy as np

    from ..instance import Instance, Model, Task
    from ..solve import budget_from_fraction, solve

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    n = 24
    models = [Model("small", 0.1, 0.4, 8192, (1, 2, 4)), Model("large", 1.0, 4.0, 8192, (1, 4))]
    inst = Instance(models=models, tasks=[Task("a", 400), Task("b", 900)],
                    query_task=np.arange(n) % 2, input_tokens=rng.integers(20, 200, n),
                    output_tokens=rng.integers(5, 50, (n, 2)),
                    utility=np.sort(rng.uniform(0.2, 0.9, (n, 5)), axis=1))
    if "core" in todo:
        for fraction in (0.0, 0.3, 1.0):
            solve(inst, budget=budget_from_fraction(inst, fraction), method="greedy")
        _compile_shed_walk()
    if "quality" in todo:
        solve(inst, min_mean_utility=float(inst.utility.max(axis=1).mean()) * 0.9, method="greedy")
    if "parallel" in todo:
        from . import greedy_kernels as gk

        # Same argument types as the serial variants the tiny solves just compiled.
        for parallel_kernel, serial_kernel in ((gk._build_hulls_parallel, gk._build_hulls_serial),
                                               (gk._best_moves_parallel, gk._best_moves_serial),
                                               (gk._plan_totals_parallel, gk._plan_totals),
                                               (gk._ratio_histogram_parallel, gk._ratio_histogram_serial),
                                               (gk._split_at_bin_parallel, gk._split_at_bin_serial),
                                               ):
            for sig in serial_kernel.signatures[:1]:
                parallel_kernel.compile(sig)
        # The restriction screen's kernel runs on large instances only (NumPy below that).
        _compile_restriction_best()
    if "frontier" in todo:
        from ..frontier import frontier

        frontier(inst, points=3)                 # the shared budget walk's own kernels
    mark_cached(sorted(todo))
    _done.update(todo)
    return time.perf_counter() - t0


def _compile_shed_walk() -> None:
    """Compile the walk's exact-cost shedding (run only when partial calls push the walk's
    plan over budget, which the tiny instance need not do), with the argument types the
    greedy passes."""
    import numpy as np

    from . import greedy_kernels as gk

    def ro(a):
        a.flags.writeable = False
        return a

    i64 = np.zeros(1, np.int64)
    f2 = ro(np.zeros((1, 1)))
    gk._shed_walk(i64.copy(), 0, i64.copy(), i64.copy(), np.zeros((1, 1), np.int16), i64.copy(), i64.copy(), f2,
                  f2, ro(i64.copy()), ro(i64.copy()), ro(np.ones(1, np.int64)), ro(np.zeros(1)), i64.copy(),
                  i64.copy(), np.zeros(2), 0.0)


def _compile_restriction_best() -> None:
    """Compile the restriction screen's parallel kernel with the argument types it is given."""
    import numpy as np

    from . import greedy_kernels as gk

    def ro(a):
        a.flags.writeable = False
        return a

    f2 = ro(np.zeros((1, 1)))
    gk._restriction_best_parallel(f2, f2, ro(np.ones((1, 1), np.bool_)), 0.0, np.zeros(2, np.int64),
                                  np.zeros(1, np.int64), 1, np.empty((1, 1)), 1)
