"""Exception hierarchy of robatch_opt.

Every error a user can cause by bad input is a :class:`ValueError` subclass whose message
names the offending field (and index, where there is one), so that callers can catch
``ValueError`` generically and the CLI can print a single line.
"""

from __future__ import annotations

__all__ = [
    "RobatchError",
    "InstanceError",
    "AssignmentError",
    "FormatError",
    "UnknownMethodError",
    "UnknownOptionError",
    "SolverUnavailableError",
    "InfeasibleBudgetError",
    "SolverError",
]


class RobatchError(Exception):
    """Base class of every error raised on purpose by robatch_opt."""


class InstanceError(RobatchError, ValueError):
    """An instance field is malformed: wrong shape, NaN, out of range, inconsistent.

    Parameters
    ----------
    field : str
        Dotted path of the bad field, e.g. ``"models[2].batch_sizes"`` or ``"utility[17, 3]"``.
    message : str
        What is wrong with it.
    source : str, optional
        The file the instance was read from; prefixed to the message.
    """

    def __init__(self, field: str, message: str, *, source: str | None = None):
        self.field = field
        self.detail = message
        self.source = source
        super().__init__(f"{source}: `{field}`: {message}" if source else f"`{field}`: {message}")

    def located(self, source: str) -> "InstanceError":
        """The same error with the file it came from prefixed (already located: unchanged)."""
        return self if self.source else InstanceError(self.field, self.detail, source=source)


class AssignmentError(RobatchError, ValueError):
    """An assignment (option per query) handed to :func:`evaluate` is not a valid plan."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"`{field}`: {message}")


class FormatError(RobatchError, ValueError):
    """A file or JSON text could not be read as an instance or a plan (malformed, truncated)."""


class UnknownMethodError(RobatchError, ValueError):
    """``method=`` names no registered backend; the message lists the valid names."""


class UnknownOptionError(RobatchError, TypeError, ValueError):
    """A keyword option the chosen backend does not declare, or a value of the wrong kind.

    The message lists the backend's valid options and suggests the closest name.
    """


class SolverUnavailableError(RobatchError, RuntimeError):
    """The backend is registered but its engine is not installed in this environment."""


class InfeasibleBudgetError(RobatchError, ValueError):
    """No plan fits the budget (or reaches the quality target).

    Attributes
    ----------
    budget_usd : float or None
        The budget that was asked for (None in the quality form).
    cheapest_cost_usd : float
        Exact cost of the cheapest plan the solver found (``inf`` if none was found).
    lower_bound_usd : float
        A proven lower bound on the cost of every plan (the amortized minimum).
    proven : bool
        True when infeasibility is proven (budget below ``lower_bound_usd`` or an exact
        engine proved it); False when only the heuristic failed to find a plan.
    """

    def __init__(self, message: str, *, budget_usd: float | None, cheapest_cost_usd: float,
                 lower_bound_usd: float, proven: bool):
        self.budget_usd = budget_usd
        self.cheapest_cost_usd = cheapest_cost_usd
        self.lower_bound_usd = lower_bound_usd
        self.proven = proven
        super().__init__(message)


class SolverError(RobatchError, RuntimeError):
    """A backend returned something the shared evaluator rejects (a bug, never bad input)."""
