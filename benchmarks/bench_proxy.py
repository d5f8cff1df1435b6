"""Acceptance figures of the proxy utility model (issue 6), printed as plain text.

Run from the repository root::

    python benchmarks/bench_proxy.py            # train 20,000 / test 5,000, seed 0
    python benchmarks/bench_proxy.py --seeds 0 1 2

Sections
--------
1. Degradation fitted on the published BatchPrompt observations: parameters and RMSE per
   model, leave-one-batch-size-out error, and the curves it predicts for the Qwen3 / Gemma3
   pools (no batch observation of these is public).
2. A simulated Qwen3 workload (``llm_truth``): features = noisy item-response difficulty +
   nuisance columns; logs = outcomes drawn from the true utilities (every train query on every
   model unbatched, a quarter of them again at b = 2, 4, 8). Brier score, AUC and expected
   calibration error (10 bins) of both predictors per model on held-out test queries whose
   outcomes are drawn from the truth with a separate seed; the truth's own scores alongside.
3. Degradation fitted from the simulated log vs the true retention.
4. End-to-end: plans made by ``ro.solve(method="greedy")`` from predicted utilities, graded
   with the TRUE utilities by ``ro.evaluate``, vs the oracle plan (made from the true
   utilities) at three budgets (``budget_from_fraction`` 0.1, 0.3, 0.6).
5. Round trip of the simulated log through CSV and JSON Lines (lossless check, sizes, times).

Not collected by pytest (benchmarks/ is outside ``testpaths``). Timings are wall-clock on a
shared machine: noisy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import robatch_opt as ro
from robatch_opt import proxy as P
from robatch_opt.workloads import llm_truth

FRACTIONS = (0.1, 0.3, 0.6)


def section_published() -> None:
    print("== 1. Degradation on the published observations (BatchPrompt, Lin et al. ICLR 2024)")
    deg = P.fit_degradation()
    print("model: r(b) = exp(-c_task * a * (b - 1)^p); fit = weighted least squares on acc(b)/acc(1)")
    print(f"{'model':15s} {'a':>11s} {'p':>7s} {'RMSE ratio':>11s} {'RMSE acc':>9s} {'n':>3s}")
    for m in deg.models:
        print(f"{m:15s} {deg.rate[m]:11.3e} {deg.exponent[m]:7.3f} {deg.rmse[m]:11.4f} "
              f"{deg.rmse_accuracy[m]:9.4f} {deg.n_observations[m]:3d}")
    print("task severities c_t: " + ", ".join(f"{t} {c:.3f}" for t, c in deg.task_severity.items()))
    print(f"common shape exp(mu) = {deg.common_exponent:.3f}; capability law (MMLU scale) "
          f"log D(b_ref={deg.reference_batch_size}) = {deg.alpha:.3f} + {deg.gamma:.3f} * log(1 - c)")
    lobo = P.leave_one_batch_size_out()
    print("leave-one-batch-size-out (refit without all observations of that model at that b):")
    for m, b, e, n in lobo["per_fold"]:
        print(f"  {m:15s} b={b:3d}  held-out RMSE {e:.4f}  ({n} tasks)")
    print("  per model: " + ", ".join(f"{m} {e:.4f}" for m, e in lobo["rmse"].items())
          + f"; all {lobo['rmse_all']:.4f}")
    print("predicted r(b) for the pools (no batch observations; from MMLU capability):")
    for m in ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B", "Qwen3-14B", "Qwen3-32B",
              "gemma-3-1b", "gemma-3-4b", "gemma-3-12b", "gemma-3-27b"):
        r = deg.retention(m, [2, 4, 8, 16])
        print(f"  {m:12s} r(2,4,8,16) = " + " ".join(f"{v:.4f}" for v in r))
    print()


def run_simulation(seed: int, n_train: int, n_test: int, verbose: bool) -> dict:
    t0 = time.perf_counter()
    w = llm_truth("qwen3", n=n_train + n_test, seed=seed)
    x, names = P.query_features(w, seed=seed)
    train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    log = P.simulate_logs(w, train, features=x, feature_names=names, seed=seed)
    labels = np.array(w.task_names)[w.instance.query_task]
    t_sim = time.perf_counter() - t0
    rng = np.random.default_rng([seed, 2026])
    y_test = (rng.random((n_test, len(w.model_names))) < w.base_utility[test]).astype(float)

    t = time.perf_counter()
    deg = P.fit_degradation(log)
    t_deg = time.perf_counter() - t
    preds = {}
    for name, base in (("knn", P.KNNUtility()), ("logistic", P.LogisticUtility())):
        t = time.perf_counter()
        base.fit_log(log, model_names=w.model_names)
        p = base.predict(x[test], task=labels[test])
        preds[name] = (base, p, time.perf_counter() - t)

    if verbose:
        print(f"== 2. Base utility on simulated Qwen3 (seed {seed}): train {n_train:,} / test {n_test:,} queries; "
              f"log {log.n_rows:,} rows ({t_sim:.1f} s to simulate)")
        print(f"features: {list(names)} (difficulty + N(0, 0.5^2); difficulty sd {w.difficulty_sd})")
        print(f"{'model':12s} | {'predictor':9s} {'Brier':>7s} {'AUC':>7s} {'ECE':>7s} {'RMSE vs u0':>10s}")
        for k, m in enumerate(w.model_names):
            rows = [("truth", w.base_utility[test, k])] + [(nm, v[1][:, k]) for nm, v in preds.items()]
            for nm, p in rows:
                rm = np.sqrt(np.mean((p - w.base_utility[test, k]) ** 2))
                print(f"{m:12s} | {nm:9s} {P.brier_score(p, y_test[:, k]):7.4f} {P.roc_auc(p, y_test[:, k]):7.4f} "
                      f"{P.expected_calibration_error(p, y_test[:, k]):7.4f} {rm:10.4f}")
        for nm, v in preds.items():
            print(f"{nm}: fit + predict {v[2]:.2f} s")
        print()
        print(f"== 3. Degradation fitted from the simulated log ({t_deg:.2f} s) vs truth")
        for k, m in enumerate(w.model_names):
            fit = deg.retention(m, [2, 4, 8])
            true = [w.retention[w.instance.options.index((k, b))] for b in (2, 4, 8)]
            print(f"  {m:12s} fitted r(2,4,8) = " + " ".join(f"{v:.4f}" for v in fit)
                  + "   true = " + " ".join(f"{v:.4f}" for v in true))
        print()

    true_inst = P.subset_instance(w.instance, test)
    out = {"oracle": [], "knn": [], "logistic": [], "budget": []}
    if verbose:
        print(f"== 4. End-to-end (seed {seed}): plans from predicted utilities graded with the true ones")
    ro.solve(true_inst, ro.budget_from_fraction(true_inst, 0.5), method="greedy")     # JIT warm-up
    for frac in FRACTIONS:
        budget = ro.budget_from_fraction(true_inst, frac)
        oracle_plan = ro.solve(true_inst, budget, method="greedy")
        oracle = ro.evaluate(true_inst, oracle_plan.option).mean_utility
        out["budget"].append(budget)
        out["oracle"].append(oracle)
        line = f"  budget {frac:.1f} -> ${budget:.5f}: oracle {oracle:.4f} (LP bound {oracle_plan.upper_bound / n_test:.4f})"
        for nm, (base, _, _) in preds.items():
            proxy = P.ProxyUtility(base, deg)
            inst = proxy.instance(w.instance.models, w.instance.tasks, w.instance.query_task[test],
                                  w.instance.input_tokens[test], w.instance.output_tokens[test], x[test])
            plan = ro.solve(inst, budget, method="greedy")
            ev = ro.evaluate(true_inst, plan.option)
            assert ev.cost_usd <= budget * (1 + 1e-12)
            out[nm].append(ev.mean_utility)
            line += (f" | {nm} {ev.mean_utility:.4f} ({100 * (oracle - ev.mean_utility) / oracle:+.2f}% below; "
                     f"it predicted {plan.mean_utility:.4f})")
        if verbose:
            print(line)
    if verbose:
        print()
        section_round_trip(log)
    return out


def section_round_trip(log) -> None:
    print(f"== 5. Round trip of the simulated log ({log.n_rows:,} rows, {log.n_features} features)")
    with tempfile.TemporaryDirectory() as d:
        for suffix in (".csv", ".jsonl"):
            p = os.path.join(d, "log" + suffix)
            t = time.perf_counter()
            log.save(p)
            t_w = time.perf_counter() - t
            t = time.perf_counter()
            back = P.load_logs(p)
            t_r = time.perf_counter() - t
            print(f"  {suffix:6s} lossless={back.equals(log)}  size {os.path.getsize(p) / 1e6:.1f} MB  "
                  f"write {t_w:.2f} s  read+validate {t_r:.2f} s")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-test", type=int, default=5_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    section_published()
    results = [run_simulation(s, args.n_train, args.n_test, verbose=(i == 0)) for i, s in enumerate(args.seeds)]
    if len(results) > 1:
        print(f"== End-to-end over seeds {args.seeds}: realized / oracle mean utility, worst over seeds")
        for j, frac in enumerate(FRACTIONS):
            worst = {nm: min(r[nm][j] / r["oracle"][j] for r in results) for nm in ("knn", "logistic")}
            print(f"  budget fraction {frac:.1f}: " + ", ".join(f"{nm} {100 * (1 - v):.2f}% below" for nm, v in worst.items()))


if __name__ == "__main__":
    main()
