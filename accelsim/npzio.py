"""Reading .npz files a user hands us: sizes checked from the headers, never unpickled.

``numpy.load`` decompresses and allocates a member before anyone sees its shape, so a 75 MB
archive whose member declares 16 GiB costs 16 GiB. Here every member's ``.npy`` header is
read first (a few hundred bytes of the decompressed stream) and the whole archive is refused,
with one line naming the file and the member, when a member is not ``.npy``, holds objects,
or declares more bytes than the limit; only then are the arrays read.
"""

from __future__ import annotations

import os
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AccelsimError

# the largest array a file may declare; a setting for users with bigger machines
MAX_ARRAY_BYTES_ENV = "ACCELSIM_MAX_ARRAY_BYTES"
DEFAULT_MAX_ARRAY_BYTES = 2 << 30

# what a damaged archive can raise while being opened or read; anything else is a bug
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,  # unknown compression method
    KeyError,
)


def max_array_bytes() -> int:
    """The limit on one declared array, from ``ACCELSIM_MAX_ARRAY_BYTES`` or 2 GiB."""
    text = os.environ.get(MAX_ARRAY_BYTES_ENV)
    if text is None:
        return DEFAULT_MAX_ARRAY_BYTES
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise AccelsimError(
            f"{MAX_ARRAY_BYTES_ENV}={text!r} is not a positive integer",
            key=MAX_ARRAY_BYTES_ENV,
            allowed="bytes, e.g. 8589934592 for 8 GiB",
        )
    return value


@dataclass(frozen=True)
class MemberHeader:
    """What a member's ``.npy`` header declares."""

    name: str  # without ".npy"
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.float64)) * self.dtype.itemsize


def read_headers(path: Path, *, what: str = "file") -> list[MemberHeader]:
    """Every member's header, refusing non-``.npy`` members, objects and declared sizes over
    :func:`max_array_bytes` — without decompressing any member's data."""
    if not path.is_file():
        raise AccelsimError(f"{what} not found", file=path)
    if not zipfile.is_zipfile(path):
        raise AccelsimError(
            f"not a .npz (zip) archive: truncated, corrupted or not a {what}", file=path
        )
    limit = max_array_bytes()
    headers = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                headers.append(_member_header(archive, info, path))
    except AccelsimError:
        raise
    except ARCHIVE_ERRORS as exc:
        raise AccelsimError(f"unreadable .npz ({exc})", file=path) from None
    for header in headers:
        if header.nbytes > limit:
            raise AccelsimError(
                f"array {header.name!r} declares {header.nbytes / 2**30:.3g} GiB "
                f"(shape {header.shape}), over the limit of {limit / 2**30:.3g} GiB",
                file=path,
                key=header.name,
                allowed=f"a smaller array, or raise {MAX_ARRAY_BYTES_ENV}",
            )
    return headers


_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> MemberHeader:
    if not info.filename.endswith(".npy"):
        raise AccelsimError(
            f"member {info.filename!r} is not a .npy array", file=path, allowed="an npz of arrays"
        )
    name = info.filename[: -len(".npy")]
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read_header(stream)
        except (ValueError, SyntaxError, tokenize.TokenError) as exc:  # numpy parses it as Python
            raise AccelsimError(
                f"array {name!r} has no valid .npy header ({exc})", file=path, key=name
            ) from None
    if dtype.hasobject:
        raise AccelsimError(
            f"array {name!r} holds pickled objects; refused",
            file=path,
            key=name,
            allowed="plain numeric arrays (no pickle)",
        )
    return MemberHeader(name=name, shape=tuple(int(s) for s in shape), dtype=dtype)


def load_npz(path: str | Path, *, what: str = "file") -> dict[str, np.ndarray]:
    """All arrays of a user's npz, after :func:`read_headers` has passed them."""
    path = Path(path)
    read_headers(path, what=what)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except ARCHIVE_ERRORS as exc:
        raise AccelsimError(f"unreadable .npz ({exc})", file=path) from None
