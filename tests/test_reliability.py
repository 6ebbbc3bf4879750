"""A design's reliability: the first-order estimate from the vulnerability records against
direct Monte-Carlo campaigns, and ``run --reliability`` end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelsim.config import HardenedBitsConfig
from accelsim.errors import AccelsimError
from accelsim.workload import load_workload
from faults.certify import CertifySettings, certify_design
from faults.reliability import design_weights, first_order_failure, monte_carlo_failure
from faults.strata import adaptive_estimate
from faults.vulnerability import VulnerabilityFactors, vulnerability_factors

DIGITS = Path(__file__).resolve().parents[1] / "workloads" / "digits_cnn.yaml"
SAMPLES = 32
BUDGET = {"pilot": 32, "max_injections": 30_000, "precision": 0.2, "cache_dir": None}


@pytest.fixture(scope="module")
def workload():
    return load_workload(DIGITS, [f"dataset.samples={SAMPLES}"])


@pytest.fixture(scope="module")
def vf(workload) -> VulnerabilityFactors:
    return vulnerability_factors(workload, **BUDGET)


def _rate(vf: VulnerabilityFactors, faults_per_inference: float) -> float:
    return faults_per_inference / float(vf.records().sites.sum())


def test_first_order_is_the_stratified_estimate_of_the_design(vf):
    # the bare design priced from its exposure is the factors' own unprotected estimate
    store = vf.records()
    assert np.allclose(design_weights(vf, vf.rate), store.weights(None, vf.rate))
    first = first_order_failure(vf, rate=vf.rate)
    assert {k: first[k] for k in vf.estimate} == vf.estimate
    assert first["injections"] == vf.injections
    est, _ = adaptive_estimate(store, store.weights(None, vf.rate), settings=vf.settings)
    assert first["failure"] == est["failure"] and first["upper"] == est["upper"]
    assert 0 < first["lo"] <= first["failure"] <= first["upper"] <= first["hi"] < 1


def test_first_order_agrees_with_a_direct_campaign(workload):
    # two faults per inference: failing faults are still rare (P(failure) ~ 0.7%); the
    # factors' default precision (10%), so that the campaign's interval is the wider one
    vf = vulnerability_factors(workload, pilot=32, max_injections=100_000, cache_dir=None)
    rate = _rate(vf, 2.0)
    first = first_order_failure(vf, rate=rate)
    assert first["expected_faults"] == pytest.approx(2.0)
    mc = monte_carlo_failure(workload, rate, injections=4000, samples=SAMPLES, seed=3)
    assert mc["faults_per_inference"] == pytest.approx(2.0, rel=0.1)
    assert mc["lo"] <= first["failure"] <= mc["hi"]
    # the certificate's campaign (stratified by fault count) measures the same quantity
    at_rate = load_workload(DIGITS, [f"dataset.samples={SAMPLES}", f"faults.rate={rate}"])
    cert = certify_design(
        at_rate, target=0.05, injections=4000, settings=CertifySettings(samples=SAMPLES, seed=4)
    )
    assert cert["lo"] <= first["failure"] <= cert["hi"]
    assert cert["verdict"] == "certified" and cert["upper"] <= 0.05


def test_hardening_lowers_the_estimate_and_every_bit_hardened_cannot_fail(vf):
    rate = _rate(vf, 10.0)
    bare = first_order_failure(vf, rate=rate)
    top = HardenedBitsConfig(accumulator=list(range(14, 32)), weight=[7])
    hardened = first_order_failure(vf, rate=rate, hardened=top)
    assert hardened["expected_failures"] < bare["expected_failures"]
    assert hardened["expected_faults"] < bare["expected_faults"]
    assert hardened["upper"] < bare["upper"]
    # a mapping of bit lists is the same design
    same = first_order_failure(
        vf, rate=rate, hardened={"accumulator": range(14, 32), "weight": [7]}
    )
    assert same == hardened
    everything = HardenedBitsConfig(**{c: list(range(w)) for c, w in vf.widths.items()})
    none_left = first_order_failure(vf, rate=rate, hardened=everything)
    assert none_left["failure"] == none_left["upper"] == none_left["hi"] == 0.0
    assert none_left["expected_faults"] == 0.0 and none_left["injections"] == 0


def test_the_ber_unit_prices_register_loads(workload):
    kwargs = {**BUDGET, "pilot": 8, "max_injections": 3000, "samples": 8}
    cycles = vulnerability_factors(workload, **kwargs)
    ber = load_workload(DIGITS, [f"dataset.samples={SAMPLES}", "faults.unit=ber"])
    loads = vulnerability_factors(ber, **kwargs)
    assert loads.unit == "ber" and cycles.unit == "bit_cycle"
    assert (
        first_order_failure(loads, rate=1e-4)["expected_faults"]
        < first_order_failure(cycles, rate=1e-4)["expected_faults"]
    )


def test_protected_neurons_are_checked_and_credited(vf):
    rate = _rate(vf, 10.0)
    with pytest.raises(AccelsimError, match="unknown layer"):
        first_order_failure(vf, rate=rate, protected={"nope": [0]})
    with pytest.raises(AccelsimError, match="no neuron 10"):
        first_order_failure(vf, rate=rate, protected={"fc": [10]})
    with pytest.raises(AccelsimError, match="rate"):
        first_order_failure(vf, rate=-1.0)
    every = {layer: list(range(len(vf.nvf[layer]["rate"]))) for layer in vf.layers}
    assert first_order_failure(vf, rate=rate, protected=every)["failure"] == 0.0
    some = first_order_failure(vf, rate=rate, protected={"conv2": [0, 1, 2, 3]})
    bare = first_order_failure(vf, rate=rate)
    assert some["expected_failures"] <= bare["expected_failures"]


def test_run_with_reliability_end_to_end(tmp_path):
    """`accelsim run --reliability`: the vulnerability records measured (and cached under the
    working folder), neurons protected by the NVF ranking, the campaign and the first-order
    estimate in result.json."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelsim",
            "run",
            str(DIGITS),
            "--reliability",
            "--out",
            str(out),
            "--set",
            "dataset.samples=8",
            "--set",
            "faults.injections=50",
            "--set",
            "accelerator.protection.protected_fraction=0.1",
            "--set",
            "accelerator.protection.redundant_units=4",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={
            **os.environ,
            "PYTHONPATH": str(DIGITS.parents[1]),
            "ACCELSIM_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "first-order reliability" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    estimate = result["reliability"]
    assert 0 <= estimate["lo"] <= estimate["failure"] <= estimate["upper"] <= estimate["hi"] <= 1
    assert estimate["expected_faults"] > 0 and estimate["injections"] > 0
    assert sum(len(v) for v in result["protected_neurons"].values()) == math.ceil(0.1 * 34)
    assert result["faults"]["injections"] == 50
    assert list((tmp_path / "cache" / "vf").glob("*.npz"))  # measured once, then cached
    assert not (tmp_path / ".cache").exists()  # never in the working directory
