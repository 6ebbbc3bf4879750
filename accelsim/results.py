"""Results are data: frozen dataclasses with ``to_dict()``; rendering lives in report.py.

Units are in the key names (``_pj``, ``_us``, ``_um2``, ``_bytes``, ``_cycles``). Per-layer figures
and ``totals`` are for **one batch** (``batch`` inferences run together); the per-inference
energy is ``totals.energy_pj_per_inference``. ``result.json`` is :meth:`SimResult.to_dict`;
its per-layer rows as flat records (for pandas or CSV) are :func:`layer_records`.

Schema versions: 1 first; 2 adds ``totals.energy_pj_per_batch`` and
``totals.energy_pj_per_inference`` (``totals.energy_pj`` stays, per batch). ``modules`` (each
hardware module's statistics for one batch, keyed by module path such as
``accelerator.dram``, units in the names) is an addition within version 2: readers that do
not know it ignore it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .jsonio import atomic_file

RESULT_SCHEMA_VERSION = 2
# per-layer columns that hold one figure per SRAM buffer: flattened as ``<column>.<buffer>``
_PER_BUFFER_COLUMNS = ("sram_reads_bytes", "sram_writes_bytes")


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
    # module path -> statistic -> value, for one batch (README, "Module statistics")
    modules: dict[str, dict[str, int | float]] = field(default_factory=dict, repr=False)

    @property
    def total_cycles(self) -> int:
        return sum(layer.total_cycles for layer in self.layers)

    @property
    def latency_us(self) -> float:
        return self.total_cycles / self.clock_mhz

    def totals(self) -> dict[str, Any]:
        """Sums over the layers, for one batch (``energy_pj`` is per batch, kept for old
        readers; ``energy_pj_per_batch`` says so in its name)."""
        layers = self.layers
        macs = sum(lay.macs for lay in layers)
        energy = sum(self.energy_pj.values())
        return {
            "macs": macs,
            "total_cycles": self.total_cycles,
            "compute_cycles": sum(lay.compute_cycles for lay in layers),
            "stall_cycles": sum(lay.stall_cycles for lay in layers),
            "latency_us": self.latency_us,
            "dram_reads_bytes": sum(lay.dram_reads_bytes for lay in layers),
            "dram_writes_bytes": sum(lay.dram_writes_bytes for lay in layers),
            "energy_pj": energy,
            "energy_pj_per_batch": energy,
            "energy_pj_per_inference": energy / max(self.batch, 1),
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
            "samples": None if self.outputs is None else int(len(self.outputs)),  # simulated
            "clock_mhz": self.clock_mhz,
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": self.totals(),
            "area": self.area,
            "energy_pj": self.energy_pj,
            "accuracy": self.accuracy,
            "modules": self.modules,
            "config": self.config,
        }

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per layer (see :func:`layer_records`)."""
        return layer_records(self.to_dict())

    def to_dataframe(self) -> Any:
        """The per-layer records as a ``pandas.DataFrame`` (pandas is needed only here)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "SimResult.to_dataframe() needs pandas: pip install pandas "
                "(SimResult.to_records() gives the same rows as plain dicts, to_csv() a file)"
            ) from None
        return pd.DataFrame.from_records(self.to_records())

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-layer records as CSV (one header line, one row per layer)."""
        return write_records_csv(self.to_records(), path)


def layer_records(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-layer rows of a result document (``SimResult.to_dict()`` or a loaded
    ``result.json``) as flat dicts: the run's ``workload``, ``batch`` and ``clock_mhz``, then
    the layer's fields; per-buffer SRAM traffic becomes ``sram_reads_bytes.<buffer>`` columns.
    Every value is a str, int or float; figures are per batch, as in the document."""
    run = {key: document[key] for key in ("workload", "batch", "clock_mhz")}
    records = []
    for layer in document["layers"]:
        record: dict[str, Any] = dict(run)
        for key, value in layer.items():
            if key in _PER_BUFFER_COLUMNS:
                record.update({f"{key}.{buffer}": v for buffer, v in sorted(value.items())})
            else:
                record[key] = value
        records.append(record)
    return records


def write_records_csv(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Flat records as CSV with the csv module, written atomically; columns in first-seen order."""
    path = Path(path)
    first = tuple(records[0]) if records else ()
    with atomic_file(path, "w") as f:
        if all(tuple(record) == first for record in records):
            # every record has the same keys in the same order (tables built from one model):
            # rows straight from the values, without DictWriter's per-row key checks
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(first)
            writer.writerows(record.values() for record in records)
        else:
            columns = list(dict.fromkeys(key for record in records for key in record))
            writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
    return path
