"""Chrome trace-event JSON (opens in Perfetto / chrome://tracing): one track per module.

Trace time is simulated cycles at a fixed scale: **one cycle = one nanosecond of trace time**,
whatever the clock, so Perfetto's time axis reads directly in cycles (1 µs shown = 1,000
cycles). The format's ``ts``/``dur`` are microseconds, hence cycles / :data:`CYCLES_PER_US`.
The metadata (``otherData`` and the process name) state the scale and, when given, the clock
that converts cycles to real time. Events are written sorted by timestamp (metadata first).
See docs/trace.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .hw.module import Tracer
from .jsonio import write_json_atomic

CYCLES_PER_US = 1000.0  # 1 cycle = 1 ns of trace time; Chrome trace timestamps are in µs
TIME_SCALE = "1 cycle = 1 ns of trace time"


def _trace_us(cycles: float) -> float:
    return cycles / CYCLES_PER_US


def chrome_trace(tracer: Tracer, *, clock_mhz: float | None = None) -> dict[str, Any]:
    """The trace document of ``tracer``'s spans; ``clock_mhz`` is recorded in the metadata."""
    modules = sorted({e["module"] for e in tracer.events})
    tid = {m: i + 1 for i, m in enumerate(modules)}
    metadata: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": f"accelsim ({TIME_SCALE})"}}
    ]
    metadata += [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": tid[m], "args": {"name": m}}
        for m in modules
    ]
    spans = [
        {
            "ph": "X",
            "name": e["name"],
            "cat": e["module"].rsplit(".", 1)[-1],
            "pid": 1,
            "tid": tid[e["module"]],
            "ts": _trace_us(e["start"]),
            "dur": _trace_us(e["end"] - e["start"]),
            "args": {"start_cycle": e["start"], "end_cycle": e["end"], **e["args"]},
        }
        for e in tracer.events
    ]
    # by time; an enclosing span before the spans it contains (longer first at equal start)
    spans.sort(key=lambda s: (s["ts"], -s["dur"], s["tid"]))
    other: dict[str, Any] = {"time_unit": "cycle", "time_scale": TIME_SCALE, "ns_per_cycle": 1}
    if clock_mhz is not None:
        other["clock_mhz"] = clock_mhz
        other["real_ns_per_cycle"] = 1000.0 / clock_mhz
    return {"traceEvents": metadata + spans, "displayTimeUnit": "ns", "otherData": other}


def write_trace(tracer: Tracer, path: str | Path, *, clock_mhz: float | None = None) -> None:
    write_json_atomic(path, chrome_trace(tracer, clock_mhz=clock_mhz))
