"""Evaluation records, search results, and the resumable JSONL evaluation log.

Every search method (Bayesian, random, exhaustive) produces the same records: an
:class:`Evaluation` per design tried, a :class:`SearchResult` at the end. A long search appends one
JSON line per evaluation to its log as soon as the evaluation completes (flushed and fsync'ed), so a
crash loses at most the evaluation in flight; re-running with the same log path replays the logged
evaluations instead of repeating them and carries on.

Log format (one JSON object per line)::

    {"kind": "header", "format": 1, "method": "bayesian", "seed": 7, "settings": {...},
     "space": {"variables": [{"name": "rows", "values": [4, 8, 16]}, ...]}}
    {"kind": "evaluation", "index": 0, "method": "bayesian", "seed": 7, "design": {...},
     "objective": 1.5, "constraints": {"accuracy": -0.01}, "metrics": {...},
     "infeasible_reason": null}
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from accelsim.errors import AccelsimError, Infeasible
from accelsim.jsonio import json_default
from accelsim.runs import OTHER_SETTINGS_HINT

from .space import DesignSpace

LOG_FORMAT = 1
CHECK_KEY = "certificate"  # the metrics key a verification adds to an evaluation

Evaluate = Callable[[dict[str, Any]], "Evaluation"]  # evaluate(design): one design's record
# verify(evaluation, checks_before) -> evaluation: the check of a design that would become the
# best; ``checks_before`` (how many this search made earlier) lets it spend its error rate
Verify = Callable[["Evaluation", int], "Evaluation"]


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one design.

    ``objective`` is minimised (area, energy, ...); ``None`` when unknown. ``constraints`` maps a
    name to a value that satisfies the constraint when ``<= 0`` (e.g. ``A - accuracy``), so its
    positive part is the amount of violation, in the constraint's own unit. A design that cannot
    run at all carries an ``infeasible_reason``: it counts as violating every constraint and its
    objective is unknown.
    """

    design: dict[str, Any]
    objective: float | None
    constraints: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    infeasible_reason: str | None = None

    @classmethod
    def cannot_run(
        cls, design: Mapping[str, Any], reason: str, metrics: Mapping[str, Any] | None = None
    ) -> Evaluation:
        """A design that could not be evaluated (a tile does not fit, ...)."""
        return cls(dict(design), None, {}, dict(metrics or {}), str(reason))

    @property
    def ran(self) -> bool:
        return self.infeasible_reason is None

    @property
    def feasible(self) -> bool:
        """Ran, has a finite objective, and meets every constraint."""
        return (
            self.ran
            and self.objective is not None
            and math.isfinite(self.objective)
            and all(v <= 0.0 for v in self.constraints.values())
        )

    def violations(self) -> dict[str, float]:
        """Amount by which each violated constraint is missed (positive values only)."""
        return {k: float(v) for k, v in self.constraints.items() if v > 0.0}

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": dict(self.design),
            "objective": self.objective,
            "constraints": dict(self.constraints),
            "metrics": dict(self.metrics),
            "infeasible_reason": self.infeasible_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        objective = data.get("objective")
        return cls(
            design=dict(data["design"]),
            objective=None if objective is None else float(objective),
            constraints={str(k): float(v) for k, v in dict(data.get("constraints") or {}).items()},
            metrics=dict(data.get("metrics") or {}),
            infeasible_reason=data.get("infeasible_reason"),
        )

    def normalised(self) -> Evaluation:
        """The same evaluation as it reads back from the log (JSON types, non-finite objective
        -> None), so a resumed search and an uninterrupted one hold equal records."""
        data = self.to_dict()
        obj = data["objective"]
        if obj is not None:
            obj = float(obj)
            data["objective"] = obj if math.isfinite(obj) else None
        for name, value in data["constraints"].items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise TypeError(f"constraint {name!r} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(
                    f"constraint {name!r} is {value}; constraint values must be finite"
                )
        return Evaluation.from_dict(json.loads(json.dumps(data, default=json_default)))


@dataclass(frozen=True)
class SearchResult:
    """What a search found: every evaluation in order, the best feasible one, and a sentence."""

    method: str
    evaluations: list[Evaluation]
    best: Evaluation | None
    best_index: int | None
    message: str
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "seed": self.seed,
            "best_index": self.best_index,
            "best": None if self.best is None else self.best.to_dict(),
            "message": self.message,
            "evaluations": [e.to_dict() for e in self.evaluations],
        }


@dataclass(frozen=True)
class Progress:
    """Handed to ``on_evaluation`` after every evaluation (``replayed``: read back from the log)."""

    index: int
    total: int
    evaluation: Evaluation
    best: Evaluation | None
    replayed: bool


ProgressCallback = Callable[[Progress], None]


# --------------------------------------------------------------------------- summary
def best_feasible(evaluations: list[Evaluation]) -> tuple[int | None, Evaluation | None]:
    """Index and record of the feasible evaluation with the lowest objective (earliest on ties)."""
    best_i, best = None, None
    for i, ev in enumerate(evaluations):
        if ev.feasible and (best is None or ev.objective < best.objective):
            best_i, best = i, ev
    return best_i, best


def summarise(method: str, evaluations: list[Evaluation], seed: int | None = None) -> SearchResult:
    """Build the :class:`SearchResult`, with a message that says what was found or why not."""
    n = len(evaluations)
    best_i, best = best_feasible(evaluations)
    if best is not None:
        message = (
            f"best feasible design after {n} evaluations: {_fmt_design(best.design)} with "
            f"objective {best.objective:.6g} (evaluation {best_i})"
        )
    elif n == 0:
        message = "no design was evaluated"
    else:
        message = f"no feasible design found in {n} evaluations; " + _closest(evaluations)
    return SearchResult(method, list(evaluations), best, best_i, message, seed)


def _closest(evaluations: list[Evaluation]) -> str:
    ran = [e for e in evaluations if e.ran]
    if not ran:
        reasons = Counter(e.infeasible_reason for e in evaluations)
        reason, count = reasons.most_common(1)[0]
        return f"none of them could run (most common reason, {count}x: {reason})"
    # Compare violations across constraints in a unit-free way: scale each by the spread of that
    # constraint's observed values.
    names = sorted({k for e in ran for k in e.constraints})
    scale = {}
    for k in names:
        vals = np.array([e.constraints[k] for e in ran if k in e.constraints], dtype=float)
        scale[k] = float(np.max(np.abs(vals))) or 1.0
    unknown_objective = [e for e in ran if not e.violations()]
    if unknown_objective:
        return (
            f"{len(unknown_objective)} design(s) met every constraint but had no finite "
            f"objective, e.g. {_fmt_design(unknown_objective[0].design)}"
        )
    closest = min(ran, key=lambda e: sum(v / scale[k] for k, v in e.violations().items()))
    parts = " and ".join(f"{k} by {v:.4g}" for k, v in sorted(closest.violations().items()))
    return f"closest: {_fmt_design(closest.design)} violates {parts}"


def _fmt_design(design: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in design.items()) + "}"


# --------------------------------------------------------------------------- the log
class EvaluationLog:
    """An append-only JSONL log of one search; ``previous`` holds what an earlier run logged."""

    def __init__(
        self,
        path: str | Path,
        *,
        method: str,
        seed: int | None,
        space: DesignSpace,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.method = method
        self.seed = seed
        self.header = {
            "kind": "header",
            "format": LOG_FORMAT,
            "method": method,
            "seed": seed,
            "settings": json.loads(json.dumps(dict(settings or {}), default=json_default)),
            "space": space.to_dict(),
        }
        self.previous: list[Evaluation] = self._read_or_create()
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    def _error(self, message: str, line: int | None = None) -> AccelsimError:
        return AccelsimError(message, file=self.path, key=None if line is None else f"line {line}")

    def _read_or_create(self) -> list[Evaluation]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", encoding="utf-8") as f:
                f.write(json.dumps(self.header) + "\n")
                f.flush()
                os.fsync(f.fileno())
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        records = []
        good_chars = 0
        for number, line in enumerate(lines, start=1):
            if line == "":
                good_chars += 1
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):  # torn last line: the run died while writing it
                    break
                raise self._error("is not valid JSON; the log is damaged", number) from None
            good_chars += len(line) + 1
        if good_chars < len(text):  # drop the torn tail so appends start on a fresh line
            with self.path.open("r+", encoding="utf-8") as f:
                f.truncate(len(text[:good_chars].encode("utf-8")))
        if not records or records[0].get("kind") != "header":
            raise self._error("is not an accelsim evaluation log (no header line)", 1)
        self._check_header(records[0])
        previous = []
        for number, rec in enumerate(records[1:], start=2):
            if rec.get("kind") != "evaluation" or rec.get("index") != len(previous):
                raise self._error(
                    f"expected evaluation number {len(previous)}; the log is damaged", number
                )
            previous.append(Evaluation.from_dict(rec))
        return previous

    def _check_header(self, found: Mapping[str, Any]) -> None:
        for key in ("format", "method", "seed", "settings", "space"):
            if found.get(key) != self.header[key]:
                raise self._error(
                    f"was written for a different search ({key}: {found.get(key)!r} in the log, "
                    f"{self.header[key]!r} now); {OTHER_SETTINGS_HINT}",
                    1,
                )

    def append(self, evaluation: Evaluation) -> None:
        """Append the next evaluation and push it to disk before returning."""
        if self._file is None:
            raise RuntimeError("log is closed")
        index = len(self.previous)
        record = {"kind": "evaluation", "index": index, "method": self.method, "seed": self.seed}
        record.update(evaluation.to_dict())
        self._file.write(json.dumps(record, default=json_default) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.previous.append(evaluation)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EvaluationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Recorder:
    """The bookkeeping every search shares: history, log, progress callback, replay on resume."""

    def __init__(
        self,
        space: DesignSpace,
        *,
        method: str,
        seed: int | None,
        total: int,
        log_path: str | Path | None,
        on_evaluation: ProgressCallback | None,
        settings: Mapping[str, Any] | None = None,
        verify: Verify | None = None,
    ) -> None:
        self.space = space
        self.verify = verify
        self.method = method
        self.seed = seed
        self.total = total
        self.on_evaluation = on_evaluation
        self.log = (
            None
            if log_path is None
            else EvaluationLog(log_path, method=method, seed=seed, space=space, settings=settings)
        )
        self.history: list[Evaluation] = []
        self.evaluated: set[tuple[int, ...]] = set()
        self.replayed: list[Evaluation] = [] if self.log is None else list(self.log.previous)
        self._best: Evaluation | None = None

    def replay(self, expected: list[tuple[int, ...]] | None = None) -> list[Evaluation]:
        """Take the logged evaluations into the history (checking them against ``expected``
        design indices where the method fixes its sequence in advance)."""
        if len(self.replayed) > self.total:
            raise AccelsimError(
                f"the log already holds {len(self.replayed)} evaluations, more than this "
                f"search's budget of {self.total}; raise --budget, or {OTHER_SETTINGS_HINT}",
                file=None if self.log is None else self.log.path,
            )
        for i, ev in enumerate(self.replayed):
            idx = self.space.index(ev.design)
            if expected is not None and expected[i] != idx:
                raise AccelsimError(
                    f"evaluation {i} in the log ({_fmt_design(ev.design)}) is not the design this "
                    "search would try; the log belongs to another run: " + OTHER_SETTINGS_HINT,
                    file=None if self.log is None else self.log.path,
                )
            self._add(ev, replayed=True)
        return list(self.replayed)

    def evaluate(
        self, design: dict[str, Any], evaluate: Callable[[dict[str, Any]], Evaluation]
    ) -> Evaluation:
        """Run the user's evaluation of ``design`` and commit it (log, history, progress)."""
        evaluation = self.run(design, evaluate)
        self.commit(evaluation)
        return evaluation

    def run(
        self, design: dict[str, Any], evaluate: Callable[[dict[str, Any]], Evaluation]
    ) -> Evaluation:
        """Run the user's evaluation of ``design`` and check the record it returns.

        An :class:`~accelsim.errors.Infeasible` raised by ``evaluate`` is a result, not an
        error: it becomes an evaluation with that ``infeasible_reason``.
        """
        idx = self.space.index(design)
        if idx in self.evaluated:
            raise RuntimeError(f"design {design} would be evaluated twice")
        try:
            evaluation = evaluate(dict(design))
        except Infeasible as exc:
            evaluation = Evaluation.cannot_run(design, str(exc))
        if not isinstance(evaluation, Evaluation):
            raise TypeError(
                f"evaluate() must return an Evaluation, got {type(evaluation).__name__}"
            )
        evaluation = evaluation.normalised()
        if self.space.index(evaluation.design) != idx:
            raise ValueError(f"evaluate({design}) returned a record for {evaluation.design}")
        if self.verify is not None and self._would_lead(evaluation):
            # a design that would become the answer is checked first; one the check does
            # not certify is logged as infeasible, with the evidence, and the search goes on
            checks = sum(CHECK_KEY in e.metrics for e in self.history)
            evaluation = self.verify(evaluation, checks).normalised()
        return Evaluation(
            dict(design),
            evaluation.objective,
            evaluation.constraints,
            evaluation.metrics,
            evaluation.infeasible_reason,
        )

    def _would_lead(self, evaluation: Evaluation) -> bool:
        return evaluation.feasible and (
            self._best is None or evaluation.objective < self._best.objective
        )

    def commit(self, evaluation: Evaluation) -> None:
        """Append to the log (on disk before returning), the history, and report progress."""
        if self.log is not None:
            self.log.append(evaluation)
        self._add(evaluation, replayed=False)

    def _add(self, evaluation: Evaluation, *, replayed: bool) -> None:
        self.history.append(evaluation)
        self.evaluated.add(self.space.index(evaluation.design))
        if self._would_lead(evaluation):
            self._best = evaluation
        if self.on_evaluation is not None:
            self.on_evaluation(
                Progress(len(self.history) - 1, self.total, evaluation, self._best, replayed)
            )

    def result(self) -> SearchResult:
        return summarise(self.method, self.history, self.seed)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
