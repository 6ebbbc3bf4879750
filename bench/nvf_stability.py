"""Is the neuron ranking significant? Two independent seeds at the default allocation.

    python -m bench.nvf_stability [--workload workloads/digits_cnn.yaml] [--fraction 0.1]

For each seed: the stratified single-fault injections of the unprotected design at
``--precision`` (0.1: what the optimiser ranks by at its default ±20%, and the
``vulnerability`` command's default), each layer's chi-squared test of whether its neurons'
failure rates differ, and the protected set at ``--fraction``. Printed: Spearman rank
correlation of the per-neuron estimates between the seeds, per layer; the overlap of the two
protected sets with the raw per-neuron ranking and with the rule the tool uses (per neuron
where significant, else by layer). Never asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from accelsim.workload import load_workload
from faults.strata import (
    AllocationSettings,
    NeuronRanking,
    StratifiedInjections,
    adaptive_estimate,
    rank_neurons,
    top_neurons,
)

ROOT = Path(__file__).resolve().parents[1]


def overlap(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[int, int]:
    left = {(k, int(n)) for k, v in a.items() for n in v}
    right = {(k, int(n)) for k, v in b.items() for n in v}
    return len(left & right), len(left)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default=str(ROOT / "workloads" / "digits_cnn.yaml"))
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 1])
    parser.add_argument(
        "--precision",
        type=float,
        default=0.1,
        help="the allocation's precision (the optimiser ranks at half its own)",
    )
    args = parser.parse_args(argv)
    workload = load_workload(args.workload)
    rate = workload.config.faults.rate
    rankings: list[NeuronRanking] = []
    for seed in args.seeds:
        store = StratifiedInjections(workload, samples=args.samples, seed=seed)
        weights = store.weights(None, rate)
        settings = AllocationSettings(precision=args.precision)
        est, trials = adaptive_estimate(store, weights, settings=settings)
        rankings.append(rank_neurons(store, weights, trials))
        print(
            f"seed {seed}: {int(trials.sum()):,} single-fault injections, P(failure) "
            f"{est['failure']:.3e} [{est['lo']:.3e}, {est['hi']:.3e}]"
        )
    a, b = rankings
    print(f"{'layer':<10} {'neurons':>7} {'Spearman':>9} {'chi2 p (seed 0, 1)':>20}")
    for layer, values in a.measured.items():
        if len(values) < 2:
            continue
        rho = spearmanr(values, b.measured[layer]).statistic
        print(
            f"{layer:<10} {len(values):>7} {rho:>9.2f} "
            f"{a.p_values[layer]:>10.3g} {b.p_values[layer]:>9.3g}"
        )
    raw = [NeuronRanking(r.measured, r.significant, r.p_values, r.measured) for r in rankings]
    same, size = overlap(top_neurons(raw[0], args.fraction), top_neurons(raw[1], args.fraction))
    print(f"top {args.fraction:.0%} by raw per-neuron estimate: {same} of {size} shared")
    chosen = [top_neurons(a, args.fraction), top_neurons(b, args.fraction)]
    same, size = overlap(*chosen)
    print(f"top {args.fraction:.0%} by the tool's rule: {same} of {size} shared")
    # what matters is the failures a set removes: each seed's set, scored on the other's data
    for mine, other, name in ((0, 1, "seed 0's set"), (1, 0, "seed 1's set")):
        data = rankings[other].measured
        total = sum(float(v.sum()) for v in data.values())
        share = sum(float(data[layer][n].sum()) for layer, n in chosen[mine].items()) / total
        own = sum(float(data[layer][n].sum()) for layer, n in chosen[other].items()) / total
        print(
            f"{name} removes {share:.1%} of seed {args.seeds[other]}'s measured failures "
            f"(that seed's own set: {own:.1%})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
