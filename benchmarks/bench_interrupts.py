"""Seconds from a signal to the CLI's exit, per engine (issue 12: within 2 s).

Runs ``python -m robatch_opt solve`` on a 3,000-query Qwen3 instance with each exact engine,
sends SIGINT or SIGTERM once the engine is searching, and prints the exit status and the
seconds the command took to exit, with the machine's load average.

    python benchmarks/bench_interrupts.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import robatch_opt as ro  # noqa: E402

ENGINES = {"cpsat": ["--method", "cpsat"], "highs": ["--method", "milp", "--solver", "highs"],
           "cbc": ["--method", "milp", "--solver", "cbc"]}


def one(inst: Path, extra: list[str], sig: int, wait_s: float) -> tuple[int, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "robatch_opt", "solve", str(inst), *extra, "--budget-fraction",
                             "0.3", "--time-limit", "120", "--no-baselines"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(wait_s)
    t0 = time.monotonic()
    proc.send_signal(sig)
    proc.wait()
    return proc.returncode, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--wait", type=float, default=20.0, help="seconds after start before the signal")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        inst = Path(d) / "inst.npz"
        ro.save(ro.workloads.llm(pool="qwen3", n=3000, seed=3), inst)
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        print("| engine | signal | exit status | seconds to exit (each run) | max |")
        print("|---|---|---|---|---|")
        for name, extra in ENGINES.items():
            for sig in (signal.SIGINT, signal.SIGTERM):
                runs = [one(inst, extra, sig, args.wait) for _ in range(args.repeats)]
                codes = sorted({c for c, _ in runs})
                secs = [s for _, s in runs]
                print(f"| {name} | {signal.Signals(sig).name} | {', '.join(map(str, codes))} | "
                      f"{', '.join(f'{s:.2f}' for s in secs)} | {max(secs):.2f} |", flush=True)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
