"""The top module: the netlist of the accelerator, elaborated from AcceleratorConfig.

Reading ``Accelerator.__init__`` is reading the block diagram::

    DRAM ──▶ input buffer ─┐
         ──▶ weight buffer ─┼─▶ controller ──▶ PE array (rows × cols) ──▶ output buffer ──▶ DRAM
                            └─▶ redundant units (recompute protected neurons, beside the array)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from .. import executor, mapping
from ..codes import Dataflow
from ..config import AcceleratorConfig
from ..datapath import compute_layer, gemm_output, lower_operands
from ..ir import Graph, Node
from ..ops import GEMM_OPS
from ..schedule import FoldJob, LayerSchedule, bytes_for, schedule_layer
from .buffer import SramBuffer
from .controller import Controller, LayerCounters
from .dram import DRAM
from .module import Module, Tracer
from .pe_array import PEArray


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
        from ..timing_scalesim import scalesim_fold_cycles

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
