"""The PE array: one fold per transaction, values from one Numba call per fold."""

from __future__ import annotations

import numpy as np
import simpy

from .. import kernels, mapping
from ..config import REGISTER_CLASSES, ArrayConfig, HardenedBitsConfig
from ..intmath import OVERFLOW_RULES
from ..schedule import FoldJob, GemmShape
from .module import Module

EMPTY_FAULTS = np.zeros((0, 6), dtype=np.int64)
FAULT_MASK_COLUMN = 4  # kernel fault rows: [register_class, row, col, cycle, mask, kind]


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
    faults = np.array(faults, dtype=np.int64, copy=True).reshape(-1, 6)
    faults[:, FAULT_MASK_COLUMN] &= ~masks[faults[:, 0]]
    return faults[faults[:, FAULT_MASK_COLUMN] != 0]


class PEArray(Module):
    """``rows × cols`` integer PEs running the configured dataflow.

    A fold holds the array for its cycle count (fill, skewed streaming, drain: see
    docs/dataflows.md); its values are computed by ``kernels.run_fold`` with the PE
    semantics of docs/semantics.md, faults applied inside the kernel.
    """

    def __init__(self, name: str, parent: Module, config: ArrayConfig,
                 hardened: HardenedBitsConfig | None = None) -> None:  # fmt: skip
        super().__init__(name, parent)
        self.hardened = hardened_masks(hardened)
        self.rows = config.rows
        self.cols = config.cols
        self.dataflow = config.dataflow
        self.dataflow_code = mapping.DATAFLOW_CODES[config.dataflow]
        self.lock = simpy.Resource(self.env, capacity=1)
        self.busy_cycles = 0

    def pes_used(self, fold: FoldJob) -> int:
        m, k, n = fold.m1 - fold.m0, fold.k1 - fold.k0, fold.n1 - fold.n0
        return {"ws": k * n, "os": m * n, "is": k * m}[self.dataflow]

    def fold(self, fold: FoldJob, cycles: int, shape: GemmShape, a: np.ndarray, w: np.ndarray,
             psum: np.ndarray, faults: np.ndarray | None):  # fmt: skip
        """Run one fold: occupy the array ``cycles`` cycles, then update ``psum`` in place."""
        with self.lock.request() as grant:
            yield grant
            start = self.env.now
            yield self.env.timeout(cycles)
            self.busy_cycles += cycles
            compute_fold(self.dataflow_code, self.rows, self.cols, shape, fold, a, w, psum,
                         harden(faults, self.hardened))  # fmt: skip
            self.trace("fold", start, layer=shape.layer, fold=fold.index)


def compute_fold(dataflow_code: int, rows: int, cols: int, shape: GemmShape, fold: FoldJob,
                 a: np.ndarray, w: np.ndarray, psum: np.ndarray, faults: np.ndarray | None) -> None:  # fmt: skip
    """The values of one fold: ``psum`` of the fold's output tile is updated in place."""
    out_rows, out_cols = slice(fold.m0, fold.m1), slice(fold.n0, fold.n1)
    psum[out_rows, out_cols] = kernels.run_fold(
        dataflow_code,
        a[out_rows, fold.k0 : fold.k1],
        w[fold.k0 : fold.k1, out_cols],
        psum[out_rows, out_cols],
        rows=rows,
        cols=cols,
        a_bits=shape.a_bits,
        a_signed=shape.a_signed,
        w_bits=shape.w_bits,
        acc_bits=shape.acc_bits,
        overflow=OVERFLOW_RULES[shape.overflow],
        faults=EMPTY_FAULTS if faults is None else faults,
    )
