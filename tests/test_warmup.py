"""The kernels' warm-up: its compile list, the compile shared between processes, interrupts.

The first solve after an install compiles the Numba kernels; ``warm_up`` shares that work
between this process and one child per further core (``robatch_opt.kernels.warmup``). The
list it shares out must cover what a solve calls (else the tiny solves compile the rest
serially, which is correct but slow), the children's work must reach the cache the next
process reads, and an interrupt must leave no child behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from proc_tree import children_of, runs

REPO = Path(__file__).resolve().parents[1]


def _env(cache: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cache is not None:
        env.pop("NUMBA_CACHE_DIR", None)
        env["ROBATCH_OPT_CACHE_DIR"] = str(cache)
    return env


_NEW_SIGNATURES = """
import json
import numba
import robatch_opt as ro
from robatch_opt.kernels import greedy_kernels as gk
from robatch_opt.kernels.warmup import COMPILE_JOBS, compile_kernels, warm_up
from robatch_opt.solvers import greedy as gr

def signatures():
    return {name: set(map(str, d.signatures)) for name, d in vars(gk).items() if hasattr(d, "signatures")}

compile_kernels(list(COMPILE_JOBS), processes=1)      # every listed kernel (from the session's cache)
before = signatures()
warm_up(quality=True, parallel=True, frontier=True, processes=1)     # the tiny solves of every part
# The large-instance paths on a small instance: parallel variants (two threads) and the
# restriction screen's kernels, then the serial screen on one thread.
gr.PARALLEL_MIN_CELLS = 0
inst = ro.workloads.llm(pool="qwen3", n=60, seed=0)
for threads in (2, 1):
    numba.set_num_threads(threads)
    for fraction in (0.0, 0.3, 1.0):
        ro.solve(inst, budget=ro.budget_from_fraction(inst, fraction), method="greedy")
    ro.solve(inst, min_mean_utility=0.9 * float(inst.utility.max(axis=1).mean()), method="greedy")
after = signatures()
print(json.dumps(sorted(f"{name} {s}" for name in after for s in after[name] - before.get(name, set()))))
"""


def test_the_compile_list_covers_every_kernel_the_warm_up_solves_call():
    # A kernel the solves call with argument types the list does not name would be compiled
    # by the tiny solves, one after another in this process: correct, but the shared compile
    # would no longer cover it. Named here so that a changed dtype is noticed.
    res = subprocess.run([sys.executable, "-c", _NEW_SIGNATURES], env={**_env(), "NUMBA_NUM_THREADS": "2"},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.splitlines()[-1]) == []


def test_the_shares_cover_each_job_once_and_balance_the_longest_first():
    from robatch_opt.kernels.warmup import COMPILE_JOBS, _shares

    for n in (1, 2, 3, 4):
        shares = _shares(["core", "quality"], n)
        jobs = [j for s in shares for j in s]
        assert sorted(jobs) == sorted([f"core:{k}" for k in range(len(COMPILE_JOBS["core"]))]
                                      + [f"quality:{k}" for k in range(len(COMPILE_JOBS["quality"]))])
        assert len(shares) == n
        load = [sum(COMPILE_JOBS[j.split(":")[0]][int(j.split(":")[1])][2] for j in s) for s in shares]
        longest = max(sec for part in ("core", "quality") for _, _, sec in COMPILE_JOBS[part])
        # Longest-processing-time-first: no share exceeds the mean by more than the longest job.
        assert max(load) <= sum(load) / n + longest + 1e-9


_LOADED = """
import json
from robatch_opt.kernels import greedy_kernels as gk
from robatch_opt.kernels.warmup import COMPILE_JOBS, compile_kernels
compile_kernels(["core"], processes=1)
stats = [getattr(gk, name).stats for name, _, _ in COMPILE_JOBS["core"]]
print(json.dumps([sum(s.cache_hits.values()) for s in stats] + [sum(s.cache_misses.values()) for s in stats]))
"""


def test_kernels_compiled_by_the_child_processes_load_in_the_next_process(tmp_path):
    cache = tmp_path / "cache"
    # The shared compile alone (no tiny solve after it, which would fill any gap a child left).
    res = subprocess.run([sys.executable, "-c",
                          "from robatch_opt.kernels.warmup import compile_kernels; compile_kernels(['core'], processes=2)"],
                         env=_env(cache), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    res = subprocess.run([sys.executable, "-c", _LOADED], env=_env(cache), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = json.loads(res.stdout.splitlines()[-1])
    n = len(counts) // 2
    assert counts[:n] == [1] * n            # every core kernel loaded from what the two processes wrote
    assert counts[n:] == [0] * n            # and none compiled again


def _compiling_children_of(pid: int) -> list[int]:
    return [c for c in children_of(pid) if runs(c, b"robatch_opt.kernels.warmup")]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: no compiling child is started")
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_shared_compile_leaves_no_child(tmp_path, sig, code):
    # Through the command line, which redelivers an interrupt that Numba's compile swallowed
    # (an exception raised inside its LLVM callback is lost; robatch_opt._interrupt).
    cmd = [sys.executable, "-m", "robatch_opt", "solve", "--method", "greedy", "--no-baselines"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path / "cache"), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        children: list[int] = []
        deadline = time.monotonic() + 120
        while not children and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            children = _compiling_children_of(proc.pid)
        assert children, f"no compiling child was seen: {proc.communicate()}"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, (proc.returncode, stderr)
    assert "Traceback" not in stderr
    for pid in children:                     # killed and reaped before the command ended
        assert not Path(f"/proc/{pid}").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]      # nothing written beside


@pytest.mark.parametrize("bad, message", [(0, "must be an integer >= 1, got 0"), (-2, "must be an integer >= 1, got -2"),
                                          (1.5, "must be an integer, got"), ("2", "must be an integer, got")])
def test_a_bad_process_count_is_refused_before_any_work(bad, message):
    import robatch_opt as ro

    with pytest.raises(ro.InstanceError, match=f"`processes`: {message}"):
        ro.warm_up(processes=bad)


def test_the_public_warm_up_compiles_every_listed_kernel_and_repeats_nothing():
    import robatch_opt as ro
    from robatch_opt.kernels import greedy_kernels as gk
    from robatch_opt.kernels.warmup import COMPILE_JOBS, _array_types, parts_for

    ro.warm_up(quality=True, parallel=True, frontier=True)     # the session's cache: loads
    ty = _array_types()
    for part in parts_for(quality=True, parallel=True, frontier=True):
        for name, args, _ in COMPILE_JOBS[part]:
            assert tuple(ty[a] for a in args) in getattr(gk, name).signatures, name
    assert ro.warm_up(quality=True, parallel=True, frontier=True) == 0.0


def test_with_the_jit_disabled_the_warm_up_runs_the_plain_functions(tmp_path):
    res = subprocess.run([sys.executable, "-c", "import robatch_opt as ro; print(ro.warm_up(processes=2) >= 0)"],
                         env={**_env(tmp_path / "cache"), "NUMBA_DISABLE_JIT": "1"}, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "True"
    assert not (tmp_path / "cache").exists()          # nothing compiled, nothing cached


def _child(root, cwd, env) -> int:
    """Run a compiling child as compile_kernels does (stdin held open until it ends)."""
    from robatch_opt.kernels.warmup import _CHILD

    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), "core:5"], env=env, cwd=cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=600)
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_child_imports_the_parents_package_or_stops(tmp_path):
    # A stale robatch_opt in the child's working directory is not imported: the parent's
    # folder goes first on the child's path.
    (tmp_path / "robatch_opt").mkdir()
    (tmp_path / "robatch_opt" / "__init__.py").write_text("raise SystemExit('the wrong package')\n")
    assert _child(REPO, tmp_path, _env(tmp_path / "cache")) == 0
    # A child that finds the package elsewhere than the parent's folder compiles nothing.
    (tmp_path / "elsewhere").mkdir()
    assert _child(tmp_path / "elsewhere", tmp_path / "elsewhere", _env(tmp_path / "cache2")) == 3
    assert [f for f in (tmp_path / "cache2").rglob("*") if f.suffix in (".nbi", ".nbc")] == []


def test_a_child_ends_when_its_parent_lets_go_of_its_stdin(tmp_path):
    from robatch_opt.kernels.warmup import _CHILD

    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(REPO), "core:0"], env=_env(tmp_path / "cache"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr      # ended by its watchdog, not by finishing its share


_WHERE = """
from robatch_opt.kernels.warmup import compile_kernels
compile_kernels(["frontier"], processes=1)
from robatch_opt.kernels import _cache
print(_cache._private_dir)
"""


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes")
@pytest.mark.parametrize("mode, trusted", [(0o700, True), (0o777, False)])
def test_the_temporary_fallback_cache_is_used_only_if_private(tmp_path, mode, trusted):
    # The user's cache folder cannot be written; the predictable temporary folder exists,
    # this user's own, closed (used) or open to everyone (not used: its pickles could be
    # anyone's; a private folder of the process instead, removed at exit).
    shared = tmp_path / f"robatch_opt-{os.getuid()}"
    shared.mkdir()
    shared.chmod(mode)
    env = {**_env(Path("/proc/not-writable")), "TMPDIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", _WHERE], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    cached = [f for f in shared.rglob("*") if f.suffix in (".nbi", ".nbc")]
    private = res.stdout.strip().splitlines()[-1]
    if trusted:
        assert cached and private == "None"
    else:
        assert cached == [] and private != "None"
        assert not Path(private).exists()              # removed when the process ended
