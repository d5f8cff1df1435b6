"""Temporary stores left behind by interrupts late in distributed work (new-user audit).

Starts a real Dask scheduler and two workers (127.0.0.1), writes a 10^6-query store, then:

- ``solve``: runs ``ro.solve(ci, method="greedy", client=...)`` in a subprocess and sends
  SIGINT within 0.3 s of the plan's temporary store appearing (the last pass, while workers
  write the plan's chunks);
- ``llm``: runs ``ro.workloads.llm(out=..., client=...)`` and sends SIGINT in the last 40 %
  of its measured duration;

and counts the runs that left a ``.NAME.zarr.*.tmp`` folder 3 s after the process exited.

    python benchmarks/bench_interrupts_distributed.py [--solve-runs 16] [--llm-runs 12]

Before the parent-folder lock (store.writing_into / remove_temporary): 1 of 8 and 2 of 4.
"""

from __future__ import annotations

import argparse
import glob
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import robatch_opt as ro  # noqa: E402

SOLVE = ("import robatch_opt as ro, sys\nci = ro.load(sys.argv[1])\n"
         "b = ro.distributed.budget_from_fraction(ci, 0.3, sys.argv[2])\n"
         "ro.solve(ci, budget=b, method='greedy', client=sys.argv[2], progress=False)\n")
LLM = ("import robatch_opt as ro, sys\nfrom distributed import Client\nc = Client(sys.argv[2])\n"
       "ro.workloads.llm('qwen3', n=400_000, seed=3, out=sys.argv[1], chunk_queries=16_384, client=c)\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--solve-runs", type=int, default=16)
    ap.add_argument("--llm-runs", type=int, default=12)
    args = ap.parse_args()
    from distributed import Client

    from robatch_opt.distributed.cli_cluster import command_line_cluster

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp, command_line_cluster(2, memory_limit="3GiB") as cluster:
        d = Path(tmp)
        with Client(cluster.address) as c:
            ro.workloads.llm("qwen3", n=1_000_000, seed=2, out=d / "day.zarr", chunk_queries=32_768, client=c)

        def run(code: str, out: Path, when) -> None:
            p = subprocess.Popen([sys.executable, "-c", code, str(out), cluster.address],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if when is None:
                p.wait()
                return
            when(p)
            p.send_signal(signal.SIGINT)
            p.wait(timeout=120)

        def at_plan_store(p) -> None:
            while p.poll() is None and not glob.glob(str(d / ".day.plan.zarr.*.tmp")):
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3))

        for name, code, out, runs in (("solve", SOLVE, d / "day.zarr", args.solve_runs),
                                      ("llm", LLM, d / "gen.zarr", args.llm_runs)):
            t = time.monotonic()
            run(code, out, None)
            full = time.monotonic() - t
            left = 0
            for i in range(runs):
                for p in (d / "gen.zarr", d / "day.plan.zarr"):
                    shutil.rmtree(p, ignore_errors=True)
                when = at_plan_store if name == "solve" else (lambda p: time.sleep(full * rng.uniform(0.6, 1.0)))
                run(code, out, when)
                time.sleep(3.0)                     # whatever a worker was still doing
                found = glob.glob(str(d / ".*.tmp"))
                left += bool(found)
                for f in found:
                    shutil.rmtree(f, ignore_errors=True)
            print(f"{name}: a temporary store left behind in {left} of {runs} interrupted runs "
                  f"(uninterrupted run {full:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
