"""Certified optimisation on the shipped problem (``workloads/digits_optimize.yaml``): for each
seed, the returned design's direct-campaign P(failure) and interval next to its target, the
time per certified optimisation, and (``--compare``) random search at the same budget.

    python -m bench.certified --seeds 0 1 2 3 4 --budget 30 [--compare]

Figures are printed; nothing is asserted. Runs share one cache of injection records, so the
first seed pays for most of the single-fault injections.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from accelsim.workload import load_workload
from optimizer.search import optimize

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default=str(ROOT / "workloads" / "digits_optimize.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--compare", action="store_true", help="also random search")
    parser.add_argument("--out", default="out/bench-certified")
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        workload = load_workload(args.workload, [f"optimize.seed={seed}"])
        started = time.perf_counter()
        result = optimize(
            workload, budget=args.budget, out_dir=args.out, compare=args.compare, with_fixed=False
        )
        seconds = time.perf_counter() - started
        row = {"seed": seed, "seconds": seconds}
        for name, search in (("bo", result.search), ("random", result.comparison)):
            if search is None:
                continue
            best = search.best
            cert = None if best is None else best.metrics.get("certificate")
            verdicts = [
                e.metrics["certificate"]["verdict"]
                for e in search.evaluations
                if "certificate" in e.metrics
            ]
            row[name] = {
                "objective": None if best is None else best.objective,
                "design": None if best is None else result.config.readable(best.design),
                "certificate": cert,
                "certificates_run": len(verdicts),
                "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
            }
        rows.append(row)
        bo = row["bo"]
        cert = bo["certificate"]
        text = (
            "no certified design"
            if cert is None
            else (
                f"area {bo['objective']:,.0f} um2  MC P(fail) {cert['failure']:.2e} "
                f"[{cert['lo']:.2e}, {cert['hi']:.2e}] upper {cert['upper']:.2e} <= "
                f"{cert['target']:.0e} on {cert['injections']:,} injections"
            )
        )
        print(
            f"seed {seed}: {text}; {bo['certificates_run']} certificates, {seconds:.0f} s",
            flush=True,
        )
        if "random" in row:
            found = row["random"]["objective"]
            print(
                "         random search: "
                + ("no certified design" if found is None else f"area {found:,.0f} um2"),
                flush=True,
            )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench.json").write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
