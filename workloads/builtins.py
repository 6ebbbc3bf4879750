"""The builtin models this package provides to accelsim (entry point ``accelsim.models``).

Importing this module is cheap (no torch): accelsim loads it to learn the builtin names when a
workload file names one; torch is imported only when a graph has to be exported.
"""

from __future__ import annotations

from pathlib import Path

from accelsim.ir import Graph
from accelsim.models import ModelProvider

# every builtin model and the input size it gets when the workload does not say
# (workloads.models.BUILTIN_MODELS holds their factories; a test keeps the two in step)
DEFAULT_INPUT_SIZE = {
    "digits_mlp": 8,
    "digits_cnn": 8,
    "digits_resnet": 16,
    "resnet18": 224,
    "vgg16": 224,
    "mobilenet_block": 112,
}


def _build(name: str, *, input_size: int | None, seed: int, cache_dir: str | Path) -> Graph:
    from .export import builtin_graph_cached

    return builtin_graph_cached(name, input_size=input_size, seed=seed, cache_dir=cache_dir)


def model_provider() -> ModelProvider:
    """accelsim's view of :data:`DEFAULT_INPUT_SIZE`'s models (exported and cached on use)."""
    return ModelProvider(names=tuple(DEFAULT_INPUT_SIZE), build=_build)
