"""Decision overhead of the online routers, with pytest-benchmark (after warm-up).

    pytest benchmarks/bench_online_overhead.py --benchmark-only

MESS+'s ``route()`` per request, and the batching router's plan of a 256-request window
(prediction + the Numba window planner), on the RouterBench stream (11 models, 44
options) or, without the data, the simulated Qwen3 stream.
"""

from __future__ import annotations

import copy
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robatch_opt import online as on  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "routerbench"


@pytest.fixture(scope="module")
def split():
    if DATA.is_dir():
        return on.routerbench_split(DATA, fold=0, seed=0)
    return on.llm_split("qwen3", n=2000, tasks=["GSM8K", "MMLU", "MBPP"], seed=0)


def test_route_per_request(benchmark, split):
    s = split.stream
    r = on.MessPlusRouter(s.model_names, alpha=0.85, c=0.0, predictor=copy.deepcopy(split.predictor)).bind(s)
    r.Q = 3.0
    it = itertools.cycle(range(s.n_requests))
    for _ in range(200):
        r.route(next(it))
    benchmark.extra_info["models"] = s.instance.n_models
    benchmark.pedantic(lambda: r.route(next(it)), rounds=5000, iterations=1, warmup_rounds=100)


def test_plan_256_request_window(benchmark, split):
    s = split.stream
    b = on.BatchingRouter(s.model_names, alpha=0.85, max_wait_s=2.0, c=0.0,
                          predictor=copy.deepcopy(split.predictor)).bind(s)
    b.Q = 3.0
    t = int(np.bincount(s.instance.query_task).argmax())
    rows = np.resize(np.flatnonzero(s.instance.query_task == t), 256)
    b.plan(rows, t)
    benchmark.extra_info["options"] = s.instance.n_options
    benchmark.pedantic(lambda: b.plan(rows, t), rounds=200, iterations=1, warmup_rounds=5)
