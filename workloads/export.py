"""PyTorch model -> accelsim float graph, via ``torch.export``.

:func:`export` captures the model with :func:`torch.export.export` (no ``fx.symbolic_trace``),
walks the exported graph's ATen ops in order and maps each one to an accelsim op:

======================================================  =============================================
ATen op                                                 accelsim
======================================================  =============================================
conv2d / convolution (stride, padding, 'same', dilation) ``conv2d`` (``padding_end`` when asymmetric)
constant_pad_nd (F.pad, zeros) read by a conv           that conv's padding
linear, addmm / mm with a constant weight               ``linear``
batch_norm / _native_batch_norm_legit_no_training       folded into the preceding conv2d/linear, else a
                                                        depthwise 1x1 ``conv2d`` (per-channel affine)
add/sub/mul/div by a constant (scalar or per channel)   folded like batch norm, else the same affine
relu, relu6, hardtanh, clamp (and in-place variants)    ``clamp`` (lo, hi; +-inf when unbounded)
sigmoid, hardsigmoid, silu, hardswish, tanh, gelu,      ``activation`` (integer graphs: a lookup table)
leaky_relu, elu, mish, softplus, prelu (one slope)
max_pool2d (with_indices; padding, ceil_mode)           ``maxpool2d``
avg_pool2d (padding, ceil_mode, count_include_pad)      ``avgpool2d``
adaptive_avg_pool2d(1), mean over H, W                  ``global_avgpool``
adaptive_avg_pool2d(k): k divides H, W / any other k    ``avgpool2d`` / ``adaptive_avgpool2d``
add (two activations)                                   ``add``
mul (two activations, size-1 axes broadcast)            ``mul``
cat along channels                                      ``concat``
chunk / split / slice of channels, channel shuffle      ``select_channels``
upsample_nearest2d by integer factors                   ``upsample_nearest``
flatten / view / reshape to (batch, features)           ``flatten``
dropout, clone, contiguous, detach, alias               nothing (identity at inference)
======================================================  =============================================

Operations on constants only (``t(weight)``, ...) are evaluated once at export. Anything else
raises one :class:`AccelsimError` listing every unsupported op, grouped by op and reason with a
count and the first modules it came from (``node.meta["nn_module_stack"]``); ops that
are refused on purpose (LayerNorm, attention, softmax, transposed convolution) say what is
missing. docs/ops.md is the user's table.

Calibration runs ``calibration_data`` through the exported program (torch, float32) and
records each accelsim tensor's min and max in ``TensorSpec.calib_min/calib_max``; the
quantiser derives its scales from them.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import operator
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.caches import cached_entry
from accelsim.errors import AccelsimError
from accelsim.ir import (
    GEMM_OPS,
    OP_SPECS,
    Graph,
    Node,
    TensorSpec,
    load_graph,
    pool_out,
    save_graph,
    validate_graph,
)
from accelsim.npzio import load_npz

EXPORT_VERSION = 2  # bump when the mapping changes: invalidates builtin_graph_cached files
# 2: issue 13 (new ops; float32 eps and clamp bounds; calibration before in-place ops)
TORCH_HINT = "install PyTorch (CPU build): pip install torch==2.13.0 (or `make` in the repo)"
CALIBRATION_SAMPLES_RANDOM = 8  # seeded normal samples for models without a data set
CALIBRATION_CHUNK = 256


def _torch():
    try:
        import torch
    except ImportError:
        raise AccelsimError(
            "exporting a PyTorch model needs torch, which is not installed", allowed=TORCH_HINT
        ) from None
    return torch


# ---- the walk over the exported graph ------------------------------------------------------


@dataclass(frozen=True)
class _Act:
    """An activation tensor of the accelsim graph (batch axis stripped)."""

    name: str


class _Unsupported:
    """Value of an op that could not be mapped; ops fed by it are not reported again."""


_UNSUPPORTED = _Unsupported()


def _module_of(fx_node) -> tuple[str, str]:
    """(path, class name) of the innermost nn.Module an fx node came from ('' for the root)."""
    stack = fx_node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, cls = list(stack.values())[-1]
    cls_name = cls if isinstance(cls, str) else getattr(cls, "__qualname__", str(cls))
    return str(path), cls_name.rsplit(".", 1)[-1]


def _op_name(target: Any) -> str:
    name = getattr(target, "__name__", None) or str(target)
    schema = getattr(target, "_schema", None)
    if schema is not None:
        overload = getattr(target, "_overloadname", "default")
        return f"aten.{schema.name.split('::')[-1]}.{overload}"
    return name


def _aten(target: Any) -> str:
    """'conv2d' for torch.ops.aten.conv2d.default (the overload packet's name)."""
    schema = getattr(target, "_schema", None)
    if schema is None:
        return getattr(target, "__name__", str(target))
    return schema.name.split("::")[-1]


_IDENTITY = {
    "dropout",
    "dropout_",
    "feature_dropout",
    "alpha_dropout",
    "clone",
    "contiguous",
    "detach",
    "detach_",
    "alias",
    "lift_fresh_copy",
}
_ASSERTS = {
    "_assert_tensor_metadata",
    "_assert_async",
    "_assert_scalar",
    "sym_constrain_range",
    "sym_constrain_range_for_size",
    "_functional_assert_async",
}
_CLAMPS = {
    "relu",
    "relu_",
    "relu6",
    "hardtanh",
    "hardtanh_",
    "clamp",
    "clamp_",
    "clamp_min",
    "clamp_max",
}
_GROUPED_OPS = {"view", "reshape", "_unsafe_view", "transpose", "permute"}
_SUPPORTED = (
    {
        "conv2d",
        "convolution",
        "linear",
        "addmm",
        "mm",
        "batch_norm",
        "_native_batch_norm_legit_no_training",
        "max_pool2d",
        "max_pool2d_with_indices",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "mean",
        "add",
        "add_",
        "flatten",
        "view",
        "reshape",
        "_unsafe_view",
        "getitem",
    }
    | _CLAMPS
    | _IDENTITY
)


SUPPORTED_SUMMARY = (
    "conv2d (stride, padding incl. 'same', dilation, groups), linear, batch_norm, relu/relu6/"
    "hardtanh/clamp, sigmoid/hardsigmoid/silu/hardswish/tanh/gelu/leaky_relu/elu/mish/softplus, "
    "prelu (one slope), max/avg "
    "pooling (padding, ceil_mode), adaptive_avg_pool2d, add, mul, cat, chunk/split/slice of "
    "channels, channel shuffle, nearest upsampling by integer factors, constant add/sub/mul/div "
    "(scalar or per channel), flatten (docs/ops.md)"
)
FIRST_PLACES = 3  # places named per group of one unsupported op


def unsupported_error(
    model: str, problems: list[tuple[str, str, str]], *, allowed: str
) -> AccelsimError:
    """The error listing a model's unsupported ops: one line per distinct (op, reason) with
    how often, the first places, and why."""
    groups: dict[tuple[str, str], list[str]] = {}
    for op, why, where in problems:
        groups.setdefault((op, why), []).append(where)
    head = (
        f"model {model!r} uses {len(problems)} unsupported operation(s) ({len(groups)} distinct):"
    )
    lines = []
    for (op, why), places in groups.items():
        unique = list(dict.fromkeys(places))
        named = ", ".join(unique[:FIRST_PLACES])
        more = f" and {len(unique) - FIRST_PLACES} more" if len(unique) > FIRST_PLACES else ""
        count = f" x{len(places)}" if len(places) > 1 else ""
        lines.append(f"{op}{count} in {named}{more}: {why}")
    return AccelsimError(head, details=lines, allowed=allowed)


_NORM_WHY = (
    "needs per-sample mean and variance (a division and a square root per sample); "
    "accelsim has no integer op for it yet"
)
_MATMUL_WHY = (
    "a matrix product of two activations (attention): the array's weights must be constants"
)
_SOFTMAX_WHY = "softmax needs an exponential and a per-sample division; not supported yet"
# ops refused with the reason (what accelsim would need)
_REFUSED_WHY = {
    "layer_norm": "LayerNorm " + _NORM_WHY,
    "native_layer_norm": "LayerNorm " + _NORM_WHY,
    "group_norm": "GroupNorm " + _NORM_WHY,
    "native_group_norm": "GroupNorm " + _NORM_WHY,
    "scaled_dot_product_attention": "attention multiplies two activations as matrices and "
    "needs a softmax; accelsim has neither yet",
    "_softmax": _SOFTMAX_WHY,
    "softmax": _SOFTMAX_WHY,
    "conv_transpose2d": "transposed convolution (ConvTranspose2d) is not supported: use "
    "nearest upsampling followed by a conv",
    "upsample_bilinear2d": "bilinear upsampling is not supported (nearest is)",
    "upsample_bicubic2d": "bicubic upsampling is not supported (nearest is)",
    "bmm": _MATMUL_WHY,
    "matmul": _MATMUL_WHY,
    "baddbmm": _MATMUL_WHY,
}


@dataclass(frozen=True)
class _Grouped:
    """A (C, H, W) activation viewed as (groups, C/groups, H, W), maybe with the first two
    axes swapped: the middle of a channel shuffle (view, transpose(1, 2), view back)."""

    act: _Act
    groups: int
    swapped: bool = False


@dataclass(frozen=True)
class _Padded:
    """A feature map with zero padding (top, left, bottom, right) still to apply: folded into
    the conv2d that reads it (anything else reading it is refused)."""

    act: _Act
    pads: tuple[int, int, int, int]


class _Pieces:
    """The outputs of chunk/split along channels; a piece becomes a node when first read."""

    def __init__(self, act: _Act, bounds: list[tuple[int, int]]) -> None:
        self.act, self.bounds = act, bounds
        self.taken: dict[int, _Act] = {}


def _base_op(op: str) -> str:
    """The functional op of an in-place variant (``relu6_`` -> ``relu6``, ``add_`` -> ``add``)."""
    return op[:-1] if op.endswith("_") and not op.endswith("__") and len(op) > 1 else op


class _Walker:
    """Builds the accelsim float graph from an ExportedProgram, one fx node at a time."""

    def __init__(self, torch, program, name: str) -> None:
        self.torch = torch
        self.program = program
        self.graph_name = name
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorSpec] = {}
        self.env: dict[Any, Any] = {}
        self.probe: dict[str, Any] = {}  # accelsim tensor -> fx node whose value it is
        self.producer: dict[str, Node] = {}
        self.problems: list[str] = []
        self.used_names: set[str] = set()
        self.input_node = None

    # -- helpers
    def constants(self) -> dict[str, Any]:
        """Placeholder name -> tensor for parameters, buffers and lifted constants."""
        program = self.program
        values: dict[str, Any] = {}
        user_inputs = []
        for spec in program.graph_signature.input_specs:
            kind = spec.kind.name
            arg_name = spec.arg.name
            if kind == "USER_INPUT":
                user_inputs.append(arg_name)
            elif kind in ("PARAMETER", "BUFFER"):
                values[arg_name] = (
                    program.state_dict[spec.target]
                    if spec.target in program.state_dict
                    else program.constants[spec.target]
                )
            elif kind in ("CONSTANT_TENSOR", "CUSTOM_OBJ"):
                values[arg_name] = program.constants[spec.target]
            else:
                raise AccelsimError(
                    f"exported program has an input of kind {kind}",
                    allowed="parameters, buffers, constants, one user input",
                )
        if len(user_inputs) != 1:
            raise AccelsimError(
                f"model takes {len(user_inputs)} tensor inputs", allowed="exactly one input tensor"
            )
        self.input_name = user_inputs[0]
        return values

    def unique(self, base: str) -> str:
        base = base.replace("/", ".") or "node"
        name, i = base, 1
        while name in self.used_names:
            name = f"{base}_{i}"
            i += 1
        self.used_names.add(name)
        return name

    def node_name(self, fx_node, op: str) -> str:
        path, cls = _module_of(fx_node)
        # a node is named after the module whose own op it is (a ReLU module's relu -> its
        # path): the module classes are the op's ``torch_modules`` in the op registry
        if path and cls in OP_SPECS[op].torch_modules and path not in self.used_names:
            return self.unique(path)
        short = _aten(fx_node.target).rstrip("_") or fx_node.name
        return self.unique(f"{path}.{short}" if path else short)

    def shape(self, fx_node) -> tuple[int, ...]:
        val = fx_node.meta.get("val")
        if isinstance(val, (tuple, list)):  # max_pool2d_with_indices, batch norm: (out, ...)
            val = val[0]
        return tuple(int(s) for s in val.shape[1:])

    def emit(
        self,
        fx_node,
        op: str,
        inputs: list[_Act],
        attrs: dict,
        params: dict | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> _Act:
        name = self.node_name(fx_node, op)
        node = Node(op, name, [a.name for a in inputs], name, attrs, params or {})
        self.nodes.append(node)
        self.tensors[name] = TensorSpec(name, shape or self.shape(fx_node), None, True, 1.0)
        self.producer[name] = node
        self.probe[name] = fx_node
        return _Act(name)

    def problem(self, fx_node, why: str) -> _Unsupported:
        path, cls = _module_of(fx_node)
        where = f"{path!r} ({cls})" if path else "the model's forward"
        self.problems.append((_op_name(fx_node.target), why, where))
        return _UNSUPPORTED

    def numpy(self, tensor) -> np.ndarray:
        return tensor.detach().to(self.torch.float64).cpu().numpy()

    # -- the walk
    def run(self) -> Graph:
        torch = self.torch
        constants = self.constant_values = self.constants()
        for fx_node in self.program.graph.nodes:
            if fx_node.op == "placeholder":
                if fx_node.name == self.input_name:
                    self.input_node = fx_node
                    self.tensors["input"] = TensorSpec(
                        "input", self.shape(fx_node), None, True, 1.0
                    )
                    self.probe["input"] = fx_node
                    self.env[fx_node] = _Act("input")
                else:
                    self.env[fx_node] = constants[fx_node.name]
            elif fx_node.op == "call_function":
                self.env[fx_node] = self.call(fx_node)
            elif fx_node.op == "output":
                outputs = [
                    o for o in torch.utils._pytree.tree_leaves(fx_node.args[0]) if o is not None
                ]
                if len(outputs) != 1:
                    raise AccelsimError(
                        f"model returns {len(outputs)} tensors", allowed="exactly one output tensor"
                    )
                out = self.env[outputs[0]]
            else:
                self.problems.append(
                    (
                        f"fx node {fx_node.op} {fx_node.target}",
                        "not supported",
                        "the model's forward",
                    )
                )
        if self.problems:
            raise unsupported_error(self.graph_name, self.problems, allowed=SUPPORTED_SUMMARY)
        if not isinstance(out, _Act) or out.name == "input":
            raise AccelsimError("model output is not computed from its input by supported ops")
        graph = Graph("float", self.graph_name, "input", out.name, self.tensors, self.nodes, {})
        return graph

    def call(self, fx_node) -> Any:
        torch = self.torch
        target = fx_node.target
        args = torch.fx.node.map_arg(fx_node.args, lambda n: self.env[n])
        kwargs = torch.fx.node.map_arg(fx_node.kwargs, lambda n: self.env[n])
        leaves = torch.utils._pytree.tree_leaves((args, kwargs))
        has_act = any(isinstance(v, _Act) for v in leaves)
        if any(isinstance(v, _Unsupported) for v in leaves):
            op = _base_op(_aten(target)) if target is not operator.getitem else "getitem"
            supported = op in _SUPPORTED or hasattr(self, f"op_{op.strip('_')}")
            return _UNSUPPORTED if supported else self.problem(fx_node, self.why(op))
        has_act = has_act or any(isinstance(v, (_Grouped, _Pieces, _Padded)) for v in leaves)
        if target is operator.getitem:
            if isinstance(args[0], _Pieces):
                return self.take_piece(fx_node, args[0], args[1])
            return args[0][args[1]]
        op = _base_op(_aten(target))
        if op in _ASSERTS:
            return None
        if not has_act:  # constants only: evaluate once, now
            with torch.no_grad():
                return target(*args, **kwargs)
        handler = getattr(self, f"op_{op.strip('_')}", None)
        if op in _IDENTITY:
            return args[0]
        if any(isinstance(v, _Grouped) for v in leaves) and op not in _GROUPED_OPS:
            return self.problem(
                fx_node,
                "a (groups, C/groups, H, W) view is supported only as "
                "a channel shuffle (view, transpose(1, 2), view back)",
            )
        if any(isinstance(v, _Padded) for v in leaves) and op not in ("conv2d", "convolution"):
            return self.problem(fx_node, "reads a zero-padded map (F.pad): only a conv may")
        if op in _CLAMPS:
            return self.op_clamp_family(fx_node, op, args, kwargs)
        if handler is None:
            return self.problem(fx_node, self.why(op))
        return handler(fx_node, *args, **kwargs)

    @staticmethod
    def why(op: str) -> str:
        return _REFUSED_WHY.get(op, "not supported")

    # -- ops
    def _const(self, fx_node, value, what: str):
        if isinstance(value, _Act):
            self.problem(fx_node, f"{what} must be a constant (a parameter), not an activation")
            return None
        return value

    def op_conv2d(self, fx_node, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return self._conv(fx_node, x, weight, bias, stride, padding, dilation, False, groups)

    def op_convolution(
        self,
        fx_node,
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        transposed,
        output_padding,
        groups,
    ):
        return self._conv(fx_node, x, weight, bias, stride, padding, dilation, transposed, groups)

    def _conv(self, fx_node, x, weight, bias, stride, padding, dilation, transposed, groups):
        def pair(v):
            v = [int(i) for i in v] if isinstance(v, (list, tuple)) else [int(v)]
            return v * 2 if len(v) == 1 else v

        if transposed:
            return self.problem(
                fx_node,
                "transposed convolution (ConvTranspose2d) is not "
                "supported: use nearest upsampling followed by a conv",
            )
        weight = self._const(fx_node, weight, "conv weight")
        if weight is None or not isinstance(x, (_Act, _Padded)) or weight.dim() != 4:
            return self.problem(fx_node, "only 2-d convolution of an activation")
        dilation = pair(dilation)
        end = None
        if isinstance(padding, str):
            if padding == "valid":
                padding = [0, 0]
            elif padding == "same":  # PyTorch: total d*(k-1), the odd one at the end
                totals = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
                padding = [t // 2 for t in totals]
                end = [t - t // 2 for t in totals]
            else:
                return self.problem(fx_node, f"padding={padding!r}")
        padding = pair(padding)
        end = padding if end is None else end
        if isinstance(x, _Padded):  # F.pad zeros in front of the conv: its padding
            top, left, bottom, right = x.pads
            padding = [padding[0] + top, padding[1] + left]
            end = [end[0] + bottom, end[1] + right]
            x = x.act
        w = self.numpy(weight)
        b = np.zeros(w.shape[0]) if bias is None else self.numpy(bias)
        attrs = {"stride": pair(stride), "padding": padding, "groups": int(groups)}
        if end != padding:
            attrs["padding_end"] = end
        if dilation != [1, 1]:
            attrs["dilation"] = dilation
        return self.emit(fx_node, "conv2d", [x], attrs, _float_params(w, b))

    def op_constant_pad_nd(self, fx_node, x, pad, value=0.0):
        """Zero padding of H and W (``F.pad``): becomes the padding of the conv that reads it."""
        pad = [int(p) for p in pad] + [0] * (4 - len(pad))
        if not isinstance(x, _Act) or value != 0 or len(pad) != 4 or min(pad) < 0:
            return self.problem(fx_node, "F.pad only with zeros, of H and W, before a conv")
        if len(self.tensors[x.name].shape) != 3 or len(fx_node.users) != 1:
            return self.problem(fx_node, "F.pad only of a feature map read by one conv")
        left, right, top, bottom = pad
        return _Padded(x, (top, left, bottom, right))

    op_pad = op_constant_pad_nd

    def op_linear(self, fx_node, x, weight, bias=None):
        weight = self._const(fx_node, weight, "linear weight")
        if weight is None or not isinstance(x, _Act) or len(self.tensors[x.name].shape) != 1:
            return self.problem(fx_node, "linear needs a (batch, features) activation input")
        w = self.numpy(weight)
        b = np.zeros(w.shape[0]) if bias is None else self.numpy(bias)
        return self.emit(fx_node, "linear", [x], {}, _float_params(w, b))

    def op_addmm(self, fx_node, bias, x, weight_t, beta=1, alpha=1):
        if beta != 1 or alpha != 1 or isinstance(bias, _Act):
            return self.problem(fx_node, "addmm only as a linear layer (bias + x @ W.T)")
        weight_t = self._const(fx_node, weight_t, "matmul weight")
        if weight_t is None:
            return _UNSUPPORTED
        return self.op_linear(fx_node, x, weight_t.t(), bias.expand(weight_t.shape[1]))

    def op_mm(self, fx_node, x, weight_t):
        weight_t = self._const(fx_node, weight_t, "matmul weight")
        if weight_t is None:
            return _UNSUPPORTED
        return self.op_linear(fx_node, x, weight_t.t(), None)

    def _affine(self, fx_node, x: _Act, fx_in, scale, shift) -> Any:
        """``x * scale + shift`` with constant scale/shift (scalars or one per channel):
        folded into the conv2d/linear that produces ``x`` when this op alone reads it,
        else a depthwise 1x1 conv2d (feature maps) or a diagonal linear (vectors)."""
        shape = self.tensors[x.name].shape
        channels = shape[0]
        vectors = []
        for value in (scale, shift):
            v = np.asarray(
                self.numpy(value) if self.torch.is_tensor(value) else value, dtype=np.float64
            )
            while v.ndim > len(shape) and v.shape[0] == 1:
                v = v[0]  # a leading batch axis of size 1
            per_channel = v.reshape(-1) if v.size in (1, channels) else None
            if v.ndim == len(shape) and any(d != 1 for d in v.shape[1:]):
                per_channel = None  # varies over H or W
            if v.ndim not in (0, len(shape)) and not (v.ndim == 1 and len(shape) == 1):
                per_channel = None  # a 1-d constant broadcasts over W, not channels
            if per_channel is None:
                return self.problem(
                    fx_node,
                    f"constant of shape {tuple(v.shape)}: only scalars or one value per channel",
                )
            vectors.append(np.broadcast_to(per_channel, (channels,)).astype(np.float64))
        scale, shift = vectors
        producer = self.producer.get(x.name)
        alone = fx_in is not None and len(fx_in.users) == 1
        if producer is not None and producer.op in GEMM_OPS and alone:
            w = producer.params["weight"].astype(np.float64)
            b = producer.params["bias"].astype(np.float64)
            producer.params.update(
                _float_params(w * scale.reshape(-1, *[1] * (w.ndim - 1)), b * scale + shift)
            )
            self.probe[x.name] = fx_node  # the layer's tensor now holds the affine's value
            return x
        if len(shape) == 3:
            attrs = {"stride": [1, 1], "padding": [0, 0], "groups": channels}
            return self.emit(
                fx_node,
                "conv2d",
                [x],
                attrs,
                _float_params(scale.reshape(channels, 1, 1, 1), shift),
            )
        if len(shape) == 1:
            return self.emit(fx_node, "linear", [x], {}, _float_params(np.diag(scale), shift))
        return self.problem(fx_node, f"constant arithmetic on a tensor of rank {len(shape)}")

    def _batch_norm(self, fx_node, x, gamma, beta, mean, var, eps):
        if not isinstance(x, _Act):
            return self.problem(fx_node, "batch_norm of an activation")
        mean, var = self.numpy(mean), self.numpy(var)
        gamma = np.ones_like(mean) if gamma is None else self.numpy(gamma)
        beta = np.zeros_like(mean) if beta is None else self.numpy(beta)
        # eps as the float32 it is in the kernel (and in an ONNX file: both paths agree)
        factor = gamma / np.sqrt(var + float(np.float32(eps)))
        axes = (-1,) + (1,) * (len(self.tensors[x.name].shape) - 1)  # one value per channel
        # directly after a conv/linear: folded into it; elsewhere a per-channel affine
        return self._affine(
            fx_node, x, fx_node.args[0], factor.reshape(axes), (beta - mean * factor).reshape(axes)
        )

    def op_batch_norm(
        self, fx_node, x, gamma, beta, mean, var, training, momentum, eps, cudnn_enabled=False
    ):
        if training:
            return self.problem(fx_node, "batch_norm in training mode: call model.eval()")
        return self._batch_norm(fx_node, x, gamma, beta, mean, var, eps)

    def op_native_batch_norm_legit_no_training(
        self, fx_node, x, gamma, beta, mean, var, momentum, eps
    ):
        out = self._batch_norm(fx_node, x, gamma, beta, mean, var, eps)
        return (out, None, None)

    def op_clamp_family(self, fx_node, op: str, args, kwargs) -> Any:
        x = args[0]
        values = list(args[1:])
        if op.startswith("relu6"):
            lo, hi = 0.0, 6.0
        elif op.startswith("relu"):
            lo, hi = 0.0, math.inf
        elif op.startswith("hardtanh"):
            lo = values[0] if len(values) > 0 else kwargs.get("min_val", -1.0)
            hi = values[1] if len(values) > 1 else kwargs.get("max_val", 1.0)
        elif op == "clamp_min":
            lo, hi = (values[0] if values else kwargs.get("min")), math.inf
        elif op == "clamp_max":
            lo, hi = -math.inf, (values[0] if values else kwargs.get("max"))
        else:
            lo = values[0] if len(values) > 0 else kwargs.get("min")
            hi = values[1] if len(values) > 1 else kwargs.get("max")
        if any(not (v is None or isinstance(v, (int, float))) for v in (lo, hi)):
            return self.problem(fx_node, "clamp bounds must be numbers")
        # bounds as the float32 they are applied in (and stored in an ONNX file)
        lo = -math.inf if lo is None else float(np.float32(lo))
        hi = math.inf if hi is None else float(np.float32(hi))
        return self.emit(fx_node, "clamp", [x], {"lo": lo, "hi": hi})

    def _pool_pairs(self, kernel, stride, padding):
        def pair(v):
            v = [int(i) for i in v] if isinstance(v, (list, tuple)) else [int(v)]
            return v * 2 if len(v) == 1 else v

        kernel = pair(kernel)
        stride = pair(stride) if stride not in (None, [], ()) else list(kernel)
        return kernel, stride, pair(padding)

    def _check_window(self, fx_node, x: _Act, kernel, stride, padding, ceil_mode) -> bool:
        _, h, w = self.tensors[x.name].shape
        expected = tuple(
            pool_out(s, k, st, p, bool(ceil_mode))
            for s, k, st, p in zip((h, w), kernel, stride, padding)
        )
        return expected == self.shape(fx_node)[1:]

    def op_max_pool2d(self, fx_node, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
        kernel, stride, padding = self._pool_pairs(kernel, stride, padding)
        dilation = self._pool_pairs(dilation, None, 0)[0]
        if any(d != 1 for d in dilation):
            return self.problem(fx_node, f"max_pool2d dilation {dilation}: only 1")
        if any(p > k // 2 for p, k in zip(padding, kernel)):
            return self.problem(fx_node, f"max_pool2d padding {padding} > kernel // 2")
        if not self._check_window(fx_node, x, kernel, stride, padding, ceil_mode):
            return self.problem(fx_node, "output size differs from accelsim's pooling rule")
        attrs = {"kernel": kernel, "stride": stride, "padding": padding}
        if ceil_mode:
            attrs["ceil_mode"] = True
        return self.emit(fx_node, "maxpool2d", [x], attrs)

    def op_max_pool2d_with_indices(self, fx_node, *args, **kwargs):
        return (self.op_max_pool2d(fx_node, *args, **kwargs), None)

    def op_avg_pool2d(
        self,
        fx_node,
        x,
        kernel,
        stride=(),
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        kernel, stride, padding = self._pool_pairs(kernel, stride, padding)
        if divisor_override is not None:
            return self.problem(fx_node, "avg_pool2d with divisor_override")
        if any(p > k // 2 for p, k in zip(padding, kernel)):
            return self.problem(fx_node, f"avg_pool2d padding {padding} > kernel // 2")
        if not self._check_window(fx_node, x, kernel, stride, padding, ceil_mode):
            return self.problem(fx_node, "output size differs from accelsim's pooling rule")
        attrs = {"kernel": kernel, "stride": stride}
        if any(padding) or ceil_mode or not count_include_pad:
            attrs.update(
                {
                    "padding": padding,
                    "ceil_mode": bool(ceil_mode),
                    "count_include_pad": bool(count_include_pad),
                }
            )
        return self.emit(fx_node, "avgpool2d", [x], attrs)

    def op_adaptive_avg_pool2d(self, fx_node, x, output_size):
        _, h, w = self.tensors[x.name].shape
        size = list(output_size) if isinstance(output_size, (list, tuple)) else [output_size]
        size = (size * 2)[:2]
        oh, ow = (int(full if v is None else v) for v, full in zip(size, (h, w)))
        if (oh, ow) == (1, 1):
            return self.emit(fx_node, "global_avgpool", [x], {})
        if h % oh == 0 and w % ow == 0:
            kernel = [h // oh, w // ow]
            return self.emit(fx_node, "avgpool2d", [x], {"kernel": kernel, "stride": kernel})
        return self.emit(fx_node, "adaptive_avgpool2d", [x], {"output_size": [oh, ow]})

    def op_adaptive_avg_pool2d_default(self, fx_node, x, output_size):
        return self.op_adaptive_avg_pool2d(fx_node, x, output_size)

    def op_mean(self, fx_node, x, dims=None, keepdim=False, dtype=None):
        if not isinstance(x, _Act):
            return self.problem(fx_node, "mean of an activation")
        rank = len(self.tensors[x.name].shape) + 1
        if rank != 4 or dims is None or sorted(d % 4 for d in dims) != [2, 3]:
            return self.problem(fx_node, "mean only over H and W of an (N, C, H, W) tensor")
        c = self.tensors[x.name].shape[0]
        pooled = self.emit(fx_node, "global_avgpool", [x], {}, shape=(c, 1, 1))
        if keepdim:
            return pooled
        return self.emit(fx_node, "flatten", [pooled], {}, shape=(c,))

    # -- element-wise arithmetic
    def _act_and_const(self, fx_node, a, b):
        """(activation, its fx node, constant) of a binary op with one constant operand."""
        if isinstance(a, _Act) and not isinstance(b, _Act):
            return a, fx_node.args[0], b
        if isinstance(b, _Act) and not isinstance(a, _Act):
            return b, fx_node.args[1], a
        return None, None, None

    def op_add(self, fx_node, a, b, alpha=1):
        if isinstance(a, _Act) and isinstance(b, _Act):
            if alpha != 1:
                return self.problem(fx_node, "add of two activations with alpha != 1")
            if self.tensors[a.name].shape != self.tensors[b.name].shape:
                return self.problem(fx_node, "add of two activations of different shapes")
            return self.emit(fx_node, "add", [a, b], {})
        x, fx_in, c = self._act_and_const(fx_node, a, b)
        if x is None:
            return self.problem(fx_node, "add of an activation")
        if x is a:  # x + alpha * c
            return self._affine(fx_node, x, fx_in, 1.0, c * alpha)
        return self._affine(fx_node, x, fx_in, float(alpha), c)  # c + alpha * x

    def op_sub(self, fx_node, a, b, alpha=1):
        x, fx_in, c = self._act_and_const(fx_node, a, b)
        if x is None:
            return self.problem(fx_node, "sub of two activations is not supported (add is)")
        if x is a:
            return self._affine(fx_node, x, fx_in, 1.0, -c * alpha)
        return self._affine(fx_node, x, fx_in, -float(alpha), c)  # c - alpha * x

    def op_rsub(self, fx_node, a, b, alpha=1):
        x, fx_in, c = self._act_and_const(fx_node, a, b)
        if x is not a:
            return self.problem(fx_node, "rsub of two activations")
        return self._affine(fx_node, x, fx_in, -float(alpha), c)  # b - alpha * a

    def op_mul(self, fx_node, a, b):
        if isinstance(a, _Act) and isinstance(b, _Act):
            sa, sb = self.tensors[a.name].shape, self.tensors[b.name].shape
            try:
                out = tuple(np.broadcast_shapes(sa, sb))
            except ValueError:
                out = None
            if len(sa) != len(sb) or out is None:
                return self.problem(fx_node, f"mul of shapes {sa} and {sb}")
            return self.emit(fx_node, "mul", [a, b], {})
        x, fx_in, c = self._act_and_const(fx_node, a, b)
        if x is None:
            return self.problem(fx_node, "mul of an activation")
        return self._affine(fx_node, x, fx_in, c, 0.0)

    def op_div(self, fx_node, a, b, rounding_mode=None):
        if not isinstance(a, _Act) or isinstance(b, _Act) or rounding_mode is not None:
            return self.problem(fx_node, "div only of an activation by a constant")
        c = self.numpy(b) if self.torch.is_tensor(b) else float(b)
        return self._affine(fx_node, a, fx_node.args[0], 1.0 / np.asarray(c, np.float64), 0.0)

    # -- element-wise functions (integer graphs: lookup tables)
    def _activation(self, fx_node, x, function: str, alpha: float = 0.0) -> Any:
        if not isinstance(x, _Act):
            return self.problem(fx_node, f"{function} of an activation")
        # alpha as the float32 the kernel (and an ONNX file) uses: both paths agree
        attrs = {"function": function, "alpha": float(np.float32(alpha))}
        return self.emit(fx_node, "activation", [x], attrs)

    def op_sigmoid(self, fx_node, x):
        return self._activation(fx_node, x, "sigmoid")

    def op_hardsigmoid(self, fx_node, x):
        return self._activation(fx_node, x, "hardsigmoid")

    def op_silu(self, fx_node, x):
        return self._activation(fx_node, x, "silu")

    def op_hardswish(self, fx_node, x):
        return self._activation(fx_node, x, "hardswish")

    def op_tanh(self, fx_node, x):
        return self._activation(fx_node, x, "tanh")

    def op_gelu(self, fx_node, x, approximate="none"):
        return self._activation(fx_node, x, "gelu_tanh" if approximate == "tanh" else "gelu")

    def op_leaky_relu(self, fx_node, x, negative_slope=0.01):
        return self._activation(fx_node, x, "leaky_relu", float(negative_slope))

    def op_mish(self, fx_node, x):
        return self._activation(fx_node, x, "mish")

    def op_softplus(self, fx_node, x, beta=1, threshold=20):
        if beta != 1:
            return self.problem(fx_node, f"softplus with beta={beta}: only beta 1")
        return self._activation(fx_node, x, "softplus")

    def op_prelu(self, fx_node, x, weight):
        slope = self._const(fx_node, weight, "prelu slope")
        if slope is None or slope.numel() != 1:
            return self.problem(fx_node, "PReLU with one slope per channel: only a single slope")
        return self._activation(fx_node, x, "leaky_relu", float(self.numpy(slope).reshape(())))

    def op_elu(self, fx_node, x, alpha=1.0, scale=1.0, input_scale=1.0):
        if scale != 1 or input_scale != 1:
            return self.problem(fx_node, "elu with scale/input_scale (SELU)")
        return self._activation(fx_node, x, "elu", float(alpha))

    # -- channels: concat, chunk/split/slice, shuffle
    def _channel_dim(self, x: _Act, dim: int) -> bool:
        rank = len(self.tensors[x.name].shape) + 1
        return int(dim) % rank == 1

    def op_cat(self, fx_node, tensors, dim=0):
        if not all(isinstance(t, _Act) for t in tensors):
            return self.problem(fx_node, "cat of activations only")
        if not self._channel_dim(tensors[0], dim):
            return self.problem(fx_node, f"cat along dim {dim}: only the channel axis (1)")
        if len(tensors) == 1:
            return tensors[0]
        return self.emit(fx_node, "concat", list(tensors), {})

    def op_concat(self, fx_node, tensors, dim=0):
        return self.op_cat(fx_node, tensors, dim)

    def _pieces(self, fx_node, x, sizes: list[int], dim) -> Any:
        if not isinstance(x, _Act) or not self._channel_dim(x, dim):
            return self.problem(fx_node, f"split along dim {dim}: only the channel axis (1)")
        bounds, start = [], 0
        for size in sizes:
            bounds.append((start, start + size))
            start += size
        return _Pieces(x, bounds)

    def op_split(self, fx_node, x, split_size, dim=0):
        if isinstance(split_size, (list, tuple)):
            return self.op_split_with_sizes(fx_node, x, split_size, dim)
        c = self.tensors[x.name].shape[0] if isinstance(x, _Act) else 0
        size = int(split_size)
        return self._pieces(fx_node, x, [min(size, c - s) for s in range(0, c, size)], dim)

    def op_split_with_sizes(self, fx_node, x, split_sizes, dim=0):
        return self._pieces(fx_node, x, [int(v) for v in split_sizes], dim)

    def op_chunk(self, fx_node, x, chunks, dim=0):
        c = self.tensors[x.name].shape[0] if isinstance(x, _Act) else 0
        size = -(-c // int(chunks))
        return self._pieces(fx_node, x, [min(size, c - s) for s in range(0, c, size)], dim)

    def op_unbind(self, fx_node, x, dim=0):
        return self.problem(fx_node, "unbind of an activation")

    def take_piece(self, fx_node, pieces: _Pieces, index: int) -> _Act:
        if index not in pieces.taken:
            start, end = pieces.bounds[index]
            c = self.tensors[pieces.act.name].shape[0]
            if (start, end) == (0, c):
                pieces.taken[index] = pieces.act
            else:
                pieces.taken[index] = self.emit(
                    fx_node, "select_channels", [pieces.act], {"channels": list(range(start, end))}
                )
        return pieces.taken[index]

    def op_slice(self, fx_node, x, dim=0, start=None, end=None, step=1):
        if not isinstance(x, _Act):
            return self.problem(fx_node, "slice of an activation")
        shape = self.tensors[x.name].shape
        rank = len(shape) + 1
        dim = int(dim) % rank
        size = shape[dim - 1] if dim else None
        start = 0 if start is None else int(start)
        end = (size if size is not None else 1 << 62) if end is None else int(end)
        if dim == 0 and start == 0 and end >= (1 << 31) and step == 1:
            return x  # all of the batch
        if dim != 1:
            return self.problem(fx_node, f"slice along dim {dim}: only the channel axis (1)")
        channels = list(range(*slice(start, end, int(step)).indices(size)))
        if channels == list(range(size)):
            return x
        if not channels:
            return self.problem(fx_node, "an empty channel slice")
        return self.emit(fx_node, "select_channels", [x], {"channels": channels})

    def _shuffle(self, fx_node, x: _Act, groups: int) -> Any:
        c = self.tensors[x.name].shape[0]
        per = c // groups
        # output channel j = i2 * groups + i1 reads input channel i1 * per + i2
        channels = [(j % groups) * per + j // groups for j in range(c)]
        return self.emit(fx_node, "select_channels", [x], {"channels": channels})

    def op_channel_shuffle(self, fx_node, x, groups):
        if not isinstance(x, _Act) or len(self.tensors[x.name].shape) != 3:
            return self.problem(fx_node, "channel_shuffle of an (N, C, H, W) activation")
        return self._shuffle(fx_node, x, int(groups))

    op_native_channel_shuffle = op_channel_shuffle

    def op_transpose(self, fx_node, x, dim0, dim1):
        if isinstance(x, _Grouped) and sorted((int(dim0) % 5, int(dim1) % 5)) == [1, 2]:
            return _Grouped(x.act, x.groups, not x.swapped)
        return self.problem(
            fx_node,
            "transpose of an activation (only the channel shuffle "
            "pattern view -> transpose(1, 2) -> view)",
        )

    def op_permute(self, fx_node, x, dims):
        dims = [int(d) % 5 for d in dims]
        if isinstance(x, _Grouped) and dims == [0, 2, 1, 3, 4]:
            return _Grouped(x.act, x.groups, not x.swapped)
        return self.problem(fx_node, "permute of an activation (only the channel shuffle pattern)")

    # -- resampling
    def op_upsample_nearest2d(self, fx_node, x, output_size=None, scales=None, *rest):
        if not isinstance(x, _Act):
            return self.problem(fx_node, "upsampling of an activation")
        c, h, w = self.tensors[x.name].shape
        _, oh, ow = self.shape(fx_node)
        if oh % h or ow % w:
            return self.problem(
                fx_node, f"nearest upsampling {h}x{w} -> {oh}x{ow}: only integer factors"
            )
        return self.emit(fx_node, "upsample_nearest", [x], {"scale": [oh // h, ow // w]})

    def op_upsample_bilinear2d(self, fx_node, *args, **kwargs):
        return self.problem(fx_node, "bilinear upsampling is not supported (nearest is)")

    # -- views
    def _reshape(self, fx_node, x, *_):
        shape_out = self.shape(fx_node)
        if isinstance(x, _Grouped):
            shape_in = self.tensors[x.act.name].shape
            if shape_out == shape_in:
                return self._shuffle(fx_node, x.act, x.groups) if x.swapped else x.act
            return self.problem(fx_node, f"reshape of a channel-grouped view to {shape_out}")
        shape_in = self.tensors[x.name].shape
        if shape_out == shape_in:
            return x
        if len(shape_out) == 1 and shape_out[0] == math.prod(shape_in):
            return self.emit(fx_node, "flatten", [x], {})
        if (
            len(shape_in) == 3
            and len(shape_out) == 4
            and shape_out[2:] == shape_in[1:]
            and shape_out[0] * shape_out[1] == shape_in[0]
        ):
            return _Grouped(x, int(shape_out[0]))
        return self.problem(
            fx_node,
            f"reshape {shape_in} -> {shape_out} is not a flatten "
            "to (batch, features) or a channel shuffle",
        )

    op_flatten = _reshape
    op_view = _reshape
    op_reshape = _reshape
    op_unsafe_view = _reshape


def _float_params(weight: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "weight": np.ascontiguousarray(weight, dtype=np.float32),
        "bias": np.ascontiguousarray(bias, dtype=np.float32),
    }


# ---- calibration ---------------------------------------------------------------------------


def _run_program(torch, program, constants: dict, input_name: str, x, wanted: set) -> dict:
    """Evaluate the exported graph on ``x`` (eager ATen calls); (min, max) of ``wanted`` nodes."""
    env: dict[Any, Any] = {}
    seen: dict[Any, Any] = {}
    with torch.no_grad():
        for node in program.graph.nodes:
            if node.op == "placeholder":
                env[node] = x if node.name == input_name else constants[node.name]
            elif node.op == "call_function":
                args = torch.fx.node.map_arg(node.args, lambda n: env[n])
                kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
                env[node] = node.target(*args, **kwargs)
            if node in wanted:
                # min/max now: a later in-place op (relu_, hardswish_) may overwrite the value
                value = env[node]
                if isinstance(value, (tuple, list)):  # batch norm / pool with indices
                    value = value[0]
                seen[node] = (float(value.min()), float(value.max()))
    return seen


def _calibrate(
    torch, program, walker: _Walker, constants: dict, graph: Graph, data, batch: int
) -> int:
    """Record per-tensor min/max of ``data`` into ``graph.tensors``; returns samples used."""
    data = torch.as_tensor(
        np.asarray(data, dtype=np.float32)
        if not torch.is_tensor(data)
        else data.detach().to(torch.float32)
    )
    expected = graph.tensors[graph.input].shape
    if data.ndim != len(expected) + 1 or tuple(data.shape[1:]) != expected:
        raise AccelsimError(
            f"calibration data has shape {tuple(data.shape)}",
            allowed=f"(samples, {', '.join(map(str, expected))})",
        )
    if data.shape[0] == 0:
        raise AccelsimError("calibration data is empty", allowed="at least one sample")
    wanted: dict[Any, list[str]] = {}
    for name, fx in walker.probe.items():
        wanted.setdefault(fx, []).append(name)
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}

    def record(chunk) -> None:
        values = _run_program(torch, program, constants, walker.input_name, chunk, set(wanted))
        for fx, names in wanted.items():
            low, high = values[fx]
            for name in names:
                lows[name] = min(lows.get(name, math.inf), low)
                highs[name] = max(highs.get(name, -math.inf), high)

    try:
        for start in range(0, data.shape[0], CALIBRATION_CHUNK):
            record(data[start : start + CALIBRATION_CHUNK])
    except RuntimeError:
        # the export baked the example's batch size into a reshape: run in chunks of that
        # size, padding the last chunk with copies of a sample (min/max are unchanged)
        lows.clear()
        highs.clear()
        for start in range(0, data.shape[0], batch):
            chunk = data[start : start + batch]
            if chunk.shape[0] < batch:
                pad = chunk[:1].expand(batch - chunk.shape[0], *chunk.shape[1:])
                chunk = torch.cat([chunk, pad])
            record(chunk)
    for name, spec in graph.tensors.items():
        graph.tensors[name] = replace(spec, calib_min=lows[name], calib_max=highs[name])
    return int(data.shape[0])


def calibrate(graph: Graph, data, chunk: int = CALIBRATION_CHUNK) -> int:
    """Record each tensor's min/max over ``data`` into a float graph, running accelsim's own
    float executor (numpy, float64; no torch). The ONNX path calibrates this way; returns the
    number of samples."""
    from accelsim.executor import execute

    data = np.asarray(data, dtype=np.float64)
    expected = graph.tensors[graph.input].shape
    if data.ndim != len(expected) + 1 or tuple(data.shape[1:]) != expected or not len(data):
        raise AccelsimError(
            f"calibration data has shape {tuple(data.shape)}",
            allowed=f"(samples >= 1, {', '.join(map(str, expected))})",
        )
    lows = dict.fromkeys(graph.tensors, math.inf)
    highs = dict.fromkeys(graph.tensors, -math.inf)
    for start in range(0, len(data), chunk):
        values = execute(graph, data[start : start + chunk], keep_all=True)
        for name, value in values.items():
            lows[name] = min(lows[name], float(value.min()))
            highs[name] = max(highs[name], float(value.max()))
    for name, spec in graph.tensors.items():
        graph.tensors[name] = replace(spec, calib_min=lows[name], calib_max=highs[name])
    return int(len(data))


# ---- public API ----------------------------------------------------------------------------


def export(model, example_input, calibration_data, *, name: str | None = None) -> Graph:
    """Export ``model`` (an ``nn.Module``) to an accelsim float graph with calibration stats.

    ``example_input`` is a tensor with a leading batch axis (any batch size); the model is put
    in eval mode and captured with :func:`torch.export.export`. ``calibration_data`` (tensor or
    array of samples shaped like the example) sets each tensor's ``calib_min/calib_max``.
    Raises :class:`AccelsimError` listing every operation that has no accelsim equivalent.
    """
    torch = _torch()
    model = model.eval()
    example = torch.as_tensor(example_input, dtype=torch.float32)
    if example.ndim < 2:
        raise AccelsimError(
            f"example input has shape {tuple(example.shape)}",
            allowed="(batch, C, H, W) or (batch, features)",
        )
    name = name or type(model).__name__
    with torch.no_grad():
        try:
            program = torch.export.export(model, (example,))
        except Exception as exc:  # torch raises many types; the user needs the message
            raise AccelsimError(
                f"torch.export could not capture {name!r}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from None
    walker = _Walker(torch, program, name)
    graph = walker.run()
    samples = _calibrate(
        torch,
        program,
        walker,
        walker.constant_values,
        graph,
        calibration_data,
        batch=int(example.shape[0]),
    )
    graph.metadata = {
        "source": "torch.export",
        "module": f"{type(model).__module__}.{type(model).__qualname__}",
        "torch_version": torch.__version__.split("+")[0],
        "export_version": EXPORT_VERSION,
        "calibration_samples": samples,
    }
    validate_graph(graph)
    return graph


def _builtin_factory(name: str):
    from .models import BUILTIN_MODELS

    if name not in BUILTIN_MODELS:
        raise AccelsimError(
            f"unknown builtin model {name!r}", key="model", allowed=sorted(BUILTIN_MODELS)
        )
    return BUILTIN_MODELS[name]


def _check_size(name: str, size: int | None) -> None:
    if size is None:
        return
    if name.startswith("digits"):
        from .builtins import DEFAULT_INPUT_SIZE

        trained = DEFAULT_INPUT_SIZE[name]  # a trained model takes its training images' size
        if size != trained:
            raise AccelsimError(
                f"{name} takes {trained}x{trained} images, not {size}",
                key="model.input_size",
                allowed=str(trained),
            )
    if name in ("resnet18", "vgg16") and (size < 32 or size % 32):
        raise AccelsimError(
            f"{name} input size {size}",
            key="model.input_size",
            allowed="a multiple of 32, at least 32",
        )
    if name == "mobilenet_block" and size < 1:
        raise AccelsimError(f"input size {size}", key="model.input_size", allowed=">= 1")


def export_builtin(name: str, input_size: int | None = None, seed: int = 0) -> Graph:
    """Float graph of a builtin model.

    The digits models are trained (seeded; seed 0 is the shipped ``zoo`` file) and calibrated
    on the training split. The performance models (resnet18, vgg16, mobilenet_block) get
    seeded random weights and are calibrated on seeded standard-normal inputs.
    """
    factory = _builtin_factory(name)
    _check_size(name, input_size)
    if name.startswith("digits"):
        from .train import ZOO_DIR, train_and_export

        zoo_file = ZOO_DIR / f"{name}.npz"
        if seed == 0 and zoo_file.is_file():
            return load_graph(zoo_file)
        return train_and_export(name, seed=seed)
    torch = _torch()
    module, shape = factory(input_size, seed)
    generator = torch.Generator().manual_seed(seed)
    calibration = torch.randn((CALIBRATION_SAMPLES_RANDOM, *shape[1:]), generator=generator)
    graph = export(module, torch.zeros(shape), calibration, name=name)
    graph.metadata.update(
        {
            "builtin": name,
            "input_size": shape[-1],
            "seed": seed,
            "calibration": "seeded standard normal",
        }
    )
    return graph


def builtin_graph_cached(name: str, input_size: int | None, seed: int, cache_dir) -> Graph:
    """:func:`export_builtin`, cached as ``<cache_dir>/<name>-<size>-s<seed>-v<version>.npz``.

    The cached file is the float graph; it is re-exported when missing or unreadable. Without
    torch a cached file still works.
    """
    from .builtins import DEFAULT_INPUT_SIZE

    if name not in DEFAULT_INPUT_SIZE:  # the names without importing torch: a hit needs none
        _builtin_factory(name)
    size = DEFAULT_INPUT_SIZE[name] if input_size is None else int(input_size)
    path = Path(cache_dir) / f"{name}-{size}-s{seed}-v{EXPORT_VERSION}.npz"
    return cached_entry(
        path, lambda: export_builtin(name, size, seed), load=load_graph, save=save_graph
    )


def _load_factory(spec: str):
    """``path/to/file.py:factory`` -> the factory function (the file is imported as a module)."""
    file_part, _, func_name = spec.rpartition(":")
    path = Path(file_part)
    if not file_part or not func_name or path.suffix != ".py":
        from .models import BUILTIN_MODELS

        raise AccelsimError(
            f"unknown model {spec!r}: neither a builtin nor path/to/file.py:factory",
            key="model",
            allowed=[*sorted(BUILTIN_MODELS), "path/to/file.py:factory"],
        )
    if not path.is_file():
        raise AccelsimError("model file not found", file=path, key="model")
    module_name = f"_accelsim_user_model_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise AccelsimError(
            f"importing the model file failed: {type(exc).__name__}: {exc}", file=path
        ) from None
    factory = getattr(module, func_name, None)
    if not callable(factory):
        raise AccelsimError(
            f"no function {func_name!r} in the model file", file=path, key=func_name
        )
    return factory, path


def load_calibration(path: str | Path, sample_shape) -> np.ndarray:
    """Calibration samples from a ``.npz`` (array ``x``, or its only array) or ``.npy``."""
    path = Path(path)
    if not path.is_file():
        raise AccelsimError("calibration file not found", file=path)
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:  # sizes checked from the headers first (accelsim.npzio)
            arrays = load_npz(path, what="calibration file")
            names = list(arrays)
            if "x" not in names and len(names) != 1:
                raise AccelsimError(
                    f"arrays {names} in the calibration file",
                    file=path,
                    allowed="an array named x (or a single array)",
                )
            data = arrays["x" if "x" in names else names[0]]
    except (OSError, ValueError, EOFError) as exc:
        raise AccelsimError(f"unreadable calibration data ({exc})", file=path) from None
    expected = tuple(int(s) for s in sample_shape)
    if data.ndim != len(expected) + 1 or tuple(data.shape[1:]) != expected or not len(data):
        raise AccelsimError(
            f"calibration data of shape {data.shape}",
            file=path,
            allowed=f"(samples >= 1, {', '.join(map(str, expected))})",
        )
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise AccelsimError(
            f"calibration data of dtype {data.dtype}", file=path, allowed="real numbers"
        )
    if not np.isfinite(data).all():
        raise AccelsimError(
            "calibration data holds NaN or infinite values", file=path, allowed="finite numbers"
        )
    return np.ascontiguousarray(data, dtype=np.float32)


def export_cli(
    model: str,
    out: Path,
    input_size: int | None = None,
    seed: int = 0,
    calibration: str | Path | None = None,
) -> Path:
    """``python -m accelsim export MODEL --out FILE``: write a float graph, atomically.

    ``model`` is a builtin name (``digits_cnn``, ``resnet18``, ...), an ONNX file
    (``model.onnx``, needs the ``onnx`` extra) or ``path/to/file.py:fn``, where ``fn`` returns
    ``(module, example_input)``: an ``nn.Module`` and an input tensor with a leading batch
    axis. ``fn`` receives ``input_size=`` and ``seed=`` if its signature names them.
    ``calibration`` is a ``.npz`` (array ``x``) or ``.npy`` of real input samples; without it
    user models are calibrated on 8 seeded standard-normal samples.
    """
    out = Path(out)
    from .models import BUILTIN_MODELS

    if model.endswith(".onnx"):
        from .onnx_import import export_onnx_file

        graph = export_onnx_file(model, calibration=calibration, seed=seed)
    elif model in BUILTIN_MODELS:
        if calibration is not None:
            raise AccelsimError(
                "--calibration is for user models; builtin models are calibrated by their own rule",
                key="calibration",
            )
        graph = export_builtin(model, input_size, seed)
    else:
        torch = _torch()
        factory, path = _load_factory(model)
        params = inspect.signature(factory).parameters
        kwargs = {k: v for k, v in (("input_size", input_size), ("seed", seed)) if k in params}
        try:
            result = factory(**kwargs)
            module, example = result
        except (TypeError, ValueError) as exc:
            raise AccelsimError(
                f"{model}: factory must return (module, example_input) ({exc})", file=path
            ) from None
        if not isinstance(module, torch.nn.Module) or not torch.is_tensor(example):
            raise AccelsimError(f"{model}: factory must return (nn.Module, tensor)", file=path)
        generator = torch.Generator().manual_seed(seed)
        described = "seeded standard normal"
        if calibration is not None:
            calibration_data = load_calibration(calibration, example.shape[1:])
            described = f"{Path(calibration).name} ({len(calibration_data)} samples)"
        else:
            calibration_data = torch.randn(
                (CALIBRATION_SAMPLES_RANDOM, *example.shape[1:]), generator=generator
            )
        graph = export(module, example, calibration_data, name=type(module).__name__)
        graph.metadata.update({"factory": model, "seed": seed, "calibration": described})
    save_graph(graph, out)
    return out
