"""Per-chunk work of the distributed greedy (runs on Dask workers; private).

Each function takes one chunk's source (a :class:`~.store.ChunkRef` read from the store, or an
in-memory :class:`~robatch_opt.Instance` held by the cluster) and small global values, and
returns small per-chunk statistics. Nothing is kept between calls: a chunk's current plan is
rebuilt from a :class:`Recipe` (the crossing bin, the walk's per-query positions in the
crossing bin, the local moves applied so far), so a task lost with its worker is simply run
again elsewhere and gives the same answer.

The kernels are those of the in-memory greedy (:mod:`robatch_opt.kernels.greedy_kernels`),
called through its wrappers (:mod:`robatch_opt.solvers.greedy`) on the chunk's rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evaluate import evaluate
from ..instance import Instance
from ..kernels import greedy_kernels as gk
from ..options import compile_options, compile_options_one_pass
from ..solvers import greedy as g

_EMPTY_I = np.zeros(0, np.int64)


@dataclass(frozen=True)
class Recipe:
    """How to rebuild one chunk's plan from global decisions (chunk-local row indices).

    ``kc``: the crossing bin (every increment in a higher bin is taken; -1 takes every
    increment); ``None`` leaves every query at its start. ``pos_rows``/``pos``: hull
    positions that replace the prefix (the crossing bin's queries after the walk).
    ``move_rows``/``move_opt``: options set by the local moves, in the order applied.
    """

    kc: int | None = None
    pos_rows: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    pos: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    move_rows: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    move_opt: np.ndarray = field(default_factory=lambda: _EMPTY_I)


def hold(inst: Instance) -> Instance:
    """Identity: keeps an in-memory chunk on a worker with its data in the task (recomputable)."""
    return inst


def restrict(inst: Instance, label: str) -> Instance:
    """A held in-memory chunk restricted to ``label`` (``solvers.restrictions``), held in turn."""
    from ..solvers.restrictions import build_restriction
    return build_restriction(inst, label)


def _instance(src) -> Instance:
    return src if isinstance(src, Instance) else src.load()


#: Share of a worker's memory limit that may hold chunks between tasks (see ``_chunk``).
CACHE_SHARE = 0.25

_CACHE: dict[tuple, "_Chunk"] = {}
_CACHE_BYTES = [0]


#: A chunk is cached only while the worker's resident memory stays below this share of its
#: limit (Dask pauses a worker at 80 % and its nanny restarts it at 95 %).
CACHE_RSS_SHARE = 0.5


def _cache_room(size: int) -> bool:
    """Whether a chunk of ``size`` bytes may be kept: within the cache's share of the worker's
    memory limit, and the process (everything it holds, not only the cache) well below it."""
    try:
        from distributed import get_worker
        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return False                  # not on a worker: nothing to reuse between calls
    if not limit or _CACHE_BYTES[0] + size > CACHE_SHARE * limit:
        return False
    import psutil                     # a dependency of distributed
    return psutil.Process().memory_info().rss + size <= CACHE_RSS_SHARE * limit


def _chunk(src) -> "_Chunk":
    """The chunk's state, reused between passes while it fits the worker's cache budget.

    Passes read the chunks in order, so the cache keeps the first chunks that fit and never
    evicts (a least-recently-used cache would miss on every chunk of a scan larger than it).
    Only a speed-up: a missing entry is rebuilt, so results never depend on it.
    """
    if getattr(src, "restriction", None) is not None:
        # A restriction's chunk is derived from the whole chunk (cached as usual); the base
        # keeps the latest one, since restrictions are solved one after the other.
        import dataclasses

        from ..solvers.restrictions import build_restriction
        base = _chunk(dataclasses.replace(src, restriction=None))
        kept = base.__dict__.get("_restricted")
        if kept is None or kept[0] != src.restriction:
            kept = (src.restriction, _Chunk(build_restriction(base.inst, src.restriction)))
            base.__dict__["_restricted"] = kept
        return kept[1]
    if isinstance(src, Instance):
        ch = src.__dict__.get("_robatch_chunk")
        if ch is None:
            ch = _Chunk(src)
            src.__dict__["_robatch_chunk"] = ch      # the held chunk keeps its state, like compile_options
        return ch
    import os

    from .store import open_zarr
    try:
        meta = os.stat(os.path.join(src.path, "zarr.json")).st_mtime_ns
    except OSError:
        meta = -1
    # The store's metadata and the chunk's own files: an array edited in place (the chunk
    # files rewritten, the metadata not) was served from the cache, stale (new-user audit).
    stamp = (meta, open_zarr(src.path).chunk_stamp(src.index))
    key = (os.path.realpath(src.path), src.index, stamp)
    ch = _CACHE.get(key)
    if ch is None:
        ch = _Chunk(src)
        size = ch.nbytes()
        if any(k[0] == key[0] and (k[1] == key[1] or k[2][0] != meta) for k in _CACHE):
            _CACHE.clear()                         # a chunk or the metadata was rewritten: the store changed
            _CACHE_BYTES[0] = 0
        if _cache_room(size):
            _CACHE[key] = ch
            _CACHE_BYTES[0] += size
    return ch


class _Chunk:
    """A chunk's option table, kernel arrays and hulls."""

    def __init__(self, src):
        self.inst = _instance(src)
        # Rebuilt in every pass over a store that does not fit the workers' memory: one
        # compiled pass instead of NumPy's ~10 whole-array ones (the same arrays, bit for bit).
        self.table = compile_options_one_pass(self.inst)
        self.arr = g._arrays(self.table)
        self.n = self.table.n_queries
        self.start = g._ro(self.table.cheapest_option, np.int64)
        self.hulls = g.hull_arrays(self.arr["cost"], self.arr["util"], self.start)

    def nbytes(self) -> int:
        """Memory held by the chunk's arrays (instance, table, hulls)."""
        arrays = [getattr(self.inst, n) for n in ("query_task", "input_tokens", "output_tokens", "utility")]
        arrays += [self.table.cost, self.table.admissible, self.table.variable_cost, self.start]
        arrays += [self.hulls.opt, self.hulls.length, self.hulls.bin]
        return int(sum(a.nbytes for a in arrays))

    def positions(self, kc: int | None) -> tuple[np.ndarray, tuple]:
        """Hull positions taking every increment above bin ``kc``, and the items in ``kc``."""
        pos = np.zeros(self.n, np.int64)
        if kc is None:
            return pos, ()
        h = self.hulls
        items = gk._split_at_bin(self.arr["cost"], self.arr["util"], h.opt, h.length, h.bin, int(kc), pos,
                                 g._n_chunks(self.n))
        return pos, items

    def options(self, r: Recipe) -> np.ndarray:
        """The chunk's current option per query."""
        pos, _ = self.positions(r.kc)
        pos[r.pos_rows] = r.pos
        opt = np.empty(self.n, np.int64)
        gk._options_from_positions(self.hulls.opt, pos, opt)
        if r.move_rows.size:
            opt[r.move_rows] = r.move_opt
        return opt

    def totals(self, opt: np.ndarray) -> dict[str, Any]:
        """Group and model counts and the variable, amortized and utility sums (no call costs:
        those need the global counts)."""
        a = self.arr
        counts, mc, var, amort, util = gk._plan_totals(
            opt, a["seat_cost"], a["util"], a["var_cost"], a["query_task"], a["option_model"],
            g._ro(np.zeros_like(a["group_fixed"]), np.float64), a["group_batch"], self.inst.n_models,
            g._n_chunks(self.n))
        return {"counts": counts, "model_count": mc, "var_usd": float(var), "amortized_usd": float(amort),
                "utility": float(util)}


def stats(src) -> dict[str, Any]:
    """Hulls and ratio histogram of the chunk (over its own bin range), and its start plan."""
    ch = _chunk(src)
    h = ch.hulls
    a = ch.arr
    out = {"bin_lo": h.bin_lo, "bin_hi": h.bin_hi, "start_utility": h.start_utility,
           "min_cost_usd": float(a["cost"][np.arange(ch.n), ch.start].sum()),
           "n_increments": int(np.maximum(h.length - 1, 0).sum())}
    if h.bin_hi >= h.bin_lo:
        nc = g._n_chunks(ch.n)
        dc, du = gk._ratio_histogram(a["cost"], a["util"], h.opt, h.length, h.bin, h.bin_lo, h.bin_hi,
                                     g._hist_chunks(nc, h.bin_hi - h.bin_lo + 1))
    else:
        dc = du = np.zeros(0)
    out.update(dc_hist=dc, du_hist=du)
    out.update(ch.totals(ch.start))
    return out


def split(src, r0: int, kc: int) -> dict[str, Any]:
    """The crossing bin's increments (global query index), with their queries' rows.

    Rows (hull, costs, utility, task, prefix position) let the driver run the walk and the
    exact-cost shedding of the crossing bin on these queries alone, and turn the totals of
    the prefix plan (every increment above the bin, none in it; also returned) into those of
    the walked plan without another pass.
    """
    ch = _chunk(src)
    pos, (iq, ip, ir, idc, idu) = ch.positions(kc)
    rows = np.unique(iq)
    a = ch.arr
    opt = np.empty(ch.n, np.int64)
    gk._options_from_positions(ch.hulls.opt, pos, opt)
    return {"iq": iq + r0, "ip": ip, "ir": ir, "idc": idc, "idu": idu, "rows": rows + r0,
            "prefix": pos[rows], "hull": ch.hulls.opt[rows], "util": a["util"][rows], "cost": a["cost"][rows],
            "var_cost": a["var_cost"][rows], "task": a["query_task"][rows], "totals": ch.totals(opt)}


def totals(src, recipe: Recipe) -> dict[str, Any]:
    """The chunk's part of ``_plan_totals`` for the plan the recipe describes."""
    ch = _chunk(src)
    return ch.totals(ch.options(recipe))


def select(cand: dict[str, np.ndarray], max_candidates: int) -> dict[str, np.ndarray]:
    """Keep the best-scored candidates exactly as ``_apply_moves`` does (ties at the cut kept)."""
    score = -cand["score"]
    if score.shape[0] <= max_candidates:
        return cand
    cut = np.partition(score.copy(), max_candidates - 1)[max_candidates - 1]
    keep = score <= cut
    return {k: v[keep] for k, v in cand.items()}


def merge(parts: list[dict[str, np.ndarray]], max_candidates: int) -> dict[str, np.ndarray]:
    """Candidates of consecutive chunks, in query order, reduced to the best ones."""
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return select(cat, max_candidates)


def best_moves(src, r0: int, recipe: Recipe, mode: int, slack: float, counts: np.ndarray,
               model_count: np.ndarray, capacity: np.ndarray, max_candidates: int,
               part: str = "select", cut: float = math.inf, max_returned: int = 1 << 16) -> dict[str, Any]:
    """Each query's best single move under the global counts, and the chunk's candidates
    with what ``_apply_moves`` reads of them (each move's utility gain and variable-cost change).

    ``part="select"``: the chunk's best ``max_candidates`` (ties at its cut kept, as the
    kernel keeps them), or, if those are more than ``max_returned``, only the
    ``max_candidates`` smallest kernel scores (``-best_score``) and their count, so the
    driver can find the global cut. ``part="below"`` / ``"ties"``: the candidates whose
    kernel score is below / equal to the global ``cut``.
    """
    ch = _chunk(src)
    opt = ch.options(recipe)
    a = ch.arr
    n = ch.n
    best_j = np.empty(n, np.int64)
    best_score = np.empty(n, np.float64)
    best_gain = np.empty(n, np.float64)
    best_dvar = np.empty(n, np.float64)
    gk._best_moves(mode, float(slack), opt, a["cost"], a["util"], a["var_cost"], a["query_task"],
                   a["option_model"], a["option_batch"], a["group_fixed"], counts.copy(), model_count.copy(),
                   g._ro(capacity, np.int64), best_j, best_score, best_gain, best_dvar, g._n_chunks(n))
    rows = np.flatnonzero(best_j >= 0)
    score = -best_score[rows]
    n_cand = int(rows.shape[0])
    if part == "select":
        keep = select({"score": best_score[rows], "rows": rows}, max_candidates)["rows"]
        if keep.shape[0] > max_returned:
            k = min(max_candidates, score.shape[0])
            return {"truncated": True, "n": n_cand, "top": np.sort(np.partition(score, k - 1)[:k])}
        rows = keep
    elif part == "below":
        rows = rows[score < cut]
    else:
        rows = rows[score == cut]
    j = best_j[rows]
    c = opt[rows]
    out = {"idx": rows + r0, "j": j, "score": best_score[rows], "c": c, "task": a["query_task"][rows],
           "gain": best_gain[rows], "dvar": best_dvar[rows]}
    return out if part != "select" else {**out, "n": np.array([n_cand])}


def finish(src, r0: int, recipe: Recipe, out_path: str | None, gather: bool, lift: np.ndarray | None = None,
           joint_om: np.ndarray | None = None, joint_ob: np.ndarray | None = None,
           screen: tuple[float, np.ndarray] | None = None) -> dict[str, Any]:
    """The final plan of the chunk: solver totals, the shared evaluator's figures, and the
    options written to the plan store (and returned if ``gather``).

    ``lift`` maps a restriction's options to the joint instance's (whose option model and
    batch size are ``joint_om``, ``joint_ob``): what is written and returned is the joint
    option. ``screen = (lam, member)``: also each restriction's Lagrangian terms at price
    ``lam`` summed over the chunk (``member[r]`` marks restriction ``r``'s options; ``inf``
    where one of its queries has no option in it), as ``solvers.restrictions`` screens them.
    """
    ch = _chunk(src)
    opt = ch.options(recipe)
    jopt = opt if lift is None else lift[opt]
    out = ch.totals(opt)
    ev = evaluate(ch.inst, opt)
    out.update(ev_counts=np.asarray(ev.group_counts), ev_input_usd=ev.breakdown.input_usd,
               ev_output_usd=ev.breakdown.output_usd, ev_utility=ev.utility,
               ev_amortized_usd=ev.amortized_cost_usd)
    if out_path is not None:
        import zarr

        from .store import writing_into
        om, ob = (ch.inst.option_model, ch.inst.option_batch) if lift is None else (joint_om, joint_ob)
        with writing_into(out_path):           # not into a store an interrupt removed
            grp = zarr.open_group(out_path, mode="r+")
            for name, vals in (("option", jopt), ("model", om[jopt]), ("batch_size", ob[jopt]),
                               ("query_task", ch.inst.query_task)):
                arr = grp[name]
                arr[r0:r0 + ch.n] = vals.astype(arr.dtype)
    if gather:
        out["option"] = jopt
    if screen is not None:
        from ..solvers.restrictions import _lagrangian_terms
        lam, member = screen
        rows = _lagrangian_terms(ch.table, float(lam), [np.flatnonzero(m) for m in member], 0, ch.n)
        out["lagrangian"] = np.array([float(r.sum()) if np.isfinite(r).all() else math.inf for r in rows])
    return out


def reference(src) -> dict[str, Any]:
    """Group counts and token costs of the chunk's cheapest and most useful plans."""
    inst = _chunk(src).inst
    table = compile_options(inst)
    out = {}
    for name, opt in (("cheapest", table.cheapest_option), ("max_utility", table.most_useful_option)):
        ev = evaluate(inst, opt)
        out[name] = (np.asarray(ev.group_counts), ev.breakdown.input_usd + ev.breakdown.output_usd)
    return out
