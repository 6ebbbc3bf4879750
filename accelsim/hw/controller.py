"""The dataflow controller: walks a layer's schedule as concurrent DMA, compute, write-back.

Three processes per GEMM layer, as in a real accelerator's front end:

* ``input_dma``  — fetches each m-block's input rows from DRAM into an input-buffer slot;
* ``weight_dma`` — fetches each fold's stationary/streamed weight tile into a weight slot
  (once per layer when all weights fit the buffer);
* ``compute``    — issues the folds in order to the PE array as operands arrive, frees the
  slots, and hands finished output tiles to ``writeback`` (requantise, DRAM write).

Nothing is scheduled by formula: a fold starts when its operands are there and the array is
free, so stalls emerge from DRAM bandwidth and buffer slots. In ``scalesim`` timing memory is
ideal (transfers take no time), matching SCALE-Sim's compute-only count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from ..codes import dataflow_spec
from ..datapath import GemmOperands
from ..schedule import FoldJob, LayerSchedule, bytes_for
from .buffer import SramBuffer
from .dram import DRAM
from .module import Module
from .pe_array import PEArray


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
            yield from self.array.fold(fold, cycles, shape.layer)
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
