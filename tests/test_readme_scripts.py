"""Scripts never hang: every Python block of the README runs as a saved script, and a call
that would start spawned workers from an unguarded script runs serially with a warning."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def run_script(tmp_path: Path, text: str, name: str = "script.py") -> subprocess.CompletedProcess:
    (tmp_path / "workloads").symlink_to(ROOT / "workloads")  # the README's relative paths
    script = tmp_path / name
    script.write_text(text)
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )


def test_the_readme_has_python_blocks():
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_readme_python_block_runs_as_a_script(tmp_path, block):
    if "import pandas" in block and importlib.util.find_spec("pandas") is None:
        pytest.skip("the block analyses with pandas, which is not installed")
    done = run_script(tmp_path, block)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr


POOL = """
import os
from accelsim.workers import worker_pool

def pid(shared, item):
    return os.getpid()

{body}
"""


def test_an_unguarded_script_runs_serially_and_says_where(tmp_path):
    body = "with worker_pool(2) as pool:\n    print(len(set(pool.map(pid, range(4)))), os.getpid())"
    done = run_script(tmp_path, POOL.format(body=body))
    assert done.returncode == 0, done.stderr
    workers, _ = done.stdout.split()
    assert workers == "1"  # this process did the work
    assert "script.py:8" in done.stderr and '__name__ == "__main__"' in done.stderr


def test_a_guarded_script_gets_its_worker_processes(tmp_path):
    body = (
        'if __name__ == "__main__":\n'
        "    with worker_pool(2) as pool:\n"
        "        print(os.getpid() not in set(pool.map(pid, range(4))))"
    )
    done = run_script(tmp_path, POOL.format(body=body))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True" and "RuntimeWarning" not in done.stderr
