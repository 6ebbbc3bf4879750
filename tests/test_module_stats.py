"""Each hardware module owns its statistics; result.json reports them per module path, and
they agree with the per-layer figures (which are the growth of those statistics)."""

from __future__ import annotations

import numpy as np

from accelsim.simulation import simulate
from tests.test_simulator import make_workload

MODULES = {
    "accelerator.dram": {"read_bytes", "written_bytes", "busy_cycles"},
    "accelerator.input_buffer": {"read_bytes", "written_bytes"},
    "accelerator.weight_buffer": {"read_bytes", "written_bytes"},
    "accelerator.output_buffer": {"read_bytes", "written_bytes"},
    "accelerator.pe_array": {"busy_cycles", "folds", "mapped_pe_fraction_sum"},
    "accelerator.vector_unit": {"busy_cycles"},
    "accelerator.controller": {"redundancy_wait_cycles", "stall_cycles"},
}


def test_result_json_reports_every_modules_statistics(tmp_path):
    result = simulate(make_workload(tmp_path, array={"rows": 4, "cols": 4}))
    modules = result.to_dict()["modules"]
    assert {path: set(stats) for path, stats in modules.items()} == MODULES


def test_module_statistics_are_the_sums_of_the_layer_figures(tmp_path):
    workload = make_workload(
        tmp_path,
        array={"rows": 3, "cols": 2},
        dram={"bandwidth_bytes_per_cycle": 2.0, "latency_cycles": 10},
    )
    result = simulate(workload)
    layers, modules = result.layers, result.modules
    gemm = [s for s in layers if s.op in ("conv2d", "linear")]
    assert modules["accelerator.dram"]["read_bytes"] == sum(s.dram_reads_bytes for s in layers)
    assert modules["accelerator.dram"]["written_bytes"] == sum(s.dram_writes_bytes for s in layers)
    for buffer in ("input", "weight", "output"):
        stats = modules[f"accelerator.{buffer}_buffer"]
        assert stats["read_bytes"] == sum(s.sram_reads_bytes[buffer] for s in layers)
        assert stats["written_bytes"] == sum(s.sram_writes_bytes[buffer] for s in layers)
    array = modules["accelerator.pe_array"]
    assert array["folds"] == sum(s.folds for s in layers)
    assert array["busy_cycles"] == sum(s.compute_cycles for s in gemm)
    assert array["busy_cycles"] + modules["accelerator.vector_unit"]["busy_cycles"] == sum(
        s.compute_cycles for s in layers
    )
    assert modules["accelerator.controller"]["stall_cycles"] == sum(s.stall_cycles for s in layers)
    # the channel is busy for at least the bursts of every byte moved
    dram = modules["accelerator.dram"]
    assert dram["busy_cycles"] >= (dram["read_bytes"] + dram["written_bytes"]) / 2.0


def test_ideal_memory_counts_bytes_but_no_busy_cycles(tmp_path):
    result = simulate(make_workload(tmp_path, array={"rows": 4, "cols": 4}, timing="scalesim"))
    dram = result.modules["accelerator.dram"]
    assert dram["read_bytes"] > 0 and dram["busy_cycles"] == 0


def _protected_run(tmp_path, mode: str, fault_plans=None):
    workload = make_workload(
        tmp_path,
        batch=1,
        array={"rows": 4, "cols": 4},
        protection={
            "redundant_units": 2,
            "redundancy_mode": mode,
            "protected_neurons": {"conv1": [0, 1]},
        },
    )
    return workload, simulate(workload, samples=1, fault_plans=fault_plans)


def test_redundant_units_report_busy_cycles_and_recomputed_outputs(tmp_path):
    _, result = _protected_run(tmp_path, "overwrite")
    units = result.modules["accelerator.redundant_units"]
    assert set(units) == {"busy_cycles", "recomputed_outputs"}  # no vote: nothing compared
    assert units["recomputed_outputs"] == 36 * 2  # 6x6 pixels x 2 protected channels
    # every recomputed output needs ceil(Kt / 2) cycles per k-fold: K = 18 on 4 rows
    assert units["busy_cycles"] == 36 * 2 * sum(-(-kt // 2) for kt in (4, 4, 4, 4, 2))


def test_vote_mode_reports_mismatches_zero_fault_free_and_counted_under_faults(tmp_path):
    _, clean = _protected_run(tmp_path, "vote")
    assert clean.modules["accelerator.redundant_units"]["mismatched_outputs"] == 0
    # a flipped high accumulator bit in every PE of every fold of conv1: the array's
    # protected outputs are wrong, the recompute is not, and the vote counts them
    accumulator_msb = np.array(
        [[3, r, c, t, 1 << 20, 0] for r in range(4) for c in range(4) for t in range(0, 40, 3)]
    )
    plan = {0: {"conv1": {f: accumulator_msb for f in range(5)}}}
    _, faulty = _protected_run(tmp_path, "vote", plan)
    units = faulty.modules["accelerator.redundant_units"]
    assert 0 < units["mismatched_outputs"] <= units["recomputed_outputs"]
