"""Online routing with a service-level guarantee (MESS+), and batching windows that keep it.

Requests arrive one by one; the operator promises a long-run share ``alpha`` of satisfied
requests; the router meets it at least cost while it learns which model satisfies which
request.

- :class:`MessPlusRouter`: MESS+ (Wang et al., NeurIPS 2025), one decision per request.
- :class:`BatchingRouter`: each task's requests wait up to ``max_wait_s`` and a window is
  planned as a small Route-with-Batching problem with the virtual queue as the multiplier
  (heuristically in Numba, or exactly with HiGHS: ``window_solver``).
- :class:`RandomRouter`, :func:`calibrated_random_router`: MESS+'s random baseline.
- :class:`OnlineLogistic`: the online learner (``fit`` offline, ``partial_fit`` online).
- :func:`replay`: drive a router over a stream (Poisson, bursty or given arrivals) ->
  :class:`OnlineResult`.
- :func:`hindsight`, :func:`cheapest_single_model`: the yardsticks.

The guarantee and what batching changes: ``proofs/online_sla.md``.
"""

from __future__ import annotations

from .errors import OnlineError, StreamError, UnknownModelError
from .hindsight import (HindsightBound, OfflinePlan, SingleModelBaseline, cheapest_single_model, hindsight,
                        model_means, offline_plan)
from .learner import OnlineLogistic
from .replay import ARRIVALS, OnlineResult, arrival_times, replay
from .router import (DEFAULT_V_SCALE, EXACT_MAX_REQUESTS, WINDOW_SOLVERS, BatchingRouter, Dispatch, Feedback,
                     MessPlusRouter, RandomRouter, calibrated_random_router, equilibrium_queue)
from .stream import RequestStream, as_stream, stream_from_instance, stream_from_llm
from .window import DEFAULT_EXACT_TIME_S, WindowPlan, plan_window, plan_window_exact, window_objective
from .experiment import MIN_SPLIT_ROWS, TRAIN_SEED_OFFSET, Split, compare, llm_split, plot_time_series, routerbench_split

__all__ = [
    "MessPlusRouter", "BatchingRouter", "RandomRouter", "calibrated_random_router", "DEFAULT_V_SCALE",
    "equilibrium_queue",
    "Dispatch", "Feedback",
    "OnlineLogistic",
    "replay", "OnlineResult", "arrival_times", "ARRIVALS",
    "hindsight", "HindsightBound", "offline_plan", "OfflinePlan", "cheapest_single_model", "SingleModelBaseline", "model_means",
    "RequestStream", "as_stream", "stream_from_llm", "stream_from_instance",
    "plan_window", "plan_window_exact", "WindowPlan", "window_objective", "WINDOW_SOLVERS", "EXACT_MAX_REQUESTS",
    "DEFAULT_EXACT_TIME_S",
    "Split", "routerbench_split", "MIN_SPLIT_ROWS", "llm_split", "TRAIN_SEED_OFFSET", "compare", "plot_time_series",
    "OnlineError", "StreamError", "UnknownModelError",
]
