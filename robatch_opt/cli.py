"""The ``robatch-opt`` command line: ``solve``, ``generate`` and ``evaluate``.

``robatch-opt solve`` with no instance solves the bundled default workload,
``ro.workloads.llm(pool="qwen3", n=2000, seed=0)``, at ``--budget-fraction 0.5``, and
compares the joint plan with the routing-only and batching-only restrictions solved by the
same solver at the same budget.

Every error a user can cause (bad input, a missing file, a malformed file, a budget below
the cheapest plan, an unknown method, a usage mistake) prints exactly one line
``robatch-opt: error: ...`` on stderr and exits with status 2; an interrupt exits with 130.
Run with ``--traceback`` to see the Python traceback instead.

Exit status: 0 success; 1 ``evaluate`` found that a plan's claims do not match its grading
(or an internal error); 2 an error as above; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .baselines import routing_only, single_model
from .errors import FormatError, InfeasibleBudgetError, InstanceError, RobatchError
from .evaluate import evaluate
from .instance import Instance
from .io import format_of, load, save
from .plan import Plan
from .solve import budget_from_fraction, reference_costs, solve
from .solvers import AUTO, get_backend, registered_methods

__all__ = ["main", "DEFAULT_WORKLOAD", "DEFAULT_BUDGET_FRACTION"]

PROG = "robatch-opt"

#: What ``solve`` runs when no instance file is given.
DEFAULT_WORKLOAD = {"pool": "qwen3", "n": 2000, "seed": 0}

#: Budget used when neither ``--budget``, ``--budget-fraction`` nor ``--min-mean-utility`` is given.
DEFAULT_BUDGET_FRACTION = 0.5

#: Relative tolerance of ``evaluate``'s comparison of a plan's claims with its grading.
CLAIM_RTOL = 1e-9

EXIT_OK, EXIT_MISMATCH, EXIT_INTERNAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 1, 2, 130


class _UsageError(Exception):
    """An argparse usage mistake (turned into one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str):                       # noqa: D401 (argparse's name)
        raise _UsageError(message)


# ----------------------------------------------------------------------------- parsing
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> _Parser:
    p = _Parser(prog=PROG, description="Joint routing and batch prompting of LLM queries under a budget.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--traceback", action="store_true",
                   help="on an error, raise it with its Python traceback (for debugging)")
    sub = p.add_subparsers(dest="command", metavar="{solve,generate,evaluate,frontier}", required=True)

    s = sub.add_parser(
        "solve", help="plan an instance (default: the bundled LLM workload)",
        description="Pick a model and a batch size for every query, maximising utility within a budget "
                    "(or, with --min-mean-utility, minimising cost). Without INSTANCE, solves "
                    "ro.workloads.llm(pool='qwen3', n=2000, seed=0). Without a budget option, the "
                    f"budget is --budget-fraction {DEFAULT_BUDGET_FRACTION}.")
    s.add_argument("instance", nargs="?", metavar="INSTANCE", help="instance file (.json or .npz)")
    form = s.add_mutually_exclusive_group()
    form.add_argument("--budget", type=float, metavar="USD", help="budget in US dollars")
    form.add_argument("--budget-fraction", type=float, metavar="F",
                      help="budget = cheapest + F * (cost of the max-utility plan - cheapest), where "
                           "cheapest is the exact cost of every query on its cheapest option and the "
                           "max-utility plan puts every query on its most useful option; F=0 affords "
                           f"the cheapest plan, F=1 the most useful one (default {DEFAULT_BUDGET_FRACTION})")
    form.add_argument("--min-mean-utility", type=float, metavar="A",
                      help="quality form: the cheapest plan whose mean utility is at least A")
    s.add_argument("--method", default=AUTO, metavar="M",
                   help=f"solver: {', '.join(registered_methods())} (default {AUTO}: exact on small "
                        "instances, greedy otherwise)")
    s.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                   help="time limit of exact engines per solve, seconds (default 60); the baselines "
                        "are up to K + 1 further solves, one per restriction")
    s.add_argument("--seed", type=int, default=0, metavar="N", help="solver seed (default 0)")
    s.add_argument("--out", metavar="PLAN.json", help="write the plan (JSON) here")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    s.add_argument("--no-baselines", action="store_true",
                   help="skip the routing-only and batching-only baselines")
    s.set_defaults(func=_cmd_solve)

    g = sub.add_parser("generate", help="write a generated instance to a file",
                       description="Generate a workload with ro.workloads and save it "
                                   "(.json or .npz by suffix).")
    g.add_argument("kind", choices=("llm", "synthetic"), help="workload generator")
    g.add_argument("out", metavar="OUT", help="output file (.json or .npz)")
    g.add_argument("--n", type=_positive_int, default=DEFAULT_WORKLOAD["n"], metavar="N",
                   help=f"number of queries (default {DEFAULT_WORKLOAD['n']})")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    g.add_argument("--pool", metavar="P", help=f"llm only: model pool (default {DEFAULT_WORKLOAD['pool']})")
    g.add_argument("--family", metavar="F", help="synthetic only: instance family")
    g.add_argument("--price", choices=("api", "compute"), help="llm only: price model")
    g.set_defaults(func=_cmd_generate)

    e = sub.add_parser("evaluate", help="grade a saved plan against its instance",
                       description="Recompute a plan's exact cost, utility and calls with ro.evaluate and "
                                   "check them against the plan's claims (exit 1 if they differ).")
    e.add_argument("instance", metavar="INSTANCE", help="instance file (.json or .npz)")
    e.add_argument("plan", metavar="PLAN", help="plan file written by `solve --out`")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    e.set_defaults(func=_cmd_evaluate)

    f = sub.add_parser(
        "frontier", help="sweep budgets: the cost-utility frontier (optionally vs the baselines)",
        description="Solve an instance at N budgets from its cheapest plan to its most useful plan "
                    "(ro.frontier) and print one row per budget. The greedy sweeps with one shared walk; "
                    "exact methods solve every budget (progress bar on a terminal). Without INSTANCE, uses "
                    "ro.workloads.llm(pool='qwen3', n=2000, seed=0).")
    f.add_argument("instance", nargs="?", metavar="INSTANCE", help="instance file (.json or .npz)")
    f.add_argument("--method", default="greedy", metavar="M",
                   help=f"solver: {', '.join(registered_methods())} (default greedy)")
    f.add_argument("--points", type=_positive_int, default=12, metavar="N", help="number of budgets (default 12)")
    f.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                   help="time limit of exact engines per budget, seconds (default 60)")
    f.add_argument("--seed", type=int, default=0, metavar="N", help="solver seed (default 0)")
    f.add_argument("--compare", action="store_true",
                   help="also sweep the routing-only and batching-only restrictions at the same budgets")
    f.add_argument("--plot", metavar="FILE.png", help="write a PNG (needs matplotlib: robatch_opt[plot])")
    f.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    f.set_defaults(func=_cmd_frontier)
    return p


# ------------------------------------------------------------------------------ helpers
class _CliError(RobatchError, ValueError):
    """An error found by the command line itself (message printed as is)."""


def _load_instance(path: str) -> Instance:
    try:
        return load(path)
    except (InstanceError, FormatError) as exc:
        msg = str(exc)
        raise _CliError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from exc


def _default_instance() -> Instance:
    try:
        from . import workloads
    except ImportError as exc:
        raise _CliError(f"the bundled default workload is unavailable ({exc}); pass an INSTANCE file") from exc
    return workloads.llm(**DEFAULT_WORKLOAD)


def _finite_or_none(x):
    """JSON-safe numbers: infinities and NaN become null, numpy scalars become Python ones."""
    if isinstance(x, dict):
        return {str(k): _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _print_json(d: dict) -> None:
    print(json.dumps(_finite_or_none(d), allow_nan=False))


def _usd(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"${x:,.6f}"


def _headline(plan: Plan) -> dict[str, Any]:
    d = plan.summary_dict()
    d["usage"] = [{"model": name, "batch_size": b, "queries": c} for (name, b), c in plan.usage().items()]
    return d


# ------------------------------------------------------------------------------- solve
def _solve_restriction(make, *, budget_usd, min_mean_utility, method, time_limit_s, seed) -> dict[str, Any]:
    """Solve one restriction; infeasible or inapplicable restrictions are reported, not raised."""
    try:
        sub = make()
    except InstanceError as exc:
        # e.g. a model whose window fits only some queries: that restriction has no plan at all.
        return {"status": "not_applicable", "reason": str(exc)}
    try:
        plan = solve(sub, budget=budget_usd, min_mean_utility=min_mean_utility, method=method,
                     time_limit_s=time_limit_s, seed=seed)
    except InfeasibleBudgetError as exc:
        cheapest = exc.cheapest_cost_usd
        if not math.isfinite(cheapest):
            cheapest = reference_costs(sub)[0]
        return {"status": "infeasible" if exc.proven else "no_solution", "cheapest_cost_usd": cheapest,
                "reason": str(exc)}
    return _headline(plan)


def _baselines(inst: Instance, plan: Plan, args) -> dict[str, Any]:
    # Under --method auto the baselines are solved by auto too (lns stops at its gap
    # tolerance and time cap there; asked for by name it would spend the whole limit).
    method = AUTO if args.method == AUTO else plan.method
    kw = dict(budget_usd=plan.budget_usd, min_mean_utility=plan.min_mean_utility, method=method,
              time_limit_s=args.time_limit, seed=args.seed)
    # The restrictions are those of robatch_opt.baselines, so the CLI and the library agree.
    routing = _solve_restriction(lambda: routing_only(inst), **kw)
    routing["restriction"] = "batch size 1 on every model"
    per_model = {m.name: _solve_restriction(lambda name=m.name: single_model(inst, name), **kw)
                 for m in inst.models}
    solved = {name: r for name, r in per_model.items() if "cost_usd" in r}
    if solved:
        if plan.budget_usd is not None:
            best = max(solved, key=lambda name: (solved[name]["utility"], -solved[name]["cost_usd"]))
        else:
            best = min(solved, key=lambda name: (solved[name]["cost_usd"], -solved[name]["utility"]))
        batching = dict(solved[best])
    else:
        priced = {name: r["cheapest_cost_usd"] for name, r in per_model.items() if "cheapest_cost_usd" in r}
        best = min(priced, key=priced.get) if priced else None
        batching = ({"status": "infeasible", "cheapest_cost_usd": priced[best],
                     "reason": "no single model meets the constraint"} if priced else
                    {"status": "not_applicable", "reason": "no single model fits every query"})
    batching.update({"restriction": "best single model, all its batch sizes", "model": best,
                     "per_model": {name: {k: r.get(k) for k in ("status", "cost_usd", "mean_utility",
                                                               "cheapest_cost_usd")
                                          if k in r}
                                   for name, r in per_model.items()}})
    return {"method": plan.method, "routing_only": routing, "batching_only": batching}


def _cmd_solve(args) -> int:
    if args.method != AUTO:
        get_backend(args.method)           # unknown or unavailable: fail before any work
    if args.instance is None:
        inst = _default_instance()
        params = ", ".join(f"{k}={v!r}" for k, v in DEFAULT_WORKLOAD.items())
        source = f"default: ro.workloads.llm({params})"
    else:
        inst = _load_instance(args.instance)
        source = args.instance
    if args.out is not None:
        out_dir = Path(args.out).resolve().parent
        if not out_dir.is_dir():
            raise FileNotFoundError(2, "directory does not exist", str(out_dir))

    rule: dict[str, Any]
    budget = None
    if args.min_mean_utility is not None:
        rule = {"form": "quality", "min_mean_utility": args.min_mean_utility}
    elif args.budget is not None:
        budget = args.budget
        rule = {"form": "budget", "budget_usd": budget}
    else:
        fraction = DEFAULT_BUDGET_FRACTION if args.budget_fraction is None else args.budget_fraction
        budget = budget_from_fraction(inst, fraction)
        cheapest, max_utility = reference_costs(inst)
        rule = {"form": "budget", "budget_fraction": fraction, "cheapest_cost_usd": cheapest,
                "max_utility_cost_usd": max_utility, "budget_usd": budget}

    plan = solve(inst, budget=budget, min_mean_utility=args.min_mean_utility, method=args.method,
                 time_limit_s=args.time_limit, seed=args.seed)
    baselines = None if args.no_baselines else _baselines(inst, plan, args)
    if args.out is not None:
        Path(args.out).write_text(plan.to_json(), encoding="utf-8")

    if args.json:
        d = _headline(plan)
        d.update({"instance": source, "n_tasks": inst.n_tasks, "n_models": inst.n_models,
                  "n_options": inst.n_options, "budget_rule": rule, "plan_file": args.out,
                  "baselines": baselines})
        _print_json(d)
        return EXIT_OK

    print(f"instance        {source}")
    print(f"                {inst.n_queries:,} queries, {inst.n_tasks} tasks, {inst.n_models} models, "
          f"{inst.n_options} options (model, batch size)")
    if "budget_fraction" in rule:
        print(f"budget rule     cheapest {_usd(rule['cheapest_cost_usd'])} + {rule['budget_fraction']:g} x "
              f"(max-utility plan {_usd(rule['max_utility_cost_usd'])} - cheapest)")
    print(plan.summary())
    if args.out is not None:
        print(f"plan written to {args.out}")
    if baselines is not None:
        print()
        print(_baseline_table(plan, baselines))
    return EXIT_OK


def _baseline_table(plan: Plan, baselines: dict[str, Any]) -> str:
    where = f"budget {_usd(plan.budget_usd)}" if plan.budget_usd is not None else \
        f"mean utility >= {plan.min_mean_utility:.4f}"
    lines = [f"baselines: the same solver ({baselines['method']}) at the same {where}",
             f"  {'plan':<34s} {'exact cost':>14s} {'mean util':>10s} {'bound':>10s} {'gap':>9s} "
             f"{'status':<12s} {'time':>8s}"]

    def row(label: str, r: dict[str, Any]) -> str:
        if "cost_usd" not in r:
            extra = (f"cheapest plan {_usd(r['cheapest_cost_usd'])}" if "cheapest_cost_usd" in r
                     else r.get("reason", ""))
            return f"  {label:<34s} {r['status']:>14s}  ({extra})"
        n = max(r["n_queries"], 1)
        bound = "-" if r["upper_bound"] is None else f"{r['upper_bound'] / n:.6f}"
        return (f"  {label:<34s} {_usd(r['cost_usd']):>14s} {r['mean_utility']:>10.6f} {bound:>10s} "
                f"{100 * r['gap']:>8.4f}% {r['status']:<12s} {r['wall_time_s']:>7.3f}s")

    lines.append(row("joint routing + batching", _headline(plan)))
    lines.append(row("routing-only (b = 1)", baselines["routing_only"]))
    batching = baselines["batching_only"]
    label = "batching-only" + (f" (best: {batching['model']})" if batching.get("model") else "")
    lines.append(row(label[:34], batching))
    for name, r in batching.get("per_model", {}).items():
        if r.get("status") in ("infeasible", "no_solution", "not_applicable") and name != batching.get("model"):
            what = (f"infeasible, cheapest plan {_usd(r['cheapest_cost_usd'])}" if "cheapest_cost_usd" in r
                    else r["status"].replace("_", " "))
            lines.append(f"    only {name}: {what}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- generate
def _cmd_generate(args) -> int:
    format_of(args.out)                    # an unknown suffix fails before any work
    if args.kind == "llm" and args.family is not None:
        raise _UsageError("argument --family: applies to `generate synthetic` only")
    if args.kind == "synthetic" and (args.pool is not None or args.price is not None):
        raise _UsageError("arguments --pool and --price: apply to `generate llm` only")
    try:
        from . import workloads
    except ImportError as exc:
        raise _CliError(f"the workload generators are unavailable ({exc})") from exc
    if args.kind == "llm":
        kw: dict[str, Any] = {"pool": args.pool or DEFAULT_WORKLOAD["pool"], "n": args.n, "seed": args.seed}
        if args.price is not None:
            kw["price"] = args.price
        inst = workloads.llm(**kw)
    else:
        kw = {"n": args.n, "seed": args.seed}
        if args.family is not None:
            kw["family"] = args.family
        inst = workloads.synthetic(**kw)
    path = save(inst, args.out)
    size = path.stat().st_size
    params = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    print(f"wrote {path}: ro.workloads.{args.kind}({params}): {inst.n_queries:,} queries, {inst.n_tasks} tasks, "
          f"{inst.n_models} models, {inst.n_options} options, {size:,} bytes")
    return EXIT_OK


# ---------------------------------------------------------------------------- evaluate
def _read_plan(path: str) -> Plan:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        return Plan.from_json(text)
    except FormatError as exc:
        raise _CliError(f"{path}: {exc}") from exc


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= CLAIM_RTOL * max(abs(a), abs(b), 1e-12)


def _cmd_evaluate(args) -> int:
    inst = _load_instance(args.instance)
    plan = _read_plan(args.plan)
    names = tuple(m.name for m in inst.models)
    if plan.n_queries != inst.n_queries:
        raise _CliError(f"{args.plan}: the plan covers {plan.n_queries} queries but {args.instance} "
                        f"has {inst.n_queries}")
    if plan.options != inst.options or plan.model_names != names:
        raise _CliError(f"{args.plan}: the plan's options {list(plan.options)} on models "
                        f"{list(plan.model_names)} are not those of {args.instance}")
    if not (plan.query_task == inst.query_task).all():
        i = int((plan.query_task != inst.query_task).argmax())
        raise _CliError(f"{args.plan}: query {i} is in task {int(plan.query_task[i])} in the plan but "
                        f"{int(inst.query_task[i])} in {args.instance}")
    ev = evaluate(inst, plan.option)

    checks: dict[str, bool] = {
        "cost_usd": _close(ev.cost_usd, plan.cost_usd),
        "utility": _close(ev.utility, plan.utility),
        "n_calls": ev.n_calls == plan.n_calls,
        "breakdown": all(_close(getattr(ev.breakdown, f), getattr(plan.breakdown, f))
                         for f in ("system_usd", "input_usd", "output_usd")),
    }
    if plan.budget_usd is not None:
        checks["within_budget"] = ev.cost_usd <= plan.budget_usd * (1 + CLAIM_RTOL)
    if plan.min_mean_utility is not None:
        checks["meets_target"] = ev.mean_utility >= plan.min_mean_utility * (1 - CLAIM_RTOL)
    if plan.upper_bound is not None:
        checks["below_upper_bound"] = ev.utility <= plan.upper_bound * (1 + CLAIM_RTOL)
    if plan.cost_lower_bound_usd is not None:
        checks["above_cost_lower_bound"] = ev.cost_usd >= plan.cost_lower_bound_usd * (1 - CLAIM_RTOL)
    ok = all(checks.values())

    if args.json:
        _print_json({
            "cost_usd": ev.cost_usd, "utility": ev.utility, "mean_utility": ev.mean_utility,
            "n_calls": ev.n_calls, "n_queries": inst.n_queries,
            "breakdown": {"system_usd": ev.breakdown.system_usd, "input_usd": ev.breakdown.input_usd,
                          "output_usd": ev.breakdown.output_usd},
            "claimed": {"cost_usd": plan.cost_usd, "utility": plan.utility, "n_calls": plan.n_calls,
                        "budget_usd": plan.budget_usd, "min_mean_utility": plan.min_mean_utility,
                        "upper_bound": plan.upper_bound, "status": plan.status.value, "method": plan.method},
            "checks": checks, "matches_claims": ok,
        })
        return EXIT_OK if ok else EXIT_MISMATCH

    def mark(key: str) -> str:
        return "ok" if checks[key] else "MISMATCH"

    b = ev.breakdown
    print(f"plan            {args.plan} ({plan.method}, {plan.status.value})")
    print(f"instance        {args.instance}: {inst.n_queries:,} queries, {inst.n_options} options")
    print(f"exact cost      {_usd(ev.cost_usd)}   claimed {_usd(plan.cost_usd)}   {mark('cost_usd')}")
    print(f"  breakdown     system {_usd(b.system_usd)}, input {_usd(b.input_usd)}, output {_usd(b.output_usd)}"
          f"   {mark('breakdown')}")
    print(f"utility         {ev.utility:.9g} (mean {ev.mean_utility:.6f})   claimed {plan.utility:.9g}   "
          f"{mark('utility')}")
    print(f"calls           {ev.n_calls:,}   claimed {plan.n_calls:,}   {mark('n_calls')}")
    if "within_budget" in checks:
        print(f"budget          {_usd(plan.budget_usd)}   {'within' if checks['within_budget'] else 'EXCEEDED'}")
    if "meets_target" in checks:
        print(f"target          mean utility >= {plan.min_mean_utility:.6f}   "
              f"{'met' if checks['meets_target'] else 'MISSED'}")
    if "below_upper_bound" in checks:
        print(f"upper bound     {plan.upper_bound:.9g}   {mark('below_upper_bound')}")
    if "above_cost_lower_bound" in checks:
        print(f"cost lower bd   {_usd(plan.cost_lower_bound_usd)}   {mark('above_cost_lower_bound')}")
    print("verdict         " + ("the plan's claims match the grading" if ok else
                                "MISMATCH: " + ", ".join(k for k, v in checks.items() if not v)))
    return EXIT_OK if ok else EXIT_MISMATCH


def _cmd_frontier(args) -> int:
    from . import baselines
    from .frontier import frontier, frontier_budgets, plot_frontiers

    get_backend(args.method) if args.method != AUTO else None      # fail before any work
    inst = _load_instance(args.instance) if args.instance else _default_instance()
    kw = dict(method=args.method, time_limit_s=args.time_limit, seed=args.seed, progress=None)
    budgets = frontier_budgets(inst, args.points)
    curves = {"joint": frontier(inst, budgets, label="joint", **kw)}
    if args.compare:
        curves["routing-only"] = frontier(baselines.routing_only(inst), budgets, label="routing-only", **kw)
        curves["batching-only"] = baselines.batching_only_frontier(inst, budgets, **kw)
    if args.plot:
        try:
            plot_frontiers(curves, args.plot, title=f"{inst.n_queries} queries, {inst.n_options} options "
                                                    f"({args.method})")
        except ImportError as exc:
            raise _CliError(str(exc)) from exc
    if args.json:
        _print_json({name: fr.to_dict() for name, fr in curves.items()} if args.compare
                    else curves["joint"].to_dict())
        return EXIT_OK
    for name, fr in curves.items():
        print(f"{name} ({fr.method}, {len(fr)} budgets, {fr.wall_time_s:.2f} s)")
        print(fr.table())
        print()
    if args.plot:
        print(f"figure written to {args.plot}")
    return EXIT_OK


# -------------------------------------------------------------------------------- main
def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (never raises for user errors).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 success, 1 ``evaluate`` found a mismatch (or an internal error), 2 an error
        (one line on stderr), 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--traceback" in argv
    try:
        args = _parser().parse_args(argv)
        return args.func(args)
    except SystemExit as exc:              # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (_UsageError, RobatchError, ValueError, OSError) as exc:
        if debug:
            raise
        _fail(_one_line(exc))
        return EXIT_ERROR
    except Exception as exc:                # a bug: still one line, but say how to see more
        if debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --traceback for details)")
        return EXIT_INTERNAL
