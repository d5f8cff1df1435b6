"""Request streams: what a replay feeds a router, and the realized truth it grades with.

A :class:`RequestStream` is a sequence of requests in arrival order. It holds

- what a router may see when a request arrives: its task, its features (a sparse row), its
  input tokens and the pool (prices, system prompts, batch sizes, context windows), all in
  :attr:`RequestStream.instance` and :attr:`RequestStream.features`;
- what only the replay sees: the realized outcome of every model on every request,
  unbatched (:attr:`RequestStream.outcome`, in [0, 1]), and the realized output tokens
  (``instance.output_tokens``).

A batched answer's outcome is ``outcome[i, k] * retention[j]`` for option ``j = (k, b)``:
real data has no batched answers, so the retention curve stands in for them (the design's
convention; the same number the planners' utilities use). A partial last call of a group
counts with its nominal batch size, as in :func:`robatch_opt.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..instance import Instance
from ..proxy.simulate import subset_instance
from .errors import StreamError

__all__ = ["RequestStream", "stream_from_llm", "stream_from_instance", "as_stream"]


@dataclass(frozen=True, eq=False)
class RequestStream:
    """Requests in arrival order, with their realized outcomes.

    Attributes
    ----------
    instance : Instance
        Pool, tasks, per-request tokens and admissibility. Its ``output_tokens`` are the
        realized ones (the replay bills them; routers must predict them). Its ``utility`` is
        not used by routers.
    outcome : ndarray, shape (n, K)
        Realized unbatched outcome of model ``k`` on request ``i``, in [0, 1] (0/1 for real
        correctness or a simulated draw).
    retention : ndarray, shape (J,)
        ``r_k(b)`` of every option of ``instance.options``.
    features : scipy.sparse.csr_matrix, shape (n, d)
        What a predictor sees of each request.
    output_tokens_prior : ndarray, shape (T, K)
        Output tokens per (task, model) known before the stream (from other data); routers
        start their running means here.
    source : str
        One line saying where outcomes and costs come from.
    data : RoutingData, optional
        The real data the stream was built from (same rows, same order). A predictor other
        than :class:`~robatch_opt.online.OnlineLogistic` (e.g. a fitted
        ``ro.proxy.TextUtility``) is then asked ``predict(data.select(rows))``.
    """

    instance: Instance
    outcome: np.ndarray
    retention: np.ndarray
    features: sp.csr_matrix
    output_tokens_prior: np.ndarray
    source: str
    data: object = None

    def __post_init__(self):
        inst = self.instance
        if not isinstance(inst, Instance):
            raise StreamError("instance", f"must be a robatch_opt.Instance, got {type(inst).__name__}")
        n, K, J, T = inst.n_queries, inst.n_models, inst.n_options, inst.n_tasks
        y = np.ascontiguousarray(self.outcome, dtype=np.float64)
        if y.shape != (n, K):
            raise StreamError("outcome", f"must have shape ({n}, {K}), got {y.shape}")
        bad = ~np.isfinite(y) | (y < 0) | (y > 1)
        if bad.any():
            i, k = (int(v) for v in np.argwhere(bad)[0])
            raise StreamError(f"outcome[{i}, {k}]", f"must be in [0, 1] (drop rows with a missing outcome), "
                                                   f"got {y[i, k]!r}")
        r = np.ascontiguousarray(self.retention, dtype=np.float64)
        if r.shape != (J,) or not np.all(np.isfinite(r)) or (r < 0).any() or (r > 1).any():
            raise StreamError("retention", f"must be {J} values in [0, 1], one per option")
        X = sp.csr_matrix(self.features, dtype=np.float64)
        if X.shape[0] != n:
            raise StreamError("features", f"must have {n} rows, got {X.shape[0]}")
        if not np.all(np.isfinite(X.data)):
            raise StreamError("features", "must be finite")
        X.sort_indices()
        prior = np.ascontiguousarray(self.output_tokens_prior, dtype=np.float64)
        if prior.shape != (T, K) or not np.all(np.isfinite(prior)) or (prior < 0).any():
            raise StreamError("output_tokens_prior", f"must be ({T}, {K}) finite values >= 0")
        for name, a in (("outcome", y), ("retention", r), ("output_tokens_prior", prior)):
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        object.__setattr__(self, "features", X)

    @property
    def n_requests(self) -> int:
        """Number of requests ``n`` (``instance.n_queries``)."""
        return self.instance.n_queries

    @property
    def model_names(self) -> tuple[str, ...]:
        """Names of the pool's ``K`` models, in the column order of :attr:`outcome`."""
        return tuple(m.name for m in self.instance.models)

    @property
    def task_names(self) -> tuple[str, ...]:
        """Names of the ``T`` tasks, in the order of ``instance.query_task``'s indices."""
        return tuple(t.name for t in self.instance.tasks)

    def realized_utility(self) -> np.ndarray:
        """``outcome[i, k_j] * retention[j]``, shape (n, J): what each option would have scored."""
        om = self.instance.option_model
        return np.clip(self.outcome[:, om] * self.retention[None, :], 0.0, 1.0)

    def hindsight_instance(self) -> Instance:
        """The stream as an RwB instance whose utilities are the realized outcomes."""
        return subset_instance(self.instance, np.arange(self.n_requests), utility=self.realized_utility())

    def subset(self, requests) -> "RequestStream":
        """The stream restricted to ``requests`` (in the given order)."""
        q = np.asarray(requests, dtype=np.int64)
        return RequestStream(instance=subset_instance(self.instance, q), outcome=self.outcome[q],
                             retention=self.retention, features=self.features[q],
                             output_tokens_prior=self.output_tokens_prior, source=self.source,
                             data=None if self.data is None else self.data.select(q))

    def mean_output_tokens(self) -> np.ndarray:
        """Mean realized output tokens per (task, model), shape (T, K) (a prior for another stream)."""
        inst = self.instance
        out = np.zeros((inst.n_tasks, inst.n_models))
        for t in range(inst.n_tasks):
            sel = inst.query_task == t
            if sel.any():
                out[t] = inst.output_tokens[sel].mean(axis=0)
        return out


def _task_onehot(query_task: np.ndarray, n_tasks: int) -> sp.csr_matrix:
    n = query_task.shape[0]
    return sp.csr_matrix((np.ones(n), (np.arange(n), query_task)), shape=(n, n_tasks))


def _retention_from_instance(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """Base utility (n, K) and retention (J,) of an instance that has b = 1 for every model."""
    n, K = inst.n_queries, inst.n_models
    u0 = np.empty((n, K))
    r = np.empty(inst.n_options)
    for k, m in enumerate(inst.models):
        if 1 not in m.batch_sizes:
            raise StreamError(f"models[{m.name!r}].batch_sizes", "must include 1 to derive outcomes")
        j1 = inst.options.index((k, 1))
        u0[:, k] = inst.utility[:, j1]
        for b in m.batch_sizes:
            j = inst.options.index((k, b))
            pos = u0[:, k] > 0
            r[j] = float(np.median(inst.utility[pos, j] / u0[pos, k])) if pos.any() else 1.0
    return u0, np.clip(r, 0.0, 1.0)


def stream_from_llm(workload, *, seed: int = 0, prior_seed: int | None = None) -> RequestStream:
    """A stream from an :class:`~robatch_opt.workloads.LLMWorkload`, with simulated outcomes.

    Parameters
    ----------
    workload : LLMWorkload
        From :func:`robatch_opt.workloads.llm_truth`.
    seed : int
        Seed of the outcome draws ``outcome[i, k] ~ Bernoulli(u0[i, k])`` and of the features.
    prior_seed : int, optional
        Seed of an independent workload of the same kind whose mean output tokens are the
        routers' prior (default ``workload.seed + 1``).

    Returns
    -------
    RequestStream
        Features: the simulated difficulty score, log input tokens and two noise columns of
        :func:`robatch_opt.proxy.query_features`, plus a one-hot task indicator.
    """
    from ..proxy.simulate import query_features
    from ..workloads import llm_truth

    inst = workload.instance
    rng = np.random.default_rng([int(seed), 4242])
    y = (rng.random(workload.base_utility.shape) < workload.base_utility).astype(np.float64)
    feats, _ = query_features(workload, seed=int(seed))
    X = sp.hstack([sp.csr_matrix(feats), _task_onehot(inst.query_task, inst.n_tasks)], format="csr")
    ps = workload.seed + 1 if prior_seed is None else int(prior_seed)
    other = llm_truth(workload.pool, n=max(200, min(inst.n_queries, 2000)), tasks=list(workload.task_names),
                      price=workload.price, seed=ps,
                      batch_sizes=inst.models[0].batch_sizes, difficulty_sd=workload.difficulty_sd)
    prior = np.array([[other.instance.output_tokens[other.instance.query_task == t, k].mean()
                       for k in range(inst.n_models)] for t in range(inst.n_tasks)])
    return RequestStream(instance=inst, outcome=y, retention=workload.retention, features=X,
                         output_tokens_prior=prior,
                         source=f"ro.workloads.llm({workload.pool!r}, seed={workload.seed}): simulated outcomes "
                                f"Bernoulli(u0), batched outcome x retention")


def stream_from_instance(inst: Instance, *, seed: int = 0) -> RequestStream:
    """A stream from an :class:`~robatch_opt.Instance` whose utilities are ``u0 * r_k(b)``.

    Outcomes are drawn ``Bernoulli(u[i, (k, 1)])``; the retention of option ``(k, b)`` is the
    median ratio ``u[:, (k, b)] / u[:, (k, 1)]``. Features: one-hot task and log input tokens
    (an instance carries nothing else about a query). The output-token prior is the
    instance's mean per (task, model).

    Parameters
    ----------
    inst : Instance
        Every model must allow batch size 1 (its utilities are the unbatched ``u0``).
    seed : int
        Seed of the outcome draws.

    Returns
    -------
    RequestStream
        Requests in the instance's query order. Features, shape (n, T + 1): the one-hot
        task, then ``log(max(input_tokens, 1))``. Retention is 1.0 for an option whose model
        has ``u0 = 0`` on every query, and clipped to [0, 1]. A task without queries has a
        prior of 0 output tokens.

    Raises
    ------
    StreamError
        A model whose ``batch_sizes`` lack 1.
    """
    u0, r = _retention_from_instance(inst)
    rng = np.random.default_rng([int(seed), 4242])
    y = (rng.random(u0.shape) < u0).astype(np.float64)
    X = sp.hstack([_task_onehot(inst.query_task, inst.n_tasks),
                   sp.csr_matrix(np.log(np.maximum(inst.input_tokens, 1.0))[:, None])], format="csr")
    prior = np.array([[inst.output_tokens[inst.query_task == t, k].mean() if (inst.query_task == t).any() else 0.0
                       for k in range(inst.n_models)] for t in range(inst.n_tasks)])
    return RequestStream(instance=inst, outcome=y, retention=r, features=X, output_tokens_prior=prior,
                         source="Instance: simulated outcomes Bernoulli(u at b = 1), batched outcome x retention")


def as_stream(obj, *, seed: int = 0) -> RequestStream:
    """Turn what :func:`replay` accepts into a :class:`RequestStream`.

    Accepts a RequestStream (as is), an LLMWorkload, an Instance, or a RoutingData (real
    outcomes and costs; see :mod:`robatch_opt.online.realdata`).

    Parameters
    ----------
    obj : RequestStream, LLMWorkload, Instance or RoutingData
        An LLMWorkload goes through :func:`stream_from_llm`, an Instance through
        :func:`stream_from_instance`, a RoutingData through
        :func:`~robatch_opt.online.realdata.stream_from_routing_data` (default batch sizes
        1, 2, 4, 8).
    seed : int
        Seed of the simulated outcome draws (LLMWorkload, Instance) and of an LLMWorkload's
        features; unused for a RequestStream or RoutingData.

    Returns
    -------
    RequestStream
        ``obj`` itself when it is one.

    Raises
    ------
    StreamError
        ``obj`` is none of the accepted types; an Instance with a model that lacks batch
        size 1; a RoutingData with a missing outcome or cost (stream ``data.dropna()``).
    """
    if isinstance(obj, RequestStream):
        return obj
    from ..workloads import LLMWorkload
    if isinstance(obj, LLMWorkload):
        return stream_from_llm(obj, seed=seed)
    if isinstance(obj, Instance):
        return stream_from_instance(obj, seed=seed)
    try:
        from .realdata import is_routing_data, stream_from_routing_data
    except ImportError:                                          # datasets not available
        is_routing_data = None
    if is_routing_data is not None and is_routing_data(obj):
        return stream_from_routing_data(obj)
    raise StreamError("stream", f"must be a RequestStream, LLMWorkload, Instance or RoutingData, "
                                f"got {type(obj).__name__}")
