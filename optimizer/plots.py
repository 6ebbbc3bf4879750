"""Figures of an ``optimize`` run (matplotlib, Agg backend: no display needed).

* ``convergence.<fmt>``: best feasible objective (with its unit) against the number of
  evaluations, for the search and, when it ran, the comparison search at the same budget;
* ``pareto.<fmt>``: area against reliability of every design that ran, each with its
  reliability interval as an error bar, feasible ones marked, with the Pareto front (least
  area for at least that reliability).

``fmt`` is ``png`` (300 dpi), ``pdf`` or ``svg``; saving is shared with ``faults.plots``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faults.plots import check_format, pyplot, save_figure

from .log import SearchResult
from .report import OBJECTIVE_NAMES, OBJECTIVE_UNITS


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


def convergence_figure(result: Any) -> Any:
    """Best feasible objective (named, with its unit) after each evaluation, per search."""
    from matplotlib.ticker import MaxNLocator

    objective = result.config.objective
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for search, style in ((result.search, "-"), (result.comparison, "--")):
        if search is None or not search.evaluations:
            continue
        curve = best_so_far(search)
        ax.step(np.arange(1, len(curve) + 1), curve, style, where="post", label=search.method)
    ax.set_xlim(left=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations (designs simulated)")
    ax.set_ylabel(f"best feasible {OBJECTIVE_NAMES[objective]} ({OBJECTIVE_UNITS[objective]})")
    ax.set_title(f"{result.workload}: convergence")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _reliability_error(evaluations: list[Any]) -> np.ndarray:
    """Rows (below, above) of each design's reliability interval; 0 where it has none."""
    errors = []
    for e in evaluations:
        rel = e.metrics["reliability"]
        point = rel["reliability"]
        lo, hi = rel.get("lo", point), rel.get("hi", point)
        errors.append((max(point - lo, 0.0), max(hi - point, 0.0)))
    return np.array(errors, float).reshape(-1, 2).T


def pareto_figure(result: Any) -> Any:
    """Area against reliability of every design that ran, with each design's reliability
    interval as an error bar; feasible ones marked; the Pareto front; the target."""
    fig, ax = pyplot().subplots(figsize=(6, 4))
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
        errors = _reliability_error(ran)
        feasible = np.array([e.feasible for e in ran])
        for mask, style in (
            (~feasible, {"fmt": "x", "color": "grey", "label": "infeasible"}),
            (feasible, {"fmt": "o", "color": "tab:blue", "label": "feasible"}),
        ):
            if mask.any():
                ax.errorbar(
                    points[mask, 0],
                    points[mask, 1],
                    yerr=errors[:, mask],
                    capsize=2,
                    linewidth=0.8,
                    **style,
                )
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
    ax.set_ylabel("reliability, 1 - P(failure) per inference")
    ax.set_title(f"{result.workload}: area vs reliability (bars: 95% interval)")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def write_plots(result: Any, plot_dir: str | Path, *, fmt: str = "png") -> list[Path]:
    """Write ``convergence.<fmt>`` and ``pareto.<fmt>`` into ``plot_dir`` (PNG at 300 dpi);
    return their paths."""
    check_format(fmt)
    plot_dir = Path(plot_dir)
    return [
        save_figure(convergence_figure(result), plot_dir / f"convergence.{fmt}", fmt),
        save_figure(pareto_figure(result), plot_dir / f"pareto.{fmt}", fmt),
    ]
