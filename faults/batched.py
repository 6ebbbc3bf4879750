"""Many faulty inferences at once: the campaign's fast path.

:func:`faults.inject.faulty_inference` handles any plan, one inference per call, and pays
about half a millisecond of Python per injection. Most injections of a campaign are simpler:
their PE faults all sit in one layer (always so for single-fault vulnerability studies, and
for most rate-drawn plans). For a batch of such injections :func:`faulty_outputs`

1. hardens and drops the faults that provably cannot reach an output (one vectorised
   Numba pass over the whole batch: ``mapping.affected_box``), counted as masked early;
2. recomputes each remaining fault's output tile with one Numba call
   (``kernels.chain_values``: the tile's k-chain from the bias, faults inside the fold
   kernel) and requantises just that tile; a tile equal to the golden one is masked;
3. sends every injection whose layer output changed through the later layers *together*:
   the rows of a batch are different samples, each fault-free after its faulty layer, so one
   batched fault-free pass per layer serves them all.

Injections with SRAM faults or faults in several layers take the general path. Results are
identical to :func:`faults.inject.faulty_inference` injection by injection (tested), down to
the :class:`faults.inject.InjectionStats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numba import njit

from accelsim import executor, functional, mapping
from accelsim.hw.accelerator import GEMM_OPS
from accelsim.hw.pe_array import hardened_masks
from accelsim.intmath import OVERFLOW_RULES, requantize
from accelsim.kernels import chain_values

from .inject import FLIP, Golden, InjectionStats, faulty_inference
from .plan import PE_REGISTERS, FaultTable, inference_faults

MASK, KIND = 4, 5  # kernel fault row columns: [class, row, col, cycle, mask, kind]


@dataclass(frozen=True)
class LayerFolds:
    """A layer's folds as arrays, and the k-chain of every output tile, for Numba."""

    dims: np.ndarray  # (folds, 3) Mt, Kt, Nt
    tile: np.ndarray  # (folds,) output tile id
    position: np.ndarray  # (folds,) place of the fold in its tile's k-chain
    tiles: np.ndarray  # (tiles, 5) group, m0, m1, n0, n1
    chains: tuple[np.ndarray, ...]  # per tile: (links, 2) k0, k1 in ascending k

    @classmethod
    def of(cls, golden: Golden, layer: str) -> LayerFolds:
        cache = golden._fold_tables
        table = cache.get(layer)
        if table is None:
            folds = golden.schedules[layer].folds
            keys: dict[tuple[int, ...], int] = {}
            tile = np.array([keys.setdefault((f.group, f.m0, f.m1, f.n0, f.n1), len(keys))
                             for f in folds], dtype=np.int64)  # fmt: skip
            links: list[list[tuple[int, int, int]]] = [[] for _ in keys]
            for f in folds:
                links[tile[f.index]].append((f.k0, f.k1, f.index))
            position = np.zeros(len(folds), dtype=np.int64)
            chains = []
            for chain in links:
                chain.sort()
                for place, (_, _, index) in enumerate(chain):
                    position[index] = place
                chains.append(np.array([(k0, k1) for k0, k1, _ in chain], dtype=np.int64))
            table = cache[layer] = cls(
                dims=np.array([(f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0) for f in folds],
                              dtype=np.int64).reshape(-1, 3),
                tile=tile,
                position=position,
                tiles=np.array(list(keys), dtype=np.int64).reshape(-1, 5),
                chains=tuple(chains),
            )  # fmt: skip
        return table


@njit(cache=True)
def _reaches_output(dataflow, rows, cols, dims, faults):
    """Per fault row: can it change an output? (stuck-at faults always may)."""
    live = np.ones(faults.shape[0], dtype=np.bool_)
    for i in range(faults.shape[0]):
        if faults[i, MASK] == 0:
            live[i] = False  # every bit it hits is hardened
        elif faults[i, KIND] == FLIP:
            m0, m1, n0, n1 = mapping.affected_box(
                dataflow, faults[i, 0], faults[i, 1], faults[i, 2], faults[i, 3],
                dims[i, 0], dims[i, 1], dims[i, 2], rows, cols, faults[i, KIND],
            )  # fmt: skip
            live[i] = m0 < m1 and n0 < n1
    return live


def fast_path(table: FaultTable, golden: Golden, batch: int) -> np.ndarray:
    """Which injections :func:`faulty_outputs` computes batched: PE faults in one layer only."""
    fast = np.ones(batch, dtype=bool)
    if len(table) == 0:
        return fast
    sram = table.register >= len(PE_REGISTERS)
    fast[table.injection[sram]] = False
    first = np.full(batch, -1, dtype=np.int64)
    first[table.injection[::-1]] = table.layer[::-1]  # each injection's first fault's layer
    fast[table.injection[table.layer != first[table.injection]]] = False
    return fast


def faulty_outputs(golden: Golden, samples: np.ndarray, table: FaultTable, *,
                   protected: Mapping[str, np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, list[InjectionStats]]:  # fmt: skip
    """Network outputs ``(B, ...)`` of injections ``0..B-1`` (sample ``samples[i]``, faults
    the rows of ``table`` with ``injection == i``) and what each one's shortcuts saved."""
    samples = np.asarray(samples, dtype=np.int64)
    batch = len(samples)
    protected = protected or {}
    graph = golden.graph
    outputs = golden.values[graph.output][samples].copy()
    stats = [InjectionStats() for _ in range(batch)]
    fast = fast_path(table, golden, batch)
    for i in np.flatnonzero(~fast):  # the general path, one inference at a time
        faults = table.faults(int(i), sample=int(samples[i]))
        pe = [f for f in faults if not f.is_sram]
        sram = [f for f in faults if f.is_sram]
        outputs[i] = faulty_inference(golden, int(samples[i]), inference_faults(pe), stats[i],
                                      protected=protected, sram=sram)[0]  # fmt: skip
    selected = fast[table.injection]
    for layer_id in np.unique(table.layer[selected]):
        rows = np.flatnonzero(selected & (table.layer == layer_id))
        name = table.layer_names[int(layer_id)]
        changed, injections = _faulty_layer(golden, name, samples, table, rows, stats,
                                            protected.get(name))  # fmt: skip
        if len(injections):
            node = graph.node(name)
            outputs[injections] = propagate(golden, graph.nodes.index(node) + 1,
                                            samples[injections], node.output, changed,
                                            [stats[i] for i in injections])  # fmt: skip
    return outputs, stats


def _faulty_layer(golden: Golden, name: str, samples: np.ndarray, table: FaultTable,
                  rows: np.ndarray, stats: list[InjectionStats],
                  channels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Layer ``name``'s output for the injections owning fault ``rows`` (input fault-free).

    Returns the outputs that differ from the golden run, stacked, and their injections.
    """
    accel = golden.accel
    node = golden.graph.node(name)
    sched = golden.schedules[name]
    shape = sched.shape
    array = accel.array
    folds = LayerFolds.of(golden, name)
    faults = table.kernel_rows(rows)
    faults[:, MASK] &= ~hardened_masks(accel.protection.hardened_bits)[faults[:, 0]]
    fold = table.fold[rows]
    code = mapping.DATAFLOW_CODES[array.dataflow]
    live = _reaches_output(code, array.rows, array.cols, folds.dims[fold], faults)
    owner = table.injection[rows]
    counts = np.bincount(owner, minlength=len(samples))
    dropped = np.bincount(owner[~live], minlength=len(samples))
    for i in np.flatnonzero(counts):
        stats[i].faults += int(counts[i])
        stats[i].masked_early += int(dropped[i])
    owner, fold, faults = owner[live], fold[live], faults[live]
    if len(owner) == 0:
        return np.zeros((0,)), np.zeros(0, dtype=np.int64)
    tile = folds.tile[fold]
    with_position = np.concatenate([folds.position[fold][:, None], faults], axis=1)
    # one group per (injection, output tile): one Numba call recomputes its k-chain
    order = np.lexsort((tile, owner))
    owner, tile, with_position = owner[order], tile[order], with_position[order]
    starts = np.flatnonzero(np.r_[True, (owner[1:] != owner[:-1]) | (tile[1:] != tile[:-1])])
    ends = np.r_[starts[1:], len(owner)]
    args = (code, array.rows, array.cols, shape.a_bits, shape.a_signed, shape.w_bits,
            shape.acc_bits, OVERFLOW_RULES[shape.overflow])  # fmt: skip
    multiplier, shift = node.params["multiplier"], node.params["shift"]
    attrs = node.attrs
    requant = (int(attrs["out_zero_point"]), int(attrs["out_lo"]), int(attrs["out_hi"]))
    outs, injections = [], []
    out, current = None, -1
    for start, end in zip(starts.tolist(), ends.tolist()):
        i = int(owner[start])
        if i != current:
            _keep(out, current, samples, golden, node, channels, outs, injections)
            current, out = i, None
            ops = golden.operands(node, int(samples[i]))
            golden_out = golden.tensor(node.output, int(samples[i]))
        t = int(tile[start])
        g, m0, m1, n0, n1 = folds.tiles[t].tolist()
        psum = chain_values(*args, ops.a[g], ops.w[g], ops.bias[g], m0, m1, n0, n1,
                            folds.chains[t], with_position[start:end])  # fmt: skip
        stats[i].tiles_recomputed += 1
        channel = slice(g * shape.N + n0, g * shape.N + n1)
        values, differs = _requantize_tile(psum, multiplier[channel], shift[channel], *requant,
                                           _tile_view(golden_out, node.op, m0, m1, channel))  # fmt: skip
        if differs:
            if out is None:
                out = golden_out.copy()
            _tile_view(out, node.op, m0, m1, channel)[...] = values
    _keep(out, current, samples, golden, node, channels, outs, injections)
    if not outs:
        return np.zeros((0,)), np.zeros(0, dtype=np.int64)
    return np.stack(outs), np.array(injections, dtype=np.int64)


def _keep(out, injection, samples, golden, node, channels, outs, injections) -> None:
    """Collect an injection's faulty layer output unless protection restores it entirely."""
    if out is None:
        return
    if channels is not None and len(channels):
        golden_out = golden.tensor(node.output, int(samples[injection]))
        out[:, channels] = golden_out[:, channels]  # the redundant units' fault-free values
        if np.array_equal(out, golden_out):
            return
    outs.append(out[0])
    injections.append(injection)


@njit(cache=True)
def _requantize_tile(psum, multiplier, shift, zero_point, lo, hi, reference):
    """Requantised tile values and whether they differ from ``reference`` (the golden tile)."""
    rows, cols = psum.shape
    values = np.empty((rows, cols), dtype=np.int64)
    differs = False
    for m in range(rows):
        for n in range(cols):
            v = requantize(psum[m, n], multiplier[n], shift[n], zero_point, lo, hi)
            values[m, n] = v
            differs |= v != reference[m, n]
    return values, differs


def _tile_view(out: np.ndarray, op: str, m0: int, m1: int, channel: slice) -> np.ndarray:
    """Where GEMM tile rows ``[m0, m1)`` x ``channel`` sit in a batch-1 output tensor.

    GEMM rows are output pixels (h, w) in raster order, columns output channels.
    """
    if op == "linear":
        return out[m0:m1, channel]
    flat = out.reshape(out.shape[1], -1)  # (C, H*W), a view of a contiguous tensor
    return flat[channel, m0:m1].T


def propagate(golden: Golden, start: int, samples: np.ndarray, name: str, values: np.ndarray,
              stats: list[InjectionStats]) -> np.ndarray:  # fmt: skip
    """The network outputs when tensor ``name`` of samples ``samples`` is ``values``.

    Nodes ``start..`` are fault-free, so each is computed once for every row whose inputs
    differ from the golden run (rows are injections; fault-free arithmetic does not depend
    on the tiling, so no schedule is needed).
    """
    graph = golden.graph
    changed = {name: values}  # full batch, rows equal to golden where not dirty
    dirty = {name: np.ones(len(samples), dtype=bool)}
    for node in graph.nodes[start:]:
        rows = np.zeros(len(samples), dtype=bool)
        for input_name in node.inputs:
            if input_name in dirty:
                rows |= dirty[input_name]
        if not rows.any():
            continue
        picked = np.flatnonzero(rows)
        for i in picked:
            stats[i].layers_recomputed += 1
        inputs = [
            changed[n][picked] if n in changed else golden.values[n][samples[picked]]
            for n in node.inputs
        ]
        if node.op in GEMM_OPS:
            out = functional.run_layer(graph, node, inputs[0], golden.accel)
        else:
            out = executor.run_node(graph, node, inputs)
        reference = golden.values[node.output][samples]
        differs = np.zeros(len(samples), dtype=bool)
        differs[picked] = np.any((out != reference[picked]).reshape(len(picked), -1), axis=1)
        if not differs.any():
            continue
        full = reference.copy()
        full[picked] = out
        changed[node.output] = full
        dirty[node.output] = differs
    output = graph.output
    if output in changed:
        return changed[output]
    return golden.values[output][samples]
