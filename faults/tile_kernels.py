"""Every faulty output tile of one layer, for many injections, in one Numba call.

:func:`faults.inject.faulty_layer_outputs` recomputes one (injection, output tile) group per
Python iteration: a ``kernels.chain_values`` call (the tile's k-chain from the bias, faults
inside the fold kernel), a requantisation call and two tensor views. At a few microseconds of
interpreter per group that was most of a batched campaign's time. :func:`recompute_tile_groups`
runs the same three steps for all groups of a layer inside Numba, calling the same chain
kernel (``accelsim.kernels._chain_values``) and the same requantisation
(``accelsim.intmath.requantize``), and writes each tile into the injection's output row —
except where the faults are transient flips in a ws array under wrapping accumulation that
reach and read disjoint outputs: each is then the delta it adds (:func:`_ws_single_flip`),
with no emulation of the fold.
``faults.inject.faulty_layer_outputs`` stays the oracle: tests compare the two.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from accelsim.codes import (
    ACCUMULATOR,
    CHAIN_POSITION,
    FLIP,
    INPUT,
    OVERFLOW_WRAP,
    PRODUCT,
    WEIGHT,
    WS,
)
from accelsim.codes import FAULT_COL as _COL
from accelsim.codes import FAULT_CYCLE as _CYCLE
from accelsim.codes import FAULT_KIND as _KIND
from accelsim.codes import FAULT_MASK as _MASK
from accelsim.codes import FAULT_REGISTER as _REGISTER
from accelsim.codes import FAULT_ROW as _ROW
from accelsim.intmath import flip_bits, requantize, wrap
from accelsim.kernels import _chain_values

# chain rows are [position, *kernel fault row]
REGISTER, ROW, COL, CYCLE, MASK, KIND = (
    i + 1 for i in (_REGISTER, _ROW, _COL, _CYCLE, _MASK, _KIND)
)


def chain_table(chains: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile k-chains ``(links, 2)`` as one array and each tile's ``[start, end)`` in it."""
    lengths = np.array([len(c) for c in chains], dtype=np.int64)
    offsets = np.zeros(len(chains) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not chains:
        return np.zeros((0, 2), dtype=np.int64), offsets
    return np.ascontiguousarray(np.concatenate(chains), dtype=np.int64).reshape(-1, 2), offsets


@njit(cache=True)
def recompute_tile_groups(
    pe,
    a,
    w,
    bias,
    rows_per_sample,
    channels_per_group,
    tiles,
    chain_bounds,
    chain_offsets,
    group_row,
    group_sample,
    group_tile,
    starts,
    ends,
    chain_rows,
    multiplier,
    shift,
    zero_point,
    lo,
    hi,
    out,
):
    """Recompute group ``i``'s tile and write it into ``out[group_row[i]]``.

    ``a`` (G, S*M, K), ``w`` (G, K, N), ``bias`` (G, N): the layer's lowered GEMM per group,
    sample ``s`` in rows ``[s*M, (s+1)*M)`` of ``a`` (``M = rows_per_sample``, the batch-1
    GEMM's). Group ``i`` is tile ``group_tile[i]`` (``tiles`` rows: group, m0, m1, n0, n1;
    its k-chain ``chain_bounds[chain_offsets[t]:chain_offsets[t+1]]``) of sample
    ``group_sample[i]`` with chain fault rows ``chain_rows[starts[i]:ends[i]]``. ``out``
    (rows, C*M): output rows laid out (channel, pixel), channel ``g*N + n`` holding GEMM
    column n of group g, pixel = GEMM row within the sample.
    """
    linear_ws = pe[0] == WS and pe[7] == OVERFLOW_WRAP
    for i in range(group_tile.shape[0]):
        t = group_tile[i]
        g, m0, m1, n0, n1 = tiles[t, 0], tiles[t, 1], tiles[t, 2], tiles[t, 3], tiles[t, 4]
        first = group_sample[i] * rows_per_sample
        sample_a = a[g, first : first + rows_per_sample]
        chain = chain_bounds[chain_offsets[t] : chain_offsets[t + 1]]
        faults = chain_rows[starts[i] : ends[i]]
        if linear_ws and independent_ws_flips(pe, m1 - m0, n1 - n0, chain, faults):
            for j in range(faults.shape[0]):
                _ws_single_flip(
                    pe,
                    sample_a,
                    w[g],
                    bias[g],
                    m0,
                    m1,
                    n0,
                    n1,
                    chain,
                    faults[j],
                    multiplier,
                    shift,
                    zero_point,
                    lo,
                    hi,
                    out,
                    group_row[i],
                    g * channels_per_group + n0,  # the channel of the tile's column 0
                    rows_per_sample,
                )
            continue
        psum = _chain_values(
            pe,
            sample_a,
            w[g],
            bias[g],
            m0,
            m1,
            n0,
            n1,
            chain,
            faults,
        )
        row = group_row[i]
        for n in range(n1 - n0):
            channel = g * channels_per_group + n0 + n
            for m in range(m1 - m0):
                out[row, channel * rows_per_sample + m0 + m] = requantize(
                    psum[m, n], multiplier[channel], shift[channel], zero_point, lo, hi
                )


@njit(cache=True)
def _reach_box(pe, Mt, Nt, chain, fault):
    """Outputs ``[m0, m1) x [c0, c1)`` (tile coordinates) a ws flip may change or read, taken
    structurally (whatever the values): accumulator and product one slot of one column; an
    input its slot from its column rightwards; a weight every later slot of its column. Idle
    rows count as live: an input and a weight flipped in one idle PE meet in its product."""
    rows = pe[1]
    cls, r, c, cycle = fault[REGISTER], fault[ROW], fault[COL], fault[CYCLE]
    if r >= rows or c >= Nt:
        return 0, 0, 0, 0
    if cls == WEIGHT:
        return max(0, cycle - r - c), Mt, c, c + 1
    m = cycle - r - c - (0 if cls == INPUT else 1 if cls == PRODUCT else 2)
    if not 0 <= m < Mt:
        return 0, 0, 0, 0
    return m, m + 1, c, Nt if cls == INPUT else c + 1


@njit(cache=True)
def independent_ws_flips(pe, Mt, Nt, chain, faults):
    """Whether each of ``faults`` (chain rows of one ws tile) may be computed alone: all
    transient flips, no two of them reaching or reading a common output. Then none changes
    a value another one reads, and each adds its own delta to outputs no other one touches."""
    n = faults.shape[0]
    boxes = np.empty((n, 4), dtype=np.int64)
    for i in range(n):
        if faults[i, KIND] != FLIP:
            return False
        boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3] = _reach_box(
            pe, Mt, Nt, chain, faults[i]
        )
        for j in range(i):
            slots_meet = max(boxes[i, 0], boxes[j, 0]) < min(boxes[i, 1], boxes[j, 1])
            columns_meet = max(boxes[i, 2], boxes[j, 2]) < min(boxes[i, 3], boxes[j, 3])
            if slots_meet and columns_meet:
                return False
    return True


@njit(cache=True)
def _ws_single_flip(
    pe,
    a,
    w,
    bias,
    m0,
    m1,
    n0,
    n1,
    chain,
    fault,
    multiplier,
    shift,
    zero_point,
    lo,
    hi,
    out,
    row,
    channel_base,
    rows_per_sample,
):
    """One transient flip in a ws tile under wrapping accumulation, without emulation.

    Wrapping is reduction mod 2**acc_bits, so a flip only adds ``delta`` (the flipped minus
    the true register value) to the psums it reaches, and each reached output is
    ``wrap(fault-free psum + delta)``. Which slot and column a register holds in a cycle is
    ``kernels._emulate_stream``'s clocking (docs/dataflows.md): in state t PE(r, c) holds
    input slot t-r-c, product slot t-r-c-1 and accumulator slot t-r-c-2; the input moves
    right one column a cycle and its product is taken in the cycle it sits in a PE; the
    weight stays, so a flipped weight acts on every later product of its PE. Rows r >= Kt hold
    zero weights and inputs (the psum passes through). Tested equal to ``_chain_values``.
    """
    rows, a_bits, a_signed, w_bits, acc_bits = pe[1], pe[3], pe[4], pe[5], pe[6]
    link = fault[CHAIN_POSITION]
    k0, k1 = chain[link, 0], chain[link, 1]
    Mt, Kt, Nt = m1 - m0, k1 - k0, n1 - n0
    cls, r, c, cycle, mask = fault[REGISTER], fault[ROW], fault[COL], fault[CYCLE], fault[MASK]
    if r >= rows or c >= Nt:
        return  # an idle PE
    if cls == WEIGHT:
        w_true = w[k0 + r, n0 + c] if r < Kt else 0
        delta_w = flip_bits(w_true, mask, w_bits, True) - w_true
        if delta_w == 0 or r >= Kt:
            return  # no input ever multiplies an idle row's weight
        for m in range(max(0, cycle - r - c), Mt):
            _add_delta(
                a,
                w,
                bias,
                chain,
                m0 + m,
                n0 + c,
                a[m0 + m, k0 + r] * delta_w,
                pe,
                multiplier,
                shift,
                zero_point,
                lo,
                hi,
                out,
                row,
                channel_base + c,
                rows_per_sample,
            )
        return
    if cls == INPUT:
        m = cycle - r - c
        if not 0 <= m < Mt or r >= Kt:
            return  # a bubble, or an idle row whose weights are zero
        a_true = a[m0 + m, k0 + r]
        delta_a = flip_bits(a_true, mask, a_bits, a_signed) - a_true
        for col in range(c, Nt):  # the flipped input moves on to the right
            _add_delta(
                a,
                w,
                bias,
                chain,
                m0 + m,
                n0 + col,
                delta_a * w[k0 + r, n0 + col],
                pe,
                multiplier,
                shift,
                zero_point,
                lo,
                hi,
                out,
                row,
                channel_base + col,
                rows_per_sample,
            )
        return
    if cls == PRODUCT:
        m = cycle - r - c - 1
        if not 0 <= m < Mt:
            return
        p_true = a[m0 + m, k0 + r] * w[k0 + r, n0 + c] if r < Kt else 0
        delta = flip_bits(p_true, mask, a_bits + w_bits, True) - p_true
        _add_delta(
            a,
            w,
            bias,
            chain,
            m0 + m,
            n0 + c,
            delta,
            pe,
            multiplier,
            shift,
            zero_point,
            lo,
            hi,
            out,
            row,
            channel_base + c,
            rows_per_sample,
        )
        return
    if cls == ACCUMULATOR:
        m = cycle - r - c - 2
        if not 0 <= m < Mt:
            return
        partial = _chain_prefix(
            a, w, bias, chain, m0 + m, n0 + c, link, k0 + min(r + 1, Kt), acc_bits
        )
        delta = flip_bits(partial, mask, acc_bits, True) - partial
        _add_delta(
            a,
            w,
            bias,
            chain,
            m0 + m,
            n0 + c,
            delta,
            pe,
            multiplier,
            shift,
            zero_point,
            lo,
            hi,
            out,
            row,
            channel_base + c,
            rows_per_sample,
        )


@njit(cache=True, inline="always")
def _chain_prefix(a, w, bias, chain, m, n, link, k_end, acc_bits):
    """The wrapped psum of output (m, n) after links ``0..link-1`` and, in ``link``, k < k_end."""
    psum = bias[n]
    for i in range(link + 1):
        stop = chain[i, 1] if i < link else k_end
        for k in range(chain[i, 0], stop):
            psum = wrap(psum + a[m, k] * w[k, n], acc_bits)
    return psum


@njit(cache=True, inline="always")
def _add_delta(
    a,
    w,
    bias,
    chain,
    m,
    n,
    delta,
    pe,
    multiplier,
    shift,
    zero_point,
    lo,
    hi,
    out,
    row,
    channel,
    rows_per_sample,
):
    """Output (m, n) of the tile: its fault-free psum plus ``delta``, wrapped, requantised."""
    if delta == 0:
        return
    acc_bits = pe[6]
    psum = _chain_prefix(a, w, bias, chain, m, n, chain.shape[0] - 1, chain[-1, 1], acc_bits)
    value = requantize(
        wrap(psum + delta, acc_bits), multiplier[channel], shift[channel], zero_point, lo, hi
    )
    out[row, channel * rows_per_sample + m] = value
