"""The fault-free layer GEMM (float32 BLAS where exact) == the int64 GEMM, bit for bit.

``accelsim.datapath.compute_fault_free`` on a layer's read-only weights (K cut by their column
sums, ``kernels.k_chunks``) must equal ``kernels._gemm_overflow`` (int64 loops, the overflow
rule at every add) whatever the operands: inside the float32 bound (the fast path), just
outside it (the fallback), under wrap and saturate, with groups and with a bias near the
accumulator's limit.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from accelsim import load_workload
from accelsim.codes import OVERFLOW_CODES
from accelsim.datapath import GemmOperands, compute_fault_free, lower_operands
from accelsim.kernels import FLOAT32_EXACT, _gemm_overflow, k_chunks
from accelsim.schedule import gemm_shape

ROOT = Path(__file__).resolve().parents[1]


def _operands(rng, m, k, n, groups, a_max, w_max, bias_max):
    w = []
    for _ in range(groups):
        matrix = rng.integers(-w_max, w_max + 1, size=(k, n), dtype=np.int64)
        matrix.flags.writeable = False  # as the datapath's weight matrices are
        w.append(matrix)
    bias = [rng.integers(-bias_max, bias_max + 1, size=n, dtype=np.int64) for _ in w]
    return GemmOperands(
        a=[rng.integers(0, a_max + 1, size=(m, k), dtype=np.int64) for _ in w],
        w=w,
        psum=[np.tile(b, (m, 1)) for b in bias],
        bias=bias,
    )


def _both(shape, ops):
    ours = replace(ops, psum=[p.copy() for p in ops.psum])
    compute_fault_free(shape, ours)
    code = OVERFLOW_CODES[shape.overflow]
    for g, got in enumerate(ours.psum):
        a = np.ascontiguousarray(ops.a[g], dtype=np.int64)
        want = _gemm_overflow(a, ops.w[g], ops.psum[g], int(shape.acc_bits), code)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("acc_bits", [16, 24, 32])
@pytest.mark.parametrize("seed", range(4))
def test_float32_path_equals_the_datapath_inside_and_outside_its_bound(overflow, acc_bits, seed):
    rng = np.random.default_rng(seed)
    workload = load_workload(ROOT / "workloads" / "digits_cnn.yaml", ["dataset.samples=2"])
    node = workload.graph.layers()[1]
    shape = replace(
        gemm_shape(workload.graph, node, 1), overflow=overflow, acc_bits=acc_bits, groups=2
    )
    for k, a_max, w_max in (
        (300, 255, 127),  # one float32 GEMM
        (300, 255, 1),
        (300, 3, 127),
        (3000, 255, 127),  # K cut into several float32 GEMMs
        (40, 2**15, 2**10),  # one row alone may pass 2**24: the datapath's GEMM
    ):
        bias_max = 2 ** (acc_bits - 1) - 1 if seed % 2 else 1000
        ops = _operands(rng, 37, k, 11, 2, a_max, w_max, bias_max)
        _both(shape, ops)


def test_the_fast_path_is_taken_on_real_layers_and_agrees():
    workload = load_workload(ROOT / "workloads" / "digits_resnet.yaml", ["dataset.samples=3"])
    from accelsim import functional

    values = functional.forward(workload.graph, workload.inputs, workload.config.accelerator)
    fast = 0
    for node in workload.graph.layers():
        x = values[node.inputs[0]]
        shape = gemm_shape(workload.graph, node, len(x))
        ops = lower_operands(node, x, shape)
        bound = np.abs(ops.a[0]).max() * np.abs(ops.w[0]).sum(axis=0).max()
        fast += bound < FLOAT32_EXACT
        _both(shape, ops)
    assert fast >= len(workload.graph.layers()) // 2  # the bound holds on most real layers


@pytest.mark.parametrize("seed", range(5))
def test_k_chunks_cover_k_each_within_the_bound_and_as_long_as_they_can_be(seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(int(rng.integers(1, 5000)), 7), dtype=np.int64)
    prefix = np.zeros((w.shape[0] + 1, w.shape[1]), dtype=np.int64)
    prefix[1:] = np.cumsum(np.abs(w), axis=0)
    max_a = int(rng.integers(1, 256))
    chunks = k_chunks(prefix, max_a)
    assert chunks[0][0] == 0 and chunks[-1][1] == w.shape[0]
    for (k0, k1), (next0, _) in zip(chunks, chunks[1:] + [(w.shape[0], None)]):
        assert k1 == next0 and k0 < k1
        assert max_a * np.abs(w[k0:k1]).sum(axis=0).max() < FLOAT32_EXACT
        if k1 < w.shape[0]:  # one more row would break the bound
            assert max_a * np.abs(w[k0 : k1 + 1]).sum(axis=0).max() >= FLOAT32_EXACT
    assert k_chunks(prefix, FLOAT32_EXACT) is None  # a single row can reach 2**24
