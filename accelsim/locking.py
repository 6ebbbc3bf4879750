"""One run per output folder: an exclusive lock held while a command writes there.

Two runs on one folder used to interleave their logs (an ``optimize`` log then reads as
damaged and every evaluation is lost) or do the same injections twice. The second run is
now refused at once, naming the folder and the options that help; ``wait=True`` queues it
behind the first instead. The lock is an OS lock (``flock``), so a killed run releases it.

A folder the run created and left holding only the lock is removed again (a refused or
failed run leaves nothing behind). A waiter may thus wake holding a lock file that has just
been unlinked: it checks that the file it locked is still the one at the path, and else takes
the new one, so two runs can never both hold the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import AccelsimError

LOCK_NAME = ".accelsim.lock"


@contextlib.contextmanager
def exclusive_folder(
    folder: str | Path, *, wait: bool = False, remove_if_unused: bool | None = None
) -> Iterator[Path]:
    """Hold ``folder``'s lock for the body (creating the folder); refuse if another run holds
    it, unless ``wait``. A folder this call created (or ``remove_if_unused``) that holds
    nothing but the lock afterwards is removed again."""
    folder = Path(folder)
    created = not folder.exists() if remove_if_unused is None else remove_if_unused
    lock_path = folder / LOCK_NAME
    fd = _acquire(folder, lock_path, wait=wait)
    try:
        yield folder
    finally:
        if created:
            _remove_if_only_the_lock(folder, lock_path)  # while still holding it
        os.close(fd)  # releases the lock


def _acquire(folder: Path, lock_path: Path, *, wait: bool) -> int:
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder was removed between the two calls
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise AccelsimError(
                "another accelsim run is writing to this folder",
                file=folder,
                allowed="wait for it to finish, --wait to queue behind it, or --out another folder",
            ) from None
        try:
            current = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)  # the holder removed the file we waited on: take the new one


def _remove_if_only_the_lock(folder: Path, lock_path: Path) -> None:
    try:
        if [p.name for p in folder.iterdir()] == [lock_path.name]:
            lock_path.unlink()
            os.rmdir(folder)
    except OSError:
        pass  # something else appeared meanwhile: leave the folder as it is
