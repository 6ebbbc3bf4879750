"""The workload-file key reference, generated from the pydantic schema (docs cannot drift)."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from .config import WorkloadConfig


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(
            _type_name(a) for a in typing.get_args(annotation) if a is not type(None)
        )
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (list, tuple):
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map {_type_name(key)} → {_type_name(value)}"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "section" if annotation.__doc__ is None else f"section ({annotation.__name__})"
        return annotation.__name__
    return str(annotation)


def _bounds(field) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    return ", ".join(parts)


def _single_model(annotation: object) -> type[BaseModel] | None:
    """The section model behind ``Model`` or ``Model | None``; None for anything else."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (
        typing.Union,
        getattr(__import__("types"), "UnionType", None),
    ):
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
    if (
        len(candidates) == 1
        and isinstance(candidates[0], type)
        and issubclass(candidates[0], BaseModel)
    ):
        return candidates[0]
    return None


def schema_rows(model: type[BaseModel] = WorkloadConfig, prefix: str = "") -> list[tuple[str, ...]]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        nested = _single_model(annotation)
        default = "" if field.is_required() else repr(field.get_default(call_default_factory=True))
        if nested is not None:
            default = ""
        rows.append((key, _type_name(annotation), _bounds(field), default, field.description or ""))
        if nested is not None:
            rows.extend(schema_rows(nested, key + "."))
    return rows


def schema_markdown() -> str:
    lines = ["| key | type | allowed | default | meaning |", "|---|---|---|---|---|"]
    for key, kind, bounds, default, doc in schema_rows():
        lines.append(f"| `{key}` | {kind} | {bounds} | {default} | {doc} |")
    return "\n".join(lines)
