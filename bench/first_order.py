"""First order against direct Monte-Carlo on the digits CNN, across 1-300 faults per inference,
unprotected and with the 16 accumulator MSBs hardened.

    python -m bench.first_order [--injections 4000] [--samples 64]

For each rate: the first-order P(failure) of :mod:`faults.strata` (per-sample model, with its
95% interval and the injections it used) and a plain rate-mode campaign (Wilson 95%) on the
same samples, and their ratio. Printed, never asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from accelsim.workload import load_workload
from faults.campaign import CampaignSettings, campaign
from faults.strata import StratifiedInjections, adaptive_estimate
from optimizer.estimators import design_exposure

ROOT = Path(__file__).resolve().parents[1]
MSBS = "[" + ",".join(str(b) for b in range(16, 32)) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=4000)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args(argv)
    base = ROOT / "workloads" / "digits_cnn.yaml"
    print(
        f"{'design':<12} {'faults/inf':>10} {'first order [95%]':>28} {'campaign [95%]':>28} "
        f"{'injections':>10} {'MC/FO':>6}"
    )
    for design, extra in (
        ("unprotected", []),
        ("16 acc MSBs", [f"accelerator.protection.hardened_bits.accumulator={MSBS}"]),
    ):
        workload = load_workload(base, [f"dataset.samples={args.samples}", *extra])
        store = StratifiedInjections(workload, samples=args.samples, seed=args.seed)
        exposure = design_exposure(workload)
        for rate in (1.4e-7, 1e-6, 5e-6, 2e-5, 8e-5):
            est, _ = adaptive_estimate(store, store.weights(exposure, rate))
            # enough injections to expect about 40 failures (rare failures need many)
            n = min(40_000, max(args.injections, int(40 / max(est["failure"], 1e-9))))
            mc = campaign(
                workload,
                injections=n,
                samples=args.samples,
                seed=args.seed,
                workers=1,
                settings=CampaignSettings(mode="rate", rate=rate),
            ).summary["sdc"]
            fo = f"{est['failure']:.2e} [{est['lo']:.2e}, {est['hi']:.2e}]"
            direct = f"{mc['rate']:.2e} [{mc['lo']:.2e}, {mc['hi']:.2e}]"
            ratio = mc["rate"] / est["failure"] if est["failure"] else float("nan")
            print(
                f"{design:<12} {est['expected_faults']:>10.1f} {fo:>28} {direct:>28} "
                f"{n:>10,} {ratio:>6.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
