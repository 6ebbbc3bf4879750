"""Numba kernels of the PE array: one call computes one fold (or one protected GEMM).

Two paths, one semantics (docs/semantics.md sections 3-4, docs/dataflows.md):

* **fault-free** — every dataflow accumulates ``acc = overflow(acc + a*w)`` in ascending k
  starting at ``psum_in`` (bubbles and idle rows add exact zeros, which change nothing), so
  the fold is a GEMM with the overflow rule. A tight m-k-n loop (n contiguous) does it.
* **faulty** — the fold is emulated register by register and cycle by cycle over the block of
  PEs that can influence its outputs (``mapping.emulated_extent``), with exactly the clocking
  of ``accelsim/refmodel.py``. ``run_fold`` restricts ws/is emulation to the streamed slots a
  transient fault can reach (slots never interact in those dataflows).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import mapping
from .intmath import OVERFLOW_WRAP, accumulate, flip_bits, force_bits, wrap

WS, OS, IS = 0, 1, 2
INPUT, WEIGHT, PRODUCT, ACCUMULATOR = 0, 1, 2, 3
FLIP, STUCK0, STUCK1 = 0, 1, 2
_DATAFLOW_NAMES = {code: name for name, code in mapping.DATAFLOW_CODES.items()}


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
def _max_abs(x):
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
    psum_max = _max_abs(psum_in)
    bound = psum_max + K * _max_abs(a) * _max_abs(w)
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
    to recompute protected neurons; identical to a fault-free fold of any dataflow.
    """
    a = np.ascontiguousarray(a, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.int64)
    psum = np.ascontiguousarray(
        np.broadcast_to(np.asarray(psum_in, dtype=np.int64), (a.shape[0], w.shape[1]))
    )
    return _gemm_overflow(a, w, psum, int(acc_bits), int(overflow))


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
def _apply_faults(regs, flips, flip_ptr, cycle, stuck, a_bits, a_signed, w_bits, w_signed,
                  acc_bits):  # fmt: skip
    """Transient flips of this cycle (sorted by cycle), then every stuck-at; returns pointer."""
    while flip_ptr < flips.shape[0] and flips[flip_ptr, 3] == cycle:
        fault = flips[flip_ptr]
        cls, r, c, mask = fault[0], fault[1], fault[2], fault[4]
        bits, signed = _width(cls, a_bits, a_signed, w_bits, w_signed, acc_bits)
        regs[cls, r, c] = flip_bits(regs[cls, r, c], mask, bits, signed)
        flip_ptr += 1
    for i in range(stuck.shape[0]):
        cls, r, c, mask, kind = stuck[i, 0], stuck[i, 1], stuck[i, 2], stuck[i, 4], stuck[i, 5]
        bits, signed = _width(cls, a_bits, a_signed, w_bits, w_signed, acc_bits)
        if kind == STUCK0:
            regs[cls, r, c] = force_bits(regs[cls, r, c], ~mask, 0, bits, signed)
        else:
            regs[cls, r, c] = force_bits(regs[cls, r, c], -1, mask, bits, signed)
    return flip_ptr


@njit(cache=True)
def _emulate_stream(a, w, psum_in, rows, flips, stuck, a_bits, a_signed, w_bits, w_signed,
                    acc_bits, ovf):  # fmt: skip
    """ws fold (is is the same fold transposed): ``rows`` x Nt PEs, weights stationary.

    State t: input(r, c) holds slot m = t-r-c, product m = t-r-c-1, accumulator m = t-r-c-2;
    output (m, c) is read from the bottom accumulator in cycle m + rows + c + 1.
    """
    Mt, Kt = a.shape
    Nt = w.shape[1]
    regs = np.zeros((4, rows, Nt), dtype=np.int64)
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
        ptr = _apply_faults(regs, flips, ptr, t, stuck, a_bits, a_signed, w_bits, w_signed,
                            acc_bits)  # fmt: skip
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
    regs = np.zeros((4, Mt, Nt), dtype=np.int64)
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
        ptr = _apply_faults(regs, flips, ptr, t, stuck, a_bits, a_signed, w_bits, w_signed,
                            acc_bits)  # fmt: skip
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


def _split_faults(faults: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(transient flips sorted by cycle, stuck-at faults in plan order)."""
    flips = faults[faults[:, 5] == FLIP]
    flips = np.ascontiguousarray(flips[np.argsort(flips[:, 3], kind="stable")])
    stuck = np.ascontiguousarray(faults[faults[:, 5] != FLIP])
    return flips, stuck


def _emulate_fold(dataflow, a, w, psum_in, rows, cols, a_bits, a_signed, w_bits, acc_bits, ovf,
                  faults):  # fmt: skip
    """Register-level emulation of one fold; faults outside the live block are masked."""
    name = _DATAFLOW_NAMES[dataflow]
    Mt, Kt = a.shape
    Nt = w.shape[1]
    ext_rows, ext_cols = mapping.emulated_extent(name, Mt, Kt, Nt, rows)
    if dataflow == IS:  # is == ws transposed: weights stream, inputs stay; classes swap
        faults = faults.copy()
        swap = faults[:, 0] <= WEIGHT
        faults[swap, 0] = 1 - faults[swap, 0]
    live = (faults[:, 1] < ext_rows) & (faults[:, 2] < ext_cols)
    flips, stuck = _split_faults(faults[live])
    args = (a_bits, a_signed, w_bits, True, acc_bits, ovf)
    if dataflow == OS:
        return _emulate_os(a, w, psum_in, flips, stuck, *args)
    if dataflow == WS:
        return _emulate_stream(a, w, psum_in, rows, flips, stuck, *args)
    # is: stream W^T through a ws array whose "inputs" have the weight register's width
    out_t = _emulate_stream(
        np.ascontiguousarray(w.T), np.ascontiguousarray(a.T), np.ascontiguousarray(psum_in.T),
        rows, flips, stuck, w_bits, True, a_bits, a_signed, acc_bits, ovf,
    )  # fmt: skip
    return np.ascontiguousarray(out_t.T)


def run_fold(
    dataflow: int,
    a_tile: np.ndarray,
    w_tile: np.ndarray,
    psum_in: np.ndarray,
    *,
    rows: int,
    cols: int,
    a_bits: int,
    a_signed: bool,
    w_bits: int,
    acc_bits: int,
    overflow: int,
    faults: np.ndarray,
) -> np.ndarray:
    """One fold of the array: ``psum_out`` (Mt, Nt) int64 from ``psum_in`` (docs/semantics.md).

    ``faults`` int64 (F, 6) rows ``[register_class, row, col, cycle, mask, kind]``; with no
    faults the fold is the overflow-accumulated GEMM, otherwise the fold is emulated
    register by register (bit- and cycle-exact with accelsim/refmodel.py). ``psum_in`` must
    lie in the accumulator's range (the output buffer stores acc_bits words).
    """
    a = np.ascontiguousarray(a_tile, dtype=np.int64)
    w = np.ascontiguousarray(w_tile, dtype=np.int64)
    psum = np.ascontiguousarray(psum_in, dtype=np.int64)
    if faults.shape[0] == 0:
        return _gemm_overflow(a, w, psum, int(acc_bits), int(overflow))
    faults = np.asarray(faults, dtype=np.int64).reshape(-1, 6)
    Mt, Kt = a.shape
    Nt = w.shape[1]
    _check_faults(faults, rows, cols)
    args = (int(rows), int(cols), int(a_bits), bool(a_signed), int(w_bits), int(acc_bits),
            int(overflow))  # fmt: skip
    if dataflow == OS or np.any(faults[:, 5] != FLIP):
        return _emulate_fold(dataflow, a, w, psum, *args, faults)
    return _emulate_reached_slots(dataflow, a, w, psum, args, faults, Mt, Kt, Nt)


def _emulate_reached_slots(dataflow, a, w, psum, args, faults, Mt, Kt, Nt):
    """ws/is with transient flips only: emulate just the streamed slots the flips can reach.

    Slots (ws: m, is: n) never exchange values, so slot range [s0, s1) emulated alone, with
    every fault cycle shifted by -s0, gives the same values for those slots: the slot s of
    the full fold sits in PE(r, c) in cycle s+r+c+delta, in the sub-fold in cycle s-s0+r+c+delta.
    A shifted cycle below 0 is a flip of a slot before s0 (dropped), except for the stationary
    register, whose flip is then present from the sub-fold's start (cycle 0).
    """
    name = _DATAFLOW_NAMES[dataflow]
    rows, cols = args[0], args[1]
    reached = [
        mapping.affected_outputs(
            name, int(f[0]), int(f[1]), int(f[2]), int(f[3]), Mt, Kt, Nt, rows, cols
        )[0 if dataflow == WS else 1]  # fmt: skip
        for f in faults
    ]
    slots = np.concatenate(reached) if reached else np.zeros(0, np.int64)
    out = _gemm_overflow(a, w, psum, args[5], args[6])
    if slots.size == 0:
        return out  # every flip is masked
    s0, s1 = int(slots.min()), int(slots.max()) + 1
    stationary = WEIGHT if dataflow == WS else INPUT
    shifted = faults.copy()
    shifted[:, 3] -= s0
    keep = (shifted[:, 3] >= 0) | (shifted[:, 0] == stationary)
    shifted = shifted[keep]
    shifted[:, 3] = np.maximum(shifted[:, 3], 0)
    if dataflow == WS:
        part = _emulate_fold(dataflow, a[s0:s1], w, psum[s0:s1], *args, shifted)
        out[s0:s1] = part
    else:
        part = _emulate_fold(dataflow, a, w[:, s0:s1], psum[:, s0:s1], *args, shifted)
        out[:, s0:s1] = part
    return out


def _check_faults(faults: np.ndarray, rows: int, cols: int) -> None:
    cls, r, c, kind = faults[:, 0], faults[:, 1], faults[:, 2], faults[:, 5]
    bad = (cls < 0) | (cls > 3) | (r < 0) | (r >= rows) | (c < 0) | (c >= cols)
    bad |= (kind < 0) | (kind > 2) | ((kind == FLIP) & (faults[:, 3] < 0))
    if np.any(bad):
        raise ValueError(f"fault rows outside a {rows}x{cols} array: {faults[bad].tolist()}")
