"""A workload: the validated config, the integer graph it runs, and the inputs it runs on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import WorkloadConfig, load_workload_config
from .errors import AccelsimError
from .ir import Graph, load_graph


@dataclass(frozen=True)
class Workload:
    config: WorkloadConfig
    graph: Graph  # integer graph the accelerator executes
    float_graph: Graph | None  # before quantisation, when the model was given as a float graph
    inputs: np.ndarray  # integer inputs, leading sample axis
    labels: np.ndarray | None  # ground truth for accuracy, when a dataset is given
    source: Path | None = None  # the workload file

    @property
    def name(self) -> str:
        return self.config.name

    def with_config(self, config: WorkloadConfig) -> Workload:
        """The same workload under another config (re-quantises when the graph was float)."""
        return build_workload(config, base_dir=self._base_dir(), source=self.source)

    def _base_dir(self) -> Path:
        return Path(os.path.realpath(self.source)).parent if self.source is not None else Path.cwd()


def load_workload(path: str | Path, overrides: list[str] | None = None) -> Workload:
    """Read ``workload.yaml`` (with ``--set`` overrides) and everything it points at."""
    path = Path(path)
    config = load_workload_config(path, overrides)
    # relative paths are relative to the file itself: a symlink's target, not the link
    return build_workload(config, base_dir=Path(os.path.realpath(path)).parent, source=path)


def _resolve(base_dir: Path, relative: str, *, source: Path | None, key: str) -> Path:
    path = (base_dir / relative) if not Path(relative).is_absolute() else Path(relative)
    if not path.exists():
        raise AccelsimError(f"file not found: {relative}", file=source, key=key)
    return path


def load_float_or_integer_model(
    config: WorkloadConfig, *, base_dir: Path, source: Path | None
) -> Graph:
    model = config.model
    if isinstance(model, str):
        return load_graph(_resolve(base_dir, model, source=source, key="model"))
    if hasattr(model, "scalesim_topology"):
        from .topology import load_scalesim_topology

        q = config.quantization
        path = _resolve(
            base_dir, model.scalesim_topology, source=source, key="model.scalesim_topology"
        )
        return load_scalesim_topology(
            path,
            seed=config.seed,
            weight_bits=q.weight_bits,
            activation_bits=q.activation_bits,
            acc_bits=q.acc_bits,
            overflow=q.overflow,
        )
    # a builtin model, from the provider that knows it (accelsim.models; the shipped one
    # exports it on first use, needs torch then, and caches it in the user's cache folder)
    from .caches import cache_dir
    from .models import builtin_graph

    return builtin_graph(
        model.builtin, input_size=model.input_size, seed=model.seed, cache_dir=cache_dir("models")
    )


def check_quantization_matches(graph: Graph, config: WorkloadConfig, source: Path | None) -> None:
    """An integer graph is already quantised: ``quantization:`` keys that would change it are
    an error (they would be silently ignored otherwise). Keys equal to the graph's own
    settings (recorded by the quantiser in its metadata) are accepted."""
    q = config.quantization
    wanted = sorted(q.model_fields_set)
    if not wanted:
        return
    requested = q.to_json()
    have = graph.metadata.get("quantization")
    differs = [k for k in wanted if not isinstance(have, dict) or have.get(k) != requested[k]]
    if not differs:
        return
    told = ", ".join(f"{k}={requested[k]!r}" for k in differs)
    made = (
        "its own settings are " + ", ".join(f"{k}={have.get(k)!r}" for k in differs)
        if isinstance(have, dict)
        else "it records no quantisation settings"
    )
    raise AccelsimError(
        f"the model is an integer graph (already quantised; {made}), so quantization: "
        f"{told} cannot apply",
        file=source,
        key=f"quantization.{differs[0]}",
        allowed="a float graph as the model (python -m accelsim export) to re-quantise, or no "
        "quantization: keys that differ from the integer graph's",
    )


def build_workload(config: WorkloadConfig, *, base_dir: Path, source: Path | None) -> Workload:
    graph = load_float_or_integer_model(config, base_dir=base_dir, source=source)
    float_graph = None
    if graph.kind == "float":
        from .quantize import quantize_cached

        float_graph = graph  # kept: the optimizer re-quantises it under other settings
        graph = quantize_cached(float_graph, config.quantization, source=source)
    elif not hasattr(config.model, "scalesim_topology"):
        check_quantization_matches(graph, config, source)
    check_against_graph(config, graph, source)
    from .executor import quantize_input

    labels = None
    if config.dataset is not None:
        from .dataset import load_dataset

        data_path = _resolve(base_dir, config.dataset.path, source=source, key="dataset.path")
        x, labels = load_dataset(data_path, graph, samples=config.dataset.samples)
        inputs = quantize_input(graph, x) if np.issubdtype(x.dtype, np.floating) else x
    else:
        rng = np.random.default_rng(config.seed)
        lo, hi = graph.tensors[graph.input].value_range()
        shape = (config.batch, *graph.tensors[graph.input].shape)
        inputs = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    return Workload(
        config=config,
        graph=graph,
        float_graph=float_graph,
        inputs=np.asarray(inputs, dtype=np.int64),
        labels=labels,
        source=source,
    )


def check_against_graph(config: WorkloadConfig, graph: Graph, source: Path | None) -> None:
    """What only the graph can tell: hardened bits inside their registers, protected neurons
    that exist, and a batch whose activations fit the memory limit."""
    from .cost import register_widths
    from .limits import refuse_over

    protection = config.accelerator.protection
    widths = register_widths(graph).as_dict()
    for register, width in widths.items():
        bits = getattr(protection.hardened_bits, register)
        if bits and max(bits) >= width:
            raise AccelsimError(
                f"bit {max(bits)} is outside the {width}-bit {register} register",
                file=source,
                key=f"accelerator.protection.hardened_bits.{register}",
                allowed=f"bit positions 0 to {width - 1}",
            )
    layers = {node.name: node for node in graph.layers()}
    for name, channels in (protection.protected_neurons or {}).items():
        key = f"accelerator.protection.protected_neurons.{name}"
        if name not in layers:
            raise AccelsimError(
                "no such layer", file=source, key=key, allowed=", ".join(layers) or "none"
            )
        outputs = int(layers[name].params["weight"].shape[0])
        if channels and max(channels) >= outputs:
            raise AccelsimError(
                f"layer {name!r} has {outputs} neurons (output channels)",
                file=source,
                key=key,
                allowed=f"0 to {outputs - 1}",
            )
    per_sample = sum(int(np.prod(t.shape)) for t in graph.tensors.values())
    per_sample += max((_lowered_elements(graph, node) for node in layers.values()), default=0)
    try:
        refuse_over(
            config.batch * per_sample * 8,
            config.limits,
            "memory_bytes",
            key="batch",
            what=f"memory for a batch of {config.batch} (activations, lowered operands)",
            unit="B",
        )
    except AccelsimError as exc:
        exc.file = str(source) if source is not None else None
        raise


def _lowered_elements(graph: Graph, node) -> int:
    """Elements per sample of a layer's lowered input matrix (im2col for a convolution)."""
    weight = node.params["weight"].shape
    if node.op == "linear":
        return int(weight[1])
    out = graph.tensors[node.output].shape
    groups = int(node.attrs.get("groups", 1))
    return int(out[1] * out[2] * weight[1] * weight[2] * weight[3] * groups)
