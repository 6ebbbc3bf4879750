"""Every encoding the simulator and the fault code share, defined once.

Names (``"ws"``, ``"weight"``, ``"flip"``, ``"wrap"``) are what users write in YAML and fault
plans; codes (small integers) are what the Numba kernels compute with. Each enum below is
the one place a name meets its code. Numba cannot index with an ``IntEnum`` member, so
kernels use the plain-int aliases (``WS``, ``INPUT``, ``FLIP``, ``OVERFLOW_WRAP`` ...) and
the per-dataflow tables (``ROW_DIM`` ...), all derived from the enums and the descriptors.

The per-dataflow descriptor table :data:`DATAFLOW_SPECS` says, as data, how each dataflow
lays a GEMM ``O[M, N] = A[M, K] @ W[K, N]`` onto the array: which GEMM dimension spreads
over the PE rows, which over the PE columns, which one is streamed through time, whether
partial sums cross every row (ws, is) and whether a stationary operand is preloaded. The
space-time behaviour that is code, not data (register clocking, fault reach), lives in
accelsim/mapping.py, accelsim/kernels.py and accelsim/refmodel.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class _Named(IntEnum):
    """An IntEnum whose user-facing name is its lower-case member name."""

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(member.label for member in cls)

    @classmethod
    def codes(cls) -> dict[str, int]:
        """``{name: plain int code}`` (plain ints: the form kernels and arrays take)."""
        return {member.label: int(member) for member in cls}

    @classmethod
    def of(cls, name: str) -> int:
        """The plain int code of ``name``; ValueError naming what is allowed."""
        code = cls.codes().get(name) if isinstance(name, str) else None
        if code is None:
            raise ValueError(f"unknown {cls.__name__.lower()} {name!r}: one of {cls.names()}")
        return code


class Dataflow(_Named):
    WS = 0  # weight stationary
    OS = 1  # output stationary
    IS = 2  # input stationary


class RegisterClass(_Named):
    """PE register classes; the code indexes the kernels' register file."""

    INPUT = 0
    WEIGHT = 1
    PRODUCT = 2
    ACCUMULATOR = 3


class FaultKind(_Named):
    FLIP = 0  # transient: XOR at one cycle, kept until the register is rewritten
    STUCK0 = 1  # the masked bits read 0 for the whole fold
    STUCK1 = 2  # the masked bits read 1 for the whole fold


class Overflow(_Named):
    """What the accumulator does when a sum leaves its ``acc_bits`` range."""

    WRAP = 0  # two's complement
    SATURATE = 1  # clamp to the signed range


# ---- names, as users write them ---------------------------------------------------------------

DATAFLOWS = Dataflow.names()  # ("ws", "os", "is")
REGISTER_CLASSES = RegisterClass.names()  # ("input", "weight", "product", "accumulator")
FAULT_KINDS = FaultKind.names()  # ("flip", "stuck0", "stuck1")
OVERFLOW_NAMES = Overflow.names()  # ("wrap", "saturate")
SRAM_REGISTERS = ("sram:input", "sram:weight", "sram:output")  # buffer words as fault sites
FAULT_SITES = REGISTER_CLASSES + SRAM_REGISTERS  # every register a fault can name

DATAFLOW_CODES = Dataflow.codes()
REGISTER_CODES = RegisterClass.codes()
FAULT_KIND_CODES = FaultKind.codes()
OVERFLOW_CODES = Overflow.codes()

# ---- plain-int aliases for Numba --------------------------------------------------------------

WS, OS, IS = int(Dataflow.WS), int(Dataflow.OS), int(Dataflow.IS)
INPUT, WEIGHT, PRODUCT, ACCUMULATOR = (int(c) for c in RegisterClass)
FLIP, STUCK0, STUCK1 = (int(k) for k in FaultKind)
N_REGISTER_CLASSES = len(RegisterClass)  # rows of the kernels' register file
N_FAULT_KINDS = len(FaultKind)
OVERFLOW_WRAP, OVERFLOW_SATURATE = int(Overflow.WRAP), int(Overflow.SATURATE)

# ---- kernel fault rows ------------------------------------------------------------------------
# A PE fault as the fold kernels take it: one int64 row
# ``[register_class, row, col, cycle, mask, kind]`` (an (F, FAULT_ROW_WIDTH) array per fold).
# ``chain_values`` takes rows with the chain position in front (CHAIN_ROW_WIDTH columns).

FAULT_REGISTER, FAULT_ROW, FAULT_COL, FAULT_CYCLE, FAULT_MASK, FAULT_KIND = range(6)
FAULT_ROW_WIDTH = 6
CHAIN_POSITION = 0  # chain rows: [chain_position, *kernel fault row]
CHAIN_ROW_WIDTH = FAULT_ROW_WIDTH + 1
MAX_REGISTER_BITS = 62  # masks are int64 in the kernel rows

# ---- per-dataflow descriptors -----------------------------------------------------------------

GEMM_DIMS = ("M", "K", "N")  # index order of the (Mt, Kt, Nt) tuples in the tables below


@dataclass(frozen=True)
class DataflowSpec:
    """How one dataflow maps a GEMM onto a ``rows x cols`` array (docs/dataflows.md).

    ``row_dim`` / ``col_dim``: the GEMM dimensions spread over PE rows / columns (a fold's
    tile of them must fit the array); ``streamed_dim``: the third, streamed through time, all
    of it in every fold. ``fold_order``: the two tiled dimensions, outer loop first (the
    issue order of :func:`accelsim.mapping.plan_folds`, SCALE-Sim's). ``psums_cross_rows``:
    partial sums flow down the columns through every one of the array's rows (so a fold's
    live block and fill/drain span all rows, used or not). ``preloads_stationary``: a
    stationary operand is shifted in through all rows before the fold (ws weights, is
    inputs); os initialises its accumulators in parallel instead. ``stationary`` /
    ``moving``: the operand register classes that stay in a PE and that move right.
    """

    code: int
    name: str
    row_dim: str
    col_dim: str
    fold_order: tuple[str, str]
    psums_cross_rows: bool
    preloads_stationary: bool
    stationary: int
    moving: int

    @property
    def streamed_dim(self) -> str:
        return next(d for d in GEMM_DIMS if d not in (self.row_dim, self.col_dim))

    def spatial(self, M: int, K: int, N: int) -> tuple[int, int]:
        """The extents of a GEMM (or tile) along the array's (rows, cols)."""
        dims = dict(zip(GEMM_DIMS, (M, K, N)))
        return dims[self.row_dim], dims[self.col_dim]

    def gemm_dims(self, row_extent: int, col_extent: int, streamed: int) -> tuple[int, int, int]:
        """(M, K, N) of a tile with these extents along rows, columns and time."""
        dims = {self.row_dim: row_extent, self.col_dim: col_extent, self.streamed_dim: streamed}
        return dims["M"], dims["K"], dims["N"]

    def streamed(self, M: int, K: int, N: int) -> int:
        return dict(zip(GEMM_DIMS, (M, K, N)))[self.streamed_dim]

    def tile_extent(self, dim: str, extent: int, rows: int, cols: int) -> int:
        """Largest fold tile of GEMM dimension ``dim`` (``extent`` long) on the array."""
        if dim == self.row_dim:
            return min(extent, rows)
        if dim == self.col_dim:
            return min(extent, cols)
        return extent  # streamed: all of it in every fold


DATAFLOW_SPECS: dict[int, DataflowSpec] = {
    WS: DataflowSpec(WS, "ws", "K", "N", ("N", "K"), True, True, WEIGHT, INPUT),
    OS: DataflowSpec(OS, "os", "M", "N", ("M", "N"), False, False, ACCUMULATOR, INPUT),
    IS: DataflowSpec(IS, "is", "K", "M", ("M", "K"), True, True, INPUT, WEIGHT),
}
assert tuple(DATAFLOW_SPECS) == tuple(int(d) for d in Dataflow)


def dataflow_spec(dataflow: int | str) -> DataflowSpec:
    """The descriptor of a dataflow code (or name, at the config boundary)."""
    code = Dataflow.of(dataflow) if isinstance(dataflow, str) else int(dataflow)
    spec = DATAFLOW_SPECS.get(code)
    if spec is None:
        raise ValueError(f"unknown dataflow {dataflow!r}: one of {DATAFLOWS}")
    return spec


# The descriptors as tuples indexed by code, the form Numba kernels read (GEMM_DIMS indices).
ROW_DIM = tuple(GEMM_DIMS.index(DATAFLOW_SPECS[c].row_dim) for c in DATAFLOW_SPECS)
COL_DIM = tuple(GEMM_DIMS.index(DATAFLOW_SPECS[c].col_dim) for c in DATAFLOW_SPECS)
STREAMED_DIM = tuple(GEMM_DIMS.index(DATAFLOW_SPECS[c].streamed_dim) for c in DATAFLOW_SPECS)
PSUMS_CROSS_ROWS = tuple(int(DATAFLOW_SPECS[c].psums_cross_rows) for c in DATAFLOW_SPECS)
STATIONARY = tuple(DATAFLOW_SPECS[c].stationary for c in DATAFLOW_SPECS)
MOVING = tuple(DATAFLOW_SPECS[c].moving for c in DATAFLOW_SPECS)
N_DATAFLOWS = len(DATAFLOW_SPECS)
