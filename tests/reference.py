"""Brute-force references for tiny instances: every assignment enumerated, graded exactly.

Independent of every solver and of ``evaluate`` (the exact cost is recomputed here from the
instance's raw fields), so tests can compare both with it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

import robatch_opt as ro

__all__ = ["all_assignments", "brute_force", "BRUTE_MAX_ASSIGNMENTS"]

#: Instances with more admissible assignments than this are not enumerated.
BRUTE_MAX_ASSIGNMENTS = 50_000


def all_assignments(inst: ro.Instance) -> np.ndarray | None:
    """Every admissible assignment as rows of an (m, n) int array (None if too many)."""
    adm = np.asarray(inst.admissible)
    choices = [np.flatnonzero(adm[i]) for i in range(inst.n_queries)]
    m = math.prod(len(c) for c in choices)
    if m > BRUTE_MAX_ASSIGNMENTS:
        return None
    return np.array(list(itertools.product(*choices)), dtype=np.int64).reshape(m, inst.n_queries)


def _exact_costs(inst: ro.Instance, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact cost (USD) and utility of every row, from the instance's raw fields."""
    n = inst.n_queries
    om, ob = np.asarray(inst.option_model), np.asarray(inst.option_batch)
    k = om[rows]                                                   # (m, n)
    var = (inst.input_tokens[None, :] * inst.price_in[k]
           + inst.output_tokens[np.arange(n)[None, :], k] * inst.price_out[k]) / 1e6
    util = inst.utility[np.arange(n)[None, :], rows].sum(axis=1)
    system = np.zeros(rows.shape[0])
    for t in range(inst.n_tasks):
        in_t = inst.query_task == t
        if not in_t.any():
            continue
        for j, (kk, b) in enumerate(inst.options):
            count = (rows[:, in_t] == j).sum(axis=1)
            calls = -(-count // b)
            system += calls * inst.tasks[t].system_tokens * inst.models[kk].price_in / 1e6
    return system + var.sum(axis=1), util


def brute_force(inst: ro.Instance, *, budget: float | None = None, min_mean_utility: float | None = None,
                max_queries: np.ndarray | None = None) -> tuple[float, np.ndarray] | None:
    """Optimum of a tiny instance by enumeration (None if too many assignments).

    Budget form: returns (max utility, its assignment), utility ``-inf`` if nothing fits.
    Quality form: returns (min exact cost, its assignment), ``inf`` if the target is missed.
    """
    rows = all_assignments(inst)
    if rows is None:
        return None
    cost, util = _exact_costs(inst, rows)
    ok = np.ones(rows.shape[0], bool)
    if max_queries is not None:
        usage = np.stack([(np.asarray(inst.option_model)[rows] == k).sum(axis=1) for k in range(inst.n_models)], 1)
        ok &= (usage <= np.asarray(max_queries)[None, :]).all(axis=1)
    if budget is not None:
        ok &= cost <= budget * (1 + 1e-12)
        if not ok.any():
            return -math.inf, np.zeros(0, np.int64)
        best = np.flatnonzero(ok)[np.argmax(util[ok])]
        return float(util[best]), rows[best]
    target = min_mean_utility * inst.n_queries
    ok &= util >= target - 1e-12 * max(1.0, target)      # robatch_opt.evaluate.meets_target
    if not ok.any():
        return math.inf, np.zeros(0, np.int64)
    best = np.flatnonzero(ok)[np.argmin(cost[ok])]
    return float(cost[best]), rows[best]
