"""SCALE-Sim topology CSVs as integer graphs of seeded random layers, and SCALE-Sim ``.cfg``
files as accelerator settings (:func:`load_scalesim_config`, :func:`workload_from_scalesim`:
what ``scale.py -c config.cfg -t topology.csv`` runs, as a workload; see the end of this file).

A SCALE-Sim topology lists layers, not a network: consecutive rows need not chain (the CSV
gives each layer's *padded* ifmap, shortcut convolutions read older tensors, a GEMM list may
change M). accelsim's IR has one graph input, so every layer must be fed from it or from an
earlier node. The design, simplest that keeps every CSV row an exact layer:

* **Each row is one conv2d node** with exactly SCALE-Sim's GEMM shape, stride in both axes, on
  the ifmap the CSV lists (already padded). SCALE-Sim pads nothing, but its output size is
  ``ceil((ifmap - filter) / stride) + 1``: when the stride does not divide, its last window
  overhangs the edge and reads nulls. The node reproduces that size with the smallest symmetric
  zero padding (``ceil((stride - rest) / 2)``, ``rest = (ifmap - filter) % stride``) and has
  padding 0 whenever the stride divides (always at stride 1). A GEMM row ``M, N, K`` is the 1x1
  convolution of a ``(K, M, 1)`` map to ``(N, M, 1)``: GEMM view M x K x N, as SCALE-Sim lowers
  it; a ``linear`` node would tie M to the batch. A row whose name contains ``DP`` is
  SCALE-Sim's depthwise layer (one layer per channel): a grouped conv2d with
  ``groups = Channels`` and ``Num Filter`` filters per group.
* **Feeding.** The graph input is the first layer's input. Every later layer reads the most
  recent earlier tensor (graph input or a CSV layer's output) with its channel count, brought
  to its ifmap height/width by **pool adapters** (vector-unit ops, no PE-array cycles): one
  ``maxpool2d`` of kernel ``excess + 1``, stride 1, crops a larger map (a max over the window),
  and each ``maxpool2d`` of kernel 2, padding 1 grows a map by one (for the padded sizes CSVs
  list; at most :data:`MAX_POOL_GROWTH` of them). When no earlier tensor has the channel
  count (or it would need more growth), a **feeder**: a 1x1 conv2d (2x1 / 1x2 / 2x2 to fix
  parity) from the most recent tensor, with the padding that grows it to size, after a crop.
  Feeders are PE-array layers that SCALE-Sim does not have; they are named ``<layer>.feed``
  and listed in ``graph.metadata["scalesim"]["feeders"]`` so a comparison can leave them out
  (a grown border holds the feeder's bias, 0: enough for timing, not realistic data).
  The graph output is the last row's output; other layer outputs may be dead ends.
* **Data.** All activations are unsigned ``activation_bits`` integers (scale 1, zero point 0),
  i.e. post-ReLU; every conv requantises into ``[0, 2**activation_bits - 1]``. Weights are
  uniform signed ``weight_bits`` integers in ``[-(2**(w-1) - 1), 2**(w-1) - 1]`` from
  ``numpy.random.default_rng(seed)``, bias 0, and a per-layer multiplier/shift that maps one
  standard deviation of the accumulator (for uniform inputs) to half the output range, so
  outputs spread over the range instead of saturating or vanishing.

CSV syntax accepted: SCALE-Sim's header line (conv: ``Layer name, IFMAP Height, IFMAP Width,
Filter Height, Filter Width, Channels, Num Filter, Strides[, Sparsity]``; GEMM: ``Layer Name,
M, N, K[, Sparsity]``), a trailing comma or not, blank lines, leading tabs, and trailing
``#comment`` fields. A sparsity column must be dense (``1:1``). Duplicate layer names get a
``_2``, ``_3`` suffix; ``/`` in names becomes ``_``.
"""

from __future__ import annotations

import configparser
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import AccelsimError, read_user_text
from .intmath import quantize_multiplier
from .ir import Graph, Node, TensorSpec, validate_graph

if TYPE_CHECKING:
    from .workload import Workload

CONV_COLUMNS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
GEMM_COLUMNS = ("Layer Name", "M", "N", "K")
SPARSITY_COLUMN = "Sparsity"
MAX_POOL_GROWTH = 8  # more growth than this per axis: a padded feeder conv instead
INPUT_TENSOR = "input"


@dataclass(frozen=True)
class TopologyLayer:
    """One CSV row as a convolution (GEMM rows already in their 1x1-conv form)."""

    name: str
    row: int  # line number in the file (1 = header)
    in_shape: tuple[int, int, int]  # (C, H, W)
    kernel: tuple[int, int]
    stride: int
    filters: int  # output channels (all groups)
    groups: int

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """SCALE-Sim's: ``ceil((ifmap - filter) / stride) + 1`` (a last window may overhang)."""
        _, h, w = self.in_shape
        kh, kw = self.kernel
        return (self.filters, -(-(h - kh) // self.stride) + 1, -(-(w - kw) // self.stride) + 1)

    @property
    def padding(self) -> tuple[int, int]:
        """Smallest symmetric zero padding giving :attr:`out_shape` (0 when stride divides)."""
        _, h, w = self.in_shape
        pads = []
        for size, kernel in ((h, self.kernel[0]), (w, self.kernel[1])):
            rest = (size - kernel) % self.stride
            pads.append(0 if rest == 0 else (self.stride - rest + 1) // 2)
        return (pads[0], pads[1])

    @property
    def gemm(self) -> dict[str, int]:
        """SCALE-Sim's GEMM view of one group."""
        _, oh, ow = self.out_shape
        c = self.in_shape[0] // self.groups
        return {
            "M": oh * ow,
            "K": c * self.kernel[0] * self.kernel[1],
            "N": self.filters // self.groups,
        }


# ---- parsing -------------------------------------------------------------------------------


def _fields(line: str) -> list[str]:
    """Comma-separated fields, stripped; trailing empty and ``#comment`` fields dropped."""
    fields = [f.strip() for f in line.split(",")]
    while fields and (not fields[-1] or fields[-1].startswith("#")):
        fields.pop()
    return fields


def _normal(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def _detect_format(header: list[str], path: Path, row: int) -> str:
    names = [_normal(h) for h in header]
    if len(names) >= 4 and names[1:4] == ["m", "n", "k"]:
        return "gemm"
    if len(names) >= 8 and "ifmap" in names[1]:
        return "conv"
    raise AccelsimError(
        f"header {', '.join(header)!r} is not a SCALE-Sim topology header",
        file=path,
        key=f"row {row}",
        allowed=f"conv: {', '.join(CONV_COLUMNS)}[, {SPARSITY_COLUMN}]; "
        f"GEMM: {', '.join(GEMM_COLUMNS)}[, {SPARSITY_COLUMN}]",
    )


def _positive(value: str, path: Path, row: int, column: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise AccelsimError(
            f"{value!r}",
            file=path,
            key=f"row {row}, column '{column}'",
            allowed="a positive integer",
        )
    return number


def _check_dense(fields: list[str], columns: tuple[str, ...], path: Path, row: int) -> None:
    if len(fields) > len(columns) + 1:
        raise AccelsimError(
            f"{len(fields)} fields",
            file=path,
            key=f"row {row}",
            allowed=f"{len(columns)} columns ({', '.join(columns)}) and an optional "
            f"{SPARSITY_COLUMN}",
        )
    if len(fields) == len(columns) + 1:
        ratio = fields[-1].replace(" ", "").split(":")
        dense = len(ratio) == 2 and all(r.isdigit() for r in ratio) and ratio[0] == ratio[1]
        if not dense or ratio[0] == "0":
            raise AccelsimError(
                f"sparsity {fields[-1]!r}",
                file=path,
                key=f"row {row}, column '{SPARSITY_COLUMN}'",
                allowed="1:1 (dense; accelsim does not model structured sparsity)",
            )
    if len(fields) < len(columns):
        missing = columns[len(fields)]
        raise AccelsimError(
            "missing",
            file=path,
            key=f"row {row}, column '{missing}'",
            allowed=f"{len(columns)} columns: {', '.join(columns)}",
        )


def _unique(name: str, taken: set[str]) -> str:
    name = name.replace("/", "_")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def parse_scalesim_topology(path: str | Path) -> tuple[str, list[TopologyLayer]]:
    """Read a SCALE-Sim conv or GEMM topology CSV: ``(format, layers)``; AccelsimError if bad."""
    path = Path(path)
    text = read_user_text(path, what="topology file", encoding="utf-8-sig")
    lines = [(i, _fields(line)) for i, line in enumerate(text.splitlines(), start=1)]
    lines = [(i, f) for i, f in lines if f]
    if not lines:
        raise AccelsimError(
            "empty topology file",
            file=path,
            key="row 1",
            allowed="a SCALE-Sim header line, then one layer per line",
        )
    (header_row, header), rows = lines[0], lines[1:]
    fmt = _detect_format(header, path, header_row)
    if not rows:
        raise AccelsimError(
            "no layers after the header", file=path, key="row 2", allowed="one layer per line"
        )
    columns = CONV_COLUMNS if fmt == "conv" else GEMM_COLUMNS
    taken: set[str] = {INPUT_TENSOR}
    layers = []
    for row, fields in rows:
        _check_dense(fields, columns, path, row)
        if not fields[0]:
            raise AccelsimError(
                "empty layer name",
                file=path,
                key=f"row {row}, column '{columns[0]}'",
                allowed="a non-empty name",
            )
        values = [_positive(v, path, row, c) for v, c in zip(fields[1:], columns[1:])]
        name = _unique(fields[0], taken)
        if fmt == "gemm":
            m, n, k = values
            layers.append(TopologyLayer(name, row, (k, m, 1), (1, 1), 1, n, 1))
            continue
        h, w, kh, kw, c, f, s = values
        for size, kernel, column in ((h, kh, "Filter Height"), (w, kw, "Filter Width")):
            if kernel > size:
                raise AccelsimError(
                    f"{kernel} exceeds the ifmap ({size})",
                    file=path,
                    key=f"row {row}, column '{column}'",
                    allowed=f"1..{size} (SCALE-Sim pads nothing: the CSV gives the padded ifmap)",
                )
        depthwise = "DP" in fields[0]  # SCALE-Sim's convention (topology_utils.load_arrays_conv)
        groups = c if depthwise else 1
        layers.append(TopologyLayer(name, row, (c, h, w), (kh, kw), s, f * groups, groups))
    return fmt, layers


# ---- graph building --------------------------------------------------------------------------


class _Builder:
    def __init__(
        self, *, seed: int, weight_bits: int, activation_bits: int, acc_bits: int, overflow: str
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.w_bits, self.a_bits = weight_bits, activation_bits
        self.acc_bits, self.overflow = acc_bits, overflow
        self.tensors: dict[str, TensorSpec] = {}
        self.nodes: list[Node] = []
        self.names: set[str] = {INPUT_TENSOR}

    def tensor(self, name: str, shape: tuple[int, ...]) -> str:
        self.tensors[name] = TensorSpec(name, shape, self.a_bits, False, 1.0)
        return name

    def fresh(self, name: str, layer_names: set[str]) -> str:
        """A node name for a generated node: clashes with no CSV layer and no other node."""
        candidate = _unique(name, self.names | layer_names)
        self.names.add(candidate)
        return candidate

    def conv(
        self,
        name: str,
        source: str,
        *,
        out_channels: int,
        kernel: tuple[int, int],
        stride: int,
        padding: tuple[int, int],
        groups: int,
    ) -> str:
        c, h, w = self.tensors[source].shape
        kh, kw = kernel
        q = (1 << (self.w_bits - 1)) - 1
        shape = (out_channels, c // groups, kh, kw)
        weight = self.rng.integers(-q, q + 1, size=shape, dtype=np.int64)
        k = (c // groups) * kh * kw
        w_std = math.sqrt(((2 * q + 1) ** 2 - 1) / 12) or 1.0
        # one accumulator std (uniform inputs: rms = range / sqrt(3)) -> half the output range
        real = math.sqrt(3) / (2 * math.sqrt(k) * w_std)
        multiplier, shift = quantize_multiplier(min(max(real, 2.0**-30), 0.999))
        oh = (h + 2 * padding[0] - kh) // stride + 1
        ow = (w + 2 * padding[1] - kw) // stride + 1
        out = self.tensor(name, (out_channels, oh, ow))
        self.nodes.append(
            Node(
                "conv2d",
                name,
                [source],
                out,
                attrs={
                    "stride": [stride, stride],
                    "padding": list(padding),
                    "groups": groups,
                    "acc_bits": self.acc_bits,
                    "overflow": self.overflow,
                    "w_bits": self.w_bits,
                    "out_lo": 0,
                    "out_hi": (1 << self.a_bits) - 1,
                    "out_zero_point": 0,
                },
                params={
                    "weight": weight,
                    "bias": np.zeros(out_channels, dtype=np.int64),
                    "multiplier": np.full(out_channels, multiplier, dtype=np.int64),
                    "shift": np.full(out_channels, shift, dtype=np.int64),
                },
            )
        )
        return out

    def maxpool(
        self, name: str, source: str, kernel: tuple[int, int], padding: tuple[int, int]
    ) -> str:
        c, h, w = self.tensors[source].shape
        out_h = h + 2 * padding[0] - kernel[0] + 1
        out_w = w + 2 * padding[1] - kernel[1] + 1
        out = self.tensor(name, (c, out_h, out_w))
        self.nodes.append(
            Node(
                "maxpool2d",
                name,
                [source],
                out,
                attrs={"kernel": list(kernel), "stride": [1, 1], "padding": list(padding)},
            )
        )
        return out


def _growth(have: tuple[int, ...], want: tuple[int, ...]) -> int:
    return max(0, want[1] - have[1], want[2] - have[2])


def _pool_to(
    b: _Builder,
    source: str,
    h: int,
    w: int,
    prefix: str,
    names: set[str],
    adapters: list[str],
    *,
    grow: bool,
) -> str:
    """Crop (one maxpool) and, if ``grow``, grow by one per maxpool until the map is h x w."""
    while True:
        _, sh, sw = b.tensors[source].shape
        if (sh, sw) == (h, w) or (not grow and sh <= h and sw <= w):
            return source
        kernel, padding = [1, 1], [0, 0]
        for axis, (have, want) in enumerate(((sh, h), (sw, w))):
            if have > want:
                kernel[axis] = have - want + 1
            elif have < want and grow:
                kernel[axis], padding[axis] = 2, 1
        name = b.fresh(f"{prefix}.pool", names)
        adapters.append(name)
        source = b.maxpool(name, source, tuple(kernel), tuple(padding))


def load_scalesim_topology(
    path: str | Path,
    *,
    seed: int,
    weight_bits: int,
    activation_bits: int,
    acc_bits: int,
    overflow: str = "wrap",
) -> Graph:
    """An integer graph running every layer of a SCALE-Sim topology CSV on random integers.

    See the module docstring for how rows become nodes and how each layer is fed. The graph
    passes :func:`accelsim.ir.validate_graph`; ``graph.metadata["scalesim"]`` lists the CSV
    layers (with their GEMM shapes), the feeders and the pool adapters.
    """
    path = Path(path)
    fmt, layers = parse_scalesim_topology(path)
    b = _Builder(
        seed=seed,
        weight_bits=weight_bits,
        activation_bits=activation_bits,
        acc_bits=acc_bits,
        overflow=overflow,
    )
    layer_names = {layer.name for layer in layers}
    b.tensor(INPUT_TENSOR, layers[0].in_shape)
    available = [INPUT_TENSOR]  # graph input and CSV layer outputs, oldest first
    feeders: list[str] = []
    adapters: list[str] = []
    for layer in layers:
        c, h, w = layer.in_shape
        source = next(
            (
                t
                for t in reversed(available)
                if b.tensors[t].shape[0] == c
                and _growth(b.tensors[t].shape, layer.in_shape) <= MAX_POOL_GROWTH
            ),
            None,
        )
        if source is not None:
            source = _pool_to(b, source, h, w, layer.name, layer_names, adapters, grow=True)
        else:
            cropped = _pool_to(
                b, available[-1], h, w, layer.name, layer_names, adapters, grow=False
            )
            _, sh, sw = b.tensors[cropped].shape
            gh, gw = h - sh, w - sw  # >= 0 after the crop
            name = b.fresh(f"{layer.name}.feed", layer_names)
            feeders.append(name)
            source = b.conv(
                name,
                cropped,
                out_channels=c,
                kernel=(1 + gh % 2, 1 + gw % 2),
                stride=1,
                padding=((gh + 1) // 2, (gw + 1) // 2),
                groups=1,
            )
        b.names.add(layer.name)
        out = b.conv(
            layer.name,
            source,
            out_channels=layer.filters,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            groups=layer.groups,
        )
        assert b.tensors[out].shape == layer.out_shape
        available.append(out)
    graph = Graph(
        kind="integer",
        name=path.stem,
        input=INPUT_TENSOR,
        output=available[-1],
        tensors=b.tensors,
        nodes=b.nodes,
        metadata={
            "source": "scalesim_topology",
            "file": path.name,
            "seed": int(seed),
            "scalesim": {
                "format": fmt,
                "layers": [
                    {"name": layer.name, "row": layer.row, "groups": layer.groups, **layer.gemm}
                    for layer in layers
                ],
                "feeders": feeders,
                "adapters": adapters,
            },
        },
    )
    validate_graph(graph, file=path)
    return graph


# ---- SCALE-Sim .cfg -------------------------------------------------------------------------
#
# SCALE-Sim 3 runs ``scale.py -c config.cfg -t topology.csv``. The config is an INI file
# (configparser: section and key names are case-insensitive) with these sections. Each key is
# either mapped onto the workload's ``accelerator:`` section, or accepted because it cannot
# change what accelsim computes (address offsets, request buffers of the Ramulator trace), or
# accepted only at the value that matches accelsim (no custom layout, no sparsity, one bank).

SCALESIM_WORD_BYTES = 1  # SCALE-Sim counts SRAM and bandwidth in 1-byte words
SCALESIM_MAX_ARRAY = 1024  # accelerator.array.rows / cols limit
# section -> canonical key names (lower-cased by configparser when read)
SCALESIM_KEYS: dict[str, tuple[str, ...]] = {
    "general": ("run_name",),
    "architecture_presets": (
        "ArrayHeight",
        "ArrayWidth",
        "IfmapSramSzkB",
        "FilterSramSzkB",
        "OfmapSramSzkB",
        "IfmapOffset",
        "FilterOffset",
        "OfmapOffset",
        "Dataflow",
        "Bandwidth",
        "ReadRequestBuffer",
        "WriteRequestBuffer",
        "MemoryBanks",
    ),
    "layout": (
        "IfmapCustomLayout",
        "IfmapSRAMBankBandwidth",
        "IfmapSRAMBankNum",
        "IfmapSRAMBankPort",
        "FilterCustomLayout",
        "FilterSRAMBankBandwidth",
        "FilterSRAMBankNum",
        "FilterSRAMBankPort",
    ),
    "sparsity": (
        "SparsitySupport",
        "SparseRep",
        "OptimizedMapping",
        "BlockSize",
        "RandomNumberGeneratorSeed",
    ),
    "run_presets": ("InterfaceBandwidth", "UseRamulatorTrace"),
}
SCALESIM_REQUIRED = {
    "architecture_presets": (
        "ArrayHeight",
        "ArrayWidth",
        "IfmapSramSzkB",
        "FilterSramSzkB",
        "OfmapSramSzkB",
        "Dataflow",
    )
}


@dataclass(frozen=True)
class ScaleSimConfig:
    """What a SCALE-Sim config sets, in accelsim's terms (see :meth:`accelerator_settings`)."""

    file: Path
    run_name: str
    rows: int
    cols: int
    dataflow: str  # ws / os / is
    ifmap_sram_kib: float
    filter_sram_kib: float
    ofmap_sram_kib: float
    interface_bandwidth: str  # CALC (ideal interface) or USER (Bandwidth words per cycle)
    bandwidth_words_per_cycle: float | None

    def accelerator_settings(self) -> dict[str, object]:
        """The workload's ``accelerator:`` section for this config.

        ``CALC`` (SCALE-Sim computes the bandwidth that never stalls): ``timing: scalesim``,
        SCALE-Sim's compute count with ideal memory. ``USER``: the register-level model
        (``timing: accurate``) with DRAM bandwidth ``Bandwidth`` words x 1 byte per cycle, so
        stalls emerge from it. SRAM sizes (SCALE-Sim's kB are 1024 bytes) size the buffers.
        """
        settings: dict[str, object] = {
            "timing": "scalesim" if self.interface_bandwidth == "CALC" else "accurate",
            "array": {"rows": self.rows, "cols": self.cols, "dataflow": self.dataflow},
            "buffers": {
                "input": {"capacity_kib": self.ifmap_sram_kib},
                "weight": {"capacity_kib": self.filter_sram_kib},
                "output": {"capacity_kib": self.ofmap_sram_kib},
            },
        }
        if self.bandwidth_words_per_cycle is not None and self.interface_bandwidth == "USER":
            settings["dram"] = {
                "bandwidth_bytes_per_cycle": self.bandwidth_words_per_cycle * SCALESIM_WORD_BYTES
            }
        return settings


class _CfgReader:
    """Typed reads of one parsed config; every error names file, section, key and what is
    allowed."""

    def __init__(self, path: Path, parser: configparser.ConfigParser) -> None:
        self.path, self.parser = path, parser

    def error(self, section: str, key: str, message: str, allowed: str) -> AccelsimError:
        return AccelsimError(message, file=self.path, key=f"[{section}] {key}", allowed=allowed)

    def raw(self, section: str, key: str) -> str | None:
        if not self.parser.has_section(section):
            return None
        value = self.parser[section].get(key.lower())
        return None if value is None else value.strip().strip("\"'").strip()

    def number(
        self,
        section: str,
        key: str,
        *,
        integer: bool,
        minimum: float,
        maximum: float | None,
        text: str | None = None,
    ) -> float | None:
        """The key's value (or ``text`` read from it) as a number in range; None if absent."""
        text = self.raw(section, key) if text is None else text
        if text is None:
            return None
        bound = f"{minimum:g}..{maximum:g}" if maximum is not None else f">= {minimum:g}"
        allowed = f"{'an integer' if integer else 'a number'} {bound}"
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise self.error(section, key, f"{text!r} is not a number", allowed) from None
        if value < minimum or (maximum is not None and value > maximum) or value != value:
            raise self.error(section, key, f"{text!r} is out of range", allowed)
        return value

    def choice(self, section: str, key: str, allowed: tuple[str, ...]) -> str | None:
        text = self.raw(section, key)
        if text is None:
            return None
        for option in allowed:
            if text.lower() == option.lower():
                return option
        raise self.error(section, key, f"{text!r} is not supported", ", ".join(allowed))


def _check_layout(r: _CfgReader) -> None:
    """Keys accelsim cannot honour are accepted only at the value that matches its model."""
    fixed = (
        ("layout", "IfmapCustomLayout", ("False",), "accelsim models no custom SRAM layout"),
        ("layout", "FilterCustomLayout", ("False",), "accelsim models no custom SRAM layout"),
        ("sparsity", "SparsitySupport", ("False",), "accelsim models dense layers only"),
        ("run_presets", "UseRamulatorTrace", ("False",), "accelsim models its own DRAM"),
    )
    for section, key, allowed, why in fixed:
        value = r.raw(section, key)
        if value is not None and value.lower() not in {a.lower() for a in allowed}:
            raise r.error(section, key, f"{value!r} is not supported ({why})", allowed[0])
    banks = r.number("architecture_presets", "MemoryBanks", integer=True, minimum=1, maximum=None)
    if banks not in (None, 1):
        raise r.error(
            "architecture_presets",
            "MemoryBanks",
            f"{banks} banks are not supported (accelsim models one DRAM channel)",
            "1",
        )
    for key in ("IfmapOffset", "FilterOffset", "OfmapOffset"):  # addresses: no timing effect
        r.number("architecture_presets", key, integer=True, minimum=0, maximum=None)
    for key in ("ReadRequestBuffer", "WriteRequestBuffer"):  # Ramulator trace only
        r.number("architecture_presets", key, integer=True, minimum=1, maximum=None)


def load_scalesim_config(path: str | Path) -> ScaleSimConfig:
    """Read a SCALE-Sim 3 ``.cfg``: one AccelsimError naming the file, ``[section] Key`` and
    what is allowed for any unknown section or key, missing key, or unsupported value."""
    path = Path(path)
    text = read_user_text(path, what="SCALE-Sim config")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise AccelsimError(
            f"not a SCALE-Sim config: {exc.message if hasattr(exc, 'message') else exc}",
            file=path,
            allowed="an INI file with [general], [architecture_presets] and [run_presets]",
        ) from None
    known = {section: {k.lower(): k for k in keys} for section, keys in SCALESIM_KEYS.items()}
    for section in parser.sections():
        if section.lower() not in known or section != section.lower():
            raise AccelsimError(
                "unknown section",
                file=path,
                key=f"[{section}]",
                allowed=", ".join(f"[{s}]" for s in SCALESIM_KEYS),
            )
        for key in parser[section]:
            if key not in known[section]:
                raise AccelsimError(
                    "unknown key",
                    file=path,
                    key=f"[{section}] {key}",
                    allowed=", ".join(SCALESIM_KEYS[section]),
                )
    r = _CfgReader(path, parser)
    for section, keys in SCALESIM_REQUIRED.items():
        for key in keys:
            if r.raw(section, key) is None:
                raise r.error(section, key, "required key is missing", "see SCALE-Sim's configs")
    arch = "architecture_presets"
    rows, cols = (
        int(r.number(arch, key, integer=True, minimum=1, maximum=SCALESIM_MAX_ARRAY))
        for key in ("ArrayHeight", "ArrayWidth")
    )
    ifmap, filt, ofmap = (
        float(r.number(arch, key, integer=False, minimum=1e-3, maximum=None))
        for key in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB")
    )
    dataflow = r.choice(arch, "Dataflow", ("ws", "os", "is"))
    interface = r.choice("run_presets", "InterfaceBandwidth", ("CALC", "USER")) or "CALC"
    bandwidth = None
    text = r.raw(arch, "Bandwidth")
    if text is not None:
        # SCALE-Sim accepts a comma-separated list; accelsim has one DRAM bandwidth per run
        values = sorted({v.strip() for v in text.split(",") if v.strip()})
        if len(values) != 1:
            raise r.error(
                arch, "Bandwidth", f"{text!r}: differing bandwidths", "one number (words/cycle)"
            )
        bandwidth = r.number(
            arch, "Bandwidth", integer=False, minimum=1e-9, maximum=None, text=values[0]
        )
    if interface == "USER" and bandwidth is None:
        raise r.error(
            arch,
            "Bandwidth",
            "required key is missing (InterfaceBandwidth = USER)",
            "words per cycle, a positive number",
        )
    _check_layout(r)
    run_name = r.raw("general", "run_name") or path.stem
    return ScaleSimConfig(
        file=path,
        run_name=run_name,
        rows=rows,
        cols=cols,
        dataflow=dataflow,
        ifmap_sram_kib=ifmap,
        filter_sram_kib=filt,
        ofmap_sram_kib=ofmap,
        interface_bandwidth=interface,
        bandwidth_words_per_cycle=bandwidth,
    )


def scalesim_workload_settings(
    cfg_path: str | Path, topology_csv: str | Path, *, seed: int = 0
) -> dict[str, object]:
    """The workload mapping (as a workload YAML would hold it) for ``scale.py -c cfg -t csv``:
    ``name`` from ``run_name``, the topology as the model, the accelerator from the config."""
    config = load_scalesim_config(cfg_path)
    return {
        "name": config.run_name,
        "model": {"scalesim_topology": str(Path(topology_csv).resolve())},
        "seed": seed,
        "accelerator": config.accelerator_settings(),
    }


def workload_from_scalesim(
    cfg_path: str | Path,
    topology_csv: str | Path,
    *,
    overrides: list[str] | None = None,
    seed: int = 0,
) -> Workload:
    """The :class:`~accelsim.workload.Workload` ``run`` simulates for a SCALE-Sim config and
    topology CSV (like ``scale.py -c cfg -t csv``); ``overrides`` are ``--set key=value``
    items applied on top (``quantization.weight_bits=4``)."""
    from .config import parse_workload
    from .workload import build_workload

    cfg_path, topology_csv = Path(cfg_path), Path(topology_csv)
    if not topology_csv.exists():
        raise AccelsimError("topology file not found", file=topology_csv)
    raw = scalesim_workload_settings(cfg_path, topology_csv, seed=seed)
    config = parse_workload(raw, file=cfg_path, overrides=overrides)
    return build_workload(config, base_dir=topology_csv.parent, source=cfg_path)
