"""Brute force in exact rational arithmetic (tests only): every plan's cost and utility as Fractions.

The instance's numbers are floats; each is converted to a :class:`fractions.Fraction` exactly
(``Fraction(float)`` is exact), and every cost and utility of every assignment is computed
with no rounding at all. The only tolerance is the package's documented one on the budget
(``robatch_opt.evaluate.BUDGET_RTOL`` = 1e-12, applied exactly):

- budget form: a plan is feasible iff ``C(x) <= budget * (1 + 1e-12)``;
- quality form: iff ``U(x) >= T - 1e-12 * max(1, |T|)`` with ``T`` the float target;
- capacity: queries per model <= ``max_queries``.

:func:`exact_table` returns every assignment with its exact cost and utility, from which a
test checks any claim a plan makes (no OPTIMAL below a feasible plan, no bound violated by
a feasible plan, no "no plan" when some plan is feasible).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

import robatch_opt as ro
from bruteforce import _all_assignments

RTOL = Fraction(1, 10 ** 12)
MILLION = Fraction(10 ** 6)


@dataclass(frozen=True)
class ExactPlans:
    """Every assignment of a tiny instance with its exact cost (USD) and utility."""

    option: np.ndarray            # (M, n)
    cost: list                    # Fraction per assignment
    utility: list                 # Fraction per assignment
    usage: np.ndarray             # (M, K) queries per model

    def feasible(self, *, budget_usd=None, target=None, max_queries=None) -> np.ndarray:
        """Mask of the assignments feasible in exact arithmetic."""
        ok = np.ones(len(self.cost), dtype=bool)
        if max_queries is not None:
            ok &= (self.usage <= np.asarray(max_queries)[None, :]).all(axis=1)
        if budget_usd is not None:
            lim = Fraction(budget_usd) * (1 + RTOL)
            ok &= np.array([c <= lim for c in self.cost], dtype=bool)
        if target is not None:
            t = Fraction(target)
            floor = t - RTOL * max(Fraction(1), abs(t))
            ok &= np.array([u >= floor for u in self.utility], dtype=bool)
        return ok


def exact_plans(inst: ro.Instance) -> ExactPlans:
    opts = _all_assignments(inst)
    T, K = inst.n_tasks, inst.n_models
    s = [Fraction(float(t.system_tokens)) for t in inst.tasks]
    p_in = [Fraction(float(m.price_in)) for m in inst.models]
    p_out = [Fraction(float(m.price_out)) for m in inst.models]
    om, ob = np.asarray(inst.option_model), np.asarray(inst.option_batch)
    l = [Fraction(float(x)) for x in np.asarray(inst.input_tokens)]
    o = np.asarray(inst.output_tokens, dtype=np.float64)
    u = np.asarray(inst.utility, dtype=np.float64)
    qt = np.asarray(inst.query_task)
    n = inst.n_queries
    var = [[(l[i] * p_in[k] + Fraction(float(o[i, k])) * p_out[k]) / MILLION for k in range(K)]
           for i in range(n)]
    fixed = [[s[t] * p_in[k] / MILLION for k in range(K)] for t in range(T)]
    uf = [[Fraction(float(u[i, j])) for j in range(inst.n_options)] for i in range(n)]
    costs, utils = [], []
    usage = np.zeros((len(opts), K), dtype=np.int64)
    for a, row in enumerate(opts.tolist()):
        groups: dict[tuple[int, int], int] = {}
        c = Fraction(0)
        ut = Fraction(0)
        for i, j in enumerate(row):
            k = int(om[j])
            c += var[i][k]
            ut += uf[i][j]
            groups[(int(qt[i]), j)] = groups.get((int(qt[i]), j), 0) + 1
            usage[a, k] += 1
        for (t, j), cnt in groups.items():
            b = int(ob[j])
            c += -(-cnt // b) * fixed[t][int(om[j])]
        costs.append(c)
        utils.append(ut)
    return ExactPlans(opts, costs, utils, usage)
