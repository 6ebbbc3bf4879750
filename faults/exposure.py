"""What a run exposes to faults: per layer, its folds' live PE blocks and cycles, the
register widths, the hardened bits and the SRAM words.

An :class:`Exposure` holds, for every layer, its folds as parallel numpy arrays (fold index,
cycles, PE rows and columns in use: :class:`LayerExposure`), the register widths and the
hardened bit masks. Hardened bits cannot flip, so they are not sites at all
(:func:`drop_hardened` removes them from explicit faults). Idle PEs (outside the block
``rows_f x cols_f`` that :func:`accelsim.mapping.fault_sites` gives) hold nothing that
reaches an output, so a flip there is masked by construction; leaving them out changes no
failure probability, only the count of masked faults. Any other rectangle (e.g. one neuron's
column) is set with ``row0/col0/rows/cols``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.codes import MAX_REGISTER_BITS, dataflow_spec
from accelsim.errors import AccelsimError

from .fault import PE_REGISTERS, SRAM_REGISTERS, Fault


def _int_array(values: Any, length: int | None = None, default: int = 0) -> np.ndarray:
    if values is None:
        return np.full(length or 0, default, dtype=np.int64)
    array = np.ascontiguousarray(values, dtype=np.int64).reshape(-1)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class LayerExposure:
    """The folds of one layer as parallel int64 arrays (one entry per fold).

    ``fold``: index in the layer's schedule; ``cycles``: cycles of the fold; ``rows`` x
    ``cols``: the PE rectangle holding live data, starting at PE (``row0``, ``col0``).
    ``neuron0``: for dataflows whose columns are output channels (ws, os), the global output
    channel (``group * N + n``) held by column 0; None when columns are not neurons.
    ``widths``: this layer's PE register widths if they differ from the array's.
    ``sram_words`` / ``sram_word_bits``: words of each buffer holding this layer's data.
    """

    name: str
    fold: np.ndarray
    cycles: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    row0: np.ndarray | None = None
    col0: np.ndarray | None = None
    neuron0: np.ndarray | None = None
    widths: Mapping[str, int] | None = None
    sram_words: Mapping[str, int] = field(default_factory=dict)
    sram_word_bits: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fold = _int_array(self.fold)
        n = len(fold)
        arrays = {
            "fold": fold,
            "cycles": _int_array(self.cycles),
            "rows": _int_array(self.rows),
            "cols": _int_array(self.cols),
            "row0": _int_array(self.row0, n),
            "col0": _int_array(self.col0, n),
        }
        if self.neuron0 is not None:
            arrays["neuron0"] = _int_array(self.neuron0)
        for name, array in arrays.items():
            if len(array) != n:
                raise ValueError(f"layer {self.name}: {name} has {len(array)} entries, not {n}")
            if n and array.min() < 0:
                raise ValueError(f"layer {self.name}: {name} has negative entries")
            object.__setattr__(self, name, array)
        for mapping_name in ("sram_words", "sram_word_bits"):
            mapping = dict(getattr(self, mapping_name))
            unknown = set(mapping) - set(SRAM_REGISTERS)
            if unknown:
                raise ValueError(f"layer {self.name}: {mapping_name} keys {sorted(unknown)}")
            object.__setattr__(self, mapping_name, mapping)
        if set(self.sram_words) != set(self.sram_word_bits):
            raise ValueError(f"layer {self.name}: sram_words and sram_word_bits name other buffers")
        if self.widths is not None:
            object.__setattr__(self, "widths", _widths_dict(self.widths))

    @property
    def n_folds(self) -> int:
        return len(self.fold)

    @property
    def pe_cycles(self) -> int:
        """Σ cycles x PEs in use: bit-cycles of one bit position of one register class."""
        return int(np.sum(self.cycles * self.rows * self.cols))

    @property
    def pe_loads(self) -> int:
        """Σ PEs in use over folds: register contents of one bit position (the ``ber`` unit)."""
        return int(np.sum((self.cycles > 0) * self.rows * self.cols))

    @classmethod
    def from_schedule(
        cls, schedule: Any, dataflow: str, array_rows: int, **extra: Any
    ) -> LayerExposure:
        """Exposure of a :class:`accelsim.schedule.LayerSchedule` on an array of ``array_rows``.

        Each fold's block of PE registers and its cycles come from
        :func:`accelsim.mapping.fault_sites` (the one space-time map; e.g. in ws the psums
        cross every row, so all rows are exposed). ``extra`` passes ``widths``,
        ``sram_words``, ``sram_word_bits``.
        """
        from accelsim import mapping

        spec = dataflow_spec(dataflow)
        folds = schedule.folds
        blocks = np.array(
            [
                mapping.fault_sites(spec.code, f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0, array_rows)
                for f in folds
            ],
            dtype=np.int64,
        ).reshape(-1, 3)
        neuron0 = None
        if spec.col_dim == "N":  # ws, os: column c computes output channel n0 + c
            per_group = schedule.shape.N
            neuron0 = np.array([f.group * per_group + f.n0 for f in folds], dtype=np.int64)
        return cls(
            name=schedule.shape.layer,
            fold=np.array([f.index for f in folds], dtype=np.int64),
            cycles=blocks[:, 2],
            rows=blocks[:, 0],
            cols=blocks[:, 1],
            neuron0=neuron0,
            **extra,
        )


def _widths_dict(widths: Any) -> dict[str, int]:
    data = widths.as_dict() if hasattr(widths, "as_dict") else dict(widths)
    missing = set(PE_REGISTERS) - set(data)
    if missing:
        raise ValueError(f"register widths miss {sorted(missing)}")
    out = {name: int(data[name]) for name in PE_REGISTERS}
    for name, bits in out.items():
        if not 0 < bits <= MAX_REGISTER_BITS:
            raise ValueError(f"{name} register width {bits} outside 1..{MAX_REGISTER_BITS}")
    return out


def _hardened_dict(hardened: Any) -> dict[str, int]:
    if hardened is None:
        return dict.fromkeys(PE_REGISTERS, 0)
    if hasattr(hardened, "mask"):  # accelsim.config.HardenedBitsConfig
        return {name: int(hardened.mask(name)) for name in PE_REGISTERS}
    out = {}
    for name in PE_REGISTERS:
        value = hardened.get(name, 0)
        out[name] = (
            int(value)
            if isinstance(value, int | np.integer)
            else sum(1 << int(b) for b in set(value))
        )
    unknown = set(hardened) - set(PE_REGISTERS)
    if unknown:
        raise ValueError(f"hardened masks for unknown registers {sorted(unknown)}")
    return out


@dataclass(frozen=True, eq=False)
class Exposure:
    """Everything a run exposes to faults: its layers' folds, register widths, hardening.

    ``widths``: PE register widths (a dict or :class:`accelsim.cost.RegisterWidths`);
    ``hardened``: per PE register class, a bit mask, a list of bit positions, or an
    :class:`accelsim.config.HardenedBitsConfig` — the same in every PE.
    """

    layers: tuple[LayerExposure, ...]
    widths: Mapping[str, int]
    hardened: Mapping[str, int] | Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "widths", _widths_dict(self.widths))
        object.__setattr__(self, "hardened", _hardened_dict(self.hardened))
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names repeat: {names}")
        object.__setattr__(self, "_by_name", {layer.name: layer for layer in self.layers})

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str) -> LayerExposure:
        layer = self._by_name.get(name)
        if layer is not None:
            return layer
        raise AccelsimError(f"unknown layer {name!r}", key="layer", allowed=self.layer_names)

    def widths_of(self, layer: LayerExposure) -> dict[str, int]:
        """Register widths in force for ``layer`` (its own, else the array's)."""
        return dict(layer.widths) if layer.widths is not None else dict(self.widths)

    def exposed_bits(self, layer: LayerExposure, register: str) -> tuple[int, ...]:
        """Bit positions of ``register`` that can flip in ``layer`` (width minus hardened)."""
        if register in SRAM_REGISTERS:
            return tuple(range(layer.sram_word_bits.get(register, 0)))
        hardened = self.hardened[register]
        width = self.widths_of(layer)[register]
        return tuple(b for b in range(width) if not hardened >> b & 1)

    def width_of(self, layer: LayerExposure, register: str) -> int:
        if register in SRAM_REGISTERS:
            return layer.sram_word_bits.get(register, 0)
        return self.widths_of(layer)[register]


def drop_hardened(faults: Iterable[Fault], exposure: Exposure) -> list[Fault]:
    """Remove hardened bits from PE faults (they cannot flip); drop faults left with none."""
    kept = []
    for fault in faults:
        if fault.is_sram:
            kept.append(fault)
            continue
        hardened = exposure.hardened[fault.register]
        bits = tuple(b for b in fault.bits if not hardened >> b & 1)
        if bits:
            kept.append(fault if bits == fault.bits else _replace_bits(fault, bits))
    return kept


def _replace_bits(fault: Fault, bits: tuple[int, ...]) -> Fault:
    data = fault.to_dict()
    data["bits"] = bits
    return Fault(**data)
