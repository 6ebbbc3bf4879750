"""Rich rendering of results. The simulation never prints; this module only renders.

Every table fits an 80-column terminal (tests/test_reports_width.py): the per-layer figures
are one wide table when it fits, else a timing and a traffic/energy table whose layer names
wrap, else wrapped per-layer lines (:class:`FirstThatFits`). Numbers have three significant
digits and an SI prefix (:func:`si_text`). Units are named in titles, headers and legends:
figures are per batch, energy is in joules with an SI prefix (:func:`energy_text`), traffic in
bytes.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .results import LayerStats, SimResult

# (scale, prefix) from large to small; counts use the first four, energies down to pico
_SI_PREFIXES = (
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "µ"),
    (1e-9, "n"),
    (1e-12, "p"),
)
UNLIMITED_WIDTH = 100_000  # to measure a layout's natural width
LAYER_WRAP_WIDTH = 15  # split tables: a longer layer name wraps inside its column
COMPACT = {
    "box": box.SIMPLE_HEAD,
    "padding": (0, 1),
    "pad_edge": False,
    "collapse_padding": True,
    "show_edge": False,
}


def si_text(value: float, unit: str = "", *, digits: int = 3, smallest: float = 1.0) -> str:
    """``value`` with three significant digits and an SI prefix: ``3.47k``, ``118 nJ``.

    Integers below 1000 stay exact (``852``). ``smallest`` is the smallest scale used
    (1: no milli/micro prefixes for counts)."""
    if value == 0:
        return f"0 {unit}" if unit else "0"
    if smallest >= 1.0 and abs(value) < 1000 and float(value).is_integer():
        number = str(int(value))
    else:
        usable = [i for i, (scale, _) in enumerate(_SI_PREFIXES) if scale >= smallest]
        i = next((i for i in usable if abs(value) >= _SI_PREFIXES[i][0]), usable[-1])
        scaled = float(f"{value / _SI_PREFIXES[i][0]:.{digits}g}")
        if abs(scaled) >= 1000 and i > 0:  # 999.7 rounds to 1000: one prefix up ("1k")
            i -= 1
            scaled = float(f"{value / _SI_PREFIXES[i][0]:.{digits}g}")
        number = f"{scaled:.{digits}g}"
        if unit:
            return f"{number} {_SI_PREFIXES[i][1]}{unit}"
        return number + _SI_PREFIXES[i][1]
    return f"{number} {unit}" if unit else number


def energy_text(energy_pj: float) -> str:
    """An energy given in pJ, in joules with a proper SI prefix: ``861 nJ``, ``1.23 µJ``."""
    return si_text(energy_pj * 1e-12, "J", smallest=1e-12)


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _timing_cells(s: LayerStats, waits: bool) -> list[str]:
    stall = si_text(s.stall_cycles)
    cells = [
        si_text(s.macs),
        si_text(s.total_cycles),
        si_text(s.compute_cycles),
        f"[red]{stall}[/]" if s.stall_cycles else stall,
    ]
    if waits:
        cells.append(si_text(s.redundancy_wait_cycles) if s.redundancy_wait_cycles else "–")
    return cells + [
        f"{s.utilization:.0%}" if s.macs else "–",
        f"{s.mapping_efficiency:.0%}" if s.folds else "–",
        si_text(s.folds) if s.folds else "–",
    ]


def _traffic_cells(s: LayerStats, total_energy_pj: float) -> list[str]:
    return [
        si_text(sum(s.sram_reads_bytes.values())),
        si_text(sum(s.sram_writes_bytes.values())),
        si_text(s.dram_reads_bytes),
        si_text(s.dram_writes_bytes),
        energy_text(s.energy_pj),
        _share(s.energy_pj, total_energy_pj),
    ]


def _timing_headers(waits: bool) -> list[str]:
    return ["MACs", "cycles", "compute", "stall"] + (["DPPU"] if waits else []) + TIMING_TAIL


TIMING_TAIL = ["util", "map", "folds"]
TRAFFIC_HEADERS = ["SRAM rd", "SRAM wr", "DRAM rd", "DRAM wr", "energy", "share"]


def _legend(waits: bool) -> str:
    return (
        "figures of one batch; compute: cycles the PE array is busy; "
        + ("DPPU: stall cycles waiting for the redundant units; " if waits else "")
        + "util: MACs / (PEs x cycles); map: mapping efficiency (PEs holding work per fold); "
        "rd / wr: bytes read / written; share: of the layers' energy"
    )


def _layer_table(title: str, headers: list[str], *, name_width: int | None, **extra) -> Table:
    table = Table(title=title, **COMPACT, **extra)
    table.add_column("layer", overflow="fold", max_width=name_width)
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    return table


def layer_table(result: SimResult) -> Table:
    """Per layer, every figure in one table (wide terminals)."""
    waits = any(s.redundancy_wait_cycles for s in result.layers)
    table = _layer_table(
        f"{result.workload}: per layer (one batch of {result.batch})",
        ["op", *_timing_headers(waits), *TRAFFIC_HEADERS],
        name_width=None,
        caption=_legend(waits),
    )
    total = sum(s.energy_pj for s in result.layers)
    for s in result.layers:
        table.add_row(s.name, s.op, *_timing_cells(s, waits), *_traffic_cells(s, total))
    return table


def layer_timing_table(result: SimResult) -> Table:
    """Per layer: work and cycles of one batch, utilisation, mapping efficiency, folds."""
    waits = any(s.redundancy_wait_cycles for s in result.layers)
    table = _layer_table(
        f"{result.workload}: per layer, cycles (one batch of {result.batch})",
        ["op", *_timing_headers(waits)],
        name_width=LAYER_WRAP_WIDTH,
    )
    for s in result.layers:
        table.add_row(s.name, s.op, *_timing_cells(s, waits))
    return table


def layer_traffic_table(result: SimResult) -> Table:
    """Per layer: SRAM and DRAM bytes read and written, and energy, for one batch."""
    waits = any(s.redundancy_wait_cycles for s in result.layers)
    table = _layer_table(
        f"{result.workload}: per layer, traffic and energy (one batch)",
        TRAFFIC_HEADERS,
        name_width=LAYER_WRAP_WIDTH,
        caption=_legend(waits),
    )
    total = sum(s.energy_pj for s in result.layers)
    for s in result.layers:
        table.add_row(s.name, *_traffic_cells(s, total))
    return table


def layer_lines(result: SimResult) -> Group:
    """Per layer as wrapped ``figure value`` lines: the layout for the narrowest terminals."""
    waits = any(s.redundancy_wait_cycles for s in result.layers)
    headers = _timing_headers(waits) + TRAFFIC_HEADERS
    total = sum(s.energy_pj for s in result.layers)
    lines: list[Any] = [Text(f"{result.workload}: per layer (one batch of {result.batch})")]
    for s in result.layers:
        cells = _timing_cells(s, waits) + _traffic_cells(s, total)
        line = Text.from_markup(f"[bold]{escape(s.name)}[/] ({s.op}): ")
        line.append_text(Text.from_markup(" · ".join(f"{h} {c}" for h, c in zip(headers, cells))))
        lines.append(line)
    lines.append(Text(_legend(waits), style="dim"))
    return Group(*lines)


class FirstThatFits:
    """Renders the first layout whose natural width (no cell wrapped beyond its column's
    ``max_width``) fits the console, else the last one (which must fit any width: wrapped
    text). The natural width, not rich's minimum: a ``no_wrap`` cell cannot shrink."""

    def __init__(self, *layouts: Any) -> None:
        self.layouts = layouts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unlimited = options.update_width(UNLIMITED_WIDTH)  # rich clamps to the width it is given
        for layout in self.layouts[:-1]:
            parts = layout.renderables if isinstance(layout, Group) else [layout]
            if all(
                Measurement.get(console, unlimited, part).maximum <= options.max_width
                for part in parts
            ):
                yield layout
                return
        yield self.layouts[-1]


def per_layer_report(result: SimResult) -> FirstThatFits:
    """One wide table; or a timing and a traffic table (long names wrap); or wrapped lines."""
    return FirstThatFits(
        layer_table(result),
        Group(layer_timing_table(result), layer_traffic_table(result)),
        layer_lines(result),
    )


def totals_table(result: SimResult) -> Table:
    t = result.totals()
    table = Table(title="totals", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("MACs per batch", si_text(t["macs"]))
    latency = si_text(t["latency_us"] * 1e-6, "s", smallest=1e-12)
    table.add_row("latency per batch", f"{si_text(t['total_cycles'])} cycles = {latency}")
    table.add_row(
        "compute / stall cycles", f"{si_text(t['compute_cycles'])} / {si_text(t['stall_cycles'])}"
    )
    table.add_row(
        "DRAM read / written",
        f"{si_text(t['dram_reads_bytes'], 'B')} / {si_text(t['dram_writes_bytes'], 'B')}",
    )
    table.add_row(f"energy per batch ({result.batch} inf.)", energy_text(t["energy_pj_per_batch"]))
    table.add_row("energy per inference", energy_text(t["energy_pj_per_inference"]))
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


def simulation_report(result: SimResult) -> Group:
    """Everything ``run`` prints about a simulation, as one renderable."""
    return Group(
        per_layer_report(result),
        Panel.fit(Group(totals_table(result), area_table(result)), title="design"),
    )


def render_simulation(result: SimResult, console: Console | None = None) -> None:
    (console or Console()).print(simulation_report(result))
