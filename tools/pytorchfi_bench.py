"""PyTorchFI's injection speed on the digits CNN, for bench/faults_speed.py to compare against.

PyTorchFI (PyPI ``pytorchfi``) is a software fault injector: it perturbs a value of a PyTorch
model (a weight, or a layer's output through a forward hook) and re-runs the forward pass. It
lives in its own virtualenv, never in the project's: ::

    python3 -m venv /tmp/pfi-venv
    /tmp/pfi-venv/bin/pip install torch==2.13.0 numpy
    /tmp/pfi-venv/bin/pip install --no-deps pytorchfi
    /tmp/pfi-venv/bin/python tools/pytorchfi_bench.py --injections 2000

The model is the float digits CNN of ``workloads/zoo/digits_cnn.npz`` (the graph accelsim
quantises: conv-ReLU-maxpool twice, then linear, batch norm folded), rebuilt as a torch
``nn.Sequential`` from the file by :func:`bench.torch_floor.digits_cnn_module` (numpy only).
Each injection is PyTorchFI's usual campaign step, one faulty inference of one test sample
(batch 1): declare the fault (PyTorchFI deep-copies the model), run the forward pass, compare
the top-1 class with the fault-free one. Fault models:

* ``weight``: one bit of the int8 image of one random weight of a random conv/linear layer,
  flipped with PyTorchFI's ``declare_weight_fi(function=...)``;
* ``neuron``: ``random_neuron_single_bit_inj`` — one bit of the int8 image of one random conv
  output value (PyTorchFI's built-in single-bit model, range = the layer's largest |output|);
* ``neuron_batched``: ``random_neuron_single_bit_inj_batched`` — one such fault in every
  element of a batch of ``--batch`` samples per forward pass (PyTorchFI's fastest mode).

``--model resnet18 --input-size 64`` runs the same steps on the built-in ResNet-18 of
``workloads/models.py`` (seeded random weights, random inputs; batch norm kept as torch has it),
the float model behind ``workloads/resnet18.yaml``.

Prints one JSON line: injections per second per mode, top-1 changes, float accuracy.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from pytorchfi import core  # noqa: E402
from pytorchfi.neuron_error_models import (  # noqa: E402
    random_neuron_single_bit_inj,
    random_neuron_single_bit_inj_batched,
    single_bit_flip_func,
)
from torch import nn  # noqa: E402

from bench import torch_floor  # noqa: E402  (the float models, shared with the torch floor)

DATA = ROOT / "workloads" / "data" / "digits_test.npz"
BITS = 8


def load_model(
    name: str, input_size: int, samples: int, seed: int
) -> tuple[nn.Module, torch.Tensor, np.ndarray | None]:
    """The float model, ``samples`` inputs and their labels (None: random inputs)."""
    module, inputs = torch_floor.load_model(name, input_size=input_size, samples=samples, seed=seed)
    labels = None
    if name == "digits_cnn":
        labels = np.asarray(np.load(DATA)["y"][:samples])
    return module, inputs, labels


def flip_weight_bit(weights: torch.Tensor, index: tuple) -> torch.Tensor:
    """The weight at ``index`` with one random bit of its int8 image flipped (symmetric scale)."""
    index = tuple(i for i in index if i is not None)
    scale = float(weights.abs().max()) / (2 ** (BITS - 1) - 1)
    quantum = int(round(float(weights[index]) / scale)) & (2**BITS - 1)
    flipped = quantum ^ (1 << random.randrange(BITS))
    signed = flipped - 2**BITS if flipped >= 2 ** (BITS - 1) else flipped
    return torch.tensor(signed * scale, dtype=weights.dtype)


def time_injections(inject, golden: torch.Tensor, inputs: torch.Tensor, n: int, batch: int) -> dict:
    """Run ``n`` injections of ``inject(sample index)``; each yields ``batch`` faulty inferences."""
    changed = 0
    start = time.perf_counter()
    for _ in range(n):
        first = random.randrange(len(inputs) - batch + 1)
        faulty = inject()
        with torch.no_grad():
            out = faulty(inputs[first : first + batch])
        changed += int((out.argmax(1) != golden[first : first + batch]).sum())
    wall = time.perf_counter() - start
    return {
        "injections": n * batch,
        "wall_s": wall,
        "injections_per_s": n * batch / wall,
        "top1_changed": changed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits_cnn", choices=["digits_cnn", "resnet18"])
    parser.add_argument("--input-size", type=int, default=64, help="resnet18 only")
    parser.add_argument("--injections", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=64, help="test samples drawn from")
    parser.add_argument("--batch", type=int, default=64, help="batch of neuron_batched")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    model, inputs, labels = load_model(args.model, args.input_size, args.samples, args.seed)
    with torch.no_grad():
        golden = model(inputs).argmax(1)
    accuracy = None if labels is None else float(np.mean(golden.numpy() == labels))

    gemm_types = [nn.Conv2d, nn.Linear]
    weight_fi = core.fault_injection(
        model, 1, input_shape=list(inputs.shape[1:]), layer_types=gemm_types
    )

    def inject_weight() -> nn.Module:
        layer = random.randrange(weight_fi.get_total_layers())
        shape = weight_fi.get_weights_size(layer)
        index = [random.randrange(size) for size in shape] + [None] * (4 - len(shape))
        return weight_fi.declare_weight_fi(
            function=flip_weight_bit,
            layer_num=[layer],
            k=[index[0]],
            dim1=[index[1]],
            dim2=[index[2]],
            dim3=[index[3]],
        )

    # PyTorchFI's bit-flip neuron model needs each layer's output range
    ranges = []
    probe = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks = [
        m.register_forward_hook(lambda m, i, o: ranges.append(float(o.abs().max()))) for m in probe
    ]
    with torch.no_grad():
        model(inputs)
    for hook in hooks:
        hook.remove()
    neuron_fi = single_bit_flip_func(model, 1, input_shape=list(inputs.shape[1:]), bits=BITS)
    batch = min(args.batch, len(inputs))
    batched_fi = single_bit_flip_func(model, batch, input_shape=list(inputs.shape[1:]), bits=BITS)

    results = {
        "tool": "pytorchfi",
        "model": args.model,
        "input_shape": list(inputs.shape[1:]),
        "torch": torch.__version__,
        "threads": args.threads,
        "float_accuracy": accuracy,
        "weight": time_injections(inject_weight, golden, inputs, args.injections, 1),
        "neuron": time_injections(
            lambda: random_neuron_single_bit_inj(neuron_fi, ranges),
            golden,
            inputs,
            args.injections,
            1,
        ),
        "neuron_batched": time_injections(
            lambda: random_neuron_single_bit_inj_batched(batched_fi, ranges),
            golden,
            inputs,
            max(1, args.injections // batch),
            batch,
        ),
    }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
