"""The batching router's window problem, as a function of plain arrays (validated wrapper).

A window holds ``m`` requests of one task. Option ``j = (k, b)`` of request ``i`` is worth
``score[i, j] = Q * (p[i, k] * r_j - alpha) - V * v[i, k]`` and every call of option ``j``
costs ``call_value[j] = V * f[k]`` (one system prompt). :func:`plan_window` maximises
``sum_i score[i, x_i] - sum_j ceil(n_j / b_j) * call_value[j]``, i.e. minimises
``V * exact_cost - Q * sum_i (p_i - alpha)``.
"""

from __future__ import annotations

import numpy as np

from ..kernels import online_kernels as ok
from .errors import OnlineError

__all__ = ["plan_window", "window_objective"]


def _arrays(score, call_value, batch):
    score = np.ascontiguousarray(score, dtype=np.float64)
    call_value = np.ascontiguousarray(call_value, dtype=np.float64)
    batch = np.ascontiguousarray(batch, dtype=np.int64)
    if score.ndim != 2 or call_value.shape != (score.shape[1],) or batch.shape != (score.shape[1],):
        raise OnlineError("score", f"score (m, J), call_value (J,) and batch (J,) must agree, got "
                                   f"{score.shape}, {call_value.shape}, {batch.shape}")
    if (batch < 1).any():
        raise OnlineError("batch", "batch sizes must be >= 1")
    if np.isnan(score).any() or (score == np.inf).any():
        raise OnlineError("score", "must be finite or -inf (not allowed)")
    if not np.all(np.isfinite(call_value)) or (call_value < 0).any():
        raise OnlineError("call_value", "must be finite and >= 0")
    bad = ~np.isfinite(score).any(axis=1)
    if bad.any():
        raise OnlineError(f"score[{int(np.argmax(bad))}]", "request has no allowed option")
    return score, call_value, batch


def plan_window(score, call_value, batch, *, max_rounds: int = 8) -> np.ndarray:
    """Option per request maximising the window objective (module docstring).

    Returns
    -------
    ndarray of int64, shape (m,)

    Notes
    -----
    The amortized Lagrangian start (each request alone on ``argmax score - call_value / b``)
    followed by exact single moves and group moves (Numba,
    :func:`robatch_opt.kernels.online_kernels.plan_window`); exact when every batch size is
    1 (the problem separates). About 1 ms for 256 requests x 44 options after warm-up
    (``benchmarks/bench_online.py``).
    """
    s, c, b = _arrays(score, call_value, batch)
    return ok.plan_window(s, c, b, int(max_rounds))


def window_objective(score, call_value, batch, option) -> float:
    """``sum_i score[i, x_i] - sum_j ceil(n_j / b_j) * call_value[j]``."""
    s, c, b = _arrays(score, call_value, batch)
    return float(ok.window_objective(s, c, b, np.ascontiguousarray(option, dtype=np.int64)))
