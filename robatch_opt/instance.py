"""The human-level description of a Route-with-Batching (RwB) instance.

An :class:`Instance` holds models (prices, context window, allowed batch sizes), tasks
(system-prompt length), and per-query data: task, input tokens, expected output tokens per
model, and the utility of every option ``(model, batch size)``. It is immutable: arrays are
validated once, copied, and made read-only, so every solver and the evaluator see the same
numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence, Union

import numpy as np

from . import _validate as V
from .errors import InstanceError

__all__ = ["Model", "Task", "Instance"]

RetentionSpec = Union[
    Callable[["Model", int], float],
    Mapping[str, Mapping[int, float]],
    Sequence[float],
    np.ndarray,
]


def _finite_nonneg(value, field_name: str) -> float:
    x = V.number(value, field_name)
    if not np.isfinite(x):
        raise InstanceError(field_name, f"must be finite, got {V.fmt_num(x)}")
    if x < 0:
        raise InstanceError(field_name, f"must be >= 0, got {V.fmt_num(x)}")
    return x


@dataclass(frozen=True)
class Model:
    """One LLM of the pool.

    Parameters
    ----------
    name : str
        Unique name, e.g. ``"Qwen3-8B"``.
    price_in, price_out : float
        Prices in USD per million input / output tokens (>= 0).
    context_window : int
        Maximum tokens of one call (prompt plus answer), > 0.
    batch_sizes : tuple of int
        Allowed numbers of queries per prompt, strictly increasing, each >= 1.
    """

    name: str
    price_in: float
    price_out: float
    context_window: int
    batch_sizes: tuple[int, ...] = (1,)

    def __post_init__(self):
        where = f"models[{self.name!r}]"
        if not isinstance(self.name, str) or not self.name:
            raise InstanceError("models.name", "must be a non-empty string, got " +
                                ("an empty one" if self.name == "" else V.describe(self.name)))
        object.__setattr__(self, "price_in", _finite_nonneg(self.price_in, f"{where}.price_in"))
        object.__setattr__(self, "price_out", _finite_nonneg(self.price_out, f"{where}.price_out"))
        window = V.integer(self.context_window, f"{where}.context_window")
        if window <= 0:
            raise InstanceError(f"{where}.context_window",
                                f"must be a positive integer number of tokens, got {V.fmt_num(window)}")
        object.__setattr__(self, "context_window", window)
        if isinstance(self.batch_sizes, (str, bytes, dict)):
            raise InstanceError(f"{where}.batch_sizes",
                                f"must be a sequence of integers, got {V.describe(self.batch_sizes)}")
        try:
            sizes = tuple(self.batch_sizes)
        except TypeError as exc:
            raise InstanceError(f"{where}.batch_sizes",
                                f"must be a sequence of integers, got {V.describe(self.batch_sizes)}") from exc
        if not sizes:
            raise InstanceError(f"{where}.batch_sizes", "must not be empty")
        clean = []
        for pos, b in enumerate(sizes):
            # Batch sizes are counts: an integral float (2.0) is refused too, as it always was.
            b = V.integer(b, f"{where}.batch_sizes", strict=True, idx=(pos,))
            if b < 1:
                raise InstanceError(f"{where}.batch_sizes[{pos}]", f"must be an integer >= 1, got {b}")
            if clean and b <= clean[-1]:
                raise InstanceError(f"{where}.batch_sizes[{pos}]",
                                    f"must be strictly increasing, got {b} after {clean[-1]}")
            clean.append(int(b))
        object.__setattr__(self, "batch_sizes", tuple(clean))


@dataclass(frozen=True)
class Task:
    """A task: queries of one task share a system prompt and may share a batch.

    Parameters
    ----------
    name : str
        Unique name, e.g. ``"GSM8K"``.
    system_tokens : float
        Tokens of the system prompt (instructions, few-shot examples) sent once per call.
    """

    name: str
    system_tokens: float

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise InstanceError("tasks.name", "must be a non-empty string, got " +
                                ("an empty one" if self.name == "" else V.describe(self.name)))
        object.__setattr__(self, "system_tokens",
                           _finite_nonneg(self.system_tokens, f"tasks[{self.name!r}].system_tokens"))


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    """Index (as a tuple) of the first True entry of a boolean array."""
    flat = int(np.argmax(mask.ravel()))
    return tuple(int(v) for v in np.unravel_index(flat, mask.shape))


_fmt_index = V.fmt_index


def _as_float_array(value, name: str, shape: tuple[int, ...], *, lo: float | None = 0.0,
                    hi: float | None = None, per_query: bool = False) -> np.ndarray:
    checked = V.numeric_array(value, name, ndim=len(shape))
    # A new array from a list is ours already; anything else (an ndarray, a pandas Series, a
    # memoryview: numeric_array may return a view of the caller's memory) is copied, never
    # aliased, so a later change to the caller's data cannot reach the frozen instance.
    # Row-major always: the kernels and the grader read rows (a column-major (n, J) array cost
    # every evaluate a 16 MB copy of `admissible` at n = 10^6).
    fresh = isinstance(value, (list, tuple)) and checked is not value
    arr = (np.ascontiguousarray(checked, dtype=np.float64) if fresh
           else np.array(checked, dtype=np.float64, copy=True, order="C"))
    if per_query and arr.ndim == len(shape) and arr.shape[0] != shape[0]:
        # The query count comes from query_task: say so, as either array may be the wrong one.
        raise InstanceError(name, f"has {arr.shape[0]} rows but `query_task` has {shape[0]} queries "
                                  f"(one row per query in each)")
    if arr.shape != shape:
        raise InstanceError(name, f"must have shape {shape}, got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = _first_bad(bad)
        raise InstanceError(f"{name}{_fmt_index(idx)}", f"must be finite, got {V.fmt_num(arr[idx])}")
    if lo is not None:
        bad = arr < lo
        if bad.any():
            idx = _first_bad(bad)
            raise InstanceError(f"{name}{_fmt_index(idx)}",
                                f"must be >= {lo:g}, got {V.fmt_num(arr[idx], apart_from=lo)}")
    if hi is not None:
        bad = arr > hi
        if bad.any():
            idx = _first_bad(bad)
            raise InstanceError(f"{name}{_fmt_index(idx)}",
                                f"must be <= {hi:g}, got {V.fmt_num(arr[idx], apart_from=hi)}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Instance:
    """A Route-with-Batching instance (DESIGN §1).

    Parameters
    ----------
    models : sequence of Model
        The pool; option order follows it.
    tasks : sequence of Task
    query_task : array_like of int, shape (n,)
        Task index of every query.
    input_tokens : array_like, shape (n,)
        Input tokens ``l_i`` of every query (without the system prompt).
    output_tokens : array_like, shape (n, K) or (n,)
        Expected output tokens ``o[i, k]``; a 1-D array is used for every model.
    utility : array_like, shape (n, J)
        ``u[i, j]`` in [0, 1] for option ``j = (k, b)`` of :attr:`options`.

    Notes
    -----
    Option ``(k, b)`` is admissible for query ``i`` iff
    ``s[t(i)] + b * (l_i + o[i, k]) <= W[k]``. A query with no admissible option raises
    :class:`~robatch_opt.errors.InstanceError` naming it. Validation is vectorised:
    O(n J) time and memory.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst = ro.Instance(
    ...     models=[ro.Model("small", 0.1, 0.2, 4096, (1, 4)), ro.Model("big", 1.0, 2.0, 8192, (1,))],
    ...     tasks=[ro.Task("qa", system_tokens=300)],
    ...     query_task=[0, 0, 0], input_tokens=[50, 60, 70], output_tokens=[10, 10, 10],
    ...     utility=[[0.6, 0.5, 0.9]] * 3)
    >>> inst.options
    ((0, 1), (0, 4), (1, 1))
    >>> inst.n_queries, inst.n_options
    (3, 3)
    """

    models: tuple[Model, ...]
    tasks: tuple[Task, ...]
    query_task: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    utility: np.ndarray
    options: tuple[tuple[int, int], ...] = field(init=False)

    def __post_init__(self):
        models = tuple(self.models)
        tasks = tuple(self.tasks)
        if not models:
            raise InstanceError("models", "must hold at least one model")
        if not tasks:
            raise InstanceError("tasks", "must hold at least one task")
        for k, m in enumerate(models):
            if not isinstance(m, Model):
                raise InstanceError(f"models[{k}]", f"must be a robatch_opt.Model, got {type(m).__name__}")
        for t, task in enumerate(tasks):
            if not isinstance(task, Task):
                raise InstanceError(f"tasks[{t}]", f"must be a robatch_opt.Task, got {type(task).__name__}")
        for what, names in (("models", [m.name for m in models]), ("tasks", [t.name for t in tasks])):
            seen: dict[str, int] = {}
            for pos, name in enumerate(names):
                if name in seen:
                    raise InstanceError(f"{what}[{pos}].name", f"duplicates {what}[{seen[name]}] ({name!r})")
                seen[name] = pos
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "tasks", tasks)
        options = tuple((k, b) for k, m in enumerate(models) for b in m.batch_sizes)
        object.__setattr__(self, "options", options)

        qt = V.numeric_array(self.query_task, "query_task", integer=True)
        if qt.ndim != 1:
            raise InstanceError("query_task", f"must be 1-D, got shape {qt.shape}")
        n = qt.shape[0]
        qt = np.array(qt, dtype=np.int64, copy=True)
        bad = (qt < 0) | (qt >= len(tasks))
        if bad.any():
            i = int(np.argmax(bad))
            raise InstanceError(f"query_task[{i}]",
                                f"task index {int(qt[i])} is out of range for {len(tasks)} tasks")
        qt.flags.writeable = False
        object.__setattr__(self, "query_task", qt)

        K, J = len(models), len(options)
        object.__setattr__(self, "input_tokens",
                           _as_float_array(self.input_tokens, "input_tokens", (n,), per_query=True))
        out = V.numeric_array(self.output_tokens, "output_tokens", ndim=(2, 1))
        if out.ndim == 1 and out.shape == (n,):
            out = np.repeat(np.asarray(out, dtype=np.float64)[:, None], K, axis=1)
        object.__setattr__(self, "output_tokens", _as_float_array(out, "output_tokens", (n, K), per_query=True))
        object.__setattr__(self, "utility", _as_float_array(self.utility, "utility", (n, J), lo=0.0, hi=1.0,
                                                              per_query=True))

        # Every query needs at least one admissible option (DESIGN §1).
        adm = self.admissible
        none = ~adm.any(axis=1)
        if none.any():
            i = int(np.argmax(none))
            need = min(self.tasks[int(qt[i])].system_tokens + self.input_tokens[i] + self.output_tokens[i, k]
                       for k in range(K))
            raise InstanceError(
                f"query[{i}]",
                f"fits no model's context window (needs at least {float(np.ceil(need)):.6g} tokens with "
                f"batch size 1; largest window is {V.fmt_num(max(m.context_window for m in models))})")

    # ------------------------------------------------------------------ sizes
    @property
    def n_queries(self) -> int:
        """Number of queries ``n``."""
        return int(self.query_task.shape[0])

    @property
    def n_models(self) -> int:
        """Number of models ``K``."""
        return len(self.models)

    @property
    def n_tasks(self) -> int:
        """Number of tasks ``T``."""
        return len(self.tasks)

    @property
    def n_options(self) -> int:
        """Number of options ``J`` (pairs of model and batch size)."""
        return len(self.options)

    # ------------------------------------------------------- derived arrays
    @functools.cached_property
    def option_model(self) -> np.ndarray:
        """Model index of every option, shape (J,)."""
        a = np.array([k for k, _ in self.options], dtype=np.int64)
        a.flags.writeable = False
        return a

    @functools.cached_property
    def option_batch(self) -> np.ndarray:
        """Batch size of every option, shape (J,)."""
        a = np.array([b for _, b in self.options], dtype=np.int64)
        a.flags.writeable = False
        return a

    @functools.cached_property
    def system_tokens(self) -> np.ndarray:
        """System-prompt tokens of every task, shape (T,)."""
        a = np.array([t.system_tokens for t in self.tasks], dtype=np.float64)
        a.flags.writeable = False
        return a

    @functools.cached_property
    def price_in(self) -> np.ndarray:
        """Input price of every model in USD per million tokens, shape (K,)."""
        a = np.array([m.price_in for m in self.models], dtype=np.float64)
        a.flags.writeable = False
        return a

    @functools.cached_property
    def price_out(self) -> np.ndarray:
        """Output price of every model in USD per million tokens, shape (K,)."""
        a = np.array([m.price_out for m in self.models], dtype=np.float64)
        a.flags.writeable = False
        return a

    @functools.cached_property
    def admissible(self) -> np.ndarray:
        """``admissible[i, j]``: option j fits the context window for query i, shape (n, J)."""
        om, ob = self.option_model, self.option_batch
        window = np.array([m.context_window for m in self.models], dtype=np.float64)[om]
        per_query = self.input_tokens[:, None] + self.output_tokens[:, om]            # (n, J)
        need = self.system_tokens[self.query_task][:, None] + ob[None, :] * per_query
        a = np.ascontiguousarray(need <= window[None, :])
        a.flags.writeable = False
        return a

    @functools.cached_property
    def fixed_cost_usd(self) -> np.ndarray:
        """``f[t, k]``: the system prompt's price for one call, USD, shape (T, K)."""
        a = self.system_tokens[:, None] * self.price_in[None, :] / 1e6
        a.flags.writeable = False
        return a

    @functools.cached_property
    def variable_cost_usd(self) -> np.ndarray:
        """``v[i, k]``: query i's own input and output tokens on model k, USD, shape (n, K)."""
        a = (self.input_tokens[:, None] * self.price_in[None, :]
             + self.output_tokens * self.price_out[None, :]) / 1e6
        a.flags.writeable = False
        return a

    def model_index(self, name_or_index) -> int:
        """Index of a model given by name or index; raises InstanceError if unknown."""
        if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
            if 0 <= int(name_or_index) < self.n_models:
                return int(name_or_index)
            raise InstanceError("models", f"index {name_or_index} out of range for {self.n_models} models")
        for k, m in enumerate(self.models):
            if m.name == name_or_index:
                return k
        raise InstanceError("models", f"unknown model {name_or_index!r}; known: {[m.name for m in self.models]}")

    # ------------------------------------------------------------ building
    @classmethod
    def from_decomposition(cls, models: Sequence[Model], tasks: Sequence[Task], query_task,
                           input_tokens, output_tokens, base_utility, retention: RetentionSpec
                           ) -> "Instance":
        """Build an instance from RoBatch's decomposition ``u[i,k,b] = u0[i,k] * r_k(b)``.

        Parameters
        ----------
        base_utility : array_like, shape (n, K)
            Utility of each query on each model without batching, in [0, 1].
        retention : callable, mapping or array
            ``r_k(b)``: a callable ``retention(model, b) -> float``, a mapping
            ``{model_name: {b: r}}``, or one value per option (length J). Products are
            clipped to [0, 1].

        Returns
        -------
        Instance
        """
        models = tuple(models)
        options = [(k, b) for k, m in enumerate(models) for b in m.batch_sizes]
        n = np.asarray(query_task).shape[0]
        u0 = _as_float_array(base_utility, "base_utility", (n, len(models)), lo=0.0, hi=1.0)
        if callable(retention):
            r = np.array([V.number(retention(models[k], b), f"retention[{models[k].name!r}][{b}]")
                          for k, b in options], dtype=np.float64)
        elif isinstance(retention, Mapping):
            r = np.empty(len(options))
            for j, (k, b) in enumerate(options):
                try:
                    value = retention[models[k].name][b]
                except KeyError as exc:
                    raise InstanceError(f"retention[{models[k].name!r}][{b}]", "is missing") from exc
                r[j] = V.number(value, f"retention[{models[k].name!r}][{b}]")
        else:
            r = V.numeric_array(retention, "retention")
            if r.shape != (len(options),):
                raise InstanceError("retention", f"must have shape ({len(options)},), got {r.shape}")
        r = _as_float_array(r, "retention", (len(options),), lo=0.0, hi=None)
        om = np.array([k for k, _ in options], dtype=np.int64)
        utility = np.clip(u0[:, om] * r[None, :], 0.0, 1.0)
        return cls(models=models, tasks=tuple(tasks), query_task=query_task,
                   input_tokens=input_tokens, output_tokens=output_tokens, utility=utility)

    def restrict(self, models: Iterable | None = None,
                 batch_sizes: Iterable[int] | Mapping[str, Iterable[int]] | None = None) -> "Instance":
        """A sub-instance keeping some models and batch sizes (for baselines).

        Parameters
        ----------
        models : iterable of str or int, optional
            Models to keep (names or indices), in the original order. Default: all.
        batch_sizes : iterable of int or mapping of model name to iterable of int, optional
            Batch sizes to keep; each model keeps the intersection with its own sizes.
            Models left with no size are dropped. Default: all.

        Returns
        -------
        Instance
            Routing-only is ``restrict(batch_sizes=[1])``; batching-only on one model is
            ``restrict(models=[name])``. Raises InstanceError if a query is left with no
            admissible option or no model remains.
        """
        keep = list(range(self.n_models)) if models is None else sorted({self.model_index(m) for m in models})
        new_models, columns, out_cols = [], [], []
        for k in keep:
            m = self.models[k]
            if batch_sizes is None:
                allowed = set(m.batch_sizes)
            elif isinstance(batch_sizes, Mapping):
                allowed = set(V.numeric_array(list(batch_sizes.get(m.name, m.batch_sizes)),
                                              f"batch_sizes[{m.name!r}]", integer=True).tolist())
            else:
                allowed = set(V.numeric_array(list(batch_sizes), "batch_sizes", integer=True).tolist())
            sizes = tuple(b for b in m.batch_sizes if b in allowed)
            if not sizes:
                continue
            new_models.append(Model(m.name, m.price_in, m.price_out, m.context_window, sizes))
            out_cols.append(k)
            columns.extend(self.options.index((k, b)) for b in sizes)
        if not new_models:
            raise InstanceError("restrict", "no model and batch size remains")
        return Instance(models=tuple(new_models), tasks=self.tasks, query_task=self.query_task,
                        input_tokens=self.input_tokens, output_tokens=self.output_tokens[:, out_cols],
                        utility=self.utility[:, columns])

    def __repr__(self) -> str:
        return (f"Instance(n={self.n_queries}, models={[m.name for m in self.models]}, "
                f"tasks={[t.name for t in self.tasks]}, options={self.n_options})")
