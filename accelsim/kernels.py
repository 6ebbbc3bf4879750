"""Numba kernels of the PE array: one call computes one fold (or one protected GEMM).

Two paths, one semantics (docs/semantics.md sections 3-4, docs/dataflows.md):

* **fault-free** — every dataflow accumulates ``acc = overflow(acc + a*w)`` in ascending k
  starting at ``psum_in`` (bubbles and idle rows add exact zeros, which change nothing), so
  the fold is a GEMM with the overflow rule. A tight m-k-n loop (n contiguous) does it;
  whole layers (``run_gemm``, ``exact_float32_gemm_into``) use float32 BLAS instead, K cut
  into chunks whose partial sums are integers below 2**24 (exact in any summation order),
  the chunks summed in int64 — or float64 BLAS below 2**53 where float32 chunks would be too
  short (wide operands) — when the overflow rule cannot bite early.
* **faulty** — the fold is emulated register by register and cycle by cycle over the block of
  PEs that can influence its outputs (``mapping.emulated_extent``), with exactly the clocking
  of ``accelsim/refmodel.py``. ws/is emulation with transient flips only is restricted to the
  streamed slots the flips can reach (slots never interact in those dataflows).

``run_fold`` checks its arguments and calls ``fold_values``, which does the rest inside Numba;
``chain_values`` recomputes one output tile's whole k-chain (with faults) in one Numba call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import mapping
from .codes import (
    ACCUMULATOR,
    CHAIN_POSITION,
    CHAIN_ROW_WIDTH,
    FAULT_COL,
    FAULT_CYCLE,
    FAULT_KIND,
    FAULT_MASK,
    FAULT_REGISTER,
    FAULT_ROW,
    FAULT_ROW_WIDTH,
    FLIP,
    INPUT,
    IS,
    N_FAULT_KINDS,
    N_REGISTER_CLASSES,
    OS,
    OVERFLOW_WRAP,
    PRODUCT,
    STATIONARY,
    STUCK0,
    WEIGHT,
    WS,
)
from .derived import derived
from .intmath import accumulate, flip_bits, force_bits, wrap
from .pe_spec import PESpec

# ---- fault-free GEMM --------------------------------------------------------------------


@njit(cache=True)
def _gemm_exact(a, w, psum_in):
    """``psum_in + a @ w`` in int64 (caller guarantees no int64 overflow)."""
    M, K = a.shape
    N = w.shape[1]
    out = psum_in.copy()
    for m in range(M):
        row = out[m]
        for k in range(K):
            av = a[m, k]
            if av == 0:  # padding zeros and ReLU zeros are common: skip the row of MACs
                continue
            wk = w[k]
            for n in range(N):
                row[n] += av * wk[n]
    return out


@njit(cache=True)
def _gemm_saturating(a, w, psum_in, acc_bits):
    """Sequential ``acc = saturate(acc + a*w)`` in ascending k, every add clamped."""
    M, K = a.shape
    N = w.shape[1]
    hi = (1 << (acc_bits - 1)) - 1
    lo = -(1 << (acc_bits - 1))
    out = psum_in.copy()
    for m in range(M):
        row = out[m]
        for k in range(K):
            av = a[m, k]
            if av == 0:  # saturate(acc + 0) == acc for an in-range acc
                continue
            wk = w[k]
            for n in range(N):
                v = row[n] + av * wk[n]
                row[n] = min(max(v, lo), hi)
    return out


@njit(cache=True)
def _wrap_all(values, bits):
    flat = values.ravel()
    for i in range(flat.size):
        flat[i] = wrap(flat[i], bits)
    return values


@njit(cache=True)
def max_abs(x):
    """max |x| over an integer array (0 when empty), without a temporary."""
    best = 0
    for v in x.ravel():
        best = max(best, abs(v))
    return best


@njit(cache=True)
def _gemm_overflow(a, w, psum_in, acc_bits, overflow):
    """The fault-free result of a fold (any dataflow) or of a protected recompute.

    wrap: two's-complement wrapping is reduction mod 2**acc_bits, a ring homomorphism, so
    ``wrap(wrap(x) + y) == wrap(x + y)``: summing exactly in int64 and wrapping once is the
    same as wrapping at every add. The int64 sum cannot overflow while
    ``max|psum| + K * max|a| * max|w| < 2**62`` (checked, else we wrap per row of k).
    saturate: if that same bound is below ``2**(acc_bits-1)`` every partial sum is in range
    and no add can clamp, so the exact sum is the answer; otherwise clamp at every add.
    """
    K = a.shape[1]
    psum_max = max_abs(psum_in)
    max_a, max_w = max_abs(a), max_abs(w)
    limit = 1 << 62
    if max_a == 0 or max_w == 0 or max_w <= (limit // max(K, 1)) // max_a:
        bound = psum_max + K * max_a * max_w  # cannot overflow int64: each term <= 2**62
    else:
        bound = limit  # the products alone could reach 2**62: take the per-k path
    if overflow == OVERFLOW_WRAP:
        if bound < (1 << 62):
            return _wrap_all(_gemm_exact(a, w, psum_in), acc_bits)
        out = psum_in.copy()
        for k in range(K):  # psum stays wrapped: each step adds at most 2**62
            out = _wrap_all(_gemm_exact(a[:, k : k + 1], w[k : k + 1, :], out), acc_bits)
        return out
    if bound < (1 << (acc_bits - 1)):
        return _gemm_exact(a, w, psum_in)
    return _gemm_saturating(a, w, psum_in, acc_bits)


def run_gemm(
    a: np.ndarray, w: np.ndarray, psum_in: np.ndarray, *, acc_bits: int, overflow: int
) -> np.ndarray:
    """Fault-free ``overflow``-accumulated ``psum_in + a @ w`` (k ascending), int64 (M, N).

    ``psum_in`` may be (M, N) or a bias row (N,) broadcast over M. Used by the redundant units
    to recompute protected neurons; identical to a fault-free fold of any dataflow. Float32
    BLAS where exact (:func:`exact_float32_gemm_into`), else float64 BLAS where exact, else
    the int64 loops.
    """
    a = np.ascontiguousarray(a, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.int64)
    psum = np.array(  # a new array: the result
        np.broadcast_to(np.asarray(psum_in, dtype=np.int64), (a.shape[0], w.shape[1]))
    )
    if (
        a.size
        and w.size
        and exact_float32_gemm_into(
            psum,
            lambda: a.astype(np.float32),
            w,
            int(max_abs(a)),
            acc_bits=acc_bits,
            overflow=overflow,
        )
    ):
        return psum
    return run_gemm_without_float32(a, w, psum, acc_bits=acc_bits, overflow=overflow)


def run_gemm_without_float32(
    a: np.ndarray, w: np.ndarray, psum: np.ndarray, *, acc_bits: int, overflow: int
) -> np.ndarray:
    """:func:`run_gemm` where the float32 path already declined: float64 BLAS where exact,
    else the int64 loops (``psum`` int64 of shape (M, N))."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.int64)  # the same array when it already is
    if a.size and w.size:
        static = not w.flags.writeable  # a layer's weight matrix: its facts are kept
        w_max = derived(w, "max_abs", max_abs) if static else max_abs(w)
        bound = max_abs(psum) + a.shape[1] * max_abs(a) * w_max
        # below 2**53 every product and partial sum is an integer a float64 holds exactly, in
        # any summation order, so BLAS gives the exact sum; the overflow rule then acts as in
        # _gemm_overflow (wrap once; saturate only if no partial sum can reach the limits)
        exact = bound < FLOAT64_EXACT and (
            overflow == OVERFLOW_WRAP or bound < (1 << (int(acc_bits) - 1))
        )
        if exact:
            w_float = derived(w, "float64", _as_float64) if static else _as_float64(w)
            product = (a.astype(np.float64) @ w_float).astype(np.int64)
            return _wrap_all(psum + product, int(acc_bits))
    return _gemm_overflow(a, w, psum, int(acc_bits), int(overflow))


FLOAT64_EXACT = 1 << 53  # integers up to here are exact in float64
FLOAT32_EXACT = 1 << 24  # and in float32
# below this many products per float32 GEMM the chunks get too short to pay: float64 instead
MIN_FLOAT32_CHUNK = 64


def _as_float64(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float64)


def _as_float32(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32)


def _as_float32_transposed(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.T, dtype=np.float32)


def float32_exact_chunk(max_product: int) -> int:
    """The most products whose every partial sum float32 holds exactly, in any order.

    A partial sum of ``k`` products, each an integer of magnitude at most ``max_product``, is
    an integer of magnitude at most ``k * max_product``; float32 holds every integer up to
    2**24, so ``k <= 2**24 // max_product`` keeps each product, each partial sum and each
    fused multiply-add exact. ``max_product`` comes from the operands' magnitudes (at most
    2**(a_bits-1) * 2**(w_bits-1) for signed registers: 1,024 products for int8 x int8, none
    for 16-bit operands).
    """
    return FLOAT32_EXACT // max_product if max_product else FLOAT32_EXACT


def column_abs_prefix(w: np.ndarray) -> np.ndarray:
    """``prefix[k, n] = sum_{k' < k} |w[k', n]|``, shape (K + 1, N) (int32 where it fits)."""
    magnitude = np.abs(w)
    total = int(magnitude.sum(axis=0).max()) if w.size else 0
    dtype = np.int32 if total < 2**31 else np.int64
    prefix = np.zeros((w.shape[0] + 1, w.shape[1]), dtype=dtype)
    np.cumsum(magnitude, axis=0, dtype=dtype, out=prefix[1:])
    return prefix


def k_chunks(prefix: np.ndarray, max_a: int) -> list[tuple[int, int]] | None:
    """The fewest consecutive k ranges over which every column's partial sums stay below
    2**24 when ``|a| <= max_a`` (greedy, each as long as it can be); None if one row of w
    alone can exceed it. One range when the whole of K fits."""
    k_total = prefix.shape[0] - 1
    limit = (FLOAT32_EXACT - 1) // max(int(max_a), 1)  # a chunk's column sums may reach this

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


def prepare_weights(w: np.ndarray) -> None:
    """Compute and keep what :func:`exact_float32_gemm_into` needs of a read-only weight
    matrix (a golden run does it for every layer, so no injection pays it)."""
    if not w.flags.writeable:
        derived(w, "column_abs_prefix", column_abs_prefix)
        derived(w, "float32", _as_float32)
        derived(w, "float32_transposed", _as_float32_transposed)


def _float32_k_ranges(w: np.ndarray, max_a: int) -> tuple[list[tuple[int, int]] | None, int]:
    """K ranges whose float32 sums are exact, and the most any output's sum can reach.

    A layer's read-only weights keep their column sums, so every partial sum of column n is
    bounded by ``max|a| * sum_k |w[k, n]|`` — far tighter than ``K * max|a| * max|w|``, the
    bound (with equal chunks) for weights that may change."""
    K = w.shape[0]
    if not w.flags.writeable:
        prefix = derived(w, "column_abs_prefix", column_abs_prefix)
        return k_chunks(prefix, max_a), int(max_a) * int(prefix[-1].max())
    max_product = int(max_a) * int(max_abs(w))
    chunk = float32_exact_chunk(max_product)
    if chunk == 0:
        return None, K * max_product
    step = -(-K // -(-K // chunk)) if K else 0  # the fewest equal chunks
    return [(k0, min(k0 + step, K)) for k0 in range(0, K, step)], K * max_product


def exact_float32_gemm_into(
    psum: np.ndarray,
    a_float32,
    w: np.ndarray,
    max_a: int,
    *,
    acc_bits: int,
    overflow: int,
) -> bool:
    """``psum`` (M, N) int64 := fault-free ``overflow(psum + a @ w)`` in float32 BLAS, if exact.

    K is cut into the fewest ranges whose partial sums are integers below 2**24 in any
    summation order (FMA included: the products are integers too), each range one float32
    GEMM, the ranges added in int64 (exact). The overflow rule then acts as in
    :func:`run_gemm`: wrap once (a ring homomorphism), saturate only when no partial sum can
    reach the limits. ``a_float32()`` gives A (M, K) in float32 and is called only when the
    path applies (``max_a`` = max|A| decides it). Returns False, ``psum`` untouched, when it
    does not.
    """
    K = w.shape[0]
    ranges, reach = _float32_k_ranges(w, max_a)
    if ranges is None or len(ranges) > max(1, -(-K // MIN_FLOAT32_CHUNK)):
        return False  # a row alone passes 2**24, or the chunks would be too short to pay
    bound = int(max_abs(psum)) + reach
    limit = 1 << (int(acc_bits) - 1)
    if bound >= 1 << 62 or (overflow != OVERFLOW_WRAP and bound >= limit):
        return False  # the int64 sum could overflow, or saturation could bite mid-sum
    a32 = a_float32()
    M, N = psum.shape
    # BLAS runs a short, wide product faster as its transpose W^T A^T (measured on ResNet-18's
    # shapes: up to 1.8x for M=49, N=512); A^T is the layout the conv lowering writes
    transposed = M <= N
    if transposed:
        w32 = derived(w, "float32_transposed", _as_float32_transposed)
        product = np.empty((N, M), dtype=np.float32)
    else:
        w32 = derived(w, "float32", _as_float32)
        product = np.empty((M, N), dtype=np.float32)
    for i, (k0, k1) in enumerate(ranges):
        if transposed:
            np.matmul(w32[:, k0:k1], a32[:, k0:k1].T, out=product)
        else:
            np.matmul(a32[:, k0:k1], w32[k0:k1], out=product)
        wrap_bits = int(acc_bits) if (i == len(ranges) - 1 and bound >= limit) else 0
        _add_float_into(psum, product.T if transposed else product, wrap_bits)
    return True


@njit(cache=True)
def _add_float_into(psum, product, wrap_bits):
    """``psum += product`` (integers held in float32), then wrapped to ``wrap_bits`` if > 0."""
    for m in range(psum.shape[0]):
        row, add = psum[m], product[m]
        for n in range(row.shape[0]):
            v = row[n] + np.int64(add[n])
            row[n] = wrap(v, wrap_bits) if wrap_bits > 0 else v


# ---- faulty fold: register-level emulation ----------------------------------------------


@njit(cache=True, inline="always")
def _width(cls, a_bits, a_signed, w_bits, w_signed, acc_bits):
    if cls == INPUT:
        return a_bits, a_signed
    if cls == WEIGHT:
        return w_bits, w_signed
    if cls == PRODUCT:
        return a_bits + w_bits, True
    return acc_bits, True


@njit(cache=True)
def _apply_faults(
    regs, flips, flip_ptr, cycle, stuck, a_bits, a_signed, w_bits, w_signed, acc_bits
):
    """Transient flips of this cycle (sorted by cycle), then every stuck-at; returns pointer."""
    while flip_ptr < flips.shape[0] and flips[flip_ptr, FAULT_CYCLE] == cycle:
        fault = flips[flip_ptr]
        cls, r, c = fault[FAULT_REGISTER], fault[FAULT_ROW], fault[FAULT_COL]
        mask = fault[FAULT_MASK]
        bits, signed = _width(cls, a_bits, a_signed, w_bits, w_signed, acc_bits)
        regs[cls, r, c] = flip_bits(regs[cls, r, c], mask, bits, signed)
        flip_ptr += 1
    for i in range(stuck.shape[0]):
        cls, r, c = stuck[i, FAULT_REGISTER], stuck[i, FAULT_ROW], stuck[i, FAULT_COL]
        mask, kind = stuck[i, FAULT_MASK], stuck[i, FAULT_KIND]
        bits, signed = _width(cls, a_bits, a_signed, w_bits, w_signed, acc_bits)
        if kind == STUCK0:
            regs[cls, r, c] = force_bits(regs[cls, r, c], ~mask, 0, bits, signed)
        else:
            regs[cls, r, c] = force_bits(regs[cls, r, c], -1, mask, bits, signed)
    return flip_ptr


@njit(cache=True)
def _emulate_stream(
    a, w, psum_in, rows, flips, stuck, a_bits, a_signed, w_bits, w_signed, acc_bits, ovf
):
    """ws fold (is is the same fold transposed): ``rows`` x Nt PEs, weights stationary.

    State t: input(r, c) holds slot m = t-r-c, product m = t-r-c-1, accumulator m = t-r-c-2;
    output (m, c) is read from the bottom accumulator in cycle m + rows + c + 1.
    """
    Mt, Kt = a.shape
    Nt = w.shape[1]
    regs = np.zeros((N_REGISTER_CLASSES, rows, Nt), dtype=np.int64)
    for r in range(Kt):
        for c in range(Nt):
            regs[WEIGHT, r, c] = w[r, c]
    out = np.zeros((Mt, Nt), dtype=np.int64)
    total = Mt + rows + Nt
    ptr = 0
    for t in range(total):
        # edge feed of state t: A[m, r] enters row r in cycle m + r
        for r in range(rows):
            m = t - r
            regs[INPUT, r, 0] = a[m, r] if (0 <= m < Mt and r < Kt) else 0
        ptr = _apply_faults(
            regs, flips, ptr, t, stuck, a_bits, a_signed, w_bits, w_signed, acc_bits
        )
        for c in range(Nt):
            m = t - (rows - 1) - c - 2
            if 0 <= m < Mt:
                out[m, c] = regs[ACCUMULATOR, rows - 1, c]
        # clock edge: accumulators (bottom up, so the row above is still old), products, inputs
        for c in range(Nt):
            for r in range(rows - 1, 0, -1):
                regs[ACCUMULATOR, r, c] = accumulate(
                    regs[ACCUMULATOR, r - 1, c], regs[PRODUCT, r, c], acc_bits, ovf
                )
            m = t - c - 1
            top = psum_in[m, c] if 0 <= m < Mt else 0
            regs[ACCUMULATOR, 0, c] = accumulate(top, regs[PRODUCT, 0, c], acc_bits, ovf)
        for r in range(rows):
            for c in range(Nt):
                regs[PRODUCT, r, c] = regs[INPUT, r, c] * regs[WEIGHT, r, c]
            for c in range(Nt - 1, 0, -1):
                regs[INPUT, r, c] = regs[INPUT, r, c - 1]
    return out


@njit(cache=True)
def _emulate_os(a, w, psum_in, flips, stuck, a_bits, a_signed, w_bits, w_signed, acc_bits, ovf):
    """os fold on Mt x Nt PEs: inputs move right, weights down, outputs stay.

    State t: input(r, c) and weight(r, c) hold k = t-r-c, product k = t-r-c-1; the
    accumulator of PE(r, c) is complete and read in cycle Kt + r + c + 1.
    """
    Mt, Kt = a.shape
    Nt = w.shape[1]
    regs = np.zeros((N_REGISTER_CLASSES, Mt, Nt), dtype=np.int64)
    for r in range(Mt):
        for c in range(Nt):
            regs[ACCUMULATOR, r, c] = psum_in[r, c]
    out = np.zeros((Mt, Nt), dtype=np.int64)
    total = Kt + Mt + Nt
    ptr = 0
    for t in range(total):
        for r in range(Mt):
            k = t - r
            regs[INPUT, r, 0] = a[r, k] if 0 <= k < Kt else 0
        for c in range(Nt):
            k = t - c
            regs[WEIGHT, 0, c] = w[k, c] if 0 <= k < Kt else 0
        ptr = _apply_faults(
            regs, flips, ptr, t, stuck, a_bits, a_signed, w_bits, w_signed, acc_bits
        )
        diagonal = t - Kt - 1
        for r in range(max(0, diagonal - Nt + 1), min(Mt, diagonal + 1)):
            out[r, diagonal - r] = regs[ACCUMULATOR, r, diagonal - r]
        for r in range(Mt):
            for c in range(Nt):
                regs[ACCUMULATOR, r, c] = accumulate(
                    regs[ACCUMULATOR, r, c], regs[PRODUCT, r, c], acc_bits, ovf
                )
                regs[PRODUCT, r, c] = regs[INPUT, r, c] * regs[WEIGHT, r, c]
        for r in range(Mt):
            for c in range(Nt - 1, 0, -1):
                regs[INPUT, r, c] = regs[INPUT, r, c - 1]
        for r in range(Mt - 1, 0, -1):
            for c in range(Nt):
                regs[WEIGHT, r, c] = regs[WEIGHT, r - 1, c]
    return out


@njit(cache=True, inline="always")
def _fault_row_invalid(register_class, row, col, cycle, kind, rows, cols):
    return (
        register_class < 0
        or register_class >= N_REGISTER_CLASSES
        or row < 0
        or row >= rows
        or col < 0
        or col >= cols
        or kind < 0
        or kind >= N_FAULT_KINDS
        or (kind == FLIP and cycle < 0)
    )


@njit(cache=True)
def _invalid_fault_rows(faults, rows, cols):
    """Which kernel fault rows name no register of a ``rows`` x ``cols`` array."""
    bad = np.zeros(faults.shape[0], dtype=np.bool_)
    for i in range(faults.shape[0]):
        f = faults[i]
        bad[i] = _fault_row_invalid(
            f[FAULT_REGISTER], f[FAULT_ROW], f[FAULT_COL], f[FAULT_CYCLE], f[FAULT_KIND], rows, cols
        )
    return bad


def _check_faults(faults: np.ndarray, rows: int, cols: int) -> None:
    bad = _invalid_fault_rows(faults, rows, cols)
    if np.any(bad):
        raise ValueError(f"fault rows outside a {rows}x{cols} array: {faults[bad].tolist()}")


@njit(cache=True)
def _rows_where(faults, keep):
    """The rows of ``faults`` with ``keep`` set, in order, as a new C-contiguous array."""
    out = np.empty((np.count_nonzero(keep), faults.shape[1]), dtype=np.int64)
    j = 0
    for i in range(faults.shape[0]):
        if keep[i]:
            out[j] = faults[i]
            j += 1
    return out


@njit(cache=True)
def _split_faults(faults):
    """(transient flips stably sorted by cycle, stuck-at faults in plan order).

    Insertion sort: a fold has few fault rows, and the sort is stable (flips of one cycle keep
    their plan order).
    """
    n_flips = 0
    for i in range(faults.shape[0]):
        n_flips += faults[i, FAULT_KIND] == FLIP
    flips = np.empty((n_flips, faults.shape[1]), dtype=np.int64)
    stuck = np.empty((faults.shape[0] - n_flips, faults.shape[1]), dtype=np.int64)
    n_sorted = n_stuck = 0
    for i in range(faults.shape[0]):
        if faults[i, FAULT_KIND] != FLIP:
            stuck[n_stuck] = faults[i]
            n_stuck += 1
            continue
        j = n_sorted
        while j > 0 and flips[j - 1, FAULT_CYCLE] > faults[i, FAULT_CYCLE]:
            flips[j] = flips[j - 1]
            j -= 1
        flips[j] = faults[i]
        n_sorted += 1
    return flips, stuck


@njit(cache=True)
def _emulate_fold(dataflow, a, w, psum_in, rows, a_bits, a_signed, w_bits, acc_bits, ovf, faults):
    """Register-level emulation of one fold; faults outside the live block are masked."""
    Mt, Kt = a.shape
    Nt = w.shape[1]
    ext_rows, ext_cols = mapping.emulated_extent(dataflow, Mt, Kt, Nt, rows)
    faults = faults.copy()
    live = np.empty(faults.shape[0], dtype=np.bool_)
    for i in range(faults.shape[0]):
        if dataflow == IS and faults[i, FAULT_REGISTER] <= WEIGHT:  # INPUT or WEIGHT
            # is == ws transposed: weights stream, inputs stay; the two classes swap
            faults[i, FAULT_REGISTER] = INPUT + WEIGHT - faults[i, FAULT_REGISTER]
        live[i] = faults[i, FAULT_ROW] < ext_rows and faults[i, FAULT_COL] < ext_cols
    flips, stuck = _split_faults(_rows_where(faults, live))
    if dataflow == OS:
        return _emulate_os(
            a, w, psum_in, flips, stuck, a_bits, a_signed, w_bits, True, acc_bits, ovf
        )
    if dataflow == WS:
        return _emulate_stream(
            a, w, psum_in, rows, flips, stuck, a_bits, a_signed, w_bits, True, acc_bits, ovf
        )
    # is: stream W^T through a ws array whose "inputs" have the weight register's width
    out_t = _emulate_stream(
        np.ascontiguousarray(w.T),
        np.ascontiguousarray(a.T),
        np.ascontiguousarray(psum_in.T),
        rows,
        flips,
        stuck,
        w_bits,
        True,
        a_bits,
        a_signed,
        acc_bits,
        ovf,
    )
    return np.ascontiguousarray(out_t.T)


@njit(cache=True)
def _reached_slots(pe, faults, Mt, Kt, Nt):
    """[s0, s1): the streamed slots (ws: m, is: n) that ws/is transient flips can reach."""
    slot0, slot1 = 0, 0
    for i in range(faults.shape[0]):
        f = faults[i]
        m0, m1, n0, n1 = mapping.affected_box(
            pe, f[FAULT_REGISTER], f[FAULT_ROW], f[FAULT_COL], f[FAULT_CYCLE], Mt, Kt, Nt, FLIP
        )
        if m1 <= m0:
            continue  # masked flip
        lo, hi = (m0, m1) if pe[0] == WS else (n0, n1)
        if slot1 <= slot0:
            slot0, slot1 = lo, hi
        else:
            slot0, slot1 = min(slot0, lo), max(slot1, hi)
    return slot0, slot1


@njit(cache=True)
def _emulate_reached_slots(pe, a, w, psum_in, faults):
    """ws/is with transient flips only: emulate just the streamed slots the flips can reach.

    Slots (ws: m, is: n) never exchange values, so slot range [s0, s1) emulated alone, with
    every fault cycle shifted by -s0, gives the same values for those slots: the slot s of
    the full fold sits in PE(r, c) in cycle s+r+c+delta, in the sub-fold in cycle s-s0+r+c+delta.
    A shifted cycle below 0 is a flip of a slot before s0 (dropped), except for the stationary
    register, whose flip is then present from the sub-fold's start (cycle 0).
    """
    dataflow, rows, _, a_bits, a_signed, w_bits, acc_bits, ovf = pe
    Mt, Kt = a.shape
    Nt = w.shape[1]
    slot0, slot1 = _reached_slots(pe, faults, Mt, Kt, Nt)
    out = _gemm_overflow(a, w, psum_in, acc_bits, ovf)
    if slot1 <= slot0:
        return out  # every flip is masked
    stationary = STATIONARY[dataflow]
    shifted = faults.copy()
    keep = np.empty(faults.shape[0], dtype=np.bool_)
    for i in range(faults.shape[0]):
        shifted[i, FAULT_CYCLE] -= slot0
        keep[i] = shifted[i, FAULT_CYCLE] >= 0 or shifted[i, FAULT_REGISTER] == stationary
        shifted[i, FAULT_CYCLE] = max(shifted[i, FAULT_CYCLE], 0)
    shifted = _rows_where(shifted, keep)
    args = (rows, a_bits, a_signed, w_bits, acc_bits, ovf, shifted)
    if dataflow == WS:
        a_part = np.ascontiguousarray(a[slot0:slot1])
        psum_part = np.ascontiguousarray(psum_in[slot0:slot1])
        out[slot0:slot1] = _emulate_fold(dataflow, a_part, w, psum_part, *args)
    else:
        w_part = np.ascontiguousarray(w[:, slot0:slot1])
        psum_part = np.ascontiguousarray(psum_in[:, slot0:slot1])
        out[:, slot0:slot1] = _emulate_fold(dataflow, a, w_part, psum_part, *args)
    return out


@njit(cache=True)
def fold_values(pe, a, w, psum_in, faults):
    """One fold's ``psum_out`` (Mt, Nt) int64: :func:`run_fold` without the checks, in Numba.

    ``pe``: the array's :attr:`accelsim.pe_spec.PESpec.kernel` tuple; ``a`` (Mt, Kt), ``w``
    (Kt, Nt), ``psum_in`` (Mt, Nt) int64 (C-contiguous avoids extra compiled variants);
    ``faults`` int64 (F, FAULT_ROW_WIDTH) kernel rows, which the caller has checked
    (:func:`run_fold` does). No faults: the overflow-accumulated GEMM. Otherwise
    register-level emulation, for ws/is with transient flips only restricted to the streamed
    slots the flips can reach.
    """
    dataflow, rows, _, a_bits, a_signed, w_bits, acc_bits, overflow = pe
    if faults.shape[0] == 0:
        return _gemm_overflow(a, w, psum_in, acc_bits, overflow)
    if dataflow != WS and dataflow != OS and dataflow != IS:
        raise ValueError("unknown dataflow code")
    flips_only = True
    for i in range(faults.shape[0]):
        flips_only &= faults[i, FAULT_KIND] == FLIP
    if dataflow == OS or not flips_only:
        return _emulate_fold(
            dataflow, a, w, psum_in, rows, a_bits, a_signed, w_bits, acc_bits, overflow, faults
        )
    return _emulate_reached_slots(pe, a, w, psum_in, faults)


def run_fold(
    pe: PESpec,
    a_tile: np.ndarray,
    w_tile: np.ndarray,
    psum_in: np.ndarray,
    *,
    faults: np.ndarray,
) -> np.ndarray:
    """One fold of the array: ``psum_out`` (Mt, Nt) int64 from ``psum_in`` (docs/semantics.md).

    ``faults`` int64 (F, FAULT_ROW_WIDTH) rows ``[register_class, row, col, cycle, mask,
    kind]`` (``codes.FAULT_*``); with no faults the fold is the overflow-accumulated GEMM,
    otherwise the fold is emulated register by register (bit- and cycle-exact with
    accelsim/refmodel.py). ``psum_in`` must lie in the accumulator's range (the output buffer
    stores acc_bits words).
    """
    a = np.ascontiguousarray(a_tile, dtype=np.int64)
    w = np.ascontiguousarray(w_tile, dtype=np.int64)
    psum = np.ascontiguousarray(psum_in, dtype=np.int64)
    faults = np.ascontiguousarray(faults, dtype=np.int64).reshape(-1, FAULT_ROW_WIDTH)
    if faults.shape[0]:
        _check_faults(faults, pe.rows, pe.cols)
    return fold_values(pe.kernel, a, w, psum, faults)


# ---- one output tile's k-chain ----------------------------------------------------------


@njit(cache=True)
def _link_faults(faults, link):
    """The kernel rows of the chain fault rows (position first) at chain position ``link``."""
    n = 0
    for i in range(faults.shape[0]):
        n += faults[i, CHAIN_POSITION] == link
    out = np.empty((n, FAULT_ROW_WIDTH), dtype=np.int64)
    j = 0
    for i in range(faults.shape[0]):
        if faults[i, CHAIN_POSITION] == link:
            out[j] = faults[i, 1:]
            j += 1
    return out


def chain_values(
    pe: PESpec,
    a: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    m0: int,
    m1: int,
    n0: int,
    n1: int,
    k_bounds: np.ndarray,
    faults: np.ndarray,
) -> np.ndarray:
    """One output tile's psum (m1-m0, n1-n0) int64 recomputed along its k-chain from the bias.

    ``a`` (M, K), ``w`` (K, N), ``bias`` (N,): a group's lowered GEMM, int64 C-contiguous.
    ``k_bounds`` int64 (L, 2): the chain's folds ``[k0, k1)`` in accumulation order (ascending
    k). ``faults`` int64 (F, CHAIN_ROW_WIDTH) rows ``[chain_position, register_class, row,
    col, cycle, mask, kind]``; link ``i`` runs :func:`fold_values` with the rows whose position
    is ``i``, so the result equals ``run_fold`` fold by fold from ``bias[n0:n1]``. Faults are
    taken as given (hardened bits already removed by the caller). ValueError on rows outside
    the array or chain, or a tile outside the GEMM. One Numba call.
    """
    return _chain_values(pe.kernel, a, w, bias, m0, m1, n0, n1, k_bounds, faults)


@njit(cache=True)
def _chain_values(pe, a, w, bias, m0, m1, n0, n1, k_bounds, faults):
    """:func:`chain_values` on the spec's kernel tuple."""
    rows, cols = pe[1], pe[2]
    if not (
        0 <= m0 <= m1 <= a.shape[0]
        and 0 <= n0 <= n1 <= w.shape[1]
        and a.shape[1] == w.shape[0]
        and bias.shape[0] == w.shape[1]
    ):
        raise ValueError("chain_values: tile outside the GEMM")
    links = k_bounds.shape[0]
    for i in range(links):
        if not (0 <= k_bounds[i, 0] <= k_bounds[i, 1] <= a.shape[1]):
            raise ValueError("chain_values: k bounds outside the GEMM")
    if faults.shape[1] != CHAIN_ROW_WIDTH:
        raise ValueError("chain_values: fault rows need CHAIN_ROW_WIDTH columns")
    bad = _invalid_fault_rows(faults[:, 1:], rows, cols)
    for i in range(faults.shape[0]):
        if bad[i] or not (0 <= faults[i, CHAIN_POSITION] < links):
            raise ValueError("chain_values: fault rows outside the array or the chain")
    psum = np.empty((m1 - m0, n1 - n0), dtype=np.int64)
    for m in range(m1 - m0):
        psum[m] = bias[n0:n1]
    faulty = np.zeros(links, dtype=np.bool_)
    for i in range(faults.shape[0]):
        faulty[faults[i, CHAIN_POSITION]] = True
    link = 0
    while link < links:
        k0, k1 = k_bounds[link, 0], k_bounds[link, 1]
        if faulty[link]:
            link_faults = _link_faults(faults, link)
            link += 1
        else:  # a run of fault-free links with contiguous k is one GEMM (same arithmetic)
            link += 1
            while link < links and not faulty[link] and k_bounds[link, 0] == k1:
                k1 = k_bounds[link, 1]
                link += 1
            link_faults = np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64)
        psum = fold_values(
            pe,
            np.ascontiguousarray(a[m0:m1, k0:k1]),
            np.ascontiguousarray(w[k0:k1, n0:n1]),
            psum,
            link_faults,
        )
    return psum


@njit(cache=True)
def segment_column_sums(table, bounds):
    """(len(bounds) - 1, columns) int64: row ``i`` sums ``table``'s rows in
    [bounds[i], bounds[i + 1]) column by column (``np.add.reduceat`` over axis 0 for
    ascending bounds, without its int64 copy of the table: 2.5 ms on conv1's window)."""
    out = np.zeros((len(bounds) - 1, table.shape[1]), dtype=np.int64)
    for i in range(len(bounds) - 1):
        dest = out[i]
        for r in range(bounds[i], bounds[i + 1]):
            row = table[r]
            for c in range(row.shape[0]):
                dest[c] += row[c]
    return out
