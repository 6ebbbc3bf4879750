"""SCALE-Sim topology CSVs -> integer graphs (accelsim/topology.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.executor import execute
from accelsim.ir import load_graph, save_graph, validate_graph
from accelsim.timing_scalesim import scalesim_layer_cycles
from accelsim.topology import load_scalesim_topology, parse_scalesim_topology

DATA = Path(__file__).parent / "data"
RESNET = DATA / "scalesim_resnet18_part.csv"
MIXED = DATA / "scalesim_mixed.csv"
GEMM = DATA / "scalesim_gemm.csv"
BITS = dict(weight_bits=8, activation_bits=8, acc_bits=32)


def load(path: Path, seed: int = 0, **bits) -> object:
    return load_scalesim_topology(path, seed=seed, **{**BITS, **bits})


def run(graph, seed: int = 1, batch: int = 2) -> dict[str, np.ndarray]:
    lo, hi = graph.tensors[graph.input].value_range()
    x = np.random.default_rng(seed).integers(
        lo, hi + 1, size=(batch, *graph.tensors[graph.input].shape)
    )
    return execute(graph, x, keep_all=True)


def scalesim_gemm(row: list[int]) -> dict[str, int]:
    """SCALE-Sim's lowering of a conv row (topology_utils.topo_calc_hyperparams)."""
    h, w, kh, kw, c, f, s = row
    oh, ow = math.ceil((h - kh + s) / s), math.ceil((w - kw + s) / s)
    return {"M": oh * ow, "K": kh * kw * c, "N": f}


def csv_rows(path: Path) -> list[tuple[str, list[int]]]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        fields = [f.strip() for f in line.split(",") if f.strip()]
        rows.append((fields[0], [int(v) for v in fields[1:8]]))
    return rows


def test_resnet_part_chains_through_pool_adapters_only():
    graph = load(RESNET)
    validate_graph(graph)
    meta = graph.metadata["scalesim"]
    assert meta["format"] == "conv" and meta["feeders"] == []
    rows = csv_rows(RESNET)
    assert [layer["name"] for layer in meta["layers"]] == [name for name, _ in rows]
    convs = [node for node in graph.nodes if node.op == "conv2d"]
    assert [node.name for node in convs] == [name for name, _ in rows]
    for (name, row), layer, node in zip(rows, meta["layers"], convs):
        h, w, kh, kw, c, f, s = row
        assert graph.tensors[node.inputs[0]].shape == (c, h, w), name
        assert node.params["weight"].shape == (f, c, kh, kw)
        assert node.attrs["stride"] == [s, s]
        ragged = [(h - kh) % s, (w - kw) % s]
        assert node.attrs["padding"] == [(s - r + 1) // 2 if r else 0 for r in ragged]
        gemm = scalesim_gemm(row)
        assert {k: layer[k] for k in "MKN"} == gemm
        assert graph.tensors[node.output].shape[0] == f
        assert np.prod(graph.tensors[node.output].shape[1:]) == gemm["M"]
    assert all(graph.node(a).op == "maxpool2d" for a in meta["adapters"])
    assert graph.output == "FC"
    values = run(graph)
    assert values["FC"].shape == (2, 10, 1, 1)


def test_schedule_sees_scalesims_gemm_shape():
    from accelsim.schedule import gemm_shape

    graph = load(RESNET)
    for layer in graph.metadata["scalesim"]["layers"]:
        shape = gemm_shape(graph, graph.node(layer["name"]), batch=1)
        assert (shape.M, shape.K, shape.N, shape.groups) == (
            layer["M"],
            layer["K"],
            layer["N"],
            layer["groups"],
        )
        assert scalesim_layer_cycles("ws", shape.M, shape.K, shape.N, 8, 8) > 0


def test_mixed_csv_feeders_depthwise_duplicates_and_syntax():
    graph = load(MIXED)
    meta = graph.metadata["scalesim"]
    names = [layer["name"] for layer in meta["layers"]]
    assert names == ["c_first", "c_newch", "DP_dw", "c_grow", "c_first_2"]
    # no earlier tensor has 5 channels; the only 12-channel one is 14 pixels too small;
    # c_first_2 reads the 4-channel output of c_grow through a crop, no feeder
    assert meta["feeders"] == ["c_newch.feed", "c_grow.feed"]
    for feeder in meta["feeders"]:
        node = graph.node(feeder)
        layer = graph.node(feeder.removesuffix(".feed"))
        assert node.op == "conv2d"
        assert graph.tensors[node.output].shape == graph.tensors[layer.inputs[0]].shape
    dw = graph.node("DP_dw")
    assert dw.attrs["groups"] == 6 and dw.params["weight"].shape == (12, 1, 3, 3)
    assert meta["layers"][2] == {"name": "DP_dw", "row": 5, "groups": 6, "M": 36, "K": 9, "N": 2}
    assert graph.tensors[graph.node("c_first_2").output].shape == (3, 4, 5)
    assert graph.node("c_first_2.pool").inputs == ["c_grow"]
    run(graph, batch=1)


def test_gemm_csv_rows_are_1x1_convolutions():
    graph = load(GEMM)
    meta = graph.metadata["scalesim"]
    assert meta["format"] == "gemm"
    expected = [("fc1", 6, 12, 20), ("fc2", 6, 20, 9), ("fc3", 4, 30, 7), ("fc4", 1, 7, 5)]
    for (name, m, k, n), layer in zip(expected, meta["layers"]):
        node = graph.node(name)
        assert node.params["weight"].shape == (n, k, 1, 1)
        assert graph.tensors[node.inputs[0]].shape == (k, m, 1)
        assert (layer["M"], layer["K"], layer["N"]) == (m, k, n)
    assert graph.node("fc2").inputs == ["fc1"]  # N of fc1 = K of fc2, same M: chained as is
    assert meta["feeders"] == ["fc3.feed"]
    assert run(graph)["fc4"].shape == (2, 5, 1, 1)


def test_seeded_and_reproducible(tmp_path):
    a, b, c = load(RESNET, seed=3), load(RESNET, seed=3), load(RESNET, seed=4)
    assert a.content_hash() == b.content_hash() != c.content_hash()
    save_graph(a, tmp_path / "g.npz")
    assert load_graph(tmp_path / "g.npz").content_hash() == a.content_hash()


@pytest.mark.parametrize(
    "bits",
    [
        dict(weight_bits=8, activation_bits=8, acc_bits=32),
        dict(weight_bits=4, activation_bits=4, acc_bits=16),
        dict(weight_bits=2, activation_bits=3, acc_bits=12),
    ],
)
def test_outputs_use_the_range_without_saturating(bits):
    graph = load(RESNET, **bits)
    values = run(graph, batch=4)
    top = (1 << bits["activation_bits"]) - 1
    for layer in graph.metadata["scalesim"]["layers"]:
        node = graph.node(layer["name"])
        assert node.attrs["w_bits"] == bits["weight_bits"]
        assert node.attrs["acc_bits"] == bits["acc_bits"]
        assert (node.attrs["out_lo"], node.attrs["out_hi"]) == (0, top)
        y = values[layer["name"]]
        inside = np.mean((y > 0) & (y < top))
        assert inside > 0.15, (layer["name"], inside)
        assert np.mean(y == top) < 0.35, layer["name"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topo.csv"
    path.write_text(text)
    return path


HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
    "Num Filter, Strides,\n"
)
GOOD = "a, 8, 8, 3, 3, 2, 4, 1,\n"


@pytest.mark.parametrize(
    "text, key",
    [
        (HEADER + GOOD + "b, 8, 8, 3, 3, 2, 4, 0,\n", "row 3, column 'Strides'"),
        (HEADER + GOOD + "b, 8, x, 3, 3, 2, 4, 1,\n", "row 3, column 'IFMAP Width'"),
        (HEADER + "b, 8, 8, 9, 3, 2, 4, 1,\n", "row 2, column 'Filter Height'"),
        (HEADER + "b, 8, 8, 3, 3, 2,\n", "row 2, column 'Num Filter'"),
        (HEADER + "b, 8, 8, 3, 3, 2, 4, 1, 2:4,\n", "row 2, column 'Sparsity'"),
        (HEADER + "b, 8, 8, 3, 3, 2, 4, 1, 1:1, 7,\n", "row 2"),
        (HEADER + ", 8, 8, 3, 3, 2, 4, 1,\n", "row 2, column 'Layer name'"),
        ("Layer, Height, Width\n" + GOOD, "row 1"),
        (HEADER, "row 2"),
        ("\n\n", "row 1"),
        ("Layer Name, M, N, K,\ng, 4, 0, 3,\n", "row 2, column 'N'"),
    ],
)
def test_bad_csv_names_file_row_and_column(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(AccelsimError) as info:
        load(path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert info.value.allowed


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(AccelsimError, match="not found"):
        parse_scalesim_topology(tmp_path / "nope.csv")


def test_trailing_comma_is_optional(tmp_path):
    with_comma = parse_scalesim_topology(write(tmp_path, HEADER + GOOD))[1]
    without = parse_scalesim_topology(write(tmp_path, HEADER + GOOD.rstrip(",\n") + "\n"))[1]
    assert with_comma == without


def reference_csvs(tmp_path: Path) -> dict[str, Path]:
    """The layers tools/scalesim_reference.py ran through SCALE-Sim, as topology CSVs."""
    cases = json.loads((DATA / "scalesim_expected.json").read_text())["cases"]
    rows: dict[str, dict[str, str]] = {"conv": {}, "gemm": {}}
    for case in cases:
        p = case["params"]
        keys = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filter", "stride")
        values = [p[k] for k in (keys if case["kind"] == "conv" else ("M", "N", "K"))]
        rows[case["kind"]][case["name"]] = ", ".join(map(str, [case["name"], *values])) + ",\n"
    header = {"conv": HEADER, "gemm": "Layer Name, M, N, K,\n"}
    paths = {}
    for kind, lines in rows.items():
        paths[kind] = tmp_path / f"{kind}.csv"
        paths[kind].write_text(header[kind] + "".join(lines.values()))
    return paths


def test_graph_folds_reproduce_real_scalesim_cycles(tmp_path):
    """CSV -> graph -> schedule folds -> timing_scalesim == SCALE-Sim 3.0.0's Total Cycles."""
    from accelsim.config import AcceleratorConfig
    from accelsim.schedule import schedule_layer
    from accelsim.timing_scalesim import scalesim_fold_cycles

    cases = json.loads((DATA / "scalesim_expected.json").read_text())["cases"]
    graphs = {kind: load(path) for kind, path in reference_csvs(tmp_path).items()}
    big = {"capacity_kib": 65536.0, "double_buffered": False}  # one m-block, as SCALE-Sim
    checked = 0
    for case in cases:
        graph = graphs[case["kind"]]
        accel = AcceleratorConfig.model_validate(
            {
                "array": {"rows": case["rows"], "cols": case["cols"], "dataflow": case["dataflow"]},
                "timing": "scalesim",
                "buffers": {"input": big, "weight": big, "output": big},
            }
        )
        sched = schedule_layer(graph, graph.node(case["name"]), accel, batch=1)
        shape = sched.shape
        expected = tuple(case["gemm"][k] for k in "MKN")
        assert expected == (shape.M, shape.K, shape.N)
        cycles = sum(
            scalesim_fold_cycles(
                case["dataflow"],
                f.m1 - f.m0,
                f.k1 - f.k0,
                f.n1 - f.n0,
                case["rows"],
                case["cols"],
                first_fold=(f.m0, f.k0, f.n0) == (0, 0, 0),
            )
            for f in sched.folds
        )
        assert cycles == case["total_cycles"], (case["name"], case["dataflow"], case["rows"])
        checked += 1
    assert checked == len(cases)
