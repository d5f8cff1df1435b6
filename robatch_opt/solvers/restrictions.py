"""Best of the restrictions, by construction: the joint plan never loses to its own baselines.

A plan of a restriction of the instance (routing-only: batch size 1; batching-only: one
model with its batch sizes) is a plan of the joint instance, so the joint optimum is at
least each restriction's. A heuristic (or a time-limited engine) need not keep that order:
on an audit instance the greedy's joint plan had mean utility 0.6579 where the
batching-only greedy plan had 0.6677. :func:`best_of_restrictions` solves the restrictions
with the same backend (the greedy's take milliseconds to seconds) and keeps the best plan
that is feasible for the joint problem; the joint bound stays the reported bound (a
restriction's bound does not bound the joint problem). ``info["restriction"]`` names the
winner (``"joint"``, ``"routing-only"``, ``"batching-only:<model>"`` or
``"single-model:<model>"``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator

import numpy as np

from ..errors import AssignmentError, InstanceError, SolverError
from ..evaluate import Evaluation, evaluate, validate_assignment
from ..instance import Instance
from ..options import compile_options
from ..plan import Status
from .base import Problem, SolverResult

__all__ = ["restrictions", "restriction_labels", "restriction_columns", "build_restriction", "lift_option",
           "best_of_restrictions", "best_and_evaluation"]

#: Seconds an exact backend gets at least for one restriction once the joint solve used its
#: time; below this, the restriction is solved by the greedy instead.
MIN_RESTRICTION_S = 0.05


def restriction_columns(inst: Instance, label: str) -> np.ndarray:
    """Options of ``inst`` that restriction ``label`` keeps (without building it)."""
    om, ob = np.asarray(inst.option_model), np.asarray(inst.option_batch)
    if label == "routing-only":
        return np.flatnonzero(ob == 1)
    kind, name = label.split(":", 1)
    k = inst.model_index(name)
    return np.flatnonzero((om == k) & ((ob == 1) if kind == "single-model" else True))


def restriction_labels(inst: Instance) -> list[str]:
    """Labels of :func:`restrictions`, in order, before any is built."""
    out = ["routing-only"] if any(b > 1 for _, b in inst.options) else []
    for m in inst.models:
        if inst.n_models > 1:
            out.append(f"batching-only:{m.name}")
        if 1 in m.batch_sizes and len(m.batch_sizes) > 1:
            out.append(f"single-model:{m.name}")
    return out


def build_restriction(inst: Instance, label: str) -> Instance:
    """The sub-instance of ``label`` (InstanceError if it leaves a query without an option)."""
    if label == "routing-only":
        return inst.restrict(batch_sizes=[1])
    kind, name = label.split(":", 1)
    return inst.restrict(models=[name], batch_sizes=[1] if kind == "single-model" else None)


def restrictions(inst: Instance) -> Iterator[tuple[str, Instance]]:
    """``(label, sub-instance)``: routing-only, every single model with its batch sizes
    (batching-only) and without batching (single-model).

    The set is closed: the restrictions of a restriction are among them, so solving a
    restriction on its own (which applies this step too) never finds a plan the joint
    solve did not consider. Restrictions equal to the instance itself, or that leave some
    query without an option, are skipped.
    """
    for label in restriction_labels(inst):
        try:
            yield label, build_restriction(inst, label)
        except InstanceError:
            continue


def lift_option(inst: Instance, sub: Instance, option: np.ndarray) -> np.ndarray:
    """A sub-instance's option per query as options of ``inst`` (same model name and batch size)."""
    index = {(inst.models[k].name, b): j for j, (k, b) in enumerate(inst.options)}
    table = np.array([index[(sub.models[k].name, b)] for k, b in sub.options], dtype=np.int64)
    return table[np.asarray(option, dtype=np.int64)]


def _sub_problem(problem: Problem, sub: Instance, time_limit_s: float) -> Problem:
    cap = None
    if problem.max_queries is not None:
        names = [m.name for m in problem.instance.models]
        cap = np.array([problem.max_queries[names.index(m.name)] for m in sub.models], dtype=np.int64)
    return dataclasses.replace(problem, instance=sub, table=compile_options(sub), max_queries=cap,
                               time_limit_s=max(time_limit_s, MIN_RESTRICTION_S))


def _c(a, dtype) -> np.ndarray:
    """A C-contiguous read-only view (a copy only if dtype or layout differ), as the kernels
    take their arrays (one compiled specialization)."""
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


def _feasible(problem: Problem, ev: Evaluation) -> bool:
    from ._coupled_model import is_feasible
    return is_feasible(problem, ev)


def _better(problem: Problem, a: Evaluation, b: Evaluation | None) -> bool:
    if b is None:
        return True
    if problem.budget_usd is not None:
        return a.utility > b.utility
    return a.cost_usd < b.cost_usd


class _LagrangianScreen:
    """Skips restrictions that provably cannot beat the joint plan (budget form).

    For any price ``lam >= 0``, ``L_R(lam) = lam * B' + sum_i max_{j in R} (u[i, j] - lam
    c[i, j])`` bounds the utility of every plan of restriction ``R`` within the budget
    (``B'`` = budget with the package's 1e-12; the exact cost is never below the amortized
    one). With the greedy's threshold price this is one NumPy pass, and at scale it is far
    below the joint plan's utility: the restriction is then not solved (the greedy at
    n = 200,000 x 16 spent 0.61 s on restrictions against 0.12 s on the joint plan).

    When the backend also reports the joint problem's own ``L(lam)`` (the greedy's
    ``info["lagrangian_bound"]``, the LP value read off its walk), the pass stops early:
    ``L_R(lam) = L(lam) - sum_i d_i`` with ``d_i = max_j (u - lam c) - max_{j in R} (u - lam
    c) >= 0``, so every prefix of the queries gives an upper bound on ``L_R``, and at scale a
    few thousand queries already push it below the joint plan (the full pass took 84 ms of
    a 0.41 s greedy solve at n = 10^6 x 16). A restriction the prefix does not screen is
    followed to the last query, where the bound equals the full pass's. (A restriction that
    cannot serve some query beyond the prefix that screened it is reported screened out: it
    cannot win either way; the full pass leaves such a one to its build, which refuses it.)
    The greedy omits ``lagrangian_bound`` when its walk has no break item (a budget within
    rounding of a ratio bin's cumulative cost): the full pass runs then.
    """

    #: Queries in the first block of the early-stopping pass (each next block is twice as long).
    FIRST_BLOCK = 1 << 13

    def __init__(self, problem: Problem, result: SolverResult, best: Evaluation | None, labels: list[str]):
        self.on = False
        lam = result.info.get("threshold_ratio") if result.info else None
        if (problem.budget_usd is None or best is None or lam is None or not np.isfinite(lam) or lam < 0
                or not labels):
            return
        t = problem.table
        inst = problem.instance
        # A single model without batching is a subset of routing-only and of that model's
        # batching-only, so the smaller of their bounds bounds it too: its own row is not
        # computed (five rows instead of nine on four models; the pass at 10^6 x 16 took
        # 63 ms of a 268 ms greedy solve).
        self.supersets = {label: [s for s in ("routing-only", "batching-only:" + label.split(":", 1)[1])
                                  if s in labels]
                          for label in labels if label.startswith("single-model:")}
        labels = [label for label in labels if not self.supersets.get(label)]
        cols = [restriction_columns(inst, label) for label in labels]
        self.const = lam * problem.budget_usd * (1 + 1e-12)
        self.floor = best.utility
        joint = result.info.get("lagrangian_bound")
        if joint is not None and np.isfinite(joint) and t.n_queries > 2 * self.FIRST_BLOCK:
            bound = self._early_stopping(t, float(lam), cols, float(joint))
        else:
            # Per restriction and query: max over its admissible options of u - lam c.
            rows = _lagrangian_terms(t, float(lam), cols, 0, t.n_queries)
            bound = [self.const + float(r.sum()) if np.isfinite(r).all() else np.inf for r in rows]
        self.bound = dict(zip(labels, bound))
        self.on = True

    def _screens(self, bound: float) -> bool:
        # A margin far above the float noise of the sums (n eps relative).
        return bound + 1e-9 * (abs(bound) + abs(self.const)) < self.floor

    def _early_stopping(self, t, lam: float, cols: list[np.ndarray], joint: float) -> list[float]:
        """Each restriction's bound ``L(lam) - sum of d_i`` over a growing prefix of the
        queries, until every restriction is screened out or the queries run out (``inf``:
        a query the restriction cannot serve, which its own build reports)."""
        R = len(cols)
        deficit = np.zeros(R)
        open_ = np.ones(R, dtype=bool)
        everything = np.arange(t.n_options)
        a, size = 0, self.FIRST_BLOCK
        while a < t.n_queries and open_.any():
            b = min(t.n_queries, a + size)
            rows = _lagrangian_terms(t, lam, [everything] + [c for c, o in zip(cols, open_) if o], a, b)
            for r, row in zip(np.flatnonzero(open_), rows[1:]):
                if not np.isfinite(row).all():
                    deficit[r], open_[r] = -np.inf, False
                    continue
                deficit[r] += float((rows[0] - row).sum())
                if self._screens(joint - deficit[r]):
                    open_[r] = False
            a, size = b, 2 * size
        return [joint - d for d in deficit]

    def cannot_win(self, label: str) -> bool:
        if not self.on:
            return False
        if self.supersets.get(label):
            # Bounded by each superset's bound: it cannot win if one of them cannot.
            return any(self.cannot_win(s) for s in self.supersets[label])
        if label not in self.bound:
            return False
        return self._screens(self.bound[label])


def _lagrangian_terms(t, lam: float, cols: list[np.ndarray], a: int, b: int) -> np.ndarray:
    """``out[r, i - a] = max over admissible j in cols[r] of u[i, j] - lam c[i, j]`` (``-inf``
    if none), for the queries ``a <= i < b`` of option table ``t``."""
    from .greedy import PARALLEL_MIN_CELLS

    out = np.empty((len(cols), b - a))
    if (b - a) * t.n_options < PARALLEL_MIN_CELLS:
        # Small: NumPy (no kernel to compile for a few milliseconds of work).
        adm = np.asarray(t.admissible[a:b], dtype=bool)
        v = np.where(adm, t.utility[a:b] - lam * np.where(adm, t.cost[a:b], 0.0), -np.inf)
        for r, c in enumerate(cols):
            out[r] = v[:, c].max(axis=1)
        return out
    # Large: one compiled pass over the rows instead of a column copy per restriction; the
    # same float operations, so the bounds are bit-identical either way.
    from ..kernels.greedy_kernels import _restriction_best

    member = np.zeros((len(cols), t.n_options), dtype=np.int64)
    for r, c in enumerate(cols):
        member[r, c] = 1
    _restriction_best(_c(t.cost[a:b], np.float64), _c(t.utility[a:b], np.float64),
                      _c(t.admissible[a:b], np.bool_), lam, member, out)
    return out


def best_of_restrictions(problem: Problem, backend, result: SolverResult, deadline: float) -> SolverResult:
    """The best of ``result`` and the restrictions' plans by the same ``backend``.

    Parameters
    ----------
    problem : Problem
        The joint problem ``result`` answers.
    backend
        The backend that produced ``result``; it solves each restriction too (the greedy
        instead, for an exact backend whose time is used up).
    result : SolverResult
    deadline : float
        ``time.perf_counter()`` value by which exact restriction solves should end.

    Returns
    -------
    SolverResult
        ``result`` itself when it is proven optimal; otherwise the best feasible plan, with
        the joint bound, ``info["restriction"]`` naming the winner and
        ``info["restriction_values"]`` every candidate's utility (budget form) or cost.
    """
    return best_and_evaluation(problem, backend, result, deadline)[0]


def best_and_evaluation(problem: Problem, backend, result: SolverResult,
                        deadline: float) -> tuple[SolverResult, Evaluation | None]:
    """:func:`best_of_restrictions`, and the winner's :class:`~robatch_opt.evaluate.Evaluation`
    on the joint instance when it was computed (None otherwise), so that the front door
    grades the plan without evaluating it a second time."""
    info = dict(result.info)
    if result.status in (Status.OPTIMAL, Status.INFEASIBLE):
        info["restriction"] = "joint" if result.option is not None else None
        return dataclasses.replace(result, info=info), None
    inst = problem.instance
    budget_form = problem.budget_usd is not None
    best = None
    if result.option is not None:
        try:
            ev = evaluate(inst, result.option)
        except AssignmentError:
            return result, None              # the front door reports the invalid assignment
        if _feasible(problem, ev):
            best = ev
    winner = "joint" if best is not None else None
    values = {"joint": None if best is None else (best.utility if budget_form else best.cost_usd)}
    t0 = time.perf_counter()
    labels = [label for label in restriction_labels(inst) if len(restriction_columns(inst, label))]
    prune = _LagrangianScreen(problem, result, best, labels)
    skipped = []
    for label in restriction_labels(inst):
        if prune.cannot_win(label):
            skipped.append(label)
            continue
        try:
            sub = build_restriction(inst, label)
        except InstanceError:
            continue
        remaining = deadline - time.perf_counter()
        how = backend
        if getattr(backend, "name", "") != "greedy" and remaining < MIN_RESTRICTION_S:
            from .greedy import GreedyBackend
            how = GreedyBackend()
        try:
            opts = problem.options if how is backend else {}
            res = how.solve(dataclasses.replace(_sub_problem(problem, sub, remaining), options=opts))
            if res.option is None:
                continue
            ev = evaluate(inst, lift_option(inst, sub, validate_assignment(sub, res.option)))
        except (InstanceError, AssignmentError, SolverError) as exc:
            # A restriction is an extra candidate: a backend that cannot solve it (e.g. a
            # user's backend written for the joint instance only) costs the candidate only.
            info.setdefault("restriction_errors", {})[label] = f"{type(exc).__name__}: {exc}"
            continue
        values[label] = ev.utility if budget_form else ev.cost_usd
        if _feasible(problem, ev) and _better(problem, ev, best):
            best, winner = ev, label
    info["restriction"] = winner
    info["restriction_values"] = values
    info["restrictions_screened_out"] = skipped
    info["restrictions_s"] = time.perf_counter() - t0
    if winner in (None, "joint"):
        return dataclasses.replace(result, info=info), best
    return SolverResult(best.option, Status.FEASIBLE, result.bound, info), best
