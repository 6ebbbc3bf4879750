"""What a fault is: one upset at an exact place, and many of them as a table.

A :class:`Fault` names one upset: a layer, a fold of that layer (numbered as in
:class:`accelsim.schedule.LayerSchedule.folds`), a register (a PE register class or an SRAM
buffer), a PE (row, col), a cycle within the fold and the bits it hits. ``Fault.to_row()`` is
the int64 kernel fault row ``[register_class, row, col, cycle, mask, kind]`` the fold kernels
consume (layout: ``accelsim.codes.FAULT_*``; docs/semantics.md §3–4). A :class:`FaultTable`
holds the faults of many injections as parallel columns (what samplers draw and the batched
campaign consumes). For SRAM faults ``cycle`` holds the word address and ``row = col = 0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from accelsim.codes import (
    FAULT_COL,
    FAULT_CYCLE,
    FAULT_KIND,
    FAULT_KIND_CODES,
    FAULT_KINDS,
    FAULT_MASK,
    FAULT_REGISTER,
    FAULT_ROW,
    FAULT_ROW_WIDTH,
    MAX_REGISTER_BITS,
    REGISTER_CODES,
    SRAM_REGISTERS,
)
from accelsim.codes import FAULT_SITES as REGISTERS
from accelsim.codes import REGISTER_CLASSES as PE_REGISTERS

__all__ = [
    "PE_REGISTERS",
    "REGISTERS",
    "SRAM_REGISTERS",
    "Fault",
    "FaultTable",
    "group_by_fold",
    "inference_faults",
    "kernel_rows",
    "mask_bits",
]


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
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {FAULT_KINDS}")
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
        """The kernel fault row ``[register_class, row, col, cycle, mask, kind]`` (int64)."""
        if self.is_sram:
            raise ValueError(f"{self.register} faults are applied to buffer words, not PEs")
        row = np.empty(FAULT_ROW_WIDTH, dtype=np.int64)
        row[FAULT_REGISTER] = REGISTER_CODES[self.register]
        row[FAULT_ROW] = self.row
        row[FAULT_COL] = self.col
        row[FAULT_CYCLE] = self.cycle
        row[FAULT_MASK] = self.mask
        row[FAULT_KIND] = FAULT_KIND_CODES[self.kind]
        return row

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
        """Inverse of :meth:`to_dict`; checked like a plan entry (:mod:`faults.plan`)."""
        from .plan import fault_from_entry  # the plan parser builds Faults: import it late

        return fault_from_entry(data, index=0, file="<dict>")


def kernel_rows(faults: Iterable[Fault]) -> np.ndarray:
    """Stack PE faults into the kernel's ``(F, FAULT_ROW_WIDTH)`` int64 array."""
    rows = [fault.to_row() for fault in faults]
    return np.stack(rows) if rows else np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64)


def group_by_fold(faults: Iterable[Fault]) -> dict[tuple[int, str, int], list[Fault]]:
    """Faults keyed by ``(sample, layer, fold)``: what the injector applies to each fold run."""
    groups: dict[tuple[int, str, int], list[Fault]] = {}
    for fault in faults:
        groups.setdefault((fault.sample, fault.layer, fault.fold), []).append(fault)
    return groups


def inference_faults(faults: Iterable[Fault]) -> dict[str, dict[int, np.ndarray]]:
    """PE faults of one inference as ``{layer: {fold: kernel rows}}``.

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


@dataclass(frozen=True)
class FaultTable:
    """Faults of many injections as parallel int64 columns, one row per fault.

    ``register`` indexes :data:`REGISTERS` (PE classes first, so for PE faults it is the
    kernel's class code), ``kind`` indexes :data:`FAULT_KINDS`, ``layer`` indexes ``layer_names``;
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
                FAULT_KIND_CODES[f.kind],
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
        """The selected PE faults as kernel fault rows (``accelsim.codes.FAULT_*`` layout)."""
        columns = {
            FAULT_REGISTER: self.register,
            FAULT_ROW: self.row,
            FAULT_COL: self.col,
            FAULT_CYCLE: self.cycle,
            FAULT_MASK: self.mask,
            FAULT_KIND: self.kind,
        }
        ordered = [columns[i][select] for i in range(FAULT_ROW_WIDTH)]
        return np.stack(ordered, axis=1).astype(np.int64, copy=False)

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
                kind=FAULT_KINDS[int(self.kind[j])],
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
