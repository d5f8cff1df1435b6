"""A real Dask cluster on this machine, started with the ``dask`` command line.

This is how a user starts a multi-node cluster (``dask scheduler`` on one host,
``dask worker tcp://HOST:PORT`` on the others), here with every process on 127.0.0.1 and
free ports. Tests and benchmarks use it; :func:`command_line_cluster` always stops what it
started, on every path out (exceptions and interrupts included).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

__all__ = ["CommandLineCluster", "command_line_cluster", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask_cli() -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("dask")
    if found:
        return [found]
    return [sys.executable, "-m", "distributed.cli.dask_scheduler"]  # pragma: no cover


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the process that started it dies (no orphans even
    if that process is killed before its clean-up runs)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class CommandLineCluster:
    """The processes of a running cluster.

    Attributes
    ----------
    address : str
        ``tcp://127.0.0.1:PORT``: what ``Client(address)`` connects to.
    dashboard : str
        The scheduler's diagnostics dashboard URL.
    scheduler : subprocess.Popen
    workers : list of subprocess.Popen
        One per ``dask worker`` command (with ``nanny=True`` the nanny; the worker is its child).
    """

    address: str
    dashboard: str
    scheduler: subprocess.Popen
    workers: list = field(default_factory=list)
    log_dir: Path | None = None

    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes themselves (children of the nannies, if any)."""
        import psutil
        out = []
        for p in self.workers:
            try:
                kids = psutil.Process(p.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            out.extend(k.pid for k in kids) if kids else out.append(p.pid)
        return out

    def logs(self) -> str:
        """The processes' output so far (for error messages)."""
        if self.log_dir is None:
            return ""
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-4000:]}"
                         for f in sorted(self.log_dir.glob("*.log")))


def _stop(p: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop a process we started, and its process group (a nanny's worker), by id."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(grace_s)


@contextmanager
def command_line_cluster(n_workers: int = 2, *, memory_limit: str = "4GiB", nthreads: int = 1,
                         nanny: bool = False, timeout_s: float = 60.0,
                         extra_env: dict | None = None) -> Iterator[CommandLineCluster]:
    """Start ``dask scheduler`` and ``n_workers`` ``dask worker`` processes on 127.0.0.1.

    Parameters
    ----------
    n_workers : int
        0 starts the scheduler alone.
    memory_limit : str
        Per worker (``--memory-limit``).
    nthreads : int
        Threads per worker; Numba kernels in the worker use as many (``NUMBA_NUM_THREADS``).
    nanny : bool
        Run each worker under a nanny (which restarts it and enforces the memory limit).
    timeout_s : float
        Seconds to wait for the scheduler and every worker.

    Yields
    ------
    CommandLineCluster
        Stopped (every process, SIGTERM then SIGKILL) when the block exits.
    """
    dask = _dask_cli()
    port, dash = free_port(), free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="robatch-dask-"))
    # Workers import this robatch_opt (a source checkout as well as an installed package).
    pkg_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NUMBA_NUM_THREADS"] = str(nthreads)
    # Dask's scratch space (lock files) goes under the log folder, removed at the end; by
    # default it is left behind in the system's temporary folder.
    env["DASK_TEMPORARY_DIRECTORY"] = str(log_dir)
    env.update(extra_env or {})
    procs: list[subprocess.Popen] = []

    def spawn(args: list[str], name: str) -> subprocess.Popen:
        log = open(log_dir / f"{name}.log", "wb")
        try:
            p = subprocess.Popen(dask + args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, cwd=str(log_dir), start_new_session=True,
                                 preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        finally:
            log.close()
        procs.append(p)
        return p

    try:
        sched = spawn(["scheduler", "--host", "127.0.0.1", "--port", str(port),
                       "--dashboard-address", f"127.0.0.1:{dash}", "--no-show"], "scheduler")
        deadline = time.monotonic() + timeout_s
        while True:
            if sched.poll() is not None:
                raise RuntimeError(f"dask scheduler exited with status {sched.returncode}:\n"
                                   f"{(log_dir / 'scheduler.log').read_text(errors='replace')[-4000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dask scheduler did not listen on 127.0.0.1:{port} within {timeout_s} s")
                time.sleep(0.1)
        cluster = CommandLineCluster(f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{dash}/status", sched,
                                     log_dir=log_dir)
        for i in range(n_workers):
            args = ["worker", cluster.address, "--host", "127.0.0.1", "--nthreads", str(nthreads),
                    "--memory-limit", memory_limit, "--name", f"worker-{i}", "--no-dashboard",
                    "--local-directory", str(log_dir / f"w{i}")]
            if not nanny:
                args.append("--no-nanny")
            cluster.workers.append(spawn(args, f"worker-{i}"))
        _wait_for_workers(cluster, n_workers, deadline)
        yield cluster
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(log_dir, ignore_errors=True)


def _wait_for_workers(cluster: CommandLineCluster, n: int, deadline: float) -> None:
    from distributed import Client
    with Client(cluster.address, timeout=max(1.0, deadline - time.monotonic())) as c:
        if n == 0:
            return                         # a scheduler alone: connecting proves it is up
        try:
            c.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError as exc:
            raise TimeoutError(f"{n} dask workers did not join {cluster.address}:\n{cluster.logs()}") from exc
