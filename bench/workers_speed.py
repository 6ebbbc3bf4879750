"""``python -m bench.workers_speed``: is the default ``workers="auto"`` the faster choice?

The digits CNN's campaign at the demo's fault rate, small and large, serially, on one process
per usable core, and with ``auto``; each wall time is measured in this run (same machine, same
moment), with the golden run shared so that only the injections are timed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from accelsim import load_workload
    from accelsim.workers import usable_cores
    from faults.campaign import CampaignSettings, campaign, prepare

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[2_000, 20_000, 100_000])
    args = parser.parse_args(argv)
    workload = load_workload(ROOT / "workloads" / "digits_cnn.yaml")
    settings = CampaignSettings.from_config(workload.config.faults, source=workload.source)
    context = prepare(workload, settings)
    # the Numba kernels and what a campaign imports lazily, loaded before anything is timed
    # (else the first cell, 1 worker, pays them: 1.15 s against auto's 0.14 s for 2,000)
    campaign(workload, injections=64, workers=1, context=context, seed=999)
    cores = usable_cores()
    table = Table(title=f"digits CNN campaign wall time (s), {cores} usable cores")
    for column in ("injections", "1 worker", f"{cores} workers", "auto", "auto / best"):
        table.add_column(column, justify="right")
    for size in args.sizes:
        walls = {}
        for workers in (1, cores, "auto"):
            start = time.perf_counter()
            campaign(workload, injections=size, workers=workers, context=context, seed=1)
            walls[workers] = time.perf_counter() - start
        best = min(walls[1], walls[cores])
        table.add_row(
            f"{size:,}",
            f"{walls[1]:.2f}",
            f"{walls[cores]:.2f}",
            f"{walls['auto']:.2f}",
            f"{walls['auto'] / best:.2f}",
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
