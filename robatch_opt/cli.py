"""The ``robatch-opt`` command line: ``solve``, ``generate`` and ``evaluate``.

``robatch-opt solve`` with no instance solves the bundled default workload,
``ro.workloads.llm(pool="qwen3", n=2000, seed=0)``, at ``--budget-fraction 0.5``, and
compares the joint plan with the routing-only and batching-only restrictions solved by the
same solver at the same budget.

Every error a user can cause (bad input, a missing file, a malformed file, a budget below
the cheapest plan, an unknown method, a usage mistake, an output path that cannot be
written, not enough memory) prints exactly one line ``robatch-opt: error: ...`` on stderr
and exits with status 2. Output paths are checked before any work, and every file is
written whole or not at all (the old file stays on any failure). Ctrl-C (SIGINT) and
SIGTERM stop the command within a second or two, whichever engine runs: the engine is
stopped, its child processes killed, its temporary files removed, and no output file is
written. Run with ``--traceback`` to see the Python traceback instead.

Exit status: 0 success; 1 ``evaluate`` found that a plan's claims do not match its grading,
or ``serve`` left a query unanswered; 2 an error as above; 70 an internal error (a bug: one
line, ``--traceback`` for more); 130 interrupted (SIGINT); 141 standard output was closed
early (e.g. piped into ``head``: the command stops quietly); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from ._files import check_output_path, check_output_store, write_atomic
from ._interrupt import Terminated, redeliver_swallowed_interrupts, terminate_on_sigterm
from .baselines import routing_only, single_model
from .errors import FormatError, InfeasibleBudgetError, InstanceError, RobatchError
from .evaluate import evaluate
from .instance import Instance
from .io import format_of, load, save
from .plan import Plan
from .solve import OPTIMAL_RTOL, budget_from_fraction, reference_costs, solve
from .solvers import AUTO, get_backend, registered_methods

__all__ = ["main", "DEFAULT_WORKLOAD", "DEFAULT_BUDGET_FRACTION"]

PROG = "robatch-opt"

#: What ``solve`` runs when no instance file is given.
DEFAULT_WORKLOAD = {"pool": "qwen3", "n": 2000, "seed": 0}

#: Budget used when neither ``--budget``, ``--budget-fraction`` nor ``--min-mean-utility`` is given.
DEFAULT_BUDGET_FRACTION = 0.5
#: Seconds per solve when `--time-limit` is not given (the distributed greedy takes none).
DEFAULT_TIME_LIMIT_S = 60.0

#: Relative tolerance of ``evaluate``'s comparison of a plan's claims with its grading.
CLAIM_RTOL = 1e-9

# An internal error (a bug) has its own status, 70 (sysexits' EX_SOFTWARE): with 1 a script
# could not tell it from `serve`'s "queries left unanswered", which --resume is for.
EXIT_OK, EXIT_MISMATCH, EXIT_INTERNAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 70, 2, 130
EXIT_BROKEN_PIPE, EXIT_TERMINATED = 141, 143

#: What the output's terms mean (``--help`` and the README say the same).
LEGEND = """\
terms:
  utility       expected quality of an answer in [0, 1] (e.g. the probability that it is
                correct); mean utility = expected accuracy of the whole workload
  exact cost    what the plan costs in USD: every call pays the task's system prompt once,
                every query its own input and output tokens (a partial call costs as a full one)
  bound         a proven limit on the optimum: no plan within the budget has more utility
                (quality form: none reaching the target costs less)
  gap           (bound - utility) / bound: how far the plan can be from the optimum at most
  optimal       the gap is 0 (within 1e-9): proven best; feasible: a valid plan with that gap
                (e.g. an exact engine stopped at its time limit, or the greedy)"""


class _UsageError(Exception):
    """An argparse usage mistake (turned into one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str):                       # noqa: D401 (argparse's name)
        raise _UsageError(message)


# ----------------------------------------------------------------------------- parsing
def _check_plot_format(path: str) -> None:
    """Refuse a ``--plot`` suffix matplotlib cannot write (no suffix: PNG), before any work."""
    suffix = os.path.splitext(str(path))[1].lower().lstrip(".")
    if not suffix:
        return
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return                              # reported when the plot is drawn
    known = FigureCanvasBase.get_supported_filetypes()
    if suffix not in known:
        raise _CliError(f"--plot: cannot write images of type '.{suffix}' (use one of "
                        f"{', '.join('.' + k for k in sorted(known))}, or no suffix for PNG)")


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


_seed = _int_at_least(0)             # the same rule for every command's --seed
_positive_int = _int_at_least(1)


def _parser() -> _Parser:
    p = _Parser(prog=PROG, description="Joint routing and batch prompting of LLM queries under a budget.",
                epilog=LEGEND, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--traceback", action="store_true",
                   help="on an error, raise it with its Python traceback (for debugging)")
    sub = p.add_subparsers(dest="command", metavar="{solve,generate,evaluate,frontier,online,serve}", required=True)

    s = sub.add_parser(
        "solve", help="plan an instance (default: the bundled LLM workload)",
        epilog=LEGEND, formatter_class=argparse.RawDescriptionHelpFormatter,
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
                        "instances, lns (the greedy, then neighbourhood search) otherwise)")
    s.add_argument("--solver", choices=("highs", "cbc"), metavar="ENGINE",
                   help="MILP engine: highs (default) or cbc; implies --method milp")
    # Default None (60 s, set in _cmd_solve): the distributed greedy has no time limit and
    # refuses one given explicitly, which a default of 60 would hide.
    s.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="time limit of each solve in seconds, model building included (default 60); "
                        "the baselines are up to K + 1 further solves, one per restriction")
    s.add_argument("--seed", type=_seed, default=0, metavar="N", help="solver seed (default 0)")
    s.add_argument("--out", metavar="PLAN.json",
                   help="write the plan (JSON) here; checked before any work, written whole or not at "
                        "all; the same command writes the same bytes (timings are left out) unless a search is "
                        "cut short by --time-limit (cpsat, lns, milp), where how far it got depends on "
                        "the machine's speed")
    s.add_argument("--timings", action="store_true",
                   help="with --out: keep the run's timings in the plan file (then it differs run to run)")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    s.add_argument("--no-baselines", action="store_true",
                   help="skip the routing-only and batching-only baselines")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="solve with the greedy on the Dask cluster at ADDRESS (tcp://HOST:PORT); the way to "
                        "solve an INSTANCE.zarr store (budget form, no baselines; robatch_opt[dask])")
    s.set_defaults(func=_cmd_solve)

    g = sub.add_parser("generate", help="write a generated instance to a file",
                       description="Generate a workload with ro.workloads and save it "
                                   "(.json, .npz or a chunked .zarr store, by suffix).")
    g.add_argument("kind", choices=("llm", "synthetic"), help="workload generator")
    g.add_argument("out", metavar="OUT", help="output file (.json or .npz), or an OUT.zarr store (any kind; "
                                              "llm writes it chunk by chunk)")
    g.add_argument("--n", type=_positive_int, default=DEFAULT_WORKLOAD["n"], metavar="N",
                   help=f"number of queries (default {DEFAULT_WORKLOAD['n']})")
    g.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default 0)")
    g.add_argument("--pool", metavar="P", help=f"llm only: model pool (default {DEFAULT_WORKLOAD['pool']})")
    g.add_argument("--family", metavar="F", help="synthetic only: instance family")
    g.add_argument("--price", choices=("api", "compute"), help="llm only: price model")
    g.add_argument("--chunk-queries", type=_positive_int, metavar="Q",
                   help="OUT.zarr only: queries per chunk (llm writes chunk by chunk, never whole)")
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
        epilog=LEGEND, formatter_class=argparse.RawDescriptionHelpFormatter,
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
    f.add_argument("--seed", type=_seed, default=0, metavar="N", help="solver seed (default 0)")
    f.add_argument("--compare", action="store_true",
                   help="also sweep the routing-only and batching-only restrictions at the same budgets")
    f.add_argument("--plot", metavar="FILE.png", help="write a PNG (needs matplotlib: robatch_opt[plot])")
    f.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    f.set_defaults(func=_cmd_frontier)
    _add_online_parser(sub)
    _add_serve_parser(sub)
    for command in sub.choices.values():
        # Also after the command (`robatch-opt solve ... --traceback`), where users put it;
        # main reads it from argv. SUPPRESS: the command's parser must not reset the flag.
        command.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                             help="on an error, show its Python traceback")
    return p


def _add_serve_parser(sub) -> None:
    from .serve.command import add_arguments

    v = sub.add_parser(
        "serve", help="run a plan on OpenAI-compatible endpoints (needs robatch_opt[serve])",
        description="Send every call of PLAN to its model's endpoint, split the replies into answers, "
                    "account the real usage and cost, and journal every finished call (--resume continues "
                    "a killed run without re-sending answered calls; failed ones are sent again). Exits 1 "
                    "while any query is left unanswered.")
    add_arguments(v)
    v.set_defaults(func=_cmd_serve)


# ------------------------------------------------------------------------------ helpers
class _CliError(RobatchError, ValueError):
    """An error found by the command line itself (message printed as is)."""


def _load_instance(path: str, *, to_plan: bool = False) -> Instance:
    """The instance at ``path``; with ``to_plan``, one that has queries (a plan for none
    would print a mean utility of 0 against any target, under "optimal")."""
    if Path(path).is_dir() and Path(path).suffix.lower() != ".zarr":     # .zarr: a chunked store
        raise _CliError(f"{path}: is a directory, not an instance file (.json or .npz)")
    try:
        inst = load(path)
    except (InstanceError, FormatError) as exc:
        msg = str(exc)
        raise _CliError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from exc
    _SIZE["what"] = f"{inst.n_queries:,} queries x {inst.n_options} options"
    _SIZE["bytes"] = _solve_bytes(inst.n_queries, inst.n_options, inst.n_models)
    if to_plan and inst.n_queries == 0:
        raise _CliError(f"{path}: the instance has no queries: there is nothing to plan")
    return inst


# What the command works on, for an out-of-memory message (set as soon as it is known).
_SIZE: dict[str, Any] = {}


def _solve_bytes(n: int, n_options: int, n_models: int) -> int:
    """A rough peak of a solve's arrays: a few n x J float64 tables (costs, utilities, hulls)."""
    return int(n) * (6 * 8 * int(n_options) + 8 * int(n_models) + 64)


def _available_bytes() -> int | None:
    """Memory available to this process now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _bytes(x: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if x < 1000 or unit == "PB":
            return f"{x:.3g} {unit}"
        x /= 1000
    return f"{x:.3g} PB"


def _generate_bytes(n: int, n_options: int, n_models: int) -> int:
    """A rough peak of generating an instance: its arrays, their validated copies and draws."""
    return int(n) * 4 * (8 * (int(n_options) + int(n_models)) + 32)


def _out_of_memory_message() -> str:
    what = _SIZE.get("what")
    need = _SIZE.get("bytes")
    avail = _available_bytes()
    parts = ["out of memory"]
    if what:
        parts.append(f"while working on {what}")
    if need:
        parts.append(f"(its arrays need about {_bytes(need)}"
                     + (f"; {_bytes(avail)} available)" if avail else ")"))
    return " ".join(parts)


class _Display:
    """A transient progress line on a terminal's stderr (rich): phase, elapsed, incumbent, bound, gap.

    Silent (and free) when disabled: not a terminal, or ``--json``.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress = None
        self._task = None
        self._label = ""
        self._budget_form = True

    def __enter__(self) -> "_Display":
        if self.enabled:
            try:
                from rich.console import Console
                from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            except ImportError:
                self.enabled = False
                return self
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task("", total=None)
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def phase(self, label: str, *, budget_form: bool = True) -> None:
        self._label, self._budget_form = label, budget_form
        if self._progress is not None:
            self._progress.update(self._task, description=label)

    def note(self, text: str) -> None:
        """A line that stays (above the progress line); stderr, only when enabled."""
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)

    def report(self, p) -> None:
        """The ``progress=`` callback of :func:`robatch_opt.solve`."""
        if self._progress is None:
            return
        parts = [self._label]
        unit = "" if self._budget_form else "$"
        if p.incumbent is not None:
            parts.append(f"incumbent {unit}{p.incumbent:.6g}")
        if p.bound is not None:
            # Totals, where the summary prints means: say so (new-user audit).
            parts.append(f"bound {unit}{p.bound:.6g}" + (" (total utility)" if self._budget_form else ""))
        if p.incumbent is not None and p.bound is not None:
            ref = p.bound if self._budget_form else p.incumbent
            if ref:
                parts.append(f"gap {100 * abs(p.bound - p.incumbent) / abs(ref):.4f}%")
        self._progress.update(self._task, description=", ".join(parts))


def _default_instance() -> Instance:
    try:
        from . import workloads
    except ImportError as exc:
        raise _CliError(f"the bundled default workload is unavailable ({exc}); pass an INSTANCE file") from exc
    inst = workloads.llm(**DEFAULT_WORKLOAD)
    _SIZE["what"] = f"{inst.n_queries:,} queries x {inst.n_options} options"
    return inst


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
def _solve_restriction(make, *, budget_usd, min_mean_utility, method, time_limit_s, seed,
                       options=None, display=None, label="") -> dict[str, Any]:
    """Solve one restriction; infeasible or inapplicable restrictions are reported, not raised."""
    try:
        sub = make()
    except InstanceError as exc:
        # e.g. a model whose window fits only some queries: that restriction has no plan at all.
        return {"status": "not_applicable", "reason": str(exc)}
    if display is not None:
        display.phase(f"baseline {label} ({method})", budget_form=budget_usd is not None)
    try:
        plan = solve(sub, budget=budget_usd, min_mean_utility=min_mean_utility, method=method,
                     time_limit_s=time_limit_s, seed=seed,
                     progress=None if display is None else display.report, **(options or {}))
    except InfeasibleBudgetError as exc:
        cheapest = exc.cheapest_cost_usd
        if not math.isfinite(cheapest):
            cheapest = reference_costs(sub)[0]
        return {"status": "infeasible" if exc.proven else "no_solution", "cheapest_cost_usd": cheapest,
                "reason": str(exc)}
    return _headline(plan)


def _baselines(inst: Instance, plan: Plan, args, options: dict, display: "_Display") -> dict[str, Any]:
    # Under --method auto the baselines are solved by auto too (lns stops at its gap
    # tolerance and time cap there; asked for by name it would spend the whole limit).
    method = AUTO if args.method == AUTO and not options else plan.method
    kw = dict(budget_usd=plan.budget_usd, min_mean_utility=plan.min_mean_utility, method=method,
              time_limit_s=args.time_limit, seed=args.seed, options=options, display=display)
    # The restrictions are those of robatch_opt.baselines, so the CLI and the library agree.
    routing = _solve_restriction(lambda: routing_only(inst), label="routing-only", **kw)
    routing["restriction"] = "batch size 1 on every model"
    per_model = {m.name: _solve_restriction(lambda name=m.name: single_model(inst, name),
                                            label=f"only {m.name}", **kw)
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
    if args.scheduler is not None or (args.instance or "").rstrip("/").lower().endswith(".zarr"):
        return _cmd_solve_distributed(args)       # a Dask cluster (robatch_opt.distributed)
    if args.time_limit is None:
        args.time_limit = DEFAULT_TIME_LIMIT_S
    if args.out is not None:               # first: a bad path must not cost a solve (or an import)
        check_output_path(args.out, inputs=[args.instance] if args.instance else [], what="--out")
    method, options = args.method, {}
    if args.solver is not None:
        if method not in (AUTO, "milp"):
            raise _UsageError(f"argument --solver: picks the MILP engine, but --method is {method!r}")
        method, options = "milp", {"solver": args.solver}
    if method != AUTO:
        get_backend(method)                # unknown or unavailable: fail before any work
    if args.instance is not None and Path(args.instance).is_dir():
        raise _CliError(f"{args.instance}: is a directory, not an instance file (.json or .npz)")
    if args.timings and args.out is None:
        raise _UsageError("argument --timings: applies to the plan file, give --out too")
    display = _Display(sys.stderr.isatty() and not args.json)
    with display:
        display.phase("loading the instance")
        if args.instance is None:
            inst = _default_instance()
            params = ", ".join(f"{k}={v!r}" for k, v in DEFAULT_WORKLOAD.items())
            source = f"default: ro.workloads.llm({params})"
        else:
            inst = _load_instance(args.instance, to_plan=True)
            source = args.instance
        _SIZE["bytes"] = _solve_bytes(inst.n_queries, inst.n_options, inst.n_models)

        compile_s = _warm_up(display, quiet=args.json, inst=inst, quality=args.min_mean_utility is not None)

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

        display.phase(f"solving ({method})", budget_form=budget is not None)
        plan = solve(inst, budget=budget, min_mean_utility=args.min_mean_utility, method=method,
                     time_limit_s=args.time_limit, seed=args.seed, progress=display.report, **options)
        baselines = None if args.no_baselines else _baselines(inst, plan, args, options, display)
    if args.out is not None:
        write_atomic(args.out, plan.to_json(timings=args.timings))

    if args.json:
        d = _headline(plan)
        d.update({"instance": source, "n_tasks": inst.n_tasks, "n_models": inst.n_models,
                  "n_options": inst.n_options, "budget_rule": rule, "plan_file": args.out,
                  "compile_s": compile_s, "baselines": baselines})
        _print_json(d)
        return EXIT_OK

    print(f"instance        {source}")
    print(f"                {inst.n_queries:,} queries, {inst.n_tasks} tasks, {inst.n_models} models, "
          f"{inst.n_options} options (model, batch size)")
    if "budget_fraction" in rule:
        print(f"budget rule     cheapest {_usd(rule['cheapest_cost_usd'])} + {rule['budget_fraction']:g} x "
              f"(max-utility plan {_usd(rule['max_utility_cost_usd'])} - cheapest)")
    print(plan.summary())
    if compile_s is not None:
        print(f"                (kernels compiled in {compile_s:.1f} s before the solve, once per install; "
              "not in the solve time)")
    if args.out is not None:
        print(f"plan written to {args.out}")
    if baselines is not None:
        print()
        print(_baseline_table(plan, baselines))
    return EXIT_OK


class _DaskEarlyCancelFilter(logging.Filter):
    """Drop the one record that distributed's ``sync()`` logs when Ctrl-C comes early.

    Its ``cancel()`` reads ``future`` before the coroutine has assigned it (distributed
    2026.8: ``NameError: cannot access free variable 'future'``), on the event loop's thread,
    which tornado logs as a traceback; it races the command's one-line "interrupted" (seen in
    a CI run). Nothing had been started to cancel, so the record says nothing: only it is
    dropped (matched by exception, name and the function and file that raised it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NameError) or (getattr(exc, "name", None) or str(exc)).find("future") < 0:
            return True
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        code = tb.tb_frame.f_code if tb is not None else None
        return not (code is not None and code.co_name == "cancel"
                    and os.path.join("distributed", "utils.py") in code.co_filename)


def _drop_dask_early_cancel_records() -> None:
    """Install :class:`_DaskEarlyCancelFilter` on tornado's application logger (once; it stays:
    the record can come from the loop's thread after the command has returned)."""
    log = logging.getLogger("tornado.application")
    if not any(isinstance(f, _DaskEarlyCancelFilter) for f in log.filters):
        log.addFilter(_DaskEarlyCancelFilter())


def _cmd_solve_distributed(args) -> int:
    """``solve --scheduler ADDRESS``: the greedy on a Dask cluster (robatch_opt.distributed)."""
    if args.scheduler is None:
        raise _UsageError(f"{args.instance}: a .zarr store is solved on a Dask cluster: give --scheduler tcp://HOST:PORT")
    if args.instance is None:
        raise _UsageError("argument --scheduler: needs an INSTANCE (.zarr, .json or .npz)")
    if args.min_mean_utility is not None:
        raise _UsageError("argument --min-mean-utility: the distributed greedy solves the budget form only")
    if args.method not in (AUTO, "greedy"):
        raise _UsageError(f"argument --method: the distributed solver runs the greedy only, got {args.method!r}")
    # Options the distributed greedy has no use for are refused, not silently ignored (audit).
    if args.solver is not None:
        raise _UsageError("argument --solver: picks a MILP engine; the distributed solver runs the greedy only")
    if args.time_limit is not None:
        raise _UsageError("argument --time-limit: the distributed greedy runs to the end (it has no time limit)")
    if args.timings and args.out is None:
        raise _UsageError("argument --timings: applies to the plan file, give --out too")
    if args.out is not None:
        check_output_path(args.out, inputs=[args.instance], what="--out")
    from . import distributed
    inst = _load_instance(args.instance, to_plan=True)
    _drop_dask_early_cancel_records()
    try:
        client = distributed.connect(args.scheduler)
    except distributed.SchedulerUnreachableError as exc:
        raise _UsageError(f"argument --scheduler: {exc}") from exc
    try:
        if args.budget is not None:
            budget, rule = args.budget, {"form": "budget", "budget_usd": args.budget}
        else:
            fraction = DEFAULT_BUDGET_FRACTION if args.budget_fraction is None else args.budget_fraction
            budget = distributed.budget_from_fraction(inst, fraction, client)
            rule = {"form": "budget", "budget_fraction": fraction, "budget_usd": budget}
        plan = solve(inst, budget=budget, method="greedy", client=client, progress=not args.json and None)
    except BaseException:
        # Interrupted (or failed): the client's pending tasks end with AllExit, which asyncio
        # and Dask would print as tracebacks while it closes; the command says it in one line.
        for name in ("asyncio", "distributed", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        raise
    finally:
        client.close()
    if args.out is not None:
        write_atomic(args.out, plan.to_json(timings=args.timings))
    if args.json:
        _print_json({**_headline(plan), "instance": args.instance, "budget_rule": rule, "plan_file": args.out,
                     "plan_store": plan.info.get("plan_path")})
        return EXIT_OK
    print(f"instance        {args.instance}  (Dask cluster {args.scheduler})")
    print(plan.summary())
    if plan.info.get("plan_path"):
        print(f"options stored  {plan.info['plan_path']}")
    if args.out is not None:
        print(f"plan written to {args.out}")
    return EXIT_OK


def _warm_up(display: "_Display", *, quiet: bool, inst: Instance | None = None, quality: bool = True,
             frontier: bool = False) -> float | None:
    """Compile the kernels the command needs before its solves if they are not cached; their
    seconds, or None.

    The first run after an install compiles the Numba kernels (about 10 s on two cores, shared
    between processes by :func:`robatch_opt.kernels.warmup.compile_kernels`): say so once,
    on stderr, and keep that time out of the solve's. Only what the command runs is
    compiled: the quality form's walk only for ``quality``, the parallel variants only for an
    instance large enough to use them, the frontier's walk only for ``frontier``.
    """
    from .kernels.warmup import kernels_cached, parts_for, warm_up
    from .solvers.greedy import PARALLEL_MIN_CELLS

    parallel = inst is not None and inst.n_queries * inst.n_options >= PARALLEL_MIN_CELLS
    if kernels_cached(parts_for(quality=quality, parallel=parallel, frontier=frontier)):
        warm_up(quality=quality, parallel=parallel, frontier=frontier)     # from the cache: well under a second
        return None
    if not quiet:
        message = (f"{PROG}: compiling the solver kernels (once after install, about 10-20 s; "
                   "cached for later runs)...")
        if display.enabled:
            display.note(message)
        else:
            print(message, file=sys.stderr, flush=True)
    display.phase("compiling the solver kernels")
    return warm_up(quality=quality, parallel=parallel, frontier=frontier)


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
    zarr_out = Path(args.out).suffix.lower() == ".zarr"     # a chunked store (robatch_opt.distributed)
    if zarr_out:
        check_output_store(args.out, what="OUT")
    else:
        format_of(args.out)                # an unknown suffix fails before any work
        check_output_path(args.out, what="OUT")
        if args.chunk_queries is not None:
            raise _UsageError("argument --chunk-queries: applies to an OUT.zarr store only")
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
        if zarr_out:                       # written chunk by chunk: never whole in memory
            inst = workloads.llm(**kw, out=args.out, chunk_queries=args.chunk_queries)
            # The call that reproduces it: a store's queries are drawn per chunk, so they depend on
            # chunk_queries and differ from the .json of the same seed (the label hid it).
            call = ", ".join(f"{k}={v!r}" for k, v in {**kw, "out": args.out,
                                                        "chunk_queries": inst.chunk_queries}.items())
            print(f"wrote {args.out}: ro.workloads.llm({call}): "
                  f"{inst.n_queries:,} queries in {inst.n_chunks} chunks of {inst.chunk_queries:,} (drawn per "
                  f"chunk), {inst.n_tasks} tasks, {inst.n_models} models, {inst.n_options} options")
            return EXIT_OK
        make = workloads.llm
    else:
        kw = {"n": args.n, "seed": args.seed}
        if args.family is not None:
            kw["family"] = args.family
        make = workloads.synthetic
    # Size check before any work: one query of the same workload tells the option count.
    probe = make(**{**kw, "n": 1})
    need = _generate_bytes(args.n, probe.n_options, probe.n_models)
    avail = _available_bytes()
    _SIZE.update(what=f"{args.n:,} queries x {probe.n_options} options", bytes=need)
    if avail is not None and need > avail:
        raise _CliError(f"--n {args.n:,}: an instance of {args.n:,} queries x {probe.n_options} options "
                        f"needs about {_bytes(need)} of memory to generate; {_bytes(avail)} is available")
    inst = make(**kw)
    path = save(inst, args.out, **({"chunk_queries": args.chunk_queries} if zarr_out and args.chunk_queries else {}))
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if zarr_out else path.stat().st_size
    params = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    print(f"wrote {path}: ro.workloads.{args.kind}({params}): {inst.n_queries:,} queries, {inst.n_tasks} tasks, "
          f"{inst.n_models} models, {inst.n_options} options, {size:,} bytes")
    return EXIT_OK


# ---------------------------------------------------------------------------- evaluate
def _read_plan(path: str, *, with_claims: bool = False):
    """The plan in ``path``; with ``with_claims``, also the file's informative fields that
    :class:`Plan` derives instead of storing (``mean_utility``), for evaluate to check."""
    if Path(path).is_dir():
        raise _CliError(f"{path}: is a directory, not a plan file")
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    plan = Plan.from_json(text, source=path)         # its errors name the file
    if not with_claims:
        return plan
    return plan, {"mean_utility": json.loads(text).get("mean_utility")}


def _short(items, limit: int = 4) -> str:
    """A list for a one-line message: the first few items, then how many more."""
    items = list(items)
    head = ", ".join(map(str, items[:limit]))
    return f"[{head}{f', ... ({len(items) - limit} more)' if len(items) > limit else ''}]"


def _close(a: float, b: float) -> bool:
    # A claim of inf is never close (inf - inf is nan, and inf <= inf would pass a test on
    # the difference): the graded figures are finite.
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= CLAIM_RTOL * max(abs(a), abs(b), 1e-12)


def _claimed_gap(plan, ev) -> float | None:
    """The gap the plan's own bound gives the graded plan (None without a bound), as the
    front door computes it."""
    if plan.upper_bound is not None:
        ub = plan.upper_bound
        return (ub - ev.utility) / ub if ub > 0 else 0.0
    if plan.cost_lower_bound_usd is not None:
        lb = plan.cost_lower_bound_usd
        return (ev.cost_usd - lb) / ev.cost_usd if ev.cost_usd > 0 else 0.0
    return None


def _cmd_evaluate(args) -> int:
    inst = _load_instance(args.instance)
    if not isinstance(inst, Instance):
        # A chunked store (.zarr) read whole: its plan file holds an option per query anyway.
        inst = inst.to_instance()
    plan, extra_claims = _read_plan(args.plan, with_claims=True)
    names = tuple(m.name for m in inst.models)
    if plan.n_queries != inst.n_queries:
        raise _CliError(f"{args.plan}: the plan covers {plan.n_queries} queries but {args.instance} "
                        f"has {inst.n_queries}")
    if plan.model_names != names:
        raise _CliError(f"{args.plan}: the plan is for models {_short(plan.model_names)} but {args.instance} "
                        f"has {_short(names)}")
    if plan.options != inst.options:
        j = next((j for j, (a, b) in enumerate(zip(plan.options, inst.options)) if a != b),
                 min(len(plan.options), len(inst.options)))
        there = lambda opts: f"(model {opts[j][0]}, b={opts[j][1]})" if j < len(opts) else "none"  # noqa: E731
        raise _CliError(f"{args.plan}: the plan has {len(plan.options)} options and {args.instance} "
                        f"{len(inst.options)}; option {j} is {there(plan.options)} in the plan and "
                        f"{there(inst.options)} in the instance")
    if not (plan.query_task == inst.query_task).all():
        i = int((plan.query_task != inst.query_task).argmax())
        raise _CliError(f"{args.plan}: query {i} is in task {int(plan.query_task[i])} in the plan but "
                        f"{int(inst.query_task[i])} in {args.instance}")
    ev = evaluate(inst, plan.option)

    checks: dict[str, bool] = {
        "cost_usd": _close(ev.cost_usd, plan.cost_usd),
        "utility": _close(ev.utility, plan.utility),
        "n_calls": ev.n_calls == plan.n_calls,
        # Informative in the file (Plan derives it), but a claim all the same (new-user audit).
        **({"mean_utility": _close(ev.mean_utility, extra_claims["mean_utility"])}
           if extra_claims["mean_utility"] is not None else {}),
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
    gap = _claimed_gap(plan, ev)
    if gap is not None:
        # The gap and the status follow from the bound: a plan edited to "optimal, gap 0"
        # with a bound 0.2 % above its utility passed before.
        checks["gap"] = math.isfinite(gap) and abs(gap - plan.gap) <= 1e-9 + CLAIM_RTOL * abs(gap)
        if plan.status.value == "optimal":
            checks["status"] = math.isfinite(gap) and gap <= OPTIMAL_RTOL * (1 + CLAIM_RTOL) + 1e-15
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
            # The bound, gap and status are checked for consistency with the graded plan, not
            # re-proved: only an exact solve could show a bound false.
            "bound_reproved": False,
        })
        return EXIT_OK if ok else EXIT_MISMATCH

    def mark(key: str) -> str:
        return "ok" if checks[key] else "MISMATCH"

    def consistent(key: str) -> str:
        # The solver's bound is its claim: evaluate can refute it against the plan, not prove it.
        return "consistent (not re-proved)" if checks[key] else "MISMATCH"

    b = ev.breakdown
    print(f"plan            {args.plan} ({plan.method}, {plan.status.value})")
    print(f"instance        {args.instance}: {inst.n_queries:,} queries, {inst.n_options} options")
    print(f"exact cost      {_usd(ev.cost_usd)}   claimed {_usd(plan.cost_usd)}   {mark('cost_usd')}")
    print(f"  breakdown     system {_usd(b.system_usd)}, input {_usd(b.input_usd)}, output {_usd(b.output_usd)}"
          f"   {mark('breakdown')}")
    print(f"utility         {ev.utility:.9g} (mean {ev.mean_utility:.6f})   claimed {plan.utility:.9g}   "
          f"{mark('utility')}")
    if "mean_utility" in checks:
        print(f"mean utility    {ev.mean_utility:.9g}   claimed {extra_claims['mean_utility']:.9g}   "
              f"{mark('mean_utility')}")
    print(f"calls           {ev.n_calls:,}   claimed {plan.n_calls:,}   {mark('n_calls')}")
    if "within_budget" in checks:
        print(f"budget          {_usd(plan.budget_usd)}   {'within' if checks['within_budget'] else 'EXCEEDED'}")
    if "meets_target" in checks:
        print(f"target          mean utility >= {plan.min_mean_utility:.6f}   "
              f"{'met' if checks['meets_target'] else 'MISSED'}")
    if "below_upper_bound" in checks:
        print(f"upper bound     {plan.upper_bound:.9g}   {consistent('below_upper_bound')}")
    if "above_cost_lower_bound" in checks:
        print(f"cost lower bd   {_usd(plan.cost_lower_bound_usd)}   {consistent('above_cost_lower_bound')}")
    if "gap" in checks:
        print(f"gap             {100 * gap:.6g}%   claimed {100 * plan.gap:.6g}%   {consistent('gap')}")
    if "status" in checks:
        print(f"status          optimal claimed, gap {100 * gap:.3g}%   {consistent('status')}")
    print("verdict         " + ("the plan's claims match the grading (its bound is the solver's: checked "
                                "against the plan, not re-proved)" if ok else
                                "MISMATCH: " + ", ".join(k for k, v in checks.items() if not v)))
    return EXIT_OK if ok else EXIT_MISMATCH


def _cmd_frontier(args) -> int:
    from . import baselines
    from .frontier import frontier, frontier_budgets, plot_frontiers

    get_backend(args.method) if args.method != AUTO else None      # fail before any work
    if args.plot is not None:
        check_output_path(args.plot, inputs=[args.instance] if args.instance else [], what="--plot")
        _check_plot_format(args.plot)
    inst = _load_instance(args.instance, to_plan=True) if args.instance else _default_instance()
    with _Display(sys.stderr.isatty() and not args.json) as display:
        _warm_up(display, quiet=args.json, inst=inst, quality=False, frontier=True)
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


# ------------------------------------------------------------------------------- serve
def _cmd_serve(args) -> int:
    from .serve.command import serve_command

    inst = _load_instance(args.instance)
    if not isinstance(inst, Instance):
        # A chunked store (.zarr): served whole, as evaluate grades it (a plan of questions
        # one per query is small enough for memory anyway).
        inst = inst.to_instance()
    plan = _read_plan(args.plan)
    return serve_command(args, inst, plan)


# -------------------------------------------------------------------------------- main
def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# ------------------------------------------------------------------------------- online
def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _add_online_parser(sub) -> None:
    o = sub.add_parser(
        "online", help="replay a request stream through MESS+ and the batching router (service level alpha)",
        description="Replay a stream of requests (Poisson or bursty arrivals) through MESS+ (per-request routing "
                    "with a virtual queue for the service level alpha) and, with --max-wait, the batching "
                    "router (windows planned as small Route-with-Batching problems). The predictor is fitted "
                    "offline on held-out data and updated online. Reports realized satisfaction, Q_T/T, cost, "
                    "the ratio to the hindsight optimum and waiting-time percentiles. Without --data, streams "
                    "ro.workloads.llm('qwen3', n=2000) with simulated outcomes.")
    o.add_argument("--data", metavar="PATH", nargs="+",
                   help="RouterBench CSV files or folder (real outcomes and costs): half is streamed, the "
                        "predictor is fitted on the other half")
    o.add_argument("--prices", metavar="FILE.json",
                   help="with --data: prices of models RouterBench does not price, a JSON object "
                        "{model: [input, output]} in USD per million tokens (merged over RouterBench's own)")
    o.add_argument("--n", type=_positive_int, default=None, metavar="N",
                   help="without --data: requests of the simulated stream (default 2000)")
    o.add_argument("--alpha", type=_unit_interval, required=True, metavar="A", help="service level in [0, 1]")
    o.add_argument("--V", type=_positive_float, default=None, metavar="V",
                   help="cost weight (default: scaled to the models' costs, see ro.online.DEFAULT_V_SCALE)")
    o.add_argument("--c", type=_nonneg_float, default=0.1, metavar="C",
                   help="exploration constant: explore with probability min(1, C / t^0.25) (default 0.1)")
    o.add_argument("--max-wait", type=_nonneg_float, default=None, metavar="S",
                   help="also run the batching router with this maximum wait, seconds")
    o.add_argument("--rate", type=_positive_float, default=20.0, metavar="R", help="arrivals per second (default 20)")
    o.add_argument("--arrival", choices=("poisson", "bursty"), default="poisson", help="arrival process")
    o.add_argument("--seed", type=_seed, default=0, metavar="N", help="seed of split, arrivals and routers (default 0)")
    o.add_argument("--warm-start", action="store_true",
                   help="start each router's queue at ro.online.equilibrium_queue on the training half "
                        "(certificate alpha - (Q_T - Q_0)/T)")
    o.add_argument("--window-solver", choices=("heuristic", "exact", "auto"), default=None,
                   help="how the batching router plans a window (default heuristic; exact: HiGHS); "
                        "needs --max-wait")
    o.add_argument("--plot", metavar="FILE.png", help="running satisfaction and cost over time (needs matplotlib)")
    o.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    o.set_defaults(func=_cmd_online)


def _cmd_online(args) -> int:
    from . import online as on
    if args.data and args.n is not None:
        # It was ignored: the whole file streamed (a user asked for 100 and got 1,102).
        raise _UsageError("argument --n: sizes the simulated stream; with --data the data's own requests "
                          "are streamed (select fewer with ro.datasets ... .select())")
    if args.window_solver is not None and args.max_wait is None:
        # It would be ignored: without --max-wait no batching router runs.
        raise _UsageError("argument --window-solver: plans the batching router's windows, which runs only "
                          "with --max-wait")
    if args.plot is not None:
        check_output_path(args.plot, inputs=list(args.data or []) + ([args.prices] if args.prices else []), what="--plot")
        _check_plot_format(args.plot)
    if args.prices is not None and not args.data:
        raise _UsageError("argument --prices: prices the models of a --data log; the simulated stream has "
                          "its own")
    if args.data:
        paths = args.data[0] if len(args.data) == 1 else args.data
        prices = _read_prices(args.prices) if args.prices is not None else None
        split = on.routerbench_split(paths, seed=args.seed, prices=prices)
    else:
        split = on.llm_split("qwen3", n=2000 if args.n is None else args.n, seed=args.seed)
    res = on.compare(split, args.alpha, V=args.V, c=args.c, max_wait_s=args.max_wait, rate_per_s=args.rate,
                     arrival=args.arrival, seed=args.seed, progress=False if args.json else None,
                     warm_start=args.warm_start, window_solver=args.window_solver or "heuristic")
    h1, hb = res["hindsight_b1"], res["hindsight_batch"]
    rows = []
    for key in ("mess", "batching", "random"):
        r = res.get(key)
        if r is None:
            continue
        yard = hb if key == "batching" else h1
        rows.append(dict(router=r.router, satisfaction=r.satisfaction, initial_queue=r.initial_queue,
                         queue_growth_over_T=r.queue_growth / max(r.n_feedback, 1),
                         sla_met=bool(r.satisfaction >= args.alpha),
                         sla_shortfall=max(args.alpha - r.satisfaction, 0.0), cost_usd=r.cost_usd,
                         ratio_to_hindsight=(r.cost_usd / yard.cost_usd) if yard and yard.cost_usd > 0 else None,
                         wait_p50_s=r.wait_percentile_s(50), wait_p90_s=r.wait_percentile_s(90),
                         wait_p99_s=r.wait_percentile_s(99), mean_batch_size=float(r.batch_size.mean()),
                         explored=int(r.explored.sum())))
    single = res["single"]
    summary = dict(stream=split.description, alpha=args.alpha, rate_per_s=args.rate, arrival=args.arrival,
                   max_wait_s=args.max_wait, routers=rows,
                   hindsight_b1_usd=h1.cost_usd if h1 else None, hindsight_batching_usd=hb.cost_usd if hb else None,
                   cheapest_single_model=single.model, cheapest_single_model_usd=single.cost_usd,
                   offline_plan_b1_usd=res["offline_b1"].cost_usd if res["offline_b1"] else None,
                   offline_plan_batching_usd=res["offline_batch"].cost_usd if res["offline_batch"] else None)
    if args.plot:
        try:
            on.plot_time_series({r.router: res[k] for k, r in (("mess", res["mess"]), ("batching", res["batching"]),
                                                               ("random", res.get("random"))) if r is not None},
                                args.plot, title=split.description)
        except ImportError as exc:
            raise _CliError(f"--plot needs matplotlib (pip install 'robatch_opt[plot]'): {exc}") from exc
    if args.json:
        _print_json(summary)
        return EXIT_OK
    print(split.description)
    print(f"alpha {args.alpha}  arrivals {args.arrival} {args.rate:g}/s  "
          + (f"hindsight optimum: b=1 ${h1.cost_usd:.4f}" if h1 else "hindsight: alpha unreachable"), end="")
    print(f", with batching ${hb.cost_usd:.4f}" if hb else "")
    o1, ob = res["offline_b1"], res["offline_batch"]
    print("offline plan with the same predictor (outcomes unknown): "
          + (f"b=1 ${o1.cost_usd:.4f}, with batching ${ob.cost_usd:.4f}" if o1 and ob else "predicts alpha out of reach"))
    print(f"cheapest single model meeting alpha: {single.model or 'none'}"
          + (f" (${single.cost_usd:.4f})" if single.model else ""))
    # SLA: "yes" when the realized satisfaction reaches alpha, else by how much it falls short.
    # dQ/T: the queue's growth (Q_T - Q_0) per received outcome, which bounds the shortfall
    # (negative when a warm-started queue shrank).
    print(f"{'router':<16}{'satisfied':>10}{'dQ/T':>8}{'SLA':>8}{'cost $':>10}{'x hind':>8}"
          f"{'wait p50':>10}{'p90':>9}{'p99':>9}{'mean b':>8}")
    for r in rows:
        ratio = f"{r['ratio_to_hindsight']:.1f}" if r["ratio_to_hindsight"] else "-"
        sla = "yes" if r["sla_met"] else f"-{r['sla_shortfall']:.4f}"
        waits = "".join(f"{_seconds(r[k]):>{w}}" for k, w in (("wait_p50_s", 10), ("wait_p90_s", 9),
                                                               ("wait_p99_s", 9)))
        print(f"{r['router']:<16}{r['satisfaction']:>10.4f}{r['queue_growth_over_T']:>8.4f}{sla:>8}"
              f"{r['cost_usd']:>10.4f}{ratio:>8}{waits}{r['mean_batch_size']:>8.2f}")
    return EXIT_OK


def _read_prices(path: str) -> dict:
    """``--prices``: a JSON object {model: [input, output]}, each entry checked."""
    if os.path.isdir(path):
        raise _CliError(f"--prices {path}: is a directory, not a JSON file")
    try:
        with open(path, encoding="utf-8-sig") as fh:       # a byte-order mark is fine, as in every reader
            table = json.load(fh)
    except FileNotFoundError:
        raise _CliError(f"--prices {path}: no such file") from None
    except UnicodeDecodeError:
        raise _CliError(f"--prices {path}: not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise _CliError(f"--prices {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(table, dict) or not table:
        raise _CliError(f"--prices {path}: must be a JSON object {{model: [input, output]}} in USD per million "
                        f"tokens, got {type(table).__name__ if table else 'an empty object'}")
    from .datasets._common import price_pair

    for model, pair in table.items():          # named here, by this file (the loader names "prices")
        price_pair(pair, model, source=path)
    return table


def _seconds(x: float) -> str:
    """A waiting time for the table: two decimals, or three significant digits when long."""
    return f"{x:.2f}" if abs(x) < 1e5 else f"{x:.3g}"


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
        0 success, 1 ``evaluate`` found a mismatch or ``serve`` left a query unanswered, 2 an
        error (one line on stderr), 70 an internal error (a bug), 130 interrupted (SIGINT),
        141 stdout closed early, 143 terminated (SIGTERM).
    """
    as_program = argv is None                # the console script and ``python -m robatch_opt``
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--traceback" in argv
    # SIGTERM unwinds like Ctrl-C (engines stopped, children killed, temporary files removed)
    # instead of killing the interpreter on the spot. Only the main thread can install it.
    import threading

    # A signal's exception that Python swallowed (a callback's "Exception ignored") is raised again.
    in_main = threading.current_thread() is threading.main_thread()
    undo_sigterm = terminate_on_sigterm() if in_main else None
    undo_redelivery = redeliver_swallowed_interrupts() if in_main else None
    owed = None
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    try:
        status = _run(argv, as_program=as_program, debug=debug)
    finally:
        # Held back while the set-up is undone (a handler raising in the middle would skip
        # the rest and escape main); one that arrived meanwhile is owed like a swallowed one.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals) if in_main else None
        try:
            if undo_redelivery is not None:
                owed = undo_redelivery()
            if undo_sigterm is not None:
                undo_sigterm()
            if mask is not None and owed is None:
                pending = signal.sigpending() & stop_signals
                owed = (signal.SIGINT if signal.SIGINT in pending else signal.SIGTERM) if pending else None
            if as_program and in_main:
                # The command has finished: its output is complete and its status decided. A
                # Ctrl-C during the interpreter's teardown (about half a second) must not turn
                # that into a death by signal (the audit saw exit -2 after a complete run).
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    if owed is not None and status not in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        # A Ctrl-C or SIGTERM that Python swallowed in the command's last moments, whose
        # repeat was still on its way: the user interrupted, and the status says so.
        _fail_quietly("interrupted" if owed == signal.SIGINT else "terminated")
        status = EXIT_INTERRUPTED if owed == signal.SIGINT else EXIT_TERMINATED
    return status


def _run(argv: list[str], *, as_program: bool, debug: bool) -> int:
    """:func:`main` without its signal set-up: parse ``argv``, run the command, map errors."""
    try:
        args = _parser().parse_args(argv)
        if sys.stdout is None:             # started with stdout closed (`>&-`): say so, not exit 0
            raise _CliError("standard output is closed; redirect it to a file or /dev/null")
        return args.func(args)
    except SystemExit as exc:              # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        _fail_quietly("interrupted")
        return _exit_now_if_engine_runs(EXIT_INTERRUPTED, always=as_program)
    except Terminated:
        _fail_quietly("terminated")
        return _exit_now_if_engine_runs(EXIT_TERMINATED, always=as_program)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly. Point stdout at /dev/null so that
        # the interpreter's final flush does not complain about the closed pipe either.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except MemoryError:
        if debug:
            raise
        _fail(_out_of_memory_message())
        return EXIT_ERROR
    except Exception as exc:
        cause = _interrupt_behind(exc)
        if cause is not None:               # a Ctrl-C that an extension wrapped in its own error
            terminated = isinstance(cause, Terminated)
            _fail_quietly("terminated" if terminated else "interrupted")
            return _exit_now_if_engine_runs(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED,
                                            always=as_program)
        if debug:
            raise
        if isinstance(exc, (_UsageError, RobatchError, ValueError, OSError)):
            _fail(_one_line(exc))
            return EXIT_ERROR
        # A bug: still one line, but say how to see more.
        _fail(f"internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --traceback for details)")
        return EXIT_INTERNAL


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The ``KeyboardInterrupt`` or :class:`Terminated` that ``exc`` was raised from, if any.

    Extension modules turn a Ctrl-C that lands inside them into an error of their own:
    pybind11's ``ImportError("initialization failed") from KeyboardInterrupt`` when it lands
    in an import of SciPy or scikit-learn, ``RuntimeError("Error calling __set_name__ ...")``
    when it lands in a class body; the interrupt is then the cause or context."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _exit_now_if_engine_runs(code: int, *, always: bool = False) -> int:
    """``code``; but if a stopped engine is still inside native code (or ``always``: the
    command line's own process), exit at once (``os._exit``).

    Its temporary files and child processes are already gone (their ``with`` blocks ran);
    the interpreter's normal shutdown would tear the engine's thread down mid-call. And a
    Ctrl-C that landed inside code an extension ran through ``PyRun_*`` (imports of SciPy
    and scikit-learn) leaves CPython's "unhandled KeyboardInterrupt" flag set although the
    command caught it: the interpreter then killed itself with SIGINT at exit (status -2
    after "interrupted", 3 runs in 18 of `online` interrupted at 1.0-1.1 s).
    """
    from ._interrupt import engine_running

    if always or engine_running():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


def _fail_quietly(what: str) -> None:
    try:
        print(f"{PROG}: {what}", file=sys.stderr)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
