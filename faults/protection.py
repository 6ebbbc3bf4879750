"""Selective protection from vulnerability factors, and the fixed baseline designs.

* Architecture layer: :func:`select_neurons` picks the top fraction p of all neurons (output
  channels of every layer) by NVF; the redundant units recompute them.
* Circuit layer: :func:`select_bits` hardens the top-k bits by BVF (k per register class, or
  k in total ranked by expected failures = exposure x BVF).
* :func:`baseline_designs` / :func:`compare_baselines`: no protection, full TMR (every bit of
  every PE register hardened), neuron only, bit only, and cross-layer (both), each priced
  (area), timed (latency with the protected neurons) and rated (first-order reliability).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.config import AcceleratorConfig, HardenedBitsConfig
from accelsim.errors import AccelsimError, Infeasible
from accelsim.simulation import register_widths, simulate
from accelsim.workload import Workload

from .plan import PE_REGISTERS
from .reliability import first_order_failure, monte_carlo_failure
from .vulnerability import VulnerabilityFactors

BASELINES = ("none", "full_tmr", "neuron_only", "bit_only", "cross_layer")


def _rate(value: Any) -> float:
    return -1.0 if value is None else float(value)


def select_neurons(vf: VulnerabilityFactors, fraction: float) -> dict[str, list[int]]:
    """The top ``fraction`` of all neurons by NVF, as ``{layer: sorted channels}``.

    ``round(fraction x neurons)`` are chosen; ties (e.g. many neurons that never failed) are
    broken by the upper bound of the NVF interval, then by layer order and channel.
    """
    if not 0.0 <= fraction <= 1.0:
        raise AccelsimError(f"fraction {fraction} is outside [0, 1]",
                            key="protection.protected_fraction", allowed="0..1")  # fmt: skip
    if vf.nvf is None:
        raise AccelsimError(vf.nvf_unavailable or "NVF unavailable",
                            key="protection.protected_fraction")  # fmt: skip
    ranked = []
    for l_index, (layer, entry) in enumerate(vf.nvf.items()):
        for channel, (rate, hi) in enumerate(zip(entry["rate"], entry["hi"], strict=True)):
            ranked.append((-_rate(rate), -float(hi), l_index, channel, layer))
    ranked.sort()
    count = int(round(fraction * len(ranked)))
    chosen: dict[str, list[int]] = {}
    for *_, channel, layer in ranked[:count]:
        chosen.setdefault(layer, []).append(channel)
    return {layer: sorted(chosen[layer]) for layer in vf.nvf if layer in chosen}


def select_bits(vf: VulnerabilityFactors, k: int, *, per_class: bool = True) -> HardenedBitsConfig:
    """Harden the top-``k`` bits by BVF: ``k`` per register class, or ``k`` in total.

    In total mode bits are ranked by their expected failures (exposed bit-cycles x BVF), so a
    class present in fewer layers ranks lower. Bits never measured are not chosen.
    """
    if k < 0:
        raise AccelsimError(f"k = {k} is negative", key="hardened_bits", allowed=">= 0")
    scored: list[tuple[float, float, int, str]] = []
    for register in PE_REGISTERS:
        for bit, e in enumerate(vf.bvf[register]):
            if e["rate"] is None:
                continue
            exposure = sum(entry["pe_cycles"] for entry in vf.exposure.values()
                           if bit < entry["widths"][register])  # fmt: skip
            score = e["rate"] if per_class else e["rate"] * exposure
            # ties (bits that never failed): the wider interval, then the higher bit
            scored.append((-score, -float(e["hi"]), -bit, register))
    scored.sort()
    chosen: dict[str, list[int]] = {register: [] for register in PE_REGISTERS}
    if per_class:
        for _, _, neg_bit, register in scored:
            if len(chosen[register]) < k:
                chosen[register].append(-neg_bit)
    else:
        for _, _, neg_bit, register in scored[:k]:
            chosen[register].append(-neg_bit)
    return HardenedBitsConfig(**{r: sorted(bits) for r, bits in chosen.items()})


@dataclass(frozen=True)
class Design:
    """A protection choice: the accelerator config and the neurons its redundant units redo."""

    name: str
    accelerator: AcceleratorConfig
    protected: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "protection": self.accelerator.protection.model_dump(),
                "protected": self.protected}  # fmt: skip


def _with_protection(accel: AcceleratorConfig, **update: Any) -> AcceleratorConfig:
    protection = accel.protection.model_copy(update=update)
    return accel.model_copy(update={"protection": protection})


def baseline_designs(
    workload: Workload,
    vf: VulnerabilityFactors,
    *,
    p: float = 0.1,
    k: int = 8,
    per_class: bool = True,
    redundant_units: int | None = None,
) -> dict[str, Design]:
    """The fixed designs every optimiser is compared with (DESIGN.md "Optimisation").

    ``p``: protected fraction of neurons (neuron_only, cross_layer); ``k``: hardened bits per
    class (or in total with ``per_class=False``) for bit_only, cross_layer. Redundant units:
    ``redundant_units`` if given, else the workload's, else the array's rows (one column's
    multipliers: a protected neuron is recomputed at the rate the array computes it).
    """
    accel = workload.config.accelerator
    size = redundant_units
    if size is None:
        size = accel.protection.redundant_units or accel.array.rows
    widths = register_widths(workload.graph).as_dict()
    bare = _with_protection(accel, hardened_bits=HardenedBitsConfig(), redundant_units=0,
                            protected_fraction=0.0, protected_neurons=None)  # fmt: skip
    everything = HardenedBitsConfig(**{r: list(range(widths[r])) for r in PE_REGISTERS})
    bits = select_bits(vf, k, per_class=per_class)
    neurons = select_neurons(vf, p) if vf.nvf is not None else {}
    return {
        "none": Design("none", bare),
        "full_tmr": Design("full_tmr", _with_protection(bare, hardened_bits=everything)),
        "neuron_only": Design("neuron_only", _with_protection(bare, redundant_units=size,
                              protected_fraction=p), neurons),  # fmt: skip
        "bit_only": Design("bit_only", _with_protection(bare, hardened_bits=bits)),
        "cross_layer": Design("cross_layer", _with_protection(
            bare, hardened_bits=bits, redundant_units=size, protected_fraction=p), neurons),
    }  # fmt: skip


def evaluate_design(
    workload: Workload,
    vf: VulnerabilityFactors,
    design: Design,
    *,
    rate: float,
    unit: str = "bit_cycle",
    samples: int | None = None,
    monte_carlo_injections: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Area, latency, clean accuracy and reliability of one design (a table row)."""
    row: dict[str, Any] = {"name": design.name, **design.to_dict()}
    config = workload.config.model_copy(update={"accelerator": design.accelerator})
    variant = workload.with_config(config)
    protected = {k: np.asarray(v, dtype=np.int64) for k, v in design.protected.items()}
    try:
        result = simulate(variant, samples=samples, protected=protected or None)
    except Infeasible as exc:
        return {**row, "feasible": False, "reason": str(exc)}
    totals = result.totals()
    widths = register_widths(workload.graph)
    from accelsim.cost import hardened_bit_count

    row.update(
        feasible=True,
        area_um2=result.area["total_um2"],
        hardening_um2=result.area["hardening_um2"],
        redundant_units_um2=result.area["redundant_units_um2"],
        total_cycles=totals["total_cycles"],
        latency_us=totals["latency_us"],
        energy_pj=totals["energy_pj"],
        accuracy=result.accuracy,
        hardened_bits_per_pe=hardened_bit_count(design.accelerator, widths),
        protected_neurons=sum(len(v) for v in design.protected.values()),
    )
    # first order on the exposure the VFs were measured on: protection changes neither the
    # array's folds nor its per-site vulnerability, only which sites can fail
    row["reliability"] = first_order_failure(
        vf, rate=rate, unit=unit, hardened=design.accelerator.protection.hardened_bits,
        protected=design.protected,
    )  # fmt: skip
    if monte_carlo_injections:
        row["monte_carlo"] = monte_carlo_failure(
            variant, rate, unit=unit, injections=monte_carlo_injections, samples=vf.samples,
            seed=seed, protected=design.protected,
        )  # fmt: skip
    return row


def compare_baselines(
    workload: Workload,
    vf: VulnerabilityFactors,
    *,
    p: float = 0.1,
    k: int = 8,
    per_class: bool = True,
    rate: float | None = None,
    unit: str | None = None,
    redundant_units: int | None = None,
    samples: int | None = None,
    monte_carlo_injections: int = 0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per baseline design; ``rate``/``unit`` default to the workload's ``faults:``."""
    faults = workload.config.faults
    if rate is None:
        if faults is None or faults.rate <= 0:
            raise AccelsimError("no fault rate: add faults.rate (or pass --rate)",
                                key="faults.rate", allowed="> 0")  # fmt: skip
        rate = faults.rate
    unit = unit or (faults.unit if faults is not None else "bit_cycle")
    if not math.isfinite(rate) or rate < 0:
        raise AccelsimError(f"rate {rate} is not a rate", key="faults.rate", allowed=">= 0")
    designs = baseline_designs(workload, vf, p=p, k=k, per_class=per_class,
                               redundant_units=redundant_units)  # fmt: skip
    return [
        evaluate_design(
            workload,
            vf,
            design,
            rate=rate,
            unit=unit,
            samples=samples,
            monte_carlo_injections=monte_carlo_injections,
            seed=seed,
        )  # fmt: skip
        for design in designs.values()
    ]
