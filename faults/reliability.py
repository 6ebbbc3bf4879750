"""Reliability of a design from its vulnerability factors (first order) or by direct campaign.

First order (the AVF method, DESIGN.md): faults are rare and independent, so the number of
*failing* faults per inference is Poisson with mean

    Λ = Σ_{layer L, class c, unhardened bit j}  rate × X(L, c, j) × BVF(L, c, j) × g_L

and P(failure) = 1 − exp(−Λ) (the exact Poisson form; at realistic rates it equals Λ). Here
``X(L, c, j)`` is the exposure in the rate's unit (bit-cycles ``pe_cycles`` for
``bit_cycle``, register loads ``pe_loads`` for ``ber``) and ``g_L = 1 − π_L`` removes the share
of layer ``L``'s failures that its protected neurons fix.

**Estimator.** The BVF campaign of (c, j) drew its n injections uniformly over bit-cycles, so
layer L received injections in proportion to ``E_L = pe_cycles(L)``. With ``k_L`` failures
among them, Σ_L X_L·BVF_L·g_L is estimated without bias by ``E(c,j) · (1/n) Σ_L k_L·h_L`` with
``h_L = g_L·X_L/E_L`` (importance weights; h = 1 without protection in the bit-cycle unit, where
this is exactly the overall BVF). Writing ``h_L = h_max·u_L`` (u in [0, 1]) makes
``(1/n) Σ k_L u_L`` a weighted proportion with weight ``W = rate·E·h_max``.

**Intervals** (from the BVF campaigns' counts). ``lo``/``hi``: the cells are strata of one
stratified sample; the Wilson interval of their weighted mean with Kish's effective sample
size, scaled by ΣW (see :func:`_stratified`). ``lo_bound``/``hi_bound``: every cell's own
Wilson interval, summed lo with lo and hi with hi — covers Λ whenever every cell's interval
covers its term, so it is very conservative (each never-failing cell adds its whole upper
bound). Unmeasured bits count as anything from 0 to certain failure.

**Multiple faults.** 1 − exp(−Λ) treats failing faults as independent across inferences.
Vulnerability differs strongly between test samples (a few inferences near a decision
boundary take most failures), so at many faults per inference the campaign's P(failure)
falls below 1 − exp(−Λ) (Jensen: E_s[1 − exp(−Λ_s)] ≤ 1 − exp(−E_s Λ_s)). The first-order
figure is an upper estimate there; at realistic rates (Λ ≪ 1) both equal Λ.

**Protected neurons** (recompute-and-overwrite). In ws/os a PE column computes one output
channel, so layer L's sites split by neuron and its failures are Σ_n w_n·NVF_n (``w_n`` = the
neuron's bit-cycles). Protecting a set P removes the share

    π_L = Σ_{n∈P} w_n·NVF_n / Σ_n w_n·NVF_n

of them. Assumptions, stated: (1) a fault in a protected neuron's column only harms that
neuron (in ws an input-register flip also travels to the columns on its right, so this is
slightly optimistic); (2) the bit profile of vulnerability is the same for every neuron of a
layer (VF(L, n, c, j) ∝ NVF(L, n)·BVF(L, c, j)), so the share holds for each bit alike. If
the layer's measured NVFs are all zero the share falls back to P's exposure share. The lower
failure bound uses π from (NVF_hi in P, NVF_lo outside), the upper bound the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from accelsim.config import HardenedBitsConfig
from accelsim.errors import AccelsimError
from accelsim.workload import Workload

from .plan import PE_REGISTERS
from .stats import wilson_interval
from .vulnerability import VulnerabilityFactors

Protected = Mapping[str, Iterable[int]]


def _hardened_masks(hardened: HardenedBitsConfig | Mapping[str, Iterable[int]] | None):
    if hardened is None:
        return dict.fromkeys(PE_REGISTERS, 0)
    if isinstance(hardened, HardenedBitsConfig):
        return {c: hardened.mask(c) for c in PE_REGISTERS}
    return {c: sum(1 << int(b) for b in set(hardened.get(c, ()))) for c in PE_REGISTERS}


def protected_share(vf: VulnerabilityFactors, layer: str,
                    channels: Iterable[int]) -> tuple[float, float, float]:  # fmt: skip
    """(point, lo, hi) of π_L: the share of ``layer``'s failures its protected neurons fix."""
    chosen = sorted({int(c) for c in channels})
    if not chosen:
        return 0.0, 0.0, 0.0
    if vf.nvf is None:
        raise AccelsimError(vf.nvf_unavailable or "NVF unavailable", key="protected_neurons")
    entry = vf.nvf[layer]
    weights = np.asarray(vf.exposure[layer]["neuron_bit_cycles"], dtype=float)
    if chosen[-1] >= len(weights):
        raise AccelsimError(f"layer {layer} has no neuron {chosen[-1]}", key="protected_neurons",
                            allowed=f"0..{len(weights) - 1}")  # fmt: skip
    inside = np.zeros(len(weights), dtype=bool)
    inside[chosen] = True

    def values(name: str) -> np.ndarray:
        return np.array([0.0 if v is None else float(v) for v in entry[name]])

    rate, lo, hi = values("rate"), values("lo"), values("hi")

    def share(in_vf: np.ndarray, out_vf: np.ndarray) -> float:
        part = float(np.sum(weights[inside] * in_vf[inside]))
        rest = float(np.sum(weights[~inside] * out_vf[~inside]))
        if part + rest <= 0.0:  # nothing measured fails: fall back to the exposure share
            return float(weights[inside].sum() / weights.sum()) if weights.sum() else 0.0
        return part / (part + rest)

    return share(rate, rate), share(lo, hi), share(hi, lo)


def first_order_failure(
    vf: VulnerabilityFactors,
    exposure: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    rate: float,
    unit: str = "bit_cycle",
    hardened: HardenedBitsConfig | Mapping[str, Iterable[int]] | None = None,
    protected: Protected | None = None,
    registers: Iterable[str] = PE_REGISTERS,
) -> dict[str, float]:
    """P(failure per inference) at ``rate`` from the VFs: ``{"failure", "lo", "hi",
    "expected_faults", "expected_failures"}`` (see the module docstring for the method).

    ``exposure``: per layer ``pe_cycles`` / ``pe_loads`` / ``widths`` (default: the
    exposure the VFs were measured on; pass another for a design whose schedule differs but
    whose per-site vulnerability is taken as the same). ``hardened``: bits that cannot flip.
    ``protected``: output channels per layer recomputed by the redundant units.
    """
    if unit not in ("bit_cycle", "ber"):
        raise AccelsimError(f"{unit!r} is not allowed", key="faults.unit",
                            allowed=("bit_cycle", "ber"))  # fmt: skip
    if rate < 0:
        raise AccelsimError(f"rate {rate} is negative", key="faults.rate", allowed=">= 0")
    exposure = exposure if exposure is not None else vf.exposure
    masks = _hardened_masks(hardened)
    unit_key = "pe_cycles" if unit == "bit_cycle" else "pe_loads"
    protected = {k: list(v) for k, v in (protected or {}).items() if len(list(v))}
    unknown = set(protected) - set(vf.exposure)
    if unknown:
        raise AccelsimError(f"unknown layer {sorted(unknown)[0]!r}", key="protected_neurons",
                            allowed=tuple(vf.exposure))  # fmt: skip
    share = {layer: protected_share(vf, layer, protected.get(layer, ())) for layer in exposure}

    # per variant of the protected share (point, lower failure bound, upper failure bound):
    # each measured (class, bit) cell as (weight W, weighted failure count, injections)
    variants: dict[str, list[tuple[float, float, int]]] = {"point": [], "lo": [], "hi": []}
    unmeasured = 0.0
    expected_faults = 0.0
    for register in registers:
        width = max(int(e["widths"][register]) for e in exposure.values())
        for bit in range(width):
            if masks[register] >> bit & 1:
                continue
            layers = [name for name, e in exposure.items() if bit < int(e["widths"][register])]
            target = {name: float(exposure[name][unit_key]) for name in layers}
            expected_faults += rate * sum(target.values())
            sampled = {name: vf.bvf_per_layer[name][register][bit] for name in layers}
            n = sum(int(s["n"]) for s in sampled.values())
            sampling = {name: float(vf.exposure[name]["pe_cycles"]) for name in layers}
            if n == 0 or sum(sampling.values()) == 0:
                unmeasured += rate * sum(target.values())  # anything from 0 to certain failure
                continue
            # lower failure bound: the largest protected share (index 2), and vice versa
            for variant, g_index in (("point", 0), ("lo", 2), ("hi", 1)):
                h = {name: (1.0 - share[name][g_index]) * target[name] / sampling[name]
                     if sampling[name] else 0.0 for name in layers}  # fmt: skip
                h_max = max(h.values())
                if h_max <= 0.0:
                    continue
                k = sum(int(sampled[name]["count"]) * h[name] / h_max for name in layers)
                weight = rate * sum(sampling.values()) * h_max
                variants[variant].append((weight, min(k, float(n)), n))

    confidence = vf.confidence
    lam = sum(w * k / n for w, k, n in variants["point"])
    lam_lo = _stratified(variants["lo"], confidence)[0]
    lam_hi = _stratified(variants["hi"], confidence)[1] + unmeasured
    bound_lo = sum(w * wilson_interval(k, n, confidence)[0] for w, k, n in variants["lo"])
    bound_hi = (
        sum(w * wilson_interval(k, n, confidence)[1] for w, k, n in variants["hi"]) + unmeasured
    )

    def prob(x: float) -> float:
        return max(0.0, -math.expm1(-x))

    return {"failure": prob(lam), "lo": prob(lam_lo), "hi": prob(lam_hi),
            "lo_bound": prob(bound_lo), "hi_bound": prob(bound_hi),
            "expected_faults": expected_faults, "expected_failures": lam}  # fmt: skip


def _stratified(cells: list[tuple[float, float, int]], confidence: float) -> tuple[float, float]:
    """Interval of Λ = Σ W_c p_c from per-cell proportions k_c / n_c (stratified sampling).

    Wilson interval of the weighted mean p = Σ a_c p_c (a_c = W_c / W) with Kish's effective
    sample size n_eff = 1 / Σ a_c² / n_c, scaled by W. With equal weights and sizes this is the
    Wilson interval of the pooled count.
    """
    total = sum(w for w, _, _ in cells)
    if total <= 0.0:
        return 0.0, 0.0
    mean = sum(w * k / n for w, k, n in cells) / total
    n_eff = 1.0 / sum((w / total) ** 2 / n for w, _, n in cells)
    lo, hi = wilson_interval(min(mean * n_eff, n_eff), n_eff, confidence)
    return total * lo, total * hi


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
    """P(failure per inference) at ``rate`` by a direct campaign in rate mode (same keys as
    :func:`first_order_failure`, plus ``accuracy`` under faults and ``injections``).

    ``hardened`` overrides the workload's hardened bits (default: the workload's own).
    """
    from .campaign import CampaignSettings, campaign

    if hardened is not None:
        accel = workload.config.accelerator
        accel = accel.model_copy(update={"protection": accel.protection.model_copy(
            update={"hardened_bits": hardened})})  # fmt: skip
        workload = workload.with_config(workload.config.model_copy(update={"accelerator": accel}))
    settings = CampaignSettings(mode="rate", rate=float(rate), unit=unit,
                                registers=tuple(registers))  # fmt: skip
    chosen = None
    if protected:
        chosen = {k: np.asarray(sorted(v), dtype=np.int64) for k, v in protected.items()}
    result = campaign(workload, injections=injections, settings=settings, samples=samples,
                      seed=seed, workers=workers, protected=chosen, out_dir=out_dir)  # fmt: skip
    sdc = result.summary["sdc"]
    return {"failure": sdc["rate"], "lo": sdc["lo"], "hi": sdc["hi"],
            "expected_faults": result.expected_faults_per_inference,
            "faults_per_inference": result.faults_per_inference,
            "accuracy": result.summary["accuracy"], "injections": result.injections}  # fmt: skip
