"""The numeric core every solver consumes: an instance compiled into dense arrays."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .instance import Instance

__all__ = ["OptionTable", "compile_options", "compile_options_one_pass"]


@dataclass(frozen=True, eq=False)
class OptionTable:
    """Dense per-query x per-option arrays of an instance (all read-only, C-contiguous).

    Attributes
    ----------
    cost : ndarray, shape (n, J), float64
        Amortized cost ``c[i, j] = f[t(i), k_j] / b_j + v[i, k_j]`` in USD; ``inf`` where the
        option is not admissible.
    utility : ndarray, shape (n, J), float64
        ``u[i, j]`` in [0, 1].
    admissible : ndarray, shape (n, J), bool
    option_model, option_batch : ndarray, shape (J,), int64
        Model index and batch size of every option.
    query_task : ndarray, shape (n,), int64
    fixed_cost : ndarray, shape (T, K), float64
        ``f[t, k]``: USD of one call's system prompt.
    variable_cost : ndarray, shape (n, K), float64
        ``v[i, k]``: USD of query i's own tokens on model k.

    Notes
    -----
    A *group* is ``g = t * J + j`` (task t on option j); ``group_fixed_cost[g]`` and
    ``group_batch[g]`` give its call price and capacity. The exact cost of an assignment is
    ``sum_g ceil(n_g / b_g) * f_g + sum_i v[i, k(i)]`` and
    ``sum_i c[i, j(i)] <= exact < sum_i c[i, j(i)] + sum_{g used} f_g``.
    """

    cost: np.ndarray
    utility: np.ndarray
    admissible: np.ndarray
    option_model: np.ndarray
    option_batch: np.ndarray
    query_task: np.ndarray
    fixed_cost: np.ndarray
    variable_cost: np.ndarray

    @property
    def n_queries(self) -> int:
        return int(self.cost.shape[0])

    @property
    def n_options(self) -> int:
        return int(self.cost.shape[1])

    @property
    def n_tasks(self) -> int:
        return int(self.fixed_cost.shape[0])

    @functools.cached_property
    def group_fixed_cost(self) -> np.ndarray:
        """USD per call of group ``g = t * J + j``, shape (T * J,)."""
        a = np.ascontiguousarray(self.fixed_cost[:, self.option_model].ravel())
        a.flags.writeable = False
        return a

    @functools.cached_property
    def group_batch(self) -> np.ndarray:
        """Batch size of group ``g = t * J + j``, shape (T * J,)."""
        a = np.ascontiguousarray(np.tile(self.option_batch, self.n_tasks))
        a.flags.writeable = False
        return a

    @functools.cached_property
    def cheapest_option(self) -> np.ndarray:
        """Per query, the admissible option of least amortized cost (ties: higher utility)."""
        # lexsort's last key is primary: cost ascending, then utility descending.
        masked_u = np.where(self.admissible, self.utility, -1.0)
        best = np.argmin(self.cost, axis=1)
        tie = self.cost == self.cost[np.arange(self.n_queries), best][:, None]
        cand = np.where(tie, masked_u, -2.0)
        a = np.argmax(cand, axis=1).astype(np.int64)
        a.flags.writeable = False
        return a

    @functools.cached_property
    def most_useful_option(self) -> np.ndarray:
        """Per query, the admissible option of greatest utility (ties: lower amortized cost)."""
        masked_u = np.where(self.admissible, self.utility, -1.0)
        top = masked_u.max(axis=1)
        cand = np.where(masked_u == top[:, None], self.cost, np.inf)
        a = np.argmin(cand, axis=1).astype(np.int64)
        a.flags.writeable = False
        return a

    @functools.cached_property
    def min_cost_usd(self) -> float:
        """Sum of each query's least amortized cost: a lower bound on every plan's exact cost."""
        return float(self.cost[np.arange(self.n_queries), self.cheapest_option].sum())


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    if a.flags.writeable and a.base is not None:
        a = a.copy()
    a.flags.writeable = False
    return a


def compile_options(inst: Instance) -> OptionTable:
    """Compile an instance into its :class:`OptionTable` (cached on the instance).

    Notes
    -----
    O(n J) time and memory; the result is cached, so repeated solves of one instance
    compile once.
    """
    cached = inst.__dict__.get("_option_table")
    if cached is not None:
        return cached
    om, ob = inst.option_model, inst.option_batch
    fixed = inst.fixed_cost_usd                                   # (T, K)
    var = inst.variable_cost_usd                                  # (n, K)
    cost = fixed[inst.query_task][:, om] / ob[None, :] + var[:, om]
    cost[~inst.admissible] = np.inf
    table = OptionTable(
        cost=_readonly(cost, np.float64),
        utility=_readonly(inst.utility, np.float64),
        admissible=_readonly(inst.admissible, np.bool_),
        option_model=_readonly(om, np.int64),
        option_batch=_readonly(ob, np.int64),
        query_task=_readonly(inst.query_task, np.int64),
        fixed_cost=_readonly(fixed, np.float64),
        variable_cost=_readonly(var, np.float64),
    )
    # Instance is frozen; caching through __dict__ is what functools.cached_property does too.
    inst.__dict__["_option_table"] = table
    return table


def compile_options_one_pass(inst: Instance) -> OptionTable:
    """:func:`compile_options` in one compiled pass (same arrays, bit for bit; cached alike).

    Also fills the instance's cached ``admissible`` and ``variable_cost_usd`` and the table's
    ``cheapest_option``, which the NumPy path computes in separate whole-array passes. Used
    where a table is rebuilt many times, e.g. a chunk in every pass of the distributed
    greedy; the first call compiles a Numba kernel (cached on disk afterwards).
    """
    cached = inst.__dict__.get("_option_table")
    if cached is not None:
        return cached
    from .kernels.table_kernels import _option_table
    om, ob = inst.option_model, inst.option_batch
    n, J, K = inst.n_queries, inst.n_options, inst.n_models
    window = np.array([m.context_window for m in inst.models], dtype=np.float64)
    cost = np.empty((n, J), np.float64)
    admissible = np.empty((n, J), np.bool_)
    var = np.empty((n, K), np.float64)
    cheapest = np.empty(n, np.int64)
    fixed = inst.fixed_cost_usd
    _option_table(_readonly(inst.query_task, np.int64), _readonly(inst.input_tokens, np.float64),
                  _readonly(inst.output_tokens, np.float64), _readonly(inst.utility, np.float64),
                  _readonly(inst.system_tokens, np.float64), _readonly(fixed, np.float64),
                  _readonly(inst.price_in, np.float64), _readonly(inst.price_out, np.float64), window,
                  _readonly(om, np.int64), _readonly(ob, np.int64), cost, admissible, var, cheapest)
    for a in (cost, admissible, var, cheapest):
        a.flags.writeable = False
    # The instance's own cached properties, as the NumPy path would have computed them.
    inst.__dict__.setdefault("admissible", admissible)
    inst.__dict__.setdefault("variable_cost_usd", var)
    table = OptionTable(cost=cost, utility=_readonly(inst.utility, np.float64), admissible=admissible,
                        option_model=_readonly(om, np.int64), option_batch=_readonly(ob, np.int64),
                        query_task=_readonly(inst.query_task, np.int64), fixed_cost=_readonly(fixed, np.float64),
                        variable_cost=var)
    table.__dict__["cheapest_option"] = cheapest
    inst.__dict__["_option_table"] = table
    return table
