"""The PE array: a run of folds per transaction, values computed apart (accelsim.datapath)."""

from __future__ import annotations

import numpy as np

from ..codes import dataflow_spec
from ..config import ArrayConfig, HardenedBitsConfig
from ..datapath import hardened_masks
from ..pe_spec import PESpec
from ..schedule import GemmShape
from .module import Module


class PEArray(Module):
    """``rows × cols`` integer PEs running the configured dataflow.

    A fold holds the array for its cycle count (fill, skewed streaming, drain: see
    docs/dataflows.md); its values are computed by ``datapath.compute_layer`` with the PE
    semantics of docs/semantics.md, faults applied inside the kernel. Statistics:
    ``busy_cycles``, ``folds`` and ``mapped_pe_fraction_sum`` (Σ over folds of the fraction
    of PEs holding work: divided by ``folds`` it is the mapping efficiency).
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
        self.busy_cycles = self.statistic("busy_cycles", "cycles running folds")
        self.folds = self.statistic("folds", "folds run")
        self.mapped_pe_fraction_sum = self.statistic(
            "mapped_pe_fraction_sum", "Σ over folds of the fraction of PEs holding work"
        )

    def spec(self, shape: GemmShape) -> PESpec:
        """The array as the kernels see it when it runs the layer ``shape``."""
        return PESpec.for_layer(self.config, shape)

    def mapped_pe_fraction_sum_of(self, mt: np.ndarray, kt: np.ndarray, nt: np.ndarray) -> float:
        """Σ over folds (tile extents per fold) of the fraction of PEs holding work."""
        used = np.multiply(*dataflow_spec(self.dataflow).spatial(mt, kt, nt))
        return float(np.sum(used)) / (self.rows * self.cols)

    def record_folds(self, pe_fraction_sum: float, folds: int) -> None:
        """Count ``folds`` folds whose PE fractions sum to ``pe_fraction_sum``."""
        self.mapped_pe_fraction_sum.value += pe_fraction_sum
        self.folds.value += folds

    def run(self, cycles: int, layer: str, first: int, starts, ends):
        """Occupy the array for ``cycles``: the folds ``first, first + 1, ...`` of ``layer``
        back to back, fold ``first + i`` from cycle ``starts[i]`` to ``ends[i]`` (the trace
        shows each fold). The controller issues runs one at a time, so the array needs no
        arbitration."""
        yield self.env.timeout(cycles)
        self.busy_cycles.value += cycles
        if self.tracer.enabled:
            for i, (start, end) in enumerate(zip(starts, ends)):
                self.tracer.span(self.path, "fold", start, end, layer=layer, fold=first + i)
