"""Worker pools for embarrassingly parallel jobs: one place for processes, shared state and
shutdown (fault campaigns and the optimiser's design evaluations both run on it).

A job is a module-level function ``fn(shared, item)`` (picklable by reference) applied to many
items. ``shared`` is the job's heavy read-only state (a golden run, an evaluator with its
caches): it is shipped **once per worker** through the pool initializer, never per item.

* :func:`worker_pool` picks the pool: :class:`SerialWorkers` (this process, ``shared`` used as
  is, never pickled) for one worker, else :class:`ProcessWorkers`.
* :class:`ProcessWorkers` is a ``ProcessPoolExecutor`` with an explicit start method:
  ``spawn`` by default (safe with threads, Numba and BLAS pools in the parent), ``fork`` or
  ``forkserver`` when asked.
* ``submit(fn, item)`` returns a ``concurrent.futures.Future``; ``map(fn, items)`` starts every
  item now and yields the results **in the order of items**, whatever order they finish in.
  Leaving ``map`` early (an exception in a worker, ``KeyboardInterrupt`` in the caller, a
  consumer that stops) cancels the items not yet started.
* ``shutdown(cancel_pending=...)`` and ``with`` blocks stop the workers; leaving a ``with``
  block by an exception cancels what is pending.

Determinism is the job's business (seed every item from its own index, never from the worker),
so results do not depend on the pool or the number of workers. Pools on a Dask cluster share
:class:`DaskConnection`, the one place a Dask client and local cluster are opened and closed.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .lifeline import die_with_parent

Job = Callable[[Any, Any], Any]  # fn(shared, item) -> result

DASK_SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"  # where a Dask scheduler is, when not given

# per worker process: the shared state its pool installed, by pool token (a forked child
# inherits the parent's entries; the token keeps pools apart)
_SHARED: dict[str, Any] = {}


def _install_shared(token: str, shared: Any) -> None:
    die_with_parent()  # a killed run takes its workers (and the resource tracker) with it
    _SHARED[token] = shared


def _run_in_worker(token: str, fn: Job, item: Any) -> Any:
    return fn(_SHARED[token], item)


AUTO = "auto"  # let the runner choose: in this process, or a process per usable core


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_workers(workers: int) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")


class SerialWorkers:
    """One worker: this process. ``submit`` computes at once (its exception, even
    ``KeyboardInterrupt``, lands in the future); ``map`` computes each item when asked."""

    workers = 1

    def __init__(self, shared: Any = None) -> None:
        self.shared = shared

    def submit(self, fn: Job, item: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(self.shared, item))
        except BaseException as exc:  # the caller re-raises it from future.result()
            future.set_exception(exc)
        return future

    def map(self, fn: Job, items: Iterable[Any]) -> Iterator[Any]:
        return (fn(self.shared, item) for item in items)

    def shutdown(self, *, cancel_pending: bool = False) -> None:
        """Nothing runs in the background."""

    def __enter__(self) -> SerialWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel_pending=exc[0] is not None)


class ProcessWorkers:
    """``workers`` local processes, each holding ``shared`` from its start (see the module
    docstring). ``start_method``: ``spawn`` (default), ``fork`` or ``forkserver``."""

    def __init__(self, workers: int, shared: Any = None, *, start_method: str = "spawn") -> None:
        _check_workers(workers)
        self.workers = workers
        self._token = uuid.uuid4().hex
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(start_method),
            initializer=_install_shared,
            initargs=(self._token, shared),
        )

    def submit(self, fn: Job, item: Any) -> Future[Any]:
        return self._pool.submit(_run_in_worker, self._token, fn, item)

    def map(self, fn: Job, items: Iterable[Any]) -> Iterator[Any]:
        """Submit every item now; yield the results in the order of ``items``."""
        futures = [self.submit(fn, item) for item in items]
        return results_in_order(futures)

    def shutdown(self, *, cancel_pending: bool = False) -> None:
        """Stop the workers after the running items (and, unless ``cancel_pending``, the
        queued ones) finish."""
        self._pool.shutdown(wait=True, cancel_futures=cancel_pending)

    def __enter__(self) -> ProcessWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel_pending=exc[0] is not None)


def results_in_order(
    futures: Sequence[Any], cancel: Callable[[list[Any]], Any] | None = None
) -> Iterator[Any]:
    """Each future's result, in order. Stopped early (an error, an interrupt, a consumer that
    left), it cancels the futures not done: ``cancel(pending)`` (e.g. a Dask client's), else
    each future's own ``cancel()``."""
    try:
        for future in futures:
            yield future.result()
    finally:  # no orphan work
        pending = [f for f in futures if not f.done()]
        if cancel is not None:
            if pending:
                cancel(pending)
        else:
            for future in pending:
                future.cancel()


def worker_pool(
    workers: int, shared: Any = None, *, start_method: str = "spawn"
) -> SerialWorkers | ProcessWorkers:
    """:class:`SerialWorkers` for one worker, else :class:`ProcessWorkers`.

    A spawned worker re-runs the main script; from a script whose work is not under
    ``if __name__ == "__main__":`` that would start pools without end (a hang). Such a call
    runs serially instead, with a warning naming the line: the results are the same, as they
    never depend on the number of workers.
    """
    _check_workers(workers)
    if workers == 1:
        return SerialWorkers(shared)
    if start_method == "spawn" and (where := unguarded_script_line()) is not None:
        warnings.warn(
            f"{where}: {workers} worker processes need the script's work under "
            '`if __name__ == "__main__":`; running in this process instead (same results)',
            RuntimeWarning,
            stacklevel=2,
        )
        return SerialWorkers(shared)
    return ProcessWorkers(workers, shared, start_method=start_method)


def unguarded_script_line() -> str | None:
    """``script.py:LINE`` when the caller runs at the top level of a main script that a
    spawned worker would re-run (no ``__main__`` guard around that line), else None."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return None  # `python -m package`: spawn never re-runs a package's __main__
    path = getattr(main, "__file__", None)
    frame = sys._getframe(1)
    while frame is not None and not (
        frame.f_globals.get("__name__") == "__main__" and frame.f_code.co_name == "<module>"
    ):
        frame = frame.f_back
    if path is None or frame is None:
        return None  # interactive or `python -c`: nothing to re-run
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    guarded = any(
        isinstance(node, ast.If)
        and _is_main_guard(node.test)
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in tree.body
    )
    return None if guarded else f"{path}:{line}"


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


class DaskConnection:
    """A Dask client from exactly one of: a ``client`` (left open on close), a ``scheduler``
    address, or ``workers`` (a local cluster this object starts and closes).

    Local workers are processes (a dying task must not take the client with it) with one
    thread each (the Numba kernels are single-threaded per task). ``distributed`` is optional:
    it is imported here, when a connection is asked for.
    """

    def __init__(
        self, *, client: Any = None, scheduler: str | None = None, workers: int | None = None
    ) -> None:
        from distributed import Client, LocalCluster

        sources = [
            name
            for name, value in (("client", client), ("scheduler", scheduler), ("workers", workers))
            if value is not None
        ]
        if len(sources) != 1:
            raise ValueError(f"give exactly one of client, scheduler, workers; got {sources}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.cluster = None
        self.own_client = client is None
        if scheduler is not None:
            client = Client(scheduler)
        elif client is None:
            self.cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(self.cluster)
        self.client = client

    def close(self) -> None:
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def dask_scheduler_address(scheduler: str | None = None) -> str | None:
    """``scheduler``, else the ``DASK_SCHEDULER_ADDRESS`` environment variable, else None."""
    return scheduler or os.environ.get(DASK_SCHEDULER_ENV) or None
