"""Whole faulty folds and k-chains inside Numba (kernels.fold_values, kernels.chain_values).

``chain_values`` must equal what the simulator does for a faulty output tile
(accelsim/hw/pe_array.py): psum = bias, then ``compute_fold`` fold by fold along the tile's
k-chain with each fold's faults. ``run_fold`` itself is checked against the cycle-by-cycle
reference model in tests/test_kernels.py; here ``fold_values`` is also checked against both.
"""

from __future__ import annotations

import numpy as np
import pytest

from accelsim import kernels, mapping, refmodel
from accelsim.codes import CHAIN_ROW_WIDTH, DATAFLOWS, FAULT_ROW_WIDTH, Dataflow, dataflow_spec
from accelsim.datapath import compute_fold
from accelsim.pe_spec import PESpec
from accelsim.schedule import FoldJob, GemmShape

REGISTER_BITS = ("a_bits", "w_bits", "product", "acc_bits")


def _widths(rng):
    a_bits, w_bits = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    # small accumulators make wrap and saturate trigger; 32 bits is the common case
    acc_bits = int(rng.choice([max(a_bits, w_bits) + 1, a_bits + w_bits + 2, 32]))
    return dict(a_bits=a_bits, a_signed=bool(rng.integers(2)), w_bits=w_bits, acc_bits=acc_bits)


def _spec(dataflow, rows, cols, widths, overflow):
    return PESpec.of(dataflow, rows, cols, overflow=overflow, **widths)


def _operands(rng, widths, M, K, N):
    a_bits, w_bits, acc_bits = widths["a_bits"], widths["w_bits"], widths["acc_bits"]
    a_lo, a_hi = (
        (-(1 << (a_bits - 1)), 1 << (a_bits - 1)) if widths["a_signed"] else (0, 1 << a_bits)
    )
    a = rng.integers(a_lo, a_hi, (M, K))
    a[rng.random((M, K)) < 0.2] = 0  # padding / ReLU zeros
    w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), (K, N))
    bias = rng.integers(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), N)
    return a, w, bias


def _fault_rows(rng, widths, count, rows, cols, cycles, kinds):
    """Kernel fault rows [class, row, col, cycle, mask, kind] (cycles up to past the fold)."""
    faults = np.zeros((count, FAULT_ROW_WIDTH), dtype=np.int64)
    for i in range(count):
        cls = int(rng.integers(4))
        bits = {0: widths["a_bits"], 1: widths["w_bits"], 3: widths["acc_bits"]}.get(
            cls, widths["a_bits"] + widths["w_bits"]
        )
        mask = (
            1 << int(rng.integers(bits)) if rng.random() < 0.7 else int(rng.integers(1, 1 << bits))
        )
        faults[i] = (
            cls,
            rng.integers(rows),
            rng.integers(cols),
            rng.integers(cycles + 2),
            mask,
            rng.choice(kinds),
        )
    if count > 1 and rng.random() < 0.3:
        faults[:, 3] = faults[0, 3]  # several faults in one cycle
    return faults


def _shape(widths, overflow, M, K, N):
    return GemmShape(
        layer="chain",
        op="linear",
        batch=M,
        groups=1,
        M=M,
        K=K,
        N=N,
        in_channels=K,
        in_h=1,
        in_w=1,
        out_h=1,
        out_w=1,
        kernel=(1, 1),
        stride=(1, 1),
        padding=(0, 0),
        a_bits=widths["a_bits"],
        a_signed=widths["a_signed"],
        w_bits=widths["w_bits"],
        acc_bits=widths["acc_bits"],
        overflow=overflow,
        out_bits=8,
    )


def _simulator_tile(pe, shape, chain, a, w, bias, link_faults):
    """The simulator's recompute of one faulty tile: bias, then compute_fold per k-fold."""
    psum = np.zeros((shape.M, shape.N), dtype=np.int64)
    first = chain[0]
    psum[first.m0 : first.m1, first.n0 : first.n1] = bias[first.n0 : first.n1]
    for i, fold in enumerate(chain):
        job = FoldJob(
            index=i,
            group=0,
            block=0,
            m0=fold.m0,
            m1=fold.m1,
            k0=fold.k0,
            k1=fold.k1,
            n0=fold.n0,
            n1=fold.n1,
            first_k=i == 0,
            last_k=i == len(chain) - 1,
        )
        compute_fold(pe, job, a, w, psum, link_faults[i])
    return psum[first.m0 : first.m1, first.n0 : first.n1]


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_chain_values_equal_the_simulators_fold_by_fold_recompute(dataflow, overflow):
    rng = np.random.default_rng([DATAFLOWS.index(dataflow), len(overflow)])
    multi_link = faulty_links = 0
    for case in range(60):
        rows, cols = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        M, K, N = int(rng.integers(1, 14)), int(rng.integers(1, 17)), int(rng.integers(1, 12))
        widths = _widths(rng)
        a, w, bias = _operands(rng, widths, M, K, N)
        folds = mapping.plan_folds(dataflow, M, K, N, rows, cols)
        tile = folds[rng.integers(len(folds))]
        chain = [
            f for f in folds if (f.m0, f.m1, f.n0, f.n1) == (tile.m0, tile.m1, tile.n0, tile.n1)
        ]
        kinds = [0] if case % 2 else [0, 0, 1, 2]  # flips only takes the reached-slot path
        link_faults, chain_rows = [], []
        for i, fold in enumerate(chain):
            mt, kt, nt = fold.m1 - fold.m0, fold.k1 - fold.k0, fold.n1 - fold.n0
            cycles = mapping.fold_cycles(Dataflow.of(dataflow), mt, kt, nt, rows)
            count = int(rng.choice([0, 1, 1, 2, 3]))
            faults = _fault_rows(rng, widths, count, rows, cols, cycles, kinds)
            link_faults.append(faults)
            chain_rows.append(np.column_stack([np.full(count, i, dtype=np.int64), faults]))
            faulty_links += count > 0
        multi_link += sum(len(f) > 0 for f in link_faults) > 1
        chain_faults = np.ascontiguousarray(np.concatenate(chain_rows))
        rng.shuffle(chain_faults)  # rows of one link keep no particular place among the others
        for i in range(len(chain)):  # ... but their order within a link is the plan order
            chain_faults[chain_faults[:, 0] == i, 1:] = link_faults[i]
        k_bounds = np.array([[f.k0, f.k1] for f in chain], dtype=np.int64).reshape(-1, 2)
        shape = _shape(widths, overflow, M, K, N)
        pe = _spec(dataflow, rows, cols, widths, overflow)
        expected = _simulator_tile(pe, shape, chain, a, w, bias, link_faults)
        got = kernels.chain_values(
            pe,
            a,
            w,
            bias,
            tile.m0,
            tile.m1,
            tile.n0,
            tile.n1,
            k_bounds,
            chain_faults,
        )
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")
    # the sweep exercises chains with faults (os folds take all of K: one-link chains)
    assert faulty_links > 40 and (multi_link > 3 or dataflow == "os")


def test_chain_without_faults_is_the_overflow_gemm_from_the_bias():
    rng = np.random.default_rng(3)
    a, w, bias = (
        rng.integers(-8, 8, (9, 10)),
        rng.integers(-8, 8, (10, 7)),
        rng.integers(-50, 50, 7),
    )
    k_bounds = np.array([[0, 4], [4, 8], [8, 10]], dtype=np.int64)
    for overflow in (0, 1):
        pe = PESpec(Dataflow.OS, 4, 4, 4, True, 4, 9, overflow)
        got = kernels.chain_values(
            pe,
            a,
            w,
            bias,
            2,
            6,
            3,
            7,
            k_bounds,
            np.zeros((0, CHAIN_ROW_WIDTH), dtype=np.int64),
        )
        expected = kernels.run_gemm(a[2:6], w[:, 3:7], bias[3:7], acc_bits=9, overflow=overflow)
        np.testing.assert_array_equal(got, expected)


def test_chain_values_rejects_faults_outside_the_array_or_the_chain():
    a, w, bias = np.ones((4, 4), np.int64), np.ones((4, 4), np.int64), np.zeros(4, np.int64)
    k_bounds = np.array([[0, 2], [2, 4]], dtype=np.int64)

    def run(fault, bounds=k_bounds, tile=(0, 4, 0, 2)):
        faults = np.array([fault], dtype=np.int64)
        pe = PESpec(Dataflow.WS, 2, 2, 8, True, 8, 32, 0)
        return kernels.chain_values(pe, a, w, bias, *tile, bounds, faults)

    run([1, 0, 1, 1, 0, 1, 0])  # a valid fault
    for bad in (
        [2, 0, 0, 0, 0, 1, 0],
        [-1, 0, 0, 0, 0, 1, 0],
        [0, 4, 0, 0, 0, 1, 0],
        [0, 0, 2, 0, 0, 1, 0],
        [0, 0, 0, -1, 0, 1, 0],
        [0, 0, 0, 0, -1, 1, 0],
        [0, 0, 0, 0, 0, 1, 3],
    ):
        with pytest.raises(ValueError):
            run(bad)
    with pytest.raises(ValueError):
        run([0, 0, 0, 0, 0, 1, 0], bounds=np.array([[0, 5]], dtype=np.int64))
    with pytest.raises(ValueError):
        run([0, 0, 0, 0, 0, 1, 0], tile=(0, 5, 0, 2))


def test_fold_values_equal_run_fold_and_the_reference_model():
    rng = np.random.default_rng(11)
    for case in range(300):
        dataflow = DATAFLOWS[case % 3]
        rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        free = int(rng.integers(1, 7))
        a_ext, b_ext = int(rng.integers(1, rows + 1)), int(rng.integers(1, cols + 1))
        mt, kt, nt = dataflow_spec(dataflow).gemm_dims(a_ext, b_ext, free)
        widths = _widths(rng)
        overflow = ("wrap", "saturate")[case % 2]
        a, w, bias = _operands(rng, widths, mt, kt, nt)
        acc_half = 1 << (widths["acc_bits"] - 1)
        psum = rng.integers(-acc_half, acc_half, (mt, nt))
        cycles = mapping.fold_cycles(Dataflow.of(dataflow), mt, kt, nt, rows)
        kinds = [0] if case % 4 < 2 else [0, 1, 2]
        faults = _fault_rows(rng, widths, int(rng.integers(0, 4)), rows, cols, cycles, kinds)
        pe = _spec(dataflow, rows, cols, widths, overflow)
        got = kernels.fold_values(pe.kernel, a, w, psum, faults)
        via_run_fold = kernels.run_fold(pe, a, w, psum, faults=faults)
        reference, _ = refmodel.simulate_fold(pe, a, w, psum, [tuple(f) for f in faults.tolist()])
        np.testing.assert_array_equal(got, reference, err_msg=f"case {case}")
        np.testing.assert_array_equal(via_run_fold, reference, err_msg=f"case {case}")
