"""Values derived from an array and kept while the array lives (built once, never stale for
arrays nobody writes: the IR's weights and the read-only weight matrices built from them)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
_DERIVED: dict[tuple[int, str], Any] = {}


def derived(array: np.ndarray, name: str, build: Callable[[np.ndarray], T]) -> T:
    """``build(array)``, computed on the first call for this array and ``name``.

    Keyed by the array's identity, dropped when the array is collected. Only read-only arrays
    are cached (the IR's parameters are: ``accelsim.ir.Params``); a writeable array could be
    edited in place after the first call, so its value is rebuilt every time.
    """
    if array.flags.writeable:
        return build(array)
    key = (id(array), name)
    if key not in _DERIVED:
        _DERIVED[key] = build(array)
        weakref.finalize(array, _DERIVED.pop, key, None)
    return _DERIVED[key]
