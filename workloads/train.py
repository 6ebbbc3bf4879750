"""Train the digits models and export them to ``workloads/zoo`` (``python -m workloads.train``).

Training is deterministic: fixed seeds, one thread, ``torch.use_deterministic_algorithms``,
shuffling from a seeded generator. Running it twice gives graphs with equal
``content_hash`` (the npz bytes differ only in zip timestamps). Each graph is calibrated on
the training split and records its float test accuracy in ``metadata``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from accelsim.executor import execute
from accelsim.ir import Graph, save_graph

from .data import DATA_DIR, digits_split, write_digits_test

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
DIGITS_MODELS = ("digits_mlp", "digits_cnn")
# (epochs, learning rate): a few seconds each on one CPU thread
RECIPES = {"digits_mlp": (40, 0.01), "digits_cnn": (30, 0.01)}
BATCH_SIZE = 64


@contextlib.contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """Seeded, single-threaded, deterministic torch; restores the previous settings."""
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng_state = torch.random.get_rng_state()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.random.set_rng_state(rng_state)


def train_model(name: str, *, seed: int = 0, data_seed: int = 0):
    """Train builtin ``name`` on the digits training split; returns ``(module, info)``."""
    import torch
    from torch import nn

    from .models import BUILTIN_MODELS

    epochs, lr = RECIPES[name]
    x_train, y_train, x_test, y_test = digits_split(data_seed)
    with deterministic_torch(seed):
        module, _ = BUILTIN_MODELS[name](None, seed)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        optimizer = torch.optim.Adam(module.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(seed)
        module.train()
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=generator)
            for start in range(0, len(xt), BATCH_SIZE):
                idx = order[start : start + BATCH_SIZE]
                optimizer.zero_grad()
                loss = loss_fn(module(xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
        module.eval()
        with torch.no_grad():
            predictions = module(torch.from_numpy(x_test)).argmax(1).numpy()
    info = {
        "seed": seed,
        "data_seed": data_seed,
        "epochs": epochs,
        "optimizer": f"Adam(lr={lr})",
        "batch_size": BATCH_SIZE,
        "torch_test_accuracy": float(np.mean(predictions == y_test)),
    }
    return module, info


def float_accuracy(graph: Graph, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a float graph run by accelsim's executor."""
    return float(np.mean(np.argmax(execute(graph, x), axis=1) == y))


def train_and_export(name: str, *, seed: int = 0, data_seed: int = 0) -> Graph:
    """Train ``name`` and export it (calibrated on the training split, accuracy in metadata)."""
    import torch

    from .export import export

    module, info = train_model(name, seed=seed, data_seed=data_seed)
    x_train, _, x_test, y_test = digits_split(data_seed)
    with deterministic_torch(seed):
        graph = export(module, torch.from_numpy(x_train[:1]), x_train, name=name)
    graph.metadata.update({
        "builtin": name,
        "dataset": f"sklearn digits, stratified 70/30 split, seed {data_seed}; pixels / 16",
        "training": info,
        "float_test_accuracy": float_accuracy(graph, x_test, y_test),
        "test_samples": int(len(y_test)),
    })  # fmt: skip
    return graph


def build_zoo(zoo_dir: str | Path = ZOO_DIR, data_dir: str | Path = DATA_DIR,
              seed: int = 0) -> dict[str, Path]:  # fmt: skip
    """Train and export both digits models and write the test split; returns written paths."""
    zoo_dir, data_dir = Path(zoo_dir), Path(data_dir)
    written = {}
    for name in DIGITS_MODELS:
        graph = train_and_export(name, seed=seed)
        path = zoo_dir / f"{name}.npz"
        save_graph(graph, path)
        written[name] = path
    written["digits_test"] = write_digits_test(data_dir / "digits_test.npz")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo-dir", default=str(ZOO_DIR))
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from accelsim.ir import load_graph

    for name, path in build_zoo(args.zoo_dir, args.data_dir, args.seed).items():
        line = f"wrote {path}"
        if name in DIGITS_MODELS:
            meta = load_graph(path).metadata
            line += f"  float test accuracy {meta['float_test_accuracy']:.4f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
