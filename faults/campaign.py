"""Fault campaigns: N faulty inferences over the test set, resumable and parallel.

``campaign(workload)`` runs the golden inference of every campaign sample once, then N
independent *injections*. Injection ``i`` draws a sample and a fault plan — a Poisson number
of faults at the configured rate, exactly one fault (``single``: for vulnerability studies),
or the explicit plan — from its own counter-based random stream (:func:`faults.runner.task_words`
keyed by (seed, i)), so results never depend on the number of workers or the chunking. The
runner hands whole chunks of injections to :func:`run_injections`, which computes them
together (:mod:`faults.batched`). Each result is appended to ``faults.jsonl`` as it completes;
a restarted campaign resumes from it and a finished one is never recomputed. The summary
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
from accelsim.executor import dequantize
from accelsim.jsonio import write_json_atomic
from accelsim.limits import refuse_over
from accelsim.tables import dataframe, write_records_csv
from accelsim.workload import Workload

from .batched import faulty_outputs
from .exposure import Exposure, LayerExposure
from .fault import PE_REGISTERS, REGISTERS, Fault, FaultTable, mask_bits
from .inject import Golden, golden_run
from .plan import load_plan
from .records import (
    CAMPAIGN_SCHEMA_VERSION,
    FAULTS_CSV,
    INJECTIONS_CSV,
    fault_records,
    injection_records,
)
from .runner import BatchTaskFn, TaskSpec, run_tasks, task_words, words_below, words_uniform
from .sampling import SiteSampler
from .sram import sram_word_bits, sram_words
from .stats import Tally

LOG_NAME = "faults.jsonl"
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


def run_injections(tasks: Sequence[TaskSpec], ctx: CampaignContext) -> list[dict[str, Any]]:
    """Faulty inferences of a chunk of injections and their outcomes, computed together
    (:mod:`faults.batched`); each result depends only on its own task."""
    if not tasks:
        return []
    seed = tasks[0].seed
    samples, table = draw_batch([t.index for t in tasks], seed, ctx)
    golden = ctx.golden
    outputs, stats = faulty_outputs(golden, samples, table, protected=ctx.protected)
    batch = len(tasks)
    reference = golden.values[golden.graph.output][samples]
    spec = golden.graph.tensors[golden.graph.output]
    diff = (dequantize(spec, outputs) - dequantize(spec, reference)).reshape(batch, -1)
    rmse = np.sqrt(np.mean(diff * diff, axis=1))
    masked = np.all((outputs == reference).reshape(batch, -1), axis=1)
    top1 = outputs.reshape(batch, -1).argmax(axis=1)
    golden_top1 = reference.reshape(batch, -1).argmax(axis=1)
    labels = [None] * batch if ctx.labels is None else ctx.labels[samples].tolist()
    bounds = np.searchsorted(table.injection, np.arange(batch + 1)).tolist()
    # plain Python lists: per-injection work below touches no numpy scalars
    registers = [REGISTERS[r] for r in table.register.tolist()]
    layers = [table.layer_names[x] for x in table.layer.tolist()]
    masks = table.mask.tolist()
    samples_, masked_, rmse_ = samples.tolist(), masked.tolist(), rmse.tolist()
    top1_, golden_top1_ = top1.tolist(), golden_top1.tolist()
    results = []
    for i in range(batch):
        lo, hi = bounds[i], bounds[i + 1]
        union = 0
        for mask in masks[lo:hi]:
            union |= mask
        label = labels[i]
        results.append(
            {
                "sample": samples_[i],
                "faults": hi - lo,
                "registers": sorted(set(registers[lo:hi])),
                "layers": sorted(set(layers[lo:hi])),
                "bits": list(mask_bits(union)),
                "masked": masked_[i],
                "top1_changed": top1_[i] != golden_top1_[i],
                "correct": None if label is None else top1_[i] == label,
                "golden_correct": None if label is None else golden_top1_[i] == label,
                "rmse": rmse_[i],
                "masked_early": stats[i].masked_early,
                "tiles_recomputed": stats[i].tiles_recomputed,
                "layers_recomputed": stats[i].layers_recomputed,
            }
        )
    return results


run_injection = BatchTaskFn(run_injections)  # one injection, or whole chunks for the runner


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
    results: tuple[dict[str, Any], ...] = field(repr=False, default=())
    # what drew the faults (to list them again, :meth:`fault_records`); not part of the data
    context: CampaignContext | None = field(repr=False, compare=False, default=None)

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
        return injection_records(self.results)

    def fault_records(self) -> list[dict[str, Any]]:
        """One flat dict per fault: where it struck and its injection's outcome
        (:class:`faults.records.FaultRecord`), drawn again from (seed, injection)."""
        if self.context is None:
            raise ValueError("this result holds no campaign context to draw its faults from")
        _, table = draw_batch(range(len(self.results)), self.seed, self.context)
        return fault_records(table, self.results, self.context.golden)

    def to_dataframe(self, table: str = "injections") -> Any:
        """``table`` (``injections`` or ``faults``) as a ``pandas.DataFrame``."""
        return dataframe(self._table(table), what="CampaignResult")

    def to_csv(self, path: str | Path, table: str = "injections") -> Path:
        """Write ``table`` (``injections`` or ``faults``) as CSV."""
        return write_records_csv(self._table(table), path)

    def _table(self, table: str) -> list[dict[str, Any]]:
        if table == "injections":
            return self.to_records()
        if table == "faults":
            return self.fault_records()
        raise ValueError(f"table {table!r} is not one of injections, faults")

    def write_tables(self, out_dir: str | Path) -> None:
        """``injections.csv`` and ``faults.csv`` in ``out_dir`` (atomically)."""
        self.to_csv(Path(out_dir) / INJECTIONS_CSV)
        self.to_csv(Path(out_dir) / FAULTS_CSV, "faults")


def _add(tally: Tally, r: Mapping[str, Any]) -> None:
    tally.add(
        masked=r["masked"],
        top1_changed=r["top1_changed"],
        rmse=r["rmse"],
        correct=r["correct"],
        golden_correct=r["golden_correct"],
    )


def summarize(results: Sequence[Mapping[str, Any]]) -> tuple[Tally, dict, dict]:
    """Overall tally and per register class / per layer tallies (an injection with faults in
    several classes or layers counts in each)."""
    total, per_register, per_layer = Tally(), {}, {}
    for r in results:
        _add(total, r)
        for name in r["registers"]:
            _add(per_register.setdefault(name, Tally()), r)
        for name in r["layers"]:
            _add(per_layer.setdefault(name, Tally()), r)
    return total, per_register, per_layer


def campaign_key(workload: Workload, settings: CampaignSettings, samples: int, seed: int) -> str:
    """Identifies a campaign: a log written for another key is refused, never mixed in."""
    blob = json.dumps(
        {
            "graph": workload.graph.content_hash(),
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
    context: CampaignContext | None = None,
    executor: Any = None,
) -> CampaignResult:
    """Run (or resume) a fault campaign on ``workload``; defaults come from its ``faults:``.

    ``out_dir``: where ``faults.jsonl`` (appended as injections finish) and ``faults.json``
    go; without it the log lives in a temporary folder and nothing is kept. ``protected``:
    neurons (output channels per layer) recomputed by the redundant units.
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
    key = campaign_key(workload, settings, n_samples, seed)

    def execute(log_dir: Path) -> list[dict[str, Any]]:
        return run_tasks(
            run_injection,
            injections,
            seed=seed,
            log_path=log_dir / LOG_NAME,
            workers=workers,
            context=ctx,
            run_key=key,
            on_result=on_result,
            executor=executor,
        )

    if out_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            results = execute(Path(tmp))
    else:
        results = execute(Path(out_dir))
    result = _result(workload, ctx, settings, seed, results)
    if out_dir is not None:
        result.write_tables(out_dir)
        write_json_atomic(Path(out_dir) / SUMMARY_NAME, result.to_dict())
    return result


def _result(
    workload: Workload,
    ctx: CampaignContext,
    settings: CampaignSettings,
    seed: int,
    results: list[dict[str, Any]],
) -> CampaignResult:
    total, per_register, per_layer = summarize(results)
    golden_accuracy = None
    if ctx.labels is not None:
        predictions = ctx.golden.outputs.reshape(ctx.golden.samples, -1).argmax(axis=1)
        golden_accuracy = float(np.mean(predictions == ctx.labels))
    expected = None
    if settings.mode == "rate":
        expected = settings.rate * ctx.sampler().total
    return CampaignResult(
        workload=workload.name,
        injections=len(results),
        seed=seed,
        settings=settings,
        summary=total.summary(),
        per_register={k: v.summary() for k, v in sorted(per_register.items())},
        per_layer={k: per_layer[k].summary() for k in ctx.golden.schedules if k in per_layer},
        faults_per_inference=float(np.mean([r["faults"] for r in results])) if results else 0.0,
        expected_faults_per_inference=expected,
        masked_early=sum(r["masked_early"] for r in results),
        tiles_recomputed=sum(r["tiles_recomputed"] for r in results),
        layers_recomputed=sum(r["layers_recomputed"] for r in results),
        golden_accuracy=golden_accuracy,
        results=tuple(results),
        context=ctx,
    )
