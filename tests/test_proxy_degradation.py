"""Batch degradation: the published fit, held-out error, recovery of a known truth, and
monotone curves with r(1) = 1 for any observations (property test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robatch_opt import proxy as P
from robatch_opt.workloads import llm_truth

GRID = np.arange(1, 129)


def _assert_curve_ok(r):
    assert r[0] == 1.0
    assert np.all((r >= 0.0) & (r <= 1.0))
    assert np.all(np.diff(r) <= 0.0)


def test_published_fit():
    deg = P.fit_degradation()
    assert set(deg.models) == {"gpt-4", "gpt-3.5-turbo"}
    assert sum(deg.n_observations.values()) == 16
    # The curves follow the data closely (ratio scale) ...
    assert max(deg.rmse.values()) < 0.05
    # ... and weaker gpt-3.5 degrades faster than gpt-4 at every batch size.
    r4, r35 = deg.retention("gpt-4", GRID[1:]), deg.retention("gpt-3.5-turbo", GRID[1:])
    assert np.all(r35 < r4)
    assert deg.gamma > 0
    # Unobserved pool models are predicted from capability: ordered by it.
    r8 = [deg.retention(m, 8) for m in ("gemma-3-1b", "Qwen3-0.6B", "Qwen3-8B", "Qwen3-32B")]
    assert r8 == sorted(r8) and 0.0 < r8[0] < r8[-1] < 1.0
    for m in ("gpt-4", "gpt-3.5-turbo", "Qwen3-4B", "gemma-3-27b"):
        _assert_curve_ok(deg.retention(m, GRID))


def test_leave_one_batch_size_out():
    out = P.leave_one_batch_size_out()
    folds = {(m, b) for m, b, _, _ in out["per_fold"]}
    assert folds == {("gpt-4", 16), ("gpt-4", 32), ("gpt-4", 64), ("gpt-3.5-turbo", 16), ("gpt-3.5-turbo", 32)}
    assert all(np.isfinite(e) and e >= 0 for _, _, e, _ in out["per_fold"])
    assert sum(n for *_, n in out["per_fold"]) == 16
    assert 0.0 < out["rmse_all"] < 0.5


def test_fit_from_simulated_log_recovers_truth():
    w = llm_truth("qwen3", n=4000, seed=5)
    log = P.simulate_logs(w, batch_fraction=1.0, seed=5)
    deg = P.fit_degradation(log)
    for k, m in enumerate(w.model_names):
        for b in (2, 4, 8):
            true_r = w.retention[w.instance.options.index((k, b))]
            assert abs(deg.retention(m, b) - true_r) < 0.03, (m, b)


def test_errors():
    deg = P.fit_degradation()
    with pytest.raises(P.DegradationError, match="capability"):
        deg.retention("my-own-model", 4)
    assert deg.retention("my-own-model", 4, capability=0.8) < 1.0
    with pytest.raises(P.DegradationError, match="batch_size"):
        deg.retention("gpt-4", 0)
    with pytest.raises(P.DegradationError, match="task"):
        deg.retention("gpt-4", 4, task="Nope")
    empty = P.published_batch_observations().select(np.zeros(16, bool))
    with pytest.raises(P.DegradationError, match="no observation"):
        P.fit_degradation(empty)
    with pytest.raises(P.DegradationError, match="accuracy"):
        P.BatchObservations(("m",), ("t",), np.array([4]), np.array([1.5]), np.array([0.9]), np.array([10.0]))
    with pytest.raises(P.DegradationError, match="batch_size"):
        P.BatchObservations(("m",), ("t",), np.array([1]), np.array([0.5]), np.array([0.9]), np.array([10.0]))


@st.composite
def observation_sets(draw):
    """Valid observations by construction: sizes first, then values (any, even non-monotone)."""
    K = draw(st.integers(1, 3))
    T = draw(st.integers(1, 3))
    models, tasks, sizes, acc, acc1, n = [], [], [], [], [], []
    for k in range(K):
        for t in range(T):
            bs = draw(st.lists(st.sampled_from([2, 3, 4, 8, 16, 32, 64]), min_size=0, max_size=4, unique=True))
            a1 = draw(st.floats(0.1, 1.0))
            for b in bs:
                models.append(f"m{k}")
                tasks.append(f"t{t}")
                sizes.append(b)
                acc1.append(a1)
                acc.append(draw(st.floats(0.0, 1.0)))
                n.append(draw(st.integers(5, 2000)))
    if not models:                      # at least one observation
        models, tasks, sizes, acc, acc1, n = ["m0"], ["t0"], [4], [0.7], [0.8], [100]
    caps = {f"m{k}": draw(st.floats(0.2, 0.95)) for k in range(K)}
    return P.BatchObservations(tuple(models), tuple(tasks), np.array(sizes), np.array(acc), np.array(acc1),
                               np.array(n, float), caps)


@settings(max_examples=40)
@given(obs=observation_sets(), cap=st.floats(0.0, 0.99))
def test_curves_monotone_with_unit_start(obs, cap):
    deg = P.fit_degradation(obs, gamma_default=1.5)
    for m in set(obs.model):
        _assert_curve_ok(deg.retention(m, GRID))
        for t in set(obs.task):
            _assert_curve_ok(deg.retention(m, GRID, task=t))
    _assert_curve_ok(deg.retention("unobserved", GRID, capability=cap))
