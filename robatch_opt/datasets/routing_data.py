"""``RoutingData``: real per-query, per-model outcomes and costs, ready to plan on and grade by.

One result type for every source (the loaders in this subpackage, or a user's own arrays):
queries with their task, text and id; per model the observed outcome and the real cost;
the token split that makes an :class:`~robatch_opt.Instance` reproduce those real costs.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .._validate import instance_errors, numeric_array
from ..errors import InstanceError
from ..instance import Instance, Model, Task
from .errors import DatasetError, DuplicateQueryError, InconsistentDataError, OutcomeRangeError
from .prices import CONTEXT_WINDOW, DEFAULT_CONTEXT_WINDOW

__all__ = ["RoutingData", "concat"]


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _text_array(values, name: str, n: int | None = None) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise InconsistentDataError(f"must be a string, got {type(v).__name__}", row=i, column=name)
        out[i] = v
    if n is not None and out.shape[0] != n:
        raise InconsistentDataError(f"must have {n} entries, got {out.shape[0]}", column=name)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class RoutingData:
    """Real routing data: which model answered which query how well, and at what cost.

    Arrays are read-only copies; build a new one (:meth:`select`, :func:`concat`) to change it.

    Parameters
    ----------
    model_names : tuple of str, length K
    task_names : tuple of str, length T
    task : ndarray of int, shape (n,)
        Task index of each query.
    question : ndarray of str (object), shape (n,)
        Each query's own text (the prompt without its task's system prompt).
    system_prompt : tuple of str, length T
        The prefix every query of the task shares (``""`` if none was detected).
    query_id : ndarray of str (object), shape (n,)
        Unique ids.
    outcome : ndarray, shape (n, K)
        Observed outcome in [0, 1]; NaN where not observed.
    cost_usd : ndarray, shape (n, K)
        Cost of query ``i`` alone on model ``k`` (system prompt included), USD; NaN where the
        source has no cost for the pair.
    price_in, price_out : ndarray, shape (K,)
        USD per million tokens.
    system_tokens : ndarray, shape (T,)
        Tokens of each task's system prompt.
    input_tokens : ndarray, shape (n,)
        Tokens of each query's own text.
    output_tokens : ndarray, shape (n, K)
        Output tokens such that ``(system_tokens[t] + input_tokens[i]) * price_in[k] +
        output_tokens[i, k] * price_out[k] == cost_usd[i, k] * 1e6`` (see
        :mod:`robatch_opt.datasets.tokens`).
    context_window : ndarray of int, shape (K,)
    contaminated : ndarray of bool, shape (n,), optional
        Queries the source flags (RouteLLM's contaminated prompts); default all False.
    source : str
        Where the data came from (free text).
    notes : mapping
        Loader facts: missing outcomes per model, clipped scores, capped token estimates...
        They describe the source as loaded and travel unchanged with selections.
    real_input_tokens, real_output_tokens : ndarray, shape (n, K), optional
        Token counts the source itself reports for each pair (RouterArena's usage; system
        prompt included in the input), NaN where not reported; None when the source reports
        none (``input_tokens`` and ``output_tokens`` are then estimates; see
        :mod:`robatch_opt.datasets.tokens`). Selections keep their rows and columns.

    Raises
    ------
    InconsistentDataError, OutcomeRangeError, DuplicateQueryError
        Shapes that disagree, outcomes outside [0, 1], repeated query ids.
    """

    model_names: tuple
    task_names: tuple
    task: np.ndarray
    question: np.ndarray
    system_prompt: tuple
    query_id: np.ndarray
    outcome: np.ndarray
    cost_usd: np.ndarray
    price_in: np.ndarray
    price_out: np.ndarray
    system_tokens: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    context_window: np.ndarray = None
    contaminated: np.ndarray = None
    source: str = ""
    notes: Mapping = field(default_factory=dict)
    real_input_tokens: np.ndarray | None = None
    real_output_tokens: np.ndarray | None = None

    def __post_init__(self):
        set_ = lambda name, v: object.__setattr__(self, name, v)      # noqa: E731 (frozen dataclass)
        models = tuple(str(m) for m in self.model_names)
        tasks = tuple(str(t) for t in self.task_names)
        for what, names in (("model_names", models), ("task_names", tasks)):
            if len(set(names)) != len(names):
                raise InconsistentDataError(f"must be unique, got {list(names)}", column=what)
        set_("model_names", models)
        set_("task_names", tasks)
        K, T = len(models), len(tasks)
        task = np.asarray(self.task)
        n = task.shape[0]
        task = np.array(task, dtype=np.int64)
        if task.ndim != 1 or ((task < 0) | (task >= T)).any():
            raise InconsistentDataError(f"must be task indices in [0, {T})", column="task")
        set_("task", _ro(task))
        set_("question", _text_array(list(self.question), "question", n))
        set_("query_id", _text_array(list(self.query_id), "query_id", n))
        sp = tuple(self.system_prompt)
        if len(sp) != T or not all(isinstance(s, str) for s in sp):
            raise InconsistentDataError(f"must hold {T} strings (one per task)", column="system_prompt")
        set_("system_prompt", sp)

        def arr(name, shape, *, nan_ok):
            a = np.array(getattr(self, name), dtype=np.float64)
            if a.shape != shape:
                raise InconsistentDataError(f"must have shape {shape}, got {a.shape}", column=name)
            bad = ~np.isfinite(a) & ~(np.isnan(a) if nan_ok else False)
            if bad.any():
                idx = np.unravel_index(int(np.argmax(bad)), a.shape)
                raise InconsistentDataError(f"must be finite, got {a[idx]!r}", row=int(idx[0]) if a.ndim else None,
                                            column=name)
            if (a[~np.isnan(a)] < 0).any():
                idx = np.unravel_index(int(np.argmax(np.nan_to_num(a, nan=0.0) < 0)), a.shape)
                raise InconsistentDataError(f"must be >= 0, got {a[idx]!r}", row=int(idx[0]) if a.ndim else None,
                                            column=name)
            set_(name, _ro(a))
            return a

        out = arr("outcome", (n, K), nan_ok=True)
        if (out[~np.isnan(out)] > 1).any():
            i, k = np.unravel_index(int(np.argmax(np.nan_to_num(out, nan=0.0) > 1)), out.shape)
            raise OutcomeRangeError(f"must be in [0, 1], got {out[i, k]!r}", row=int(i), column=models[k])
        arr("cost_usd", (n, K), nan_ok=True)
        arr("price_in", (K,), nan_ok=False)
        arr("price_out", (K,), nan_ok=False)
        arr("system_tokens", (T,), nan_ok=False)
        arr("input_tokens", (n,), nan_ok=False)
        arr("output_tokens", (n, K), nan_ok=True)
        for name in ("real_input_tokens", "real_output_tokens"):
            if getattr(self, name) is not None:
                arr(name, (n, K), nan_ok=True)
        win = self.context_window
        if win is None:
            win = [CONTEXT_WINDOW.get(m, DEFAULT_CONTEXT_WINDOW) for m in models]
        win = np.array(win, dtype=np.int64)
        if win.shape != (K,) or (win <= 0).any():
            raise InconsistentDataError(f"must be {K} positive integers", column="context_window")
        set_("context_window", _ro(win))
        cont = np.zeros(n, bool) if self.contaminated is None else np.array(self.contaminated, dtype=bool)
        if cont.shape != (n,):
            raise InconsistentDataError(f"must have shape ({n},)", column="contaminated")
        set_("contaminated", _ro(cont))
        set_("notes", dict(self.notes))
        if n:
            ids, first, counts = np.unique(self.query_id.astype(str), return_index=True, return_counts=True)
            if (counts > 1).any():
                dup = ids[int(np.argmax(counts > 1))]
                rows = np.flatnonzero(self.query_id.astype(str) == dup)
                raise DuplicateQueryError(f"query id {str(dup)!r} appears in rows {rows[:5].tolist()}",
                                          row=int(rows[1]), column="query_id")

    # ---------------------------------------------------------------- sizes
    @property
    def n_queries(self) -> int:
        """Number of queries ``n``."""
        return int(self.task.shape[0])

    @property
    def n_models(self) -> int:
        """Number of models ``K``."""
        return len(self.model_names)

    @property
    def observed(self) -> np.ndarray:
        """``observed[i, k]``: the outcome of query i on model k is known, shape (n, K)."""
        return ~np.isnan(self.outcome)

    @property
    def fixed_cost_usd(self) -> np.ndarray:
        """``f[t, k]``: one call's system-prompt cost, USD, shape (T, K)."""
        return self.system_tokens[:, None] * self.price_in[None, :] / 1e6

    @property
    def variable_cost_usd(self) -> np.ndarray:
        """``v[i, k]``: the query's own input and output tokens, USD, shape (n, K)."""
        return (self.input_tokens[:, None] * self.price_in[None, :]
                + self.output_tokens * self.price_out[None, :]) / 1e6

    def model_index(self, name: str) -> int:
        """Column of a model; raises :class:`InconsistentDataError` for an unknown name."""
        try:
            return self.model_names.index(name)
        except ValueError:
            raise InconsistentDataError(f"unknown model {name!r}; known: {list(self.model_names)}",
                                        column="model_names") from None

    def summary(self) -> dict:
        """Counts and means: queries, tasks, per model the observed count, mean outcome and mean cost.

        Means are over observed entries (NaN outcomes are counted in ``missing``, never dropped).
        """
        obs = self.observed
        per_model = {}
        for k, m in enumerate(self.model_names):
            o, c = self.outcome[:, k], self.cost_usd[:, k]
            per_model[m] = {
                "observed": int(obs[:, k].sum()),
                "missing": int((~obs[:, k]).sum()),
                "mean_outcome": float(np.nanmean(o)) if obs[:, k].any() else float("nan"),
                "mean_cost_usd": float(np.nanmean(c)) if np.isfinite(c).any() else float("nan"),
                "total_cost_usd": float(np.nansum(c)),
            }
        return {"source": self.source, "n_queries": self.n_queries, "n_tasks": len(self.task_names),
                "n_models": self.n_models, "complete_rows": int(obs.all(axis=1).sum()),
                "contaminated": int(self.contaminated.sum()), "models": per_model, "notes": dict(self.notes)}

    # ------------------------------------------------------------ subsets
    def select(self, mask) -> "RoutingData":
        """The queries where ``mask`` is True (a boolean mask of length n, or integer indices).

        Tasks left without a query are kept (their names and prompts stay), so task indices
        and fitted predictors stay valid across subsets.

        Parameters
        ----------
        mask : array_like of bool, shape (n,), or array_like of int, shape (m,)
            A boolean mask, or query indices (negative ones count from the end; floats with
            integral values pass), taken in the given order.

        Returns
        -------
        RoutingData
            The selected queries, with every model, task, price and note of this data.

        Raises
        ------
        InconsistentDataError
            A boolean mask of the wrong length, indices that are not 1-d integers, or an
            index out of range.
        DuplicateQueryError
            An index given twice (query ids must stay unique).
        """
        idx = np.asarray(mask)
        if idx.dtype.kind == "f" and idx.ndim == 1 and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
            idx = idx.astype(np.int64)               # integral floats pass, as everywhere from Python
        if idx.dtype == bool:
            if idx.shape != (self.n_queries,):
                raise InconsistentDataError(f"boolean mask must have shape ({self.n_queries},), got {idx.shape}",
                                            column="mask")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = np.zeros(0, dtype=np.int64)
        elif idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise InconsistentDataError(f"must be a boolean mask of shape ({self.n_queries},) or a 1-d array "
                                        f"of integer query indices, got dtype {idx.dtype} and shape {idx.shape}",
                                        column="mask")
        elif idx.min() < -self.n_queries or idx.max() >= self.n_queries:
            bad = int(idx[(idx < -self.n_queries) | (idx >= self.n_queries)][0])
            raise InconsistentDataError(f"query index {bad} is out of range for {self.n_queries} queries",
                                        column="mask")
        idx = idx.astype(np.int64)
        return RoutingData(
            model_names=self.model_names, task_names=self.task_names, task=self.task[idx],
            question=self.question[idx], system_prompt=self.system_prompt, query_id=self.query_id[idx],
            outcome=self.outcome[idx], cost_usd=self.cost_usd[idx], price_in=self.price_in,
            price_out=self.price_out, system_tokens=self.system_tokens, input_tokens=self.input_tokens[idx],
            output_tokens=self.output_tokens[idx], context_window=self.context_window,
            contaminated=self.contaminated[idx], source=self.source, notes=self.notes,
            real_input_tokens=_rows(self.real_input_tokens, idx), real_output_tokens=_rows(self.real_output_tokens, idx))

    def dropna(self) -> "RoutingData":
        """The queries observed on every model (outcome and cost known for all).

        ``notes["dropna"]`` says what went: ``{"dropped": <queries>, "tasks_emptied": [...]}``,
        the tasks that had queries and have none left (a model that never answered a task
        takes the whole task with it; ``select_models`` without that model keeps it). Repeated
        calls add up; like every note, it travels with later selections of the result.
        """
        keep = self.observed.all(axis=1) & np.isfinite(self.cost_usd).all(axis=1)
        out = self.select(keep)
        before = np.bincount(self.task, minlength=len(self.task_names))
        after = np.bincount(out.task, minlength=len(self.task_names))
        emptied = [self.task_names[t] for t in np.flatnonzero((before > 0) & (after == 0))]
        prev = self.notes.get("dropna", {"dropped": 0, "tasks_emptied": []})
        notes = {**self.notes, "dropna": {"dropped": prev["dropped"] + int((~keep).sum()),
                                          "tasks_emptied": prev["tasks_emptied"] + emptied}}
        return dataclasses.replace(out, notes=notes)

    def select_models(self, names: Sequence[str]) -> "RoutingData":
        """The same queries with only the named models, in the given order.

        Parameters
        ----------
        names : sequence of str
            Models of this data, each at most once.

        Returns
        -------
        RoutingData
            Columns of ``outcome``, ``cost_usd``, the tokens, prices and context windows
            restricted to ``names``; queries, tasks and notes unchanged.

        Raises
        ------
        InconsistentDataError
            A single string instead of a sequence; a name this data does not have, or a name given twice.
        """
        if isinstance(names, (str, bytes)):
            raise InconsistentDataError(f"must be a sequence of model names, got the string {names!r} (write "
                                        f"[{names!r}] for one model)", column="names")
        cols = [self.model_index(m) for m in names]
        return RoutingData(
            model_names=tuple(names), task_names=self.task_names, task=self.task, question=self.question,
            system_prompt=self.system_prompt, query_id=self.query_id, outcome=self.outcome[:, cols],
            cost_usd=self.cost_usd[:, cols], price_in=self.price_in[cols], price_out=self.price_out[cols],
            system_tokens=self.system_tokens, input_tokens=self.input_tokens,
            output_tokens=self.output_tokens[:, cols], context_window=self.context_window[cols],
            contaminated=self.contaminated, source=self.source, notes=self.notes,
            real_input_tokens=_columns(self.real_input_tokens, cols),
            real_output_tokens=_columns(self.real_output_tokens, cols))

    def concat(self, *others: "RoutingData", source: str | None = None) -> "RoutingData":
        """This data followed by ``others``: :func:`concat` of ``[self, *others]``.

        Parameters
        ----------
        *others : RoutingData
        source : str, optional
            As :func:`concat`.

        Returns
        -------
        RoutingData

        Raises
        ------
        InconsistentDataError, DuplicateQueryError
            As :func:`concat`.
        """
        return concat([self, *others], source=source)

    # ------------------------------------------------------------ exports
    def to_log(self):
        """The observed (query, model) pairs as an unbatched :class:`~robatch_opt.proxy.ObservationLog`.

        One row per observed outcome (NaN cells are not observations, so they have no row);
        ``input_tokens`` is the query's own text, ``output_tokens`` the cost-implied count.
        """
        from ..proxy.logs import ObservationLog
        qi, ki = np.nonzero(self.observed)
        return ObservationLog(
            query_id=self.query_id[qi].astype(str), task=np.array(self.task_names, dtype=object)[self.task[qi]].astype(str),
            model=np.array(self.model_names, dtype=object)[ki].astype(str), batch_size=np.ones(qi.shape[0], np.int64),
            outcome=self.outcome[qi, ki], input_tokens=self.input_tokens[qi],
            output_tokens=np.nan_to_num(self.output_tokens[qi, ki], nan=0.0), models=self.model_names)

    def instance(self, utility, *, batch_sizes: Sequence[int] = (1,), degradation=None,
                 capabilities: Mapping[str, float] | None = None, output_tokens=None) -> Instance:
        """An :class:`~robatch_opt.Instance` of these queries, priced by the data's real costs.

        Parameters
        ----------
        utility : array_like, shape (n, K), or a fitted predictor with ``predict(data)``
            Unbatched utility ``u0[i, k]`` in [0, 1] (predictions, or :attr:`outcome` itself
            for the oracle).
        batch_sizes : sequence of int
            Batch sizes every model may use (each model keeps all of them; a size that does
            not fit a query's window is simply not admissible for it).
        degradation : Degradation, optional
            Retention ``r_k(b)`` for sizes above 1; default
            :func:`robatch_opt.proxy.fit_degradation` on the bundled published observations.
        capabilities : mapping of model name to float, optional
            Capabilities for models the degradation does not know; default each model's mean
            observed outcome in this data (capped at 0.99).
        output_tokens : array_like, shape (n, K), optional
            Use these output tokens instead of the data's (e.g.
            :meth:`robatch_opt.proxy.TextUtility.predict_output_tokens` for queries not yet
            answered, whose costs are unknown); the cost identity then holds for them, not
            for :attr:`cost_usd`.

        Returns
        -------
        Instance
            Models are :attr:`model_names` in order, tasks :attr:`task_names`. At batch size 1
            the exact cost of a plan is the sum of the chosen cells of :attr:`cost_usd`
            (to rounding): the call cost of the task's system prompt plus the query's
            variable cost is the real cost.

        Raises
        ------
        DatasetError
            A cost is missing (NaN) for some pair: use :meth:`dropna` or :meth:`select_models` first.
        InstanceError
            Bad utilities (shape, NaN, outside [0, 1]); ``degradation`` not a ``Degradation``;
            ``capabilities`` naming a model this data does not have, or a value outside [0, 1).
        """
        if hasattr(utility, "predict") and not isinstance(utility, np.ndarray):
            utility = utility.predict(self)
        u0 = numeric_array(utility, "utility", instance_errors, ndim=2)
        if u0.shape != (self.n_queries, self.n_models):
            raise InstanceError("utility", f"must have shape ({self.n_queries}, {self.n_models}), got {u0.shape}")
        bad = ~((u0 >= 0.0) & (u0 <= 1.0))
        if bad.any():
            # Refused, not clipped: a predictor that returns 1.5 or -3 has a bug to see.
            i, k = np.unravel_index(int(np.argmax(bad)), bad.shape)
            raise InstanceError(f"utility[{i}, {k}]", f"must be in [0, 1], got {float(u0[i, k])!r}")
        out_tok = (self.output_tokens if output_tokens is None
                   else numeric_array(output_tokens, "output_tokens", instance_errors, ndim=2))
        if out_tok.shape != self.output_tokens.shape:
            raise InstanceError("output_tokens", f"must have shape {self.output_tokens.shape}, got {out_tok.shape}")
        missing = ~np.isfinite(out_tok)
        if missing.any():
            i, k = np.unravel_index(int(np.argmax(missing)), missing.shape)
            raise DatasetError(f"no cost for query {self.query_id[i]!r} on {self.model_names[k]!r}; "
                               f"plan on data.dropna() or data.select_models(...), or pass output_tokens=",
                               row=int(i),
                               column="cost_usd")
        if isinstance(batch_sizes, (str, bytes)) or not hasattr(batch_sizes, "__iter__") or any(
                isinstance(b, bool) or not isinstance(b, (int, np.integer)) for b in batch_sizes):
            raise InstanceError("batch_sizes", f"must be integers >= 1, got {batch_sizes!r}")
        sizes = tuple(sorted({int(b) for b in batch_sizes}))
        if not sizes or sizes[0] < 1:
            raise InstanceError("batch_sizes", f"must be integers >= 1, got {tuple(batch_sizes)!r}")
        models = [Model(m, float(self.price_in[k]), float(self.price_out[k]), int(self.context_window[k]), sizes)
                  for k, m in enumerate(self.model_names)]
        tasks = [Task(t, float(self.system_tokens[j])) for j, t in enumerate(self.task_names)]
        from ..proxy.degradation import Degradation
        if degradation is not None and not isinstance(degradation, Degradation):
            raise InstanceError("degradation", "must be a robatch_opt.proxy.Degradation (e.g. from "
                                               f"ro.proxy.fit_degradation()) or None, got {type(degradation).__name__}")
        caps = self._capabilities(capabilities)
        if sizes == (1,):
            retention = np.ones(len(models))
        else:
            from ..proxy.degradation import fit_degradation
            deg = fit_degradation() if degradation is None else degradation
            for k, m in enumerate(self.model_names):
                if m not in caps and m not in deg.rate:
                    obs = self.outcome[:, k]
                    caps[m] = min(float(np.nanmean(obs)) if np.isfinite(obs).any() else 0.5, 0.99)
            retention = lambda model, b: deg.retention(model.name, b, capability=caps.get(model.name))  # noqa: E731
        return Instance.from_decomposition(models, tasks, self.task, self.input_tokens, out_tok,
                                           u0, retention)

    def _capabilities(self, capabilities) -> dict[str, float]:
        """``capabilities`` of :meth:`instance` checked: keys are models of this data (a typo
        would otherwise be ignored), values numbers in [0, 1)."""
        if capabilities is None:
            return {}
        if not isinstance(capabilities, Mapping):
            raise InstanceError("capabilities", f"must be a mapping of model name to a number in [0, 1), "
                                                f"got {type(capabilities).__name__}")
        caps = {}
        for name, value in capabilities.items():
            if name not in self.model_names:
                close = difflib.get_close_matches(str(name), self.model_names, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f" (models: {list(self.model_names)})"
                raise InstanceError(f"capabilities[{name!r}]", f"is not a model of this data{hint}")
            if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InstanceError(f"capabilities[{name!r}]", f"must be a number in [0, 1), got {value!r}")
            if not (math.isfinite(value) and 0.0 <= value < 1.0):
                raise InstanceError(f"capabilities[{name!r}]", f"must be in [0, 1), got {value!r}")
            caps[name] = float(value)
        return caps

    def __repr__(self) -> str:
        return (f"RoutingData(source={self.source!r}, n={self.n_queries}, models={list(self.model_names)}, "
                f"tasks={len(self.task_names)})")


def concat(datas: Sequence[RoutingData], *, source: str | None = None) -> RoutingData:
    """Stack several sources: queries one after the other, models and tasks united by name.

    A model missing from a source has NaN outcome and cost there. A model present in several
    sources must have the same prices there; a task name present in several sources must
    have the same system prompt; query ids must stay unique.

    Parameters
    ----------
    datas : sequence of RoutingData
        At least one.
    source : str, optional
        The result's :attr:`~RoutingData.source`; default the sources joined by ``" + "``.

    Returns
    -------
    RoutingData
        Models and tasks in order of first appearance. Each source's notes are kept under its
        ``source`` label (prefixed by its position when two sources share a label). Real
        token counts are NaN for sources without them (None if no source has them).

    Raises
    ------
    InconsistentDataError
        ``datas`` is empty or not a sequence of RoutingData; a model whose prices or context
        window differ between sources; a task whose system prompt or system tokens differ.
    DuplicateQueryError
        A query id in more than one source.
    """
    if isinstance(datas, (RoutingData, str, bytes)) or not hasattr(datas, "__iter__"):
        raise InconsistentDataError(f"must be a sequence of RoutingData, got {type(datas).__name__}", column="datas")
    datas = list(datas)
    if not datas:
        raise InconsistentDataError("needs at least one RoutingData", column="datas")
    for j, d in enumerate(datas):
        if not isinstance(d, RoutingData):
            raise InconsistentDataError(f"must be a RoutingData, got {type(d).__name__}", column=f"datas[{j}]")
    models: dict[str, tuple] = {}
    tasks: dict[str, tuple] = {}
    for d in datas:
        for k, m in enumerate(d.model_names):
            card = (float(d.price_in[k]), float(d.price_out[k]), int(d.context_window[k]))
            if models.setdefault(m, card) != card:
                raise InconsistentDataError(f"model {m!r} has prices/window {card} in {d.source!r} "
                                            f"but {models[m]} in an earlier source", column="model_names")
        for t, name in enumerate(d.task_names):
            spec = (d.system_prompt[t], float(d.system_tokens[t]))
            if tasks.setdefault(name, spec) != spec:
                raise InconsistentDataError(f"task {name!r} has a different system prompt in {d.source!r}",
                                            column="task_names")
    mnames, tnames = list(models), list(tasks)
    n = sum(d.n_queries for d in datas)
    K = len(mnames)
    outcome = np.full((n, K), np.nan)
    cost = np.full((n, K), np.nan)
    out_tok = np.full((n, K), np.nan)
    real_in = np.full((n, K), np.nan) if any(d.real_input_tokens is not None for d in datas) else None
    real_out = np.full((n, K), np.nan) if any(d.real_output_tokens is not None for d in datas) else None
    pos = 0
    for d in datas:
        rows = slice(pos, pos + d.n_queries)
        cols = [mnames.index(m) for m in d.model_names]
        outcome[rows, cols] = d.outcome
        cost[rows, cols] = d.cost_usd
        out_tok[rows, cols] = d.output_tokens
        if d.real_input_tokens is not None:
            real_in[rows, cols] = d.real_input_tokens
        if d.real_output_tokens is not None:
            real_out[rows, cols] = d.real_output_tokens
        pos += d.n_queries
    # Each source's notes under its own key: two parts of one source (same label) keep theirs.
    labels = [d.source or "source" for d in datas]
    notes = {(f"{j}: {lab}" if labels.count(lab) > 1 else lab): dict(d.notes)
             for j, (lab, d) in enumerate(zip(labels, datas))}
    return RoutingData(
        model_names=tuple(mnames), task_names=tuple(tnames),
        task=np.concatenate([np.array([tnames.index(d.task_names[t]) for t in d.task], np.int64) for d in datas]),
        question=np.concatenate([d.question for d in datas]), system_prompt=tuple(tasks[t][0] for t in tnames),
        query_id=np.concatenate([d.query_id for d in datas]), outcome=outcome, cost_usd=cost,
        price_in=[models[m][0] for m in mnames], price_out=[models[m][1] for m in mnames],
        system_tokens=[tasks[t][1] for t in tnames], input_tokens=np.concatenate([d.input_tokens for d in datas]),
        output_tokens=out_tok, context_window=[models[m][2] for m in mnames],
        contaminated=np.concatenate([d.contaminated for d in datas]),
        source=source if source is not None else " + ".join(d.source for d in datas), notes=notes,
        real_input_tokens=real_in, real_output_tokens=real_out)


def _rows(a: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if a is None else a[idx]


def _columns(a: np.ndarray | None, cols: list[int]) -> np.ndarray | None:
    return None if a is None else a[:, cols]
