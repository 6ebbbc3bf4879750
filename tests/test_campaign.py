"""Fault campaigns: the shortcut injector equals a full faulty re-run; campaigns are seeded,
resumable and identical serial or parallel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelsim import load_workload, mapping
from accelsim.executor import execute
from faults.campaign import CampaignSettings, campaign, prepare
from faults.fault import inference_faults
from faults.inject import InjectionStats, faulty_inference, full_faulty_inference

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.yaml"


def digits(*overrides: str):
    return load_workload(DIGITS, ["dataset.samples=12", *overrides])


@pytest.fixture(scope="module")
def digits_context():
    workload = digits()
    settings = CampaignSettings(mode="rate", rate=2e-5)
    return workload, prepare(workload, settings)


def test_golden_run_equals_reference_executor(digits_context):
    workload, ctx = digits_context
    np.testing.assert_array_equal(ctx.golden.outputs, execute(workload.graph, workload.inputs))


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("model", ["seu", "mbu", "stuck0", "stuck1"])
def test_shortcut_injection_equals_full_faulty_rerun(dataflow, model):
    workload = digits(
        f"accelerator.array.dataflow={dataflow}",
        "accelerator.array.rows=4",
        "accelerator.array.cols=4",
    )
    ctx = prepare(workload, CampaignSettings(mode="rate", rate=1e-4, model=model, mbu_width=3))
    rng = np.random.default_rng(7)
    sampler = ctx.sampler()
    corrupted = 0
    for trial in range(12):
        sample = int(rng.integers(ctx.golden.samples))
        count = 1 + int(rng.integers(3))
        faults = inference_faults(sampler.draw(rng, count, model=model, mbu_width=3, sample=sample))
        fast = faulty_inference(ctx.golden, sample, faults)
        slow = full_faulty_inference(ctx.golden, sample, faults)
        np.testing.assert_array_equal(fast, slow, err_msg=f"trial {trial}")
        corrupted += not np.array_equal(fast, ctx.golden.tensor(workload.graph.output, sample))
    assert corrupted >= 0  # the equality above is the claim; corruption depends on the draw


def test_high_order_accumulator_flip_is_seen_and_low_order_can_be_masked(digits_context):
    workload, ctx = digits_context
    golden = ctx.golden
    layer = workload.graph.layers()[0].name
    # accumulator MSB of PE (0, 0) in the first fold at cycle 2: the sum of output (0, 0) passes
    msb = {layer: {0: np.array([[3, 0, 0, 2, 1 << 30, 0]])}}
    stats = InjectionStats()
    faulty_inference(golden, 0, msb, stats)
    assert stats.tiles_recomputed == 1 and stats.masked_early == 0
    # a weight-register flip after the fold's last use of that weight is masked before any
    # computation (the space-time map says no output can see it)
    accel = workload.config.accelerator
    fold = golden.schedules[layer].folds[0]
    shape = (fold.m1 - fold.m0, fold.k1 - fold.k0, fold.n1 - fold.n0)
    pe = golden.pe(layer)
    cycles = mapping.fold_cycles(pe.dataflow, *shape, accel.array.rows)
    late = next(
        t
        for t in range(cycles)
        if mapping.affected_outputs(pe.kernel, 1, 0, 0, t, *shape)[0].size == 0
    )
    idle = {layer: {0: np.array([[1, 0, 0, late, 1, 0]])}}
    stats = InjectionStats()
    out = faulty_inference(golden, 0, idle, stats)
    assert stats.masked_early == 1 and stats.tiles_recomputed == 0
    np.testing.assert_array_equal(out, golden.tensor(workload.graph.output, 0))


def test_rate_zero_equals_the_fault_free_run(tmp_path):
    workload = digits()
    result = campaign(
        workload, injections=20, settings=CampaignSettings(rate=0.0), out_dir=tmp_path
    )
    assert result.summary["masked"]["rate"] == 1.0
    assert result.summary["sdc"]["rate"] == 0.0
    assert result.faults_per_inference == 0.0


def test_same_seed_same_results_serial_or_parallel(tmp_path, digits_context):
    workload, ctx = digits_context
    kwargs = dict(injections=24, seed=11, context=ctx)
    serial = campaign(workload, workers=1, out_dir=tmp_path / "serial", **kwargs)
    parallel = campaign(workload, workers=2, out_dir=tmp_path / "parallel", **kwargs)
    assert serial.results == parallel.results
    assert serial.to_dict() == parallel.to_dict()
    other = campaign(
        workload, workers=1, out_dir=tmp_path / "other", injections=24, seed=12, context=ctx
    )
    assert other.results != serial.results


def test_interrupted_campaign_resumes_to_the_same_summary(tmp_path, digits_context):
    workload, ctx = digits_context
    whole = campaign(workload, injections=30, seed=5, context=ctx, out_dir=tmp_path / "whole")
    # an interrupted run: its log holds the first 13 injections and half of the 14th line
    log = (tmp_path / "whole" / "faults.jsonl").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "faults.jsonl").write_text("".join(log[:14]) + log[14][: len(log[14]) // 2])
    computed = []
    resumed = campaign(
        workload,
        injections=30,
        seed=5,
        context=ctx,
        out_dir=cut,
        on_result=lambda i, r: computed.append(i),
    )
    assert resumed.to_dict() == whole.to_dict()
    lines = [json.loads(x) for x in (cut / "faults.jsonl").read_text().splitlines()[1:]]
    assert sorted(x["task"] for x in lines) == list(range(30))  # each injection exactly once
    assert json.loads((cut / "faults.json").read_text()) == whole.to_dict()


def test_inject_cli_runs_and_writes_results(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "inject",
            str(DIGITS),
            "--out",
            str(tmp_path),
            "--set",
            "dataset.samples=8",
            "--set",
            "faults.rate=1e-5",
            "--injections",
            "10",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "faults.json").read_text())
    assert summary["injections"] == 10
    assert "SDC" in proc.stdout
