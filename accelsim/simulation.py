"""``simulate()``: run a workload through the accelerator model and collect the figures."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from . import cost
from .config import ProtectionConfig
from .hw.accelerator import Accelerator, LayerRun
from .hw.module import Tracer
from .hw.redundancy import RedundantUnits
from .ops import GEMM_OPS
from .results import LayerStats, SimResult
from .workload import Workload

FaultPlan = Mapping[str, Mapping[int, np.ndarray]]  # layer -> fold index -> kernel fault rows


def layer_stats(run: LayerRun, workload: Workload, widths: cost.RegisterWidths) -> LayerStats:
    accel, tech = workload.config.accelerator, workload.config.technology
    c = run.counters
    total = int(run.end_cycle - run.start_cycle)
    pes = accel.array.rows * accel.array.cols
    macs = run.schedule.shape.macs if run.schedule is not None else 0
    energy = cost.memory_energy_pj(
        tech, sum(c.sram_reads.values()) + sum(c.sram_writes.values()), c.dram_reads + c.dram_writes
    )
    if run.schedule is not None:
        s = run.schedule.shape
        energy += macs * cost.mac_energy_pj(tech, s.a_bits, s.w_bits, s.acc_bits)
        energy += cost.register_energy_pj(tech, accel, widths, total)
    return LayerStats(
        name=run.node.name,
        op=run.node.op,
        macs=macs,
        total_cycles=total,
        compute_cycles=c.compute_cycles,
        stall_cycles=max(total - c.compute_cycles, 0),
        redundancy_wait_cycles=c.redundancy_wait_cycles,
        utilization=macs / (pes * total) if total and macs else 0.0,
        mapping_efficiency=c.pe_fraction_sum / c.folds if c.folds else 0.0,
        folds=c.folds,
        sram_reads_bytes=dict(c.sram_reads),
        sram_writes_bytes=dict(c.sram_writes),
        dram_reads_bytes=c.dram_reads,
        dram_writes_bytes=c.dram_writes,
        energy_pj=energy,
    )


def redundant_units_factory(
    protection: ProtectionConfig, protected: Mapping[str, np.ndarray] | None
) -> Callable | None:
    """How to build the recompute engine of a run, or None when nothing is protected."""
    if protected is None and protection.protected_neurons is not None:
        protected = {k: np.asarray(v) for k, v in protection.protected_neurons.items()}
    if not protected or not any(len(v) for v in protected.values()):
        return None

    def build(accelerator: Accelerator) -> RedundantUnits:
        return RedundantUnits(
            "redundant_units",
            accelerator,
            size=protection.redundant_units,
            mode=protection.redundancy_mode,
            protected=protected,
        )

    return build


def simulate(
    workload: Workload,
    *,
    samples: int | None = None,
    fault_plans: Mapping[int, FaultPlan] | None = None,
    tracer: Tracer | None = None,
    on_layer: Callable[[LayerRun], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    protected: Mapping[str, np.ndarray] | None = None,
) -> SimResult:
    """Simulate every batch of the workload's inputs (the first ``samples`` if given).

    Timing figures are those of one batch (they do not depend on the data); so are the
    per-module statistics (``SimResult.modules``); values and accuracy cover every sample. ``fault_plans`` maps a batch index to the faults injected
    in that batch's run. ``tracer`` records the first batch's module activity.
    """
    cfg = workload.config
    graph = workload.graph
    inputs = workload.inputs if samples is None else workload.inputs[:samples]
    batch = cfg.batch
    batches = max(1, -(-len(inputs) // batch))
    widths = cost.register_widths(graph)
    redundancy_factory = redundant_units_factory(cfg.accelerator.protection, protected)
    outputs = []
    stats: list[LayerStats] = []
    modules: dict[str, dict[str, int | float]] = {}
    for b in range(batches):
        x = inputs[b * batch : (b + 1) * batch]
        accelerator = Accelerator(
            cfg.accelerator,
            tracer=tracer if b == 0 else None,
            redundancy_factory=redundancy_factory,
        )
        values, runs = accelerator.run(
            graph,
            x,
            fault_plan=None if fault_plans is None else fault_plans.get(b),
            on_layer=on_layer if b == 0 else None,
        )
        if b == 0:
            stats = [layer_stats(run, workload, widths) for run in runs]
            modules = accelerator.statistics_by_path()
        outputs.append(values[graph.output])
        if on_batch is not None:
            on_batch(b + 1, batches)
    out = np.concatenate(outputs, axis=0)
    labels = None if workload.labels is None else workload.labels[: len(inputs)]
    accuracy = None
    if labels is not None:
        accuracy = float(np.mean(out.reshape(len(out), -1).argmax(axis=1) == labels))
    area = cost.area(cfg.accelerator, cfg.technology, widths).to_dict()
    energy = {
        "gemm_pj": sum(s.energy_pj for s in stats if s.op in GEMM_OPS),
        "vector_and_memory_pj": sum(s.energy_pj for s in stats if s.op not in GEMM_OPS),
    }
    return SimResult(
        workload=cfg.name,
        layers=tuple(stats),
        area=area,
        energy_pj=energy,
        clock_mhz=cfg.accelerator.clock_mhz,
        batch=batch,
        batches=batches,
        accuracy=accuracy,
        labels=labels,
        outputs=out,
        config=cfg.model_dump(mode="json"),
        modules=modules,
    )
