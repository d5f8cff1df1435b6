"""Chunked instances and the greedy on a real Dask cluster (scheduler and workers started as
processes with the ``dask`` command line, connected to by address).

The distributed greedy must give the in-memory greedy's plan: the same options, and exact
cost, utility and bound equal to 1e-9 relative (rounding of sums in another order is all
that may differ).
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("zarr")

from distributed import Client  # noqa: E402

import robatch_opt as ro  # noqa: E402
from robatch_opt.cli import main as cli_main  # noqa: E402
from robatch_opt.distributed import (ChunkError, ChunkLayoutError, ChunkValueError,  # noqa: E402
                                     DistributedUnsupportedError, NoWorkersError, SchedulerUnreachableError)
from robatch_opt.distributed.cli_cluster import command_line_cluster, free_port  # noqa: E402

RTOL = 1e-9
ARRAYS = ("query_task", "input_tokens", "output_tokens", "utility")


@pytest.fixture(scope="module")
def client():
    with command_line_cluster(2, memory_limit="2GiB") as cluster:
        with Client(cluster.address, timeout=30) as c:
            yield c


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b))


def assert_same_plan(p: ro.Plan, q: ro.Plan) -> None:
    assert _close(p.cost_usd, q.cost_usd), (p.cost_usd, q.cost_usd)
    assert _close(p.utility, q.utility), (p.utility, q.utility)
    assert _close(p.upper_bound, q.upper_bound), (p.upper_bound, q.upper_bound)
    assert np.array_equal(np.asarray(p.option), np.asarray(q.option))
    assert q.cost_usd <= q.budget_usd * (1 + 1e-12)
    assert q.n_calls == p.n_calls


# ------------------------------------------------------------------------------ the store
def test_zarr_round_trip_is_lossless_and_lazy(tmp_path):
    inst = ro.workloads.llm("gemma3", n=1000, seed=3)
    path = ro.save(inst, tmp_path / "x.zarr", chunk_queries=300)
    ci = ro.load(path)
    assert isinstance(ci, ro.distributed.ChunkedInstance)
    assert (ci.n_queries, ci.n_chunks, ci.chunk_queries, ci.options) == (1000, 4, 300, inst.options)
    assert ci.chunk(3).n_queries == 100
    back = ci.to_instance()
    for name in ARRAYS:
        assert np.array_equal(getattr(back, name), getattr(inst, name)), name
    assert back.models == inst.models and back.tasks == inst.tasks


def test_a_small_store_is_one_chunk_of_its_own_length(tmp_path):
    # New-user check: 1,000 queries in the default 262,144-query chunk took 38 MB (zarr
    # stores every chunk at full length); the chunk is now no longer than the instance.
    inst = ro.workloads.synthetic(1000, seed=0)
    ci = ro.load(ro.save(inst, tmp_path / "x.zarr"))
    assert (ci.n_chunks, ci.chunk_queries) == (1, 1000)
    size = sum(f.stat().st_size for f in (tmp_path / "x.zarr").rglob("*") if f.is_file())
    assert size < 4 * inst.utility.nbytes
    assert np.array_equal(ci.to_instance().utility, inst.utility)
    w = ro.workloads.llm("qwen3", n=50, seed=1, out=tmp_path / "w.zarr")
    assert (w.n_chunks, w.chunk_queries) == (1, 50)


def test_llm_written_chunk_by_chunk_is_reproducible(tmp_path):
    a = ro.workloads.llm("qwen3", n=700, seed=5, out=tmp_path / "a.zarr", chunk_queries=256)
    b = ro.workloads.llm("qwen3", n=700, seed=5, out=tmp_path / "b.zarr", chunk_queries=256)
    assert a.n_chunks == 3 and a.n_queries == 700
    x, y = a.to_instance(), b.to_instance()
    for name in ARRAYS:
        assert np.array_equal(getattr(x, name), getattr(y, name)), name
    # Every task drawn in every chunk, in proportion.
    assert np.bincount(x.query_task, minlength=x.n_tasks).min() >= 700 // 6 - 3


def test_cli_generate_writes_a_store(tmp_path, capsys):
    out = tmp_path / "w.zarr"
    assert cli_main(["generate", "llm", str(out), "--n", "500", "--chunk-queries", "200"]) == 0
    said = capsys.readouterr().out
    assert "3 chunks" in said
    assert ro.load(out).n_queries == 500
    # The label is the call that reproduces the store (its draws depend on chunk_queries).
    call = said.split(": ", 1)[1].split("): ", 1)[0] + ")"
    assert "chunk_queries=200" in call
    again = eval(call.replace(str(out), str(tmp_path / "again.zarr")))
    assert np.array_equal(again.to_instance().utility, ro.load(out).to_instance().utility)
    assert cli_main(["generate", "llm", str(tmp_path / "w.npz"), "--n", "50", "--chunk-queries", "20"]) == 2
    assert "--chunk-queries" in capsys.readouterr().err


def _bad_store(tmp_path, chunk_queries=100):
    inst = ro.workloads.llm("gemma3", n=450, seed=4)
    return inst, ro.save(inst, tmp_path / "bad.zarr", chunk_queries=chunk_queries)


def test_bad_value_is_reported_by_global_query_index(tmp_path):
    import zarr
    _, path = _bad_store(tmp_path)
    zarr.open_group(str(path), mode="r+")["utility"][203, 5] = 1.5
    ci = ro.load(path)
    with pytest.raises(ChunkValueError) as err:
        ci.chunk(2)
    assert err.value.field == "utility[203, 5]"
    assert str(err.value).startswith(f"{path}: `utility[203, 5]`: ")   # the store is named
    assert pickle.loads(pickle.dumps(err.value)).source == str(path)    # as it comes back from a worker
    assert ci.chunk(1).n_queries == 100           # other chunks still read


def test_missing_chunk_names_array_and_chunk(tmp_path, client):
    inst, path = _bad_store(tmp_path)
    os.remove(path / "utility" / "c" / "2" / "0")
    ci = ro.load(path)                             # metadata only: fine
    with pytest.raises(ChunkError, match=r"chunk 2 of `utility` \(queries 200\.\.299\) is missing") as err:
        ro.solve(ci, budget=ro.budget_from_fraction(inst, 0.3), method="greedy", client=client)
    assert (err.value.array, err.value.chunk) == ("utility", 2)
    assert str(path) in str(err.value)


def test_corrupt_chunk_names_array_and_chunk(tmp_path, client):
    inst, path = _bad_store(tmp_path)
    f = path / "input_tokens" / "c" / "1"
    raw = bytearray(f.read_bytes())
    raw[7] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(ChunkError, match=r"chunk 1 of `input_tokens` \(queries 100\.\.199\) is corrupt"):
        ro.solve(ro.load(path), budget=ro.budget_from_fraction(inst, 0.3), method="greedy", client=client)


def test_mismatched_chunk_shapes_are_refused_on_load(tmp_path):
    import zarr
    inst, path = _bad_store(tmp_path)
    g = zarr.open_group(str(path), mode="r+")
    data = g["input_tokens"][:]
    del g["input_tokens"]
    g.create_array("input_tokens", shape=data.shape, chunks=(64,), dtype=data.dtype)[:] = data
    with pytest.raises(ChunkLayoutError, match=r"`input_tokens` is chunked \(64,\), expected \(100,\)"):
        ro.load(path)
    del g["input_tokens"]
    g.create_array("input_tokens", shape=(449,), chunks=(100,), dtype=data.dtype)[:] = data[:449]
    with pytest.raises(ChunkLayoutError, match=r"`input_tokens` has shape \(449,\), expected \(450,\)"):
        ro.load(path)


def test_an_array_the_format_does_not_define_is_refused_on_load(tmp_path):
    """README: every reader refuses a field its format does not define (new-user audit: the
    npz reader accepted a misspelt array; the store is checked alike)."""
    import zarr
    inst, path = _bad_store(tmp_path)
    g = zarr.open_group(str(path), mode="r+")
    g.create_array("utilty", shape=(3,), dtype="float64")[:] = 0.5
    with pytest.raises(ChunkLayoutError, match=r"array `utilty` is not part of a robatch_opt instance "
                                               r"\(did you mean `utility`\?\)"):
        ro.load(path)


def test_unreachable_scheduler_names_the_address():
    inst = ro.workloads.llm("gemma3", n=50, seed=0)
    address = f"tcp://127.0.0.1:{free_port()}"
    t = time.monotonic()
    with pytest.raises(SchedulerUnreachableError, match="127.0.0.1") as err:
        ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.5), method="greedy", client=address, timeout_s=2)
    assert err.value.address == address
    assert time.monotonic() - t < 30


def test_a_single_task_store_reads_back(tmp_path):
    # Serve/distributed audit: zarr skips writing a chunk equal to its fill value (0), so a
    # single-task instance (every query_task 0) could not be read back ("chunk 0 ... missing").
    inst = ro.workloads.llm("gemma3", n=600, tasks=["GSM8K"], batch_sizes=(1, 4), seed=0)
    back = ro.load(ro.save(inst, tmp_path / "one.zarr", chunk_queries=256)).to_instance()
    assert np.array_equal(back.query_task, inst.query_task) and np.array_equal(back.utility, inst.utility)
    gen = ro.workloads.llm("gemma3", n=600, tasks=["GSM8K"], batch_sizes=(1, 4), seed=0,
                           out=tmp_path / "gen.zarr", chunk_queries=256)
    assert gen.to_instance().n_queries == 600


def test_bad_chunk_sizes_and_addresses_fail_before_any_work(tmp_path):
    inst = ro.workloads.llm("gemma3", n=50, seed=0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ro.InstanceError, match="`chunk_queries`"):
            ro.solve(inst, budget=1.0, method="greedy", client="tcp://127.0.0.1:1", chunk_queries=bad)
    with pytest.raises(ro.InstanceError, match="`chunk_queries`"):
        ro.workloads.llm("gemma3", n=50, seed=0, out=tmp_path / "z.zarr", chunk_queries=0)
    with pytest.raises(SchedulerUnreachableError, match="not a scheduler address"):
        ro.distributed.connect("not-an-address")
    # A port nobody listens on is refused at once (Dask retried for its whole timeout).
    with pytest.raises(SchedulerUnreachableError, match="connection refused"):
        ro.distributed.connect(f"tcp://127.0.0.1:{free_port()}")
    with pytest.raises(DistributedUnsupportedError, match="`client`"):
        ro.distributed.budget_from_fraction(inst, 0.3, None)


def test_stores_that_are_not_ours_and_bad_plan_paths_are_refused_before_any_work(tmp_path):
    """Audit: plan_path equal to the instance's store replaced the instance with the plan;
    `generate` replaced a zarr store another program wrote; timeout_s=-1 and plan_path=123
    failed deep inside with errors that named neither."""
    import zarr
    from robatch_opt._files import OutputPathError
    store = tmp_path / "a.zarr"
    ro.workloads.llm("gemma3", n=60, seed=0, out=store, chunk_queries=30)
    ro.workloads.llm("gemma3", n=60, seed=1, out=store, chunk_queries=30)     # ours: replaced
    ci = ro.load(store)
    for same in (store, f"{store}/", tmp_path / "." / "a.zarr"):
        with pytest.raises(OutputPathError, match="`plan_path`: .* the instance's own store"):
            ro.solve(ci, budget=1.0, client="tcp://127.0.0.1:1", plan_path=same)
    with pytest.raises(OutputPathError, match="`plan_path`: must be a path"):
        ro.solve(ci, budget=1.0, client="tcp://127.0.0.1:1", plan_path=123)
    for bad in (-1, 0, float("nan"), "abc", True):
        with pytest.raises(ro.InstanceError, match="`timeout_s`"):
            ro.solve(ci, budget=1.0, client="tcp://127.0.0.1:1", timeout_s=bad)
    assert ro.load(store).n_queries == 60                     # untouched
    other = tmp_path / "other.zarr"
    zarr.open_group(str(other), mode="w").create_array("x", shape=(3,), dtype="f8")
    with pytest.raises(OutputPathError, match="robatch_opt did not write"):
        ro.workloads.llm("gemma3", n=60, seed=0, out=other, chunk_queries=30)
    assert cli_main(["generate", "llm", "--n", "60", "--chunk-queries", "30", str(other)]) == 2
    assert "x" in zarr.open_group(str(other), mode="r")


def test_a_store_named_with_a_trailing_slash_is_a_store(tmp_path, capsys):
    # Shell completion adds the slash; the CLI then called the store "a directory, not an
    # instance file" instead of asking for a scheduler (audit).
    store = tmp_path / "a.zarr"
    ro.workloads.llm("gemma3", n=60, seed=0, out=store, chunk_queries=30)
    capsys.readouterr()
    assert cli_main(["solve", f"{store}/", "--budget", "0.5"]) == 2
    assert "give --scheduler" in capsys.readouterr().err


def test_a_scheduler_without_workers_is_named(monkeypatch):
    # The audit's --budget-fraction with a bare scheduler waited forever; solve said the
    # scheduler "cannot be reached" when it had no worker.
    import robatch_opt.distributed.greedy as dg
    monkeypatch.setattr(dg, "CONNECT_TIMEOUT_S", 1.0)
    inst = ro.workloads.llm("gemma3", n=50, seed=0)
    with command_line_cluster(0) as cluster:
        with pytest.raises(NoWorkersError, match="has no worker"):
            ro.distributed.budget_from_fraction(inst, 0.3, cluster.address)
        with pytest.raises(NoWorkersError, match="has no worker"):
            ro.solve(inst, budget=1.0, method="greedy", client=cluster.address, timeout_s=1.0)


def test_unsupported_requests_fail_before_any_work(client):
    inst = ro.workloads.llm("gemma3", n=50, seed=0)
    with pytest.raises(DistributedUnsupportedError, match="min_mean_utility"):
        ro.solve(inst, min_mean_utility=0.5, method="greedy", client=client)
    with pytest.raises(DistributedUnsupportedError, match="max_queries_per_model"):
        ro.solve(inst, budget=1.0, method="greedy", client=client, max_queries_per_model=[10, 10, 10, 10])


# ------------------------------------------------------------- equality with the in-memory greedy
@pytest.mark.parametrize("batch_sizes", [(1, 2, 4, 8), (1,)], ids=["coupled", "b1"])
def test_same_plan_as_in_memory_from_a_store(tmp_path, client, batch_sizes):
    inst = ro.workloads.llm("gemma3", n=3000, seed=11, batch_sizes=batch_sizes)
    ci = ro.load(ro.save(inst, tmp_path / "x.zarr", chunk_queries=700))
    for fraction in (0.02, 0.15, 0.5, 0.95):
        budget = ro.budget_from_fraction(inst, fraction)
        p = ro.solve(inst, budget=budget, method="greedy")
        q = ro.solve(ci, budget=budget, method="greedy", client=client)
        assert_same_plan(p, q)
        assert q.info["distributed"] and q.info["n_chunks"] == 5
    lo, hi = ro.distributed.reference_costs(ci, client)
    assert _close(lo, ro.reference_costs(inst)[0]) and _close(hi, ro.reference_costs(inst)[1])
    plan_store = tmp_path / "x.plan.zarr"                  # options written next to the instance
    import zarr
    assert np.array_equal(zarr.open_group(str(plan_store), mode="r")["option"][:], q.option)


@pytest.mark.parametrize("stored", [True, False], ids=["store", "in-memory"])
def test_best_of_the_restrictions_as_in_memory(tmp_path, client, stored):
    """At a budget near the cheapest plan the batching-only greedy beats the joint one; the
    distributed greedy tried no restriction and returned 760.54 where ro.solve in memory
    returned 760.90 (new-user audit). It now solves those the Lagrangian screen leaves, as
    in memory, and keeps the best: the same plan, and its options in the plan store."""
    import zarr
    inst = ro.workloads.llm("qwen3", n=2000, seed=0)
    src = ro.load(ro.save(inst, tmp_path / "x.zarr", chunk_queries=700)) if stored else inst
    for fraction in (1e-5, 0.3):
        budget = ro.budget_from_fraction(inst, fraction)
        p = ro.solve(inst, budget=budget, method="greedy")
        q = ro.solve(src, budget=budget, method="greedy", client=client, chunk_queries=None if stored else 700)
        assert_same_plan(p, q)
        assert q.info["restriction"] == p.info["restriction"]
        assert q.upper_bound >= q.utility
        if fraction == 1e-5:
            assert q.info["restriction"].startswith("batching-only:")
            assert q.utility > q.info["restriction_values"]["joint"]
        else:
            assert q.info["restriction"] == "joint"
            assert len(q.info["restrictions_screened_out"]) == 13          # all: no extra solve
        if stored:
            assert np.array_equal(zarr.open_group(str(tmp_path / "x.plan.zarr"), mode="r")["option"][:], p.option)
    assert sorted(x.name for x in tmp_path.iterdir()) == (["x.plan.zarr", "x.zarr"] if stored else [])


def test_a_plan_kept_in_its_store_reads_saves_and_refuses_a_replaced_store(tmp_path, client):
    """gather=False: the columns are read from the plan store on demand. The plan can be
    saved and packed into calls; after a later solve replaced the store, reading the earlier
    plan raises instead of returning the later plan's options (new-user audit)."""
    from robatch_opt.distributed import PlanColumn, PlanStoreReplacedError
    inst = ro.workloads.llm("gemma3", n=1500, seed=12)
    ci = ro.load(ro.save(inst, tmp_path / "x.zarr", chunk_queries=400))
    lo, hi = ro.budget_from_fraction(inst, 0.2), ro.budget_from_fraction(inst, 0.7)
    want = ro.solve(inst, budget=lo, method="greedy")
    kept = ro.solve(ci, budget=lo, method="greedy", client=client, gather=False)
    assert isinstance(kept.option, PlanColumn) and len(kept.option) == inst.n_queries
    assert np.array_equal(np.asarray(kept.option), want.option)
    assert np.array_equal(kept.option[10:20], want.option[10:20])
    assert np.array_equal(np.asarray(kept.query_task), inst.query_task)
    assert np.array_equal(np.asarray(kept.batch_size), want.batch_size)
    assert kept.n_calls == len(kept.calls.task) == want.n_calls
    back = ro.Plan.from_json(kept.to_json())
    assert np.array_equal(back.option, want.option) and back.cost_usd == kept.cost_usd
    assert kept.usage() == want.usage()
    later = ro.solve(ci, budget=hi, method="greedy", client=client, gather=False)      # same default store
    with pytest.raises(PlanStoreReplacedError, match=r"x.plan.zarr: a later solve replaced this plan store"):
        np.asarray(kept.option)
    assert np.array_equal(np.asarray(later.option), ro.solve(inst, budget=hi, method="greedy").option)
    import shutil
    shutil.rmtree(tmp_path / "x.plan.zarr")
    with pytest.raises(PlanStoreReplacedError, match=r"the plan store was removed"):
        later.option[:5]


def test_a_store_edited_in_place_is_read_again(tmp_path, client):
    """Workers keep chunks between solves; an array edited in place (its chunk files
    rewritten, the store's metadata not) was served from that cache, and the second solve
    returned the first one's plan (new-user audit)."""
    import zarr

    inst = ro.workloads.llm("gemma3", n=1000, seed=2)
    path = ro.save(inst, tmp_path / "e.zarr", chunk_queries=256)
    budget = ro.budget_from_fraction(inst, 0.3)
    ro.solve(ro.load(path), budget=budget, method="greedy", client=client)     # fills the cache
    arr = zarr.open_array(str(path / "utility"), mode="r+")
    arr[:] = arr[:] * 0.5
    edited = ro.load(path)
    q = ro.solve(edited, budget=budget, method="greedy", client=client)
    assert_same_plan(ro.solve(edited.to_instance(), budget=budget, method="greedy"), q)


def test_same_plan_as_in_memory_for_an_in_memory_instance(client):
    inst = ro.workloads.synthetic(n=2500, family="llm_like", seed=2)
    for fraction in (0.1, 0.6):
        budget = ro.budget_from_fraction(inst, fraction)
        assert_same_plan(ro.solve(inst, budget=budget, method="greedy"),
                         ro.solve(inst, budget=budget, method="greedy", client=client, chunk_queries=400))


@pytest.mark.parametrize("batch_sizes,free", [((1, 2, 4, 8), True), ((1,), False)], ids=["free-moves", "b1"])
def test_same_plan_when_move_candidates_are_fetched_in_parts(tmp_path, client, monkeypatch, batch_sizes, free):
    # Few moves per round and few candidates per chunk message: the driver must find the
    # global cut from the chunks' scores, apply the candidates below it, then the ties in
    # query order. Coupled: the cut falls among free moves (seats of partial calls, score
    # inf); b = 1: at a finite score.
    import robatch_opt.distributed.greedy as dg
    import robatch_opt.solvers.greedy as mg
    monkeypatch.setattr(mg, "MAX_MOVES_PER_ROUND", 40)        # in memory and distributed alike
    monkeypatch.setattr(dg, "MAX_RETURNED_CANDIDATES", 5)
    inst = ro.workloads.llm("gemma3", n=3000, seed=4, batch_sizes=batch_sizes)
    ci = ro.load(ro.save(inst, tmp_path / "t.zarr", chunk_queries=500))
    cuts = []
    for fraction in (0.1, 0.5):
        budget = ro.budget_from_fraction(inst, fraction)
        p = ro.solve(inst, budget=budget, method="greedy")
        q = ro.solve(ci, budget=budget, method="greedy", client=client)
        assert_same_plan(p, q)
        cuts += q.info["candidate_cuts_fetched"]
    # (a cut of +inf: fewer candidates than moves per round, all of them fetched)
    assert any(c == -np.inf for c in cuts) if free else any(np.isfinite(c) for c in cuts)


def test_budget_below_every_plan_is_infeasible(client):
    inst = ro.workloads.llm("gemma3", n=200, seed=1)
    lo = ro.reference_costs(inst)[0]
    with pytest.raises(ro.InfeasibleBudgetError):
        ro.solve(inst, budget=lo * 0.5, method="greedy", client=client, chunk_queries=64)


# ------------------------------------------------------------------------------ fault
def test_worker_killed_mid_solve_gives_the_same_plan(tmp_path):
    inst = ro.workloads.llm("gemma3", n=120_000, seed=7)
    ci = ro.load(ro.save(inst, tmp_path / "k.zarr", chunk_queries=6000))
    budget = ro.budget_from_fraction(inst, 0.3)
    expected = ro.solve(inst, budget=budget, method="greedy")
    with command_line_cluster(2, memory_limit="2GiB") as cluster, Client(cluster.address, timeout=30) as c:
        victim = cluster.workers[0]
        victim_address = next(a for a, w in c.scheduler_info()["workers"].items() if w["name"] == "worker-0")
        result: dict = {}

        def run():
            try:
                result["plan"] = ro.solve(ci, budget=budget, method="greedy", client=c)
            except BaseException as exc:           # re-raised below, in the test's thread
                result["error"] = exc

        th = threading.Thread(target=run)
        th.start()
        deadline = time.monotonic() + 120
        while not any(str(k).startswith("robatch-") for k in c.processing().get(victim_address, ())):
            assert time.monotonic() < deadline and th.is_alive(), "no task reached worker-0"
            time.sleep(0.01)
        os.kill(victim.pid, signal.SIGKILL)        # mid-solve: a chunk task is running on it
        th.join(300)
        assert not th.is_alive()
        assert victim.poll() is not None
        if "error" in result:
            raise result["error"]
        assert_same_plan(expected, result["plan"])
        assert len(c.scheduler_info()["workers"]) == 1


def test_progress_shows_the_dashboard_link_and_dask_progress_bars(client, capsys):
    inst = ro.workloads.llm("gemma3", n=600, seed=2)
    ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.4), method="greedy", client=client,
             chunk_queries=200, progress=True)
    out = capsys.readouterr()
    assert "Dask dashboard http://127.0.0.1:" in out.err
    assert "Completed" in out.out and "100%" in out.out.replace("|", " ")


def test_cli_solves_a_store_on_the_cluster(tmp_path, client, capsys):
    inst = ro.workloads.llm("gemma3", n=800, seed=6)
    path = ro.save(inst, tmp_path / "c.zarr", chunk_queries=300)
    address = client.scheduler.address
    assert cli_main(["solve", str(path), "--scheduler", address, "--budget-fraction", "0.3", "--json"]) == 0
    import json
    got = json.loads(capsys.readouterr().out)
    want = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.3), method="greedy")
    assert _close(got["utility"], want.utility) and _close(got["cost_usd"], want.cost_usd)
    assert cli_main(["solve", str(path)]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert cli_main(["solve", str(path), "--scheduler", f"tcp://127.0.0.1:{free_port()}"]) == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_cli_solves_a_store_given_by_a_relative_path(tmp_path, client, capsys, monkeypatch):
    """The workers run in other directories: a relative store was 'no such store' there, and
    the plan store's chunks would have been written beside them."""
    inst = ro.workloads.llm("gemma3", n=600, seed=7)
    ro.save(inst, tmp_path / "r.zarr", chunk_queries=256)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["solve", "r.zarr", "--scheduler", client.scheduler.address, "--budget-fraction", "0.3",
                     "--json", "--out", "p.json"]) == 0
    import json
    got = json.loads(capsys.readouterr().out)
    want = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.3), method="greedy")
    assert _close(got["utility"], want.utility)
    assert (tmp_path / "r.plan.zarr").is_dir() and not list(tmp_path.glob(".r.plan.zarr*"))


def test_evaluate_reads_a_chunked_store_whole(tmp_path, capsys):
    # `robatch-opt evaluate day.zarr plan.json` was an internal AttributeError.
    import json

    from robatch_opt.cli import main

    inst = ro.workloads.llm("qwen3", n=400, seed=1)
    path = ro.save(inst, tmp_path / "x.zarr", chunk_queries=128)
    plan = ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.3), method="greedy")
    (tmp_path / "plan.json").write_text(plan.to_json())
    assert main(["evaluate", str(path), str(tmp_path / "plan.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["matches_claims"] and out["cost_usd"] == ro.evaluate(inst, plan.option).cost_usd
    with pytest.raises(TypeError, match="`instance`: must be a robatch_opt Instance, got ChunkedInstance"):
        ro.evaluate(ro.load(path), plan.option)


@pytest.mark.parametrize("make, where", [
    (lambda t: t / "nodir" / "x.zarr", "directory .*nodir does not exist"),
    (lambda t: (t / "f.txt").write_text("x") and t / "f.txt" / "x.zarr", "f.txt is not a directory"),
    (lambda t: (t / "f.zarr").write_text("x") and t / "f.zarr", "exists and is not a directory store"),
    (lambda t: (t / "d.zarr").mkdir() or (t / "d.zarr" / "keep.csv").write_text("x") and t / "d.zarr",
     "holds no zarr store"),
])
def test_a_store_path_is_checked_before_any_work(tmp_path, capsys, make, where):
    # The audit: a missing folder was created silently, an unwritable one named an internal
    # temporary path, a path under a file raised FileExistsError; a folder that is not a
    # store must never be replaced.
    from robatch_opt.cli import main

    path = make(tmp_path)
    assert main(["generate", "llm", "--n", "300", "--chunk-queries", "128", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("robatch-opt: error: OUT: ")
    assert __import__("re").search(where, err)
    with pytest.raises(ro.errors.RobatchError, match=where):
        ro.save(ro.workloads.llm("qwen3", n=100), path, chunk_queries=64)
    assert not (tmp_path / "nodir").exists()
    if (tmp_path / "d.zarr").exists():
        assert [p.name for p in (tmp_path / "d.zarr").iterdir()] == ["keep.csv"]


def test_the_cli_drops_only_dasks_early_cancel_record():
    # distributed's sync() cancel() reads `future` before it is assigned when Ctrl-C comes
    # early, and tornado logs the NameError from the loop thread (a CI run's stderr had it
    # before "robatch-opt: interrupted"). Only that record is dropped.
    import logging
    import sys

    from robatch_opt.cli import _DaskEarlyCancelFilter

    def raised(src: str, filename: str) -> logging.LogRecord:
        ns: dict = {}
        exec(compile(src, filename, "exec"), ns)
        try:
            ns["make"]()()
        except NameError:
            return logging.LogRecord("tornado.application", logging.ERROR, filename, 1,
                                     "Exception in callback", None, sys.exc_info())
        raise AssertionError("no NameError")

    early = ("def make():\n    def cancel():\n        if future is not None:\n            pass\n"
             "    return cancel\n    future = None\n")
    other = early.replace("future", "answer")
    flt = _DaskEarlyCancelFilter()
    where = os.path.join("site-packages", "distributed", "utils.py")
    assert flt.filter(raised(early, where)) is False
    assert flt.filter(raised(other, where)) is True                    # another name
    assert flt.filter(raised(early, os.path.join("mine", "utils.py"))) is True   # another file
    plain = logging.LogRecord("tornado.application", logging.ERROR, "x", 1, "no exception", None, None)
    assert flt.filter(plain) is True


def test_ctrl_c_during_a_cluster_solve_leaves_one_line_and_no_store(client, tmp_path):
    # The audit: 3-7 "Task exception was never retrieved ... AllExit" tracebacks before the
    # "interrupted" line, and a partial day.plan.zarr left behind.
    import subprocess
    import sys
    import time

    path = ro.workloads.llm("qwen3", n=200_000, seed=2, out=tmp_path / "day.zarr", chunk_queries=16_384)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))

    def n_tasks():
        return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

    before = n_tasks()                     # other tests' results the module's client still holds
    proc = subprocess.Popen([sys.executable, "-m", "robatch_opt", "solve", str(path.path), "--scheduler",
                             client.scheduler.address, "--budget-fraction", "0.3", "--out", str(tmp_path / "p.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        # Interrupt once the command's own tasks are on the cluster (not during its imports).
        while time.monotonic() < deadline and proc.poll() is None and n_tasks() <= before:
            time.sleep(0.25)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["robatch-opt: interrupted"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.zarr"]


def test_removing_a_temporary_store_waits_for_the_chunk_being_written(tmp_path):
    """An interrupt late in a solve removed the plan's temporary store while a worker was
    still writing a chunk, which re-created part of it (audit: 3 of 8 runs left a
    `.x.plan.zarr.*.tmp` folder). The removal now waits for writers, and a writer that
    comes after it writes nothing."""
    import zarr

    from robatch_opt.distributed.store import remove_temporary, writing_into

    tmp = tmp_path / ".x.plan.zarr.abc.tmp"
    zarr.open_group(str(tmp), mode="w")
    entered, release = threading.Event(), threading.Event()

    def writer():
        with writing_into(str(tmp)):
            entered.set()
            release.wait(30)
            os.makedirs(tmp / "option" / "c", exist_ok=True)     # as zarr writes a chunk

    w = threading.Thread(target=writer)
    w.start()
    assert entered.wait(30)
    remover = threading.Thread(target=remove_temporary, args=(tmp,))
    remover.start()
    remover.join(0.5)                      # (the removal waits for the writer, however long)
    release.set()
    w.join(30)
    remover.join(30)
    assert not tmp.exists()
    with pytest.raises(FileNotFoundError, match="the temporary store was removed"):
        with writing_into(str(tmp)):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_driver_side_write_runs_to_its_end_through_an_interrupt():
    """zarr writes on a background loop: Ctrl-C while the driver waited for it left the write
    running after the temporary store was removed (2 of 24 interrupted solves). The write
    now ends before the interrupt is raised."""
    import _thread

    from robatch_opt.distributed.store import uninterrupted

    wrote = []

    def write():
        time.sleep(0.5)                    # (the main thread is waiting by then)
        _thread.interrupt_main()           # Ctrl-C, delivered to the waiting main thread
        time.sleep(0.3)
        wrote.append("chunk")
        return 1

    with pytest.raises(KeyboardInterrupt):
        uninterrupted(write)
    assert wrote == ["chunk"]
    assert uninterrupted(lambda: 7) == 7
    with pytest.raises(ValueError, match="bad chunk"):
        uninterrupted(lambda: (_ for _ in ()).throw(ValueError("bad chunk")))


def test_a_cluster_without_robatch_opt_is_named_before_any_task(client, monkeypatch, tmp_path, capsys):
    """A scheduler whose environment lacks the package failed with Dask's "Error during
    deserialization of the task graph", reported as an internal error (new-user audit).
    Every process of this test machine imports the package, so what the processes answer
    is edited here (the check itself asks the real cluster)."""
    assert client.run_on_scheduler(lambda: __import__("robatch_opt").__version__) == ro.__version__
    inst = ro.workloads.llm("gemma3", n=50, seed=0)
    path = ro.save(inst, tmp_path / "s.zarr", chunk_queries=25)
    for who, sched, work in (("the scheduler", "!ModuleNotFoundError: No module named 'robatch_opt'", None),
                             ("worker", None, "0.0.1")):
        real_sched, real_run = type(client).run_on_scheduler, type(client).run
        monkeypatch.setattr(client, "run_on_scheduler",
                            lambda f, *a, _s=sched, **k: _s if _s is not None else real_sched(client, f, *a, **k))
        monkeypatch.setattr(client, "run", lambda f, *a, _w=work, **k: (
            {w: _w for w in real_run(client, f, *a, **k)} if _w is not None else real_run(client, f, *a, **k)))
        with pytest.raises(ro.distributed.ClusterSetupError, match=who):
            ro.solve(inst, budget=ro.budget_from_fraction(inst, 0.3), method="greedy", client=client)
        with pytest.raises(ro.distributed.ClusterSetupError, match=who):       # the CLI's default budget
            ro.distributed.budget_from_fraction(ro.load(path), 0.3, client)


def test_chunks_written_by_a_multithreaded_worker_all_read_back(tmp_path):
    # Review: the write-every-chunk setting was zarr's process-wide config, which one thread
    # of a worker could undo for another writing at the same time (an all-0 chunk skipped).
    with command_line_cluster(1, nthreads=4, memory_limit="2GiB") as cluster:
        with Client(cluster.address, timeout=30) as c:
            ci = ro.workloads.llm("gemma3", n=1200, tasks=["GSM8K"], batch_sizes=(1, 4), seed=2,
                                  out=tmp_path / "one.zarr", chunk_queries=50, client=c)
    back = ci.to_instance()
    assert ci.n_chunks == 24 and back.n_queries == 1200 and not back.query_task.any()
