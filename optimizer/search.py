"""The search driver: ``optimize(workload, run)`` searches the workload's ``optimize:`` space
for the cheapest feasible design.

One run (:class:`OptimizeRun` says how) is: the search (BO, random or exhaustive,
:func:`run_search`) over designs evaluated by a :class:`~optimizer.evaluate.DesignEvaluator`,
optionally a comparison search at the same budget, certificates of the answers when the
workload has a reliability target, then the fixed designs (:func:`optimizer.baselines.
fixed_designs`) on the best design's hardware. Logs are JSONL (a rerun resumes); the result is
``optimize.json``, written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from accelsim.config import validation_error
from accelsim.jsonio import write_json_atomic
from accelsim.tables import dataframe, write_records_csv
from accelsim.workload import Workload
from faults.protection import workload_units

from .baselines import exhaustive_search, fixed_designs, random_search
from .config import OptimizeConfig, parse_optimize
from .design import workload_design
from .estimators import ReliabilityEstimator
from .evaluate import DesignEvaluator
from .log import CHECK_KEY, Evaluate, Evaluation, Progress, ProgressCallback, SearchResult, Verify
from .loop import bayesian_optimize
from .pools import EvaluatorPool
from .records import (
    OBJECTIVE_UNITS,
    OPTIMIZE_SCHEMA_VERSION,
    evaluation_records,
    with_natural_constraints,
)


@dataclasses.dataclass(frozen=True)
class OptimizeRun:
    """How :func:`optimize` runs, beyond the workload's ``optimize:`` section.

    ``out_dir``: the JSONL logs (appended as evaluations finish; a rerun resumes) and
    ``optimize.json``. ``cache_dir``: the injection records of the reliability estimates,
    keyed by their content so runs may share them (default ``out_dir/cache``). ``budget`` / ``method``: override the section's.
    ``compare``: also run random search at the same budget (BO when ``method`` is random).
    ``with_fixed``: evaluate the fixed protection designs on the best design's hardware.
    ``batch_size`` q: BO proposes and evaluates q designs per iteration (its log is named
    ``...-q<q>``). ``estimator``: the reliability estimator (default: the section's stratified
    one). ``evaluator_pool``: where designs are evaluated (BO batches and the fixed designs; see
    :mod:`optimizer.pools`), default this process. ``on_evaluation(progress)`` after each
    evaluation; ``on_phase(name, total)`` before each search (for progress bars).
    """

    out_dir: str | Path | None = None
    cache_dir: str | Path | None = None
    budget: int | None = None
    method: str | None = None
    compare: bool = False
    with_fixed: bool = True
    batch_size: int = 1
    estimator: ReliabilityEstimator | None = None
    evaluator_pool: EvaluatorPool | None = None
    on_evaluation: ProgressCallback | None = None
    on_phase: Callable[[str, int], None] | None = None


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
        """``optimize.json``: every evaluation with its ``constraints_natural`` (the measured
        quantities next to their limits, units in the keys; :mod:`optimizer.records`)."""
        limits = self.config.section.constraints.model_dump(mode="json")

        def natural(ev: Evaluation | None) -> dict[str, Any] | None:
            return None if ev is None else with_natural_constraints(ev, limits)

        def search(result: SearchResult | None) -> dict[str, Any] | None:
            if result is None:
                return None
            data = result.to_dict()
            data["best"] = natural(result.best)
            data["evaluations"] = [natural(e) for e in result.evaluations]
            return data

        return {
            "schema_version": OPTIMIZE_SCHEMA_VERSION,
            "workload": self.workload,
            "optimize": self.config.to_dict(),
            "objective_unit": OBJECTIVE_UNITS[self.config.objective],
            "reliability_method": self.reliability_method,
            "best": natural(self.best),
            "best_design": None if self.best is None else self.config.readable(self.best.design),
            "message": self.search.message,
            "search": search(self.search),
            "comparison": search(self.comparison),
            "fixed_designs": {name: natural(ev) for name, ev in self.fixed.items()},
            "logs": dict(self.log_paths),
        }

    def to_records(self) -> list[dict[str, Any]]:
        """One flat row per evaluated design (:func:`optimizer.records.evaluation_records`)."""
        return evaluation_records(self.to_dict())

    def to_dataframe(self) -> Any:
        """The rows of :meth:`to_records` as a ``pandas.DataFrame``."""
        return dataframe(self.to_records(), what="OptimizeResult")

    def to_csv(self, path: str | Path) -> Path:
        """Write the rows of :meth:`to_records` as CSV."""
        return write_records_csv(self.to_records(), path)


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
    evaluate: Evaluate,
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
    workload: Workload, run: OptimizeRun | None = None, /, **fields: Any
) -> OptimizeResult:
    """Search the workload's ``optimize:`` space for the cheapest feasible design.

    ``run`` says how (:class:`OptimizeRun`); keyword ``fields`` of :class:`OptimizeRun`
    replace its values (``optimize(workload, budget=6)``)."""
    run = dataclasses.replace(run or OptimizeRun(), **fields)
    opt = search_config(workload, run)
    out = None if run.out_dir is None else Path(run.out_dir)
    cache = run.cache_dir
    if cache is None and out is not None:
        cache = out / "cache"
    evaluator = DesignEvaluator(workload, opt, cache_dir=cache, estimator=run.estimator)
    searches = _Searches(workload, opt, evaluator, run, out)
    result = searches.search(opt.method)
    comparison = None
    if run.compare:
        comparison = searches.search("random" if opt.method != "random" else "bo")
    if evaluator.certifies:
        result = certified_message(result)
        comparison = None if comparison is None else certified_message(comparison)
    fixed = searches.fixed(result) if run.with_fixed else {}
    outcome = OptimizeResult(
        workload=workload.name,
        config=opt,
        search=result,
        comparison=comparison,
        fixed=fixed,
        evaluated=evaluator.evaluations + searches.remote,
        reliability_method=evaluator.estimator.method if evaluator.estimator else "none",
        log_paths=searches.logs,
    )
    if out is not None:
        write_json_atomic(out / "optimize.json", outcome.to_dict())
    return outcome


def search_config(workload: Workload, run: OptimizeRun) -> OptimizeConfig:
    """The workload's ``optimize:`` section with the run's budget and method."""
    opt = parse_optimize(workload.config.optimize, workload=workload.config, file=workload.source)
    changes = {k: v for k, v in (("budget", run.budget), ("method", run.method)) if v is not None}
    if not changes:
        return opt
    try:
        return opt.with_updates(**changes)
    except ValidationError as exc:
        raise validation_error(
            exc, file=str(workload.source or "<workload>"), prefix="optimize"
        ) from None


class _Searches:
    """The searches and fixed designs of one :func:`optimize` run, on one evaluator: names
    their logs (``logs``) and counts the designs the pool's workers evaluated (``remote``: the
    evaluator of this process does not see them)."""

    def __init__(
        self,
        workload: Workload,
        opt: OptimizeConfig,
        evaluator: DesignEvaluator,
        run: OptimizeRun,
        out: Path | None,
    ) -> None:
        self.workload = workload
        self.opt = opt
        self.evaluator = evaluator
        self.run = run
        self.out = out
        self.key = run_key(workload, opt)
        self.logs: dict[str, str] = {}
        self.remote = 0

    def _count_remote(self, progress: Progress) -> None:
        if not progress.replayed:
            self.remote += 1
        if self.run.on_evaluation is not None:
            self.run.on_evaluation(progress)

    def log_path(self, name: str) -> Path | None:
        """The log of search ``name``: one per sequence of designs (see :func:`run_key`)."""
        if self.out is None:
            return None
        stem = f"optimize-{name}-{self.key}"
        initial = min(self.opt.n_initial, self.opt.budget, self.opt.space.size)
        if name == "bo" and initial < self.opt.n_initial:
            # a budget below n_initial draws a smaller Latin hypercube: another sequence,
            # which a larger budget cannot continue; keep it out of the main log
            stem += f"-initial{initial}"
        if name == "bo" and self.run.batch_size > 1:  # another sequence: its own log
            stem += f"-q{self.run.batch_size}"
        path = self.out / f"{stem}.jsonl"
        self.logs[name] = str(path)
        return path

    def search(self, name: str) -> SearchResult:
        """Search ``name`` (bo, random, exhaustive) at the run's budget."""
        log_path = self.log_path(name)
        opt = self.opt
        total = opt.space.size if name == "exhaustive" else min(opt.budget, opt.space.size)
        if self.run.on_phase is not None:
            self.run.on_phase(name, total)
        pooled = name == "bo" and self.run.evaluator_pool is not None
        return run_search(
            name,
            opt,
            self.evaluator,
            budget=opt.budget,
            log_path=log_path,
            on_evaluation=self._count_remote if pooled else self.run.on_evaluation,
            batch_size=self.run.batch_size,
            evaluator_pool=self.run.evaluator_pool,
            verify=self.evaluator.certify if self.evaluator.certifies else None,
        )

    def fixed(self, result: SearchResult) -> dict[str, Evaluation]:
        """The fixed designs on the hardware of ``result``'s best design (else the design
        closest to the workload's own config), certified when the run certifies."""
        reference = (
            result.best.design
            if result.best is not None
            else workload_design(self.opt, self.workload)
        )
        designs = fixed_designs(self.opt.space, reference, units=workload_units(self.workload))
        if self.run.on_phase is not None:
            self.run.on_phase("fixed designs", len(designs))
        pool = self.run.evaluator_pool
        if pool is None:
            outcomes: Iterator[Evaluation] = (self.evaluator(d) for d in designs.values())
        else:
            outcomes = iter(pool.map(self.evaluator, list(designs.values())))
            self.remote += len(designs)
        fixed: dict[str, Evaluation] = {}
        for i, name in enumerate(designs):
            fixed[name] = next(outcomes)
            if self.evaluator.certifies and fixed[name].ran:  # the table shows MC too
                fixed[name] = self.evaluator.certify(fixed[name])
            if self.run.on_evaluation is not None:
                self.run.on_evaluation(Progress(i, len(designs), fixed[name], result.best, False))
        return fixed


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
