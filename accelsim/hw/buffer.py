"""On-chip SRAM buffer: capacity split into tile slots, traffic statistics."""

from __future__ import annotations

import simpy

from ..config import BufferConfig
from .module import Module


class SramBuffer(Module):
    """A buffer holding one tile per slot; two slots when double-buffered.

    A producer (DMA) takes a slot before filling it and the consumer frees it when done, so
    a slow consumer stalls the producer and a slow producer stalls the consumer. With
    ``ideal`` memory (``timing: scalesim``) slots are never waited for. Statistics:
    ``read_bytes`` and ``written_bytes`` (packed words at their width).
    """

    def __init__(self, name: str, parent: Module, config: BufferConfig, *, ideal: bool) -> None:
        super().__init__(name, parent)
        self.capacity_bytes = int(config.capacity_kib * 1024)
        self.slot_count = 2 if config.double_buffered else 1
        self.ideal = ideal
        self.slots = simpy.Container(self.env, capacity=self.slot_count, init=self.slot_count)
        self.read_bytes = self.statistic("read_bytes", "bytes read from this buffer")
        self.written_bytes = self.statistic("written_bytes", "bytes written to this buffer")

    def acquire(self):
        """Take a slot (a process step: ``yield from buffer.acquire()``)."""
        if not self.ideal:
            yield self.slots.get(1)

    def release(self):
        """Free a slot."""
        if not self.ideal:
            yield self.slots.put(1)
