"""The datapath's fast paths == their int64 oracles, bit for bit.

* ``kernels.exact_float32_gemm_into`` (K cut into chunks whose float32 sums are exact, added in
  int64) == ``kernels._gemm_overflow`` (int64 loops, the overflow rule at every add), for
  random shapes and operand widths from 2 to 16 bits, wrap and saturate accumulators of 8 to
  32 bits, biases up to the accumulator's limit; where the bound does not hold it declines
  and leaves the psums untouched;
* ``mapping.lower_conv_transposed`` (Numba im2col, written as A^T) == ``mapping.lower_conv``;
* the Numba output stage of ``datapath.gemm_output`` == ``intmath.requantize_array`` laid out by
  ``mapping.output_from_gemm``;
* a fault-free simulation never builds the int64 im2col operands it does not need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from accelsim import kernels, load_workload, mapping
from accelsim.codes import OVERFLOW_CODES, OVERFLOW_WRAP
from accelsim.datapath import LoweredInput, compute_fault_free, gemm_output, lower_operands
from accelsim.intmath import requantize_array
from accelsim.ops import GEMM_OPS
from accelsim.schedule import gemm_shape

ROOT = Path(__file__).resolve().parents[1]


def _signed(rng, bits, size):
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=size, dtype=np.int64)


@settings(max_examples=150, deadline=None)
@given(
    m=st.integers(1, 40),
    k=st.integers(1, 1200),
    n=st.integers(1, 24),
    a_bits=st.integers(2, 16),
    w_bits=st.integers(2, 16),
    acc_bits=st.integers(8, 32),
    overflow=st.sampled_from(["wrap", "saturate"]),
    bias_fraction=st.sampled_from([0.0, 0.5, 1.0]),
    read_only=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_float32_chunked_gemm_equals_the_int64_gemm(
    m, k, n, a_bits, w_bits, acc_bits, overflow, bias_fraction, read_only, seed
):
    rng = np.random.default_rng(seed)
    a, w = _signed(rng, a_bits, (m, k)), _signed(rng, w_bits, (k, n))
    if read_only:
        w.flags.writeable = False  # a layer's weight matrix: facts kept (derived)
    limit = (1 << (acc_bits - 1)) - 1
    bias_max = int(limit * bias_fraction)
    psum = rng.integers(-bias_max - 1, bias_max + 1, size=(m, n), dtype=np.int64)
    code = OVERFLOW_CODES[overflow]
    want = kernels._gemm_overflow(a, w, psum, acc_bits, code)
    got = psum.copy()
    taken = kernels.exact_float32_gemm_into(
        got, lambda: a.astype(np.float32), w, int(np.abs(a).max()), acc_bits=acc_bits, overflow=code
    )
    if taken:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_array_equal(got, psum)  # declined: untouched
    np.testing.assert_array_equal(
        kernels.run_gemm(a, w, psum, acc_bits=acc_bits, overflow=code), want
    )


def test_the_float32_path_is_taken_with_several_chunks_and_declined_beyond_its_bound():
    rng = np.random.default_rng(1)
    calls = []

    def run(a, w, psum, acc_bits=32, overflow=OVERFLOW_WRAP):
        out = psum.copy()
        taken = kernels.exact_float32_gemm_into(
            out,
            lambda: calls.append(1) or a.astype(np.float32),
            w,
            int(np.abs(a).max()),
            acc_bits=acc_bits,
            overflow=overflow,
        )
        return taken, out

    # int8 x int8: 2**24 // 2**14 = 1,024 products per chunk, so K = 3,000 takes 3 chunks
    assert kernels.float32_exact_chunk(128 * 128) == 1024
    a, w = _signed(rng, 8, (5, 3000)), _signed(rng, 8, (3000, 7))
    a[0, :] = -128
    w[:, 0] = -128  # every partial sum of (0, 0) at the bound: 3,000 * 2**14 > 2**24
    psum = np.zeros((5, 7), np.int64)
    taken, out = run(a, w, psum)
    assert taken and calls
    np.testing.assert_array_equal(out, kernels._gemm_overflow(a, w, psum, 32, OVERFLOW_WRAP))
    # 16-bit operands: one product alone may exceed 2**24 -> declined, A never built
    calls.clear()
    a16, w16 = _signed(rng, 16, (4, 50)), _signed(rng, 16, (50, 3))
    a16[0, 0], w16[0, 0] = -(1 << 15), -(1 << 15)
    assert run(a16, w16, np.zeros((4, 3), np.int64))[0] is False and not calls
    # saturate with partial sums that can reach the limit: declined (clamping is per add)
    saturate = OVERFLOW_CODES["saturate"]
    assert run(a, w, psum, acc_bits=16, overflow=saturate)[0] is False


@st.composite
def conv_geometries(draw):
    """(h, w, kh, kw, stride, pads, dilation) of a conv with at least one output pixel."""
    h, w, kh, kw = (
        draw(st.integers(1, 9)),
        draw(st.integers(1, 9)),
        *draw(st.tuples(*[st.integers(1, 4)] * 2)),
    )
    stride = draw(st.tuples(*[st.integers(1, 3)] * 2))
    dilation = draw(st.tuples(*[st.integers(1, 2)] * 2))
    pads = draw(st.tuples(*[st.integers(0, 3)] * 4))
    assume(h + pads[0] + pads[2] >= dilation[0] * (kh - 1) + 1)
    assume(w + pads[1] + pads[3] >= dilation[1] * (kw - 1) + 1)
    return h, w, kh, kw, stride, pads, dilation


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 2),
    groups=st.integers(1, 3),
    c_per_group=st.integers(1, 3),
    geometry=conv_geometries(),
    seed=st.integers(0, 2**32 - 1),
)
def test_numba_im2col_transposed_equals_the_numpy_lowering(
    batch, groups, c_per_group, geometry, seed
):
    h, w, kh, kw, (sh, sw), pads, (dh, dw) = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(-300, 300, size=(batch, groups * c_per_group, h, w), dtype=np.int64)
    weight_shape = (groups * 2, c_per_group, kh, kw)
    args = (x, weight_shape, (sh, sw), pads, groups, (dh, dw))
    want = mapping.lower_conv(*args)
    for dtype in (np.int64, np.float32):
        got = mapping.lower_conv_transposed(*args, dtype=dtype)
        assert len(got) == groups
        for a_t, a in zip(got, want):
            assert a_t.dtype == dtype and a_t.flags.c_contiguous
            np.testing.assert_array_equal(a_t.T, a)


@pytest.fixture(scope="module")
def resnet_graph():
    workload = load_workload(
        ROOT / "workloads" / "resnet18.yaml", ["model.input_size=32", "batch=1"]
    )
    return workload


def test_output_stage_and_lazy_lowering_equal_the_numpy_forms(resnet_graph):
    graph = resnet_graph.graph
    x = resnet_graph.inputs[:1]
    from accelsim import functional

    values = functional.forward(graph, x, resnet_graph.config.accelerator)
    seen = 0
    for node in graph.nodes:
        if node.op not in GEMM_OPS:
            continue
        shape = gemm_shape(graph, node, 1)
        lazy = lower_operands(node, values[node.inputs[0]], shape, lazy_a=True)
        eager = lower_operands(node, values[node.inputs[0]], shape)
        compute_fault_free(shape, lazy)
        if isinstance(lazy.a, LoweredInput):
            assert lazy.a._groups is None  # the fault-free GEMM never built the int64 A
            seen += 1
        for g in range(shape.groups):
            want = kernels._gemm_overflow(
                eager.a[g],
                eager.w[g],
                eager.psum[g],
                shape.acc_bits,
                OVERFLOW_CODES[shape.overflow],
            )
            np.testing.assert_array_equal(lazy.psum[g], want)
            np.testing.assert_array_equal(lazy.a[g], eager.a[g])
        attrs, n = node.attrs, shape.N
        outs = [
            requantize_array(
                lazy.psum[g],
                node.params["multiplier"][g * n : (g + 1) * n],
                node.params["shift"][g * n : (g + 1) * n],
                int(attrs["out_zero_point"]),
                int(attrs["out_lo"]),
                int(attrs["out_hi"]),
            )
            for g in range(shape.groups)
        ]
        want_out = (
            outs[0]
            if node.op == "linear"
            else mapping.output_from_gemm(outs, shape.batch, shape.out_h, shape.out_w)
        )
        got_out = gemm_output(node, lazy, shape)
        np.testing.assert_array_equal(got_out, want_out)
        np.testing.assert_array_equal(got_out, values[node.output])
    assert seen > 10


@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 2), geometry=conv_geometries())
def test_the_padding_window_equals_the_lowering_of_ones(batch, geometry):
    from accelsim.datapath import _padding_window

    h, w, kh, kw, (sh, sw), pads, (dh, dw) = geometry
    ones = np.ones((batch, 1, h, w), np.int64)
    (want,) = mapping.lower_conv(ones, (1, 1, kh, kw), (sh, sw), pads, 1, (dh, dw))
    got = _padding_window((batch, 3, h, w), (kh, kw), (sh, sw), pads, (dh, dw))
    np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(
    groups=st.integers(1, 3),
    c_per_group=st.integers(1, 3),
    size=st.integers(3, 8),
    stride=st.integers(1, 2),
    pad=st.integers(0, 2),
    dilation=st.integers(1, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_lowered_input_groups_equal_the_eager_lowering(
    groups, c_per_group, size, stride, pad, dilation, seed
):
    from accelsim.schedule import GemmShape

    kh = kw = 2
    out = (size + 2 * pad - (dilation * (kh - 1) + 1)) // stride + 1
    shape = GemmShape(
        layer="g", op="conv2d", batch=2, groups=groups, M=2 * out * out, K=c_per_group * kh * kw,
        N=2, in_channels=groups * c_per_group, in_h=size, in_w=size, out_h=out, out_w=out,
        kernel=(kh, kw), stride=(stride, stride), padding=(pad, pad), a_bits=8, a_signed=True,
        w_bits=8, acc_bits=32, overflow="wrap", out_bits=8, dilation=(dilation, dilation),
    )  # fmt: skip
    x = np.random.default_rng(seed).integers(-128, 128, (2, groups * c_per_group, size, size))
    weight_shape = (2 * groups, c_per_group, kh, kw)
    lazy = LoweredInput(x, weight_shape, shape)
    want = mapping.lower_conv(x, weight_shape, shape.stride, shape.pads, groups, shape.dilation)
    assert lazy.max_abs() >= max(int(np.abs(a).max()) for a in want)
    for g in range(groups):
        np.testing.assert_array_equal(lazy.float32(g), want[g])  # before the int64 A exists
    assert lazy._groups is None and len(lazy) == groups
    for got, a in zip(list(lazy), want):
        np.testing.assert_array_equal(got, a)
