"""Run the real SCALE-Sim on small layers and store its cycle counts for tests/test_scalesim.py.

SCALE-Sim (PyPI ``scalesim``) lives in its own virtualenv, never in the project's: ::

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 "numpy<2.4"
    python tools/scalesim_reference.py            # re-runs itself under that venv

Every layer of :data:`CONV_LAYERS` and :data:`GEMM_LAYERS` runs for every dataflow and array
shape of :data:`ARRAYS` in SCALE-Sim's default ``CALC`` bandwidth mode (ideal DRAM interface),
and ``tests/data/scalesim_expected.json`` records each layer's parameters, its GEMM shape and
the columns of SCALE-Sim's ``COMPUTE_REPORT.csv`` ("Total Cycles" is the compute count
accelsim's ``timing: scalesim`` reproduces).

``--time-conv NAME,H,W,KH,KW,C,F,S`` runs one conv layer (``--dataflow``, ``--array RxC``) and
prints its cycles and wall time as JSON; ``bench/scalesim_compare.py`` uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path("/tmp/scalesim-venv")
DEFAULT_OUT = ROOT / "tests" / "data" / "scalesim_expected.json"

# name, ifmap h, ifmap w, filter h, filter w, channels, filters, stride (SCALE-Sim conv columns)
CONV_LAYERS = [
    ("conv3x3_s1", 10, 10, 3, 3, 3, 8, 1),
    ("conv5x5_s2", 13, 11, 5, 5, 4, 6, 2),
    ("conv1x1", 7, 7, 1, 1, 20, 17, 1),
    ("conv3x3_s2", 9, 9, 3, 3, 5, 10, 2),
    ("conv7x7_s3", 16, 16, 7, 7, 2, 5, 3),
    ("conv3x2_rect", 12, 8, 3, 2, 6, 19, 1),
    ("fc_as_conv", 1, 1, 1, 1, 33, 9, 1),
    ("conv2x2_s2_ragged", 9, 7, 2, 2, 5, 11, 2),  # (ifmap - filter) % stride != 0: ceil
    ("conv3x3_s2_ragged", 10, 12, 3, 3, 4, 7, 2),
    ("conv4x4_s3_ragged", 13, 12, 4, 4, 3, 6, 3),
    ("DP_conv3x3", 8, 8, 3, 3, 3, 4, 1),  # 'DP' in the name: SCALE-Sim's depthwise convention
]
# name, M, N, K (SCALE-Sim GEMM columns)
GEMM_LAYERS = [
    ("gemm_a", 10, 7, 13),
    ("gemm_b", 33, 20, 9),
    ("gemm_c", 5, 40, 24),
    ("gemm_d", 1, 12, 30),
]
DATAFLOWS = ("os", "ws", "is")
ARRAYS = ((4, 4), (8, 8), (16, 16), (8, 16), (16, 8))

CONFIG = """[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = 1024
FilterSramSzkB = 1024
OfmapSramSzkB = 1024
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = 10
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""
CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,\n"
)
GEMM_HEADER = "Layer Name, M, N, K,\n"
REPORT_COLUMNS = {
    "Total Cycles (incl. prefetch)": "total_cycles_incl_prefetch",
    "Total Cycles": "total_cycles",
    "Stall Cycles": "stall_cycles",
}


def conv_gemm_shape(h, w, kh, kw, c, f, s) -> dict:
    """SCALE-Sim's lowering (topology_utils.topo_calc_hyperparams): ceil((h - kh + s) / s)."""
    oh, ow = -(-(h - kh) // s) + 1, -(-(w - kw) // s) + 1
    return {"M": oh * ow, "K": kh * kw * c, "N": f}


def run_scalesim(
    kind: str, rows_csv: list[tuple], dataflow: str, rows: int, cols: int, workdir: Path
) -> list[dict]:
    """One SCALE-Sim run over a topology; the COMPUTE_REPORT rows it writes."""
    from scalesim.scale_sim import scalesim

    run_name = f"{kind}_{dataflow}_{rows}x{cols}"
    cfg = workdir / f"{run_name}.cfg"
    cfg.write_text(CONFIG.format(run_name=run_name, rows=rows, cols=cols, dataflow=dataflow))
    topo = workdir / f"{run_name}.csv"
    header = CONV_HEADER if kind == "conv" else GEMM_HEADER
    topo.write_text(header + "".join(", ".join(map(str, r)) + ",\n" for r in rows_csv))
    layout = workdir / "layout.csv"  # scalesim insists on a layout file; unused without layouts
    layout.write_text(CONV_HEADER)
    sim = scalesim(
        save_disk_space=True,
        verbose=False,
        config=str(cfg),
        topology=str(topo),
        layout=str(layout),
        input_type_gemm=kind == "gemm",
    )
    sim.run_scale(top_path=str(workdir / "out"))
    report = (workdir / "out" / run_name / "COMPUTE_REPORT.csv").read_text().splitlines()
    names = [c.strip() for c in report[0].split(",")]
    out = []
    for line in report[1:]:
        values = [v.strip() for v in line.split(",")]
        row = {key: float(values[names.index(col)]) for col, key in REPORT_COLUMNS.items()}
        out.append({k: int(v) for k, v in row.items()})
    return out


def collect(workdir: Path) -> dict:
    from importlib.metadata import version

    import scalesim  # noqa: F401  (fail early, before the loops)

    cases = []
    for dataflow in DATAFLOWS:
        for rows, cols in ARRAYS:
            for kind, layers in (("conv", CONV_LAYERS), ("gemm", GEMM_LAYERS)):
                start = time.perf_counter()
                reports = iter(run_scalesim(kind, layers, dataflow, rows, cols, workdir))
                wall = time.perf_counter() - start
                for layer in layers:
                    name = layer[0]
                    if kind == "conv":
                        h, w, kh, kw, c, f, s = layer[1:]
                        params = dict(
                            ifmap_h=h,
                            ifmap_w=w,
                            filter_h=kh,
                            filter_w=kw,
                            channels=c,
                            num_filter=f,
                            stride=s,
                        )
                        # SCALE-Sim splits a 'DP' layer into one layer per channel
                        parts = c if "DP" in name else 1
                        shape = conv_gemm_shape(h, w, kh, kw, 1 if parts > 1 else c, f, s)
                    else:
                        m, n, k = layer[1:]
                        params = dict(M=m, N=n, K=k)
                        parts, shape = 1, {"M": m, "K": k, "N": n}
                    sub = [next(reports) for _ in range(parts)]
                    cases.append(
                        {
                            "kind": kind,
                            "name": name,
                            "params": params,
                            "gemm": shape,
                            "groups": parts,
                            "dataflow": dataflow,
                            "rows": rows,
                            "cols": cols,
                            **{key: sum(r[key] for r in sub) for key in REPORT_COLUMNS.values()},
                        }
                    )
                print(
                    f"{kind:4s} {dataflow} {rows}x{cols}: {len(layers)} layers in {wall:.2f} s",
                    file=sys.stderr,
                )
    return {
        "generator": "tools/scalesim_reference.py",
        "scalesim_version": version("scalesim"),
        "mode": "CALC (InterfaceBandwidth), no sparsity, no custom layout, batch 1",
        "cycles_field": "total_cycles = COMPUTE_REPORT 'Total Cycles' (sum over a DP layer's "
        "per-channel layers)",
        "cases": cases,
    }


def time_conv(spec: str, dataflow: str, array: str, workdir: Path) -> dict:
    name, *dims = (p.strip() for p in spec.split(","))
    layer = (name, *(int(d) for d in dims))
    rows, cols = (int(v) for v in array.lower().split("x"))
    start = time.perf_counter()
    (report,) = run_scalesim("conv", [layer], dataflow, rows, cols, workdir)
    return {
        "layer": name,
        "dataflow": dataflow,
        "rows": rows,
        "cols": cols,
        "wall_s": time.perf_counter() - start,
        **report,
    }


def _reexec_in_venv(venv: Path) -> int:
    python = venv / "bin" / "python"
    if not python.exists():
        print(
            f"scalesim is not importable here and {python} does not exist; create the venv:\n"
            f"  python3 -m venv {venv} && {venv}/bin/pip install scalesim==3.0.0 "
            '"numpy<2.4"',
            file=sys.stderr,
        )
        return 3
    env = dict(os.environ, SCALESIM_REFERENCE_REEXEC="1")
    return subprocess.call([str(python), __file__, *sys.argv[1:]], env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--time-conv", metavar="NAME,H,W,KH,KW,C,F,S")
    parser.add_argument("--dataflow", default="ws", choices=DATAFLOWS)
    parser.add_argument("--array", default="16x16", metavar="ROWSxCOLS")
    args = parser.parse_args()
    try:
        import scalesim  # noqa: F401
    except ImportError:
        if os.environ.get("SCALESIM_REFERENCE_REEXEC"):
            print("scalesim is not importable in this interpreter", file=sys.stderr)
            return 3
        return _reexec_in_venv(args.venv)
    with tempfile.TemporaryDirectory(prefix="scalesim-ref-") as tmp:
        if args.time_conv:
            print(json.dumps(time_conv(args.time_conv, args.dataflow, args.array, Path(tmp))))
            return 0
        data = collect(Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp_out, args.out)
    print(f"wrote {len(data['cases'])} cases to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
