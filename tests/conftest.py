"""Hypothesis profiles: ``ci`` (default under CI=true) and ``dev`` (quick local runs).

Each property test states its own ``max_examples`` (the figure quoted in issue notes); the
``dev`` profile scales every count down by ``HYPOTHESIS_DEV_SCALE`` for fast iteration.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, max_examples=20,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
