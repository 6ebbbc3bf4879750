"""Example workloads, built-in models, the digits data and reproducible training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from accelsim.config import QuantizationConfig, load_workload_config
from accelsim.errors import AccelsimError
from accelsim.executor import dequantize, execute, quantize_input
from accelsim.ir import load_graph
from accelsim.quantize import quantize
from tests.helpers import assert_accuracy_close, assert_zoo_close
from workloads.data import digits_split, load_digits_test, write_digits_test

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "workloads"
YAMLS = sorted(WORKLOADS.glob("*.yaml"))


def test_all_example_yamls_are_present():
    names = {p.name for p in YAMLS}
    assert {
        "digits_cnn.yaml",
        "digits_mlp.yaml",
        "resnet18.yaml",
        "vgg16.yaml",
        "mobilenet_block.yaml",
    } <= names


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_example_yaml_validates(path):
    config = load_workload_config(path)
    if isinstance(config.model, str):
        assert (path.parent / config.model).is_file()
    if config.dataset is not None:
        assert (path.parent / config.dataset.path).is_file()


def test_digits_yaml_builds_a_workload():
    from accelsim.workload import load_workload

    workload = load_workload(WORKLOADS / "digits_cnn.yaml")
    assert workload.graph.kind == "integer" and workload.float_graph is not None
    assert workload.inputs.dtype == np.int64 and len(workload.inputs) == len(workload.labels)
    assert workload.config.accelerator.array.rows == 8


def test_digits_split_is_seeded_stratified_and_matches_the_shipped_file():
    x_train, y_train, x_test, y_test = digits_split(0)
    assert x_train.shape[1:] == (1, 8, 8) and x_train.dtype == np.float32
    assert len(x_test) == 540 and len(x_train) + len(x_test) == 1797
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0 and y_test.dtype == np.int64
    assert (
        np.abs(np.bincount(y_test) / len(y_test) - np.bincount(y_train) / len(y_train)).max() < 0.01
    )
    x_shipped, y_shipped = load_digits_test()
    np.testing.assert_array_equal(x_shipped, x_test)
    np.testing.assert_array_equal(y_shipped, y_test)
    assert not np.array_equal(digits_split(1)[3], y_test)


def test_write_digits_test_roundtrip(tmp_path):
    path = write_digits_test(tmp_path / "d.npz", seed=0)
    x, y = load_digits_test(path)
    assert x.shape == (540, 1, 8, 8) and y.shape == (540,)


def test_shipped_zoo_graphs_carry_accuracy_and_calibration():
    for name in ("digits_cnn", "digits_mlp"):
        graph = load_graph(WORKLOADS / "zoo" / f"{name}.npz")
        assert graph.kind == "float" and graph.metadata["float_test_accuracy"] > 0.95
        assert graph.metadata["calibration_samples"] == 1257
        assert all(s.calib_min is not None for s in graph.tensors.values())


torch_needed = pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="needs torch"
)


@torch_needed
@pytest.mark.parametrize("name", ["resnet18", "vgg16", "mobilenet_block"])
def test_performance_models_export_quantise_and_execute(name):
    from workloads.export import export_builtin

    graph = export_builtin(name, input_size=32, seed=0)
    ops = [n.op for n in graph.nodes]
    if name == "resnet18":
        assert ops.count("conv2d") == 20 and ops.count("add") == 8 and ops.count("linear") == 1
        assert graph.tensors[graph.output].shape == (1000,)
    elif name == "vgg16":
        assert (
            ops.count("conv2d") == 13 and ops.count("linear") == 3 and ops.count("maxpool2d") == 5
        )
    else:
        depthwise = graph.node("depthwise")
        assert depthwise.attrs["groups"] == 32 and depthwise.params["weight"].shape == (32, 1, 3, 3)
        assert graph.node("relu1").attrs == {"lo": 0.0, "hi": 6.0}
    integer = quantize(graph, QuantizationConfig())
    x = np.random.default_rng(0).normal(size=(1, *graph.tensors["input"].shape))
    got = dequantize(integer.tensors[integer.output], execute(integer, quantize_input(integer, x)))
    expected = execute(graph, x)
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.99


@torch_needed
def test_builtin_graph_cache(tmp_path):
    from workloads.export import builtin_graph_cached

    first = builtin_graph_cached("mobilenet_block", 8, 3, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and "mobilenet_block-8-s3" in files[0].name
    again = builtin_graph_cached("mobilenet_block", 8, 3, tmp_path)
    assert again.content_hash() == first.content_hash()
    files[0].write_bytes(b"damaged")  # a broken cache entry is rebuilt
    assert (
        builtin_graph_cached("mobilenet_block", 8, 3, tmp_path).content_hash()
        == first.content_hash()
    )
    other_seed = builtin_graph_cached("mobilenet_block", 8, 4, tmp_path)
    assert other_seed.content_hash() != first.content_hash()
    with pytest.raises(AccelsimError, match="multiple of 32"):
        builtin_graph_cached("resnet18", 40, 0, tmp_path)


@pytest.fixture(scope="module")
def rebuilt_zoo(tmp_path_factory):
    from workloads.train import build_zoo

    base = tmp_path_factory.mktemp("zoo")
    return build_zoo(base / "a", base / "a"), build_zoo(base / "b", base / "b")


@torch_needed
def test_training_is_bit_identical(rebuilt_zoo):
    first, second = rebuilt_zoo
    for name in ("digits_mlp", "digits_cnn"):
        assert load_graph(first[name]).content_hash() == load_graph(second[name]).content_hash()
    x_a, y_a = load_digits_test(first["digits_test"])
    x_b, y_b = load_digits_test(second["digits_test"])
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(y_a, y_b)


@torch_needed
def test_a_retrained_zoo_is_as_close_to_the_shipped_one_as_promised(rebuilt_zoo):
    first, _ = rebuilt_zoo
    for name in ("digits_mlp", "digits_cnn"):
        assert_zoo_close(WORKLOADS / "zoo" / f"{name}.npz", first[name])
    assert_accuracy_close(
        WORKLOADS / "zoo", first["digits_cnn"].parent, ("digits_mlp", "digits_cnn")
    )


# ---- the builtin-model registry (accelsim.models) ------------------------------------------


def test_shipped_provider_is_the_entry_point_pyproject_declares():
    import tomllib

    from accelsim import models

    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert table[models.ENTRY_POINT_GROUP] == models.SHIPPED_PROVIDERS


def test_every_builtin_has_a_factory_and_a_default_size():
    from accelsim.models import builtin_names
    from workloads.builtins import DEFAULT_INPUT_SIZE

    assert set(DEFAULT_INPUT_SIZE) <= set(builtin_names())
    if importlib.util.find_spec("torch") is not None:
        from workloads.models import BUILTIN_MODELS

        assert list(BUILTIN_MODELS) == list(DEFAULT_INPUT_SIZE)


def test_a_provider_registered_in_code_serves_load_workload(tmp_path, monkeypatch):
    """A script adds its own model; the workload file names it like a builtin."""
    from accelsim import load_workload, models

    monkeypatch.setattr(models, "_providers", dict(models.model_providers()))
    calls = []

    def build(name, *, input_size, seed, cache_dir):
        calls.append((name, input_size, seed, Path(cache_dir)))
        return load_graph(WORKLOADS / "zoo" / "digits_mlp.npz")

    models.register_model_provider("mine", models.ModelProvider(names=("tiny",), build=build))
    (tmp_path / "w.yaml").write_text("model: {builtin: tiny, seed: 2}\nbatch: 1\n")
    monkeypatch.setenv("ACCELSIM_CACHE_DIR", str(tmp_path / "cache"))  # never beside the yaml
    workload = load_workload(tmp_path / "w.yaml")
    assert calls == [("tiny", None, 2, tmp_path / "cache" / "models")]
    assert workload.graph.kind == "integer" and workload.float_graph is not None
    with pytest.raises(AccelsimError, match="unknown builtin model 'nope'") as info:
        models.builtin_graph("nope", cache_dir=tmp_path)
    assert "tiny" in str(info.value.allowed) and "resnet18" in str(info.value.allowed)


def test_unknown_builtin_in_a_workload_file_lists_the_providers_names(tmp_path):
    (tmp_path / "w.yaml").write_text("model: {builtin: alexnet}\n")
    with pytest.raises(AccelsimError) as info:
        load_workload_config(tmp_path / "w.yaml")
    text = str(info.value)
    assert "model.builtin" in text and "'alexnet' is not allowed" in text and "vgg16" in text


def test_a_broken_provider_is_named(monkeypatch):
    from importlib import metadata

    from accelsim import models

    monkeypatch.setattr(models, "_providers", {})
    monkeypatch.setattr(models, "_discovered", False)
    broken = metadata.EntryPoint(name="broken", value="no_such_module:f", group="accelsim.models")
    monkeypatch.setattr(models.metadata, "entry_points", lambda group: [broken])
    with pytest.raises(AccelsimError, match="model provider 'broken'"):
        models.builtin_names()
