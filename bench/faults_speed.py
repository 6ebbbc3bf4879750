"""Fault-injection speed, as ratios measured in one run on this machine (printed, never asserted).

Every figure comes from this process, serial (``workers=1``, BLAS and torch on one thread
each), after a warm-up that loads the
Numba kernels; the golden run is timed apart. Each figure is the fastest of ``--repeats``
runs of the same work (3 by default: the machine may be shared, and the fastest run is the
one least disturbed), the CPU figure that run's; ours and the torch floor alike. Targets
(issue 14) are printed beside them.

1. **digits CNN at the demo's fault rate** (``workloads/digits_cnn.yaml``: 2e-6 flips per bit
   per cycle, 7.3 faults per inference, every PE register class): injections per second of
   :func:`faults.campaign.campaign` end to end — draws, batched faulty inferences, outcomes as
   columns, the binary log (a block per chunk, fsynced), the tallies, the summary
   ``faults.json`` and the tables ``injections.csv`` / ``faults.csv`` — against the
   one-at-a-time injector
   (:func:`faults.inject.faulty_inference`) on the same faults. Target >= 10,000/s.
2. **digits CNN, one single-bit fault per injection** (``CampaignSettings(mode="single")``):
   the campaign end to end and the batched computation alone
   (:func:`faults.batched.faulty_outputs` on the chunks the runner hands the campaign
   (:func:`faults.runner.chunk_for`, printed), and on the chunks of 2048 in which the
   vulnerability study computes its single-fault injections; no draw, outcome or log), each
   divided by the **torch floor** measured in this process
   (:func:`bench.torch_floor.torch_single_fault_floor`: the same float CNN, batches of 64,
   one bit of the int8 image of one output value flipped per sample by a forward hook, one
   thread — a faulty output per injection at torch's cost, with no accelerator modelled).
   Target >= 2x the floor.
3. **ResNet-18 at 64x64, single fault** (``workloads/resnet18.yaml``, one random input, 16x16
   ws array): the campaign end to end, and the torch floor of the same float ResNet-18.
   Target >= 1,000/s.
4. **PyTorchFI / MRFI**: measured only if importable here (``tools/pytorchfi_bench.py``);
   otherwise the run says they are not installed.

::

    python bench/faults_speed.py [--injections 5000] [--resnet-injections 1000] [--no-resnet]
                                 [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from accelsim import load_workload  # noqa: E402
from bench.torch_floor import torch_single_fault_floor  # noqa: E402
from faults import strata  # noqa: E402
from faults.batched import faulty_outputs  # noqa: E402
from faults.campaign import (  # noqa: E402
    CampaignSettings,
    campaign,
    draw_batch,
    draw_faults,
    prepare,
    run_injection,
)
from faults.fault import inference_faults  # noqa: E402
from faults.inject import faulty_inference  # noqa: E402
from faults.runner import TaskSpec, chunk_for  # noqa: E402

PFI_TOOL = ROOT / "tools" / "pytorchfi_bench.py"
STRATA_CHUNK = strata.CHUNK  # per call of the vulnerability study's single-fault injections
DEMO_RATE_TARGET = 10_000  # injections/s, digits CNN at the demo's rate, end to end
FLOOR_TARGET = 2.0  # single-fault injections/s over the torch floor
RESNET_TARGET = 1_000  # ResNet-18 64x64 single-fault injections/s
console = Console(width=80)  # the report fits 80 columns, piped or not


def fastest(repeats: int, work) -> Stopwatch:
    """The :class:`Stopwatch` of the fastest of ``repeats`` runs of ``work()``."""
    best = None
    for _ in range(max(1, repeats)):
        with Stopwatch() as watch:
            work()
        if best is None or watch.wall < best.wall:
            best = watch
    return best


class Stopwatch:
    """Wall and process CPU seconds of a block (the machine may be shared: CPU time shows how
    much of the wall time this process actually ran)."""

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def measure_campaign(
    workload_path: Path,
    overrides: list[str],
    settings: CampaignSettings | None,
    *,
    samples: int,
    injections: int,
    one_at_a_time: int = 0,
    repeats: int = 3,
) -> dict:
    """Our campaign end to end (with its log), the batched computation alone, and optionally
    the one-at-a-time injector on the first ``one_at_a_time`` of the same faults."""
    workload = load_workload(workload_path, overrides)
    settings = settings or CampaignSettings.from_config(
        workload.config.faults, source=workload.source
    )
    start = time.perf_counter()
    ctx = prepare(workload, settings, samples=samples)
    golden_s = time.perf_counter() - start
    for index in range(8):  # load the Numba kernels and what a campaign imports lazily
        run_injection(TaskSpec(index, 999), ctx)
    campaign(workload, injections=8, settings=settings, seed=999, workers=1, context=ctx)
    results = []

    def run_campaign() -> None:
        with tempfile.TemporaryDirectory() as out_dir:
            results.append(
                campaign(
                    workload,
                    injections=injections,
                    settings=settings,
                    seed=0,
                    workers=1,
                    context=ctx,
                    out_dir=out_dir,
                )
            )

    campaign_time = fastest(repeats, run_campaign)
    result = results[-1]
    samples_, table = draw_batch(range(injections), 0, ctx)
    runner_chunk = chunk_for(run_injection, ctx, injections)
    rates = {"runner_chunk": runner_chunk}
    for name, size in (("batched", runner_chunk), ("batched_strata", STRATA_CHUNK)):

        def compute(size: int = size) -> None:
            for first in range(0, injections, size):  # the chunks the caller computes
                chunk = range(first, min(first + size, injections))
                part = table.of_injections(chunk.start, chunk.stop)
                faulty_outputs(ctx.golden, samples_[chunk], part)

        batched_time = fastest(repeats, compute)
        rates[name] = injections / batched_time.wall
        rates[f"{name}_cpu"] = injections / batched_time.cpu
    figures = {
        "golden_s": golden_s,
        "injections": injections,
        "campaign": injections / campaign_time.wall,
        "campaign_cpu": injections / campaign_time.cpu,
        **rates,
        "faults_per_inference": result.faults_per_inference,
        "sdc": result.summary["sdc"],
    }
    if one_at_a_time:
        draws = [draw_faults(TaskSpec(i, 0), ctx) for i in range(one_at_a_time)]

        def one_by_one(chosen) -> None:
            for sample, faults in chosen:
                pe = [f for f in faults if not f.is_sram]
                sram = [f for f in faults if f.is_sram]
                faulty_inference(ctx.golden, sample, inference_faults(pe), sram=sram)

        one_by_one(draws[:20])  # Numba compiled and loaded first (a cold cache took 45 s)
        with Stopwatch() as one_time:  # slow and steady: one run
            one_by_one(draws)
        figures["one_at_a_time"] = one_at_a_time / one_time.wall
        figures["one_at_a_time_cpu"] = one_at_a_time / one_time.cpu
        figures["one_at_a_time_injections"] = one_at_a_time
    return figures


def fastest_floor(repeats: int, name: str, **kwargs) -> dict:
    """The fastest of ``repeats`` runs of :func:`bench.torch_floor.torch_single_fault_floor`."""
    runs = [torch_single_fault_floor(name, **kwargs) for _ in range(max(1, repeats))]
    return max(runs, key=lambda run: run["injections_per_s"])


def fault_injectors() -> dict[str, str]:
    """Which third-party injectors this interpreter can import, and what that means here."""
    found = {}
    for name, module in (("PyTorchFI", "pytorchfi"), ("MRFI", "mrfi")):
        found[name] = "importable" if importlib.util.find_spec(module) else "not installed"
    return found


def measure_pytorchfi(args: list[str]) -> dict | str:
    proc = subprocess.run(
        [sys.executable, str(PFI_TOOL), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return f"PyTorchFI failed: {proc.stderr.strip().splitlines()[-1:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    # one core for everyone: BLAS would otherwise use every core, torch runs one thread
    with threadpool_limits(limits=1, user_api="blas"):
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=5000, help="digits CNN, each run")
    parser.add_argument("--resnet-injections", type=int, default=1000)
    parser.add_argument("--resnet-size", type=int, default=64)
    parser.add_argument("--no-resnet", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="each figure: the fastest run")
    args = parser.parse_args(argv)
    n = args.injections
    repeats = args.repeats
    digits = ROOT / "workloads" / "digits_cnn.yaml"
    single = CampaignSettings(mode="single")

    demo = measure_campaign(
        digits, [], None, samples=64, injections=n, one_at_a_time=min(n, 1000), repeats=repeats
    )
    one = measure_campaign(digits, [], single, samples=64, injections=n, repeats=repeats)
    floor = fastest_floor(repeats, "digits_cnn", injections=max(n, 6400), batch=64)

    table = Table(title="fault-injection speed (serial, fastest of the runs)", box=box.SIMPLE)
    table.add_column("injections/s of", justify="left")
    table.add_column("wall", justify="right")
    table.add_column("CPU", justify="right")
    table.add_column("ratio [target]", justify="left")

    def add(title: str, figures: dict, key: str, ratio: str = "") -> None:
        table.add_row(title, rate(figures[key]), rate(figures[f"{key}_cpu"]), ratio)

    add(
        f"digits, demo rate ({demo['faults_per_inference']:.1f}/inf.)",
        demo,
        "campaign",
        f"{demo['campaign'] / DEMO_RATE_TARGET:.2f} of target [>= 1]",
    )
    add(f"  batched compute ({demo['runner_chunk']}/chunk)", demo, "batched")
    add(
        "  one at a time",
        demo,
        "one_at_a_time",
        f"campaign {demo['campaign'] / demo['one_at_a_time']:.1f}x this",
    )
    floor_rate = floor["injections_per_s"]
    add(
        "digits, single fault",
        one,
        "campaign",
        f"{one['campaign'] / floor_rate:.2f}x floor [>= {FLOOR_TARGET:g}x]",
    )
    add(
        f"  batched compute ({one['runner_chunk']}/chunk)",
        one,
        "batched",
        f"{one['batched'] / floor_rate:.2f}x floor [>= {FLOOR_TARGET:g}x]",
    )
    add(
        f"  the same, chunks of {STRATA_CHUNK}",
        one,
        "batched_strata",
        f"{one['batched_strata'] / floor_rate:.2f}x floor [>= {FLOOR_TARGET:g}x]",
    )
    table.add_row("  torch floor", rate(floor_rate), rate(floor["injections_per_cpu_s"]), "")
    if not args.no_resnet:
        size = args.resnet_size
        resnet = measure_campaign(
            ROOT / "workloads" / "resnet18.yaml",
            [f"model.input_size={size}"],
            single,
            samples=1,
            injections=args.resnet_injections,
            repeats=repeats,
        )
        resnet_floor = fastest_floor(
            repeats,
            "resnet18",
            injections=max(args.resnet_injections, 64),
            batch=64,
            input_size=size,
        )
        add(
            f"ResNet-18 {size}x{size}, single fault",
            resnet,
            "campaign",
            f"{resnet['campaign'] / RESNET_TARGET:.2f} of target [>= 1]",
        )
        add(
            f"  batched compute ({resnet['runner_chunk']}/chunk)",
            resnet,
            "batched",
            f"{resnet['batched'] / resnet_floor['injections_per_s']:.2f}x floor",
        )
        table.add_row(
            "  torch floor",
            rate(resnet_floor["injections_per_s"]),
            rate(resnet_floor["injections_per_cpu_s"]),
            "",
        )
    console.print(table)
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    console.print(
        f"one thread (workers=1, BLAS and torch limited to 1); load average (1, 5, 15 min) "
        f"at the end: {load} on {os.cpu_count()} cores; CPU: per second of this process's "
        "CPU time.\n"
        f"{n:,} injections per digits figure ({demo['one_at_a_time_injections']:,} one at a "
        f"time); each figure the fastest of {repeats} runs (one at a time: one run); golden "
        f"run ({demo['golden_s']:.2f} s) apart; campaigns end to end with their log, summary "
        "and CSV tables. Demo rate: workloads/digits_cnn.yaml's faults: section.\n"
        f"torch floor: torch {floor['torch']}, 1 thread, float32, batches of 64; a forward "
        "hook flips one bit of the int8 image of one output value of one random conv/linear "
        "layer per sample; top-1 compared. No accelerator modelled."
    )
    injectors = fault_injectors()
    for name, state in injectors.items():
        if state != "importable":
            console.print(f"{name}: {state} in this environment, not measured.")
        elif name == "PyTorchFI":
            pfi = measure_pytorchfi(["--model", "digits_cnn", "--injections", str(n)])
            if isinstance(pfi, str):
                console.print(pfi)
            else:
                figures = ", ".join(
                    f"{mode} {rate(pfi[mode]['injections_per_s'])}"
                    for mode in ("weight", "neuron", "neuron_batched")
                )
                console.print(f"PyTorchFI on the digits CNN: {figures}")
        else:
            console.print(f"{name}: importable, but this bench has no driver for it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
