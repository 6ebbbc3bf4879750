"""Rich rendering of an ``optimize`` run (the search itself never prints).

The end report: the best design with every metric (and the reliability interval), the
comparison with the other search at the same budget, and the fixed protection designs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table

from accelsim.report import energy_text
from faults.report import interval_text, pct

from .log import Evaluation, SearchResult

# How close to its limit a satisfied constraint must be to count as binding (normalised units:
# accuracy in fraction points, reliability in decades of failure probability, latency relative).
BINDING_MARGIN = {"accuracy": 0.01, "reliability": 0.1, "latency": 0.05}
OBJECTIVE_UNITS = {"area": "µm²", "energy": "pJ per inference", "area_latency": "µm²·cycles"}
OBJECTIVE_NAMES = {
    "area": "area",
    "energy": "energy per inference",
    "area_latency": "area x latency",
}


def binding_constraints(evaluation: Evaluation | None) -> list[str]:
    """Satisfied constraints within :data:`BINDING_MARGIN` of their limit (the ones that stop
    the design from getting cheaper)."""
    if evaluation is None:
        return []
    return [
        name
        for name, value in sorted(evaluation.constraints.items())
        if -BINDING_MARGIN.get(name, 0.05) <= value <= 0.0
    ]


def status_text(evaluation: Evaluation) -> str:
    """``feasible``, ``cannot run: ...`` or ``violates reliability, latency``."""
    if not evaluation.ran:
        return f"cannot run: {evaluation.infeasible_reason}"
    violated = evaluation.violations()
    if violated:
        return "violates " + ", ".join(sorted(violated))
    return "feasible" if evaluation.feasible else "no objective"


def reliability_text(metrics: Mapping[str, Any]) -> str:
    rel = metrics.get("reliability")
    if not rel:
        return "–"
    return f"{rel['reliability']:.6f} [{rel['lo']:.6f}, {rel['hi']:.6f}]"


def first_order_text(metrics: Mapping[str, Any]) -> str:
    """First-order P(failure) per inference in % with its 95% interval."""
    rel = metrics.get("reliability")
    if not rel:
        return "–"
    return interval_text(rel["failure"], rel["failure_lo"], rel["failure_hi"])


def certificate_text(cert: Mapping[str, Any] | None) -> str:
    """``certified: 0.041 [0.01, 0.1] %, upper 0.09 % vs target 0.1 %, N injections``."""
    if not cert:
        return "–"
    return (
        f"{cert['verdict']}: {interval_text(cert['failure'], cert['lo'], cert['hi'])} %, "
        f"upper {pct(cert['upper'])} % vs target {pct(cert['target'])} %, "
        f"{cert['injections']:,} injections"
    )


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def best_table(result: Any) -> Table:
    """Every metric of the best feasible design."""
    best = result.best
    table = Table(
        title=f"{result.workload}: best design ({result.search.method}, "
        f"{len(result.search.evaluations)} evaluations)",
        show_header=False,
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    if best is None:
        table.add_row("result", result.search.message)
        return table
    m = best.metrics
    for name, value in result.config.readable(best.design).items():
        table.add_row(name, str(value))
    objective = result.config.objective
    table.add_row(
        f"objective: {OBJECTIVE_NAMES[objective]}",
        f"{best.objective:.6g} {OBJECTIVE_UNITS[objective]}",
    )
    for name, value in m["area_um2"].items():
        if value or name == "total_um2":
            table.add_row(f"area: {name.removesuffix('_um2')}", f"{value:,.0f} µm²")
    table.add_row("latency per batch", f"{m['latency_cycles']:,} cycles ({m['latency_us']:.3f} µs)")
    table.add_row("energy per inference", energy_text(m["energy_pj_per_inference"]))
    table.add_row("clean accuracy", "–" if m["accuracy"] is None else f"{m['accuracy']:.2%}")
    if m.get("reliability"):
        rel = m["reliability"]
        table.add_row("reliability [95% CI]", reliability_text(m))
        table.add_row(
            "P(failure)/inference",
            f"{rel['failure']:.3g} [{rel['failure_lo']:.3g}, {rel['failure_hi']:.3g}]",
        )
        if "failure_upper" in rel:
            table.add_row(
                "P(failure) upper bound",
                f"{rel['failure_upper']:.3g} (one-sided "
                f"{rel.get('confidence', 0.95):.0%}, {rel.get('injections', 0):,} "
                "single-fault injections)",
            )
        table.add_row("expected faults/inference", f"{rel['expected_faults']:.3g}")
    if m.get("certificate"):
        table.add_row("certificate", certificate_text(m["certificate"]))
    table.add_row(
        "hardened bits",
        ", ".join(f"{c}: {v}" for c, v in m["hardened_bits"].items() if v) or "none",
    )
    table.add_row("protected neurons", str(m["protected_neurons"]))
    binding = binding_constraints(best)
    table.add_row("binding constraints", ", ".join(binding) or "none")
    return table


def _reached(search: SearchResult) -> str:
    if search.best_index is None:
        return "–"
    return str(search.best_index + 1)


def comparison_table(result: Any) -> Table:
    """The search against the comparison search at the same budget."""
    objective = result.config.objective
    table = Table(
        title="search methods at equal budget (objective: "
        f"{OBJECTIVE_NAMES[objective]}, {OBJECTIVE_UNITS[objective]})"
    )
    for col in (
        "method",
        "evaluations",
        "feasible",
        "cannot run",
        "best objective",
        "evaluations to best",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    for search in (result.search, result.comparison):
        if search is None:
            continue
        evs = search.evaluations
        table.add_row(
            search.method,
            str(len(evs)),
            str(sum(e.feasible for e in evs)),
            str(sum(not e.ran for e in evs)),
            "–" if search.best is None else f"{search.best.objective:.6g}",
            _reached(search),
        )
    return table


def fixed_table(result: Any) -> Table:
    """The fixed protection designs on the best design's hardware, against the optimum: cost,
    then P(failure) per inference in %, first order (FO) and, where certified, the direct
    campaign (MC) on a row of its own, so the table fits 80 columns. Why a design cannot run
    is told in the caption (it wraps), not in a cell."""
    rows: list[tuple[str, Evaluation]] = []
    if result.best is not None:
        rows.append(("optimised", result.best))
    rows.extend(result.fixed.items())
    notes = [f"{name}: {status_text(ev)}" for name, ev in rows if not ev.ran]
    objective = result.config.objective
    table = Table(
        title="fixed protection designs (same array and quantisation)",
        caption="; ".join(
            [
                f"objective: {OBJECTIVE_NAMES[objective]} in {OBJECTIVE_UNITS[objective]}",
                "P(failure) per inference in %; FO: first order, MC: certificate; cert.: "
                "certified, or not: ref. refuted, inc. inconclusive",
                *notes,
            ]
        ),
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("design", overflow="fold")
    for col in ("objective", "cycles", "acc.", "P(fail) [95% CI]", "cert."):
        table.add_column(col, justify="right", no_wrap=True)
    for name, ev in rows:
        m = ev.metrics
        if not ev.ran:
            table.add_row(name, "–", "–", "–", "cannot run", "–")
            continue
        accuracy = "–" if m["accuracy"] is None else f"{m['accuracy']:.1%}"
        table.add_row(
            name,
            _num(ev.objective, 6),
            f"{m['latency_cycles']:,}",
            accuracy,
            f"FO {first_order_text(m)}",
            "",
        )
        cert = m.get("certificate")
        if cert:
            verdict = {"certified": "yes", "refuted": "ref."}.get(cert["verdict"], "inc.")
            table.add_row(
                "",
                "",
                "",
                "",
                "MC " + interval_text(cert["failure"], cert["lo"], cert["hi"]),
                verdict,
            )
    return table


def render_optimize(result: Any) -> Group:
    """The end report of ``python -m accelsim optimize``."""
    parts: list[Any] = [best_table(result)]
    if result.comparison is not None:
        parts.append(comparison_table(result))
    if result.fixed:
        parts.append(fixed_table(result))
    parts.append(
        f"{result.search.message}\nreliability estimated by: {result.reliability_method}"
        f"; designs simulated by this run: {result.evaluated}"
    )
    return Group(*parts)
