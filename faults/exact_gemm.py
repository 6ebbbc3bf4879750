"""Fault-free layer values of many faulty injections at once, in float32 BLAS where exact.

After a fault got through, the later layers of every such injection are fault-free GEMMs
(:func:`accelsim.datapath.compute_fault_free`, float64 BLAS below 2**53). A float32 GEMM is
about twice as fast and just as exact while every partial sum of ``a @ w`` is an integer below
2**24 in magnitude, in any summation order (FMA included): the products are integers of at
most 16 bits, and any partial sum of column n is at most ``max|a| * sum_k |w[k, n]|``. That
bound uses the layer's actual weights (read-only, so their column sums are kept), which is far
tighter than ``K * max|a| * max|w|``. Where the whole of K exceeds it, K is cut into the fewest
ranges that each stay below it, each range one float32 GEMM, their results added in int64.
The overflow rule then acts exactly as in ``accelsim.kernels.run_gemm`` (wrap once; saturate
only where no partial sum can reach the limits, else ``compute_fault_free``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from accelsim.codes import OVERFLOW_CODES, OVERFLOW_WRAP
from accelsim.datapath import GemmOperands, compute_fault_free
from accelsim.derived import derived
from accelsim.intmath import wrap_array
from accelsim.schedule import GemmShape

FLOAT32_EXACT = 1 << 24  # integers up to here are exact in float32


def _column_abs_prefix(w: np.ndarray) -> np.ndarray:
    """``prefix[k, n] = sum_{k' < k} |w[k', n]|``, shape (K + 1, N) (int32 where it fits)."""
    magnitude = np.abs(w)
    total = int(magnitude.sum(axis=0).max()) if w.size else 0
    dtype = np.int32 if total < 2**31 else np.int64
    prefix = np.zeros((w.shape[0] + 1, w.shape[1]), dtype=dtype)
    np.cumsum(magnitude, axis=0, dtype=dtype, out=prefix[1:])
    return prefix


def prepare_weights(w: np.ndarray) -> None:
    """Compute and keep what :func:`fault_free_psums` needs of a read-only weight matrix (the
    golden run does it for every layer, so no injection pays it)."""
    if not w.flags.writeable:
        derived(w, "column_abs_prefix", _column_abs_prefix)
        derived(w, "float32", _as_float32)


def k_chunks(prefix: np.ndarray, max_a: int) -> list[tuple[int, int]] | None:
    """The fewest consecutive k ranges over which every column's partial sums stay below
    2**24 when ``|a| <= max_a`` (greedy, each as long as it can be); None if one row of w
    alone can exceed it. One range when the whole of K fits."""
    k_total = prefix.shape[0] - 1
    limit = (FLOAT32_EXACT - 1) // max(max_a, 1)  # a chunk's column sums may reach this

    def fits(k0: int, k1: int) -> bool:
        return int((prefix[k1] - prefix[k0]).max()) <= limit

    chunks, k0 = [], 0
    while k0 < k_total:
        if not fits(k0, k0 + 1):
            return None
        lo, hi = k0 + 1, k_total  # fits(k0, lo) holds; find the largest k1 that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(k0, mid) else (lo, mid - 1)
        chunks.append((k0, lo))
        k0 = lo
    return chunks


def _max_abs(x: np.ndarray) -> int:
    return max(int(x.max()), -int(x.min()))  # no |x| temporary: a is large


def _as_float32(w: np.ndarray) -> np.ndarray:
    return w.astype(np.float32)


def fault_free_psums(shape: GemmShape, ops: GemmOperands) -> None:
    """``ops.psum`` updated in place to every group's fault-free GEMM: what
    :func:`accelsim.datapath.compute_fault_free` gives (tested equal), in float32 where exact."""
    overflow = OVERFLOW_CODES[shape.overflow]
    acc_bits = int(shape.acc_bits)
    for g in range(shape.groups):
        a, w, psum = ops.a[g], ops.w[g], ops.psum[g]
        static = not w.flags.writeable  # a layer's weight matrix: its facts are kept
        chunks = None
        if static and a.size and w.size:
            prefix = derived(w, "column_abs_prefix", _column_abs_prefix)
            max_a = _max_abs(a)
            total_bound = max_a * int(prefix[-1].max()) + _max_abs(psum)
            if overflow == OVERFLOW_WRAP or total_bound < (1 << (acc_bits - 1)):
                chunks = k_chunks(prefix, max_a)
        if chunks is None:
            compute_fault_free(_one_group(shape), _group_operands(ops, g))
            continue
        w32 = derived(w, "float32", _as_float32)
        a32 = a.astype(np.float32)
        for k0, k1 in chunks:  # each chunk's sum is exact in float32; int64 adds them exactly
            psum += (a32[:, k0:k1] @ w32[k0:k1]).astype(np.int64)
        if overflow == OVERFLOW_WRAP and total_bound >= 1 << (acc_bits - 1):
            psum[...] = wrap_array(psum, acc_bits)  # else every value is in range already


def _one_group(shape: GemmShape) -> GemmShape:
    return replace(shape, groups=1)


def _group_operands(ops: GemmOperands, g: int) -> GemmOperands:
    return GemmOperands(a=[ops.a[g]], w=[ops.w[g]], psum=[ops.psum[g]], bias=[ops.bias[g]])
