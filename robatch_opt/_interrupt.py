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
import sys
import threading
from typing import Callable, Iterator, Sequence, TypeVar

__all__ = ["Terminated", "run_stoppable", "run_child", "terminate_on_sigterm",
           "redeliver_swallowed_interrupts", "engine_running", "STOP_WAIT_S"]

T = TypeVar("T")

#: Seconds an interrupted engine may take to return before the caller gives up on it.
STOP_WAIT_S = 1.5

#: Seconds after Python swallowed a signal's exception before the signal is sent again.
REDELIVER_AFTER_S = 0.02


class Terminated(BaseException):
    """SIGTERM, raised in the main thread (a ``BaseException``, like ``KeyboardInterrupt``,
    so that no ``except Exception`` swallows it)."""


_workers: "set[threading.Thread]" = set()

#: The signals a running engine is stopped on.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def engine_running() -> bool:
    """Whether an engine thread that was asked to stop is still inside native code.

    Then the interpreter's normal shutdown must not run (it would tear the thread down
    mid-call); the command line ends with ``os._exit`` in that case only.
    """
    return any(t.is_alive() for t in _workers)


def run_stoppable(call: Callable[[], T], stop: Callable[[], None]) -> T:
    """Run the blocking ``call()`` so that SIGINT or SIGTERM stops it at once.

    Parameters
    ----------
    call : callable
        The blocking native call (it must release the GIL, as CP-SAT and HiGHS do).
    stop : callable
        Asks the engine to return early (e.g. ``CpSolver.stop_search``); called from the
        main thread when a signal arrives.

    Returns
    -------
    The value of ``call()``; its exception, if it raised.

    Notes
    -----
    While the engine runs, SIGINT and SIGTERM only set a flag (handlers installed for the
    duration, main thread only); the main thread then stops the engine, waits at most
    :data:`STOP_WAIT_S` for it, restores the previous handlers and hands them the signal:
    ``KeyboardInterrupt`` for Ctrl-C, :class:`Terminated` under the command line, the
    default action otherwise. (Raising ``KeyboardInterrupt`` straight out of the wait and
    then stopping CP-SAT made OR-Tools 9.15 abort the process at exit: "terminate called
    without an active exception".)
    """
    if threading.current_thread() is not threading.main_thread():
        return call()                        # signals are only delivered to the main thread
    box: dict[str, object] = {}

    def work():
        # The engine's own threads inherit this mask: the signals go to the main thread only.
        signal.pthread_sigmask(signal.SIG_BLOCK, set(_STOP_SIGNALS))
        try:
            box["value"] = call()
        except BaseException as exc:         # re-raised in the caller's thread
            box["error"] = exc

    received: list[int] = []
    previous = {}
    for sig in _STOP_SIGNALS:
        old = signal.getsignal(sig)
        if old is signal.SIG_IGN or old is None:
            continue                         # ignored (e.g. a background job): keep it so
        previous[sig] = old
        signal.signal(sig, lambda signum, frame: received.append(signum))
    worker = threading.Thread(target=work, name="robatch_opt-engine", daemon=True)
    _workers.add(worker)
    try:
        worker.start()
        while worker.is_alive() and not received:
            worker.join(0.05)
        if received:
            stop()
            worker.join(STOP_WAIT_S)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if not worker.is_alive():
            _workers.discard(worker)
    if received:
        _deliver(received[0], previous.get(received[0], signal.SIG_DFL))
    if "error" in box:
        raise box["error"]                   # type: ignore[misc]
    return box["value"]                      # type: ignore[return-value]


def _deliver(signum: int, handler) -> None:
    """Hand a signal caught while an engine ran to the handler that was in place before."""
    if callable(handler):
        handler(signum, None)                # KeyboardInterrupt, Terminated, or the user's own
    if handler is signal.SIG_DFL:
        signal.raise_signal(signum)          # the default action (e.g. SIGTERM ends the process)


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


def redeliver_swallowed_interrupts() -> Callable[[], int | None]:
    """Raise a Ctrl-C or SIGTERM again that Python swallowed; returns a function that undoes it.

    A signal's exception raised while Python runs code whose exceptions are only reported --
    a ctypes callback (Numba's LLVM object-cache hook while it compiles or loads a kernel), a
    weakref callback (importlib's module locks), ``__del__`` -- is printed as "Exception
    ignored in ..." and lost: the command ran on to the end and exited 0 (2 of 300 runs
    signalled 0.03-0.75 s after start). Python hands such exceptions to
    :data:`sys.unraisablehook`; this hook prints nothing for them and sends the same signal
    to the main thread again :data:`REDELIVER_AFTER_S` later, from a timer thread: sent from
    the hook itself, the handler would raise inside the hook, where Python swallows it once
    more. If the repeat lands in such code too, it is repeated again. Other unraisable
    exceptions go to the hook that was in place.

    The function returned restores the previous hook, cancels a repeat not yet sent (so no
    signal reaches the caller after it is undone) and returns that repeat's signal number,
    or None: the caller still owes the user that interrupt (the command line exits 130 or
    143 for it).
    """
    previous = sys.unraisablehook
    main_ident = threading.main_thread().ident

    def hook(unraisable) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, KeyboardInterrupt):
            signum = signal.SIGINT
        elif isinstance(exc, Terminated):
            signum = signal.SIGTERM
        else:
            previous(unraisable)
            return
        with lock:
            if undone:
                return
            owed.append(signum)
        # A real signal (not _thread.interrupt_main): it also wakes a main thread blocked in a
        # system call such as a sleep or a wait.
        timer = threading.Timer(REDELIVER_AFTER_S, send, args=(signum,))
        timer.daemon = True
        timer.start()

    def send(signum: int) -> None:
        with lock:
            if undone or signum not in owed:
                return
            owed.remove(signum)
            signal.pthread_kill(main_ident, signum)

    lock = threading.RLock()      # the hook may run again on the main thread while it holds it
    owed: list[int] = []          # signals swallowed and not yet sent again
    undone = False
    sys.unraisablehook = hook

    def undo() -> int | None:
        nonlocal undone
        sys.unraisablehook = previous
        with lock:
            undone = True
            return owed[0] if owed else None

    return undo
