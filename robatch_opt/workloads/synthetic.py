"""Seeded synthetic RwB instances in the spirit of Pisinger's knapsack classes.

Every family shares one cost structure and differs in how utility relates to cost. Nothing
here is measured: every number is an assumption chosen to give realistic orders of
magnitude, stated below, and :func:`synthetic` is vectorised (O(n J) time and memory).

Shared structure (all families)
-------------------------------
- **Models** ``k = 0..K-1``: a price ladder ``price_in[k] = 0.05 * 60 ** (k / (K - 1))`` USD
  per million tokens (0.05 to 3.0; ``K = 1`` gives 0.05), ``price_out = 4 * price_in``; the
  cheapest model has an 8,192-token window, the others 32,768. Every model allows
  ``batch_sizes``.
- **Queries**: task uniform over ``T`` tasks; input tokens log-normal (median 150, log-sd
  0.6, clipped to [1, 2000]); output tokens log-normal (median 60, log-sd 0.5, clipped to
  [1, 1000]) times a per-model factor ``exp(N(0, 0.1^2))``, rounded. Every query fits the
  cheapest model at ``b = 1``; large batches on the 8k model are sometimes inadmissible.
- **Tasks**: system prompts uniform in [100, 2000] tokens (``llm_like``: see below).

Families (utility ``u[i, j]`` of option ``j = (k, b)``; ``c[i, j]`` its amortized cost)
---------------------------------------------------------------------------------------
``"uncorrelated"``
    ``u ~ U(0, 1)`` independently of cost.
``"correlated"``
    Utility rises with cost, noisily: ``u = clip(0.1 + 0.8 z + N(0, 0.1^2), 0, 1)`` with
    ``z`` the log-cost rescaled to [0, 1] over the instance.
``"strongly_correlated"``
    Utility is an almost exact affine function of cost with one slope for every query:
    ``u = a_i + beta * (c - min_j c[i, j]) + U(-1e-4, 1e-4)``, ``beta = 0.9 / max_i span_i``,
    ``a_i ~ U(0.05, 0.95 - beta * span_i)``. Every upgrade then has (almost) the same
    utility per dollar, so the LP relaxation is flat and the integer problem behaves like
    subset sum: the hard MCKP class (Pisinger's strongly correlated knapsack).
``"llm_like"``
    Many tasks (default 24) with large system prompts (``shots ~ U{2..8}`` examples of
    ``U(60, 300)`` tokens plus ``U(50, 400)`` tokens of instructions), per-task token
    profiles (question median ``U(30, 200)``, answer median ``U(2, 300)``; log-sd 0.35 /
    0.3 around them, output shared across models times a mild model factor), and an
    item-response utility: ability ladder ``theta_k = linspace(-1, 2, K)`` plus a
    per-(model, task) specialisation ``N(0, 0.3^2)``; task difficulty ``delta_t ~ N(0, 0.8^2)``
    and query difficulty ``d_i = delta_t + N(0, 1.5^2)``; ``u0 = sigmoid(theta_k + spec_kt - d_i)``.
    Batch degradation ``r_k(b)`` comes from :func:`robatch_opt.workloads.retention.retention`
    at the model's expected single-prompt accuracy (mean over tasks) used as its capability.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InstanceError
from ..instance import Instance, Model, Task
from .llm import _check_batch_sizes, _check_int
from .retention import retention as _retention

__all__ = ["synthetic", "FAMILIES", "model_ladder"]

FAMILIES = ("uncorrelated", "correlated", "strongly_correlated", "llm_like")
_DEFAULT_TASKS = {"uncorrelated": 4, "correlated": 4, "strongly_correlated": 4, "llm_like": 24}

_SMALL_WINDOW = 8192
_LARGE_WINDOW = 32768
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite.hermgauss(64)


def model_ladder(n_models: int, batch_sizes: Sequence[int] = (1, 2, 4, 8)) -> list[Model]:
    """The synthetic price ladder shared by every family.

    Parameters
    ----------
    n_models : int
    batch_sizes : sequence of int

    Returns
    -------
    list of Model
        ``m0 .. m{K-1}``, input price 0.05 to 3.0 USD / Mtok geometrically, output price 4x,
        window 8,192 for ``m0`` and 32,768 for the rest.

    Examples
    --------
    >>> [round(m.price_in, 3) for m in model_ladder(3)]
    [0.05, 0.387, 3.0]
    """
    K = _check_int(n_models, "n_models", 1)
    sizes = _check_batch_sizes(batch_sizes)
    frac = np.arange(K) / (K - 1) if K > 1 else np.zeros(1)
    price_in = 0.05 * 60.0 ** frac
    return [Model(name=f"m{k}", price_in=float(price_in[k]), price_out=float(4.0 * price_in[k]),
                  context_window=_SMALL_WINDOW if k == 0 else _LARGE_WINDOW, batch_sizes=sizes)
            for k in range(K)]


def _amortized_cost(models, system_tokens, query_task, input_tokens, output_tokens) -> np.ndarray:
    """``c[i, j] = f[t(i), k] / b + v[i, k]`` for every option (admissible or not), shape (n, J)."""
    om = np.array([k for k, m in enumerate(models) for _ in m.batch_sizes], dtype=np.int64)
    ob = np.array([b for m in models for b in m.batch_sizes], dtype=np.float64)
    p_in = np.array([m.price_in for m in models]) / 1e6
    p_out = np.array([m.price_out for m in models]) / 1e6
    var = input_tokens[:, None] * p_in[None, :] + output_tokens * p_out[None, :]          # (n, K)
    cost = var[:, om]
    cost += (system_tokens[query_task][:, None] * p_in[om][None, :]) / ob[None, :]
    return cost


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def synthetic(n: int, family: str = "uncorrelated", seed: int = 0, *, n_models: int = 4,
              batch_sizes: Sequence[int] = (1, 2, 4, 8), n_tasks: int | None = None) -> Instance:
    """A seeded synthetic instance of one family.

    Parameters
    ----------
    n : int
        Number of queries, >= 1.
    family : {"uncorrelated", "correlated", "strongly_correlated", "llm_like"}
        How utility relates to cost (see the module docstring).
    seed : int
        Seed of every random draw; the same arguments give identical instances.
    n_models : int
        Models on the price ladder (:func:`model_ladder`), >= 1.
    batch_sizes : sequence of int
        Allowed batch sizes of every model (strictly increasing, each >= 1).
    n_tasks : int, optional
        Number of tasks; default 24 for ``"llm_like"``, 4 otherwise.

    Returns
    -------
    Instance
        ``n`` queries, ``n_models`` models, ``n_models * len(batch_sizes)`` options (16 by
        default).

    Raises
    ------
    InstanceError
        Naming ``family`` (with the valid ones), ``n``, ``seed``, ``n_models``, ``n_tasks``
        or ``batch_sizes``.

    Notes
    -----
    Vectorised NumPy: O(n J) time and memory (n = 10^6 with J = 16 takes a few seconds).

    Examples
    --------
    >>> inst = synthetic(50, "strongly_correlated", seed=3)
    >>> inst.n_queries, inst.n_models, inst.n_tasks, inst.n_options
    (50, 4, 4, 16)
    """
    if not isinstance(family, str) or family not in FAMILIES:
        raise InstanceError("family", f"unknown family {family!r}; valid: {list(FAMILIES)}")
    n = _check_int(n, "n", 1)
    seed = _check_int(seed, "seed", 0)
    T = _DEFAULT_TASKS[family] if n_tasks is None else _check_int(n_tasks, "n_tasks", 1)
    models = model_ladder(n_models, batch_sizes)
    K = len(models)
    rng = np.random.default_rng(seed)
    query_task = rng.integers(0, T, size=n, dtype=np.int64)
    if family == "llm_like":
        return _llm_like(rng, models, T, query_task)

    system_tokens = rng.integers(100, 2001, size=T).astype(np.float64)
    input_tokens = np.clip(np.round(150.0 * np.exp(rng.normal(0.0, 0.6, n))), 1, 2000)
    output_tokens = np.clip(np.round(60.0 * np.exp(rng.normal(0.0, 0.5, n))[:, None]
                                     * np.exp(rng.normal(0.0, 0.1, K))[None, :]), 1, 1000)
    tasks = [Task(f"t{t}", float(system_tokens[t])) for t in range(T)]
    J = sum(len(m.batch_sizes) for m in models)

    if family == "uncorrelated":
        utility = rng.random((n, J))
    else:
        cost = _amortized_cost(models, system_tokens, query_task, input_tokens, output_tokens)
        if family == "correlated":
            np.log(cost, out=cost)
            lo, hi = float(cost.min()), float(cost.max())
            cost -= lo
            cost *= 0.8 / max(hi - lo, 1e-300)
            cost += 0.1
            cost += rng.normal(0.0, 0.1, (n, J))
            utility = np.clip(cost, 0.0, 1.0, out=cost)
        else:                                                       # strongly_correlated
            cmin = cost.min(axis=1)
            span = cost.max(axis=1) - cmin
            beta = 0.9 / max(float(span.max()), 1e-300)
            # Written as low + U(0,1) * width so that width = 0 (the widest query) is allowed.
            intercept = 0.05 + rng.random(n) * np.maximum(0.9 - beta * span, 0.0)
            cost -= cmin[:, None]
            cost *= beta
            cost += intercept[:, None]
            cost += rng.uniform(-1e-4, 1e-4, (n, J))
            utility = np.clip(cost, 0.0, 1.0, out=cost)
    return Instance(models=models, tasks=tasks, query_task=query_task, input_tokens=input_tokens,
                    output_tokens=output_tokens, utility=utility)


def _llm_like(rng: np.random.Generator, models: list[Model], T: int, query_task: np.ndarray) -> Instance:
    n, K = query_task.shape[0], len(models)
    shots = rng.integers(2, 9, size=T)
    system_tokens = np.round(shots * rng.uniform(60, 300, T) + rng.uniform(50, 400, T))
    question = rng.uniform(30, 200, T)
    answer = rng.uniform(2, 300, T)
    input_tokens = np.clip(np.round(question[query_task] * np.exp(rng.normal(0.0, 0.35, n))), 1, 2000)
    query_len = rng.normal(0.0, 0.3, n)
    verbosity = rng.normal(0.0, 0.1, (K, T))
    output_tokens = np.clip(np.round(answer[query_task][:, None]
                                     * np.exp(query_len[:, None] + verbosity[:, query_task].T)), 1, 2000)

    theta = np.linspace(-1.0, 2.0, K) if K > 1 else np.array([0.5])
    skill = theta[:, None] + rng.normal(0.0, 0.3, (K, T))                         # (K, T)
    task_difficulty = rng.normal(0.0, 0.8, T)
    difficulty = task_difficulty[query_task] + rng.normal(0.0, 1.5, n)
    base_utility = _sigmoid(skill[:, query_task].T - difficulty[:, None])        # (n, K)

    # Capability for the retention mapping: expected single-prompt accuracy, mean over tasks.
    d = np.sqrt(2.0) * 1.5 * _HERMITE_NODES
    expected = _sigmoid((skill - task_difficulty[None, :])[..., None] - d) @ _HERMITE_WEIGHTS / np.sqrt(np.pi)
    capability = expected.mean(axis=1)                                             # (K,)
    r = np.concatenate([_retention(float(capability[k]), np.array(m.batch_sizes)) for k, m in enumerate(models)])
    tasks = [Task(f"t{t}", float(system_tokens[t])) for t in range(T)]
    return Instance.from_decomposition(models, tasks, query_task, input_tokens, output_tokens,
                                       base_utility, r)
