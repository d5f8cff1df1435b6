"""What every backend receives (:class:`Problem`) and returns (:class:`SolverResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import numpy as np

from ..instance import Instance
from ..options import OptionTable
from ..plan import Status

__all__ = ["Problem", "SolverResult", "Backend"]


@dataclass(frozen=True, eq=False)
class Problem:
    """One RwB problem, validated by :func:`robatch_opt.solve` before a backend sees it.

    Attributes
    ----------
    instance : Instance
    table : OptionTable
        The compiled numeric core of ``instance``.
    budget_usd : float or None
        Budget form: maximise utility subject to exact cost <= budget_usd.
    min_total_utility : float or None
        Quality form: minimise exact cost subject to total utility >= this
        (``min_mean_utility * n``). Exactly one of the two is set.
    max_queries : ndarray of int64, shape (K,), or None
        Per-model capacity (ECCOS workload limit); ``None`` means unlimited.
    time_limit_s : float
        Wall-clock limit for the backend's search.
    seed : int
    options : mapping
        Backend-specific keyword arguments passed through ``solve(**options)``.
    """

    instance: Instance
    table: OptionTable
    budget_usd: float | None
    min_total_utility: float | None
    max_queries: np.ndarray | None
    time_limit_s: float
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def form(self) -> str:
        return "budget" if self.budget_usd is not None else "quality"


@dataclass(frozen=True, eq=False)
class SolverResult:
    """A backend's raw answer, before the shared evaluator grades it.

    Attributes
    ----------
    option : ndarray of int64, shape (n,), or None
        Option per query; None when no plan was found.
    status : Status
        OPTIMAL only if the engine proved it; FEASIBLE with a valid bound otherwise.
    bound : float
        Budget form: upper bound on the optimal utility. Quality form: lower bound on the
        optimal cost in USD. Must be valid (never a guess).
    info : mapping
        Free-form details (engine, build/solve seconds, nodes, cheapest cost found...).
    """

    option: np.ndarray | None
    status: Status
    bound: float
    info: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A solver backend: ``available()`` and ``solve(problem)``."""

    name: str

    def available(self) -> bool: ...

    def solve(self, problem: Problem) -> SolverResult: ...
