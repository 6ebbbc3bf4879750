"""Reliability of a design: first order from the vulnerability records, or by direct campaign.

* **First order** (the AVF method, DESIGN.md): :func:`first_order_failure` prices a design on
  the array its factors were measured on — its hardened bits are no fault sites (weight 0),
  its protected neurons are recomputed by the redundant units in injections of its own
  (:meth:`faults.strata.StratifiedInjections.with_protection`) — and hands it to
  :func:`faults.strata.adaptive_estimate`: P(failure per inference) with the
  per-sample model, its two-sided interval and one-sided upper bound, on injections allocated
  to this design's own strata (shared records: usually few new ones run). See
  :mod:`faults.strata` for the estimator and its bounds.
* **Direct campaign**: :func:`monte_carlo_failure` runs a plain rate-mode campaign (Poisson
  faults per inference, no model) with Wilson intervals; a *certificate* against a target
  (sized before it runs, stratified by fault count, verdict certified / refuted /
  inconclusive) is :func:`faults.certify.certify_design`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from accelsim.config import HardenedBitsConfig
from accelsim.errors import AccelsimError
from accelsim.workload import Workload

from .exposure import Exposure
from .fault import PE_REGISTERS
from .strata import AllocationSettings, adaptive_estimate
from .vulnerability import VulnerabilityFactors

Protected = Mapping[str, Iterable[int]]


def protected_arrays(
    vf: VulnerabilityFactors, protected: Protected | None
) -> dict[str, np.ndarray] | None:
    """``protected`` as sorted int64 channels per layer, checked against the factors' layers
    (None when nothing is protected)."""
    chosen = {
        layer: np.asarray(sorted({int(c) for c in channels}), dtype=np.int64)
        for layer, channels in (protected or {}).items()
    }
    chosen = {layer: channels for layer, channels in chosen.items() if len(channels)}
    if not chosen:
        return None
    if vf.nvf is None:
        raise AccelsimError(vf.nvf_unavailable or "NVF unavailable", key="protected_neurons")
    for layer, channels in chosen.items():
        if layer not in vf.nvf:
            raise AccelsimError(
                f"unknown layer {layer!r}", key="protected_neurons", allowed=tuple(vf.nvf)
            )
        count = len(vf.nvf[layer]["rate"])
        if channels[0] < 0 or channels[-1] >= count:
            raise AccelsimError(
                f"layer {layer} has no neuron {int(channels[-1])}",
                key="protected_neurons",
                allowed=f"0..{count - 1}",
            )
    return chosen


def design_weights(
    vf: VulnerabilityFactors,
    rate: float,
    hardened: HardenedBitsConfig | Mapping[str, Iterable[int]] | None = None,
) -> np.ndarray:
    """Expected faults per inference of each stratum for the design with ``hardened`` bits on
    the factors' array (:meth:`faults.strata.StratifiedInjections.weights`)."""
    if rate < 0 or not np.isfinite(rate):
        raise AccelsimError(f"rate {rate} is not a rate", key="faults.rate", allowed=">= 0")
    store = vf.records()
    if isinstance(hardened, Mapping):
        hardened = {c: list(hardened.get(c, ())) for c in PE_REGISTERS}
    exposure = Exposure(store.exposure.layers, store.exposure.widths, hardened)
    return store.weights(exposure, rate)


def first_order_failure(
    vf: VulnerabilityFactors,
    *,
    rate: float,
    hardened: HardenedBitsConfig | Mapping[str, Iterable[int]] | None = None,
    protected: Protected | None = None,
    target: float | None = None,
    settings: AllocationSettings | None = None,
) -> dict[str, Any]:
    """P(failure per inference) at ``rate`` (in the factors' unit) of the design with
    ``hardened`` bits and ``protected`` neurons (channels per layer), to first order.

    Keys of :meth:`faults.strata.StratifiedInjections.estimate` — ``failure``, ``lo``,
    ``hi`` (two-sided), ``upper`` (one-sided at the confidence), ``expected_faults``,
    ``expected_failures``, ``injections``, ``zero_failure_strata``, ... — plus
    ``precision_reached``, ``rate`` and ``unit``. ``settings``: the allocation (default the
    factors' own); ``target``: stop allocating once the decision against it is clear.
    """
    chosen = protected_arrays(vf, protected)
    weights = design_weights(vf, rate, hardened)
    settings = settings or vf.settings
    # a protected design has records of its own, run with its neurons recomputed
    store = vf.records().with_protection(chosen)
    est, _ = adaptive_estimate(store, weights, settings=settings, target=target)
    return {
        **{k: v.item() if isinstance(v, np.generic) else v for k, v in est.items()},
        "rate": float(rate),
        "unit": vf.unit,
    }


def monte_carlo_failure(
    workload: Workload,
    rate: float,
    *,
    unit: str = "bit_cycle",
    injections: int = 400,
    samples: int | None = None,
    seed: int = 0,
    workers: int = 1,
    registers: Iterable[str] = PE_REGISTERS,
    hardened: HardenedBitsConfig | None = None,
    protected: Protected | None = None,
    out_dir: str | None = None,
) -> dict[str, Any]:
    """P(failure per inference) at ``rate`` by a direct campaign in rate mode: ``failure``,
    ``lo``, ``hi`` (Wilson), ``expected_faults``, ``faults_per_inference``, ``accuracy``
    under faults and ``injections``.

    ``hardened`` overrides the workload's hardened bits (default: the workload's own).
    """
    from .campaign import CampaignSettings, campaign

    if hardened is not None:
        accel = workload.config.accelerator
        accel = accel.model_copy(
            update={"protection": accel.protection.model_copy(update={"hardened_bits": hardened})}
        )
        workload = replace(
            workload, config=workload.config.model_copy(update={"accelerator": accel})
        )
    settings = CampaignSettings(
        mode="rate", rate=float(rate), unit=unit, registers=tuple(registers)
    )
    chosen = None
    if protected:
        chosen = {k: np.asarray(sorted(v), dtype=np.int64) for k, v in protected.items()}
    result = campaign(
        workload,
        injections=injections,
        settings=settings,
        samples=samples,
        seed=seed,
        workers=workers,
        protected=chosen,
        out_dir=out_dir,
    )
    sdc = result.summary["sdc"]
    return {
        "failure": sdc["rate"],
        "lo": sdc["lo"],
        "hi": sdc["hi"],
        "expected_faults": result.expected_faults_per_inference,
        "faults_per_inference": result.faults_per_inference,
        "accuracy": result.summary["accuracy"],
        "injections": result.injections,
    }
