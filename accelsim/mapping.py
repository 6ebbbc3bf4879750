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
from numpy.lib.stride_tricks import sliding_window_view

DATAFLOW_CODES = {"ws": 0, "os": 1, "is": 2}
REGISTER_CLASSES = {"input": 0, "weight": 1, "product": 2, "accumulator": 3}
FAULT_KINDS = {"flip": 0, "stuck0": 1, "stuck1": 2}

INPUT, WEIGHT, PRODUCT, ACCUMULATOR = 0, 1, 2, 3


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
) -> list[np.ndarray]:
    """im2col: one ``A`` (M, K) int64 matrix per group.

    ``m = ((b*OH)+oh)*OW+ow`` and ``k = c*KH*KW + kh*KW + kw`` (c within the group); padding
    positions are real zeros.
    """
    x = np.asarray(x, dtype=np.int64)
    batch, channels, _, _ = x.shape
    _, c_per_group, kh, kw = (int(v) for v in weight_shape)
    sh, sw = (int(v) for v in stride)
    ph, pw = (int(v) for v in padding)
    if c_per_group * groups != channels:
        raise ValueError(f"weight expects {c_per_group}x{groups} channels, input has {channels}")
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    # windows: (B, C, OH, OW, KH, KW) as a strided view, no copy until the reshape below
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    oh, ow = windows.shape[2], windows.shape[3]
    out = []
    for g in range(groups):
        part = windows[:, g * c_per_group : (g + 1) * c_per_group]  # (B, Cg, OH, OW, KH, KW)
        a = part.transpose(0, 2, 3, 1, 4, 5).reshape(batch * oh * ow, c_per_group * kh * kw)
        out.append(np.ascontiguousarray(a, dtype=np.int64))
    return out


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


def plan_folds(dataflow: str, M: int, K: int, N: int, rows: int, cols: int) -> list[Fold]:
    """The folds of an (M, K, N) GEMM in issue order (SCALE-Sim's order).

    ws: n-tiles of ``cols`` (outer) x k-tiles of ``rows`` (inner), all M per fold.
    os: m-tiles of ``rows`` (outer) x n-tiles of ``cols`` (inner), all K per fold.
    is: m-tiles of ``cols`` (outer) x k-tiles of ``rows`` (inner), all N per fold.
    k-tiles are innermost in ws/is, so the k-folds of one psum tile run back to back in
    ascending k (the accumulation order of docs/semantics.md).
    """
    if dataflow == "ws":
        return [
            Fold(0, M, k0, k1, n0, n1) for n0, n1 in _tiles(N, cols) for k0, k1 in _tiles(K, rows)
        ]
    if dataflow == "os":
        return [
            Fold(m0, m1, 0, K, n0, n1) for m0, m1 in _tiles(M, rows) for n0, n1 in _tiles(N, cols)
        ]
    if dataflow == "is":
        return [
            Fold(m0, m1, k0, k1, 0, N) for m0, m1 in _tiles(M, cols) for k0, k1 in _tiles(K, rows)
        ]
    raise ValueError(f"unknown dataflow {dataflow!r}")


def fold_cycles(dataflow: str, Mt: int, Kt: int, Nt: int, rows: int, cols: int) -> int:
    """Compute cycles of one fold (fill, skewed streaming, drain), preload excluded.

    ws: ``Mt + rows + Nt`` (psums cross all ``rows`` rows and leave at the bottom edge);
    os: ``Kt + Mt + Nt`` (each accumulator is read in place when complete);
    is: ``Nt + rows + Mt``. Derivation in docs/dataflows.md.
    """
    if dataflow == "ws":
        return Mt + rows + Nt
    if dataflow == "os":
        return Kt + Mt + Nt
    if dataflow == "is":
        return Nt + rows + Mt
    raise ValueError(f"unknown dataflow {dataflow!r}")


def preload_cycles(dataflow: str, Mt: int, Kt: int, Nt: int, rows: int, cols: int) -> int:
    """Cycles to shift the stationary operand in before the fold (ws weights, is inputs).

    The operand is shifted down the columns through all ``rows`` rows (unused rows receive
    zeros). os keeps outputs stationary: its accumulators are initialised with ``psum_in`` in
    parallel as the fold starts, so no preload cycles.
    """
    if dataflow in ("ws", "is"):
        return rows
    if dataflow == "os":
        return 0
    raise ValueError(f"unknown dataflow {dataflow!r}")


def emulated_extent(dataflow: str, Mt: int, Kt: int, Nt: int, rows: int) -> tuple[int, int]:
    """(rows, cols) of PEs whose registers can influence the fold's outputs.

    ws/is: every row (psums cross them all) of the occupied columns; os: the tile's PEs.
    Registers outside this block are idle: faults there are masked.
    """
    if dataflow == "ws":
        return rows, Nt
    if dataflow == "os":
        return Mt, Nt
    if dataflow == "is":
        return rows, Mt
    raise ValueError(f"unknown dataflow {dataflow!r}")


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _tile_outputs(ms: np.ndarray, ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of ``ms`` x ``ns`` as (m_idx, n_idx)."""
    mm, nn = np.meshgrid(ms, ns, indexing="ij")
    return mm.ravel().astype(np.int64), nn.ravel().astype(np.int64)


def affected_outputs(
    dataflow: str,
    register_class: int,
    row: int,
    col: int,
    cycle: int,
    Mt: int,
    Kt: int,
    Nt: int,
    rows: int,
    cols: int,
    kind: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Tile outputs (m_idx, n_idx) that a fault in one register can change.

    Structural: operand values are ignored (a flipped input times a zero weight still counts),
    so the set is exact-or-superset of what the reference model changes, also when several
    faults of one plan interact. Empty means provably masked (idle register, or a value that is
    never read again). ``kind`` 0 is a transient flip at ``cycle``; stuck-at kinds (1, 2) hold
    all fold, so ``cycle`` is ignored and every output passing through the register counts.
    """
    total = fold_cycles(dataflow, Mt, Kt, Nt, rows, cols)
    ext_rows, ext_cols = emulated_extent(dataflow, Mt, Kt, Nt, rows)
    if not (0 <= row < ext_rows and 0 <= col < ext_cols):
        return _empty()
    if kind == 0 and not (0 <= cycle < total):
        return _empty()
    stuck = kind != 0
    if dataflow in ("ws", "is"):
        # slot s = the streamed index (ws: m, is: n); outputs of column c are (slot, c) in ws,
        # (c, slot) in is. The moving operand register holds slot t-r-c, the product t-r-c-1,
        # the psum t-r-c-2; the stationary register is read for slot s in cycle s+r+c.
        slots = Mt if dataflow == "ws" else Nt
        lanes = Nt if dataflow == "ws" else Mt
        moving = INPUT if dataflow == "ws" else WEIGHT
        all_slots = np.arange(slots)
        if register_class == moving:
            reach = np.arange(col, lanes)
            s = all_slots if stuck else _valid(cycle - row - col, slots)
        elif register_class in (INPUT, WEIGHT):  # the stationary operand
            reach = np.array([col])
            s = all_slots if stuck else np.arange(max(0, cycle - row - col), slots)
        else:
            delay = 1 if register_class == PRODUCT else 2
            reach = np.array([col])
            s = all_slots if stuck else _valid(cycle - row - col - delay, slots)
        if s.size == 0 or reach.size == 0:
            return _empty()
        if dataflow == "ws":
            return _tile_outputs(s, reach)
        return _tile_outputs(reach, s)
    if dataflow == "os":
        # PE(r, c) owns output (r, c), complete (and read) in cycle Kt+r+c+1. The operand
        # registers hold k-slot t-r-c and their product is accumulated in cycle t+c'-c+1 at
        # PE(r, c') (inputs) or t+r'-r+1 at PE(r', c) (weights): in time iff t-r-c <= Kt-1.
        last_useful = Kt + row + col + 1
        if register_class == INPUT:
            ok = stuck or cycle - row - col <= Kt - 1
            return _tile_outputs(np.array([row]), np.arange(col, Nt)) if ok else _empty()
        if register_class == WEIGHT:
            ok = stuck or cycle - row - col <= Kt - 1
            return _tile_outputs(np.arange(row, Mt), np.array([col])) if ok else _empty()
        limit = last_useful - 1 if register_class == PRODUCT else last_useful
        ok = stuck or cycle <= limit
        return _tile_outputs(np.array([row]), np.array([col])) if ok else _empty()
    raise ValueError(f"unknown dataflow {dataflow!r}")


def _valid(slot: int, slots: int) -> np.ndarray:
    return np.array([slot], dtype=np.int64) if 0 <= slot < slots else np.zeros(0, np.int64)


def fault_sites(dataflow: str, Mt: int, Kt: int, Nt: int, rows: int) -> tuple[int, int, int]:
    """(rows, cols, cycles) of the block of PE registers exposed during one fold."""
    ext_rows, ext_cols = emulated_extent(dataflow, Mt, Kt, Nt, rows)
    return ext_rows, ext_cols, fold_cycles(dataflow, Mt, Kt, Nt, rows, 0)
