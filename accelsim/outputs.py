"""Output folders and files: checked before work starts, and OS failures as one clear line.

A run that would fail to write its result after an hour of simulation is refused at the
start instead (a file in the way, a read-only mount, no permission), and a failure that can
only show up while writing (a full disk) becomes an :class:`AccelsimError` naming the path,
not a traceback. Results themselves are written atomically (:mod:`accelsim.jsonio`).
"""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

from .errors import AccelsimError

_WHY = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file is in the way of a folder",
    errno.EISDIR: "a folder is in the way of a file",
    errno.EEXIST: "a file is in the way",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EPIPE: "the output was closed (broken pipe)",
}

ALLOWED = "a writable folder with free space (--out DIR)"
# the OS failures that are about what the user chose, not a bug of ours
USER_OS_ERRORS = frozenset(_WHY)


def os_error(exc: OSError, path: str | Path | None = None, *, what: str = "write") -> AccelsimError:
    """The one-line user error for an OS failure on a path the user chose."""
    where = path if path is not None else exc.filename
    why = _WHY.get(exc.errno, exc.strerror or str(exc))
    return AccelsimError(f"cannot {what}: {why}", file=where, allowed=ALLOWED)


def prepare_folder(folder: str | Path, *, key: str = "--out") -> Path:
    """Create ``folder`` if needed and prove it writable with a probe file, before any work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise AccelsimError("exists and is not a folder", file=folder, key=key, allowed=ALLOWED)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise os_error(exc, folder) from None
    return folder


def check_file_target(path: str | Path, *, key: str) -> Path:
    """A file the user names for us to write (``--trace``, ``--out x.npz``): not a folder, and
    its folder writable."""
    path = Path(path)
    if path.is_dir():
        raise AccelsimError("is a folder", file=path, key=key, allowed="a file name")
    prepare_folder(path.parent if str(path.parent) else Path("."), key=key)
    return path
