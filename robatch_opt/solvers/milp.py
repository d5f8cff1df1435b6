"""``method="milp"``: the coupled RwB as a mixed-integer program, solved by HiGHS or CBC.

The model (DESIGN §1) is assembled once as sparse column-wise arrays with NumPy (no Python
loop over cells) and handed to the engine in bulk: to HiGHS through ``highspy``'s
``passModel``, to CBC (the binary bundled with PuLP) as a free-format MPS file written from
the same arrays. Rows:

- ``sum_j x[i, j] = 1`` per query;
- ``b_g y_g - sum_{i in g} x[i, j] >= 0`` per group (calls seat their members);
- budget form: ``sum_g (f_g / B) y_g + sum (v / B) x <= 1 + RELAX_RTOL`` (costs in units of
  the budget, so the engines' absolute row tolerances are relative to the budget);
  objective ``min -sum u x``. Quality form: ``sum u x >= floor``; objective
  ``min (sum f y + sum v x) / S`` with ``S`` the incumbent's (or the largest) cost;
- the task count cuts and fill cuts (``count_cuts``, ``fill_cuts``, on by default;
  ``proofs/task_count_cuts.md``): the calls of a task seat the task in whole calls;
- per-model capacity rows; optional strengthening rows (``link_cuts``: ``x[i, j] <= y_g``;
  ``amortized_cut``: ``sum (c / B) x <= 1 + RELAX_RTOL``, a pure-binary knapsack row the
  engines can derive cover cuts from); one no-good row per plan excluded by the driver.

Engines accept rows violated by their feasibility tolerance, so the model solved is a
relaxation of the true problem; :func:`~robatch_opt.solvers._coupled_model.run_exact` grades
each plan with :func:`robatch_opt.evaluate`, cuts plans that are over budget only through
that tolerance, and claims OPTIMAL only for a verified plan that the engine proved optimal
with relative and absolute gap 0 and that meets the proven bound within 1e-9.

Time limits. HiGHS gets ``time_limit`` and interrupt callbacks (simplex, IPM, MIP) that
stop it at the deadline; CBC gets ``-sec`` and is killed ``CBC_GRACE_S`` after the deadline.
HiGHS 1.16 has phases that neither check the limit nor call back (its MIP set-up after
presolve took ~95 s before the first LP iteration at n = 5,000 x 16 options; its presolve's
``strengthenInequalities`` looped for more than 10 minutes on a 1,947-column verification
model under a 48 s limit, also inside the presolve of a RENS sub-MIP), so from
``HIGHS_CHILD_MIN_COLUMNS`` columns on it runs in a child interpreter that is killed
``HIGHS_GRACE_S`` after the deadline (its plan is then lost; the best plan found before it
is returned, with its bound). A verification solve there that has not answered by
``VERIFY_PRESOLVE_SHARE`` of its time gets a second child beside it, without presolve; the
first definite answer wins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._interrupt import communicate, run_child, run_stoppable
from .base import Option, Problem, SolverResult
from ._coupled_model import RELAX_RTOL, CoupledModel, EngineAnswer, quality_floor, run_exact

__all__ = ["MILPBackend", "SOLVERS", "DEFAULT_SOLVER"]

#: Engines of ``method="milp"``, chosen by ``solve(..., solver=NAME)``.
SOLVERS = ("highs", "cbc")
DEFAULT_SOLVER = "highs"

#: Seconds CBC may overrun its limit before it is killed.
CBC_GRACE_S = 0.5

#: CBC's cutoff increment: an "optimal" CBC plan is within this (absolute, in the scaled
#: objective: utility, or cost over the cost scale, both O(n) at most) of the optimum.
CBC_INCREMENT = 1e-12

#: HiGHS runs in a child interpreter, killed ``HIGHS_GRACE_S`` after the deadline, from this many
#: binary columns on: parts of it do not check the limit (the MIP set-up: 95 s at 80,000
#: columns; presolve's ``strengthenInequalities``: more than 10 minutes on the verification
#: model of Qwen3 1,000 x 16, seed 0, fraction 0.3, 1,947 columns, with a 48 s limit). Below
#: it a solve takes well under a second and a child (0.5-1 s to start, more on a loaded
#: machine) would cost more than the solve; the neighbourhood solves of ``lns`` stay in
#: process for the same reason (so a presolve loop there would not be stopped: not seen).
HIGHS_CHILD_MIN_COLUMNS = 1_000
HIGHS_GRACE_S = 0.5

#: The child interpreter's program (its arguments: the pickled inputs, the answer's path).
_CHILD_CODE = ("import sys; from robatch_opt.solvers.milp import _highs_child; "
               "_highs_child(sys.argv[1], sys.argv[2])")

#: ``highs_status`` (``cbc_status``) of a child killed after its time limit.
KILLED = "killed after the time limit"

#: Least time worth starting a child interpreter for (it needs ~0.5-1 s to start).
CHILD_MIN_S = 2.0
#: With less time than this left, a model that would go to a child is not solved at all
#: (time limit, no plan: the driver keeps its best plan). Its start-up alone would use the
#: time, and the caller waits ``HIGHS_GRACE_S`` past the deadline for its answer: a joint
#: solve that left its restrictions ~0.1 s ended 0.1-0.6 s past its limit.
CHILD_START_MIN_S = 1.0

#: The child stops HiGHS this long before the parent's deadline, to write its answer.
CHILD_ANSWER_S = 0.2

#: A child whose parent is gone, or that is this long past the deadline, exits by itself.
CHILD_ORPHAN_S = 5.0

#: ``link_cuts="auto"`` adds the rows ``x[i, j] <= y_g`` up to this many (one per cell of a
#: batched group). They tighten the LP only where a group holds less than one call's worth
#: of members, and each is a row of the LP. Measured with HiGHS on Qwen3 x 16 options
#: (fractions 0.1 / 0.3 / 0.6, 60 s): n = 200, seeds 0-5 (600-2,400 such rows): 60.4 s in
#: all with them, 58.9 s without, every instance proved both ways; n = 1,000, seeds 0-2
#: (1,500-6,000): 209 s with, 173 s without; n = 5,000, seed 0, fraction 0.1 (54,000 rows,
#: 59,089 rows in all): with them HiGHS spent 17.8 s before its root LP, 3.8 s on it and
#: then cut rounds (bound 3694.2846 -> 3694.2821 by 58.8 s, incumbent 3694.1517 unchanged)
#: until it was killed at the limit (92 s of engine time); without them it found 3694.280306
#: and proved it optimal in 54 s. Where they help: the README's audit case (Qwen3 200 x 24 at
#: $0.000762863, 1,786 such rows after fixing) proves in 16.5-16.9 s with them, 18.8-19.2 s
#: without. So they stay up to 10,000 rows (every n <= 1,000 model measured above keeps its
#: rows, as when HiGHS proved all 30 of those) and go on the large models, where each group
#: holds hundreds of queries and the rows only make the LP taller.
LINK_CUTS_MAX_ROWS = 10_000

#: Primal feasibility tolerance asked of the engines (rows are scaled to O(1)).
FEAS_TOL = 1e-9

#: Primal tolerance of a verification solve (its objective row is relative to the target,
#: which is 0.99e-9 above the incumbent: the incumbent itself must not pass).
VERIFY_FEAS_TOL = 1e-10

#: Whether HiGHS's verification solves use presolve. Measured both ways: without it, Qwen3
#: n = 200 (API prices) seed 3 at fraction 0.3 was not verified in 60 s; with it, in 13 s.
#: The near-tie family (tests/test_claims.py, 300 examples, and 1,000 random ones) passes
#: with it, once mip_feasibility_tolerance stays 1e-9 (at 1e-10 HiGHS called a verification
#: model infeasible that a plan satisfies; that failure had looked like a presolve one).
VERIFY_PRESOLVE = True

#: Share of a verification solve's time after which, if its child (with presolve) has not
#: answered, a second child runs it without presolve beside it (see :func:`_solve_highs`).
VERIFY_PRESOLVE_SHARE = 0.5

#: The verification row "objective at least the target" is scaled to this right-hand side.
VERIFY_ROW_SCALE = 1e3

#: A verification solve also gets its target as an objective cutoff, loosened by this
#: (relative to the target; at least 1e-6 absolute in the scaled objective): the engines prune a node whose
#: bound is within their own tolerance (~1e-9 absolute) of a cutoff, and with the cutoff at
#: the target itself HiGHS missed a plan better than the target by 3e-10 (near-tie family,
#: quality form). Looser by 1e-6, nothing better than the target is pruned, and the
#: verification row still holds every plan found to the target.
VERIFY_CUTOFF_RTOL = 1e-6

#: Dual feasibility tolerance asked of the engines; enters :func:`engine_slack`.
DUAL_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class _Rows:
    """A MILP in column-wise (CSC) form: minimise ``obj @ z`` s.t. ``row_lo <= A z <= row_hi``."""

    obj: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray          # bool per column
    start: np.ndarray            # CSC column starts, (ncol + 1,)
    index: np.ndarray            # row index per nonzero
    value: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    obj_scale: float             # real objective = obj_scale * (obj @ z)  (sign included)

    @property
    def ncol(self) -> int:
        return int(self.obj.shape[0])

    @property
    def nrow(self) -> int:
        return int(self.row_lo.shape[0])


def _assemble(problem: Problem, model: CoupledModel, nogoods: list[np.ndarray], *,
              link_cuts: bool | str, amortized_cut: bool, cost_scale_usd: float,
              count_cuts: bool = True, fill_cuts: bool = True, better_than: float | None = None) -> _Rows:
    """Triplets of every row, converted to CSC in one sort (O(nnz log nnz)).

    ``better_than`` adds the verification row (:func:`~robatch_opt.solvers._coupled_model._verify`):
    utility at least it (budget form) or cost at most it (quality form), divided by it so
    that the engine's absolute row tolerance is relative to it.
    """
    m, G, n = model.m, model.G, model.n
    budget_form = problem.budget_usd is not None
    cols_x = np.arange(m)
    cols_y = m + np.arange(G)
    r_i: list[np.ndarray] = []
    r_c: list[np.ndarray] = []
    r_v: list[np.ndarray] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    nrow = 0

    def add(rows, cols, vals, rlo, rhi):
        nonlocal nrow
        r_i.append(np.asarray(rows, np.int64) + nrow)
        r_c.append(np.asarray(cols, np.int64))
        r_v.append(np.asarray(vals, np.float64))
        lo.append(np.asarray(rlo, np.float64))
        hi.append(np.asarray(rhi, np.float64))
        nrow += len(lo[-1])

    # Exactly one option per query.
    add(model.xi, cols_x, np.ones(m), np.ones(n), np.ones(n))
    # Calls seat members: 0 <= b_g y_g - sum x <= empty seats allowed (b_g - 1, or less by
    # partial-call dominance). Only columns of coupled groups; the others carry their call
    # price in x_var_usd (see build_model).
    cx = np.flatnonzero(model.x_group >= 0)
    gx = model.x_group[cx]
    seat_hi = np.where(model.seat_bounded, model.g_max_slack.astype(np.float64), np.inf)
    add(np.r_[gx, np.arange(G)], np.r_[cx, cols_y],
        np.r_[-np.ones(len(cx)), model.g_batch.astype(np.float64)], np.zeros(G), seat_hi)
    if link_cuts == "auto":
        link_cuts = len(cx) <= LINK_CUTS_MAX_ROWS
    if link_cuts:
        # x[i, j] <= y_g: one member already needs a call (tightens the LP on partial calls).
        k = len(cx)
        add(np.r_[np.arange(k), np.arange(k)], np.r_[cx, cols_y[gx]],
            np.r_[np.ones(k), -np.ones(k)], np.full(k, -np.inf), np.zeros(k))
    if fill_cuts and G:
        # (b_g - s_g) y_g <= sum x: a call holds at least b - s members (CoupledModel.g_min_fill).
        add(np.r_[gx, np.arange(G)], np.r_[cx, cols_y],
            np.r_[np.ones(len(cx)), -model.g_min_fill.astype(np.float64)], np.zeros(G), np.full(G, np.inf))
    if count_cuts and G:
        # The calls of a task seat the task (CoupledModel.count_cuts, Chvatal-Gomory rows).
        c_row, c_col, c_coef, c_lo = model.count_cuts()
        add(c_row, c_col, c_coef, c_lo, np.full(len(c_lo), np.inf))
    if budget_form:
        bs = problem.budget_usd if problem.budget_usd > 0 else 1.0
        rhs = problem.budget_usd / bs * (1 + RELAX_RTOL)
        add(np.zeros(m + G, np.int64), np.r_[cols_x, cols_y],
            np.r_[model.x_var_usd / bs, model.g_fixed_usd / bs], [-np.inf], [rhs])
        if amortized_cut and G:        # without coupled groups it is the budget row itself
            add(np.zeros(m, np.int64), cols_x, model.x_amortized_usd / bs, [-np.inf], [rhs])
        obj = np.r_[-model.x_utility, np.zeros(G)]
        obj_scale = -1.0
    else:
        floor = quality_floor(problem.min_total_utility)
        target = floor * (1 - RELAX_RTOL) if floor > 0 else floor - RELAX_RTOL
        add(np.zeros(m, np.int64), cols_x, model.x_utility, [target], [np.inf])
        obj = np.r_[model.x_var_usd, model.g_fixed_usd] / cost_scale_usd
        obj_scale = cost_scale_usd
    if model.cap is not None:
        for k in range(model.K):
            ck = np.flatnonzero(model.x_model == k)
            if len(ck) > model.cap[k]:
                add(np.zeros(len(ck), np.int64), ck, np.ones(len(ck)), [-np.inf], [float(model.cap[k])])
    if better_than is not None:
        # In units of 1e-3 of the target: the engines' absolute row tolerance (1e-9) is then
        # 1e-12 of it, far below the 0.99e-9 that separates the target from the incumbent.
        w = VERIFY_ROW_SCALE / better_than
        if budget_form:
            add(np.zeros(m, np.int64), cols_x, model.x_utility * w, [VERIFY_ROW_SCALE], [np.inf])
        else:
            add(np.zeros(m + G, np.int64), np.r_[cols_x, cols_y],
                np.r_[model.x_var_usd, model.g_fixed_usd] * w, [-np.inf], [VERIFY_ROW_SCALE])
    for opt in nogoods:
        cols = model.columns_of(opt)
        add(np.zeros(n, np.int64), cols, np.ones(n), [-np.inf], [n - 1.0])

    rows = np.concatenate(r_i)
    cols = np.concatenate(r_c)
    vals = np.concatenate(r_v)
    keep = vals != 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((rows, cols))
    ncol = m + G
    start = np.searchsorted(cols[order], np.arange(ncol + 1)).astype(np.int64)
    return _Rows(obj=obj.astype(np.float64),
                 col_lo=np.zeros(ncol),
                 col_hi=np.r_[np.ones(m), model.g_max_calls.astype(np.float64)],
                 integer=np.ones(ncol, dtype=bool),
                 start=start, index=rows[order].astype(np.int32), value=vals[order],
                 row_lo=np.concatenate(lo), row_hi=np.concatenate(hi), obj_scale=obj_scale)


def _hint_vector(model: CoupledModel, hint: np.ndarray | None) -> np.ndarray | None:
    """A full start vector (x and calls y) from an option per query, or None."""
    start = model.start_of(hint)
    return None if start is None else np.r_[start[0], start[1]].astype(np.float64)


def _mipstart_text(z0: np.ndarray) -> str:
    """CBC's ``-mips`` file for the start vector ``z0``: its nonzero entries, one per line.

    Values are written as plain Python floats: under NumPy 2 ``repr`` of a NumPy scalar is
    ``np.float64(1.0)``, which CBC skips as "not numeric", losing the whole warm start.
    """
    nz = np.flatnonzero(z0)
    return ("Stopped on iterations - objective value 0\n"
            + "".join(f"{c} c{c} {v!r} 0\n" for c, v in zip(nz.tolist(), z0[nz].tolist())))


def _answer(problem: Problem, model: CoupledModel, rows: _Rows, status: str, z: np.ndarray | None,
            dual_bound: float | None, info: dict[str, Any]) -> EngineAnswer:
    """Engine output in real units: option per query and the bound (utility or USD)."""
    option = None if z is None else model.option_from_columns(z[:model.m])
    bound = None
    if dual_bound is not None and math.isfinite(dual_bound):
        # Budget form: min -u x, so utility <= -dual. Quality form: cost >= scale * dual.
        real = rows.obj_scale * dual_bound
        bound = real + engine_slack(rows, real) if problem.budget_usd is not None else real - engine_slack(rows, real)
    return EngineAnswer(status, option, bound, info)


def engine_slack(rows: _Rows, real_bound: float) -> float:
    """How far (real units) an engine's dual bound can be off through its tolerances.

    The engines' LP bounds come from dual solutions whose reduced costs may be wrong in sign
    by up to the dual feasibility tolerance ``DUAL_TOL``; with every column in
    ``[0, col_hi]`` such a bound can be short of a valid one by at most
    ``DUAL_TOL * sum(col_hi)`` in the scaled objective (Neumaier and Shcherbina, "Safe bounds
    in linear and mixed-integer linear programming", Math. Prog. 2004). Primal tolerances
    only widen the relaxation (its bound stays valid); a relative 1e-12 covers the
    conversion to real units. On near-identical options these terms exceed 1e-9 of the
    objective, so an "optimal" answer is then verified (``_coupled_model._verify``).
    """
    return abs(rows.obj_scale) * DUAL_TOL * float(rows.col_hi.sum()) + 1e-12 * abs(real_bound)


def _solve_highs(problem: Problem, model: CoupledModel, opts: dict, nogoods, hint, time_limit_s,
                 better_than=None) -> EngineAnswer:
    """HiGHS in process, or in a child interpreter that is killed at the deadline (large models).

    A verification solve (``better_than``) in a child runs with presolve; from
    :data:`VERIFY_PRESOLVE_SHARE` of its time on, if it has not answered, a second child
    runs the same verification without presolve beside it, and the first definite answer
    (infeasible, or a plan proven optimal) is taken, the other child killed. Presolve decides
    most verifications far sooner (Qwen3 200 x 16, seed 3, fraction 0.3: 13 s with it, not
    in 60 s without), but on some models it loops without checking the clock or calling back
    (Qwen3 1,000 x 16, seed 0, fraction 0.3: more than 10 minutes with it; without it the
    target was proved out of reach in 10 s). A run that is merely slow cannot be told from
    one that loops: HiGHS does not call back from sub-MIPs or root cut rounds, and a healthy
    verification of Qwen3 5,000 x 16 (12,217 columns, infeasible in 42 s) was silent for 16 s.
    """
    if model.m < HIGHS_CHILD_MIN_COLUMNS:
        return _solve_highs_here(problem, model, opts, nogoods, hint, time_limit_s, better_than)
    if time_limit_s < CHILD_START_MIN_S:
        return EngineAnswer("unknown", None, None, {"highs_status": "time limit reached (too little left to start "
                                                                    "a child)", "solve_s": 0.0})
    t0 = time.perf_counter()
    end = t0 + max(time_limit_s, 0.0) + HIGHS_GRACE_S
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(_HighsChild(problem, model, opts, nogoods, hint, time_limit_s, better_than,
                                                VERIFY_PRESOLVE))
        if better_than is None or not VERIFY_PRESOLVE:
            return first.answer(first.wait(end))
        if first.wait(t0 + VERIFY_PRESOLVE_SHARE * time_limit_s):
            return first.answer(True)
        left = time_limit_s - (time.perf_counter() - t0)
        if left < CHILD_MIN_S:
            return first.answer(first.wait(end))
        second = stack.enter_context(_HighsChild(problem, model, opts, nogoods, hint, left, better_than, False))
        pending = [first, second]
        fallback = None
        while pending:
            for child in list(pending):
                if not child.wait(min(time.perf_counter() + 0.25, end)):
                    continue
                pending.remove(child)
                ans = child.answer(True)
                ans.info["verify_answered_by"] = "presolve" if child is first else "no presolve"
                if ans.status in ("infeasible", "optimal") or not pending:
                    return ans                   # the ExitStack kills the other child
                fallback = ans                   # a time-limited answer: the other may do better
            if time.perf_counter() >= end:
                break
        return fallback if fallback is not None else first.answer(False)     # both past the limit: killed


def _child_env() -> dict:
    """The environment of a child interpreter: this process's, with the folder that holds the
    robatch_opt being run first on ``PYTHONPATH`` (a script that put it on ``sys.path`` itself
    would otherwise start a child that imports another copy, or none)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class _HighsChild:
    """``with _HighsChild(...) as child:`` :func:`_solve_highs_here` in a child interpreter.

    The child's HiGHS stops at the same wall-clock deadline as this solve (its start-up time
    is not added to its limit); the child is killed when the block exits (the caller waits
    at most ``HIGHS_GRACE_S`` past the deadline). A child that fails (no answer, a non-zero
    exit) reports ``engine_crashed``, so the driver can fall back to another engine. The
    child also exits by itself if this process dies.
    """

    def __init__(self, problem: Problem, model: CoupledModel, opts: dict, nogoods, hint, time_limit_s,
                 better_than, verify_presolve: bool):
        self.t0 = time.perf_counter()
        self._args = (problem, model, opts, nogoods, hint, time_limit_s, better_than, verify_presolve)

    def __enter__(self) -> "_HighsChild":
        # A fresh interpreter, not multiprocessing: a fork of a process whose HiGHS or Numba
        # thread pools already run inherits their locks but not their threads and can hang,
        # and "spawn" re-runs the user's unguarded __main__ script in the child.
        import pickle

        problem, model, opts, nogoods, hint, time_limit_s, better_than, verify_presolve = self._args
        self._stack = contextlib.ExitStack()
        try:
            tmp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="robatch_highs_"))
            inp, self._out = os.path.join(tmp, "in.pkl"), os.path.join(tmp, "out.pkl")
            with open(inp, "wb") as fh:
                # The progress callback stays here (it may be a closure, and the child has no
                # display). _solve_highs_here's arguments by name; the child sets time_limit_s
                # from the deadline.
                pickle.dump((dict(problem=dataclasses.replace(problem, progress=None), model=model, opts=opts,
                                  nogoods=nogoods, hint=hint, better_than=better_than,
                                  verify_presolve=verify_presolve),
                             {"deadline_wall": time.time() + max(time_limit_s, 0.0), "parent": os.getpid()}), fh)
            # run_child kills the child on an interrupt or any error: it never outlives the solve.
            self.proc = self._stack.enter_context(
                run_child([sys.executable, "-c", _CHILD_CODE, inp, self._out], env=_child_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)

    def wait(self, until: float) -> bool:
        """Wait until the child exits or ``until`` (``perf_counter`` seconds); whether it exited."""
        try:
            self.proc.wait(timeout=max(until - time.perf_counter(), 0.0))
            return True
        except subprocess.TimeoutExpired:
            return False

    def answer(self, exited: bool) -> EngineAnswer:
        """The child's answer; ``exited=False``: it has to be killed (:data:`KILLED`, no plan)."""
        import pickle

        if not exited:
            return EngineAnswer("unknown", None, None, {"highs_status": KILLED,
                                                        "solve_s": time.perf_counter() - self.t0})
        if self.proc.returncode != 0 or not os.path.exists(self._out):
            return EngineAnswer("unknown", None, None, {"highs_status": "child process failed",
                                                        "engine_crashed": True})
        with open(self._out, "rb") as fh:
            return pickle.load(fh)


def _quiet_highs(highspy):
    """A ``Highs`` object that prints nothing.

    HiGHS prints its banner from C++ while it is constructed, before ``output_flag`` can be
    set, so the process's stdout descriptor is pointed at /dev/null for the construction
    (otherwise ``robatch-opt solve --json`` would not print pure JSON).
    """
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return h


def _highs_with(highspy, rows: _Rows, *, integer: bool):
    """A quiet ``Highs`` object holding the model of ``rows`` (every column integer, or the LP)."""
    h = _quiet_highs(highspy)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = rows.ncol, rows.nrow
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = rows.obj, rows.col_lo, rows.col_hi
    lp.row_lower_ = np.where(np.isinf(rows.row_lo), -highspy.kHighsInf, rows.row_lo)
    lp.row_upper_ = np.where(np.isinf(rows.row_hi), highspy.kHighsInf, rows.row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = rows.start, rows.index, rows.value
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * rows.ncol
    h.passModel(lp)
    return h


def _start_watchdog(ctl: dict, in_path: str) -> None:
    """In a child interpreter: a daemon thread that ends the process when its parent is gone
    (removing the parent's temporary folder, which holds ``in_path``) or when the deadline in
    ``ctl`` is :data:`CHILD_ORPHAN_S` past (the parent kills it first when alive)."""
    deadline_wall, parent = ctl["deadline_wall"], ctl["parent"]

    def watchdog():
        while True:
            if os.getppid() != parent:
                # The parent died without cleaning up (SIGKILL): its temporary folder goes too.
                import shutil
                shutil.rmtree(os.path.dirname(os.path.abspath(in_path)), ignore_errors=True)
                os._exit(3)
            if time.time() > deadline_wall + HIGHS_GRACE_S + CHILD_ORPHAN_S:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watchdog, daemon=True).start()


def _highs_child(in_path: str, out_path: str) -> None:
    """Entry point of the child interpreter: solve the pickled arguments, pickle the answer.

    HiGHS gets the time left until the parent's wall-clock deadline (less
    :data:`CHILD_ANSWER_S` to write the answer), and a watchdog thread ends the process if the
    parent dies or the deadline is long past (the parent kills it first; this covers a parent
    killed by SIGKILL).
    """
    import pickle

    with open(in_path, "rb") as fh:
        kwargs, ctl = pickle.load(fh)
    _start_watchdog(ctl, in_path)
    ans = _solve_highs_here(**kwargs, time_limit_s=max(ctl["deadline_wall"] - time.time() - CHILD_ANSWER_S, 0.01))
    with open(out_path + ".part", "wb") as fh:
        pickle.dump(ans, fh)
    os.replace(out_path + ".part", out_path)          # the parent sees a whole answer or none


def _solve_highs_here(problem: Problem, model: CoupledModel, opts: dict, nogoods, hint,
                      time_limit_s, better_than=None, verify_presolve: bool = VERIFY_PRESOLVE) -> EngineAnswer:
    import highspy

    tb = time.perf_counter()
    rows = _assemble(problem, model, nogoods, better_than=better_than, **opts)
    h = _highs_with(highspy, rows, integer=True)
    build_s = time.perf_counter() - tb
    h.setOptionValue("time_limit", float(max(time_limit_s - build_s, 0.01)))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.0)
    h.setOptionValue("random_seed", int(problem.seed) % (2 ** 31))
    # No "threads" option: HiGHS sizes one process-wide scheduler on first use, and a later
    # instance asking for another size fails to run at all (status "Not Set").
    feas = FEAS_TOL if better_than is None else VERIFY_FEAS_TOL
    h.setOptionValue("primal_feasibility_tolerance", feas)
    # Not tighter than 1e-9: with mip_feasibility_tolerance 1e-10 HiGHS 1.x called a
    # verification model infeasible that a plan satisfies with room to spare.
    h.setOptionValue("mip_feasibility_tolerance", FEAS_TOL)
    h.setOptionValue("dual_feasibility_tolerance", DUAL_TOL)
    if better_than is not None and not verify_presolve:
        h.setOptionValue("presolve", "off")
    if better_than is not None:
        # The target as an objective cutoff too, so that HiGHS prunes and fixes columns by
        # reduced cost as it does with an incumbent (without it the verification of Qwen3
        # 1,000 x 16 ran 48 s and did not finish; with it, 2-5 s).
        h.setOptionValue("objective_bound", _verify_cutoff(rows, better_than))
    last_report = [0.0]

    def report(event):
        now = time.perf_counter()
        if problem.progress is not None and now - last_report[0] > 0.25:
            last_report[0] = now
            primal, dual = event.data_out.mip_primal_bound, event.data_out.mip_dual_bound
            problem.report(phase="search",
                           incumbent=rows.obj_scale * primal if abs(primal) < highspy.kHighsInf else None,
                           bound=rows.obj_scale * dual if abs(dual) < highspy.kHighsInf else None)

    z0 = _hint_vector(model, hint)
    if z0 is not None:
        sol = highspy.HighsSolution()
        sol.col_value = z0
        h.setSolution(sol)
    ts = time.perf_counter()
    run_status = run_highs(h, tb + time_limit_s, on_mip=report)
    solve_s = time.perf_counter() - ts
    ms = h.getModelStatus()
    info_h = h.getInfo()
    name = h.modelStatusToString(ms)
    info = {"build_s": build_s, "solve_s": solve_s, "highs_status": name,
            "nodes": int(info_h.mip_node_count), "rows": rows.nrow}
    MS = highspy.HighsModelStatus
    if run_status == highspy.HighsStatus.kError or ms in (MS.kNotset, MS.kLoadError, MS.kModelError,
                                                           MS.kPresolveError, MS.kSolveError,
                                                           MS.kPostsolveError):
        # Nothing HiGHS reports after a failed run is evidence: no plan, no bound.
        return EngineAnswer("unknown", None, None, info)
    if ms == MS.kInfeasible:
        return EngineAnswer("infeasible", None, None, info)
    has_sol = info_h.primal_solution_status == 2          # kSolutionStatusFeasible
    z = np.asarray(h.getSolution().col_value) if has_sol else None
    dual = float(info_h.mip_dual_bound)
    if ms == MS.kOptimal:
        return _answer(problem, model, rows, "optimal" if z is not None else "unknown", z, dual, info)
    return _answer(problem, model, rows, "feasible" if z is not None else "unknown", z, dual, info)


def _verify_cutoff(rows: _Rows, better_than: float) -> float:
    """The verification target as a cutoff of the engine's (minimised, scaled) objective,
    loosened by :data:`VERIFY_CUTOFF_RTOL`."""
    t_obj = better_than / rows.obj_scale
    return float(t_obj + VERIFY_CUTOFF_RTOL * max(1.0, abs(t_obj)))


def run_highs_lp(rows: _Rows, time_limit_s: float):
    """Solve the LP relaxation of ``rows`` with HiGHS (quiet, the package's tolerances) within
    ``time_limit_s``; return the ``Highs`` object after its run (read its status and solution)."""
    import highspy

    deadline = time.perf_counter() + time_limit_s
    h = _highs_with(highspy, rows, integer=False)
    h.setOptionValue("time_limit", float(max(time_limit_s, 0.01)))
    h.setOptionValue("dual_feasibility_tolerance", DUAL_TOL)
    h.setOptionValue("primal_feasibility_tolerance", FEAS_TOL)
    run_highs(h, deadline)
    return h


def run_highs(h, deadline: float = math.inf, *, on_mip=None):
    """``h.run()``, stopped by SIGINT / SIGTERM at once and by ``deadline`` (``perf_counter``
    seconds) from inside the engine; returns its ``HighsStatus``.

    HiGHS checks its own time_limit only between some phases (the LP of Qwen3 10,000 x 24
    ran 40 s past a 3 s limit; the MILP at n = 5,000 overran 60 s by ~50 s), so interrupt
    callbacks enforce the deadline inside simplex, IPM and the MIP loop. The run goes through
    :func:`run_stoppable` (a worker thread), never straight on the main thread: there a
    Ctrl-C raised ``KeyboardInterrupt`` inside a callback, which highspy swallowed, so the
    solve ran on and wrote its output (found by a new-user audit). ``on_mip(event)`` is
    called from the MIP callback too (progress reports).
    """
    interrupted = threading.Event()          # set by run_stoppable on SIGINT / SIGTERM

    def stop(event):
        if interrupted.is_set() or time.perf_counter() > deadline:
            event.interrupt()

    def stop_mip(event):
        stop(event)
        if on_mip is not None:
            on_mip(event)

    h.cbSimplexInterrupt += stop
    h.cbIpmInterrupt += stop
    h.cbMipInterrupt += stop_mip
    return run_stoppable(h.run, interrupted.set)


def _split_ranged(rows: _Rows) -> _Rows:
    """The same MILP with every ranged row ``lo <= a z <= hi`` as two rows ``>= lo``, ``<= hi``.

    CBC 2.10.3 (the binary bundled with PuLP) mishandles ranged rows in its preprocessing:
    on a 3-query instance with ranged seat rows it reported a wrong optimum (-2.25 where
    -2.5 is feasible; correct with ``-preprocess off`` or with the rows split).
    ``tests/test_exact.py::test_engine_bug_workarounds[cbc-ranged-rows]`` keeps that instance.
    """
    ranged = np.isfinite(rows.row_lo) & np.isfinite(rows.row_hi) & (rows.row_lo != rows.row_hi)
    if not ranged.any():
        return rows
    r_old = np.flatnonzero(ranged)
    new_id = np.full(rows.nrow, -1, dtype=np.int64)
    new_id[r_old] = rows.nrow + np.arange(len(r_old))
    col_of_nz = np.repeat(np.arange(rows.ncol), np.diff(rows.start))
    dup = ranged[rows.index]
    cols = np.r_[col_of_nz, col_of_nz[dup]]
    idx = np.r_[rows.index.astype(np.int64), new_id[rows.index[dup]]]
    val = np.r_[rows.value, rows.value[dup]]
    order = np.lexsort((idx, cols))
    start = np.searchsorted(cols[order], np.arange(rows.ncol + 1)).astype(np.int64)
    row_hi = rows.row_hi.copy()
    row_hi[r_old] = np.inf
    return _Rows(obj=rows.obj, col_lo=rows.col_lo, col_hi=rows.col_hi, integer=rows.integer,
                 start=start, index=idx[order].astype(np.int32), value=val[order],
                 row_lo=np.r_[rows.row_lo, np.full(len(r_old), -np.inf)],
                 row_hi=np.r_[row_hi, rows.row_hi[r_old]], obj_scale=rows.obj_scale)


def _mps_free(rows: _Rows, path: str) -> None:
    """Write ``rows`` as a free-format MPS file (every column integer), vectorised."""
    nrow, ncol = rows.nrow, rows.ncol
    sense = np.full(nrow, "E", dtype="<U1")
    fin_lo, fin_hi = np.isfinite(rows.row_lo), np.isfinite(rows.row_hi)
    sense[fin_lo & ~fin_hi] = "G"
    sense[~fin_lo & fin_hi] = "L"
    ranged = fin_lo & fin_hi & (rows.row_lo != rows.row_hi)
    rnames = np.char.add("r", np.arange(nrow).astype(str))
    cnames = np.char.add("c", np.arange(ncol).astype(str))
    fmt = np.vectorize(lambda v: repr(float(v)), otypes=[str])
    out = ["NAME robatch", "ROWS", " N obj"]
    out += list(np.char.add(np.char.add(np.char.add(" ", sense), " "), rnames))
    out.append("COLUMNS")
    out.append(" MARKER 'MARKER' 'INTORG'")
    counts = np.diff(rows.start)
    col_of_nz = np.repeat(np.arange(ncol), counts)
    ent_c = np.r_[np.flatnonzero(rows.obj != 0), col_of_nz]
    ent_r = np.r_[np.full(int((rows.obj != 0).sum()), "obj", dtype=object),
                  rnames[rows.index].astype(object)]
    ent_v = np.r_[rows.obj[rows.obj != 0], rows.value]
    order = np.argsort(ent_c, kind="stable")
    # A column with no entry at all must still be declared: give it a zero objective entry.
    empty = np.setdiff1d(np.arange(ncol), ent_c)
    ent_c = np.r_[ent_c[order], empty]
    ent_r = np.r_[ent_r[order], np.full(len(empty), "obj", dtype=object)]
    ent_v = np.r_[ent_v[order], np.zeros(len(empty))]
    order = np.argsort(ent_c, kind="stable")
    lines = np.char.add(np.char.add(np.char.add(np.char.add(" ", cnames[ent_c[order]]), " "),
                                    ent_r[order].astype(str)), np.char.add(" ", fmt(ent_v[order])))
    out += list(lines)
    out.append(" MARKER 'MARKER' 'INTEND'")
    out.append("RHS")
    rhs = np.where(sense == "L", rows.row_hi, rows.row_lo)
    nz = np.flatnonzero(rhs != 0)
    out += [f" rhs {rnames[r]} {float(rhs[r])!r}" for r in nz]
    if ranged.any():
        out.append("RANGES")
        out += [f" rng {rnames[r]} {float(rows.row_hi[r] - rows.row_lo[r])!r}" for r in np.flatnonzero(ranged)]
    out.append("BOUNDS")
    out += [f" UP bnd {cnames[c]} {float(rows.col_hi[c])!r}" for c in range(ncol)]
    out.append("ENDATA")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


_CBC_BOUND = re.compile(r"^(?:Lower bound|Objective value):\s*([-+0-9.eE]+)", re.M)


def _cbc_path() -> str | None:
    try:
        import pulp
        path = pulp.PULP_CBC_CMD().path
    except Exception:
        return None
    return path if path and os.path.exists(path) and os.access(path, os.X_OK) else None


def _solve_cbc(problem: Problem, model: CoupledModel, opts: dict, nogoods, hint, time_limit_s,
               better_than=None) -> EngineAnswer:
    tb = time.perf_counter()
    rows = _split_ranged(_assemble(problem, model, nogoods, better_than=better_than, **opts))
    with tempfile.TemporaryDirectory(prefix="robatch_cbc_") as tmp:
        mps, sol, mst = (os.path.join(tmp, f) for f in ("m.mps", "m.sol", "m.mst"))
        _mps_free(rows, mps)
        build_s = time.perf_counter() - tb
        limit = max(time_limit_s - build_s, 0.01)
        # Serial ("-threads 0"): CBC 2.10.3 (PuLP's binary) crashed (SIGSEGV) in its parallel
        # mode on 3 of the first 15 Qwen3 n = 200 instances, and "-threads 1" is still that
        # mode (a main thread joining one worker): its lock lost a wake-up and hung until
        # the time limit on 5 of 300 solves of a 3-query instance (coin-or/Cbc#640), which
        # turned a proven optimum into FEASIBLE. "-timeMode elapsed": a wall-time limit.
        cmd = [_cbc_path(), mps, "-timeMode", "elapsed", "-sec", f"{limit:.3f}",
               "-ratioGap", "0", "-allowableGap", "0",
               "-threads", "0", "-randomSeed", str(int(problem.seed) % (2 ** 31) or 1),
               "-randomCbcSeed", str(int(problem.seed) % (2 ** 31) or 1),
               "-primalTolerance", repr(FEAS_TOL if better_than is None else VERIFY_FEAS_TOL),
               "-dualTolerance", repr(DUAL_TOL), "-integerTolerance", "1e-9",
               # CBC prunes every node that cannot beat the incumbent by its "increment"
               # (default 1e-5 absolute): it then calls a plan 1e-6 short of the optimum
               # optimal (seen on Qwen3 n = 200). The proven bound is the plan's objective
               # minus this increment (see below).
               "-increment", repr(CBC_INCREMENT)]
        if better_than is not None:
            cmd += ["-presolve", "off",          # a verification solve settles a claim
                    "-cutoff", repr(_verify_cutoff(rows, better_than))]   # as HiGHS's objective_bound
        if model.G:
            # CBC 2.10.3's preprocessing proved wrong optima on models with coupled groups:
            # with seat rows bounded above (partial-call dominance), and with the fill cuts
            # (tests/test_exact.py::test_engine_bug_workarounds); without it CBC is right.
            cmd += ["-preprocess", "off"]
        z0 = _hint_vector(model, hint)
        if z0 is not None:
            with open(mst, "w") as fh:
                fh.write(_mipstart_text(z0))
            cmd += ["-mips", mst]
        cmd += ["-solve", "-printingOptions", "all", "-solution", sol]
        ts = time.perf_counter()
        # CBC checks -sec only between phases (its root cut loop can overrun it), so the
        # process is killed after a short grace; its plan is then lost, not wrong.
        try:
            with run_child(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
                log, _ = communicate(proc, limit + CBC_GRACE_S)
        except subprocess.TimeoutExpired:
            info = {"build_s": build_s, "solve_s": time.perf_counter() - ts, "rows": rows.nrow,
                    "cbc_status": KILLED}
            return EngineAnswer("unknown", None, None, info)
        solve_s = time.perf_counter() - ts
        info = {"build_s": build_s, "solve_s": solve_s, "rows": rows.nrow}
        if proc.returncode is not None and proc.returncode < 0:
            # CBC 2.10.3 dies (SIGSEGV) on some verification models: no answer, and the
            # driver falls back to another engine rather than leave the claim unsettled.
            info["cbc_status"] = f"crashed (signal {-proc.returncode})"
            info["engine_crashed"] = True
            return EngineAnswer("unknown", None, None, info)
        if not os.path.exists(sol):
            info["cbc_status"] = "no solution file"
            return EngineAnswer("unknown", None, None, info)
        with open(sol) as fh:
            head = fh.readline().strip()
            body = fh.read().split("\n")
    info["cbc_status"] = head
    if head.startswith("Infeasible") or head.startswith("Integer infeasible"):
        return EngineAnswer("infeasible", None, None, info)
    z = np.zeros(rows.ncol)
    found = False
    for ln in body:
        parts = ln.replace("**", " ").split()
        if len(parts) >= 3 and parts[1].startswith("c"):
            z[int(parts[1][1:])] = float(parts[2])
            found = True
    has_plan = found or rows.ncol == 0
    # A plan must pick one option per query; CBC writes a solution file also with no plan.
    if has_plan and model.n:
        per_q = np.add.reduceat(z[:model.m], model.q_start[:-1]) if model.m else np.zeros(0)
        has_plan = bool(np.all(np.abs(per_q - 1) < 1e-6))
    optimal = head.startswith("Optimal")
    dual = None
    if optimal and has_plan:
        # "Optimal" means no plan better by more than the increment (objective minimised).
        dual = float(rows.obj @ z) - CBC_INCREMENT
    else:
        mm = [m_.group(1) for m_ in _CBC_BOUND.finditer(log) if m_.group(0).startswith("Lower bound")]
        if mm:
            dual = float(mm[-1])
    if not has_plan:
        return _answer(problem, model, rows, "unknown", None, dual, info)
    return _answer(problem, model, rows, "optimal" if optimal else "feasible", z, dual, info)


class MILPBackend:
    """``method="milp"``: HiGHS (default) or CBC on the coupled MILP, proven or bounded.

    Options (``solve(..., method="milp", **options)``)
    ------------------------------------------------------
    solver : {"highs", "cbc"}
        The engine (default ``"highs"``). HiGHS runs through ``highspy``, in process on models
        below :data:`HIGHS_CHILD_MIN_COLUMNS` columns and in a child interpreter killed at the
        deadline above; CBC is the binary bundled with PuLP.
    link_cuts : bool or "auto"
        Add ``x[i, j] <= y_g`` rows, one per cell of a batched group; ``"auto"`` (default):
        on models with at most :data:`LINK_CUTS_MAX_ROWS` such cells.
    amortized_cut : bool
        Add the amortized knapsack row (budget form only; default False).
    count_cuts, fill_cuts : bool
        Add the task count cuts and the fill cuts
        (:meth:`~robatch_opt.solvers._coupled_model.CoupledModel.count_cuts`,
        :attr:`~robatch_opt.solvers._coupled_model.CoupledModel.g_min_fill`; default True).
    prune, call_bounds, lp_fixing, dominance : bool
        See :func:`~robatch_opt.solvers._coupled_model.run_exact` (default True).
    hint : bool
        Warm start from the greedy plan (default True).

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1, 2))],
    ...                    tasks=[ro.Task("t", 1000)], query_task=[0, 0, 0],
    ...                    input_tokens=[100, 100, 100], output_tokens=[10, 10, 10],
    ...                    utility=[[0.9, 0.8]] * 3)
    >>> plan = ro.solve(inst, budget=0.003, method="milp", solver="cbc", time_limit_s=10)
    >>> plan.status.value, round(plan.utility, 6), plan.info["engine"]
    ('optimal', 2.5, 'cbc')
    """

    name = "milp"
    options = {
        "solver": Option(str, DEFAULT_SOLVER, "MILP engine", choices=SOLVERS),
        "link_cuts": Option((bool, str), "auto", "x <= y rows on batched groups (True, False or 'auto')",
                            choices=(True, False, "auto")),
        "amortized_cut": Option(bool, False, "add the amortized knapsack row (budget form)"),
        "count_cuts": Option(bool, True, "task count cuts"),
        "fill_cuts": Option(bool, True, "fill cuts"),
        "prune": Option(bool, True, "drop dominated cells"),
        "call_bounds": Option(bool, True, "bound the calls per group"),
        "lp_fixing": Option(bool, True, "Lagrangian fixing against the greedy plan"),
        "dominance": Option(bool, True, "partial-call dominance rows"),
        "hint": Option(bool, True, "warm start from the greedy plan"),
    }

    def available(self) -> bool:
        return bool(self.engines())

    @staticmethod
    def engines() -> tuple[str, ...]:
        """The engines installed here, in order of preference."""
        out = []
        try:
            import highspy  # noqa: F401
            out.append("highs")
        except ImportError:
            pass
        if _cbc_path() is not None:
            out.append("cbc")
        return tuple(out)

    def solve(self, problem: Problem) -> SolverResult:
        return self.solve_from(problem, None)

    def solve_from(self, problem: Problem, start: tuple[Any, float | None] | None) -> SolverResult:
        """:meth:`solve`, starting from ``start = (plan, bound)`` when given: a graded plan
        (:class:`~robatch_opt.evaluate.Evaluation`) and a bound already proven, in place of
        the greedy and the search start (see :func:`~._coupled_model.run_exact`)."""
        from ..errors import SolverUnavailableError, UnknownMethodError

        opts = dict(problem.options)
        solver = opts.pop("solver", None)
        installed = self.engines()
        if solver is None:
            solver = DEFAULT_SOLVER if DEFAULT_SOLVER in installed else installed[0]
        if solver not in SOLVERS:
            raise UnknownMethodError(f"`solver`: unknown MILP engine {solver!r}; valid: {', '.join(SOLVERS)}")
        if solver not in installed:
            raise SolverUnavailableError(f"`solver`: {solver!r} is not available in this environment; "
                                         f"available: {', '.join(installed) or 'none'}")
        model_opts = dict(prune=bool(opts.pop("prune", True)), call_bounds=bool(opts.pop("call_bounds", True)),
                          lp_fixing=bool(opts.pop("lp_fixing", True)),
                          dominance=bool(opts.pop("dominance", True)))
        use_hint = bool(opts.pop("hint", True))
        link_cuts = opts.pop("link_cuts", "auto")
        row_opts = dict(link_cuts=link_cuts if link_cuts == "auto" else bool(link_cuts),
                        amortized_cut=bool(opts.pop("amortized_cut", False)),
                        count_cuts=bool(opts.pop("count_cuts", True)),
                        # Kept for CBC too, measured both ways (before CBC's warm start was
                        # fixed): with them CBC proved 85 of the 90 Qwen3 200 x 16 instances in
                        # 60 s, without them it had missed 7 of the first 66 (though on Qwen3
                        # 100 x 24 at fraction 0.3 it stalls with them, gap 0.38 % at 60 s, and
                        # proves in 17 s without).
                        fill_cuts=bool(opts.pop("fill_cuts", True)))
        if opts:
            raise TypeError(f"method 'milp' got unknown options: {', '.join(sorted(opts))}")
        run = _solve_highs if solver == "highs" else _solve_cbc

        def make_engine(model: CoupledModel):
            scale = model.max_cost_usd()
            ro = dict(row_opts, cost_scale_usd=scale if scale > 0 else 1.0)

            def engine(nogoods, hint, time_limit_s, better_than=None):
                return run(problem, model, ro, nogoods, hint if use_hint else None, time_limit_s, better_than)
            return engine

        res = run_exact(problem, solver, make_engine, use_greedy=use_hint or model_opts["lp_fixing"],
                        start=start, **model_opts)
        return SolverResult(res.option, res.status, res.bound, dict(res.info))
