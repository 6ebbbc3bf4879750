"""Fault campaigns: N faulty inferences over the test set, resumable and parallel.

``campaign(workload)`` runs the golden inference of every campaign sample once, then N
independent *injections*. Injection ``i`` draws a sample and a fault plan — a Poisson number
of faults at the configured rate, exactly one fault (``single``: for vulnerability studies),
or the explicit plan — from its own counter-based random stream (:func:`faults.runner.task_words`
keyed by (seed, i)), so results never depend on the number of workers or the chunking. The
runner hands whole chunks of injections to :func:`run_injections`, which computes them
together (:mod:`faults.batched`) as numpy columns (:func:`injection_columns`: one row per
injection, one per fault). Each chunk is appended to ``faults.log`` as one binary block as it
completes (:mod:`faults.runner`); a restarted campaign resumes from it and a finished one is
never recomputed; tallies and tables are computed over the columns. The summary
(``faults.json``) is written atomically, and so are the flat tables for pandas:
``injections.csv`` (one row per injection, its outcome) and ``faults.csv`` (one row per fault:
layer, fold, register, PE, cycle, bit), see :mod:`faults.records`.

Outcomes per injection (DESIGN.md "Failure"): *masked* (logits bit-identical), *SDC* (top-1
differs from the golden run: the failure), *critical SDC* (an SDC of a sample the golden run
classified correctly), accuracy under faults, and the RMSE of the dequantised logits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.config import FaultsConfig
from accelsim.cost import register_widths
from accelsim.errors import AccelsimError
from accelsim.executor import dequantize
from accelsim.jsonio import write_json_atomic
from accelsim.limits import refuse_over
from accelsim.results import records_from_columns as records_of
from accelsim.results import write_columns_csv
from accelsim.runs import OTHER_SETTINGS_HINT
from accelsim.tables import dataframe
from accelsim.workload import Workload

from .batched import counted_faulty_outputs
from .exposure import Exposure, LayerExposure
from .fault import PE_REGISTERS, REGISTERS, Fault, FaultTable, mask_bits
from .inject import Golden, golden_run
from .plan import load_plan
from .records import (
    CAMPAIGN_SCHEMA_VERSION,
    FAULTS_CSV,
    INJECTIONS_CSV,
    fault_record_columns,
    injection_record_columns,
)
from .runner import (
    TASKS,
    BatchTaskFn,
    ResultColumns,
    TaskSpec,
    run_tasks,
    task_indices,
    task_words,
    words_below,
    words_uniform,
)
from .sampling import SiteSampler
from .sram import sram_word_bits, sram_words
from .stats import Tally

LOG_NAME = "faults.log"  # binary: a JSON header line, then a block per chunk (faults.runner)
EARLIER_LOG_NAME = "faults.jsonl"  # the JSON-lines log of accelsim before the columnar one
SUMMARY_NAME = "faults.json"


@dataclass(frozen=True)
class CampaignSettings:
    """What each injection draws. ``mode``: ``rate``, ``single`` or ``plan``."""

    mode: str = "rate"
    rate: float = 0.0
    unit: str = "bit_cycle"
    model: str = "seu"
    mbu_width: int = 2
    registers: tuple[str, ...] = PE_REGISTERS
    layers: tuple[str, ...] | None = None  # single mode: restrict the site set
    bits: tuple[int, ...] | None = None
    neuron: int | None = None
    plan: tuple[Fault, ...] = ()

    @classmethod
    def from_config(cls, config: FaultsConfig, *, source: Path | None = None) -> CampaignSettings:
        if config.plan is not None:
            base = source.parent if source is not None else Path.cwd()
            return cls(mode="plan", plan=tuple(load_plan(base / config.plan)))
        return cls(
            rate=config.rate,
            unit=config.unit,
            model=config.model,
            mbu_width=config.mbu_width,
            registers=tuple(config.registers),
        )

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "plan"}
        data["plan"] = [f.to_dict() for f in self.plan]
        return json.loads(json.dumps(data))  # JSON-native: tuples become lists


@dataclass
class CampaignContext:
    """Read-only data every worker receives once: golden run, exposure, labels, settings."""

    golden: Golden
    exposure: Exposure
    labels: np.ndarray | None
    settings: CampaignSettings
    protected: Mapping[str, np.ndarray] = field(default_factory=dict)
    _sampler: SiteSampler | None = field(default=None, repr=False)
    _graph_hash: tuple[Any, str] | None = field(default=None, repr=False, compare=False)

    def graph_hash(self, graph: Any) -> str:
        """``graph.content_hash()`` (sha256 over every weight: 0.1 s for ResNet-18), computed
        once per context for the graph last asked of — a context serves many campaigns;
        graphs are not changed in place (a content hash keys caches everywhere)."""
        if self._graph_hash is None or self._graph_hash[0] is not graph:
            self._graph_hash = (graph, graph.content_hash())
        return self._graph_hash[1]

    def __getstate__(self) -> dict[str, Any]:  # workers need no hash (nor a second graph)
        return {**self.__dict__, "_graph_hash": None}

    def sampler(self) -> SiteSampler:
        if self._sampler is None:
            s = self.settings
            self._sampler = SiteSampler(
                self.exposure,
                registers=s.registers,
                layers=s.layers,
                bits=s.bits,
                neuron=s.neuron,
                unit=s.unit if s.mode == "rate" else "bit_cycle",
            )
        return self._sampler


def exposure_of(golden: Golden) -> Exposure:
    """What one inference exposes: every GEMM layer's folds on the array, batch 1, and its
    words in the input, weight and output buffers (:mod:`faults.sram`)."""
    accel = golden.accel
    layers = tuple(
        LayerExposure.from_schedule(
            sched,
            accel.array.dataflow,
            accel.array.rows,
            sram_words=sram_words(sched),
            sram_word_bits=sram_word_bits(sched),
        )
        for sched in golden.schedules.values()
    )
    return Exposure(layers, register_widths(golden.graph), accel.protection.hardened_bits)


# how injections draw: a log written under another scheme holds other faults, so it is refused
DRAW_SCHEME = "task_words/1"
# words of a task's counter-based random stream (faults.runner.task_words)
SAMPLE_WORD, COUNT_WORD, FIRST_FAULT_WORD = 0, 1, 2  # then 2 words per fault: site, cycle


def draw_batch(
    tasks: Sequence[int], seed: int, ctx: CampaignContext
) -> tuple[np.ndarray, FaultTable]:
    """The samples and faults of injections ``tasks`` (row ``j`` of the table belongs to
    ``tasks[injection[j]]``), each a function of (seed, task index) only."""
    index = np.asarray(tasks, dtype=np.int64)
    batch = len(index)
    samples = words_below(task_words(seed, index, np.full(batch, SAMPLE_WORD)), ctx.golden.samples)
    s = ctx.settings
    if s.mode == "plan":
        return samples, FaultTable.from_faults([s.plan] * batch)
    sampler = ctx.sampler()
    if s.mode == "single":
        counts = np.ones(batch, dtype=np.int64)
    elif sampler.total == 0 or s.rate == 0:
        counts = np.zeros(batch, dtype=np.int64)
    else:
        uniform = words_uniform(task_words(seed, index, np.full(batch, COUNT_WORD)))
        counts = poisson_counts(uniform, s.rate * sampler.total)
    injection = np.repeat(np.arange(batch), counts)
    if len(injection) == 0:
        return samples, FaultTable.from_faults([[] for _ in range(batch)])
    nth = np.arange(len(injection)) - np.repeat(np.cumsum(counts) - counts, counts)
    owner = index[injection]
    sites = words_below(task_words(seed, owner, FIRST_FAULT_WORD + 2 * nth), sampler.total)
    cycle_words = task_words(seed, owner, FIRST_FAULT_WORD + 2 * nth + 1) >> np.uint64(1)
    table = sampler.locate(
        injection, sites, cycle_words.astype(np.int64), model=s.model, mbu_width=s.mbu_width
    )
    return samples, table


def poisson_counts(uniform: np.ndarray, mean: float) -> np.ndarray:
    """Poisson(``mean``) counts by inversion of uniforms in [0, 1)."""
    from scipy.stats import poisson

    return np.maximum(poisson.ppf(uniform, mean), 0).astype(np.int64)


def draw_faults(task: TaskSpec, ctx: CampaignContext) -> tuple[int, list[Fault]]:
    """Injection ``task.index``'s sample and faults, from its own random stream only."""
    samples, table = draw_batch([task.index], task.seed, ctx)
    return int(samples[0]), table.faults(0, sample=int(samples[0]))


# a chunk's columns (faults.runner.ResultColumns): one row per injection, one per fault
INJECTION_TABLE, FAULT_TABLE = TASKS, "faults"
# faults' columns in the log: the FaultTable's, ``layer`` indexing the golden run's GEMM layers
FAULT_COLUMNS = ("layer", "fold", "register", "row", "col", "cycle", "mask", "kind")
NO_LABEL = -1  # ``correct`` / ``golden_correct`` of an unlabelled sample (else 0 or 1)

# the biggest chunk of injections computed together: where the batched kernels stop gaining
# (bench/faults_speed.py, digits CNN single fault, serial, fastest of 3: chunks of 256
# 58-77k/s, 1024 205k/s, 2048 228k/s; noisy on a shared machine, so no finer optimum)
MAX_CHUNK = 2048
# and a chunk's copy of one activation tensor stays below this: ResNet-18 at 64x64 (512 KiB
# per sample) gets 512 (batched compute alone: 128 1.0-1.1k/s, 256 1.15k/s, 512 1.24k/s;
# peak RSS of a chunk of 512: 774 MiB, of 256: 749 MiB; at 224x224, 16x larger, 32)
CHUNK_BYTES = 256 * 2**20


def preferred_chunk(ctx: CampaignContext) -> int:
    """Injections per chunk for ``ctx``'s network: :data:`MAX_CHUNK`, fewer where one
    sample's largest activation tensor times the chunk would exceed :data:`CHUNK_BYTES`."""
    golden = ctx.golden
    per_sample = max(golden.values[name][:1].nbytes for name in golden.values)
    return max(16, min(MAX_CHUNK, CHUNK_BYTES // max(per_sample, 1)))


def layer_names_of(ctx: CampaignContext) -> tuple[str, ...]:
    """The names the log's fault ``layer`` column indexes: the golden run's GEMM layers."""
    return tuple(ctx.golden.schedules)


def injection_columns(tasks: Sequence[TaskSpec], ctx: CampaignContext) -> ResultColumns:
    """Faulty inferences of a chunk of injections and their outcomes, computed together
    (:mod:`faults.batched`), as columns: one row per injection (sample, outcome, counts) and
    one per fault (where it struck); each row depends only on its own task."""
    index = task_indices(tasks)
    batch = len(index)
    if batch == 0:
        return _empty_columns()
    samples, table = draw_batch(index, tasks[0].seed, ctx)
    golden = ctx.golden
    outputs, counts = counted_faulty_outputs(golden, samples, table, protected=ctx.protected)
    reference = golden.values[golden.graph.output][samples]
    spec = golden.graph.tensors[golden.graph.output]
    diff = (dequantize(spec, outputs) - dequantize(spec, reference)).reshape(batch, -1)
    top1 = outputs.reshape(batch, -1).argmax(axis=1)
    golden_top1 = reference.reshape(batch, -1).argmax(axis=1)
    if ctx.labels is None:
        correct = golden_correct = np.full(batch, NO_LABEL, dtype=np.int8)
    else:
        labels = ctx.labels[samples]
        correct = (top1 == labels).astype(np.int8)
        golden_correct = (golden_top1 == labels).astype(np.int8)
    injections = {
        "task": index,
        "sample": samples.astype(np.int64),
        "faults": np.bincount(table.injection, minlength=batch).astype(np.int64),
        "masked": np.all((outputs == reference).reshape(batch, -1), axis=1),
        "top1_changed": top1 != golden_top1,
        "correct": correct,
        "golden_correct": golden_correct,
        "rmse": np.sqrt(np.mean(diff * diff, axis=1)).astype(np.float64),
        "masked_early": counts.masked_early,
        "tiles_recomputed": counts.tiles_recomputed,
        "layers_recomputed": counts.layers_recomputed,
    }
    names = {name: i for i, name in enumerate(layer_names_of(ctx))}
    to_golden_layer = np.array([names[n] for n in table.layer_names], dtype=np.int64)
    faults = {"task": index[table.injection]}
    for name in FAULT_COLUMNS:
        column = getattr(table, name).astype(np.int64, copy=False)
        faults[name] = to_golden_layer[column] if name == "layer" else column
    return ResultColumns({INJECTION_TABLE: injections, FAULT_TABLE: faults})


def _empty_columns() -> ResultColumns:
    ints = np.zeros(0, dtype=np.int64)
    flags, labels = np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int8)
    injections = {
        "task": ints,
        "sample": ints,
        "faults": ints,
        "masked": flags,
        "top1_changed": flags,
        "correct": labels,
        "golden_correct": labels,
        "rmse": np.zeros(0, dtype=np.float64),
        "masked_early": ints,
        "tiles_recomputed": ints,
        "layers_recomputed": ints,
    }
    faults = {"task": ints, **{name: ints for name in FAULT_COLUMNS}}
    return ResultColumns({INJECTION_TABLE: injections, FAULT_TABLE: faults})


def injection_dicts(
    columns: ResultColumns, layer_names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The per-injection results of ``columns`` as the JSON-native dicts of the generic path:
    sample, faults, the register classes, layers and bits its faults hit (merged), the
    outcome and the shortcuts' counts. ``layer_names``: what the faults' ``layer`` indexes
    (the golden run's GEMM layers, :func:`layer_names_of`)."""
    inj, flt = columns.tables[INJECTION_TABLE], columns.tables[FAULT_TABLE]
    bounds = np.searchsorted(flt["task"], inj["task"], side="left").tolist()
    ends = np.searchsorted(flt["task"], inj["task"], side="right").tolist()
    registers = [REGISTERS[r] for r in flt["register"].tolist()]
    names = layer_names or ()
    layers = [names[x] for x in flt["layer"].tolist()] if len(flt["layer"]) else []
    masks = flt["mask"].tolist()
    label = {NO_LABEL: None, 0: False, 1: True}
    rows = zip(
        inj["sample"].tolist(),
        inj["masked"].tolist(),
        inj["top1_changed"].tolist(),
        inj["correct"].tolist(),
        inj["golden_correct"].tolist(),
        inj["rmse"].tolist(),
        inj["masked_early"].tolist(),
        inj["tiles_recomputed"].tolist(),
        inj["layers_recomputed"].tolist(),
        strict=True,
    )
    results = []
    for i, (sample, masked, changed, correct, golden, rmse, early, tiles, later) in enumerate(rows):
        lo, hi = bounds[i], ends[i]
        union = 0
        for mask in masks[lo:hi]:
            union |= mask
        results.append(
            {
                "sample": sample,
                "faults": hi - lo,
                "registers": sorted(set(registers[lo:hi])),
                "layers": sorted(set(layers[lo:hi])),
                "bits": list(mask_bits(union)),
                "masked": masked,
                "top1_changed": changed,
                "correct": label[correct],
                "golden_correct": label[golden],
                "rmse": rmse,
                "masked_early": early,
                "tiles_recomputed": tiles,
                "layers_recomputed": later,
            }
        )
    return results


def run_injections(tasks: Sequence[TaskSpec], ctx: CampaignContext) -> list[dict[str, Any]]:
    """:func:`injection_columns` as one dict per injection (:func:`injection_dicts`)."""
    return injection_rows(injection_columns(tasks, ctx), ctx)


def injection_rows(columns: ResultColumns, ctx: CampaignContext) -> list[dict[str, Any]]:
    """:func:`injection_dicts` with ``ctx``'s layer names (the runner's ``rows``)."""
    return injection_dicts(columns, layer_names_of(ctx))


run_injection = BatchTaskFn(
    injection_columns,
    rows=injection_rows,
    chunk=preferred_chunk,
)  # one injection (a dict), or whole chunks (columns) for the runner


@dataclass(frozen=True)
class CampaignResult:
    """A campaign's outcome: overall summary with 95% intervals and its breakdowns."""

    workload: str
    injections: int
    seed: int
    settings: CampaignSettings
    summary: dict[str, Any]
    per_register: dict[str, dict[str, Any]]
    per_layer: dict[str, dict[str, Any]]
    faults_per_inference: float  # mean injected faults
    expected_faults_per_inference: float | None  # rate x exposed sites (rate mode)
    masked_early: int
    tiles_recomputed: int
    layers_recomputed: int
    golden_accuracy: float | None
    # every injection's outcome and faults (faults.runner.ResultColumns: what the log holds)
    columns: ResultColumns | None = field(repr=False, default=None)
    layer_names: tuple[str, ...] = field(repr=False, default=())  # what fault ``layer`` indexes
    # what drew the faults (to tell which were masked early); not part of the data
    context: CampaignContext | None = field(repr=False, compare=False, default=None)

    @property
    def results(self) -> tuple[dict[str, Any], ...]:
        """One dict per injection, task order (:func:`injection_dicts`): built on demand."""
        if self.columns is None:
            return ()
        return tuple(injection_dicts(self.columns, self.layer_names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": CAMPAIGN_SCHEMA_VERSION,
            "workload": self.workload,
            "injections": self.injections,
            "seed": self.seed,
            "settings": self.settings.to_dict(),
            "summary": self.summary,
            "per_register": self.per_register,
            "per_layer": self.per_layer,
            "faults_per_inference": self.faults_per_inference,
            "expected_faults_per_inference": self.expected_faults_per_inference,
            "masked_early": self.masked_early,
            "tiles_recomputed": self.tiles_recomputed,
            "layers_recomputed": self.layers_recomputed,
            "golden_accuracy": self.golden_accuracy,
            "tables": {"injections": INJECTIONS_CSV, "faults": FAULTS_CSV},
        }

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per injection, its outcome (:class:`faults.records.InjectionRecord`)."""
        return records_of(self._record_columns("injections"))

    def fault_records(self) -> list[dict[str, Any]]:
        """One flat dict per fault: where it struck and its injection's outcome
        (:class:`faults.records.FaultRecord`), from the columns the campaign logged."""
        return records_of(self._record_columns("faults"))

    def _record_columns(self, table: str) -> dict[str, list[Any]]:
        if self.columns is None:
            raise ValueError("this result holds no injections")
        if table == "injections":
            return injection_record_columns(self.columns)
        golden = None if self.context is None else self.context.golden
        return fault_record_columns(self.columns, self.layer_names, golden)

    def to_dataframe(self, table: str = "injections") -> Any:
        """``table`` (``injections`` or ``faults``) as a ``pandas.DataFrame``."""
        return dataframe(self._table(table), what="CampaignResult")

    def to_csv(self, path: str | Path, table: str = "injections") -> Path:
        """Write ``table`` (``injections`` or ``faults``) as CSV (from the columns: the same
        text as :func:`accelsim.tables.write_records_csv` of the records)."""
        return write_columns_csv(self._record_columns(self._check_table(table)), path)

    def _table(self, table: str) -> list[dict[str, Any]]:
        return records_of(self._record_columns(self._check_table(table)))

    @staticmethod
    def _check_table(table: str) -> str:
        if table not in ("injections", "faults"):
            raise ValueError(f"table {table!r} is not one of injections, faults")
        return table

    def write_tables(self, out_dir: str | Path) -> None:
        """``injections.csv`` and ``faults.csv`` in ``out_dir`` (atomically)."""
        self.to_csv(Path(out_dir) / INJECTIONS_CSV)
        self.to_csv(Path(out_dir) / FAULTS_CSV, "faults")


def tally_of(injections: Mapping[str, np.ndarray], rows: np.ndarray | slice = slice(None)) -> Tally:
    """The :class:`faults.stats.Tally` of injections ``rows`` of an injection table, by
    counting over its columns; the RMSE moments in two passes (mean, then the sum of squared
    deviations) in task order, so the same rows give the same bits however they were chunked."""
    masked = injections["masked"][rows]
    changed = injections["top1_changed"][rows]
    correct = injections["correct"][rows]
    golden_correct = injections["golden_correct"][rows]
    rmse = injections["rmse"][rows]
    count = len(masked)
    mean = float(np.mean(rmse)) if count else 0.0
    return Tally(
        count=count,
        masked=int(np.count_nonzero(masked)),
        corrupted=count - int(np.count_nonzero(masked)),
        sdc=int(np.count_nonzero(changed)),
        critical_sdc=int(np.count_nonzero(changed & (golden_correct == 1))),
        labelled=int(np.count_nonzero(correct != NO_LABEL)),
        correct=int(np.count_nonzero(correct == 1)),
        rmse_mean=mean,
        rmse_m2=float(np.sum((rmse - mean) ** 2)) if count else 0.0,
    )


def summarize(columns: ResultColumns, layer_names: Sequence[str]) -> tuple[Tally, dict, dict]:
    """Overall tally and per register class / per layer tallies (an injection with faults in
    several classes or layers counts in each once), over a campaign's columns."""
    injections, faults = columns.tables[INJECTION_TABLE], columns.tables[FAULT_TABLE]
    owner = np.searchsorted(injections["task"], faults["task"])  # injection row of each fault
    n = max(len(injections["task"]), 1)

    def grouped(codes: np.ndarray, names: Sequence[str]) -> dict[str, Tally]:
        pairs = np.unique(codes * n + owner)  # (code, injection) once each, by code
        code, row = np.divmod(pairs, n)
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else []
        bounds = [*list(starts), len(code)]
        return {
            names[int(code[lo])]: tally_of(injections, row[lo:hi])
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        }

    per_register = grouped(faults["register"], REGISTERS)
    per_layer = grouped(faults["layer"], layer_names)
    return tally_of(injections), per_register, per_layer


def campaign_key(
    workload: Workload,
    settings: CampaignSettings,
    samples: int,
    seed: int,
    *,
    graph_hash: str | None = None,
) -> str:
    """Identifies a campaign: a log written for another key is refused, never mixed in.
    ``graph_hash``: ``workload.graph.content_hash()`` if the caller has it."""
    blob = json.dumps(
        {
            "graph": graph_hash or workload.graph.content_hash(),
            "accelerator": workload.config.accelerator.model_dump(mode="json"),
            "settings": settings.to_dict(),
            "samples": samples,
            "seed": seed,
            "inputs": hashlib.sha256(np.ascontiguousarray(workload.inputs[:samples])).hexdigest(),
            "draws": DRAW_SCHEME,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare(
    workload: Workload,
    settings: CampaignSettings,
    *,
    samples: int | None = None,
    protected: Mapping[str, np.ndarray] | None = None,
) -> CampaignContext:
    """The golden run and exposure that every injection of a campaign shares."""
    n = len(workload.inputs) if samples is None else min(samples, len(workload.inputs))
    golden = golden_run(workload.graph, workload.config.accelerator, workload.inputs[:n])
    labels = None if workload.labels is None else np.asarray(workload.labels[:n])
    return CampaignContext(
        golden=golden,
        exposure=exposure_of(golden),
        labels=labels,
        settings=settings,
        protected=dict(protected or {}),
    )


def campaign(
    workload: Workload,
    *,
    injections: int | None = None,
    settings: CampaignSettings | None = None,
    samples: int | None = None,
    seed: int | None = None,
    workers: int | str | None = None,
    out_dir: str | Path | None = None,
    protected: Mapping[str, np.ndarray] | None = None,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
    on_chunk: Callable[[ResultColumns], None] | None = None,
    context: CampaignContext | None = None,
    executor: Any = None,
    chunk: int | None = None,
) -> CampaignResult:
    """Run (or resume) a fault campaign on ``workload``; defaults come from its ``faults:``.

    ``out_dir``: where ``faults.log`` (appended as injections finish) and ``faults.json``
    go; without it the log lives in a temporary folder and nothing is kept. ``protected``:
    neurons (output channels per layer) recomputed by the redundant units. ``on_chunk``:
    called with each chunk's columns (:func:`injection_columns`) as it is logged — the
    logged ones first — for a live display at O(1) per chunk; ``on_result(i, result)`` the
    same per injection, as a dict (:func:`injection_dicts`: per-injection cost). ``chunk``:
    injections per chunk (computed together, one log block, one fsync); by default what
    :func:`preferred_chunk` says, fewer to give each worker several.
    """
    import tempfile

    cfg = workload.config.faults or FaultsConfig()
    if settings is None:
        settings = (
            context.settings
            if context is not None
            else (CampaignSettings.from_config(cfg, source=workload.source))
        )
    injections = injections if injections is not None else cfg.injections
    samples = samples if samples is not None else cfg.samples
    seed = cfg.seed if seed is None else seed
    workers = cfg.workers if workers is None else workers
    limits = workload.config.limits
    refuse_over(injections, limits, "injections", key="faults.injections", what="injections")
    ctx = context or prepare(workload, settings, samples=samples, protected=protected)
    if settings.mode == "rate":
        refuse_over(
            settings.rate * ctx.sampler().total,
            limits,
            "faults_per_inference",
            key="faults.rate",
            what="faults per inference at this rate",
        )
    n_samples = ctx.golden.samples
    key = campaign_key(
        workload, settings, n_samples, seed, graph_hash=ctx.graph_hash(workload.graph)
    )

    def execute(log_dir: Path) -> ResultColumns:
        if (log_dir / EARLIER_LOG_NAME).exists() and not (log_dir / LOG_NAME).exists():
            raise AccelsimError(  # say so rather than quietly start again from nothing
                f"holds the {EARLIER_LOG_NAME} of an earlier accelsim, which this version "
                f"cannot resume; {OTHER_SETTINGS_HINT}",
                file=log_dir,
            )
        return run_tasks(
            run_injection,
            injections,
            seed=seed,
            log_path=log_dir / LOG_NAME,
            workers=workers,
            context=ctx,
            run_key=key,
            on_result=on_result,
            on_chunk=on_chunk,
            executor=executor,
            chunk=chunk,
        )

    if out_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            columns = execute(Path(tmp))
    else:
        columns = execute(Path(out_dir))
    result = _result(workload, ctx, settings, seed, columns)
    if out_dir is not None:
        result.write_tables(out_dir)
        write_json_atomic(Path(out_dir) / SUMMARY_NAME, result.to_dict())
    return result


def _result(
    workload: Workload,
    ctx: CampaignContext,
    settings: CampaignSettings,
    seed: int,
    columns: ResultColumns,
) -> CampaignResult:
    layer_names = layer_names_of(ctx)
    total, per_register, per_layer = summarize(columns, layer_names)
    injections = columns.tables[INJECTION_TABLE]
    golden_accuracy = None
    if ctx.labels is not None:
        predictions = ctx.golden.outputs.reshape(ctx.golden.samples, -1).argmax(axis=1)
        golden_accuracy = float(np.mean(predictions == ctx.labels))
    expected = None
    if settings.mode == "rate":
        expected = settings.rate * ctx.sampler().total
    count = len(columns)
    return CampaignResult(
        workload=workload.name,
        injections=count,
        seed=seed,
        settings=settings,
        summary=total.summary(),
        per_register={k: v.summary() for k, v in sorted(per_register.items())},
        per_layer={k: per_layer[k].summary() for k in ctx.golden.schedules if k in per_layer},
        faults_per_inference=float(np.mean(injections["faults"])) if count else 0.0,
        expected_faults_per_inference=expected,
        masked_early=int(np.sum(injections["masked_early"])),
        tiles_recomputed=int(np.sum(injections["tiles_recomputed"])),
        layers_recomputed=int(np.sum(injections["layers_recomputed"])),
        golden_accuracy=golden_accuracy,
        columns=columns,
        layer_names=layer_names,
        context=ctx,
    )
