"""The ``robatch-opt`` console script's entry: :func:`robatch_opt.cli.main`, behind a guard.

Importing ``robatch_opt`` takes about half a second (NumPy, Numba, the solvers). A Ctrl-C in
that time fell outside the command line's own handling and printed Python's traceback
(status -2; found by two new-user audits). This module, outside the package so that
importing it imports nothing else, catches that interrupt and ends the way the command line
does: one line, status 130.
"""

import os
import sys

__all__ = ["main"]


def main() -> int:
    """Run ``robatch-opt``; a Ctrl-C (or SIGTERM) while the package loads exits 130 (143)."""
    import signal

    # While loading, both signals end at once through a handler (the command line installs its
    # own later). Catching KeyboardInterrupt is not enough: raised inside an extension module's
    # initialisation (numba._devicearray), it reaches us as "ImportError: ... failed to import"
    # (found by CI at 0.3 s).
    previous_int = signal.signal(signal.SIGINT, lambda signum, frame: _stop("interrupted", 130))
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: _stop("terminated", 143))
    try:
        from robatch_opt.cli import main as cli_main
    except KeyboardInterrupt:          # a handler that another import replaced: same ending
        _stop("interrupted", 130)
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    return cli_main()


def _stop(what: str, code: int) -> None:
    try:
        sys.stderr.write(f"robatch-opt: {what}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    # At once: an interrupt inside an extension's import leaves CPython's "unhandled
    # KeyboardInterrupt" flag set, which would turn a normal exit into a death by SIGINT.
    os._exit(code)
