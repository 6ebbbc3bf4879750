"""How one GEMM layer is tiled onto the accelerator: m-blocks, folds, bytes per tile.

Pure functions, no SimPy: the hardware model walks this schedule as transactions, and the
fault code uses the same fold numbering to place faults (one mapping serves both).

Loop nest (outermost first): group -> m-block -> fold (``mapping.plan_folds``). An m-block
is a run of whole output rows of one batch item whose input rows fit one input-buffer slot;
its output tile (partial sums at accumulator width) must fit one output-buffer slot.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from . import mapping
from .codes import DataflowSpec, dataflow_spec
from .config import AcceleratorConfig
from .errors import Infeasible
from .ir import Graph, Node, attr


def bytes_for(elements: int, bits: int) -> int:
    """Bytes to store ``elements`` words of ``bits`` bits, packed."""
    return math.ceil(elements * bits / 8)


@dataclass(frozen=True)
class GemmShape:
    """A conv2d/linear layer seen as ``groups`` GEMMs ``O[M, N] = A[M, K] @ W[K, N]``."""

    layer: str
    op: str
    batch: int
    groups: int
    M: int
    K: int
    N: int  # per group
    in_channels: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    a_bits: int
    a_signed: bool
    w_bits: int
    acc_bits: int
    overflow: str
    out_bits: int
    dilation: tuple[int, int] = (1, 1)
    padding_end: tuple[int, int] | None = None  # (bottom, right) when not equal to padding

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) zero padding."""
        return (*self.padding, *(self.padding_end or self.padding))

    @property
    def macs(self) -> int:
        return self.groups * self.M * self.K * self.N

    def input_rows_for(self, oh0: int, oh1: int) -> int:
        """Input rows (of one batch item, without padding) read by output rows [oh0, oh1)."""
        if self.op == "linear":
            return 1
        kh, sh, ph, dh = self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]
        first = max(oh0 * sh - ph, 0)
        last = min((oh1 - 1) * sh - ph + dh * (kh - 1) + 1, self.in_h)
        return max(last - first, 0)


def gemm_shape(graph: Graph, node: Node, batch: int) -> GemmShape:
    x = graph.tensors[node.inputs[0]]
    y = graph.tensors[node.output]
    w = node.params["weight"]
    a_bits, w_bits = int(x.bits), int(node.attrs["w_bits"])
    common = dict(
        layer=node.name,
        op=node.op,
        batch=batch,
        a_bits=a_bits,
        a_signed=bool(x.signed),
        w_bits=w_bits,
        acc_bits=int(node.attrs["acc_bits"]),
        overflow=str(node.attrs["overflow"]),
        out_bits=int(y.bits),
    )
    if node.op == "linear":
        return GemmShape(
            groups=1,
            M=batch,
            K=int(w.shape[1]),
            N=int(w.shape[0]),
            in_channels=int(w.shape[1]),
            in_h=1,
            in_w=1,
            out_h=1,
            out_w=1,
            kernel=(1, 1),
            stride=(1, 1),
            padding=(0, 0),
            **common,
        )
    groups = int(node.attrs.get("groups", 1))
    c, h, wd = x.shape
    _, oh, ow = y.shape
    n_out, c_per_group, kh, kw = (int(v) for v in w.shape)
    return GemmShape(
        groups=groups,
        M=batch * oh * ow,
        K=c_per_group * kh * kw,
        N=n_out // groups,
        in_channels=int(c),
        in_h=int(h),
        in_w=int(wd),
        out_h=int(oh),
        out_w=int(ow),
        kernel=(kh, kw),
        stride=tuple(node.attrs["stride"]),
        padding=tuple(node.attrs["padding"]),
        dilation=tuple(int(v) for v in attr(node, "dilation")),
        padding_end=None
        if node.attrs.get("padding_end") is None
        else tuple(int(v) for v in node.attrs["padding_end"]),
        **common,
    )


@dataclass(frozen=True)
class FoldJob:
    """One fold of the array, with its place in the layer's loop nest."""

    index: int  # position in the layer (fault plans name folds by it)
    group: int
    block: int
    m0: int
    m1: int
    k0: int
    k1: int
    n0: int
    n1: int
    first_k: bool  # psum_in is the bias, not a partial sum read back
    last_k: bool  # completes its output tile: requantise and write back


@dataclass(frozen=True)
class MBlock:
    group: int
    index: int
    m0: int
    m1: int
    input_bytes: int  # ifmap bytes (no padding) this block reads from DRAM
    output_tile_bytes: int  # largest partial-sum tile of the block in the output buffer


# columns of LayerSchedule.fold_table, one int64 row per fold (row i is fold i)
(
    F_GROUP,
    F_BLOCK,
    F_M0,
    F_M1,
    F_K0,
    F_K1,
    F_N0,
    F_N1,
    F_FIRST_K,
    F_LAST_K,
) = range(10)
LAYER_FOLD_WIDTH = 10


@dataclass(frozen=True, eq=False)
class LayerSchedule:
    """One layer's tiling. The folds live in ``fold_table`` (arrays, for the timing model
    and the traffic counts); ``folds`` is the same as :class:`FoldJob` objects, built when
    first asked for (the fault code walks them)."""

    shape: GemmShape
    blocks: tuple[MBlock, ...]
    fold_table: np.ndarray  # (folds, LAYER_FOLD_WIDTH) int64, read-only, in issue order
    weights_resident: bool  # all weights fit the weight buffer: fetched once per layer
    weight_bytes: int

    @property
    def fold_count(self) -> int:
        return int(self.fold_table.shape[0])

    @cached_property
    def folds(self) -> tuple[FoldJob, ...]:
        return tuple(
            FoldJob(i, g, b, m0, m1, k0, k1, n0, n1, bool(first), bool(last))
            for i, (g, b, m0, m1, k0, k1, n0, n1, first, last) in enumerate(
                self.fold_table.tolist()
            )
        )


def _slot_bytes(capacity_kib: float, double_buffered: bool) -> int:
    return int(capacity_kib * 1024) // (2 if double_buffered else 1)


@dataclass(frozen=True)
class _BlockGeometry:
    """How the m-blocks of one layer are cut: in units of whole output rows of one batch
    item (conv2d: ``out_w`` GEMM rows each) or whole samples (linear: one GEMM row each)."""

    shape: GemmShape
    dataflow: DataflowSpec
    rows: int
    cols: int

    @property
    def unit(self) -> int:
        """GEMM rows (m) per unit."""
        return self.shape.out_w if self.shape.op == "conv2d" else 1

    @property
    def units(self) -> int:
        """Units an m-block may span: one batch item's output rows, or all samples."""
        return self.shape.out_h if self.shape.op == "conv2d" else self.shape.batch

    @property
    def row_in_bytes(self) -> int:
        """Bytes of one input row (all channels) of one batch item."""
        return bytes_for(self.shape.in_channels * self.shape.in_w, self.shape.a_bits)

    def input_bytes(self, u0: int, u1: int) -> int:
        """Input bytes (no padding) an m-block of units ``[u0, u1)`` reads."""
        shape = self.shape
        if shape.op == "conv2d":
            return self.row_in_bytes * shape.input_rows_for(u0, u1)
        return bytes_for(shape.in_channels * (u1 - u0), shape.a_bits)

    def output_tile_bytes(self, n_units: int) -> int:
        """Bytes of the largest partial-sum tile a fold of an ``n_units`` block produces."""
        shape, df = self.shape, self.dataflow
        tile_m = df.tile_extent("M", n_units * self.unit, self.rows, self.cols)
        tile_n = df.tile_extent("N", shape.N, self.rows, self.cols)
        return bytes_for(tile_m * tile_n, shape.acc_bits)

    def sizing_input_bytes(self, n_units: int) -> int:
        """Input bytes charged when sizing a block of ``n_units``: the rows read when a unit
        is several GEMM rows, else (linear, or a conv with ``out_w == 1``) the channels only."""
        if self.unit > 1:
            return self.row_in_bytes * self.shape.input_rows_for(0, n_units)
        return bytes_for(self.shape.in_channels * n_units, self.shape.a_bits)

    def fits(self, n_units: int, in_slot: int, out_slot: int) -> bool:
        return (
            self.sizing_input_bytes(n_units) <= in_slot
            and self.output_tile_bytes(n_units) <= out_slot
        )


def _check_weight_tile(geometry: _BlockGeometry, w_slot: int) -> None:
    shape, df = geometry.shape, geometry.dataflow
    k = df.tile_extent("K", shape.K, geometry.rows, geometry.cols)
    n = df.tile_extent("N", shape.N, geometry.rows, geometry.cols)
    weight_tile = bytes_for(k * n, shape.w_bits)
    if weight_tile > w_slot:
        raise Infeasible(
            f"layer {shape.layer}: one weight tile needs {weight_tile} B but a weight-buffer "
            f"slot holds {w_slot} B",
            key="accelerator.buffers.weight.capacity_kib",
        )


def _check_one_unit_fits(geometry: _BlockGeometry, in_slot: int, out_slot: int) -> None:
    layer = geometry.shape.layer
    in_one, out_one = geometry.sizing_input_bytes(1), geometry.output_tile_bytes(1)
    if in_one > in_slot:
        raise Infeasible(
            f"layer {layer}: the input rows of one output row need {in_one} B but an "
            f"input-buffer slot holds {in_slot} B",
            key="accelerator.buffers.input.capacity_kib",
        )
    if out_one > out_slot:
        raise Infeasible(
            f"layer {layer}: one partial-sum tile needs {out_one} B but an "
            f"output-buffer slot holds {out_slot} B",
            key="accelerator.buffers.output.capacity_kib",
        )


def _units_per_block(geometry: _BlockGeometry, in_slot: int, out_slot: int) -> int:
    """The largest block that fits both slots (cost grows monotonically with the block)."""
    per_block = 1
    lo, hi = 1, geometry.units
    while lo <= hi:
        mid = (lo + hi) // 2
        if geometry.fits(mid, in_slot, out_slot):
            per_block, lo = mid, mid + 1
        else:
            hi = mid - 1
    return per_block


def _block_spans(
    geometry: _BlockGeometry, per_block: int, scalesim: bool
) -> list[tuple[int, int, int, int]]:
    """m-blocks of one group as (m0, m1, input bytes, units).

    SCALE-Sim streams all of M through every fold with ideal memory, so its timing mode uses
    one block per group.
    """
    shape, unit = geometry.shape, geometry.unit
    conv = shape.op == "conv2d"
    if scalesim:
        whole = (
            geometry.row_in_bytes * shape.in_h * shape.batch
            if conv
            else bytes_for(shape.in_channels * shape.batch, shape.a_bits)
        )
        return [(0, shape.M, whole, geometry.units)]
    spans = []
    for item in range(shape.batch if conv else 1):
        for u0 in range(0, geometry.units, per_block):
            u1 = min(u0 + per_block, geometry.units)
            m0 = (item * geometry.units + u0) * unit if conv else u0
            spans.append((m0, m0 + (u1 - u0) * unit, geometry.input_bytes(u0, u1), u1 - u0))
    return spans


def _blocks_and_fold_table(
    geometry: _BlockGeometry, spans: list[tuple[int, int, int, int]]
) -> tuple[list[MBlock], np.ndarray]:
    """The loop nest group -> m-block -> fold, folds numbered in issue order, as one table
    (blocks of one size share their fold plan, shifted to the block's first row)."""
    shape = geometry.shape
    blocks: list[MBlock] = []
    parts: list[np.ndarray] = []
    plans: dict[int, np.ndarray] = {}
    for g in range(shape.groups):
        for m0, m1, in_bytes, n_units in spans:
            block = MBlock(
                group=g,
                index=len(blocks),
                m0=m0,
                m1=m1,
                input_bytes=in_bytes,
                output_tile_bytes=geometry.output_tile_bytes(n_units),
            )
            blocks.append(block)
            plan = plans.get(m1 - m0)
            if plan is None:
                plan = plans[m1 - m0] = mapping.fold_table(
                    geometry.dataflow.code, m1 - m0, shape.K, shape.N, geometry.rows, geometry.cols
                )
            part = np.empty((len(plan), LAYER_FOLD_WIDTH), dtype=np.int64)
            part[:, F_GROUP] = g
            part[:, F_BLOCK] = block.index
            part[:, F_M0 : F_N1 + 1] = plan
            part[:, F_M0 : F_M1 + 1] += m0
            parts.append(part)
    table = np.concatenate(parts) if parts else np.zeros((0, LAYER_FOLD_WIDTH), np.int64)
    table[:, F_FIRST_K] = table[:, F_K0] == 0
    table[:, F_LAST_K] = table[:, F_K1] == shape.K
    table.flags.writeable = False
    return blocks, table


@dataclass(frozen=True)
class _Layout:
    """What a schedule holds apart from the layer's name: shared by same-shaped layers."""

    blocks: tuple[MBlock, ...]
    fold_table: np.ndarray
    weights_resident: bool
    weight_bytes: int


_LAYOUT_CACHE_SIZE = 512
_layouts: OrderedDict[tuple, _Layout] = OrderedDict()


def _layout(shape: GemmShape, accel: AcceleratorConfig) -> _Layout:
    array, bufs = accel.array, accel.buffers
    geometry = _BlockGeometry(shape, dataflow_spec(array.dataflow), array.rows, array.cols)
    in_slot = _slot_bytes(bufs.input.capacity_kib, bufs.input.double_buffered)
    w_slot = _slot_bytes(bufs.weight.capacity_kib, bufs.weight.double_buffered)
    out_slot = _slot_bytes(bufs.output.capacity_kib, bufs.output.double_buffered)
    _check_weight_tile(geometry, w_slot)
    _check_one_unit_fits(geometry, in_slot, out_slot)
    per_block = _units_per_block(geometry, in_slot, out_slot)
    spans = _block_spans(geometry, per_block, scalesim=accel.timing == "scalesim")
    blocks, table = _blocks_and_fold_table(geometry, spans)
    weight_bytes = bytes_for(shape.groups * shape.K * shape.N, shape.w_bits)
    return _Layout(
        blocks=tuple(blocks),
        fold_table=table,
        weights_resident=weight_bytes <= int(bufs.weight.capacity_kib * 1024),
        weight_bytes=weight_bytes,
    )


def schedule_layer(
    graph: Graph, node: Node, accel: AcceleratorConfig, *, batch: int
) -> LayerSchedule:
    """Tile one conv2d/linear layer; raise :class:`Infeasible` if one tile cannot fit.

    Layers of one shape on one array and buffer configuration share their tiling: it is
    built once (per process, for the most recent few hundred shapes) and reused.
    """
    shape = gemm_shape(graph, node, batch)
    array, bufs = accel.array, accel.buffers
    key = (replace(shape, layer=""), array, bufs, accel.timing)
    layout = _layouts.get(key)
    if layout is None:
        layout = _layout(shape, accel)  # raises Infeasible: never cached
        _layouts[key] = layout
        if len(_layouts) > _LAYOUT_CACHE_SIZE:
            _layouts.popitem(last=False)
    else:
        _layouts.move_to_end(key)
    return LayerSchedule(
        shape=shape,
        blocks=layout.blocks,
        fold_table=layout.fold_table,
        weights_resident=layout.weights_resident,
        weight_bytes=layout.weight_bytes,
    )
