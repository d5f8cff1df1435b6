"""Typed input everywhere (issue 12, item 4): mistyped fields are refused, naming the field.

Property tests take a valid file of every kind the package reads (instance JSON, instance
npz, plan JSON, observation logs as JSON Lines and CSV), mistype one randomly chosen field
(a string for a number, a boolean, null, a float where an integer belongs, a nested list)
and demand a :class:`FormatError` whose message names that field and index: never another
exception type, never acceptance. Unit tests do the same for the public constructors and
:func:`robatch_opt.evaluate`, and pin the message style (``:.6g`` numbers, one line).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import robatch_opt as ro
from robatch_opt import proxy as P
from robatch_opt.errors import AssignmentError, FormatError, InstanceError
from robatch_opt.io import instance_to_json

from strategies import instances

SMALL = dict(max_queries=4, max_models=2, max_tasks=2, max_options=4)

# What a field holds, and the mistypes that apply to it.
NUMBER, INTEGER, TEXT = "number", "integer", "text"
MISTYPES = {
    NUMBER: ("string", "boolean", "null", "nested list"),
    INTEGER: ("string", "boolean", "null", "float index", "integral float", "nested list"),
    TEXT: ("number", "boolean", "null", "nested list"),
}


def mistyped(value, how: str):
    """``value`` mistyped as ``how`` (JSON values)."""
    return {"string": lambda: str(value), "boolean": lambda: bool(value), "null": lambda: None,
            "float index": lambda: value + 0.5, "integral float": lambda: float(value),
            "nested list": lambda: [value], "number": lambda: 7}[how]()


def leaves(doc: dict, spec: dict) -> list[tuple[tuple, str, str]]:
    """Every (path, kind, label) of ``doc`` the spec types; label is how messages name it.

    ``spec`` maps a top-level key to a kind (a scalar), to ``("list", kind)`` / ``("rows",
    kind)`` for 1-D / 2-D arrays, or to ``("records", {key: kind})`` for a list of objects.
    """
    out = []
    for key, kind in spec.items():
        value = doc[key]
        if isinstance(kind, str):
            out.append(((key,), kind, key))
        elif kind[0] == "list":
            out += [((key, i), kind[1], f"{key}[{i}]") for i in range(len(value))]
        elif kind[0] == "rows":
            out += [((key, i, j), kind[1], f"{key}[{i}, {j}]")
                    for i, row in enumerate(value) for j in range(len(row))]
        elif kind[0] == "object":
            out += [((key, k), sub, f"{key}.{k}") for k, sub in kind[1].items()]
        else:                                                   # records
            for pos, rec in enumerate(value):
                for k, sub in kind[1].items():
                    if isinstance(sub, tuple):                  # a list inside a record
                        out += [((key, pos, k, b), sub[1], f"{key}[{pos}].{k}[{b}]") for b in range(len(rec[k]))]
                    else:
                        out.append(((key, pos, k), sub, f"{key}[{pos}].{k}"))
    return out


def set_at(doc, path, value):
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def get_at(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def assert_names(exc: BaseException, label: str) -> None:
    msg = str(exc)
    assert f"`{label}`" in msg, msg
    assert "\n" not in msg and "np." not in msg, msg


@st.composite
def mistype(draw, doc: dict, spec: dict):
    """A copy of ``doc`` with one field mistyped, and the label the error must carry."""
    path, kind, label = draw(st.sampled_from(leaves(doc, spec)))
    how = draw(st.sampled_from(MISTYPES[kind]))
    bad = json.loads(json.dumps(doc))
    set_at(bad, path, mistyped(get_at(doc, path), how))
    return bad, label, how


# ------------------------------------------------------------------------------ instances
INSTANCE_SPEC = {
    "format": TEXT, "n_queries": INTEGER,
    "models": ("records", {"name": TEXT, "price_in": NUMBER, "price_out": NUMBER, "context_window": INTEGER,
                           "batch_sizes": ("list", INTEGER)}),
    "tasks": ("records", {"name": TEXT, "system_tokens": NUMBER}),
    "options": ("rows", INTEGER), "query_task": ("list", INTEGER), "input_tokens": ("list", NUMBER),
    "output_tokens": ("rows", NUMBER), "utility": ("rows", NUMBER),
}
# Whole fields replaced (an array by a scalar, a list by a string...).
WHOLE_FIELDS = ("query_task", "input_tokens", "output_tokens", "utility", "options")


@st.composite
def bad_instance_json(draw):
    doc = json.loads(instance_to_json(draw(instances(**SMALL))))
    if draw(st.integers(0, 4)) == 0:                   # sometimes a whole array is mistyped
        key = draw(st.sampled_from(WHOLE_FIELDS))
        how = draw(st.sampled_from(("string", "boolean", "null", "nested list")))
        doc[key] = mistyped(doc[key], how) if how != "string" else "0.5"
        return doc, key, how
    return draw(mistype(doc, INSTANCE_SPEC))


@settings(max_examples=100)
@given(case=bad_instance_json())
def test_instance_json_refuses_every_mistyped_field(tmp_path_factory, case):
    doc, label, how = case
    path = tmp_path_factory.mktemp("j") / "inst.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError) as info:
        ro.load(path)
    assert type(info.value) is FormatError
    assert str(info.value).startswith(f"{path}: ")
    if label in WHOLE_FIELDS and how == "nested list":
        assert f"`{label}" in str(info.value)             # the first entry, now a list, is named
    else:
        assert_names(info.value, label)


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)                # object arrays pickle here; the loader never unpickles
    return buf.getvalue()


NPZ_ARRAY_MISTYPES = {
    "string": lambda a: a.astype(str),
    "boolean": lambda a: a.astype(bool),
    "null": lambda a: np.full(a.shape, None, dtype=object),
    "float index": lambda a: a.astype(np.float64) + 0.5,
    "nested list": lambda a: a[..., None, None],
}
META_SPEC = {k: v for k, v in INSTANCE_SPEC.items() if k in ("format", "n_queries", "models", "tasks", "options")}


@st.composite
def bad_instance_npz(draw, tmp_dir):
    inst = draw(instances(**SMALL))
    path = tmp_dir / "good.npz"
    ro.save(inst, path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if draw(st.booleans()):                            # mistype a per-query array
        name = draw(st.sampled_from(("query_task", "input_tokens", "output_tokens", "utility")))
        hows = list(NPZ_ARRAY_MISTYPES) if name == "query_task" else \
            [h for h in NPZ_ARRAY_MISTYPES if h != "float index"]
        how = draw(st.sampled_from(hows))
        arrays[name] = NPZ_ARRAY_MISTYPES[how](arrays[name])
        return _npz_bytes(arrays), name
    meta, label, _ = draw(mistype(json.loads(str(arrays["meta"][()])), META_SPEC))
    arrays["meta"] = np.array(json.dumps(meta))
    return _npz_bytes(arrays), label


@settings(max_examples=60)
@given(data=st.data())
def test_instance_npz_refuses_every_mistyped_field(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("n")
    raw, label = data.draw(bad_instance_npz(tmp))
    path = tmp / "bad.npz"
    path.write_bytes(raw)
    with pytest.raises(FormatError) as info:
        ro.load(path)
    assert type(info.value) is FormatError and str(info.value).startswith(f"{path}: ")
    assert_names(info.value, label)


# ---------------------------------------------------------------------------------- plans
PLAN_SPEC = {
    "cost_usd": NUMBER, "utility": NUMBER, "gap": NUMBER, "wall_time_s": NUMBER, "mean_utility": NUMBER,
    "n_calls": INTEGER, "n_queries": INTEGER, "status": TEXT, "method": TEXT,
    "option": ("list", INTEGER), "query_task": ("list", INTEGER), "options": ("rows", INTEGER),
    "model_names": ("list", TEXT),
    "breakdown": ("object", {"system_usd": NUMBER, "input_usd": NUMBER, "output_usd": NUMBER}),
}
# Optional numbers: null is a valid value there, every other mistype is not.
PLAN_OPTIONAL = ("upper_bound", "budget_usd")


def plan_of(inst: ro.Instance, option) -> ro.Plan:
    ev = ro.evaluate(inst, option)
    return ro.Plan(option=ev.option, model=inst.option_model[ev.option], batch_size=inst.option_batch[ev.option],
                   query_task=inst.query_task, cost_usd=ev.cost_usd, utility=ev.utility, upper_bound=ev.utility,
                   cost_lower_bound_usd=None, gap=0.0, status=ro.Status.FEASIBLE, method="test", wall_time_s=0.25,
                   budget_usd=ev.cost_usd, min_mean_utility=None, n_calls=ev.n_calls, breakdown=ev.breakdown,
                   options=inst.options, model_names=tuple(m.name for m in inst.models), info={})


@st.composite
def bad_plan_json(draw):
    inst = draw(instances(**SMALL))
    option = [draw(st.sampled_from(np.flatnonzero(inst.admissible[i]).tolist())) for i in range(inst.n_queries)]
    doc = json.loads(plan_of(inst, option).to_json())
    if draw(st.integers(0, 5)) == 0:
        key = draw(st.sampled_from(PLAN_OPTIONAL))
        doc[key] = mistyped(doc[key], draw(st.sampled_from(("string", "boolean", "nested list"))))
        return doc, key
    bad, label, _ = draw(mistype(doc, {k: v for k, v in PLAN_SPEC.items() if k in doc}))
    return bad, label


@settings(max_examples=60)
@given(case=bad_plan_json())
def test_plan_json_refuses_every_mistyped_field(case):
    doc, label = case
    with pytest.raises(FormatError) as info:
        ro.Plan.from_json(json.dumps(doc), source="plan.json")
    assert type(info.value) is FormatError and str(info.value).startswith("plan.json: ")
    assert_names(info.value, label)


def test_plan_json_round_trip_still_exact():
    inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1, 2))], tasks=[ro.Task("t", 1000)],
                       query_task=[0, 0, 0], input_tokens=[100] * 3, output_tokens=[10] * 3,
                       utility=[[0.9, 0.8]] * 3)
    plan = plan_of(inst, [1, 1, 0])
    back = ro.Plan.from_json(plan.to_json())
    assert back.option.tolist() == [1, 1, 0] and back.options == plan.options
    assert (back.cost_usd, back.breakdown, back.n_calls) == (plan.cost_usd, plan.breakdown, plan.n_calls)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(min_mean_utility=0.5), "budget_usd"),
    (lambda d: d.update(budget_usd=None), "budget_usd"),
])
def test_plan_json_for_both_forms_or_neither_is_refused(edit, field):
    inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1, 2))], tasks=[ro.Task("t", 1000)],
                       query_task=[0, 0, 0], input_tokens=[100] * 3, output_tokens=[10] * 3,
                       utility=[[0.9, 0.8]] * 3)
    doc = json.loads(plan_of(inst, [1, 1, 0]).to_json())
    edit(doc)
    with pytest.raises(FormatError) as info:
        ro.Plan.from_json(json.dumps(doc), source="plan.json")
    assert str(info.value).startswith("plan.json: ") and f"`{field}`" in str(info.value)


def test_plan_keys_cover_what_to_json_writes():
    from robatch_opt.plan import _PLAN_KEYS
    inst = ro.workloads.llm("gemma3", n=8, seed=0)
    for kw in (dict(budget=ro.budget_from_fraction(inst, 0.5)), dict(min_mean_utility=0.3)):
        plan = ro.solve(inst, method="greedy", **kw)
        assert set(json.loads(plan.to_json(timings=True))) <= set(_PLAN_KEYS)


def test_plan_json_names_an_unknown_field():
    inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1,))], tasks=[ro.Task("t", 10)],
                       query_task=[0], input_tokens=[100], output_tokens=[10], utility=[[0.9]])
    doc = json.loads(plan_of(inst, [0]).to_json())
    doc["statsu"] = "optimal"
    with pytest.raises(FormatError, match=r"^plan.json: `statsu` is not a field of the plan format "
                                          r"\(did you mean `status`\?\)$"):
        ro.Plan.from_json(json.dumps(doc), source="plan.json")


def test_plan_info_is_read_only_but_copies_and_pickles():
    import copy
    import pickle

    inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 4096, (1,))], tasks=[ro.Task("t", 10)],
                       query_task=[0], input_tokens=[100], output_tokens=[10], utility=[[0.9]])
    plan = dataclasses.replace(plan_of(inst, [0]), info={"engine": "x"})
    with pytest.raises(TypeError, match="read-only"):
        plan.info["engine"] = "y"
    with pytest.raises(TypeError, match="read-only"):
        plan.info.update(engine="y")
    assert pickle.loads(pickle.dumps(plan)).info == {"engine": "x"}
    assert copy.deepcopy(plan).info == {"engine": "x"} and dict(plan.info) == {"engine": "x"}


# ----------------------------------------------------------------------------------- logs
LOG_MODELS = ("Qwen3-8B", "Qwen3-4B")
LOG_SPEC_COLUMNS = {"query_id": TEXT, "task": TEXT, "model": TEXT, "batch_size": INTEGER, "repeat": INTEGER,
                    "outcome": NUMBER, "input_tokens": NUMBER, "output_tokens": NUMBER, "feat_x": NUMBER}


@st.composite
def log_records(draw) -> list[dict]:
    n_q = draw(st.integers(1, 3))
    recs = []
    for q in range(n_q):
        inp, feat = draw(st.integers(1, 500)), draw(st.floats(-5, 5, allow_nan=False))
        emb = draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=2))
        for model in draw(st.lists(st.sampled_from(LOG_MODELS), min_size=1, max_size=2, unique=True)):
            recs.append(dict(query_id=f"q{q}", task="GSM8K", model=model, batch_size=draw(st.sampled_from([1, 2, 4])),
                             outcome=draw(st.floats(0, 1)), input_tokens=inp, output_tokens=draw(st.integers(0, 99)),
                             repeat=0, feat_x=feat, embedding=list(emb)))
    return recs


@st.composite
def bad_log_jsonl(draw):
    recs = draw(log_records())
    row = draw(st.integers(0, len(recs) - 1))
    if draw(st.integers(0, 5)) == 0:                    # an entry inside the embedding list
        j = draw(st.integers(0, 1))
        recs[row]["embedding"][j] = mistyped(recs[row]["embedding"][j], draw(st.sampled_from(MISTYPES[NUMBER])))
        return recs, f"embedding[{row}]"
    col = draw(st.sampled_from(sorted(LOG_SPEC_COLUMNS)))
    how = draw(st.sampled_from(MISTYPES[LOG_SPEC_COLUMNS[col]]))
    if col == "query_id" and how == "number":
        how = "boolean"                                  # an integer query id is valid (read as its text)
    recs[row][col] = mistyped(recs[row][col], how)
    return recs, f"{col}[{row}]"


@settings(max_examples=50)
@given(case=bad_log_jsonl())
def test_jsonl_log_refuses_every_mistyped_field(tmp_path_factory, case):
    recs, label = case
    path = tmp_path_factory.mktemp("l") / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(FormatError) as info:
        P.load_logs(path, models=LOG_MODELS)
    assert isinstance(info.value, P.LogError)
    assert_names(info.value, label)


# CSV cells are text: a mistyped number is text that reads as no number (or as a float where
# an integer belongs).
CSV_MISTYPES = {NUMBER: ("'0.5'", "true", "null", "", "[1]", "1,5"),
                INTEGER: ("'1'", "true", "null", "", "[1]", "2.5", "2.0", "1e0")}


@st.composite
def bad_log_csv(draw):
    recs = draw(log_records())
    row = draw(st.integers(0, len(recs) - 1))
    col = draw(st.sampled_from([c for c, k in LOG_SPEC_COLUMNS.items() if k != TEXT]))
    cells = [{k: (json.dumps(v) if k == "embedding" else repr(v) if isinstance(v, float) else str(v))
              for k, v in r.items()} for r in recs]
    cells[row][col] = draw(st.sampled_from(CSV_MISTYPES[LOG_SPEC_COLUMNS[col]]))
    return cells, f"{col}[{row}]"


@settings(max_examples=40)
@given(case=bad_log_csv())
def test_csv_log_refuses_every_mistyped_field(tmp_path_factory, case):
    import csv
    cells, label = case
    path = tmp_path_factory.mktemp("c") / "log.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cells[0]))
        w.writeheader()
        w.writerows(cells)
    with pytest.raises(FormatError) as info:
        P.load_logs(path, models=LOG_MODELS)
    assert isinstance(info.value, P.LogError)
    assert_names(info.value, label)


# Any JSON value in any field: a one-line FormatError / InstanceError or acceptance, never
# another exception (TypeError, OverflowError, NumPy's own ValueError...).
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=6)


@settings(max_examples=60)
@given(inst=instances(**SMALL), data=st.data())
def test_any_json_value_in_any_instance_field_is_a_one_line_error_or_valid(tmp_path_factory, inst, data):
    doc = json.loads(instance_to_json(inst))
    path, _, _ = data.draw(st.sampled_from(leaves(doc, INSTANCE_SPEC) + [((k,), None, k) for k in doc]))
    set_at(doc, path, data.draw(JSON_VALUES))
    file = tmp_path_factory.mktemp("a") / "x.json"
    file.write_text(json.dumps(doc))
    try:
        ro.load(file)
    except (FormatError, InstanceError) as exc:
        assert str(exc).startswith(f"{file}: ") and "\n" not in str(exc)


@settings(max_examples=60)
@given(recs=log_records(), data=st.data())
def test_any_json_value_in_any_log_cell_is_a_one_line_error_or_valid(tmp_path_factory, recs, data):
    row = data.draw(st.integers(0, len(recs) - 1))
    recs[row][data.draw(st.sampled_from(sorted(recs[0])))] = data.draw(JSON_VALUES)
    file = tmp_path_factory.mktemp("a") / "log.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in recs))
    try:
        P.load_logs(file, models=LOG_MODELS)
    except P.LogError as exc:
        assert str(exc).startswith(f"{file}:") and "\n" not in str(exc)


# ----------------------------------------------------- constructors and the grader (unit)
def _model(**over):
    kw = dict(name="x", price_in=0.1, price_out=0.2, context_window=100, batch_sizes=(1, 2))
    kw.update(over)
    return ro.Model(**kw)


@pytest.mark.parametrize("over, field, text", [
    (dict(price_in="0.5"), "models['x'].price_in", "must be a number, got a string '0.5'"),
    (dict(price_in=True), "models['x'].price_in", "must be a number, got a boolean (true)"),
    (dict(price_out=None), "models['x'].price_out", "must be a number, got null"),
    (dict(context_window=None), "models['x'].context_window", "must be an integer, got null"),
    (dict(context_window="32768"), "models['x'].context_window", "must be an integer, got a string '32768'"),
    (dict(context_window=100.5), "models['x'].context_window", "must be an integer, got 100.5"),
    (dict(batch_sizes=(1, "2")), "models['x'].batch_sizes[1]", "must be an integer, got a string '2'"),
    (dict(batch_sizes=(True,)), "models['x'].batch_sizes[0]", "must be an integer, got a boolean (true)"),
    (dict(batch_sizes=(1, 0.7)), "models['x'].batch_sizes[1]", "must be an integer, got 0.7"),
    (dict(batch_sizes="12"), "models['x'].batch_sizes", "must be a sequence of integers, got a string '12'"),
    (dict(price_in=np.float64(-1.5)), "models['x'].price_in", "must be >= 0, got -1.5"),
])
def test_model_refuses_mistyped_fields(over, field, text):
    with pytest.raises(InstanceError) as err:
        _model(**over)
    assert err.value.field == field and str(err.value) == f"`{field}`: {text}"


@pytest.mark.parametrize("value, text", [("160", "got a string '160'"), (False, "got a boolean (false)"),
                                         (None, "got null"), ([160], "got a list of 1 item")])
def test_task_refuses_mistyped_system_tokens(value, text):
    with pytest.raises(InstanceError) as err:
        ro.Task("t", value)
    assert str(err.value) == "`tasks['t'].system_tokens`: must be a number, " + text


def _instance(**over):
    kw = dict(models=[ro.Model("a", 0.1, 0.2, 4096, (1, 2))], tasks=[ro.Task("t0", 30), ro.Task("t1", 40)],
              query_task=[0, 1, 0], input_tokens=[50, 60, 70], output_tokens=[10, 10, 10],
              utility=[[0.5, 0.4]] * 3)
    kw.update(over)
    return ro.Instance(**kw)


@pytest.mark.parametrize("over, field", [
    (dict(query_task=["1"] * 3), "query_task[0]"),
    (dict(query_task=[True] * 3), "query_task[0]"),
    (dict(query_task=np.array([True] * 3)), "query_task"),
    (dict(query_task=np.array(["1"] * 3)), "query_task"),
    (dict(query_task=[0, 0.7, 0]), "query_task[1]"),
    (dict(query_task=[0, None, 0]), "query_task[1]"),
    (dict(input_tokens=[50, "60", 70]), "input_tokens[1]"),
    (dict(input_tokens=[50, True, 70]), "input_tokens[1]"),
    (dict(output_tokens=[[10], [10, "x"], [10]]), "output_tokens[1]"),
    (dict(utility=[[0.5, 0.4], [0.5, "0.4"], [0.5, 0.4]]), "utility[1, 1]"),
    (dict(utility=[[0.5, 0.4], [0.5], [0.5, 0.4]]), "utility[1]"),
    (dict(utility=[[0.5, 0.4], [0.5, [0.4]], [0.5, 0.4]]), "utility[1, 1]"),
    (dict(utility=np.array([[0.5, 0.4]] * 3, dtype=object)), None),          # numbers in an object array: fine
])
def test_instance_refuses_mistyped_arrays(over, field):
    if field is None:
        assert _instance(**over).utility.dtype == np.float64
        return
    with pytest.raises(InstanceError) as err:
        _instance(**over)
    assert err.value.field == field
    assert "\n" not in str(err.value) and "inhomogeneous" not in str(err.value)


def test_integral_floats_are_indices_in_python_but_not_in_files(tmp_path):
    inst = _instance(query_task=np.array([0.0, 1.0, 0.0]))          # a NumPy float array of indices
    assert inst.query_task.tolist() == [0, 1, 0] and inst.query_task.dtype == np.int64
    doc = json.loads(instance_to_json(inst))
    doc["query_task"][1] = 1.0
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"x.json: `query_task\[1\]`: must be an integer, got 1.0$"):
        ro.load(tmp_path / "x.json")


@pytest.mark.parametrize("option, field, text", [
    (["1"] * 3, "option[0]", "must be an integer, got a string '1'"),
    ([True] * 3, "option[0]", "must be an integer, got a boolean (true)"),
    ([0, 0.7, 1], "option[1]", "must be an integer, got 0.7"),
    ([0, None, 1], "option[1]", "must be an integer, got null"),
    ([0, [1], 1], "option[1]", "must be an integer, got a list of 1 item"),
    (np.array([True] * 3), "option", "must hold integers, got an array of booleans (dtype bool)"),
    (np.array(["1"] * 3), "option", "must hold integers, got an array of strings (dtype <U1)"),
    ([0, 1, 10 ** 30], "option[2]", "is too large for an index, got 1e+30"),
])
def test_evaluate_refuses_mistyped_options(option, field, text):
    with pytest.raises(AssignmentError) as err:
        ro.evaluate(_instance(), option)
    assert err.value.field == field and str(err.value) == f"`{field}`: {text}"


def test_evaluate_accepts_integral_floats():
    assert ro.evaluate(_instance(), np.array([0.0, 1.0, 1.0])).n_calls == ro.evaluate(_instance(), [0, 1, 1]).n_calls


# ----------------------------------------------------------------------- message style
def test_messages_format_numbers_readably(tmp_path):
    with pytest.raises(InstanceError) as err:
        _instance(utility=np.array([[0.5, 0.4], [0.5, np.float64(1.5)], [0.5, 0.4]]))
    assert str(err.value) == "`utility[1, 1]`: must be <= 1, got 1.5"
    with pytest.raises(InstanceError) as err:                  # :.6g would print the bound itself
        _instance(utility=[[0.5, 0.4], [0.5, 1.0000001], [0.5, 0.4]])
    assert str(err.value) == "`utility[1, 1]`: must be <= 1, got 1.0000001"
    with pytest.raises(InstanceError) as err:
        _instance(input_tokens=[50, 1e300, 70])
    assert str(err.value) == ("`query[1]`: fits no model's context window (needs at least 1e+300 tokens with "
                              "batch size 1; largest window is 4096)")
    with pytest.raises(InstanceError) as err:
        _model(price_in=10 ** 400)
    assert str(err.value) == "`models['x'].price_in`: is out of the floating-point range, got 1e+400"


def test_load_names_the_file_for_invalid_contents_and_one_mismatched_option(tmp_path):
    doc = json.loads(instance_to_json(_instance()))
    doc["utility"][2][1] = 1.5
    (tmp_path / "u.json").write_text(json.dumps(doc))
    with pytest.raises(InstanceError) as err:
        ro.load(tmp_path / "u.json")
    assert str(err.value) == f"{tmp_path / 'u.json'}: `utility[2, 1]`: must be <= 1, got 1.5"
    assert err.value.field == "utility[2, 1]" and err.value.source == str(tmp_path / "u.json")
    doc = json.loads(instance_to_json(_instance()))
    doc["options"][1] = [0, 4]
    (tmp_path / "o.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError) as err:
        ro.load(tmp_path / "o.json")
    assert str(err.value).endswith("`options[1]` is [0, 4] but the models' batch sizes make option 1 [0, 2]")


def test_ragged_row_names_the_row_not_numpy(tmp_path):
    doc = json.loads(instance_to_json(_instance()))
    doc["utility"][2].append(0.5)
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"r.json: `utility\[2\]`: has 3 entries, but row 0 has 2$"):
        ro.load(tmp_path / "r.json")


def test_fmt_num():
    from robatch_opt._validate import describe, fmt_num
    assert [fmt_num(x) for x in (np.float64(1.5), 1.0, 1e300, 10 ** 300, -10 ** 400, np.int64(12), 0.1 + 0.2)] == \
        ["1.5", "1.0", "1e+300", "1e+300", "-1e+400", "12", "0.3"]
    assert describe("x" * 100) == "a string '" + "x" * 40 + "...'"
    assert describe(math.nan) == "nan" and describe({"a": 1}) == "an object with 1 key"
