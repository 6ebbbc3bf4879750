"""The Chrome trace: 1 cycle = 1 ns of trace time, events sorted by timestamp."""

from __future__ import annotations

import json

import pytest

from accelsim.hw.module import Tracer
from accelsim.trace import chrome_trace, write_trace


def _tracer() -> Tracer:
    tracer = Tracer(enabled=True)
    # recorded out of order, as concurrent SimPy processes finish their spans
    tracer.span("top.array", "fold", 5000, 7000, fold=1)
    tracer.span("top.dma", "load", 0, 2500)
    tracer.span("top.array", "fold", 2500, 5000, fold=0)
    tracer.span("top.dma", "layer", 0, 9000)
    return tracer


def test_one_cycle_is_one_nanosecond_of_trace_time():
    spans = [e for e in chrome_trace(_tracer())["traceEvents"] if e["ph"] == "X"]
    fold1 = next(e for e in spans if e["args"].get("fold") == 1)
    # Chrome's ts/dur are microseconds: cycle 5000 is 5 µs, 2000 cycles last 2 µs
    assert fold1["ts"] == pytest.approx(5.0) and fold1["dur"] == pytest.approx(2.0)
    assert (fold1["args"]["start_cycle"], fold1["args"]["end_cycle"]) == (5000, 7000)


def test_metadata_states_the_scale_and_the_clock():
    doc = chrome_trace(_tracer(), clock_mhz=500.0)
    assert doc["otherData"]["time_scale"] == "1 cycle = 1 ns of trace time"
    assert doc["otherData"]["ns_per_cycle"] == 1
    assert doc["otherData"]["real_ns_per_cycle"] == pytest.approx(2.0)
    process = next(e for e in doc["traceEvents"] if e["name"] == "process_name")
    assert "1 cycle = 1 ns" in process["args"]["name"]


def test_events_are_sorted_by_timestamp_metadata_first():
    events = chrome_trace(_tracer())["traceEvents"]
    phases = [e["ph"] for e in events]
    assert phases == sorted(phases, key=lambda p: p != "M")
    spans = [e for e in events if e["ph"] == "X"]
    assert [e["ts"] for e in spans] == sorted(e["ts"] for e in spans)
    # at equal start the enclosing (longer) span comes first
    assert [e["name"] for e in spans[:2]] == ["layer", "load"]


def test_write_trace_writes_the_same_document(tmp_path):
    path = tmp_path / "trace.json"
    write_trace(_tracer(), path, clock_mhz=1000.0)
    assert json.loads(path.read_text()) == chrome_trace(_tracer(), clock_mhz=1000.0)


def test_a_simulation_trace_is_sorted_and_in_cycles(tmp_path):
    from accelsim.config import parse_workload
    from accelsim.ir import save_graph
    from accelsim.simulation import simulate
    from accelsim.workload import build_workload
    from tests.conftest import tiny_integer_graph

    save_graph(tiny_integer_graph(), tmp_path / "tiny.npz")
    raw = {"name": "tiny", "model": "tiny.npz", "batch": 2, "seed": 3}
    workload = build_workload(parse_workload(raw), base_dir=tmp_path, source=tmp_path / "w.yaml")
    tracer = Tracer(enabled=True)
    result = simulate(workload, tracer=tracer)
    spans = [e for e in chrome_trace(tracer)["traceEvents"] if e["ph"] == "X"]
    assert spans and [e["ts"] for e in spans] == sorted(e["ts"] for e in spans)
    # the last span ends at the batch's last cycle: total cycles / 1000 µs of trace time
    end_cycle = max(e["args"]["end_cycle"] for e in spans)
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(end_cycle / 1000.0)
    assert end_cycle <= result.total_cycles * result.batches
