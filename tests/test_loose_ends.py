"""Issue 13's loose ends: in-place ops, no stale results after editing a weight, an integer
graph with quantization keys, export --calibration, requantised global pooling, grouped
unsupported-op messages that name the model's class."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelsim.config import QuantizationConfig, parse_workload
from accelsim.errors import AccelsimError
from accelsim.executor import execute, quantize_input
from accelsim.ir import load_graph, save_graph
from accelsim.quantize import quantize
from accelsim.simulation import simulate
from accelsim.workload import build_workload
from tests.conftest import tiny_integer_graph
from tests.test_quantize import calibration_inputs, residual_float_graph

ROOT = Path(__file__).resolve().parents[1]


def workload(tmp_path, graph, **extra):
    save_graph(graph, tmp_path / "g.npz")
    raw = {"name": "t", "model": "g.npz", "batch": 2, "seed": 3, **extra}
    return build_workload(parse_workload(raw), base_dir=tmp_path, source=tmp_path / "w.yaml")


def test_ir_parameters_are_read_only_so_results_are_never_stale(tmp_path):
    w = workload(tmp_path, tiny_integer_graph())
    node = w.graph.node("conv1")
    before = simulate(w).outputs
    with pytest.raises(ValueError, match="read-only"):
        node.params["weight"][0, 0, 0, 0] += 1
    edited = node.params["weight"].copy()
    edited[:] = -edited
    node.params["weight"] = edited  # assigning a new array is how a weight changes
    assert not node.params["weight"].flags.writeable
    after = simulate(w).outputs
    np.testing.assert_array_equal(after, execute(w.graph, w.inputs))
    assert not np.array_equal(before, after)


def test_a_view_of_a_users_array_is_copied_not_aliased():
    from accelsim.ir import Node

    base = np.arange(12, dtype=np.int64).reshape(3, 4)
    node = Node("linear", "fc", ["x"], "y", {}, {"weight": base[:, :3]})
    base[0, 0] = 99  # the user's own array stays theirs
    assert node.params["weight"][0, 0] == 0


def test_integer_graph_with_quantization_keys_that_would_change_it_is_an_error(tmp_path):
    graph = quantize(residual_float_graph(), QuantizationConfig())
    with pytest.raises(AccelsimError) as info:
        workload(tmp_path, graph, quantization={"weight_bits": 4})
    message = str(info.value)
    assert "quantization.weight_bits" in message and "integer graph" in message
    assert "weight_bits=4" in message and "weight_bits=8" in message
    workload(tmp_path, graph, quantization={"weight_bits": 8})  # what it already is: fine
    workload(tmp_path, graph)
    with pytest.raises(AccelsimError, match="records no quantisation"):
        workload(tmp_path, tiny_integer_graph(), quantization={"activation_bits": 6})


def test_global_average_pooling_is_requantised_to_its_own_range():
    float_graph = residual_float_graph()
    graph = quantize(float_graph, QuantizationConfig(weight_bits=4, activation_bits=4))
    pool = graph.node("pool")
    assert "multiplier" in pool.params
    x_spec, p_spec = graph.tensors["r2"], graph.tensors["p"]
    assert p_spec.scale < x_spec.scale  # the mean spans a narrower range than its inputs
    x = calibration_inputs(64)
    values = execute(graph, quantize_input(graph, x), keep_all=True)
    codes = values["r2"]
    exact = codes.mean(axis=(2, 3), keepdims=True) * x_spec.scale  # the pooling step alone
    total = codes.sum(axis=(2, 3), keepdims=True)
    count = codes.shape[2] * codes.shape[3]
    kept_scale = (2 * total + count) // (2 * count) * x_spec.scale  # the rule before issue 13
    pooled = values["p"] * p_spec.scale
    assert np.abs(pooled - exact).mean() < np.abs(kept_scale - exact).mean()
    assert len(np.unique(values["p"])) > len(np.unique(kept_scale))


torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from workloads.export import export, export_cli  # noqa: E402


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = F.relu6(self.conv(x), inplace=True)
        z = self.conv2(y)
        z += y
        z = self.relu(z)
        z.mul_(torch.sigmoid(z))
        return F.hardtanh(z, 0.0, 4.0, inplace=True)


def test_in_place_variants_export_like_their_functional_ops():
    model = InPlace().eval()
    x = torch.randn(4, 2, 6, 6)
    graph = export(model, x[:1], x)
    assert [n.op for n in graph.nodes] == [
        "conv2d",
        "clamp",
        "conv2d",
        "add",
        "clamp",
        "activation",
        "mul",
        "clamp",
    ]
    with torch.no_grad():
        expected = model(x.clone()).numpy()
    np.testing.assert_allclose(execute(graph, x.numpy()), expected, rtol=1e-4, atol=1e-5)
    # calibration records each tensor before a later in-place op overwrites it
    values = execute(graph, x.numpy(), keep_all=True)
    for name, spec in graph.tensors.items():
        assert spec.calib_min == pytest.approx(values[name].min(), rel=1e-4, abs=1e-5), name
        assert spec.calib_max == pytest.approx(values[name].max(), rel=1e-4, abs=1e-5), name
    assert graph.tensors["conv"].calib_min < 0.0


class ManyNorms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)) for _ in range(5)]
        )

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return torch.softmax(x, dim=1)


def test_unsupported_ops_are_grouped_with_a_count_and_first_places():
    with pytest.raises(AccelsimError) as info:
        export(ManyNorms(), torch.zeros(1, 4), torch.zeros(2, 4))
    message = str(info.value)
    assert "model 'ManyNorms'" in message and "6 unsupported" in message
    lines = message.splitlines()
    norm = next(line for line in lines if "layer_norm" in line)
    assert "x5" in norm and "'blocks.0.1' (LayerNorm)" in norm and "and 2 more" in norm
    assert "per-sample mean and variance" in norm  # says what is missing
    assert any("softmax" in line for line in lines)
    assert len(lines) == 3


FACTORY = (
    "import torch\n"
    "from torch import nn\n"
    "class Scaled(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.conv = nn.Conv2d(1, 2, 3)\n"
    "    def forward(self, x):\n"
    "        return torch.flatten(self.conv(x), 1)\n"
    "def build(seed=0):\n"
    "    torch.manual_seed(seed)\n"
    "    return Scaled(), torch.zeros(1, 1, 5, 5)\n"
)


def test_export_calibrates_on_given_data_and_names_the_class(tmp_path):
    source = tmp_path / "mine.py"
    source.write_text(FACTORY)
    data = np.random.default_rng(0).uniform(3.0, 5.0, (20, 1, 5, 5)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=data, y=np.zeros(20))
    out = export_cli(f"{source}:build", tmp_path / "g.npz", calibration=tmp_path / "calib.npz")
    graph = load_graph(out)
    assert graph.name == "Scaled"
    assert graph.tensors["input"].calib_min == pytest.approx(float(data.min()))
    assert graph.tensors["input"].calib_max == pytest.approx(float(data.max()))
    assert "calib.npz (20 samples)" in graph.metadata["calibration"]
    np.save(tmp_path / "bad.npy", data[:, :, :3])
    with pytest.raises(AccelsimError, match=r"calibration data of shape \(20, 1, 3, 5\)"):
        export_cli(f"{source}:build", tmp_path / "g2.npz", calibration=tmp_path / "bad.npy")


def test_export_command_takes_calibration(tmp_path):
    source = tmp_path / "mine.py"
    source.write_text(FACTORY)
    np.save(tmp_path / "calib.npy", np.full((3, 1, 5, 5), 2.0, np.float32))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "export",
            f"{source}:build",
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
    assert load_graph(tmp_path / "g.npz").tensors["input"].calib_max == 2.0
