"""Online routing with a service level: MESS+ vs the batching router on RouterBench streams.

Usage (from the repository root; about 4 minutes on 2 shared cores)::

    python benchmarks/bench_online.py               # writes the "Online" section of RESULTS.md
    python benchmarks/bench_online.py --quick       # one fold, fewer sweeps (prints only)

What it measures (RouterBench, 3 tasks x 11 models, every complete row: 2,205 queries,
shuffled and halved; each half is streamed with the predictor fitted on the other half and
updated online; Poisson arrivals):

1. alpha in {0.75, 0.85, 0.90} at 20 requests/s: MESS+ and the batching router
   (max_wait_s = 2): realized satisfaction, Q_T / T, cost, against the hindsight optima
   (b = 1 and with batching), the cheapest single model meeting alpha and the random
   router calibrated to alpha (on the training half).
2. The batching router's saving and waiting times over max_wait_s in {0.1, 0.5, 2, 10} and
   arrival rates {1, 5, 20} per second (alpha = 0.85, fold 0).
3. A figure of running satisfaction and cumulative cost over time for three V.
4. Decision overhead after warm-up: MESS+'s route() and a 256-request window (medians).
   (``pytest benchmarks/bench_online_overhead.py --benchmark-only`` measures the same with
   pytest-benchmark.)

Without the RouterBench files it falls back to the simulated Qwen3 stream and says so.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import robatch_opt as ro  # noqa: E402
from robatch_opt import online as on  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "real" / "routerbench"
BEGIN, END = "<!-- online:begin -->", "<!-- online:end -->"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def splits(folds):
    if DATA.is_dir():
        return [on.routerbench_split(DATA, fold=f, seed=0) for f in folds], True
    return [on.llm_split("qwen3", n=2000, tasks=["GSM8K", "MMLU", "MBPP"], seed=f) for f in folds], False


def fmt(x, p=4):
    return "-" if x is None else (f"{x:.{p}f}" if np.isfinite(x) else "inf")


def _served(x):
    """Cost without the exploring requests' bill."""
    return x.cost_usd - x.cost_per_request_usd[x.explored].sum()


def table_alpha(sps, alphas, seeds, lines):
    runs = len(sps) * len(seeds)
    lines += [f"Each row: {runs} runs (2 folds x seeds {seeds[0]}..{seeds[-1]} of the arrivals and the routers' "
              "exploration); mean [min, max]. `met`: runs with satisfaction >= alpha - 0.01. `served $`: cost "
              "without the exploring requests' bill (MESS+ pays every model for each; the batching router "
              "batches those answers and serves its planned one).", "",
              "| alpha | router | satisfaction | met | Q_T/T | cost $ | served $ | x hindsight | x offline plan | "
              "saving vs MESS+ | saving on served $ |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for a in alphas:
        acc = {k: [] for k in ("mess", "batching", "random")}
        single, h1s, hbs, o1s, obs = [], [], [], [], []
        t0 = time.perf_counter()
        for sp in sps:
            for seed in seeds:
                res = on.compare(sp, a, max_wait_s=2.0, rate_per_s=20.0, seed=seed, progress=False,
                                 baselines=True)
                for k in acc:
                    acc[k].append(res[k])
                single.append(res["single"])
                h1s.append(res["hindsight_b1"])
                hbs.append(res["hindsight_batch"])
                o1s.append(res["offline_b1"])
                obs.append(res["offline_batch"])
        log(f"alpha {a}: {time.perf_counter() - t0:.1f} s")

        def mm(v, p=4):
            v = np.asarray(v, dtype=float)
            return f"{v.mean():.{p}f} [{v.min():.{p}f}, {v.max():.{p}f}]"

        for key, name, yard, off in (("mess", "MESS+", h1s, o1s), ("batching", "batching (2 s)", hbs, obs),
                                     ("random", "random (calibrated)", h1s, o1s)):
            xs = acc[key]
            ratio = ([x.cost_usd / h.cost_usd for x, h in zip(xs, yard)] if all(h is not None for h in yard)
                     else None)
            oratio = ([x.cost_usd / o.cost_usd for x, o in zip(xs, off)] if all(o is not None for o in off)
                      else None)
            sav = "" if key == "mess" else mm([100 * (1 - x.cost_usd / m.cost_usd) for x, m in zip(xs, acc["mess"])], 0)
            sav2 = "" if key == "mess" else mm([100 * (1 - _served(x) / _served(m)) for x, m in zip(xs, acc["mess"])], 0)
            lines.append(
                f"| {a} | {name} | {mm([x.satisfaction for x in xs])} | "
                f"{sum(x.satisfaction >= a - 0.01 for x in xs)}/{len(xs)} | "
                f"{mm([x.final_queue / max(x.n_feedback, 1) for x in xs])} | {mm([x.cost_usd for x in xs], 3)} | "
                f"{mm([_served(x) for x in xs], 3)} | {mm(ratio, 1) if ratio else '-'} | "
                f"{mm(oratio, 2) if oratio else '-'} | "
                f"{sav + ' %' if sav else ''} | {sav2 + ' %' if sav2 else ''} |")
        names = sorted({s.model or "none reaches alpha" for s in single})
        lines.append(f"| {a} | cheapest single model ({', '.join(names)}) | "
                     f"{mm([s.satisfaction for s in single])} | | | "
                     f"{mm([s.cost_usd for s in single], 3) if all(s.model for s in single) else 'inf'} | | | | | |")
        lines.append(f"| {a} | hindsight optimum, b = 1 / with batching | | | | "
                     f"{mm([h.cost_usd for h in h1s], 4) if all(h1s) else '-'} / "
                     f"{mm([h.cost_usd for h in hbs], 4) if all(hbs) else '-'} | | | | | |")
        lines.append(f"| {a} | offline plan with the same predictor, b = 1 / with batching (realized satisfaction) "
                     f"| {mm([o.realized_satisfaction for o in o1s]) if all(o1s) else '-'} / "
                     f"{mm([o.realized_satisfaction for o in obs]) if all(obs) else '-'} | | | "
                     f"{mm([o.cost_usd for o in o1s], 3) if all(o1s) else '-'} / "
                     f"{mm([o.cost_usd for o in obs], 3) if all(obs) else '-'} | | | | | |")


def sweep(sp, alpha, waits, rates, lines):
    V_mess = on.MessPlusRouter(sp.stream.model_names, alpha=alpha).bind(sp.stream).V_resolved
    lines += ["", f"Batching router at alpha = {alpha} (fold 0, seed 0) against MESS+ at the same arrivals, with its "
                  f"default V (priced at full batches) and with MESS+'s V ({V_mess:.4g}), which isolates what "
                  "batching itself saves:", "",
              "| rate /s | max_wait_s | mean batch | wait p50 s | wait p99 s | satisfaction | met | saving vs MESS+ "
              "| saving on served $ | same V: satisfaction | met | saving | saving on served $ |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rate in rates:
        m = on.replay(sp.stream, on.MessPlusRouter(sp.stream.model_names, alpha=alpha,
                                                   predictor=copy.deepcopy(sp.predictor)),
                      rate_per_s=rate, seed=0)
        lines.append(f"| {rate} | MESS+ | 1.00 | 0 | 0 | {m.satisfaction:.4f} | "
                     f"{'yes' if m.satisfaction >= alpha - 0.01 else 'no'} | (${m.cost_usd:.3f}) | "
                     f"(${_served(m):.3f}) | | | | |")
        for w in waits:
            cells = []
            for V in (None, V_mess):
                b = on.replay(sp.stream, on.BatchingRouter(sp.stream.model_names, alpha=alpha, max_wait_s=w, V=V,
                                                           predictor=copy.deepcopy(sp.predictor)),
                              rate_per_s=rate, seed=0)
                if V is None:
                    cells.append(f"{b.batch_size.mean():.2f} | {b.wait_percentile_s(50):.2f} | "
                                 f"{b.wait_percentile_s(99):.2f}")
                cells.append(f"{b.satisfaction:.4f} | {'yes' if b.satisfaction >= alpha - 0.01 else 'no'} | "
                             f"{100 * (1 - b.cost_usd / m.cost_usd):.0f} % | "
                             f"{100 * (1 - _served(b) / _served(m)):.0f} %")
            lines.append(f"| {rate} | {w} | " + " | ".join(cells) + " |")
        log(f"sweep rate {rate} done")


def simulated(lines, seeds):
    """The same comparison on a simulated stream (ro.workloads.llm, Qwen3, outcomes ~ Bernoulli(u0))."""
    lines += ["", "Simulated stream (`ro.workloads.llm('qwen3', n=2000, tasks=GSM8K, MMLU, MBPP)`, outcomes drawn "
                  "Bernoulli(u0), predictor fitted on an independent workload), 20 req/s, seeds "
                  f"{seeds[0]}..{seeds[-1]}:", "",
              "| alpha | router | satisfaction | met | cost $ | saving vs MESS+ | hindsight b = 1 / batching $ |",
              "|---|---|---|---|---|---|---|"]
    for a in (0.75, 0.80):
        rs = {"mess": [], "batching": []}
        hs = []
        for seed in seeds:
            sp = on.llm_split("qwen3", n=2000, tasks=["GSM8K", "MMLU", "MBPP"], seed=seed)
            res = on.compare(sp, a, max_wait_s=2.0, rate_per_s=20.0, seed=seed, progress=False)
            for k in rs:
                rs[k].append(res[k])
            hs.append((res["hindsight_b1"], res["hindsight_batch"]))
        for k, name in (("mess", "MESS+"), ("batching", "batching (2 s)")):
            xs = rs[k]
            sav = "" if k == "mess" else \
                f"{np.mean([100 * (1 - x.cost_usd / m.cost_usd) for x, m in zip(xs, rs['mess'])]):.0f} %"
            lines.append(f"| {a} | {name} | {np.mean([x.satisfaction for x in xs]):.4f} "
                         f"[{min(x.satisfaction for x in xs):.4f}] | "
                         f"{sum(x.satisfaction >= a - 0.01 for x in xs)}/{len(xs)} | "
                         f"{np.mean([x.cost_usd for x in xs]):.4f} | {sav} | "
                         f"{np.mean([h[0].cost_usd for h in hs]):.4f} / {np.mean([h[1].cost_usd for h in hs]):.4f} |")
        log(f"simulated alpha {a} done")


def window_solvers(sps, alphas, lines):
    """The batching router's window planners side by side (20 req/s, max_wait_s = 2, seed 0)."""
    lines += ["", "Window planners of the batching router (20 req/s, `max_wait_s = 2`, seed 0, each fold): "
                  "`heuristic` (Numba: amortized start, single and group moves), `exact` (every window an "
                  "integer program, HiGHS, warm-started at the heuristic's plan), `auto` (exact up "
                  f"to {on.EXACT_MAX_REQUESTS} requests; the default is `heuristic`). `improved`: windows where HiGHS's plan beat the "
                  "heuristic's (all windows it solved were proven optimal where `proven` equals `exact`).", "",
              "| alpha | fold | planner | satisfaction | cost $ | windows | exact / proven / improved | "
              "planning ms per window (mean) |", "|---|---|---|---|---|---|---|---|"]
    for alpha in alphas:
        for f, sp in enumerate(sps):
            for solver in ("heuristic", "exact", "auto"):
                r = on.BatchingRouter(sp.stream.model_names, alpha=alpha, max_wait_s=2.0, window_solver=solver,
                                      predictor=copy.deepcopy(sp.predictor), seed=0)
                plan, spent = r.plan, [0.0]

                def timed(rows, t, plan=plan, spent=spent):
                    t0 = time.perf_counter()
                    out = plan(rows, t)
                    spent[0] += time.perf_counter() - t0
                    return out
                r.plan = timed
                res = on.replay(sp.stream, r, rate_per_s=20.0, seed=0)
                nw = len(r.window_sizes)
                lines.append(f"| {alpha} | {f} | {solver} | {res.satisfaction:.4f} | {res.cost_usd:.4f} | {nw} | "
                             f"{r.windows_exact} / {r.windows_proven} / {r.windows_improved} | "
                             f"{1e3 * spent[0] / max(nw, 1):.1f} |")
                log(lines[-1])


def cost_models(sps, alphas, lines):
    """Expected output tokens from the running per-(task, model) means vs a TextUtility regression."""
    lines += ["", "Cost model of the routers' expected cost (20 req/s, seed 0; batching with `max_wait_s = 2`): "
                  "the running mean of a model's output tokens on the request's task (default), or "
                  "`cost_model=ro.proxy.TextUtility().fit(train)` predicting each request's output tokens on "
                  "each model from its text (ECCOS's multi-objective predictor).", "",
              "| alpha | fold | router | cost model | satisfaction | cost $ |", "|---|---|---|---|---|---|"]
    for f, sp in enumerate(sps):
        if sp.train.data is None:
            lines.append("| | | | (skipped: the stream has no texts) | | |")
            return
        tu = ro.proxy.TextUtility().fit(sp.train.data)
        for alpha in alphas:
            for name, cm in (("running means", None), ("TextUtility", tu)):
                for label, R, kw in (("MESS+", on.MessPlusRouter, {}), ("batching", on.BatchingRouter,
                                                                       dict(max_wait_s=2.0))):
                    r = R(sp.stream.model_names, alpha=alpha, predictor=copy.deepcopy(sp.predictor), seed=0,
                          cost_model=cm, **kw)
                    res = on.replay(sp.stream, r, rate_per_s=20.0, seed=0)
                    lines.append(f"| {alpha} | {f} | {label} | {name} | {res.satisfaction:.4f} | {res.cost_usd:.4f} |")
                    log(lines[-1])


def warm_start(sps, alphas, seeds, lines):
    """Q_0 = 0 (MESS+) vs the queue warm-started at on.equilibrium_queue on the training split."""
    lines += ["", "Warm-started queue: `initial_queue=on.equilibrium_queue(router, split.train)` (the service "
                  "level's multiplier in the per-request Lagrangian, from the predictor on the training half; "
                  "no outcome read) against MESS+'s `Q_0 = 0`; 20 req/s, batching with `max_wait_s = 2`; "
                  f"{len(sps)} folds x seeds {seeds[0]}..{seeds[-1]}; mean [min, max]. The certificate is "
                  "`alpha - (Q_T - Q_0) / T`.", "",
              "| alpha | router | Q_0 | satisfaction | met | (Q_T - Q_0)/T | cost $ |", "|---|---|---|---|---|---|---|"]
    for alpha in alphas:
        for label, R, kw in (("MESS+", on.MessPlusRouter, {}), ("batching", on.BatchingRouter, dict(max_wait_s=2.0))):
            q0s = [on.equilibrium_queue(R(sp.stream.model_names, alpha=alpha, predictor=copy.deepcopy(sp.predictor),
                                          **kw), sp.train) for sp in sps]
            for warm in (False, True):
                if warm and not all(np.isfinite(q0s)):
                    lines.append(f"| {alpha} | {label} | inf | (no queue meets alpha in prediction on the training "
                                 f"half: nothing to warm-start at) | | | |")
                    continue
                runs = []
                for sp, q0 in zip(sps, q0s):
                    for seed in seeds:
                        r = R(sp.stream.model_names, alpha=alpha, predictor=copy.deepcopy(sp.predictor), seed=seed,
                              initial_queue=q0 if warm else 0.0, **kw)
                        runs.append(on.replay(sp.stream, r, rate_per_s=20.0, seed=seed))
                sat = np.array([x.satisfaction for x in runs])
                qt = np.array([x.queue_growth / max(x.n_feedback, 1) for x in runs])
                cost = np.array([x.cost_usd for x in runs])
                q0_txt = " / ".join(f"{q:.3g}" for q in q0s) if warm else "0"
                lines.append(f"| {alpha} | {label} | {q0_txt} | {sat.mean():.4f} [{sat.min():.4f}, {sat.max():.4f}] | "
                             f"{int((sat >= alpha - 0.01).sum())}/{len(runs)} | {qt.mean():.4f} | "
                             f"{cost.mean():.3f} [{cost.min():.3f}, {cost.max():.3f}] |")
                log(lines[-1])


def figure(sp, alpha, path, lines):
    r0 = on.MessPlusRouter(sp.stream.model_names, alpha=alpha).bind(sp.stream)
    b0 = on.BatchingRouter(sp.stream.model_names, alpha=alpha, max_wait_s=2.0).bind(sp.stream)
    results = {}
    lines += ["", "| router | V | satisfaction | Q_T | cost $ |", "|---|---|---|---|---|"]
    for mult in (0.3, 1.0, 3.0):
        for name, r, base in (("MESS+", on.MessPlusRouter, r0.V_resolved), ("batching", on.BatchingRouter,
                                                                            b0.V_resolved)):
            kw = dict(max_wait_s=2.0) if r is on.BatchingRouter else {}
            V = base * mult
            res = on.replay(sp.stream, r(sp.stream.model_names, alpha=alpha, V=V,
                                         predictor=copy.deepcopy(sp.predictor), **kw), rate_per_s=20.0, seed=0)
            results[f"{name}, V = {mult:g} x default"] = res
            lines.append(f"| {name} | {V:.4g} ({mult:g} x default) | {res.satisfaction:.4f} | "
                         f"{res.final_queue:.2f} | {res.cost_usd:.4f} |")
    try:
        on.plot_time_series(results, str(path), title=f"{sp.description}; alpha = {alpha}, 20 req/s")
        lines += ["", f"![online]({path.relative_to(HERE)})"]
    except ImportError:
        lines += ["", "(figure skipped: matplotlib is not installed)"]


def overhead(sp, lines):
    s = sp.stream
    r = on.MessPlusRouter(s.model_names, alpha=0.85, c=0.0, predictor=copy.deepcopy(sp.predictor)).bind(s)
    r.Q = 3.0
    n = s.n_requests
    for i in range(200):                     # warm-up
        r.route(i % n)
    times = []
    for i in range(5000):
        t0 = time.perf_counter()
        r.route(i % n)
        times.append(time.perf_counter() - t0)
    route_us = 1e6 * float(np.median(times))
    b = on.BatchingRouter(s.model_names, alpha=0.85, max_wait_s=2.0, c=0.0,
                          predictor=copy.deepcopy(sp.predictor)).bind(s)
    b.Q = 3.0
    t = int(np.bincount(s.instance.query_task).argmax())
    rows = np.flatnonzero(s.instance.query_task == t)
    rows = np.resize(rows, 256)
    b.plan(rows, t)                          # warm-up (Numba compile)
    wt = []
    for _ in range(200):
        t0 = time.perf_counter()
        b.plan(rows, t)
        wt.append(time.perf_counter() - t0)
    win_ms = 1e3 * float(np.median(wt))
    lines += ["", f"Decision overhead after warm-up (median; {s.instance.n_models} models, "
                  f"{s.instance.n_options} options): MESS+ `route()` **{route_us:.1f} µs** per request "
                  f"(5,000 calls); a 256-request window planned (prediction + Numba planner) in "
                  f"**{win_ms:.2f} ms** (200 runs). Same as "
                  f"`pytest benchmarks/bench_online_overhead.py --benchmark-only`."]
    return route_us, win_ms


def write_section(text: str, path: Path) -> None:
    old = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in old and END in old:
        new = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one fold, fewer sweeps; print, do not write")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    sps, real = splits([0] if args.quick else [0, 1])
    lines = ["## (f) Online: MESS+ and the batching router under a service level", "",
             f"`python benchmarks/bench_online.py` ({time.strftime('%Y-%m-%d')}). Stream: "
             + (sps[0].description if real else "**RouterBench files not found: simulated Qwen3 stream** "
                + sps[0].description) + ". " + sps[0].stream.source + ". Poisson arrivals; c = 0.1; V default "
             "(`ro.online.DEFAULT_V_SCALE`). Cost includes exploration (every model answers an exploring "
             "request). `x hindsight`: cost over the hindsight optimum (b = 1 for MESS+ and random, with "
             "batching for the batching router), which knows every outcome in advance. `x offline plan`: cost over "
             "the offline plan made with the same offline-fitted predictor (`ro.online.offline_plan`: every request "
             "known in advance, batches across the whole stream, outcomes unknown; '-' when it predicts no plan "
             "reaching alpha), which separates what being online costs from what prediction errors cost.", ""]
    table_alpha(sps, (0.75, 0.85) if args.quick else (0.75, 0.85, 0.90), (0,) if args.quick else tuple(range(5)),
                lines)
    sweep(sps[0], 0.85, (0.5, 2) if args.quick else (0.1, 0.5, 2, 10), (5, 20) if args.quick else (1, 5, 20),
          lines)
    window_solvers(sps, (0.75, 0.85) if args.quick else (0.75, 0.85, 0.90), lines)
    cost_models(sps, (0.75, 0.85), lines)
    warm_start(sps, (0.85,) if args.quick else (0.85, 0.90), (0,) if args.quick else tuple(range(5)), lines)
    simulated(lines, (0,) if args.quick else (0, 1, 2))
    fig = HERE / "figures" / "online_v.png"
    fig.parent.mkdir(exist_ok=True)
    figure(sps[0], 0.85, fig, lines)
    overhead(sps[0], lines)
    lines += ["", f"Total {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        write_section(text, HERE / "RESULTS.md")
        log("wrote the online section of benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
