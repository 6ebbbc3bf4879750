"""One folder per run (accelsim/runs.py, accelsim/app.py): every run without --out gets its
own folder and ``latest`` names the newest; resuming is explicit (--resume DIR or latest, or
--out naming a folder whose log matches); a log with other settings is never a dead end; a
run that fails before writing leaves no folder; ``run.json`` says what ran."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accelsim import runs
from accelsim.cli import main
from faults.campaign import LOG_NAME
from faults.runner import read_task_log
from tests.helpers import one_error_line, write_mlp_workload

ROOT = Path(__file__).resolve().parents[1]


def write_workload(folder: Path, **keys) -> Path:
    return write_mlp_workload(folder, "folders", **keys)


def run_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def test_each_run_gets_its_own_folder_and_latest_names_the_newest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workload = write_workload(tmp_path)
    assert main(["inject", str(workload)]) == 0
    assert main(["inject", str(workload), "--set", "faults.rate=4e-6"]) == 0  # other settings
    root = tmp_path / "out" / "folders"
    first, second = sorted(run_folders(root), key=lambda p: (p / "run.json").stat().st_mtime_ns)
    assert first != second and first.name.startswith("inject-")
    assert runs.latest_target(root).resolve() == second.resolve()
    for folder in (first, second):
        assert {"run.json", "faults.json", LOG_NAME} <= {p.name for p in folder.iterdir()}
    meta = json.loads((second / "run.json").read_text())
    assert meta["schema_version"] == runs.RUN_SCHEMA_VERSION and meta["command"] == "inject"
    assert meta["workload"] == "folders" and meta["seed"] == 0
    assert meta["settings"]["faults"]["rate"] == 4e-6 and meta["versions"]["numpy"]


def test_resume_latest_continues_the_newest_run_without_recomputing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workload = write_workload(tmp_path)
    assert main(["inject", str(workload)]) == 0
    root = tmp_path / "out" / "folders"
    (folder,) = run_folders(root)
    log = (folder / LOG_NAME).read_bytes()
    logged = read_task_log(folder / LOG_NAME).logged
    assert main(["inject", str(workload), "--resume", "latest", "--injections", "6"]) == 0
    assert run_folders(root) == [folder]  # no new folder
    grown = (folder / LOG_NAME).read_bytes()
    assert grown.startswith(log) and read_task_log(folder / LOG_NAME).logged == (*logged, 4, 5)
    assert len(json.loads((folder / "run.json").read_text())["resumed_at"]) == 1
    assert main(["inject", str(workload), "--resume", str(folder)]) == 0  # by its path too


def test_a_log_with_other_settings_names_the_options_that_help(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    workload, out = write_workload(tmp_path), tmp_path / "mine"
    assert main(["inject", str(workload), "--out", str(out)]) == 0
    capsys.readouterr()
    meta = (out / "run.json").read_text()
    assert main(["inject", str(workload), "--out", str(out), "--set", "faults.seed=3"]) == 2
    assert (out / "run.json").read_text() == meta  # a refused start is not a resumption
    line = one_error_line(capsys)
    assert "--out NEW" in line and "--resume" in line and "without --out" in line
    assert main(["inject", str(workload), "--set", "faults.seed=3"]) == 0  # the way out works


def test_resume_refuses_a_folder_of_another_command_or_no_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    workload = write_workload(tmp_path)
    assert main(["run", str(workload)]) == 0
    capsys.readouterr()
    assert main(["inject", str(workload), "--resume", "latest"]) == 2
    assert "holds a 'run' run, not 'inject'" in one_error_line(capsys)
    assert main(["inject", str(workload), "--resume", str(tmp_path)]) == 2
    assert "no run.json" in one_error_line(capsys)
    assert main(["inject", str(workload), "--resume", "x", "--out", "y"]) == 2
    assert "--out and --resume" in one_error_line(capsys)


def test_no_latest_to_resume_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["inject", str(write_workload(tmp_path)), "--resume", "latest"]) == 2
    assert "no latest run to resume" in one_error_line(capsys)


def test_a_run_that_fails_before_writing_leaves_no_folder_and_keeps_latest(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    workload = write_workload(tmp_path)
    assert main(["inject", str(workload)]) == 0
    root = tmp_path / "out" / "folders"
    (kept,) = run_folders(root)
    bare = write_workload(tmp_path, faults=None)
    assert main(["inject", str(bare)]) == 2  # no faults: section, refused after the claim
    assert "no faults: section" in one_error_line(capsys)
    assert run_folders(root) == [kept]
    assert runs.latest_target(root).resolve() == kept.resolve()
    mine = tmp_path / "mine"
    assert main(["inject", str(bare), "--out", str(mine)]) == 2
    assert not mine.exists()  # an --out folder this run created goes too


def test_latest_falls_back_to_a_text_file_where_symlinks_fail(tmp_path, monkeypatch):
    root = tmp_path / "root"
    first = runs.new_run_folder(root, "run")

    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    runs.point_latest(root, first)
    assert (root / "latest").read_text().strip() == first.name
    assert runs.latest_target(root) == first
    second = runs.new_run_folder(root, "run")
    runs.point_latest(root, second)  # replaced in one rename, like the link
    assert runs.latest_target(root) == second
    assert sorted(p.name for p in root.iterdir()) == sorted([first.name, second.name, "latest"])


def test_two_folders_of_one_second_never_collide(tmp_path):
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    folders = {runs.new_run_folder(tmp_path, "run", now=now) for _ in range(20)}
    assert len(folders) == 20 and all(p.name.startswith("run-20260101T000000Z-") for p in folders)


@pytest.mark.parametrize("command", ["run", "inject"])
def test_explicit_out_is_used_as_given(tmp_path, command):
    out = tmp_path / "given"
    assert main([command, str(write_workload(tmp_path)), "--out", str(out)]) == 0
    assert (out / "run.json").exists() and not (tmp_path / "out").exists()


def test_another_command_in_an_out_folder_is_recorded_not_mistaken_for_a_resume(tmp_path):
    workload, out = write_workload(tmp_path), tmp_path / "given"
    assert main(["run", str(workload), "--out", str(out)]) == 0
    assert main(["inject", str(workload), "--out", str(out)]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["command"] == "run" and meta["resumed_at"] == []
    assert [c["command"] for c in meta["other_commands"]] == ["inject"]


def test_a_second_optimize_keeps_the_first_ones_optimize_json(tmp_path, monkeypatch):
    """``optimize`` then ``optimize --method random --compare`` (the README's pair): two run
    folders, two optimize.json files, the first one untouched."""
    monkeypatch.chdir(tmp_path)
    fast = [
        "faults.rate=0",
        "optimize.constraints.min_reliability=null",
        "dataset.samples=16",
        "optimize.hardening=msb",
        "optimize.variables.protected_fraction=[0.0]",
    ]
    sets = [arg for item in fast for arg in ("--set", item)]
    workload = str(ROOT / "workloads" / "digits_optimize.yaml")
    assert main(["optimize", workload, "--budget", "2", "--no-fixed", *sets]) == 0
    root = tmp_path / "out" / "digits_optimize"
    (first,) = run_folders(root)
    before = (first / "optimize.json").read_bytes()
    argv = ["optimize", workload, "--budget", "2", "--method", "random", "--compare"]
    assert main([*argv, "--no-fixed", *sets, "--set", "optimize.seed=5"]) == 0
    (second,) = set(run_folders(root)) - {first}
    assert json.loads((second / "run.json").read_text())["seed"] == 5  # the search's seed
    assert (first / "optimize.json").read_bytes() == before
    assert json.loads((second / "optimize.json").read_text())["comparison"]["method"] == "bayesian"
    assert runs.latest_target(root).resolve() == second.resolve()


def test_resume_latest_finds_the_newest_run_of_the_same_command(tmp_path):
    """``run`` then ``inject --resume latest``: latest names the run, the campaign is older."""
    from accelsim.errors import AccelsimError
    from accelsim.runs import new_run_folder, point_latest, resume_folder, write_json_atomic

    root = tmp_path / "out" / "w"
    older = new_run_folder(root, "inject", now=datetime(2026, 1, 1, tzinfo=UTC))
    newer = new_run_folder(root, "inject", now=datetime(2026, 1, 2, tzinfo=UTC))
    run = new_run_folder(root, "run", now=datetime(2026, 1, 3, tzinfo=UTC))
    for folder, command in ((older, "inject"), (newer, "inject"), (run, "run")):
        write_json_atomic(folder / "run.json", {"schema_version": 1, "command": command})
    point_latest(root, run)
    assert resume_folder("latest", root, "inject") == newer
    assert resume_folder("latest", root, "run") == run
    with pytest.raises(AccelsimError, match="holds a 'run' run, not 'inject'") as info:
        resume_folder(str(run), root, "inject")
    assert "an inject run" in str(info.value.allowed)


def test_resuming_a_folder_with_an_earlier_json_lines_log_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    workload, out = write_workload(tmp_path), tmp_path / "old"
    assert main(["inject", str(workload), "--out", str(out)]) == 0
    (out / "faults.log").rename(out / "faults.jsonl")  # as an earlier accelsim left it
    capsys.readouterr()
    assert main(["inject", str(workload), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "faults.jsonl of an earlier accelsim" in line and "--out NEW" in line
    assert not (out / "faults.log").exists()  # nothing recomputed into it
