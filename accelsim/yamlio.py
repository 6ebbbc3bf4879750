"""Strict YAML: duplicate keys are errors, and scalars follow YAML 1.2's core schema.

PyYAML's default (YAML 1.1) reads ``on`` as true, ``017`` as 15 and ``1e-3`` as a string, and
keeps the last of two duplicate keys. Each of these has bitten simulator users; here ``true`` /
``false`` are the only booleans, integers are decimal (or 0x/0o), floats include ``1e-3``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import AccelsimError, read_user_text


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and no duplicate keys."""


StrictLoader.yaml_implicit_resolvers = {}
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F]+|0o[0-7]+)$"),
    list("-+0123456789"),
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    if text.startswith("0x"):
        return int(text, 16)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, *, source: str | Path = "<string>") -> Any:
    """Parse YAML text strictly; errors become one-line AccelsimErrors with line numbers."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader derives SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        problem = getattr(exc, "problem", None) or str(exc)
        raise AccelsimError(f"invalid YAML at {where}: {problem}", file=source) from None


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    return parse_yaml(read_user_text(path), source=path)


def parse_scalar(text: str) -> Any:
    """Read the value of a ``--set key=value`` override with the same scalar rules."""
    return parse_yaml(text, source="--set")
