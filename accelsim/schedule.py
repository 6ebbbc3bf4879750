"""How one GEMM layer is tiled onto the accelerator: m-blocks, folds, bytes per tile.

Pure functions, no SimPy: the hardware model walks this schedule as transactions, and the
fault code uses the same fold numbering to place faults (one mapping serves both).

Loop nest (outermost first): group -> m-block -> fold (``mapping.plan_folds``). An m-block
is a run of whole output rows of one batch item whose input rows fit one input-buffer slot;
its output tile (partial sums at accumulator width) must fit one output-buffer slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import mapping
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


@dataclass(frozen=True)
class LayerSchedule:
    shape: GemmShape
    blocks: tuple[MBlock, ...]
    folds: tuple[FoldJob, ...]
    weights_resident: bool  # all weights fit the weight buffer: fetched once per layer
    weight_bytes: int


def _slot_bytes(capacity_kib: float, double_buffered: bool) -> int:
    return int(capacity_kib * 1024) // (2 if double_buffered else 1)


def _output_tile_rows(dataflow: str, rows: int, cols: int, block_m: int) -> tuple[int, int]:
    """(m extent, n extent) of the largest partial-sum tile a fold of this block produces."""
    if dataflow == "ws":
        return block_m, cols
    if dataflow == "os":
        return min(rows, block_m), cols
    return min(cols, block_m), 0  # is: all N per fold; the caller multiplies by N


def schedule_layer(
    graph: Graph, node: Node, accel: AcceleratorConfig, *, batch: int
) -> LayerSchedule:
    """Tile one conv2d/linear layer; raise :class:`Infeasible` if one tile cannot fit."""
    shape = gemm_shape(graph, node, batch)
    rows, cols, dataflow = accel.array.rows, accel.array.cols, accel.array.dataflow
    bufs = accel.buffers
    in_slot = _slot_bytes(bufs.input.capacity_kib, bufs.input.double_buffered)
    w_slot = _slot_bytes(bufs.weight.capacity_kib, bufs.weight.double_buffered)
    out_slot = _slot_bytes(bufs.output.capacity_kib, bufs.output.double_buffered)

    weight_bytes = bytes_for(shape.groups * shape.K * shape.N, shape.w_bits)
    weight_tile = bytes_for(min(shape.K, rows) * min(shape.N, cols), shape.w_bits)
    if dataflow == "os":
        weight_tile = bytes_for(shape.K * min(shape.N, cols), shape.w_bits)
    elif dataflow == "is":
        weight_tile = bytes_for(min(shape.K, rows) * shape.N, shape.w_bits)
    if weight_tile > w_slot:
        raise Infeasible(
            f"layer {shape.layer}: one weight tile needs {weight_tile} B but a weight-buffer "
            f"slot holds {w_slot} B",
            key="accelerator.buffers.weight.capacity_kib",
        )
    weights_resident = weight_bytes <= int(bufs.weight.capacity_kib * 1024)

    # m-blocks: whole output rows of one batch item (linear: whole samples)
    unit = shape.out_w if shape.op == "conv2d" else 1
    units_per_item = shape.out_h if shape.op == "conv2d" else 1
    row_in_bytes = bytes_for(shape.in_channels * shape.in_w, shape.a_bits)

    def block_cost(n_units: int) -> tuple[int, int]:
        m = n_units * unit
        tile_m, tile_n = _output_tile_rows(dataflow, rows, cols, m)
        tile_n = tile_n or shape.N
        out_bytes = bytes_for(tile_m * min(tile_n, shape.N), shape.acc_bits)
        in_bytes = (
            row_in_bytes * shape.input_rows_for(0, n_units)
            if unit > 1
            else bytes_for(shape.in_channels * n_units, shape.a_bits)
        )
        return in_bytes, out_bytes

    in_one, out_one = block_cost(1)
    if in_one > in_slot:
        raise Infeasible(
            f"layer {shape.layer}: the input rows of one output row need {in_one} B but an "
            f"input-buffer slot holds {in_slot} B",
            key="accelerator.buffers.input.capacity_kib",
        )
    if out_one > out_slot:
        raise Infeasible(
            f"layer {shape.layer}: one partial-sum tile needs {out_one} B but an "
            f"output-buffer slot holds {out_slot} B",
            key="accelerator.buffers.output.capacity_kib",
        )
    # largest block that fits both slots (cost grows monotonically with the block)
    per_block = 1
    lo, hi = 1, units_per_item if shape.op == "conv2d" else shape.batch
    while lo <= hi:
        mid = (lo + hi) // 2
        i_b, o_b = block_cost(mid)
        if i_b <= in_slot and o_b <= out_slot:
            per_block, lo = mid, mid + 1
        else:
            hi = mid - 1

    # m-blocks as (m0, m1, input bytes, units); SCALE-Sim streams all of M through every fold
    # with ideal memory, so its timing mode uses one block per group
    items = shape.batch if shape.op == "conv2d" else 1
    total_units = units_per_item if shape.op == "conv2d" else shape.batch
    spans: list[tuple[int, int, int, int]] = []
    if accel.timing == "scalesim":
        whole = (
            row_in_bytes * shape.in_h * shape.batch
            if shape.op == "conv2d"
            else bytes_for(shape.in_channels * shape.batch, shape.a_bits)
        )
        spans.append((0, shape.M, whole, total_units))
    else:
        for item in range(items):
            for u0 in range(0, total_units, per_block):
                u1 = min(u0 + per_block, total_units)
                m0 = (item * units_per_item + u0) * unit if shape.op == "conv2d" else u0
                if shape.op == "conv2d":
                    in_bytes = row_in_bytes * shape.input_rows_for(u0, u1)
                else:
                    in_bytes = bytes_for(shape.in_channels * (u1 - u0), shape.a_bits)
                spans.append((m0, m0 + (u1 - u0) * unit, in_bytes, u1 - u0))

    blocks: list[MBlock] = []
    folds: list[FoldJob] = []
    for g in range(shape.groups):
        for m0, m1, in_bytes, n_units in spans:
            block = MBlock(
                group=g,
                index=len(blocks),
                m0=m0,
                m1=m1,
                input_bytes=in_bytes,
                output_tile_bytes=block_cost(n_units)[1],
            )
            blocks.append(block)
            for fold in mapping.plan_folds(dataflow, m1 - m0, shape.K, shape.N, rows, cols):
                folds.append(
                    FoldJob(
                        index=len(folds),
                        group=g,
                        block=block.index,
                        m0=m0 + fold.m0,
                        m1=m0 + fold.m1,
                        k0=fold.k0,
                        k1=fold.k1,
                        n0=fold.n0,
                        n1=fold.n1,
                        first_k=fold.k0 == 0,
                        last_k=fold.k1 == shape.K,
                    )
                )
    return LayerSchedule(
        shape=shape,
        blocks=tuple(blocks),
        folds=tuple(folds),
        weights_resident=weights_resident,
        weight_bytes=weight_bytes,
    )
