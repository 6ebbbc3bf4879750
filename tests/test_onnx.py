"""ONNX in: the same float graph as the torch.export path, and (calibrated on the same data)
the identical integer graph; QDQ models refused; the export command takes .onnx files."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.ir import Graph, load_graph

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

from accelsim.config import QuantizationConfig  # noqa: E402
from accelsim.quantize import quantize  # noqa: E402
from workloads.classifiers import CLASSIFIERS  # noqa: E402
from workloads.export import calibrate, export  # noqa: E402
from workloads.onnx_import import export_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# torch.onnx's TorchScript exporter warns that it is legacy (the dynamo one needs onnxscript)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def to_onnx(model, x) -> onnx.ModelProto:
    """torch.onnx.export (TorchScript exporter; the dynamo one needs onnxscript), without
    constant folding so that batch norms arrive as BatchNormalization nodes."""
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, dynamo=False, do_constant_folding=False)
    return onnx.load_from_string(buffer.getvalue())


def structure(graph: Graph) -> list:
    """Everything of a graph but its names: ops, wiring (by position), attrs, params, specs."""
    position = {graph.input: -1}
    position.update({n.output: i for i, n in enumerate(graph.nodes)})
    items = []
    for node in graph.nodes:
        spec = graph.tensors[node.output]
        items.append(
            (
                node.op,
                [position[i] for i in node.inputs],
                node.attrs,
                {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in node.params.items()},
                (spec.shape, spec.bits, spec.signed, spec.scale, spec.calib_min, spec.calib_max),
            )
        )
    return items


def both_paths(model, x, n_calib: int = 4):
    data = x.numpy()
    via_torch = export(model, x[:1], x)
    via_onnx = export_onnx(to_onnx(model, x[:1]), data)
    calibrate(via_torch, data)  # the same calibration for both (numpy float executor)
    return via_torch, via_onnx


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "mobilenet_v3_small",
        "shufflenet_v2_x0_5",
        "squeezenet1_1",
        "efficientnet_b0",
        "googlenet",
    ],
)
def test_onnx_and_torch_export_give_the_identical_integer_graph(name):
    model = CLASSIFIERS[name]()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    via_torch, via_onnx = both_paths(model, x)
    assert structure(via_onnx) == structure(via_torch)  # the same float graph
    for bits in (8, 4):
        spec = QuantizationConfig(weight_bits=bits, activation_bits=bits)
        assert structure(quantize(via_onnx, spec)) == structure(quantize(via_torch, spec))


def test_onnx_of_every_new_op_matches_torch():
    from tests.test_ops_sim import EveryOp

    torch.manual_seed(0)
    model = EveryOp().eval()
    model.shuffle = torch.nn.Identity()  # aten::channel_shuffle has no ONNX export (the
    # view -> transpose -> view channel shuffle stays in the model)
    # 20x20: adaptive pooling to a size that does not divide its input has no ONNX export
    x = torch.randn(8, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    via_torch, via_onnx = both_paths(model, x)
    assert [n.op for n in via_onnx.nodes] == [n.op for n in via_torch.nodes]
    from accelsim.executor import execute

    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(execute(via_onnx, x.numpy()), expected, rtol=1e-4, atol=1e-4)
    assert structure(quantize(via_onnx, QuantizationConfig())) == structure(
        quantize(via_torch, QuantizationConfig())
    )


def qdq_model() -> onnx.ModelProto:
    h = onnx.helper
    w = onnx.numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")
    scale = onnx.numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zero = onnx.numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [
        h.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
        h.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dequant"),
        h.make_node("Conv", ["d", "w"], ["y"], name="conv"),
    ]
    graph = h.make_graph(
        nodes,
        "qdq",
        [h.make_tensor_value_info("x", 1, [1, 1, 4, 4])],
        [h.make_tensor_value_info("y", 1, [1, 2, 4, 4])],
        [w, scale, zero],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_already_quantised_qdq_models_are_refused_with_the_reason():
    with pytest.raises(AccelsimError) as info:
        export_onnx(qdq_model(), np.zeros((1, 1, 4, 4)))
    message = str(info.value)
    assert "onnx.QuantizeLinear" in message and "already quantised" in message
    assert "export the float model" in message


def test_export_command_reads_onnx_files(tmp_path):
    model = CLASSIFIERS["squeezenet1_1"]()
    onnx.save(to_onnx(model, torch.zeros(1, 3, 32, 32)), tmp_path / "squeeze.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(size=(3, 3, 32, 32)))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "export",
            str(tmp_path / "squeeze.onnx"),
            "--out",
            str(tmp_path / "g.npz"),
            "--calibration",
            str(tmp_path / "calib.npy"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    graph = load_graph(tmp_path / "g.npz")
    assert (
        graph.metadata["source"] == "onnx"
        and "calib.npy (3 samples)" in graph.metadata["calibration"]
    )
    assert graph.tensors["input"].shape == (3, 32, 32)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "export",
            str(tmp_path / "no.onnx"),
            "--out",
            str(tmp_path / "x.npz"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "ONNX file not found" in bad.stderr


def test_missing_onnx_gives_install_hint(monkeypatch):
    from workloads import onnx_import

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(AccelsimError, match=r"accelsim\[onnx\]"):
        onnx_import._onnx()


def test_workloads_exposes_export_onnx():
    import workloads

    assert workloads.export_onnx is export_onnx


def keras_style_model() -> onnx.ModelProto:
    """What tf2onnx writes for Keras: Conv with auto_pad SAME_UPPER and stride 2 (asymmetric
    padding), an explicit Pad before a Conv, HardSigmoid, Relu, GlobalAveragePool, Gemm."""
    h = onnx.helper
    rng = np.random.default_rng(0)
    init = [
        onnx.numpy_helper.from_array(rng.normal(0, 0.3, s).astype(np.float32), n)
        for n, s in (
            ("w1", (4, 3, 3, 3)),
            ("b1", (4,)),
            ("w2", (6, 4, 2, 2)),
            ("fc", (5, 6)),
            ("fb", (5,)),
        )
    ]
    init.append(onnx.numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), "p"))
    nodes = [
        h.make_node(
            "Conv",
            ["x", "w1", "b1"],
            ["c1"],
            name="/stem/Conv",
            auto_pad="SAME_UPPER",
            strides=[2, 2],
        ),
        h.make_node("Relu", ["c1"], ["r1"], name="/stem/Relu"),
        h.make_node("Pad", ["r1", "p"], ["pd"], name="/pad/Pad"),
        h.make_node("Conv", ["pd", "w2"], ["c2"], name="/conv2/Conv"),
        h.make_node("HardSigmoid", ["c2"], ["s"], name="/gate/HardSigmoid", alpha=1 / 6, beta=0.5),
        h.make_node("GlobalAveragePool", ["s"], ["g"], name="/pool/GlobalAveragePool"),
        h.make_node("Flatten", ["g"], ["f"], name="/flatten/Flatten"),
        h.make_node("Gemm", ["f", "fc", "fb"], ["y"], name="/head/Gemm", transB=1),
    ]
    graph = h.make_graph(
        nodes,
        "keras_like",
        [h.make_tensor_value_info("x", 1, [1, 3, 8, 8])],
        [h.make_tensor_value_info("y", 1, [1, 5])],
        init,
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_keras_style_same_padding_matches_the_onnx_reference_runtime(tmp_path):
    from onnx.reference import ReferenceEvaluator

    from accelsim.executor import execute, quantize_input
    from tests.opcheck import assert_simulator_equals_executor

    model = keras_style_model()
    x = np.random.default_rng(1).normal(size=(4, 3, 8, 8)).astype(np.float32)
    graph = export_onnx(model, x)
    assert graph.node("stem").attrs["padding"] == [0, 0]  # 8 -> 4 at stride 2: pads 0 / 1
    assert graph.node("stem").attrs["padding_end"] == [1, 1]
    conv2 = graph.node("conv2").attrs  # the Pad (top 1, right 1) folded into the conv
    assert conv2["padding"] == [1, 0] and conv2["padding_end"] == [0, 1]
    runtime = ReferenceEvaluator(model)
    expected = np.concatenate([runtime.run(None, {"x": x[i : i + 1]})[0] for i in range(4)])
    np.testing.assert_allclose(execute(graph, x), expected, rtol=1e-4, atol=1e-5)
    q = quantize(graph, QuantizationConfig())
    assert_simulator_equals_executor(q, quantize_input(q, x[:2]), tmp_path)
