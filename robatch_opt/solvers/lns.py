"""``method="lns"``: anytime large-neighbourhood search around the greedy plan.

Start from the best greedy plan (the joint greedy and its restrictions); then repeatedly
free a *neighbourhood* of queries, solve the problem exactly with every other query fixed
(HiGHS, or CP-SAT, with a short limit), and keep the answer when it is better. Kinds of
neighbourhood, taken in turn: the queries of one task, of one model, of a few groups
``(task, option)``, and a random subset; each is capped at ``max_free`` queries (a random
sample of the larger ones). The random choices come from ``numpy.random.default_rng(seed)``.

The sub-problem is exact, not an approximation. Fixed queries of a group that fill whole
calls are taken out (their cost is a constant subtracted from the budget); those in the
group's partial call stay in the sub-problem with their one option, so the free queries
see its free seats. The exact cost then splits as a constant plus the sub-problem's exact
cost, and every plan found is graded by :func:`robatch_opt.evaluate` on the whole instance.

Where the whole coupled model is small enough for the time limit
(:data:`WHOLE_CELLS_PER_S`), the exact engine (``method="milp"``'s HiGHS) runs on the
*whole* model at the same time, in a child process (:mod:`._whole_model`), from the start
plan and bound, the model reduced by fixing against that plan: its branch and cut moves the
plan and the bound together, where the neighbourhoods only move the plan. The search takes
the child's answer when it ends.

The bound reported is the best proven one: the greedy's LP bound, the LP relaxation of the
coupled model with the task count and fill cuts (HiGHS, its tolerances accounted for by
:func:`~robatch_opt.solvers.milp.engine_slack`), or the whole-model engine's, whichever is
tightest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

import numpy as np

from ..evaluate import evaluate
from ..options import OptionTable
from ..plan import Status
from ._coupled_model import OPTIMAL_RTOL, _better, _gap, build_model, is_feasible
from ._whole_model import WholeModelJob
from .base import Option, Problem, SolverResult

__all__ = ["LNSBackend", "DEFAULT_MAX_FREE", "DEFAULT_SUB_TIME_S", "coupled_lp_bound"]

#: Queries freed per neighbourhood, and the time limit of one neighbourhood's exact solve
#: (seconds). Sizes adapt to how fast each solve was (``_Neighbourhoods.adapt``: between
#: ``MIN_FREE`` and twice this), so the limit sets the scale of a neighbourhood on a given
#: machine. Measured with ``benchmarks/bench_lns.py`` (18 runs of 10 s: three families, n =
#: 1,000 and 10,000, three budgets; gap to the best proven bound, median / max) on a machine
#: about 2.5x slower than the one the earlier defaults were chosen on: 40 queries and 0.5 s
#: 0.0073 % / 0.156 % (llm_like n = 1,000: 42-44 neighbourhoods, each improving, both tight
#: budgets stuck near 616.2 of an optimum of 616.92); 80 queries and 1 s 0.0086 % / 0.084 %.
#: Before adaptation (Qwen3 200 x 24, the README's audit case, 10 s) 80 queries with a fixed
#: 1 s had done worse than 40 (0.71202 against 0.71371); with adaptation both settings
#: reach its optimum 0.713781 there. The exact engines' search starts keep 40 and 0.5 s
#: (:class:`~._coupled_model.SearchStart`: their figures were measured so).
DEFAULT_MAX_FREE = 80

#: Fewest queries freed once the size adapts (see ``_Neighbourhoods.adapt``).
MIN_FREE = 8

#: Time limit of one neighbourhood's exact solve (seconds); see :data:`DEFAULT_MAX_FREE`.
DEFAULT_SUB_TIME_S = 1.0

#: The coupled LP bound (and its rounded start) is computed up to this many query x option
#: cells; above, the greedy's LP bound is reported. Measured: Qwen3 1,000 x 24 (24,000
#: cells) 0.2-0.6 s; Qwen3 10,000 x 24 at fraction 0.1 (240,000 cells): HiGHS's dual simplex
#: spent 34 s before its first iteration without calling back (a 3 s limit was ignored),
#: and its IPM had not finished at 3 s.
LP_MAX_CELLS = 100_000

#: The whole-model engine runs up to this many query x option cells (the coupled LP's limit)...
WHOLE_MAX_CELLS = LP_MAX_CELLS

#: ... and only with at least one second of the time limit per this many cells: HiGHS's root
#: alone needs seconds at these sizes, and it shares the two cores with the search. Measured
#: with 10 s (benchmarks/RESULTS_lns.md): at n = 1,000 x 16 (Gemma3, llm_like) it closed the
#: gaps the neighbourhoods left (llm_like at fraction 0.1: the search had 616.4203 and the LP
#: bound 617.5304; HiGHS proved 616.9242 in 116 s, and beside the search reached 0.014 %);
#: at 1,000 x 24 (Qwen3) it did not help (max gap 0.033 % with it, 0.020 % without), and at
#: 2,000 x 24 (the default workload, ``stop_gap`` 1e-4) it slowed the search: 10.9 s and gap
#: 1.3e-4 with it at fraction 0.1, 8.2 s and 1.0e-4 without.
WHOLE_CELLS_PER_S = 2_000

#: The whole-model engine needs at least this many seconds left to start (the child
#: interpreter's start-up takes about half a second).
WHOLE_MIN_S = 2.0

#: Neighbourhood kinds, taken in turn.
KINDS = ("task", "model", "groups", "random")     # and "lp" (first) once the LP is solved


def _sub_table(table: OptionTable, rows: np.ndarray, only: np.ndarray) -> OptionTable:
    """Rows ``rows`` of ``table``; where ``only[r] >= 0`` that row keeps option ``only[r]`` alone."""
    adm = np.array(table.admissible[rows], dtype=bool)
    fixed = only >= 0
    if fixed.any():
        keep = np.zeros_like(adm)
        keep[np.flatnonzero(fixed), only[fixed]] = True
        adm[fixed] = keep[fixed]
    cost = np.where(adm, table.cost[rows], np.inf)

    def ro(a):
        a = np.ascontiguousarray(a)
        a.flags.writeable = False
        return a
    return OptionTable(cost=ro(cost), utility=ro(table.utility[rows]), admissible=ro(adm),
                       option_model=table.option_model, option_batch=table.option_batch,
                       query_task=ro(table.query_task[rows]), fixed_cost=table.fixed_cost,
                       variable_cost=ro(table.variable_cost[rows]))


class _Neighbourhoods:
    """Draws the free queries of each iteration (deterministic for the seed)."""

    def __init__(self, table: OptionTable, seed: int, max_free: int):
        self.rng = np.random.default_rng(seed)
        self.table = table
        self.max_free = max_free
        self.size = float(max_free)
        self.it = 0
        self.lp: tuple[np.ndarray, np.ndarray] | None = None

    def adapt(self, fast: bool) -> None:
        """Grow the neighbourhoods after a solve that took under half its limit, else shrink
        them (between ``MIN_FREE`` and twice the initial size): a solve cut by its limit
        wastes the time, and on Qwen3 200 x 24 half of the fixed-size solves were cut."""
        grown = self.size * (1.15 if fast else 0.75)
        self.size = float(min(max(grown, MIN_FREE), 2 * self.max_free))

    def draw(self, opt: np.ndarray) -> tuple[str, np.ndarray]:
        t = self.table
        n, J = t.n_queries, t.n_options
        kinds = KINDS if self.lp is None else ("lp",) + KINDS
        kind = kinds[self.it % len(kinds)]
        self.it += 1
        if kind == "lp":
            # Relaxation-induced: the queries where the plan and the LP optimum differ
            # (or the LP is fractional); all others agree with both and stay.
            lp_opt, lp_integral = self.lp
            pool = np.flatnonzero((opt != lp_opt) | ~lp_integral)
        elif kind == "task":
            task = self.rng.integers(t.n_tasks)
            pool = np.flatnonzero(t.query_task == task)
        elif kind == "model":
            k = self.rng.integers(int(t.option_model.max()) + 1)
            pool = np.flatnonzero(t.option_model[opt] == k)
        elif kind == "groups":
            key = t.query_task * J + opt
            groups = np.unique(key)
            pick = self.rng.choice(groups, size=min(len(groups), int(self.rng.integers(2, 5))), replace=False)
            pool = np.flatnonzero(np.isin(key, pick))
        else:
            pool = np.arange(n)
        if len(pool) == 0:
            pool = np.arange(n)
        size = max(int(self.size), 1)
        if len(pool) > size:
            pool = np.sort(self.rng.choice(pool, size=size, replace=False))
        return kind, pool


def _subproblem(problem: Problem, opt: np.ndarray, free: np.ndarray):
    """The problem with every query outside ``free`` fixed at ``opt``.

    Returns ``(sub_problem, rows, current_sub_option)``: ``rows`` are the queries of the
    sub-problem (the free ones, then the fixed members of partial calls).
    """
    t = problem.table
    n, J = t.n_queries, t.n_options
    ob = t.option_batch
    is_free = np.zeros(n, dtype=bool)
    is_free[free] = True
    key = t.query_task * J + opt
    fixed_idx = np.flatnonzero(~is_free)
    # Per group, the fixed members in its partial call stay (r = count mod b of them).
    fk = key[fixed_idx]
    order = np.argsort(fk, kind="stable")
    fk_sorted = fk[order]
    first = np.searchsorted(fk_sorted, fk_sorted, side="left")
    rank = np.arange(len(fk_sorted)) - first
    counts = np.bincount(fk, minlength=t.n_tasks * J)
    b = ob[fk_sorted % J]
    stay_sorted = rank < counts[fk_sorted] % b
    stay = fixed_idx[order][stay_sorted]
    out = fixed_idx[order][~stay_sorted]
    rows = np.r_[np.sort(free), np.sort(stay)].astype(np.int64)
    only = np.r_[np.full(len(free), -1), opt[np.sort(stay)]].astype(np.int64)
    sub_table = _sub_table(t, rows, only)
    # Constant part: the out queries fill whole calls of their groups.
    ko = key[out]
    out_counts = np.bincount(ko, minlength=t.n_tasks * J)
    om = t.option_model
    const_cost = float((out_counts // t.group_batch * t.group_fixed_cost).sum()
                       + t.variable_cost[out, om[opt[out]]].sum())
    const_util = float(t.utility[out, opt[out]].sum())
    cap = None
    if problem.max_queries is not None:
        cap = problem.max_queries - np.bincount(om[opt[out]], minlength=len(problem.max_queries))
    # No progress callback below: a neighbourhood's incumbent is not the plan's (the caller's
    # display showed 35.6 for a plan of utility 1,515); _Incumbent reports the whole plan.
    if problem.budget_usd is not None:
        sub = dataclasses.replace(problem, table=sub_table, budget_usd=max(problem.budget_usd - const_cost, 0.0),
                                  max_queries=cap, progress=None)
    else:
        sub = dataclasses.replace(problem, table=sub_table, min_total_utility=problem.min_total_utility - const_util,
                                  max_queries=cap, progress=None)
    return sub, rows, opt[rows]


def _solve_sub(sub: Problem, hint: np.ndarray, engine: str, time_limit_s: float):
    """Exact solve of a sub-problem warm-started at ``hint``; option per sub-query or None."""
    from . import milp

    ev_u = float(sub.table.utility[np.arange(len(hint)), hint].sum())
    incumbent = ev_u if sub.budget_usd is not None else None
    model = build_model(sub, incumbent=incumbent)
    if engine == "cpsat":
        from . import cpsat
        sc = cpsat._Scaled(sub, model)
        ans = cpsat._solve_relaxation(sub, model, sc, sub.budget_usd is not None, 1, True, True, True,
                                      dict(count_cuts=True, fill_cuts=True), {}, [], hint, time_limit_s)
    else:
        scale = model.max_cost_usd()
        opts = dict(link_cuts=True, amortized_cut=False, count_cuts=True, fill_cuts=True,
                    cost_scale_usd=scale if scale > 0 else 1.0)
        ans = milp._solve_highs_here(sub, model, opts, [], hint, time_limit_s)
    return ans.option


def coupled_lp_bound(problem: Problem, incumbent: float | None, time_limit_s: float):
    """The LP relaxation of the coupled model with the task count and fill cuts, in real units.

    A valid bound (budget form: on utility; quality form: on cost) widened by what HiGHS's
    dual tolerance can hide; None if HiGHS did not finish. With ``incumbent`` the model is
    first reduced by Lagrangian fixing, and the bound is then ``max(LP, incumbent)``.

    Returns ``(bound, (lp_option, lp_integral))``: each query's option of largest LP value
    (a start for the search, not necessarily within the budget) and whether that value is 1;
    ``(None, None)`` when HiGHS did not finish.
    """
    import highspy

    from . import milp

    t0 = time.perf_counter()
    model = build_model(problem, incumbent=incumbent)
    time_limit_s -= time.perf_counter() - t0
    scale = model.max_cost_usd()
    rows = milp._assemble(problem, model, [], link_cuts=True, amortized_cut=False,
                          cost_scale_usd=scale if scale > 0 else 1.0)
    h = milp.run_highs_lp(rows, time_limit_s)
    ms = h.getModelStatus()
    if ms != highspy.HighsModelStatus.kOptimal:
        return None, None
    x = np.asarray(h.getSolution().col_value)[:model.m]
    lp_option = model.option_from_columns(x)
    lp_integral = np.maximum.reduceat(x, model.q_start[:-1]) >= 1 - 1e-6 if model.m else np.ones(0, bool)
    real = rows.obj_scale * float(h.getInfo().objective_function_value)
    budget_form = problem.budget_usd is not None
    slack = milp.engine_slack(rows, real)
    bound = real + slack if budget_form else real - slack
    if model.lp_bound is not None:
        bound = min(bound, model.lp_bound) if budget_form else max(bound, model.lp_bound)
    if incumbent is not None:
        bound = max(bound, incumbent) if budget_form else min(bound, incumbent)
    return bound, (lp_option, lp_integral)


def _repair(problem: Problem, option: np.ndarray) -> np.ndarray:
    """``option`` moved into the budget (or up to the target) by the greedy's exact-cost moves
    (on one thread for small instances, as in the greedy)."""
    from ..kernels import greedy_kernels as gk
    from . import greedy as gr

    t = problem.table
    K = problem.instance.n_models
    cap = problem.max_queries if problem.max_queries is not None else np.full(K, t.n_queries)
    with gr.kernel_threads(t):
        st = gr._State(gr._arrays(t), K, np.array(option, dtype=np.int64))
        if problem.max_queries is not None and (st.model_count > cap).any():
            st.local_moves(gk.MODE_CAPACITY, cap)
        if problem.budget_usd is not None:
            limit = problem.budget_usd * (1 + gr.ROUNDING_RTOL)
            for _ in range(8):
                if st.exact <= limit:
                    break
                st.local_moves(gk.MODE_REPAIR, cap, limit_usd=limit)
            if st.exact <= limit:
                st.local_moves(gk.MODE_UPGRADE, cap, limit_usd=limit)
        else:
            st.local_moves(gk.MODE_TRIM, cap, target_utility=problem.min_total_utility)
    return st.opt


class LNSBackend:
    """``method="lns"``: large-neighbourhood search from the greedy plan, anytime.

    Runs until ``time_limit_s`` (or until the gap to the best proven bound is at most
    ``stop_gap``); the plan only improves with time.

    Options (``solve(..., method="lns", **options)``)
    ------------------------------------------------------
    engine : {"highs", "cpsat"}
        Exact engine of the neighbourhoods (default ``"highs"``).
    max_free : int
        Queries freed per neighbourhood (default :data:`DEFAULT_MAX_FREE`).
    sub_time_limit_s : float
        Limit of one neighbourhood's solve (default :data:`DEFAULT_SUB_TIME_S`).
    stop_gap : float
        Stop once the relative gap to the bound is at most this (default 0: use the time).
        A gap within 1e-9 is a proof of optimality and always ends the search.
    min_search_s : float
        Search at least this long before ``stop_gap`` may end the search (default 0). A
        start within ``stop_gap`` of its bound is not always near the optimum's plan: the
        exact HiGHS driver, whose verification time grows with the start's distance, uses it.
    max_iterations : int
        Stop after this many neighbourhoods (default: no limit). With a limit that the time
        does not cut, the plan is a function of the input and the seed alone: the
        neighbourhoods then keep ``max_free`` queries (without it their size adapts to how
        fast each was solved, which depends on the machine).
    lp_bound : bool
        Compute the coupled LP bound with the task count cuts (default True).
    whole : bool
        Run HiGHS on the whole model beside the search, in a child process, from the start
        plan and bound (default True; up to :data:`WHOLE_MAX_CELLS` cells and
        :data:`WHOLE_CELLS_PER_S` cells per second of the limit, with batch sizes above 1,
        and not with ``max_iterations``).

    Notes
    -----
    Deterministic for a seed with ``max_iterations`` and a time limit that does not cut the
    search: the sequence of neighbourhoods is drawn from the seed, their size is fixed, and
    each exact solve is deterministic unless its own short limit cuts it.
    """

    name = "lns"
    options = {
        "engine": Option(str, "highs", "exact engine of the neighbourhoods", choices=("highs", "cpsat")),
        "max_free": Option(int, DEFAULT_MAX_FREE, "queries freed per neighbourhood", minimum=1),
        "sub_time_limit_s": Option(float, DEFAULT_SUB_TIME_S, "time limit of one neighbourhood's exact solve",
                                   minimum=0.0),
        "stop_gap": Option(float, 0.0, "stop once the relative gap to the proven bound is at most this",
                           minimum=0.0),
        "min_search_s": Option(float, 0.0, "search at least this long before stop_gap may end it",
                               minimum=0.0),
        "max_iterations": Option((int, type(None)), None, "stop after this many neighbourhoods (default: the time limit)",
                                 minimum=0),
        "lp_bound": Option(bool, True, "compute the coupled LP bound with the task count cuts"),
        "whole": Option(bool, True, "run HiGHS on the whole model beside the search (child process)"),
    }

    def available(self) -> bool:
        try:
            import highspy  # noqa: F401
        except ImportError:
            return False
        return True

    def solve(self, problem: Problem) -> SolverResult:
        opts = dict(problem.options)
        engine = str(opts.pop("engine", "highs"))
        max_free = int(opts.pop("max_free", DEFAULT_MAX_FREE))
        sub_tl = float(opts.pop("sub_time_limit_s", DEFAULT_SUB_TIME_S))
        # A gap within OPTIMAL_RTOL is a proof (status OPTIMAL): nothing is left to search.
        stop_gap = max(float(opts.pop("stop_gap", 0.0)), OPTIMAL_RTOL)
        min_search_s = float(opts.pop("min_search_s", 0.0))
        max_it = opts.pop("max_iterations", None)
        use_lp = bool(opts.pop("lp_bound", True))
        use_whole = bool(opts.pop("whole", True))
        if opts:
            raise TypeError(f"method 'lns' got unknown options: {', '.join(sorted(opts))}")
        if engine not in ("highs", "cpsat"):
            from ..errors import UnknownMethodError
            raise UnknownMethodError(f"`engine`: unknown LNS engine {engine!r}; valid: highs, cpsat")
        t0 = time.perf_counter()
        deadline = t0 + problem.time_limit_s
        from .greedy import GreedyBackend
        from .restrictions import best_of_restrictions

        greedy = GreedyBackend()
        g = greedy.solve(dataclasses.replace(problem, options={}))
        g = best_of_restrictions(dataclasses.replace(problem, options={}), greedy, g, deadline)
        info: dict[str, Any] = {"engine": f"lns+{engine}", "start": g.info.get("restriction", "joint")}
        bound = float(g.bound)
        if g.option is None:
            return SolverResult(None, g.status, bound, {**info, **{k: v for k, v in g.info.items()
                                                                   if k == "cheapest_cost_usd"}})
        inst = problem.instance
        st = _Incumbent(problem, evaluate(inst, g.option), float(g.bound))
        info["greedy_value"] = st.value(st.best)

        hoods = _Neighbourhoods(problem.table, problem.seed, max_free)
        cells = problem.table.n_queries * problem.table.n_options
        if use_lp and st.gap() > stop_gap and 0 < cells <= LP_MAX_CELLS:
            tl = min(max(deadline - time.perf_counter(), 0.0) * 0.3, 30.0)
            tb = time.perf_counter()
            try:
                lpb, lp_opt = coupled_lp_bound(problem, st.value(st.best), tl)
            except MemoryError:
                lpb = lp_opt = None
            info["lp_bound_s"] = time.perf_counter() - tb
            if lpb is not None:
                info["coupled_lp_bound"] = lpb
                st.tighten(lpb)
            if lp_opt is not None:
                lp_opt, lp_integral = lp_opt
                hoods.lp = (lp_opt, lp_integral)
                # The LP's plan, repaired to the budget and improved by the greedy's exact
                # moves: with the count cuts the LP is nearly integral, so this start is
                # often far better than the greedy's (whose partial calls cost it).
                ev = evaluate(inst, _repair(problem, lp_opt))
                info["lp_start_value"] = st.value(ev) if is_feasible(problem, ev) else None
                if st.offer(ev):
                    info["start"] = "lp-rounded"
        whole = (use_whole and max_it is None and 0 < cells <= min(WHOLE_MAX_CELLS,
                                                                   WHOLE_CELLS_PER_S * problem.time_limit_s)
                 and int(problem.table.option_batch.max()) > 1 and st.gap() > stop_gap
                 and deadline - time.perf_counter() >= WHOLE_MIN_S and _whole_engine_available())
        with contextlib.ExitStack() as stack:
            job = None
            if whole:
                job = stack.enter_context(WholeModelJob(problem, st.best.option, st.bound,
                                                        time.time() + deadline - time.perf_counter()))
            opt = st.best.option.copy()
            it = improved = 0
            kinds_won: dict[str, int] = {}
            while ((st.gap() > stop_gap or time.perf_counter() - t0 < min_search_s)
                   and st.gap() > OPTIMAL_RTOL and (max_it is None or it < int(max_it))):
                remaining = deadline - time.perf_counter()
                if remaining <= 0.02:
                    break
                ended = None if job is None else job.poll()
                if ended is not None:
                    # The whole-model engine ended early (proved, or gave up): take its answer.
                    if st.take(ended, info):
                        opt = st.best.option.copy()
                    job = None
                    continue
                it += 1
                kind, free = hoods.draw(opt)
                sub, rows, hint = _subproblem(problem, opt, free)
                try:
                    ts = time.perf_counter()
                    sub_opt = _solve_sub(sub, hint, engine, min(sub_tl, remaining))
                except Exception as exc:            # a neighbourhood's failure never loses the plan
                    info["last_sub_error"] = f"{type(exc).__name__}: {exc}"
                    continue
                if max_it is None:
                    # Sizes follow how fast the machine solved: not with max_iterations, whose
                    # plan must depend on the input and the seed alone (it did not: three runs
                    # of 40 neighbourhoods gave two different plans).
                    hoods.adapt(time.perf_counter() - ts < 0.5 * sub_tl)
                if sub_opt is None or np.array_equal(sub_opt, hint):
                    continue
                cand = opt.copy()
                cand[rows] = sub_opt
                if st.offer(evaluate(inst, cand)):
                    opt = cand
                    improved += 1
                    kinds_won[kind] = kinds_won.get(kind, 0) + 1
            info.update(iterations=it, improvements=improved, improvements_by_kind=kinds_won,
                        search_s=time.perf_counter() - t0)
            if job is not None and st.gap() > stop_gap:
                st.take(job.result(), info)
        info["lns_s"] = time.perf_counter() - t0
        info["gap"] = st.gap()
        status = Status.OPTIMAL if st.gap() <= OPTIMAL_RTOL else Status.FEASIBLE
        return SolverResult(st.best.option, status, st.bound, info)


class _Incumbent:
    """The best plan found (graded) and the tightest proven bound."""

    def __init__(self, problem: Problem, best, bound: float):
        self.problem = problem
        self.budget_form = problem.budget_usd is not None
        self.best = best
        self.bound = bound
        self.report()

    def report(self) -> None:
        """The whole plan's value and bound to the caller's progress callback."""
        self.problem.report(phase="search", incumbent=self.value(self.best), bound=self.bound)

    def value(self, ev) -> float:
        return ev.utility if self.budget_form else ev.cost_usd

    def gap(self) -> float:
        return _gap(self.problem, self.best, self.bound)

    def tighten(self, bound: float | None) -> None:
        if bound is not None and np.isfinite(bound):
            before = self.bound
            self.bound = min(self.bound, float(bound)) if self.budget_form else max(self.bound, float(bound))
            if self.bound != before:
                self.report()

    def offer(self, ev) -> bool:
        """Keep ``ev`` if it is feasible and better; whether it was kept."""
        if is_feasible(self.problem, ev) and _better(self.problem, ev, self.best):
            self.best = ev
            self.report()
            return True
        return False

    def take(self, res: SolverResult | None, info: dict[str, Any]) -> bool:
        """The whole-model engine's answer: its bound, and its plan if better."""
        if res is None:
            info["whole_status"] = "no answer"
            return False
        info["whole_status"] = res.status.value
        info["whole_wall_s"] = res.info.get("wall_s")
        self.tighten(res.bound)
        kept = res.option is not None and self.offer(evaluate(self.problem.instance, res.option))
        info["whole_improved"] = kept
        return kept


def _whole_engine_available() -> bool:
    from .milp import MILPBackend
    return "highs" in MILPBackend.engines()
