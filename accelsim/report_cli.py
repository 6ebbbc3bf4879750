"""``python -m accelsim report DIR [--table NAME] [--csv [FILE]]``: any output folder as a
flat table.

DIR is a run folder (``out/<name>/latest``, ``out/<name>/inject-...``, or an ``--out`` folder)
or a workload's output root ``out/<name>`` (its ``latest`` run is read). Without ``--csv``
the command lists what the folder holds: its ``run.json`` and the tables that can be read from
it, with their rows and columns. ``--csv`` prints the table as CSV, ``--csv FILE`` writes it.
The tables are those the packages register (:data:`accelsim.app.TABLES`): ``layers`` (a
``run``), ``injections`` and ``faults`` (a campaign), ``bvf`` (``vulnerability``),
``baselines``, ``designs`` (an ``optimize``); by default the one of the command that wrote the folder.

``--validate`` checks the folder's files against their models, ``--schemas OUT`` writes the
JSON Schema of every output file to OUT (:mod:`accelsim.schemas`; ``docs/schemas`` ships them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import app
from .app import TableSource, add_command
from .errors import AccelsimError


def report_folder(path: str | Path) -> Path:
    """The run folder ``path`` names (a workload's root: its ``latest`` run)."""
    from .runs import LATEST_NAME, RUN_METADATA_NAME, latest_target

    folder = Path(path)
    if not folder.is_dir():
        raise AccelsimError("is not a folder", file=folder, allowed="an output folder")
    if not (folder / RUN_METADATA_NAME).exists() and (folder / LATEST_NAME).exists():
        return latest_target(folder) or folder
    return folder


def available_tables(folder: Path) -> list[TableSource]:
    return [source for source in app.TABLES.values() if (folder / source.file).exists()]


def table_rows(folder: Path, source: TableSource) -> list[dict[str, Any]]:
    """The rows of ``source`` in ``folder``."""
    import json
    from importlib import import_module

    from .tables import read_records_csv

    path = folder / source.file
    if source.reader is None:
        return read_records_csv(path)
    module, _, function = source.reader.partition(":")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AccelsimError(f"is not valid JSON: {exc}", file=path) from None
    try:
        return getattr(import_module(module), function)(document)
    except (KeyError, TypeError, AttributeError) as exc:
        raise AccelsimError(
            f"does not hold a {source.name} table (missing {exc})", file=path
        ) from None


def choose_table(folder: Path, name: str | None) -> TableSource:
    """``--table NAME``, else the table of the command that wrote ``folder``."""
    from .runs import RUN_METADATA_NAME, read_run_metadata

    tables = available_tables(folder)
    names = ", ".join(t.name for t in tables) or "none"
    if name is not None:
        for source in tables:
            if source.name == name:
                return source
        raise AccelsimError(
            f"holds no {name} table" if name in app.TABLES else f"no table is named {name!r}",
            file=folder,
            key="--table",
            allowed=names,
        )
    if not tables:
        raise AccelsimError(
            "holds no table (no result.json, faults.csv, optimize.json, ...)",
            file=folder,
            allowed="an output folder of run, inject, baselines or optimize",
        )
    if (folder / RUN_METADATA_NAME).exists():
        command = read_run_metadata(folder, key="DIR").get("command")
        for source in tables:
            if command in source.default_for:
                return source
    return tables[0]


def cmd_report(args: argparse.Namespace) -> int:
    from .tables import write_records_csv

    if args.schemas is not None:
        from .outputs import prepare_folder
        from .schemas import write_schemas

        for path in write_schemas(prepare_folder(args.schemas, key="--schemas"), app.SCHEMAS):
            app.console.print(f"wrote {path}", highlight=False)
        if args.folder is None:
            return 0
    if args.folder is None:
        raise AccelsimError("names no folder", key="DIR", allowed="an output folder")
    folder = report_folder(args.folder)
    if args.validate:
        return _validate(folder)
    source = choose_table(folder, args.table)
    if args.csv is None:
        _describe(folder, source)
        return 0
    rows = table_rows(folder, source)
    if args.csv == "-":
        _print_csv(rows)
    else:
        from .outputs import check_file_target

        path = write_records_csv(rows, check_file_target(args.csv, key="--csv"))
        app.err_console.print(f"wrote {path} ({len(rows)} rows of {source.name})")
    return 0


def _validate(folder: Path) -> int:
    from pydantic import ValidationError

    from .schemas import validate_folder

    try:
        checked = validate_folder(folder, app.SCHEMAS)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AccelsimError(
            f"does not match its schema: {where}: {first['msg']}", file=f"{folder} ({exc.title})"
        ) from None
    for file, records in checked.items():
        app.console.print(f"{file}: valid ({records} records)", highlight=False)
    return 0


def _print_csv(rows: list[dict[str, Any]]) -> None:
    import csv

    columns = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _describe(folder: Path, chosen: TableSource) -> None:
    from .runs import RUN_METADATA_NAME, read_run_metadata

    console = app.console
    console.print(f"[bold]{folder}[/]")
    if (folder / RUN_METADATA_NAME).exists():
        meta = read_run_metadata(folder, key="DIR")
        console.print(
            f"  {meta.get('command')} of {meta.get('workload')}, seed {meta.get('seed')}, "
            f"started {meta.get('started_at')}",
            highlight=False,
        )
    for source in available_tables(folder):
        rows = table_rows(folder, source)
        columns = len(dict.fromkeys(k for row in rows for k in row))
        mark = "*" if source is chosen else " "
        console.print(
            f"{mark} {source.name:<10} {len(rows):>7} rows {columns:>4} columns  {source.file}",
            highlight=False,
        )
        console.print(f"    {source.description}", highlight=False)
    console.print(
        "--csv prints the table marked * (--table NAME another), --csv FILE writes it;\n"
        "pandas: pandas.read_csv(FILE)",
        highlight=False,
    )


def register(subparsers) -> None:
    """Add ``report`` to ``python -m accelsim``, and the ``layers`` table and the models of
    ``run.json`` and ``result.json``."""
    app.register_schema("run.json", "accelsim.schemas:RunDocument")
    app.register_schema("result.json", "accelsim.schemas:ResultDocument")
    app.register_table(
        TableSource(
            "layers",
            "result.json",
            "one row per layer: cycles, stalls, traffic, energy (per batch)",
            reader="accelsim.results:layer_records",
            default_for=("run",),
        )
    )
    report = add_command(
        subparsers,
        "report",
        help="an output folder as a flat table (CSV for pandas)",
        func=cmd_report,
    )
    report.add_argument(
        "folder", metavar="DIR", nargs="?", help="a run folder, or out/<name> (its latest)"
    )
    report.add_argument(
        "--table", metavar="NAME", help="layers, injections, faults, bvf, baselines or designs"
    )
    report.add_argument(
        "--csv",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the table as CSV, or write it to FILE",
    )
    report.add_argument(
        "--validate", action="store_true", help="check the folder's files against their schemas"
    )
    report.add_argument(
        "--schemas", metavar="OUT", help="write the JSON Schema of every output file to OUT"
    )
