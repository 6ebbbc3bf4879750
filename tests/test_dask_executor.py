"""Campaigns on a local Dask cluster: same results as serial, context sent once, workers may die."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from accelsim import load_workload  # noqa: E402
from faults.campaign import (  # noqa: E402
    LOG_NAME,
    CampaignSettings,
    campaign,
    prepare,
    run_injection,
)
from faults.dask_executor import DaskExecutor, Shard, executor_from_options  # noqa: E402
from faults.runner import TaskSpec, read_task_log, run_tasks  # noqa: E402
from tests.helpers import CountingContext  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def context_probe_task(task: TaskSpec, context: CountingContext) -> dict:
    return {
        "value": float(task.rng().normal()) + context.offset,
        "pid": os.getpid(),
        "loads_in_this_process": CountingContext.loads,
    }


def slow_task(task: TaskSpec, context: CountingContext) -> dict:
    time.sleep(0.5)  # still running when the test takes its context away
    return {"value": float(task.rng().normal()) + context.offset}


def die_once_task(task: TaskSpec, marker: str) -> dict:
    """Kills its worker process the first time task 5 runs (the marker file records it)."""
    if task.index == 5 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)  # a hard crash: no exception, no clean-up, the worker is gone
    return {"index": task.index, "draws": task.rng().integers(0, 1000, 3)}


def logged_tasks(path: Path) -> list[int]:
    """Every task index the log holds, repeats included (a JSON-lines or a columnar log)."""
    return list(read_task_log(path).logged)


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    dask_client = Client(cluster)
    yield dask_client
    dask_client.close()
    cluster.close()


@pytest.fixture(scope="module")
def digits():
    workload = load_workload(ROOT / "workloads" / "digits_cnn.yaml", ["dataset.samples=16"])
    settings = CampaignSettings(mode="single")
    return workload, settings, prepare(workload, settings, samples=16)


def test_the_context_reaches_each_worker_once(client, tmp_path):
    with DaskExecutor(context_probe_task, seed=4, context=CountingContext(10), client=client) as ex:
        results = run_tasks(
            context_probe_task, 40, seed=4, log_path=tmp_path / "log.jsonl", chunk=2, executor=ex
        )
    loads = {}
    for r in results:
        loads[r["pid"]] = max(loads.get(r["pid"], 0), r["loads_in_this_process"])
    assert len(loads) == 2  # both workers took shards
    # one copy per worker (Dask may, rarely, fetch a replica twice), never one per shard (20)
    assert sum(loads.values()) <= 4
    assert results[7]["value"] == pytest.approx(float(TaskSpec(7, 4).rng().normal()) + 10)


def test_a_lost_context_is_scattered_again(client, tmp_path):
    with DaskExecutor(slow_task, seed=5, context=CountingContext(3), client=client) as ex:
        first_copy = ex._context
        pending = [ex.submit([i, i + 1]) for i in (0, 2)]
        client.cancel([first_copy], force=True)  # as if every worker holding it had died
        pairs = [pair for future in pending for pair in future.result(timeout=60)]
        assert ex._context is not first_copy
    assert [index for index, _ in pairs] == [0, 1, 2, 3]
    assert json.loads(pairs[2][1]) == {"value": float(TaskSpec(2, 5).rng().normal()) + 3}


def test_campaign_on_dask_equals_the_serial_campaign(client, digits, tmp_path):
    workload, settings, ctx = digits
    serial = campaign(
        workload, injections=40, settings=settings, samples=16, seed=3, workers=1, context=ctx
    )
    with DaskExecutor(run_injection, seed=3, context=ctx, client=client) as ex:
        on_dask = campaign(
            workload,
            injections=40,
            settings=settings,
            samples=16,
            seed=3,
            context=ctx,
            executor=ex,
            out_dir=tmp_path,
        )
    assert on_dask.results == serial.results
    assert on_dask.summary == serial.summary
    assert sorted(logged_tasks(tmp_path / LOG_NAME)) == list(range(40))
    assert client.has_what()  # the caller's client is left open and usable


def test_a_run_started_serially_resumes_on_dask(client, digits, tmp_path):
    _, _, ctx = digits
    log = tmp_path / "log.jsonl"
    reference = run_tasks(run_injection, 24, seed=8, log_path=tmp_path / "ref.jsonl", context=ctx)
    partial = run_tasks(run_injection, 24, seed=8, log_path=log, context=ctx, chunk=4, max_new=9)
    assert len(partial) == 9  # the columns of the finished tasks
    with DaskExecutor(run_injection, seed=8, context=ctx, client=client) as ex:
        resumed = run_tasks(
            run_injection, 24, seed=8, log_path=log, context=ctx, chunk=4, executor=ex
        )
    assert resumed == reference
    assert sorted(logged_tasks(log)) == list(range(24))  # nothing computed twice


def test_shards_are_self_describing_and_keyed_by_their_content(client):
    with DaskExecutor(
        context_probe_task, seed=1, context=CountingContext(0), client=client, run_key="abc"
    ) as ex:
        shard = Shard(seed=1, indices=(4, 5), run_key="abc")
        assert ex.shard_key(shard) == ex.shard_key(Shard(seed=1, indices=(4, 5), run_key="abc"))
        assert ex.shard_key(shard) != ex.shard_key(Shard(seed=2, indices=(4, 5), run_key="abc"))
        assert ex.shard_key(shard).startswith("accelsim-shard-abc-4-")
        pairs = ex.submit([4, 5]).result(timeout=30)
    assert [index for index, _ in pairs] == [4, 5]
    assert json.loads(pairs[0][1])["value"] == float(TaskSpec(4, 1).rng().normal())
    assert ex.submit([]).result() == []


def test_options_pick_the_scheduler_from_the_environment(client, monkeypatch):
    client.wait_for_workers(2, timeout=60)  # a worker killed by another test restarts
    address = client.scheduler.address
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert executor_from_options(context_probe_task, 0, None) is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    ex = executor_from_options(context_probe_task, 0, CountingContext(1))
    try:
        assert isinstance(ex, DaskExecutor)
        assert ex.client.scheduler.address == address
        assert ex.workers == 2
        assert ex.max_pending == 4
    finally:
        ex.shutdown()
    assert client.status == "running"  # closing its own client leaves the cluster up


def test_exactly_one_source_of_workers_is_required(client):
    with pytest.raises(ValueError, match="exactly one"):
        DaskExecutor(context_probe_task, seed=0, client=client, workers=2)
    with pytest.raises(ValueError, match="exactly one"):
        DaskExecutor(context_probe_task, seed=0)


def test_a_killed_workers_shard_is_rerun_and_counted_once(client, tmp_path):
    marker = tmp_path / "worker-killed"
    with DaskExecutor(die_once_task, seed=2, context=str(marker), client=client) as ex:
        results = run_tasks(
            die_once_task, 16, seed=2, log_path=tmp_path / "log.jsonl", chunk=3, executor=ex
        )
    assert marker.exists()  # the shard holding task 5 did kill a worker
    assert Counter(logged_tasks(tmp_path / "log.jsonl")) == Counter(range(16))
    serial = run_tasks(
        die_once_task, 16, seed=2, log_path=tmp_path / "serial.jsonl", context=str(marker)
    )
    assert results == serial
    assert read_task_log(tmp_path / "log.jsonl").results == dict(enumerate(serial))
