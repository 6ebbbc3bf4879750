"""Uniform draws over the exposed fault sites, and plans drawn at a fault rate.

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

Counts under a rate are Poisson with mean ``rate x sites``; sites are drawn uniformly with
replacement, exactly, in integer arithmetic. Every draw takes a ``numpy.random.Generator``,
so the same seed gives the same plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from accelsim.codes import FAULT_KIND_CODES
from accelsim.errors import AccelsimError

from .exposure import Exposure, LayerExposure
from .fault import PE_REGISTERS, REGISTERS, SRAM_REGISTERS, Fault, FaultTable

MODELS = ("seu", "mbu", "stuck0", "stuck1")
UNITS = ("bit_cycle", "ber")


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
            kind=np.full(len(site), FAULT_KIND_CODES[MODEL_KINDS[model]], dtype=np.int64),
            layer_names=self._layer_names,
        )


MODEL_KINDS = {"seu": "flip", "mbu": "flip", "stuck0": "stuck0", "stuck1": "stuck1"}


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise AccelsimError(f"{model!r} is not allowed", key="model", allowed=MODELS)


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
