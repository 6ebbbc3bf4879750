"""Test accuracy of the digits models, float vs integer (``python -m workloads.accuracy``).

The integer graphs run in accelsim's reference executor; numpy only, no torch needed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from accelsim.config import QuantizationConfig
from accelsim.executor import execute, quantize_input
from accelsim.ir import load_graph
from accelsim.quantize import quantize

from .data import DIGITS16_TEST_PATH, DIGITS_TEST_PATH, load_digits_test

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
TEST_SPLITS = {"digits_resnet": DIGITS16_TEST_PATH}  # the rest take the 8x8 digits


def integer_accuracy(
    float_graph, settings: QuantizationConfig, x: np.ndarray, y: np.ndarray
) -> float:
    """Top-1 accuracy of ``float_graph`` quantised with ``settings``, run by the executor."""
    graph = quantize(float_graph, settings)
    logits = execute(graph, quantize_input(graph, x))
    return float(np.mean(np.argmax(logits, axis=1) == y))


def accuracy_table(
    models: Sequence[str] = ("digits_cnn", "digits_mlp"),
    bits: Sequence[int] = (8, 6, 4),
    reserved: Sequence[int] = (0, 1, 2),
    *,
    zoo_dir: str | Path = ZOO_DIR,
    data_path: str | Path | None = None,
    acc_bits: int = 32,
    overflow: str = "wrap",
) -> list[dict]:
    """One row per (model, bits, r): weights and activations at ``bits``, r reserved MSBs.

    Rows hold ``model, bits, reserved_msbs, float_accuracy, integer_accuracy, samples``.
    Combinations with ``r >= bits - 1`` (no magnitude bit left) are skipped. ``data_path``:
    the test split for every model (default: each model's own, :data:`TEST_SPLITS`).
    """
    rows = []
    for model in models:
        x, y = load_digits_test(data_path or TEST_SPLITS.get(model, DIGITS_TEST_PATH))
        float_graph = load_graph(Path(zoo_dir) / f"{model}.npz")
        float_acc = float(np.mean(np.argmax(execute(float_graph, x), axis=1) == y))
        for b in bits:
            for r in reserved:
                if r >= b - 1:
                    continue
                settings = QuantizationConfig(
                    weight_bits=b,
                    activation_bits=b,
                    acc_bits=acc_bits,
                    overflow=overflow,
                    reserved_msbs=r,
                )
                rows.append(
                    {
                        "model": model,
                        "bits": b,
                        "reserved_msbs": r,
                        "float_accuracy": float_acc,
                        "integer_accuracy": integer_accuracy(float_graph, settings, x, y),
                        "samples": int(len(y)),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["digits_cnn", "digits_mlp", "digits_resnet"]
    )
    parser.add_argument("--bits", nargs="+", type=int, default=[8, 6, 4])
    parser.add_argument("--reserved", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    rows = accuracy_table(args.models, args.bits, args.reserved)
    if args.json:
        from accelsim.jsonio import write_json_atomic

        write_json_atomic(Path(args.json), rows)
    table = Table(
        title=f"digits test accuracy ({rows[0]['samples']} samples), "
        "float vs integer (reference executor)"
    )
    for column in ("model", "w/a bits", "r", "float", "integer", "Δ points"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        delta = 100 * (row["integer_accuracy"] - row["float_accuracy"])
        table.add_row(
            row["model"],
            str(row["bits"]),
            str(row["reserved_msbs"]),
            f"{100 * row['float_accuracy']:.2f}",
            f"{100 * row['integer_accuracy']:.2f}",
            f"{delta:+.2f}",
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
