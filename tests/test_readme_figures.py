"""The README's figures match what the code prints now (``make figures`` regenerates them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.figures import FIGURES, readme_block, render_accuracy

ROOT = Path(__file__).resolve().parents[1]
BY_NAME = {f.name: f for f in FIGURES}
# figures whose command cannot run from this checkout alone, and why
NOT_REGENERATED = {
    "bench.scalesim_compare": "needs SCALE-Sim 3.0.0 in its own virtualenv",
    "bench.figures": "the regenerator itself",
}


def test_the_demo_block_is_what_make_demo_prints_now():
    assert BY_NAME["demo"].block() == readme_block("demo")


def test_the_accuracy_rows_of_the_quick_models_are_current():
    """The CNN and the MLP take seconds; the ResNet's rows are checked in the slow test."""
    from workloads.accuracy import accuracy_table

    quick = ("digits_cnn", "digits_mlp")
    rows = render_accuracy(accuracy_table(quick)).splitlines()[2:]
    shown = [
        line
        for line in readme_block("accuracy").splitlines()
        if line.split("|")[1:2] and line.split("|")[1].strip() in quick
    ]
    assert rows == shown


@pytest.mark.slow
def test_the_whole_accuracy_table_is_current():
    assert BY_NAME["accuracy"].block() == readme_block("accuracy")


def _cited_modules(text: str) -> set[str]:
    """Modules of the commands the README names as the source of a figure."""
    cited = set()
    for command in re.findall(r"`python (?:-m )?([\w./]+)", text):
        module = command.removesuffix(".py").replace("/", ".")
        if module.startswith(("bench.", "workloads.accuracy")):
            cited.add(module)
    return cited


def test_every_figure_command_the_readme_cites_is_regenerated_by_make_figures():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    regenerated = {f.command[1] for f in FIGURES if f.command[0] == "-m"}
    missing = _cited_modules(text) - regenerated - set(NOT_REGENERATED)
    assert not missing, f"README cites figure commands make figures does not run: {missing}"
    assert "make figures" in text
    assert "figures:" in (ROOT / "Makefile").read_text(encoding="utf-8")
