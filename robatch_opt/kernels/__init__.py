"""Numba-compiled inner loops, kept apart from the Python wrappers that validate their inputs.

Modules here are private: every function takes only contiguous numeric arrays. Use the
solver backends (:mod:`robatch_opt.solvers`) instead.
"""
