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


@dataclass(frozen=True)
class Categorical:
    """A table column as codes into a few values: row ``i`` holds ``labels[codes[i]]``
    (a str, bool, int, float or None) — how :func:`write_columns_csv` writes a column of
    names or flags without a Python object per row."""

    codes: np.ndarray
    labels: tuple[Any, ...]


@dataclass(frozen=True)
class Nullable:
    """An integer column with gaps: row ``i`` holds ``values[i]``, or None where ``missing``."""

    values: np.ndarray
    missing: np.ndarray


# a column of write_columns_csv: integers, floats or bools as a numpy array, or the above
Column = np.ndarray | Categorical | Nullable


def column_values(column: Column) -> list[Any]:
    """A column's cells as Python values (what a record holds: int, float, bool, str, None)."""
    if isinstance(column, Categorical):
        labels = column.labels
        return [labels[c] for c in column.codes.tolist()]
    if isinstance(column, Nullable):
        return [
            None if gap else value
            for value, gap in zip(column.values.tolist(), column.missing.tolist(), strict=True)
        ]
    return np.asarray(column).tolist()


def records_from_columns(columns: Mapping[str, Column]) -> list[dict[str, Any]]:
    """The rows of ``columns`` as flat dicts, columns in order."""
    names = list(columns)
    return [
        dict(zip(names, row, strict=True))
        for row in zip(*(column_values(c) for c in columns.values()), strict=True)
    ]


def write_columns_csv(columns: Mapping[str, Column], path: str | Path) -> Path:
    """Columns as CSV, written atomically: byte for byte what :func:`write_records_csv` writes
    for :func:`records_from_columns` of them (tested), assembled without Python work per
    row: each column's cells as a fixed-width block of characters (the digits of every
    integer; the text of each distinct value of the others — ``str`` of ints and bools,
    ``repr`` of floats, empty for None, quoted as the csv module quotes) and, per row, the
    span of it that is the cell; one compiled pass copies the spans, row by row, with the
    separators."""
    path = Path(path)
    names = list(columns)
    rows = len(next(iter(columns.values()))) if names else 0
    cells = [_cells(column) for column in columns.values()]
    if any(len(block) != rows for block, _, _ in cells):
        raise ValueError("columns of different lengths")
    text = b""
    if names:
        blocks = np.concatenate([block for block, _, _ in cells], axis=1)
        offsets = np.cumsum([0] + [block.shape[1] for block, _, _ in cells])[:-1]
        lo = np.stack([first for _, first, _ in cells], axis=1) + offsets
        hi = np.stack([end for _, _, end in cells], axis=1) + offsets
        size = int(np.sum(hi - lo)) + rows * len(names)
        text = _copy_spans()(blocks, lo, hi, np.empty(size, dtype=np.uint8)).tobytes()
    with atomic_file(path, "wb") as f:
        f.write(io_text_row(names).encode())
        f.write(text)
    return path


def _spans_into(blocks, lo, hi, out):  # compiled by _copy_spans (Numba, cached)
    at = 0
    rows, cols = lo.shape
    for r in range(rows):
        for c in range(cols):
            for k in range(lo[r, c], hi[r, c]):
                out[at] = blocks[r, k]
                at += 1
            out[at] = 44 if c < cols - 1 else 10  # "," between cells, "\n" after the last
            at += 1
    return out


_COMPILED: list = []


def _copy_spans():
    """:func:`_spans_into` compiled on first use (tables are written after the work, so the
    import of Numba stays off the start-up path)."""
    if not _COMPILED:
        from numba import njit

        _COMPILED.append(njit(cache=True, nogil=True)(_spans_into))
    return _COMPILED[0]


def io_text_row(values: list[Any]) -> str:
    """One CSV row as the csv module writes it (with ``lineterminator="\\n"``)."""
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _cells(column: Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column's text: a ``(rows, width)`` block of characters, and the span ``[lo, hi)``
    of each row that is its cell."""
    if isinstance(column, Nullable):
        block, lo, hi = _integer_cells(np.asarray(column.values, dtype=np.int64))
        return block, np.where(column.missing, hi, lo), hi
    if isinstance(column, Categorical):
        return _label_cells(np.asarray(column.codes, dtype=np.int64), column.labels)
    column = np.asarray(column)
    if column.dtype == bool:
        return _label_cells(column.astype(np.int64), (False, True))
    if np.issubdtype(column.dtype, np.integer):
        return _integer_cells(column.astype(np.int64))
    distinct, codes = np.unique(column, return_inverse=True)  # floats: repr each distinct one
    return _label_cells(codes.reshape(-1), tuple(distinct.tolist()))


_QUOTED = frozenset(',"\r\n')  # what makes the csv module quote a str (QUOTE_MINIMAL)


def _cell_text(value: Any) -> str:
    """One cell as the csv module writes it inside a row of several."""
    if value is None:
        return ""
    if isinstance(value, str):
        if _QUOTED.isdisjoint(value):
            return value
        return io_text_row([value, 0])[: -len(",0\n")]
    return str(value)  # int, bool, float: str (a float's shortest repr)


def _label_cells(codes: np.ndarray, labels: tuple[Any, ...]) -> tuple[np.ndarray, ...]:
    texts = [_cell_text(label).encode() for label in labels]
    width = max((len(t) for t in texts), default=0)
    width = max(width, 1)
    table = np.array(texts or [b""], dtype=f"S{width}").view(np.uint8).reshape(-1, width)
    sizes = np.array([len(t) for t in texts] or [0], dtype=np.int64)
    return table[codes], np.zeros(len(codes), dtype=np.int64), sizes[codes]


def _integer_cells(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decimal text of int64s, right-aligned in a block as wide as the longest."""
    negative = values < 0
    magnitude = np.abs(values).astype(np.uint64)  # int64's minimum wraps to its magnitude
    largest = int(magnitude.max()) if len(values) else 0
    width = len(str(largest)) + 1  # the digits and a sign
    block = np.full((len(values), width), ord("0"), dtype=np.uint8)
    count = np.ones(len(values), dtype=np.int64)  # digits of each value (0 has one)
    rest = magnitude
    for place in range(width - 1, 0, -1):
        block[:, place] += (rest % np.uint64(10)).astype(np.uint8)
        rest = rest // np.uint64(10)
        count += rest > 0
    first = width - count - negative
    block[np.flatnonzero(negative), first[negative]] = ord("-")
    return block, first, np.full(len(values), width, dtype=np.int64)
