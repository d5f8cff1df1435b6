"""``method="lns"``: valid plans and bounds, never below the greedy, exact sub-problems, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import robatch_opt as ro
from robatch_opt.evaluate import within_budget
from robatch_opt.solvers.base import Problem
from robatch_opt.solvers.lns import _subproblem

from bruteforce import brute_force
from strategies import instance_and_budget

LNS = dict(method="lns", time_limit_s=60, max_iterations=4, sub_time_limit_s=5.0)


@settings(max_examples=40)
@given(instance_and_budget(max_queries=6))
def test_lns_plan_is_feasible_not_below_greedy_and_its_bound_holds(data):
    inst, budget = data
    bf = brute_force(inst, budget_usd=budget)
    if bf.option is None:
        return
    plan = ro.solve(inst, budget, **LNS)
    greedy = ro.solve(inst, budget, method="greedy")
    assert within_budget(ro.evaluate(inst, plan.option).cost_usd, budget)
    assert plan.utility >= greedy.utility
    assert plan.upper_bound >= bf.utility * (1 - 1e-12)


def test_min_search_s_keeps_searching_past_stop_gap():
    # stop_gap = 1 ends the search before its first neighbourhood; min_search_s postpones that
    # rule (here past the iteration limit), but never the end at a proof of optimality.
    inst = ro.workloads.llm("qwen3", n=120, seed=3)
    budget = ro.budget_from_fraction(inst, 0.4)
    opts = dict(method="lns", time_limit_s=60, max_iterations=3, lp_bound=False, whole=False, stop_gap=1.0)
    quick = ro.solve(inst, budget, **opts)
    assert quick.gap > 1e-9                      # not proved by the greedy's bound alone
    assert quick.info["iterations"] == 0
    longer = ro.solve(inst, budget, min_search_s=1e6, **opts)
    assert longer.info["iterations"] == 3
    assert longer.utility >= quick.utility


def test_subproblem_splits_the_exact_cost():
    """Fixed queries filling whole calls leave the sub-problem; its exact cost plus the
    constant is the plan's exact cost, for the current plan and for a changed one."""
    inst = ro.workloads.llm("qwen3", n=120, seed=3)
    table = ro.compile_options(inst)
    budget = ro.budget_from_fraction(inst, 0.4)
    plan = ro.solve(inst, budget, method="greedy")
    problem = Problem(instance=inst, table=table, budget_usd=budget, min_total_utility=None,
                      max_queries=None, time_limit_s=10)
    rng = np.random.default_rng(0)
    free = np.sort(rng.choice(inst.n_queries, size=30, replace=False))
    sub, rows, hint = _subproblem(problem, plan.option, free)
    const = budget - sub.budget_usd
    sub_inst_cost = _exact(sub.table, hint)
    assert const + sub_inst_cost == pytest.approx(plan.cost_usd, rel=1e-12)
    changed = hint.copy()
    changed[: len(free)] = table.cheapest_option[rows[: len(free)]]
    full = plan.option.copy()
    full[rows] = changed
    assert const + _exact(sub.table, changed) == pytest.approx(ro.evaluate(inst, full).cost_usd, rel=1e-12)


def _exact(table, option):
    J = table.n_options
    counts = np.bincount(table.query_task * J + option, minlength=table.n_tasks * J)
    calls = -(-counts // table.group_batch)
    var = table.variable_cost[np.arange(len(option)), table.option_model[option]]
    return float((calls * table.group_fixed_cost).sum() + var.sum())


def test_same_seed_same_plan_and_at_least_the_greedy():
    inst = ro.workloads.llm("gemma3", n=150, seed=2)
    budget = ro.budget_from_fraction(inst, 0.2)
    a = ro.solve(inst, budget, seed=7, **LNS)
    b = ro.solve(inst, budget, seed=7, **LNS)
    np.testing.assert_array_equal(a.option, b.option)
    assert a.utility >= ro.solve(inst, budget, method="greedy").utility
    assert a.info["iterations"] == 4


def test_with_max_iterations_the_neighbourhoods_do_not_depend_on_the_machine_speed(monkeypatch):
    """max_iterations promises a plan that depends on the input and the seed alone, but the
    neighbourhoods grew or shrank with how fast each was solved: three runs of 40 gave two
    different plans. Here one run's solves are made slow; the neighbourhoods drawn must not
    change."""
    import time

    from robatch_opt.solvers import lns

    inst = ro.workloads.llm("gemma3", n=150, seed=2)
    budget = ro.budget_from_fraction(inst, 0.2)
    drawn: list[int] = []
    real_draw = lns._Neighbourhoods.draw

    def recording_draw(self, opt):
        kind, free = real_draw(self, opt)
        drawn.append(len(free))
        return kind, free

    monkeypatch.setattr(lns._Neighbourhoods, "draw", recording_draw)
    kw = dict(method="lns", time_limit_s=60, max_iterations=5, sub_time_limit_s=1.0, whole=False)
    ro.solve(inst, budget, **kw)
    fast, drawn[:] = list(drawn), []
    real_solve = lns._solve_sub

    def slow_solve(*args):
        time.sleep(0.6)                   # more than half the neighbourhood's limit: "slow"
        return real_solve(*args)

    monkeypatch.setattr(lns, "_solve_sub", slow_solve)
    ro.solve(inst, budget, **kw)
    assert len(fast) >= 5 and drawn == fast          # (the restrictions run lns too)


def test_bad_options_are_refused():
    inst = ro.workloads.llm("qwen3", n=20, seed=0)
    budget = ro.budget_from_fraction(inst, 0.5)
    with pytest.raises(ro.UnknownOptionError, match="valid: highs, cpsat"):
        ro.solve(inst, budget, method="lns", engine="gurobi")
    with pytest.raises(ro.UnknownOptionError, match="its options: engine, lp_bound, max_free"):
        ro.solve(inst, budget, method="lns", nonsense=1)
    with pytest.raises(ro.UnknownOptionError, match="`max_free`: must be >= 1"):
        ro.solve(inst, budget, method="lns", max_free=0)
    # NaN passed the minimum test (the audit); inf is no setting either.
    with pytest.raises(ro.UnknownOptionError, match="`stop_gap`: must be a finite number, got nan"):
        ro.solve(inst, budget, method="lns", stop_gap=float("nan"))
    with pytest.raises(ro.UnknownOptionError, match="`sub_time_limit_s`: must be a finite number, got inf"):
        ro.solve(inst, budget, method="lns", sub_time_limit_s=float("inf"))


@pytest.mark.parametrize("seed", [1, 2])
def test_whole_model_engine_beside_the_search_proves_a_small_instance(seed):
    """With ``whole`` (the default) HiGHS runs on the whole model in a child process: on an
    instance it proves in well under a second, lns ends with the proven optimum and stops
    searching at once (a gap within 1e-9 is a proof), and the child's bound is valid."""
    inst = ro.workloads.llm("qwen3", n=60, seed=seed)
    budget = ro.budget_from_fraction(inst, 0.3)
    exact = ro.solve(inst, budget, method="milp", time_limit_s=60)
    assert exact.status is ro.Status.OPTIMAL
    plan = ro.solve(inst, budget, method="lns", time_limit_s=60)
    assert plan.info["whole_status"] == "optimal"
    assert plan.status is ro.Status.OPTIMAL
    assert within_budget(ro.evaluate(inst, plan.option).cost_usd, budget)
    assert plan.utility == pytest.approx(exact.utility, rel=1e-9)
    assert plan.upper_bound >= exact.utility * (1 - 1e-12)
    assert plan.info["lns_s"] < 60          # it stopped on the proof, not on the limit
    off = ro.solve(inst, budget, method="lns", time_limit_s=60, whole=False, max_iterations=3)
    assert "whole_status" not in off.info


def test_whole_model_job_leaves_no_process_or_file_behind():
    """Leaving the job's block by an error (as an interrupt would) kills the child and
    removes its temporary folder."""
    import os
    import time

    from robatch_opt.solvers._whole_model import WholeModelJob

    inst = ro.workloads.llm("qwen3", n=300, seed=0)
    budget = ro.budget_from_fraction(inst, 0.1)
    greedy = ro.solve(inst, budget, method="greedy")
    problem = Problem(instance=inst, table=ro.compile_options(inst), budget_usd=budget,
                      min_total_utility=None, max_queries=None, time_limit_s=60)
    with pytest.raises(RuntimeError, match="stop"):
        with WholeModelJob(problem, greedy.option, greedy.upper_bound, time.time() + 60) as job:
            pid, folder = job._child.pid, job._tmp.name
            assert os.path.isdir(folder) and job.poll() is None
            raise RuntimeError("stop")
    assert not os.path.exists(folder)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)                      # killed and reaped


def test_progress_reports_the_whole_plan_not_a_neighbourhood():
    # The neighbourhoods' own incumbents reached the caller's display (35.6 where the plan
    # had utility 1,515); only the whole plan's value and bound may be reported.
    inst = ro.workloads.llm(pool="qwen3", n=300, seed=1)
    budget = ro.budget_from_fraction(inst, 0.3)
    seen = []
    plan = ro.solve(inst, budget=budget, method="lns", time_limit_s=3, whole=False, progress=seen.append)
    greedy = ro.solve(inst, budget=budget, method="greedy")
    assert seen, "lns reported no progress"
    values = [p.incumbent for p in seen]
    assert values == sorted(values)                                  # the incumbent only improves
    assert min(values) >= greedy.utility * (1 - 1e-12) and max(values) <= plan.utility * (1 + 1e-12)
    assert all(p.bound is not None and p.bound >= plan.utility * (1 - 1e-12) for p in seen)
