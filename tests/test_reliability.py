"""First-order reliability from vulnerability factors against direct Monte-Carlo campaigns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accelsim.config import HardenedBitsConfig
from accelsim.errors import AccelsimError
from accelsim.workload import load_workload
from faults.reliability import first_order_failure, monte_carlo_failure, protected_share
from faults.vulnerability import VulnerabilityFactors, vulnerability_factors

DIGITS = Path(__file__).resolve().parents[1] / "workloads" / "digits_cnn.yaml"
SAMPLES = 32


@pytest.fixture(scope="module")
def workload():
    return load_workload(DIGITS, [f"dataset.samples={SAMPLES}"])


@pytest.fixture(scope="module")
def vf(workload) -> VulnerabilityFactors:
    return vulnerability_factors(workload, injections_per_bit=200, injections_per_neuron=0,
                                 cache_dir=None, seed=0)  # fmt: skip


def _sites(vf: VulnerabilityFactors) -> int:
    return sum(e["pe_cycles"] for e in vf.exposure.values()) * sum(vf.widths.values())


def test_first_order_agrees_with_a_direct_campaign(workload, vf):
    # 15 faults per inference: P(failure) ~ 0.05. Failures concentrate on a few fragile test
    # samples, so at more faults per inference the campaign saturates below 1 - exp(-Λ)
    # (faults/reliability.py "Multiple faults"); here failing faults are still rare
    rate = 15.0 / _sites(vf)
    first = first_order_failure(vf, rate=rate)
    assert first["expected_faults"] == pytest.approx(15.0)
    assert 0.02 < first["failure"] < 0.4
    assert first["lo"] <= first["failure"] <= first["hi"]
    assert first["lo_bound"] <= first["lo"] and first["hi"] <= first["hi_bound"]
    mc = monte_carlo_failure(workload, rate, injections=600, samples=SAMPLES, seed=3)
    assert mc["faults_per_inference"] == pytest.approx(15.0, rel=0.1)
    assert mc["lo"] <= first["failure"] <= mc["hi"]


def test_hardening_and_protection_lower_the_estimate(vf):
    rate = 30.0 / _sites(vf)
    bare = first_order_failure(vf, rate=rate)
    top = HardenedBitsConfig(accumulator=list(range(14, 32)), weight=[7])
    hardened = first_order_failure(vf, rate=rate, hardened=top)
    assert hardened["failure"] < bare["failure"]
    assert hardened["expected_faults"] < bare["expected_faults"]
    everything = HardenedBitsConfig(**{c: list(range(w)) for c, w in vf.widths.items()})
    none_left = first_order_failure(vf, rate=rate, hardened=everything)
    assert none_left == {"failure": 0.0, "lo": 0.0, "hi": 0.0, "lo_bound": 0.0,
                         "hi_bound": 0.0, "expected_faults": 0.0, "expected_failures": 0.0}  # fmt: skip
    # the ber unit prices register loads, not bit-cycles
    ber = first_order_failure(vf, rate=rate, unit="ber")
    assert ber["expected_faults"] < bare["expected_faults"]
    # NVF is needed to remove protected neurons' failures
    with pytest.raises(AccelsimError):
        first_order_failure(vf, rate=rate, protected={"fc": [0]})


def test_protected_share_removes_exactly_the_neurons_failures(workload):
    vf = vulnerability_factors(workload, registers=("accumulator",), bits=(24,),
                               injections_per_bit=50, injections_per_neuron=40,
                               cache_dir=None)  # fmt: skip
    channels = len(vf.nvf["fc"]["rate"])
    assert protected_share(vf, "fc", range(channels)) == (1.0, 1.0, 1.0)
    point, lo, hi = protected_share(vf, "fc", [0, 1])
    assert 0.0 <= lo <= point <= hi <= 1.0
    rate = 1e-6
    every = {layer: list(range(len(vf.nvf[layer]["rate"]))) for layer in vf.layers}
    protected = first_order_failure(vf, rate=rate, registers=("accumulator",), protected=every)
    assert protected["failure"] == 0.0
    some = first_order_failure(vf, rate=rate, registers=("accumulator",),
                               protected={"conv1": [0, 1, 2, 3]})  # fmt: skip
    bare = first_order_failure(vf, rate=rate, registers=("accumulator",))
    assert some["failure"] <= bare["failure"]


def test_run_with_reliability_end_to_end(tmp_path):
    """`accelsim run --reliability`: vulnerability factors measured (and cached under the working
    folder), neurons protected by NVF, the campaign and the first-order estimate in result.json."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "accelsim", "run", str(DIGITS), "--reliability", "--out", str(out),
         "--set", "dataset.samples=8", "--set", "faults.injections=50",
         "--set", "accelerator.protection.protected_fraction=0.1",
         "--set", "accelerator.protection.redundant_units=4"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "PYTHONPATH": str(DIGITS.parents[1])},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "first-order reliability" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    estimate = result["reliability"]
    assert 0 <= estimate["lo"] <= estimate["failure"] <= estimate["hi"] <= 1
    assert estimate["expected_faults"] > 0
    assert sum(len(v) for v in result["protected_neurons"].values()) == round(0.1 * 34)
    assert result["faults"]["injections"] == 50
    assert list((tmp_path / ".cache" / "vf").glob("*.json"))  # measured once, then cached
