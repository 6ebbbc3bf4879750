"""The vector unit: pooling, add, clamp — elementwise work beside the PE array."""

from __future__ import annotations

import math

from .module import Module


class VectorUnit(Module):
    """``lanes`` elements per cycle. Statistic: ``busy_cycles``."""

    def __init__(self, name: str, parent: Module, *, lanes: int) -> None:
        super().__init__(name, parent)
        self.lanes = lanes
        self.busy_cycles = self.statistic("busy_cycles", "cycles computing vector layers")

    def work(self, elements: int, layer: str):
        """Process ``elements`` outputs (a process step)."""
        start = self.env.now
        cycles = math.ceil(elements / self.lanes)
        yield self.env.timeout(cycles)
        self.busy_cycles.value += cycles
        self.trace("vector", start, layer=layer)
