"""The workload YAML's ``optimize:`` section: what to minimise, under which constraints, over
which design variables, with which search method.

``accelsim.config.WorkloadConfig.optimize`` is a free mapping (accelsim/ never imports the
optimiser); this module validates it. Example::

    optimize:
      objective: area            # area | energy | area_latency
      constraints: {min_accuracy: 0.9, min_reliability: 0.999, max_latency_cycles: 20000}
      method: bo                 # bo | random | exhaustive
      budget: 30
      n_initial: 8
      seed: 0
      hardening: bvf             # which k bits `hardened_bits.<class>: k` hardens: bvf | msb
      reliability: {confidence: 0.95, relative_precision: 0.2}   # first-order estimates
      certify: {max_injections: 60000}   # direct Monte-Carlo check of each new incumbent
      variables:
        array_rows: [4, 8, 16]
        weight_bits: {min: 4, max: 8, step: 2}
        hardened_bits.accumulator: [0, 4, 8]     # or hardened_bits: {accumulator: [...]}
        protected_fraction: [0.0, 0.1, 0.25]
        redundant_units: [0, 4]
        dataflow: [ws, os]

Every variable is a list of values or a ``{min, max, step}`` range. Categorical variables
(``dataflow``) enter the search space as the ordinal index of their listed value; the design
records of the log hold that index, and :meth:`OptimizeConfig.readable` maps it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accelsim.config import DATAFLOWS, REGISTER_CLASSES, WorkloadConfig, validation_error
from accelsim.errors import AccelsimError
from accelsim.limits import Limits, refuse_over

from .space import DesignSpace, Variable

CATEGORICAL = {"dataflow": DATAFLOWS}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class RangeSpec(_Strict):
    """``{min, max, step}``: min, min + step, ... up to max (inclusive)."""

    min: float
    max: float
    step: float = Field(1, gt=0)


class ConstraintsConfig(_Strict):
    min_accuracy: float | None = Field(
        None, ge=0.0, le=1.0, description="clean top-1 accuracy (fraction) at least this"
    )
    min_reliability: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="1 - P(failure per inference) at the faults: rate, at least this",
    )
    max_latency_cycles: int | None = Field(
        None, gt=0, description="cycles of one batch through the accelerator, at most this"
    )


class ReliabilitySettings(_Strict):
    """The first-order estimate of each design (stratified single-fault injections, shared by
    every design of a quantisation; see :mod:`faults.strata`)."""

    confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1.0,
        description="confidence of every interval and bound; decisions use the one-sided bound",
    )
    relative_precision: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="stop allocating when the interval half-width is within this of the estimate",
    )
    pilot_per_stratum: int = Field(
        64, gt=0, description="single-fault injections per (layer, register, bit) to start with"
    )
    max_injections: int = Field(
        200_000, gt=0, description="single-fault injections one design's estimate may use"
    )


class CertifySettings(_Strict):
    """The direct Monte-Carlo check of each design that would become the answer."""

    enabled: bool = Field(True, description="certify new incumbents by direct Monte-Carlo")
    min_injections: int = Field(2_000, gt=0, description="fewest injections of a certificate")
    max_injections: int = Field(60_000, gt=0, description="most injections of a certificate")
    seed: int = Field(1, ge=0, description="seed of the certificate campaigns")
    samples: int | None = Field(
        None, gt=0, description="test samples a certificate draws from (default: faults.samples)"
    )


class OptimizeSection(_Strict):
    """The raw schema; :func:`parse_optimize` adds the checks pydantic cannot express."""

    objective: Literal["area", "energy", "area_latency"] = "area"
    constraints: ConstraintsConfig = ConstraintsConfig()
    method: Literal["bo", "random", "exhaustive"] = "bo"
    budget: int = Field(30, gt=0, description="evaluations (bo, random)")
    n_initial: int = Field(8, gt=0, description="space-filling designs before BO proper")
    seed: int = 0
    hardening: Literal["bvf", "msb"] = Field(
        "bvf", description="hardened_bits.<class>: k hardens the k bits of highest BVF, or MSBs"
    )
    reliability: ReliabilitySettings = ReliabilitySettings()
    certify: CertifySettings = CertifySettings()
    sram_in_objective: bool = Field(
        True,
        description="count the SRAM buffers in the area objective (false: compare at "
        "equal buffers)",
    )
    variables: dict[str, Any] = Field(description="design variable -> values or {min, max, step}")


# integer variables and their inclusive bounds; fractions; categorical variables above
_INTEGER_BOUNDS: dict[str, tuple[int, int]] = {
    "array_rows": (1, 1024),
    "array_cols": (1, 1024),
    "weight_bits": (2, 8),
    "activation_bits": (2, 8),
    "acc_bits": (4, 32),
    "reserved_msbs": (0, 6),
    "redundant_units": (0, 4096),
    **{f"hardened_bits.{c}": (0, 32) for c in REGISTER_CLASSES},
}
_FRACTIONS = {"protected_fraction": (0.0, 1.0)}
VARIABLES = (*_INTEGER_BOUNDS, *_FRACTIONS, *CATEGORICAL)


class OptimizeConfig:
    """The validated ``optimize:`` section and the design space it defines."""

    def __init__(
        self,
        section: OptimizeSection,
        space: DesignSpace,
        categories: dict[str, tuple[str, ...]],
        file: str | None,
    ) -> None:
        self.section = section
        self.space = space
        self.categories = categories  # categorical variable -> its values, by ordinal index
        self.file = file

    objective = property(lambda self: self.section.objective)
    constraints = property(lambda self: self.section.constraints)
    method = property(lambda self: self.section.method)
    budget = property(lambda self: self.section.budget)
    n_initial = property(lambda self: self.section.n_initial)
    seed = property(lambda self: self.section.seed)
    hardening = property(lambda self: self.section.hardening)

    def readable(self, design: Mapping[str, Any]) -> dict[str, Any]:
        """The design with categorical indices replaced by their names (``dataflow: os``)."""
        out = dict(design)
        for name, values in self.categories.items():
            if name in out:
                out[name] = values[int(out[name])]
        return out

    def with_updates(self, **changes: Any) -> OptimizeConfig:
        """A copy with top-level settings replaced (``budget``, ``method``, ...), re-checked."""
        section = OptimizeSection.model_validate({**self.section.model_dump(), **changes})
        return OptimizeConfig(section, self.space, self.categories, self.file)

    def to_dict(self) -> dict[str, Any]:
        return {**self.section.model_dump(mode="json"), "space": self.space.to_dict()}


def _error(message: str, key: str, file: str | None, allowed: str | None = None) -> AccelsimError:
    return AccelsimError(message, file=file, key=key, allowed=allowed)


def _flatten(variables: Mapping[str, Any], file: str | None) -> dict[str, Any]:
    """Accept ``hardened_bits: {accumulator: [...]}`` as well as ``hardened_bits.accumulator``."""
    flat: dict[str, Any] = {}
    for name, spec in variables.items():
        if name == "hardened_bits" and isinstance(spec, Mapping) and not _is_range(spec):
            for cls, inner in spec.items():
                flat[f"hardened_bits.{cls}"] = inner
        else:
            flat[name] = spec
    for name in flat:
        if name not in VARIABLES:
            raise _error(
                "unknown design variable", f"optimize.variables.{name}", file, ", ".join(VARIABLES)
            )
    return flat


def _is_range(spec: Any) -> bool:
    return isinstance(spec, Mapping) and ("min" in spec or "max" in spec)


MAX_RANGE_VALUES = 10_000  # values of one range variable: more is a typo in step


def _expand_range(spec: Any, key: str, file: str | None) -> list[float]:
    try:
        r = RangeSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise validation_error(exc, file=file or "<workload>", prefix=key) from None
    if r.min > r.max:
        raise _error(f"empty range: min {r.min:g} > max {r.max:g}", key, file, "min <= max")
    count = math.floor((r.max - r.min) / r.step + 1e-9) + 1
    if count > MAX_RANGE_VALUES:  # refused from the count, before a list is built
        raise _error(
            f"{{min, max, step}} spans {count:,} values",
            key,
            file,
            f"at most {MAX_RANGE_VALUES:,} values (a larger step)",
        )
    # round to the step's decimals so 0.1 steps give 0.3, not 0.30000000000000004
    decimals = max(0, -math.floor(math.log10(r.step)) + 6)
    return [round(r.min + i * r.step, decimals) for i in range(count)]


def _variable(name: str, spec: Any, file: str | None) -> tuple[Variable, tuple[str, ...] | None]:
    key = f"optimize.variables.{name}"
    if name in CATEGORICAL:
        allowed = CATEGORICAL[name]
        if not isinstance(spec, list):
            raise _error("must be a list of values", key, file, ", ".join(allowed))
        if not spec:
            raise _error("empty list of values", key, file, ", ".join(allowed))
        for v in spec:
            if v not in allowed:
                raise _error(f"{v!r} is not allowed", key, file, ", ".join(allowed))
        if len(set(spec)) != len(spec):
            raise _error("values repeat", key, file, "distinct values")
        return Variable(name, tuple(range(len(spec)))), tuple(spec)
    if _is_range(spec):
        values = _expand_range(spec, key, file)
    elif isinstance(spec, list):
        values = list(spec)
    else:
        raise _error("must be a list of values or {min, max, step}", key, file)
    if not values:
        raise _error("empty list of values", key, file, "at least one value")
    if name in _FRACTIONS:
        lo, hi = _FRACTIONS[name]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise _error(
                    f"value {v!r} is outside [{lo:g}, {hi:g}]",
                    key,
                    file,
                    f"numbers in [{lo:g}, {hi:g}]",
                )
        values = [float(v) for v in values]
    else:
        lo, hi = _INTEGER_BOUNDS[name]
        for v in values:
            is_integer = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
            if isinstance(v, bool) or not is_integer or not lo <= v <= hi:
                raise _error(
                    f"value {v!r} is not an integer in {lo}..{hi}",
                    key,
                    file,
                    f"integers {lo}..{hi}",
                )
        values = [int(v) for v in values]
    if len(set(values)) != len(values):
        raise _error("values repeat", key, file, "distinct values")
    return Variable(name, tuple(sorted(values))), None


def parse_optimize(
    raw: Any, *, workload: WorkloadConfig | None = None, file: str | Path | None = None
) -> OptimizeConfig:
    """Validate an ``optimize:`` mapping; errors name ``optimize.<key>`` in ``file``."""
    file_text = None if file is None else str(file)
    if raw is None:
        raise _error("the workload has no optimize: section", "optimize", file_text)
    if not isinstance(raw, Mapping):
        raise _error("must be a mapping", "optimize", file_text)
    try:
        section = OptimizeSection.model_validate(dict(raw))
    except ValidationError as exc:
        raise validation_error(exc, file=file_text or "<workload>", prefix="optimize") from None
    if not section.variables:
        raise _error(
            "needs at least one design variable",
            "optimize.variables",
            file_text,
            ", ".join(VARIABLES),
        )
    variables, categories = [], {}
    for name, spec in _flatten(section.variables, file_text).items():
        var, names = _variable(name, spec, file_text)
        variables.append(var)
        if names is not None:
            categories[name] = names
    designs = math.prod(len(v.values) for v in variables)
    refuse_over(
        designs,
        workload.limits if workload is not None else Limits(),
        "designs",
        key="optimize.variables",
        what="designs in the space",
    )
    space = DesignSpace(variables, key="optimize.variables", file=file_text)
    config = OptimizeConfig(section, space, categories, file_text)
    if workload is not None:
        _check_consistent(config, workload, file_text)
    return config


def _check_consistent(config: OptimizeConfig, workload: WorkloadConfig, file: str | None) -> None:
    """Contradictions between the section and the rest of the workload (user errors)."""
    values = {v.name: v.values for v in config.space.variables}
    if config.constraints.min_reliability is not None:
        if workload.faults is None or workload.faults.rate <= 0:
            raise _error(
                "a reliability constraint needs a fault rate (a faults: section with rate > 0)",
                "optimize.constraints.min_reliability",
                file,
            )
        if workload.faults.plan is not None:
            raise _error(
                "a reliability constraint needs a fault rate, not a fault plan",
                "optimize.constraints.min_reliability",
                file,
            )
    fractions = values.get("protected_fraction", ())
    units = values.get("redundant_units", (workload.accelerator.protection.redundant_units,))
    if fractions and min(fractions) > 0 and max(units) == 0:
        raise _error(
            "every protected_fraction > 0 but there are no redundant units to "
            "recompute the protected neurons",
            "optimize.variables.protected_fraction",
            file,
            "include 0, or redundant_units > 0",
        )
    q = workload.quantization
    act = values.get("activation_bits", (q.activation_bits,))
    reserved = values.get("reserved_msbs", (q.reserved_msbs,))
    if min(reserved) >= max(act) - 1:
        raise _error(
            f"reserved_msbs >= activation_bits - 1 for every design (reserved "
            f"{list(reserved)}, activation_bits {list(act)})",
            "optimize.variables.reserved_msbs",
            file,
            "reserved_msbs < activation_bits - 1",
        )
    if config.method == "exhaustive" and config.space.size > 100_000:
        raise _error(
            f"exhaustive search over {config.space.size} designs is too many",
            "optimize.method",
            file,
            "bo or random, or a smaller space",
        )
