"""Baselines are restrictions of the joint instance: their plans are joint plans, so the joint optimum dominates."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import robatch_opt as ro
from robatch_opt import baselines as bl
from robatch_opt.errors import InstanceError
from reference import brute_force
from strategies import instances

N_RESTRICTION = 200


def _lift(inst, sub, option):
    """Map a sub-instance assignment to the joint instance's option indices (by model name and b)."""
    names = [m.name for m in inst.models]
    lifted = [inst.options.index((names.index(sub.models[k].name), b)) for k, b in (sub.options[j] for j in option)]
    return np.asarray(lifted, dtype=np.int64)


@settings(max_examples=N_RESTRICTION)
@given(instances(max_queries=5, max_models=3, max_options=5), st.floats(0, 1.2))
def test_restrictions_are_joint_plans_and_joint_dominates(inst, fraction):
    """Every baseline plan is a joint plan of the same exact cost and utility; brute force orders the optima."""
    budget = ro.budget_from_fraction(inst, fraction)
    joint = brute_force(inst, budget=budget)
    subs = []
    try:
        subs.append(bl.routing_only(inst))
        assert all(b == 1 for _, b in subs[-1].options)
    except InstanceError:
        pass                                   # no model allows b = 1 for every query
    subs.extend(bl.single_model_instances(inst, batching=True).values())
    subs.extend(bl.single_model_instances(inst, batching=False).values())
    for sub in subs:
        best = brute_force(sub, budget=budget)
        assert best[0] <= joint[0] + 1e-9
        if math.isfinite(best[0]):
            lifted = _lift(inst, sub, best[1])
            ev_sub, ev_joint = ro.evaluate(sub, best[1]), ro.evaluate(inst, lifted)
            assert ev_joint.cost_usd == pytest.approx(ev_sub.cost_usd, rel=1e-12, abs=1e-15)
            assert ev_joint.utility == pytest.approx(ev_sub.utility, rel=1e-12, abs=1e-12)


def _llm():
    return ro.workloads.llm("gemma3", n=120, seed=3)


def test_single_model_plans_are_graded_by_evaluate():
    inst = _llm()
    plans = bl.single_model_plans(inst)
    assert [p.cost_usd for p in plans] == sorted(p.cost_usd for p in plans)
    for p in plans:
        sub = bl.single_model(inst, p.model, batching=False)
        assert sub.options == ((0, 1),)
        ev = ro.evaluate(sub, np.zeros(inst.n_queries, np.int64))
        assert (ev.cost_usd, ev.mean_utility) == (p.cost_usd, p.mean_utility)


def test_single_model_that_cannot_serve_everyone_is_skipped():
    inst = ro.Instance(models=[ro.Model("short", 0.1, 0.1, 400, (1,)), ro.Model("long", 1.0, 1.0, 4000, (1, 2))],
                       tasks=[ro.Task("t", 100)], query_task=[0, 0], input_tokens=[100, 1000],
                       output_tokens=[10, 10], utility=[[0.5, 0.9, 0.8], [0.5, 0.9, 0.8]])
    assert list(bl.single_model_instances(inst)) == ["long"]
    with pytest.raises(InstanceError, match="query"):
        bl.single_model(inst, "short")
    with pytest.raises(InstanceError, match="unknown model"):
        bl.single_model(inst, "nope")
    with pytest.raises(InstanceError, match="strategy"):
        bl.cost_to_reach(inst, 0.5, "nope")


def test_batching_only_is_the_best_model_per_budget():
    inst = _llm()
    budgets = ro.frontier(inst, points=6).budget_usd
    fr = bl.batching_only_frontier(inst, budgets)
    per_model = {name: ro.frontier(sub, budgets) for name, sub in bl.single_model_instances(inst).items()}
    for p in range(len(budgets)):
        feas = [f.utility[p] for f in per_model.values() if f.feasible[p]]
        if not feas:
            assert fr.status[p] == "infeasible" and fr.info["model"][p] is None
            continue
        assert fr.utility[p] == max(feas)
        assert per_model[fr.info["model"][p]].utility[p] == fr.utility[p]
        assert fr.upper_bound[p] == max(f.upper_bound[p] for f in per_model.values() if f.feasible[p])
        assert fr.utility[p] <= fr.upper_bound[p]


def test_cost_to_reach_meets_the_target_and_its_bound():
    inst = _llm()
    ref = max(p.mean_utility for p in bl.single_model_plans(inst))
    for strategy in ("joint", "routing-only", "batching-only", "single-model"):
        cost, lb = bl.cost_to_reach(inst, 0.95 * ref, strategy)
        assert math.isfinite(cost) and lb <= cost * (1 + 1e-12)
    single_cost, _ = bl.cost_to_reach(inst, ref, "single-model")
    assert single_cost == min(p.cost_usd for p in bl.single_model_plans(inst) if p.mean_utility >= ref)
    assert bl.cost_to_reach(inst, 1.0, "single-model") == (math.inf, math.inf)


def test_compare_strategies_with_the_exact_engine():
    """With CP-SAT every point is optimal, so the joint curve is at or above both baselines everywhere."""
    if "cpsat" not in ro.available_methods():
        pytest.skip("cpsat backend not available")
    inst = ro.workloads.llm("gemma3", n=10, seed=1, tasks=["GSM8K", "MMLU"])
    cmp = bl.compare_strategies(inst, points=3, method="cpsat", time_limit_s=20.0, progress=False)
    assert set(cmp.frontiers) == set(bl.STRATEGIES)
    assert cmp.dominance == {"routing-only": [], "batching-only": []}
    for row in cmp.matched:
        assert row["joint"] <= row["routing-only"] * (1 + 1e-9)
        assert row["joint"] <= row["batching-only"] * (1 + 1e-9)
        assert row["joint"] <= row["single-model"] * (1 + 1e-9)
        assert 0.0 <= row["joint-saving-vs-single-model"] < 1.0
    assert cmp.reference_model == max(cmp.single_models, key=lambda p: p.mean_utility).model


def test_compare_strategies_greedy_reports_dips_honestly():
    inst = _llm()
    cmp = bl.compare_strategies(inst, points=5)
    joint = cmp.frontiers["joint"]
    for s, below in cmp.dominance.items():
        base = cmp.frontiers[s]
        expected = [p for p in range(len(joint)) if base.feasible[p]
                    and not joint.utility[p] >= base.utility[p] - 1e-9 * max(1.0, base.utility[p])]
        assert below == expected
