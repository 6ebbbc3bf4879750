"""Fault-free layer values of many faulty injections at once, in float32 BLAS where exact.

After a fault got through, the later layers of every such injection are fault-free GEMMs
(:func:`accelsim.datapath.compute_fault_free`, float64 BLAS below 2**53). A float32 GEMM is
about twice as fast and just as exact while every partial sum of ``a @ w`` is an integer below
2**24 in magnitude, in any summation order (FMA included): the products are integers of at
most 16 bits, and any partial sum of column n is at most ``max|a| * sum_k |w[k, n]|``. That
bound uses the layer's actual weights (read-only, so the column sums are kept), which is far
tighter than ``K * max|a| * max|w|``; the overflow rule then acts exactly as in
``accelsim.kernels.run_gemm``. Where the bound fails, ``compute_fault_free`` runs instead.
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


def _column_abs_sums(w: np.ndarray) -> int:
    return int(np.abs(w).sum(axis=0).max()) if w.size else 0


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
        column = derived(w, "column_abs_sums", _column_abs_sums) if static else 0
        max_a = int(np.abs(a).max()) if a.size else 0
        product_bound = max_a * column
        total_bound = product_bound + (int(np.abs(psum).max()) if psum.size else 0)
        exact = (
            static
            and a.size > 0
            and product_bound < FLOAT32_EXACT
            and (overflow == OVERFLOW_WRAP or total_bound < (1 << (acc_bits - 1)))
        )
        if not exact:
            compute_fault_free(_one_group(shape), _group_operands(ops, g))
            continue
        w32 = derived(w, "float32", _as_float32)
        product = (a.astype(np.float32) @ w32).astype(np.int64)
        psum += product
        if overflow == OVERFLOW_WRAP:
            psum[...] = wrap_array(psum, acc_bits)


def _one_group(shape: GemmShape) -> GemmShape:
    return replace(shape, groups=1)


def _group_operands(ops: GemmOperands, g: int) -> GemmOperands:
    return GemmOperands(a=[ops.a[g]], w=[ops.w[g]], psum=[ops.psum[g]], bias=[ops.bias[g]])
