"""Quantisation (numpy only): accuracy at 8 bits, reserved-MSB ranges, overrides, no torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from accelsim.config import LayerQuantization, QuantizationConfig
from accelsim.errors import AccelsimError
from accelsim.executor import dequantize, execute, quantize_input
from accelsim.ir import Graph, Node, TensorSpec, load_graph
from accelsim.quantize import confined_range, fixed_point, quantization_key, quantize

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "workloads" / "zoo"
TEST_DATA = ROOT / "workloads" / "data" / "digits_test.npz"


def digits_test():
    with np.load(TEST_DATA, allow_pickle=False) as data:
        return data["x"], data["y"]


@pytest.mark.parametrize("model", ["digits_cnn", "digits_mlp"])
def test_8_bit_accuracy_within_one_point_of_float(model):
    x, y = digits_test()
    float_graph = load_graph(ZOO / f"{model}.npz")
    float_acc = np.mean(np.argmax(execute(float_graph, x), axis=1) == y)
    assert float_acc == pytest.approx(float_graph.metadata["float_test_accuracy"])
    graph = quantize(float_graph, QuantizationConfig())
    int_acc = np.mean(np.argmax(execute(graph, quantize_input(graph, x)), axis=1) == y)
    assert float_acc > 0.95
    assert abs(int_acc - float_acc) <= 0.01


def residual_float_graph(seed: int = 0) -> Graph:
    """conv-relu-conv, + input (residual), relu, global pool, linear; calibrated by numpy."""
    rng = np.random.default_rng(seed)

    def gemm(op, name, inp, out, shape, attrs=None):
        return Node(
            op,
            name,
            [inp],
            out,
            attrs or {},
            {
                "weight": rng.normal(0, 0.5, shape).astype(np.float32),
                "bias": rng.normal(0, 0.1, shape[0]).astype(np.float32),
            },
        )

    conv = {"stride": [1, 1], "padding": [1, 1], "groups": 1}
    nodes = [
        gemm("conv2d", "conv1", "input", "c1", (3, 3, 3, 3), conv),
        Node("clamp", "relu1", ["c1"], "r1", {"lo": 0.0, "hi": float("inf")}),
        gemm("conv2d", "conv2", "r1", "c2", (3, 3, 3, 3), conv),
        Node("add", "add", ["c2", "input"], "s"),
        Node("clamp", "relu2", ["s"], "r2", {"lo": 0.0, "hi": 6.0}),
        Node("global_avgpool", "pool", ["r2"], "p"),
        Node("flatten", "flat", ["p"], "f"),
        gemm("linear", "fc", "f", "y", (4, 3)),
    ]
    shapes = {
        "input": (3, 5, 5),
        "c1": (3, 5, 5),
        "r1": (3, 5, 5),
        "c2": (3, 5, 5),
        "s": (3, 5, 5),
        "r2": (3, 5, 5),
        "p": (3, 1, 1),
        "f": (3,),
        "y": (4,),
    }
    tensors = {n: TensorSpec(n, s, None, True, 1.0) for n, s in shapes.items()}
    graph = Graph("float", "residual", "input", "y", tensors, nodes, {})
    values = execute(graph, calibration_inputs(), keep_all=True)
    for name, spec in graph.tensors.items():
        graph.tensors[name] = dataclasses.replace(
            spec, calib_min=float(values[name].min()), calib_max=float(values[name].max())
        )
    return graph


def calibration_inputs(n: int = 32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 3, 5, 5))


def test_residual_graph_integer_output_tracks_float():
    float_graph = residual_float_graph()
    graph = quantize(float_graph, QuantizationConfig())
    assert [n.op for n in graph.nodes] == [
        "conv2d",
        "conv2d",
        "add",
        "global_avgpool",
        "flatten",
        "linear",
    ]
    assert not graph.tensors["r1"].signed and not graph.tensors["r2"].signed  # fused ReLUs
    assert graph.tensors["c2"].signed and graph.tensors["input"].signed
    x = calibration_inputs()
    expected = execute(float_graph, x)
    got = dequantize(graph.tensors["y"], execute(graph, quantize_input(graph, x)))
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert error < 0.05


@pytest.mark.parametrize("bits,r", [(8, 0), (8, 2), (6, 1), (4, 2), (3, 1)])
def test_reserved_msbs_confine_every_requantised_tensor(bits, r):
    r_hidden = r
    float_graph = residual_float_graph()
    graph = quantize(
        float_graph, QuantizationConfig(weight_bits=bits, activation_bits=bits, reserved_msbs=r)
    )
    values = execute(graph, quantize_input(graph, calibration_inputs() * 3), keep_all=True)
    for node in graph.nodes:
        out = graph.tensors[node.output]
        assert out.bits == bits
        if node.op in ("conv2d", "linear", "add"):
            # hidden activations are clipped; the network output keeps its full range
            r = 0 if node.output == graph.output else r_hidden
            lo, hi = confined_range(bits, out.signed, r)
            if out.signed:
                assert (lo, hi) == (-(2 ** (bits - 1 - r)), 2 ** (bits - 1 - r) - 1)
            else:
                assert (lo, hi) == (0, 2 ** (bits - r) - 1)
            assert lo <= node.attrs["out_lo"] <= node.attrs["out_hi"] <= hi
            assert node.attrs["out_hi"] == hi
            # the scale spans the calibrated range over the full width: r is a real clip at
            # calib_max / 2**r, not a coarser resolution
            full_hi = confined_range(bits, out.signed, 0)[1]
            amax = max(abs(out.calib_min), abs(out.calib_max))
            assert out.scale == pytest.approx(amax / full_hi, rel=1e-6)
            assert lo <= values[node.output].min() and values[node.output].max() <= hi
        if node.op in ("conv2d", "linear"):
            w_max = 2 ** (bits - 1) - 1
            assert np.abs(node.params["weight"]).max() == w_max  # per-channel symmetric


def test_weights_are_symmetric_per_output_channel():
    float_graph = residual_float_graph()
    graph = quantize(float_graph, QuantizationConfig(weight_bits=5))
    q = graph.node("conv1").params["weight"]
    w = float_graph.node("conv1").params["weight"]
    np.testing.assert_array_equal(np.abs(q).reshape(3, -1).max(axis=1), [15, 15, 15])
    scale = np.abs(w).reshape(3, -1).max(axis=1) / 15
    np.testing.assert_allclose(q * scale[:, None, None, None], w, atol=scale.max() / 2 + 1e-7)


def test_per_layer_overrides_apply_and_unknown_layers_are_named():
    float_graph = residual_float_graph()
    spec = QuantizationConfig(
        per_layer={
            "conv2": LayerQuantization(
                weight_bits=4, activation_bits=6, acc_bits=20, reserved_msbs=1
            )
        }
    )
    graph = quantize(float_graph, spec)
    conv2 = graph.node("conv2")
    assert conv2.attrs["w_bits"] == 4 and conv2.attrs["acc_bits"] == 20
    assert graph.tensors["c2"].bits == 6 and conv2.attrs["out_hi"] == 2**4 - 1
    assert graph.node("conv1").attrs["w_bits"] == 8
    bad = QuantizationConfig(per_layer={"conv9": LayerQuantization(weight_bits=4)})
    with pytest.raises(AccelsimError) as info:
        quantize(float_graph, bad, source="w.yaml")
    text = str(info.value)
    assert "w.yaml" in text and "quantization.per_layer.conv9" in text and "conv1" in text
    too_many = QuantizationConfig(
        per_layer={"fc": LayerQuantization(activation_bits=4, reserved_msbs=3)}
    )
    with pytest.raises(AccelsimError, match="per_layer.fc.reserved_msbs"):
        quantize(float_graph, too_many)


def test_layer_settings_and_quantization_key():
    cfg = QuantizationConfig(
        weight_bits=6,
        activation_bits=7,
        acc_bits=24,
        overflow="saturate",
        reserved_msbs=1,
        per_layer={"fc": {"weight_bits": 4}},
    )
    assert cfg.for_layer("fc").weight_bits == 4 and cfg.for_layer("conv1").weight_bits == 6
    assert cfg.for_layer(None).activation_bits == 7 and cfg.overflow == "saturate"
    graph = residual_float_graph()
    key = quantization_key(graph, cfg)
    assert key == quantization_key(residual_float_graph(), cfg)
    assert key != quantization_key(graph, cfg.model_copy(update={"reserved_msbs": 0}))
    assert key != quantization_key(residual_float_graph(seed=1), cfg)
    integer = quantize(graph, cfg, source="w.yaml")  # the source names errors, not the key
    assert integer.metadata["quantization_key"] == key
    assert integer.node("fc").attrs["overflow"] == "saturate"


def test_fixed_point_multipliers():
    for real in (1e-6, 0.0123, 0.5, 0.999, 1.0, 3.7, 1e-20):
        m, s = fixed_point(real)
        assert 0 <= m < 2**31 and 0 <= s <= 62
        if real > 1e-15:
            assert m * 2.0**-s == pytest.approx(real, rel=1e-6)
    assert fixed_point(0.0) == (0, 0)


def test_quantize_needs_no_torch():
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now raises ImportError
        import numpy as np
        from accelsim.ir import load_graph
        from accelsim.executor import execute, quantize_input
        from accelsim.config import QuantizationConfig
        from accelsim.quantize import quantize
        from workloads.accuracy import accuracy_table
        graph = quantize(
            load_graph({str(ZOO / "digits_cnn.npz")!r}), QuantizationConfig(weight_bits=6)
        )
        x = np.load({str(TEST_DATA)!r})["x"][:8]
        print(execute(graph, quantize_input(graph, x)).shape)
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(8, 10)"
