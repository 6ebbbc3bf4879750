"""The graph file format: save -> load is the identity; every damaged file is a clear error."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.executor import execute
from accelsim.ir import GRAPH_KEY, load_graph, save_graph
from tests.conftest import tiny_integer_graph


def test_save_load_is_identity(tmp_path, tiny_graph):
    path = tmp_path / "g.npz"
    save_graph(tiny_graph, path)
    loaded = load_graph(path)
    assert loaded.content_hash() == tiny_graph.content_hash()
    assert loaded.nodes == tiny_graph.nodes
    assert loaded.tensors == tiny_graph.tensors
    x = np.random.default_rng(1).integers(0, 256, (2, 2, 6, 6))
    np.testing.assert_array_equal(execute(loaded, x), execute(tiny_graph, x))


def test_files_hold_no_pickle(tmp_path, tiny_graph):
    path = tmp_path / "g.npz"
    save_graph(tiny_graph, path)
    with np.load(path, allow_pickle=False) as data:  # would raise on any object array
        assert GRAPH_KEY in data.files
        assert all(data[k].dtype != object for k in data.files)


def test_content_hash_tracks_weights(tiny_graph):
    other = tiny_integer_graph(seed=1)
    assert other.content_hash() != tiny_graph.content_hash()


def _rewrite_header(src, dst, edit):
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(bytes(arrays[GRAPH_KEY]).decode())
    edit(header)
    arrays[GRAPH_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)


@pytest.mark.parametrize(
    ("edit", "key_fragment", "message_fragment"),
    [
        (lambda h: h["nodes"][0].update(op="gelu"), "nodes[0]", "gelu"),
        (lambda h: h.update(version=99), "version", "99"),
        (lambda h: h["tensors"][1].update(shape=[4, 5, 5]), "", "shape"),
        (lambda h: h["nodes"][4]["attrs"].update(overflow="clip"), "overflow", "clip"),
        (lambda h: h["nodes"][0]["attrs"].update(stride=[0, 1]), "stride", ""),
    ],
    ids=["unknown-op", "version", "tensor-shape", "overflow-rule", "stride"],
)
def test_damaged_header_is_a_clear_error(
    tmp_path, tiny_graph, edit, key_fragment, message_fragment
):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    save_graph(tiny_graph, good)
    _rewrite_header(good, bad, edit)
    with pytest.raises(AccelsimError) as info:
        load_graph(bad)
    text = str(info.value)
    assert str(bad) in text
    assert key_fragment in text
    assert message_fragment in text


def test_wrong_parameter_shape_is_named(tmp_path, tiny_graph):
    path = tmp_path / "g.npz"
    save_graph(tiny_graph, path)
    with np.load(path, allow_pickle=False) as data:
        np_arrays = {k: data[k] for k in data.files}
    np_arrays["conv1/weight"] = np_arrays["conv1/weight"][:, :1]
    np.savez(path, **np_arrays)
    with pytest.raises(AccelsimError, match=r"nodes\[0\]\.params\.weight"):
        load_graph(path)


def test_truncated_file(tmp_path, tiny_graph):
    path = tmp_path / "g.npz"
    save_graph(tiny_graph, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AccelsimError, match=str(path)):
        load_graph(path)


def test_corrupted_bytes(tmp_path, tiny_graph):
    path = tmp_path / "g.npz"
    save_graph(tiny_graph, path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(AccelsimError):
        load_graph(path)


def test_not_a_graph_file(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(AccelsimError, match=GRAPH_KEY):
        load_graph(path)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(AccelsimError):
        load_graph(text)


def test_object_arrays_are_refused(tmp_path, tiny_graph):
    path = tmp_path / "g.npz"
    save_graph(tiny_graph, path)
    with zipfile.ZipFile(path, "a") as archive, archive.open("evil.npy", "w") as f:
        np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AccelsimError):
        load_graph(path)


# ---- the op registry (accelsim.ops) --------------------------------------------------------


def test_every_op_has_an_executor_per_kind_and_float_ops_a_quantisation_rule():
    import accelsim.quantize  # noqa: F401  (attaches the quantisation rules)
    from accelsim.ops import OP_SPECS

    for name, spec in OP_SPECS.items():
        assert set(spec.run) == set(spec.kinds()), name
        assert (spec.quantise is not None) == (spec.float is not None), name


def test_a_new_op_is_one_registry_entry_plus_its_functions(tmp_path, monkeypatch):
    """An op added at run time validates, executes, saves and loads with no other change."""
    from accelsim import ops

    spec = ops.OpSpec(
        "negate",
        lambda node, shapes: shapes[0],
        integer=ops.OpRules({"offset": ops._any_int}),
        float=ops.OpRules({"offset": ops._number}),
        optional_attrs={"offset": 0},
        value_preserving=False,
    )
    monkeypatch.setitem(ops.OP_SPECS, "negate", spec)
    ops.implements("integer", "negate")(lambda graph, node, inputs: -inputs[0])
    graph = tiny_integer_graph()
    flat = graph.node("flat")
    graph.tensors["n1"] = graph.tensors["f1"].__class__("n1", (36,), 9, True, 0.05)
    graph.nodes.insert(graph.nodes.index(flat) + 1, type(flat)("negate", "neg", ["f1"], "n1"))
    graph.node("fc").inputs = ["n1"]
    save_graph(graph, tmp_path / "g.npz")
    loaded = load_graph(tmp_path / "g.npz")
    x = np.random.default_rng(0).integers(0, 256, (2, 2, 6, 6))
    values = execute(loaded, x, keep_all=True)
    np.testing.assert_array_equal(values["n1"], -values["f1"])
    loaded.node("neg").attrs["offset"] = "x"
    with pytest.raises(AccelsimError, match=r"nodes\[4\]\.attrs\.offset"):
        save_graph(loaded, tmp_path / "bad.npz")
    monkeypatch.delitem(ops.OP_SPECS, "negate")
    with pytest.raises(AccelsimError, match="unknown op 'negate'"):
        load_graph(tmp_path / "g.npz")
