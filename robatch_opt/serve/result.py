"""What a serving run returns: per query an answer or a named failure, per call the real
usage and cost, and the run's observation log for the proxy model."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["CallRecord", "QueryFailure", "ServeResult", "exact_match", "number", "choice"]


@dataclass(frozen=True)
class CallRecord:
    """One finished call (a batch of the plan, or a query asked again alone).

    Attributes
    ----------
    key : str
        ``"c<index>"`` for call ``index`` of ``plan.calls``; ``"c<index>.q<query>"`` for a query
        of that call asked again alone.
    model, task : str
        Names of the model and the task.
    query_ids : tuple of int
        Queries asked, in prompt order.
    batch_size : int
        Nominal batch size of the plan's call (1 for a query asked alone).
    answers : tuple of (str or None)
        The parsed answer of each query of ``query_ids``.
    prompt_tokens, completion_tokens : int
        Usage reported by the endpoint, summed over the call's successful responses.
    cost_usd : float
        ``(prompt_tokens * price_in + completion_tokens * price_out) / 1e6`` at the model's prices.
    attempts : int
        HTTP requests sent for this call.
    seconds : float
        Wall time from the start of the first request (once the concurrency and rate limits
        let it through) to the parsed reply; retries and their waits included.
    status : {"ok", "failed"}
        ``"failed"``: no usable reply after all attempts (``error`` says why).
    error : str or None
    finish_reason : str or None
    reply : str
        The reply text as parsed (a completion's prefix included).
    """

    key: str
    model: str
    task: str
    query_ids: tuple
    batch_size: int
    answers: tuple
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    seconds: float = 0.0
    status: str = "ok"
    error: str | None = None
    finish_reason: str | None = None
    reply: str = ""

    @property
    def n_questions(self) -> int:
        """Number of questions actually asked in the call's prompt.

        The last call of a group can hold fewer queries than its nominal :attr:`batch_size`;
        this count (``len(query_ids)``) is the batch size a reply was really given.

        Returns
        -------
        int
        """
        return len(self.query_ids)

    @property
    def is_single(self) -> bool:
        """A query asked again alone after its batch left it unanswered.

        Returns
        -------
        bool
            True when :attr:`key` is of the form ``"c<index>.q<query>"``.
        """
        return ".q" in self.key

    def to_dict(self) -> dict:
        """The record as its journal line: a JSON-ready dict that :meth:`from_dict` reads back.

        Returns
        -------
        dict
            ``{"kind": "call"}`` and every field of the record under its own name;
            ``query_ids`` and ``answers`` as lists, counts as ``int`` and amounts as ``float``
            (numpy scalars are converted, since ``json`` cannot write them).
        """
        return {"kind": "call", "key": self.key, "model": self.model, "task": self.task,
                "query_ids": [int(q) for q in self.query_ids], "batch_size": int(self.batch_size),
                "answers": list(self.answers), "prompt_tokens": int(self.prompt_tokens),
                "completion_tokens": int(self.completion_tokens), "cost_usd": float(self.cost_usd),
                "attempts": int(self.attempts), "seconds": float(self.seconds), "status": self.status,
                "error": self.error, "finish_reason": self.finish_reason, "reply": self.reply}

    @classmethod
    def from_dict(cls, d: Mapping) -> "CallRecord":
        """A record from its journal line; ValueError naming the field that is missing or bad
        (counts and costs must be non-negative, query ids integers >= 0).

        Parameters
        ----------
        d : mapping
            One parsed journal line, as written by :meth:`to_dict`. ``key``, ``model``,
            ``task``, ``query_ids``, ``batch_size``, ``answers``, ``prompt_tokens``,
            ``completion_tokens``, ``cost_usd``, ``attempts``, ``seconds`` and ``status`` are
            required; ``error``, ``finish_reason`` and ``reply`` are optional; ``kind`` is not
            read.

        Returns
        -------
        CallRecord
            ``key``, ``model``, ``task`` and ``status`` as text, each answer as text or None.

        Raises
        ------
        ValueError
            Naming the field: a required field is missing; a count (``batch_size``,
            ``prompt_tokens``, ``completion_tokens``, ``attempts``) is not an integer >= 0 (a
            bool is refused); ``cost_usd`` or ``seconds`` is not a finite number >= 0;
            ``query_ids`` is not a list of integers >= 0; ``answers`` is not a list, or its
            length differs from that of ``query_ids``; ``status`` is not ``"ok"`` or ``"failed"``.
        """
        def field(name):
            if name not in d:
                raise ValueError(f"field `{name}` is missing")
            return d[name]

        def count(name) -> int:
            v = field(name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"field `{name}`: must be an integer >= 0, got {v!r}")
            return v

        def amount(name) -> float:
            v = field(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"field `{name}`: must be a finite number >= 0, got {v!r}")
            return float(v)

        raw_q, raw_a = field("query_ids"), field("answers")
        if not isinstance(raw_q, list) or any(isinstance(q, bool) or not isinstance(q, int) or q < 0 for q in raw_q):
            raise ValueError(f"field `query_ids`: must be a list of integers >= 0, got {raw_q!r}")
        if not isinstance(raw_a, list):
            raise ValueError(f"field `answers`: must be a list, got {raw_a!r}")
        qids = tuple(raw_q)
        answers = tuple(None if a is None else str(a) for a in raw_a)
        if len(answers) != len(qids):
            raise ValueError(f"call {d.get('key')!r}: {len(answers)} answers for {len(qids)} queries")
        status = str(field("status"))
        if status not in ("ok", "failed"):
            raise ValueError(f"field `status`: must be 'ok' or 'failed', got {status!r}")
        return cls(key=str(field("key")), model=str(field("model")), task=str(field("task")), query_ids=qids,
                   batch_size=count("batch_size"), answers=answers, prompt_tokens=count("prompt_tokens"),
                   completion_tokens=count("completion_tokens"), cost_usd=amount("cost_usd"),
                   attempts=count("attempts"), seconds=amount("seconds"), status=status,
                   error=None if d.get("error") is None else str(d["error"]),
                   finish_reason=None if d.get("finish_reason") is None else str(d["finish_reason"]),
                   reply=str(d.get("reply", "")))


@dataclass(frozen=True)
class QueryFailure:
    """Why a query has no answer.

    Attributes
    ----------
    reason : str
        ``"unanswered"`` (replies held no answer for it, alone included), or the error of its
        last call (``"http 500: ..."``, ``"timeout"``, ``"connection: ..."``, ``"bad response: ..."``).
    attempts : int
        HTTP requests of the calls that held it.
    call_key : str
        The last call that held it.
    """

    reason: str
    attempts: int
    call_key: str


# ----------------------------------------------------------------------------- graders
Grader = Callable[[str, int], float]


def _norm(text: str) -> str:
    return " ".join(str(text).strip().strip(".").casefold().split())


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def exact_match(expected: Sequence) -> Grader:
    """Grader: 1.0 if the answer equals ``expected[i]`` (case, spaces and a final '.' ignored).

    Parameters
    ----------
    expected : sequence
        Per query a string, a number (compared as its text: ``42`` and ``42.0`` accept
        "42") or a list, tuple, set or 1-D array of accepted strings and numbers.

    Returns
    -------
    callable
        ``grade(answer, i) -> float`` (1.0 or 0.0).

    Raises
    ------
    ValueError
        Naming ``expected[i]`` when it is none of the above.
    """
    def text(x):
        # A number as it is written: 7.0 as "7" (as a model answers it), 2.5 as "2.5".
        return _norm(int(x) if _is_number(x) and float(x).is_integer() else x)

    def accepted(e, i):
        if isinstance(e, str) or _is_number(e):
            return {text(e)}
        items = list(e) if isinstance(e, (list, tuple, set, frozenset, np.ndarray)) and np.ndim(e) == 1 else None
        if items and all(isinstance(x, str) or _is_number(x) for x in items):
            return {text(x) for x in items}
        raise ValueError(f"`expected[{i}]`: must be a string, a number or a non-empty list of them, got {e!r}")

    exp = [accepted(e, i) for i, e in enumerate(expected)]
    return lambda answer, i: float(_norm(answer) in exp[i])


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def number(expected: Sequence[float], *, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> Grader:
    """Grader: 1.0 if the first number in the answer equals ``expected[i]`` (within tolerance).

    Parameters
    ----------
    expected : sequence of float
        Per query a finite number (or its text, e.g. ``"42"``).
    rel_tol, abs_tol : float
        As :func:`math.isclose`.

    Returns
    -------
    callable
        ``grade(answer, i) -> float`` (1.0 or 0.0).

    Raises
    ------
    ValueError
        Naming ``expected[i]`` when it is not a finite number.
    """
    exp = []
    for i, e in enumerate(expected):
        try:
            x = float(e) if not isinstance(e, (bool, np.bool_)) else math.nan
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x):
            raise ValueError(f"`expected[{i}]`: must be a finite number, got {e!r}")
        exp.append(x)

    def grade(answer: str, i: int) -> float:
        m = _NUMBER.search(answer)
        if m is None:
            return 0.0
        return float(math.isclose(float(m.group().replace(",", "")), exp[i], rel_tol=rel_tol, abs_tol=abs_tol))
    return grade


_CHOICE = re.compile(r"(?<![A-Za-z])\(?([A-Za-z])\)?(?![A-Za-z])")


def choice(expected: Sequence[str]) -> Grader:
    """Grader: 1.0 if the answer's first stand-alone letter (``B``, ``(b)``, ``B)``) is ``expected[i]``.

    Parameters
    ----------
    expected : sequence of str
        Per query one letter (either case).

    Returns
    -------
    callable
        ``grade(answer, i) -> float`` (1.0 or 0.0).

    Raises
    ------
    ValueError
        Naming ``expected[i]`` when it is not one letter (``"AB"`` could never score).
    """
    exp = []
    for i, e in enumerate(expected):
        letter = e.strip().upper() if isinstance(e, str) else ""
        if len(letter) != 1 or not ("A" <= letter <= "Z"):
            raise ValueError(f"`expected[{i}]`: must be one letter A-Z, got {e!r}")
        exp.append(letter)

    def grade(answer: str, i: int) -> float:
        m = _CHOICE.search(answer)
        return float(m is not None and m.group(1).upper() == exp[i])
    return grade


# ------------------------------------------------------------------------------ result
def _score(value, query: int) -> float:
    """A grader's verdict as an outcome in [0, 1] (a bool counts as 0 or 1)."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if not isinstance(value, (int, float, np.integer, np.floating)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"`grader`: must return a number in [0, 1] (or a bool), got {value!r} for query {query}")
    return float(value)


@dataclass(frozen=True, eq=False)
class ServeResult:
    """A serving run.

    Attributes
    ----------
    answers : tuple of (str or None)
        One per query of the plan.
    failures : dict of int to QueryFailure
        Every query without an answer, with the reason.
    calls : tuple of CallRecord
        Every finished call, the plan's calls in plan order, each followed by its queries
        asked again alone.
    cost_usd : float
        Realized cost: the sum of the calls' costs at the models' prices.
    predicted_cost_usd : float
        The plan's exact cost (from the instance's token estimates).
    prompt_tokens, completion_tokens : int
        Usage summed over all calls.
    wall_time_s : float
        This run's wall time (a resumed run: this part only).
    n_resumed : int
        Calls read back from the journal instead of sent.
    query_task, model_names, task_names, input_tokens
        What :meth:`to_log` needs from the instance.
    """

    answers: tuple
    failures: dict
    calls: tuple
    cost_usd: float
    predicted_cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    wall_time_s: float
    n_resumed: int
    model_names: tuple = ()
    task_names: tuple = ()
    query_task: np.ndarray = field(default=None, repr=False)
    input_tokens: np.ndarray = field(default=None, repr=False)

    @property
    def n_queries(self) -> int:
        """Number of queries of the plan (answered or not).

        Returns
        -------
        int
            ``len(answers)``.
        """
        return len(self.answers)

    @property
    def n_answered(self) -> int:
        """Number of queries with an answer (by their batch or asked again alone).

        Returns
        -------
        int
            The queries whose entry of :attr:`answers` is not None; the others are in
            :attr:`failures`.
        """
        return sum(a is not None for a in self.answers)

    @property
    def attempts(self) -> int:
        """HTTP requests sent over all calls.

        Returns
        -------
        int
            The sum of :attr:`CallRecord.attempts` over :attr:`calls`, the earlier runs'
            attempts of a resumed run included.
        """
        return sum(c.attempts for c in self.calls)

    def summary(self) -> str:
        """A few readable lines.

        Returns
        -------
        str
            Queries answered and failed, calls planned and asked again alone, requests, tokens,
            realized and predicted cost, wall time, then the calls of unknown cost and the five
            most frequent failure reasons, if any; lines joined by ``"\\n"``, no final newline.
        """
        # A call that failed in an earlier run and was sent again on resume has two records.
        keys = {c.key: c.is_single for c in self.calls}
        n_single = sum(keys.values())
        lines = [
            f"queries         {self.n_queries:,}: {self.n_answered:,} answered, {len(self.failures):,} failed",
            f"calls           {len(keys) - n_single:,} planned + {n_single:,} asked again alone "
            f"({self.attempts:,} requests; {self.n_resumed:,} read from the journal)",
            f"tokens          {self.prompt_tokens:,} prompt, {self.completion_tokens:,} completion",
            f"cost            ${self.cost_usd:,.6f} realized vs ${self.predicted_cost_usd:,.6f} predicted",
            f"wall time       {self.wall_time_s:.2f} s",
        ]
        if self.n_calls_without_usage:
            lines.append(f"  cost unknown: {self.n_calls_without_usage:,} answered calls reported no valid "
                         f"token usage (counted as $0)")
        reasons: dict[str, int] = {}
        for f in self.failures.values():
            reasons[f.reason] = reasons.get(f.reason, 0) + 1
        for r, c in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
            lines.append(f"  failed: {c:,} x {r}")
        return "\n".join(lines)

    @property
    def n_calls_without_usage(self) -> int:
        """Answered calls whose reply had no valid token usage: their cost is unknown (counted as $0).

        Returns
        -------
        int
            Calls of :attr:`calls` with status ``"ok"`` whose ``error`` mentions the usage.
        """
        return sum(c.status == "ok" and c.error is not None and "usage" in c.error for c in self.calls)

    def summary_dict(self) -> dict:
        """The numbers of :meth:`summary` as a JSON-ready dict (``robatch-opt serve --json``).

        Returns
        -------
        dict
            ``n_queries``, ``n_answered``, ``n_failed`` (queries in :attr:`failures`),
            ``n_calls`` (distinct call keys: a call sent again on resume counts once, queries
            asked again alone count), ``n_requests`` (:attr:`attempts`), ``n_resumed``,
            ``n_calls_without_usage``, ``prompt_tokens``, ``completion_tokens``, ``cost_usd``
            and ``predicted_cost_usd`` (USD), ``wall_time_s`` (seconds).
        """
        return {"n_queries": self.n_queries, "n_answered": self.n_answered, "n_failed": len(self.failures),
                "n_calls": len({c.key for c in self.calls}), "n_requests": self.attempts,
                "n_resumed": self.n_resumed, "n_calls_without_usage": self.n_calls_without_usage,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": self.cost_usd, "predicted_cost_usd": self.predicted_cost_usd,
                "wall_time_s": self.wall_time_s}

    def to_log(self, grader: Grader | str, expected: Sequence | None = None, *, models=None):
        """The run as an :class:`~robatch_opt.proxy.ObservationLog`, graded by ``grader``.

        One row per (query, reply that held it): a query left unanswered by its batch gives a
        row at that batch size with outcome 0 (the batch did not answer it) and, if asked
        again alone, a row at ``batch_size = 1``. Calls that failed (no reply) give no row.
        ``batch_size`` is the number of questions actually in the prompt; ``output_tokens``
        the call's completion tokens shared equally by its questions; ``input_tokens`` the
        instance's estimate for the query.

        Parameters
        ----------
        grader : callable or {"exact", "number", "choice"}
            ``grader(answer, query_index) -> float`` in [0, 1] (a bool is fine); a name
            builds the built-in grader from ``expected``.
        expected : sequence, optional
            Expected answers per query, for a named grader.
        models : optional
            Known models of the log (default: this run's models).

        Returns
        -------
        ObservationLog

        Raises
        ------
        ValueError
            ``grader`` is neither a known name nor a callable; a named grader without
            ``expected``, or with ``expected`` that is not a sequence of one answer per query
            (a None answer included) or that the grader refuses; or ``grader`` returned
            something other than a number in [0, 1] or a bool.
        """
        from ..proxy.logs import ObservationLog

        if isinstance(grader, str):
            makers = {"exact": exact_match, "number": number, "choice": choice}
            if grader not in makers:
                raise ValueError(f"`grader`: unknown grader {grader!r}; known: {sorted(makers)} or a callable")
            if expected is None:
                raise ValueError(f"`expected`: the {grader!r} grader needs the expected answers")
            if isinstance(expected, (str, bytes)) or not hasattr(expected, "__len__"):
                raise ValueError(f"`expected`: must be a sequence of answers, one per query, got "
                                 f"{type(expected).__name__}")
            if len(expected) != self.n_queries:
                raise ValueError(f"`expected`: must hold one answer per query ({self.n_queries}), got {len(expected)}")
            missing = [i for i, e in enumerate(expected) if e is None]
            if missing:
                raise ValueError(f"`expected[{missing[0]}]`: must be an answer (a string, a number, or for "
                                 f"'exact' a list of accepted strings), got None")
            grader = makers[grader](expected)
        elif not callable(grader):
            raise ValueError(f"`grader`: must be a grader's name or a callable, got {type(grader).__name__}")
        qid, task, model, bs, outcome, inp, out = [], [], [], [], [], [], []
        for c in self.calls:
            if c.status != "ok":
                continue
            share = c.completion_tokens / max(c.n_questions, 1)
            for q, a in zip(c.query_ids, c.answers):
                score = 0.0 if a is None else _score(grader(a, int(q)), int(q))
                qid.append(str(q))
                task.append(c.task)
                model.append(c.model)
                bs.append(c.n_questions)
                outcome.append(score)
                inp.append(float(self.input_tokens[q]) if self.input_tokens is not None else 0.0)
                out.append(share)
        return ObservationLog(query_id=qid, task=task, model=model, batch_size=bs, outcome=outcome,
                              input_tokens=inp, output_tokens=out,
                              models=list(self.model_names) if models is None else models)
