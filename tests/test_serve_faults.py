"""Serving against a local fault-injecting server: nothing lost, same answers as an
undisturbed run, real usage and cost accounted, killed runs resumed from the journal."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("httpx")

import robatch_opt as ro  # noqa: E402
from robatch_opt import serve  # noqa: E402
from robatch_opt.cli import main  # noqa: E402

from fault_server import FaultServer, fake_answer  # noqa: E402
from serve_plans import two_model_plan  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [f"What is item {i} called?" for i in range(40)]
ALL_FAULTS = {"500": 0.12, "429": 0.08, "timeout": 0.06, "drop": 0.08, "badjson": 0.08, "garbage": 0.12,
              "missing": 0.15}
FAST = dict(timeout_s=10.0, backoff_s=0.005, max_backoff_s=0.05)


@pytest.fixture(scope="module")
def plan40():
    return two_model_plan(40)


def _endpoints(srv: FaultServer) -> dict:
    # One model on the completion API, the other on the chat API: both request kinds run.
    return {"model-a": {"base_url": srv.base_url, "model": "fake-a", "api": "completions"},
            "model-b": {"base_url": srv.base_url, "model": "fake-b", "api": "chat"}}


def _expected():
    return tuple(fake_answer(q) for q in QUESTIONS)


def _check_accounting(res, inst, srv, journal=None, questions=QUESTIONS):
    """Usage in the journal = usage the server reported in the replies the client took; cost =
    usage x prices.

    A call's reply is the last reply the server gave to its questions: earlier ones were
    faults, or replies the client had stopped waiting for (a timeout, a killed client), whose
    usage the client cannot know (a provider may still bill them).
    """
    last = {}
    for e in srv.log:
        if e.get("usage"):
            last[e["questions"]] = e["usage"]
    recs = serve.read_journal(journal)[1] if journal is not None else list(res.calls)
    assert {r.key for r in recs} == {c.key for c in res.calls}
    for r in recs:
        if r.status == "ok":
            u = last[tuple(questions[q] for q in r.query_ids)]
            assert (r.prompt_tokens, r.completion_tokens) == (u["prompt_tokens"], u["completion_tokens"]), r.key
    assert res.prompt_tokens == sum(r.prompt_tokens for r in recs) > 0
    assert res.completion_tokens == sum(r.completion_tokens for r in recs) > 0
    price = {m.name: (m.price_in, m.price_out) for m in inst.models}
    expect = sum((c.prompt_tokens * price[c.model][0] + c.completion_tokens * price[c.model][1]) / 1e6
                 for c in recs)
    assert math.isclose(res.cost_usd, expect, rel_tol=1e-12)
    assert math.isclose(sum(r.cost_usd for r in recs), expect, rel_tol=1e-12)


def test_undisturbed_run_answers_every_query_and_accounts_usage(plan40, tmp_path):
    inst, plan = plan40
    with FaultServer() as srv:
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=tmp_path / "run.jsonl", **FAST)
        assert res.answers == _expected()
        assert res.failures == {}
        assert len(res.calls) == len(plan.calls) == len(srv.log)        # one request per call
        assert {c.model for c in res.calls} == {"model-a", "model-b"}
        assert sorted({c.n_questions for c in res.calls}) == [1, 4]
        _check_accounting(res, inst, srv, tmp_path / "run.jsonl")
        served = [e["usage"] for e in srv.log]               # undisturbed: every reply was taken
        assert res.prompt_tokens == sum(u["prompt_tokens"] for u in served)
        assert res.completion_tokens == sum(u["completion_tokens"] for u in served)
        assert res.predicted_cost_usd == plan.cost_usd


def test_deterministic_faults_lose_nothing_and_give_the_undisturbed_answers(tmp_path):
    inst, plan = two_model_plan(96)                          # 12 batched calls, 48 single ones
    questions = [f"What is item {i} called?" for i in range(96)]
    with FaultServer() as srv:
        undisturbed = serve.run(plan, inst, questions, _endpoints(srv), **FAST)
    with FaultServer(ALL_FAULTS, timeout_sleep_s=1.0) as srv:
        res = serve.run(plan, inst, questions, _endpoints(srv), journal=tmp_path / "run.jsonl",
                        **{**FAST, "timeout_s": 0.5})
        kinds = {e["fault"] for e in srv.log} - {None}
        assert kinds == set(ALL_FAULTS)                      # every fault kind was met
        assert res.answers == undisturbed.answers            # nothing lost, nothing misattributed
        assert res.answers == tuple(fake_answer(q) for q in questions)
        assert res.failures == {}
        singles = [c for c in res.calls if c.is_single]
        assert singles, "garbage and missing items should have sent queries again alone"
        assert all(c.n_questions == 1 and c.batch_size == 1 for c in singles)
        # A request can fail before it reaches the server (a connect timeout on a busy machine).
        assert res.attempts >= len(srv.log) > len(res.calls)
        _check_accounting(res, inst, srv, tmp_path / "run.jsonl", questions)


def test_retry_after_is_honoured(plan40):
    inst, plan = plan40
    with FaultServer({"429": 1.0}, max_faults_per_call=1, retry_after="0.3") as srv:
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), timeout_s=5.0, backoff_s=0.001)
        assert res.answers == _expected()
        by_call: dict = {}
        for e in srv.log:
            by_call.setdefault(e["questions"], []).append(e["t"])
        waits = [ts[1] - ts[0] for ts in by_call.values()]
        assert len(waits) == len(plan.calls)
        # The backoff alone is ~1 ms: only the header explains a wait of its length.
        assert min(waits) >= 0.3 * 0.95


def test_exhausted_retries_give_named_failures_and_lose_nothing(plan40):
    inst, plan = plan40
    with FaultServer({"500": 1.0}, max_faults_per_call=99) as srv:
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), retries=2, **FAST)
        assert res.answers == (None,) * 40
        assert sorted(res.failures) == list(range(40))
        assert all(f.reason.startswith("http 500") and f.attempts == 3 for f in res.failures.values())
        assert len(srv.log) == 3 * len(plan.calls)
        assert res.cost_usd == 0.0


def test_client_errors_are_not_retried(plan40):
    inst, plan = plan40
    with FaultServer() as srv:
        eps = _endpoints(srv)
        eps["model-a"]["base_url"] = srv.base_url + "/nope"     # POST there: 404
        res = serve.run(plan, inst, QUESTIONS, eps, check=False, retries=3, **FAST)
        failed = [c for c in res.calls if c.status == "failed"]
        assert failed and all(c.model == "model-a" and c.attempts == 1 for c in failed)
        assert all(res.failures[q].reason.startswith("http 404") for c in failed for q in c.query_ids)
        assert all(a == e for a, e, q in zip(res.answers, _expected(), range(40)) if q not in res.failures)


def test_resume_sends_no_finished_call(plan40, tmp_path):
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer({"garbage": 0.3, "missing": 0.3}) as srv:
        first = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        n = len(srv.log)
        again = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        assert len(srv.log) == n                             # nothing sent
        assert again.answers == first.answers == _expected()
        assert again.n_resumed == len(first.calls)
        assert again.cost_usd == first.cost_usd


def test_torn_last_line_is_dropped_and_that_call_resent(plan40, tmp_path):
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer() as srv:
        serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        lines = journal.read_text().splitlines(keepends=True)
        last = json.loads(lines[-1])
        journal.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])   # killed mid-write
        n = len(srv.log)
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        assert len(srv.log) == n + 1                         # only the torn call again
        assert srv.log[-1]["questions"] == tuple(QUESTIONS[q] for q in last["query_ids"])
        assert res.answers == _expected()
        assert len(journal.read_text().splitlines()) == len(lines)


def test_journal_of_another_run_is_refused(plan40, tmp_path):
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer() as srv:
        serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        other = list(QUESTIONS)
        other[3] = "Something else?"
        with pytest.raises(serve.JournalError, match="another run"):
            serve.run(plan, inst, other, _endpoints(srv), journal=journal, **FAST)


_CHILD = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
import robatch_opt as ro
from serve_plans import two_model_plan
inst, plan = two_model_plan(40)
questions = json.loads(sys.argv[1])
ro.serve.run(plan, inst, questions, json.loads(sys.argv[2]), journal=sys.argv[3], max_concurrency=2,
             timeout_s=5.0, backoff_s=0.005)
"""


def test_sigkill_mid_run_then_resume_resends_no_finished_call(plan40, tmp_path):
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer({"missing": 0.3}, delay_s=0.15) as srv:
        code = _CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"))
        proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(QUESTIONS), json.dumps(_endpoints(srv)),
                                 str(journal)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if journal.exists() and journal.read_text().count("\n") >= 8:     # header + 7 calls
                    break
                time.sleep(0.01)
            assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read().decode()[-500:]}"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        _, done = serve.read_journal(journal)
        assert 7 <= len(done) < len(plan.calls)
        before = len(srv.log)
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        for rec in done:                                   # finished before the kill: sent exactly once
            assert srv.requests_for(tuple(QUESTIONS[q] for q in rec.query_ids)) == 1, rec.key
        assert res.n_resumed == len(done)
        assert len(srv.log) - before == len(res.calls) - len(done)
        assert res.answers == _expected()
        _check_accounting(res, inst, srv, journal)


def test_json_format_on_the_chat_api(plan40):
    inst, plan = plan40
    with FaultServer({"missing": 1.0}, max_faults_per_call=1) as srv:
        eps = {m: {"base_url": srv.base_url, "model": "fake-a", "api": "chat"} for m in ("model-a", "model-b")}
        res = serve.run(plan, inst, QUESTIONS, eps, format="json", **FAST)
        assert res.answers == _expected() and res.failures == {}
        assert any(c.is_single for c in res.calls)          # missing items were asked again alone


def test_limits_and_key(plan40, monkeypatch):
    inst, plan = plan40
    monkeypatch.setenv("RO_TEST_KEY", "sk-test-123")
    with FaultServer(delay_s=0.02) as srv:
        eps = _endpoints(srv)
        for e in eps.values():
            e.update({"max_concurrency": 1, "requests_per_s": 40.0, "api_key_env": "RO_TEST_KEY"})
        res = serve.run(plan, inst, QUESTIONS, eps, max_concurrency=8, **FAST)
        assert res.answers == _expected()
        assert {e["auth"] for e in srv.log} == {"Bearer sk-test-123"}
        assert srv.max_in_flight <= 2                       # one per endpoint, two endpoints
        for model in ("fake-a", "fake-b"):                  # request starts at most 40 per second
            path = "/v1/completions" if model == "fake-a" else "/v1/chat/completions"
            t = sorted(e["t"] for e in srv.log if e["path"] == path)
            assert t[-1] - t[0] >= (len(t) - 1) / 40.0 * 0.9


# -------------------------------------------------------------------- configuration errors
def test_bad_configuration_fails_before_any_request(plan40, tmp_path, monkeypatch):
    inst, plan = plan40
    with FaultServer() as srv:
        eps = _endpoints(srv)
        monkeypatch.delenv("RO_TEST_KEY", raising=False)
        eps["model-b"]["api_key_env"] = "RO_TEST_KEY"
        with pytest.raises(serve.MissingKeyError, match=r"endpoints\['model-b'\].api_key_env.*RO_TEST_KEY.*not set"):
            serve.run(plan, inst, QUESTIONS, eps)
        monkeypatch.setenv("RO_TEST_KEY", "")
        with pytest.raises(serve.MissingKeyError, match="set but empty"):
            serve.run(plan, inst, QUESTIONS, eps)
        # A key pasted where the variable's name belongs is refused without echoing it.
        eps["model-b"]["api_key_env"] = "sk-abcdef0123456789"
        with pytest.raises(serve.ServeConfigError, match="a string of 19 characters") as info:
            serve.run(plan, inst, QUESTIONS, eps)
        assert "abcdef" not in str(info.value)
        eps = _endpoints(srv)
        eps["model-a"]["api"] = "embeddings"
        with pytest.raises(serve.ServeConfigError, match=r"endpoints\['model-a'\].api"):
            serve.run(plan, inst, QUESTIONS, eps)
        with pytest.raises(serve.ServeConfigError, match=r"no endpoint for model 'model-b'"):
            serve.run(plan, inst, QUESTIONS, {"model-a": _endpoints(srv)["model-a"]})
        with pytest.raises(serve.ServeConfigError, match=r"questions\[5\]"):
            serve.run(plan, inst, QUESTIONS[:5] + [""] + QUESTIONS[6:], _endpoints(srv))
        with pytest.raises(serve.ServeConfigError, match="one question per query"):
            serve.run(plan, inst, QUESTIONS[:-1], _endpoints(srv))
        eps = _endpoints(srv)
        eps["model-a"]["model"] = "not-served"
        with pytest.raises(serve.ServeConfigError, match="does not serve 'not-served'"):
            serve.run(plan, inst, QUESTIONS, eps)
        assert srv.log == []                                # nothing was sent
    # A port nobody listens on (the server above is stopped).
    with pytest.raises(serve.EndpointUnreachableError, match="unreachable"):
        serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=tmp_path / "j.jsonl")
    assert not (tmp_path / "j.jsonl").exists()              # a run that cannot start leaves no file


def test_endpoints_toml(tmp_path):
    good = tmp_path / "ep.toml"
    good.write_text('["m"]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "x"\napi = "completions"\n'
                    'max_concurrency = 2\nrequests_per_s = 5\n')
    ep = serve.load_endpoints(good)["m"]
    assert (ep.api, ep.max_concurrency, ep.requests_per_s, ep.url) == ("completions", 2, 5.0,
                                                                       "http://127.0.0.1:9/v1/completions")
    bad = tmp_path / "bad.toml"
    bad.write_text('["m"]\nbase_url = "http://h/v1"\nmodel = "x"\napi_kye_env = "K"\n')
    with pytest.raises(serve.ServeConfigError, match=r"bad.toml: `endpoints\['m'\].api_kye_env`: unknown setting"):
        serve.load_endpoints(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[m\n")
    with pytest.raises(serve.ServeConfigError, match="not valid TOML"):
        serve.load_endpoints(broken)
    with pytest.raises(serve.ServeConfigError, match="base_url.*http"):
        serve.load_endpoints({"m": {"base_url": "localhost:8000", "model": "x"}})


# ----------------------------------------------------------------------------- the log
def test_to_log_grades_every_reply(plan40):
    inst, plan = plan40
    with FaultServer({"missing": 0.5}) as srv:
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), **FAST)
    expected = list(_expected())
    expected[0] = "wrong"
    log = res.to_log("exact", expected)
    singles = sum(c.is_single for c in res.calls)
    assert len(log.outcome) == 40 + singles                 # a query asked again alone has two rows
    rows = {(q, int(b)): o for q, b, o in zip(log.query_id, log.batch_size, log.outcome)}
    assert rows[("0", 1)] == 0.0
    # A query missing from its batch: outcome 0 at the batch size, 1 alone.
    for c in res.calls:
        if c.is_single:
            q = c.query_ids[0]
            assert rows[(str(q), 1)] == 1.0 and any(rows.get((str(q), b)) == 0.0 for b in (2, 3, 4))
    assert set(log.model) == {"model-a", "model-b"}


# ------------------------------------------------------------------------------- CLI
def _cli_files(tmp_path, srv, inst, plan):
    ro.save(inst, tmp_path / "inst.json")
    (tmp_path / "plan.json").write_text(plan.to_json())
    (tmp_path / "q.txt").write_text("\n".join(QUESTIONS) + "\n")
    eps = _endpoints(srv)
    (tmp_path / "ep.toml").write_text("".join(
        f'["{m}"]\nbase_url = "{e["base_url"]}"\nmodel = "{e["model"]}"\napi = "{e["api"]}"\n\n' for m, e in eps.items()))
    return [str(tmp_path / "inst.json"), str(tmp_path / "plan.json"), "--questions", str(tmp_path / "q.txt"),
            "--endpoints", str(tmp_path / "ep.toml"), "--journal", str(tmp_path / "run.jsonl")]


def test_cli_serve(plan40, tmp_path, capsys):
    inst, plan = plan40
    with FaultServer({"missing": 0.3}) as srv:
        args = _cli_files(tmp_path, srv, inst, plan)
        assert main(["serve", *args, "--json", "--answers-out", str(tmp_path / "a.jsonl")]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["n_answered"] == 40 and out["n_failed"] == 0 and out["cost_usd"] > 0
        rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
        assert [r["answer"] for r in rows] == list(_expected())
        n = len(srv.log)
        assert main(["serve", *args]) == 2                  # journal exists, no --resume
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--resume" in err
        assert main(["serve", *args, "--resume"]) == 0
        assert "40 answered" in capsys.readouterr().out and len(srv.log) == n
        # --resume with a journal that is not there (a typo) would pay for every call again.
        assert main(["serve", *args[:-1], str(tmp_path / "typo.jsonl"), "--resume"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "nothing to resume" in err and len(srv.log) == n
    (tmp_path / "ep.toml").write_text('["model-a"]\nmodel = "x"\n')
    code = main(["serve", *args[:-1], str(tmp_path / "new.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "base_url" in err and "ep.toml" in err
    # The server is gone: unreachable, found before anything is sent; one line, status 2.
    (tmp_path / "ep.toml").write_text("".join(
        f'["{m}"]\nbase_url = "{srv.base_url}"\nmodel = "fake-a"\n\n' for m in ("model-a", "model-b")))
    code = main(["serve", *args[:-1], str(tmp_path / "new.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unreachable" in err
    (tmp_path / "ep.toml").write_text("".join(
        f'["{m}"]\nbase_url = "{srv.base_url}"\nmodel = "fake-a"\napi_key_env = "RO_UNSET_KEY_VAR"\n\n'
        for m in ("model-a", "model-b")))
    os.environ.pop("RO_UNSET_KEY_VAR", None)
    code = main(["serve", *args[:-1], str(tmp_path / "new.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "RO_UNSET_KEY_VAR" in err and "is not set" in err


def test_cli_interrupt_exits_130_and_leaves_a_resumable_journal(plan40, tmp_path):
    inst, plan = plan40
    with FaultServer(delay_s=0.2) as srv:
        args = _cli_files(tmp_path, srv, inst, plan)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "robatch_opt", "serve", *args, "--max-concurrency", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
        try:
            journal = tmp_path / "run.jsonl"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if journal.exists() and journal.read_text().count("\n") >= 4:
                    break
                time.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err.decode()[-500:]
        assert err.decode().strip() == "robatch-opt: interrupted"
        _, done = serve.read_journal(journal)                # whole lines only
        assert 3 <= len(done) < len(plan.calls)
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        assert res.answers == _expected() and res.n_resumed == len(done)


def test_a_plan_for_another_instance_is_refused_before_any_request(plan40):
    # The audit served, and paid for, a plan whose tasks (or batch sizes) were not the
    # instance's; `robatch-opt evaluate` refused the same pairs.
    inst, plan = plan40
    other_inst, other_plan = two_model_plan(40, n_solo=10)
    with FaultServer({}) as srv:
        with pytest.raises(serve.ServeConfigError, match="plan.query_task.*query 10 is in task 1 in the plan"):
            serve.run(other_plan, inst, QUESTIONS, _endpoints(srv), **FAST)
        narrower = inst.restrict(batch_sizes=[1])
        with pytest.raises(serve.ServeConfigError, match="plan.options"):
            serve.run(plan, narrower, QUESTIONS, _endpoints(srv), **FAST)
        with pytest.raises(serve.ServeConfigError, match="timeout_s.*> 0"):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), timeout_s=0)
        assert srv.log == []                               # nothing was sent


def test_predicted_cost_is_the_instance_grading_not_the_file_claim(plan40, tmp_path):
    inst, plan = plan40
    doctored = dataclasses.replace(plan, cost_usd=1e-9)
    assert doctored.cost_usd == 1e-9
    with FaultServer({}) as srv:
        res = serve.run(doctored, inst, QUESTIONS, _endpoints(srv), journal=tmp_path / "run.jsonl", **FAST)
    assert res.predicted_cost_usd == ro.evaluate(inst, plan.option).cost_usd


@pytest.mark.parametrize("target", ["dir", "questions", "missing_dir"])
def test_cli_serve_refuses_a_bad_answers_out_before_any_request(plan40, tmp_path, capsys, target):
    inst, plan = plan40
    with FaultServer({}) as srv:
        args = _cli_files(tmp_path, srv, inst, plan)
        (tmp_path / "adir").mkdir()
        out = {"dir": tmp_path / "adir", "questions": tmp_path / "q.txt",
               "missing_dir": tmp_path / "nope" / "a.jsonl"}[target]
        before = (tmp_path / "q.txt").read_bytes()
        assert main(["serve", *args, "--answers-out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--answers-out" in err
        assert srv.log == [] and (tmp_path / "q.txt").read_bytes() == before
        assert not (tmp_path / "run.jsonl").exists() or (tmp_path / "run.jsonl").stat().st_size == 0


@pytest.mark.parametrize("edit, where", [
    ({"query_ids": [999]}, "does not match the plan's call"),        # was an IndexError deep in the run
    ({"cost_usd": -1.0}, "field `cost_usd`: must be a finite number >= 0"),   # was accepted: cost -0.999
    ({"prompt_tokens": -5}, "field `prompt_tokens`: must be an integer >= 0"),
    ({"cost_usd": "lots"}, "field `cost_usd`"),
])
def test_an_edited_journal_is_refused_on_resume_naming_line_and_field(plan40, tmp_path, edit, where):
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer({}) as srv:
        serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        lines = journal.read_text().splitlines()
        call = json.loads(lines[1])
        call.update(edit)
        lines[1] = json.dumps(call)
        journal.write_text("\n".join(lines) + "\n")
        n = len(srv.log)
        with pytest.raises(serve.JournalError, match=where):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        assert len(srv.log) == n                                       # nothing sent


def test_journal_paths_are_checked_by_name(plan40, tmp_path):
    # A folder raised IsADirectoryError, a path under a file FileExistsError, and a missing
    # folder was created silently (--answers-out refused it).
    inst, plan = plan40
    (tmp_path / "adir").mkdir()
    (tmp_path / "f.txt").write_text("x")
    with FaultServer({}) as srv:
        for path, where in ((tmp_path / "adir", "is a folder"), (tmp_path / "nope" / "j.jsonl", "does not exist"),
                            (tmp_path / "f.txt" / "j.jsonl", "is not a directory")):
            with pytest.raises(serve.JournalError, match=where):
                serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=path, check=False, **FAST)
        assert srv.log == []
    assert not (tmp_path / "nope").exists()


def test_resume_sends_again_the_calls_that_failed_and_keeps_their_accounting(plan40, tmp_path, capsys):
    """After an outage every call was journalled as failed and --resume re-sent none of them
    (new-user audit). Now they are sent again; the CLI exits 1 while queries stay unanswered."""
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer({"500": 1.0}, max_faults_per_call=1) as srv:      # each call's first request fails
        args = _cli_files(tmp_path, srv, inst, plan)
        assert main(["serve", *args, "--retries", "0", "--json"]) == 1
        first = json.loads(capsys.readouterr().out)
        assert first["n_failed"] == 40 and first["n_answered"] == 0
        n_calls = first["n_calls"]
        sent = len(srv.log)
        assert main(["serve", *args, "--retries", "0", "--json", "--resume"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["n_failed"] == 0 and again["n_answered"] == 40 and again["n_resumed"] == 0
        assert len(srv.log) - sent >= n_calls                 # every failed call was sent again
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, retries=0, **FAST)
        assert res.answers == _expected() and res.n_resumed == again["n_calls"]
        # The second run counted the first run's failed attempts too; a third run reads both
        # records of each call back (failed, then answered) and agrees with it. It kept only the
        # newest record, and so lost the first run's requests and spending.
        assert len(srv.log) - sent == again["n_requests"] - first["n_requests"]   # the third sent nothing
        assert res.attempts == again["n_requests"]
        assert res.cost_usd == pytest.approx(again["cost_usd"], rel=1e-12)
        assert sorted({c.status for c in res.calls if c.key == res.calls[0].key}) == ["failed", "ok"]


def test_usage_that_is_missing_or_not_a_count_is_flagged_not_billed():
    from robatch_opt.serve.executor import _usage_tokens

    assert _usage_tokens({"prompt_tokens": 12, "completion_tokens": 3}) == (12, 3, None)
    assert _usage_tokens(None) == (0, 0, "no usage reported")
    p, c, err = _usage_tokens({"prompt_tokens": -100, "completion_tokens": "5"})
    assert (p, c) == (0, 0) and "prompt_tokens=-100" in err and "completion_tokens='5'" in err
    assert _usage_tokens({"prompt_tokens": 7, "completion_tokens": 2.5})[:2] == (0, 0)    # the pair is unknown


@pytest.mark.parametrize("options, field", [({"fromat": "json"}, "fromat.*did you mean `format`"),
                                            ({"progress": 5}, "progress"), ({"check": "yes"}, "check"),
                                            ({"ask_alone": None}, "ask_alone")])
def test_run_options_are_checked_before_any_request(plan40, options, field):
    inst, plan = plan40
    with FaultServer({}) as srv:
        with pytest.raises(serve.ServeConfigError, match=field):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), **options)
        assert srv.log == []


def test_to_log_names_a_bad_expected_list_or_grader(plan40):
    inst, plan = plan40
    with FaultServer({}) as srv:
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), **FAST)
    expected = list(_expected())
    # Accepted forms stay accepted: a list of accepted strings per query ("exact"), NumPy numbers.
    assert res.to_log("exact", [[e, e.upper()] for e in expected]).n_rows > 0
    assert res.to_log("number", np.arange(40)).n_rows > 0
    for args, where in ((("exact", expected[:39]), r"`expected`: must hold one answer per query \(40\), got 39"),
                        (("exact", [None] * 40), r"`expected\[0\]`: must be an answer"),
                        ((lambda a, q: "yes",), r"`grader`: must return a number in \[0, 1\].*'yes'"),
                        ((lambda a, q: 1.5,), r"`grader`: must return a number in \[0, 1\]")):
        with pytest.raises(ValueError, match=where):
            res.to_log(*args)
    assert res.to_log("exact", expected).n_rows > 0


def test_cli_serve_errors_name_the_flag_or_the_file(plan40, tmp_path, capsys):
    inst, plan = plan40
    with FaultServer({}) as srv:
        args = _cli_files(tmp_path, srv, inst, plan)
        for extra, where in ((["--timeout", "0"], "argument --timeout"),
                             (["--max-concurrency", "0"], "argument --max-concurrency")):
            assert main(["serve", *args, *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and where in err
        (tmp_path / "q.txt").write_text("\n".join(QUESTIONS[:39]) + "\n")
        assert main(["serve", *args]) == 2
        err = capsys.readouterr().err
        assert "q.txt" in err and "(40), got 39" in err
        (tmp_path / "q.txt").write_text("\n".join(QUESTIONS) + "\n")
        (tmp_path / "ep.toml").write_text('["model-a"]\nbase_url = "%s"\nmodel = "fake-a"\n' % srv.base_url)
        assert main(["serve", *args]) == 2
        err = capsys.readouterr().err
        assert "ep.toml" in err and "no endpoint for model 'model-b'" in err
        assert srv.log == []


def test_a_models_reply_that_is_not_json_stops_the_run(plan40):
    inst, plan = plan40
    with FaultServer({}, models_body=b"<html>not an API</html>") as srv:
        with pytest.raises(serve.EndpointUnreachableError, match="did not answer JSON .*base_url"):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), **FAST)
        assert srv.log == []
    # A provider's own shape (or an empty list) is not a reason to refuse: the calls decide.
    with FaultServer({}, models_body={"models": ["fake-a", "fake-b"]}) as srv:
        assert serve.run(plan, inst, QUESTIONS, _endpoints(srv), **FAST).answers == _expected()


def test_a_one_line_file_is_not_taken_for_a_torn_journal(plan40, tmp_path):
    """A file with no whole line was read as a journal whose header was torn by a kill, cut to
    nothing and overwritten: a typo'd journal name wiped the user's notes (new-user audit).
    Only a cut-short header line is cut off and written again."""
    inst, plan = plan40
    notes = tmp_path / "notes.txt"
    notes.write_text("months of notes, one line, no trailing newline")
    with FaultServer() as srv:
        with pytest.raises(serve.JournalError, match="not a robatch_opt serve journal"):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=notes, **FAST)
        assert notes.read_text() == "months of notes, one line, no trailing newline"
        assert srv.log == []                                 # refused before anything was sent
        torn = tmp_path / "torn.jsonl"
        torn.write_text('{"kind": "header", "format": "robatch_opt.ser')       # killed mid-header
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=torn, **FAST)
    assert res.answers == _expected()
    header, records = serve.read_journal(torn)
    assert header["kind"] == "header" and len(records) == len(res.calls)


def test_one_unreachable_endpoint_stops_the_other_checks(plan40, tmp_path):
    """check_endpoints raised at the first unreachable endpoint and left the other checks
    running while their client closed: 'coroutine ... was never awaited' warnings followed the
    one-line error on stderr (new-user audit)."""
    import asyncio
    import gc
    import warnings
    with FaultServer() as srv:
        eps = serve.load_endpoints(_endpoints(srv))
        eps["model-b"] = dataclasses.replace(eps["model-b"], base_url="http://127.0.0.1:1/v1")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                with pytest.raises(serve.EndpointUnreachableError, match="'model-b' unreachable"):
                    asyncio.run(serve.check_endpoints(eps, timeout_s=5.0))
            gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


def test_a_resume_names_what_differs_and_refuses_another_served_model(plan40, tmp_path):
    """Resuming against an endpoint that now serves another model mixed two models' answers
    under one name; and the refusal did not say what differed (serve audit)."""
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer() as srv:
        serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)
        eps = _endpoints(srv)
        eps["model-a"]["model"] = "fake-b"
        with pytest.raises(serve.JournalError, match="other endpoints' served model"):
            serve.run(plan, inst, QUESTIONS, eps, journal=journal, **FAST)
        with pytest.raises(serve.JournalError, match=r"another run \(other batch format\)"):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, format="json", **FAST)
        eps = _endpoints(srv)
        eps["model-a"]["base_url"] = srv.base_url + "/"          # a moved server is the same run
        n = len(srv.log)
        assert serve.run(plan, inst, QUESTIONS, eps, journal=journal, **FAST).answers == _expected()
        assert len(srv.log) == n


class _BrokenFormat(serve.NumberedFormat):
    def parse(self, reply, n_questions, *, truncated=False):
        raise RuntimeError("my parser's bug")


def test_a_format_that_fails_keeps_the_paid_reply(plan40, tmp_path):
    """A user's format that raised (or returned the wrong count) stopped the run with the
    reply it had just paid for unrecorded (serve audit)."""
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer() as srv:
        with pytest.raises(serve.ServeConfigError, match=r"_BrokenFormat\.parse raised RuntimeError: my parser's "
                                                         r"bug \(call .*its reply is in the journal\)"):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, format=_BrokenFormat(),
                      max_concurrency=1, **FAST)
    _, records = serve.read_journal(journal)
    assert records and all(r.status == "failed" and r.error.startswith("format: ") for r in records)
    assert all(r.reply and r.completion_tokens > 0 and r.cost_usd > 0 for r in records)


def test_a_resume_parses_the_paid_reply_again_instead_of_buying_it(plan40, tmp_path):
    """The reply a failing format could not parse was journaled, but a resume sent the call
    again and paid for it twice (serve review). Now it is parsed again with the resumed
    run's format; a format that still fails stops the run again, still without a request."""
    from robatch_opt.serve.executor import REPARSED
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"
    with FaultServer() as srv:
        with pytest.raises(serve.ServeConfigError, match=r"_BrokenFormat\.parse raised"):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, format=_BrokenFormat(),
                      max_concurrency=1, **FAST)
        _, failed = serve.read_journal(journal)
        assert len(failed) == len(srv.log) == 1
        with pytest.raises(serve.ServeConfigError, match="read from the journal, not bought again"):
            serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, format=_BrokenFormat(),
                      max_concurrency=1, **FAST)
        assert len(srv.log) == 1
        res = serve.run(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, **FAST)   # the format, fixed
        assert len(srv.log) == len(plan.calls)               # every call bought once, the failed one included
    assert res.answers == _expected()
    again = [c for c in res.calls if c.key == failed[0].key]
    assert [c.status for c in again] == ["failed", "ok"] and again[1].error == REPARSED
    assert again[1].cost_usd == 0 and again[1].attempts == 0 and again[1].reply == failed[0].reply
    assert res.cost_usd == pytest.approx(sum(c.cost_usd for c in res.calls))
    assert failed[0].cost_usd > 0 and res.cost_usd >= failed[0].cost_usd


def test_a_failing_format_with_calls_in_flight_journals_every_paid_reply(plan40, tmp_path):
    """Review: with several calls in flight, the first failure closed the clients and the
    journal under the others: under serve.run their paid replies went unrecorded (8 requests
    served, 4 journaled), under run_async in the caller's loop 6 tasks ran on and failed on a
    closed journal. Now no new request starts and those in flight finish and are journaled."""
    import asyncio
    inst, plan = plan40
    journal = tmp_path / "run.jsonl"

    async def caller():
        with pytest.raises(serve.ServeConfigError, match=r"_BrokenFormat\.parse raised"):
            await serve.run_async(plan, inst, QUESTIONS, _endpoints(srv), journal=journal, format=_BrokenFormat(),
                                  max_concurrency=4, **FAST)
        await asyncio.sleep(0.3)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with FaultServer(delay_s=0.2) as srv:
        left = asyncio.run(caller())
        served = len(srv.log)
    assert left == []                                        # nothing runs on after the error
    _, records = serve.read_journal(journal)
    assert 1 < served == len(records) <= 4                   # every request sent was journaled; no new one started
    assert all(r.status == "failed" and r.cost_usd > 0 for r in records)


def test_journal_paths_that_cannot_be_written_are_named(tmp_path):
    with pytest.raises(serve.JournalError, match="`journal`: is empty"):
        serve.Journal("", "fp")
    with pytest.raises(serve.JournalError, match=r"/proc/robatch-journal\.jsonl: cannot write the journal"):
        serve.Journal("/proc/robatch-journal.jsonl", "fp")
