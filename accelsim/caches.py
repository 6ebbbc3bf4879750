"""Where accelsim keeps what it can recompute: exported builtin graphs, quantised integer graphs,
vulnerability records.

One folder per user — platformdirs' cache folder (``~/.cache/accelsim`` on Linux), or
``$ACCELSIM_CACHE_DIR`` — never the current directory or the workload's folder, so a run
works the same from anywhere and a read-only checkout is fine. Entries are keyed by their
content, written atomically (temp file + rename) and never pickled: two runs share them
safely, and deleting the folder costs only time.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import AccelsimError

T = TypeVar("T")

CACHE_ENV = "ACCELSIM_CACHE_DIR"


def cache_root() -> Path:
    """``$ACCELSIM_CACHE_DIR`` if set, else the user's cache folder for accelsim."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("accelsim", appauthor=False))


def cache_dir(kind: str) -> Path:
    """The folder of one kind of entry (``models``, ``quantized``, ``vf``); created when first
    written."""
    return cache_root() / kind


class UserCache:
    """:func:`cache_dir` of ``kind`` as a path-like default argument, resolved each time it is
    used (``Path(UserCache("vf"))``), so ``ACCELSIM_CACHE_DIR`` set after import still counts."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __fspath__(self) -> str:
        return str(cache_dir(self.kind))

    def __repr__(self) -> str:
        return f"UserCache({self.kind!r})"


def cached_entry(
    path: Path,
    build: Callable[[], T],
    *,
    load: Callable[[Path], T],
    save: Callable[[T, Path], None],
    folder_limit_bytes: int | None = None,
) -> T:
    """``load(path)`` if that works, else ``build()``, saved to ``path`` for the next run.

    An entry ``load`` refuses (:class:`AccelsimError`: damaged, truncated, another format) is
    rebuilt without a word; a ``save`` that fails with an OSError (read-only or missing
    folder, full disk) is a RuntimeWarning: a cache costs time, never the run. ``save`` must
    write atomically (``accelsim.jsonio.atomic_file``) so that no reader sees half an entry.
    ``folder_limit_bytes``: after a save, the least recently used entries of the folder are
    deleted until it holds at most that much (a hit marks its entry used).
    """
    if path.is_file():
        try:
            value = load(path)
        except AccelsimError:
            pass  # a damaged cache entry is rebuilt, not reported
        else:
            if folder_limit_bytes is not None:
                _mark_used(path)
            return value
    value = build()
    try:
        save(value, path)
    except OSError as exc:
        warnings.warn(f"not cached: {path}: {exc.strerror or exc}", RuntimeWarning, stacklevel=3)
    else:
        if folder_limit_bytes is not None:
            prune_least_recently_used(path.parent, folder_limit_bytes, keep=path)
    return value


def _mark_used(path: Path) -> None:
    with contextlib.suppress(OSError):  # a read-only cache still serves; eviction order aside
        os.utime(path)


def prune_least_recently_used(folder: Path, limit_bytes: int, *, keep: Path) -> None:
    """Delete ``folder``'s entries (files named like ``keep``'s suffix), least recently used
    (modified) first, until they take at most ``limit_bytes``; ``keep`` (the entry just
    written) stays. Entries another run deletes
    meanwhile, or that cannot be deleted, are skipped: eviction is best effort."""
    entries = []
    for entry in folder.iterdir():
        try:
            stat = entry.stat()
        except OSError:
            continue
        # entries only: a ".name.tmp" is another run's write in progress (atomic_file)
        if entry.is_file() and entry.suffix == keep.suffix and entry.name != keep.name:
            entries.append((stat.st_mtime, stat.st_size, entry))
    try:
        total = keep.stat().st_size + sum(size for _, size, _ in entries)
    except OSError:
        return
    for _, size, entry in sorted(entries):
        if total <= limit_bytes:
            break
        try:
            entry.unlink()
        except OSError:
            continue
        total -= size
