"""The application layer: the one place every package's command-line front end registers with.

``python -m accelsim`` (and the ``accelsim`` script) builds its parser from the sub-commands
that each package's CLI module (:data:`COMMAND_MODULES`) adds in its ``register(subparsers)``.
Those modules import this one and their own package, never each other. What they share lives
here: the consoles, the workload arguments (``workload``, ``--out``, ``--set``), the output
folder of a workload, and the exit status of a user error.

Importing this module, or a CLI module, must stay cheap (``--help`` is instant): the library a
command drives is imported inside the command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path

from rich.console import Console
from rich_argparse import RichHelpFormatter

from .errors import AccelsimError

# a pipe or CI log gets a report wide enough for the per-layer table (a terminal keeps its own)
console = Console(stderr=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True)

# The CLI modules, in the order their sub-commands appear in --help; each has register(subparsers).
COMMAND_MODULES = ("accelsim.cli", "faults.cli", "optimizer.cli")

USER_ERROR_EXIT = 2  # DESIGN.md: a user-input error exits 2 with one line, no traceback
INTERRUPTED_EXIT = 130  # the shell's status for SIGINT

Command = Callable[[argparse.Namespace], int]


def add_command(subparsers, name: str, *, help: str, func: Command) -> argparse.ArgumentParser:
    """A sub-command parser (rich help) that runs ``func(args)``; the caller adds its options."""
    parser = subparsers.add_parser(name, help=help, formatter_class=RichHelpFormatter)
    parser.set_defaults(func=func)
    return parser


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
    """Load the command's workload (with its ``--set`` overrides) and its output folder:
    ``--out``, else ``out/<workload name>/<subfolder>``."""
    from .workload import load_workload

    scalesim_cfg = getattr(args, "scalesim_cfg", None)
    if scalesim_cfg is not None:  # like SCALE-Sim's `scale.py -c cfg -t topology.csv`
        from .topology import workload_from_scalesim

        workload = workload_from_scalesim(scalesim_cfg, args.workload, overrides=args.set)
    else:
        workload = load_workload(args.workload, args.set)
    out_dir = Path(args.out) if args.out else default_out_dir(workload.name) / subfolder
    return workload, out_dir


FIGURE_FORMATS = ("png", "pdf", "svg")


def add_plot_arguments(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``--plot DIR`` and ``--format``: the figures of a command, for papers."""
    parser.add_argument("--plot", metavar="DIR", help=f"write {what} to DIR")
    parser.add_argument(
        "--format",
        choices=FIGURE_FORMATS,
        default="png",
        help="figure file format (png at 300 dpi; pdf and svg are vector)",
    )


def registered_commands() -> Iterator[Callable[[object], None]]:
    """Each CLI module's ``register``. The modules ship in this one distribution, so a module
    that cannot be imported is a broken install, reported as such, never skipped."""
    for name in COMMAND_MODULES:
        yield import_module(name).register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m accelsim",
        description="Cycle-level DNN accelerator simulator with fault injection and "
        "cross-layer fault-tolerance optimisation.",
        formatter_class=RichHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in registered_commands():
        register(subparsers)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed sub-command; a user error prints its one line and exits 2."""
    try:
        return args.func(args)
    except AccelsimError as exc:
        if exc.file is None and getattr(args, "workload", None):
            exc.file = str(args.workload)  # a config key without a file: it is the workload's
        err_console.print(
            f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True
        )
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return INTERRUPTED_EXIT


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))
