"""Reduced-cost fixing on the coupled LP, with a bound computed from the duals in our own arithmetic.

The LP relaxation of the coupled model with the task count and fill cuts is nearly integral
(its gap is the integrality of calls, a few 1e-5 at n = 1,000), so once a good incumbent is
known most cells cannot be part of any plan as good as it: the LP's reduced costs show it.
Branch-and-bound engines do this at their root when they hold the incumbent (HiGHS shrank
Qwen3 1,000 x 16 from 16,000 columns to under 600), but not in a verification solve, and
CP-SAT's LP-based searches get there slowly. Doing it once before any engine runs hands every
engine the small model.

Soundness does not rest on the LP solver's tolerances. For the engine's problem
``min c z`` s.t. ``L <= A z <= U``, ``0 <= z <= u`` and *any* row multipliers ``y``, every
``z`` in the box that satisfies the rows has

    c z = y (A z) + r z >= sum_i min(y_i L_i, y_i U_i) + sum_j min(0, r_j u_j),  r = c - A' y,

(multipliers whose sign would multiply an infinite side are set to 0 first). That right-hand
side, ``D``, is computed here in float64 from HiGHS's row duals, with a margin for the
rounding of the sums; it is a valid bound whatever the duals are, and tight when they are
optimal. A plan using column ``j`` (``z_j = 1``) has ``c z >= D - min(0, r_j u_j) + r_j``; when
that exceeds the incumbent's objective, no plan at least as good as the incumbent uses the
cell, and it is removed (the incumbent's own cells always stay).
"""

from __future__ import annotations

import time

import numpy as np

from .base import Problem

__all__ = ["lp_reduced_cost_fixing", "LP_FIXING_MAX_COLUMNS"]

#: Above this many columns the LP is not solved for fixing (Qwen3 10,000 x 24: HiGHS's dual
#: simplex took 34 s, see ``lns.LP_MAX_CELLS``); the engines then get the model as it is.
LP_FIXING_MAX_COLUMNS = 100_000


def _rigorous_lower_bound(rows, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """``(D, r, margin)``: the Lagrangian bound of the rows ``rows`` at multipliers ``y``.

    ``D`` bounds ``min c z`` over the box and the rows from below for any ``y``; ``r`` are the
    reduced costs ``c - A' y`` of the (sign-corrected) multipliers; ``margin`` covers the
    float rounding of ``D``'s sums.
    """
    lo, hi = rows.row_lo, rows.row_hi
    y = np.asarray(y, dtype=np.float64).copy()
    # A multiplier on an infinite side gives -inf: drop it (any y is allowed).
    y[(y > 0) & ~np.isfinite(lo)] = 0.0
    y[(y < 0) & ~np.isfinite(hi)] = 0.0
    ncol = rows.ncol
    col_of = np.repeat(np.arange(ncol), np.diff(rows.start))
    aty = np.bincount(col_of, weights=rows.value * y[rows.index], minlength=ncol)
    r = rows.obj - aty
    row_term = np.where(y > 0, y * np.where(np.isfinite(lo), lo, 0.0), y * np.where(np.isfinite(hi), hi, 0.0))
    col_term = np.minimum(0.0, r * rows.col_hi)
    d = float(row_term.sum() + col_term.sum())
    # Each sum rounds by at most (terms) * eps * sum |terms|; r itself by the row lengths.
    eps = np.finfo(np.float64).eps
    scale = float(np.abs(row_term).sum() + np.abs(col_term).sum()
                  + np.abs(rows.value * y[rows.index]).sum() + np.abs(rows.obj).sum())
    margin = 4 * eps * (len(y) + ncol + 10) * scale
    return d, r, margin


def lp_reduced_cost_fixing(problem: Problem, model, incumbent: float, time_limit_s: float):
    """Cells of ``model`` that a plan at least as good as ``incumbent`` may use.

    Parameters
    ----------
    problem : Problem
    model : CoupledModel
    incumbent : float
        Objective of a feasible plan in real units (utility, or cost in USD).
    time_limit_s : float
        Limit of the LP solve.

    Returns
    -------
    keep : ndarray of bool, shape (n, J), or None
        Admissible cells that survive (None: the LP did not finish, or the model is too large).
    bound : float or None
        The LP's bound in real units (on utility, or on cost), valid by the argument above.
    info : dict
        ``lp_fixing_s``, ``lp_fixed_cells``.
    """
    import highspy

    from . import milp

    t0 = time.perf_counter()
    info: dict = {}
    if model.m == 0 or model.m > LP_FIXING_MAX_COLUMNS:
        return None, None, info
    scale = model.max_cost_usd()
    rows = milp._assemble(problem, model, [], link_cuts=True, amortized_cut=False,
                          cost_scale_usd=scale if scale > 0 else 1.0)
    h = milp.run_highs_lp(rows, max(time_limit_s - (time.perf_counter() - t0), 0.0))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        info["lp_fixing_s"] = time.perf_counter() - t0
        return None, None, info
    y = np.asarray(h.getSolution().row_dual, dtype=np.float64)
    d, r, margin = _rigorous_lower_bound(rows, y)
    inc_obj = incumbent / rows.obj_scale                 # the incumbent in the engine's min form
    # Forcing x_j = 1 replaces its term min(0, r_j u_j) by r_j (x columns have u_j = 1).
    rx = r[:model.m]
    forced = d - np.minimum(0.0, rx) + rx
    # The incumbent's own columns give at most its objective (up to the rounding of its sum).
    keep_col = forced <= inc_obj + margin + 1e-12 * abs(inc_obj)
    keep = np.zeros((model.n, model.J), dtype=bool)
    keep[model.xi[keep_col], model.xj[keep_col]] = True
    # Real units: utility = -obj (budget form), cost = scale * obj (quality form).
    bound = rows.obj_scale * (d - margin)
    info["lp_fixing_s"] = time.perf_counter() - t0
    info["lp_fixed_cells"] = int(model.m - keep_col.sum())
    return keep, float(bound), info
