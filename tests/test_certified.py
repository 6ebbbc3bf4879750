"""Certified reliability: stratified estimates with honest intervals, the direct Monte-Carlo
certificate, and an optimiser whose returned design always holds its certificate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim.workload import load_workload
from faults.campaign import CampaignSettings, campaign
from faults.certify import CertifySettings, campaign_size, certify_design
from faults.strata import (
    AllocationSettings,
    StratifiedInjections,
    adaptive_estimate,
    stratified_interval,
)
from optimizer.config import parse_optimize
from optimizer.estimators import ReliabilityEstimator
from optimizer.evaluate import DesignEvaluator
from optimizer.search import optimize

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.yaml"


def digits(*overrides: str):
    return load_workload(DIGITS, ["dataset.samples=32", *overrides])


# --------------------------------------------------------------------------- the estimator
def synthetic_strata(rng: np.random.Generator):
    """A known model: 40 strata, most never failing in practice, a plateau that carries most
    of the failures, uneven exposure (weights) and uneven sample sizes."""
    p = np.concatenate([np.full(8, 0.009), rng.uniform(0, 2e-3, 12), np.full(20, 2e-5)])
    w = rng.uniform(0.02, 0.2, len(p))
    n = rng.integers(200, 2000, len(p))
    return w, p, n


def test_stratified_estimate_is_unbiased_and_its_interval_covers_the_truth():
    w, p, n = synthetic_strata(np.random.default_rng(3))
    truth = float(np.sum(w * p))
    rng = np.random.default_rng(11)
    points, covered, upper_ok = [], 0, 0
    for _ in range(200):
        k = rng.binomial(n, p)
        est = stratified_interval(w, k, n, 0.95)
        points.append(est["point"])
        covered += est["lo"] <= truth <= est["hi"]
        upper_ok += truth <= est["upper"]
        assert est["lo"] <= est["point"] <= est["upper"] <= est["hi"]
    # Σ w k / n is unbiased: the mean of 200 repetitions within 3 standard errors of the truth
    se = np.sqrt(np.sum(w**2 * p * (1 - p) / n) / 200)
    assert abs(np.mean(points) - truth) < 3 * se
    assert covered >= 0.93 * 200
    assert upper_ok >= 0.93 * 200


def test_strata_without_failures_get_a_positive_upper_bound_never_zero():
    est = stratified_interval(np.array([0.5, 0.3]), np.array([0, 0]), np.array([1000, 50]))
    assert est["point"] == 0.0 and est["lo"] == 0.0
    # the least-sampled stratum bounds it: about -ln(0.05) / 50 of its weight at 95% one-sided
    assert est["upper"] == pytest.approx(0.3 * -np.log(0.05) / 50, rel=1e-3)
    # a stratum with weight but no injection at all may fail always
    assert stratified_interval(np.array([0.2]), np.array([0]), np.array([0]))["upper"] == 0.2


def test_single_stratum_interval_is_the_exact_poisson_interval():
    from scipy.stats import chi2

    est = stratified_interval(np.array([1.0]), np.array([7]), np.array([1000]), 0.95)
    assert est["lo"] == pytest.approx(chi2.ppf(0.025, 14) / 2 / 1000)
    assert est["hi"] == pytest.approx(chi2.ppf(0.975, 16) / 2 / 1000)


# --------------------------------------------------------------------------- the records
@pytest.fixture(scope="module")
def store():
    return StratifiedInjections(digits(), samples=16, seed=5)


def test_records_are_a_function_of_stratum_and_index_whoever_asks(store):
    other = StratifiedInjections(digits(), samples=16, seed=5)
    wanted = np.full(len(store.strata), 8)
    store.ensure(wanted)  # at once
    other.ensure(np.full(len(store.strata), 3))  # in two steps
    other.ensure(wanted)
    for a, b in zip(store._records, other._records, strict=True):
        assert np.array_equal(a.sample[:8], b.sample[:8])
        assert np.array_equal(a.failed[:8], b.failed[:8])
        assert np.array_equal(a.neuron[:8], b.neuron[:8])
    # samples go round robin within a stratum
    first = store._records[0].sample[:8]
    assert np.array_equal(np.diff(first) % 16, np.ones(7))


def test_a_designs_estimate_does_not_depend_on_what_was_asked_before(store, tmp_path):
    settings = AllocationSettings(pilot=16, max_injections=6000)
    weights = store.weights(None, 2e-6)
    hardened = weights.copy()
    hardened[
        [h for h, s in enumerate(store.strata) if s.register == "accumulator" and s.bit >= 16]
    ] = 0.0
    fresh = StratifiedInjections(digits(), samples=16, seed=5)
    a, trials_a = adaptive_estimate(store, hardened, settings=settings)
    adaptive_estimate(fresh, weights, settings=settings)  # another design first
    b, trials_b = adaptive_estimate(fresh, hardened, settings=settings)
    assert np.array_equal(trials_a, trials_b)
    assert a == b
    assert a["failure"] <= a["failure_pooled"] + 1e-12  # the per-sample model is below 1-e^-Λ
    assert a["expected_faults"] < store.weights(None, 2e-6).sum()


def test_records_survive_the_cache(tmp_path):
    first = StratifiedInjections(digits(), samples=8, seed=2, cache_dir=tmp_path)
    first.ensure(np.full(len(first.strata), 4))
    again = StratifiedInjections(digits(), samples=8, seed=2, cache_dir=tmp_path)
    assert np.array_equal(again.counts(), first.counts())
    assert again.ensure(np.full(len(first.strata), 4)) == 0
    assert list(tmp_path.glob("*.npz"))


# --------------------------------------------------------------------------- certificates
def test_count_stratified_certificate_agrees_with_a_plain_rate_campaign():
    workload = digits("faults.rate=2e-6")
    cert = certify_design(
        workload, target=1e-2, injections=4000, settings=CertifySettings(samples=32, seed=3)
    )
    direct = campaign(
        workload,
        injections=4000,
        samples=32,
        seed=4,
        workers=1,
        settings=CampaignSettings(mode="rate", rate=2e-6),
    ).summary["sdc"]
    assert cert["lo"] <= cert["failure"] <= cert["upper"] <= cert["hi"]
    # the same quantity: the two 95% intervals overlap
    assert cert["lo"] <= direct["hi"] and direct["lo"] <= cert["hi"]
    assert sum(s["injections"] for s in cert["strata"]) == cert["injections"]


def test_certificate_size_follows_the_prediction():
    settings = CertifySettings(min_injections=100, max_injections=10**6)
    near = campaign_size(8e-4, 1e-3, 2.0, settings)
    far = campaign_size(1e-4, 1e-3, 2.0, settings)
    assert far < near < 10**6
    assert campaign_size(None, 1e-3, 2.0, settings) == 10**6
    assert campaign_size(1e-4, 1e-3, 0.0, settings) == 0  # nothing can flip


def test_fully_hardened_design_is_certified_without_injections():
    workload = digits(
        "faults.rate=2e-6",
        *(  # every bit of every register class (8-bit operands, 32-bit accumulator)
            f"accelerator.protection.hardened_bits.{c}=[{','.join(map(str, range(width)))}]"
            for c, width in (("input", 8), ("weight", 8), ("product", 16), ("accumulator", 32))
        ),
    )
    cert = certify_design(workload, target=1e-3, settings=CertifySettings(samples=8))
    assert cert["certified"] and cert["injections"] == 0 and cert["upper"] == 0.0


# --------------------------------------------------------------------------- the optimiser
class Optimistic(ReliabilityEstimator):
    """A first-order estimator that is wrong in the dangerous direction: every design looks
    perfectly reliable."""

    method = "optimistic (test)"

    def select_bits(self, workload, counts):
        widths = {"input": 8, "weight": 8, "product": 16, "accumulator": 32}
        return {c: list(range(widths[c] - k, widths[c])) for c, k in counts.items()}

    def select_neurons(self, workload, fraction):
        return {}

    def reliability(self, workload, protected, rate, unit):
        return {
            "reliability": 1.0,
            "lo": 1.0,
            "hi": 1.0,
            "failure": 0.0,
            "failure_lo": 0.0,
            "failure_hi": 0.0,
            "failure_upper": 0.0,
            "expected_faults": 0.0,
            "method": self.method,
        }


def crafted(target: float, rate: str = "2e-6", **extra):
    workload = load_workload(
        DIGITS, ["dataset.samples=32", f"faults.rate={rate}", "faults.samples=16"]
    )
    section = {
        "objective": "area",
        "method": "exhaustive",
        "constraints": {"min_reliability": 1 - target},
        "certify": {"min_injections": 3000, "max_injections": 3000, "samples": 32},
        "variables": {"array_rows": [4, 8], "hardened_bits": {"accumulator": [0, 16, 32]}},
        **extra,
    }
    return workload, parse_optimize(section, workload=workload.config, file="t.yaml")


def test_optimistic_first_order_never_yields_a_design_its_own_check_refutes(tmp_path):
    workload, opt = crafted(target=1e-2)
    result = optimize(
        workload.with_config(
            workload.config.model_copy(update={"optimize": opt.section.model_dump()})
        ),
        estimator=Optimistic(),
        with_fixed=False,
    )
    best = result.best
    assert best is not None
    cert = best.metrics["certificate"]
    assert cert["certified"] and cert["upper"] <= 1e-2
    # the cheaper designs the optimistic model called feasible were checked and refuted
    checked = [e for e in result.search.evaluations if "certificate" in e.metrics]
    assert any(not e.metrics["certificate"]["certified"] for e in checked)
    for e in checked:
        assert e.feasible == e.metrics["certificate"]["certified"]
    # the j-th certificate of a search spends 6 / (pi² j²) of the 5% error rate (sum: 5%)
    spent = [1 - e.metrics["certificate"]["confidence"] for e in checked]
    assert spent == pytest.approx([0.05 * 6 / (np.pi**2 * j**2) for j in range(1, len(spent) + 1)])


def test_a_run_without_a_certified_design_says_so():
    workload, opt = crafted(target=1e-6, variables={"array_rows": [4, 8]})
    result = optimize(
        workload.with_config(
            workload.config.model_copy(update={"optimize": opt.section.model_dump()})
        ),
        estimator=Optimistic(),
        with_fixed=False,
    )
    assert result.best is None
    assert "certif" in result.search.message
    assert all("certificate" in e.metrics for e in result.search.evaluations)


def test_resume_gives_the_same_answer_with_the_certificates(tmp_path):
    workload, opt = crafted(target=1e-2, method="random", budget=6, seed=3)
    workload = workload.with_config(
        workload.config.model_copy(update={"optimize": opt.section.model_dump()})
    )
    whole = optimize(workload, out_dir=tmp_path / "a", estimator=Optimistic(), with_fixed=False)
    optimize(workload, budget=3, out_dir=tmp_path / "b", estimator=Optimistic(), with_fixed=False)
    resumed = optimize(workload, out_dir=tmp_path / "b", estimator=Optimistic(), with_fixed=False)
    assert resumed.search.to_dict() == whole.search.to_dict()
    assert resumed.best.metrics["certificate"]["certified"]


def test_evaluator_decides_reliability_on_the_upper_bound(tmp_path):
    workload, opt = crafted(target=1e-3, certify={"enabled": False})
    evaluator = DesignEvaluator(workload, opt, cache_dir=tmp_path)
    evaluation = evaluator({"array_rows": 8, "hardened_bits.accumulator": 0})
    rel = evaluation.metrics["reliability"]
    assert rel["failure"] <= rel["failure_upper"]
    assert evaluation.constraints["reliability"] == pytest.approx(
        np.log10(max(rel["failure_upper"], 1e-6) / 1e-3)
    )
    assert not evaluator.certifies


def test_optimize_report_with_certificates_fits_80_columns():
    from rich.console import Console

    from optimizer.report import render_optimize

    workload, opt = crafted(
        target=1e-2, variables={"array_rows": [4], "hardened_bits": {"accumulator": [0, 16]}}
    )
    result = optimize(
        workload.with_config(
            workload.config.model_copy(update={"optimize": opt.section.model_dump()})
        ),
        estimator=Optimistic(),
    )
    assert all("certificate" in e.metrics for e in result.fixed.values() if e.ran)
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(render_optimize(result))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        assert "…" not in text  # nothing cut off: cells wrap or the layout fits
        assert "MC " in text and "FO " in text
