"""``python -m accelsim optimize workload.yaml``: search the ``optimize:`` design space.

Kept light: ``register`` only adds the sub-command; the optimiser (Emukit, GPy) is imported
when the command runs. Like every CLI module it imports the application layer
(:mod:`accelsim.app`) and its own package, never another CLI module.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from accelsim import app
from accelsim.app import (
    POSITIVE_INT,
    add_command,
    add_plot_arguments,
    add_workload_arguments,
    scheduler_address,
    workload_and_out_dir,
)
from accelsim.outputs import prepare_folder


def cmd_optimize(args: argparse.Namespace) -> int:
    from accelsim.errors import AccelsimError

    from .pools import pool_from_options
    from .report import render_optimize
    from .search import optimize

    if args.plot:
        prepare_folder(args.plot, key="--plot")
    workload, out_dir = workload_and_out_dir(args)
    if workload.config.optimize is None:
        raise AccelsimError(
            "the workload has no optimize: section", file=args.workload, key="optimize"
        )
    if args.batch_size < 1:
        raise AccelsimError(
            f"must be a positive integer, got {args.batch_size}", key="--batch-size"
        )
    pool = pool_from_options(
        workers=args.workers, scheduler=args.scheduler, dask_workers=args.dask_workers
    )
    try:
        result = _run(args, workload, out_dir, pool, app.console, optimize)
    finally:
        if pool is not None:
            pool.close()
    app.console.print(render_optimize(result))
    app.console.print(f"wrote [bold]{out_dir / 'optimize.json'}[/]")
    if args.plot:
        from .plots import write_plots

        for path in write_plots(result, args.plot, fmt=args.format):
            app.console.print(f"wrote [bold]{path}[/]")
    return 0


def _run(args: argparse.Namespace, workload, out_dir: Path, pool, console, optimize):
    """The search with a progress bar per phase."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from .report import binding_constraints, status_text

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = None

        def on_phase(name: str, total: int) -> None:
            nonlocal task
            if task is not None:
                progress.update(task, detail="")
            task = progress.add_task(name, total=total or None, detail="")

        def on_evaluation(p) -> None:
            best = "no feasible design yet"
            if p.best is not None:
                binding = binding_constraints(p.best)
                best = f"best {p.best.objective:.5g}" + (
                    f" (binding: {', '.join(binding)})" if binding else ""
                )
            last = ("replayed" if p.replayed else "last") + ": " + status_text(p.evaluation)
            progress.update(task, completed=p.index + 1, detail=f"{best} | {last[:60]}")

        from faults.vulnerability import DEFAULT_CACHE_DIR

        return optimize(
            workload,
            out_dir=out_dir,
            # shared by every run (and by vulnerability): its records are keyed by content
            cache_dir=DEFAULT_CACHE_DIR,
            on_evaluation=on_evaluation,
            budget=args.budget,
            method=args.method,
            compare=args.compare,
            with_fixed=not args.no_fixed,
            on_phase=on_phase,
            batch_size=args.batch_size,
            evaluator_pool=pool,
        )


def check_optimize_section(workload) -> None:
    """The ``optimize:`` section, validated by every command (not only ``optimize``)."""
    from .config import parse_optimize

    parse_optimize(workload.config.optimize, workload=workload.config, file=workload.source)


def register(subparsers) -> None:
    """Add the ``optimize`` sub-command to ``python -m accelsim``."""
    app.check_section("optimize", check_optimize_section)
    app.register_schema("optimize.json", "optimizer.records:OptimizeDocument")
    app.register_table(
        app.TableSource(
            "designs",
            "optimize.json",
            "one row per evaluated design: variables, objective, constraints in natural units",
            reader="optimizer.records:evaluation_records",
            default_for=("optimize",),
        )
    )
    parser = add_command(
        subparsers,
        "optimize",
        help="find the cheapest design meeting the optimize: constraints "
        "(Bayesian optimisation; --resume continues a run)",
        func=cmd_optimize,
    )
    add_workload_arguments(parser, set_example="optimize.constraints.min_accuracy=0.9")
    parser.add_argument("--budget", type=int, help="override optimize.budget (evaluations)")
    parser.add_argument(
        "--method", choices=["bo", "random", "exhaustive"], help="override optimize.method"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run random search (BO if --method random) at the same budget",
    )
    parser.add_argument(
        "--no-fixed",
        action="store_true",
        help="skip the fixed protection designs (none, full TMR, ...)",
    )
    add_plot_arguments(parser, what="the convergence and Pareto-front figures")
    parser.add_argument(
        "--batch-size",
        type=POSITIVE_INT,
        default=1,
        metavar="Q",
        help="BO designs proposed and evaluated together per iteration",
    )
    parser.add_argument(
        "--workers",
        type=POSITIVE_INT,
        metavar="N",
        help="evaluate designs on N local worker processes",
    )
    parser.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="ADDRESS",
        help="Dask scheduler (tcp://HOST:PORT) to evaluate designs on "
        "(default: $DASK_SCHEDULER_ADDRESS)",
    )
    parser.add_argument(
        "--dask-workers",
        type=POSITIVE_INT,
        metavar="N",
        help="start a local Dask cluster of N workers to evaluate designs",
    )
