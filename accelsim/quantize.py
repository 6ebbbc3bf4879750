"""Float graph -> integer graph (numpy only; never imports torch).

The scheme (docs/semantics.md §1):

* **Weights**: symmetric, per output channel, signed ``w_bits``:
  ``s_w[n] = max|W[n]| / (2**(w_bits-1) - 1)``, ``q = round(W / s_w)`` in
  ``[-(2**(w_bits-1) - 1), 2**(w_bits-1) - 1]`` (the most negative code is unused, so the
  scheme is symmetric).
* **Activations**: per tensor, zero point 0, scale from the calibration min/max of the float
  graph. A conv2d/linear/add followed by a clamp (ReLU, ReLU6) that alone reads its output is
  fused: the layer's ``out_lo/out_hi`` do the clamp and the tensor is unsigned. Every other
  requantised tensor is signed.
* **Reserved MSBs r** (algorithm-layer constraint): a requantised tensor of b bits is confined
  to ``[-2**(b-1-r), 2**(b-1-r) - 1]`` (signed) or ``[0, 2**(b-r) - 1]`` (unsigned) by the
  saturating clamp; its declared width stays b and so does its scale (the calibrated range
  over the full b bits), so r is a real *clip bound*: values above ``calib_max / 2**r`` are
  clipped. A fault that corrupts an accumulator or product can then push an activation no
  higher than the bound — the algorithm-layer lever of the method (DESIGN.md): r trades a
  little accuracy (clipped outliers) for smaller damage from high-order flips. The network's
  output (the logits) is not clipped.
* **Bias**: ``round(b / (s_in * s_w[n]))`` in the accumulator (acc_bits, saturated to fit).
* **Requantisation**: ``s_in * s_w[n] / s_out`` as ``multiplier * 2**-shift`` with a 31-bit
  multiplier (:func:`accelsim.intmath.quantize_multiplier`), shift in [0, 62].
* **Residual add**: ``y = clamp(rshift(a*ma + b*mb, shift))`` with
  ``ma = round(s_a / s_y * 2**shift)``, ``mb`` likewise, shift as large as keeps both below 2**31.
* **Pooling, flatten, channel selection and nearest upsampling** keep their input's scale,
  width and signedness — except **global average pooling**, which requantises the window sum
  to the pooled tensor's own calibrated range (``multiplier * 2**-shift ≈ s_in / (H*W*s_out)``)
  so that low bit widths keep their resolution.
* **Concat**: one output scale (its calibration range); every input requantised to it with
  its own multiplier and a shared shift (as for add). Unsigned if all inputs are.
* **Mul** of two activations: ``y = requantize(a*b)`` with ``multiplier * 2**-shift ≈
  s_a*s_b/s_y``; a clamp that alone reads it is fused like after a layer.
* **Activation** (sigmoid, SiLU, hardswish, GELU, ...): a lookup table over every input code,
  ``table[q - lo] = clamp(round_half_up(f(s_in*q) / s_out))``, with ``s_out`` from the
  function output's calibration range (signed iff its minimum is negative).
* **Graph input**: quantised with the activation bits of the first layer (per-layer override
  included), unsigned when its calibration minimum is >= 0, signed otherwise, over the full
  range of that width (r confines requantised tensors only; the input is not requantised).
  Use :func:`accelsim.executor.quantize_input` to turn real inputs into its integers.

Per-layer overrides (``per_layer``) name conv2d/linear layers; a layer's ``activation_bits`` and
``reserved_msbs`` apply to the tensor it writes, ``weight_bits`` and ``acc_bits`` to itself.
Add nodes use the global settings.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .caches import UserCache, cached_entry
from .config import LayerQuantization, QuantizationConfig
from .errors import AccelsimError
from .intmath import quantize_multiplier
from .ir import (
    GEMM_OPS,
    MULTIPLIER_LIMIT,
    QUANTIZATION_RANGES,
    SHIFT_RANGE,
    Graph,
    Node,
    TensorSpec,
    load_graph,
    save_graph,
    validate_graph,
)
from .ops import OP_SPECS, quantises

SCHEME_VERSION = 2  # part of quantization_key: bump when the arithmetic below changes
# 2: global average pooling requantises to its own range (global_avgpool with a multiplier)
# integer graphs of quantize_cached, one file per quantization_key (a path-like resolved at
# each use, so ACCELSIM_CACHE_DIR set later still counts; tests point it elsewhere)
QUANTIZED_CACHE = UserCache("quantized")
# an optimisation over bit widths writes one entry per combination (ResNet-18: 12 MB each,
# VGG-16 at 224: ~140 MB): the least recently used go beyond this
QUANTIZED_CACHE_LIMIT_BYTES = 1 << 30
PASS_THROUGH_OPS = (
    "maxpool2d",
    "avgpool2d",
    "adaptive_avgpool2d",
    "flatten",
    "select_channels",
    "upsample_nearest",
)


def quantization_key(
    float_graph: Graph, settings: QuantizationConfig, *, graph_hash: str | None = None
) -> str:
    """sha256 of the float graph's content hash, the settings and the scheme version (cache
    key). The JSON field is still called ``spec`` so that keys made before the settings model
    moved into the core stay valid. ``graph_hash``: ``float_graph.content_hash()`` if the
    caller has it (0.04 s for ResNet-18)."""
    text = json.dumps(
        {
            "graph": graph_hash or float_graph.content_hash(),
            "spec": settings.to_json(),
            "scheme": SCHEME_VERSION,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- arithmetic helpers --------------------------------------------------------------------


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def _quantised(real: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``clip(round_half_up(real), lo, hi)`` as int64, in place on ``real`` (a temporary):
    the same floats as :func:`_round_half_up`, without an array per step (ResNet-18's
    weights are 11M values, quantised on every run)."""
    real += 0.5
    np.floor(real, out=real)
    np.clip(real, lo, hi, out=real)
    return real.astype(np.int64)


def confined_range(bits: int, signed: bool, reserved_msbs: int) -> tuple[int, int]:
    """Integer range of a requantised tensor of ``bits`` bits with ``reserved_msbs`` reserved."""
    if signed:
        magnitude = bits - 1 - reserved_msbs
        return -(1 << magnitude), (1 << magnitude) - 1
    return 0, (1 << (bits - reserved_msbs)) - 1


def fixed_point(real: float) -> tuple[int, int]:
    """``real ≈ multiplier * 2**-shift`` with ``0 <= multiplier < 2**31``, shift in [0, 62]."""
    if not real > 0.0:
        return 0, 0
    multiplier, shift = quantize_multiplier(real)
    if shift < SHIFT_RANGE[0] or shift > SHIFT_RANGE[1]:
        shift = min(max(shift, SHIFT_RANGE[0]), SHIFT_RANGE[1])
        multiplier = int(_round_half_up(math.ldexp(real, shift)))
    if multiplier >= MULTIPLIER_LIMIT:
        raise AccelsimError(
            f"requantisation factor {real:.4g} is too large for a 31-bit multiplier",
            allowed="output scales at least 2**-31 of the product scale",
        )
    return multiplier, shift


def _range_of(spec: TensorSpec, where: str) -> tuple[float, float]:
    if spec.calib_min is None or spec.calib_max is None:
        raise AccelsimError(
            f"tensor {spec.name!r} has no calibration statistics ({where})",
            allowed="a float graph exported with calibration data",
        )
    return float(spec.calib_min), float(spec.calib_max)


def _scale_for(lo: float, hi: float, q_hi: int) -> float:
    amax = max(abs(lo), abs(hi))
    if not math.isfinite(amax) or amax <= 0.0:
        amax = 1.0  # a constant-zero tensor: any scale represents it exactly
    return amax / q_hi


# ---- the quantiser -------------------------------------------------------------------------


class _Quantizer:
    def __init__(
        self,
        graph: Graph,
        settings: QuantizationConfig,
        source: str | Path | None,
        graph_hash: str | None = None,
    ) -> None:
        self.graph, self.settings = graph, settings
        self.graph_hash = graph_hash
        self.source = str(source) if source is not None else None
        self.specs: dict[str, TensorSpec] = {}
        self.nodes: list[Node] = []
        readers: dict[str, list[Node]] = {}
        for node in graph.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node)
        self.readers = readers

    def check_settings(self) -> None:
        settings, graph = self.settings, self.graph
        layers = [n.name for n in graph.layers()]
        if not layers:
            raise AccelsimError(f"graph {graph.name!r} has no conv2d/linear layer to quantise")
        for name in settings.per_layer:
            if name not in layers:
                raise AccelsimError(
                    f"no layer named {name!r} in graph {graph.name!r}",
                    file=self.source,
                    key=f"quantization.per_layer.{name}",
                    allowed=layers,
                )
        if settings.overflow not in ("wrap", "saturate"):
            raise AccelsimError(
                f"overflow {settings.overflow!r}",
                file=self.source,
                key="quantization.overflow",
                allowed="wrap, saturate",
            )
        for name in [None, *settings.per_layer]:
            s = settings.for_layer(name)
            key = "quantization" if name is None else f"quantization.per_layer.{name}"
            for what, (lo, hi) in QUANTIZATION_RANGES.items():
                value = getattr(s, what)
                if what == "reserved_msbs":
                    hi = min(hi, s.activation_bits - 2)
                if not lo <= value <= hi:
                    raise AccelsimError(
                        f"{what} = {value}",
                        file=self.source,
                        key=f"{key}.{what}",
                        allowed=f"[{lo}, {hi}]"
                        + (" (r < activation_bits - 1)" if what == "reserved_msbs" else ""),
                    )

    def fused_clamp(self, node: Node) -> Node | None:
        """The clamp that alone reads ``node``'s output (fused into its out_lo/out_hi)."""
        readers = self.readers.get(node.output, [])
        if node.output == self.graph.output or len(readers) != 1 or readers[0].op != "clamp":
            return None
        return readers[0]

    def requantised_spec(
        self,
        node: Node,
        clamp: Node | None,
        settings: LayerQuantization,
        signed: bool | None = None,
    ):
        """Output spec and [out_lo, out_hi] of a requantising node (GEMM, add, ...)."""
        out_name = clamp.output if clamp is not None else node.output
        float_spec = self.graph.tensors[out_name]
        lo_real, hi_real = _range_of(float_spec, f"output of {node.name!r}")
        if signed is None:
            signed = not (clamp is not None and float(clamp.attrs["lo"]) >= 0.0)
        bits, r = settings.activation_bits, settings.reserved_msbs
        if out_name == self.graph.output:
            r = 0  # the clip bound is for hidden activations; the logits keep their range
        q_lo, q_hi = confined_range(bits, signed, r)
        scale = _scale_for(lo_real, hi_real, confined_range(bits, signed, 0)[1])
        out_lo, out_hi = q_lo, q_hi
        if clamp is not None:
            out_lo, out_hi = _clamp_codes(clamp, scale, q_lo, q_hi)
        spec = TensorSpec(
            out_name,
            float_spec.shape,
            bits,
            signed,
            scale,
            0,
            float_spec.calib_min,
            float_spec.calib_max,
        )
        return spec, out_lo, out_hi

    def input_spec(self) -> TensorSpec:
        graph = self.graph
        float_spec = graph.tensors[graph.input]
        lo, hi = _range_of(float_spec, "graph input")
        bits = self.settings.for_layer(graph.layers()[0].name).activation_bits
        signed = lo < 0.0
        q_hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        return TensorSpec(
            graph.input,
            float_spec.shape,
            bits,
            signed,
            _scale_for(lo, hi, q_hi),
            0,
            float_spec.calib_min,
            float_spec.calib_max,
        )

    def run(self) -> Graph:
        self.check_settings()
        graph = self.graph
        self.specs[graph.input] = self.input_spec()
        skipped: set[str] = set()
        for node in graph.nodes:
            if node.name in skipped:
                continue
            spec = OP_SPECS[node.op]
            if spec.quantise is None:
                raise AccelsimError(f"cannot quantise op {node.op!r} (node {node.name!r})")
            clamp = self.fused_clamp(node) if spec.fuses_clamp else None
            if spec.fuses_clamp:
                spec.quantise(self, node, clamp)
            else:
                spec.quantise(self, node)
            if clamp is not None:
                skipped.add(clamp.name)
        out_name = graph.output
        metadata = dict(graph.metadata)
        metadata.update(
            {
                "quantization": self.settings.to_json(),
                "quantization_scheme": SCHEME_VERSION,
                "float_graph_hash": self.graph_hash or graph.content_hash(),
            }
        )
        return Graph("integer", graph.name, graph.input, out_name, self.specs, self.nodes, metadata)

    @quantises(*GEMM_OPS, fuses_clamp=True)
    def gemm(self, node: Node, clamp: Node | None) -> None:
        settings = self.settings.for_layer(node.name)
        x_spec = self.specs[node.inputs[0]]
        out_spec, out_lo, out_hi = self.requantised_spec(node, clamp, settings)
        weight = node.params["weight"].astype(np.float64)
        bias = node.params["bias"].astype(np.float64)
        n_out = weight.shape[0]
        w_max = (1 << (settings.weight_bits - 1)) - 1
        w_absmax = np.abs(weight.reshape(n_out, -1)).max(axis=1)
        w_scale = np.where(w_absmax > 0, w_absmax / w_max, 1.0)
        w_shape = (n_out,) + (1,) * (weight.ndim - 1)
        weight /= w_scale.reshape(w_shape)  # in place: ``weight`` is already a float64 copy
        q_weight = _quantised(weight, -w_max, w_max)
        acc_scale = x_spec.scale * w_scale
        acc_limit = (1 << (settings.acc_bits - 1)) - 1
        q_bias = _quantised(bias / acc_scale, -acc_limit - 1, acc_limit)
        pairs = [fixed_point(float(s) / out_spec.scale) for s in acc_scale]
        attrs: dict[str, Any] = {}
        if node.op == "conv2d":
            attrs.update(
                {
                    k: node.attrs[k]
                    for k in ("stride", "padding", "groups", "dilation", "padding_end")
                    if k in node.attrs
                }
            )
        attrs.update(
            {
                "acc_bits": settings.acc_bits,
                "overflow": self.settings.overflow,
                "w_bits": settings.weight_bits,
                "out_lo": out_lo,
                "out_hi": out_hi,
                "out_zero_point": 0,
            }
        )
        params = {
            "weight": q_weight,
            "bias": q_bias,
            "multiplier": np.array([m for m, _ in pairs], dtype=np.int64),
            "shift": np.array([s for _, s in pairs], dtype=np.int64),
        }
        self.emit(Node(node.op, node.name, node.inputs, out_spec.name, attrs, params), out_spec)

    @quantises("add", fuses_clamp=True)
    def add(self, node: Node, clamp: Node | None) -> None:
        settings = self.settings.for_layer(None)
        a_spec, b_spec = (self.specs[name] for name in node.inputs)
        out_spec, out_lo, out_hi = self.requantised_spec(node, clamp, settings)
        ratios = [a_spec.scale / out_spec.scale, b_spec.scale / out_spec.scale]
        shift, multipliers = self.shared_shift(ratios, f"add {node.name!r}")
        attrs = {"out_lo": out_lo, "out_hi": out_hi, "out_zero_point": 0, "shift": shift}
        params = {
            "multiplier_a": np.array(multipliers[0], dtype=np.int64),
            "multiplier_b": np.array(multipliers[1], dtype=np.int64),
        }
        self.emit(Node("add", node.name, node.inputs, out_spec.name, attrs, params), out_spec)

    def shared_shift(self, ratios: list[float], what: str) -> tuple[int, list[int]]:
        """The largest shift keeping every ``round(ratio * 2**shift)`` below 2**31."""
        largest = max(ratios)
        shift = int(math.floor(math.log2((MULTIPLIER_LIMIT - 1) / largest)))
        while (
            shift > SHIFT_RANGE[0]
            and _round_half_up(math.ldexp(largest, shift)) >= MULTIPLIER_LIMIT
        ):
            shift -= 1
        shift = min(max(shift, SHIFT_RANGE[0]), SHIFT_RANGE[1])
        multipliers = [int(_round_half_up(math.ldexp(r, shift))) for r in ratios]
        if max(multipliers) >= MULTIPLIER_LIMIT:
            raise AccelsimError(
                f"{what}: input/output scale ratio {largest:.4g} "
                "is too large for a 31-bit multiplier"
            )
        return shift, multipliers

    def requantising(self, node: Node, clamp: Node | None, signed: bool):
        """Output spec and attrs of a vector op that requantises (global settings)."""
        settings = self.settings.for_layer(None)
        out_spec, out_lo, out_hi = self.requantised_spec(node, clamp, settings, signed=signed)
        return out_spec, {"out_lo": out_lo, "out_hi": out_hi, "out_zero_point": 0}

    @quantises("concat", fuses_clamp=True)
    def concat(self, node: Node, clamp: Node | None) -> None:
        specs = [self.specs[name] for name in node.inputs]
        signed = any(s.signed for s in specs) and not (
            clamp is not None and float(clamp.attrs["lo"]) >= 0.0
        )
        out_spec, attrs = self.requantising(node, clamp, signed)
        shift, multipliers = self.shared_shift(
            [s.scale / out_spec.scale for s in specs], f"concat {node.name!r}"
        )
        params = {"multipliers": np.array(multipliers, dtype=np.int64)}
        self.emit(
            Node(
                "concat", node.name, node.inputs, out_spec.name, {**attrs, "shift": shift}, params
            ),
            out_spec,
        )

    @quantises("mul", fuses_clamp=True)
    def mul(self, node: Node, clamp: Node | None) -> None:
        a_spec, b_spec = (self.specs[name] for name in node.inputs)
        signed = (a_spec.signed or b_spec.signed) and not (
            clamp is not None and float(clamp.attrs["lo"]) >= 0.0
        )
        out_spec, attrs = self.requantising(node, clamp, signed)
        multiplier, shift = fixed_point(a_spec.scale * b_spec.scale / out_spec.scale)
        self.emit(
            Node(
                "mul",
                node.name,
                node.inputs,
                out_spec.name,
                {**attrs, "shift": shift},
                {"multiplier": np.array(multiplier, dtype=np.int64)},
            ),
            out_spec,
        )

    @quantises("global_avgpool")
    def global_avgpool(self, node: Node) -> None:
        """Requantised to the pooled tensor's own (narrower) range: the mean of many values
        has a smaller spread than they do, and at low bit widths keeping the input's scale
        would leave it a handful of levels."""
        x_spec = self.specs[node.inputs[0]]
        out_spec, attrs = self.requantising(node, None, x_spec.signed)
        _, h, w = x_spec.shape
        multiplier, shift = fixed_point(x_spec.scale / (h * w * out_spec.scale))
        self.emit(
            Node(
                "global_avgpool",
                node.name,
                node.inputs,
                out_spec.name,
                {**attrs, "shift": shift},
                {"multiplier": np.array(multiplier, dtype=np.int64)},
            ),
            out_spec,
        )

    @quantises("activation")
    def activation(self, node: Node) -> None:
        """A lookup table: every input code's real value through the function, requantised
        (round half up, clamped) at the output tensor's scale."""
        from .executor import activation_float

        x_spec = self.specs[node.inputs[0]]
        float_out = self.graph.tensors[node.output]
        signed = _range_of(float_out, f"output of {node.name!r}")[0] < 0.0
        out_spec, attrs = self.requantising(node, None, signed)
        lo, hi = x_spec.value_range()
        codes = np.arange(lo, hi + 1, dtype=np.float64)
        real = activation_float(
            str(node.attrs["function"]),
            float(node.attrs["alpha"]),
            x_spec.scale * (codes - x_spec.zero_point),
        )
        table = np.clip(_round_half_up(real / out_spec.scale), attrs["out_lo"], attrs["out_hi"])
        self.emit(
            Node(
                "activation",
                node.name,
                node.inputs,
                out_spec.name,
                dict(node.attrs),
                {"table": table.astype(np.int64)},
            ),
            out_spec,
        )

    @quantises("clamp")
    def clamp(self, node: Node) -> None:
        x_spec = self.specs[node.inputs[0]]
        lo, hi = x_spec.value_range()
        q_lo, q_hi = _clamp_codes(node, x_spec.scale, lo, hi)
        out_spec = self._like(x_spec, node.output)
        self.emit(
            Node("clamp", node.name, node.inputs, node.output, {"lo": q_lo, "hi": q_hi}), out_spec
        )

    @quantises(*PASS_THROUGH_OPS)
    def pass_through(self, node: Node) -> None:
        x_spec = self.specs[node.inputs[0]]
        self.emit(
            Node(node.op, node.name, node.inputs, node.output, dict(node.attrs)),
            self._like(x_spec, node.output),
        )

    def _like(self, x_spec: TensorSpec, name: str) -> TensorSpec:
        float_spec = self.graph.tensors[name]
        return TensorSpec(
            name,
            float_spec.shape,
            x_spec.bits,
            x_spec.signed,
            x_spec.scale,
            x_spec.zero_point,
            float_spec.calib_min,
            float_spec.calib_max,
        )

    def emit(self, node: Node, spec: TensorSpec) -> None:
        self.nodes.append(node)
        self.specs[spec.name] = spec


def _clamp_codes(clamp: Node, scale: float, lo: int, hi: int) -> tuple[int, int]:
    """A float clamp [lo, hi] as integer codes at ``scale``, within [lo, hi] of the register."""
    real_lo, real_hi = float(clamp.attrs["lo"]), float(clamp.attrs["hi"])
    q_lo = lo if real_lo == -math.inf else max(lo, math.ceil(real_lo / scale - 1e-9))
    q_hi = hi if real_hi == math.inf else min(hi, math.floor(real_hi / scale + 1e-9))
    q_lo, q_hi = min(q_lo, hi), max(q_hi, lo)
    return q_lo, max(q_lo, q_hi)


def quantize(
    float_graph: Graph,
    settings: QuantizationConfig | None = None,
    *,
    source: str | Path | None = None,
    float_graph_hash: str | None = None,
) -> Graph:
    """The integer graph of ``float_graph`` under ``settings`` (default: the YAML defaults; see
    the module docstring).

    Raises :class:`AccelsimError` naming ``source`` (the workload file the settings came from)
    and the key when ``per_layer`` names a layer the graph does not have, or a per-layer
    combination is invalid. ``float_graph_hash``: ``float_graph.content_hash()`` if the caller
    has it (hashing ResNet-18's weights takes 0.04 s).
    """
    settings = QuantizationConfig() if settings is None else settings
    if float_graph.kind != "float":
        raise AccelsimError(
            f"quantize needs a float graph, got a {float_graph.kind} graph",
            allowed="a float graph (python -m accelsim export)",
        )
    graph = _Quantizer(float_graph, settings, source, float_graph_hash).run()
    graph.metadata["quantization_key"] = quantization_key(
        float_graph, settings, graph_hash=graph.metadata["float_graph_hash"]
    )
    validate_graph(graph)
    return graph


def quantize_cached(
    float_graph: Graph,
    settings: QuantizationConfig | None = None,
    *,
    source: str | Path | None = None,
    float_graph_hash: str | None = None,
    cache_dir: str | Path | None = None,
) -> Graph:
    """:func:`quantize`, cached in ``cache_dir`` (default :data:`QUANTIZED_CACHE`, the user's
    cache folder) as ``<quantization_key>.npz``: the same graph (``content_hash()`` equal),
    read back instead of re-quantised.

    Entries are stored narrowed (``save_graph(narrow=True)``: ResNet-18's int8 weights take
    12 MB, not 94 MB as int64) and validated like any graph file on load. An entry that does
    not load, or whose recorded key is not its name, is rebuilt; one that cannot be written
    is a RuntimeWarning (:func:`accelsim.caches.cached_entry`).
    """
    settings = QuantizationConfig() if settings is None else settings
    if float_graph.kind != "float":
        return quantize(float_graph, settings, source=source)  # the error quantize gives
    graph_hash = float_graph_hash or float_graph.content_hash()
    key = quantization_key(float_graph, settings, graph_hash=graph_hash)

    def load(path: Path) -> Graph:
        graph = load_graph(path, narrow=True)
        if graph.metadata.get("quantization_key") != key:
            raise AccelsimError("cache entry of another quantisation", file=path)
        return graph

    return cached_entry(
        Path(QUANTIZED_CACHE if cache_dir is None else cache_dir) / f"{key}.npz",
        lambda: quantize(float_graph, settings, source=source, float_graph_hash=graph_hash),
        load=load,
        save=lambda graph, path: save_graph(graph, path, narrow=True),
        folder_limit_bytes=QUANTIZED_CACHE_LIMIT_BYTES,
    )
