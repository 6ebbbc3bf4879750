"""GEMM lowering, fold plans, cycle formulas and fault reach (accelsim/mapping.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import mapping, refmodel
from accelsim.codes import DATAFLOW_CODES, DATAFLOWS, Dataflow, dataflow_spec
from accelsim.pe_spec import PESpec


def pe(dataflow, rows, cols, a_bits=8, a_signed=True, w_bits=8, acc_bits=32, overflow="wrap"):
    """The array's spec (fault reach depends only on dataflow and size)."""
    return PESpec.of(
        dataflow,
        rows,
        cols,
        a_bits=a_bits,
        a_signed=a_signed,
        w_bits=w_bits,
        acc_bits=acc_bits,
        overflow=overflow,
    )


def fold_cycles(dataflow, mt, kt, nt, rows):
    return mapping.fold_cycles(Dataflow.of(dataflow), mt, kt, nt, rows)


def affected_outputs(dataflow, cls, r, c, t, mt, kt, nt, rows, cols, kind=0):
    return mapping.affected_outputs(pe(dataflow, rows, cols).kernel, cls, r, c, t, mt, kt, nt, kind)


def affected_box(dataflow, cls, r, c, t, mt, kt, nt, rows, cols, kind):
    return mapping.affected_box(pe(dataflow, rows, cols).kernel, cls, r, c, t, mt, kt, nt, kind)


def direct_conv(x, weight, stride, padding, groups):
    """Textbook integer convolution, one output at a time."""
    batch, channels, height, width = x.shape
    n_out, c_per_group, kh, kw = weight.shape
    sh, sw = stride
    ph, pw = padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (height + 2 * ph - kh) // sh + 1
    ow = (width + 2 * pw - kw) // sw + 1
    out = np.zeros((batch, n_out, oh, ow), dtype=np.int64)
    n_per_group = n_out // groups
    for b in range(batch):
        for n in range(n_out):
            g = n // n_per_group
            chans = slice(g * c_per_group, (g + 1) * c_per_group)
            for i in range(oh):
                for j in range(ow):
                    window = padded[b, chans, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    out[b, n, i, j] = int(np.sum(window * weight[n]))
    return out


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    depthwise = draw(st.booleans())
    c_per_group = 1 if depthwise else draw(st.integers(1, 3))
    n_per_group = 1 if depthwise else draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    height = draw(st.integers(max(1, kh - 2 * ph), 7))
    width = draw(st.integers(max(1, kw - 2 * pw), 7))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    batch = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 8, (batch, groups * c_per_group, height, width))
    weight = rng.integers(-8, 8, (groups * n_per_group, c_per_group, kh, kw))
    return x, weight, stride, (ph, pw), groups


@settings(max_examples=80, deadline=None)
@given(conv_cases())
def test_lowered_conv_equals_direct_convolution(case):
    x, weight, stride, padding, groups = case
    a_groups = mapping.lower_conv(x, weight.shape, stride, padding, groups)
    w_groups = mapping.weight_matrices(weight, groups)
    batch = x.shape[0]
    oh = mapping.conv_output_size(x.shape[2], weight.shape[2], stride[0], padding[0])
    ow = mapping.conv_output_size(x.shape[3], weight.shape[3], stride[1], padding[1])
    for a, w in zip(a_groups, w_groups):
        assert a.dtype == np.int64 and w.dtype == np.int64
        assert a.shape == (batch * oh * ow, weight.shape[1] * weight.shape[2] * weight.shape[3])
    outs = [a @ w for a, w in zip(a_groups, w_groups)]
    got = mapping.output_from_gemm(outs, batch, oh, ow)
    np.testing.assert_array_equal(got, direct_conv(x, weight, stride, padding, groups))


def test_lowering_orders_m_and_k_as_the_contract_says():
    x = np.arange(2 * 2 * 3 * 3).reshape(2, 2, 3, 3)
    (a,) = mapping.lower_conv(x, (1, 2, 2, 2), (1, 1), (0, 0), 1)
    b, oh, ow, c, kh, kw = 1, 0, 1, 1, 1, 0
    m = ((b * 2) + oh) * 2 + ow
    k = c * 4 + kh * 2 + kw
    assert a[m, k] == x[b, c, oh + kh, ow + kw]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(DATAFLOWS),
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 4),
    st.integers(1, 4),
)
def test_folds_cover_every_mac_exactly_once(dataflow, M, K, N, rows, cols):
    count = np.zeros((M, K, N), dtype=np.int64)
    folds = mapping.plan_folds(dataflow, M, K, N, rows, cols)
    for f in folds:
        mt, kt, nt = f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0
        fits = {"ws": (kt, nt), "os": (mt, nt), "is": (kt, mt)}[dataflow]
        assert fits[0] <= rows and fits[1] <= cols
        count[f.m0 : f.m1, f.k0 : f.k1, f.n0 : f.n1] += 1
    assert np.all(count == 1)
    # the k-folds of one output tile run consecutively, in ascending k
    tiles: dict[tuple[int, int, int, int], list[int]] = {}
    for i, f in enumerate(folds):
        tiles.setdefault((f.m0, f.m1, f.n0, f.n1), []).append(i)
    for indices in tiles.values():
        assert indices == list(range(indices[0], indices[0] + len(indices)))
        assert [folds[i].k0 for i in indices] == sorted(folds[i].k0 for i in indices)


def test_fold_order_is_scalesims():
    ws = mapping.plan_folds("ws", 5, 4, 4, 2, 2)
    assert [(f.k0, f.n0) for f in ws] == [(0, 0), (2, 0), (0, 2), (2, 2)]
    os_ = mapping.plan_folds("os", 4, 5, 4, 2, 2)
    assert [(f.m0, f.n0) for f in os_] == [(0, 0), (0, 2), (2, 0), (2, 2)]
    is_ = mapping.plan_folds("is", 4, 4, 5, 2, 2)
    assert [(f.m0, f.k0) for f in is_] == [(0, 0), (0, 2), (2, 0), (2, 2)]


def test_fold_cycle_formulas():
    assert fold_cycles("ws", 10, 3, 4, 8) == 10 + 8 + 4
    assert fold_cycles("os", 3, 10, 4, 8) == 10 + 3 + 4
    assert fold_cycles("is", 4, 3, 10, 8) == 10 + 8 + 4
    assert mapping.preload_cycles(Dataflow.WS, 8) == 8
    assert mapping.preload_cycles(Dataflow.IS, 8) == 8
    assert mapping.preload_cycles(Dataflow.OS, 8) == 0


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(DATAFLOWS), st.integers(1, 4), st.integers(1, 4), st.data())
def test_fold_cycles_equal_the_reference_model(dataflow, rows, cols, data):
    mt, kt, nt = _tile_shape(data, dataflow, rows, cols)
    a = np.ones((mt, kt), dtype=np.int64)
    w = np.ones((kt, nt), dtype=np.int64)
    psum = np.zeros((mt, nt), dtype=np.int64)
    spec = pe(dataflow, rows, cols, 4, True, 4, 16, "wrap")
    out, cycles = refmodel.simulate_fold(spec, a, w, psum)
    assert cycles == fold_cycles(dataflow, mt, kt, nt, rows)
    np.testing.assert_array_equal(out, np.full((mt, nt), kt))


def _tile_shape(data, dataflow, rows, cols):
    free = data.draw(st.integers(1, 6))
    a, b = data.draw(st.integers(1, rows)), data.draw(st.integers(1, cols))
    return dataflow_spec(dataflow).gemm_dims(a, b, free)


def _outputs(pairs):
    return sorted(zip(*(p.tolist() for p in pairs)))


def test_affected_outputs_hand_worked_ws():
    # 2x2 array, Mt=3, Kt=2, Nt=2: input (r, c) holds m = t-r-c, product t-r-c-1, acc t-r-c-2
    args = (3, 2, 2, 2, 2)
    assert _outputs(affected_outputs("ws", 1, 0, 0, 1, *args)) == [(1, 0), (2, 0)]
    assert _outputs(affected_outputs("ws", 0, 1, 0, 2, *args)) == [(1, 0), (1, 1)]
    assert _outputs(affected_outputs("ws", 2, 0, 1, 3, *args)) == [(1, 1)]
    assert _outputs(affected_outputs("ws", 3, 1, 1, 4, *args)) == [(0, 1)]
    assert _outputs(affected_outputs("ws", 1, 0, 0, 3, *args)) == []  # after last read
    assert _outputs(affected_outputs("ws", 3, 1, 1, 7, *args)) == []  # after the fold
    stuck = affected_outputs("ws", 1, 0, 1, 0, *args, kind=2)
    assert _outputs(stuck) == [(0, 1), (1, 1), (2, 1)]


def test_affected_outputs_hand_worked_os_and_is():
    # os 2x2, Mt=2, Kt=3, Nt=2: PE(r, c) completes in cycle Kt+r+c+1
    args = (2, 3, 2, 2, 2)
    assert _outputs(affected_outputs("os", 0, 0, 0, 1, *args)) == [(0, 0), (0, 1)]
    assert _outputs(affected_outputs("os", 1, 0, 1, 3, *args)) == [(0, 1), (1, 1)]
    assert _outputs(affected_outputs("os", 2, 1, 1, 0, *args)) == [(1, 1)]
    assert _outputs(affected_outputs("os", 3, 1, 0, 5, *args)) == [(1, 0)]
    assert _outputs(affected_outputs("os", 3, 1, 0, 6, *args)) == []
    # is 2x2, Kt=2, Mt=2, Nt=3: inputs stationary, weights stream with slot n = t-r-c
    args = (2, 2, 3, 2, 2)
    assert _outputs(affected_outputs("is", 0, 1, 0, 2, *args)) == [(0, 1), (0, 2)]
    assert _outputs(affected_outputs("is", 1, 0, 0, 0, *args)) == [(0, 0), (1, 0)]
    assert _outputs(affected_outputs("is", 2, 1, 1, 3, *args)) == [(1, 0)]
    assert _outputs(affected_outputs("is", 3, 0, 1, 4, *args)) == [(1, 1)]


def test_idle_pes_are_masked():
    # ws tile uses 1 of 3 columns; os tile uses 1x1 of a 3x3 array
    assert _outputs(affected_outputs("ws", 3, 0, 2, 2, 4, 2, 1, 3, 3)) == []
    assert _outputs(affected_outputs("os", 2, 1, 0, 1, 1, 4, 1, 3, 3)) == []


def _reach_cases(seed: int, count: int):
    """Random fault sites over every dataflow, class and kind, idle PEs and cycles included."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        dataflow = DATAFLOWS[rng.integers(3)]
        rows, cols = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        mt, kt, nt = (int(v) for v in rng.integers(1, 7, 3))
        cycles = fold_cycles(dataflow, mt, kt, nt, rows)
        row, col = int(rng.integers(-1, rows + 1)), int(rng.integers(-1, cols + 1))
        cycle = int(rng.integers(-3, cycles + 3))
        yield (
            dataflow,
            int(rng.integers(4)),
            row,
            col,
            cycle,
            mt,
            kt,
            nt,
            rows,
            cols,
            int(rng.integers(3)),
        )


def _flip_reach(dataflow, cls, r, c, t, mt, kt, nt):
    """Outputs (m, n) a flip at cycle t of register (cls, r, c) of a live PE reaches.

    Written per output from the register table of docs/dataflows.md (what each register holds
    in cycle t, who reads it and when), independently of mapping.py's range arithmetic.
    """
    reached = set()
    for m in range(mt):
        for n in range(nt):
            if dataflow == "os":
                read = kt + m + n + 1  # cycle the accumulator of PE(m, n) is captured
                hit = {
                    # the flipped operand reaches PE(m, n) n-c (m-r) cycles later, its product
                    # is in that accumulator two edges after that
                    0: m == r and n >= c and t + (n - c) + 2 <= read,
                    1: n == c and m >= r and t + (m - r) + 2 <= read,
                    2: (m, n) == (r, c) and t + 1 <= read,
                    3: (m, n) == (r, c) and t <= read,
                }[cls]
            else:
                slot, lane = (m, n) if dataflow == "ws" else (n, m)
                moving = 0 if dataflow == "ws" else 1
                if cls == moving:  # holds slot t-r-c, passed right to the later columns
                    hit = slot == t - r - c and lane >= c
                elif cls in (0, 1):  # stationary: read for slot s in cycle s+r+c
                    hit = lane == c and slot + r + c >= t
                else:  # product holds slot t-r-c-1, accumulator t-r-c-2
                    hit = lane == c and slot == t - r - c - (1 if cls == 2 else 2)
            if hit:
                reached.add((m, n))
    return reached


def _reach_oracle(dataflow, cls, r, c, t, mt, kt, nt, rows, cols, kind):
    """Flip: its reach if the PE is live and t inside the fold; stuck: every cycle's union."""
    ext_rows, ext_cols = {"ws": (rows, nt), "os": (mt, nt), "is": (rows, mt)}[dataflow]
    cycles = fold_cycles(dataflow, mt, kt, nt, rows)
    if not (0 <= r < ext_rows and 0 <= c < ext_cols):
        return set()
    if kind != 0:
        return set().union(
            *(_flip_reach(dataflow, cls, r, c, u, mt, kt, nt) for u in range(cycles))
        )
    return _flip_reach(dataflow, cls, r, c, t, mt, kt, nt) if 0 <= t < cycles else set()


def test_affected_box_is_the_full_rectangle_affected_outputs_lists():
    empty = nonempty = 0
    for dataflow, *site, kind in _reach_cases(seed=7, count=3000):
        m_idx, n_idx = affected_outputs(dataflow, *site, kind=kind)
        box = affected_box(dataflow, *site, kind)
        expected = _reach_oracle(dataflow, *site, kind)
        assert m_idx.dtype == n_idx.dtype == np.int64
        pairs = list(zip(m_idx.tolist(), n_idx.tolist()))
        assert set(pairs) == expected, (dataflow, site, kind)
        if not expected:
            assert box == (0, 0, 0, 0)
            empty += 1
            continue
        nonempty += 1
        m0, m1, n0, n1 = box
        assert box == (
            min(expected)[0],
            max(expected)[0] + 1,
            min(n for _, n in expected),
            max(n for _, n in expected) + 1,
        )
        # the reach is the whole box (a rectangle), listed once each, m-major
        assert pairs == [(m, n) for m in range(m0, m1) for n in range(n0, n1)]
    assert empty > 300 and nonempty > 300  # the sweep exercises both outcomes


def test_affected_box_follows_the_reach_table():
    # docs/dataflows.md "Faults" table, on a 3x3 array with Mt=4, Kt=3, Nt=3 (ws and is)
    ws, os_, is_ = (pe(d, 3, 3).kernel for d in DATAFLOWS)
    tile = (4, 3, 3)
    assert mapping.affected_box(ws, 0, 1, 1, 3, *tile, 0) == (1, 2, 1, 3)  # m = t-r-c, n >= c
    assert mapping.affected_box(ws, 1, 1, 1, 3, *tile, 0) == (1, 4, 1, 2)  # m >= t-r-c
    assert mapping.affected_box(ws, 2, 1, 1, 3, *tile, 0) == (0, 1, 1, 2)  # m = t-r-c-1
    assert mapping.affected_box(ws, 3, 1, 1, 3, *tile, 0) == (0, 0, 0, 0)  # slot -1
    assert mapping.affected_box(ws, 3, 1, 1, 3, *tile, 1) == (0, 4, 1, 2)  # stuck: every slot
    assert mapping.affected_box(is_, 0, 1, 1, 3, *tile, 0) == (1, 2, 1, 3)  # n >= t-r-c
    assert mapping.affected_box(is_, 1, 1, 1, 3, *tile, 0) == (1, 4, 1, 2)  # m >= c, n = t-r-c
    assert mapping.affected_box(os_, 0, 1, 1, 4, *tile, 0) == (1, 2, 1, 3)
    assert mapping.affected_box(os_, 1, 1, 1, 4, *tile, 0) == (1, 4, 1, 2)
    assert mapping.affected_box(os_, 1, 1, 1, 5, *tile, 0) == (0, 0, 0, 0)  # k = 3 >= Kt
    assert mapping.affected_box(os_, 3, 1, 1, 6, *tile, 0) == (1, 2, 1, 2)  # read in Kt+r+c+1
    assert mapping.affected_box(os_, 3, 1, 1, 7, *tile, 0) == (0, 0, 0, 0)


def test_one_cycle_formula_per_dataflow_and_unknown_dataflows_rejected():
    for name, code in DATAFLOW_CODES.items():
        assert mapping.fold_cycles(code, 5, 3, 2, 4) == fold_cycles(name, 5, 3, 2, 4)
        assert (
            mapping.emulated_extent(code, 5, 3, 2, 4)
            == {
                "ws": (4, 2),
                "os": (5, 2),
                "is": (4, 5),
            }[name]
        )
    assert DATAFLOW_CODES == {"ws": 0, "os": 1, "is": 2}
    unknown = (3, 4, 4, 8, True, 8, 32, 0)  # a kernel tuple with dataflow code 3
    for call in (
        lambda: fold_cycles("rs", 1, 1, 1, 1),
        lambda: mapping.fold_cycles(3, 1, 1, 1, 1),
        lambda: mapping.emulated_extent(3, 1, 1, 1, 1),
        lambda: mapping.affected_outputs(unknown, 0, 0, 0, 0, 1, 1, 1, 0),
        lambda: mapping.affected_box(unknown, 0, 0, 0, 0, 1, 1, 1, 0),
        lambda: mapping.plan_folds("rs", 1, 1, 1, 1, 1),
        lambda: pe("rs", 1, 1),
    ):
        with pytest.raises(ValueError):
            call()


# ---- the fold plan and fold cycles as arrays (the simulator's fast path) -----------------


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize(("M", "K", "N", "rows", "cols"), [(1, 1, 1, 1, 1), (7, 19, 5, 4, 3)])
def test_fold_table_is_plan_folds_as_an_array(dataflow, M, K, N, rows, cols):
    from accelsim.mapping import fold_cycles_array, fold_table, plan_folds

    plan = plan_folds(dataflow, M, K, N, rows, cols)
    table = fold_table(dataflow, M, K, N, rows, cols)
    assert [tuple(row) for row in table.tolist()] == [
        (f.m0, f.m1, f.k0, f.k1, f.n0, f.n1) for f in plan
    ]
    code = dataflow_spec(dataflow).code
    dims = [(f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0) for f in plan]
    mt, kt, nt = np.array(dims).T
    assert fold_cycles_array(dataflow, mt, kt, nt, rows).tolist() == [
        mapping.fold_cycles(code, *d, rows) for d in dims
    ]


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_scalesim_fold_cycles_array_is_the_scalar_count(dataflow):
    from accelsim.timing_scalesim import scalesim_fold_cycles, scalesim_fold_cycles_array

    rng = np.random.default_rng(0)
    mt, kt, nt = rng.integers(1, 9, (3, 20))
    first = rng.integers(0, 2, 20).astype(bool)
    got = scalesim_fold_cycles_array(dataflow, mt, kt, nt, 8, 8, first_fold=first)
    want = [
        scalesim_fold_cycles(dataflow, *d, 8, 8, first_fold=bool(f))
        for *d, f in zip(mt, kt, nt, first)
    ]
    assert got.tolist() == want


def test_schedules_of_one_shape_share_their_tiling_and_keep_their_names():
    """The fold table is built once per layer shape and configuration (a cache), read-only;
    each schedule still names its own layer; an infeasible layer raises every time."""
    from accelsim.config import AcceleratorConfig
    from accelsim.errors import Infeasible
    from accelsim.schedule import schedule_layer
    from tests.test_fold_transactions import random_graph

    graph = random_graph(np.random.default_rng(1))
    conv1 = graph.node("conv1")
    renamed = replace(conv1, name="conv1_copy")
    accel = AcceleratorConfig.model_validate({"array": {"rows": 3, "cols": 2}})
    a = schedule_layer(graph, conv1, accel, batch=2)
    b = schedule_layer(graph, renamed, accel, batch=2)
    assert a.fold_table is b.fold_table and not a.fold_table.flags.writeable
    assert (a.shape.layer, b.shape.layer) == ("conv1", "conv1_copy")
    assert [f.index for f in a.folds] == list(range(a.fold_count))
    tiny = AcceleratorConfig.model_validate(
        {"buffers": {"weight": {"capacity_kib": 0.001, "double_buffered": False}}}
    )
    for _ in range(2):
        with pytest.raises(Infeasible):
            schedule_layer(graph, conv1, tiny, batch=2)
