"""Reductions between Route-with-Batching (RwB) and classic knapsack problems.

Each reduction builds a genuine RwB :class:`~robatch_opt.Instance` (models with prices and
context windows, a task with a system prompt, token counts, utilities in [0, 1]) and a
budget, together with the two solution maps that make the reduction checkable:

* ``decode``: an RwB assignment (a :class:`~robatch_opt.Plan`, an
  :class:`~robatch_opt.Evaluation` or an option array) -> a solution of the source problem
  of the same value (up to the documented value scale);
* ``encode``: a source solution -> an option array of the same value.

Directions:

* :func:`knapsack_to_rwb`: 0/1 knapsack -> RwB. Routing alone is hard: one task, batch size
  1, a priced model ("take the item") and a free model ("leave it"). This is the NP-hardness
  reduction of ``proofs/np_completeness.md``.
* :func:`mckp_to_rwb`: multiple-choice knapsack (MCKP) -> RwB: one query per class, one
  model per item position.
* :func:`rwb_to_mckp`: RwB with amortized costs -> MCKP (the amortized problem *is* an MCKP);
  :meth:`MultipleChoiceKnapsack.lp_relaxation` is the Sinha-Zoltners hull walk whose value
  bounds the RwB optimum from above (``proofs/amortized_bound.md``).

Exact costs. The evaluator prices a query as ``(l * p_in + o * p_out) / 1e6`` USD. The
reductions put every item weight into output tokens of a model with
``price_out = 1e6 * usd_per_weight`` USD per million tokens and ``price_in = 0`` (so the
system prompt and the input tokens cost nothing). With integer weights and
``usd_per_weight`` a power of two, every product ``o * p_out`` and every partial sum of
them is an integer multiple of ``1e6 * usd_per_weight`` below ``2**53``, hence exact, and
dividing by ``1e6`` gives exactly ``weight * usd_per_weight``: the exact cost of a plan is
*exactly* the knapsack weight times ``usd_per_weight``, and the budget is exactly the
capacity times it. No tolerance is involved in the budget constraint.

References
----------
.. [1] M. R. Garey, D. S. Johnson, *Computers and Intractability: A Guide to the Theory of
   NP-Completeness*, W. H. Freeman, 1979 (problem MP9, KNAPSACK).
.. [2] H. Kellerer, U. Pferschy, D. Pisinger, *Knapsack Problems*, Springer, 2004
   (ch. 11, the multiple-choice knapsack problem).
.. [3] P. Sinha, A. A. Zoltners, "The multiple-choice knapsack problem", *Operations
   Research* 27(3):503-515, 1979.
.. [4] X. Xu, Y. Xie, Z. Zhao, "RoBatch: joint routing and batch prompting of LLM queries
   under a budget", 2026 (the RwB problem and its NP-hardness claim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ._validate import check_instance
from .errors import InstanceError
from .evaluate import validate_assignment
from .instance import Instance, Model, Task

__all__ = [
    "KnapsackReduction",
    "MCKPReduction",
    "MultipleChoiceKnapsack",
    "knapsack_to_rwb",
    "mckp_to_rwb",
    "rwb_to_mckp",
]

#: Products ``o * p_out`` (in units of ``usd_per_weight * 1e6``) must stay below this so that
#: every cost and every partial sum the evaluator forms is an exact double.
_EXACT_LIMIT = 2.0 ** 53

#: Tokens of the system prompt and of each query's own input in the reduced instances. They
#: are priced at 0 USD, so they change no cost; they are positive so that the instances look
#: like real workloads and so that padding options can be made inadmissible (MCKP).
_SYSTEM_TOKENS = 1
_INPUT_TOKENS = 1


# ----------------------------------------------------------------------------- validation
def _power_of_two(x, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise InstanceError(name, f"must be a number, got {x!r}") from exc
    if not math.isfinite(v) or v <= 0 or math.frexp(v)[0] != 0.5:
        raise InstanceError(name, f"must be a positive power of two (exact costs), got {x!r}")
    return v


def _value_vector(values, name: str, *, integral: bool = False) -> np.ndarray:
    """A 1-D float array of finite numbers >= 0 (integers, given as ints or integral floats,
    when ``integral``); the error names the first bad entry."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InstanceError(name, f"must be numeric: {exc}") from exc
    if a.ndim != 1:
        raise InstanceError(name, f"must be 1-D, got shape {a.shape}")
    bad = ~np.isfinite(a) | (a < 0)
    if integral:
        bad |= a != np.round(a)
    if bad.any():
        i = int(np.argmax(bad))
        what = "a non-negative integer" if integral else "a finite number >= 0"
        raise InstanceError(f"{name}[{i}]", f"must be {what}, got {a[i]!r}")
    return a


def _int_vector(values, name: str) -> np.ndarray:
    """A 1-D array of non-negative integers (given as ints or integral floats)."""
    return _value_vector(values, name, integral=True)


def _capacity(capacity) -> float:
    try:
        c = float(capacity)
    except (TypeError, ValueError) as exc:
        raise InstanceError("capacity", f"must be a number, got {capacity!r}") from exc
    if not math.isfinite(c) or c < 0 or c != round(c):
        raise InstanceError("capacity", f"must be a non-negative integer, got {capacity!r}")
    return c


def _check_exact(total_weight: float, capacity: float) -> None:
    # The evaluator multiplies by p_out = 1e6 * usd_per_weight before dividing by 1e6; the
    # power of two cancels out of the exactness condition, 1e6 does not.
    if max(total_weight, capacity) * 1e6 >= _EXACT_LIMIT:
        raise InstanceError("weights", f"total weight {total_weight:.0f} (or the capacity) is too large for "
                                       f"exact double-precision costs (limit {_EXACT_LIMIT / 1e6:.0f})")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _option_of(inst: Instance, plan_or_option) -> np.ndarray:
    """The validated option array of a Plan, an Evaluation or an array-like."""
    option = getattr(plan_or_option, "option", plan_or_option)
    return validate_assignment(inst, option)


def _value_scale(values: np.ndarray, how) -> float:
    """The divisor that maps values into [0, 1] (see ``value_scale`` of :func:`knapsack_to_rwb`)."""
    top = float(values.max()) if values.size else 0.0
    if isinstance(how, str):
        if how == "max":
            return top if top > 0 else 1.0
        if how == "pow2":
            # The smallest power of two >= the largest value: v / 2**e is exact, and so is
            # every sum of such utilities while the integer values stay below 2**53.
            if top <= 0:
                return 1.0
            mant, exp = math.frexp(top)                  # top = mant * 2**exp, 0.5 <= mant < 1
            return math.ldexp(1.0, exp - 1 if mant == 0.5 else exp)
        raise InstanceError("value_scale", f"must be 'max', 'pow2' or a number, got {how!r}")
    try:
        d = float(how)
    except (TypeError, ValueError) as exc:
        raise InstanceError("value_scale", f"must be 'max', 'pow2' or a number, got {how!r}") from exc
    if not math.isfinite(d) or d <= 0 or d < top:
        raise InstanceError("value_scale", f"must be a finite number >= the largest value {top!r}, got {how!r}")
    return d


# ------------------------------------------------------------------------------ knapsack
@dataclass(frozen=True, eq=False)
class KnapsackReduction:
    """A 0/1 knapsack instance reduced to RwB; unpacks as ``(instance, budget_usd, decode)``.

    Attributes
    ----------
    instance : Instance
        One query per item, one task, two models with batch size 1: option 0 is
        ``("priced", 1)`` (take the item), option 1 is ``("free", 1)`` (leave it).
    budget_usd : float
        ``capacity * usd_per_weight``, exactly.
    values, weights : ndarray, shape (n,)
        The source instance (read-only).
    capacity : float
    value_scale : float
        Utilities are ``values / value_scale`` (by default the smallest power of two at
        least the largest value), so a plan of utility ``U`` decodes to a packing of value ``U * value_scale``.
    usd_per_weight : float
        USD of one unit of weight (a power of two).
    """

    instance: Instance
    budget_usd: float
    values: np.ndarray
    weights: np.ndarray
    capacity: float
    value_scale: float
    usd_per_weight: float

    #: Option indices of the two choices of every query.
    TAKE = 0
    LEAVE = 1

    def __iter__(self) -> Iterator:
        # DESIGN §5 fixes the public shape ``(instance, budget, decode)``.
        return iter((self.instance, self.budget_usd, self.decode))

    def decode(self, plan_or_option) -> np.ndarray:
        """The packing of an RwB plan: ``take[i]`` is True iff query i is on the priced model.

        Parameters
        ----------
        plan_or_option : Plan, Evaluation or array_like of int, shape (n,)

        Returns
        -------
        ndarray of bool, shape (n,)
            Its weight is ``cost_usd / usd_per_weight`` and its value ``utility * value_scale``.
        """
        return _option_of(self.instance, plan_or_option) == self.TAKE

    def encode(self, take) -> np.ndarray:
        """The option array of a packing (forward map): same value, same weight.

        Parameters
        ----------
        take : array_like of bool, shape (n,)
            Items packed (a boolean mask; an integer array of item indices is accepted too).

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        mask = _as_mask(take, self.values.shape[0])
        return np.where(mask, self.TAKE, self.LEAVE).astype(np.int64)

    def value(self, take) -> float:
        """Total value of a packing (source units)."""
        return float(self.values[_as_mask(take, self.values.shape[0])].sum())

    def weight(self, take) -> float:
        """Total weight of a packing (source units)."""
        return float(self.weights[_as_mask(take, self.values.shape[0])].sum())


def _as_mask(take, n: int) -> np.ndarray:
    a = np.asarray(take)
    if a.dtype == np.bool_:
        if a.shape != (n,):
            raise InstanceError("take", f"must have shape ({n},), got {a.shape}")
        return a
    idx = np.asarray(a, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InstanceError("take", f"item indices must be in [0, {n}), got {idx.tolist()}")
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask


def knapsack_to_rwb(values: Sequence[float], weights: Sequence[int], capacity: int, *,
                    usd_per_weight: float = 1.0, value_scale: str | float = "pow2") -> KnapsackReduction:
    """Reduce a 0/1 knapsack instance to RwB (routing alone is NP-hard).

    Item ``i`` becomes query ``i`` of a single task. Two models, each with batch size 1:
    ``priced`` (utility ``values[i] / value_scale``, exact cost ``weights[i] *
    usd_per_weight``) and ``free`` (utility 0, cost 0). A plan within the budget
    ``capacity * usd_per_weight`` is exactly a packing within the capacity, with utility
    equal to its value divided by ``value_scale``.

    Parameters
    ----------
    values : sequence of float, shape (n,)
        Item values, >= 0.
    weights : sequence of int, shape (n,)
        Item weights, non-negative integers.
    capacity : int
        Knapsack capacity, a non-negative integer.
    usd_per_weight : float, default 1.0
        USD of one unit of weight; must be a power of two so that costs stay exact.
    value_scale : {"pow2", "max"} or float, default "pow2"
        Divisor of the values: the smallest power of two at least the largest value
        (``"pow2"``: every utility and every sum of utilities of integer values is then
        exact, which keeps the integer structure visible to exact engines: CP-SAT through
        the reduction is within 2x of CP-SAT on the knapsack on 19 of the 21 knapPI
        instances, 16 with ``"max"``), the largest value (``"max"``), or a given number at
        least the largest value. Any choice preserves the optimal packings.

    Returns
    -------
    KnapsackReduction
        Unpacks as ``(instance, budget_usd, decode)``; also carries ``encode``,
        ``value_scale`` and the source data.

    Raises
    ------
    InstanceError
        Negative or non-integer weights (named by index), negative values, an empty
        instance, or weights too large for exact costs (total weight >= 2**53 / 1e6).

    Notes
    -----
    O(n) time and memory. Since utilities are divided by one positive constant and costs
    are the weights times another, the sets of feasible solutions coincide and the optimal
    values differ exactly by the factor ``value_scale`` (in exact arithmetic; the
    utilities themselves are rounded to doubles, so a float sum may differ from the scaled
    integer value in the last bits).

    References
    ----------
    .. [1] Garey & Johnson (1979), KNAPSACK (MP9): NP-complete.
    .. [2] Xu, Xie, Zhao (2026), RoBatch: RwB is NP-hard.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst, budget, decode = ro.reductions.knapsack_to_rwb([6, 10, 12], [1, 2, 3], 5)
    >>> inst.options, budget
    (((0, 1), (1, 1)), 5.0)
    >>> ev = ro.evaluate(inst, [1, 0, 0])       # leave item 0, take items 1 and 2
    >>> ev.cost_usd, ev.utility * 16, decode(ev).tolist()
    (5.0, 22.0, [False, True, True])
    """
    v = _value_vector(values, "values")
    w = _int_vector(weights, "weights")
    if v.shape != w.shape:
        raise InstanceError("weights", f"must have the shape of `values` {v.shape}, got {w.shape}")
    n = v.shape[0]
    if n == 0:
        raise InstanceError("values", "must hold at least one item")
    cap = _capacity(capacity)
    scale_usd = _power_of_two(usd_per_weight, "usd_per_weight")
    _check_exact(float(w.sum()), cap)
    value_scale = _value_scale(v, value_scale)

    # Weights are output tokens of the priced model; price_in = 0 keeps the system prompt
    # and the input tokens free, so the cost is exactly weight * usd_per_weight.
    window = int(_SYSTEM_TOKENS + _INPUT_TOKENS + (w.max() if n else 0))
    models = [Model("priced", price_in=0.0, price_out=1e6 * scale_usd, context_window=window, batch_sizes=(1,)),
              Model("free", price_in=0.0, price_out=0.0, context_window=window, batch_sizes=(1,))]
    out = np.stack([w, np.zeros(n)], axis=1)
    utility = np.stack([v / value_scale, np.zeros(n)], axis=1)
    inst = Instance(models=models, tasks=[Task("knapsack", system_tokens=_SYSTEM_TOKENS)],
                    query_task=np.zeros(n, dtype=np.int64), input_tokens=np.full(n, _INPUT_TOKENS, float),
                    output_tokens=out, utility=utility)
    return KnapsackReduction(instance=inst, budget_usd=cap * scale_usd, values=_readonly(v),
                             weights=_readonly(w), capacity=cap, value_scale=value_scale,
                             usd_per_weight=scale_usd)


# ---------------------------------------------------------------------------------- MCKP
@dataclass(frozen=True, eq=False)
class MultipleChoiceKnapsack:
    """A multiple-choice knapsack problem in dense form.

    Choose exactly one valid item per class, total weight at most ``capacity``, maximum
    total profit.

    Attributes
    ----------
    profit : ndarray, shape (m, R), float64
        Profit of item ``r`` of class ``h`` (0 where not valid).
    weight : ndarray, shape (m, R), float64
        Weight of item ``r`` of class ``h`` (``inf`` where not valid).
    valid : ndarray, shape (m, R), bool
        Which item slots exist; every class has at least one.
    capacity : float
        ``inf`` when there is no capacity (an unconstrained MCKP).

    Notes
    -----
    :func:`rwb_to_mckp` returns one with the RwB option index as item index, so that a
    solution (item per class) *is* an option array.
    """

    profit: np.ndarray
    weight: np.ndarray
    valid: np.ndarray
    capacity: float

    def __post_init__(self):
        p = np.array(self.profit, dtype=np.float64, copy=True)
        w = np.array(self.weight, dtype=np.float64, copy=True)
        ok = np.array(self.valid, dtype=bool, copy=True)
        if p.ndim != 2 or w.shape != p.shape or ok.shape != p.shape:
            raise InstanceError("profit", f"profit, weight and valid must share one 2-D shape, got "
                                          f"{p.shape}, {w.shape}, {ok.shape}")
        if p.shape[0] and not ok.any(axis=1).all():
            h = int(np.argmin(ok.any(axis=1)))
            raise InstanceError(f"valid[{h}]", "every class needs at least one item")
        bad = ok & ~(np.isfinite(p) & np.isfinite(w))
        if bad.any():
            h, r = (int(x) for x in np.argwhere(bad)[0])
            raise InstanceError(f"weight[{h}, {r}]", "profit and weight of a valid item must be finite")
        p[~ok] = 0.0
        w[~ok] = np.inf
        for name, arr in (("profit", p), ("weight", w), ("valid", ok)):
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        c = float(self.capacity)
        if math.isnan(c):
            raise InstanceError("capacity", "must not be NaN")
        object.__setattr__(self, "capacity", c)

    @classmethod
    def from_lists(cls, profits: Sequence[Sequence[float]], weights: Sequence[Sequence[float]],
                   capacity: float) -> "MultipleChoiceKnapsack":
        """Build from ragged per-class lists (class ``h`` has ``len(profits[h])`` items)."""
        if len(profits) != len(weights):
            raise InstanceError("weights", f"must have one list per class ({len(profits)}), got {len(weights)}")
        if not len(profits):
            raise InstanceError("profits", "must hold at least one class")
        R = max(len(p) for p in profits)
        m = len(profits)
        p = np.zeros((m, R))
        w = np.full((m, R), np.inf)
        ok = np.zeros((m, R), dtype=bool)
        for h, (ph, wh) in enumerate(zip(profits, weights)):
            if len(ph) != len(wh):
                raise InstanceError(f"weights[{h}]", f"must have {len(ph)} items like profits[{h}], got {len(wh)}")
            if not len(ph):
                raise InstanceError(f"profits[{h}]", "every class needs at least one item")
            p[h, :len(ph)] = _value_vector(ph, f"profits[{h}]")
            w[h, :len(wh)] = _value_vector(wh, f"weights[{h}]")
            ok[h, :len(ph)] = True
        return cls(p, w, ok, float(capacity))

    @property
    def n_classes(self) -> int:
        return int(self.profit.shape[0])

    def _choice(self, choice) -> np.ndarray:
        c = np.asarray(choice, dtype=np.int64)
        if c.shape != (self.n_classes,):
            raise InstanceError("choice", f"must have shape ({self.n_classes},), got {c.shape}")
        bad = (c < 0) | (c >= self.profit.shape[1])
        if not bad.any():
            bad = ~self.valid[np.arange(self.n_classes), c]
        if bad.any():
            h = int(np.argmax(bad))
            raise InstanceError(f"choice[{h}]", f"item {int(c[h])} is not an item of class {h}")
        return c

    def profit_of(self, choice) -> float:
        """Total profit of one item per class."""
        c = self._choice(choice)
        return float(self.profit[np.arange(self.n_classes), c].sum())

    def weight_of(self, choice) -> float:
        """Total weight of one item per class."""
        c = self._choice(choice)
        return float(self.weight[np.arange(self.n_classes), c].sum())

    def lp_relaxation(self) -> tuple[float, np.ndarray]:
        """Optimum of the LP relaxation by the greedy walk along each class's hull.

        Returns
        -------
        value : float
            Optimal LP value; ``-inf`` if even the lightest items exceed the capacity.
        x : ndarray, shape (m, R)
            An optimal fractional solution (rows sum to 1, at most two nonzeros per row and
            at most one fractional row); all zeros when infeasible.

        Notes
        -----
        Sinha & Zoltners (1979): start every class at its lightest item (most profitable
        among equally light ones); the LP-optimal upgrades are the edges of each class's
        upper convex hull in the (weight, profit) plane, taken in order of decreasing slope
        across all classes until the capacity is spent, the last one fractionally.
        Dominated and non-hull items never enter. O(N log N) for N valid items.

        References
        ----------
        .. [1] Sinha & Zoltners (1979), Theorems 1-2.
        .. [2] Kellerer, Pferschy & Pisinger (2004), section 11.2.
        """
        m, R = self.profit.shape
        x = np.zeros((m, R))
        base_choice = np.empty(m, dtype=np.int64)
        edges = []          # (slope, dw, dp, class, from item, to item)
        for h in range(m):
            items = np.flatnonzero(self.valid[h])
            # Lightest first; among equal weights the most profitable first.
            order = items[np.lexsort((-self.profit[h, items], self.weight[h, items]))]
            hull = []
            for r in order:
                wr, pr = self.weight[h, r], self.profit[h, r]
                if hull and wr == self.weight[h, hull[-1]]:
                    continue                           # an equally light, less profitable item
                if hull and pr <= self.profit[h, hull[-1]]:
                    continue                           # heavier and no more profitable: dominated
                while len(hull) >= 2:
                    a, b = hull[-2], hull[-1]
                    # b leaves the upper hull if the slope a->b is not above the slope b->r.
                    lhs = (self.profit[h, b] - self.profit[h, a]) * (wr - self.weight[h, b])
                    rhs = (pr - self.profit[h, b]) * (self.weight[h, b] - self.weight[h, a])
                    if lhs <= rhs:
                        hull.pop()
                    else:
                        break
                hull.append(int(r))
            base_choice[h] = hull[0]
            for a, b in zip(hull[:-1], hull[1:]):
                dw = self.weight[h, b] - self.weight[h, a]
                dp = self.profit[h, b] - self.profit[h, a]
                edges.append((dp / dw, dw, dp, h, a, b))
        rows = np.arange(m)
        base_w = float(self.weight[rows, base_choice].sum())
        # The same relative tolerance as the front door's feasibility test: a budget equal
        # to the lightest plan's cost must not fail on the order of a float sum.
        if base_w > self.capacity * (1 + 1e-12):
            return -math.inf, x
        x[rows, base_choice] = 1.0
        value = float(self.profit[rows, base_choice].sum())
        room = max(self.capacity - base_w, 0.0)
        # Within a class the hull slopes decrease, so a stable sort keeps each class's
        # edges in hull order and the walk never takes an edge before its predecessor.
        edges.sort(key=lambda e: -e[0])
        for slope, dw, dp, h, a, b in edges:
            if room <= 0:
                break
            frac = min(1.0, room / dw)
            x[h, a] -= frac
            x[h, b] += frac
            value += frac * dp
            room -= frac * dw
        return value, x


@dataclass(frozen=True, eq=False)
class MCKPReduction:
    """An MCKP reduced to RwB; unpacks as ``(instance, budget_usd, decode)``.

    Attributes
    ----------
    instance : Instance
        One query per class; model ``k`` (batch size 1) is item position ``k``, so option
        ``k`` of query ``h`` is item ``k`` of class ``h`` (inadmissible where the class has
        fewer items).
    budget_usd : float
        ``capacity * usd_per_weight``, exactly.
    mckp : MultipleChoiceKnapsack
        The source problem.
    value_scale : float
        Utilities are ``profit / value_scale`` (by default the largest profit, or 1).
    usd_per_weight : float
    """

    instance: Instance
    budget_usd: float
    mckp: MultipleChoiceKnapsack
    value_scale: float
    usd_per_weight: float

    def __iter__(self) -> Iterator:
        return iter((self.instance, self.budget_usd, self.decode))

    def decode(self, plan_or_option) -> np.ndarray:
        """Item chosen in every class by an RwB plan (the option index), shape (m,)."""
        return _option_of(self.instance, plan_or_option).copy()

    def encode(self, choice) -> np.ndarray:
        """Option array of an MCKP solution (item per class): the identity, validated."""
        return self.mckp._choice(choice).copy()


def mckp_to_rwb(profits: Sequence[Sequence[float]], weights: Sequence[Sequence[int]], capacity: int, *,
                usd_per_weight: float = 1.0, value_scale: str | float = "pow2") -> MCKPReduction:
    """Reduce a multiple-choice knapsack problem to RwB.

    Class ``h`` becomes query ``h`` of one task; item position ``k`` becomes model
    ``item{k}`` with batch size 1 and ``price_out = 1e6 * usd_per_weight``; item ``(h, k)``
    becomes query ``h``'s expected output of ``weights[h][k]`` tokens on that model, with
    utility ``profits[h][k] / value_scale``. Positions a class does not have are made
    inadmissible by an output longer than the model's context window. A plan within the
    budget ``capacity * usd_per_weight`` is exactly a choice of one item per class within
    the capacity, with utility equal to its profit divided by ``value_scale``.

    Parameters
    ----------
    profits : sequence of sequences of float
        ``profits[h][k] >= 0``: profit of item k of class h; every class non-empty.
    weights : sequence of sequences of int
        Non-negative integer weights, shaped like ``profits``.
    capacity : int
        Non-negative integer.
    usd_per_weight : float, default 1.0
        A power of two (exact costs).
    value_scale : {"pow2", "max"} or float, default "pow2"
        Divisor of the profits, as in :func:`knapsack_to_rwb`.

    Returns
    -------
    MCKPReduction

    Raises
    ------
    InstanceError
        Ragged or empty classes, negative profits, non-integer weights (named by class and
        index), weights too large for exact costs.

    Notes
    -----
    O(m R) for m classes of at most R items. With batch size 1 the amortized and the exact
    costs coincide, so the RwB instance is the MCKP itself; together with
    :func:`rwb_to_mckp` this shows RwB with batch size 1 and MCKP are the same problem.

    References
    ----------
    .. [1] Kellerer, Pferschy & Pisinger (2004), ch. 11.
    .. [2] Sinha & Zoltners (1979).

    Examples
    --------
    >>> import robatch_opt as ro
    >>> red = ro.reductions.mckp_to_rwb([[1, 4], [2, 3, 5]], [[0, 3], [1, 2, 4]], 5)
    >>> red.instance.options
    ((0, 1), (1, 1), (2, 1))
    >>> ro.evaluate(red.instance, red.encode([1, 1])).cost_usd       # weights 3 + 2
    5.0
    """
    if len(profits) != len(weights):
        raise InstanceError("weights", f"must have one list per class ({len(profits)}), got {len(weights)}")
    for h, wh in enumerate(weights):
        _int_vector(wh, f"weights[{h}]")
    mckp = MultipleChoiceKnapsack.from_lists(profits, weights, _capacity(capacity))
    scale_usd = _power_of_two(usd_per_weight, "usd_per_weight")
    m, R = mckp.profit.shape
    w = np.where(mckp.valid, mckp.weight, 0.0)
    _check_exact(float(w.max(axis=1).sum()), mckp.capacity)
    value_scale = _value_scale(mckp.profit[mckp.valid], value_scale)

    base = _SYSTEM_TOKENS + _INPUT_TOKENS
    window = (base + np.where(mckp.valid, w, -np.inf).max(axis=0)).astype(np.int64)   # (R,)
    # A missing item gets an output as long as the window itself: with the system prompt
    # and the input token it can never fit, so the option is inadmissible for that query.
    out = np.where(mckp.valid, w, window[None, :].astype(np.float64))
    models = [Model(f"item{k}", price_in=0.0, price_out=1e6 * scale_usd, context_window=int(window[k]),
                    batch_sizes=(1,)) for k in range(R)]
    inst = Instance(models=models, tasks=[Task("mckp", system_tokens=_SYSTEM_TOKENS)],
                    query_task=np.zeros(m, dtype=np.int64), input_tokens=np.full(m, _INPUT_TOKENS, float),
                    output_tokens=out, utility=mckp.profit / value_scale)
    return MCKPReduction(instance=inst, budget_usd=mckp.capacity * scale_usd, mckp=mckp,
                         value_scale=value_scale, usd_per_weight=scale_usd)


def rwb_to_mckp(instance: Instance, budget_usd: float = math.inf) -> MultipleChoiceKnapsack:
    """The amortized RwB problem as a multiple-choice knapsack.

    Every query is a class; every admissible option ``j`` is item ``j`` of that class with
    profit ``u[i, j]`` and weight the amortized cost ``c[i, j] = f[t(i), k_j] / b_j +
    v[i, k_j]`` (USD); the capacity is the budget. An MCKP solution is therefore an option
    array of the instance, and conversely.

    Parameters
    ----------
    instance : Instance
    budget_usd : float, default inf

    Returns
    -------
    MultipleChoiceKnapsack

    Notes
    -----
    Since the exact cost of every assignment is at least its amortized cost, every plan
    within the budget is feasible for this MCKP; hence the MCKP optimum, and its LP
    relaxation (:meth:`MultipleChoiceKnapsack.lp_relaxation`), bound the RwB optimum from
    above. With batch sizes all 1 the two problems coincide. O(n J).

    References
    ----------
    .. [1] Sinha & Zoltners (1979).
    .. [2] Xu, Xie, Zhao (2026), RoBatch (the amortized, per-query view of RwB).

    Examples
    --------
    >>> import robatch_opt as ro
    >>> red = ro.reductions.mckp_to_rwb([[1, 4], [2, 3, 5]], [[0, 3], [1, 2, 4]], 5)
    >>> back = ro.reductions.rwb_to_mckp(red.instance, red.budget_usd)
    >>> back.valid.tolist(), back.capacity
    ([[True, True, False], [True, True, True]], 5.0)
    """
    from .options import compile_options

    check_instance(instance, "instance")
    b = float(budget_usd)
    if math.isnan(b) or b < 0:
        raise InstanceError("budget", f"must be >= 0 USD, got {budget_usd!r}")
    table = compile_options(instance)
    return MultipleChoiceKnapsack(profit=table.utility, weight=table.cost, valid=table.admissible, capacity=b)
