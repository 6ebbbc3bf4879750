"""A torch batched single-fault floor: the cheapest honest faulty output per injection in torch.

What it measures, exactly: the same float model as the workload (the digits CNN rebuilt from
``workloads/zoo/digits_cnn.npz``, or a builtin of ``workloads/models.py``) runs in eval mode,
float32, one intra-op thread, on batches of test samples. Every sample of a batch is one
injection: a forward hook on each conv2d/linear layer flips one random bit of the int8 image
(symmetric scale, the layer's largest |output| in the fault-free run) of one random output
value of that sample, in one layer chosen at random per sample; the top-1 class is then
compared with the fault-free one. Injections per second = samples / wall time of those
forwards, fault drawing and comparison included. It models no accelerator: no registers,
cycles, dataflow, integer accumulation or requantisation — which is why it is a floor for a
faulty output in torch, not a like-for-like fault injector.

Torch is imported here only (bench code, never accelsim's).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BITS = 8  # the int8 image a fault flips a bit of


def digits_cnn_module(path: Path):
    """The float graph of the digits CNN as a torch ``nn.Sequential`` (conv2d, clamp as ReLU,
    maxpool2d, flatten, linear: batch norm was folded on export)."""
    import torch
    from torch import nn

    from accelsim.ir import load_graph  # numpy only

    graph = load_graph(path)
    layers = []
    for node in graph.nodes:
        if node.op in ("conv2d", "linear"):
            weight = torch.from_numpy(np.array(node.params["weight"], np.float32))
            if node.op == "conv2d":
                layer = nn.Conv2d(
                    weight.shape[1] * node.attrs["groups"],
                    weight.shape[0],
                    tuple(weight.shape[2:]),
                    tuple(node.attrs["stride"]),
                    tuple(node.attrs["padding"]),
                    groups=node.attrs["groups"],
                )
            else:
                layer = nn.Linear(weight.shape[1], weight.shape[0])
            layer.weight.data.copy_(weight)
            layer.bias.data.copy_(torch.from_numpy(np.array(node.params["bias"], np.float32)))
            layers.append(layer)
        elif node.op == "clamp" and node.attrs["lo"] == 0.0 and node.attrs["hi"] == float("inf"):
            layers.append(nn.ReLU())
        elif node.op == "maxpool2d":
            layers.append(
                nn.MaxPool2d(
                    tuple(node.attrs["kernel"]),
                    tuple(node.attrs["stride"]),
                    tuple(node.attrs["padding"]),
                )
            )
        elif node.op == "flatten":
            layers.append(nn.Flatten())
        else:
            raise ValueError(f"{path}: op {node.op!r} ({node.name}) is not mapped to torch here")
    return nn.Sequential(*layers).eval()


def load_model(name: str, *, input_size: int = 64, samples: int = 64, seed: int = 0):
    """``(module, inputs)``: the digits CNN on its test split, or a builtin on random inputs."""
    import torch

    if name == "digits_cnn":
        data = np.load(ROOT / "workloads" / "data" / "digits_test.npz")
        inputs = torch.from_numpy(np.asarray(data["x"][:samples], np.float32))
        return digits_cnn_module(ROOT / "workloads" / "zoo" / "digits_cnn.npz"), inputs
    from workloads.models import BUILTIN_MODELS

    module, shape = BUILTIN_MODELS[name](input_size, seed)
    generator = torch.Generator().manual_seed(seed)
    return module.eval(), torch.rand((samples, *shape[1:]), generator=generator)


def torch_single_fault_floor(
    name: str, *, injections: int, batch: int = 64, input_size: int = 64, seed: int = 0
) -> dict:
    """Injections per second of the torch floor described in the module docstring."""
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        module, inputs = load_model(name, input_size=input_size, samples=batch, seed=seed)
        batch = len(inputs)
        layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        scales = {}
        probes = [
            m.register_forward_hook(
                lambda m, i, o: scales.__setitem__(m, float(o.abs().max()) / (2 ** (BITS - 1) - 1))
            )
            for m in layers
        ]
        with torch.no_grad():
            golden = module(inputs).argmax(1)
        for probe in probes:
            probe.remove()
        generator = torch.Generator().manual_seed(seed)
        chosen = {}  # per forward: which samples each layer flips a value of

        def flip(layer, _inputs, output):
            rows = chosen[layer]
            if len(rows) == 0:
                return output
            flat = output.reshape(batch, -1)
            where = torch.randint(flat.shape[1], (len(rows),), generator=generator)
            bit = torch.randint(BITS, (len(rows),), generator=generator)
            scale = scales[layer]
            quantum = torch.round(flat[rows, where] / scale).clamp(-128, 127).to(torch.int64)
            flipped = ((quantum & 0xFF) ^ (1 << bit)).to(torch.int64)
            signed = torch.where(flipped >= 128, flipped - 256, flipped)
            flat[rows, where] = signed.to(flat.dtype) * scale
            return output

        hooks = [m.register_forward_hook(flip) for m in layers]
        forwards = max(1, injections // batch)
        changed = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for _ in range(forwards):
                layer_of = torch.randint(len(layers), (batch,), generator=generator)
                for index, layer in enumerate(layers):
                    chosen[layer] = torch.nonzero(layer_of == index).flatten()
                changed += int((module(inputs).argmax(1) != golden).sum())
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        for hook in hooks:
            hook.remove()
    finally:
        torch.set_num_threads(threads)
    return {
        "injections": forwards * batch,
        "injections_per_s": forwards * batch / wall,
        "injections_per_cpu_s": forwards * batch / cpu,
        "top1_changed": changed,
        "batch": batch,
        "torch": torch.__version__,
    }
