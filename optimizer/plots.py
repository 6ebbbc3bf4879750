"""Figures of an ``optimize`` run (matplotlib, Agg backend: no display needed).

* ``convergence.png``: best feasible objective against the number of evaluations, for the
  search and, when it ran, the comparison search at the same budget;
* ``pareto.png``: area against reliability of every design that ran, feasible ones marked,
  with the Pareto front (least area for at least that reliability).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .log import SearchResult


def best_so_far(search: SearchResult) -> np.ndarray:
    """Best feasible objective after each evaluation (NaN until the first feasible one)."""
    out = np.full(len(search.evaluations), np.nan)
    best = np.inf
    for i, ev in enumerate(search.evaluations):
        if ev.feasible:
            best = min(best, ev.objective)
        if np.isfinite(best):
            out[i] = best
    return out


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Rows of ``(area, reliability)`` not dominated by another (less area, more reliability),
    sorted by area."""
    if len(points) == 0:
        return points
    order = np.lexsort((-points[:, 1], points[:, 0]))
    front, best_reliability = [], -np.inf
    for row in points[order]:
        if row[1] > best_reliability:
            front.append(row)
            best_reliability = row[1]
    return np.array(front)


def _save(fig: Any, path: Path) -> Path:
    from accelsim.jsonio import atomic_file

    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    return path


def write_plots(result: Any, plot_dir: str | Path) -> list[Path]:
    """Write ``convergence.png`` and ``pareto.png`` into ``plot_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    plot_dir = Path(plot_dir)
    written = []
    objective = result.config.objective

    fig, ax = plt.subplots(figsize=(6, 4))
    for search, style in ((result.search, "-"), (result.comparison, "--")):
        if search is None or not search.evaluations:
            continue
        curve = best_so_far(search)
        ax.step(np.arange(1, len(curve) + 1), curve, style, where="post", label=search.method)
    ax.set_xlim(left=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best feasible {objective}")
    ax.set_title(f"{result.workload}: convergence")
    ax.grid(alpha=0.3)
    ax.legend()
    written.append(_save(fig, plot_dir / "convergence.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    evaluations = list(result.search.evaluations)
    if result.comparison is not None:
        evaluations += result.comparison.evaluations
    evaluations += list(result.fixed.values())
    ran = [e for e in evaluations if e.ran and e.metrics.get("reliability")]
    if ran:
        points = np.array(
            [
                [e.metrics["area_um2"]["total_um2"], e.metrics["reliability"]["reliability"]]
                for e in ran
            ]
        )
        feasible = np.array([e.feasible for e in ran])
        ax.scatter(
            points[~feasible, 0], points[~feasible, 1], marker="x", color="grey", label="infeasible"
        )
        ax.scatter(points[feasible, 0], points[feasible, 1], color="tab:blue", label="feasible")
        front = pareto_front(points)
        ax.step(front[:, 0], front[:, 1], where="post", color="tab:red", label="Pareto front")
        target = result.config.constraints.min_reliability
        if target is not None:
            ax.axhline(target, color="tab:green", linestyle=":", label="target")
    else:
        ax.text(
            0.5, 0.5, "no reliability figures (no fault rate)", ha="center", transform=ax.transAxes
        )
    ax.set_xlabel("area (µm²)")
    ax.set_ylabel("reliability (1 - P(failure)/inference)")
    ax.set_title(f"{result.workload}: area vs reliability")
    ax.grid(alpha=0.3)
    ax.legend()
    written.append(_save(fig, plot_dir / "pareto.png"))
    plt.close(fig)
    return written
