"""The peers' routing policies as baselines, on the same instance and graded by the same evaluator.

Each policy returns a :class:`PolicyPlan`: an option per query of the instance (batch size
1, as the peers route without batching), graded by :func:`robatch_opt.evaluate`. Re-grading
the same options on another instance with the same options (e.g. one whose utilities are the
real outcomes) is what a benchmark does to measure realized accuracy.

- :func:`routellm_threshold`: RouteLLM's router (Ong et al., 2024): a strong and a weak
  model; a query goes to the strong one when its predicted advantage
  ``u[i, strong] - u[i, weak]`` exceeds a threshold, calibrated so that the plan's cost fits
  the budget (RouteLLM calibrates it on the share of strong calls; here directly on dollars).
- :func:`eccos_optimizer`: ECCOS's constrained optimizer (minimum cost subject to mean
  predicted quality >= alpha and per-model workload caps, one query per call). It *is*
  :func:`robatch_opt.solve`'s quality form with ``max_queries_per_model`` on the routing-only
  restriction, and is implemented as exactly that call.
- :func:`eccos_local`: ECCOS's greedy "local" rule: per query, in order, the cheapest model
  whose predicted quality is >= alpha and whose cap is not full, else the most accurate
  model with room.
- :func:`eccos_local_at_budget`: the local rule with alpha calibrated (bisection) to a budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ._validate import check_instance, fmt_num, integer, nonnegative, number
from .errors import InfeasibleBudgetError, InstanceError
from .evaluate import Evaluation, evaluate
from .instance import Instance
from .plan import Plan
from .solve import solve

__all__ = ["PolicyPlan", "routellm_threshold", "eccos_optimizer", "eccos_local", "eccos_local_at_budget",
           "default_strong_weak"]


@dataclass(frozen=True, eq=False)
class PolicyPlan:
    """A baseline policy's plan: one option per query, graded by :func:`robatch_opt.evaluate`.

    Attributes
    ----------
    policy : str
    option : ndarray of int, shape (n,)
        Option index into ``inst.options`` per query.
    evaluation : Evaluation
        Exact cost and (predicted) utility on the instance the policy ran on.
    parameter : float
        The policy's knob at this plan (RouteLLM: threshold; ECCOS: alpha).
    """

    policy: str
    option: np.ndarray
    evaluation: Evaluation
    parameter: float

    @property
    def cost_usd(self) -> float:
        return self.evaluation.cost_usd

    @property
    def mean_utility(self) -> float:
        return self.evaluation.mean_utility


#: :func:`eccos_local_at_budget`'s top alpha: above every utility (<= 1), so no model qualifies
#: and every query goes to its most accurate model. Accepted back by :func:`eccos_local`.
ALPHA_ABOVE_ALL = 1.0 + 1e-9


def _checked_alpha(alpha) -> float:
    a = number(alpha, "alpha")
    if not math.isfinite(a) or not 0 <= a <= ALPHA_ABOVE_ALL:
        raise InstanceError("alpha", f"must be a quality threshold in [0, 1], got {fmt_num(a, apart_from=1.0)}")
    return a


def _unbatched(inst: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per model: the option index of batch size 1, the utility and the b = 1 cost of every query."""
    check_instance(inst, "inst")
    cols = []
    for k in range(inst.n_models):
        if (k, 1) not in inst.options:
            raise InstanceError(f"models[{k}].batch_sizes", "the peers' policies need batch size 1 on every model")
        cols.append(inst.options.index((k, 1)))
    cols = np.array(cols, dtype=np.int64)
    util = inst.utility[:, cols]
    cost = inst.fixed_cost_usd[inst.query_task] + inst.variable_cost_usd        # (n, K): one query per call
    cost = np.where(inst.admissible[:, cols], cost, np.inf)
    return cols, util, cost


def default_strong_weak(inst: Instance) -> tuple[int, int]:
    """RouteLLM's pair by default: the strong model has the highest mean predicted utility; the
    weak one the highest among the models that cost at most half as much in total."""
    _, util, cost = _unbatched(inst)
    mean_u = util.mean(axis=0)
    total = np.where(np.isfinite(cost), cost, 0.0).sum(axis=0)
    strong = int(np.argmax(mean_u))
    cheap = np.flatnonzero(total <= 0.5 * total[strong])
    if cheap.size == 0:
        cheap = np.array([int(np.argmin(total))])
    weak = int(cheap[np.argmax(mean_u[cheap])])
    return strong, weak


def routellm_threshold(inst: Instance, budget: float, *, strong=None, weak=None) -> PolicyPlan:
    """RouteLLM's threshold router at a budget.

    Parameters
    ----------
    inst : Instance
        Its utilities are the router's predictions (batch size 1 options are used).
    budget : float
        USD. The threshold is the lowest advantage at which the plan still fits: queries are
        sent to the strong model in decreasing order of predicted advantage while the cost fits.
    strong, weak : str or int, optional
        Default :func:`default_strong_weak`.

    Returns
    -------
    PolicyPlan
        ``parameter`` is the threshold (``inf`` when every query goes to the weak model).

    Raises
    ------
    InfeasibleBudgetError
        The budget is below the cost of every query on the weak model.
    """
    check_instance(inst, "inst")
    cols, util, cost = _unbatched(inst)
    budget = nonnegative(budget, "budget", "USD")
    s0, w0 = default_strong_weak(inst) if strong is None or weak is None else (None, None)
    s = inst.model_index(strong) if strong is not None else s0
    w = inst.model_index(weak) if weak is not None else w0
    if s == w and inst.n_models > 1:
        raise InstanceError("weak", f"must differ from the strong model ({inst.models[s].name!r})")
    if not np.isfinite(cost[:, [s, w]]).all():
        raise InstanceError("routellm_threshold", "a query does not fit the strong or the weak model's window")
    base = float(cost[:, w].sum())
    if base > budget * (1 + 1e-12):
        raise InfeasibleBudgetError(f"`budget`: ${budget:.6g} is below the weak model's cost ${base:.6g}",
                                    budget_usd=float(budget), cheapest_cost_usd=base, lower_bound_usd=base,
                                    proven=False)
    adv = util[:, s] - util[:, w]
    extra = cost[:, s] - cost[:, w]
    order = np.argsort(-adv, kind="stable")
    # Route the longest prefix (by advantage) that fits: a threshold rule, as RouteLLM's.
    spent = base + np.cumsum(extra[order])
    m = int(np.searchsorted(spent > budget * (1 + 1e-12), True))
    option = np.full(inst.n_queries, cols[w], dtype=np.int64)
    option[order[:m]] = cols[s]
    threshold = float(adv[order[m - 1]]) if m else math.inf
    return PolicyPlan("routellm-threshold", option, evaluate(inst, option), threshold)


def _cap(c, field: str) -> int:
    v = integer(c, field)
    if v < 0:
        raise InstanceError(field, f"must be an integer >= 0 (queries), got {v}")
    return v


def _caps(inst: Instance, caps) -> np.ndarray:
    if caps is None:
        return np.full(inst.n_models, inst.n_queries, dtype=np.int64)
    if isinstance(caps, Mapping):
        out = np.full(inst.n_models, inst.n_queries, dtype=np.int64)
        for name, c in caps.items():
            if c is not None:
                out[inst.model_index(name)] = _cap(c, f"caps[{name!r}]")
        return out
    if isinstance(caps, (str, bytes)) or not isinstance(caps, Sequence | np.ndarray):
        raise InstanceError("caps", f"must be a list (one cap per model) or a mapping of model names, "
                                    f"got {type(caps).__name__}")
    arr = [inst.n_queries if c is None else _cap(c, f"caps[{k}]") for k, c in enumerate(caps)]
    if len(arr) != inst.n_models:
        raise InstanceError("caps", f"must have one entry per model ({inst.n_models}), got {len(arr)}")
    return np.array(arr, dtype=np.int64)


def eccos_local(inst: Instance, alpha: float, *, caps=None) -> PolicyPlan:
    """ECCOS's local rule: per query the cheapest model with predicted quality >= ``alpha`` and room.

    Queries are taken in their order; a query with no such model goes to the most accurate
    model (by prediction) whose cap is not full.

    Raises
    ------
    InstanceError
        The caps leave a query without any model.
    """
    check_instance(inst, "inst")
    return _local(inst, _checked_alpha(alpha), caps)


def _local(inst: Instance, alpha: float, caps) -> PolicyPlan:
    """:func:`eccos_local` without the check of ``alpha`` (the bisection's top end is above 1)."""
    cols, util, cost = _unbatched(inst)
    if caps is None:
        # No cap can fill: each query on its own (vectorised).
        good = (util >= alpha) & np.isfinite(cost)
        cheapest_good = np.argmin(np.where(good, cost, np.inf), axis=1)
        best = np.argmax(np.where(np.isfinite(cost), util, -np.inf), axis=1)
        chosen = np.where(good.any(axis=1), cheapest_good, best)
        option = cols[chosen]
        return PolicyPlan("eccos-local", option, evaluate(inst, option), float(alpha))
    room = _caps(inst, caps).copy()
    option = np.empty(inst.n_queries, dtype=np.int64)
    order_cost = np.argsort(cost, axis=1, kind="stable")
    for i in range(inst.n_queries):
        chosen = -1
        for k in order_cost[i]:
            if room[k] > 0 and util[i, k] >= alpha and np.isfinite(cost[i, k]):
                chosen = int(k)
                break
        if chosen < 0:
            ok = (room > 0) & np.isfinite(cost[i])
            if not ok.any():
                raise InstanceError("caps", f"query {i} has no model with room left")
            chosen = int(np.flatnonzero(ok)[np.argmax(util[i, ok])])
        room[chosen] -= 1
        option[i] = cols[chosen]
    return PolicyPlan("eccos-local", option, evaluate(inst, option), float(alpha))


def eccos_local_at_budget(inst: Instance, budget: float, *, caps=None, iters: int = 40) -> PolicyPlan:
    """:func:`eccos_local` with the largest alpha (by bisection) whose plan fits ``budget``.

    Without caps a higher alpha never makes a query cheaper, so the cost is monotone in alpha.

    Raises
    ------
    InfeasibleBudgetError
        Even alpha = 0 (every query on its cheapest model) exceeds the budget.
    """
    check_instance(inst, "inst")
    budget = nonnegative(budget, "budget", "USD")
    iters = integer(iters, "iters")
    if iters < 1:
        raise InstanceError("iters", f"must be an integer >= 1, got {iters}")
    lo_plan = _local(inst, 0.0, caps)
    if lo_plan.cost_usd > budget * (1 + 1e-12):
        raise InfeasibleBudgetError(f"`budget`: ${budget:.6g} is below the cheapest local plan "
                                    f"${lo_plan.cost_usd:.6g}", budget_usd=float(budget),
                                    cheapest_cost_usd=lo_plan.cost_usd, lower_bound_usd=0.0, proven=False)
    hi_plan = _local(inst, ALPHA_ABOVE_ALL, caps)
    if hi_plan.cost_usd <= budget * (1 + 1e-12):
        return hi_plan
    lo, hi, best = 0.0, ALPHA_ABOVE_ALL, lo_plan
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        plan = _local(inst, mid, caps)
        if plan.cost_usd <= budget * (1 + 1e-12):
            lo, best = mid, plan
        else:
            hi = mid
    return best


def eccos_optimizer(inst: Instance, alpha: float, *, caps: Sequence[int | None] | Mapping[str, int | None] | None = None,
                    method: str = "auto", **solve_kwargs) -> Plan:
    """ECCOS's optimizer: minimum cost s.t. mean predicted quality >= ``alpha`` and workload caps, b = 1.

    This is the quality form of RwB with capacities on the routing-only restriction,
    ``solve(inst.restrict(batch_sizes=[1]), min_mean_utility=alpha, max_queries_per_model=caps)``,
    so it is solved (and proven optimal on small instances) by the package's own engines.

    Returns
    -------
    Plan
        On the routing-only restriction (same models, options ``(k, 1)``).
    """
    check_instance(inst, "inst")
    return solve(inst.restrict(batch_sizes=[1]), min_mean_utility=alpha, max_queries_per_model=caps,
                 method=method, **solve_kwargs)
