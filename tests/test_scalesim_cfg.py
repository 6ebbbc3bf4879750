"""SCALE-Sim ``.cfg`` files next to their topology CSV (``scale.py -c cfg -t csv``): parsed
into accelsim's accelerator settings, simulated to SCALE-Sim's own cycles, and every
unsupported value refused with one error naming file, section, key and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelsim.errors import AccelsimError
from accelsim.simulation import simulate
from accelsim.topology import load_scalesim_config, workload_from_scalesim
from tools.scalesim_reference import CONFIG, CONV_HEADER

ROOT = Path(__file__).resolve().parents[1]
CASES = json.loads((ROOT / "tests" / "data" / "scalesim_expected.json").read_text())["cases"]


def write_cfg(tmp_path: Path, text: str, name: str = "run.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def reference_cfg(tmp_path: Path, *, rows=8, cols=4, dataflow="ws") -> Path:
    """The config tools/scalesim_reference.py ran the real SCALE-Sim with."""
    text = CONFIG.format(run_name="ref_run", rows=rows, cols=cols, dataflow=dataflow)
    return write_cfg(tmp_path, text)


def test_scalesims_own_config_maps_onto_the_accelerator(tmp_path):
    config = load_scalesim_config(reference_cfg(tmp_path, rows=8, cols=4, dataflow="is"))
    assert (config.run_name, config.rows, config.cols, config.dataflow) == ("ref_run", 8, 4, "is")
    assert config.interface_bandwidth == "CALC" and config.bandwidth_words_per_cycle == 10
    assert config.accelerator_settings() == {
        "timing": "scalesim",  # CALC: SCALE-Sim's ideal interface and its compute count
        "array": {"rows": 8, "cols": 4, "dataflow": "is"},
        "buffers": {
            "input": {"capacity_kib": 1024.0},
            "weight": {"capacity_kib": 1024.0},
            "output": {"capacity_kib": 1024.0},
        },
    }


CONV_CASES = [c for c in CASES if c["kind"] == "conv" and c["groups"] == 1][::7]


@pytest.mark.parametrize(
    "case", CONV_CASES, ids=lambda c: f"{c['name']}-{c['dataflow']}-{c['rows']}x{c['cols']}"
)
def test_cfg_and_csv_simulate_to_scalesims_cycles(tmp_path, case):
    p = case["params"]
    csv = tmp_path / "layer.csv"
    csv.write_text(
        CONV_HEADER + f"{case['name']}, {p['ifmap_h']}, {p['ifmap_w']}, {p['filter_h']}, "
        f"{p['filter_w']}, {p['channels']}, {p['num_filter']}, {p['stride']},\n"
    )
    cfg = reference_cfg(tmp_path, rows=case["rows"], cols=case["cols"], dataflow=case["dataflow"])
    workload = workload_from_scalesim(cfg, csv)
    assert workload.name == "ref_run"
    layer = next(s for s in simulate(workload).layers if s.op == "conv2d")
    assert layer.compute_cycles == layer.total_cycles == case["total_cycles"]


def test_user_bandwidth_drives_the_dram_of_the_register_level_model(tmp_path):
    text = CONFIG.format(run_name="u", rows=4, cols=4, dataflow="os").replace(
        "InterfaceBandwidth = CALC", "InterfaceBandwidth = USER"
    )
    settings = load_scalesim_config(write_cfg(tmp_path, text)).accelerator_settings()
    assert settings["timing"] == "accurate"
    assert settings["dram"] == {"bandwidth_bytes_per_cycle": 10.0}


def test_keys_are_case_insensitive_and_options_override(tmp_path):
    text = (
        "[general]\nrun_name = 'lower'\n[architecture_presets]\narrayheight = 4\n"
        "ARRAYWIDTH = 8\nifmapsramszkb = 64\nfiltersramszkb = 32\nofmapsramszkb = 16\n"
        "dataflow = OS\n"
    )
    config = load_scalesim_config(write_cfg(tmp_path, text))
    assert (config.run_name, config.rows, config.cols, config.dataflow) == ("lower", 4, 8, "os")
    assert config.interface_bandwidth == "CALC" and config.bandwidth_words_per_cycle is None
    csv = tmp_path / "g.csv"
    csv.write_text("Layer Name, M, N, K,\ng1, 5, 6, 7,\n")
    workload = workload_from_scalesim(
        tmp_path / "run.cfg", csv, overrides=["quantization.weight_bits=4"]
    )
    assert workload.config.quantization.weight_bits == 4
    assert workload.config.accelerator.buffers.output.capacity_kib == 16.0


BAD = {
    "unknown-section": ("[extras]\nx = 1\n", "[extras]", "[architecture_presets]"),
    "unknown-key": ("ArrayHeigth = 8\n", "[architecture_presets] arrayheigth", "ArrayWidth"),
    "dataflow": ("Dataflow = rs\n", "[architecture_presets] Dataflow", "ws, os, is"),
    "not-a-number": ("ArrayHeight = eight\n", "[architecture_presets] ArrayHeight", "integer"),
    "too-large": ("ArrayHeight = 4096\n", "[architecture_presets] ArrayHeight", "1..1024"),
    "sparse": ("SparsitySupport = true\n", "[sparsity] SparsitySupport", "False"),
    "banks": ("MemoryBanks = 4\n", "[architecture_presets] MemoryBanks", "1"),
    "bandwidths": ("Bandwidth = 10, 20\n", "[architecture_presets] Bandwidth", "one number"),
    "interface": ("InterfaceBandwidth = AUTO\n", "[run_presets] InterfaceBandwidth", "CALC"),
    "ramulator": ("UseRamulatorTrace = True\n", "[run_presets] UseRamulatorTrace", "False"),
    "layout": ("IfmapCustomLayout = True\n", "[layout] IfmapCustomLayout", "False"),
}


def _replace_line(text: str, line: str) -> str:
    """The reference config with ``line`` replacing the line of the same key (or added)."""
    if line.startswith("["):
        return text + line
    key = line.split("=")[0].strip()
    lines = text.splitlines()
    hits = [i for i, existing in enumerate(lines) if existing.split("=")[0].strip() == key]
    if hits:
        lines[hits[0]] = line.rstrip("\n")
    else:  # a key the reference does not have: into [architecture_presets]
        lines.insert(lines.index("[architecture_presets]") + 1, line.rstrip("\n"))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", sorted(BAD))
def test_unsupported_values_are_one_clear_error(tmp_path, case):
    line, key, allowed = BAD[case]
    base = CONFIG.format(run_name="bad", rows=4, cols=4, dataflow="ws")
    path = write_cfg(tmp_path, _replace_line(base, line))
    with pytest.raises(AccelsimError) as err:
        load_scalesim_config(path)
    message = str(err.value)
    assert str(path) in message and key in message and allowed in message, message
    assert message.count("\n") == 0


def test_missing_required_key_and_missing_files(tmp_path):
    base = CONFIG.format(run_name="m", rows=4, cols=4, dataflow="ws")
    path = write_cfg(tmp_path, base.replace("ArrayWidth = 4\n", ""))
    with pytest.raises(AccelsimError, match=r"\[architecture_presets\] ArrayWidth: required"):
        load_scalesim_config(path)
    with pytest.raises(AccelsimError, match="SCALE-Sim config not found"):
        load_scalesim_config(tmp_path / "nowhere.cfg")
    with pytest.raises(AccelsimError, match="topology file not found"):
        workload_from_scalesim(reference_cfg(tmp_path), tmp_path / "nowhere.csv")
    with pytest.raises(AccelsimError, match="not a SCALE-Sim config"):
        load_scalesim_config(write_cfg(tmp_path, "ArrayHeight = 4\n", "flat.cfg"))


def test_run_takes_a_cfg_beside_its_topology_like_scale_py(tmp_path):
    """``python -m accelsim run --scalesim-cfg CFG CSV`` (scale.py -c CFG -t CSV): SCALE-Sim's
    cycles in result.json, and the trace records the clock."""
    from accelsim.cli import main

    case = CONV_CASES[0]
    p = case["params"]
    csv = tmp_path / "layer.csv"
    csv.write_text(
        CONV_HEADER + f"{case['name']}, {p['ifmap_h']}, {p['ifmap_w']}, {p['filter_h']}, "
        f"{p['filter_w']}, {p['channels']}, {p['num_filter']}, {p['stride']},\n"
    )
    cfg = reference_cfg(tmp_path, rows=case["rows"], cols=case["cols"], dataflow=case["dataflow"])
    out, trace = tmp_path / "out", tmp_path / "trace.json"
    argv = ["run", str(csv), "--scalesim-cfg", str(cfg), "--out", str(out), "--trace", str(trace)]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    conv = next(layer for layer in result["layers"] if layer["op"] == "conv2d")
    assert conv["compute_cycles"] == case["total_cycles"]
    other = json.loads(trace.read_text())["otherData"]
    assert other["time_unit"] == "cycle" and other["clock_mhz"] > 0
