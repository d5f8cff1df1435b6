"""TextUtility (scikit-learn): shapes, learning a text signal, falling back to the task mean
where there is none, shrinkage on small tasks, output tokens, other bases, errors."""

from __future__ import annotations

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt import datasets as ds
from robatch_opt import proxy as P

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]


def _data(n=600, *, signal=True, seed=0, soft=False, small_task=0, shared=False):
    """Two models, two tasks (plus an optional tiny one); with ``signal`` the word 'hard' in a
    question makes model 0 fail (with ``shared``, model 1 too), and long questions make long answers."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.5
    questions = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=rng.integers(3, 12)))
        if hard[i]:
            words.insert(int(rng.integers(len(words))), "hard")
        else:
            words.insert(int(rng.integers(len(words))), "easy")
        questions.append(" ".join(words))
    task = (rng.random(n) < 0.5).astype(np.int64)
    if small_task:
        task[:small_task] = 2
    p0 = np.where(hard, 0.15, 0.9) if signal else np.full(n, 0.55)
    p = np.c_[p0, np.where(hard, 0.3, 0.95) if shared else np.full(n, 0.7)]
    y = p if soft else (rng.random((n, 2)) < p).astype(float)
    length = np.array([len(q) for q in questions], float)
    out_tok = np.c_[length / 2 + rng.normal(0, 1, n).clip(-3, 3) + 5, np.full(n, 20.0)]
    price_in, price_out = np.array([1.0, 0.5]), np.array([2.0, 1.0])
    in_tok = length / 4
    cost = (in_tok[:, None] * price_in + out_tok * price_out) / 1e6
    return ds.RoutingData(model_names=("m0", "m1"), task_names=("t0", "t1", "tiny"), task=task,
                          question=questions, system_prompt=("", "", ""), query_id=[str(i) for i in range(n)],
                          outcome=y, cost_usd=cost, price_in=price_in, price_out=price_out,
                          system_tokens=[0.0, 0.0, 0.0], input_tokens=in_tok, output_tokens=out_tok)


def _brier(p, y):
    return float(np.mean((p - y) ** 2))


def test_learns_a_text_signal_and_beats_the_task_mean():
    train, test = _data(seed=0), _data(seed=1)
    tu = P.TextUtility().fit(train)
    u = tu.predict(test)
    assert u.shape == (600, 2) and ((u >= 0) & (u <= 1)).all()
    assert tu.blend_[0] >= 0.5 and tu.blend_[1] == 0.0       # the text helps model 0, not model 1...
    mean = P.TaskMeanUtility().fit(train).predict(test)
    assert _brier(u[:, 0], test.outcome[:, 0]) < _brier(mean[:, 0], test.outcome[:, 0]) - 0.05
    # ...and predictions follow the word: 'hard' questions get a low utility on model 0.
    hard = np.array(["hard" in q for q in test.question])
    assert u[hard, 0].mean() < 0.35 < 0.75 < u[~hard, 0].mean()


def test_no_signal_falls_back_to_the_task_mean_exactly():
    train, test = _data(signal=False, seed=2), _data(signal=False, seed=3)
    tu = P.TextUtility().fit(train)
    mean = P.TaskMeanUtility().fit(train).predict(test)
    assert tu.blend_ == [0.0, 0.0]
    np.testing.assert_allclose(tu.predict(test), mean, atol=1e-12)


def test_small_task_is_shrunk_to_its_mean():
    train = _data(seed=4, small_task=4)
    tu = P.TextUtility(blend=1.0, shrinkage=10.0).fit(train)
    u, raw = tu.predict(train), tu.predict_raw(train)
    tiny = train.task == 2
    w = 4 / (4 + 10.0)
    np.testing.assert_allclose(u[tiny], w * raw[tiny] + (1 - w) * tu.means_["tiny"][None, :], atol=1e-12)


def test_output_tokens_and_costs():
    train, test = _data(seed=5), _data(seed=6)
    tu = P.TextUtility().fit(train)
    o = tu.predict_output_tokens(test)
    rel = np.abs(o - test.output_tokens).mean(axis=0) / test.output_tokens.mean(axis=0)
    assert o.shape == (600, 2) and (o >= 0).all() and rel.max() < 0.15
    c = tu.predict_cost_usd(test)
    assert abs(c.sum() / test.cost_usd.sum() - 1) < 0.05


@pytest.mark.parametrize("base", ["knn", "sgd", "soft"])
def test_other_bases_and_soft_outcomes(base):
    from sklearn.linear_model import SGDClassifier
    train, test = _data(seed=7, soft=base == "soft"), _data(seed=8)
    est = {"knn": "knn", "sgd": SGDClassifier(loss="log_loss", random_state=0), "soft": "logistic"}[base]
    tu = P.TextUtility(base=est, blend=1.0, shrinkage=0.0).fit(train)
    u = tu.predict(test)
    hard = np.array(["hard" in q for q in test.question])
    assert u[hard, 0].mean() + 0.2 < u[~hard, 0].mean()


def test_embeddings_are_used_and_checked():
    train, test = _data(seed=9, signal=False), _data(seed=10, signal=False)
    rng = np.random.default_rng(0)
    emb_tr, emb_te = rng.normal(size=(600, 3)), rng.normal(size=(600, 3))
    y = (emb_tr[:, 0] > 0).astype(float)
    train = train.select(np.arange(600))
    object.__setattr__(train, "outcome", np.c_[y, train.outcome[:, 1]])
    tu = P.TextUtility().fit(train, embeddings=emb_tr)
    u = tu.predict(test, embeddings=emb_te)
    assert u[emb_te[:, 0] > 1, 0].mean() > 0.8 and u[emb_te[:, 0] < -1, 0].mean() < 0.2
    with pytest.raises(P.PredictorError, match="embeddings"):
        tu.predict(test)
    with pytest.raises(P.PredictorError, match="embeddings"):
        tu.predict(test, embeddings=emb_te[:, :2])


def test_bad_arguments():
    with pytest.raises(P.PredictorError, match="base"):
        P.TextUtility(base="forest")
    with pytest.raises(P.PredictorError, match="predict_proba"):
        P.TextUtility(base=object())
    with pytest.raises(P.PredictorError, match="not fitted"):
        P.TextUtility().predict(_data(n=10))
    with pytest.raises(P.PredictorError, match="RoutingData"):
        P.TextUtility().fit(np.zeros((3, 2)))


def test_stack_shares_the_difficulty_between_models():
    # 'hard' makes both models fail: the pooled difficulty (one classifier of each query's mean
    # outcome over the models) carries it, and both models' predictions move with it.
    train, test = _data(seed=11, shared=True), _data(seed=12, shared=True)
    tu = P.TextUtility().fit(train)
    assert tu.blend_ == [0.5, 0.5]                   # difficulty kept, own classifiers not tried
    u = tu.predict(test)
    hard = np.array(["hard" in q for q in test.question])
    assert u[hard, 0].mean() < 0.3 and u[~hard, 0].mean() > 0.8
    assert u[hard, 1].mean() < 0.45 and u[~hard, 1].mean() > 0.85
    mean = P.TaskMeanUtility().fit(train).predict(test)
    for k in range(2):
        assert _brier(u[:, k], test.outcome[:, k]) < _brier(mean[:, k], test.outcome[:, k]) - 0.05


def test_stack_own_classifier_must_beat_the_difficulty():
    # Model 0's signal is its own: with stack_own the model's classifier is tried after the
    # difficulty; it is kept only when it lowers the inner out-of-fold Brier score further.
    train, test = _data(seed=13), _data(seed=14)
    tu = P.TextUtility(stack_own=True).fit(train)
    assert tu.blend_[1] == 0.0 and tu.blend_[0] in (0.5, 1.0)
    u = tu.predict(test)
    hard = np.array(["hard" in q for q in test.question])
    assert u[hard, 0].mean() < 0.35 < 0.75 < u[~hard, 0].mean()


def test_stack_fits_no_inner_classifiers_it_does_not_use(monkeypatch):
    """Without stack_own the model's own inner-fold classifiers feed nothing, yet were fitted
    (found reading _choose_stack: 44 _fit_one calls for 11 models x (1 + 3 folds), about a
    third of RouterBench's fit time); the predictions are the same without them."""
    train, test = _data(seed=19, shared=True), _data(seed=20, shared=True)
    calls = []
    fit_one = P.TextUtility._fit_one
    monkeypatch.setattr(P.TextUtility, "_fit_one", lambda self, x, y: calls.append(1) or fit_one(self, x, y))
    tu = P.TextUtility().fit(train)
    assert len(calls) == 2                                # one classifier per model, no inner ones
    assert tu.blend_ == [0.5, 0.5]
    calls.clear()
    own = P.TextUtility(stack_own=True).fit(train)       # the own step needs them
    assert len(calls) == 2 * (1 + own.inner_folds)


def test_stack_leaves_small_tasks_at_their_mean():
    train = _data(seed=15, small_task=20, shared=True)
    tu = P.TextUtility().fit(train)
    u = tu.predict(train)
    tiny = train.task == 2
    assert tu.blend_[0] == 0.5 and "tiny" not in tu.stack_[0][2]
    np.testing.assert_allclose(u[tiny], np.broadcast_to(tu.means_["tiny"], u[tiny].shape), atol=1e-12)
    assert np.ptp(u[~tiny & (train.task == 0), 0]) > 0.3            # a large task follows the text


def test_stack_is_deterministic():
    # The inner folds are seeded (random_state): the same training data gives the same predictor.
    train = _data(seed=16, shared=True)
    a, b = P.TextUtility().fit(train), P.TextUtility().fit(train)
    test = _data(seed=17, shared=True)
    assert a.blend_ == b.blend_
    np.testing.assert_array_equal(a.predict(test), b.predict(test))


@pytest.mark.parametrize("kwargs, field", [({"blend": "grid"}, "blend"), ({"blend": 1.5}, "blend"),
                                           ({"stack_z": -1.0}, "stack_z"), ({"inner_folds": 1}, "inner_folds"),
                                           ({"stack_min_rows": 3}, "stack_min_rows")])
def test_stack_bad_arguments(kwargs, field):
    with pytest.raises(P.PredictorError, match=field):
        P.TextUtility(**kwargs)


@pytest.mark.parametrize("blend", [np.int64(1), np.float32(0.5), 0])
def test_blend_weight_may_be_a_numpy_number(blend):
    """A fixed weight given as a NumPy number is a weight (it was refused by an
    isinstance(blend, (int, float)) check once "stack" joined "cv"; np.int64(1) passed before)."""
    tu = P.TextUtility(blend=blend).fit(_data(seed=18))
    assert tu.blend_ == [float(blend)] * 2


def test_offset_logistic_stays_at_the_offset_without_signal_and_finds_a_slope():
    from robatch_opt.proxy.text_utility import _OffsetLogistic
    rng = np.random.default_rng(0)
    n = 4000
    offset = np.full(n, np.log(0.7 / 0.3))
    noise = rng.normal(size=(n, 1))
    y = (rng.random(n) < 0.7).astype(float)
    flat = _OffsetLogistic().fit(noise, offset, y)
    assert np.abs(flat.predict(noise, offset) - 0.7).max() < 0.03
    signal = rng.normal(size=(n, 1))
    y = (rng.random(n) < 1 / (1 + np.exp(-(offset + 1.5 * signal[:, 0])))).astype(float)
    assert abs(_OffsetLogistic().fit(signal, offset, y).theta_[1] - 1.5) < 0.15
    same = _OffsetLogistic().fit(signal, offset, np.ones(n))        # one class only: finite, near 1
    assert np.isfinite(same.theta_).all() and same.predict(signal, offset).min() > 0.99


@pytest.mark.parametrize("kw, field", [(dict(inner_folds="x"), "inner_folds"), (dict(inner_folds=2.5), "inner_folds"),
                                       (dict(stack_z="x"), "stack_z"), (dict(blend_z=float("nan")), "blend_z"),
                                       (dict(stack_min_rows=None), "stack_min_rows"), (dict(blend=True), "blend"),
                                       (dict(max_features=0), "max_features"), (dict(svd_components=0.5), "svd_components"),
                                       (dict(n_neighbors=0), "n_neighbors"), (dict(C=0.0), "C"), (dict(C="1"), "C"),
                                       (dict(output_alpha=-1.0), "output_alpha"), (dict(shrinkage=-1.0), "shrinkage"),
                                       (dict(task_weight=float("inf")), "task_weight"),
                                       (dict(random_state=-1), "random_state")])
def test_constructor_names_a_mistyped_field(kw, field):
    with pytest.raises(P.PredictorError, match=f"`{field}`"):
        P.TextUtility(**kw)


def test_columns_follow_the_data_model_names_not_positions():
    # A predictor fitted on (m0, m1) gave data ordered (m1, m0) the predictions of (m0, m1):
    # silently wrong models (found by a new-user audit).
    data = _data(400)
    tu = ro.proxy.TextUtility().fit(data)
    swapped = data.select_models(["m1", "m0"])
    np.testing.assert_array_equal(tu.predict(swapped), tu.predict(data)[:, ::-1])
    np.testing.assert_array_equal(tu.predict_raw(swapped), tu.predict_raw(data)[:, ::-1])
    np.testing.assert_array_equal(tu.predict_output_tokens(swapped), tu.predict_output_tokens(data)[:, ::-1])
    np.testing.assert_array_equal(tu.predict(data.select_models(["m1"])), tu.predict(data)[:, 1:])
    tm = ro.proxy.TaskMeanUtility().fit(data)
    np.testing.assert_array_equal(tm.predict(swapped), tm.predict(data)[:, ::-1])
    tu2 = ro.proxy.TextUtility().fit(data.select_models(["m0"]))
    with pytest.raises(ro.proxy.PredictorError, match=r"models \['m1'\] were not in the data"):
        tu2.predict(data)


def test_data_without_usable_text_falls_back_to_the_other_features():
    # A few questions that share no word (min_df=2 keeps nothing), or hold no word at all:
    # scikit-learn's "empty vocabulary" was raised bare; the text now just adds nothing.
    base = _data(n=40, seed=21)
    for texts in ([f"w{i}" for i in range(40)], ["" for _ in range(40)], ["?!" for _ in range(40)]):
        data = ds.RoutingData(model_names=base.model_names, task_names=base.task_names, task=base.task,
                              question=texts, system_prompt=base.system_prompt, query_id=base.query_id,
                              outcome=base.outcome, cost_usd=base.cost_usd, price_in=base.price_in,
                              price_out=base.price_out, system_tokens=base.system_tokens,
                              input_tokens=base.input_tokens, output_tokens=base.output_tokens)
        for kw in ({}, {"svd_components": 4}, {"blend": 1.0}):
            u = P.TextUtility(**kw).fit(data).predict(data)
            assert u.shape == (40, 2) and np.isfinite(u).all() and ((u >= 0) & (u <= 1)).all()


def test_fit_on_no_queries_says_so():
    data = _data(n=40, seed=22)
    with pytest.raises(P.PredictorError, match="no queries"):
        P.TextUtility().fit(data.select(np.zeros(40, bool)))


def test_text_utility_bad_embeddings_and_no_queries():
    # Proxy audit: string embeddings were NumPy's ValueError; predicting on zero queries was
    # scikit-learn's "Found array with 0 sample(s)".
    from robatch_opt.proxy.base_utility import PredictorError

    data = _data(200, seed=3)
    with pytest.raises(PredictorError, match="`embeddings`"):
        ro.proxy.TextUtility().fit(data, embeddings=[["a"]] * data.n_queries)
    tu = ro.proxy.TextUtility().fit(data)
    none = data.select(np.zeros(data.n_queries, bool))
    assert tu.predict(none).shape == (0, data.n_models)
    assert tu.predict_output_tokens(none).shape == (0, data.n_models)
    with pytest.raises(PredictorError, match="`outcomes`"):
        ro.proxy.LogisticUtility().fit(np.ones((5, 1)), [["a"]] * 5)



def test_a_dense_only_classifier_is_named():
    from sklearn.naive_bayes import GaussianNB

    from robatch_opt.proxy.base_utility import PredictorError

    with pytest.raises(PredictorError, match="GaussianNB needs dense input"):
        P.TextUtility(GaussianNB(), blend=1.0).fit(_data(200, seed=4))



def test_integer_parameters_take_an_integral_float():
    # As everywhere in the package (README): inner_folds=2.0 was refused, max_iter=50.0 not.
    assert P.TextUtility(inner_folds=2.0, stack_min_rows=10.0).inner_folds == 2
    with pytest.raises(P.PredictorError, match="`inner_folds`: must be an integer, got 2.5"):
        P.TextUtility(inner_folds=2.5)
