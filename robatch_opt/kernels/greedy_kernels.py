"""Numba kernels of the greedy Pareto-frontier upgrader (private; see ``solvers/greedy.py``).

Every kernel takes only contiguous numeric arrays and scalars; the Python wrapper in
:mod:`robatch_opt.solvers.greedy` validates and casts first, so users never see a Numba
typing error. Kernels split the queries into ``n_chunks`` contiguous chunks (a function of
n only) and merge per-chunk results in chunk order, so results do not depend on the thread
count. The passes over all n x J cells (hulls, ratio histogram, split at the crossing bin,
plan totals, best moves) have a ``parallel=True`` variant, compiled only when it first runs
on more than one thread (:func:`_build_hulls` and the others pick the variant): a small
solve runs on one thread and never pays the seconds a parallel compile costs. The other
passes touch only the crossing bin or the moved queries.

Compile time is part of the design (the first solve after an install compiles every kernel
a call uses): the kernels avoid the NumPy functions whose Numba implementations take
seconds to compile (``np.partition``, ``np.argsort(kind="mergesort")``, array broadcasting
in assignments and in-place operators) and use the short loops below instead
(:func:`_argsort_stable`; the selection of :func:`_apply_moves` is NumPy's, outside the
kernels); a kernel that a call does not need is
never compiled (Numba compiles on first call, one signature per kernel).

Vocabulary
----------
hull
    Per query, the options of its upper convex hull in (amortized cost, utility), starting
    at a given option: ``hull_opt[i, :hull_len[i]]``, costs and utilities strictly
    increasing, increment ratios ``du / dc`` strictly decreasing.
increment ``(i, h)``
    The step from ``hull_opt[i, h]`` to ``hull_opt[i, h + 1]`` (``0 <= h < hull_len[i] - 1``).
bin
    A monotone integer key of a positive ratio: the top 20 bits of its IEEE-754 pattern
    (sign, exponent, 8 mantissa bits), so bins are at most 0.4 % wide. Ratios fall in
    non-increasing bins along every hull, so "every increment above a bin" is a per-query
    prefix. The hull kernel stores each increment's bin, so later passes never divide.
group
    ``g = t * J + j``: the queries of task t on option j.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
from numba import njit, prange

#: Number of ratio bins (20-bit keys of non-negative doubles, sign bit zero).
N_BINS = 1 << 19

# Modes of the exact-cost local moves (see _best_moves).
MODE_UPGRADE = 0    # budget form: raise utility, exact cost stays within the limit
MODE_TRIM = 1       # quality form: lower exact cost, utility stays above the target
MODE_REPAIR = 2     # lower the exact cost at any utility (start plan over budget)
MODE_CAPACITY = 3   # move queries off over-full models at the least exact cost increase


@njit(cache=True, error_model="numpy", inline="always")
def _ratio(cost, util, i, a, b):
    # One expression everywhere, so that every pass computes bit-identical ratios.
    return (util[i, b] - util[i, a]) / (cost[i, b] - cost[i, a])


@njit(cache=True, error_model="numpy", inline="always")
def _bin(r):
    # For non-negative doubles the bit pattern orders like the value (inf included).
    return np.float64(r).view(np.int64) >> 44


# ------------------------------------------------------------ sorting and selection
# Numba's own np.argsort(kind="mergesort") takes ~3 s to compile on two cores; this loop
# compiles in well under a second and gives the same order.
@njit(cache=True, error_model="numpy", inline="always")
def _before(a, b):
    # NumPy's sort order for floats: NaN after every number.
    return a < b or (b != b and a == a)


@njit(cache=True, error_model="numpy")
def _argsort_stable(key):
    """``np.argsort(key, kind="mergesort")``: ascending, ties in index order.

    Insertion sort of runs of 16, then bottom-up merges (stable). O(m log m).
    """
    m = key.shape[0]
    a = np.empty(m, np.int64)
    for q in range(m):
        a[q] = q
    run = 16
    for lo in range(0, m, run):
        hi = min(lo + run, m)
        for q in range(lo + 1, hi):
            t = a[q]
            r = q
            while r > lo and _before(key[t], key[a[r - 1]]):
                a[r] = a[r - 1]
                r -= 1
            a[r] = t
    b = np.empty(m, np.int64)
    width = run
    while width < m:
        for lo in range(0, m, 2 * width):
            mid = min(lo + width, m)
            hi = min(lo + 2 * width, m)
            i = lo
            j = mid
            w = lo
            while i < mid and j < hi:
                if _before(key[a[j]], key[a[i]]):     # strict: a tie takes the left run first
                    b[w] = a[j]
                    j += 1
                else:
                    b[w] = a[i]
                    i += 1
                w += 1
            while i < mid:
                b[w] = a[i]
                i += 1
                w += 1
            while j < hi:
                b[w] = a[j]
                j += 1
                w += 1
        a, b = b, a
        width *= 2
    return a


# ----------------------------------------------------------------------------- hulls
def _build_hulls(cost, util, start, hull_opt, hull_len, hull_bin, n_chunks):
    """Fill each query's upper hull starting at ``start[i]``, and the bin of each increment.

    Candidates are the start and every admissible option that costs strictly more and is
    strictly more useful; they are sorted by (cost ascending, utility descending, index),
    dominated ones dropped, and LP-dominated ones popped (monotone chain on the computed
    ratios, so stored ratios are strictly decreasing bit for bit). ``hull_bin[i, h]`` is
    the bin of increment ``(i, h)``.

    Runs the parallel variant when Numba has more than one thread, else the serial one
    (same chunks, same result).

    Returns
    -------
    bin_lo, bin_hi : int
        Least and greatest bin of any increment (``bin_lo > bin_hi`` if there are none),
        so that histograms only span the bins in use.
    start_utility : float
        ``sum_i util[i, start[i]]`` (chunk order: deterministic).
    """
    if numba.get_num_threads() == 1:
        return _build_hulls_serial(cost, util, start, hull_opt, hull_len, hull_bin, n_chunks)
    with _one_chunk_at_a_time():
        return _build_hulls_parallel(cost, util, start, hull_opt, hull_len, hull_bin, n_chunks)


@contextlib.contextmanager
def _one_chunk_at_a_time():
    """Threads take a parallel kernel's chunks one at a time (dynamic scheduling) instead of
    an equal share each: on a shared machine a thread whose core is busy then holds the
    others up by one chunk rather than by half the pass (hulls at 10^6 x 16 with one of two
    cores kept busy: median 0.088 s against 0.102 s; 0.053 s either way on idle cores).
    Only for kernels whose one parallel loop is over chunks: Numba's chunk size also
    applies to the loops it makes of array expressions (``np.zeros`` of a histogram),
    which would then be dealt out one element at a time. Results do not depend on which
    thread ran a chunk (per-chunk results are merged in chunk order)."""
    before = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(before)


@njit(cache=True, error_model="numpy")
def _build_hulls_serial(cost, util, start, hull_opt, hull_len, hull_bin, n_chunks):
    lo_c = np.empty(n_chunks, np.int64)
    hi_c = np.empty(n_chunks, np.int64)
    u_c = np.empty(n_chunks)
    for c in range(n_chunks):
        _hulls_chunk(c, n_chunks, cost, util, start, hull_opt, hull_len, hull_bin, lo_c, hi_c, u_c)
    return _merge_hull_chunks(lo_c, hi_c, u_c)


@njit(cache=True, parallel=True, error_model="numpy")
def _build_hulls_parallel(cost, util, start, hull_opt, hull_len, hull_bin, n_chunks):
    lo_c = np.empty(n_chunks, np.int64)
    hi_c = np.empty(n_chunks, np.int64)
    u_c = np.empty(n_chunks)
    for c in prange(n_chunks):
        # prange's index is unsigned: cast, so that _hulls_chunk has one signature (one cache
        # entry, which two warm-up processes may then write at once without conflict).
        _hulls_chunk(np.int64(c), n_chunks, cost, util, start, hull_opt, hull_len, hull_bin, lo_c, hi_c, u_c)
    return _merge_hull_chunks(lo_c, hi_c, u_c)


@njit(cache=True, error_model="numpy", inline="always")
def _merge_hull_chunks(lo_c, hi_c, u_c):
    lo = N_BINS
    hi = -1
    u_total = 0.0
    for c in range(lo_c.shape[0]):
        lo = min(lo, lo_c[c])
        hi = max(hi, hi_c[c])
        u_total += u_c[c]
    return lo, hi, u_total


@njit(cache=True, error_model="numpy")
def _hulls_chunk(c, n_chunks, cost, util, start, hull_opt, hull_len, hull_bin, lo_c, hi_c, u_c):
    """The hulls of chunk ``c``'s queries; its least and greatest bin and summed start utility
    go to ``lo_c[c]``, ``hi_c[c]``, ``u_c[c]``."""
    n, J = cost.shape
    # Per-thread scratch: candidates (option, cost, utility) and the hull stack, with the
    # ratio into each stack entry; copied out of the rows so the sort stays in registers/L1.
    cand = np.empty(J, np.int64)
    cand_c = np.empty(J)
    cand_u = np.empty(J)
    stack = np.empty(J, np.int64)
    stack_c = np.empty(J)
    stack_u = np.empty(J)
    rstack = np.empty(J)                  # rstack[q]: ratio from stack[q - 1] to stack[q]
    # Options are offered to the insertion sort in the cost order of the chunk's first query:
    # queries mostly order their options alike (prices per token, batch sizes), so an
    # insertion then usually stops at its first comparison. Index breaks exact ties, so the
    # order is total and the result does not depend on the order of offering.
    i0 = c * n // n_chunks
    i1 = (c + 1) * n // n_chunks
    # (A writable copy: _argsort_stable's other callers pass writable arrays, so it keeps one
    # signature and one cache entry.)
    order = _argsort_stable(cost[i0].copy()) if i0 < i1 else np.arange(J)
    lo = N_BINS
    hi = -1
    u_sum = 0.0
    for i in range(i0, i1):
        s = start[i]
        cs = cost[i, s]
        us = util[i, s]
        u_sum += us
        m = 0
        for t in range(J):
            j = order[t]
            cj = cost[i, j]
            uj = util[i, j]
            if not (uj > us) or not (cj > cs) or not (cj < np.inf):
                continue
            q = m
            # Insertion sort by (cost ascending, utility descending, index): J is small.
            while q > 0 and (cand_c[q - 1] > cj or (cand_c[q - 1] == cj and (
                    cand_u[q - 1] < uj or (cand_u[q - 1] == uj and cand[q - 1] > j)))):
                cand[q] = cand[q - 1]
                cand_c[q] = cand_c[q - 1]
                cand_u[q] = cand_u[q - 1]
                q -= 1
            cand[q] = j
            cand_c[q] = cj
            cand_u[q] = uj
            m += 1
        stack[0] = s
        stack_c[0] = cs
        stack_u[0] = us
        h = 1
        for q in range(m):
            cj = cand_c[q]
            uj = cand_u[q]
            if not (uj > stack_u[h - 1]):
                continue                      # dominated (or a cost tie of lower utility)
            # The same expression as _ratio, so the stored ratios are bit-identical.
            r = (uj - stack_u[h - 1]) / (cj - stack_c[h - 1])
            while h >= 2 and rstack[h - 1] <= r:
                h -= 1                        # stack top is on or below the chord: LP-dominated
                r = (uj - stack_u[h - 1]) / (cj - stack_c[h - 1])
            stack[h] = cand[q]
            stack_c[h] = cj
            stack_u[h] = uj
            rstack[h] = r
            h += 1
        for q in range(h):
            hull_opt[i, q] = stack[q]
        for q in range(1, h):
            k = _bin(rstack[q])
            hull_bin[i, q - 1] = k
            lo = min(lo, k)
            hi = max(hi, k)
        hull_len[i] = h
    lo_c[c] = lo
    hi_c[c] = hi
    u_c[c] = u_sum


# ------------------------------------------------------------------------ histogram
def _ratio_histogram(cost, util, hull_opt, hull_len, hull_bin, bin_lo, bin_hi, n_chunks):
    """Per bin ``bin_lo + q``: summed dc (USD) and summed du of the increments in it.

    Each chunk sums into its own row, merged in chunk order, so the sums are the same on
    any number of threads. Runs the parallel variant when Numba has more than one thread.

    Returns
    -------
    dc_hist, du_hist : ndarray, shape (bin_hi - bin_lo + 1,)
    """
    kernel = _ratio_histogram_parallel if numba.get_num_threads() > 1 else _ratio_histogram_serial
    return kernel(cost, util, hull_opt, hull_len, hull_bin, bin_lo, bin_hi, n_chunks)


@njit(cache=True, error_model="numpy")
def _ratio_histogram_serial(cost, util, hull_opt, hull_len, hull_bin, bin_lo, bin_hi, n_chunks):
    width = max(bin_hi - bin_lo + 1, 1)
    dc_c = np.zeros((n_chunks, width))
    du_c = np.zeros((n_chunks, width))
    for c in range(n_chunks):
        _histogram_chunk(c, n_chunks, cost, util, hull_opt, hull_len, hull_bin, bin_lo, dc_c, du_c)
    return _merge_histograms(dc_c, du_c)


@njit(cache=True, parallel=True, error_model="numpy")
def _ratio_histogram_parallel(cost, util, hull_opt, hull_len, hull_bin, bin_lo, bin_hi, n_chunks):
    width = max(bin_hi - bin_lo + 1, 1)
    dc_c = np.zeros((n_chunks, width))
    du_c = np.zeros((n_chunks, width))
    for c in prange(n_chunks):
        _histogram_chunk(c, n_chunks, cost, util, hull_opt, hull_len, hull_bin, bin_lo, dc_c, du_c)
    return _merge_histograms(dc_c, du_c)


@njit(cache=True, error_model="numpy", inline="always")
def _histogram_chunk(c, n_chunks, cost, util, hull_opt, hull_len, hull_bin, bin_lo, dc_c, du_c):
    n = cost.shape[0]
    for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
        for h in range(hull_len[i] - 1):
            a = hull_opt[i, h]
            b = hull_opt[i, h + 1]
            k = hull_bin[i, h] - bin_lo
            dc_c[c, k] += cost[i, b] - cost[i, a]
            du_c[c, k] += util[i, b] - util[i, a]


@njit(cache=True, error_model="numpy", inline="always")
def _merge_histograms(dc_c, du_c):
    n_chunks, width = dc_c.shape
    dc_hist = np.zeros(width)
    du_hist = np.zeros(width)
    for c in range(n_chunks):
        for k in range(width):
            dc_hist[k] += dc_c[c, k]
            du_hist[k] += du_c[c, k]
    return dc_hist, du_hist


@njit(cache=True, error_model="numpy")
def _find_crossing(weight_hist, bin_lo, cap, reach):
    """Highest bin whose inclusion would exceed ``cap`` (``reach=False``) or reach it (``reach=True``).

    Walking bins from the highest ratio down, returns the first bin ``kc`` (absolute, i.e.
    ``bin_lo`` + index) with ``above + weight > cap`` (or ``>= cap`` when ``reach``), where
    ``above`` sums the bins above it; ``-1`` if every bin fits.
    """
    above = 0.0
    for k in range(weight_hist.shape[0] - 1, -1, -1):
        w = weight_hist[k]
        if w == 0.0:
            continue
        if (reach and above + w >= cap) or (not reach and above + w > cap):
            return bin_lo + k
        above += w
    return -1


def _split_at_bin(cost, util, hull_opt, hull_len, hull_bin, kc, pos, n_chunks):
    """Set ``pos[i]`` = increments of query i in bins above ``kc``; gather the items in ``kc``.

    Runs the parallel variant when Numba has more than one thread (same output: each chunk
    writes its own rows and its own slice of the items).

    Returns
    -------
    item_query, item_pos : ndarray of int64
        Increments in bin ``kc``, in (query, hull position) order.
    item_ratio, item_dc, item_du : ndarray of float64
    """
    kernel = _split_at_bin_parallel if numba.get_num_threads() > 1 else _split_at_bin_serial
    return kernel(cost, util, hull_opt, hull_len, hull_bin, kc, pos, n_chunks)


@njit(cache=True, error_model="numpy")
def _split_at_bin_serial(cost, util, hull_opt, hull_len, hull_bin, kc, pos, n_chunks):
    cnt = np.zeros(n_chunks + 1, np.int64)
    for c in range(n_chunks):
        _split_count_chunk(c, n_chunks, hull_len, hull_bin, kc, pos, cnt)
    items = _split_items(cnt)
    for c in range(n_chunks):
        _split_gather_chunk(c, n_chunks, cost, util, hull_opt, hull_len, hull_bin, kc, pos, cnt, items)
    return items


@njit(cache=True, parallel=True, error_model="numpy")
def _split_at_bin_parallel(cost, util, hull_opt, hull_len, hull_bin, kc, pos, n_chunks):
    cnt = np.zeros(n_chunks + 1, np.int64)
    for c in prange(n_chunks):
        _split_count_chunk(c, n_chunks, hull_len, hull_bin, kc, pos, cnt)
    items = _split_items(cnt)
    for c in prange(n_chunks):
        _split_gather_chunk(c, n_chunks, cost, util, hull_opt, hull_len, hull_bin, kc, pos, cnt, items)
    return items


@njit(cache=True, error_model="numpy", inline="always")
def _split_count_chunk(c, n_chunks, hull_len, hull_bin, kc, pos, cnt):
    # pos[i] for the chunk's queries; cnt[c + 1]: the chunk's increments in bin kc.
    n = hull_len.shape[0]
    in_bin = 0
    for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
        p = 0
        L = hull_len[i] - 1
        while p < L and hull_bin[i, p] > kc:
            p += 1
        pos[i] = p
        q = p
        while q < L and hull_bin[i, q] == kc:
            q += 1
        in_bin += q - p
    cnt[c + 1] = in_bin


@njit(cache=True, error_model="numpy", inline="always")
def _split_items(cnt):
    # Turns the per-chunk counts into offsets (cnt[c]: chunk c's first item) and allocates.
    for c in range(cnt.shape[0] - 1):
        cnt[c + 1] += cnt[c]
    m = cnt[cnt.shape[0] - 1]
    return (np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m), np.empty(m), np.empty(m))


@njit(cache=True, error_model="numpy", inline="always")
def _split_gather_chunk(c, n_chunks, cost, util, hull_opt, hull_len, hull_bin, kc, pos, cnt, items):
    item_query, item_pos, item_ratio, item_dc, item_du = items
    n = cost.shape[0]
    w = cnt[c]
    if w == cnt[c + 1]:
        return
    for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
        for h in range(pos[i], hull_len[i] - 1):
            if hull_bin[i, h] != kc:
                break
            a = hull_opt[i, h]
            b = hull_opt[i, h + 1]
            item_query[w] = i
            item_pos[w] = h
            item_ratio[w] = _ratio(cost, util, i, a, b)
            item_dc[w] = cost[i, b] - cost[i, a]
            item_du[w] = util[i, b] - util[i, a]
            w += 1


@njit(cache=True, error_model="numpy")
def _walk_bin(item_query, item_pos, item_ratio, item_dc, item_du, cap_left, reach, pos):
    """Take the bin's increments in decreasing ratio (ties: query, then hull position).

    Budget (``reach=False``): take while the summed dc stays <= ``cap_left``; the first
    increment that does not fit is the fractional break item (not taken).
    Quality (``reach=True``): take until the summed du reaches ``cap_left``; the increment
    that reaches it is the break item and *is* taken (the plan must reach the target).

    Returns
    -------
    taken_dc, taken_du : float
        Sums over the increments taken.
    break_dc, break_du, break_ratio : float
        The break increment (zeros if none).
    order : ndarray of int64
        The bin's increments in walk order.
    n_taken : int
        How many of them (a prefix of ``order``) the integral plan took.
    """
    neg = np.empty(item_ratio.shape[0])
    for q in range(neg.shape[0]):
        neg[q] = -item_ratio[q]
    order = _argsort_stable(neg)                  # stable: ties keep (query, pos) order
    taken_dc = 0.0
    taken_du = 0.0
    for q in range(order.shape[0]):
        t = order[q]
        dc = item_dc[t]
        du = item_du[t]
        if reach:
            pos[item_query[t]] = item_pos[t] + 1
            if taken_du + du >= cap_left:
                return taken_dc, taken_du, dc, du, item_ratio[t], order, q + 1
            taken_dc += dc
            taken_du += du
        else:
            if taken_dc + dc > cap_left:
                return taken_dc, taken_du, dc, du, item_ratio[t], order, q
            pos[item_query[t]] = item_pos[t] + 1
            taken_dc += dc
            taken_du += du
    return taken_dc, taken_du, 0.0, 0.0, 0.0, order, order.shape[0]


@njit(cache=True, error_model="numpy")
def _shed_walk(order, n_taken, item_query, item_pos, hull_opt, pos, opt, util, var_cost, query_task,
               option_model, option_batch, group_fixed, counts, model_count, state, limit_usd):
    """Undo the walk's last increments, lowest ratio first, until the exact cost fits.

    Undoing the tail of the walk keeps every query's taken increments a prefix (the same
    plan a re-threshold at a lower budget would give), but each step is judged by its exact
    cost change, partial calls included. ``state = [exact_usd, utility]`` is updated.
    Returns the number undone, or -1 if the bin's taken increments did not suffice.
    """
    J = option_model.shape[0]
    undone = 0
    for q in range(n_taken - 1, -1, -1):
        if state[0] <= limit_usd:
            return undone
        t = order[q]
        i = item_query[t]
        h = item_pos[t]
        c = opt[i]
        j = hull_opt[i, h]
        ti = query_task[i]
        delta = _move_delta(i, c, j, ti, J, var_cost, option_model, option_batch, group_fixed, counts)
        counts[ti * J + c] -= 1
        counts[ti * J + j] += 1
        model_count[option_model[c]] -= 1
        model_count[option_model[j]] += 1
        state[0] += delta
        state[1] += util[i, j] - util[i, c]
        opt[i] = j
        pos[i] = h
        undone += 1
    return undone if state[0] <= limit_usd else -1


# ------------------------------------------------------------------ plan accounting
@njit(cache=True, error_model="numpy")
def _options_from_positions(hull_opt, pos, opt):
    """``opt[i] = hull_opt[i, pos[i]]``."""
    n = opt.shape[0]
    n_chunks = min(64, max(1, n >> 14))
    for c in range(n_chunks):
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            opt[i] = hull_opt[i, pos[i]]


@njit(cache=True, error_model="numpy")
def _plan_totals(opt, seat_cost, util, var_cost, query_task, option_model, group_fixed, group_batch,
                 n_models, n_chunks):
    """Group counts, model counts, exact cost, amortized cost and utility of an assignment.

    Sums are compensated (Kahan) per chunk, so the exact cost agrees with the shared
    evaluator to rounding. A query's amortized cost is ``seat_cost[g] + var_cost[i, k]``
    (``seat_cost = group_fixed / group_batch``, shape (G,)): bit for bit the option table's
    ``cost[i, j]`` (the same two terms, added once), without reading that (n, J) array. :func:`_plan_totals_parallel` is the same on several threads
    (same chunks, same result).

    Returns
    -------
    counts : ndarray, shape (G,)
    model_count : ndarray, shape (K,)
    exact_usd, amortized_usd, utility : float
    """
    G = group_fixed.shape[0]
    cnt_c = np.zeros((n_chunks, G), np.int64)
    mc_c = np.zeros((n_chunks, n_models), np.int64)
    sums = np.zeros((n_chunks, 3))
    for c in range(n_chunks):
        _totals_chunk(c, n_chunks, opt, seat_cost, util, var_cost, query_task, option_model, cnt_c, mc_c, sums)
    return _merge_totals(cnt_c, mc_c, sums, group_fixed, group_batch)


@njit(cache=True, parallel=True, error_model="numpy")
def _plan_totals_parallel(opt, seat_cost, util, var_cost, query_task, option_model, group_fixed, group_batch,
                          n_models, n_chunks):
    G = group_fixed.shape[0]
    cnt_c = np.zeros((n_chunks, G), np.int64)
    mc_c = np.zeros((n_chunks, n_models), np.int64)
    sums = np.zeros((n_chunks, 3))
    for c in prange(n_chunks):
        _totals_chunk(c, n_chunks, opt, seat_cost, util, var_cost, query_task, option_model, cnt_c, mc_c, sums)
    return _merge_totals(cnt_c, mc_c, sums, group_fixed, group_batch)


@njit(cache=True, error_model="numpy", inline="always")
def _totals_chunk(c, n_chunks, opt, seat_cost, util, var_cost, query_task, option_model, cnt_c, mc_c, sums):
    """Counts and compensated sums of chunk ``c`` into row ``c`` of ``cnt_c``, ``mc_c``, ``sums``."""
    n = opt.shape[0]
    J = option_model.shape[0]
    G = cnt_c.shape[1]
    n_models = mc_c.shape[1]
    # Thread-local counters: neighbouring rows of a shared array would share cache lines.
    cnt = np.zeros(G, np.int64)
    mc = np.zeros(n_models, np.int64)
    sv = 0.0
    ev = 0.0
    sa = 0.0
    ea = 0.0
    su = 0.0
    eu = 0.0
    for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
        j = opt[i]
        k = option_model[j]
        g = query_task[i] * J + j
        cnt[g] += 1
        mc[k] += 1
        v = var_cost[i, k]
        y = v - ev
        t = sv + y
        ev = (t - sv) - y
        sv = t
        y = (seat_cost[g] + v) - ea
        t = sa + y
        ea = (t - sa) - y
        sa = t
        y = util[i, j] - eu
        t = su + y
        eu = (t - su) - y
        su = t
    for g in range(G):
        cnt_c[c, g] = cnt[g]
    for k in range(n_models):
        mc_c[c, k] = mc[k]
    sums[c, 0] = sv
    sums[c, 1] = sa
    sums[c, 2] = su


@njit(cache=True, error_model="numpy", inline="always")
def _merge_totals(cnt_c, mc_c, sums, group_fixed, group_batch):
    # Chunk order, whatever the thread count: the totals are deterministic.
    n_chunks, G = cnt_c.shape
    n_models = mc_c.shape[1]
    counts = np.zeros(G, np.int64)
    model_count = np.zeros(n_models, np.int64)
    for c in range(n_chunks):
        for g in range(G):
            counts[g] += cnt_c[c, g]
        for k in range(n_models):
            model_count[k] += mc_c[c, k]
    system = 0.0
    for g in range(G):
        if counts[g] > 0:
            system += ((counts[g] + group_batch[g] - 1) // group_batch[g]) * group_fixed[g]
    var = 0.0
    amort = 0.0
    utility = 0.0
    for c in range(n_chunks):
        var += sums[c, 0]
        amort += sums[c, 1]
        utility += sums[c, 2]
    return counts, model_count, system + var, amort, utility


# ------------------------------------------------------------- exact local moves
@njit(cache=True, error_model="numpy", inline="always")
def _move_delta(i, c, j, t, J, var_cost, option_model, option_batch, group_fixed, counts):
    # Exact cost change of moving query i from option c to option j (same task t): its own
    # tokens, plus a new call if j's group has no free seat, minus a call if it leaves c's
    # group with one call fewer.
    gc = t * J + c
    gj = t * J + j
    add = group_fixed[gj] if counts[gj] % option_batch[j] == 0 else 0.0
    save = group_fixed[gc] if (counts[gc] - 1) % option_batch[c] == 0 else 0.0
    return var_cost[i, option_model[j]] - var_cost[i, option_model[c]] + add - save


def _best_moves(mode, slack, opt, cost, util, var_cost, query_task, option_model, option_batch,
                group_fixed, counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    """Per query, the best single move under the current group counts (``best_j = -1``: none).

    Modes and scores (higher is better; ties: larger utility gain, then lower option index):

    - ``MODE_UPGRADE``: utility gain > 0 and exact delta <= ``slack`` (budget left);
      score gain / delta, ``inf`` for a move that costs nothing (e.g. a free seat).
    - ``MODE_TRIM``: delta < 0 and utility loss <= ``slack`` (utility above target);
      score saving / loss, ``inf`` if no utility is lost.
    - ``MODE_REPAIR``: delta < 0; score = saving.
    - ``MODE_CAPACITY``: only queries on a model above capacity; score = -delta.

    Moves into a model at capacity are never proposed. ``best_gain[i]`` and ``best_dvar[i]``
    get the move's utility gain and variable-cost change (``var_cost[i, k_j] - var_cost[i,
    k_c]``): all :func:`_apply_moves` needs of the big arrays, so that it re-checks hundreds
    of thousands of proposals without a random read into them. O(n J). Runs the parallel
    variant when Numba has more than one thread, else the serial one (same result).
    """
    args = (slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed, counts,
            model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks)
    serial, parallel = _BEST_MOVES[mode]
    if numba.get_num_threads() == 1:
        serial(*args)
    else:
        with _one_chunk_at_a_time():
            parallel(*args)


@njit(cache=True, error_model="numpy", inline="always")
def _move_tables(option_batch, group_fixed, counts, model_count, capacity):
    # Per group, the call cost of joining it (no free seat) and of leaving it (its last
    # call empties): the same as _move_delta, without a modulo per query x option; per
    # model, whether it has room (0/1 in int64: one allocation type less to compile).
    J = option_batch.shape[0]
    G = counts.shape[0]
    join = np.empty(G)
    leave = np.empty(G)
    for g in range(G):
        b = option_batch[g % J]
        join[g] = group_fixed[g] if counts[g] % b == 0 else 0.0
        leave[g] = group_fixed[g] if (counts[g] - 1) % b == 0 else 0.0
    room = np.empty(capacity.shape[0], np.int64)
    for k in range(capacity.shape[0]):
        room[k] = 1 if model_count[k] < capacity[k] else 0
    return join, leave, room


# One kernel per mode, each passing its mode to _best_move_of as a constant: with the mode a
# run-time value inside the loop, the serial kernel took 0.31 s at 10^6 x 16 on one thread,
# against 0.018 s per constant mode (commit 6ac613f). Separate kernels rather than one loop
# per mode in one kernel: a solve compiles only the modes it runs (the budget form upgrade
# and repair, the quality form trim, capacities their own), and each copy of the inlined
# per-query body costs about 1.5 s of compile time.
@njit(cache=True, error_model="numpy")
def _upgrade_moves_serial(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                               counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for i in range(n):
        _best_move_of(i, MODE_UPGRADE, slack, opt, cost, util, var_cost, query_task, option_model, J, join, leave,
                      room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


@njit(cache=True, parallel=True, error_model="numpy")
def _upgrade_moves_parallel(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                                 counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for ch in prange(n_chunks):
        for i in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
            _best_move_of(i, MODE_UPGRADE, slack, opt, cost, util, var_cost, query_task, option_model, J, join,
                          leave, room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


@njit(cache=True, error_model="numpy")
def _trim_moves_serial(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                            counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for i in range(n):
        _best_move_of(i, MODE_TRIM, slack, opt, cost, util, var_cost, query_task, option_model, J, join, leave,
                      room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


@njit(cache=True, parallel=True, error_model="numpy")
def _trim_moves_parallel(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                              counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for ch in prange(n_chunks):
        for i in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
            _best_move_of(i, MODE_TRIM, slack, opt, cost, util, var_cost, query_task, option_model, J, join,
                          leave, room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


@njit(cache=True, error_model="numpy")
def _repair_moves_serial(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                              counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for i in range(n):
        _best_move_of(i, MODE_REPAIR, slack, opt, cost, util, var_cost, query_task, option_model, J, join, leave,
                      room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


@njit(cache=True, parallel=True, error_model="numpy")
def _repair_moves_parallel(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                                counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for ch in prange(n_chunks):
        for i in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
            _best_move_of(i, MODE_REPAIR, slack, opt, cost, util, var_cost, query_task, option_model, J, join,
                          leave, room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


@njit(cache=True, error_model="numpy")
def _capacity_moves_serial(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                                counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for i in range(n):
        _best_move_of(i, MODE_CAPACITY, slack, opt, cost, util, var_cost, query_task, option_model, J, join, leave,
                      room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


@njit(cache=True, parallel=True, error_model="numpy")
def _capacity_moves_parallel(slack, opt, cost, util, var_cost, query_task, option_model, option_batch, group_fixed,
                                  counts, model_count, capacity, best_j, best_score, best_gain, best_dvar, n_chunks):
    n, J = cost.shape
    join, leave, room = _move_tables(option_batch, group_fixed, counts, model_count, capacity)
    for ch in prange(n_chunks):
        for i in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
            _best_move_of(i, MODE_CAPACITY, slack, opt, cost, util, var_cost, query_task, option_model, J, join,
                          leave, room, model_count, capacity, best_j, best_score, best_gain, best_dvar)


#: mode -> (serial kernel, parallel kernel) of the best-move pass.
_BEST_MOVES = {MODE_UPGRADE: (_upgrade_moves_serial, _upgrade_moves_parallel),
               MODE_TRIM: (_trim_moves_serial, _trim_moves_parallel),
               MODE_REPAIR: (_repair_moves_serial, _repair_moves_parallel),
               MODE_CAPACITY: (_capacity_moves_serial, _capacity_moves_parallel)}


@njit(cache=True, error_model="numpy", inline="always")
def _best_move_of(i, mode, slack, opt, cost, util, var_cost, query_task, option_model, J, join, leave,
                  room, model_count, capacity, best_j, best_score, best_gain, best_dvar):
    """The best move of query i (see _best_moves), written to ``best_j[i]``, ``best_score[i]``,
    ``best_gain[i]`` and ``best_dvar[i]``."""
    c = opt[i]
    kc = option_model[c]
    t = query_task[i]
    best_j[i] = -1
    best_score[i] = -np.inf
    if mode == MODE_CAPACITY and model_count[kc] <= capacity[kc]:
        return
    uc = util[i, c]
    base = -var_cost[i, kc] - leave[t * J + c]
    bj = -1
    bs = -np.inf
    bg = -np.inf
    for j in range(J):
        gain = util[i, j] - uc
        if mode == MODE_UPGRADE and not (gain > 0.0):
            continue
        if j == c or not (cost[i, j] < np.inf):
            continue
        kj = option_model[j]
        if kj != kc and room[kj] == 0:
            continue
        if mode == MODE_CAPACITY and kj == kc:
            continue                          # only a move to another model relieves it
        delta = var_cost[i, kj] + join[t * J + j] + base
        if mode == MODE_UPGRADE:
            if delta > slack:
                continue
            score = np.inf if delta <= 0.0 else gain / delta
        elif mode == MODE_TRIM:
            if not (delta < 0.0) or gain < -slack:
                continue
            score = np.inf if gain >= 0.0 else -delta / -gain
        elif mode == MODE_REPAIR:
            if not (delta < 0.0):
                continue
            score = -delta
        else:
            score = -delta
        if score > bs or (score == bs and gain > bg):
            bj = j
            bs = score
            bg = gain
    best_j[i] = bj
    best_score[i] = bs
    best_gain[i] = bg
    # What _apply_moves needs of the variable costs (the same difference _move_delta takes).
    best_dvar[i] = var_cost[i, option_model[bj]] - var_cost[i, kc] if bj >= 0 else 0.0


def _apply_moves(mode, max_candidates, best_j, best_score, best_gain, best_dvar, opt, query_task,
                 option_model, option_batch, group_fixed, counts, model_count, capacity,
                 state, limit_usd, target_utility):
    """Apply the proposed moves best score first, re-checking each with exact accounting.

    ``state = [exact_usd, utility]`` is updated in place. At most ``max_candidates`` moves
    (the best-scored; ties: lower query index) are considered. Returns the number applied.

    The cut (the ``max_candidates``-th best score) is selected here with NumPy's own
    ``np.partition`` when the proposals exceed the quota and the free moves do not fill it:
    Numba's ``np.partition`` alone takes ~12 s to compile, and a small solve never needs it.
    """
    n_proposed, n_free = _count_proposals(best_j, best_score)
    cut = np.inf
    if n_proposed > max_candidates and n_free < max_candidates:
        score = -best_score[best_j >= 0]
        cut = float(np.partition(score, max_candidates - 1)[max_candidates - 1])
    elif n_proposed > max_candidates:
        cut = -np.inf
    return _apply_moves_below(mode, float(cut), best_j, best_score, best_gain, best_dvar, opt, query_task, option_model,
                              option_batch, group_fixed, counts, model_count, capacity, state, limit_usd,
                              target_utility)


@njit(cache=True, error_model="numpy")
def _count_proposals(best_j, best_score):
    """Proposed moves and, among them, the free ones (score ``inf``): one pass, where
    selecting them in NumPy first took a boolean mask and a copy (4 ms at n = 10^6)."""
    m = 0
    n_free = 0
    for i in range(best_j.shape[0]):
        if best_j[i] >= 0:
            m += 1
            if best_score[i] == np.inf:
                n_free += 1
    return m, n_free


@njit(cache=True, error_model="numpy")
def _apply_moves_below(mode, cut, best_j, best_score, best_gain, best_dvar, opt, query_task,
                       option_model, option_batch, group_fixed, counts, model_count, capacity,
                       state, limit_usd, target_utility):
    """:func:`_apply_moves` for the proposals whose negated score is at most ``cut``."""
    n = opt.shape[0]
    J = option_model.shape[0]
    m = 0
    for i in range(n):
        if best_j[i] >= 0:
            m += 1
    if m == 0:
        return 0
    cand = np.empty(m, np.int64)
    w = 0
    for i in range(n):
        if best_j[i] >= 0:
            cand[w] = i
            w += 1
    score = np.empty(m)
    n_free = 0                     # moves of score inf (free ones): -inf here, first in the order
    for q in range(m):
        score[q] = -best_score[cand[q]]
        if score[q] == -np.inf:
            n_free += 1
    if cut < np.inf:
        keep = 0
        for q in range(m):
            if score[q] <= cut:
                cand[keep] = cand[q]
                score[keep] = score[q]
                keep += 1
        m = keep
    # The stable order by score: the free moves (the least score) in query order, then the
    # others sorted; only those need sorting (at n = 10^6 most candidates can be free).
    order = np.empty(m, np.int64)
    rest = np.empty(m - min(n_free, m), np.int64)
    w = 0
    r = 0
    for q in range(m):
        if score[q] == -np.inf:
            order[w] = q
            w += 1
        else:
            rest[r] = q
            r += 1
    if r > 0:
        key = np.empty(r)
        for q in range(r):
            key[q] = score[rest[q]]
        sub = _argsort_stable(key)
        for q in range(r):
            order[w + q] = rest[sub[q]]
    applied = 0
    for q in range(m):
        i = cand[order[q]]
        j = best_j[i]
        c = opt[i]
        kc = option_model[c]
        kj = option_model[j]
        if kj != kc and model_count[kj] >= capacity[kj]:
            continue
        t = query_task[i]
        # The same expression as _move_delta, its variable part taken from the proposal.
        gc = t * J + c
        gj = t * J + j
        add = group_fixed[gj] if counts[gj] % option_batch[j] == 0 else 0.0
        save = group_fixed[gc] if (counts[gc] - 1) % option_batch[c] == 0 else 0.0
        delta = best_dvar[i] + add - save
        gain = best_gain[i]
        if mode == MODE_UPGRADE:
            if not (gain > 0.0) or state[0] + delta > limit_usd:
                continue
        elif mode == MODE_TRIM:
            if not (delta < 0.0) or state[1] + gain < target_utility:
                continue
        elif mode == MODE_REPAIR:
            if state[0] <= limit_usd:
                break
            if not (delta < 0.0):
                continue
        else:
            if model_count[kc] <= capacity[kc]:
                continue
        counts[t * J + c] -= 1
        counts[t * J + j] += 1
        model_count[kc] -= 1
        model_count[kj] += 1
        opt[i] = j
        state[0] += delta
        state[1] += gain
        applied += 1
    return applied


# ---------------------------------------------------------------- capacitated walk
@njit(cache=True, error_model="numpy")
def _collect_all_increments(cost, util, hull_opt, hull_len):
    """Every increment with its ratio, dc and du, in (query, hull position) order."""
    n = cost.shape[0]
    m = 0
    for i in range(n):
        m += max(hull_len[i] - 1, 0)
    q_ = np.empty(m, np.int64)
    p_ = np.empty(m, np.int64)
    r_ = np.empty(m)
    dc_ = np.empty(m)
    du_ = np.empty(m)
    w = 0
    for i in range(n):
        for h in range(hull_len[i] - 1):
            a = hull_opt[i, h]
            b = hull_opt[i, h + 1]
            q_[w] = i
            p_[w] = h
            r_[w] = _ratio(cost, util, i, a, b)
            dc_[w] = cost[i, b] - cost[i, a]
            du_[w] = util[i, b] - util[i, a]
            w += 1
    return q_, p_, r_, dc_, du_


@njit(cache=True, error_model="numpy")
def _sorted_increments(cost, util, hull_opt, hull_len, hull_bin, bin_lo, bin_hi):
    """Every increment in walk order: decreasing ratio, ties by query then hull position.

    A counting sort on the stored bins (stable, so each bin holds its increments in
    (query, position) order), then a stable sort by ratio inside each bin only: O(N) plus
    the sorts of the bins, instead of one O(N log N) sort of everything.

    Returns
    -------
    item_query, item_pos : ndarray of int64
    item_ratio, item_dc, item_du : ndarray of float64
    """
    n = cost.shape[0]
    width = max(bin_hi - bin_lo + 1, 1)
    count = np.zeros(width, np.int64)
    for i in range(n):
        for h in range(hull_len[i] - 1):
            count[hull_bin[i, h] - bin_lo] += 1
    start = np.empty(width, np.int64)
    acc = 0
    for k in range(width - 1, -1, -1):
        start[k] = acc
        acc += count[k]
    q_ = np.empty(acc, np.int64)
    p_ = np.empty(acc, np.int64)
    r_ = np.empty(acc)
    dc_ = np.empty(acc)
    du_ = np.empty(acc)
    w = np.empty(width, np.int64)
    for k in range(width):
        w[k] = start[k]
    for i in range(n):
        for h in range(hull_len[i] - 1):
            k = hull_bin[i, h] - bin_lo
            t = w[k]
            a = hull_opt[i, h]
            b = hull_opt[i, h + 1]
            q_[t] = i
            p_[t] = h
            r_[t] = _ratio(cost, util, i, a, b)
            dc_[t] = cost[i, b] - cost[i, a]
            du_[t] = util[i, b] - util[i, a]
            w[k] = t + 1
    for k in range(width):
        lo = start[k]
        hi = lo + count[k]
        if hi - lo < 2:
            continue
        neg = np.empty(hi - lo)
        for q in range(hi - lo):
            neg[q] = -r_[lo + q]
        order = _argsort_stable(neg)
        _permute_int(q_, lo, order)
        _permute_int(p_, lo, order)
        _permute_float(r_, lo, order)
        _permute_float(dc_, lo, order)
        _permute_float(du_, lo, order)
    return q_, p_, r_, dc_, du_


@njit(cache=True, error_model="numpy", inline="always")
def _permute_int(a, lo, order):
    # a[lo:lo + m] = a[lo + order] (loops: Numba's fancy indexing is slow to compile).
    tmp = np.empty(order.shape[0], np.int64)
    for q in range(order.shape[0]):
        tmp[q] = a[lo + order[q]]
    for q in range(order.shape[0]):
        a[lo + q] = tmp[q]


@njit(cache=True, error_model="numpy", inline="always")
def _permute_float(a, lo, order):
    tmp = np.empty(order.shape[0])
    for q in range(order.shape[0]):
        tmp[q] = a[lo + order[q]]
    for q in range(order.shape[0]):
        a[lo + q] = tmp[q]


@njit(cache=True, error_model="numpy")
def _capacitated_walk(item_query, item_pos, item_dc, item_du, item_from_model, item_to_model,
                      model_count, capacity, cap_left, reach, pos):
    """Walk increments in their order (decreasing ratio), skipping those into full models.

    A query whose next increment is skipped (no room, or over the budget) is frozen, so
    every query's taken increments stay a prefix of its hull: its increments come in hull
    order, so each one reached unfrozen directly follows the last one taken. Budget
    (``reach=False``): spend at most ``cap_left`` USD of dc, continuing past increments that
    do not fit. Quality (``reach=True``): stop as soon as the summed du reaches ``cap_left``.
    ``pos`` (zeros on entry) and ``model_count`` are updated. Returns (taken_dc, taken_du).
    """
    n = pos.shape[0]
    frozen = np.zeros(n, np.bool_)
    taken_dc = 0.0
    taken_du = 0.0
    for t in range(item_query.shape[0]):
        i = item_query[t]
        if frozen[i]:
            continue
        kc = item_from_model[t]
        kj = item_to_model[t]
        if kj != kc and model_count[kj] >= capacity[kj]:
            frozen[i] = True
            continue
        if not reach and taken_dc + item_dc[t] > cap_left:
            frozen[i] = True
            continue
        pos[i] = item_pos[t] + 1
        model_count[kc] -= 1
        model_count[kj] += 1
        taken_dc += item_dc[t]
        taken_du += item_du[t]
        if reach and taken_du >= cap_left:
            break
    return taken_dc, taken_du


# ------------------------------------------------------------ restriction screen
def _restriction_best(cost, util, admissible, lam, member, out):
    """``out[r, i] = max over admissible j with member[r, j] of util[i, j] - lam * cost[i, j]``
    (``-inf`` if none): every restriction's Lagrangian term per query in one pass over the
    rows (a NumPy version copies the (n, J) array once per restriction). Parallel over rows
    when Numba has more than one thread (rows are independent: same result)."""
    J = cost.shape[1]
    R = member.shape[0]
    # Per option, the restrictions that keep it (CSR): an option is in two or three.
    first = np.zeros(J + 1, np.int64)
    first[1:] = np.cumsum((member != 0).sum(axis=0))
    which = np.ascontiguousarray(np.nonzero(member.T != 0)[1], dtype=np.int64)
    n = cost.shape[0]
    n_chunks = int(min(64, max(1, -(-n // (1 << 14)))))
    kernel = _restriction_best_parallel if numba.get_num_threads() > 1 else _restriction_best_serial
    kernel(cost, util, admissible, float(lam), first, which, R, out, n_chunks)


@njit(cache=True, error_model="numpy")
def _restriction_best_serial(cost, util, admissible, lam, first, which, R, out, n_chunks):
    for c in range(n_chunks):
        _restriction_rows(c, n_chunks, cost, util, admissible, lam, first, which, R, out)


@njit(cache=True, parallel=True, error_model="numpy")
def _restriction_best_parallel(cost, util, admissible, lam, first, which, R, out, n_chunks):
    for c in prange(n_chunks):
        _restriction_rows(np.int64(c), n_chunks, cost, util, admissible, lam, first, which, R, out)   # see hulls


@njit(cache=True, error_model="numpy")
def _restriction_rows(c, n_chunks, cost, util, admissible, lam, first, which, R, out):
    n, J = cost.shape
    row = np.empty(R)
    for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
        for r in range(R):
            row[r] = -np.inf
        for j in range(J):
            if not admissible[i, j]:
                continue
            x = util[i, j] - lam * cost[i, j]
            for w in range(first[j], first[j + 1]):
                r = which[w]
                if x > row[r]:
                    row[r] = x
        for r in range(R):
            out[r, i] = row[r]
