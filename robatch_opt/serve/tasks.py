"""A task with exact answers generated on the spot: small-integer arithmetic.

Used to measure real batch degradation on a real model (``benchmarks/bench_serve.py``) and by
the serving tests. Nothing is downloaded: the questions, the answers and the few-shot system
prompt are generated from a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import number

__all__ = ["TaskSet", "arithmetic"]


@dataclass(frozen=True)
class TaskSet:
    """Questions with exact answers and the system prompt (few-shot examples) of their task.

    Attributes
    ----------
    name : str
    system_prompt : str
    questions : tuple of str
    answers : tuple of str
    """

    name: str
    system_prompt: str
    questions: tuple
    answers: tuple

    def grader(self):
        """The numeric grader of :mod:`robatch_opt.serve.result` on these answers."""
        return number([float(a) for a in self.answers])


def _question(a: int, op: str, b: int) -> str:
    return f"What is {a} {op} {b}?"


def arithmetic(n: int, *, seed: int = 0, max_operand: int = 20, ops: str = "+-") -> TaskSet:
    """``n`` questions "What is a + b?" / "What is a - b?" with ``0 <= a, b <= max_operand``.

    Subtractions have ``a >= b`` (non-negative answers). The system prompt holds two
    worked examples in the numbered batch format (one of one question, one of three), with
    operands drawn from a separate stream so they rarely repeat a question.

    Parameters
    ----------
    n : int
        Number of questions, >= 1.
    seed : int
    max_operand : int
    ops : str
        Operators to draw from, a subset of ``"+-"``.

    Examples
    --------
    >>> t = arithmetic(3, seed=1)
    >>> len(t.questions), t.questions[0].startswith("What is")
    (3, True)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n`: must be an integer >= 1, got {n!r}")
    if not ops or set(ops) - set("+-"):
        raise ValueError(f"`ops`: must be a non-empty subset of '+-', got {ops!r}")
    rng = np.random.default_rng(seed)

    def draw(r):
        a, b = (int(v) for v in r.integers(0, max_operand + 1, size=2))
        op = ops[int(r.integers(len(ops)))]
        if op == "-" and a < b:
            a, b = b, a
        return a, op, b, a + b if op == "+" else a - b

    qs, ans = [], []
    for _ in range(n):
        a, op, b, v = draw(rng)
        qs.append(_question(a, op, b))
        ans.append(str(v))
    ex = [draw(np.random.default_rng([seed, 1, k])) for k in range(4)]
    lines = ["Examples:", "", f"Q1: {_question(*ex[0][:3])}", f"A1: {ex[0][3]}", ""]
    lines += [f"Q{j}: {_question(*e[:3])}" for j, e in enumerate(ex[1:], 1)]
    lines += [f"A{j}: {e[3]}" for j, e in enumerate(ex[1:], 1)]
    return TaskSet(name="arithmetic", system_prompt="\n".join(lines), questions=tuple(qs), answers=tuple(ans))
