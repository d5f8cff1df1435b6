"""The front door: :func:`solve` validates, dispatches to a backend, grades with ``evaluate``."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import (InfeasibleBudgetError, InstanceError, SolverError, SolverUnavailableError,
                     UnknownOptionError)
from .evaluate import Evaluation, evaluate, float_sum_rtol, meets_target, within_budget
from .instance import Instance
from .options import compile_options
from .plan import Plan, Status
from ._validate import check_instance, describe, did_you_mean, fmt_num, integer, nonnegative, number
from .solvers import AUTO, get_backend, registered_methods
from .solvers.base import Problem, SolveProgress, SolverResult, check_options
from .solvers.restrictions import best_and_evaluation
from .errors import UnknownMethodError

__all__ = ["solve", "reference_costs", "budget_from_fraction", "AUTO_EXACT_MAX_CELLS", "AUTO_LNS_GAP",
           "AUTO_LNS_TIME_S"]

#: ``method="auto"`` runs the MILP with HiGHS when ``n * J`` is at most this, the greedy
#: otherwise. Chosen by measurement: with the task count cuts HiGHS proved all 90 Qwen3
#: workloads of 200 queries x 16 options (3,200 cells; 30 seeds x budget fractions
#: 0.1/0.3/0.6) in at most 6.4 s of solve time, median 1.6 s, on the 2-core machine
#: (``python benchmarks/bench_exact.py n200 --engines highs,cbc``), far inside the default
#: 60 s limit. (Before those cuts the threshold was 1,200 cells: HiGHS then needed up to
#: 39 s at 200 x 16.) Larger instances can still be proved by asking for the MILP directly.
AUTO_EXACT_MAX_CELLS = 3_200

#: Above the exact threshold ``method="auto"`` runs ``lns``: the greedy plan, kept as it is
#: when its certificate gap is at most AUTO_LNS_GAP (then it is within 0.01 % of optimal by
#: its own bound and a search has little to gain), else improved by large-neighbourhood
#: search until the gap reaches AUTO_LNS_GAP or AUTO_LNS_TIME_S seconds pass (or
#: ``time_limit_s``, if smaller). On Qwen3 200 x 24 at a tight budget (the audit case of
#: issue 17) the greedy's gap is 6.6 % and 10 s of search reach the optimum, 0.713781.
AUTO_LNS_GAP = 1e-4
AUTO_LNS_TIME_S = 10.0

#: Relative tolerance for "the plan meets its bound" (status OPTIMAL without an exact engine).
OPTIMAL_RTOL = 1e-9


def reference_costs(inst: Instance) -> tuple[float, float]:
    """Exact costs of two reference plans, in USD.

    Returns
    -------
    cheapest_usd : float
        Every query on its cheapest amortized option.
    max_utility_usd : float
        Every query on its most useful option (ties: cheaper).
    """
    check_instance(inst, "inst")
    table = compile_options(inst)
    return (evaluate(inst, table.cheapest_option).cost_usd,
            evaluate(inst, table.most_useful_option).cost_usd)


def budget_from_fraction(inst: Instance, fraction: float) -> float:
    """``cheapest + fraction * (max_utility - cheapest)`` with the costs of :func:`reference_costs`.

    ``fraction = 0`` affords the cheapest plan; ``fraction = 1`` affords the most useful one.
    """
    f = nonnegative(fraction, "budget_fraction")
    lo, hi = reference_costs(inst)
    return lo + f * max(hi - lo, 0.0)


def _capacity(inst: Instance, max_queries_per_model) -> np.ndarray | None:
    if max_queries_per_model is None:
        return None
    K = inst.n_models
    cap = np.full(K, inst.n_queries, dtype=np.int64)
    if isinstance(max_queries_per_model, Mapping):
        names = [m.name for m in inst.models]
        items = []
        for name, v in max_queries_per_model.items():
            try:                                 # a name, or an index (as Instance.model_index)
                items.append((inst.model_index(name), v))
            except InstanceError:
                raise InstanceError(f"max_queries_per_model[{name!r}]", f"unknown model; known: {names}"
                                    f"{did_you_mean(name, names)}") from None
    else:
        try:
            vals = list(max_queries_per_model)
        except TypeError:
            raise InstanceError("max_queries_per_model", "must be a sequence (one entry per model) or a "
                                f"mapping of model name to int, got {type(max_queries_per_model).__name__}") from None
        if len(vals) != K:
            raise InstanceError("max_queries_per_model", f"must have one entry per model ({K}), got {len(vals)}")
        items = list(enumerate(vals))
    for k, v in items:
        if v is None:
            continue
        integral = isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating))
                                                          and math.isfinite(v) and float(v).is_integer())
        if isinstance(v, (bool, np.bool_)) or not integral or v < 0:
            raise InstanceError(f"max_queries_per_model[{inst.models[k].name!r}]",
                                f"must be an integer >= 0 or None, got {describe(v)}")
        cap[k] = min(int(v), inst.n_queries)
    if cap.sum() < inst.n_queries:
        raise InfeasibleBudgetError(
            f"`max_queries_per_model`: capacities sum to {int(cap.sum())} < {inst.n_queries} queries",
            budget_usd=None, cheapest_cost_usd=math.inf, lower_bound_usd=math.inf, proven=True)
    return cap


def solve(instance: Instance, budget: float | None = None, *, method: str = "auto",
          min_mean_utility: float | None = None,
          max_queries_per_model: Sequence[int | None] | Mapping[str, int | None] | None = None,
          time_limit_s: float = 60.0, seed: int = 0,
          progress: Callable[[SolveProgress], None] | None = None, **options: Any) -> Plan:
    """Plan a workload: pick a model and a batch size for every query.

    Parameters
    ----------
    instance : Instance
    budget : float, optional
        Budget form (RwB): maximise total utility with exact cost <= ``budget`` USD.
    method : {"auto", "greedy", "cpsat", "milp", "lns", "batching_flow"} or a registered name
        ``"auto"`` proves optimality with the MILP (HiGHS) on small instances
        (``n * J <= AUTO_EXACT_MAX_CELLS``) and runs ``"lns"`` otherwise: the greedy, then
        large-neighbourhood search while the gap exceeds ``AUTO_LNS_GAP`` (at most
        ``AUTO_LNS_TIME_S`` seconds). Every method's plan is at least as good as the
        routing-only and batching-only plans of the same method (``plan.info["restriction"]``
        names the one that won). ``"batching_flow"`` is exact for one model and one task only.
    min_mean_utility : float, optional
        Quality form: minimise exact cost subject to mean utility >= this.
        Exactly one of ``budget`` and ``min_mean_utility`` must be given.
    max_queries_per_model : sequence (one per model) or mapping of name to int, optional
        Per-model capacity; ``None`` entries are unlimited.
    time_limit_s : float
        Wall-clock limit of the whole solve in seconds, model building included (exact
        engines; the greedy needs far less). A time-limited answer is FEASIBLE, never OPTIMAL.
    seed : int
        Seed for engines that use randomness. The same input and seed give the same plan
        when the solve ends on its own (the greedy always; an exact engine that proves its
        answer); a search cut short by ``time_limit_s`` stops wherever the machine's speed
        took it, so two runs may differ (new-user audit: ``lns`` and ``cpsat`` at 4 s).
    progress : callable, optional
        Called with a :class:`~robatch_opt.solvers.base.SolveProgress` as the engine
        finds plans and bounds (exact engines), e.g. to draw a progress display.
    **options
        Backend-specific settings, e.g. ``solver="highs"`` for ``method="milp"``. Each
        backend declares its options (``get_backend(name).options``); any other name, or a
        value of the wrong type, raises :class:`~robatch_opt.errors.UnknownOptionError`
        before any work. ``method="auto"`` takes none. With ``client=`` (a
        ``dask.distributed.Client`` or a scheduler address), or for a chunked instance
        (``ro.load("x.zarr")``), the greedy runs on the Dask cluster:
        :func:`robatch_opt.distributed.solve`, whose options apply (``progress``: Dask's
        progress bar if true).

    Returns
    -------
    Plan
        Graded by :func:`robatch_opt.evaluate`, with a proven bound and the gap to it.

    Raises
    ------
    UnknownMethodError, SolverUnavailableError, UnknownOptionError
        Before any work, for a method that is not registered or not installed, or an
        option the method does not declare.
    InfeasibleBudgetError
        No plan within the budget (or reaching the target); carries the cheapest cost found.
    InstanceError
        Bad budget, target or capacity.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst = ro.workloads.synthetic(n=200, family="uncorrelated", seed=1)
    >>> plan = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.5), method="greedy")
    >>> plan.cost_usd <= plan.budget_usd and plan.utility <= plan.upper_bound
    True
    """
    from .distributed.store import ChunkedInstance          # no dask or zarr import until used
    if options.get("client") is not None or isinstance(instance, ChunkedInstance):
        from .distributed import solve as distributed_solve
        return distributed_solve(instance, budget, method="greedy" if method == AUTO else method,
                                 min_mean_utility=min_mean_utility,
                                 max_queries_per_model=max_queries_per_model,
                                 progress=progress if progress is None or isinstance(progress, bool) else True,
                                 **options)
    t0 = time.perf_counter()
    if not isinstance(method, str):
        raise UnknownMethodError(f"`method`: must be a string; valid: {', '.join(registered_methods())}")
    if method != AUTO:
        chosen, backend = method, get_backend(method)      # unknown or unavailable: fail first
    check_instance(instance, "instance")
    if method == AUTO:
        if options:
            raise UnknownOptionError(
                f"`{next(iter(options))}`: method 'auto' takes no engine options, because the engine it "
                f"picks depends on the instance's size; name the method (e.g. method='milp', solver='cbc')")
        # Resolved before any work too: small instances go to an exact engine.
        cells = instance.n_queries * instance.n_options
        chosen = "milp" if cells <= AUTO_EXACT_MAX_CELLS else "lns"
        try:
            backend = get_backend(chosen)
        except SolverUnavailableError:
            chosen, backend = "greedy", get_backend("greedy")
    declared = getattr(backend, "options", None)
    if declared is not None:              # a user's backend without a declaration gets all
        check_options(chosen, declared, options)
    if method == AUTO and chosen == "lns":
        # The greedy first; the search only while its gap exceeds AUTO_LNS_GAP, for at most
        # AUTO_LNS_TIME_S.
        options = {"stop_gap": AUTO_LNS_GAP, **options}
        time_limit_s = min(number(time_limit_s, "time_limit_s"), AUTO_LNS_TIME_S)
    if (budget is None) == (min_mean_utility is None):
        raise InstanceError("budget", "give exactly one of `budget` (USD) and `min_mean_utility`")
    tl = _check_limit_and_seed(time_limit_s, seed)
    if progress is not None and not callable(progress):
        raise InstanceError("progress", f"must be callable or None, got {type(progress).__name__}")

    table = compile_options(instance)
    n = instance.n_queries
    lower_bound = table.min_cost_usd
    budget_usd = target = None
    if budget is not None:
        budget_usd = nonnegative(budget, "budget", "USD")
        if not within_budget(lower_bound, budget_usd):          # no plan costs less than the bound
            cheapest = evaluate(instance, table.cheapest_option).cost_usd
            raise InfeasibleBudgetError(
                f"`budget`: ${_g(budget_usd, lower_bound)} is below the cost of every plan "
                f"(lower bound ${_g(lower_bound, budget_usd)}; cheapest plan found "
                f"${_g(cheapest, budget_usd)})",
                budget_usd=budget_usd, cheapest_cost_usd=cheapest, lower_bound_usd=lower_bound, proven=True)
    else:
        a = number(min_mean_utility, "min_mean_utility")
        if not math.isfinite(a) or not 0 <= a <= 1:
            raise InstanceError("min_mean_utility", f"must be in [0, 1], got {fmt_num(a)}")
        target = a * n
        best = float(np.where(table.admissible, table.utility, -np.inf).max(axis=1).sum()) if n else 0.0
        if not meets_target(best, target):                       # no plan is more useful than best
            raise InfeasibleBudgetError(
                f"`min_mean_utility`: {_g(a, best / n)} exceeds the best attainable mean "
                f"utility {_g(best / n, a)}",
                budget_usd=None, cheapest_cost_usd=math.inf, lower_bound_usd=math.inf, proven=True)
    cap = _capacity(instance, max_queries_per_model)

    # The limit covers the whole solve: what the front door spent is taken off the backend's.
    remaining = max(tl - (time.perf_counter() - t0), 0.01)
    problem = Problem(instance=instance, table=table, budget_usd=budget_usd, min_total_utility=target,
                      max_queries=cap, time_limit_s=remaining, seed=int(seed), options=dict(options),
                      progress=progress)
    result: SolverResult = backend.solve(problem)
    # Best of the restrictions by construction (solvers/restrictions.py): the joint plan is
    # never worse than routing-only or batching-only solved by the same method.
    result, evaluation = best_and_evaluation(problem, backend, result, t0 + tl)
    if result.option is None:
        cheapest = float(result.info.get("cheapest_cost_usd", math.inf))
        # Numbers that would print alike at 6 digits are printed in full (new-user audit:
        # "no plan meets budget $6.32508e-05 (... cheapest plan found $6.32508e-05)").
        what = (f"budget ${_g(budget_usd, cheapest)}" if budget_usd is not None
                else f"mean utility {float(min_mean_utility):.6g}")
        if cap is not None:
            what += " within the per-model capacities"
        proven = result.status == Status.INFEASIBLE
        found = (f"cheapest plan found ${_g(cheapest, budget_usd)}" if math.isfinite(cheapest)
                 else "no plan found" + (" within the capacities" if cap is not None else ""))
        raise InfeasibleBudgetError(
            f"`{'budget' if budget_usd is not None else 'min_mean_utility'}`: no plan meets {what} "
            f"({'proven by ' + chosen if proven else chosen + ' found none'}; "
            f"{found}; lower bound ${lower_bound:.6g})",
            budget_usd=budget_usd, cheapest_cost_usd=cheapest, lower_bound_usd=lower_bound, proven=proven)
    plan = _grade(problem, result, chosen, t0,
                  None if min_mean_utility is None else float(min_mean_utility), evaluation)
    # Engines stop at their limit and say so each in its own words (or not at all): an
    # unproven plan that took (nearly) the whole limit was cut short by it. The summary says
    # so (new-user audit: a time-limited run showed only "status feasible").
    # (Not the greedy: it never looks at the limit, and a tiny limit does not cut it.)
    if chosen != "greedy" and plan.status != Status.OPTIMAL and plan.wall_time_s >= TIME_LIMIT_REACHED_FRACTION * tl:
        plan = dataclasses.replace(plan, info={**plan.info, "time_limit_reached": True})
    return plan


def _g(x: float, other: float) -> str:
    """``x`` to 6 significant digits, in full when ``other`` would print the same (a message
    that compares them: "no plan meets budget $6.32508e-05 (... cheapest plan found
    $6.32508e-05)", new-user audit). Not ``_validate.fmt_num``: amounts of money read as
    "$0" and "$2", not "$0.0"."""
    short = f"{x:.6g}"
    if other is None:
        return short
    return repr(float(x)) if x != other and short == f"{other:.6g}" else short


def _finite_bound(problem: Problem, bound) -> float:
    """A backend's bound, or the trivial one where it gave none (inf, NaN): every query on
    its most useful option (budget form), every query on its cheapest (quality form).
    A plan always carries a finite bound, so that its file reads back."""
    b = float(bound)
    if math.isfinite(b):
        return b
    from .solvers._coupled_model import trivial_bound

    return trivial_bound(problem)


def _grade(problem: Problem, result: SolverResult, method: str, t0: float,
           min_mean_utility: float | None, evaluation: Evaluation | None = None) -> Plan:
    """Turn a backend's assignment into a Plan using only the shared evaluator.

    ``evaluation``: the shared evaluator's grading of ``result.option`` when the caller
    already has it (best of the restrictions computes it).
    """
    inst = problem.instance
    try:
        ev = evaluation if evaluation is not None else evaluate(inst, result.option)
    except ValueError as exc:
        raise SolverError(f"backend {method!r} returned an invalid assignment: {exc}") from exc
    status = result.status
    if problem.budget_usd is not None:
        if not within_budget(ev.cost_usd, problem.budget_usd):
            raise SolverError(f"backend {method!r} exceeded the budget: exact cost ${ev.cost_usd!r} "
                              f"> ${problem.budget_usd!r}")
        # The evaluated utility is a float sum; its exact value can exceed it by the
        # summation error, so a bound met by the plan itself is widened by that much.
        ub = max(_finite_bound(problem, result.bound), ev.utility * (1 + _sum_rtol(inst)))
        gap = (ub - ev.utility) / ub if ub > 0 else 0.0
        upper_bound, cost_lb = ub, None
    else:
        if not meets_target(ev.utility, problem.min_total_utility):
            raise SolverError(f"backend {method!r} missed the quality target: utility {ev.utility!r} "
                              f"< {problem.min_total_utility!r}")
        lb = min(_finite_bound(problem, result.bound), ev.cost_usd * (1 - _sum_rtol(inst)))
        gap = (ev.cost_usd - lb) / ev.cost_usd if ev.cost_usd > 0 else 0.0
        upper_bound, cost_lb = None, lb
    if problem.max_queries is not None:
        over = ev.model_usage() > problem.max_queries
        if over.any():
            k = int(np.argmax(over))
            raise SolverError(f"backend {method!r} exceeded the capacity of model {inst.models[k].name!r}")
    if status == Status.FEASIBLE and gap <= OPTIMAL_RTOL:
        status = Status.OPTIMAL          # the plan meets a proven bound: optimal by certificate
    return Plan(
        option=ev.option, model=_ro(inst.option_model[ev.option]), batch_size=_ro(inst.option_batch[ev.option]),
        query_task=inst.query_task, cost_usd=ev.cost_usd, utility=ev.utility, upper_bound=upper_bound,
        cost_lower_bound_usd=cost_lb, gap=float(max(gap, 0.0)), status=status, method=method,
        wall_time_s=time.perf_counter() - t0, budget_usd=problem.budget_usd,
        min_mean_utility=min_mean_utility,
        n_calls=ev.n_calls, breakdown=ev.breakdown, options=inst.options,
        model_names=tuple(m.name for m in inst.models), info=dict(result.info),
    )


#: An unproven plan whose solve took at least this share of its time limit is reported as
#: stopped by it (``plan.info["time_limit_reached"]``).
TIME_LIMIT_REACHED_FRACTION = 0.98

#: Keyword arguments of :func:`solve` other than backend options.
_FRONT_DOOR_KWARGS = ("time_limit_s", "seed", "max_queries_per_model", "progress")


def check_solve_kwargs(method: str, kwargs: Mapping[str, Any]) -> None:
    """What :func:`solve` checks of its keyword arguments before any work, for callers that
    pass ``**kwargs`` through to it later (e.g. :func:`robatch_opt.frontier`).

    Raises
    ------
    InstanceError, UnknownOptionError, UnknownMethodError
    """
    _check_limit_and_seed(kwargs.get("time_limit_s", 60.0), kwargs.get("seed", 0))
    options = {k: v for k, v in kwargs.items() if k not in _FRONT_DOOR_KWARGS}
    if method == AUTO:
        if options:
            raise UnknownOptionError(f"`{next(iter(options))}`: method 'auto' takes no engine options; "
                                     "name the method (e.g. method='milp', solver='cbc')")
        return
    declared = getattr(get_backend(method), "options", None)
    if declared is not None:
        check_options(method, declared, options)


def _check_limit_and_seed(time_limit_s: Any, seed: Any) -> float:
    """The time limit as a positive finite float; the seed must be an integer >= 0 (as the
    command line's --seed: NumPy's generators refuse a negative one deep in a search)."""
    tl = number(time_limit_s, "time_limit_s")
    if not math.isfinite(tl) or tl <= 0:
        raise InstanceError("time_limit_s", f"must be a positive number of seconds, got {fmt_num(tl)}")
    if integer(seed, "seed", strict=True) < 0:
        raise InstanceError("seed", f"must be >= 0, got {seed}")
    return tl


def _sum_rtol(inst: Instance) -> float:
    """Relative error bound of a float sum of the plan's terms (queries and calls), in exact terms."""
    return float_sum_rtol(2 * inst.n_queries + 8)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a
