"""The workload file's schema: YAML -> frozen pydantic models -> module constructors.

Config flows one way. No hardware module reads YAML; each receives the typed section it needs.
Every error names the file, the key path (``accelerator.array.rows``) and what is allowed.
The README's key reference table is generated from these models (``python -m accelsim schema``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .codes import DATAFLOWS, FAULT_SITES, MAX_REGISTER_BITS, REGISTER_CLASSES
from .errors import AccelsimError
from .limits import Limits
from .ops import QUANTIZATION_RANGES
from .yamlio import load_yaml, parse_scalar


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, description="seed of the random choices")]
MAX_BUFFER_KIB = float(1 << 20)  # 1 GiB of SRAM per buffer: far beyond any accelerator


class ArrayConfig(Section):
    rows: PositiveInt = Field(16, le=1024, description="PE rows (reduction dimension in ws/is)")
    cols: PositiveInt = Field(16, le=1024, description="PE columns")
    dataflow: Literal[DATAFLOWS] = Field("ws", description="weight-, output- or input-stationary")


class DramConfig(Section):
    bandwidth_bytes_per_cycle: float = Field(16.0, gt=0, description="sustained DRAM bandwidth")
    latency_cycles: NonNegativeInt = Field(100, description="fixed access latency per transfer")


class BufferConfig(Section):
    capacity_kib: float = Field(64.0, gt=0, le=MAX_BUFFER_KIB, description="SRAM capacity in KiB")
    double_buffered: bool = Field(True, description="two tiles in flight (prefetch overlaps use)")


class BuffersConfig(Section):
    input: BufferConfig = BufferConfig()
    weight: BufferConfig = BufferConfig()
    output: BufferConfig = BufferConfig()


# a bit position; checked against the register's real width once the graph is known
HardenedBit = Annotated[int, Field(ge=0, lt=MAX_REGISTER_BITS)]


class HardenedBitsConfig(Section):
    """Circuit layer: bit positions hardened in every PE, per register class (0 = LSB)."""

    input: list[HardenedBit] = Field(default_factory=list)
    weight: list[HardenedBit] = Field(default_factory=list)
    product: list[HardenedBit] = Field(default_factory=list)
    accumulator: list[HardenedBit] = Field(default_factory=list)

    def mask(self, register: str) -> int:
        return sum(1 << b for b in set(getattr(self, register)))


class ProtectionConfig(Section):
    hardened_bits: HardenedBitsConfig = HardenedBitsConfig()
    redundant_units: NonNegativeInt = Field(
        0, description="S: multipliers in the recompute engine beside the array (0 = none)"
    )
    protected_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="p: top fraction of neurons by NVF recomputed"
    )
    protected_neurons: dict[str, list[NonNegativeInt]] | None = Field(
        None, description="explicit neurons (output channels) per layer, instead of p"
    )
    redundancy_mode: Literal["overwrite", "vote"] = "overwrite"


class AcceleratorConfig(Section):
    array: ArrayConfig = ArrayConfig()
    timing: Literal["accurate", "scalesim"] = Field(
        "accurate",
        description="accurate: register-level model with stalls; scalesim: SCALE-Sim 3 count",
    )
    double_buffer_weights: bool = Field(
        True, description="PEs preload the next fold's stationary operand while computing"
    )
    vector_lanes: PositiveInt = Field(16, description="elements per cycle of the pooling/add unit")
    clock_mhz: float = Field(1000.0, gt=0)
    dram: DramConfig = DramConfig()
    buffers: BuffersConfig = BuffersConfig()
    protection: ProtectionConfig = ProtectionConfig()


class TechnologyConfig(Section):
    """Cost-model constants, each with its source. 45 nm unless you plug in your own."""

    node_nm: float = Field(45.0, description="technology node the constants describe")
    mult_area_um2_per_bit2: float = Field(
        4.41, gt=0, description="multiplier area / (wa*wb): 282 um2 for 8x8 (Horowitz, ISSCC 2014)"
    )
    mult_energy_pj_per_bit2: float = Field(
        0.003125, gt=0, description="multiplier energy / (wa*wb): 0.2 pJ for 8x8 (Horowitz 2014)"
    )
    add_area_um2_per_bit: float = Field(
        4.28, gt=0, description="adder area per bit: 137 um2 for 32 bits (Horowitz 2014)"
    )
    add_energy_pj_per_bit: float = Field(
        0.003125, gt=0, description="adder energy per bit: 0.1 pJ for 32 bits (Horowitz 2014)"
    )
    ff_area_um2_per_bit: float = Field(
        4.52, gt=0, description="flip-flop area: DFF_X1, NanGate 45 nm Open Cell Library"
    )
    ff_energy_pj_per_bit_cycle: float = Field(
        0.002, ge=0, description="clocked flip-flop energy per bit per cycle (estimate; set yours)"
    )
    hardened_extra_ffs: float = Field(
        2.0, ge=0, description="extra flip-flops per hardened bit (TMR: 2)"
    )
    voter_area_um2: float = Field(
        3.2,
        ge=0,
        description="majority voter per hardened bit: ~4 NAND2_X1 (0.798 um2, NanGate 45)",
    )
    sram_area_um2_per_bit: float = Field(
        0.49, gt=0, description="6T cell 0.346 um2 (Intel 45 nm, IEDM 2007) / 0.7 array efficiency"
    )
    sram_energy_pj_per_byte: float = Field(
        1.25, gt=0, description="8 KiB SRAM: 5 pJ per 32-bit read (Horowitz 2014)"
    )
    dram_energy_pj_per_byte: float = Field(
        160.0, gt=0, description="DRAM: 640 pJ per 32-bit read (Horowitz 2014)"
    )
    comparator_area_um2_per_bit: float = Field(
        1.6, ge=0, description="vote-mode comparator per bit: XOR2 ~2 NAND2 equivalents (estimate)"
    )


def _setting(default: int | None, key: str, description: str = "") -> Any:
    """A quantisation setting bounded by its one allowed range (:data:`QUANTIZATION_RANGES`)."""
    lo, hi = QUANTIZATION_RANGES[key]
    return Field(default, ge=lo, le=hi, description=description or None)


# One layer's overrides (None keeps the global value); also the resolved settings of a layer
# (every field set, QuantizationConfig.for_layer). No docstrings on these two sections: the
# schema table (docs/workload-keys.md) would change.
class LayerQuantization(Section):
    weight_bits: int | None = _setting(None, "weight_bits")
    activation_bits: int | None = _setting(None, "activation_bits")
    acc_bits: int | None = _setting(None, "acc_bits")
    reserved_msbs: int | None = _setting(None, "reserved_msbs")


# How to quantise a float graph: the one settings model of the YAML section, the quantiser
# (accelsim.quantize.quantize) and its cache key (accelsim.quantize.quantization_key).
class QuantizationConfig(Section):
    weight_bits: int = _setting(8, "weight_bits", "signed, symmetric per output channel")
    activation_bits: int = _setting(8, "activation_bits", "per tensor; unsigned after ReLU")
    acc_bits: int = _setting(32, "acc_bits", "accumulator register width")
    overflow: Literal["wrap", "saturate"] = "wrap"
    reserved_msbs: int = _setting(0, "reserved_msbs", "r: clip bound of the algorithm layer")
    per_layer: dict[str, LayerQuantization] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reserve_leaves_a_bit(self) -> QuantizationConfig:
        if self.reserved_msbs >= self.activation_bits - 1:
            raise ValueError(
                f"reserved_msbs={self.reserved_msbs} leaves no magnitude bits at "
                f"activation_bits={self.activation_bits} (need reserved_msbs < activation_bits - 1)"
            )
        return self

    def for_layer(self, layer: str | None = None) -> LayerQuantization:
        """The global settings with ``layer``'s overrides applied (every field set)."""
        override = self.per_layer.get(layer) if layer is not None else None
        values = {
            name: getattr(self, name)
            if override is None or getattr(override, name) is None
            else getattr(override, name)
            for name in LayerQuantization.model_fields
        }
        return LayerQuantization.model_construct(**values)

    def to_json(self) -> dict[str, Any]:
        """Canonical description: what a quantised graph depends on (its cache key)."""
        return {
            "weight_bits": self.weight_bits,
            "activation_bits": self.activation_bits,
            "acc_bits": self.acc_bits,
            "overflow": self.overflow,
            "reserved_msbs": self.reserved_msbs,
            "per_layer": {
                name: {k: v for k, v in o.model_dump().items() if v is not None}
                for name, o in sorted(self.per_layer.items())
            },
        }


class BuiltinModel(Section):
    builtin: str = Field(description="a name a model provider knows (accelsim.models)")
    input_size: PositiveInt | None = None
    seed: Seed = 0

    @field_validator("builtin")
    @classmethod
    def _known_builtin(cls, name: str) -> str:
        from .models import builtin_names

        names = builtin_names()
        if name not in names:
            # reported like a Literal: "'alexnet' is not allowed (allowed: 'a', 'b' or 'c')"
            quoted = [repr(n) for n in names] or ["none (no model provider is installed)"]
            expected = " or ".join(
                [", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted
            )
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": expected}
            )
        return name


class TopologyModel(Section):
    scalesim_topology: str = Field(description="SCALE-Sim conv or GEMM topology CSV")


class DatasetConfig(Section):
    path: str = Field(description="npz with x (float inputs) and y (labels)")
    samples: PositiveInt | None = Field(None, description="first N samples (all if omitted)")


class FaultsConfig(Section):
    rate: float = Field(0.0, ge=0, description="fault rate in `unit`")
    unit: Literal["bit_cycle", "ber"] = Field(
        "bit_cycle", description="flips per register bit per cycle, or per bit per inference"
    )
    model: Literal["seu", "mbu", "stuck0", "stuck1"] = "seu"
    mbu_width: PositiveInt = Field(2, le=8, description="adjacent bits flipped by an mbu")
    registers: list[Literal[FAULT_SITES]] = Field(
        default_factory=lambda: list(REGISTER_CLASSES),
        min_length=1,
        description="PE register classes and SRAM buffers exposed to faults",
    )
    injections: PositiveInt = Field(1000, description="faulty inferences in the campaign")
    samples: PositiveInt | None = Field(None, description="test samples the campaign draws from")
    plan: str | None = Field(None, description="explicit fault list (YAML/JSON) instead of a rate")
    workers: PositiveInt | Literal["auto"] = Field(
        "auto",
        description="local worker processes; auto: this process, or one per core once the "
        "first injections show the rest would take long enough to pay for starting them",
    )
    seed: Seed = 0


class WorkloadConfig(Section):
    name: str = Field(
        "workload",
        min_length=1,
        max_length=200,
        description="names the output folder (made safe: see the README) and reports",
    )
    model: str | BuiltinModel | TopologyModel = Field(
        description="graph file (.npz, float or integer), a builtin, or a SCALE-Sim topology"
    )
    dataset: DatasetConfig | None = Field(None, description="labelled inputs; else seeded random")
    batch: PositiveInt = Field(1, description="inferences per run of the array (GEMM M grows)")
    seed: Seed = Field(0, description="fixes random inputs and weights of generated models")
    quantization: QuantizationConfig = QuantizationConfig()
    accelerator: AcceleratorConfig = AcceleratorConfig()
    technology: TechnologyConfig = TechnologyConfig()
    faults: FaultsConfig | None = Field(None, description="fault campaign run with `run`")
    optimize: dict[str, Any] | None = Field(None, description="design space (see optimizer)")
    limits: Limits = Field(default_factory=Limits, description="resource limits (see README)")

    @field_validator("name")
    @classmethod
    def _printable_name(cls, name: str) -> str:
        if not name.isprintable():
            raise PydanticCustomError(
                "name_error", "control characters are not allowed in a name", {}
            )
        return name


def _key_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("str", "BuiltinModel", "TopologyModel") or str(item).startswith("function-"):
            continue  # pydantic's union-branch labels are noise in a key path
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _allowed(error: dict[str, Any]) -> str | None:
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"])
    ops = ((">=", "ge"), (">", "gt"), ("<=", "le"), ("<", "lt"))
    bounds = [f"{op} {ctx[k]}" for op, k in ops if k in ctx]
    return " and ".join(bounds) or None


def validation_error(exc: ValidationError, *, file: str | Path, prefix: str = "") -> AccelsimError:
    """Turn pydantic's report into our one-line error, naming the first problem."""
    errors = exc.errors(include_url=False)
    # prefer the most specific branch of a union (the longest key path)
    first = max(errors, key=lambda e: len(e["loc"])) if errors else None
    if first is None:
        return AccelsimError(str(exc), file=file)
    key = _key_path(first["loc"])
    if prefix:
        key = f"{prefix}.{key}" if key else prefix
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] == "literal_error":
        message = f"{first.get('input')!r} is not allowed"
    more = len({_key_path(e["loc"]) for e in errors}) - 1
    if more > 0 and first["type"] != "literal_error":
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return AccelsimError(message, file=file, key=key or None, allowed=_allowed(first))


def apply_overrides(raw: dict[str, Any], overrides: list[str], *, file: str | Path) -> dict:
    """Apply ``--set a.b.c=value`` overrides to the raw YAML mapping (before validation)."""
    data = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise AccelsimError(f"override {item!r} is not key=value", file="--set")
        key, _, text = item.partition("=")
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise AccelsimError("cannot set a key inside a scalar", file="--set", key=key)
            node = child
        node[parts[-1]] = parse_scalar(text)
    return data


def parse_workload(
    raw: Any, *, file: str | Path = "<workload>", overrides: list[str] | None = None
) -> WorkloadConfig:
    if not isinstance(raw, dict):
        raise AccelsimError("a workload file is a mapping of keys", file=file)
    if overrides:
        raw = apply_overrides(raw, overrides, file=file)
    try:
        return WorkloadConfig.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, file=file) from None


def load_workload_config(path: str | Path, overrides: list[str] | None = None) -> WorkloadConfig:
    return parse_workload(load_yaml(path), file=path, overrides=overrides)
