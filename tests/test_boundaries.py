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


# --------------------------------------------------------------------------- the CLI level
def imported_names(path: Path, package: str) -> set[str]:
    """Every module ``path`` may import, lazily or not, as dotted names (relative imports
    resolved against ``package``); ``from a import b`` yields both ``a`` and ``a.b``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + [node.module] if node.module else base)
            if node.level == 0:
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def module_file(name: str) -> Path | None:
    """The source file of a project module, None if ``name`` is no module of this checkout."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_of(name: str) -> str:
    path = module_file(name)
    return name if path is not None and path.name == "__init__.py" else name.rpartition(".")[0]


def cli_modules() -> list[str]:
    from accelsim.app import COMMAND_MODULES

    return list(COMMAND_MODULES)


def test_every_cli_module_is_registered_with_the_application_layer():
    found = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for top in ("accelsim", "faults", "optimizer", "workloads", "bench")
        for path in (ROOT / top).rglob("*.py")
        if path.name == "cli.py" or path.name.endswith("_cli.py")
    }
    assert found == set(cli_modules())
    for name in cli_modules():
        tree = ast.parse(module_file(name).read_text(encoding="utf-8"))
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "register" in functions, name


def test_no_cli_module_imports_another():
    offenders = []
    for name in cli_modules():
        others = set(cli_modules()) - {name}
        bad = imported_names(module_file(name), package_of(name)) & others
        if bad:
            offenders.append(f"{name}: {sorted(bad)}")
    assert offenders == []


def test_only_cli_modules_use_the_application_layer():
    """The console, the shared arguments and the output folders belong to the commands: a
    library module that printed on the app's console could not be used without a terminal."""
    allowed = {*cli_modules(), "accelsim.app"}
    offenders = []
    for top in ("accelsim", "faults", "optimizer", "workloads", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if name not in allowed and "accelsim.app" in imported_names(path, package_of(name)):
                offenders.append(name)
    assert offenders == []


def test_building_the_parser_imports_no_heavy_library():
    """``--help`` stays instant: registering every sub-command imports neither the optimiser's
    GP stack, torch, matplotlib nor dask (each command imports what it needs when it runs)."""
    import os
    import subprocess
    import sys

    heavy = ("GPy", "emukit", "torch", "matplotlib", "dask", "distributed")
    probe = (
        "import sys; from accelsim.app import build_parser; build_parser(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_module_the_commands_import_is_packaged():
    """What the installed ``accelsim`` script can reach (following the lazy imports inside the
    commands, e.g. ``bench``) lies in a package ``pyproject.toml`` ships."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    find = config["tool"]["setuptools"]["packages"]["find"]
    packaged = set(
        find_packages(where=str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    )
    entry = config["project"]["scripts"]["accelsim"].partition(":")[0]
    todo, reached = [entry, *cli_modules()], set()
    while todo:
        name = todo.pop()
        if name in reached or module_file(name) is None:
            continue  # seen, or not a module of this checkout (a library, a class, a function)
        reached.add(name)
        todo.extend(imported_names(module_file(name), package_of(name)))
    assert {"bench.run", "faults.cli", "optimizer.evaluate"} <= reached
    assert sorted(n for n in reached if package_of(n) not in packaged) == []


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


def test_faults_use_the_datapath_never_the_hardware_model():
    """The injectors compute with accelsim.datapath (plain arrays and ints); the SimPy
    hardware model (accelsim.hw) only times transactions."""
    offenders = []
    for top in ("faults", "optimizer"):
        for path in sorted((ROOT / top).rglob("*.py")):
            names = imported_names(path, top)
            bad = sorted(n for n in names if n == "accelsim.hw" or n.startswith("accelsim.hw."))
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {bad}")
    assert offenders == []
    datapath = imported_names(ROOT / "accelsim" / "datapath.py", "accelsim")
    assert not any(n.startswith("accelsim.hw") for n in datapath)
