"""One GEMM layer's controller processes as a compiled event loop (the ``accurate`` fast path).

The controller's four processes (input DMA, weight DMA, compute, write-back; see
:mod:`accelsim.hw.controller`) interact through the shared DRAM channel, buffer slots, a
FIFO of finished tiles and operand-ready events. When weights do not stay resident they
interact on every fold, so the SimPy model costs several Python-level events per fold. This
module runs the same processes on the same rules with the same event order, in one Numba
call: SimPy's semantics written out for exactly the primitives the controller uses —

* a heap ordered by (time, scheduling order); an event's callbacks run in the order they
  were attached (a resource's trigger first, then the process that waits on it);
* ``Timeout`` and ``Event.succeed`` schedule at once; a process that yields an event
  already processed continues without waiting;
* ``Container.get`` / ``put`` and ``Store.get`` / ``put``: a request is tried when it is
  made, and a put's processing tries the waiting gets (SimPy's ``_trigger_get``);
* the DRAM channel: a burst starts at ``max(now, end of the previous burst)``.

The redundant units' recompute jobs run in the same loop (a capacity-1 Resource with its
FIFO of requests, one job process per fold started URGENT as SimPy starts a process, and a
tile's all-of condition that the write-back waits for). With ideal memory the SimPy
processes run instead (a layer is one run of folds there); ``tests/test_fold_transactions.py``
checks this loop against the per-fold event oracle (``tests/fold_event_oracle.py``) fold by
fold on random accelerators.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# event states
_PENDING, _TRIGGERED, _PROCESSED = 0, 1, 2
# processes, in the order they resume at the start of a layer
_INPUT_DMA, _WEIGHT_DMA, _WRITEBACK, _COMPUTE = 0, 1, 2, 3
# containers (buffer slots)
_IN, _W, _OUT = 0, 1, 2
# resource callbacks an event carries before its waiting process
_NO_TRIGGER, _TRIGGER_SLOTS, _TRIGGER_TILES, _TRIGGER_UNIT = 0, 1, 2, 3
_JOBS = 4  # process ids from here on are recompute jobs
# transfer kinds (trace labels)
TRANSFER_IFMAP, TRANSFER_WEIGHTS, TRANSFER_OFMAP = 0, 1, 2


_URGENT_KEY = 0  # SimPy's URGENT (a process's start): before NORMAL events at the same time
_NORMAL_KEY = 1 << 40


@njit(cache=True)
def _push(heap_t, heap_id, heap_e, counters, t, e, priority=_NORMAL_KEY):
    """Schedule event ``e`` at ``t``: after everything of its priority already scheduled at
    ``t`` (the heap key is priority, then scheduling order)."""
    i = counters[0]
    counters[0] += 1
    eid = counters[1] + priority
    counters[1] += 1
    heap_t[i], heap_id[i], heap_e[i] = t, eid, e
    while i > 0:
        parent = (i - 1) // 2
        if heap_t[parent] < heap_t[i] or (
            heap_t[parent] == heap_t[i] and heap_id[parent] < heap_id[i]
        ):
            break
        heap_t[parent], heap_t[i] = heap_t[i], heap_t[parent]
        heap_id[parent], heap_id[i] = heap_id[i], heap_id[parent]
        heap_e[parent], heap_e[i] = heap_e[i], heap_e[parent]
        i = parent


@njit(cache=True)
def _pop(heap_t, heap_id, heap_e, counters):
    n = counters[0] - 1
    counters[0] = n
    t, e = heap_t[0], heap_e[0]
    heap_t[0], heap_id[0], heap_e[0] = heap_t[n], heap_id[n], heap_e[n]
    i = 0
    while True:
        left, right, smallest = 2 * i + 1, 2 * i + 2, i
        if left < n and (
            heap_t[left] < heap_t[smallest]
            or (heap_t[left] == heap_t[smallest] and heap_id[left] < heap_id[smallest])
        ):
            smallest = left
        if right < n and (
            heap_t[right] < heap_t[smallest]
            or (heap_t[right] == heap_t[smallest] and heap_id[right] < heap_id[smallest])
        ):
            smallest = right
        if smallest == i:
            break
        heap_t[smallest], heap_t[i] = heap_t[i], heap_t[smallest]
        heap_id[smallest], heap_id[i] = heap_id[i], heap_id[smallest]
        heap_e[smallest], heap_e[i] = heap_e[i], heap_e[smallest]
        i = smallest
    return t, e


@njit(cache=True)
def simulate_gemm_layer(
    start_cycle,
    dram_free_at,
    bandwidth,
    latency,
    block_bytes,
    fold_block,
    first_k,
    last_k,
    last_of_block,
    base_cycles,
    weight_tile,
    weight_tile_bytes,
    weight_loads,
    tile_acc_bytes,
    tile_out_bytes,
    resident,
    preload,
    overlap_preload,
    slots,
    job_cycles,
    fold_start,
    fold_end,
    transfers,
    jobs_run,
):
    """Run one layer from ``start_cycle``; per-fold start/end into ``fold_start`` /
    ``fold_end``, DRAM bursts (kind, start, end, bytes) into ``transfers`` in request order.

    ``slots``: (input, weight, output) buffer slots. ``job_cycles``: per fold, the cycles of
    its recompute job on the redundant units (0: none; a tile's folds are consecutive), whose
    (fold, start, end) go into ``jobs_run``. Returns (end cycle, DRAM channel free at,
    bursts, output-buffer bytes read by write-back, recompute jobs, cycles write-backs waited
    for the redundant units).
    """
    folds = fold_block.shape[0]
    blocks = block_bytes.shape[0]
    loads = weight_loads.shape[0]
    tiles = 0
    for i in range(folds):
        tiles += last_k[i]
    jobs = 0
    for i in range(folds):
        jobs += job_cycles[i] > 0
    capacity = 8 + 4 * blocks + 4 * loads + 8 * folds + 5 * tiles + 6 * jobs
    ev_state = np.zeros(capacity, np.int8)
    ev_value = np.zeros(capacity, np.float64)
    ev_trigger = np.zeros(capacity, np.int8)
    ev_resource = np.zeros(capacity, np.int8)
    ev_proc = np.full(capacity, -1, np.int64)
    ev_job_end = np.full(capacity, -1, np.int64)  # the job whose process ended, if any
    heap_t = np.zeros(capacity, np.float64)
    heap_id = np.zeros(capacity, np.int64)
    heap_e = np.zeros(capacity, np.int64)
    counters = np.zeros(3, np.int64)  # heap size, scheduling order, events made
    level = slots.copy()
    waiting_get = np.full(3, -1, np.int64)  # each buffer has one consumer: one get at most
    tile_items = np.zeros(tiles + 1, np.int64)  # the FIFO of finished tiles (-1: the end)
    tile_recomputed = np.full(tiles + 1, -1, np.int64)  # each tile's all-jobs-done event
    # the redundant units: one Resource (capacity 1) and its FIFO of requests, job processes
    n_jobs, claimed = 0, 0
    job_pc = np.zeros(jobs + 1, np.int64)
    job_fold = np.zeros(jobs + 1, np.int64)
    job_start = np.zeros(jobs + 1, np.float64)
    job_end = np.full(jobs + 1, -1, np.int64)  # the event of the job's process ending
    job_condition = np.full(jobs + 1, -1, np.int64)
    condition_needed = np.zeros(tiles + 1, np.int64)
    condition_count = np.zeros(tiles + 1, np.int64)
    condition_event = np.full(tiles + 1, -1, np.int64)
    n_conditions = 0
    unit_busy = 0
    unit_queue = np.zeros(jobs + 1, np.int64)  # request events in arrival order
    queue_head, queue_tail = 0, 0
    recompute_wait, wait_since = 0.0, 0.0
    item_head, item_tail = 0, 0
    tiles_get = -1
    block_event = np.full(blocks, -1, np.int64)
    weight_event = np.full(folds, -1, np.int64)
    loaded_at = np.full(folds, -1.0)  # by weight tile id
    # process state: a program counter per process and its loop index
    pc = np.zeros(4, np.int64)
    index = np.zeros(4, np.int64)
    cycles_now, previous_start, has_previous, weights_at = 0.0, 0.0, False, 0.0
    bursts, acc_read = 0, 0
    end_cycle = start_cycle
    now = start_cycle
    for p in range(4):  # the four processes take the layer's job in this order
        e = counters[2]
        counters[2] += 1
        ev_proc[e] = p
        ev_state[e] = _TRIGGERED
        _push(heap_t, heap_id, heap_e, counters, now, e)
    while counters[0] > 0:
        now, e = _pop(heap_t, heap_id, heap_e, counters)
        ev_state[e] = _PROCESSED
        # 1. the resource's trigger (a put's processing tries the waiting gets)
        if ev_trigger[e] == _TRIGGER_SLOTS:
            r = ev_resource[e]
            g = waiting_get[r]
            if g >= 0 and level[r] >= 1:
                level[r] -= 1
                waiting_get[r] = -1
                ev_state[g] = _TRIGGERED
                _push(heap_t, heap_id, heap_e, counters, now, g)
        elif ev_trigger[e] == _TRIGGER_TILES and tiles_get >= 0 and item_head < item_tail:
            ev_value[tiles_get] = item_head
            item_head += 1
            ev_state[tiles_get] = _TRIGGERED
            _push(heap_t, heap_id, heap_e, counters, now, tiles_get)
            tiles_get = -1
        elif ev_trigger[e] == _TRIGGER_UNIT and unit_busy == 0 and queue_head < queue_tail:
            # a release was processed: the first queued request gets the unit
            g = unit_queue[queue_head]
            queue_head += 1
            unit_busy = 1
            ev_state[g] = _TRIGGERED
            _push(heap_t, heap_id, heap_e, counters, now, g)
        j = ev_job_end[e]
        if j >= 0 and job_condition[j] >= 0:
            c = job_condition[j]
            condition_count[c] += 1
            if condition_count[c] == condition_needed[c]:
                ce = condition_event[c]
                ev_state[ce] = _TRIGGERED
                _push(heap_t, heap_id, heap_e, counters, now, ce)
        # 2. the waiting process resumes and runs until it waits again
        p = ev_proc[e]
        if p < 0:
            continue
        value = ev_value[e]
        while True:
            wait = -1  # the event the process yields next
            if p >= _JOBS:  # a recompute job on the redundant units
                j = p - _JOBS
                if job_pc[j] == 0:  # request the unit: queued, then the queue's head tried
                    wait = counters[2]
                    counters[2] += 1
                    unit_queue[queue_tail] = wait
                    queue_tail += 1
                    if unit_busy == 0:
                        g = unit_queue[queue_head]
                        queue_head += 1
                        unit_busy = 1
                        ev_state[g] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, now, g)
                    job_pc[j] = 1
                elif job_pc[j] == 1:  # granted: recompute
                    job_start[j] = now
                    wait = counters[2]
                    counters[2] += 1
                    ev_state[wait] = _TRIGGERED
                    cycles = job_cycles[job_fold[j]]
                    _push(heap_t, heap_id, heap_e, counters, now + cycles, wait)
                    job_pc[j] = 2
                else:  # done: release the unit, and the job's process ends
                    jobs_run[j, 0] = job_fold[j]
                    jobs_run[j, 1] = job_start[j]
                    jobs_run[j, 2] = now
                    release = counters[2]
                    counters[2] += 1
                    unit_busy = 0
                    ev_trigger[release] = _TRIGGER_UNIT
                    ev_state[release] = _TRIGGERED
                    _push(heap_t, heap_id, heap_e, counters, now, release)
                    end = job_end[j]
                    ev_state[end] = _TRIGGERED
                    _push(heap_t, heap_id, heap_e, counters, now, end)
                    break
            elif p == _INPUT_DMA:
                b = index[p]
                if pc[p] == 0:  # take an input slot
                    if b >= blocks:
                        break
                    wait = counters[2]
                    counters[2] += 1
                    if level[_IN] >= 1:
                        level[_IN] -= 1
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, now, wait)
                    else:
                        waiting_get[_IN] = wait
                    pc[p] = 1
                elif pc[p] == 1:  # fetch the block's input rows
                    pc[p] = 2
                    nbytes = block_bytes[b]
                    if nbytes > 0:
                        begin = max(now, dram_free_at)
                        burst_end = begin + math.ceil(nbytes / bandwidth)
                        dram_free_at = burst_end
                        transfers[bursts, 0] = TRANSFER_IFMAP
                        transfers[bursts, 1] = begin
                        transfers[bursts, 2] = burst_end
                        transfers[bursts, 3] = nbytes
                        bursts += 1
                        wait = counters[2]
                        counters[2] += 1
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, burst_end + latency, wait)
                else:  # the block is in
                    be = block_event[b]
                    if be < 0:
                        be = block_event[b] = counters[2]
                        counters[2] += 1
                    ev_value[be] = now
                    ev_state[be] = _TRIGGERED
                    _push(heap_t, heap_id, heap_e, counters, now, be)
                    index[p] = b + 1
                    pc[p] = 0
            elif p == _WEIGHT_DMA:
                j = index[p]
                if pc[p] == 0:
                    if j >= loads:
                        break
                    pc[p] = 1
                    if not resident:  # take a weight slot
                        wait = counters[2]
                        counters[2] += 1
                        if level[_W] >= 1:
                            level[_W] -= 1
                            ev_state[wait] = _TRIGGERED
                            _push(heap_t, heap_id, heap_e, counters, now, wait)
                        else:
                            waiting_get[_W] = wait
                elif pc[p] == 1:  # fetch the tile
                    pc[p] = 2
                    nbytes = weight_tile_bytes[weight_loads[j]]
                    if nbytes > 0:
                        begin = max(now, dram_free_at)
                        burst_end = begin + math.ceil(nbytes / bandwidth)
                        dram_free_at = burst_end
                        transfers[bursts, 0] = TRANSFER_WEIGHTS
                        transfers[bursts, 1] = begin
                        transfers[bursts, 2] = burst_end
                        transfers[bursts, 3] = nbytes
                        bursts += 1
                        wait = counters[2]
                        counters[2] += 1
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, burst_end + latency, wait)
                else:  # the tile is in
                    fold = weight_loads[j]
                    loaded_at[weight_tile[fold]] = now
                    we = weight_event[fold]
                    if we < 0:
                        we = weight_event[fold] = counters[2]
                        counters[2] += 1
                    ev_value[we] = now
                    ev_state[we] = _TRIGGERED
                    _push(heap_t, heap_id, heap_e, counters, now, we)
                    index[p] = j + 1
                    pc[p] = 0
            elif p == _WRITEBACK:
                if pc[p] == 0:  # the next finished tile
                    wait = counters[2]
                    counters[2] += 1
                    if item_head < item_tail:
                        ev_value[wait] = item_head
                        item_head += 1
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, now, wait)
                    else:
                        tiles_get = wait
                    pc[p] = 1
                elif pc[p] == 1:
                    item = np.int64(value)
                    if tile_items[item] < 0:  # the end of the layer
                        end_cycle = now
                        break
                    index[p] = item
                    pc[p] = 4
                    if tile_recomputed[item] >= 0:
                        # the protected neurons of this tile are overwritten before it leaves
                        wait_since = now
                        wait = tile_recomputed[item]
                elif pc[p] == 4:
                    item = index[p]
                    if tile_recomputed[item] >= 0:
                        recompute_wait += now - wait_since
                    fold = tile_items[item]
                    acc_read += tile_acc_bytes[fold]
                    pc[p] = 2
                    nbytes = tile_out_bytes[fold]
                    if nbytes > 0:
                        begin = max(now, dram_free_at)
                        burst_end = begin + math.ceil(nbytes / bandwidth)
                        dram_free_at = burst_end
                        transfers[bursts, 0] = TRANSFER_OFMAP
                        transfers[bursts, 1] = begin
                        transfers[bursts, 2] = burst_end
                        transfers[bursts, 3] = nbytes
                        bursts += 1
                        wait = counters[2]
                        counters[2] += 1
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, burst_end + latency, wait)
                else:  # free the output slot
                    wait = counters[2]
                    counters[2] += 1
                    ev_trigger[wait] = _TRIGGER_SLOTS
                    ev_resource[wait] = _OUT
                    level[_OUT] += 1
                    ev_state[wait] = _TRIGGERED
                    _push(heap_t, heap_id, heap_e, counters, now, wait)
                    pc[p] = 0
            else:  # compute
                i = index[p]
                if pc[p] == 0:  # wait for the block
                    if i >= folds:
                        pc[p] = 9
                        continue
                    be = block_event[fold_block[i]]
                    if be < 0:
                        be = block_event[fold_block[i]] = counters[2]
                        counters[2] += 1
                    wait = be
                    pc[p] = 1
                elif pc[p] == 1:  # wait for the weights
                    pc[p] = 2
                    if resident and loaded_at[weight_tile[i]] >= 0:
                        value = loaded_at[weight_tile[i]]
                        continue
                    we = weight_event[i]
                    if we < 0:
                        we = weight_event[i] = counters[2]
                        counters[2] += 1
                    wait = we
                elif pc[p] == 2:  # take an output slot for a new tile
                    weights_at = value
                    pc[p] = 3
                    if first_k[i]:
                        wait = counters[2]
                        counters[2] += 1
                        if level[_OUT] >= 1:
                            level[_OUT] -= 1
                            ev_state[wait] = _TRIGGERED
                            _push(heap_t, heap_id, heap_e, counters, now, wait)
                        else:
                            waiting_get[_OUT] = wait
                elif pc[p] == 3:  # run the fold (its preload hidden as of now)
                    cycles_now = float(base_cycles[i] + preload)
                    if overlap_preload and has_previous:
                        hidden = now - max(weights_at, previous_start)
                        cycles_now -= min(max(hidden, 0.0), float(preload))
                    previous_start = now
                    has_previous = True
                    if job_cycles[i] > 0:  # the fold's operands stream: queue its recompute
                        j = n_jobs
                        n_jobs += 1
                        job_fold[j] = i
                        job_end[j] = counters[2]
                        ev_job_end[counters[2]] = j
                        counters[2] += 1
                        start_job = counters[2]
                        counters[2] += 1
                        ev_proc[start_job] = _JOBS + j
                        ev_state[start_job] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, now, start_job, _URGENT_KEY)
                    fold_start[i] = now
                    fold_end[i] = now + cycles_now
                    wait = counters[2]
                    counters[2] += 1
                    ev_state[wait] = _TRIGGERED
                    _push(heap_t, heap_id, heap_e, counters, now + cycles_now, wait)
                    pc[p] = 4
                elif pc[p] == 4:  # free the weight slot
                    pc[p] = 5
                    if not resident:
                        wait = counters[2]
                        counters[2] += 1
                        ev_trigger[wait] = _TRIGGER_SLOTS
                        ev_resource[wait] = _W
                        level[_W] += 1
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, now, wait)
                elif pc[p] == 5:  # free the input slot after the block's last fold
                    pc[p] = 6
                    if last_of_block[i]:
                        wait = counters[2]
                        counters[2] += 1
                        ev_trigger[wait] = _TRIGGER_SLOTS
                        ev_resource[wait] = _IN
                        level[_IN] += 1
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, now, wait)
                elif pc[p] == 6:  # hand a finished tile to write-back
                    pc[p] = 0
                    index[p] = i + 1
                    if last_k[i]:
                        tile_items[item_tail] = i
                        if claimed < n_jobs:  # every recompute of this tile, done or not
                            c = n_conditions
                            n_conditions += 1
                            ce = condition_event[c] = counters[2]
                            counters[2] += 1
                            condition_needed[c] = n_jobs - claimed
                            for j in range(claimed, n_jobs):
                                if ev_state[job_end[j]] == _PROCESSED:
                                    condition_count[c] += 1
                                else:
                                    job_condition[j] = c
                            if condition_count[c] == condition_needed[c]:
                                ev_state[ce] = _TRIGGERED
                                _push(heap_t, heap_id, heap_e, counters, now, ce)
                            tile_recomputed[item_tail] = ce
                            claimed = n_jobs
                        item_tail += 1
                        wait = counters[2]
                        counters[2] += 1
                        ev_trigger[wait] = _TRIGGER_TILES
                        ev_state[wait] = _TRIGGERED
                        _push(heap_t, heap_id, heap_e, counters, now, wait)
                elif pc[p] == 9:  # the end marker
                    tile_items[item_tail] = -1
                    item_tail += 1
                    wait = counters[2]
                    counters[2] += 1
                    ev_trigger[wait] = _TRIGGER_TILES
                    ev_state[wait] = _TRIGGERED
                    _push(heap_t, heap_id, heap_e, counters, now, wait)
                    pc[p] = 10
                else:
                    break
            if wait < 0:
                continue
            if ev_state[wait] == _PROCESSED:
                value = ev_value[wait]  # a processed event: no waiting
                continue
            ev_proc[wait] = p
            break
    return end_cycle, dram_free_at, bursts, acc_read, n_jobs, recompute_wait
