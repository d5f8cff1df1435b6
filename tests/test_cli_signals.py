"""The command line under real signals and real write failures (issue 12, items 2 and 3).

Each test runs ``python -m robatch_opt`` in a subprocess with its own temporary folder
(``TMPDIR``) so that any temporary file an engine leaves behind is seen, sends a real
SIGINT or SIGTERM while an exact engine is searching, and checks: the exit status (130 /
143), that it came promptly, that ``--out`` is byte-identical to what it was, and that no
process the command started is still running.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import robatch_opt as ro
from proc_tree import children_of

REPO = Path(__file__).resolve().parents[1]

#: A guard, not a speed measurement (tests assert no timings on these shared machines): an
#: interrupt that did not stop the engine would take the whole 120 s limit. The seconds
#: themselves are measured by benchmarks/bench_interrupts.py (the issue's figure is 2 s).
EXIT_WITHIN_S = 20.0


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_script(tmp: Path, script: str) -> subprocess.CompletedProcess:
    """``python -c script`` with this checkout on the path and ``tmp`` as its TMPDIR."""
    return subprocess.run([sys.executable, "-c", script], env=_env(tmp), capture_output=True, text=True,
                          timeout=120)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def big_instance(tmp_path_factory) -> Path:
    """An instance the exact engines cannot prove quickly (so they are mid-search when signalled)."""
    path = tmp_path_factory.mktemp("inst") / "inst.npz"
    ro.save(ro.workloads.llm(pool="qwen3", n=3000, seed=3), path)
    return path


CASES = [
    ("cpsat", []),
    ("milp", ["--solver", "highs"]),
    ("milp", ["--solver", "cbc"]),
]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("method, extra", CASES, ids=["cpsat", "highs", "cbc"])
def test_a_signal_stops_the_solve_promptly_and_leaves_nothing(big_instance, tmp_path, method, extra, sig, code):
    out = tmp_path / "plan.json"
    out.write_bytes(b"the previous plan\n")
    before = out.read_bytes()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    cmd = [sys.executable, "-m", "robatch_opt", "solve", str(big_instance), "--method", method, *extra,
           "--budget-fraction", "0.3", "--time-limit", "120", "--out", str(out), "--no-baselines"]
    proc = subprocess.Popen(cmd, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until the engine is searching: a child process (CBC, HiGHS on big models) or
        # the engine's worker thread shows up as extra CPU; a fixed delay past the greedy
        # warm start is the simple, engine-independent way.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if _engine_running(proc.pid, method, extra):
                break
        assert proc.poll() is None, proc.communicate()
        time.sleep(1.0)
        children = children_of(proc.pid)
        t0 = time.monotonic()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, (proc.returncode, stderr)
    assert took <= EXIT_WITHIN_S, f"exited {took:.2f} s after the signal"
    assert out.read_bytes() == before
    assert not [c for c in children if _alive(c)], "a child process outlived the command"
    assert list(tmp.iterdir()) == [], f"left behind: {[p.name for p in tmp.iterdir()]}"
    assert "Traceback" not in stderr


def _engine_running(pid: int, method: str, extra: list[str]) -> bool:
    """True once the exact engine runs (CBC: its child process exists; others: after the warm start)."""
    if "cbc" in extra:
        for child in children_of(pid):
            try:
                if "cbc" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace").lower():
                    return True
            except OSError:
                pass
        return False
    # HiGHS on this size runs in a child interpreter; CP-SAT in a worker thread of this process.
    if children_of(pid):
        return True
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir())) > 1 and _cpu_seconds(pid) > 8.0
    except OSError:
        return False


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------- output safety
def _run_cli(args: list[str], tmp: Path, *, fsize: int | None = None, umask: int | None = None):
    def limits():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a failed write, not a killed process
        if umask is not None:
            os.umask(umask)

    return subprocess.run([sys.executable, "-m", "robatch_opt", *args], env=_env(tmp), capture_output=True,
                          text=True, preexec_fn=limits, timeout=300)


@pytest.fixture(scope="module")
def small_instance(tmp_path_factory) -> Path:
    from robatch_opt.kernels.warmup import warm_up

    warm_up()              # compiled kernels cached first: the subprocesses here then load them
    path = tmp_path_factory.mktemp("small") / "inst.json"
    ro.save(ro.workloads.llm(pool="qwen3", n=300, seed=0), path)
    return path


def test_a_write_failure_keeps_the_old_plan(small_instance, tmp_path):
    out = tmp_path / "plan.json"
    out.write_bytes(b"old plan")
    res = _run_cli(["solve", str(small_instance), "--method", "greedy", "--no-baselines", "--out", str(out)],
                   tmp_path, fsize=1024)
    assert res.returncode == 2, res.stderr
    assert out.read_bytes() == b"old plan"
    assert str(out) in res.stderr and len(res.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]        # no temporary left


def test_a_write_failure_keeps_the_old_instance(tmp_path):
    out = tmp_path / "big.npz"
    out.write_bytes(b"old instance")
    res = _run_cli(["generate", "llm", "--n", "20000", str(out)], tmp_path, fsize=4096)
    assert res.returncode == 2, res.stderr
    assert out.read_bytes() == b"old instance"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npz"]


@pytest.mark.parametrize("target", ["input", "dir", "empty", "missing_dir", "unwritable"])
def test_bad_output_paths_fail_before_any_solve(small_instance, tmp_path, target):
    if target == "unwritable" and os.geteuid() == 0:
        # root writes anywhere; an unwritable folder is one on a read-only path instead
        out = "/proc/plan.json"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        out = {"input": str(small_instance), "dir": str(tmp_path), "empty": "",
               "missing_dir": str(tmp_path / "no" / "plan.json"), "unwritable": str(locked / "plan.json")}[target]
    before = small_instance.read_bytes()
    t0 = time.monotonic()
    # cpsat with a long limit: if the check came after the solve, this would take minutes.
    res = _run_cli(["solve", str(small_instance), "--method", "cpsat", "--time-limit", "600", "--out", out],
                   tmp_path)
    took = time.monotonic() - t0
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("robatch-opt: error: --out") and len(res.stderr.splitlines()) == 1, res.stderr
    assert small_instance.read_bytes() == before
    assert took < 60, "the path was checked after the work"      # generous: process start-up only


def test_plot_path_is_checked_first_and_written_exactly(tmp_path):
    res = _run_cli(["frontier", "--points", "3", "--plot", str(tmp_path)], tmp_path)
    assert res.returncode == 2 and "--plot" in res.stderr and "is a directory" in res.stderr
    pytest.importorskip("matplotlib")
    inst = tmp_path / "i.json"
    ro.save(ro.workloads.llm(pool="qwen3", n=60, seed=0), inst)
    res = _run_cli(["frontier", str(inst), "--points", "3", "--plot", str(tmp_path / "f")], tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "f").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "f.png").exists()
    assert f"figure written to {tmp_path / 'f'}" in res.stdout


def test_file_modes_follow_the_umask_and_are_kept_on_replace(tmp_path):
    out = tmp_path / "inst.json"
    res = _run_cli(["generate", "llm", "--n", "50", str(out)], tmp_path, umask=0o022)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_mode & 0o777 == 0o644
    res = _run_cli(["generate", "llm", "--n", "50", str(tmp_path / "b.json")], tmp_path, umask=0o077)
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
    out.chmod(0o640)
    res = _run_cli(["generate", "llm", "--n", "60", str(out)], tmp_path, umask=0o022)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_mode & 0o777 == 0o640
    # A read-only file is refused before any work, and left as it was (it was replaced, and
    # kept mode 444: audit).
    out.chmod(0o444)
    before = out.read_bytes()
    res = _run_cli(["generate", "llm", "--n", "70", str(out)], tmp_path, umask=0o022)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "read-only" in res.stderr, res.stderr
    assert out.read_bytes() == before


def test_the_same_command_writes_the_same_bytes(tmp_path):
    small_instance = tmp_path / "i.json"
    ro.save(ro.workloads.llm(pool="qwen3", n=80, seed=0), small_instance)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        res = _run_cli(["solve", str(small_instance), "--method", "milp", "--no-baselines", "--out", str(out)],
                       tmp_path)
        assert res.returncode == 0, res.stderr
    assert a.read_bytes() == b.read_bytes()
    assert "wall_time_s" not in a.read_text()
    res = _run_cli(["solve", str(small_instance), "--method", "greedy", "--no-baselines", "--timings",
                    "--out", str(tmp_path / "t.json")], tmp_path)
    assert '"wall_time_s"' in (tmp_path / "t.json").read_text()


def test_a_closed_stdout_ends_quietly(small_instance, tmp_path):
    cmd = (f"{sys.executable} -m robatch_opt frontier {small_instance} --points 40 | head -c 10 > /dev/null; "
           "echo ${PIPESTATUS[0]}")
    res = subprocess.run(["bash", "-c", cmd], env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert res.stdout.strip() in ("0", "141"), res
    assert "Broken pipe" not in res.stderr and "Traceback" not in res.stderr and "error" not in res.stderr


def test_directories_and_oversized_requests_get_one_line(tmp_path):
    res = _run_cli(["solve", str(tmp_path)], tmp_path)
    assert res.returncode == 2 and "is a directory, not an instance file" in res.stderr
    res = _run_cli(["generate", "llm", "--n", str(10 ** 12), str(tmp_path / "x.npz")], tmp_path)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert "1,000,000,000,000 queries" in res.stderr and "needs about" in res.stderr and "available" in res.stderr
    assert not (tmp_path / "x.npz").exists()


def test_a_plan_for_other_options_is_refused_in_one_short_line(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    ro.save(ro.workloads.llm(pool="qwen3", n=40, seed=0), a)
    inst_b = ro.workloads.llm(pool="qwen3", n=40, seed=0).restrict(batch_sizes=[1])
    ro.save(inst_b, b)
    plan = tmp_path / "p.json"
    ro.solve(inst_b, budget=ro.budget_from_fraction(inst_b, 0.5), method="greedy").save(plan)
    res = _run_cli(["evaluate", str(a), str(plan)], tmp_path)
    assert res.returncode == 2
    line = res.stderr.strip()
    assert len(res.stderr.splitlines()) == 1 and len(line) < 300, line
    assert "option 1 is" in line and "in the plan" in line


def test_a_script_that_catches_ctrl_c_during_cpsat_carries_on_and_exits_cleanly(big_instance, tmp_path):
    """Library use: KeyboardInterrupt out of ro.solve, then a normal exit (no abort in the engine)."""
    script = tmp_path / "lib.py"
    script.write_text(
        "import os, signal, threading, time\n"
        "import robatch_opt as ro\n"
        f"inst = ro.load({str(big_instance)!r})\n"
        "b = ro.budget_from_fraction(inst, 0.3)\n"
        "threading.Timer(15, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "try:\n"
        "    ro.solve(inst, budget=b, method='cpsat', time_limit_s=120)\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
        "plan = ro.solve(inst, budget=b, method='greedy')\n"
        "print('carried on', plan.status.value)\n")
    res = subprocess.run([sys.executable, str(script)], env=_env(tmp_path), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "interrupted" in res.stdout and "carried on" in res.stdout
    assert "terminate called" not in res.stderr


def test_out_through_a_symlink_replaces_the_target_and_keeps_the_link(small_instance, tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    res = _run_cli(["solve", str(small_instance), "--method", "greedy", "--no-baselines", "--out", str(link)],
                   tmp_path)
    assert res.returncode == 0, res.stderr
    assert link.is_symlink() and '"format"' in target.read_text()


def test_a_file_name_too_long_for_its_temporary_fails_before_the_solve(small_instance, tmp_path):
    out = tmp_path / ("p" * 245 + ".json")
    res = _run_cli(["solve", str(small_instance), "--method", "cpsat", "--time-limit", "600", "--out", str(out)],
                   tmp_path)
    assert res.returncode == 2 and "file name is too long" in res.stderr, res.stderr


def test_plot_format_follows_the_suffix(tmp_path):
    pytest.importorskip("matplotlib")
    inst = tmp_path / "i.json"
    ro.save(ro.workloads.llm(pool="qwen3", n=60, seed=0), inst)
    res = _run_cli(["frontier", str(inst), "--points", "3", "--plot", str(tmp_path / "f.svg")], tmp_path)
    assert res.returncode == 0, res.stderr
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:500]
    res = _run_cli(["frontier", str(inst), "--points", "3", "--plot", ""], tmp_path)
    assert res.returncode == 2 and "--plot: the path is empty" in res.stderr


def test_frontier_refuses_unknown_and_mistyped_options():
    inst = ro.workloads.llm(pool="qwen3", n=30, seed=0)
    with pytest.raises(ro.UnknownOptionError, match="did you mean 'time_limit_s'"):
        ro.frontier(inst, points=3, time_limt_s=5)
    with pytest.raises(ro.UnknownOptionError, match="method 'greedy' has no option 'solver'"):
        ro.frontier(inst, points=3, solver="cbc")
    with pytest.raises(ro.InstanceError, match="`time_limit_s`: must be a number"):
        ro.frontier(inst, points=3, time_limit_s="x")


def test_kernels_are_never_cached_beside_the_source(tmp_path):
    """An unwritable user cache falls back to a temporary folder, not the package's __pycache__."""
    import shutil

    copy = tmp_path / "tree"
    shutil.copytree(REPO / "robatch_opt", copy / "robatch_opt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = _env(tmp_path)
    env["PYTHONPATH"] = str(copy)
    env["ROBATCH_OPT_CACHE_DIR"] = "/proc/not-writable"
    res = subprocess.run([sys.executable, "-c", "from robatch_opt.kernels.warmup import warm_up; warm_up()"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert [p for p in (copy / "robatch_opt").rglob("*") if p.suffix in (".nbi", ".nbc")] == []


_ONLINE_WINDOW = """
import numpy as np
from robatch_opt.online.window import plan_window_exact
rng = np.random.default_rng(0)
score = rng.uniform(0, 1, (3000, 12))     # ~10 s to prove on this machine (400 took 0.6-1.3 s: flaky)
call_value = rng.uniform(0.5, 3, 12)
batch = np.array([1, 2, 4, 8] * 3)
plan_window_exact(score[:20], call_value, batch, time_limit_s=5)      # imports and a first solve
print("go", flush=True)
plan_window_exact(score, call_value, batch, time_limit_s=120)         # seconds of HiGHS search
print("finished", flush=True)
"""


def test_ctrl_c_during_an_exact_online_window_reaches_the_caller(tmp_path):
    # HiGHS ran on the main thread with Python callbacks: the KeyboardInterrupt was raised
    # inside a callback and lost there, and the replay carried on (the audit's `online
    # --window-solver exact` ran to the end and wrote its plot in 2 of 4 interrupted runs).
    proc = subprocess.Popen([sys.executable, "-c", _ONLINE_WINDOW], env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "go", proc.communicate()
        time.sleep(1.0)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "finished" not in stdout
    assert "KeyboardInterrupt" in stderr
    assert proc.returncode != 0
    assert took <= EXIT_WITHIN_S


def test_a_late_ctrl_c_after_the_command_finished_does_not_change_its_status(tmp_path):
    # The audit saw exit -2 for a Ctrl-C in the ~0.5 s of interpreter teardown after a
    # complete run; the console script's main() now ignores signals once it has returned.
    script = ("import os, signal, sys\n"
              "from robatch_opt.cli import main\n"
              "sys.argv = ['robatch-opt', '--version']\n"
              "code = main()\n"
              "os.kill(os.getpid(), signal.SIGINT)\n"
              "os.kill(os.getpid(), signal.SIGTERM)\n"
              "print('finished', code)\n"
              "sys.exit(code)\n")
    res = _run_script(tmp_path, script)
    assert res.returncode == 0, res.stderr
    assert "finished 0" in res.stdout and "Traceback" not in res.stderr


@pytest.mark.parametrize("command", [["frontier"], ["online", "--alpha", "0.7"]])
def test_a_plot_suffix_matplotlib_cannot_write_is_refused_before_any_work(tmp_path, command):
    pytest.importorskip("matplotlib")
    res = _run_cli([*command, "--plot", str(tmp_path / "f.txt")], tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "--plot: cannot write images of type '.txt'" in res.stderr
    assert not (tmp_path / "f.txt").exists()


def test_the_online_plot_follows_the_suffix(tmp_path):
    # It wrote PNG bytes whatever the name (the frontier's plot already followed the suffix).
    pytest.importorskip("matplotlib")
    out = tmp_path / "o.svg"
    res = _run_cli(["online", "--n", "80", "--alpha", "0.7", "--max-wait", "1", "--plot", str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert b"<svg" in out.read_bytes()[:500]


def test_ctrl_c_during_an_in_process_highs_run_is_not_swallowed():
    """A SIGINT that arrives while HiGHS runs raises KeyboardInterrupt out of the run.

    Run on the main thread, HiGHS called its Python interrupt callback there; the signal's
    KeyboardInterrupt was raised inside that callback and highspy swallowed it ("Solve
    error"), so `robatch-opt solve --method milp` ran on, wrote --out and exited 0 when
    Ctrl-C came during the coupled LP (found by a new-user audit). Here the signal is sent
    from inside the engine's own callback, so it surely arrives mid-run.
    """
    import highspy

    from robatch_opt.solvers.milp import _quiet_highs, run_highs

    rng = np.random.default_rng(0)
    n, m = 400, 300
    a = rng.random((m, n)) * (rng.random((m, n)) < 0.3)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_ = -rng.random(n)
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.full(n, 10.0)
    lp.row_lower_, lp.row_upper_ = np.full(m, -highspy.kHighsInf), rng.random(m) * 10 + 1
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    col_nz = [np.flatnonzero(a[:, j]) for j in range(n)]
    lp.a_matrix_.start_ = np.r_[0, np.cumsum([len(nz) for nz in col_nz])]
    lp.a_matrix_.index_ = np.concatenate(col_nz).astype(np.int32)
    lp.a_matrix_.value_ = np.concatenate([a[nz, j] for j, nz in enumerate(col_nz)])
    h = _quiet_highs(highspy)
    h.passModel(lp)
    sent = []

    def interrupt_once(event):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    h.cbSimplexInterrupt += interrupt_once
    with pytest.raises(KeyboardInterrupt):
        run_highs(h)
    assert sent


@pytest.mark.parametrize("entry", ["console script", "python -m"])
@pytest.mark.parametrize("after_s, sig, code, word", [(0.05, signal.SIGINT, 130, "interrupted"),
                                                      (0.15, signal.SIGINT, 130, "interrupted"),
                                                      (0.3, signal.SIGINT, 130, "interrupted"),
                                                      (0.15, signal.SIGTERM, 143, "terminated")])
def test_a_signal_while_the_command_line_loads_the_package_ends_in_one_line(tmp_path, entry, after_s, sig, code,
                                                                             word):
    """Importing robatch_opt takes about half a second; a Ctrl-C then printed Python's traceback
    and the process died of the signal (two new-user audits). Both entries end like the command
    line: the console script's (robatch_opt_cli.main, as the installed `robatch-opt` runs it)
    and `python -m robatch_opt`, whose package import comes before its __main__."""
    argv = ["solve", "--method", "greedy", "--no-baselines"]
    if entry == "python -m":
        cmd = [sys.executable, "-m", "robatch_opt", *argv]
    else:
        cmd = [sys.executable, "-c", "import sys\n"
                                     f"sys.argv = ['robatch-opt', *{argv!r}]\n"
                                     "from robatch_opt_cli import main\n"
                                     "sys.exit(main())\n"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after_s)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"robatch-opt: {word}"


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_a_signal_python_swallowed_in_a_callback_still_stops_the_command(tmp_path, sig, code, word):
    """A signal whose exception is raised inside code whose exceptions Python only reports
    (here ``__del__``; in the field Numba's LLVM object-cache callback and importlib's weakref
    callbacks) was printed as "Exception ignored" and lost: the command ran on and exited 0
    (2 of 300 signalled console-script runs). The command line raises it again."""
    script = ("import os, signal, sys, time, types\n"
              "import robatch_opt.cli as cli\n"
              "class Bomb:\n"
              "    def __del__(self):\n"
              f"        os.kill(os.getpid(), {int(sig)})\n"
              "        for _ in range(1000):\n"      # the handler raises here, and Python swallows it
              "            pass\n"
              "def command(args):\n"
              "    Bomb()\n"
              "    time.sleep(30)\n"
              "    print('ran on')\n"
              "    return 0\n"
              "cli._parser = lambda: types.SimpleNamespace(parse_args=lambda argv: types.SimpleNamespace(func=command))\n"
              "sys.argv = ['robatch-opt', 'solve']\n"
              "sys.exit(cli.main())\n")
    res = _run_script(tmp_path, script)
    assert res.returncode == code, res.stderr
    assert "ran on" not in res.stdout
    assert "Exception ignored" not in res.stderr and res.stderr.strip().splitlines() == [f"robatch-opt: {word}"]


def test_the_redelivery_hook_leaves_other_unraisable_exceptions_to_the_previous_hook():
    """Only a lost KeyboardInterrupt or Terminated is raised again; any other "Exception
    ignored" still reaches the hook that was in place, and undoing restores it."""
    import sys as _sys

    from robatch_opt._interrupt import redeliver_swallowed_interrupts

    seen = []
    before = _sys.unraisablehook
    test_hook = lambda unraisable: seen.append(type(unraisable.exc_value))  # noqa: E731
    _sys.unraisablehook = test_hook
    try:
        undo = redeliver_swallowed_interrupts()

        class Bomb:
            def __del__(self):
                raise ValueError("in a finalizer")

        Bomb()
        undo()
        assert seen == [ValueError]
        assert _sys.unraisablehook is test_hook       # undo restored the test's own hook
    finally:
        _sys.unraisablehook = before


def test_undoing_the_redelivery_cancels_a_pending_repeat_and_returns_what_is_owed():
    """A swallowed Ctrl-C whose repeat is still waiting when the command ends is not sent
    after ``main`` has returned (to an in-process caller it would arrive out of nowhere): the
    undo cancels it and returns SIGINT, and ``main`` exits 130 for it."""
    from robatch_opt._interrupt import redeliver_swallowed_interrupts

    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        undo = redeliver_swallowed_interrupts()

        class Bomb:
            def __del__(self):
                raise KeyboardInterrupt

        Bomb()                       # "Exception ignored": the hook schedules the repeat
        owed = undo()
        time.sleep(0.2)             # ten times the repeat's delay: it would have arrived
        assert owed == signal.SIGINT and received == []
        assert redeliver_swallowed_interrupts()() is None     # nothing swallowed, nothing owed
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stop_signal_arriving_while_main_cleans_up_is_owed(monkeypatch, capsys):
    """The signal set-up is undone with SIGINT/SIGTERM held back (a handler raising in the
    middle skipped the rest and escaped main, review); one that arrived meanwhile makes the
    status 130. Simulated: the command returns 0 with a SIGINT pending."""
    import threading

    import robatch_opt.cli as cli

    def command_then_ctrl_c(argv, *, as_program, debug):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        return 0

    monkeypatch.setattr(cli, "_run", command_then_ctrl_c)
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        assert cli.main(["solve"]) == 130
        assert "interrupted" in capsys.readouterr().err
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})     # delivered here, to the test's handler
        signal.signal(signal.SIGINT, previous)
    assert received == [signal.SIGINT]
