"""The simulator's sub-commands: ``run``, ``export``, ``schema`` and ``bench``; and the
``accelsim`` entry point, which builds the parser of every package's sub-commands
(:mod:`accelsim.app`).

Like every CLI module it imports the application layer and never another CLI module. ``run``
composes the simulator with the fault steps (:mod:`faults.console_steps`), imported inside the
command so that ``import accelsim`` and ``--help`` stay fast and torch-free (DESIGN.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import app
from .app import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    add_command,
    add_workload_arguments,
    workload_and_out_dir,
)
from .outputs import check_file_target


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=app.console,
        transient=False,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from .hw.module import Tracer
    from .jsonio import write_json_atomic
    from .report import render_simulation
    from .simulation import simulate
    from .trace import write_trace

    console = app.console
    if args.trace:
        check_file_target(args.trace, key="--trace")
    workload, out_dir = workload_and_out_dir(args)
    samples = len(workload.inputs)
    tracer = Tracer(enabled=True) if args.trace else None
    layers = [n for n in workload.graph.nodes]
    from faults.console_steps import protection_for_run, vulnerability_for_run

    # the first-order estimate needs the vulnerability factors; so does protection by NVF
    vf = vulnerability_for_run(workload, console) if args.reliability else None
    vf, protected = protection_for_run(workload, console, vf)
    with _progress() as progress:
        layer_task = progress.add_task("layers (first batch)", total=len(layers), detail="")
        batches = max(1, -(-samples // workload.config.batch))
        batch_task = progress.add_task("batches", total=batches, detail=f"{samples} samples")

        def on_layer(run) -> None:
            progress.update(
                layer_task,
                advance=1,
                detail=f"{run.node.name}: {int(run.end_cycle - run.start_cycle)} cycles",
            )

        def on_batch(done: int, total: int) -> None:
            progress.update(batch_task, completed=done)

        result = simulate(
            workload, tracer=tracer, on_layer=on_layer, on_batch=on_batch, protected=protected
        )
    render_simulation(result, console)
    document = result.to_dict()
    if protected is not None:
        document["protected_neurons"] = {k: [int(c) for c in v] for k, v in protected.items()}
    if workload.config.faults is not None:
        from faults.console_steps import run_campaign_with_progress

        document["faults"] = run_campaign_with_progress(
            workload, out_dir, console, protected=protected
        )
    if args.reliability:
        from faults.console_steps import reliability_for_run

        document["reliability"] = reliability_for_run(workload, vf, protected, console)
    write_json_atomic(out_dir / "result.json", document)
    console.print(f"wrote [bold]{out_dir / 'result.json'}[/]")
    if tracer is not None:
        write_trace(tracer, args.trace, clock_mhz=workload.config.accelerator.clock_mhz)
        console.print(
            f"wrote trace [bold]{args.trace}[/] ({len(tracer.events)} events; open in Perfetto)"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    check_file_target(args.out, key="--out")
    with app.started(f"exporting {args.model} (torch.export, calibration, checks) …"):
        from workloads.export import export_cli

        path = export_cli(
            args.model,
            Path(args.out),
            input_size=args.input_size,
            seed=args.seed,
            calibration=args.calibration,
        )
    app.console.print(f"wrote [bold]{path}[/]")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema_doc import schema_markdown

    print(schema_markdown())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    size = "quick sizes" if args.quick else "full sizes, minutes"
    app.console.print(f"bench {args.which} ({size}): each table prints when it is measured")
    with app.started(f"bench {args.which}: measuring …"):
        from bench.run import main as bench_main

        return bench_main(args.which, quick=args.quick)


def register(subparsers) -> None:
    """Add ``run``, ``export``, ``schema`` and ``bench`` to ``python -m accelsim``."""
    run = add_command(
        subparsers,
        "run",
        help="simulate a workload (and its fault campaign if it has a faults: section)",
        func=cmd_run,
    )
    add_workload_arguments(run, set_example="accelerator.array.rows=32")
    run.add_argument(
        "--trace",
        metavar="FILE",
        help="write a Chrome trace (Perfetto) of module activity (1 cycle = 1 ns)",
    )
    run.add_argument(
        "--scalesim-cfg",
        metavar="CFG",
        help="a SCALE-Sim .cfg; the workload argument is then its topology CSV "
        "(like scale.py -c CFG -t CSV)",
    )
    run.add_argument(
        "--reliability",
        action="store_true",
        help="also report the first-order P(failure) from the vulnerability "
        "factors (measured once per quantisation, cached)",
    )

    export = add_command(
        subparsers,
        "export",
        help="export a PyTorch or ONNX model to an accelsim float graph (needs torch / onnx)",
        func=cmd_export,
    )
    export.add_argument(
        "model",
        help="builtin name (digits_cnn, resnet18, ...), model.onnx or path/to/file.py:factory",
    )
    export.add_argument("--out", required=True, help="output .npz file")
    export.add_argument(
        "--input-size", type=POSITIVE_INT, default=None, help="input height/width for image models"
    )
    export.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    export.add_argument(
        "--calibration",
        metavar="DATA",
        default=None,
        help="real input samples for the activation ranges: .npz with array x "
        "(or one array) or .npy, shaped (samples, C, H, W); default 8 "
        "seeded standard-normal samples",
    )

    add_command(
        subparsers,
        "schema",
        help="print the workload YAML key reference (markdown)",
        func=cmd_schema,
    )

    bench = add_command(
        subparsers, "bench", help="speed benchmarks (printed figures)", func=cmd_bench
    )
    bench.add_argument(
        "which", nargs="?", default="sim", choices=["sim", "faults", "optimizer", "all"]
    )
    bench.add_argument(
        "--quick", action="store_true", help="small sizes, for smoke tests (3-16 s each here)"
    )


def main(argv: list[str] | None = None) -> int:
    """The ``accelsim`` script and ``python -m accelsim``: every registered sub-command."""
    return app.main(argv)


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main())
