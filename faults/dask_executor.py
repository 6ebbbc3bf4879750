"""Campaigns on a Dask cluster: an :class:`faults.runner.Executor` backed by ``distributed``.

``run_tasks`` (and so :func:`faults.campaign.campaign`) drives any executor; this one ships
each chunk of task indices to a Dask worker as one *shard*. The design:

* **The context travels once per worker.** The heavy shared context (a campaign's golden run)
  is scattered to every worker with ``client.scatter(context, broadcast=True)`` when the
  executor starts; every shard receives the scattered *future*, so the scheduler hands the
  worker's copy to the task and nothing big is sent per shard. A worker that joins (or is
  restarted) later copies it from a peer on its first shard.
* **Shards are self-describing.** A :class:`Shard` carries the run's seed, its task indices
  and the run key; task ``i`` draws from (seed, ``i``) only, as everywhere else, so results
  do not depend on which worker ran what. The Dask key of a shard is derived from the same
  data, so a shard resubmitted while its result is still held is not recomputed.
* **Results stream back through the runner.** Each shard resolves a
  ``concurrent.futures.Future`` of its chunk's results (``[(index, result JSON text), ...]``,
  or a columnar function's :class:`faults.runner.ResultColumns`); ``run_tasks`` appends it to
  the same log as the serial and process-pool executors do, so a campaign started on one
  executor resumes on another.
* **Workers may die.** A shard whose worker dies is rescheduled by the scheduler on another
  worker (up to ``distributed.scheduler.allowed-failures`` deaths); shards are submitted with
  ``retries=2`` so a task that raises (e.g. a worker out of memory) is also re-run. A shard
  reports once, however often it ran, so every task index is logged once. Scattered data has
  no recipe: if every worker holding the context dies, the scheduler forgets it and cancels
  the shards that need it; the executor then scatters the context again (it keeps a
  reference) and resubmits those shards, at most twice per shard.

Use ``executor_from_options`` to honour ``--dask-scheduler`` / ``DASK_SCHEDULER_ADDRESS`` and
``--dask-workers``; close the executor with ``shutdown()`` or a ``with`` block (``run_tasks``
does not shut down an executor it was given).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any

from accelsim.workers import DaskConnection, dask_scheduler_address

from .runner import ChunkResult, TaskFn, _run_chunk_with

SHARD_RETRIES = 2
CONTEXT_RESCATTERS = 2  # per shard: how often a lost context is scattered again for it


@dataclass(frozen=True)
class Shard:
    """One unit of work on a worker: these task indices of the run ``(seed, run_key)``."""

    seed: int
    indices: tuple[int, ...]
    run_key: str | None = None


def run_shard(fn: TaskFn, context: Any, shard: Shard) -> ChunkResult:
    """Compute a shard on a worker (module level: pickled by reference)."""
    return _run_chunk_with(fn, context, shard.seed, shard.indices)


def _fn_name(fn: TaskFn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class DaskExecutor:
    """Runs task chunks as shards on a Dask cluster (see the module docstring).

    Exactly one source of workers: ``client`` (an existing ``distributed.Client``, left open
    on shutdown), ``scheduler`` (``"tcp://HOST:PORT"`` of a running scheduler) or ``workers``
    (start a local cluster of that many single-threaded worker processes). ``run_key``: any
    string identifying the run (e.g. the campaign key); it names the shards on the dashboard.
    """

    def __init__(
        self,
        fn: TaskFn,
        *,
        seed: int,
        context: Any = None,
        client: Any = None,
        scheduler: str | None = None,
        workers: int | None = None,
        run_key: str | None = None,
    ) -> None:
        self.fn, self.seed, self.run_key = fn, seed, run_key
        self._connection = DaskConnection(client=client, scheduler=scheduler, workers=workers)
        client = self.client = self._connection.client
        try:
            # a one-item list: scatter would split a list or dict context into pieces
            [self._context] = client.scatter([context], broadcast=True, hash=False)
        except BaseException:
            self._close()
            raise
        self._context_value = context  # kept to scatter again if every copy is lost
        self._closing = False
        self._lock = threading.Lock()
        self._in_flight: dict[str, Any] = {}  # dask key -> dask future, until it reports
        self._threads_at_start = self.workers

    @property
    def workers(self) -> int:
        """Worker threads in the cluster now (asks the scheduler; a hint for chunk sizes)."""
        return max(1, sum(self.client.nthreads().values()))

    @property
    def max_pending(self) -> int:
        # two shards per worker thread (one running, one queued behind it), counted when the
        # executor started: the runner reads this before every submission
        return 2 * self._threads_at_start

    def shard_key(self, shard: Shard) -> str:
        """The Dask key of ``shard``: the same shard of the same run always gets the same key."""
        from dask.base import tokenize

        token = tokenize(_fn_name(self.fn), shard, self._context.key)
        return f"accelsim-shard-{self.run_key or 'run'}-{shard.indices[0]}-{token}"

    def submit(self, chunk: Sequence[int]) -> Future[ChunkResult]:
        """Send ``chunk`` as one shard; the returned future yields its results (``(index,
        json)`` pairs, or columns)."""
        shard = Shard(seed=self.seed, indices=tuple(int(i) for i in chunk), run_key=self.run_key)
        result: Future[ChunkResult] = Future()
        if not shard.indices:
            result.set_result([])
            return result
        self._send(shard, result, rescatters_left=CONTEXT_RESCATTERS)
        return result

    def _send(self, shard: Shard, result: Future[ChunkResult], *, rescatters_left: int) -> None:
        context = self._context
        key = self.shard_key(shard)
        dask_future = self.client.submit(
            run_shard, self.fn, context, shard, key=key, retries=SHARD_RETRIES
        )
        with self._lock:
            self._in_flight[key] = dask_future

        def settle(finished: Any) -> None:  # runs on Dask's callback thread
            with self._lock:
                self._in_flight.pop(key, None)
            if result.done():
                return
            try:
                pairs = finished.result()
            except CancelledError as exc:
                # the scheduler forgets a shard whose context was lost with its workers
                try:
                    if rescatters_left == 0 or not self._rescatter(context):
                        result.set_exception(exc)
                    else:
                        self._send(shard, result, rescatters_left=rescatters_left - 1)
                except BaseException as resend_error:  # never leave the runner waiting
                    result.set_exception(resend_error)
            except BaseException as exc:  # the runner re-raises it from future.result()
                result.set_exception(exc)
            else:
                result.set_result(pairs)

        dask_future.add_done_callback(settle)

    def _rescatter(self, used: Any) -> bool:
        """Scatter the context again if no worker holds the copy ``used`` any more.

        Returns False only while shutting down. Asks the scheduler too, not only the future:
        the shard's cancellation may arrive before the news that its context is lost.
        """
        with self._lock:
            if self._closing:
                return False
            if self._context is used and self._lost(used):
                [self._context] = self.client.scatter(
                    [self._context_value], broadcast=True, hash=False
                )
            return True

    def _lost(self, context: Any) -> bool:
        if context.status != "finished":
            return True
        try:
            return not self.client.who_has([context]).get(context.key)
        except CancelledError:
            return True

    def shutdown(self, *, cancel_pending: bool = False) -> None:
        """Release the scattered context; close the client and cluster this executor started."""
        with self._lock:
            self._closing = True
            pending = list(self._in_flight.values())
            self._in_flight.clear()
        if cancel_pending and pending:
            self.client.cancel(pending)
        elif pending:
            from distributed import wait

            wait(pending)
        self._context.release()
        self._close()

    def _close(self) -> None:
        self._connection.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel_pending=exc[0] is not None)


def executor_from_options(
    fn: TaskFn,
    seed: int,
    context: Any = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    run_key: str | None = None,
) -> DaskExecutor | None:
    """The executor a command line asks for, or None for the default local process pool.

    ``scheduler`` (or, when it is None, the ``DASK_SCHEDULER_ADDRESS`` environment variable):
    connect to that Dask scheduler. Otherwise ``workers`` (``--dask-workers N``): start a
    local Dask cluster of N worker processes. Neither: None.
    """
    address = dask_scheduler_address(scheduler)
    if address:
        return DaskExecutor(fn, seed=seed, context=context, scheduler=address, run_key=run_key)
    if workers:
        return DaskExecutor(fn, seed=seed, context=context, workers=workers, run_key=run_key)
    return None
