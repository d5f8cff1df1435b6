"""Instance validation: every bad input gets a specific error naming field and index."""

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt.errors import InstanceError


def make(**over):
    kw = dict(
        models=[ro.Model("a", 0.1, 0.2, 4096, (1, 2, 4)), ro.Model("b", 1.0, 2.0, 8192, (1, 8))],
        tasks=[ro.Task("t0", 300), ro.Task("t1", 100)],
        query_task=[0, 1, 0],
        input_tokens=[50, 60, 70],
        output_tokens=[[10, 12], [10, 12], [10, 12]],
        utility=np.full((3, 5), 0.5),
    )
    kw.update(over)
    return ro.Instance(**kw)


def test_options_order_and_shapes():
    inst = make()
    assert inst.options == ((0, 1), (0, 2), (0, 4), (1, 1), (1, 8))
    assert (inst.n_queries, inst.n_models, inst.n_tasks, inst.n_options) == (3, 2, 2, 5)
    np.testing.assert_array_equal(inst.option_model, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(inst.option_batch, [1, 2, 4, 1, 8])


def test_arrays_are_read_only_copies():
    u = np.full((3, 5), 0.5)
    inst = make(utility=u)
    u[0, 0] = 0.9                                  # the caller's array is not aliased
    assert inst.utility[0, 0] == 0.5
    with pytest.raises(ValueError):
        inst.utility[0, 0] = 0.1
    with pytest.raises(ValueError):
        inst.query_task[0] = 1


def test_one_dimensional_output_tokens_broadcast():
    inst = make(output_tokens=[5, 6, 7])
    np.testing.assert_array_equal(inst.output_tokens, [[5, 5], [6, 6], [7, 7]])


def test_admissibility_follows_context_window_exactly():
    # s + b * (l + o) <= W: 300 + 4 * (70 + 10) = 620 fits 620, batch 8 would need 940.
    inst = make(models=[ro.Model("a", 0.1, 0.2, 620, (1, 4, 8))], output_tokens=[10, 10, 10],
                utility=np.full((3, 3), 0.5), query_task=[0, 0, 0])
    np.testing.assert_array_equal(inst.admissible[2], [True, True, False])
    assert inst.admissible[0, 2] is np.False_


@pytest.mark.parametrize("over, field", [
    (dict(utility=np.full((3, 5), np.nan)), "utility[0, 0]"),
    (dict(utility=np.r_[[[0.5] * 5, [0.5] * 5, [0.5, 0.5, 1.5, 0.5, 0.5]]]), "utility[2, 2]"),
    (dict(utility=np.full((3, 5), -0.1)), "utility[0, 0]"),
    (dict(utility=np.full((3, 4), 0.5)), "utility"),
    (dict(input_tokens=[50, -1, 70]), "input_tokens[1]"),
    (dict(input_tokens=[50, np.inf, 70]), "input_tokens[1]"),
    (dict(output_tokens=[[1, 2], [3, -4], [5, 6]]), "output_tokens[1, 1]"),
    (dict(output_tokens=[[1, 2, 3]] * 3), "output_tokens"),
    (dict(query_task=[0, 2, 0]), "query_task[1]"),
    (dict(query_task=[0, -1, 0]), "query_task[1]"),
    (dict(query_task=[0, 0.5, 0]), "query_task[1]"),
    (dict(query_task=[[0, 1, 0]]), "query_task[0]"),
    (dict(models=[]), "models"),
    (dict(tasks=[]), "tasks"),
])
def test_bad_arrays_name_field_and_index(over, field):
    with pytest.raises(InstanceError) as err:
        make(**over)
    assert err.value.field == field
    assert f"`{field}`" in str(err.value)


@pytest.mark.parametrize("kwargs, field", [
    (dict(price_in=-0.1), "models['x'].price_in"),
    (dict(price_out=float("nan")), "models['x'].price_out"),
    (dict(price_in=float("inf")), "models['x'].price_in"),
    (dict(batch_sizes=()), "models['x'].batch_sizes"),
    (dict(batch_sizes=(0, 1)), "models['x'].batch_sizes[0]"),
    (dict(batch_sizes=(1, 4, 2)), "models['x'].batch_sizes[2]"),
    (dict(batch_sizes=(1, 1)), "models['x'].batch_sizes[1]"),
    (dict(batch_sizes=(1, 2.5)), "models['x'].batch_sizes[1]"),
    (dict(context_window=0), "models['x'].context_window"),
    (dict(context_window=10.5), "models['x'].context_window"),
])
def test_bad_model_fields(kwargs, field):
    base = dict(name="x", price_in=0.1, price_out=0.2, context_window=100, batch_sizes=(1,))
    base.update(kwargs)
    with pytest.raises(InstanceError) as err:
        ro.Model(**base)
    assert err.value.field == field


def test_bad_task_and_duplicate_names():
    with pytest.raises(InstanceError, match="system_tokens"):
        ro.Task("t", -5)
    with pytest.raises(InstanceError) as err:
        make(models=[ro.Model("a", 0.1, 0.2, 4096, (1,)), ro.Model("a", 1, 2, 4096, (1,))],
             utility=np.full((3, 2), 0.5))
    assert err.value.field == "models[1].name"


def test_query_that_fits_no_window_is_named():
    with pytest.raises(InstanceError) as err:
        make(input_tokens=[50, 9000, 70])
    assert err.value.field == "query[1]"
    assert "context window" in str(err.value)


def test_from_decomposition_multiplies_and_clips():
    models = [ro.Model("a", 0.1, 0.2, 4096, (1, 2)), ro.Model("b", 1.0, 2.0, 8192, (1,))]
    u0 = np.array([[0.5, 0.9], [0.8, 1.0]])
    retention = {"a": {1: 1.0, 2: 0.5}, "b": {1: 1.2}}
    inst = ro.Instance.from_decomposition(models, [ro.Task("t", 10)], [0, 0], [5, 5], [1, 1], u0, retention)
    np.testing.assert_allclose(inst.utility, [[0.5, 0.25, 1.0], [0.8, 0.4, 1.0]])
    same = ro.Instance.from_decomposition(models, [ro.Task("t", 10)], [0, 0], [5, 5], [1, 1], u0,
                                          lambda m, b: retention[m.name][b])
    np.testing.assert_array_equal(same.utility, inst.utility)
    with pytest.raises(InstanceError, match=r"retention\['b'\]\[1\]"):
        ro.Instance.from_decomposition(models, [ro.Task("t", 10)], [0, 0], [5, 5], [1, 1], u0,
                                       {"a": {1: 1.0, 2: 0.5}, "b": {}})


def test_restrict_routing_only_and_batching_only():
    inst = make(utility=np.arange(15).reshape(3, 5) / 20)
    routing = inst.restrict(batch_sizes=[1])
    assert routing.options == ((0, 1), (1, 1))
    np.testing.assert_array_equal(routing.utility, inst.utility[:, [0, 3]])
    single = inst.restrict(models=["b"])
    assert [m.name for m in single.models] == ["b"] and single.options == ((0, 1), (0, 8))
    np.testing.assert_array_equal(single.output_tokens, inst.output_tokens[:, [1]])
    with pytest.raises(InstanceError, match="unknown model"):
        inst.restrict(models=["zzz"])
    with pytest.raises(InstanceError, match="no model"):
        inst.restrict(batch_sizes=[3])


def test_instance_arrays_are_row_major_copies_of_any_input():
    """A column-major utility becomes row-major (every evaluate copied `admissible` otherwise),
    and no input aliases the instance: an ndarray, a memoryview (review) or a list."""
    base = ro.workloads.llm("qwen3", n=6, seed=0)
    u = np.asfortranarray(np.array(base.utility))
    tokens = np.array(base.input_tokens)
    inst = ro.Instance(models=base.models, tasks=base.tasks, query_task=base.query_task,
                       input_tokens=memoryview(tokens), output_tokens=np.array(base.output_tokens), utility=u)
    assert inst.utility.flags.c_contiguous and inst.admissible.flags.c_contiguous
    assert not np.shares_memory(inst.utility, u) and not np.shares_memory(inst.input_tokens, tokens)
    tokens[0] = 1e6
    assert inst.input_tokens[0] == base.input_tokens[0]
