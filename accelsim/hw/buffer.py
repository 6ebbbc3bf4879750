"""On-chip SRAM buffer: capacity split into tile slots, traffic counters."""

from __future__ import annotations

import simpy

from ..config import BufferConfig
from .module import Module


class SramBuffer(Module):
    """A buffer holding one tile per slot; two slots when double-buffered.

    A producer (DMA) takes a slot before filling it and the consumer frees it when done, so
    a slow consumer stalls the producer and a slow producer stalls the consumer.
    """

    def __init__(self, name: str, parent: Module, config: BufferConfig) -> None:
        super().__init__(name, parent)
        self.capacity_bytes = int(config.capacity_kib * 1024)
        self.slot_count = 2 if config.double_buffered else 1
        self.slots = simpy.Container(self.env, capacity=self.slot_count, init=self.slot_count)
        self.read_bytes = 0
        self.written_bytes = 0

    def acquire(self):
        return self.slots.get(1)

    def release(self):
        return self.slots.put(1)

    def reset_counters(self) -> tuple[int, int]:
        counts = (self.read_bytes, self.written_bytes)
        self.read_bytes = self.written_bytes = 0
        return counts
