"""Single-dimension baselines as restrictions of an instance, solved by the same solvers.

RoBatch decides routing and batching jointly; the baselines it is compared with decide
one of them only. Each baseline here is an :meth:`Instance.restrict` of the joint
instance, so it is solved by the very solver (and graded by the very evaluator) that
solves the joint problem, and every comparison is fair by construction:

- **routing-only**: every model, batch size 1 only (``restrict(batch_sizes=[1])``);
- **batching-only**: one model with all its batch sizes; at a budget the baseline is the
  best single model for that budget (``restrict(models=[k])`` for every model ``k``);
- **single model, no batching**: one model, batch size 1: one fixed plan per model.

The peers' policies (:mod:`robatch_opt.peers`) are here too: RouteLLM's threshold router
(:func:`routellm_threshold`), ECCOS's optimizer (:func:`eccos_optimizer`, the quality form
with capacities) and its local rule (:func:`eccos_local`, :func:`eccos_local_at_budget`).

Because each restriction's plans are plans of the joint instance, the joint optimum is at
least each baseline's optimum at every budget (and costs at most as much at every
accuracy). A heuristic solver need not keep that order; :func:`compare_strategies`
reports it as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ._validate import check_instance, fmt_num, number
from .errors import InfeasibleBudgetError, InstanceError
from .evaluate import evaluate
from .frontier import Frontier, check_budgets, check_sweep_flags, frontier, frontier_budgets
from .instance import Instance
from .plan import Status
from .solve import solve
from .peers import (PolicyPlan, default_strong_weak, eccos_local, eccos_local_at_budget, eccos_optimizer,
                    routellm_threshold)

__all__ = ["routing_only", "single_model", "single_model_instances", "SingleModelPlan",
           "single_model_plans", "batching_only_frontier", "cost_to_reach", "StrategyComparison",
           "compare_strategies", "STRATEGIES",
           # the peers' policies (robatch_opt.peers)
           "PolicyPlan", "routellm_threshold", "eccos_optimizer", "eccos_local", "eccos_local_at_budget",
           "default_strong_weak"]

#: Strategies compared by :func:`compare_strategies`, in plotting order.
STRATEGIES = ("joint", "routing-only", "batching-only")


def routing_only(inst: Instance) -> Instance:
    """Every model, batch size 1 only (models without batch size 1 drop out).

    Raises
    ------
    InstanceError
        No model allows batch size 1, or some query fits no remaining model.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst = ro.workloads.llm("gemma3", n=50, seed=0)
    >>> sub = ro.baselines.routing_only(inst)
    >>> sorted({b for _, b in sub.options}), sub.n_models == inst.n_models
    ([1], True)
    >>> fr = ro.frontier(sub, points=3, label="routing-only")
    >>> bool((fr.utility[fr.feasible] <= fr.upper_bound[fr.feasible]).all())
    True
    """
    check_instance(inst, "inst")
    return inst.restrict(batch_sizes=[1])


def single_model(inst: Instance, model, *, batching: bool = True) -> Instance:
    """One model (name or index) alone: all its batch sizes, or batch size 1 if not ``batching``.

    Raises
    ------
    InstanceError
        The model is unknown, lacks batch size 1 (``batching=False``), or some query does
        not fit its context window (the message names the query).
    """
    check_instance(inst, "inst")
    k = inst.model_index(model)
    return inst.restrict(models=[k], batch_sizes=None if batching else [1])


def single_model_instances(inst: Instance, *, batching: bool = True) -> dict[str, Instance]:
    """:func:`single_model` for every model that can serve every query on its own."""
    check_instance(inst, "inst")
    out = {}
    for m in inst.models:
        try:
            out[m.name] = single_model(inst, m.name, batching=batching)
        except InstanceError:
            continue                    # this model cannot serve the whole workload alone
    return out


@dataclass(frozen=True)
class SingleModelPlan:
    """The only plan of one model without batching (every query alone on it)."""

    model: str
    cost_usd: float
    utility: float
    mean_utility: float


def single_model_plans(inst: Instance) -> list[SingleModelPlan]:
    """Every model alone without batching, graded by :func:`robatch_opt.evaluate` (cheapest first)."""
    check_instance(inst, "inst")
    out = []
    for name, sub in single_model_instances(inst, batching=False).items():
        ev = evaluate(sub, np.zeros(sub.n_queries, dtype=np.int64))
        out.append(SingleModelPlan(name, ev.cost_usd, ev.utility, ev.mean_utility))
    return sorted(out, key=lambda p: p.cost_usd)


def batching_only_frontier(inst: Instance, budgets: Sequence[float] | np.ndarray | None = None, *,
                           method: str = "greedy", points: int = 12, keep_plans: bool = False,
                           progress: bool | None = None, **solve_kwargs: Any) -> Frontier:
    """The best single model (with batching) at every budget.

    Each model's restriction is swept by :func:`robatch_opt.frontier` at the same budgets;
    at each budget the most useful of their plans is kept. The upper bound of a point is
    the largest of the models' bounds (the baseline may pick any model).

    Returns
    -------
    Frontier
        ``label="batching-only"``; ``info["model"]`` names the model chosen at each point
        (None where no model fits the budget). Kept plans index the chosen model's
        sub-instance options.
    """
    check_instance(inst, "inst")
    check_sweep_flags(progress=progress)
    b = frontier_budgets(inst, points) if budgets is None else check_budgets(budgets)
    subs = single_model_instances(inst, batching=True)
    if not subs:
        raise InstanceError("models", "no single model can serve every query (context windows)")
    fronts = {name: frontier(sub, b, method=method, keep_plans=keep_plans, progress=progress,
                             label=name, **solve_kwargs) for name, sub in subs.items()}
    m = len(b)
    cost, util, ub = np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan)
    status, chosen, plans = [], [], []
    for p in range(m):
        best = None
        for name, fr in fronts.items():
            if fr.feasible[p] and (best is None or fr.utility[p] > fronts[best].utility[p]):
                best = name
        bounds = [fr.upper_bound[p] for fr in fronts.values() if fr.feasible[p]]
        chosen.append(best)
        if best is None:
            status.append(Status.INFEASIBLE.value)
            plans.append(None)
            continue
        cost[p], util[p] = fronts[best].cost_usd[p], fronts[best].utility[p]
        ub[p] = max(bounds)
        every_optimal = all(fr.status[p] in (Status.OPTIMAL.value, Status.INFEASIBLE.value)
                            for fr in fronts.values())
        status.append(Status.OPTIMAL.value if every_optimal else Status.FEASIBLE.value)
        plans.append(fronts[best].plans[p] if keep_plans else None)
    gap = np.where(ub > 0, (ub - util) / np.where(ub > 0, ub, 1.0), 0.0)
    gap[np.isnan(util)] = np.nan
    n = inst.n_queries
    arrays = [b.copy(), cost, util, util / n if n else util, ub, gap]
    for a in arrays:
        a.flags.writeable = False
    return Frontier(method=method, label="batching-only", budget_usd=arrays[0], cost_usd=cost, utility=util,
                    mean_utility=arrays[3], upper_bound=ub, gap=gap, status=tuple(status), n_queries=n,
                    wall_time_s=float(sum(fr.wall_time_s for fr in fronts.values())),
                    plans=tuple(plans) if keep_plans else None,
                    info={"model": tuple(chosen), "models": tuple(fronts)})


def _strategy_instances(inst: Instance, strategy: str) -> list[Instance]:
    if strategy == "joint":
        return [inst]
    if strategy == "routing-only":
        return [routing_only(inst)]
    if strategy == "batching-only":
        return list(single_model_instances(inst, batching=True).values())
    if strategy == "single-model":
        return list(single_model_instances(inst, batching=False).values())
    raise InstanceError("strategy", f"unknown strategy {strategy!r}; valid: "
                                    f"{', '.join(STRATEGIES + ('single-model',))}")


def cost_to_reach(inst: Instance, mean_utility: float, strategy: str = "joint", *, method: str = "greedy",
                  **solve_kwargs: Any) -> tuple[float, float]:
    """Least exact cost at which ``strategy`` reaches ``mean_utility`` (the quality form).

    Parameters
    ----------
    inst : Instance
    mean_utility : float
        Target mean utility (e.g. the accuracy of the best single model without batching).
    strategy : {"joint", "routing-only", "batching-only", "single-model"}
        ``"batching-only"`` and ``"single-model"`` take the cheapest model that reaches it.
    method : str
        Solver of the quality form (:func:`robatch_opt.solve` with ``min_mean_utility``).

    Returns
    -------
    cost_usd : float
        Exact cost of the cheapest plan found (``inf`` if the strategy cannot reach it).
    lower_bound_usd : float
        A proven lower bound on that strategy's least cost (``inf`` if it cannot reach it).
    """
    check_instance(inst, "inst")
    best, best_lb = math.inf, math.inf
    for sub in _strategy_instances(inst, strategy):
        try:
            plan = solve(sub, min_mean_utility=float(mean_utility), method=method, **solve_kwargs)
        except InfeasibleBudgetError as exc:
            if not exc.proven:
                best_lb = min(best_lb, exc.lower_bound_usd)
            continue
        best = min(best, plan.cost_usd)
        best_lb = min(best_lb, plan.cost_lower_bound_usd if plan.cost_lower_bound_usd is not None else 0.0)
    return best, best_lb


@dataclass(frozen=True, eq=False)
class StrategyComparison:
    """Joint vs routing-only vs batching-only on one instance at the same budgets.

    Attributes
    ----------
    frontiers : mapping of str to Frontier
        ``"joint"``, ``"routing-only"``, ``"batching-only"``.
    single_models : list of SingleModelPlan
        Each model alone without batching (cheapest first).
    reference_accuracy : float
        Mean utility of the best single model without batching.
    reference_model : str
    matched : list of dict
        For the reference accuracy and 95 % of it: the cost of each strategy to reach it
        (quality form), the single-model cost, and the joint plan's saving.
    dominance : dict of str to list of int
        Per baseline, the budget indices where the joint curve is *below* it (empty: the
        joint curve is at or above the baseline everywhere).
    """

    frontiers: Mapping[str, Frontier]
    single_models: list[SingleModelPlan]
    reference_accuracy: float
    reference_model: str
    matched: list[dict[str, Any]]
    dominance: dict[str, list[int]] = field(default_factory=dict)


def _check_fractions(fractions) -> tuple[float, ...]:
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence | np.ndarray):
        raise InstanceError("fractions", f"must be a list of numbers, got {type(fractions).__name__}")
    out = []
    for i, f in enumerate(fractions):
        v = number(f, f"fractions[{i}]")
        if not math.isfinite(v) or v <= 0:
            raise InstanceError(f"fractions[{i}]", f"must be a finite number > 0 (a share of the best single "
                                                   f"model's accuracy), got {fmt_num(v)}")
        out.append(v)
    return tuple(out)


def compare_strategies(inst: Instance, budgets: Sequence[float] | np.ndarray | None = None, *,
                       method: str = "greedy", points: int = 12, fractions: Sequence[float] = (1.0, 0.95),
                       progress: bool | None = None, **solve_kwargs: Any) -> StrategyComparison:
    """Frontiers of the three strategies and the cost saved at matched accuracy.

    Parameters
    ----------
    inst : Instance
    budgets : sequence of float, optional
        Default: ``points`` budgets from the joint instance's cheapest plan to its most
        useful one (baselines are infeasible where the budget is below their cheapest plan).
    method : str
    fractions : sequence of float
        Matched accuracies, as fractions of the best single model's (no batching) accuracy.

    Returns
    -------
    StrategyComparison
    """
    check_instance(inst, "inst")
    check_sweep_flags(progress=progress)
    fractions = _check_fractions(fractions)
    b = frontier_budgets(inst, points) if budgets is None else check_budgets(budgets)
    fronts = {
        "joint": frontier(inst, b, method=method, label="joint", progress=progress, **solve_kwargs),
        "routing-only": frontier(routing_only(inst), b, method=method, label="routing-only",
                                 progress=progress, **solve_kwargs),
        "batching-only": batching_only_frontier(inst, b, method=method, progress=progress, **solve_kwargs),
    }
    singles = single_model_plans(inst)
    ref = max(singles, key=lambda p: (p.mean_utility, -p.cost_usd))
    matched = []
    for f in fractions:
        target = f * ref.mean_utility
        row: dict[str, Any] = {"fraction": float(f), "mean_utility": target}
        reach = [p for p in singles if p.mean_utility >= target - 1e-12]
        # Above 1, no single model reaches the target (a router may): its cost is inf.
        row["single-model"] = min((p.cost_usd for p in reach), default=math.inf)
        row["single-model-name"] = min(reach, key=lambda p: p.cost_usd).model if reach else None
        for s in STRATEGIES:
            # A mean utility above 1 is out of every plan's reach (utilities are in [0, 1]).
            row[s], row[s + "-lower-bound"] = (cost_to_reach(inst, target, s, method=method, **solve_kwargs)
                                               if target <= 1 else (math.inf, math.inf))
        for s in ("single-model", "routing-only", "batching-only"):
            row["joint-saving-vs-" + s] = (1.0 - row["joint"] / row[s]) if math.isfinite(row[s]) and row[s] > 0 \
                else math.nan
        matched.append(row)
    dominance = {}
    joint = fronts["joint"]
    for s in ("routing-only", "batching-only"):
        base = fronts[s]
        below = [p for p in range(len(b)) if base.feasible[p]
                 and not (joint.feasible[p] and joint.utility[p] >= base.utility[p] - 1e-9 * max(1.0, base.utility[p]))]
        dominance[s] = below
    return StrategyComparison(frontiers=fronts, single_models=singles, reference_accuracy=ref.mean_utility,
                              reference_model=ref.model, matched=matched, dominance=dominance)
