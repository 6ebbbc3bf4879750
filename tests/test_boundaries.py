"""Package boundaries (DESIGN.md): accelsim/ never imports torch, and only its CLI reaches
into faults/ and optimizer/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_simulator_core_never_imports_torch_faults_or_optimizer():
    offenders = []
    for path in sorted((ROOT / "accelsim").rglob("*.py")):
        forbidden = {"torch"} if path.name == "cli.py" else {"torch", "faults", "optimizer"}
        bad = imported_modules(path) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert offenders == []


def test_quantisation_needs_no_torch():
    assert "torch" not in imported_modules(ROOT / "accelsim" / "quantize.py")


def test_faults_never_import_optimizer():
    for path in sorted((ROOT / "faults").rglob("*.py")):
        assert "optimizer" not in imported_modules(path), path


def test_public_names_stay_functions_after_every_package_is_imported():
    """``from accelsim import simulate`` must be the function even once another package has
    imported the module that defines it (a module named like the function would shadow it)."""
    import importlib

    import accelsim
    import faults.campaign  # noqa: F401  (imports accelsim's simulation module)
    import optimizer.evaluate  # noqa: F401

    for name in accelsim.__all__:
        value = getattr(importlib.import_module("accelsim"), name)
        assert not isinstance(value, type(accelsim)), f"accelsim.{name} is a module"


def is_application_layer(path: Path) -> bool:
    """accelsim's application layer: ``cli.py`` files and modules under ``accelsim/app*``."""
    relative = path.relative_to(ROOT / "accelsim")
    return path.name == "cli.py" or relative.parts[0].startswith("app")


def test_only_the_application_layer_reaches_workloads_faults_or_optimizer():
    """The core finds builtin models through its registry (accelsim.models), never by
    importing workloads; faults/ and optimizer/ are for the application layer alone."""
    forbidden = {"workloads", "faults", "optimizer"}
    offenders = [
        f"{path.relative_to(ROOT)}: {sorted(imported_modules(path) & forbidden)}"
        for path in sorted((ROOT / "accelsim").rglob("*.py"))
        if not is_application_layer(path) and imported_modules(path) & forbidden
    ]
    assert offenders == []


def test_the_boundary_check_sees_lazy_imports(tmp_path):
    """Imports inside functions count too (the ones the core used to hide there)."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from workloads.export import x\n    import faults.plan\n")
    assert imported_modules(module) >= {"workloads", "faults"}
