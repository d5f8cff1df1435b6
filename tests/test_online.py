"""Online routers: the queue identity, determinism, feedback loss and delay, withdrawal,
cost accounting against ro.evaluate, the window planner against brute force, bad input."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import robatch_opt as ro
from robatch_opt import online as on
from robatch_opt.cli import main

ROUTERBENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "routerbench"


@pytest.fixture(scope="module")
def split():
    return on.llm_split("qwen3", n=300, tasks=["GSM8K", "MMLU", "MBPP"], seed=3)


@pytest.fixture(scope="module")
def stream(split):
    return split.stream


def _mess(s, split=None, **kw):
    kw.setdefault("alpha", 0.8)
    return on.MessPlusRouter(s.model_names, predictor=copy.deepcopy(split.predictor) if split else None, **kw)


def _batch(s, split=None, **kw):
    kw.setdefault("alpha", 0.8)
    kw.setdefault("max_wait_s", 2.0)
    return on.BatchingRouter(s.model_names, predictor=copy.deepcopy(split.predictor) if split else None, **kw)


# ------------------------------------------------------------------ queue identity
@settings(max_examples=60)
@given(alpha=st.floats(0.0, 1.0), ys=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200))
def test_queue_identity_over_random_outcomes(stream, alpha, ys):
    """sum_t (alpha - y_t) <= Q_T, hence mean(y) >= alpha - Q_T / T (proofs/online_sla.md, (1))."""
    r = on.MessPlusRouter(stream.model_names, alpha=alpha, c=0.0).bind(stream)
    d = on.Dispatch(time_s=0.0, task=0, model=0, batch_size=1, requests=np.array([0]))
    q_prev = 0.0
    for y in ys:
        r.feedback(on.Feedback(dispatch=d, served=np.array([0]), satisfied=np.array([y]), rows=np.zeros(0, np.int64),
                               outcome=np.zeros(0), output_tokens=np.zeros(0)))
        assert r.Q >= 0.0 and r.Q >= q_prev + alpha - y - 1e-12      # one step of the recursion
        q_prev = r.Q
    T = len(ys)
    assert sum(alpha - y for y in ys) <= r.Q + 1e-9 * T
    assert np.mean(ys) >= alpha - r.Q / T - 1e-9


@pytest.mark.parametrize("make", [_mess, _batch])
def test_replay_satisfies_the_queue_identity(split, stream, make):
    res = on.replay(stream, make(stream, split), rate_per_s=5.0, seed=1)
    assert res.n_feedback == res.n_requests
    assert res.shortfall <= res.final_queue + 1e-9
    assert res.satisfaction >= res.sla_bound - 1e-9
    assert np.all(res.queue >= 0)


# ------------------------------------------------------------------ determinism
@pytest.mark.parametrize("make", [_mess, _batch])
def test_same_seed_same_decisions(split, stream, make):
    a = on.replay(stream, make(stream, split, seed=4), rate_per_s=5.0, seed=2)
    b = on.replay(stream, make(stream, split, seed=4), rate_per_s=5.0, seed=2)
    np.testing.assert_array_equal(a.model, b.model)
    np.testing.assert_array_equal(a.batch_size, b.batch_size)
    np.testing.assert_array_equal(a.explored, b.explored)
    np.testing.assert_array_equal(a.cost_per_request_usd, b.cost_per_request_usd)
    np.testing.assert_array_equal(a.queue, b.queue)
    c = on.replay(stream, make(stream, split, seed=5), rate_per_s=5.0, seed=2)
    assert not np.array_equal(a.explored, c.explored)          # the router's seed drives exploration


@pytest.mark.parametrize("router_class", [on.MessPlusRouter, on.BatchingRouter])
def test_one_fit_starts_several_routers_and_is_never_changed(split, stream, router_class):
    # The README passes one fitted predictor to two routers: the second used to start from
    # what the first had learned, so the comparison depended on the order of the replays.
    kw = {"max_wait_s": 2.0} if router_class is on.BatchingRouter else {}
    before = copy.deepcopy(split.predictor.W)
    first = router_class(stream.model_names, alpha=0.8, predictor=split.predictor, **kw)
    a = on.replay(stream, first, rate_per_s=5.0, seed=2)
    np.testing.assert_array_equal(split.predictor.W, before)            # learned on a copy
    assert not np.array_equal(first.predictor.W, before)                # which did learn
    b = on.replay(stream, router_class(stream.model_names, alpha=0.8, predictor=split.predictor, **kw),
                  rate_per_s=5.0, seed=2)
    again = on.replay(stream, first, rate_per_s=5.0, seed=2)            # the same router, replayed
    for r in (b, again):
        np.testing.assert_array_equal(a.model, r.model)
        np.testing.assert_array_equal(a.queue, r.queue)


# ------------------------------------------------------------------ feedback
@pytest.mark.parametrize("make", [_mess, _batch])
def test_missing_feedback(split, stream, make):
    res = on.replay(stream, make(stream, split), rate_per_s=5.0, seed=1, feedback_rate=0.5)
    assert 0 < res.n_feedback < res.n_requests
    assert res.shortfall <= res.final_queue + 1e-9
    assert (res.model >= 0).all()                               # every request is still served
    none = on.replay(stream, make(stream, split), rate_per_s=5.0, seed=1, feedback_rate=0.0)
    assert none.n_feedback == 0 and none.queue.size == 0 and math.isnan(none.sla_bound)


def test_delayed_feedback_reaches_the_router_later(split, stream):
    now = on.replay(stream, _mess(stream, split), rate_per_s=5.0, seed=1)
    late = on.replay(stream, _mess(stream, split), rate_per_s=5.0, seed=1, feedback_delay_s=30.0)
    assert late.n_feedback == late.n_requests
    assert late.queue_time_s.min() >= late.dispatch_s.min() + 30.0 - 1e-9
    assert late.shortfall <= late.final_queue + 1e-9
    assert not np.array_equal(now.model, late.model)            # decisions used an older queue


# ------------------------------------------------------------------ withdrawal
@pytest.mark.parametrize("make", [_mess, _batch])
def test_model_withdrawn_mid_stream(split, stream, make):
    gone = "Qwen3-32B"
    k = stream.model_names.index(gone)
    base = on.replay(stream, make(stream, split, alpha=0.85), rate_per_s=5.0, seed=1)
    t_w = float(np.median(base.arrival_s))
    res = on.replay(stream, make(stream, split, alpha=0.85), rate_per_s=5.0, seed=1, withdraw={gone: t_w})
    assert (base.model[base.dispatch_s > t_w] == k).any()       # it was in use after t_w
    assert not (res.model[res.dispatch_s > t_w] == k).any()     # and is not any more
    assert (res.model >= 0).all() and res.n_requests == stream.n_requests
    assert math.isclose(res.cost_usd, res.cost_per_request_usd.sum(), rel_tol=1e-12)
    assert res.shortfall <= res.final_queue + 1e-9


# ------------------------------------------------------------------ accounting
def test_batching_cost_equals_evaluate_on_one_window_per_task(split, stream):
    """With no exploration and every task in one window, the replay's bill is ro.evaluate's."""
    res = on.replay(stream, _batch(stream, split, c=0.0, max_wait_s=1e6), rate_per_s=5.0, seed=1)
    opt = np.array([stream.instance.options.index((int(k), int(b))) for k, b in zip(res.model, res.batch_size)])
    ev = ro.evaluate(stream.instance, opt)
    assert math.isclose(res.cost_usd, ev.cost_usd, rel_tol=1e-9)
    assert res.n_calls == ev.n_calls
    assert math.isclose(res.outcome.sum(), ro.evaluate(stream.hindsight_instance(), opt).utility, rel_tol=1e-9)
    assert res.batch_size.max() > 1


def test_hindsight_bounds_any_policy_that_meets_alpha(split, stream):
    res = on.replay(stream, _batch(stream, split, c=0.0), rate_per_s=20.0, seed=1)
    a = math.floor(res.satisfaction * 100) / 100
    hb = on.hindsight(stream, a, batching=True)
    h1 = on.hindsight(stream, a, batching=False)
    assert hb.lower_bound_usd <= res.cost_usd
    assert hb.lower_bound_usd <= h1.cost_usd + 1e-12           # batching never costs more in hindsight
    single = on.cheapest_single_model(stream, a)
    if single.model is not None:
        assert h1.lower_bound_usd <= single.cost_usd + 1e-12


def test_calibrated_random_router_hits_alpha_in_expectation():
    acc = np.array([0.5, 0.7, 0.9])
    cost = np.array([1.0, 2.0, 10.0])
    r = on.calibrated_random_router(["a", "b", "c"], acc, cost, alpha=0.8)
    assert math.isclose(float(r.probabilities @ acc), 0.8, rel_tol=1e-12)
    assert r.probabilities[0] == 0.0                          # mixes b and c: the lower hull
    assert on.calibrated_random_router(["a", "b", "c"], acc, cost, alpha=0.6).probabilities @ cost <= 2.0


# ------------------------------------------------------------------ window planner
def _brute(score, call_value, batch):
    m, J = score.shape
    best = -np.inf
    for x in itertools.product(range(J), repeat=m):
        if np.isfinite(score[np.arange(m), x]).all():
            best = max(best, on.window_objective(score, call_value, batch, np.array(x)))
    return best


def _draw_window(data, banned: bool = False):
    """A random window: scores (m, J) in [-1, 1], batch sizes in {1, 2, 4}, call values in [0, 2];
    with ``banned``, some options not allowed (-inf) but every request keeps one."""
    m = data.draw(st.integers(1, 5))
    J = data.draw(st.integers(1, 4))
    batch = np.array(data.draw(st.lists(st.sampled_from([1, 2, 4]), min_size=J, max_size=J)), dtype=np.int64)
    score = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=m * J, max_size=m * J))).reshape(m, J)
    if banned:
        ban = np.array(data.draw(st.lists(st.booleans(), min_size=m * J, max_size=m * J))).reshape(m, J)
        ban[np.arange(m), data.draw(st.lists(st.integers(0, J - 1), min_size=m, max_size=m))] = False
        score[ban] = -np.inf
    call_value = np.array(data.draw(st.lists(st.floats(0, 2), min_size=J, max_size=J)))
    return score, call_value, batch


@settings(max_examples=40)
@given(data=st.data())
def test_window_planner_against_brute_force(data):
    score, call_value, batch = _draw_window(data)
    x = on.plan_window(score, call_value, batch)
    got = on.window_objective(score, call_value, batch, x)
    start = np.argmax(score - call_value / batch, axis=1)
    assert got >= on.window_objective(score, call_value, batch, start) - 1e-12
    opt = _brute(score, call_value, batch)
    assert got <= opt + 1e-12
    if (batch == 1).all():
        assert math.isclose(got, opt, rel_tol=1e-12, abs_tol=1e-12)   # separable: exact


def test_window_planner_breaks_ties_to_the_smaller_batch():
    # The audit's case: with the queue at 0 a lone request's score is the same on b = 1 and
    # b = 8 (one call either way), and the amortized start took b = 8, whose answer keeps
    # less of its quality. A second request of another option shows the pass keeps the rest.
    score = np.array([[-1.0, -1.0, -5.0], [-9.0, -9.0, -1.0]])
    call_value = np.array([0.5, 0.5, 0.1])
    batch = np.array([1, 8, 1])
    x = on.plan_window(score, call_value, batch)
    assert x.tolist() == [0, 2]
    assert np.argmax(score - call_value / batch, axis=1).tolist() == [1, 2]     # the amortized start


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_exact_window_planner_is_the_brute_force_optimum(data):
    score, call_value, batch = _draw_window(data, banned=True)
    m = score.shape[0]
    wp = on.plan_window_exact(score, call_value, batch)
    opt = _brute(score, call_value, batch)
    assert np.isfinite(score[np.arange(m), wp.option]).all()
    assert wp.objective == on.window_objective(score, call_value, batch, wp.option)
    assert math.isclose(wp.objective, opt, rel_tol=1e-9, abs_tol=1e-9)
    assert wp.proven and wp.bound >= opt - 1e-9
    heuristic = on.window_objective(score, call_value, batch, on.plan_window(score, call_value, batch))
    assert wp.objective >= heuristic                       # never worse than the heuristic it starts from
    assert (wp.source == "exact") == (wp.objective > heuristic)


def test_exact_window_planner_refuses_a_bad_time_limit():
    with pytest.raises(on.OnlineError, match="`time_limit_s`"):
        on.plan_window_exact(np.zeros((2, 2)), np.zeros(2), np.ones(2, dtype=np.int64), time_limit_s=0.0)
    with pytest.raises(on.OnlineError, match="request has no allowed option"):
        on.plan_window_exact(np.full((1, 2), -np.inf), np.zeros(2), np.ones(2, dtype=np.int64))
    # A NumPy number is a number (BatchingRouter's exact_time_s takes one): it was refused
    # with "must be a finite number > 0, got np.int64(1)".
    wp = on.plan_window_exact(np.zeros((2, 2)), np.zeros(2), np.ones(2, dtype=np.int64), time_limit_s=np.int64(1))
    assert wp.option.shape == (2,)


def test_exact_window_planner_on_an_empty_window():
    """An empty window is planned like plan_window's (found trying the function: numpy's
    max of an empty bincount raised ValueError)."""
    wp = on.plan_window_exact(np.zeros((0, 2)), np.zeros(2), np.ones(2, dtype=np.int64))
    assert wp.option.shape == (0,) and wp.option.dtype == np.int64
    assert wp.objective == 0.0 and wp.proven and wp.bound == 0.0


@pytest.mark.parametrize("option", [[5, 0], [0, -1], [0], [0, 1, 1], [[0, 1]]])
def test_window_objective_refuses_a_bad_option(option):
    """window_objective handed its option straight to a kernel without bounds checks: [5, 0]
    returned 0.5 and [0, 1, 1] crashed the interpreter (found checking the exact planner's
    objective by hand)."""
    with pytest.raises(on.OnlineError, match="`option`"):
        on.window_objective(np.array([[1.0, 2.0], [0.5, -np.inf]]), np.zeros(2), np.ones(2, dtype=np.int64), option)


@pytest.mark.parametrize("solver", ["heuristic", "exact"])
def test_window_solvers_keep_the_accounting(split, stream, solver):
    r = on.BatchingRouter(stream.model_names, alpha=0.8, max_wait_s=2.0, window_solver=solver,
                          predictor=copy.deepcopy(split.predictor), seed=0)
    res = on.replay(stream, r, rate_per_s=20.0, seed=0)
    assert res.n_requests == stream.n_requests and (res.model >= 0).all()
    assert r.windows_exact == (len(r.window_sizes) if solver == "exact" else 0)
    assert r.windows_proven <= r.windows_exact and r.windows_improved <= r.windows_exact


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw, field", [
    (dict(alpha=-0.1), "alpha"), (dict(alpha=1.5), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(alpha=0.8, V=0.0), "V"), (dict(alpha=0.8, V=-1.0), "V"), (dict(alpha=0.8, c=-0.1), "c"),
    (dict(alpha=0.8, seed=-1), "seed"),
])
def test_bad_router_parameters(stream, kw, field):
    with pytest.raises(on.OnlineError, match=f"`{field}`"):
        on.MessPlusRouter(stream.model_names, **kw)


def test_bad_batching_and_replay_parameters(stream):
    with pytest.raises(on.OnlineError, match="`max_wait_s`"):
        on.BatchingRouter(stream.model_names, alpha=0.8, max_wait_s=-1.0)
    with pytest.raises(on.OnlineError, match="`max_batch`"):
        on.BatchingRouter(stream.model_names, alpha=0.8, max_wait_s=1.0, max_batch=0)
    with pytest.raises(on.OnlineError, match="`window_solver`"):
        on.BatchingRouter(stream.model_names, alpha=0.8, max_wait_s=1.0, window_solver="optimal")
    with pytest.raises(on.OnlineError, match="`exact_time_s`"):
        on.BatchingRouter(stream.model_names, alpha=0.8, max_wait_s=1.0, exact_time_s=0.0)
    r = on.MessPlusRouter(stream.model_names, alpha=0.8)
    for kw, field in [(dict(rate_per_s=-1.0), "rate_per_s"), (dict(rate_per_s=0.0), "rate_per_s"),
                      (dict(arrival="weekly"), "arrival"), (dict(feedback_rate=1.5), "feedback_rate"),
                      (dict(feedback_delay_s=-2.0), "feedback_delay_s"),
                      (dict(arrival=np.arange(stream.n_requests)[::-1].astype(float)), "arrival"),
                      (dict(withdraw={"Qwen3-32B": -1.0}), "withdraw")]:
        with pytest.raises(on.OnlineError, match=f"`{field}"):
            on.replay(stream, r, **kw)
    with pytest.raises(on.UnknownModelError, match="GPT-9"):
        on.replay(stream, r, withdraw={"GPT-9": 1.0})
    with pytest.raises(on.UnknownModelError, match="GPT-9"):
        on.replay(stream, on.MessPlusRouter(["Qwen3-8B", "GPT-9"], alpha=0.8))
    r.bind(stream)
    with pytest.raises(on.UnknownModelError, match="GPT-9"):
        r.withdraw("GPT-9")
    with pytest.raises(on.StreamError, match="outcome"):
        on.RequestStream(instance=stream.instance, outcome=np.full(stream.outcome.shape, np.nan),
                         retention=stream.retention, features=stream.features,
                         output_tokens_prior=stream.output_tokens_prior, source="x")


def test_replay_names_a_router_that_is_not_one(stream):
    with pytest.raises(on.OnlineError, match="`router`: must be a MessPlusRouter"):
        on.replay(stream, "x")


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_replay_of_empty_routing_data_and_read_only_results():
    # New-user audit: an empty RoutingData stream raised StopIteration from scikit-learn, and
    # a (frozen) result's arrays could be written.
    data = ro.datasets.load_routerbench(ROUTERBENCH / "arc_challenge_train.csv").dropna()
    res = on.replay(data.select([]), on.MessPlusRouter(data.model_names, alpha=0.8))
    assert res.n_requests == 0 and res.cost_usd == 0.0 and res.model.shape == (0,)
    res = on.replay(data.select(np.arange(20)), on.MessPlusRouter(data.model_names, alpha=0.8), rate_per_s=5.0)
    assert res.n_requests == 20
    for name in ("model", "batch_size", "wait_s", "outcome", "queue"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(res, name)[0] = 0


def test_helper_review_argument_checks(split, stream):
    # Found by a helper writing the docstrings: tol <= 0 never returned; unbound routers and
    # bad request rows were not named; partial_fit learned NaN as a failure and took 1.7 as
    # model 1; fit and predict of another width failed inside NumPy; alpha was not checked.
    r = _mess(stream, split)
    for tol in (0.0, -1.0, math.nan):
        with pytest.raises(on.OnlineError, match="`tol`"):
            on.equilibrium_queue(r, split.train, tol=tol)
    b = _batch(stream, split)
    for call in (b.next_deadline_s, lambda: b.advance(1.0), lambda: b.submit(0, 0.0)):
        with pytest.raises(on.OnlineError, match="`router`: call bind"):
            call()
    r.bind(stream)
    for i in (-1, stream.n_requests, 1.5, True):
        with pytest.raises(on.OnlineError, match="`i`: must be a request row"):
            r.submit(i, 0.0)
    lr = on.OnlineLogistic(4, 2)
    with pytest.raises(on.OnlineError, match="`model`: must be an integer"):
        lr.partial_fit(np.ones((1, 4)), 1.7, [1.0])
    with pytest.raises(on.OnlineError, match=r"`y\[1\]`: must be an outcome in \[0, 1\]"):
        lr.partial_fit(np.ones((2, 4)), 1, [1.0, 2.0])
    lr.partial_fit(np.ones((2, 4)), 1, [1.0, math.nan])
    assert lr._buf_n.tolist() == [0, 1]                      # the unobserved outcome is not learned
    for call in (lambda: lr.fit(np.ones((3, 5)), np.ones((3, 2))), lambda: lr.predict(np.ones((3, 5)))):
        with pytest.raises(on.OnlineError, match="`X`: must have 4 columns"):
            call()
    for alpha in (math.nan, 2.0):
        with pytest.raises(on.OnlineError, match="`alpha`"):
            on.cheapest_single_model(stream, alpha)
        with pytest.raises(on.OnlineError, match="`alpha`"):
            on.offline_plan(stream, alpha, split.predictor)


def test_router_subset_of_the_pool(split, stream):
    names = ["Qwen3-4B", "Qwen3-14B"]
    res = on.replay(stream, on.MessPlusRouter(names, alpha=0.7, c=0.0), rate_per_s=5.0)
    assert set(np.array(stream.model_names)[res.model]) <= set(names)


def test_bursty_arrivals_are_burstier_than_poisson():
    p = np.diff(on.arrival_times(4000, arrival="poisson", rate_per_s=2.0, seed=0))
    b = np.diff(on.arrival_times(4000, arrival="bursty", rate_per_s=2.0, seed=0))
    assert abs(p.mean() - 0.5) < 0.05 and abs(b.mean() - 0.5) < 0.1
    assert b.std() / b.mean() > 1.5 * p.std() / p.mean()


# ------------------------------------------------------------------ real data
@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_routerbench_stream_bills_real_costs():
    data = ro.datasets.load_routerbench(ROUTERBENCH).dropna().select(np.arange(0, 2205, 11))
    s = on.as_stream(data)
    res = on.replay(s, on.MessPlusRouter(s.model_names, alpha=0.7, c=0.0), rate_per_s=5.0)
    real = data.cost_usd[np.arange(s.n_requests), res.model].sum()
    assert math.isclose(res.cost_usd, real, rel_tol=1e-6)         # unbatched: the data's own dollars
    np.testing.assert_array_equal(res.outcome, data.outcome[np.arange(s.n_requests), res.model])


# ------------------------------------------------------------------ CLI
def test_cli_online_json(capsys):
    assert main(["online", "--n", "200", "--alpha", "0.75", "--max-wait", "1", "--rate", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["router"] for r in out["routers"]] == ["MessPlusRouter", "BatchingRouter", "RandomRouter"]
    assert out["routers"][1]["wait_p99_s"] <= 1.0 + 1e-9
    for r in out["routers"]:
        # Met means reached: the audit found "yes" for 0.8439 at alpha 0.85 (a silent 0.01).
        assert r["sla_met"] == (r["satisfaction"] >= 0.75)
        assert r["sla_shortfall"] == pytest.approx(max(0.75 - r["satisfaction"], 0.0))


def test_cli_online_warm_start_and_exact_windows(capsys):
    # alpha 0.7 is within the simulated stream's reach in prediction (0.75 is not: Q_0 stays 0 there).
    assert main(["online", "--n", "200", "--alpha", "0.7", "--max-wait", "1", "--rate", "10", "--json",
                 "--warm-start", "--window-solver", "exact"]) == 0
    out = json.loads(capsys.readouterr().out)
    mess, batching = out["routers"][0], out["routers"][1]
    assert mess["initial_queue"] > 0 and batching["initial_queue"] > 0
    assert out["routers"][2]["initial_queue"] == 0.0                       # the random baseline keeps no queue
    assert main(["online", "--alpha", "0.75", "--window-solver", "best"]) == 2
    assert "--window-solver" in capsys.readouterr().err


def test_hindsight_names_alpha():
    s = on.llm_split("qwen3", n=50).stream
    with pytest.raises(on.OnlineError, match="`alpha`"):
        on.hindsight(s, 2.0)


def test_cli_online_text_table(capsys):
    # The header keeps its arrival text when alpha is out of reach; waits stay readable.
    assert main(["online", "--n", "100", "--alpha", "1", "--max-wait", "1e300", "--rate", "1e300"]) == 0
    out = capsys.readouterr().out
    assert "alpha 1.0  arrivals poisson 1e+300/s  hindsight: alpha unreachable" in out
    assert max(len(line) for line in out.splitlines()) < 120


def test_cli_online_bad_alpha(capsys):
    assert main(["online", "--alpha", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--alpha" in err


def test_cli_online_refuses_n_with_data(capsys):
    # --n was silently ignored with --data: the whole file streamed (new-user audit).
    assert main(["online", "--alpha", "0.8", "--data", str(ROUTERBENCH), "--n", "100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n" in err and "--data" in err


@pytest.mark.parametrize("max_wait_s, max_batch", [(0.5, None), (2.0, 4), (0.0, None)])
def test_batching_waits_at_most_max_wait(split, stream, max_wait_s, max_batch):
    r = _batch(stream, split, max_wait_s=max_wait_s, max_batch=max_batch)
    res = on.replay(stream, r, arrival="bursty", rate_per_s=10.0, seed=1)
    assert (res.wait_s >= 0).all() and res.wait_s.max() <= max_wait_s + 1e-9
    if max_batch is not None:
        assert max(r.window_sizes) <= max_batch


class _TaskMeans:
    """A frozen predictor of RoutingData rows (the interface of ro.proxy.TextUtility)."""

    def __init__(self, data):
        self.means = np.array([data.outcome[data.task == t].mean(axis=0) for t in range(len(data.task_names))])
        self.calls = 0

    def predict(self, data):
        self.calls += 1
        assert hasattr(data, "question")                         # RoutingData rows, not features
        return self.means[data.task]


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_routing_data_predictor_gets_routing_data_rows():
    data = ro.datasets.load_routerbench(ROUTERBENCH).dropna().select(np.arange(0, 2205, 7))
    pred = _TaskMeans(data)
    s = on.as_stream(data)
    for r in (on.MessPlusRouter(s.model_names, alpha=0.8, predictor=pred),
              on.BatchingRouter(s.model_names, alpha=0.8, max_wait_s=1.0, predictor=pred)):
        res = on.replay(s, r, rate_per_s=10.0)
        assert (res.model >= 0).all()
        assert r.predictor.calls > 0
    assert pred.calls > 0                                        # frozen (no partial_fit): not copied


def test_instance_and_workload_streams(split):
    inst = ro.workloads.llm("gemma3", n=120, seed=2)
    res = on.replay(inst, on.MessPlusRouter([m.name for m in inst.models], alpha=0.7), rate_per_s=5.0)
    assert res.n_requests == 120 and "Instance" in res.source
    w = ro.workloads.llm_truth("gemma3", n=120, seed=2)
    res = on.replay(w, on.BatchingRouter(list(w.model_names), alpha=0.7, max_wait_s=3.0), rate_per_s=5.0)
    assert res.n_requests == 120 and res.batch_size.max() > 1


def test_offline_plan_with_a_perfect_predictor_is_the_hindsight_optimum(stream):
    class Oracle:
        def predict(self, X):
            return stream.outcome

    for batching in (False, True):
        off = on.offline_plan(stream, 0.8, Oracle(), batching=batching)
        h = on.hindsight(stream, 0.8, batching=batching)
        assert math.isclose(off.cost_usd, h.cost_usd, rel_tol=1e-12)
        assert off.predicted_mean_utility >= 0.8 - 1e-12
        assert math.isclose(off.realized_satisfaction, h.mean_utility, rel_tol=1e-12)


def test_cli_online_plot_and_bad_plot_path(tmp_path, capsys):
    out = tmp_path / "o.png"
    assert main(["online", "--n", "150", "--alpha", "0.7", "--max-wait", "1", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]             # no temporary file left
    capsys.readouterr()
    assert main(["online", "--alpha", "0.7", "--plot", str(tmp_path / "missing" / "o.png")]) == 2
    assert "--plot" in capsys.readouterr().err


class _Tokens:
    """A cost model: output tokens per request and model (the interface of ro.proxy.TextUtility)."""

    def __init__(self, model_names, cheap: str, n_requests: int):
        self.model_names = list(model_names)
        self.tokens = np.full((n_requests, len(model_names)), 1e9)
        self.tokens[:, self.model_names.index(cheap)] = 10.0

    def predict_output_tokens(self, data):
        assert hasattr(data, "question")                         # RoutingData rows
        return self.tokens[: data.n_queries]


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_cost_model_prices_each_request():
    data = ro.datasets.load_routerbench(ROUTERBENCH).dropna().select(np.arange(0, 2205, 7))
    s = on.as_stream(data)
    cheap = s.model_names[3]
    # Every other model is predicted to write 10^9 tokens: at V = 10^3 no queue can pay for it.
    cm = _Tokens(list(reversed(s.model_names)), cheap, s.n_requests)     # its own model order
    for r in (on.MessPlusRouter(s.model_names, alpha=0.8, V=1e3, c=0.0, predictor=_TaskMeans(data), cost_model=cm),
              on.BatchingRouter(s.model_names, alpha=0.8, V=1e3, c=0.0, max_wait_s=1.0,
                                predictor=_TaskMeans(data), cost_model=cm)):
        res = on.replay(s, r, rate_per_s=10.0)
        assert (np.asarray(s.model_names)[res.model] == cheap).all()


def test_bad_cost_model(split, stream):
    with pytest.raises(on.OnlineError, match="`cost_model`"):
        on.MessPlusRouter(stream.model_names, alpha=0.8, cost_model=object())
    with pytest.raises(on.OnlineError, match="`cost_model`.*RoutingData"):
        on.replay(stream, on.MessPlusRouter(stream.model_names, alpha=0.8,
                                            cost_model=_Tokens(stream.model_names, stream.model_names[0], 1)))


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_cost_model_must_know_every_model():
    data = ro.datasets.load_routerbench(ROUTERBENCH).dropna().select(np.arange(0, 2205, 50))
    s = on.as_stream(data)
    cm = _Tokens(s.model_names[1:], s.model_names[1], s.n_requests)
    with pytest.raises(on.UnknownModelError, match="`cost_model`"):
        on.replay(s, on.MessPlusRouter(s.model_names, alpha=0.8, cost_model=cm))


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_cost_model_on_an_empty_stream():
    """An empty stream replays to nothing with a TextUtility cost model too (found replaying
    stream.subset([]): the router asked the TextUtility for 0 rows' tokens and scikit-learn's
    TF-IDF raised 'Found array with 0 sample(s)'; without a cost model it replays)."""
    data = ro.datasets.load_routerbench(ROUTERBENCH).dropna().select(np.arange(0, 2205, 5))
    tu = ro.proxy.TextUtility(blend=0.0).fit(data)
    s = on.as_stream(data).subset([])
    for r in (on.MessPlusRouter(s.model_names, alpha=0.8, cost_model=tu),
              on.BatchingRouter(s.model_names, alpha=0.8, max_wait_s=1.0, cost_model=tu)):
        assert on.replay(s, r, rate_per_s=1.0).n_requests == 0


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_unfitted_cost_model_is_named():
    """An unfitted TextUtility as cost_model: the error named `predictor` (TextUtility's own
    field), pointing at the wrong argument (found passing cost_model=ro.proxy.TextUtility())."""
    s = on.as_stream(ro.datasets.load_routerbench(ROUTERBENCH).dropna().select(np.arange(0, 2205, 50)))
    r = on.MessPlusRouter(s.model_names, alpha=0.8, predictor=_TaskMeans(s.data), cost_model=ro.proxy.TextUtility())
    with pytest.raises(on.OnlineError, match="`cost_model`.*not fitted"):
        r.bind(s)


def test_compiled_mess_decision_matches_the_numpy_formula(split, stream):
    """route()'s compiled decision is argmin_k V cost_k + Q (alpha - p_k) as written in NumPy."""
    r = on.MessPlusRouter(stream.model_names, alpha=0.8, c=0.0, predictor=copy.deepcopy(split.predictor)).bind(stream)
    r.withdraw(stream.model_names[0])
    rng = np.random.default_rng(0)
    for i in range(stream.n_requests):
        r.Q = float(rng.choice([0.0, 0.5, 3.0, 40.0]))
        t = int(r.task[i])
        p = r._predict(np.array([i]))[0]
        cost = r.fixed_usd[t] + r.input_usd[i] + r.out_mean[t] * r.price_out
        score = np.where(r._allowed_now[i], r.V_resolved * cost + r.Q * (r.alpha - p), np.inf)
        (d,) = r.route(i)
        assert score[d.model] <= score.min() + 1e-12 * max(1.0, abs(score.min()))
        assert d.model != 0                                    # withdrawn


@pytest.mark.parametrize("make", ["mess", "batching"])
def test_warm_started_queue_keeps_the_identity(split, stream, make):
    """With Q_0 > 0 the certificate is sum (alpha - y) <= Q_T - Q_0 (proofs/online_sla.md, (1))."""
    kw = dict(max_wait_s=1.0) if make == "batching" else {}
    R = on.BatchingRouter if make == "batching" else on.MessPlusRouter
    q0 = on.equilibrium_queue(R(stream.model_names, alpha=0.8, predictor=copy.deepcopy(split.predictor), **kw),
                              split.train)
    assert 0 < q0 < math.inf
    res = on.replay(stream, R(stream.model_names, alpha=0.8, initial_queue=q0,
                              predictor=copy.deepcopy(split.predictor), **kw), rate_per_s=20.0)
    assert res.initial_queue == q0
    assert res.shortfall <= res.queue_growth + 1e-9
    assert res.sla_bound == pytest.approx(res.alpha - res.queue_growth / res.n_feedback)
    assert res.summary()["queue_initial"] == q0


def test_equilibrium_queue_is_the_least_that_meets_alpha_in_prediction(split):
    cal = split.train
    r = on.MessPlusRouter(cal.model_names, alpha=0.8, predictor=copy.deepcopy(split.predictor))
    q = on.equilibrium_queue(r, cal)
    p = r._predict(np.arange(cal.n_requests))
    cost = r.fixed_usd[r.task] + r.input_usd + r.out_mean[r.task] * r.price_out

    def mean_p(Q):
        k = np.argmin(r.V_resolved * cost + Q * (r.alpha - p), axis=1)
        return p[np.arange(cal.n_requests), k].mean()
    assert mean_p(q) >= 0.8 > mean_p(q * (1 - 1e-3))
    assert on.equilibrium_queue(on.MessPlusRouter(cal.model_names, alpha=0.0), cal) == 0.0
    assert on.equilibrium_queue(on.MessPlusRouter(cal.model_names, alpha=1.0,
                                                  predictor=copy.deepcopy(split.predictor)), cal) == math.inf


def test_bad_initial_queue_and_calibration(stream):
    for bad in (-1.0, float("nan"), float("inf"), "3"):
        with pytest.raises(on.OnlineError, match="`initial_queue`"):
            on.MessPlusRouter(stream.model_names, alpha=0.8, initial_queue=bad)
    with pytest.raises(on.OnlineError, match="`calibration`"):
        on.equilibrium_queue(on.MessPlusRouter(stream.model_names, alpha=0.8), stream.instance)


@pytest.mark.parametrize("shape", [(-1, 0), (0, -1), (0, 1)])
def test_online_logistic_of_another_shape_is_refused(stream, shape):
    """A learner of another pool or feature space: the compiled MESS+ decision indexed its
    weights unchecked and silently never chose the models past its last column (found by
    replaying with OnlineLogistic(d, K - 1))."""
    d, K = stream.features.shape[1] + shape[0], len(stream.model_names) + shape[1]
    for r in (on.MessPlusRouter(stream.model_names, alpha=0.8, predictor=on.OnlineLogistic(d, K)),
              on.BatchingRouter(stream.model_names, alpha=0.8, max_wait_s=1.0, predictor=on.OnlineLogistic(d, K))):
        with pytest.raises(on.OnlineError, match="`predictor`"):
            r.bind(stream)


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_routerbench_split_refuses_bad_fold_seed_and_too_few_rows(tmp_path, capsys):
    # New-user audit: fold=2 was an IndexError, seed=-1 NumPy's ValueError, and a one-row log
    # "internal error: StopIteration" from the text features of an empty training half.
    one_row = tmp_path / "rb1.csv"
    one_row.write_text("".join((ROUTERBENCH / "mbpp_train.csv").read_text().splitlines(keepends=True)[:2]))
    for kw, field in [(dict(fold=2), "fold"), (dict(fold=True), "fold"), (dict(seed=-1), "seed"),
                      (dict(seed=1.5), "seed")]:
        with pytest.raises(on.OnlineError, match=f"`{field}`"):
            on.routerbench_split(ROUTERBENCH, **kw)
    with pytest.raises(on.StreamError, match=f"at least {on.MIN_SPLIT_ROWS}"):
        on.routerbench_split(one_row)
    assert main(["online", "--data", str(one_row), "--alpha", "0.7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 1 rows" in err


def test_replay_refuses_a_bad_seed(stream):
    for seed in (-1, 1.5, True):
        with pytest.raises(on.OnlineError, match="`seed`"):
            on.replay(stream, on.MessPlusRouter(stream.model_names, alpha=0.8), seed=seed)


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="RouterBench data not present")
def test_cli_online_window_solver_needs_max_wait_and_traceback_goes_anywhere(tmp_path, capsys):
    assert main(["online", "--n", "100", "--alpha", "0.8", "--window-solver", "exact"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-wait" in err
    # --traceback after the command is taken too (the hint says "rerun with --traceback"):
    # the real error is raised, not "unrecognized arguments: --traceback".
    one_row = tmp_path / "rb1.csv"
    one_row.write_text("".join((ROUTERBENCH / "mbpp_train.csv").read_text().splitlines(keepends=True)[:2]))
    with pytest.raises(on.StreamError, match="1 of 1 rows"):
        main(["online", "--data", str(one_row), "--alpha", "0.7", "--traceback"])


def _own_log(tmp_path, n=60):
    """A log in RouterBench's format of two models that are not RouterBench's."""
    import csv
    rng = np.random.default_rng(0)
    path = tmp_path / "own.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["", "sample_id", "prompt", "eval_name", "small", "large", "small|total_cost",
                    "large|total_cost", "oracle_model_to_route_to"])
        for i in range(n):
            task = "math" if i % 2 else "trivia"
            w.writerow([i, f"q{i}", repr([f"Answer briefly.\n\nQuestion {i} about {task}?"]), task,
                        float(rng.random() < 0.5), float(rng.random() < 0.8),
                        f"{(30 + i) * 0.2e-6:.10f}", f"{(30 + i) * 2e-6:.10f}", "large"])
    return path


def test_cli_online_replays_an_own_log_with_its_prices(tmp_path, capsys):
    log = _own_log(tmp_path)
    prices = tmp_path / "prices.json"
    # Saved by an editor that starts UTF-8 with a byte-order mark, as every reader accepts.
    prices.write_text("\ufeff" + json.dumps({"small": [0.2, 0.2], "large": [2.0, 2.0]}), encoding="utf-8")
    assert main(["online", "--alpha", "0.6", "--data", str(log), "--prices", str(prices), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stream"].startswith("Log in RouterBench format, 2 tasks x 2 models: 30 requests streamed")
    assert {r["router"] for r in out["routers"]} == {"MessPlusRouter", "RandomRouter"}
    assert all(r["cost_usd"] > 0 for r in out["routers"])
    # Without the prices the loader names the model it cannot price, in one line.
    assert main(["online", "--alpha", "0.6", "--data", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'small'" in err and "price table" in err


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ("{}", "an empty object"),
    ('{"small": [0.2], "large": [2, 2]}', "must be a pair"),
    ('{"small": [0.2, 0], "large": [2, 2]}', "output price of model 'small' must be > 0"),
    # New-user audit: a bad entry named the data file, and a misspelt key was ignored.
    ('{"small": [0.2, 0.2], "large": [2, -1]}', "prices.json: column `large`: output price"),
    ('{"small": [0.2, 0.2], "larg": [2, 2]}', "model 'larg' of the price table is not a model of the data; "
                                             "did you mean 'large'?"),
])
def test_cli_online_bad_prices_file(tmp_path, capsys, content, message):
    log = _own_log(tmp_path)
    prices = tmp_path / "prices.json"
    if content is not None:
        prices.write_text(content)
    assert main(["online", "--alpha", "0.6", "--data", str(log), "--prices", str(prices)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_cli_online_plot_refuses_to_overwrite_the_prices_file(tmp_path, capsys):
    log = _own_log(tmp_path)
    prices = tmp_path / "prices"
    prices.write_text(json.dumps({"small": [0.2, 0.2], "large": [2.0, 2.0]}))
    before = prices.read_bytes()
    assert main(["online", "--alpha", "0.6", "--data", str(log), "--prices", str(prices), "--plot", str(prices)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "also an input of this command" in err
    assert prices.read_bytes() == before


def test_prices_typo_does_not_fall_back_to_routerbenchs_price(tmp_path):
    """A user's key misspelling a model RouterBench prices would have been ignored silently."""
    import csv
    path = tmp_path / "mixed.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "prompt", "eval_name", "gpt-4-1106-preview", "mine",
                    "gpt-4-1106-preview|total_cost", "mine|total_cost"])
        for i in range(40):
            w.writerow([f"q{i}", repr([f"Sys.\n\nQ {i}?"]), "t", 1.0, 0.0, f"{(20 + i) * 10e-6:.8f}",
                        f"{(20 + i) * 0.1e-6:.10f}"])
    with pytest.raises(ro.datasets.UnknownPriceError, match="did you mean 'gpt-4-1106-preview'"):
        on.routerbench_split(path, prices={"mine": (0.1, 0.1), "gpt-4-1106-previw": (5.0, 15.0)})


def test_prices_extend_routerbenchs_own(tmp_path):
    """A log mixing a RouterBench model with a new one needs only the new one's price (review)."""
    import csv
    path = tmp_path / "mixed.csv"
    rng = np.random.default_rng(1)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "prompt", "eval_name", "gpt-4-1106-preview", "mine",
                    "gpt-4-1106-preview|total_cost", "mine|total_cost"])
        for i in range(40):
            w.writerow([f"q{i}", repr([f"Sys.\n\nQ {i}?"]), "t", float(rng.random() < 0.8), float(rng.random() < 0.5),
                        f"{(20 + i) * 10e-6:.8f}", f"{(20 + i) * 0.1e-6:.10f}"])
    split = on.routerbench_split(path, prices={"mine": (0.1, 0.1)})
    assert split.stream.n_requests == 20
    with pytest.raises(on.OnlineError, match="`prices`: must be a mapping"):
        on.routerbench_split(path, prices=[("mine", (0.1, 0.1))])


def test_cli_online_prices_need_data(capsys):
    assert main(["online", "--alpha", "0.6", "--n", "50", "--prices", "p.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--prices" in err and "--data" in err


class _ConstantP:
    """A frozen predictor: the same probabilities (one per pool model) for every request."""

    def __init__(self, p):
        self.p = np.asarray(p, dtype=np.float64)

    def predict(self, X):
        return np.tile(self.p, (X.shape[0], 1))


def test_equilibrium_queue_leaves_out_requests_no_router_model_fits():
    """A calibration request that fits none of the router's models unbatched (here: too long
    for both small-context models; only the pool's third model takes it) has no choice to
    count. It was counted as the first model's, which pulled the mean predicted p down."""
    small = [ro.Model(f"s{k}", 1.0 + k, 2.0 + k, 2000, (1, 2)) for k in range(2)]
    inst = ro.Instance(models=small + [ro.Model("big", 5.0, 9.0, 100_000, (1,))],
                       tasks=[ro.Task("t", 100)], query_task=[0] * 8,
                       input_tokens=[100, 5000] * 4, output_tokens=[10] * 8,
                       utility=[[0.5, 0.5, 0.6, 0.6, 0.9]] * 8)
    s = on.stream_from_instance(inst)
    router = on.MessPlusRouter(["s0", "s1"], alpha=0.6, V=1.0, predictor=_ConstantP([0.0, 1.0, 1.0]))
    fits = np.arange(0, 8, 2)
    q_all = on.equilibrium_queue(router, s)
    assert math.isfinite(q_all)                  # counting the long requests as s0's (p = 0) made it inf
    assert q_all == on.equilibrium_queue(router, s.subset(fits))
    only_big = on.MessPlusRouter(["s0"], alpha=0.6, V=1.0, predictor=_ConstantP([1.0, 1.0, 1.0]))
    with pytest.raises(on.OnlineError, match="`calibration`.*fits an available model"):
        on.equilibrium_queue(only_big, s.subset(np.arange(1, 8, 2)))


def test_llm_split_never_trains_on_another_splits_stream():
    """The training workload of seed s was the stream of seed s + 1000 (at n >= 1000, where
    both have n queries): a sweep over seeds 0..1000 tested one split on another's training
    data."""
    a = on.llm_split("qwen3", n=1000, seed=1000)
    b = on.llm_split("qwen3", n=1000, seed=0)
    assert not np.array_equal(a.stream.instance.input_tokens, b.train.instance.input_tokens)
    with pytest.raises(ro.InstanceError, match="`seed`.*below 2\\*\\*31"):
        on.llm_split("qwen3", n=40, seed=on.TRAIN_SEED_OFFSET)
