"""An optimisation as a flat table, and its constraints in their natural units.

The search works on normalised constraints (``<= 0`` feasible; :mod:`optimizer.evaluate`):
``accuracy`` is ``A - accuracy lower bound``, ``reliability`` is
``log10(P(failure) upper bound / (1 - R))`` and ``latency`` is ``cycles / L - 1``. A reader
wants the quantities themselves: :func:`natural_constraints` gives each measured value next
to its limit, with the unit in the key, and :func:`evaluation_records` one flat row per
evaluated design (``optimize.json`` stores both, ``report --csv`` writes the rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from accelsim.schemas import Document

from .log import CHECK_KEY, Evaluation

# optimize.json: 1 had no version; 2 adds schema_version, objective_unit and each
# evaluation's constraints_natural (the normalised constraints stay, as the search saw them)
OPTIMIZE_SCHEMA_VERSION = 2

OBJECTIVE_UNITS = {
    "area": "um2",
    "energy": "pj_per_inference",
    "area_latency": "um2_cycles",  # area x cycles of one batch
}


def natural_constraints(evaluation: Mapping[str, Any], limits: Mapping[str, Any]) -> dict:
    """The constrained quantities of an evaluation (``Evaluation.to_dict()``) next to their
    limits (the section's ``constraints``), in natural units: accuracy as a fraction (its
    lower confidence bound decides), P(failure) per inference (the upper bound decides: the
    certificate's when the design was checked by direct Monte-Carlo), latency in cycles of
    one batch. A constraint the section does not set is left out."""
    m = evaluation.get("metrics") or {}
    out: dict[str, float | None] = {}
    if limits.get("min_accuracy") is not None:
        out["accuracy_fraction"] = m.get("accuracy")
        out["accuracy_lo_fraction"] = m.get("accuracy_lo")
        out["min_accuracy_fraction"] = limits["min_accuracy"]
    if limits.get("min_reliability") is not None:
        estimate = m.get("reliability") or {}
        certificate = m.get(CHECK_KEY) or {}
        upper = estimate.get("failure_upper", estimate.get("failure_hi"))
        out["failure_per_inference"] = certificate.get("failure", estimate.get("failure"))
        out["failure_upper_per_inference"] = certificate.get("upper", upper)
        out["max_failure_per_inference"] = 1.0 - limits["min_reliability"]
    if limits.get("max_latency_cycles") is not None:
        out["latency_cycles"] = m.get("latency_cycles")
        out["max_latency_cycles"] = limits["max_latency_cycles"]
    return out


def with_natural_constraints(evaluation: Evaluation, limits: Mapping[str, Any]) -> dict:
    """``evaluation.to_dict()`` plus ``constraints_natural`` (what ``optimize.json`` holds)."""
    data = evaluation.to_dict()
    data["constraints_natural"] = natural_constraints(data, limits)
    return data


def evaluation_record(
    evaluation: Mapping[str, Any], *, search: str, index: int, objective: str
) -> dict[str, Any]:
    """One evaluated design (an evaluation of ``optimize.json``) as a flat row: which search
    and evaluation, the design's variables (``design.<name>``, categorical ones by name),
    feasibility, the objective with its unit in the column name, the natural constraint
    values, the normalised ones (``constraint.<name>``, <= 0 feasible) and main metrics."""
    m = evaluation.get("metrics") or {}
    record: dict[str, Any] = {"search": search, "index": index}
    design = m.get("design") or evaluation["design"]
    record.update({f"design.{k}": _flat(v) for k, v in design.items()})
    reason = evaluation.get("infeasible_reason")
    constraints = evaluation.get("constraints") or {}
    objective_value = evaluation.get("objective")
    record["ran"] = reason is None
    record["feasible"] = (
        reason is None and objective_value is not None and all(v <= 0 for v in constraints.values())
    )
    record["infeasible_reason"] = reason
    record[f"objective_{OBJECTIVE_UNITS.get(objective, objective)}"] = objective_value
    record.update(evaluation.get("constraints_natural") or {})
    record.update({f"constraint.{k}": v for k, v in sorted(constraints.items())})
    record["area_total_um2"] = (m.get("area_um2") or {}).get("total_um2")
    record["energy_pj_per_inference"] = m.get("energy_pj_per_inference")
    record["latency_us"] = m.get("latency_us")
    record["protected_neurons"] = m.get("protected_neurons")
    record["certificate"] = (m.get(CHECK_KEY) or {}).get("verdict")
    return record


def _flat(value: Any) -> Any:
    return " ".join(str(v) for v in value) if isinstance(value, list | tuple) else value


def evaluation_records(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every design an optimisation evaluated (``OptimizeResult.to_dict()`` or a loaded
    ``optimize.json``), one row each: the search, the comparison search, then the fixed
    designs (``search`` = ``fixed``, ``design.name`` their name)."""
    objective = document["optimize"]["objective"]
    rows = []
    for role in ("search", "comparison"):
        search = document.get(role)
        if search is None:
            continue
        for i, evaluation in enumerate(search["evaluations"]):
            rows.append(
                evaluation_record(
                    evaluation, search=f"{role}:{search['method']}", index=i, objective=objective
                )
            )
    for i, (name, evaluation) in enumerate((document.get("fixed_designs") or {}).items()):
        row = evaluation_record(evaluation, search="fixed", index=i, objective=objective)
        rows.append(
            {"search": row.pop("search"), "index": row.pop("index"), "design.name": name, **row}
        )
    return rows


# ---- the file's model (JSON Schema: accelsim/schemas.py) -----------------------------------------
class EvaluationDocument(Document):
    """One evaluated design: ``design`` (variable -> index or value), ``objective`` in the
    document's ``objective_unit`` (None: unknown), ``constraints`` normalised (<= 0
    feasible), ``constraints_natural`` the measured values next to their limits with units
    in the keys (:func:`natural_constraints`), ``metrics`` the evidence."""

    design: dict[str, Any]
    objective: float | None
    constraints: dict[str, float]
    constraints_natural: dict[str, float | int | None]
    metrics: dict[str, Any]
    infeasible_reason: str | None


class SearchDocument(Document):
    method: str
    seed: int | None
    best_index: int | None
    best: EvaluationDocument | None
    message: str
    evaluations: list[EvaluationDocument]


class OptimizeDocument(Document):
    """``optimize.json`` (:meth:`optimizer.search.OptimizeResult.to_dict`)."""

    schema_version: Literal[OPTIMIZE_SCHEMA_VERSION]  # type: ignore[valid-type]
    workload: str
    optimize: dict[str, Any]
    objective_unit: str = Field(description="um2, pj_per_inference or um2_cycles")
    reliability_method: str
    best: EvaluationDocument | None
    best_design: dict[str, Any] | None
    message: str
    search: SearchDocument
    comparison: SearchDocument | None
    fixed_designs: dict[str, EvaluationDocument]
    logs: dict[str, str]
