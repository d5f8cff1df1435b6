"""Replay a stream through a router in simulated time and grade it by the realized truth."""

from __future__ import annotations

import dataclasses
import heapq
import math
import sys
import time
from dataclasses import dataclass
from numbers import Real
from typing import Mapping

import numpy as np

from .errors import OnlineError, UnknownModelError
from .router import Dispatch, Feedback, _OnlineRouter, check_seed
from .stream import RequestStream, as_stream

__all__ = ["OnlineResult", "replay", "arrival_times", "ARRIVALS", "BURSTY_SHAPE"]

ARRIVALS = ("poisson", "bursty")
#: ``arrival="bursty"``: gamma inter-arrival times of shape 0.2 (coefficient of variation
#: sqrt(5) ~ 2.2, against 1 for Poisson) and mean ``1 / rate_per_s``: requests come in
#: clusters separated by long gaps.
BURSTY_SHAPE = 0.2
#: Replays at least this long show a progress bar when stderr is a terminal.
PROGRESS_MIN_REQUESTS = 5_000


@dataclass(frozen=True, eq=False)
class OnlineResult:
    """What a replay did, per request and in total (realized outcomes and dollars).

    Attributes
    ----------
    router : str
        Class name of the router.
    alpha, V : float
        The router's service level and its (resolved) cost weight.
    model_names : tuple of str
        The stream's pool; ``model`` indexes it.
    n_requests : int
    satisfaction : float
        Realized mean outcome of the served answers over all requests.
    cost_usd : float
        Realized total cost (every call, exploration included).
    model, batch_size : ndarray of int64, shape (n,)
        Served model and nominal batch size per request (in stream order).
    wait_s : ndarray, shape (n,)
        Time from arrival to dispatch.
    cost_per_request_usd : ndarray, shape (n,)
        Each request's share: its own tokens plus its share of its calls' system prompts
        (exploring requests carry every model's cost). Sums to ``cost_usd``.
    outcome : ndarray, shape (n,)
        Realized outcome of the served answer.
    explored : ndarray of bool, shape (n,)
    arrival_s, dispatch_s : ndarray, shape (n,)
    queue, queue_time_s : ndarray, shape (f,)
        The router's virtual queue after each received outcome, and when.
    n_feedback : int
        Outcomes the router received (missing feedback never arrives).
    shortfall : float
        ``sum (alpha - y)`` over received outcomes; ``shortfall <= queue[-1] -
        initial_queue`` (the queue identity, ``proofs/online_sla.md``).
    n_calls : int
        LLM calls made.
    source : str
        Where the stream's outcomes and costs come from.
    wall_time_s : float
    initial_queue : float
        The router's queue before the first outcome (``Q_0``; 0 unless warm-started).
    """

    router: str
    alpha: float
    V: float
    model_names: tuple
    n_requests: int
    satisfaction: float
    cost_usd: float
    model: np.ndarray
    batch_size: np.ndarray
    wait_s: np.ndarray
    cost_per_request_usd: np.ndarray
    outcome: np.ndarray
    explored: np.ndarray
    arrival_s: np.ndarray
    dispatch_s: np.ndarray
    queue: np.ndarray
    queue_time_s: np.ndarray
    n_feedback: int
    shortfall: float
    n_calls: int
    source: str
    wall_time_s: float
    initial_queue: float = 0.0

    def __post_init__(self):
        # Frozen means frozen: the per-request arrays are read-only, like RoutingData's (a
        # result compared or plotted later must be the one the replay made).
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    @property
    def final_queue(self) -> float:
        """``Q_T``: the virtual queue after the last received outcome (``Q_0`` if none)."""
        return float(self.queue[-1]) if self.queue.size else float(self.initial_queue)

    @property
    def queue_growth(self) -> float:
        """``Q_T - Q_0``: the certified shortfall ``sum (alpha - y)`` is at most this."""
        return self.final_queue - float(self.initial_queue)

    @property
    def sla_bound(self) -> float:
        """``alpha - (Q_T - Q_0) / F`` over the ``F`` received outcomes: their mean is at least this."""
        return self.alpha - self.queue_growth / self.n_feedback if self.n_feedback else math.nan

    def wait_percentile_s(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the requests' waiting times, seconds (0 if none).

        Parameters
        ----------
        q : float
            Percentile in [0, 100], e.g. 50 or 99.

        Returns
        -------
        float
        """
        return float(np.percentile(self.wait_s, q)) if self.n_requests else 0.0

    def time_series(self) -> dict:
        """Running satisfaction and cumulative cost in dispatch order (for plots)."""
        order = np.argsort(self.dispatch_s, kind="stable")
        k = np.arange(1, self.n_requests + 1)
        return dict(time_s=self.dispatch_s[order], running_satisfaction=np.cumsum(self.outcome[order]) / k,
                    cumulative_cost_usd=np.cumsum(self.cost_per_request_usd[order]))

    def summary(self) -> dict:
        """The totals as a flat dict (what the CLI prints and ``--json`` writes).

        Returns
        -------
        dict
            router, alpha, V, n_requests, satisfaction, cost_usd, queue_initial, queue_final,
            queue_growth_over_T, sla_bound, explored, n_calls, mean_batch_size, wait_p50_s,
            wait_p99_s, wall_time_s.
        """
        return dict(router=self.router, alpha=self.alpha, V=self.V, n_requests=self.n_requests,
                    satisfaction=self.satisfaction, cost_usd=self.cost_usd,
                    queue_initial=float(self.initial_queue), queue_final=self.final_queue,
                    queue_growth_over_T=self.queue_growth / max(self.n_feedback, 1),
                    sla_bound=self.sla_bound, explored=int(self.explored.sum()), n_calls=self.n_calls,
                    mean_batch_size=float(self.batch_size.mean()) if self.n_requests else 0.0,
                    wait_p50_s=self.wait_percentile_s(50), wait_p99_s=self.wait_percentile_s(99),
                    wall_time_s=self.wall_time_s)


def _check_rate(rate_per_s) -> float:
    if isinstance(rate_per_s, bool) or not isinstance(rate_per_s, Real) or not math.isfinite(rate_per_s) \
            or rate_per_s <= 0:
        raise OnlineError("rate_per_s", f"must be a finite number > 0, got {rate_per_s!r}")
    return float(rate_per_s)


def arrival_times(n: int, *, arrival="poisson", rate_per_s: float = 1.0, seed: int = 0) -> np.ndarray:
    """Arrival time of each of ``n`` requests, seconds, non-decreasing.

    Parameters
    ----------
    arrival : {"poisson", "bursty"} or array_like of shape (n,)
        Poisson: exponential gaps. Bursty: gamma gaps of shape :data:`BURSTY_SHAPE`, same
        mean. An array: the timestamps themselves (finite, >= 0, non-decreasing).
    rate_per_s : float > 0
        Mean arrivals per second (ignored for timestamps).
    seed : int
    """
    if isinstance(arrival, str):
        if arrival not in ARRIVALS:
            raise OnlineError("arrival", f"must be one of {list(ARRIVALS)} or an array of timestamps, got {arrival!r}")
        rate = _check_rate(rate_per_s)
        rng = np.random.default_rng([int(seed), 1717])
        if arrival == "poisson":
            gaps = rng.exponential(1.0 / rate, n)
        else:
            gaps = rng.gamma(BURSTY_SHAPE, 1.0 / (rate * BURSTY_SHAPE), n)
        return np.cumsum(gaps)
    ts = np.asarray(arrival, dtype=np.float64)
    if ts.shape != (n,):
        raise OnlineError("arrival", f"timestamps must have shape ({n},), got {ts.shape}")
    bad = ~np.isfinite(ts) | (ts < 0)
    if bad.any():
        raise OnlineError(f"arrival[{int(np.argmax(bad))}]", "must be a finite time >= 0")
    dec = np.diff(ts) < 0
    if dec.any():
        raise OnlineError(f"arrival[{int(np.argmax(dec)) + 1}]", "timestamps must be non-decreasing")
    return ts


def _progress(total: int, progress):
    show = (total >= PROGRESS_MIN_REQUESTS and sys.stderr.isatty()) if progress is None else bool(progress)
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:                      # the bar is a nicety, never a requirement
        return None
    return tqdm(total=total, unit="req", desc="replay", leave=False, file=sys.stderr)


def replay(stream, router: _OnlineRouter, *, arrival="poisson", rate_per_s: float = 1.0, seed: int = 0,
           feedback_rate: float = 1.0, feedback_delay_s: float = 0.0,
           withdraw: Mapping[str, float] | None = None, progress=None) -> OnlineResult:
    """Drive ``router`` over ``stream`` in simulated time; grade by realized outcomes and costs.

    Parameters
    ----------
    stream : RequestStream, LLMWorkload, Instance or RoutingData
        Requests in arrival order (see :func:`robatch_opt.online.as_stream`).
    router : MessPlusRouter, BatchingRouter or RandomRouter
        Bound to the stream here: its queue, exploration draws and output-token means are
        reset; its predictor keeps what it learned (it is updated in place).
    arrival : {"poisson", "bursty"} or array_like of timestamps
    rate_per_s : float > 0
    seed : int
        Seed of the arrivals and of the feedback draws (the router has its own seed).
    feedback_rate : float in [0, 1]
        Probability that a served request's outcome ever reaches the router.
    feedback_delay_s : float >= 0
        Outcomes reach the router this long after dispatch; decisions in between use the
        queue of the outcomes received so far.
    withdraw : mapping of model name to time in seconds, optional
        The model leaves the pool at that time (``router.withdraw``); later decisions,
        including windows pending at that time, avoid it.
    progress : bool, optional
        Show a progress bar (tqdm); default: on a terminal, for replays of at least
        :data:`PROGRESS_MIN_REQUESTS` requests.

    Returns
    -------
    OnlineResult

    Raises
    ------
    OnlineError
        ``router`` not one of the package's routers; bad ``arrival``, ``rate_per_s``,
        ``feedback_rate``, ``feedback_delay_s`` or ``withdraw``.

    Notes
    -----
    The replay, never the router, computes costs and outcomes: a dispatch of ``m`` requests
    to option ``(k, b)`` of task ``t`` costs ``ceil(m / b)`` system prompts ``f[t, k]`` plus
    each request's own tokens (its realized output tokens), exactly as
    :func:`robatch_opt.evaluate` charges a group; a served answer scores
    ``outcome[i, k] * r_k(b)``.
    """
    t0 = time.perf_counter()
    if not isinstance(router, _OnlineRouter):
        raise OnlineError("router", f"must be a MessPlusRouter, BatchingRouter or RandomRouter of "
                                    f"robatch_opt.online, got {type(router).__name__}")
    seed = check_seed(seed)
    s: RequestStream = as_stream(stream, seed=seed)
    n = s.n_requests
    if not isinstance(feedback_rate, Real) or isinstance(feedback_rate, bool) or not 0 <= feedback_rate <= 1:
        raise OnlineError("feedback_rate", f"must be a number in [0, 1], got {feedback_rate!r}")
    if not isinstance(feedback_delay_s, Real) or isinstance(feedback_delay_s, bool) \
            or not math.isfinite(feedback_delay_s) or feedback_delay_s < 0:
        raise OnlineError("feedback_delay_s", f"must be a finite number >= 0, got {feedback_delay_s!r}")
    arr = arrival_times(n, arrival=arrival, rate_per_s=rate_per_s, seed=seed)
    events_w = []
    for name, when in (withdraw or {}).items():
        if name not in s.model_names:
            raise UnknownModelError(f"withdraw[{name!r}]", f"unknown model; the stream's pool: {list(s.model_names)}")
        if not isinstance(when, Real) or isinstance(when, bool) or not math.isfinite(when) or when < 0:
            raise OnlineError(f"withdraw[{name!r}]", f"must be a time >= 0 in seconds, got {when!r}")
        events_w.append((float(when), name))
    events_w.sort()
    router.bind(s)

    inst = s.instance
    f = inst.fixed_cost_usd
    v = inst.variable_cost_usd
    out_tok = inst.output_tokens
    opt_index = {o: j for j, o in enumerate(inst.options)}
    r = s.retention
    y_true = s.outcome
    rng_fb = np.random.default_rng([int(seed), 2929])

    model = np.full(n, -1, dtype=np.int64)
    bsize = np.zeros(n, dtype=np.int64)
    disp = np.full(n, np.nan)
    cost_i = np.zeros(n)
    outcome = np.zeros(n)
    explored = np.zeros(n, dtype=bool)
    q_vals, q_times = [], []
    fb_heap: list = []
    seq = [0]
    n_calls = [0]

    def charge(rows, t, k, b):
        m = len(rows)
        calls = -(-m // b)
        n_calls[0] += calls
        share = np.empty(m)
        for c in range(calls):                       # each call's members share its system prompt
            lo, hi = c * b, min(m, (c + 1) * b)
            share[lo:hi] = f[t, k] / (hi - lo)
        np.add.at(cost_i, rows, share + v[rows, k])

    def realize(d: Dispatch):
        served, shadow = d.requests, d.shadow
        members = d.members
        if members.size == 0:
            return
        if (model[served] >= 0).any():
            raise AssertionError("a request was served twice")          # a router bug, never input
        t, k = d.task, d.model
        charge(members, t, k, d.batch_size)
        explored[shadow] = True
        y = y_true[served, k] * r[opt_index[(k, d.batch_size)]]
        model[served] = k
        bsize[served] = d.batch_size
        disp[served] = d.time_s
        outcome[served] = y
        keep = rng_fb.random(members.size) < feedback_rate if feedback_rate < 1 else np.ones(members.size, bool)
        if keep.any():
            ks = keep[:served.size]
            fb = Feedback(dispatch=d, served=served[ks], satisfied=y[ks], rows=members[keep],
                          outcome=y_true[members[keep], k], output_tokens=out_tok[members[keep], k])
            seq[0] += 1
            heapq.heappush(fb_heap, (d.time_s + feedback_delay_s, seq[0], fb))

    def run_until(now: float, inclusive: bool = True):
        """Process deadlines, feedback and withdrawals due by ``now`` in time order."""
        while True:
            # At equal times: outcomes first (older news), then withdrawals, then window deadlines.
            cands = [fb_heap[0][0] if fb_heap else math.inf, events_w[0][0] if events_w else math.inf,
                     router.next_deadline_s()]
            which = int(np.argmin(cands))
            when = cands[which]
            if when > now or (not inclusive and when == now) or not math.isfinite(when):
                return
            if which == 0:
                _, _, fb = heapq.heappop(fb_heap)
                router.feedback(fb)
                q_vals.append(router.Q)
                q_times.append(when)
            elif which == 1:
                _, name = events_w.pop(0)
                router.withdraw(name)
            else:
                for d in router.advance(when):
                    realize(d)

    bar = _progress(n, progress)
    try:
        for i in range(n):
            run_until(float(arr[i]))
            for d in router.submit(i, float(arr[i])):
                realize(d)
            if bar is not None:
                bar.update(1)
        run_until(math.inf)
        if hasattr(router.predictor, "flush"):
            router.predictor.flush()
    finally:
        if bar is not None:
            bar.close()
    if (model < 0).any():
        raise AssertionError(f"request {int(np.argmax(model < 0))} was never dispatched")   # a router bug
    return OnlineResult(
        router=type(router).__name__, alpha=router.alpha, V=float(router.V_resolved), model_names=s.model_names,
        n_requests=n, satisfaction=float(outcome.mean()) if n else 0.0, cost_usd=float(cost_i.sum()),
        model=model, batch_size=bsize, wait_s=disp - arr, cost_per_request_usd=cost_i, outcome=outcome,
        explored=explored, arrival_s=arr, dispatch_s=disp, queue=np.array(q_vals), queue_time_s=np.array(q_times),
        n_feedback=router.n_feedback, shortfall=float(router.sum_shortfall), n_calls=n_calls[0], source=s.source,
        wall_time_s=time.perf_counter() - t0, initial_queue=float(router.initial_queue))
