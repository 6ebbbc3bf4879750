"""Selective protection from the vulnerability rankings, and the fixed designs.

* Architecture layer: :func:`select_neurons` picks the top fraction p of all neurons (output
  channels of every layer) by :func:`faults.strata.rank_neurons` and
  :func:`faults.strata.top_neurons`: per neuron where a layer's neurons differ significantly,
  else by layer (the layer's neurons in index order); the redundant units recompute them.
* Circuit layer: :func:`select_bits` hardens, per register class, the k bits that contribute
  most to the unprotected design's failures (:func:`faults.strata.rank_bits`).
* The fixed designs every optimiser is compared with — no protection, full TMR, neuron-only,
  bit-only and cross-layer — are defined once, here, by :func:`fixed_protections`, as values
  of the protection variables of a design; :func:`optimizer.baselines.fixed_designs` (the
  optimiser's, on its design space) and :func:`baseline_designs` (the ``baselines``
  command's, on a workload) apply them. :func:`compare_baselines` prices (area), times
  (cycles with the protected neurons), rates (first-order P(failure) with interval and upper
  bound) and certifies (a direct Monte-Carlo campaign against a target,
  :func:`faults.certify.certify_design`) each baseline design, one :func:`baseline_row` each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from accelsim.config import REGISTER_CLASSES, AcceleratorConfig, HardenedBitsConfig
from accelsim.cost import register_widths
from accelsim.errors import AccelsimError, Infeasible
from accelsim.simulation import simulate
from accelsim.workload import Workload

PROTECTION_VARIABLES = (
    *(f"hardened_bits.{c}" for c in REGISTER_CLASSES),
    "protected_fraction",
    "redundant_units",
)
FULL_WIDTH = 64  # "harden every bit": more than any register class has


# --------------------------------------------------------------------------- the fixed designs
def fixed_protections(
    *, fraction: float, units: int, hardening: Mapping[str, int], cross_layer: bool = False
) -> dict[str, dict[str, Any]]:
    """The fixed protection schemes as values of :data:`PROTECTION_VARIABLES`: ``none``,
    ``full TMR`` (every register bit hardened), ``neuron-only`` (``fraction`` of the neurons on
    ``units`` redundant units, if ``fraction`` > 0), ``bit-only`` (``hardening``:
    ``{"hardened_bits.<class>": bits}``, if any) and, with ``cross_layer``, both at once."""
    nothing: dict[str, Any] = dict.fromkeys(PROTECTION_VARIABLES, 0)
    nothing["protected_fraction"] = 0.0
    neurons = {"protected_fraction": fraction, "redundant_units": units}
    bits = {name: count for name, count in hardening.items() if count}
    schemes = {
        "none": dict(nothing),
        "full TMR": {**nothing, **{f"hardened_bits.{c}": FULL_WIDTH for c in REGISTER_CLASSES}},
    }
    if fraction > 0:
        schemes["neuron-only"] = {**nothing, **neurons}
    if bits:
        schemes["bit-only"] = {**nothing, **bits}
    if cross_layer and fraction > 0 and bits:
        schemes["cross-layer"] = {**nothing, **bits, **neurons}
    return schemes


def workload_units(workload: Workload) -> int:
    """Redundant units for a neuron-only design when nothing else says: the workload's own,
    else one per array column (a DPPU as wide as the array's output row)."""
    protection = workload.config.accelerator.protection
    return protection.redundant_units or workload.config.accelerator.array.cols


# --------------------------------------------------------------------------- selection
def select_neurons(vf: Any, fraction: float) -> dict[str, list[int]]:
    """The top ``fraction`` of all neurons (``ceil(fraction x neurons)``) by the factors'
    neuron ranking (:func:`faults.strata.top_neurons`), as ``{layer: sorted channels}``."""
    from .strata import NeuronRanking, top_neurons

    if not 0.0 <= fraction <= 1.0:
        raise AccelsimError(
            f"fraction {fraction} is outside [0, 1]",
            key="protection.protected_fraction",
            allowed="0..1",
        )
    if vf.nvf_ranking is None:
        raise AccelsimError(
            vf.nvf_unavailable or "NVF unavailable", key="protection.protected_fraction"
        )
    ranked = vf.nvf_ranking
    ranking = NeuronRanking(
        scores={layer: np.asarray(r["scores"], dtype=float) for layer, r in ranked.items()},
        significant={layer: r["significant"] for layer, r in ranked.items()},
        p_values={layer: r["p_value"] for layer, r in ranked.items()},
        measured={
            layer: np.asarray(r["contributions"], dtype=float) for layer, r in ranked.items()
        },
    )
    chosen = top_neurons(ranking, fraction)
    return {layer: [int(c) for c in chosen[layer]] for layer in ranked if layer in chosen}


def select_bits(vf: Any, k: int | Mapping[str, int]) -> HardenedBitsConfig:
    """Harden, per register class, the top ``k`` (or ``k[class]``) bits of the factors' bit
    ranking (:func:`faults.strata.rank_bits`); ``k`` >= the width hardens the whole register.
    A class that cannot flip (not in ``faults.registers``) has no ranking: its top bits."""
    counts = {c: k for c in REGISTER_CLASSES} if isinstance(k, int) else dict(k)
    chosen: dict[str, list[int]] = {}
    for register in REGISTER_CLASSES:
        count = int(counts.get(register, 0))
        if count < 0:
            raise AccelsimError(f"k = {count} is negative", key="hardened_bits", allowed=">= 0")
        width = max(int(e["widths"][register]) for e in vf.exposure.values())
        ranking = list(vf.bit_ranking.get(register, ())) or list(range(width - 1, -1, -1))
        chosen[register] = sorted(ranking[:count]) if count < width else list(range(width))
    return HardenedBitsConfig(**chosen)


# --------------------------------------------------------------------------- the baselines
@dataclass(frozen=True)
class Design:
    """A protection choice: the accelerator config and the neurons its redundant units redo."""

    name: str
    accelerator: AcceleratorConfig
    protected: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "protection": self.accelerator.protection.model_dump(),
            "protected": self.protected,
        }


def _with_protection(accel: AcceleratorConfig, **update: Any) -> AcceleratorConfig:
    protection = accel.protection.model_copy(update=update)
    return accel.model_copy(update={"protection": protection})


def baseline_designs(
    workload: Workload, vf: Any, *, p: float = 0.1, k: int = 8, redundant_units: int | None = None
) -> dict[str, Design]:
    """:func:`fixed_protections` with cross-layer on the workload's array: ``p`` the protected
    fraction of neurons (by NVF ranking), ``k`` hardened bits per register class (by BVF
    ranking), ``redundant_units`` S (default :func:`workload_units`). Without NVF (``is``
    dataflow) there are no neuron designs."""
    if k < 0:
        raise AccelsimError(f"k = {k} is negative", file="--k", allowed=">= 0")
    if not 0.0 <= p <= 1.0:
        raise AccelsimError(f"p = {p} is outside [0, 1]", file="--p", allowed="0..1")
    if redundant_units is not None and redundant_units < 1:
        raise AccelsimError(
            f"{redundant_units} redundant units", file="--redundant-units", allowed=">= 1"
        )
    accel = workload.config.accelerator
    units = redundant_units or workload_units(workload)
    widths = register_widths(workload.graph).as_dict()
    schemes = fixed_protections(
        fraction=p if vf.nvf_ranking is not None else 0.0,
        units=units,
        hardening={f"hardened_bits.{c}": k for c in REGISTER_CLASSES},
        cross_layer=True,
    )
    designs = {}
    for name, scheme in schemes.items():
        counts = {c: min(int(scheme[f"hardened_bits.{c}"]), widths[c]) for c in REGISTER_CLASSES}
        fraction = float(scheme["protected_fraction"])
        protection = _with_protection(
            accel,
            hardened_bits=select_bits(vf, counts),
            redundant_units=int(scheme["redundant_units"]),
            protected_fraction=fraction,
            protected_neurons=None,
        )
        neurons = select_neurons(vf, fraction) if fraction > 0 else {}
        designs[name] = Design(name, protection, neurons)
    return designs


def baseline_row(
    workload: Workload,
    vf: Any,
    design: Design,
    *,
    target: float,
    samples: int | None = None,
    certify: Any = None,
) -> dict[str, Any]:
    """One table row: area, cycles, clean accuracy, the first-order P(failure) (interval and
    upper bound) and the certificate of a direct campaign against ``target`` (``certify``:
    :class:`faults.certify.CertifySettings`; None skips it)."""
    from accelsim.cost import hardened_bit_count

    from .certify import certify_design
    from .reliability import first_order_failure

    row: dict[str, Any] = {**design.to_dict()}
    # the same graph (the quantisation is unchanged), another accelerator
    variant = replace(
        workload, config=workload.config.model_copy(update={"accelerator": design.accelerator})
    )
    protected = {k: np.asarray(v, dtype=np.int64) for k, v in design.protected.items()} or None
    try:
        result = simulate(variant, samples=samples, protected=protected)
    except Infeasible as exc:
        return {**row, "feasible": False, "reason": exc.message}
    totals = result.totals()
    row.update(
        feasible=True,
        area_um2=result.area["total_um2"],
        hardening_um2=result.area["hardening_um2"],
        redundant_units_um2=result.area["redundant_units_um2"],
        total_cycles=totals["total_cycles"],
        latency_us=totals["latency_us"],
        energy_pj=totals["energy_pj"],
        accuracy=result.accuracy,
        hardened_bits_per_pe=hardened_bit_count(
            design.accelerator, register_widths(workload.graph)
        ),
        protected_neurons=sum(len(v) for v in design.protected.values()),
    )
    # hardening only removes sites (weight 0); protected neurons are priced on records of
    # their own, run with the redundant units (first_order_failure); the certificate, not
    # this estimate, decides against the target
    row["first_order"] = first_order_failure(
        vf,
        rate=workload.config.faults.rate,
        hardened=design.accelerator.protection.hardened_bits,
        protected=design.protected,
    )
    if certify is not None:
        row["certificate"] = certify_design(
            variant,
            target=target,
            predicted=row["first_order"]["upper"],
            protected=protected,
            settings=certify,
        )
    return row


def check_target(target: float) -> None:
    """A P(failure) target must be a probability strictly between 0 and 1."""
    if not (0.0 < target < 1.0 and math.isfinite(target)):
        raise AccelsimError(
            f"target {target} is not a probability", file="--target", allowed="0 < target < 1"
        )


def compare_baselines(
    workload: Workload,
    vf: Any,
    *,
    p: float = 0.1,
    k: int = 8,
    redundant_units: int | None = None,
    samples: int | None = None,
    target: float = 1e-3,
    certify: Any = None,
) -> list[dict[str, Any]]:
    """One row per baseline design (:func:`baseline_designs`, :func:`baseline_row`) at the
    workload's ``faults:`` rate, which the factors ``vf`` must have been measured for."""
    faults = workload.config.faults
    if faults is None or faults.rate <= 0:
        raise AccelsimError(
            "no fault rate: add faults.rate (or pass --rate)", key="faults.rate", allowed="> 0"
        )
    check_target(target)
    if faults.unit != vf.unit:
        raise AccelsimError(
            f"the vulnerability factors were measured per {vf.unit}, not {faults.unit}",
            key="faults.unit",
        )
    designs = baseline_designs(workload, vf, p=p, k=k, redundant_units=redundant_units)
    return [
        baseline_row(workload, vf, design, target=target, samples=samples, certify=certify)
        for design in designs.values()
    ]
