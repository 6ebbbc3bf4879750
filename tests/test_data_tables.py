"""Data for pandas: flat tables of every output (injections, faults, designs), their rows
tied to what was injected, schema versions everywhere, JSON Schemas generated from the models
and equal to the shipped ones, real outputs valid against them, ``report`` on every folder,
and pandas round trips (skipped, with the reason, where pandas is not installed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from accelsim import app, schemas
from accelsim.cli import main
from accelsim.tables import read_records_csv
from accelsim.workload import load_workload
from faults.campaign import (
    LOG_NAME,
    CampaignSettings,
    campaign,
    draw_faults,
    injection_dicts,
    layer_names_of,
    prepare,
)
from faults.records import FAULTS_CSV, INJECTIONS_CSV
from faults.runner import TaskSpec, read_task_log
from tests.helpers import write_mlp_workload

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZE = ROOT / "workloads" / "digits_optimize.yaml"
FAST_OPTIMIZE = [
    "faults.rate=0",
    "optimize.constraints.min_reliability=null",
    "dataset.samples=16",
    "optimize.hardening=msb",
    "optimize.variables.protected_fraction=[0.0]",
]
app.build_parser()  # every CLI module registers its files' models
MODELS = dict(app.SCHEMAS)
needs_pandas = pytest.mark.skipif(
    importlib.util.find_spec("pandas") is None, reason="pandas is not installed"
)


def write_workload(folder: Path, **keys) -> Path:
    faults = {"rate": 2e-5, "injections": 24, "registers": ["weight", "accumulator"]}
    return write_mlp_workload(folder, "tables", **{"faults": faults, **keys})


@pytest.fixture(scope="module")
def inject_folder(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("inject")
    out = tmp / "run"
    assert main(["inject", str(write_workload(tmp)), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def optimize_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("optimize") / "run"
    argv = ["optimize", str(OPTIMIZE), "--budget", "3", "--method", "random", "--out", str(out)]
    for item in FAST_OPTIMIZE:
        argv += ["--set", item]
    assert main(argv) == 0
    return out


def log_records(folder: Path, ctx) -> list[dict]:
    """The resume log's injections as the per-injection dicts (merged lists)."""
    return injection_dicts(read_task_log(folder / LOG_NAME).columns, layer_names_of(ctx))


def test_every_fault_row_is_a_fault_the_injection_had(inject_folder):
    """The fault table (drawn in one batch) against two independent sources: the resume
    log's merged lists, and each injection's own draw (draw_faults)."""
    injections = read_records_csv(inject_folder / INJECTIONS_CSV)
    faults = read_records_csv(inject_folder / FAULTS_CSV)
    workload = load_workload(write_workload(inject_folder.parent))
    cfg = workload.config.faults
    ctx = prepare(workload, CampaignSettings.from_config(cfg), samples=cfg.samples)
    logged = log_records(inject_folder, ctx)
    assert [int(r["injection"]) for r in injections] == list(range(24)) == list(range(len(logged)))
    assert sum(int(r["faults"]) for r in injections) == len(faults) > 24  # several per injection
    for i, (row, log) in enumerate(zip(injections, logged, strict=True)):
        mine = [f for f in faults if int(f["injection"]) == i]
        assert int(row["sample"]) == log["sample"] and int(row["faults"]) == log["faults"]
        assert (row["sdc"] == "True") == log["top1_changed"] and len(mine) == log["faults"]
        assert sorted({f["register"] for f in mine}) == log["registers"]
        assert sorted({f["layer"] for f in mine}) == log["layers"]
        assert sorted({int(b) for f in mine for b in f["bits"].split()}) == log["bits"]
        sample, drawn = draw_faults(TaskSpec(i, cfg.seed), ctx)
        assert sample == log["sample"]
        assert [
            (f.layer, f.fold, f.register, f.row, f.col, f.cycle, f.bits, f.kind) for f in drawn
        ] == [
            (
                f["layer"],
                int(f["fold"]),
                f["register"],
                int(f["row"]),
                int(f["col"]),
                int(f["cycle"]),
                tuple(int(b) for b in f["bits"].split()),
                f["kind"],
            )
            for f in mine
        ]
        assert all(f["site"] == "pe" and f["address"] == "" for f in mine)
        assert all(int(f["bit"]) == min(int(b) for b in f["bits"].split()) for f in mine)


def test_campaign_result_rows_equal_the_files(inject_folder, tmp_path):
    workload = load_workload(write_workload(inject_folder.parent))
    result = campaign(workload, out_dir=inject_folder)  # resumed: nothing recomputed
    assert result.to_dict()["schema_version"] == 2
    injections = result.to_records()
    assert len(injections) == 24 and all(
        isinstance(v, str | int | float | bool | type(None)) for r in injections for v in r.values()
    )
    assert (
        result.to_csv(tmp_path / "i.csv").read_text()
        == (inject_folder / INJECTIONS_CSV).read_text()
    )
    assert (
        result.to_csv(tmp_path / "f.csv", "faults").read_text()
        == (inject_folder / FAULTS_CSV).read_text()
    )
    sdc = sum(r["sdc"] for r in injections) / len(injections)
    assert sdc == pytest.approx(result.summary["sdc"]["rate"])
    with pytest.raises(ValueError, match="not one of injections, faults"):
        result.to_csv(tmp_path / "x.csv", "layers")


def test_every_json_written_has_a_schema_version(inject_folder, optimize_folder):
    for path in [*inject_folder.glob("*.json"), *optimize_folder.glob("*.json")]:
        assert isinstance(json.loads(path.read_text())["schema_version"], int), path


def test_optimize_json_keeps_constraints_in_natural_units(optimize_folder):
    doc = json.loads((optimize_folder / "optimize.json").read_text())
    assert doc["schema_version"] == 2 and doc["objective_unit"] == "um2"
    limits = doc["optimize"]["constraints"]
    for evaluation in doc["search"]["evaluations"]:
        natural, metrics = evaluation["constraints_natural"], evaluation["metrics"]
        if evaluation["infeasible_reason"] is not None:
            continue
        assert natural["min_accuracy_fraction"] == limits["min_accuracy"]
        assert natural["accuracy_lo_fraction"] == metrics["accuracy_lo"]
        assert evaluation["constraints"]["accuracy"] == pytest.approx(
            limits["min_accuracy"] - natural["accuracy_lo_fraction"]
        )
        assert natural["latency_cycles"] == metrics["latency_cycles"]
        assert evaluation["constraints"]["latency"] == pytest.approx(
            natural["latency_cycles"] / natural["max_latency_cycles"] - 1
        )


def test_natural_reliability_is_the_failure_probability_not_its_log():
    from optimizer.records import natural_constraints

    evaluation = {
        "metrics": {"reliability": {"failure": 2e-4, "failure_upper": 5e-4}},
        "constraints": {"reliability": -0.301},  # log10(5e-4 / 1e-3)
    }
    natural = natural_constraints(evaluation, {"min_reliability": 0.999})
    assert natural["failure_upper_per_inference"] == 5e-4
    assert natural["max_failure_per_inference"] == pytest.approx(1e-3)
    certified = {
        "metrics": {**evaluation["metrics"], "certificate": {"upper": 8e-4, "failure": 3e-4}}
    }
    assert (
        natural_constraints(certified, {"min_reliability": 0.999})["failure_upper_per_inference"]
        == 8e-4
    )  # the certificate decides once there is one


def test_report_writes_each_folders_table(inject_folder, optimize_folder, tmp_path, capsys):
    assert main(["report", str(inject_folder), "--csv", str(tmp_path / "i.csv")]) == 0
    assert (tmp_path / "i.csv").read_text() == (inject_folder / INJECTIONS_CSV).read_text()
    assert main(["report", str(optimize_folder), "--csv", str(tmp_path / "d.csv")]) == 0
    designs = read_records_csv(tmp_path / "d.csv")
    doc = json.loads((optimize_folder / "optimize.json").read_text())
    searched = doc["search"]["evaluations"]
    assert [r["search"] for r in designs[: len(searched)]] == ["search:random"] * len(searched)
    assert len(designs) == len(searched) + len(doc["fixed_designs"])
    assert {r["design.name"] for r in designs[len(searched) :]} == set(doc["fixed_designs"])
    capsys.readouterr()
    assert main(["report", str(inject_folder), "--table", "faults", "--csv"]) == 0
    printed = capsys.readouterr().out
    assert printed == (inject_folder / FAULTS_CSV).read_text()
    assert main(["report", str(inject_folder)]) == 0
    listing = capsys.readouterr().out
    assert "injections" in listing and "faults" in listing
    assert max(len(line) for line in listing.splitlines()) <= 80
    assert main(["report", str(inject_folder), "--table", "designs"]) == 2
    assert "holds no designs table" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "i.csv")]) == 2


def test_shipped_schemas_are_the_generated_ones():
    generated = schemas.json_schemas(MODELS)
    shipped = {
        p.name.removesuffix(schemas.SCHEMA_SUFFIX): json.loads(p.read_text())
        for p in (ROOT / "docs" / "schemas").glob(f"*{schemas.SCHEMA_SUFFIX}")
    }
    assert shipped == json.loads(json.dumps(generated))  # report --schemas docs/schemas
    assert {"run.json", "result.json", "faults.json", "injections.csv", "faults.csv"} <= set(
        shipped
    ) and "optimize.json" in shipped


def test_real_outputs_validate_and_a_broken_one_does_not(
    inject_folder, optimize_folder, run_folder, tmp_path
):
    assert schemas.validate_folder(inject_folder, MODELS) == {
        "run.json": 1,
        "faults.json": 1,
        INJECTIONS_CSV: 24,
        FAULTS_CSV: len(read_records_csv(inject_folder / FAULTS_CSV)),
    }
    assert set(schemas.validate_folder(optimize_folder, MODELS)) == {"run.json", "optimize.json"}
    assert {"result.json", "faults.json", "run.json"} <= set(
        schemas.validate_folder(run_folder, MODELS)
    )
    broken = json.loads((inject_folder / "faults.json").read_text())
    broken["injections"] = "many"
    (tmp_path / "faults.json").write_text(json.dumps(broken))
    with pytest.raises(ValidationError, match="injections"):
        schemas.validate_folder(tmp_path, MODELS)


def test_report_validate_and_schemas_from_the_command_line(inject_folder, tmp_path, capsys):
    assert main(["report", str(inject_folder), "--validate"]) == 0
    assert "faults.csv: valid" in capsys.readouterr().out
    assert main(["report", "--schemas", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(
        p.name for p in (ROOT / "docs" / "schemas").iterdir()
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text(json.dumps({"schema_version": 1}))
    capsys.readouterr()
    assert main(["report", str(tmp_path / "bad"), "--validate"]) == 2
    assert "does not match its schema" in capsys.readouterr().err


@needs_pandas
def test_pandas_reads_every_table_back(inject_folder, optimize_folder, tmp_path):
    import pandas as pd

    workload = load_workload(write_workload(inject_folder.parent))
    result = campaign(workload, out_dir=inject_folder)
    for table, name in (("injections", INJECTIONS_CSV), ("faults", FAULTS_CSV)):
        frame = pd.read_csv(inject_folder / name)
        assert frame.columns.tolist() == list(result.to_dataframe(table).columns)
        assert len(frame) == len(result.to_dataframe(table))
        assert frame.equals(pd.read_csv(result.to_csv(tmp_path / name, table)))
    faults = pd.read_csv(inject_folder / FAULTS_CSV)
    injections = pd.read_csv(inject_folder / INJECTIONS_CSV)
    joined = faults.merge(injections, on="injection", suffixes=("", "_injection"))
    assert (joined.sdc == joined.sdc_injection).all()
    assert faults.bit.dtype.kind == "i" and faults.sdc.dtype == bool
    designs = pd.read_csv(pd.io.common.StringIO(_report_csv(optimize_folder)))
    assert "objective_um2" in designs and "accuracy_lo_fraction" in designs
    run = pd.read_json(inject_folder / "run.json", typ="series")
    assert run["command"] == "inject"


def _report_csv(folder: Path) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["report", str(folder), "--csv"]) == 0
    return buffer.getvalue()


def test_to_dataframe_without_pandas_names_the_install_command(inject_folder, monkeypatch):
    import sys

    workload = load_workload(write_workload(inject_folder.parent))
    result = campaign(workload, out_dir=inject_folder)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        result.to_dataframe()


@pytest.fixture(scope="module")
def measured_folders(tmp_path_factory) -> tuple[Path, Path]:
    """A vulnerability folder and a baselines folder (small measurements)."""
    tmp = tmp_path_factory.mktemp("measured")
    workload = write_workload(tmp)
    small = ["--pilot", "4", "--max-injections", "400", "--no-cache"]
    vf_out, base_out = tmp / "vf", tmp / "base"
    assert main(["vulnerability", str(workload), *small, "--out", str(vf_out)]) == 0
    argv = ["baselines", str(workload), *small, "--certify-max", "0", "--out", str(base_out)]
    assert main(argv) == 0
    return vf_out, base_out


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("simulated")
    out = tmp / "run"
    assert main(["run", str(write_workload(tmp)), "--out", str(out)]) == 0
    return out


@needs_pandas
def test_pandas_reads_the_report_of_every_table_of_every_folder(
    run_folder, inject_folder, optimize_folder, measured_folders, tmp_path
):
    import pandas as pd

    from accelsim.report_cli import available_tables, table_rows

    seen = set()
    for folder in (run_folder, inject_folder, optimize_folder, *measured_folders):
        for source in available_tables(folder):
            path = tmp_path / f"{folder.name}-{source.name}.csv"
            assert main(["report", str(folder), "--table", source.name, "--csv", str(path)]) == 0
            frame = pd.read_csv(path)
            rows = table_rows(folder, source)
            assert len(frame) == len(rows) > 0 and list(frame.columns) == list(
                dict.fromkeys(k for r in rows for k in r)
            )
            assert frame.to_csv(index=False).splitlines()[0] == path.read_text().splitlines()[0]
            seen.add(source.name)
    assert seen == {"layers", "injections", "faults", "designs", "bvf", "baselines"}


def test_vulnerability_and_baselines_folders_are_tables_too(measured_folders, tmp_path):
    vf_out, base_out = measured_folders
    assert set(schemas.validate_folder(vf_out, MODELS)) == {"run.json", "vulnerability.json"}
    assert set(schemas.validate_folder(base_out, MODELS)) == {"run.json", "baselines.json"}
    doc = json.loads((vf_out / "vulnerability.json").read_text())
    assert main(["report", str(vf_out), "--csv", str(tmp_path / "bvf.csv")]) == 0
    bvf = read_records_csv(tmp_path / "bvf.csv")
    overall = [r for r in bvf if r["layer"] == "all"]
    assert len(overall) == sum(len(v) for v in doc["bvf"].values())
    for row in overall:
        entry = doc["bvf"][row["register"]][int(row["bit"])]
        assert int(row["n"]) == entry["n"] and int(row["count"]) == entry["count"]
    baselines = json.loads((base_out / "baselines.json").read_text())
    assert baselines["schema_version"] == 1
    for row in baselines["rows"]:
        if row["feasible"]:
            assert row["energy_pj_per_batch"] == row["energy_pj"]
            assert row["energy_pj_per_inference"] == pytest.approx(row["energy_pj"] / 8)
    assert main(["report", str(base_out), "--csv", str(tmp_path / "b.csv")]) == 0
    rows = read_records_csv(tmp_path / "b.csv")
    assert [r["name"] for r in rows] == [r["name"] for r in baselines["rows"]]
    assert all("first_order.upper" in r for r in rows)


def test_masked_early_per_fault_adds_up_to_the_injections_count(inject_folder):
    injections = read_records_csv(inject_folder / INJECTIONS_CSV)
    faults = read_records_csv(inject_folder / FAULTS_CSV)
    assert {f["masked_early"] for f in faults} == {"True", "False"}  # both occur here
    for row in injections:
        mine = [f for f in faults if f["injection"] == row["injection"]]
        assert sum(f["masked_early"] == "True" for f in mine) == int(row["faults_masked_early"])
