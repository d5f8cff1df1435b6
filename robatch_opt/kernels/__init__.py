"""Numba-compiled inner loops, kept apart from the Python wrappers that validate their inputs.

Modules here are private: every function takes only contiguous numeric arrays. Use the
solver backends (:mod:`robatch_opt.solvers`) instead. Their compiled code is cached in a
per-user folder, not beside the source (:mod:`robatch_opt.kernels._cache` says why).
"""

from ._cache import install_locator as _install_locator

_install_locator()
