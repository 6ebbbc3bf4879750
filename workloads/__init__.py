"""Workloads for accelsim: built-in PyTorch models, the digits data set, training, export from
``torch.export`` to accelsim's float graph, and numpy-only quantisation to the integer graph.

torch is imported only by the modules that need it (``models``, ``train``, ``export``);
``data``, ``quantize`` and ``accuracy`` run without it.
"""
