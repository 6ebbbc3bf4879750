"""``python -m bench.figures`` (``make figures``): rerun every command whose figures the README shows.

Each figure in the README names the command that printed it; :data:`FIGURES` lists them all
(``tests/test_readme_figures.py`` fails when the README cites a command missing here). This
runs them — all, or the names given — keeping each one's output in ``out/figures/NAME.txt``,
and rewrites the README blocks that are generated (between ``<!-- figure: NAME -->`` and
``<!-- /figure -->``) from what the code prints now. The other figures are prose and tables
written from those outputs. The test suite recomputes the quick generated blocks and fails
when the README has drifted from them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@dataclass(frozen=True)
class Figure:
    """A README figure's source: the command (after ``python``; ``{out}`` is the figure's
    folder of files), its rough cost, and how its README block is rendered from that folder
    when the block is generated."""

    name: str
    command: tuple[str, ...]
    minutes: float  # on the 2-core development machine, for the progress line
    render: Callable[[Path], str] | None = None

    def argv(self, folder: Path) -> tuple[str, ...]:
        return tuple(part.replace("{out}", str(folder)) for part in self.command)

    def block(self, folder: Path | None = None) -> str:
        """Run the command (into a temporary folder unless given) and render its block."""
        assert self.render is not None, f"figure {self.name} has no generated block"
        if folder is not None:
            return self.render(folder)
        with tempfile.TemporaryDirectory() as tmp:
            _run(self.argv(Path(tmp)))
            return self.render(Path(tmp))


def demo_from(folder: Path) -> str:
    """The README's demo excerpt, from the ``result.json`` of ``make demo``'s command."""
    document = json.loads(next(folder.rglob("result.json")).read_text(encoding="utf-8"))
    return render_demo(document)


def render_demo(document: dict) -> str:
    """The abridged run report: totals of one batch, area, and the fault campaign."""
    from accelsim.report import energy_text, si_text
    from faults.report import rate_text

    def pct(value: float) -> str:
        return f"{value:.2%}"

    totals, area, faults = document["totals"], document["area"], document["faults"]
    layers = ", ".join(layer["name"] for layer in document["layers"])
    batch, samples = document["batch"], document["samples"]
    accuracy = "" if document["accuracy"] is None else f"accuracy {pct(document['accuracy'])}"
    if accuracy:
        accuracy += f" on {samples} samples"
    share = {k: area[k] / area["total_um2"] for k in ("pe_multipliers_um2", "pe_registers_um2")}
    lines = [
        f" {document['workload']}: per layer (one batch of {batch}): {layers}",
        f" totals: {si_text(totals['macs'])} MACs per batch, latency "
        f"{si_text(totals['total_cycles'])} cycles = "
        f"{si_text(totals['latency_us'] * 1e-6, 's', smallest=1e-12)},"
        f" compute / stall {si_text(totals['compute_cycles'])} / {si_text(totals['stall_cycles'])},",
        f"         energy {energy_text(totals['energy_pj_per_batch'])} per batch "
        f"({energy_text(totals['energy_pj_per_inference'])} per inference), {accuracy},",
        f"         area {area['total_um2']:,.0f} µm² (PE multipliers "
        f"{share['pe_multipliers_um2']:.1%}, registers {share['pe_registers_um2']:.1%}, ...)",
    ]
    if faults:
        s, summary = faults["settings"], faults["summary"]

        def estimate(name: str) -> str:
            return rate_text(summary[name])

        golden = faults.get("golden_accuracy")
        lines += [
            f" fault campaign (rate {s['rate']:g} flips per bit per cycle, {s['model']}, "
            f"{faults['injections']} injections):",
            f"   expected faults / inference {faults['expected_faults_per_inference']:.3f}   "
            f"masked {estimate('masked')}",
            f"   SDC (top-1 differs) {estimate('sdc')}   accuracy under faults "
            f"{pct(summary['accuracy']['rate'])}"
            + ("" if golden is None else f" (fault-free {pct(golden)})"),
            "   per register class and per layer breakdowns; faults masked early (not computed): "
            f"{faults['masked_early']}",
        ]
    return "```\n" + "\n".join(lines) + "\n```"


def accuracy_from(folder: Path) -> str:
    """The digits accuracy table (``python -m workloads.accuracy --json``), as markdown."""
    return render_accuracy(json.loads((folder / "accuracy.json").read_text(encoding="utf-8")))


def render_accuracy(rows: list[dict]) -> str:
    lines = ["| model | bits | r=0 | r=1 | r=2 | float |", "|---|---|---|---|---|---|"]
    cells: dict[tuple[str, int], dict[int, float]] = {}
    floats: dict[str, float] = {}
    for row in rows:
        cells.setdefault((row["model"], row["bits"]), {})[row["reserved_msbs"]] = row[
            "integer_accuracy"
        ]
        floats[row["model"]] = row["float_accuracy"]
    shown: set[str] = set()
    for (model, bits), by_r in cells.items():
        values = [f"{100 * by_r[r]:.2f}" if r in by_r else "" for r in (0, 1, 2)]
        float_cell = "" if model in shown else f"{100 * floats[model]:.2f}"
        shown.add(model)
        cells = [model, str(bits), *values, float_cell]
        lines.append(" ".join(f"| {c}" if c else "|" for c in cells) + " |")
    return "\n".join(lines)


FIGURES: tuple[Figure, ...] = (
    Figure(
        "demo",
        ("-m", "accelsim", "run", "workloads/digits_cnn.yaml", "--out", "{out}"),
        0.3,
        demo_from,
    ),
    Figure(
        "accuracy", ("-m", "workloads.accuracy", "--json", "{out}/accuracy.json"), 5, accuracy_from
    ),
    Figure(
        "vulnerability",
        ("-m", "accelsim", "vulnerability", "workloads/digits_cnn.yaml", "--plot", "{out}/plots"),
        3,
    ),
    Figure(
        "baselines",
        ("-m", "accelsim", "baselines", "workloads/digits_cnn.yaml", "--p", "0.1", "--k", "4"),
        5,
    ),
    Figure(
        "baselines-5e-8",
        (
            "-m",
            "accelsim",
            "baselines",
            "workloads/digits_cnn.yaml",
            "--p",
            "0.1",
            "--k",
            "4",
            "--rate",
            "5e-8",
        ),
        5,
    ),
    Figure("nvf_stability", ("-m", "bench.nvf_stability"), 10),
    Figure("nvf_stability-0.25", ("-m", "bench.nvf_stability", "--fraction", "0.25"), 10),
    Figure("first_order", ("-m", "bench.first_order"), 5),
    Figure(
        "protection_table", ("-m", "bench.protection_table", "--budget", "24", "--seed", "0"), 15
    ),
    Figure(
        "certified",
        ("-m", "bench.certified", "--seeds", "0", "1", "2", "3", "4", "--budget", "24"),
        15,
    ),
    Figure(
        "optimizer_quality",
        ("-m", "bench.optimizer_quality", "--seeds", "10", "--budget", "20"),
        20,
    ),
    Figure("bench-sim", ("-m", "accelsim", "bench", "sim"), 1),
    Figure("bench-faults", ("-m", "bench.faults_speed"), 3),
    Figure("dask_scaling", ("-m", "bench.dask_scaling"), 3),
    Figure("workers_speed", ("-m", "bench.workers_speed"), 3),
    Figure("cone_payoff", ("-m", "bench.cone_payoff"), 2),
    Figure("startup", ("-m", "bench.startup"), 1),
)


def _run(command: tuple[str, ...], log: Path | None = None) -> None:
    """Run ``python COMMAND`` from the checkout; its output goes to ``log`` (or is dropped)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    with open(log or os.devnull, "w", encoding="utf-8") as sink:
        done = subprocess.run(
            [sys.executable, *command], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        where = f"; its output is in {log}" if log else ""
        raise SystemExit(f"error: python {' '.join(command)} exited {done.returncode}{where}")


# blank lines around the body: a markdown table right after an HTML comment still renders
BLOCK = "<!-- figure: {name} -->\n\n{body}\n\n<!-- /figure -->"
BLOCK_PATTERN = r"<!-- figure: {name} -->\n\n(.*?)\n\n<!-- /figure -->"


def readme_block(name: str, text: str | None = None) -> str:
    """The generated block ``name`` as the README holds it now."""
    text = README.read_text(encoding="utf-8") if text is None else text
    found = re.search(BLOCK_PATTERN.format(name=re.escape(name)), text, flags=re.S)
    if found is None:
        raise KeyError(f"README.md has no generated block {name!r}")
    return found.group(1)


def write_readme_block(name: str, body: str) -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(BLOCK_PATTERN.format(name=re.escape(name)), flags=re.S)
    found = pattern.search(text)
    if found is None:
        raise KeyError(f"README.md has no generated block {name!r}")
    replacement = BLOCK.format(name=name, body=body)
    README.write_text(text[: found.start()] + replacement + text[found.end() :], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="figures to rerun (default: all)")
    parser.add_argument("--list", action="store_true", help="list the figures and their commands")
    parser.add_argument("--out", default="out/figures", help="folder for the commands' outputs")
    args = parser.parse_args(argv)
    known = {f.name: f for f in FIGURES}
    if args.list:
        for f in FIGURES:
            print(f"{f.name:20} ~{f.minutes:g} min  python {' '.join(f.command)}")
        return 0
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown figure {unknown[0]!r} (allowed: {', '.join(known)})")
    chosen = [known[n] for n in args.names] if args.names else list(FIGURES)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    total = sum(f.minutes for f in chosen)
    print(f"{len(chosen)} figures, about {total:g} minutes on 2 cores; outputs in {args.out}/")
    for i, figure in enumerate(chosen, 1):
        start = time.perf_counter()
        folder = out / figure.name
        folder.mkdir(exist_ok=True)
        argv = figure.argv(folder)
        print(f"[{i}/{len(chosen)}] python {' '.join(argv)}", flush=True)
        _run(argv, out / f"{figure.name}.txt")
        if figure.render is not None:
            write_readme_block(figure.name, figure.block(folder))
            print(f"      README block {figure.name!r} rewritten", flush=True)
        print(f"      {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
