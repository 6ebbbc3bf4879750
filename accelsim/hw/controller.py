"""The dataflow controller: walks a layer's schedule as concurrent DMA, compute, write-back.

Four processes, started once at elaboration, each taking its work from a channel, as in a
real accelerator's front end:

* ``input_dma``  — fetches each m-block's input rows from DRAM into an input-buffer slot;
* ``weight_dma`` — fetches each fold's stationary/streamed weight tile into a weight slot
  (once per layer when all weights fit the buffer);
* ``compute``    — issues the folds in order to the PE array as operands arrive, frees the
  slots, and hands finished output tiles to ``writeback`` (requantise, DRAM write);
* ``vector``     — pooling / add / clamp layers: read, compute on the vector unit, write.

Nothing is scheduled by formula: a fold starts when its operands are there and the array is
free, so stalls emerge from DRAM bandwidth and buffer slots. In ``scalesim`` timing memory is
ideal (transfers take no time), matching SCALE-Sim's compute-only count.

**Transactions sized to what can contend.** ``compute`` issues a *run* of folds as one
transaction when nothing can happen between them: every fold of the run has its weights
resident and loaded and its input block in, and no fold but the last frees a slot, hands a
tile to ``writeback`` or feeds the redundant units (with ideal memory, slots and write-backs
take no time, so a run spans the layer). The run's per-fold start and end cycles come from
one cumulative sum. With non-resident weights the weight DMA and the array interact on every
fold; in ``accurate`` timing the whole layer (redundant units included) then runs in
:func:`accelsim.hw.layer_events.simulate_gemm_layer`, the same four processes on SimPy's
rules compiled into one call. The per-fold event model both replace is kept as the oracle in
``tests/fold_event_oracle.py``, and tests prove they give the same cycles fold by fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import simpy

from .. import kernels
from ..datapath import GemmOperands
from ..derived import derived
from ..schedule import (
    F_BLOCK,
    F_FIRST_K,
    F_GROUP,
    F_K0,
    F_K1,
    F_LAST_K,
    F_M0,
    F_M1,
    F_N0,
    F_N1,
    LayerSchedule,
    bytes_for,
)
from .buffer import SramBuffer
from .dram import DRAM
from .layer_events import (
    TRANSFER_IFMAP,
    TRANSFER_OFMAP,
    TRANSFER_WEIGHTS,
    simulate_gemm_layer,
)
from .module import Module
from .pe_array import PEArray
from .vector_unit import VectorUnit


def flat_key(table: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    """One int64 per row identifying its values in ``columns`` (mixed radix; the values
    are non-negative and small), so that ``np.unique`` works on a vector, not on rows."""
    key = np.zeros(len(table), dtype=np.int64)
    for c in columns:
        key = key * (int(table[:, c].max(initial=0)) + 1) + table[:, c]
    return key


def packed_bytes(elements: np.ndarray, bits: int) -> int:
    """Σ bytes of per-fold word counts, each fold's words packed (as :func:`bytes_for`)."""
    return int(np.sum(-(-(elements * bits) // 8)))


def real_operand_counts(table: np.ndarray, ops: GemmOperands) -> np.ndarray:
    """Per fold: input operands that are not padding zeros (what the input buffer reads).

    Whether A[m, k] is padding depends on the output pixel and the kernel offset only
    (``k = c*KH*KW + offset``), so a fold's count is Σ over offsets of (real m in the fold's
    rows for that offset) × (k in the fold's range with that offset): two small tables
    instead of a prefix sum over A. A test proves it equal to the 2-D prefix sums of
    :attr:`GemmOperands.input_elements`.
    """
    m0, m1, k0, k1 = (table[:, c] for c in (F_M0, F_M1, F_K0, F_K1))
    window = ops.padding_window
    if window is None:
        return (m1 - m0) * (k1 - k0)
    offsets = window.shape[1]
    m_ranges, m_of = np.unique(m0 * (window.shape[0] + 1) + m1, return_inverse=True)
    k_ranges, k_of = np.unique(k0 * (ops.k_extent + 1) + k1, return_inverse=True)
    um0, um1 = np.divmod(m_ranges, window.shape[0] + 1)
    uk0, uk1 = np.divmod(k_ranges, ops.k_extent + 1)
    # prefix sums of real rows only at the m-range bounds (a few): one row-wise sum per
    # segment between bounds, where a prefix over every row would cost a pass of M x offsets
    bounds = np.unique(np.concatenate([um0, um1]))
    at_bounds = np.zeros((len(bounds), offsets), dtype=np.int64)
    if len(bounds) > 1:
        np.cumsum(kernels.segment_column_sums(window, bounds), axis=0, out=at_bounds[1:])
    per_offset_rows = (  # (m ranges, offsets): real rows of each range per kernel offset
        at_bounds[np.searchsorted(bounds, um1)] - at_bounds[np.searchsorted(bounds, um0)]
    )
    o = np.arange(offsets)
    # k in [k0, k1) with k % offsets == o: ceil((k1 - o) / offsets) - ceil((k0 - o) / offsets)
    per_offset_ks = -((o - uk1[:, None]) // offsets) + ((o - uk0[:, None]) // offsets)
    return (per_offset_rows @ per_offset_ks.T)[m_of.ravel(), k_of.ravel()]


@dataclass
class LayerTiming:
    """One GEMM layer's fold timing: per-fold cycles in, per-fold start/end cycles out."""

    base_cycles: np.ndarray  # (folds,) compute cycles of each fold, preload excluded
    preload_cycles: int  # stationary preload before a fold (hidden when double-buffered)
    fold_start: np.ndarray = field(init=False)  # cycle each fold started
    fold_end: np.ndarray = field(init=False)  # cycle each fold ended

    def __post_init__(self) -> None:
        self.fold_start = np.zeros(len(self.base_cycles), dtype=np.int64)
        self.fold_end = np.zeros(len(self.base_cycles), dtype=np.int64)


@dataclass(frozen=True)
class FoldPlan:
    """The per-fold facts of a layer's tiling that no timing changes, as arrays: built once
    per tiling (kept with its read-only fold table, which schedules of one layer shape share)
    and read by every run of a layer of that shape."""

    weight_tile: np.ndarray  # per fold: id of its weight tile (distinct group, k- and n-range)
    weight_loads: np.ndarray  # folds that fetch a weight tile, in issue order
    weight_tile_bytes: np.ndarray  # per fold: its weight tile's bytes
    last_of_block: np.ndarray  # per fold: the last fold of its m-block (frees an input slot)
    hands_over: np.ndarray  # per fold: another process may act after it (a run ends there)
    tile_acc_bytes: np.ndarray  # per fold: its output tile in the output buffer (acc words)
    tile_out_bytes: np.ndarray  # per fold: its output tile written to DRAM (out words)

    @staticmethod
    def of(sched: LayerSchedule) -> FoldPlan:
        """The plan of ``sched``'s tiling (built on the first call for its fold table)."""
        shape = sched.shape
        name = (
            f"fold_plan/{sched.weights_resident}/{shape.w_bits}/{shape.acc_bits}/{shape.out_bits}"
        )
        return derived(sched.fold_table, name, lambda table: FoldPlan.build(sched))

    @staticmethod
    def build(sched: LayerSchedule) -> FoldPlan:
        table, shape = sched.fold_table, sched.shape
        key = flat_key(table, (F_GROUP, F_K0, F_K1, F_N0, F_N1))
        _, first_use, tile_of = np.unique(key, return_index=True, return_inverse=True)
        if sched.weights_resident:
            loads = np.sort(first_use)  # each tile once, in issue order
        else:
            loads = np.arange(len(table))
        kt, nt = table[:, F_K1] - table[:, F_K0], table[:, F_N1] - table[:, F_N0]
        last_of_block = np.ones(len(table), dtype=bool)
        last_of_block[:-1] = table[1:, F_BLOCK] != table[:-1, F_BLOCK]
        elements = (table[:, F_M1] - table[:, F_M0]) * nt
        plan = FoldPlan(
            weight_tile=tile_of.ravel().astype(np.int64),
            weight_loads=loads.astype(np.int64),
            weight_tile_bytes=-(-(kt * nt * shape.w_bits) // 8),
            last_of_block=last_of_block,
            hands_over=last_of_block | table[:, F_LAST_K].astype(bool),
            tile_acc_bytes=-(-(elements * shape.acc_bits) // 8),
            tile_out_bytes=-(-(elements * shape.out_bits) // 8),
        )
        for array in vars(plan).values():
            array.flags.writeable = False
        return plan


class LayerJob:
    """What the controller's processes share while they run one GEMM layer (the per-fold
    facts as Python lists, for the per-fold SimPy processes, made when first read)."""

    def __init__(self, env: simpy.Environment, sched: LayerSchedule, ops, timing, redundancy):
        table = sched.fold_table
        self.sched = sched
        self.plan = FoldPlan.of(sched)
        self.ops = ops
        self.timing = timing
        self.redundancy = redundancy
        self.done = env.event()
        self.blocks_ready = [env.event() for _ in sched.blocks]
        self.loaded_at: dict[int, float] = {}  # weight tile -> cycle it arrived
        self._weight_events: dict[int, simpy.Event] = {}
        self.env = env
        self.last_k_array = table[:, F_LAST_K].astype(bool)
        self.hands_over_array = self.plan.hands_over
        self.all_weights_in = False  # ideal memory: the whole layer's weights, at once

    @cached_property
    def weight_tile(self) -> list[int]:
        return self.plan.weight_tile.tolist()

    @cached_property
    def weight_loads(self) -> list[int]:
        return self.plan.weight_loads.tolist()

    @cached_property
    def weight_tile_bytes(self) -> list[int]:
        return self.plan.weight_tile_bytes.tolist()

    @cached_property
    def block(self) -> list[int]:
        return self.sched.fold_table[:, F_BLOCK].tolist()

    @cached_property
    def first_k(self) -> list[bool]:
        return self.sched.fold_table[:, F_FIRST_K].astype(bool).tolist()

    @cached_property
    def last_k(self) -> list[bool]:
        return self.last_k_array.tolist()

    @cached_property
    def last_of_block(self) -> list[bool]:
        return self.plan.last_of_block.tolist()

    @cached_property
    def hands_over(self) -> list[bool]:
        return self.plan.hands_over.tolist()

    @cached_property
    def base(self) -> list[int]:
        return self.timing.base_cycles.tolist()

    def weight_event(self, fold: int) -> simpy.Event:
        """The weight DMA's handshake for the tile fold ``fold`` loads (made when first
        asked for)."""
        event = self._weight_events.get(fold)
        if event is None:
            event = self._weight_events[fold] = self.env.event()
        return event

    def weights_in(self, fold: int) -> bool:
        """Are fold ``fold``'s weights in the buffer now?"""
        if self.all_weights_in:
            return True
        if self.sched.weights_resident:
            return self.weight_tile[fold] in self.loaded_at
        event = self._weight_events.get(fold)
        return event is not None and event.triggered


class Controller(Module):
    """Statistics: ``redundancy_wait_cycles`` (write-backs waiting for the redundant units)
    and ``stall_cycles`` (layer cycles minus compute cycles, summed over layers)."""

    def __init__(
        self,
        name: str,
        parent: Module,
        *,
        dram: DRAM,
        buffers: dict[str, SramBuffer],
        array: PEArray,
        vector_unit: VectorUnit,
        ideal_memory: bool,
        overlap_preload: bool,
    ) -> None:
        super().__init__(name, parent)
        # ports, bound to the modules they talk to
        self.dram = dram
        self.input_buffer = buffers["input"]
        self.weight_buffer = buffers["weight"]
        self.output_buffer = buffers["output"]
        self.array = array
        self.vector_unit = vector_unit
        self.ideal_memory = ideal_memory
        self.overlap_preload = overlap_preload
        self.redundancy_wait_cycles = self.statistic(
            "redundancy_wait_cycles", "cycles write-backs waited for the redundant units"
        )
        self.stall_cycles = self.statistic(
            "stall_cycles", "layer cycles not spent computing (memory or redundant units)"
        )
        # channels: one job per layer to each process; finished output tiles to writeback
        self.input_jobs = self.channel()
        self.weight_jobs = self.channel()
        self.compute_jobs = self.channel()
        self.writeback_jobs = self.channel()
        self.vector_jobs = self.channel()
        self.finished_tiles = self.channel()
        # SC_THREADs, started at elaboration
        self.process(self.input_dma())
        self.process(self.weight_dma())
        self.process(self.writeback())
        self.process(self.compute())
        self.process(self.vector())

    # -- the layer-level interface --------------------------------------------------------
    def gemm_layer(self, sched: LayerSchedule, ops: GemmOperands, timing: LayerTiming, redundancy):
        """Run one GEMM layer (a process step of the caller): returns when its last output
        tile is written back."""
        job = LayerJob(self.env, sched, ops, timing, redundancy)
        if not self.ideal_memory and (redundancy is None or redundancy.tiles_in_a_row):
            # the same processes, compiled (accelsim/hw/layer_events.py): one transaction
            yield from self._compiled_layer(job)
            return
        for channel in (self.input_jobs, self.weight_jobs, self.writeback_jobs):
            channel.put(job)
        self.compute_jobs.put(job)
        yield job.done

    def vector_layer(self, name: str, in_bytes: int, out_bytes: int, elements: int):
        """Run one pooling / add / clamp layer (a process step of the caller)."""
        done = self.env.event()
        self.vector_jobs.put((name, in_bytes, out_bytes, elements, done))
        yield done

    def _compiled_layer(self, job: LayerJob):
        sched, timing, env, dram = job.sched, job.timing, self.env, self.dram
        table, shape, plan = sched.fold_table, sched.shape, job.plan
        folds = len(table)
        block_bytes = np.array([b.input_bytes for b in sched.blocks], dtype=np.int64)
        tile_bytes, loads = plan.weight_tile_bytes, plan.weight_loads
        fold_start = np.zeros(folds, dtype=np.float64)
        fold_end = np.zeros(folds, dtype=np.float64)
        transfers = np.zeros((len(block_bytes) + len(loads) + folds, 4), dtype=np.float64)
        slots = np.array(
            [b.slot_count for b in (self.input_buffer, self.weight_buffer, self.output_buffer)],
            dtype=np.int64,
        )
        redundancy = job.redundancy
        if redundancy is None:
            job_cycles = np.zeros(folds, dtype=np.int64)
        else:
            job_cycles = np.asarray(redundancy.job_cycles, dtype=np.int64)
        jobs_run = np.zeros((folds, 3), dtype=np.float64)
        end, dram.channel_free_at, bursts, acc_read, jobs, waited = simulate_gemm_layer(
            float(env.now),
            float(dram.channel_free_at),
            float(dram.bandwidth_bytes_per_cycle),
            float(dram.latency_cycles),
            block_bytes,
            table[:, F_BLOCK],
            table[:, F_FIRST_K],
            table[:, F_LAST_K],
            plan.last_of_block,
            timing.base_cycles,
            plan.weight_tile,
            tile_bytes,
            loads,
            plan.tile_acc_bytes,
            plan.tile_out_bytes,
            bool(sched.weights_resident),
            int(timing.preload_cycles),
            bool(self.overlap_preload),
            slots,
            job_cycles,
            fold_start,
            fold_end,
            transfers,
            jobs_run,
        )
        if redundancy is not None:
            redundancy.record_jobs(jobs_run[:jobs])
            self.redundancy_wait_cycles.value += int(waited)
        timing.fold_start = fold_start.astype(np.int64)
        timing.fold_end = fold_end.astype(np.int64)
        moved = transfers[:bursts]
        kind, nbytes = moved[:, 0].astype(np.int64), moved[:, 3].astype(np.int64)
        dram.read_bytes.value += int(nbytes[kind != TRANSFER_OFMAP].sum())
        dram.written_bytes.value += int(nbytes[kind == TRANSFER_OFMAP].sum())
        dram.busy_cycles.value += int((moved[:, 2] - moved[:, 1]).sum())
        self.input_buffer.written_bytes.value += int(block_bytes.sum())
        self.weight_buffer.written_bytes.value += int(tile_bytes[loads].sum())
        self.output_buffer.read_bytes.value += int(acc_read)
        if self.tracer.enabled:
            labels = {TRANSFER_IFMAP: "ifmap", TRANSFER_WEIGHTS: "weights", TRANSFER_OFMAP: "ofmap"}
            for k, begin, burst_end, n in moved.tolist():
                self.tracer.span(dram.path, labels[int(k)], begin, burst_end, bytes=int(n))
        yield from self.array.run(
            int((fold_end - fold_start).sum()),
            shape.layer,
            0,
            fold_start.tolist() if self.tracer.enabled else (),
            fold_end.tolist() if self.tracer.enabled else (),
        )
        # the array's transaction holds it for its busy cycles; the layer ends at the last
        # write-back
        if end > env.now:
            yield env.timeout(end - env.now)
        self.count_array_traffic(sched, job.ops)

    # -- processes ------------------------------------------------------------------------
    def input_dma(self):
        while True:
            job = yield self.input_jobs.get()
            for block in job.sched.blocks:
                yield from self.input_buffer.acquire()
                yield from self.dram.transfer(block.input_bytes, write=False, what="ifmap")
                self.input_buffer.written_bytes.value += block.input_bytes
                job.blocks_ready[block.index].succeed(self.env.now)

    def weight_dma(self):
        while True:
            job = yield self.weight_jobs.get()
            resident = job.sched.weights_resident
            if self.ideal_memory:
                # transfers take no time and slots are never short: every tile is in now
                moved = int(np.sum(job.plan.weight_tile_bytes[job.plan.weight_loads]))
                yield from self.dram.transfer(moved, write=False, what="weights")
                self.weight_buffer.written_bytes.value += moved
                job.all_weights_in = True
                continue
            for fold in job.weight_loads:
                tile = job.weight_tile_bytes[fold]
                if not resident:
                    yield from self.weight_buffer.acquire()
                yield from self.dram.transfer(tile, write=False, what="weights")
                self.weight_buffer.written_bytes.value += tile
                job.loaded_at[job.weight_tile[fold]] = self.env.now
                job.weight_event(fold).succeed(self.env.now)

    def writeback(self):
        while True:
            job = yield self.writeback_jobs.get()
            table, shape = job.sched.fold_table, job.sched.shape
            while True:
                item = yield self.finished_tiles.get()
                if item is None:
                    break
                fold, recomputed = item
                if recomputed is not None:
                    # the protected neurons of this tile are overwritten before it leaves
                    waiting_since = self.env.now
                    yield recomputed
                    self.redundancy_wait_cycles.value += int(self.env.now - waiting_since)
                row = table[fold]
                elements = int((row[F_M1] - row[F_M0]) * (row[F_N1] - row[F_N0]))
                self.output_buffer.read_bytes.value += bytes_for(elements, shape.acc_bits)
                yield from self.dram.transfer(
                    bytes_for(elements, shape.out_bits), write=True, what="ofmap"
                )
                yield from self.output_buffer.release()
            job.done.succeed()

    def compute(self):
        while True:
            job = yield self.compute_jobs.get()
            yield from self._compute_layer(job)
            yield self.finished_tiles.put(None)
            self.count_array_traffic(job.sched, job.ops)

    def _compute_layer(self, job: LayerJob):
        env, sched, timing, redundancy = self.env, job.sched, job.timing, job.redundancy
        resident = sched.weights_resident
        preload = timing.preload_cycles
        # within a run every fold but the first hides its preload entirely (its predecessor
        # ran at least ``preload`` cycles): true when no fold is shorter than the preload
        runs_allowed = redundancy is None and bool(np.all(timing.base_cycles >= preload))
        follow_cycles = 0 if self.overlap_preload else preload
        folds = sched.fold_count
        previous_start: float | None = None
        # per-fold start/end cycles, as lists while the layer runs (cheap to write one at a
        # time), as arrays in ``timing`` at the end
        fold_start: list[float] = [0] * folds
        fold_end: list[float] = [0] * folds
        i = 0
        while i < folds:
            yield job.blocks_ready[job.block[i]]
            if job.all_weights_in:
                weights_at = env.now  # ideal memory: no preload overlap to account for
            elif resident and job.weight_tile[i] in job.loaded_at:
                weights_at = job.loaded_at[job.weight_tile[i]]  # resident since an earlier fold
            else:
                weights_at = yield job.weight_event(i)
            if job.first_k[i]:
                yield from self.output_buffer.acquire()
            cycles = job.base[i] + preload
            if self.overlap_preload and previous_start is not None:
                # the stationary tile was shadow-loaded while the previous fold ran
                hidden = env.now - max(weights_at, previous_start)
                cycles -= int(min(max(hidden, 0), preload))
            if redundancy is not None:
                redundancy.submit(i)
            last = i
            if runs_allowed:
                last = self._run_end(job, i)
            start = env.now
            if last == i:
                fold_start[i], fold_end[i] = start, start + cycles
                total = cycles
            else:
                ends = np.asarray(job.base[i + 1 : last + 1], dtype=np.int64) + follow_cycles
                np.cumsum(ends, out=ends)
                ends += int(start) + cycles
                fold_start[i], fold_end[i] = start, start + cycles
                fold_end[i + 1 : last + 1] = ends.tolist()
                fold_start[i + 1 : last + 1] = fold_end[i:last]
                total = int(ends[-1] - start)
            previous_start = fold_start[last]
            yield from self.array.run(
                total,
                sched.shape.layer,
                i,
                fold_start[i : last + 1] if self.tracer.enabled else (),
                fold_end[i : last + 1] if self.tracer.enabled else (),
            )
            if self.ideal_memory:
                # slots are never waited for: only finished tiles are handed over
                handing = (np.flatnonzero(job.last_k_array[i : last + 1]) + i).tolist()
            elif last == i:
                handing = (i,) if (job.hands_over[i] or not resident) else ()
            elif resident:
                handing = (np.flatnonzero(job.hands_over_array[i : last + 1]) + i).tolist()
            else:
                handing = range(i, last + 1)
            for fold in handing:
                if not resident:
                    yield from self.weight_buffer.release()
                if job.last_of_block[fold]:
                    yield from self.input_buffer.release()
                if job.last_k[fold]:
                    recomputed = None if redundancy is None else redundancy.tile_done(fold)
                    yield self.finished_tiles.put((fold, recomputed))
            i = last + 1
        timing.fold_start = np.array(fold_start, dtype=np.int64)
        timing.fold_end = np.array(fold_end, dtype=np.int64)

    def _run_end(self, job: LayerJob, first: int) -> int:
        """The last fold of the run starting at ``first``: folds join while nothing can
        happen between them (see the module docstring)."""
        last, folds = first, len(job.base)
        if self.ideal_memory:
            # slots and write-backs take no time: only operands not yet in stop a run
            if job.all_weights_in and all(
                event.triggered for event in job.blocks_ready[job.block[first] :]
            ):
                return folds - 1
            while (
                last + 1 < folds
                and job.blocks_ready[job.block[last + 1]].triggered
                and job.weights_in(last + 1)
            ):
                last += 1
            return last
        if not job.sched.weights_resident:
            return first  # every fold frees its weight slot: the weight DMA acts in between
        while (
            last + 1 < folds
            and not job.hands_over[last]
            and not job.first_k[last + 1]
            and job.weight_tile[last + 1] in job.loaded_at
        ):
            last += 1
        return last

    def count_array_traffic(self, sched: LayerSchedule, ops: GemmOperands) -> None:
        """SRAM traffic of the array and PE occupancy: fixed by the schedule, not by timing,
        so tallied for all folds at once, as arrays (once per tiling: kept with its fold
        table, as the padding pattern of A is fixed by the layer's shape too)."""
        shape = sched.shape
        name = f"array_traffic/{shape.a_bits}/{shape.w_bits}/{shape.acc_bits}"
        traffic = derived(sched.fold_table, name, lambda table: self._array_traffic(sched, ops))
        input_read, weight_read, output_written, output_read, pe_fraction_sum = traffic
        self.input_buffer.read_bytes.value += input_read
        self.weight_buffer.read_bytes.value += weight_read
        self.output_buffer.written_bytes.value += output_written
        self.output_buffer.read_bytes.value += output_read
        self.array.record_folds(pe_fraction_sum, sched.fold_count)

    def _array_traffic(
        self, sched: LayerSchedule, ops: GemmOperands
    ) -> tuple[int, int, int, int, float]:
        """(input, weight buffer bytes read, output buffer bytes written, read, Σ PE fraction)."""
        shape, table = sched.shape, sched.fold_table
        mt = table[:, F_M1] - table[:, F_M0]
        kt = table[:, F_K1] - table[:, F_K0]
        nt = table[:, F_N1] - table[:, F_N0]
        not_first = table[:, F_FIRST_K] == 0
        return (
            packed_bytes(real_operand_counts(table, ops), shape.a_bits),
            packed_bytes(kt * nt, shape.w_bits),
            packed_bytes(mt * nt, shape.acc_bits),
            packed_bytes((mt * nt)[not_first], shape.acc_bits),
            self.array.mapped_pe_fraction_sum_of(mt, kt, nt),
        )

    def vector(self):
        while True:
            name, in_bytes, out_bytes, elements, done = yield self.vector_jobs.get()
            yield from self.dram.transfer(in_bytes, write=False, what=f"{name} in")
            yield from self.vector_unit.work(elements, name)
            yield from self.dram.transfer(out_bytes, write=True, what=f"{name} out")
            done.succeed()
