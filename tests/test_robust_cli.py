"""The commands under conditions a user creates: a second run on the same folder, a name that
points outside out/, a symlinked workload, a read-only output folder, a graph header nested
without bound, and a protected design's campaign."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from accelsim.app import safe_folder_name
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.ir import GRAPH_KEY, MAX_HEADER_NESTING, load_graph
from tests.helpers import one_error_line, write_mlp_workload

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "workloads" / "zoo" / "digits_mlp.npz"


def write_workload(folder: Path, **keys) -> Path:
    return write_mlp_workload(folder, "robust", **keys)


HOLD = """
import sys, time
from accelsim.locking import exclusive_folder
with exclusive_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_one_output_folder_is_refused_and_does_no_work(tmp_path, capsys):
    workload, out = write_workload(tmp_path), tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["inject", str(workload), "--out", str(out)]) == 2
        assert "another accelsim run is writing to this folder" in one_error_line(capsys)
        assert sorted(p.name for p in out.iterdir()) == [".accelsim.lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    assert main(["inject", str(workload), "--out", str(out)]) == 0  # free once the holder died
    assert (out / "faults.json").exists()


@pytest.mark.parametrize("name", ["../../escape", "/etc/passwd", "a b/c", "...", "x" * 500])
def test_a_workload_name_becomes_one_safe_folder_inside_out(name):
    folder = safe_folder_name(name)
    assert folder and "/" not in folder and not folder.startswith(".") and len(folder) <= 100
    assert (Path("out") / folder).resolve().parent == Path("out").resolve()


def test_results_of_a_name_with_dots_stay_inside_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workload = write_workload(tmp_path, name="../../escape")
    assert main(["run", str(workload), "--set", "faults.injections=1"]) == 0
    (written,) = [p for p in tmp_path.rglob("result.json")]
    assert written.parent.parent == tmp_path / "out" / "_.._escape"  # its run folder's parent
    assert written.parent.name.startswith("run-")


def test_a_symlinked_workload_resolves_paths_against_its_target(tmp_path):
    real, elsewhere = tmp_path / "real", tmp_path / "elsewhere"
    real.mkdir()
    elsewhere.mkdir()
    (real / "model.npz").write_bytes(MLP.read_bytes())
    target = write_workload(real, model="model.npz", faults=None)
    link = elsewhere / "link.yaml"
    link.symlink_to(target)
    assert main(["run", str(link), "--out", str(tmp_path / "out")]) == 0


def test_a_read_only_output_folder_is_refused_before_work(tmp_path, capsys):
    point = tmp_path / "ro"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        assert main(["run", str(write_workload(tmp_path)), "--out", str(point / "o")]) == 2
        line = one_error_line(capsys)
        assert "read-only" in line and str(point / "o") in line
    finally:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_a_graph_header_nested_without_bound_is_one_line(tmp_path):
    header = json.dumps({"format": "x"})[:-1] + ', "deep": ' + "[" * 200_000 + "]" * 200_000 + "}"
    path = tmp_path / "g.npz"
    blob = np.frombuffer(header.encode(), dtype=np.uint8)
    with zipfile.ZipFile(path, "w") as archive, archive.open(GRAPH_KEY + ".npy", "w") as member:
        np.save(member, blob)
    with pytest.raises(AccelsimError, match=f"at most {MAX_HEADER_NESTING} levels"):
        load_graph(path)


def test_inject_measures_the_protected_design_not_the_bare_one(tmp_path, monkeypatch):
    """Every command applies the whole workload: ``inject`` protects the neurons ``run``
    protects (here an explicit list), so its campaign measures the configured design."""
    import faults.console_steps as steps

    seen = {}

    def record(workload, out_dir, console, **options):
        seen.update(options)
        return {}

    monkeypatch.setattr(steps, "run_campaign_with_progress", record)
    protection = {"redundant_units": 4, "protected_neurons": {"fc1": [0, 3]}}
    workload = write_workload(tmp_path, accelerator={"protection": protection})
    assert main(["inject", str(workload), "--out", str(tmp_path / "out")]) == 0
    assert seen["protected"] == {"fc1": [0, 3]}


def test_wait_queues_behind_the_run_that_holds_the_folder(tmp_path):
    """``--wait``: the second run starts once the first has finished, and both complete."""
    workload, out = write_workload(tmp_path), tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD.replace("time.sleep(60)", "time.sleep(3)"), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    assert main(["inject", str(workload), "--out", str(out), "--wait"]) == 0
    assert holder.wait() == 0  # the holder had finished before the waiting run went on
    assert (out / "faults.json").exists()
