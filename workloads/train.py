"""Train the digits models and export them as float graphs (``python -m workloads.train``).

Training is deterministic: fixed seeds, one thread, ``torch.use_deterministic_algorithms``,
shuffling from a seeded generator. Running it twice gives graphs with equal
``content_hash`` (the npz bytes differ only in zip timestamps). Each graph is calibrated on
the training split and records its float test accuracy in ``metadata``.

Models: ``digits_mlp`` and ``digits_cnn`` on the 8x8 digits (a few seconds each) and
``digits_resnet`` on the digits upsampled to 16x16 (about 40 s on one thread).

Output: the graphs go to ``--out DIR`` (default ``out/zoo``, relative to the current
directory), the test splits the trained models use (``digits_test.npz``,
``digits16_test.npz``) to ``--data-dir`` (default: the ``--out`` directory). The shipped
``workloads/zoo`` and ``workloads/data`` are written only when asked::

    python -m workloads.train --out workloads/zoo --data-dir workloads/data
    python -m workloads.train --out workloads/zoo --data-dir workloads/data --models digits_resnet
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from accelsim.executor import execute
from accelsim.ir import Graph, save_graph

from .data import digits16_split, digits_split, write_digits16_test, write_digits_test

ZOO_DIR = Path(__file__).resolve().parent / "zoo"  # the shipped zoo (read by export_builtin)
DEFAULT_OUT = Path("out") / "zoo"
DIGITS_MODELS = ("digits_mlp", "digits_cnn")  # 8x8 inputs
ZOO_MODELS = (*DIGITS_MODELS, "digits_resnet")
# (epochs, learning rate, schedule): seconds to a minute each on one CPU thread. "constant" is
# Adam at a fixed rate; "onecycle" is torch's OneCycleLR (cosine, peak = the rate) per batch.
RECIPES = {
    "digits_mlp": (40, 0.01, "constant"),
    "digits_cnn": (30, 0.01, "constant"),
    "digits_resnet": (30, 0.01, "onecycle"),
}
BATCH_SIZE = 64
_DIGITS_DESCRIPTION = "sklearn digits, stratified 70/30 split, seed {seed}; pixels / 16"
_DATASETS = {  # name -> (split function, test split writer, metadata description)
    "digits": (digits_split, write_digits_test, _DIGITS_DESCRIPTION),
    "digits16": (
        digits16_split,
        write_digits16_test,
        _DIGITS_DESCRIPTION + ", bilinear 8x8 -> 16x16 (workloads.data.upsample)",
    ),
}
MODEL_DATASET = {"digits_mlp": "digits", "digits_cnn": "digits", "digits_resnet": "digits16"}


def model_split(name: str, data_seed: int = 0):
    """The ``(x_train, y_train, x_test, y_test)`` split model ``name`` is trained on."""
    return _DATASETS[MODEL_DATASET[name]][0](data_seed)


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

    epochs, lr, schedule = RECIPES[name]
    x_train, y_train, x_test, y_test = model_split(name, data_seed)
    with deterministic_torch(seed):
        module, _ = BUILTIN_MODELS[name](None, seed)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        optimizer = torch.optim.Adam(module.parameters(), lr=lr)
        scheduler = None
        if schedule == "onecycle":
            steps = epochs * -(-len(xt) // BATCH_SIZE)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
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
                if scheduler is not None:
                    scheduler.step()
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
    if scheduler is not None:  # the constant-rate models keep their (hashed) metadata as it was
        info["schedule"] = f"OneCycleLR(max_lr={lr}, total_steps={steps}, per batch)"
    return module, info


def float_accuracy(graph: Graph, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a float graph run by accelsim's executor."""
    return float(np.mean(np.argmax(execute(graph, x), axis=1) == y))


def train_and_export(name: str, *, seed: int = 0, data_seed: int = 0) -> Graph:
    """Train ``name`` and export it (calibrated on the training split, accuracy in metadata)."""
    import torch

    from .export import export

    module, info = train_model(name, seed=seed, data_seed=data_seed)
    x_train, _, x_test, y_test = model_split(name, data_seed)
    with deterministic_torch(seed):
        graph = export(module, torch.from_numpy(x_train[:1]), x_train, name=name)
    graph.metadata.update(
        {
            "builtin": name,
            "dataset": _DATASETS[MODEL_DATASET[name]][2].format(seed=data_seed),
            "training": info,
            "float_test_accuracy": float_accuracy(graph, x_test, y_test),
            "test_samples": int(len(y_test)),
        }
    )
    return graph


def build_zoo(
    zoo_dir: str | Path,
    data_dir: str | Path | None = None,
    seed: int = 0,
    models: Sequence[str] = DIGITS_MODELS,
    on_model: Callable[[str, Graph, Path, float], None] | None = None,
) -> dict[str, Path]:
    """Train and export ``models`` into ``zoo_dir`` and write the test split of each data set
    they use (``digits_test.npz``, ``digits16_test.npz``) into ``data_dir`` (default
    ``zoo_dir``); returns the written paths by name (``digits_test``, ``digits16_test``).

    The default ``models`` are the two 8x8 models (seconds); ``ZOO_MODELS`` adds
    ``digits_resnet``. Pass ``ZOO_DIR`` to overwrite the shipped zoo. ``on_model(name, graph,
    path, seconds)`` is called after each model is written.
    """
    zoo_dir = Path(zoo_dir)
    data_dir = zoo_dir if data_dir is None else Path(data_dir)
    written = {}
    for name in models:
        if name not in RECIPES:
            raise ValueError(f"no training recipe for {name!r}; known: {sorted(RECIPES)}")
        start = time.perf_counter()
        graph = train_and_export(name, seed=seed)
        path = zoo_dir / f"{name}.npz"
        save_graph(graph, path)
        written[name] = path
        if on_model is not None:
            on_model(name, graph, path, time.perf_counter() - start)
    for dataset in sorted({MODEL_DATASET[name] for name in models}):
        write = _DATASETS[dataset][1]
        written[f"{dataset}_test"] = write(data_dir / f"{dataset}_test.npz")  # data seed 0
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Without --out nothing shipped is touched: graphs and test splits go to out/zoo. "
        "Regenerate the shipped files with --out workloads/zoo --data-dir workloads/data.",
    )
    parser.add_argument(
        "--out",
        "--zoo-dir",
        dest="out",
        default=str(DEFAULT_OUT),
        metavar="DIR",
        help="directory for the graphs (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="directory for the test splits (default: the --out directory)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(ZOO_MODELS),
        choices=ZOO_MODELS,
        metavar="MODEL",
        help=f"models to train, of {', '.join(ZOO_MODELS)} (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def report(name: str, graph: Graph, path: Path, seconds: float) -> None:
        accuracy = graph.metadata["float_test_accuracy"]
        print(f"wrote {path}  float test accuracy {accuracy:.4f}  ({seconds:.1f} s)", flush=True)

    written = build_zoo(args.out, args.data_dir, args.seed, args.models, on_model=report)
    for name, path in written.items():
        if name not in RECIPES:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
