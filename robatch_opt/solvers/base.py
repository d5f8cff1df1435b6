"""What every backend receives (:class:`Problem`) and returns (:class:`SolverResult`)."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from ..instance import Instance
from ..options import OptionTable
from ..plan import Status

__all__ = ["Problem", "SolverResult", "Backend", "Option", "check_options", "SolveProgress"]


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
    progress: Callable[["SolveProgress"], None] | None = None

    def report(self, **fields: Any) -> None:
        """Tell the caller's progress callback how the search stands (no-op without one).

        Engines call it from their callbacks with ``incumbent`` (utility, or cost in USD in
        the quality form), ``bound`` and ``phase``; a failing callback never breaks a solve.
        """
        if self.progress is None:
            return
        try:
            self.progress(SolveProgress(**fields))
        except Exception:                   # the display is optional, the solve is not
            pass

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


@dataclass(frozen=True)
class SolveProgress:
    """One progress report of a running solve (see :attr:`Problem.progress`).

    Attributes
    ----------
    phase : str
        What runs now, e.g. ``"greedy"``, ``"build"``, ``"search"``.
    incumbent : float or None
        Best plan so far: total utility (budget form) or cost in USD (quality form).
    bound : float or None
        The engine's current bound on the optimum (same unit), when it reports one.
    """

    phase: str = "search"
    incumbent: float | None = None
    bound: float | None = None


@dataclass(frozen=True)
class Option:
    """One keyword option a backend accepts (``solve(..., method=M, name=value)``).

    Attributes
    ----------
    kind : type or tuple of types
        Accepted Python types (``bool`` is never accepted for ``int`` or ``float``).
    default : object
    doc : str
        One line, shown in error messages and ``--help``.
    choices : tuple, optional
        The only accepted values.
    minimum : float, optional
        Smallest accepted number.
    """

    kind: type | tuple[type, ...]
    default: Any
    doc: str
    choices: tuple | None = None
    minimum: float | None = None


def check_options(method: str, declared: Mapping[str, Option], given: Mapping[str, Any]) -> None:
    """Refuse unknown or mistyped backend options before any work.

    Raises
    ------
    robatch_opt.errors.UnknownOptionError
        An option ``method`` does not declare (the message lists the valid names and the
        closest one), or a value of the wrong type, outside ``choices`` or below ``minimum``.
    """
    from ..errors import UnknownOptionError

    valid = ", ".join(sorted(declared)) or "none"
    for name, value in given.items():
        if name not in declared:
            close = difflib.get_close_matches(str(name), list(declared) + ["time_limit_s", "seed",
                                                                           "max_queries_per_model",
                                                                           "min_mean_utility", "budget"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownOptionError(f"`{name}`: method {method!r} has no option {name!r}{hint} "
                                     f"(its options: {valid})")
        spec = declared[name]
        if isinstance(value, np.bool_):                    # NumPy scalars as their Python values
            value = bool(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            want = " or ".join(k.__name__ for k in kinds)
            raise UnknownOptionError(f"`{name}`: method {method!r} expects {want}, got "
                                     f"{type(value).__name__} {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise UnknownOptionError(f"`{name}`: unknown value {value!r} for method {method!r}; "
                                     f"valid: {', '.join(map(str, spec.choices))}")
        if isinstance(value, float) and not math.isfinite(value):
            # NaN passed the minimum test (every comparison is false) and inf is no setting.
            raise UnknownOptionError(f"`{name}`: must be a finite number, got {value!r}")
        if spec.minimum is not None and value is not None and value < spec.minimum:
            raise UnknownOptionError(f"`{name}`: must be >= {spec.minimum:g}, got {value!r}")


class Backend(Protocol):
    """A solver backend: ``name``, ``options`` (what it accepts), ``available()``, ``solve(problem)``."""

    name: str
    options: Mapping[str, Option]

    def available(self) -> bool: ...

    def solve(self, problem: Problem) -> SolverResult: ...
