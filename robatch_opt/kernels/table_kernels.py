"""One pass that builds an instance's option table (cost, admissibility, cheapest option).

:func:`robatch_opt.options.compile_options` builds the same arrays with NumPy in about ten
whole-array passes (admissibility, variable cost, amortized cost, masking, argmin, ties,
argmax), each allocating an (n, J) temporary. The distributed greedy rebuilds a chunk's table
in every pass over the data, where those passes were most of a chunk task's time; this kernel
does the same arithmetic, operation for operation and in the same order, so every value is
bit-identical to the NumPy path (``tests/test_option_table_kernel.py`` checks it).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _option_table(query_task, input_tokens, output_tokens, utility, system_tokens, fixed, price_in, price_out,
                  window, option_model, option_batch, cost, admissible, var, cheapest):
    """Fill ``cost`` (n, J; inf where inadmissible), ``admissible`` (n, J), ``var`` (n, K) and
    ``cheapest`` (n,) as :func:`~robatch_opt.options.compile_options` and
    ``OptionTable.cheapest_option`` compute them.

    The expressions mirror the NumPy ones term by term (``(l p_in + o p_out) / 1e6``,
    ``f / b + v``, ``s + b (l + o) <= W``) so the floating-point results are identical; the
    cheapest option is NumPy's ``argmin`` (first least cost), then among the options of that
    exact cost the first of greatest masked utility (``-1`` when inadmissible), as
    ``np.argmax`` picks it.
    """
    n, J = cost.shape
    K = var.shape[1]
    for i in range(n):
        t = query_task[i]
        for k in range(K):
            var[i, k] = (input_tokens[i] * price_in[k] + output_tokens[i, k] * price_out[k]) / 1e6
        best = 0
        for j in range(J):
            k = option_model[j]
            b = np.float64(option_batch[j])
            need = system_tokens[t] + b * (input_tokens[i] + output_tokens[i, k])
            ok = need <= window[k]
            admissible[i, j] = ok
            c = fixed[t, k] / b + var[i, k]
            if not ok:
                c = np.inf
            cost[i, j] = c
            if c < cost[i, best]:
                best = j
        least = cost[i, best]
        pick = -1
        top = -np.inf
        for j in range(J):
            if cost[i, j] == least:
                v = utility[i, j] if admissible[i, j] else -1.0
            else:
                v = -2.0
            if pick < 0 or v > top:
                pick = j
                top = v
        cheapest[i] = pick
