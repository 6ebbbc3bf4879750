"""The top module: the netlist of the accelerator, elaborated from AcceleratorConfig.

Reading ``Accelerator.__init__`` is reading the block diagram::

    DRAM ──▶ input buffer ─┐
         ──▶ weight buffer ─┼─▶ controller ──▶ PE array (rows × cols) ──▶ output buffer ──▶ DRAM
                            ├─▶ vector unit (pooling, add, clamp)
                            └─▶ redundant units (recompute protected neurons, beside the array)

Every module registers its statistics; a layer's figures (:class:`LayerCounters`) are the
change of those statistics while the layer ran, and ``statistics_by_path()`` gives the run's
totals per module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from .. import mapping, vector_kernels
from ..config import AcceleratorConfig
from ..datapath import compute_layer, gemm_output, lower_operands
from ..ir import Graph, Node
from ..ops import GEMM_OPS
from ..schedule import F_K0, F_K1, F_M0, F_M1, F_N0, F_N1, LayerSchedule, bytes_for, schedule_layer
from ..timing_scalesim import scalesim_fold_cycles_array
from .buffer import SramBuffer
from .controller import Controller, LayerTiming
from .dram import DRAM
from .module import Module, Tracer
from .pe_array import PEArray
from .vector_unit import VectorUnit


@dataclass(frozen=True)
class LayerCounters:
    """One layer's figures: how much the modules' statistics grew while it ran."""

    compute_cycles: int
    redundancy_wait_cycles: int
    sram_reads: dict[str, int]
    sram_writes: dict[str, int]
    dram_reads: int
    dram_writes: int
    pe_fraction_sum: float
    folds: int


@dataclass
class LayerRun:
    """One layer's outcome in one simulation run (``timing``: GEMM layers' per-fold start
    and end cycles)."""

    node: Node
    schedule: LayerSchedule | None
    counters: LayerCounters
    start_cycle: float
    end_cycle: float
    timing: LayerTiming | None = None


def base_fold_cycles(accel: AcceleratorConfig, sched: LayerSchedule) -> np.ndarray:
    """Per fold: the cycles the array is busy, preload excluded, in the timing mode."""
    table = sched.fold_table
    mt = table[:, F_M1] - table[:, F_M0]
    kt = table[:, F_K1] - table[:, F_K0]
    nt = table[:, F_N1] - table[:, F_N0]
    rows, cols, df = accel.array.rows, accel.array.cols, accel.array.dataflow
    if accel.timing == "scalesim":
        # SCALE-Sim reports the 0-based index of a layer's (group's) last cycle
        first = (table[:, F_M0] == 0) & (table[:, F_K0] == 0) & (table[:, F_N0] == 0)
        return scalesim_fold_cycles_array(df, mt, kt, nt, rows, cols, first_fold=first)
    return mapping.fold_cycles_array(df, mt, kt, nt, rows)


def preload_cycles(accel: AcceleratorConfig) -> int:
    """Cycles of a fold's stationary preload (SCALE-Sim's count has it in the fold)."""
    if accel.timing == "scalesim":
        return 0
    return mapping.preload_cycles(accel.array.dataflow, accel.array.rows)


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
        ideal = config.timing == "scalesim"  # SCALE-Sim counts compute only
        self.dram = DRAM("dram", self, config.dram, ideal=ideal)
        self.buffers = {
            "input": SramBuffer("input_buffer", self, config.buffers.input, ideal=ideal),
            "weight": SramBuffer("weight_buffer", self, config.buffers.weight, ideal=ideal),
            "output": SramBuffer("output_buffer", self, config.buffers.output, ideal=ideal),
        }
        self.array = PEArray("pe_array", self, config.array, config.protection.hardened_bits)
        self.vector_unit = VectorUnit("vector_unit", self, lanes=config.vector_lanes)
        self.controller = Controller(
            "controller",
            self,
            dram=self.dram,
            buffers=self.buffers,
            array=self.array,
            vector_unit=self.vector_unit,
            ideal_memory=ideal,
            overlap_preload=config.double_buffer_weights and not ideal,
        )
        self.redundancy = redundancy_factory(self) if redundancy_factory else None
        self._preload_cycles = preload_cycles(config)

    def layer_counters(self, before: dict, after: dict) -> LayerCounters:
        """A layer's figures from the statistics before and after it."""

        def grew(module: Module, name: str):
            key = (module.path, name)
            return after[key] - before[key]

        buffers = self.buffers
        return LayerCounters(
            compute_cycles=grew(self.array, "busy_cycles") + grew(self.vector_unit, "busy_cycles"),
            redundancy_wait_cycles=grew(self.controller, "redundancy_wait_cycles"),
            sram_reads={k: grew(b, "read_bytes") for k, b in buffers.items()},
            sram_writes={k: grew(b, "written_bytes") for k, b in buffers.items()},
            dram_reads=grew(self.dram, "read_bytes"),
            dram_writes=grew(self.dram, "written_bytes"),
            pe_fraction_sum=grew(self.array, "mapped_pe_fraction_sum"),
            folds=grew(self.array, "folds"),
        )

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
        controller = self.controller

        def network():
            for node in graph.nodes:
                before = self.snapshot()
                start = env.now
                sched = timing = None
                inputs = [values[name] for name in node.inputs]
                if node.op in GEMM_OPS:
                    sched = schedule_layer(graph, node, self.config, batch=batch)
                    ops = lower_operands(node, inputs[0], sched.shape, lazy_a=True)
                    redundancy = None
                    if self.redundancy is not None:
                        redundancy = self.redundancy.for_layer(node, sched, ops)
                    timing = LayerTiming(base_fold_cycles(self.config, sched), self._preload_cycles)
                    yield from controller.gemm_layer(sched, ops, timing, redundancy)
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
                    out = vector_kernels.run_vector_node(graph, node, inputs)
                    spec = graph.tensors[node.output]
                    in_bytes = sum(
                        bytes_for(v.size, graph.tensors[n].bits)
                        for v, n in zip(inputs, node.inputs)
                    )
                    out_bytes = bytes_for(out.size, spec.bits) if node.op != "flatten" else 0
                    if node.op == "flatten":
                        in_bytes = 0  # a change of view: no data moves
                    yield from controller.vector_layer(
                        node.name, in_bytes, out_bytes, 0 if node.op == "flatten" else out.size
                    )
                    values[node.output] = out
                counters = self.layer_counters(before, self.snapshot())
                span = int(env.now - start)
                controller.stall_cycles.value += max(span - counters.compute_cycles, 0)
                run = LayerRun(node, sched, counters, start, env.now, timing)
                runs.append(run)
                if on_layer is not None:
                    on_layer(run)

        env.process(network())
        env.run()
        return values, runs
