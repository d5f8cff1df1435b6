"""``python -m robatch_opt``: the ``robatch-opt`` command line (see :mod:`robatch_opt.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
