"""Realistic RwB workloads on the Qwen3 and Gemma3 pools, calibrated to published accuracies.

What is measured (bundled ``robatch_opt/data/llm_pools.json``; sources in its README)
----------------------------------------------------------------------------------------
- The pools (Qwen3: 0.6B ... 32B, six models; Gemma3: 1B ... 27B, four models) and each
  model's context window.
- Two price schemes, USD per million tokens: ``"api"``, one observed provider snapshot per
  model; ``"compute"``, proportional to parameter count, anchored at Qwen3-32B's observed
  price (a self-hosting view).
- Single-prompt accuracy of every model on six tasks (MMLU, BBH, GPQA, GSM8K, MATH, MBPP)
  from one evaluation pipeline (Qwen3 Technical Report, Tables 4-8).
- Token profiles per task: few-shot examples and their length, question and answer
  lengths (some are proxies of a similar task; the file says which).
- Batch-prompting observations on gpt-4 / gpt-3.5 (used through :mod:`.retention`).

What is assumed
---------------
- **System prompt** of task ``t``: ``shots * shot_prompt_tokens_per_example`` tokens.
- **Input tokens** of a query: ``max(1, round(question_tokens * exp(z)))``, ``z ~ N(0, 0.35^2)``
  (log-normal with the profile as median).
- **Output tokens** of a query on model ``k``: ``max(1, round(answer_tokens * exp(z_i + m_kt)))``
  with a per-query ``z_i ~ N(0, 0.3^2)`` shared by all models (a long answer is long on every
  model) and a per-(model, task) verbosity ``m_kt ~ N(0, 0.1^2)`` (mild model dependence).
- **Utility without batching**: a one-parameter logistic item-response model. Query ``i``
  has difficulty ``d_i ~ N(0, difficulty_sd^2)`` (default 1.5; the same distribution for
  every task, task effects live in the abilities), model ``k`` has ability
  ``theta[k, t]`` on task ``t``, and ``u0[i, k] = sigmoid(theta[k, t(i)] - d_i)``. The
  abilities are **calibrated** by bisection so that ``E_d[sigmoid(theta - d)]`` equals the
  published accuracy (expectation by 96-node Gauss-Hermite quadrature; error < 1e-9). The
  difficulty is shared by the models, so a query hard for one model is hard for all.
- **Batch degradation**: ``u[i, k, b] = u0[i, k] * r_k(b)`` with ``r_k`` from
  :func:`robatch_opt.workloads.retention.retention` (see that module for the mapping from
  the gpt-4 / gpt-3.5 observations onto these models; none is measured on these pools).
- **Free-only models under** ``price="api"``: Qwen3-0.6B, Qwen3-1.7B and gemma-3-1b have
  no paid price (they are listed free, rate-limited). By default they are **dropped** from
  the pool (``free_models="drop"``): a free listing is not a service one can buy capacity
  of, and pricing it at 0 would let a plan send any number of queries to a rate-limited
  endpoint at no cost. Pass
  ``free_models="zero"`` to keep them at price 0 instead.
- Queries are split across tasks in proportion to the task weights (uniform by default;
  exact counts by largest remainder) and then shuffled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InstanceError
from ..instance import Instance, Model, Task
from .retention import load_facts, retention as _retention

__all__ = ["LLMWorkload", "llm", "llm_truth", "pool_names", "task_names", "PRICE_SCHEMES",
           "FREE_MODEL_POLICIES", "expected_accuracy", "calibrate_ability", "load_facts"]

PRICE_SCHEMES = ("compute", "api")
FREE_MODEL_POLICIES = ("drop", "zero")
#: Log-normal spreads of the token draws (assumed; see the module docstring).
INPUT_LOG_SD = 0.35
OUTPUT_LOG_SD = 0.30
MODEL_VERBOSITY_LOG_SD = 0.10

_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite.hermgauss(96)


def pool_names() -> tuple[str, ...]:
    """Names of the bundled pools (``"qwen3"``, ``"gemma3"``)."""
    return tuple(load_facts()["pools"])


def task_names() -> tuple[str, ...]:
    """Names of the six bundled tasks, in file order."""
    return tuple(load_facts()["tasks"])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large |x|, exact symmetry.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def expected_accuracy(ability, difficulty_sd: float) -> np.ndarray:
    """``E[sigmoid(ability - d)]`` for ``d ~ N(0, difficulty_sd^2)``, elementwise.

    Parameters
    ----------
    ability : array_like
    difficulty_sd : float
        Standard deviation of the difficulty, >= 0.

    Returns
    -------
    ndarray
        Same shape as ``ability``. Gauss-Hermite quadrature with 96 nodes.
    """
    a = np.asarray(ability, dtype=np.float64)
    d = np.sqrt(2.0) * float(difficulty_sd) * _HERMITE_NODES                     # (Q,)
    vals = _sigmoid(a[..., None] - d)                                           # (..., Q)
    return vals @ _HERMITE_WEIGHTS / np.sqrt(np.pi)


def calibrate_ability(accuracy, difficulty_sd: float, *, iterations: int = 200) -> np.ndarray:
    """Abilities whose expected accuracy under the IRT model equals ``accuracy``.

    Parameters
    ----------
    accuracy : array_like
        Target accuracies, each strictly inside (0, 1).
    difficulty_sd : float

    Returns
    -------
    ndarray
        ``theta`` with ``expected_accuracy(theta, difficulty_sd) == accuracy`` to ~1e-12,
        found by vectorised bisection on [-60, 60] (the expected accuracy is strictly
        increasing in ``theta``).

    Examples
    --------
    >>> th = calibrate_ability([0.25, 0.5, 0.9], 1.5)
    >>> np.round(expected_accuracy(th, 1.5), 9).tolist()
    [0.25, 0.5, 0.9]
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    bad = ~((acc > 0.0) & (acc < 1.0))
    if bad.any():
        raise InstanceError("accuracy", f"must be strictly inside (0, 1), got {acc[bad].ravel()[0]!r}")
    lo = np.full(acc.shape, -60.0)
    hi = np.full(acc.shape, 60.0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = expected_accuracy(mid, difficulty_sd) > acc
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True, eq=False)
class LLMWorkload:
    """An LLM workload together with the ground truth it was generated from.

    Attributes
    ----------
    instance : Instance
        The RwB instance (what a solver sees).
    pool, price : str
        Pool name and price scheme.
    seed : int
    model_names : tuple of str, length K
    task_names : tuple of str, length T
        In the order of ``instance.tasks``; ``instance.query_task`` indexes them.
    published_accuracy : ndarray, shape (K, T)
        Single-prompt accuracy of each model on each task (measured).
    difficulty_sd : float
    difficulty : ndarray, shape (n,)
        ``d_i`` of every query (higher is harder).
    ability : ndarray, shape (K, T)
        Calibrated ``theta[k, t]``.
    base_utility : ndarray, shape (n, K)
        ``u0[i, k] = sigmoid(theta[k, t(i)] - d_i)``: probability of a correct answer without
        batching.
    retention : ndarray, shape (J,)
        ``r_k(b)`` of every option of ``instance.options``.

    Notes
    -----
    All arrays are read-only. ``instance.utility[:, j] == clip(base_utility[:, k_j] * retention[j], 0, 1)``.
    """

    instance: Instance
    pool: str
    price: str
    seed: int
    model_names: tuple[str, ...]
    task_names: tuple[str, ...]
    published_accuracy: np.ndarray
    difficulty_sd: float
    difficulty: np.ndarray
    ability: np.ndarray
    base_utility: np.ndarray
    retention: np.ndarray

    @property
    def query_task(self) -> np.ndarray:
        """Task index of every query, shape (n,)."""
        return self.instance.query_task

    def expected_accuracy(self) -> np.ndarray:
        """Expected single-prompt accuracy per (model, task) under the IRT model, shape (K, T).

        Equals :attr:`published_accuracy` up to the calibration tolerance.
        """
        return expected_accuracy(self.ability, self.difficulty_sd)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def _check_int(value, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lo:
        raise InstanceError(name, f"must be an integer >= {lo}, got {value!r}")
    return int(value)


def _check_batch_sizes(batch_sizes) -> tuple[int, ...]:
    try:
        sizes = tuple(batch_sizes)
    except TypeError as exc:
        raise InstanceError("batch_sizes", f"must be a sequence of integers, got {batch_sizes!r}") from exc
    if not sizes:
        raise InstanceError("batch_sizes", "must not be empty")
    for pos, b in enumerate(sizes):
        if isinstance(b, bool) or not isinstance(b, Integral) or b < 1:
            raise InstanceError(f"batch_sizes[{pos}]", f"must be an integer >= 1, got {b!r}")
        if pos and b <= sizes[pos - 1]:
            raise InstanceError(f"batch_sizes[{pos}]", f"must be strictly increasing, got {b} after {sizes[pos - 1]}")
    return tuple(int(b) for b in sizes)


def _task_weights(tasks, known: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Selected task names (in the caller's order) and their weights summing to 1."""
    if tasks is None:
        return list(known), np.full(len(known), 1.0 / len(known))
    if isinstance(tasks, str):
        tasks = [tasks]
    if isinstance(tasks, Mapping):
        names = list(tasks)
        weights = []
        for name in names:
            w = tasks[name]
            if isinstance(w, bool) or not isinstance(w, Real) or not np.isfinite(float(w)) or w < 0:
                raise InstanceError(f"tasks[{name!r}]", f"weight must be a finite number >= 0, got {w!r}")
            weights.append(float(w))
        weights = np.array(weights, dtype=np.float64)
    else:
        try:
            names = list(tasks)
        except TypeError as exc:
            raise InstanceError("tasks", f"must be None, a sequence of task names or a mapping "
                                         f"name -> weight, got {tasks!r}") from exc
        weights = np.full(len(names), 1.0)
    if not names:
        raise InstanceError("tasks", "must select at least one task")
    seen = set()
    for pos, name in enumerate(names):
        if name not in known:
            raise InstanceError(f"tasks[{pos}]", f"unknown task {name!r}; valid: {list(known)}")
        if name in seen:
            raise InstanceError(f"tasks[{pos}]", f"task {name!r} is selected twice")
        seen.add(name)
    if weights.sum() <= 0:
        raise InstanceError("tasks", "weights must not all be 0")
    return names, weights / weights.sum()


def _split_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts summing to n, proportional to weights (largest remainder, ties by order)."""
    ideal = weights * n
    counts = np.floor(ideal).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.argsort(-(ideal - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def _models(pool: str, price: str, free_models: str, batch_sizes: tuple[int, ...]) -> list[Model]:
    facts = load_facts()
    out = []
    for name in facts["pools"][pool]:
        spec = facts["models"][name]
        quote = spec["price_compute"] if price == "compute" else spec["price_api"]
        if quote is None:
            if free_models == "drop":
                continue
            quote = {"in": 0.0, "out": 0.0}
        out.append(Model(name=name, price_in=quote["in"], price_out=quote["out"],
                         context_window=int(spec["context_window"]), batch_sizes=batch_sizes))
    return out


def llm_truth(pool: str = "qwen3", n: int = 2000, *, tasks=None, price: str = "compute", seed: int = 0,
              batch_sizes: Sequence[int] = (1, 2, 4, 8), difficulty_sd: float = 1.5,
              free_models: str = "drop") -> LLMWorkload:
    """Generate an LLM workload and keep the ground truth behind it.

    Parameters
    ----------
    pool : {"qwen3", "gemma3"}
    n : int
        Number of queries, >= 1.
    tasks : None, sequence of str, or mapping of str to float, optional
        Tasks to draw queries from: all six uniformly (None), a subset uniformly (names), or
        a subset with weights (``{"GSM8K": 3, "MMLU": 1}``). Task order in the instance
        follows this argument.
    price : {"compute", "api"}
        Price scheme (see the module docstring).
    seed : int
        Seed of every random draw; the same arguments give identical workloads.
    batch_sizes : sequence of int
        Allowed batch sizes of every model, strictly increasing.
    difficulty_sd : float
        Standard deviation of query difficulty in the IRT model (> 0): larger means queries
        differ more, which makes routing worth more.
    free_models : {"drop", "zero"}
        Under ``price="api"``, what to do with models that have no paid price.

    Returns
    -------
    LLMWorkload

    Raises
    ------
    InstanceError
        Naming ``pool``, ``price``, ``tasks[i]``, ``n``, ``seed``, ``batch_sizes[i]``,
        ``difficulty_sd`` or ``free_models``.

    Notes
    -----
    O(n K) time and memory beyond the instance's own O(n J) arrays.

    Examples
    --------
    >>> w = llm_truth("gemma3", n=60, tasks=["GSM8K", "MMLU"], seed=1)
    >>> w.base_utility.shape, w.ability.shape, w.instance.n_options
    ((60, 4), (4, 2), 16)
    """
    facts = load_facts()
    if not isinstance(pool, str) or pool not in facts["pools"]:
        raise InstanceError("pool", f"unknown pool {pool!r}; valid: {list(facts['pools'])}")
    if price not in PRICE_SCHEMES:
        raise InstanceError("price", f"unknown price scheme {price!r}; valid: {list(PRICE_SCHEMES)}")
    if free_models not in FREE_MODEL_POLICIES:
        raise InstanceError("free_models", f"must be one of {list(FREE_MODEL_POLICIES)}, got {free_models!r}")
    n = _check_int(n, "n", 1)
    seed = _check_int(seed, "seed", 0)
    sizes = _check_batch_sizes(batch_sizes)
    if isinstance(difficulty_sd, bool) or not isinstance(difficulty_sd, Real) \
            or not np.isfinite(float(difficulty_sd)) or difficulty_sd <= 0:
        raise InstanceError("difficulty_sd", f"must be a finite number > 0, got {difficulty_sd!r}")
    difficulty_sd = float(difficulty_sd)
    names, weights = _task_weights(tasks, facts["tasks"])

    models = _models(pool, price, free_models, sizes)
    profiles = [facts["token_profiles"][t] for t in names]
    task_objs = [Task(t, p["shots"] * p["shot_prompt_tokens_per_example"]) for t, p in zip(names, profiles)]
    accuracy = np.array([[facts["accuracy_single_prompt"]["values"][m.name][t] for t in names]
                         for m in models], dtype=np.float64)                     # (K, T)
    ability = calibrate_ability(accuracy, difficulty_sd)
    K, T = accuracy.shape

    rng = np.random.default_rng(seed)
    # Draw order is fixed (task shuffle, difficulty, tokens) so a seed pins the workload.
    query_task = rng.permutation(np.repeat(np.arange(T, dtype=np.int64), _split_counts(n, weights)))
    difficulty = rng.normal(0.0, difficulty_sd, size=n)
    question = np.array([p["question_tokens"] for p in profiles], dtype=np.float64)
    answer = np.array([p["answer_tokens"] for p in profiles], dtype=np.float64)
    input_tokens = np.maximum(1.0, np.round(question[query_task] * np.exp(rng.normal(0.0, INPUT_LOG_SD, n))))
    query_len = rng.normal(0.0, OUTPUT_LOG_SD, n)                               # shared across models
    verbosity = rng.normal(0.0, MODEL_VERBOSITY_LOG_SD, (K, T))
    output_tokens = np.maximum(1.0, np.round(
        answer[query_task][:, None] * np.exp(query_len[:, None] + verbosity[:, query_task].T)))

    base_utility = _sigmoid(ability[:, query_task].T - difficulty[:, None])    # (n, K)
    r = np.array([_retention(models[k].name, b) for k, m in enumerate(models) for b in m.batch_sizes])
    inst = Instance.from_decomposition(models, task_objs, query_task, input_tokens, output_tokens,
                                       base_utility, r)
    return LLMWorkload(
        instance=inst, pool=pool, price=price, seed=seed,
        model_names=tuple(m.name for m in models), task_names=tuple(names),
        published_accuracy=_readonly(accuracy), difficulty_sd=difficulty_sd,
        difficulty=_readonly(difficulty), ability=_readonly(ability),
        base_utility=_readonly(base_utility), retention=_readonly(r))


def llm(pool: str = "qwen3", n: int = 2000, *, tasks=None, price: str = "compute", seed: int = 0,
        batch_sizes: Sequence[int] = (1, 2, 4, 8), difficulty_sd: float = 1.5,
        free_models: str = "drop", out=None, chunk_queries: int | None = None, client=None) -> Instance:
    """An LLM workload instance calibrated from the bundled pool facts.

    Same arguments as :func:`llm_truth`, which also returns the ground truth (difficulties,
    abilities, base utilities, retention); this returns only ``llm_truth(...).instance``.

    With ``out="x.zarr"`` the workload is written chunk by chunk (``chunk_queries`` queries
    each; by the workers of a Dask ``client`` if given) and never held whole; the store is
    returned opened lazily (:class:`robatch_opt.distributed.ChunkedInstance`). Its per-query
    draws are seeded per chunk (:mod:`.llm_chunked`), so they differ from the in-memory draw.
    With ``out="x.json"`` or ``"x.npz"`` the in-memory instance is also saved there.

    Examples
    --------
    >>> inst = llm("qwen3", n=100, seed=0)
    >>> inst.n_queries, inst.n_models, inst.n_tasks, inst.n_options
    (100, 6, 6, 24)
    """
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise InstanceError("out", f"must be a path (str or os.PathLike), got {type(out).__name__}")
    if out is not None and Path(out).suffix.lower() != ".zarr":
        # A file (.json, .npz): the in-memory draw, saved. (This used to write a chunked store
        # directory under the file's name, new-user audit.)
        if chunk_queries is not None or client is not None:
            raise InstanceError("out", f"`chunk_queries` and `client` apply only with out='x.zarr', got {os.fspath(out)!r}")
        from .._files import check_output_path
        from ..io import format_of, save
        format_of(out)                          # an unknown suffix or a bad path fails before the draw
        check_output_path(out, what="`out`")
        inst = llm(pool, n, tasks=tasks, price=price, seed=seed, batch_sizes=batch_sizes,
                   difficulty_sd=difficulty_sd, free_models=free_models)
        save(inst, out)
        return inst
    if out is not None:
        from .llm_chunked import write_llm
        return write_llm(out, pool, n, tasks=tasks, price=price, seed=seed, batch_sizes=batch_sizes,
                         difficulty_sd=difficulty_sd, free_models=free_models, chunk_queries=chunk_queries,
                         client=client)
    if chunk_queries is not None or client is not None:
        raise InstanceError("out", "`chunk_queries` and `client` apply only with out='x.zarr'")
    return llm_truth(pool, n, tasks=tasks, price=price, seed=seed, batch_sizes=batch_sizes,
                     difficulty_sd=difficulty_sd, free_models=free_models).instance
