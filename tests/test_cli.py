"""The robatch-opt command line: happy paths in process, every error path as one line + exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt.evaluate import within_budget
import robatch_opt.cli as cli
from robatch_opt.cli import main

METHOD = "greedy"          # the backend every CLI test runs (the fast one; no exact engine needed)


def small_instance(n: int = 24, seed: int = 3) -> ro.Instance:
    """Two models, two tasks; the big model's window admits no batching for long queries."""
    rng = np.random.default_rng(seed)
    models = [ro.Model("small", 0.1, 0.2, 4096, (1, 2, 4)), ro.Model("big", 1.0, 2.0, 8192, (1, 2))]
    tasks = [ro.Task("qa", 300), ro.Task("math", 500)]
    return ro.Instance(models=models, tasks=tasks, query_task=rng.integers(0, 2, n),
                       input_tokens=rng.integers(20, 200, n), output_tokens=rng.integers(5, 50, (n, 2)),
                       utility=rng.uniform(0, 1, (n, 5)))


@pytest.fixture(scope="module")
def inst_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "small.json"
    ro.save(small_instance(), path)
    return str(path)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, pattern: str) -> None:
    assert code == 2, (code, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("robatch-opt: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err


# ------------------------------------------------------------------------------- solve
def test_solve_text_reports_plan_and_baselines(capsys, inst_path):
    code, out, err = run(capsys, "solve", inst_path, "--method", METHOD)
    assert code == 0 and err == ""
    inst = ro.load(inst_path)
    budget = ro.budget_from_fraction(inst, 0.5)
    plan = ro.solve(inst, budget=budget, method=METHOD)
    for needle in (f"budget          ${budget:,.6f}", f"exact cost      ${plan.cost_usd:,.6f}",
                   f"mean utility    {plan.mean_utility:.6f}", f"gap {100 * plan.gap:.4f}%",
                   "queries per (model, batch size):", "budget rule     cheapest $",
                   "routing-only (b = 1)", "batching-only (best: ", f"the same solver ({METHOD})"):
        assert needle in out, needle
    for (name, b), count in plan.usage().items():
        assert any(line.split() == [name, f"b={b}", f"{count:,}"] for line in out.splitlines()), (name, b)


def test_solve_json_matches_library_and_baselines(capsys, inst_path):
    code, out, err = run(capsys, "solve", inst_path, "--method", METHOD, "--json", "--budget-fraction", "0.3")
    assert code == 0 and err == ""
    d = json.loads(out)
    inst = ro.load(inst_path)
    budget = ro.budget_from_fraction(inst, 0.3)
    plan = ro.solve(inst, budget=budget, method=METHOD)
    for key in ("cost_usd", "utility", "mean_utility", "upper_bound", "gap", "n_calls"):
        assert d[key] == getattr(plan, key), key
    assert d["status"] == plan.status.value and d["method"] == METHOD and d["wall_time_s"] > 0
    cheapest, top = ro.reference_costs(inst)
    assert d["budget_rule"] == {"form": "budget", "budget_fraction": 0.3, "cheapest_cost_usd": cheapest,
                                "max_utility_cost_usd": top, "budget_usd": budget}
    assert d["budget_usd"] == budget and within_budget(d["cost_usd"], budget)

    base = d["baselines"]
    assert base["method"] == METHOD
    routing = ro.solve(inst.restrict(batch_sizes=[1]), budget=budget, method=METHOD)
    assert base["routing_only"]["cost_usd"] == routing.cost_usd
    assert base["routing_only"]["utility"] == routing.utility
    # Batching-only: each single model at the same budget, best utility kept, infeasible ones reported.
    best_name, best_utility = None, -1.0
    for m in inst.models:
        sub = inst.restrict(models=[m.name])
        entry = base["batching_only"]["per_model"][m.name]
        try:
            p = ro.solve(sub, budget=budget, method=METHOD)
        except ro.InfeasibleBudgetError as exc:
            assert entry["status"] == "infeasible"
            assert entry["cheapest_cost_usd"] == exc.cheapest_cost_usd >= budget
            continue
        assert entry["cost_usd"] == p.cost_usd
        if p.utility > best_utility:
            best_name, best_utility = m.name, p.utility
    assert base["batching_only"]["model"] == best_name
    assert base["batching_only"]["utility"] == best_utility


def test_infeasible_single_model_is_reported_with_its_cheapest_cost(capsys, inst_path):
    inst = ro.load(inst_path)
    big_cheapest = ro.reference_costs(inst.restrict(models=["big"]))[0]
    budget = ro.reference_costs(inst)[0] * 1.5                  # affordable jointly, not on "big" alone
    assert budget < big_cheapest
    code, out, _ = run(capsys, "solve", inst_path, "--method", METHOD, "--budget", repr(budget))
    assert code == 0
    assert f"only big: infeasible, cheapest plan ${big_cheapest:,.6f}" in out
    code, out, _ = run(capsys, "solve", inst_path, "--method", METHOD, "--budget", repr(budget), "--json")
    entry = json.loads(out)["baselines"]["batching_only"]["per_model"]["big"]
    assert entry == {"status": "infeasible", "cheapest_cost_usd": big_cheapest}


def test_solve_quality_form_and_no_baselines(capsys, inst_path):
    code, out, err = run(capsys, "solve", inst_path, "--method", METHOD, "--min-mean-utility", "0.6",
                         "--json", "--no-baselines")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["min_mean_utility"] == 0.6 and d["budget_usd"] is None and d["baselines"] is None
    assert d["mean_utility"] >= 0.6 - 1e-12 and d["cost_lower_bound_usd"] <= d["cost_usd"]
    assert d["budget_rule"] == {"form": "quality", "min_mean_utility": 0.6}


def test_solve_out_then_evaluate(capsys, inst_path, tmp_path):
    plan_path = str(tmp_path / "plan.json")
    code, out, _ = run(capsys, "solve", inst_path, "--method", METHOD, "--budget-fraction", "0.7",
                       "--out", plan_path, "--no-baselines")
    assert code == 0 and f"plan written to {plan_path}" in out
    plan = ro.Plan.from_json(open(plan_path).read())
    inst = ro.load(inst_path)
    assert plan.cost_usd == ro.evaluate(inst, plan.option).cost_usd

    code, out, err = run(capsys, "evaluate", inst_path, plan_path)
    assert code == 0 and err == ""
    assert f"exact cost      ${plan.cost_usd:,.6f}   claimed ${plan.cost_usd:,.6f}   ok" in out
    assert f"calls           {plan.n_calls:,}   claimed {plan.n_calls:,}   ok" in out
    assert "verdict         the plan's claims match the grading" in out
    # The bound is the solver's claim: consistent with the plan, never called proved (new-user
    # audit: a plan edited to "optimal" with its bound at its utility was marked "ok").
    assert "upper bound     " in out and "consistent (not re-proved)" in out

    code, out, _ = run(capsys, "evaluate", inst_path, plan_path, "--json")
    d = json.loads(out)
    assert code == 0 and d["matches_claims"] and all(d["checks"].values())
    assert d["checks"]["mean_utility"] and d["bound_reproved"] is False
    assert d["cost_usd"] == plan.cost_usd and d["n_calls"] == plan.n_calls

    # A plan whose claims were edited is graded as a mismatch: exit 1, not an error.
    doc = json.loads(open(plan_path).read())
    doc["cost_usd"] *= 0.5
    doc["n_calls"] += 1
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    code, out, err = run(capsys, "evaluate", inst_path, str(forged))
    assert code == 1 and err == ""
    assert "verdict         MISMATCH: cost_usd, n_calls" in out


@pytest.mark.parametrize("edit, mismatch", [
    ({"cost_usd": float("inf")}, "cost_usd"),               # inf <= inf passed the closeness test
    ({"utility": float("inf")}, "utility"),
    ({"gap": 0.0}, "gap"),
    ({"status": "optimal", "gap": 0.0}, "gap, status"),     # the plan's own bound says otherwise
    # Impossible values are false claims too, graded like the others (not a format error).
    ({"gap": -0.5}, "gap"),
    ({"upper_bound": float("nan")}, "below_upper_bound, gap"),
    ({"budget_usd": -1.0}, "within_budget"),
    ({"n_calls": 5}, "n_calls"),
    ({"mean_utility": 0.99}, "mean_utility"),                # informative, but a claim (new-user audit)
])
def test_evaluate_checks_infinite_claims_the_gap_and_the_status(capsys, inst_path, tmp_path, edit, mismatch):
    plan_path = tmp_path / "plan.json"
    code, _, _ = run(capsys, "solve", inst_path, "--method", "greedy", "--budget-fraction", "0.3",
                     "--out", str(plan_path), "--no-baselines")
    doc = json.loads(plan_path.read_text())
    assert code == 0 and doc["gap"] > 1e-6 and doc["status"] == "feasible"
    code, out, _ = run(capsys, "evaluate", inst_path, str(plan_path))
    assert code == 0 and "gap             " in out
    doc.update(edit)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))                     # json writes inf as Infinity
    code, out, err = run(capsys, "evaluate", inst_path, str(forged))
    assert code == 1 and err == ""
    assert f"verdict         MISMATCH: {mismatch}" in out


def test_evaluate_rejects_a_plan_of_another_instance(capsys, inst_path, tmp_path):
    other = tmp_path / "other.json"
    ro.save(small_instance(n=10, seed=5), other)
    plan_path = tmp_path / "plan.json"
    code, _, _ = run(capsys, "solve", str(other), "--method", METHOD, "--no-baselines", "--out", str(plan_path))
    assert code == 0
    assert_one_line_error(*run(capsys, "evaluate", inst_path, str(plan_path)),
                          r"plan.json: the plan covers 10 queries but .*small.json has 24")


def test_auto_method_runs_baselines_with_the_solver_it_chose(capsys, inst_path):
    code, out, err = run(capsys, "solve", inst_path, "--json", "--time-limit", "10")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["method"] in ro.available_methods() and d["method"] != "auto"
    assert d["baselines"]["method"] == d["method"] == d["baselines"]["routing_only"]["method"]


def test_help_and_version_exit_zero(capsys):
    code, out, _ = run(capsys, "solve", "--help")
    assert code == 0 and "cheapest + F * (cost of the max-utility plan - cheapest)" in " ".join(out.split())
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"robatch-opt {ro.__version__}"


def test_default_workload(capsys):
    pytest.importorskip("robatch_opt.workloads")
    code, out, err = run(capsys, "solve", "--json", "--method", METHOD)
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["instance"] == "default: ro.workloads.llm(pool='qwen3', n=2000, seed=0)"
    assert d["n_queries"] == 2000 and d["budget_rule"]["budget_fraction"] == 0.5
    inst = ro.workloads.llm(pool="qwen3", n=2000, seed=0)
    assert d["budget_usd"] == ro.budget_from_fraction(inst, 0.5)
    assert d["cost_usd"] <= d["budget_usd"] and d["utility"] <= d["upper_bound"]
    assert "cost_usd" in d["baselines"]["routing_only"]


# ---------------------------------------------------------------------------- generate
@pytest.mark.parametrize("kind, extra, suffix", [("llm", ["--pool", "gemma3", "--price", "api"], ".npz"),
                                                  ("synthetic", [], ".json")])
def test_generate_writes_a_loadable_instance(capsys, tmp_path, kind, extra, suffix):
    workloads = pytest.importorskip("robatch_opt.workloads")
    out_path = tmp_path / f"gen{suffix}"
    code, out, err = run(capsys, "generate", kind, "--n", "50", "--seed", "7", *extra, str(out_path))
    assert code == 0 and err == "" and out.startswith(f"wrote {out_path}: ro.workloads.{kind}(")
    inst = ro.load(out_path)
    expected = (workloads.llm(pool="gemma3", n=50, seed=7, price="api") if kind == "llm"
                else workloads.synthetic(n=50, seed=7))
    assert inst.n_queries == 50 and inst.models == expected.models
    assert inst.utility.tobytes() == expected.utility.tobytes()


# ------------------------------------------------------------------------- error paths
def _bad_files(tmp_path) -> dict[str, str]:
    good = ro.io.instance_to_json(small_instance())
    files = {"malformed.json": good[: len(good) // 3], "notes.txt": good,
             "truncated.npz": b"PK\x03\x04" + b"\x00" * 40,
             "invalid.json": good.replace('"name":"big","price_in":1.0', '"name":"big","price_in":-1.0')}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return {name: str(tmp_path / name) for name in files}


ERRORS = [
    (["solve", "{inst}", "--budget", "-1"], r"`budget`: must be a finite number >= 0 USD, got -1"),
    (["solve", "{inst}", "--budget", "nan"], r"`budget`: must be a finite number"),
    (["solve", "{inst}", "--budget", "lots"], r"argument --budget: invalid float value: 'lots'"),
    (["solve", "{inst}", "--budget", "1e-7"], r"`budget`: \$1e-07 is below the cost of every plan "
                                              r"\(lower bound \$[0-9.e-]+; cheapest plan found \$[0-9.e-]+\)"),
    (["solve", "{inst}", "--budget-fraction", "-0.5"], r"`budget_fraction`: must be a finite number >= 0"),
    (["solve", "{inst}", "--budget", "1", "--budget-fraction", "0.2"],
     r"argument --budget-fraction: not allowed with argument --budget"),
    (["solve", "{inst}", "--min-mean-utility", "1.5"], r"`min_mean_utility`: must be in \[0, 1\]"),
    (["solve", "{inst}", "--method", "simplex"], r"`method`: unknown method 'simplex'; valid: auto, greedy"),
    (["solve", "{inst}", "--time-limit", "0"], r"`time_limit_s`: must be a positive number of seconds"),
    (["solve", "{tmp}/absent.json"], r"absent.json: No such file or directory"),
    (["solve", "{malformed.json}"], r"malformed.json: malformed or truncated JSON at line 1 column \d+"),
    (["solve", "{truncated.npz}"], r"truncated.npz: npz archive is truncated or corrupt"),
    (["solve", "{notes.txt}"], r"notes.txt: unknown file suffix '.txt'; use .json, .npz or .zarr"),
    (["solve", "{invalid.json}"], r"invalid.json: `models\['big'\].price_in`: must be >= 0, got -1.0"),
    (["solve", "{inst}", "--out", "{tmp}/no/such/dir/plan.json"], r"--out: .*plan.json: directory .*dir does not exist"),
    (["solve", "{tmp}/x.zarr", "--scheduler", "tcp://127.0.0.1:1", "--solver", "cbc"],
     r"argument --solver: picks a MILP engine; the distributed solver runs the greedy only"),
    (["solve", "{tmp}/x.zarr", "--scheduler", "tcp://127.0.0.1:1", "--time-limit", "-3"],
     r"argument --time-limit: the distributed greedy runs to the end"),
    (["solve", "{tmp}/x.zarr", "--scheduler", "tcp://127.0.0.1:1", "--timings"],
     r"argument --timings: applies to the plan file, give --out too"),
    (["solve", "--frobnicate"], r"unrecognized arguments: --frobnicate"),
    ([], r"the following arguments are required: \{solve,generate,evaluate,frontier,online,serve\}"),
    (["optimise"], r"argument \{solve,generate,evaluate,frontier,online,serve\}: invalid choice: 'optimise'"),
    (["evaluate", "{inst}"], r"the following arguments are required: PLAN"),
    (["evaluate", "{inst}", "{malformed.json}"], r"malformed.json: plan JSON is malformed or truncated"),
    (["evaluate", "{inst}", "{inst}"], r"small.json: not a robatch_opt plan"),
    (["generate", "llm", "{tmp}/x.csv"], r"x.csv: unknown file suffix '.csv'"),
    (["generate", "llm", "--family", "uncorrelated", "{tmp}/x.json"],
     r"--family: applies to `generate synthetic`"),
    (["generate", "synthetic", "--n", "0", "{tmp}/x.json"], r"argument --n: must be >= 1, got 0"),
    (["generate", "synthetic", "--family", "zigzag", "{tmp}/x.json"], r"`family`: unknown family 'zigzag'"),
    (["generate", "llm", "--pool", "llama", "{tmp}/x.json"], r"`pool`: unknown pool 'llama'"),
]


@pytest.mark.parametrize("argv, pattern", ERRORS, ids=[" ".join(a) or "(none)" for a, _ in ERRORS])
def test_errors_print_one_line_and_exit_2(capsys, inst_path, tmp_path, argv, pattern):
    names = {"inst": inst_path, "tmp": str(tmp_path), **_bad_files(tmp_path)}
    for key, value in names.items():
        argv = [a.replace("{" + key + "}", value) for a in argv]
    assert_one_line_error(*run(capsys, *argv), pattern)


def test_interrupt_and_internal_error(capsys, inst_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "solve", interrupted)
    code, out, err = run(capsys, "solve", inst_path)
    assert code == 130 and out == "" and err == "robatch-opt: interrupted\n"

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "solve", broken)
    code, out, err = run(capsys, "solve", inst_path)
    assert code == 70 and out == ""                     # not 1: that is serve's "unanswered"
    assert err == ("robatch-opt: error: internal error: ZeroDivisionError: division by zero "
                   "(rerun with --traceback for details)\n")
    with pytest.raises(ZeroDivisionError):
        main(["--traceback", "solve", inst_path])


# -------------------------------------------------------------------------- subprocess
def test_python_dash_m_subprocess(inst_path):
    """A real process: JSON on stdout and exit 0; then a budget below the cheapest plan: exit 2.

    The default method (``auto``) is an exact engine at this size, so the child process needs
    no Numba compilation whatever the state of the JIT cache.
    """
    ok = subprocess.run([sys.executable, "-m", "robatch_opt", "solve", inst_path, "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["n_queries"] == 24 and "Traceback" not in ok.stderr
    bad = subprocess.run([sys.executable, "-m", "robatch_opt", "solve", inst_path, "--budget", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("robatch-opt: error: `budget`: $0 is below")


@pytest.mark.parametrize("command", [["solve", "--min-mean-utility", "0.5", "--no-baselines"], ["frontier"]])
def test_an_instance_without_queries_is_refused(capsys, tmp_path, command):
    # It solved "optimal" with mean utility 0 against a target of 0.5 (new-user audit).
    inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1,))], tasks=[ro.Task("t", 10)],
                       query_task=np.zeros(0, dtype=np.int64), input_tokens=np.zeros(0),
                       output_tokens=np.zeros((0, 1)), utility=np.zeros((0, 1)))
    path = tmp_path / "empty.json"
    ro.save(inst, path)
    assert_one_line_error(*run(capsys, command[0], str(path), *command[1:]), r"empty.json: the instance has no queries")


def test_the_progress_line_names_its_unit():
    """New-user audit: the terminal's progress line showed totals ("incumbent 152.394, bound
    152.405") beside a summary of means; the budget form's line now says they are totals."""
    from types import SimpleNamespace

    from robatch_opt.cli import _Display

    shown = []
    display = _Display(enabled=False)
    display._progress = SimpleNamespace(update=lambda task, description: shown.append(description))
    display.phase("solving")
    display.report(SimpleNamespace(incumbent=152.394, bound=152.405))
    assert shown[-1] == "solving, incumbent 152.394, bound 152.405 (total utility), gap 0.0072%"
    display.phase("solving", budget_form=False)
    display.report(SimpleNamespace(incumbent=0.25, bound=0.2))
    assert shown[-1] == "solving, incumbent $0.25, bound $0.2, gap 20.0000%"


@pytest.mark.parametrize("wrapped", [ImportError("initialization failed"),
                                     RuntimeError("Error calling __set_name__ on 'Field' instance")])
@pytest.mark.parametrize("signal_exc, status, said", [("KeyboardInterrupt", 130, "interrupted"),
                                                      ("Terminated", 143, "terminated")])
@pytest.mark.parametrize("extra", [[], ["--traceback"]])
def test_an_interrupt_an_extension_wrapped_is_still_an_interrupt(monkeypatch, capsys, wrapped, signal_exc, status,
                                                                 said, extra):
    # New-user audit: a Ctrl-C landing in an import of SciPy or scikit-learn reached the
    # command as pybind11's ImportError (or a RuntimeError from a class body) and was
    # reported as an internal error with status 1.
    from robatch_opt import online
    from robatch_opt._interrupt import Terminated

    cause = KeyboardInterrupt() if signal_exc == "KeyboardInterrupt" else Terminated()

    def interrupted(*args, **kwargs):
        raise wrapped from cause

    monkeypatch.setattr(online, "llm_split", interrupted)
    assert main(["online", "--alpha", "0.8", "--n", "50", *extra]) == status
    assert capsys.readouterr().err == f"robatch-opt: {said}\n"
