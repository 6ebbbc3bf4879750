"""Certificates: a design's P(failure per inference) by direct Monte-Carlo, decided on a bound.

A direct campaign draws, per inference, a Poisson(μ) number of faults uniform over the
design's exposed sites (μ = rate x unhardened bit-cycles) and counts failures. Its estimate
does not rest on any first-order model. We draw the same process *stratified by the number
of faults*: P(failure) = Σ_k π_k f_k with π_k = Poisson(k; μ) known exactly and f_k =
P(failure | exactly k faults) estimated by injections of exactly k faults (k = 0 cannot fail).
That is the same quantity as a plain rate-mode campaign (a test compares the two) with less
variance: no injection is spent on fault-free inferences, and each k gets injections in
proportion to π_k sqrt(k) (Neyman, with f_k taken ∝ k). Counts beyond ``k_max`` (where the
Poisson tail is below 1% of the target) go into the upper limit as certain failure.

The campaign is sized *before* it runs (no optional stopping): from the predicted P(failure)
(the first-order estimate), the injections at which the expected upper limit falls below the
target — or, for a design predicted to miss it, the lower limit rises above it — with a 30%
margin, within [``min_injections``, ``max_injections``]. Verdict: ``certified`` when the
one-sided upper limit at ``confidence`` is within the target, ``refuted`` when the one-sided
lower limit is above it, else ``inconclusive`` (not certified).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import gamma, poisson

from accelsim.workload import Workload

from .batched import faulty_outputs
from .campaign import CampaignSettings, prepare
from .fault import FaultTable
from .runner import task_words, words_below
from .strata import CHUNK, stratified_interval

METHOD = "direct Monte-Carlo, stratified by fault count"
SAMPLE_WORD, FIRST_FAULT_WORD = 0, 1  # then 2 words per fault: site, cycle


@dataclass(frozen=True)
class CertifySettings:
    """How a certificate campaign is sized and drawn."""

    confidence: float = 0.95
    min_injections: int = 2_000
    max_injections: int = 60_000
    margin: float = 1.3  # injections x this over the size the prediction needs
    seed: int = 1
    samples: int | None = None  # test samples (default: every sample of the data set)


def _needed(predicted: float, target: float, covered: float, confidence: float) -> float:
    """Injections of a single stratum with conditional rate q = predicted / covered at which
    the expected one-sided limit reaches the conditional target (Poisson limits)."""
    q, t = predicted / covered, target / covered
    if q <= 0:  # no failure expected: the upper limit is -ln(alpha) / n
        return -math.log(1 - confidence) / t
    if math.isclose(q, t):
        return math.inf

    def decided(n: float) -> bool:
        k = q * n
        if q < t:  # upper limit below the target
            return gamma.ppf(confidence, k + 1) / n <= t
        return k > 0 and gamma.ppf(1 - confidence, k) / n > t

    lo, hi = 1.0, 1.0
    while not decided(hi):
        hi *= 2
        if hi > 1e12:
            return math.inf
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
        if hi / lo < 1.01:
            break
    return hi


def campaign_size(
    predicted: float | None, target: float, mu: float, settings: CertifySettings
) -> int:
    """Injections for a certificate of a design predicted at ``predicted`` (see the module)."""
    covered = -math.expm1(-mu)  # P(at least one fault)
    if covered <= 0:
        return 0
    if predicted is None:
        return settings.max_injections
    need = _needed(max(predicted, 0.0), target, covered, settings.confidence) * settings.margin
    if not math.isfinite(need):
        return settings.max_injections
    return int(min(max(math.ceil(need), settings.min_injections), settings.max_injections))


def certify_design(
    workload: Workload,
    *,
    target: float,
    predicted: float | None = None,
    protected: Mapping[str, np.ndarray] | None = None,
    settings: CertifySettings = CertifySettings(),
    injections: int | None = None,
) -> dict[str, Any]:
    """The certificate of ``workload``'s configured design (its hardening in the config,
    ``protected`` neurons recomputed) against ``target`` failures per inference at the
    workload's ``faults:`` rate. ``injections`` overrides the sizing."""
    faults = workload.config.faults
    if faults is None or faults.rate <= 0:
        raise ValueError("a certificate needs a faults: section with rate > 0")
    run = CampaignSettings(
        mode="rate",
        rate=float(faults.rate),
        unit=faults.unit,
        model=faults.model,
        mbu_width=faults.mbu_width,
        registers=tuple(faults.registers),
    )
    ctx = prepare(workload, run, samples=settings.samples, protected=protected)
    sampler = ctx.sampler()
    mu = float(faults.rate) * sampler.total
    total = campaign_size(predicted, target, mu, settings) if injections is None else injections
    record: dict[str, Any] = {
        "method": METHOD,
        "target": target,
        "confidence": settings.confidence,
        "seed": settings.seed,
        "expected_faults": mu,
        "predicted": predicted,
        "samples": ctx.golden.samples,
    }
    if total == 0 or mu == 0:
        return {
            **record,
            "failure": 0.0,
            "lo": 0.0,
            "hi": 0.0,
            "upper": 0.0,
            "injections": 0,
            "strata": [],
            "tail": 0.0,
            "verdict": "certified",
            "certified": True,
        }
    # fault counts 1..k_max; beyond, the Poisson tail counts as failure in the upper limit
    k_max = max(1, int(poisson.isf(max(target * 0.01, 1e-15), mu)) + 1)
    counts = np.arange(1, k_max + 1)
    pi = poisson.pmf(counts, mu)
    tail = float(poisson.sf(k_max, mu))
    share = pi * np.sqrt(counts)
    alloc = np.maximum(np.floor(total * share / share.sum()), 1).astype(np.int64)
    alloc[pi < pi.max() * 1e-6] = 0  # negligible counts: bounded by their weight instead
    golden = ctx.golden
    out = golden.values[golden.graph.output]
    golden_top1 = out.reshape(len(out), -1).argmax(axis=1)
    failures = np.zeros(len(counts))
    for s, (k, n) in enumerate(zip(counts.tolist(), alloc.tolist())):
        seed = int(np.random.SeedSequence([settings.seed, 0xCE27, k]).generate_state(1)[0])
        for start in range(0, n, max(1, CHUNK // k)):
            index = np.arange(start, min(n, start + max(1, CHUNK // k)), dtype=np.int64)
            samples, table = _draw(seed, index, k, sampler, golden.samples, run)
            outputs, _ = faulty_outputs(golden, samples, table, protected=ctx.protected)
            top1 = outputs.reshape(len(index), -1).argmax(axis=1)
            failures[s] += int(np.sum(top1 != golden_top1[samples]))
    bounds = stratified_interval(
        np.append(pi, tail), np.append(failures, 0), np.append(alloc, 0), settings.confidence
    )
    lower = stratified_interval(pi, failures, alloc, 1 - 2 * (1 - settings.confidence))["lo"]
    verdict = (
        "certified"
        if bounds["upper"] <= target
        else "refuted"
        if lower > target
        else "inconclusive"
    )
    return {
        **record,
        "failure": bounds["point"],
        "lo": bounds["lo"],
        "hi": bounds["hi"],
        "upper": bounds["upper"],
        "lower": lower,
        "injections": int(alloc.sum()),
        "strata": [
            {"faults": int(k), "weight": float(p), "injections": int(n), "failures": int(f)}
            for k, p, n, f in zip(counts, pi, alloc, failures)
        ],
        "tail": tail,
        "verdict": verdict,
        "certified": verdict == "certified",
    }


def _draw(
    seed: int, index: np.ndarray, k: int, sampler: Any, n_samples: int, run: CampaignSettings
) -> tuple[np.ndarray, FaultTable]:
    """Samples and exactly ``k`` faults of each injection in ``index`` (uniform sites)."""
    samples = words_below(task_words(seed, index, np.full(len(index), SAMPLE_WORD)), n_samples)
    owner = np.repeat(index, k)
    nth = np.tile(np.arange(k, dtype=np.int64), len(index))
    sites = words_below(task_words(seed, owner, FIRST_FAULT_WORD + 2 * nth), sampler.total)
    cycles = task_words(seed, owner, FIRST_FAULT_WORD + 2 * nth + 1) >> np.uint64(1)
    injection = np.repeat(np.arange(len(index), dtype=np.int64), k)
    table = sampler.locate(
        injection, sites, cycles.astype(np.int64), model=run.model, mbu_width=run.mbu_width
    )
    return samples, table
