"""RoBatch's batch-aware proxy utility: ``u[i, k, b] = u0[i, k] * r_k(b)`` for new queries.

:class:`ProxyUtility` joins a fitted base predictor (:class:`~.base_utility.KNNUtility` or
:class:`~.base_utility.LogisticUtility`) and a fitted degradation
(:func:`~.degradation.fit_degradation`) and turns query features into the utility tensor
the solvers need, or directly into a ready :class:`~robatch_opt.Instance`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..instance import Instance, Model, Task
from .base_utility import PredictorError
from .degradation import Degradation

__all__ = ["ProxyUtility"]


class ProxyUtility:
    """Base utility recalibrated by a per-model batch degradation.

    Parameters
    ----------
    base : KNNUtility or LogisticUtility
        A fitted base predictor; its ``model_names`` name the columns of ``predict``.
    degradation : Degradation
        A fitted degradation; models without their own curve are predicted from their
        capability (see :class:`~.degradation.Degradation`).
    capabilities : mapping of model name to float, optional
        Capabilities for models the degradation has no curve and no default capability for.
    task_specific : bool
        Apply the degradation's task severities for tasks it knows (default False: the
        typical-task curve, as in RoBatch's per-model degradation).

    Examples
    --------
    >>> import robatch_opt as ro
    >>> from robatch_opt.proxy import LogisticUtility, fit_degradation
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 1))
    >>> y = (rng.random((500, 2)) < 1 / (1 + np.exp(-x))).astype(float)
    >>> base = LogisticUtility().fit(x, y, model_names=["gpt-4", "gpt-3.5-turbo"])
    >>> proxy = ProxyUtility(base, fit_degradation())
    >>> u = proxy.utility([[0.0], [1.0]], batch_sizes=[1, 16])
    >>> u.shape, bool(np.all(u[:, :, 1] <= u[:, :, 0]))
    ((2, 2, 2), True)
    """

    def __init__(self, base, degradation: Degradation, *, capabilities: Mapping[str, float] | None = None,
                 task_specific: bool = False):
        if not hasattr(base, "predict") or not hasattr(base, "model_names"):
            raise PredictorError("base", f"must be a fitted KNNUtility or LogisticUtility, got {type(base).__name__}")
        if not isinstance(degradation, Degradation):
            raise PredictorError("degradation", f"must be a Degradation (from fit_degradation), "
                                                f"got {type(degradation).__name__}")
        self.base = base
        self.degradation = degradation
        self.capabilities = dict(capabilities or {})
        self.task_specific = bool(task_specific)

    @property
    def model_names(self) -> tuple[str, ...]:
        """Models the base predictor knows, in its column order."""
        return tuple(self.base.model_names)

    def _columns(self, model_names: Sequence[str]) -> np.ndarray:
        cols = []
        for pos, m in enumerate(model_names):
            if m not in self.model_names:
                raise PredictorError(f"models[{pos}]", f"model {m!r} is unknown to the base predictor; "
                                                       f"it knows {list(self.model_names)}")
            cols.append(self.model_names.index(m))
        return np.array(cols, dtype=np.int64)

    def _retention(self, model_name: str, b, task: str | None = None):
        t = task if (self.task_specific and task in self.degradation.task_severity) else None
        return self.degradation.retention(model_name, b, task=t, capability=self.capabilities.get(model_name))

    def base_utility(self, features, task=None) -> np.ndarray:
        """``u0[i, k]`` from the base predictor, shape (n, K)."""
        return self.base.predict(features, task=task)

    def utility(self, features, task=None, *, batch_sizes: Sequence[int] = (1, 2, 4, 8),
                model_names: Sequence[str] | None = None) -> np.ndarray:
        """The tensor ``u[i, k, b]`` for a common set of batch sizes, shape (n, K, S).

        Parameters
        ----------
        features : array_like, shape (n, d)
        task : array_like of str, shape (n,), optional
        batch_sizes : sequence of int
        model_names : sequence of str, optional
            Models (axis 1), default :attr:`model_names`.
        """
        names = self.model_names if model_names is None else tuple(model_names)
        u0 = self.base_utility(features, task)[:, self._columns(names)]
        r = np.array([[self._retention(m, b) for b in batch_sizes] for m in names])     # (K, S)
        if self.task_specific and task is not None:
            labels = np.asarray(task).astype(str)
            out = np.empty((u0.shape[0], len(names), len(batch_sizes)))
            for t in np.unique(labels):
                rows = labels == t
                rt = np.array([[self._retention(m, b, t) for b in batch_sizes] for m in names])
                out[rows] = u0[rows][:, :, None] * rt[None]
            return np.clip(out, 0.0, 1.0)
        return np.clip(u0[:, :, None] * r[None], 0.0, 1.0)

    def option_utility(self, features, task, models: Sequence[Model]) -> np.ndarray:
        """``u[i, j]`` for the options ``(k, b)`` of ``models`` (each model's own batch sizes), shape (n, J)."""
        names = [m.name for m in models]
        u0 = self.base_utility(features, task)[:, self._columns(names)]
        labels = None if task is None else np.asarray(task).astype(str)
        cols = []
        for k, m in enumerate(models):
            for b in m.batch_sizes:
                if self.task_specific and labels is not None:
                    r = np.array([self._retention(m.name, b, t) for t in labels.tolist()])
                else:
                    r = self._retention(m.name, b)
                cols.append(u0[:, k] * r)
        return np.clip(np.stack(cols, axis=1), 0.0, 1.0)

    def instance(self, models: Sequence[Model], tasks: Sequence[Task], query_task, input_tokens,
                 output_tokens, features) -> Instance:
        """A ready :class:`~robatch_opt.Instance` for new queries, with predicted utilities.

        Parameters
        ----------
        models, tasks, query_task, input_tokens, output_tokens
            As :class:`~robatch_opt.Instance`. Task names must be tasks the base predictor
            was fitted on (its per-task intercepts or neighbourhoods).
        features : array_like, shape (n, d)
            Query features in the training columns' order.

        Returns
        -------
        Instance
        """
        tasks = tuple(tasks)
        qt = np.asarray(query_task, dtype=np.int64)
        labels = np.array([t.name for t in tasks], dtype=str)[qt] if qt.size else np.zeros(0, str)
        u = self.option_utility(features, labels, tuple(models))
        return Instance(models=tuple(models), tasks=tasks, query_task=qt, input_tokens=input_tokens,
                        output_tokens=output_tokens, utility=u)
