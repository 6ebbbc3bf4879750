"""How fast BO finds the optimum, against random search, on the shipped problem (printed).

The space is that of ``workloads/digits_optimize.yaml`` (62,208 designs: array, bit widths,
accumulator, clip bound, hardened bits of every class, protected fraction, redundant units)
under its accuracy, reliability (first-order upper bound) and latency constraints. It is too
large for exhaustive search, so the reference is the best feasible design any run found; over
several seeds BO and random search run with the same budget and we count the evaluations each
needs to get within 2% of it (:func:`optimizer.evaluations_to_reach`). Certificates are off
here: this measures the search (``bench.certified`` measures certified answers). One
:class:`DesignEvaluator` serves every search, so a design is simulated once and each
quantisation's injections are shared. ``--quick``: a 16-design space with exhaustive truth.

    .venv/bin/python -m bench.optimizer_quality [--quick] [--seeds 10] [--budget 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "workloads" / "digits_optimize.yaml"
console = Console()

QUICK_SPACE = {
    "array_rows": [4, 8],
    "array_cols": [4, 8],
    "weight_bits": [4, 8],
    "hardened_bits": {"accumulator": [0, 8]},
}


def bench_optimizer(
    *, quick: bool = False, seeds: int = 5, budget: int | None = None, tolerance: float = 0.02
) -> Table:
    """Run the benchmark and return its table of figures."""
    from accelsim.workload import load_workload
    from optimizer import evaluations_to_reach
    from optimizer.config import parse_optimize
    from optimizer.evaluate import DesignEvaluator
    from optimizer.search import run_search

    # quick: a small test set (so a looser accuracy bound) and a 1% target the space can meet
    overrides = (
        [
            "dataset.samples=32",
            "faults.samples=8",
            "optimize.constraints.min_accuracy=0.8",
            "optimize.constraints.min_reliability=0.99",
        ]
        if quick
        else []
    )
    workload = load_workload(WORKLOAD, [*overrides, "optimize.certify.enabled=false"])
    section = dict(workload.config.optimize)
    if quick:
        section["variables"] = QUICK_SPACE
        section["n_initial"] = 4
    opt = parse_optimize(section, workload=workload.config, file=WORKLOAD)
    budget = budget or (8 if quick else 30)
    seeds = 2 if quick else seeds
    evaluator = DesignEvaluator(workload, opt)

    runs: dict[str, list[tuple[Any, float]]] = {"bo": [], "random": []}
    for method in runs:
        for seed in range(seeds):
            start = time.perf_counter()
            result = run_search(
                method,
                opt.with_updates(seed=seed),
                evaluator,
                budget=budget,
                log_path=None,
                on_evaluation=None,
            )
            runs[method].append((result, time.perf_counter() - start))
            found = "none" if result.best is None else f"{result.best.objective:,.0f}"
            console.print(f"{method} seed {seed}: best {found} after {budget} evaluations")
    if quick:
        truth = run_search(
            "exhaustive", opt, evaluator, budget=opt.space.size, log_path=None, on_evaluation=None
        )
        reference, source = truth.best, "exhaustive optimum"
    else:
        bests = [r.best for results in runs.values() for r, _ in results if r.best is not None]
        reference = min(bests, key=lambda e: e.objective) if bests else None
        source = "best design any run found"
    table = Table(
        title=f"optimizer quality: digits CNN, {opt.space.size:,} designs, budget "
        f"{budget}, {seeds} seeds, within {tolerance:.0%} of the "
        f"{source}"
    )
    for col in ("method", "reached (runs)", "median evaluations", "per seed", "wall s / run"):
        table.add_column(col, justify="left" if col == "method" else "right")
    if reference is None:
        table.add_row("–", "no feasible design found", "", "", "")
        return table
    for method, results in runs.items():
        counts = [evaluations_to_reach(r, reference.objective, tolerance) for r, _ in results]
        reached = [c for c in counts if c is not None]
        # a run that never got there counts as budget + 1 (a lower bound) for the median
        median = statistics.median(c if c is not None else budget + 1 for c in counts)
        table.add_row(
            method,
            f"{len(reached)}/{seeds}",
            f"{median:g}" + ("" if len(reached) == seeds else " (≥)"),
            " ".join("–" if c is None else str(c) for c in counts),
            f"{statistics.mean(w for _, w in results):.1f}",
        )
    console.print(
        f"reliability estimated by: {evaluator.estimator.method}; designs simulated: "
        f"{evaluator.evaluations}; reference ({source}): {reference.objective:,.0f} "
        f"{opt.readable(reference.design)}"
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny space (a smoke test)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=None)
    args = parser.parse_args(argv)
    console.print(bench_optimizer(quick=args.quick, seeds=args.seeds, budget=args.budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
