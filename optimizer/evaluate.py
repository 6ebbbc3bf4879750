"""Evaluate one accelerator design on a workload: the ``evaluate(design) -> Evaluation`` the
search methods call.

A design (a point of the ``optimize:`` space) is applied to the workload's config — array size
and dataflow, bit widths, accumulator width, reserved MSBs r, hardened bits per register class,
protected fraction p, redundant units S — and then:

1. the float model is re-quantised (cached per :func:`workloads.quantize.quantization_key`:
   every design that shares a quantisation shares its integer graph and inputs);
2. the accelerator is simulated: latency (cycles of one batch), area breakdown, energy, clean
   accuracy;
3. reliability at the workload's fault rate is estimated to first order (DESIGN.md "First-order
   reliability"): P(failure) = 1 - exp(-rate x exposed sites x AVF), see the estimators below.

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
import hashlib
import json
import math
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from accelsim.config import REGISTER_CLASSES, WorkloadConfig, validation_error
from accelsim.errors import AccelsimError, Infeasible
from accelsim.jsonio import write_json_atomic
from accelsim.simulation import register_widths, simulate
from accelsim.workload import Workload
from faults.protection import fixed_designs, workload_units
from faults.stats import clopper_pearson

from .baselines import exhaustive_search, random_search
from .config import OptimizeConfig, parse_optimize
from .log import CHECK_KEY, Evaluation, Progress, ProgressCallback, SearchResult, Verify
from .loop import EvaluatorPool, bayesian_optimize, evaluate_design

RELIABILITY_FLOOR = 1e-3  # P_fail below (1 - R) x this counts as "this much better", no more


class DesignEvaluator:
    """``evaluator(design) -> Evaluation`` for one workload and its ``optimize:`` section.

    ``estimator``: the reliability estimator (default: :class:`StratifiedEstimator`, its
    injection records cached under ``cache_dir``). Quantised workloads are cached in memory
    for the evaluator's lifetime. :meth:`certify` checks a design by direct Monte-Carlo.
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
        self._quantised: dict[str, Workload] = {}
        self._memo: dict[str, Evaluation] = {}  # one evaluation per design, shared by searches
        self.evaluations = 0  # designs actually evaluated (memo misses)

    def __getstate__(self) -> dict[str, Any]:
        # shipped once to each worker: per-process caches stay behind and are rebuilt there
        state = dict(self.__dict__)
        state.update(_quantised={}, _memo={}, evaluations=0)
        return state

    # ------------------------------------------------------------------ applying a design
    def base_config(self, design: Mapping[str, Any]) -> WorkloadConfig:
        """The workload config with the design's array, dataflow and quantisation applied
        (protection comes later: it depends on the quantised graph). ValidationError if the
        combination is invalid (e.g. r >= activation_bits - 1)."""
        d = self.opt.readable(design)
        data = self.workload.config.model_dump()
        array = data["accelerator"]["array"]
        quant = data["quantization"]
        for name, target, key in (
            ("array_rows", array, "rows"),
            ("array_cols", array, "cols"),
            ("dataflow", array, "dataflow"),
            ("weight_bits", quant, "weight_bits"),
            ("activation_bits", quant, "activation_bits"),
            ("acc_bits", quant, "acc_bits"),
            ("reserved_msbs", quant, "reserved_msbs"),
        ):
            if name in d:
                target[key] = d[name]
        if "redundant_units" in d:
            data["accelerator"]["protection"]["redundant_units"] = int(d["redundant_units"])
        return WorkloadConfig.model_validate(data)

    def quantised(self, config: WorkloadConfig) -> Workload:
        """The workload under ``config``; re-quantised only once per quantisation."""
        key = self._quantisation_key(config)
        cached = self._quantised.get(key)
        if cached is None:
            cached = self.workload.with_config(config)
            self._quantised[key] = cached
        return dataclasses.replace(cached, config=config)

    def _quantisation_key(self, config: WorkloadConfig) -> str:
        float_graph = self.workload.float_graph
        if float_graph is None:  # an integer graph: nothing to re-quantise
            return "integer"
        from workloads.quantize import quantization_key, spec_from_config

        return quantization_key(float_graph, spec_from_config(config.quantization))

    def protection(
        self, workload: Workload, design: Mapping[str, Any]
    ) -> tuple[dict[str, list[int]], dict[str, np.ndarray] | None]:
        """(hardened bit positions per register class, protected neurons per layer or None)."""
        widths = register_widths(workload.graph).as_dict()
        configured = workload.config.accelerator.protection.hardened_bits
        hardened = {c: sorted(set(getattr(configured, c))) for c in REGISTER_CLASSES}
        counts = {  # "harden k bits" of a register narrower than k hardens all of it
            c: min(int(design[f"hardened_bits.{c}"]), widths[c])
            for c in REGISTER_CLASSES
            if f"hardened_bits.{c}" in design
        }
        if counts:
            if self.opt.hardening == "msb":
                chosen = _msb_bits(widths, counts)
            else:
                chosen = self.estimator.select_bits(workload, counts)
            hardened.update({c: sorted(int(b) for b in bits) for c, bits in chosen.items()})
        protected = None
        fraction = float(design.get("protected_fraction", 0.0))
        if fraction > 0:
            protected = self.estimator.select_neurons(workload, fraction)
        return hardened, protected

    # ------------------------------------------------------------------ evaluation
    def __call__(self, design: dict[str, Any]) -> Evaluation:
        key = json.dumps(design, sort_keys=True)
        if key not in self._memo:
            self.evaluations += 1
            self._memo[key] = self._evaluate(dict(design))
        return self._memo[key]

    def configure(self, design: Mapping[str, Any]) -> tuple[Workload, dict[str, np.ndarray] | None]:
        """The workload as ``design`` configures it (quantised, hardened) and its protected
        neurons. ValidationError for an invalid combination, Infeasible if it cannot run."""
        config = self.base_config(design)
        workload = self.quantised(config)
        hardened, protected = self.protection(workload, design)
        data = config.model_dump()
        data["accelerator"]["protection"]["hardened_bits"] = hardened
        return dataclasses.replace(workload, config=WorkloadConfig.model_validate(data)), protected

    def _evaluate(self, design: dict[str, Any]) -> Evaluation:
        readable = self.opt.readable(design)
        try:
            workload, protected = self.configure(design)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            return Evaluation.cannot_run(
                design, f"invalid combination: {first['msg']}", {"design": readable}
            )
        try:
            result = simulate(workload, protected=protected)
        except Infeasible as exc:
            return Evaluation.cannot_run(design, exc.message, {"design": readable})
        hardened = workload.config.accelerator.protection.hardened_bits
        hardened = {c: list(getattr(hardened, c)) for c in REGISTER_CLASSES}
        totals = result.totals()
        latency = int(totals["total_cycles"])
        area = float(result.area["total_um2"])
        if not self.opt.section.sram_in_objective:
            area -= sum(float(v) for k, v in result.area.items() if k.endswith("buffer_um2"))
        energy_per_inference = float(totals["energy_pj"]) / max(workload.config.batch, 1)
        confidence = self.opt.section.reliability.confidence
        metrics: dict[str, Any] = {
            "design": readable,
            "area_um2": dict(result.area),
            "latency_cycles": latency,
            "latency_us": float(totals["latency_us"]),
            "energy_pj_per_inference": energy_per_inference,
            "accuracy": result.accuracy,
            "hardened_bits": hardened,
            "protected_neurons": 0
            if protected is None
            else int(sum(len(v) for v in protected.values())),
        }
        constraints: dict[str, float] = {}
        limits = self.opt.constraints
        if limits.min_accuracy is not None:
            if result.accuracy is None:
                raise AccelsimError(
                    "an accuracy constraint needs a labelled dataset",
                    key="optimize.constraints.min_accuracy",
                )
            # decided on the lower bound: the test set is a finite sample of the task
            samples = len(result.outputs) if result.outputs is not None else len(workload.inputs)
            correct = round(result.accuracy * samples)
            # one-sided at `confidence` = the lower end of the two-sided 2c - 1 interval
            lower = float(clopper_pearson(correct, samples, 2 * confidence - 1)[0])
            metrics["accuracy_lo"] = lower
            metrics["accuracy_samples"] = samples
            constraints["accuracy"] = float(limits.min_accuracy - lower)
        if self.rate > 0:
            reliability = self.estimator.reliability(workload, protected, self.rate, self.unit)
            metrics["reliability"] = reliability
            if limits.min_reliability is not None:
                constraints["reliability"] = self.reliability_constraint(
                    reliability.get("failure_upper", reliability["failure_hi"])
                )
        if limits.max_latency_cycles is not None:
            constraints["latency"] = latency / limits.max_latency_cycles - 1.0
        objective = {
            "area": area,
            "energy": energy_per_inference,
            "area_latency": area * latency,
        }[self.opt.objective]
        return Evaluation(dict(design), float(objective), constraints, metrics)

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
        workload, protected = self.configure(evaluation.design)
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


# --------------------------------------------------------------------------- reliability
class ReliabilityEstimator:
    """What the evaluator needs from the fault side: which bits to harden, which neurons to
    protect, and the failure probability of a configured design."""

    method = "none"

    def select_bits(self, workload: Workload, counts: Mapping[str, int]) -> dict[str, list[int]]:
        """The ``counts[c]`` most vulnerable bit positions of each register class ``c``."""
        raise NotImplementedError

    def select_neurons(self, workload: Workload, fraction: float) -> dict[str, np.ndarray]:
        """The top ``fraction`` of neurons (output channels) by vulnerability, per layer."""
        raise NotImplementedError

    def reliability(
        self, workload: Workload, protected: Mapping[str, np.ndarray] | None, rate: float, unit: str
    ) -> dict[str, Any]:
        """``{"reliability", "lo", "hi", "failure", "failure_lo", "failure_hi",
        "expected_faults", "method"}`` per inference at ``rate`` (95% intervals)."""
        raise NotImplementedError


def _reliability_record(
    failure: float, lo: float, hi: float, expected: float, method: str
) -> dict[str, Any]:
    return {
        "reliability": 1.0 - failure,
        "lo": 1.0 - hi,
        "hi": 1.0 - lo,
        "failure": failure,
        "failure_lo": lo,
        "failure_hi": hi,
        "expected_faults": expected,
        "method": method,
    }


def _msb_bits(widths: Mapping[str, int], counts: Mapping[str, int]) -> dict[str, list[int]]:
    return {c: list(range(max(widths[c] - int(k), 0), widths[c])) for c, k in counts.items()}


class CampaignEstimator(ReliabilityEstimator):
    """First-order reliability from a direct single-fault Monte-Carlo campaign per design.

    ``AVF`` = P(failure | one flip uniform over the design's exposed register bits and cycles,
    hardened bits excluded, protected neurons recomputed), measured with ``injections``
    single-fault inferences (Wilson interval); ``P(failure) = 1 - exp(-rate x sites x AVF)``.
    No vulnerability ranking is available here, so ``select_bits`` hardens MSBs and
    ``select_neurons`` protects, per layer, the channels with the largest weight L1 norm
    (their faults carry furthest).
    """

    method = "single-fault campaign"

    def __init__(self, injections: int = 300, seed: int = 0) -> None:
        self.injections = injections
        self.seed = seed

    def select_bits(self, workload: Workload, counts: Mapping[str, int]) -> dict[str, list[int]]:
        return _msb_bits(register_widths(workload.graph).as_dict(), counts)

    def select_neurons(self, workload: Workload, fraction: float) -> dict[str, np.ndarray]:
        from accelsim.hw.accelerator import GEMM_OPS

        chosen = {}
        for node in workload.graph.nodes:
            if node.op not in GEMM_OPS:
                continue
            weights = np.asarray(node.params["weight"], dtype=np.int64)
            norms = np.abs(weights.reshape(weights.shape[0], -1)).sum(axis=1)
            count = math.ceil(fraction * len(norms) - 1e-9)
            chosen[node.name] = np.sort(np.argsort(-norms, kind="stable")[:count])
        return chosen

    def reliability(
        self, workload: Workload, protected: Mapping[str, np.ndarray] | None, rate: float, unit: str
    ) -> dict[str, Any]:
        from faults.campaign import CampaignSettings, campaign, prepare
        from faults.sampling import exposed_bit_cycles

        faults = workload.config.faults
        registers = tuple(faults.registers)
        settings = CampaignSettings(mode="single", registers=registers)
        context = prepare(workload, settings, samples=faults.samples, protected=protected)
        sites = exposed_bit_cycles(context.exposure, registers, unit=unit)
        expected = rate * sites
        if sites == 0:
            return _reliability_record(0.0, 0.0, 0.0, 0.0, self.method)
        result = campaign(
            workload,
            injections=self.injections,
            settings=settings,
            seed=self.seed,
            workers=1,
            context=context,
        )
        avf = result.summary["sdc"]

        def failure(p: float) -> float:
            return -math.expm1(-expected * p)

        return _reliability_record(
            failure(avf["rate"]), failure(avf["lo"]), failure(avf["hi"]), expected, self.method
        )


class StratifiedEstimator(ReliabilityEstimator):
    """First-order reliability from stratified single-fault injections (:mod:`faults.strata`).

    One :class:`~faults.strata.StratifiedInjections` store per (quantisation, array,
    protected neurons), measured on the design's own array without hardening: the records are
    computed on demand and cached under ``cache_dir``, so designs that differ only in hardened
    bits share them. A design costs its exposure (its array's bit-cycles per layer and bit,
    hardened bits weigh 0) and the injections its estimate still needs: a pilot per exposed
    stratum, then Neyman rounds until the interval is within ``settings.precision`` of the
    estimate or the decision against the target is clear. Bits are hardened by descending
    contribution to the unprotected design's failures, neurons protected by
    :func:`faults.strata.rank_neurons` (per neuron where the layer's neurons differ
    significantly, else by layer).
    """

    method = "first order (stratified single-fault injections, per-sample model)"

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        settings: Any = None,
        seed: int = 0,
        target: float | None = None,
    ) -> None:
        from faults.strata import AllocationSettings

        self.cache_dir = cache_dir
        self.settings = settings or AllocationSettings()
        self.seed = seed
        self.target = target
        self._stores: dict[str, Any] = {}
        self._reference: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)  # stores hold a golden run: each worker builds its own
        state.update(_stores={}, _reference={})
        return state

    def store(self, workload: Workload, protected: Mapping[str, np.ndarray] | None = None) -> Any:
        """The injection records of ``workload``'s quantised graph on its own array (bare of
        hardening), with ``protected`` neurons recomputed by the redundant units."""
        from faults.strata import StratifiedInjections

        protected = {k: sorted(int(n) for n in v) for k, v in (protected or {}).items() if len(v)}
        array = workload.config.accelerator.model_dump(mode="json", exclude={"protection"})
        key = json.dumps([workload.graph.content_hash(), array, protected], sort_keys=True)
        if key not in self._stores:
            faults = workload.config.faults
            self._stores[key] = StratifiedInjections(
                workload,
                registers=faults.registers,
                unit=faults.unit,
                model=faults.model,
                mbu_width=faults.mbu_width,
                samples=faults.samples,
                seed=self.seed,
                cache_dir=self.cache_dir,
                protected=protected,
            )
        return self._stores[key]

    def reference_counts(self, workload: Workload) -> tuple[np.ndarray, np.ndarray]:
        """(weights, trials) of the unprotected design on ``workload``'s array at its adaptive
        allocation: what bits and neurons are ranked by (one ranking per quantisation and
        array)."""
        from faults.strata import adaptive_estimate

        store = self.store(workload)
        if store.key not in self._reference:
            rate = workload.config.faults.rate
            weights = store.weights(None, rate if rate > 0 else 1.0)
            # ranking neurons needs about twice the precision a design's estimate does: at
            # ±20% the rankings of two seeds barely agree (bench.nvf_stability)
            ranking = dataclasses.replace(self.settings, precision=self.settings.precision / 2)
            _, trials = adaptive_estimate(store, weights, settings=ranking)
            self._reference[store.key] = (weights, trials)
        return self._reference[store.key]

    def select_bits(self, workload: Workload, counts: Mapping[str, int]) -> dict[str, list[int]]:
        from faults.strata import rank_bits

        weights, trials = self.reference_counts(workload)
        ranking = rank_bits(self.store(workload), weights, trials)
        return {c: sorted(ranking.get(c, [])[: int(k)]) for c, k in counts.items()}

    def select_neurons(self, workload: Workload, fraction: float) -> dict[str, np.ndarray]:
        from faults.strata import rank_neurons, top_neurons

        store = self.store(workload)
        if not any(store.neurons.values()):  # input stationary: columns are not neurons
            return CampaignEstimator().select_neurons(workload, fraction)
        weights, trials = self.reference_counts(workload)
        ranking = rank_neurons(store, weights, trials, confidence=self.settings.confidence)
        return top_neurons(ranking, fraction)

    def reliability(
        self, workload: Workload, protected: Mapping[str, np.ndarray] | None, rate: float, unit: str
    ) -> dict[str, Any]:
        from faults.strata import adaptive_estimate

        store = self.store(workload, protected)
        weights = store.weights(design_exposure(workload), rate)
        est, _ = adaptive_estimate(store, weights, settings=self.settings, target=self.target)
        record = _reliability_record(
            est["failure"], est["lo"], est["hi"], est["expected_faults"], self.method
        )
        record.update(
            failure_upper=est["upper"],
            injections=est["injections"],
            zero_failure_strata=est["zero_failure_strata"],
            strata=est["strata"],
            precision_reached=est["precision_reached"],
            confidence=est["confidence"],
        )
        return record


def design_exposure(workload: Workload) -> Any:
    """What one inference (batch 1) exposes on the workload's own array: the schedule of each
    GEMM layer, its register widths and hardening (no golden run needed). Infeasible if a
    layer does not fit."""
    from accelsim.hw.accelerator import GEMM_OPS
    from accelsim.schedule import schedule_layer
    from faults.exposure import Exposure, LayerExposure

    accel = workload.config.accelerator
    graph = workload.graph
    layers = [
        LayerExposure.from_schedule(
            schedule_layer(graph, node, accel, batch=1), accel.array.dataflow, accel.array.rows
        )
        for node in graph.nodes
        if node.op in GEMM_OPS
    ]
    return Exposure(layers, register_widths(graph), accel.protection.hardened_bits)


def make_estimator(
    workload: Workload, opt: OptimizeConfig, *, cache_dir: Path | None = None
) -> ReliabilityEstimator:
    """The stratified first-order estimator with the ``optimize.reliability`` settings."""
    from faults.strata import AllocationSettings

    seed = 0 if workload.config.faults is None else workload.config.faults.seed
    r = opt.section.reliability
    settings = AllocationSettings(
        confidence=r.confidence,
        precision=r.relative_precision,
        pilot=r.pilot_per_stratum,
        max_injections=r.max_injections,
    )
    target = None
    if opt.constraints.min_reliability is not None:
        target = 1.0 - opt.constraints.min_reliability
    return StratifiedEstimator(cache_dir=cache_dir, seed=seed, settings=settings, target=target)


# --------------------------------------------------------------------------- the search driver
@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    """A finished ``optimize`` run: the search, the optional comparison search at the same
    budget, and the fixed protection designs evaluated on the best design's hardware."""

    workload: str
    config: OptimizeConfig
    search: SearchResult
    comparison: SearchResult | None
    fixed: dict[str, Evaluation]
    evaluated: int  # designs simulated by this process (the rest came from logs or memo)
    reliability_method: str
    log_paths: dict[str, str]

    @property
    def best(self) -> Evaluation | None:
        return self.search.best

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "optimize": self.config.to_dict(),
            "reliability_method": self.reliability_method,
            "best": None if self.best is None else self.best.to_dict(),
            "best_design": None if self.best is None else self.config.readable(self.best.design),
            "message": self.search.message,
            "search": self.search.to_dict(),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "fixed_designs": {name: ev.to_dict() for name, ev in self.fixed.items()},
            "logs": dict(self.log_paths),
        }


def run_key(workload: Workload, opt: OptimizeConfig) -> str:
    """Names a search's log: everything the evaluations depend on except budget and method, so
    a changed constraint or workload starts a fresh log while a larger budget resumes."""
    config = workload.config.model_dump(mode="json", exclude={"optimize"})
    section = opt.section.model_dump(mode="json", exclude={"budget", "method"})
    blob = json.dumps(
        {
            "config": config,
            "optimize": section,
            "space": opt.space.to_dict(),
            "graph": workload.graph.content_hash(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_search(
    method: str,
    opt: OptimizeConfig,
    evaluate: Callable[[dict[str, Any]], Evaluation],
    *,
    budget: int,
    log_path: Path | None,
    on_evaluation: ProgressCallback | None,
    batch_size: int = 1,
    evaluator_pool: EvaluatorPool | None = None,
    verify: Verify | None = None,
) -> SearchResult:
    """One search of ``opt.space`` with ``method`` (bo, random, exhaustive). ``batch_size`` and
    ``evaluator_pool`` apply to BO (the baselines evaluate one design at a time); ``verify``
    checks every design that would become the best (certificates)."""
    if method == "bo":
        return bayesian_optimize(
            opt.space,
            evaluate,
            budget=budget,
            n_initial=opt.n_initial,
            seed=opt.seed,
            log_path=log_path,
            on_evaluation=on_evaluation,
            batch_size=batch_size,
            evaluator_pool=evaluator_pool,
            verify=verify,
        )
    if method == "random":
        return random_search(
            opt.space,
            evaluate,
            budget=min(budget, opt.space.size),
            seed=opt.seed,
            log_path=log_path,
            on_evaluation=on_evaluation,
            verify=verify,
        )
    return exhaustive_search(
        opt.space, evaluate, log_path=log_path, on_evaluation=on_evaluation, verify=verify
    )


def optimize(
    workload: Workload,
    *,
    out_dir: str | Path | None = None,
    on_evaluation: ProgressCallback | None = None,
    budget: int | None = None,
    method: str | None = None,
    compare: bool = False,
    with_fixed: bool = True,
    estimator: ReliabilityEstimator | None = None,
    on_phase: Callable[[str, int], None] | None = None,
    batch_size: int = 1,
    evaluator_pool: EvaluatorPool | None = None,
) -> OptimizeResult:
    """Search the workload's ``optimize:`` space for the cheapest feasible design.

    ``out_dir``: the JSONL logs (appended as evaluations finish; a rerun resumes) and
    ``optimize.json`` (written atomically at the end). ``compare``: also run random search at
    the same budget (BO when ``method`` is random). ``with_fixed``: evaluate the fixed
    protection designs on the best design's hardware. ``on_phase(name, total)`` announces each
    search before it starts (for progress bars). ``batch_size`` q: BO proposes and evaluates q
    designs per iteration (its log is named ``...-q<q>``); ``evaluator_pool``: where designs
    are evaluated (BO batches and the fixed designs; see :class:`ProcessEvaluatorPool`,
    :class:`DaskEvaluatorPool`, :func:`pool_from_options`), default this process.
    """
    opt = parse_optimize(workload.config.optimize, workload=workload.config, file=workload.source)
    changes = {k: v for k, v in (("budget", budget), ("method", method)) if v is not None}
    if changes:
        try:
            opt = opt.with_updates(**changes)
        except ValidationError as exc:
            raise validation_error(
                exc, file=str(workload.source or "<workload>"), prefix="optimize"
            ) from None
    out = None if out_dir is None else Path(out_dir)
    evaluator = DesignEvaluator(
        workload, opt, cache_dir=None if out is None else out / "cache", estimator=estimator
    )
    key = run_key(workload, opt)
    logs: dict[str, str] = {}
    remote = [0]  # designs evaluated by the pool's workers (not counted by this evaluator)

    def count_remote(progress: Progress) -> None:
        if not progress.replayed:
            remote[0] += 1
        if on_evaluation is not None:
            on_evaluation(progress)

    def search(name: str) -> SearchResult:
        stem = f"optimize-{name}-{key}"
        initial = min(opt.n_initial, opt.budget, opt.space.size)
        if name == "bo" and initial < opt.n_initial:
            # a budget below n_initial draws a smaller Latin hypercube: another sequence,
            # which a larger budget cannot continue; keep it out of the main log
            stem += f"-initial{initial}"
        if name == "bo" and batch_size > 1:  # another sequence: its own log
            stem += f"-q{batch_size}"
        log_path = None if out is None else out / f"{stem}.jsonl"
        if log_path is not None:
            logs[name] = str(log_path)
        total = opt.space.size if name == "exhaustive" else min(opt.budget, opt.space.size)
        if on_phase is not None:
            on_phase(name, total)
        pooled = name == "bo" and evaluator_pool is not None
        return run_search(
            name,
            opt,
            evaluator,
            budget=opt.budget,
            log_path=log_path,
            on_evaluation=count_remote if pooled else on_evaluation,
            batch_size=batch_size,
            evaluator_pool=evaluator_pool,
            verify=evaluator.certify if evaluator.certifies else None,
        )

    result = search(opt.method)
    comparison = None
    if compare:
        comparison = search("random" if opt.method != "random" else "bo")
    if evaluator.certifies:
        result = certified_message(result)
        comparison = None if comparison is None else certified_message(comparison)
    fixed: dict[str, Evaluation] = {}
    if with_fixed:
        reference = (
            result.best.design if result.best is not None else _workload_design(opt, workload)
        )
        designs = fixed_designs(opt, reference, default_units=workload_units(workload))
        if on_phase is not None:
            on_phase("fixed designs", len(designs))
        if evaluator_pool is None:
            outcomes: Iterator[Evaluation] = (evaluator(d) for d in designs.values())
        else:
            outcomes = iter(evaluator_pool.map(evaluator, list(designs.values())))
            remote[0] += len(designs)
        for i, name in enumerate(designs):
            fixed[name] = next(outcomes)
            if evaluator.certifies and fixed[name].ran:  # the comparison table shows MC too
                fixed[name] = evaluator.certify(fixed[name])
            if on_evaluation is not None:
                on_evaluation(Progress(i, len(designs), fixed[name], result.best, False))
    outcome = OptimizeResult(
        workload=workload.name,
        config=opt,
        search=result,
        comparison=comparison,
        fixed=fixed,
        evaluated=evaluator.evaluations + remote[0],
        reliability_method=evaluator.estimator.method if evaluator.estimator else "none",
        log_paths=logs,
    )
    if out is not None:
        write_json_atomic(out / "optimize.json", outcome.to_dict())
    return outcome


def certified_message(search: SearchResult) -> SearchResult:
    """The search's message in terms of certificates (every feasible answer holds one)."""
    checked = [e for e in search.evaluations if CHECK_KEY in e.metrics]
    verdicts = [e.metrics[CHECK_KEY]["verdict"] for e in checked]
    failed = f"{verdicts.count('refuted')} refuted, {verdicts.count('inconclusive')} inconclusive"
    if search.best is None:
        message = (
            f"no certified design in {len(search.evaluations)} evaluations: "
            f"{len(checked)} candidate(s) checked by direct Monte-Carlo ({failed}); "
            + search.message
        )
    else:
        cert = search.best.metrics[CHECK_KEY]
        message = (
            f"{search.message.replace('best feasible', 'best certified', 1)}; "
            f"P(failure) {cert['failure']:.3g} [{cert['lo']:.3g}, {cert['hi']:.3g}], "
            f"upper {cert['upper']:.3g} <= {cert['target']:.3g} on "
            f"{cert['injections']} injections; {len(checked)} checked ({failed})"
        )
    return dataclasses.replace(search, message=message)


def _workload_design(opt: OptimizeConfig, workload: Workload) -> dict[str, Any]:
    """The design closest to the workload's own config (when no feasible design was found)."""
    cfg = workload.config
    own = {
        "array_rows": cfg.accelerator.array.rows,
        "array_cols": cfg.accelerator.array.cols,
        "weight_bits": cfg.quantization.weight_bits,
        "activation_bits": cfg.quantization.activation_bits,
        "acc_bits": cfg.quantization.acc_bits,
        "reserved_msbs": cfg.quantization.reserved_msbs,
    }
    design = {}
    for var in opt.space.variables:
        if var.name == "dataflow":
            names = opt.categories["dataflow"]
            flow = cfg.accelerator.array.dataflow
            design[var.name] = names.index(flow) if flow in names else 0
        elif var.name in own:
            design[var.name] = min(var.values, key=lambda v, t=own[var.name]: abs(v - t))
        else:
            design[var.name] = var.values[0]
    return design


# --------------------------------------------------------------------------- evaluator pools
# per worker process: the evaluators installed by the pool initializer, by token (each is
# unpickled, and so builds its caches, once per worker)
_WORKER_EVALUATORS: dict[str, Callable[[dict[str, Any]], Evaluation]] = {}


def _install_evaluator(token: str, evaluate: Callable[[dict[str, Any]], Evaluation]) -> None:
    _WORKER_EVALUATORS[token] = evaluate


def _evaluate_in_worker(token: str, design: dict[str, Any]) -> Evaluation:
    return evaluate_design(_WORKER_EVALUATORS[token], design)


class ProcessEvaluatorPool:
    """An :class:`~optimizer.loop.EvaluatorPool` on a local process pool (spawn start method:
    safe with threads and Numba, like :class:`faults.runner.ProcessExecutor`).

    The evaluation callable (e.g. a :class:`DesignEvaluator`) must be picklable; it is sent once
    per worker through the pool initializer, so each worker builds its evaluator once and keeps
    its caches across designs. A different callable restarts the workers.
    """

    def __init__(self, workers: int, *, start_method: str = "spawn") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.start_method = start_method
        self._pool: ProcessPoolExecutor | None = None
        self._evaluate: Callable[[dict[str, Any]], Evaluation] | None = None
        self._token = ""

    def map(
        self, evaluate: Callable[[dict[str, Any]], Evaluation], designs: Sequence[dict[str, Any]]
    ) -> Iterator[Evaluation]:
        """Start every design now; yield the evaluations in the order of ``designs``."""
        if self._pool is None or self._evaluate is not evaluate:
            self.close()
            self._token = uuid.uuid4().hex
            self._evaluate = evaluate
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context(self.start_method),
                initializer=_install_evaluator,
                initargs=(self._token, evaluate),
            )
        return self._pool.map(
            _evaluate_in_worker, [self._token] * len(designs), [dict(d) for d in designs]
        )

    def close(self) -> None:
        """Stop the workers (pending designs are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._evaluate = None

    def __enter__(self) -> ProcessEvaluatorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskEvaluatorPool:
    """An :class:`~optimizer.loop.EvaluatorPool` on a Dask cluster (``distributed``, optional).

    Exactly one of ``client`` (left open by :meth:`close`), ``scheduler`` (``tcp://HOST:PORT``)
    or ``workers`` (a local cluster of that many single-threaded worker processes). The
    evaluation callable is scattered to every worker once (``broadcast``): each worker holds
    one copy, with its caches, for every design it evaluates. Designs go out with
    ``client.map`` and come back in order.
    """

    def __init__(
        self, *, client: Any = None, scheduler: str | None = None, workers: int | None = None
    ) -> None:
        from faults.dask_executor import DaskConnection

        self._connection = DaskConnection(client=client, scheduler=scheduler, workers=workers)
        self.client = self._connection.client
        self._evaluate: Callable[[dict[str, Any]], Evaluation] | None = None
        self._scattered: Any = None

    def map(
        self, evaluate: Callable[[dict[str, Any]], Evaluation], designs: Sequence[dict[str, Any]]
    ) -> Iterator[Evaluation]:
        """Submit every design now; yield the evaluations in the order of ``designs``."""
        if self._evaluate is not evaluate:
            if self._scattered is not None:
                self._scattered.release()
            # a one-item list: scatter would split a list or dict into pieces
            [self._scattered] = self.client.scatter([evaluate], broadcast=True, hash=False)
            self._evaluate = evaluate
        futures = self.client.map(
            evaluate_design,
            [self._scattered] * len(designs),
            [dict(d) for d in designs],
            pure=False,
        )
        return self._in_order(futures)

    def _in_order(self, futures: list[Any]) -> Iterator[Evaluation]:
        try:
            for future in futures:
                yield future.result()
        finally:  # stopped early (an error, a crash): do not leave work running
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        """Release the scattered evaluator; close the client and cluster this pool started."""
        if self._scattered is not None:
            self._scattered.release()
            self._scattered = None
            self._evaluate = None
        self._connection.close()

    def __enter__(self) -> DaskEvaluatorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pool_from_options(
    *, workers: int | None = None, scheduler: str | None = None, dask_workers: int | None = None
) -> Any:
    """The pool a command line asks for: a Dask scheduler (``scheduler``, else the
    ``DASK_SCHEDULER_ADDRESS`` environment variable), else a local Dask cluster of
    ``dask_workers``, else a process pool of ``workers`` (> 1), else None (this process)."""
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if address:
        return DaskEvaluatorPool(scheduler=address)
    if dask_workers:
        return DaskEvaluatorPool(workers=dask_workers)
    if workers is not None and workers > 1:
        return ProcessEvaluatorPool(workers)
    return None
