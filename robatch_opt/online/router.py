"""The online routers: MESS+ (one decision per request) and batching windows (beyond MESS+).

Both keep MESS+'s state, the *virtual queue* ``Q`` of the service level: after the outcome
``y`` of a served request arrives, ``Q <- max(0, Q + alpha - y)``. ``Q`` grows while the
router falls short of ``alpha`` and is the weight of quality against cost in every
decision (drift-plus-penalty; ``proofs/online_sla.md``).

A router is driven by events (the replay, or a serving loop, calls them in time order):

- ``bind(stream)`` once: the pool (prices, system prompts, batch sizes) and the requests'
  arrival-time data (task, features, input tokens). Outcomes are never shown to a router.
- ``submit(i, now_s) -> list[Dispatch]``: request ``i`` arrives.
- ``next_deadline_s()`` and ``advance(now_s) -> list[Dispatch]``: windows that are due.
- ``feedback(Feedback)``: outcomes of a dispatch (possibly late, possibly never).
- ``withdraw(model)``: a model leaves the pool; later decisions avoid it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Sequence

import numpy as np

from ..kernels import online_kernels as ok
from ..proxy.base_utility import PredictorError
from .errors import OnlineError, StreamError, UnknownModelError
from .learner import OnlineLogistic
from .stream import RequestStream
from .window import DEFAULT_EXACT_TIME_S, plan_window_exact

__all__ = ["MessPlusRouter", "BatchingRouter", "RandomRouter", "Dispatch", "Feedback",
           "DEFAULT_V_SCALE", "calibrated_random_router", "WINDOW_SOLVERS", "EXACT_MAX_REQUESTS",
           "equilibrium_queue"]

#: ``V = None`` resolves to ``DEFAULT_V_SCALE / c_ref`` where ``c_ref`` is the mean expected
#: cost of one request on the most expensive model (USD, from the pool's prices, the
#: requests' input tokens and the output-token prior), unbatched for MESS+ and at each
#: model's largest batch size (amortized) for the batching router: ``V * cost`` of the
#: priciest model is 1 in the costs each router really pays. Chosen on the RouterBench
#: streams (``benchmarks/bench_online.py``): 0.1 overshot the service level (money spent
#: on satisfaction above alpha), 3 let MESS+'s queue grow past the 0.01 tolerance at 0.85.
DEFAULT_V_SCALE = 1.0

#: How :class:`BatchingRouter` may plan a window (see its ``window_solver``).
WINDOW_SOLVERS = ("heuristic", "exact", "auto")

#: ``window_solver="auto"`` solves windows of at most this many requests exactly (HiGHS).
EXACT_MAX_REQUESTS = 16

#: Pseudo-observations given to the output-token prior in the routers' running means.
PRIOR_WEIGHT = 5.0


@dataclass(frozen=True, eq=False)
class Dispatch:
    """Requests sent to one model together, in ``ceil(m / batch_size)`` calls.

    Attributes
    ----------
    time_s : float
        When they are sent.
    task : int
    model : int
    batch_size : int
        Nominal batch size of the calls (1 for MESS+).
    requests : ndarray of int64
        Requests whose answer from this model is served.
    shadow : ndarray of int64
        Exploring requests this model also answers, in the same calls, whose answer is not
        served (another model's is): their cost is paid and the learner sees the outcome.
        The calls hold ``requests`` then ``shadow``, in order.
    """

    time_s: float
    task: int
    model: int
    batch_size: int
    requests: np.ndarray
    shadow: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def members(self) -> np.ndarray:
        """Every request the calls hold, ``requests`` then ``shadow`` (ndarray of int64).

        The order is the calls' seating: the replay bills ``ceil(len(members) / batch_size)``
        system prompts over it.
        """
        return np.concatenate([self.requests, self.shadow])


@dataclass(frozen=True, eq=False)
class Feedback:
    """Outcomes of one dispatch, as reported back to the router.

    Attributes
    ----------
    dispatch : Dispatch
    served : ndarray of int64
        Served requests whose outcome arrived.
    satisfied : ndarray, shape (len(served),)
        Outcome of each served answer in [0, 1] (batched: real outcome x retention).
    rows : ndarray of int64
        Every member (served or shadow) whose outcome arrived.
    outcome : ndarray, shape (len(rows),)
        ``dispatch.model``'s unbatched-equivalent outcome on each (what the learner learns).
    output_tokens : ndarray, shape (len(rows),)
    """

    dispatch: Dispatch
    served: np.ndarray
    satisfied: np.ndarray
    rows: np.ndarray
    outcome: np.ndarray
    output_tokens: np.ndarray


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int if it is an integer >= 0 (not a bool, not a float); else OnlineError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OnlineError(name, f"must be an integer >= 0, got {seed!r}")
    return int(seed)


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not math.isfinite(alpha) or not 0 <= alpha <= 1:
        raise OnlineError("alpha", f"must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def _check_positive(value, name: str, *, allow_none=False, allow_zero=False, allow_inf=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value) \
            or (math.isinf(value) and not allow_inf) or value < 0 or (value == 0 and not allow_zero):
        op = ">= 0" if allow_zero else "> 0"
        raise OnlineError(name, f"must be a {'' if allow_inf else 'finite '}number {op}, got {value!r}")
    return float(value)


class _OnlineRouter:
    """State shared by the routers: queue, learner, output-token means, pool, exploration."""

    def __init__(self, model_names: Sequence[str], *, alpha, V=None, c=0.1, predictor=None, seed=0,
                 cost_model=None, initial_queue=0.0):
        if isinstance(model_names, str):
            model_names = [model_names]
        names = list(model_names)
        if not names:
            raise OnlineError("model_names", "must name at least one model")
        for pos, m in enumerate(names):
            if not isinstance(m, str) or not m:
                raise OnlineError(f"model_names[{pos}]", f"must be a non-empty string, got {m!r}")
        if len(set(names)) != len(names):
            raise OnlineError("model_names", "must not repeat a model")
        self.model_names = tuple(names)
        self.alpha = _check_alpha(alpha)
        self.V = _check_positive(V, "V", allow_none=True)
        self.c = _check_positive(c, "c", allow_zero=True)
        self.initial_queue = _check_positive(initial_queue, "initial_queue", allow_zero=True)
        self.seed = check_seed(seed)
        if predictor is not None and not hasattr(predictor, "predict"):
            raise OnlineError("predictor", f"must have `predict` (and may have `partial_fit`), "
                                           f"got {type(predictor).__name__}")
        # Never learned on: each replay (bind) starts from a copy, so one fit can start several
        # routers, and the same router replayed twice decides the same way.
        self.initial_predictor = predictor
        self.predictor = predictor
        if cost_model is not None and not callable(getattr(cost_model, "predict_output_tokens", None)):
            raise OnlineError("cost_model", f"must have `predict_output_tokens(data) -> (n, K)` (e.g. a fitted "
                                            f"ro.proxy.TextUtility), got {type(cost_model).__name__}")
        self.cost_model = cost_model
        self._bound = False

    # ------------------------------------------------------------------ binding
    def bind(self, stream: RequestStream) -> "_OnlineRouter":
        """Take the pool and the requests' arrival-time data; reset the state.

        Raises
        ------
        UnknownModelError
            A router model the stream's pool does not have.
        """
        inst = stream.instance
        pool = stream.model_names
        for m in self.model_names:
            if m not in pool:
                raise UnknownModelError("model_names", f"unknown model {m!r}; the stream's pool: {list(pool)}")
        K = inst.n_models
        self.K, self.T = K, inst.n_tasks
        self.available = np.array([m in self.model_names for m in pool], dtype=bool)
        self.task = np.asarray(inst.query_task, dtype=np.int64)
        self.X = stream.features
        self._indptr, self._indices, self._data = self.X.indptr, self.X.indices, self.X.data
        self.price_out = inst.price_out / 1e6                                  # USD per token
        self.fixed_usd = np.asarray(inst.fixed_cost_usd, dtype=np.float64)     # (T, K)
        self.input_usd = inst.input_tokens[:, None] * (inst.price_in / 1e6)[None, :]   # (n, K)
        self.option_model = np.asarray(inst.option_model, dtype=np.int64)
        self.option_batch = np.asarray(inst.option_batch, dtype=np.int64)
        self.retention = np.asarray(stream.retention, dtype=np.float64)
        self.admissible = inst.admissible
        self.unbatched_option = np.array([inst.options.index((k, min(m.batch_sizes)))
                                          for k, m in enumerate(inst.models)], dtype=np.int64)
        self.batch_sizes = [m.batch_sizes for m in inst.models]
        self._out_sum = stream.output_tokens_prior * PRIOR_WEIGHT
        self._out_cnt = np.full((self.T, K), PRIOR_WEIGHT)
        self.out_mean = self._out_sum / self._out_cnt
        self.out_pred = self._predicted_output_tokens(stream)                  # (n, K) or None
        # Exploration serves the most expensive model (standing for MESS+'s "largest").
        self.model_rank = np.asarray(inst.price_in + inst.price_out, dtype=np.float64)
        # A copy only of what learns (a frozen predictor is never changed by a replay).
        p0 = self.initial_predictor
        self.predictor = (OnlineLogistic(self.X.shape[1], K, seed=self.seed) if p0 is None
                          else copy.deepcopy(p0) if hasattr(p0, "partial_fit") else p0)
        self._fast = isinstance(self.predictor, OnlineLogistic)
        if self._fast and self.predictor.W.shape != (self.X.shape[1], K):
            # The compiled decision (ok.mess_choice) reads W without bounds checks: a learner
            # of another pool would silently skip models or read past W.
            raise OnlineError("predictor", f"OnlineLogistic has {self.predictor.W.shape[0]} features x "
                                           f"{self.predictor.W.shape[1]} models; the stream has "
                                           f"{self.X.shape[1]} features x {K} models")
        self._can_learn = hasattr(self.predictor, "partial_fit")
        self._source_data = stream.data
        if self.V is None:
            exp_cost = self._reference_cost()
            # An empty stream has no reference cost: V = 1 (nothing will be decided anyway).
            c_ref = float(exp_cost[:, self.available].mean(axis=0).max()) if inst.n_queries else 0.0
            self.V_resolved = DEFAULT_V_SCALE / c_ref if c_ref > 0 else 1.0
        else:
            self.V_resolved = self.V
        self.Q = float(self.initial_queue)
        self.t = 0
        self.rng = np.random.default_rng(self.seed)
        self.n_feedback = 0
        self.sum_shortfall = 0.0              # sum over received feedback of (alpha - y)
        self._bound = True
        return self

    def _reference_batch(self, k: int) -> int:
        """Batch size at which the default ``V`` prices model ``k`` (1: unbatched)."""
        return 1

    def _reference_cost(self) -> np.ndarray:
        """Expected USD of every request on every model, (n, K), each call's system prompt
        shared by ``_reference_batch(k)`` requests: what the default ``V`` and
        :func:`equilibrium_queue` price."""
        per_call = np.array([self._reference_batch(k) for k in range(self.K)], dtype=np.float64)
        rows = np.arange(self.task.shape[0])
        return self.fixed_usd[self.task] / per_call + self.input_usd + self._output_tokens(rows) * self.price_out

    def _predicted_output_tokens(self, stream: RequestStream):
        """The cost model's output tokens per request and pool model, (n, K), or None."""
        if self.cost_model is None:
            return None
        if stream.data is None:
            raise OnlineError("cost_model", "needs a stream built from RoutingData (the requests' texts); "
                                            "this stream has none: leave cost_model=None (running means)")
        names = list(getattr(self.cost_model, "model_names", stream.model_names))
        missing = [m for m in stream.model_names if m not in names]
        if missing:
            raise UnknownModelError("cost_model", f"predicts no output tokens for {missing}; it knows {names}")
        if stream.n_requests == 0:          # nothing to price (a fitted TextUtility refuses 0 rows)
            return np.zeros((0, len(stream.model_names)))
        try:
            pred = np.asarray(self.cost_model.predict_output_tokens(stream.data), dtype=np.float64)
        except PredictorError as e:           # e.g. an unfitted TextUtility says `predictor`
            raise OnlineError("cost_model", f"{type(self.cost_model).__name__}.predict_output_tokens "
                                            f"refused the stream's data: {e}") from e
        if pred.shape != (stream.n_requests, len(names)):
            raise OnlineError("cost_model", f"predict_output_tokens returned shape {pred.shape}, expected "
                                            f"({stream.n_requests}, {len(names)})")
        if not np.isfinite(pred).all() or (pred < 0).any():
            raise OnlineError("cost_model", "predicted output tokens must be finite and >= 0")
        return np.ascontiguousarray(pred[:, [names.index(m) for m in stream.model_names]])

    def _output_tokens(self, rows) -> np.ndarray:
        """Expected output tokens of ``rows`` (int or array) on every pool model: the cost
        model's per-request prediction, else the running mean of the request's task."""
        if self.out_pred is not None:
            return self.out_pred[rows]
        return self.out_mean[self.task[rows]]

    def _need_bound(self):
        if not self._bound:
            raise OnlineError("router", "call bind(stream) (or replay) before routing")

    def _request_row(self, i) -> int:
        """``i`` checked as a row of the bound stream (a negative index is not a request)."""
        self._need_bound()
        n = self.task.shape[0]
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise OnlineError("i", f"must be a request row in [0, {n}) of the bound stream, got {i!r}")
        return int(i)

    # ---------------------------------------------------------------- predictions
    def _predict_row(self, i: int) -> np.ndarray:
        if self._fast:
            lo, hi = self._indptr[i], self._indptr[i + 1]
            return self.predictor.predict_row(self._indices[lo:hi], self._data[lo:hi])
        return self._predict(np.array([i], dtype=np.int64))[0]

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        if self._fast or self._source_data is None:
            return np.asarray(self.predictor.predict(self.X[rows]), dtype=np.float64)
        return np.asarray(self.predictor.predict(self._source_data.select(rows)), dtype=np.float64)

    def _explores(self) -> bool:
        self.t += 1
        return self.c > 0 and self.rng.random() < min(1.0, self.c / self.t ** 0.25)

    def _largest(self) -> int:
        return int(np.argmax(np.where(self.available, self.model_rank, -np.inf)))

    # --------------------------------------------------------------------- events
    def next_deadline_s(self) -> float:
        return math.inf

    def advance(self, now_s: float) -> list:
        return []

    def feedback(self, fb: Feedback) -> None:
        """Update the queue with the served outcomes, the learner and the output-token means."""
        self._need_bound()
        a = self.alpha
        for y in np.asarray(fb.satisfied, dtype=np.float64):
            self.Q = max(0.0, self.Q + a - float(y))
            self.sum_shortfall += a - float(y)
            self.n_feedback += 1
        rows = fb.rows
        if rows.size == 0:
            return
        t, k = fb.dispatch.task, fb.dispatch.model
        self._out_sum[t, k] += float(np.sum(fb.output_tokens))
        self._out_cnt[t, k] += rows.size
        self.out_mean[t, k] = self._out_sum[t, k] / self._out_cnt[t, k]
        if self._can_learn:
            X = self.X[rows] if (self._fast or self._source_data is None) else self._source_data.select(rows)
            self.predictor.partial_fit(X, k, np.asarray(fb.outcome))

    def withdraw(self, model: str) -> None:
        """Remove ``model`` from the pool for every later decision (pending windows included)."""
        self._need_bound()
        if model not in self.model_names:
            raise UnknownModelError("model", f"unknown model {model!r}; the router's models: {list(self.model_names)}")
        k = self._pool_index(model)
        if self.available.sum() <= 1 and self.available[k]:
            raise OnlineError("model", f"cannot withdraw {model!r}: it is the last model left")
        self.available[k] = False
        if getattr(self, "_allowed_now", None) is not None:
            self._allowed_now[:, k] = False

    def _pool_index(self, model: str) -> int:
        return self._pool_names.index(model)

    def _explore_unbatched(self, i: int, t: int, now_s: float) -> list:
        """MESS+'s exploration: every available model answers request ``i`` alone."""
        ks = [k for k in range(self.K) if self.available[k] and self._adm1(i, k)]
        if not ks:
            raise StreamError(f"request[{i}]", "fits no available model unbatched")
        served = max(ks, key=lambda k: self.model_rank[k])
        row = np.array([i], dtype=np.int64)
        none = np.zeros(0, dtype=np.int64)
        return [Dispatch(time_s=now_s, task=t, model=k, batch_size=int(self.option_batch[self.unbatched_option[k]]),
                         requests=row if k == served else none, shadow=none if k == served else row)
                for k in ks]

    def _adm1(self, i: int, k: int) -> bool:
        return bool(self.admissible[i, self.unbatched_option[k]])


def _bind_names(router: _OnlineRouter, stream: RequestStream) -> None:
    router._pool_names = list(stream.model_names)
    router._option_index = {opt: j for j, opt in enumerate(stream.instance.options)}


class MessPlusRouter(_OnlineRouter):
    """MESS+ (Wang et al., NeurIPS 2025): per request, ``argmin_m V cost_m(x) + Q (alpha - p_m(x))``.

    Parameters
    ----------
    model_names : sequence of str
        Models the router may use (a subset of the stream's pool).
    alpha : float in [0, 1]
        The service level: long-run mean satisfaction promised.
    V : float > 0, optional
        Weight of cost against the queue; default ``DEFAULT_V_SCALE / c_ref`` (see there).
        Larger ``V``: lower cost, a larger queue (slower to meet ``alpha``).
    c : float >= 0
        Exploration: with probability ``min(1, c / t^(1/4))`` every model answers request
        ``t`` (all costs paid), the most expensive model's answer is served, and the learner
        sees every outcome.
    predictor : object, optional
        ``predict(X) -> (n, K)`` probabilities and, to learn online,
        ``partial_fit(X, model, y)``; default a fresh :class:`OnlineLogistic`. A fitted
        :class:`OnlineLogistic` starts from its offline fit. ``X`` is the stream's CSR
        feature rows, or, for a stream built from RoutingData and a predictor that is not an
        :class:`OnlineLogistic` (e.g. a fitted ``ro.proxy.TextUtility``), the RoutingData
        rows; a predictor without ``partial_fit`` stays frozen (and is used as given). One
        that learns is copied at the start of each replay (``router.predictor``, the learned
        one afterwards): the object passed is never changed, so one fit can start several
        routers and a router replayed twice decides the same way both times.
    seed : int
        Seed of the exploration draws: the same seed and stream give the same decisions.
    initial_queue : float >= 0
        ``Q_0``, the queue before the first outcome (default 0, as in MESS+). Starting at the
        service level's multiplier (:func:`robatch_opt.online.equilibrium_queue` on
        held-out requests) skips the warm-up in which the queue builds up while cheap
        models under-deliver; the guarantee becomes ``mean(y) >= alpha - (Q_T - Q_0) / T``.
    cost_model : object, optional
        Predicts each request's output tokens on each model from its text:
        ``predict_output_tokens(data) -> (n, K)`` over ``cost_model.model_names`` (a fitted
        :class:`ro.proxy.TextUtility` is one, as in ECCOS's multi-objective predictor). Needs a
        stream built from RoutingData. Default: the running mean of the model's output
        tokens on the request's task, updated from feedback.

    Notes
    -----
    ``cost_m(x)`` is the expected USD of the request on ``m``: its system prompt and input
    tokens (known) and ``m``'s output tokens (predicted: ``cost_model``, or the running mean
    on the request's task).
    One decision is O(K + nnz(x) K).
    """

    def bind(self, stream: RequestStream) -> "MessPlusRouter":
        _bind_names(self, stream)
        super().bind(stream)
        adm = self.admissible[:, self.unbatched_option]                       # (n, K)
        self._allowed_now = np.ascontiguousarray(adm & self.available[None, :])  # withdrawals clear columns
        return self

    def route(self, i: int, now_s: float = 0.0) -> list:
        """Decide request ``i`` (arrived at ``now_s``): one dispatch, or one per model when exploring."""
        i = self._request_row(i)
        t = int(self.task[i])
        if self._explores():
            return self._explore_unbatched(i, t, now_s)
        out = self.out_mean[t] if self.out_pred is None else self.out_pred[i]       # expected output tokens
        if self._fast:
            # The learner's weights and the score in one compiled pass (the decision overhead).
            lo, hi = self._indptr[i], self._indptr[i + 1]
            lr = self.predictor
            k = int(ok.mess_choice(self._indices[lo:hi], self._data[lo:hi], lr.W, lr.b, lr._fitted, lr.prior,
                                   self.fixed_usd[t], self.input_usd[i], out, self.price_out,
                                   float(self.V_resolved), float(self.Q), self.alpha, self._allowed_now[i]))
        else:
            p = self._predict_row(i)
            cost = self.fixed_usd[t] + self.input_usd[i] + out * self.price_out
            score = self.V_resolved * cost + self.Q * (self.alpha - p)
            score = np.where(self._allowed_now[i], score, np.inf)
            k = int(np.argmin(score))
            if not np.isfinite(score[k]):
                k = -1
        if k < 0:
            raise StreamError(f"request[{i}]", "fits no available model unbatched")
        return [Dispatch(time_s=now_s, task=t, requests=np.array([i], dtype=np.int64), model=k,
                         batch_size=int(self.option_batch[self.unbatched_option[k]]))]

    def submit(self, i: int, now_s: float) -> list:
        """Request ``i`` arrives at ``now_s``: decide it at once (:meth:`route`).

        Parameters
        ----------
        i : int
            Row of the request in the bound stream.
        now_s : float
            Arrival time in seconds (the dispatches' ``time_s``).

        Returns
        -------
        list of Dispatch
            One dispatch of ``i`` to the chosen model, unbatched. When exploring, one per
            available model that fits ``i`` unbatched: the most expensive of them serves
            ``i``, the others hold it as ``shadow``.

        Raises
        ------
        OnlineError
            The router is not bound (:meth:`bind`).
        StreamError
            Request ``i`` fits no available model unbatched.
        """
        return self.route(i, now_s)


class BatchingRouter(_OnlineRouter):
    """MESS+'s queue with batching windows: each task's requests wait, then are planned together.

    Parameters
    ----------
    model_names, alpha, V, c, predictor, seed, cost_model, initial_queue
        As :class:`MessPlusRouter`.
    max_wait_s : float >= 0
        A request waits at most this long: a task's window closes ``max_wait_s`` after its
        first request arrived.
    max_batch : int >= 1, optional
        Also close a window as soon as this many requests wait (default: no limit).
    explore_wait_s : float >= 0
        Answers that only feed the learner (an exploring request's non-served models) are
        not urgent: they wait, per (task, model), until a full batch of them is waiting or
        for this long, then go in one batched call (default 60 s). Exploring is then cheap.
    window_solver : {"heuristic", "exact", "auto"}
        How a window is planned: ``"heuristic"`` (default):
        :func:`~robatch_opt.online.window.plan_window` (Numba, ~0.4 ms for 256 requests);
        ``"exact"``: every window as an integer program
        (:func:`~robatch_opt.online.window.plan_window_exact`, HiGHS warm-started at the
        heuristic's plan, the heuristic's plan kept if HiGHS does not better it within
        ``exact_time_s``); ``"auto"``: exact for windows of at most ``EXACT_MAX_REQUESTS``
        requests, the heuristic above. HiGHS's limit is wall-clock: a window it does not
        finish in time keeps the best plan found by then, so "same seed, same decisions"
        holds for exact windows only when none hits the limit. On the RouterBench stream at 20 requests/s and
        ``max_wait_s=2`` (windows of 15 requests on average, at most 27) the heuristic missed
        the window optimum in 20-30 of ~75 windows; yet the stream's realized cost moved by
        only -4 % to +3 % (about 1 % less on average over 3 alphas x 2 folds), at ~35 ms per
        window instead of 0.5 ms: a window's objective rests on predicted outcomes and on
        the queue of the moment, so its exact optimum buys little over the stream
        (``benchmarks/bench_online.py``, section (f)). Hence the heuristic by default.
    exact_time_s : float > 0
        HiGHS's limit per window (default ``DEFAULT_EXACT_TIME_S``).

    Notes
    -----
    A closing window of ``m`` requests of task ``t`` is a small Route-with-Batching problem
    with the queue as the multiplier of the service-level term: minimise
    ``V * exact_cost - Q * sum_i (p_i - alpha)`` over options ``(k, b)`` per request, where
    ``p_i = p_k(x_i) * r_k(b)`` and the exact cost counts ``ceil(n_g / b)`` system prompts per
    group. It is solved by :func:`robatch_opt.online.window.plan_window` (the amortized
    Lagrangian choice, then exact single and group moves). Exploration draws are per
    request as in MESS+; an exploring request is answered by every model (batched where a
    seat is free, see ``_place_shadows``) and its planned answer is served.
    """

    def __init__(self, model_names: Sequence[str], *, alpha, V=None, max_wait_s, max_batch=None, c=0.1,
                 predictor=None, seed=0, explore_wait_s=60.0, window_solver="heuristic",
                 exact_time_s=DEFAULT_EXACT_TIME_S, cost_model=None, initial_queue=0.0):
        super().__init__(model_names, alpha=alpha, V=V, c=c, predictor=predictor, seed=seed, cost_model=cost_model,
                         initial_queue=initial_queue)
        if window_solver not in WINDOW_SOLVERS:
            raise OnlineError("window_solver", f"must be one of {list(WINDOW_SOLVERS)}, got {window_solver!r}")
        self.window_solver = window_solver
        self.exact_time_s = _check_positive(exact_time_s, "exact_time_s")
        self.max_wait_s = _check_positive(max_wait_s, "max_wait_s", allow_zero=True)
        self.explore_wait_s = _check_positive(explore_wait_s, "explore_wait_s", allow_zero=True)
        if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer))
                                      or max_batch < 1):
            raise OnlineError("max_batch", f"must be an integer >= 1 or None, got {max_batch!r}")
        self.max_batch = None if max_batch is None else int(max_batch)

    def _reference_batch(self, k: int) -> int:
        return max(self.batch_sizes[k])

    def bind(self, stream: RequestStream) -> "BatchingRouter":
        _bind_names(self, stream)
        super().bind(stream)
        self._pending: list[list[int]] = [[] for _ in range(self.T)]
        self._deadline = np.full(self.T, math.inf)
        self._shadow: dict = {}                         # (task, model) -> [rows], deadline
        self._shadow_deadline: dict = {}
        self.window_sizes: list[int] = []
        self.windows_exact = 0          # windows given to HiGHS
        self.windows_proven = 0         # ... whose plan it proved optimal
        self.windows_improved = 0       # ... where its plan beat the heuristic's
        return self

    def submit(self, i: int, now_s: float) -> list:
        """Request ``i`` arrives at ``now_s``: it joins its task's window.

        The window's deadline is set by its first request (``now_s + max_wait_s``). Call
        :meth:`advance` up to ``now_s`` first, so that a window already due is not joined.

        Parameters
        ----------
        i : int
            Row of the request in the bound stream.
        now_s : float
            Arrival time in seconds.

        Returns
        -------
        list of Dispatch
            Empty while the window waits. When it closes now (``max_wait_s == 0``, or
            ``max_batch`` requests wait): one dispatch per (model, batch size) of its plan,
            at ``time_s = now_s``, then any exploration buffer that its exploring requests
            filled to a full batch.

        Raises
        ------
        OnlineError
            The router is not bound (:meth:`bind`).
        StreamError
            The window closes and one of its requests fits no available model.
        """
        i = self._request_row(i)
        t = int(self.task[i])
        if not self._pending[t]:
            self._deadline[t] = now_s + self.max_wait_s
        self._pending[t].append(int(i))
        if self.max_wait_s == 0 or (self.max_batch is not None and len(self._pending[t]) >= self.max_batch):
            return self.close(t, now_s)
        return []

    def next_deadline_s(self) -> float:
        """When the next window or exploration buffer falls due, in seconds.

        Returns
        -------
        float
            The earliest deadline of a waiting window (first arrival + ``max_wait_s``) or
            exploration buffer (first entry + ``explore_wait_s``); ``inf`` if nothing waits.
        """
        self._need_bound()
        d = float(self._deadline.min()) if self.T else math.inf
        return min([d, *self._shadow_deadline.values()])

    def advance(self, now_s: float) -> list:
        """Close every window and send every exploration buffer due by ``now_s`` (inclusive).

        They go in deadline order (at equal deadlines the window first), each sent at its own
        deadline, so a late call dispatches as if it had come on time.

        Parameters
        ----------
        now_s : float
            Current time in seconds.

        Returns
        -------
        list of Dispatch
            In time order; each dispatch's ``time_s`` is the deadline it was sent at, not
            ``now_s``. Empty if nothing is due.

        Raises
        ------
        StreamError
            A closing window holds a request that fits no available model.
        OnlineError
            The router is not bound (:meth:`bind`).
        """
        self._need_bound()
        out = []
        while True:
            t = int(np.argmin(self._deadline))
            d = float(self._deadline[t])
            sk = min(self._shadow_deadline, key=self._shadow_deadline.get, default=None)
            ds = self._shadow_deadline[sk] if sk is not None else math.inf
            if min(d, ds) > now_s:
                return out
            if ds < d:
                out.extend(self._send_shadow(sk, ds))
            else:
                out.extend(self.close(t, d))

    def _shadow_batch(self, rows: list, k: int) -> int:
        """Largest batch size of model ``k`` that every row fits, at most ``len(rows)``."""
        best = int(self.option_batch[self.unbatched_option[k]])
        for b in self.batch_sizes[k]:
            if b <= len(rows) and self.admissible[rows, self._option_index[(k, b)]].all():
                best = b
        return best

    def _send_shadow(self, key, now_s: float) -> list:
        t, k = key
        rows = self._shadow.pop(key)
        del self._shadow_deadline[key]
        if not self.available[k]:
            return []                                    # withdrawn meanwhile: nothing to learn from it
        return [Dispatch(time_s=now_s, task=t, model=k, batch_size=self._shadow_batch(rows, k),
                         requests=np.zeros(0, dtype=np.int64), shadow=np.array(rows, dtype=np.int64))]

    def close(self, t: int, now_s: float) -> list:
        """Plan and dispatch task ``t``'s waiting requests now."""
        rows = np.array(self._pending[t], dtype=np.int64)
        self._pending[t] = []
        self._deadline[t] = math.inf
        if rows.size == 0:
            return []
        self.window_sizes.append(int(rows.size))
        explore = np.array([self._explores() for _ in range(rows.size)], dtype=bool)
        option = self.plan(rows, t)
        groups: dict = {}                               # (model, batch) -> [served, shadow]
        for j in np.unique(option):
            key = (int(self.option_model[j]), int(self.option_batch[j]))
            groups[key] = [list(rows[option == j]), []]
        out = []
        for i, j in zip(rows[explore], option[explore]):
            out.extend(self._place_shadows(int(i), int(self.option_model[j]), groups, t, now_s))
        return [Dispatch(time_s=now_s, task=t, model=k, batch_size=b, requests=np.array(sv, dtype=np.int64),
                         shadow=np.array(sh, dtype=np.int64))
                for (k, b), (sv, sh) in sorted(groups.items())] + out

    def _place_shadows(self, i: int, served: int, groups: dict, t: int, now_s: float) -> list:
        """Every other available model answers exploring request ``i`` too, for the learner.

        Unlike MESS+ (which serves the largest model's answer when it explores), the window's
        planned answer is served: exploration here only buys outcomes to learn from. Each
        other model's answer rides in a free seat of a call the window makes anyway when
        there is one (then it costs only its own tokens), else it waits in that model's
        exploration buffer (``explore_wait_s``). Returns the buffers that filled a batch.
        """
        out = []
        for k in range(self.K):
            if k == served or not self.available[k] or not self._adm1(i, k):
                continue
            best, best_free = None, 0
            for (gk, gb), (sv, sh) in groups.items():
                if gk != k or not self.admissible[i, self._option_index[(gk, gb)]]:
                    continue
                free = (-(len(sv) + len(sh))) % gb
                if free > best_free:
                    best, best_free = (gk, gb), free
            if best is not None:
                groups[best][1].append(i)
                continue
            key = (t, k)
            buf = self._shadow.setdefault(key, [])
            if not buf:
                self._shadow_deadline[key] = now_s + self.explore_wait_s
            buf.append(i)
            if len(buf) >= max(self.batch_sizes[k]):
                out.extend(self._send_shadow(key, now_s))
        return out

    def plan(self, rows: np.ndarray, t: int) -> np.ndarray:
        """Option per request of a window of task ``t`` (see the class Notes)."""
        p = self._predict(rows)                                                # (m, K)
        v = self.input_usd[rows] + self._output_tokens(rows) * self.price_out[None, :]
        om = self.option_model
        score = self.Q * (p[:, om] * self.retention[None, :] - self.alpha) - self.V_resolved * v[:, om]
        allowed = self.admissible[rows] & self.available[om][None, :]
        bad = ~allowed.any(axis=1)
        if bad.any():
            raise StreamError(f"request[{int(rows[np.argmax(bad)])}]", "fits no available model")
        score = np.where(allowed, score, -np.inf)
        call_value = self.V_resolved * self.fixed_usd[t, om]
        score, call_value = np.ascontiguousarray(score), np.ascontiguousarray(call_value)
        if self.window_solver == "exact" or (self.window_solver == "auto" and rows.size <= EXACT_MAX_REQUESTS):
            wp = plan_window_exact(score, call_value, self.option_batch, time_limit_s=self.exact_time_s)
            self.windows_exact += 1
            self.windows_proven += wp.proven
            self.windows_improved += wp.source == "exact"
            return wp.option
        return ok.plan_window(score, call_value, self.option_batch, 8)


def equilibrium_queue(router: _OnlineRouter, calibration: RequestStream, *, tol: float = 1e-6) -> float:
    """The smallest queue at which MESS+'s per-request choice meets ``alpha`` in prediction.

    On ``calibration`` (held-out requests: e.g. the split the predictor was fitted on; their
    outcomes are not read), each request takes ``argmin_k V cost_k + Q (alpha - p_k)`` with
    the router's predictor, costs and ``V``; the returned ``Q`` is the least (to ``tol``
    relative) at which the mean predicted ``p`` of those choices reaches ``alpha``: the
    multiplier of the service-level constraint in the per-request Lagrangian, where the
    drift-plus-penalty queue settles. For a :class:`BatchingRouter` each call's system
    prompt is shared by the model's largest batch (the pricing of its default ``V``). Pass it
    as ``initial_queue``. Returns ``inf`` if no queue meets ``alpha`` in prediction (every
    request on its most likely model falls short). Requests that fit no available model
    unbatched are left out (they have no choice to count).

    The router is bound to ``calibration`` for the computation; ``replay`` binds it again.

    Parameters
    ----------
    router : MessPlusRouter or BatchingRouter
        Its ``alpha``, ``V``, predictor, cost model and models are used; its state is reset
        by the binding.
    calibration : RequestStream
        Held-out requests with the router's pool (e.g. ``split.train``); only their
        arrival-time data is read.
    tol : float > 0
        Relative precision of the bisection on ``Q``.

    Returns
    -------
    float
        ``Q >= 0``: 0.0 if the cheapest choices already meet ``alpha`` in prediction,
        ``inf`` if no queue up to ``2**39`` (about 5.5e11) does.

    Raises
    ------
    OnlineError
        ``tol`` is not a finite number > 0; ``calibration`` is not a RequestStream, has no
        requests, or none that fits an available model; binding refused the
        router's predictor (an :class:`OnlineLogistic` of another shape) or cost model.
    UnknownModelError
        A router model that ``calibration``'s pool does not have.
    """
    if not isinstance(calibration, RequestStream):
        raise OnlineError("calibration", f"must be a RequestStream (e.g. split.train), got {type(calibration).__name__}")
    tol = _check_positive(tol, "tol")
    router.bind(calibration)
    n = calibration.n_requests
    if n == 0:
        raise OnlineError("calibration", "has no requests")
    allowed = router.admissible[:, router.unbatched_option] & router.available[None, :]
    # A request that fits no available model unbatched would stop a replay (StreamError);
    # it has no choice to count, so it is left out rather than counted as the first model's.
    rows = np.flatnonzero(allowed.any(axis=1))
    if rows.size == 0:
        raise OnlineError("calibration", "has no request that fits an available model unbatched")
    p = router._predict(rows)                      # only the requests counted
    allowed = allowed[rows]
    vc = router.V_resolved * router._reference_cost()[rows]
    rows = np.arange(rows.size)

    def meets(Q: float) -> bool:
        k = np.where(allowed, vc + Q * (router.alpha - p), np.inf).argmin(axis=1)
        return float(p[rows, k].mean()) >= router.alpha

    if meets(0.0):
        return 0.0
    hi = 1.0
    while not meets(hi):
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    lo = hi / 2.0 if hi > 1.0 else 0.0
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break                                 # a tol below float resolution: as tight as it gets
        lo, hi = (lo, mid) if meets(mid) else (mid, hi)
    return float(hi)


class RandomRouter(_OnlineRouter):
    """MESS+'s random baseline: each request goes to model ``k`` with probability ``pi_k``.

    Parameters
    ----------
    model_names : sequence of str
    probabilities : sequence of float
        One per model, summing to 1.
    alpha : float
        Only for the queue it reports (the router ignores it).
    seed : int
    """

    def __init__(self, model_names: Sequence[str], probabilities, *, alpha=0.0, seed=0):
        super().__init__(model_names, alpha=alpha, V=1.0, c=0.0, predictor=None, seed=seed)
        pi = np.asarray(probabilities, dtype=np.float64)
        if pi.shape != (len(self.model_names),) or not np.all(np.isfinite(pi)) or (pi < 0).any() \
                or not math.isclose(pi.sum(), 1.0, rel_tol=1e-9):
            raise OnlineError("probabilities", "must be one probability >= 0 per model, summing to 1")
        self.probabilities = pi

    def bind(self, stream: RequestStream) -> "RandomRouter":
        _bind_names(self, stream)
        super().bind(stream)
        self._pool_of = np.array([self._pool_names.index(m) for m in self.model_names], dtype=np.int64)
        self._can_learn = False
        return self

    def submit(self, i: int, now_s: float) -> list:
        self._need_bound()
        pi = np.where(self.available[self._pool_of], self.probabilities, 0.0)
        if pi.sum() <= 0:
            pi = self.available[self._pool_of].astype(np.float64)
        k = int(self._pool_of[self.rng.choice(len(pi), p=pi / pi.sum())])
        j = self.unbatched_option[k]
        return [Dispatch(time_s=now_s, task=int(self.task[i]), requests=np.array([i], dtype=np.int64), model=k,
                         batch_size=int(self.option_batch[j]))]


def calibrated_random_router(model_names: Sequence[str], accuracy, cost_usd, *, alpha: float,
                             seed: int = 0) -> RandomRouter:
    """The cheapest random router whose expected accuracy is ``alpha`` (MESS+'s baseline).

    Parameters
    ----------
    model_names : sequence of str
    accuracy, cost_usd : array_like, shape (K,)
        Each model's mean accuracy and mean cost per request, estimated offline.
    alpha : float

    Returns
    -------
    RandomRouter
        Mixes at most two models on the lower convex hull of (accuracy, cost): the optimum
        of ``min sum pi c`` subject to ``sum pi a >= alpha``. If no model reaches ``alpha``,
        always the most accurate.
    """
    a = np.asarray(accuracy, dtype=np.float64)
    c = np.asarray(cost_usd, dtype=np.float64)
    alpha = _check_alpha(alpha)
    K = len(model_names)
    pi = np.zeros(K)
    if a.max() <= alpha:
        pi[int(np.argmax(a))] = 1.0
    else:
        best, pair = math.inf, None
        for i in range(K):
            for j in range(K):
                if a[i] <= alpha <= a[j] and a[j] > a[i]:
                    w = (alpha - a[i]) / (a[j] - a[i])
                    cost = (1 - w) * c[i] + w * c[j]
                    if cost < best:
                        best, pair = cost, (i, j, w)
                elif a[i] >= alpha and c[i] < best:
                    best, pair = c[i], (i, i, 1.0)
        i, j, w = pair
        pi[i] += 1 - w
        pi[j] += w
    return RandomRouter(model_names, pi, alpha=alpha, seed=seed)
