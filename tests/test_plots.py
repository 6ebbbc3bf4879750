"""Figures for papers: each format written (PNG at 300 dpi), axes labelled with units, the
BVF caption matching its colours, intervals on the Pareto front, the measured fault-free
accuracy. Inputs are crafted (no campaign runs); matplotlib on the Agg backend."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import numpy as np
import pytest

from faults import plots
from optimizer.plots import convergence_figure, pareto_figure, write_plots
from tests.test_reports_width import optimize_result

MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<svg"}


def crafted_vf() -> SimpleNamespace:
    bvf = {"accumulator": [0.0, 0.01, 0.2, 0.5], "weight": [0.0, 0.05]}
    nvf = {"conv1": {"rate": [0.1, 0.3, None], "lo": [0.05, 0.2, 0.0], "hi": [0.2, 0.4, 0.1]}}
    return SimpleNamespace(
        workload="digits_cnn",
        injections=12_345,
        confidence=0.95,
        bvf=bvf,
        bvf_rates=lambda register: np.array(bvf[register], float),
        nvf=nvf,
        nvf_rates=lambda layer: np.array(
            [np.nan if r is None else r for r in nvf[layer]["rate"]], float
        ),
        nvf_ranking={"conv1": {"significant": True, "p_value": 0.003}},
    )


POINTS = [
    {
        "rate": rate,
        "accuracy": {"rate": 0.98 - k, "lo": 0.95 - k, "hi": 0.99 - k},
        "failure": {"rate": k, "lo": max(k - 0.02, 0.0), "hi": k + 0.03},
        "first_order": k * 0.9,
    }
    for rate, k in ((1e-8, 0.01), (1e-7, 0.1), (1e-6, 0.4))
]


def _written(path, fmt: str) -> bytes:
    assert path.suffix == f".{fmt}" and path.exists()
    data = path.read_bytes()
    assert MAGIC[fmt] in data[:200]
    return data


def _png_dpi(data: bytes) -> float:
    at = data.index(b"pHYs")
    per_metre_x, per_metre_y, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1 and per_metre_x == per_metre_y
    return per_metre_x * 0.0254


def _labelled(ax) -> None:
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip()


@pytest.mark.parametrize("fmt", plots.FIGURE_FORMATS)
def test_every_vulnerability_figure_is_written_in_each_format(tmp_path, fmt):
    vf = crafted_vf()
    heatmap = _written(plots.bvf_heatmap(vf, tmp_path / "bvf_heatmap.png", fmt=fmt), fmt)
    (nvf_path,) = plots.nvf_distributions(vf, tmp_path, fmt=fmt)
    assert nvf_path.name == f"nvf_conv1.{fmt}"
    _written(nvf_path, fmt)
    curve = plots.accuracy_vs_rate(POINTS, tmp_path / "accuracy_vs_rate.png", fmt=fmt)
    _written(curve, fmt)
    if fmt == "png":
        assert _png_dpi(heatmap) == pytest.approx(300, abs=0.5)


@pytest.mark.parametrize("fmt", plots.FIGURE_FORMATS)
def test_optimize_figures_are_written_in_each_format(tmp_path, fmt):
    paths = write_plots(optimize_result(), tmp_path, fmt=fmt)
    assert [p.name for p in paths] == [f"convergence.{fmt}", f"pareto.{fmt}"]
    for path in paths:
        data = _written(path, fmt)
        if fmt == "png":
            assert _png_dpi(data) == pytest.approx(300, abs=0.5)


def test_a_layer_name_with_a_dot_keeps_its_name(tmp_path):
    vf = crafted_vf()
    vf.nvf = {"features.0": vf.nvf["conv1"]}
    vf.nvf_rates = lambda layer: np.array([0.1, 0.3, np.nan])
    (path,) = plots.nvf_distributions(vf, tmp_path, fmt="svg")
    assert path.name == "nvf_features.0.svg"


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="png, pdf, svg"):
        plots.bvf_heatmap(crafted_vf(), tmp_path / "x.png", fmt="jpg")


def test_axes_name_their_units():
    vf = crafted_vf()
    heat = plots.bvf_figure(vf)
    _labelled(heat.axes[0])
    nvf = plots.nvf_figure(vf, "conv1").axes[0]
    _labelled(nvf)
    assert "%" in nvf.get_ylabel()
    curve = plots.accuracy_vs_rate_figure(POINTS, unit="bit_cycle").axes[0]
    assert curve.get_xlabel() == "fault rate (flips per bit per cycle)"
    assert "%" in curve.get_ylabel() and curve.get_ylim() == (0.0, 100.0)
    per_inference = plots.accuracy_vs_rate_figure(POINTS, unit="ber").axes[0]
    assert "flips per bit per inference" in per_inference.get_xlabel()
    result = optimize_result()
    convergence = convergence_figure(result).axes[0]
    _labelled(convergence)
    assert "(pJ per inference)" in convergence.get_ylabel()
    pareto = pareto_figure(result).axes[0]
    assert pareto.get_xlabel() == "area (µm²)"
    _labelled(pareto)


def _luminance(rgba) -> float:
    r, g, b, _ = rgba
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_bvf_caption_matches_the_colours():
    fig = plots.bvf_figure(crafted_vf())
    image = fig.axes[0].images[0]
    colorbar_label = fig.axes[1].get_ylabel()
    assert "darker" in colorbar_label and "more vulnerable" in colorbar_label
    cmap = image.get_cmap()
    # darker = more vulnerable: luminance falls monotonically from BVF 0 to the maximum
    lum = [_luminance(cmap(x)) for x in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(lum, lum[1:]))
    assert "red" in colorbar_label and cmap.name == plots.BVF_COLORMAP == "Reds"


def test_accuracy_plot_shows_the_measured_fault_free_accuracy():
    ax = plots.accuracy_vs_rate_figure(POINTS, fault_free_accuracy=0.9844).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    line = lines["accuracy without faults (98.44%)"]
    assert np.allclose(line.get_ydata(), 98.44)
    # also read from the points when the caller puts it there
    points = [{**p, "fault_free_accuracy": 0.9844} for p in POINTS]
    labels = [line.get_label() for line in plots.accuracy_vs_rate_figure(points).axes[0].lines]
    assert "accuracy without faults (98.44%)" in labels
    # accuracy under faults is plotted in percent
    accuracy = lines["accuracy under faults"]
    assert np.allclose(accuracy.get_ydata(), [97.0, 88.0, 58.0])


def test_pareto_front_has_the_reliability_intervals_as_error_bars():
    from matplotlib.container import ErrorbarContainer

    result = optimize_result()
    ax = pareto_figure(result).axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert bars
    segments = [seg for c in bars for seg in c.lines[2][0].get_segments()]
    ran = [
        e
        for e in [*result.search.evaluations, *result.comparison.evaluations]
        + list(result.fixed.values())
        if e.ran
    ]
    assert len(segments) == len(ran)
    rel = ran[0].metrics["reliability"]
    for seg in segments:
        assert seg[0][1] == pytest.approx(rel["lo"]) and seg[1][1] == pytest.approx(rel["hi"])
