"""Reliability estimators: what the design evaluator asks the fault side (which bits to
harden, which neurons to protect, the first-order P(failure) of a configured design).

* :class:`StratifiedEstimator` (the default, :func:`make_estimator`): first order from the
  stratified single-fault injections of :mod:`faults.strata`, ranked and allocated as there.
* :class:`CampaignEstimator`: first order from one direct single-fault campaign per design
  (no ranking: MSBs hardened, neurons by weight norm).
* :func:`design_exposure`: what one inference exposes on a design's array (no golden run).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.cost import register_widths
from accelsim.workload import Workload

from .config import OptimizeConfig


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


def reliability_record(
    failure: float, lo: float, hi: float, expected: float, method: str
) -> dict[str, Any]:
    """The record :meth:`ReliabilityEstimator.reliability` returns, from P(failure) and its
    interval."""
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


def msb_bits(widths: Mapping[str, int], counts: Mapping[str, int]) -> dict[str, list[int]]:
    """The ``counts[c]`` most significant bit positions of each register class ``c``."""
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
        return msb_bits(register_widths(workload.graph).as_dict(), counts)

    def select_neurons(self, workload: Workload, fraction: float) -> dict[str, np.ndarray]:
        from accelsim.ops import GEMM_OPS

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
            return reliability_record(0.0, 0.0, 0.0, 0.0, self.method)
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

        return reliability_record(
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
        record = reliability_record(
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
    from accelsim.ops import GEMM_OPS
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
