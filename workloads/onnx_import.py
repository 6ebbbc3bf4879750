"""ONNX model -> accelsim float graph (optional extra: ``pip install accelsim[onnx]``).

How TensorFlow, Keras, JAX (and PyTorch) users bring a model: ``python -m accelsim export
model.onnx --out model.npz`` or :func:`export_onnx`. The converter walks the ONNX graph in
order and maps each node to the same accelsim op the ``torch.export`` path
(:mod:`workloads.export`) produces for the same layer, with the same folding rules
(batch norm and constant affine arithmetic into the producing conv/linear, else a depthwise
1x1 conv), so a model exported with ``torch.onnx.export`` and through ``torch.export`` gives
the same float graph (ops, attrs, float32 weights) and, calibrated on the same data, the
identical integer graph (``tests/test_onnx.py``).

Nodes whose inputs are all constants (``Shape`` of a tensor of known shape, ``Gather``,
``Concat`` of shape pieces, ``Constant``, ...) are evaluated once at import with
:mod:`onnx.reference`. Anything else is reported all at once, grouped by op.

**Already-quantised (QDQ) models** — ``QuantizeLinear``/``DequantizeLinear`` pairs,
``QLinearConv``, ``ConvInteger``, ... — are refused with a message: accelsim quantises a float
graph itself (per-channel symmetric weights, per-tensor activations, fixed-point
requantisation, the reserved-MSB clip bound), and silently re-interpreting another
quantiser's scales and zero points would not give that tool's integers. Export the float
model (before quantisation) instead.

Calibration runs accelsim's own float executor (numpy, float64) on the calibration data and
records every tensor's min and max (:func:`workloads.export.calibrate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.ir import GEMM_OPS, Graph, Node, TensorSpec, infer_shape, validate_graph

ONNX_HINT = "install the onnx extra: pip install 'accelsim[onnx]' (or pip install onnx)"
QDQ_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "QLinearAdd",
    "QLinearMul",
    "ConvInteger",
    "MatMulInteger",
    "QGemm",
    "QLinearConcat",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
}
QDQ_WHY = (
    "the model is already quantised (QDQ / QOperator ONNX): accelsim quantises float "
    "graphs itself; export the float model before quantisation"
)
CALIBRATION_SAMPLES_RANDOM = 8
_ACTIVATIONS = {"Sigmoid": "sigmoid", "HardSwish": "hardswish", "Tanh": "tanh"}
_IDENTITY_OPS = {"Identity", "Dropout"}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise AccelsimError(
            "importing an ONNX model needs the onnx package", allowed=ONNX_HINT
        ) from None
    return onnx


@dataclass(frozen=True)
class _Act:
    name: str


@dataclass(frozen=True)
class _Grouped:
    """(C, H, W) seen as (g, C/g, H, W) (maybe axes 1, 2 swapped): a channel shuffle."""

    act: _Act
    groups: int
    swapped: bool = False


@dataclass(frozen=True)
class _Padded:
    """Zero padding (top, left, bottom, right) of a feature map, folded into the Conv after."""

    act: _Act
    pads: tuple[int, int, int, int]


class _Unsupported:
    pass


_UNSUPPORTED = _Unsupported()


class _Converter:
    def __init__(self, onnx, proto, name: str) -> None:
        self.onnx = onnx
        self.proto = proto
        self.graph_name = name
        self.values: dict[str, Any] = {}  # onnx tensor -> np.ndarray | _Act | _Grouped
        self.tensors: dict[str, TensorSpec] = {}
        self.nodes: list[Node] = []
        self.producer: dict[str, Node] = {}
        self.problems: list[tuple[str, str, str]] = []
        self.used: set[str] = set()
        self.batch = 1
        self.users: dict[str, int] = {}
        for node in proto.graph.node:
            for name in node.input:
                self.users[name] = self.users.get(name, 0) + 1
        for out in proto.graph.output:
            self.users[out.name] = self.users.get(out.name, 0) + 1

    # -- helpers
    def attrs(self, node) -> dict[str, Any]:
        helper = self.onnx.helper
        out = {}
        for a in node.attribute:
            value = helper.get_attribute_value(a)
            out[a.name] = value.decode() if isinstance(value, bytes) else value
        return out

    def unique(self, base: str) -> str:
        base = base.strip("/").replace("/", ".").replace(":", "_") or "node"
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def node_name(self, node) -> str:
        base = node.name or node.output[0]
        parts = base.strip("/").split("/")
        if len(parts) > 1 and parts[-1].split("_")[0] == node.op_type:
            parts = parts[:-1]  # "/layer1/conv/Conv" -> "layer1.conv"
        return self.unique(".".join(parts))

    def emit(
        self,
        node,
        op: str,
        inputs: list[_Act],
        attrs: dict,
        params: dict | None = None,
        name: str | None = None,
    ) -> _Act:
        name = name or self.node_name(node)
        new = Node(op, name, [a.name for a in inputs], name, attrs, params or {})
        shape = infer_shape(new, [self.tensors[a.name].shape for a in inputs])
        self.nodes.append(new)
        self.tensors[name] = TensorSpec(name, shape, None, True, 1.0)
        self.producer[name] = new
        return _Act(name)

    def problem(self, node, why: str) -> _Unsupported:
        where = repr(node.name) if node.name else "the graph"
        self.problems.append((f"onnx.{node.op_type}", why, where))
        return _UNSUPPORTED

    def const(self, name: str) -> np.ndarray | None:
        value = self.values.get(name) if name else None
        return value if isinstance(value, np.ndarray) else None

    def shape_of(self, act: _Act) -> tuple[int, ...]:
        return self.tensors[act.name].shape

    # -- the walk
    def run(self) -> Graph:
        onnx = self.onnx
        graph = self.proto.graph
        for init in graph.initializer:
            self.values[init.name] = onnx.numpy_helper.to_array(init)
        inputs = [i for i in graph.input if i.name not in self.values]
        if len(inputs) != 1:
            raise AccelsimError(
                f"ONNX graph has {len(inputs)} non-constant inputs",
                allowed="exactly one input tensor",
            )
        dims = inputs[0].type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(shape) < 2 or any(s is None for s in shape[1:]):
            raise AccelsimError(
                f"ONNX input {inputs[0].name!r} has shape {shape}",
                allowed="(batch, C, H, W) or (batch, features), static except the batch",
            )
        self.batch = shape[0] or 1
        self.tensors["input"] = TensorSpec("input", tuple(shape[1:]), None, True, 1.0)
        self.values[inputs[0].name] = _Act("input")
        self.used.add("input")
        for node in graph.node:
            self.visit(node)
        if self.problems:
            from .export import unsupported_error

            raise unsupported_error(
                self.graph_name, self.problems, allowed="the ops of docs/ops.md (ONNX section)"
            )
        if len(graph.output) != 1:
            raise AccelsimError(
                f"ONNX graph has {len(graph.output)} outputs", allowed="exactly one output"
            )
        out = self.values.get(graph.output[0].name)
        if not isinstance(out, _Act) or out.name == "input":
            raise AccelsimError("model output is not computed from its input by supported ops")
        return Graph("float", self.graph_name, "input", out.name, self.tensors, self.nodes, {})

    def visit(self, node) -> None:
        args = [self.values.get(name) if name else None for name in node.input]
        if node.op_type in QDQ_OPS:
            result: Any = self.problem(node, QDQ_WHY)
        elif any(isinstance(a, _Unsupported) for a in args):
            result = _UNSUPPORTED
        elif any(isinstance(a, _Padded) for a in args) and node.op_type != "Conv":
            result = self.problem(node, "reads a zero-padded map (Pad): only a Conv may")
        elif node.op_type == "Constant" or all(
            a is None or isinstance(a, np.ndarray) for a in args
        ):
            result = self.evaluate(node, args)
        elif node.op_type == "Shape" and isinstance(args[0], _Act):
            result = np.array([self.batch, *self.shape_of(args[0])], dtype=np.int64)
        elif node.op_type in _IDENTITY_OPS:
            result = args[0]
        else:
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                result = self.problem(node, "not supported")
            else:
                result = handler(node, args, self.attrs(node))
        outputs = result if isinstance(result, list) else [result]
        if node.op_type == "Dropout":
            outputs = [result]
        for name, value in zip(node.output, outputs):
            self.values[name] = value

    def evaluate(self, node, args) -> Any:
        """A node of constants only: evaluate it once with onnx.reference."""
        from onnx.reference import ReferenceEvaluator

        helper = self.onnx.helper
        feeds = {f"i{j}": a for j, a in enumerate(args) if a is not None}
        inputs = [f"i{j}" if a is not None else "" for j, a in enumerate(args)]
        outputs = [f"o{j}" for j in range(len(node.output))]
        single = helper.make_node(node.op_type, inputs, outputs, domain=node.domain or None)
        single.attribute.extend(node.attribute)
        graph = helper.make_graph(
            [single],
            "c",
            [
                helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                for k, v in feeds.items()
            ],
            [helper.make_tensor_value_info(o, 0, None) for o in outputs],
        )
        model = helper.make_model(graph, opset_imports=list(self.proto.opset_import))
        try:
            results = ReferenceEvaluator(model).run(None, feeds)
        except Exception as exc:  # the reference runtime raises many types
            return self.problem(node, f"constant evaluation failed ({type(exc).__name__})")
        values = [np.asarray(r) for r in results]
        return values if len(values) > 1 else values[0]

    # -- layers
    def op_Conv(self, node, args, a):
        x, w = args[0], self.const(node.input[1])
        extra = (0, 0, 0, 0)
        if isinstance(x, _Padded):
            x, extra = x.act, x.pads
        if not isinstance(x, _Act) or w is None or w.ndim != 4:
            return self.problem(node, "only 2-d convolution of an activation by constant weights")
        b = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        k = w.shape[2:]
        dilation = [int(v) for v in a.get("dilations", [1, 1])]
        stride = [int(v) for v in a.get("strides", [1, 1])]
        pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        auto_pad = a.get("auto_pad", "NOTSET")
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):  # output ceil(size / stride)
            sizes = self.shape_of(x)[1:]
            totals = [
                max((-(-n // s) - 1) * s + d * (kk - 1) + 1 - n, 0)
                for n, s, d, kk in zip(sizes, stride, dilation, k)
            ]
            small = [t // 2 for t in totals]
            big = [t - t // 2 for t in totals]
            pads = small + big if auto_pad == "SAME_UPPER" else big + small
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        pads = [p + e for p, e in zip(pads, (extra[0], extra[1], extra[2], extra[3]))]
        attrs = {"stride": stride, "padding": pads[:2], "groups": int(a.get("group", 1))}
        if pads[2:] != pads[:2]:
            attrs["padding_end"] = pads[2:]
        if dilation != [1, 1]:
            attrs["dilation"] = dilation
        bias = np.zeros(w.shape[0]) if b is None else b
        return self.emit(node, "conv2d", [x], attrs, _float_params(w, bias))

    def op_Pad(self, node, args, a):
        x = args[0]
        pads = self.const(node.input[1]) if len(node.input) > 1 else np.array(a.get("pads", []))
        value = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        mode = a.get("mode", "constant")
        if (
            not isinstance(x, _Act)
            or pads is None
            or mode != "constant"
            or len(pads) != 8
            or (value is not None and float(value) != 0.0)
        ):
            return self.problem(node, "Pad only with zeros of an (N, C, H, W) map before a Conv")
        p = [int(v) for v in pads]
        if p[0] or p[1] or p[4] or p[5] or min(p) < 0 or self.users.get(node.output[0]) != 1:
            return self.problem(node, "Pad only of H and W, read by one Conv")
        return _Padded(x, (p[2], p[3], p[6], p[7]))

    def op_ConvTranspose(self, node, args, a):
        return self.problem(
            node,
            "transposed convolution is not supported: use nearest upsampling followed by a conv",
        )

    def op_Gemm(self, node, args, a):
        x, w = args[0], self.const(node.input[1])
        if not isinstance(x, _Act) or w is None or a.get("transA", 0):
            return self.problem(node, "Gemm only as a linear layer (activation times constant)")
        w = w if a.get("transB", 0) else w.T
        w = w * float(a.get("alpha", 1.0))
        c = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        bias = (
            np.zeros(w.shape[0])
            if c is None
            else np.broadcast_to(c * float(a.get("beta", 1.0)), (w.shape[0],))
        )
        return self._linear(node, x, w, bias)

    def op_MatMul(self, node, args, a):
        x, w = args[0], self.const(node.input[1])
        if not isinstance(x, _Act) or w is None or w.ndim != 2:
            return self.problem(node, "MatMul only of an activation by a constant matrix")
        return self._linear(node, x, w.T, np.zeros(w.shape[1]))

    def _linear(self, node, x: _Act, w, bias):
        if len(self.shape_of(x)) != 1:
            return self.problem(node, "linear needs a (batch, features) activation input")
        return self.emit(node, "linear", [x], {}, _float_params(w, bias))

    def op_BatchNormalization(self, node, args, a):
        x = args[0]
        consts = [self.const(n) for n in node.input[1:5]]
        if not isinstance(x, _Act) or any(c is None for c in consts):
            return self.problem(node, "batch norm of an activation with constant statistics")
        gamma, beta, mean, var = (c.astype(np.float64) for c in consts)
        eps = float(np.float32(a.get("epsilon", 1e-5)))
        factor = gamma / np.sqrt(var + eps)
        axes = (-1,) + (1,) * (len(self.shape_of(x)) - 1)
        return self._affine(
            node, x, node.input[0], factor.reshape(axes), (beta - mean * factor).reshape(axes)
        )

    def _affine(self, node, x: _Act, x_name: str, scale, shift):
        """The same rule as the torch.export path (workloads.export._Walker._affine)."""
        shape = self.shape_of(x)
        channels = shape[0]
        vectors = []
        for value in (scale, shift):
            v = np.asarray(value, dtype=np.float64)
            while v.ndim > len(shape) and v.shape[0] == 1:
                v = v[0]
            ok = v.size in (1, channels) and (
                v.ndim == 0
                or (v.ndim == len(shape) and all(d == 1 for d in v.shape[1:]))
                or (v.ndim == 1 and len(shape) == 1)
            )
            if not ok:
                return self.problem(
                    node,
                    f"constant of shape {tuple(v.shape)}: only scalars or one value per channel",
                )
            vectors.append(np.broadcast_to(v.reshape(-1), (channels,)).astype(np.float64))
        scale, shift = vectors
        producer = self.producer.get(x.name)
        if producer is not None and producer.op in GEMM_OPS and (self.users.get(x_name, 0) == 1):
            w = producer.params["weight"].astype(np.float64)
            b = producer.params["bias"].astype(np.float64)
            producer.params.update(
                _float_params(w * scale.reshape(-1, *[1] * (w.ndim - 1)), b * scale + shift)
            )
            return x
        if len(shape) == 3:
            attrs = {"stride": [1, 1], "padding": [0, 0], "groups": channels}
            return self.emit(
                node, "conv2d", [x], attrs, _float_params(scale.reshape(channels, 1, 1, 1), shift)
            )
        if len(shape) == 1:
            return self.emit(node, "linear", [x], {}, _float_params(np.diag(scale), shift))
        return self.problem(node, f"constant arithmetic on a tensor of rank {len(shape)}")

    # -- element-wise
    def _binary(self, node, args):
        a, b = args[0], args[1]
        if isinstance(a, _Act) and isinstance(b, np.ndarray):
            return a, node.input[0], b, True
        if isinstance(b, _Act) and isinstance(a, np.ndarray):
            return b, node.input[1], a, False
        return None, None, None, None

    def op_Add(self, node, args, a):
        if all(isinstance(v, _Act) for v in args):
            if self.shape_of(args[0]) != self.shape_of(args[1]):
                return self.problem(node, "add of two activations of different shapes")
            return self.emit(node, "add", list(args), {})
        x, name, c, _ = self._binary(node, args)
        if x is None:
            return self.problem(node, "add of an activation")
        return self._affine(node, x, name, 1.0, c)

    def op_Sub(self, node, args, a):
        x, name, c, first = self._binary(node, args)
        if x is None:
            return self.problem(node, "sub of two activations is not supported (add is)")
        return (
            self._affine(node, x, name, 1.0, -c) if first else self._affine(node, x, name, -1.0, c)
        )

    def _silu(self, node, args) -> _Act | None:
        """``x * sigmoid(x)`` (how ONNX exporters write SiLU) as one silu activation."""
        for j in (0, 1):
            gate, x = args[j], args[1 - j]
            producer = self.producer.get(gate.name)
            if (
                producer is not None
                and producer.op == "activation"
                and producer.attrs["function"] == "sigmoid"
                and producer.inputs == [x.name]
                and self.users.get(node.input[j], 0) == 1
                and self.nodes
                and self.nodes[-1] is producer
            ):
                self.nodes.pop()
                del self.tensors[gate.name], self.producer[gate.name]
                return self.emit(
                    node, "activation", [x], {"function": "silu", "alpha": 0.0}, name=producer.name
                )
        return None

    def op_Mul(self, node, args, a):
        if all(isinstance(v, _Act) for v in args):
            silu = self._silu(node, args)
            if silu is not None:
                return silu
            sa, sb = self.shape_of(args[0]), self.shape_of(args[1])
            try:
                np.broadcast_shapes(sa, sb)
            except ValueError:
                return self.problem(node, f"mul of shapes {sa} and {sb}")
            if len(sa) != len(sb):
                return self.problem(node, f"mul of shapes {sa} and {sb}")
            return self.emit(node, "mul", list(args), {})
        x, name, c, _ = self._binary(node, args)
        if x is None:
            return self.problem(node, "mul of an activation")
        return self._affine(node, x, name, c, 0.0)

    def op_Div(self, node, args, a):
        x, name, c, first = self._binary(node, args)
        if x is None or not first:
            return self.problem(node, "div only of an activation by a constant")
        return self._affine(node, x, name, 1.0 / c.astype(np.float64), 0.0)

    def _clamp(self, node, x, lo, hi):
        if not isinstance(x, _Act):
            return self.problem(node, "clamp of an activation")
        lo, hi = (float(np.float32(v)) for v in (lo, hi))
        return self.emit(node, "clamp", [x], {"lo": lo, "hi": hi})

    def op_Relu(self, node, args, a):
        return self._clamp(node, args[0], 0.0, math.inf)

    def op_Clip(self, node, args, a):
        lo = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        hi = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        lo = a.get("min", -math.inf) if lo is None else float(lo)
        hi = a.get("max", math.inf) if hi is None else float(hi)
        return self._clamp(node, args[0], lo, hi)

    def _activation(self, node, x, function: str, alpha: float = 0.0):
        if not isinstance(x, _Act):
            return self.problem(node, f"{function} of an activation")
        attrs = {"function": function, "alpha": float(np.float32(alpha))}
        return self.emit(node, "activation", [x], attrs)

    def op_Sigmoid(self, node, args, a):
        return self._activation(node, args[0], "sigmoid")

    def op_HardSwish(self, node, args, a):
        return self._activation(node, args[0], "hardswish")

    def op_Tanh(self, node, args, a):
        return self._activation(node, args[0], "tanh")

    def op_HardSigmoid(self, node, args, a):
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and math.isclose(beta, 0.5)):
            return self.problem(
                node, f"HardSigmoid alpha={alpha}, beta={beta}: only PyTorch's (1/6, 0.5)"
            )
        return self._activation(node, args[0], "hardsigmoid")

    def op_LeakyRelu(self, node, args, a):
        return self._activation(node, args[0], "leaky_relu", float(a.get("alpha", 0.01)))

    def op_Elu(self, node, args, a):
        return self._activation(node, args[0], "elu", float(a.get("alpha", 1.0)))

    def op_Softplus(self, node, args, a):
        return self._activation(node, args[0], "softplus")

    def op_Mish(self, node, args, a):
        return self._activation(node, args[0], "mish")

    def op_Gelu(self, node, args, a):
        tanh = a.get("approximate", "none") == "tanh"
        return self._activation(node, args[0], "gelu_tanh" if tanh else "gelu")

    # -- pooling
    def _pool(self, node, args, a, op: str):
        x = args[0]
        if not isinstance(x, _Act):
            return self.problem(node, "pooling of an activation")
        kernel = [int(v) for v in a["kernel_shape"]]
        stride = [int(v) for v in a.get("strides", [1, 1])]
        pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or pads[:2] != pads[2:]:
            return self.problem(node, f"pooling padding {pads} / auto_pad: only symmetric pads")
        if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            return self.problem(node, "dilated pooling")
        attrs: dict[str, Any] = {"kernel": kernel, "stride": stride, "padding": pads[:2]}
        ceil = bool(a.get("ceil_mode", 0))
        if op == "maxpool2d":
            if ceil:
                attrs["ceil_mode"] = True
        else:
            include = bool(a.get("count_include_pad", 0))
            if any(pads) or ceil or not include:
                attrs.update({"ceil_mode": ceil, "count_include_pad": include})
            if not any(pads) and not ceil:
                attrs = {"kernel": kernel, "stride": stride}  # count_include_pad is moot
        return self.emit(node, op, [x], attrs)

    def op_MaxPool(self, node, args, a):
        if len(node.output) > 1 and node.output[1]:
            return self.problem(node, "MaxPool with indices")
        return self._pool(node, args, a, "maxpool2d")

    def op_AveragePool(self, node, args, a):
        return self._pool(node, args, a, "avgpool2d")

    def op_GlobalAveragePool(self, node, args, a):
        if not isinstance(args[0], _Act):
            return self.problem(node, "pooling of an activation")
        return self.emit(node, "global_avgpool", [args[0]], {})

    def op_ReduceMean(self, node, args, a):
        x = args[0]
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.const(node.input[1])
        if not isinstance(x, _Act) or axes is None or sorted(int(v) % 4 for v in axes) != [2, 3]:
            return self.problem(node, "ReduceMean only over H and W of an (N, C, H, W) tensor")
        pooled = self.emit(node, "global_avgpool", [x], {})
        if a.get("keepdims", 1):
            return pooled
        return self.emit(node, "flatten", [pooled], {}, name=self.unique(pooled.name + ".flat"))

    # -- channels and views
    def op_Concat(self, node, args, a):
        if not all(isinstance(v, _Act) for v in args):
            return self.problem(node, "Concat of activations only")
        if int(a["axis"]) % (len(self.shape_of(args[0])) + 1) != 1:
            return self.problem(node, f"Concat along axis {a['axis']}: only the channel axis")
        return args[0] if len(args) == 1 else self.emit(node, "concat", list(args), {})

    def op_Split(self, node, args, a):
        x = args[0]
        if not isinstance(x, _Act) or int(a.get("axis", 0)) % (len(self.shape_of(x)) + 1) != 1:
            return self.problem(node, "Split only along the channel axis")
        c = self.shape_of(x)[0]
        split = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        split = a.get("split") if split is None else split
        if split is None:
            size = -(-c // len(node.output))
            split = [min(size, c - s) for s in range(0, c, size)]
        outs, start = [], 0
        for j, size in enumerate(int(v) for v in split):
            name = self.unique(f"{self.node_name(node)}.{j}") if j else None
            outs.append(
                self.emit(
                    node,
                    "select_channels",
                    [x],
                    {"channels": list(range(start, start + size))},
                    name=name,
                )
            )
            start += size
        return outs

    def op_Slice(self, node, args, a):
        x = args[0]
        starts, ends = self.const(node.input[1]), self.const(node.input[2])
        axes = self.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        steps = self.const(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if not isinstance(x, _Act) or starts is None or ends is None:
            return self.problem(node, "Slice of an activation with constant bounds")
        shape = self.shape_of(x)
        axes = range(len(starts)) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        result = x
        for start, end, axis, step in zip(starts, ends, axes, steps):
            axis = int(axis) % (len(shape) + 1)
            if axis != 1:
                return self.problem(node, f"Slice along axis {axis}: only the channel axis")
            channels = list(
                range(*slice(int(start), int(min(end, 1 << 62)), int(step)).indices(shape[0]))
            )
            if channels != list(range(shape[0])):
                result = self.emit(node, "select_channels", [x], {"channels": channels})
        return result

    def op_Flatten(self, node, args, a):
        x = args[0]
        if not isinstance(x, _Act) or int(a.get("axis", 1)) != 1:
            return self.problem(node, "Flatten to (batch, features) only")
        if len(self.shape_of(x)) == 1:
            return x
        return self.emit(node, "flatten", [x], {})

    def op_Reshape(self, node, args, a):
        x, target = args[0], self.const(node.input[1])
        if target is None:
            return self.problem(node, "Reshape to a constant shape")
        act = x.act if isinstance(x, _Grouped) else x
        if not isinstance(act, _Act):
            return self.problem(node, "Reshape of an activation")
        shape_in = self.shape_of(act)
        full_in = (
            self.batch,
            *(
                shape_in
                if not isinstance(x, _Grouped)
                else (x.groups, shape_in[0] // x.groups, *shape_in[1:])
            ),
        )
        target = [full_in[j] if int(v) == 0 else int(v) for j, v in enumerate(target)]
        out = np.empty(full_in, dtype=np.int8).reshape(target).shape
        shape_out = tuple(out[1:])
        if isinstance(x, _Grouped):
            if shape_out != shape_in:
                return self.problem(node, f"reshape of a channel-grouped view to {shape_out}")
            return self._shuffle(node, act, x.groups) if x.swapped else act
        if shape_out == shape_in:
            return x
        if len(shape_out) == 1:
            return self.emit(node, "flatten", [x], {})
        if (
            len(shape_in) == 3
            and len(shape_out) == 4
            and shape_out[2:] == shape_in[1:]
            and shape_out[0] * shape_out[1] == shape_in[0]
        ):
            return _Grouped(x, int(shape_out[0]))
        return self.problem(
            node, f"reshape {shape_in} -> {shape_out} is not a flatten or a channel shuffle"
        )

    def op_Transpose(self, node, args, a):
        x = args[0]
        if isinstance(x, _Grouped) and [int(v) for v in a.get("perm", [])] == [0, 2, 1, 3, 4]:
            return _Grouped(x.act, x.groups, not x.swapped)
        return self.problem(
            node,
            "Transpose of an activation (only the channel shuffle "
            "pattern Reshape -> Transpose(0, 2, 1, 3, 4) -> Reshape)",
        )

    def _shuffle(self, node, x: _Act, groups: int) -> _Act:
        c = self.shape_of(x)[0]
        per = c // groups
        channels = [(j % groups) * per + j // groups for j in range(c)]
        return self.emit(node, "select_channels", [x], {"channels": channels})

    def op_Resize(self, node, args, a):
        x = args[0]
        if not isinstance(x, _Act) or a.get("mode", "nearest") != "nearest":
            return self.problem(node, f"Resize mode {a.get('mode')!r}: only nearest")
        c, h, w = self.shape_of(x)
        scales = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        sizes = self.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        if sizes is not None and sizes.size:
            factors = [int(sizes[2]) / h, int(sizes[3]) / w]
        elif scales is not None and scales.size:
            factors = [float(scales[2]), float(scales[3])]
        else:
            return self.problem(node, "Resize without constant scales or sizes")
        if any(f != int(f) or f < 1 for f in factors):
            return self.problem(node, f"nearest resize by {factors}: only integer factors")
        return self.emit(node, "upsample_nearest", [x], {"scale": [int(f) for f in factors]})

    def op_Upsample(self, node, args, a):
        return self.op_Resize(node, [args[0], None, args[1]], a)


def _float_params(weight, bias) -> dict[str, np.ndarray]:
    return {
        "weight": np.ascontiguousarray(weight, dtype=np.float32),
        "bias": np.ascontiguousarray(bias, dtype=np.float32),
    }


def export_onnx(model, calibration_data, *, name: str | None = None) -> Graph:
    """An ONNX model (path or ``onnx.ModelProto``) as an accelsim float graph, calibrated on
    ``calibration_data`` (array of samples shaped like the model's input, batch first)."""
    from .export import calibrate

    onnx = _onnx()
    source = None
    if isinstance(model, (str, Path)):
        source = Path(model)
        if not source.is_file():
            raise AccelsimError("ONNX file not found", file=source)
        try:
            model = onnx.load(str(source))
        except Exception as exc:  # protobuf decode errors have many types
            raise AccelsimError(
                f"not a readable ONNX model ({type(exc).__name__}: {exc})", file=source
            ) from None
    name = name or (model.graph.name or (source.stem if source else "onnx_model"))
    try:
        graph = _Converter(onnx, model, name).run()
    except AccelsimError as exc:
        if source is not None and exc.file is None:
            exc.file = str(source)
        raise
    samples = calibrate(graph, calibration_data)
    graph.metadata = {
        "source": "onnx",
        "onnx_file": source.name if source else None,
        "opset": [int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")],
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "calibration_samples": samples,
    }
    validate_graph(graph)
    return graph


def export_onnx_file(
    path: str | Path, *, calibration: str | Path | None = None, seed: int = 0
) -> Graph:
    """``python -m accelsim export model.onnx``: calibrated on ``calibration`` (.npz / .npy)
    or on 8 seeded standard-normal samples."""
    from .export import load_calibration

    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise AccelsimError("ONNX file not found", file=path)
    proto = onnx.load(str(path))
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if inputs:
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if calibration is not None:
        data = load_calibration(calibration, dims[1:])
        described = f"{Path(calibration).name} ({len(data)} samples)"
    else:
        rng = np.random.default_rng(seed)
        data = rng.standard_normal((CALIBRATION_SAMPLES_RANDOM, *dims[1:])).astype(np.float32)
        described = "seeded standard normal"
    graph = export_onnx(proto, data, name=proto.graph.name or path.stem)
    graph.metadata.update({"onnx_file": path.name, "seed": seed, "calibration": described})
    return graph
