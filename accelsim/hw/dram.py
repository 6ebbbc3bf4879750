"""Off-chip DRAM: one channel of fixed bandwidth, pipelined fixed latency."""

from __future__ import annotations

import math

from ..config import DramConfig
from .module import Module


class DRAM(Module):
    """Statistics: ``read_bytes``, ``written_bytes`` and ``busy_cycles`` (the channel
    holding bursts). With ``ideal`` memory (``timing: scalesim``) transfers take no time but
    their bytes are still counted."""

    def __init__(self, name: str, parent: Module, config: DramConfig, *, ideal: bool) -> None:
        super().__init__(name, parent)
        self.bandwidth_bytes_per_cycle = config.bandwidth_bytes_per_cycle
        self.latency_cycles = config.latency_cycles
        self.ideal = ideal
        self.channel_free_at = 0.0  # the channel serves bursts one at a time, in request order
        self.read_bytes = self.statistic("read_bytes", "bytes read from DRAM")
        self.written_bytes = self.statistic("written_bytes", "bytes written to DRAM")
        self.busy_cycles = self.statistic(
            "busy_cycles", "cycles the channel was holding a burst (latency excluded)"
        )

    def transfer(self, nbytes: int, *, write: bool, what: str):
        """Move ``nbytes``: hold the channel for the burst, then wait the latency.

        Requests are served in arrival order, so concurrent DMA streams share the bandwidth
        and delay each other: this is where memory stalls come from. (A FIFO channel whose
        holding time is known at request time needs no Resource: the start of a burst is
        ``max(now, end of the previous burst)`` — one SimPy event per transfer, not three.)
        """
        (self.written_bytes if write else self.read_bytes).value += nbytes
        if self.ideal or nbytes <= 0:
            return
        start = max(self.env.now, self.channel_free_at)
        burst = math.ceil(nbytes / self.bandwidth_bytes_per_cycle)
        burst_end = start + burst
        self.channel_free_at = burst_end
        self.busy_cycles.value += burst
        if self.tracer.enabled:
            self.tracer.span(self.path, what, start, burst_end, bytes=nbytes)
        yield self.env.timeout(burst_end + self.latency_cycles - self.env.now)
