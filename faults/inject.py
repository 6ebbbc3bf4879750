"""Faulty inferences that recompute only what a fault can reach.

A campaign runs the fault-free inference once (:class:`Golden`) and keeps every tensor of every
sample. A transient fault in a PE register acts inside one fold of one layer of one sample, so
its faulty inference:

1. drops faults that provably cannot change an output (the register is idle, or overwritten
   before it is read: ``mapping.affected_outputs``) — counted as *masked early*;
2. re-runs only the k-chain of the output tile the fault sits in (the folds that accumulate
   into that tile, from the bias on), with the fault applied inside the Numba kernel, starting
   from the layer's cached fault-free operands and partial sums;
3. requantises; if the layer's output equals the golden one the fault was masked and nothing
   more is computed, otherwise the later layers are recomputed for that sample only.

SRAM faults (``sram:input`` / ``sram:weight`` / ``sram:output``, model in :mod:`faults.sram`)
change buffer words rather than PE registers: the layer's output tiles whose folds read a
flipped word are recomputed fold by fold with the flipped operands or psums, then the later
layers as above.

Campaigns simulate each sample as its own inference (batch 1, a latency-oriented accelerator),
so fold numbering and exposure are those of the batch-1 schedule.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from accelsim import executor, functional, mapping
from accelsim.codes import (
    FAULT_COL,
    FAULT_CYCLE,
    FAULT_KIND,
    FAULT_MASK,
    FAULT_REGISTER,
    FAULT_ROW,
    FAULT_ROW_WIDTH,
    FLIP,
)
from accelsim.config import AcceleratorConfig
from accelsim.datapath import (
    GemmOperands,
    compute_fault_free,
    gemm_output,
    hardened_masks,
    lower_operands,
    tile_key,
    weight_matrices,
)
from accelsim.intmath import requantize
from accelsim.ir import Graph, Node
from accelsim.kernels import chain_values, prepare_weights
from accelsim.ops import GEMM_OPS
from accelsim.pe_spec import PESpec
from accelsim.schedule import LayerSchedule, gemm_shape, schedule_layer

from .fault import Fault
from .sram import layer_effects, lowered_index, recompute_psums
from .tile_kernels import chain_table

LayerFaults = Mapping[int, np.ndarray]  # fold index -> kernel fault rows (F, FAULT_ROW_WIDTH)
InferenceFaults = Mapping[str, LayerFaults]  # layer name -> its faults


@dataclass
class InjectionStats:
    """What the shortcuts saved, so that benchmarks and reports can show it."""

    faults: int = 0
    masked_early: int = 0  # dropped without computing: could not reach any output
    tiles_recomputed: int = 0
    layers_recomputed: int = 0  # later layers re-run because a fault got through

    def merge(self, other: InjectionStats) -> None:
        self.faults += other.faults
        self.masked_early += other.masked_early
        self.tiles_recomputed += other.tiles_recomputed
        self.layers_recomputed += other.layers_recomputed


@dataclass
class Golden:
    """The fault-free run of every campaign sample, and the caches faulty runs start from."""

    graph: Graph
    accel: AcceleratorConfig
    values: dict[str, np.ndarray]  # every tensor, leading axis = sample
    schedules: dict[str, LayerSchedule]  # batch-1 schedule of each GEMM layer
    cache_bytes: int = 512 * 2**20  # lowered operands kept per (layer, sample), LRU
    _operands: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _cached_bytes: int = field(default=0, repr=False)
    _input_index: dict = field(default_factory=dict, repr=False)
    _fold_tables: dict = field(default_factory=dict, repr=False)
    _pe_specs: dict = field(default_factory=dict, repr=False)
    _stacked: dict = field(default_factory=dict, repr=False)
    _stacked_bytes: int = field(default=0, repr=False)

    def __getstate__(self) -> dict:
        # what a worker receives: the run, not the caches (rebuilt there on first use), so a
        # pool or a Dask cluster is not sent the lowered operands of every layer
        state = dict(self.__dict__)
        state.update(_operands=OrderedDict(), _cached_bytes=0, _stacked={}, _stacked_bytes=0)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def samples(self) -> int:
        return int(self.values[self.graph.input].shape[0])

    @property
    def outputs(self) -> np.ndarray:
        return self.values[self.graph.output]

    def tensor(self, name: str, sample: int) -> np.ndarray:
        return self.values[name][sample : sample + 1]

    def operands(self, node: Node, sample: int) -> GemmOperands:
        """The layer's lowered operands and final fault-free partial sums (LRU cached)."""
        key = (node.name, sample)
        ops = self._operands.get(key)
        if ops is not None:
            self._operands.move_to_end(key)
            return ops
        shape = self.schedules[node.name].shape
        ops = lower_operands(node, self.tensor(node.inputs[0], sample), shape)
        # the fault-free psums do not depend on the tiling: one GEMM call, not fold by fold
        compute_fault_free(shape, ops)
        self._operands[key] = ops
        self._cached_bytes += _nbytes(ops)
        while self._cached_bytes > self.cache_bytes and len(self._operands) > 1:
            _, evicted = self._operands.popitem(last=False)
            self._cached_bytes -= _nbytes(evicted)
        return ops

    def folds(self, layer: str) -> LayerFolds:
        """The layer's folds and output-tile k-chains as arrays (built once)."""
        folds = self._fold_tables.get(layer)
        if folds is None:
            folds = self._fold_tables[layer] = LayerFolds.of(self.schedules[layer])
        return folds

    def pe(self, layer: str) -> PESpec:
        """The array as the kernels see it for ``layer`` (built once)."""
        spec = self._pe_specs.get(layer)
        if spec is None:
            shape = self.schedules[layer].shape
            spec = self._pe_specs[layer] = PESpec.for_layer(self.accel.array, shape)
        return spec

    def chain_table(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """Every output tile's k-chain as one array and each tile's range in it (built once)."""
        key = ("chains", layer)
        if key not in self._stacked:
            self._stacked[key] = chain_table(self.folds(layer).chains)
        return self._stacked[key]

    def stacked_weights(self, node: Node) -> tuple[np.ndarray, np.ndarray]:
        """The layer's weights ``(G, K, N)`` and biases ``(G, N)`` per group, for Numba."""
        key = ("weights", node.name)
        if key not in self._stacked:
            w = weight_matrices(node)
            n = self.schedules[node.name].shape.N
            bias = node.params["bias"].astype(np.int64).reshape(len(w), n)
            self._stacked[key] = (np.stack(w), np.ascontiguousarray(bias))
        return self._stacked[key]

    def stacked_inputs(self, node: Node) -> np.ndarray | None:
        """Every sample's lowered A of the layer as one ``(G, samples*M, K)`` array (sample
        ``s`` in rows ``[s*M, (s+1)*M)``), built once; None once the stacked layers would
        take more than half of ``cache_bytes`` (the per-sample operands serve those, one at a
        time)."""
        key = ("inputs", node.name)
        if key not in self._stacked:
            shape = self.schedules[node.name].shape
            nbytes = 8 * shape.groups * self.samples * shape.M * shape.K
            stacked = None
            if self._stacked_bytes + nbytes <= self.cache_bytes // 2:
                x = self.values[node.inputs[0]]
                ops = lower_operands(node, x, gemm_shape(self.graph, node, self.samples))
                stacked = ops.a[0][None] if len(ops.a) == 1 else np.stack(ops.a)
                self._stacked_bytes += nbytes
            self._stacked[key] = stacked
        return self._stacked[key]

    def input_index(self, node: Node) -> list[np.ndarray]:
        """Per group, which input element (address + 1, 0 = padding) each A entry holds."""
        index = self._input_index.get(node.name)
        if index is None:
            index = self._input_index[node.name] = lowered_index(node, self.schedules[node.name])
        return index


def _nbytes(ops: GemmOperands) -> int:
    arrays = (*ops.a, *ops.psum, *ops.bias)  # the weights are shared, not per sample
    return sum(a.nbytes for a in arrays)


@dataclass(frozen=True)
class LayerFolds:
    """A layer's folds as arrays, and the k-chain of every output tile, for Numba."""

    dims: np.ndarray  # (folds, 3) Mt, Kt, Nt
    tile: np.ndarray  # (folds,) output tile id
    position: np.ndarray  # (folds,) place of the fold in its tile's k-chain
    tiles: np.ndarray  # (tiles, 5) group, m0, m1, n0, n1
    chains: tuple[np.ndarray, ...]  # per tile: (links, 2) k0, k1 in ascending k

    @classmethod
    def of(cls, sched: LayerSchedule) -> LayerFolds:
        folds = sched.folds
        keys: dict[tuple[int, ...], int] = {}
        tile = np.array([keys.setdefault(tile_key(f), len(keys)) for f in folds], dtype=np.int64)
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
        return cls(
            dims=np.array(
                [(f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0) for f in folds], dtype=np.int64
            ).reshape(-1, 3),
            tile=tile,
            position=position,
            tiles=np.array(list(keys), dtype=np.int64).reshape(-1, 5),
            chains=tuple(chains),
        )


def golden_run(graph: Graph, accel: AcceleratorConfig, inputs: np.ndarray) -> Golden:
    """Run every sample fault-free through the array's kernels and keep every tensor."""
    values = functional.forward(graph, np.asarray(inputs, dtype=np.int64), accel)
    schedules = {
        node.name: schedule_layer(graph, node, accel, batch=1)
        for node in graph.nodes
        if node.op in GEMM_OPS
    }
    golden = Golden(graph=graph, accel=accel, values=values, schedules=schedules)
    for node in graph.layers():  # what faulty tiles and later layers need, built once now
        golden.stacked_inputs(node)
        golden.stacked_weights(node)
        for w in weight_matrices(node):
            prepare_weights(w)
    return golden


@njit(cache=True)
def _reaches_output(pe, dims, faults):
    """Per fault row: can it change an output? (stuck-at faults always may)."""
    live = np.ones(faults.shape[0], dtype=np.bool_)
    for i in range(faults.shape[0]):
        f = faults[i]
        if f[FAULT_MASK] == 0:
            live[i] = False  # every bit it hits is hardened
        elif f[FAULT_KIND] == FLIP:
            m0, m1, n0, n1 = mapping.affected_box(
                pe,
                f[FAULT_REGISTER],
                f[FAULT_ROW],
                f[FAULT_COL],
                f[FAULT_CYCLE],
                dims[i, 0],
                dims[i, 1],
                dims[i, 2],
                f[FAULT_KIND],
            )
            live[i] = m0 < m1 and n0 < n1
    return live


def reaches_output(golden: Golden, layer: str, fold: np.ndarray, faults: np.ndarray) -> np.ndarray:
    """Per kernel row of ``faults`` (PE faults of ``layer`` in folds ``fold``): can it change
    an output? Hardened bits are removed first, in place; a fault left with no bit, or whose
    flip reaches no output of its fold (``mapping.affected_box`` empty), is masked early."""
    hardened = hardened_masks(golden.accel.protection.hardened_bits)
    faults[:, FAULT_MASK] &= ~hardened[faults[:, FAULT_REGISTER]]
    dims = golden.folds(layer).dims[fold]
    return _reaches_output(golden.pe(layer).kernel, dims, faults)


def live_faults(
    golden: Golden,
    node: Node,
    owner: np.ndarray,
    fold: np.ndarray,
    faults: np.ndarray,
    stats: Sequence[InjectionStats],
) -> np.ndarray:
    """Which kernel rows ``faults`` of one layer (folds ``fold``, injections ``owner``) can
    change an output, once the hardened bits are removed (in place); the others are counted
    as masked early in their injection's ``stats``."""
    live = reaches_output(golden, node.name, fold, faults)
    counts = np.bincount(owner, minlength=len(stats))
    dropped = np.bincount(owner[~live], minlength=len(stats))
    for i in np.flatnonzero(counts):
        stats[i].faults += int(counts[i])
        stats[i].masked_early += int(dropped[i])
    return live


def reachable_faults(
    golden: Golden, node: Node, faults: LayerFaults, stats: InjectionStats
) -> dict[int, np.ndarray]:
    """The faults of one layer that can change an output (hardened bits removed)."""
    per_fold = [
        np.asarray(rows, dtype=np.int64).reshape(-1, FAULT_ROW_WIDTH) for rows in faults.values()
    ]
    if not per_fold:
        return {}
    rows = np.concatenate(per_fold)
    fold = np.repeat(np.array(list(faults), dtype=np.int64), [len(r) for r in per_fold])
    live = live_faults(golden, node, np.zeros(len(rows), dtype=np.int64), fold, rows, [stats])
    return {int(f): rows[live & (fold == f)] for f in np.unique(fold[live])}


def faulty_layer_outputs(
    golden: Golden,
    node: Node,
    samples: np.ndarray,
    owner: np.ndarray,
    fold: np.ndarray,
    faults: np.ndarray,
    stats: Sequence[InjectionStats],
    channels: np.ndarray | None = None,
) -> tuple[list[np.ndarray], list[int]]:
    """Layer outputs of several injections whose faults all sit in this layer, input golden.

    Fault row ``j`` (kernel row ``faults[j]`` in fold ``fold[j]``) belongs to injection
    ``owner[j]``, which runs on sample ``samples[owner[j]]`` and counts into
    ``stats[owner[j]]``. Each output tile holding a live fault is recomputed along its k-chain
    with one Numba call and requantised; ``channels`` (protected neurons) are restored from
    the golden run. Returns the outputs (batch-1 tensors) that differ from the golden run and
    their injections.
    """
    faults = np.array(faults, dtype=np.int64).reshape(-1, FAULT_ROW_WIDTH)
    live = live_faults(golden, node, owner, fold, faults, stats)
    owner, fold, faults = owner[live], fold[live], faults[live]
    outs: list[np.ndarray] = []
    injections: list[int] = []
    if len(owner) == 0:
        return outs, injections
    shape = golden.schedules[node.name].shape
    pe = golden.pe(node.name)
    folds = golden.folds(node.name)
    owner, tile, with_position, starts, ends = fault_tile_groups(folds, owner, fold, faults)
    multiplier, shift, requant = requantization(node)

    def keep(out: np.ndarray | None, injection: int) -> None:
        if out is None:
            return
        if channels is not None and len(channels):
            out[:, channels] = golden_out[:, channels]  # the redundant units' fault-free values
            if np.array_equal(out, golden_out):
                return
        outs.append(out)
        injections.append(injection)

    out, current = None, -1
    for start, end in zip(starts, ends):
        i = int(owner[start])
        if i != current:
            keep(out, current)
            current, out = i, None
            ops = golden.operands(node, int(samples[i]))
            golden_out = golden.tensor(node.output, int(samples[i]))
        t = int(tile[start])
        g, m0, m1, n0, n1 = folds.tiles[t].tolist()
        psum = chain_values(
            pe,
            ops.a[g],
            ops.w[g],
            ops.bias[g],
            m0,
            m1,
            n0,
            n1,
            folds.chains[t],
            with_position[start:end],
        )
        stats[i].tiles_recomputed += 1
        channel = slice(g * shape.N + n0, g * shape.N + n1)
        values, differs = requantize_tile(
            psum,
            multiplier[channel],
            shift[channel],
            *requant,
            tile_view(golden_out, node.op, m0, m1, channel),
        )
        if differs:
            if out is None:
                out = golden_out.copy()
            tile_view(out, node.op, m0, m1, channel)[...] = values
    keep(out, current)
    return outs, injections


def fault_tile_groups(
    folds: LayerFolds, owner: np.ndarray, fold: np.ndarray, faults: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], list[int]]:
    """Live fault rows of one layer grouped per (injection, output tile): one Numba call
    (``kernels.chain_values``) recomputes each group's k-chain.

    Returns ``owner``, ``tile`` and the chain rows ``[position, *fault row]`` sorted by
    (injection, tile) — stable, so a tile's faults keep their order — and each group's
    ``[start, end)`` in them.
    """
    tile = folds.tile[fold]
    with_position = np.concatenate([folds.position[fold][:, None], faults], axis=1)
    order = np.lexsort((tile, owner))
    owner, tile, with_position = owner[order], tile[order], with_position[order]
    starts = np.flatnonzero(np.r_[True, (owner[1:] != owner[:-1]) | (tile[1:] != tile[:-1])])
    ends = np.r_[starts[1:], len(owner)]
    return owner, tile, with_position, starts.tolist(), ends.tolist()


def requantization(node: Node) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """A GEMM layer's output stage: per-channel multiplier and shift, (zero point, lo, hi)."""
    attrs = node.attrs
    requant = (int(attrs["out_zero_point"]), int(attrs["out_lo"]), int(attrs["out_hi"]))
    return node.params["multiplier"], node.params["shift"], requant


@njit(cache=True)
def requantize_tile(psum, multiplier, shift, zero_point, lo, hi, reference):
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


def tile_view(out: np.ndarray, op: str, m0: int, m1: int, channel: slice) -> np.ndarray:
    """Where GEMM tile rows ``[m0, m1)`` x ``channel`` sit in a batch-1 output tensor.

    GEMM rows are output pixels (h, w) in raster order, columns output channels.
    """
    if op == "linear":
        return out[m0:m1, channel]
    flat = out.reshape(out.shape[1], -1)  # (C, H*W), a view of a contiguous tensor
    return flat[channel, m0:m1].T


def faulty_layer_from_golden(
    golden: Golden,
    node: Node,
    sample: int,
    faults: LayerFaults,
    stats: InjectionStats,
    channels: np.ndarray | None = None,
) -> np.ndarray | None:
    """The layer's output under ``faults`` when its input is fault-free; None if masked."""
    per_fold = [
        np.asarray(rows, dtype=np.int64).reshape(-1, FAULT_ROW_WIDTH) for rows in faults.values()
    ]
    if not per_fold:
        return None
    rows = np.concatenate(per_fold)
    fold = np.repeat(np.array(list(faults), dtype=np.int64), [len(r) for r in per_fold])
    outs, _ = faulty_layer_outputs(
        golden,
        node,
        np.array([sample]),
        np.zeros(len(rows), dtype=np.int64),
        fold,
        rows,
        [stats],
        channels,
    )
    return outs[0] if outs else None


def sram_faulty_layer(
    golden: Golden,
    node: Node,
    sample: int,
    sram: Sequence[Fault],
    stats: InjectionStats,
    *,
    pe_faults: LayerFaults | None = None,
    x: np.ndarray | None = None,
    channels: np.ndarray | None = None,
) -> np.ndarray:
    """The layer's output under its SRAM faults ``sram`` (and PE faults ``pe_faults``).

    ``x``: the layer's input when it differs from the golden run (None: golden, and the cached
    fault-free psums are the starting point). ``channels``: protected output channels (see
    :mod:`faults.sram`: the redundant units read the same operand words, and overwrite the
    output-buffer psums of those channels).
    """
    sched = golden.schedules[node.name]
    accel = golden.accel
    pe = golden.pe(node.name)
    effects = layer_effects(node, sched, sram, golden.input_index(node))
    stats.faults += len(sram)
    stats.masked_early += effects.masked
    live = reachable_faults(golden, node, pe_faults or {}, stats)
    if x is None:
        ops = golden.operands(node, sample)
        pe_tiles = {tile_key(sched.folds[index]) for index in live}
    else:  # a dirty input: every tile differs already; PE faults act in the full run
        ops = lower_operands(node, x, sched.shape)
        functional.run_folds(node, sched, ops, accel, live)
        pe_tiles = set()
    psum, tiles = recompute_psums(
        sched,
        pe,
        ops,
        effects,
        pe_faults=live,
        extra_tiles=pe_tiles,
    )
    stats.tiles_recomputed += tiles
    out = gemm_output(node, ops.with_psum(psum), sched.shape)
    if channels is not None and len(channels):
        clean = ops
        if x is not None:  # the redundant units see the operands, not the array's PE faults
            clean = lower_operands(node, x, sched.shape)
            functional.run_folds(node, sched, clean, accel)
        psum, _ = recompute_psums(sched, pe, clean, effects, psum_flips=False)
        out[:, channels] = gemm_output(node, ops.with_psum(psum), sched.shape)[:, channels]
    return out


def _sram_by_layer(golden: Golden, sram: Sequence[Fault]) -> dict[str, list[Fault]]:
    by_layer: dict[str, list[Fault]] = {}
    for fault in sram:
        if not fault.is_sram:
            raise ValueError(f"{fault.register} is a PE register: pass it as kernel rows")
        if fault.layer not in golden.schedules:
            raise ValueError(f"SRAM fault in {fault.layer!r}, not a conv2d/linear layer")
        by_layer.setdefault(fault.layer, []).append(fault)
    return by_layer


def faulty_inference(
    golden: Golden,
    sample: int,
    faults: InferenceFaults,
    stats: InjectionStats | None = None,
    *,
    protected: Mapping[str, np.ndarray] | None = None,
    sram: Sequence[Fault] = (),
) -> np.ndarray:
    """The network output of ``sample`` (shape (1, ...)) with ``faults`` injected.

    ``faults``: PE faults as kernel rows per layer and fold (:func:`faults.fault.inference_faults`).
    ``sram``: buffer-word faults (:mod:`faults.sram`), applied to ``sample`` whatever their
    ``sample`` field says (as for the kernel rows). ``protected``: output channels per layer
    that the redundant units recompute fault-free from the operands the array read,
    overwriting the array's values (architecture layer).
    """
    stats = stats if stats is not None else InjectionStats()
    protected = protected or {}
    sram_faults = _sram_by_layer(golden, sram)
    graph = golden.graph
    changed: dict[str, np.ndarray] = {}  # only tensors that differ from the golden run
    for node in graph.nodes:
        layer_faults = faults.get(node.name)
        layer_sram = sram_faults.get(node.name)
        dirty = any(name in changed for name in node.inputs)
        if not dirty and not layer_faults and not layer_sram:
            continue
        channels = protected.get(node.name)
        if layer_sram:
            x = changed.get(node.inputs[0]) if dirty else None
            stats.layers_recomputed += dirty
            out = sram_faulty_layer(
                golden,
                node,
                sample,
                layer_sram,
                stats,
                pe_faults=layer_faults,
                x=x,
                channels=channels,
            )
            if not np.array_equal(out, golden.tensor(node.output, sample)):
                changed[node.output] = out
            continue
        if node.op in GEMM_OPS and not dirty:
            out = faulty_layer_from_golden(golden, node, sample, layer_faults, stats, channels)
            if out is not None:
                changed[node.output] = out
            continue
        inputs = [changed.get(name, golden.tensor(name, sample)) for name in node.inputs]
        stats.layers_recomputed += 1
        if node.op in GEMM_OPS:
            live = reachable_faults(golden, node, layer_faults or {}, stats)
            sched = golden.schedules[node.name]
            out = functional.run_layer(graph, node, inputs[0], golden.accel, live, sched=sched)
            if channels is not None and len(channels):
                clean = functional.run_layer(graph, node, inputs[0], golden.accel, sched=sched)
                out[:, channels] = clean[:, channels]
        else:
            out = executor.run_node(graph, node, inputs)
        if not np.array_equal(out, golden.tensor(node.output, sample)):
            changed[node.output] = out
    return changed.get(graph.output, golden.tensor(graph.output, sample))


def full_faulty_inference(
    golden: Golden, sample: int, faults: InferenceFaults, sram: Sequence[Fault] = ()
) -> np.ndarray:
    """The same result the slow way: every layer of the sample re-run with its faults.

    The oracle for :func:`faulty_inference` in tests and the baseline in benchmarks. A layer
    with SRAM faults is run in full and then recomputed from its (possibly faulty) input.
    """
    graph = golden.graph
    sram_faults = _sram_by_layer(golden, sram)
    values = {graph.input: golden.tensor(graph.input, sample)}
    for node in graph.nodes:
        inputs = [values[name] for name in node.inputs]
        if node.name in sram_faults:
            values[node.output] = sram_faulty_layer(
                golden,
                node,
                sample,
                sram_faults[node.name],
                InjectionStats(),
                pe_faults=faults.get(node.name),
                x=inputs[0],
            )
        elif node.op in GEMM_OPS:
            values[node.output] = functional.run_layer(
                graph,
                node,
                inputs[0],
                golden.accel,
                faults.get(node.name),
                sched=golden.schedules[node.name],
            )
        else:
            values[node.output] = executor.run_node(graph, node, inputs)
    return values[graph.output]
