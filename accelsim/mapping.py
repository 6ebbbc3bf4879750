"""Dataflow mapping: layers as GEMMs, GEMMs as folds, folds as space-time maps.

The space-time map of every dataflow is written out in docs/dataflows.md; this module is its
executable form (fold plan, cycle counts, which outputs a register fault can reach), shared by
the Numba kernels (accelsim/kernels.py), the reference model (accelsim/refmodel.py), the
hardware model and the fault code.

Conventions (docs/dataflows.md, "Clocking"): register state ``t`` is the content held during
fold cycle ``t`` (``t = 0`` is the first cycle after the stationary preload). A fault at cycle
``t`` changes the state-``t`` content, so every read in cycle ``t`` and later sees it until the
register is written again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.lib.stride_tricks import sliding_window_view

from .codes import (
    COL_DIM,
    FLIP,
    GEMM_DIMS,
    INPUT,
    IS,
    MOVING,
    N_DATAFLOWS,
    OS,
    PRODUCT,
    PSUMS_CROSS_ROWS,
    ROW_DIM,
    STREAMED_DIM,
    WEIGHT,
    WS,
    dataflow_spec,
)

# ---- layers as GEMMs (docs/semantics.md, section 2) ------------------------------------


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output extent of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def lower_conv(
    x: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, int],
    padding: tuple[int, int],
    groups: int,
    dilation: tuple[int, int] = (1, 1),
) -> list[np.ndarray]:
    """im2col: one ``A`` (M, K) int64 matrix per group.

    ``m = ((b*OH)+oh)*OW+ow`` and ``k = c*KH*KW + kh*KW + kw`` (c within the group); padding
    positions are real zeros; ``padding`` is (top, left) for symmetric padding or (top, left,
    bottom, right). A dilated kernel offset (kh, kw) reads input pixel
    ``(oh*sh - ph + kh*dh, ow*sw - pw + kw*dw)``.
    """
    x = np.asarray(x, dtype=np.int64)
    batch, channels, _, _ = x.shape
    _, c_per_group, kh, kw = (int(v) for v in weight_shape)
    sh, sw = (int(v) for v in stride)
    ph, pw, eh, ew = (*padding, *padding)[:4] if len(padding) == 2 else padding
    ph, pw, eh, ew = int(ph), int(pw), int(eh), int(ew)
    if c_per_group * groups != channels:
        raise ValueError(f"weight expects {c_per_group}x{groups} channels, input has {channels}")
    padded = np.pad(x, ((0, 0), (0, 0), (ph, eh), (pw, ew)))
    dh, dw = (int(v) for v in dilation)
    # windows: (B, C, OH, OW, KH, KW) as a strided view, no copy until the reshape below
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    windows = sliding_window_view(padded, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    oh, ow = windows.shape[2], windows.shape[3]
    out = []
    for g in range(groups):
        part = windows[:, g * c_per_group : (g + 1) * c_per_group]  # (B, Cg, OH, OW, KH, KW)
        a = part.transpose(0, 2, 3, 1, 4, 5).reshape(batch * oh * ow, c_per_group * kh * kw)
        out.append(np.ascontiguousarray(a, dtype=np.int64))
    return out


def lower_conv_transposed(
    x: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, int],
    padding: tuple[int, ...],
    groups: int,
    dilation: tuple[int, int] = (1, 1),
    dtype: type = np.float32,
) -> list[np.ndarray]:
    """:func:`lower_conv`'s ``A`` transposed, ``A^T`` (K, M) C-contiguous per group, in
    ``dtype`` (float32: the exact float GEMM's operand, written straight from ``x``).

    Row k of ``A^T`` is one kernel offset of one channel over all output pixels, so one
    Numba pass writes it in long contiguous runs that read input rows contiguously (a
    (M, K) layout would write runs of KW, several times slower).
    """
    x = np.ascontiguousarray(x)
    batch, channels, height, width = (int(v) for v in x.shape)
    _, c_per_group, kh, kw = (int(v) for v in weight_shape)
    ph, pw, eh, ew = (*padding, *padding)[:4] if len(padding) == 2 else padding
    sh, sw = (int(v) for v in stride)
    dh, dw = (int(v) for v in dilation)
    if c_per_group * groups != channels:
        raise ValueError(f"weight expects {c_per_group}x{groups} channels, input has {channels}")
    oh = (height + int(ph) + int(eh) - (dh * (kh - 1) + 1)) // sh + 1
    ow = (width + int(pw) + int(ew) - (dw * (kw - 1) + 1)) // sw + 1
    out = []
    for g in range(groups):
        a_t = np.empty((c_per_group * kh * kw, batch * oh * ow), dtype)
        _im2col_transposed_into(
            x, a_t, g * c_per_group, kh, kw, sh, sw, int(ph), int(pw), dh, dw, oh, ow
        )
        out.append(a_t)
    return out


@njit(cache=True)
def _im2col_transposed_into(x, a_t, c0, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """``a_t[k, m]`` = the input element A[m, k] reads (0 for padding), one group."""
    height, width = x.shape[2], x.shape[3]
    c_per_group = a_t.shape[0] // (kh * kw)
    for c in range(c_per_group):
        for i in range(kh):
            for j in range(kw):
                k = (c * kh + i) * kw + j
                dest = a_t[k]
                # output columns whose input column is inside the image: [lo, hi)
                first = j * dw - pw  # input column of output column 0
                lo = 0 if first >= 0 else (-first + sw - 1) // sw
                hi = min(ow, (width - 1 - first) // sw + 1) if width - 1 >= first else 0
                lo = min(lo, hi)
                for b in range(x.shape[0]):
                    for y in range(oh):
                        base = (b * oh + y) * ow
                        yy = y * sh - ph + i * dh
                        if yy < 0 or yy >= height:
                            for xo in range(ow):
                                dest[base + xo] = 0
                            continue
                        line = x[b, c0 + c, yy]
                        for xo in range(lo):
                            dest[base + xo] = 0
                        for xo in range(lo, hi):
                            dest[base + xo] = line[first + xo * sw]
                        for xo in range(hi, ow):
                            dest[base + xo] = 0


def weight_matrices(weight: np.ndarray, groups: int) -> list[np.ndarray]:
    """Conv weights (N, C/g, KH, KW) as one ``W`` (K, N/g) int64 matrix per group."""
    weight = np.asarray(weight, dtype=np.int64)
    n_per_group = weight.shape[0] // groups
    return [
        np.ascontiguousarray(
            weight[g * n_per_group : (g + 1) * n_per_group].reshape(n_per_group, -1).T
        )
        for g in range(groups)
    ]


def output_from_gemm(outs: list[np.ndarray], batch: int, out_h: int, out_w: int) -> np.ndarray:
    """Per-group ``(M, N_g)`` results as one (batch, N_total, OH, OW) tensor."""
    joined = np.concatenate([np.asarray(o) for o in outs], axis=1)  # (M, N_total)
    return np.ascontiguousarray(joined.reshape(batch, out_h, out_w, -1).transpose(0, 3, 1, 2))


# ---- folds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """One tile ``[m0, m1) x [k0, k1) x [n0, n1)`` of a GEMM mapped onto the array."""

    m0: int
    m1: int
    k0: int
    k1: int
    n0: int
    n1: int


def _tiles(extent: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, extent)) for start in range(0, extent, size)]


def plan_folds(dataflow: int | str, M: int, K: int, N: int, rows: int, cols: int) -> list[Fold]:
    """The folds of an (M, K, N) GEMM in issue order (SCALE-Sim's order).

    The dataflow's descriptor (``codes.DATAFLOW_SPECS``) tiles its row dimension by ``rows``
    and its column dimension by ``cols``, ``fold_order[0]`` outer; the streamed dimension is
    whole in every fold:
    ws: n-tiles of ``cols`` (outer) x k-tiles of ``rows`` (inner), all M per fold.
    os: m-tiles of ``rows`` (outer) x n-tiles of ``cols`` (inner), all K per fold.
    is: m-tiles of ``cols`` (outer) x k-tiles of ``rows`` (inner), all N per fold.
    k-tiles are innermost in ws/is, so the k-folds of one psum tile run back to back in
    ascending k (the accumulation order of docs/semantics.md).
    """
    spec = dataflow_spec(dataflow)
    extent = (M, K, N)
    tile_size = {spec.row_dim: rows, spec.col_dim: cols}
    outer, inner = (GEMM_DIMS.index(d) for d in spec.fold_order)
    bounds = [(0, M), (0, K), (0, N)]
    folds = []
    for outer_tile in _tiles(extent[outer], tile_size[GEMM_DIMS[outer]]):
        bounds[outer] = outer_tile
        for inner_tile in _tiles(extent[inner], tile_size[GEMM_DIMS[inner]]):
            bounds[inner] = inner_tile
            (m0, m1), (k0, k1), (n0, n1) = bounds
            folds.append(Fold(m0, m1, k0, k1, n0, n1))
    return folds


# columns of a fold table (:func:`fold_table`), one int64 row per fold
FOLD_M0, FOLD_M1, FOLD_K0, FOLD_K1, FOLD_N0, FOLD_N1 = range(6)
FOLD_TABLE_WIDTH = 6


def _tile_bounds(extent: int, size: int) -> np.ndarray:
    """(tiles, 2) start/stop of ``extent`` cut into tiles of ``size`` (the last one short)."""
    starts = np.arange(0, extent, size, dtype=np.int64)
    return np.stack([starts, np.minimum(starts + size, extent)], axis=1)


def fold_table(dataflow: int | str, M: int, K: int, N: int, rows: int, cols: int) -> np.ndarray:
    """:func:`plan_folds` as one (folds, FOLD_TABLE_WIDTH) int64 array, in the same order.

    Built with array operations (no Python loop per fold): the outer tile index repeats
    over the inner ones. A test proves it equal to :func:`plan_folds`.
    """
    spec = dataflow_spec(dataflow)
    extent = (M, K, N)
    tile_size = {spec.row_dim: rows, spec.col_dim: cols}
    outer, inner = (GEMM_DIMS.index(d) for d in spec.fold_order)
    outer_tiles = _tile_bounds(extent[outer], tile_size[GEMM_DIMS[outer]])
    inner_tiles = _tile_bounds(extent[inner], tile_size[GEMM_DIMS[inner]])
    count = len(outer_tiles) * len(inner_tiles)
    table = np.empty((count, FOLD_TABLE_WIDTH), dtype=np.int64)
    streamed = 3 - outer - inner
    table[:, 2 * streamed] = 0
    table[:, 2 * streamed + 1] = extent[streamed]
    table[:, 2 * outer : 2 * outer + 2] = np.repeat(outer_tiles, len(inner_tiles), axis=0)
    table[:, 2 * inner : 2 * inner + 2] = np.tile(inner_tiles, (len(outer_tiles), 1))
    return table


@njit(cache=True)
def emulated_extent(dataflow: int, Mt: int, Kt: int, Nt: int, rows: int) -> tuple[int, int]:
    """(rows, cols) of PEs whose registers can influence the fold's outputs.

    ``dataflow`` is a code (``codes.Dataflow``, as a plain int). ws/is: every row (psums cross
    them all) of the occupied columns; os: the tile's PEs. Registers outside this block are
    idle: faults there are masked. Callable from Python and from Numba.
    """
    if not 0 <= dataflow < N_DATAFLOWS:
        raise ValueError("unknown dataflow code")
    dims = (Mt, Kt, Nt)
    ext_rows = rows if PSUMS_CROSS_ROWS[dataflow] else dims[ROW_DIM[dataflow]]
    return ext_rows, dims[COL_DIM[dataflow]]


@njit(cache=True)
def fold_cycles(dataflow: int, Mt: int, Kt: int, Nt: int, rows: int) -> int:
    """Compute cycles of one fold (fill, skewed streaming, drain), preload excluded.

    The streamed extent plus the live block's rows and columns (:func:`emulated_extent`):
    ws: ``Mt + rows + Nt`` (psums cross all ``rows`` rows and leave at the bottom edge);
    os: ``Kt + Mt + Nt`` (each accumulator is read in place when complete);
    is: ``Nt + rows + Mt``. Derivation in docs/dataflows.md. ``dataflow`` is a code;
    callable from Python and from Numba.
    """
    ext_rows, ext_cols = emulated_extent(dataflow, Mt, Kt, Nt, rows)
    return (Mt, Kt, Nt)[STREAMED_DIM[dataflow]] + ext_rows + ext_cols


def fold_cycles_array(
    dataflow: int | str, Mt: np.ndarray, Kt: np.ndarray, Nt: np.ndarray, rows: int
) -> np.ndarray:
    """:func:`fold_cycles` of many folds at once (tile extents as arrays)."""
    spec = dataflow_spec(dataflow)
    dims = {"M": np.asarray(Mt), "K": np.asarray(Kt), "N": np.asarray(Nt)}
    ext_rows = rows if spec.psums_cross_rows else dims[spec.row_dim]
    return (dims[spec.streamed_dim] + ext_rows + dims[spec.col_dim]).astype(np.int64)


def preload_cycles(dataflow: int | str, rows: int) -> int:
    """Cycles to shift the stationary operand in before the fold (ws weights, is inputs).

    The operand is shifted down the columns through all ``rows`` rows (unused rows receive
    zeros). os keeps outputs stationary: its accumulators are initialised with ``psum_in`` in
    parallel as the fold starts, so no preload cycles.
    """
    return rows if dataflow_spec(dataflow).preloads_stationary else 0


@njit(cache=True)
def _slot_range(slot: int, slots: int) -> tuple[int, int]:
    """[slot, slot + 1) if the slot exists, else the empty range."""
    if 0 <= slot < slots:
        return slot, slot + 1
    return 0, 0


@njit(cache=True)
def affected_box(
    pe: tuple,
    register_class: int,
    row: int,
    col: int,
    cycle: int,
    Mt: int,
    Kt: int,
    Nt: int,
    kind: int,
) -> tuple[int, int, int, int]:
    """Tile outputs a fault in one register can change, as a box ``[m0, m1) x [n0, n1)``.

    ``pe``: the array's :attr:`accelsim.pe_spec.PESpec.kernel` tuple (its dataflow and size
    are what matter). The reach of every fault is a full rectangle of the tile
    (docs/dataflows.md, "Faults"); the empty set is ``(0, 0, 0, 0)``. Semantics of
    :func:`affected_outputs`, which lists the box's outputs; this form is callable from Numba
    kernels.
    """
    dataflow_code, rows = pe[0], pe[1]
    total = fold_cycles(dataflow_code, Mt, Kt, Nt, rows)
    ext_rows, ext_cols = emulated_extent(dataflow_code, Mt, Kt, Nt, rows)
    if not (0 <= row < ext_rows and 0 <= col < ext_cols):
        return 0, 0, 0, 0
    if kind == FLIP and not (0 <= cycle < total):
        return 0, 0, 0, 0
    stuck = kind != FLIP
    if dataflow_code == OS:
        # PE(r, c) owns output (r, c), complete (and read) in cycle Kt+r+c+1. The operand
        # registers hold k-slot t-r-c and their product is accumulated in cycle t+c'-c+1 at
        # PE(r, c') (inputs) or t+r'-r+1 at PE(r', c) (weights): in time iff t-r-c <= Kt-1.
        last_useful = Kt + row + col + 1
        if register_class in (INPUT, WEIGHT):
            if not (stuck or cycle - row - col <= Kt - 1):
                return 0, 0, 0, 0
            if register_class == INPUT:
                return row, row + 1, col, Nt
            return row, Mt, col, col + 1
        limit = last_useful - 1 if register_class == PRODUCT else last_useful
        if not (stuck or cycle <= limit):
            return 0, 0, 0, 0
        return row, row + 1, col, col + 1
    if dataflow_code != WS and dataflow_code != IS:
        raise ValueError("unknown dataflow code")
    # slot s = the streamed index (ws: m, is: n); outputs of column c are (slot, c) in ws,
    # (c, slot) in is. The moving operand register holds slot t-r-c, the product t-r-c-1,
    # the psum t-r-c-2; the stationary register is read for slot s in cycle s+r+c.
    slots = Mt if dataflow_code == WS else Nt
    lanes = Nt if dataflow_code == WS else Mt
    moving = MOVING[dataflow_code]
    lane0, lane1 = col, col + 1
    if register_class == moving:
        lane1 = lanes
        slot0, slot1 = (0, slots) if stuck else _slot_range(cycle - row - col, slots)
    elif register_class in (INPUT, WEIGHT):  # the stationary operand
        slot0, slot1 = (0, slots) if stuck else (max(0, cycle - row - col), slots)
    else:
        delay = 1 if register_class == PRODUCT else 2
        slot0, slot1 = (0, slots) if stuck else _slot_range(cycle - row - col - delay, slots)
    if slot1 <= slot0:
        return 0, 0, 0, 0
    if dataflow_code == WS:
        return slot0, slot1, lane0, lane1
    return lane0, lane1, slot0, slot1


def affected_outputs(
    pe: tuple,
    register_class: int,
    row: int,
    col: int,
    cycle: int,
    Mt: int,
    Kt: int,
    Nt: int,
    kind: int = FLIP,
) -> tuple[np.ndarray, np.ndarray]:
    """Tile outputs (m_idx, n_idx) that a fault in one register can change.

    Structural: operand values are ignored (a flipped input times a zero weight still counts),
    so the set is exact-or-superset of what the reference model changes, also when several
    faults of one plan interact. Empty means provably masked (idle register, or a value that is
    never read again). ``kind`` FLIP is a transient flip at ``cycle``; stuck-at kinds hold
    all fold, so ``cycle`` is ignored and every output passing through the register counts.
    The set is the box of :func:`affected_box` (same ``pe`` tuple), listed m-major (n varies
    fastest).
    """
    m0, m1, n0, n1 = affected_box(pe, register_class, row, col, cycle, Mt, Kt, Nt, kind)
    mm, nn = np.meshgrid(np.arange(m0, m1), np.arange(n0, n1), indexing="ij")
    return mm.ravel().astype(np.int64), nn.ravel().astype(np.int64)


def fault_sites(dataflow: int | str, Mt: int, Kt: int, Nt: int, rows: int) -> tuple[int, int, int]:
    """(rows, cols, cycles) of the block of PE registers exposed during one fold."""
    code = dataflow_spec(dataflow).code
    ext_rows, ext_cols = emulated_extent(code, Mt, Kt, Nt, rows)
    return ext_rows, ext_cols, fold_cycles(code, Mt, Kt, Nt, rows)
