"""Output folders are checked before work starts; OS failures are one line naming the path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from accelsim.errors import AccelsimError
from accelsim.outputs import check_file_target, os_error, prepare_folder


@pytest.fixture
def tmpfs(tmp_path):
    """A mounted tmpfs of 64 KiB (skipped where this process may not mount)."""
    mounts = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounts)}"
        point.mkdir()
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True
        )
        if made.returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_a_file_in_the_way_is_refused(tmp_path):
    blocker = tmp_path / "result"
    blocker.write_text("x")
    with pytest.raises(AccelsimError, match="not a folder") as info:
        prepare_folder(blocker)
    assert str(blocker) in str(info.value) and "--out" in str(info.value)
    with pytest.raises(AccelsimError, match="file is in the way"):
        prepare_folder(blocker / "sub")


def test_a_folder_where_a_file_is_wanted_is_refused(tmp_path):
    with pytest.raises(AccelsimError, match="is a folder"):
        check_file_target(tmp_path, key="--trace")


def test_a_read_only_mount_is_refused_before_work(tmpfs):
    point = tmpfs("size=64k,ro")
    with pytest.raises(AccelsimError, match="read-only") as info:
        prepare_folder(point / "out")
    assert "\n" not in str(info.value)
    assert not (point / "out").exists()


def test_a_full_disk_is_one_line(tmpfs):
    point = tmpfs("size=64k")
    with pytest.raises(OSError) as raised:
        (point / "big.bin").write_bytes(b"\0" * (1 << 20))
    message = str(os_error(raised.value, point / "big.bin"))
    assert "no space left" in message and str(point) in message and "\n" not in message
