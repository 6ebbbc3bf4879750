"""PNG figures of vulnerability studies (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .vulnerability import VulnerabilityFactors


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bvf_heatmap(vf: VulnerabilityFactors, path: str | Path) -> Path:
    """Register class x bit position, colour = BVF over all layers (white where the bit does
    not exist); darker = more vulnerable, and a dot marks bits that never failed (their BVF
    is only bounded: the intervals are in ``vulnerability.json``)."""
    plt = _pyplot()
    registers = list(vf.bvf)
    width = max(len(v) for v in vf.bvf.values())
    grid = np.full((len(registers), width), np.nan)
    for i, register in enumerate(registers):
        rates = vf.bvf_rates(register)
        grid[i, : len(rates)] = rates
    fig, ax = plt.subplots(figsize=(max(6.0, width * 0.3), 0.7 * len(registers) + 1.5))
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="magma_r", vmin=0.0)
    never = np.argwhere(grid == 0.0)
    ax.scatter(never[:, 1], never[:, 0], s=6, c="tab:gray", marker="o")
    ax.set_yticks(range(len(registers)), registers)
    ax.set_xticks(range(0, width, 2))
    ax.set_xlabel("bit position (0 = LSB); grey dot = no failure observed (BVF only bounded)")
    ax.set_title(
        f"{vf.workload}: bit vulnerability factor, P(top-1 change | one flip), "
        f"{vf.injections:,} injections",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, label="BVF (darker = more vulnerable)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def nvf_distributions(vf: VulnerabilityFactors, out_dir: str | Path) -> list[Path]:
    """One ``nvf_<layer>.png`` per layer: NVF of each output channel with its interval, and
    whether the layer's ranking is significant."""
    plt = _pyplot()
    paths = []
    if vf.nvf is None:
        return paths
    conf = f"{vf.confidence:.0%}"
    for layer, entry in vf.nvf.items():
        rates = np.nan_to_num(vf.nvf_rates(layer))
        lo, hi = np.asarray(entry["lo"], float), np.asarray(entry["hi"], float)
        channels = np.arange(len(rates))
        fig, ax = plt.subplots(figsize=(max(5.0, len(rates) * 0.25), 3.0))
        ax.bar(channels, rates, color="tab:red", alpha=0.7)
        ax.errorbar(
            channels,
            rates,
            yerr=[rates - lo, hi - rates],
            fmt="none",
            ecolor="black",
            capsize=2,
            linewidth=0.8,
        )
        ax.set_xlabel("output channel")
        ax.set_ylabel("NVF")
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
        ax.set_title(f"{vf.workload} {layer}: NVF ({conf} interval){verdict}", fontsize=9)
        fig.tight_layout()
        path = Path(out_dir) / f"nvf_{layer}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def accuracy_vs_rate(
    points: Sequence[dict[str, Any]], path: str | Path, *, title: str = ""
) -> Path:
    """Accuracy under faults (with interval) and P(failure) against the fault rate.

    ``points``: dicts with ``rate``, ``accuracy`` {rate, lo, hi}, ``failure`` {rate, lo, hi},
    optional ``first_order`` (the predicted failure probability).
    """
    plt = _pyplot()
    rates = np.array([p["rate"] for p in points], float)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for key, colour, label in (
        ("accuracy", "tab:blue", "accuracy under faults"),
        ("failure", "tab:red", "P(failure) campaign"),
    ):
        mid = np.array([p[key]["rate"] for p in points], float)
        lo = np.array([p[key]["lo"] for p in points], float)
        hi = np.array([p[key]["hi"] for p in points], float)
        ax.plot(rates, mid, "o-", color=colour, label=label)
        ax.fill_between(rates, lo, hi, color=colour, alpha=0.2)
    if all("first_order" in p for p in points):
        ax.plot(
            rates,
            [p["first_order"] for p in points],
            "s--",
            color="tab:gray",
            label="P(failure) first order",
        )
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
