"""JSON Schemas of every file the commands write, generated from the result models.

Each package declares its files' models with :func:`accelsim.app.register_schema` (``file ->
"module:Model"``, a pydantic model or a dataclass) in its CLI module; the functions here take
that mapping, import the models, build each schema with pydantic's
``TypeAdapter(...).json_schema()``, write them (``docs/schemas/<file>.schema.json``, kept equal
to the generated ones by a test) and validate an output folder's files against the models
(pydantic validates; jsonschema is not needed). Regenerate the shipped schemas with
``python -m accelsim report --schemas docs/schemas``; check a folder with
``python -m accelsim report DIR --validate``.

The models accept keys they do not name (``extra="allow"``): a newer writer may add figures
without breaking older readers; ``schema_version`` changes when a key changes meaning or goes.
CSV rows are validated with empty cells read as None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from .results import RESULT_SCHEMA_VERSION, LayerStats
from .runs import RUN_SCHEMA_VERSION

SCHEMA_SUFFIX = ".schema.json"


class Document(BaseModel):
    """A JSON file's top level: the keys named are checked, others allowed."""

    model_config = ConfigDict(extra="allow")


class ResultDocument(Document):
    """``result.json`` (:meth:`accelsim.results.SimResult.to_dict`): per-layer figures and
    totals for one batch; ``totals.energy_pj_per_inference`` per inference."""

    schema_version: Literal[RESULT_SCHEMA_VERSION]  # type: ignore[valid-type]
    workload: str
    batch: int
    batches: int
    clock_mhz: float
    layers: list[LayerStats]
    totals: dict[str, float | int]
    area: dict[str, float]
    energy_pj: dict[str, float]
    accuracy: float | None
    config: dict[str, Any]


class RunDocument(Document):
    """``run.json`` (:class:`accelsim.runs.RunMetadata`)."""

    schema_version: Literal[RUN_SCHEMA_VERSION]  # type: ignore[valid-type]
    command: str
    workload: str
    workload_file: str | None
    argv: list[str]
    seed: int | None
    settings: dict[str, Any]
    versions: dict[str, str]
    started_at: str
    resumed_at: list[str]
    other_commands: list[dict[str, Any]] = []


Models = Mapping[str, str]  # output file name -> "module:Model"


def imported_models(models: Models) -> dict[str, Any]:
    """The models named in ``models``, imported, by file name (sorted)."""
    from importlib import import_module

    found = {}
    for file, target in sorted(models.items()):
        module, _, name = target.partition(":")
        found[file] = getattr(import_module(module), name)
    return found


def json_schemas(models: Models) -> dict[str, dict[str, Any]]:
    """The JSON Schema of every output file in ``models``, by file name."""
    schemas = {}
    for file, model in imported_models(models).items():
        schema = TypeAdapter(model).json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"{file}" + (" (one row)" if file.endswith(".csv") else "")
        schemas[file] = schema
    return schemas


def write_schemas(folder: str | Path, models: Models) -> list[Path]:
    """Write ``<file>.schema.json`` for every output file of ``models`` into ``folder``."""
    from .jsonio import atomic_file

    folder = Path(folder)
    written = []
    for file, schema in json_schemas(models).items():
        path = folder / f"{file}{SCHEMA_SUFFIX}"
        with atomic_file(path, "w") as f:
            f.write(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def validate_folder(folder: str | Path, models: Models) -> dict[str, int]:
    """Validate every file of ``models`` in ``folder`` against its model; returns the records checked
    per file (1 for a JSON file, its rows for a CSV). A file that does not match raises
    pydantic's ``ValidationError`` naming the field."""
    from .tables import read_records_csv

    folder = Path(folder)
    checked = {}
    for file, model in imported_models(models).items():
        path = folder / file
        if not path.exists():
            continue
        adapter = TypeAdapter(model)
        if file.endswith(".csv"):
            rows = read_records_csv(path)
            for row in rows:
                adapter.validate_python({k: (None if v == "" else v) for k, v in row.items()})
            checked[file] = len(rows)
        else:
            adapter.validate_python(json.loads(path.read_text(encoding="utf-8")))
            checked[file] = 1
    return checked
