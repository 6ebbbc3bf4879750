"""The cycle-level simulator computes the reference executor's integers, and its timing
responds to the hardware the way the hardware would (stalls emerge, they are not added)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from accelsim import functional
from accelsim.config import parse_workload
from accelsim.executor import execute
from accelsim.ir import save_graph
from accelsim.simulation import simulate
from accelsim.workload import build_workload
from tests.conftest import tiny_integer_graph

ROOT = Path(__file__).resolve().parents[1]


def make_workload(tmp_path: Path, *, graph=None, batch: int = 2, **accelerator):
    graph = graph or tiny_integer_graph()
    save_graph(graph, tmp_path / "tiny.npz")
    raw = {
        "name": "tiny",
        "model": "tiny.npz",
        "batch": batch,
        "seed": 3,
        "accelerator": accelerator,
    }
    return build_workload(parse_workload(raw), base_dir=tmp_path, source=tmp_path / "w.yaml")


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("timing", ["accurate", "scalesim"])
@pytest.mark.parametrize(("rows", "cols"), [(3, 2), (4, 4), (8, 16)])
def test_simulated_integers_equal_reference_executor(tmp_path, dataflow, timing, rows, cols):
    workload = make_workload(
        tmp_path, timing=timing, array={"rows": rows, "cols": cols, "dataflow": dataflow}
    )
    result = simulate(workload)
    np.testing.assert_array_equal(result.outputs, execute(workload.graph, workload.inputs))


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_saturating_accumulator_matches_executor(tmp_path, dataflow):
    graph = tiny_integer_graph(seed=5, acc_bits=14, overflow="saturate")
    workload = make_workload(
        tmp_path, graph=graph, array={"rows": 4, "cols": 3, "dataflow": dataflow}
    )
    expected = execute(graph, workload.inputs, keep_all=True)
    result = simulate(workload)
    np.testing.assert_array_equal(result.outputs, expected[graph.output])
    values = functional.forward(graph, workload.inputs, workload.config.accelerator)
    for name, value in expected.items():
        np.testing.assert_array_equal(values[name], value, err_msg=name)


def test_dram_bandwidth_stalls_emerge(tmp_path):
    # without preload overlap the array's own cycles cannot depend on the memory system
    fast = simulate(
        make_workload(
            tmp_path, dram={"bandwidth_bytes_per_cycle": 64.0}, double_buffer_weights=False
        )
    )
    slow = simulate(
        make_workload(
            tmp_path, dram={"bandwidth_bytes_per_cycle": 0.25}, double_buffer_weights=False
        )
    )
    assert sum(s.compute_cycles for s in slow.layers) == sum(s.compute_cycles for s in fast.layers)
    assert slow.totals()["stall_cycles"] > fast.totals()["stall_cycles"]
    assert slow.totals()["total_cycles"] > fast.totals()["total_cycles"]
    np.testing.assert_array_equal(slow.outputs, fast.outputs)


def test_scalesim_mode_has_ideal_memory(tmp_path):
    result = simulate(
        make_workload(tmp_path, timing="scalesim", dram={"bandwidth_bytes_per_cycle": 0.25})
    )
    gemm = [s for s in result.layers if s.op in ("conv2d", "linear")]
    assert all(s.stall_cycles == 0 for s in gemm)


def test_hardened_bits_never_change_an_output(tmp_path):
    widths = {"input": 8, "weight": 8, "product": 16, "accumulator": 32}  # every bit
    hardened = {c: list(range(width)) for c, width in widths.items()}
    workload = make_workload(
        tmp_path, array={"rows": 4, "cols": 4}, protection={"hardened_bits": hardened}
    )
    rng = np.random.default_rng(0)
    faults = np.array(
        [
            [
                c,
                rng.integers(4),
                rng.integers(4),
                rng.integers(20),
                int(rng.integers(1, 1 << 16)),
                0,
            ]
            for c in range(4)
            for _ in range(5)
        ]
    )
    plan = {0: {"conv1": {0: faults}, "fc": {0: faults, 1: faults}}}
    result = simulate(workload, fault_plans=plan)
    np.testing.assert_array_equal(result.outputs, execute(workload.graph, workload.inputs))


def test_protected_neurons_are_never_corrupted(tmp_path):
    workload = make_workload(
        tmp_path,
        batch=1,
        array={"rows": 4, "cols": 4},
        protection={"redundant_units": 4, "protected_neurons": {"conv1": [0, 1, 2, 3]}},
    )
    accumulator_msb = np.array(
        [[3, r, c, t, 1 << 20, 0] for r in range(4) for c in range(4) for t in range(0, 40, 3)]
    )
    plan = {b: {"conv1": {f: accumulator_msb for f in range(4)}} for b in range(2)}
    result = simulate(workload, samples=2, fault_plans=plan)
    np.testing.assert_array_equal(result.outputs, execute(workload.graph, workload.inputs[:2]))


def test_redundant_units_too_small_make_the_layer_wait(tmp_path):
    def run(size, channels):
        workload = make_workload(
            tmp_path,
            batch=1,
            array={"rows": 8, "cols": 8},
            protection={"redundant_units": size, "protected_neurons": {"conv1": channels}},
        )
        return next(s for s in simulate(workload, samples=1).layers if s.name == "conv1")

    # conv1: M = 36 pixels, K = 18 (3 k-folds of <= 8 rows), N = 4. One protected channel on
    # 64 multipliers: 36 one-cycle dot products per fold, less than a fold (36 + 8 + 4 cycles)
    enough = run(64, [0])
    assert enough.redundancy_wait_cycles == 0
    # four channels on one multiplier: 36 x 4 x 18 = 2592 cycles of recompute in all, which
    # the array's three folds cannot hide
    small = run(1, [0, 1, 2, 3])
    assert small.redundancy_wait_cycles > 0
    assert small.total_cycles >= 36 * 4 * 18


def _write(tmp_path: Path, raw: dict) -> Path:
    save_graph(tiny_integer_graph(), tmp_path / "tiny.npz")
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


BAD_WORKLOADS = {
    "unknown-key": ({"model": "tiny.npz", "accelerator": {"arary": {}}}, "accelerator.arary"),
    "wrong-type": ({"model": "tiny.npz", "batch": "two"}, "batch"),
    "negative-size": (
        {"model": "tiny.npz", "accelerator": {"array": {"rows": -4}}},
        "accelerator.array.rows",
    ),
    "buffer-too-small": (
        {"model": "tiny.npz", "accelerator": {"buffers": {"weight": {"capacity_kib": 0.001}}}},
        "accelerator.buffers.weight",
    ),
    "missing-model": ({"model": "nowhere.npz"}, "model"),
}


@pytest.mark.parametrize("case", sorted(BAD_WORKLOADS))
def test_bad_workload_is_one_clear_line(tmp_path, case):
    raw, key = BAD_WORKLOADS[case]
    path = _write(tmp_path, raw)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "accelsim", "run", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(path.name) in lines[0] and key in lines[0]
    assert not (out / "result.json").exists()


def test_run_writes_result_json_and_trace(tmp_path):
    path = _write(
        tmp_path,
        {
            "name": "tiny",
            "model": "tiny.npz",
            "batch": 2,
            "accelerator": {"array": {"rows": 4, "cols": 4}},
        },
    )
    out, trace = tmp_path / "out", tmp_path / "trace.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "run",
            str(path),
            "--out",
            str(out),
            "--trace",
            str(trace),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert {"layers", "totals", "area", "config"} <= result.keys()
    assert result["layers"][0]["name"] == "conv1"
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["name"] for e in events} >= {"fold"}


SCALESIM_CASES = [
    c
    for c in json.loads((ROOT / "tests" / "data" / "scalesim_expected.json").read_text())["cases"]
    if c["kind"] == "conv" and c["groups"] == 1
][::4]


@pytest.mark.parametrize(
    "case", SCALESIM_CASES, ids=lambda c: f"{c['name']}-{c['dataflow']}-{c['rows']}x{c['cols']}"
)
def test_simulator_in_scalesim_mode_reports_scalesims_cycles(tmp_path, case):
    """The whole path — topology CSV, graph, schedule, SimPy model — gives SCALE-Sim 3.0.0's
    own "Total Cycles" (numbers stored from the real package, tools/scalesim_reference.py)."""
    p = case["params"]
    csv = tmp_path / "layer.csv"
    csv.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\n"
        f"{case['name']}, {p['ifmap_h']}, {p['ifmap_w']}, {p['filter_h']}, {p['filter_w']}, "
        f"{p['channels']}, {p['num_filter']}, {p['stride']},\n"
    )
    raw = {
        "name": "scalesim",
        "model": {"scalesim_topology": "layer.csv"},
        "accelerator": {
            "timing": "scalesim",
            "array": {"rows": case["rows"], "cols": case["cols"], "dataflow": case["dataflow"]},
        },
    }
    workload = build_workload(parse_workload(raw), base_dir=tmp_path, source=tmp_path / "w.yaml")
    layer = next(s for s in simulate(workload).layers if s.op == "conv2d")
    assert layer.compute_cycles == case["total_cycles"]
    assert layer.total_cycles == case["total_cycles"]


WORKLOAD_FILES = sorted((ROOT / "workloads").glob("*.yaml"))


@pytest.mark.parametrize("path", WORKLOAD_FILES, ids=lambda p: p.stem)
def test_every_shipped_workload_simulates_to_the_executors_integers(path):
    from accelsim import load_workload
    from accelsim.config import load_workload_config

    config = load_workload_config(path)
    overrides = ["batch=2"]
    if config.dataset is not None:
        overrides.append("dataset.samples=4")
    if not isinstance(config.model, str) and hasattr(config.model, "builtin"):
        overrides.append("model.input_size=32")  # the same network at a test-sized input
    workload = load_workload(path, overrides)
    inputs = workload.inputs[:4]
    result = simulate(workload, samples=4)
    np.testing.assert_array_equal(result.outputs, execute(workload.graph, inputs))


def test_redundant_unit_stall_matches_a_hand_computed_case(tmp_path):
    """conv1 of the tiny graph, batch 1: M = 36 pixels, K = 18, N = 4 on an 8x8 ws array with
    ideal memory (scalesim timing). Folds: k-tiles 8, 8, 2; SCALE-Sim cycles 2R + C + M - 2 =
    58 each, the first reported one less: the array works over [0, 57), [57, 115), [115, 173).
    One protected channel on S = 1 multiplier: a fold's recompute job is M x ceil(Kt / S)
    cycles, 288, 288 and 72, queued in order at each fold's start: [0, 288), [288, 576),
    [576, 648). The tile is written back only when its recomputes are done: at 648, so the
    layer waits 648 - 173 = 475 cycles for the redundant unit."""
    workload = make_workload(
        tmp_path,
        batch=1,
        timing="scalesim",
        array={"rows": 8, "cols": 8},
        protection={"redundant_units": 1, "protected_neurons": {"conv1": [0]}},
    )
    conv1 = next(s for s in simulate(workload, samples=1).layers if s.name == "conv1")
    assert (conv1.folds, conv1.compute_cycles) == (3, 173)
    assert conv1.total_cycles == 648
    assert conv1.redundancy_wait_cycles == 475
    assert conv1.stall_cycles == 648 - 173
