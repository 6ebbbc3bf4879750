"""``python -m accelsim bench``: simulator speed on ResNet-18 (and the other benches).

Each figure printed is measured by this run on this machine; nothing is hard-coded.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
console = Console()


def bench_simulator(*, quick: bool) -> Table:
    from accelsim import load_workload, simulate

    size = 32 if quick else 224
    table = Table(
        title=f"simulator speed: ResNet-18 {size}×{size}, batch 1, int8, 16×16 WS, values computed"
    )
    for col in ("timing", "wall s", "MACs", "sim cycles", "MACs/s", "cycles/s", "folds"):
        table.add_column(col, justify="right")
    for timing in ("accurate", "scalesim"):
        workload = load_workload(
            ROOT / "workloads" / "resnet18.yaml",
            [f"model.input_size={size}", f"accelerator.timing={timing}", "batch=1"],
        )
        simulate(workload, samples=1) if timing == "accurate" else None  # warm numba caches
        start = time.perf_counter()
        result = simulate(workload, samples=1)
        wall = time.perf_counter() - start
        totals = result.totals()
        folds = sum(layer.folds for layer in result.layers)
        table.add_row(
            timing,
            f"{wall:.2f}",
            f"{totals['macs'] / 1e9:.3f} G",
            f"{totals['total_cycles'] / 1e6:.3f} M",
            f"{totals['macs'] / wall / 1e6:.1f} M",
            f"{totals['total_cycles'] / wall / 1e6:.2f} M",
            str(folds),
        )
    return table


def bench_optimizer(*, quick: bool) -> Table:
    from bench.optimizer_quality import bench_optimizer as run

    return run(quick=quick)


def bench_faults(*, quick: bool) -> None:
    from bench.faults_speed import main as run  # prints its own tables

    run(["--no-resnet", "--injections", "200"] if quick else [])


BENCHES = {"sim": bench_simulator, "optimizer": bench_optimizer, "faults": bench_faults}


def main(which: str = "sim", *, quick: bool = False) -> int:
    names = list(BENCHES) if which == "all" else [which]
    for name in names:
        if name not in BENCHES:
            console.print(f"benchmark {name!r} is not available yet")
            continue
        table = BENCHES[name](quick=quick)
        if table is not None:
            console.print(table)
    return 0
