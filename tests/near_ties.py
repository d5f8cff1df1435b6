"""Hypothesis strategy: instances whose options are near-identical (tests only).

Costs and utilities of different options equal up to relative perturbations of 1e-9 to
1e-6 (the regime where engines' tolerances decide), with budgets exactly at some plan's
exact cost (or a hair around it) and quality targets exactly at some plan's utility, with
and without per-model capacities. Every instance has a feasible plan by construction (the
witness whose cost or utility sets the budget or target).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import robatch_opt as ro

__all__ = ["near_tie_case"]

_EPS = [0.0, 1e-9, -1e-9, 2e-9, 1e-8, -1e-8, 1e-7, -1e-7, 4e-7, 1e-6, -1e-6]
_SIZES = [(1,), (1, 2), (1, 3), (2,), (1, 2, 4), (2, 3)]


@st.composite
def near_tie_case(draw, *, max_queries: int = 5, max_models: int = 3):
    """``(inst, form, value, cap)``: form ``"budget"`` (value in USD) or ``"quality"``
    (value a mean-utility target); ``cap`` a per-model capacity list or None."""
    n = draw(st.integers(2, max_queries))
    K = draw(st.integers(1, max_models))
    T = draw(st.integers(1, 2))
    eps = st.sampled_from(_EPS)
    base_in = draw(st.sampled_from([0.1, 0.5, 1.0, 2.0]))
    base_out = draw(st.sampled_from([0.2, 1.0, 4.0]))
    sizes = [draw(st.sampled_from(_SIZES)) for _ in range(K)]
    while sum(len(s) for s in sizes) > 7:
        sizes[-1] = (1,)
        if sum(len(s) for s in sizes) > 7:
            sizes = sizes[:-1]
    K = len(sizes)
    models = []
    system = [draw(st.sampled_from([100, 300, 1000])) for _ in range(T)]
    qt = [draw(st.integers(0, T - 1)) for _ in range(n)]
    tok = draw(st.sampled_from([50, 120]))
    inp = [tok + draw(st.sampled_from([0, 0, 1])) for _ in range(n)]
    out = [[20 for _ in range(K)] for _ in range(n)]
    for k in range(K):
        models.append(ro.Model(f"m{k}", base_in * (1 + draw(eps)), base_out * (1 + draw(eps)),
                               10 ** 6, sizes[k]))
    J = sum(len(s) for s in sizes)
    u0 = draw(st.sampled_from([0.3, 0.5, 0.7, 0.9]))
    util = np.empty((n, J))
    for i in range(n):
        ui = u0 * (1 + draw(eps))
        for j in range(J):
            util[i, j] = min(1.0, ui * (1 + draw(eps)))
    inst = ro.Instance(models=models, tasks=[ro.Task(f"t{t}", system[t]) for t in range(T)],
                       query_task=qt, input_tokens=inp, output_tokens=out, utility=util)
    witness = np.array([draw(st.integers(0, J - 1)) for _ in range(n)], dtype=np.int64)
    ev = ro.evaluate(inst, witness)
    cap = None
    if draw(st.booleans()):
        usage = ev.model_usage()
        cap = [int(min(u + draw(st.integers(0, 1)), n)) for u in usage]
    if draw(st.booleans()):
        nudge = draw(st.sampled_from([0.0, 0.0, 1e-12, 1e-9, -1e-9]))
        return inst, "budget", ev.cost_usd * (1 + nudge), cap
    return inst, "quality", ev.utility / n, cap
