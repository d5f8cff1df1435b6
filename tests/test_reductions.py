"""The reductions of ``robatch_opt.reductions`` and the theorems of ``proofs/`` as properties.

Knapsack and MCKP optima come from independent dynamic programmes written here; RwB optima
from a brute force written here (it prices plans from the DESIGN §1 formula, not through
``evaluate``) and, when the backend is installed, from CP-SAT through ``ro.solve``.
Example counts are fixed per test (``max_examples``): they are the figures quoted in the
issue's closing note.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import robatch_opt as ro
from robatch_opt.errors import AssignmentError, InfeasibleBudgetError, InstanceError
from robatch_opt.reductions import MultipleChoiceKnapsack, knapsack_to_rwb, mckp_to_rwb, rwb_to_mckp

from strategies import instance_and_budget, instances

KNAPSACK_EXAMPLES = 300
MCKP_EXAMPLES = 250
LP_EXAMPLES = 150


@functools.lru_cache(maxsize=None)
def method_available(name: str) -> bool:
    """Whether backend ``name`` is installed (asked once: some backends probe their engines)."""
    return name in ro.available_methods()


# ------------------------------------------------------------- independent references
def knapsack_dp(values, weights, capacity) -> tuple[int, np.ndarray]:
    """0/1 knapsack by dynamic programming over capacities: optimal value and a packing."""
    n, cap = len(values), int(capacity)
    best = np.zeros((n + 1, cap + 1), dtype=np.int64)       # best[i, c]: items < i, weight <= c
    for i in range(n):
        best[i + 1] = best[i]
        w = int(weights[i])
        if w <= cap:
            best[i + 1, w:] = np.maximum(best[i, w:], best[i, :cap + 1 - w] + int(values[i]))
    take = np.zeros(n, dtype=bool)
    c = cap
    for i in range(n - 1, -1, -1):
        if best[i + 1, c] != best[i, c]:
            take[i] = True
            c -= int(weights[i])
    return int(best[n, cap]), take


def mckp_dp(profits, weights, capacity) -> tuple[int, np.ndarray] | tuple[None, None]:
    """MCKP by dynamic programming over capacities; (None, None) when infeasible."""
    cap = int(capacity)
    neg = -(10 ** 18)
    best = [np.zeros(cap + 1, dtype=np.int64)]               # weight <= c, no class yet
    for ph, wh in zip(profits, weights):
        prev, cur = best[-1], np.full(cap + 1, neg, dtype=np.int64)
        for p, w in zip(ph, wh):
            if w <= cap:
                cand = np.full(cap + 1, neg, dtype=np.int64)
                ok = prev[:cap + 1 - w] > neg
                cand[w:] = np.where(ok, prev[:cap + 1 - w] + p, neg)
                cur = np.maximum(cur, cand)
        best.append(cur)
    if best[-1][cap] <= neg:
        return None, None
    choice = np.zeros(len(profits), dtype=np.int64)
    c = cap
    for h in range(len(profits) - 1, -1, -1):
        for r, (p, w) in enumerate(zip(profits[h], weights[h])):
            if w <= c and best[h][c - w] > neg and best[h][c - w] + p == best[h + 1][c]:
                choice[h], c = r, c - w
                break
    return int(best[-1][cap]), choice


def exact_costs_usd(inst: ro.Instance, plans: np.ndarray) -> np.ndarray:
    """Exact cost of every row of ``plans`` (shape (N, n)) from the DESIGN §1 formula."""
    J, T = inst.n_options, inst.n_tasks
    k = inst.option_model[plans]                                  # (N, n)
    b = inst.option_batch
    var = (inst.input_tokens[None, :] * inst.price_in[k]
           + np.take_along_axis(inst.output_tokens[None, :, :].repeat(len(plans), 0), k[:, :, None], 2)[:, :, 0]
           * inst.price_out[k]) / 1e6
    total = var.sum(axis=1)
    group = inst.query_task[None, :] * J + plans
    for g in range(T * J):
        t, j = divmod(g, J)
        n_g = (group == g).sum(axis=1)
        f = inst.system_tokens[t] * inst.price_in[inst.option_model[j]] / 1e6
        total = total + np.ceil(n_g / b[j]) * f
    return total


def brute_force(inst: ro.Instance, budget_usd: float) -> tuple[float, np.ndarray | None]:
    """Best utility over every admissible assignment within the budget (tiny instances)."""
    n = inst.n_queries
    choices = [np.flatnonzero(inst.admissible[i]) for i in range(n)]
    plans = np.array(list(itertools.product(*choices)), dtype=np.int64).reshape(-1, n)
    cost = exact_costs_usd(inst, plans)
    util = inst.utility[np.arange(n)[None, :], plans].sum(axis=1)
    ok = cost <= budget_usd * (1 + 1e-12) + 1e-15
    if not ok.any():
        return -math.inf, None
    best = int(np.argmax(np.where(ok, util, -np.inf)))
    return float(util[best]), plans[best]


def highs_lp(table: ro.OptionTable, budget_usd: float) -> float:
    """LP relaxation of the amortized MCKP solved by HiGHS (maximise utility)."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for opt in ("primal_feasibility_tolerance", "dual_feasibility_tolerance"):
        h.setOptionValue(opt, 1e-10)
    cells = np.argwhere(table.admissible)
    N = cells.shape[0]
    h.addVars(N, np.zeros(N), np.ones(N))
    h.changeColsCost(N, np.arange(N, dtype=np.int32), table.utility[table.admissible])
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    for i in range(table.n_queries):
        idx = np.flatnonzero(cells[:, 0] == i).astype(np.int32)
        h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
    # Scaling the budget row to O(1) keeps HiGHS' absolute tolerances meaningful for
    # costs of a fraction of a cent.
    cost = table.cost[table.admissible]
    scale = float(cost.max()) if cost.max() > 0 else 1.0
    h.addRow(-highspy.kHighsInf, budget_usd / scale, N, np.arange(N, dtype=np.int32), cost / scale)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value)


# ---------------------------------------------------------------------------- strategies
@st.composite
def knapsacks(draw, max_items: int = 8):
    n = draw(st.integers(1, max_items))
    values = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    weights = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    capacity = int(draw(st.floats(0, 1.1)) * sum(weights))
    return values, weights, capacity, draw(st.sampled_from(["max", "pow2"]))


@st.composite
def mckps(draw, max_classes: int = 5, max_items: int = 4):
    m = draw(st.integers(1, max_classes))
    sizes = draw(st.lists(st.integers(1, max_items), min_size=m, max_size=m))
    profits = [draw(st.lists(st.integers(0, 500), min_size=s, max_size=s)) for s in sizes]
    weights = [draw(st.lists(st.integers(0, 40), min_size=s, max_size=s)) for s in sizes]
    lo = sum(min(w) for w in weights)
    hi = sum(max(w) for w in weights)
    # Feasible by construction: at least the lightest choice fits.
    capacity = lo + int(draw(st.floats(0, 1)) * (hi - lo))
    return profits, weights, capacity, draw(st.sampled_from(["max", "pow2"]))


# ------------------------------------------------------------------------------ knapsack
@settings(max_examples=KNAPSACK_EXAMPLES)
@given(knapsacks())
def test_knapsack_reduction_preserves_optimum(problem):
    """Theorem 1 (NP-hardness): knapsack optimum == RwB optimum * value_scale, both ways."""
    values, weights, capacity, scale = problem
    red = knapsack_to_rwb(values, weights, capacity, value_scale=scale)
    inst, budget, decode = red
    dp_value, dp_take = knapsack_dp(values, weights, capacity)

    # A genuine instance: two priced/free models, a task with a system prompt, u in [0, 1].
    assert inst.n_tasks == 1 and inst.tasks[0].system_tokens > 0
    assert inst.options == ((0, 1), (1, 1))
    assert budget == capacity * red.usd_per_weight

    # The RwB optimum (independent brute force) is the knapsack optimum, scaled.
    bf_util, bf_plan = brute_force(inst, budget)
    assert bf_util * red.value_scale == pytest.approx(dp_value, rel=1e-12, abs=1e-9)
    bf_take = decode(bf_plan)
    assert red.weight(bf_take) <= capacity and red.value(bf_take) == dp_value

    # Exact solvers agree and their plans decode to optimal packings.
    if method_available("cpsat"):
        plan = ro.solve(inst, budget, method="cpsat", time_limit_s=10)
        assert plan.status == ro.Status.OPTIMAL
        take = decode(plan)
        assert red.weight(take) <= capacity
        assert red.value(take) == dp_value
        assert plan.utility * red.value_scale == pytest.approx(dp_value, rel=1e-12, abs=1e-9)

    # Forward map: the DP's packing is a plan of the same value whose exact cost is its
    # weight, with no rounding at all.
    option = red.encode(dp_take)
    ev = ro.evaluate(inst, option)
    assert ev.cost_usd == red.weight(dp_take) * red.usd_per_weight
    assert ev.cost_usd <= budget
    assert ev.utility * red.value_scale == pytest.approx(dp_value, rel=1e-12, abs=1e-9)
    assert (decode(option) == dp_take).all()
    if scale == "pow2":
        # Dyadic utilities: sums are exact, so the scaled utility *is* the integer value.
        assert red.value_scale >= max(values) and math.frexp(red.value_scale)[0] == 0.5
        assert ev.utility * red.value_scale == dp_value


def test_knapsack_costs_exact_with_power_of_two_scale():
    values, weights = [3, 5, 7, 11], [1_000_003, 999_999, 12_345, 7]
    red = knapsack_to_rwb(values, weights, capacity=1_012_355, usd_per_weight=2.0 ** -20)
    for take in itertools.product([False, True], repeat=4):
        take = np.array(take)
        ev = ro.evaluate(red.instance, red.encode(take))
        assert ev.cost_usd == sum(w for w, t in zip(weights, take) if t) * 2.0 ** -20
    assert red.budget_usd == 1_012_355 * 2.0 ** -20


def test_knapsack_reduction_rejects_bad_input():
    with pytest.raises(InstanceError, match=r"`weights\[1\]`"):
        knapsack_to_rwb([1, 2], [3, 2.5], 4)
    with pytest.raises(InstanceError, match=r"`values\[0\]`"):
        knapsack_to_rwb([-1, 2], [3, 2], 4)
    with pytest.raises(InstanceError, match="`capacity`"):
        knapsack_to_rwb([1, 2], [3, 2], -1)
    with pytest.raises(InstanceError, match="`usd_per_weight`"):
        knapsack_to_rwb([1, 2], [3, 2], 4, usd_per_weight=0.1)
    with pytest.raises(InstanceError, match="`weights`"):
        knapsack_to_rwb([1, 2], [3], 4)
    with pytest.raises(InstanceError, match="`values`"):
        knapsack_to_rwb([], [], 4)
    with pytest.raises(InstanceError, match="exact"):
        knapsack_to_rwb([1], [2 ** 40], 4)
    with pytest.raises(InstanceError, match="`value_scale`"):
        knapsack_to_rwb([1, 2], [3, 2], 4, value_scale="median")
    with pytest.raises(InstanceError, match="`value_scale`"):
        knapsack_to_rwb([1, 2], [3, 2], 4, value_scale=1.5)          # below the largest value
    assert knapsack_to_rwb([1, 2], [3, 2], 4, value_scale=10).instance.utility[1, 0] == 0.2
    red = knapsack_to_rwb([1, 2], [3, 2], 4)
    with pytest.raises(AssignmentError, match=r"`option\[1\]`"):
        red.decode([0, 5])


def test_knapsack_decode_accepts_plan_evaluation_and_array():
    red = knapsack_to_rwb([4, 3, 2], [2, 2, 1], 3)
    option = red.encode([0, 2])                      # item indices are accepted too
    ev = ro.evaluate(red.instance, option)
    assert option.tolist() == [0, 1, 0]
    assert red.decode(ev).tolist() == red.decode(option).tolist() == [True, False, True]
    if method_available("greedy"):
        plan = ro.solve(red.instance, red.budget_usd, method="greedy")
        assert red.decode(plan).tolist() == red.decode(plan.option).tolist()
        assert red.weight(red.decode(plan)) <= 3


# ---------------------------------------------------------------------------------- MCKP
@settings(max_examples=MCKP_EXAMPLES)
@given(mckps())
def test_mckp_reduction_preserves_optimum(problem):
    """MCKP optimum == RwB optimum * value_scale; decode and encode keep the value."""
    profits, weights, capacity, scale = problem
    red = mckp_to_rwb(profits, weights, capacity, value_scale=scale)
    inst, budget, decode = red
    dp_value, dp_choice = mckp_dp(profits, weights, capacity)
    assert dp_value is not None                         # feasible by construction

    # Missing item positions are inadmissible, present ones admissible.
    valid = np.array([[r < len(p) for r in range(inst.n_options)] for p in profits])
    assert (inst.admissible == valid).all()
    assert budget == capacity

    bf_util, bf_plan = brute_force(inst, budget)
    assert bf_util * red.value_scale == pytest.approx(dp_value, rel=1e-12, abs=1e-9)
    choice = decode(bf_plan)
    assert red.mckp.weight_of(choice) <= capacity and red.mckp.profit_of(choice) == dp_value

    if method_available("cpsat"):
        plan = ro.solve(inst, budget, method="cpsat", time_limit_s=10)
        assert plan.status == ro.Status.OPTIMAL
        choice = decode(plan)
        assert red.mckp.weight_of(choice) <= capacity
        assert red.mckp.profit_of(choice) == dp_value

    option = red.encode(dp_choice)
    ev = ro.evaluate(inst, option)
    assert ev.cost_usd == red.mckp.weight_of(dp_choice) <= budget
    assert ev.utility * red.value_scale == pytest.approx(dp_value, rel=1e-12, abs=1e-9)
    if scale == "pow2":
        assert ev.utility * red.value_scale == dp_value

    # Reverse direction: the amortized RwB of the reduced instance is the MCKP again.
    back = rwb_to_mckp(inst, budget)
    assert (back.valid == red.mckp.valid).all()
    assert np.array_equal(back.weight[back.valid], red.mckp.weight[back.valid] * red.usd_per_weight)
    assert np.allclose(back.profit * red.value_scale, red.mckp.profit, rtol=1e-12, atol=0)
    assert back.capacity == budget


def test_mckp_infeasible_capacity_is_infeasible_budget():
    red = mckp_to_rwb([[1, 2], [3]], [[2, 3], [4]], capacity=5)     # lightest choice weighs 6
    # The front door proves it before any backend runs (budget below the amortized minimum).
    with pytest.raises(InfeasibleBudgetError) as err:
        ro.solve(red.instance, red.budget_usd, method="batching_flow")
    assert err.value.proven and err.value.lower_bound_usd == 6.0
    assert red.mckp.lp_relaxation()[0] == -math.inf


def test_mckp_reduction_rejects_bad_input():
    with pytest.raises(InstanceError, match=r"`weights\[1\]\[0\]`"):
        mckp_to_rwb([[1], [2]], [[1], [0.5]], 3)
    with pytest.raises(InstanceError, match=r"`profits\[1\]`"):
        mckp_to_rwb([[1], []], [[1], []], 3)
    with pytest.raises(InstanceError, match=r"`weights\[0\]`"):
        mckp_to_rwb([[1, 2]], [[1]], 3)
    with pytest.raises(InstanceError, match=r"`profits\[0\]\[1\]`"):
        mckp_to_rwb([[1, -2]], [[1, 1]], 3)
    red = mckp_to_rwb([[1, 2], [3]], [[1, 1], [1]], 3)
    with pytest.raises(InstanceError, match=r"`choice\[1\]`"):
        red.encode([0, 1])                            # class 1 has one item


# ------------------------------------------------- NP membership and the amortized bound
@settings(max_examples=100)
@given(instances(max_queries=6), st.randoms(use_true_random=False))
def test_evaluate_checks_a_certificate_by_the_definition(inst, rnd):
    """Theorem 1 (in NP): ``evaluate`` computes the exact cost and utility of DESIGN §1."""
    n = inst.n_queries
    option = np.array([rnd.choice(np.flatnonzero(inst.admissible[i]).tolist()) for i in range(n)])
    ev = ro.evaluate(inst, option)
    assert ev.cost_usd == pytest.approx(exact_costs_usd(inst, option[None, :])[0], rel=1e-12, abs=1e-15)
    assert ev.utility == pytest.approx(inst.utility[np.arange(n), option].sum(), rel=1e-12, abs=1e-15)


@settings(max_examples=100)
@given(instances(max_queries=7), st.randoms(use_true_random=False))
def test_amortized_cost_brackets_exact_cost(inst, rnd):
    """Theorem 2 (a): amortized <= exact < amortized + one call per used group."""
    table = ro.compile_options(inst)
    n = inst.n_queries
    option = np.array([rnd.choice(np.flatnonzero(inst.admissible[i]).tolist()) for i in range(n)])
    ev = ro.evaluate(inst, option)
    amortized = table.cost[np.arange(n), option].sum()
    used = ev.group_counts > 0
    slack = table.group_fixed_cost[used].sum()
    tol = 1e-12 * max(1.0, ev.cost_usd)
    assert amortized <= ev.cost_usd + tol
    # Strict unless every used group's call is free (then both sides are equal).
    if slack > 0:
        assert ev.cost_usd < amortized + slack + tol
    else:
        assert ev.cost_usd == pytest.approx(amortized, rel=1e-12, abs=1e-15)
    # The sharper form: at most (b - 1) / b of a call per used group.
    sharp = (table.group_fixed_cost * (table.group_batch - 1) / table.group_batch)[used].sum()
    assert ev.cost_usd <= amortized + sharp + tol
    # The bound is tight for full calls: every group a multiple of its batch size.
    full = (ev.group_counts % table.group_batch == 0)
    if full.all():
        assert ev.cost_usd == pytest.approx(amortized, rel=1e-12, abs=1e-15)


@settings(max_examples=LP_EXAMPLES)
@given(instance_and_budget(max_queries=6))
def test_lp_bound_equals_highs_and_bounds_the_optimum(case):
    """Theorem 2 (b, c): the hull walk is the LP optimum (HiGHS) and bounds RwB from above;
    the greedy backend reports the same LP bound."""
    inst, budget = case
    table = ro.compile_options(inst)
    mckp = rwb_to_mckp(inst, budget)
    lp_value, x = mckp.lp_relaxation()
    lp_highs = highs_lp(table, budget)
    assert lp_value == pytest.approx(lp_highs, rel=1e-7, abs=1e-7)
    # x is a feasible LP point of that value.
    assert np.allclose(x.sum(axis=1), 1.0) and (x >= -1e-12).all() and not x[~mckp.valid].any()
    w = np.where(mckp.valid, mckp.weight, 0.0)
    assert (x * w).sum() <= budget * (1 + 1e-9) + 1e-15
    assert (x * mckp.profit).sum() == pytest.approx(lp_value, rel=1e-12, abs=1e-12)
    # At most one class is fractional (Sinha-Zoltners).
    assert ((x > 1e-12) & (x < 1 - 1e-12)).any(axis=1).sum() <= 1

    best, _ = brute_force(inst, budget)
    assert best <= lp_value * (1 + 1e-9) + 1e-12
    if method_available("greedy"):
        plan = ro.solve(inst, budget, method="greedy")
        assert plan.upper_bound == pytest.approx(lp_highs, rel=1e-7, abs=1e-7)
        assert plan.utility <= best + 1e-9


def test_lp_relaxation_handles_ties_and_dominated_items():
    # Class 0: a dominated item (heavier, less profitable), an equal-weight duplicate, and a
    # non-hull item under the segment between its neighbours.
    mckp = MultipleChoiceKnapsack.from_lists([[1, 0.5, 3, 1.9, 4], [0, 2]],
                                             [[1, 2, 3, 2, 5], [0, 4]], capacity=5)
    value, x = mckp.lp_relaxation()
    # Start (1, 1) + (0, 0); hull edges: class 0 slope 1 (to (3, 3)), 0.5 (to (5, 4));
    # class 1 slope 0.5. Room 4: slope-1 edge (2), then 2 of the slope-0.5 edges' weight.
    assert value == pytest.approx(1 + 0 + 2 + 0.5 * 2)
    assert x[0, 1] == 0 and x[0, 3] == 0
    assert MultipleChoiceKnapsack.from_lists([[1, 2]], [[1, 2]], math.inf).lp_relaxation()[0] == 2
