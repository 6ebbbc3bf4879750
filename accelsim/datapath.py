"""The datapath as plain arrays and ints, apart from the SimPy hardware processes.

What the array computes, not when: a layer lowered to its GEMM operands, the values of a fold
(faults applied inside the kernel, hardened bits masked out first), the fault-free GEMM of a
whole layer, and the output stage's requantisation. The hardware model (:mod:`accelsim.hw`)
times these transactions; the functional model (:mod:`accelsim.functional`) and the fault
injectors (:mod:`faults`) call them directly and never import the hardware model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
from numba import njit

from . import kernels, mapping
from .codes import FAULT_MASK, FAULT_REGISTER, FAULT_ROW_WIDTH, OVERFLOW_CODES, REGISTER_CLASSES
from .config import HardenedBitsConfig
from .derived import derived
from .intmath import requantize
from .ir import Node
from .pe_spec import PESpec
from .schedule import FoldJob, GemmShape, LayerSchedule

EMPTY_FAULTS = np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64)


class LoweredInput(Sequence):
    """A conv layer's im2col operands ``A`` (M, K) int64, one per group, lowered from the
    layer's input when first read (the fault-free GEMM reads a float32 lowering instead, so
    a fault-free run never builds them). The input must not be written while they are used."""

    def __init__(self, x: np.ndarray, weight_shape: tuple[int, ...], shape: GemmShape) -> None:
        self.x = np.ascontiguousarray(x, dtype=np.int64)
        self.weight_shape = tuple(int(v) for v in weight_shape)
        self.shape = shape
        self._groups: list[np.ndarray] | None = None

    def _lowering(self) -> tuple:
        s = self.shape
        return (self.weight_shape, s.stride, s.pads, s.groups, s.dilation)

    def _built(self) -> list[np.ndarray]:
        if self._groups is None:
            self._groups = mapping.lower_conv(self.x, *self._lowering())
        return self._groups

    def __getitem__(self, g):
        return self._built()[g]

    def __len__(self) -> int:
        return self.shape.groups

    def max_abs(self) -> int:
        """max |x|, a bound of max |A| (A holds input values and padding zeros)."""
        return int(kernels.max_abs(self.x))

    def float32(self, g: int) -> np.ndarray:
        """Group ``g``'s ``A`` in float32 (a transposed view of a C-contiguous ``A^T``)."""
        if self._groups is not None:
            return self._groups[g].astype(np.float32)
        weight_shape, stride, pads, groups, dilation = self._lowering()
        c_per_group = weight_shape[1]
        # the input in float32 first: im2col then reads half the bytes (1.7x faster measured
        # on ResNet-18's layers); exact wherever the float32 GEMM applies (|a*w| <= 2**24)
        x = self.x[:, g * c_per_group : (g + 1) * c_per_group].astype(np.float32)
        group_shape = (weight_shape[0] // groups, *weight_shape[1:])
        return mapping.lower_conv_transposed(x, group_shape, stride, pads, 1, dilation)[0].T


@dataclass(frozen=True)
class GemmOperands:
    """Everything the array reads for one layer, lowered once: A, W and psums per group."""

    a: Sequence[np.ndarray]  # (M, K) int64 per group (a LoweredInput: built when first read)
    w: list[np.ndarray]  # (K, N) per group
    psum: list[np.ndarray]  # (M, N) per group, starts at the bias, updated in place
    bias: list[np.ndarray]  # (N,) per group: where every accumulator starts
    # (M, KH*KW) uint8: 1 where a kernel offset of an output pixel reads the input, 0 where it
    # reads padding (the same for every channel); None: A holds no padding
    padding_window: np.ndarray | None = None

    def with_psum(self, psum: list[np.ndarray]) -> GemmOperands:
        """The same operands with other partial sums."""
        return replace(self, psum=psum)

    @property
    def k_extent(self) -> int:
        """K, the GEMM's reduction length (the width of A)."""
        return int(self.w[0].shape[0])

    @cached_property
    def input_elements(self) -> list[np.ndarray]:
        """Per group, 2-D prefix sums of "not a padding zero" over A (for traffic and SRAM
        words; computed when first asked, as most uses of the operands never need it)."""
        shape = (self.psum[0].shape[0], self.k_extent)
        if self.padding_window is None:
            mask = np.ones(shape, dtype=bool)
        else:
            channels = shape[1] // self.padding_window.shape[1]
            mask = np.tile(self.padding_window != 0, (1, channels))  # k = c*KH*KW + offset
        return [element_prefix(mask)] * len(self.a)  # the same in every group

    def a_float32(self, g: int) -> np.ndarray:
        """Group ``g``'s ``A`` (M, K) in float32 (the exact float GEMM's operand)."""
        if isinstance(self.a, LoweredInput):
            return self.a.float32(g)
        return self.a[g].astype(np.float32)

    def a_max_abs(self) -> int:
        """A bound of max |A| over every group (exact unless A is still to be lowered)."""
        if isinstance(self.a, LoweredInput):
            return self.a.max_abs()
        return max((int(kernels.max_abs(a)) for a in self.a), default=0)


def element_prefix(mask: np.ndarray) -> np.ndarray:
    """2-D prefix sums with a zero row and column in front."""
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=out[1:, 1:])
    return out


def lower_operands(
    node: Node, x: np.ndarray, shape: GemmShape, *, lazy_a: bool = False
) -> GemmOperands:
    """Lower a layer's input and weights to the GEMM operands the array streams.

    ``lazy_a``: a conv layer's int64 ``A`` is built only when first read (a
    :class:`LoweredInput`; ``x`` must then stay unchanged), as the fault-free GEMM lowers
    ``x`` straight to float32 instead.
    """
    bias = node.params["bias"].astype(np.int64)
    padding_window = None
    if node.op == "linear":
        a_groups = [np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.int64)]
    else:
        kh, kw = node.params["weight"].shape[2:]
        stride, padding = tuple(node.attrs["stride"]), shape.pads
        a_groups = LoweredInput(x, node.params["weight"].shape, shape)
        if not lazy_a:
            a_groups = list(a_groups)
        if any(shape.pads):
            padding_window = _padding_window(
                tuple(x.shape), (int(kh), int(kw)), stride, padding, tuple(shape.dilation)
            )
    n = shape.N
    return GemmOperands(
        a=a_groups,
        w=weight_matrices(node),
        psum=[np.tile(bias[g * n : (g + 1) * n], (shape.M, 1)) for g in range(shape.groups)],
        bias=[bias[g * n : (g + 1) * n] for g in range(shape.groups)],
        padding_window=padding_window,
    )


@lru_cache(maxsize=256)
def _padding_window(x_shape, kernel, stride, padding, dilation) -> np.ndarray:
    """Where padding zeros sit in A: fixed by the pixel and the kernel offset only (the same
    for every channel), so one read-only table per layer geometry. Separable: offset (i, j)
    of output pixel (y, x) reads the input iff its row and its column are inside."""
    batch, _, height, width = x_shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ph, pw = padding[0], padding[1]
    oh = (height + padding[0] + padding[2] - (dh * (kh - 1) + 1)) // sh + 1
    ow = (width + padding[1] + padding[3] - (dw * (kw - 1) + 1)) // sw + 1
    rows = np.arange(oh)[:, None] * sh - ph + np.arange(kh)[None, :] * dh  # (OH, KH)
    cols = np.arange(ow)[:, None] * sw - pw + np.arange(kw)[None, :] * dw  # (OW, KW)
    rows_in = (rows >= 0) & (rows < height)
    cols_in = (cols >= 0) & (cols < width)
    window = rows_in[:, None, :, None] & cols_in[None, :, None, :]  # (OH, OW, KH, KW)
    window = window.reshape(oh * ow, kh * kw).view(np.uint8)  # 0/1 bytes: 8x less than int64
    if batch > 1:
        window = np.tile(window, (batch, 1))
    window.flags.writeable = False
    return window


def weight_matrices(node: Node) -> list[np.ndarray]:
    """A conv2d/linear node's weights as the (K, N) int64 matrix of each group, built once per
    weight array (the IR's weights are never written) and read-only."""

    def build(weight: np.ndarray) -> list[np.ndarray]:
        if node.op == "linear":
            matrices = [np.ascontiguousarray(weight.astype(np.int64).T)]
        else:
            matrices = mapping.weight_matrices(
                weight.astype(np.int64), int(node.attrs.get("groups", 1))
            )
        for matrix in matrices:
            matrix.flags.writeable = False
        return matrices

    return derived(node.params["weight"], "weight_matrices", build)


def gemm_output(node: Node, ops: GemmOperands, shape: GemmShape) -> np.ndarray:
    """The output stage: requantise every accumulator and lay the tensor out (N, C, H, W)."""
    n = shape.N
    attrs = node.attrs
    batch = shape.batch
    pixels = 1 if node.op == "linear" else shape.out_h * shape.out_w
    out = np.empty((batch, n * shape.groups, pixels), dtype=np.int64)
    for g, psum in enumerate(ops.psum):
        channels = slice(g * n, (g + 1) * n)
        _requantize_into(
            psum,
            np.asarray(node.params["multiplier"][channels], dtype=np.int64),
            np.asarray(node.params["shift"][channels], dtype=np.int64),
            int(attrs["out_zero_point"]),
            int(attrs["out_lo"]),
            int(attrs["out_hi"]),
            out,
            g * n,
        )
    if node.op == "linear":
        return out.reshape(batch, -1)
    return out.reshape(batch, n * shape.groups, shape.out_h, shape.out_w)


@njit(cache=True)
def _requantize_into(psum, multiplier, shift, zero_point, lo, hi, out, c0):
    """``out[b, c0 + n, p] = requantize(psum[b*P + p, n])``: requantisation and the (N, C, H, W)
    layout in one pass (P = OH*OW)."""
    batch, pixels = out.shape[0], out.shape[2]
    for b in range(batch):
        for p in range(pixels):
            row = psum[b * pixels + p]
            for n in range(row.shape[0]):
                out[b, c0 + n, p] = requantize(row[n], multiplier[n], shift[n], zero_point, lo, hi)
    return out


def hardened_masks(hardened: HardenedBitsConfig | None) -> np.ndarray:
    """Bit mask of hardened bits per register class code (circuit-layer protection)."""
    if hardened is None:
        return np.zeros(len(REGISTER_CLASSES), dtype=np.int64)
    return np.array([hardened.mask(c) for c in REGISTER_CLASSES], dtype=np.int64)


def harden(faults: np.ndarray | None, masks: np.ndarray) -> np.ndarray:
    """Faults as the hardened array sees them: hardened bits cannot flip or stick.

    Applied at the kernel entry, so no fault source (sampled, explicit, user) bypasses it.
    """
    if faults is None or len(faults) == 0:
        return EMPTY_FAULTS
    faults = np.array(faults, dtype=np.int64, copy=True).reshape(-1, FAULT_ROW_WIDTH)
    faults[:, FAULT_MASK] &= ~masks[faults[:, FAULT_REGISTER]]
    return faults[faults[:, FAULT_MASK] != 0]


def tile_key(fold: FoldJob) -> tuple[int, int, int, int, int]:
    """The output tile a fold accumulates into: its k-chain shares this key."""
    return (fold.group, fold.m0, fold.m1, fold.n0, fold.n1)


def compute_layer(
    pe: PESpec,
    sched: LayerSchedule,
    ops,
    faults: Mapping[int, np.ndarray] | None,
    hardened: np.ndarray,
) -> None:
    """Every fold's values of one layer on the array ``pe``, ``ops.psum`` updated in place.

    Fault-free arithmetic is the same whatever the tiling (ascending k, overflow at every add:
    docs/semantics.md), so the tiles without faults are computed in one Numba call per group;
    each output tile holding a fault is then recomputed fold by fold along its k-chain, from
    the bias, with the faults applied inside the fold kernel. Tests prove both paths equal the
    reference model and the reference executor.
    """
    compute_fault_free(sched.shape, ops)
    live = {}
    for index, rows_ in (faults or {}).items():
        hardened_rows = harden(rows_, hardened)
        if len(hardened_rows):
            live[int(index)] = hardened_rows
    if not live:
        return
    tiles = {tile_key(sched.folds[index]) for index in live}
    for fold in sched.folds:  # schedule order: a tile's k-folds come in ascending k
        if tile_key(fold) not in tiles:
            continue
        g = fold.group
        if fold.first_k:
            ops.psum[g][fold.m0 : fold.m1, fold.n0 : fold.n1] = ops.bias[g][fold.n0 : fold.n1]
        compute_fold(pe, fold, ops.a[g], ops.w[g], ops.psum[g], live.get(fold.index))


def compute_fault_free(shape: GemmShape, ops) -> None:
    """Every group's fault-free GEMM, ``ops.psum`` updated in place (no tiling needed): in
    float32 BLAS where that is provably exact (:func:`kernels.exact_float32_gemm_into`),
    else :func:`kernels.run_gemm`."""
    overflow = OVERFLOW_CODES[shape.overflow]
    max_a = ops.a_max_abs()
    for g in range(shape.groups):
        psum = ops.psum[g]
        if kernels.exact_float32_gemm_into(
            psum,
            lambda g=g: ops.a_float32(g),
            ops.w[g],
            max_a,
            acc_bits=shape.acc_bits,
            overflow=overflow,
        ):
            continue
        psum[:] = kernels.run_gemm_without_float32(  # declined above: not tried twice
            ops.a[g], ops.w[g], psum, acc_bits=shape.acc_bits, overflow=overflow
        )


def compute_fold(
    pe: PESpec,
    fold: FoldJob,
    a: np.ndarray,
    w: np.ndarray,
    psum: np.ndarray,
    faults: np.ndarray | None,
) -> None:
    """The values of one fold: ``psum`` of the fold's output tile is updated in place."""
    out_rows, out_cols = slice(fold.m0, fold.m1), slice(fold.n0, fold.n1)
    psum[out_rows, out_cols] = kernels.run_fold(
        pe,
        a[out_rows, fold.k0 : fold.k1],
        w[fold.k0 : fold.k1, out_cols],
        psum[out_rows, out_cols],
        faults=EMPTY_FAULTS if faults is None else faults,
    )
