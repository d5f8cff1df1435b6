"""Brute-force reference for tiny RwB instances (tests only).

Every assignment of admissible options is enumerated. Costs and utilities of all of them are
computed at once with NumPy (a replica of the evaluator's arithmetic, equal to it up to float
noise far below 1e-9 relative); the decision is then taken by :func:`robatch_opt.evaluate`
itself: candidates are graded with ``evaluate`` in order of the replica's objective, and the
first one that ``evaluate`` finds feasible is the optimum. Only assignments whose replica
value is more than 1e-9 (relative) on the wrong side of the budget or target are rejected
without ``evaluate``; float noise cannot move an assignment that far.

Feasibility is the problem's definition (the one the exact engines use, restated here so the
reference does not import the code it checks): budget form ``evaluate(x).cost_usd <=
budget * (1 + 1e-12)``; quality form ``evaluate(x).utility >= T - 1e-12 * max(1, |T|)``
(``robatch_opt.evaluate.BUDGET_RTOL``); per-model
capacity on the number of queries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

import robatch_opt as ro

#: Relative margin of the replica's pre-filter (float noise is ~1e-15).
FILTER_RTOL = 1e-9

#: Refuse instances with more assignments than this (the tests stay fast).
MAX_ASSIGNMENTS = 400_000


@dataclass(frozen=True)
class BruteForce:
    """The optimum of a tiny instance: ``option`` is None when no plan is feasible."""

    option: np.ndarray | None
    utility: float | None
    cost_usd: float | None
    n_assignments: int
    partial_call: bool | None      # the optimum has a call with fewer than b queries


def _all_assignments(inst: ro.Instance) -> np.ndarray:
    adm = inst.admissible
    choices = [np.flatnonzero(adm[i]) for i in range(inst.n_queries)]
    total = int(np.prod([len(c) for c in choices], dtype=np.int64))
    if total > MAX_ASSIGNMENTS:
        raise ValueError(f"{total} assignments: too many for brute force")
    return np.array(list(itertools.product(*choices)), dtype=np.int64).reshape(total, inst.n_queries)


def _replica(inst: ro.Instance, opts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact cost, utility and per-model usage of every assignment (rows of ``opts``)."""
    table = ro.compile_options(inst)
    M, n = opts.shape
    J, T = inst.n_options, inst.n_tasks
    counts = np.zeros((M, T * J), dtype=np.int64)
    rows = np.arange(M)
    var = np.zeros(M)
    util = np.zeros(M)
    usage = np.zeros((M, inst.n_models), dtype=np.int64)
    for i in range(n):
        counts[rows, inst.query_task[i] * J + opts[:, i]] += 1
        k = inst.option_model[opts[:, i]]
        var += table.variable_cost[i, k]
        util += table.utility[i, opts[:, i]]
        usage[rows, k] += 1
    calls = -(-counts // table.group_batch[None, :])
    cost = calls @ table.group_fixed_cost + var
    return cost, util, usage


def brute_force(inst: ro.Instance, *, budget_usd: float | None = None, min_total_utility: float | None = None,
                max_queries=None) -> BruteForce:
    """Optimal plan of a tiny instance by enumeration (exactly one of budget / target).

    Parameters
    ----------
    max_queries : sequence of int, optional
        Per-model capacity (one entry per model).
    """
    opts = _all_assignments(inst)
    cost, util, usage = _replica(inst, opts)
    ok = np.ones(len(opts), dtype=bool)
    if max_queries is not None:
        ok &= (usage <= np.asarray(max_queries)[None, :]).all(axis=1)
    if budget_usd is not None:
        ok &= cost <= budget_usd * (1 + FILTER_RTOL) + 1e-300
        order = np.flatnonzero(ok)[np.argsort(-util[ok], kind="stable")]

        def feasible(ev):
            return ev.cost_usd <= budget_usd * (1 + 1e-12)
    else:
        floor = min_total_utility - 1e-12 * max(1.0, abs(min_total_utility))
        ok &= util >= floor - FILTER_RTOL * max(1.0, abs(floor))
        order = np.flatnonzero(ok)[np.argsort(cost[ok], kind="stable")]

        def feasible(ev):
            return ev.utility >= floor
    for a in order:
        ev = ro.evaluate(inst, opts[a])
        if feasible(ev):
            partial = bool((ev.calls.sizes < ev.calls.batch_size).any())
            return BruteForce(ev.option, ev.utility, ev.cost_usd, len(opts), partial)
    return BruteForce(None, None, None, len(opts), None)
