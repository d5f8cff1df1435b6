"""The one-pass option table (the distributed greedy's chunk build) equals compile_options bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import robatch_opt as ro
from robatch_opt.options import compile_options, compile_options_one_pass


def _fresh(inst: ro.Instance) -> ro.Instance:
    """The same instance without any cached table or derived array."""
    return ro.Instance(models=inst.models, tasks=inst.tasks, query_task=inst.query_task,
                       input_tokens=inst.input_tokens, output_tokens=inst.output_tokens, utility=inst.utility)


def _assert_same(inst: ro.Instance) -> None:
    a = compile_options(_fresh(inst))
    b_inst = _fresh(inst)
    b = compile_options_one_pass(b_inst)
    for name in ("cost", "utility", "admissible", "option_model", "option_batch", "query_task", "fixed_cost",
                 "variable_cost", "cheapest_option", "most_useful_option", "group_fixed_cost", "group_batch"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        # Bit-identical, inf included (array_equal treats equal infs as equal; NaN never occurs).
        assert np.array_equal(x, y), name
        assert not y.flags.writeable, name
    assert a.min_cost_usd == b.min_cost_usd
    fresh = _fresh(inst)
    assert np.array_equal(b_inst.admissible, fresh.admissible)
    assert np.array_equal(b_inst.variable_cost_usd, fresh.variable_cost_usd)
    assert compile_options_one_pass(b_inst) is b          # cached like compile_options


@pytest.mark.parametrize("pool", ["qwen3", "gemma3"])
def test_llm_pools(pool):
    _assert_same(ro.workloads.llm(pool, n=3000, seed=3))


@pytest.mark.parametrize("family", ["uncorrelated", "llm_like", "strongly_correlated"])
def test_synthetic_families(family):
    _assert_same(ro.workloads.synthetic(2000, family, seed=1))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), n=st.integers(1, 40), window=st.integers(60, 400),
       dup=st.booleans(), coarse=st.booleans())
def test_windows_and_ties(seed, n, window, dup, coarse):
    """Tight context windows (inadmissible options, whole rows at the cheapest fallback) and
    exact cost ties (a duplicated model; coarse utilities) exercise every branch of the
    cheapest option's tie-breaking."""
    rng = np.random.default_rng(seed)
    models = [ro.Model("a", 0.5, 1.0, window, (1, 2, 4)), ro.Model("b", 2.0, 3.0, window * 2, (1, 2))]
    if dup:
        models.append(ro.Model("a2", 0.5, 1.0, window, (1, 2, 4)))
    tasks = [ro.Task("t0", 20), ro.Task("t1", 0)]
    J = sum(len(m.batch_sizes) for m in models)
    util = rng.random((n, J))
    if coarse:
        util = np.round(util * 2) / 2
    inst = ro.Instance(models=models, tasks=tasks, query_task=rng.integers(0, 2, n),
                       input_tokens=rng.integers(1, 30, n).astype(float),
                       output_tokens=rng.integers(1, 20, (n, len(models))).astype(float), utility=util)
    _assert_same(inst)
