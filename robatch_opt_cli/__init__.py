"""The ``robatch-opt`` console script's entry: :func:`robatch_opt.cli.main`, behind a guard.

Importing ``robatch_opt`` takes about half a second (NumPy, Numba, the solvers). A Ctrl-C in
that time fell outside the command line's own handling and printed Python's traceback
(status -2; found by two new-user audits). This module, outside the package so that
importing it imports nothing else, catches that interrupt and ends the way the command line
does: one line, status 130.
"""

import os
import sys

__all__ = ["main", "install_loading_guard"]


def main() -> int:
    """Run ``robatch-opt``; a Ctrl-C (or SIGTERM) while the package loads exits 130 (143)."""
    restore = install_loading_guard()
    try:
        from robatch_opt.cli import main as cli_main
    except KeyboardInterrupt:          # a handler that another import replaced: same ending
        _stop("interrupted", 130)
    finally:
        restore()
    return cli_main()


def install_loading_guard():
    """Until the returned function is called, SIGINT and SIGTERM end the process at once with
    one line and status 130 (143), as the command line does.

    Through handlers: catching KeyboardInterrupt is not enough, since raised inside an
    extension module's initialisation (numba._devicearray) it reaches the importer as
    "ImportError: ... failed to import" (found by CI at 0.3 s). Used by :func:`main` and by
    the package itself when ``python -m robatch_opt`` loads it.
    """
    import signal

    previous_int = signal.signal(signal.SIGINT, lambda signum, frame: _stop("interrupted", 130))
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: _stop("terminated", 143))

    def restore() -> None:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)

    return restore


def _stop(what: str, code: int) -> None:
    try:
        sys.stderr.write(f"robatch-opt: {what}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    # At once: an interrupt inside an extension's import leaves CPython's "unhandled
    # KeyboardInterrupt" flag set, which would turn a normal exit into a death by SIGINT.
    os._exit(code)
