"""The batched campaign path equals one faulty inference at a time, injection by injection,
whether an injection's faults sit in one layer or in several.

``faults.batched.faulty_outputs`` (layer by layer in graph order: every faulty tile of a
layer in one Numba call, fault-free layers for the whole batch at once) must give exactly the
outputs and the shortcut statistics of ``faults.inject.faulty_inference`` (one tile per Python
iteration, through ``kernels.chain_values``) and the outputs of
``faults.inject.full_faulty_inference`` (every layer re-run fold by fold) for every dataflow,
fault model, register class, SRAM faults, hardening, protection, plan shape and model; and
draws must depend on (seed, task) only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim import load_workload
from faults.batched import fast_path, faulty_outputs
from faults.campaign import (
    CampaignSettings,
    draw_batch,
    draw_faults,
    prepare,
    run_injection,
    run_injections,
)
from faults.fault import PE_REGISTERS, SRAM_REGISTERS, Fault, inference_faults
from faults.inject import InjectionStats, faulty_inference, full_faulty_inference
from faults.runner import TaskSpec, task_words

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.yaml"


def one_at_a_time(ctx, samples, table):
    """The oracle: faulty_inference per injection, on the same drawn faults."""
    outputs, stats = [], []
    for i, sample in enumerate(samples):
        faults = table.faults(i, sample=int(sample))
        stat = InjectionStats()
        out = faulty_inference(
            ctx.golden,
            int(sample),
            inference_faults([f for f in faults if not f.is_sram]),
            stat,
            protected=ctx.protected,
            sram=[f for f in faults if f.is_sram],
        )
        outputs.append(out[0])
        stats.append(stat)
    return np.stack(outputs), stats


def assert_batch_equals_oracle(ctx, tasks, seed=5):
    samples, table = draw_batch(tasks, seed, ctx)
    fast, fast_stats = faulty_outputs(ctx.golden, samples, table, protected=ctx.protected)
    slow, slow_stats = one_at_a_time(ctx, samples, table)
    np.testing.assert_array_equal(fast, slow)
    assert fast_stats == slow_stats
    return samples, table, fast, fast_stats


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("model", ["seu", "mbu", "stuck0", "stuck1"])
def test_single_faults_batched_equal_one_at_a_time(dataflow, model):
    workload = load_workload(
        DIGITS,
        [
            "dataset.samples=10",
            f"accelerator.array.dataflow={dataflow}",
            "accelerator.array.rows=4",
            "accelerator.array.cols=4",
        ],
    )
    ctx = prepare(workload, CampaignSettings(mode="single", model=model, mbu_width=3))
    samples, table, out, _ = assert_batch_equals_oracle(ctx, range(150))
    assert fast_path(table, len(samples)).all()
    for i in range(0, 150, 3):  # and the slow way, every layer re-run fold by fold
        faults = inference_faults(table.faults(i, sample=int(samples[i])))
        np.testing.assert_array_equal(
            out[i], full_faulty_inference(ctx.golden, int(samples[i]), faults)[0]
        )
    changed = np.any((out != ctx.golden.outputs[samples]).reshape(len(samples), -1), axis=1)
    assert changed.any()  # some faults get through, so the later layers were exercised


def test_every_register_class_and_bit_batched_equal_one_at_a_time():
    workload = load_workload(DIGITS, ["dataset.samples=8"])
    for register in PE_REGISTERS:
        for bit in (0, 7, 15, 30):
            settings = CampaignSettings(mode="single", registers=(register,), bits=(bit,))
            ctx = prepare(workload, settings)
            if ctx.sampler().total == 0:
                continue  # this register is narrower than the bit
            assert_batch_equals_oracle(ctx, range(40), seed=bit)


def test_rate_plans_mix_fast_and_general_paths_and_agree():
    workload = load_workload(DIGITS, ["dataset.samples=10"])
    registers = PE_REGISTERS + SRAM_REGISTERS
    ctx = prepare(workload, CampaignSettings(mode="rate", rate=8e-8, registers=registers))
    samples, table, _, _ = assert_batch_equals_oracle(ctx, range(120))
    fast = fast_path(table, len(samples))
    assert fast.any() and not fast.all()  # both paths taken in one batch
    counts = np.bincount(table.injection, minlength=len(samples))
    assert (counts == 0).any() and (counts > 1).any()


def test_hardening_and_protection_batched_equal_one_at_a_time():
    workload = load_workload(
        DIGITS,
        [
            "dataset.samples=10",
            "accelerator.protection.hardened_bits.accumulator=[29, 30, 31]",
        ],
    )
    graph = workload.graph
    layers = [node.name for node in graph.layers()]
    protected = {layers[0]: np.array([0, 3]), layers[-1]: np.arange(5)}
    ctx = prepare(
        workload, CampaignSettings(mode="single", model="mbu", mbu_width=4), protected=protected
    )
    assert_batch_equals_oracle(ctx, range(150))


def test_explicit_plan_batched_equals_full_rerun():
    workload = load_workload(DIGITS, ["dataset.samples=6"])
    ctx = prepare(workload, CampaignSettings(mode="single"))
    layer = workload.graph.layers()[0].name
    plan = (Fault(layer=layer, fold=0, register="accumulator", row=2, col=1, cycle=9, bits=(29,)),)
    ctx = prepare(workload, CampaignSettings(mode="plan", plan=plan))
    samples, table, out, _ = assert_batch_equals_oracle(ctx, range(12))
    for i, sample in enumerate(samples):
        full = full_faulty_inference(
            ctx.golden, int(sample), inference_faults(table.faults(i, sample=int(sample)))
        )
        np.testing.assert_array_equal(out[i], full[0])


def test_residual_network_batched_equals_one_at_a_time():
    workload = load_workload(
        ROOT / "workloads" / "resnet18.yaml",
        [
            "model.input_size=32",
            "accelerator.array.rows=8",
            "accelerator.array.cols=8",
        ],
    )
    assert any(node.op == "add" for node in workload.graph.nodes)
    early = tuple(f"layer1.{block}.conv{conv}" for block in (0, 1) for conv in (1, 2))
    settings = CampaignSettings(
        mode="single", registers=("accumulator",), layers=early, bits=(29, 30, 31)
    )
    ctx = prepare(workload, settings)
    *_, stats = assert_batch_equals_oracle(ctx, range(40))
    # some faults travel through the residual adds to the logits
    assert sum(s.layers_recomputed > 10 for s in stats) >= 3


def test_draws_depend_on_seed_and_task_only():
    workload = load_workload(DIGITS, ["dataset.samples=10"])
    ctx = prepare(workload, CampaignSettings(mode="rate", rate=2e-6))
    samples, table = draw_batch(range(30), 4, ctx)
    for task in (0, 7, 29):
        sample, faults = draw_faults(TaskSpec(task, 4), ctx)
        assert sample == samples[task]
        assert faults == table.faults(task, sample=sample)
    reordered_samples, reordered = draw_batch([29, 7, 0], 4, ctx)
    assert list(reordered_samples) == [samples[29], samples[7], samples[0]]
    assert reordered.faults(1, sample=int(samples[7])) == table.faults(7, sample=int(samples[7]))
    part = table.of_injections(7, 12)
    assert part.faults(0, sample=1) == table.faults(7, sample=1)
    assert set(part.injection.tolist()) <= set(range(5))
    other_samples, _ = draw_batch(range(30), 5, ctx)
    assert not np.array_equal(other_samples, samples)


def test_poisson_counts_have_the_configured_mean():
    workload = load_workload(DIGITS, ["dataset.samples=4"])
    ctx = prepare(workload, CampaignSettings(mode="rate", rate=1e-6))
    expected = 1e-6 * ctx.sampler().total
    _, table = draw_batch(range(4000), 0, ctx)
    counts = np.bincount(table.injection, minlength=4000)
    # Poisson: mean = variance = expected; 4000 draws put the mean within ~5 sigma below
    assert abs(counts.mean() - expected) < 5 * np.sqrt(expected / 4000)
    assert abs(counts.var() / expected - 1) < 0.15


def test_task_words_are_a_pure_function_of_seed_task_and_slot():
    tasks, slots = np.array([3, 3, 9, 0]), np.array([0, 1, 0, 5])
    words = task_words(11, tasks, slots)
    assert len(set(words.tolist())) == 4
    np.testing.assert_array_equal(task_words(11, tasks[::-1], slots[::-1]), words[::-1])
    assert task_words(12, tasks, slots)[0] != words[0]


def test_one_injection_and_a_chunk_give_the_same_results():
    workload = load_workload(DIGITS, ["dataset.samples=10"])
    ctx = prepare(workload, CampaignSettings(mode="rate", rate=2e-6))
    tasks = [TaskSpec(i, 2) for i in range(20)]
    assert run_injections(tasks, ctx) == [run_injection(task, ctx) for task in tasks]


def test_a_plan_fault_on_a_hardened_bit_changes_nothing_and_is_masked_early():
    workload = load_workload(
        DIGITS,
        [
            "dataset.samples=6",
            "accelerator.protection.hardened_bits.accumulator=[30]",
        ],
    )
    layer = workload.graph.layers()[0].name
    plan = (Fault(layer=layer, fold=0, register="accumulator", row=2, col=1, cycle=9, bits=(30,)),)
    ctx = prepare(workload, CampaignSettings(mode="plan", plan=plan))
    samples, _, out, stats = assert_batch_equals_oracle(ctx, range(8))
    np.testing.assert_array_equal(out, ctx.golden.outputs[samples])
    assert all(s.masked_early == 1 and s.tiles_recomputed == 0 for s in stats)


# ---- faults in several layers: batched layer by layer == one inference at a time ----------

ALL_REGISTERS = PE_REGISTERS + SRAM_REGISTERS
MULTI_LAYER_CASES = {
    "digits_cnn ws": (DIGITS, ["dataset.samples=10"]),
    "digits_cnn os 4x4 saturate": (
        DIGITS,
        [
            "dataset.samples=10",
            "accelerator.array.dataflow=os",
            "accelerator.array.rows=4",
            "accelerator.array.cols=4",
            "quantization.overflow=saturate",
            "quantization.acc_bits=16",
        ],
    ),
    "digits_cnn is 4x8": (
        DIGITS,
        [
            "dataset.samples=10",
            "accelerator.array.dataflow=is",
            "accelerator.array.rows=4",
        ],
    ),
    "digits_resnet": (ROOT / "workloads" / "digits_resnet.yaml", ["dataset.samples=6"]),
    "mobilenet_block (depthwise groups)": (
        ROOT / "workloads" / "mobilenet_block.yaml",
        ["model.input_size=12", "batch=4", "accelerator.array.rows=8"],
    ),
}


def multi_layer_context(path, overrides, *, faults_per_inference, registers, model, **kw):
    """A rate campaign drawing about ``faults_per_inference`` faults over ``registers``."""
    workload = load_workload(path, overrides)
    probe = prepare(workload, CampaignSettings(mode="rate", rate=1.0, registers=registers))
    rate = faults_per_inference / probe.sampler().total
    settings = CampaignSettings(
        mode="rate", rate=rate, registers=registers, model=model, mbu_width=3
    )
    return prepare(workload, settings, **kw)


def spans_several_layers(table, batch):
    layers = [set() for _ in range(batch)]
    for i, layer in zip(table.injection.tolist(), table.layer.tolist()):
        layers[i].add(layer)
    return np.array([len(s) > 1 for s in layers])


@pytest.mark.parametrize("case", sorted(MULTI_LAYER_CASES))
@pytest.mark.parametrize(
    ("seed", "model", "registers"),
    [
        (1, "seu", PE_REGISTERS),
        (2, "mbu", ALL_REGISTERS),
        (3, "stuck1", PE_REGISTERS),  # SRAM words model flips only
        (6, "seu", ALL_REGISTERS),
    ],
)
def test_multi_layer_faults_batched_equal_one_at_a_time(case, seed, model, registers, monkeypatch):
    import faults.batched as batched

    path, overrides = MULTI_LAYER_CASES[case]
    ctx = multi_layer_context(
        path, overrides, faults_per_inference=6.0, registers=registers, model=model
    )
    dirty_recomputes = []  # tiles recomputed on an input an earlier fault already changed
    recompute = batched._recompute_tiles

    def spy(golden, node, ops, values, rows, owner, *args):
        dirty_recomputes.append(len(owner))
        return recompute(golden, node, ops, values, rows, owner, *args)

    monkeypatch.setattr(batched, "_recompute_tiles", spy)
    samples, table, out, _ = assert_batch_equals_oracle(ctx, range(80), seed=seed)
    several = spans_several_layers(table, len(samples))
    assert several.sum() >= 20  # most injections have faults in several layers
    # only an injection with SRAM faults has a layer computed on its own
    assert fast_path(table, len(samples)).all() == (registers == PE_REGISTERS)
    changed = np.any((out != ctx.golden.outputs[samples]).reshape(len(samples), -1), axis=1)
    assert changed.any()
    if registers == PE_REGISTERS:  # faults got through a layer and met more in a later one
        assert sum(dirty_recomputes) > 0
    for i in np.flatnonzero(several)[:12]:  # and the slow way: every layer re-run in full
        faults = table.faults(int(i), sample=int(samples[i]))
        full = full_faulty_inference(
            ctx.golden,
            int(samples[i]),
            inference_faults([f for f in faults if not f.is_sram]),
            sram=[f for f in faults if f.is_sram],
        )
        np.testing.assert_array_equal(out[i], full[0])


@pytest.mark.parametrize("case", ["digits_cnn ws", "digits_resnet", "digits_cnn os 4x4 saturate"])
@pytest.mark.parametrize("seed", [4, 5])
def test_multi_layer_faults_with_hardening_and_protection_batched_equal_one_at_a_time(case, seed):
    path, overrides = MULTI_LAYER_CASES[case]
    overrides = [*overrides, "accelerator.protection.hardened_bits.accumulator=[13, 14, 15]"]
    workload = load_workload(path, overrides)
    layers = [node.name for node in workload.graph.layers()]
    rng = np.random.default_rng(seed)
    protected = {}
    for name in layers[:: max(1, len(layers) // 3)]:
        channels = workload.graph.tensors[workload.graph.node(name).output].shape[0]
        protected[name] = np.sort(rng.choice(channels, size=max(1, channels // 3), replace=False))
    ctx = multi_layer_context(
        path,
        overrides,
        faults_per_inference=8.0,
        registers=ALL_REGISTERS,
        model="seu",
        protected=protected,
    )
    samples, table, _, _ = assert_batch_equals_oracle(ctx, range(80), seed=seed)
    assert spans_several_layers(table, len(samples)).sum() >= 20


def test_a_dirty_input_batch_lowers_sample_major():
    """The dirty path slices one injection's rows of A from a batched lowering: the rows of
    sample b are ``[b*M, (b+1)*M)`` of the batch-1 GEMM's M (what ``_recompute_tiles`` reads)."""
    from accelsim.datapath import lower_operands
    from accelsim.schedule import gemm_shape

    workload = load_workload(
        ROOT / "workloads" / "mobilenet_block.yaml", ["model.input_size=12", "batch=3"]
    )
    graph = workload.graph
    for node in graph.layers():
        x = functional_input(workload, node)
        batch = lower_operands(node, x, gemm_shape(graph, node, len(x)))
        single = gemm_shape(graph, node, 1)
        for b in range(len(x)):
            one = lower_operands(node, x[b : b + 1], single)
            for g in range(single.groups):
                rows = batch.a[g][b * single.M : (b + 1) * single.M]
                np.testing.assert_array_equal(rows, one.a[g])


def functional_input(workload, node):
    from accelsim import functional

    values = functional.forward(workload.graph, workload.inputs, workload.config.accelerator)
    return values[node.inputs[0]]


def test_layers_too_large_to_stack_take_the_per_tile_path_and_agree():
    """Where the stacked lowered inputs would not fit the golden run's cache, the tiles are
    recomputed one per iteration from the per-sample operands: the same results."""
    ctx = multi_layer_context(
        DIGITS,
        ["dataset.samples=10"],
        faults_per_inference=6.0,
        registers=PE_REGISTERS,
        model="seu",
    )
    ctx.golden.cache_bytes = 4 * 2**10  # the LRU keeps one layer; nothing is stacked
    ctx.golden._stacked.clear()  # as if the golden run had had that budget
    ctx.golden._stacked_bytes = 0
    samples, _, _, _ = assert_batch_equals_oracle(ctx, range(60), seed=8)
    assert all(ctx.golden.stacked_inputs(node) is None for node in ctx.golden.graph.layers())


def test_a_worker_receives_the_golden_run_without_its_caches_and_gets_the_same_results():
    import pickle

    ctx = prepare(load_workload(DIGITS, ["dataset.samples=10"]), CampaignSettings(mode="single"))
    assert ctx.golden._stacked  # the golden run lowered every layer once
    shipped = pickle.loads(pickle.dumps(ctx))
    assert not shipped.golden._stacked and not shipped.golden._operands
    samples, table = draw_batch(range(100), 3, ctx)
    here, here_stats = faulty_outputs(ctx.golden, samples, table)
    there, there_stats = faulty_outputs(shipped.golden, samples, table)
    np.testing.assert_array_equal(here, there)
    assert here_stats == there_stats
