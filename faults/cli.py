"""The faults package's sub-commands: ``inject``, ``vulnerability`` and ``baselines``.

``inject`` runs the workload's fault campaign alone. ``vulnerability`` measures BVF and NVF
(:func:`faults.vulnerability.vulnerability_factors`, records cached), shows them with their
intervals, says per layer whether the NVF ranking is significant, writes
``vulnerability.json`` and, with ``--plot DIR``, ``bvf_heatmap.png``, ``nvf_<layer>.png`` and
``accuracy_vs_rate.png``. ``baselines``: the fixed protection designs side by side (area,
cycles, clean accuracy, first-order P(failure) with interval and upper bound, and a direct
Monte-Carlo certificate against ``--target``), written to ``baselines.json``.

This module parses and dispatches; the tables live in :mod:`faults.vulnerability_report`, the
campaign with its progress in :mod:`faults.console_steps`. It imports only the application
layer (:mod:`accelsim.app`) and this package (DESIGN.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from accelsim import app
from accelsim.app import (
    FRACTION,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    PROBABILITY,
    add_command,
    add_plot_arguments,
    add_workload_arguments,
    bounded,
    scheduler_address,
    workers_option,
    workload_and_out_dir,
)
from accelsim.outputs import prepare_folder

# the defaults the help text names (faults.vulnerability.allocation_settings(); a test checks
# they agree): importing that module here would slow every command's start-up
# the models of the files these commands write (accelsim/schemas.py), named, not imported
FILE_MODELS = {
    "faults.json": "faults.records:CampaignDocument",
    "injections.csv": "faults.records:InjectionRecord",
    "faults.csv": "faults.records:FaultRecord",
    "baselines.json": "faults.records:BaselinesDocument",
    "vulnerability.json": "faults.records:VulnerabilityDocument",
}
HELP_DEFAULTS = {"precision": 0.1, "pilot": 64, "max_injections": 200_000, "confidence": 0.95}
CERTIFY_MAX = 60_000  # faults.certify.CertifySettings().max_injections (the same test)


def add_measurement_arguments(parser: argparse.ArgumentParser) -> None:
    """The workload arguments and the options of the measurement (vulnerability, baselines)."""
    d = HELP_DEFAULTS
    add_workload_arguments(parser, set_example="dataset.samples=16")
    parser.add_argument(
        "--seed", type=NON_NEGATIVE_INT, help="seed of the injections (default faults.seed)"
    )
    parser.add_argument(
        "--precision",
        type=bounded(float, gt=0, le=1),
        help="stop allocating injections when the unprotected design's "
        f"interval half-width is within this of its estimate "
        f"({d['precision']})",
    )
    parser.add_argument(
        "--pilot",
        type=POSITIVE_INT,
        help=f"injections per (layer, class, bit) stratum to start with ({d['pilot']})",
    )
    parser.add_argument(
        "--max-injections",
        type=POSITIVE_INT,
        help=f"most injections of the measurement ({d['max_injections']:,})",
    )
    parser.add_argument(
        "--confidence", type=PROBABILITY, help=f"of every interval ({d['confidence']})"
    )
    parser.add_argument(
        "--samples", type=POSITIVE_INT, help="test samples the injections draw from"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="measure again (do not read or write the cache folder's vf/)",
    )


def measure(args: argparse.Namespace, workload, console: Console):
    """The workload's vulnerability factors (a spinner while they are measured)."""
    with console.status("vulnerability factors: stratified single-fault injections"):
        from .vulnerability import DEFAULT_CACHE_DIR, vulnerability_factors  # after the spinner

        return vulnerability_factors(
            workload,
            precision=args.precision,
            pilot=args.pilot,
            max_injections=args.max_injections,
            confidence=args.confidence,
            seed=args.seed,
            samples=args.samples,
            cache_dir=None if args.no_cache else DEFAULT_CACHE_DIR,
        )


def cmd_inject(args: argparse.Namespace) -> int:
    from accelsim.errors import AccelsimError

    from .console_steps import protection_for_run, run_campaign_with_progress

    workload, out_dir = workload_and_out_dir(args)
    if workload.config.faults is None and not any(s.startswith("faults.") for s in args.set):
        raise AccelsimError(
            "the workload has no faults: section (add one or use --set faults.rate=...)",
            file=args.workload,
            key="faults",
        )
    _, protected = protection_for_run(workload, app.console)
    run_campaign_with_progress(
        workload,
        out_dir,
        app.console,
        protected=protected,
        injections=args.injections,
        workers=args.workers,
        scheduler=args.scheduler,
        dask_workers=args.dask_workers,
    )
    from .records import FAULTS_CSV, INJECTIONS_CSV

    app.console.print(
        f"tables for pandas: [bold]{out_dir / INJECTIONS_CSV}[/] (one row per injection), "
        f"[bold]{out_dir / FAULTS_CSV}[/] (one row per fault)"
    )
    return 0


def cmd_vulnerability(args: argparse.Namespace, console: Console | None = None) -> int:
    from accelsim.jsonio import write_json_atomic

    from .vulnerability_report import (
        accuracy_points,
        bvf_tables,
        layer_table,
        nvf_table,
        summary_lines,
    )

    console = console or app.console
    if args.plot:
        prepare_folder(args.plot, key="--plot")
    workload, out_dir = workload_and_out_dir(args)
    vf = measure(args, workload, console)
    for table in bvf_tables(vf):
        console.print(table)
    console.print(layer_table(vf))
    if vf.nvf is not None:
        console.print(nvf_table(vf))
    else:
        console.print(f"[yellow]{vf.nvf_unavailable}[/]")
    for line in summary_lines(vf):
        console.print(line)
    document = vf.to_dict()
    if args.plot:
        from . import plots

        plot_dir = Path(args.plot)
        fmt = args.format
        written = [plots.bvf_heatmap(vf, plot_dir / f"bvf_heatmap.{fmt}", fmt=fmt)]
        written += plots.nvf_distributions(vf, plot_dir, fmt=fmt)
        points = accuracy_points(workload, vf, injections=args.curve_injections, seed=vf.seed)
        written.append(
            plots.accuracy_vs_rate(
                points,
                plot_dir / f"accuracy_vs_rate.{fmt}",
                title=f"{workload.name}: accuracy under faults",
                unit=vf.unit,
                fmt=fmt,
            )
        )
        document["accuracy_vs_rate"] = points
        for path in written:
            console.print(f"wrote [bold]{path}[/]")
    write_json_atomic(out_dir / "vulnerability.json", document)
    console.print(f"wrote [bold]{out_dir / 'vulnerability.json'}[/]")
    return 0


def cmd_baselines(args: argparse.Namespace, console: Console | None = None) -> int:
    from accelsim.jsonio import write_json_atomic

    from .certify import CertifySettings
    from .protection import check_target, compare_baselines
    from .records import BASELINES_SCHEMA_VERSION
    from .vulnerability_report import cost_table, reliability_table, summary_lines

    console = console or app.console
    check_target(args.target)
    if args.rate is not None:
        args.set = [*args.set, f"faults.rate={args.rate}"]
    if args.unit is not None:
        args.set = [*args.set, f"faults.unit={args.unit}"]
    workload, out_dir = workload_and_out_dir(args)
    if args.certify_max is not None and args.certify_max < 0:
        from accelsim.errors import AccelsimError

        raise AccelsimError(f"{args.certify_max} injections", file="--certify-max", allowed=">= 0")
    vf = measure(args, workload, console)
    certify = None
    if args.certify_max != 0:
        defaults = CertifySettings()
        maximum = args.certify_max or defaults.max_injections
        certify = CertifySettings(
            confidence=vf.confidence,
            samples=vf.samples,
            max_injections=maximum,
            min_injections=min(defaults.min_injections, maximum),
        )
    with console.status("baselines: simulating, estimating and certifying each design"):
        rows = compare_baselines(
            workload,
            vf,
            p=args.p,
            k=args.k,
            redundant_units=args.redundant_units,
            target=args.target,
            certify=certify,
        )
    faults = workload.config.faults
    console.print(cost_table(rows))
    console.print(
        reliability_table(
            rows, rate=faults.rate, unit=faults.unit, target=args.target, confidence=vf.confidence
        )
    )
    for line in summary_lines(vf)[:1]:
        console.print(line)
    batch = max(workload.config.batch, 1)
    for row in rows:  # the row's energy_pj is per batch (SimResult.totals): say so in a key
        if row.get("energy_pj") is not None:
            row["energy_pj_per_batch"] = row["energy_pj"]
            row["energy_pj_per_inference"] = row["energy_pj"] / batch
    write_json_atomic(
        out_dir / "baselines.json",
        {
            "schema_version": BASELINES_SCHEMA_VERSION,  # faults.records
            "workload": workload.name,
            "rate": faults.rate,
            "unit": faults.unit,
            "target": args.target,
            "p": args.p,
            "k": args.k,
            "vulnerability_key": vf.key,
            "vulnerability_injections": vf.injections,
            "rows": rows,
        },
    )
    console.print(f"wrote [bold]{out_dir / 'baselines.json'}[/]")
    return 0


def register(subparsers) -> None:
    """Add ``inject``, ``vulnerability`` and ``baselines`` to ``python -m accelsim``, and
    their tables to ``report``."""
    for source in (
        app.TableSource(
            "injections",
            "injections.csv",
            "one row per injection: sample, faults, outcome (masked, SDC, RMSE)",
            default_for=("inject",),
        ),
        app.TableSource(
            "faults",
            "faults.csv",
            "one row per fault: layer, fold, register, PE row/col, cycle, bit, outcome",
        ),
        app.TableSource(
            "baselines",
            "baselines.json",
            "one row per fixed protection design: area, cycles, P(failure), certificate",
            reader="faults.records:baseline_records",
            default_for=("baselines",),
        ),
        app.TableSource(
            "bvf",
            "vulnerability.json",
            "one row per (layer, register class, bit): BVF with its interval",
            reader="faults.records:bvf_records",
            default_for=("vulnerability",),
        ),
    ):
        app.register_table(source)
    # the files' models, by name only: importing them here would slow every start-up
    for file, model in FILE_MODELS.items():
        app.register_schema(file, model)
    inject = add_command(
        subparsers,
        "inject",
        help="run the workload's fault campaign alone (--resume continues one)",
        func=cmd_inject,
    )
    add_workload_arguments(inject, set_example="faults.rate=1e-7")
    inject.add_argument("--injections", type=POSITIVE_INT, help="override faults.injections")
    inject.add_argument(
        "--workers",
        type=workers_option,
        help="local worker processes, or auto (default: this process unless the campaign is "
        "long enough for one per core to finish sooner)",
    )
    inject.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="tcp://HOST:PORT",
        help="run on this Dask cluster (default: $DASK_SCHEDULER_ADDRESS)",
    )
    inject.add_argument(
        "--dask-workers",
        type=POSITIVE_INT,
        metavar="N",
        help="start a local Dask cluster of N worker processes",
    )

    vulnerability = add_command(
        subparsers,
        "vulnerability",
        help="bit and neuron vulnerability factors (BVF, NVF) with intervals",
        func=cmd_vulnerability,
    )
    add_measurement_arguments(vulnerability)
    add_plot_arguments(vulnerability, what="the BVF heat map, NVF and accuracy-vs-rate figures")
    vulnerability.add_argument(
        "--curve-injections",
        type=POSITIVE_INT,
        default=60,
        help="injections per point of accuracy_vs_rate.png",
    )

    baselines = add_command(
        subparsers,
        "baselines",
        help="compare no protection, full TMR, neuron-only, bit-only, cross-layer",
        func=cmd_baselines,
    )
    add_measurement_arguments(baselines)
    baselines.add_argument(
        "--p", type=FRACTION, default=0.1, help="protected fraction of neurons (%(default)s)"
    )
    baselines.add_argument(
        "--k",
        type=NON_NEGATIVE_INT,
        default=8,
        help="hardened bits per register class (%(default)s)",
    )
    baselines.add_argument(
        "--rate", type=NON_NEGATIVE_FLOAT, help="fault rate (default faults.rate)"
    )
    baselines.add_argument("--unit", choices=("bit_cycle", "ber"), help="unit of the rate")
    baselines.add_argument(
        "--redundant-units",
        type=NON_NEGATIVE_INT,
        help="S (default: the workload's, else the array's columns)",
    )
    baselines.add_argument(
        "--target",
        type=PROBABILITY,
        default=1e-3,
        help="P(failure) per inference each design is certified against (%(default)s)",
    )
    baselines.add_argument(
        "--certify-max",
        type=NON_NEGATIVE_INT,
        metavar="N",
        help=f"most injections of each certificate ({CERTIFY_MAX:,}; 0 skips the direct campaigns)",
    )
