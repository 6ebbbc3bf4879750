"""Off-chip DRAM: one channel of fixed bandwidth, pipelined fixed latency."""

from __future__ import annotations

import math

import simpy

from ..config import DramConfig
from .module import Module


class DRAM(Module):
    def __init__(self, name: str, parent: Module, config: DramConfig) -> None:
        super().__init__(name, parent)
        self.bandwidth_bytes_per_cycle = config.bandwidth_bytes_per_cycle
        self.latency_cycles = config.latency_cycles
        self.channel = simpy.Resource(self.env, capacity=1)
        self.read_bytes = 0
        self.written_bytes = 0

    def transfer(self, nbytes: int, *, write: bool, what: str):
        """Move ``nbytes``: hold the channel for the burst, then wait the latency.

        Requests queue in arrival order, so concurrent DMA streams share the bandwidth and
        delay each other: this is where memory stalls come from.
        """
        if nbytes <= 0:
            return
        with self.channel.request() as grant:
            yield grant
            start = self.env.now
            yield self.env.timeout(math.ceil(nbytes / self.bandwidth_bytes_per_cycle))
            self.trace(what, start, bytes=nbytes)
        if write:
            self.written_bytes += nbytes
        else:
            self.read_bytes += nbytes
        yield self.env.timeout(self.latency_cycles)
