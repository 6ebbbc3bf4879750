"""Shared fixtures: small hand-built integer graphs that need neither torch nor training."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.intmath import quantize_multiplier
from accelsim.ir import Graph, Node, TensorSpec


def tiny_integer_graph(seed: int = 0, *, acc_bits: int = 32, overflow: str = "wrap") -> Graph:
    """conv3x3(pad 1) -> relu clamp -> maxpool -> flatten -> linear: every GEMM path once."""
    rng = np.random.default_rng(seed)
    conv_mult, conv_shift = quantize_multiplier(0.002)
    fc_mult, fc_shift = quantize_multiplier(0.0004)
    tensors = {
        "x": TensorSpec("x", (2, 6, 6), 8, False, 1 / 255),
        "c1": TensorSpec("c1", (4, 6, 6), 8, False, 0.05),
        "r1": TensorSpec("r1", (4, 6, 6), 8, False, 0.05),
        "p1": TensorSpec("p1", (4, 3, 3), 8, False, 0.05),
        "f1": TensorSpec("f1", (36,), 8, False, 0.05),
        "y": TensorSpec("y", (5,), 8, True, 0.1),
    }
    nodes = [
        Node(
            "conv2d",
            "conv1",
            ["x"],
            "c1",
            {
                "stride": [1, 1],
                "padding": [1, 1],
                "groups": 1,
                "acc_bits": acc_bits,
                "overflow": overflow,
                "w_bits": 8,
                "out_lo": 0,
                "out_hi": 255,
                "out_zero_point": 0,
            },
            {
                "weight": rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int64),
                "bias": rng.integers(-500, 500, 4).astype(np.int64),
                "multiplier": np.full(4, conv_mult, np.int64),
                "shift": np.full(4, conv_shift, np.int64),
            },
        ),
        Node("clamp", "relu1", ["c1"], "r1", {"lo": 0, "hi": 255}),
        Node(
            "maxpool2d",
            "pool1",
            ["r1"],
            "p1",
            {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]},
        ),
        Node("flatten", "flat", ["p1"], "f1"),
        Node(
            "linear",
            "fc",
            ["f1"],
            "y",
            {
                "acc_bits": acc_bits,
                "overflow": overflow,
                "w_bits": 8,
                "out_lo": -128,
                "out_hi": 127,
                "out_zero_point": 0,
            },
            {
                "weight": rng.integers(-127, 128, (5, 36)).astype(np.int64),
                "bias": rng.integers(-500, 500, 5).astype(np.int64),
                "multiplier": np.full(5, fc_mult, np.int64),
                "shift": np.full(5, fc_shift, np.int64),
            },
        ),
    ]
    return Graph("integer", "tiny", "x", "y", tensors, nodes, {"source": "conftest"})


@pytest.fixture
def tiny_graph() -> Graph:
    return tiny_integer_graph()


def pytest_collection_modifyitems(config, items):
    """Slow sweeps run only when asked (ACCELSIM_SLOW=1); CI runs the representative slice."""
    import os

    if os.environ.get("ACCELSIM_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow sweep: set ACCELSIM_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def session_quantized_cache(tmp_path_factory):
    """Integer graphs cached by one test session only: a quantiser edited since the last run
    is tested, never an entry it made before (the exported float models stay shared)."""
    import accelsim.quantize

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            accelsim.quantize, "QUANTIZED_CACHE", tmp_path_factory.mktemp("quantized-cache")
        )
        yield
