"""Reusable hypothesis strategies that build *valid* RwB instances by construction.

Sizes are drawn first, then arrays of those sizes; context windows are set from the drawn
token counts so that every query has an admissible option without ``assume``. Budgets are
drawn as a fraction between the cheapest and the most useful plan.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import robatch_opt as ro

__all__ = ["instances", "instance_and_budget", "instance_and_target", "budget_between",
           "instance_and_budgets", "instance_budget_and_capacity"]

_SIZE_SETS = [(1,), (1, 2), (1, 3), (2,), (1, 2, 4), (2, 3), (1, 4), (3,)]


@st.composite
def instances(draw, *, max_queries: int = 7, max_models: int = 3, max_tasks: int = 2,
              max_options: int = 6, min_queries: int = 1, tight_windows: bool = True,
              monotone_utility: bool = False) -> ro.Instance:
    """A small valid instance: n <= max_queries, J <= max_options.

    Windows are sometimes tight, so that some (model, batch size) options are inadmissible
    for some queries; every model's smallest batch size always fits every query. With
    ``monotone_utility`` each query's utility on a model never rises with the batch size
    (as batch prompting behaves), the premise of partial-call dominance.
    """
    n = draw(st.integers(min_queries, max_queries))
    T = draw(st.integers(1, max_tasks))
    K = draw(st.integers(1, max_models))
    sizes = []
    budget_j = max_options
    for k in range(K):
        remaining_models = K - k - 1
        allowed = [s for s in _SIZE_SETS if len(s) <= budget_j - remaining_models]
        s = draw(st.sampled_from(allowed))
        sizes.append(s)
        budget_j -= len(s)
    system = draw(st.lists(st.integers(0, 400), min_size=T, max_size=T))
    query_task = draw(st.lists(st.integers(0, T - 1), min_size=n, max_size=n))
    inp = draw(st.lists(st.integers(1, 200), min_size=n, max_size=n))
    out = draw(st.lists(st.lists(st.integers(0, 100), min_size=K, max_size=K), min_size=n, max_size=n))
    prices = draw(st.lists(st.tuples(st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0, 2.0, 3.7]),
                                     st.sampled_from([0.0, 0.1, 0.2, 1.0, 4.0, 7.3])),
                           min_size=K, max_size=K))
    out_a = np.asarray(out, dtype=float)
    s_q = np.asarray(system, float)[np.asarray(query_task)]
    per_query = np.asarray(inp, float)[:, None] + out_a                     # (n, K)
    windows = []
    for k in range(K):
        roomy = int(np.max(s_q + max(sizes[k]) * per_query[:, k])) + 1
        if tight_windows and draw(st.booleans()):
            # Between "smallest size fits every query" and "every size fits": some options drop out.
            lo = int(np.ceil(np.max(s_q + min(sizes[k]) * per_query[:, k])))
            windows.append(draw(st.integers(lo, max(lo, roomy))))
        else:
            windows.append(roomy)
    J = sum(len(s) for s in sizes)
    util = draw(st.lists(st.lists(st.floats(0, 1, allow_nan=False, width=32), min_size=J, max_size=J),
                         min_size=n, max_size=n))
    if monotone_utility:
        u = np.asarray(util, dtype=float)
        start = 0
        for s_k in sizes:                 # options are model-major, batch sizes increasing
            u[:, start:start + len(s_k)] = -np.sort(-u[:, start:start + len(s_k)], axis=1)
            start += len(s_k)
        util = u.tolist()
    models = [ro.Model(f"m{k}", prices[k][0], prices[k][1], windows[k], sizes[k]) for k in range(K)]
    tasks = [ro.Task(f"t{t}", system[t]) for t in range(T)]
    return ro.Instance(models=models, tasks=tasks, query_task=query_task, input_tokens=inp,
                       output_tokens=out, utility=util)


def budget_between(inst: ro.Instance, fraction: float) -> float:
    """Budget at ``fraction`` of the way from the cheapest to the most useful plan."""
    return ro.budget_from_fraction(inst, fraction)


@st.composite
def instance_and_budget(draw, **kwargs) -> tuple[ro.Instance, float]:
    """An instance and a feasible budget (at least the cheapest plan's exact cost)."""
    inst = draw(instances(**kwargs))
    frac = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.3]) | st.floats(0, 1.2))
    return inst, budget_between(inst, frac)


@st.composite
def instance_and_target(draw, **kwargs) -> tuple[ro.Instance, float]:
    """An instance and an attainable mean-utility target (quality form)."""
    inst = draw(instances(**kwargs))
    table = ro.compile_options(inst)
    lo = float(table.utility[np.arange(inst.n_queries), table.cheapest_option].mean())
    hi = float(np.where(table.admissible, table.utility, -1).max(axis=1).mean())
    frac = draw(st.floats(0, 1))
    return inst, lo + frac * (hi - lo)


@st.composite
def instance_and_budgets(draw, **kwargs) -> tuple[ro.Instance, float, float]:
    """An instance and two feasible budgets ``low <= high`` (monotonicity in the budget)."""
    inst = draw(instances(**kwargs))
    f_low = draw(st.sampled_from([0.0, 0.25, 0.5]) | st.floats(0, 1))
    f_high = f_low + draw(st.sampled_from([0.0, 0.05, 0.3]) | st.floats(0, 0.6))
    return inst, budget_between(inst, f_low), budget_between(inst, f_high)


@st.composite
def instance_budget_and_capacity(draw, **kwargs) -> tuple[ro.Instance, float, list[int]]:
    """An instance, per-model capacities and a budget that some capacity-respecting plan meets.

    A witness plan (one admissible option per query) is drawn first; capacities are its
    per-model usage plus drawn slack, and the budget is at least the witness's exact cost,
    so a feasible plan exists by construction.
    """
    inst = draw(instances(**kwargs))
    adm = np.asarray(inst.admissible)
    witness = [draw(st.sampled_from(np.flatnonzero(adm[i]).tolist())) for i in range(inst.n_queries)]
    usage = np.bincount(np.asarray(inst.option_model)[witness], minlength=inst.n_models)
    slack = draw(st.lists(st.integers(0, 2), min_size=inst.n_models, max_size=inst.n_models))
    cap = [int(min(u + s, inst.n_queries)) for u, s in zip(usage, slack)]
    witness_cost = ro.evaluate(inst, witness).cost_usd
    lo, hi = ro.reference_costs(inst)
    frac = draw(st.floats(0, 1.2))
    return inst, max(witness_cost, lo + frac * max(hi - lo, 0.0)), cap
