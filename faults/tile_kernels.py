"""Every faulty output tile of one layer, for many injections, in one Numba call.

:func:`faults.inject.faulty_layer_outputs` recomputes one (injection, output tile) group per
Python iteration: a ``kernels.chain_values`` call (the tile's k-chain from the bias, faults
inside the fold kernel), a requantisation call and two tensor views. At a few microseconds of
interpreter per group that was most of a batched campaign's time. :func:`recompute_tile_groups`
runs the same three steps for all groups of a layer inside Numba, calling the same chain
kernel (``accelsim.kernels._chain_values``) and the same requantisation
(``accelsim.intmath.requantize``), and writes each tile into the injection's output row.
``faults.inject.faulty_layer_outputs`` stays the oracle: tests compare the two.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from accelsim.intmath import requantize
from accelsim.kernels import _chain_values


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
    for i in range(group_tile.shape[0]):
        t = group_tile[i]
        g, m0, m1, n0, n1 = tiles[t, 0], tiles[t, 1], tiles[t, 2], tiles[t, 3], tiles[t, 4]
        first = group_sample[i] * rows_per_sample
        sample_a = a[g, first : first + rows_per_sample]
        psum = _chain_values(
            pe,
            sample_a,
            w[g],
            bias[g],
            m0,
            m1,
            n0,
            n1,
            chain_bounds[chain_offsets[t] : chain_offsets[t + 1]],
            chain_rows[starts[i] : ends[i]],
        )
        row = group_row[i]
        for n in range(n1 - n0):
            channel = g * channels_per_group + n0 + n
            for m in range(m1 - m0):
                out[row, channel * rows_per_sample + m0 + m] = requantize(
                    psum[m, n], multiplier[channel], shift[channel], zero_point, lo, hi
                )
