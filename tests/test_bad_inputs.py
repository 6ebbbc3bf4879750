"""The bad-input corpus (issue 16): every command, every kind of input a user hands us.

Each case must end with exit status 2, exactly one line on stderr that starts with
``error:``, no traceback, and nothing written: the output folder does not exist (or is
empty) and the workload's folder holds only what the case put there.

Cases run in-process through ``accelsim.cli.main`` (the same code path as the CLI) on a copy
of the digits MLP workload made tiny (8 samples, 8 injections), so a case that is wrongly
accepted costs a second, not a minute.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DELETE = object()

BASE = {
    "name": "bad",
    "model": str(ROOT / "workloads" / "zoo" / "digits_mlp.npz"),
    "dataset": {"path": "data.npz", "samples": 8},
    "batch": 8,
    "seed": 0,
    "quantization": {"weight_bits": 8, "activation_bits": 8, "acc_bits": 32},
    "accelerator": {
        "array": {"rows": 8, "cols": 8, "dataflow": "ws"},
        "buffers": {
            "input": {"capacity_kib": 2.0},
            "weight": {"capacity_kib": 4.0},
            "output": {"capacity_kib": 2.0},
        },
    },
    "faults": {"rate": 2.0e-6, "injections": 8, "seed": 0},
}
OPTIMIZE = {
    "constraints": {"min_accuracy": 0.5, "min_reliability": 0.9},
    "budget": 2,
    "n_initial": 2,
    "variables": {"array_rows": [4, 8]},
}


def _digits(n: int = 16) -> dict[str, np.ndarray]:
    data = np.load(ROOT / "workloads" / "data" / "digits_test.npz")
    return {"x": data["x"][:n], "y": data["y"][:n]}


@dataclass(frozen=True)
class Bad:
    id: str
    command: str = "run"
    patch: dict[str, Any] = field(default_factory=dict)  # dotted key -> value (or DELETE)
    args: tuple[str, ...] = ()
    raw_yaml: str | None = None  # the workload file's whole text instead of BASE + patch
    data: Callable[[], dict[str, Any]] | None = None  # the dataset npz's members
    files: dict[str, bytes] = field(default_factory=dict)  # more files beside the YAML


def _set(doc: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    if value is DELETE:
        doc.pop(last, None)
    else:
        doc[last] = value


def _npz_bytes(members: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    return buffer.getvalue()


def _npz_claiming_16_gib() -> bytes:
    """A small npz whose weight member's .npy header declares 16 GiB: refused from the
    header, before anything is decompressed or allocated."""
    real = np.load(ROOT / "workloads" / "zoo" / "digits_mlp.npz")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in real.files:
            member = io.BytesIO()
            np.save(member, real[name])
            archive.writestr(name + ".npy", member.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 32,)}
        )
        archive.writestr("huge.npy", header.getvalue() + b"\0" * 64)
    return buffer.getvalue()


def _npz_with_text_member() -> bytes:
    real = np.load(ROOT / "workloads" / "zoo" / "digits_mlp.npz")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in real.files:
            member = io.BytesIO()
            np.save(member, real[name])
            archive.writestr(name + ".npy", member.getvalue())
        archive.writestr("notes.txt", b"hello")
    return buffer.getvalue()


def _deep_yaml(levels: int) -> str:
    return "name: deep\noptimize: " + "[" * levels + "]" * levels + "\n"


BILLION_LAUGHS = "\n".join(
    ["name: laughs", "a: &a [x, x, x, x, x, x, x, x, x]"]
    + [
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
        for p, c in zip("abcdefgh", "bcdefghi")
    ]
    + ["optimize: {variables: {array_rows: *i}}"]
)

NUMERIC_KEYS_POSITIVE = [
    "batch",
    "accelerator.array.rows",
    "accelerator.array.cols",
    "accelerator.vector_lanes",
    "accelerator.clock_mhz",
    "accelerator.dram.bandwidth_bytes_per_cycle",
    "accelerator.buffers.input.capacity_kib",
    "technology.mult_area_um2_per_bit2",
    "technology.sram_energy_pj_per_byte",
    "faults.injections",
]

CASES: list[Bad] = [
    # ---- the workload file itself
    Bad("yaml-missing-file", args=("missing.yaml",)),
    Bad("yaml-is-directory", args=(".",)),
    Bad("yaml-empty", raw_yaml=""),
    Bad("yaml-not-mapping", raw_yaml="- 1\n- 2\n"),
    Bad("yaml-syntax", raw_yaml="name: [unclosed\n"),
    Bad("yaml-tab-indent", raw_yaml="name: x\n\tbatch: 2\n"),
    Bad("yaml-control-char", raw_yaml="name: a\x07b\n"),
    Bad("yaml-binary", raw_yaml="\x00\x01\x02garbage"),
    Bad("yaml-deep-50000", raw_yaml=_deep_yaml(50_000)),
    Bad("yaml-billion-laughs-under-optimize", raw_yaml=BILLION_LAUGHS),
    Bad("yaml-python-tag", raw_yaml="name: !!python/object/apply:os.system ['true']\n"),
    Bad("unknown-top-key", patch={"bogus": 1}),
    Bad("unknown-nested-key", patch={"accelerator.bogus": 1}),
    Bad("unknown-optimize-key-by-run", patch={"optimize": {**OPTIMIZE, "bogus": 1}}),
    Bad("optimize-not-mapping-by-run", patch={"optimize": [1, 2]}),
    Bad("name-not-string", patch={"name": [1]}),
    Bad("name-nul", patch={"name": "a\0b"}),
    Bad("name-empty", patch={"name": ""}),
    # ---- numbers: type, sign, finiteness, size
    *[Bad(f"{key}-zero", patch={key: 0}) for key in NUMERIC_KEYS_POSITIVE],
    *[Bad(f"{key}-nan", patch={key: float("nan")}) for key in NUMERIC_KEYS_POSITIVE],
    *[Bad(f"{key}-inf", patch={key: float("inf")}) for key in NUMERIC_KEYS_POSITIVE],
    Bad("batch-string", patch={"batch": "eight"}),
    Bad("batch-huge", patch={"batch": 10**9}),
    Bad("seed-negative", patch={"seed": -1}),
    Bad("faults-seed-negative", patch={"faults.seed": -1}),
    Bad("weight-bits-1", patch={"quantization.weight_bits": 1}),
    Bad("weight-bits-9", patch={"quantization.weight_bits": 9}),
    Bad("activation-bits-0", patch={"quantization.activation_bits": 0}),
    Bad("acc-bits-3", patch={"quantization.acc_bits": 3}),
    Bad("acc-bits-40", patch={"quantization.acc_bits": 40}),
    Bad("overflow-unknown", patch={"quantization.overflow": "clip"}),
    Bad("reserved-msbs-negative", patch={"quantization.reserved_msbs": -1}),
    Bad("reserved-msbs-7", patch={"quantization.reserved_msbs": 7}),
    Bad(
        "per-layer-unknown-layer", patch={"quantization.per_layer": {"nolayer": {"weight_bits": 4}}}
    ),
    Bad("rows-2000", patch={"accelerator.array.rows": 2000}),
    Bad("cols-negative", patch={"accelerator.array.cols": -3}),
    Bad("dataflow-unknown", patch={"accelerator.array.dataflow": "rs"}),
    Bad("timing-unknown", patch={"accelerator.timing": "fast"}),
    Bad("dram-latency-negative", patch={"accelerator.dram.latency_cycles": -1}),
    Bad("buffer-huge", patch={"accelerator.buffers.input.capacity_kib": 1e12}),
    Bad("buffer-too-small-for-a-tile", patch={"accelerator.buffers.weight.capacity_kib": 0.001}),
    Bad("technology-negative", patch={"technology.ff_area_um2_per_bit": -1.0}),
    Bad("technology-unknown-key", patch={"technology.bogus": 1.0}),
    # ---- protection
    Bad("hardened-acc-bit-40", patch={"accelerator.protection.hardened_bits.accumulator": [40]}),
    Bad(
        "hardened-acc-bit-1000",
        patch={"accelerator.protection.hardened_bits.accumulator": [4, 1000]},
    ),
    Bad("hardened-bit-negative", patch={"accelerator.protection.hardened_bits.input": [-1]}),
    Bad("hardened-weight-bit-8", patch={"accelerator.protection.hardened_bits.weight": [8]}),
    Bad("hardened-unknown-class", patch={"accelerator.protection.hardened_bits.bogus": [1]}),
    Bad("redundant-units-negative", patch={"accelerator.protection.redundant_units": -1}),
    Bad("protected-fraction-1.5", patch={"accelerator.protection.protected_fraction": 1.5}),
    Bad(
        "protected-fraction-nan", patch={"accelerator.protection.protected_fraction": float("nan")}
    ),
    Bad(
        "protected-neurons-unknown-layer",
        patch={
            "accelerator.protection.redundant_units": 4,
            "accelerator.protection.protected_neurons": {"nolayer": [0]},
        },
    ),
    Bad(
        "protected-neurons-channel-out-of-range",
        patch={
            "accelerator.protection.redundant_units": 4,
            "accelerator.protection.protected_neurons": {"fc1": [9999]},
        },
    ),
    Bad("redundancy-mode-unknown", patch={"accelerator.protection.redundancy_mode": "pray"}),
    # ---- faults
    Bad("rate-negative", patch={"faults.rate": -1.0}),
    Bad("rate-nan", patch={"faults.rate": float("nan")}),
    Bad("rate-inf", patch={"faults.rate": float("inf")}),
    Bad("rate-one-flip-per-bit-cycle", patch={"faults.rate": 1.0}),
    Bad("unit-unknown", patch={"faults.unit": "per_hour"}),
    Bad("fault-model-unknown", patch={"faults.model": "cosmic"}),
    Bad("mbu-width-9", patch={"faults.model": "mbu", "faults.mbu_width": 9}),
    Bad("registers-empty", patch={"faults.registers": []}),
    Bad("registers-unknown", patch={"faults.registers": ["flux"]}),
    Bad("injections-negative", patch={"faults.injections": -5}),
    Bad("injections-huge", patch={"faults.injections": 10**12}),
    Bad("fault-samples-zero", patch={"faults.samples": 0}),
    Bad("fault-workers-zero", patch={"faults.workers": 0}),
    Bad("plan-missing", patch={"faults.plan": "missing_plan.yaml"}),
    Bad(
        "plan-unknown-layer",
        patch={"faults.plan": "plan.yaml"},
        files={
            "plan.yaml": b"faults:\n  - {layer: nolayer, register: accumulator, row: 0, "
            b"col: 0, cycle: 0, bit: 3}\n"
        },
    ),
    # ---- model files
    Bad("model-missing", patch={"model": "missing.npz"}),
    Bad("model-not-npz", patch={"model": "model.npz"}, files={"model.npz": b"not a zip"}),
    Bad(
        "model-member-not-npy",
        patch={"model": "model.npz"},
        files={"model.npz": _npz_with_text_member()},
    ),
    Bad(
        "model-member-claims-16-gib",
        patch={"model": "model.npz"},
        files={"model.npz": _npz_claiming_16_gib()},
    ),
    Bad("model-builtin-unknown", patch={"model": {"builtin": "no_such_model"}}),
    Bad(
        "model-pickled-object",
        patch={"model": "model.npz"},
        files={"model.npz": _npz_bytes({"w": np.array([object()], dtype=object)})},
    ),
    # ---- datasets
    Bad("dataset-missing", patch={"dataset.path": "nope.npz"}),
    Bad("dataset-xy-length-mismatch", data=lambda: {**_digits(16), "y": _digits(16)["y"][:8]}),
    Bad("dataset-y-longer", data=lambda: {"x": _digits(8)["x"], "y": _digits(16)["y"]}),
    Bad(
        "dataset-wrong-shape",
        data=lambda: {"x": np.zeros((16, 3, 5, 5), np.float32), "y": np.zeros(16, np.int64)},
    ),
    Bad(
        "dataset-empty",
        data=lambda: {"x": np.zeros((0, 1, 8, 8), np.float32), "y": np.zeros(0, np.int64)},
    ),
    Bad(
        "dataset-2d-labels",
        data=lambda: {"x": _digits(16)["x"], "y": _digits(16)["y"].reshape(16, 1)},
    ),
    Bad(
        "dataset-nan-inputs",
        data=lambda: {"x": np.full((16, 1, 8, 8), np.nan, np.float32), "y": _digits(16)["y"]},
    ),
    Bad("dataset-string-labels", data=lambda: {"x": _digits(16)["x"], "y": np.array(["a"] * 16)}),
    Bad(
        "dataset-label-out-of-range",
        data=lambda: {"x": _digits(16)["x"], "y": np.full(16, 10**6, np.int64)},
    ),
    Bad("dataset-no-x", data=lambda: {"y": _digits(16)["y"]}),
    Bad("dataset-samples-zero", patch={"dataset.samples": 0}),
    # ---- --set
    Bad("set-no-key", args=("--set", "=5")),
    Bad("set-no-equals", args=("--set", "batch")),
    Bad("set-unknown-key", args=("--set", "accelerator.bogus=1")),
    Bad("set-wrong-type", args=("--set", "batch=abc")),
    Bad("set-nan", args=("--set", "accelerator.clock_mhz=.nan")),
    # ---- outputs in the way
    Bad("trace-at-directory", args=("--trace", ".")),
    Bad("out-is-a-file", args=("--out", "bad.yaml")),
    # ---- inject options
    Bad("inject-injections-zero", command="inject", args=("--injections", "0")),
    Bad("inject-injections-negative", command="inject", args=("--injections", "-5")),
    Bad("inject-injections-text", command="inject", args=("--injections", "many")),
    Bad("inject-injections-huge", command="inject", args=("--injections", "1000000000000")),
    Bad("inject-workers-zero", command="inject", args=("--workers", "0")),
    Bad("inject-workers-negative", command="inject", args=("--workers", "-2")),
    Bad("inject-dask-workers-zero", command="inject", args=("--dask-workers", "0")),
    Bad("inject-scheduler-not-url", command="inject", args=("--scheduler", "not a url")),
    Bad("inject-no-faults-section", command="inject", patch={"faults": DELETE}),
    # ---- vulnerability / baselines options
    Bad("vulnerability-precision-zero", command="vulnerability", args=("--precision", "0")),
    Bad("vulnerability-precision-negative", command="vulnerability", args=("--precision", "-0.1")),
    Bad("vulnerability-precision-nan", command="vulnerability", args=("--precision", "nan")),
    Bad("vulnerability-samples-zero", command="vulnerability", args=("--samples", "0")),
    Bad("vulnerability-seed-negative", command="vulnerability", args=("--seed", "-1")),
    Bad("vulnerability-pilot-zero", command="vulnerability", args=("--pilot", "0")),
    Bad("vulnerability-confidence-1.5", command="vulnerability", args=("--confidence", "1.5")),
    Bad(
        "vulnerability-max-injections-negative",
        command="vulnerability",
        args=("--max-injections", "-1"),
    ),
    Bad("baselines-p-1.5", command="baselines", args=("--p", "1.5")),
    Bad("baselines-k-negative", command="baselines", args=("--k", "-1")),
    Bad("baselines-rate-nan", command="baselines", args=("--rate", "nan")),
    Bad("baselines-target-zero", command="baselines", args=("--target", "0")),
    Bad("baselines-certify-max-negative", command="baselines", args=("--certify-max", "-1")),
    # ---- optimize
    Bad("optimize-no-section", command="optimize"),
    Bad(
        "optimize-budget-zero",
        command="optimize",
        patch={"optimize": OPTIMIZE},
        args=("--budget", "0"),
    ),
    Bad(
        "optimize-batch-size-zero",
        command="optimize",
        patch={"optimize": OPTIMIZE},
        args=("--batch-size", "0"),
    ),
    Bad(
        "optimize-workers-zero",
        command="optimize",
        patch={"optimize": OPTIMIZE},
        args=("--workers", "0"),
    ),
    Bad("optimize-unknown-key", command="optimize", patch={"optimize": {**OPTIMIZE, "bogus": 1}}),
    Bad(
        "optimize-unknown-variable",
        command="optimize",
        patch={"optimize": {**OPTIMIZE, "variables": {"warp_drive": [1, 2]}}},
    ),
    Bad(
        "optimize-range-nan",
        command="optimize",
        patch={
            "optimize": {
                **OPTIMIZE,
                "variables": {"protected_fraction": {"min": 0.0, "max": float("nan"), "step": 0.1}},
            }
        },
    ),
    Bad(
        "optimize-range-tiny-step",
        command="optimize",
        patch={
            "optimize": {
                **OPTIMIZE,
                "variables": {"protected_fraction": {"min": 0.0, "max": 1.0, "step": 1e-12}},
            }
        },
    ),
    Bad(
        "optimize-min-accuracy-2",
        command="optimize",
        patch={"optimize": {**OPTIMIZE, "constraints": {"min_accuracy": 2.0}}},
    ),
]


def _argv(case: Bad, workload: Path, out: Path) -> list[str]:
    if case.command == "run" and case.args[:1] in (("missing.yaml",), (".",)):
        return ["run", str(workload.parent / case.args[0]), "--out", str(out)]
    argv = [case.command, str(workload)]
    if "--out" not in case.args:
        argv += ["--out", str(out)]
    resolved = []
    for arg in case.args:
        candidate = workload.parent / arg
        resolved.append(str(candidate) if arg in (".", "bad.yaml") else arg)
    return argv + resolved


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 100
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_clear_line(case: Bad, tmp_path: Path, capsys, monkeypatch):
    from accelsim.cli import main

    monkeypatch.chdir(tmp_path)
    workload = tmp_path / "bad.yaml"
    if case.raw_yaml is not None:
        workload.write_text(case.raw_yaml, encoding="utf-8")
    else:
        doc = yaml.safe_load(yaml.safe_dump(BASE))
        for key, value in case.patch.items():
            _set(doc, key, value)
        workload.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (tmp_path / "data.npz").write_bytes(_npz_bytes(case.data() if case.data else _digits()))
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "out" / "run"

    try:
        status = main(_argv(case, workload, out))
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()

    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert status == 2, (status, captured.err[-2000:], captured.out[-500:])
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1 and lines[0].startswith("error:"), captured.err[-2000:]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    written = [p for p in after if p not in before and not (tmp_path / p).is_dir()]
    assert written == [], written


USER_MODEL = """
import torch

def make():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    return net.eval(), torch.zeros(1, 1, 8, 8)
"""

EXPORT_CASES = {
    "calibration-nan": lambda: _npz_bytes({"x": np.full((4, 1, 8, 8), np.nan, np.float32)}),
    "calibration-claims-16-gib": _npz_claiming_16_gib,
    "calibration-not-npz": lambda: b"not a zip",
    "calibration-wrong-shape": lambda: _npz_bytes({"x": np.zeros((4, 3, 5, 5), np.float32)}),
}


@pytest.mark.parametrize("case", sorted(EXPORT_CASES))
def test_bad_calibration_data_is_one_clear_line(case, tmp_path, capsys):
    """``export --calibration``: the user's npz goes through the same header-checked reader."""
    pytest.importorskip("torch")
    from accelsim.cli import main

    calibration = tmp_path / "calib.npz"
    calibration.write_bytes(EXPORT_CASES[case]())
    factory = tmp_path / "net.py"
    factory.write_text(USER_MODEL)
    out = tmp_path / "model.npz"
    model = f"{factory}:make"
    status = main(["export", model, "--out", str(out), "--calibration", str(calibration)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert not out.exists()
