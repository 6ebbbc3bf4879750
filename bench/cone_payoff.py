"""Would recomputing only the receptive-field cone of the changed outputs pay? (issue 14 item 4)

After a fault got through, :func:`faults.batched.faulty_outputs` recomputes each later layer in
full for the injections whose input differs. A cone-limited recompute could at best skip the
output pixels that do not change; the pixels that do change are a subset of the cone, so

    saving <= sum over later conv layers of rows x MACs x (1 - changed fraction)
              / sum of rows x MACs

where *changed fraction* is the share of the layer's output pixels (any channel) that differ
from the golden run, per injection that reaches the layer. This prints that upper bound for
single-bit faults; the real cone (changed inputs dilated by each kernel) saves less, and costs
a bounding box and a partial lowering per injection and layer. ::

    python bench/cone_payoff.py [--injections 512]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faults.batched as batched  # noqa: E402
from accelsim import load_workload  # noqa: E402
from faults.campaign import CampaignSettings, draw_batch, prepare  # noqa: E402

CHUNK = 256


def cone_saving_bound(path: Path, overrides: list[str], samples: int, injections: int) -> float:
    workload = load_workload(path, overrides)
    ctx = prepare(workload, CampaignSettings(mode="single"), samples=samples)
    golden = ctx.golden
    changed: dict[str, list[float]] = {}
    differing = batched._differing

    def recording(golden_, samples_, name, rows, values):
        dirty = differing(golden_, samples_, name, rows, values)
        if len(dirty) and values.ndim == 4:
            reference = golden_.values[name][samples_[dirty.injections]]
            pixels = np.any(dirty.values != reference, axis=1).reshape(len(dirty), -1)
            changed.setdefault(name, []).extend(pixels.mean(axis=1).tolist())
        return dirty

    batched._differing = recording
    try:
        drawn, table = draw_batch(range(injections), 0, ctx)
        for first in range(0, injections, CHUNK):
            last = min(first + CHUNK, injections)
            batched.faulty_outputs(golden, drawn[first:last], table.of_injections(first, last))
    finally:
        batched._differing = differing
    macs = {}
    for node in workload.graph.layers():
        shape = golden.schedules[node.name].shape
        macs[node.output] = shape.M * shape.K * shape.N * shape.groups
    total = sum(len(f) * macs[name] for name, f in changed.items() if name in macs)
    saved = sum(sum(1 - x for x in f) * macs[name] for name, f in changed.items() if name in macs)
    return saved / total if total else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=512)
    args = parser.parse_args(argv)
    cases = [
        ("digits CNN", ROOT / "workloads" / "digits_cnn.yaml", [], 64),
        ("ResNet-18 64x64", ROOT / "workloads" / "resnet18.yaml", ["model.input_size=64"], 1),
    ]
    for title, path, overrides, samples in cases:
        bound = cone_saving_bound(path, overrides, samples, args.injections)
        print(f"{title}: a cone-limited recompute saves at most {bound:.0%} of later-layer MACs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
