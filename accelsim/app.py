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
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from pathlib import Path

from rich.console import Console
from rich_argparse import RichHelpFormatter

from .errors import AccelsimError

# a pipe or CI log gets a report wide enough for the per-layer table (a terminal keeps its own)
console = Console(stderr=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True)

# The CLI modules, in the order their sub-commands appear in --help; each has register(subparsers).
COMMAND_MODULES = ("accelsim.cli", "faults.cli", "optimizer.cli", "accelsim.report_cli")

USER_ERROR_EXIT = 2  # DESIGN.md: a user-input error exits 2 with one line, no traceback
INTERRUPTED_EXIT = 130  # the shell's status for SIGINT

Command = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """A bad option is one line naming it (``error: --workers: ...``) and exit 2, like every
    other user error; argparse's default prints the usage block first."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        err_console.print(
            f"[bold red]error:[/] {self.prog}: {message} (see --help)",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(USER_ERROR_EXIT)


def _number(kind: type, text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def bounded(
    kind: type,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
):
    """An argparse ``type`` for a number within bounds: the same rules as the YAML keys, so
    a CLI option can never carry what the file would refuse."""
    parts = [
        f"{op} {bound:g}"
        for op, bound in ((">=", ge), (">", gt), ("<=", le), ("<", lt))
        if bound is not None
    ]

    def parse(text: str):
        value = _number(kind, text)
        if (
            (ge is not None and value < ge)
            or (gt is not None and value <= gt)
            or (le is not None and value > le)
            or (lt is not None and value >= lt)
        ):
            raise argparse.ArgumentTypeError(
                f"{text} is not allowed (allowed: {' and '.join(parts)})"
            )
        return value

    return parse


POSITIVE_INT = bounded(int, ge=1)


def workers_option(text: str) -> int | str:
    """``--workers``: a count >= 1, or ``auto`` (see :data:`accelsim.workers.AUTO`)."""
    if text == "auto":
        return text
    try:
        return POSITIVE_INT(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed (allowed: an integer >= 1, or auto)"
        ) from None


NON_NEGATIVE_INT = bounded(int, ge=0)
NON_NEGATIVE_FLOAT = bounded(float, ge=0)
FRACTION = bounded(float, ge=0, le=1)  # a closed [0, 1]
PROBABILITY = bounded(float, gt=0, lt=1)  # an open (0, 1)


def scheduler_address(text: str) -> str:
    """``--scheduler``: a Dask scheduler address, ``tcp://HOST:PORT`` (or ``HOST:PORT``)."""
    address = text if "://" in text else f"tcp://{text}"
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if (
        scheme not in ("tcp", "tls", "inproc", "ucx")
        or not host
        or not port.isdigit()
        or " " in rest
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a scheduler address (allowed: tcp://HOST:PORT)"
        )
    return address


def add_command(subparsers, name: str, *, help: str, func: Command) -> argparse.ArgumentParser:
    """A sub-command parser (rich help) that runs ``func(args)``; the caller adds its options."""
    parser = subparsers.add_parser(name, help=help, formatter_class=RichHelpFormatter)
    parser.set_defaults(func=func, command_name=name)
    return parser


def default_out_dir(workload_name: str) -> Path:
    """``out/<name>``, the name made a safe folder name (see :func:`safe_folder_name`)."""
    return Path("out") / safe_folder_name(workload_name)


def safe_folder_name(name: str) -> str:
    """A workload name as one folder name inside the output root: characters other than
    letters, digits, ``.``, ``-`` and ``_`` become ``_``, no leading dot (so ``../x`` or
    ``/etc`` cannot leave ``out/``), at most 100 characters."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    safe = safe.lstrip(".")[:100]
    return safe or "workload"


# Checks of the workload's sections that belong to other packages (``optimize:``), registered
# by their CLI modules, so that every command validates the whole file.
SectionCheck = Callable[[object], None]
SECTION_CHECKS: dict[str, SectionCheck] = {}


def check_section(section: str, check: SectionCheck) -> None:
    """Register ``check(workload)``, run by every command when the file has ``section``."""
    SECTION_CHECKS[section] = check


@dataclass(frozen=True)
class TableSource:
    """A flat table ``report`` can read from an output folder: the ``file`` that holds it and
    the ``reader`` (``"module:function"``, imported when used) that turns the loaded JSON
    into rows; no reader: the file is a CSV already. ``default_for``: the commands whose
    folders show this table unless ``--table`` names another."""

    name: str
    file: str
    description: str
    reader: str | None = None
    default_for: tuple[str, ...] = ()


# The tables of every package's output files, registered by its CLI module (see ``report``).
TABLES: dict[str, TableSource] = {}


def register_table(source: TableSource) -> None:
    """Make ``python -m accelsim report DIR --table NAME`` read ``source``."""
    TABLES[source.name] = source


# The JSON Schema of every file a command writes: file name -> "module:Model" (a pydantic model
# or dataclass, imported when the schemas are generated; see accelsim/schemas.py).
SCHEMAS: dict[str, str] = {}


def register_schema(file: str, model: str) -> None:
    """Declare that ``file`` (in an output folder) follows ``model`` (``"module:Name"``)."""
    SCHEMAS[file] = model


# What the running command holds until it ends (the output folder's lock).
_claims: ExitStack | None = None


def claim_output_folder(folder: Path, *, wait: bool = False) -> Path:
    """Prove ``folder`` writable before any work and hold its lock for the command, so a
    second run on it is refused at once. Outside a command (library use) only the check."""
    from .locking import exclusive_folder
    from .outputs import prepare_folder

    created = not folder.exists()
    prepare_folder(folder)
    if _claims is not None:
        _claims.enter_context(exclusive_folder(folder, wait=wait, remove_if_unused=created))
    return folder


def add_workload_arguments(parser: argparse.ArgumentParser, *, set_example: str) -> None:
    """The arguments every workload command shares: the YAML, ``--out``, ``--resume``,
    ``--set`` and ``--wait``. Where the command writes: :func:`workload_and_out_dir`."""
    parser.add_argument("workload", help="workload YAML file")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output folder of your own, resumed if its log has these settings "
        "(default: a new out/<name>/<command>-<UTC time>-<id>, linked as out/<name>/latest)",
    )
    parser.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR (a run folder, or 'latest': this workload's newest run)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a key, e.g. --set {set_example}",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if another run is writing to the output folder, wait for it instead of stopping",
    )


@contextmanager
def started(what: str, *, log: bool = True) -> Iterator[None]:
    """Show at once that ``what`` has started (before any slow import or load): a spinner on a
    terminal; elsewhere (a log, a pipe) one line, or nothing when ``log`` is false because the
    command's own output follows soon anyway."""
    if console.is_terminal:
        from rich.live import Live
        from rich.spinner import Spinner

        with Live(Spinner("dots", what), console=console, transient=True) as live:
            live.refresh()  # the first frame now, not at the refresh thread's first tick
            yield
    else:
        if log:
            console.print(what)
        yield


def workload_and_out_dir(args: argparse.Namespace, command: str | None = None):
    """Load the command's workload (with its ``--set`` overrides) and claim its output
    folder: ``--resume DIR`` (or ``latest``), else ``--out``, else a new run folder
    ``out/<name>/<command>-<UTC time>-<id>`` that ``out/<name>/latest`` then names
    (:mod:`accelsim.runs`). The folder gets its ``run.json`` once its lock is held."""
    with started(f"loading {args.workload} …", log=False):
        workload = _load_workload(args)
    for section, check in SECTION_CHECKS.items():
        if getattr(workload.config, section, None) is not None:
            check(workload)
    command = command or getattr(args, "command_name", None) or "run"
    return workload, run_folder(args, workload, command)


def _load_workload(args: argparse.Namespace):
    scalesim_cfg = getattr(args, "scalesim_cfg", None)
    if scalesim_cfg is not None:  # like SCALE-Sim's `scale.py -c cfg -t topology.csv`
        from .topology import workload_from_scalesim

        return workload_from_scalesim(scalesim_cfg, args.workload, overrides=args.set)
    from .workload import load_workload

    return load_workload(args.workload, args.set)


def run_folder(args: argparse.Namespace, workload, command: str) -> Path:
    """Claim the folder this run of ``command`` writes to (see :func:`workload_and_out_dir`)."""
    from . import runs

    root = default_out_dir(workload.name)
    out, resume = getattr(args, "out", None), getattr(args, "resume", None)
    wait = getattr(args, "wait", False)
    if out and resume:
        raise AccelsimError(
            "--out and --resume both name a folder",
            key="--resume",
            allowed="--resume DIR to continue a run, or --out DIR for a folder of your own",
        )
    if resume:
        folder = claim_output_folder(runs.resume_folder(resume, root, command), wait=wait)
    elif out:
        created = not Path(out).exists()
        folder = claim_output_folder(Path(out), wait=wait)
        if created and _claims is not None:
            _claims.callback(_forget_if_empty, None, folder, None)
    else:
        folder = runs.new_run_folder(root, command)
        previous = runs.latest_target(root)
        try:
            claim_output_folder(folder, wait=wait)
        except BaseException:
            folder.rmdir()  # still empty: the probe or the lock failed
            raise
        runs.point_latest(root, folder)
        if _claims is not None:  # a run that fails before writing anything leaves no folder
            _claims.callback(_forget_if_empty, root, folder, previous)
    before = runs.record_run(folder, command, workload, _run_seed(args, workload, command))
    if before is not None and _claims is not None:
        _claims.push(partial(_restore_if_refused, folder / runs.RUN_METADATA_NAME, before))
    return folder


def _restore_if_refused(path: Path, before: str, exc_type, exc, traceback) -> bool:
    """A resumed start the command then refused (a log with other settings, ...) is not a
    start: run.json goes back to what it was."""
    if exc_type is not None and issubclass(exc_type, AccelsimError):
        from .jsonio import atomic_file

        with atomic_file(path, "w") as f:
            f.write(before)
    return False


def _run_seed(args: argparse.Namespace, workload, command: str) -> int:
    """The seed of the command's random choices: its ``--seed``, else the ``optimize:``
    section's for ``optimize`` (default 0), else ``faults.seed``, else the workload's."""
    config = workload.config
    if getattr(args, "seed", None) is not None:
        return args.seed
    if command == "optimize" and config.optimize is not None:
        return int(config.optimize.get("seed", 0))
    return config.faults.seed if config.faults is not None else config.seed


def _forget_if_empty(root: Path | None, folder: Path, previous: Path | None) -> None:
    """Remove a folder this run created that holds nothing but its ``run.json`` (the command
    failed before writing), and point ``root/latest`` back at the run it named before."""
    from . import runs
    from .locking import LOCK_NAME

    try:
        if {p.name for p in folder.iterdir()} - {runs.RUN_METADATA_NAME, LOCK_NAME}:
            return
        (folder / runs.RUN_METADATA_NAME).unlink(missing_ok=True)
        (folder / LOCK_NAME).unlink(missing_ok=True)
        folder.rmdir()
        if root is not None and runs.latest_target(root) == folder:
            if previous is not None and previous.is_dir():
                runs.point_latest(root, previous)
            else:
                (root / runs.LATEST_NAME).unlink(missing_ok=True)
    except OSError:
        pass  # something else appeared meanwhile: leave it as it is


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accelsim")
    except PackageNotFoundError:  # a source tree that is not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m accelsim",
        description="Cycle-level DNN accelerator simulator with fault injection and "
        "cross-layer fault-tolerance optimisation.",
        formatter_class=RichHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"accelsim {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in registered_commands():
        register(subparsers)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed sub-command; a user error prints its one line and exits 2, and so does
    an OS failure on what the user chose (a full disk, a read-only folder, a closed pipe)."""
    from .outputs import USER_OS_ERRORS, os_error

    global _claims
    try:
        with ExitStack() as claims:
            _claims = claims
            return args.func(args)
    except AccelsimError as exc:
        if exc.file is None and getattr(args, "workload", None):
            exc.file = str(args.workload)  # a config key without a file: it is the workload's
        return _user_error(exc)
    except BrokenPipeError:
        # the reader went away (`schema | head -1`): nothing more can reach stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _user_error(AccelsimError("the output was closed (broken pipe)"))
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            raise
        return _user_error(os_error(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return INTERRUPTED_EXIT
    finally:
        _claims = None


def _user_error(exc: AccelsimError) -> int:
    err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    return USER_ERROR_EXIT


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a bad option already reported in one line (2)
        return exc.code if isinstance(exc.code, int) else USER_ERROR_EXIT
    return run_command(args)
