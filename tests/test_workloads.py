"""Workload generators: shapes, determinism, IRT calibration, retention curves, bad arguments."""

import json
from pathlib import Path

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt.errors import InstanceError
from robatch_opt.workloads import FAMILIES, llm, llm_truth, retention as ret, synthetic
from robatch_opt.workloads.llm import expected_accuracy

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llm_pools.json"


def _same_instance(a: ro.Instance, b: ro.Instance) -> None:
    assert [m for m in a.models] == [m for m in b.models]
    assert a.tasks == b.tasks
    for name in ("query_task", "input_tokens", "output_tokens", "utility"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


# --------------------------------------------------------------------------- synthetic
@pytest.mark.parametrize("family", FAMILIES)
def test_synthetic_shape_and_validity(family):
    inst = synthetic(300, family, seed=4)
    default_tasks = 24 if family == "llm_like" else 4
    assert (inst.n_queries, inst.n_models, inst.n_tasks, inst.n_options) == (300, 4, default_tasks, 16)
    assert inst.options == tuple((k, b) for k in range(4) for b in (1, 2, 4, 8))
    assert inst.admissible[:, 0].all()                 # every query fits the 8k model at b = 1
    assert np.all((inst.utility >= 0) & (inst.utility <= 1))
    ev = ro.evaluate(inst, ro.compile_options(inst).cheapest_option)   # the instance is usable
    assert ev.cost_usd > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_synthetic_is_deterministic_by_seed(family):
    _same_instance(synthetic(200, family, seed=7), synthetic(200, family, seed=7))
    other = synthetic(200, family, seed=8)
    assert not np.array_equal(synthetic(200, family, seed=7).utility, other.utility)


def test_synthetic_options_follow_arguments():
    inst = synthetic(50, "correlated", seed=0, n_models=2, batch_sizes=(1, 3), n_tasks=7)
    assert (inst.n_models, inst.n_tasks, inst.options) == (2, 7, ((0, 1), (0, 3), (1, 1), (1, 3)))
    one = synthetic(20, "llm_like", seed=0, n_models=1, batch_sizes=(1,))
    assert one.n_options == 1


def test_strongly_correlated_is_affine_in_cost_with_one_slope():
    inst = synthetic(2000, "strongly_correlated", seed=2)
    om, ob = inst.option_model, inst.option_batch
    # Amortized cost of every option, admissible or not (the family is affine over all of them).
    cost = inst.fixed_cost_usd[inst.query_task][:, om] / ob + inst.variable_cost_usd[:, om]
    # u - beta * c is the per-query intercept up to the +-1e-4 jitter: fit beta by least squares
    # on within-query deviations and check the residual.
    dc = cost - cost.mean(axis=1, keepdims=True)
    du = inst.utility - inst.utility.mean(axis=1, keepdims=True)
    beta = float((dc * du).sum() / (dc * dc).sum())
    assert beta > 0
    assert np.abs(du - beta * dc).max() <= 2e-4 + 1e-12


def test_correlated_utility_rises_with_cost():
    inst = synthetic(3000, "correlated", seed=1)
    cost = np.log(ro.compile_options(inst).cost[inst.admissible])
    corr = np.corrcoef(cost, inst.utility[inst.admissible])[0, 1]
    unc = synthetic(3000, "uncorrelated", seed=1)
    corr_unc = np.corrcoef(np.log(ro.compile_options(unc).cost[unc.admissible]), unc.utility[unc.admissible])[0, 1]
    assert corr > 0.8 and abs(corr_unc) < 0.05


def test_llm_like_batching_matters_and_ladder_holds():
    inst = synthetic(4000, "llm_like", seed=5)
    table = ro.compile_options(inst)
    # System prompts are a large share of a single-query call, so batching matters:
    # b = 8 cuts the median amortized cost by more than 40%.
    b1, b8 = inst.options.index((3, 1)), inst.options.index((3, 8))
    assert np.median(table.cost[:, b8] / table.cost[:, b1]) < 0.6
    fixed_share = inst.fixed_cost_usd[inst.query_task, 3] / table.cost[:, b1]
    assert np.median(fixed_share) > 0.4
    # Stronger (pricier) models are better on average, and batching never helps utility.
    mean_b1 = [inst.utility[:, inst.options.index((k, 1))].mean() for k in range(4)]
    assert mean_b1 == sorted(mean_b1)
    for k in range(4):
        cols = [inst.options.index((k, b)) for b in (1, 2, 4, 8)]
        assert np.all(np.diff(inst.utility[:, cols], axis=1) <= 1e-15)


@pytest.mark.parametrize("kwargs, field", [
    (dict(n=10, family="nope"), "family"),
    (dict(n=0), "n"),
    (dict(n=10, seed=-1), "seed"),
    (dict(n=10, n_models=0), "n_models"),
    (dict(n=10, n_tasks=0), "n_tasks"),
    (dict(n=10, batch_sizes=()), "batch_sizes"),
    (dict(n=10, batch_sizes=(2, 2)), "batch_sizes[1]"),
    (dict(n=10, batch_sizes=(0, 1)), "batch_sizes[0]"),
])
def test_synthetic_bad_arguments(kwargs, field):
    with pytest.raises(InstanceError) as info:
        synthetic(**kwargs)
    assert info.value.field == field
    if field == "family":
        assert all(f in str(info.value) for f in FAMILIES)


# --------------------------------------------------------------------------------- llm
def test_bundled_data_is_the_shared_copy():
    if not SHARED_DATA.exists():
        pytest.skip("shared data folder not present")
    assert ret.load_facts() == json.loads(SHARED_DATA.read_text())


@pytest.mark.parametrize("pool, K", [("qwen3", 6), ("gemma3", 4)])
def test_llm_shapes_and_measured_facts(pool, K):
    facts = ret.load_facts()
    w = llm_truth(pool, n=600, seed=3)
    inst = w.instance
    assert (inst.n_queries, inst.n_models, inst.n_tasks, inst.n_options) == (600, K, 6, 4 * K)
    assert w.model_names == tuple(facts["pools"][pool])
    for m in inst.models:
        spec = facts["models"][m.name]
        assert m.context_window == spec["context_window"]
        assert (m.price_in, m.price_out) == (spec["price_compute"]["in"], spec["price_compute"]["out"])
    for t in inst.tasks:
        p = facts["token_profiles"][t.name]
        assert t.system_tokens == p["shots"] * p["shot_prompt_tokens_per_example"]
    assert np.bincount(inst.query_task, minlength=6).tolist() == [100] * 6
    assert (w.difficulty.shape, w.ability.shape, w.base_utility.shape, w.retention.shape) == \
        ((600,), (K, 6), (600, K), (4 * K,))
    # The decomposition: u[i, (k, b)] = u0[i, k] * r_k(b).
    np.testing.assert_allclose(inst.utility, w.base_utility[:, inst.option_model] * w.retention[None, :],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        w.base_utility, 1 / (1 + np.exp(-(w.ability[:, inst.query_task].T - w.difficulty[:, None]))), atol=1e-12)
    for arr in (w.difficulty, w.ability, w.base_utility, w.retention):
        assert not arr.flags.writeable


def test_llm_token_profiles_are_medians():
    facts = ret.load_facts()
    w = llm_truth("qwen3", n=12000, seed=0)
    inst = w.instance
    for t, task in enumerate(inst.tasks):
        p = facts["token_profiles"][task.name]
        sel = inst.query_task == t
        assert np.median(inst.input_tokens[sel]) == pytest.approx(p["question_tokens"], rel=0.1, abs=1)
        assert np.median(inst.output_tokens[sel]) == pytest.approx(p["answer_tokens"], rel=0.2, abs=1)
    assert inst.input_tokens.min() >= 1 and inst.output_tokens.min() >= 1


def test_llm_is_deterministic_and_llm_returns_the_truths_instance():
    a = llm_truth("gemma3", n=300, seed=11)
    b = llm("gemma3", n=300, seed=11)
    _same_instance(a.instance, b)
    c = llm("gemma3", n=300, seed=12)
    assert not np.array_equal(b.utility, c.utility)


def _logistic_normal_mean(theta, sd):
    """Reference E[sigmoid(theta - d)], d ~ N(0, sd^2), by a dense trapezoid rule (independent of the quadrature)."""
    d = np.linspace(-12 * sd, 12 * sd, 200_001)
    dens = np.exp(-0.5 * (d / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    vals = 1 / (1 + np.exp(-(np.asarray(theta)[..., None] - d)))
    return np.trapezoid(vals * dens, d, axis=-1) if hasattr(np, "trapezoid") else np.trapz(vals * dens, d, axis=-1)


@pytest.mark.parametrize("pool", ["qwen3", "gemma3"])
def test_calibration_expected_accuracy_matches_published(pool):
    w = llm_truth(pool, n=10, seed=0)
    facts = ret.load_facts()["accuracy_single_prompt"]["values"]
    published = np.array([[facts[m][t] for t in w.task_names] for m in w.model_names])
    np.testing.assert_array_equal(w.published_accuracy, published)
    expected = _logistic_normal_mean(w.ability, w.difficulty_sd)
    assert np.abs(expected - published).max() <= 1e-3
    assert np.abs(expected - published).max() <= 1e-8          # in fact far tighter
    # Weaker-on-paper models get lower abilities on every task.
    order = np.argsort(published, axis=0)
    assert np.array_equal(np.argsort(w.ability, axis=0), order)


def test_calibration_empirical_mean_within_sampling_error():
    w = llm_truth("qwen3", n=12000, seed=21)
    qt = w.query_task
    for t in range(len(w.task_names)):
        u = w.base_utility[qt == t]                                # (n_t, K)
        se = u.std(axis=0, ddof=1) / np.sqrt(u.shape[0])
        z = (u.mean(axis=0) - w.published_accuracy[:, t]) / se
        assert np.all(np.abs(z) < 4.5), (w.task_names[t], z)


def test_llm_tasks_subset_weights_and_order():
    w = llm_truth("qwen3", n=400, tasks=["GSM8K", "MMLU"], seed=0)
    assert w.task_names == ("GSM8K", "MMLU") and [t.name for t in w.instance.tasks] == ["GSM8K", "MMLU"]
    assert np.bincount(w.query_task).tolist() == [200, 200]
    w = llm_truth("qwen3", n=401, tasks={"MATH": 3, "BBH": 1}, seed=0)
    assert np.bincount(w.query_task).tolist() == [301, 100]
    assert llm_truth("qwen3", n=5, tasks="GPQA").task_names == ("GPQA",)


def test_llm_api_prices_and_free_models():
    facts = ret.load_facts()
    dropped = llm_truth("qwen3", n=50, price="api")
    assert dropped.model_names == ("Qwen3-4B", "Qwen3-8B", "Qwen3-14B", "Qwen3-32B")
    for m in dropped.instance.models:
        assert (m.price_in, m.price_out) == (facts["models"][m.name]["price_api"]["in"],
                                             facts["models"][m.name]["price_api"]["out"])
    zero = llm_truth("gemma3", n=50, price="api", free_models="zero")
    assert zero.model_names[0] == "gemma-3-1b"
    assert (zero.instance.models[0].price_in, zero.instance.models[0].price_out) == (0.0, 0.0)


@pytest.mark.parametrize("kwargs, field", [
    (dict(pool="llama"), "pool"),
    (dict(price="spot"), "price"),
    (dict(tasks=["GSM8K", "HellaSwag"]), "tasks[1]"),
    (dict(tasks=["GSM8K", "GSM8K"]), "tasks[1]"),
    (dict(tasks=[]), "tasks"),
    (dict(tasks={"MMLU": -1.0}), "tasks['MMLU']"),
    (dict(tasks={"MMLU": 0.0}), "tasks"),
    (dict(n=0), "n"),
    (dict(seed=1.5), "seed"),
    (dict(batch_sizes=(1, 4, 2)), "batch_sizes[2]"),
    (dict(difficulty_sd=0.0), "difficulty_sd"),
    (dict(price="api", free_models="keep"), "free_models"),
])
def test_llm_bad_arguments(kwargs, field):
    with pytest.raises(InstanceError) as info:
        llm_truth(**{"n": 10, **kwargs})
    assert info.value.field == field


# --------------------------------------------------------------------------- retention
ALL_POOL_MODELS = [m for pool in ("qwen3", "gemma3") for m in ret.load_facts()["pools"][pool]]


def test_published_observations_and_fit():
    obs = ret.published_observations()
    assert len(obs) == 16 and {o.model for o in obs} == {"gpt-4", "gpt-3.5-turbo"}
    assert all(o.batch_size > 1 and 0 < o.relative <= 1.0 + 1e-12 for o in obs)
    fit = ret.fitted_parameters()
    assert 0 < fit.rate_gpt4 < fit.rate_gpt35 and fit.exponent > 0 and fit.gamma > 0
    # The fit reproduces the observations' mean retention per anchor and batch size within 5 points.
    for model, rate in (("gpt-4", fit.rate_gpt4), ("gpt-3.5-turbo", fit.rate_gpt35)):
        assert ret.degradation_rate(model) == pytest.approx(rate, rel=1e-12)
        for b in sorted({o.batch_size for o in obs if o.model == model}):
            mean_rel = np.mean([o.relative for o in obs if o.model == model and o.batch_size == b])
            assert float(fit.curve(rate, b)) == pytest.approx(mean_rel, abs=0.05)


def test_fit_is_least_squares_on_the_grid():
    # Against a plain re-derivation: no other exponent on a coarse grid fits better.
    obs = ret.published_observations()
    fit = ret.fitted_parameters()

    def sse(p):
        total = 0.0
        for m in ("gpt-4", "gpt-3.5-turbo"):
            x = np.array([(o.batch_size - 1.0) ** p for o in obs if o.model == m])
            y = -np.log([o.relative for o in obs if o.model == m])
            a = (x @ y) / (x @ x)
            total += float(((y - a * x) ** 2).sum())
        return total

    best = sse(fit.exponent)
    assert best == pytest.approx(fit.rmse_log ** 2 * len(obs), rel=1e-9)
    assert all(best <= sse(p) + 1e-12 for p in np.linspace(0.1, 4.0, 79))


@pytest.mark.parametrize("model", ALL_POOL_MODELS + ["gpt-4", "gpt-3.5-turbo"])
def test_retention_is_one_at_b1_and_non_increasing(model):
    b = np.arange(1, 129)
    r = ret.retention(model, b)
    assert ret.retention(model, 1) == 1.0 and r[0] == 1.0
    assert np.all(np.diff(r) <= 0) and np.all((r > 0) & (r <= 1))


def test_weaker_models_degrade_at_least_as_fast():
    b = np.array([2, 4, 8, 16, 32, 64])
    caps = {m: ret.capability(m) for m in ALL_POOL_MODELS}
    for weak in ALL_POOL_MODELS:
        for strong in ALL_POOL_MODELS:
            if caps[weak] <= caps[strong]:
                assert np.all(ret.retention(weak, b) <= ret.retention(strong, b))
    # Every pool model weaker than gpt-4 on MMLU degrades at least as fast as gpt-4.
    for m in ALL_POOL_MODELS:
        assert np.all(ret.retention(m, b) <= ret.retention("gpt-4", b))
    grid = np.linspace(0, 1, 101)
    rates = [ret.degradation_rate(float(c)) for c in grid]
    assert np.all(np.diff(rates) <= 0) and rates[-1] == 0.0


def test_llm_retention_uses_the_mapping():
    w = llm_truth("gemma3", n=20, batch_sizes=(1, 2, 4, 8, 16))
    for j, (k, b) in enumerate(w.instance.options):
        assert w.retention[j] == ret.retention(w.model_names[k], b)


@pytest.mark.parametrize("args, field", [
    (("Qwen9-1B", 2), "model"),
    ((1.5, 2), "capability"),
    ((float("nan"), 2), "capability"),
    ((None, 2), "capability"),
    (("Qwen3-8B", 0), "b"),
    (("Qwen3-8B", [1, 2, float("inf")]), "b[2]"),
])
def test_retention_bad_arguments(args, field):
    with pytest.raises(InstanceError) as info:
        ret.retention(*args)
    assert info.value.field == field
