"""Numba kernel of the batching router's window planner (its inner loop).

Private: contiguous numeric arrays in, an option per request out. The Python wrapper
(:mod:`robatch_opt.online.window`) validates and builds the inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _opens(count, b):
    """1.0 if adding one member to a group of ``count`` opens a new call of size ``b``."""
    return 1.0 if count % b == 0 else 0.0


@njit(cache=True)
def _closes(count, b):
    """1.0 if removing one member from a group of ``count`` (> 0) closes a call."""
    return 1.0 if (count - 1) % b == 0 else 0.0


@njit(cache=True)
def window_objective(score, call_value, batch, option):
    """``sum_i score[i, x_i] - sum_j ceil(n_j / b_j) * call_value[j]`` (to maximise)."""
    m, J = score.shape
    count = np.zeros(J, dtype=np.int64)
    total = 0.0
    for i in range(m):
        total += score[i, option[i]]
        count[option[i]] += 1
    for j in range(J):
        total -= ((count[j] + batch[j] - 1) // batch[j]) * call_value[j]
    return total


@njit(cache=True)
def plan_window(score, call_value, batch, max_rounds):
    """Maximise ``sum_i score[i, x_i] - sum_j ceil(n_j / b_j) * call_value[j]``.

    Parameters
    ----------
    score : float64 (m, J)
        Per-request value of each option; ``-inf`` where not allowed (every row has a finite
        entry).
    call_value : float64 (J,)
        Value lost per call of option ``j`` (``V`` times one call's system-prompt cost).
    batch : int64 (J,)
        Seats per call.
    max_rounds : int
        Rounds of improving moves.

    Returns
    -------
    int64 (m,)
        Option per request.

    Notes
    -----
    Start: every request on ``argmax_j score - call_value / b`` (the amortized Lagrangian
    choice, what the greedy's hull walk takes at price ``V / Q``). Then, per round, (1) single
    moves whose exact change (a call opened or closed) is computed in O(1), best move per
    request, and (2) group moves: every member of one option moved to its best other
    option, kept if the exact objective rises. O(rounds * m * J * (1 + J)); each accepted
    move strictly raises the objective, so it terminates. Last, one pass moves a request to
    an option with fewer seats wherever that loses nothing (ties go to the smaller batch).
    """
    m, J = score.shape
    x = np.empty(m, dtype=np.int64)
    count = np.zeros(J, dtype=np.int64)
    for i in range(m):
        best, bj = -np.inf, -1
        for j in range(J):
            s = score[i, j] - call_value[j] / batch[j]
            if s > best:
                best, bj = s, j
        x[i] = bj
        count[bj] += 1
    scale = 1e-12
    for i in range(m):
        for j in range(J):
            if np.isfinite(score[i, j]):
                scale = max(scale, 1e-12 * abs(score[i, j]))
    for _ in range(max_rounds):
        moved = False
        # (1) single moves
        for i in range(m):
            cur = x[i]
            keep = score[i, cur] - call_value[cur] * _closes(count[cur], batch[cur])
            best, bj = scale, -1
            for j in range(J):
                if j == cur or not np.isfinite(score[i, j]):
                    continue
                gain = score[i, j] - call_value[j] * _opens(count[j], batch[j]) - keep
                if gain > best:
                    best, bj = gain, j
            if bj >= 0:
                count[cur] -= 1
                count[bj] += 1
                x[i] = bj
                moved = True
        # (2) group moves: empty option g into the members' best alternatives
        for g in range(J):
            if count[g] == 0:
                continue
            before = window_objective(score, call_value, batch, x)
            saved = x.copy()
            saved_count = count.copy()
            for i in range(m):
                if x[i] != g:
                    continue
                best, bj = -np.inf, -1
                for j in range(J):
                    if j == g or not np.isfinite(score[i, j]):
                        continue
                    gain = score[i, j] - call_value[j] * _opens(count[j], batch[j])
                    if gain > best:
                        best, bj = gain, j
                if bj < 0:
                    break
                count[g] -= 1
                count[bj] += 1
                x[i] = bj
            if count[g] == 0 and window_objective(score, call_value, batch, x) > before + scale:
                moved = True
            else:
                x[:] = saved
                count[:] = saved_count
        if not moved:
            break
    # Ties to the smaller batch: a request whose objective is the same on an option with
    # fewer seats (a lone request on b = 8 pays the call of b = 1 when the queue is 0, but
    # its answer keeps less of its quality) moves there. Only moves that lose nothing.
    for i in range(m):
        cur = x[i]
        keep = score[i, cur] - call_value[cur] * _closes(count[cur], batch[cur])
        bj = -1
        for j in range(J):
            if batch[j] >= batch[cur] or not np.isfinite(score[i, j]):
                continue
            if score[i, j] - call_value[j] * _opens(count[j], batch[j]) - keep >= 0.0:
                if bj < 0 or batch[j] < batch[bj]:
                    bj = j
        if bj >= 0:
            count[cur] -= 1
            count[bj] += 1
            x[i] = bj
    return x


@njit(cache=True)
def mess_choice(indices, values, W, bias, fitted, prior, fixed_usd, input_usd, out_tokens, price_out,
                V, Q, alpha, allowed):
    """MESS+'s decision for one request: ``argmin_k V cost_k + Q (alpha - p_k)`` over allowed ``k``.

    ``p_k`` is the online logistic model's probability for the sparse feature row
    (``indices``, ``values``): ``sigmoid(values . W[indices, k] + bias[k])``, or ``prior[k]``
    where model ``k`` is not fitted; ``cost_k = fixed_usd[k] + input_usd[k] +
    out_tokens[k] * price_out[k]``. One pass over the row and the K models instead of ~10
    small NumPy calls (each a few microseconds). Returns -1 if no model is allowed.
    """
    K = W.shape[1]
    best_k = -1
    best = np.inf
    for k in range(K):
        if not allowed[k]:
            continue
        if fitted[k]:
            z = bias[k]
            for a in range(indices.shape[0]):
                z += values[a] * W[indices[a], k]
            p = 0.5 * (1.0 + np.tanh(0.5 * z))
        else:
            p = prior[k]
        s = V * (fixed_usd[k] + input_usd[k] + out_tokens[k] * price_out[k]) + Q * (alpha - p)
        if s < best:
            best = s
            best_k = k
    return best_k
