"""Fold runs as transactions give today's cycles, fold by fold.

The oracle is the per-fold event model the hardware had before (tests/fold_event_oracle.py,
kept as it was). Seeded random graphs and accelerators — bandwidths, latencies, buffer sizes
and double buffering, dataflows, array sizes, both timing modes, redundant units — run
through both; every fold's start and end cycle, every layer's figures and every output
integer must be equal. A quick slice runs always; the bigger sweep is marked ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.config import AcceleratorConfig
from accelsim.datapath import lower_operands
from accelsim.errors import Infeasible
from accelsim.hw.accelerator import Accelerator
from accelsim.hw.controller import real_operand_counts
from accelsim.hw.module import Tracer
from accelsim.hw.pe_array import PEArray
from accelsim.hw.redundancy import RedundantUnits
from accelsim.intmath import quantize_multiplier
from accelsim.ir import Graph, Node, TensorSpec
from accelsim.schedule import schedule_layer
from tests import fold_event_oracle as oracle


def random_graph(rng: np.random.Generator) -> Graph:
    """conv -> clamp -> conv (maybe grouped) -> maxpool -> flatten -> linear."""
    c0 = int(rng.integers(1, 5))
    h = int(rng.integers(5, 11))
    c1 = int(rng.integers(2, 9))
    k1, s1, p1 = int(rng.choice([1, 3])), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    h1 = (h + 2 * p1 - k1) // s1 + 1
    groups = int(rng.choice([1, c1])) if c1 % 2 == 0 else 1
    c2 = c1 * int(rng.integers(1, 3)) if groups > 1 else int(rng.integers(2, 9))
    k2 = int(rng.choice([1, 2, 3]))
    h2 = h1 + 2 - k2 + 1
    hp = h2 // 2
    assert hp >= 1
    n_out = int(rng.integers(2, 12))
    mult, shift = quantize_multiplier(0.002)

    def gemm_attrs(**extra):
        return {
            "acc_bits": 32,
            "overflow": "wrap",
            "w_bits": 8,
            "out_lo": 0,
            "out_hi": 255,
            "out_zero_point": 0,
            **extra,
        }

    def params(weight_shape, n):
        return {
            "weight": rng.integers(-127, 128, weight_shape).astype(np.int64),
            "bias": rng.integers(-500, 500, n).astype(np.int64),
            "multiplier": np.full(n, mult, np.int64),
            "shift": np.full(n, shift, np.int64),
        }

    tensors = {
        "x": TensorSpec("x", (c0, h, h), 8, False, 1 / 255),
        "a1": TensorSpec("a1", (c1, h1, h1), 8, False, 0.05),
        "r1": TensorSpec("r1", (c1, h1, h1), 8, False, 0.05),
        "a2": TensorSpec("a2", (c2, h2, h2), 8, False, 0.05),
        "p2": TensorSpec("p2", (c2, hp, hp), 8, False, 0.05),
        "f2": TensorSpec("f2", (c2 * hp * hp,), 8, False, 0.05),
        "y": TensorSpec("y", (n_out,), 8, True, 0.1),
    }
    conv = dict(groups=1)
    nodes = [
        Node(
            "conv2d",
            "conv1",
            ["x"],
            "a1",
            gemm_attrs(stride=[s1, s1], padding=[p1, p1], **conv),
            params((c1, c0, k1, k1), c1),
        ),
        Node("clamp", "relu1", ["a1"], "r1", {"lo": 0, "hi": 255}),
        Node(
            "conv2d",
            "conv2",
            ["r1"],
            "a2",
            gemm_attrs(stride=[1, 1], padding=[1, 1], groups=groups),
            params((c2, c1 // groups, k2, k2), c2),
        ),
        Node(
            "maxpool2d",
            "pool2",
            ["a2"],
            "p2",
            {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]},
        ),
        Node("flatten", "flat", ["p2"], "f2"),
        Node(
            "linear",
            "fc",
            ["f2"],
            "y",
            gemm_attrs(out_lo=-128, out_hi=127),
            params((n_out, c2 * hp * hp), n_out),
        ),
    ]
    return Graph("integer", "random", "x", "y", tensors, nodes, {"source": "test"})


def random_config(rng: np.random.Generator) -> dict:
    def buffer():
        return {
            "capacity_kib": float(rng.choice([0.125, 0.25, 0.5, 1.0, 4.0, 64.0])),
            "double_buffered": bool(rng.integers(0, 2)),
        }

    return {
        "array": {
            "rows": int(rng.integers(1, 9)),
            "cols": int(rng.integers(1, 9)),
            "dataflow": str(rng.choice(["ws", "os", "is"])),
        },
        "timing": str(rng.choice(["accurate", "accurate", "scalesim"])),
        "double_buffer_weights": bool(rng.integers(0, 2)),
        "dram": {
            "bandwidth_bytes_per_cycle": float(rng.choice([0.25, 1.0, 3.0, 16.0, 256.0])),
            "latency_cycles": int(rng.choice([0, 1, 7, 100])),
        },
        "buffers": {"input": buffer(), "weight": buffer(), "output": buffer()},
        "protection": {
            "redundant_units": int(rng.integers(1, 9)),
            "redundancy_mode": str(rng.choice(["overwrite", "vote"])),
        },
    }


def _protected(rng: np.random.Generator, graph: Graph) -> dict[str, np.ndarray] | None:
    if rng.random() < 0.5:
        return None
    out = {}
    for node in graph.nodes:
        if node.op in ("conv2d", "linear") and rng.random() < 0.7:
            n = node.params["weight"].shape[0]
            out[node.name] = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)
    return out or None


def _both(seed: int):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng)
    config = AcceleratorConfig.model_validate(random_config(rng))
    protected = _protected(rng, graph)
    batch = int(rng.integers(1, 4))
    x = rng.integers(0, 256, size=(batch, *graph.tensors["x"].shape))
    size, mode = config.protection.redundant_units, config.protection.redundancy_mode

    def factory(cls):
        if protected is None:
            return None
        return lambda acc: cls("redundant_units", acc, size=size, mode=mode, protected=protected)

    try:
        expected = oracle.Accelerator(config, redundancy_factory=factory(oracle.RedundantUnits))
        expected_values, expected_runs = expected.run(graph, x)
    except Infeasible as exc:
        with pytest.raises(Infeasible, match=str(exc.args[0])[:30]):
            Accelerator(config, redundancy_factory=factory(RedundantUnits)).run(graph, x)
        return None
    fast = Accelerator(config, redundancy_factory=factory(RedundantUnits))
    values, runs = fast.run(graph, x)
    return expected, expected_values, expected_runs, fast, values, runs


def check_same_cycles(seed: int) -> bool:
    both = _both(seed)
    if both is None:
        return False
    expected, expected_values, expected_runs, fast, values, runs = both
    assert [r.node.name for r in runs] == [r.node.name for r in expected_runs]
    for want, got in zip(expected_runs, runs):
        where = f"seed {seed}, layer {want.node.name}"
        assert (got.start_cycle, got.end_cycle) == (want.start_cycle, want.end_cycle), where
        c, w = got.counters, want.counters
        assert c.compute_cycles == w.compute_cycles, where
        assert c.redundancy_wait_cycles == w.redundancy_wait_cycles, where
        assert (c.sram_reads, c.sram_writes) == (w.sram_reads, w.sram_writes), where
        assert (c.dram_reads, c.dram_writes, c.folds) == (w.dram_reads, w.dram_writes, w.folds)
        assert c.pe_fraction_sum == pytest.approx(w.pe_fraction_sum, rel=1e-12), where
        if want.schedule is not None:
            assert got.timing.fold_start.tolist() == w.fold_start, where
            assert got.timing.fold_end.tolist() == w.fold_end, where
    for name, value in expected_values.items():
        np.testing.assert_array_equal(values[name], value)
    if expected.redundancy is not None:
        units = fast.redundancy
        assert units.busy_cycles.value == expected.redundancy.busy_cycles
        assert units.recomputed_outputs.value == expected.redundancy.recomputed_outputs
        if units.mismatched_outputs is not None:
            assert units.mismatched_outputs.value == expected.redundancy.mismatches
    assert fast.dram.read_bytes.value == sum(r.counters.dram_reads for r in expected_runs)
    return True


@pytest.mark.parametrize("seed", range(40))
def test_fold_runs_give_the_per_fold_event_models_cycles(seed):
    check_same_cycles(seed)


@pytest.mark.slow
def test_fold_runs_give_the_per_fold_event_models_cycles_sweep():
    feasible = sum(check_same_cycles(seed) for seed in range(1000, 1600))
    assert feasible > 200  # most random accelerators can run the graph


def test_the_quick_slice_covers_every_mode(monkeypatch):
    """The random slice exercises what it claims: both timings, every dataflow, fold runs
    longer than one fold, redundant units, weights resident and not."""
    seen = set()
    array_runs = []
    original_run = PEArray.run

    def counted(self, cycles, layer, first, starts, ends):
        array_runs.append(layer)
        return original_run(self, cycles, layer, first, starts, ends)

    monkeypatch.setattr(PEArray, "run", counted)
    for seed in range(40):
        array_runs.clear()
        both = _both(seed)
        if both is None:
            continue
        _, _, _, fast, _, runs = both
        cfg = fast.config
        seen.add(("timing", cfg.timing))
        seen.add(("dataflow", cfg.array.dataflow))
        seen.add(("redundancy", fast.redundancy is not None))
        for run in runs:
            if run.schedule is not None:
                seen.add(("resident", run.schedule.weights_resident))
                transactions = array_runs.count(run.node.name)
                seen.add(("run", transactions < run.schedule.fold_count))
    for kind, value in [("timing", "accurate"), ("timing", "scalesim"), ("redundancy", True)]:
        assert (kind, value) in seen
    assert {("dataflow", d) for d in ("ws", "os", "is")} <= seen
    assert {("resident", True), ("resident", False), ("run", True)} <= seen


@pytest.mark.parametrize("seed", range(12))
def test_real_operand_counts_equal_the_prefix_sums(seed):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng)
    config = AcceleratorConfig.model_validate(
        {"array": {"rows": int(rng.integers(1, 6)), "cols": int(rng.integers(1, 6))}}
    )
    x = rng.integers(0, 256, size=(2, *graph.tensors["x"].shape))
    for node in graph.nodes[:1]:
        sched = schedule_layer(graph, node, config, batch=2)
        ops = lower_operands(node, x, sched.shape)
        prefix = ops.input_elements[0]
        t = sched.fold_table
        m0, m1, k0, k1 = t[:, 2], t[:, 3], t[:, 4], t[:, 5]
        want = prefix[m1, k1] - prefix[m0, k1] - prefix[m1, k0] + prefix[m0, k0]
        np.testing.assert_array_equal(real_operand_counts(t, ops), want)


@pytest.mark.parametrize("seed", range(20))
def test_segment_column_sums_equal_numpy_reduceat(seed):
    from accelsim.kernels import segment_column_sums

    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(1, 60)), int(rng.integers(1, 10))
    table = rng.integers(0, 2, size=(rows, cols)).astype(np.uint8)
    bounds = np.unique(rng.integers(0, rows + 1, size=int(rng.integers(2, 8))))
    if len(bounds) < 2:
        bounds = np.array([0, rows])
    want = np.add.reduceat(table[: bounds[-1]], bounds[:-1], axis=0, dtype=np.int64)
    np.testing.assert_array_equal(segment_column_sums(table, bounds), want)


def test_the_trace_shows_every_fold_and_transfer_as_the_per_fold_model_did():
    """Runs of folds are one transaction but still one ``fold`` span each; the vector unit is
    its own module now (it was the controller's track)."""

    def spans(accelerator_class, config, graph, x):
        tracer = Tracer(enabled=True)
        try:
            accelerator_class(config, tracer=tracer).run(graph, x)
        except Infeasible:
            return None
        return sorted(
            (
                "accelerator.vector_unit" if e["name"] == "vector" else e["module"],
                e["name"],
                float(e["start"]),
                float(e["end"]),
                sorted(e["args"].items()),
            )
            for e in tracer.events
        )

    compared = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        graph = random_graph(rng)
        config = AcceleratorConfig.model_validate(random_config(rng))
        x = rng.integers(0, 256, size=(1, *graph.tensors["x"].shape))
        want = spans(oracle.Accelerator, config, graph, x)
        assert spans(Accelerator, config, graph, x) == want, f"seed {seed}"
        compared += want is not None and any(s[1] == "fold" for s in want)
    assert compared >= 4
