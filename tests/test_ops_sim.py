"""Issue 13's ops in the simulator: bit-exact with the reference executor in ws/os/is (fast
path and fold kernels forced), timed on the array (dilated conv) or the vector unit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelsim.executor import execute
from accelsim.intmath import quantize_multiplier
from accelsim.ir import Graph, Node, TensorSpec
from accelsim.simulation import simulate
from tests.opcheck import assert_simulator_equals_executor, workload_of


def dilated_graph(
    seed: int,
    *,
    dilation,
    padding,
    stride=(1, 1),
    groups=1,
    h=9,
    w=8,
    c=4,
    n=8,
    k=(3, 3),
    padding_end=None,
) -> Graph:
    rng = np.random.default_rng(seed)
    mult, shift = quantize_multiplier(0.003)
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = k, dilation, padding, stride
    eh, ew = padding if padding_end is None else padding_end
    oh = (h + ph + eh - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pw + ew - dw * (kw - 1) - 1) // sw + 1
    extra = {} if padding_end is None else {"padding_end": list(padding_end)}
    conv = Node(
        "conv2d",
        "conv",
        ["x"],
        "c",
        {
            "stride": list(stride),
            "padding": list(padding),
            "dilation": list(dilation),
            **extra,
            "groups": groups,
            "acc_bits": 32,
            "overflow": "wrap",
            "w_bits": 8,
            "out_lo": 0,
            "out_hi": 255,
            "out_zero_point": 0,
        },
        {
            "weight": rng.integers(-127, 128, (n, c // groups, kh, kw)),
            "bias": rng.integers(-300, 300, n),
            "multiplier": np.full(n, mult),
            "shift": np.full(n, shift),
        },
    )
    tensors = {
        "x": TensorSpec("x", (c, h, w), 8, False, 1 / 255),
        "c": TensorSpec("c", (n, oh, ow), 8, False, 0.05),
    }
    return Graph("integer", "dilated", "x", "c", tensors, [conv], {})


@pytest.mark.parametrize(
    ("dilation", "padding", "stride", "groups", "end"),
    [
        ((2, 2), (2, 2), (1, 1), 1, None),
        ((3, 1), (1, 0), (2, 1), 2, (2, 1)),
        ((2, 3), (0, 1), (1, 2), 4, (1, 0)),
    ],
)
@pytest.mark.parametrize(("rows", "cols"), [(3, 2), (4, 4), (8, 16)])
def test_dilated_conv_simulates_to_the_executors_integers(
    tmp_path, dilation, padding, stride, groups, end, rows, cols
):
    graph = dilated_graph(
        1, dilation=dilation, padding=padding, stride=stride, groups=groups, padding_end=end
    )
    x = np.random.default_rng(2).integers(0, 256, (2, 4, 9, 8))
    assert_simulator_equals_executor(graph, x, tmp_path, rows=rows, cols=cols)
    assert_simulator_equals_executor(graph, x, tmp_path, rows=rows, cols=cols, timing="scalesim")


def test_dilated_conv_in_scalesim_mode_costs_its_gemm(tmp_path):
    """SCALE-Sim sees a layer as its GEMM: a dilated conv costs what an undilated conv of the
    same (M, K, N) costs (here: the same kernel on the input cropped to the same output)."""
    dilated = dilated_graph(0, dilation=(2, 2), padding=(0, 0), h=11, w=10)
    plain = dilated_graph(0, dilation=(1, 1), padding=(0, 0), h=9, w=8)
    assert dilated.tensors["c"].shape == plain.tensors["c"].shape
    cycles = []
    for graph, size in ((dilated, (11, 10)), (plain, (9, 8))):
        x = np.zeros((1, 4, *size), dtype=np.int64)
        for dataflow in ("ws", "os", "is"):
            result = simulate(workload_of(graph, x, tmp_path, dataflow, timing="scalesim"))
            cycles.append(result.layers[0].compute_cycles)
    assert cycles[:3] == cycles[3:]


torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from accelsim.config import QuantizationConfig  # noqa: E402
from accelsim.quantize import quantize  # noqa: E402
from workloads.export import export  # noqa: E402


class EveryOp(nn.Module):
    """One module with every op issue 13 adds, in the patterns the classifiers use."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding="same", dilation=1)
        self.dil = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.bn = nn.BatchNorm2d(8)
        self.se_fc = nn.Conv2d(8, 8, 1)
        self.acts = nn.ModuleList(
            [nn.Hardswish(), nn.SiLU(), nn.GELU(), nn.LeakyReLU(0.1), nn.Tanh(), nn.Hardsigmoid()]
        )
        self.shuffle = nn.ChannelShuffle(2)
        self.head = nn.Linear(16 * 3 * 3, 5)

    def forward(self, x):
        x = (x - 0.2) / 0.5  # input normalisation inside forward
        y = torch.relu(self.stem(x))
        y = self.bn(torch.relu(self.dil(y)))  # batch norm not after a conv
        gate = torch.sigmoid(self.se_fc(nn.functional.adaptive_avg_pool2d(y, 1)))
        y = y * gate  # squeeze-and-excitation
        a, b = y.chunk(2, dim=1)
        for act in self.acts:
            b = act(b) + b
        y = torch.cat([a, b], 1)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        y = self.shuffle(y)
        y = nn.functional.max_pool2d(y, 3, 2, 1, ceil_mode=True)
        up = nn.functional.interpolate(y[:, :4], scale_factor=2)  # nearest
        y = torch.cat([y, nn.functional.max_pool2d(up, 2), y[:, 4:]], 1)
        y = nn.functional.avg_pool2d(y, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        y = nn.functional.adaptive_avg_pool2d(y, (3, 3)) * 2.0 + 0.1
        return self.head(torch.flatten(y, 1))


@pytest.fixture(scope="module")
def every_op():
    torch.manual_seed(0)
    model = EveryOp().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(32, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    return model, x, export(model, x[:2], x)


def test_every_op_exports_to_the_float_graph_torch_computes(every_op):
    model, x, graph = every_op
    ops = {n.op for n in graph.nodes}
    assert {
        "concat",
        "mul",
        "activation",
        "select_channels",
        "upsample_nearest",
        "adaptive_avgpool2d",
        "maxpool2d",
        "avgpool2d",
        "global_avgpool",
    } <= ops
    assert graph.node("dil").attrs["dilation"] == [2, 2]
    assert graph.node("stem").attrs["padding"] == [1, 1]  # 'same'
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(execute(graph, x.numpy()), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_every_op_quantises_and_simulates_bit_exactly(every_op, tmp_path, bits):
    model, x, graph = every_op
    from accelsim.executor import dequantize, quantize_input

    q = quantize(graph, QuantizationConfig(weight_bits=bits, activation_bits=bits))
    inputs = quantize_input(q, x.numpy()[:2])
    got = assert_simulator_equals_executor(q, inputs, tmp_path)
    if bits == 8:  # the integer graph tracks the float one
        with torch.no_grad():
            expected = model(x[:2]).numpy()
        error = np.abs(dequantize(q.tensors[q.output], got) - expected).max()
        assert error < 0.1 * np.abs(expected).max()


def test_vector_ops_take_one_cycle_per_lane_group(every_op, tmp_path):
    _, x, graph = every_op
    q = quantize(graph, QuantizationConfig())
    from accelsim.executor import quantize_input

    inputs = quantize_input(q, x.numpy()[:2])
    workload = workload_of(q, inputs, tmp_path, "ws")
    lanes = workload.config.accelerator.vector_lanes
    result = simulate(workload)
    for stats in result.layers:
        if stats.op in (
            "concat",
            "mul",
            "activation",
            "select_channels",
            "upsample_nearest",
            "adaptive_avgpool2d",
        ):
            elements = 2 * math.prod(q.tensors[q.node(stats.name).output].shape)
            assert stats.compute_cycles == math.ceil(elements / lanes), stats.name


@pytest.mark.parametrize(
    ("function", "alpha", "reference"),
    [
        ("sigmoid", 0.0, torch.sigmoid),
        ("hardsigmoid", 0.0, nn.functional.hardsigmoid),
        ("silu", 0.0, nn.functional.silu),
        ("hardswish", 0.0, nn.functional.hardswish),
        ("tanh", 0.0, torch.tanh),
        ("gelu", 0.0, nn.functional.gelu),
        ("gelu_tanh", 0.0, lambda x: nn.functional.gelu(x, approximate="tanh")),
        ("leaky_relu", 0.1, lambda x: nn.functional.leaky_relu(x, 0.1)),
        ("elu", 0.7, lambda x: nn.functional.elu(x, 0.7)),
        ("mish", 0.0, nn.functional.mish),
        ("softplus", 0.0, nn.functional.softplus),
    ],
)
def test_activation_functions_are_pytorchs(function, alpha, reference):
    from accelsim.executor import activation_float

    x = np.linspace(-12.0, 12.0, 4001)
    expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(activation_float(function, alpha, x), expected, atol=1e-12)


def test_activation_tables_follow_the_quantiser_rule(every_op):
    """table[q - lo] = clamp(round_half_up(f(s_in * q) / s_out)) for every input code q."""
    _, _, graph = every_op
    from accelsim.executor import activation_float

    q = quantize(graph, QuantizationConfig(weight_bits=6, activation_bits=6, reserved_msbs=1))
    tables = [n for n in q.nodes if n.op == "activation"]
    assert len(tables) == 7  # six activations and the squeeze-and-excitation sigmoid
    for node in tables:
        x, y = q.tensors[node.inputs[0]], q.tensors[node.output]
        lo, hi = x.value_range()
        codes = np.arange(lo, hi + 1)
        real = activation_float(node.attrs["function"], node.attrs["alpha"], x.scale * codes)
        limit = (1 << (y.bits - 1 - 1)) if y.signed else (1 << (y.bits - 1))  # r = 1
        low, high = (-limit, limit - 1) if y.signed else (0, limit - 1)
        expected = np.clip(np.floor(real / y.scale + 0.5), low, high)
        np.testing.assert_array_equal(node.params["table"], expected, err_msg=node.name)


class PreActivation(nn.Module):
    """Patterns the classifiers do not have: batch norm on the input and before convs,
    asymmetric (1x7, 7x1) kernels, nearest upsampling + concat (U-Net style), PReLU, a mean
    over (-2, -1) and BatchNorm1d after the last linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(3)
        self.c1 = nn.Conv2d(3, 16, (1, 7), padding=(0, 3))
        self.bn1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 16, (7, 1), padding=(3, 0), groups=4)
        self.up = nn.Upsample(scale_factor=2)
        self.c3 = nn.Conv2d(32, 8, 3, padding=1)
        self.prelu = nn.PReLU()
        self.fc = nn.Linear(8, 4)
        self.bn1d = nn.BatchNorm1d(4)

    def forward(self, x):
        y = self.c1(torch.relu(self.bn0(x)))
        z = self.c2(torch.relu(self.bn1(y)))
        y = torch.cat([y, self.up(nn.functional.max_pool2d(z, 2))], dim=-3)
        y = self.prelu(self.c3(y)).mean(dim=(-2, -1))
        return self.bn1d(self.fc(y))


def test_an_unseen_architecture_exports_and_simulates_exactly(tmp_path):
    torch.manual_seed(3)
    model = PreActivation().eval()
    with torch.no_grad():
        for bn in (model.bn0, model.bn1, model.bn1d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    graph = export(model, x[:1], x)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(execute(graph, x.numpy()), expected, rtol=1e-4, atol=1e-5)
    from accelsim.executor import dequantize, quantize_input

    q = quantize(graph, QuantizationConfig())
    inputs = quantize_input(q, x[:2].numpy())
    got = assert_simulator_equals_executor(q, inputs, tmp_path)
    error = np.abs(dequantize(q.tensors[q.output], got) - expected[:2]).max()
    assert error < 0.05 * np.abs(expected).max()


def test_the_silent_fault_plan_reaches_the_fold_kernels(tmp_path):
    """A weight-register flip at cycle 0 in the same folds changes the outputs: the plan
    really reaches the fold kernels."""
    from tests.opcheck import silent_fault_plan

    graph = dilated_graph(1, dilation=(2, 2), padding=(2, 2))
    x = np.random.default_rng(2).integers(0, 256, (1, 4, 9, 8))
    workload = workload_of(graph, x, tmp_path, "ws")
    plan = silent_fault_plan(workload)
    loud = {
        0: {
            layer: {i: np.array([[1, 0, 0, 0, 1 << 5, 0]]) for i in folds}
            for layer, folds in plan[0].items()
        }
    }
    clean = simulate(workload, fault_plans=plan).outputs
    np.testing.assert_array_equal(clean, execute(graph, x))
    assert not np.array_equal(simulate(workload, fault_plans=loud).outputs, clean)


def test_new_ops_round_trip_the_file_format_and_are_validated(every_op, tmp_path):
    import dataclasses

    from accelsim.errors import AccelsimError
    from accelsim.ir import load_graph, save_graph, validate_graph

    _, _, graph = every_op
    q = quantize(graph, QuantizationConfig())
    for g in (graph, q):
        save_graph(g, tmp_path / "g.npz")
        loaded = load_graph(tmp_path / "g.npz")
        assert loaded.content_hash() == g.content_hash()
    concat = next(n for n in q.nodes if n.op == "concat")
    act = next(n for n in q.nodes if n.op == "activation")
    select = next(n for n in q.nodes if n.op == "select_channels")
    cases = [
        (concat, "multipliers", concat.params["multipliers"][:-1], "one per input"),
        (act, "table", act.params["table"][:-1], "one entry per input code"),
        (act, "table", act.params["table"] + 10_000, "output tensor's range"),
    ]
    for node, name, value, message in cases:
        broken = dataclasses.replace(q, nodes=list(q.nodes))
        i = q.nodes.index(node)
        broken.nodes[i] = Node(
            node.op, node.name, node.inputs, node.output, node.attrs, {**node.params, name: value}
        )
        with pytest.raises(AccelsimError, match=message):
            validate_graph(broken)
    broken = dataclasses.replace(q, nodes=list(q.nodes))
    i = q.nodes.index(select)
    broken.nodes[i] = Node(
        select.op, select.name, select.inputs, select.output, {"channels": [10_000]}
    )
    with pytest.raises(AccelsimError, match="channels"):
        validate_graph(broken)


class TfSamePadding(nn.Module):
    """What TensorFlow-style models do: 'same' with an even kernel, F.pad before a strided
    conv (asymmetric padding)."""

    def __init__(self) -> None:
        super().__init__()
        self.even = nn.Conv2d(3, 4, 4, padding="same")
        self.strided = nn.Conv2d(4, 4, 3, stride=2)
        self.head = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        y = torch.relu(self.even(x))
        y = self.strided(nn.functional.pad(y, (0, 1, 0, 1)))  # (left, right, top, bottom)
        return self.head(torch.flatten(y, 1))


def test_asymmetric_padding_exports_and_simulates_exactly(tmp_path):
    torch.manual_seed(5)
    model = TfSamePadding().eval()
    x = torch.randn(6, 3, 10, 10, generator=torch.Generator().manual_seed(6))
    graph = export(model, x[:1], x)
    assert graph.node("even").attrs["padding"] == [1, 1]
    assert graph.node("even").attrs["padding_end"] == [2, 2]
    assert graph.node("strided").attrs["padding"] == [0, 0]
    assert graph.node("strided").attrs["padding_end"] == [1, 1]
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(execute(graph, x.numpy()), expected, rtol=1e-4, atol=1e-5)
    from accelsim.executor import quantize_input

    q = quantize(graph, QuantizationConfig())
    assert_simulator_equals_executor(q, quantize_input(q, x[:2].numpy()), tmp_path)
    assert_simulator_equals_executor(
        q, quantize_input(q, x[:2].numpy()), tmp_path, timing="scalesim"
    )
