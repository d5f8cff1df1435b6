"""Serving benchmarks: a real batch-degradation curve, and the serving layer's own overhead.

Usage (from the repository root; needs ``pip install '.[serve-test]'``)::

    python benchmarks/bench_serve.py degradation   # Gemma 3 270M on llama.cpp, b = 1, 2, 4, 8 (~10 min)
    python benchmarks/bench_serve.py overhead      # parser throughput, executor overhead per call (~1 min)
    python benchmarks/bench_serve.py all           # both; writes the serving section of RESULTS.md

``degradation``: the bundled facts (country capitals, element symbols; sources in
``robatch_opt/data/serve_facts.json``) asked through ``ro.serve.run`` of plans that put every
query at one batch size b, on a real ``llama_cpp.server`` running Gemma 3 270M (base model,
Q4_K_M, one thread), completion API, numbered format, temperature 0, queries a batch left
unanswered NOT asked again (``ask_alone=False``: the accuracy of the batch itself).
Accuracy, prompt and completion tokens per query (as the server reported them), seconds per
query; the runs' observation log (``ServeResult.to_log``) fitted by
``ro.proxy.fit_degradation``, beside the curves fitted on the published BatchPrompt
observations (gpt-4, gpt-3.5-turbo).

``overhead``: (1) answers parsed per second by each format on well-formed and messy replies;
(2) ``ro.serve.run`` against a local instant server (the tests' fault server, no faults) vs a
bare httpx loop posting the same requests, both at one request in flight; the difference per
call is what the executor adds (prompt building, parsing, accounting, records), with and
without the fsynced journal.

Results go between the ``bench_serve`` markers of RESULTS.md (kept by ``run_all.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

import robatch_opt as ro  # noqa: E402
from robatch_opt import serve  # noqa: E402

BEGIN, END = "<!-- bench_serve:begin -->", "<!-- bench_serve:end -->"
MODEL = "gemma-3-270m"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- degradation
def _one_model_instance(task_sets, *, price_in=1.0, price_out=1.0):
    """One model (nominal prices), one task per task set, every batch size 1, 2, 4, 8."""
    n = sum(len(t.questions) for t in task_sets)
    qt = np.concatenate([np.full(len(t.questions), k) for k, t in enumerate(task_sets)])
    model = ro.Model(MODEL, price_in=price_in, price_out=price_out, context_window=32768, batch_sizes=(1, 2, 4, 8))
    tasks = [ro.Task(t.name, system_tokens=len(t.system_prompt) / 4) for t in task_sets]
    return ro.Instance(models=[model], tasks=tasks, query_task=qt, input_tokens=np.full(n, 12.0),
                       output_tokens=np.full(n, 4.0), utility=np.full((n, 4), 0.5))


def degradation(n_per_task: int, batch_sizes=(1, 2, 4, 8), seed: int = 0) -> dict:
    import llama_server

    why = llama_server.available()
    if why:
        raise SystemExit(why)
    task_sets = [serve.facts(name, n_per_task, seed=seed) for name in serve.FACT_TASKS]
    questions = [q for t in task_sets for q in t.questions]
    accepted = [a for t in task_sets for a in t.accepted]
    grader = serve.exact_match(accepted)
    inst = _one_model_instance(task_sets)
    prompts = {t.name: t.system_prompt for t in task_sets}
    rows, logs = [], []
    with llama_server.LlamaServer(MODEL) as srv:
        eps = {MODEL: {"base_url": srv.base_url, "model": MODEL, "api": "completions", "max_tokens_per_answer": 12}}
        # Warm-up call (first request pays model paging and cache set-up).
        warm = serve.facts("capitals", 1, seed=seed + 1)
        w_inst = _one_model_instance([warm]).restrict(batch_sizes=[1])
        ro.serve.run(ro.solve(w_inst, budget=1e9, method="greedy"), w_inst, list(warm.questions), eps,
                     system_prompts={"capitals": warm.system_prompt}, max_concurrency=1, timeout_s=600)
        for b in batch_sizes:
            sub = inst.restrict(batch_sizes=[b])
            plan = ro.solve(sub, budget=1e9, method="greedy")
            assert set(plan.batch_size.tolist()) == {b}
            log(f"b = {b}: {len(plan.calls)} calls")
            res = ro.serve.run(plan, sub, questions, eps, system_prompts=prompts, max_concurrency=1,
                               timeout_s=600, ask_alone=False)
            obs = res.to_log(grader)
            logs.append(obs)
            for k, t in enumerate(task_sets):
                on = [c for c in res.calls if c.task == t.name]
                nq = sum(c.n_questions for c in on)
                sel = obs.task == t.name
                rows.append({"task": t.name, "batch_size": b, "n_questions": nq,
                             "accuracy": float(obs.outcome[sel].mean()),
                             "answered": sum(a is not None for c in on for a in c.answers) / nq,
                             "prompt_tokens_per_query": sum(c.prompt_tokens for c in on) / nq,
                             "completion_tokens_per_query": sum(c.completion_tokens for c in on) / nq,
                             "seconds_per_query": sum(c.seconds for c in on) / nq,
                             "truncated_calls": sum(c.finish_reason == "length" for c in on),
                             # Where the first answer goes: to the first question, or to the last?
                             "a1_right_for_q1": sum(bool(c.answers[0]) and grader(c.answers[0], c.query_ids[0]) > 0
                                                    for c in on) / len(on),
                             "a1_right_for_qb": sum(bool(c.answers[0]) and grader(c.answers[0], c.query_ids[-1]) > 0
                                                    for c in on) / len(on)})
                log(f"  {t.name}: accuracy {rows[-1]['accuracy']:.3f}, answered {rows[-1]['answered']:.3f}, "
                    f"{rows[-1]['prompt_tokens_per_query']:.1f} + {rows[-1]['completion_tokens_per_query']:.1f} "
                    f"tokens/query, {rows[-1]['seconds_per_query']:.2f} s/query")
    merged = _concat(logs, inst)
    deg = ro.proxy.fit_degradation(merged)
    published = ro.proxy.fit_degradation()
    return {"rows": rows, "n_per_task": n_per_task, "seed": seed, "sources": {t.name: t.source for t in task_sets},
            "fit": {"rate": deg.rate[MODEL], "exponent": deg.exponent[MODEL], "task_severity": deg.task_severity,
                    "rmse": deg.rmse[MODEL],
                    "observed": [(t, int(b), float(r)) for t, b, r in zip(deg.observations.task,
                                                                          deg.observations.batch_size,
                                                                          deg.observations.retention)],
                    "curve": {int(b): float(deg.retention(MODEL, b)) for b in (2, 4, 8, 16, 32, 64)},
                    "curve_by_task": {t: {int(b): float(deg.retention(MODEL, b, task=t)) for b in (2, 4, 8)}
                                      for t in deg.task_severity}},
            "published": {m: {int(b): float(published.retention(m, b)) for b in (2, 4, 8, 16, 32, 64)}
                          for m in published.models}}


def _concat(logs, inst):
    cols = ("query_id", "task", "model", "batch_size", "outcome", "input_tokens", "output_tokens")
    data = {c: np.concatenate([np.asarray(getattr(lg, c)) for lg in logs]) for c in cols}
    return ro.proxy.ObservationLog(**data, models=inst)


# ------------------------------------------------------------------------------ overhead
def _replies(rng, b, n, messy):
    words = ["Rome", "Paris", "42", "Fe", "New Delhi", "Buenos Aires", "Na", "3.14", "yes", "no"]
    out = []
    for _ in range(n):
        ans = [words[int(i)] for i in rng.integers(0, len(words), b)]
        if messy:
            lines = [f"**A{j}:** {a}" if j % 2 else f"- A{j}) {a}" for j, a in enumerate(ans, 1)]
            rng.shuffle(lines)
            out.append("Sure, here are the answers:\n\n" + "\n".join(lines) + "\n\nHope this helps!")
        else:
            out.append("\n".join(f"A{j}: {a}" for j, a in enumerate(ans, 1)))
    return out


def parser_throughput(repeat: int = 5) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for fmt_name, fmt in (("numbered", serve.NumberedFormat()), ("json", serve.JsonArrayFormat())):
        for b in (1, 8):
            for messy in (False, True):
                if fmt_name == "json":
                    replies = [json.dumps([{"id": j, "answer": a} for j, a in
                                           enumerate(r.replace("**", "").split("\n"), 1)])
                               for r in _replies(rng, b, 2000, False)]
                    if messy:
                        replies = ["Here you go:\n```json\n" + r + "\n```" for r in replies]
                else:
                    replies = _replies(rng, b, 2000, messy)
                best = float("inf")
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    for r in replies:
                        fmt.parse(r, b)
                    best = min(best, time.perf_counter() - t0)
                rows.append({"format": fmt_name, "b": b, "messy": messy,
                             "answers_per_s": len(replies) * b / best, "replies": len(replies)})
                log(f"parse {fmt_name} b={b} messy={messy}: {rows[-1]['answers_per_s']:,.0f} answers/s")
    return rows


class _ServerProcess:
    """The tests' fault server (no faults) in its own process, so that its work does not share
    the client's interpreter (GIL) and the client's time is the executor's alone."""

    def __init__(self):
        import subprocess
        code = ("import sys, time; sys.path[:0] = [%r]; from fault_server import FaultServer; "
                "s = FaultServer(); print(s.base_url, flush=True); time.sleep(3600)" % str(ROOT / "tests"))
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        self.base_url = self.proc.stdout.readline().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def executor_overhead(n_calls: int = 300, rounds: int = 9) -> dict:
    import httpx
    from serve_plans import two_model_plan

    inst, plan = two_model_plan(n_calls, n_solo=n_calls)           # every query alone: n_calls calls
    assert len(plan.calls) == n_calls
    questions = [f"What is item {i} called?" for i in range(n_calls)]
    fmt = serve.NumberedFormat()
    with _ServerProcess() as srv:
        eps = {m: {"base_url": srv.base_url, "model": "fake-a", "api": "chat"} for m in ("model-a", "model-b")}
        bodies = [{"model": "fake-a", "max_tokens": 72, "temperature": 0.0,
                   "messages": fmt.messages("", [questions[int(q)] for q in c.query_ids])} for c in plan.calls]

        async def bare(conc: int) -> float:
            async with httpx.AsyncClient(trust_env=False, verify=False,
                                         limits=httpx.Limits(max_connections=conc)) as client:
                await client.get(srv.base_url + "/models")
                sem = asyncio.Semaphore(conc)

                async def one(body):
                    async with sem:
                        r = await client.post(srv.base_url + "/chat/completions", json=body)
                    r.json()
                t0, c0 = time.perf_counter(), time.process_time()
                await asyncio.gather(*(one(b) for b in bodies))
                return time.perf_counter() - t0, time.process_time() - c0

        def served(journal: bool, conc: int) -> float:
            with tempfile.TemporaryDirectory(dir=HERE) as d:         # the repository's disk, as a user's run
                t0, c0 = time.perf_counter(), time.process_time()
                res = ro.serve.run(plan, inst, questions, eps, max_concurrency=conc, check=False,
                                   journal=Path(d) / "j.jsonl" if journal else None)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert res.n_answered == n_calls
            return wall, cpu

        served(False, 1)
        asyncio.run(bare(1))                                         # warm-up: imports, first connections
        times: dict = {}
        for _ in range(rounds):                                      # interleaved, so load drifts hit all
            for conc in (1, 8):
                for kind, f in (("bare", lambda: asyncio.run(bare(conc))), ("run", lambda: served(False, conc)),
                                ("journal", lambda: served(True, conc))):
                    wall, cpu = f()
                    times.setdefault((kind, conc), []).append(wall / n_calls)
                    times.setdefault((kind + "_cpu", conc), []).append(cpu / n_calls)
        # The minimum over rounds: the least disturbed measurement of each (the machine is shared).
        med = {k: 1e3 * min(v) for k, v in times.items()}
        # fsync alone: one ~300-byte line appended and fsynced, the journal's unit of durability.
        with tempfile.TemporaryDirectory(dir=HERE) as d, open(Path(d) / "f", "ab") as fh:
            fs = []
            for _ in range(200):
                t0 = time.perf_counter()
                fh.write(b"x" * 300 + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
                fs.append(time.perf_counter() - t0)
        fsync_ms = 1e3 * statistics.median(fs)
        for conc in (1, 8):
            log(f"in flight {conc}: bare {med[('bare', conc)]:.3f} ms/call, run {med[('run', conc)]:.3f}, "
                f"run+journal {med[('journal', conc)]:.3f}; fsync {fsync_ms:.3f} ms")
    return {"n_calls": n_calls, "rounds": rounds, "fsync_ms": fsync_ms,
            "by_concurrency": {str(c): {"bare_ms": med[("bare", c)], "run_ms": med[("run", c)],
                                        "journal_ms": med[("journal", c)],
                                        "overhead_ms": med[("run", c)] - med[("bare", c)],
                                        "overhead_journal_ms": med[("journal", c)] - med[("bare", c)],
                                        "bare_cpu_ms": med[("bare_cpu", c)], "run_cpu_ms": med[("run_cpu", c)],
                                        "journal_cpu_ms": med[("journal_cpu", c)],
                                        "overhead_cpu_ms": med[("run_cpu", c)] - med[("bare_cpu", c)],
                                        "overhead_journal_cpu_ms": med[("journal_cpu", c)] - med[("bare_cpu", c)]}
                               for c in (1, 8)}}


# ------------------------------------------------------------------------------- report
def _pct(x):
    return f"{100 * x:.1f}%"


def section(data: dict) -> str:
    out = [BEGIN, "## (h) Serving: a real batch-degradation curve and the executor's overhead", ""]
    out.append(f"Python {platform.python_version()}, httpx {_version('httpx')}, "
               f"llama-cpp-python {_version('llama_cpp_python')}; the machine is shared (2 cores).")
    out.append("")
    deg = data.get("degradation", {}).get("result")
    parse_rows = data.get("overhead", {}).get("result", {}).get("parser")
    over = data.get("overhead", {}).get("result", {}).get("executor")
    if deg is not None:
        d = data["degradation"]
        n = deg["n_per_task"]
        out += [f"### Gemma 3 270M on llama.cpp: accuracy by batch size ({2 * n} questions: {n} capitals + "
                f"{n} element symbols, seed {deg['seed']})", "",
                f"Measured {d['when']} by `{d['command']}` in {d['minutes']:.1f} minutes.", "",
                "Every query of a run at one batch size b (`ro.serve.run`, completion API, numbered format, "
                "few-shot system prompt of 4 items, temperature 0, one llama.cpp thread, one request in flight); "
                "a query the batched reply left unanswered counts as wrong and is not asked again "
                "(`ask_alone=False`). Tokens are the server's own usage counts; seconds are wall time per call "
                "divided by its questions.", "",
                "*A1 = answer to Q1* / *to Qb*: fraction of calls whose first answer (`A1:`) is right for the "
                "call's first question / for its last one.", "",
                "| task | b | questions | accuracy | answered | prompt tokens / query | completion tokens / query "
                "| s / query | calls cut at max_tokens | A1 = answer to Q1 | A1 = answer to Qb |",
                "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in deg["rows"]:
            out.append(f"| {r['task']} | {r['batch_size']} | {r['n_questions']} | {r['accuracy']:.3f} | "
                       f"{_pct(r['answered'])} | {r['prompt_tokens_per_query']:.1f} | "
                       f"{r['completion_tokens_per_query']:.2f} | {r['seconds_per_query']:.3f} | "
                       f"{r['truncated_calls']} | {_pct(r['a1_right_for_q1'])} | {_pct(r['a1_right_for_qb'])} |")
        f = deg["fit"]
        out += ["", f"Fitted by `ro.proxy.fit_degradation` on the runs' observation log (`ServeResult.to_log`): "
                    f"`r(b) = exp(-c_t * a * (b - 1) ** p)` with a = {f['rate']:.4g}, p = {f['exponent']:.3g}, "
                    "task severities " + ", ".join(f"c[{t}] = {c:.3g}" for t, c in f["task_severity"].items())
                + f"; RMSE of the fitted vs observed retention ratios {f['rmse']:.3f}.", "",
                "Observed retention `acc(b) / acc(1)`: "
                + "; ".join(f"{t} b={b}: {r:.3f}" for t, b, r in f["observed"]) + ".", "",
                "Retention `r(b)` beside the curves fitted on the published BatchPrompt observations "
                "(Lin et al., ICLR 2024; gpt-4 and gpt-3.5-turbo observed at b = 16, 32, 64 only):", "",
                "| model | r(2) | r(4) | r(8) | r(16) | r(32) | r(64) | source |", "|:---|---:|---:|---:|---:|---:|---:|:---|"]
        bs = (2, 4, 8, 16, 32, 64)
        out.append(f"| Gemma 3 270M (typical task) | " + " | ".join(f"{_at(f['curve'], b):.3f}" for b in bs)
                   + " | measured here (b <= 8; larger b extrapolated) |")
        for t, c in f["curve_by_task"].items():
            out.append(f"| Gemma 3 270M, {t} | " + " | ".join(f"{_at(c, b):.3f}" for b in (2, 4, 8)) + " | | | | measured here |")
        for m, c in deg["published"].items():
            out.append(f"| {m} | " + " | ".join(f"{_at(c, b):.3f}" for b in bs) + " | published (b < 16 interpolated) |")
        out += ["", "Sources of the questions: " + " ".join(f"{t}: {s}" for t, s in deg["sources"].items()), ""]
    if parse_rows is not None:
        o = data["overhead"]
        out += ["### Parser throughput", "", f"Measured {o['when']} by `{o['command']}` (with the executor "
                f"overhead below) in {o['minutes']:.1f} minutes.", "",
                "Answers parsed per second, one process, best of 5 passes over 2,000 replies. *Messy*: numbered "
                "replies with a preamble, markdown labels (`**A3:**`, `- A3)`), shuffled order and a closing "
                "sentence; JSON replies inside a code fence.", "",
                "| format | b | messy | answers / s |", "|:---|---:|:---|---:|"]
        for r in parse_rows:
            out.append(f"| {r['format']} | {r['b']} | {'yes' if r['messy'] else 'no'} | {r['answers_per_s']:,.0f} |")
        out.append("")
    if over is not None:
        out += ["### Executor overhead per call", "",
                f"{over['n_calls']} calls of one question each against a local instant server (the tests' fault "
                "server, no faults, `http.server` threads, in its own process); best of "
                f"{over['rounds']} interleaved rounds; milliseconds per call (wall time / calls). *Bare*: an "
                "httpx loop posting the same request bodies with the same number in flight. *run*: "
                "`ro.serve.run` end to end (validation, plan calls, prompt building, parsing, accounting, "
                "records, result). *Journal*: the same with the fsynced journal on the repository's disk; "
                f"one fsync of a line there takes {over['fsync_ms']:.3f} ms (median of 200).", "",
                "| in flight | clock | bare (ms) | run (ms) | run + journal (ms) | overhead (ms) "
                "| overhead with journal (ms) |",
                "|---:|:---|---:|---:|---:|---:|---:|"]
        for c, r in over["by_concurrency"].items():
            out.append(f"| {c} | wall | {r['bare_ms']:.3f} | {r['run_ms']:.3f} | {r['journal_ms']:.3f} | "
                       f"{r['overhead_ms']:.3f} | {r['overhead_journal_ms']:.3f} |")
            out.append(f"| {c} | client CPU | {r['bare_cpu_ms']:.3f} | {r['run_cpu_ms']:.3f} | "
                       f"{r['journal_cpu_ms']:.3f} | {r['overhead_cpu_ms']:.3f} | {r['overhead_journal_cpu_ms']:.3f} |")
        out += ["", "*Client CPU*: the client process's CPU time per call (the server runs in another "
                "process), the steadier measure on a shared machine. With the journal, a call's fsync runs in a "
                "worker thread after its request has freed its slot, so it overlaps the next requests. "
                "Differences of a few tenths of a millisecond are within this machine's run-to-run noise "
                "(hence the negative values)."]
        out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def _at(curve: dict, b: int) -> float:
    """A curve's value at b (keys are ints when fresh, strings after a JSON round trip)."""
    return curve[b] if b in curve else curve[str(b)]


def _version(dist: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def write_section(text: str, path: Path = HERE / "RESULTS.md") -> None:
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("degradation", "overhead", "all", "report"),
                   help="report: rewrite the RESULTS.md section from benchmarks/results_serve.json, measuring nothing")
    p.add_argument("--n-per-task", type=int, default=64, help="questions per task (default 64)")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    command = "python benchmarks/bench_serve.py " + " ".join(argv if argv is not None else sys.argv[1:])
    # Parts measured by earlier runs are kept (with their own commands), so that the long
    # degradation run and the quick overhead run can be repeated separately.
    store = HERE / "results_serve.json"
    data = json.loads(store.read_text()) if store.exists() else {}
    if args.what in ("degradation", "all"):
        data["degradation"] = {"result": degradation(args.n_per_task), "command": command,
                               "minutes": (time.perf_counter() - t0) / 60, "when": time.strftime("%Y-%m-%d %H:%M")}
    if args.what in ("overhead", "all"):
        t1 = time.perf_counter()
        data["overhead"] = {"result": {"parser": parser_throughput(), "executor": executor_overhead()},
                            "command": command, "minutes": (time.perf_counter() - t1) / 60,
                            "when": time.strftime("%Y-%m-%d %H:%M")}
    text = section(data)
    if args.no_write:
        print(text)
    else:
        store.write_text(json.dumps(data, indent=1, default=str) + "\n")
        write_section(text)
        log("wrote the bench_serve section of benchmarks/RESULTS.md and benchmarks/results_serve.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
