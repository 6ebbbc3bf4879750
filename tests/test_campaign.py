"""Fault campaigns: the shortcut injector equals a full faulty re-run; campaigns are seeded,
resumable (their columnar log: torn last block recomputed, resumed == fresh bit for bit) and
identical serial or parallel, whatever the chunking; records and CSV from the columns equal
the per-injection dict path's."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from accelsim import load_workload, mapping
from accelsim.errors import AccelsimError
from accelsim.executor import execute
from accelsim.results import write_records_csv
from faults.campaign import (
    LOG_NAME,
    CampaignSettings,
    campaign,
    campaign_key,
    draw_batch,
    injection_columns,
    prepare,
    run_injection,
    run_injections,
)
from faults.fault import inference_faults
from faults.inject import InjectionStats, faulty_inference, full_faulty_inference
from faults.records import FAULTS_CSV, INJECTIONS_CSV, fault_records, injection_records
from faults.runner import BLOCK_PREFIX, ResultColumns, TaskSpec, read_task_log, run_tasks
from faults.stats import Tally

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


def log_blocks(path: Path) -> tuple[bytes, list[bytes]]:
    """A columnar log's header line and its blocks (length and CRC prefix included)."""
    data = path.read_bytes()
    position = data.index(b"\n") + 1
    header, blocks = data[:position], []
    while position < len(data):
        end = position + BLOCK_PREFIX + int.from_bytes(data[position : position + 8], "little")
        blocks.append(data[position:end])
        position = end
    return header, blocks


def test_interrupted_campaign_resumes_to_the_same_summary(tmp_path, digits_context):
    workload, ctx = digits_context
    whole = campaign(
        workload, injections=30, seed=5, context=ctx, out_dir=tmp_path / "whole", chunk=8
    )
    # an interrupted run: its log holds the first block (chunk) and half of the second
    header, blocks = log_blocks(tmp_path / "whole" / LOG_NAME)
    assert len(blocks) > 2
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / LOG_NAME).write_bytes(header + blocks[0] + blocks[1][: len(blocks[1]) // 2])
    first_block = read_task_log(cut / LOG_NAME).columns.tasks.tolist()
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
    assert resumed.columns == whole.columns  # bit for bit, columns and dtypes
    assert sorted(computed) == list(range(30))  # logged ones reported too
    logged = read_task_log(cut / LOG_NAME).columns.tasks.tolist()
    assert logged == list(range(30))  # each injection exactly once
    assert log_blocks(cut / LOG_NAME)[1][0] == blocks[0]  # the torn block was overwritten
    assert first_block == list(range(len(first_block)))
    assert json.loads((cut / "faults.json").read_text()) == whole.to_dict()
    for table in (INJECTIONS_CSV, FAULTS_CSV):
        assert (cut / table).read_bytes() == (tmp_path / "whole" / table).read_bytes()


def test_a_torn_last_block_of_zeros_is_recomputed_and_a_damaged_inner_one_refused(
    tmp_path, digits_context
):
    workload, ctx = digits_context
    whole = campaign(
        workload, injections=20, seed=2, context=ctx, out_dir=tmp_path / "whole", chunk=8
    )
    header, blocks = log_blocks(tmp_path / "whole" / LOG_NAME)
    torn = tmp_path / "torn"
    torn.mkdir()
    # a crash after the file grew but before the data reached the disk: a block of zeros
    last = blocks[-1][:BLOCK_PREFIX] + bytes(len(blocks[-1]) - BLOCK_PREFIX)
    (torn / LOG_NAME).write_bytes(header + b"".join(blocks[:-1]) + last)
    again = campaign(workload, injections=20, seed=2, context=ctx, out_dir=torn)
    assert again.columns == whole.columns
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    inner = blocks[0][:-3] + b"xyz"
    (damaged / LOG_NAME).write_bytes(header + inner + b"".join(blocks[1:]))
    with pytest.raises(AccelsimError, match="damaged block"):
        campaign(workload, injections=20, seed=2, context=ctx, out_dir=damaged)


def test_columns_round_trip_through_a_block_without_pickle(digits_context):
    _, ctx = digits_context
    columns = injection_columns([TaskSpec(i, 4) for i in range(12)], ctx)
    again = ResultColumns.from_bytes(columns.to_bytes())
    assert again == columns
    assert [c.dtype for c in again.tables["faults"].values()] == [
        c.dtype for c in columns.tables["faults"].values()
    ]
    assert again != injection_columns([TaskSpec(i, 5) for i in range(12)], ctx)


def test_chunking_and_workers_do_not_change_the_columns(tmp_path, digits_context):
    _, ctx = digits_context
    runs = [
        run_tasks(run_injection, 40, seed=6, log_path=tmp_path / f"{i}.log", context=ctx, **kw)
        for i, kw in enumerate([{}, {"chunk": 7}, {"chunk": 5, "workers": 2}])
    ]
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0]) == 40 and runs[0].tasks.tolist() == list(range(40))


def test_records_and_csv_from_columns_equal_the_dict_path(tmp_path, digits_context):
    workload, ctx = digits_context
    result = campaign(workload, injections=40, seed=3, context=ctx, out_dir=tmp_path)
    results = result.results  # the generic path's dicts, from the same columns
    assert list(results) == run_injections([TaskSpec(i, 3) for i in range(40)], ctx)
    assert result.to_records() == injection_records(results)
    _, table = draw_batch(range(40), 3, ctx)
    assert result.fault_records() == fault_records(table, results, ctx.golden)
    write_records_csv(injection_records(results), tmp_path / "dict_injections.csv")
    write_records_csv(fault_records(table, results, ctx.golden), tmp_path / "dict_faults.csv")
    assert (tmp_path / INJECTIONS_CSV).read_bytes() == (
        tmp_path / "dict_injections.csv"
    ).read_bytes()
    assert (tmp_path / FAULTS_CSV).read_bytes() == (tmp_path / "dict_faults.csv").read_bytes()
    # the tallies over columns are the per-injection ones, counted one by one
    total = Tally()
    for r in results:
        total.add(
            masked=r["masked"],
            top1_changed=r["top1_changed"],
            rmse=r["rmse"],
            correct=r["correct"],
            golden_correct=r["golden_correct"],
        )
    counted = result.summary
    assert {k: counted[k] for k in ("count", "sdc", "masked", "accuracy")} == {
        k: total.summary()[k] for k in ("count", "sdc", "masked", "accuracy")
    }
    assert counted["rmse"]["mean"] == pytest.approx(total.rmse_mean, rel=1e-12)


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


def test_the_context_hashes_the_graph_once_and_the_key_is_the_same(digits_context):
    workload, ctx = digits_context
    direct = campaign_key(workload, ctx.settings, ctx.golden.samples, 3)
    cached = ctx.graph_hash(workload.graph)
    assert ctx.graph_hash(workload.graph) is cached  # not hashed again
    assert campaign_key(workload, ctx.settings, ctx.golden.samples, 3, graph_hash=cached) == direct
    assert pickle.loads(pickle.dumps(ctx))._graph_hash is None  # workers get no copy
