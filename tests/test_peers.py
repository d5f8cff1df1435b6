"""The peers' policies: RouteLLM's threshold router, ECCOS's optimizer (= quality form with
capacities, checked against brute force) and ECCOS's local rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt import baselines as B


def _inst(n=40, K=3, seed=0, sizes=(1, 2)):
    rng = np.random.default_rng(seed)
    models = [ro.Model(f"m{k}", price_in=0.1 * 4 ** k, price_out=0.2 * 4 ** k, context_window=100_000,
                       batch_sizes=sizes) for k in range(K)]
    tasks = [ro.Task("a", 50.0), ro.Task("b", 20.0)]
    u0 = np.clip(np.sort(rng.random((n, K)), axis=1) * rng.uniform(0.6, 1.0, (n, 1)), 0, 1)
    return ro.Instance.from_decomposition(models, tasks, rng.integers(0, 2, n), rng.uniform(10, 100, n),
                                          rng.uniform(1, 50, (n, K)), u0, lambda m, b: 1.0 / b ** 0.1)


def test_routellm_threshold_is_a_threshold_rule_that_fits():
    inst = _inst()
    s, w = 2, 0
    cols = [inst.options.index((k, 1)) for k in range(3)]
    cost1 = inst.fixed_cost_usd[inst.query_task] + inst.variable_cost_usd
    lo, hi = cost1[:, w].sum(), cost1[:, s].sum()
    prev = -1
    for frac in np.linspace(0, 1, 7):
        budget = lo + frac * (hi - lo)
        plan = B.routellm_threshold(inst, budget, strong="m2", weak="m0")
        assert plan.cost_usd <= budget * (1 + 1e-12)
        assert set(np.unique(plan.option)) <= {cols[s], cols[w]}
        adv = inst.utility[:, cols[s]] - inst.utility[:, cols[w]]
        strong = plan.option == cols[s]
        if strong.any() and (~strong).any():
            assert adv[strong].min() >= adv[~strong].max()
            # Maximal: the next query by advantage would not fit.
            nxt = np.argmax(np.where(~strong, adv, -np.inf))
            assert plan.cost_usd + cost1[nxt, s] - cost1[nxt, w] > budget
        assert strong.sum() >= prev
        prev = strong.sum()
    assert prev == inst.n_queries
    with pytest.raises(ro.InfeasibleBudgetError):
        B.routellm_threshold(inst, 0.5 * lo, strong="m2", weak="m0")
    assert B.default_strong_weak(inst)[0] == 2


def _brute_min_cost(inst, alpha, caps):
    """Minimum exact cost over every b = 1 assignment meeting mean utility and caps (itertools)."""
    cols = [inst.options.index((k, 1)) for k in range(inst.n_models)]
    best = np.inf
    for assign in itertools.product(range(inst.n_models), repeat=inst.n_queries):
        a = np.array(assign)
        if any((a == k).sum() > c for k, c in enumerate(caps)):
            continue
        opt = np.array(cols)[a]
        ev = ro.evaluate(inst, opt)
        if ev.utility >= alpha * inst.n_queries - 1e-9:
            best = min(best, ev.cost_usd)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eccos_optimizer_is_the_quality_form_with_capacities(seed):
    inst = _inst(n=7, K=3, seed=seed)
    caps = [3, 4, 2]
    cols = [inst.options.index((k, 1)) for k in range(3)]
    top = np.sort(inst.utility[:, cols], axis=1)
    alpha = float(0.5 * (top[:, 0].mean() + top[:, -1].mean()))
    brute = _brute_min_cost(inst, alpha, caps)
    plan = B.eccos_optimizer(inst, alpha, caps=caps, method="milp")
    assert plan.status == ro.Status.OPTIMAL
    assert plan.cost_usd == pytest.approx(brute, rel=1e-9)
    assert (np.bincount(plan.model, minlength=3) <= caps).all()
    assert plan.mean_utility >= alpha - 1e-9


def test_eccos_local_rule():
    inst = _inst(n=60, seed=3)
    cols = [inst.options.index((k, 1)) for k in range(3)]
    util = inst.utility[:, cols]
    cost1 = inst.fixed_cost_usd[inst.query_task] + inst.variable_cost_usd
    alpha = 0.5
    plan = B.eccos_local(inst, alpha)
    k = np.array([cols.index(o) for o in plan.option])
    for i in range(inst.n_queries):
        good = np.flatnonzero(util[i] >= alpha)
        if good.size:
            assert k[i] == good[np.argmin(cost1[i, good])]
        else:
            assert k[i] == np.argmax(util[i])
    capped = B.eccos_local(inst, alpha, caps=[10, None, 5])
    kc = np.array([cols.index(o) for o in capped.option])
    assert (kc == 0).sum() <= 10 and (kc == 2).sum() <= 5
    # Calibrated to a budget: fits, and a slightly larger alpha would not.
    budget = 0.5 * (cost1[:, 0].sum() + cost1[:, 2].sum())
    at = B.eccos_local_at_budget(inst, budget)
    assert at.cost_usd <= budget * (1 + 1e-12)
    assert B.eccos_local(inst, at.parameter).cost_usd == at.cost_usd     # its parameter is accepted back
    assert at.parameter > 1.0 - 1e-6 or B.eccos_local(inst, at.parameter + 1e-6).cost_usd > budget
    with pytest.raises(ro.InfeasibleBudgetError):
        B.eccos_local_at_budget(inst, 0.5 * cost1.min(axis=1).sum())


@pytest.mark.parametrize("call, field", [
    (lambda inst: B.routellm_threshold(inst, float("nan")), "budget"),
    (lambda inst: B.routellm_threshold(inst, -1.0), "budget"),
    (lambda inst: B.routellm_threshold(inst, "1"), "budget"),
    (lambda inst: B.routellm_threshold(inst, 1.0, strong="m0", weak="m0"), "weak"),   # audit
    (lambda inst: B.eccos_local(inst, 1.5), "alpha"),
    (lambda inst: B.eccos_local(inst, float("nan")), "alpha"),
    (lambda inst: B.eccos_local(inst, 0.5, caps=[10, -1, 5]), "caps[1]"),
    (lambda inst: B.eccos_local(inst, 0.5, caps=[10, 2.5, 5]), "caps[1]"),
    (lambda inst: B.eccos_local(inst, 0.5, caps=7), "caps"),
    (lambda inst: B.eccos_local(inst, 0.5, caps={"m1": "x"}), "caps['m1']"),
    (lambda inst: B.eccos_local_at_budget(inst, float("inf")), "budget"),
    (lambda inst: B.eccos_local_at_budget(inst, 1.0, iters=0), "iters"),
])
def test_peers_refuse_bad_parameters_by_name(call, field):
    inst = _inst(n=20, seed=1)
    with pytest.raises(ro.InstanceError) as err:
        call(inst)
    assert err.value.field == field


def test_peers_refuse_what_is_not_an_instance():
    with pytest.raises(ro.InstanceError, match="`inst`: must be a robatch_opt.Instance"):
        B.eccos_local({"models": []}, 0.5)
    # The bisection's top alpha (above every utility) is accepted back; beyond it, refused.
    inst = _inst(n=20, seed=1)
    top = B.eccos_local_at_budget(inst, 1e9)
    assert B.eccos_local(inst, top.parameter).cost_usd == top.cost_usd
    with pytest.raises(ro.InstanceError, match="alpha"):
        B.eccos_local(inst, top.parameter + 1e-6)
