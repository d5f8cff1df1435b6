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
