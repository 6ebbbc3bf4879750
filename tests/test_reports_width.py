"""Every report fits the terminal: rendered at 80 and 200 columns, nothing is cut off
("…") and no line is wider than the console. Results are crafted with long names and large
numbers (the worst case), so the test needs no simulation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rich.console import Console

from accelsim.report import LAYER_WRAP_WIDTH, energy_text, si_text, simulation_report
from accelsim.results import LayerStats, SimResult
from faults.campaign import CampaignResult, CampaignSettings
from faults.report import render_campaign
from faults.stats import Tally
from optimizer.log import Evaluation, SearchResult
from optimizer.report import render_optimize

WIDTHS = (80, 200)


def render(renderable, width: int) -> str:
    console = Console(width=width, record=True)
    console.print(renderable)
    text = console.export_text()
    assert "…" not in text, text  # nothing truncated: cells wrap or the layout fits
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, "\n".join(too_wide)
    return text


def _layer(name: str, op: str, scale: int, *, wait: int = 0) -> LayerStats:
    return LayerStats(
        name=name,
        op=op,
        macs=1_234_567_890 * scale,
        total_cycles=98_765_432 * scale,
        compute_cycles=87_654_321 * scale,
        stall_cycles=11_111_111 * scale,
        redundancy_wait_cycles=wait,
        utilization=0.987,
        mapping_efficiency=1.0,
        folds=123_456,
        sram_reads_bytes={"input": 999_999_999, "weight": 888_888_888, "output": 7},
        sram_writes_bytes={"input": 5, "weight": 6, "output": 777_777_777},
        dram_reads_bytes=999_500_000_000,
        dram_writes_bytes=123_456_789,
        energy_pj=861_380.0 * scale,
    )


def sim_result(*, waits: bool) -> SimResult:
    layers = (
        _layer("features.0.conv", "conv2d", 1, wait=12_345 if waits else 0),
        _layer("layer4.1.downsample.0", "conv2d", 3),
        _layer("a_very_long_layer_name_from_an_onnx_export/Conv_17", "maxpool2d", 2),
        _layer("classifier.fc", "linear", 1),
    )
    return SimResult(
        workload="resnet18_imagenet_quantised",
        layers=layers,
        area={"pe_multipliers_um2": 1.2e7, "input_buffer_um2": 3.4e8, "total_um2": 3.52e8},
        energy_pj={"gemm_pj": 6.28e6, "vector_and_memory_pj": 1.2e5},
        clock_mhz=1000.0,
        batch=16,
        batches=4,
        accuracy=0.9844,
        labels=None,
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("waits", [False, True])
def test_run_report_fits(width, waits):
    text = render(simulation_report(sim_result(waits=waits)), width)
    for name in ("features.0.conv", "classifier.fc", "layer4.1.downsample.0"):
        assert (name if width == 200 else name[:LAYER_WRAP_WIDTH]) in text  # may wrap at 80
    assert ("DPPU" in text) == waits
    assert "energy per batch" in text and "energy per inference" in text
    assert "kpJ" not in text and "400 nJ" in text  # 6.4e6 pJ / 16 inferences


def test_si_text_uses_prefixes_and_keeps_small_counts_exact():
    assert si_text(852) == "852"
    assert si_text(3470) == "3.47k"
    assert si_text(999_700) == "1M"  # rounds up into the next prefix, never "1e+03k"
    assert si_text(1040, "B") == "1.04 kB"
    assert si_text(0) == "0"


@pytest.mark.parametrize(
    ("pj", "text"),
    [
        (861_380.0, "861 nJ"),
        (1.5, "1.5 pJ"),
        (999.7, "1 nJ"),
        (2.5e6, "2.5 µJ"),
        (7.25e9, "7.25 mJ"),
        (0, "0 J"),
    ],
)
def test_energy_is_printed_in_joules_with_an_si_prefix(pj, text):
    assert energy_text(pj) == text


def _estimate(successes: int, n: int) -> dict:
    tally = Tally()
    for i in range(n):
        sdc = i < successes
        tally.add(masked=not sdc, top1_changed=sdc, rmse=1.5 if sdc else 0.0, correct=not sdc)
    return tally.summary()


def campaign_result() -> CampaignResult:
    breakdown = {**_estimate(3, 4000), "count": 4000}
    return CampaignResult(
        workload="resnet18_imagenet_quantised",
        injections=123_456,
        seed=12345,
        settings=CampaignSettings(rate=1.25e-7),
        summary=_estimate(37, 123),
        per_register={c: breakdown for c in ("accumulator", "input", "product", "weight")},
        per_layer={
            "a_very_long_layer_name_from_an_onnx_export/Conv_17": breakdown,
            "layer4.1.downsample.0": breakdown,
        },
        faults_per_inference=12.345,
        expected_faults_per_inference=12.3,
        masked_early=1_234_567,
        tiles_recomputed=5,
        layers_recomputed=2,
        golden_accuracy=0.9844,
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_campaign_report_fits(width):
    text = render(render_campaign(campaign_result()), width)
    assert "flips per bit per cycle" in text
    assert ("layer4.1.downsample.0" if width == 200 else "layer4.1.down") in text
    assert "SDC %" in text


def _evaluation(objective: float, *, certified: bool = True) -> Evaluation:
    reliability = {
        "reliability": 0.999876,
        "lo": 0.999812,
        "hi": 0.999923,
        "failure": 1.24e-4,
        "failure_lo": 7.7e-5,
        "failure_hi": 1.88e-4,
        "failure_upper": 1.8e-4,
        "confidence": 0.95,
        "injections": 123_456,
        "expected_faults": 0.0123,
    }
    metrics = {
        "area_um2": {"pe_multipliers_um2": 1.23e6, "input_buffer_um2": 4.5e5, "total_um2": 2.1e6},
        "latency_cycles": 12_345_678,
        "latency_us": 12345.678,
        "energy_pj_per_inference": 861_380.0,
        "accuracy": 0.9844,
        "reliability": reliability,
        "hardened_bits": {"accumulator": 12, "input": 0, "product": 3, "weight": 0},
        "protected_neurons": 123,
    }
    if certified:
        metrics["certificate"] = {
            "verdict": "certified",
            "failure": 1.1e-4,
            "lo": 5.2e-5,
            "hi": 1.9e-4,
            "upper": 1.8e-4,
            "target": 1e-3,
            "injections": 1_234_567,
        }
    design = {"array_rows": 16, "array_cols": 32, "hardened_bits.accumulator": 12, "p": 0.25}
    return Evaluation(design, objective, {"reliability": -0.05, "latency": -0.5}, metrics)


def optimize_result() -> SimpleNamespace:
    best = _evaluation(861_380.0)
    evaluations = [_evaluation(9e5, certified=False), best]
    search = SearchResult("bayesian", evaluations, best, 1, "found a feasible design", 0)
    comparison = SearchResult("random", evaluations[:1], evaluations[0], 0, "random search", 0)
    config = SimpleNamespace(
        objective="energy",
        readable=dict,
        constraints=SimpleNamespace(min_reliability=0.999),
    )
    return SimpleNamespace(
        workload="resnet18_imagenet_quantised",
        config=config,
        search=search,
        comparison=comparison,
        best=best,
        fixed={
            "no protection": _evaluation(7e5),
            "full TMR": _evaluation(2.5e6, certified=False),
            "neuron only": Evaluation.cannot_run({}, "the redundant units never keep up"),
        },
        evaluated=12,
        reliability_method="first order (AVF) from stratified vulnerability factors",
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_optimize_report_fits(width):
    text = render(render_optimize(optimize_result()), width)
    assert "energy per inference" in text
    assert "861 nJ" in text


def _baseline(name: str, *, feasible: bool = True) -> dict:
    estimate = {"failure": 1.234e-3, "lo": 9.87e-4, "hi": 1.567e-3, "upper": 1.5e-3}
    if not feasible:
        return {"name": name, "feasible": False, "reason": "the redundant units never keep up"}
    return {
        "name": name,
        "area_um2": 123_456_789.0,
        "hardened_bits_per_pe": 64,
        "protected_neurons": 12_345,
        "total_cycles": 98_765_432,
        "accuracy": 0.9844,
        "first_order": {**estimate, "injections": 1_234_567},
        "certificate": {
            **estimate,
            "injections": 60_000,
            "certified": False,
            "verdict": "inconclusive",
        },
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_baselines_tables_fit_and_keep_every_design_name(width):
    from faults.vulnerability_report import cost_table, reliability_table

    names = ("none", "full TMR", "neuron-only", "bit-only", "cross-layer")
    rows = [_baseline(n) for n in names] + [_baseline("neuron-only S=0", feasible=False)]
    cost = render(cost_table(rows), width)
    reliability = render(
        reliability_table(rows, rate=2e-6, unit="bit_cycle", target=1e-3, confidence=0.95), width
    )
    for name in names:
        assert name in cost and name in reliability
    assert "0.12 [0.099, 0.16]" in reliability and "no, inconclusive" in reliability
