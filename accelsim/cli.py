"""``python -m accelsim``: the application layer. Parses arguments, calls library functions.

Only this module reaches into faults/, optimizer/ and workloads/ (lazily, inside the
sub-command), so that ``import accelsim`` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich_argparse import RichHelpFormatter

from .errors import AccelsimError

# a pipe or CI log gets a report wide enough for the per-layer table (a terminal keeps its own)
console = Console(stderr=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def default_out_dir(workload_name: str) -> Path:
    return Path("out") / workload_name


def add_workload_arguments(
    parser: argparse.ArgumentParser, *, set_example: str, out_default: str = "out/<name>"
) -> None:
    """The arguments every workload command shares: the YAML, ``--out`` and ``--set``."""
    parser.add_argument("workload", help="workload YAML file")
    parser.add_argument("--out", help=f"output folder (default {out_default})")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a key, e.g. --set {set_example}",
    )


def workload_and_out_dir(args: argparse.Namespace, subfolder: str = ""):
    """Load the command's workload (with its ``--set`` overrides) and its output folder."""
    from .workload import load_workload

    workload = load_workload(args.workload, args.set)
    out_dir = Path(args.out) if args.out else default_out_dir(workload.name) / subfolder
    return workload, out_dir


def cmd_run(args: argparse.Namespace) -> int:
    from .hw.module import Tracer
    from .jsonio import write_json_atomic
    from .report import render_simulation
    from .simulation import simulate
    from .trace import write_trace

    workload, out_dir = workload_and_out_dir(args)
    samples = len(workload.inputs)
    tracer = Tracer(enabled=True) if args.trace else None
    layers = [n for n in workload.graph.nodes]
    protection = workload.config.accelerator.protection
    vf = protected = None
    needs_nvf = protection.protected_neurons is None and protection.protected_fraction > 0
    if args.reliability or needs_nvf:
        # protection by NVF and the first-order estimate both need the vulnerability factors
        from faults.cli import protected_neurons_for_run, vulnerability_for_run

        vf = vulnerability_for_run(workload, console)
        protected = protected_neurons_for_run(workload, vf)
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
        from faults.cli import run_campaign_for_cli

        document["faults"] = run_campaign_for_cli(workload, out_dir, console, protected=protected)
    if args.reliability:
        from faults.cli import reliability_for_run

        document["reliability"] = reliability_for_run(workload, vf, protected, console)
    write_json_atomic(out_dir / "result.json", document)
    console.print(f"wrote [bold]{out_dir / 'result.json'}[/]")
    if tracer is not None:
        write_trace(tracer, args.trace)
        console.print(
            f"wrote trace [bold]{args.trace}[/] ({len(tracer.events)} events; open in Perfetto)"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from workloads.export import export_cli

    path = export_cli(
        args.model,
        Path(args.out),
        input_size=args.input_size,
        seed=args.seed,
        calibration=args.calibration,
    )
    console.print(f"wrote [bold]{path}[/]")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema_doc import schema_markdown

    print(schema_markdown())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.run import main as bench_main

    return bench_main(args.which, quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m accelsim",
        description="Cycle-level DNN accelerator simulator with fault injection and "
        "cross-layer fault-tolerance optimisation.",
        formatter_class=RichHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="simulate a workload (and its fault campaign if it has a faults: section)",
        formatter_class=RichHelpFormatter,
    )
    add_workload_arguments(run, set_example="accelerator.array.rows=32")
    run.add_argument(
        "--trace", metavar="FILE", help="write a Chrome trace (Perfetto) of module activity"
    )
    run.add_argument(
        "--reliability",
        action="store_true",
        help="also report the first-order P(failure) from the vulnerability "
        "factors (measured once per quantisation, cached)",
    )
    run.set_defaults(func=cmd_run)

    export = sub.add_parser(
        "export",
        help="export a PyTorch or ONNX model to an accelsim float graph (needs torch / onnx)",
        formatter_class=RichHelpFormatter,
    )
    export.add_argument(
        "model",
        help="builtin name (digits_cnn, resnet18, ...), model.onnx or path/to/file.py:factory",
    )
    export.add_argument("--out", required=True, help="output .npz file")
    export.add_argument(
        "--input-size", type=int, default=None, help="input height/width for image models"
    )
    export.add_argument("--seed", type=int, default=0)
    export.add_argument(
        "--calibration",
        metavar="DATA",
        default=None,
        help="real input samples for the activation ranges: .npz with array x "
        "(or one array) or .npy, shaped (samples, C, H, W); default 8 "
        "seeded standard-normal samples",
    )
    export.set_defaults(func=cmd_export)

    schema = sub.add_parser(
        "schema",
        help="print the workload YAML key reference (markdown)",
        formatter_class=RichHelpFormatter,
    )
    schema.set_defaults(func=cmd_schema)

    bench = sub.add_parser(
        "bench", help="speed benchmarks (printed figures)", formatter_class=RichHelpFormatter
    )
    bench.add_argument(
        "which", nargs="?", default="sim", choices=["sim", "faults", "optimizer", "all"]
    )
    bench.add_argument(
        "--quick", action="store_true", help="small sizes (seconds, for smoke tests)"
    )
    bench.set_defaults(func=cmd_bench)

    for extra in _extra_commands():
        extra(sub)
    return parser


def _extra_commands():
    """Sub-commands contributed by faults/ and optimizer/, registered without importing them
    at start-up cost beyond their small cli modules."""
    from importlib import import_module

    for module in ("faults.cli", "optimizer.cli"):
        try:
            mod = import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        yield mod.register


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AccelsimError as exc:
        if exc.file is None and getattr(args, "workload", None):
            exc.file = str(args.workload)  # a config key without a file: it is the workload's
        err_console.print(
            f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True
        )
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
