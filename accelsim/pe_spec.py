"""The PE array as the kernels see it: dataflow, size, register widths, overflow rule.

One :class:`PESpec` is built per layer (from the array config and the layer's GEMM shape) and
passed to every kernel-facing function (``kernels.run_fold``, ``kernels.fold_values``,
``kernels.chain_values``, ``mapping.affected_box``, ``refmodel.simulate_fold`` ...). The
Numba kernels take its :attr:`PESpec.kernel` tuple, built once in the constructor, so a fold
costs no extra Python work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codes import DATAFLOW_SPECS, Overflow, dataflow_spec

# The order of PESpec.kernel; Numba kernels unpack it in this order.
KERNEL_FIELDS = ("dataflow", "rows", "cols", "a_bits", "a_signed", "w_bits", "acc_bits", "overflow")


@dataclass(frozen=True)
class PESpec:
    """``rows x cols`` PEs running ``dataflow`` on ``a_bits`` inputs (signed or not),
    ``w_bits`` signed weights, ``a_bits + w_bits`` products and an ``acc_bits`` accumulator
    with the ``overflow`` rule (docs/semantics.md). ``dataflow`` and ``overflow`` are codes;
    :meth:`of` also takes their names."""

    dataflow: int
    rows: int
    cols: int
    a_bits: int
    a_signed: bool
    w_bits: int
    acc_bits: int
    overflow: int
    kernel: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if int(self.dataflow) not in DATAFLOW_SPECS:
            raise ValueError(f"unknown dataflow code {self.dataflow!r}")
        if int(self.overflow) not in (int(o) for o in Overflow):
            raise ValueError(f"unknown overflow code {self.overflow!r}")
        for name in ("rows", "cols", "a_bits", "w_bits", "acc_bits"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        # plain Python ints and a bool: one compiled variant of each kernel
        kernel = tuple(
            bool(getattr(self, n)) if n == "a_signed" else int(getattr(self, n))
            for n in KERNEL_FIELDS
        )
        for name, value in zip(KERNEL_FIELDS, kernel):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "kernel", kernel)

    @classmethod
    def of(
        cls,
        dataflow: int | str,
        rows: int,
        cols: int,
        *,
        a_bits: int,
        a_signed: bool,
        w_bits: int,
        acc_bits: int,
        overflow: int | str,
    ) -> PESpec:
        """A spec from codes or names (``"ws"``, ``"wrap"``)."""
        return cls(
            dataflow_spec(dataflow).code,
            rows,
            cols,
            a_bits,
            a_signed,
            w_bits,
            acc_bits,
            Overflow.of(overflow) if isinstance(overflow, str) else int(overflow),
        )

    @classmethod
    def for_layer(cls, array: Any, shape: Any) -> PESpec:
        """The spec of an :class:`accelsim.config.ArrayConfig` running one layer's
        :class:`accelsim.schedule.GemmShape` (its widths and overflow rule)."""
        return cls.of(
            array.dataflow,
            array.rows,
            array.cols,
            a_bits=shape.a_bits,
            a_signed=shape.a_signed,
            w_bits=shape.w_bits,
            acc_bits=shape.acc_bits,
            overflow=shape.overflow,
        )

    @property
    def dataflow_name(self) -> str:
        return DATAFLOW_SPECS[self.dataflow].name
