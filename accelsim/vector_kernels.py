"""Numba fast path for the integer vector ops on the hot paths (simulator, batched injector).

:func:`run_vector_node` returns exactly what :func:`accelsim.executor.run_node` returns (int64,
same shape, same values): the requantising ``add`` and ``maxpool2d`` of integer graphs run as
one Numba pass each, every other op, float graphs and any node whose attrs or params the
kernels do not cover go to the executor itself. Which path a node takes is decided by looking
at it (:func:`fast_path_op`), never by catching an exception.

The arithmetic is the executor's (docs/semantics.md): int64 throughout, wrapping on overflow
like numpy's int64 does, through :func:`accelsim.intmath.requantize`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import executor
from .intmath import requantize
from .ir import Graph, Node
from .ops import SHIFT_RANGE, attr, pool_out

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


# ---- kernels ---------------------------------------------------------------------------------


@njit(cache=True)
def _requantised_add(a, b, multiplier_a, multiplier_b, shift, zero_point, lo, hi):
    """``clamp(rounding_rshift(a*ma + b*mb, shift) + zp, lo, hi)`` over flat int64 arrays."""
    out = np.empty_like(a)
    for i in range(a.size):
        out[i] = requantize(a[i] * multiplier_a + b[i] * multiplier_b, 1, shift, zero_point, lo, hi)
    return out


@njit(cache=True)
def _maxpool(x, kh, kw, sh, sw, ph, pw, oh, ow):
    """Max over each window of ``x`` (B, C, H, W); positions outside the input are padding,
    which holds int64's minimum (the executor's pad value), so it never beats a real value
    and a window with no real value gives that minimum.

    Separable: per output row, the max over the window's input rows column by column (a
    contiguous pass the compiler vectorises), then the max over each window's columns."""
    n, c, h, w = x.shape
    out = np.empty((n, c, oh, ow), dtype=np.int64)
    column_max = np.empty(w, dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            plane = x[b, ch]
            for oy in range(oh):
                top = oy * sh - ph
                r0, r1 = max(top, 0), min(top + kh, h)
                column_max[:] = _INT64_MIN
                for r in range(r0, r1):
                    row = plane[r]
                    for col in range(w):
                        column_max[col] = max(column_max[col], row[col])
                for ox in range(ow):
                    left = ox * sw - pw
                    best = _INT64_MIN
                    for col in range(max(left, 0), min(left + kw, w)):
                        best = max(best, column_max[col])
                    out[b, ch, oy, ox] = best
    return out


# ---- which nodes the kernels cover -----------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _int64_scalar(value) -> bool:
    return _is_int(value) and _INT64_MIN <= int(value) <= _INT64_MAX


def _int_pair(value, lo: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_int(v) and int(v) >= lo for v in value)
    )


def _add_covered(node: Node) -> bool:
    a, p = node.attrs, node.params
    params_ok = all(
        isinstance(p.get(name), np.ndarray) and p[name].dtype == np.int64 and p[name].ndim == 0
        for name in ("multiplier_a", "multiplier_b")
    )
    # shifts outside the IR's range: numpy and LLVM disagree on shifts by 64 or more
    shift = a.get("shift")
    shift_ok = _is_int(shift) and SHIFT_RANGE[0] <= int(shift) <= SHIFT_RANGE[1]
    bounds = [a.get(name) for name in ("out_lo", "out_hi", "out_zero_point")]
    # lo > hi: np.clip and intmath.requantize disagree (the IR never allows it)
    bounds_ok = all(_int64_scalar(v) for v in bounds) and int(bounds[0]) <= int(bounds[1])
    return params_ok and shift_ok and bounds_ok


def _maxpool_covered(node: Node) -> bool:
    a = node.attrs
    if "kernel" not in a or "stride" not in a or "padding" not in a:
        return False
    ceil_mode = attr(node, "ceil_mode")
    return (
        _int_pair(a["kernel"], 1)
        and _int_pair(a["stride"], 1)
        and _int_pair(a["padding"], 0)
        and isinstance(ceil_mode, (bool, np.bool_))
    )


_COVERED = {"add": _add_covered, "maxpool2d": _maxpool_covered}


def fast_path_op(graph: Graph, node: Node) -> bool:
    """Whether :func:`run_vector_node` computes ``node`` with a kernel (not the executor),
    judged from the node alone; input shapes are checked per call."""
    covered = _COVERED.get(node.op)
    return graph.kind == "integer" and covered is not None and covered(node)


# ---- the entry point -------------------------------------------------------------------------


def _run_add(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    at = node.attrs
    out = _requantised_add(
        a.reshape(-1),
        b.reshape(-1),
        int(node.params["multiplier_a"]),
        int(node.params["multiplier_b"]),
        int(at["shift"]),
        int(at["out_zero_point"]),
        int(at["out_lo"]),
        int(at["out_hi"]),
    )
    return out.reshape(a.shape)


def _maxpool_geometry(node: Node, x: np.ndarray) -> tuple[int, ...]:
    kh, kw = (int(v) for v in node.attrs["kernel"])
    sh, sw = (int(v) for v in node.attrs["stride"])
    ph, pw = (int(v) for v in node.attrs["padding"])
    ceil_mode = bool(attr(node, "ceil_mode"))
    _, _, h, w = x.shape
    oh, ow = pool_out(h, kh, sh, ph, ceil_mode), pool_out(w, kw, sw, pw, ceil_mode)
    return kh, kw, sh, sw, ph, pw, oh, ow


def run_vector_node(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """:func:`accelsim.executor.run_node`, with Numba kernels for the integer ``add`` and
    ``maxpool2d``; the executor computes everything else (and any input it would reject)."""
    if not fast_path_op(graph, node):
        return executor.run_node(graph, node, inputs)
    # the executor's own check; C-contiguous for the kernels (no copy when already)
    arrays = [np.ascontiguousarray(a) for a in executor.checked_inputs(graph, node, inputs)]
    if node.op == "add":
        a, b = arrays
        if a.shape != b.shape:  # batch broadcasting (or an invalid graph's specs): numpy's job
            return executor.run_node(graph, node, arrays)
        return _run_add(node, a, b)
    (x,) = arrays
    if x.ndim != 4:
        return executor.run_node(graph, node, arrays)
    kh, kw, sh, sw, ph, pw, oh, ow = _maxpool_geometry(node, x)
    if oh < 1 or ow < 1:  # a kernel that does not fit: what the executor makes of it
        return executor.run_node(graph, node, arrays)
    return _maxpool(x, kh, kw, sh, sw, ph, pw, oh, ow)
