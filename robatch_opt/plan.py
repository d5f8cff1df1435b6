"""The result of a solve: a frozen, JSON-serialisable :class:`Plan`."""

from __future__ import annotations

import enum
import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ._validate import (describe, format_errors, integer, no_unknown_keys, number, numeric_array, optional_number,
                        string)
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


class PlanInfo(dict):
    """A plan's ``info``: a dict that cannot be changed (copy it with ``dict(plan.info)``)."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("a Plan's info is read-only; copy it with dict(plan.info)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):                 # pickle and copy without calling __setitem__
        return PlanInfo, (dict(self),)


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

    def __post_init__(self):
        # Frozen means frozen: a caller cannot change what a plan says about how it was made.
        if not isinstance(self.info, PlanInfo):
            object.__setattr__(self, "info", PlanInfo(self.info))

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
        # np.asarray: a distributed plan's columns may be kept in its store (PlanColumn).
        return pack_calls(_CallView(np.asarray(self.query_task), om, ob, len(self.options)), np.asarray(self.option))

    def usage(self) -> dict[tuple[str, int], int]:
        """Queries per (model name, batch size), options with no query omitted."""
        counts = np.bincount(np.asarray(self.option), minlength=len(self.options))
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
        stopped = ", stopped at the time limit" if self.info.get("time_limit_reached") else ""
        # A plan read from a file written without timings has no wall time: say nothing of it.
        took = f", {self.wall_time_s:.3f} s" if math.isfinite(self.wall_time_s) else ""
        lines.append(f"status          {self.status.value} ({self.method}{took}{stopped})")
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
    def from_json(cls, text: str, *, source: str | None = None) -> "Plan":
        """Inverse of :meth:`to_json`.

        Parameters
        ----------
        text : str
        source : str, optional
            The file the text came from, prefixed to error messages.

        Raises
        ------
        FormatError
            Malformed or truncated text; not a plan; a missing field; a mistyped field (a
            string, boolean or null where a number belongs, a float or out-of-range option
            index, a nested list). The one-line message names the field and the first
            offending index.
        """
        prefix = f"{source}: " if source else ""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{prefix}plan JSON is malformed or truncated at line {exc.lineno} column "
                              f"{exc.colno} (char {exc.pos}): {exc.msg}") from exc
        except (TypeError, RecursionError) as exc:
            raise FormatError(f"{prefix}plan JSON is malformed: {exc}") from exc
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise FormatError(f"{prefix}not a robatch_opt plan (expected format {PLAN_FORMAT!r})")
        err = format_errors(source or "plan JSON")
        no_unknown_keys(d, _PLAN_KEYS, source or "plan JSON", "the plan format")

        def field(key: str):
            if key not in d:
                raise FormatError(f"{source or 'plan JSON'}: missing field `{key}`")
            return d[key]

        options = numeric_array(field("options"), "options", err, ndim=2, integer=True, strict=True)
        names = field("model_names")
        if not isinstance(names, list):
            raise err("model_names", (), f"must be a list of strings, got {describe(names)}")
        model_names = tuple(string(s, f"model_names[{k}]", err) for k, s in enumerate(names))
        if options.ndim != 2 or options.shape[1] != 2:
            raise err("options", (), "must be a non-empty list of [model index, batch size] pairs")
        bad = (options[:, 0] < 0) | (options[:, 0] >= len(model_names)) | (options[:, 1] < 1)
        if bad.any():
            j = int(np.argmax(bad))
            raise err("options", (j,), f"{options[j].tolist()} is not a pair of a model index below "
                                       f"{len(model_names)} and a batch size >= 1")
        option = numeric_array(field("option"), "option", err, integer=True, strict=True)
        query_task = numeric_array(field("query_task"), "query_task", err, integer=True, strict=True)
        if option.shape != query_task.shape:
            raise err("option", (), f"has {len(option)} entries but `query_task` has {len(query_task)}")
        bad = (option < 0) | (option >= len(options))
        if bad.any():
            i = int(np.argmax(bad))
            raise err("option", (i,), f"option {int(option[i])} is out of range for {len(options)} options")
        # Informative duplicates: checked for type (and n_queries for agreement), not used.
        if "n_queries" in d and integer(d["n_queries"], "n_queries", err, strict=True) != len(option):
            raise err("n_queries", (), f"is {d['n_queries']} but `option` has {len(option)} entries")
        if "mean_utility" in d:
            number(d["mean_utility"], "mean_utility", err)
        if query_task.size and query_task.min() < 0:
            i = int(np.argmax(query_task < 0))
            raise err("query_task", (i,), f"must be a task index >= 0, got {int(query_task[i])}")
        status = string(field("status"), "status", err)
        if status not in {s.value for s in Status}:
            raise err("status", (), f"must be one of {[s.value for s in Status]}, got {describe(status)}")
        bd = field("breakdown")
        if not isinstance(bd, dict):
            raise err("breakdown", (), f"must be an object, got {describe(bd)}")
        for key in ("system_usd", "input_usd", "output_usd"):
            if key not in bd:
                raise FormatError(f"{source or 'plan JSON'}: missing field `breakdown.{key}`")
        info = d.get("info", {})
        if not isinstance(info, dict):
            raise err("info", (), f"must be an object, got {describe(info)}")
        # Claims are read as written, true or not: `robatch-opt evaluate` grades each against
        # the instance (which this reader cannot see) and reports a MISMATCH. Only which form
        # the plan is for must be decided here.
        budget_usd = optional_number(d.get("budget_usd"), "budget_usd", err)
        min_mean_utility = optional_number(d.get("min_mean_utility"), "min_mean_utility", err)
        if (budget_usd is None) == (min_mean_utility is None):
            raise err("budget_usd", (), "exactly one of `budget_usd` and `min_mean_utility` must be set, "
                                        f"got {describe(budget_usd)} and {describe(min_mean_utility)}")
        om, ob = options[:, 0], options[:, 1]
        return cls(
            option=_ro(option, np.int64), model=_ro(om[option], np.int64), batch_size=_ro(ob[option], np.int64),
            query_task=_ro(query_task, np.int64), cost_usd=number(field("cost_usd"), "cost_usd", err),
            utility=number(field("utility"), "utility", err),
            upper_bound=optional_number(d.get("upper_bound"), "upper_bound", err),
            cost_lower_bound_usd=optional_number(d.get("cost_lower_bound_usd"), "cost_lower_bound_usd", err),
            gap=number(field("gap"), "gap", err), status=Status(status),
            method=string(field("method"), "method", err),
            # A plan file need not record how long its solve took (NaN when it does not).
            wall_time_s=number(d.get("wall_time_s", math.nan), "wall_time_s", err),
            budget_usd=budget_usd, min_mean_utility=min_mean_utility,
            n_calls=integer(field("n_calls"), "n_calls", err, strict=True),
            breakdown=CostBreakdown(*(number(bd[k], f"breakdown.{k}", err)
                                      for k in ("system_usd", "input_usd", "output_usd"))),
            options=tuple((int(k), int(b)) for k, b in options.tolist()), model_names=model_names,
            info=info,
        )


#: Every top-level field a plan file may hold (:meth:`Plan.to_json`).
_PLAN_KEYS = ("format", "cost_usd", "utility", "mean_utility", "upper_bound", "cost_lower_bound_usd", "gap",
              "status", "method", "wall_time_s", "budget_usd", "min_mean_utility", "n_queries", "n_calls",
              "option", "query_task", "options", "model_names", "breakdown", "info")


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
