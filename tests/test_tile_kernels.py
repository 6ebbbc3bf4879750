"""Every faulty tile of a layer in one Numba call == chain_values tile by tile, bit for bit.

``faults.tile_kernels.recompute_tile_groups`` computes a ws tile with one transient flip under
wrapping accumulation without emulating the fold (the flip adds a delta to the psums it
reaches); every other group goes through ``accelsim.kernels.chain_values``, the emulating
kernel proven equal to the register-level reference model. Here each single flip of every
register class, at every cycle of its fold, on every PE of the array (idle rows and columns
included), with narrow accumulators that wrap, is checked against ``chain_values``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim import load_workload
from accelsim.codes import FAULT_ROW_WIDTH, FLIP, REGISTER_CLASSES, STUCK1
from accelsim.intmath import requantize_array
from accelsim.kernels import chain_values
from accelsim.mapping import fold_cycles
from faults.campaign import CampaignSettings, prepare
from faults.inject import requantization
from faults.tile_kernels import independent_ws_flips, recompute_tile_groups

ROOT = Path(__file__).resolve().parents[1]


def expected_tile(golden, node, sample, t, rows):
    """The tile's requantised values by chain_values (the emulating kernel)."""
    ops = golden.operands(node, sample)
    folds = golden.folds(node.name)
    g, m0, m1, n0, n1 = folds.tiles[t].tolist()
    psum = chain_values(
        golden.pe(node.name),
        ops.a[g],
        ops.w[g],
        ops.bias[g],
        m0,
        m1,
        n0,
        n1,
        folds.chains[t],
        rows,
    )
    multiplier, shift, requant = requantization(node)
    n = golden.schedules[node.name].shape.N
    channel = slice(g * n + n0, g * n + n1)
    return requantize_array(psum, multiplier[channel], shift[channel], *requant)


def got_tile(golden, node, sample, t, rows):
    single = golden.schedules[node.name].shape
    folds = golden.folds(node.name)
    w, bias = golden.stacked_weights(node)
    bounds, offsets = golden.chain_table(node.name)
    multiplier, shift, requant = requantization(node)
    out = golden.tensor(node.output, sample).reshape(1, -1).copy()
    recompute_tile_groups(
        golden.pe(node.name).kernel,
        golden.stacked_inputs(node),
        w,
        bias,
        single.M,
        single.N,
        folds.tiles,
        bounds,
        offsets,
        np.array([0]),
        np.array([sample]),
        np.array([t]),
        np.array([0]),
        np.array([len(rows)]),
        rows,
        multiplier.astype(np.int64),
        shift.astype(np.int64),
        *requant,
        out,
    )
    g, m0, m1, n0, n1 = folds.tiles[t].tolist()
    channels = np.arange(g * single.N + n0, g * single.N + n1)
    return out.reshape(-1, single.M)[channels][:, m0:m1].T


@pytest.mark.parametrize(
    ("rows", "cols", "acc_bits"), [(8, 8, 32), (4, 4, 18), (16, 8, 16), (8, 4, 20)]
)
def test_single_flips_everywhere_equal_chain_values(rows, cols, acc_bits):
    workload = load_workload(
        ROOT / "workloads" / "digits_cnn.yaml",
        [
            "dataset.samples=3",
            f"accelerator.array.rows={rows}",
            f"accelerator.array.cols={cols}",
            f"quantization.acc_bits={acc_bits}",
        ],
    )
    golden = prepare(workload, CampaignSettings(mode="single")).golden
    rng = np.random.default_rng(rows * cols + acc_bits)
    widths = {"input": 8, "weight": 8, "product": 16, "accumulator": acc_bits}
    checked = changed = 0
    for node in workload.graph.layers():
        folds = golden.folds(node.name)
        sched = golden.schedules[node.name]
        for fold in rng.choice(len(sched.folds), size=min(6, len(sched.folds)), replace=False):
            f = sched.folds[int(fold)]
            cycles = fold_cycles(0, f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0, rows)
            for register, name in enumerate(REGISTER_CLASSES):
                for _ in range(12):
                    row = np.zeros((1, FAULT_ROW_WIDTH + 1), dtype=np.int64)
                    row[0] = [
                        folds.position[fold],
                        register,
                        rng.integers(rows),
                        rng.integers(cols),
                        rng.integers(cycles + 2),
                        1 << int(rng.integers(widths[name])),
                        FLIP,
                    ]
                    sample = int(rng.integers(3))
                    t = int(folds.tile[fold])
                    want = expected_tile(golden, node, sample, t, row)
                    got = got_tile(golden, node, sample, t, row)
                    np.testing.assert_array_equal(got, want)
                    checked += 1
                    golden_tile = got_tile(golden, node, sample, t, row[:0])
                    changed += not np.array_equal(want, golden_tile)
    assert checked > 500 and changed > 50  # most flips hit something


def test_groups_the_fast_case_does_not_cover_still_go_through_chain_values():
    workload = load_workload(ROOT / "workloads" / "digits_cnn.yaml", ["dataset.samples=2"])
    golden = prepare(workload, CampaignSettings(mode="single")).golden
    node = workload.graph.layers()[1]
    rows = np.array(
        [[0, 3, 2, 1, 9, 1 << 30, FLIP], [0, 0, 1, 0, 4, 1 << 7, FLIP], [1, 1, 0, 2, 5, 2, STUCK1]]
    )
    for chosen in (rows[:2], rows[2:], rows):  # two flips; a stuck-at; all three
        np.testing.assert_array_equal(
            got_tile(golden, node, 1, 0, chosen), expected_tile(golden, node, 1, 0, chosen)
        )


@pytest.mark.parametrize(("rows", "acc_bits"), [(8, 32), (4, 18), (16, 16)])
def test_several_flips_in_a_tile_equal_chain_values(rows, acc_bits):
    """2-4 flips in one tile, across its links: computed as independent deltas where they
    reach disjoint outputs, emulated where they may meet — equal to chain_values either way."""
    workload = load_workload(
        ROOT / "workloads" / "digits_cnn.yaml",
        [
            "dataset.samples=2",
            f"accelerator.array.rows={rows}",
            "accelerator.array.cols=4",
            f"quantization.acc_bits={acc_bits}",
        ],
    )
    golden = prepare(workload, CampaignSettings(mode="single")).golden
    rng = np.random.default_rng(rows + acc_bits)
    widths = {"input": 8, "weight": 8, "product": 16, "accumulator": acc_bits}
    independent = dependent = 0
    for node in workload.graph.layers():
        folds = golden.folds(node.name)
        sched = golden.schedules[node.name]
        pe = golden.pe(node.name).kernel
        for _ in range(60):
            t = int(rng.integers(len(folds.tiles)))
            in_tile = np.flatnonzero(folds.tile == t)
            faults = []
            for fold in rng.choice(in_tile, size=int(rng.integers(2, 5))):
                f = sched.folds[int(fold)]
                cycles = fold_cycles(0, f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0, rows)
                register = int(rng.integers(len(REGISTER_CLASSES)))
                bit = int(rng.integers(widths[REGISTER_CLASSES[register]]))
                faults.append(
                    [
                        folds.position[fold],
                        register,
                        rng.integers(rows),
                        rng.integers(4),
                        rng.integers(cycles),
                        1 << bit,
                        FLIP,
                    ]
                )
            faults = np.array(faults, dtype=np.int64)
            faults = faults[np.argsort(faults[:, 0], kind="stable")]
            g, m0, m1, n0, n1 = folds.tiles[t].tolist()
            chain = folds.chains[t]
            if independent_ws_flips(pe, m1 - m0, n1 - n0, chain, faults):
                independent += 1
            else:
                dependent += 1
            sample = int(rng.integers(2))
            np.testing.assert_array_equal(
                got_tile(golden, node, sample, t, faults),
                expected_tile(golden, node, sample, t, faults),
            )
    assert independent > 30 and dependent > 5  # both ways were taken
