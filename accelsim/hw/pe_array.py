"""The PE array: one fold per transaction, values from one Numba call per fold."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import kernels
from ..codes import FAULT_MASK, FAULT_REGISTER, FAULT_ROW_WIDTH, OVERFLOW_CODES, REGISTER_CLASSES
from ..config import ArrayConfig, HardenedBitsConfig
from ..pe_spec import PESpec
from ..schedule import FoldJob, GemmShape, LayerSchedule
from .module import Module

EMPTY_FAULTS = np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64)


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


class PEArray(Module):
    """``rows × cols`` integer PEs running the configured dataflow.

    A fold holds the array for its cycle count (fill, skewed streaming, drain: see
    docs/dataflows.md); its values are computed by ``kernels.run_fold`` with the PE
    semantics of docs/semantics.md, faults applied inside the kernel.
    """

    def __init__(
        self,
        name: str,
        parent: Module,
        config: ArrayConfig,
        hardened: HardenedBitsConfig | None = None,
    ) -> None:
        super().__init__(name, parent)
        self.hardened = hardened_masks(hardened)
        self.config = config
        self.rows = config.rows
        self.cols = config.cols
        self.dataflow = config.dataflow
        self.busy_cycles = 0

    def spec(self, shape: GemmShape) -> PESpec:
        """The array as the kernels see it when it runs the layer ``shape``."""
        return PESpec.for_layer(self.config, shape)

    def fold(self, fold: FoldJob, cycles: int, layer: str):
        """Occupy the array for one fold's ``cycles`` (its values: :func:`compute_layer`).

        The controller issues folds one at a time, so the array needs no arbitration.
        """
        start = self.env.now
        yield self.env.timeout(cycles)
        self.busy_cycles += cycles
        self.trace("fold", start, layer=layer, fold=fold.index)


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
    """Every group's fault-free GEMM, ``ops.psum`` updated in place (no tiling needed)."""
    overflow = OVERFLOW_CODES[shape.overflow]
    for g in range(shape.groups):
        ops.psum[g][:] = kernels.run_gemm(
            ops.a[g], ops.w[g], ops.psum[g], acc_bits=shape.acc_bits, overflow=overflow
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
