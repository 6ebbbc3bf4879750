"""The reference executor: the oracle every other value path is checked against.

Plain numpy, int64 throughout for integer graphs, written as the direct definition of each op
in docs/semantics.md (speed is not its job; being obviously right is). conv2d and linear loop
over the reduction index k in ascending order and apply the accumulator's overflow rule after
every addition, exactly as the contract states; the loop is vectorised only over batch, output
positions and output channels. Nothing is shared with the simulator's GEMM lowering, so the two
are independent.

Float graphs run the same ops in float64 (no torch), so a float model can be evaluated anywhere.
"""

from __future__ import annotations

import numpy as np

from .errors import AccelsimError
from .intmath import overflow_array, requantize_array
from .ir import (
    Graph,
    Node,
    TensorSpec,
    adaptive_windows,
    attr,
    conv_padding,
    pool_out,
    validate_graph,
)
from .ops import OP_SPECS, implements

# ---- integer ops -----------------------------------------------------------------------------


def _windows(
    x: np.ndarray, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int, dh: int = 1, dw: int = 1
):
    """Yield ``(i, j, x[..., i*dh + sh*oh, j*dw + sw*ow])`` for every kernel offset, row-major."""
    for i in range(kh):
        for j in range(kw):
            r, c = i * dh, j * dw
            yield i, j, x[..., r : r + sh * (oh - 1) + 1 : sh, c : c + sw * (ow - 1) + 1 : sw]


def _conv_geometry(node: Node, x: np.ndarray) -> tuple:
    n_out, c_group, kh, kw = node.params["weight"].shape
    groups = int(node.attrs["groups"])
    (sh, sw), pads = node.attrs["stride"], conv_padding(node)
    ph, pw, eh, ew = pads
    dh, dw = attr(node, "dilation")
    _, _, h, w = x.shape
    oh = (h + ph + eh - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pw + ew - dw * (kw - 1) - 1) // sw + 1
    # input channel read by output channel n at local channel c: in_base[n] + c
    in_base = (np.arange(n_out) // (n_out // groups)) * c_group
    return n_out, c_group, kh, kw, sh, sw, pads, oh, ow, in_base, dh, dw


def _pad_conv(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    ph, pw, eh, ew = pads
    return np.pad(x, ((0, 0), (0, 0), (ph, eh), (pw, ew)))  # padding zeros are real zeros


def _conv2d_int(node: Node, x: np.ndarray) -> np.ndarray:
    weight = node.params["weight"].astype(np.int64)
    bias = node.params["bias"].astype(np.int64)
    acc_bits, overflow = int(node.attrs["acc_bits"]), str(node.attrs["overflow"])
    n_out, c_group, kh, kw, sh, sw, pads, oh, ow, in_base, dh, dw = _conv_geometry(node, x)
    xp = _pad_conv(x, pads)
    acc = np.broadcast_to(bias[None, :, None, None], (x.shape[0], n_out, oh, ow)).copy()
    for c in range(c_group):  # k = c*KH*KW + i*KW + j, ascending
        channel = xp[:, in_base + c]  # (B, N, Hp, Wp): each output channel's own input
        for i, j, patch in _windows(channel, kh, kw, sh, sw, oh, ow, dh, dw):
            product = patch * weight[:, c, i, j][None, :, None, None]
            acc = overflow_array(acc + product, acc_bits, overflow)
    return _requantize_gemm(node, acc, channel_axis=1)


def _linear_int(node: Node, x: np.ndarray) -> np.ndarray:
    weight = node.params["weight"].astype(np.int64)
    acc_bits, overflow = int(node.attrs["acc_bits"]), str(node.attrs["overflow"])
    acc = np.broadcast_to(node.params["bias"][None, :], (x.shape[0], weight.shape[0])).copy()
    for k in range(weight.shape[1]):  # ascending k
        acc = overflow_array(acc + x[:, k, None] * weight[None, :, k], acc_bits, overflow)
    return _requantize_gemm(node, acc, channel_axis=1)


def _requantize_gemm(node: Node, acc: np.ndarray, channel_axis: int) -> np.ndarray:
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    a = node.attrs
    return requantize_array(
        acc,
        node.params["multiplier"].reshape(shape),
        node.params["shift"].reshape(shape),
        int(a["out_zero_point"]),
        int(a["out_lo"]),
        int(a["out_hi"]),
    )


def _pool_geometry(node: Node, x: np.ndarray) -> tuple:
    (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
    (ph, pw), ceil_mode = attr(node, "padding"), bool(attr(node, "ceil_mode"))
    _, _, h, w = x.shape
    oh, ow = pool_out(h, kh, sh, ph, ceil_mode), pool_out(w, kw, sw, pw, ceil_mode)
    # symmetric padding, plus what the last (ceil_mode) window reaches beyond it
    extra_h = max(0, (oh - 1) * sh + kh - (h + 2 * ph))
    extra_w = max(0, (ow - 1) * sw + kw - (w + 2 * pw))
    pads = ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w))
    return kh, kw, sh, sw, ph, pw, oh, ow, pads


def _maxpool(node: Node, x: np.ndarray, pad_value) -> np.ndarray:
    kh, kw, sh, sw, _, _, oh, ow, pads = _pool_geometry(node, x)
    xp = np.pad(x, pads, constant_values=pad_value)
    out = None
    for _, _, patch in _windows(xp, kh, kw, sh, sw, oh, ow):
        out = patch.copy() if out is None else np.maximum(out, patch)
    return out


def _avgpool_divisors(
    size: int, kernel: int, stride: int, pad: int, out: int, include_pad: bool
) -> np.ndarray:
    """Per output position along one axis, how many positions its window divides by
    (PyTorch's rule: the window clipped to input + padding, or to the input alone)."""
    start = np.arange(out) * stride - pad
    end = np.minimum(start + kernel, size + pad)
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _window_sums(node: Node, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | int]:
    """Sum over each window (padding as zeros) and its divisor (array per position)."""
    kh, kw, sh, sw, ph, pw, oh, ow, pads = _pool_geometry(node, x)
    xp = np.pad(x, pads)
    total = sum(patch for _, _, patch in _windows(xp, kh, kw, sh, sw, oh, ow))
    include = bool(attr(node, "count_include_pad"))
    dh = _avgpool_divisors(x.shape[2], kh, sh, ph, oh, include)
    dw = _avgpool_divisors(x.shape[3], kw, sw, pw, ow, include)
    count = dh[:, None] * dw[None, :]
    if np.all(count == kh * kw):
        return total, kh * kw
    return total, count


def _adaptive_sums(node: Node, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and element count of every adaptive pooling window, from 2-D prefix sums."""
    oh, ow = (int(v) for v in node.attrs["output_size"])
    _, _, h, w = x.shape
    (h0, h1), (w0, w1) = (
        (np.array(v) for v in adaptive_windows(h, oh)),
        (np.array(v) for v in adaptive_windows(w, ow)),
    )
    prefix = np.zeros((*x.shape[:2], h + 1, w + 1), dtype=x.dtype)
    prefix[:, :, 1:, 1:] = x.cumsum(axis=2).cumsum(axis=3)
    a, b = h0[:, None], h1[:, None]
    c, d = w0[None, :], w1[None, :]
    total = prefix[:, :, b, d] - prefix[:, :, a, d] - prefix[:, :, b, c] + prefix[:, :, a, c]
    return total, (b - a) * (d - c)


def _round_half_up_mean(total: np.ndarray, count) -> np.ndarray:
    """``floor((2*sum + count) / (2*count))``: the mean rounded half up, in integers."""
    return (2 * total + count) // (2 * count)


def _requant(node: Node, values: np.ndarray, multiplier) -> np.ndarray:
    a = node.attrs
    return requantize_array(
        values,
        multiplier,
        int(a["shift"]),
        int(a["out_zero_point"]),
        int(a["out_lo"]),
        int(a["out_hi"]),
    )


def _upsample(node: Node, x: np.ndarray) -> np.ndarray:
    sh, sw = (int(v) for v in node.attrs["scale"])
    return np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)


def activation_float(function: str, alpha: float, x: np.ndarray) -> np.ndarray:
    """The real function of an ``activation`` node, in float64 (PyTorch's definitions).

    The float executor runs it and the quantiser tabulates it; one definition for both.
    """
    from scipy.special import erf

    x = np.asarray(x, dtype=np.float64)
    relu6_x3 = np.clip(x + 3.0, 0.0, 6.0)
    if function == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow
    if function == "hardsigmoid":
        return relu6_x3 / 6.0
    if function == "silu":
        return x * 0.5 * (1.0 + np.tanh(0.5 * x))
    if function == "hardswish":
        return x * relu6_x3 / 6.0
    if function == "tanh":
        return np.tanh(x)
    if function == "gelu":
        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    if function == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    if function == "leaky_relu":
        return np.where(x >= 0.0, x, alpha * x)
    if function == "softplus":
        return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))  # PyTorch's threshold
    if function == "mish":
        return x * np.tanh(np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0)))))
    if function == "elu":
        return np.where(x > 0.0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    raise ValueError(f"unknown activation {function!r}")


@implements("integer", "conv2d")
def _conv2d_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _conv2d_int(node, inputs[0])


@implements("integer", "linear")
def _linear_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _linear_int(node, inputs[0])


@implements("integer", "maxpool2d")
def _maxpool_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _maxpool(node, inputs[0], np.iinfo(np.int64).min)  # padding never wins


@implements("integer", "avgpool2d")
def _avgpool_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _round_half_up_mean(*_window_sums(node, inputs[0]))


@implements("integer", "adaptive_avgpool2d")
def _adaptive_avgpool_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _round_half_up_mean(*_adaptive_sums(node, inputs[0]))


@implements("integer", "global_avgpool")
def _global_avgpool_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    total = x.sum(axis=(2, 3), keepdims=True)
    if "multiplier" in node.params:  # the requantising form
        return _requant(node, total, node.params["multiplier"])
    return _round_half_up_mean(total, x.shape[2] * x.shape[3])


@implements("integer", "add")
def _add_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    ma, mb = node.params["multiplier_a"], node.params["multiplier_b"]
    return _requant(node, inputs[0] * ma + inputs[1] * mb, 1)


@implements("integer", "mul")
def _mul_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _requant(node, inputs[0] * inputs[1], node.params["multiplier"])


@implements("integer", "concat")
def _concat_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    multipliers = node.params["multipliers"]
    return np.concatenate([_requant(node, v, m) for v, m in zip(inputs, multipliers)], axis=1)


@implements("integer", "activation")
def _activation_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    lo = graph.tensors[node.inputs[0]].value_range()[0]
    return node.params["table"][inputs[0] - lo]


@implements("integer", "clamp")
def _clamp_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return np.clip(inputs[0], int(node.attrs["lo"]), int(node.attrs["hi"]))


@implements("integer", "requantize")
def _requantize_integer(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _requant(node, inputs[0], node.params["multiplier"])


# ---- ops that only move values: the same code for both kinds -------------------------------


@implements("integer", "flatten")
@implements("float", "flatten")
def _flatten(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return inputs[0].reshape(inputs[0].shape[0], -1)


@implements("integer", "select_channels")
@implements("float", "select_channels")
def _select_channels(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return inputs[0][:, node.attrs["channels"]]


@implements("integer", "upsample_nearest")
@implements("float", "upsample_nearest")
def _upsample_nearest(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _upsample(node, inputs[0])


# ---- float ops -----------------------------------------------------------------------------


def _conv2d_float(node: Node, x: np.ndarray) -> np.ndarray:
    weight = node.params["weight"].astype(np.float64)
    n_out, c_group, kh, kw, sh, sw, pads, oh, ow, in_base, dh, dw = _conv_geometry(node, x)
    xp = _pad_conv(x, pads)
    out = np.broadcast_to(
        node.params["bias"].astype(np.float64)[None, :, None, None], (x.shape[0], n_out, oh, ow)
    ).copy()
    for c in range(c_group):
        channel = xp[:, in_base + c]
        for i, j, patch in _windows(channel, kh, kw, sh, sw, oh, ow, dh, dw):
            out += patch * weight[:, c, i, j][None, :, None, None]
    return out


@implements("float", "conv2d")
def _conv2d_float_op(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _conv2d_float(node, inputs[0])


@implements("float", "linear")
def _linear_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    w = node.params["weight"].astype(np.float64)
    return inputs[0] @ w.T + node.params["bias"].astype(np.float64)[None, :]


@implements("float", "maxpool2d")
def _maxpool_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return _maxpool(node, inputs[0], -np.inf)


@implements("float", "avgpool2d")
def _avgpool_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    total, count = _window_sums(node, inputs[0])
    return total / count


@implements("float", "adaptive_avgpool2d")
def _adaptive_avgpool_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    total, count = _adaptive_sums(node, inputs[0])
    return total / count


@implements("float", "global_avgpool")
def _global_avgpool_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return inputs[0].mean(axis=(2, 3), keepdims=True)


@implements("float", "add")
def _add_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return inputs[0] + inputs[1]


@implements("float", "mul")
def _mul_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return inputs[0] * inputs[1]


@implements("float", "concat")
def _concat_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(inputs, axis=1)


@implements("float", "activation")
def _activation_float_op(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    function, alpha = str(node.attrs["function"]), float(node.attrs["alpha"])
    return activation_float(function, alpha, inputs[0])


@implements("float", "clamp")
def _clamp_float(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    return np.clip(inputs[0], float(node.attrs["lo"]), float(node.attrs["hi"]))


# ---- public API ----------------------------------------------------------------------------


def checked_inputs(graph: Graph, node: Node, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """``node``'s inputs as arrays of the graph's dtype (int64 or float64; no copy where they
    already are), each shape checked against its tensor spec (a mismatch: ValueError)."""
    dtype = np.int64 if graph.kind == "integer" else np.float64
    arrays = []
    for name, value in zip(node.inputs, inputs, strict=True):
        value = np.asarray(value)
        expected = graph.tensors[name].shape
        if value.shape[1:] != expected:
            raise ValueError(
                f"node {node.name!r}: input {name!r} has shape {value.shape}, "
                f"expected (batch, *{expected})"
            )
        arrays.append(value.astype(dtype, copy=False))
    return arrays


def run_node(graph: Graph, node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """Compute one node on batched inputs (leading batch axis).

    Integer graphs: int64 in, int64 out. Float graphs: float64. The simulator uses this as its
    vector unit for the non-GEMM ops, so the signature is stable. Input shapes are checked
    against the graph's tensor specs (a mismatch is a caller bug: ValueError).
    """
    dtype = np.int64 if graph.kind == "integer" else np.float64
    arrays = checked_inputs(graph, node, inputs)
    run = OP_SPECS[node.op].run.get(graph.kind) if node.op in OP_SPECS else None
    if run is None:
        raise ValueError(f"{graph.kind} executor has no op {node.op!r}")
    out = run(graph, node, arrays)
    return np.ascontiguousarray(out, dtype=dtype)


def _check_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    spec = graph.tensors[graph.input]
    key = f"input ({graph.input})"
    x = np.asarray(x)
    if x.shape[1:] != spec.shape or x.ndim != len(spec.shape) + 1:
        raise AccelsimError(
            f"input batch has shape {x.shape}",
            key=key,
            allowed=f"(batch, {', '.join(map(str, spec.shape))})",
        )
    if graph.kind == "float":
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise AccelsimError(f"input dtype {x.dtype}", key=key, allowed="real numbers")
        return x.astype(np.float64)
    if not np.issubdtype(x.dtype, np.integer):
        raise AccelsimError(
            f"input dtype {x.dtype} for an integer graph",
            key=key,
            allowed="integers (use quantize_input for real-valued data)",
        )
    lo, hi = spec.value_range()
    if x.size and (int(x.min()) < lo or int(x.max()) > hi):
        raise AccelsimError(
            f"input values in [{int(x.min())}, {int(x.max())}]",
            key=key,
            allowed=f"[{lo}, {hi}] ({spec.bits}-bit {'signed' if spec.signed else 'unsigned'})",
        )
    return x.astype(np.int64)


def execute(
    graph: Graph, x: np.ndarray, *, keep_all: bool = False
) -> np.ndarray | dict[str, np.ndarray]:
    """Run the whole graph on batch ``x``; the output tensor, or every tensor if ``keep_all``.

    Integer graphs take integers within the input tensor's range; float graphs take reals
    and compute in float64.
    """
    validate_graph(graph)
    values = {graph.input: _check_input(graph, x)}
    for node in graph.nodes:
        values[node.output] = run_node(graph, node, [values[name] for name in node.inputs])
    return values if keep_all else values[graph.output]


def quantize_input(graph: Graph, x_float: np.ndarray) -> np.ndarray:
    """Real-valued input -> the integer graph's input integers.

    ``q = clamp(floor(x / scale + 0.5) + zero_point, lo, hi)`` (round half up, like every
    rounding in the datapath).
    """
    if graph.kind != "integer":
        raise ValueError(f"quantize_input needs an integer graph, got a {graph.kind} graph")
    spec = graph.tensors[graph.input]
    lo, hi = spec.value_range()
    q = np.floor(np.asarray(x_float, dtype=np.float64) / spec.scale + 0.5) + spec.zero_point
    return np.clip(q, lo, hi).astype(np.int64)


def dequantize(spec: TensorSpec, q: np.ndarray) -> np.ndarray:
    """Integers of tensor ``spec`` -> the reals they stand for: ``scale * (q - zero_point)``."""
    return spec.scale * (np.asarray(q, dtype=np.float64) - spec.zero_point)
