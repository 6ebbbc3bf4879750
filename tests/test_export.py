"""Export from torch.export to the float graph, and the graph file format round trip."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.executor import execute
from accelsim.ir import load_graph, save_graph

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from workloads.export import export, export_cli  # noqa: E402


class UserNet(nn.Module):
    """A user's own model: grouped + strided conv, BN, ReLU6, avg pool, residual, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU6()
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        y = self.act(self.bn(self.stem(x)))
        y = self.relu(self.grouped(y) + y)
        return self.head(torch.flatten(self.pool(y), 1))


def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            with torch.no_grad():
                bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
                bn.running_var.copy_(0.2 + torch.rand(bn.num_features, generator=gen))
                bn.weight.copy_(torch.randn(bn.num_features, generator=gen))
                bn.bias.copy_(torch.randn(bn.num_features, generator=gen))
    return module.eval()


@pytest.fixture(scope="module")
def user_export():
    torch.manual_seed(0)
    model = randomized(UserNet())
    x = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, x, export(model, x[:2], x, name="user")


def test_user_module_float_graph_matches_torch(user_export):
    model, x, graph = user_export
    assert [n.op for n in graph.nodes] == [
        "conv2d",
        "clamp",
        "conv2d",
        "add",
        "clamp",
        "avgpool2d",
        "flatten",
        "linear",
    ]
    assert graph.node("stem").attrs["stride"] == [2, 2]
    assert graph.node("grouped").attrs["groups"] == 4
    assert graph.node("act").attrs == {"lo": 0.0, "hi": 6.0}
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(execute(graph, x.numpy()), expected, rtol=1e-4, atol=1e-5)


def test_calibration_ranges_are_the_tensors_min_max(user_export):
    model, x, graph = user_export
    values = execute(graph, x.numpy(), keep_all=True)
    for name, spec in graph.tensors.items():
        assert spec.calib_min == pytest.approx(values[name].min(), rel=1e-4, abs=1e-5), name
        assert spec.calib_max == pytest.approx(values[name].max(), rel=1e-4, abs=1e-5), name
    assert graph.tensors["act"].calib_min >= 0.0 and graph.tensors["act"].calib_max <= 6.0


def test_batchnorm_is_folded_into_the_conv(user_export):
    model, _, graph = user_export
    bn, conv = model.bn, model.stem
    factor = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    weight = conv.weight.detach().numpy() * factor[:, None, None, None]
    bias = (conv.bias - bn.running_mean).detach().numpy() * factor + bn.bias.detach().numpy()
    node = graph.node("stem")
    np.testing.assert_allclose(node.params["weight"], weight, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(node.params["bias"], bias, rtol=1e-6, atol=1e-6)
    assert not any("bn" in n.name for n in graph.nodes)


def test_save_load_identity(user_export, tmp_path):
    _, _, graph = user_export
    path = tmp_path / "user.npz"
    save_graph(graph, path)
    loaded = load_graph(path)
    assert loaded.content_hash() == graph.content_hash()
    assert loaded.tensors == graph.tensors and loaded.metadata == graph.metadata
    for a, b in zip(graph.nodes, loaded.nodes, strict=True):
        assert a == b
        for name in a.params:
            np.testing.assert_array_equal(a.params[name], b.params[name])
            assert a.params[name].dtype == b.params[name].dtype


class WithLayerNorm(nn.Module):
    """Two ops accelsim still refuses (GELU and sigmoid, the ops this test used before issue
    13, are supported now)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.softmax(self.norm(self.fc(x)), dim=1))


def test_unsupported_ops_are_all_named_with_their_module():
    with pytest.raises(AccelsimError) as info:
        export(WithLayerNorm(), torch.zeros(1, 4), torch.zeros(2, 4))
    message = str(info.value)
    assert "aten.layer_norm" in message and "'norm'" in message and "LayerNorm" in message
    assert "aten.softmax" in message or "aten._softmax" in message  # both problems in one message
    assert "2 unsupported" in message


def test_transposed_conv_is_refused():
    """(Dilation, refused here before issue 13, is supported now: tests/test_ops_sim.py.)"""
    model = nn.Sequential(nn.ConvTranspose2d(1, 2, 3))
    with pytest.raises(AccelsimError, match="transposed"):
        export(model, torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_truncated_and_corrupted_files_give_clear_errors(user_export, tmp_path):
    _, _, graph = user_export
    path = tmp_path / "g.npz"
    save_graph(graph, path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(AccelsimError) as info:
        load_graph(truncated)
    assert "truncated.npz" in str(info.value)
    # flip bytes inside the last member's data: a CRC error, named as corruption
    with zipfile.ZipFile(path) as archive:
        member = archive.infolist()[-1]
    local = member.header_offset  # local header: name and extra lengths at bytes 26..29
    name_len = int.from_bytes(data[local + 26 : local + 28], "little")
    extra_len = int.from_bytes(data[local + 28 : local + 30], "little")
    offset = local + 30 + name_len + extra_len + 8
    damaged = bytearray(data)
    for i in range(offset, offset + 8):
        damaged[i] ^= 0xFF
    corrupted = tmp_path / "corrupted.npz"
    corrupted.write_bytes(bytes(damaged))
    with pytest.raises(AccelsimError) as info:
        load_graph(corrupted)
    assert "corrupted.npz" in str(info.value) and "corrupt" in str(info.value).lower()
    not_npz = tmp_path / "text.npz"
    not_npz.write_text("hello")
    with pytest.raises(AccelsimError, match="not a .npz"):
        load_graph(not_npz)


def test_export_cli_with_a_user_factory_file(tmp_path):
    source = tmp_path / "mymodel.py"
    source.write_text(
        "import torch\n"
        "from torch import nn\n"
        "def build(input_size=6, seed=0):\n"
        "    torch.manual_seed(seed)\n"
        "    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
        "                          nn.Flatten(), nn.Linear(3 * (input_size // 2) ** 2, 4))\n"
        "    return model, torch.zeros(1, 2, input_size, input_size)\n"
    )
    out = export_cli(f"{source}:build", tmp_path / "out.npz", input_size=8, seed=3)
    graph = load_graph(out)
    assert graph.kind == "float" and graph.tensors["input"].shape == (2, 8, 8)
    assert [n.op for n in graph.nodes] == ["conv2d", "clamp", "maxpool2d", "flatten", "linear"]
    with pytest.raises(AccelsimError, match="no function 'missing'"):
        export_cli(f"{source}:missing", tmp_path / "x.npz")
    with pytest.raises(AccelsimError, match="unknown model"):
        export_cli("no_such_model", tmp_path / "x.npz")


def test_missing_torch_gives_install_hint(monkeypatch):
    import sys

    from workloads import export as export_module

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(AccelsimError, match="pip install torch"):
        export_module._torch()


def test_decomposed_aten_graph_maps_the_same(user_export, monkeypatch):
    """convolution / addmm / _native_batch_norm_legit_no_training / view with a batch size
    baked in (calibration then runs in chunks of the example's batch)."""
    model, x, graph = user_export
    original = torch.export.export
    monkeypatch.setattr(
        torch.export, "export", lambda *a, **k: original(*a, **k).run_decompositions()
    )
    decomposed = export(model, x[:1], x, name="user")
    assert [n.op for n in decomposed.nodes] == [n.op for n in graph.nodes]
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(execute(decomposed, x.numpy()), expected, rtol=1e-4, atol=1e-5)
    for ours, theirs in zip(graph.nodes, decomposed.nodes, strict=True):
        spec, other = graph.tensors[ours.output], decomposed.tensors[theirs.output]
        assert other.calib_max == pytest.approx(spec.calib_max, rel=1e-5, abs=1e-6)
        assert other.calib_min == pytest.approx(spec.calib_min, rel=1e-5, abs=1e-6)
