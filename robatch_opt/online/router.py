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

import math
from dataclasses import dataclass
from numbers import Real
from typing import Sequence

import numpy as np

from ..kernels import online_kernels as ok
from .errors import OnlineError, StreamError, UnknownModelError
from .learner import OnlineLogistic
from .stream import RequestStream

__all__ = ["MessPlusRouter", "BatchingRouter", "RandomRouter", "Dispatch", "Feedback",
           "DEFAULT_V_SCALE", "calibrated_random_router"]

#: ``V = None`` resolves to ``DEFAULT_V_SCALE / c_ref`` where ``c_ref`` is the mean expected
#: cost of one unbatched request on the most expensive model (USD, from the pool's prices,
#: the requests' input tokens and the output-token prior). So ``V * cost`` of the priciest
#: model is 0.1, and the queue outweighs it once ``Q * (p_big - p_small)`` exceeds that.
DEFAULT_V_SCALE = 0.1

#: Pseudo-observations given to the output-token prior in the routers' running means.
PRIOR_WEIGHT = 5.0


@dataclass(frozen=True, eq=False)
class Dispatch:
    """Requests sent to a model together.

    Attributes
    ----------
    time_s : float
        When they are sent.
    task : int
    requests : ndarray of int64
        Request indices (all of ``task``); served in ``ceil(len / batch_size)`` calls.
    model : int
        Model whose answers are served.
    batch_size : int
        Nominal batch size of the calls (1 for MESS+).
    explore : bool
        Every model in ``explore_batch`` answers (every cost is paid) and the learner sees
        every outcome; ``model`` (the most expensive available model) is served.
    explore_batch : ndarray of int64, shape (K,), or None
        For an exploring dispatch, the nominal batch size each model answers in (0: that
        model does not answer).
    """

    time_s: float
    task: int
    requests: np.ndarray
    model: int
    batch_size: int
    explore: bool = False
    explore_batch: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Feedback:
    """Outcomes of one dispatch, as reported back to the router.

    Attributes
    ----------
    dispatch : Dispatch
    satisfied : ndarray, shape (m,)
        Outcome of each served answer in [0, 1] (batched: real outcome x retention).
    observed : tuple of (model, outcome (m,), output_tokens (m,))
        Unbatched-equivalent outcomes and output tokens of every model that answered.
    """

    dispatch: Dispatch
    satisfied: np.ndarray
    observed: tuple


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

    def __init__(self, model_names: Sequence[str], *, alpha, V=None, c=0.1, predictor=None, seed=0):
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
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise OnlineError("seed", f"must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        if predictor is not None and not hasattr(predictor, "predict"):
            raise OnlineError("predictor", f"must have `predict` (and may have `partial_fit`), "
                                           f"got {type(predictor).__name__}")
        self.predictor = predictor
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
        # Exploration serves the most expensive model (standing for MESS+'s "largest").
        self.model_rank = np.asarray(inst.price_in + inst.price_out, dtype=np.float64)
        if self.predictor is None:
            self.predictor = OnlineLogistic(self.X.shape[1], K, seed=self.seed)
        self._fast = isinstance(self.predictor, OnlineLogistic)
        self._can_learn = hasattr(self.predictor, "partial_fit")
        if self.V is None:
            exp_cost = self.fixed_usd[self.task] + self.input_usd + self.out_mean[self.task] * self.price_out
            c_ref = float(exp_cost[:, self.available].mean(axis=0).max())
            self.V_resolved = DEFAULT_V_SCALE / c_ref if c_ref > 0 else 1.0
        else:
            self.V_resolved = self.V
        self.Q = 0.0
        self.t = 0
        self.rng = np.random.default_rng(self.seed)
        self.n_feedback = 0
        self.sum_shortfall = 0.0              # sum over received feedback of (alpha - y)
        self._bound = True
        return self

    def _need_bound(self):
        if not self._bound:
            raise OnlineError("router", "call bind(stream) (or replay) before routing")

    # ---------------------------------------------------------------- predictions
    def _predict_row(self, i: int) -> np.ndarray:
        if self._fast:
            lo, hi = self._indptr[i], self._indptr[i + 1]
            return self.predictor.predict_row(self._indices[lo:hi], self._data[lo:hi])
        return np.asarray(self.predictor.predict(self.X[i:i + 1]), dtype=np.float64)[0]

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.predictor.predict(self.X[rows]), dtype=np.float64)

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
        rows = fb.dispatch.requests
        t = fb.dispatch.task
        for k, y0, out in fb.observed:
            self._out_sum[t, k] += float(np.sum(out))
            self._out_cnt[t, k] += len(out)
            self.out_mean[t, k] = self._out_sum[t, k] / self._out_cnt[t, k]
            if self._can_learn:
                if self._fast:
                    self.predictor.partial_fit(self.X[rows], k, y0)
                else:
                    self.predictor.partial_fit(self.X[rows], k, np.asarray(y0))

    def withdraw(self, model: str) -> None:
        """Remove ``model`` from the pool for every later decision (pending windows included)."""
        self._need_bound()
        if model not in self.model_names:
            raise UnknownModelError("model", f"unknown model {model!r}; the router's models: {list(self.model_names)}")
        k = self._pool_index(model)
        if self.available.sum() <= 1 and self.available[k]:
            raise OnlineError("model", f"cannot withdraw {model!r}: it is the last model left")
        self.available[k] = False

    def _pool_index(self, model: str) -> int:
        return self._pool_names.index(model)

    def _explore_dispatch(self, rows: np.ndarray, t: int, now_s: float, batched: bool) -> Dispatch:
        eb = np.zeros(self.K, dtype=np.int64)
        m = len(rows)
        for k in range(self.K):
            if not self.available[k]:
                continue
            best = 0
            for b in self.batch_sizes[k]:
                if b > (m if batched else 1):
                    break
                j = self._option_index[(k, b)]
                if self.admissible[rows, j].all():
                    best = b
            eb[k] = best
        served = int(np.argmax(np.where(eb > 0, self.model_rank, -np.inf)))
        if eb[served] == 0:
            raise StreamError(f"request[{int(rows[0])}]", "fits no available model")
        return Dispatch(time_s=now_s, task=t, requests=rows, model=served, batch_size=int(eb[served]),
                        explore=True, explore_batch=eb)


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
        :class:`OnlineLogistic` starts from its offline fit.
    seed : int
        Seed of the exploration draws: the same seed and stream give the same decisions.

    Notes
    -----
    ``cost_m(x)`` is the expected USD of the request on ``m``: its system prompt and input
    tokens (known) and the running mean of ``m``'s output tokens on its task (predicted).
    One decision is O(K + nnz(x) K).
    """

    def bind(self, stream: RequestStream) -> "MessPlusRouter":
        _bind_names(self, stream)
        super().bind(stream)
        adm = self.admissible[:, self.unbatched_option]                       # (n, K)
        self._allowed1 = adm
        return self

    def route(self, i: int, now_s: float = 0.0) -> Dispatch:
        """Decide request ``i`` (arrived at ``now_s``)."""
        t = int(self.task[i])
        if self._explores():
            return self._explore_dispatch(np.array([i], dtype=np.int64), t, now_s, batched=False)
        p = self._predict_row(i)
        cost = self.fixed_usd[t] + self.input_usd[i] + self.out_mean[t] * self.price_out
        score = self.V_resolved * cost + self.Q * (self.alpha - p)
        score = np.where(self.available & self._allowed1[i], score, np.inf)
        k = int(np.argmin(score))
        if not np.isfinite(score[k]):
            raise StreamError(f"request[{i}]", "fits no available model unbatched")
        return Dispatch(time_s=now_s, task=t, requests=np.array([i], dtype=np.int64), model=k,
                        batch_size=int(self.option_batch[self.unbatched_option[k]]))

    def submit(self, i: int, now_s: float) -> list:
        self._need_bound()
        return [self.route(int(i), now_s)]


class BatchingRouter(_OnlineRouter):
    """MESS+'s queue with batching windows: each task's requests wait, then are planned together.

    Parameters
    ----------
    model_names, alpha, V, c, predictor, seed
        As :class:`MessPlusRouter`.
    max_wait_s : float >= 0
        A request waits at most this long: a task's window closes ``max_wait_s`` after its
        first request arrived.
    max_batch : int >= 1, optional
        Also close a window as soon as this many requests wait (default: no limit).

    Notes
    -----
    A closing window of ``m`` requests of task ``t`` is a small Route-with-Batching problem
    with the queue as the multiplier of the service-level term: minimise
    ``V * exact_cost - Q * sum_i (p_i - alpha)`` over options ``(k, b)`` per request, where
    ``p_i = p_k(x_i) * r_k(b)`` and the exact cost counts ``ceil(n_g / b)`` system prompts per
    group. It is solved by :func:`robatch_opt.online.window.plan_window` (the amortized
    Lagrangian choice, then exact single and group moves). Exploration draws are per
    request as in MESS+; a window's explored requests are answered by every model, batched.
    """

    def __init__(self, model_names: Sequence[str], *, alpha, V=None, max_wait_s, max_batch=None, c=0.1,
                 predictor=None, seed=0):
        super().__init__(model_names, alpha=alpha, V=V, c=c, predictor=predictor, seed=seed)
        self.max_wait_s = _check_positive(max_wait_s, "max_wait_s", allow_zero=True)
        if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer))
                                      or max_batch < 1):
            raise OnlineError("max_batch", f"must be an integer >= 1 or None, got {max_batch!r}")
        self.max_batch = None if max_batch is None else int(max_batch)

    def bind(self, stream: RequestStream) -> "BatchingRouter":
        _bind_names(self, stream)
        super().bind(stream)
        self._pending: list[list[int]] = [[] for _ in range(self.T)]
        self._deadline = np.full(self.T, math.inf)
        self.window_sizes: list[int] = []
        return self

    def submit(self, i: int, now_s: float) -> list:
        self._need_bound()
        t = int(self.task[i])
        if not self._pending[t]:
            self._deadline[t] = now_s + self.max_wait_s
        self._pending[t].append(int(i))
        if self.max_wait_s == 0 or (self.max_batch is not None and len(self._pending[t]) >= self.max_batch):
            return self.close(t, now_s)
        return []

    def next_deadline_s(self) -> float:
        return float(self._deadline.min()) if self.T else math.inf

    def advance(self, now_s: float) -> list:
        out = []
        while True:
            t = int(np.argmin(self._deadline))
            d = float(self._deadline[t])
            if d > now_s:
                return out
            out.extend(self.close(t, d))

    def close(self, t: int, now_s: float) -> list:
        """Plan and dispatch task ``t``'s waiting requests now."""
        rows = np.array(self._pending[t], dtype=np.int64)
        self._pending[t] = []
        self._deadline[t] = math.inf
        if rows.size == 0:
            return []
        self.window_sizes.append(int(rows.size))
        explore = np.array([self._explores() for _ in range(rows.size)], dtype=bool)
        out = []
        if explore.any():
            out.append(self._explore_dispatch(rows[explore], t, now_s, batched=True))
        rest = rows[~explore]
        if rest.size:
            option = self.plan(rest, t)
            for j in np.unique(option):
                out.append(Dispatch(time_s=now_s, task=t, requests=rest[option == j],
                                    model=int(self.option_model[j]), batch_size=int(self.option_batch[j])))
        return out

    def plan(self, rows: np.ndarray, t: int) -> np.ndarray:
        """Option per request of a window of task ``t`` (see the class Notes)."""
        p = self._predict(rows)                                                # (m, K)
        v = self.input_usd[rows] + (self.out_mean[t] * self.price_out)[None, :]
        om = self.option_model
        score = self.Q * (p[:, om] * self.retention[None, :] - self.alpha) - self.V_resolved * v[:, om]
        allowed = self.admissible[rows] & self.available[om][None, :]
        bad = ~allowed.any(axis=1)
        if bad.any():
            raise StreamError(f"request[{int(rows[np.argmax(bad)])}]", "fits no available model")
        score = np.where(allowed, score, -np.inf)
        call_value = self.V_resolved * self.fixed_usd[t, om]
        return ok.plan_window(np.ascontiguousarray(score), np.ascontiguousarray(call_value),
                              self.option_batch, 8)


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
