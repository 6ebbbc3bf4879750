"""Issue 13's ops: the reference executor's integers equal an independent int64 computation.

Each oracle is written from docs/semantics.md (and PyTorch's documented window rules for
pooling) as plain Python loops over output elements, with the integer helpers of
tests/test_executor_ops.py (own wrap / saturate / rounding shift). Small random shapes and
values (hypothesis), bit widths 2-8.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from accelsim.executor import execute
from accelsim.ir import Node, TensorSpec
from tests.test_executor_ops import (
    SETTINGS,
    int_array,
    int_tensor_type,
    overflow,
    requant,
    requant_params,
    single_node_graph,
    type_range,
)


def spec(name, shape, bits, signed):
    return TensorSpec(name, tuple(shape), bits, signed, 1.0)


def pool_out(size, k, s, p, ceil_mode):
    span = size + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def mean_half_up(total, count):
    return (2 * total + count) // (2 * count)


# ---- dilated convolution -------------------------------------------------------------------


@st.composite
def dilated_conv_case(draw):
    groups = draw(st.integers(1, 2))
    c, n = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    eh, ew = draw(st.integers(0, 2)), draw(st.integers(0, 2))  # bottom/right: asymmetric
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - ph - eh), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pw - ew), 7))
    a_bits, a_signed = draw(int_tensor_type())
    w_bits, acc_bits = draw(st.integers(2, 8)), draw(st.integers(4, 14))
    rule = draw(st.sampled_from(["wrap", "saturate"]))
    x = draw(int_array((draw(st.integers(1, 2)), c, h, w), a_bits, a_signed))
    weight = draw(int_array((n, c // groups, kh, kw), w_bits, True))
    bias = draw(int_array((n,), acc_bits, True))
    return dict(
        groups=groups,
        k=(kh, kw),
        d=(dh, dw),
        s=(sh, sw),
        p=(ph, pw),
        e=(eh, ew),
        x=x,
        a=(a_bits, a_signed),
        weight=weight,
        bias=bias,
        w_bits=w_bits,
        acc_bits=acc_bits,
        rule=rule,
        rq=draw(requant_params(n)),
    )


def dilated_conv_graph(case):
    out_bits, out_signed, lo, hi, mults, shifts = case["rq"]
    x, weight = case["x"], case["weight"]
    (kh, kw), (dh, dw), (sh, sw), (ph, pw) = case["k"], case["d"], case["s"], case["p"]
    eh, ew = case["e"]
    oh = (x.shape[2] + ph + eh - dh * (kh - 1) - 1) // sh + 1
    ow = (x.shape[3] + pw + ew - dw * (kw - 1) - 1) // sw + 1
    node = Node(
        "conv2d",
        "conv",
        ["x"],
        "y",
        {
            "stride": [sh, sw],
            "padding": [ph, pw],
            "padding_end": [eh, ew],
            "dilation": [dh, dw],
            "groups": case["groups"],
            "acc_bits": case["acc_bits"],
            "overflow": case["rule"],
            "w_bits": case["w_bits"],
            "out_lo": lo,
            "out_hi": hi,
            "out_zero_point": 0,
        },
        {
            "weight": weight,
            "bias": case["bias"],
            "multiplier": np.array(mults, np.int64),
            "shift": np.array(shifts, np.int64),
        },
    )
    return single_node_graph(
        node,
        {"x": spec("x", x.shape[1:], *case["a"])},
        spec("y", (weight.shape[0], oh, ow), out_bits, out_signed),
    )


def dilated_conv_oracle(case):
    x, weight, bias = case["x"], case["weight"], case["bias"]
    _, _, lo, hi, mults, shifts = case["rq"]
    (kh, kw), (dh, dw), (sh, sw), (ph, pw) = case["k"], case["d"], case["s"], case["p"]
    eh, ew = case["e"]
    batch, _, h, w = x.shape
    n, c_group = weight.shape[:2]
    n_group = n // case["groups"]
    oh, ow = (
        (h + ph + eh - dh * (kh - 1) - 1) // sh + 1,
        (w + pw + ew - dw * (kw - 1) - 1) // sw + 1,
    )
    out = np.zeros((batch, n, oh, ow), dtype=np.int64)
    for b, o, i, j in np.ndindex(batch, n, oh, ow):
        g = o // n_group
        acc = int(bias[o])
        for ci in range(c_group):
            for u in range(kh):
                for v in range(kw):
                    r, s = i * sh - ph + u * dh, j * sw - pw + v * dw
                    a = int(x[b, g * c_group + ci, r, s]) if 0 <= r < h and 0 <= s < w else 0
                    acc = overflow(
                        acc + a * int(weight[o, ci, u, v]), case["acc_bits"], case["rule"]
                    )
        out[b, o, i, j] = requant(acc, mults[o], shifts[o], 0, lo, hi)
    return out


@SETTINGS
@given(dilated_conv_case())
def test_dilated_and_asymmetrically_padded_conv2d_matches_loop_oracle(case):
    graph = dilated_conv_graph(case)
    np.testing.assert_array_equal(execute(graph, case["x"]), dilated_conv_oracle(case))


# ---- pooling with padding and ceil_mode ------------------------------------------------------


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 7))
    w = draw(st.integers(max(1, kw - 2 * pw), 7))
    bits, signed = draw(int_tensor_type())
    x = draw(int_array((draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), bits, signed))
    return dict(
        k=(kh, kw),
        s=(sh, sw),
        p=(ph, pw),
        ceil=draw(st.booleans()),
        include=draw(st.booleans()),
        x=x,
        bits=bits,
        signed=signed,
    )


def pool_graph(case, op):
    x = case["x"]
    (kh, kw), (sh, sw), (ph, pw) = case["k"], case["s"], case["p"]
    oh, ow = (
        pool_out(x.shape[2], kh, sh, ph, case["ceil"]),
        pool_out(x.shape[3], kw, sw, pw, case["ceil"]),
    )
    attrs = {"kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw], "ceil_mode": case["ceil"]}
    if op == "avgpool2d":
        attrs["count_include_pad"] = case["include"]
    node = Node(op, "pool", ["x"], "y", attrs)
    t = (case["bits"], case["signed"])
    return single_node_graph(
        node, {"x": spec("x", x.shape[1:], *t)}, spec("y", (x.shape[1], oh, ow), *t)
    )


def pool_oracle(case, op):
    x = case["x"]
    (kh, kw), (sh, sw), (ph, pw) = case["k"], case["s"], case["p"]
    batch, c, h, w = x.shape
    oh, ow = pool_out(h, kh, sh, ph, case["ceil"]), pool_out(w, kw, sw, pw, case["ceil"])
    out = np.zeros((batch, c, oh, ow), dtype=np.int64)
    for b, ch, i, j in np.ndindex(batch, c, oh, ow):
        h0, w0 = i * sh - ph, j * sw - pw
        h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
        pool_size = (h1 - h0) * (w1 - w0)
        h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
        values = [int(x[b, ch, r, s]) for r in range(h0, h1) for s in range(w0, w1)]
        if op == "maxpool2d":
            out[b, ch, i, j] = max(values)
        else:
            count = pool_size if case["include"] else (h1 - h0) * (w1 - w0)
            out[b, ch, i, j] = mean_half_up(sum(values), count)
    return out


@SETTINGS
@given(pool_case())
def test_padded_and_ceil_mode_maxpool_matches_loop_oracle(case):
    graph = pool_graph(case, "maxpool2d")
    np.testing.assert_array_equal(execute(graph, case["x"]), pool_oracle(case, "maxpool2d"))


@SETTINGS
@given(pool_case())
def test_padded_and_ceil_mode_avgpool_matches_loop_oracle(case):
    graph = pool_graph(case, "avgpool2d")
    np.testing.assert_array_equal(execute(graph, case["x"]), pool_oracle(case, "avgpool2d"))


@SETTINGS
@given(st.data())
def test_adaptive_avgpool_to_any_size_matches_loop_oracle(data):
    h, w = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    oh, ow = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    bits, signed = data.draw(int_tensor_type())
    x = data.draw(int_array((2, 2, h, w), bits, signed))
    node = Node("adaptive_avgpool2d", "pool", ["x"], "y", {"output_size": [oh, ow]})
    graph = single_node_graph(
        node, {"x": spec("x", (2, h, w), bits, signed)}, spec("y", (2, oh, ow), bits, signed)
    )
    expected = np.zeros((2, 2, oh, ow), dtype=np.int64)
    for b, c, i, j in np.ndindex(2, 2, oh, ow):
        r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        s0, s1 = (j * w) // ow, -(-((j + 1) * w) // ow)
        values = [int(x[b, c, r, s]) for r in range(r0, r1) for s in range(s0, s1)]
        expected[b, c, i, j] = mean_half_up(sum(values), len(values))
    np.testing.assert_array_equal(execute(graph, x), expected)


@SETTINGS
@given(st.data())
def test_requantising_global_avgpool_matches_oracle(data):
    h, w = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    bits, signed = data.draw(int_tensor_type())
    x = data.draw(int_array((2, 3, h, w), bits, signed))
    out_bits, out_signed, lo, hi, mults, shifts = data.draw(requant_params(1))
    node = Node(
        "global_avgpool",
        "gap",
        ["x"],
        "y",
        {"shift": shifts[0], "out_lo": lo, "out_hi": hi, "out_zero_point": 0},
        {"multiplier": np.array(mults[0], np.int64)},
    )
    graph = single_node_graph(
        node, {"x": spec("x", (3, h, w), bits, signed)}, spec("y", (3, 1, 1), out_bits, out_signed)
    )
    expected = np.zeros((2, 3, 1, 1), dtype=np.int64)
    for b, c in np.ndindex(2, 3):
        total = sum(int(v) for v in x[b, c].ravel())
        expected[b, c, 0, 0] = requant(total, mults[0], shifts[0], 0, lo, hi)
    np.testing.assert_array_equal(execute(graph, x), expected)


# ---- concat, mul, lookup tables, channel selection, upsampling ------------------------------


@SETTINGS
@given(st.data())
def test_concat_requantises_each_input_to_the_common_scale(data):
    parts = data.draw(st.integers(1, 3))
    h, w = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    out_bits, out_signed, lo, hi, mults, shifts = data.draw(requant_params(parts))
    inputs, specs = [], {}
    for i in range(parts):
        bits, signed = data.draw(int_tensor_type())
        c = data.draw(st.integers(1, 3))
        inputs.append(data.draw(int_array((2, c, h, w), bits, signed)))
        specs[f"x{i}"] = spec(f"x{i}", (c, h, w), bits, signed)
    node = Node(
        "concat",
        "cat",
        list(specs),
        "y",
        {"shift": shifts[0], "out_lo": lo, "out_hi": hi, "out_zero_point": 0},
        {"multipliers": np.array(mults, np.int64)},
    )
    total = sum(v.shape[1] for v in inputs)
    graph = single_node_graph(node, specs, spec("y", (total, h, w), out_bits, out_signed))
    expected = []
    for v, m in zip(inputs, mults):
        q = np.vectorize(lambda a, m=m: requant(int(a), m, shifts[0], 0, lo, hi))(v)
        expected.append(q.astype(np.int64))
    from accelsim.executor import run_node

    got = run_node(graph, node, inputs)
    np.testing.assert_array_equal(got, np.concatenate(expected, axis=1))


@SETTINGS
@given(st.data())
def test_mul_of_two_activations_broadcasts_and_requantises(data):
    c, h, w = (
        data.draw(st.integers(1, 3)),
        data.draw(st.integers(1, 3)),
        data.draw(st.integers(1, 3)),
    )
    gate = data.draw(st.booleans())  # squeeze-and-excitation: (C, 1, 1) times (C, H, W)
    a_t, b_t = data.draw(int_tensor_type()), data.draw(int_tensor_type())
    a = data.draw(int_array((2, c, h, w), *a_t))
    b_shape = (c, 1, 1) if gate else (c, h, w)
    b = data.draw(int_array((2, *b_shape), *b_t))
    out_bits, out_signed, lo, hi, mults, shifts = data.draw(requant_params(1))
    node = Node(
        "mul",
        "mul",
        ["a", "b"],
        "y",
        {"shift": shifts[0], "out_lo": lo, "out_hi": hi, "out_zero_point": 0},
        {"multiplier": np.array(mults[0], np.int64)},
    )
    graph = single_node_graph(
        node,
        {"a": spec("a", (c, h, w), *a_t), "b": spec("b", b_shape, *b_t)},
        spec("y", (c, h, w), out_bits, out_signed),
    )
    from accelsim.executor import run_node

    expected = np.zeros((2, c, h, w), dtype=np.int64)
    for n, ch, i, j in np.ndindex(2, c, h, w):
        bv = int(b[n, ch, 0, 0] if gate else b[n, ch, i, j])
        expected[n, ch, i, j] = requant(int(a[n, ch, i, j]) * bv, mults[0], shifts[0], 0, lo, hi)
    np.testing.assert_array_equal(run_node(graph, node, [a, b]), expected)


@SETTINGS
@given(st.data())
def test_activation_is_a_lookup_table_over_input_codes(data):
    bits, signed = data.draw(int_tensor_type())
    out_bits, out_signed = data.draw(int_tensor_type())
    x = data.draw(int_array((2, 2, 3, 3), bits, signed))
    lo, _ = type_range(bits, signed)
    table = data.draw(int_array((1 << bits,), out_bits, out_signed))
    node = Node(
        "activation", "act", ["x"], "y", {"function": "silu", "alpha": 0.0}, {"table": table}
    )
    graph = single_node_graph(
        node, {"x": spec("x", (2, 3, 3), bits, signed)}, spec("y", (2, 3, 3), out_bits, out_signed)
    )
    expected = np.vectorize(lambda v: int(table[int(v) - lo]))(x).astype(np.int64)
    np.testing.assert_array_equal(execute(graph, x), expected)


@SETTINGS
@given(st.data())
def test_select_channels_and_nearest_upsampling_copy_values(data):
    c, h, w = (
        data.draw(st.integers(1, 4)),
        data.draw(st.integers(1, 3)),
        data.draw(st.integers(1, 3)),
    )
    bits, signed = data.draw(int_tensor_type())
    x = data.draw(int_array((2, c, h, w), bits, signed))
    channels = data.draw(st.lists(st.integers(0, c - 1), min_size=1, max_size=6))
    sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    nodes = [
        Node("select_channels", "sel", ["x"], "s", {"channels": channels}),
        Node("upsample_nearest", "up", ["s"], "y", {"scale": [sh, sw]}),
    ]
    t = (bits, signed)
    tensors = {
        "x": spec("x", (c, h, w), *t),
        "s": spec("s", (len(channels), h, w), *t),
        "y": spec("y", (len(channels), h * sh, w * sw), *t),
    }
    from accelsim.ir import Graph

    graph = Graph("integer", "t", "x", "y", tensors, nodes, {})
    expected = np.zeros((2, len(channels), h * sh, w * sw), dtype=np.int64)
    for n, k, i, j in np.ndindex(*expected.shape):
        expected[n, k, i, j] = x[n, channels[k], i // sh, j // sw]
    np.testing.assert_array_equal(execute(graph, x), expected)
