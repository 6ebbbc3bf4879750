"""Workloads for accelsim: built-in PyTorch models, the digits data set, training, export from
``torch.export`` (and ONNX) to accelsim's float graph (quantised by :mod:`accelsim.quantize`).

torch is imported only by the modules that need it (``models``, ``train``, ``export``);
``data`` and ``accuracy`` run without it. The numpy quantiser lives in the core
(:mod:`accelsim.quantize`).
"""


def __getattr__(name: str):
    """``workloads.export`` / ``workloads.export_onnx`` without importing torch or onnx first."""
    if name == "export_onnx":
        from .onnx_import import export_onnx

        return export_onnx
    raise AttributeError(f"module 'workloads' has no attribute {name!r}")
