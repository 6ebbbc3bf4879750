"""``python -m bench.startup``: how soon ``python -m accelsim run`` simulates its first batch.

Measured from the moment Python has started (the probe's first line) to the first
``Accelerator.run`` call: imports, the workload file, the model (a cached builtin needs no
torch), quantisation, the output folder. Median [min, max] of a few runs of each workload, each
in a fresh process; ``--help`` and ``--version`` end to end beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import time
started = time.perf_counter()
import sys
import accelsim.hw.accelerator as accelerator

def first_batch(self, *args, **kwargs):
    print(f"first-batch {time.perf_counter() - started:.4f}", file=sys.stderr, flush=True)
    raise SystemExit(0)

accelerator.Accelerator.run = first_batch
from accelsim.app import main
main(sys.argv[1:])
"""


def _first_batch_seconds(workload: str, out: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run", workload, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("first-batch "))
    return float(line.split()[1])


def _wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - start


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--workloads", nargs="+", default=["workloads/digits_cnn.yaml", "workloads/resnet18.yaml"]
    )
    args = parser.parse_args(argv)
    table = Table(title=escape("start-up, s after Python's own start-up (median [min, max])"))
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("target", justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads:
            _first_batch_seconds(workload, Path(tmp) / "warm")  # export / caches, not timed
            times = [
                _first_batch_seconds(workload, Path(tmp) / f"run{i}") for i in range(args.runs)
            ]
            table.add_row(f"run {workload}: first batch", escape(_spread(times)), "<= 1")
    bare = [_wall(["-c", "pass"]) for _ in range(args.runs)]
    for flag in ("--help", "--version"):
        walls = [_wall(["-m", "accelsim", flag]) - b for b in bare]
        table.add_row(f"accelsim {flag}, beyond python -c pass", escape(_spread(walls)), "<= 0.5")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
