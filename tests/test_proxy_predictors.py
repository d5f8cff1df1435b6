"""Base utility predictors, metrics, composition, and a small end-to-end check against the truth."""

from __future__ import annotations

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt import proxy as P
from robatch_opt.workloads import llm_truth


def _logistic_data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    task = np.where(rng.random(n) < 0.5, "a", "b")
    logit = np.c_[1.5 * x[:, 0] + np.where(task == "a", 0.5, -0.5),
                  -1.0 * x[:, 0] + 0.2 * x[:, 1]]
    y = (rng.random((n, 2)) < 1 / (1 + np.exp(-logit))).astype(float)
    return x, y, task


def test_logistic_stationarity():
    """At the fitted coefficients the penalised log-likelihood gradient vanishes (reference check)."""
    x, y, task = _logistic_data()
    y[::7, 1] = np.nan                                    # unobserved pairs are skipped
    lr = P.LogisticUtility(l2=2.0).fit(x, y, task=task)
    z = (x - lr.mean_) / lr.scale_
    onehot = np.c_[task == "a", task == "b"].astype(float)
    design = np.hstack([onehot, z])
    m = lr.prior_strength
    for k in range(2):
        seen = ~np.isnan(y[:, k])
        beta = np.r_[lr.intercept_[k], lr.coef_[k]]
        p = 1 / (1 + np.exp(-design[seen] @ beta))
        # The prior: m pseudo-answers per task at the mean features, outcome = the model's rate.
        overall = (y[seen, k].sum() + m * np.nanmean(y)) / (seen.sum() + m)
        p_prior = 1 / (1 + np.exp(-lr.intercept_[k]))
        grad = design[seen].T @ (p - y[seen, k]) + np.r_[m * (p_prior - overall), 0.0, 0.0]
        # The intercepts' 1e-6 pulls toward the smoothed task rate (negligible here).
        grad[2:] += 2.0 * beta[2:]
        assert np.max(np.abs(grad)) < 1e-5
    pred = lr.predict(x, task=task)
    assert pred.shape == (3000, 2) and np.all((pred >= 0) & (pred <= 1))
    # Recovers the generating slopes (standardised scale) roughly.
    assert lr.coef_[0, 0] * 1 / lr.scale_[0] == pytest.approx(1.5, abs=0.25)


def _knn_reference(model, x_train, y_train, task_train, xq, tq):
    """Plain loop implementation of KNNUtility.predict for one query."""
    z_tr = (x_train - model.mean_) / model.scale_
    zq = (xq - model.mean_) / model.scale_
    sel = task_train == tq
    d2 = ((z_tr[sel] - zq) ** 2).sum(axis=1)
    nn = np.argsort(d2, kind="stable")[:model.k]
    w = np.exp(-0.5 * d2[nn] / max(d2[nn].max(), 1e-12))
    ys = y_train[sel][nn]
    out = []
    for k in range(ys.shape[1]):
        obs = ~np.isnan(ys[:, k])
        col = y_train[sel][:, k]
        # The task's rate, shrunk toward the model's overall rate by prior_strength answers.
        m = model.prior_strength
        seen = ~np.isnan(y_train[:, k])
        overall = (np.nansum(y_train[:, k]) + m * np.nanmean(y_train)) / (seen.sum() + m)
        prior = (np.nansum(col) + m * overall) / ((~np.isnan(col)).sum() + m)
        out.append((np.sum(w[obs] * ys[obs, k]) + model.prior_strength * prior) / (w[obs].sum() + model.prior_strength))
    return np.array(out)


def test_knn_matches_plain_reference():
    x, y, task = _logistic_data(n=800, seed=1)
    y[::5, 0] = np.nan
    knn = P.KNNUtility(k=25, chunk_size=7).fit(x, y, task=task)
    xq = np.random.default_rng(2).normal(size=(20, 2))
    tq = np.array(["a", "b"] * 10)
    got = knn.predict(xq, task=tq)
    want = np.array([_knn_reference(knn, x, y, task, xq[i], tq[i]) for i in range(20)])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_metrics_against_definitions():
    rng = np.random.default_rng(3)
    p = np.round(rng.random(300), 1)                       # many ties
    y = (rng.random(300) < p).astype(float)
    pos, neg = p[y == 1], p[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert P.roc_auc(p, y) == pytest.approx(pairs, abs=1e-12)
    assert P.brier_score(p, y) == pytest.approx(np.mean((p - y) ** 2))
    assert P.expected_calibration_error(np.full(4, 0.25), [1, 0, 0, 0]) == pytest.approx(0.0)
    assert P.expected_calibration_error(np.full(4, 0.75), [1, 0, 0, 0]) == pytest.approx(0.5)
    assert np.isnan(P.roc_auc([0.1, 0.2], [1, 1]))


def test_predictor_errors():
    x, y, task = _logistic_data(n=100)
    with pytest.raises(P.PredictorError, match="outcomes"):
        P.LogisticUtility().fit(x, y * 2, task=task)
    with pytest.raises(P.PredictorError, match=r"features\[3, 1\]"):
        bad = x.copy()
        bad[3, 1] = np.nan
        P.KNNUtility().fit(bad, y, task=task)
    with pytest.raises(P.PredictorError, match="not fitted"):
        P.KNNUtility().predict(x)
    lr = P.LogisticUtility().fit(x, y, task=task)
    with pytest.raises(P.PredictorError, match="unknown task"):
        lr.predict(x[:2], task=["a", "zzz"])
    with pytest.raises(P.PredictorError, match="columns"):
        lr.predict(x[:, :1], task=task)
    with pytest.raises(P.PredictorError, match="unknown to the base predictor"):
        P.ProxyUtility(lr, P.fit_degradation()).utility(x, task, model_names=["nope"])


@pytest.fixture(scope="module")
def pipeline():
    """A small Qwen3 workload: train 2,400 / test 600 queries, logs drawn from the truth."""
    w = llm_truth("qwen3", n=3000, seed=11)
    x, names = P.query_features(w, seed=11)
    train, test = np.arange(2400), np.arange(2400, 3000)
    log = P.simulate_logs(w, train, features=x, feature_names=names, seed=11)
    deg = P.fit_degradation(log)
    labels = np.array(w.task_names)[w.instance.query_task]
    return w, x, train, test, log, deg, labels


def test_proxy_instance_is_consistent(pipeline):
    w, x, train, test, log, deg, labels = pipeline
    base = P.LogisticUtility().fit_log(log, model_names=w.model_names)
    proxy = P.ProxyUtility(base, deg)
    inst = proxy.instance(w.instance.models, w.instance.tasks, w.instance.query_task[test],
                          w.instance.input_tokens[test], w.instance.output_tokens[test], x[test])
    assert inst.n_queries == test.size and inst.options == w.instance.options
    u3 = proxy.utility(x[test], labels[test], batch_sizes=(1, 2, 4, 8))
    np.testing.assert_allclose(inst.utility.reshape(test.size, 6, 4), u3)
    np.testing.assert_allclose(u3[:, :, 0], base.predict(x[test], task=labels[test]))
    assert np.all(np.diff(u3, axis=2) <= 0)               # batching never helps
    # Prediction is informative: correlation with the true unbatched utility.
    corr = np.corrcoef(u3[:, :, 0].ravel(), w.base_utility[test].ravel())[0, 1]
    assert corr > 0.8


@pytest.mark.parametrize("predictor", [P.LogisticUtility, P.KNNUtility])
def test_end_to_end_close_to_oracle(pipeline, predictor):
    """Plans from predicted utilities, graded with the true ones, are close to the oracle's."""
    w, x, train, test, log, deg, labels = pipeline
    base = predictor().fit_log(log, model_names=w.model_names)
    proxy = P.ProxyUtility(base, deg)
    true_inst = P.subset_instance(w.instance, test)
    pred_inst = P.subset_instance(w.instance, test, proxy.option_utility(x[test], labels[test],
                                                                          w.instance.models))
    for fraction in (0.1, 0.3, 0.6):
        budget = ro.budget_from_fraction(true_inst, fraction)
        oracle_plan = ro.solve(true_inst, budget, method="greedy")
        oracle = ro.evaluate(true_inst, oracle_plan.option)
        plan = ro.solve(pred_inst, budget, method="greedy")
        realized = ro.evaluate(true_inst, plan.option)
        assert realized.cost_usd <= budget * (1 + 1e-12)     # same costs: the plan is feasible for the truth
        assert realized.mean_utility >= 0.95 * oracle.mean_utility
        # No plan beats the LP bound of the true instance.
        assert realized.utility <= oracle_plan.upper_bound * (1 + 1e-9)


def test_knn_cosine_for_embeddings():
    """With the cosine metric only the direction of the standardised embedding matters."""
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(600, 8))
    y = (rng.random((600, 1)) < 1 / (1 + np.exp(-2 * emb[:, :1]))).astype(float)
    knn = P.KNNUtility(k=30, metric="cosine").fit(emb, y)
    q = rng.normal(size=(5, 8))
    z = (q - knn.mean_) / knn.scale_
    q_scaled = knn.mean_ + 3.0 * z * knn.scale_              # same direction, three times as long
    np.testing.assert_allclose(knn.predict(q), knn.predict(q_scaled), rtol=1e-9)
    p = knn.predict(q)
    assert np.all((p > 0) & (p < 1))
    with pytest.raises(P.PredictorError, match="metric"):
        P.KNNUtility(metric="manhattan")


@pytest.mark.parametrize("make, field", [
    (lambda: P.KNNUtility(k=0), "k"),
    (lambda: P.KNNUtility(k=2.5), "k"),
    (lambda: P.KNNUtility(k="a"), "k"),
    (lambda: P.KNNUtility(prior_strength=-1.0), "prior_strength"),
    (lambda: P.KNNUtility(chunk_size=0), "chunk_size"),
    (lambda: P.LogisticUtility(l2=-1.0), "l2"),
    (lambda: P.LogisticUtility(l2=0.0), "l2"),                  # a singular Newton system (audit)
    (lambda: P.LogisticUtility(l2=float("nan")), "l2"),
    (lambda: P.LogisticUtility(max_iter=0), "max_iter"),
    (lambda: P.LogisticUtility(tol="x"), "tol"),
    (lambda: P.LogisticUtility(tol=0.0), "tol"),
])
def test_predictor_parameters_are_checked_by_name(make, field):
    with pytest.raises(P.PredictorError) as err:
        make()
    assert err.value.field == field


def test_knn_without_features_says_so():
    with pytest.raises(P.PredictorError, match="at least one feature"):
        P.KNNUtility().fit(np.zeros((5, 0)), np.full((5, 2), 0.5))


@pytest.mark.parametrize("bad, where", [
    (np.array([["0.1", "0.2"], ["0.3", "0.4"], ["0.5", "0.6"]]), "strings"),
    ([[0.1, 0.2], [0.3, None], [0.5, 0.6]], r"features\[1, 1\].*null"),
    ([[0.1, 0.2], [0.3, "x"], [0.5, 0.6]], r"features\[1, 1\]"),
])
def test_features_must_be_numbers_not_text(bad, where):
    y = np.full((3, 2), 0.5)
    for P_ in (P.KNNUtility(k=2), P.LogisticUtility()):
        with pytest.raises(P.PredictorError, match=where):
            P_.fit(bad, y)
    fitted = P.LogisticUtility().fit(np.array([[True, False], [False, True], [True, True]]), y)
    assert fitted.predict(np.array([[True, False]])).shape == (1, 2)        # booleans are 0/1
    assert P.LogisticUtility().fit([[True, 0.5], [False, 0.25], [True, 1.0]], y).predict([[False, 0.5]]).shape == (1, 2)
    assert P.KNNUtility(k=2.0).k == 2                                       # an integral float passes


def test_messages_name_what_is_wrong_in_plain_words():
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 2)), np.full((6, 2), 0.5)
    fitted = P.LogisticUtility().fit(x, y, task=["a", "b"] * 3)
    with pytest.raises(P.PredictorError, match=r"fitted on tasks \['a', 'b'\]: pass task="):
        fitted.predict(x)
    with pytest.raises(P.PredictorError, match=r"unknown task 'zz'") as err:
        fitted.predict(x[:1], task=np.array(["zz"]))
    with pytest.raises(P.PredictorError, match=r"must be finite, got nan") as err:
        P.LogisticUtility().fit(np.array([[0.1, np.nan]] * 6), y)
    assert "np." not in str(err.value)


def test_fit_log_names_a_model_the_log_does_not_have(pipeline):
    log = pipeline[4]
    with pytest.raises(P.PredictorError, match=r"\['Nope'\] are not models of the log"):
        P.LogisticUtility().fit_log(log, model_names=[log.model_names[0], "Nope"])



def test_metrics_refuse_bad_inputs_and_knn_without_prior_stays_a_probability():
    # Proxy audit: a NaN outcome was counted as a negative by roc_auc, a probability of 1.5
    # crashed ECE's binning, shapes broadcast; KNNUtility(prior_strength=0) returned NaN for
    # a query whose neighbours had no observed outcome.
    for f in (P.brier_score, P.roc_auc, P.expected_calibration_error):
        with pytest.raises(P.PredictorError, match=r"`outcome\[1\]`"):
            f([0.5, 0.2, 0.3], [1, np.nan, 0])
        with pytest.raises(P.PredictorError, match=r"`prob\[0\]`"):
            f([1.5, 0.2], [1, 0])
        with pytest.raises(P.PredictorError, match="shape"):
            f(np.ones((5, 2)) / 2, np.ones(5))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = (rng.random((40, 2)) < 0.5).astype(float)
    y[::2, 0] = np.nan
    p = P.KNNUtility(k=1, prior_strength=0).fit(x, y).predict(x)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()



def test_an_empty_log_is_refused():
    log = P.ObservationLog(query_id=[], task=[], model=[], batch_size=[], outcome=[], input_tokens=[],
                           output_tokens=[], models=["m0"])
    with pytest.raises(P.PredictorError, match="`log`"):
        P.LogisticUtility().fit_log(log)


@pytest.mark.parametrize("make", [lambda: P.LogisticUtility(), lambda: P.KNNUtility()])
def test_unseen_and_single_answer_tasks_fall_back_to_the_models_rate(make):
    """A task a model never answered gets the model's overall rate (LogisticUtility gave 0.5),
    and one answer on a task is shrunk toward it (both gave 1.0): new-user audit."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(101, 1))
    task = ["A"] * 100 + ["B"]
    y = np.c_[rng.random(100) < 0.6, rng.random(100) < 0.2].astype(float)
    y = np.r_[y, [[1.0, np.nan]]]                        # task B: one query, answered by m0 only
    pred = make().fit(x, y, task=task).predict([[0.0]], task=["B"])[0]
    rate = np.nanmean(y, axis=0)
    assert rate[0] < pred[0] < 0.9                        # one right answer: up, not to certainty
    assert pred[1] == pytest.approx(rate[1], abs=0.03)    # never answered: the model's own rate


@pytest.mark.parametrize("make", [lambda: P.LogisticUtility(), lambda: P.KNNUtility()])
def test_a_model_answered_once_is_not_certain_anywhere(make):
    """Its overall rate is shrunk toward the pooled rate, so neither its task nor a task it
    never answered is predicted 1.0 (review)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 1))
    y = np.c_[(rng.random(60) < 0.5).astype(float), np.full(60, np.nan)]
    y[0, 1] = 1.0                                         # model 1: one answer, right
    pred = make().fit(x, y, task=["A"] * 30 + ["B"] * 30).predict([[0.0], [0.0]], task=["A", "B"])
    assert (pred[:, 1] < 0.95).all() and (pred[:, 1] > 0.5).all()
