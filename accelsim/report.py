"""Rich rendering of results. The simulation never prints; this module only renders."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from .results import SimResult


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def layer_table(result: SimResult) -> Table:
    table = Table(title=f"{result.workload}: per layer (one batch of {result.batch})", expand=False)
    for col, justify in (
        ("layer", "left"),
        ("op", "left"),
        ("MACs", "right"),
        ("cycles", "right"),
        ("compute", "right"),
        ("stall", "right"),
        ("util", "right"),
        ("map eff", "right"),
        ("folds", "right"),
        ("SRAM rd/wr B", "right"),
        ("DRAM rd/wr B", "right"),
        ("energy", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)
    for s in result.layers:
        stall = _si(s.stall_cycles)
        if s.redundancy_wait_cycles:
            stall += f" ({_si(s.redundancy_wait_cycles)} DPPU)"
        table.add_row(
            s.name,
            s.op,
            _si(s.macs),
            _si(s.total_cycles),
            _si(s.compute_cycles),
            f"[red]{stall}[/]" if s.stall_cycles else stall,
            f"{s.utilization:.0%}" if s.macs else "–",
            f"{s.mapping_efficiency:.0%}" if s.folds else "–",
            str(s.folds) if s.folds else "–",
            f"{_si(sum(s.sram_reads_bytes.values()))}/{_si(sum(s.sram_writes_bytes.values()))}",
            f"{_si(s.dram_reads_bytes)}/{_si(s.dram_writes_bytes)}",
            f"{_si(s.energy_pj)}pJ",
        )
    return table


def totals_table(result: SimResult) -> Table:
    t = result.totals()
    table = Table(title="totals", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("MACs", _si(t["macs"]))
    table.add_row("latency", f"{_si(t['total_cycles'])} cycles = {t['latency_us']:.2f} µs")
    table.add_row(
        "compute / stall cycles", f"{_si(t['compute_cycles'])} / {_si(t['stall_cycles'])}"
    )
    table.add_row(
        "DRAM read / written", f"{_si(t['dram_reads_bytes'])}B / {_si(t['dram_writes_bytes'])}B"
    )
    table.add_row("energy per batch", f"{t['energy_pj'] / 1e6:.3f} µJ")
    if result.accuracy is not None:
        n = len(result.labels) if result.labels is not None else 0
        table.add_row("accuracy", f"{result.accuracy:.2%} on {n} samples")
    return table


def area_table(result: SimResult) -> Table:
    table = Table(title="area (µm²)", show_header=False)
    table.add_column("component")
    table.add_column("µm²", justify="right")
    table.add_column("share", justify="right")
    total = result.area["total_um2"]
    for key, value in result.area.items():
        if key == "total_um2" or value == 0:
            continue
        table.add_row(
            key.removesuffix("_um2").replace("_", " "), f"{value:,.0f}", f"{value / total:.1%}"
        )
    table.add_row("[bold]total[/]", f"[bold]{total:,.0f}[/]", "100%")
    return table


def render_simulation(result: SimResult, console: Console | None = None) -> None:
    console = console or Console()
    console.print(layer_table(result))
    console.print(Panel.fit(Group(totals_table(result), area_table(result)), title="design"))
