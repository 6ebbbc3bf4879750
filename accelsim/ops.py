"""The op registry: one :class:`OpSpec` per op of the graph IR (docs/ops.md, docs/semantics.md).

An entry holds everything the IR knows about an op: how many inputs it takes, its attrs per
graph kind (with the defaults of attrs a file may omit), its parameters and their ranks, its
shape rule and its op-specific checks. The modules that give an op its other meanings attach
them to the same entry when they are imported:

* :mod:`accelsim.executor` — ``spec.run[kind]``, the reference implementation per graph kind;
* :mod:`accelsim.quantize` — ``spec.quantise``, how a float node becomes integer nodes;
* front ends keep their own source-op patterns and read ``spec.torch_modules`` for naming.

Adding an op is one entry in :data:`OP_SPECS` plus those functions (docs/architecture-
frontend.md walks through it). Check functions raise :class:`AccelsimError` with a key relative
to the node (``attrs.groups``, ``params.weight``); :func:`accelsim.ir.validate_graph` adds the
file and the ``nodes[i]`` prefix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import AccelsimError

if TYPE_CHECKING:
    from .ir import Graph, Node

Shape = tuple[int, ...]
AttrCheck = Callable[[Any], str | None]  # returns a description of what is allowed, or None
NodeCheck = Callable[["Graph", "Node"], None]  # raises AccelsimError (key relative to the node)

VARIADIC = -1  # n_inputs of an op taking one or more inputs
OVERFLOWS = ("wrap", "saturate")
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
SHIFT_RANGE = (0, 62)
MULTIPLIER_LIMIT = 1 << 31  # multipliers lie in [0, 2**31)
# The one allowed range [lo, hi] of each quantisation setting: the YAML schema
# (accelsim.config.QuantizationConfig), the quantiser (accelsim.quantize) and the attr checks
# below (w_bits, acc_bits) all read it from here.
QUANTIZATION_RANGES: dict[str, tuple[int, int]] = {
    "weight_bits": (2, 8),
    "activation_bits": (2, 8),
    "acc_bits": (4, 32),  # |acc| <= 2**31 keeps acc * multiplier inside int64
    "reserved_msbs": (0, 6),  # and < activation_bits - 1: one magnitude bit is left
}
W_BITS_RANGE = QUANTIZATION_RANGES["weight_bits"]
ACC_BITS_RANGE = QUANTIZATION_RANGES["acc_bits"]


# ---- attr value checks ---------------------------------------------------------------------


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and not (
        isinstance(v, float) and math.isnan(v)
    )


def _int_in(lo: int, hi: int | None = None) -> AttrCheck:
    def check(v: Any) -> str | None:
        ok = is_int(v) and v >= lo and (hi is None or v <= hi)
        return (
            None
            if ok
            else (f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}")
        )

    return check


def _any_int(v: Any) -> str | None:
    return None if is_int(v) else "an integer"


def _number(v: Any) -> str | None:
    return None if is_number(v) else "a number (inf allowed, not NaN)"


def _pair(lo: int) -> AttrCheck:
    def check(v: Any) -> str | None:
        ok = isinstance(v, list) and len(v) == 2 and all(is_int(x) and x >= lo for x in v)
        return None if ok else f"a list of two integers >= {lo}"

    return check


def _choice(values: Sequence[str]) -> AttrCheck:
    def check(v: Any) -> str | None:
        return None if v in values else "one of " + ", ".join(values)

    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _int_list(v: Any) -> str | None:
    ok = isinstance(v, list) and bool(v) and all(is_int(i) and i >= 0 for i in v)
    return None if ok else "a non-empty list of integers >= 0"


GEMM_INT_ATTRS: dict[str, AttrCheck] = {
    "acc_bits": _int_in(*ACC_BITS_RANGE),
    "overflow": _choice(OVERFLOWS),
    "w_bits": _int_in(*W_BITS_RANGE),
    "out_lo": _any_int,
    "out_hi": _any_int,
    "out_zero_point": _any_int,
}
CONV_ATTRS: dict[str, AttrCheck] = {
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
REQUANT_ATTRS: dict[str, AttrCheck] = {
    "shift": _int_in(*SHIFT_RANGE),
    "out_lo": _any_int,
    "out_hi": _any_int,
    "out_zero_point": _any_int,
}
_ACTIVATION_ATTRS: dict[str, AttrCheck] = {"function": _choice(ACTIVATIONS), "alpha": _number}


# ---- geometry helpers (shared with the executor and the simulator) --------------------------


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
    return OP_SPECS[node.op].optional_attrs[name]


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


# ---- shape rules (input shapes without batch -> output shape) -------------------------------


def _need_rank(op: str, shapes: list[Shape], rank: int, what: str) -> Shape:
    if len(shapes[0]) != rank:
        raise AccelsimError(f"{op} needs a {what} input, got shape {shapes[0]}", key="inputs[0]")
    return shapes[0]


def _conv2d_shape(node: Node, shapes: list[Shape]) -> Shape:
    c, h, w = _need_rank(node.op, shapes, 3, "(C, H, W)")
    n_out, c_group, kh, kw = (int(s) for s in node.params["weight"].shape)
    groups = int(node.attrs["groups"])
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
    (sh, sw), (ph, pw, eh, ew) = node.attrs["stride"], conv_padding(node)
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


def _linear_shape(node: Node, shapes: list[Shape]) -> Shape:
    (k,) = _need_rank(node.op, shapes, 1, "(features,)")
    n_out, k_w = (int(s) for s in node.params["weight"].shape)
    if k_w != k:
        raise AccelsimError(
            f"weight shape {node.params['weight'].shape} needs {k} input features",
            key="params.weight",
        )
    return (n_out,)


def _pool_shape(node: Node, shapes: list[Shape]) -> Shape:
    c, h, w = _need_rank(node.op, shapes, 3, "(C, H, W)")
    (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
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


def _global_pool_shape(node: Node, shapes: list[Shape]) -> Shape:
    c, _, _ = _need_rank(node.op, shapes, 3, "(C, H, W)")
    return (c, 1, 1)


def _add_shape(node: Node, shapes: list[Shape]) -> Shape:
    if shapes[0] != shapes[1]:
        raise AccelsimError(f"add of shapes {shapes[0]} and {shapes[1]}", key="inputs")
    return shapes[0]


def _same_shape(node: Node, shapes: list[Shape]) -> Shape:
    return shapes[0]


def _flatten_shape(node: Node, shapes: list[Shape]) -> Shape:
    return (math.prod(shapes[0]),)


def _adaptive_pool_shape(node: Node, shapes: list[Shape]) -> Shape:
    c, _, _ = _need_rank(node.op, shapes, 3, "(C, H, W)")
    return (c, *(int(v) for v in node.attrs["output_size"]))


def _upsample_shape(node: Node, shapes: list[Shape]) -> Shape:
    c, h, w = _need_rank(node.op, shapes, 3, "(C, H, W)")
    sh, sw = node.attrs["scale"]
    return (c, h * sh, w * sw)


def _select_channels_shape(node: Node, shapes: list[Shape]) -> Shape:
    c, *rest = shapes[0]
    channels = node.attrs["channels"]
    if not channels or min(channels) < 0 or max(channels) >= c:
        raise AccelsimError(
            f"channels {channels} of an input with {c} channels",
            key="attrs.channels",
            allowed=f"a non-empty list in [0, {c})",
        )
    return (len(channels), *rest)


def _concat_shape(node: Node, shapes: list[Shape]) -> Shape:
    rest = shapes[0][1:]
    for j, shape in enumerate(shapes):
        if len(shape) < 1 or shape[1:] != rest:
            raise AccelsimError(
                f"concat of shapes {shapes}: all but the channel axis must agree",
                key=f"inputs[{j}]",
            )
    return (sum(shape[0] for shape in shapes), *rest)


def _mul_shape(node: Node, shapes: list[Shape]) -> Shape:
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
        raise AccelsimError(f"mul of shapes {a} and {b} does not broadcast", key="inputs") from None


# ---- op-specific checks ------------------------------------------------------------------------


def within(node: Node, name: str, lo: int, hi: int, why: str) -> None:
    """Every value of parameter ``name`` lies in [lo, hi]."""
    v = node.params[name]
    if v.size and (int(v.min()) < lo or int(v.max()) > hi):
        raise AccelsimError(
            f"values in [{int(v.min())}, {int(v.max())}] ({why})",
            key=f"params.{name}",
            allowed=f"[{lo}, {hi}]",
        )


def _per_output_channel(graph: Graph, node: Node) -> None:
    """Both kinds: every rank-1 parameter of a layer has one value per output channel."""
    n_out = node.params["weight"].shape[0]
    for name, rank in OP_SPECS[node.op].rules(graph.kind, node).params.items():
        if rank == 1 and node.params[name].shape != (n_out,):
            raise AccelsimError(
                f"shape {node.params[name].shape}",
                key=f"params.{name}",
                allowed=f"({n_out},): one per output channel",
            )


def _float_clamp_bounds(graph: Graph, node: Node) -> None:
    if graph.kind == "float" and node.attrs["lo"] > node.attrs["hi"]:
        raise AccelsimError("lo > hi", key="attrs.lo", allowed="lo <= hi")


def _gemm_values(graph: Graph, node: Node) -> None:
    wb, ab = node.attrs["w_bits"], node.attrs["acc_bits"]
    within(node, "weight", -(1 << (wb - 1)), (1 << (wb - 1)) - 1, f"signed w_bits={wb}")
    within(node, "bias", -(1 << (ab - 1)), (1 << (ab - 1)) - 1, f"accumulator acc_bits={ab}")
    within(node, "multiplier", 0, MULTIPLIER_LIMIT - 1, "31-bit multiplier")
    within(node, "shift", *SHIFT_RANGE, "right shift")


def _multiplier_values(graph: Graph, node: Node) -> None:
    """Requantising vector ops: every multiplier parameter is a 31-bit unsigned integer."""
    if requantises(node):
        for name in ("multiplier", "multiplier_a", "multiplier_b", "multipliers"):
            if name in node.params:
                within(node, name, 0, MULTIPLIER_LIMIT - 1, "31-bit multiplier")


def _concat_multipliers(graph: Graph, node: Node) -> None:
    if node.params["multipliers"].shape != (len(node.inputs),):
        raise AccelsimError(
            f"shape {node.params['multipliers'].shape}",
            key="params.multipliers",
            allowed=f"({len(node.inputs)},): one per input",
        )


def _activation_table(graph: Graph, node: Node) -> None:
    x = graph.tensors[node.inputs[0]]
    size = 1 << int(x.bits)
    if x.bits > LUT_INPUT_BITS_MAX or node.params["table"].shape != (size,):
        raise AccelsimError(
            f"table of shape {node.params['table'].shape} for a {x.bits}-bit input",
            key="params.table",
            allowed=f"({size},): one entry per input code (input bits <= {LUT_INPUT_BITS_MAX})",
        )
    within(node, "table", *graph.tensors[node.output].value_range(), "output tensor's range")


def _mul_input_bits(graph: Graph, node: Node) -> None:
    for j, name in enumerate(node.inputs):
        if graph.tensors[name].bits > MUL_INPUT_BITS_MAX:
            raise AccelsimError(
                f"mul input {name!r} has {graph.tensors[name].bits} bits",
                key=f"inputs[{j}]",
                allowed=f"<= {MUL_INPUT_BITS_MAX} bits",
            )


def _integer_clamp_bounds(graph: Graph, node: Node) -> None:
    out = graph.tensors[node.output]
    lo_out, hi_out = out.value_range()
    lo, hi = node.attrs["lo"], node.attrs["hi"]
    if not lo_out <= lo <= hi <= hi_out:
        raise AccelsimError(
            f"[lo, hi] = [{lo}, {hi}] does not fit output tensor {out.name!r}",
            key="attrs.lo",
            allowed=f"lo <= hi within [{lo_out}, {hi_out}]",
        )


def requantised_output(graph: Graph, node: Node) -> None:
    """A requantising integer node's [out_lo, out_hi] and zero point fit its output tensor."""
    a, out = node.attrs, graph.tensors[node.output]
    lo_out, hi_out = out.value_range()
    lo, hi = a["out_lo"], a["out_hi"]
    if not lo_out <= lo <= hi <= hi_out:
        raise AccelsimError(
            f"[out_lo, out_hi] = [{lo}, {hi}] does not fit output tensor {out.name!r}",
            key="attrs.out_lo",
            allowed=f"out_lo <= out_hi within [{lo_out}, {hi_out}]",
        )
    if a["out_zero_point"] != out.zero_point:
        raise AccelsimError(
            f"out_zero_point {a['out_zero_point']} differs from tensor {out.name!r}'s "
            f"zero_point {out.zero_point}",
            key="attrs.out_zero_point",
            allowed=str(out.zero_point),
        )


def preserved_values(graph: Graph, node: Node) -> None:
    """A value-preserving integer node keeps its input's meaning and holds its range."""
    x, out = graph.tensors[node.inputs[0]], graph.tensors[node.output]
    lo_in, hi_in = x.value_range()
    lo_out, hi_out = out.value_range()
    same_meaning = math.isclose(x.scale, out.scale, rel_tol=1e-9) and (
        x.zero_point == out.zero_point
    )
    fits = node.op == "clamp" or lo_out <= lo_in <= hi_in <= hi_out
    if not (same_meaning and fits):
        raise AccelsimError(
            f"{node.op} output tensor {out.name!r} must keep the scale/zero point of "
            f"{x.name!r} and hold its range [{lo_in}, {hi_in}]",
            key="output",
        )


# ---- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpRules:
    """The attrs (name -> check) and parameters (name -> rank) of one kind or form of an op."""

    attrs: dict[str, AttrCheck] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)


@dataclass
class OpSpec:
    """Everything about one op; see the module docstring for who fills ``run`` and
    ``quantise``."""

    name: str
    shape: Callable[[Node, list[Shape]], Shape]
    integer: OpRules
    float: OpRules | None  # None: the op exists in integer graphs only
    n_inputs: int = 1  # or VARIADIC
    optional_attrs: dict[str, Any] = field(default_factory=dict)  # omitted attr -> its meaning
    layer: bool = False  # a conv2d/linear the PE array computes (GEMM); layers requantise too
    # integer vector nodes: does this one requantise (multiplier/shift/out_lo/out_hi)?
    requantises: Callable[[Node], bool] = lambda node: False
    # integer nodes that do not requantise: do they keep their input's scale and range?
    value_preserving: bool = False
    # another set of integer rules for the nodes ``requantises`` selects (a second form)
    requantising_form: OpRules | None = None
    checks: tuple[NodeCheck, ...] = ()  # both kinds, before the shape rule
    integer_checks: tuple[NodeCheck, ...] = ()  # integer graphs, after the shape rule
    torch_modules: tuple[str, ...] = ()  # nn.Module classes whose op this is (export naming)
    run: dict[str, Callable] = field(default_factory=dict)  # kind -> executor (accelsim.executor)
    quantise: Callable | None = None  # float node -> integer nodes (accelsim.quantize)
    fuses_clamp: bool = False  # the quantiser folds a clamp that alone reads it into out_lo/hi

    def kinds(self) -> tuple[str, ...]:
        return ("integer", "float") if self.float is not None else ("integer",)

    def rules(self, kind: str, node: Node) -> OpRules:
        """The attr and param rules ``node`` must follow in a ``kind`` graph."""
        if kind == "float":
            assert self.float is not None
            return self.float
        if self.requantising_form is not None and self.requantises(node):
            return self.requantising_form
        return self.integer

    def inputs_ok(self, count: int) -> bool:
        return count >= 1 if self.n_inputs == VARIADIC else count == self.n_inputs

    def inputs_text(self) -> str:
        return "one or more inputs" if self.n_inputs == VARIADIC else f"{self.n_inputs} input(s)"


def _always(node: Node) -> bool:
    return True


def _has_multiplier(node: Node) -> bool:
    return "multiplier" in node.params


OP_SPECS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec(
            "conv2d",
            _conv2d_shape,
            integer=OpRules(
                {**CONV_ATTRS, **GEMM_INT_ATTRS},
                {"weight": 4, "bias": 1, "multiplier": 1, "shift": 1},
            ),
            float=OpRules(dict(CONV_ATTRS), {"weight": 4, "bias": 1}),
            optional_attrs={"dilation": [1, 1], "padding_end": None},  # None: = padding
            layer=True,
            checks=(_per_output_channel,),
            integer_checks=(_gemm_values,),
            torch_modules=("Conv2d",),
        ),
        OpSpec(
            "linear",
            _linear_shape,
            integer=OpRules(
                dict(GEMM_INT_ATTRS), {"weight": 2, "bias": 1, "multiplier": 1, "shift": 1}
            ),
            float=OpRules({}, {"weight": 2, "bias": 1}),
            layer=True,
            checks=(_per_output_channel,),
            integer_checks=(_gemm_values,),
            torch_modules=("Linear",),
        ),
        OpSpec(
            "maxpool2d",
            _pool_shape,
            integer=OpRules(dict(_MAXPOOL_ATTRS)),
            float=OpRules(dict(_MAXPOOL_ATTRS)),
            optional_attrs={"ceil_mode": False},
            value_preserving=True,
            torch_modules=("MaxPool2d",),
        ),
        OpSpec(
            "avgpool2d",
            _pool_shape,
            integer=OpRules(dict(_AVGPOOL_ATTRS)),
            float=OpRules(dict(_AVGPOOL_ATTRS)),
            optional_attrs={"padding": [0, 0], "ceil_mode": False, "count_include_pad": True},
            value_preserving=True,
            torch_modules=("AvgPool2d", "AdaptiveAvgPool2d"),
        ),
        OpSpec(
            # two integer forms: without params it keeps its input's scale (the mean rounded
            # half up); with a ``multiplier`` it requantises the window sum to its own output
            # scale (docs/semantics.md)
            "global_avgpool",
            _global_pool_shape,
            integer=OpRules(),
            float=OpRules(),
            requantises=_has_multiplier,
            value_preserving=True,
            requantising_form=OpRules(dict(REQUANT_ATTRS), {"multiplier": 0}),
            integer_checks=(_multiplier_values,),
            torch_modules=("AdaptiveAvgPool2d", "AvgPool2d"),
        ),
        OpSpec(
            "add",
            _add_shape,
            integer=OpRules(dict(REQUANT_ATTRS), {"multiplier_a": 0, "multiplier_b": 0}),
            float=OpRules(),
            n_inputs=2,
            requantises=_always,
            integer_checks=(_multiplier_values,),
        ),
        OpSpec(
            "clamp",
            _same_shape,
            integer=OpRules({"lo": _any_int, "hi": _any_int}),
            float=OpRules({"lo": _number, "hi": _number}),
            value_preserving=True,
            checks=(_float_clamp_bounds,),
            integer_checks=(_integer_clamp_bounds,),
            torch_modules=("ReLU", "ReLU6", "Hardtanh"),
        ),
        OpSpec(
            "flatten",
            _flatten_shape,
            integer=OpRules(),
            float=OpRules(),
            value_preserving=True,
            torch_modules=("Flatten",),
        ),
        OpSpec(
            "requantize",
            _same_shape,
            integer=OpRules(dict(REQUANT_ATTRS), {"multiplier": 0}),
            float=None,
            requantises=_always,
            integer_checks=(_multiplier_values,),
        ),
        # issue 13: the ops of the standard image classifiers (docs/semantics.md, docs/ops.md)
        OpSpec(
            "concat",
            _concat_shape,
            integer=OpRules(dict(REQUANT_ATTRS), {"multipliers": 1}),
            float=OpRules(),
            n_inputs=VARIADIC,
            requantises=_always,
            integer_checks=(_multiplier_values, _concat_multipliers),
        ),
        OpSpec(
            "mul",
            _mul_shape,
            integer=OpRules(dict(REQUANT_ATTRS), {"multiplier": 0}),
            float=OpRules(),
            n_inputs=2,
            requantises=_always,
            integer_checks=(_multiplier_values, _mul_input_bits),
        ),
        OpSpec(
            "activation",
            _same_shape,
            integer=OpRules(dict(_ACTIVATION_ATTRS), {"table": 1}),
            float=OpRules(dict(_ACTIVATION_ATTRS)),
            integer_checks=(_activation_table,),
        ),
        OpSpec(
            "select_channels",
            _select_channels_shape,
            integer=OpRules({"channels": _int_list}),
            float=OpRules({"channels": _int_list}),
            value_preserving=True,
        ),
        OpSpec(
            "upsample_nearest",
            _upsample_shape,
            integer=OpRules({"scale": _pair(1)}),
            float=OpRules({"scale": _pair(1)}),
            value_preserving=True,
        ),
        OpSpec(
            "adaptive_avgpool2d",
            _adaptive_pool_shape,
            integer=OpRules({"output_size": _pair(1)}),
            float=OpRules({"output_size": _pair(1)}),
            value_preserving=True,
        ),
    )
}

OPS = tuple(OP_SPECS)
GEMM_OPS = tuple(name for name, spec in OP_SPECS.items() if spec.layer)
OPS_BY_KIND = {
    kind: tuple(name for name, spec in OP_SPECS.items() if kind in spec.kinds())
    for kind in ("integer", "float")
}


def ops_of_kind(kind: str) -> tuple[str, ...]:
    """The ops a ``kind`` graph may use, read from the registry now (an entry added at run
    time, e.g. by a plug-in or a test, counts; :data:`OPS_BY_KIND` is the shipped set)."""
    return tuple(name for name, spec in OP_SPECS.items() if kind in spec.kinds())


def op_spec(op: str) -> OpSpec:
    """The registry entry of ``op`` (AccelsimError naming the known ops otherwise)."""
    spec = OP_SPECS.get(op)
    if spec is None:
        raise AccelsimError(f"unknown op {op!r}", key="op", allowed=OPS)
    return spec


def requantises(node: Node) -> bool:
    """Whether an integer vector node (not a layer) requantises its result (multiplier,
    shift, out_lo/out_hi). ``global_avgpool`` has two integer forms: without params it keeps
    its input's scale (the mean rounded half up); with a ``multiplier`` it requantises the
    window sum to its own output scale (docs/semantics.md)."""
    return OP_SPECS[node.op].requantises(node)


def implements(kind: str, *ops: str) -> Callable:
    """Decorator: the function is the ``kind`` graphs' executor of ``ops`` (``spec.run``)."""

    def attach(function: Callable) -> Callable:
        for op in ops:
            OP_SPECS[op].run[kind] = function
        return function

    return attach


def quantises(*ops: str, fuses_clamp: bool = False) -> Callable:
    """Decorator: the function turns float nodes of ``ops`` into integer nodes
    (``spec.quantise``); ``fuses_clamp``: it folds a clamp that alone reads its output."""

    def attach(function: Callable) -> Callable:
        for op in ops:
            OP_SPECS[op].quantise = function
            OP_SPECS[op].fuses_clamp = fuses_clamp
        return function

    return attach
