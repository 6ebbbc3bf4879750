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

# limits on what a file can make the loader build: deeper nesting overflows the composer's
# recursion, and aliases of aliases grow exponentially once the result is copied
MAX_NESTING = 64
MAX_ALIASES = 64


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, no duplicate keys, bounded nesting and
    a bounded number of aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name)", mark
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_NESTING} levels", mark
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


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
        raise AccelsimError(
            f"invalid YAML at {_where(exc, text)}: {_problem(exc)}", file=source
        ) from None


def _where(exc: yaml.YAMLError, text: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}"
    position = getattr(exc, "position", None)  # a ReaderError (a character YAML forbids)
    if position is None:
        return "the start of the file"
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"character U+{code:04X} is not allowed in YAML"
    problem = getattr(exc, "problem", None) or str(exc)
    return " ".join(problem.split())  # one line


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    return parse_yaml(read_user_text(path), source=path)


def parse_scalar(text: str) -> Any:
    """Read the value of a ``--set key=value`` override with the same scalar rules."""
    return parse_yaml(text, source="--set")
