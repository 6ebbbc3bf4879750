"""Reference model: a rows x cols systolic array simulated register by register, cycle by cycle.

Deliberately simple and slow (pure Python, tiny sizes only): it is the oracle that the Numba
fold kernels (accelsim/kernels.py) and the cycle formulas (accelsim/mapping.py) must match
bit for bit and cycle for cycle. The space-time maps it realises are documented in
docs/dataflows.md.

Every PE(r, c) has four data registers — input, weight, product, accumulator — plus control
tags that travel with the data (the slot index a value belongs to; control is not a fault
site). Each cycle, in this order:

1. faults for this cycle are applied to the current register contents (transient flips XOR
   their mask; then stuck-at faults force their bits, every cycle of the fold);
2. outputs complete in this cycle are captured (ws/is: the accumulator of the bottom row
   carrying a valid slot; os: an accumulator that has just added its last k);
3. the next state is computed from the current one (operands move one PE right/down,
   products are ``input * weight``, accumulators add ``overflow(acc + product)``).

The fold ends after the cycle in which its last output is captured; the number of cycles is
returned and must equal ``mapping.fold_cycles``. The dataflow is a code (``codes.Dataflow``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .codes import (
    ACCUMULATOR,
    DATAFLOW_SPECS,
    FAULT_COL,
    FAULT_KIND,
    FAULT_REGISTER,
    FAULT_ROW,
    FAULT_ROW_WIDTH,
    FLIP,
    INPUT,
    IS,
    N_FAULT_KINDS,
    N_REGISTER_CLASSES,
    OS,
    PRODUCT,
    STUCK0,
    STUCK1,
    WEIGHT,
    WS,
)
from .intmath import accumulate, flip_bits, force_bits
from .pe_spec import PESpec


@dataclass
class PE:
    """The registers of one processing element; ``*_tag`` are control, not data."""

    input: int = 0
    weight: int = 0
    product: int = 0
    acc: int = 0
    input_tag: int | None = None
    weight_tag: int | None = None
    product_tag: int | None = None
    acc_tag: int | None = None
    last_k_added: bool = False  # os: the accumulator has just added k = Kt-1
    captured: bool = False

    def get(self, register_class: int) -> int:
        return (self.input, self.weight, self.product, self.acc)[register_class]

    def set(self, register_class: int, value: int) -> None:
        name = ("input", "weight", "product", "acc")[register_class]
        setattr(self, name, value)


@dataclass
class Array:
    rows: int
    cols: int
    widths: dict[int, tuple[int, bool]]  # register class -> (bits, signed)
    pes: list[list[PE]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pes = [[PE() for _ in range(self.cols)] for _ in range(self.rows)]


def simulate_fold(
    spec: PESpec,
    a_tile: np.ndarray,
    w_tile: np.ndarray,
    psum_in: np.ndarray,
    faults=(),
) -> tuple[np.ndarray, int]:
    """Run one fold on the array ``spec``; return ``(psum_out (Mt, Nt) int64, cycles)``.

    ``faults``: iterable of kernel fault rows ``(register_class, row, col, cycle, mask,
    kind)`` (``codes.RegisterClass``, ``codes.FaultKind``): kind FLIP is a transient flip at
    ``cycle``, STUCK0 / STUCK1 force the ``mask`` bits for the whole fold.
    """
    dataflow, rows, cols = spec.dataflow, spec.rows, spec.cols
    a = [[int(v) for v in row] for row in np.asarray(a_tile)]
    w = [[int(v) for v in row] for row in np.asarray(w_tile)]
    psum = [[int(v) for v in row] for row in np.asarray(psum_in)]
    Mt, Kt = np.asarray(a_tile).shape
    Nt = np.asarray(w_tile).shape[1]
    acc_bits, rule = spec.acc_bits, spec.overflow
    fits = DATAFLOW_SPECS[dataflow].spatial(Mt, Kt, Nt)
    if fits[0] > rows or fits[1] > cols:
        name = DATAFLOW_SPECS[dataflow].name
        raise ValueError(f"{name} tile {Mt}x{Kt}x{Nt} does not fit a {rows}x{cols} array")
    widths = {
        INPUT: (spec.a_bits, spec.a_signed),
        WEIGHT: (spec.w_bits, True),
        PRODUCT: (spec.a_bits + spec.w_bits, True),
        ACCUMULATOR: (acc_bits, True),
    }
    array = Array(rows, cols, widths)
    faults = [tuple(int(v) for v in f) for f in faults]
    for f in faults:
        if not (
            len(f) == FAULT_ROW_WIDTH
            and 0 <= f[FAULT_REGISTER] < N_REGISTER_CLASSES
            and 0 <= f[FAULT_ROW] < rows
            and 0 <= f[FAULT_COL] < cols
            and 0 <= f[FAULT_KIND] < N_FAULT_KINDS
        ):
            raise ValueError(f"fault {f} is not a register of a {rows}x{cols} array")
    pes = array.pes

    # stationary preload (and os accumulator initialisation): fold state 0
    for r in range(rows):
        for c in range(cols):
            pe = pes[r][c]
            if dataflow == WS and r < Kt and c < Nt:
                pe.weight = w[r][c]
            if dataflow == IS and r < Kt and c < Mt:
                pe.input = a[c][r]
            if dataflow == OS and r < Mt and c < Nt:
                pe.acc = psum[r][c]
    _feed_edges(dataflow, pes, 0, a, w, Mt, Kt, Nt)

    out = np.zeros((Mt, Nt), dtype=np.int64)
    remaining = Mt * Nt
    cycle = 0
    while True:
        _apply_faults(array, faults, cycle)
        remaining -= _capture(dataflow, array, out, Mt, Kt, Nt)
        if remaining == 0:
            return out, cycle + 1
        _step(dataflow, array, psum, Mt, Nt, acc_bits, rule, Kt)
        cycle += 1
        _feed_edges(dataflow, pes, cycle, a, w, Mt, Kt, Nt)
        if cycle > 10 * (Mt + Kt + Nt + rows + cols) + 10:
            raise RuntimeError("reference model did not finish the fold")


def _apply_faults(array: Array, faults: list[tuple[int, ...]], cycle: int) -> None:
    for cls, r, c, t, mask, kind in faults:
        if kind == FLIP and t == cycle:
            pe = array.pes[r][c]
            bits, signed = array.widths[cls]
            pe.set(cls, flip_bits(pe.get(cls), mask, bits, signed))
    for cls, r, c, _, mask, kind in faults:
        if kind in (STUCK0, STUCK1):
            pe = array.pes[r][c]
            bits, signed = array.widths[cls]
            and_mask, or_mask = (~mask, 0) if kind == STUCK0 else (-1, mask)
            pe.set(cls, force_bits(pe.get(cls), and_mask, or_mask, bits, signed))


def _feed_edges(dataflow, pes, cycle, a, w, Mt, Kt, Nt) -> None:
    """Load the edge registers with the skewed operand streams for state ``cycle``.

    Row r (and, for os weights, column c) is delayed by r (c) cycles. Rows or columns the
    tile does not use receive zeros, still tagged with their slot so psums stay aligned.
    """
    rows, cols = len(pes), len(pes[0])
    if dataflow == WS:  # A[m, k] enters row k at the left in cycle m + k
        for r in range(rows):
            m = cycle - r
            pe = pes[r][0]
            pe.input_tag = m if 0 <= m < Mt else None
            pe.input = a[m][r] if pe.input_tag is not None and r < Kt else 0
    elif dataflow == IS:  # W[k, n] enters row k at the left in cycle n + k
        for r in range(rows):
            n = cycle - r
            pe = pes[r][0]
            pe.weight_tag = n if 0 <= n < Nt else None
            pe.weight = w[r][n] if pe.weight_tag is not None and r < Kt else 0
    else:  # os: A[m, k] enters row m in cycle k + m, W[k, n] enters column n in cycle k + n
        for r in range(rows):
            k = cycle - r
            pe = pes[r][0]
            pe.input_tag = k if 0 <= k < Kt else None
            pe.input = a[r][k] if pe.input_tag is not None and r < Mt else 0
        for c in range(cols):
            k = cycle - c
            pe = pes[0][c]
            pe.weight_tag = k if 0 <= k < Kt else None
            pe.weight = w[k][c] if pe.weight_tag is not None and c < Nt else 0


def _capture(dataflow, array: Array, out: np.ndarray, Mt, Kt, Nt) -> int:
    """Copy the outputs complete in this cycle into ``out``; return how many."""
    pes = array.pes
    captured = 0
    if dataflow in (WS, IS):
        bottom = pes[array.rows - 1]
        lanes = Nt if dataflow == WS else Mt
        for c in range(lanes):
            slot = bottom[c].acc_tag
            if slot is not None:
                if dataflow == WS:
                    out[slot, c] = bottom[c].acc
                else:
                    out[c, slot] = bottom[c].acc
                captured += 1
        return captured
    for r in range(Mt):
        for c in range(Nt):
            pe = pes[r][c]
            if pe.last_k_added and not pe.captured:
                out[r, c] = pe.acc
                pe.captured = True
                captured += 1
    return captured


def _step(dataflow, array: Array, psum, Mt, Nt, acc_bits, rule, Kt) -> None:
    """Clock edge: every register's next value from the current state (edges fed after)."""
    rows, cols = array.rows, array.cols
    old = [[_copy(pe) for pe in row] for row in array.pes]
    for r in range(rows):
        for c in range(cols):
            pe, cur = array.pes[r][c], old[r][c]
            # multiplier: product register <- input * weight
            pe.product = cur.input * cur.weight
            if dataflow == OS:
                assert cur.input_tag == cur.weight_tag, "os operands misaligned"
            pe.product_tag = cur.weight_tag if dataflow == IS else cur.input_tag
            # accumulator
            if dataflow == OS:
                pe.acc = accumulate(cur.acc, cur.product, acc_bits, rule)
                pe.last_k_added = cur.product_tag == Kt - 1
            else:
                if r == 0:
                    slot = cur.product_tag
                    lane_ok = c < (Nt if dataflow == WS else Mt)
                    if slot is None or not lane_ok:
                        above = 0
                    else:
                        above = psum[slot][c] if dataflow == WS else psum[c][slot]
                    above_tag = slot if lane_ok else None
                else:
                    above, above_tag = old[r - 1][c].acc, old[r - 1][c].acc_tag
                    assert above_tag == cur.product_tag or c >= (Nt if dataflow == WS else Mt)
                pe.acc = accumulate(above, cur.product, acc_bits, rule)
                pe.acc_tag = above_tag
            # moving operands: inputs (ws, os) and weights (is) one PE right; os weights down
            if dataflow in (WS, OS) and c > 0:
                pe.input, pe.input_tag = old[r][c - 1].input, old[r][c - 1].input_tag
            if dataflow == IS and c > 0:
                pe.weight, pe.weight_tag = old[r][c - 1].weight, old[r][c - 1].weight_tag
            if dataflow == OS and r > 0:
                pe.weight, pe.weight_tag = old[r - 1][c].weight, old[r - 1][c].weight_tag


def _copy(pe: PE) -> PE:
    return PE(**{name: getattr(pe, name) for name in PE.__dataclass_fields__})
