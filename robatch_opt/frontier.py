"""Cost-utility frontiers: the best plan found at every budget of a sweep.

:func:`frontier` solves one instance at many budgets, from the cheapest plan to the most
useful one, and returns a compact, frozen :class:`Frontier` table (one row per budget).

For ``method="greedy"`` the whole sweep comes from **one walk**. The greedy's upgrade
order (every hull increment, by decreasing utility per dollar) does not depend on the
budget, so the hulls are built and the increments sorted once; each budget then takes a
prefix of that order (a binary search on the cumulative cost), repairs the partial-call
overhead by re-thresholding at a lowered budget, and runs the greedy's exact-cost local
moves. Each point costs one binary search, O(n) bookkeeping and the local moves. The walk
is the greedy's algorithm (same order, same LP bound, same local moves) but not a call of
:func:`robatch_opt.solve`, whose coupling step may differ in detail; pass
``shared_walk=False`` for the per-budget ``solve(method="greedy")`` plans. Either way a point
keeps an earlier point's plan when that still fits and is better (the sweep is monotone by
construction), so a point can beat ``solve(method="greedy")`` at its budget and depends on
which budgets are in the sweep (``solve`` alone is not monotone in the budget). Exact
methods are solved budget by budget (each point an independent proof), with a progress bar
on stderr when the sweep takes more than a moment.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ._validate import check_instance, numeric_array
from .errors import InfeasibleBudgetError, InstanceError, UnknownMethodError
from .instance import Instance
from .options import compile_options
from .plan import Plan, Status
from .solve import reference_costs, solve
from .solvers import AUTO, get_backend, registered_methods

__all__ = ["Frontier", "frontier", "frontier_budgets", "plot_frontiers", "ProgressBar"]

FRONTIER_FORMAT = "robatch_opt.frontier/1"

#: A sweep shows its progress bar once it has run this long (seconds).
PROGRESS_AFTER_S = 1.0


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class Frontier:
    """The best plan found at each budget of a sweep (one row per budget, budgets ascending).

    Attributes
    ----------
    method : str
        Backend that solved every point (``"greedy"``, ``"cpsat"``...).
    label : str
        What was solved, e.g. ``"joint"``, ``"routing-only"``, ``"batching-only"``.
    budget_usd : ndarray, shape (m,)
        The budgets, ascending.
    cost_usd, utility, mean_utility : ndarray, shape (m,)
        Exact cost and utility of each point's plan, graded by :func:`robatch_opt.evaluate`;
        NaN where no plan fits the budget.
    upper_bound : ndarray, shape (m,)
        Proven upper bound on the optimal total utility at that budget (NaN if infeasible).
    gap : ndarray, shape (m,)
        ``(upper_bound - utility) / upper_bound`` (NaN if infeasible).
    status : tuple of str
        :class:`~robatch_opt.Status` value per point (``"infeasible"`` when the budget is
        below every plan of this instance).
    n_queries : int
    wall_time_s : float
        Time of the whole sweep.
    plans : tuple of Plan or None, or None
        The plan of each point when ``keep_plans=True`` (None at infeasible points).
    info : mapping
        Sweep details (e.g. the greedy's shared walk: increments sorted, time in the sort).
    """

    method: str
    label: str
    budget_usd: np.ndarray
    cost_usd: np.ndarray
    utility: np.ndarray
    mean_utility: np.ndarray
    upper_bound: np.ndarray
    gap: np.ndarray
    status: tuple[str, ...]
    n_queries: int
    wall_time_s: float
    plans: tuple[Plan | None, ...] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.budget_usd.shape[0])

    @property
    def feasible(self) -> np.ndarray:
        """Boolean mask of the points that have a plan."""
        return np.isfinite(self.utility)

    @property
    def mean_upper_bound(self) -> np.ndarray:
        """Upper bound per query (comparable with :attr:`mean_utility`)."""
        return self.upper_bound / self.n_queries if self.n_queries else self.upper_bound

    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per point (budget_usd, cost_usd, utility, mean_utility, upper_bound, gap, status)."""
        out = []
        for p in range(len(self)):
            out.append({
                "budget_usd": float(self.budget_usd[p]), "cost_usd": _none_if_nan(self.cost_usd[p]),
                "utility": _none_if_nan(self.utility[p]), "mean_utility": _none_if_nan(self.mean_utility[p]),
                "upper_bound": _none_if_nan(self.upper_bound[p]), "gap": _none_if_nan(self.gap[p]),
                "status": self.status[p],
            })
        return out

    def to_dict(self) -> dict[str, Any]:
        """The table as plain Python values (what ``robatch-opt frontier --json`` prints)."""
        return {"format": FRONTIER_FORMAT, "method": self.method, "label": self.label,
                "n_queries": self.n_queries, "wall_time_s": self.wall_time_s, "points": self.rows(),
                "info": {k: v for k, v in self.info.items() if isinstance(v, (int, float, str, bool))}}

    def to_json(self) -> str:
        """:meth:`to_dict` as one JSON object (NaN written as null)."""
        return json.dumps(self.to_dict())

    def table(self) -> str:
        """A Markdown table: budget, exact cost, mean utility, mean upper bound, gap, status."""
        lines = ["| budget (USD) | exact cost (USD) | mean utility | mean upper bound | gap | status |",
                 "|---:|---:|---:|---:|---:|:---|"]
        ub = self.mean_upper_bound
        for p in range(len(self)):
            lines.append(f"| {self.budget_usd[p]:.6g} | {_fmt(self.cost_usd[p], '.6g')} | "
                         f"{_fmt(self.mean_utility[p], '.5f')} | {_fmt(ub[p], '.5f')} | "
                         f"{_fmt(100 * self.gap[p], '.3g')}% | {self.status[p]} |")
        return "\n".join(lines)

    def best_within(self, budget_usd: float) -> int | None:
        """Index of the most useful point whose exact cost is at most ``budget_usd`` (None if none)."""
        ok = self.feasible & (np.nan_to_num(self.cost_usd, nan=np.inf) <= budget_usd)
        if not ok.any():
            return None
        idx = np.flatnonzero(ok)
        return int(idx[np.argmax(self.utility[idx])])

    def cost_to_reach(self, mean_utility: float) -> float:
        """Least exact cost among the points whose mean utility is at least ``mean_utility``.

        A step reading of the curve (no interpolation: an interpolated plan need not
        exist); ``inf`` when no point reaches it. For a precise figure solve the quality
        form, ``ro.solve(inst, min_mean_utility=...)``.
        """
        ok = self.feasible & (np.nan_to_num(self.mean_utility, nan=-np.inf) >= mean_utility - 1e-12)
        return float(self.cost_usd[ok].min()) if ok.any() else math.inf

    def __repr__(self) -> str:
        ok = self.feasible
        span = (f"mean utility {np.nanmin(self.mean_utility):.4f}..{np.nanmax(self.mean_utility):.4f}"
                if ok.any() else "no feasible point")
        return (f"Frontier(label={self.label!r}, method={self.method!r}, points={len(self)}, "
                f"budget ${self.budget_usd[0]:.6g}..${self.budget_usd[-1]:.6g}, {span})")


def _none_if_nan(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _fmt(x, spec: str) -> str:
    x = float(x)
    return "-" if math.isnan(x) else format(x, spec)


# --------------------------------------------------------------------------- budgets
def frontier_budgets(inst: Instance, points: int = 12) -> np.ndarray:
    """``points`` budgets evenly spaced from the cheapest plan's cost to the most useful plan's.

    Uses :func:`robatch_opt.reference_costs`; both ends are included (a single point is
    the most useful plan's cost).
    """
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 1:
        raise InstanceError("points", f"must be an integer >= 1, got {points!r}")
    lo, hi = reference_costs(inst)
    hi = max(hi, lo)
    if points == 1:
        return np.array([hi])
    return lo + np.linspace(0.0, 1.0, int(points)) * (hi - lo)


def check_sweep_flags(*, progress, label: str = "joint", keep_plans: bool = False,
                      shared_walk: bool = True) -> None:
    """Refuse, by name, a sweep's flags of the wrong type (a string is not a yes)."""
    if not isinstance(label, str):
        raise InstanceError("label", f"must be a string, got {type(label).__name__}")
    for name, value in (("keep_plans", keep_plans), ("shared_walk", shared_walk)):
        if not isinstance(value, (bool, np.bool_)):
            raise InstanceError(name, f"must be True or False, got {value!r}")
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise InstanceError("progress", f"must be True, False or None (only on a terminal), got {progress!r}")


def check_budgets(budgets) -> np.ndarray:
    # Numbers only ('1.5' is refused, as everywhere), named by entry.
    b = np.array(numeric_array(budgets, "budgets"), dtype=np.float64).ravel()
    if b.size == 0:
        raise InstanceError("budgets", "must hold at least one budget")
    bad = ~np.isfinite(b) | (b < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InstanceError(f"budgets[{i}]", f"must be a finite number >= 0 USD, got {b[i]!r}")
    return np.sort(b)


# --------------------------------------------------------------------------- progress
class ProgressBar:
    """A one-line progress bar on stderr that appears only once a sweep takes a while.

    Parameters
    ----------
    total : int
        Number of steps.
    label : str
    enabled : bool or None
        True: show (after ``after_s``); False: never; None: show only if stderr is a terminal.
    after_s : float
        Seconds of silence before the bar appears, so that quick sweeps print nothing.
    """

    def __init__(self, total: int, label: str = "", *, enabled: bool | None = None,
                 after_s: float = PROGRESS_AFTER_S, stream=None):
        self.total, self.label = max(int(total), 1), label
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled, self.after_s = enabled, after_s
        self.t0 = time.perf_counter()
        self.shown = False

    def update(self, done: int) -> None:
        """Redraw after ``done`` of ``total`` steps."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        if elapsed < self.after_s and not self.shown:
            return
        self.shown = True
        width = 30
        fill = int(width * done / self.total)
        self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{self.total} "
                          f"{elapsed:6.1f} s")
        self.stream.flush()

    def close(self) -> None:
        """End the line if the bar was drawn."""
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------- sweep
def frontier(inst: Instance, budgets: Sequence[float] | np.ndarray | None = None, *,
             method: str = "greedy", points: int = 12, label: str = "joint", keep_plans: bool = False,
             progress: bool | None = None, shared_walk: bool = True, **solve_kwargs: Any) -> Frontier:
    """Solve ``inst`` at a sweep of budgets: its cost-utility frontier.

    Parameters
    ----------
    inst : Instance
    budgets : sequence of float, optional
        Budgets in USD (sorted ascending in the result). Default: ``points`` budgets evenly
        spaced from the cheapest plan's exact cost to the most useful plan's
        (:func:`frontier_budgets`). Budgets below every plan give ``"infeasible"`` rows.
    method : str
        ``"greedy"`` (one shared walk, see Notes) or any method of :func:`robatch_opt.solve`
        (solved budget by budget).
    points : int
        Number of budgets when ``budgets`` is None.
    label : str
        Name of the curve (kept in the result, used in plots).
    keep_plans : bool
        Keep every point's :class:`~robatch_opt.Plan` in ``Frontier.plans``.
    progress : bool or None
        Progress bar on stderr for per-budget sweeps that take more than
        ``PROGRESS_AFTER_S``; None shows it only on a terminal.
    shared_walk : bool
        Greedy only: sweep with one shared walk (default) or call
        ``solve(method="greedy")`` at every budget; an earlier point's plan that still fits
        and is better is kept in both (see the module notes).
    **solve_kwargs
        Passed to :func:`robatch_opt.solve` (``time_limit_s``, ``seed``,
        ``max_queries_per_model``, backend options).

    Returns
    -------
    Frontier

    Raises
    ------
    UnknownMethodError, SolverUnavailableError
        Before any work.
    InstanceError
        Bad budgets or points.

    Notes
    -----
    Greedy: the hulls are built once and all N hull increments sorted once (O(N log N));
    each budget costs a binary search, O(n) to set the per-query prefix, the coupling
    repair and the exact local moves. Every point is graded by ``evaluate`` and carries
    the LP bound of the amortized MCKP at its budget (the same bound the greedy reports).
    With per-model capacities the greedy walk depends on the budget, so those sweeps are
    solved budget by budget.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst = ro.workloads.synthetic(n=300, family="correlated", seed=0)
    >>> fr = ro.frontier(inst, points=5)
    >>> len(fr), bool((fr.cost_usd <= fr.budget_usd).all()), bool((fr.utility <= fr.upper_bound).all())
    (5, True, True)
    """
    t0 = time.perf_counter()
    if not isinstance(method, str) or method not in registered_methods():
        raise UnknownMethodError(f"`method`: unknown method {method!r}; valid: {', '.join(registered_methods())}")
    if method != AUTO:
        get_backend(method)                      # unavailable engines fail before any work
    check_instance(inst, "inst")
    if "budget" in solve_kwargs or "min_mean_utility" in solve_kwargs:
        raise InstanceError("budget", "a frontier sweeps budgets: pass `budgets=`, not `budget`/`min_mean_utility`")
    check_sweep_flags(label=label, keep_plans=keep_plans, shared_walk=shared_walk, progress=progress)
    from .solve import check_solve_kwargs

    check_solve_kwargs(method, solve_kwargs)     # unknown or mistyped options: before any work
    b = frontier_budgets(inst, points) if budgets is None else check_budgets(budgets)

    if method == "greedy" and shared_walk and solve_kwargs.get("max_queries_per_model") is None:
        results, info = _greedy_sweep(inst, b, solve_kwargs)
        results = _best_of_restriction_sweeps(inst, b, results, solve_kwargs)
    else:
        results, info = _solve_each(inst, b, method, solve_kwargs, progress)
    return _assemble(inst, b, results, method, label, keep_plans, time.perf_counter() - t0, info)


def _assemble(inst: Instance, budgets: np.ndarray, results: list[Plan | None], method: str, label: str,
              keep_plans: bool, wall_s: float, info: dict) -> Frontier:
    m = len(budgets)
    cost, util, ub, gap = (np.full(m, np.nan) for _ in range(4))
    status = []
    for p, plan in enumerate(results):
        if plan is None:
            status.append(Status.INFEASIBLE.value if info.get("infeasible_proven", {}).get(p, True)
                          else Status.NO_SOLUTION.value)
            continue
        cost[p], util[p], ub[p], gap[p] = plan.cost_usd, plan.utility, plan.upper_bound, plan.gap
        status.append(plan.status.value)
    n = inst.n_queries
    mean = util / n if n else util
    arrays = [budgets.copy(), cost, util, mean, ub, gap]
    for a in arrays:
        a.flags.writeable = False
    info = {k: v for k, v in info.items() if k != "infeasible_proven"}
    return Frontier(method=method, label=label, budget_usd=arrays[0], cost_usd=cost, utility=util,
                    mean_utility=mean, upper_bound=ub, gap=gap, status=tuple(status), n_queries=n,
                    wall_time_s=wall_s, plans=tuple(results) if keep_plans else None, info=info)


def _solve_each(inst: Instance, budgets: np.ndarray, method: str, solve_kwargs: dict,
                progress: bool | None) -> tuple[list[Plan | None], dict]:
    """Budget by budget through the front door (exact engines: every point its own proof)."""
    results: list[Plan | None] = []
    proven: dict[int, bool] = {}
    bar = ProgressBar(len(budgets), f"frontier ({method})", enabled=progress)
    try:
        best: Plan | None = None
        for p, b in enumerate(budgets):
            try:
                plan = solve(inst, budget=float(b), method=method, **solve_kwargs)
            except InfeasibleBudgetError as exc:
                if best is None:
                    results.append(None)
                    proven[p] = exc.proven
                    bar.update(p + 1)
                    continue
                plan = None
            if best is not None and (plan is None or best.utility > plan.utility):
                # Monotone by construction: an earlier point's plan fits this larger budget.
                plan = _carry(best, plan, float(b))
            best = plan
            results.append(plan)
            bar.update(p + 1)
    finally:
        bar.close()
    return results, {"sweep": "per-budget", "infeasible_proven": proven}


def _best_of_restriction_sweeps(inst: Instance, budgets: np.ndarray, results: list[Plan | None],
                                solve_kwargs: dict) -> list[Plan | None]:
    """Each point's plan or a restriction's at that budget, whichever is more useful.

    The restrictions (routing-only, batching-only, single-model; see
    :mod:`robatch_opt.solvers.restrictions`) are swept by the same shared walk; a winning
    plan keeps the joint point's bound and names its restriction in ``info``. Then the
    sweep is made monotone again (a better plan at one budget fits every larger one).
    """
    import dataclasses

    from .evaluate import evaluate, within_budget
    from .solvers.restrictions import build_restriction, lift_option

    out = list(results)
    for label, points in _restrictions_that_may_win(inst, budgets, results).items():
        sub = build_restriction(inst, label)
        sub_results, _ = _greedy_sweep(sub, budgets[points], solve_kwargs)
        for p, plan in zip(points.tolist(), sub_results):
            if plan is None:
                continue
            ev = evaluate(inst, lift_option(inst, sub, plan.option))
            cur = out[p]
            if not within_budget(ev.cost_usd, float(budgets[p])):
                continue
            if cur is None or ev.utility > cur.utility:
                if cur is None:
                    continue            # the joint found no plan at this budget: keep its verdict
                ub = max(cur.upper_bound, ev.utility)
                gap = (ub - ev.utility) / ub if ub > 0 else 0.0
                info = dict(cur.info)
                info["restriction"] = label
                out[p] = dataclasses.replace(
                    cur, option=ev.option, model=_ro_i(inst.option_model[ev.option]),
                    batch_size=_ro_i(inst.option_batch[ev.option]), cost_usd=ev.cost_usd, utility=ev.utility,
                    upper_bound=ub, gap=float(gap), n_calls=ev.n_calls, breakdown=ev.breakdown,
                    status=Status.OPTIMAL if gap <= 1e-9 else Status.FEASIBLE, info=info)
    best = None
    for p, plan in enumerate(out):
        if best is not None and (plan is None or best.utility > plan.utility):
            out[p] = plan = _carry(best, plan, float(budgets[p]))
        if plan is not None:
            best = plan
    return out


def _restrictions_that_may_win(inst: Instance, budgets: np.ndarray,
                               results: list[Plan | None]) -> dict[str, np.ndarray]:
    """Per restriction, the points (indices into ``budgets``) where its sweep could beat the
    joint sweep's plan.

    At each point the Lagrangian bound of each restriction at the walk's threshold price
    (the screen ``ro.solve`` applies, :class:`robatch_opt.solvers.restrictions._LagrangianScreen`)
    is compared with the joint plan; a restriction is swept only at the points where it may
    win (sweeping all 1 + K of them at every point made the frontier 3-5x slower than
    per-budget solves).
    """
    from .solvers.base import Problem, SolverResult
    from .solvers.restrictions import _LagrangianScreen, restriction_columns, restriction_labels

    labels = [label for label in restriction_labels(inst) if len(restriction_columns(inst, label))]
    table = compile_options(inst)
    points: dict[str, list[int]] = {label: [] for label in labels}
    for p, plan in enumerate(results):
        if plan is None:
            continue                 # no joint plan at this budget: a restriction's is not taken
        problem = Problem(instance=inst, table=table, budget_usd=float(budgets[p]), min_total_utility=None,
                          max_queries=None, time_limit_s=1.0)
        screen = _LagrangianScreen(problem, SolverResult(plan.option, plan.status, plan.upper_bound,
                                                         {"threshold_ratio": plan.info.get("threshold_ratio")}),
                                   plan, labels)
        for label in labels:
            if not screen.cannot_win(label):
                points[label].append(p)
    return {label: np.asarray(ps, dtype=np.int64) for label, ps in points.items() if ps}


def _ro_i(a) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a


def _carry(earlier: Plan, current: Plan | None, budget: float) -> Plan:
    """``earlier``'s plan reported at ``budget`` (which it fits), with the best bound known."""
    import dataclasses

    ub = earlier.upper_bound if current is None else max(current.upper_bound, earlier.utility)
    if current is None:
        ub = math.inf if earlier.upper_bound is None else ub
    gap = (ub - earlier.utility) / ub if ub and math.isfinite(ub) and ub > 0 else (0.0 if ub == 0 else math.nan)
    status = current.status if current is not None and current.status == Status.OPTIMAL else Status.FEASIBLE
    info = dict(earlier.info)
    info["carried_from_budget_usd"] = earlier.budget_usd
    return dataclasses.replace(earlier, budget_usd=budget, upper_bound=ub, gap=float(gap), status=status, info=info)


def _greedy_sweep(inst: Instance, budgets: np.ndarray, solve_kwargs: dict) -> tuple[list[Plan | None], dict]:
    """The greedy at every budget from one hull build and one sort of all increments."""
    import numba

    from .solvers import greedy as gr

    # Same threading rule as the greedy backend, so that chunked sums (and plans) agree.
    before = numba.get_num_threads()
    if inst.n_queries * inst.n_options < gr.PARALLEL_MIN_CELLS:
        numba.set_num_threads(1)
    try:
        return _greedy_sweep_body(inst, budgets, solve_kwargs)
    finally:
        numba.set_num_threads(before)


def _greedy_sweep_body(inst: Instance, budgets: np.ndarray, solve_kwargs: dict) -> tuple[list[Plan | None], dict]:
    # Imported here: the greedy backend is a separate module that may be absent.
    from .kernels import greedy_kernels as gk
    from .solve import _grade
    from .solvers import greedy as gr
    from .solvers.base import Problem, SolverResult

    t_shared = time.perf_counter()
    table = compile_options(inst)
    n = table.n_queries
    tl = float(solve_kwargs.get("time_limit_s", 60.0))
    seed = int(solve_kwargs.get("seed", 0))
    extra = {k: v for k, v in solve_kwargs.items() if k not in ("time_limit_s", "seed", "max_queries_per_model")}
    if not math.isfinite(tl) or tl <= 0:
        raise InstanceError("time_limit_s", f"must be a positive number of seconds, got {tl!r}")
    arr = gr._arrays(table)
    cost, util = arr["cost"], arr["util"]
    start = np.ascontiguousarray(table.cheapest_option, dtype=np.int64)
    hulls = gr.hull_arrays(cost, util, start)
    hull_opt, hull_len = hulls[0], hulls[1]        # (a ratio-bin range may follow; unused here)
    iq, _ip, ir, idc, idu = gk._collect_all_increments(cost, util, hull_opt, hull_len)
    # Decreasing ratio; stable, so ties keep (query, hull position) order as the greedy does.
    order = np.argsort(-ir, kind="stable")
    q_sorted = np.ascontiguousarray(iq[order])
    r_sorted = ir[order]
    cum_dc = np.cumsum(idc[order])
    cum_du = np.cumsum(idu[order])
    dc_sorted, du_sorted = idc[order], idu[order]
    c0 = table.min_cost_usd
    u0 = float(util[np.arange(n), start].sum()) if n else 0.0
    shared_s = time.perf_counter() - t_shared

    def prefix(cap_usd: float) -> int:
        """Increments the greedy takes with ``cap_usd`` of amortized cost to spend."""
        return int(np.searchsorted(cum_dc, cap_usd, side="right")) if cap_usd > 0 else 0

    def positions(m: int) -> np.ndarray:
        # Every query's increments appear in its hull order, so a prefix is a per-query prefix.
        return np.bincount(q_sorted[:m], minlength=n).astype(np.int64)

    results: list[Plan | None] = []
    proven: dict[int, bool] = {}
    prev: np.ndarray | None = None

    def options_at(cap_usd: float) -> np.ndarray:
        out = np.empty(n, np.int64)
        gk._options_from_positions(hull_opt, positions(prefix(cap_usd)), out)
        return out

    for b in budgets:
        t0 = time.perf_counter()
        budget = float(b)
        if budget < c0 * (1 - 1e-12) or n == 0:
            if n == 0:
                results.append(solve(inst, budget=budget, method="greedy", **solve_kwargs))
            else:
                results.append(None)
            continue
        # The bound covers every plan the package calls feasible: cost <= budget (1 + 1e-12).
        cap_b = budget * (1.0 + 1e-12) - c0
        m = prefix(cap_b)
        taken_du = cum_du[m - 1] if m else 0.0
        if m < len(cum_dc):
            left = cap_b - (cum_dc[m - 1] if m else 0.0)
            frac = min(max(left / dc_sorted[m], 0.0), 1.0)
            lp_du = taken_du + frac * du_sorted[m]
        else:
            lp_du = taken_du
        bound = (u0 + lp_du) * (1.0 + 1e-12)
        problem = Problem(instance=inst, table=table, budget_usd=budget, min_total_utility=None,
                          max_queries=None, time_limit_s=tl, seed=seed, options=dict(extra))
        # The greedy's own finish (coupling repair, exact moves); the previous point's plan is
        # the floor, so the sweep is monotone by construction (budgets ascend, it still fits).
        opt = gr.finish_from_positions(problem, options_at, floor_option=None if prev is None else prev)
        if opt is None:
            results.append(None)
            proven[len(results) - 1] = False
            continue
        prev = opt.copy()
        # The LP's price at this budget (the break increment's ratio; 0 when all fits): the
        # restriction screen's Lagrangian multiplier.
        lam = float(r_sorted[m]) if m < len(cum_dc) else 0.0
        res = SolverResult(opt, Status.FEASIBLE, float(bound),
                           {"engine": "greedy", "sweep": "shared-walk", "threshold_ratio": lam})
        results.append(_grade(problem, res, "greedy", t0, None))
    info = {"sweep": "shared-walk", "n_increments": int(len(order)), "shared_precompute_s": shared_s,
            "infeasible_proven": proven}
    return results, info


# --------------------------------------------------------------------------- plots
def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting frontiers needs matplotlib, an optional extra: "
                          "pip install 'robatch_opt[plot]'") from exc
    return plt


def plot_frontiers(frontiers: Iterable[Frontier] | Mapping[str, Frontier], path: str | None = None, *,
                   title: str = "", markers: Mapping[str, tuple[float, float]] | None = None):
    """Plot frontiers: exact cost in dollars on x, mean utility (accuracy) on y, one line each.

    Parameters
    ----------
    frontiers : iterable of Frontier, or mapping of label to Frontier
    path : str, optional
        Write a PNG there (the figure is closed afterwards).
    title : str
    markers : mapping of label to (cost_usd, mean_utility), optional
        Single plans to show as points (e.g. each model alone without batching).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure when ``path`` is None.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'robatch_opt[plot]'``).
    """
    plt = _pyplot()
    items = list(frontiers.items()) if isinstance(frontiers, Mapping) else [(f.label, f) for f in frontiers]
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    styles = ["-o", "--s", ":^", "-.v", "-D", "--x"]
    for (label, fr), style in zip(items, styles * 4):
        ok = fr.feasible
        ax.plot(fr.cost_usd[ok], fr.mean_utility[ok], style, label=f"{label} ({fr.method})", markersize=4)
    for name, (c, u) in (markers or {}).items():
        ax.plot([c], [u], "k*", markersize=7)
        ax.annotate(name, (c, u), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("exact cost of the plan (USD)")
    ax.set_ylabel("mean expected accuracy per query")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    if path is None:
        return fig
    from ._files import write_figure

    write_figure(fig, path)                  # format by suffix, one atomic write to exactly `path`
    return None
