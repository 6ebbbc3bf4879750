"""The campaign's live display costs O(1) per injection and still ends on the true figure.

The SDC interval is recomputed a few times a second, not per result (``LiveTally``), and the
Wilson interval no longer goes through scipy's ``binomtest`` (whose p-value search dominated a
campaign): its written-out arithmetic must give scipy's bounds bit for bit.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from rich.console import Console
from scipy.stats import binomtest

from accelsim import load_workload
from faults.console_steps import REDRAWS_PER_SECOND, LiveTally, run_campaign_with_progress
from faults.report import rate_text
from faults.stats import rate_estimate, wilson_interval

ROOT = Path(__file__).resolve().parents[1]


def _scipy_wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The interval as the code computed it before: scipy's binomtest, clamped."""
    interval = binomtest(k, n).proportion_ci(confidence, method="wilson")
    lo = 0.0 if k == 0 else max(0.0, float(interval.low))
    hi = 1.0 if k == n else min(1.0, float(interval.high))
    return lo, hi


def test_wilson_interval_equals_scipy_bit_for_bit():
    rng = random.Random(3)
    sizes = [*range(1, 40), 100, 999, 5000, 123457, 10**7]
    for n in sizes:
        for k in {0, 1, n // 3, n // 2, n - 1, n, rng.randint(0, n)}:
            for confidence in (0.8, 0.9, 0.95, 0.99, 0.999):
                assert wilson_interval(k, n, confidence) == _scipy_wilson(k, n, confidence)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _result(sdc: bool) -> dict:
    return {"masked": not sdc, "top1_changed": sdc, "rmse": 0.5 if sdc else 0.0}


def test_live_tally_counts_every_result_but_summarises_a_few_times_a_second():
    clock = FakeClock()
    live = LiveTally(clock)
    live.add(_result(True))
    assert live.sdc_text_if_due() == rate_text(rate_estimate(1, 1))  # the first shows at once
    for i in range(999):
        live.add(_result(i % 10 == 0))
        clock.now += 1e-5  # a thousand results in 10 ms: no redraw among them
        assert live.sdc_text_if_due() is None
    assert live.tally.count == 1000 and live.tally.sdc == 101
    clock.now += 1.0 / REDRAWS_PER_SECOND
    assert live.sdc_text_if_due() == rate_text(rate_estimate(101, 1000))
    assert live.sdc_text() == rate_text(rate_estimate(101, 1000))


def test_campaign_display_ends_on_the_final_sdc_figure(tmp_path):
    workload = load_workload(ROOT / "workloads" / "digits_cnn.yaml", ["dataset.samples=8"])
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    summary = run_campaign_with_progress(workload, tmp_path, console, injections=300, workers=1)
    sdc = summary["summary"]["sdc"]
    assert sdc["n"] == 300
    final = f"300/300 SDC {rate_text(sdc)}"
    assert final in out.getvalue()


@pytest.mark.parametrize("confidence", [0.0, 1.0])
def test_wilson_interval_refuses_a_confidence_outside_0_1(confidence):
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence)
