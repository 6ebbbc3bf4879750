"""One run per output folder: a second run is refused at once, a killed run frees the lock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from accelsim.errors import AccelsimError
from accelsim.locking import LOCK_NAME, exclusive_folder

HOLD = """
import sys, time
from accelsim.locking import exclusive_folder
with exclusive_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(folder):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_run_on_the_same_folder_is_refused_at_once(tmp_path):
    folder = tmp_path / "out"
    holder = _holder(folder)
    try:
        # refused rather than queued: a wait would outlast the holder and then not raise
        with (
            pytest.raises(AccelsimError, match="another accelsim run") as info,
            exclusive_folder(folder),
        ):
            pass
        assert "--out" in str(info.value) and str(folder) in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    with exclusive_folder(folder):  # a killed holder released it
        (folder / "result.json").write_text("{}")
    assert (folder / "result.json").exists()


def test_a_folder_left_empty_is_removed_and_an_existing_one_kept(tmp_path):
    with exclusive_folder(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with exclusive_folder(existing):
        assert (existing / LOCK_NAME).exists()
    assert existing.is_dir()
