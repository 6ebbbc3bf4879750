"""Fault plans: the kernel row format, exposure, seeded samplers, explicit plan files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import mapping
from accelsim.config import HardenedBitsConfig
from accelsim.cost import RegisterWidths
from accelsim.errors import AccelsimError
from accelsim.schedule import FoldJob
from faults.exposure import Exposure, LayerExposure, drop_hardened
from faults.fault import PE_REGISTERS, Fault, group_by_fold, inference_faults, kernel_rows
from faults.plan import check_plan, load_plan, save_plan
from faults.sampling import (
    SiteSampler,
    expected_fault_count,
    exposed_bit_cycles,
    sample_rate_plan,
    sample_single_fault,
)

WIDTHS = RegisterWidths.from_bits(8, 8, 32)  # input 8, weight 8, product 16, accumulator 32


def two_layer_exposure(hardened=None) -> Exposure:
    conv = LayerExposure(
        "conv1",
        fold=[0, 1, 2],
        cycles=[10, 20, 5],
        rows=[4, 4, 2],
        cols=[3, 1, 3],
        neuron0=[0, 3, 4],
        sram_words={"sram:input": 100, "sram:weight": 30},
        sram_word_bits={"sram:input": 8, "sram:weight": 8},
    )
    fc = LayerExposure(
        "fc",
        fold=[0, 1],
        cycles=[7, 3],
        rows=[2, 1],
        cols=[2, 2],
        widths={"input": 4, "weight": 4, "product": 8, "accumulator": 16},
    )
    return Exposure([conv, fc], WIDTHS, hardened)


# ---- one fault -----------------------------------------------------------------------------


def test_fault_row_uses_the_kernel_codes_and_mask():
    fault = Fault("conv1", 2, "accumulator", row=1, col=2, cycle=7, bits=(3, 0), kind="stuck1")
    assert fault.bits == (0, 3)
    assert fault.to_row().tolist() == [3, 1, 2, 7, 0b1001, 2]
    assert fault.to_row().dtype == np.int64
    assert Fault("l", 0, "input", 0, 0, 0, (7,)).to_row().tolist() == [0, 0, 0, 0, 128, 0]
    assert Fault("l", 0, "weight", 0, 0, 0, (0,), "stuck0").to_row()[[0, 5]].tolist() == [1, 1]
    assert Fault("l", 0, "product", 0, 0, 0, (0,)).to_row()[0] == 2


def test_sram_faults_are_not_kernel_rows_and_empty_rows_have_the_kernel_shape():
    with pytest.raises(ValueError):
        Fault("l", 0, "sram:input", 0, 0, 123, (1,)).to_row()
    assert kernel_rows([]).shape == (0, 6)
    faults = [Fault("l", 0, "input", 0, 0, t, (1,)) for t in range(3)]
    assert kernel_rows(faults)[:, 3].tolist() == [0, 1, 2]


def test_fault_rejects_impossible_values():
    with pytest.raises(ValueError):
        Fault("l", 0, "psum", 0, 0, 0, (1,))
    with pytest.raises(ValueError):
        Fault("l", 0, "input", 0, 0, 0, ())
    with pytest.raises(ValueError):
        Fault("l", -1, "input", 0, 0, 0, (1,))


def test_group_by_fold_keys_sample_layer_fold():
    a = Fault("l", 0, "input", 0, 0, 0, (1,), sample=2)
    b = Fault("l", 0, "weight", 0, 0, 5, (1,), sample=2)
    c = Fault("m", 3, "input", 0, 0, 0, (1,))
    assert group_by_fold([a, b, c]) == {(2, "l", 0): [a, b], (0, "m", 3): [c]}


def test_inference_faults_group_kernel_rows_by_layer_and_fold():
    a = Fault("l", 0, "input", 0, 0, 1, (1,))
    b = Fault("l", 0, "weight", 1, 0, 2, (2,))
    c = Fault("m", 3, "accumulator", 0, 1, 0, (0,), "stuck1")
    grouped = inference_faults([a, b, c])
    assert grouped.keys() == {"l", "m"} and grouped["l"].keys() == {0}
    assert grouped["l"][0].tolist() == [a.to_row().tolist(), b.to_row().tolist()]
    assert grouped["m"][3].tolist() == [[3, 0, 1, 0, 1, 2]]
    with pytest.raises(ValueError, match="several samples"):
        inference_faults([a, Fault("l", 0, "input", 0, 0, 1, (1,), sample=1)])


# ---- exposure ------------------------------------------------------------------------------


def test_exposed_bit_cycles_count_unhardened_bits_of_pes_in_use():
    exposure = two_layer_exposure({"accumulator": [31, 30], "input": [7]})
    conv_pe_cycles = 10 * 4 * 3 + 20 * 4 * 1 + 5 * 2 * 3  # 230
    fc_pe_cycles = 7 * 2 * 2 + 3 * 1 * 2  # 34
    assert exposure.layer("conv1").pe_cycles == conv_pe_cycles
    conv_bits = 7 + 8 + 16 + 30
    fc_bits = 4 + 4 + 8 + 16  # its own widths; hardened bit 7 and 30/31 lie above them
    assert exposed_bit_cycles(exposure) == conv_pe_cycles * conv_bits + fc_pe_cycles * fc_bits
    assert exposed_bit_cycles(exposure, "weight") == conv_pe_cycles * 8 + fc_pe_cycles * 4
    assert exposed_bit_cycles(exposure, ["sram:input"]) == 100 * 8 * 35
    ber_sites = (12 + 4 + 6) * conv_bits + (4 + 2) * fc_bits
    assert exposed_bit_cycles(exposure, unit="ber") == ber_sites


def test_hardened_masks_accept_config_lists_and_masks_alike():
    config = HardenedBitsConfig(accumulator=[31, 30], input=[7])
    a = two_layer_exposure(config)
    b = two_layer_exposure({"accumulator": (1 << 31) | (1 << 30), "input": 1 << 7})
    assert a.hardened == b.hardened
    assert exposed_bit_cycles(a) == exposed_bit_cycles(b)


def folds_of(shape_n: int, groups: int = 1):
    folds = []
    for g in range(groups):
        for n0 in range(0, shape_n, 4):
            for k0 in (0, 3):
                folds.append(
                    FoldJob(
                        index=len(folds),
                        group=g,
                        block=0,
                        m0=0,
                        m1=9,
                        k0=k0,
                        k1=k0 + 3 - k0 // 3,
                        n0=n0,
                        n1=min(n0 + 4, shape_n),
                        first_k=k0 == 0,
                        last_k=k0 == 3,
                    )
                )
    return folds


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_layer_exposure_from_schedule_uses_the_mapping_fault_sites(dataflow):
    folds = folds_of(6, groups=2)
    schedule = SimpleNamespace(shape=SimpleNamespace(layer="conv", N=6), folds=tuple(folds))
    layer = LayerExposure.from_schedule(schedule, dataflow, array_rows=4)
    blocks = [
        mapping.fault_sites(dataflow, f.m1 - f.m0, f.k1 - f.k0, f.n1 - f.n0, 4) for f in folds
    ]
    assert list(zip(layer.rows.tolist(), layer.cols.tolist(), layer.cycles.tolist())) == blocks
    assert layer.fold.tolist() == list(range(len(folds)))
    if dataflow == "is":
        assert layer.neuron0 is None  # is: columns hold rows of A, not output channels
    else:
        assert layer.cols.tolist() == [f.n1 - f.n0 for f in folds]
        assert layer.neuron0.tolist() == [f.group * 6 + f.n0 for f in folds]


# ---- rate plans ----------------------------------------------------------------------------


def test_same_seed_gives_the_same_plan_and_another_seed_another():
    exposure = two_layer_exposure()
    rate = 40 / exposed_bit_cycles(exposure)

    def plan(seed):
        return sample_rate_plan(exposure, rate, rng=np.random.default_rng(seed), model="mbu")

    assert plan(7) == plan(7)
    assert plan(7) != plan(8)


def test_poisson_counts_have_the_expected_mean_and_variance():
    exposure = two_layer_exposure({"accumulator": list(range(16, 32))})
    expected = 20.0
    rate = expected / exposed_bit_cycles(exposure)
    assert expected_fault_count(exposure, rate) == pytest.approx(expected)
    rng = np.random.default_rng(2024)
    plans = 600
    counts = np.array([len(sample_rate_plan(exposure, rate, rng=rng)) for _ in range(plans)])
    # 6 standard errors: a wrong mean (or a wrong exposure) fails, chance essentially never does
    assert abs(counts.mean() - expected) < 6 * np.sqrt(expected / plans)
    assert 0.7 * expected < counts.var() < 1.3 * expected  # Poisson: variance = mean


def test_ber_unit_counts_bits_once_per_fold_and_places_the_cycle_inside_the_fold():
    exposure = two_layer_exposure()
    sites = exposed_bit_cycles(exposure, unit="ber")
    rng = np.random.default_rng(5)
    faults = sample_rate_plan(exposure, 3000 / sites, rng=rng, unit="ber")
    assert 2700 < len(faults) < 3300
    check_plan(faults, exposure)  # every cycle lies within its fold
    cycles = {f.cycle for f in faults if f.layer == "conv1" and f.fold == 1}
    assert max(cycles) > 10  # fold 1 runs 20 cycles: the cycle is drawn over all of them


def test_hardened_bits_are_never_sampled():
    hardened = {
        "input": [0, 7],
        "weight": [3, 4, 5],
        "product": list(range(8, 16)),
        "accumulator": list(range(1, 32, 2)),
    }
    exposure = two_layer_exposure(hardened)
    rng = np.random.default_rng(11)
    for model in ("seu", "mbu", "stuck0"):
        faults = sample_rate_plan(
            exposure, 4000 / exposed_bit_cycles(exposure), rng=rng, model=model, mbu_width=3
        )
        assert len(faults) > 3000
        for fault in faults:
            assert not set(fault.bits) & set(hardened[fault.register]), fault
    with pytest.raises(AccelsimError, match="no exposed fault sites"):
        sample_single_fault(exposure, rng, registers="weight", bit=4)


def test_mbu_flips_adjacent_bits_clipped_to_the_register():
    exposure = two_layer_exposure()
    sampler = SiteSampler(exposure, registers="input", layers="conv1", bits=6)
    (fault,) = sampler.draw(np.random.default_rng(0), 1, model="mbu", mbu_width=3)
    assert fault.bits == (6, 7)  # 8-bit input register: bit 8 does not exist
    (fault,) = sampler.draw(np.random.default_rng(0), 1, model="seu")
    assert fault.bits == (6,)


def test_stuck_models_give_stuck_kinds():
    exposure = two_layer_exposure()
    faults = SiteSampler(exposure).draw(np.random.default_rng(0), 5, model="stuck1")
    assert {f.kind for f in faults} == {"stuck1"}


def test_sram_faults_address_a_word_of_the_layer_buffer():
    exposure = two_layer_exposure()
    faults = SiteSampler(exposure, registers=["sram:input", "sram:weight"]).draw(
        np.random.default_rng(3), 500
    )
    check_plan(faults, exposure)
    assert {f.layer for f in faults} == {"conv1"}  # fc has no SRAM exposure declared
    assert all(f.row == 0 and f.col == 0 for f in faults)
    assert max(f.cycle for f in faults if f.register == "sram:input") > 30  # addresses up to 99
    ber = SiteSampler(exposure, registers="sram:input", unit="ber").draw(
        np.random.default_rng(3), 50
    )
    assert {f.fold for f in ber} == {0}  # ber: the stored data is wrong from the layer's start


# ---- single faults -------------------------------------------------------------------------


def test_single_fault_stays_within_the_chosen_site_set():
    exposure = two_layer_exposure({"product": [15]})
    rng = np.random.default_rng(9)
    for _ in range(200):
        fault = sample_single_fault(
            exposure, rng, registers=["product", "weight"], layer="fc", bit=[2, 3, 15]
        )
        assert fault.layer == "fc" and fault.register in ("product", "weight")
        assert fault.bits[0] in (2, 3)  # 15 is hardened (and above fc's 8-bit product)
        check_plan([fault], exposure)


def test_single_fault_is_uniform_over_bit_cycles():
    exposure = two_layer_exposure()
    sampler = SiteSampler(exposure, registers=["input", "accumulator"], layers="conv1")
    draws = 40_000
    faults = sampler.draw(np.random.default_rng(17), draws)
    # each fold gets cycles x PEs of the total; each (register, bit) cell 1/(8+32) of it
    weights = {0: 120, 1: 80, 2: 30}
    for fold, weight in weights.items():
        share = sum(f.fold == fold for f in faults) / draws
        expected = weight / 230
        assert abs(share - expected) < 6 * np.sqrt(expected * (1 - expected) / draws)
    bit_counts = np.bincount(
        [f.bits[0] for f in faults if f.register == "accumulator"], minlength=32
    )
    expected = draws / 40
    assert np.all(np.abs(bit_counts - expected) < 6 * np.sqrt(expected))
    rows = np.bincount([f.row for f in faults if f.fold == 0], minlength=4)
    assert np.all(np.abs(rows - rows.mean()) < 6 * np.sqrt(rows.mean()))
    cycles = np.bincount([f.cycle for f in faults if f.fold == 1], minlength=20)
    assert np.all(np.abs(cycles - cycles.mean()) < 6 * np.sqrt(cycles.mean()))


def test_single_fault_of_a_neuron_hits_only_the_column_computing_it():
    exposure = two_layer_exposure()
    rng = np.random.default_rng(1)
    faults = [sample_single_fault(exposure, rng, layer="conv1", neuron=4) for _ in range(300)]
    # neuron 4: not in fold 0 (neurons 0-2) nor fold 1 (neuron 3); column 0 of fold 2
    assert {(f.fold, f.col) for f in faults} == {(2, 0)}
    assert {f.row for f in faults} == {0, 1}
    faults = [sample_single_fault(exposure, rng, layer="conv1", neuron=1) for _ in range(100)]
    assert {(f.fold, f.col) for f in faults} == {(0, 1)}
    with pytest.raises(AccelsimError, match="not output channels"):
        sample_single_fault(exposure, rng, layer="fc", neuron=0)
    with pytest.raises(AccelsimError, match="exactly one layer"):
        sample_single_fault(exposure, rng, neuron=0)


def test_unknown_selections_are_user_errors_naming_what_is_allowed():
    exposure = two_layer_exposure()
    rng = np.random.default_rng(0)
    with pytest.raises(AccelsimError, match="allowed: conv1, fc"):
        sample_single_fault(exposure, rng, layer="conv9")
    with pytest.raises(AccelsimError, match="registers"):
        sample_single_fault(exposure, rng, registers="psum")
    with pytest.raises(AccelsimError, match="model"):
        sample_single_fault(exposure, rng, model="burst")


@settings(max_examples=40, deadline=None)
@given(
    folds=st.lists(
        st.tuples(st.integers(0, 6), st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4
    ),
    hardened=st.lists(st.integers(0, 15), max_size=12),
    seed=st.integers(0, 2**32 - 1),
    model=st.sampled_from(["seu", "mbu", "stuck0"]),
)
def test_drawn_faults_always_name_real_unhardened_sites(folds, hardened, seed, model):
    cycles, rows, cols = (list(v) for v in zip(*folds))
    layer = LayerExposure("l", fold=range(len(folds)), cycles=cycles, rows=rows, cols=cols)
    exposure = Exposure(
        [layer], RegisterWidths.from_bits(4, 4, 16), dict.fromkeys(PE_REGISTERS, hardened)
    )
    sampler = SiteSampler(exposure)
    if sampler.total == 0:
        return
    faults = sampler.draw(np.random.default_rng(seed), 30, model=model, mbu_width=4)
    check_plan(faults, exposure)
    assert drop_hardened(faults, exposure) == faults


# ---- explicit plan files -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_plan_round_trips_through_files(tmp_path, suffix):
    exposure = two_layer_exposure()
    faults = SiteSampler(exposure, registers=["input", "sram:weight"]).draw(
        np.random.default_rng(4), 20, model="mbu", sample=3
    )
    path = tmp_path / f"plan{suffix}"
    save_plan(path, faults)
    assert load_plan(path) == faults
    assert [Fault.from_dict(f.to_dict()) for f in faults] == faults


def test_plan_file_accepts_a_bare_list_and_a_single_bit(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "- {layer: conv1, fold: 1, register: weight, row: 0, col: 0, cycle: 3, bits: 5}\n"
    )
    (fault,) = load_plan(path)
    assert fault == Fault("conv1", 1, "weight", 0, 0, 3, (5,), "flip", 0)


@pytest.mark.parametrize(
    ("entry", "key", "fragment"),
    [
        ({"register": "psum"}, "faults[1].register", "allowed: input, weight"),
        ({"kind": "burst"}, "faults[1].kind", "allowed: flip, stuck0, stuck1"),
        ({"row": -1}, "faults[1].row", "allowed: integers >= 0"),
        ({"cycle": True}, "faults[1].cycle", "not a non-negative integer"),
        ({"bits": []}, "faults[1].bits", "no bits given"),
        ({"bits": [70]}, "faults[1].bits", "too high"),
        ({"colour": 1}, "faults[1].colour", "unknown key"),
        ({"fold": None}, "faults[1].fold", "not a non-negative integer"),
    ],
)
def test_bad_plan_entries_name_file_entry_key_and_allowed(tmp_path, entry, key, fragment):
    good = {
        "layer": "conv1",
        "fold": 0,
        "register": "input",
        "row": 0,
        "col": 0,
        "cycle": 0,
        "bits": [1],
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"faults": [good, {**good, **entry}]}))
    with pytest.raises(AccelsimError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ")
    assert fragment in message


def test_missing_keys_and_bad_files_are_user_errors(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("faults:\n  - {layer: conv1, fold: 0, register: input, row: 0, col: 0}\n")
    with pytest.raises(AccelsimError, match=r"faults\[0\]\.cycle: required key is missing"):
        load_plan(path)
    path.write_text("faults: {layer: conv1}\n")
    with pytest.raises(AccelsimError, match="a fault plan is a list"):
        load_plan(path)
    bad_json = tmp_path / "plan.json"
    bad_json.write_text("{not json")
    with pytest.raises(AccelsimError, match="invalid JSON"):
        load_plan(bad_json)
    with pytest.raises(AccelsimError, match="file not found"):
        load_plan(tmp_path / "absent.yaml")
    with pytest.raises(AccelsimError, match="unknown plan format"):
        load_plan(tmp_path / "plan.txt")


def test_check_plan_names_the_entry_outside_the_exposure():
    exposure = two_layer_exposure()
    good = Fault("conv1", 1, "weight", 3, 0, 19, (7,))
    check_plan([good], exposure)
    cases = [
        (Fault("conv9", 0, "weight", 0, 0, 0, (0,)), "faults[1].layer"),
        (Fault("conv1", 3, "weight", 0, 0, 0, (0,)), "faults[1].fold"),
        (Fault("conv1", 1, "weight", 0, 1, 0, (0,)), "faults[1].col"),  # fold 1 uses 1 column
        (Fault("conv1", 1, "weight", 0, 0, 20, (0,)), "faults[1].cycle"),
        (Fault("fc", 0, "weight", 0, 0, 0, (4,)), "faults[1].bits"),  # fc weights are 4-bit
        (Fault("conv1", 0, "sram:input", 0, 0, 100, (0,)), "faults[1].cycle"),  # 100 words
    ]
    for bad, key in cases:
        with pytest.raises(AccelsimError, match=key.replace("[", r"\[").replace("]", r"\]")):
            check_plan([good, bad], exposure, file="p.yaml")


def test_drop_hardened_removes_bits_that_cannot_flip():
    exposure = two_layer_exposure({"accumulator": [31]})
    faults = [
        Fault("conv1", 0, "accumulator", 0, 0, 0, (30, 31)),
        Fault("conv1", 0, "accumulator", 0, 0, 0, (31,)),
        Fault("conv1", 0, "input", 0, 0, 0, (7,)),
    ]
    assert drop_hardened(faults, exposure) == [
        Fault("conv1", 0, "accumulator", 0, 0, 0, (30,)),
        Fault("conv1", 0, "input", 0, 0, 0, (7,)),
    ]
