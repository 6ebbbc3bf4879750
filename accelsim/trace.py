"""Chrome trace-event JSON (opens in Perfetto / chrome://tracing): one track per module.

Timestamps are in cycles; the file declares them as microseconds so that one displayed
microsecond is one cycle (``displayTimeUnit`` and the metadata say so).
"""

from __future__ import annotations

from pathlib import Path

from .hw.module import Tracer
from .jsonio import write_json_atomic


def chrome_trace(tracer: Tracer) -> dict:
    modules = sorted({e["module"] for e in tracer.events})
    tid = {m: i + 1 for i, m in enumerate(modules)}
    events: list[dict] = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "accelsim (1 us = 1 cycle)"}}
    ]
    events += [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": tid[m], "args": {"name": m}}
        for m in modules
    ]
    for e in tracer.events:
        events.append(
            {
                "ph": "X",
                "name": e["name"],
                "cat": e["module"].rsplit(".", 1)[-1],
                "pid": 1,
                "tid": tid[e["module"]],
                "ts": e["start"],
                "dur": e["end"] - e["start"],
                "args": e["args"],
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"time_unit": "cycle"}}


def write_trace(tracer: Tracer, path: str | Path) -> None:
    write_json_atomic(path, chrome_trace(tracer))
