"""Every claim re-measured on what real models answered (RouterBench, RouteLLM, RouterArena).

Run from the repository root (a few minutes on 2 shared cores)::

    python benchmarks/bench_real.py             # all datasets; writes the section of RESULTS.md + figure
    python benchmarks/bench_real.py --quick     # RouterArena and GSM8K only, 6 budgets; writes nothing
    python benchmarks/bench_real.py --no-write  # print only

Protocol, per dataset
---------------------
- Data: the loaders of :mod:`robatch_opt.datasets`; rows observed on every model
  (``dropna``); RouteLLM without its 17 contaminated prompts (as RouteLLM evaluates).
- Predictions cross-fitted: 5 folds (seed 0); ``TextUtility()`` (the default predictor) and
  ``TaskMeanUtility()`` fitted on four folds predict the fifth. Plans are then made on all
  queries at once from these out-of-fold predictions (each query's prediction comes from a
  predictor that never saw it).
- Plans use the predicted utilities and the queries' known costs (the data's token split:
  input tokens and the real output tokens; a variant plans with *predicted* output tokens).
- Grading, for every strategy, by :func:`robatch_opt.evaluate` on the instance whose utilities
  are the **real outcomes** and whose costs are the **real costs**. The data holds no batched
  answers: a query answered in a batch of ``b`` realizes its real outcome times the retention
  ``r_k(b)`` fitted by ``fit_degradation()`` on the published BatchPrompt observations
  (models it does not know: predicted from their mean accuracy in the data as capability).
- Strategies at each budget: joint (routing + batching, b in 1, 2, 4, 8; greedy), routing-only
  (b = 1; greedy), RouteLLM's threshold router (strong = most accurate predicted, weak = most
  accurate predicted among models costing at most half as much), ECCOS's local rule (alpha
  bisected to the budget, no caps), every single model alone, and the oracle (joint plan made
  from the real outcomes).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")        # BLAS threads oversubscribe a shared 2-core machine (10x slower)

import argparse  # noqa: E402
import ast  # noqa: E402
import csv  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import robatch_opt as ro  # noqa: E402
from robatch_opt import baselines as B  # noqa: E402
from robatch_opt.proxy import TaskMeanUtility, TextUtility, brier_score, expected_calibration_error  # noqa: E402

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real"
SIZES = (1, 2, 4, 8)
FOLDS = 5
START, END = "<!-- bench_real:begin -->", "<!-- bench_real:end -->"
STRATS = ("joint", "routing-only", "routellm-threshold", "eccos-local", "oracle")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ data
def datasets(quick: bool) -> dict:
    out = {}
    if not quick:
        out["RouterBench (ARC-C + MBPP + Winogrande, 11 models)"] = \
            lambda: ro.datasets.load_routerbench(REAL / "routerbench").dropna()

        def mmlu():
            d = ro.datasets.load_routellm(REAL / "routellm", drop_contaminated=True)
            return d.select(np.array([t.startswith("mmlu") for t in np.array(d.task_names)[d.task]]))
        out["RouteLLM MMLU (GPT-4-1106 vs Mixtral)"] = mmlu
    out["RouteLLM GSM8K (GPT-4-1106 vs Mixtral)"] = \
        lambda: ro.datasets.load_routellm(REAL / "routellm" / "gsm8k_responses.csv", drop_contaminated=True)
    out["RouterArena (Claude-3-Haiku vs Gemini-2.0-Flash)"] = \
        lambda: ro.datasets.load_routerarena(REAL / "routerarena")
    return out


def crossfit(data):
    fold = np.random.default_rng(0).permutation(data.n_queries) % FOLDS
    U = np.empty(data.outcome.shape)
    M = np.empty(data.outcome.shape)
    O = np.empty(data.outcome.shape)
    blends = []
    for f in range(FOLDS):
        tr, te = data.select(fold != f), data.select(fold == f)
        tu = TextUtility().fit(tr)
        U[fold == f] = tu.predict(te)
        O[fold == f] = tu.predict_output_tokens(te)
        M[fold == f] = TaskMeanUtility().fit(tr).predict(te)
        blends.append(tu.blend_)
    return U, M, O, np.array(blends)


# ---------------------------------------------------------------------------- grading
def full_option(inst, plan) -> np.ndarray:
    """Option indices of ``inst`` for a plan made on a restriction with the same models."""
    index = {kb: j for j, kb in enumerate(inst.options)}
    return np.array([index[(int(k), int(b))] for k, b in zip(plan.model, plan.batch_size)], dtype=np.int64)


class Runner:
    def __init__(self, data, U):
        self.data = data
        self.pred = data.instance(U, batch_sizes=SIZES)
        self.real = data.instance(data.outcome, batch_sizes=SIZES)
        self.route = B.routing_only(self.pred)
        self.real_route = B.routing_only(self.real)

    def grade(self, option):
        ev = ro.evaluate(self.real, option)
        return ev.cost_usd, ev.mean_utility, option

    def run(self, strategy: str, budget: float):
        try:
            if strategy == "joint":
                p = ro.solve(self.pred, budget, method="greedy")
                return self.grade(full_option(self.real, p))
            if strategy == "routing-only":
                p = ro.solve(self.route, budget, method="greedy")
                return self.grade(full_option(self.real, p))
            if strategy == "routellm-threshold":
                return self.grade(B.routellm_threshold(self.pred, budget).option)
            if strategy == "eccos-local":
                return self.grade(B.eccos_local_at_budget(self.pred, budget).option)
            if strategy == "oracle":
                p = ro.solve(self.real, budget, method="greedy")
                return self.grade(full_option(self.real, p))
            if strategy == "oracle-routing":
                p = ro.solve(self.real_route, budget, method="greedy")
                return self.grade(full_option(self.real, p))
        except ro.InfeasibleBudgetError:
            return None
        raise ValueError(strategy)

    def cost_to_reach(self, strategy: str, target: float, hi: float, iters: int = 22):
        """Smallest budget (bisection) whose realized accuracy reaches ``target``; its realized cost."""
        top = self.run(strategy, hi)
        if top is None or top[1] < target - 1e-12:
            return None
        lo_b, hi_b, best = 0.0, hi, top
        for _ in range(iters):
            mid = 0.5 * (lo_b + hi_b)
            r = self.run(strategy, mid)
            if r is not None and r[1] >= target - 1e-12:
                hi_b, best = mid, r
            else:
                lo_b = mid
        return best


# ---------------------------------------------------------------------------- sections
def pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def token_rule_errors() -> list[str]:
    """The chars/4 rule against real counts: RouterArena's token usage, RouterBench's cost-implied totals."""
    out = ["### Token counts: the characters / 4 rule against real counts", "",
           "| source | model | what | real tokens (mean) | rule (mean) | mean abs. rel. error | median ratio rule/real |",
           "|---|---|---|---:|---:|---:|---:|"]
    for f in sorted((REAL / "routerarena").glob("*.jsonl")):
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        for what, text_key, tok_key in (("input", "question", "input_tokens"), ("output", "generated_answer", "output_tokens")):
            real = np.array([r["token_usage"][tok_key] for r in rows], float)
            rule = np.array([len(r[text_key] or "") / 4 for r in rows], float)
            ok = real > 0
            err = np.abs(rule[ok] - real[ok]) / real[ok]
            out.append(f"| RouterArena | {f.stem} | {what} | {real.mean():.1f} | {rule.mean():.1f} | "
                       f"{100 * err.mean():.1f} % | {np.median(rule[ok] / real[ok]):.3f} |")
    csv.field_size_limit(sys.maxsize)
    prices = ro.datasets.PRICES_PER_MTOK
    for f in sorted((REAL / "routerbench").glob("*.csv")):
        with open(f, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for m, (p_in, p_out) in prices.items():
            if p_in != p_out or m + "|total_cost" not in rows[0]:
                continue       # only equal-price models: the cost gives input + output tokens exactly
            real = np.array([float(r[m + "|total_cost"]) * 1e6 / p_in for r in rows])
            rule = np.array([(sum(len(s) for s in ast.literal_eval(r["prompt"])) + len(r[m + "|model_response"])) / 4
                             for r in rows])
            err = np.abs(rule - real) / real
            out.append(f"| RouterBench {f.stem.replace('_train', '')} | {m} | input + output | {real.mean():.1f} | "
                       f"{rule.mean():.1f} | {100 * err.mean():.1f} % | {np.median(rule / real):.3f} |")
    out += ["", "RouterBench's open models are billed by one tokenizer count (the cost / price is an integer for "
                "every row); the rule's error there is input + output together.", ""]
    return out


def section(name: str, data, quick: bool, figs: dict) -> tuple[list[str], dict]:
    t0 = time.perf_counter()
    log(f"{name}: n={data.n_queries}, K={data.n_models}; cross-fitting")
    U, M, O, blends = crossfit(data)
    t_fit = time.perf_counter() - t0
    out = [f"### {name}", "",
           f"{data.n_queries} queries (observed on every model), {len(set(data.task.tolist()))} tasks, "
           f"{data.n_models} models; cross-fitting took {t_fit:.0f} s.", ""]
    # -- calibration (acceptance 5)
    out += ["Calibration on held-out folds (Brier score, expected calibration error with 10 bins); "
            "`TextUtility()` (default) against the per-(task, model) mean; blend = what the inner cross-validation "
            "on the training folds kept, per fold (mean over folds): 0 the task mean, 0.5 the pooled difficulty, "
            "1 difficulty and the model's own classifier:", "",
            "| model | Brier text | Brier task mean | ECE text | ECE task mean | blend | text <= mean |",
            "|---|---:|---:|---:|---:|---:|:-:|"]
    calib = {}
    for k, m in enumerate(data.model_names):
        y = data.outcome[:, k]
        bt, bm = brier_score(U[:, k], y), brier_score(M[:, k], y)
        et, em = expected_calibration_error(U[:, k], y), expected_calibration_error(M[:, k], y)
        calib[m] = (bt, bm)
        out.append(f"| {m} | {bt:.4f} | {bm:.4f} | {et:.4f} | {em:.4f} | {blends[:, k].mean():.2f} | "
                   f"{'yes' if bt <= bm + 1e-12 else '**no**'} |")
    out.append("")
    # -- output tokens / costs
    shared = data.system_tokens[data.task] + data.input_tokens
    pred_cost = (shared[:, None] * data.price_in + O * data.price_out) / 1e6
    out += ["Predicted cost per query (known input, predicted output tokens) vs the real cost, held-out folds:", "",
            "| model | real total $ | predicted total $ | ratio | median abs. rel. error per query |",
            "|---|---:|---:|---:|---:|"]
    for k, m in enumerate(data.model_names):
        c = data.cost_usd[:, k]
        rel = np.abs(pred_cost[:, k] - c) / np.maximum(c, 1e-15)
        out.append(f"| {m} | {c.sum():.4f} | {pred_cost[:, k].sum():.4f} | {pred_cost[:, k].sum() / c.sum():.3f} | "
                   f"{100 * np.median(rel):.1f} % |")
    real_out = data.real_output_tokens
    if real_out is not None:
        t_in = data.real_input_tokens
        # The cost-implied count holds each model's extra input tokens priced at the output rate; take them off.
        pred_real_out = O - (t_in - shared[:, None]) * data.price_in / data.price_out
        out += ["", "Output tokens (the prediction minus each model's extra input tokens, against RouterArena's "
                    "real output counts):", "", "| model | real output tokens (mean) | predicted (mean) | mean abs. error | median abs. rel. error |",
                "|---|---:|---:|---:|---:|"]
        for k, m in enumerate(data.model_names):
            r = real_out[:, k]
            out.append(f"| {m} | {r.mean():.1f} | {pred_real_out[:, k].mean():.1f} | "
                       f"{np.abs(pred_real_out[:, k] - r).mean():.1f} | "
                       f"{100 * np.median(np.abs(pred_real_out[:, k] - r) / np.maximum(r, 1)):.1f} % |")
    if data.source == "RouteLLM" and any(t.startswith("mmlu") for t in data.task_names):
        out += ["", "(MMLU has no response texts, so every output is the stated 1 token and the cost is known exactly "
                    "from the prompt: the cost prediction is trivially exact here.)"]
    out.append("")
    # -- plans
    run = Runner(data, U)
    single = {m: (float(data.cost_usd[:, k].sum()), float(np.mean(data.outcome[:, k])))
              for k, m in enumerate(data.model_names)}
    costs = sorted(c for c, _ in single.values())
    n_grid = 6 if quick else 12
    grid = np.unique(np.r_[np.geomspace(costs[0], costs[-1], n_grid), costs])
    log(f"{name}: {len(grid)} budgets x {len(STRATS)} strategies")
    curves = {s: [] for s in STRATS}
    for b in grid:
        for s in STRATS:
            r = run.run(s, float(b))
            if r is not None:
                curves[s].append((float(b), r[0], r[1]))
    deg = ro.proxy.fit_degradation()
    caps = {m: min(float(np.mean(data.outcome[:, k])), 0.99) for k, m in enumerate(data.model_names)}
    out += [f"Realized accuracy (mean real outcome x retention) and realized cost at {len(grid)} budgets "
            "(each single model's real total cost among them):", "",
            "| budget $ | " + " | ".join(STRATS) + " |", "|---:|" + "---:|" * len(STRATS)]
    for j, b in enumerate(grid):
        cells = []
        for s in STRATS:
            hit = [r for r in curves[s] if r[0] == b]
            cells.append(f"{hit[0][2]:.4f} (${hit[0][1]:.3f})" if hit else "infeasible")
        out.append(f"| {b:.4f} | " + " | ".join(cells) + " |")
    out += ["", "Retention used for batched answers, r_k(b) at b = 2, 4, 8: " + "; ".join(
        f"{m} " + "/".join(f"{deg.retention(m, b, capability=None if m in deg.rate else caps[m]):.3f}" for b in (2, 4, 8))
        for m in data.model_names) + ".", ""]
    # -- acceptance 3: routing only at each single model's cost
    out += ["Routing only (b = 1), at a budget equal to each single model's real total cost: realized accuracy "
            "of the plan vs the model's own (per task: where the plan falls short of the model):", "",
            "| model | budget $ | model acc. | plan acc. | plan cost $ | >= | tasks where the plan is below the model |",
            "|---|---:|---:|---:|---:|:-:|---|"]
    acc3 = {}
    task_names = np.array(data.task_names)
    for k, m in enumerate(data.model_names):
        c, a = single[m]
        r = run.run("routing-only", c)
        if r is None:
            out.append(f"| {m} | {c:.4f} | {a:.4f} | infeasible | | | |")
            continue
        cost, acc, option = r
        ok = acc >= a - 1e-12
        acc3[m] = (a, acc, ok)
        real_u = run.real.utility[np.arange(data.n_queries), option]
        short = []
        for t in np.unique(data.task):
            rows = data.task == t
            pa, ma = real_u[rows].mean(), data.outcome[rows, k].mean()
            if pa < ma - 1e-12:
                short.append(f"{task_names[t]} ({pa:.3f} < {ma:.3f}, n={rows.sum()})")
        shown = short if len(short) <= 6 else short[:6] + [f"... {len(short) - 6} more of {len(np.unique(data.task))}"]
        out.append(f"| {m} | {c:.4f} | {a:.4f} | {acc:.4f} | {cost:.4f} | {'yes' if ok else '**no**'} | "
                   f"{'; '.join(shown) or '-'} |")
    out.append("")
    # -- acceptance 4: cost at matched accuracy vs the most accurate single model
    best_m = max(single, key=lambda m: single[m][1])
    c_best, a_best = single[best_m]
    hi = max(costs) * 1.0
    out += [f"Cost to reach the accuracy of the most accurate single model ({best_m}: {a_best:.4f} at "
            f"${c_best:.4f}) and 95 % of it (realized accuracy; smallest budget found by bisection):", "",
            "| strategy | highest realized acc. on the budget grid | cost at 100 % | saved vs the model | "
            "cost at 99 % | saved | cost at 95 % | saved vs the model |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    matched = {}
    for s in ("joint", "routing-only", "routellm-threshold", "eccos-local", "oracle"):
        top = max([r[2] for r in curves[s]] or [float("nan")])
        row = [f"{top:.4f}"]
        for frac in (1.0, 0.99, 0.95):
            r = run.cost_to_reach(s, frac * a_best, hi)
            matched[(s, frac)] = None if r is None else r[0]
            row += ["not reached", "-"] if r is None else [f"${r[0]:.4f}", pct(1 - r[0] / c_best)]
        out.append(f"| {s} | " + " | ".join(row) + " |")
    cheaper = {frac: all(matched[("joint", frac)] is not None and
                         (matched[(s, frac)] is None or matched[("joint", frac)] <= matched[(s, frac)] * (1 + 1e-9))
                         for s in ("routing-only", "routellm-threshold", "eccos-local")) for frac in (1.0, 0.99, 0.95)}
    out += ["", "'not reached': no budget up to the most expensive single model's cost makes the strategy's plan "
                "realize the target.",
            "", f"Joint at least as cheap as routing-only, RouteLLM threshold and ECCOS local: at 100 %: "
                f"{'yes' if cheaper[1.0] else '**no**'}; at 99 %: {'yes' if cheaper[0.99] else '**no**'}; at 95 %: {'yes' if cheaper[0.95] else '**no**'}."]
    # Where joint is not the cheapest, show what the joint plan realizes at the cheaper strategy's
    # cost: how far short it is and how many of its queries are batched (a batched correct answer
    # is credited r_k(b) < 1, so at exactly 100 % every batch costs accuracy for sure while a
    # routing swap may cost nothing on a given query).
    for frac in (1.0, 0.99, 0.95):
        if cheaper[frac]:
            continue
        rivals = [(matched[(s, frac)], s) for s in ("routing-only", "routellm-threshold", "eccos-local")
                  if matched[(s, frac)] is not None]
        if not rivals:
            continue
        c_rival, s_rival = min(rivals)
        r = run.run("joint", c_rival)
        if r is None:
            continue
        batched = int((np.array(run.real.options)[r[2]][:, 1] > 1).sum())
        short = frac * a_best - r[1]
        out.append(f"At {s_rival}'s cost for {100 * frac:.0f} % (${c_rival:.4f}) the joint plan realizes {r[1]:.5f} "
                   f"(target {frac * a_best:.5f}: short by {short:.2g}, i.e. {short * data.n_queries:.2g} of a query's "
                   f"outcome) at ${r[0]:.4f}, with {batched} queries batched.")
    out.append("")
    # -- variant: planning with predicted output tokens
    pdata = dataclasses.replace(data, output_tokens=O)
    pinst = pdata.instance(U, batch_sizes=SIZES)
    out += ["Joint plans made with *predicted* output tokens (the deployment setting), graded by real costs:", "",
            "| budget $ | realized cost $ | realized / budget | realized acc. | joint acc. with known costs |",
            "|---:|---:|---:|---:|---:|"]
    for b in grid[:: max(1, len(grid) // 6)]:
        try:
            p = ro.solve(pinst, float(b), method="greedy")
        except ro.InfeasibleBudgetError:
            continue
        cost, acc, _ = run.grade(full_option(run.real, p))
        known = [r for r in curves["joint"] if r[0] == b]
        out.append(f"| {b:.4f} | {cost:.4f} | {cost / b:.3f} | {acc:.4f} | "
                   f"{known[0][2]:.4f} |" if known else f"| {b:.4f} | {cost:.4f} | {cost / b:.3f} | {acc:.4f} | - |")
    out.append("")
    figs[name] = (curves, single)
    log(f"{name}: done in {time.perf_counter() - t0:.0f} s")
    return out, {"calib": calib, "acc3": acc3, "matched": matched, "best": (best_m, c_best, a_best),
                 "cheaper": cheaper}


def figure(figs: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(figs)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.4 * rows), dpi=110, squeeze=False)
    style = {"joint": "C0-o", "routing-only": "C1-s", "routellm-threshold": "C2-^", "eccos-local": "C3-v",
             "oracle": "k--"}
    for ax, (name, (curves, single)) in zip(axes.ravel(), figs.items()):
        for s, pts in curves.items():
            if pts:
                pts = sorted(pts, key=lambda r: r[1])
                ax.plot([p[1] for p in pts], [p[2] for p in pts], style[s], ms=3, lw=1.2, label=s)
        for m, (c, a) in single.items():
            ax.plot([c], [a], "x", color="grey", ms=6)
            ax.annotate(m.split("/")[-1][:18], (c, a), fontsize=6, color="grey", xytext=(3, -6),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("realized cost (USD, real costs)")
        ax.set_ylabel("realized accuracy (real outcomes x retention)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_section(text: str) -> None:
    path = HERE / "RESULTS.md"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{START}\n{text}\n{END}\n"
    if START in old and END in old:
        new = old[:old.index(START)] + block + old[old.index(END) + len(END) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="RouterArena and GSM8K only, 6 budgets; writes nothing")
    p.add_argument("--no-write", action="store_true", help="print the section, do not touch RESULTS.md")
    args = p.parse_args(argv)
    if not REAL.exists():
        print(f"real data not found at {REAL}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M")
    figs: dict = {}
    body, heads = [], {}
    for name, load in datasets(args.quick).items():
        md, facts = section(name, load(), args.quick, figs)
        body += md
        heads[name] = facts
    body += token_rule_errors()
    wall = time.perf_counter() - t0
    head = ["## (g) Real data: plans graded by what real models answered", "",
            f"Generated {started} by `python benchmarks/bench_real.py{' --quick' if args.quick else ''}` in "
            f"{wall / 60:.1f} minutes (load at end: `{os.getloadavg()[0]:.1f}`). Protocol: see the script's docstring. "
            "**The data holds no batched answers**: a query answered in a batch of b realizes its real outcome "
            "times the retention r_k(b) fitted on the published BatchPrompt observations; at b = 1 every number is "
            "a real outcome and a real cost.", "", "Headlines:", ""]
    for name, f in heads.items():
        best_m, c_best, a_best = f["best"]
        m = f["matched"]
        n_ok = sum(ok for _, _, ok in f["acc3"].values())
        n_cal = sum(bt <= bm + 1e-12 for bt, bm in f["calib"].values())
        head.append(f"- {name}: routing-only at each single model's cost reaches that model's accuracy for "
                    f"{n_ok}/{len(f['acc3'])} models; joint reaches {best_m}'s accuracy for "
                    f"{'$%.4f' % m[('joint', 1.0)] if m[('joint', 1.0)] is not None else 'n/a'} "
                    f"(saves {pct(None if m[('joint', 1.0)] is None else 1 - m[('joint', 1.0)] / c_best)}), 95 % of it for "
                    f"{'$%.4f' % m[('joint', 0.95)] if m[('joint', 0.95)] is not None else 'n/a'} "
                    f"(saves {pct(None if m[('joint', 0.95)] is None else 1 - m[('joint', 0.95)] / c_best)}); "
                    f"TextUtility's Brier <= the task mean's for {n_cal}/{len(f['calib'])} models.")
    head += ["", "![real data](figures/real_data.png)", ""]
    text = "\n".join(head + body)
    print(text)
    if not args.quick and not args.no_write:
        figure(figs, HERE / "figures" / "real_data.png")
        write_section(text)
        log("wrote benchmarks/RESULTS.md (section f) and benchmarks/figures/real_data.png")
    log(f"total {wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
