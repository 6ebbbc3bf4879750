"""PyTorch model -> accelsim float graph, via ``torch.export``.

:func:`export` captures the model with :func:`torch.export.export` (no ``fx.symbolic_trace``),
walks the exported graph's ATen ops in order and maps each one to an accelsim op:

======================================================  =============================================
ATen op                                                 accelsim
======================================================  =============================================
conv2d / convolution (dilation 1, not transposed)       ``conv2d`` (stride, padding, groups)
linear, addmm / mm with a constant weight               ``linear``
batch_norm / _native_batch_norm_legit_no_training       folded into the preceding conv2d/linear
relu, relu6, hardtanh, clamp                            ``clamp`` (lo, hi; +-inf when unbounded)
max_pool2d (with_indices)                               ``maxpool2d``
avg_pool2d (no padding)                                 ``avgpool2d``
adaptive_avg_pool2d(1), mean over H, W                  ``global_avgpool``
adaptive_avg_pool2d(k) with H, W divisible by k         ``avgpool2d``
add (two activations)                                   ``add``
flatten / view / reshape to (batch, features)           ``flatten``
dropout, clone, contiguous, detach, alias               nothing (identity at inference)
======================================================  =============================================

Operations on constants only (``t(weight)``, ...) are evaluated once at export. Anything else
raises one :class:`AccelsimError` listing every unsupported op with the ``nn.Module`` it came
from (``node.meta["nn_module_stack"]``).

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

from accelsim.errors import AccelsimError
from accelsim.ir import Graph, Node, TensorSpec, load_graph, save_graph, validate_graph

EXPORT_VERSION = 1  # bump when the mapping changes: invalidates builtin_graph_cached files
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

# module classes whose own op an aten op is, for naming (a ReLU module's relu -> its path)
_OWN_MODULES = {
    "conv2d": ("Conv2d",),
    "linear": ("Linear",),
    "clamp": ("ReLU", "ReLU6", "Hardtanh"),
    "maxpool2d": ("MaxPool2d",),
    "avgpool2d": ("AvgPool2d", "AdaptiveAvgPool2d"),
    "global_avgpool": ("AdaptiveAvgPool2d", "AvgPool2d"),
    "flatten": ("Flatten",),
}


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


_IDENTITY = {"dropout", "dropout_", "feature_dropout", "alpha_dropout", "clone", "contiguous",
             "detach", "detach_", "alias", "lift_fresh_copy"}  # fmt: skip
_ASSERTS = {"_assert_tensor_metadata", "_assert_async", "_assert_scalar", "sym_constrain_range",
            "sym_constrain_range_for_size", "_functional_assert_async"}  # fmt: skip
_CLAMPS = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "clamp", "clamp_", "clamp_min",
           "clamp_max"}  # fmt: skip
_SUPPORTED = {"conv2d", "convolution", "linear", "addmm", "mm", "batch_norm",
              "_native_batch_norm_legit_no_training", "max_pool2d", "max_pool2d_with_indices",
              "avg_pool2d", "adaptive_avg_pool2d", "mean", "add", "add_", "flatten", "view",
              "reshape", "_unsafe_view", "getitem"} | _CLAMPS | _IDENTITY  # fmt: skip


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
                raise AccelsimError(f"exported program has an input of kind {kind}",
                                    allowed="parameters, buffers, constants, one user input")  # fmt: skip
        if len(user_inputs) != 1:
            raise AccelsimError(f"model takes {len(user_inputs)} tensor inputs",
                                allowed="exactly one input tensor")  # fmt: skip
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
        if path and cls in _OWN_MODULES.get(op, ()) and path not in self.used_names:
            return self.unique(path)
        short = _aten(fx_node.target).rstrip("_") or fx_node.name
        return self.unique(f"{path}.{short}" if path else short)

    def shape(self, fx_node) -> tuple[int, ...]:
        val = fx_node.meta.get("val")
        if isinstance(val, (tuple, list)):  # max_pool2d_with_indices, batch norm: (out, ...)
            val = val[0]
        return tuple(int(s) for s in val.shape[1:])

    def emit(self, fx_node, op: str, inputs: list[_Act], attrs: dict, params: dict | None = None,
             shape: tuple[int, ...] | None = None) -> _Act:  # fmt: skip
        name = self.node_name(fx_node, op)
        node = Node(op, name, [a.name for a in inputs], name, attrs, params or {})
        self.nodes.append(node)
        self.tensors[name] = TensorSpec(name, shape or self.shape(fx_node), None, True, 1.0)
        self.producer[name] = node
        self.probe[name] = fx_node
        return _Act(name)

    def problem(self, fx_node, why: str) -> _Unsupported:
        path, cls = _module_of(fx_node)
        where = f"module {path!r} ({cls})" if path else "the model's forward"
        self.problems.append(f"{_op_name(fx_node.target)} in {where}: {why}")
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
                    self.tensors["input"] = TensorSpec("input", self.shape(fx_node), None, True,
                                                       1.0)  # fmt: skip
                    self.probe["input"] = fx_node
                    self.env[fx_node] = _Act("input")
                else:
                    self.env[fx_node] = constants[fx_node.name]
            elif fx_node.op == "call_function":
                self.env[fx_node] = self.call(fx_node)
            elif fx_node.op == "output":
                outputs = [o for o in torch.utils._pytree.tree_leaves(fx_node.args[0])
                           if o is not None]  # fmt: skip
                if len(outputs) != 1:
                    raise AccelsimError(f"model returns {len(outputs)} tensors",
                                        allowed="exactly one output tensor")  # fmt: skip
                out = self.env[outputs[0]]
            else:
                self.problems.append(f"fx node {fx_node.op} {fx_node.target}: not supported")
        if self.problems:
            raise AccelsimError(
                f"model {self.graph_name!r} uses {len(self.problems)} unsupported operation(s): "
                + "; ".join(self.problems),
                allowed="conv2d, linear, batch_norm after conv/linear, relu/relu6/hardtanh/clamp, "
                "max_pool2d, avg_pool2d, adaptive_avg_pool2d(1), add, flatten",
            )
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
            op = _aten(target) if target is not operator.getitem else "getitem"
            return _UNSUPPORTED if op in _SUPPORTED else self.problem(fx_node, "not supported")
        if target is operator.getitem:
            return args[0][args[1]]
        op = _aten(target)
        if op in _ASSERTS:
            return None
        if not has_act:  # constants only: evaluate once, now
            with torch.no_grad():
                return target(*args, **kwargs)
        handler = getattr(self, f"op_{op.strip('_')}", None)
        if op in _IDENTITY:
            return args[0]
        if op in _CLAMPS:
            return self.op_clamp_family(fx_node, op, args, kwargs)
        if handler is None:
            return self.problem(fx_node, "not supported")
        return handler(fx_node, *args, **kwargs)

    # -- ops
    def _const(self, fx_node, value, what: str):
        if isinstance(value, _Act):
            self.problem(fx_node, f"{what} must be a constant (a parameter), not an activation")
            return None
        return value

    def op_conv2d(self, fx_node, x, weight, bias=None, stride=1, padding=0, dilation=1,
                  groups=1):  # fmt: skip
        return self._conv(fx_node, x, weight, bias, stride, padding, dilation, False, groups)

    def op_convolution(self, fx_node, x, weight, bias, stride, padding, dilation, transposed,
                       output_padding, groups):  # fmt: skip
        return self._conv(fx_node, x, weight, bias, stride, padding, dilation, transposed, groups)

    def _conv(self, fx_node, x, weight, bias, stride, padding, dilation, transposed, groups):
        def pair(v):
            v = [int(i) for i in v] if isinstance(v, (list, tuple)) else [int(v)]
            return v * 2 if len(v) == 1 else v

        if isinstance(padding, str):
            return self.problem(fx_node, f"padding={padding!r}: give explicit padding")
        if transposed:
            return self.problem(fx_node, "transposed convolution is not supported")
        if any(d != 1 for d in pair(dilation)):
            return self.problem(fx_node, f"dilation {pair(dilation)}: only dilation 1")
        weight = self._const(fx_node, weight, "conv weight")
        if weight is None or not isinstance(x, _Act) or weight.dim() != 4:
            return self.problem(fx_node, "only 2-d convolution of an activation")
        w = self.numpy(weight)
        b = np.zeros(w.shape[0]) if bias is None else self.numpy(bias)
        attrs = {"stride": pair(stride), "padding": pair(padding), "groups": int(groups)}
        return self.emit(fx_node, "conv2d", [x], attrs, _float_params(w, b))

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

    def _batch_norm(self, fx_node, x, gamma, beta, mean, var, eps):
        producer = self.producer.get(x.name) if isinstance(x, _Act) else None
        fx_in = fx_node.args[0]
        if producer is None or producer.op not in ("conv2d", "linear") or len(fx_in.users) != 1:
            return self.problem(fx_node, "batch_norm must directly follow a conv2d or linear "
                                "whose output it alone reads (it is folded into that layer)")  # fmt: skip
        mean, var = self.numpy(mean), self.numpy(var)
        gamma = np.ones_like(mean) if gamma is None else self.numpy(gamma)
        beta = np.zeros_like(mean) if beta is None else self.numpy(beta)
        factor = gamma / np.sqrt(var + float(eps))
        w = producer.params["weight"].astype(np.float64)
        b = producer.params["bias"].astype(np.float64)
        producer.params.update(_float_params(w * factor.reshape(-1, *[1] * (w.ndim - 1)),
                                             (b - mean) * factor + beta))  # fmt: skip
        self.probe[x.name] = fx_node  # the layer's tensor now holds the normalised value
        return x

    def op_batch_norm(self, fx_node, x, gamma, beta, mean, var, training, momentum, eps,
                      cudnn_enabled=False):  # fmt: skip
        if training:
            return self.problem(fx_node, "batch_norm in training mode: call model.eval()")
        return self._batch_norm(fx_node, x, gamma, beta, mean, var, eps)

    def op_native_batch_norm_legit_no_training(self, fx_node, x, gamma, beta, mean, var,
                                               momentum, eps):  # fmt: skip
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
        lo = -math.inf if lo is None else float(lo)
        hi = math.inf if hi is None else float(hi)
        return self.emit(fx_node, "clamp", [x], {"lo": lo, "hi": hi})

    def _pool_pairs(self, kernel, stride, padding):
        def pair(v):
            v = [int(i) for i in v] if isinstance(v, (list, tuple)) else [int(v)]
            return v * 2 if len(v) == 1 else v

        kernel = pair(kernel)
        stride = pair(stride) if stride not in (None, [], ()) else list(kernel)
        return kernel, stride, pair(padding)

    def _check_window(self, fx_node, x: _Act, kernel, stride, padding) -> bool:
        _, h, w = self.tensors[x.name].shape
        expected = tuple((s + 2 * p - k) // st + 1
                         for s, k, st, p in zip((h, w), kernel, stride, padding))  # fmt: skip
        return expected == self.shape(fx_node)[1:]

    def op_max_pool2d(self, fx_node, x, kernel, stride=(), padding=0, dilation=1,
                      ceil_mode=False):  # fmt: skip
        kernel, stride, padding = self._pool_pairs(kernel, stride, padding)
        dilation = self._pool_pairs(dilation, None, 0)[0]
        if any(d != 1 for d in dilation):
            return self.problem(fx_node, f"max_pool2d dilation {dilation}: only 1")
        if not self._check_window(fx_node, x, kernel, stride, padding):
            return self.problem(fx_node, "ceil_mode=True changes the output size")
        attrs = {"kernel": kernel, "stride": stride, "padding": padding}
        return self.emit(fx_node, "maxpool2d", [x], attrs)

    def op_max_pool2d_with_indices(self, fx_node, *args, **kwargs):
        return (self.op_max_pool2d(fx_node, *args, **kwargs), None)

    def op_avg_pool2d(self, fx_node, x, kernel, stride=(), padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None):  # fmt: skip
        kernel, stride, padding = self._pool_pairs(kernel, stride, padding)
        if any(padding) or divisor_override is not None:
            return self.problem(fx_node, "avg_pool2d only without padding or divisor_override")
        if not self._check_window(fx_node, x, kernel, stride, padding):
            return self.problem(fx_node, "ceil_mode=True changes the output size")
        return self.emit(fx_node, "avgpool2d", [x], {"kernel": kernel, "stride": stride})

    def op_adaptive_avg_pool2d(self, fx_node, x, output_size):
        _, h, w = self.tensors[x.name].shape
        oh, ow = self._pool_pairs(output_size, None, 0)[0]
        if (oh, ow) == (1, 1):
            return self.emit(fx_node, "global_avgpool", [x], {})
        if h % oh or w % ow:
            return self.problem(fx_node, f"adaptive_avg_pool2d to {[oh, ow]} from {h}x{w}: "
                                "only output 1 or an exact divisor of the input size")  # fmt: skip
        kernel = [h // oh, w // ow]
        return self.emit(fx_node, "avgpool2d", [x], {"kernel": kernel, "stride": kernel})

    def op_mean(self, fx_node, x, dims=None, keepdim=False, dtype=None):
        rank = len(self.tensors[x.name].shape) + 1
        if rank != 4 or dims is None or sorted(d % 4 for d in dims) != [2, 3]:
            return self.problem(fx_node, "mean only over H and W of an (N, C, H, W) tensor")
        c = self.tensors[x.name].shape[0]
        pooled = self.emit(fx_node, "global_avgpool", [x], {}, shape=(c, 1, 1))
        if keepdim:
            return pooled
        return self.emit(fx_node, "flatten", [pooled], {}, shape=(c,))

    def op_add(self, fx_node, a, b, alpha=1):
        if not (isinstance(a, _Act) and isinstance(b, _Act)) or alpha != 1:
            return self.problem(fx_node, "add only of two activations (residual), alpha 1")
        return self.emit(fx_node, "add", [a, b], {})

    def _reshape(self, fx_node, x, *_):
        shape_in = self.tensors[x.name].shape
        shape_out = self.shape(fx_node)
        if shape_out == shape_in:
            return x
        if len(shape_out) == 1 and shape_out[0] == math.prod(shape_in):
            return self.emit(fx_node, "flatten", [x], {})
        return self.problem(fx_node, f"reshape {shape_in} -> {shape_out} is not a flatten "
                            "to (batch, features)")  # fmt: skip

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
    """Evaluate the exported graph on ``x`` (eager ATen calls); values of ``wanted`` nodes."""
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
                seen[node] = env[node]
    return seen


def _calibrate(torch, program, walker: _Walker, constants: dict, graph: Graph, data,
               batch: int) -> int:  # fmt: skip
    """Record per-tensor min/max of ``data`` into ``graph.tensors``; returns samples used."""
    data = torch.as_tensor(np.asarray(data, dtype=np.float32) if not torch.is_tensor(data)
                           else data.detach().to(torch.float32))  # fmt: skip
    expected = graph.tensors[graph.input].shape
    if data.ndim != len(expected) + 1 or tuple(data.shape[1:]) != expected:
        raise AccelsimError(f"calibration data has shape {tuple(data.shape)}",
                            allowed=f"(samples, {', '.join(map(str, expected))})")  # fmt: skip
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
            value = values[fx]
            if isinstance(value, (tuple, list)):  # batch norm / pool with indices: (out, ...)
                value = value[0]
            low, high = float(value.min()), float(value.max())
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
        raise AccelsimError(f"example input has shape {tuple(example.shape)}",
                            allowed="(batch, C, H, W) or (batch, features)")  # fmt: skip
    name = name or type(model).__name__
    with torch.no_grad():
        try:
            program = torch.export.export(model, (example,))
        except Exception as exc:  # torch raises many types; the user needs the message
            raise AccelsimError(f"torch.export could not capture {name!r}: "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None  # fmt: skip
    walker = _Walker(torch, program, name)
    graph = walker.run()
    samples = _calibrate(torch, program, walker, walker.constant_values, graph, calibration_data,
                         batch=int(example.shape[0]))  # fmt: skip
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
        raise AccelsimError(f"unknown builtin model {name!r}", key="model",
                            allowed=sorted(BUILTIN_MODELS))  # fmt: skip
    return BUILTIN_MODELS[name]


def _check_size(name: str, size: int | None) -> None:
    if size is None:
        return
    if name.startswith("digits") and size != 8:
        raise AccelsimError(f"{name} takes 8x8 images, not {size}", key="model.input_size",
                            allowed="8")  # fmt: skip
    if name in ("resnet18", "vgg16") and (size < 32 or size % 32):
        raise AccelsimError(f"{name} input size {size}", key="model.input_size",
                            allowed="a multiple of 32, at least 32")  # fmt: skip
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
    graph.metadata.update({"builtin": name, "input_size": shape[-1], "seed": seed,
                           "calibration": "seeded standard normal"})  # fmt: skip
    return graph


def builtin_graph_cached(name: str, input_size: int | None, seed: int, cache_dir) -> Graph:
    """:func:`export_builtin`, cached as ``<cache_dir>/<name>-<size>-s<seed>-v<version>.npz``.

    The cached file is the float graph; it is re-exported when missing or unreadable. Without
    torch a cached file still works.
    """
    from .models import DEFAULT_INPUT_SIZE

    _builtin_factory(name)
    size = DEFAULT_INPUT_SIZE[name] if input_size is None else int(input_size)
    path = Path(cache_dir) / f"{name}-{size}-s{seed}-v{EXPORT_VERSION}.npz"
    if path.is_file():
        try:
            return load_graph(path)
        except AccelsimError:
            pass  # a damaged cache entry is rebuilt, not reported
    graph = export_builtin(name, size, seed)
    save_graph(graph, path)
    return graph


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
        raise AccelsimError(f"importing the model file failed: {type(exc).__name__}: {exc}",
                            file=path) from None  # fmt: skip
    factory = getattr(module, func_name, None)
    if not callable(factory):
        raise AccelsimError(f"no function {func_name!r} in the model file", file=path,
                            key=func_name)  # fmt: skip
    return factory, path


def export_cli(model: str, out: Path, input_size: int | None = None, seed: int = 0) -> Path:
    """``python -m accelsim export MODEL --out FILE``: write a float graph, atomically.

    ``model`` is a builtin name (``digits_cnn``, ``resnet18``, ...) or ``path/to/file.py:fn``,
    where ``fn`` returns ``(module, example_input)``: an ``nn.Module`` and an input tensor
    with a leading batch axis. ``fn`` receives ``input_size=`` and ``seed=`` if its signature
    names them. User models are calibrated on 8 seeded standard-normal samples; for a real
    data set call :func:`export` from Python.
    """
    out = Path(out)
    from .models import BUILTIN_MODELS

    if model in BUILTIN_MODELS:
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
            raise AccelsimError(f"{model}: factory must return (module, example_input) ({exc})",
                                file=path) from None  # fmt: skip
        if not isinstance(module, torch.nn.Module) or not torch.is_tensor(example):
            raise AccelsimError(f"{model}: factory must return (nn.Module, tensor)", file=path)
        generator = torch.Generator().manual_seed(seed)
        calibration = torch.randn((CALIBRATION_SAMPLES_RANDOM, *example.shape[1:]),
                                  generator=generator)  # fmt: skip
        graph = export(module, example, calibration, name=Path(path).stem)
        graph.metadata.update({"factory": model, "seed": seed,
                               "calibration": "seeded standard normal"})  # fmt: skip
    save_graph(graph, out)
    return out
