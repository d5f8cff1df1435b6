"""Yardsticks of an online policy: the hindsight optimum and the simple baselines.

The hindsight optimum is the offline quality-form problem over the whole stream with the
realized outcomes as utilities: the least cost of any assignment whose mean realized
outcome is at least ``alpha``. No policy, online or not, that serves every request once
can do better: it would have to know every outcome in advance and (with batching) group
requests across any span of time. Solved with :func:`robatch_opt.solve`
(``min_mean_utility=alpha``), which reports a proven lower bound with the plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..solve import solve
from .router import _check_alpha
from .stream import RequestStream, as_stream

__all__ = ["HindsightBound", "hindsight", "offline_plan", "SingleModelBaseline", "cheapest_single_model",
           "model_means"]


@dataclass(frozen=True)
class HindsightBound:
    """The offline quality-form optimum over a stream.

    Attributes
    ----------
    alpha : float
    batching : bool
        Whether batch sizes above 1 were allowed.
    cost_usd : float
        Exact cost of the best plan found (the yardstick).
    lower_bound_usd : float
        Proven lower bound on the optimum (equal to ``cost_usd`` when ``status`` is optimal).
    mean_utility : float
    status, method : str
    """

    alpha: float
    batching: bool
    cost_usd: float
    lower_bound_usd: float
    mean_utility: float
    status: str
    method: str


def hindsight(stream, alpha: float, *, batching: bool = True, models: Sequence[str] | None = None,
              method: str = "greedy", time_limit_s: float = 60.0) -> HindsightBound:
    """The least cost of serving ``stream`` at mean realized outcome ``>= alpha``, in hindsight.

    Parameters
    ----------
    stream : RequestStream (or anything :func:`as_stream` accepts)
    alpha : float in [0, 1]
    batching : bool
        False restricts every model to batch size 1 (the yardstick of MESS+).
    models : sequence of str, optional
        Restrict the pool (to the router's models).
    method : str
        A :func:`robatch_opt.solve` method; the greedy handles streams of any length and
        reports its gap to the proven bound.

    Raises
    ------
    OnlineError
        ``alpha`` is not a number in [0, 1].
    InfeasibleBudgetError
        No assignment reaches ``alpha`` (more than ``1 - alpha`` of the requests are
        answered by no model).
    """
    alpha = _check_alpha(alpha)                 # the error names `alpha`, not solve's field
    s: RequestStream = as_stream(stream)
    inst = s.hindsight_instance()
    if models is not None:
        inst = inst.restrict(models=list(models))
    if not batching:
        inst = inst.restrict(batch_sizes=[1])
    plan = solve(inst, min_mean_utility=float(alpha), method=method, time_limit_s=time_limit_s)
    return HindsightBound(alpha=float(alpha), batching=bool(batching), cost_usd=plan.cost_usd,
                          lower_bound_usd=float(plan.cost_lower_bound_usd), mean_utility=plan.mean_utility,
                          status=str(plan.status.name if hasattr(plan.status, "name") else plan.status),
                          method=plan.method)


@dataclass(frozen=True)
class OfflinePlan:
    """The offline plan made with the predictor instead of the outcomes, graded by the outcomes.

    Attributes
    ----------
    alpha : float
    batching : bool
    cost_usd : float
        Exact cost of the plan (the same for predicted and realized grading).
    predicted_mean_utility : float
        Mean predicted utility (``>= alpha`` by construction).
    realized_satisfaction : float
        Mean realized outcome of the plan's choices.
    """

    alpha: float
    batching: bool
    cost_usd: float
    predicted_mean_utility: float
    realized_satisfaction: float


def offline_plan(stream, alpha: float, predictor, *, batching: bool = True, method: str = "greedy") -> OfflinePlan:
    """The least-cost plan of the whole stream at predicted mean utility ``>= alpha``, in hindsight.

    It knows every request in advance (and may batch across the whole stream) but not the
    outcomes: the utilities are ``predictor.predict(features) * r_k(b)``. Comparing an
    online router with it separates what being online costs from what the predictor's
    errors cost (the hindsight optimum of :func:`hindsight` has neither).

    Parameters
    ----------
    stream : RequestStream (or anything :func:`as_stream` accepts)
    alpha : float in [0, 1]
        Target mean predicted utility.
    predictor : object
        ``predict(features) -> (n, K)`` probabilities, called on the stream's CSR features
        (its output is clipped to [0, 1]), e.g. a fitted :class:`OnlineLogistic`.
    batching : bool
        False restricts every model to batch size 1.
    method : str
        A :func:`robatch_opt.solve` method.

    Returns
    -------
    OfflinePlan
        ``cost_usd`` is the plan's exact cost on the realized output tokens;
        ``realized_satisfaction`` grades its choices by ``outcome[i, k] * r_k(b)``.

    Raises
    ------
    InfeasibleBudgetError
        No plan reaches ``alpha`` in prediction.
    OnlineError
        ``alpha`` is not a number in [0, 1].
    StreamError
        ``stream`` cannot be made a RequestStream.
    """
    from ..proxy.simulate import subset_instance
    from .learner import OnlineLogistic
    alpha = _check_alpha(alpha)
    s: RequestStream = as_stream(stream)
    inst = s.instance
    # As the routers ask it: the learner on the stream's features, any other predictor (e.g.
    # a TextUtility) on the stream's RoutingData when it has one.
    x = s.features if isinstance(predictor, OnlineLogistic) or s.data is None else s.data
    p = np.clip(np.asarray(predictor.predict(x), dtype=np.float64), 0.0, 1.0)
    u = np.clip(p[:, inst.option_model] * s.retention[None, :], 0.0, 1.0)
    pinst = subset_instance(inst, np.arange(s.n_requests), utility=u)
    if not batching:
        pinst = pinst.restrict(batch_sizes=[1])
    plan = solve(pinst, min_mean_utility=float(alpha), method=method)
    realized = s.realized_utility()
    opts = [inst.options.index(pinst.options[j]) for j in plan.option]
    return OfflinePlan(alpha=float(alpha), batching=bool(batching), cost_usd=plan.cost_usd,
                       predicted_mean_utility=plan.mean_utility,
                       realized_satisfaction=float(realized[np.arange(s.n_requests), opts].mean()))


def model_means(stream) -> tuple[np.ndarray, np.ndarray]:
    """Per model, the mean realized outcome and the mean cost of one unbatched request (USD)."""
    s: RequestStream = as_stream(stream)
    inst = s.instance
    cost = inst.fixed_cost_usd[inst.query_task] + inst.variable_cost_usd
    return s.outcome.mean(axis=0), cost.mean(axis=0)


@dataclass(frozen=True)
class SingleModelBaseline:
    """The cheapest single model (unbatched) whose realized mean outcome reaches ``alpha``."""

    alpha: float
    model: str | None
    satisfaction: float
    cost_usd: float


def cheapest_single_model(stream, alpha: float) -> SingleModelBaseline:
    """Every request on one model, unbatched: the cheapest model that meets ``alpha`` on the stream.

    ``model`` is None (and the cost ``inf``) when no single model does.

    Parameters
    ----------
    stream : RequestStream (or anything :func:`as_stream` accepts)
    alpha : float
        Service level: a model qualifies if its mean realized outcome is ``>= alpha``.

    Returns
    -------
    SingleModelBaseline
        ``satisfaction``: the chosen model's mean realized outcome (when none qualifies,
        the best model's); ``cost_usd``: its total cost over the stream, USD, each request
        in its own call (system prompt, input and realized output tokens).

    Raises
    ------
    OnlineError
        ``alpha`` is not a number in [0, 1].
    StreamError
        ``stream`` cannot be made a RequestStream.
    """
    alpha = _check_alpha(alpha)
    s: RequestStream = as_stream(stream)
    acc, mean_cost = model_means(s)
    ok = np.flatnonzero(acc >= alpha)
    if ok.size == 0:
        return SingleModelBaseline(float(alpha), None, float(acc.max()), math.inf)
    k = int(ok[np.argmin(mean_cost[ok])])
    return SingleModelBaseline(float(alpha), s.model_names[k], float(acc[k]), float(mean_cost[k] * s.n_requests))
