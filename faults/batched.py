"""Many faulty inferences at once: the campaign's fast path.

:func:`faults.inject.faulty_inference` handles any plan, one inference per call, and pays
about half a millisecond of Python per injection. Most injections of a campaign are simpler:
their PE faults all sit in one layer (always so for single-fault vulnerability studies, and
for most rate-drawn plans). For a batch of such injections :func:`faulty_outputs`

1. hardens and drops the faults that provably cannot reach an output (one vectorised
   Numba pass over the whole batch: ``mapping.affected_box``), counted as masked early;
2. recomputes each remaining fault's output tile with one Numba call
   (``kernels.chain_values``: the tile's k-chain from the bias, faults inside the fold
   kernel) and requantises just that tile; a tile equal to the golden one is masked;
3. sends every injection whose layer output changed through the later layers *together*:
   the rows of a batch are different samples, each fault-free after its faulty layer, so one
   batched fault-free pass per layer serves them all.

Injections with SRAM faults or faults in several layers take the general path. Results are
identical to :func:`faults.inject.faulty_inference` injection by injection (tested), down to
the :class:`faults.inject.InjectionStats`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from accelsim import executor, functional
from accelsim.ops import GEMM_OPS

from .fault import PE_REGISTERS, FaultTable, inference_faults
from .inject import Golden, InjectionStats, faulty_inference, faulty_layer_outputs


def fast_path(table: FaultTable, batch: int) -> np.ndarray:
    """Which injections :func:`faulty_outputs` computes batched: PE faults in one layer only."""
    fast = np.ones(batch, dtype=bool)
    if len(table) == 0:
        return fast
    sram = table.register >= len(PE_REGISTERS)
    fast[table.injection[sram]] = False
    first = np.full(batch, -1, dtype=np.int64)
    first[table.injection[::-1]] = table.layer[::-1]  # each injection's first fault's layer
    fast[table.injection[table.layer != first[table.injection]]] = False
    return fast


def faulty_outputs(
    golden: Golden,
    samples: np.ndarray,
    table: FaultTable,
    *,
    protected: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[InjectionStats]]:
    """Network outputs ``(B, ...)`` of injections ``0..B-1`` (sample ``samples[i]``, faults
    the rows of ``table`` with ``injection == i``) and what each one's shortcuts saved."""
    samples = np.asarray(samples, dtype=np.int64)
    batch = len(samples)
    protected = protected or {}
    graph = golden.graph
    outputs = golden.values[graph.output][samples].copy()
    stats = [InjectionStats() for _ in range(batch)]
    fast = fast_path(table, batch)
    for i in np.flatnonzero(~fast):  # the general path, one inference at a time
        faults = table.faults(int(i), sample=int(samples[i]))
        pe = [f for f in faults if not f.is_sram]
        sram = [f for f in faults if f.is_sram]
        outputs[i] = faulty_inference(
            golden, int(samples[i]), inference_faults(pe), stats[i], protected=protected, sram=sram
        )[0]
    selected = fast[table.injection]
    for layer_id in np.unique(table.layer[selected]):
        rows = np.flatnonzero(selected & (table.layer == layer_id))
        node = graph.node(table.layer_names[int(layer_id)])
        changed, injections = faulty_layer_outputs(
            golden,
            node,
            samples,
            table.injection[rows],
            table.fold[rows],
            table.kernel_rows(rows),
            stats,
            protected.get(node.name),
        )
        if injections:
            outputs[injections] = propagate(
                golden,
                graph.nodes.index(node) + 1,
                samples[injections],
                node.output,
                np.concatenate(changed),
                [stats[i] for i in injections],
            )
    return outputs, stats


def propagate(
    golden: Golden,
    start: int,
    samples: np.ndarray,
    name: str,
    values: np.ndarray,
    stats: list[InjectionStats],
) -> np.ndarray:
    """The network outputs when tensor ``name`` of samples ``samples`` is ``values``.

    Nodes ``start..`` are fault-free, so each is computed once for every row whose inputs
    differ from the golden run (rows are injections; fault-free arithmetic does not depend
    on the tiling, so no schedule is needed).
    """
    graph = golden.graph
    changed = {name: values}  # full batch, rows equal to golden where not dirty
    dirty = {name: np.ones(len(samples), dtype=bool)}
    for node in graph.nodes[start:]:
        rows = np.zeros(len(samples), dtype=bool)
        for input_name in node.inputs:
            if input_name in dirty:
                rows |= dirty[input_name]
        if not rows.any():
            continue
        picked = np.flatnonzero(rows)
        for i in picked:
            stats[i].layers_recomputed += 1
        inputs = [
            changed[n][picked] if n in changed else golden.values[n][samples[picked]]
            for n in node.inputs
        ]
        if node.op in GEMM_OPS:
            out = functional.run_layer(graph, node, inputs[0], golden.accel)
        else:
            out = executor.run_node(graph, node, inputs)
        reference = golden.values[node.output][samples]
        differs = np.zeros(len(samples), dtype=bool)
        differs[picked] = np.any((out != reference[picked]).reshape(len(picked), -1), axis=1)
        if not differs.any():
            continue
        full = reference.copy()
        full[picked] = out
        changed[node.output] = full
        dirty[node.output] = differs
    output = graph.output
    if output in changed:
        return changed[output]
    return golden.values[output][samples]
