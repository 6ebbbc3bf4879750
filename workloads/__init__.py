"""Workloads for accelsim: built-in PyTorch models, the digits data set, training, export from
``torch.export`` to accelsim's float graph, and numpy-only quantisation to the integer graph.

torch is imported only by the modules that need it (``models``, ``train``, ``export``);
``data``, ``quantize`` and ``accuracy`` run without it.
"""


def __getattr__(name: str):
    """``workloads.export`` / ``workloads.export_onnx`` without importing torch or onnx first."""
    if name == "export_onnx":
        from .onnx_import import export_onnx

        return export_onnx
    raise AttributeError(f"module 'workloads' has no attribute {name!r}")
