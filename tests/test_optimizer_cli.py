"""``python -m accelsim optimize``: user errors exit 2 with one line, an end-to-end run writes
optimize.json, and a run resumed from a partial log gives the same answer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from accelsim.cli import main
from accelsim.workload import load_workload
from optimizer.search import optimize

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_optimize.yaml"
# no fault rate, no reliability constraint, MSB hardening, no protected neurons: nothing needs
# vulnerability factors (the fast configuration for resume tests)
FAST = [
    "faults.rate=0",
    "optimize.constraints.min_reliability=null",
    "dataset.samples=16",
    "optimize.hardening=msb",
    "optimize.variables.protected_fraction=[0.0]",
]


def write_workload(tmp_path: Path, optimize_section: dict) -> Path:
    """digits_optimize.yaml with another optimize: section, its paths made absolute."""
    raw = yaml.safe_load(DIGITS.read_text())
    raw["model"] = str(DIGITS.parent / raw["model"])
    raw["dataset"]["path"] = str(DIGITS.parent / raw["dataset"]["path"])
    raw["optimize"] = optimize_section
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"variables": {"array_rows": []}}, "optimize.variables.array_rows"),
        ({"variables": {"weight_bits": {"min": 8, "max": 4}}}, "optimize.variables.weight_bits"),
        ({"variables": {"banana": [1, 2]}}, "optimize.variables.banana"),
        ({"variables": {"array_rows": [4]}, "method": "annealing"}, "optimize.method"),
    ],
)
def test_bad_optimize_section_exits_2_with_one_line(tmp_path, capsys, section, key):
    path = write_workload(tmp_path, section)
    assert main(["optimize", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert key in err and str(path) in err and "Traceback" not in err
    assert not (tmp_path / "out" / "optimize.json").exists()


def test_bad_budget_override_exits_2(tmp_path, capsys):
    path = write_workload(tmp_path, {"variables": {"array_rows": [4, 8]}})
    assert main(["optimize", str(path), "--budget", "0", "--out", str(tmp_path / "o")]) == 2
    assert "optimize.budget" in capsys.readouterr().err


def test_end_to_end_cli_writes_optimize_json(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "optimize",
            str(DIGITS),
            "--budget",
            "6",
            "--out",
            str(out),
            "--plot",
            str(tmp_path / "plots"),
            # a smaller test set and certificates: the command's path, not its statistics
            "--set",
            "dataset.samples=128",
            "--set",
            "faults.samples=32",
            "--set",
            "optimize.certify.max_injections=4000",
            "--set",
            "optimize.reliability.max_injections=40000",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "optimize.json").read_text())
    assert len(doc["search"]["evaluations"]) == 6
    assert doc["optimize"]["budget"] == 6
    assert set(doc["fixed_designs"]) >= {"none", "full TMR"}
    if doc["best"] is not None:
        best = doc["best"]
        assert all(v <= 0 for v in best["constraints"].values())
        assert best["metrics"]["reliability"]["lo"] <= best["metrics"]["reliability"]["hi"]
        assert "best design" in proc.stdout
    assert (tmp_path / "plots" / "convergence.png").stat().st_size > 0
    assert (tmp_path / "plots" / "pareto.png").stat().st_size > 0


@pytest.mark.parametrize("method", ["bo", "random"])
def test_resume_from_partial_log_gives_the_same_answer(tmp_path, method):
    workload = load_workload(DIGITS, FAST)
    full = optimize(workload, out_dir=tmp_path / "full", budget=6, method=method, with_fixed=False)
    log = Path(full.log_paths[method])
    lines = log.read_text().splitlines()
    assert len(lines) == 7  # header + 6 evaluations
    partial_dir = tmp_path / "partial"
    partial_dir.mkdir()
    # a run that died after three evaluations, in the middle of writing the fourth
    (partial_dir / log.name).write_text("\n".join(lines[:4]) + "\n" + lines[4][:25])
    replayed = []
    resumed = optimize(
        workload,
        out_dir=partial_dir,
        budget=6,
        method=method,
        with_fixed=False,
        on_evaluation=lambda p: replayed.append(p.replayed),
    )
    assert replayed == [True] * 3 + [False] * 3
    assert resumed.evaluated == 3
    assert [e.design for e in resumed.search.evaluations] == [
        e.design for e in full.search.evaluations
    ]
    assert resumed.search.best_index == full.search.best_index
    assert resumed.best == full.best
    assert (
        json.loads((partial_dir / "optimize.json").read_text())["best"]
        == (json.loads((tmp_path / "full" / "optimize.json").read_text())["best"])
    )


def test_changed_constraint_starts_a_fresh_log(tmp_path):
    workload = load_workload(DIGITS, FAST)
    first = optimize(workload, out_dir=tmp_path, budget=3, method="random", with_fixed=False)
    other = load_workload(DIGITS, [*FAST, "optimize.constraints.min_accuracy=0.5"])
    second = optimize(other, out_dir=tmp_path, budget=3, method="random", with_fixed=False)
    assert first.log_paths["random"] != second.log_paths["random"]
    assert second.evaluated == 3
    shutil.rmtree(tmp_path)
