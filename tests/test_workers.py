"""The worker pools of accelsim.workers: serial fallback, shared state once per worker, results
in item order, early exit cancels what has not started."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from accelsim.workers import ProcessWorkers, SerialWorkers, worker_pool
from tests.helpers import CountingContext


def offset_square(shared: CountingContext, item: int) -> dict:
    if item == 3 and shared.offset < 0:
        raise RuntimeError("item 3 broke")
    return {"value": item * item + shared.offset, "loads": CountingContext.loads}


def slow_touch(folder: str, item: int) -> int:
    """Marks that ``item`` ran; item 0 fails at once, every other item takes a while."""
    if item == 0:
        raise RuntimeError("first item broke")
    Path(folder, str(item)).touch()
    time.sleep(0.5)
    return item


def test_one_worker_is_this_process_and_never_pickles_the_shared_state():
    unpicklable = lambda: 7  # noqa: E731  (a lambda cannot be pickled)
    pool = worker_pool(1, unpicklable)
    assert isinstance(pool, SerialWorkers)
    assert list(pool.map(lambda shared, item: shared() + item, [1, 2])) == [8, 9]
    assert pool.submit(lambda shared, item: shared() * item, 3).result() == 21


def test_serial_submit_keeps_the_exception_in_the_future():
    future = SerialWorkers(CountingContext(-1)).submit(offset_square, 3)
    with pytest.raises(RuntimeError, match="item 3 broke"):
        future.result()


def test_worker_processes_give_the_serial_results_in_order_and_load_the_state_once():
    items = list(range(12))
    serial = list(worker_pool(1, CountingContext(100)).map(offset_square, items))
    with worker_pool(2, CountingContext(100)) as pool:
        assert isinstance(pool, ProcessWorkers)
        parallel = list(pool.map(offset_square, items))
    assert [r["value"] for r in parallel] == [r["value"] for r in serial]
    assert {r["loads"] for r in parallel} == {1}  # 12 items, one unpickling per worker


def test_an_error_surfaces_at_its_item_and_cancels_the_items_not_started(tmp_path):
    items = list(range(10))
    with ProcessWorkers(1, str(tmp_path), start_method="spawn") as pool:
        results = pool.map(slow_touch, items)
        with pytest.raises(RuntimeError, match="first item broke"):
            next(results)
    # the worker had at most the items queued behind the failure; the rest never started
    assert len(os.listdir(tmp_path)) < len(items) - 1


def test_a_pool_needs_at_least_one_worker():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        worker_pool(0)
