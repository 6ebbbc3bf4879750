"""One run per output folder: an exclusive lock held while a command writes there.

Two runs on one folder used to interleave their logs (an ``optimize`` log then reads as
damaged and every evaluation is lost) or do the same injections twice. The second run is
now refused at once, naming the folder and the options that help; ``wait=True`` queues it
behind the first instead. The lock is an OS lock (``filelock``): a killed run releases it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import AccelsimError

LOCK_NAME = ".accelsim.lock"


@contextmanager
def exclusive_folder(
    folder: str | Path, *, wait: bool = False, remove_if_unused: bool | None = None
) -> Iterator[Path]:
    """Hold ``folder``'s lock for the body (creating the folder); refuse if another run holds
    it, unless ``wait``. A folder this call created (or ``remove_if_unused``) that holds
    nothing but the lock afterwards is removed again."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    created = not folder.exists() if remove_if_unused is None else remove_if_unused
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_NAME
    lock = FileLock(lock_path, timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise AccelsimError(
            "another accelsim run is writing to this folder",
            file=folder,
            allowed="wait for it to finish, --wait to queue behind it, or --out another folder",
        ) from None
    try:
        yield folder
    finally:
        if created:
            _remove_if_only_the_lock(folder, lock_path)  # while still holding it
        lock.release()


def _remove_if_only_the_lock(folder: Path, lock_path: Path) -> None:
    try:
        if [p.name for p in folder.iterdir()] == [lock_path.name]:
            lock_path.unlink()
            os.rmdir(folder)
    except OSError:
        pass  # something else appeared meanwhile: leave the folder as it is
