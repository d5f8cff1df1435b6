"""Streams from real routing data (:class:`robatch_opt.datasets.RoutingData`).

Outcomes and costs are the data's own: ``outcome[i, k]`` is what model ``k`` really scored
on query ``i``, and the unbatched cost of a query is the data's real cost (split into the
task's system prompt and the query's own tokens by :mod:`robatch_opt.datasets.tokens`).
Real data has no batched answers: a batched answer's outcome is the real outcome times the
fitted retention ``r_k(b)`` (:func:`robatch_opt.proxy.fit_degradation`, as in
:meth:`RoutingData.instance`). Features: the question text hashed into word uni- and
bigrams (:class:`sklearn.feature_extraction.text.HashingVectorizer`, stateless, so folds
share one feature space) plus a one-hot task indicator.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .errors import StreamError
from .stream import RequestStream, _retention_from_instance, _task_onehot

__all__ = ["stream_from_routing_data", "text_features", "is_routing_data", "HASH_FEATURES"]

#: Width of the hashed text features.
HASH_FEATURES = 1 << 12


def is_routing_data(obj) -> bool:
    try:
        from ..datasets import RoutingData
    except ImportError:
        return False
    return isinstance(obj, RoutingData)


def text_features(data) -> sp.csr_matrix:
    """Hashed word 1-2-grams of each question (l2-normalised) and a one-hot task, CSR (n, 2^12 + T)."""
    from sklearn.feature_extraction.text import HashingVectorizer
    hv = HashingVectorizer(n_features=HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    if len(data.question) == 0:
        # scikit-learn's transform of no document raises StopIteration; an empty stream is valid.
        return sp.csr_matrix((0, HASH_FEATURES + len(data.task_names)))
    Xt = hv.transform([str(q) for q in data.question])
    return sp.hstack([Xt, _task_onehot(np.asarray(data.task, dtype=np.int64), len(data.task_names))],
                     format="csr")


def stream_from_routing_data(data, *, batch_sizes=(1, 2, 4, 8), degradation=None, prior=None) -> RequestStream:
    """A stream of real queries with real outcomes and real costs.

    Parameters
    ----------
    data : RoutingData
        Every outcome and cost must be known (use ``data.dropna()``); queries stream in
        their order.
    batch_sizes : sequence of int
        Batch sizes every model may use (admissible where the context window allows).
    degradation : Degradation, optional
        Retention curves; default :func:`robatch_opt.proxy.fit_degradation` (see
        :meth:`RoutingData.instance`).
    prior : RoutingData, optional
        Other data (e.g. the training folds) whose mean output tokens per (task, model) are
        the routers' prior; default this data's own means (say so when you report).
    """
    y = np.asarray(data.outcome, dtype=np.float64)
    bad = ~np.isfinite(y) | ~np.isfinite(np.asarray(data.cost_usd, dtype=np.float64))
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        raise StreamError(f"outcome[{i}, {k}]", f"query {data.query_id[i]!r} has no outcome or cost on "
                                               f"{data.model_names[k]!r}; stream data.dropna()")
    inst = data.instance(y, batch_sizes=batch_sizes, degradation=degradation)
    _, r = _retention_from_instance(inst)
    src = data if prior is None else prior
    T, K = len(data.task_names), len(data.model_names)
    out = np.asarray(src.output_tokens, dtype=np.float64)
    pt = np.zeros((T, K))
    for t in range(T):
        sel = (np.asarray(src.task) == t) & np.isfinite(out).all(axis=1)
        if sel.any():
            pt[t] = out[sel].mean(axis=0)
        elif np.isfinite(out).any():
            pt[t] = np.nanmean(out, axis=0)       # a task without data: the mean over all tasks
    return RequestStream(instance=inst, outcome=y, retention=r, features=text_features(data),
                         output_tokens_prior=np.nan_to_num(pt),
                         source=f"{data.source or 'RoutingData'}: real outcomes and costs; batched outcome = "
                                f"real outcome x fitted retention", data=data)
