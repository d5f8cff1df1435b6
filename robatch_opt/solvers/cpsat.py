"""``method="cpsat"``: the coupled RwB solved exactly by OR-Tools CP-SAT.

CP-SAT is integer-only, so costs and utilities are scaled to integers explicitly. The
scaled model is a **relaxation** of the true problem, never a restriction:

- Budget form. Costs are scaled by a power of two ``Sc`` (so ``Sc * cost`` is exact in
  floating point) and rounded **down**; the budget is widened to
  ``ceil(Sc * budget * (1 + RELAX_RTOL))``. Every plan whose evaluated cost is within the
  budget has a scaled cost ``<= Sc * exact cost <= Sc * budget * (1 + RELAX_RTOL)``
  (``RELAX_RTOL`` exceeds the float noise between the per-cell costs and ``evaluate``), so
  it stays feasible in the scaled model. Utilities are scaled by a power of two ``Su`` and
  rounded to nearest; with ``E = sum_i max_j |Su u[i, j] - round(Su u[i, j])|`` the proven
  scaled bound ``UB`` gives the valid real bound ``(UB + E) / Su``.
- Quality form. Utilities are rounded **up** and the target is lowered by
  ``RELAX_RTOL``; costs are rounded down in the objective, so the proven scaled bound
  ``LB / Sc`` is a valid lower bound on the cost in USD.

The scales are chosen so that every constraint's and the objective's activity stays below
``2**48`` (well inside int64 and exact in CP-SAT's double-precision LP). A plan optimal for
the relaxation is graded by :func:`robatch_opt.evaluate`; if the rounding let in a plan that
is over budget, it is excluded by a no-good clause and the model is solved again
(:func:`~robatch_opt.solvers._coupled_model.run_exact`). The plan is reported OPTIMAL only
if CP-SAT proved the relaxation optimal and the plan meets the real-unit bound within 1e-9.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np

from .._interrupt import run_stoppable
from .base import Option, Problem, SolverResult
from ._coupled_model import RELAX_RTOL, CoupledModel, EngineAnswer, quality_floor, run_exact

__all__ = ["CPSATBackend", "ACTIVITY_LIMIT", "COUPLED_SUBSOLVERS"]

#: Largest activity (sum of |coefficient| x upper bound) of any scaled row or objective.
ACTIVITY_LIMIT = 2.0 ** 48

#: CP-SAT search workers: the machine this runs on is small and shared.
DEFAULT_WORKERS = 2

#: Full-problem subsolvers of the interleaved search on models with coupled groups. By
#: default CP-SAT time-slices eight (core, default_lp, max_lp, no_lp, pseudo_costs,
#: quick_restart, quick_restart_no_lp, reduced_costs) over the workers; here the optimum is
#: found early and the time goes into closing a ~1e-5 relative gap, which only the LP-based
#: searches do. Measured on the Qwen3 n = 200 instances the default missed at 60 s: with
#: these three, 4 of 6 proved (16-53 s); with max_lp + reduced_costs, 2 of 6; with
#: default_lp + max_lp, 0 of 2. Over all 90 (benchmarks/bench_exact.py n200): 82 proved
#: within 60 s, against 70 with the default eight.
COUPLED_SUBSOLVERS = ("max_lp", "reduced_costs", "pseudo_costs")


def _pow2_scale(max_activity: float) -> float:
    """The largest power of two ``S`` with ``S * max_activity <= ACTIVITY_LIMIT`` (1 if 0)."""
    if not max_activity > 0 or not math.isfinite(max_activity):
        return 1.0
    e = math.floor(math.log2(ACTIVITY_LIMIT / max_activity))
    s = math.ldexp(1.0, e)
    while s * max_activity > ACTIVITY_LIMIT:          # guard log2 rounding
        s /= 2
    return s


class _Scaled:
    """Integer coefficients of one problem (see the module docstring for the rounding rules)."""

    def __init__(self, problem: Problem, model: CoupledModel):
        budget_form = problem.budget_usd is not None
        self.sc = _pow2_scale(model.max_cost_usd())
        self.su = _pow2_scale(model.max_utility())
        # Power-of-two scales: the products below are exact, so floor/ceil round only once.
        self.x_cost = np.floor(self.sc * model.x_var_usd).astype(np.int64)
        self.g_cost = np.floor(self.sc * model.g_fixed_usd).astype(np.int64)
        # Amortized cut coefficients built from the *scaled* integers, so that the cut holds
        # for every integer point of the scaled model: g_cost * y >= g_cost * members / b
        # >= floor(g_cost / b) * members.
        grp = model.x_group
        self.x_amortized = self.x_cost.copy()
        on = grp >= 0                   # columns of coupled groups (the rest carry their call price)
        self.x_amortized[on] += self.g_cost[grp[on]] // model.g_batch[grp[on]]
        su_u = self.su * model.x_utility
        if budget_form:
            self.x_util = np.rint(su_u).astype(np.int64)
            err = np.abs(su_u - self.x_util)
            self.util_err = float(np.maximum.reduceat(err, model.q_start[:-1]).sum()) if model.m else 0.0
            cap = math.ldexp(1.0, 60)
            self.budget = int(min(math.ceil(self.sc * problem.budget_usd * (1 + RELAX_RTOL)), cap))
        else:
            self.x_util = np.ceil(su_u).astype(np.int64)
            self.util_err = 0.0
            floor = quality_floor(problem.min_total_utility)
            self.target = int(math.floor(self.su * floor * (1 - RELAX_RTOL))) if floor > 0 else 0


class CPSATBackend:
    """``method="cpsat"``: OR-Tools CP-SAT on the coupled model, proven optimal or bounded.

    Options (``solve(..., method="cpsat", **options)``)
    ------------------------------------------------------
    workers : int
        CP-SAT search workers (default 2).
    amortized_cut : bool
        Add the redundant row ``sum_i c[i, j] x[i, j] <= budget`` (amortized cost never
        exceeds the exact cost) or, in the quality form, ``objective >= sum c x``
        (default True).
    prune, call_bounds, dominance : bool
        See :func:`~robatch_opt.solvers._coupled_model.build_model` (default True).
    count_cuts, fill_cuts : bool
        Add the task count cuts and the fill cuts
        (:meth:`~robatch_opt.solvers._coupled_model.CoupledModel.count_cuts`,
        :attr:`~robatch_opt.solvers._coupled_model.CoupledModel.g_min_fill`; default True).
    hint : bool
        Warm start from the greedy plan (default True).
    cpsat_params : dict
        CP-SAT parameters by name, set after the package's own (e.g.
        ``{"subsolvers": ["default_lp"], "linearization_level": 2}``; a list replaces a
        repeated field). The defaults: ``workers`` workers in deterministic interleaved search
        over :data:`COUPLED_SUBSOLVERS` on models with coupled groups, one worker on plain
        MCKPs, relative and absolute gap limits 0, the solve's seed and time limit.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1, 2))],
    ...                    tasks=[ro.Task("t", 1000)], query_task=[0, 0, 0],
    ...                    input_tokens=[100, 100, 100], output_tokens=[10, 10, 10],
    ...                    utility=[[0.9, 0.8]] * 3)
    >>> plan = ro.solve(inst, budget=0.003, method="cpsat", time_limit_s=10)
    >>> plan.status.value, round(plan.utility, 6), plan.cost_usd <= 0.003
    ('optimal', 2.5, True)
    """

    name = "cpsat"
    options = {
        "workers": Option(int, DEFAULT_WORKERS, "CP-SAT search workers", minimum=1),
        "amortized_cut": Option(bool, True, "add the redundant amortized-cost row"),
        "prune": Option(bool, True, "drop dominated cells"),
        "call_bounds": Option(bool, True, "bound the calls per group"),
        "lp_fixing": Option(bool, True, "Lagrangian fixing against the greedy plan"),
        "dominance": Option(bool, True, "partial-call dominance rows"),
        "link_cuts": Option(bool, True, "x <= y rows on batched groups"),
        "count_cuts": Option(bool, True, "task count cuts"),
        "fill_cuts": Option(bool, True, "fill cuts"),
        "hint": Option(bool, True, "warm start from the greedy plan"),
        "cpsat_params": Option(dict, {}, "CP-SAT parameters by name"),
    }

    def available(self) -> bool:
        try:
            import ortools.sat.python.cp_model  # noqa: F401
        except ImportError:
            return False
        return True

    def solve(self, problem: Problem) -> SolverResult:
        opts = dict(problem.options)
        workers = int(opts.pop("workers", DEFAULT_WORKERS))
        amortized_cut = bool(opts.pop("amortized_cut", True))
        use_hint = bool(opts.pop("hint", True))
        prune = bool(opts.pop("prune", True))
        call_bounds = bool(opts.pop("call_bounds", True))
        lp_fixing = bool(opts.pop("lp_fixing", True))
        dominance = bool(opts.pop("dominance", True))
        link_cuts = bool(opts.pop("link_cuts", True))
        cuts = dict(count_cuts=bool(opts.pop("count_cuts", True)), fill_cuts=bool(opts.pop("fill_cuts", True)))
        params = dict(opts.pop("cpsat_params", {}))
        if params:                          # a bad name or value fails here, before any work
            from ortools.sat.python import cp_model
            _apply_params(cp_model.CpSolver().parameters, params)
        if opts:
            raise TypeError(f"method 'cpsat' got unknown options: {', '.join(sorted(opts))}")
        budget_form = problem.budget_usd is not None
        scales: dict[str, float] = {}

        def make_engine(model: CoupledModel):
            sc = _Scaled(problem, model)
            scales.update(cost_scale=sc.sc, utility_scale=sc.su)
            return functools.partial(_solve_relaxation, problem, model, sc, budget_form, workers,
                                     amortized_cut, use_hint, link_cuts, cuts, params)

        res = run_exact(problem, "cpsat", make_engine, prune=prune, call_bounds=call_bounds,
                        lp_fixing=lp_fixing, use_greedy=use_hint or lp_fixing, dominance=dominance)
        info = dict(res.info)
        info.update(scales, workers=workers)
        return SolverResult(res.option, res.status, res.bound, info)


class _ProgressCallback:
    """Reports each new CP-SAT plan (in real units) to :meth:`Problem.report`.

    Built lazily on the CP-SAT class, so that importing this module does not import OR-Tools.
    """

    def __new__(cls, problem: Problem, sc: "_Scaled", budget_form: bool):
        from ortools.sat.python import cp_model

        class Callback(cp_model.CpSolverSolutionCallback):
            def on_solution_callback(self):
                obj, bound = self.objective_value, self.best_objective_bound
                if budget_form:
                    problem.report(phase="search", incumbent=obj / sc.su, bound=(bound + sc.util_err) / sc.su)
                else:
                    problem.report(phase="search", incumbent=obj / sc.sc, bound=bound / sc.sc)

        return Callback()


def _apply_params(parameters, params: dict) -> None:
    """Set CP-SAT parameters by name; a list or tuple replaces a repeated field.

    Raises
    ------
    UnknownOptionError
        Naming the parameter, when CP-SAT has no such parameter or refuses the value (a
        TypeError, like every refused option).
    """
    from ..errors import UnknownOptionError

    for key, val in params.items():
        if not isinstance(key, str):
            raise UnknownOptionError(f"cpsat_params: parameter names are strings, got {key!r}")
        try:
            if isinstance(val, (list, tuple)):          # repeated fields (e.g. ``subsolvers``)
                field = getattr(parameters, key)
                field.clear()
                field.extend(val)
            else:
                setattr(parameters, key, val)
        except (AttributeError, TypeError, ValueError) as exc:
            first = (str(exc).splitlines() or [""])[0]     # pybind11 appends the signatures
            raise UnknownOptionError(f"cpsat_params: CP-SAT refuses parameter {key!r} = {val!r} "
                                     f"({type(exc).__name__}: {first})") from None


class _ColumnLiterals:
    """Columns of the model as CP-SAT literals, with as few Boolean variables as possible.

    A query with one column (the others removed by pruning or Lagrangian fixing) always
    takes it: the column is the constant 1 and needs no variable. A query with two columns
    takes one or the other: a single variable ``v`` stands for the first and ``not v`` for
    the second, with no exactly-one constraint. Larger queries get one variable per column
    and an exactly-one. After fixing most queries have one or two columns; on knapPI
    instances through the reduction this encoding cuts CP-SAT's build + solve time from
    12-15 ms to 1.3-1.9 ms (presolve does the same reductions, but slower).

    Attributes
    ----------
    var : ndarray of int64, shape (m,)
        Variable of each column, or -1 for a constant column.
    positive : ndarray of bool, shape (m,)
        Whether the column is the variable itself (True) or its negation (False).
    n_vars : int
    """

    def __init__(self, model: CoupledModel):
        qs = model.q_start
        count = np.diff(qs)
        per_query = np.where(count == 1, 0, np.where(count == 2, 1, count))
        first_var = np.r_[0, np.cumsum(per_query)[:-1]].astype(np.int64)
        q_of_col = model.xi
        offset = np.arange(model.m) - qs[q_of_col]
        cnt = count[q_of_col]
        self.var = np.where(cnt == 1, -1, first_var[q_of_col] + np.where(cnt == 2, 0, offset))
        self.positive = ~((cnt == 2) & (offset == 1))
        self.n_vars = int(per_query.sum())

    def expr(self, xv: list, coef: np.ndarray):
        """``sum_c coef[c] * column_c`` as a CP-SAT linear expression over the variables."""
        from ortools.sat.python import cp_model

        coef = np.asarray(coef, dtype=np.int64)
        has_var = self.var >= 0
        # Constant columns contribute coef; a negated column contributes coef * (1 - v).
        const = int(coef[~has_var].sum() + coef[has_var & ~self.positive].sum())
        per_var = np.zeros(self.n_vars, dtype=np.int64)
        np.add.at(per_var, self.var[has_var], np.where(self.positive, coef, -coef)[has_var])
        return cp_model.LinearExpr.weighted_sum(xv, per_var.tolist()) + const

    def column_values(self, var_values: np.ndarray) -> np.ndarray:
        """0/1 per column from the variables' values."""
        v = np.asarray(var_values, dtype=np.int64)
        out = np.ones(self.var.shape[0], dtype=np.int64)
        has_var = self.var >= 0
        val = v[self.var[has_var]]
        out[has_var] = np.where(self.positive[has_var], val, 1 - val)
        return out


def _solve_relaxation(problem: Problem, model: CoupledModel, sc: _Scaled, budget_form: bool,
                      workers: int, amortized_cut: bool, use_hint: bool, link_cuts: bool,
                      cuts: dict, params: dict,
                      nogoods: list[np.ndarray], hint: np.ndarray | None,
                      time_limit_s: float, better_than: float | None = None) -> EngineAnswer:
    """Build the scaled CP-SAT model with the no-goods and the hint, solve it, read it back.

    ``better_than``: a verification solve (:func:`~robatch_opt.solvers._coupled_model._verify`),
    with the row "objective at least as good as ``better_than``" in scaled integers, relaxed so
    that it keeps every plan that truly reaches it.
    """
    from ortools.sat.python import cp_model

    tb = time.perf_counter()
    # Building is Python work per cell (minutes at 10^5 queries x 24 options on a loaded
    # machine): the time limit covers it, so the loops look at the clock as they go and
    # give up with no plan (the driver then returns the greedy's) when it has passed.
    clock = _BuildClock(tb + time_limit_s)
    try:
        cp = cp_model.CpModel()
        enc = _ColumnLiterals(model)
        xv = [cp.new_bool_var(f"v{k}") for k in clock.range(enc.n_vars)]
        y = [cp.new_int_var(0, int(model.g_max_calls[g]), f"y{g}") for g in clock.range(model.G)]
        # Column c as a literal: 1 (the query's only column), v or not v (one of two), or its own v.
        var_list, pos_list = enc.var.tolist(), enc.positive.tolist()
        lit = [1 if var_list[c] < 0 else (xv[var_list[c]] if pos_list[c] else xv[var_list[c]].Not())
               for c in clock.range(len(var_list))]
        # Exactly one option per query (queries with one or two columns satisfy it by encoding).
        qs = model.q_start
        for i in clock.iterate(np.flatnonzero(np.diff(qs) > 2).tolist()):
            cp.add_exactly_one(lit[qs[i]:qs[i + 1]])
        return _build_and_solve(problem, model, sc, budget_form, workers, amortized_cut, use_hint, link_cuts,
                                cuts, params, nogoods, hint, time_limit_s, tb, clock, cp, enc, xv, y, lit,
                                better_than)
    except _OutOfTime:
        return EngineAnswer("unknown", None, None, {"build_s": time.perf_counter() - tb,
                                                    "cpsat_status": "time limit reached while building"})


class _OutOfTime(Exception):
    """The time limit passed while the CP-SAT model was being built."""


class _BuildClock:
    """Iterators that check a deadline as they go (one clock read per check: cheap)."""

    EVERY = 4096

    def __init__(self, deadline: float):
        self.deadline = deadline

    def check(self) -> None:
        if time.perf_counter() > self.deadline:
            raise _OutOfTime()

    def iterate(self, items, every: int = EVERY):
        """Yield ``items``, reading the clock every ``every`` of them (1 where one item is
        much work, e.g. a group of thousands of columns)."""
        for pos, item in enumerate(items):
            if pos % every == 0:
                self.check()
            yield item

    def range(self, n: int, every: int = EVERY):
        return self.iterate(range(n), every)


def _build_and_solve(problem: Problem, model: CoupledModel, sc: "_Scaled", budget_form: bool, workers: int,
                     amortized_cut: bool, use_hint: bool, link_cuts: bool, cuts: dict, params: dict,
                     nogoods: list, hint, time_limit_s: float, tb: float, clock: _BuildClock,
                     cp, enc, xv, y, lit, better_than: float | None = None) -> EngineAnswer:
    """The rest of :func:`_solve_relaxation`: group rows, cuts, objective, hint, then the search."""
    from ortools.sat.python import cp_model

    # Calls of a group seat its members: b_g * y_g >= sum of x in g. (Columns outside any
    # coupled group, x_group == -1, sort first and are skipped by the group slices.)
    order = np.argsort(model.x_group, kind="stable")
    bounded = model.seat_bounded
    gs = np.searchsorted(model.x_group[order], np.arange(model.G + 1))
    for g in clock.range(model.G, every=1):
        members = [lit[c] for c in order[gs[g]:gs[g + 1]]]
        seats = int(model.g_batch[g]) * y[g] - sum(members)
        cp.add(seats >= 0)
        if bounded[g]:                                      # partial-call dominance
            cp.add(seats <= int(model.g_max_slack[g]))
        if link_cuts and model.g_batch[g] > 1:
            # One member already needs a call: x <= y (strengthens the LP on partial calls).
            for v in clock.iterate(members):
                cp.add(y[g] >= v)
        if cuts["fill_cuts"]:
            cp.add(int(model.g_min_fill[g]) * y[g] <= sum(members))     # CoupledModel.g_min_fill
    if cuts["count_cuts"] and model.G:
        # The calls of a task seat the task (CoupledModel.count_cuts): redundant for the
        # integer model, they give CP-SAT's LP the whole calls it otherwise lacks.
        c_row, c_col, c_coef, c_lo = model.count_cuts()
        cut_lits = lit + y
        bounds = np.searchsorted(c_row, np.arange(len(c_lo) + 1))
        for r in clock.range(len(c_lo), every=16):
            sl = slice(bounds[r], bounds[r + 1])
            terms = [(cut_lits[c], int(k)) for c, k in zip(c_col[sl].tolist(), c_coef[sl].tolist())]
            cp.add(sum(k * v for v, k in terms) >= int(c_lo[r]))
    cost_expr = cp_model.LinearExpr.weighted_sum(y, sc.g_cost.tolist()) + enc.expr(xv, sc.x_cost)
    util_expr = enc.expr(xv, sc.x_util)
    if budget_form:
        cp.add(cost_expr <= sc.budget)                      # relaxed budget
        if amortized_cut and model.G:       # without coupled groups it is the budget row itself
            cp.add(enc.expr(xv, sc.x_amortized) <= sc.budget)
        cp.maximize(util_expr)
    else:
        cp.add(util_expr >= sc.target)                      # relaxed target
        if amortized_cut and model.G:
            cp.add(cost_expr >= enc.expr(xv, sc.x_amortized))
        cp.minimize(cost_expr)
    if better_than is not None:
        # A plan truly reaching the target has scaled utility >= su * target - util_err
        # (each query's coefficient is rounded to nearest) and scaled cost <= sc * target
        # (coefficients rounded down); one unit more of slack covers the float products.
        if budget_form:
            cp.add(util_expr >= math.ceil(sc.su * better_than - sc.util_err) - 1)
        else:
            cp.add(cost_expr <= math.floor(sc.sc * better_than) + 1)
    # Per-model capacity.
    if model.cap is not None:
        for k in range(model.K):
            cols = np.flatnonzero(model.x_model == k)
            if len(cols) > model.cap[k]:
                cp.add(sum(lit[c] for c in cols) <= int(model.cap[k]))
    # No-goods: plans the rounding let in although they are over budget / under target.
    # (A query's only column is always chosen, so it adds no literal to the clause.)
    for opt in nogoods:
        cols = model.columns_of(opt)
        cp.add_bool_or([lit[c].Not() for c in cols if not isinstance(lit[c], int)])
    start = model.start_of(hint) if use_hint else None
    if start is not None:
        on, calls = start
        # One bulk write of the hint instead of one add_hint call per variable (a measurable
        # share of a small model's solve time). Every variable has exactly one positive
        # column, whose 0/1 is the variable's value.
        pos = np.flatnonzero(enc.positive & (enc.var >= 0))
        var_hint = np.zeros(enc.n_vars, dtype=np.int64)
        var_hint[enc.var[pos]] = on[pos]
        hint_proto = cp.proto.solution_hint
        hint_proto.vars.extend([v.index for v in xv] + [v.index for v in y])
        hint_proto.values.extend(np.r_[var_hint, calls].tolist())
    build_s = time.perf_counter() - tb
    clock.check()

    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = max(time_limit_s - build_s, 0.01)
    # Same input and seed, same plan (DESIGN §3.5): free-running parallel workers race to the
    # first of several optimal plans, so the search is either interleaved (deterministic for
    # any number of workers) or single-threaded (deterministic too). Measured (30 s limit):
    # interleaved proves Qwen3 25 x 24 at a tight budget in 3.8 s where free or single-thread
    # search does not in 30 s; on pure knapsacks (every batch size 1, no calls to couple) a
    # single thread proves knapPI 1000-item instances in 0.03-0.05 s, interleaved in 3 s.
    # "Pure" means no coupled group is left (see build_model): a plain MCKP.
    # Only a time limit can still cut the search at a different point.
    if model.G == 0:
        p.num_workers = 1
    else:
        p.num_workers = workers
        p.interleave_search = True
        # Only the LP-based searches (plus the interleaved LNS, which find plans): see
        # COUPLED_SUBSOLVERS.
        p.subsolvers.extend(COUPLED_SUBSOLVERS)
    p.random_seed = int(problem.seed) % (2 ** 31)
    # OR-Tools 9.15's inclusion presolve can certify a wrong optimum (google/or-tools#5293,
    # open): on a 3-query instance with ranged seat rows it proved 1.0 where 1.5 is feasible
    # (tests/test_exact.py::test_engine_bug_workarounds). Turning that one
    # presolve family off is the fix the issue reports; the rest of presolve stays on.
    p.presolve_inclusion_work_limit = 0
    p.relative_gap_limit = 0.0
    p.absolute_gap_limit = 0.0
    _apply_params(p, params)
    # The solve's limit covers everything (a max_time_in_seconds in cpsat_params may shorten
    # the search, never lengthen it: time_limit_s=2 with 8 there took 8.7 s).
    p.max_time_in_seconds = min(p.max_time_in_seconds, max(time_limit_s - build_s, 0.01))
    # OR-Tools would catch SIGINT itself and return as if at the time limit (the command
    # line then carried on); the package's interrupt handling stops the search instead.
    p.catch_sigint_signal = False
    ts = time.perf_counter()
    callback = _ProgressCallback(problem, sc, budget_form) if problem.progress is not None else None
    st = run_stoppable(lambda: solver.solve(cp, callback), solver.stop_search)
    solve_s = time.perf_counter() - ts
    info: dict[str, Any] = {"build_s": build_s, "solve_s": solve_s,
                            "cpsat_status": solver.status_name(st),
                            "branches": int(solver.num_branches),
                            "conflicts": int(solver.num_conflicts)}
    if st == cp_model.MODEL_INVALID:          # a bug in this module, never the user's input
        from ..errors import SolverError
        raise SolverError(f"CP-SAT rejected the model: {cp.validate()}")
    if st == cp_model.INFEASIBLE:                     # a proof in exact integer arithmetic
        return EngineAnswer("infeasible", None, None, info, bound_exact=True)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return EngineAnswer("unknown", None, None, info, bound_exact=True)
    sol = np.asarray(solver.response_proto.solution, dtype=np.int64)
    option = model.option_from_columns(enc.column_values(sol[[v.index for v in xv]]))
    obj_bound = float(solver.best_objective_bound)
    if budget_form:
        bound = (obj_bound + sc.util_err) / sc.su
    else:
        bound = obj_bound / sc.sc
    info["objective_real"] = float(solver.objective_value) / (sc.su if budget_form else sc.sc)
    return EngineAnswer("optimal" if st == cp_model.OPTIMAL else "feasible", option, bound, info,
                        bound_exact=True)
