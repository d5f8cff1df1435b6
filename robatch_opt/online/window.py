"""The batching router's window problem, as a function of plain arrays (validated wrapper).

A window holds ``m`` requests of one task. Option ``j = (k, b)`` of request ``i`` is worth
``score[i, j] = Q * (p[i, k] * r_j - alpha) - V * v[i, k]`` and every call of option ``j``
costs ``call_value[j] = V * f[k]`` (one system prompt). :func:`plan_window` maximises
``sum_i score[i, x_i] - sum_j ceil(n_j / b_j) * call_value[j]``, i.e. minimises
``V * exact_cost - Q * sum_i (p_i - alpha)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from numbers import Real

import numpy as np

from ..kernels import online_kernels as ok
from .errors import OnlineError

__all__ = ["plan_window", "plan_window_exact", "window_objective", "WindowPlan",
           "DEFAULT_EXACT_TIME_S"]

#: Time limit of one window's exact solve (seconds); by then HiGHS's best plan is taken if
#: it beats the heuristic's, proved optimal or not (``WindowPlan.proven`` tells).
DEFAULT_EXACT_TIME_S = 0.5


def _arrays(score, call_value, batch):
    score = np.ascontiguousarray(score, dtype=np.float64)
    call_value = np.ascontiguousarray(call_value, dtype=np.float64)
    batch = np.ascontiguousarray(batch, dtype=np.int64)
    if score.ndim != 2 or call_value.shape != (score.shape[1],) or batch.shape != (score.shape[1],):
        raise OnlineError("score", f"score (m, J), call_value (J,) and batch (J,) must agree, got "
                                   f"{score.shape}, {call_value.shape}, {batch.shape}")
    if (batch < 1).any():
        raise OnlineError("batch", "batch sizes must be >= 1")
    if np.isnan(score).any() or (score == np.inf).any():
        raise OnlineError("score", "must be finite or -inf (not allowed)")
    if not np.all(np.isfinite(call_value)) or (call_value < 0).any():
        raise OnlineError("call_value", "must be finite and >= 0")
    bad = ~np.isfinite(score).any(axis=1)
    if bad.any():
        raise OnlineError(f"score[{int(np.argmax(bad))}]", "request has no allowed option")
    return score, call_value, batch


def plan_window(score, call_value, batch, *, max_rounds: int = 8) -> np.ndarray:
    """Option per request maximising the window objective (module docstring).

    Parameters
    ----------
    score : array_like, shape (m, J)
        Value of option ``j`` for request ``i``; ``-inf`` where not allowed (every request
        needs a finite entry; NaN and ``+inf`` are refused).
    call_value : array_like, shape (J,)
        Value lost per call of option ``j`` (``V`` times one call's system-prompt cost),
        finite and >= 0.
    batch : array_like of int, shape (J,)
        Seats per call of option ``j``, >= 1.
    max_rounds : int
        Rounds of improving moves.

    Returns
    -------
    ndarray of int64, shape (m,)
        Option per request; an allowed one (finite ``score``).

    Raises
    ------
    OnlineError
        Shapes that disagree, a batch size < 1, a NaN or ``+inf`` score, a request with no
        allowed option, or a ``call_value`` that is not finite and >= 0.

    Notes
    -----
    The amortized Lagrangian start (each request alone on ``argmax score - call_value / b``)
    followed by exact single moves and group moves (Numba,
    :func:`robatch_opt.kernels.online_kernels.plan_window`); exact when every batch size is
    1 (the problem separates). 0.4-1 ms for 256 requests x 44 options after warm-up
    (``benchmarks/bench_online.py``).
    """
    s, c, b = _arrays(score, call_value, batch)
    return ok.plan_window(s, c, b, int(max_rounds))


def window_objective(score, call_value, batch, option) -> float:
    """``sum_i score[i, x_i] - sum_j ceil(n_j / b_j) * call_value[j]``.

    Parameters
    ----------
    score, call_value, batch
        As :func:`plan_window`.
    option : array_like of int, shape (m,)
        Option ``x_i`` of each request, in ``[0, J)``; ``n_j`` counts the requests on ``j``.

    Returns
    -------
    float
        The objective (to maximise); ``-inf`` if some request is on a disallowed option.

    Raises
    ------
    OnlineError
        As :func:`plan_window`, or ``option`` of the wrong shape or out of ``[0, J)``.
    """
    s, c, b = _arrays(score, call_value, batch)
    x = np.ascontiguousarray(option, dtype=np.int64)
    # The kernel indexes without bounds checks: a wrong length or option read past the arrays.
    if x.shape != (s.shape[0],):
        raise OnlineError("option", f"must have shape ({s.shape[0]},), one option per request, got {x.shape}")
    if x.size and (x.min() < 0 or x.max() >= s.shape[1]):
        raise OnlineError("option", f"options must lie in [0, {s.shape[1]}), got {int(x.min())}..{int(x.max())}")
    return float(ok.window_objective(s, c, b, x))


@dataclass(frozen=True)
class WindowPlan:
    """A window's plan from :func:`plan_window_exact`.

    Attributes
    ----------
    option : ndarray of int64, shape (m,)
        Option per request.
    objective : float
        Its window objective (:func:`window_objective`, to maximise).
    bound : float
        A proven upper bound on the objective of any plan (``objective`` itself when
        ``proven``); ``inf`` when HiGHS gave none.
    proven : bool
        HiGHS proved ``option`` optimal (up to its ``mip_rel_gap`` of 0 and its feasibility
        tolerance of 1e-9 on the call rows, whose coefficients are integers).
    source : str
        ``"exact"`` (HiGHS's plan) or ``"heuristic"`` (:func:`plan_window`'s plan kept: it was
        at least as good, or HiGHS failed or ran out of time).
    """

    option: np.ndarray
    objective: float
    bound: float
    proven: bool
    source: str


def plan_window_exact(score, call_value, batch, *, time_limit_s: float = DEFAULT_EXACT_TIME_S) -> WindowPlan:
    """The window problem solved exactly as a small integer program (HiGHS).

    Maximise ``sum_ij score[i, j] x_ij - sum_j call_value[j] y_j`` subject to
    ``sum_j x_ij = 1`` for every request, ``sum_i x_ij <= b_j y_j`` for every option, ``x``
    binary (only where ``score`` is finite) and ``y`` integer (``y_j = ceil(n_j / b_j)`` at an
    optimum where ``call_value_j > 0``; the objective returned is recomputed from the plan). Warm-started at :func:`plan_window`'s plan, which is
    kept when HiGHS does not return a better one in ``time_limit_s``; the returned plan is
    the better of the two by the exact objective.

    Parameters
    ----------
    score, call_value, batch
        As :func:`plan_window`.
    time_limit_s : float > 0
        HiGHS's limit, enforced inside its search by a callback.

    Returns
    -------
    WindowPlan

    Notes
    -----
    Meant for small windows (tens of requests): the model has ``m * J`` binaries. Measured
    in ``benchmarks/bench_online.py`` (section ``exact``) against the heuristic on the
    RouterBench stream's real windows.
    """
    import highspy

    from ..solvers.milp import _quiet_highs, run_highs

    s, c, b = _arrays(score, call_value, batch)
    if not (isinstance(time_limit_s, Real) and not isinstance(time_limit_s, bool)
            and np.isfinite(time_limit_s) and time_limit_s > 0):
        raise OnlineError("time_limit_s", f"must be a finite number > 0, got {time_limit_s!r}")
    m, J = s.shape
    heur = ok.plan_window(s, c, b, 8)
    heur_obj = float(ok.window_objective(s, c, b, heur))
    if m <= 1 or (b == 1).all():
        # Nothing to plan, or the heuristic is exact (one request, or no call to share: the
        # problem separates per request): HiGHS would only add its ~5 ms.
        return WindowPlan(option=heur, objective=heur_obj, bound=heur_obj, proven=True, source="heuristic")
    ii, jj = np.nonzero(np.isfinite(s))                     # the x columns, row-major
    nx = ii.size
    # Columns: x (nx), then y (J). Rows: m assignment rows, then J call rows.
    cost = np.r_[-s[ii, jj], c]                             # HiGHS minimises
    starts = np.empty(nx + J + 1, dtype=np.int64)
    starts[:nx + 1] = np.arange(nx + 1) * 2
    starts[nx + 1:] = 2 * nx + np.arange(1, J + 1)
    index = np.empty(2 * nx + J, dtype=np.int64)
    value = np.empty(2 * nx + J, dtype=np.float64)
    index[0:2 * nx:2], index[1:2 * nx:2] = ii, m + jj
    value[0:2 * nx:2], value[1:2 * nx:2] = 1.0, 1.0
    index[2 * nx:] = m + np.arange(J)
    value[2 * nx:] = -b.astype(np.float64)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = nx + J, m + J
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(nx + J)
    lp.col_upper_ = np.r_[np.ones(nx), np.full(J, float(m))]
    lp.row_lower_ = np.r_[np.ones(m), np.full(J, -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[np.ones(m), np.zeros(J)]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * (nx + J)
    h = _quiet_highs(highspy)
    h.passModel(lp)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.0)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("time_limit", float(time_limit_s))
    deadline = time.perf_counter() + float(time_limit_s)
    # The heuristic's plan as the start: x at its options, y the calls it makes.
    col = np.zeros(nx + J)
    column_of = np.full((m, J), -1, dtype=np.int64)
    column_of[ii, jj] = np.arange(nx)
    col[column_of[np.arange(m), heur]] = 1.0              # the heuristic only takes allowed cells
    counts = np.bincount(heur, minlength=J)
    col[nx:] = -(-counts // b)
    sol = highspy.HighsSolution()
    sol.col_value = col
    h.setSolution(sol)
    # In a worker thread, stopped at the deadline from inside HiGHS: a signal raised inside
    # HiGHS's Python callback on the main thread was lost there (Ctrl-C and SIGTERM were
    # ignored by half of the replays).
    run_highs(h, deadline)
    ms = h.getModelStatus()
    info = h.getInfo()
    best, best_obj, source = heur, heur_obj, "heuristic"
    if info.primal_solution_status == 2:
        x = np.asarray(h.getSolution().col_value)[:nx]
        opt = np.full(m, -1, dtype=np.int64)
        on = x > 0.5
        opt[ii[on]] = jj[on]
        if (opt >= 0).all() and np.bincount(ii[on], minlength=m).max() == 1:
            obj = float(ok.window_objective(s, c, b, opt))
            if obj > best_obj:
                best, best_obj, source = opt, obj, "exact"
    dual = float(info.mip_dual_bound)
    bound = -dual if np.isfinite(dual) and abs(dual) < highspy.kHighsInf else np.inf
    proven = ms == highspy.HighsModelStatus.kOptimal and best_obj >= -float(info.objective_function_value) - 1e-9 * max(1.0, abs(best_obj))
    if proven:
        bound = best_obj if not np.isfinite(bound) else max(bound, best_obj)
    return WindowPlan(option=best, objective=best_obj, bound=float(bound), proven=bool(proven), source=source)
