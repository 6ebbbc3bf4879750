"""Many faulty inferences at once: the campaign's fast path.

:func:`faulty_outputs` computes a batch of injections layer by layer, in graph order, each
layer once for every injection it concerns:

1. injections with PE faults in the layer whose input is still fault-free: the faults that
   provably cannot reach an output are dropped (hardened, or ``mapping.affected_box`` empty:
   one vectorised Numba pass), counted as masked early; each remaining fault's output tile is
   recomputed along its k-chain from the golden run's lowered operands and requantised, every
   tile of the layer in one Numba call (:mod:`faults.tile_kernels`: a lone ws flip under
   wrapping accumulation as the delta it adds, anything else by ``kernels.chain_values``, the
   fold kernel with the faults inside);
2. injections whose input already differs from the golden run (a fault upstream): the
   layer's fault-free values for all of them at once (one lowering, float32 GEMMs where
   provably exact, :func:`accelsim.datapath.compute_fault_free`: fault-free arithmetic does not depend on the
   tiling), then, for those with faults here too, their faulty tiles as in 1 on their own
   lowered operands;
3. injections with SRAM faults in the layer: :func:`faults.inject.sram_faulty_layer`, one
   injection at a time for that layer only;
4. any other layer (pooling, adds, ...): one call for every injection whose input differs
   (:func:`accelsim.vector_kernels.run_vector_node`: Numba kernels for adds and max-pooling).

A tensor is carried only for the injections where it differs from the golden run, so an
injection whose faults are all masked costs nothing after its faulty layer. Later layers are
recomputed whole, not limited to the receptive-field cone of the changed outputs: measured
(``bench/cone_payoff.py``, single-bit faults), a cone could skip at most 24% of the later-layer
MACs on ResNet-18 at 64x64 (layers 3-4 change everywhere) and 51% on the digits CNN, whose
later layers (18 kMAC per sample) cost per-call overhead rather than MACs — less than the
bounding boxes and partial lowerings it would cost per injection and layer. Results are identical to
:func:`faults.inject.faulty_inference` (which recomputes one tile per Python iteration) and to
:func:`faults.inject.full_faulty_inference` injection by injection (tested), down to the
:class:`faults.inject.InjectionStats`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from accelsim import vector_kernels
from accelsim.datapath import compute_fault_free, gemm_output, lower_operands
from accelsim.ir import Node
from accelsim.ops import GEMM_OPS
from accelsim.schedule import gemm_shape

from .fault import PE_REGISTERS, FaultTable, inference_faults
from .inject import (
    Golden,
    InjectionStats,
    fault_tile_groups,
    faulty_layer_outputs,
    reaches_output,
    requantization,
    sram_faulty_layer,
)
from .tile_kernels import recompute_tile_groups


def fast_path(table: FaultTable, batch: int) -> np.ndarray:
    """Which injections :func:`faulty_outputs` computes entirely batched: those without SRAM
    faults (an SRAM fault's layer is computed for its injection alone)."""
    fast = np.ones(batch, dtype=bool)
    fast[table.injection[table.register >= len(PE_REGISTERS)]] = False
    return fast


@dataclass(frozen=True)
class ShortcutCounts:
    """What the shortcuts saved, per injection of a batch (the fields of
    :class:`faults.inject.InjectionStats`, one int64 array each): counted with array
    operations, never an object per injection."""

    faults: np.ndarray
    masked_early: np.ndarray
    tiles_recomputed: np.ndarray
    layers_recomputed: np.ndarray

    @classmethod
    def zeros(cls, batch: int) -> ShortcutCounts:
        return cls(*(np.zeros(batch, dtype=np.int64) for _ in range(4)))

    def __len__(self) -> int:
        return len(self.faults)

    def absorb(self, injection: int, stats: InjectionStats) -> None:
        """Add one injection's :class:`InjectionStats` (from a one-at-a-time path)."""
        self.faults[injection] += stats.faults
        self.masked_early[injection] += stats.masked_early
        self.tiles_recomputed[injection] += stats.tiles_recomputed
        self.layers_recomputed[injection] += stats.layers_recomputed

    def to_stats(self) -> list[InjectionStats]:
        return [
            InjectionStats(*values)
            for values in zip(
                self.faults.tolist(),
                self.masked_early.tolist(),
                self.tiles_recomputed.tolist(),
                self.layers_recomputed.tolist(),
                strict=True,
            )
        ]


def _live(
    golden: Golden,
    node: Node,
    owner: np.ndarray,
    fold: np.ndarray,
    faults: np.ndarray,
    counts: ShortcutCounts,
) -> np.ndarray:
    """:func:`faults.inject.live_faults` counting into ``counts``: which kernel rows can
    change an output (hardened bits removed in place); the others are masked early."""
    live = reaches_output(golden, node.name, fold, faults)
    counts.faults[:] += np.bincount(owner, minlength=len(counts))
    counts.masked_early[:] += np.bincount(owner[~live], minlength=len(counts))
    return live


@dataclass(frozen=True)
class DirtyRows:
    """A tensor where it differs from the golden run: ``values[j]`` is its value in injection
    ``injections[j]`` (ascending); every other injection holds the golden value."""

    injections: np.ndarray
    values: np.ndarray

    @classmethod
    def none(cls) -> DirtyRows:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.injections)


def faulty_outputs(
    golden: Golden,
    samples: np.ndarray,
    table: FaultTable,
    *,
    protected: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[InjectionStats]]:
    """Network outputs ``(B, ...)`` of injections ``0..B-1`` (sample ``samples[i]``, faults
    the rows of ``table`` with ``injection == i``) and what each one's shortcuts saved."""
    outputs, counts = counted_faulty_outputs(golden, samples, table, protected=protected)
    return outputs, counts.to_stats()


def counted_faulty_outputs(
    golden: Golden,
    samples: np.ndarray,
    table: FaultTable,
    *,
    protected: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, ShortcutCounts]:
    """:func:`faulty_outputs` with what the shortcuts saved as :class:`ShortcutCounts`."""
    samples = np.asarray(samples, dtype=np.int64)
    batch = len(samples)
    protected = protected or {}
    graph = golden.graph
    stats = ShortcutCounts.zeros(batch)
    layer_ids = {name: i for i, name in enumerate(table.layer_names)}
    sram = table.register >= len(PE_REGISTERS)
    last_use = {name: i for i, node in enumerate(graph.nodes) for name in node.inputs}
    dirty: dict[str, DirtyRows] = {}
    for index, node in enumerate(graph.nodes):
        if node.op in GEMM_OPS:
            in_layer = table.layer == layer_ids.get(node.name, -1)
            out = _gemm_layer(
                golden,
                node,
                samples,
                table,
                np.flatnonzero(in_layer & ~sram),
                np.unique(table.injection[in_layer & sram]),
                dirty.get(node.inputs[0], DirtyRows.none()),
                stats,
                protected.get(node.name),
            )
        else:
            out = _fault_free_node(golden, node, samples, dirty, stats)
        if len(out):
            dirty[node.output] = out
        for name in node.inputs:  # a tensor no later node reads is dropped
            if last_use[name] == index and name != graph.output:
                dirty.pop(name, None)
    outputs = golden.values[graph.output][samples].copy()
    final = dirty.get(graph.output)
    if final is not None:
        outputs[final.injections] = final.values
    return outputs, stats


def _gathered(
    golden: Golden, samples: np.ndarray, name: str, dirty: DirtyRows | None, rows: np.ndarray
) -> np.ndarray:
    """Tensor ``name`` of injections ``rows`` (ascending; a superset of ``dirty``'s)."""
    x = golden.values[name][samples[rows]]
    if dirty is not None and len(dirty):
        x[np.searchsorted(rows, dirty.injections)] = dirty.values
    return x


def _differing(
    golden: Golden,
    samples: np.ndarray,
    name: str,
    rows: np.ndarray,
    values: np.ndarray,
    reference: np.ndarray | None = None,
) -> DirtyRows:
    """The rows of ``values`` (injections ``rows``) that differ from the golden ``name``
    (``reference``: its rows for ``rows``, if the caller has them already)."""
    if reference is None:
        reference = golden.values[name][samples[rows]]
    differs = np.any((values != reference).reshape(len(rows), -1), axis=1)
    return DirtyRows(rows[differs], values[differs])


def _joined(parts: Sequence[DirtyRows]) -> DirtyRows:
    parts = [p for p in parts if len(p)]
    if not parts:
        return DirtyRows.none()
    if len(parts) == 1:
        return parts[0]
    injections = np.concatenate([p.injections for p in parts])
    order = np.argsort(injections, kind="stable")
    return DirtyRows(injections[order], np.concatenate([p.values for p in parts])[order])


def _fault_free_node(
    golden: Golden,
    node: Node,
    samples: np.ndarray,
    dirty: Mapping[str, DirtyRows],
    stats: ShortcutCounts,
) -> DirtyRows:
    """A layer without faults (no conv2d/linear) for every injection whose input differs."""
    inputs = [dirty.get(name) for name in node.inputs]
    touched = [d.injections for d in inputs if d is not None and len(d)]
    if not touched:
        return DirtyRows.none()
    rows = np.unique(np.concatenate(touched)) if len(touched) > 1 else touched[0]
    stats.layers_recomputed[rows] += 1
    values = vector_kernels.run_vector_node(
        golden.graph,
        node,
        [_gathered(golden, samples, n, d, rows) for n, d in zip(node.inputs, inputs)],
    )
    return _differing(golden, samples, node.output, rows, values)


def _gemm_layer(
    golden: Golden,
    node: Node,
    samples: np.ndarray,
    table: FaultTable,
    pe_rows: np.ndarray,
    sram_injections: np.ndarray,
    dirty_in: DirtyRows,
    stats: ShortcutCounts,
    channels: np.ndarray | None,
) -> DirtyRows:
    """A conv2d/linear layer for every injection it concerns: faults here or a dirty input.

    ``pe_rows``: the table's PE faults in this layer; ``sram_injections``: the injections with
    SRAM faults in it; ``channels``: protected output channels (the redundant units' values,
    fault-free from the operands the array read, overwrite the array's).
    """
    owner = table.injection[pe_rows]
    parts = []
    if len(sram_injections):
        parts.append(
            _sram_layer(golden, node, samples, table, sram_injections, dirty_in, stats, channels)
        )
        keep = ~np.isin(owner, sram_injections)
        pe_rows, owner = pe_rows[keep], owner[keep]
        dirty_in = _without(dirty_in, sram_injections)
    clean = ~np.isin(owner, dirty_in.injections)
    if clean.any():
        rows = pe_rows[clean]
        parts.append(
            _clean_layer(
                golden,
                node,
                samples,
                owner[clean],
                table.fold[rows],
                table.kernel_rows(rows),
                stats,
                channels,
            )
        )
    if len(dirty_in):
        rows = pe_rows[~clean]
        parts.append(
            _dirty_layer(
                golden,
                node,
                samples,
                dirty_in,
                owner[~clean],
                table.fold[rows],
                table.kernel_rows(rows),
                stats,
                channels,
            )
        )
    return _joined(parts)


def _clean_layer(
    golden: Golden,
    node: Node,
    samples: np.ndarray,
    owner: np.ndarray,
    fold: np.ndarray,
    faults: np.ndarray,
    stats: ShortcutCounts,
    channels: np.ndarray | None,
) -> DirtyRows:
    """The layer for injections with PE faults here and a fault-free input: each live fault's
    output tile recomputed along its k-chain from the golden operands, all tiles of the layer
    in one Numba call (:mod:`faults.tile_kernels`); the one-tile-per-iteration
    :func:`faults.inject.faulty_layer_outputs` where the stacked operands would not fit."""
    a = golden.stacked_inputs(node)
    if a is None:
        one_by_one = [InjectionStats() for _ in range(len(stats))]
        outs, injections = faulty_layer_outputs(
            golden, node, samples, owner, fold, faults, one_by_one, channels
        )
        for i in np.unique(owner).tolist():
            stats.absorb(i, one_by_one[i])
        if not injections:
            return DirtyRows.none()
        return DirtyRows(np.array(injections, dtype=np.int64), np.concatenate(outs))
    live = _live(golden, node, owner, fold, faults, stats)
    if not live.any():
        return DirtyRows.none()
    owner, tile, chain_rows, starts, ends = fault_tile_groups(
        golden.folds(node.name), owner[live], fold[live], faults[live]
    )
    starts, ends = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)
    group_owner = owner[starts]
    injections, group_row = np.unique(group_owner, return_inverse=True)
    group_row = group_row.reshape(-1)
    stats.tiles_recomputed[injections] += np.bincount(group_row)
    reference = golden.values[node.output][samples[injections]]
    values = reference.copy()
    _tiles_into(
        golden,
        node,
        a,
        values,
        group_row,
        samples[group_owner],
        tile[starts],
        starts,
        ends,
        chain_rows,
    )
    if channels is not None and len(channels):
        values[:, channels] = reference[:, channels]  # the redundant units' fault-free values
    return _differing(golden, samples, node.output, injections, values, reference)


def _tiles_into(
    golden: Golden,
    node: Node,
    a: np.ndarray,
    values: np.ndarray,
    group_row: np.ndarray,
    group_sample: np.ndarray,
    group_tile: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    chain_rows: np.ndarray,
) -> None:
    """Overwrite, in ``values`` (batch-1 outputs stacked, C-contiguous), each group's tile
    with its faulty k-chain's requantised values (:func:`recompute_tile_groups`)."""
    single = golden.schedules[node.name].shape
    folds = golden.folds(node.name)
    w, bias = golden.stacked_weights(node)
    chain_bounds, chain_offsets = golden.chain_table(node.name)
    multiplier, shift, requant = requantization(node)
    recompute_tile_groups(
        golden.pe(node.name).kernel,
        a,
        w,
        bias,
        single.M,
        single.N,
        folds.tiles,
        chain_bounds,
        chain_offsets,
        group_row.astype(np.int64),
        group_sample.astype(np.int64),
        group_tile.astype(np.int64),
        starts,
        ends,
        chain_rows,
        multiplier.astype(np.int64),
        shift.astype(np.int64),
        *requant,
        values.reshape(len(values), -1),
    )


def _without(dirty: DirtyRows, injections: np.ndarray) -> DirtyRows:
    keep = ~np.isin(dirty.injections, injections)
    return DirtyRows(dirty.injections[keep], dirty.values[keep])


def _sram_layer(
    golden: Golden,
    node: Node,
    samples: np.ndarray,
    table: FaultTable,
    injections: np.ndarray,
    dirty_in: DirtyRows,
    stats: ShortcutCounts,
    channels: np.ndarray | None,
) -> DirtyRows:
    """The layer for each injection with SRAM faults in it, one at a time (its PE faults in
    the layer applied too, ordered as :func:`faults.fault.inference_faults` orders them)."""
    dirty_at = {int(i): j for j, i in enumerate(dirty_in.injections.tolist())}
    values = []
    for i in injections.tolist():
        sample = int(samples[i])
        here = [f for f in table.faults(i, sample=sample) if f.layer == node.name]
        x = dirty_in.values[dirty_at[i] : dirty_at[i] + 1] if i in dirty_at else None
        one = InjectionStats(layers_recomputed=int(x is not None))
        values.append(
            sram_faulty_layer(
                golden,
                node,
                sample,
                [f for f in here if f.is_sram],
                one,
                pe_faults=inference_faults([f for f in here if not f.is_sram]).get(node.name),
                x=x,
                channels=channels,
            )
        )
        stats.absorb(i, one)
    return _differing(golden, samples, node.output, injections, np.concatenate(values))


def _dirty_layer(
    golden: Golden,
    node: Node,
    samples: np.ndarray,
    dirty_in: DirtyRows,
    owner: np.ndarray,
    fold: np.ndarray,
    faults: np.ndarray,
    stats: ShortcutCounts,
    channels: np.ndarray | None,
) -> DirtyRows:
    """The layer for the injections whose input differs from the golden run.

    Their fault-free values come from one lowering and one GEMM call for all of them; an
    injection with PE faults here (rows ``faults``, folds ``fold``, injections ``owner``,
    each in ``dirty_in``) then has each live fault's output tile recomputed along its k-chain
    on its own lowered operands — what running every fold with the faults gives, since the
    other tiles are fault-free.
    """
    rows = dirty_in.injections
    stats.layers_recomputed[rows] += 1
    shape = gemm_shape(golden.graph, node, len(rows))
    # A in int64 only if a live fault here needs it: the fault-free GEMM lowers to float32
    ops = lower_operands(node, dirty_in.values, shape, lazy_a=True)
    compute_fault_free(shape, ops)
    values = gemm_output(node, ops, shape)
    if len(owner) == 0:
        return _differing(golden, samples, node.output, rows, values)
    live = _live(golden, node, owner, fold, faults, stats)
    if live.any():
        fault_free = values.copy() if channels is not None and len(channels) else None
        _recompute_tiles(golden, node, ops, values, rows, owner[live], fold[live], faults[live])
        if fault_free is not None:
            values[:, channels] = fault_free[:, channels]
    return _differing(golden, samples, node.output, rows, values)


def _recompute_tiles(
    golden: Golden,
    node: Node,
    ops,
    values: np.ndarray,
    rows: np.ndarray,
    owner: np.ndarray,
    fold: np.ndarray,
    faults: np.ndarray,
) -> None:
    """Overwrite, in ``values`` (the layer's output for injections ``rows``, lowered as
    ``ops``), the output tiles holding live faults with their faulty k-chains' values."""
    owner, tile, chain_rows, starts, ends = fault_tile_groups(
        golden.folds(node.name), owner, fold, faults
    )
    starts, ends = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)
    position = np.searchsorted(rows, owner[starts])  # injection -> its row of ``values``
    a = ops.a[0][None] if len(ops.a) == 1 else np.stack(ops.a)
    _tiles_into(golden, node, a, values, position, position, tile[starts], starts, ends, chain_rows)
