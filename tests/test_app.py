"""The application layer (accelsim/app.py): the parser holds every registered package's
sub-commands, a CLI module that cannot be imported is an error (never silently skipped), and a
user error is one line with exit status 2."""

from __future__ import annotations

import pytest

from accelsim import app
from accelsim.errors import AccelsimError


def _commands(parser) -> list[str]:
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    return list(subparsers.choices)


def test_the_parser_has_every_package_command_in_registry_order():
    assert _commands(app.build_parser()) == [
        "run",
        "export",
        "schema",
        "bench",
        "inject",
        "vulnerability",
        "baselines",
        "optimize",
        "report",
    ]


def test_a_missing_cli_module_is_an_error_not_fewer_commands(monkeypatch):
    monkeypatch.setattr(app, "COMMAND_MODULES", ("accelsim.cli", "not_installed_pkg.cli"))
    with pytest.raises(ModuleNotFoundError, match="not_installed_pkg"):
        app.build_parser()


def test_a_cli_module_missing_a_dependency_is_an_error(tmp_path, monkeypatch):
    package = tmp_path / "half_installed_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("import a_dependency_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(app, "COMMAND_MODULES", ("half_installed_pkg.cli",))
    with pytest.raises(ModuleNotFoundError, match="a_dependency_nobody_installed"):
        app.build_parser()


def test_a_user_error_names_the_workload_and_exits_2(capsys, monkeypatch):
    def fails(args):
        raise AccelsimError("must be positive", key="batch")

    monkeypatch.setattr(app, "err_console", app.Console(stderr=True, width=200))
    args = app.argparse.Namespace(func=fails, workload="w.yaml")
    assert app.run_command(args) == app.USER_ERROR_EXIT == 2
    assert capsys.readouterr().err.strip() == "error: w.yaml: batch: must be positive"


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    assert app.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"accelsim {version('accelsim')}"
