"""Quantised integer graphs cached per quantization_key: a hit is the graph quantize() returns,
stored narrowed (int8 weights at a byte each), and a damaged or unwritable cache costs time."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import accelsim.quantize
from accelsim.caches import CACHE_ENV, UserCache
from accelsim.config import QuantizationConfig
from accelsim.errors import AccelsimError
from accelsim.ir import NARROW_FORMAT, load_graph, save_graph
from accelsim.quantize import quantization_key, quantize, quantize_cached

ROOT = Path(__file__).resolve().parents[1]
DIGITS_CNN = ROOT / "workloads" / "zoo" / "digits_cnn.npz"


@pytest.fixture(scope="module")
def float_graph():
    return load_graph(DIGITS_CNN)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz"))


def assert_same_graph(got, want) -> None:
    """Every part quantize() sets, not only the hash: nodes, params (int64), tensors, metadata."""
    assert got.content_hash() == want.content_hash()
    assert (got.kind, got.name, got.input, got.output) == (
        want.kind,
        want.name,
        want.input,
        want.output,
    )
    assert got.tensors == want.tensors
    assert got.metadata == want.metadata
    assert [n.name for n in got.nodes] == [n.name for n in want.nodes]
    for mine, theirs in zip(got.nodes, want.nodes, strict=True):
        assert mine == theirs  # op, inputs, output, attrs, params (dtype, shape, values)
        for name, value in mine.params.items():
            assert value.dtype == np.int64 and np.array_equal(value, theirs.params[name])


# ---- the narrowed file format ----------------------------------------------------------------


def test_a_narrowed_file_stores_small_dtypes_and_loads_as_the_same_graph(tiny_graph, tmp_path):
    path = tmp_path / "narrow.npz"
    save_graph(tiny_graph, path, narrow=True)
    with np.load(path, allow_pickle=False) as npz:
        dtypes = {name: npz[name].dtype for name in npz.files if name != "__graph__"}
    assert dtypes["conv1/weight"] == np.int8  # values in [-127, 127]
    assert dtypes["conv1/bias"] == np.int16  # [-500, 500]
    assert dtypes["conv1/multiplier"] in (np.int32, np.int64)
    assert_same_graph(load_graph(path, narrow=True), tiny_graph)


def test_a_narrowed_file_is_refused_as_a_graph_file_and_vice_versa(tiny_graph, tmp_path):
    narrow, plain = tmp_path / "narrow.npz", tmp_path / "plain.npz"
    save_graph(tiny_graph, narrow, narrow=True)
    save_graph(tiny_graph, plain)
    with pytest.raises(AccelsimError, match="quantised-graph cache") as err:
        load_graph(narrow)
    assert err.value.key == "format" and NARROW_FORMAT in str(err.value)
    with pytest.raises(AccelsimError, match="a graph file, not a narrowed cache entry"):
        load_graph(plain, narrow=True)


def test_a_narrowed_file_with_a_float_array_is_refused(tiny_graph, tmp_path):
    path = tmp_path / "narrow.npz"
    save_graph(tiny_graph, path, narrow=True)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["conv1/bias"] = arrays["conv1/bias"].astype(np.float32)
    np.savez(path, **arrays)
    with pytest.raises(AccelsimError, match="float32") as err:
        load_graph(path, narrow=True)
    assert err.value.key == "nodes[0].params.bias"


def test_only_integer_graphs_are_stored_narrowed(float_graph, tmp_path):
    with pytest.raises(ValueError, match="integer graphs"):
        save_graph(float_graph, tmp_path / "f.npz", narrow=True)


# ---- the cache -----------------------------------------------------------------------------


def test_a_hit_is_the_graph_quantize_returns(float_graph, tmp_path):
    settings = QuantizationConfig(weight_bits=6, reserved_msbs=1)
    want = quantize(float_graph, settings)
    miss = quantize_cached(float_graph, settings, cache_dir=tmp_path)
    (entry,) = _entries(tmp_path)
    assert entry.name == f"{quantization_key(float_graph, settings)}.npz"
    hit = quantize_cached(float_graph, settings, cache_dir=tmp_path)
    assert_same_graph(miss, want)
    assert_same_graph(hit, want)
    assert entry.stat().st_size < 0.5 * _plain_size(want, tmp_path / "plain")


def _plain_size(graph, folder: Path) -> int:
    save_graph(graph, folder / "g.npz")
    return (folder / "g.npz").stat().st_size


def test_different_settings_are_different_entries(float_graph, tmp_path):
    four = quantize_cached(float_graph, QuantizationConfig(weight_bits=4), cache_dir=tmp_path)
    eight = quantize_cached(float_graph, QuantizationConfig(weight_bits=8), cache_dir=tmp_path)
    assert len(_entries(tmp_path)) == 2
    assert four.content_hash() != eight.content_hash()
    assert four.metadata["quantization"]["weight_bits"] == 4


def test_the_float_graph_is_hashed_once(float_graph, tmp_path, monkeypatch):
    calls = []
    real = type(float_graph).content_hash

    def counted(graph):
        calls.append(graph.kind)
        return real(graph)

    monkeypatch.setattr(type(float_graph), "content_hash", counted)
    quantize_cached(float_graph, QuantizationConfig(), cache_dir=tmp_path)  # a miss
    assert calls.count("float") == 1


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _plain_graph_file(path: Path) -> None:  # a normal graph file under the entry's name
    save_graph(load_graph(path, narrow=True), path)


def _another_key(path: Path) -> None:  # a valid entry, but of other settings
    other = quantize(load_graph(DIGITS_CNN), QuantizationConfig(weight_bits=4))
    save_graph(other, path, narrow=True)


def _empty_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w"):
        pass


@pytest.mark.parametrize(
    "damage", [_truncate, _garbage, _plain_graph_file, _another_key, _empty_zip]
)
def test_a_damaged_entry_is_rebuilt_silently(float_graph, tmp_path, capfd, damage):
    settings = QuantizationConfig()
    want = quantize_cached(float_graph, settings, cache_dir=tmp_path)
    (entry,) = _entries(tmp_path)
    damage(entry)
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = quantize_cached(float_graph, settings, cache_dir=tmp_path)
    assert capfd.readouterr() == ("", "")  # no traceback, no message
    assert_same_graph(got, want)
    assert_same_graph(load_graph(entry, narrow=True), want)  # and the entry is whole again


def test_a_cache_that_cannot_be_written_only_warns(float_graph, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # a file where the folder would go: mkdir fails whoever we are
    with pytest.warns(RuntimeWarning, match="not cached"):
        graph = quantize_cached(float_graph, QuantizationConfig(), cache_dir=blocked / "quantized")
    assert_same_graph(graph, quantize(float_graph, QuantizationConfig()))


def test_bad_settings_are_still_reported_with_the_workload_file(float_graph, tmp_path):
    settings = QuantizationConfig.model_validate({"per_layer": {"nope": {"weight_bits": 4}}})
    with pytest.raises(AccelsimError, match="no layer named 'nope'") as err:
        quantize_cached(float_graph, settings, source="w.yaml", cache_dir=tmp_path)
    assert err.value.file == "w.yaml" and not _entries(tmp_path)


def test_the_second_load_of_a_workload_does_not_quantise(tmp_path, monkeypatch):
    from accelsim import load_workload

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(accelsim.quantize, "QUANTIZED_CACHE", UserCache("quantized"))
    yaml = tmp_path / "w.yaml"
    yaml.write_text(f"model: {DIGITS_CNN.as_posix()}\nbatch: 2\nquantization: {{weight_bits: 6}}\n")
    first = load_workload(yaml)
    assert len(_entries(tmp_path / "cache" / "quantized")) == 1

    def no_quantiser(*args, **kwargs):
        raise AssertionError("quantize() called on a cache hit")

    monkeypatch.setattr(accelsim.quantize, "quantize", no_quantiser)
    again = load_workload(yaml)
    assert_same_graph(again.graph, first.graph)
    assert again.float_graph is not None and again.float_graph.kind == "float"
    np.testing.assert_array_equal(again.inputs, first.inputs)


def test_the_optimizer_hashes_its_float_graph_once_and_requantises_from_the_cache(
    tmp_path, monkeypatch
):
    from accelsim import load_workload
    from optimizer.config import parse_optimize
    from optimizer.evaluate import DesignEvaluator

    monkeypatch.setattr(accelsim.quantize, "QUANTIZED_CACHE", tmp_path)
    workload = load_workload(ROOT / "workloads" / "digits_optimize.yaml", ["faults.rate=0"])
    section = {"variables": {"array_rows": [4, 8], "weight_bits": [6, 8]}, "constraints": {}}
    opt = parse_optimize(section, workload=workload.config, file="test.yaml")
    designs = DesignEvaluator(workload, opt).designs
    hashed = []
    real = type(workload.float_graph).content_hash
    monkeypatch.setattr(
        type(workload.float_graph),
        "content_hash",
        lambda graph: hashed.append(graph is workload.float_graph) or real(graph),
    )
    keys = {designs._quantisation_key(designs.base_config(d)) for d in _designs()}
    assert len(keys) == 2 and hashed.count(True) == 1  # four designs, two quantisations

    quantised = designs.quantised(designs.base_config({"array_rows": 4, "weight_bits": 6}))
    assert len(_entries(tmp_path)) == 2  # the workload's own 8 bits, and 6 bits
    want = quantize(workload.float_graph, quantised.config.quantization)
    assert_same_graph(quantised.graph, want)


def _designs() -> list[dict]:
    return [{"array_rows": r, "weight_bits": b} for r in (4, 8) for b in (6, 8)]


def test_the_cache_keeps_within_its_limit_evicting_the_least_recently_used(
    float_graph, tmp_path, monkeypatch
):
    """Bit-width sweeps write one entry per combination: beyond the folder's limit the least
    recently used go (a hit counts as a use), never the entry just written."""
    import os

    def entry(bits: int) -> Path:
        key = quantization_key(float_graph, QuantizationConfig(weight_bits=bits))
        return tmp_path / f"{key}.npz"

    for bits in (4, 5):
        quantize_cached(float_graph, QuantizationConfig(weight_bits=bits), cache_dir=tmp_path)
    for bits, age in ((4, 300), (5, 200)):  # 4 the older of the two
        stat = entry(bits).stat()
        os.utime(entry(bits), (stat.st_atime - age, stat.st_mtime - age))
    limit = int(entry(4).stat().st_size * 2.5)  # the entries are about the same size
    monkeypatch.setattr(accelsim.quantize, "QUANTIZED_CACHE_LIMIT_BYTES", limit)
    quantize_cached(float_graph, QuantizationConfig(weight_bits=4), cache_dir=tmp_path)  # a hit
    assert entry(4).stat().st_mtime > entry(5).stat().st_mtime
    in_progress = tmp_path / ".other.npz.tmp"  # another run's atomic write, not an entry
    in_progress.write_bytes(b"x" * limit)
    quantize_cached(float_graph, QuantizationConfig(weight_bits=6), cache_dir=tmp_path)
    assert set(_entries(tmp_path)) == {entry(4), entry(6)}  # 5, least recently used, went
    assert in_progress.exists()
    assert sum(p.stat().st_size for p in _entries(tmp_path)) <= limit
