"""The README's 30-second tour runs top to bottom in a fresh folder without an error.

Each command of the tour's shell block runs as written, in order, in an empty folder that
sees only the shipped ``workloads/`` (as a fresh clone does), with small sizes added
(``--set dataset.samples=8 --set faults.injections=4``, ``--injections 6``,
``bench --quick``): the commands'
paths and folders, not their statistics. The slow ones (export with torch, training, the
accuracy table, the benchmark) run with ACCELSIM_SLOW=1.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from accelsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--set", "dataset.samples=8", "--set", "faults.injections=4"]
SLOW_COMMANDS = ("export", "bench")


def tour_commands() -> list[list[str]]:
    """The tour's commands as argument lists (continuation lines joined, comments dropped)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A 30-second tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def sized(words: list[str]) -> list[str]:
    """The accelsim arguments of a tour command, with small sizes."""
    args = list(words[3:])
    if "--injections" in args:
        args[args.index("--injections") + 1] = "6"
    if args and args[0] == "bench":
        return [*args, "--quick"]
    if len(args) > 1 and args[1].endswith((".yaml", ".yml")):
        return [*args, *SMALL]
    return args


def test_the_tour_has_the_commands_it_promises():
    commands = tour_commands()
    assert all(c[:2] == ["python", "-m"] for c in commands)
    accelsim = [c[3] for c in commands if c[2] == "accelsim"]
    assert {"run", "inject", "report"} <= set(accelsim)
    assert any("--resume" in c for c in commands)


def test_the_tour_runs_top_to_bottom_in_a_fresh_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "workloads").symlink_to(ROOT / "workloads")
    monkeypatch.chdir(tmp_path)
    for words in tour_commands():
        if words[2] != "accelsim":
            continue  # python -m workloads.*: the slow test
        args = sized(words)
        if args[:1] and args[0] in SLOW_COMMANDS:
            continue
        status = main(args)
        assert status == 0, (" ".join(words), capsys.readouterr().err[-2000:])
    root = tmp_path / "out" / "digits_cnn"
    folders = sorted(p.name.split("-")[0] for p in root.iterdir() if not p.is_symlink())
    assert folders == ["inject", "run", "run"]  # each run its own folder; the resume none
    latest = root / "latest"
    assert len((latest / "injections.csv").read_text().splitlines()) == 1 + 6
    assert (tmp_path / "injections.csv").read_text() == (latest / "injections.csv").read_text()


@pytest.mark.slow
def test_the_slow_tour_commands_run(tmp_path):
    (tmp_path / "workloads").symlink_to(ROOT / "workloads")
    for words in tour_commands():
        if words[2] == "accelsim" and words[3] not in SLOW_COMMANDS:
            continue
        argv = [sys.executable, "-m", words[2], *sized(words)]
        if words[2] == "workloads.train":
            argv += ["--models", "digits_mlp"]
        if words[2] == "workloads.accuracy":
            argv += ["--models", "digits_mlp", "--bits", "8", "--reserved", "0"]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, (" ".join(words), done.stderr[-2000:])
