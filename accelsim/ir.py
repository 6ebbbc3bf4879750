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
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AccelsimError
from .jsonio import atomic_file, json_default
from .npzio import ARCHIVE_ERRORS, read_headers
from .ops import (  # noqa: F401  (re-exported: the IR's op vocabulary lives in accelsim.ops)
    ACC_BITS_RANGE,
    ACTIVATIONS,
    GEMM_OPS,
    LUT_INPUT_BITS_MAX,
    MUL_INPUT_BITS_MAX,
    MULTIPLIER_LIMIT,
    OP_SPECS,
    OPS,
    OPS_BY_KIND,
    OVERFLOWS,
    QUANTIZATION_RANGES,
    SHIFT_RANGE,
    VARIADIC,
    W_BITS_RANGE,
    adaptive_windows,
    attr,
    conv_padding,
    op_spec,
    ops_of_kind,
    pool_out,
    preserved_values,
    requantised_output,
    requantises,
)
from .ops import is_int as _is_int
from .ops import is_number as _is_number

FORMAT = "accelsim-graph"
# accelsim's own cache entries (save_graph(narrow=True)): integer params stored in the smallest
# signed dtype that holds them; a different format name so neither file passes for the other
NARROW_FORMAT = "accelsim-graph-narrowed"
NARROW_DTYPES = (np.int8, np.int16, np.int32, np.int64)
VERSION = 1
SUPPORTED_VERSIONS = (1,)
GRAPH_KEY = "__graph__"
KINDS = ("float", "integer")

TENSOR_BITS_RANGE = (2, 32)  # register widths a tensor may declare


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


def infer_shape(node: Node, input_shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The output shape (without batch) ``node`` computes from its input shapes.

    The one shape rule of the IR (each op's ``shape`` in :data:`accelsim.ops.OP_SPECS`), used
    by the loader's validation, by builders and by the simulator. Raises
    :class:`AccelsimError` whose ``key`` is relative to the node (``params.weight``,
    ``attrs.stride``, ``inputs[0]``) when the shapes cannot chain. Assumes attrs and params
    are present and well typed (:func:`validate_graph` checks that first).
    """
    shapes = [tuple(int(s) for s in shape) for shape in input_shapes]
    spec = op_spec(node.op)
    if not spec.inputs_ok(len(shapes)):
        raise AccelsimError(f"{node.op} takes {spec.inputs_text()}", key="inputs")
    return spec.shape(node, shapes)


def output_shape(graph: Graph, node: Node) -> tuple[int, ...]:
    """:func:`infer_shape` with the input shapes the graph declares."""
    return infer_shape(node, [graph.tensors[name].shape for name in node.inputs])


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


def _node_error(exc: AccelsimError, key: str, file: str | Path | None) -> AccelsimError:
    """An op check's error (key relative to the node) as one naming the file and node."""
    return AccelsimError(exc.message, file=file, key=f"{key}.{exc.key}", allowed=exc.allowed)


def _check_graph_header(graph: Graph, file: str | Path | None) -> dict[str, int]:
    """Kind, tensor specs, input and output; returns each tensor's index in the file."""
    if graph.kind not in KINDS:
        _fail(f"kind {graph.kind!r}", file=file, key="kind", allowed=KINDS)
    tensor_index = {name: i for i, name in enumerate(graph.tensors)}
    for name, spec in graph.tensors.items():
        key = f"tensors[{tensor_index[name]}]"
        if spec.name != name:
            _fail(
                f"tensor registered as {name!r} is named {spec.name!r}",
                file=file,
                key=f"{key}.name",
            )
        _check_tensor(spec, graph.kind, key, file)
    for end in ("input", "output"):
        if getattr(graph, end) not in graph.tensors:
            _fail(
                f"{end} tensor {getattr(graph, end)!r} is not declared",
                file=file,
                key=end,
                allowed=list(graph.tensors),
            )
    return tensor_index


def _check_wiring(
    graph: Graph, node: Node, key: str, available: set[str], names: set[str], file
) -> None:
    """Name, op, inputs already computed (topological order), output declared and new."""
    if not isinstance(node.name, str) or not node.name or "/" in node.name:
        _fail(
            f"node name {node.name!r}",
            file=file,
            key=f"{key}.name",
            allowed="a non-empty string without '/'",
        )
    if node.name in names:
        _fail(f"duplicate node name {node.name!r}", file=file, key=f"{key}.name")
    allowed_ops = ops_of_kind(graph.kind)
    if node.op not in allowed_ops:
        _fail(
            f"unknown op {node.op!r} in a {graph.kind} graph",
            file=file,
            key=f"{key}.op",
            allowed=allowed_ops,
        )
    spec = OP_SPECS[node.op]
    if not spec.inputs_ok(len(node.inputs)):
        _fail(
            f"{node.op} takes {spec.inputs_text()}, got {len(node.inputs)}",
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


def _check_attrs(kind: str, node: Node, key: str, file: str | Path | None) -> None:
    spec = OP_SPECS[node.op]
    rules = spec.rules(kind, node).attrs
    for name in rules.keys() - node.attrs.keys() - spec.optional_attrs.keys():
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


def _check_params(kind: str, node: Node, key: str, file: str | Path | None) -> None:
    """Every parameter the op needs, none else, each of the kind's dtype and its rank."""
    wanted = OP_SPECS[node.op].rules(kind, node).params
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


def _check_shape(graph: Graph, node: Node, i: int, tensor_index: dict[str, int], file) -> None:
    """The op's shape rule gives the output tensor's declared shape."""
    try:
        shape = output_shape(graph, node)
    except AccelsimError as exc:
        raise _node_error(exc, f"nodes[{i}]", file) from None
    declared = graph.tensors[node.output]
    if shape != declared.shape:
        _fail(
            f"tensor {node.output!r} is declared {declared.shape} but {node.op} "
            f"{node.name!r} (nodes[{i}]) computes {shape}",
            file=file,
            key=f"tensors[{tensor_index[node.output]}].shape",
            allowed=str(shape),
        )


def _run_checks(graph: Graph, node: Node, checks, key: str, file: str | Path | None) -> None:
    try:
        for check in checks:
            check(graph, node)
    except AccelsimError as exc:
        raise _node_error(exc, key, file) from None


def _integer_rules(spec) -> tuple:
    """The integer value checks of an op, then the rule its output range follows:
    requantised (layers and requantising vector ops) or kept from the input."""

    def output_range(graph: Graph, node: Node) -> None:
        if spec.layer or spec.requantises(node):
            requantised_output(graph, node)
        elif spec.value_preserving:
            preserved_values(graph, node)

    return (*spec.integer_checks, output_range)


def _check_node(graph: Graph, node: Node, i: int, tensor_index: dict[str, int], file) -> None:
    """Attrs, params, the op's own checks, the shape chain, integer values and ranges."""
    key, spec = f"nodes[{i}]", OP_SPECS[node.op]
    _check_attrs(graph.kind, node, key, file)
    _check_params(graph.kind, node, key, file)
    _run_checks(graph, node, spec.checks, key, file)
    _check_shape(graph, node, i, tensor_index, file)
    if graph.kind == "integer":
        _run_checks(graph, node, _integer_rules(spec), key, file)


def validate_graph(graph: Graph, *, file: str | Path | None = None) -> None:
    """Check everything the executor and simulator rely on; AccelsimError on the first problem.

    Key paths follow the file's JSON (``tensors[i]`` in the order of ``graph.tensors``,
    ``nodes[i]`` in node order).
    """
    tensor_index = _check_graph_header(graph, file)
    available = {graph.input}
    names: set[str] = set()
    for i, node in enumerate(graph.nodes):
        _check_wiring(graph, node, f"nodes[{i}]", available, names, file)
        names.add(node.name)
        _check_node(graph, node, i, tensor_index, file)
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


def narrowest_int(values: np.ndarray) -> np.ndarray:
    """``values`` (integers) in the smallest signed dtype of :data:`NARROW_DTYPES` holding them."""
    if values.size == 0:
        return values.astype(NARROW_DTYPES[0])
    lo, hi = int(values.min()), int(values.max())
    for dtype in NARROW_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype, copy=False)
    raise AssertionError("int64 values always fit int64")


def save_graph(graph: Graph, path: str | Path, *, narrow: bool = False) -> None:
    """Validate ``graph`` and write it as one ``.npz`` atomically (temp file + os.replace).

    ``narrow=True`` (integer graphs only; for accelsim's caches, not for users): each param is
    stored in its smallest signed dtype (:func:`narrowest_int`, an int8 weight takes 1 byte,
    not 8) under the format :data:`NARROW_FORMAT`, read back only by ``load_graph(narrow=True)``.
    """
    path = Path(path)
    validate_graph(graph)
    if narrow and graph.kind != "integer":
        raise ValueError(f"narrow storage is for integer graphs, not a {graph.kind} graph")
    header, arrays = _to_header(graph)
    if narrow:
        header["format"] = NARROW_FORMAT
        arrays = {key: narrowest_int(value) for key, value in arrays.items()}
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


MAX_HEADER_NESTING = 64  # a graph header is a few levels deep; json recurses per level
_JSON_STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def _nesting_depth(text: str) -> int:
    """How deep ``[``/``{`` nest in JSON ``text`` (strings skipped), without recursing."""
    skeleton = np.frombuffer(_JSON_STRING.sub('""', text).encode("utf-8"), dtype=np.uint8)
    step = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64)
    step -= np.isin(skeleton, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


def _read_header(raw: np.ndarray, file: Path) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        _fail(
            f"array of {raw.dtype} shape {raw.shape}",
            file=file,
            key=GRAPH_KEY,
            allowed="uint8 vector of UTF-8 JSON",
        )
    try:
        text = raw.tobytes().decode("utf-8")
        depth = _nesting_depth(text)
        if depth > MAX_HEADER_NESTING:
            raise AccelsimError(
                f"the header is nested {depth} levels deep",
                file=file,
                key=GRAPH_KEY,
                allowed=f"at most {MAX_HEADER_NESTING} levels",
            )
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise AccelsimError(f"not UTF-8 ({exc.reason})", file=file, key=GRAPH_KEY) from None
    except json.JSONDecodeError as exc:
        raise AccelsimError(f"bad JSON: {exc}", file=file, key=GRAPH_KEY) from None


def _parse(
    header: Any, arrays: Callable[[str, str], np.ndarray], file: Path, *, narrow: bool = False
) -> Graph:
    top = _Fields(header, "", file)
    expected = NARROW_FORMAT if narrow else FORMAT
    fmt = top.get("format", _is_str, f"{expected!r}")
    if fmt != expected:
        # each format's reader names the other, so a user handed a cache entry learns what it is
        what, allowed = {
            NARROW_FORMAT: (
                "an entry of accelsim's quantised-graph cache (parameters stored narrowed), "
                "not a graph file",
                f"[{FORMAT!r}] (python -m accelsim export, or accelsim.ir.save_graph)",
            ),
            FORMAT: ("a graph file, not a narrowed cache entry", [NARROW_FORMAT]),
        }.get(fmt, ("not an accelsim graph", [expected]))
        _fail(f"format {fmt!r}: {what}", file=file, key="format", allowed=allowed)
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
        if op not in ops_of_kind(kind):
            _fail(
                f"unknown op {op!r} in a {kind} graph",
                file=file,
                key=n.path("op"),
                allowed=ops_of_kind(kind),
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


def load_graph(path: str | Path, *, narrow: bool = False) -> Graph:
    """Read and validate a graph file written by :func:`save_graph`.

    Never unpickles. Any problem (not a zip, truncated, CRC error, missing ``__graph__``, bad
    JSON, wrong format/version, unknown op, inconsistent params or shapes) raises
    :class:`AccelsimError` naming the file and the key path. ``narrow=True`` reads only files
    of ``save_graph(narrow=True)``: an integer graph whose signed-integer params are widened
    back to int64 before the same validation (and ``narrow=False`` refuses such a file).
    """
    path = Path(path)
    if not path.is_file():
        raise AccelsimError("graph file not found", file=path)
    if not zipfile.is_zipfile(path):
        raise AccelsimError(
            "not a .npz (zip) archive: truncated, corrupted or not a graph file", file=path
        )
    read_headers(path, what="graph file")  # sizes from the headers, before decompressing
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()  # reads every member, checks its CRC
    except ARCHIVE_ERRORS as exc:
        raise AccelsimError(f"corrupted archive ({exc})", file=path) from None
    if bad_member is not None:
        raise AccelsimError(f"corrupted archive: CRC error in {bad_member}", file=path)

    try:
        npz = np.load(path, allow_pickle=False)
    except ARCHIVE_ERRORS as exc:
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
            except ARCHIVE_ERRORS as exc:
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

        def read_widened(entry: str, key: str) -> np.ndarray:
            value = read(entry, key)
            if value.dtype.kind != "i":
                _fail(f"dtype {value.dtype}", file=path, key=key, allowed="a signed integer dtype")
            return value.astype(np.int64, copy=False)

        header = _read_header(read(GRAPH_KEY, GRAPH_KEY), path)
        graph = _parse(header, read_widened if narrow else read, path, narrow=narrow)
        if narrow and graph.kind != "integer":
            _fail(f"a {graph.kind} graph", file=path, key="kind", allowed="integer")
        extra = sorted(set(npz.files) - used)
        if extra:
            raise AccelsimError(
                f"arrays not referenced by any node: {extra}", file=path, key=f"arrays.{extra[0]}"
            )
    validate_graph(graph, file=path)
    return graph
