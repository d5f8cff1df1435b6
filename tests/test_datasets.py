"""Loaders of real routing data: recounts with the csv/json modules, the batch-size-1 cost
identity, and one test per kind of bad input."""

from __future__ import annotations

import ast
import csv
import glob
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import robatch_opt as ro
from robatch_opt import datasets as ds

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.exists(), reason="real data (../shared/data/real) not present")
csv.field_size_limit(sys.maxsize)

# Published prices, written out again here so the recount does not use package code.
RB_PRICES = {"gpt-4-1106-preview": (10, 30), "gpt-3.5-turbo-1106": (1, 2), "claude-instant-v1": (0.8, 2.4),
             "claude-v1": (8, 24), "claude-v2": (8, 24), "meta/llama-2-70b-chat": (0.9, 0.9),
             "mistralai/mixtral-8x7b-chat": (0.6, 0.6), "zero-one-ai/Yi-34B-Chat": (0.8, 0.8),
             "WizardLM/WizardLM-13B-V1.2": (0.3, 0.3), "meta/code-llama-instruct-34b-chat": (0.776, 0.776),
             "mistralai/mistral-7b-chat": (0.2, 0.2)}
RL_PRICES = {"gpt-4-1106-preview": (10, 30), "mistralai/Mixtral-8x7B-Instruct-v0.1": (0.6, 0.6)}


def _close(a, b, rel=1e-12):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


# ------------------------------------------------------------------ acceptance 1: recounts
@needs_real
@pytest.mark.parametrize("name", ["arc_challenge_train.csv", "mbpp_train.csv", "winograde_train.csv"])
def test_routerbench_recount(name):
    path = REAL / "routerbench" / name
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    data = ro.datasets.load_routerbench(path)
    summ = data.summary()
    assert summ["n_queries"] == len(rows)
    for m in RB_PRICES:
        vals = [float(r[m]) for r in rows if r[m] != ""]
        costs = [float(r[m + "|total_cost"]) for r in rows]
        got = summ["models"][m]
        assert got["observed"] == len(vals)
        assert _close(got["mean_outcome"], sum(vals) / len(vals))
        assert _close(got["mean_cost_usd"], sum(costs) / len(costs))


@needs_real
def test_routerbench_prices_imply_integer_tokens():
    # The price table is RouterBench's: every real cost is an integer number of input-price tokens
    # (each output price is an integer multiple of the input price).
    for path in sorted((REAL / "routerbench").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                for m, (p_in, _) in RB_PRICES.items():
                    tokens = float(r[m + "|total_cost"]) * 1e6 / p_in
                    assert abs(tokens - round(tokens)) < 1e-6, (path.name, r["sample_id"], m, tokens)


@needs_real
def test_routellm_recount_every_file():
    files = sorted(glob.glob(str(REAL / "routellm" / "mmlu_responses" / "*.csv"))) + \
        [str(REAL / "routellm" / "gsm8k_responses.csv")]
    total = 0
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        data = ro.datasets.load_routellm(f)
        summ = data.summary()
        assert summ["n_queries"] == len(rows), f
        total += len(rows)
        for m, (p_in, p_out) in RL_PRICES.items():
            outcome = [1.0 if r[m] == "True" else 0.0 for r in rows]
            # The stated rule: characters / 4, the prompt at the input price, the response
            # (or one answer token where there is none) at the output price.
            cost = [(len(r["prompt"]) / 4 * p_in + (len(r[m + "_response"]) / 4 if m + "_response" in r else 1.0)
                     * p_out) / 1e6 for r in rows]
            assert _close(summ["models"][m]["mean_outcome"], sum(outcome) / len(outcome)), (f, m)
            assert _close(summ["models"][m]["mean_cost_usd"], sum(cost) / len(cost), rel=1e-9), (f, m)
    assert total == 14042 + 1319


@needs_real
def test_routellm_contaminated_flagged_not_dropped():
    data = ro.datasets.load_routellm(REAL / "routellm")
    flagged = set()
    for kind in ("mmlu", "gsm8k"):
        with open(REAL / "routellm" / f"{kind}_contaminated_prompts.jsonl", encoding="utf-8") as fh:
            flagged |= {json.loads(line)["eval_prompt"] for line in fh if line.strip()}
    prompts = [data.system_prompt[t] + q for t, q in zip(data.task, data.question)]
    expect = np.array([p in flagged for p in prompts])
    assert data.n_queries == 14042 + 1319
    np.testing.assert_array_equal(data.contaminated, expect)
    assert expect.sum() == 17
    dropped = ro.datasets.load_routellm(REAL / "routellm", drop_contaminated=True)
    assert dropped.n_queries == data.n_queries - 17 and not dropped.contaminated.any()
    assert dropped.notes["dropped_contaminated"] == 17


@needs_real
def test_routerarena_recount():
    prices = json.loads((REAL / "routerarena" / "cost.json").read_text())
    data = ro.datasets.load_routerarena(REAL / "routerarena")
    summ = data.summary()
    for f in sorted((REAL / "routerarena").glob("*.jsonl")):
        m = f.stem
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert summ["n_queries"] == len(rows)
        p = prices[m]
        cost = [(r["token_usage"]["input_tokens"] * p["input_token_price_per_million"]
                 + r["token_usage"]["output_tokens"] * p["output_token_price_per_million"]) / 1e6 for r in rows]
        score = [min(max(r["evaluation_result"]["score"], 0.0), 1.0) for r in rows]
        assert _close(summ["models"][m]["mean_cost_usd"], sum(cost) / len(cost))
        # RouterArena's own inference_cost agrees with tokens x price table.
        assert _close(sum(cost), sum(r["evaluation_result"]["inference_cost"] for r in rows), rel=1e-9)
        assert _close(summ["models"][m]["mean_outcome"], sum(score) / len(score))
    assert data.notes["clipped_scores"] == 1


# --------------------------------------------------------- acceptance 2: the cost identity
def _loaders():
    return {"routerbench": lambda: ro.datasets.load_routerbench(REAL / "routerbench"),
            "routellm": lambda: ro.datasets.load_routellm(REAL / "routellm"),
            "routerarena": lambda: ro.datasets.load_routerarena(REAL / "routerarena")}


@needs_real
@pytest.mark.parametrize("source", ["routerbench", "routellm", "routerarena"])
def test_batch_one_cost_identity(source):
    data = _loaders()[source]().dropna()
    inst = data.instance(np.nan_to_num(data.outcome))
    for k, m in enumerate(data.model_names):
        ev = ro.evaluate(inst, np.full(data.n_queries, inst.options.index((k, 1))))
        real = float(np.sum(data.cost_usd[:, k]))
        assert abs(ev.cost_usd - real) <= 1e-9 * real, (source, m, ev.cost_usd, real)
    # Per query too: fixed + variable cost is the real cost of every cell.
    f = inst.fixed_cost_usd[inst.query_task] + inst.variable_cost_usd
    np.testing.assert_allclose(f, data.cost_usd, rtol=1e-9, atol=0)
    assert (inst.output_tokens >= 0).all()


@needs_real
def test_routing_data_methods():
    rb = ro.datasets.load_routerbench(REAL / "routerbench")
    assert rb.summary()["complete_rows"] == 2205
    with pytest.raises(ValueError):
        rb.outcome[0, 0] = 1.0                                          # read-only
    full = rb.dropna()
    assert full.n_queries == 2205 and full.observed.all()
    arc = rb.select(rb.task == rb.task_names.index("arc-challenge"))
    assert arc.n_queries == 1039 and arc.system_prompt == rb.system_prompt
    assert rb.system_prompt[rb.task_names.index("mbpp")] == ""
    assert rb.system_prompt[rb.task_names.index("arc-challenge")].endswith("Answer:\nB\n\n")
    log = full.select(np.arange(30)).to_log()
    assert log.n_rows == 30 * 11
    assert full.select([]).n_queries == 0 and full.select([-1]).query_id[0] == full.query_id[-1]
    assert full.select([0.0, 3.0]).query_id.tolist() == full.query_id[[0, 3]].tolist()   # integral floats
    for bad in (np.array([0.5, 1.0]), ["a"], [full.n_queries], [float(full.n_queries)], np.zeros((2, 2), dtype=int)):
        with pytest.raises(ds.InconsistentDataError, match="mask"):
            full.select(bad)
    rl = ro.datasets.load_routellm(REAL / "routellm" / "gsm8k_responses.csv")
    both = rb.concat(rl)
    assert both.n_queries == rb.n_queries + rl.n_queries
    assert len(both.model_names) == 11 + 1                              # gpt-4-1106 is shared
    g = both.model_index("gpt-4-1106-preview")
    assert not np.isnan(both.outcome[rb.n_queries:, g]).any()
    assert np.isnan(both.outcome[rb.n_queries:, both.model_index("claude-v1")]).all()
    with pytest.raises(ds.DatasetError, match="dropna"):
        both.instance(np.zeros((both.n_queries, both.n_models)))
    inst = full.instance(np.nan_to_num(full.outcome), batch_sizes=(1, 4))
    assert inst.n_options == 22 and inst.utility.shape == (2205, 22)
    j1, j4 = inst.options.index((4, 1)), inst.options.index((4, 4))
    assert (inst.utility[:, j4] <= inst.utility[:, j1]).all()


# ------------------------------------------------------------------------ bad input
HEADER = ["", "sample_id", "prompt", "eval_name", "m1", "m2", "m1|total_cost", "m2|total_cost",
          "oracle_model_to_route_to"]
PRICES = {"m1": (1.0, 2.0), "m2": (0.5, 0.5)}


def _rb_file(tmp_path, rows, header=HEADER):
    path = tmp_path / "rb.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _rb_row(i, *, prompt=None, o1="1.0", o2="0.0", c1="0.001", c2="0.0002", qid=None):
    prompt = repr([f"Few shot.\n\nQuestion {i}?"]) if prompt is None else prompt
    return [str(i), qid or f"q{i}", prompt, "task", o1, o2, c1, c2, "m1"]


def test_routerbench_loads_a_small_file(tmp_path):
    path = _rb_file(tmp_path, [_rb_row(0), _rb_row(1, o2="")])
    data = ro.datasets.load_routerbench(path, prices=PRICES)
    assert data.system_prompt == ("Few shot.\n\n",) and data.question.tolist() == ["Question 0?", "Question 1?"]
    assert np.isnan(data.outcome[1, 1]) and data.notes["missing_outcomes"] == {"m1": 0, "m2": 1}
    inst = data.instance(np.nan_to_num(data.outcome))
    assert abs(ro.evaluate(inst, [0, 0]).cost_usd - 0.002) < 1e-15


@pytest.mark.parametrize("mutate, error, where", [
    (lambda t: t / "nope.csv", ds.MissingFileError, "does not exist"),
    (lambda t: _rb_file(t, [_rb_row(0)], header=[c for c in HEADER if c != "eval_name"][:-1]),
     ds.MissingColumnError, "`eval_name`"),
    (lambda t: _rb_file(t, [_rb_row(0) + ["x"]], header=HEADER + ["extra"]), ds.UnknownColumnError, "`extra`"),
    (lambda t: _rb_file(t, [_rb_row(0), _rb_row(1, prompt="['unclosed")]), ds.PromptFieldError,
     "row 1, column `prompt`"),
    (lambda t: _rb_file(t, [_rb_row(0, prompt="[3]")]), ds.PromptFieldError, "row 0, column `prompt`"),
    (lambda t: _rb_file(t, [_rb_row(0), _rb_row(1, o2="1.5")]), ds.OutcomeRangeError, "row 1, column `m2`"),
    (lambda t: _rb_file(t, [_rb_row(0, o1="yes")]), ds.OutcomeRangeError, "row 0, column `m1`"),
    (lambda t: _rb_file(t, [_rb_row(0, c2="-0.1")]), ds.CostValueError, "row 0, column `m2|total_cost`"),
    (lambda t: _rb_file(t, [_rb_row(0), _rb_row(1, c1="abc")]), ds.CostValueError,
     "row 1, column `m1|total_cost`"),
    (lambda t: _rb_file(t, [_rb_row(0, c1="")]), ds.CostValueError, "row 0, column `m1|total_cost`"),
])
def test_routerbench_bad_input(tmp_path, mutate, error, where):
    path = mutate(tmp_path)
    with pytest.raises(error, match=where.replace("[", r"\[")) as info:
        ro.datasets.load_routerbench(path, prices=PRICES)
    assert isinstance(info.value, ro.FormatError) and isinstance(info.value, ValueError)
    assert str(path) in str(info.value)


def test_routerbench_unknown_price_and_duplicates(tmp_path):
    path = _rb_file(tmp_path, [_rb_row(0), _rb_row(1, qid="q0")])
    with pytest.raises(ds.UnknownPriceError, match="'m2'"):
        ro.datasets.load_routerbench(path, prices={"m1": (1, 2)})
    with pytest.raises(ds.DuplicateQueryError, match=r"rb\.csv:3: row 1, column `sample_id`: duplicates .*rb\.csv:2 "
                                                     r"\(row 0, 'q0'\)"):
        ro.datasets.load_routerbench(path, prices=PRICES, duplicates="raise")
    data = ro.datasets.load_routerbench(path, prices=PRICES)           # default: kept, renamed, counted
    assert data.query_id.tolist() == ["q0", "q0#2"] and data.notes["duplicate_ids_renamed"] == 1
    with pytest.raises(ro.InstanceError, match=r"`duplicates`: must be 'suffix' or 'raise', got 'bogus'"):
        ro.datasets.load_routerbench(path, prices=PRICES, duplicates="bogus")


def _not_utf8(tmp_path):
    path = _rb_file(tmp_path, [_rb_row(0), _rb_row(1)])
    data = path.read_bytes()
    path.write_bytes(data[:-20] + b"\xe9" + data[-20:])          # Latin-1 in the last row
    return path


def _empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize("make, arg, error, where", [
    (_empty_folder, lambda p: p, ds.MissingFileError, "holds no \\*.csv file"),
    (_empty_folder, lambda p: [p], ds.MissingFileError, "is a folder, not a file"),
    (_not_utf8, lambda p: p, ds.MalformedRowError, "is not UTF-8 text"),
    (lambda t: _rb_file(t, []), lambda p: p, ds.MalformedRowError, "holds no data row"),
])
def test_routerbench_unreadable_sources_name_the_file(tmp_path, make, arg, error, where):
    # The audit's cases: an empty folder raised IndexError, a folder in a list
    # IsADirectoryError, Latin-1 bytes a bare UnicodeDecodeError, a header-only file an
    # error about `tasks` that named no file.
    path = make(tmp_path)
    with pytest.raises(error, match=where) as info:
        ro.datasets.load_routerbench(arg(path), prices=PRICES)
    assert str(path) in str(info.value) and isinstance(info.value, ds.DatasetError)


@pytest.mark.parametrize("price, where", [
    ((1.0,), "must be a pair"),
    (3.0, "must be a pair"),
    (("a", "b"), "input of model 'm2'"),
    (("2.5", "10"), "input of model 'm2'"),          # a number, never a string that looks like one
    ((-1.0, 2.0), "input price of model 'm2' must be >= 0"),
    ((1.0, 0.0), "output price of model 'm2' must be > 0"),
])
def test_bad_price_entries_name_the_model(tmp_path, price, where):
    path = _rb_file(tmp_path, [_rb_row(0)])
    with pytest.raises(ds.CostValueError, match=where):
        ro.datasets.load_routerbench(path, prices={**PRICES, "m2": price})


def _arena(tmp_path, rows_by_model, prices=None):
    root = tmp_path / "arena"
    root.mkdir()
    prices = prices or {m: {"input_token_price_per_million": 1.0, "output_token_price_per_million": 4.0}
                        for m in rows_by_model}
    (root / "cost.json").write_text(json.dumps(prices))
    for m, rows in rows_by_model.items():
        (root / f"{m}.jsonl").write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return root


def _arena_row(i, score=1.0, **kw):
    row = {"global_index": f"T_{i}", "question": f"Do it.\n\nQ{i}", "success": True,
           "token_usage": {"input_tokens": 10 + i, "output_tokens": 5},
           "evaluation_result": {"score": score}}
    row.update(kw)
    return row


def test_routerarena_small_and_bad(tmp_path):
    root = _arena(tmp_path, {"a": [_arena_row(0), _arena_row(1, -0.5)], "b": [_arena_row(0), _arena_row(1)]})
    data = ro.datasets.load_routerarena(root)
    assert data.notes["clipped_scores"] == 1 and data.outcome[1, 0] == 0.0
    assert data.system_prompt == ("Do it.\n\n",)
    with pytest.raises(ds.OutcomeRangeError, match=r"row 1, column `evaluation_result.score`"):
        ro.datasets.load_routerarena(root, scores="raise")
    cases = [
        ({"a": [_arena_row(0), _arena_row(0)]}, None, ds.DuplicateQueryError, "row 1, column `global_index`"),
        ({"a": [_arena_row(0, question=["x"])]}, None, ds.PromptFieldError, "row 0, column `question`"),
        ({"a": [_arena_row(0, token_usage={"input_tokens": -3, "output_tokens": 1})]}, None, ds.CostValueError,
         "row 0, column `token_usage.input_tokens`"),
        ({"a": [_arena_row(0, token_usage={"input_tokens": "many", "output_tokens": 1})]}, None, ds.CostValueError,
         "token_usage.input_tokens"),
        ({"a": [{"global_index": "T_0", "question": "q"}]}, None, ds.MissingColumnError, "`token_usage`"),
        ({"a": [_arena_row(0) | {"global_index": ""}]}, None, ds.EmptyFieldError, "row 0, column `global_index`"),
        ({"a": ["{not json"]}, None, ds.MalformedRowError, "row 0"),
        ({"a": [_arena_row(0)]}, {"b": {"input_token_price_per_million": 1, "output_token_price_per_million": 1}},
         ds.UnknownPriceError, "'a'"),
        # New-user audit: the string "false" counted as a successful call, and a zero output
        # price failed later without naming cost.json.
        ({"a": [_arena_row(0, success="false")]}, None, ds.MalformedRowError, "row 0, column `success`"),
        ({"a": [_arena_row(0)]}, {"a": {"input_token_price_per_million": 1, "output_token_price_per_million": 0}},
         ds.CostValueError, "cost.json: column `a.output_token_price_per_million`: must be > 0"),
    ]
    for j, (rows, prices, error, where) in enumerate(cases):
        sub = tmp_path / f"case{j}"
        sub.mkdir()
        with pytest.raises(error, match=where.replace("[", r"\[")):
            ro.datasets.load_routerarena(_arena(sub, rows, prices))
    with pytest.raises(ds.MissingFileError, match="cost.json"):
        empty = tmp_path / "empty"
        empty.mkdir()
        ro.datasets.load_routerarena(empty)


def test_routellm_bad_input(tmp_path):
    good = tmp_path / "gsm8k_responses.csv"
    with open(good, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"])
        w.writerow(["What is 1+1?", "True", "False"])
        w.writerow(["What is 2+2?", "maybe", "True"])
    with pytest.raises(ds.OutcomeRangeError, match="row 1, column `mistralai/Mixtral-8x7B-Instruct-v0.1`"):
        ro.datasets.load_routellm(good)
    bad = tmp_path / "other.csv"
    bad.write_text("prompt,newmodel\nhi,True\n")
    with pytest.raises(ds.UnknownPriceError, match="'newmodel'"):
        ro.datasets.load_routellm(bad)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("question,gpt-4-1106-preview\nhi,True\n")
    with pytest.raises(ds.MissingColumnError, match="`prompt`"):
        ro.datasets.load_routellm(nocol)
    orphan = tmp_path / "orphan.csv"
    orphan.write_text("prompt,gpt-4-1106-preview,x_response\nhi,True,text\n")
    with pytest.raises(ds.UnknownColumnError, match="`x_response`"):
        ro.datasets.load_routellm(orphan)
    with pytest.raises(ds.MissingFileError):
        ro.datasets.load_routellm(tmp_path / "absent")


def test_routing_data_validates_by_hand():
    kw = dict(model_names=("a",), task_names=("t",), task=[0, 0], question=["x", "y"], system_prompt=("",),
              query_id=["1", "2"], outcome=[[1.0], [0.0]], cost_usd=[[1e-3], [2e-3]], price_in=[1.0],
              price_out=[2.0], system_tokens=[0.0], input_tokens=[1.0, 1.0], output_tokens=[[1.0], [2.0]])
    ds.RoutingData(**kw)
    with pytest.raises(ds.DuplicateQueryError):
        ds.RoutingData(**{**kw, "query_id": ["1", "1"]})
    with pytest.raises(ds.OutcomeRangeError):
        ds.RoutingData(**{**kw, "outcome": [[1.0], [2.0]]})
    with pytest.raises(ds.InconsistentDataError):
        ds.RoutingData(**{**kw, "cost_usd": [[1e-3]]})


@pytest.mark.parametrize("edit, kw, where", [
    (lambda u: u.__setitem__((0, 1), 1.5) or u, {}, r"`utility\[0, 1\]`: must be in \[0, 1\], got 1.5"),
    (lambda u: u.__setitem__((1, 0), -3.0) or u, {}, r"`utility\[1, 0\]`"),
    (lambda u: u.astype(str), {}, "`utility`: must hold real numbers"),
    (lambda u: u, {"batch_sizes": (1, 2.5)}, "`batch_sizes`: must be integers"),
    (lambda u: u, {"batch_sizes": "12"}, "`batch_sizes`: must be integers"),
])
def test_instance_refuses_what_it_used_to_clip_or_round(tmp_path, edit, kw, where):
    # The docstring promised InstanceError; 1.5 and -3 were clipped, strings converted and
    # 2.5 rounded down (found by a new-user audit).
    data = ro.datasets.load_routerbench(_rb_file(tmp_path, [_rb_row(0), _rb_row(1)]), prices=PRICES)
    u = np.nan_to_num(data.outcome).copy()
    with pytest.raises(ro.InstanceError, match=where):
        data.instance(edit(u), **kw)


@pytest.mark.parametrize("kw, where", [
    ({"capabilities": {"m1": "x"}}, r"`capabilities\['m1'\]`: must be a number in \[0, 1\), got 'x'"),
    ({"capabilities": {"m1": 1.2}}, r"`capabilities\['m1'\]`: must be in \[0, 1\)"),
    ({"capabilities": {"m_1": 0.5}}, r"`capabilities\['m_1'\]`: is not a model of this data; did you mean 'm1'"),
    ({"capabilities": {"zz": 0.5}}, r"`capabilities\['zz'\]`: is not a model of this data \(models: "),
    ({"capabilities": [0.5]}, "`capabilities`: must be a mapping"),
    ({"degradation": "x"}, "`degradation`: must be a robatch_opt.proxy.Degradation"),
])
def test_instance_names_bad_capabilities_and_degradation(tmp_path, kw, where):
    # Found by a new-user audit: a string capability raised a bare ValueError, a misspelt
    # model was ignored, a string degradation raised AttributeError.
    data = ro.datasets.load_routerbench(_rb_file(tmp_path, [_rb_row(0), _rb_row(1)]), prices=PRICES)
    with pytest.raises(ro.InstanceError, match=where):
        data.instance(np.nan_to_num(data.outcome), batch_sizes=(1, 2), **kw)
    inst = data.instance(np.nan_to_num(data.outcome), batch_sizes=(1, 2), capabilities={"m1": 0.6, "m2": 0.4})
    assert inst.n_options == 4


def test_user_price_table_errors_name_the_table_and_catch_typos(tmp_path):
    path = _rb_file(tmp_path, [_rb_row(0)])
    # A bad entry of the user's table names the table, not the data file.
    with pytest.raises(ds.CostValueError, match=r"^prices: column `m2`: output price") as info:
        ro.datasets.load_routerbench(path, prices={**PRICES, "m2": (1.0, -1.0)})
    assert str(path) not in str(info.value)
    # A misspelt key close to an unpriced model is named, with the model it was meant for.
    with pytest.raises(ds.UnknownPriceError, match=r"model 'm_2' of the price table .* did you mean 'm2'"):
        ro.datasets.load_routerbench(path, prices={"m1": (1.0, 2.0), "m_2": (0.5, 0.5)})
    # Keys far from every model are allowed: one table may price several logs.
    data = ro.datasets.load_routerbench(path, prices={**PRICES, "claude-3-opus": (15.0, 75.0)})
    assert data.model_names == ("m1", "m2")


def test_selections_keep_real_token_counts_aligned_and_concat_keeps_every_notes(tmp_path):
    # Found by a new-user audit: the real counts were notes, so a selection of 10 queries kept
    # all 809 rows of them, and concat of two parts of one source kept one part's notes.
    rows = {"ma": [_arena_row(i) for i in range(4)],
            "mb": [_arena_row(i, token_usage={"input_tokens": 20 + i, "output_tokens": 7 + i}) for i in range(4)]}
    data = ro.datasets.load_routerarena(_arena(tmp_path, rows))
    assert data.real_input_tokens.shape == (4, 2) and "real_input_tokens" not in data.notes
    k = data.model_names.index("mb")
    part = data.select([3, 1])
    i3 = data.query_id.tolist().index("T_3")
    assert part.real_input_tokens.shape == (2, 2) and part.real_output_tokens[0, k] == data.real_output_tokens[i3, k]
    assert data.select_models(["mb"]).real_input_tokens[:, 0].tolist() == data.real_input_tokens[:, k].tolist()
    both = ds.concat([data.select([0, 1]), data.select([2, 3]).dropna()])
    assert len(both.notes) == 2 and all("files" in v for v in both.notes.values())
    assert np.array_equal(both.real_input_tokens, data.real_input_tokens)
    with pytest.raises(ds.InconsistentDataError, match=r"`datas\[1\]`: must be a RoutingData, got int"):
        ds.concat([data, 3])
    with pytest.raises(ds.InconsistentDataError, match="`datas`: must be a sequence of RoutingData"):
        ds.concat(data)
    with pytest.raises(ds.InconsistentDataError, match="`names`: must be a sequence of model names"):
        data.select_models("mb")


def test_routerbench_names_a_mistyped_cost_column_and_refuses_a_file_twice(tmp_path):
    path = _rb_file(tmp_path, [_rb_row(0)], header=[c.replace("m2|total_cost", "m2|total_cst") for c in HEADER])
    with pytest.raises(ds.UnknownColumnError, match=r"column `m2\|total_cst`"):
        ro.datasets.load_routerbench(path, prices=PRICES)
    path = _rb_file(tmp_path, [_rb_row(0)], header=[c for c in HEADER if c != "m2|total_cost"])
    with pytest.raises(ds.UnknownColumnError, match=r"column `m2`.*its `m2\|total_cost` column is missing"):
        ro.datasets.load_routerbench(path, prices=PRICES)
    good = _rb_file(tmp_path, [_rb_row(0)])
    with pytest.raises(ds.InconsistentDataError, match="given twice"):
        ro.datasets.load_routerbench([good, tmp_path / "." / "rb.csv"], prices=PRICES)


def test_files_saved_with_a_byte_order_mark_read_as_without(tmp_path):
    # Excel's "CSV UTF-8" starts the file with a BOM, which became part of the first column's name.
    plain = _rb_file(tmp_path, [_rb_row(0), _rb_row(1)])
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a = ro.datasets.load_routerbench(plain, prices=PRICES)
    b = ro.datasets.load_routerbench(bom, prices=PRICES)
    assert a.query_id.tolist() == b.query_id.tolist() and np.array_equal(a.cost_usd, b.cost_usd)
    inst = ro.workloads.llm("gemma3", n=5, seed=0)
    ro.save(inst, tmp_path / "i.json")
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "i.json").read_bytes())
    assert ro.load(tmp_path / "bom.json").n_queries == 5


def test_csv_loaders_skip_blank_lines_and_refuse_a_repeated_column(tmp_path):
    # New-user audit: one trailing blank line was fatal ("has 0 cells"); a header naming a
    # column twice loaded, the last cell winning.
    path = _rb_file(tmp_path, [_rb_row(0), [], _rb_row(1)])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n\n")
    data = ro.datasets.load_routerbench(path, prices=PRICES)
    assert data.query_id.tolist() == ["q0", "q1"]
    twice = tmp_path / "twice"
    twice.mkdir()
    with pytest.raises(ds.MalformedRowError, match="column `m1`: the header names this column twice"):
        ro.datasets.load_routerbench(_rb_file(twice, [_rb_row(0) + ["1.0"]], header=HEADER + ["m1"]), prices=PRICES)
    short = tmp_path / "short"
    short.mkdir()
    with pytest.raises(ds.MalformedRowError, match="row 1: has 3 cells, the header 9"):
        ro.datasets.load_routerbench(_rb_file(short, [_rb_row(0), ["a", "b", "c"]]), prices=PRICES)
    ll = tmp_path / "gsm8k_responses.csv"
    ll.write_text("prompt,m1,m2\nWhat is 1+1?,True,False\n\nWhat is 2+2?,False,True\n\n", encoding="utf-8")
    data = ro.datasets.load_routellm(ll, prices=PRICES)
    assert data.n_queries == 2 and data.outcome.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "gsm8k_responses.csv").write_text("id,prompt,m1,m2\n0,a?,True,False\n2,b?,True,True\n",
                                               encoding="utf-8")
    with pytest.raises(ds.OutcomeRangeError, match="every column but `prompt`"):
        ro.datasets.load_routellm(extra / "gsm8k_responses.csv", prices=PRICES)


def test_loaders_refuse_what_is_not_a_path_and_bad_options(tmp_path):
    for bad in (123, [123]):
        with pytest.raises(ro.InstanceError, match="`paths?`"):
            ro.datasets.load_routerbench(bad)
    with pytest.raises(ro.InstanceError, match="`scores`"):
        ro.datasets.load_routerarena(tmp_path, scores="x")
    data = ro.datasets.load_routerbench(_rb_file(tmp_path, [_rb_row(0), _rb_row(1)]), prices=PRICES)
    with pytest.raises(ro.InstanceError, match=r"`output_tokens`"):
        data.instance(np.nan_to_num(data.outcome), output_tokens="abc")


def test_routing_data_where_an_instance_belongs_is_named(tmp_path):
    # Proxy/baselines audit: ro.budget_from_fraction(data, ...), the baselines and evaluate
    # raised AttributeError ('RoutingData' object has no attribute 'option_model').
    data = ro.datasets.load_routerbench(_rb_file(tmp_path, [_rb_row(0), _rb_row(1)]), prices=PRICES)
    calls = [lambda: ro.budget_from_fraction(data, 0.5), lambda: ro.reference_costs(data),
             lambda: ro.baselines.eccos_optimizer(data, 0.5), lambda: ro.baselines.routing_only(data),
             lambda: ro.baselines.single_model_plans(data), lambda: ro.baselines.routellm_threshold(data, 1.0),
             lambda: ro.solve(data, 1.0), lambda: ro.frontier(data)]
    for call in calls:
        with pytest.raises(ro.InstanceError, match=r"got RoutingData \(it holds data: build an instance"):
            call()
    with pytest.raises(TypeError, match=r"data\.instance\(utility\)"):
        ro.evaluate(data, [0, 0])


def test_a_routerbench_format_log_names_its_files_as_source(tmp_path):
    # Audit: a user's own log was labelled "RouterBench" in summary()['source'].
    data = ro.datasets.load_routerbench(_rb_file(tmp_path, [_rb_row(0)]), prices=PRICES)
    assert data.summary()["source"] == "RouterBench format: rb.csv"


def test_a_file_of_another_format_is_named_by_its_missing_column(tmp_path):
    # A JSON instance given to the RouterBench loader was reported as a header naming a
    # column twice; the format's own required column is named first.
    path = tmp_path / "inst.csv"
    path.write_text('{"format": "x", "a": 1, "a": 2}\n', encoding="utf-8")
    with pytest.raises(ds.MissingColumnError, match="`sample_id`: required column is missing"):
        ro.datasets.load_routerbench(path, prices=PRICES)


def test_routerbench_a_model_that_did_not_answer_has_no_cost_either(tmp_path):
    """An empty outcome with an empty cost is an unobserved pair (NaN, NaN): it loaded as an
    error, and the workaround cost 0 capped the task's system prompt to 0 tokens (audit)."""
    path = _rb_file(tmp_path, [_rb_row(0, o2="", c2=""), _rb_row(1), _rb_row(2)])
    data = ro.datasets.load_routerbench(path, prices=PRICES)
    assert np.isnan(data.outcome[0, 1]) and np.isnan(data.cost_usd[0, 1])
    assert data.notes["missing_outcomes"] == {"m1": 0, "m2": 1}
    assert data.system_tokens[0] > 0 and data.notes["token_estimates_capped"] == 0
    assert data.dropna().n_queries == 2
    # An answered query still needs its cost.
    path = _rb_file(tmp_path, [_rb_row(0, c2="")])
    with pytest.raises(ds.CostValueError, match="row 0, column `m2|total_cost`"):
        ro.datasets.load_routerbench(path, prices=PRICES)


def test_routerbench_empty_id_or_task_is_an_empty_field(tmp_path):
    """A present but empty cell is not a missing column (audit): EmptyFieldError, which is a
    MissingColumnError too for handlers written before."""
    for row, column in ((_rb_row(0, qid=" ")[:1] + [""] + _rb_row(0)[2:], "sample_id"),
                        (_rb_row(0)[:3] + [""] + _rb_row(0)[4:], "eval_name")):
        path = _rb_file(tmp_path, [row])
        with pytest.raises(ds.EmptyFieldError, match=f"row 0, column `{column}`: empty") as info:
            ro.datasets.load_routerbench(path, prices=PRICES)
        assert isinstance(info.value, ds.MissingColumnError)


def test_dropna_says_which_tasks_it_emptied(tmp_path):
    """A model that never answered a task takes the whole task with dropna(): notes say so (audit)."""
    rows = [_rb_row(i) for i in range(3)] + [
        [str(3 + i), f"r{i}", repr([f"Other.\n\nQ {i}?"]), "other", "1.0", "", "0.001", "", "m1"] for i in range(2)]
    data = ro.datasets.load_routerbench(_rb_file(tmp_path, rows), prices=PRICES)
    kept = data.dropna()
    assert kept.n_queries == 3 and kept.notes["dropna"] == {"dropped": 2, "tasks_emptied": ["other"]}
    assert "dropna" not in data.notes and kept.summary()["notes"]["dropna"]["tasks_emptied"] == ["other"]
    assert data.select_models(["m1"]).dropna().notes["dropna"] == {"dropped": 0, "tasks_emptied": []}
    assert kept.dropna().notes["dropna"] == {"dropped": 2, "tasks_emptied": ["other"]}     # adds up


def test_errors_name_the_line_an_editor_opens(tmp_path):
    """Loader errors gave a 0-based data row only; a CSV cell may span lines (RouterBench's
    few-shot prompts do), so the row did not say where to look. They now begin file:line."""
    multi = "['''Few shot.\n\nQuestion 0?''']"                   # one cell on three lines
    path = _rb_file(tmp_path, [_rb_row(0, prompt=multi), _rb_row(1), _rb_row(2, o2="1.5")])
    assert path.read_text().count("\n") == 6
    with pytest.raises(ds.OutcomeRangeError, match=r"rb\.csv:6: row 2, column `m2`: must be in \[0, 1\]") as info:
        ro.datasets.load_routerbench(path, prices=PRICES)
    assert (info.value.line, info.value.row, info.value.column) == (6, 2, "m2")
    path = _rb_file(tmp_path, [_rb_row(0, prompt=multi), _rb_row(1) + ["extra cell"]])
    with pytest.raises(ds.MalformedRowError, match=r"rb\.csv:5: row 1: has 10 cells"):
        ro.datasets.load_routerbench(path, prices=PRICES)
    root = _arena(tmp_path, {"a": [_arena_row(0), "", _arena_row(2, -0.5)]})
    with pytest.raises(ds.OutcomeRangeError, match=r"a\.jsonl:3: row 2, column `evaluation_result.score`"):
        ro.datasets.load_routerarena(root, scores="raise")
    (root / "cost.json").write_text('{"a": {\n  "input_token_price_per_million": 1,,}}')
    with pytest.raises(ds.MalformedRowError, match=r"cost\.json:2: not valid JSON"):
        ro.datasets.load_routerarena(root)
    good = tmp_path / "gsm8k_responses.csv"
    good.write_text('prompt,gpt-4-1106-preview\n"line one\nline two",True\nWhat?,maybe\n')
    with pytest.raises(ds.OutcomeRangeError, match=r"gsm8k_responses\.csv:4: row 1, column `gpt-4-1106-preview`"):
        ro.datasets.load_routellm(good)
