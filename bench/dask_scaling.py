"""Campaign throughput on a local Dask cluster of 1 and 2 workers, and Dask's per-shard cost.

The digits CNN campaign (``workloads/digits_cnn.yaml``, 64 samples, one single-bit fault per
injection) runs serially in this process, then through :class:`faults.dask_executor.DaskExecutor`
on a ``LocalCluster`` of N single-threaded worker processes for each N of ``--workers``. Each
cluster is warmed first (imports, Numba kernels loaded from the cache) by a short campaign
with another seed; the timed run includes scattering the golden run to every worker. Then the
per-shard overhead: the round trip of a shard holding one empty task, one at a time, and the
rate of empty one-task shards all submitted at once.

Expected scaling: injections are independent, so throughput grows nearly linearly with the
workers *that have a core of their own*, as long as a shard's compute (up to 64 injections,
about 50-100 ms on the digits CNN) stays well above Dask's round trip per shard (measured
here: 15-30 ms on a 2-core machine, where client, scheduler and workers share the cores). On
such a machine expect one Dask worker at roughly 0.5-0.8x the serial run and two workers at
about 1.2-1.6x one worker; on a real cluster (a core per worker, scheduler elsewhere) expect
about 0.9x serial per worker. The golden-run scatter (about 1 MB for the digits CNN) is paid
once per worker.
Every figure is measured by this run and printed, never asserted. ::

    python bench/dask_scaling.py [--injections 3000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from accelsim import load_workload  # noqa: E402
from faults.campaign import CampaignSettings, campaign, prepare, run_injection  # noqa: E402
from faults.dask_executor import DaskExecutor  # noqa: E402
from faults.runner import TaskSpec  # noqa: E402

SETTINGS = CampaignSettings(mode="single")
console = Console(width=110)


def empty_task(task: TaskSpec, context: object) -> None:
    """No work at all: what remains is Dask's and the runner's cost per shard."""
    return None


def time_campaign(workload, ctx, injections: int, executor=None) -> float:
    start = time.perf_counter()
    campaign(
        workload,
        injections=injections,
        settings=SETTINGS,
        samples=ctx.golden.samples,
        seed=0,
        workers=1,
        context=ctx,
        executor=executor,
    )
    return injections / (time.perf_counter() - start)


def shard_overhead(client, rounds: int) -> tuple[float, float]:
    """Mean round trip (ms) of a one-empty-task shard, and empty shards per second when all
    are submitted at once (the executor alone: no log, no fsync)."""
    with DaskExecutor(empty_task, seed=0, context=None, client=client) as executor:
        executor.submit([0]).result()  # the worker has imported the task function
        start = time.perf_counter()
        for index in range(rounds):
            executor.submit([index]).result()
        round_trip = (time.perf_counter() - start) / rounds
        start = time.perf_counter()
        futures = [executor.submit([rounds + index]) for index in range(rounds)]
        for future in futures:
            future.result()
        pipelined = rounds / (time.perf_counter() - start)
    return round_trip * 1e3, pipelined


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=3000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=200, help="empty shards for the overhead")
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    workload = load_workload(ROOT / "workloads" / "digits_cnn.yaml", ["dataset.samples=64"])
    ctx = prepare(workload, SETTINGS, samples=64)
    for index in range(16):  # warm this process's kernels and caches for the serial figure
        run_injection(TaskSpec(index, 999), ctx)
    serial = time_campaign(workload, ctx, args.injections)

    table = Table(title=f"digits CNN campaign, {args.injections} single-bit injections")
    for column in ("executor", "injections/s", "× serial", "shard round trip", "empty shards/s"):
        table.add_column(column, justify="right")
    table.add_row("serial (this process)", f"{serial:.0f}", "1.00", "", "")
    for workers in args.workers:
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            with DaskExecutor(run_injection, seed=1, context=ctx, client=client) as warm:
                campaign(
                    workload,
                    injections=16 * workers,
                    settings=SETTINGS,
                    samples=64,
                    seed=1,
                    workers=1,
                    context=ctx,
                    executor=warm,
                )
            start = time.perf_counter()
            with DaskExecutor(run_injection, seed=0, context=ctx, client=client) as executor:
                scatter_s = time.perf_counter() - start
                rate = time_campaign(workload, ctx, args.injections, executor)
            round_trip_ms, pipelined = shard_overhead(client, args.rounds)
        table.add_row(
            f"Dask, {workers} worker(s) (scatter {scatter_s * 1e3:.0f} ms)",
            f"{rate:.0f}",
            f"{rate / serial:.2f}",
            f"{round_trip_ms:.1f} ms",
            f"{pipelined:.0f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
