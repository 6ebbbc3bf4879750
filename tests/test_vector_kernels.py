"""The Numba vector kernels equal the reference executor bit for bit.

``vector_kernels.run_vector_node`` must return exactly ``executor.run_node``'s array (dtype,
shape, values) for the requantising integer add and maxpool2d, including where int64 wraps
(32-bit unsigned inputs times 31-bit multipliers overflow it inside the IR's ranges), and hand
every other op, float graph and attr combination it does not cover to the executor.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim import executor, vector_kernels
from accelsim.ir import TENSOR_BITS_RANGE, Graph, Node, TensorSpec
from accelsim.ops import MULTIPLIER_LIMIT, SHIFT_RANGE, pool_out
from accelsim.vector_kernels import fast_path_op, run_vector_node

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def type_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def assert_same_as_executor(graph: Graph, node: Node, inputs: list[np.ndarray]) -> None:
    expected = executor.run_node(graph, node, inputs)
    got = run_vector_node(graph, node, inputs)
    assert got.dtype == expected.dtype == np.int64
    assert got.shape == expected.shape
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


@st.composite
def tensor_type(draw):
    return draw(st.integers(*TENSOR_BITS_RANGE)), draw(st.booleans())


@st.composite
def int_array(draw, shape, lo, hi):
    """Values in [lo, hi], the range's ends drawn often (where overflow lives)."""
    size = int(np.prod(shape))
    element = st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi))
    values = draw(st.lists(element, min_size=size, max_size=size))
    return np.array(values, dtype=np.int64).reshape(shape)


def extreme_int(lo: int, hi: int):
    return st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi))


# ---- add -------------------------------------------------------------------------------------


def add_graph(shape, a_type, b_type, out_type, attrs, multiplier_a, multiplier_b):
    node = Node(
        "add",
        "add",
        ["a", "b"],
        "y",
        attrs,
        {
            "multiplier_a": np.array(multiplier_a, np.int64),
            "multiplier_b": np.array(multiplier_b, np.int64),
        },
    )
    tensors = {
        "a": TensorSpec("a", shape, *a_type, 1.0),
        "b": TensorSpec("b", shape, *b_type, 1.0),
        "y": TensorSpec("y", shape, *out_type, 1.0),
    }
    return Graph("integer", "t", "a", "y", tensors, [node], {}), node


def plain_add(shape=(3, 4, 5)) -> tuple[Graph, Node]:
    """An 8-bit add as the quantiser makes them (ResNet's residual add)."""
    attrs = {"shift": 31, "out_lo": 0, "out_hi": 255, "out_zero_point": 0}
    t = (8, False)
    return add_graph(shape, t, t, t, attrs, 1 << 30, 3 << 28)


@st.composite
def add_case(draw, *, beyond_ir: bool = False):
    """A single-add integer graph and its two inputs. ``beyond_ir``: any int64 inputs,
    multipliers and bounds (the kernels still wrap exactly like numpy)."""
    rank = draw(st.sampled_from([1, 3]))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    batch = draw(st.integers(0, 3))
    out_bits, out_signed = draw(tensor_type())
    if beyond_ir:
        in_range = (INT64_MIN, INT64_MAX)
        multiplier = extreme_int(INT64_MIN, INT64_MAX)
        lo_t, hi_t = INT64_MIN, INT64_MAX
        zp = draw(extreme_int(INT64_MIN, INT64_MAX))
        a_type = b_type = (32, True)  # the tensor specs only matter for their shape here
    else:
        a_type, b_type = draw(tensor_type()), draw(tensor_type())
        multiplier = extreme_int(0, MULTIPLIER_LIMIT - 1)
        lo_t, hi_t = type_range(out_bits, out_signed)
        zp = draw(st.integers(lo_t, hi_t))
    lo, hi = sorted((draw(extreme_int(lo_t, hi_t)), draw(extreme_int(lo_t, hi_t))))
    arrays = []
    for bits, signed in (a_type, b_type):
        value_lo, value_hi = in_range if beyond_ir else type_range(bits, signed)
        arrays.append(draw(int_array((batch, *shape), value_lo, value_hi)))
    attrs = {
        "shift": draw(extreme_int(*SHIFT_RANGE)),
        "out_lo": lo,
        "out_hi": hi,
        "out_zero_point": zp,
    }
    graph, node = add_graph(
        shape, a_type, b_type, (out_bits, out_signed), attrs, draw(multiplier), draw(multiplier)
    )
    return graph, node, arrays


def test_add_of_unsigned_32_bit_inputs_overflows_int64_the_same_way():
    """Inside the IR's ranges: (2**32 - 1) * (2**31 - 1) twice is beyond int64."""
    top, m = (1 << 32) - 1, MULTIPLIER_LIMIT - 1
    attrs = {"shift": 0, "out_lo": 0, "out_hi": (1 << 32) - 1, "out_zero_point": 0}
    t = (32, False)
    graph, node = add_graph((2, 3), t, t, t, attrs, m, m)
    shape = (2, 2, 3)
    a, b = np.full(shape, top, np.int64), np.full(shape, top, np.int64)
    expected = executor.run_node(graph, node, [a, b])
    assert 2 * top * m > INT64_MAX and int(expected.flat[0]) == 0  # wrapped below out_lo
    assert_same_as_executor(graph, node, [a, b])


def test_add_converts_inputs_like_the_executor():
    """Narrow dtypes, non-contiguous views and nested lists go in as the executor takes them."""
    graph, node = plain_add()
    shape = (3, *graph.tensors["a"].shape)
    rng = np.random.default_rng(1)
    wide = rng.integers(-100, 100, (shape[0] * 2, *shape[1:]))
    a = wide[::2]  # a strided view
    b = rng.integers(-100, 100, shape).astype(np.int8)
    assert_same_as_executor(graph, node, [a, b])
    assert_same_as_executor(graph, node, [a.tolist(), b])
    frozen = np.array(a)
    frozen.flags.writeable = False  # golden tensors may be read-only
    assert_same_as_executor(graph, node, [frozen, frozen])


# ---- maxpool2d ---------------------------------------------------------------------------------


def maxpool_graph(in_shape, out_hw, tensor_type, attrs) -> tuple[Graph, Node]:
    node = Node("maxpool2d", "pool", ["x"], "y", attrs)
    out_shape = (in_shape[0], max(out_hw[0], 1), max(out_hw[1], 1))
    tensors = {
        "x": TensorSpec("x", in_shape, *tensor_type, 1.0),
        "y": TensorSpec("y", out_shape, *tensor_type, 1.0),
    }
    return Graph("integer", "t", "x", "y", tensors, [node], {}), node


def plain_maxpool() -> tuple[Graph, Node]:
    """ResNet's stem pool: 3x3, stride 2, padding 1, on an odd 9x7 map."""
    attrs = {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "ceil_mode": True}
    return maxpool_graph((3, 9, 7), (5, 4), (8, True), attrs)


@st.composite
def maxpool_case(draw, *, any_padding: bool = False):
    """A single-maxpool integer graph and its input. ``any_padding``: padding up to the whole
    kernel (beyond the IR's kernel // 2), where windows may hold padding only."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if any_padding:
        ph, pw = draw(st.integers(0, kh)), draw(st.integers(0, kw))
    else:
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, kh - 2 * ph), 11))
    w = draw(st.integers(max(1, kw - 2 * pw), 11))
    oh, ow = pool_out(h, kh, sh, ph, ceil_mode), pool_out(w, kw, sw, pw, ceil_mode)
    bits, signed = draw(tensor_type())
    lo, hi = type_range(bits, signed)
    if draw(st.booleans()):  # int64's minimum too: the executor's pad value itself
        lo, hi = INT64_MIN, INT64_MAX
    batch, channels = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    x = draw(int_array((batch, channels, h, w), lo, hi))
    attrs = {"kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw]}
    if draw(st.booleans()):  # omitted: the registry's default (False)
        attrs["ceil_mode"] = ceil_mode
    else:
        oh, ow = pool_out(h, kh, sh, ph, False), pool_out(w, kw, sw, pw, False)
    graph, node = maxpool_graph((channels, h, w), (oh, ow), (bits, signed), attrs)
    return graph, node, [x]


@pytest.mark.parametrize(
    "cases",
    [add_case(), add_case(beyond_ir=True), maxpool_case(), maxpool_case(any_padding=True)],
    ids=["add", "add-int64-wrap-beyond-the-ir", "maxpool", "maxpool-padding-beyond-the-ir"],
)
@SETTINGS
@given(data=st.data())
def test_the_kernels_equal_the_executor(cases, data):
    graph, node, inputs = data.draw(cases)
    assert fast_path_op(graph, node)
    assert_same_as_executor(graph, node, inputs)


def test_maxpool_of_a_non_contiguous_narrow_input():
    graph, node = plain_maxpool()
    c, h, w = graph.tensors["x"].shape
    x = np.random.default_rng(2).integers(-128, 128, (2, c, h, w * 2)).astype(np.int16)
    assert_same_as_executor(graph, node, [x[..., ::2]])
    frozen = np.ascontiguousarray(x[..., ::2], dtype=np.int64)
    frozen.flags.writeable = False
    assert_same_as_executor(graph, node, [frozen])


# ---- what goes to the executor ------------------------------------------------------------------


@pytest.fixture
def executor_calls(monkeypatch):
    """Every node the executor computes while the test runs (names, in order)."""
    calls: list[str] = []
    real = executor.run_node

    def recording(graph, node, inputs):
        calls.append(node.name)
        return real(graph, node, inputs)

    monkeypatch.setattr(executor, "run_node", recording)
    return calls


def _clamp_graph() -> tuple[Graph, Node]:
    node = Node("clamp", "relu", ["x"], "y", {"lo": 0, "hi": 100})
    tensors = {
        "x": TensorSpec("x", (2, 3, 3), 8, True, 1.0),
        "y": TensorSpec("y", (2, 3, 3), 8, True, 1.0),
    }
    return Graph("integer", "t", "x", "y", tensors, [node], {}), node


def test_the_kernels_do_not_call_the_executor(executor_calls):
    graph, node = plain_add()
    a = np.ones((2, *graph.tensors["a"].shape), np.int64)
    run_vector_node(graph, node, [a, a])
    graph, node = plain_maxpool()
    run_vector_node(graph, node, [np.ones((2, *graph.tensors["x"].shape), np.int64)])
    assert executor_calls == []


def test_other_ops_go_to_the_executor(executor_calls):
    graph, node = _clamp_graph()
    x = np.arange(-9, 27).reshape(2, 2, 3, 3)
    assert not fast_path_op(graph, node)
    np.testing.assert_array_equal(run_vector_node(graph, node, [x]), np.clip(x, 0, 100))
    assert executor_calls == ["relu"]


def test_float_graphs_go_to_the_executor(executor_calls):
    graph, node = plain_maxpool()
    x = np.arange(2 * 3 * 9 * 7).reshape(2, 3, 9, 7)
    float_graph = Graph(
        "float",
        "t",
        "x",
        "y",
        {n: TensorSpec(n, t.shape, None, True, 1.0) for n, t in graph.tensors.items()},
        [node],
        {},
    )
    assert not fast_path_op(float_graph, node)
    got = run_vector_node(float_graph, node, [x.astype(np.float64) / 3])
    assert got.dtype == np.float64
    assert executor_calls == ["pool"]


def _with(node: Node, attrs=None, params=None) -> Node:
    return Node(
        node.op,
        node.name,
        list(node.inputs),
        node.output,
        {**node.attrs, **(attrs or {})},
        {**node.params, **(params or {})},
    )


@pytest.mark.parametrize(
    "change",
    [
        {"attrs": {"shift": 63}},  # beyond the IR's shifts: numpy's rule, not LLVM's
        {"attrs": {"shift": -1}},
        {"attrs": {"shift": 2.0}},
        {"attrs": {"out_lo": 5, "out_hi": 4}},  # np.clip's rule for lo > hi
        {"attrs": {"out_zero_point": 1 << 63}},  # not an int64
        {"params": {"multiplier_a": np.array([3], np.int64)}},  # not rank 0
        {"params": {"multiplier_b": np.array(3, np.int32)}},  # not int64
    ],
)
def test_add_attrs_the_kernel_does_not_cover_go_to_the_executor(executor_calls, change):
    graph, node = plain_add()
    inputs = [np.arange(-30, 30).reshape(1, 3, 4, 5)] * 2
    odd = _with(node, change.get("attrs"), change.get("params"))
    assert not fast_path_op(graph, odd)
    try:
        expected = executor.run_node(graph, odd, inputs)
    except Exception as error:  # noqa: BLE001 - whatever the executor raises, so must we
        with pytest.raises(type(error)):
            run_vector_node(graph, odd, inputs)
    else:
        np.testing.assert_array_equal(run_vector_node(graph, odd, inputs), expected)
    assert executor_calls.count(odd.name) == 2


def test_add_of_broadcast_batches_goes_to_the_executor(executor_calls):
    graph, node = plain_add()
    shape = graph.tensors["a"].shape
    a = np.arange(3 * int(np.prod(shape))).reshape(3, *shape)
    b = np.ones((1, *shape), np.int64)
    assert fast_path_op(graph, node)
    np.testing.assert_array_equal(
        run_vector_node(graph, node, [a, b]), executor.run_node(graph, node, [a, b])
    )
    assert executor_calls == ["add", "add"]


@pytest.mark.parametrize(
    "attrs",
    [
        {"kernel": [2.0, 2]},
        {"stride": [0, 1]},
        {"padding": [-1, 0]},
        {"ceil_mode": 1},
    ],
)
def test_maxpool_attrs_the_kernel_does_not_cover_go_to_the_executor(attrs):
    graph, node = plain_maxpool()
    assert not fast_path_op(graph, _with(node, attrs))
    without_padding = _with(node)
    del without_padding.attrs["padding"]
    assert not fast_path_op(graph, without_padding)


def test_input_shapes_are_checked_like_the_executor():
    graph, node = plain_maxpool()
    x = np.zeros((2, *graph.tensors["x"].shape), np.int64)
    wrong = np.zeros((1, *x.shape[1:-1], x.shape[-1] + 1), np.int64)
    with pytest.raises(ValueError, match="expected") as ours:
        run_vector_node(graph, node, [wrong])
    with pytest.raises(ValueError, match="expected") as theirs:
        executor.run_node(graph, node, [wrong])
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError):
        run_vector_node(graph, node, [x, x])  # one input too many


def test_module_is_wired_to_the_executor_module():
    """The fallback looks the executor up at call time (so the recording fixture sees it)."""
    assert vector_kernels.executor is executor
