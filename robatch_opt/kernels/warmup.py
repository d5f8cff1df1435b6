"""Compile (or load from the cache) the kernels a solve uses, once, and say how long it took.

The first solve after an install compiles the Numba kernels it runs (about 17 s of compile
work for the greedy's budget form on this project's two-core machines); afterwards they load
from the per-user cache in well under a second (:mod:`robatch_opt.kernels._cache`).
:func:`warm_up` does that work up front, so that a caller can tell the user it is happening
and report it apart from the solve time (``robatch-opt solve`` does both).

Numba compiles in Python and holds the interpreter, so one process compiles one kernel at a
time. :func:`warm_up` therefore shares the kernels out between this process and child
processes, one per further core (:data:`COMPILE_JOBS` lists each kernel with the argument
types a solve passes it and its rough compile time, by which the shares are balanced);
the children write what they compile to the same cache, from which this process then loads
it (and compiles whatever a child failed to leave there). A tiny solve runs last and compiles
anything the list missed, so the list only makes the warm-up faster, never changes what a
solve runs. Kernels that call a shared helper pass it one set of argument types, so that two
processes compiling it at once write the same cache entry.

Only what a call needs is compiled: the warm-up covers the greedy without capacities
(both forms); the parallel variants of the heaviest kernels and the frontier's walk are
compiled when asked for here, or on their first use (a second or two each).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ._cache import kernels_cached, mark_cached

__all__ = ["warm_up", "kernels_cached", "compile_kernels", "parts_for", "COMPILE_JOBS"]

_done: set[str] = set()

#: At most this many processes compile at once (this one included): past four, the longest
#: kernel (the hull pass, about a quarter of the core's work) bounds the wall time anyway.
MAX_COMPILE_PROCESSES = 4

#: Seconds this process waits for a compiling child before it kills it and compiles its
#: share itself (a child takes 5-10 s on two shared cores).
CHILD_TIMEOUT_S = 300.0

# A child's start: its own folder (this package's parent) first on the path, never the
# working directory (which could hold another robatch_opt), then its share of the jobs.
_CHILD = ("import sys; root = sys.argv[1]; sys.path[:] = [p for p in sys.path if p != '']; "
          "root in sys.path or sys.path.insert(0, root); "
          "from robatch_opt.kernels.warmup import _child_main; _child_main(root, sys.argv[2:])")


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


#: The argument types of the best-move kernels (one per mode).
_MOVES = ("f", "i1", "f2r", "f2r", "f2r", "i1r", "i1r", "i1r", "f1r", "i1", "i1", "i1r", "i1", "f1", "f1", "f1", "i")


#: Per part of :func:`warm_up`: ``(kernel, argument types, seconds)``. The argument types are
#: written as keys of :func:`_array_types`, in the order of the kernel's parameters; the
#: seconds are what the kernel took to compile on two shared cores (measured 2026-12-04),
#: used only to balance the shares. ``tests/test_warmup.py`` checks that a tiny solve of
#: each part compiles nothing outside this list.
COMPILE_JOBS: dict[str, tuple[tuple[str, tuple[str, ...], float], ...]] = {
    "core": (
        ("_build_hulls_serial", ("f2r", "f2r", "i1r", "h2", "i1", "k2", "i"), 4.5),
        ("_ratio_histogram_serial", ("f2r", "f2r", "h2", "i1", "k2", "i", "i", "i"), 0.9),
        ("_find_crossing", ("f1", "i", "f", "b"), 0.2),
        ("_split_at_bin_serial", ("f2r", "f2r", "h2", "i1", "k2", "i", "i1", "i"), 1.3),
        ("_walk_bin", ("i1", "i1", "f1", "f1", "f1", "f", "b", "i1"), 1.5),
        ("_options_from_positions", ("h2", "i1", "i1"), 0.3),
        ("_plan_totals", ("i1", "f1r", "f2r", "f2r", "i1r", "i1r", "f1r", "i1r", "i", "i"), 2.0),
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
        ("_plan_totals_parallel", ("i1", "f1r", "f2r", "f2r", "i1r", "i1r", "f1r", "i1r", "i", "i"), 4.0),
        ("_upgrade_moves_parallel", _MOVES, 2.2),
        ("_repair_moves_parallel", _MOVES, 2.2),
        ("_restriction_best_parallel", ("f2r", "f2r", "b2r", "f", "i1", "i1", "i", "f2", "i"), 2.7),
    ),
    "large": (                       # large instances on one thread: the serial restriction screen
        ("_restriction_best_serial", ("f2r", "f2r", "b2r", "f", "i1", "i1", "i", "f2", "i"), 1.3),
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
        kernel = getattr(gk, name)
        if hasattr(kernel, "compile"):     # not with NUMBA_DISABLE_JIT=1 (plain functions)
            kernel.compile(tuple(ty[a] for a in args))


def _child_main(root: str, jobs) -> None:
    """A compiling child (see ``_CHILD``): its share of the jobs, if it imported the parent's
    package; it ends when the parent does (its stdin, which the parent holds, closes)."""
    import robatch_opt

    if not Path(robatch_opt.__file__).resolve().is_relative_to(Path(root).resolve()):
        sys.exit(3)                        # another copy of the package: its cache is not ours

    def exit_with_parent():
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered
        # reader aborts the interpreter's shutdown (it cannot take the reader's lock).
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    _compile(jobs)


def _available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container's ``--cpus``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:                 # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(n, 1)


def _default_processes() -> int:
    """One per available core; one when this interpreter cannot start another (a frozen
    application's executable is the application itself)."""
    if getattr(sys, "frozen", False) or not sys.executable:
        return 1
    return _available_cores()


def _processes(x) -> int:
    """``processes`` checked: an integer >= 1 (InstanceError naming it otherwise)."""
    from .._validate import instance_errors, integer

    n = integer(x, "processes", strict=True)
    if n < 1:
        raise instance_errors("processes", (), f"must be an integer >= 1, got {n}")
    return n


def compile_kernels(parts=("core",), *, processes: int | None = None) -> None:
    """Compile the kernels :data:`COMPILE_JOBS` lists for ``parts``, shared out between this
    process and ``processes - 1`` children (default: one process per available core, at most
    :data:`MAX_COMPILE_PROCESSES`).

    The children write to the same per-user cache. This process waits for them and then
    loads their kernels from it, compiling itself whatever a child did not leave there (a
    child that failed, timed out or could not start costs time, never a kernel). The
    children are killed if this process is interrupted, and end by themselves if it dies.
    """
    import numba

    from .._interrupt import run_child

    if numba.config.DISABLE_JIT:
        return
    n = _default_processes() if processes is None else _processes(processes)
    shares = _shares(parts, min(n, MAX_COMPILE_PROCESSES)) or [[]]
    with contextlib.ExitStack() as children:
        procs = []
        for share in shares[1:]:
            try:
                procs.append(children.enter_context(run_child(
                    [sys.executable, "-c", _CHILD, str(Path(__file__).resolve().parents[2]), *share],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            except OSError:
                break                      # compiled below, in this process
        _compile(shares[0])
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                pass                       # killed on leaving the block
            proc.stdin.close()
    _compile([job for share in shares[1:] for job in share])      # from the cache, or compiled here


def parts_for(*, quality: bool = True, parallel: bool = False, frontier: bool = False) -> list[str]:
    """The parts of :data:`COMPILE_JOBS` a call needs, in order: ``core`` always, ``quality``
    for the quality form, for large instances the parallel variants (or, on one Numba
    thread, the serial restriction screen: ``large``), ``frontier`` for the frontier's walk."""
    import numba

    parts = ["core"] + (["quality"] if quality else [])
    if parallel:
        if numba.get_num_threads() > 1:
            parts += ["parallel"] + (["quality+parallel"] if quality else [])
        else:
            parts.append("large")
    return parts + (["frontier"] if frontier else [])


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
        Also compile what instances of at least
        ``robatch_opt.solvers.greedy.PARALLEL_MIN_CELLS`` query x option cells run: the
        parallel variants (hulls, histogram, split, plan totals, best moves, the restriction
        screen) when Numba has more than one thread, else the serial restriction screen
        (:func:`parts_for`).
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
    todo = [p for p in parts_for(quality=quality, parallel=parallel, frontier=frontier) if p not in _done]
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
    compile_kernels(todo, processes=1 if kernels_cached(todo) else processes)
    if "core" in todo:
        for fraction in (0.0, 0.3, 1.0):
            solve(inst, budget=budget_from_fraction(inst, fraction), method="greedy")
    if "quality" in todo:
        solve(inst, min_mean_utility=float(inst.utility.max(axis=1).mean()) * 0.9, method="greedy")
    if "frontier" in todo:
        from ..frontier import frontier

        frontier(inst, points=3)                 # the shared budget walk's own kernels
    mark_cached(todo)
    _done.update(todo)
    return time.perf_counter() - t0
