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


@dataclass(frozen=True)
class GemmOperands:
    """Everything the array reads for one layer, lowered once: A, W and psums per group."""

    a: list[np.ndarray]  # (M, K) per group
    w: list[np.ndarray]  # (K, N) per group
    psum: list[np.ndarray]  # (M, N) per group, starts at the bias, updated in place
    bias: list[np.ndarray]  # (N,) per group: where every accumulator starts
    input_elements: list[np.ndarray]  # 2-D prefix sums of "not a padding zero" over A


class Controller(Module):
    def __init__(self, name: str, parent: Module, *, dram: DRAM, buffers: dict[str, SramBuffer],
                 array: PEArray, ideal_memory: bool, overlap_preload: bool,
                 fold_cycles: Callable[[FoldJob], int], preload_cycles: Callable[[FoldJob], int]) -> None:  # fmt: skip
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

    def weight_dma(self, sched: LayerSchedule, ready: dict[int, simpy.Event], c: LayerCounters):
        loaded: dict[tuple[int, int, int, int, int], float] = {}
        for fold in sched.folds:
            key = (fold.group, fold.k0, fold.k1, fold.n0, fold.n1)
            if sched.weights_resident and key in loaded:
                ready[fold.index].succeed(loaded[key])
                continue
            tile = bytes_for((fold.k1 - fold.k0) * (fold.n1 - fold.n0), sched.shape.w_bits)
            if not sched.weights_resident:
                yield from self._acquire("weight")
            yield from self._dram(tile, write=False, what="weights", counters=c)
            c.sram_writes["weight"] += tile
            loaded[key] = self.env.now
            ready[fold.index].succeed(self.env.now)

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
            yield from self._dram(bytes_for(elements, shape.out_bits), write=True, what="ofmap",
                                  counters=c)  # fmt: skip
            yield from self._release("output")

    # -- the array's side -----------------------------------------------------------------
    def compute(self, sched: LayerSchedule, ops: GemmOperands, blocks_ready: list[simpy.Event],
                weights_ready: dict[int, simpy.Event], finished: simpy.Store, c: LayerCounters,
                fault_plan: dict[int, np.ndarray] | None, redundancy=None):  # fmt: skip
        shape = sched.shape
        a_bytes_per = shape.a_bits / 8
        last_fold_of_block = {}
        for fold in sched.folds:
            last_fold_of_block[fold.block] = fold.index
        previous_start: float | None = None
        for fold in sched.folds:
            yield blocks_ready[fold.block]
            weights_at = yield weights_ready[fold.index]
            if fold.first_k:
                yield from self._acquire("output")
            preload = self.preload_cycles(fold)
            cycles = self.fold_cycles(fold) + preload
            if self.overlap_preload and previous_start is not None:
                # the stationary tile was shadow-loaded while the previous fold ran
                hidden = self.env.now - max(weights_at, previous_start)
                cycles -= int(min(max(hidden, 0), preload))
            previous_start = self.env.now
            g = fold.group
            if redundancy is not None:
                redundancy.submit(fold)
            yield from self.array.fold(fold, cycles, shape.layer)
            c.compute_cycles += cycles
            c.folds += 1
            c.pe_fraction_sum += self.array.pes_used(fold) / (self.array.rows * self.array.cols)
            mt, kt, nt = fold.m1 - fold.m0, fold.k1 - fold.k0, fold.n1 - fold.n0
            real = _prefix_count(ops.input_elements[g], fold.m0, fold.m1, fold.k0, fold.k1)
            c.sram_reads["input"] += math.ceil(real * a_bytes_per)
            c.sram_reads["weight"] += bytes_for(kt * nt, shape.w_bits)
            c.sram_writes["output"] += bytes_for(mt * nt, shape.acc_bits)
            if not fold.first_k:
                c.sram_reads["output"] += bytes_for(mt * nt, shape.acc_bits)
            if not sched.weights_resident:
                yield from self._release("weight")
            if last_fold_of_block[fold.block] == fold.index:
                yield from self._release("input")
            if fold.last_k:
                recomputed = None if redundancy is None else redundancy.tile_done(fold)
                yield finished.put((fold, recomputed))
        yield finished.put(None)

    def gemm_layer(self, sched: LayerSchedule, ops: GemmOperands, c: LayerCounters,
                   fault_plan: dict[int, np.ndarray] | None = None, redundancy=None):  # fmt: skip
        env = self.env
        blocks_ready = [env.event() for _ in sched.blocks]
        weights_ready = {fold.index: env.event() for fold in sched.folds}
        finished = simpy.Store(env)
        env.process(self.input_dma(sched, blocks_ready, c))
        env.process(self.weight_dma(sched, weights_ready, c))
        writer = env.process(self.writeback(sched, finished, c))
        yield env.process(
            self.compute(sched, ops, blocks_ready, weights_ready, finished, c, fault_plan,
                         redundancy)
        )  # fmt: skip
        yield writer

    def vector_layer(self, name: str, in_bytes: int, out_bytes: int, elements: int, lanes: int,
                     c: LayerCounters):  # fmt: skip
        """Pooling / add / clamp on the vector unit: read, compute, write back."""
        yield from self._dram(in_bytes, write=False, what=f"{name} in", counters=c)
        start = self.env.now
        cycles = math.ceil(elements / lanes)
        yield self.env.timeout(cycles)
        c.compute_cycles += cycles
        self.trace("vector", start, layer=name)
        yield from self._dram(out_bytes, write=True, what=f"{name} out", counters=c)


def _prefix_count(prefix: np.ndarray, m0: int, m1: int, k0: int, k1: int) -> int:
    """Sum of a 0/1 matrix over [m0, m1) × [k0, k1) from its 2-D prefix sums."""
    return int(prefix[m1, k1] - prefix[m0, k1] - prefix[m1, k0] + prefix[m0, k0])


def element_prefix(mask: np.ndarray) -> np.ndarray:
    """2-D prefix sums with a zero row and column in front."""
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=out[1:, 1:])
    return out
