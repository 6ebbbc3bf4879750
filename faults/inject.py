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

from accelsim import executor, functional, mapping
from accelsim.config import AcceleratorConfig
from accelsim.hw.accelerator import GEMM_OPS, gemm_output, lower_operands
from accelsim.hw.controller import GemmOperands
from accelsim.hw.pe_array import compute_fold, harden, hardened_masks
from accelsim.ir import Graph, Node
from accelsim.schedule import FoldJob, LayerSchedule, schedule_layer

from .plan import Fault
from .sram import layer_effects, lowered_index, recompute_psums

FLIP = 0  # kernel fault kind: transient flip (stuck-at faults act for the whole fold)
LayerFaults = Mapping[int, np.ndarray]  # fold index -> kernel fault rows (F, 6)
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
    _chains: dict = field(default_factory=dict, repr=False)
    _input_index: dict = field(default_factory=dict, repr=False)
    _fold_tables: dict = field(default_factory=dict, repr=False)  # faults.batched.LayerFolds

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
        sched = self.schedules[node.name]
        ops = lower_operands(node, self.tensor(node.inputs[0], sample), sched.shape)
        functional.run_folds(node, sched, ops, self.accel)
        self._operands[key] = ops
        self._cached_bytes += _nbytes(ops)
        while self._cached_bytes > self.cache_bytes and len(self._operands) > 1:
            _, evicted = self._operands.popitem(last=False)
            self._cached_bytes -= _nbytes(evicted)
        return ops

    def chain(self, layer: str, fold: FoldJob) -> list[FoldJob]:
        """Every fold accumulating into ``fold``'s output tile, in k order."""
        chains = self._chains.get(layer)
        if chains is None:
            chains = {}
            for f in self.schedules[layer].folds:
                chains.setdefault(_tile_key(f), []).append(f)
            for folds in chains.values():
                folds.sort(key=lambda f: f.k0)
            self._chains[layer] = chains
        return chains[_tile_key(fold)]

    def input_index(self, node: Node) -> list[np.ndarray]:
        """Per group, which input element (address + 1, 0 = padding) each A entry holds."""
        index = self._input_index.get(node.name)
        if index is None:
            index = self._input_index[node.name] = lowered_index(node, self.schedules[node.name])
        return index


def _nbytes(ops: GemmOperands) -> int:
    arrays = (*ops.a, *ops.psum, *ops.bias)  # the weights are shared, not per sample
    return sum(a.nbytes for a in arrays)


def _tile_key(fold: FoldJob) -> tuple[int, int, int, int, int]:
    return (fold.group, fold.m0, fold.m1, fold.n0, fold.n1)


def golden_run(graph: Graph, accel: AcceleratorConfig, inputs: np.ndarray) -> Golden:
    """Run every sample fault-free through the array's kernels and keep every tensor."""
    values = functional.forward(graph, np.asarray(inputs, dtype=np.int64), accel)
    schedules = {
        node.name: schedule_layer(graph, node, accel, batch=1)
        for node in graph.nodes
        if node.op in GEMM_OPS
    }
    return Golden(graph=graph, accel=accel, values=values, schedules=schedules)


def reachable_faults(golden: Golden, node: Node, faults: LayerFaults,
                     stats: InjectionStats) -> dict[int, np.ndarray]:  # fmt: skip
    """The faults of one layer that can change an output (hardened bits removed)."""
    sched = golden.schedules[node.name]
    accel = golden.accel
    rows, cols, dataflow = accel.array.rows, accel.array.cols, accel.array.dataflow
    masks = hardened_masks(accel.protection.hardened_bits)
    live: dict[int, np.ndarray] = {}
    for fold_index, fold_faults in faults.items():
        fold_faults = np.asarray(fold_faults, dtype=np.int64).reshape(-1, 6)
        stats.faults += len(fold_faults)
        hardened = harden(fold_faults, masks)
        fold = sched.folds[int(fold_index)]
        mt, kt, nt = fold.m1 - fold.m0, fold.k1 - fold.k0, fold.n1 - fold.n0
        keep = [
            row
            for row in hardened
            if row[5] != FLIP
            or mapping.affected_outputs(
                dataflow,
                int(row[0]),
                int(row[1]),
                int(row[2]),
                int(row[3]),
                mt,
                kt,
                nt,
                rows,
                cols,
            )[0].size  # fmt: skip
        ]
        stats.masked_early += len(fold_faults) - len(keep)
        if keep:
            live[int(fold_index)] = np.array(keep, dtype=np.int64)
    return live


def faulty_layer_from_golden(golden: Golden, node: Node, sample: int, faults: LayerFaults,
                             stats: InjectionStats) -> np.ndarray | None:  # fmt: skip
    """The layer's output under ``faults`` when its input is fault-free; None if masked."""
    live = reachable_faults(golden, node, faults, stats)
    if not live:
        return None
    sched = golden.schedules[node.name]
    accel = golden.accel
    ops = golden.operands(node, sample)
    psum = [p.copy() for p in ops.psum]
    code = mapping.DATAFLOW_CODES[accel.array.dataflow]
    done: set[tuple[int, int, int, int, int]] = set()
    for fold_index in sorted(live):
        fold = sched.folds[fold_index]
        key = _tile_key(fold)
        if key in done:
            continue
        done.add(key)
        stats.tiles_recomputed += 1
        g = fold.group
        psum[g][fold.m0 : fold.m1, fold.n0 : fold.n1] = ops.bias[g][fold.n0 : fold.n1]
        for link in golden.chain(node.name, fold):
            compute_fold(code, accel.array.rows, accel.array.cols, sched.shape, link,
                         ops.a[g], ops.w[g], psum[g], live.get(link.index))  # fmt: skip
    out = gemm_output(node, ops.with_psum(psum), sched.shape)
    if np.array_equal(out, golden.tensor(node.output, sample)):
        return None
    return out


def sram_faulty_layer(golden: Golden, node: Node, sample: int, sram: Sequence[Fault],
                      stats: InjectionStats, *, pe_faults: LayerFaults | None = None,
                      x: np.ndarray | None = None,
                      channels: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The layer's output under its SRAM faults ``sram`` (and PE faults ``pe_faults``).

    ``x``: the layer's input when it differs from the golden run (None: golden, and the cached
    fault-free psums are the starting point). ``channels``: protected output channels (see
    :mod:`faults.sram`: the redundant units read the same operand words, and overwrite the
    output-buffer psums of those channels).
    """
    sched = golden.schedules[node.name]
    accel = golden.accel
    array = accel.array
    effects = layer_effects(node, sched, sram, golden.input_index(node))
    stats.faults += len(sram)
    stats.masked_early += effects.masked
    live = reachable_faults(golden, node, pe_faults or {}, stats)
    if x is None:
        ops = golden.operands(node, sample)
        pe_tiles = {_tile_key(sched.folds[index]) for index in live}
    else:  # a dirty input: every tile differs already; PE faults act in the full run
        ops = lower_operands(node, x, sched.shape)
        functional.run_folds(node, sched, ops, accel, live)
        pe_tiles = set()
    psum, tiles = recompute_psums(sched, array.dataflow, array.rows, array.cols, ops, effects,
                                  pe_faults=live, extra_tiles=pe_tiles)  # fmt: skip
    stats.tiles_recomputed += tiles
    out = gemm_output(node, ops.with_psum(psum), sched.shape)
    if channels is not None and len(channels):
        clean = ops
        if x is not None:  # the redundant units see the operands, not the array's PE faults
            clean = lower_operands(node, x, sched.shape)
            functional.run_folds(node, sched, clean, accel)
        psum, _ = recompute_psums(sched, array.dataflow, array.rows, array.cols, clean, effects,
                                  psum_flips=False)  # fmt: skip
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


def faulty_inference(golden: Golden, sample: int, faults: InferenceFaults,
                     stats: InjectionStats | None = None, *,
                     protected: Mapping[str, np.ndarray] | None = None,
                     sram: Sequence[Fault] = ()) -> np.ndarray:  # fmt: skip
    """The network output of ``sample`` (shape (1, ...)) with ``faults`` injected.

    ``faults``: PE faults as kernel rows per layer and fold (:func:`faults.plan.inference_faults`).
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
            out = sram_faulty_layer(golden, node, sample, layer_sram, stats,
                                    pe_faults=layer_faults, x=x, channels=channels)  # fmt: skip
            if not np.array_equal(out, golden.tensor(node.output, sample)):
                changed[node.output] = out
            continue
        if node.op in GEMM_OPS and not dirty:
            out = faulty_layer_from_golden(golden, node, sample, layer_faults, stats)
            if out is not None and channels is not None and len(channels):
                out[:, channels] = golden.tensor(node.output, sample)[:, channels]
            if out is not None and not np.array_equal(out, golden.tensor(node.output, sample)):
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


def full_faulty_inference(golden: Golden, sample: int, faults: InferenceFaults,
                          sram: Sequence[Fault] = ()) -> np.ndarray:  # fmt: skip
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
                golden, node, sample, sram_faults[node.name], InjectionStats(),
                pe_faults=faults.get(node.name), x=inputs[0],
            )  # fmt: skip
        elif node.op in GEMM_OPS:
            values[node.output] = functional.run_layer(
                graph, node, inputs[0], golden.accel, faults.get(node.name),
                sched=golden.schedules[node.name],
            )  # fmt: skip
        else:
            values[node.output] = executor.run_node(graph, node, inputs)
    return values[graph.output]
