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

__all__ = ["restrictions", "lift_option", "best_of_restrictions"]

#: Seconds an exact backend gets at least for one restriction once the joint solve used its
#: time; below this, the restriction is solved by the greedy instead.
MIN_RESTRICTION_S = 0.05


def restrictions(inst: Instance) -> Iterator[tuple[str, Instance]]:
    """``(label, sub-instance)``: routing-only, every single model with its batch sizes
    (batching-only) and without batching (single-model).

    The set is closed: the restrictions of a restriction are among them, so solving a
    restriction on its own (which applies this step too) never finds a plan the joint
    solve did not consider. Restrictions equal to the instance itself, or that leave some
    query without an option, are skipped.
    """
    if any(b > 1 for _, b in inst.options):
        try:
            yield "routing-only", inst.restrict(batch_sizes=[1])
        except InstanceError:
            pass
    for m in inst.models:
        if inst.n_models > 1:
            try:
                yield f"batching-only:{m.name}", inst.restrict(models=[m.name])
            except InstanceError:
                continue
        if 1 in m.batch_sizes and len(m.batch_sizes) > 1 and (inst.n_models > 1 or len(m.batch_sizes) > 1):
            try:
                yield f"single-model:{m.name}", inst.restrict(models=[m.name], batch_sizes=[1])
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


def _feasible(problem: Problem, ev: Evaluation) -> bool:
    from ._coupled_model import is_feasible
    return is_feasible(problem, ev)


def _better(problem: Problem, a: Evaluation, b: Evaluation | None) -> bool:
    if b is None:
        return True
    if problem.budget_usd is not None:
        return a.utility > b.utility
    return a.cost_usd < b.cost_usd


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
    info = dict(result.info)
    if result.status in (Status.OPTIMAL, Status.INFEASIBLE):
        info["restriction"] = "joint" if result.option is not None else None
        return dataclasses.replace(result, info=info)
    inst = problem.instance
    budget_form = problem.budget_usd is not None
    best = None
    if result.option is not None:
        try:
            ev = evaluate(inst, result.option)
        except AssignmentError:
            return result                    # the front door reports the invalid assignment
        if _feasible(problem, ev):
            best = ev
    winner = "joint" if best is not None else None
    values = {"joint": None if best is None else (best.utility if budget_form else best.cost_usd)}
    t0 = time.perf_counter()
    for label, sub in restrictions(inst):
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
    info["restrictions_s"] = time.perf_counter() - t0
    if winner in (None, "joint"):
        return dataclasses.replace(result, info=info)
    return SolverResult(best.option, Status.FEASIBLE, result.bound, info)
