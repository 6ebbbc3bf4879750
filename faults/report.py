"""Rich rendering of campaign results (the campaign itself never prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.table import Table

if TYPE_CHECKING:  # the CLI imports the formatting helpers at start-up: keep them light
    from .campaign import CampaignResult


def rate_text(estimate: dict[str, Any]) -> str:
    """``12.3% [10.1, 14.8]`` from a rate estimate with its Wilson interval."""
    if not estimate.get("n"):
        return "–"
    return f"{estimate['rate']:.2%} [{estimate['lo']:.2%}, {estimate['hi']:.2%}]"


def pct(value: float | None) -> str:
    """A probability in percent to two significant digits: ``0``, ``0.031``, ``1.2``, ``37``."""
    if value is None:
        return "–"
    v = 100.0 * float(value)
    if v == 0.0:
        return "0"
    if v >= 99.5:
        return "100"
    return f"{v:.2g}" if v >= 1e-3 else f"{v:.1e}"


def interval_text(point: float | None, lo: float | None = None, hi: float | None = None) -> str:
    """``1.2 [0.9, 1.6]`` in percent (``0 [0, 0.5]`` for a rate never observed)."""
    if lo is None or hi is None:
        return pct(point)
    return f"{pct(point)} [{pct(lo)}, {pct(hi)}]"


def rate_pct_text(estimate: dict[str, Any]) -> str:
    """``12 [10, 15]``: a rate estimate and its interval in percent (``–`` without data)."""
    if not estimate.get("n"):
        return "–"
    return interval_text(estimate["rate"], estimate["lo"], estimate["hi"])


# a compact table: a header rule, no outer frame, one space between columns (fits 80 columns)
COMPACT: dict[str, Any] = {
    "box": box.SIMPLE_HEAD,
    "padding": (0, 1),
    "pad_edge": False,
    "collapse_padding": True,
    "show_edge": False,
}
BREAKDOWN_LEGEND = (
    "% with 95% CI; masked: logits unchanged; SDC: top-1 differs from the fault-free run; "
    "crit. SDC: a correct prediction turned wrong; RMSE of the logits"
)


def _breakdown(title: str, rows: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title, caption=BREAKDOWN_LEGEND, **COMPACT)
    table.add_column("", overflow="fold", max_width=24)
    for col in ("injections", "masked %", "SDC %", "crit. SDC %", "RMSE"):
        table.add_column(col, justify="right")
    for name, s in rows.items():
        table.add_row(
            name,
            f"{s['count']:,}",
            rate_pct_text(s["masked"]),
            rate_pct_text(s["sdc"]),
            rate_pct_text(s["critical_sdc"]),
            f"{s['rmse']['mean']:.4g}",
        )
    return table


def render_campaign(result: CampaignResult) -> Group:
    s = result.summary
    head = Table(
        title=f"{result.workload}: fault campaign ({result.settings.mode}, "
        f"{result.settings.model}, seed {result.seed})"
    )
    head.add_column("figure")
    head.add_column("value [95% CI]", justify="right")
    settings = result.settings
    if settings.mode == "rate":
        per = "bit per cycle" if settings.unit == "bit_cycle" else "bit per inference"
        head.add_row("rate", f"{settings.rate:g} flips per {per}")
        head.add_row("expected faults / inference", f"{result.expected_faults_per_inference:.4g}")
    head.add_row("injections", str(result.injections))
    head.add_row("faults / inference (drawn)", f"{result.faults_per_inference:.4g}")
    head.add_row("masked", rate_text(s["masked"]))
    head.add_row("SDC: top-1 differs from fault-free", rate_text(s["sdc"]))
    head.add_row("critical SDC (correct -> wrong)", rate_text(s["critical_sdc"]))
    if s["accuracy"].get("n"):
        head.add_row("accuracy under faults", rate_text(s["accuracy"]))
    if result.golden_accuracy is not None:
        head.add_row("accuracy fault-free", f"{result.golden_accuracy:.2%}")
    head.add_row(
        "logit RMSE", f"{s['rmse']['mean']:.4g} [{s['rmse']['lo']:.4g}, {s['rmse']['hi']:.4g}]"
    )
    head.add_row("faults masked early (not computed)", str(result.masked_early))
    parts: list[Any] = [head]
    if result.per_register:
        parts.append(_breakdown("per register class", result.per_register))
    if result.per_layer:
        parts.append(_breakdown("per layer", result.per_layer))
    return Group(*parts)
