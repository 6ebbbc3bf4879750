"""Fault-injection speed: injections per second of our campaign against two baselines.

On the digits CNN (``workloads/digits_cnn.yaml``, 64 test samples) and on ResNet-18's layers
(``workloads/resnet18.yaml`` at 64x64, one random input, 16x16 WS array), one single-bit
transient fault in a PE register per injection (``CampaignSettings(mode="single")``):

1. **campaign** — :func:`faults.campaign.campaign`, serial, end to end (draw the fault, faulty
   inference with the golden run cached, only the fault's output tile recomputed, faults that
   cannot reach an output dropped early, later layers re-run only if the layer's output
   changed; outcome; JSONL log). Also timed on the same faults: the batched computation alone
   (:func:`faults.batched.faulty_outputs` on chunks of 256, no draw, outcome or log), and
   the one-at-a-time injector :func:`faults.inject.faulty_inference`.
2. **full re-run** — :func:`faults.inject.full_faulty_inference` on the same faults: every
   layer of the sample re-simulated with the fault (what a simulator without these shortcuts
   does per injection).
3. **PyTorchFI** — the software fault injector (PyPI ``pytorchfi``) on the same float model,
   batch 1 (one faulty inference per injection, as ours) and batched (one fault per batch
   element per forward pass), run by ``tools/pytorchfi_bench.py`` in its own virtualenv.
   Note what differs: PyTorchFI flips a bit of a value's 8-bit image in a float model; ours
   flips a bit of a PE register at a cycle of the simulated integer accelerator.

Every figure is measured by this run on this machine and printed, never asserted. ::

    python bench/faults_speed.py [--injections 5000] [--resnet-injections 300] [--no-resnet]
                                 [--pfi-venv /tmp/pfi-venv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from accelsim import load_workload  # noqa: E402
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
from faults.inject import faulty_inference, full_faulty_inference  # noqa: E402
from faults.runner import TaskSpec  # noqa: E402

PFI_TOOL = ROOT / "tools" / "pytorchfi_bench.py"
DEFAULT_VENV = Path("/tmp/pfi-venv")
SETTINGS = CampaignSettings(mode="single")
CHUNK = 256  # injections per chunk of a long serial campaign (faults.runner)
console = Console(width=110)  # tables stay whole when piped to a file


def measure_ours(
    workload_path: Path,
    overrides: list[str],
    *,
    samples: int,
    injections: int,
    full_injections: int,
) -> dict:
    """Our campaign, faulty_inference alone and the full re-run, on the same faults."""
    workload = load_workload(workload_path, overrides)
    start = time.perf_counter()
    ctx = prepare(workload, SETTINGS, samples=samples)
    golden_s = time.perf_counter() - start
    for index in range(8):  # load the Numba kernels and fill the operand caches
        run_injection(TaskSpec(index, 999), ctx)
        sample, faults = draw_faults(TaskSpec(index, 999), ctx)
    full_faulty_inference(ctx.golden, sample, inference_faults(faults))

    start = time.perf_counter()
    result = campaign(
        workload,
        injections=injections,
        settings=SETTINGS,
        samples=samples,
        seed=0,
        workers=1,
        context=ctx,
    )
    campaign_s = time.perf_counter() - start

    samples, table = draw_batch(range(injections), 0, ctx)
    start = time.perf_counter()
    for first in range(0, injections, CHUNK):  # the chunks a serial campaign computes
        chunk = range(first, min(first + CHUNK, injections))
        faulty_outputs(ctx.golden, samples[chunk], table.of_injections(chunk.start, chunk.stop))
    batched_s = time.perf_counter() - start

    draws = [draw_faults(TaskSpec(i, 0), ctx) for i in range(injections)]
    start = time.perf_counter()
    for sample, faults in draws:
        faulty_inference(ctx.golden, sample, inference_faults(faults))
    faulty_s = time.perf_counter() - start
    start = time.perf_counter()
    for sample, faults in draws[:full_injections]:
        full_faulty_inference(ctx.golden, sample, inference_faults(faults))
    full_s = time.perf_counter() - start
    return {
        "golden_s": golden_s,
        "campaign": injections / campaign_s,
        "batched": injections / batched_s,
        "faulty_inference": injections / faulty_s,
        "full": full_injections / full_s,
        "injections": injections,
        "full_injections": full_injections,
        "masked_early": result.masked_early,
        "tiles_recomputed": result.tiles_recomputed,
        "layers_recomputed": result.layers_recomputed,
        "sdc_rate": result.summary["sdc"]["rate"],
    }


def measure_pytorchfi(venv: Path, args: list[str]) -> dict | str:
    """PyTorchFI's figures from tools/pytorchfi_bench.py, or why there are none."""
    python = venv / "bin" / "python"
    if not python.exists():
        return (
            f"PyTorchFI skipped: no virtualenv at {venv}. Create it with:\n"
            f"  python3 -m venv {venv}\n"
            f"  {venv}/bin/pip install torch==2.13.0 numpy\n"
            f"  {venv}/bin/pip install --no-deps pytorchfi"
        )
    proc = subprocess.run([str(python), str(PFI_TOOL), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"PyTorchFI failed: {proc.stderr.strip().splitlines()[-1:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(title: str, ours: dict, pfi: dict | str) -> None:
    table = Table(title=title)
    for column in ("method", "injections", "injections/s", "ours (campaign) ×"):
        table.add_column(column, justify="right")
    rate = ours["campaign"]
    table.add_row("campaign (ours, end to end)", str(ours["injections"]), f"{rate:.1f}", "1.0")
    table.add_row(
        "faulty_outputs (ours, batched, no log)",
        str(ours["injections"]),
        f"{ours['batched']:.1f}",
        "",
    )
    table.add_row(
        "faulty_inference (ours, one at a time)",
        str(ours["injections"]),
        f"{ours['faulty_inference']:.1f}",
        f"{rate / ours['faulty_inference']:.1f}",
    )
    table.add_row(
        "full re-run (ours)",
        str(ours["full_injections"]),
        f"{ours['full']:.2f}",
        f"{rate / ours['full']:.1f}",
    )
    if isinstance(pfi, dict):
        for mode in ("weight", "neuron", "neuron_batched"):
            figures = pfi[mode]
            table.add_row(
                f"PyTorchFI {mode}",
                str(figures["injections"]),
                f"{figures['injections_per_s']:.1f}",
                f"{rate / figures['injections_per_s']:.2f}",
            )
    console.print(table)
    console.print(
        f"  golden run {ours['golden_s']:.1f} s; faults dropped early "
        f"{ours['masked_early']}, tiles recomputed {ours['tiles_recomputed']}, later "
        f"layers re-run {ours['layers_recomputed']}; SDC rate {ours['sdc_rate']:.4f}"
    )
    if isinstance(pfi, str):
        console.print(pfi)
    else:
        console.print(
            f"  PyTorchFI: torch {pfi['torch']}, {pfi['threads']} thread(s), input "
            f"{pfi['input_shape']}, float accuracy {pfi['float_accuracy']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=5000, help="digits CNN")
    parser.add_argument("--resnet-injections", type=int, default=300)
    parser.add_argument("--resnet-size", type=int, default=64)
    parser.add_argument("--no-resnet", action="store_true")
    parser.add_argument("--pfi-venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args(argv)

    digits = measure_ours(
        ROOT / "workloads" / "digits_cnn.yaml",
        ["dataset.samples=64"],
        samples=64,
        injections=args.injections,
        full_injections=min(args.injections, 300),
    )
    pfi = measure_pytorchfi(
        args.pfi_venv,
        ["--model", "digits_cnn", "--samples", "64", "--injections", str(args.injections)],
    )
    report("digits CNN, 64 samples, int8, 8×8 WS: one single-bit fault per injection", digits, pfi)
    if args.no_resnet:
        return 0
    size = args.resnet_size
    resnet = measure_ours(
        ROOT / "workloads" / "resnet18.yaml",
        [f"model.input_size={size}"],
        samples=1,
        injections=args.resnet_injections,
        full_injections=min(args.resnet_injections, 8),
    )
    pfi = measure_pytorchfi(
        args.pfi_venv,
        [
            "--model",
            "resnet18",
            "--input-size",
            str(size),
            "--samples",
            "8",
            "--batch",
            "8",
            "--injections",
            str(args.resnet_injections),
        ],
    )
    report(
        f"ResNet-18 {size}×{size}, 1 input, int8, 16×16 WS: one single-bit fault per injection",
        resnet,
        pfi,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
