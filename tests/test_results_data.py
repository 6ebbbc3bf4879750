"""SimResult as data: schema version, flat per-layer records, CSV round trip, pandas."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from accelsim.config import parse_workload
from accelsim.ir import save_graph
from accelsim.jsonio import write_json_atomic
from accelsim.results import RESULT_SCHEMA_VERSION, layer_records
from accelsim.simulation import simulate
from accelsim.workload import build_workload
from tests.conftest import tiny_integer_graph


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("results")
    save_graph(tiny_integer_graph(), tmp_path / "tiny.npz")
    raw = {"name": "tiny", "model": "tiny.npz", "batch": 2, "seed": 3}
    workload = build_workload(parse_workload(raw), base_dir=tmp_path, source=tmp_path / "w.yaml")
    return simulate(workload)


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def test_result_json_has_a_schema_version_and_energy_named_per_batch_and_inference(result):
    doc = result.to_dict()
    assert doc["schema_version"] == RESULT_SCHEMA_VERSION == 2
    totals = doc["totals"]
    assert totals["energy_pj_per_batch"] == totals["energy_pj"] == sum(doc["energy_pj"].values())
    assert totals["energy_pj_per_inference"] == pytest.approx(totals["energy_pj"] / 2)


def test_records_are_flat_one_per_layer(result):
    records = result.to_records()
    assert [r["name"] for r in records] == [layer.name for layer in result.layers]
    for record, layer in zip(records, result.layers):
        assert all(isinstance(v, str | int | float) for v in record.values()), record
        assert record["workload"] == "tiny" and record["batch"] == 2
        for buffer, value in layer.sram_reads_bytes.items():
            assert record[f"sram_reads_bytes.{buffer}"] == value
        assert record["energy_pj"] == layer.energy_pj


def test_result_json_layer_rows_round_trip_through_csv(result, tmp_path):
    json_path = tmp_path / "result.json"
    write_json_atomic(json_path, result.to_dict())
    rows = layer_records(json.loads(json_path.read_text()))
    csv_path = result.to_csv(tmp_path / "layers.csv")
    with open(csv_path, newline="", encoding="utf-8") as f:
        back = [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(f)]
    assert back == rows
    assert rows == result.to_records()


def test_to_dataframe_without_pandas_names_the_install_command(result, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        result.to_dataframe()


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="needs pandas")
def test_to_dataframe_has_one_row_per_layer(result):
    frame = result.to_dataframe()
    assert list(frame["name"]) == [layer.name for layer in result.layers]


def test_csv_path_is_returned(result, tmp_path):
    assert result.to_csv(tmp_path / "x.csv") == Path(tmp_path / "x.csv")


def test_csv_from_columns_is_the_csv_modules_text_byte_for_byte(tmp_path):
    """write_columns_csv (numpy columns, one compiled pass) against write_records_csv (the
    csv module, row by row) on every kind of cell: integers at both int64 extremes, floats
    (repr), bools, None, labels that need quoting, gaps."""
    import numpy as np

    from accelsim.results import (
        Categorical,
        Nullable,
        records_from_columns,
        write_columns_csv,
        write_records_csv,
    )

    rng = np.random.default_rng(7)
    n = 300
    ints = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    ints[:4] = [0, -1, -(2**63), 2**63 - 1]
    columns = {
        "small": np.arange(n) - 150,
        "huge": ints,
        "flag": rng.random(n) < 0.5,
        "rmse": np.where(rng.random(n) < 0.6, 0.0, rng.standard_normal(n) * 1e-3),
        "big": rng.standard_normal(n) * 1e300,
        "label": Categorical(rng.integers(0, 5, n), ("a,b", None, True, 'say "hi"', "line\nbreak")),
        "gap": Nullable(rng.integers(0, 10**6, n), rng.random(n) < 0.3),
    }
    write_columns_csv(columns, tmp_path / "columns.csv")
    write_records_csv(records_from_columns(columns), tmp_path / "records.csv")
    assert (tmp_path / "columns.csv").read_bytes() == (tmp_path / "records.csv").read_bytes()
    with open(tmp_path / "columns.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == n + 1 and int(rows[3][1]) == -(2**63)
    empty = {"a": np.zeros(0, dtype=np.int64), "b": Categorical(np.zeros(0, int), ("x",))}
    write_columns_csv(empty, tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text() == "a,b\n"
