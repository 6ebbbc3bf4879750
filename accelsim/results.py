"""Results are data: frozen dataclasses with ``to_dict()``; rendering lives in report.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

RESULT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerStats:
    """Figures of one layer for one batch (one inference when batch is 1)."""

    name: str
    op: str
    macs: int
    total_cycles: int  # from the layer's first DMA to its last write-back
    compute_cycles: int  # the PE array (or vector unit) busy
    stall_cycles: int  # total - compute: waiting for memory or redundant units
    redundancy_wait_cycles: int  # part of the stalls caused by the redundant units
    utilization: float  # MACs / (PEs * total cycles)
    mapping_efficiency: float  # mean fraction of PEs holding work in a fold
    folds: int
    sram_reads_bytes: dict[str, int]
    sram_writes_bytes: dict[str, int]
    dram_reads_bytes: int
    dram_writes_bytes: int
    energy_pj: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SimResult:
    """What one simulation produced: timing, traffic, cost, values."""

    workload: str
    layers: tuple[LayerStats, ...]
    area: dict[str, float]
    energy_pj: dict[str, float]
    clock_mhz: float
    batch: int
    batches: int
    accuracy: float | None
    labels: np.ndarray | None = field(repr=False, default=None)
    outputs: np.ndarray | None = field(
        repr=False, default=None
    )  # final integer tensor, all samples
    config: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def total_cycles(self) -> int:
        return sum(layer.total_cycles for layer in self.layers)

    @property
    def latency_us(self) -> float:
        return self.total_cycles / self.clock_mhz

    def totals(self) -> dict[str, Any]:
        layers = self.layers
        macs = sum(lay.macs for lay in layers)
        return {
            "macs": macs,
            "total_cycles": self.total_cycles,
            "compute_cycles": sum(lay.compute_cycles for lay in layers),
            "stall_cycles": sum(lay.stall_cycles for lay in layers),
            "latency_us": self.latency_us,
            "dram_reads_bytes": sum(lay.dram_reads_bytes for lay in layers),
            "dram_writes_bytes": sum(lay.dram_writes_bytes for lay in layers),
            "energy_pj": sum(self.energy_pj.values()),
            "area_um2": self.area.get("total_um2", 0.0),
        }

    def predictions(self) -> np.ndarray | None:
        if self.outputs is None:
            return None
        return self.outputs.reshape(self.outputs.shape[0], -1).argmax(axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "workload": self.workload,
            "batch": self.batch,
            "batches": self.batches,
            "clock_mhz": self.clock_mhz,
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": self.totals(),
            "area": self.area,
            "energy_pj": self.energy_pj,
            "accuracy": self.accuracy,
            "config": self.config,
        }
