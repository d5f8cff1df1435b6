"""Batching alone (one model, one task) solved exactly by enumeration + min-cost flow.

Theorem 3 of ``proofs/batching_polynomial.md``: the flow solver's optimum equals the brute
force and CP-SAT on random single-model, single-task instances (budget and quality forms).
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
from robatch_opt.errors import InstanceError
from robatch_opt.special_case import BatchingFlowBackend, solve_batching_only

from strategies import instance_and_budget, instance_and_target

FLOW_VS_CPSAT_EXAMPLES = 220
QUALITY_EXAMPLES = 80


@functools.lru_cache(maxsize=None)
def method_available(name: str) -> bool:
    return name in ro.available_methods()


def all_plans(inst: ro.Instance):
    """Every admissible assignment with its evaluated cost and utility (tiny instances)."""
    n = inst.n_queries
    choices = [np.flatnonzero(inst.admissible[i]) for i in range(n)]
    for option in itertools.product(*choices):
        ev = ro.evaluate(inst, np.array(option, dtype=np.int64))
        yield ev.cost_usd, ev.utility


def brute_force_budget(inst, budget):
    return max(u for c, u in all_plans(inst) if c <= budget * (1 + 1e-12) + 1e-15)


def brute_force_quality(inst, target_total):
    tol = 1e-9 * max(1.0, target_total)
    return min(c for c, u in all_plans(inst) if u >= target_total - tol)


single = dict(max_queries=7, max_models=1, max_tasks=1)


@settings(max_examples=FLOW_VS_CPSAT_EXAMPLES)
@given(instance_and_budget(**single))
def test_flow_solver_agrees_with_cpsat(case):
    """Theorem 3: the enumeration + flow optimum is the RwB optimum (budget form)."""
    inst, budget = case
    plan = ro.solve(inst, budget, method="batching_flow")
    assert plan.status == ro.Status.OPTIMAL
    assert plan.cost_usd <= budget * (1 + 1e-12) + 1e-15
    best = brute_force_budget(inst, budget)
    assert plan.utility == pytest.approx(best, rel=1e-12, abs=1e-12)
    if method_available("cpsat"):
        exact = ro.solve(inst, budget, method="cpsat", time_limit_s=10)
        # CP-SAT's certificate is conservative (its integer rounding error is added to its
        # bound), so on utilities spanning many magnitudes it may say FEASIBLE; the plans
        # must still agree in value.
        assert exact.status in (ro.Status.OPTIMAL, ro.Status.FEASIBLE)
        assert plan.utility == pytest.approx(exact.utility, rel=1e-9, abs=1e-12)


@settings(max_examples=QUALITY_EXAMPLES)
@given(instance_and_target(**single))
def test_flow_solver_quality_form_is_cheapest(case):
    """Quality form: bisection on the number of calls finds the cheapest plan."""
    inst, target = case
    plan = ro.solve(inst, min_mean_utility=target, method="batching_flow")
    assert plan.status == ro.Status.OPTIMAL
    cheapest = brute_force_quality(inst, target * inst.n_queries)
    assert plan.cost_usd == pytest.approx(cheapest, rel=1e-12, abs=1e-15)
    assert plan.utility >= target * inst.n_queries - 1e-9 * max(1.0, target * inst.n_queries)


def test_flow_splits_calls_between_sizes():
    # Four queries, calls of 1000 system tokens at 1 USD/Mtok, a budget of two calls.
    # Two calls can be: b4 for all (2.0), b1 + b4 (2.8), b2 + b4 (2.8) or b2 + b2 (3.0).
    inst = ro.Instance(models=[ro.Model("m", 1.0, 0.0, 100_000, (1, 2, 4))], tasks=[ro.Task("t", 1000)],
                       query_task=[0] * 4, input_tokens=[0] * 4, output_tokens=[0] * 4,
                       utility=[[1.0, 0.9, 0.8]] * 2 + [[1.0, 0.6, 0.2]] * 2)
    sol = solve_batching_only(inst, budget_usd=0.002)
    ev = ro.evaluate(inst, sol.option)
    assert sol.option.tolist() == [1, 1, 1, 1]
    assert ev.n_calls == 2 and ev.utility == pytest.approx(3.0)
    assert sol.proven_optimal and sol.calls.tolist() == [0, 2, 0]


def test_free_calls_and_empty_batches():
    # System prompt of 0 tokens: calls are free, every query takes its favourite size.
    inst = ro.Instance(models=[ro.Model("m", 1.0, 1.0, 1000, (1, 3))], tasks=[ro.Task("t", 0)],
                       query_task=[0, 0, 0], input_tokens=[10, 10, 10], output_tokens=[5, 5, 5],
                       utility=[[0.2, 0.9], [0.7, 0.1], [0.5, 0.5]])
    sol = solve_batching_only(inst, budget_usd=ro.evaluate(inst, [0, 0, 0]).cost_usd)
    assert ro.evaluate(inst, sol.option).utility == pytest.approx(0.9 + 0.7 + 0.5)


def test_exact_integer_utilities_break_near_ties():
    # Two plans differ by one ulp of utility; the flow works on exact integers.
    u = 0.3
    v = np.nextafter(u, 1.0)
    inst = ro.Instance(models=[ro.Model("m", 1.0, 0.0, 10_000, (1, 2))], tasks=[ro.Task("t", 100)],
                       query_task=[0, 0], input_tokens=[1, 1], output_tokens=[0, 0],
                       utility=[[u, v], [v, u]])
    one_call = ro.evaluate(inst, [1, 1]).cost_usd
    sol = solve_batching_only(inst, budget_usd=one_call)
    assert sol.option.tolist() == [1, 1]
    sol = solve_batching_only(inst, budget_usd=ro.evaluate(inst, [0, 0]).cost_usd)
    assert sol.info["utility_exact"] == 2 * v


def test_outside_the_special_case_raises_instance_error():
    two_models = ro.Instance(models=[ro.Model("a", 1, 1, 1000, (1, 2)), ro.Model("b", 2, 2, 1000, (1,))],
                             tasks=[ro.Task("t", 10)], query_task=[0, 0], input_tokens=[1, 1],
                             output_tokens=[1, 1], utility=[[0.5, 0.4, 0.9]] * 2)
    with pytest.raises(InstanceError, match="`models`.*2 models"):
        ro.solve(two_models, budget=1.0, method="batching_flow")
    two_tasks = ro.Instance(models=[ro.Model("a", 1, 1, 1000, (1, 2))], tasks=[ro.Task("t", 10), ro.Task("u", 5)],
                            query_task=[0, 1, 0], input_tokens=[1, 1, 1], output_tokens=[1, 1, 1],
                            utility=[[0.5, 0.4]] * 3)
    with pytest.raises(InstanceError, match=r"`query_task\[1\]`"):
        ro.solve(two_tasks, budget=1.0, method="batching_flow")
    # The batching-only baseline of a bigger instance is in the special case.
    plan = ro.solve(two_models.restrict(models=["a"]), budget=1.0, method="batching_flow")
    assert plan.status == ro.Status.OPTIMAL
    with pytest.raises(InstanceError, match="exactly one"):
        solve_batching_only(two_models.restrict(models=["a"]))


def test_time_limit_gives_an_unproven_valid_plan():
    rng = np.random.default_rng(3)
    n = 40
    inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 100_000, (1, 2, 3, 5))], tasks=[ro.Task("t", 500)],
                       query_task=np.zeros(n, int), input_tokens=rng.integers(10, 100, n),
                       output_tokens=rng.integers(0, 50, n), utility=rng.random((n, 4)))
    budget = ro.budget_from_fraction(inst, 0.4)
    sol = solve_batching_only(inst, budget, time_limit_s=1e-9)
    assert not sol.proven_optimal and sol.n_vectors >= 1
    if sol.option is not None:
        assert ro.evaluate(inst, sol.option).cost_usd <= budget
    assert BatchingFlowBackend().available()
    plan = ro.solve(inst, budget, method="batching_flow", time_limit_s=1e-9)
    assert plan.cost_usd <= budget and plan.utility <= plan.upper_bound
    assert plan.upper_bound == pytest.approx(float(inst.utility.max(axis=1).sum()))


def test_enumeration_bound_on_vectors():
    # At most prod_{j < m} (ceil(n / b_j) + 1) vectors are examined (the complexity bound).
    rng = np.random.default_rng(7)
    n, sizes = 12, (1, 2, 4)
    inst = ro.Instance(models=[ro.Model("m", 1.0, 1.0, 100_000, sizes)], tasks=[ro.Task("t", 300)],
                       query_task=np.zeros(n, int), input_tokens=np.full(n, 20), output_tokens=np.full(n, 5),
                       utility=rng.random((n, 3)))
    sol = solve_batching_only(inst, ro.budget_from_fraction(inst, 0.5))
    assert sol.proven_optimal
    assert sol.n_flows <= sol.n_vectors <= math.prod(-(-n // b) + 1 for b in sizes[:-1])


def _audit_instance(n: int) -> ro.Instance:
    """One model, one task, four batch sizes (the new-user audit's case)."""
    rng = np.random.default_rng(0)
    return ro.Instance(models=[ro.Model("Qwen3-8B", price_in=0.025, price_out=0.07, context_window=32768,
                                        batch_sizes=(1, 2, 4, 8))],
                       tasks=[ro.Task("GSM8K", system_tokens=320)], query_task=np.zeros(n, int),
                       input_tokens=rng.integers(20, 200, n).astype(float),
                       output_tokens=rng.integers(5, 50, n).astype(float),
                       utility=np.clip(rng.uniform(.5, .9, (n, 1)) * [[1, .95, .9, .8]], 0, 1))


def test_the_flow_search_is_never_worse_than_the_greedy_and_proves_small_cases():
    """The audit: at n = 25 the enumeration ran its whole 8 s and returned 17.6138 where the
    greedy finds 17.9253 (the optimum). The greedy's plan is now the incumbent, and the
    transportation problems run on OR-Tools' min-cost flow."""
    inst = _audit_instance(25)
    budget = ro.budget_from_fraction(inst, 0.9)
    greedy = ro.solve(inst, budget=budget, method="greedy")
    cut_short = ro.solve(inst, budget=budget, method="batching_flow", time_limit_s=1e-3)
    assert cut_short.utility >= greedy.utility
    proven = ro.solve(inst, budget=budget, method="batching_flow")
    exact = ro.solve(inst, budget=budget, method="milp")
    assert proven.status == ro.Status.OPTIMAL and exact.status == ro.Status.OPTIMAL
    assert proven.utility == pytest.approx(exact.utility, rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_ortools_and_networkx_transportation_agree(seed, monkeypatch):
    """The same transportation optimum (exact integers) from OR-Tools' flow and from networkx's,
    which decides when the weights do not fit OR-Tools' int64 arithmetic."""
    from robatch_opt import special_case as sc

    rng = np.random.default_rng(seed)
    n = 12
    inst = ro.Instance(models=[ro.Model("m", 1.0, 1.0, 10_000, (1, 2, 3, 5))], tasks=[ro.Task("t", 200)],
                       query_task=np.zeros(n, int), input_tokens=rng.integers(10, 100, n),
                       output_tokens=rng.integers(0, 30, n), utility=rng.random((n, 4)))
    s = sc._setting(inst)
    vectors = [np.array(v) for v in itertools.product(range(0, 13, 3), range(0, 7, 2), range(0, 5, 2), range(4))]
    fast = [sc._transport(s, y) for y in vectors]
    monkeypatch.setattr(sc, "_transport_ortools", lambda *args, **kw: (False, None))
    slow = [sc._transport(s, y) for y in vectors]
    assert [None if r is None else r[0] for r in fast] == [None if r is None else r[0] for r in slow]
    assert any(r is not None for r in fast) and any(r is None for r in fast)


@pytest.mark.parametrize("seed", range(6))
def test_huge_denominators_get_the_exact_optimum_without_networkx(seed, monkeypatch):
    """Utilities spread over 2**-60..1 (real 0/1 outcomes times a fitted retention have such
    denominators) make the weights too wide for int64: OR-Tools then runs on rounded weights
    and exchange-cycle canceling makes the assignment exactly optimal. Checked against
    networkx's exact flow, and the canceling alone from a poor start."""
    from robatch_opt import special_case as sc

    rng = np.random.default_rng(100 + seed)
    n = 14
    util = rng.random((n, 4)) * np.exp2(-rng.integers(0, 60, (n, 4)).astype(float))
    inst = ro.Instance(models=[ro.Model("m", 1.0, 1.0, 10_000, (1, 2, 3, 5))], tasks=[ro.Task("t", 200)],
                       query_task=np.zeros(n, int), input_tokens=rng.integers(10, 100, n),
                       output_tokens=rng.integers(0, 30, n), utility=util)
    s = sc._setting(inst)
    assert max(max(row) for row in s.util_int) >= 1 << 62          # the wide path is taken
    vectors = [np.array(v) for v in itertools.product(range(0, 13, 4), range(0, 7, 3), range(0, 5, 2), range(3))]
    fast = [sc._transport(s, y) for y in vectors]
    assert any(r is not None for r in fast)
    # From a poor feasible start (every query on its least useful open size that has room).
    repaired = 0
    for y, r in zip(vectors, fast):
        if r is None:
            continue
        room = np.minimum(s.sizes * y, n)
        open_ = s.adm & (room > 0)[None, :]
        start, left = np.empty(n, np.int64), room.copy()
        for i in range(n):
            order = sorted(np.flatnonzero(open_[i] & (left > 0)), key=lambda j: s.util_int[i][j])
            if not order:
                break
            start[i] = order[0]
            left[order[0]] -= 1
        else:
            best = sc._cancel_exchange_cycles(s.util_int, open_, room, start)
            assert (np.bincount(best, minlength=4) <= room).all() and open_[np.arange(n), best].all()
            assert sum(s.util_int[i][best[i]] for i in range(n)) == r[0]
            repaired += 1
    assert repaired > 0
    monkeypatch.setattr(sc, "_transport_ortools", lambda *args, **kw: (False, None))
    slow = [sc._transport(s, y) for y in vectors]
    assert [None if r is None else r[0] for r in fast] == [None if r is None else r[0] for r in slow]
