"""docs/architecture.md matches the code: every file it names exists (or is named as removed),
and every ``file.py`` ``name`` pair it cites is defined in that file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
REMOVED = {"workloads/quantize.py", "faults/vulnerability_cli.py"}  # named as gone
EXAMPLES = {"faults/sensitivity.py", "faults/sensitivity_report.py"}  # a walk-through's new files
PATH = r"`((?:accelsim|faults|optimizer|workloads|bench|tests|tools|docs)/[\w/.-]+\.(?:py|md))`"


def defined_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_every_file_the_architecture_notes_name_exists():
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(PATH, text))
    assert len(named) > 40
    missing = sorted(p for p in named - REMOVED - EXAMPLES if not (ROOT / p).exists())
    assert missing == []
    assert all(not (ROOT / p).exists() for p in REMOVED)


def test_every_cited_definition_exists_in_its_file():
    text = DOC.read_text(encoding="utf-8")
    pairs = re.findall(PATH + r" `(\w+)`", text)
    assert len(pairs) > 20
    wrong = [
        f"{path} {name}"
        for path, name in pairs
        if path.endswith(".py") and path not in REMOVED and name not in defined_names(ROOT / path)
    ]
    assert wrong == []
