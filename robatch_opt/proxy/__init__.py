"""RoBatch's modeling stage: a batch-aware proxy utility model fitted from observation logs.

The solvers need ``u[i, k, b]``: the expected quality of query ``i`` on model ``k`` in a
batch of ``b``. This package estimates it from what a user has observed, in RoBatch's
decomposition ``u[i, k, b] = u0[i, k] * r_k(b)``:

- :func:`load_logs` reads and validates an observation log (CSV or JSON Lines; the format is
  documented in :mod:`robatch_opt.proxy.logs`);
- :func:`fit_degradation` fits the per-model retention curves ``r_k(b)`` (with no argument,
  on the bundled published batch-prompting observations);
- :class:`KNNUtility` (retrieval-based) and :class:`LogisticUtility` (training-based) predict
  the unbatched utility ``u0[i, k]`` from query features;
- :class:`TextUtility` (scikit-learn) predicts ``u0[i, k]`` and each model's output tokens
  from a query's text, for real logs (:class:`~robatch_opt.datasets.RoutingData`), shrunk
  toward the per-(task, model) mean (:class:`TaskMeanUtility`);
- :class:`ProxyUtility` composes them into ``u[i, k, b]`` and a ready
  :class:`~robatch_opt.Instance`;
- :mod:`robatch_opt.proxy.simulate` draws features and logs from a workload's ground truth,
  so the whole pipeline can be measured against the truth.
"""

from __future__ import annotations

from .base_utility import (KNNUtility, LogisticUtility, PredictorError, brier_score,
                           expected_calibration_error, roc_auc)
from .compose import ProxyUtility
from .degradation import (BatchObservations, Degradation, DegradationError, fit_degradation,
                          leave_one_batch_size_out, published_batch_observations)
from .logs import (DuplicateRowError, InconsistentQueryError, LogError, LogValueError, MissingColumnError,
                   ObservationLog, OutcomeRangeError, UnknownColumnError, UnknownModelError, load_logs,
                   save_logs)
from .simulate import query_features, simulate_logs, subset_instance
from .text_utility import TaskMeanUtility, TextUtility, task_model_means

__all__ = [
    "load_logs", "save_logs", "ObservationLog",
    "LogError", "MissingColumnError", "UnknownColumnError", "UnknownModelError", "OutcomeRangeError",
    "DuplicateRowError", "InconsistentQueryError", "LogValueError",
    "fit_degradation", "Degradation", "BatchObservations", "DegradationError",
    "published_batch_observations", "leave_one_batch_size_out",
    "KNNUtility", "LogisticUtility", "PredictorError", "brier_score", "roc_auc",
    "expected_calibration_error",
    "ProxyUtility",
    "query_features", "simulate_logs", "subset_instance",
    "TextUtility", "TaskMeanUtility", "task_model_means",
]
