"""robatch_opt: joint routing and batch prompting of LLM queries under a money budget.

One front door (:func:`solve`), one solver-independent grader (:func:`evaluate`), backends
registered by name (``greedy``, ``cpsat``, ``milp``).
"""

from __future__ import annotations

import sys as _sys

# `python -m robatch_opt` loads this package (about half a second) before its __main__ installs
# the command line's signal handling: a Ctrl-C then printed Python's traceback. While it loads
# in that role (argv[0] is "-m" until runpy has found __main__), the console script's guard
# ends it the same way, in one line. An ordinary import installs nothing.
_restore_signals = None
if _sys.argv[:1] == ["-m"] and "robatch_opt" in getattr(_sys, "orig_argv", ()):
    try:
        from robatch_opt_cli import install_loading_guard as _install_loading_guard
    except ImportError:                # the package without its console-script guard
        pass
    else:
        _restore_signals = _install_loading_guard()

from .errors import (AssignmentError, FormatError, InfeasibleBudgetError, InstanceError, RobatchError,
                     SolverError, SolverUnavailableError, UnknownMethodError, UnknownOptionError)
from .evaluate import Call, CallTable, CostBreakdown, Evaluation, evaluate
from .instance import Instance, Model, Task
from .io import load, save
from .options import OptionTable, compile_options
from .plan import Plan, Status
from .solve import budget_from_fraction, reference_costs, solve
from .solvers import available_methods, register_backend, registered_methods
from . import workloads
from . import reductions
from . import proxy
from .frontier import Frontier, frontier
from . import baselines
from . import datasets
from . import distributed          # no dask or zarr import until used
from . import serve

__version__ = "0.1.0"

if _restore_signals is not None:
    _restore_signals()


def warm_up(*, quality: bool = True, parallel: bool = False, frontier: bool = False,
            processes: int | None = None) -> float:
    """Compile the solver kernels now (or load them from the per-user cache); their seconds.

    The first solve after an install compiles the Numba kernels it runs, in its own process
    and one after another. A long-running process (a server, a notebook, a benchmark) can
    pay that up front instead, shared between this process and one child per further core
    (``processes``; at most 4): on two cores the budget form's kernels (``quality=False``)
    took 7-10 s here, against 11.7 s for the first solve's own compile of the same
    instance. ``robatch-opt`` does this itself before its first solve. ``quality`` also
    compiles the quality form's kernels, ``parallel`` what instances of at least
    ``robatch_opt.solvers.greedy.PARALLEL_MIN_CELLS`` query x option cells run,
    ``frontier`` the frontier's walk. See :func:`robatch_opt.kernels.warmup.warm_up`.
    """
    from .kernels.warmup import warm_up as _warm_up

    return _warm_up(quality=quality, parallel=parallel, frontier=frontier, processes=processes)


def __getattr__(name):
    # ro.online imports scikit-learn and SciPy (~1 s): loaded on first use, not with the package.
    if name == "online":
        import importlib
        return importlib.import_module(".online", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Model", "Task", "Instance", "OptionTable", "compile_options",
    "evaluate", "Evaluation", "Call", "CallTable", "CostBreakdown",
    "save", "load",
    "solve", "Plan", "Status", "budget_from_fraction", "reference_costs", "warm_up",
    "available_methods", "registered_methods", "register_backend",
    "RobatchError", "InstanceError", "AssignmentError", "FormatError", "UnknownMethodError", "UnknownOptionError",
    "SolverUnavailableError", "InfeasibleBudgetError", "SolverError",
    "workloads",
    "reductions",
    "proxy",
    "frontier", "Frontier", "baselines",
    "datasets",
    "online",
    "distributed",
    "serve",
]
