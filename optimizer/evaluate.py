"""Evaluate one accelerator design on a workload: the ``evaluate(design) -> Evaluation`` the
search methods call.

A design (a point of the ``optimize:`` space) is applied to the workload's config — array size
and dataflow, bit widths, accumulator width, reserved MSBs r, hardened bits per register class,
protected fraction p, redundant units S — and then:

1. the design is applied to the workload (:class:`optimizer.design.DesignConfigurator`): the
   float model re-quantised (cached per :func:`accelsim.quantize.quantization_key`), the
   hardened bits and protected neurons chosen;
2. the accelerator is simulated: latency (cycles of one batch), area breakdown, energy, clean
   accuracy;
3. reliability at the workload's fault rate is estimated to first order (DESIGN.md "First-order
   reliability"): P(failure) = 1 - exp(-rate x exposed sites x AVF), see
   :mod:`optimizer.estimators`.

Objective and constraints (DESIGN.md "Optimisation"), normalised so that ``<= 0`` is feasible:

* ``accuracy``: ``A - accuracy`` (fractions);
* ``reliability``: ``log10(P_fail / (1 - R))``, with ``P_fail`` floored at ``(1 - R) / 1000``:
  failure probabilities span orders of magnitude, and a log keeps the GP's surface smooth;
* ``latency``: ``cycles / L - 1``.

A design that cannot run (a tile does not fit the buffers, protected neurons without redundant
units, an invalid bit-width combination) is a result: an :class:`Evaluation` with its
``infeasible_reason``, never an exception.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from accelsim.config import REGISTER_CLASSES
from accelsim.errors import AccelsimError, Infeasible
from accelsim.results import SimResult
from accelsim.simulation import simulate
from accelsim.workload import Workload
from faults.stats import clopper_pearson

from .config import OptimizeConfig
from .design import DesignConfigurator
from .estimators import ReliabilityEstimator, make_estimator
from .log import CHECK_KEY, Evaluation

RELIABILITY_FLOOR = 1e-3  # P_fail below (1 - R) x this counts as "this much better", no more


class DesignEvaluator:
    """``evaluator(design) -> Evaluation`` for one workload and its ``optimize:`` section.

    ``estimator``: the reliability estimator (default:
    :class:`~optimizer.estimators.StratifiedEstimator`, its injection records cached under
    ``cache_dir``; none when nothing needs vulnerability factors). ``designs`` applies a design
    to the workload. Each design is evaluated once per evaluator (memo). :meth:`certify` checks
    a design by direct Monte-Carlo.
    """

    def __init__(
        self,
        workload: Workload,
        opt_config: OptimizeConfig,
        *,
        cache_dir: str | Path | None = None,
        estimator: ReliabilityEstimator | None = None,
    ) -> None:
        self.workload = workload
        self.opt = opt_config
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        faults = workload.config.faults
        self.rate = 0.0 if faults is None else float(faults.rate)
        self.unit = "bit_cycle" if faults is None else faults.unit
        needs_vf = self.rate > 0 or any(
            name.startswith("hardened_bits.") or name == "protected_fraction"
            for name in opt_config.space.names
        )
        self.estimator = estimator or (
            make_estimator(workload, opt_config, cache_dir=self.cache_dir) if needs_vf else None
        )
        self.designs = DesignConfigurator(workload, opt_config, self.estimator)
        self._memo: dict[str, Evaluation] = {}  # one evaluation per design, shared by searches
        self.evaluations = 0  # designs actually evaluated (memo misses)

    def __getstate__(self) -> dict[str, Any]:
        # shipped once to each worker: per-process caches stay behind and are rebuilt there
        return {**self.__dict__, "_memo": {}, "evaluations": 0}

    def __call__(self, design: dict[str, Any]) -> Evaluation:
        key = json.dumps(design, sort_keys=True)
        if key not in self._memo:
            self.evaluations += 1
            self._memo[key] = self._evaluate(dict(design))
        return self._memo[key]

    def _evaluate(self, design: dict[str, Any]) -> Evaluation:
        readable = self.opt.readable(design)
        try:
            workload, protected = self.designs.configure(design)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            return Evaluation.cannot_run(
                design, f"invalid combination: {first['msg']}", {"design": readable}
            )
        try:
            result = simulate(workload, protected=protected)
        except Infeasible as exc:
            return Evaluation.cannot_run(design, exc.message, {"design": readable})
        metrics = self._metrics(readable, workload, protected, result)
        constraints = self._constraints(workload, protected, result, metrics)
        return Evaluation(dict(design), self._objective(workload, result), constraints, metrics)

    def _metrics(
        self,
        readable: dict[str, Any],
        workload: Workload,
        protected: Mapping[str, np.ndarray] | None,
        result: SimResult,
    ) -> dict[str, Any]:
        hardened = workload.config.accelerator.protection.hardened_bits
        totals = result.totals()
        return {
            "design": readable,
            "area_um2": dict(result.area),
            "latency_cycles": int(totals["total_cycles"]),
            "latency_us": float(totals["latency_us"]),
            "energy_pj_per_inference": _energy_per_inference(workload, result),
            "accuracy": result.accuracy,
            "hardened_bits": {c: list(getattr(hardened, c)) for c in REGISTER_CLASSES},
            "protected_neurons": 0
            if protected is None
            else int(sum(len(v) for v in protected.values())),
        }

    def _constraints(
        self,
        workload: Workload,
        protected: Mapping[str, np.ndarray] | None,
        result: SimResult,
        metrics: dict[str, Any],
    ) -> dict[str, float]:
        """The normalised constraints (<= 0 feasible); adds their evidence to ``metrics``."""
        constraints: dict[str, float] = {}
        limits = self.opt.constraints
        if limits.min_accuracy is not None:
            lower = self._accuracy_lower_bound(workload, result, metrics)
            constraints["accuracy"] = float(limits.min_accuracy - lower)
        if self.rate > 0:
            reliability = self.estimator.reliability(workload, protected, self.rate, self.unit)
            metrics["reliability"] = reliability
            if limits.min_reliability is not None:
                constraints["reliability"] = self.reliability_constraint(
                    reliability.get("failure_upper", reliability["failure_hi"])
                )
        if limits.max_latency_cycles is not None:
            constraints["latency"] = metrics["latency_cycles"] / limits.max_latency_cycles - 1.0
        return constraints

    def _accuracy_lower_bound(
        self, workload: Workload, result: SimResult, metrics: dict[str, Any]
    ) -> float:
        """The accuracy constraint is decided on the lower bound: the test set is a finite
        sample of the task."""
        if result.accuracy is None:
            raise AccelsimError(
                "an accuracy constraint needs a labelled dataset",
                key="optimize.constraints.min_accuracy",
            )
        samples = len(result.outputs) if result.outputs is not None else len(workload.inputs)
        correct = round(result.accuracy * samples)
        # one-sided at `confidence` = the lower end of the two-sided 2c - 1 interval
        confidence = self.opt.section.reliability.confidence
        lower = float(clopper_pearson(correct, samples, 2 * confidence - 1)[0])
        metrics["accuracy_lo"] = lower
        metrics["accuracy_samples"] = samples
        return lower

    def _objective(self, workload: Workload, result: SimResult) -> float:
        area = float(result.area["total_um2"])
        if not self.opt.section.sram_in_objective:
            area -= sum(float(v) for k, v in result.area.items() if k.endswith("buffer_um2"))
        if self.opt.objective == "area":
            return area
        if self.opt.objective == "energy":
            return _energy_per_inference(workload, result)
        return area * int(result.totals()["total_cycles"])  # area_latency

    def reliability_constraint(self, failure_upper: float) -> float:
        """``log10(upper / target)`` (<= 0 feasible), floored so a tiny bound is no outlier."""
        target = 1.0 - self.opt.constraints.min_reliability
        return math.log10(max(failure_upper, target * RELIABILITY_FLOOR) / target)

    # ------------------------------------------------------------------ certification
    @property
    def certifies(self) -> bool:
        """Whether feasible designs need a certificate (a reliability target at a rate)."""
        return (
            self.opt.section.certify.enabled
            and self.rate > 0
            and self.opt.constraints.min_reliability is not None
        )

    def certify(self, evaluation: Evaluation, checks_before: int | None = None) -> Evaluation:
        """``evaluation`` with the certificate of a direct Monte-Carlo campaign of its design
        (:func:`faults.certify.certify_design`). A design the campaign does not certify
        becomes infeasible, its reliability constraint the campaign's upper bound.

        ``checks_before``: certificates this search issued earlier. A search that certifies
        several candidates and returns one that passed must not pass a bad one more often
        than 1 - confidence in all: the j-th certificate (j = checks_before + 1) spends
        ``alpha x 6 / (pi² j²)`` of the error rate (the series sums to alpha). None: a
        stand-alone certificate at the full confidence with ``max_injections`` (the fixed
        designs of the comparison table)."""
        from faults.certify import CertifySettings, certify_design

        cfg = self.opt.section.certify
        confidence = self.opt.section.reliability.confidence
        if checks_before is not None:
            spent = (1.0 - confidence) * 6.0 / (math.pi**2 * (checks_before + 1) ** 2)
            confidence = 1.0 - spent
        settings = CertifySettings(
            confidence=confidence,
            min_injections=cfg.min_injections,
            max_injections=cfg.max_injections,
            seed=cfg.seed,
            # the same test samples as the first-order estimate
            samples=cfg.samples or self.workload.config.faults.samples,
        )
        workload, protected = self.designs.configure(evaluation.design)
        # sized for the first-order *upper* bound: a certificate that the prediction's own
        # uncertainty could defeat would be wasted injections
        reliability = evaluation.metrics.get("reliability", {})
        predicted = reliability.get("failure_upper", reliability.get("failure"))
        # a stand-alone certificate (the comparison table) spends the whole budget: its
        # interval is what a reader compares, not only its verdict
        certificate = certify_design(
            workload,
            target=1.0 - self.opt.constraints.min_reliability,
            predicted=predicted,
            protected=protected,
            settings=settings,
            injections=cfg.max_injections if checks_before is None else None,
        )
        constraints = dict(evaluation.constraints)
        constraints["reliability"] = self.reliability_constraint(certificate["upper"])
        metrics = {**evaluation.metrics, CHECK_KEY: certificate}
        return dataclasses.replace(evaluation, constraints=constraints, metrics=metrics)


def _energy_per_inference(workload: Workload, result: SimResult) -> float:
    return float(result.totals()["energy_pj"]) / max(workload.config.batch, 1)
