"""The coupled RwB model shared by the exact engines (CP-SAT, CBC, HiGHS), and their driver.

The model (DESIGN §1): a binary ``x[i, j]`` per admissible (query, option) cell, exactly one
per query; an integer number of calls ``y_g`` per group ``g = (task, option)`` with
``b_g * y_g >= sum_{i in g} x[i, j]``; the exact cost ``sum_g f_g y_g + sum v x``; per-model
capacity ``sum_{j on model k} x[i, j] <= max_queries[k]``. Groups whose batch size is 1
(calls = members, so ``f_g y_g`` is a per-column cost) or whose call price is 0 are folded
into the columns and get no ``y``: an instance without batching is then a plain MCKP.

Feasibility is decided by the shared evaluator only (see :func:`is_feasible`). Engines work
with rounded numbers (CP-SAT scales to integers; MILP engines accept rows violated by their
feasibility tolerance), so every engine solves a *relaxation* of the true problem (one that
contains every truly feasible plan) and :func:`run_exact` closes the loop: it grades each
plan the engine returns with :func:`robatch_opt.evaluate`; a plan that the rounding let in
but that is over budget (or under target) is excluded by a no-good cut and the relaxation is
solved again. Because only truly infeasible plans are ever cut, every model solved is still
a relaxation, so every bound it proves is valid, and a truly feasible plan that is optimal
for a relaxation is optimal for the true problem.
"""

from __future__ import annotations

import contextvars
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..evaluate import BUDGET_RTOL, Evaluation, evaluate, float_sum_rtol, meets_target, within_budget
from ..plan import Status
from .base import Problem, SolverResult

__all__ = ["CoupledModel", "build_model", "is_feasible", "quality_floor", "EngineAnswer",
           "run_exact", "greedy_start", "close_partial_calls", "partial_call_dominance",
           "RELAX_RTOL", "MAX_NOGOOD_ROUNDS"]

#: Relative slack between the table's per-cell costs and ``evaluate``'s sums. Both are sums of
#: non-negative terms each rounded once or twice (relative error <= 3 eps per term, summation
#: <= n eps), so they differ by at most about ``(n + 6) * 2.2e-16`` relative: < 1e-9 for
#: n < 4.5e6. Relaxations widen the budget (and narrow the target) by this factor.
RELAX_RTOL = 1e-9

#: Rounds of "solve relaxation, grade, cut the over-budget plan" before giving up proving.
MAX_NOGOOD_ROUNDS = 50

#: From this many query x option cells (with batch sizes above 1) the exact engines start
#: from an ``lns`` plan (:data:`SEARCH_STARTS`) instead of the greedy's: a better incumbent
#: lets the reduced-cost fixing (:mod:`._lp_fixing`) remove most cells. Below it the engines
#: prove optimality within seconds anyway (Qwen3 200 x 16: median 1.6 s).
EXACT_SEARCH_MIN_CELLS = 4_000

#: The verification solves ("is there a plan better than the incumbent by VERIFY_RTOL?",
#: see :func:`_verify`) come first, without an optimising solve, when the search start's
#: proven gap is at most this (for engines whose :class:`SearchStart` says so): an
#: optimising solve would mostly re-prove the start. Qwen3 5,000 x 16, seed 0, fraction 0.3
#: after a 40 s search (model fixed to 17,607 columns): HiGHS's optimising solve took 26.8 s
#: to call the start optimal and the verification 44.5 s more, past a 120 s limit. A better
#: plan, if there is one, is what a verification solve returns (it optimises within "at
#: least the target"); the next round then verifies that one.
VERIFY_FIRST_RTOL = 1e-5


@dataclass(frozen=True)
class SearchStart:
    """How an exact engine gets its start (``lns``) and what it does next.

    Attributes
    ----------
    share, max_s : float
        The search runs ``min(share * time_limit_s, max_s)`` seconds.
    whole : bool
        ``lns`` runs HiGHS on the whole model beside its neighbourhoods.
    stop_gap : float
        The search may end once its plan is within this of its bound ...
    min_share : float
        ... but not before this share of its time.
    verify_first : bool
        From a start within :data:`VERIFY_FIRST_RTOL` of the bound, go straight to the
        verification solves.
    max_free, sub_time_limit_s : int, float
        ``lns``'s neighbourhood size and per-neighbourhood limit. The exact engines' figures
        (``benchmarks/RESULTS.md`` (i)) were measured with 40 queries and 0.5 s, ``lns``'s
        defaults until they became 80 and 1 s for ``method="lns"`` itself.
    """

    share: float
    max_s: float
    whole: bool
    stop_gap: float = 0.0
    min_share: float = 0.0
    verify_first: bool = False
    max_free: int = 40
    sub_time_limit_s: float = 0.5


#: Per engine; measured on Qwen3 x 16 options, 10 seeds x fractions 0.1 / 0.3 / 0.6
#: (``benchmarks/RESULTS.md`` (i)).
#:
#: - HiGHS does not run beside itself. Its start ends on reaching 1e-5 (n = 5,000, seed 0,
#:   fraction 0.3, 120 s: after a fixed 20 s the start was 3.3e-5 short and 75,000 of 80,000
#:   columns stayed; ending at 1e-5, 0.1 and 0.3 were proved in 109-110 s), but not before half
#:   its time: at fraction 0.6 the greedy plan was already within 1e-5, the search ended after
#:   9 ms and the solve from it was not proved in 120 s (20 s of search first: 49.9 s).
#: - CP-SAT proves "no plan better than the start" where it does not close its own bound
#:   (misses at n = 1,000 ended ~5e-7 short of a bound they held the optimum for): it
#:   verifies first, from a start searched beside a whole-model HiGHS to the end of its time
#:   (with the 1e-5 stop its starts were not yet optimal, and verification rounds that have to
#:   find the better plan were slow: 2 of 3 misses unproved; without the stop 3 of 3 proved).
#: - CBC optimises from a start searched beside a whole-model HiGHS (CBC first verifying
#:   proved the same four instances as without).
SEARCH_STARTS = {
    "highs": SearchStart(share=1 / 3, max_s=40.0, whole=False, stop_gap=VERIFY_FIRST_RTOL, min_share=0.5,
                         verify_first=True),
    "cpsat": SearchStart(share=1 / 3, max_s=40.0, whole=True, verify_first=True),
    "cbc": SearchStart(share=1 / 6, max_s=20.0, whole=True),
}

#: Relative gap under which a plan meeting a proven bound is reported OPTIMAL.
OPTIMAL_RTOL = 1e-9

#: The verification solve asks for a plan better than the incumbent by this much (relative):
#: "none" proves the incumbent within OPTIMAL_RTOL of the optimum (the bound is the target).
VERIFY_RTOL = 0.99 * OPTIMAL_RTOL


def quality_floor(target: float) -> float:
    """The least evaluated utility that meets the quality target ``target``."""
    return target - BUDGET_RTOL * max(1.0, abs(target))


def is_feasible(problem: Problem, ev: Evaluation) -> bool:
    """Whether a graded plan meets the problem: the package's definition, as the front door.

    Budget form: :func:`~robatch_opt.evaluate.within_budget`; quality form:
    :func:`~robatch_opt.evaluate.meets_target`; capacity: queries per model <= ``max_queries``.
    """
    if problem.max_queries is not None and (ev.model_usage() > problem.max_queries).any():
        return False
    if problem.budget_usd is not None:
        return within_budget(ev.cost_usd, problem.budget_usd)
    return meets_target(ev.utility, problem.min_total_utility)


@dataclass(frozen=True, eq=False)
class CoupledModel:
    """Column data of the coupled model, after removing cells no feasible plan can use.

    Attributes
    ----------
    xi, xj : ndarray, shape (m,)
        Query and option of every binary column ``x``, sorted by query then option.
    x_var_usd, x_utility, x_amortized_usd : ndarray, shape (m,)
        Per-column cost (``v[i, k_j]``, plus the call price ``f[t_i, k_j]`` when the batch
        size is 1), ``u[i, j]`` and ``c[i, j]`` of every column.
    x_group : ndarray, shape (m,)
        Index into the group arrays of the column's group, or -1 when the column belongs to
        no *coupled* group (batch size 1, whose call price is in ``x_var_usd``, or a call
        price of 0): only coupled groups have a call count.
    x_model : ndarray, shape (m,)
    q_start : ndarray, shape (n + 1,)
        Columns of query ``i`` are ``q_start[i]:q_start[i + 1]``.
    q_task : ndarray of int64, shape (n,)
        Task of every query.
    g_fixed_usd, g_batch, g_max_calls : ndarray, shape (G,)
        Call price, batch size (> 1) and an upper bound on the calls of every coupled group
        that has a column. ``g_max_calls = ceil(members that can join / b)`` when ``call_bounds``,
        else the number of queries of the task (a naive bound, kept for measurement).
    g_id : ndarray, shape (G,)
        ``t * J + j`` of every group.
    g_max_slack : ndarray of int64, shape (G,)
        Upper bound on ``b_g * y_g - members_g``, the empty seats of the group's calls:
        ``b_g - 1`` in general, less where :func:`partial_call_dominance` proves that some
        optimal plan leaves fewer.
    cap : ndarray of int64, shape (K,), or None
    n_pruned : int
        Admissible cells removed because no feasible plan can use them.
    n_fixed : int
        Cells removed by Lagrangian fixing against an incumbent (see :func:`build_model`).
    lp_bound : float or None
        The Lagrangian (amortized LP) bound found while fixing, in real units.
    """

    n: int
    J: int
    K: int
    xi: np.ndarray
    xj: np.ndarray
    x_var_usd: np.ndarray
    x_utility: np.ndarray
    x_amortized_usd: np.ndarray
    x_group: np.ndarray
    x_model: np.ndarray
    q_start: np.ndarray
    q_task: np.ndarray
    g_fixed_usd: np.ndarray
    g_batch: np.ndarray
    g_max_calls: np.ndarray
    g_id: np.ndarray
    g_max_slack: np.ndarray
    cap: np.ndarray | None
    n_pruned: int
    n_fixed: int = 0
    lp_bound: float | None = None

    @property
    def m(self) -> int:
        return int(self.xi.shape[0])

    @property
    def G(self) -> int:
        return int(self.g_id.shape[0])

    def max_cost_usd(self) -> float:
        """An upper bound on the exact cost of every plan of the model (for scaling)."""
        per_q = np.maximum.reduceat(self.x_var_usd, self.q_start[:-1]) if self.m else np.zeros(0)
        return float(per_q.sum() + np.dot(self.g_fixed_usd, self.g_max_calls))

    def max_utility(self) -> float:
        """Sum over queries of the best utility (for scaling)."""
        if not self.m:
            return 0.0
        return float(np.maximum.reduceat(self.x_utility, self.q_start[:-1]).sum())

    def option_from_columns(self, chosen: np.ndarray) -> np.ndarray:
        """Option per query from a boolean (or 0/1) mask of chosen columns (argmax per query)."""
        val = np.asarray(chosen, dtype=np.float64)
        # Per query, the chosen column is the one of largest value (robust to 0.9999999).
        order = np.lexsort((-val, self.xi))
        first = order[self.q_start[:-1]]
        return self.xj[first].astype(np.int64)

    @property
    def seat_bounded(self) -> np.ndarray:
        """Groups whose empty seats are bounded below ``b - 1`` (partial-call dominance)."""
        return self.g_max_slack < self.g_batch - 1

    @property
    def g_min_fill(self) -> np.ndarray:
        """Fewest members per call of each group: ``b_g - g_max_slack`` (>= 1).

        The *fill cut* ``g_min_fill[g] * y_g <= sum_{i in g} x[i, j]``: a plan whose calls are
        the fewest that seat the members (``y = ceil(n / b)``, the only calls any cost counts)
        and leave at most ``s = g_max_slack`` seats empty has ``n >= b y - s = (b - s) y +
        s (y - 1) >= (b - s) y`` when ``y >= 1``, and ``y = 0`` when ``n = 0``. Without
        dominance (``s = b - 1``) it says a call holds at least one query. The LP relaxation
        otherwise opens fractions of empty calls to meet the count cuts.
        """
        return self.g_batch - self.g_max_slack

    def count_cuts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The task count cuts, as sparse rows over ``z = [x, y]`` (columns then groups).

        For a task ``t`` with ``N_t`` queries and a divisor ``d`` (each batch size of a
        coupled group of ``t``): every query of ``t`` sits in a call of a coupled group or
        in a column outside them (``x_group == -1``), so
        ``sum_{g of t} b_g y_g + sum_{uncoupled columns of t} x >= N_t``. Dividing by ``d``
        and rounding every coefficient up keeps the left side an integer at least
        ``N_t / d`` (Chvatal-Gomory), so

            ``sum_{g of t} ceil(b_g / d) y_g + sum_{uncoupled columns of t} x >= ceil(N_t / d)``

        holds for every integer point of the model (proofs/task_count_cuts.md). In words: the
        calls, counting a call of batch size ``b`` as ``ceil(b / d)``, must seat the task.
        The LP relaxation pays for fractions of calls; these rows make it pay for whole ones
        (Qwen3 n = 200, tight budget: the LP bound falls from 152.53 to 152.34, optimum 152.32).

        Returns
        -------
        row, col, coef : ndarray, shape (nnz,)
            Row number (from 0), column in ``z`` (``m + g`` for group ``g``), coefficient.
        lower : ndarray, shape (rows,)
            Right-hand side of each ``>=`` row.
        """
        g_task = self.g_id // self.J
        col_task = self.q_task[self.xi]
        uncoupled = self.x_group < 0
        n_task = np.bincount(self.q_task, minlength=int(g_task.max()) + 1 if self.G else 0)
        rows, cols, coefs, lower = [], [], [], []
        r = 0
        for t in np.unique(g_task).tolist():
            gs = np.flatnonzero(g_task == t)
            unc = np.flatnonzero(uncoupled & (col_task == t))
            for d in np.unique(self.g_batch[gs]).tolist():
                cols.append(np.r_[unc, self.m + gs])
                coefs.append(np.r_[np.ones(len(unc)), -(-self.g_batch[gs] // d)].astype(np.float64))
                rows.append(np.full(len(unc) + len(gs), r, dtype=np.int64))
                lower.append(-(-int(n_task[t]) // d))
                r += 1
        if not r:
            e = np.zeros(0, dtype=np.int64)
            return e, e, np.zeros(0), np.zeros(0)
        return (np.concatenate(rows), np.concatenate(cols).astype(np.int64), np.concatenate(coefs),
                np.asarray(lower, dtype=np.float64))

    def start_of(self, option: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """A warm start from an option per query: (0/1 per column, calls per group), or None.

        None when ``option`` is None or uses a cell that is not a column (pruned or fixed).
        The calls are the fewest that seat the members, ``ceil(members / b)``.
        """
        if option is None:
            return None
        try:
            cols = self.columns_of(option)
        except KeyError:
            return None
        x = np.zeros(self.m, dtype=np.int64)
        x[cols] = 1
        grp = self.x_group[cols]
        members = np.bincount(grp[grp >= 0], minlength=self.G)
        return x, -(-members // self.g_batch)

    def columns_of(self, option: np.ndarray) -> np.ndarray:
        """Column index of ``(i, option[i])`` for every query (option must be a model column)."""
        key = self.xi * self.J + self.xj
        want = np.arange(self.n) * self.J + np.asarray(option, dtype=np.int64)
        pos = np.searchsorted(key, want)
        pos = np.minimum(pos, max(self.m - 1, 0))
        if self.m == 0 or not np.array_equal(key[pos], want):
            raise KeyError("assignment uses a cell that is not a column of the model")
        return pos


def build_model(problem: Problem, *, prune: bool = True, call_bounds: bool = True,
                incumbent: float | None = None, dominance: bool = True,
                keep_cells: np.ndarray | None = None) -> CoupledModel:
    """Columns and groups of the coupled model of ``problem``.

    Parameters
    ----------
    prune : bool
        Remove cell ``(i, j)`` when no feasible plan can use it. Budget form: when
        ``c[i, j] + sum_{i' != i} min_j' c[i', j'] > budget * (1 + RELAX_RTOL)`` (the exact
        cost of every plan is at least the sum of its amortized costs). Quality form: when
        ``u[i, j] + sum_{i' != i} max_j' u[i', j'] < floor - RELAX_RTOL * max(1, floor)``.
        Both margins exceed the float noise between the table and ``evaluate``, so no
        feasible plan is lost.
    call_bounds : bool
        Bound the calls of group ``g`` by ``ceil(candidates_g / b_g)`` (else by the number of
        queries of the task).
    incumbent : float, optional
        Objective (utility, or cost in USD) of a known feasible plan. Cells that no plan at
        least as good can use are removed (:func:`_lagrangian_fixing`); the model then holds
        every plan at least as good as the incumbent, so its optimum is the true optimum.
    dominance : bool
        Bound the empty seats of each group by :func:`partial_call_dominance`.
    keep_cells : ndarray of bool, shape (n, J), optional
        Only these cells (e.g. those that survive reduced-cost fixing against ``incumbent``,
        :func:`robatch_opt.solvers._lp_fixing.lp_reduced_cost_fixing`); removed cells count
        as fixed.

    Notes
    -----
    O(n J) NumPy work; no Python loop over cells.
    """
    table = problem.table
    n, J = table.n_queries, table.n_options
    K = int(problem.instance.n_models)
    adm = np.asarray(table.admissible, dtype=bool).copy()
    n_adm = int(adm.sum())
    if prune and n:
        if problem.budget_usd is not None:
            c = np.where(adm, table.cost, np.inf)
            cmin = c.min(axis=1)
            rest = cmin.sum() - cmin
            adm &= c + rest[:, None] <= problem.budget_usd * (1 + RELAX_RTOL)
        else:
            u = np.where(adm, table.utility, -np.inf)
            umax = u.max(axis=1)
            rest = umax.sum() - umax
            floor = quality_floor(problem.min_total_utility)
            adm &= u + rest[:, None] >= floor - RELAX_RTOL * max(1.0, abs(floor))
        # Never leave a query without a column: then the model is infeasible anyway, but an
        # empty query would break the per-query arrays. Keep its cheapest / most useful cell.
        empty = ~adm.any(axis=1)
        if empty.any():
            keep = table.cheapest_option if problem.budget_usd is not None else table.most_useful_option
            adm[empty, keep[empty]] = True
    lp_bound = None
    n_fixed = 0
    if keep_cells is not None:
        before = int(adm.sum())
        adm &= keep_cells
        n_fixed = before - int(adm.sum())
    if incumbent is not None and n:
        before = int(adm.sum())
        adm, lp_bound = _lagrangian_fixing(problem, adm, incumbent)
        n_fixed += before - int(adm.sum())
    xi, xj = np.nonzero(adm)                       # row-major: sorted by query, then option
    xi = xi.astype(np.int64)
    xj = xj.astype(np.int64)
    om = np.asarray(table.option_model, dtype=np.int64)
    ob = np.asarray(table.option_batch, dtype=np.int64)
    qt = np.asarray(table.query_task, dtype=np.int64)
    var = np.asarray(table.variable_cost, dtype=np.float64)
    fixed = np.asarray(table.fixed_cost, dtype=np.float64)
    cell_task = qt[xi]
    x_var = var[xi, om[xj]]
    cell_fixed = fixed[cell_task, om[xj]]
    # A group couples its members only if its calls cost something and seat more than one
    # query. With batch size 1 the calls equal the members, so the call price is a per-column
    # cost (exact, no rounding); a free call needs no count at all. Folding these leaves
    # the engines a plain MCKP where the instance is one (e.g. the knapsack reduction).
    coupled = (ob[xj] > 1) & (cell_fixed > 0)
    x_var = np.where((ob[xj] == 1), x_var + cell_fixed, x_var)
    gid_cell = cell_task * J + xj
    g_id, inv, members = np.unique(gid_cell[coupled], return_inverse=True, return_counts=True)
    x_group = np.full(xi.shape[0], -1, dtype=np.int64)
    x_group[coupled] = inv
    g_opt = g_id % J
    g_task = g_id // J
    g_batch = ob[g_opt]
    if call_bounds:
        g_max = -(-members // g_batch)
    else:
        g_max = np.bincount(qt, minlength=table.n_tasks)[g_task]
    q_start = np.searchsorted(xi, np.arange(n + 1)).astype(np.int64)
    g_slack = g_batch - 1
    if dominance and len(g_id):
        g_slack = np.minimum(g_slack, partial_call_dominance(table, g_task, g_opt))
    return CoupledModel(
        n=n, J=J, K=K, xi=xi, xj=xj,
        x_var_usd=x_var,
        x_utility=np.asarray(table.utility, dtype=np.float64)[xi, xj],
        x_amortized_usd=np.asarray(table.cost, dtype=np.float64)[xi, xj],
        x_group=x_group, x_model=om[xj],
        q_start=q_start, q_task=qt,
        g_fixed_usd=fixed[g_task, om[g_opt]],
        g_batch=g_batch.astype(np.int64), g_max_calls=g_max.astype(np.int64), g_id=g_id.astype(np.int64),
        g_max_slack=np.asarray(g_slack, dtype=np.int64),
        cap=None if problem.max_queries is None else np.asarray(problem.max_queries, dtype=np.int64),
        n_pruned=n_adm - int(adm.sum()) - n_fixed, n_fixed=n_fixed, lp_bound=lp_bound,
    )


def partial_call_dominance(table, g_task: np.ndarray, g_opt: np.ndarray) -> np.ndarray:
    """Most empty seats an optimal plan needs in the calls of each group (``b - 1`` if no rule).

    Let group ``g = (t, (k, b))`` and ``b'`` the largest batch size of model ``k`` below
    ``b``. Suppose every query of task ``t`` that may take ``(k, b)`` may also take
    ``(k, b')``, with utility at least as high. Take any plan whose calls of ``g`` leave
    ``b - r`` seats empty, its last call holding ``r <= b'`` queries. Moving those ``r``
    queries to ``(k, b')`` removes one call of ``g`` and adds at most one to ``(k, b')``
    (``ceil((s + r) / b') <= ceil(s / b') + 1``); both calls have the same price
    ``f[t, k]``, the per-query costs are unchanged (same model), and no utility drops. So the
    move never makes a plan worse, costlier, or break a capacity (same model); repeating it
    ends, since queries only move to smaller batch sizes. Hence some optimal plan has, in
    every such group, either no partial call or one with more than ``b'`` queries: at most
    ``b - b' - 1`` empty seats. (Cells removed by pruning or fixing are never needed: the
    moved plan is feasible and at least as good, so it only uses cells that survive both.)

    Parameters
    ----------
    table : OptionTable
        The compiled options of the instance (admissibility and utility are read from it).
    g_task, g_opt : ndarray of int64, shape (G,)
        Task and option (column of the table) of every group.

    Returns
    -------
    ndarray of int64, shape (G,)
        Most empty seats per group: ``b - b' - 1`` where the premise holds on the table
        (checked on every query of the task), else ``b - 1``.
    """
    ob = np.asarray(table.option_batch, dtype=np.int64)
    target = _dominance_target(table, g_task, g_opt)
    return np.where(target >= 0, ob[g_opt] - ob[np.maximum(target, 0)] - 1, ob[g_opt] - 1)


def _dominance_target(table, g_task: np.ndarray, g_opt: np.ndarray) -> np.ndarray:
    """Option ``(k, b')`` of Theorem 5 for every group where its premise holds, else -1."""
    om = np.asarray(table.option_model, dtype=np.int64)
    ob = np.asarray(table.option_batch, dtype=np.int64)
    qt = np.asarray(table.query_task, dtype=np.int64)
    adm = np.asarray(table.admissible, dtype=bool)
    util = np.asarray(table.utility, dtype=np.float64)
    out = np.full(len(g_opt), -1, dtype=np.int64)
    for g, (t, j) in enumerate(zip(np.asarray(g_task).tolist(), np.asarray(g_opt).tolist())):
        smaller = np.flatnonzero((om == om[j]) & (ob < ob[j]))
        if not len(smaller):
            continue
        jp = int(smaller[np.argmax(ob[smaller])])
        rows = (qt == t) & adm[:, j]
        if np.all(adm[rows, jp]) and np.all(util[rows, jp] >= util[rows, j]):
            out[g] = jp
    return out


def close_partial_calls(table, option: np.ndarray) -> np.ndarray:
    """Theorem 5's move applied to a plan until every group meets its dominance bound.

    In each group ``(t, (k, b))`` whose last call holds ``r <= b'`` queries and where the
    premise of :func:`partial_call_dominance` holds, the ``r`` members that gain the most
    utility (the premise says none loses) move to ``(k, b')``. The plan's
    utility never falls and its exact cost and per-model usage never rise, so a feasible
    plan stays feasible and at least as good, and the result satisfies the bounded seat rows
    of the exact model (a feasible warm start for the engines, which the greedy plan often
    is not). Each move lowers some query's batch size, so the loop ends.

    Parameters
    ----------
    table : OptionTable
    option : ndarray of int64, shape (n,)
        Option per query.

    Returns
    -------
    ndarray of int64, shape (n,)
        The moved plan (a new array; ``option`` is not modified).
    """
    opt = np.array(option, dtype=np.int64, copy=True)
    J = table.n_options
    ob = np.asarray(table.option_batch, dtype=np.int64)
    qt = np.asarray(table.query_task, dtype=np.int64)
    util = np.asarray(table.utility, dtype=np.float64)
    while True:
        key = qt * J + opt
        ids, members = np.unique(key, return_counts=True)
        g_task, g_opt = ids // J, ids % J
        b = ob[g_opt]
        r = members % b
        cand = (b > 1) & (r > 0)
        if not cand.any():
            return opt
        target = _dominance_target(table, g_task[cand], g_opt[cand])
        bp = np.where(target >= 0, ob[np.maximum(target, 0)], 0)
        move = (target >= 0) & (r[cand] <= bp)
        if not move.any():
            return opt
        for gid, jp, count in zip(ids[cand][move].tolist(), target[move].tolist(), r[cand][move].tolist()):
            rows = np.flatnonzero(key == gid)
            j = gid % J
            gain = util[rows, jp] - util[rows, j]
            opt[rows[np.argsort(-gain, kind="stable")[:count]]] = jp


def _lagrangian_fixing(problem: Problem, adm: np.ndarray, incumbent: float) -> tuple[np.ndarray, float]:
    """Remove cells that no plan at least as good as the incumbent can use.

    Budget form. For any price ``lam >= 0`` the Lagrangian of the amortized MCKP,
    ``L(lam) = lam * B' + sum_i max_j (u[i, j] - lam * c[i, j])`` (``B'`` the budget widened
    by ``RELAX_RTOL``), bounds the utility of every feasible plan, because the exact cost is
    never below the amortized one. Forcing cell ``(i, j)`` gives
    ``L_ij = L - (max_j' (u - lam c)[i, j'] - (u - lam c)[i, j])``, a bound on every feasible
    plan that uses ``(i, j)``; if ``L_ij`` is below the incumbent's utility (minus a margin
    for float noise), no plan at least as good as the incumbent uses the cell. The incumbent
    itself always survives (its own cells have ``L_ij >= `` its utility). The price is found
    by bisection on the subgradient; any price gives a valid bound, so its accuracy only
    affects strength. Quality form: the same with ``L(mu) = mu * T' + sum_i min_j (c - mu u)``,
    a lower bound on cost, against the incumbent's cost. This is the amortized LP bound used as
    a cut: ``min_lam L(lam)`` equals the LP relaxation of the amortized MCKP.

    Returns the reduced mask and ``min L`` (a valid bound on the optimum).
    """
    t = problem.table
    c = np.where(adm, t.cost, 0.0)
    u = np.where(adm, t.utility, 0.0)
    if problem.budget_usd is not None:
        rhs = problem.budget_usd * (1 + RELAX_RTOL)
        sign = 1.0
        gain, price = u, c                 # per cell u - lam c, to maximise
    else:
        rhs = quality_floor(problem.min_total_utility) * (1 - RELAX_RTOL)
        rhs = rhs - RELAX_RTOL if rhs <= 0 else rhs
        sign = -1.0
        gain, price = -c, -u               # per cell -(c - lam u), to maximise
    rows = np.arange(adm.shape[0])

    def lagrangian(lam):
        v = np.where(adm, gain - lam * price, -np.inf)
        arg = v.argmax(axis=1)
        best = v[rows, arg]
        # sign * L: budget form L = lam B + sum max; quality form -L = -lam T + sum max(-...)
        total = sign * lam * rhs + best.sum()
        used = (c if sign > 0 else u)[rows, arg].sum()
        return total, v, best, used

    # Subgradient of sign*L in lam: B - used cost (budget) / -(T - used utility) (quality).
    def slope(used):
        return rhs - used if sign > 0 else used - rhs

    lo, hi = 0.0, 1.0
    tot, _, _, used = lagrangian(0.0)
    if slope(used) < 0:
        # Bracket the price by factors of 4 from 1 in either direction (prices in utility per
        # USD span many decades), then bisect to 1e-9 relative: enough for fixing, and about
        # 45 evaluations instead of a fixed 60 halvings of [0, hi].
        if slope(lagrangian(hi)[3]) >= 0:
            for _ in range(200):
                if slope(lagrangian(hi / 4)[3]) >= 0:
                    hi /= 4
                else:
                    lo = hi / 4
                    break
        else:
            for _ in range(200):
                lo, hi = hi, hi * 4
                if slope(lagrangian(hi)[3]) >= 0:
                    break
        for _ in range(100):               # bounded: with lo = 0, hi can shrink to 0
            if hi - lo <= 1e-9 * hi:
                break
            mid = 0.5 * (lo + hi)
            if slope(lagrangian(mid)[3]) < 0:
                lo = mid
            else:
                hi = mid
    cands = [lagrangian(lam) for lam in (0.0, lo, hi)]
    tot, v, best, _ = min(cands, key=lambda r: r[0])
    lam_used = (0.0, lo, hi)[[r[0] for r in cands].index(tot)]
    inc = sign * incumbent
    # Float noise of L: n + few roundings, each <= eps relative to the sum of |terms|.
    eps = np.finfo(np.float64).eps
    margin = 4 * eps * (v.shape[0] + 10) * (abs(incumbent) + abs(lam_used * rhs) + float(np.abs(best).sum()))
    cell_bound = tot - (best[:, None] - v)                  # sign * L_ij
    keep = adm & (cell_bound >= inc - margin)
    # sign * L is an upper bound of sign * objective, so L itself is the bound in real units.
    return keep, float(sign * tot + sign * margin)


def trivial_bound(problem: Problem) -> float:
    """A bound valid without any solve: best utility per query, or the amortized minimum cost.

    Both are float sums of n non-negative terms, which can land an ulp on the wrong side of
    the exact sum (a near-tie case: the plan of every query's best option beat the unwidened
    bound 1.5000003663000023 in exact arithmetic); each is widened by the sum's error bound.
    """
    t = problem.table
    widen = float_sum_rtol(t.n_queries + 1)
    if problem.budget_usd is not None:
        total = float(np.where(t.admissible, t.utility, 0.0).max(axis=1).sum()) if t.n_queries else 0.0
        return total * (1.0 + widen)
    return float(t.min_cost_usd) * (1.0 - widen)


def _wants_search_start(problem: Problem) -> bool:
    """Large enough for a search before the engine, with batch sizes above 1 (otherwise the
    model is an MCKP that the Lagrangian fixing already reduces to its LP)."""
    t = problem.table
    return t.n_queries * t.n_options >= EXACT_SEARCH_MIN_CELLS and int(np.max(t.option_batch, initial=1)) > 1


def _search_start(problem: Problem, time_limit_s: float, *, whole: bool, stop_gap: float = 0.0,
                  min_search_s: float = 0.0, max_free: int,
                  sub_time_limit_s: float) -> tuple[Evaluation | None, float | None]:
    """``method="lns"`` for ``time_limit_s``: its plan (graded) and its proven bound, or Nones.

    ``whole``: let ``lns`` run HiGHS on the whole model beside its search (its default). The
    HiGHS driver turns it off (HiGHS runs on the whole model next anyway); CP-SAT and CBC
    keep it: their misses at n = 1,000 came from starts ~1e-6 short of the optimum, which
    HiGHS's branch and cut finds where the neighbourhood search alone does not. ``stop_gap``:
    end the search once its plan is within this of its bound, but not before ``min_search_s``;
    ``max_free`` and ``sub_time_limit_s``: the neighbourhoods (see :class:`SearchStart`); all
    are ``lns``'s options.
    """
    import dataclasses

    try:
        from .lns import LNSBackend
        res = LNSBackend().solve(dataclasses.replace(problem, time_limit_s=time_limit_s,
                                                     options={"whole": whole, "stop_gap": stop_gap,
                                                              "min_search_s": min_search_s,
                                                              "max_free": max_free,
                                                              "sub_time_limit_s": sub_time_limit_s}))
    except Exception:                   # a start is optional: never let it break the solve
        return None, None
    found = None if res.option is None else evaluate(problem.instance, res.option)
    b = float(res.bound) if res.bound is not None and math.isfinite(res.bound) else None
    return found, b


def greedy_start(problem: Problem) -> tuple[np.ndarray | None, float | None, str]:
    """The greedy plan and its bound, for warm starts; ``(None, None, why)`` if unavailable.

    The greedy backend is imported lazily: the exact engines work without it.
    """
    try:
        from .greedy import GreedyBackend
        res = GreedyBackend().solve(problem)
    except Exception as exc:             # a hint is optional: never let it break the solve
        return None, None, f"greedy unavailable: {type(exc).__name__}: {exc}"
    bound = float(res.bound) if res.bound is not None and math.isfinite(res.bound) else None
    return (None if res.option is None else np.asarray(res.option, dtype=np.int64)), bound, "ok"


@dataclass
class EngineAnswer:
    """What one engine run on the current relaxation returned.

    ``status`` is one of ``"optimal"`` (the relaxation is solved to proven optimality),
    ``"feasible"`` (a plan, limit reached), ``"infeasible"`` (the relaxation has no plan),
    ``"unknown"`` (limit reached without a plan). ``bound`` is a valid bound of the
    relaxation in real units (utility or USD), or None: for engines that work in floating
    point, already widened by what their tolerances can hide (see
    :func:`robatch_opt.solvers.milp._answer`). ``bound_exact`` is True when the engine's
    bound is exact arithmetic (CP-SAT's integers): then an "optimal" plan needs no
    verification solve.
    """

    status: str
    option: np.ndarray | None
    bound: float | None
    info: dict[str, Any] = field(default_factory=dict)
    bound_exact: bool = False


def _better(problem: Problem, a: Evaluation, b: Evaluation | None) -> bool:
    if b is None:
        return True
    if problem.budget_usd is not None:
        return a.utility > b.utility
    return a.cost_usd < b.cost_usd


def _gap(problem: Problem, ev: Evaluation, bound: float) -> float:
    if problem.budget_usd is not None:
        ub = max(bound, ev.utility)
        return (ub - ev.utility) / ub if ub > 0 else 0.0
    lb = min(bound, ev.cost_usd)
    return (ev.cost_usd - lb) / ev.cost_usd if ev.cost_usd > 0 else 0.0


SolveRelaxation = Callable[..., EngineAnswer]


def _merge_info(acc: dict[str, Any], new: dict[str, Any]) -> None:
    """Times add up over rounds; the rest is the last round's."""
    for k, v in new.items():
        acc[k] = acc.get(k, 0.0) + v if k.endswith("_s") else v


def improvement_target(problem: Problem, ev: Evaluation) -> float | None:
    """The objective a plan must reach to beat ``ev`` by VERIFY_RTOL.

    A plan of utility 0 is beaten by any plan of positive utility, whose (float) sum is at
    least its largest term, so at least the least positive utility of any admissible cell:
    that (less VERIFY_RTOL) is the target, and "none reaches it" proves the optimum is 0.
    None when nothing can beat ``ev`` (no positive utility; a cost of 0).
    """
    if problem.budget_usd is not None:
        if ev.utility > 0:
            return ev.utility * (1 + VERIFY_RTOL)
        t = problem.table
        positive = t.utility[t.admissible & (t.utility > 0)]
        return float(positive.min()) * (1 - VERIFY_RTOL) if positive.size else None
    return ev.cost_usd * (1 - VERIFY_RTOL) if ev.cost_usd > 0 else None


def _verify(problem: Problem, solve_relaxation: SolveRelaxation, best: Evaluation, bound: float,
            nogoods: list[np.ndarray], deadline: float, engine_info: dict[str, Any]):
    """Settle an "optimal" claim of a floating-point engine, or prove a search start (engines
    that verify first, :class:`SearchStart`), by asking for a better plan.

    The relaxation gets one more row, "objective at least ``improvement_target``". Its
    answer: infeasible (the target is then a valid bound and the incumbent is within
    OPTIMAL_RTOL); a truly better plan (the new incumbent; asked again); or a plan that
    only the engine's tolerances let in (over budget, or not truly better: excluded by a
    no-good, which keeps every plan that beats the target). Returns
    ``(proved, best, bound, rounds)``.
    """
    budget_form = problem.budget_usd is not None
    tighter = min if budget_form else max
    rounds = 0
    while rounds < MAX_NOGOOD_ROUNDS:
        target = improvement_target(problem, best)
        remaining = deadline - time.perf_counter()
        if target is None or remaining <= 0:
            return False, best, bound, rounds
        rounds += 1
        ans = solve_relaxation(nogoods, None, remaining, better_than=target)
        _merge_info(engine_info, ans.info)
        if ans.bound is not None and math.isfinite(ans.bound):
            # The engine's bound covers the plans that reach the target (the model holds no
            # other); the target itself bounds the rest.
            bound = tighter(bound, max(ans.bound, target) if budget_form else min(ans.bound, target))
        if ans.status == "infeasible":
            # No plan reaches the target: the bound is the target, or 0 when the incumbent
            # has utility 0 (every plan then has utility 0; see improvement_target).
            return True, best, tighter(bound, target if not (budget_form and best.utility == 0) else 0.0), rounds
        if ans.option is None:
            return False, best, bound, rounds           # time limit or engine failure
        ev = evaluate(problem.instance, ans.option)
        if is_feasible(problem, ev) and _better(problem, ev, best):
            best = ev
            continue
        nogoods.append(ev.option)
    return False, best, bound, rounds


def _model_fixed_against(problem: Problem, model: CoupledModel, target: float, deadline: float,
                         **build) -> CoupledModel | None:
    """``model`` reduced to the cells a plan at least as good as ``target`` can use (Lagrangian
    and LP reduced-cost fixing against the target itself); None when some query keeps no
    cell, i.e. no plan reaches the target. ``model`` itself if the LP did not finish."""
    from ._lp_fixing import lp_reduced_cost_fixing

    keep, _, _ = lp_reduced_cost_fixing(problem, model, target,
                                        min(0.25 * max(deadline - time.perf_counter(), 0.0), 30.0))
    if keep is None:
        return model
    if not keep.any(axis=1).all():
        return None
    narrowed = build_model(problem, incumbent=target, keep_cells=keep, **build)
    if np.any(np.diff(narrowed.q_start) == 0):
        return None
    return narrowed


def _narrowing_engine(model_for: Callable[[float], CoupledModel | None],
                      make_engine: Callable[[CoupledModel], SolveRelaxation],
                      plain: SolveRelaxation) -> SolveRelaxation:
    """The relaxation for verification solves: each runs on the model fixed against its own
    target (a verification looks only for plans at least that good, so far more cells go
    than against the incumbent); other calls go to ``plain``."""
    def solve(nogoods, hint, time_limit_s, better_than=None):
        if better_than is None:
            return plain(nogoods, hint, time_limit_s)
        t0 = time.perf_counter()
        narrowed = model_for(better_than)
        info = {"verify_fixing_s": time.perf_counter() - t0}
        if narrowed is None:
            return EngineAnswer("infeasible", None, None, {**info, "verify_columns": 0})
        # A no-good whose plan uses a removed cell is already excluded by the narrowed model.
        kept = []
        for plan in nogoods:
            try:
                narrowed.columns_of(plan)
            except KeyError:
                continue
            kept.append(plan)
        ans = make_engine(narrowed)(kept, hint, max(time_limit_s - info["verify_fixing_s"], 0.0),
                                    better_than=better_than)
        return EngineAnswer(ans.status, ans.option, ans.bound,
                            {**ans.info, **info, "verify_columns": narrowed.m}, ans.bound_exact)
    return solve


_FALLBACK_ACTIVE = contextvars.ContextVar("robatch_exact_fallback", default=False)


def _fallback(problem: Problem, engine_name: str, deadline: float) -> SolverResult | None:
    """Solve ``problem`` with another exact engine in the time left (one level deep).

    CP-SAT for HiGHS and CBC (its bounds and infeasibility proofs are exact integer
    arithmetic), HiGHS for CP-SAT. None when no other engine is installed, no time is left,
    or this already is a fallback.
    """
    if _FALLBACK_ACTIVE.get():
        return None
    remaining = deadline - time.perf_counter()
    if remaining <= 0.05:
        return None
    import dataclasses

    if engine_name == "cpsat":
        from .milp import MILPBackend
        backend, opts = MILPBackend(), {"solver": "highs"}
        if "highs" not in MILPBackend.engines():
            return None
    else:
        from .cpsat import CPSATBackend
        backend, opts = CPSATBackend(), {}
    if not backend.available():
        return None
    token = _FALLBACK_ACTIVE.set(True)
    try:
        res = backend.solve(dataclasses.replace(problem, time_limit_s=remaining, options=opts))
    finally:
        _FALLBACK_ACTIVE.reset(token)
    info = dict(res.info)
    info["fallback_engine"] = info.get("engine", backend.name)
    return SolverResult(res.option, res.status, res.bound, info)


def run_exact(problem: Problem, engine_name: str,
              make_engine: Callable[[CoupledModel], SolveRelaxation], *,
              prune: bool = True, call_bounds: bool = True, lp_fixing: bool = True,
              use_greedy: bool = True, dominance: bool = True,
              start: tuple[Evaluation, float | None] | None = None) -> SolverResult:
    """Drive an engine to a verified answer.

    Parameters
    ----------
    make_engine : callable ``model -> solve_relaxation``
        Given the :class:`CoupledModel`, returns ``solve_relaxation(nogoods, hint,
        time_limit_s) -> EngineAnswer``, which solves the engine's relaxation of the model
        with every assignment in ``nogoods`` excluded, warm-started from ``hint`` (an option
        per query, or None).
    prune, call_bounds, dominance : bool
        Passed to :func:`build_model`.
    lp_fixing : bool
        Remove cells by Lagrangian fixing against the greedy plan (needs ``use_greedy``).
    use_greedy : bool
        Run the greedy first: warm start, incumbent, fallback plan at a time limit.
    start : (Evaluation, bound) or None
        A plan already found and a bound already proven (``method="lns"`` hands over its
        search this way): they take the place of the greedy and of the search start.

    Notes
    -----
    Status rules. OPTIMAL: the engine proved the relaxation optimal, its plan passes
    :func:`is_feasible`, and the plan's gap to the proven bound (in real units) is <= 1e-9.
    FEASIBLE: a feasible plan (the engine's, or the greedy's if better) with the tightest
    valid bound. INFEASIBLE: the relaxation (a superset of the feasible plans) is infeasible.
    NO_SOLUTION: the time ran out without any feasible plan.
    """
    t_start = time.perf_counter()
    deadline = t_start + problem.time_limit_s
    budget_form = problem.budget_usd is not None
    tighter = min if budget_form else max
    bound = trivial_bound(problem)
    info: dict[str, Any] = {"engine": engine_name}
    how = SEARCH_STARTS.get(engine_name, SEARCH_STARTS["cbc"])      # another engine: as CBC

    t0 = time.perf_counter()
    if start is not None:
        g_opt, g_bound, why = np.asarray(start[0].option, dtype=np.int64), start[1], "given start"
    else:
        g_opt, g_bound, why = greedy_start(problem) if use_greedy else (None, None, "not used")
    info["greedy_s"] = time.perf_counter() - t0
    info["greedy"] = why
    best: Evaluation | None = None
    if g_opt is not None:
        ev = evaluate(problem.instance, g_opt)
        if is_feasible(problem, ev):
            best = ev
    if g_bound is not None:
        bound = tighter(bound, g_bound)
    info["greedy_utility" if budget_form else "greedy_cost_usd"] = (
        None if best is None else (best.utility if budget_form else best.cost_usd))
    if g_opt is not None and dominance:
        # The engines' bounded seat rows may exclude the greedy plan; its Theorem-5 move is
        # no worse and within them (a feasible warm start). Graded like any plan.
        moved = evaluate(problem.instance, close_partial_calls(problem.table, g_opt))
        info["partial_calls_closed"] = not np.array_equal(moved.option, g_opt)
        if is_feasible(problem, moved) and (best is None or not _better(problem, best, moved)):
            best = moved

    if best is not None and lp_fixing and start is None and _wants_search_start(problem):
        # A near-optimal incumbent first: the fixing below removes a cell only when the LP
        # shows it cannot be in a plan as good as the incumbent, so the closer the incumbent,
        # the smaller the model every engine gets (Qwen3 5,000 x 16: 80,000 columns -> 27,335
        # after 20 s of lns; CP-SAT then proves 1,000 x 16 in 45 s, where it did not in 60).
        t0 = time.perf_counter()
        search_s = min(how.share * problem.time_limit_s, how.max_s)
        found, found_bound = _search_start(problem, search_s, whole=how.whole, stop_gap=how.stop_gap,
                                           min_search_s=how.min_share * search_s, max_free=how.max_free,
                                           sub_time_limit_s=how.sub_time_limit_s)
        info["search_s"] = time.perf_counter() - t0
        if found is not None and is_feasible(problem, found) and _better(problem, found, best):
            best = found
            info["start"] = "lns"
        if found_bound is not None:
            bound = tighter(bound, found_bound)
    t0 = time.perf_counter()
    incumbent = None if best is None or not lp_fixing else (best.utility if budget_form else best.cost_usd)
    model = build_model(problem, prune=prune, call_bounds=call_bounds, incumbent=incumbent,
                        dominance=dominance)
    if model.lp_bound is not None:
        bound = tighter(bound, model.lp_bound)
    if incumbent is not None and model.G:
        # Reduced-cost fixing on the coupled LP with the count cuts (nearly integral), its
        # bound computed from the duals in our own arithmetic: the engines then get the few
        # cells a plan as good as the incumbent can use. Without coupled groups the model is
        # an MCKP and the Lagrangian fixing above is already its LP.
        from ._lp_fixing import lp_reduced_cost_fixing
        keep, lp_b, fix_info = lp_reduced_cost_fixing(
            problem, model, incumbent, min(0.25 * max(deadline - time.perf_counter(), 0.0), 30.0))
        info.update(fix_info)
        if keep is not None:
            bound = tighter(bound, lp_b)
            model = build_model(problem, prune=prune, call_bounds=call_bounds, incumbent=incumbent,
                                dominance=dominance, keep_cells=keep)
    solve_relaxation = make_engine(model)
    info["model_s"] = time.perf_counter() - t0
    info.update(columns=model.m, groups=model.G, pruned_cells=model.n_pruned, fixed_cells=model.n_fixed)

    nogoods: list[np.ndarray] = []
    proved = False
    infeasible = False
    rounds = 0
    last_exact = False
    engine_info: dict[str, Any] = {}

    def verifying_engine() -> SolveRelaxation:
        def model_for(target: float) -> CoupledModel | None:
            return _model_fixed_against(problem, model, target, deadline, prune=prune,
                                        call_bounds=call_bounds, dominance=dominance)
        return _narrowing_engine(model_for, make_engine, solve_relaxation) if lp_fixing else solve_relaxation

    verify_first = (how.verify_first and info.get("start") == "lns" and best is not None
                    and _gap(problem, best, bound) <= VERIFY_FIRST_RTOL
                    and improvement_target(problem, best) is not None)
    info["verify_first"] = verify_first
    if verify_first:
        proved, best, bound, rounds = _verify(problem, verifying_engine(), best, bound, nogoods,
                                              deadline, engine_info)
        info["verification_rounds"] = rounds
    while not verify_first and rounds < MAX_NOGOOD_ROUNDS:
        rounds += 1
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        ans = solve_relaxation(nogoods, None if best is None else best.option, remaining)
        _merge_info(engine_info, ans.info)
        last_exact = ans.bound_exact
        if ans.bound is not None and math.isfinite(ans.bound):
            # With fixing, the model holds only plans at least as good as the incumbent: its
            # bound covers those, and the incumbent's value covers the rest.
            b = ans.bound if incumbent is None else (max(ans.bound, incumbent) if budget_form
                                                     else min(ans.bound, incumbent))
            bound = tighter(bound, b)
        if ans.status == "infeasible":
            if incumbent is not None:      # no plan better than the incumbent: it is optimal
                bound = tighter(bound, incumbent)
            infeasible = best is None
            proved = best is not None       # cannot happen (best is in the relaxation); be safe
            break
        if ans.option is None:
            break                            # limit reached without a plan
        ev = evaluate(problem.instance, ans.option)
        if is_feasible(problem, ev):
            if _better(problem, ev, best):
                best = ev
            proved = ans.status == "optimal"
            break
        # Over budget (or under target) only through the engine's rounding: cut it, re-solve.
        nogoods.append(ev.option)
        if ans.status != "optimal":
            break                            # time-limited: no time to re-solve
    if proved and best is not None and not last_exact and _gap(problem, best, bound) > OPTIMAL_RTOL:
        # A floating-point engine said "optimal", but its bound, widened by what its
        # tolerances can hide, is not within 1e-9 of the plan: on near-identical options
        # HiGHS and CBC certified plans 1e-7 short of the optimum. Ask it for a plan better
        # by VERIFY_RTOL instead; only "there is none" (or a better plan) settles it.
        proved, best, bound, v_rounds = _verify(problem, verifying_engine(), best, bound, nogoods,
                                                deadline, engine_info)
        rounds += v_rounds
        info["verification_rounds"] = v_rounds
    if not proved and not infeasible and engine_info.get("engine_crashed"):
        # The engine died (CBC 2.10.3: SIGSEGV, in a first solve or a verification): another
        # engine settles the claim (or not); its answer is kept only if it proves the optimum.
        alt = _fallback(problem, engine_name, deadline)
        if alt is not None and alt.status == Status.OPTIMAL:
            alt_info = dict(alt.info)
            alt_info["fallback_from"] = {engine_name: {**info, **engine_info}}
            return SolverResult(alt.option, alt.status, alt.bound, alt_info)
    info.update(engine_info)
    info["rounds"] = rounds
    info["nogood_cuts"] = len(nogoods)
    info["wall_s"] = time.perf_counter() - t_start
    cheapest = 0.0
    if problem.table.n_queries:
        ev_cheap = evaluate(problem.instance, problem.table.cheapest_option)
        # With capacities the per-query cheapest plan may overfill a model: it is then no
        # plan at all, and must not be reported as "the cheapest plan found".
        fits = problem.max_queries is None or bool((ev_cheap.model_usage() <= problem.max_queries).all())
        cheapest = ev_cheap.cost_usd if fits else math.inf
    info["cheapest_cost_usd"] = cheapest
    if infeasible or best is None:
        # An engine that failed (solve error, no-good rounds exhausted) must not turn a
        # feasible instance into "no plan", and a floating-point engine's "infeasible" is
        # only taken once CP-SAT (exact integers, a relaxation of the package's tolerance)
        # agrees: HiGHS's presolve once declared a feasible instance infeasible.
        if not (infeasible and last_exact):
            alt = _fallback(problem, engine_name, deadline)
            if alt is not None:
                alt_info = dict(alt.info)
                alt_info["fallback_from"] = {engine_name: dict(info)}
                return SolverResult(alt.option, alt.status, alt.bound, alt_info)
            if infeasible:
                info["note"] = f"{engine_name} reported infeasible; not confirmed by an exact engine"
                return SolverResult(None, Status.NO_SOLUTION, bound, info)
    if infeasible:
        return SolverResult(None, Status.INFEASIBLE, bound, info)
    if best is None:
        return SolverResult(None, Status.NO_SOLUTION, bound, info)
    gap = _gap(problem, best, bound)
    info["gap"] = gap
    status = Status.OPTIMAL if proved and gap <= OPTIMAL_RTOL else Status.FEASIBLE
    if proved and status != Status.OPTIMAL:
        info["note"] = "engine proved its rounded model optimal, but the real-unit gap exceeds 1e-9"
    return SolverResult(best.option, status, bound, info)
