"""The graph IR (float and integer) and its one-file format (docs/semantics.md §1).

A graph is a list of nodes in topological order over named activation tensors. The file is a
single ``.npz``: ``__graph__`` holds the UTF-8 JSON description, every parameter is one array
keyed ``<node>/<param>``. No pickle is ever written or read. Loading validates everything a
later stage relies on (ops, attrs, parameter dtypes/shapes/ranges, tensor names, shapes along
the graph) so that the executor and the simulator can trust a loaded graph; each problem is an
:class:`AccelsimError` naming the file, the key path (``nodes[2].params.weight``) and what is
allowed.

Float and integer graphs differ explicitly (see :data:`PARAM_DTYPES` and the attr tables):
integer graphs carry int64 parameters, accumulator/overflow/requantisation attrs and integer
tensors with a bit width; float graphs carry float32 weights/biases and no quantisation.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AccelsimError
from .jsonio import atomic_file, json_default

FORMAT = "accelsim-graph"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
GRAPH_KEY = "__graph__"
KINDS = ("float", "integer")

OPS = (
    "conv2d",
    "linear",
    "maxpool2d",
    "avgpool2d",
    "global_avgpool",
    "add",
    "clamp",
    "flatten",
    "requantize",
    # issue 13: the ops of the standard image classifiers (docs/semantics.md, docs/ops.md)
    "concat",
    "mul",
    "activation",
    "select_channels",
    "upsample_nearest",
    "adaptive_avgpool2d",
)
GEMM_OPS = ("conv2d", "linear")
INTEGER_ONLY_OPS = ("requantize",)
OPS_BY_KIND = {"integer": OPS, "float": tuple(op for op in OPS if op not in INTEGER_ONLY_OPS)}
OVERFLOWS = ("wrap", "saturate")
VARIADIC = -1  # N_INPUTS of an op taking one or more inputs
N_INPUTS = {op: (2 if op in ("add", "mul") else VARIADIC if op == "concat" else 1) for op in OPS}
# attrs a file may omit (graphs written before the attr existed), with the value they mean
OPTIONAL_ATTRS: dict[str, dict[str, Any]] = {
    "conv2d": {"dilation": [1, 1], "padding_end": None},  # padding_end None: = padding
    "maxpool2d": {"ceil_mode": False},
    "avgpool2d": {"padding": [0, 0], "ceil_mode": False, "count_include_pad": True},
}
# element-wise functions of the ``activation`` op (integer graphs: a lookup table)
ACTIVATIONS = (
    "sigmoid",
    "hardsigmoid",
    "silu",
    "hardswish",
    "tanh",
    "gelu",
    "gelu_tanh",
    "leaky_relu",
    "elu",
    "mish",
    "softplus",
)
LUT_INPUT_BITS_MAX = 16  # a table of 2**bits entries per activation node
MUL_INPUT_BITS_MAX = 16  # |a*b| < 2**30 keeps a*b*multiplier inside int64


# integer ops that requantise (multiplier/shift/out_lo/out_hi) and ops that only move or
# select values of their (single) input, keeping its scale and range
REQUANTISING_VECTOR_OPS = ("add", "requantize", "concat", "mul")
VALUE_PRESERVING_OPS = (
    "maxpool2d",
    "avgpool2d",
    "global_avgpool",
    "flatten",
    "clamp",
    "select_channels",
    "upsample_nearest",
    "adaptive_avgpool2d",
)


def requantises(node: Node) -> bool:
    """Whether an integer node requantises its result (multiplier, shift, out_lo/out_hi).

    ``global_avgpool`` has two integer forms: without params it keeps its input's scale (the
    mean rounded half up); with a ``multiplier`` it requantises the window sum to its own
    output scale (docs/semantics.md).
    """
    if node.op == "global_avgpool":
        return "multiplier" in node.params
    return node.op in REQUANTISING_VECTOR_OPS


_REQUANTISING_GLOBAL_POOL = "global_avgpool+requantize"  # key of its attr and param rules


def rules_key(kind: str, node: Node) -> str:
    """The ATTRS/PARAMS entry describing ``node`` (its op, or a form of it)."""
    if kind == "integer" and node.op == "global_avgpool" and requantises(node):
        return _REQUANTISING_GLOBAL_POOL
    return node.op


def conv_padding(node: Node) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) zero padding of a conv2d: ``padding`` is [top, left],
    ``padding_end`` [bottom, right] (absent: symmetric, the same as ``padding``)."""
    ph, pw = (int(v) for v in node.attrs["padding"])
    end = node.attrs.get("padding_end")
    eh, ew = (ph, pw) if end is None else (int(v) for v in end)
    return ph, pw, eh, ew


def attr(node: Node, name: str) -> Any:
    """``node.attrs[name]``, or the default of an optional attr the node omits."""
    if name in node.attrs:
        return node.attrs[name]
    return OPTIONAL_ATTRS[node.op][name]


def n_inputs_ok(op: str, count: int) -> bool:
    """Whether ``op`` takes ``count`` inputs."""
    wanted = N_INPUTS.get(op, 1)
    return count >= 1 if wanted == VARIADIC else count == wanted


def _n_inputs_text(op: str) -> str:
    wanted = N_INPUTS.get(op, 1)
    return "one or more inputs" if wanted == VARIADIC else f"{wanted} input(s)"


def pool_out(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Output extent of a pooling window along one axis (PyTorch's rule, ceil_mode included:
    the last window must start inside the input or its left padding)."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def adaptive_windows(size: int, out: int) -> tuple[list[int], list[int]]:
    """Start and end (exclusive) of adaptive pooling window i: floor(i*size/out),
    ceil((i+1)*size/out) (PyTorch's rule)."""
    starts = [(i * size) // out for i in range(out)]
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    return starts, ends


TENSOR_BITS_RANGE = (2, 32)  # register widths a tensor may declare
# The one allowed range [lo, hi] of each quantisation setting: the YAML schema
# (accelsim.config.QuantizationConfig), the quantiser (accelsim.quantize) and the IR's attr
# checks below (w_bits, acc_bits) all read it from here.
QUANTIZATION_RANGES: dict[str, tuple[int, int]] = {
    "weight_bits": (2, 8),
    "activation_bits": (2, 8),
    "acc_bits": (4, 32),  # |acc| <= 2**31 keeps acc * multiplier inside int64
    "reserved_msbs": (0, 6),  # and < activation_bits - 1: one magnitude bit is left
}
W_BITS_RANGE = QUANTIZATION_RANGES["weight_bits"]
ACC_BITS_RANGE = QUANTIZATION_RANGES["acc_bits"]
SHIFT_RANGE = (0, 62)
MULTIPLIER_LIMIT = 1 << 31  # multipliers lie in [0, 2**31)


# ---- dataclasses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One activation tensor: shape without batch, and how its integers map to reals."""

    name: str
    shape: tuple[int, ...]  # WITHOUT batch: (C, H, W) or (F,)
    bits: int | None  # None in a float graph
    signed: bool
    scale: float  # real = scale * (q - zero_point); float graphs: 1.0
    zero_point: int = 0
    calib_min: float | None = None
    calib_max: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.bits is not None and not isinstance(self.bits, bool):
            object.__setattr__(self, "bits", int(self.bits))

    def value_range(self) -> tuple[int, int]:
        """Smallest and largest integer the tensor's registers hold (integer graphs)."""
        if self.bits is None:
            raise ValueError(f"tensor {self.name!r} is a float tensor: it has no integer range")
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1


def _plain(value: Any) -> Any:
    """Attr values as JSON-native Python types (tuples -> lists, numpy scalars -> Python)."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    return value


def frozen_array(value: Any) -> Any:
    """``value`` as a read-only array (other objects unchanged, for validation to report).

    An array that owns its data is frozen in place; a view or another array-like is copied
    first, so nobody keeps a writeable alias of an IR parameter. Values derived from a
    parameter (``accelsim.derived``) can then never go stale.
    """
    if not isinstance(value, np.ndarray):
        return value
    if value.flags.writeable:
        if value.base is not None or not value.flags.owndata:
            value = value.copy()
        value.flags.writeable = False
    return value


class Params(dict):
    """A node's parameters: every array read-only (assign a new array to change one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, frozen_array(value))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]


@dataclass(eq=False)
class Node:
    """One op: reads tensors ``inputs``, writes tensor ``output``.

    Parameter arrays are read-only (:class:`Params`): edit a weight by assigning a new array,
    ``node.params["weight"] = new``.
    """

    op: str
    name: str
    inputs: list[str]
    output: str
    attrs: dict[str, int | float | str | bool | list[int]] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inputs = list(self.inputs)
        self.attrs = {str(k): _plain(v) for k, v in self.attrs.items()}
        self.params = Params(self.params)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "params" and not isinstance(value, Params):
            value = Params(value)
        super().__setattr__(name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return (
            (self.op, self.name, self.inputs, self.output, self.attrs)
            == (other.op, other.name, other.inputs, other.output, other.attrs)
            and self.params.keys() == other.params.keys()
            and all(_same_array(self.params[k], other.params[k]) for k in self.params)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@dataclass
class Graph:
    """A network: tensors, nodes in topological order, free JSON metadata."""

    kind: str  # "float" or "integer"
    name: str
    input: str
    output: str
    tensors: dict[str, TensorSpec]
    nodes: list[Node]
    metadata: dict = field(default_factory=dict)

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise AccelsimError(
            f"graph {self.name!r} has no node {name!r}", allowed=[n.name for n in self.nodes]
        )

    def layers(self) -> list[Node]:
        """The conv2d/linear nodes (the ones the PE array computes), in graph order."""
        return [node for node in self.nodes if node.op in GEMM_OPS]

    def producer(self, tensor: str) -> Node | None:
        """The node that writes ``tensor`` (None for the graph input)."""
        for node in self.nodes:
            if node.output == tensor:
                return node
        return None

    def content_hash(self) -> str:
        """sha256 over the canonical JSON description and every parameter array.

        Equal for a graph and its save/load round trip; changes with any weight, attr,
        tensor spec or metadata entry.
        """
        header, arrays = _to_header(self)
        digest = hashlib.sha256(_dumps(header, canonical=True).encode("utf-8"))
        for key in sorted(arrays):
            array = np.ascontiguousarray(arrays[key])
            digest.update(f"\0{key}\0{array.dtype.str}\0{array.shape}\0".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


# ---- shapes --------------------------------------------------------------------------------


def _window_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def infer_shape(node: Node, input_shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The output shape (without batch) ``node`` computes from its input shapes.

    The one shape rule of the IR, used by the loader's validation, by builders and by the
    simulator. Raises :class:`AccelsimError` whose ``key`` is relative to the node
    (``params.weight``, ``attrs.stride``, ``inputs[0]``) when the shapes cannot chain.
    Assumes attrs and params are present and well typed (:func:`validate_graph` checks that
    first).
    """
    shapes = [tuple(int(s) for s in shape) for shape in input_shapes]
    op, attrs = node.op, node.attrs
    if not n_inputs_ok(op, len(shapes)):
        raise AccelsimError(f"{op} takes {_n_inputs_text(op)}", key="inputs")

    def need_rank(rank: int, what: str) -> tuple[int, ...]:
        if len(shapes[0]) != rank:
            raise AccelsimError(
                f"{op} needs a {what} input, got shape {shapes[0]}", key="inputs[0]"
            )
        return shapes[0]

    if op == "conv2d":
        c, h, w = need_rank(3, "(C, H, W)")
        n_out, c_group, kh, kw = (int(s) for s in node.params["weight"].shape)
        groups = int(attrs["groups"])
        if c % groups or n_out % groups:
            raise AccelsimError(
                f"groups={groups} must divide input channels {c} and output channels {n_out}",
                key="attrs.groups",
            )
        if c_group != c // groups:
            raise AccelsimError(
                f"weight shape {node.params['weight'].shape} needs C/groups = {c // groups} "
                f"input channels per group (input has {c} channels, groups={groups})",
                key="params.weight",
            )
        (sh, sw), (ph, pw, eh, ew) = attrs["stride"], conv_padding(node)
        dh, dw = attr(node, "dilation")
        oh = (h + ph + eh - dh * (kh - 1) - 1) // sh + 1
        ow = (w + pw + ew - dw * (kw - 1) - 1) // sw + 1
        if oh < 1 or ow < 1:
            raise AccelsimError(
                f"kernel {kh}x{kw} (dilation {[dh, dw]}) does not fit input {h}x{w} with "
                f"padding {[ph, pw]}",
                key="params.weight",
            )
        return (n_out, oh, ow)
    if op == "linear":
        (k,) = need_rank(1, "(features,)")
        n_out, k_w = (int(s) for s in node.params["weight"].shape)
        if k_w != k:
            raise AccelsimError(
                f"weight shape {node.params['weight'].shape} needs {k} input features",
                key="params.weight",
            )
        return (n_out,)
    if op in ("maxpool2d", "avgpool2d"):
        c, h, w = need_rank(3, "(C, H, W)")
        (kh, kw), (sh, sw) = attrs["kernel"], attrs["stride"]
        ph, pw = attr(node, "padding")
        ceil_mode = bool(attr(node, "ceil_mode"))
        if ph > kh // 2 or pw > kw // 2:
            raise AccelsimError(
                f"padding {[ph, pw]} exceeds half the kernel {[kh, kw]}",
                key="attrs.padding",
                allowed="padding <= kernel // 2",
            )
        oh, ow = pool_out(h, kh, sh, ph, ceil_mode), pool_out(w, kw, sw, pw, ceil_mode)
        if oh < 1 or ow < 1:
            raise AccelsimError(f"kernel {[kh, kw]} does not fit input {h}x{w}", key="attrs.kernel")
        return (c, oh, ow)
    if op == "global_avgpool":
        c, _, _ = need_rank(3, "(C, H, W)")
        return (c, 1, 1)
    if op == "add":
        if shapes[0] != shapes[1]:
            raise AccelsimError(f"add of shapes {shapes[0]} and {shapes[1]}", key="inputs")
        return shapes[0]
    if op in ("clamp", "requantize", "activation"):
        return shapes[0]
    if op == "flatten":
        return (math.prod(shapes[0]),)
    if op == "adaptive_avgpool2d":
        c, _, _ = need_rank(3, "(C, H, W)")
        return (c, *(int(v) for v in attrs["output_size"]))
    if op == "upsample_nearest":
        c, h, w = need_rank(3, "(C, H, W)")
        sh, sw = attrs["scale"]
        return (c, h * sh, w * sw)
    if op == "select_channels":
        c, *rest = shapes[0]
        channels = attrs["channels"]
        if not channels or min(channels) < 0 or max(channels) >= c:
            raise AccelsimError(
                f"channels {channels} of an input with {c} channels",
                key="attrs.channels",
                allowed=f"a non-empty list in [0, {c})",
            )
        return (len(channels), *rest)
    if op == "concat":
        rest = shapes[0][1:]
        for j, shape in enumerate(shapes):
            if len(shape) < 1 or shape[1:] != rest:
                raise AccelsimError(
                    f"concat of shapes {shapes}: all but the channel axis must agree",
                    key=f"inputs[{j}]",
                )
        return (sum(shape[0] for shape in shapes), *rest)
    if op == "mul":
        a, b = shapes
        if len(a) != len(b):
            raise AccelsimError(
                f"mul of shapes {a} and {b}",
                key="inputs",
                allowed="equal ranks, broadcasting size-1 axes",
            )
        try:
            return tuple(int(v) for v in np.broadcast_shapes(a, b))
        except ValueError:
            raise AccelsimError(
                f"mul of shapes {a} and {b} does not broadcast", key="inputs"
            ) from None
    raise AccelsimError(f"unknown op {op!r}", key="op", allowed=OPS)


def output_shape(graph: Graph, node: Node) -> tuple[int, ...]:
    """:func:`infer_shape` with the input shapes the graph declares."""
    return infer_shape(node, [graph.tensors[name].shape for name in node.inputs])


# ---- attr and param rules ------------------------------------------------------------------

AttrCheck = Callable[[Any], str | None]  # returns a description of what is allowed, or None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and not (
        isinstance(v, float) and math.isnan(v)
    )


def _int_in(lo: int, hi: int | None = None) -> AttrCheck:
    def check(v: Any) -> str | None:
        ok = _is_int(v) and v >= lo and (hi is None or v <= hi)
        return (
            None
            if ok
            else (f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}")
        )

    return check


def _any_int(v: Any) -> str | None:
    return None if _is_int(v) else "an integer"


def _number(v: Any) -> str | None:
    return None if _is_number(v) else "a number (inf allowed, not NaN)"


def _pair(lo: int) -> AttrCheck:
    def check(v: Any) -> str | None:
        ok = isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x >= lo for x in v)
        return None if ok else f"a list of two integers >= {lo}"

    return check


def _choice(values: Sequence[str]) -> AttrCheck:
    def check(v: Any) -> str | None:
        return None if v in values else "one of " + ", ".join(values)

    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _int_list(v: Any) -> str | None:
    ok = isinstance(v, list) and bool(v) and all(_is_int(i) and i >= 0 for i in v)
    return None if ok else "a non-empty list of integers >= 0"


_GEMM_INT_ATTRS: dict[str, AttrCheck] = {
    "acc_bits": _int_in(*ACC_BITS_RANGE),
    "overflow": _choice(OVERFLOWS),
    "w_bits": _int_in(*W_BITS_RANGE),
    "out_lo": _any_int,
    "out_hi": _any_int,
    "out_zero_point": _any_int,
}
_CONV_ATTRS: dict[str, AttrCheck] = {
    "stride": _pair(1),
    "padding": _pair(0),
    "groups": _int_in(1),
    "dilation": _pair(1),
    "padding_end": _pair(0),
}
_POOL_ATTRS: dict[str, AttrCheck] = {"kernel": _pair(1), "stride": _pair(1)}
_AVGPOOL_ATTRS: dict[str, AttrCheck] = {
    **_POOL_ATTRS,
    "padding": _pair(0),
    "ceil_mode": _bool,
    "count_include_pad": _bool,
}
_MAXPOOL_ATTRS: dict[str, AttrCheck] = {**_POOL_ATTRS, "padding": _pair(0), "ceil_mode": _bool}
_SHAPE_OPS_ATTRS: dict[str, dict[str, AttrCheck]] = {
    "select_channels": {"channels": _int_list},
    "upsample_nearest": {"scale": _pair(1)},
    "adaptive_avgpool2d": {"output_size": _pair(1)},
}
_REQUANT_ATTRS: dict[str, AttrCheck] = {
    "shift": _int_in(*SHIFT_RANGE),
    "out_lo": _any_int,
    "out_hi": _any_int,
    "out_zero_point": _any_int,
}

ATTRS: dict[str, dict[str, dict[str, AttrCheck]]] = {
    "integer": {
        "conv2d": {**_CONV_ATTRS, **_GEMM_INT_ATTRS},
        "linear": dict(_GEMM_INT_ATTRS),
        "maxpool2d": dict(_MAXPOOL_ATTRS),
        "avgpool2d": dict(_AVGPOOL_ATTRS),
        "global_avgpool": {},
        "add": dict(_REQUANT_ATTRS),
        "clamp": {"lo": _any_int, "hi": _any_int},
        "flatten": {},
        "requantize": dict(_REQUANT_ATTRS),
        "concat": dict(_REQUANT_ATTRS),
        "mul": dict(_REQUANT_ATTRS),
        _REQUANTISING_GLOBAL_POOL: dict(_REQUANT_ATTRS),
        "activation": {"function": _choice(ACTIVATIONS), "alpha": _number},
        **_SHAPE_OPS_ATTRS,
    },
    "float": {
        "conv2d": dict(_CONV_ATTRS),
        "linear": {},
        "maxpool2d": dict(_MAXPOOL_ATTRS),
        "avgpool2d": dict(_AVGPOOL_ATTRS),
        "global_avgpool": {},
        "add": {},
        "clamp": {"lo": _number, "hi": _number},
        "flatten": {},
        "concat": {},
        "mul": {},
        "activation": {"function": _choice(ACTIVATIONS), "alpha": _number},
        **_SHAPE_OPS_ATTRS,
    },
}

# param name -> rank; dtype per kind in PARAM_DTYPES
PARAMS: dict[str, dict[str, dict[str, int]]] = {
    "integer": {
        "conv2d": {"weight": 4, "bias": 1, "multiplier": 1, "shift": 1},
        "linear": {"weight": 2, "bias": 1, "multiplier": 1, "shift": 1},
        "add": {"multiplier_a": 0, "multiplier_b": 0},
        "requantize": {"multiplier": 0},
        "concat": {"multipliers": 1},
        _REQUANTISING_GLOBAL_POOL: {"multiplier": 0},
        "mul": {"multiplier": 0},
        "activation": {"table": 1},
    },
    "float": {
        "conv2d": {"weight": 4, "bias": 1},
        "linear": {"weight": 2, "bias": 1},
    },
}
PARAM_DTYPES = {"integer": np.dtype(np.int64), "float": np.dtype(np.float32)}


# ---- validation ----------------------------------------------------------------------------


def _fail(message: str, *, file: str | Path | None, key: str, allowed: Any = None) -> None:
    raise AccelsimError(message, file=file, key=key, allowed=allowed)


def _check_tensor(spec: TensorSpec, kind: str, key: str, file: str | Path | None) -> None:
    if not spec.shape or any(s < 1 for s in spec.shape):
        _fail(
            f"tensor {spec.name!r} has shape {spec.shape}",
            file=file,
            key=f"{key}.shape",
            allowed="a non-empty list of positive integers",
        )
    if not isinstance(spec.signed, bool):
        _fail("signed must be true or false", file=file, key=f"{key}.signed")
    if kind == "integer":
        lo, hi = TENSOR_BITS_RANGE
        if not _is_int(spec.bits) or not lo <= spec.bits <= hi:
            _fail(
                f"integer tensor {spec.name!r} has bits={spec.bits!r}",
                file=file,
                key=f"{key}.bits",
                allowed=f"an integer in [{lo}, {hi}]",
            )
        if not (_is_number(spec.scale) and math.isfinite(spec.scale) and spec.scale > 0):
            _fail(
                f"scale {spec.scale!r}",
                file=file,
                key=f"{key}.scale",
                allowed="a finite number > 0",
            )
        if not _is_int(spec.zero_point):
            _fail(
                f"zero_point {spec.zero_point!r}",
                file=file,
                key=f"{key}.zero_point",
                allowed="an integer",
            )
    elif spec.bits is not None:
        _fail(
            f"float tensor {spec.name!r} has bits={spec.bits!r}",
            file=file,
            key=f"{key}.bits",
            allowed="null in a float graph",
        )
    for bound in ("calib_min", "calib_max"):
        value = getattr(spec, bound)
        if value is not None and not _is_number(value):
            _fail(f"{bound} {value!r}", file=file, key=f"{key}.{bound}", allowed="a number or null")
    if (
        spec.calib_min is not None
        and spec.calib_max is not None
        and spec.calib_min > spec.calib_max
    ):
        _fail("calib_min > calib_max", file=file, key=f"{key}.calib_min")


def _check_param_values(graph: Graph, node: Node, key: str, file: str | Path | None) -> None:
    """Integer parameter values must fit the registers and arithmetic they feed."""
    p, a = node.params, node.attrs

    def within(name: str, lo: int, hi: int, why: str) -> None:
        v = p[name]
        if v.size and (int(v.min()) < lo or int(v.max()) > hi):
            _fail(
                f"values in [{int(v.min())}, {int(v.max())}] ({why})",
                file=file,
                key=f"{key}.params.{name}",
                allowed=f"[{lo}, {hi}]",
            )

    if node.op in GEMM_OPS:
        wb, ab = a["w_bits"], a["acc_bits"]
        within("weight", -(1 << (wb - 1)), (1 << (wb - 1)) - 1, f"signed w_bits={wb}")
        within("bias", -(1 << (ab - 1)), (1 << (ab - 1)) - 1, f"accumulator acc_bits={ab}")
        within("multiplier", 0, MULTIPLIER_LIMIT - 1, "31-bit multiplier")
        within("shift", *SHIFT_RANGE, "right shift")
    for name in ("multiplier", "multiplier_a", "multiplier_b", "multipliers"):
        if requantises(node) and name in p:
            within(name, 0, MULTIPLIER_LIMIT - 1, "31-bit multiplier")
    if node.op == "concat" and p["multipliers"].shape != (len(node.inputs),):
        _fail(
            f"shape {p['multipliers'].shape}",
            file=file,
            key=f"{key}.params.multipliers",
            allowed=f"({len(node.inputs)},): one per input",
        )
    if node.op == "activation":
        x = graph.tensors[node.inputs[0]]
        size = 1 << int(x.bits)
        if x.bits > LUT_INPUT_BITS_MAX or p["table"].shape != (size,):
            _fail(
                f"table of shape {p['table'].shape} for a {x.bits}-bit input",
                file=file,
                key=f"{key}.params.table",
                allowed=f"({size},): one entry per input code (input bits <= {LUT_INPUT_BITS_MAX})",
            )
        within("table", *graph.tensors[node.output].value_range(), "output tensor's range")
    if node.op == "mul":
        for j, name in enumerate(node.inputs):
            if graph.tensors[name].bits > MUL_INPUT_BITS_MAX:
                _fail(
                    f"mul input {name!r} has {graph.tensors[name].bits} bits",
                    file=file,
                    key=f"{key}.inputs[{j}]",
                    allowed=f"<= {MUL_INPUT_BITS_MAX} bits",
                )


def _check_ranges(graph: Graph, node: Node, key: str, file: str | Path | None) -> None:
    """Integer attrs must agree with the tensors they produce."""
    a = node.attrs
    out = graph.tensors[node.output]
    lo_out, hi_out = out.value_range()
    if node.op in GEMM_OPS or requantises(node):
        lo, hi = a["out_lo"], a["out_hi"]
        if not lo_out <= lo <= hi <= hi_out:
            _fail(
                f"[out_lo, out_hi] = [{lo}, {hi}] does not fit output tensor {out.name!r}",
                file=file,
                key=f"{key}.attrs.out_lo",
                allowed=f"out_lo <= out_hi within [{lo_out}, {hi_out}]",
            )
        if a["out_zero_point"] != out.zero_point:
            _fail(
                f"out_zero_point {a['out_zero_point']} differs from tensor {out.name!r}'s "
                f"zero_point {out.zero_point}",
                file=file,
                key=f"{key}.attrs.out_zero_point",
                allowed=str(out.zero_point),
            )
    elif node.op == "clamp" and not lo_out <= a["lo"] <= a["hi"] <= hi_out:
        _fail(
            f"[lo, hi] = [{a['lo']}, {a['hi']}] does not fit output tensor {out.name!r}",
            file=file,
            key=f"{key}.attrs.lo",
            allowed=f"lo <= hi within [{lo_out}, {hi_out}]",
        )
    elif node.op in VALUE_PRESERVING_OPS:
        # value-preserving ops: same real meaning, and every input value must fit the output
        x = graph.tensors[node.inputs[0]]
        lo_in, hi_in = x.value_range()
        same_meaning = math.isclose(x.scale, out.scale, rel_tol=1e-9) and (
            x.zero_point == out.zero_point
        )
        fits = node.op == "clamp" or lo_out <= lo_in <= hi_in <= hi_out
        if not (same_meaning and fits):
            _fail(
                f"{node.op} output tensor {out.name!r} must keep the scale/zero point of "
                f"{x.name!r} and hold its range [{lo_in}, {hi_in}]",
                file=file,
                key=f"{key}.output",
            )


def validate_graph(graph: Graph, *, file: str | Path | None = None) -> None:
    """Check everything the executor and simulator rely on; AccelsimError on the first problem.

    Key paths follow the file's JSON (``tensors[i]`` in the order of ``graph.tensors``,
    ``nodes[i]`` in node order).
    """
    if graph.kind not in KINDS:
        _fail(f"kind {graph.kind!r}", file=file, key="kind", allowed=KINDS)
    kind = graph.kind
    tensor_index = {name: i for i, name in enumerate(graph.tensors)}
    for name, spec in graph.tensors.items():
        key = f"tensors[{tensor_index[name]}]"
        if spec.name != name:
            _fail(
                f"tensor registered as {name!r} is named {spec.name!r}",
                file=file,
                key=f"{key}.name",
            )
        _check_tensor(spec, kind, key, file)
    if graph.input not in graph.tensors:
        _fail(
            f"input tensor {graph.input!r} is not declared",
            file=file,
            key="input",
            allowed=list(graph.tensors),
        )
    if graph.output not in graph.tensors:
        _fail(
            f"output tensor {graph.output!r} is not declared",
            file=file,
            key="output",
            allowed=list(graph.tensors),
        )

    available = {graph.input}
    names: set[str] = set()
    allowed_ops = OPS_BY_KIND[kind]
    for i, node in enumerate(graph.nodes):
        key = f"nodes[{i}]"
        if not isinstance(node.name, str) or not node.name or "/" in node.name:
            _fail(
                f"node name {node.name!r}",
                file=file,
                key=f"{key}.name",
                allowed="a non-empty string without '/'",
            )
        if node.name in names:
            _fail(f"duplicate node name {node.name!r}", file=file, key=f"{key}.name")
        names.add(node.name)
        if node.op not in allowed_ops:
            _fail(
                f"unknown op {node.op!r} in a {kind} graph",
                file=file,
                key=f"{key}.op",
                allowed=allowed_ops,
            )
        if not n_inputs_ok(node.op, len(node.inputs)):
            _fail(
                f"{node.op} takes {_n_inputs_text(node.op)}, got {len(node.inputs)}",
                file=file,
                key=f"{key}.inputs",
            )
        for j, name in enumerate(node.inputs):
            if name not in available:
                where = "is not declared" if name not in graph.tensors else "is not computed yet"
                _fail(
                    f"input tensor {name!r} {where} (nodes must be in topological order)",
                    file=file,
                    key=f"{key}.inputs[{j}]",
                    allowed=sorted(available),
                )
        if node.output not in graph.tensors:
            _fail(f"output tensor {node.output!r} is not declared", file=file, key=f"{key}.output")
        if node.output in available:
            _fail(f"tensor {node.output!r} is written twice", file=file, key=f"{key}.output")
        # attrs
        rules = ATTRS[kind][rules_key(kind, node)]
        for name in rules.keys() - node.attrs.keys() - OPTIONAL_ATTRS.get(node.op, {}).keys():
            _fail(
                f"missing attr {name!r} of {node.op}",
                file=file,
                key=f"{key}.attrs.{name}",
                allowed=sorted(rules),
            )
        for name, value in node.attrs.items():
            if name not in rules:
                _fail(
                    f"unexpected attr {name!r} for {kind} {node.op}",
                    file=file,
                    key=f"{key}.attrs.{name}",
                    allowed=sorted(rules) or "none",
                )
            problem = rules[name](value)
            if problem is not None:
                _fail(f"{name} = {value!r}", file=file, key=f"{key}.attrs.{name}", allowed=problem)
        # params
        wanted = PARAMS[kind].get(rules_key(kind, node), {})
        for name in wanted.keys() - node.params.keys():
            _fail(
                f"missing param {name!r} of {node.op}",
                file=file,
                key=f"{key}.params.{name}",
                allowed=sorted(wanted),
            )
        dtype = PARAM_DTYPES[kind]
        for name, value in node.params.items():
            pkey = f"{key}.params.{name}"
            if name not in wanted:
                _fail(
                    f"unexpected param {name!r} for {kind} {node.op}",
                    file=file,
                    key=pkey,
                    allowed=sorted(wanted) or "none",
                )
            if not isinstance(value, np.ndarray) or value.dtype != dtype:
                got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                _fail(f"dtype {got}", file=file, key=pkey, allowed=f"{dtype} in a {kind} graph")
            if value.ndim != wanted[name]:
                _fail(
                    f"shape {value.shape} has rank {value.ndim}",
                    file=file,
                    key=pkey,
                    allowed=f"rank {wanted[name]}",
                )
            if kind == "float" and not np.all(np.isfinite(value)):
                _fail("non-finite values", file=file, key=pkey, allowed="finite float32")
        if node.op in GEMM_OPS:
            n_out = node.params["weight"].shape[0]
            for name in wanted:
                if wanted[name] == 1 and node.params[name].shape != (n_out,):
                    _fail(
                        f"shape {node.params[name].shape}",
                        file=file,
                        key=f"{key}.params.{name}",
                        allowed=f"({n_out},): one per output channel",
                    )
        if kind == "float" and node.op == "clamp" and node.attrs["lo"] > node.attrs["hi"]:
            _fail("lo > hi", file=file, key=f"{key}.attrs.lo", allowed="lo <= hi")
        # shapes chain
        try:
            shape = output_shape(graph, node)
        except AccelsimError as exc:
            raise AccelsimError(
                exc.message, file=file, key=f"{key}.{exc.key}", allowed=exc.allowed
            ) from None
        declared = graph.tensors[node.output]
        if shape != declared.shape:
            _fail(
                f"tensor {node.output!r} is declared {declared.shape} but {node.op} "
                f"{node.name!r} (nodes[{i}]) computes {shape}",
                file=file,
                key=f"tensors[{tensor_index[node.output]}].shape",
                allowed=str(shape),
            )
        if kind == "integer":
            _check_param_values(graph, node, key, file)
            _check_ranges(graph, node, key, file)
        available.add(node.output)

    for name, i in tensor_index.items():
        if name not in available:
            _fail(
                f"tensor {name!r} is neither the input nor written by any node",
                file=file,
                key=f"tensors[{i}]",
            )


# ---- file format ---------------------------------------------------------------------------


def _dumps(data: object, *, canonical: bool = False) -> str:
    if canonical:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), default=json_default)
    return json.dumps(data, indent=1, default=json_default)


def _to_header(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for node in graph.nodes:
        refs = {}
        for pname, value in node.params.items():
            refs[pname] = f"{node.name}/{pname}"
            arrays[refs[pname]] = np.asarray(value)
        nodes.append(
            {
                "op": node.op,
                "name": node.name,
                "inputs": list(node.inputs),
                "output": node.output,
                "attrs": {k: _plain(v) for k, v in node.attrs.items()},
                "params": refs,
            }
        )
    tensors = [
        {
            "name": s.name,
            "shape": list(s.shape),
            "bits": s.bits,
            "signed": s.signed,
            "scale": s.scale,
            "zero_point": s.zero_point,
            "calib_min": s.calib_min,
            "calib_max": s.calib_max,
        }
        for s in graph.tensors.values()
    ]
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": graph.kind,
        "name": graph.name,
        "input": graph.input,
        "output": graph.output,
        "tensors": tensors,
        "nodes": nodes,
        "metadata": graph.metadata,
    }
    return header, arrays


def save_graph(graph: Graph, path: str | Path) -> None:
    """Validate ``graph`` and write it as one ``.npz`` atomically (temp file + os.replace)."""
    path = Path(path)
    validate_graph(graph)
    header, arrays = _to_header(graph)
    blob = np.frombuffer(_dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_file(path, "wb") as f:
        np.savez(f, **{GRAPH_KEY: blob}, **arrays)


class _Fields:
    """Typed access to one JSON object, errors naming the key path."""

    def __init__(self, data: Any, key: str, file: Path) -> None:
        self.file, self.key = file, key
        if not isinstance(data, dict):
            _fail(f"expected an object, got {type(data).__name__}", file=file, key=key or "(top)")
        self.data = data

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def only(self, allowed: Sequence[str]) -> None:
        for name in self.data:
            if name not in allowed:
                _fail(
                    f"unexpected key {name!r}", file=self.file, key=self.path(name), allowed=allowed
                )

    def get(self, name: str, check: Callable[[Any], bool], what: str, default: Any = ...) -> Any:
        if name not in self.data:
            if default is ...:
                _fail("missing", file=self.file, key=self.path(name), allowed=what)
            return default
        value = self.data[name]
        if not check(value):
            _fail(f"{value!r}", file=self.file, key=self.path(name), allowed=what)
        return value


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_opt_number(v: Any) -> bool:
    return v is None or _is_number(v)


def _read_header(raw: np.ndarray, file: Path) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        _fail(
            f"array of {raw.dtype} shape {raw.shape}",
            file=file,
            key=GRAPH_KEY,
            allowed="uint8 vector of UTF-8 JSON",
        )
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AccelsimError(f"not UTF-8 ({exc.reason})", file=file, key=GRAPH_KEY) from None
    except json.JSONDecodeError as exc:
        raise AccelsimError(f"bad JSON: {exc}", file=file, key=GRAPH_KEY) from None


def _parse(header: Any, arrays: Callable[[str, str], np.ndarray], file: Path) -> Graph:
    top = _Fields(header, "", file)
    fmt = top.get("format", _is_str, f"{FORMAT!r}")
    if fmt != FORMAT:
        _fail(f"format {fmt!r}: not an accelsim graph", file=file, key="format", allowed=[FORMAT])
    version = top.get("version", _is_int, "an integer")
    if version not in SUPPORTED_VERSIONS:
        _fail(
            f"unsupported version {version}", file=file, key="version", allowed=SUPPORTED_VERSIONS
        )
    top.only(
        ["format", "version", "kind", "name", "input", "output", "tensors", "nodes", "metadata"]
    )
    kind = top.get("kind", lambda v: v in KINDS, " or ".join(KINDS))
    name = top.get("name", _is_str, "a string")
    tensors_json = top.get("tensors", lambda v: isinstance(v, list), "a list of tensors")
    nodes_json = top.get("nodes", lambda v: isinstance(v, list), "a list of nodes")
    metadata = top.get("metadata", lambda v: isinstance(v, dict), "an object", default={})

    tensors: dict[str, TensorSpec] = {}
    for i, item in enumerate(tensors_json):
        t = _Fields(item, f"tensors[{i}]", file)
        t.only(["name", "shape", "bits", "signed", "scale", "zero_point", "calib_min", "calib_max"])
        tname = t.get("name", _is_str, "a string")
        if tname in tensors:
            _fail(f"duplicate tensor name {tname!r}", file=file, key=t.path("name"))
        shape = t.get(
            "shape",
            lambda v: isinstance(v, list) and all(_is_int(s) for s in v),
            "a list of integers",
        )
        tensors[tname] = TensorSpec(
            name=tname,
            shape=tuple(shape),
            bits=t.get("bits", lambda v: v is None or _is_int(v), "an integer or null"),
            signed=t.get("signed", lambda v: isinstance(v, bool), "true or false"),
            scale=float(t.get("scale", _is_number, "a number")),
            zero_point=t.get("zero_point", _is_int, "an integer", default=0),
            calib_min=t.get("calib_min", _is_opt_number, "a number or null", default=None),
            calib_max=t.get("calib_max", _is_opt_number, "a number or null", default=None),
        )

    nodes: list[Node] = []
    for i, item in enumerate(nodes_json):
        n = _Fields(item, f"nodes[{i}]", file)
        n.only(["op", "name", "inputs", "output", "attrs", "params"])
        op = n.get("op", _is_str, "a string")
        if op not in OPS_BY_KIND[kind]:
            _fail(
                f"unknown op {op!r} in a {kind} graph",
                file=file,
                key=n.path("op"),
                allowed=OPS_BY_KIND[kind],
            )
        refs = n.get(
            "params",
            lambda v: isinstance(v, dict) and all(map(_is_str, v.values())),
            "an object of param name -> array key",
            default={},
        )
        params = {p: arrays(ref, f"nodes[{i}].params.{p}") for p, ref in refs.items()}
        nodes.append(
            Node(
                op=op,
                name=n.get("name", _is_str, "a string"),
                inputs=n.get(
                    "inputs",
                    lambda v: isinstance(v, list) and all(map(_is_str, v)),
                    "a list of tensor names",
                ),
                output=n.get("output", _is_str, "a tensor name"),
                attrs=n.get("attrs", lambda v: isinstance(v, dict), "an object", default={}),
                params=params,
            )
        )
    return Graph(
        kind=kind,
        name=name,
        input=top.get("input", _is_str, "a tensor name"),
        output=top.get("output", _is_str, "a tensor name"),
        tensors=tensors,
        nodes=nodes,
        metadata=metadata,
    )


# what a damaged archive can raise while being opened or read; anything else is a bug
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,  # unknown compression method
    KeyError,
)


def load_graph(path: str | Path) -> Graph:
    """Read and validate a graph file written by :func:`save_graph`.

    Never unpickles. Any problem (not a zip, truncated, CRC error, missing ``__graph__``, bad
    JSON, wrong format/version, unknown op, inconsistent params or shapes) raises
    :class:`AccelsimError` naming the file and the key path.
    """
    path = Path(path)
    if not path.is_file():
        raise AccelsimError("graph file not found", file=path)
    if not zipfile.is_zipfile(path):
        raise AccelsimError(
            "not a .npz (zip) archive: truncated, corrupted or not a graph file", file=path
        )
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()  # reads every member, checks its CRC
    except _ARCHIVE_ERRORS as exc:
        raise AccelsimError(f"corrupted archive ({exc})", file=path) from None
    if bad_member is not None:
        raise AccelsimError(f"corrupted archive: CRC error in {bad_member}", file=path)

    try:
        npz = np.load(path, allow_pickle=False)
    except _ARCHIVE_ERRORS as exc:
        raise AccelsimError(f"unreadable .npz ({exc})", file=path) from None
    with npz:
        used: set[str] = set()

        def read(entry: str, key: str) -> np.ndarray:
            if entry not in npz.files:
                raise AccelsimError(
                    f"array {entry!r} is missing from the archive", file=path, key=key
                )
            try:
                value = npz[entry]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
                    raise AccelsimError(
                        f"array {entry!r} holds pickled objects; refused",
                        file=path,
                        key=key,
                        allowed="plain numeric arrays (no pickle)",
                    ) from None
                raise AccelsimError(
                    f"array {entry!r} is unreadable ({exc})", file=path, key=key
                ) from None
            except _ARCHIVE_ERRORS as exc:
                raise AccelsimError(
                    f"array {entry!r} is unreadable ({exc})", file=path, key=key
                ) from None
            if value.dtype.hasobject:
                raise AccelsimError(f"array {entry!r} holds objects; refused", file=path, key=key)
            used.add(entry)
            return value

        if GRAPH_KEY not in npz.files:
            raise AccelsimError(
                f"no {GRAPH_KEY} entry: not an accelsim graph file", file=path, key=GRAPH_KEY
            )
        header = _read_header(read(GRAPH_KEY, GRAPH_KEY), path)
        graph = _parse(header, read, path)
        extra = sorted(set(npz.files) - used)
        if extra:
            raise AccelsimError(
                f"arrays not referenced by any node: {extra}", file=path, key=f"arrays.{extra[0]}"
            )
    validate_graph(graph, file=path)
    return graph
