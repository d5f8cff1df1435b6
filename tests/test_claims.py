"""Claims that hold: every engine's status and bound against brute force in exact arithmetic.

The family (:func:`near_ties.near_tie_case`): options whose costs and utilities are equal up
to relative perturbations of 1e-9 to 1e-6, budgets exactly at some plan's exact cost and
targets exactly at some plan's utility, with and without per-model capacities. Every plan
of each instance is costed in :class:`fractions.Fraction` (:mod:`exact_rational`), with no
tolerance but the package's documented 1e-12 on the budget. For every engine:

- a returned plan is feasible in exact terms;
- its bound (upper bound on utility, or lower bound on cost) is not beaten by any plan
  that is feasible in exact terms; ``OPTIMAL`` comes with a gap <= 1e-9;
- an exact engine never says "no plan" on a feasible instance, and ``proven=True`` only
  when no plan is feasible; the greedy says "no plan" only when its own cheapest
  constructed plan is over budget (or, with capacities, when none exists).

300 examples in CI (``ci`` profile, derandomized), each solved by four engines.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import robatch_opt as ro
from robatch_opt.errors import InfeasibleBudgetError
from robatch_opt.evaluate import within_budget

from exact_rational import RTOL, exact_plans
from near_ties import near_tie_case
from strategies import instances

ENGINES = [("greedy", {}), ("cpsat", {}), ("milp", {"solver": "highs"}), ("milp", {"solver": "cbc"})]
OPTIMAL_RTOL = Fraction(1, 10 ** 9)


def _check(inst, form, value, cap, method, opts, plans, feasible):
    name = opts.get("solver", method)
    kw = dict(budget=value) if form == "budget" else dict(min_mean_utility=value)
    try:
        plan = ro.solve(inst, method=method, max_queries_per_model=cap, time_limit_s=30, **kw, **opts)
    except InfeasibleBudgetError as exc:
        if method == "greedy":
            if feasible.any():
                assert form == "budget" or cap is not None, name
                if form == "budget":
                    # Only when its own cheapest constructed plan is over budget.
                    assert not within_budget(exc.cheapest_cost_usd, value), (name, exc.cheapest_cost_usd, value)
            return
        assert not feasible.any(), (name, "no plan on a feasible instance", str(exc))
        return
    a = np.flatnonzero(np.all(plans.option == plan.option[None, :], axis=1))[0]
    assert feasible[a], (name, "the plan is infeasible in exact terms")
    if not feasible.any():
        return
    if form == "budget":
        best = max(plans.utility[b] for b in np.flatnonzero(feasible))
        assert Fraction(plan.upper_bound) >= best, (name, plan.status, plan.upper_bound, float(best))
        if plan.status == ro.Status.OPTIMAL:
            assert best <= plans.utility[a] * (1 + OPTIMAL_RTOL) + RTOL, name
    else:
        best = min(plans.cost[b] for b in np.flatnonzero(feasible))
        assert Fraction(plan.cost_lower_bound_usd) <= best, (name, plan.status, plan.cost_lower_bound_usd, float(best))
        if plan.status == ro.Status.OPTIMAL:
            assert plans.cost[a] <= best * (1 + OPTIMAL_RTOL), name
    if plan.status == ro.Status.OPTIMAL:
        assert plan.gap <= 1e-9, name


@settings(max_examples=300)
@given(near_tie_case())
def test_near_identical_options_claims_hold_in_exact_arithmetic(case):
    inst, form, value, cap = case
    plans = exact_plans(inst)
    if form == "budget":
        feasible = plans.feasible(budget_usd=value, max_queries=cap)
    else:
        feasible = plans.feasible(target=value * inst.n_queries, max_queries=cap)
    for method, opts in ENGINES:
        _check(inst, form, value, cap, method, opts, plans, feasible)


@settings(max_examples=60)
@given(instances(max_queries=7), st.lists(st.floats(0, 1.2), min_size=2, max_size=8))
def test_frontier_is_monotone_in_the_budget(inst, fractions):
    """A point never returns less than an earlier point's plan (which still fits)."""
    budgets = [ro.budget_from_fraction(inst, f) for f in fractions]
    for shared in (True, False):
        fr = ro.frontier(inst, budgets, method="greedy", shared_walk=shared)
        u = fr.utility[fr.feasible]
        assert np.all(np.diff(u) >= 0), (shared, fr.utility)
        assert np.all(fr.cost_usd[fr.feasible] <= fr.budget_usd[fr.feasible] * (1 + 1e-12))


def test_the_trivial_bound_covers_the_exact_sum_of_the_best_options():
    """Found by a randomized run of the family above: CBC's plan was 3e-10 short of the plan
    that takes every query's best option, and the bound it reported was that plan's float
    sum, 1.5000003663000023, an ulp below its exact sum (the trivial bound was not widened
    by the sum's rounding error). Both claims are checked in exact arithmetic."""
    u_a = [0.3000001230000012] + [0.30000000299999996] * 6
    inst = ro.Instance(
        models=[ro.Model("m0", 2.0, 0.2, 1000000, (1, 2)), ro.Model("m1", 2.0, 0.2, 1000000, (1, 2)),
                ro.Model("m2", 2.0, 0.2, 1000000, (1, 2, 4))],
        tasks=[ro.Task("t0", 100.0), ro.Task("t1", 100.0)], query_task=[0, 0, 0, 1, 0],
        input_tokens=[50.0] * 5, output_tokens=[[20.0] * 3] * 5,
        utility=[u_a, [0.3, 0.3, 0.2999999997, 0.3, 0.3, 0.3, 0.3], [0.3] * 7,
                 [0.3000000003, 0.3000001203000001, 0.2999997002999997, 0.30000000060000004, 0.3000001203000001,
                  0.3000000009, 0.3000000009],
                 [0.3000001230000012, 0.30000000299999996, 0.3000000033, 0.2999999729999997, 0.3000000027,
                  0.30000000359999995, 0.300000006]])
    plans = exact_plans(inst)
    feasible = plans.feasible(budget_usd=0.00152, max_queries=[2, 2, 2])
    for method, opts in ENGINES:
        _check(inst, "budget", 0.00152, [2, 2, 2], method, opts, plans, feasible)
