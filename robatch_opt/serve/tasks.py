"""Task sets with exact answers, to measure real batch degradation on a real model
(``benchmarks/bench_serve.py``) and to test serving.

- :func:`facts`: short-answer facts bundled with the package (country capitals from the CIA
  World Factbook, element symbols from the IUPAC periodic table), each task with its source;
- :func:`arithmetic`: small-integer sums and differences generated from a seed.

Nothing is downloaded. Each task set carries a few-shot system prompt in the numbered batch
format, made of items that are not among its questions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import exact_match, number

__all__ = ["TaskSet", "arithmetic", "facts", "FACT_TASKS"]

#: Tasks of :func:`facts`.
FACT_TASKS = ("capitals", "elements")


@dataclass(frozen=True)
class TaskSet:
    """Questions with exact answers and the system prompt (few-shot examples) of their task.

    Attributes
    ----------
    name : str
    system_prompt : str
    questions : tuple of str
    answers : tuple of str
        The reference answer of each question.
    accepted : tuple of tuple of str
        Every accepted spelling of each answer (the reference first).
    source : str
        Where the answers come from.
    """

    name: str
    system_prompt: str
    questions: tuple
    answers: tuple
    accepted: tuple = ()
    source: str = ""

    def grader(self):
        """A grader ``(answer, i) -> 0.0 or 1.0``: exact match against any accepted spelling
        (case, spaces and a final period ignored); for arithmetic, the first number.

        Returns
        -------
        callable
            ``grade(answer, i) -> float``, ``i`` the index of the question in
            :attr:`questions`: :func:`number` of the answers for the task ``"arithmetic"``,
            else :func:`exact_match` of :attr:`accepted` (of :attr:`answers` when
            ``accepted`` is empty). Fit for :meth:`ServeResult.to_log` when the run's queries
            are these questions in order.
        """
        if self.name == "arithmetic":
            return number([float(a) for a in self.answers])
        return exact_match(self.accepted or self.answers)


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
        Seed of the questions' random draws (the few-shot examples use streams derived from
        it).
    max_operand : int
        Largest operand (inclusive).
    ops : str
        Operators to draw from, a subset of ``"+-"``.

    Returns
    -------
    TaskSet
        Named ``"arithmetic"``; each answer is the result as text (e.g. ``"7"``), its only
        accepted spelling.

    Raises
    ------
    ValueError
        ``n`` is not an integer >= 1, or ``ops`` is empty or holds something other than
        ``+`` and ``-``.

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
    return TaskSet(name="arithmetic", system_prompt="\n".join(lines), questions=tuple(qs), answers=tuple(ans),
                   accepted=tuple((a,) for a in ans), source=f"generated: arithmetic(n={n}, seed={seed})")


def _few_shot(examples: list[tuple[str, str]]) -> str:
    """Two worked examples in the numbered batch format: one question, then the rest."""
    first, rest = examples[0], examples[1:]
    lines = ["Examples:", "", f"Q1: {first[0]}", f"A1: {first[1]}", ""]
    lines += [f"Q{j}: {q}" for j, (q, _) in enumerate(rest, 1)]
    lines += [f"A{j}: {a}" for j, (_, a) in enumerate(rest, 1)]
    return "\n".join(lines)


def facts(task: str = "capitals", n: int | None = None, *, seed: int = 0, n_examples: int = 4) -> TaskSet:
    """Short-answer facts bundled with the package, with the source of each task.

    Parameters
    ----------
    task : {"capitals", "elements"}
        ``"capitals"``: "What is the capital of Peru?" (149 countries, CIA World Factbook);
        ``"elements"``: "What is the chemical symbol of iron?" (118 elements, IUPAC).
    n : int, optional
        Number of questions (default: all but the few-shot examples), drawn without
        replacement in a seeded order.
    seed : int
        Seed of the order in which the items are drawn (examples first, then questions).
    n_examples : int
        Items set aside for the few-shot system prompt (never asked), >= 2.

    Returns
    -------
    TaskSet
        Named ``task``, with each answer's accepted spellings and the task's source.

    Raises
    ------
    ValueError
        ``task`` is not one of :data:`FACT_TASKS`, ``n_examples`` is not an integer >= 2, or
        ``n`` is not an integer from 1 to the number of items left after the examples.

    Examples
    --------
    >>> t = facts("elements", 5, seed=0)
    >>> len(t.questions), t.questions[0].startswith("What is the chemical symbol of")
    (5, True)
    """
    import json
    from importlib import resources

    if task not in FACT_TASKS:
        raise ValueError(f"`task`: unknown task {task!r}; known: {list(FACT_TASKS)}")
    data = json.loads(resources.files("robatch_opt").joinpath("data/serve_facts.json").read_text("utf-8"))
    spec = data["tasks"][task]
    items = spec["items"]
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 2:
        raise ValueError(f"`n_examples`: must be an integer >= 2, got {n_examples!r}")
    available = len(items) - n_examples
    if n is None:
        n = available
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= available:
        raise ValueError(f"`n`: must be an integer in [1, {available}] for task {task!r}, got {n!r}")
    order = np.random.default_rng(seed).permutation(len(items))
    ex = [items[i] for i in order[:n_examples]]
    chosen = [items[i] for i in order[n_examples:n_examples + n]]
    q = spec["question"]
    prompt = _few_shot([(q.format(subject=it["subject"]), it["answers"][0]) for it in ex])
    return TaskSet(name=task, system_prompt=prompt, questions=tuple(q.format(subject=it["subject"]) for it in chosen),
                   answers=tuple(it["answers"][0] for it in chosen),
                   accepted=tuple(tuple(it["answers"]) for it in chosen), source=spec["source"])
