"""A campaign as flat tables: one row per injection (its outcome), one row per fault (where it
struck), joined on ``injection``.

``faults.log`` is the campaign's resume log (:mod:`faults.runner`): a header line, then a
binary block per chunk holding its columns — one row per injection (its outcome), one per
fault (where it struck). The tables here are what to analyse, built from those columns
(:func:`injection_record_columns`, :func:`fault_record_columns`; :func:`injection_records`
and :func:`fault_records` build the same rows from per-injection dicts and a fault table):
:class:`InjectionRecord` rows go to ``injections.csv``, :class:`FaultRecord` rows to
``faults.csv``, both next to ``faults.json`` (written by
:func:`accelsim.results.write_columns_csv`, byte for byte the csv module's text).

Per PE fault, ``masked_early`` says whether the injector dropped it without computing: every
bit it hits hardened, or its flip reaches no output of its fold (the same test the injector
applies, :func:`faults.inject.reaches_output`); they add up to the injection's
``faults_masked_early`` less its SRAM faults', whose reads are traced per layer, not per fault
(None there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from accelsim.results import Categorical, Column, Nullable
from accelsim.schemas import Document

from .fault import REGISTERS, SRAM_REGISTERS, FaultTable, mask_bits
from .inject import Golden, reaches_output
from .runner import TASKS

INJECTIONS_CSV = "injections.csv"
FAULTS_CSV = "faults.csv"


@dataclass(frozen=True)
class InjectionRecord:
    """One faulty inference and its outcome (DESIGN.md "Failure").

    ``injection``: the task index (its random stream); ``sample``: the test sample hit;
    ``faults``: faults injected; ``masked``: logits bit-identical to the fault-free run;
    ``sdc``: top-1 differs from the fault-free run (the failure); ``critical_sdc``: an SDC of
    a sample the fault-free run classified correctly (None without labels); ``correct`` /
    ``golden_correct``: the faulty / fault-free prediction equals the label (None without
    labels); ``rmse``: RMSE of the dequantised logits; ``faults_masked_early``: faults that
    could not reach an output (not computed); ``tiles_recomputed`` / ``layers_recomputed``:
    the work the faulty run redid."""

    injection: int
    sample: int
    faults: int
    masked: bool
    sdc: bool
    critical_sdc: bool | None
    correct: bool | None
    golden_correct: bool | None
    rmse: float
    faults_masked_early: int
    tiles_recomputed: int
    layers_recomputed: int


@dataclass(frozen=True)
class FaultRecord:
    """One fault of one injection, with its injection's outcome (to tie an SDC to a site).

    ``site``: ``pe`` (a PE register: ``row``, ``col`` and ``cycle`` within the fold, ``address``
    None) or ``sram`` (a buffer word: ``address``, with ``row``, ``col``, ``cycle`` None);
    ``register``: the register class or buffer; ``fold``: the fold of ``layer`` it struck;
    ``bit``: the lowest bit flipped (0 = LSB), ``bits``: all of them, space-separated (more
    than one for a multi-bit upset), ``bit_count`` how many; ``kind``: flip, stuck0, stuck1;
    ``fault``: its number within the injection; ``masked_early``: dropped without computing
    (a PE fault that cannot reach an output; None for SRAM faults); ``sdc`` / ``masked``: its
    injection's."""

    injection: int
    fault: int
    sample: int
    layer: str
    fold: int
    site: str
    register: str
    row: int | None
    col: int | None
    cycle: int | None
    address: int | None
    bit: int
    bits: str
    bit_count: int
    kind: str
    masked_early: bool | None
    sdc: bool
    masked: bool


# the tables' columns, in the models' order (the records are built as tuples: fast)
INJECTION_COLUMNS = tuple(f.name for f in fields(InjectionRecord))
FAULT_COLUMNS = tuple(f.name for f in fields(FaultRecord))


def injection_records(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The campaign's per-injection results (task order) as :class:`InjectionRecord` dicts."""
    records = []
    for index, r in enumerate(results):
        golden = r["golden_correct"]
        values = (
            index,
            int(r["sample"]),
            int(r["faults"]),
            bool(r["masked"]),
            bool(r["top1_changed"]),
            None if golden is None else bool(r["top1_changed"] and golden),
            r["correct"],
            golden,
            float(r["rmse"]),
            int(r["masked_early"]),
            int(r["tiles_recomputed"]),
            int(r["layers_recomputed"]),
        )
        records.append(dict(zip(INJECTION_COLUMNS, values, strict=True)))
    return records


def masked_early(golden: Golden, table: FaultTable) -> list[bool | None]:
    """Per fault of ``table``: could it not reach an output (None for SRAM faults)?"""
    sram = np.isin(table.register, [REGISTERS.index(r) for r in SRAM_REGISTERS])
    flags = masked_early_flags(golden, table).astype(bool).tolist()
    return [None if s else f for s, f in zip(sram.tolist(), flags, strict=True)]


def fault_records(
    table: FaultTable, results: Sequence[Mapping[str, Any]], golden: Golden | None = None
) -> list[dict[str, Any]]:
    """The faults of ``table`` (drawn for injections ``0..len(results)-1``) as
    :class:`FaultRecord` dicts, in injection order (rows built from plain lists: a
    campaign's tables cost a fraction of its injections). ``golden``: the campaign's golden
    run, to tell which faults were masked early (else None in that column)."""
    from .fault import FAULT_KINDS

    early = [None] * len(table.injection) if golden is None else masked_early(golden, table)

    injection, layer, fold, register, row, col, cycle, mask, kind = (
        getattr(table, name).tolist()
        for name in (
            "injection",
            "layer",
            "fold",
            "register",
            "row",
            "col",
            "cycle",
            "mask",
            "kind",
        )
    )
    sram = [REGISTERS[r] in SRAM_REGISTERS for r in range(len(REGISTERS))]
    samples = [int(r["sample"]) for r in results]
    sdc = [bool(r["top1_changed"]) for r in results]
    masked = [bool(r["masked"]) for r in results]
    records = []
    nth = 0
    for j, i in enumerate(injection):
        nth = nth + 1 if j and injection[j - 1] == i else 0
        in_sram = sram[register[j]]
        bits = mask_bits(mask[j])
        values = (
            i,
            nth,
            samples[i],
            table.layer_names[layer[j]],
            fold[j],
            "sram" if in_sram else "pe",
            REGISTERS[register[j]],
            None if in_sram else row[j],
            None if in_sram else col[j],
            None if in_sram else cycle[j],
            cycle[j] if in_sram else None,
            bits[0],
            " ".join(map(str, bits)),
            len(bits),
            FAULT_KINDS[kind[j]],
            early[j],
            sdc[i],
            masked[i],
        )
        records.append(dict(zip(FAULT_COLUMNS, values, strict=True)))
    return records


def injection_record_columns(columns: Any) -> dict[str, Column]:
    """The :class:`InjectionRecord` table of a campaign's columns
    (:class:`faults.runner.ResultColumns`, :func:`faults.campaign.injection_columns`), column
    by column: the rows :func:`injection_records` builds from the per-injection dicts."""
    inj = columns.tables[TASKS]
    golden = inj["golden_correct"].astype(np.int64)
    changed = inj["top1_changed"]
    critical = np.where(golden < 0, 0, 1 + (changed & (golden == 1)))
    values = (
        inj["task"],
        inj["sample"],
        inj["faults"],
        inj["masked"],
        changed,
        Categorical(critical, _NULLABLE_BOOL),
        Categorical(inj["correct"].astype(np.int64) + 1, _NULLABLE_BOOL),
        Categorical(golden + 1, _NULLABLE_BOOL),
        inj["rmse"],
        inj["masked_early"],
        inj["tiles_recomputed"],
        inj["layers_recomputed"],
    )
    return dict(zip(INJECTION_COLUMNS, values, strict=True))


_NULLABLE_BOOL = (None, False, True)  # codes 0, 1, 2


def fault_record_columns(
    columns: Any, layer_names: Sequence[str], golden: Golden | None = None
) -> dict[str, Column]:
    """The :class:`FaultRecord` table of a campaign's columns (as :func:`fault_records` builds
    it from a fault table and the per-injection dicts), column by column. ``layer_names``:
    what the faults' ``layer`` column indexes; ``golden``: to tell which faults were masked
    early (else None in that column)."""
    from .fault import FAULT_KINDS

    inj, flt = columns.tables[TASKS], columns.tables["faults"]
    owner = np.searchsorted(inj["task"], flt["task"])  # injection row of each fault
    nth = np.arange(len(owner)) - np.searchsorted(owner, owner)  # rows grouped by injection
    register = flt["register"]
    in_sram = np.isin(register, [REGISTERS.index(r) for r in SRAM_REGISTERS])
    masks, mask_code = np.unique(flt["mask"], return_inverse=True)
    bits = [mask_bits(m) for m in masks.tolist()]
    mask_code = mask_code.reshape(-1)
    if golden is None:
        early = Categorical(np.zeros(len(owner), dtype=np.int64), _NULLABLE_BOOL)
    else:
        table = FaultTable(
            **{name: flt[name] for name in FaultTable.__dataclass_fields__ if name in flt},
            injection=owner,
            layer_names=tuple(layer_names),
        )
        live = masked_early_flags(golden, table)
        early = Categorical(np.where(in_sram, 0, 1 + live), _NULLABLE_BOOL)
    values = (
        flt["task"],
        nth,
        inj["sample"][owner],
        Categorical(flt["layer"], tuple(layer_names)),
        flt["fold"],
        Categorical(in_sram.astype(np.int64), ("pe", "sram")),
        Categorical(register, REGISTERS),
        Nullable(flt["row"], in_sram),
        Nullable(flt["col"], in_sram),
        Nullable(flt["cycle"], in_sram),
        Nullable(flt["cycle"], ~in_sram),
        Categorical(mask_code, tuple(b[0] for b in bits)),
        Categorical(mask_code, tuple(" ".join(map(str, b)) for b in bits)),
        Categorical(mask_code, tuple(len(b) for b in bits)),
        Categorical(flt["kind"], FAULT_KINDS),
        early,
        inj["top1_changed"][owner],
        inj["masked"][owner],
    )
    return dict(zip(FAULT_COLUMNS, values, strict=True))


def masked_early_flags(golden: Golden, table: FaultTable) -> np.ndarray:
    """Per fault of ``table``: could it not reach an output? (False for SRAM faults.)"""
    early = np.zeros(len(table.injection), dtype=np.int64)
    pe = ~np.isin(table.register, [REGISTERS.index(r) for r in SRAM_REGISTERS])
    for layer_index in np.unique(table.layer[pe]):
        rows = np.flatnonzero(pe & (table.layer == layer_index))
        live = reaches_output(
            golden, table.layer_names[layer_index], table.fold[rows], table.kernel_rows(rows)
        )
        early[rows] = ~np.asarray(live, dtype=bool)
    return early


def baseline_records(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``baselines.json`` as flat dicts (nested figures as dotted columns: e.g.
    ``first_order.upper``), each with the run's rate, its unit and the target."""
    from accelsim.tables import flatten

    run = {key: document.get(key) for key in ("workload", "rate", "unit", "target")}
    return [{**run, **flatten(row)} for row in document["rows"]]


def bvf_records(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bit vulnerability factors of ``vulnerability.json``, one row per (layer, register
    class, bit): P(failure | one flip in that bit) with its interval (``rate``, ``lo``,
    ``hi``), injections ``n`` and failures ``count``; ``layer`` is ``all`` for the overall
    factor (exposure-weighted over the layers)."""
    run = {key: document.get(key) for key in ("workload", "unit", "confidence")}
    tables = [("all", document["bvf"]), *document.get("bvf_per_layer", {}).items()]
    return [
        {**run, "layer": layer, "register": register, "bit": bit, **entry}
        for layer, per_register in tables
        for register, entries in per_register.items()
        for bit, entry in enumerate(entries)
    ]


# ---- the files' models (JSON Schemas: accelsim/schemas.py) --------------------------------------
# faults.json: 1 had no version; 2 adds schema_version and names injections.csv / faults.csv
CAMPAIGN_SCHEMA_VERSION = 2
# baselines.json: 1 adds schema_version and energy per batch / per inference to each row
BASELINES_SCHEMA_VERSION = 1


class CampaignDocument(Document):
    """``faults.json`` (:meth:`faults.campaign.CampaignResult.to_dict`): the campaign's
    summary; ``summary`` and the per-register / per-layer tallies hold rates with intervals
    (``sdc``, ``masked``, ...); the per-injection and per-fault rows are in ``tables``."""

    schema_version: Literal[CAMPAIGN_SCHEMA_VERSION]  # type: ignore[valid-type]
    workload: str
    injections: int
    seed: int
    settings: dict[str, Any]
    summary: dict[str, Any]
    per_register: dict[str, dict[str, Any]]
    per_layer: dict[str, dict[str, Any]]
    faults_per_inference: float
    expected_faults_per_inference: float | None
    masked_early: int
    tiles_recomputed: int
    layers_recomputed: int
    golden_accuracy: float | None
    tables: dict[str, str]


class BaselinesDocument(Document):
    """``baselines.json``: the fixed protection designs at ``rate`` (flips per bit per
    ``unit``), each row with its cost (area in um2, cycles of one batch, energy in pJ per
    batch and per inference), its first-order P(failure) per inference and its certificate."""

    schema_version: Literal[BASELINES_SCHEMA_VERSION]  # type: ignore[valid-type]
    workload: str
    rate: float
    unit: str
    target: float
    p: float
    k: int
    vulnerability_key: str
    vulnerability_injections: int
    rows: list[dict[str, Any]]


class VulnerabilityDocument(Document):
    """``vulnerability.json`` (:meth:`faults.vulnerability.VulnerabilityFactors.to_dict`):
    BVF per register class and bit, NVF per layer and neuron, each with its interval."""

    schema_version: int  # faults.vulnerability.VF_SCHEMA_VERSION (imported there, not here)
    key: str
    unit: str
    bvf: dict[str, list[dict[str, Any]]]
