"""Ground truth to test the proxy model against: query features and simulated logs.

Built on :func:`robatch_opt.workloads.llm.llm_truth`, whose item-response model gives every
query a difficulty ``d_i`` and every (query, model) a true unbatched utility
``u0[i, k] = sigmoid(theta[k, t(i)] - d_i)``, and every option a retention ``r_k(b)``.

- :func:`query_features`: what a user could measure about a query before answering it: the
  difficulty seen through noise (``d_i + N(0, noise_sd^2)``; think of a difficulty score
  from a small model), plus nuisance columns carrying no signal (pure noise and the log of
  the input length, which the generator draws independently of difficulty). Prediction is
  therefore learnable but imperfect, and a predictor must learn to ignore the nuisance.
- :func:`simulate_logs`: observed outcomes drawn from the true utilities: every chosen
  query on every model unbatched (``coverage`` < 1 drops pairs at random), and a
  ``batch_fraction`` of them again at each larger batch size, outcome
  ``~ Bernoulli(u0[i, k] * r_k(b))``.
- :func:`subset_instance`: the true instance restricted to some queries (e.g. a test split),
  optionally with other utilities (predicted ones), for end-to-end evaluation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..instance import Instance
from .logs import ObservationLog

__all__ = ["query_features", "simulate_logs", "subset_instance", "FEATURE_NAMES"]

#: Feature names of :func:`query_features` with the default two nuisance columns.
FEATURE_NAMES = ("difficulty_score", "log_input_tokens", "noise0", "noise1")


def query_features(workload, *, noise_sd: float = 0.5, n_noise: int = 2, seed: int = 0):
    """Features of every query of an :class:`~robatch_opt.workloads.llm.LLMWorkload`.

    Parameters
    ----------
    workload : LLMWorkload
        From :func:`robatch_opt.workloads.llm.llm_truth`.
    noise_sd : float
        Standard deviation of the noise on the difficulty (the difficulty's own is
        ``workload.difficulty_sd``, 1.5 by default).
    n_noise : int
        Number of pure-noise columns.
    seed : int

    Returns
    -------
    features : ndarray, shape (n, 2 + n_noise)
        ``difficulty_score``, ``log_input_tokens``, ``noise0``, ...
    names : tuple of str
    """
    rng = np.random.default_rng([seed, 7331])
    n = workload.difficulty.shape[0]
    score = workload.difficulty + rng.normal(0.0, noise_sd, n)
    cols = [score, np.log(workload.instance.input_tokens)] + [rng.normal(0.0, 1.0, n) for _ in range(n_noise)]
    names = ("difficulty_score", "log_input_tokens") + tuple(f"noise{j}" for j in range(n_noise))
    return np.stack(cols, axis=1), names


def simulate_logs(workload, queries: Sequence[int] | None = None, *, features=None, feature_names=None,
                  batch_sizes: Sequence[int] | None = None, batch_fraction: float = 0.25,
                  coverage: float = 1.0, seed: int = 0) -> ObservationLog:
    """Observed outcomes drawn from a workload's true utilities.

    Parameters
    ----------
    workload : LLMWorkload
    queries : sequence of int, optional
        Query indices to log (default all); query ids are ``"q<index>"``.
    features, feature_names : optional
        Per-query features of the whole workload (default :func:`query_features`).
    batch_sizes : sequence of int, optional
        Batch sizes > 1 to observe (default every size of each model above 1).
    batch_fraction : float
        Fraction of the logged queries observed again at each larger batch size, per model.
    coverage : float
        Probability that a (query, model) pair is observed unbatched.
    seed : int

    Returns
    -------
    ObservationLog
        Outcomes are 0/1; output tokens are the workload's ``o[i, k]``.
    """
    inst = workload.instance
    n = inst.n_queries
    idx = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    if features is None:
        features, feature_names = query_features(workload, seed=seed)
    features = np.asarray(features, dtype=np.float64)
    rng = np.random.default_rng([seed, 4242])
    parts = []                                # (query idx, model idx, batch size, outcome)
    for k, m in enumerate(inst.models):
        seen = idx[rng.random(idx.shape[0]) < coverage]
        parts.append((seen, np.full(seen.shape, k), np.ones(seen.shape, np.int64),
                      (rng.random(seen.shape[0]) < workload.base_utility[seen, k]).astype(np.float64)))
        sizes = [b for b in m.batch_sizes if b > 1] if batch_sizes is None else \
            [b for b in batch_sizes if b > 1 and b in m.batch_sizes]
        for b in sizes:
            j = inst.options.index((k, b))
            pick = np.sort(rng.choice(idx, size=int(round(batch_fraction * idx.shape[0])), replace=False))
            parts.append((pick, np.full(pick.shape, k), np.full(pick.shape, b, np.int64),
                          (rng.random(pick.shape[0]) < inst.utility[pick, j]).astype(np.float64)))
    q = np.concatenate([p[0] for p in parts])
    k = np.concatenate([p[1] for p in parts]).astype(np.int64)
    b = np.concatenate([p[2] for p in parts])
    y = np.concatenate([p[3] for p in parts])
    order = np.lexsort((b, k, q))             # rows grouped by query, like a per-query evaluation dump
    q, k, b, y = q[order], k[order], b[order], y[order]
    names = np.array([m.name for m in inst.models], dtype=str)
    task_names = np.array([t.name for t in inst.tasks], dtype=str)
    return ObservationLog(
        query_id=np.char.add("q", q.astype(str)), task=task_names[inst.query_task[q]], model=names[k],
        batch_size=b, outcome=y, input_tokens=inst.input_tokens[q], output_tokens=inst.output_tokens[q, k],
        features=features[q], feature_names=tuple(feature_names), models=tuple(names.tolist()))


def subset_instance(inst: Instance, queries: Sequence[int], utility=None) -> Instance:
    """``inst`` restricted to ``queries`` (in the given order), optionally with other utilities.

    Parameters
    ----------
    inst : Instance
    queries : sequence of int
    utility : array_like, shape (len(queries), J), optional
        Replacement utilities (e.g. predicted); default the instance's own.
    """
    q = np.asarray(queries, dtype=np.int64)
    u = inst.utility[q] if utility is None else utility
    return Instance(models=inst.models, tasks=inst.tasks, query_task=inst.query_task[q],
                    input_tokens=inst.input_tokens[q], output_tokens=inst.output_tokens[q], utility=u)
