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
    for :func:`records_from_columns` of them (tested), without Python work per row. Each
    column becomes int64 values and, unless it holds integers, a few labels its values index
    (the text of each distinct value, formatted once: ``str`` of ints and bools, ``repr`` of
    floats, empty for None, quoted as the csv module quotes); one compiled pass then writes
    every row — the digits of integers, the labels' bytes, the separators."""
    path = Path(path)
    names = list(columns)
    rows = len(next(iter(columns.values()))) if names else 0
    prepared = [_prepared(column) for column in columns.values()]
    if any(len(values) != rows for values, _, _ in prepared):
        raise ValueError("columns of different lengths")
    text = b""
    if names:
        values = np.stack([v for v, _, _ in prepared], axis=1)
        missing = np.stack([m for _, m, _ in prepared], axis=1)
        texts = [
            [_cell_text(label).encode() for label in labels or ()] for _, _, labels in prepared
        ]
        label_base = np.cumsum([0] + [len(t) for t in texts])[:-1].astype(np.int64)
        is_label = np.array([labels is not None for _, _, labels in prepared])
        flat = [t for column in texts for t in column]
        sizes = np.array([len(t) for t in flat], dtype=np.int64)
        starts = np.cumsum(sizes) - sizes
        pool = np.frombuffer(b"".join(flat), dtype=np.uint8)
        widest = [max((len(t) for t in column), default=0) for column in texts]
        bound = rows * sum(w if is_label[j] else 20 for j, w in enumerate(widest))
        out = np.empty(bound + rows * len(names), dtype=np.uint8)
        size = _row_writer()(values, missing, is_label, label_base, starts, sizes, pool, out)
        text = out[:size].tobytes()
    with atomic_file(path, "wb") as f:
        f.write(io_text_row(names).encode())
        f.write(text)
    return path


def _prepared(column: Column) -> tuple[np.ndarray, np.ndarray, tuple[Any, ...] | None]:
    """A column as int64 values, where they are missing, and the labels they index (None:
    the values are the integers to write)."""
    if isinstance(column, Nullable):
        values = np.asarray(column.values, dtype=np.int64)
        return values, np.asarray(column.missing, dtype=bool), None
    if isinstance(column, Categorical):
        codes = np.asarray(column.codes, dtype=np.int64)
        return codes, np.zeros(len(codes), dtype=bool), tuple(column.labels)
    column = np.asarray(column)
    none = np.zeros(len(column), dtype=bool)
    if column.dtype == bool:
        return column.astype(np.int64), none, (False, True)
    if np.issubdtype(column.dtype, np.integer):
        return column.astype(np.int64), none, None
    distinct, codes = np.unique(column, return_inverse=True)  # floats: repr each distinct one
    return codes.reshape(-1).astype(np.int64), none, tuple(distinct.tolist())


def _write_rows(values, missing, is_label, label_base, starts, sizes, pool, out):
    # compiled by _row_writer (Numba, cached): every row's cells, "," between, "\n" after
    at = 0
    digits = np.empty(20, dtype=np.uint8)
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            if missing[r, c]:
                pass
            elif is_label[c]:
                label = label_base[c] + values[r, c]
                first = starts[label]
                for k in range(sizes[label]):
                    out[at] = pool[first + k]
                    at += 1
            else:
                value = values[r, c]
                if value < 0:
                    out[at] = 45  # "-"
                    at += 1
                # the magnitude's digits, last first (unsigned: the int64 minimum too)
                rest = np.uint64(0) - np.uint64(value) if value < 0 else np.uint64(value)
                count = 0
                while True:
                    digits[count] = 48 + np.uint8(rest % np.uint64(10))
                    rest = rest // np.uint64(10)
                    count += 1
                    if rest == 0:
                        break
                for k in range(count - 1, -1, -1):
                    out[at] = digits[k]
                    at += 1
            out[at] = 44 if c < cols - 1 else 10
            at += 1
    return at


_COMPILED: list = []


def _row_writer():
    """:func:`_write_rows` compiled on first use (tables are written after the work, so the
    import of Numba stays off the start-up path)."""
    if not _COMPILED:
        from numba import njit

        _COMPILED.append(njit(cache=True, nogil=True)(_write_rows))
    return _COMPILED[0]


def io_text_row(values: list[Any]) -> str:
    """One CSV row as the csv module writes it (with ``lineterminator="\n"``)."""
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


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
