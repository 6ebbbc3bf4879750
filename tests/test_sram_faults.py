"""SRAM buffer faults (faults/sram.py): hand-worked flips in the input, weight and output
buffers of the tiny graph give exactly the expected outputs; flips after the last read are
masked; campaigns drawing SRAM sites run and are reproducible by seed."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from accelsim import mapping
from accelsim.config import parse_workload
from accelsim.executor import execute
from accelsim.intmath import requantize_array
from accelsim.ir import save_graph
from accelsim.workload import build_workload
from faults.campaign import CampaignSettings, campaign, exposure_of, prepare
from faults.fault import Fault, inference_faults
from faults.inject import (
    InjectionStats,
    faulty_inference,
    full_faulty_inference,
    golden_run,
    sram_faulty_layer,
)
from faults.plan import check_plan
from faults.sampling import SiteSampler
from tests.conftest import tiny_integer_graph

SRAM = ("sram:input", "sram:weight", "sram:output")


def make_workload(tmp_path: Path, dataflow: str = "ws", **accelerator):
    save_graph(tiny_integer_graph(), tmp_path / "tiny.npz")
    accelerator = {"array": {"rows": 4, "cols": 4, "dataflow": dataflow}, **accelerator}
    raw = {"name": "tiny", "model": "tiny.npz", "batch": 2, "seed": 3, "accelerator": accelerator}
    return build_workload(parse_workload(raw), base_dir=tmp_path, source=tmp_path / "w.yaml")


def golden_of(workload):
    return golden_run(workload.graph, workload.config.accelerator, workload.inputs)


def sram_fault(register: str, fold: int, address: int, bit: int, layer: str = "conv1") -> Fault:
    return Fault(
        layer=layer, fold=fold, register=register, row=0, col=0, cycle=address, bits=(bit,)
    )


def conv_gemm(graph, x, weight):
    """Independent conv1 accumulators (M, N) for a batch-1 input: exact int64 sums."""
    node = graph.node("conv1")
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    channels, height, width = x.shape[1:]
    psum = np.zeros((height * width, weight.shape[0]), dtype=np.int64)
    for oh in range(height):
        for ow in range(width):
            window = padded[:, oh : oh + 3, ow : ow + 3]
            psum[oh * width + ow] = np.tensordot(weight, window, axes=3)
    return psum + node.params["bias"]


def conv_output(graph, psum):
    node = graph.node("conv1")
    a = node.attrs
    out = requantize_array(
        psum,
        node.params["multiplier"],
        node.params["shift"],
        int(a["out_zero_point"]),
        int(a["out_lo"]),
        int(a["out_hi"]),
    )
    return out.reshape(1, 6, 6, -1).transpose(0, 3, 1, 2)


def test_input_flip_before_fold_0_equals_executor_on_flipped_input(tmp_path):
    workload = make_workload(tmp_path)
    graph, golden = workload.graph, golden_of(workload)
    assert len(golden.schedules["conv1"].blocks) == 1  # one m-block: the whole input is read
    sample, (c, h, w), bit = 1, (1, 2, 4), 7
    address = (c * 6 + h) * 6 + w
    x = golden.tensor("x", sample).copy()
    x[0, c, h, w] ^= 1 << bit  # unsigned 8-bit activation
    expected = execute(graph, x, keep_all=True)
    fault = sram_fault("sram:input", 0, address, bit)
    layer = sram_faulty_layer(golden, graph.node("conv1"), sample, [fault], InjectionStats())
    np.testing.assert_array_equal(layer, expected["c1"])
    changed = np.argwhere(layer[0] != golden.tensor("c1", sample)[0])
    assert len(changed)
    for _, oh, ow in changed:  # receptive field of a 3x3, pad 1, stride 1 conv
        assert abs(oh - h) <= 1 and abs(ow - w) <= 1
    out = faulty_inference(golden, sample, {}, sram=[fault])
    np.testing.assert_array_equal(out, expected["y"])
    np.testing.assert_array_equal(full_faulty_inference(golden, sample, {}, [fault]), out)


def test_input_flip_is_seen_only_by_later_folds(tmp_path):
    workload = make_workload(tmp_path)  # ws 4x4: conv1 K = 18 -> k-folds [0,4) ... [16,18)
    graph, golden = workload.graph, golden_of(workload)
    sched = golden.schedules["conv1"]
    assert [(f.k0, f.k1) for f in sched.folds] == [(0, 4), (4, 8), (8, 12), (12, 16), (16, 18)]
    sample, (c, h, w), bit = 0, (0, 3, 3), 6
    address = (c * 6 + h) * 6 + w
    x = golden.tensor("x", sample)
    weight = graph.node("conv1").params["weight"]
    # fold 1 reads k in [4, 8): channel 0, kernel rows kh = 1 (kw 1, 2) and kh = 2 (kw 0..2);
    # the entries at kh = 0 (k 0..2) and kh = 1, kw = 0 (k 3) were read clean in fold 0
    flipped = x.copy()
    flipped[0, c, h, w] ^= 1 << bit
    late_weight = weight.copy()
    late_weight[:, 0, 0, :] = 0
    late_weight[:, 0, 1, 0] = 0
    late_weight[:, 1:] = 0  # channel 1 is not the flipped element's channel
    psum = (
        conv_gemm(graph, x, weight)
        + conv_gemm(graph, flipped - x, late_weight)
        - (graph.node("conv1").params["bias"])
    )
    fault = sram_fault("sram:input", 1, address, bit)
    layer = sram_faulty_layer(golden, graph.node("conv1"), sample, [fault], InjectionStats())
    np.testing.assert_array_equal(layer, conv_output(graph, psum))
    assert not np.array_equal(layer, golden.tensor("c1", sample))
    # folds 3 and 4 read only channel 1 (k >= 12): a channel-0 word flipped then is never read
    stats = InjectionStats()
    out = faulty_inference(
        golden, sample, {}, stats, sram=[sram_fault("sram:input", 3, address, bit)]
    )
    np.testing.assert_array_equal(out, golden.tensor("y", sample))
    assert stats.masked_early == 1 and stats.tiles_recomputed == 0


@pytest.mark.parametrize("resident", [True, False])
def test_weight_flip_lives_until_the_tile_is_reloaded(tmp_path, resident):
    # is 4x4: conv1 runs 9 m-tiles of 4 output pixels (outer) x 5 k-tiles of 4 (inner); each
    # weight W[k, :] is read by the fold of its k-tile in every m-tile
    buffers = {} if resident else {"weight": {"capacity_kib": 0.05, "double_buffered": False}}
    workload = make_workload(tmp_path, "is", buffers=buffers)
    graph, golden = workload.graph, golden_of(workload)
    sched = golden.schedules["conv1"]
    assert sched.weights_resident is resident and len(sched.folds) == 45
    sample, (n, c, kh, kw), bit = 1, (3, 1, 0, 2), 6
    fold = 3 * 5 + 2  # m-tile 3 (pixels 12..15), k-tile of k = 1*9 + 0*3 + 2 = 11
    node = graph.node("conv1")
    weight = node.params["weight"]
    address = ((n * 2 + c) * 3 + kh) * 3 + kw
    flipped = weight.copy()
    flipped[n, c, kh, kw] = np.int64(np.int8(np.uint8(weight[n, c, kh, kw] & 0xFF) ^ (1 << bit)))
    x = golden.tensor("x", sample)
    psum = conv_gemm(graph, x, weight)
    reads = slice(12, 36) if resident else slice(12, 16)  # fold 17 is in m-tile 3
    psum[reads] = conv_gemm(graph, x, flipped)[reads]
    fault = sram_fault("sram:weight", fold, address, bit)
    layer = sram_faulty_layer(golden, node, sample, [fault], InjectionStats())
    np.testing.assert_array_equal(layer, conv_output(graph, psum))
    changed = np.argwhere(layer[0] != golden.tensor("c1", sample)[0])
    assert len(changed) and set(changed[:, 0]) == {n}
    if resident:  # read before fold 0 as well: the same as the executor on a flipped weight
        g2 = copy.deepcopy(graph)
        g2.node("conv1").params["weight"] = flipped
        out = faulty_inference(
            golden, sample, {}, sram=[sram_fault("sram:weight", 0, address, bit)]
        )
        np.testing.assert_array_equal(out, execute(g2, x))


def test_output_flip_hits_the_next_psum_read_only(tmp_path):
    workload = make_workload(tmp_path)  # ws: conv1 is one tile accumulated by folds 0..4
    graph, golden = workload.graph, golden_of(workload)
    node = graph.node("conv1")
    sample, (m, n), bit = 0, (14, 3), 20
    address = m * 4 + n
    x = golden.tensor("x", sample)
    weight = node.params["weight"]
    # fold 2 reads the psum of k < 8 as psum_in: (bias + sum_{k<8}) with bit 20 flipped
    a = mapping.lower_conv(x, weight.shape, (1, 1), (1, 1), 1)[0]
    w = mapping.weight_matrices(weight, 1)[0]
    psum = a @ w + node.params["bias"]
    before = node.params["bias"][n] + a[m, :8] @ w[:8, n]
    psum[m, n] += (int(before) ^ (1 << bit)) - int(before)  # 32-bit accumulator: no wrap here
    fault = sram_fault("sram:output", 2, address, bit)
    layer = sram_faulty_layer(golden, node, sample, [fault], InjectionStats())
    np.testing.assert_array_equal(layer, conv_output(graph, psum))
    assert (layer != golden.tensor("c1", sample)).sum() == 1
    # fold 0 starts the tile from the bias: the flipped word is overwritten before any read
    stats = InjectionStats()
    out = faulty_inference(
        golden, sample, {}, stats, sram=[sram_fault("sram:output", 0, address, bit)]
    )
    np.testing.assert_array_equal(out, golden.tensor("y", sample))
    assert stats.masked_early == 1


def test_output_flip_before_write_back_in_os(tmp_path):
    workload = make_workload(tmp_path, "os")  # os: fold j computes pixels 4j..4j+3 in one go
    graph, golden = workload.graph, golden_of(workload)
    node = graph.node("conv1")
    sample, (m, n), bit = 1, (5, 0), 31  # the sign bit of the final psum of fold 1's tile
    address = m * 4 + n
    psum = conv_gemm(graph, golden.tensor("x", sample), node.params["weight"])
    value = int(psum[m, n]) & 0xFFFFFFFF ^ (1 << bit)
    psum[m, n] = value - (1 << 32) if value >> 31 else value
    layer = sram_faulty_layer(
        golden, node, sample, [sram_fault("sram:output", 2, address, bit)], InjectionStats()
    )
    np.testing.assert_array_equal(layer, conv_output(graph, psum))
    for late in (1, 3, 8):  # fresh tile, or already written back
        stats = InjectionStats()
        out = sram_faulty_layer(
            golden, node, sample, [sram_fault("sram:output", late, address, bit)], stats
        )
        np.testing.assert_array_equal(out, golden.tensor("c1", sample))
        assert stats.masked_early == 1


def test_exposure_counts_buffer_words(tmp_path):
    golden = golden_of(make_workload(tmp_path))
    exposure = exposure_of(golden)
    conv, fc = exposure.layer("conv1"), exposure.layer("fc")
    assert conv.sram_words == {"sram:input": 72, "sram:weight": 72, "sram:output": 144}
    assert fc.sram_words == {"sram:input": 36, "sram:weight": 180, "sram:output": 5}
    assert conv.sram_word_bits == {"sram:input": 8, "sram:weight": 8, "sram:output": 32}
    sampler = SiteSampler(exposure, registers=SRAM)
    faults = sampler.draw(np.random.default_rng(1), 40)
    check_plan(faults, exposure)
    assert {f.register for f in faults} == set(SRAM)


def test_sram_and_pe_faults_together_equal_the_full_rerun(tmp_path):
    for dataflow in ("ws", "os", "is"):
        workload = make_workload(tmp_path, dataflow)
        golden = golden_of(workload)
        sampler = SiteSampler(exposure_of(golden), registers=(*SRAM, "input", "accumulator"))
        rng = np.random.default_rng(11)
        for _ in range(15):
            sample = int(rng.integers(golden.samples))
            faults = sampler.draw(rng, 3, model="mbu", mbu_width=3, sample=sample)
            pe = inference_faults([f for f in faults if not f.is_sram])
            sram = [f for f in faults if f.is_sram]
            np.testing.assert_array_equal(
                faulty_inference(golden, sample, pe, sram=sram),
                full_faulty_inference(golden, sample, pe, sram),
            )


def test_campaign_with_sram_registers_is_reproducible(tmp_path):
    workload = make_workload(tmp_path)
    settings = CampaignSettings(mode="rate", rate=1.0, registers=SRAM)
    ctx = prepare(workload, settings)
    rate = 3.0 / ctx.sampler().total  # about three faults per inference
    settings = CampaignSettings(mode="rate", rate=rate, registers=(*SRAM, "weight"))
    runs = [
        campaign(workload, injections=25, settings=settings, seed=9, workers=1) for _ in range(2)
    ]
    assert runs[0].results == runs[1].results
    assert runs[0].injections == 25
    assert set(runs[0].per_register) & set(SRAM)
    other = campaign(workload, injections=25, settings=settings, seed=10, workers=1)
    assert other.results != runs[0].results
    plan = (sram_fault("sram:weight", 0, 5, 7),)
    planned = campaign(
        workload, injections=3, settings=CampaignSettings(mode="plan", plan=plan), seed=1, workers=1
    )
    assert all(r["registers"] == ["sram:weight"] for r in planned.results)
