"""The distributed greedy on a real two-worker Dask cluster vs the in-memory greedy.

Sections (``python benchmarks/bench_distributed.py SECTION [options]``):

``n6``
    n = 10^6 queries x 16 options (Gemma3 pool, batch sizes 1, 2, 4, 8), generated chunk by
    chunk into a zarr store; the in-memory greedy on the same instance (read whole) and the
    distributed greedy from the store on two workers started with the ``dask`` command line.
    Reports both plans' exact cost, utility and bound and their relative differences (the
    acceptance is 1e-9), wall times, time per query, and each worker's peak memory.
``big``
    n = 10^8 queries x 8 options (Gemma3, batch sizes 1 and 4) by default (``--n``): generated
    by the two workers (<= 4 GiB each) into ``--dir`` (deleted afterwards unless ``--keep``),
    then solved at budget fraction 0.3 (reference costs computed on the cluster). Reports the
    wall time of each phase, the store's size, peak memory per worker, the certificate gap,
    and the time per query relative to the in-memory greedy at n = 10^6 with the same options
    (measured first, in the same run).

Workers run under nannies with ``--memory-limit`` (default 4GiB) and one thread each (one
Numba thread each). Peak memory per worker is sampled every 0.2 s from outside (resident
set of the worker processes, restarts by the nanny counted); the worker's own VmHWM at the
end is printed too. The machine is shared: the load average is
printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import robatch_opt as ro
from robatch_opt.distributed.cli_cluster import command_line_cluster


def _vmhwm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1


def _peaks(client) -> dict[str, float]:
    """Peak resident memory of every worker, GiB (keyed by worker name)."""
    info = client.scheduler_info()["workers"]
    peaks = client.run(_vmhwm_bytes)
    return {info[a]["name"]: round(v / 2 ** 30, 3) for a, v in peaks.items() if a in info}


class _RssSampler:
    """Peak resident memory of every worker process, sampled from outside every 0.2 s.

    Covers a worker restarted by its nanny (each restart is a new process, counted), which
    the worker's own VmHWM would forget.
    """

    def __init__(self, cluster):
        import threading
        self.cluster, self.peak, self.pids = cluster, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil
        while not self._stop.is_set():
            for i, nanny in enumerate(self.cluster.workers):
                try:
                    kids = [k for k in psutil.Process(nanny.pid).children(recursive=True)
                            if "spawn_main" in " ".join(k.cmdline())]      # the worker, not its helpers
                    for k in kids:
                        rss = k.memory_info().rss
                        self.pids.setdefault(i, set()).add(k.pid)
                        self.peak[i] = max(self.peak.get(i, 0), rss)
                except psutil.Error:
                    pass
            self._stop.wait(0.2)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {f"worker-{i}": {"peak_rss_gib": round(v / 2 ** 30, 3),
                                "restarts": max(0, len(self.pids.get(i, ())) - 1)}
                for i, v in sorted(self.peak.items())}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def _in_memory(inst: ro.Instance, budget: float, repeats: int = 3) -> tuple[ro.Plan, float]:
    """The in-memory greedy's plan and its best wall time of ``repeats`` (after a warm-up)."""
    small = ro.workloads.llm("gemma3", n=3000, seed=1, batch_sizes=tuple(sorted({b for _, b in inst.options})))
    ro.solve(small, budget=ro.budget_from_fraction(small, 0.3), method="greedy")   # compile
    best, plan = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        plan = ro.solve(inst, budget=budget, method="greedy")
        best = min(best, time.perf_counter() - t)
    return plan, best


def _warm_workers(client, batch_sizes, tmp: Path) -> None:
    """One small distributed solve, so Numba's cache is loaded on every worker before timing."""
    small = ro.workloads.llm("gemma3", n=20_000, seed=1, batch_sizes=batch_sizes)
    ci = ro.load(ro.save(small, tmp / "warm.zarr", chunk_queries=2_000))
    ro.solve(ci, budget=ro.budget_from_fraction(small, 0.3), method="greedy", client=client)
    shutil.rmtree(tmp / "warm.zarr", ignore_errors=True)
    shutil.rmtree(tmp / "warm.plan.zarr", ignore_errors=True)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def n6(args) -> dict:
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    store = d / "n6.zarr"
    bs = (1, 2, 4, 8)
    t = time.perf_counter()
    ci = ro.workloads.llm("gemma3", n=10 ** 6, seed=0, batch_sizes=bs, out=store, chunk_queries=args.chunk_queries)
    gen_s = time.perf_counter() - t
    inst = ci.to_instance()
    budget = ro.budget_from_fraction(inst, args.fraction)
    mem_plan, mem_s = _in_memory(inst, budget)
    del inst
    out = {"section": "n6", "n": ci.n_queries, "options": ci.n_options, "chunks": ci.n_chunks,
           "chunk_queries": ci.chunk_queries, "budget_usd": budget, "generate_serial_s": round(gen_s, 2),
           "in_memory_s": round(mem_s, 3)}
    with command_line_cluster(2, memory_limit=args.memory_limit, nanny=True) as cluster:
        from distributed import Client
        with Client(cluster.address, timeout=30) as client:
            _warm_workers(client, bs, d)
            sampler = _RssSampler(cluster)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                plan = ro.solve(ci, budget=budget, method="greedy", client=client, progress=args.progress)
                times.append(time.perf_counter() - t)
            out["worker_vmhwm_gib"] = _peaks(client)
            out["worker_peak"] = sampler.stop()
    out.update(distributed_s=round(min(times), 3), distributed_runs_s=[round(x, 3) for x in times],
               passes=plan.info["n_passes"],
               in_memory=dict(cost_usd=mem_plan.cost_usd, utility=mem_plan.utility, bound=mem_plan.upper_bound,
                              gap=mem_plan.gap),
               distributed=dict(cost_usd=plan.cost_usd, utility=plan.utility, bound=plan.upper_bound,
                                gap=plan.gap),
               rel_diff=dict(cost=_rel(mem_plan.cost_usd, plan.cost_usd), utility=_rel(mem_plan.utility, plan.utility),
                             bound=_rel(mem_plan.upper_bound, plan.upper_bound)),
               options_differ=int((np.asarray(plan.option) != mem_plan.option).sum()),
               us_per_query=dict(in_memory=round(1e6 * mem_s / ci.n_queries, 3),
                                 distributed=round(1e6 * min(times) / ci.n_queries, 3)),
               timings=plan.info["timings"], load_avg=os.getloadavg())
    if not args.keep:
        shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(d / "n6.plan.zarr", ignore_errors=True)
    return out


def big(args) -> dict:
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    store = d / f"big{args.n}.zarr"
    bs = (1, 4)
    # The in-memory reference at 10^6 with the same options, measured first on a quiet machine.
    ref = ro.workloads.llm("gemma3", n=10 ** 6, seed=0, batch_sizes=bs)
    ref_plan, ref_s = _in_memory(ref, ro.budget_from_fraction(ref, args.fraction))
    del ref
    out: dict = {"section": "big", "n": args.n, "options": 2 * 4, "memory_limit": args.memory_limit,
                 "in_memory_1e6_s": round(ref_s, 3), "in_memory_1e6_us_per_query": round(ref_s, 3),
                 "in_memory_1e6_gap": ref_plan.gap}
    try:
        with command_line_cluster(2, memory_limit=args.memory_limit, nanny=True) as cluster:
            from distributed import Client
            with Client(cluster.address, timeout=30) as client:
                _warm_workers(client, bs, d)
                sampler = _RssSampler(cluster)
                t = time.perf_counter()
                ci = ro.workloads.llm("gemma3", n=args.n, seed=0, batch_sizes=bs, out=store,
                                      chunk_queries=args.chunk_queries, client=client)
                out["generate_s"] = round(time.perf_counter() - t, 1)
                out["store_gib"] = round(_dir_bytes(store) / 2 ** 30, 2)
                out["chunks"], out["chunk_queries"] = ci.n_chunks, ci.chunk_queries
                print(json.dumps({"progress": "generated", **out}), flush=True)
                t = time.perf_counter()
                budget = ro.distributed.budget_from_fraction(ci, args.fraction, client)
                out["budget_s"] = round(time.perf_counter() - t, 1)
                out["budget_usd"] = budget
                t = time.perf_counter()
                plan = ro.solve(ci, budget=budget, method="greedy", client=client, progress=args.progress)
                solve_s = time.perf_counter() - t
                out["worker_vmhwm_gib"] = _peaks(client)
                out["worker_peak"] = sampler.stop()
        out.update(solve_s=round(solve_s, 1), passes=plan.info["n_passes"], cost_usd=plan.cost_usd,
                   utility=plan.utility, mean_utility=plan.mean_utility, bound=plan.upper_bound, gap=plan.gap,
                   status=plan.status.value, timings=plan.info["timings"],
                   us_per_query=round(1e6 * solve_s / args.n, 3),
                   ratio_to_in_memory_1e6=round((solve_s / args.n) / (ref_s / 10 ** 6), 2),
                   load_avg=os.getloadavg())
    finally:
        if not args.keep:
            shutil.rmtree(store, ignore_errors=True)
            shutil.rmtree(d / f"big{args.n}.plan.zarr", ignore_errors=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("section", choices=("n6", "big"))
    p.add_argument("--n", type=lambda s: int(float(s)), default=10 ** 8, help="big: queries (default 1e8)")
    p.add_argument("--dir", default="/work/bigdata", help="where stores are written (default /work/bigdata)")
    p.add_argument("--chunk-queries", type=int, default=1 << 18)
    p.add_argument("--fraction", type=float, default=0.3, help="budget fraction (default 0.3)")
    p.add_argument("--memory-limit", default="4GiB", help="per worker (default 4GiB)")
    p.add_argument("--repeats", type=int, default=2, help="n6: distributed solves timed (best is reported)")
    p.add_argument("--keep", action="store_true", help="keep the stores")
    p.add_argument("--progress", action="store_true", help="Dask's progress bar on every pass")
    args = p.parse_args(argv)
    res = n6(args) if args.section == "n6" else big(args)
    print(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
