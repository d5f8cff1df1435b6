"""The greedy with its certificate on a Dask cluster: the same plan as the in-memory greedy.

Like ``xgboost.dask``, the algorithm is the single-machine one, distributed by reducing the
same per-chunk statistics, so the result agrees with :mod:`robatch_opt.solvers.greedy`:

1. Per chunk: every query's upper hull and the ratio histogram of its increments. The
   driver adds the histograms and finds the crossing bin, the same O(N) threshold as in
   memory, hence the same LP bound.
2. Per chunk: the increments in the crossing bin (with their queries' rows); the driver
   walks that one bin in exact ratio order, as in memory.
3. Per chunk: group counts (tasks x options), model counts and money sums of the plan;
   the driver adds them, gets the exact cost (one partial call per group) and, when the
   partial calls push it over the budget, sheds the crossing bin's increments with exact
   accounting or re-thresholds at a lowered budget, exactly as in memory.
4. Exact-cost local moves: per chunk, every query's best move under the global counts and
   the chunk's best-scored candidates (reduced pairwise on the cluster to the global best
   ones); the driver applies them in score order with exact accounting, as in memory.
5. Per chunk: the final options, graded by the shared evaluator and written to the plan
   store next to the instance (under a temporary name), with each restriction's
   Lagrangian terms at the LP price.
6. The best of the restrictions, as ``ro.solve`` in memory (``solvers/restrictions.py``):
   routing-only and batching-only, by the same steps on restricted chunks, each only where
   the Lagrangian bound does not rule it out; the best plan's store is put in place.

Chunk tasks are pure functions of the chunk and of small global values (a chunk's plan is
rebuilt from a recipe in every task), so Dask re-runs a task lost with a killed worker and
the result is unchanged. Sums are added in chunk order, so a plan differs from the
in-memory one only by the rounding of its sums (about 1e-15 relative).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._files import OutputPathError, check_output_store
from .._validate import nonnegative
from ..errors import InfeasibleBudgetError, InstanceError, SolverError
from ..evaluate import CostBreakdown, within_budget
from ..instance import Instance
from ..kernels import greedy_kernels as gk
from ..plan import Plan, Status
from ..solvers import greedy as g
from ..solve import _g                       # the front door's figures, in full where they tie
from . import _chunk_tasks as tasks
from .errors import ClusterSetupError, DistributedUnsupportedError, NoWorkersError, SchedulerUnreachableError
from .store import (ChunkRef, ChunkedInstance, DEFAULT_CHUNK_QUERIES, _check_chunk_queries, remove_temporary,
                    uninterrupted)

__all__ = ["solve", "connect", "reference_costs", "budget_from_fraction", "GATHER_MAX_QUERIES"]

#: Plans of at most this many queries come back as in-memory arrays; larger ones stay in
#: the plan store and ``plan.option`` reads it (a :class:`~.plan_column.PlanColumn`).
GATHER_MAX_QUERIES = 1 << 25

#: Most move candidates one chunk sends at once; beyond it (many ties at the cut, e.g. free
#: moves into partial calls' seats) the chunk sends its best scores and the driver fetches
#: the candidates below the global cut, then the tied ones chunk by chunk.
MAX_RETURNED_CANDIDATES = 1 << 16

#: Chunks whose tied move candidates are computed ahead of the one being applied.
TIES_IN_FLIGHT = 6

#: Relative gap under which a plan is OPTIMAL by certificate (as in ``ro.solve``).
OPTIMAL_RTOL = 1e-9


#: Seconds to wait for a scheduler to answer and for a first worker to join.
CONNECT_TIMEOUT_S = 10.0


def connect(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S):
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``.

    Raises
    ------
    SchedulerUnreachableError
        Nothing answered within ``timeout_s`` seconds, the connection was refused, or
        ``address`` is not a scheduler address (the message names the address).
    InstanceError
        ``address`` is not a string.
    """
    from distributed import Client
    if not isinstance(address, str):
        raise InstanceError("client", f"must be a Dask client or a scheduler address such as "
                                      f"'tcp://127.0.0.1:8786', got {type(address).__name__}")
    _refused_fast(address)
    try:
        return Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachableError(address, f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:              # Dask's own parse error ("missing port number")
        raise SchedulerUnreachableError(address, f"not a scheduler address ({exc}); expected "
                                                 "tcp://HOST:PORT") from None


def _refused_fast(address: str) -> None:
    """SchedulerUnreachableError at once when nothing listens at a ``tcp://HOST:PORT`` (Dask's
    client retries a refused connection until its whole timeout, 10 s by default)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        return                             # Dask's own parser names the problem
    if parts.scheme != "tcp" or host is None or port is None:
        return
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except ConnectionRefusedError:
        raise SchedulerUnreachableError(address, "connection refused (is the scheduler running on that "
                                                 "port?)") from None
    except OSError:
        return                             # unknown host, timeout...: Dask's own connect decides


def _cluster_ready(client, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for a worker, then check every process has robatch_opt.

    Without a worker every task waits forever (``--budget-fraction`` hung with a bare
    scheduler); NoWorkersError says so instead.
    """
    if client is None:
        raise DistributedUnsupportedError(
            "`client`: the distributed greedy needs a Dask client or a scheduler address, e.g. "
            "client=distributed.Client(distributed.LocalCluster()) on one machine")
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except (TimeoutError, OSError) as exc:
        address = str(client.scheduler.address)
        raise NoWorkersError(f"the Dask scheduler at {address!r} has no worker: none joined within "
                             f"{timeout_s} s (start one with `dask worker {address}`)") from exc
    check_cluster(client)


def check_cluster(client) -> None:
    """The scheduler and every worker must import robatch_opt, the same version as here.

    The task graph refers to the package's functions: without it the scheduler failed with
    Dask's "Error during deserialization of the task graph" (reported as an internal error).
    Each process is asked to import the package itself (a source tree on ``PYTHONPATH``
    counts; installed metadata is not needed).

    Raises
    ------
    ClusterSetupError
        Naming the process (scheduler or worker address) and what it has.
    """
    from .. import __version__

    address = str(client.scheduler.address)

    def version():                         # pickled by value: it needs nothing but builtins
        try:
            return __import__("robatch_opt").__version__
        except Exception as exc:           # noqa: BLE001 - any failure to import is the answer
            return f"!{type(exc).__name__}: {exc}"

    found = [("the scheduler", client.run_on_scheduler(version))]
    found += sorted((f"worker {w}", v) for w, v in client.run(version).items())
    for who, have in found:
        if have != __version__:
            what = (f"cannot import robatch_opt ({have[1:]})" if str(have).startswith("!")
                    else f"has robatch_opt {have}")
            raise ClusterSetupError(f"Dask cluster at {address!r}: {who} {what}; install robatch_opt "
                                    f"{__version__} (as here) on the scheduler and every worker")


class _Runner:
    """Submits one task per chunk and gathers the results in chunk order."""

    def __init__(self, client, sources: list, bounds: list[tuple[int, int]], progress: bool):
        self.client = client
        self.sources = sources
        self.bounds = bounds
        self.progress = progress
        self.passes = 0

    def map(self, fn: Callable, per_chunk: Callable[[int], tuple] = lambda c: (), label: str = "",
            chunks: list[int] | None = None) -> list:
        """``fn(source, *per_chunk(c))`` for every chunk (or the given ones), results in order."""
        self.passes += 1
        chunks = range(len(self.sources)) if chunks is None else chunks
        futures = [self.client.submit(fn, self.sources[c], *per_chunk(c), pure=False,
                                      key=f"robatch-{label or fn.__name__}-{c}-{uuid.uuid4().hex[:8]}")
                   for c in chunks]
        self._show(futures)
        # (No explicit cancel on an interrupt: it made asyncio print "Task exception was never
        # retrieved ... AllExit" tracebacks; the futures are released as the exception unwinds,
        # which cancels the tasks not started.)
        return self.client.gather(futures)

    def submit(self, fn: Callable, c: int, *args):
        """One task on chunk ``c`` (a future)."""
        return self.client.submit(fn, self.sources[c], *args, pure=False,
                                  key=f"robatch-{fn.__name__}-{c}-{uuid.uuid4().hex[:8]}")

    def _show(self, futures) -> None:
        if self.progress:
            from distributed import progress
            progress(futures, notebook=False)


class _Totals:
    """The plan's exact accounting, as ``_State`` keeps it in memory (counts exact)."""

    def __init__(self, group_fixed: np.ndarray, group_batch: np.ndarray):
        self.group_fixed, self.group_batch = group_fixed, group_batch

    def set(self, parts: list[dict]) -> None:
        self.counts = np.sum([p["counts"] for p in parts], axis=0).astype(np.int64)
        self.model_count = np.sum([p["model_count"] for p in parts], axis=0).astype(np.int64)
        var = amort = util = 0.0
        for p in parts:
            var += p["var_usd"]
            amort += p["amortized_usd"]
            util += p["utility"]
        self.var = var
        self.exact = self.system(self.counts) + var
        self.amortized, self.utility = amort, util
        self.stale = False

    def set_walked(self, parts: list[dict], lp: dict, om: np.ndarray, J: int) -> None:
        """Totals of the walked plan: the chunks' prefix-plan totals, corrected for the
        crossing bin's queries that the walk moved (their rows are in ``lp``)."""
        self.set(parts)
        r = np.flatnonzero(lp["pos"] != lp["prefix"])
        if r.size:
            old = lp["hull"][r, lp["prefix"][r]].astype(np.int64)
            new = lp["hull"][r, lp["pos"][r]].astype(np.int64)
            t = lp["task"][r]
            np.add.at(self.counts, t * J + old, -1)
            np.add.at(self.counts, t * J + new, 1)
            np.add.at(self.model_count, om[old], -1)
            np.add.at(self.model_count, om[new], 1)
            self.var += float(np.sum(lp["var"][r, om[new]] - lp["var"][r, om[old]]))
            self.amortized += float(np.sum(lp["cost"][r, new] - lp["cost"][r, old]))
            self.utility += float(np.sum(lp["util"][r, new] - lp["util"][r, old]))
        self.exact = self.system(self.counts) + self.var

    def system(self, counts: np.ndarray) -> float:
        s = 0.0
        for q in np.flatnonzero(counts > 0):
            s += ((counts[q] + self.group_batch[q] - 1) // self.group_batch[q]) * self.group_fixed[q]
        return float(s)


def _sources(instance, client, chunk_queries: int | None):
    """Per chunk: what a task reads (store reference or a held in-memory chunk), and bounds."""
    if isinstance(instance, ChunkedInstance):
        refs = instance.refs()
        return refs, [(r.r0, r.r1) for r in refs]
    cq = int(chunk_queries or DEFAULT_CHUNK_QUERIES)
    n = instance.n_queries
    bounds = [(r0, min(n, r0 + cq)) for r0 in range(0, n, cq)]
    held = []
    for r0, r1 in bounds:
        part = Instance(models=instance.models, tasks=instance.tasks, query_task=instance.query_task[r0:r1],
                        input_tokens=instance.input_tokens[r0:r1], output_tokens=instance.output_tokens[r0:r1],
                        utility=instance.utility[r0:r1])
        # The chunk's data lives in the task itself, so a chunk lost with a worker is rebuilt.
        held.append(client.submit(tasks.hold, part, pure=False))
    return held, bounds


def _filter(cand: dict, keep: np.ndarray) -> dict:
    return {k: v[keep] for k, v in cand.items()}


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _chunk_recipes(bounds, kc, pos_rows, pos, move_rows, move_opt) -> list[tasks.Recipe]:
    """Split global recipe arrays (sorted ``pos_rows``; moves in application order) per chunk."""
    out = []
    if move_rows.size:
        # Later moves of a query replace earlier ones: keep each query's last.
        rev = move_rows[::-1]
        _, first = np.unique(rev, return_index=True)
        keep = np.sort(move_rows.size - 1 - first)
        move_rows, move_opt = move_rows[keep], move_opt[keep]
        order = np.argsort(move_rows, kind="stable")
        move_rows, move_opt = move_rows[order], move_opt[order]
    for r0, r1 in bounds:
        a, b = np.searchsorted(pos_rows, [r0, r1])
        c, d = np.searchsorted(move_rows, [r0, r1])
        out.append(tasks.Recipe(kc, pos_rows[a:b] - r0, pos[a:b], move_rows[c:d] - r0, move_opt[c:d]))
    return out


def solve(instance, budget: float | None = None, *, client=None, method: str = "greedy",
          min_mean_utility: float | None = None, max_queries_per_model=None, plan_path=None,
          chunk_queries: int | None = None, gather: bool | None = None, progress: bool | None = None,
          timeout_s: float = CONNECT_TIMEOUT_S, **options: Any) -> Plan:
    """Solve on a Dask cluster with the greedy: the in-memory greedy's plan, chunk by chunk.

    Parameters
    ----------
    instance : ChunkedInstance or Instance
        A store opened by ``ro.load("x.zarr")`` (read by the workers, chunk by chunk), or an
        in-memory instance (split into chunks of ``chunk_queries`` held by the cluster).
    budget : float
        USD; the plan's exact cost never exceeds it.
    client : dask.distributed.Client or str
        A connected client, or a scheduler address (``"tcp://host:8786"``).
    method : {"greedy"}
    plan_path : str or path-like, optional
        Where the plan's options are written (a zarr store). Default for a stored instance:
        ``x.plan.zarr`` beside ``x.zarr``; none for an in-memory instance.
    chunk_queries : int, optional
        In-memory instances only: queries per chunk.
    gather : bool, optional
        Return the options as in-memory arrays (default: when n <= ``GATHER_MAX_QUERIES``);
        otherwise ``plan.option`` (and ``model``, ``batch_size``, ``query_task``) are
        :class:`~.plan_column.PlanColumn` s read from the plan store on demand. A later solve
        to the same ``plan_path`` replaces the store; the earlier plan's columns then raise
        :class:`~.errors.PlanStoreReplacedError` (give each plan its own ``plan_path``).
    progress : bool, optional
        Dask's progress bar for every pass and the dashboard link (default: on a terminal).
    timeout_s : float
        Seconds to wait for the scheduler (and for a first worker).

    Returns
    -------
    Plan
        Exact cost, utility and bound as the in-memory greedy's (to rounding); graded by the
        shared evaluator's logic, chunk by chunk.

    Raises
    ------
    SchedulerUnreachableError
        ``client`` is an address nothing answers at, or not an address.
    NoWorkersError
        The scheduler has no worker within ``timeout_s``.
    InstanceError
        ``chunk_queries`` is not an integer >= 1 (or the budget not a number >= 0).
    DistributedUnsupportedError
        The quality form, per-model capacities, or a method other than the greedy.
    InfeasibleBudgetError
        The budget is below every plan's cost.
    ChunkError, ChunkLayoutError, ChunkValueError
        A chunk is missing, corrupt, laid out inconsistently, or holds an invalid value.

    Notes
    -----
    About 4 to 7 passes over the data (each reads every chunk once): statistics, the
    crossing bin (with the totals of the plan it gives), one per round of local moves, and
    the final grading; a coupling re-threshold adds one. Workers keep the chunks that fit a
    quarter of their memory limit between passes.
    """
    t0 = time.perf_counter()
    if method != "greedy":
        raise DistributedUnsupportedError(f"`method`: the distributed solver runs the greedy only, got {method!r}")
    if min_mean_utility is not None or budget is None:
        raise DistributedUnsupportedError("`min_mean_utility`: the distributed greedy solves the budget form "
                                          "only; give `budget`")
    if max_queries_per_model is not None:
        raise DistributedUnsupportedError("`max_queries_per_model`: capacities are not supported by the "
                                          "distributed greedy")
    if options:
        raise DistributedUnsupportedError(f"unknown option(s) for the distributed greedy: {sorted(options)}")
    if not isinstance(instance, (Instance, ChunkedInstance)):
        raise InstanceError("instance", f"must be a robatch_opt.Instance or a chunked instance "
                                        f"(ro.load('x.zarr')), got {type(instance).__name__}")
    try:
        budget_usd = float(budget)
    except (TypeError, ValueError) as exc:
        raise InstanceError("budget", f"must be a number of USD, got {budget!r}") from exc
    if not math.isfinite(budget_usd) or budget_usd < 0:
        raise InstanceError("budget", f"must be a finite number >= 0 USD, got {budget!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, numbers.Real) or \
            not (math.isfinite(timeout_s) and timeout_s > 0):
        raise InstanceError("timeout_s", f"must be a finite number of seconds > 0, got {timeout_s!r}")
    _plan_path(instance, plan_path)             # an unwritable plan store fails before any work
    if chunk_queries is not None:
        _check_chunk_queries(chunk_queries)
    own_client = isinstance(client, str)
    if own_client:
        client = connect(client, timeout_s=timeout_s)
    try:
        _cluster_ready(client, timeout_s)
        if progress is None:
            progress = sys.stderr.isatty()
        if progress:
            print(f"robatch_opt.distributed: Dask dashboard {client.dashboard_link}", file=sys.stderr)
        return _solve(instance, budget_usd, client, plan_path, chunk_queries, gather, bool(progress), t0)
    finally:
        if own_client:
            client.close()


def _skeleton(instance) -> Instance:
    """A one-query instance with ``instance``'s models, tasks and options: what the
    restrictions' labels, columns and sub-instances are computed from (no data needed)."""
    J = instance.n_options
    return Instance(models=instance.models, tasks=instance.tasks, query_task=[0], input_tokens=[0.0],
                    output_tokens=[[0.0] * instance.n_models], utility=[[0.5] * J])


def _restricted_sources(client, sources: list, label: str) -> list:
    """Each chunk's source restricted to ``label`` (a store reference says so; a held chunk
    is restricted by a task on the cluster)."""
    return [dataclasses.replace(s, restriction=label) if isinstance(s, ChunkRef)
            else client.submit(tasks.restrict, s, label, pure=False) for s in sources]


def _solve(instance, budget: float, client, plan_path, chunk_queries, gather, progress, t0) -> Plan:
    """The joint greedy, then the best of the restrictions (as ``ro.solve`` does in memory):
    routing-only and batching-only plans by the same greedy, each solved only where the
    Lagrangian screen of ``solvers.restrictions`` cannot rule it out (at scale it rules out
    every one, at no extra pass: the terms are summed in the grading pass). The winner's plan
    store replaces ``plan_path``; the others' temporary stores are removed."""
    from ..solvers.restrictions import build_restriction, lift_option, restriction_columns, restriction_labels

    n = instance.n_queries
    if n == 0:
        raise InstanceError("instance", "has no queries")
    if gather is None:
        gather = n <= GATHER_MAX_QUERIES
    final = _plan_path(instance, plan_path)
    sources, bounds = _sources(instance, client, chunk_queries)
    skeleton = _skeleton(instance)
    labels = [label for label in restriction_labels(skeleton) if len(restriction_columns(skeleton, label))]
    # A single model without batching is inside routing-only and its model's batching-only:
    # the smaller of their bounds bounds it (as in memory).
    supersets = {label: [x for x in ("routing-only", "batching-only:" + label.split(":", 1)[1]) if x in labels]
                 for label in labels if label.startswith("single-model:")}
    bounded = [label for label in labels if not supersets.get(label)]
    member = np.zeros((len(bounded), instance.n_options), dtype=np.int64)
    for r, label in enumerate(bounded):
        member[r, restriction_columns(skeleton, label)] = 1
    best = None
    try:
        best = _solve_one(instance, skeleton, None, sources, bounds, budget, client, final, gather, progress, t0,
                          member if bounded else None)
        # Every chunk passed validation in the joint solve: the restrictions read them without the checks.
        sources = [dataclasses.replace(x, validated=True) if isinstance(x, ChunkRef) else x for x in sources]
        joint_bound = best.fields["upper_bound"]
        values: dict[str, float] = {"joint": best.fields["utility"]}
        winner, skipped, errors = "joint", [], {}
        t = time.perf_counter()
        if best.fields["status"] != Status.OPTIMAL and labels:
            # The screen of solvers/restrictions.py: L_R(lam) = lam B' + sum_i max_{j in R}
            # (u - lam c) bounds restriction R's utility; the same margin over float noise.
            lagr = ({} if best.lagrangian is None else
                    {label: (best.lagrangian[1] + float(x), best.lagrangian[1])
                     for label, x in zip(bounded, best.lagrangian[0])})
            floor = best.fields["utility"]

            def cannot_win(label: str) -> bool:
                if supersets.get(label):
                    return any(cannot_win(x) for x in supersets[label])
                if label not in lagr:
                    return False
                b, const = lagr[label]
                return b + 1e-9 * (abs(b) + abs(const)) < floor

            for label in labels:
                if cannot_win(label):
                    skipped.append(label)
                    continue
                try:
                    sub = build_restriction(skeleton, label)
                    lift = g._ro(lift_option(skeleton, sub, np.arange(sub.n_options)), np.int64)
                    out = _solve_one(instance, sub, lift, _restricted_sources(client, sources, label), bounds,
                                     budget, client, final, gather, progress, time.perf_counter(), None)
                except InfeasibleBudgetError:
                    continue                   # no plan of the restriction fits: no candidate
                except (InstanceError, SolverError) as exc:
                    # A query the restriction cannot serve (InstanceError from its chunk): no
                    # candidate, as in memory.
                    errors[label] = f"{type(exc).__name__}: {exc}"
                    continue
                values[label] = out.fields["utility"]
                if out.fields["utility"] > best.fields["utility"]:
                    best.discard()
                    best, winner = out, label
                else:
                    out.discard()
        out_path = best.commit()
    except BaseException:
        if best is not None:
            best.discard()
        raise
    f = dict(best.fields)
    info = dict(f.pop("info"))
    if winner != "joint":
        ub = max(joint_bound, f["utility"])
        gap = (ub - f["utility"]) / ub if ub > 0 else 0.0
        f.update(upper_bound=ub, gap=float(max(gap, 0.0)),
                 status=Status.OPTIMAL if gap <= OPTIMAL_RTOL else Status.FEASIBLE)
        info["lp_bound"] = joint_bound
    info.update(restriction=winner, restriction_values=values, restrictions_screened_out=skipped,
                restrictions_s=time.perf_counter() - t, plan_path=None if out_path is None else str(out_path))
    if errors:
        info["restriction_errors"] = errors
    om, ob = instance.option_model, instance.option_batch
    option, model, batch, qtask = _columns(instance, best.option, out_path, gather, om, ob)
    return Plan(option=option, model=model, batch_size=batch, query_task=qtask, info=info,
                wall_time_s=time.perf_counter() - t0, options=tuple(instance.options),
                model_names=tuple(m.name for m in instance.models), **f)


@dataclasses.dataclass
class _Outcome:
    """One greedy solve (joint or a restriction), graded, its plan store not yet in place."""

    fields: dict                    # the Plan's figures (cost, utility, bound, gap, status, info...)
    option: np.ndarray | None       # gathered joint options (None: in the store only)
    store: tuple[Path, Path] | None  # (final path, temporary store) or None
    lagrangian: tuple | None = None  # (per screened restriction the terms' sum, lam * budget)

    def commit(self) -> Path | None:
        if self.store is None:
            return None
        out, self.store = _commit_store(*self.store), None
        return out

    def discard(self) -> None:
        if self.store is not None:
            remove_temporary(self.store[1])
            self.store = None


def _solve_one(instance, meta: Instance, lift, sources, bounds, budget: float, client, final, gather, progress,
               t0, member) -> _Outcome:
    """The greedy on ``meta``'s options (the instance's, or a restriction's, whose options
    ``lift`` maps to the instance's), chunk by chunk. ``member``: the screened restrictions'
    option masks, whose Lagrangian bounds the grading pass also computes."""
    n = instance.n_queries
    J, K = meta.n_options, meta.n_models
    om, ob = meta.option_model, meta.option_batch
    T = meta.n_tasks
    sys_tokens = np.array([t.system_tokens for t in meta.tasks])
    price_in = np.array([m.price_in for m in meta.models])
    fixed = sys_tokens[:, None] * price_in[None, :] / 1e6                      # as Instance.fixed_cost_usd
    group_fixed = g._ro(np.ascontiguousarray(fixed[:, om].ravel()), np.float64)
    group_batch = g._ro(np.tile(ob, T), np.int64)
    om_ro, ob_ro = g._ro(om, np.int64), g._ro(ob, np.int64)
    capacity = g._ro(np.full(K, n), np.int64)
    run = _Runner(client, sources, bounds, progress)
    timings: dict[str, float] = {}
    totals = _Totals(group_fixed, group_batch)

    # ------------------------------------------------ 1. hulls and ratio histograms
    t = time.perf_counter()
    st = run.map(tasks.stats, label="stats")
    lo = min(s["bin_lo"] for s in st)
    hi = max(s["bin_hi"] for s in st)
    width = max(hi - lo + 1, 1)
    dc_hist, du_hist = np.zeros(width), np.zeros(width)
    start_util = c0 = 0.0
    n_inc = 0
    for s in st:
        if s["bin_hi"] >= s["bin_lo"]:
            a = s["bin_lo"] - lo
            dc_hist[a:a + s["dc_hist"].shape[0]] += s["dc_hist"]
            du_hist[a:a + s["du_hist"].shape[0]] += s["du_hist"]
        start_util += s["start_utility"]
        c0 += s["min_cost_usd"]
        n_inc += s["n_increments"]
    totals.set(st)
    cheapest_usd = totals.exact
    # Every chunk passed validation in this pass: later passes read them without the checks.
    run.sources = [dataclasses.replace(s, validated=True) if isinstance(s, ChunkRef) else s for s in run.sources]
    timings["stats_s"] = time.perf_counter() - t
    if not within_budget(c0, budget):
        raise InfeasibleBudgetError(
            f"`budget`: ${budget:.6g} is below the cost of every plan (lower bound ${_g(c0, budget)}; "
            f"cheapest plan found ${_g(cheapest_usd, budget)})",
            budget_usd=budget, cheapest_cost_usd=cheapest_usd, lower_bound_usd=c0, proven=True)

    # ------------------------------------------------ 2. LP threshold and the walk of its bin
    def lp_threshold(cap: float) -> dict[str, Any]:
        """As ``greedy.lp_threshold`` (budget form), with the crossing bin gathered from chunks."""
        kc = int(gk._find_crossing(dc_hist, lo, float(max(cap, 0.0)), False))
        above = slice(kc - lo + 1, None) if kc >= 0 else slice(None)
        dc_above, du_above = float(dc_hist[above].sum()), float(du_hist[above].sum())
        out: dict[str, Any] = {"kc": kc, "rows": np.zeros(0, np.int64), "pos": np.zeros(0, np.int64),
                               "threshold_ratio": 0.0}
        if kc < 0:
            out.update(lp_dc=dc_above, lp_du=du_above)
            return out
        parts = run.map(tasks.split, lambda c: (bounds[c][0], kc), label="split")
        cat = {k: np.concatenate([p[k] for p in parts]) for k in ("iq", "ip", "ir", "idc", "idu", "rows",
                                                                   "prefix", "task")}
        hull = np.concatenate([p["hull"] for p in parts])
        util = np.concatenate([p["util"] for p in parts]).reshape(-1, J)
        cost = np.concatenate([p["cost"] for p in parts]).reshape(-1, J)
        var = np.concatenate([p["var_cost"] for p in parts]).reshape(-1, K)
        rows = cat["rows"]
        local = np.searchsorted(rows, cat["iq"])               # item -> its query's row among `rows`
        pos = cat["prefix"].astype(np.int64).copy()
        left = cap - dc_above
        tdc, tdu, bdc, bdu, br, order, n_taken = gk._walk_bin(local, cat["ip"], cat["ir"], cat["idc"],
                                                              cat["idu"], float(left), False, pos)
        frac = min(max((left - tdc) / bdc, 0.0), 1.0) if bdc > 0.0 else 0.0
        out.update(rows=rows, pos=pos, lp_dc=dc_above + tdc + frac * bdc, lp_du=du_above + tdu + frac * bdu,
                   threshold_ratio=float(br), order=order, n_taken=int(n_taken), local=local,
                   ip=cat["ip"], hull=hull, util=g._ro(util, np.float64), var=g._ro(var, np.float64),
                   task=g._ro(cat["task"], np.int64), cost=cost, prefix=cat["prefix"].astype(np.int64),
                   parts=[p["totals"] for p in parts])
        return out

    t = time.perf_counter()
    limit = budget * (1.0 + g.ROUNDING_RTOL)
    lp = lp_threshold(budget - c0)
    bound = (start_util + lp["lp_du"]) * (1.0 + 1e-12)
    info: dict[str, Any] = {"engine": "greedy", "distributed": True, "n_increments": n_inc, "lp_bound": bound,
                            "lp_amortized_cost_usd": c0 + lp["lp_dc"], "threshold_ratio": lp["threshold_ratio"]}
    timings["lp_s"] = time.perf_counter() - t

    empty = np.zeros(0, np.int64)
    plan = {"kc": lp["kc"], "rows": lp["rows"], "pos": lp["pos"], "mrows": empty, "mopt": empty}

    def recipes() -> list:
        return _chunk_recipes(bounds, plan["kc"], plan["rows"], plan["pos"], plan["mrows"], plan["mopt"])

    def refresh() -> None:
        rec = recipes()
        totals.set(run.map(tasks.totals, lambda c: (rec[c],), label="totals"))

    def walked(lp_: dict) -> None:
        """Totals right after a walk: from the split pass when there was one, else a pass."""
        if "parts" in lp_:
            totals.set_walked(lp_["parts"], lp_, om, J)
        else:
            refresh()

    # ------------------------------------------------ 3. exact cost: shed or re-threshold
    t = time.perf_counter()
    walked(lp)
    iterations = 0
    if totals.exact > limit and lp.get("n_taken", 0) > 0:
        state = np.array([totals.exact, totals.utility])
        opt_rows = np.empty(lp["rows"].shape[0], np.int64)
        gk._options_from_positions(lp["hull"], lp["pos"], opt_rows)
        shed = gk._shed_walk(lp["order"], lp["n_taken"], lp["local"], lp["ip"], lp["hull"], lp["pos"], opt_rows,
                             lp["util"], lp["var"], lp["task"], om_ro, ob_ro, group_fixed, totals.counts,
                             totals.model_count, state, limit)
        plan["pos"] = lp["pos"]
        if shed >= 0:
            totals.exact, totals.utility, totals.stale = float(state[0]), float(state[1]), True
        else:
            refresh()
        info["shed_increments"] = int(shed)
    cap_r = budget - c0
    while totals.exact > limit and iterations <= g.MAX_COUPLING_ITERATIONS:
        iterations += 1
        overhead = totals.exact - totals.amortized
        if iterations <= g.MAX_COUPLING_ITERATIONS:
            cap_r = min(cap_r - (totals.exact - limit), limit - c0 - overhead)
        else:
            b = group_batch.astype(np.float64)
            cap_r = limit - c0 - float(np.sum(group_fixed * (b - 1.0) / b))
        if cap_r <= 0.0:
            plan.update(kc=None, rows=empty, pos=empty)
            refresh()
            break
        lp_r = lp_threshold(cap_r)
        plan.update(kc=lp_r["kc"], rows=lp_r["rows"], pos=lp_r["pos"])
        walked(lp_r)
    timings["coupling_s"] = time.perf_counter() - t
    info["coupling_iterations"] = iterations

    # ------------------------------------------------ 4. exact local moves
    rounds: list[int] = []
    fetched_in_parts: list[float] = []          # the global cut of every round fetched in parts

    def apply(cand: dict, mode: int, state: np.ndarray) -> int:
        """``_apply_moves`` on gathered candidates (all of them: any cut was made before)."""
        m = cand["idx"].shape[0]
        if not m:
            return 0
        opt = cand["c"].astype(np.int64).copy()
        moved = int(gk._apply_moves(mode, max(m, g.MAX_MOVES_PER_ROUND) if mode != gk.MODE_REPAIR else n,
                                    cand["j"].astype(np.int64).copy(), cand["score"].astype(np.float64).copy(),
                                    g._ro(cand["gain"], np.float64), g._ro(cand["dvar"], np.float64), opt,
                                    g._ro(cand["task"], np.int64), om_ro, ob_ro, group_fixed, totals.counts,
                                    totals.model_count, capacity, state, float(limit), float(-math.inf)))
        changed = opt != cand["c"]
        plan["mrows"] = np.concatenate([plan["mrows"], cand["idx"][changed]])
        plan["mopt"] = np.concatenate([plan["mopt"], opt[changed]])
        return moved

    def local_moves(mode: int, last: bool) -> int:
        """As ``_State.local_moves`` (no capacities); ``last`` defers the refresh to grading."""
        optional = mode in (gk.MODE_UPGRADE, gk.MODE_TRIM)
        max_moves = g.MAX_MOVES_PER_ROUND if optional else n
        state = np.array([totals.exact, totals.utility])
        total = 0
        for _ in range(g.MAX_LOCAL_ROUNDS):
            slack = limit - state[0] if mode == gk.MODE_UPGRADE else 0.0
            if mode == gk.MODE_REPAIR and state[0] <= limit:
                break
            rec = recipes()
            counts, mcount = totals.counts.copy(), totals.model_count.copy()

            def args(c, part="select", cut=math.inf):
                return (bounds[c][0], rec[c], mode, float(slack), counts, mcount, capacity, max_moves, part, cut,
                        MAX_RETURNED_CANDIDATES)

            parts = run.map(tasks.best_moves, args, label="best_moves")
            n_cand = sum(int(np.sum(p.pop("n"))) for p in parts)          # every chunk's whole count
            moved = 0
            if not any(p.get("truncated") for p in parts):
                moved = apply(tasks.merge(parts, max_moves), mode, state)
            else:
                # Too many candidates to hold at once (ties at the cut): find the global cut from
                # the chunks' best scores, apply every candidate below it (fewer than max_moves),
                # then the tied ones chunk by chunk, in query order: the kernel's own order.
                scores = np.concatenate([p["top"] if p.get("truncated") else -p["score"] for p in parts])
                cut = float(np.partition(scores, max_moves - 1)[max_moves - 1]) if n_cand > max_moves else math.inf
                trunc = [c for c, p in enumerate(parts) if p.get("truncated")]
                fetched_in_parts.append(cut)
                if cut > -math.inf:                 # (nothing is below a cut among free moves)
                    fetched = dict(zip(trunc, run.map(tasks.best_moves, lambda c: args(c, "below", cut),
                                                      label="best_moves_below", chunks=trunc)))
                    below = [fetched[c] if c in fetched else _filter(p, -p["score"] < cut)
                             for c, p in enumerate(parts)]
                    moved += apply(_concat(below), mode, state)
                if cut < math.inf:
                    # The ties in query order; a few chunks in flight, so memory stays bounded.
                    run.passes += 1
                    queue = iter(trunc)
                    flight = {}

                    def launch() -> None:
                        c = next(queue, None)
                        if c is not None:
                            flight[c] = run.submit(tasks.best_moves, c, *args(c, "ties", cut))

                    for _ in range(TIES_IN_FLIGHT):
                        launch()
                    for c, p in enumerate(parts):
                        if c in flight:
                            ties = flight.pop(c).result()
                            launch()
                        else:
                            ties = _filter(p, -p["score"] == cut)
                        moved += apply(ties, mode, state)
            total += moved
            rounds.append(moved)
            if moved == 0 or (optional and moved <= n >> 12):
                break
        if (total or totals.stale) and not last:
            refresh()
        return total

    t = time.perf_counter()
    moves = 0
    if totals.exact > limit:
        moves += local_moves(gk.MODE_REPAIR, last=False)
        if totals.exact > limit:
            raise InfeasibleBudgetError(
                f"`budget`: no plan meets budget ${budget:.6g} (greedy found none; cheapest plan found "
                f"${_g(totals.exact, budget)}, lower bound ${_g(c0, budget)})",
                budget_usd=budget, cheapest_cost_usd=float(totals.exact), lower_bound_usd=c0, proven=False)
    snapshot = (plan["mrows"], plan["mopt"])
    upgraded = local_moves(gk.MODE_UPGRADE, last=True)
    timings["local_s"] = time.perf_counter() - t

    # ------------------------------------------------ 5. grade chunk by chunk, write the plan
    t = time.perf_counter()
    store = None
    lam = float(info["threshold_ratio"])
    screen = (lam, member) if member is not None and math.isfinite(lam) and lam >= 0 else None
    finishing = dict(lift=lift, joint_om=None if lift is None else instance.option_model,
                     joint_ob=None if lift is None else instance.option_batch, screen=screen)
    try:
        # Written under a temporary name, renamed by the caller when it is the plan kept: an
        # interrupt or a failure leaves no partial store behind (nor touches an earlier plan
        # at the same path).
        store = _plan_store(instance, final, n)
        parts = _finish(run, recipes(), bounds, None if store is None else store[1], gather, finishing)
        totals.set(parts)
        if upgraded and totals.exact > limit:
            # Rounding drift put the upgraded plan over the limit: undo the upgrades, as in memory.
            plan["mrows"], plan["mopt"] = snapshot
            upgraded = 0
            parts = _finish(run, recipes(), bounds, None if store is None else store[1], gather, finishing)
            totals.set(parts)
    except BaseException:
        if store is not None:
            remove_temporary(store[1])         # after the chunks being written (store.py)
        raise
    outcome = _Outcome({}, None, store)
    try:
        moves += upgraded
        counts = np.sum([p["ev_counts"] for p in parts], axis=0)
        calls = -(-counts // group_batch)
        system_usd = float(np.dot(calls, group_fixed))
        input_usd = float(sum(p["ev_input_usd"] for p in parts))
        output_usd = float(sum(p["ev_output_usd"] for p in parts))
        utility = float(sum(p["ev_utility"] for p in parts))
        cost = system_usd + input_usd + output_usd
        timings["grade_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        if not within_budget(cost, budget):
            raise SolverError(f"distributed greedy exceeded the budget: exact cost ${cost!r} > ${budget!r}")
    except BaseException:
        outcome.discard()
        raise
    ub = max(float(bound), utility)
    gap = (ub - utility) / ub if ub > 0 else 0.0
    status = Status.OPTIMAL if gap <= OPTIMAL_RTOL else Status.FEASIBLE
    info.update(amortized_cost_usd=float(totals.amortized), exact_cost_usd=float(totals.exact),
                coupling_overhead_usd=float(totals.exact - totals.amortized), utility=float(totals.utility),
                n_local_moves=moves, local_rounds=rounds, candidate_cuts_fetched=fetched_in_parts, timings=timings, n_chunks=len(bounds),
                n_passes=run.passes, n_workers=len(client.scheduler_info().get("workers", {})))
    outcome.fields = dict(cost_usd=cost, utility=utility, upper_bound=ub, cost_lower_bound_usd=None,
                          gap=float(max(gap, 0.0)), status=status, method="greedy", budget_usd=budget,
                          min_mean_utility=None, n_calls=int(calls.sum()),
                          breakdown=CostBreakdown(system_usd, input_usd, output_usd), info=info)
    if gather:
        outcome.option = np.concatenate([p["option"] for p in parts])
    if screen is not None:
        outcome.lagrangian = (np.sum([p["lagrangian"] for p in parts], axis=0), lam * budget * (1 + 1e-12))
    return outcome


def _plan_path(instance, plan_path) -> Path | None:
    """Where the plan store goes (beside a chunked instance by default), checked like any output."""
    if plan_path is None:
        if not isinstance(instance, ChunkedInstance):
            return None
        plan_path = instance.path.with_name(instance.path.name[:-len(".zarr")] + ".plan.zarr")
    if not isinstance(plan_path, (str, os.PathLike)):
        raise OutputPathError(f"`plan_path`: must be a path (str or os.PathLike), got {type(plan_path).__name__}")
    # Absolute: the workers write its chunks from their own working directories.
    final = Path(os.path.abspath(check_output_store(plan_path, what="`plan_path`")))
    if isinstance(instance, ChunkedInstance) and os.path.realpath(final) == os.path.realpath(instance.path):
        # The plan store replaces its path: that would destroy the instance being solved.
        raise OutputPathError(f"`plan_path`: {os.fspath(plan_path)} is the instance's own store; "
                              f"give another path")
    return final


def _plan_store(instance, final: Path | None, n: int) -> tuple[Path, Path] | None:
    """Create the plan store (option, model, batch size and task per query, chunked like the
    instance) under a temporary name beside ``final``; ``(final, temporary)``, or None
    without a store."""
    if final is None:
        return None
    J, K = instance.n_options, instance.n_models
    import zarr
    from zarr.codecs import Crc32cCodec
    cq = instance.chunk_queries if isinstance(instance, ChunkedInstance) else max(1, min(n, 1 << 20))
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    T = instance.n_tasks
    dt = {"option": "int16" if J < 32767 else "int32", "model": "int16" if K < 32767 else "int32",
          "batch_size": "int64", "query_task": "int16" if T < 32767 else "int32"}

    def create():
        grp = zarr.open_group(str(tmp), mode="w")
        for name, dtype in dt.items():
            grp.create_array(name, shape=(n,), chunks=(cq,), dtype=dtype, compressors=[Crc32cCodec()],
                             fill_value=-1)
        # `plan_id`: a plan kept in the store (gather=False) checks it on every read, so a
        # later solve that replaces the store cannot hand it another plan's options.
        grp.attrs.update({"format": "robatch_opt.plan-zarr/1", "n_queries": n, "complete": False,
                          "plan_id": uuid.uuid4().hex})

    try:
        uninterrupted(create)              # zarr's I/O thread must not outlive an interrupt
    except BaseException:                  # an interrupt while it is made: no folder left behind
        remove_temporary(tmp)
        raise
    return final, tmp


def _commit_store(final: Path, tmp: Path) -> Path:
    """Rename the complete store ``tmp`` to ``final`` (an earlier store there is replaced)."""
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def _finish(run: _Runner, rec: list, bounds, out_path, gather: bool, finishing: dict) -> list[dict]:
    parts = run.map(tasks.finish, lambda c: (bounds[c][0], rec[c], None if out_path is None else str(out_path),
                                             gather, finishing["lift"], finishing["joint_om"], finishing["joint_ob"],
                                             finishing["screen"]), label="finish")
    if out_path is not None:
        import zarr
        uninterrupted(lambda: zarr.open_group(str(out_path), mode="r+").attrs.__setitem__("complete", True))
    return parts


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a


def _columns(instance, option, out_path, gather: bool, om, ob):
    if gather:
        option = _ro(option)
        if isinstance(instance, ChunkedInstance):
            import zarr
            qt = np.asarray(zarr.open_group(str(instance.path), mode="r")["query_task"][:])
        else:
            qt = instance.query_task
        return option, _ro(om[option]), _ro(ob[option]), _ro(qt)
    import zarr
    from .plan_column import PlanColumn
    plan_id = zarr.open_group(str(out_path), mode="r").attrs["plan_id"]
    return tuple(PlanColumn(str(out_path), name, plan_id) for name in ("option", "model", "batch_size", "query_task"))


def reference_costs(instance, client) -> tuple[float, float]:
    """:func:`robatch_opt.reference_costs` chunk by chunk on the cluster (one pass).

    Returns
    -------
    cheapest_usd, max_utility_usd : float
        Exact costs of every query on its cheapest option, and on its most useful one.
    """
    if isinstance(client, str):
        with connect(client) as c:
            return reference_costs(instance, c)
    _cluster_ready(client, CONNECT_TIMEOUT_S)   # its first tasks (the CLI's --budget-fraction)
    sources, bounds = _sources(instance, client, None)
    parts = _Runner(client, sources, bounds, False).map(tasks.reference, label="reference")
    om, ob = instance.option_model, instance.option_batch
    fixed = (np.array([t.system_tokens for t in instance.tasks])[:, None]
             * np.array([m.price_in for m in instance.models])[None, :] / 1e6)
    group_fixed, group_batch = fixed[:, om].ravel(), np.tile(ob, instance.n_tasks)
    out = []
    for name in ("cheapest", "max_utility"):
        counts = np.sum([p[name][0] for p in parts], axis=0)
        out.append(float(np.dot(-(-counts // group_batch), group_fixed)) + float(sum(p[name][1] for p in parts)))
    return out[0], out[1]


def budget_from_fraction(instance, fraction: float, client) -> float:
    """:func:`robatch_opt.budget_from_fraction` with the reference costs computed on the cluster."""
    f = nonnegative(fraction, "budget_fraction")
    lo, hi = reference_costs(instance, client)
    return lo + f * max(hi - lo, 0.0)
