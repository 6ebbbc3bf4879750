"""The standard image classifiers export, quantise and simulate bit-exactly at 3x32x32 with
random weights, in ws/os/is (fast path and fold kernels forced).

CI runs a representative slice (channel split/shuffle, squeeze-and-excitation with hard
activations, fire-module concats, grouped convs); ACCELSIM_SLOW=1 runs all twelve."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.executor import dequantize, execute, quantize_input
from tests.opcheck import assert_simulator_equals_executor

torch = pytest.importorskip("torch")

from accelsim.config import QuantizationConfig  # noqa: E402
from accelsim.quantize import quantize  # noqa: E402
from workloads.classifiers import CLASSIFIERS  # noqa: E402
from workloads.export import export  # noqa: E402

FAST = ("squeezenet1_1", "shufflenet_v2_x0_5", "mobilenet_v3_small", "regnet_y_400mf", "mnasnet0_5")
CASES = [
    name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in CLASSIFIERS
]


@pytest.mark.parametrize("name", CASES)
def test_classifier_is_exact_in_every_dataflow(name, tmp_path):
    model = CLASSIFIERS[name]()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    graph = export(model, x[:1], x)
    with torch.no_grad():
        expected = model(x[:1]).numpy()
    np.testing.assert_allclose(execute(graph, x[:1].numpy()), expected, rtol=1e-3, atol=1e-5)
    integer = quantize(graph, QuantizationConfig())
    inputs = quantize_input(integer, x[:1].numpy())
    got = assert_simulator_equals_executor(integer, inputs, tmp_path, rows=16, cols=16)
    error = np.abs(dequantize(integer.tensors[integer.output], got) - expected).max()
    assert error < 0.1 * np.abs(expected).max()  # 8-bit integers track the float model


def test_every_target_architecture_is_defined():
    assert set(CLASSIFIERS) == {
        "resnet18",
        "resnet50",
        "mobilenet_v2",
        "mobilenet_v3_small",
        "squeezenet1_1",
        "vgg11",
        "shufflenet_v2_x0_5",
        "efficientnet_b0",
        "densenet121",
        "googlenet",
        "regnet_y_400mf",
        "mnasnet0_5",
    }
