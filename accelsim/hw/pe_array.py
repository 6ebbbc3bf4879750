"""The PE array: one fold per transaction, values from one Numba call per fold."""

from __future__ import annotations

from ..config import ArrayConfig, HardenedBitsConfig
from ..datapath import hardened_masks
from ..pe_spec import PESpec
from ..schedule import FoldJob, GemmShape
from .module import Module


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
