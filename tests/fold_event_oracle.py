"""The per-fold event model of the hardware, as it was before fold runs became transactions:
the oracle of ``accelsim.hw`` (tests/test_fold_transactions.py).

Deliberately kept as it was (one SimPy process step per fold: wait for the block, wait for
the weights, take an output slot, hold the array, free the slots, hand the tile over), with
one addition that only observes: ``LayerCounters.fold_start`` / ``fold_end`` record each
fold's start and end cycle. Do not optimise this file: its worth is that it is obviously
today's model. Its modules keep their own counters (no statistics registry), as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import simpy

from accelsim import executor, kernels, mapping
from accelsim.codes import OVERFLOW_CODES, Dataflow, dataflow_spec
from accelsim.config import (
    AcceleratorConfig,
    ArrayConfig,
    BufferConfig,
    DramConfig,
    HardenedBitsConfig,
)
from accelsim.datapath import (
    GemmOperands,
    compute_layer,
    gemm_output,
    hardened_masks,
    lower_operands,
)
from accelsim.errors import Infeasible
from accelsim.hw.module import Tracer
from accelsim.ir import Graph, Node
from accelsim.ops import GEMM_OPS
from accelsim.pe_spec import PESpec
from accelsim.schedule import FoldJob, GemmShape, LayerSchedule, bytes_for, schedule_layer

# ---- as accelsim/hw/module.py was ---------------------------------------


class Module:
    """A named hardware block inside a hierarchy (``top.controller.dma``)."""

    def __init__(
        self,
        name: str,
        parent: Module | None = None,
        *,
        env: simpy.Environment | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.name = name
        self.parent = parent
        self.children: list[Module] = []
        if parent is not None:
            parent.children.append(self)
            self.env = parent.env
            self.tracer = parent.tracer
        else:
            assert env is not None, "the top module needs an environment"
            self.env = env
            self.tracer = tracer or Tracer()

    @property
    def path(self) -> str:
        return self.name if self.parent is None else f"{self.parent.path}.{self.name}"

    def trace(self, what: str, start: float, **args: object) -> None:
        """Record that this module was busy with ``what`` from ``start`` until now."""
        if self.tracer.enabled:
            self.tracer.span(self.path, what, start, self.env.now, **args)


# ---- as accelsim/hw/dram.py was -----------------------------------------


class DRAM(Module):
    def __init__(self, name: str, parent: Module, config: DramConfig) -> None:
        super().__init__(name, parent)
        self.bandwidth_bytes_per_cycle = config.bandwidth_bytes_per_cycle
        self.latency_cycles = config.latency_cycles
        self.channel_free_at = 0.0  # the channel serves bursts one at a time, in request order
        self.read_bytes = 0
        self.written_bytes = 0

    def transfer(self, nbytes: int, *, write: bool, what: str):
        """Move ``nbytes``: hold the channel for the burst, then wait the latency.

        Requests are served in arrival order, so concurrent DMA streams share the bandwidth
        and delay each other: this is where memory stalls come from. (A FIFO channel whose
        holding time is known at request time needs no Resource: the start of a burst is
        ``max(now, end of the previous burst)`` — one SimPy event per transfer, not three.)
        """
        if nbytes <= 0:
            return
        start = max(self.env.now, self.channel_free_at)
        burst_end = start + math.ceil(nbytes / self.bandwidth_bytes_per_cycle)
        self.channel_free_at = burst_end
        if self.tracer.enabled:
            self.tracer.span(self.path, what, start, burst_end, bytes=nbytes)
        if write:
            self.written_bytes += nbytes
        else:
            self.read_bytes += nbytes
        yield self.env.timeout(burst_end + self.latency_cycles - self.env.now)


# ---- as accelsim/hw/buffer.py was ---------------------------------------


class SramBuffer(Module):
    """A buffer holding one tile per slot; two slots when double-buffered.

    A producer (DMA) takes a slot before filling it and the consumer frees it when done, so
    a slow consumer stalls the producer and a slow producer stalls the consumer.
    """

    def __init__(self, name: str, parent: Module, config: BufferConfig) -> None:
        super().__init__(name, parent)
        self.capacity_bytes = int(config.capacity_kib * 1024)
        self.slot_count = 2 if config.double_buffered else 1
        self.slots = simpy.Container(self.env, capacity=self.slot_count, init=self.slot_count)
        self.read_bytes = 0
        self.written_bytes = 0

    def acquire(self):
        return self.slots.get(1)

    def release(self):
        return self.slots.put(1)

    def reset_counters(self) -> tuple[int, int]:
        counts = (self.read_bytes, self.written_bytes)
        self.read_bytes = self.written_bytes = 0
        return counts


# ---- as accelsim/hw/pe_array.py was -------------------------------------


class PEArray(Module):
    """``rows × cols`` integer PEs running the configured dataflow.

    A fold holds the array for its cycle count (fill, skewed streaming, drain: see
    docs/dataflows.md); its values are computed by ``kernels.run_fold`` with the PE
    semantics of docs/semantics.md, faults applied inside the kernel.
    """

    def __init__(
        self,
        name: str,
        parent: Module,
        config: ArrayConfig,
        hardened: HardenedBitsConfig | None = None,
    ) -> None:
        super().__init__(name, parent)
        self.hardened = hardened_masks(hardened)
        self.config = config
        self.rows = config.rows
        self.cols = config.cols
        self.dataflow = config.dataflow
        self.busy_cycles = 0

    def spec(self, shape: GemmShape) -> PESpec:
        """The array as the kernels see it when it runs the layer ``shape``."""
        return PESpec.for_layer(self.config, shape)

    def fold(self, fold: FoldJob, cycles: int, layer: str):
        """Occupy the array for one fold's ``cycles`` (its values: :func:`compute_layer`).

        The controller issues folds one at a time, so the array needs no arbitration.
        """
        start = self.env.now
        yield self.env.timeout(cycles)
        self.busy_cycles += cycles
        self.trace("fold", start, layer=layer, fold=fold.index)


# ---- as accelsim/hw/controller.py was -----------------------------------


@dataclass
class LayerCounters:
    """Mutable tallies while a layer runs; frozen into LayerStats afterwards."""

    compute_cycles: int = 0
    redundancy_wait_cycles: int = 0
    sram_reads: dict[str, int] = field(
        default_factory=lambda: {"input": 0, "weight": 0, "output": 0}
    )
    sram_writes: dict[str, int] = field(
        default_factory=lambda: {"input": 0, "weight": 0, "output": 0}
    )
    dram_reads: int = 0
    dram_writes: int = 0
    pe_fraction_sum: float = 0.0
    folds: int = 0
    # observation only (the oracle's behaviour is today's): each fold's start and end cycle
    fold_start: list[float] = field(default_factory=list)
    fold_end: list[float] = field(default_factory=list)


def weight_tile(fold: FoldJob) -> tuple[int, int, int, int, int]:
    """Which weight tile a fold needs (group, k-range, n-range)."""
    return (fold.group, fold.k0, fold.k1, fold.n0, fold.n1)


class WeightTiles:
    """The weight DMA's handshake with the compute process: an event per load, made when
    first asked for, and the time each tile arrived."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.loaded_at: dict[tuple[int, int, int, int, int], float] = {}
        self._events: dict[int, simpy.Event] = {}

    def event(self, fold_index: int) -> simpy.Event:
        event = self._events.get(fold_index)
        if event is None:
            event = self._events[fold_index] = self.env.event()
        return event


class Controller(Module):
    def __init__(
        self,
        name: str,
        parent: Module,
        *,
        dram: DRAM,
        buffers: dict[str, SramBuffer],
        array: PEArray,
        ideal_memory: bool,
        overlap_preload: bool,
        fold_cycles: Callable[[FoldJob], int],
        preload_cycles: Callable[[FoldJob], int],
    ) -> None:
        super().__init__(name, parent)
        self.dram = dram
        self.buffers = buffers
        self.array = array
        self.ideal_memory = ideal_memory
        self.overlap_preload = overlap_preload
        self.fold_cycles = fold_cycles
        self.preload_cycles = preload_cycles

    # -- memory transactions --------------------------------------------------------------
    def _dram(self, nbytes: int, *, write: bool, what: str, counters: LayerCounters):
        if write:
            counters.dram_writes += nbytes
        else:
            counters.dram_reads += nbytes
        if self.ideal_memory:
            return
        yield from self.dram.transfer(nbytes, write=write, what=what)

    def _acquire(self, buffer: str):
        if not self.ideal_memory:
            yield self.buffers[buffer].acquire()

    def _release(self, buffer: str):
        if not self.ideal_memory:
            yield self.buffers[buffer].release()

    def input_dma(self, sched: LayerSchedule, ready: list[simpy.Event], c: LayerCounters):
        for block in sched.blocks:
            yield from self._acquire("input")
            yield from self._dram(block.input_bytes, write=False, what="ifmap", counters=c)
            c.sram_writes["input"] += block.input_bytes
            ready[block.index].succeed(self.env.now)

    def weight_dma(self, sched: LayerSchedule, ready: WeightTiles, c: LayerCounters):
        for fold in sched.folds:
            key = weight_tile(fold)
            if sched.weights_resident and key in ready.loaded_at:
                continue  # already in the buffer for the whole layer
            tile = bytes_for((fold.k1 - fold.k0) * (fold.n1 - fold.n0), sched.shape.w_bits)
            if not sched.weights_resident:
                yield from self._acquire("weight")
            yield from self._dram(tile, write=False, what="weights", counters=c)
            c.sram_writes["weight"] += tile
            ready.loaded_at[key] = self.env.now
            ready.event(fold.index).succeed(self.env.now)

    def writeback(self, sched: LayerSchedule, finished: simpy.Store, c: LayerCounters):
        shape = sched.shape
        while True:
            item = yield finished.get()
            if item is None:
                return
            fold, recomputed = item
            if recomputed is not None:
                # the protected neurons of this tile are overwritten before it leaves
                waiting_since = self.env.now
                yield recomputed
                c.redundancy_wait_cycles += int(self.env.now - waiting_since)
            elements = (fold.m1 - fold.m0) * (fold.n1 - fold.n0)
            c.sram_reads["output"] += bytes_for(elements, shape.acc_bits)
            yield from self._dram(
                bytes_for(elements, shape.out_bits), write=True, what="ofmap", counters=c
            )
            yield from self._release("output")

    # -- the array's side -----------------------------------------------------------------
    def compute(
        self,
        sched: LayerSchedule,
        ops: GemmOperands,
        blocks_ready: list[simpy.Event],
        weights_ready: WeightTiles,
        finished: simpy.Store,
        c: LayerCounters,
        redundancy=None,
    ):
        shape = sched.shape
        last_fold_of_block = {fold.block: fold.index for fold in sched.folds}
        previous_start: float | None = None
        for fold in sched.folds:
            yield blocks_ready[fold.block]
            key = weight_tile(fold)
            if sched.weights_resident and key in weights_ready.loaded_at:
                weights_at = weights_ready.loaded_at[key]  # resident since an earlier fold
            else:
                weights_at = yield weights_ready.event(fold.index)
            if fold.first_k:
                yield from self._acquire("output")
            preload = self.preload_cycles(fold)
            cycles = self.fold_cycles(fold) + preload
            if self.overlap_preload and previous_start is not None:
                # the stationary tile was shadow-loaded while the previous fold ran
                hidden = self.env.now - max(weights_at, previous_start)
                cycles -= int(min(max(hidden, 0), preload))
            previous_start = self.env.now
            if redundancy is not None:
                redundancy.submit(fold)
            c.fold_start.append(self.env.now)
            yield from self.array.fold(fold, cycles, shape.layer)
            c.fold_end.append(self.env.now)
            c.compute_cycles += cycles
            if not sched.weights_resident:
                yield from self._release("weight")
            if last_fold_of_block[fold.block] == fold.index:
                yield from self._release("input")
            if fold.last_k:
                recomputed = None if redundancy is None else redundancy.tile_done(fold)
                yield finished.put((fold, recomputed))
        yield finished.put(None)
        self.count_array_traffic(sched, ops, c)

    def count_array_traffic(
        self, sched: LayerSchedule, ops: GemmOperands, c: LayerCounters
    ) -> None:
        """SRAM traffic of the array and PE occupancy: fixed by the schedule, not by timing,
        so tallied for all folds at once."""
        shape = sched.shape
        f = np.array(
            [(x.group, x.m0, x.m1, x.k0, x.k1, x.n0, x.n1, x.first_k) for x in sched.folds],
            dtype=np.int64,
        ).reshape(-1, 8)
        group, m0, m1, k0, k1, n0, n1, first_k = f.T
        mt, kt, nt = m1 - m0, k1 - k0, n1 - n0
        real = np.zeros(len(f), dtype=np.int64)  # operands that are not padding zeros
        for g, prefix in enumerate(ops.input_elements):
            sel = group == g
            real[sel] = (
                prefix[m1[sel], k1[sel]]
                - prefix[m0[sel], k1[sel]]
                - prefix[m1[sel], k0[sel]]
                + prefix[m0[sel], k0[sel]]
            )

        def packed(elements: np.ndarray, bits: int) -> int:
            return int(np.sum(-(-(elements * bits) // 8)))

        c.sram_reads["input"] += packed(real, shape.a_bits)
        c.sram_reads["weight"] += packed(kt * nt, shape.w_bits)
        c.sram_writes["output"] += packed(mt * nt, shape.acc_bits)
        c.sram_reads["output"] += packed((mt * nt)[first_k == 0], shape.acc_bits)
        used = np.multiply(*dataflow_spec(self.array.dataflow).spatial(mt, kt, nt))
        c.pe_fraction_sum += float(np.sum(used)) / (self.array.rows * self.array.cols)
        c.folds += len(f)

    def gemm_layer(
        self,
        sched: LayerSchedule,
        ops: GemmOperands,
        c: LayerCounters,
        redundancy=None,
    ):
        env = self.env
        blocks_ready = [env.event() for _ in sched.blocks]
        weights_ready = WeightTiles(env)
        finished = simpy.Store(env)
        env.process(self.input_dma(sched, blocks_ready, c))
        env.process(self.weight_dma(sched, weights_ready, c))
        writer = env.process(self.writeback(sched, finished, c))
        yield env.process(
            self.compute(sched, ops, blocks_ready, weights_ready, finished, c, redundancy)
        )
        yield writer

    def vector_layer(
        self, name: str, in_bytes: int, out_bytes: int, elements: int, lanes: int, c: LayerCounters
    ):
        """Pooling / add / clamp on the vector unit: read, compute, write back."""
        yield from self._dram(in_bytes, write=False, what=f"{name} in", counters=c)
        start = self.env.now
        cycles = math.ceil(elements / lanes)
        yield self.env.timeout(cycles)
        c.compute_cycles += cycles
        self.trace("vector", start, layer=name)
        yield from self._dram(out_bytes, write=True, what=f"{name} out", counters=c)


# ---- as accelsim/hw/redundancy.py was -----------------------------------


class RedundantUnits(Module):
    def __init__(
        self,
        name: str,
        parent: Module,
        *,
        size: int,
        mode: str,
        protected: Mapping[str, np.ndarray],
    ) -> None:
        super().__init__(name, parent)
        self.size = size
        self.mode = mode
        self.protected = {
            layer: np.unique(np.asarray(ch, dtype=np.int64)) for layer, ch in protected.items()
        }
        self.unit = simpy.Resource(self.env, capacity=1)
        self.busy_cycles = 0
        self.recomputed_outputs = 0
        self.mismatches = 0

    def for_layer(self, node: Node, sched: LayerSchedule, ops) -> LayerRedundancy | None:
        channels = self.protected.get(node.name)
        if channels is None or channels.size == 0:
            return None
        if self.size == 0:
            raise Infeasible(
                f"layer {node.name} has protected neurons but there are no redundant units",
                key="accelerator.protection.redundant_units",
            )
        return LayerRedundancy(self, sched, channels)


class LayerRedundancy:
    """The recompute jobs of one layer: per-fold timing, and the overwrite at the end."""

    def __init__(self, units: RedundantUnits, sched: LayerSchedule, channels: np.ndarray) -> None:
        self.units = units
        self.sched = sched
        n = sched.shape.N
        # protected channels of each group, as group-local column indices
        self.columns = [
            channels[(channels >= g * n) & (channels < (g + 1) * n)] - g * n
            for g in range(sched.shape.groups)
        ]
        self.pending: dict[tuple[int, int, int, int], list[simpy.Event]] = {}

    def _tile(self, fold: FoldJob) -> tuple[int, int, int, int]:
        return (fold.group, fold.m0, fold.n0, fold.n1)

    def cycles_for(self, fold: FoldJob) -> int:
        cols = self.columns[fold.group]
        protected = int(np.count_nonzero((cols >= fold.n0) & (cols < fold.n1)))
        return (fold.m1 - fold.m0) * protected * math.ceil((fold.k1 - fold.k0) / self.units.size)

    def submit(self, fold: FoldJob) -> None:
        """The fold's operands are streaming: queue its recompute job."""
        cycles = self.cycles_for(fold)
        if cycles == 0:
            return
        done = self.units.env.process(self._job(fold, cycles))
        self.pending.setdefault(self._tile(fold), []).append(done)

    def _job(self, fold: FoldJob, cycles: int):
        units = self.units
        with units.unit.request() as grant:
            yield grant
            start = units.env.now
            yield units.env.timeout(cycles)
            units.busy_cycles += cycles
            units.trace("recompute", start, layer=self.sched.shape.layer, fold=fold.index)

    def tile_done(self, fold: FoldJob) -> simpy.Event | None:
        """An event that fires when every recompute of this output tile has finished."""
        jobs = self.pending.pop(self._tile(fold), [])
        return self.units.env.all_of(jobs) if jobs else None

    def finish(self, ops) -> None:
        """Overwrite the protected neurons' accumulators with the fault-free recompute."""
        shape = self.sched.shape
        for g, cols in enumerate(self.columns):
            if cols.size == 0:
                continue
            a = ops.a[g]
            start = np.broadcast_to(ops.bias[g][cols], (a.shape[0], cols.size))
            clean = kernels.run_gemm(
                a,
                np.ascontiguousarray(ops.w[g][:, cols]),
                np.ascontiguousarray(start),
                acc_bits=shape.acc_bits,
                overflow=OVERFLOW_CODES[shape.overflow],
            )
            self.units.recomputed_outputs += clean.size
            self.units.mismatches += int(np.count_nonzero(ops.psum[g][:, cols] != clean))
            ops.psum[g][:, cols] = clean


# ---- as accelsim/hw/accelerator.py was ----------------------------------


@dataclass
class LayerRun:
    """One layer's outcome in one simulation run."""

    node: Node
    schedule: LayerSchedule | None
    counters: LayerCounters
    start_cycle: float
    end_cycle: float


def _memoised(cycles_of: Callable[[FoldJob], int], key: Callable[[FoldJob], tuple]) -> Callable:
    """Folds of a layer share a handful of shapes: compute each shape's cycles once."""
    table: dict[tuple, int] = {}

    def cycles(fold: FoldJob) -> int:
        k = key(fold)
        value = table.get(k)
        if value is None:
            value = table[k] = cycles_of(fold)
        return value

    return cycles


def _shape(fold: FoldJob) -> tuple[int, int, int]:
    return (fold.m1 - fold.m0, fold.k1 - fold.k0, fold.n1 - fold.n0)


def fold_timing(accel: AcceleratorConfig) -> tuple[Callable, Callable]:
    """(cycles of a fold, cycles of its stationary preload) for the configured timing mode."""
    cycles, preload = _fold_timing(accel)
    first = (
        (lambda f: (*_shape(f), (f.m0, f.k0, f.n0) == (0, 0, 0)))
        if (accel.timing == "scalesim")
        else _shape
    )
    return _memoised(cycles, first), _memoised(preload, _shape)


def _fold_timing(accel: AcceleratorConfig) -> tuple[Callable, Callable]:
    rows, cols, df = accel.array.rows, accel.array.cols, accel.array.dataflow
    if accel.timing == "scalesim":
        from accelsim.timing_scalesim import scalesim_fold_cycles

        def cycles(fold: FoldJob) -> int:
            # SCALE-Sim reports the 0-based index of a layer's (group's) last cycle
            first = (fold.m0, fold.k0, fold.n0) == (0, 0, 0)
            return scalesim_fold_cycles(
                df,
                fold.m1 - fold.m0,
                fold.k1 - fold.k0,
                fold.n1 - fold.n0,
                rows,
                cols,
                first_fold=first,
            )

        return cycles, lambda fold: 0

    code, stationary_preload = Dataflow.of(df), mapping.preload_cycles(df, rows)

    def cycles(fold: FoldJob) -> int:
        return mapping.fold_cycles(
            code, fold.m1 - fold.m0, fold.k1 - fold.k0, fold.n1 - fold.n0, rows
        )

    def preload(fold: FoldJob) -> int:
        return stationary_preload

    return cycles, preload


class Accelerator(Module):
    def __init__(
        self,
        config: AcceleratorConfig,
        *,
        tracer: Tracer | None = None,
        redundancy_factory: Callable | None = None,
    ) -> None:
        super().__init__("accelerator", env=simpy.Environment(), tracer=tracer)
        self.config = config
        scalesim = config.timing == "scalesim"
        self.dram = DRAM("dram", self, config.dram)
        self.buffers = {
            "input": SramBuffer("input_buffer", self, config.buffers.input),
            "weight": SramBuffer("weight_buffer", self, config.buffers.weight),
            "output": SramBuffer("output_buffer", self, config.buffers.output),
        }
        self.array = PEArray("pe_array", self, config.array, config.protection.hardened_bits)
        fold_cycles, preload_cycles = fold_timing(config)
        self.controller = Controller(
            "controller",
            self,
            dram=self.dram,
            buffers=self.buffers,
            array=self.array,
            ideal_memory=scalesim,
            overlap_preload=config.double_buffer_weights and not scalesim,
            fold_cycles=fold_cycles,
            preload_cycles=preload_cycles,
        )
        self.redundancy = redundancy_factory(self) if redundancy_factory else None

    def run(
        self,
        graph: Graph,
        x: np.ndarray,
        *,
        fault_plan: dict[str, dict[int, np.ndarray]] | None = None,
        on_layer: Callable[[LayerRun], None] | None = None,
    ) -> tuple[dict[str, np.ndarray], list[LayerRun]]:
        """Simulate one batch; returns every tensor's integers and per-layer runs."""
        values: dict[str, np.ndarray] = {graph.input: np.asarray(x, dtype=np.int64)}
        runs: list[LayerRun] = []
        batch = int(x.shape[0])
        env = self.env

        def network():
            for node in graph.nodes:
                counters = LayerCounters()
                start = env.now
                sched = None
                inputs = [values[name] for name in node.inputs]
                if node.op in GEMM_OPS:
                    sched = schedule_layer(graph, node, self.config, batch=batch)
                    ops = lower_operands(node, inputs[0], sched.shape)
                    redundancy = None
                    if self.redundancy is not None:
                        redundancy = self.redundancy.for_layer(node, sched, ops)
                    yield env.process(self.controller.gemm_layer(sched, ops, counters, redundancy))
                    array = self.array
                    compute_layer(
                        array.spec(sched.shape),
                        sched,
                        ops,
                        None if fault_plan is None else fault_plan.get(node.name),
                        array.hardened,
                    )
                    if redundancy is not None:
                        redundancy.finish(ops)
                    values[node.output] = gemm_output(node, ops, sched.shape)
                else:
                    out = executor.run_node(graph, node, inputs)
                    spec = graph.tensors[node.output]
                    in_bytes = sum(
                        bytes_for(v.size, graph.tensors[n].bits)
                        for v, n in zip(inputs, node.inputs)
                    )
                    out_bytes = bytes_for(out.size, spec.bits) if node.op != "flatten" else 0
                    if node.op == "flatten":
                        in_bytes = 0  # a change of view: no data moves
                    yield env.process(
                        self.controller.vector_layer(
                            node.name,
                            in_bytes,
                            out_bytes,
                            0 if node.op == "flatten" else out.size,
                            self.config.vector_lanes,
                            counters,
                        )
                    )
                    values[node.output] = out
                run = LayerRun(node, sched, counters, start, env.now)
                runs.append(run)
                if on_layer is not None:
                    on_layer(run)

        env.process(network())
        env.run()
        return values, runs
