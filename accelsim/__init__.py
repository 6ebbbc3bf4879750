"""accelsim: a cycle-level DNN accelerator simulator with hardware-accurate fault injection.

    from accelsim import load_workload, simulate
    result = simulate(load_workload("workloads/digits_cnn.yaml"))

The numpy quantiser is ``accelsim.quantize.quantize(float_graph, QuantizationConfig(...))`` (not
re-exported here: the module of that name would shadow the function).

Names are imported on first use so that ``python -m accelsim --help`` starts instantly.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "AccelsimError": "errors",
    "Infeasible": "errors",
    "AcceleratorConfig": "config",
    "WorkloadConfig": "config",
    "QuantizationConfig": "config",
    "load_workload_config": "config",
    "LayerStats": "results",
    "SimResult": "results",
    "simulate": "simulation",
    "Workload": "workload",
    "load_workload": "workload",
    "load_graph": "ir",
    "save_graph": "ir",
    "execute": "executor",
    "ModelProvider": "models",
    "register_model_provider": "models",
    "builtin_graph": "models",
}

__all__ = [
    "AccelsimError",
    "AcceleratorConfig",
    "Infeasible",
    "LayerStats",
    "ModelProvider",
    "QuantizationConfig",
    "SimResult",
    "Workload",
    "WorkloadConfig",
    "builtin_graph",
    "execute",
    "load_graph",
    "load_workload",
    "load_workload_config",
    "register_model_provider",
    "save_graph",
    "simulate",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'accelsim' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from .config import (
        AcceleratorConfig,
        QuantizationConfig,
        WorkloadConfig,
        load_workload_config,
    )
    from .errors import AccelsimError, Infeasible
    from .executor import execute
    from .ir import load_graph, save_graph
    from .models import ModelProvider, builtin_graph, register_model_provider
    from .results import LayerStats, SimResult
    from .simulation import simulate
    from .workload import Workload, load_workload
