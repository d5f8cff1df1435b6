"""What typed input costs ``ro.load``: a 100,000 x 24 instance read from JSON and npz.

Issue 12 (item 4) made every loader check types (a number is a JSON number, an index an
integer, rows of equal length). This measures, in one process and interleaved round by round:

- ``json.loads`` of the text alone (the floor of any JSON reader);
- ``ro.load`` of the JSON file and of the npz file;
- the type checks alone on the parsed lists (:func:`robatch_opt._validate.numeric_array`:
  an element-type census, then the ``np.array(..., dtype=float64)`` conversion every reader
  pays anyway), and that conversion alone;
- with ``--baseline REV``, ``ro.load`` of the package at git revision ``REV`` (extracted with
  ``git archive`` and imported under another name), so the ratio new / old is taken on the
  same machine at the same moment.

Run: ``python benchmarks/bench_load.py [--n 100000] [--rounds 7] [--baseline 9f656a3]``
(the machine is shared: read the ratios, not the absolute times).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import robatch_opt as ro  # noqa: E402
from robatch_opt._validate import instance_errors, numeric_array  # noqa: E402

ARRAYS = {"query_task": (1, True), "input_tokens": (1, False), "output_tokens": ((2, 1), False),
          "utility": (2, False)}


def baseline_package(rev: str, into: Path):
    """The package as of git revision ``rev``, importable as ``robatch_opt_baseline``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "robatch_opt"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    shutil.move(into / "robatch_opt", into / "robatch_opt_baseline")   # its imports are relative
    sys.path.append(str(into))
    return importlib.import_module("robatch_opt_baseline")


def checks(doc: dict) -> None:
    for name, (ndim, integer) in ARRAYS.items():
        numeric_array(doc[name], name, instance_errors, ndim=ndim, integer=integer, strict=True)


def convert(doc: dict) -> None:
    for name in ARRAYS:
        np.array(doc[name], dtype=np.float64)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--baseline", metavar="REV", help="also time ro.load of the package at this git revision")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inst = ro.workloads.synthetic(n=args.n, n_models=6, seed=0)         # 6 models x 4 sizes = 24 options
        pj, pn = ro.save(inst, tmp / "x.json"), ro.save(inst, tmp / "x.npz")
        text = pj.read_text()
        doc = json.loads(text)
        timed = {
            "json.loads (text only)": lambda: json.loads(text),
            "ro.load json": lambda: ro.load(pj),
            "ro.load npz": lambda: ro.load(pn),
            "checks + conversion": lambda: checks(doc),
            "conversion alone": lambda: convert(doc),
        }
        if args.baseline:
            old = baseline_package(args.baseline, tmp)
            timed[f"ro.load json @ {args.baseline}"] = lambda: old.load(pj)
            timed[f"ro.load npz @ {args.baseline}"] = lambda: old.load(pn)
        # Wall time and this process's CPU time: on a shared machine the CPU time is the
        # steadier figure (other processes' load lengthens the wall time of both sides).
        times = {k: [] for k in timed}
        cpu = {k: [] for k in timed}
        for _ in range(args.rounds):
            for name, fn in timed.items():
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        med = {k: statistics.median(v) for k, v in times.items()}
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"n = {args.n:,} queries x {inst.n_options} options; JSON {pj.stat().st_size / 1e6:.1f} MB, "
              f"npz {pn.stat().st_size / 1e6:.1f} MB; median of {args.rounds} interleaved rounds; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"  {'':34s} {'wall':>8s}   {'cpu':>8s}")
        for k in med:
            print(f"  {k:34s} {med[k]:8.3f} s {mcpu[k]:8.3f} s")
        for label, m in (("wall", med), ("cpu", mcpu)):
            line = (f"  {label}: type checks alone / ro.load json: "
                    f"{(m['checks + conversion'] - m['conversion alone']) / m['ro.load json']:.1%}")
            if args.baseline:
                line += (f"; ro.load json new / {args.baseline}: "
                         f"{m['ro.load json'] / m[f'ro.load json @ {args.baseline}']:.3f}, npz: "
                         f"{m['ro.load npz'] / m[f'ro.load npz @ {args.baseline}']:.3f}")
            print(line)


if __name__ == "__main__":
    main()
