"""Fault plans: what a fault is, what a run exposes to faults, and how plans are drawn.

A :class:`Fault` names one upset at an exact place: a layer, a fold of that layer (numbered as
in :class:`accelsim.schedule.LayerSchedule.folds`), a register class, a PE (row, col), a cycle
within the fold and the bits it hits. ``Fault.to_row()`` is the int64 6-vector
``[register_class, row, col, cycle, mask, kind]`` the fold kernel consumes
(docs/semantics.md §3–4).

An :class:`Exposure` says what a run exposes: for every layer, its folds as parallel numpy
arrays (fold index, cycles, PE rows and columns in use), the register widths and the hardened
bit masks. Samplers draw sites uniformly over the *exposed* sites only: hardened bits cannot
flip, so they are not sites at all.

Site sets, per fold ``f`` and register class ``c`` (``w_c`` = unhardened bits of ``c``):

* PE registers, unit ``bit_cycle``: ``cycles_f x rows_f x cols_f x w_c`` sites
  (cycle, PE, bit), each one register bit during one cycle;
* PE registers, unit ``ber``: ``rows_f x cols_f x w_c`` sites — each fold loads fresh register
  contents, and each such register bit is one "bit" of the inference; the cycle at which the
  flip lands is then uniform within the fold;
* SRAM words (``sram:input``, ``sram:weight``, ``sram:output``): the layer's words of that
  buffer (``sram_words``, each ``sram_word_bits`` wide, never hardened). For SRAM faults
  ``cycle`` holds the *word address* and ``row = col = 0``; the flip lands just before fold
  ``fold`` reads the buffer. With ``bit_cycle`` the fold is drawn with weight ``cycles_f``
  (the word is exposed while the fold runs); with ``ber`` it is the layer's first fold.

Idle PEs (outside the block ``rows_f x cols_f`` that :func:`accelsim.mapping.fault_sites`
gives) hold nothing that reaches an output, so a flip there is masked by construction;
leaving them out changes no failure probability, only the count of masked faults. Any other
rectangle (e.g. one neuron's column) is set with ``row0/col0/rows/cols``.

Counts under a rate are Poisson with mean ``rate x sites``; sites are drawn uniformly with
replacement, exactly, in integer arithmetic. Every draw takes a ``numpy.random.Generator``,
so the same seed gives the same plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from accelsim.errors import AccelsimError
from accelsim.jsonio import atomic_file, write_json_atomic
from accelsim.yamlio import load_yaml

PE_REGISTERS = ("input", "weight", "product", "accumulator")
SRAM_REGISTERS = ("sram:input", "sram:weight", "sram:output")
REGISTERS = PE_REGISTERS + SRAM_REGISTERS
REGISTER_CODES = {name: code for code, name in enumerate(PE_REGISTERS)}  # kernel class codes
KINDS = ("flip", "stuck0", "stuck1")
KIND_CODES = {name: code for code, name in enumerate(KINDS)}  # kernel kind codes
MODELS = ("seu", "mbu", "stuck0", "stuck1")
UNITS = ("bit_cycle", "ber")
DATAFLOWS = ("ws", "os", "is")
MAX_REGISTER_BITS = 62  # masks are int64 in the kernel rows


# ---- one fault ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One upset. ``cycle`` is the cycle within the fold, or the word address for SRAM.

    ``bits`` are bit positions (0 = LSB), sorted and unique. ``kind`` ``flip`` is transient
    (XOR at that cycle, kept until the register is rewritten); ``stuck0`` / ``stuck1`` force
    the bits for the whole fold. ``sample`` is the index of the inference (test sample) hit.
    """

    layer: str
    fold: int
    register: str
    row: int
    col: int
    cycle: int
    bits: tuple[int, ...]
    kind: str = "flip"
    sample: int = 0

    def __post_init__(self) -> None:
        bits = tuple(sorted({int(b) for b in self.bits}))
        object.__setattr__(self, "bits", bits)
        if self.register not in REGISTERS:
            raise ValueError(f"register {self.register!r} is not one of {REGISTERS}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")
        if not bits or bits[0] < 0 or bits[-1] > MAX_REGISTER_BITS:
            raise ValueError(f"bits must be a non-empty set within 0..{MAX_REGISTER_BITS}")
        for name in ("fold", "row", "col", "cycle", "sample"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def mask(self) -> int:
        return sum(1 << b for b in self.bits)

    @property
    def is_sram(self) -> bool:
        return self.register in SRAM_REGISTERS

    def to_row(self) -> np.ndarray:
        """``[register_class, row, col, cycle, mask, kind]`` as int64, for the fold kernel."""
        if self.is_sram:
            raise ValueError(f"{self.register} faults are applied to buffer words, not PEs")
        values = (
            REGISTER_CODES[self.register],
            self.row,
            self.col,
            self.cycle,
            self.mask,
            KIND_CODES[self.kind],
        )
        return np.array(values, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "fold": self.fold,
            "register": self.register,
            "row": self.row,
            "col": self.col,
            "cycle": self.cycle,
            "bits": list(self.bits),
            "kind": self.kind,
            "sample": self.sample,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Inverse of :meth:`to_dict` for trusted data; user files go through :func:`load_plan`."""
        return _fault_from_entry(data, index=0, file="<dict>")


def kernel_rows(faults: Iterable[Fault]) -> np.ndarray:
    """Stack PE faults into the kernel's ``(F, 6)`` int64 array (``(0, 6)`` when empty)."""
    rows = [fault.to_row() for fault in faults]
    return np.stack(rows) if rows else np.zeros((0, 6), dtype=np.int64)


def group_by_fold(faults: Iterable[Fault]) -> dict[tuple[int, str, int], list[Fault]]:
    """Faults keyed by ``(sample, layer, fold)``: what the injector applies to each fold run."""
    groups: dict[tuple[int, str, int], list[Fault]] = {}
    for fault in faults:
        groups.setdefault((fault.sample, fault.layer, fault.fold), []).append(fault)
    return groups


def inference_faults(faults: Iterable[Fault]) -> dict[str, dict[int, np.ndarray]]:
    """PE faults of one inference as ``{layer: {fold: kernel rows (F, 6)}}``.

    The shape :func:`faults.inject.faulty_inference` takes. All faults must name the same
    ``sample``; SRAM faults are not kernel rows and are rejected (apply them to buffer words).
    """
    grouped: dict[str, dict[int, list[Fault]]] = {}
    samples = set()
    for fault in faults:
        samples.add(fault.sample)
        grouped.setdefault(fault.layer, {}).setdefault(fault.fold, []).append(fault)
    if len(samples) > 1:
        raise ValueError(f"faults of several samples {sorted(samples)}: split them first")
    return {
        layer: {fold: kernel_rows(items) for fold, items in folds.items()}
        for layer, folds in grouped.items()
    }


# ---- what a run exposes ------------------------------------------------------------------------


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

        if dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow {dataflow!r} is not one of {DATAFLOWS}")
        folds = schedule.folds
        blocks = np.array(
            [
                mapping.fault_sites(dataflow, f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0, array_rows)
                for f in folds
            ],
            dtype=np.int64,
        ).reshape(-1, 3)
        neuron0 = None
        if dataflow in ("ws", "os"):  # column c computes output channel n0 + c
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


# ---- uniform site sampling ---------------------------------------------------------------------


def _as_names(value: str | Iterable[str] | None, allowed: Sequence[str], key: str) -> list[str]:
    if value is None:
        return list(allowed)
    names = [value] if isinstance(value, str) else list(value)
    for name in names:
        if name not in allowed:
            raise AccelsimError(f"{name!r} is not allowed", key=key, allowed=allowed)
    return names


class SiteSampler:
    """Uniform draws over a chosen set of exposed fault sites.

    Built once (it tabulates every (layer, fold, register) cell and the cumulative site
    counts), then :meth:`draw` is cheap: a campaign worker keeps one in its context.

    ``registers``: classes to include (default: the PE classes); ``layers``: layer names
    (default all); ``bits``: restrict to these bit positions; ``neuron``: restrict PE
    registers to the column computing this output channel of the one layer in ``layers``
    (needs ``neuron0``; SRAM classes are then left out). ``unit``: ``bit_cycle`` or ``ber`` (see the module docstring).
    """

    def __init__(
        self,
        exposure: Exposure,
        *,
        registers: str | Iterable[str] | None = None,
        layers: str | Iterable[str] | None = None,
        bits: int | Iterable[int] | None = None,
        neuron: int | None = None,
        unit: str = "bit_cycle",
    ) -> None:
        if unit not in UNITS:
            raise AccelsimError(f"{unit!r} is not allowed", key="unit", allowed=UNITS)
        self.exposure = exposure
        self.unit = unit
        register_names = _as_names(
            registers if registers is not None else PE_REGISTERS, REGISTERS, "registers"
        )
        if neuron is not None:
            register_names = [r for r in register_names if r in PE_REGISTERS]
        self.registers = tuple(register_names)
        layer_names = _as_names(layers, exposure.layer_names, "layer")
        if neuron is not None and len(layer_names) != 1:
            # neurons are numbered per layer: a neuron index means nothing without its layer
            raise AccelsimError(
                "a neuron needs exactly one layer", key="layer", allowed=exposure.layer_names
            )
        wanted_bits = None if bits is None else {int(bits)} if np.isscalar(bits) else set(bits)

        # per (layer, register): exposed bit positions, as rows of one padded table
        bit_lists: list[tuple[int, ...]] = []
        self._bit_index: dict[tuple[str, str], int] = {}
        for name in layer_names:
            layer = exposure.layer(name)
            for register in self.registers:
                allowed = exposure.exposed_bits(layer, register)
                if wanted_bits is not None:
                    allowed = tuple(b for b in allowed if b in wanted_bits)
                self._bit_index[(name, register)] = len(bit_lists)
                bit_lists.append(allowed)
        table_width = max([len(b) for b in bit_lists] + [1])
        self._bit_table = np.zeros((len(bit_lists), table_width), dtype=np.int64)
        for i, allowed in enumerate(bit_lists):
            self._bit_table[i, : len(allowed)] = allowed
        self._layer_names = tuple(layer_names)
        self._widths = np.array(
            [
                [exposure.width_of(exposure.layer(name), register) for register in REGISTERS]
                for name in layer_names
            ],
            dtype=np.int64,
        ).reshape(len(layer_names), len(REGISTERS))
        self._hardened = np.array(
            [exposure.hardened[r] if r in PE_REGISTERS else 0 for r in REGISTERS], dtype=np.int64
        )

        columns: dict[str, list[np.ndarray]] = {
            key: []
            for key in (
                "layer",
                "fold",
                "register",
                "cycles",
                "rows",
                "cols",
                "row0",
                "col0",
                "nbits",
                "table",
                "sites",
            )
        }
        for layer_id, name in enumerate(layer_names):
            layer = exposure.layer(name)
            for register in self.registers:
                cells = self._cells(layer, register, neuron)
                if cells is None:
                    continue
                fold, cycles, rows, cols, row0, col0 = cells
                table = self._bit_index[(name, register)]
                nbits = len(bit_lists[table])
                if register in SRAM_REGISTERS or unit == "ber":
                    sites = rows * cols * nbits * (cycles > 0)
                    if register in SRAM_REGISTERS and unit == "bit_cycle":
                        sites = sites * cycles
                else:
                    sites = cycles * rows * cols * nbits
                count = len(fold)
                columns["layer"].append(np.full(count, layer_id))
                columns["fold"].append(fold)
                columns["register"].append(np.full(count, REGISTERS.index(register)))
                columns["cycles"].append(cycles)
                columns["rows"].append(rows)
                columns["cols"].append(cols)
                columns["row0"].append(row0)
                columns["col0"].append(col0)
                columns["nbits"].append(np.full(count, nbits))
                columns["table"].append(np.full(count, table))
                columns["sites"].append(sites)
        cell = {
            key: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
            for key, parts in columns.items()
        }
        # cells in (layer, fold, register) order, so sorted draws read like a schedule
        order = np.lexsort((cell["register"], cell["fold"], cell["layer"]))
        self._cells_table = {key: values[order] for key, values in cell.items()}
        self._cumulative = np.cumsum(self._cells_table["sites"])
        self.total = int(self._cumulative[-1]) if len(self._cumulative) else 0

    def _cells(
        self, layer: LayerExposure, register: str, neuron: int | None
    ) -> tuple[np.ndarray, ...] | None:
        """(fold, cycles, rows, cols, row0, col0) of the cells of one (layer, register)."""
        if register in SRAM_REGISTERS:
            words = layer.sram_words.get(register, 0)
            if not words or not layer.n_folds:
                return None
            if self.unit == "ber":  # the stored data is wrong from the start of the layer
                first = int(np.argmin(layer.fold))
                picked = np.array([first])
                cycles = np.ones(1, dtype=np.int64)
            else:
                picked = np.arange(layer.n_folds)
                cycles = layer.cycles
            ones, zeros = np.ones(len(picked), np.int64), np.zeros(len(picked), np.int64)
            # an SRAM cell is laid out as rows = words, one column: row = word address
            return layer.fold[picked], cycles, ones * words, ones, zeros, zeros
        fold, cycles, rows, cols = layer.fold, layer.cycles, layer.rows, layer.cols
        row0, col0 = layer.row0, layer.col0
        if neuron is not None:
            if layer.neuron0 is None:
                raise AccelsimError(
                    f"layer {layer.name}: its PE columns are not output channels (is dataflow?)",
                    key="neuron",
                )
            column = neuron - layer.neuron0
            keep = (column >= col0) & (column < col0 + cols)
            fold, cycles, rows, row0 = fold[keep], cycles[keep], rows[keep], row0[keep]
            col0, cols = column[keep], np.ones(int(keep.sum()), dtype=np.int64)
        return fold, cycles, rows, cols, row0, col0

    def draw(
        self,
        rng: np.random.Generator,
        n: int,
        *,
        model: str = "seu",
        mbu_width: int = 2,
        sample: int = 0,
    ) -> list[Fault]:
        """``n`` faults, sites uniform with replacement, sorted by (layer, fold, register, site).

        ``model``: ``seu`` flips one bit, ``mbu`` flips ``mbu_width`` adjacent bits starting at
        the drawn bit (clipped at the register's top; hardened bits in the run stay intact),
        ``stuck0`` / ``stuck1`` force the drawn bit for the fold.
        """
        if n == 0:
            _check_model(model)
            return []
        self._check_sites()
        sites = rng.integers(0, self.total, size=n, dtype=np.int64)
        cycle_words = rng.integers(0, 2**63, size=n, dtype=np.int64)
        table = self.locate(
            np.zeros(n, np.int64), sites, cycle_words, model=model, mbu_width=mbu_width
        )
        return table.faults(0, sample=sample)

    def _check_sites(self) -> None:
        if self.total == 0:
            raise AccelsimError(
                "no exposed fault sites (all selected bits hardened, or nothing selected)"
            )

    def locate(
        self,
        injection: np.ndarray,
        sites: np.ndarray,
        cycle_words: np.ndarray,
        *,
        model: str = "seu",
        mbu_width: int = 2,
    ) -> FaultTable:
        """The faults at site numbers ``sites`` (each in ``[0, total)``), as a table.

        ``injection[j]`` names the injection fault ``j`` belongs to; the table is sorted by
        injection, then site (so by layer, fold, register). ``cycle_words`` (random
        non-negative integers) place a ``ber`` flip uniformly within its fold.
        """
        _check_model(model)
        self._check_sites()
        order = np.lexsort((sites, injection))
        injection = np.asarray(injection, dtype=np.int64)[order]
        site = np.asarray(sites, dtype=np.int64)[order]
        cycle_words = np.asarray(cycle_words, dtype=np.int64)[order]
        cell_id = np.searchsorted(self._cumulative, site, side="right")
        c = {key: values[cell_id] for key, values in self._cells_table.items()}
        offset = site - (self._cumulative[cell_id] - c["sites"])
        bit_slot = offset % c["nbits"]
        offset //= c["nbits"]
        col = c["col0"] + offset % c["cols"]
        offset //= c["cols"]
        row = c["row0"] + offset % c["rows"]
        cycle = offset // c["rows"]
        is_sram = c["register"] >= len(PE_REGISTERS)
        if self.unit == "ber":
            cycle = np.where(is_sram, 0, cycle_words % np.maximum(c["cycles"], 1))
        start_bit = self._bit_table[c["table"], bit_slot]
        if model == "mbu":
            top = np.minimum(start_bit + mbu_width, self._widths[c["layer"], c["register"]])
            mask = (np.int64(1) << top) - (np.int64(1) << start_bit)
            mask &= ~self._hardened[c["register"]]  # hardened bits of the run stay intact
        else:
            mask = np.int64(1) << start_bit
        # an SRAM cell is laid out as rows = words, one column: the row is the word address
        return FaultTable(
            injection=injection,
            layer=c["layer"],
            fold=c["fold"],
            register=c["register"],
            row=np.where(is_sram, 0, row),
            col=np.where(is_sram, 0, col),
            cycle=np.where(is_sram, row, cycle),
            mask=mask,
            kind=np.full(len(site), KIND_CODES[MODEL_KINDS[model]], dtype=np.int64),
            layer_names=self._layer_names,
        )


MODEL_KINDS = {"seu": "flip", "mbu": "flip", "stuck0": "stuck0", "stuck1": "stuck1"}


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise AccelsimError(f"{model!r} is not allowed", key="model", allowed=MODELS)


@dataclass(frozen=True)
class FaultTable:
    """Faults of many injections as parallel int64 columns, one row per fault.

    ``register`` indexes :data:`REGISTERS` (PE classes first, so for PE faults it is the
    kernel's class code), ``kind`` indexes :data:`KINDS`, ``layer`` indexes ``layer_names``;
    ``row``, ``col``, ``cycle`` and ``mask`` mean what they mean in :class:`Fault`. Rows are
    grouped by injection. The batched campaign works on the columns directly.
    """

    injection: np.ndarray
    layer: np.ndarray
    fold: np.ndarray
    register: np.ndarray
    row: np.ndarray
    col: np.ndarray
    cycle: np.ndarray
    mask: np.ndarray
    kind: np.ndarray
    layer_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.injection)

    @classmethod
    def from_faults(cls, per_injection: Sequence[Sequence[Fault]]) -> FaultTable:
        """The table of explicit faults, ``per_injection[i]`` being injection ``i``'s."""
        names = tuple(dict.fromkeys(f.layer for faults in per_injection for f in faults))
        rows = [
            (
                i,
                names.index(f.layer),
                f.fold,
                REGISTERS.index(f.register),
                f.row,
                f.col,
                f.cycle,
                f.mask,
                KIND_CODES[f.kind],
            )
            for i, faults in enumerate(per_injection)
            for f in faults
        ]
        columns = np.array(rows, dtype=np.int64).reshape(-1, 9).T
        return cls(*columns, layer_names=names)

    def of_injections(self, start: int, stop: int) -> FaultTable:
        """The faults of injections ``start..stop-1``, renumbered from 0."""
        rows = (self.injection >= start) & (self.injection < stop)
        columns = {
            f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "layer_names"
        }
        columns["injection"] = columns["injection"] - start
        return FaultTable(**columns, layer_names=self.layer_names)

    def kernel_rows(self, select: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The selected PE faults as kernel rows ``[class, row, col, cycle, mask, kind]``."""
        columns = (self.register, self.row, self.col, self.cycle, self.mask, self.kind)
        return np.stack([c[select] for c in columns], axis=1).astype(np.int64, copy=False)

    def faults(self, injection: int, *, sample: int = 0) -> list[Fault]:
        """The faults of one injection as :class:`Fault` objects."""
        rows = np.flatnonzero(self.injection == injection)
        return [
            Fault(
                layer=self.layer_names[int(self.layer[j])],
                fold=int(self.fold[j]),
                register=REGISTERS[int(self.register[j])],
                row=int(self.row[j]),
                col=int(self.col[j]),
                cycle=int(self.cycle[j]),
                bits=mask_bits(int(self.mask[j])),
                kind=KINDS[int(self.kind[j])],
                sample=sample,
            )
            for j in rows
        ]


def mask_bits(mask: int) -> tuple[int, ...]:
    """The bit positions set in ``mask``, ascending."""
    mask = int(mask)
    bits = []
    while mask:
        lowest = mask & -mask
        bits.append(lowest.bit_length() - 1)
        mask ^= lowest
    return tuple(bits)


def exposed_bit_cycles(
    exposure: Exposure, registers: str | Iterable[str] | None = None, *, unit: str = "bit_cycle"
) -> int:
    """Exposed sites of ``registers`` (default the PE classes): bit-cycles, or bits for ``ber``."""
    return SiteSampler(exposure, registers=registers, unit=unit).total


def expected_fault_count(
    exposure: Exposure,
    rate: float,
    *,
    unit: str = "bit_cycle",
    registers: str | Iterable[str] | None = None,
) -> float:
    """Mean number of faults per run at ``rate`` (flips per bit-cycle, or per bit for ``ber``)."""
    return float(rate) * exposed_bit_cycles(exposure, registers, unit=unit)


def sample_rate_plan(
    exposure: Exposure,
    rate: float,
    *,
    rng: np.random.Generator,
    unit: str = "bit_cycle",
    model: str = "seu",
    mbu_width: int = 2,
    registers: str | Iterable[str] | None = None,
    sample: int = 0,
    sampler: SiteSampler | None = None,
) -> list[Fault]:
    """Faults of one run at ``rate``: a Poisson count over the exposed sites, uniform sites.

    ``sampler`` may be passed to reuse a prebuilt :class:`SiteSampler` (then ``unit`` and
    ``registers`` are its own). Hardened bits are not sites, so they never appear.
    """
    if rate < 0:
        raise AccelsimError(f"rate {rate} is negative", key="faults.rate", allowed=">= 0")
    if sampler is None:
        sampler = SiteSampler(exposure, registers=registers, unit=unit)
    count = int(rng.poisson(rate * sampler.total)) if sampler.total else 0
    return sampler.draw(rng, count, model=model, mbu_width=mbu_width, sample=sample)


def sample_plan_from_config(
    exposure: Exposure, config: Any, *, rng: np.random.Generator, sample: int = 0
) -> list[Fault]:
    """:func:`sample_rate_plan` with the settings of an :class:`accelsim.config.FaultsConfig`."""
    return sample_rate_plan(
        exposure,
        config.rate,
        rng=rng,
        unit=config.unit,
        model=config.model,
        mbu_width=config.mbu_width,
        registers=config.registers,
        sample=sample,
    )


def sample_single_fault(
    exposure: Exposure,
    rng: np.random.Generator,
    *,
    registers: str | Iterable[str] | None = None,
    layer: str | Iterable[str] | None = None,
    bit: int | Iterable[int] | None = None,
    neuron: int | None = None,
    model: str = "seu",
    mbu_width: int = 2,
    sample: int = 0,
) -> Fault:
    """Exactly one fault, uniform over the selected bit-cycles (vulnerability studies).

    E.g. BVF of bit j of class c: ``registers=c, bit=j``; NVF of output channel n of layer L:
    ``layer=L, neuron=n``. Raises :class:`AccelsimError` if the selection is empty (e.g. a
    hardened bit). For many draws build one :class:`SiteSampler` and call ``draw``.
    """
    sampler = SiteSampler(exposure, registers=registers, layers=layer, bits=bit, neuron=neuron)
    return sampler.draw(rng, 1, model=model, mbu_width=mbu_width, sample=sample)[0]


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


# ---- explicit plans on disk --------------------------------------------------------------------

_ENTRY_KEYS = ("layer", "fold", "register", "row", "col", "cycle", "bits", "kind", "sample")
_REQUIRED = ("layer", "fold", "register", "row", "col", "cycle", "bits")


def _fault_from_entry(entry: Any, *, index: int, file: str | Path) -> Fault:
    where = f"faults[{index}]"
    if not isinstance(entry, Mapping):
        raise AccelsimError(
            "a fault is a mapping of keys", file=file, key=where, allowed=", ".join(_ENTRY_KEYS)
        )
    for key in entry:
        if key not in _ENTRY_KEYS:
            raise AccelsimError("unknown key", file=file, key=f"{where}.{key}", allowed=_ENTRY_KEYS)
    for key in _REQUIRED:
        if key not in entry:
            raise AccelsimError("required key is missing", file=file, key=f"{where}.{key}")

    def integer(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise AccelsimError(
                f"{value!r} is not a non-negative integer",
                file=file,
                key=f"{where}.{key}",
                allowed="integers >= 0",
            )
        return int(value)

    layer = entry["layer"]
    if not isinstance(layer, str) or not layer:
        raise AccelsimError(f"{layer!r} is not a layer name", file=file, key=f"{where}.layer")
    register = entry["register"]
    if register not in REGISTERS:
        raise AccelsimError(
            f"{register!r} is not allowed", file=file, key=f"{where}.register", allowed=REGISTERS
        )
    kind = entry.get("kind", "flip")
    if kind not in KINDS:
        raise AccelsimError(
            f"{kind!r} is not allowed", file=file, key=f"{where}.kind", allowed=KINDS
        )
    raw_bits = entry["bits"]
    bit_values = raw_bits if isinstance(raw_bits, list | tuple) else [raw_bits]
    bits = []
    for value in bit_values:
        bit = integer("bits", value)
        if bit > MAX_REGISTER_BITS:
            raise AccelsimError(
                f"bit {bit} is too high",
                file=file,
                key=f"{where}.bits",
                allowed=f"0..{MAX_REGISTER_BITS}",
            )
        bits.append(bit)
    if not bits:
        raise AccelsimError(
            "no bits given",
            file=file,
            key=f"{where}.bits",
            allowed="a bit position or a non-empty list",
        )
    return Fault(
        layer=layer,
        fold=integer("fold", entry["fold"]),
        register=register,
        row=integer("row", entry["row"]),
        col=integer("col", entry["col"]),
        cycle=integer("cycle", entry["cycle"]),
        bits=tuple(bits),
        kind=kind,
        sample=integer("sample", entry.get("sample", 0)),
    )


def parse_plan(data: Any, *, file: str | Path = "<plan>") -> list[Fault]:
    """Faults from parsed YAML/JSON: a list of entries, or a mapping with a ``faults`` list."""
    if isinstance(data, Mapping):
        extra = set(data) - {"faults"}
        if extra:
            raise AccelsimError(
                "unknown key", file=file, key=sorted(map(str, extra))[0], allowed="faults"
            )
        if "faults" not in data:
            raise AccelsimError("required key is missing", file=file, key="faults")
        data = data["faults"]
    if not isinstance(data, list):
        raise AccelsimError("a fault plan is a list of faults", file=file, key="faults")
    return [_fault_from_entry(entry, index=i, file=file) for i, entry in enumerate(data)]


def load_plan(path: str | Path) -> list[Fault]:
    """Read an explicit fault list from ``.yaml``/``.yml`` (strict YAML) or ``.json``."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AccelsimError("file not found", file=path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AccelsimError(f"cannot read file: {exc}", file=path) from None
        except json.JSONDecodeError as exc:
            raise AccelsimError(
                f"invalid JSON at line {exc.lineno}: {exc.msg}", file=path
            ) from None
    elif path.suffix.lower() in (".yaml", ".yml"):
        data = load_yaml(path)
    else:
        raise AccelsimError("unknown plan format", file=path, allowed=(".yaml", ".yml", ".json"))
    return parse_plan(data, file=path)


def save_plan(path: str | Path, faults: Iterable[Fault]) -> None:
    """Write ``{"faults": [...]}`` atomically, as JSON or YAML by the file's suffix."""
    path = Path(path)
    data = {"faults": [fault.to_dict() for fault in faults]}
    if path.suffix.lower() == ".json":
        write_json_atomic(path, data)
        return
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise AccelsimError("unknown plan format", file=path, allowed=(".yaml", ".yml", ".json"))
    with atomic_file(path, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=None)


def check_plan(faults: Sequence[Fault], exposure: Exposure, *, file: str | Path = "<plan>") -> None:
    """Check every fault names a real site of ``exposure``; errors name the entry and key.

    Hardened bits are not an error (a plan may be replayed under different hardening); the
    injector removes them with :func:`drop_hardened`.
    """
    for i, fault in enumerate(faults):
        where = f"faults[{i}]"
        if fault.layer not in exposure.layer_names:
            raise AccelsimError(
                f"unknown layer {fault.layer!r}",
                file=file,
                key=f"{where}.layer",
                allowed=exposure.layer_names,
            )
        layer = exposure.layer(fault.layer)
        hits = np.flatnonzero(layer.fold == fault.fold)
        if not len(hits):
            raise AccelsimError(
                f"layer {layer.name} has no fold {fault.fold}",
                file=file,
                key=f"{where}.fold",
                allowed=f"0..{layer.n_folds - 1}",
            )
        j = int(hits[0])
        width = exposure.width_of(layer, fault.register)
        if fault.is_sram:
            words = layer.sram_words.get(fault.register, 0)
            limits = {"row": 1, "col": 1, "cycle": words}
        else:
            limits = {
                "row": int(layer.row0[j] + layer.rows[j]),
                "col": int(layer.col0[j] + layer.cols[j]),
                "cycle": int(layer.cycles[j]),
            }
        for key, limit in limits.items():
            value = getattr(fault, key)
            if value >= limit:
                raise AccelsimError(
                    f"{key} {value} is outside fold {fault.fold}",
                    file=file,
                    key=f"{where}.{key}",
                    allowed=f"< {limit}",
                )
        if fault.bits[-1] >= width:
            raise AccelsimError(
                f"bit {fault.bits[-1]} is outside the {width}-bit {fault.register}",
                file=file,
                key=f"{where}.bits",
                allowed=f"0..{width - 1}",
            )
