"""``python -m robatch_opt``: the ``robatch-opt`` command line (see :mod:`robatch_opt.cli`).

Through the console script's entry, so that a Ctrl-C while the command line loads ends in one
line too (the package's own import is guarded in ``robatch_opt/__init__.py``).
"""

import sys

from robatch_opt_cli import main

if __name__ == "__main__":
    sys.exit(main())
