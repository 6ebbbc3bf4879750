"""A workload's labelled inputs, checked against the graph they feed.

A dataset is an npz with ``x`` (samples × the graph input's shape; real values to be
quantised, or the input tensor's integers) and ``y`` (one integer class label per sample).
Everything a user can get wrong is refused here with one line naming the file, the array and
what is allowed — before a simulation reads a wrong shape, a NaN or a label that can never
match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AccelsimError
from .ir import Graph
from .npzio import load_npz


def load_dataset(
    path: Path, graph: Graph, *, samples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the dataset at ``path``, the first ``samples`` of them, validated
    against ``graph`` (shape, dtype, lengths, finite values, label and integer ranges)."""
    arrays = load_npz(path, what="dataset")
    for name in ("x", "y"):
        if name not in arrays:
            raise AccelsimError(
                f"no array {name!r}",
                file=path,
                key=name,
                allowed="an npz with arrays x (inputs) and y (labels)",
            )
    x, y = arrays["x"], arrays["y"]
    _check_inputs(x, graph, path)
    _check_labels(y, len(x), graph, path)
    if samples is not None:
        if samples > len(x):
            raise AccelsimError(
                f"dataset.samples is {samples} but the dataset holds {len(x)} samples",
                file=path,
                key="x",
                allowed=f"1 to {len(x)}",
            )
        x, y = x[:samples], y[:samples]
    return x, y


def _check_inputs(x: np.ndarray, graph: Graph, path: Path) -> None:
    spec = graph.tensors[graph.input]
    shape = (len(x),) + tuple(spec.shape) if x.ndim else ()
    if x.dtype.kind not in "fiu":
        raise AccelsimError(
            f"x has dtype {x.dtype}", file=path, key="x", allowed="float or integer inputs"
        )
    if x.ndim != 1 + len(spec.shape) or x.shape != shape:
        raise AccelsimError(
            f"x has shape {x.shape}; the graph's input {spec.name!r} takes samples of shape "
            f"{tuple(spec.shape)}",
            file=path,
            key="x",
            allowed=f"(samples, {', '.join(map(str, spec.shape))})",
        )
    if len(x) == 0:
        raise AccelsimError("x holds no samples", file=path, key="x", allowed="1 or more samples")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1))[0])
        raise AccelsimError(
            f"x holds NaN or infinite values (first in sample {bad})",
            file=path,
            key="x",
            allowed="finite numbers",
        )
    if x.dtype.kind in "iu" and spec.bits is not None:
        lo, hi = spec.value_range()
        if x.min() < lo or x.max() > hi:
            raise AccelsimError(
                f"integer inputs span [{x.min()}, {x.max()}] but the input tensor "
                f"{spec.name!r} holds {spec.bits}-bit {'signed' if spec.signed else 'unsigned'} "
                "integers",
                file=path,
                key="x",
                allowed=f"integers in [{lo}, {hi}], or real (float) inputs",
            )


def _check_labels(y: np.ndarray, samples: int, graph: Graph, path: Path) -> None:
    classes = int(np.prod(graph.tensors[graph.output].shape))
    if y.dtype.kind not in "iu":
        raise AccelsimError(
            f"y has dtype {y.dtype}", file=path, key="y", allowed="integer class labels"
        )
    if y.ndim != 1:
        raise AccelsimError(
            f"y has shape {y.shape}", file=path, key="y", allowed="one label per sample: (samples,)"
        )
    if len(y) != samples:
        raise AccelsimError(
            f"y holds {len(y)} labels for {samples} samples in x",
            file=path,
            key="y",
            allowed="as many labels as samples",
        )
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise AccelsimError(
            f"labels span [{y.min()}, {y.max()}] but the graph has {classes} outputs",
            file=path,
            key="y",
            allowed=f"0 to {classes - 1}",
        )
