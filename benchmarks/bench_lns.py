"""``method="lns"`` against the greedy at n = 1,000 and 10,000: gap to the best proven bound.

For each family (``llm:qwen3``, ``llm:gemma3``, ``llm_like``), size and budget fraction, the
greedy and ``lns`` (``TIME_LIMIT_S`` seconds) solve the same instance at the same budget.
Both gaps are measured to the **best proven bound** known for the instance: the tighter of
the greedy's LP bound and the bound ``lns`` reports (the LP relaxation of the coupled model
with the task count cuts, up to ``robatch_opt.solvers.lns.LP_MAX_CELLS`` cells). Run::

    python benchmarks/bench_lns.py [--sizes 1000,10000] [--time-limit 10] [--families ...] [--lns-options JSON] [--out FILE]

It prints one Markdown table (median and max gap per family and size, greedy beside lns)
and, with ``--out``, writes it there too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import robatch_opt as ro  # noqa: E402

FAMILIES = ("llm:qwen3", "llm:gemma3", "llm_like")
FRACTIONS = (0.1, 0.3, 0.6)
SEED = 0


def instance(family: str, n: int) -> ro.Instance:
    if family.startswith("llm:"):
        return ro.workloads.llm(family.split(":")[1], n=n, seed=SEED)
    return ro.workloads.synthetic(n=n, family=family, seed=SEED)


def run(sizes, time_limit_s: float, families=FAMILIES, lns_options=None) -> list[dict]:
    rows = []
    warm = ro.workloads.synthetic(200, "llm_like", seed=1)
    ro.solve(warm, ro.budget_from_fraction(warm, 0.5), method="greedy")     # compile first
    for family in families:
        for n in sizes:
            inst = instance(family, n)
            for f in FRACTIONS:
                b = ro.budget_from_fraction(inst, f)
                t = time.perf_counter()
                g = ro.solve(inst, b, method="greedy")
                g_s = time.perf_counter() - t
                t = time.perf_counter()
                lns = ro.solve(inst, b, method="lns", time_limit_s=time_limit_s, seed=SEED, **(lns_options or {}))
                l_s = time.perf_counter() - t
                ub = min(g.upper_bound, lns.upper_bound)
                rows.append(dict(family=family, n=n, fraction=f, greedy=g.utility, lns=lns.utility, bound=ub,
                                 greedy_gap=(ub - g.utility) / ub, lns_gap=(ub - lns.utility) / ub,
                                 greedy_s=g_s, lns_s=l_s, iterations=lns.info.get("iterations"),
                                 start=lns.info.get("start"), whole=lns.info.get("whole_status", "-")))
                print(f"{family:11s} n={n:6d} f={f:.1f} greedy gap {100 * rows[-1]['greedy_gap']:.4f}% "
                      f"lns gap {100 * rows[-1]['lns_gap']:.4f}% ({l_s:.1f} s, {rows[-1]['iterations']} hoods, "
                      f"start {rows[-1]['start']}, whole-model HiGHS {rows[-1]['whole']})", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict], time_limit_s: float) -> str:
    out = [f"| family | n | greedy gap median | greedy gap max | lns gap median | lns gap max | lns s (max) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({(r["family"], r["n"]) for r in rows}, key=lambda k: (FAMILIES.index(k[0]), k[1]))
    for fam, n in keys:
        rs = [r for r in rows if r["family"] == fam and r["n"] == n]
        g = [100 * r["greedy_gap"] for r in rs]
        lg = [100 * r["lns_gap"] for r in rs]
        out.append(f"| {fam} | {n:,} | {statistics.median(g):.4f}% | {max(g):.4f}% | {statistics.median(lg):.4f}% | "
                   f"{max(lg):.4f}% | {max(r['lns_s'] for r in rs):.1f} |")
    allg = [100 * r["lns_gap"] for r in rows]
    out.append("")
    out.append(f"All {len(rows)} lns runs ({time_limit_s:g} s each, fractions {', '.join(map(str, FRACTIONS))}): "
               f"median gap {statistics.median(allg):.4f}%, max {max(allg):.4f}%.")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of " + ", ".join(FAMILIES))
    ap.add_argument("--lns-options", default="{}",
                    help='JSON object of lns options, e.g. \'{"max_free": 40, "sub_time_limit_s": 0.5}\'')
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    families = tuple(f for f in a.families.split(",") if f)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        ap.error(f"unknown family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    try:
        lns_options = json.loads(a.lns_options)
    except json.JSONDecodeError as exc:
        ap.error(f"--lns-options: not valid JSON ({exc})")
    if not isinstance(lns_options, dict) or {"seed", "time_limit_s", "method"} & set(lns_options):
        ap.error("--lns-options: a JSON object of lns options (seed and the time limit have their own flags)")
    text = table(run(sizes, a.time_limit, families, lns_options), a.time_limit)
    if lns_options:
        text += f"\nlns options: {json.dumps(lns_options, sort_keys=True)}."
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
