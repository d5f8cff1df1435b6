"""Observation-log format: every bad input gets its specific error; CSV and JSON Lines round trips are lossless."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robatch_opt import proxy as P
from robatch_opt.errors import FormatError
from robatch_opt.workloads import llm_truth

HEADER = "query_id,task,model,batch_size,outcome,input_tokens,output_tokens,feat_x\n"
GOOD = ["q1,GSM8K,Qwen3-8B,1,1,36,40,0.5", "q1,GSM8K,Qwen3-8B,4,0,36,41,0.5",
        "q2,MMLU,Qwen3-4B,1,0.25,30,2,-1.0"]


def _write(tmp_path, rows, header=HEADER, name="log.csv"):
    p = tmp_path / name
    p.write_text(header + "".join(r + "\n" for r in rows))
    return p


def _jsonl(tmp_path, records, name="log.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in records))
    return p


@pytest.fixture(scope="module")
def sim_log():
    w = llm_truth("qwen3", n=300, seed=3)
    return P.simulate_logs(w, np.arange(200), batch_fraction=0.3, coverage=0.8, seed=3)


def test_good_csv_reads(tmp_path):
    log = P.load_logs(_write(tmp_path, GOOD))
    assert log.n_rows == 3
    assert log.model_names == ("Qwen3-8B", "Qwen3-4B")
    assert log.feature_names == ("x",)
    np.testing.assert_array_equal(log.outcome, [1.0, 0.0, 0.25])
    np.testing.assert_array_equal(log.batch_size, [1, 4, 1])
    qids, task, feats, y = log.outcome_matrix(["Qwen3-8B", "Qwen3-4B"])
    assert qids.tolist() == ["q1", "q2"] and task.tolist() == ["GSM8K", "MMLU"]
    np.testing.assert_array_equal(y, [[1.0, np.nan], [np.nan, 0.25]])


@pytest.mark.parametrize("column", P.logs.REQUIRED_COLUMNS)
def test_missing_column(tmp_path, column):
    cols = HEADER.strip().split(",")
    keep = [i for i, c in enumerate(cols) if c != column]
    header = ",".join(cols[i] for i in keep) + "\n"
    rows = [",".join(r.split(",")[i] for i in keep) for r in GOOD]
    with pytest.raises(P.MissingColumnError) as exc:
        P.load_logs(_write(tmp_path, rows, header))
    assert exc.value.column == column and column in str(exc.value)


def test_missing_key_in_jsonl_row(tmp_path):
    rec = dict(query_id="q1", task="GSM8K", model="Qwen3-8B", batch_size=1, outcome=1, input_tokens=3,
               output_tokens=4)
    bad = {k: v for k, v in rec.items() if k != "outcome"} | {"query_id": "q2"}
    with pytest.raises(P.MissingColumnError) as exc:
        P.load_logs(_jsonl(tmp_path, [rec, bad]))
    assert exc.value.column == "outcome" and exc.value.row == 1 and "log.jsonl:2" in str(exc.value)


def test_unknown_column(tmp_path):
    with pytest.raises(P.UnknownColumnError, match="`outcomes`.*did you mean `outcome`"):
        P.load_logs(_write(tmp_path, [r + ",1" for r in GOOD], HEADER.strip() + ",outcomes\n"))


def test_unknown_model(tmp_path):
    rows = GOOD + ["q3,GSM8K,Qwen3-9000B,1,1,36,40,0.1"]
    with pytest.raises(P.UnknownModelError) as exc:
        P.load_logs(_write(tmp_path, rows))
    assert exc.value.row == 3 and "Qwen3-9000B" in str(exc.value) and "log.csv:5" in str(exc.value)
    assert "pass `models=`" in str(exc.value)         # the default pools: say how to name others
    with pytest.raises(P.UnknownModelError) as exc:
        P.load_logs(_write(tmp_path, rows), models=["Qwen3-8B", "Qwen3-4B"])
    assert "pass `models=`" not in str(exc.value)     # the caller's own list: a plain typo
    # The same row is fine when the caller names its own pool.
    log = P.load_logs(_write(tmp_path, rows), models=["Qwen3-8B", "Qwen3-4B", "Qwen3-9000B"])
    assert log.n_rows == 4


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_outcome_outside_unit_interval(tmp_path, value):
    rows = GOOD + [f"q3,GSM8K,Qwen3-8B,1,{value},36,40,0.1"]
    with pytest.raises(P.OutcomeRangeError) as exc:
        P.load_logs(_write(tmp_path, rows))
    assert exc.value.column == "outcome" and exc.value.row == 3


def test_duplicate_rows(tmp_path):
    rows = GOOD + [GOOD[1]]
    with pytest.raises(P.DuplicateRowError) as exc:
        P.load_logs(_write(tmp_path, rows))
    assert exc.value.row == 3 and "duplicates row 1" in str(exc.value)
    # Intentional repeats are told apart by `repeat`.
    header = HEADER.strip() + ",repeat\n"
    log = P.load_logs(_write(tmp_path, [r + ",0" for r in GOOD] + [GOOD[1] + ",1"], header))
    assert log.n_rows == 4


def test_inconsistent_query(tmp_path):
    with pytest.raises(P.InconsistentQueryError) as exc:
        P.load_logs(_write(tmp_path, GOOD + ["q1,MMLU,Qwen3-4B,1,1,36,40,0.5"]))
    assert exc.value.column == "task" and exc.value.row == 3
    with pytest.raises(P.InconsistentQueryError) as exc:
        P.load_logs(_write(tmp_path, GOOD + ["q1,GSM8K,Qwen3-4B,1,1,36,40,0.7"]))
    assert exc.value.column == "features"


@pytest.mark.parametrize("row, column", [
    ("q3,GSM8K,Qwen3-8B,0,1,36,40,0.1", "batch_size"),
    ("q3,GSM8K,Qwen3-8B,2.5,1,36,40,0.1", "batch_size"),
    ("q3,GSM8K,Qwen3-8B,1,nan,36,40,0.1", "outcome"),
    ("q3,GSM8K,Qwen3-8B,1,yes,36,40,0.1", "outcome"),
    ("q3,GSM8K,Qwen3-8B,1,1,-5,40,0.1", "input_tokens"),
    ("q3,GSM8K,Qwen3-8B,1,1,36,40,inf", "feat_x"),
    (",GSM8K,Qwen3-8B,1,1,36,40,0.1", "query_id"),
])
def test_malformed_values(tmp_path, row, column):
    with pytest.raises(P.LogValueError) as exc:
        P.load_logs(_write(tmp_path, GOOD + [row]))
    assert exc.value.column == column and exc.value.row == 3


def test_errors_are_value_errors_and_format_errors(tmp_path):
    with pytest.raises(ValueError):
        P.load_logs(_write(tmp_path, GOOD + [GOOD[0]]))
    with pytest.raises(FormatError, match="Parquet"):
        P.load_logs(tmp_path / "log.parquet")
    with pytest.raises(P.LogValueError, match="not valid JSON"):
        P.load_logs(_bad_json(tmp_path))


def _bad_json(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"query_id": "q1", "task": "T"\n')
    return p


def test_embedding_column(tmp_path):
    header = "query_id,task,model,batch_size,outcome,input_tokens,output_tokens,embedding\n"
    rows = ['q1,GSM8K,Qwen3-8B,1,1,36,40,"[0.5, 1.0, 2.0]"', 'q2,GSM8K,Qwen3-8B,1,0,36,40,"[0.1, 0.2, 0.3]"']
    log = P.load_logs(_write(tmp_path, rows, header))
    assert log.embedding_dim == 3 and log.features.shape == (2, 3)
    with pytest.raises(P.LogValueError, match="length 2"):
        P.load_logs(_write(tmp_path, rows + ['q3,GSM8K,Qwen3-8B,1,0,36,40,"[0.1, 0.2]"'], header))
    for suffix in (".csv", ".jsonl"):
        p = tmp_path / f"emb{suffix}"
        log.save(p)
        assert P.load_logs(p).equals(log)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip_of_simulated_log_is_lossless(tmp_path, sim_log, suffix):
    p = tmp_path / f"sim{suffix}"
    P.save_logs(sim_log, p)
    back = P.load_logs(p)
    assert back.n_rows == sim_log.n_rows > 0
    assert back.equals(sim_log)
    # Bit-for-bit: the non-round features survive the text form.
    assert back.features.tobytes() == sim_log.features.tobytes()
    # And the other format from the first one's reading.
    other = tmp_path / ("sim.jsonl" if suffix == ".csv" else "sim.csv")
    back.save(other)
    assert P.load_logs(other).equals(sim_log)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_log_saved_with_a_byte_order_mark_reads_as_without(tmp_path, sim_log, suffix):
    plain = tmp_path / f"sim{suffix}"
    P.save_logs(sim_log, plain)
    bom = tmp_path / f"bom{suffix}"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())        # Excel's "CSV UTF-8"
    assert P.load_logs(bom).equals(sim_log)


def test_simulated_log_matches_truth_shape(sim_log):
    assert set(sim_log.model_names) == {"Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B", "Qwen3-14B",
                                        "Qwen3-32B"}
    assert set(np.unique(sim_log.batch_size).tolist()) == {1, 2, 4, 8}
    assert set(np.unique(sim_log.outcome).tolist()) <= {0.0, 1.0}
    assert sim_log.feature_names == P.simulate.FEATURE_NAMES
