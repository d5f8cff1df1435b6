"""The one solver-independent grader of plans: exact cost, utility, concrete calls."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np

from ._validate import assignment_errors, not_an_instance, numeric_array
from .errors import AssignmentError
from .instance import Instance
from .options import compile_options

__all__ = ["Call", "CallTable", "CostBreakdown", "Evaluation", "evaluate", "validate_assignment",
           "pack_calls", "BUDGET_RTOL", "within_budget", "meets_target"]

#: A plan fits a budget when its exact cost is at most ``budget * (1 + BUDGET_RTOL)``; it meets
#: a utility target when its utility is at least ``target - BUDGET_RTOL * max(1, target)``.
#: Costs are sums of many float terms whose order differs between solvers, so the package
#: needs one definition with room for the last bits; every solver, the front door and the
#: tests' brute force use this one.
BUDGET_RTOL = 1e-12


def within_budget(cost_usd: float, budget_usd: float) -> bool:
    """Whether an exact cost fits a budget (the package's one definition, see BUDGET_RTOL)."""
    return cost_usd <= budget_usd * (1.0 + BUDGET_RTOL)


def meets_target(utility: float, target: float) -> bool:
    """Whether a total utility meets a quality target (the package's one definition)."""
    return utility >= target - BUDGET_RTOL * max(1.0, abs(target))


def float_sum_rtol(n_terms: int) -> float:
    """How far (relative) a float sum of ``n_terms`` non-negative terms can be from the exact
    sum: the bound by which a sum used as a claim or a bound is widened."""
    return 2.0 * n_terms * float(np.finfo(np.float64).eps)


class Call(NamedTuple):
    """One LLM call: ``len(query_ids) <= batch_size`` queries of one task on one model."""

    task: int
    model: int
    batch_size: int
    query_ids: np.ndarray


@dataclass(frozen=True, eq=False)
class CallTable:
    """All calls of a plan, stored as arrays (compact for millions of queries).

    Attributes
    ----------
    task, model, batch_size : ndarray, shape (m,)
        Task, model and nominal batch size of each call.
    offsets : ndarray, shape (m + 1,)
        Call ``c`` holds ``query_ids[offsets[c]:offsets[c + 1]]``.
    query_ids : ndarray, shape (n,)
        Query indices, grouped by call.

    Iterating yields :class:`Call` tuples.
    """

    task: np.ndarray
    model: np.ndarray
    batch_size: np.ndarray
    offsets: np.ndarray
    query_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.task.shape[0])

    def __getitem__(self, c: int) -> Call:
        if not -len(self) <= c < len(self):
            raise IndexError(f"call {c} out of range for {len(self)} calls")
        c %= len(self)
        return Call(int(self.task[c]), int(self.model[c]), int(self.batch_size[c]),
                    self.query_ids[self.offsets[c]:self.offsets[c + 1]])

    def __iter__(self) -> Iterator[Call]:
        for c in range(len(self)):
            yield self[c]

    @property
    def sizes(self) -> np.ndarray:
        """Number of queries in each call, shape (m,)."""
        return np.diff(self.offsets)


@dataclass(frozen=True)
class CostBreakdown:
    """Exact cost split by what is paid for, all in USD."""

    system_usd: float
    input_usd: float
    output_usd: float

    @property
    def total_usd(self) -> float:
        return self.system_usd + self.input_usd + self.output_usd


def validate_assignment(inst: Instance, option) -> np.ndarray:
    """Check an option-per-query array; return it as a read-only int64 array.

    Raises
    ------
    TypeError
        ``inst`` is not an :class:`Instance` (e.g. a chunked ``.zarr`` store).
    AssignmentError
        Wrong shape; an entry that is not an integer (a string, a boolean, null, ``0.7``);
        an out-of-range option; an option that is not admissible for its query. The message
        names the first offending query.
    """
    if not isinstance(inst, Instance):
        # A chunked store (.zarr) has no in-memory arrays (robatch_opt.distributed.solve
        # grades its plans chunk by chunk; .to_instance() reads it whole).
        raise TypeError(f"`instance`: must be a robatch_opt Instance, {not_an_instance(inst)}")
    from .plan import Plan
    if isinstance(option, Plan):
        # A plan grades as its assignment (whether it was made for this instance is what the
        # checks below find out: shape, range, admissibility).
        option = option.option
    # Strings, booleans, null and fractional indices are refused (an integral float is fine).
    arr = numeric_array(option, "option", assignment_errors, integer=True)
    n, J = inst.n_queries, inst.n_options
    if arr.shape != (n,):
        raise AssignmentError("option", f"must have shape ({n},), got {arr.shape}")
    arr = np.array(arr, dtype=np.int64, copy=True)
    bad = (arr < 0) | (arr >= J)
    if bad.any():
        i = int(np.argmax(bad))
        raise AssignmentError(f"option[{i}]", f"option {int(arr[i])} is out of range for {J} options")
    # Flat gathers (row * J + option): the same values as arr2d[np.arange(n), arr], in a
    # fraction of the time at n = 10^6.
    ok = inst.admissible.ravel().take(_flat_index(arr, J))
    if not ok.all():
        i = int(np.argmin(ok))
        k, b = inst.options[arr[i]]
        raise AssignmentError(f"option[{i}]", f"option {int(arr[i])} = ({inst.models[k].name}, b={b}) "
                                              f"does not fit query {i} in the context window")
    arr.flags.writeable = False
    return arr


def sum_of_products(a, b) -> float:
    """``sum_i a[i] * b[i]`` as the grader sums money (pairwise summation of the products).

    Not ``np.dot``: on a long vector it runs OpenBLAS's threads, which then spin for a while
    and take the cores from the next parallel kernels (the greedy's hulls at 10^6 x 16 took
    0.092 s instead of 0.053 s right after a grade; ``benchmarks`` solve repeatedly).
    :mod:`robatch_opt.special_case` sums its costs with this function too, so that its
    bounds are on the grader's own numbers.
    """
    return float(np.multiply(a, b).sum())


def _flat_index(option: np.ndarray, J: int) -> np.ndarray:
    """``i * J + option[i]``: where query i's option sits in a C-contiguous (n, J) array."""
    idx = np.arange(option.shape[0], dtype=np.int64)
    idx *= J
    idx += option
    return idx


def pack_calls(inst: Instance, option: np.ndarray) -> CallTable:
    """Pack each group's queries into calls: full calls first, then one partial call.

    Queries inside a group keep ascending index order; groups are ordered by
    ``(task, option)``. O(n log n) for the stable sort.
    """
    J = inst.n_options
    group = inst.query_task * J + option
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    n = order.shape[0]
    if n == 0:
        e = np.zeros(0, np.int64)
        return CallTable(e, e, e, np.zeros(1, np.int64), e)
    # Position of each query inside its group.
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.arange(n) - group_start
    b = inst.option_batch[g_sorted % J]
    new_call = rank % b == 0
    call_start = np.flatnonzero(new_call)
    g_call = g_sorted[call_start]
    j_call = g_call % J
    return CallTable(
        task=g_call // J,
        model=inst.option_model[j_call].copy(),
        batch_size=inst.option_batch[j_call].copy(),
        offsets=np.r_[call_start, n].astype(np.int64),
        query_ids=order.astype(np.int64),
    )


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What :func:`evaluate` measured of one assignment.

    Attributes
    ----------
    option : ndarray, shape (n,)
        The graded assignment.
    cost_usd : float
        Exact cost: ``ceil(n_g / b)`` calls per group.
    utility, mean_utility : float
        ``sum_i u[i, j(i)]`` (nominal batch size, also for partial calls) and its mean.
    n_calls : int
    breakdown : CostBreakdown
    amortized_cost_usd : float
        ``sum_i c[i, j(i)]``; ``cost_usd - amortized_cost_usd`` is the price of partial calls.
    group_counts : ndarray, shape (T * J,)
        Queries per group ``g = t * J + j``.
    """

    option: np.ndarray
    cost_usd: float
    utility: float
    mean_utility: float
    n_calls: int
    breakdown: CostBreakdown
    amortized_cost_usd: float
    group_counts: np.ndarray
    _inst: Instance

    @functools.cached_property
    def calls(self) -> CallTable:
        """Concrete calls (computed on first access)."""
        return pack_calls(self._inst, self.option)

    def model_usage(self) -> np.ndarray:
        """Queries served by each model, shape (K,)."""
        return np.bincount(self._inst.option_model[self.option], minlength=self._inst.n_models)


def evaluate(inst: Instance, option) -> Evaluation:
    """Grade an assignment exactly, independently of any solver.

    Parameters
    ----------
    inst : Instance
    option : array_like of int, shape (n,), or Plan
        Option index (into ``inst.options``) of every query; a :class:`~robatch_opt.Plan`
        is graded by its ``option``.

    Returns
    -------
    Evaluation

    Raises
    ------
    AssignmentError
        If the assignment is malformed or uses an inadmissible option.

    Notes
    -----
    O(n) apart from call packing, which is done lazily on ``Evaluation.calls``.

    Examples
    --------
    >>> import robatch_opt as ro
    >>> inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1, 2))],
    ...                    tasks=[ro.Task("t", 1000)], query_task=[0, 0, 0],
    ...                    input_tokens=[100, 100, 100], output_tokens=[10, 10, 10],
    ...                    utility=[[0.9, 0.8]] * 3)
    >>> ev = ro.evaluate(inst, [1, 1, 1])      # two calls of batch size 2: one full, one partial
    >>> ev.n_calls, round(ev.cost_usd, 6), round(ev.utility, 6)
    (2, 0.00236, 2.4)
    """
    opt = validate_assignment(inst, option)
    table = compile_options(inst)
    J, T = inst.n_options, inst.n_tasks
    n = inst.n_queries
    counts = np.bincount(inst.query_task * J + opt, minlength=T * J)
    calls = -(-counts // table.group_batch)                      # ceil for non-negative ints
    system_usd = sum_of_products(calls, table.group_fixed_cost)
    k = inst.option_model[opt]
    input_usd = sum_of_products(inst.input_tokens, inst.price_in[k]) / 1e6
    out_tokens = np.ascontiguousarray(inst.output_tokens).ravel().take(_flat_index(k, inst.n_models))
    output_usd = sum_of_products(out_tokens, inst.price_out[k]) / 1e6
    utility = float(table.utility.ravel().take(_flat_index(opt, J)).sum())
    # sum_i c[i, j(i)] without gathering the (n, J) costs (a cache line per query): each
    # query pays its tokens and 1/b of its call, so the group counts give the second part.
    seats = sum_of_products(counts, table.group_fixed_cost / table.group_batch)
    amortized = seats + input_usd + output_usd
    counts.flags.writeable = False
    return Evaluation(
        option=opt,
        cost_usd=system_usd + input_usd + output_usd,
        utility=utility,
        mean_utility=utility / n if n else 0.0,
        n_calls=int(calls.sum()),
        breakdown=CostBreakdown(system_usd, input_usd, output_usd),
        amortized_cost_usd=amortized,
        group_counts=counts,
        _inst=inst,
    )
