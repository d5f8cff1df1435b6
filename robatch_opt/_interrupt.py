"""Interrupts that stop a solve promptly and leave nothing behind.

Two blocking waits of the solvers cannot see Python's signal handlers:

- a native engine call in this process (CP-SAT's ``solve``, HiGHS's ``run``): the handler
  only runs when the main thread executes Python again, i.e. after the engine returns
  (and OR-Tools, by default, even catches SIGINT itself and treats it as a time limit);
- a child process (CBC, HiGHS on large models): the child is not ours to interrupt, and a
  parent that dies leaves it running at full CPU (re-parented to PID 1).

:func:`run_stoppable` runs the native call in a worker thread while the main thread waits in
Python, so SIGINT (``KeyboardInterrupt``) and SIGTERM (:class:`Terminated`, once
:func:`terminate_on_sigterm` is installed) are raised at once in the main thread; it then
asks the engine to stop, waits briefly for it, and re-raises. :func:`run_child` starts a
child in its own session (a terminal's Ctrl-C reaches only the parent, which decides) and
kills it on any exception. Temporary folders are ``with`` blocks around both, so they go too.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from typing import Callable, Iterator, Sequence, TypeVar

__all__ = ["Terminated", "run_stoppable", "run_child", "terminate_on_sigterm", "engine_interrupted",
           "STOP_WAIT_S"]

T = TypeVar("T")

#: Seconds an interrupted engine may take to return before the caller gives up on it.
STOP_WAIT_S = 1.5


class Terminated(BaseException):
    """SIGTERM, raised in the main thread (a ``BaseException``, like ``KeyboardInterrupt``,
    so that no ``except Exception`` swallows it)."""


_workers: "set[threading.Thread]" = set()
_stopped = threading.Event()


def engine_interrupted() -> bool:
    """Whether an engine was stopped by an interrupt in this process (or still runs).

    Such a process must not run the interpreter's normal shutdown: OR-Tools 9.15 aborts at
    exit (``terminate called without an active exception``) once ``stop_search`` has stopped a
    running CP-SAT search from another thread, and an engine thread still inside native code
    would be torn down mid-call. The command line ends with ``os._exit`` instead (every
    ``with`` block, so every temporary file and child process, is already cleaned up by then).
    """
    return _stopped.is_set() or any(t.is_alive() for t in _workers)


def run_stoppable(call: Callable[[], T], stop: Callable[[], None]) -> T:
    """Run the blocking ``call()`` so that an interrupt stops it at once.

    Parameters
    ----------
    call : callable
        The blocking native call (it must release the GIL, as CP-SAT and HiGHS do).
    stop : callable
        Asks the engine to return early (e.g. ``CpSolver.stop_search``); called from the
        main thread when an interrupt arrives.

    Returns
    -------
    The value of ``call()``; its exception, if it raised.

    Raises
    ------
    KeyboardInterrupt, Terminated
        Re-raised after ``stop()`` and a wait of at most :data:`STOP_WAIT_S` for the engine.
    """
    if threading.current_thread() is not threading.main_thread():
        return call()                        # signals are only delivered to the main thread
    box: dict[str, object] = {}

    def work():
        # The engine's own threads inherit this mask: the signals go to the main thread only.
        # (A SIGINT that the kernel handed to one of CP-SAT's threads left it in a state that
        # aborted the process at exit: "terminate called without an active exception".)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            box["value"] = call()
        except BaseException as exc:         # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="robatch_opt-engine", daemon=True)
    _workers.add(worker)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
    except BaseException:
        _stopped.set()
        stop()
        worker.join(STOP_WAIT_S)
        raise
    finally:
        if not worker.is_alive():
            _workers.discard(worker)
    if "error" in box:
        raise box["error"]                   # type: ignore[misc]
    return box["value"]                      # type: ignore[return-value]


@contextlib.contextmanager
def run_child(cmd: Sequence[str], **popen_kw) -> Iterator[subprocess.Popen]:
    """``with run_child(cmd) as proc:`` -- a child process that never outlives the block.

    The child gets its own session (so a terminal's Ctrl-C goes to this process only) and is
    killed and reaped when the block exits by an exception (an interrupt, a time-out, a bug).
    """
    proc = subprocess.Popen(list(cmd), start_new_session=True, **popen_kw)
    try:
        yield proc
    except BaseException:
        _kill(proc)
        raise
    finally:
        if proc.poll() is None:
            _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:        # pragma: no cover - a process SIGKILL cannot stop
        pass
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


def communicate(proc: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
    """``proc.communicate`` with a time-out that kills the child (as :func:`subprocess.run`)."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise
    return out or "", err or ""


def terminate_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise :class:`Terminated` in the main thread; returns a function that undoes it.

    Python's default SIGTERM kills the interpreter at once, skipping every ``finally`` and
    ``with`` block: temporary files stay and child processes are orphaned. The command
    line installs this so that SIGTERM unwinds like Ctrl-C.
    """
    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
