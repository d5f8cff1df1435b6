"""Hypothesis profiles: ``ci`` (the default: derandomized, no deadline) and ``dev``.

Each property test states its own ``max_examples`` (the figure quoted in issue notes), which
overrides the profile's count; ``HYPOTHESIS_PROFILE=dev`` keeps the randomized search (new
examples every run) for tests that do not set a count.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, max_examples=20,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest


@pytest.fixture(scope="session", autouse=True)
def _kernels_compiled():
    """Compile (or load) the Numba kernels once, first: every later solve, in process or in a
    subprocess of the same user, then finds them cached, and the command line's one-time
    "compiling the solver kernels" notice (tested where it is meant) stays out of the others."""
    from robatch_opt.kernels.warmup import warm_up

    warm_up(quality=True, parallel=True, frontier=True)
