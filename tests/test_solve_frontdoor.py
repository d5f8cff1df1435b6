"""The front door: method checked before any work, budgets validated, every answer graded."""

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt.errors import InfeasibleBudgetError, InstanceError, SolverError, UnknownMethodError
from robatch_opt.solvers import SolverResult, register_backend


def small():
    return ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1, 2)), ro.Model("n", 3.0, 6.0, 4096, (1,))],
                       tasks=[ro.Task("t", 500)], query_task=[0, 0, 0],
                       input_tokens=[100, 100, 100], output_tokens=[10, 10, 10],
                       utility=[[0.6, 0.5, 0.9]] * 3)


class FixedBackend:
    """A test backend returning a fixed assignment and bound (to test the grading)."""

    def __init__(self, option, bound, status=ro.Status.FEASIBLE):
        self.option, self.bound, self.status = option, bound, status
        self.name = "fixed"
        self.calls = 0

    def available(self):
        return True

    def solve(self, problem):
        self.calls += 1
        return SolverResult(np.asarray(self.option), self.status, self.bound, {"engine": "fixed"})


def test_unknown_method_fails_before_any_work():
    with pytest.raises(UnknownMethodError, match="valid: auto, greedy"):
        ro.solve("not even an instance", budget=1.0, method="simplex")


def test_budget_and_target_validation():
    inst = small()
    with pytest.raises(InstanceError, match="exactly one"):
        ro.solve(inst, method="greedy")
    with pytest.raises(InstanceError, match="exactly one"):
        ro.solve(inst, 1.0, min_mean_utility=0.5, method="greedy")
    for bad in (float("nan"), -1.0, "lots"):
        with pytest.raises(InstanceError, match="`budget`"):
            ro.solve(inst, bad, method="greedy")
    with pytest.raises(InstanceError, match="`min_mean_utility`"):
        ro.solve(inst, min_mean_utility=1.5, method="greedy")
    with pytest.raises(InstanceError, match="`time_limit_s`"):
        ro.solve(inst, 1.0, method="greedy", time_limit_s=0)


def test_budget_below_every_plan_carries_cheapest_cost():
    inst = small()
    cheapest, _ = ro.reference_costs(inst)
    with pytest.raises(InfeasibleBudgetError) as err:
        ro.solve(inst, budget=1e-9, method="greedy")
    assert err.value.proven
    assert err.value.cheapest_cost_usd == pytest.approx(cheapest)
    assert err.value.lower_bound_usd <= cheapest
    with pytest.raises(InfeasibleBudgetError, match="best attainable"):
        ro.solve(inst, min_mean_utility=0.95, method="greedy")


def test_plan_is_graded_by_evaluate_not_by_backend():
    inst = small()
    backend = FixedBackend([2, 0, 0], bound=2.5)
    register_backend("fixed_ok", lambda: backend)
    plan = ro.solve(inst, budget=1.0, method="fixed_ok")
    ev = ro.evaluate(inst, [2, 0, 0])
    assert plan.cost_usd == ev.cost_usd and plan.utility == ev.utility
    assert plan.upper_bound == 2.5 and plan.gap == pytest.approx((2.5 - 2.1) / 2.5)
    assert plan.status == ro.Status.FEASIBLE and plan.method == "fixed_ok"
    np.testing.assert_array_equal(plan.model, [1, 0, 0])
    np.testing.assert_array_equal(plan.batch_size, [1, 1, 1])
    # A bound that the plan meets proves optimality.
    register_backend("fixed_tight", lambda: FixedBackend([2, 0, 0], bound=ev.utility))
    assert ro.solve(inst, budget=1.0, method="fixed_tight").status == ro.Status.OPTIMAL


def test_backend_over_budget_or_invalid_is_caught():
    inst = small()
    register_backend("over", lambda: FixedBackend([2, 2, 2], bound=3.0))
    with pytest.raises(SolverError, match="exceeded the budget"):
        ro.solve(inst, budget=ro.evaluate(inst, [2, 2, 2]).cost_usd * 0.99, method="over")
    register_backend("broken", lambda: FixedBackend([9, 0, 0], bound=3.0))
    with pytest.raises(SolverError, match="invalid assignment"):
        ro.solve(inst, budget=1.0, method="broken")


def test_capacity_validation():
    inst = small()
    with pytest.raises(InstanceError, match="one entry per model"):
        ro.solve(inst, 1.0, method="greedy", max_queries_per_model=[1])
    with pytest.raises(InfeasibleBudgetError, match="capacities sum"):
        ro.solve(inst, 1.0, method="greedy", max_queries_per_model={"m": 1, "n": 1})
    register_backend("cap", lambda: FixedBackend([2, 2, 0], bound=3.0))
    with pytest.raises(SolverError, match="capacity"):
        ro.solve(inst, 1.0, method="cap", max_queries_per_model={"n": 1})


def test_plan_json_round_trip():
    inst = small()
    register_backend("fixed_json", lambda: FixedBackend([2, 1, 1], bound=2.5))
    plan = ro.solve(inst, budget=1.0, method="fixed_json")
    back = ro.Plan.from_json(plan.to_json())
    for name in ("cost_usd", "utility", "upper_bound", "gap", "status", "method", "budget_usd", "n_calls",
                 "breakdown", "options", "model_names"):
        assert getattr(back, name) == getattr(plan, name), name
    np.testing.assert_array_equal(back.option, plan.option)
    assert [c.query_ids.tolist() for c in back.calls] == [c.query_ids.tolist() for c in plan.calls]
    assert "mean utility" in plan.summary()
    # Written without timings, the plan read back has no wall time: its summary says nothing of it.
    assert "nan" not in back.summary() and f"({plan.method})" in back.summary()
    assert " s)" in plan.summary()


@pytest.mark.parametrize("text", ["", "{", '{"format": "robatch_opt.plan/1"', "[1, 2]",
                                  '{"format": "something else"}', '{"format": "robatch_opt.plan/1"}'])
def test_plan_from_bad_json(text):
    with pytest.raises(ro.FormatError):
        ro.Plan.from_json(text)


# ------------------------------------------------ backend options (issue 12, item 5)
def _no_work(monkeypatch):
    """Make any work past the front door's checks fail loudly."""
    import importlib

    front = importlib.import_module("robatch_opt.solve")     # the module, not ro.solve

    def boom(*a, **k):
        raise AssertionError("work started before the options were checked")
    monkeypatch.setattr(front, "compile_options", boom)


@pytest.mark.parametrize("method", [m for m in ro.registered_methods() if m != "auto"])
def test_every_backend_refuses_an_unknown_option_before_any_work(method, monkeypatch):
    from robatch_opt.solvers import get_backend

    inst = ro.workloads.synthetic(n=6, seed=0)
    _no_work(monkeypatch)
    declared = sorted(get_backend(method).options)
    with pytest.raises(ro.UnknownOptionError) as err:
        ro.solve(inst, 1.0, method=method, colour="blue")
    msg = str(err.value)
    assert "colour" in msg and method in msg
    assert f"its options: {', '.join(declared) or 'none'}" in msg
    # a close misspelling of a front-door argument is suggested
    with pytest.raises(ro.UnknownOptionError, match="did you mean 'time_limit_s'"):
        ro.solve(inst, 1.0, method=method, time_limit=5)


@pytest.mark.parametrize("method, options, match", [
    ("cpsat", {"workers": 0}, "`workers`: must be >= 1"),
    ("cpsat", {"workers": "2"}, "`workers`: method 'cpsat' expects int"),
    ("cpsat", {"hint": 1}, "`hint`: method 'cpsat' expects bool"),
    ("milp", {"solver": "gurobi"}, "unknown value 'gurobi'.*valid: highs, cbc"),
    ("milp", {"count_cuts": "no"}, "`count_cuts`: method 'milp' expects bool"),
    ("greedy", {"solver": "highs"}, "method 'greedy' has no option 'solver'.*its options: none"),
    ("auto", {"solver": "cbc"}, "method 'auto' takes no engine options"),
])
def test_option_values_and_auto_are_checked_before_any_work(method, options, match, monkeypatch):
    inst = ro.workloads.synthetic(n=6, seed=0)
    _no_work(monkeypatch)
    with pytest.raises(ro.UnknownOptionError, match=match):
        ro.solve(inst, 1.0, method=method, **options)


def test_front_door_checks_the_instance_before_auto_looks_at_it():
    with pytest.raises(ro.InstanceError, match="`instance`: must be a robatch_opt.Instance, got dict"):
        ro.solve({"a": 1}, budget=1.0)


@pytest.mark.parametrize("kw, match", [
    ({"max_queries_per_model": ["2", None]}, r"max_queries_per_model\['m0'\].*integer >= 0 or None, got a string '2'"),
    ({"max_queries_per_model": [True, None]}, r"got a boolean \(true\)"),
    ({"max_queries_per_model": [1.5, None]}, r"got 1.5"),
    ({"max_queries_per_model": 3}, r"must be a sequence"),
    ({"time_limit_s": "5"}, r"`time_limit_s`: must be a number, got a string '5'"),
    ({"seed": 1.5}, r"`seed`: must be an integer"),
    ({"seed": -1}, r"`seed`: must be >= 0, got -1"),                      # as the CLI (new-user audit)
    ({"max_queries_per_model": {"m_1": 1}}, r"`max_queries_per_model\['m_1'\]`: unknown model; known: "
                                           r"\['m0', 'm1'\] \(did you mean `m1`\?\)"),
])
def test_front_door_arguments_are_typed(kw, match):
    inst = ro.workloads.synthetic(n=6, seed=0)
    inst = ro.Instance(models=[ro.Model("m0", 0.1, 0.2, 4096, (1,)), ro.Model("m1", 1.0, 2.0, 4096, (1,))],
                       tasks=[ro.Task("t", 10)], query_task=[0, 0], input_tokens=[10, 10],
                       output_tokens=[5, 5], utility=[[0.5, 0.9], [0.5, 0.9]])
    with pytest.raises(ro.InstanceError, match=match):
        ro.solve(inst, 1.0, method="greedy", **kw)


def test_budget_must_be_a_number():
    inst = ro.workloads.synthetic(n=6, seed=0)
    with pytest.raises(ro.InstanceError, match="`budget`: must be a number, got a string '1.0'"):
        ro.solve(inst, "1.0", method="greedy")
    with pytest.raises(ro.InstanceError, match=r"`budget`: must be a number, got a boolean \(true\)"):
        ro.solve(inst, True, method="greedy")


def test_cpsat_model_building_stops_at_the_time_limit():
    """Issue 12, item 7: the limit covers building; a build cut short returns the greedy's plan."""
    inst = ro.workloads.llm(pool="qwen3", n=30_000, seed=0)
    plan = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.3), method="cpsat", time_limit_s=2.0)
    assert plan.status == ro.Status.FEASIBLE
    assert plan.info.get("cpsat_status") == "time limit reached while building"
    assert plan.cost_usd <= plan.budget_usd * (1 + 1e-12) and plan.utility <= plan.upper_bound


@pytest.mark.parametrize("bound", [float("inf"), float("nan")])
def test_a_backend_without_a_bound_gets_the_trivial_one(bound):
    # A user's backend may have no bound (inf, NaN); the plan must still carry a valid,
    # finite one (else its own file reads back with a NaN gap that `evaluate` calls false).
    inst = small()
    register_backend("fixed_nobound", lambda: FixedBackend([2, 1, 1], bound=bound))
    plan = ro.solve(inst, budget=1.0, method="fixed_nobound")
    best = np.where(inst.admissible, inst.utility, -np.inf).max(axis=1).sum()
    assert plan.upper_bound == pytest.approx(best) and 0 <= plan.gap <= 1
    assert ro.Plan.from_json(plan.to_json()).gap == plan.gap
    target = ro.evaluate(inst, [2, 1, 1]).mean_utility
    q = ro.solve(inst, min_mean_utility=target, method="fixed_nobound")
    # The trivial lower bound: no plan costs less than every query on its cheapest option.
    assert 0 < q.cost_lower_bound_usd <= ro.reference_costs(inst)[0] <= q.cost_usd and 0 <= q.gap <= 1


def test_a_plan_cut_short_by_the_time_limit_says_so():
    """New-user audit: a time-limited run showed only "status feasible (milp, 1.022 s)"; the
    engines' own words for it sit in different info keys, or nowhere (CP-SAT, lns). CP-SAT
    cannot prove 2,000 LLM queries in a second (it does not prove 1,000 in a minute)."""
    inst = ro.workloads.llm("qwen3", n=2000, seed=1)
    plan = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.2), method="cpsat", time_limit_s=1.0)
    assert plan.status == ro.Status.FEASIBLE and plan.info["time_limit_reached"] is True
    assert "stopped at the time limit" in plan.summary()
    quick = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.2), method="greedy", time_limit_s=30)
    assert "time_limit_reached" not in quick.info and "time limit" not in quick.summary()


def test_capacity_keys_may_be_indices_and_a_quality_form_without_a_plan_is_an_infeasible_error():
    """Review of this change: integer model keys were refused, and the quality form's "no plan"
    message formatted a missing budget (TypeError instead of InfeasibleBudgetError)."""
    inst = ro.workloads.synthetic(n=8, seed=0)
    assert ro.solve(inst, budget=1.0, method="greedy", max_queries_per_model={0: 8}).cost_usd <= 1.0
    with pytest.raises(InfeasibleBudgetError, match="no plan meets mean utility 0.9583"):
        ro.solve(inst, min_mean_utility=0.9583, method="milp",
                 max_queries_per_model={"m0": 8, "m1": 0, "m2": 0, "m3": 0})
