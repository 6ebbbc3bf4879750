"""Fold kernels (accelsim/kernels.py) against the reference model (accelsim/refmodel.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import kernels, mapping, refmodel
from accelsim.codes import DATAFLOWS, FAULT_ROW_WIDTH, OVERFLOW_CODES, Dataflow, dataflow_spec
from accelsim.pe_spec import PESpec


def sequential_gemm(a, w, psum, acc_bits, overflow):
    """The contract, literally: acc = psum; for k ascending: acc = overflow(acc + a*w)."""
    hi, lo = (1 << (acc_bits - 1)) - 1, -(1 << (acc_bits - 1))
    out = np.zeros((a.shape[0], w.shape[1]), dtype=np.int64)
    for m in range(a.shape[0]):
        for n in range(w.shape[1]):
            acc = int(psum[m, n])
            for k in range(a.shape[1]):
                acc += int(a[m, k]) * int(w[k, n])
                if overflow == "wrap":
                    acc = (acc + (1 << (acc_bits - 1))) % (1 << acc_bits) - (1 << (acc_bits - 1))
                else:
                    acc = min(max(acc, lo), hi)
            out[m, n] = acc
    return out


@st.composite
def fold_cases(draw, max_faults=0):
    dataflow = draw(st.sampled_from(DATAFLOWS))
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    free = draw(st.integers(1, 5))
    a_ext, b_ext = draw(st.integers(1, rows)), draw(st.integers(1, cols))
    mt, kt, nt = dataflow_spec(dataflow).gemm_dims(a_ext, b_ext, free)
    a_bits, w_bits = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    a_signed = draw(st.booleans())
    # small accumulators so that wrap and saturate really trigger
    acc_bits = draw(st.integers(max(a_bits, w_bits) + 1, a_bits + w_bits + 3))
    overflow = draw(st.sampled_from(["wrap", "saturate"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a_lo, a_hi = (-(1 << (a_bits - 1)), 1 << (a_bits - 1)) if a_signed else (0, 1 << a_bits)
    a = rng.integers(a_lo, a_hi, (mt, kt))
    w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), (kt, nt))
    psum = rng.integers(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), (mt, nt))
    cycles = mapping.fold_cycles(Dataflow.of(dataflow), mt, kt, nt, rows)
    n_faults = draw(st.integers(1 if max_faults else 0, max_faults))
    faults = []
    for _ in range(n_faults):
        cls = draw(st.integers(0, 3))
        bits = {0: a_bits, 1: w_bits, 2: a_bits + w_bits, 3: acc_bits}[cls]
        mask = draw(
            st.sampled_from(
                [1 << draw(st.integers(0, bits - 1)), draw(st.integers(1, (1 << bits) - 1))]
            )
        )
        kind = draw(st.sampled_from([0, 0, 0, 1, 2]))
        faults.append(
            [
                cls,
                draw(st.integers(0, rows - 1)),
                draw(st.integers(0, cols - 1)),
                draw(st.integers(0, cycles)),
                mask,
                kind,
            ]
        )
    return dict(
        dataflow=dataflow,
        a=a,
        w=w,
        psum=psum,
        rows=rows,
        cols=cols,
        a_bits=a_bits,
        a_signed=a_signed,
        w_bits=w_bits,
        acc_bits=acc_bits,
        overflow=overflow,
        faults=np.array(faults, dtype=np.int64).reshape(-1, FAULT_ROW_WIDTH),
    )


def spec(case):
    return PESpec.of(
        case["dataflow"],
        case["rows"],
        case["cols"],
        a_bits=case["a_bits"],
        a_signed=case["a_signed"],
        w_bits=case["w_bits"],
        acc_bits=case["acc_bits"],
        overflow=case["overflow"],
    )


def fast(case, faults=None):
    return kernels.run_fold(
        spec(case),
        case["a"],
        case["w"],
        case["psum"],
        faults=case["faults"] if faults is None else faults,
    )


def reference(case, faults=None):
    faults = case["faults"] if faults is None else faults
    return refmodel.simulate_fold(
        spec(case),
        case["a"],
        case["w"],
        case["psum"],
        [tuple(f) for f in np.asarray(faults).tolist()],
    )


@settings(max_examples=80, deadline=None)
@given(fold_cases())
def test_fault_free_fold_equals_sequential_accumulation_and_reference(case):
    expected = sequential_gemm(
        case["a"], case["w"], case["psum"], case["acc_bits"], case["overflow"]
    )
    np.testing.assert_array_equal(fast(case), expected)
    out, cycles = reference(case)
    np.testing.assert_array_equal(out, expected)
    mt, kt, nt = case["a"].shape + (case["w"].shape[1],)
    assert cycles == mapping.fold_cycles(Dataflow.of(case["dataflow"]), mt, kt, nt, case["rows"])


@settings(max_examples=400, deadline=None)
@given(fold_cases(max_faults=3))
def test_faulty_fold_equals_reference_model_bit_for_bit(case):
    out, _ = reference(case)
    np.testing.assert_array_equal(fast(case), out)


@settings(max_examples=250, deadline=None)
@given(fold_cases(max_faults=3))
def test_affected_outputs_contain_every_changed_output(case):
    clean, _ = reference(case, faults=np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64))
    mt, kt, nt = case["a"].shape + (case["w"].shape[1],)
    allowed = np.zeros((mt, nt), dtype=bool)
    for f in case["faults"]:
        m_idx, n_idx = mapping.affected_outputs(
            spec(case).kernel,
            int(f[0]),
            int(f[1]),
            int(f[2]),
            int(f[3]),
            mt,
            kt,
            nt,
            kind=int(f[5]),
        )
        single, _ = reference(case, faults=f[None, :])
        one = np.zeros_like(allowed)
        one[m_idx, n_idx] = True
        assert not np.any((single != clean) & ~one), f"fault {f.tolist()} escapes its set"
        allowed |= one
    together, _ = reference(case)
    assert not np.any((together != clean) & ~allowed)


# ---- hand-worked cases: one per register class and dataflow -----------------------------

WS_CASE = dict(
    dataflow="ws",
    a=np.array([[1, 2], [3, 4], [5, 6]]),
    w=np.array([[1, 2], [3, 4]]),
    psum=np.zeros((3, 2), dtype=np.int64),
    rows=2,
    cols=2,
    a_bits=8,
    a_signed=True,
    w_bits=8,
    acc_bits=16,
    overflow="wrap",
    faults=np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64),
)
WS_CLEAN = np.array([[7, 10], [15, 22], [23, 34]])


def _check(case, clean, fault, expected_changes):
    """Fast path and reference agree; exactly ``expected_changes`` {(m, n): value} differ."""
    expected = clean.copy()
    for (m, n), value in expected_changes.items():
        expected[m, n] = value
    faults = np.array([fault], dtype=np.int64)
    out, _ = reference(case, faults)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(fast(case, faults), expected)


def test_ws_weight_flip_persists_for_later_slots():
    # W[0,0] (PE 0,0) 1 -> 3 from cycle 1: slots m read in cycle m >= 1 see it, column 0 only
    _check(WS_CASE, WS_CLEAN, [1, 0, 0, 1, 2, 0], {(1, 0): 3 * 3 + 4 * 3, (2, 0): 5 * 3 + 6 * 3})


def test_ws_input_flip_travels_right_along_the_row():
    # PE(1,0) in cycle 2 holds A[m=2-1-0, k=1] = 4 -> 5, read by both columns
    _check(WS_CASE, WS_CLEAN, [0, 1, 0, 2, 1, 0], {(1, 0): 3 + 5 * 3, (1, 1): 3 * 2 + 5 * 4})


def test_ws_product_flip_corrupts_one_psum():
    # PE(0,1) in cycle 3 holds the product of slot m = 3-0-1-1 = 1: 3*2 = 6 -> 2
    _check(WS_CASE, WS_CLEAN, [2, 0, 1, 3, 4, 0], {(1, 1): 2 + 4 * 4})


def test_ws_accumulator_flip_at_the_bottom_edge():
    # PE(1,1) in cycle 4 holds the finished psum of slot m = 4-1-1-2 = 0: 10 -> 11
    _check(WS_CASE, WS_CLEAN, [3, 1, 1, 4, 1, 0], {(0, 1): 11})


def test_ws_weight_sign_bit_flip_makes_the_weight_negative():
    # W[1,1] = 4 in 8 bits; flipping bit 7 gives 4 - 128 = -124 for every slot (cycle 0)
    _check(
        WS_CASE,
        WS_CLEAN,
        [1, 1, 1, 0, 0x80, 0],
        {(m, 1): WS_CASE["a"][m, 0] * 2 + WS_CASE["a"][m, 1] * -124 for m in range(3)},
    )


def test_masked_flips_change_nothing():
    _check(WS_CASE, WS_CLEAN, [1, 0, 0, 3, 2, 0], {})  # weight flipped after its last read
    _check(WS_CASE, WS_CLEAN, [3, 1, 1, 7, 1, 0], {})  # after the fold


def test_ws_stuck_at_one_input_bit():
    # row 0, column 1 input bit 0 stuck at 1: every A[m, 0] reaching column 1 becomes odd
    changes = {(m, 1): (WS_CASE["a"][m, 0] | 1) * 2 + WS_CASE["a"][m, 1] * 4 for m in range(3)}
    _check(WS_CASE, WS_CLEAN, [0, 0, 1, 0, 1, 2], changes)


OS_CASE = dict(
    dataflow="os",
    a=np.array([[1, 2, 3], [4, 5, 6]]),
    w=np.array([[1, 2], [3, 4], [5, 6]]),
    psum=np.zeros((2, 2), dtype=np.int64),
    rows=2,
    cols=2,
    a_bits=8,
    a_signed=True,
    w_bits=8,
    acc_bits=16,
    overflow="wrap",
    faults=np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64),
)
OS_CLEAN = np.array([[22, 28], [49, 64]])


def test_os_input_flip_travels_right():
    # PE(0,0) cycle 1 holds A[0, k=1] = 2 -> 3: both outputs of row 0 gain W[1, n]
    _check(OS_CASE, OS_CLEAN, [0, 0, 0, 1, 1, 0], {(0, 0): 22 + 3, (0, 1): 28 + 4})


def test_os_weight_flip_travels_down():
    # PE(0,1) cycle 3 holds W[k=2, 1] = 6 -> 7: outputs of column 1 gain A[m, 2]
    _check(OS_CASE, OS_CLEAN, [1, 0, 1, 3, 1, 0], {(0, 1): 28 + 3, (1, 1): 64 + 6})


def test_os_product_flip_in_a_bubble_is_accumulated():
    # PE(1,1) cycle 0: the product register holds a bubble 0 -> 1, still added in place
    _check(OS_CASE, OS_CLEAN, [2, 1, 1, 0, 1, 0], {(1, 1): 65})


def test_os_accumulator_flip_until_read():
    # PE(1,0) completes in cycle Kt+1+0+1 = 5: 49 ^ 8 = 57; one cycle later it is masked
    _check(OS_CASE, OS_CLEAN, [3, 1, 0, 5, 8, 0], {(1, 0): 57})
    _check(OS_CASE, OS_CLEAN, [3, 1, 0, 6, 8, 0], {})


IS_CASE = dict(
    dataflow="is",
    a=np.array([[1, 2], [3, 4]]),
    w=np.array([[1, 2, 3], [4, 5, 6]]),
    psum=np.zeros((2, 3), dtype=np.int64),
    rows=2,
    cols=2,
    a_bits=8,
    a_signed=False,
    w_bits=8,
    acc_bits=16,
    overflow="wrap",
    faults=np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64),
)
IS_CLEAN = np.array([[9, 12, 15], [19, 26, 33]])


def test_is_stationary_input_flip_persists():
    # PE(1,0) holds A[0, 1] = 2 -> 3 from cycle 2: slots n read in cycle n+1 >= 2
    _check(IS_CASE, IS_CLEAN, [0, 1, 0, 2, 1, 0], {(0, 1): 2 + 3 * 5, (0, 2): 3 + 3 * 6})


def test_is_weight_flip_travels_right():
    # PE(0,0) cycle 0 holds W[0, n=0] = 1 -> 3, read by both columns (m = 0, 1)
    _check(IS_CASE, IS_CLEAN, [1, 0, 0, 0, 2, 0], {(0, 0): 3 + 8, (1, 0): 3 * 3 + 16})


def test_is_product_and_accumulator_flips():
    # product of PE(1,1) cycle 3: slot n = 0, 4*4 = 16 -> 17
    _check(IS_CASE, IS_CLEAN, [2, 1, 1, 3, 1, 0], {(1, 0): 20})
    # psum of PE(0,1) cycle 4: slot n = 1, 3*2 = 6 -> 7, then + 4*5
    _check(IS_CASE, IS_CLEAN, [3, 0, 1, 4, 1, 0], {(1, 1): 27})


def test_unsigned_input_flip_is_read_unsigned():
    # is: stationary A[1,1] = 4 (unsigned 8-bit) with bit 7 set is 132, not negative
    _check(
        IS_CASE,
        IS_CLEAN,
        [0, 1, 1, 0, 0x80, 0],
        {(1, n): 3 * IS_CASE["w"][0, n] + 132 * IS_CASE["w"][1, n] for n in range(3)},
    )


# ---- run_gemm and the fast path's overflow shortcuts -------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 12),
    st.integers(1, 6),
    st.integers(4, 20),
    st.sampled_from(["wrap", "saturate"]),
    st.integers(0, 2**32 - 1),
)
def test_run_gemm_equals_a_plain_loop(M, K, N, acc_bits, overflow, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (M, K))
    w = rng.integers(-128, 128, (K, N))
    psum = rng.integers(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), (M, N))
    got = kernels.run_gemm(a, w, psum, acc_bits=acc_bits, overflow=OVERFLOW_CODES[overflow])
    np.testing.assert_array_equal(got, sequential_gemm(a, w, psum, acc_bits, overflow))
    bias = psum[0]
    got_row = kernels.run_gemm(a, w, bias, acc_bits=acc_bits, overflow=OVERFLOW_CODES[overflow])
    np.testing.assert_array_equal(
        got_row, sequential_gemm(a, w, np.tile(bias, (M, 1)), acc_bits, overflow)
    )


def test_saturation_order_matters_and_is_ascending_k():
    # 8-bit acc: 100 + 100 saturates to 127, then -100 gives 27 (not 100)
    a = np.array([[1, 1, 1]])
    w = np.array([[100], [100], [-100]])
    psum = np.zeros((1, 1), dtype=np.int64)
    got = kernels.run_gemm(a, w, psum, acc_bits=8, overflow=OVERFLOW_CODES["saturate"])
    assert got[0, 0] == 27
    for dataflow in DATAFLOWS:
        pe = PESpec.of(
            dataflow, 3, 3, a_bits=8, a_signed=True, w_bits=8, acc_bits=8, overflow="saturate"
        )
        out, _ = refmodel.simulate_fold(pe, a, w, psum)
        assert out[0, 0] == 27


def test_large_fault_free_fold_matches_the_plain_loop_on_a_sample():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (300, 16))
    w = rng.integers(-128, 128, (16, 8))
    psum = rng.integers(-(1 << 20), 1 << 20, (300, 8))
    for overflow in ("wrap", "saturate"):
        pe = PESpec.of(
            Dataflow.WS, 16, 8, a_bits=8, a_signed=False, w_bits=8, acc_bits=21, overflow=overflow
        )
        got = kernels.run_fold(
            pe, a, w, psum, faults=np.zeros((0, FAULT_ROW_WIDTH), dtype=np.int64)
        )
        rows = slice(0, 300, 37)
        np.testing.assert_array_equal(
            got[rows], sequential_gemm(a[rows], w, psum[rows], 21, overflow)
        )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(1, 40),
    st.integers(1, 9),
    st.sampled_from([8, 16, 32, 48]),
    st.sampled_from([7, 16, 24, 31]),
    st.sampled_from(["wrap", "saturate"]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_run_gemm_float64_shortcut_equals_the_integer_kernel(
    M, K, N, acc_bits, magnitude, overflow, read_only, seed
):
    """run_gemm sums in float64 BLAS when every partial sum stays below 2**53 (exact), else in
    the int64 kernel; both must equal the kernel the simulator always had, weights cached or not."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-(1 << magnitude), 1 << magnitude, (M, K))
    w = rng.integers(-(1 << magnitude), 1 << magnitude, (K, N))
    psum = rng.integers(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), (M, N))
    w.flags.writeable = not read_only  # read-only weights: float copy and max|w| are cached
    rule = OVERFLOW_CODES[overflow]
    expected = kernels._gemm_overflow(a, w, psum, acc_bits, rule)
    for _ in range(2):  # the second call reuses the cached facts of a read-only w
        np.testing.assert_array_equal(
            kernels.run_gemm(a, w, psum, acc_bits=acc_bits, overflow=rule), expected
        )
