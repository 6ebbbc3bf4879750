"""Where designs are evaluated: the :class:`EvaluatorPool` seam of the optimiser and its pools.

``map(evaluate, designs)`` yields ``evaluate_design(evaluate, design)`` in the order of
``designs``. :class:`SerialPool` evaluates in this process, one design when asked;
:class:`ProcessEvaluatorPool` on local worker processes (:mod:`accelsim.workers`: the
evaluation callable, e.g. a :class:`~optimizer.evaluate.DesignEvaluator`, is shipped once per
worker and keeps its caches there); :class:`DaskEvaluatorPool` on a Dask cluster
(:class:`accelsim.workers.DaskConnection`). :func:`pool_from_options` picks one from command
line options.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from accelsim.errors import Infeasible
from accelsim.workers import (
    DaskConnection,
    ProcessWorkers,
    SerialWorkers,
    dask_scheduler_address,
    results_in_order,
    worker_pool,
)

from .log import Evaluate, Evaluation


def evaluate_design(evaluate: Evaluate, design: dict[str, Any]) -> Evaluation:
    """``evaluate(design)``, with :class:`~accelsim.errors.Infeasible` turned into a record (as
    :meth:`Recorder.run` does). Pools call this where the evaluation runs, so a design that
    cannot run comes back as a result instead of aborting the rest of the batch."""
    try:
        return evaluate(dict(design))
    except Infeasible as exc:
        return Evaluation.cannot_run(design, str(exc))


class EvaluatorPool(Protocol):
    """Evaluates designs, possibly concurrently.

    ``map(evaluate, designs)`` returns an iterable of ``evaluate_design(evaluate, design)`` *in
    the order of* ``designs`` (it may start them all at once and yield each as soon as it and
    all before it are done). An exception is raised at the position of the design that failed.
    """

    def map(self, evaluate: Evaluate, designs: Sequence[dict[str, Any]]) -> Iterable[Evaluation]:
        """The evaluations of ``designs``, in order."""
        ...


class SerialPool:
    """Evaluates one design after another in this process, each when the caller asks for it."""

    def map(self, evaluate: Evaluate, designs: Sequence[dict[str, Any]]) -> Iterator[Evaluation]:
        """The evaluations of ``designs``, in order, computed lazily."""
        return SerialWorkers(evaluate).map(evaluate_design, designs)


class ProcessEvaluatorPool:
    """An :class:`EvaluatorPool` on ``workers`` local processes
    (:class:`accelsim.workers.ProcessWorkers`, spawn start method by default).

    The evaluation callable (e.g. a :class:`~optimizer.evaluate.DesignEvaluator`) must be
    picklable; it is sent once per worker through the pool initializer, so each worker builds
    its evaluator once and keeps its caches across designs. A different callable restarts the
    workers.
    """

    def __init__(self, workers: int, *, start_method: str = "spawn") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.start_method = start_method
        self._pool: ProcessWorkers | SerialWorkers | None = None
        self._evaluate: Evaluate | None = None

    def map(self, evaluate: Evaluate, designs: Sequence[dict[str, Any]]) -> Iterator[Evaluation]:
        """Start every design now; yield the evaluations in the order of ``designs``."""
        if self._pool is None or self._evaluate is not evaluate:
            self.close()
            self._pool = worker_pool(self.workers, evaluate, start_method=self.start_method)
            self._evaluate = evaluate
        return self._pool.map(evaluate_design, [dict(d) for d in designs])

    def close(self) -> None:
        """Stop the workers (pending designs are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_pending=True)
            self._pool = None
            self._evaluate = None

    def __enter__(self) -> ProcessEvaluatorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskEvaluatorPool:
    """An :class:`EvaluatorPool` on a Dask cluster (``distributed``, optional).

    Exactly one of ``client`` (left open by :meth:`close`), ``scheduler`` (``tcp://HOST:PORT``)
    or ``workers`` (a local cluster of that many single-threaded worker processes). The
    evaluation callable is scattered to every worker once (``broadcast``): each worker holds
    one copy, with its caches, for every design it evaluates. Designs go out with
    ``client.map`` and come back in order.
    """

    def __init__(
        self, *, client: Any = None, scheduler: str | None = None, workers: int | None = None
    ) -> None:
        self._connection = DaskConnection(client=client, scheduler=scheduler, workers=workers)
        self.client = self._connection.client
        self._evaluate: Evaluate | None = None
        self._scattered: Any = None

    def map(self, evaluate: Evaluate, designs: Sequence[dict[str, Any]]) -> Iterator[Evaluation]:
        """Submit every design now; yield the evaluations in the order of ``designs``."""
        if self._evaluate is not evaluate:
            if self._scattered is not None:
                self._scattered.release()
            # a one-item list: scatter would split a list or dict into pieces
            [self._scattered] = self.client.scatter([evaluate], broadcast=True, hash=False)
            self._evaluate = evaluate
        futures = self.client.map(
            evaluate_design,
            [self._scattered] * len(designs),
            [dict(d) for d in designs],
            pure=False,
        )
        return results_in_order(futures, cancel=self.client.cancel)

    def close(self) -> None:
        """Release the scattered evaluator; close the client and cluster this pool started."""
        if self._scattered is not None:
            self._scattered.release()
            self._scattered = None
            self._evaluate = None
        self._connection.close()

    def __enter__(self) -> DaskEvaluatorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pool_from_options(
    *, workers: int | None = None, scheduler: str | None = None, dask_workers: int | None = None
) -> Any:
    """The pool a command line asks for: a Dask scheduler (``scheduler``, else the
    ``DASK_SCHEDULER_ADDRESS`` environment variable), else a local Dask cluster of
    ``dask_workers``, else a process pool of ``workers`` (> 1), else None (this process)."""
    address = dask_scheduler_address(scheduler)
    if address:
        return DaskEvaluatorPool(scheduler=address)
    if dask_workers:
        return DaskEvaluatorPool(workers=dask_workers)
    if workers is not None and workers > 1:
        return ProcessEvaluatorPool(workers)
    return None
