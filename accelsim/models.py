"""Builtin models by name (``model: {builtin: resnet18}``): a registry the application fills.

The core never imports ``workloads`` (DESIGN.md: only the application layer reaches outside
accelsim/). A *model provider* knows some builtin names and builds their float graphs; the
core asks the registry. Providers arrive in two ways:

* **entry points** of the group :data:`ENTRY_POINT_GROUP`, declared by the installed
  distributions (``[project.entry-points."accelsim.models"]`` in pyproject.toml). Each names a
  function taking no argument and returning a :class:`ModelProvider`. They are loaded lazily,
  the first time a builtin name is looked up, so importing accelsim stays fast.
* **code**: :func:`register_model_provider` (a script or a test adds its own models).

:data:`SHIPPED_PROVIDERS` repeats this repository's own entry point (a test keeps it equal to
pyproject.toml). It is loaded like an entry point when the installed metadata does not list it:
an editable install made before the table was added has stale metadata until it is
reinstalled, and without this the builtins would silently vanish. When ``workloads`` is not
installed at all, that provider is skipped and an unknown name is reported as usual.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AccelsimError

if TYPE_CHECKING:
    from .ir import Graph

ENTRY_POINT_GROUP = "accelsim.models"
SHIPPED_PROVIDERS = {"workloads": "workloads.builtins:model_provider"}


@dataclass(frozen=True)
class ModelProvider:
    """Builtin models of one package.

    ``build(name, input_size=..., seed=..., cache_dir=...)`` returns the float graph of
    ``name`` (one of ``names``); ``input_size`` None means the model's default size, and
    ``cache_dir`` is where the provider may keep exported graphs between runs.
    """

    names: tuple[str, ...]
    build: Callable[..., Graph]


_providers: dict[str, ModelProvider] = {}  # by provider name, in registration order
_discovered = False


def register_model_provider(name: str, provider: ModelProvider) -> None:
    """Add (or replace) the provider called ``name``; its models become builtin names."""
    if not isinstance(provider, ModelProvider):
        raise TypeError(f"provider {name!r} must be a ModelProvider, got {type(provider)!r}")
    _providers[name] = provider


def _load(entry: metadata.EntryPoint) -> ModelProvider:
    try:
        provider = entry.load()()
    except Exception as exc:
        raise AccelsimError(
            f"model provider {entry.name!r} ({entry.value}) failed to load: "
            f"{type(exc).__name__}: {exc}",
            key=f"entry-points.{ENTRY_POINT_GROUP}.{entry.name}",
        ) from None
    if not isinstance(provider, ModelProvider):
        raise AccelsimError(
            f"model provider {entry.name!r} ({entry.value}) returned {type(provider).__name__}",
            key=f"entry-points.{ENTRY_POINT_GROUP}.{entry.name}",
            allowed="a function returning accelsim.models.ModelProvider",
        )
    return provider


def _discover() -> None:
    """Load the entry points once (a provider registered in code under the same name wins)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    installed = {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    for name, value in SHIPPED_PROVIDERS.items():
        if name in installed:
            continue
        package = value.partition(":")[0].split(".")[0]
        if importlib.util.find_spec(package) is not None:  # importable, metadata stale
            installed[name] = metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
    for name, entry in installed.items():
        if name not in _providers:
            _providers[name] = _load(entry)


def model_providers() -> dict[str, ModelProvider]:
    """Every provider (entry points loaded on first use), by name."""
    _discover()
    return dict(_providers)


def builtin_names() -> tuple[str, ...]:
    """Every builtin model name, in provider order."""
    names: list[str] = []
    for provider in model_providers().values():
        names.extend(n for n in provider.names if n not in names)
    return tuple(names)


def builtin_graph(
    name: str, *, input_size: int | None = None, seed: int = 0, cache_dir: str | Path
) -> Graph:
    """The float graph of builtin model ``name``, from the provider that knows it (the one
    registered last wins)."""
    for provider in reversed(list(model_providers().values())):
        if name in provider.names:
            return provider.build(name, input_size=input_size, seed=seed, cache_dir=cache_dir)
    raise AccelsimError(
        f"unknown builtin model {name!r}",
        key="model.builtin",
        allowed=list(builtin_names())
        or f"none: no model provider is installed (entry point group {ENTRY_POINT_GROUP!r})",
    )
