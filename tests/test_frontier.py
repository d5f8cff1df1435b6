"""ro.frontier: the greedy's shared walk equals the greedy solved budget by budget; tables, errors, plots."""

import io
import json
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import robatch_opt as ro
from robatch_opt.errors import InstanceError, UnknownMethodError
from robatch_opt.frontier import Frontier, ProgressBar, frontier, frontier_budgets, plot_frontiers
from strategies import instances

N_SHARED_WALK = 100


@settings(max_examples=N_SHARED_WALK)
@given(instances(max_queries=9, max_tasks=3), st.integers(1, 4),
       st.lists(st.floats(0, 1.3), min_size=0, max_size=2))
def test_shared_walk_points_are_graded_greedy_plans(inst, points, extra_fractions):
    """Every point of the one-walk sweep fits its budget, is graded by evaluate, and carries the greedy's LP bound."""
    budgets = list(frontier_budgets(inst, points)) + [ro.budget_from_fraction(inst, f) for f in extra_fractions]
    fr = frontier(inst, budgets, method="greedy", keep_plans=True)
    assert fr.info["sweep"] == "shared-walk"
    assert np.all(np.diff(fr.budget_usd) >= 0)
    assert np.all(np.diff(fr.upper_bound) >= -1e-9)                 # the LP bound rises with the budget
    for p, b in enumerate(fr.budget_usd):
        plan = ro.solve(inst, budget=float(b), method="greedy")
        ev = ro.evaluate(inst, fr.plans[p].option)
        assert fr.cost_usd[p] == pytest.approx(ev.cost_usd, rel=1e-12, abs=1e-15)
        assert fr.utility[p] == pytest.approx(ev.utility, rel=1e-12, abs=1e-12)
        assert fr.cost_usd[p] <= b * (1 + 1e-12) + 1e-15
        assert fr.utility[p] <= fr.upper_bound[p]
        # The same LP relaxation bounds both: the walk and the solver agree on it.
        assert fr.upper_bound[p] == pytest.approx(plan.upper_bound, rel=1e-9, abs=1e-12)
        assert plan.utility <= fr.upper_bound[p] * (1 + 1e-9) + 1e-12


@settings(max_examples=40)
@given(instances(max_queries=7, max_tasks=2), st.integers(1, 3))
def test_per_budget_greedy_sweep_is_solve(inst, points):
    fr = frontier(inst, points=points, shared_walk=False, keep_plans=True)
    assert fr.info["sweep"] == "per-budget"
    for p, b in enumerate(fr.budget_usd):
        np.testing.assert_array_equal(fr.plans[p].option, ro.solve(inst, budget=float(b), method="greedy").option)


def _tiny():
    return ro.Instance(models=[ro.Model("small", 0.1, 0.2, 4096, (1, 4)), ro.Model("big", 1.0, 2.0, 8192, (1,))],
                       tasks=[ro.Task("qa", 300)], query_task=[0, 0, 0, 0, 0],
                       input_tokens=[50, 60, 70, 80, 90], output_tokens=[10, 10, 10, 10, 10],
                       utility=[[0.6, 0.5, 0.9], [0.3, 0.2, 0.95], [0.7, 0.65, 0.8], [0.5, 0.5, 0.9],
                                [0.1, 0.05, 0.6]])


def test_default_budgets_span_reference_plans():
    inst = _tiny()
    lo, hi = ro.reference_costs(inst)
    b = frontier_budgets(inst, 7)
    assert b[0] == lo and b[-1] == pytest.approx(hi) and len(b) == 7
    fr = frontier(inst, points=7)
    best = float(np.asarray(inst.utility).max(axis=1).sum())
    # At the most useful plan's cost the greedy reaches the best utility (its hull tops).
    assert fr.utility[-1] == pytest.approx(best, rel=1e-12)
    assert fr.status[-1] == "optimal"
    assert frontier_budgets(inst, 1).tolist() == [hi]


def test_budget_below_every_plan_is_an_infeasible_row():
    inst = _tiny()
    lo, _ = ro.reference_costs(inst)
    for method in ("greedy", "cpsat"):
        if method not in ro.available_methods():
            continue
        fr = frontier(inst, [lo * 0.5, lo], method=method)
        assert fr.status[0] == "infeasible" and math.isnan(fr.utility[0]) and math.isnan(fr.cost_usd[0])
        assert fr.feasible.tolist() == [False, True]
        assert fr.rows()[0]["utility"] is None


def test_exact_sweep_is_monotone_and_bounds_the_greedy():
    if "cpsat" not in ro.available_methods():
        pytest.skip("cpsat backend not available")
    inst = _tiny()
    b = frontier_budgets(inst, 6)
    exact = frontier(inst, b, method="cpsat", progress=False)
    greedy = frontier(inst, b)
    assert exact.info["sweep"] == "per-budget"
    assert all(s == "optimal" for s in exact.status)
    assert np.all(np.diff(exact.utility) >= -1e-9)
    assert np.all(greedy.utility <= exact.utility + 1e-9)
    assert np.all(exact.utility <= greedy.upper_bound + 1e-9)


def test_table_json_and_readers():
    inst = _tiny()
    fr = frontier(inst, points=4, label="joint")
    d = json.loads(fr.to_json())
    assert d["format"] == "robatch_opt.frontier/1" and d["method"] == "greedy" and len(d["points"]) == 4
    assert [p["budget_usd"] for p in d["points"]] == fr.budget_usd.tolist()
    assert fr.table().count("\n") == 4 + 1
    assert "joint" in repr(fr)
    # Readers of the curve.
    assert fr.cost_to_reach(fr.mean_utility[-1]) <= fr.cost_usd[-1]
    assert fr.cost_to_reach(1.01) == math.inf
    i = fr.best_within(fr.cost_usd[2])
    assert fr.utility[i] >= fr.utility[2] and fr.cost_usd[i] <= fr.cost_usd[2]
    assert fr.best_within(-1.0) is None
    with pytest.raises(ValueError):
        fr.budget_usd[0] = 0.0                     # frozen arrays


@pytest.mark.parametrize("bad, field", [([float("nan")], "budgets[0]"), ([1.0, -2.0], "budgets[1]"),
                                        ([], "budgets")])
def test_bad_budgets_name_the_entry(bad, field):
    with pytest.raises(InstanceError) as err:
        frontier(_tiny(), bad)
    assert err.value.field == field


def test_bad_method_and_points_fail_before_work():
    with pytest.raises(UnknownMethodError, match="valid"):
        frontier(_tiny(), method="nope")
    with pytest.raises(InstanceError, match="points"):
        frontier(_tiny(), points=0)
    with pytest.raises(InstanceError, match="budget"):
        frontier(_tiny(), budget=1.0)


@pytest.mark.parametrize("kwargs, field", [({"label": 3}, "label"), ({"keep_plans": "yes"}, "keep_plans"),
                                            ({"shared_walk": 1}, "shared_walk"), ({"progress": "x"}, "progress")])
def test_mistyped_sweep_flags_are_refused_by_name(kwargs, field):
    with pytest.raises(InstanceError) as err:
        frontier(_tiny(), points=2, **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("kwargs, field", [({"fractions": "a"}, "fractions"), ({"fractions": [1.0, -0.5]}, "fractions[1]"),
                                            ({"fractions": [float("nan")]}, "fractions[0]"),
                                            ({"budgets": ["x"]}, "budgets[0]"), ({"progress": "x"}, "progress")])
def test_compare_strategies_refuses_bad_arguments_by_name(kwargs, field):
    with pytest.raises(InstanceError) as err:
        ro.baselines.compare_strategies(_tiny(), points=2, **kwargs)
    assert err.value.field == field


def test_compare_strategies_above_the_best_single_model():
    # No single model reaches 110 % of the best one's accuracy: an infinite cost, not a crash.
    cmp = ro.baselines.compare_strategies(_tiny(), points=2, fractions=[1.1])
    row = cmp.matched[0]
    assert row["single-model"] == math.inf and row["single-model-name"] is None
    inst = _tiny()
    best = np.where(inst.admissible, inst.utility, -np.inf).max(axis=1).mean()
    assert math.isfinite(row["joint"]) == (row["mean_utility"] <= best)


def test_progress_bar_only_when_enabled():
    out = io.StringIO()
    bar = ProgressBar(3, "sweep", enabled=True, after_s=0.0, stream=out)
    bar.update(1)
    bar.update(3)
    bar.close()
    text = out.getvalue()
    assert "3/3" in text and text.endswith("\n") and "#" in text
    quiet = io.StringIO()
    bar = ProgressBar(3, "sweep", enabled=False, stream=quiet)
    bar.update(3)
    bar.close()
    assert quiet.getvalue() == ""
    # A quick sweep prints nothing even when enabled.
    late = io.StringIO()
    bar = ProgressBar(3, "sweep", enabled=True, after_s=3600.0, stream=late)
    bar.update(3)
    bar.close()
    assert late.getvalue() == ""


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    fr = frontier(_tiny(), points=4)
    path = tmp_path / "f.png"
    plot_frontiers({"joint": fr}, str(path), title="tiny", markers={"big alone": (0.001, 0.8)})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)        # makes `import matplotlib` fail
    fr = frontier(_tiny(), points=2)
    with pytest.raises(ImportError, match=r"robatch_opt\[plot\]"):
        plot_frontiers([fr])


def test_capacities_fall_back_to_per_budget_solves():
    inst = _tiny()
    fr = frontier(inst, points=3, max_queries_per_model=[5, 2])
    assert fr.info["sweep"] == "per-budget"
    for p in range(len(fr)):
        assert isinstance(fr, Frontier) and fr.cost_usd[p] <= fr.budget_usd[p] * (1 + 1e-12)


def test_cli_frontier_json_and_plot(tmp_path, capsys):
    from robatch_opt import cli

    path = tmp_path / "inst.json"
    ro.save(_tiny(), str(path))
    assert cli.main(["frontier", str(path), "--points", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == "robatch_opt.frontier/1" and len(d["points"]) == 3
    assert cli.main(["frontier", str(path), "--points", "2", "--compare", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"joint", "routing-only", "batching-only"}
    if "cpsat" in ro.available_methods():
        assert cli.main(["frontier", str(path), "--points", "2", "--method", "cpsat"]) == 0
        assert "optimal" in capsys.readouterr().out


def test_cli_frontier_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from robatch_opt import cli

    path = tmp_path / "inst.json"
    ro.save(_tiny(), str(path))
    assert cli.main(["frontier", str(path), "--method", "nope"]) == 2
    assert "unknown method" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["frontier", str(path), "--points", "2", "--plot", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "robatch_opt[plot]" in err
