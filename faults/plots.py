"""PNG figures of vulnerability studies (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .plan import PE_REGISTERS
from .vulnerability import VulnerabilityFactors


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bvf_heatmap(vf: VulnerabilityFactors, path: str | Path) -> Path:
    """Register class x bit position, colour = BVF (blank where the bit does not exist)."""
    plt = _pyplot()
    width = max(vf.widths.values())
    grid = np.full((len(PE_REGISTERS), width), np.nan)
    for i, register in enumerate(PE_REGISTERS):
        rates = vf.bvf_rates(register)
        grid[i, : len(rates)] = rates
    fig, ax = plt.subplots(figsize=(max(6.0, width * 0.3), 2.8))
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="magma_r", vmin=0.0)
    ax.set_yticks(range(len(PE_REGISTERS)), PE_REGISTERS)
    ax.set_xticks(range(0, width, 2))
    ax.set_xlabel("bit position (0 = LSB)")
    ax.set_title(f"{vf.workload}: bit vulnerability factor (P(top-1 change | one flip))")
    fig.colorbar(image, ax=ax, label="BVF")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def nvf_distributions(vf: VulnerabilityFactors, out_dir: str | Path) -> list[Path]:
    """One ``nvf_<layer>.png`` per layer: NVF of each output channel with its interval."""
    plt = _pyplot()
    paths = []
    if vf.nvf is None:
        return paths
    for layer, entry in vf.nvf.items():
        rates = vf.nvf_rates(layer)
        lo, hi = np.asarray(entry["lo"], float), np.asarray(entry["hi"], float)
        channels = np.arange(len(rates))
        fig, ax = plt.subplots(figsize=(max(5.0, len(rates) * 0.25), 3.0))
        shown = np.nan_to_num(rates)
        ax.bar(channels, shown, color="tab:red", alpha=0.7)
        ax.errorbar(channels, shown, yerr=[shown - lo, hi - shown], fmt="none", ecolor="black",
                    capsize=2, linewidth=0.8)  # fmt: skip
        ax.set_xlabel("output channel")
        ax.set_ylabel("NVF")
        ax.set_title(f"{vf.workload} {layer}: neuron vulnerability (95% interval)")
        fig.tight_layout()
        path = Path(out_dir) / f"nvf_{layer}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def accuracy_vs_rate(points: Sequence[dict[str, Any]], path: str | Path, *,
                     title: str = "") -> Path:  # fmt: skip
    """Accuracy under faults (with interval) and P(failure) against the fault rate.

    ``points``: dicts with ``rate``, ``accuracy`` {rate, lo, hi}, ``failure`` {rate, lo, hi},
    optional ``first_order`` (the predicted failure probability).
    """
    plt = _pyplot()
    rates = np.array([p["rate"] for p in points], float)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for key, colour, label in (("accuracy", "tab:blue", "accuracy under faults"),
                               ("failure", "tab:red", "P(failure) campaign")):  # fmt: skip
        mid = np.array([p[key]["rate"] for p in points], float)
        lo = np.array([p[key]["lo"] for p in points], float)
        hi = np.array([p[key]["hi"] for p in points], float)
        ax.plot(rates, mid, "o-", color=colour, label=label)
        ax.fill_between(rates, lo, hi, color=colour, alpha=0.2)
    if all("first_order" in p for p in points):
        ax.plot(rates, [p["first_order"] for p in points], "s--", color="tab:gray",
                label="P(failure) first order")  # fmt: skip
    ax.set_xscale("log")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("fault rate")
    ax.set_ylabel("probability")
    ax.set_title(title or "accuracy under faults")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
