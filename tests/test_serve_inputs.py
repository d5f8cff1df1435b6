"""Serving inputs read before anything is sent: question and system-prompt files, endpoints
given as objects, the built-in graders' expected answers (new-user audit of serve)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("httpx")

import robatch_opt as ro  # noqa: E402
from robatch_opt import serve  # noqa: E402
from robatch_opt.cli import main  # noqa: E402
from robatch_opt.serve.command import read_questions, read_system_prompts  # noqa: E402

from serve_plans import two_model_plan  # noqa: E402


# --------------------------------------------------------------------------- questions
@pytest.mark.parametrize("sep", ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_questions_split_at_newlines_only(tmp_path, sep):
    """str.splitlines also splits at these: a .txt of 3 questions read as 4 (every later query
    got the wrong question), and valid JSON Lines failed to parse."""
    qs = ["What is 2 + 2?", f"Capital of Sweden?{sep}Answer briefly.", "Largest planet?"]
    txt = tmp_path / "q.txt"
    txt.write_text("\n".join(qs) + "\n", encoding="utf-8")
    assert read_questions(str(txt)) == qs
    jl = tmp_path / "q.jsonl"
    jl.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in qs), encoding="utf-8")
    assert read_questions(str(jl)) == qs


def test_questions_file_conventions(tmp_path):
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"a?\r\nb?\r\n")
    assert read_questions(str(crlf)) == ["a?", "b?"]
    blank_end = tmp_path / "blank_end.txt"
    blank_end.write_text("a?\nb?\n\n")                  # one blank last line is ignored, as before
    assert read_questions(str(blank_end)) == ["a?", "b?"]
    no_newline = tmp_path / "no_newline.txt"
    no_newline.write_text("a?\nb?")
    assert read_questions(str(no_newline)) == ["a?", "b?"]


def test_a_bad_question_is_named_by_its_line(tmp_path):
    """The error gave the question's index; blank lines (skipped in JSON Lines) made it differ
    from the line an editor shows."""
    jl = tmp_path / "q.jsonl"
    jl.write_text('"a?"\n\n"b?"\n{"question": 5}\n')
    with pytest.raises(serve.ServeConfigError, match=r"q\.jsonl:4: `questions\[2\]`: must be a non-empty string"):
        read_questions(str(jl))
    txt = tmp_path / "q.txt"
    txt.write_text("a?\n   \nb?\n")
    with pytest.raises(serve.ServeConfigError, match=r"q\.txt:2: `questions\[1\]`"):
        read_questions(str(txt))


def test_system_prompt_values_must_be_strings(tmp_path):
    sp = tmp_path / "sp.json"
    sp.write_text('{"solo": 3}')
    with pytest.raises(serve.ServeConfigError, match=r"sp\.json: `system_prompts\['solo'\]`: must be a string"):
        read_system_prompts(str(sp))


def _cli_files(tmp_path, endpoints_toml: str, system_prompts: str | None = None):
    inst, plan = two_model_plan(8)
    ro.save(inst, tmp_path / "inst.json")
    plan.save(tmp_path / "plan.json")
    (tmp_path / "q.txt").write_text("".join(f"Question {i}?\n" for i in range(8)))
    (tmp_path / "ep.toml").write_text(endpoints_toml)
    args = ["serve", str(tmp_path / "inst.json"), str(tmp_path / "plan.json"), "--questions",
            str(tmp_path / "q.txt"), "--endpoints", str(tmp_path / "ep.toml"), "--journal", str(tmp_path / "j.jsonl")]
    if system_prompts is not None:
        (tmp_path / "sp.json").write_text(system_prompts)
        args += ["--system-prompts", str(tmp_path / "sp.json")]
    return args


def test_cli_names_the_endpoints_and_system_prompts_files(tmp_path, capsys, monkeypatch):
    """A missing key variable and a system prompt for an unknown task named no file."""
    monkeypatch.delenv("ROBATCH_TEST_NO_SUCH_KEY", raising=False)
    toml = ('["model-a"]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "a"\n'
            '["model-b"]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "b"\napi_key_env = "ROBATCH_TEST_NO_SUCH_KEY"\n')
    assert main(_cli_files(tmp_path, toml)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ep.toml: `endpoints['model-b'].api_key_env`: environment variable" in err
    ok = '["model-a"]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "a"\n["model-b"]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "b"\n'
    assert main(_cli_files(tmp_path, ok, '{"GSM8K": "Be terse."}')) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sp.json: `system_prompts['GSM8K']`" in err
    assert not (tmp_path / "j.jsonl").exists()


# --------------------------------------------------------------------------- endpoints
@pytest.mark.parametrize("bad, where, shown", [
    (dict(api="responses"), r"`endpoints\['m'\]\.api`: must be one of", "responses"),
    (dict(api_key_env="sk-proj-SECRET123"), r"`endpoints\['m'\]\.api_key_env`: must be the name", None),
    (dict(temperature=-1.0), r"`endpoints\['m'\]\.temperature`: must be a number >= 0", "-1.0"),
    (dict(max_concurrency=0), r"`endpoints\['m'\]\.max_concurrency`: must be an integer >= 1", "0"),
    (dict(base_url="localhost:8080"), r"`endpoints\['m'\]\.base_url`: must be an http\(s\) URL", "localhost"),
])
def test_endpoint_objects_get_the_checks_of_a_table(bad, where, shown):
    """An Endpoint built by hand skipped every check: an unknown api failed mid-run with a bare
    KeyError (after the journal was created), and a pasted key was echoed in the message."""
    ep = serve.Endpoint(**{"base_url": "http://127.0.0.1:9/v1", "model": "m", **bad})
    with pytest.raises(serve.ServeConfigError, match=where) as info:
        serve.load_endpoints({"m": ep})
    if shown is None:
        assert "SECRET" not in str(info.value)
    else:
        assert shown in str(info.value)


def test_endpoint_base_url_is_stripped_before_it_is_checked():
    eps = serve.load_endpoints({"m": {"base_url": "  http://127.0.0.1:9/v1 ", "model": "m"}})
    assert eps["m"].base_url == "http://127.0.0.1:9/v1"
    assert serve.load_endpoints({"m": eps["m"]}) == eps


def test_a_missing_key_names_the_field_not_the_key(monkeypatch):
    monkeypatch.delenv("ROBATCH_TEST_NO_SUCH_KEY", raising=False)
    eps = serve.load_endpoints({"m": {"base_url": "http://127.0.0.1:9/v1", "model": "m",
                                      "api_key_env": "ROBATCH_TEST_NO_SUCH_KEY"}})
    with pytest.raises(serve.MissingKeyError, match=r"f\.toml: `endpoints\['m'\]\.api_key_env`: .* is not set"):
        serve.check_keys(eps, source="f.toml")
    monkeypatch.setenv("ROBATCH_TEST_NO_SUCH_KEY", "sk-abc")
    serve.check_keys(eps)


# ----------------------------------------------------------------------------- graders
def test_graders_name_a_bad_expected_answer():
    """Bad expected answers raised bare errors ('int' object is not iterable; could not convert
    string to float) naming no index; 'exact' now takes numbers, as its message said."""
    grade = serve.exact_match(["Paris", 42, ["4", 4.5]])
    assert (grade("paris.", 0), grade("42", 1), grade("4.5", 2), grade("5", 2)) == (1.0, 1.0, 1.0, 0.0)
    for bad in ([["a", None]], [[]], [{"a": 1}]):
        with pytest.raises(ValueError, match=r"`expected\[0\]`: must be a string, a number"):
            serve.exact_match(bad)
    with pytest.raises(ValueError, match=r"`expected\[1\]`: must be a finite number, got 'Paris'"):
        serve.number([3, "Paris"])
    with pytest.raises(ValueError, match=r"`expected\[0\]`: must be a finite number"):
        serve.number([float("nan")])
    assert serve.number(["12"])("It is 12.", 0) == 1.0
    with pytest.raises(ValueError, match=r"`expected\[0\]`: must be one letter A-Z, got 'AB'"):
        serve.choice(["AB"])
    assert serve.choice([" b "])("(B) because", 0) == 1.0


# ------------------------------------------------------------------------------ README
def test_readme_serve_example_runs_as_written(tmp_path, monkeypatch):
    """The README's "Serve a plan" example, against the fault server's fake model instead of a
    vLLM endpoint (its answers are hashes, so every grade is 0 and fit_degradation says why)."""
    from pathlib import Path

    from fault_server import FaultServer
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Serve a plan"):]
    code = section[section.index("```python\n") + 10:]
    code = code[:code.index("```")]
    assert "http://127.0.0.1:8000/v1" in code and code.rstrip().endswith("rows)")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VLLM_KEY", "not-a-real-key")
    with FaultServer(models=("Qwen/Qwen3-8B",)) as srv:
        ns: dict = {}
        with pytest.raises(ro.proxy.DegradationError, match="no .model, task. that also has unbatched rows"):
            exec(code.replace("http://127.0.0.1:8000/v1", srv.base_url), ns)
    assert sorted(set(ns["plan"].batch_size.tolist())) == [1, 4]
    assert len(ns["res"].answers) == 40 and not ns["res"].failures
    assert ns["log"].n_rows == 40 and (tmp_path / "run.jsonl").exists()


# ------------------------------------------------------------------- formats and journal
def test_json_format_does_not_read_a_number_the_reply_may_have_cut():
    """'[1, 2, 12' may be '[1, 2, 123]' cut short: the 12 was read as the third answer."""
    f = serve.JsonArrayFormat()
    assert f.parse("[1, 2, 12", 3, truncated=True) == ["1", "2", None]
    assert f.parse("[1, 2, 12]", 3) == ["1", "2", "12"]
    assert f.parse('["a", "b"', 3) == ["a", "b", None]               # strings end with their quote


def test_a_format_class_is_refused_for_an_instance():
    with pytest.raises(serve.ServeConfigError, match=r"pass an instance, e\.g\. NumberedFormat\(\)"):
        serve.get_format(serve.NumberedFormat)


def test_a_record_json_cannot_hold_fails_its_caller_at_once(tmp_path):
    """A NaN in a record failed inside the journal's drainer, outside its error handling: every
    caller waiting on that write hung."""
    import asyncio
    import dataclasses

    jr = serve.Journal(tmp_path / "j.jsonl", "fp")
    good = serve.CallRecord(key="k", model="m", task="t", query_ids=(0,), batch_size=1, answers=("a",))
    bad = dataclasses.replace(good, key="k2", cost_usd=float("nan"))

    async def both():
        return await asyncio.wait_for(asyncio.gather(jr.append_async(bad), jr.append_async(good),
                                                     return_exceptions=True), timeout=10)

    res = asyncio.run(both())
    jr.close()
    assert isinstance(res[0], ValueError) and res[1] is None
    header, records = serve.read_journal(tmp_path / "j.jsonl")
    assert [r.key for r in records] == ["k"]


def test_cli_refuses_an_empty_journal_name(tmp_path, capsys):
    """`--journal ''` was reported as 'is a folder' (Path('') is '.')."""
    ok = '["model-a"]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "a"\n["model-b"]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "b"\n'
    args = _cli_files(tmp_path, ok)
    args[args.index("--journal") + 1] = ""
    assert main(args) == 2
    assert capsys.readouterr().err == "robatch-opt: error: `journal`: is empty; pass a file name (e.g. run.jsonl)\n"


def test_more_cut_numbers_and_lone_carriage_returns(tmp_path):
    """Review: a cut inside a fraction or an exponent was still read ('1.' of 1.5); a lone \\r
    was turned into a line end by read_text, splitting a question in two."""
    f = serve.JsonArrayFormat()
    for cut in ("[1, 2, 1.", "[1, 2, 12e", "[1, 2, 1.5E-", "[1, 2, 12 "):
        assert f.parse(cut, 3, truncated=True) == ["1", "2", None], cut
    assert f.parse("[1, 2, 1.5 ]", 3) == ["1", "2", "1.5"]
    txt = tmp_path / "q.txt"
    txt.write_bytes(b"first q\rstill first\nsecond\x0cq\n")
    assert read_questions(str(txt)) == ["first q\rstill first", "second\x0cq"]


def test_a_lone_surrogate_is_named():
    """A question holding a lone surrogate (a JSON escape "\\ud800") failed in the run's
    fingerprint with a UnicodeEncodeError naming no field."""
    inst, plan = two_model_plan(8)
    qs = [f"Question {i}?" for i in range(8)]
    qs[3] = "Bad \ud800 escape?"
    with pytest.raises(serve.ServeConfigError, match=r"`questions\[3\]`: holds '\\ud800' at character 4"):
        serve.run(plan, inst, qs, {"model-a": {"base_url": "http://127.0.0.1:9/v1", "model": "a"},
                                   "model-b": {"base_url": "http://127.0.0.1:9/v1", "model": "b"}})


def test_graders_and_endpoints_take_numpy_values():
    """Review: exact_match([7.0]) refused "7"; an array of spellings and NumPy settings in an
    Endpoint, accepted before the checks, were refused."""
    import numpy as np

    grade = serve.exact_match([7.0, np.array(["Paris", "paris, france"]), 2.5])
    assert (grade("7", 0), grade("Paris, France", 1), grade("2.5", 2)) == (1.0, 1.0, 1.0)
    ep = serve.Endpoint(base_url="http://127.0.0.1:9/v1", model="m", max_tokens_per_answer=np.int64(32),
                        temperature=np.float32(0.5), max_concurrency=np.int32(2))
    got = serve.load_endpoints({"m": ep})["m"]
    assert (got.max_tokens_per_answer, got.temperature, got.max_concurrency) == (32, 0.5, 2)
    assert type(got.max_tokens_per_answer) is int and type(got.max_concurrency) is int


def test_a_journal_of_the_same_run_from_before_the_parts_is_resumed(tmp_path):
    """Journals written before the fingerprint covered the endpoints (no "parts" in their
    header) are the same run when the earlier definition agrees: an upgrade mid-run must not
    make the user pay for every call again."""
    path = tmp_path / "old.jsonl"
    path.write_text('{"kind": "header", "format": "robatch_opt.serve.journal/1", "fingerprint": "old-def"}\n')
    jr = serve.Journal(path, "new-def", {"parts": {"calls": "x"}}, legacy_fingerprints=("old-def",))
    jr.close()
    with pytest.raises(serve.JournalError, match="another run"):
        serve.Journal(path, "new-def", {"parts": {"calls": "x"}}, legacy_fingerprints=("other",))
    path.write_text('{"kind": "header", "format": "robatch_opt.serve.journal/1", "fingerprint": "old-def", '
                    '"parts": {"calls": "y"}}\n')
    with pytest.raises(serve.JournalError, match=r"another run \(other plan's calls\)"):
        serve.Journal(path, "new-def", {"parts": {"calls": "x"}}, legacy_fingerprints=("old-def",))
