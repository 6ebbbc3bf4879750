"""Off-chip DRAM: one channel of fixed bandwidth, pipelined fixed latency."""

from __future__ import annotations

import math

from ..config import DramConfig
from .module import Module


class DRAM(Module):
    def __init__(self, name: str, parent: Module, config: DramConfig) -> None:
        super().__init__(name, parent)
        self.bandwidth_bytes_per_cycle = config.bandwidth_bytes_per_cycle
        self.latency_cycles = config.latency_cycles
        self.channel_free_at = 0.0  # the channel serves bursts one at a time, in request order
        self.read_bytes = 0
        self.written_bytes = 0

    def transfer(self, nbytes: int, *, write: bool, what: str):
        """Move ``nbytes``: hold the channel for the burst, then wait the latency.

        Requests are served in arrival order, so concurrent DMA streams share the bandwidth
        and delay each other: this is where memory stalls come from. (A FIFO channel whose
        holding time is known at request time needs no Resource: the start of a burst is
        ``max(now, end of the previous burst)`` — one SimPy event per transfer, not three.)
        """
        if nbytes <= 0:
            return
        start = max(self.env.now, self.channel_free_at)
        burst_end = start + math.ceil(nbytes / self.bandwidth_bytes_per_cycle)
        self.channel_free_at = burst_end
        if self.tracer.enabled:
            self.tracer.span(self.path, what, start, burst_end, bytes=nbytes)
        if write:
            self.written_bytes += nbytes
        else:
            self.read_bytes += nbytes
        yield self.env.timeout(burst_end + self.latency_cycles - self.env.now)
