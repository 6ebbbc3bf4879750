"""Applying a design to a workload: from a point of the ``optimize:`` space to the configured
workload it describes.

A design sets the array (rows, columns, dataflow), the quantisation (weight, activation and
accumulator bits, reserved MSBs r), the redundant units S, the number of hardened bits per
register class and the protected fraction p. :class:`DesignConfigurator` applies them in that
order: the config and the (cached) re-quantisation first, then the protection, which depends
on the quantised graph (which bits and neurons are most vulnerable: the estimator's ranking,
or the MSBs with ``optimize.hardening: msb``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from accelsim.config import REGISTER_CLASSES, WorkloadConfig
from accelsim.cost import register_widths
from accelsim.workload import Workload

from .config import OptimizeConfig
from .estimators import ReliabilityEstimator, msb_bits

# design variable -> (section of the workload config, key there)
CONFIG_VARIABLES = {
    "array_rows": ("array", "rows"),
    "array_cols": ("array", "cols"),
    "dataflow": ("array", "dataflow"),
    "weight_bits": ("quantization", "weight_bits"),
    "activation_bits": ("quantization", "activation_bits"),
    "acc_bits": ("quantization", "acc_bits"),
    "reserved_msbs": ("quantization", "reserved_msbs"),
}


class DesignConfigurator:
    """Applies designs of ``opt.space`` to ``workload``. Quantised workloads are cached in
    memory, one per quantisation (every design that shares one shares its integer graph and
    inputs); a quantisation new to this process is read from the user's cache folder when an
    earlier run made it (``Workload.with_config`` -> ``accelsim.quantize.quantize_cached``).
    ``estimator`` ranks bits and neurons (None: the space protects nothing by
    ranking)."""

    def __init__(
        self, workload: Workload, opt: OptimizeConfig, estimator: ReliabilityEstimator | None
    ) -> None:
        self.workload = workload
        self.opt = opt
        self.estimator = estimator
        self._quantised: dict[str, Workload] = {}
        self._float_graph_hash: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        # shipped once to each worker: the cache stays behind and is rebuilt there
        return {**self.__dict__, "_quantised": {}}

    def configure(self, design: Mapping[str, Any]) -> tuple[Workload, dict[str, np.ndarray] | None]:
        """The workload as ``design`` configures it (quantised, hardened) and its protected
        neurons. ValidationError for an invalid combination, Infeasible if it cannot run."""
        config = self.base_config(design)
        workload = self.quantised(config)
        hardened, protected = self.protection(workload, design)
        data = config.model_dump()
        data["accelerator"]["protection"]["hardened_bits"] = hardened
        return dataclasses.replace(workload, config=WorkloadConfig.model_validate(data)), protected

    def base_config(self, design: Mapping[str, Any]) -> WorkloadConfig:
        """The workload config with the design's array, dataflow and quantisation applied
        (protection comes later: it depends on the quantised graph). ValidationError if the
        combination is invalid (e.g. r >= activation_bits - 1)."""
        d = self.opt.readable(design)
        data = self.workload.config.model_dump()
        sections = {"array": data["accelerator"]["array"], "quantization": data["quantization"]}
        for name, (section, key) in CONFIG_VARIABLES.items():
            if name in d:
                sections[section][key] = d[name]
        if "redundant_units" in d:
            data["accelerator"]["protection"]["redundant_units"] = int(d["redundant_units"])
        return WorkloadConfig.model_validate(data)

    def quantised(self, config: WorkloadConfig) -> Workload:
        """The workload under ``config``; re-quantised only once per quantisation."""
        key = self._quantisation_key(config)
        cached = self._quantised.get(key)
        if cached is None:
            cached = self.workload.with_config(config)
            self._quantised[key] = cached
        return dataclasses.replace(cached, config=config)

    def _quantisation_key(self, config: WorkloadConfig) -> str:
        float_graph = self.workload.float_graph
        if float_graph is None:  # an integer graph: nothing to re-quantise
            return "integer"
        from accelsim.quantize import quantization_key

        if self._float_graph_hash is None:  # once, not per design (0.04-0.07 s, ResNet-18)
            self._float_graph_hash = float_graph.content_hash()
        return quantization_key(float_graph, config.quantization, graph_hash=self._float_graph_hash)

    def protection(
        self, workload: Workload, design: Mapping[str, Any]
    ) -> tuple[dict[str, list[int]], dict[str, np.ndarray] | None]:
        """(hardened bit positions per register class, protected neurons per layer or None)."""
        widths = register_widths(workload.graph).as_dict()
        configured = workload.config.accelerator.protection.hardened_bits
        hardened = {c: sorted(set(getattr(configured, c))) for c in REGISTER_CLASSES}
        counts = {  # "harden k bits" of a register narrower than k hardens all of it
            c: min(int(design[f"hardened_bits.{c}"]), widths[c])
            for c in REGISTER_CLASSES
            if f"hardened_bits.{c}" in design
        }
        if counts:
            if self.opt.hardening == "msb":
                chosen = msb_bits(widths, counts)
            else:
                chosen = self.estimator.select_bits(workload, counts)
            hardened.update({c: sorted(int(b) for b in bits) for c, bits in chosen.items()})
        protected = None
        fraction = float(design.get("protected_fraction", 0.0))
        if fraction > 0:
            protected = self.estimator.select_neurons(workload, fraction)
        return hardened, protected


def workload_design(opt: OptimizeConfig, workload: Workload) -> dict[str, Any]:
    """The design of ``opt.space`` closest to the workload's own config (the hardware the
    fixed designs are put on when no feasible design was found)."""
    cfg = workload.config
    own = {
        "array_rows": cfg.accelerator.array.rows,
        "array_cols": cfg.accelerator.array.cols,
        "weight_bits": cfg.quantization.weight_bits,
        "activation_bits": cfg.quantization.activation_bits,
        "acc_bits": cfg.quantization.acc_bits,
        "reserved_msbs": cfg.quantization.reserved_msbs,
    }
    design = {}
    for var in opt.space.variables:
        if var.name == "dataflow":
            names = opt.categories["dataflow"]
            flow = cfg.accelerator.array.dataflow
            design[var.name] = names.index(flow) if flow in names else 0
        elif var.name in own:
            design[var.name] = min(var.values, key=lambda v, t=own[var.name]: abs(v - t))
        else:
            design[var.name] = var.values[0]
    return design
