"""How fast BO finds the optimum, against random search, on the digits CNN (printed figures).

A design space of a few hundred points (array size, weight bits, accumulator width, hardened
accumulator bits) under accuracy, reliability and latency constraints. Exhaustive search gives
the true constrained optimum; then, over several seeds, BO and random search run with the same
budget and we count the evaluations each needs to get within 2% of it
(:func:`optimizer.evaluations_to_reach`). One :class:`DesignEvaluator` serves every search,
so each design is simulated once (quantisation and vulnerability factors are cached too):
the figures measure search efficiency, the wall times the cost of the surrogates.

    .venv/bin/python -m bench.optimizer_quality [--quick] [--seeds 5] [--budget 60]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "workloads" / "digits_optimize.yaml"
console = Console()

SPACE = {
    "array_rows": [4, 8, 16],
    "array_cols": [4, 8, 16],
    "weight_bits": [4, 5, 6, 8],
    "acc_bits": [16, 24],
    "hardened_bits": {"accumulator": [0, 4, 8, 12]},
}  # 288 designs
QUICK_SPACE = {"array_rows": [4, 8], "array_cols": [4, 8], "weight_bits": [4, 8],
               "hardened_bits": {"accumulator": [0, 8]}}  # fmt: skip


def bench_optimizer(*, quick: bool = False, seeds: int = 5, budget: int | None = None,
                    tolerance: float = 0.02) -> Table:  # fmt: skip
    """Run the benchmark and return its table of figures."""
    from accelsim.workload import load_workload
    from optimizer import evaluations_to_reach
    from optimizer.config import parse_optimize
    from optimizer.evaluate import DesignEvaluator, run_search

    workload = load_workload(WORKLOAD, ["dataset.samples=16", "faults.samples=8"])
    section = dict(workload.config.optimize)
    section["variables"] = QUICK_SPACE if quick else SPACE
    section["n_initial"] = 4 if quick else 8
    opt = parse_optimize(section, workload=workload.config, file=WORKLOAD)
    budget = budget or (8 if quick else 60)
    seeds = 2 if quick else seeds
    evaluator = DesignEvaluator(workload, opt)

    start = time.perf_counter()
    truth = run_search("exhaustive", opt, evaluator, budget=opt.space.size, log_path=None,
                       on_evaluation=None)  # fmt: skip
    exhaustive_s = time.perf_counter() - start
    table = Table(title=f"optimizer quality: digits CNN, {opt.space.size} designs, budget "
                        f"{budget}, {seeds} seeds, within {tolerance:.0%} of the optimum")  # fmt: skip
    for col in ("method", "reached (runs)", "median evaluations", "per seed", "wall s / run"):
        table.add_column(col, justify="left" if col == "method" else "right")
    feasible = sum(e.feasible for e in truth.evaluations)
    table.add_row("exhaustive", f"{feasible} feasible designs", str(opt.space.size),
                  f"optimum {truth.best.objective:.6g}" if truth.best else "no feasible design",
                  f"{exhaustive_s:.1f}")  # fmt: skip
    if truth.best is None:
        return table
    for method in ("bo", "random"):
        counts, walls = [], []
        for seed in range(seeds):
            run_opt = opt.with_updates(seed=seed)
            start = time.perf_counter()
            result = run_search(method, run_opt, evaluator, budget=budget, log_path=None,
                                on_evaluation=None)  # fmt: skip
            walls.append(time.perf_counter() - start)
            counts.append(evaluations_to_reach(result, truth.best.objective, tolerance))
        reached = [c for c in counts if c is not None]
        # a run that never got there counts as budget + 1 (a lower bound) for the median
        median = statistics.median(c if c is not None else budget + 1 for c in counts)
        table.add_row(method, f"{len(reached)}/{seeds}",
                      f"{median:g}" + ("" if len(reached) == seeds else " (≥)"),
                      " ".join("–" if c is None else str(c) for c in counts),
                      f"{statistics.mean(walls):.1f}")  # fmt: skip
    console.print(f"reliability estimated by: {evaluator.estimator.method}; designs simulated: "
                  f"{evaluator.evaluations}; best: {opt.readable(truth.best.design)}")  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny space (a smoke test)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=None)
    args = parser.parse_args(argv)
    console.print(bench_optimizer(quick=args.quick, seeds=args.seeds, budget=args.budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
