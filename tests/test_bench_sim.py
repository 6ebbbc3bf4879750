"""The pieces of ``bench sim`` that are not timings: the floor's GEMMs run with BLAS pinned to
one thread and restore the thread pool after; the interval is the median and range seen."""

from __future__ import annotations

import io

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")


def test_the_gemm_floor_pins_blas_to_one_thread_and_restores_it(monkeypatch):
    from bench import run

    seen = []
    limits = threadpoolctl.threadpool_limits

    def spy(*args, **kwargs):
        seen.append(kwargs.get("limits", args[0] if args else None))
        return limits(*args, **kwargs)

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", spy)
    before = [info["num_threads"] for info in threadpoolctl.threadpool_info()]
    floor = run.gemm_floor_macs_per_s([(8, 4, 3), (5, 7, 2)], repeats=2)
    assert floor > 0 and seen and set(seen) == {1}  # every pass pinned to one thread
    assert [info["num_threads"] for info in threadpoolctl.threadpool_info()] == before


def test_the_wall_time_interval_is_median_min_max():
    from bench.run import _median_interval

    assert _median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) == (3.0, 1.0, 5.0)
    assert _median_interval([2.0]) == (2.0, 2.0, 2.0)


@pytest.mark.parametrize("width", [80, 200])
def test_the_simulator_table_fits_without_cutting_a_cell(width):
    from rich.console import Console

    from bench.run import simulator_table

    row = ("16×16", "accurate", "0.20\n[0.20, 0.21]", "9.04", "35.9%\n[33.4%, 37.1%]")
    rows = [(*row, "3.9", "51,816", "MISSED"), (*row, "1.2", "206,184", "met")]
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(simulator_table(rows, [25e9, 24e9], size=224, repeats=5, quick=False))
    text = console.export_text()
    print(text)
    assert "…" not in text and max(map(len, text.splitlines())) <= width
    for cell in ("accurate", "[33.4%, 37.1%]", "206,184", "MISSED"):
        assert cell in text
    words = " ".join(text.split())  # the notes wrap at words: every phrase survives whole
    for phrase in (
        "float32 numpy GEMM on the same shapes",
        "≤ 3 µs/fold",
        "25.0 [24.0, 25.0] GMAC/s",
    ):
        assert phrase in words


def test_the_scalesim_comparison_lines_fit_80_columns(capsys):
    import bench.scalesim_compare as compare

    long = "SCALE-Sim wall / accelsim first-run wall = 2,107x [1,917, 2,548] " * 4
    compare.say(long, indent=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= 80
    assert all(line.startswith("  ") for line in lines)
    assert " ".join(" ".join(lines).split()) == " ".join(long.split())
