"""accelsim's SCALE-Sim timing equals the real SCALE-Sim's compute cycles.

The expected numbers come from running SCALE-Sim 3.0.0 itself (tools/scalesim_reference.py);
the tests only read the stored JSON, so they need no SCALE-Sim install.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.timing_scalesim import (
    scalesim_fold_count,
    scalesim_fold_cycles,
    scalesim_layer_cycles,
)

DATA = Path(__file__).parent / "data" / "scalesim_expected.json"
EXPECTED = json.loads(DATA.read_text())
CASES = EXPECTED["cases"]


def accelsim_folds(dataflow: str, M: int, K: int, N: int, rows: int, cols: int):
    """Our fold tiling (docs/semantics.md §3), re-derived: (Mt, Kt, Nt, first) per fold."""
    if dataflow == "ws":
        tiles = [
            (M, min(rows, K - k), min(cols, N - n))
            for k in range(0, K, rows)
            for n in range(0, N, cols)
        ]
    elif dataflow == "os":
        tiles = [
            (min(rows, M - m), K, min(cols, N - n))
            for m in range(0, M, rows)
            for n in range(0, N, cols)
        ]
    else:
        tiles = [
            (min(cols, M - m), min(rows, K - k), N)
            for k in range(0, K, rows)
            for m in range(0, M, cols)
        ]
    return [(*tile, i == 0) for i, tile in enumerate(tiles)]


def fold_sum(dataflow, M, K, N, rows, cols, groups=1) -> int:
    per_group = sum(
        scalesim_fold_cycles(dataflow, mt, kt, nt, rows, cols, first_fold=first)
        for mt, kt, nt, first in accelsim_folds(dataflow, M, K, N, rows, cols)
    )
    return groups * per_group


def test_fixture_covers_the_promised_sweep():
    conv = {c["name"] for c in CASES if c["kind"] == "conv"}
    gemm = {c["name"] for c in CASES if c["kind"] == "gemm"}
    configs = {(c["dataflow"], c["rows"], c["cols"]) for c in CASES}
    assert len(conv) >= 6 and len(gemm) >= 3
    assert any(
        (p := c["params"])["stride"] > 1 and (p["ifmap_h"] - p["filter_h"]) % p["stride"]
        for c in CASES
        if c["kind"] == "conv"
    )  # an overhanging last window is covered
    assert {df for df, _, _ in configs} == {"os", "ws", "is"}
    assert {(4, 4), (8, 8), (16, 16), (8, 16)} <= {(r, c) for _, r, c in configs}
    assert len(CASES) == len(configs) * (len(conv) + len(gemm))
    assert all(c["stall_cycles"] == 0 for c in CASES)  # CALC mode: compute only


def _case_id(case: dict) -> str:
    return f"{case['name']}-{case['dataflow']}-{case['rows']}x{case['cols']}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_layer_cycles_equal_scalesim(case):
    g = case["gemm"]
    args = (case["dataflow"], g["M"], g["K"], g["N"], case["rows"], case["cols"])
    assert scalesim_layer_cycles(*args, groups=case["groups"]) == case["total_cycles"]
    assert fold_sum(*args, groups=case["groups"]) == case["total_cycles"]


def test_conv_lowering_matches_the_stored_gemm_shapes():
    for case in CASES:
        if case["kind"] != "conv":
            continue
        p = case["params"]
        # SCALE-Sim: ceil((ifmap - filter + stride) / stride), a last window may overhang
        oh = math.ceil((p["ifmap_h"] - p["filter_h"] + p["stride"]) / p["stride"])
        ow = math.ceil((p["ifmap_w"] - p["filter_w"] + p["stride"]) / p["stride"])
        channels = 1 if case["groups"] > 1 else p["channels"]
        assert case["gemm"] == {
            "M": oh * ow,
            "K": p["filter_h"] * p["filter_w"] * channels,
            "N": p["num_filter"],
        }


def test_partial_folds_cost_a_full_fold():
    full = scalesim_fold_cycles("ws", 50, 8, 8, 8, 8)
    assert scalesim_fold_cycles("ws", 50, 1, 1, 8, 8) == full == 2 * 8 + 8 + 50 - 2
    assert scalesim_fold_cycles("os", 1, 30, 1, 8, 4) == 30 + 8 + 4 - 2
    assert scalesim_fold_cycles("is", 3, 2, 11, 4, 8, first_fold=True) == 2 * 4 + 8 + 11 - 3


def test_rejects_nonsense():
    with pytest.raises(ValueError, match="dataflow"):
        scalesim_fold_cycles("rs", 1, 1, 1, 4, 4)
    with pytest.raises(ValueError, match="rows"):
        scalesim_layer_cycles("ws", 1, 1, 1, 0, 4)


@settings(max_examples=60, deadline=None)
@given(
    dataflow=st.sampled_from(["os", "ws", "is"]),
    M=st.integers(1, 300),
    K=st.integers(1, 300),
    N=st.integers(1, 300),
    rows=st.integers(1, 33),
    cols=st.integers(1, 33),
    groups=st.integers(1, 3),
)
def test_fold_sum_is_the_layer_count(dataflow, M, K, N, rows, cols, groups):
    folds = accelsim_folds(dataflow, M, K, N, rows, cols)
    assert len(folds) == scalesim_fold_count(dataflow, M, K, N, rows, cols)
    assert fold_sum(dataflow, M, K, N, rows, cols, groups) == scalesim_layer_cycles(
        dataflow, M, K, N, rows, cols, groups=groups
    )


@pytest.mark.skipif(
    importlib.util.find_spec("accelsim.mapping") is None, reason="accelsim.mapping not written yet"
)
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_mapping_plan_folds_sum_to_scalesim(dataflow):
    from accelsim import mapping

    for case in CASES:
        if case["dataflow"] != dataflow:
            continue
        g, rows, cols = case["gemm"], case["rows"], case["cols"]
        folds = mapping.plan_folds(dataflow, g["M"], g["K"], g["N"], rows, cols)
        total = sum(
            scalesim_fold_cycles(
                dataflow,
                f.m1 - f.m0,
                f.k1 - f.k0,
                f.n1 - f.n0,
                rows,
                cols,
                first_fold=(f.m0, f.k0, f.n0) == (0, 0, 0),
            )
            for f in folds
        )
        assert case["groups"] * total == case["total_cycles"], _case_id(case)
