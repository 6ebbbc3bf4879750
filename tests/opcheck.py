"""Shared checks for the op tests: the simulator equals the reference executor in every
dataflow, with the fault-free fast path and with the per-dataflow fold kernels forced."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelsim.config import parse_workload
from accelsim.executor import execute
from accelsim.ir import GEMM_OPS, Graph, save_graph
from accelsim.schedule import schedule_layer
from accelsim.simulation import simulate
from accelsim.workload import build_workload

DATAFLOWS = ("ws", "os", "is")
BUFFER_KIB = 4096  # room for the largest tile of the standard classifiers
NEVER = 1 << 40  # a fold cycle no fold reaches: the fault never fires


def workload_of(
    graph: Graph,
    inputs: np.ndarray,
    tmp_path: Path,
    dataflow: str,
    *,
    rows: int = 4,
    cols: int = 4,
    timing: str = "accurate",
):
    """A workload running ``graph`` on ``inputs`` (one batch) on a small array."""
    save_graph(graph, tmp_path / "g.npz")
    buffers = {b: {"capacity_kib": BUFFER_KIB} for b in ("input", "weight", "output")}
    raw = {
        "name": "ops",
        "model": "g.npz",
        "batch": int(len(inputs)),
        "seed": 0,
        "accelerator": {
            "timing": timing,
            "buffers": buffers,
            "array": {"rows": rows, "cols": cols, "dataflow": dataflow},
        },
    }
    workload = build_workload(parse_workload(raw), base_dir=tmp_path, source=tmp_path / "w.yaml")
    return workload.__class__(**{**workload.__dict__, "inputs": np.asarray(inputs, np.int64)})


def silent_fault_plan(workload) -> dict:
    """One accumulator flip in every fold of every GEMM layer, at a cycle that never comes:
    every output tile is recomputed fold by fold by the dataflow's fold kernel (not the
    fault-free shortcut), and must still give the same values."""
    row = np.array([[3, 0, 0, NEVER, 1, 0]], dtype=np.int64)
    graph, accel = workload.graph, workload.config.accelerator
    plan = {}
    for node in graph.nodes:
        if node.op in GEMM_OPS:
            sched = schedule_layer(graph, node, accel, batch=workload.config.batch)
            plan[node.name] = {fold.index: row for fold in sched.folds}
    return {0: plan}


def assert_simulator_equals_executor(
    graph: Graph,
    inputs: np.ndarray,
    tmp_path: Path,
    *,
    dataflows=DATAFLOWS,
    rows: int = 4,
    cols: int = 4,
    timing: str = "accurate",
) -> np.ndarray:
    """Simulate ``graph`` in every dataflow, fault-free and with fold kernels forced."""
    expected = execute(graph, inputs)
    for dataflow in dataflows:
        workload = workload_of(
            graph, inputs, tmp_path, dataflow, rows=rows, cols=cols, timing=timing
        )
        result = simulate(workload)
        np.testing.assert_array_equal(result.outputs, expected, err_msg=f"{dataflow} fast path")
        if any(n.op in GEMM_OPS for n in graph.nodes):
            forced = simulate(workload, fault_plans=silent_fault_plan(workload))
            np.testing.assert_array_equal(
                forced.outputs, expected, err_msg=f"{dataflow} fold kernels"
            )
    return expected
