"""The array's values without the timing: the same lowering, folds and kernels as the
simulator, called directly. Fault campaigns use it for golden runs and for recomputing what
a fault reaches; tests prove it equals both ``simulate()`` and the reference executor.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import executor
from .config import AcceleratorConfig
from .datapath import compute_fault_free, compute_layer, gemm_output, hardened_masks, lower_operands
from .ir import Graph, Node
from .ops import GEMM_OPS
from .pe_spec import PESpec
from .schedule import LayerSchedule, gemm_shape, schedule_layer


def run_folds(
    node: Node,
    sched: LayerSchedule,
    ops,
    accel: AcceleratorConfig,
    faults: Mapping[int, np.ndarray] | None = None,
) -> None:
    """Run every fold of a layer, updating ``ops.psum`` in place (faults per fold index)."""
    compute_layer(
        PESpec.for_layer(accel.array, sched.shape),
        sched,
        ops,
        faults,
        hardened_masks(accel.protection.hardened_bits),
    )


def run_layer(
    graph: Graph,
    node: Node,
    x: np.ndarray,
    accel: AcceleratorConfig,
    faults: Mapping[int, np.ndarray] | None = None,
    sched: LayerSchedule | None = None,
) -> np.ndarray:
    """One node on its input, as the accelerator computes it."""
    if node.op not in GEMM_OPS:
        return executor.run_node(graph, node, [x])
    if not faults:  # fault-free values do not depend on the tiling: no schedule needed
        shape = sched.shape if sched is not None else gemm_shape(graph, node, int(x.shape[0]))
        ops = lower_operands(node, x, shape, lazy_a=True)
        compute_fault_free(shape, ops)
        return gemm_output(node, ops, shape)
    sched = sched or schedule_layer(graph, node, accel, batch=int(x.shape[0]))
    ops = lower_operands(node, x, sched.shape)
    run_folds(node, sched, ops, accel, faults)
    return gemm_output(node, ops, sched.shape)


def forward(
    graph: Graph,
    x: np.ndarray,
    accel: AcceleratorConfig,
    faults: Mapping[str, Mapping[int, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Every tensor of the network for input batch ``x``."""
    values = {graph.input: np.asarray(x, dtype=np.int64)}
    for node in graph.nodes:
        inputs = [values[name] for name in node.inputs]
        if node.op in GEMM_OPS:
            values[node.output] = run_layer(
                graph, node, inputs[0], accel, None if faults is None else faults.get(node.name)
            )
        else:
            values[node.output] = executor.run_node(graph, node, inputs)
    return values
