"""Figures of vulnerability studies, for papers (matplotlib, Agg backend: no display needed).

Each figure has a ``*_figure`` function returning the matplotlib figure (to inspect or
restyle) and a writer taking ``fmt`` (``png``, ``pdf`` or ``svg``; PNG at 300 dpi) that
saves it atomically. Every axis names its quantity and unit; probabilities are in percent.
:func:`save_figure` and :data:`FIGURE_FORMATS` are shared with ``optimizer.plots``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .vulnerability import VulnerabilityFactors

FIGURE_FORMATS = ("png", "pdf", "svg")
PNG_DPI = 300
# fault-rate units (faults.unit) as axis text
RATE_UNITS = {"bit_cycle": "flips per bit per cycle", "ber": "flips per bit per inference"}
# sequential, white -> dark red: the darker the cell, the more vulnerable the bit
BVF_COLORMAP = "Reds"
_NO_DATES = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}  # same input, same file


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported when a figure is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_format(fmt: str) -> str:
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"figure format {fmt!r}: allowed {', '.join(FIGURE_FORMATS)}")
    return fmt


def save_figure(fig: Any, path: str | Path, fmt: str = "png") -> Path:
    """Write ``fig`` as ``path`` with the suffix of ``fmt`` (PNG at 300 dpi), atomically,
    and close it; return the path written. A figure suffix on ``path`` is replaced, any
    other kept (``nvf_features.0`` becomes ``nvf_features.0.pdf``)."""
    from accelsim.jsonio import atomic_file

    path = Path(path)
    name = path.stem if path.suffix.lstrip(".").lower() in FIGURE_FORMATS else path.name
    path = path.with_name(f"{name}.{check_format(fmt)}")
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=PNG_DPI, bbox_inches="tight", metadata=_NO_DATES.get(fmt))
    pyplot().close(fig)
    return path


def bvf_figure(vf: VulnerabilityFactors) -> Any:
    """Register class x bit position, colour = BVF over all layers in % (white where the bit
    does not exist); darker red = more vulnerable, and a grey dot marks bits that never
    failed (their BVF is only bounded: the intervals are in ``vulnerability.json``)."""
    plt = pyplot()
    registers = list(vf.bvf)
    width = max(len(v) for v in vf.bvf.values())
    grid = np.full((len(registers), width), np.nan)
    for i, register in enumerate(registers):
        rates = vf.bvf_rates(register)
        grid[i, : len(rates)] = 100.0 * rates
    fig, ax = plt.subplots(figsize=(max(6.0, width * 0.3), 0.7 * len(registers) + 1.8))
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=BVF_COLORMAP, vmin=0.0)
    never = np.argwhere(grid == 0.0)
    ax.scatter(never[:, 1], never[:, 0], s=6, c="tab:gray", marker="o")
    ax.set_yticks(range(len(registers)), registers)
    ax.set_xticks(range(0, width, 2))
    ax.set_xlabel("bit position (0 = LSB); grey dot: no failure observed (BVF only bounded)")
    ax.set_ylabel("register class")
    ax.set_title(
        f"{vf.workload}: bit vulnerability factor, P(top-1 change | one flip), "
        f"{vf.injections:,} injections",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, label="BVF (%), darker red = more vulnerable")
    fig.tight_layout()
    return fig


def bvf_heatmap(vf: VulnerabilityFactors, path: str | Path, *, fmt: str = "png") -> Path:
    """Write :func:`bvf_figure` as ``path`` (its suffix follows ``fmt``)."""
    return save_figure(bvf_figure(vf), path, fmt)


def nvf_figure(vf: VulnerabilityFactors, layer: str) -> Any:
    """NVF of each output channel of ``layer`` in % with its interval, and whether the
    layer's ranking is significant."""
    plt = pyplot()
    entry = vf.nvf[layer]
    rates = 100.0 * np.nan_to_num(vf.nvf_rates(layer))
    lo = 100.0 * np.asarray(entry["lo"], float)
    hi = 100.0 * np.asarray(entry["hi"], float)
    channels = np.arange(len(rates))
    fig, ax = plt.subplots(figsize=(max(5.0, len(rates) * 0.25), 3.0))
    ax.bar(channels, rates, color="tab:red", alpha=0.7)
    ax.errorbar(
        channels,
        rates,
        yerr=[np.maximum(rates - lo, 0.0), np.maximum(hi - rates, 0.0)],
        fmt="none",
        ecolor="black",
        capsize=2,
        linewidth=0.8,
    )
    ax.set_xlabel("output channel (neuron)")
    ax.set_ylabel("NVF (%), P(top-1 change | one flip)")
    ranking = (vf.nvf_ranking or {}).get(layer)
    verdict = (
        ""
        if ranking is None
        else (
            f"; ranking significant (p {ranking['p_value']:.2g})"
            if ranking["significant"]
            else f"; ranking not significant (p {ranking['p_value']:.2g})"
        )
    )
    ax.set_title(
        f"{vf.workload} {layer}: NVF, bars with {vf.confidence:.0%} interval{verdict}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def nvf_distributions(
    vf: VulnerabilityFactors, out_dir: str | Path, *, fmt: str = "png"
) -> list[Path]:
    """One ``nvf_<layer>.<fmt>`` per layer (:func:`nvf_figure`); none without NVF."""
    if vf.nvf is None:
        return []
    return [
        save_figure(nvf_figure(vf, layer), Path(out_dir) / f"nvf_{layer}.{fmt}", fmt)
        for layer in vf.nvf
    ]


def accuracy_vs_rate_figure(
    points: Sequence[dict[str, Any]],
    *,
    title: str = "",
    unit: str = "bit_cycle",
    fault_free_accuracy: float | None = None,
) -> Any:
    """Accuracy under faults and P(failure) in % (with intervals) against the fault rate.

    ``points``: dicts with ``rate`` (in ``unit``: ``bit_cycle`` or ``ber``), ``accuracy``
    {rate, lo, hi}, ``failure`` {rate, lo, hi}, optional ``first_order`` (the predicted
    failure probability). ``fault_free_accuracy`` (a fraction; else a point's
    ``fault_free_accuracy``) is drawn as the measured accuracy without faults.
    """
    plt = pyplot()
    if unit not in RATE_UNITS:
        raise ValueError(f"fault-rate unit {unit!r}: allowed {', '.join(RATE_UNITS)}")
    if fault_free_accuracy is None:
        fault_free_accuracy = next(
            (p["fault_free_accuracy"] for p in points if "fault_free_accuracy" in p), None
        )
    rates = np.array([p["rate"] for p in points], float)
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for key, colour, label in (
        ("accuracy", "tab:blue", "accuracy under faults"),
        ("failure", "tab:red", "P(failure), campaign"),
    ):
        mid = 100.0 * np.array([p[key]["rate"] for p in points], float)
        lo = 100.0 * np.array([p[key]["lo"] for p in points], float)
        hi = 100.0 * np.array([p[key]["hi"] for p in points], float)
        ax.plot(rates, mid, "o-", color=colour, label=label)
        ax.fill_between(rates, lo, hi, color=colour, alpha=0.2)
    if all("first_order" in p for p in points):
        ax.plot(
            rates,
            [100.0 * p["first_order"] for p in points],
            "s--",
            color="tab:gray",
            label="P(failure), first order",
        )
    if fault_free_accuracy is not None:
        ax.axhline(
            100.0 * fault_free_accuracy,
            color="tab:blue",
            linestyle=":",
            label=f"accuracy without faults ({fault_free_accuracy:.2%})",
        )
    ax.set_xscale("log")
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel(f"fault rate ({RATE_UNITS[unit]})")
    ax.set_ylabel("accuracy, P(failure) (%)")
    ax.set_title(title or "accuracy under faults")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_rate(
    points: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    title: str = "",
    unit: str = "bit_cycle",
    fault_free_accuracy: float | None = None,
    fmt: str = "png",
) -> Path:
    """Write :func:`accuracy_vs_rate_figure` as ``path`` (its suffix follows ``fmt``)."""
    fig = accuracy_vs_rate_figure(
        points, title=title, unit=unit, fault_free_accuracy=fault_free_accuracy
    )
    return save_figure(fig, path, fmt)
