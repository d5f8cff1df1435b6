"""The exact engine on the whole coupled model, in a child process beside the search.

``method="lns"`` moves its plan by neighbourhoods; HiGHS's branch and cut on the whole model
moves the plan *and* the bound (its root cuts). Neither dominates: at n = 1,000 with 10 s,
the neighbourhoods did better on Qwen3 at a tight budget, HiGHS on ``llm_like`` (see
:data:`robatch_opt.solvers.lns.WHOLE_CELLS_PER_S`). So both run at once: HiGHS in a child
interpreter (the second core; a fresh interpreter rather than ``multiprocessing``, for the
reasons given in :func:`robatch_opt.solvers.milp._solve_highs`), the search in this process,
and the search keeps the better plan and the tighter bound.

The child gets the search's plan and proven bound as its start
(:meth:`~robatch_opt.solvers.milp.MILPBackend.solve_from`), an absolute wall-clock deadline,
and solves HiGHS in its own process (never a grandchild: killing the child must stop all of
its work). It is killed when the search ends, by an interrupt or by any error
(:func:`robatch_opt._interrupt.run_child`), and its temporary folder goes with it.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import tempfile
import time

import numpy as np

from .._interrupt import run_child
from .base import Problem, SolverResult

__all__ = ["WholeModelJob"]

#: Seconds the search waits past its deadline for the child's answer.
GRACE_S = 1.0


class WholeModelJob:
    """``with WholeModelJob(problem, plan, bound, deadline_wall) as job:`` HiGHS on the whole
    model until ``deadline_wall`` (``time.time()`` seconds) in a child process.

    ``job.poll()`` returns the child's :class:`SolverResult` once it has ended (None before,
    and None if it failed); ``job.result()`` waits for it until the deadline plus
    :data:`GRACE_S`. Leaving the block kills the child and removes its files.
    """

    def __init__(self, problem: Problem, option: np.ndarray, bound: float, deadline_wall: float):
        self._args = (dataclasses.replace(problem, progress=None, options={"solver": "highs"}),
                      np.asarray(option, dtype=np.int64), float(bound), float(deadline_wall))
        self.deadline_wall = float(deadline_wall)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._child = None
        self._ctx = None
        self._answer: SolverResult | None = None
        self._read = False

    def __enter__(self) -> "WholeModelJob":
        self._tmp = tempfile.TemporaryDirectory(prefix="robatch_whole_")
        try:
            self._in = os.path.join(self._tmp.name, "in.pkl")
            self._out = os.path.join(self._tmp.name, "out.pkl")
            with open(self._in, "wb") as fh:
                pickle.dump(self._args, fh)
            code = ("import sys; from robatch_opt.solvers._whole_model import _child; "
                    "_child(sys.argv[1], sys.argv[2])")
            self._ctx = run_child([sys.executable, "-c", code, self._in, self._out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._child = self._ctx.__enter__()
        except BaseException:
            self._tmp.cleanup()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        try:
            if self._ctx is not None:
                # run_child kills a child still running when its block ends.
                self._ctx.__exit__(*exc)
        finally:
            self._tmp.cleanup()
        return False

    def poll(self) -> SolverResult | None:
        """The child's answer if it has ended, else None."""
        if self._read:
            return self._answer
        if self._child.poll() is None:
            return None
        return self._collect()

    def result(self) -> SolverResult | None:
        """Wait for the child until its deadline plus :data:`GRACE_S`; its answer or None."""
        if self._read:
            return self._answer
        try:
            self._child.wait(timeout=max(self.deadline_wall - time.time(), 0.0) + GRACE_S)
        except subprocess.TimeoutExpired:
            self._read = True
            return None
        return self._collect()

    def _collect(self) -> SolverResult | None:
        self._read = True
        if self._child.returncode == 0 and os.path.exists(self._out):
            with open(self._out, "rb") as fh:
                option, status, bound, info = pickle.load(fh)
            self._answer = SolverResult(option, status, bound, info)
        return self._answer


def _child(in_path: str, out_path: str) -> None:
    """Entry point of the child interpreter."""
    from ..evaluate import evaluate
    from . import milp

    with open(in_path, "rb") as fh:
        problem, option, bound, deadline_wall = pickle.load(fh)
    # HiGHS in this process: a grandchild would outlive a kill of this child.
    milp.HIGHS_CHILD_MIN_COLUMNS = float("inf")
    start = evaluate(problem.instance, option)
    problem = dataclasses.replace(problem, time_limit_s=max(deadline_wall - time.time(), 0.01))
    res = milp.MILPBackend().solve_from(problem, (start, bound))
    with open(out_path + ".part", "wb") as fh:
        pickle.dump((res.option, res.status, res.bound, res.info), fh)
    os.replace(out_path + ".part", out_path)          # the parent sees a whole answer or none
