"""Explicit fault plans on disk: parse, load, save and check a list of faults.

A plan file is YAML or JSON: a list of entries, or a mapping with a ``faults`` list; each
entry names ``layer, fold, register, row, col, cycle, bits`` and optionally ``kind`` and
``sample`` (see :class:`faults.fault.Fault`). Errors name the file, the entry and the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from accelsim.codes import FAULT_KINDS, MAX_REGISTER_BITS
from accelsim.errors import AccelsimError
from accelsim.jsonio import atomic_file, write_json_atomic
from accelsim.yamlio import load_yaml

from .exposure import Exposure
from .fault import REGISTERS, Fault

_ENTRY_KEYS = ("layer", "fold", "register", "row", "col", "cycle", "bits", "kind", "sample")
_REQUIRED = ("layer", "fold", "register", "row", "col", "cycle", "bits")


def fault_from_entry(entry: Any, *, index: int, file: str | Path) -> Fault:
    """The :class:`Fault` of plan entry ``index`` (a mapping); errors name file and key."""
    where = f"faults[{index}]"
    if not isinstance(entry, Mapping):
        raise AccelsimError(
            "a fault is a mapping of keys", file=file, key=where, allowed=", ".join(_ENTRY_KEYS)
        )
    for key in entry:
        if key not in _ENTRY_KEYS:
            raise AccelsimError("unknown key", file=file, key=f"{where}.{key}", allowed=_ENTRY_KEYS)
    for key in _REQUIRED:
        if key not in entry:
            raise AccelsimError("required key is missing", file=file, key=f"{where}.{key}")

    def integer(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise AccelsimError(
                f"{value!r} is not a non-negative integer",
                file=file,
                key=f"{where}.{key}",
                allowed="integers >= 0",
            )
        return int(value)

    layer = entry["layer"]
    if not isinstance(layer, str) or not layer:
        raise AccelsimError(f"{layer!r} is not a layer name", file=file, key=f"{where}.layer")
    register = entry["register"]
    if register not in REGISTERS:
        raise AccelsimError(
            f"{register!r} is not allowed", file=file, key=f"{where}.register", allowed=REGISTERS
        )
    kind = entry.get("kind", "flip")
    if kind not in FAULT_KINDS:
        raise AccelsimError(
            f"{kind!r} is not allowed", file=file, key=f"{where}.kind", allowed=FAULT_KINDS
        )
    raw_bits = entry["bits"]
    bit_values = raw_bits if isinstance(raw_bits, list | tuple) else [raw_bits]
    bits = []
    for value in bit_values:
        bit = integer("bits", value)
        if bit > MAX_REGISTER_BITS:
            raise AccelsimError(
                f"bit {bit} is too high",
                file=file,
                key=f"{where}.bits",
                allowed=f"0..{MAX_REGISTER_BITS}",
            )
        bits.append(bit)
    if not bits:
        raise AccelsimError(
            "no bits given",
            file=file,
            key=f"{where}.bits",
            allowed="a bit position or a non-empty list",
        )
    return Fault(
        layer=layer,
        fold=integer("fold", entry["fold"]),
        register=register,
        row=integer("row", entry["row"]),
        col=integer("col", entry["col"]),
        cycle=integer("cycle", entry["cycle"]),
        bits=tuple(bits),
        kind=kind,
        sample=integer("sample", entry.get("sample", 0)),
    )


def parse_plan(data: Any, *, file: str | Path = "<plan>") -> list[Fault]:
    """Faults from parsed YAML/JSON: a list of entries, or a mapping with a ``faults`` list."""
    if isinstance(data, Mapping):
        extra = set(data) - {"faults"}
        if extra:
            raise AccelsimError(
                "unknown key", file=file, key=sorted(map(str, extra))[0], allowed="faults"
            )
        if "faults" not in data:
            raise AccelsimError("required key is missing", file=file, key="faults")
        data = data["faults"]
    if not isinstance(data, list):
        raise AccelsimError("a fault plan is a list of faults", file=file, key="faults")
    return [fault_from_entry(entry, index=i, file=file) for i, entry in enumerate(data)]


def load_plan(path: str | Path) -> list[Fault]:
    """Read an explicit fault list from ``.yaml``/``.yml`` (strict YAML) or ``.json``."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AccelsimError("file not found", file=path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AccelsimError(f"cannot read file: {exc}", file=path) from None
        except json.JSONDecodeError as exc:
            raise AccelsimError(
                f"invalid JSON at line {exc.lineno}: {exc.msg}", file=path
            ) from None
    elif path.suffix.lower() in (".yaml", ".yml"):
        data = load_yaml(path)
    else:
        raise AccelsimError("unknown plan format", file=path, allowed=(".yaml", ".yml", ".json"))
    return parse_plan(data, file=path)


def save_plan(path: str | Path, faults: Iterable[Fault]) -> None:
    """Write ``{"faults": [...]}`` atomically, as JSON or YAML by the file's suffix."""
    path = Path(path)
    data = {"faults": [fault.to_dict() for fault in faults]}
    if path.suffix.lower() == ".json":
        write_json_atomic(path, data)
        return
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise AccelsimError("unknown plan format", file=path, allowed=(".yaml", ".yml", ".json"))
    with atomic_file(path, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=None)


def check_plan(faults: Sequence[Fault], exposure: Exposure, *, file: str | Path = "<plan>") -> None:
    """Check every fault names a real site of ``exposure``; errors name the entry and key.

    Hardened bits are not an error (a plan may be replayed under different hardening); the
    injector removes them with :func:`drop_hardened`.
    """
    for i, fault in enumerate(faults):
        where = f"faults[{i}]"
        if fault.layer not in exposure.layer_names:
            raise AccelsimError(
                f"unknown layer {fault.layer!r}",
                file=file,
                key=f"{where}.layer",
                allowed=exposure.layer_names,
            )
        layer = exposure.layer(fault.layer)
        hits = np.flatnonzero(layer.fold == fault.fold)
        if not len(hits):
            raise AccelsimError(
                f"layer {layer.name} has no fold {fault.fold}",
                file=file,
                key=f"{where}.fold",
                allowed=f"0..{layer.n_folds - 1}",
            )
        j = int(hits[0])
        width = exposure.width_of(layer, fault.register)
        if fault.is_sram:
            words = layer.sram_words.get(fault.register, 0)
            limits = {"row": 1, "col": 1, "cycle": words}
        else:
            limits = {
                "row": int(layer.row0[j] + layer.rows[j]),
                "col": int(layer.col0[j] + layer.cols[j]),
                "cycle": int(layer.cycles[j]),
            }
        for key, limit in limits.items():
            value = getattr(fault, key)
            if value >= limit:
                raise AccelsimError(
                    f"{key} {value} is outside fold {fault.fold}",
                    file=file,
                    key=f"{where}.{key}",
                    allowed=f"< {limit}",
                )
        if fault.bits[-1] >= width:
            raise AccelsimError(
                f"bit {fault.bits[-1]} is outside the {width}-bit {fault.register}",
                file=file,
                key=f"{where}.bits",
                allowed=f"0..{width - 1}",
            )
