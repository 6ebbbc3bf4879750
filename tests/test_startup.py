"""Start-up: ``python -m accelsim run`` reaches the simulator without the heavy libraries.

Wall time is never asserted (the machine may be busy); what makes start-up fast is: no
torch (a cached builtin model needs none), no GP stack, matplotlib or dask before the first
simulated layer. The figure itself is printed by ``python -m bench.startup``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "GPy", "emukit", "matplotlib", "dask", "distributed", "scipy.stats")

# stops the command where the first batch would start, and reports what was imported by then
PROBE = """
import sys
import accelsim.hw.accelerator as accelerator

def first_batch(self, *args, **kwargs):
    print("heavy:", sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
    raise SystemExit(0)

accelerator.Accelerator.run = first_batch
from accelsim.app import main
main(sys.argv[1:])
"""


def _imports_before_first_batch(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ACCELSIM_CACHE_DIR": str(tmp_path)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stderr.splitlines() if line.startswith("heavy:"))[7:]


def test_run_on_the_shipped_model_imports_no_heavy_library(tmp_path):
    out = tmp_path / "out"
    assert (
        _imports_before_first_batch(tmp_path, "run", "workloads/digits_cnn.yaml", "--out", str(out))
        == "[]"
    )


@pytest.mark.parametrize("workload", ["mobilenet_block.yaml"])
def test_a_cached_builtin_needs_no_torch(tmp_path, workload):
    """The first run exports the model (torch); every later run reads the cached graph."""
    args = ["run", f"workloads/{workload}", "--set", "model.input_size=8", "--set", "batch=1"]
    _imports_before_first_batch(tmp_path, *args, "--out", str(tmp_path / "a"))  # exports
    assert _imports_before_first_batch(tmp_path, *args, "--out", str(tmp_path / "b")) == "[]"


# prints a marker when the first slow library starts to load: the command's first words must
# come before it
FIRST_SLOW_IMPORT = """
import sys

class Marker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {slow!r}:
            print("<<slow import>>", flush=True)
            sys.meta_path.remove(self)
        return None

sys.meta_path.insert(0, Marker())
from accelsim.app import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["export", "digits_mlp", "--out", "{tmp}/mlp.npz"],
        ["bench", "sim", "--quick"],
    ],
    ids=["export", "bench"],
)
def test_long_commands_say_what_they_do_before_loading_anything_slow(tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    slow = ("torch", "numba", "scipy", "GPy", "simpy")
    done = subprocess.Popen(
        [sys.executable, "-c", FIRST_SLOW_IMPORT.format(slow=slow), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ACCELSIM_CACHE_DIR": str(tmp_path)},
    )
    try:
        first = done.stdout.readline()
    finally:
        done.kill()
        done.wait()
    assert first.split()[0] in ("exporting", "bench"), first
    assert "<<slow import>>" not in first  # what it does is said before anything slow loads


def test_on_a_terminal_the_spinner_shows_before_the_work_starts(monkeypatch):
    import io

    from rich.console import Console

    from accelsim import app

    screen = io.StringIO()
    monkeypatch.setattr(app, "console", Console(file=screen, force_terminal=True, width=80))
    with app.started("loading w.yaml …", log=False):
        assert "loading w.yaml" in screen.getvalue()  # drawn before any work in the block


def test_in_a_log_a_long_step_is_one_line_and_a_short_one_nothing(monkeypatch):
    import io

    from rich.console import Console

    from accelsim import app

    log = io.StringIO()
    monkeypatch.setattr(app, "console", Console(file=log, force_terminal=False, width=80))
    with app.started("exporting x …"):
        pass
    with app.started("loading w.yaml …", log=False):
        pass
    assert log.getvalue() == "exporting x …\n"
