"""Solver backends, registered by name and imported lazily.

``robatch_opt.solve(method=NAME)`` looks ``NAME`` up here *before* any work. Each backend
module defines a class with ``name``, ``available()`` and ``solve(problem) -> SolverResult``.
"""

from __future__ import annotations

import importlib
from typing import Callable

from ..errors import SolverUnavailableError, UnknownMethodError
from .base import Backend, Problem, SolverResult

__all__ = ["Problem", "SolverResult", "Backend", "register_backend", "get_backend",
           "available_methods", "registered_methods"]

# name -> "module:Class" (imported on first use) or a factory registered at run time.
_REGISTRY: dict[str, str | Callable[[], Backend]] = {
    "greedy": "robatch_opt.solvers.greedy:GreedyBackend",
    "cpsat": "robatch_opt.solvers.cpsat:CPSATBackend",
    "milp": "robatch_opt.solvers.milp:MILPBackend",
    "lns": "robatch_opt.solvers.lns:LNSBackend",
    "batching_flow": "robatch_opt.special_case:BatchingFlowBackend",
}

#: Pseudo-method resolved by :func:`robatch_opt.solve` itself.
AUTO = "auto"


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Register a backend factory under ``name`` (e.g. a user's own heuristic)."""
    if not isinstance(name, str) or not name or name == AUTO:
        raise ValueError(f"`name`: must be a non-empty string other than {AUTO!r}, got {name!r}")
    _REGISTRY[name] = factory


def registered_methods() -> tuple[str, ...]:
    """Every registered name (including ``"auto"``), installed or not."""
    return (AUTO, *_REGISTRY)


def _load(name: str) -> Backend:
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module, cls = entry.split(":")
        try:
            return getattr(importlib.import_module(module), cls)()
        except ImportError as exc:
            raise SolverUnavailableError(f"method {name!r} could not be imported: {exc}") from exc
    return entry()


def available_methods() -> tuple[str, ...]:
    """Names whose engine is installed here (``"auto"`` always is)."""
    out = [AUTO]
    for name in _REGISTRY:
        try:
            if _load(name).available():
                out.append(name)
        except SolverUnavailableError:
            pass
    return tuple(out)


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``.

    Raises
    ------
    UnknownMethodError
        ``name`` is not registered; the message lists the valid names.
    SolverUnavailableError
        Registered, but its engine is not installed.
    """
    if name not in _REGISTRY:
        raise UnknownMethodError(f"`method`: unknown method {name!r}; valid: {', '.join(registered_methods())}")
    backend = _load(name)
    if not backend.available():
        raise SolverUnavailableError(
            f"`method`: {name!r} is not available in this environment; available: {', '.join(available_methods())}")
    return backend
