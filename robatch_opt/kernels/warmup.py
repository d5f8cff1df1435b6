"""Compile (or load from the cache) the kernels a solve uses, once, and say how long it took.

The first solve after an install compiles the Numba kernels it runs (about 18 s of compile
work for the greedy's budget form on this project's two-core machines); afterwards they load
from the per-user cache in well under a second (:mod:`robatch_opt.kernels._cache`).
:func:`warm_up` does that work up front, so that a caller can tell the user it is happening
and report it apart from the solve time (``robatch-opt solve`` does both).

Numba compiles in Python and holds the interpreter, so one process compiles one kernel at a
time. :func:`warm_up` therefore shares the kernels out between this process and child
processes, one per further core (:data:`COMPILE_JOBS` lists each kernel with the argument
types a solve passes it and its rough compile time, by which the shares are balanced);
the children write what they compile to the same cache, from which this process then loads
it. A tiny solve runs last and compiles anything the list missed, so the list only makes
the warm-up faster, never changes what a solve runs.

Only what a call needs is compiled: the warm-up covers the greedy without capacities
(both forms); the parallel variants of the heaviest kernels and the frontier's walk are
compiled when asked for here, or on their first use (a second or two each).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from ._cache import kernels_cached, mark_cached

__all__ = ["warm_up", "kernels_cached", "compile_kernels", "COMPILE_JOBS"]

_done: set[str] = set()

#: At most this many processes compile at once (this one included): past four, the longest
#: kernel (the best-move pass, about a third of the core's work) bounds the wall time anyway.
MAX_COMPILE_PROCESSES = 4


def _array_types():
    """The array types the greedy passes its kernels (C-contiguous; ``r``: read-only, as the
    option table's arrays are)."""
    from numba import types as nt

    def arr(dtype, ndim=1, readonly=False):
        return nt.Array(dtype, ndim, "C", readonly=readonly)

    return dict(i=nt.int64, f=nt.float64, b=nt.boolean,
                i1=arr(nt.int64), i1r=arr(nt.int64, readonly=True),
                f1=arr(nt.float64), f1r=arr(nt.float64, readonly=True),
                f2=arr(nt.float64, 2), f2r=arr(nt.float64, 2, True), b2r=arr(nt.boolean, 2, True),
                h2=arr(nt.int16, 2),            # hull options
                k2=arr(nt.int32, 2))            # hull bins


#: Per part of :func:`warm_up`: ``(kernel, argument types, seconds)``. The argument types are
#: written as keys of :func:`_array_types`, in the order of the kernel's parameters; the
#: seconds are what the kernel took to compile on two shared cores (measured 2026-12-04),
#: used only to balance the shares. ``tests/test_warmup.py`` checks that a tiny solve of
#: each part compiles nothing outside this list.
#: The argument types of the best-move kernels (one per mode).
_MOVES = ("f", "i1", "f2r", "f2r", "f2r", "i1r", "i1r", "i1r", "f1r", "i1", "i1", "i1r", "i1", "f1", "f1", "f1", "i")

COMPILE_JOBS: dict[str, tuple[tuple[str, tuple[str, ...], float], ...]] = {
    "core": (
        ("_build_hulls_serial", ("f2r", "f2r", "i1r", "h2", "i1", "k2", "i"), 4.5),
        ("_ratio_histogram_serial", ("f2r", "f2r", "h2", "i1", "k2", "i", "i", "i"), 0.9),
        ("_find_crossing", ("f1", "i", "f", "b"), 0.2),
        ("_split_at_bin_serial", ("f2r", "f2r", "h2", "i1", "k2", "i", "i1", "i"), 1.3),
        ("_walk_bin", ("i1", "i1", "f1", "f1", "f1", "f", "b", "i1"), 1.5),
        ("_options_from_positions", ("h2", "i1", "i1"), 0.3),
        ("_plan_totals", ("i1", "f2r", "f2r", "f2r", "i1r", "i1r", "f1r", "i1r", "i", "i"), 2.0),
        ("_upgrade_moves_serial", _MOVES, 1.5),
        ("_repair_moves_serial", _MOVES, 1.5),
        ("_count_proposals", ("i1", "f1"), 0.2),
        ("_apply_moves_below", ("i", "f", "i1", "f1", "f1", "f1", "i1", "i1r", "i1r", "i1r", "f1r", "i1", "i1",
                                "i1r", "f1", "f", "f"), 1.4),
        ("_shed_walk", ("i1", "i", "i1", "i1", "h2", "i1", "i1", "f2r", "f2r", "i1r", "i1r", "i1r", "f1r", "i1",
                        "i1", "f1", "f"), 0.8),
    ),
    "quality": (
        ("_sorted_increments", ("f2r", "f2r", "h2", "i1", "k2", "i", "i"), 2.5),
        ("_capacitated_walk", ("i1", "i1", "f1", "f1", "i1", "i1", "i1", "i1r", "f", "b", "i1"), 0.5),
        ("_trim_moves_serial", _MOVES, 1.0),
    ),
    "quality+parallel": (
        ("_trim_moves_parallel", _MOVES, 1.9),
    ),
    "parallel": (
        ("_build_hulls_parallel", ("f2r", "f2r", "i1r", "h2", "i1", "k2", "i"), 7.2),
        ("_ratio_histogram_parallel", ("f2r", "f2r", "h2", "i1", "k2", "i", "i", "i"), 2.4),
        ("_split_at_bin_parallel", ("f2r", "f2r", "h2", "i1", "k2", "i", "i1", "i"), 2.4),
        ("_plan_totals_parallel", ("i1", "f2r", "f2r", "f2r", "i1r", "i1r", "f1r", "i1r", "i", "i"), 4.0),
        ("_upgrade_moves_parallel", _MOVES, 2.2),
        ("_repair_moves_parallel", _MOVES, 2.2),
        ("_restriction_best_parallel", ("f2r", "f2r", "b2r", "f", "i1", "i1", "i", "f2", "i"), 2.7),
    ),
    "frontier": (
        ("_collect_all_increments", ("f2r", "f2r", "h2", "i1"), 0.4),
    ),
}


def _shares(parts, n: int) -> list[list[str]]:
    """The jobs of ``parts`` (as ``"part:index"``) dealt to ``n`` processes, longest first, each
    to the least loaded (the first share is this process's)."""
    jobs = sorted(((sec, f"{part}:{k}") for part in parts for k, (_, _, sec) in enumerate(COMPILE_JOBS[part])),
                  reverse=True)
    shares: list[list[str]] = [[] for _ in range(max(n, 1))]
    load = [0.0] * len(shares)
    for sec, job in jobs:
        w = load.index(min(load))
        shares[w].append(job)
        load[w] += sec
    return [s for s in shares if s]


def _compile(jobs) -> None:
    """Compile ``"part:index"`` jobs of :data:`COMPILE_JOBS` in this process (from the cache
    when another process already compiled them)."""
    from . import greedy_kernels as gk

    ty = _array_types()
    for job in jobs:
        part, k = job.split(":")
        name, args, _ = COMPILE_JOBS[part][int(k)]
        getattr(gk, name).compile(tuple(ty[a] for a in args))


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                 # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _processes(x) -> int:
    """``processes`` checked: an integer >= 1 (InstanceError naming it otherwise)."""
    from .._validate import instance_errors, integer

    n = integer(x, "processes", strict=True)
    if n < 1:
        raise instance_errors("processes", (), f"must be an integer >= 1, got {n}")
    return n


def _child_env() -> dict[str, str]:
    """The environment of a compiling child: this one, plus this package's folder on
    ``PYTHONPATH`` when the child would not find it otherwise (a caller that put it on
    ``sys.path`` at run time), so that the child compiles this same source into the same
    cache. Not always: an installed package's folder is site-packages, which ahead of the
    standard library could shadow it."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    if root not in {str(Path(p or os.getcwd()).resolve()) for p in sys.path}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def compile_kernels(parts=("core",), *, processes: int | None = None) -> None:
    """Compile the kernels :data:`COMPILE_JOBS` lists for ``parts``, shared out between this
    process and ``processes - 1`` children (default: one process per available core, at most
    :data:`MAX_COMPILE_PROCESSES`).

    The children write to the same per-user cache; this process waits for them, so that
    afterwards every listed kernel loads from the cache. A child that fails costs nothing
    but time: whatever it did not compile is compiled on first use. The children are
    killed if this process is interrupted.
    """
    from .._interrupt import run_child

    n = _available_cores() if processes is None else _processes(processes)
    shares = _shares(parts, min(max(n, 1), MAX_COMPILE_PROCESSES)) or [[]]
    env = _child_env()
    with contextlib.ExitStack() as children:
        procs = [children.enter_context(run_child([sys.executable, "-m", "robatch_opt.kernels.warmup", *share],
                                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
                 for share in shares[1:]]
        _compile(shares[0])
        for proc in procs:
            proc.wait()


def warm_up(*, quality: bool = True, parallel: bool = False, frontier: bool = False,
            processes: int | None = None) -> float:
    """Compile the kernels a solve uses (or load them from the cache) and run the greedy on a
    tiny instance; return the seconds it took.

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
    processes : int, optional
        How many processes compile (see :func:`compile_kernels`; default one per available
        core, at most :data:`MAX_COMPILE_PROCESSES`). When the kernels are already cached
        they load in this process alone.

    Notes
    -----
    Work already done in this process is not repeated (a second call returns 0.0). The
    tiny instance has several tasks, models and batch sizes, so every kernel of the
    uncapacitated greedy (hulls, the ratio histogram, the coupled repair and local moves)
    runs once.
    """
    if processes is not None:
        processes = _processes(processes)
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
    # The listed kernels first, shared between processes; the tiny solves below then load
    # them from the cache and compile only what the list missed.
    listed = [p for p in ("core", "quality", "parallel", "frontier") if p in todo]
    if "quality" in parts and "parallel" in parts and {"quality", "parallel"} & todo:
        listed.append("quality+parallel")
    compile_kernels(listed, processes=1 if kernels_cached(sorted(todo)) else processes)
    if "core" in todo:
        for fraction in (0.0, 0.3, 1.0):
            solve(inst, budget=budget_from_fraction(inst, fraction), method="greedy")
    if "quality" in todo:
        solve(inst, min_mean_utility=float(inst.utility.max(axis=1).mean()) * 0.9, method="greedy")
    if "frontier" in todo:
        from ..frontier import frontier

        frontier(inst, points=3)                 # the shared budget walk's own kernels
    mark_cached(sorted(todo))
    _done.update(todo)
    return time.perf_counter() - t0


if __name__ == "__main__":            # a child of compile_kernels: python -m ... part:index ...
    _compile(sys.argv[1:])
