"""The shared evaluator: exact cost by hand, call packing, rejection of bad assignments."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import robatch_opt as ro
from robatch_opt.errors import AssignmentError
from strategies import instances


def two_model_instance():
    models = [ro.Model("cheap", 0.5, 1.0, 10_000, (1, 3)), ro.Model("good", 4.0, 8.0, 10_000, (1,))]
    tasks = [ro.Task("qa", 600), ro.Task("math", 200)]
    return ro.Instance(models=models, tasks=tasks, query_task=[0, 0, 0, 0, 1],
                       input_tokens=[100, 200, 300, 400, 50], output_tokens=[[10, 20]] * 5,
                       utility=[[0.5, 0.4, 0.9]] * 5)


def test_exact_cost_by_hand():
    inst = two_model_instance()
    # queries 0..3 (task qa) on (cheap, b=3): ceil(4/3) = 2 calls; query 4 (math) on (good, 1).
    ev = ro.evaluate(inst, [1, 1, 1, 1, 2])
    system = 2 * 600 * 0.5 / 1e6 + 1 * 200 * 4.0 / 1e6
    inp = (100 + 200 + 300 + 400) * 0.5 / 1e6 + 50 * 4.0 / 1e6
    out = 4 * 10 * 1.0 / 1e6 + 20 * 8.0 / 1e6
    assert ev.n_calls == 3
    assert math.isclose(ev.breakdown.system_usd, system, rel_tol=1e-12)
    assert math.isclose(ev.breakdown.input_usd, inp, rel_tol=1e-12)
    assert math.isclose(ev.breakdown.output_usd, out, rel_tol=1e-12)
    assert math.isclose(ev.cost_usd, system + inp + out, rel_tol=1e-12)
    assert math.isclose(ev.utility, 4 * 0.4 + 0.9, rel_tol=1e-12)
    assert math.isclose(ev.mean_utility, ev.utility / 5)
    # Amortized cost charges 4/3 calls instead of 2: strictly below the exact cost, by less than one call.
    assert ev.amortized_cost_usd < ev.cost_usd < ev.amortized_cost_usd + 600 * 0.5 / 1e6
    np.testing.assert_array_equal(ev.model_usage(), [4, 1])


def test_calls_full_first_then_partial():
    inst = two_model_instance()
    calls = list(ro.evaluate(inst, [1, 1, 1, 1, 2]).calls)
    assert [(c.task, c.model, c.batch_size, c.query_ids.tolist()) for c in calls] == [
        (0, 0, 3, [0, 1, 2]), (0, 0, 3, [3]), (1, 1, 1, [4])]


@pytest.mark.parametrize("option, field", [
    ([0, 0, 0, 0], "option"),
    ([0, 0, 0, 0, 3], "option[4]"),
    ([0, 0, -1, 0, 0], "option[2]"),
    ([0, 0.5, 0, 0, 0], "option[1]"),
    ([0, np.nan, 0, 0, 0], "option[1]"),
])
def test_bad_assignments(option, field):
    with pytest.raises(AssignmentError) as err:
        ro.evaluate(two_model_instance(), option)
    assert err.value.field == field


def test_inadmissible_option_is_named():
    models = [ro.Model("m", 1.0, 1.0, 500, (1, 4))]
    inst = ro.Instance(models=models, tasks=[ro.Task("t", 100)], query_task=[0, 0],
                       input_tokens=[10, 200], output_tokens=[10, 10], utility=[[0.5, 0.5]] * 2)
    assert inst.admissible.tolist() == [[True, True], [True, False]]
    with pytest.raises(AssignmentError, match="does not fit query 1"):
        ro.evaluate(inst, [1, 1])


@settings(max_examples=150)
@given(data=st.data())
def test_calls_cover_every_query_once_and_respect_b_and_task(data):
    inst = data.draw(instances(max_queries=12, max_options=6))
    adm = inst.admissible
    option = [data.draw(st.sampled_from(np.flatnonzero(adm[i]).tolist())) for i in range(inst.n_queries)]
    ev = ro.evaluate(inst, option)
    seen = np.concatenate([c.query_ids for c in ev.calls])
    assert sorted(seen.tolist()) == list(range(inst.n_queries))
    for c in ev.calls:
        assert 1 <= len(c.query_ids) <= c.batch_size
        assert all(inst.query_task[q] == c.task for q in c.query_ids)
        assert all(inst.options[option[q]] == (c.model, c.batch_size) for q in c.query_ids)
    assert len(ev.calls) == ev.n_calls
    # Exact cost recomputed call by call equals the vectorised one.
    fixed = sum(inst.fixed_cost_usd[c.task, c.model] for c in ev.calls)
    var = sum(inst.variable_cost_usd[i, inst.options[option[i]][0]] for i in range(inst.n_queries))
    assert math.isclose(ev.cost_usd, fixed + var, rel_tol=1e-9, abs_tol=1e-15)
    assert ev.amortized_cost_usd <= ev.cost_usd * (1 + 1e-12) + 1e-15


def test_evaluate_grades_a_plan_by_its_assignment():
    """``ro.evaluate(inst, plan)`` (it said "got Plan": audit) equals grading ``plan.option``."""
    inst = ro.workloads.llm("qwen3", n=40, seed=2)
    plan = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.3), method="greedy")
    a, b = ro.evaluate(inst, plan), ro.evaluate(inst, plan.option)
    assert (a.cost_usd, a.utility, a.n_calls) == (b.cost_usd, b.utility, b.n_calls)
    with pytest.raises(ro.AssignmentError, match=r"must have shape \(30,\)"):
        ro.evaluate(ro.workloads.llm("qwen3", n=30, seed=2), plan)
