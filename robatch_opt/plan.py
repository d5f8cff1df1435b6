"""The result of a solve: a frozen, JSON-serialisable :class:`Plan`."""

from __future__ import annotations

import enum
import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .errors import FormatError
from .evaluate import CallTable, CostBreakdown, pack_calls

__all__ = ["Status", "Plan"]

PLAN_FORMAT = "robatch_opt.plan/1"


class Status(str, enum.Enum):
    """How much a plan's claim is worth.

    OPTIMAL
        Proven optimal: by an exact engine, or because the plan meets its own bound
        (relative gap <= 1e-9). A time-limited answer is never OPTIMAL.
    FEASIBLE
        A valid plan with a valid bound; the gap says how far from optimal it can be.
    INFEASIBLE
        Proven that no plan meets the budget or the quality target.
    NO_SOLUTION
        No plan was found (time limit, or the heuristic failed) and nothing was proven.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"


def _ro(a, dtype) -> np.ndarray:
    a = np.array(a, dtype=dtype, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Plan:
    """A served workload: option, model and batch size per query, graded by ``evaluate``.

    Every number here was recomputed by :func:`robatch_opt.evaluate` from the instance, never
    taken from the solver's own accounting.

    Attributes
    ----------
    option, model, batch_size : ndarray, shape (n,)
        Per query: option index into ``inst.options``, model index, nominal batch size.
    query_task : ndarray, shape (n,)
        Task of every query (kept so that :attr:`calls` can be rebuilt from the plan alone).
    cost_usd : float
        Exact cost with ``ceil(n_g / b)`` calls per group.
    utility : float
        Total utility ``sum_i u[i, k(i), b(i)]``.
    upper_bound : float or None
        Budget form: a proven upper bound on the optimal utility (None in the quality form).
    cost_lower_bound_usd : float or None
        Quality form: a proven lower bound on the cost of reaching the target.
    gap : float
        Relative gap of the objective to its bound: ``(upper_bound - utility) / upper_bound``
        in the budget form, ``(cost - lower bound) / cost`` in the quality form.
    status : Status
    method : str
        Backend that produced the assignment (``"greedy"``, ``"cpsat"``, ``"milp"``...).
    wall_time_s : float
        Time spent in :func:`robatch_opt.solve`, including compilation and grading.
    budget_usd, min_mean_utility : float or None
        The constraint that was solved for (exactly one is set).
    n_calls : int
    breakdown : CostBreakdown
    options : tuple of (model index, batch size)
    model_names : tuple of str
    info : mapping
        Backend details: engine name, build and solve times, node counts...
    """

    option: np.ndarray
    model: np.ndarray
    batch_size: np.ndarray
    query_task: np.ndarray
    cost_usd: float
    utility: float
    upper_bound: float | None
    cost_lower_bound_usd: float | None
    gap: float
    status: Status
    method: str
    wall_time_s: float
    budget_usd: float | None
    min_mean_utility: float | None
    n_calls: int
    breakdown: CostBreakdown
    options: tuple[tuple[int, int], ...]
    model_names: tuple[str, ...]
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_queries(self) -> int:
        return int(self.option.shape[0])

    @property
    def mean_utility(self) -> float:
        """Utility per query (e.g. expected accuracy)."""
        return self.utility / self.n_queries if self.n_queries else 0.0

    @property
    def form(self) -> str:
        """``"budget"`` (maximise utility) or ``"quality"`` (minimise cost)."""
        return "budget" if self.budget_usd is not None else "quality"

    @functools.cached_property
    def calls(self) -> CallTable:
        """Concrete calls: per group, full calls first, then one partial call."""
        om = np.array([k for k, _ in self.options], dtype=np.int64)
        ob = np.array([b for _, b in self.options], dtype=np.int64)
        return pack_calls(_CallView(self.query_task, om, ob, len(self.options)), self.option)

    def usage(self) -> dict[tuple[str, int], int]:
        """Queries per (model name, batch size), options with no query omitted."""
        counts = np.bincount(self.option, minlength=len(self.options))
        return {(self.model_names[k], b): int(c) for (k, b), c in zip(self.options, counts) if c}

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """A few readable lines: objective, bound, gap, cost split, usage per option."""
        lines = []
        if self.budget_usd is not None:
            lines.append(f"budget          ${self.budget_usd:,.6f}")
        else:
            lines.append(f"target          mean utility >= {self.min_mean_utility:.4f}")
        lines.append(f"exact cost      ${self.cost_usd:,.6f}  (system ${self.breakdown.system_usd:,.6f}, "
                     f"input ${self.breakdown.input_usd:,.6f}, output ${self.breakdown.output_usd:,.6f})")
        lines.append(f"calls           {self.n_calls:,} for {self.n_queries:,} queries")
        lines.append(f"mean utility    {self.mean_utility:.6f}")
        if self.upper_bound is not None:
            lines.append(f"upper bound     {self.upper_bound / max(self.n_queries, 1):.6f} (mean)"
                         f"   gap {100 * self.gap:.4f}%")
        if self.cost_lower_bound_usd is not None:
            lines.append(f"cost lower bd   ${self.cost_lower_bound_usd:,.6f}   gap {100 * self.gap:.4f}%")
        lines.append(f"status          {self.status.value} ({self.method}, {self.wall_time_s:.3f} s)")
        lines.append("queries per (model, batch size):")
        for (name, b), c in sorted(self.usage().items(), key=lambda kv: (kv[0][0], kv[0][1])):
            lines.append(f"  {name:<24s} b={b:<4d} {c:>10,d}")
        return "\n".join(lines)

    def summary_dict(self) -> dict[str, Any]:
        """The headline figures as plain Python values (what ``--json`` prints)."""
        return {
            "cost_usd": self.cost_usd, "utility": self.utility, "mean_utility": self.mean_utility,
            "upper_bound": self.upper_bound, "cost_lower_bound_usd": self.cost_lower_bound_usd,
            "gap": self.gap, "status": self.status.value, "method": self.method,
            "wall_time_s": self.wall_time_s, "budget_usd": self.budget_usd,
            "min_mean_utility": self.min_mean_utility, "n_queries": self.n_queries,
            "n_calls": self.n_calls,
        }

    def __repr__(self) -> str:
        return (f"Plan(n={self.n_queries}, cost_usd={self.cost_usd:.6g}, mean_utility={self.mean_utility:.6f}, "
                f"gap={self.gap:.3g}, status={self.status.value}, method={self.method!r})")

    # ------------------------------------------------------------------ JSON
    def to_json(self, *, timings: bool = False) -> str:
        """Serialise losslessly (floats by ``repr``, which round-trips exactly).

        Parameters
        ----------
        timings : bool
            Keep the run's timings (``wall_time_s`` and every ``*_s`` / ``timings`` entry of
            ``info``). Off by default, so that the same solve writes the same bytes; a plan
            read back without them has ``wall_time_s`` NaN.
        """
        d = self.summary_dict()
        info = dict(self.info)
        if not timings:
            d.pop("wall_time_s")
            info = _without_timings(info)
        d.update({
            "format": PLAN_FORMAT,
            "option": self.option.tolist(),
            "query_task": self.query_task.tolist(),
            "options": [list(o) for o in self.options],
            "model_names": list(self.model_names),
            "breakdown": {"system_usd": self.breakdown.system_usd, "input_usd": self.breakdown.input_usd,
                          "output_usd": self.breakdown.output_usd},
            "info": _jsonable(info),
        })
        return json.dumps(d, allow_nan=True)

    def save(self, path, *, timings: bool = False):
        """Write :meth:`to_json` to ``path`` atomically (whole or not at all); returns the path."""
        from ._files import write_atomic

        return write_atomic(path, self.to_json(timings=timings))

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        """Inverse of :meth:`to_json`; raises FormatError on malformed or truncated text."""
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise FormatError(f"plan JSON is malformed or truncated: {exc}") from exc
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise FormatError(f"not a robatch_opt plan (expected format {PLAN_FORMAT!r})")
        try:
            options = tuple((int(k), int(b)) for k, b in d["options"])
            option = _ro(d["option"], np.int64)
            query_task = _ro(d["query_task"], np.int64)
            if option.shape != query_task.shape or option.ndim != 1:
                raise FormatError("plan JSON: `option` and `query_task` must be lists of equal length")
            if option.size and (option.min() < 0 or option.max() >= len(options)):
                raise FormatError("plan JSON: `option` holds an index outside `options`")
            om = np.array([k for k, _ in options], dtype=np.int64)
            ob = np.array([b for _, b in options], dtype=np.int64)
            bd = d["breakdown"]
            return cls(
                option=option, model=_ro(om[option], np.int64), batch_size=_ro(ob[option], np.int64),
                query_task=query_task, cost_usd=float(d["cost_usd"]), utility=float(d["utility"]),
                upper_bound=_opt_float(d.get("upper_bound")),
                cost_lower_bound_usd=_opt_float(d.get("cost_lower_bound_usd")),
                gap=float(d["gap"]), status=Status(d["status"]), method=str(d["method"]),
                wall_time_s=float(d.get("wall_time_s", math.nan)), budget_usd=_opt_float(d.get("budget_usd")),
                min_mean_utility=_opt_float(d.get("min_mean_utility")), n_calls=int(d["n_calls"]),
                breakdown=CostBreakdown(float(bd["system_usd"]), float(bd["input_usd"]),
                                        float(bd["output_usd"])),
                options=options, model_names=tuple(str(s) for s in d["model_names"]),
                info=d.get("info", {}),
            )
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"plan JSON is missing or has a bad field: {exc!r}") from exc


class _CallView:
    """The three arrays :func:`pack_calls` needs, so a plan packs calls without its instance."""

    def __init__(self, query_task, option_model, option_batch, n_options):
        self.query_task, self.option_model, self.option_batch = query_task, option_model, option_batch
        self.n_options = n_options


def _without_timings(x):
    """``x`` without the entries that measure time (keys ending in ``_s``, ``timings``)."""
    if isinstance(x, dict):
        return {k: _without_timings(v) for k, v in x.items()
                if not (isinstance(k, str) and (k.endswith("_s") or k == "timings"))}
    return x


def _opt_float(x) -> float | None:
    return None if x is None else float(x)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return x
    return x
