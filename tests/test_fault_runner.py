"""The task runner: per-task seeds, resumable JSONL log, serial == parallel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from faults.runner import (
    BatchTaskFn,
    ResultColumns,
    TaskSpec,
    read_task_log,
    run_tasks,
    task_indices,
    task_seed_sequence,
    task_words,
)
from tests.helpers import CountingContext


def noisy_task(task: TaskSpec, context) -> dict:
    """A task whose result depends on its own random stream and on the shared context."""
    rng = task.rng()
    offset = 0 if context is None else context.offset
    return {"value": float(rng.normal()) + offset, "draws": rng.integers(0, 100, 3)}


def context_probe_task(task: TaskSpec, context: CountingContext) -> dict:
    return {**noisy_task(task, context), "loads_in_this_process": CountingContext.loads}


def failing_task(task: TaskSpec, context) -> dict:
    if task.index == 5:
        raise RuntimeError("task 5 broke")
    return {"index": task.index}


def logged_tasks(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    return [json.loads(line)["task"] for line in lines if '"task"' in line]


def test_task_seed_is_the_spawned_child_whatever_the_count():
    children = np.random.SeedSequence(1234).spawn(10)
    for i in (0, 3, 9):
        direct = np.random.default_rng(task_seed_sequence(1234, i)).random(4)
        spawned = np.random.default_rng(children[i]).random(4)
        assert np.array_equal(direct, spawned)
        assert np.array_equal(TaskSpec(i, 1234).rng().random(4), direct)


def test_results_come_back_in_task_order_and_every_task_is_logged_once(tmp_path):
    log = tmp_path / "log.jsonl"
    seen = []
    results = run_tasks(
        noisy_task, 23, seed=5, log_path=log, chunk=4, on_result=lambda i, r: seen.append(i)
    )
    assert len(results) == 23
    assert results[7] == json.loads(
        json.dumps(noisy_task(TaskSpec(7, 5), None), default=np.ndarray.tolist)
    )
    assert isinstance(results[0]["draws"], list)  # passed through JSON, like a resumed result
    assert sorted(logged_tasks(log)) == list(range(23))
    assert sorted(seen) == list(range(23))
    assert read_task_log(log).header["seed"] == 5


def test_an_interrupted_run_resumes_without_recomputing(tmp_path):
    reference = run_tasks(noisy_task, 30, seed=9, log_path=tmp_path / "ref.jsonl", chunk=4)
    log = tmp_path / "log.jsonl"
    partial = run_tasks(noisy_task, 30, seed=9, log_path=log, chunk=4, max_new=11)
    assert partial[:11] == reference[:11] and partial[11:] == [None] * 19
    assert sorted(logged_tasks(log)) == list(range(11))
    reported = []
    resumed = run_tasks(
        noisy_task, 30, seed=9, log_path=log, chunk=4, on_result=lambda i, r: reported.append(i)
    )
    assert resumed == reference
    assert sorted(logged_tasks(log)) == list(range(30))  # each task computed exactly once
    assert sorted(reported) == list(range(30))  # logged ones are reported too, for progress
    again = run_tasks(noisy_task, 30, seed=9, log_path=log)
    assert again == reference and len(logged_tasks(log)) == 30


def test_a_torn_last_line_is_dropped_and_only_that_task_recomputed(tmp_path):
    log = tmp_path / "log.jsonl"
    reference = run_tasks(noisy_task, 12, seed=3, log_path=log, chunk=5)
    text = log.read_text()
    last_line_start = text.rstrip("\n").rfind("\n") + 1
    torn_task = json.loads(text[last_line_start:])["task"]
    log.write_text(text[: last_line_start + 9])  # a crash cut the last line short
    assert torn_task not in read_task_log(log).results
    assert run_tasks(noisy_task, 12, seed=3, log_path=log, chunk=5) == reference
    tasks = logged_tasks(log)
    assert sorted(tasks) == list(range(12)) and tasks[-1] == torn_task


def test_a_larger_task_count_extends_a_finished_run(tmp_path):
    log = tmp_path / "log.jsonl"
    first = run_tasks(noisy_task, 8, seed=1, log_path=log)
    more = run_tasks(noisy_task, 20, seed=1, log_path=log)
    assert more[:8] == first
    assert more == run_tasks(noisy_task, 20, seed=1, log_path=tmp_path / "fresh.jsonl")
    assert sorted(logged_tasks(log)) == list(range(20))


def test_resuming_under_another_seed_or_key_is_refused(tmp_path):
    log = tmp_path / "log.jsonl"
    run_tasks(noisy_task, 4, seed=1, log_path=log, run_key={"config": "abc"})
    with pytest.raises(AccelsimError, match="seed"):
        run_tasks(noisy_task, 4, seed=2, log_path=log, run_key={"config": "abc"})
    with pytest.raises(AccelsimError, match="run_key"):
        run_tasks(noisy_task, 4, seed=1, log_path=log, run_key={"config": "xyz"})


def test_a_damaged_line_inside_the_log_is_a_user_error(tmp_path):
    log = tmp_path / "log.jsonl"
    run_tasks(noisy_task, 6, seed=1, log_path=log, chunk=2)
    lines = log.read_text().splitlines(keepends=True)
    lines[2] = '{"task": 1, "res\n'
    log.write_text("".join(lines))
    with pytest.raises(AccelsimError, match="line 3"):
        run_tasks(noisy_task, 6, seed=1, log_path=log)


def test_a_failing_task_raises_and_finished_chunks_stay_logged(tmp_path):
    log = tmp_path / "log.jsonl"
    with pytest.raises(RuntimeError, match="task 5 broke"):
        run_tasks(failing_task, 10, seed=0, log_path=log, chunk=2)
    assert sorted(logged_tasks(log)) == [0, 1, 2, 3]


def test_two_worker_processes_give_the_serial_results_and_load_the_context_once(tmp_path):
    context = CountingContext(offset=100)
    serial = run_tasks(
        context_probe_task,
        24,
        seed=77,
        log_path=tmp_path / "serial.jsonl",
        context=context,
        chunk=3,
    )
    parallel = run_tasks(
        context_probe_task,
        24,
        seed=77,
        log_path=tmp_path / "par.jsonl",
        context=context,
        chunk=3,
        workers=2,
    )

    def values(results):
        return [(r["value"], r["draws"]) for r in results]

    assert values(parallel) == values(serial)
    assert all(r["value"] > 50 for r in parallel)  # the context reached the workers
    # 8 chunks over 2 workers, yet each worker unpickled the context exactly once
    assert {r["loads_in_this_process"] for r in parallel} == {1}


def pid_task(task: TaskSpec, context) -> dict:
    import os

    return {"value": int(task.rng().integers(1 << 30)), "pid": os.getpid()}


def test_auto_workers_start_a_pool_only_when_it_finishes_sooner():
    from faults.runner import POOL_START_SECONDS, _auto_workers

    assert _auto_workers(1e-4, 2_000, cores=2) == 1  # 0.2 s of work: the pool costs more
    long_enough = 2 * POOL_START_SECONDS / 1e-4 * 1.5
    assert _auto_workers(1e-4, int(long_enough), cores=2) == 2
    assert _auto_workers(1e-4, int(long_enough), cores=1) == 1  # nothing to gain on one core
    assert _auto_workers(10.0, 3, cores=4) == 1  # too few tasks to spread


def test_auto_runs_short_campaigns_here_and_long_ones_on_a_pool_with_the_same_results(
    tmp_path, monkeypatch
):
    import os

    from faults import runner

    serial = run_tasks(pid_task, 300, seed=5, log_path=tmp_path / "serial.jsonl")
    short = run_tasks(pid_task, 300, seed=5, log_path=tmp_path / "short.jsonl", workers="auto")
    assert {r["pid"] for r in short} == {os.getpid()}  # the probe finished it: no pool
    monkeypatch.setattr(runner, "POOL_START_SECONDS", 0.0)  # as if a pool cost nothing
    monkeypatch.setattr(runner, "PROBE_SECONDS", 0.0)  # one chunk measured, then decided
    monkeypatch.setattr(runner, "usable_cores", lambda: 2)
    long = run_tasks(pid_task, 300, seed=5, log_path=tmp_path / "long.jsonl", workers="auto")
    assert {r["pid"] for r in long} - {os.getpid()}  # the rest ran on worker processes
    values = [r["value"] for r in serial]
    assert [r["value"] for r in short] == values and [r["value"] for r in long] == values
    assert sorted(logged_tasks(tmp_path / "long.jsonl")) == list(range(300))  # each once


def columnar_chunk(tasks, context) -> ResultColumns:
    """A columnar batch function: per task a draw from its counter-based words, and a
    variable number of item rows (like faults per injection)."""
    index = task_indices(tasks)
    seed = tasks[0].seed if len(tasks) else 0
    words = task_words(seed, index, np.zeros(len(index), dtype=np.int64))
    items = (words % np.uint64(3)).astype(np.int64)
    owner = np.repeat(index, items)
    return ResultColumns(
        {
            "tasks": {"task": index, "value": words.astype(np.float64) * 2.0**-64},
            "items": {
                "task": owner,
                "nth": np.arange(len(owner)) - np.repeat(np.cumsum(items) - items, items),
            },
        }
    )


def columnar_rows(columns: ResultColumns, context) -> list[dict]:
    return [{"value": v} for v in columns.tables["tasks"]["value"].tolist()]


columnar_task = BatchTaskFn(columnar_chunk, rows=columnar_rows, chunk=4)


def test_columnar_results_resume_from_a_torn_block_as_if_uninterrupted(tmp_path):
    reference = run_tasks(columnar_task, 18, seed=3, log_path=tmp_path / "ref.log")
    assert isinstance(reference, ResultColumns) and reference.tasks.tolist() == list(range(18))
    log = tmp_path / "log.log"
    chunks = []
    partial = run_tasks(columnar_task, 18, seed=3, log_path=log, max_new=8, on_chunk=chunks.append)
    assert [len(c) for c in chunks] == [4, 4] and partial.tasks.tolist() == list(range(8))
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 5])  # the second block cut short: tasks 4-7 lost
    assert read_task_log(log).tasks == set(range(4))
    seen = []
    resumed = run_tasks(
        columnar_task, 18, seed=3, log_path=log, on_result=lambda i, r: seen.append(i)
    )
    assert resumed == reference and sorted(seen) == list(range(18))
    assert list(read_task_log(log).logged) == list(range(18))  # each task logged once
    assert (
        columnar_task(TaskSpec(5, 3), None)
        == columnar_rows(reference.select(reference.tasks == 5), None)[0]
    )


def test_a_columnar_log_refuses_a_damaged_inner_block_and_keeps_a_task_once(tmp_path):
    log = tmp_path / "log.log"
    reference = run_tasks(columnar_task, 8, seed=1, log_path=log)
    data = log.read_bytes()
    header_end = data.index(b"\n") + 1
    first_end = header_end + 12 + int.from_bytes(data[header_end : header_end + 8], "little")
    doubled = data + data[header_end:first_end]  # a block logged twice: the first one counts
    log.write_bytes(doubled)
    assert run_tasks(columnar_task, 8, seed=1, log_path=log) == reference
    damaged = bytearray(data)
    damaged[first_end - 1] ^= 0xFF
    log.write_bytes(bytes(damaged))
    with pytest.raises(AccelsimError, match="damaged block"):
        run_tasks(columnar_task, 8, seed=1, log_path=log)
    (tmp_path / "copy.log").write_bytes(data)
    with pytest.raises(AccelsimError, match="format"):  # a columnar log is not a JSON one
        run_tasks(noisy_task, 8, seed=1, log_path=tmp_path / "copy.log")
