"""Best of the restrictions by construction: the joint plan never loses to its own baselines.

For the greedy, ``auto`` and ``lns``, on small LLM-like instances (Qwen3 / Gemma3 pools,
several tasks, two or three models, batch sizes 1/2/4/8), the joint plan's utility is at
least each restriction's (routing-only, batching-only per model) solved by the same method
at the same budget, and its cost at most theirs at the same target. 200 examples in CI.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import robatch_opt as ro
from robatch_opt.errors import InfeasibleBudgetError, InstanceError

#: The same plan graded on the instance and on a restriction sums its terms in another
#: order: the last bits may differ (the package's tolerance, BUDGET_RTOL).
SUM_RTOL = 1e-12

METHODS = [("greedy", {}), ("auto", {}), ("lns", {"max_iterations": 2, "sub_time_limit_s": 5.0})]


@st.composite
def llm_case(draw):
    pool = draw(st.sampled_from(["qwen3", "gemma3"]))
    n = draw(st.integers(4, 10))
    inst = ro.workloads.llm(pool, n=n, seed=draw(st.integers(0, 10 ** 6)),
                            tasks=draw(st.sampled_from([None, ["GSM8K", "MMLU"], ["MMLU", "BBH", "GSM8K", "MBPP"]])))
    k = draw(st.integers(2, min(3, inst.n_models)))
    keep = sorted(draw(st.lists(st.sampled_from(range(inst.n_models)), min_size=k, max_size=k, unique=True)))
    inst = inst.restrict(models=keep)
    form = draw(st.sampled_from(["budget", "budget", "quality"]))
    frac = draw(st.floats(0.0, 1.0))
    if form == "budget":
        return inst, form, ro.budget_from_fraction(inst, frac)
    t = ro.compile_options(inst)
    lo = float(t.utility[np.arange(n), t.cheapest_option].mean())
    hi = float(np.where(t.admissible, t.utility, -1).max(axis=1).mean())
    return inst, form, lo + frac * (hi - lo)


def _solve(inst, form, value, method, opts):
    kw = dict(budget=value) if form == "budget" else dict(min_mean_utility=value)
    try:
        return ro.solve(inst, method=method, time_limit_s=60, **kw, **opts)
    except InfeasibleBudgetError:
        return None


def _subs(inst):
    out = []
    for kw in [dict(batch_sizes=[1])] + [dict(models=[m.name]) for m in inst.models]:
        try:
            out.append(inst.restrict(**kw))
        except InstanceError:
            continue
    return out


@settings(max_examples=200)
@given(llm_case())
def test_joint_plan_is_at_least_every_restriction_by_the_same_method(case):
    inst, form, value = case
    for method, opts in METHODS:
        joint = _solve(inst, form, value, method, opts)
        assert joint is None or joint.info.get("restriction") is not None or joint.status == ro.Status.OPTIMAL
        for sub in _subs(inst):
            plan = _solve(sub, form, value, method, opts)
            if plan is None:
                continue
            assert joint is not None, (method, "a restriction has a plan, the joint none")
            if form == "budget":
                assert joint.utility >= plan.utility * (1 - SUM_RTOL), (method, joint.utility, plan.utility, joint.info.get("restriction"))
            else:
                assert joint.cost_usd <= plan.cost_usd * (1 + SUM_RTOL), (method, joint.cost_usd, plan.cost_usd)


def test_audit_instance_greedy_not_below_its_batching_only_plan():
    """The audit's case (issue 17): Qwen3 n = 200, budget 0.000762863. The greedy's joint plan
    was 0.657886 while its batching-only plan was 0.667741; the joint is now at least that."""
    inst = ro.workloads.llm("qwen3", n=200, seed=0)
    plan = ro.solve(inst, 0.000762863, method="greedy")
    sub = ro.solve(inst.restrict(models=["Qwen3-4B"]), 0.000762863, method="greedy")
    assert plan.utility >= sub.utility
    assert plan.info["restriction"] is not None


@settings(max_examples=25, deadline=None)
@given(pool=st.sampled_from(["qwen3", "gemma3"]), n=st.integers(20, 60), seed=st.integers(0, 10 ** 6),
       frac=st.floats(0.02, 0.98))
def test_a_screened_out_restriction_cannot_beat_the_joint_plan(pool, n, seed, frac):
    """The Lagrangian screen skips a restriction only when its bound is below the joint plan:
    then not even the restriction's proven optimum beats the plan. A single model without
    batching is screened through the bounds of routing-only and of that model's batching-only
    (it is a subset of both)."""
    from robatch_opt.solvers.restrictions import build_restriction

    inst = ro.workloads.llm(pool, n=n, seed=seed)
    budget = ro.budget_from_fraction(inst, frac)
    plan = ro.solve(inst, budget, method="greedy")
    for label in plan.info.get("restrictions_screened_out", []):
        try:
            sub = build_restriction(inst, label)
            best = ro.solve(sub, budget, method="milp", time_limit_s=30)
        except (InstanceError, InfeasibleBudgetError):
            continue
        assert best.utility <= plan.utility * (1 + SUM_RTOL), (label, best.utility, plan.utility)


@pytest.mark.parametrize("family,models,budget", [
    ("llm_like", None, 0.05), ("llm_like", None, 0.5), ("uncorrelated", None, 0.3),
    ("llm_like", None, 0.999),
    # A survivor: batching-only:m2 is not screened, the pass runs to the last query.
    ("llm_like", [0, 2], 0.9),
    # Two blocks before every restriction is screened.
    ("llm_like", [1, 3], 0.9),
    # A budget at a bin's cumulative cost: the walk takes its whole crossing bin, no break
    # item, lam = 0 with lower bins untaken; L(lam) from the walk would be the LP value, far
    # below sum_i max_j u (it screened out a restriction that beat the joint plan: review).
    ("llm_like", None, 59.69196711780984),
])
def test_the_greedys_lagrangian_is_the_dual_of_its_lp_and_the_early_stop_screens_alike(family, models, budget,
                                                                                       monkeypatch):
    """``info["lagrangian_bound"]``, where the greedy reports it, is ``lam B' + sum_i max_j
    (u - lam c)`` at the threshold price (the LP's value, by duality), and the screen that
    stops after a prefix of the queries skips exactly the restrictions the full pass skips
    (on instances where every restriction can serve every query)."""
    import dataclasses

    from robatch_opt.evaluate import evaluate
    from robatch_opt.solvers import restrictions as R
    from robatch_opt.solvers.base import Problem
    from robatch_opt.solvers.greedy import greedy_plan

    at_boundary = budget >= 1
    inst = ro.workloads.synthetic(n=20_000 if at_boundary else 40_000, family=family, seed=3)
    if models is not None:
        inst = inst.restrict(models=models)
    t = ro.compile_options(inst)
    if budget < 1:
        budget = ro.budget_from_fraction(inst, budget)
    problem = Problem(instance=inst, table=t, budget_usd=float(budget), min_total_utility=None,
                      max_queries=None, time_limit_s=60.0)
    res = greedy_plan(problem)
    lam = res.info["threshold_ratio"]
    adm = t.admissible
    direct = lam * budget * (1 + 1e-12) + np.where(adm, t.utility - lam * np.where(adm, t.cost, 0.0),
                                                   -np.inf).max(axis=1).sum()
    if "lagrangian_bound" in res.info:
        assert res.info["lagrangian_bound"] == pytest.approx(direct, rel=1e-12)
        assert res.info["lagrangian_bound"] <= res.info["lp_bound"] * (1 + 1e-12)
    else:
        assert lam == 0.0 and res.info["lp_bound"] < direct * (1 - 1e-6)
    assert ("lagrangian_bound" not in res.info) == at_boundary

    blocks = []
    terms = R._lagrangian_terms
    monkeypatch.setattr(R, "_lagrangian_terms", lambda *a: blocks.append(a[3:]) or terms(*a))
    ev = evaluate(inst, res.option)
    labels = [label for label in R.restriction_labels(inst) if len(R.restriction_columns(inst, label))]
    early = R._LagrangianScreen(problem, res, ev, labels)
    info = {k: v for k, v in res.info.items() if k != "lagrangian_bound"}
    full = R._LagrangianScreen(problem, dataclasses.replace(res, info=info), ev, labels)
    decisions = [early.cannot_win(label) for label in labels]
    assert decisions == [full.cannot_win(label) for label in labels]
    for label in early.bound:
        # A prefix bound is never below the full pass's (the terms dropped are >= 0).
        assert early.bound[label] >= full.bound[label] - 1e-9 * abs(full.bound[label])
    if models == [0, 2]:
        assert not all(decisions) and blocks[-2][1] == inst.n_queries      # the early pass ran to the end
    if models == [1, 3]:
        assert all(decisions) and len(blocks) == 3                           # two blocks, then the full pass
