"""Faults in the SRAM words of the input, weight and output buffers.

A flip in a buffer word is seen by every later read of that word until the word is
overwritten. The buffers hold one layer's data at a time and the controller
(``accelsim/hw/controller.py``) fixes when each word is (re)written, so the model below is that
walk written at fold granularity. A fault (:class:`faults.fault.Fault` with register
``sram:input`` / ``sram:weight`` / ``sram:output``) names a layer, a fold ``f`` and a word
address (``Fault.cycle``); its bits are XORed into the word's encoding (``Fault.bits``, kind
``flip``; stuck-at faults are not modelled for SRAM) *just before fold f reads the buffer*.
Addresses are logical (one word per tensor element or partial sum of one sample, batch 1), not
physical slot offsets; a word that the buffer does not hold at that moment is not hit (masked).

``sram:input`` — ``a_bits`` wide, the input tensor's signedness. Address = flat index of the
element in the layer's input tensor ``(C, H, W)`` (linear: ``(F,)``). The input DMA loads an
m-block's input rows once and keeps them until the block's last fold; the next block reloads
its own rows (overlapping halo rows included). So the flipped value is read by every A-matrix
entry lowered from that element (im2col may copy one element into many (m, k) entries) in the
folds of fold f's m-block with index >= f. Padding zeros are not stored, so they cannot be hit;
an element the block does not read (outside its rows, or a channel of another group) is masked.

``sram:weight`` — ``w_bits`` wide, signed. Address = flat index into the weight tensor
``(N, C/groups, KH, KW)`` (linear: ``(N_out, K)``), i.e. output channel ``n_g = addr // K``,
``k = addr % K``, group ``n_g // N``. When all weights fit the buffer
(``LayerSchedule.weights_resident``) the DMA stores them once for the whole layer: the flip is
read by every fold >= f whose tile holds ``W[k, n]``. Otherwise the controller loads a fresh
weight tile into a slot for *every* fold (``Controller.weight_dma``: no reuse, even between
consecutive folds with the same tile), so the flip is seen by fold f alone, and only if fold
f's tile holds that weight.

``sram:output`` — ``acc_bits`` wide, signed: the partial sums. Address
``(g * M + m) * N + n`` for the group-local GEMM output ``(m, n)`` of group ``g``
(``M x N`` per group, docs/semantics.md §2). Every fold writes its psum tile back and the next
k-fold of that tile reads it as ``psum_in``; after the tile's last k-fold the write-back unit
reads it once more, requantises it and sends it to DRAM (``Controller.writeback``, which runs
while the next fold computes). So for the psum (m, n) whose tile is accumulated by folds
``c_0 < ... < c_last`` (consecutive in every dataflow):

* ``c_0 < f <= c_last``: fold f reads the flipped psum as its ``psum_in``;
* ``f == c_last + 1``: the write-back reads the flipped final psum before requantisation;
* ``f <= c_0``: the tile's first fold starts from the bias (the word is rewritten): masked;
* ``f > c_last + 1``: the tile has left the buffer: masked. (A tile completed by the layer's
  last fold is read back before any later fold of the layer, so it cannot be hit.)

In ``os`` every tile has one k-fold, so only the write-back case exists there.

Protection (``protected`` output channels): the redundant units read the same input and weight
buffer words as the array (input/weight flips reach them), and their results overwrite the
protected channels' psums before write-back (output-buffer flips in those channels vanish).

Computation: the layer's affected output tiles are recomputed fold by fold along their k-chain
from the bias, each fold by :func:`accelsim.datapath.compute_fold` on copies of that fold's
operand tiles with the active flips applied (PE faults of the same layer still act inside the
kernel); every other tile keeps its cached psums.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from accelsim import mapping
from accelsim.codes import SRAM_REGISTERS
from accelsim.datapath import GemmOperands, compute_fold, tile_key
from accelsim.ir import Node
from accelsim.pe_spec import PESpec
from accelsim.schedule import FoldJob, LayerSchedule

from .fault import Fault

SRAM_INPUT, SRAM_WEIGHT, SRAM_OUTPUT = SRAM_REGISTERS


def sram_words(sched: LayerSchedule) -> dict[str, int]:
    """Words of each buffer holding one sample's data of the layer (batch-1 schedule)."""
    shape = sched.shape
    return {
        SRAM_INPUT: shape.in_channels * shape.in_h * shape.in_w,
        SRAM_WEIGHT: shape.groups * shape.K * shape.N,
        SRAM_OUTPUT: shape.groups * shape.M * shape.N,
    }


def sram_word_bits(sched: LayerSchedule) -> dict[str, int]:
    """Width of each buffer's words for the layer: a_bits, w_bits, acc_bits."""
    shape = sched.shape
    return {SRAM_INPUT: shape.a_bits, SRAM_WEIGHT: shape.w_bits, SRAM_OUTPUT: shape.acc_bits}


def lowered_index(node: Node, sched: LayerSchedule) -> list[np.ndarray]:
    """Per group, the (M, K) matrix of ``1 + input element address`` (0 = padding zero)."""
    shape = sched.shape
    if shape.batch != 1:
        raise ValueError(f"layer {shape.layer}: SRAM addresses are per sample (batch 1)")
    count = shape.in_channels * shape.in_h * shape.in_w
    index = np.arange(1, count + 1, dtype=np.int64)
    if node.op == "linear":
        return [index.reshape(1, count)]
    weight_shape = node.params["weight"].shape
    x = index.reshape(1, shape.in_channels, shape.in_h, shape.in_w)
    return mapping.lower_conv(
        x, weight_shape, shape.stride, shape.pads, shape.groups, shape.dilation
    )


def flip_array(values: np.ndarray, mask: int, bits: int, signed: bool) -> np.ndarray:
    """XOR ``mask`` into the ``bits``-bit encoding of ``values`` and decode (int64)."""
    full = np.int64((1 << bits) - 1)
    raw = (np.asarray(values, dtype=np.int64) & full) ^ np.int64(mask & int(full))
    if signed:
        raw = np.where(raw >> (bits - 1) != 0, raw - np.int64(1 << bits), raw)
    return raw


@dataclass(frozen=True)
class OperandFlip:
    """A flipped operand word as the array sees it: entries of A or W during some folds."""

    operand: str  # "a" or "w"
    group: int
    rows: np.ndarray  # matrix rows of the entries (m for A, k for W)
    cols: np.ndarray  # matrix columns (k for A, n for W)
    mask: int
    folds: frozenset[int]  # fold indices that read the flipped word


@dataclass(frozen=True)
class PsumFlip:
    """A flipped output-buffer psum: read as ``psum_in`` by ``fold``, or (None) by write-back."""

    group: int
    m: int
    n: int
    mask: int
    fold: int | None


@dataclass
class LayerEffects:
    """What a layer's SRAM faults change, and how many of them cannot change anything."""

    operands: list[OperandFlip]
    psums: list[PsumFlip]
    masked: int = 0

    def folds(self) -> set[int]:
        """Folds whose operands or psum_in differ (their tiles must be recomputed)."""
        out: set[int] = set()
        for flip in self.operands:
            out |= flip.folds
        out |= {p.fold for p in self.psums if p.fold is not None}
        return out


def _check(fault: Fault, sched: LayerSchedule) -> None:
    shape = sched.shape
    if fault.kind != "flip":
        raise ValueError(f"{fault.register}: only flips are modelled in SRAM, not {fault.kind}")
    if fault.fold >= len(sched.folds):
        raise ValueError(f"layer {shape.layer} has no fold {fault.fold}")
    words, bits = sram_words(sched)[fault.register], sram_word_bits(sched)[fault.register]
    if fault.cycle >= words:
        raise ValueError(f"{fault.register} address {fault.cycle} >= {words} words")
    if fault.bits[-1] >= bits:
        raise ValueError(f"{fault.register} bit {fault.bits[-1]} outside its {bits}-bit words")


def _tile_hits(fold: FoldJob, operand: str, rows: np.ndarray, cols: np.ndarray) -> bool:
    r0, r1, c0, c1 = (
        (fold.m0, fold.m1, fold.k0, fold.k1)
        if operand == "a"
        else (fold.k0, fold.k1, fold.n0, fold.n1)
    )
    return bool(np.any((rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)))


def layer_effects(
    node: Node, sched: LayerSchedule, faults: Sequence[Fault], index: Sequence[np.ndarray]
) -> LayerEffects:
    """The reads each SRAM fault of the layer corrupts (model: module docstring).

    ``index``: :func:`lowered_index` of the layer (passed in so callers can cache it).
    """
    shape = sched.shape
    folds = sched.folds
    effects = LayerEffects([], [])
    for fault in faults:
        _check(fault, sched)
        at = folds[fault.fold]
        address, mask = fault.cycle, fault.mask
        flip: OperandFlip | PsumFlip | None = None
        if fault.register == SRAM_INPUT:
            rows, cols = np.nonzero(index[at.group] == address + 1)
            readers = frozenset(
                f.index
                for f in folds
                if f.block == at.block and f.index >= at.index and _tile_hits(f, "a", rows, cols)
            )
            if readers:
                flip = OperandFlip("a", at.group, rows, cols, mask, readers)
        elif fault.register == SRAM_WEIGHT:
            channel, k = divmod(address, shape.K)
            group, n = divmod(channel, shape.N)
            rows, cols = np.array([k]), np.array([n])
            later = folds[at.index :] if sched.weights_resident else (at,)
            readers = frozenset(
                f.index for f in later if f.group == group and _tile_hits(f, "w", rows, cols)
            )
            if readers:
                flip = OperandFlip("w", group, rows, cols, mask, readers)
        else:
            group, rest = divmod(address, shape.M * shape.N)
            m, n = divmod(rest, shape.N)
            chain = [f for f in folds if f.group == group and f.m0 <= m < f.m1 and f.n0 <= n < f.n1]
            reader = next((f for f in chain if f.index >= at.index), None)
            if reader is not None and not reader.first_k:
                flip = PsumFlip(group, m, n, mask, reader.index)
            elif reader is None and at.index == chain[-1].index + 1:
                flip = PsumFlip(group, m, n, mask, None)  # the write-back's read
        if flip is None:
            effects.masked += 1
        elif isinstance(flip, OperandFlip):
            effects.operands.append(flip)
        else:
            effects.psums.append(flip)
    return effects


def _local_fold(fold: FoldJob) -> FoldJob:
    return dataclasses.replace(
        fold, m0=0, m1=fold.m1 - fold.m0, k0=0, k1=fold.k1 - fold.k0, n0=0, n1=fold.n1 - fold.n0
    )


def _flip_tile(
    tile: np.ndarray, flip: OperandFlip, r0: int, c0: int, bits: int, signed: bool
) -> None:
    rows, cols = flip.rows - r0, flip.cols - c0
    inside = (rows >= 0) & (rows < tile.shape[0]) & (cols >= 0) & (cols < tile.shape[1])
    rows, cols = rows[inside], cols[inside]
    tile[rows, cols] = flip_array(tile[rows, cols], flip.mask, bits, signed)


def recompute_psums(
    sched: LayerSchedule,
    pe: PESpec,
    ops: GemmOperands,
    effects: LayerEffects,
    *,
    pe_faults: Mapping[int, np.ndarray] | None = None,
    extra_tiles: set[tuple[int, int, int, int, int]] | frozenset = frozenset(),
    psum_flips: bool = True,
) -> tuple[list[np.ndarray], int]:
    """The layer's psums with ``effects`` applied on the array ``pe``, and the number of tiles
    recomputed.

    ``ops.psum`` are the psums to start from (tiles not recomputed keep them). Tiles read by a
    flip, plus ``extra_tiles``, are recomputed fold by fold from the bias; ``pe_faults``
    (hardened kernel rows per fold) act in the folds recomputed. ``psum_flips=False`` leaves
    the output-buffer flips out (what the redundant units deliver).
    """
    shape = sched.shape
    pe_faults = pe_faults or {}
    psum = [p.copy() for p in ops.psum]
    psum_effects = effects.psums if psum_flips else []
    touched: set[int] = set()
    for flip in effects.operands:
        touched |= flip.folds
    touched |= {p.fold for p in psum_effects if p.fold is not None}
    tiles = {tile_key(sched.folds[i]) for i in touched} | set(extra_tiles)
    by_fold: dict[int, list[OperandFlip]] = {}
    for flip in effects.operands:
        for index in flip.folds:
            by_fold.setdefault(index, []).append(flip)
    psum_in: dict[int, list[PsumFlip]] = {}
    for p in psum_effects:
        if p.fold is not None:
            psum_in.setdefault(p.fold, []).append(p)
    for fold in sched.folds:  # schedule order: a tile's k-folds come in ascending k
        if tile_key(fold) not in tiles:
            continue
        g = fold.group
        out = psum[g][fold.m0 : fold.m1, fold.n0 : fold.n1]
        if fold.first_k:
            out[:] = ops.bias[g][fold.n0 : fold.n1]
        for p in psum_in.get(fold.index, ()):
            out[p.m - fold.m0, p.n - fold.n0] = flip_array(
                out[p.m - fold.m0, p.n - fold.n0], p.mask, shape.acc_bits, True
            )
        flips = by_fold.get(fold.index)
        if not flips:
            compute_fold(pe, fold, ops.a[g], ops.w[g], psum[g], pe_faults.get(fold.index))
            continue
        a_tile = ops.a[g][fold.m0 : fold.m1, fold.k0 : fold.k1].copy()
        w_tile = ops.w[g][fold.k0 : fold.k1, fold.n0 : fold.n1].copy()
        for flip in flips:
            if flip.operand == "a":
                _flip_tile(a_tile, flip, fold.m0, fold.k0, shape.a_bits, shape.a_signed)
            else:
                _flip_tile(w_tile, flip, fold.k0, fold.n0, shape.w_bits, True)
        local = out.copy()
        compute_fold(
            pe,
            _local_fold(fold),
            a_tile,
            w_tile,
            local,
            pe_faults.get(fold.index),
        )
        out[:] = local
    for p in psum_effects:
        if p.fold is None:
            psum[p.group][p.m, p.n] = flip_array(
                psum[p.group][p.m, p.n], p.mask, shape.acc_bits, True
            )
    return psum, len(tiles)
