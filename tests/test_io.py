"""ro.save / ro.load: lossless JSON and npz round trips, and one specific error per bad file."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings

import robatch_opt as ro
from robatch_opt.errors import FormatError, InstanceError
from robatch_opt.io import INSTANCE_FORMAT, instance_from_json, instance_to_json

from strategies import instances

ARRAYS = ("query_task", "input_tokens", "output_tokens", "utility")


def awkward_instance() -> ro.Instance:
    """Floats that a sloppy writer would lose: thirds, subnormals, -0.0, huge token counts."""
    models = [ro.Model("Qwen3-8B", 0.1, 1 / 3, 40_000, (1, 2, 4)),
              ro.Model("modèle-β", 2.0000000000000004, 7.3, 9_000_000_000, (1,))]
    tasks = [ro.Task("GSM8K", 320.5), ro.Task("tâche", 0.0)]
    utility = np.array([[0.1, 1 / 3, 2 / 3, -0.0],
                        [5e-324, 1.0, 0.0, 0.30000000000000004],
                        [np.nextafter(1.0, 0.0), 2.2250738585072014e-308, 0.5, 0.25]])
    return ro.Instance(models=models, tasks=tasks, query_task=[0, 1, 1],
                       input_tokens=[10.0, 20.5, 5_000_000_000.0],
                       output_tokens=[[5, 7], [0, 1e-3], [3, 4]], utility=utility)


def assert_same(a: ro.Instance, b: ro.Instance) -> None:
    assert a.models == b.models and a.tasks == b.tasks and a.options == b.options
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        # Bit for bit, so -0.0 and every subnormal must survive too.
        assert x.tobytes() == y.tobytes(), name


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_is_bit_exact(tmp_path, suffix):
    inst = awkward_instance()
    path = ro.save(inst, tmp_path / f"inst{suffix}")
    assert path == tmp_path / f"inst{suffix}"
    back = ro.load(path)
    assert_same(inst, back)
    assert np.signbit(back.utility[0, 3])                   # -0.0 kept its sign
    assert os.listdir(tmp_path) == [f"inst{suffix}"]        # the temporary file was renamed away


def test_npz_compressed_and_format_override(tmp_path):
    inst = awkward_instance()
    ro.save(inst, tmp_path / "c.npz", compress=True)
    assert_same(inst, ro.load(tmp_path / "c.npz"))
    ro.save(inst, tmp_path / "blob.bin", format="npz")
    assert_same(inst, ro.load(tmp_path / "blob.bin", format="npz"))
    ro.save(inst, str(tmp_path / "UPPER.JSON"))            # suffix matching ignores case
    assert_same(inst, ro.load(str(tmp_path / "UPPER.JSON")))


def test_npz_stores_integer_tokens_narrowly(tmp_path):
    inst = ro.Instance(models=[ro.Model("m", 1.0, 2.0, 1_000_000, (1, 8))], tasks=[ro.Task("t", 10)],
                       query_task=[0, 0, 0], input_tokens=[1, 300, 70_000], output_tokens=[0, 255, 3],
                       utility=[[0.5, 0.25]] * 3)
    ro.save(inst, tmp_path / "x.npz")
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        stored = {k: z[k].dtype for k in z.files}
        meta = json.loads(str(z["meta"][()]))
    assert stored["query_task"] == np.uint8
    assert stored["input_tokens"] == np.uint32            # 70,000 does not fit uint16
    assert stored["output_tokens"] == np.uint8
    assert stored["utility"] == np.float64                 # never narrowed
    assert meta["format"] == INSTANCE_FORMAT and meta["n_queries"] == 3
    assert_same(inst, ro.load(tmp_path / "x.npz"))


def test_json_text_is_strict_and_versioned():
    inst = awkward_instance()
    text = instance_to_json(inst)
    d = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert d["format"] == INSTANCE_FORMAT
    assert d["models"][1] == {"name": "modèle-β", "price_in": 2.0000000000000004, "price_out": 7.3,
                              "context_window": 9_000_000_000, "batch_sizes": [1]}
    assert d["options"] == [[0, 1], [0, 2], [0, 4], [1, 1]]
    assert_same(inst, instance_from_json(text))


@settings(max_examples=40)
@given(inst=instances(max_queries=9, max_models=3, max_tasks=3, max_options=6))
def test_round_trip_property(tmp_path_factory, inst):
    d = tmp_path_factory.mktemp("rt")
    for suffix in (".json", ".npz"):
        assert_same(inst, ro.load(ro.save(inst, d / f"i{suffix}")))


def test_empty_instance_round_trips(tmp_path):
    inst = ro.Instance(models=[ro.Model("m", 1.0, 1.0, 100, (1,))], tasks=[ro.Task("t", 1)],
                       query_task=np.zeros(0, int), input_tokens=[], output_tokens=np.zeros((0, 1)),
                       utility=np.zeros((0, 1)))
    for suffix in (".json", ".npz"):
        assert_same(inst, ro.load(ro.save(inst, tmp_path / f"e{suffix}")))


# ------------------------------------------------------------------------- bad JSON files
def _json_doc() -> dict:
    return json.loads(instance_to_json(awkward_instance()))


def _write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def _edit(**changes):
    d = _json_doc()
    for key, value in changes.items():
        if value is KeyError:
            del d[key]
        else:
            d[key] = value
    return json.dumps(d)


def _edit_model(field, value):
    d = _json_doc()
    if value is KeyError:
        del d["models"][1][field]
    else:
        d["models"][1][field] = value
    return json.dumps(d)


BAD_JSON = {
    "truncated": (instance_to_json(awkward_instance())[:300],
                  r"malformed or truncated JSON at line 1 column \d+ \(char \d+\): "),
    "empty": ("", r"malformed or truncated JSON at line 1 column 1 \(char 0\): Expecting value"),
    "garbage": ("{'format': 1}", r"malformed or truncated JSON .*property name"),
    "top-level list": ("[1, 2]", r"expected a JSON object at the top level, got a list"),
    "no format key": (_edit(format=KeyError), r"missing field `format`"),
    "a plan, not an instance": (_edit(format="robatch_opt.plan/1"), r"`format` is 'robatch_opt.plan/1', not"),
    "future version": (_edit(format="robatch_opt.instance/9"), r"unsupported instance format version"),
    "no utility": (_edit(utility=KeyError), r"missing field `utility`"),
    "no models": (_edit(models=KeyError), r"missing field `models`"),
    "models not a list": (_edit(models={"m": 1}), r"field `models` must be a list, got an object"),
    "task not an object": (_edit(tasks=[3]), r"`tasks\[0\]` must be an object, got a number"),
    "model lacks a price": (_edit_model("price_out", KeyError), r"missing field `models\[1\].price_out`"),
    "batch sizes not a list": (_edit_model("batch_sizes", 4),
                               r"`models\[1\].batch_sizes`: must be a list of integers, got 4$"),
    "options edited": (_edit(options=[[0, 1], [0, 2], [0, 8], [1, 1]]),
                       r"`options\[2\]` is \[0, 8\] but the models' batch sizes make option 2 \[0, 4\]$"),
    "options shortened": (_edit(options=[[0, 1]]), r"`options` lists 1 pairs but the models' batch sizes give 4"),
    "n_queries edited": (_edit(n_queries=4), r"`n_queries` is 4 but the arrays hold 3"),
    # A typo would otherwise be ignored silently (new-user audit).
    "unknown field": (_edit(utilty=1), r"`utilty` is not a field of the instance format \(did you mean `utility`\?\)$"),
    "unknown model field": (_edit_model("price_inn", 1.0),
                            r"`models\[1\].price_inn` is not a field .*did you mean `models\[1\].price_in`"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_bad_json_raises_specific_format_error(tmp_path, case):
    text, pattern = BAD_JSON[case]
    path = _write(tmp_path, "bad.json", text)
    with pytest.raises(FormatError, match=pattern) as info:
        ro.load(path)
    msg = str(info.value)
    assert msg.startswith(path + ": ") and "\n" not in msg


def test_non_utf8_json(tmp_path):
    path = _write(tmp_path, "bin.json", b'{"format": "\xff"}')
    with pytest.raises(FormatError, match=r"bin.json: not a JSON text \(byte 12 is not UTF-8\)"):
        ro.load(path)


BAD_CONTENTS = {
    "utility above 1": ("utility", lambda u: u[2].__setitem__(1, 1.5), r"`utility\[2, 1\]`: must be <= 1"),
    "wrong width": ("output_tokens", lambda o: [r.append(1) for r in o], r"`output_tokens`: must have shape"),
    "task out of range": ("query_task", lambda q: q.__setitem__(0, 5), r"`query_task\[0\]`: task index 5"),
    "negative tokens": ("input_tokens", lambda x: x.__setitem__(1, -2), r"`input_tokens\[1\]`: must be >= 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONTENTS))
def test_invalid_contents_raise_the_constructors_instance_error(tmp_path, case):
    key, mutate, pattern = BAD_CONTENTS[case]
    d = _json_doc()
    mutate(d[key])
    with pytest.raises(InstanceError, match=pattern):
        ro.load(_write(tmp_path, "x.json", json.dumps(d)))


def test_invalid_model_raises_instance_error(tmp_path):
    with pytest.raises(InstanceError, match=r"batch_sizes\[1\]`: must be strictly increasing"):
        ro.load(_write(tmp_path, "x.json", _edit_model("batch_sizes", [2, 2])))
    with pytest.raises(InstanceError, match=r"price_in`: must be >= 0"):
        ro.load(_write(tmp_path, "y.json", _edit_model("price_in", -1)))


# -------------------------------------------------------------------------- bad npz files
def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _good_npz_arrays(tmp_path) -> dict:
    ro.save(awkward_instance(), tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _npz_case(tmp_path, case) -> bytes:
    good = _good_npz_arrays(tmp_path)
    raw = (tmp_path / "good.npz").read_bytes()
    if case == "truncated":
        return raw[: len(raw) // 2]
    if case == "last bytes cut":
        return raw[:-10]
    if case == "flipped byte":
        data = bytearray(raw)
        data[200] ^= 0xFF                       # inside the first member: its CRC no longer matches
        return bytes(data)
    if case == "empty":
        return b""
    if case == "text":
        return b"hello, I am not an archive"
    if case == "single npy":
        buf = io.BytesIO()
        np.save(buf, np.zeros(3))
        return buf.getvalue()
    if case == "no meta":
        return _npz_bytes(**{k: v for k, v in good.items() if k != "meta"})
    if case == "no utility":
        return _npz_bytes(**{k: v for k, v in good.items() if k != "utility"})
    if case == "meta not a string":
        return _npz_bytes(**{**good, "meta": np.arange(3)})
    if case == "meta malformed":
        return _npz_bytes(**{**good, "meta": np.array('{"format": ')})
    if case == "meta wrong format":
        return _npz_bytes(**{**good, "meta": np.array('{"format": "something/else"}')})
    if case == "meta lacks tasks":
        meta = json.loads(str(good["meta"][()]))
        del meta["tasks"]
        return _npz_bytes(**{**good, "meta": np.array(json.dumps(meta))})
    if case == "pickled object array":
        return _npz_bytes(**{**good, "utility": np.array([{"a": 1}], dtype=object)})
    if case == "string utility":
        return _npz_bytes(**{**good, "utility": np.array(["0.5"])})
    if case == "misspelt array":          # new-user audit: the extra array was ignored
        return _npz_bytes(**{**good, "utilty": good["utility"]})
    if case == "extra array":
        return _npz_bytes(**{**good, "extra": np.arange(3)})
    if case == "no arrays":               # np.savez(path): a valid zip of nothing
        return _npz_bytes()
    raise AssertionError(case)


BAD_NPZ = {
    "truncated": r"npz archive is truncated or corrupt: BadZipFile",
    "last bytes cut": r"npz archive is truncated or corrupt: BadZipFile",
    "flipped byte": r"npz array `meta` cannot be read: BadZipFile: Bad CRC-32",
    "empty": r"file is empty",
    "text": r"not a zip archive \(starts with b'hell'\)",
    "single npy": r"is a single .npy array",
    "no meta": r"npz archive has no `meta` array",
    "no utility": r"npz archive is missing array `utility`",
    "meta not a string": r"npz array `meta` must be a JSON string",
    "meta malformed": r"npz array `meta` is malformed JSON at char 11",
    "meta wrong format": r"`format` is 'something/else', not a robatch_opt instance",
    "meta lacks tasks": r"missing field `tasks`",
    "pickled object array": r"npz array `utility` cannot be read: ValueError: Object arrays cannot be loaded",
    "string utility": r"npz array `utility`: must hold real numbers, got an array of strings \(dtype <U3\)",
    "misspelt array": r"npz array `utilty` is not part of a robatch_opt instance \(did you mean `utility`\?\)",
    "extra array": r"npz array `extra` is not part of a robatch_opt instance",
    "no arrays": r"npz archive holds no arrays",
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_raises_specific_format_error(tmp_path, case):
    path = _write(tmp_path, "bad.npz", _npz_case(tmp_path, case))
    with pytest.raises(FormatError, match=BAD_NPZ[case]) as info:
        ro.load(path)
    msg = str(info.value)
    assert msg.startswith(path + ": ") and "\n" not in msg


def test_npz_wrong_shape_is_an_instance_error(tmp_path):
    good = _good_npz_arrays(tmp_path)
    path = _write(tmp_path, "x.npz", _npz_bytes(**{**good, "utility": good["utility"][:, :2]}))
    with pytest.raises(InstanceError, match=r"`utility`: must have shape \(3, 4\), got \(3, 2\)"):
        ro.load(path)


# ------------------------------------------------------------------------ paths and suffixes
def test_unknown_suffix_and_format(tmp_path):
    inst = awkward_instance()
    with pytest.raises(FormatError, match=r"unknown file suffix '.csv'; use .json, .npz or .zarr"):
        ro.save(inst, tmp_path / "x.csv")
    with pytest.raises(FormatError, match=r"unknown file suffix '\(none\)'"):
        ro.load(tmp_path / "noext")
    with pytest.raises(FormatError, match=r"`format`: unknown format 'yaml'; valid: json, npz"):
        ro.save(inst, tmp_path / "x.json", format="yaml")
    assert os.listdir(tmp_path) == []                       # nothing half-written


def test_save_refuses_unknown_and_misplaced_keywords(tmp_path):
    # New-user audit: ro.save ignored `chunkqueries=` and `chunk_queries=` for a .json file.
    inst = awkward_instance()
    with pytest.raises(ro.UnknownOptionError, match=r"unknown option 'chunkqueries' \(did you mean `chunk_queries`"):
        ro.save(inst, tmp_path / "x.zarr", chunkqueries=5)
    with pytest.raises(ro.InstanceError, match=r"`chunk_queries`: applies only to a chunked .zarr store"):
        ro.save(inst, tmp_path / "x.json", chunk_queries=5)
    assert os.listdir(tmp_path) == []


def test_llm_out_to_a_file_saves_the_in_memory_draw(tmp_path):
    # New-user audit: out="x.json" wrote a chunked store directory named x.json.
    inst = ro.workloads.llm("qwen3", n=40, seed=3, out=tmp_path / "x.json")
    assert (tmp_path / "x.json").is_file()
    assert_same(ro.workloads.llm("qwen3", n=40, seed=3), inst)
    assert_same(inst, ro.load(tmp_path / "x.json"))
    with pytest.raises(ro.InstanceError, match=r"`chunk_queries` and `client` apply only with out='x.zarr'"):
        ro.workloads.llm("qwen3", n=40, out=tmp_path / "y.json", chunk_queries=10)
    with pytest.raises(FormatError, match=r"unknown file suffix '.csv'"):
        ro.workloads.llm("qwen3", n=40, out=tmp_path / "y.csv")
    assert sorted(os.listdir(tmp_path)) == ["x.json"]


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_missing_file_is_an_os_error(tmp_path, suffix):
    with pytest.raises(FileNotFoundError):
        ro.load(tmp_path / f"absent{suffix}")


def test_save_rejects_non_instances(tmp_path):
    with pytest.raises(TypeError, match="must be a robatch_opt.Instance"):
        ro.save({"models": []}, tmp_path / "x.json")


def test_save_refuses_a_read_only_file(tmp_path):
    """``ro.save`` renamed over a file its owner made read-only (review): refused, file kept."""
    import os

    path = tmp_path / "inst.json"
    ro.save(ro.workloads.llm("qwen3", n=5, seed=0), path)
    before = path.read_bytes()
    os.chmod(path, 0o444)
    with pytest.raises(PermissionError, match="read-only"):
        ro.save(ro.workloads.llm("qwen3", n=6, seed=0), path)
    assert path.read_bytes() == before and not [p for p in tmp_path.iterdir() if p.name != "inst.json"]
