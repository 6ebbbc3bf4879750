"""Architecture-layer protection: redundant dot-product units beside the PE array.

HyCA-style: ``size`` multipliers and an adder tree (a DPPU) recompute the protected neurons
(output channels) from the same operands the array reads, and overwrite the array's results
for those neurons (``overwrite``), or compare and count mismatches (``vote``, the recomputed
value still wins). The recompute is assumed fault-free and reproduces the array's fault-free
arithmetic bit for bit (same accumulation order and overflow rule).

Timing: when a fold starts, the unit is handed the protected outputs of that fold; it needs
``ceil(Kt / size)`` cycles per output. Jobs queue in order. An output tile cannot be written
back before its recomputes are done, so a unit that is too small makes the layer wait: the
latency cost emerges here, it is not a formula added afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import simpy

from .. import kernels
from ..codes import OVERFLOW_CODES
from ..errors import Infeasible
from ..ir import Node
from ..schedule import F_GROUP, F_K0, F_K1, F_M0, F_M1, F_N0, F_N1, LayerSchedule
from .controller import flat_key
from .module import Module


class RedundantUnits(Module):
    """Statistics: ``busy_cycles``, ``recomputed_outputs`` and, in ``vote`` mode,
    ``mismatched_outputs`` (recomputed values that differ from the array's)."""

    def __init__(
        self,
        name: str,
        parent: Module,
        *,
        size: int,
        mode: str,
        protected: Mapping[str, np.ndarray],
    ) -> None:
        super().__init__(name, parent)
        self.size = size
        self.mode = mode
        self.protected = {
            layer: np.unique(np.asarray(ch, dtype=np.int64)) for layer, ch in protected.items()
        }
        self.unit = simpy.Resource(self.env, capacity=1)
        self.busy_cycles = self.statistic("busy_cycles", "cycles recomputing protected outputs")
        self.recomputed_outputs = self.statistic(
            "recomputed_outputs", "protected outputs recomputed (per batch item)"
        )
        self.mismatched_outputs = (
            self.statistic("mismatched_outputs", "recomputed outputs that differ from the array's")
            if mode == "vote"
            else None
        )

    def for_layer(self, node: Node, sched: LayerSchedule, ops) -> LayerRedundancy | None:
        channels = self.protected.get(node.name)
        if channels is None or channels.size == 0:
            return None
        if self.size == 0:
            raise Infeasible(
                f"layer {node.name} has protected neurons but there are no redundant units",
                key="accelerator.protection.redundant_units",
            )
        return LayerRedundancy(self, sched, channels)


class LayerRedundancy:
    """The recompute jobs of one layer: per-fold timing, and the overwrite at the end."""

    def __init__(self, units: RedundantUnits, sched: LayerSchedule, channels: np.ndarray) -> None:
        self.units = units
        self.sched = sched
        n = sched.shape.N
        table = sched.fold_table
        # protected channels of each group, as group-local column indices
        self.columns = [
            channels[(channels >= g * n) & (channels < (g + 1) * n)] - g * n
            for g in range(sched.shape.groups)
        ]
        # per fold: protected outputs of its tile x cycles per output, all folds at once
        protected = np.zeros(len(table), dtype=np.int64)
        for g, cols in enumerate(self.columns):
            sel = table[:, F_GROUP] == g
            protected[sel] = np.searchsorted(cols, table[sel, F_N1]) - np.searchsorted(
                cols, table[sel, F_N0]
            )
        mt = table[:, F_M1] - table[:, F_M0]
        per_output = -(-(table[:, F_K1] - table[:, F_K0]) // units.size)
        self.job_cycles = (mt * protected * per_output).tolist()
        # the output tile a fold accumulates into: (group, m0, n0, n1)
        _, tile = np.unique(flat_key(table, (F_GROUP, F_M0, F_N0, F_N1)), return_inverse=True)
        self.tile = tile.ravel().tolist()
        # a tile's folds come one after another (k innermost): the compiled layer loop
        # (accelsim/hw/layer_events.py) hands a tile the jobs submitted since the last tile
        changes = int(np.count_nonzero(np.diff(tile.ravel()))) if len(tile) else 0
        self.tiles_in_a_row = changes + 1 == len(np.unique(tile)) if len(tile) else True
        self.pending: dict[int, list[simpy.Event]] = {}

    def record_jobs(self, jobs: np.ndarray) -> None:
        """Account for recompute jobs run by the compiled layer loop: (fold, start, end)."""
        units = self.units
        units.busy_cycles.value += int(np.sum(jobs[:, 2] - jobs[:, 1]))
        if units.tracer.enabled:
            layer = self.sched.shape.layer
            for fold, start, end in jobs.tolist():
                units.tracer.span(units.path, "recompute", start, end, layer=layer, fold=int(fold))

    def submit(self, fold: int) -> None:
        """Fold ``fold``'s operands are streaming: queue its recompute job."""
        cycles = self.job_cycles[fold]
        if cycles == 0:
            return
        done = self.units.env.process(self._job(fold, cycles))
        self.pending.setdefault(self.tile[fold], []).append(done)

    def _job(self, fold: int, cycles: int):
        units = self.units
        with units.unit.request() as grant:
            yield grant
            start = units.env.now
            yield units.env.timeout(cycles)
            units.busy_cycles.value += cycles
            units.trace("recompute", start, layer=self.sched.shape.layer, fold=fold)

    def tile_done(self, fold: int) -> simpy.Event | None:
        """An event that fires when every recompute of fold ``fold``'s output tile has
        finished."""
        jobs = self.pending.pop(self.tile[fold], [])
        return self.units.env.all_of(jobs) if jobs else None

    def finish(self, ops) -> None:
        """Overwrite the protected neurons' accumulators with the fault-free recompute."""
        shape = self.sched.shape
        for g, cols in enumerate(self.columns):
            if cols.size == 0:
                continue
            a = ops.a[g]
            start = np.broadcast_to(ops.bias[g][cols], (a.shape[0], cols.size))
            clean = kernels.run_gemm(
                a,
                np.ascontiguousarray(ops.w[g][:, cols]),
                np.ascontiguousarray(start),
                acc_bits=shape.acc_bits,
                overflow=OVERFLOW_CODES[shape.overflow],
            )
            self.units.recomputed_outputs.value += clean.size
            if self.units.mismatched_outputs is not None:
                self.units.mismatched_outputs.value += int(
                    np.count_nonzero(ops.psum[g][:, cols] != clean)
                )
            ops.psum[g][:, cols] = clean
