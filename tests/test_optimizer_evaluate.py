"""DesignEvaluator on the digits CNN: designs applied to the config, feasible and infeasible
results, the quantisation cache, normalised constraints, and the optimize: section schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.workload import load_workload
from optimizer.baselines import fixed_designs
from optimizer.config import parse_optimize
from optimizer.estimators import CampaignEstimator
from optimizer.evaluate import DesignEvaluator

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_optimize.yaml"
NO_FAULTS = ["faults.rate=0", "dataset.samples=16"]


def evaluator(
    variables: dict, *, constraints: dict | None = None, overrides=(), estimator=None
) -> DesignEvaluator:
    workload = load_workload(DIGITS, [*NO_FAULTS, *overrides])
    section = {"variables": variables, "constraints": constraints or {}}
    opt = parse_optimize(section, workload=workload.config, file="test.yaml")
    return DesignEvaluator(workload, opt, estimator=estimator)


def test_feasible_design_has_objective_constraints_and_metrics():
    ev = evaluator(
        {"array_rows": [4, 8], "weight_bits": [6, 8]},
        constraints={"min_accuracy": 0.5, "max_latency_cycles": 10**6},
    )
    result = ev({"array_rows": 8, "weight_bits": 8})
    assert result.ran and result.feasible
    m = result.metrics
    assert result.objective == pytest.approx(m["area_um2"]["total_um2"])
    # accuracy is decided on its one-sided lower bound over the finite test set
    assert m["accuracy_lo"] < m["accuracy"]
    assert result.constraints["accuracy"] == pytest.approx(0.5 - m["accuracy_lo"])
    assert result.constraints["latency"] == pytest.approx(m["latency_cycles"] / 10**6 - 1)
    assert m["design"] == {"array_rows": 8, "weight_bits": 8}
    # a smaller array is cheaper and slower
    small = ev({"array_rows": 4, "weight_bits": 8})
    assert small.objective < result.objective
    assert small.metrics["latency_cycles"] > m["latency_cycles"]


def test_violated_constraint_is_positive_and_not_feasible():
    ev = evaluator({"array_rows": [4, 8]}, constraints={"max_latency_cycles": 100})
    result = ev({"array_rows": 8})
    assert result.ran and not result.feasible
    assert result.violations()["latency"] > 0


def test_buffer_too_small_is_infeasible_not_an_exception():
    # 8 x 8 int8 weight tile = 64 B; a 32 B weight slot (64 B double-buffered) holds 4 x 8 only
    ev = evaluator(
        {"array_rows": [4, 8]}, overrides=["accelerator.buffers.weight.capacity_kib=0.0625"]
    )
    bad = ev({"array_rows": 8})
    assert not bad.ran and bad.objective is None
    assert "weight" in bad.infeasible_reason
    assert ev({"array_rows": 4}).ran


def test_protected_neurons_without_redundant_units_are_infeasible():
    ev = evaluator(
        {"protected_fraction": [0.0, 0.5], "redundant_units": [0, 4]},
        estimator=CampaignEstimator(injections=20),
    )
    bad = ev({"protected_fraction": 0.5, "redundant_units": 0})
    assert not bad.ran and "redundant units" in bad.infeasible_reason
    good = ev({"protected_fraction": 0.5, "redundant_units": 4})
    assert good.ran and good.metrics["protected_neurons"] > 0
    assert good.metrics["area_um2"]["redundant_units_um2"] > 0


def test_invalid_bit_combination_is_infeasible():
    ev = evaluator({"activation_bits": [4, 8], "reserved_msbs": [0, 3]})
    bad = ev({"activation_bits": 4, "reserved_msbs": 3})
    assert not bad.ran and "reserved_msbs" in bad.infeasible_reason
    assert ev({"activation_bits": 8, "reserved_msbs": 3}).ran


def test_quantisation_is_cached_and_evaluations_memoised():
    ev = evaluator({"array_rows": [4, 8], "dataflow": ["ws", "os"], "weight_bits": [6, 8]})
    for rows in (4, 8):
        for flow in (0, 1):
            ev({"array_rows": rows, "dataflow": flow, "weight_bits": 8})
    assert len(ev.designs._quantised) == 1  # one quantisation, four hardware designs
    os_design = ev({"array_rows": 4, "dataflow": 1, "weight_bits": 8})
    assert os_design.metrics["design"]["dataflow"] == "os"
    assert ev.evaluations == 4  # the repeat came from the memo
    ev({"array_rows": 4, "dataflow": 1, "weight_bits": 6})
    assert len(ev.designs._quantised) == 2


def test_msb_hardening_and_reliability_interval():
    workload = load_workload(DIGITS, ["dataset.samples=16"])
    section = {
        "variables": {"hardened_bits.accumulator": [0, 8]},
        "hardening": "msb",
        "constraints": {"min_reliability": 0.99},
    }
    opt = parse_optimize(section, workload=workload.config, file="test.yaml")
    ev = DesignEvaluator(workload, opt, estimator=CampaignEstimator(injections=60))
    bare, hardened = ev({"hardened_bits.accumulator": 0}), ev({"hardened_bits.accumulator": 8})
    acc_width = workload.config.quantization.acc_bits
    assert hardened.metrics["hardened_bits"]["accumulator"] == list(range(acc_width - 8, acc_width))
    assert (
        hardened.metrics["area_um2"]["hardening_um2"]
        > 0
        == bare.metrics["area_um2"]["hardening_um2"]
    )
    for result in (bare, hardened):
        rel = result.metrics["reliability"]
        assert 0 <= rel["lo"] <= rel["reliability"] <= rel["hi"] <= 1
        assert "reliability" in result.constraints
    # hardened bits are not fault sites: fewer expected faults
    assert (
        hardened.metrics["reliability"]["expected_faults"]
        < bare.metrics["reliability"]["expected_faults"]
    )


def test_fixed_designs_keep_hardware_and_vary_protection():
    opt = parse_optimize(
        {
            "variables": {
                "array_rows": [4, 8],
                "hardened_bits.weight": [0, 2],
                "protected_fraction": [0.0, 0.2],
                "redundant_units": [0, 8],
            }
        }
    )
    designs = fixed_designs(
        opt.space,
        {
            "array_rows": 4,
            "hardened_bits.weight": 2,
            "protected_fraction": 0.2,
            "redundant_units": 8,
        },
        units=16,
    )
    assert set(designs) == {"none", "full TMR", "neuron-only", "bit-only"}
    assert all(d["array_rows"] == 4 for d in designs.values())
    assert designs["none"]["hardened_bits.weight"] == 0 and designs["none"]["redundant_units"] == 0
    assert designs["neuron-only"]["protected_fraction"] == 0.2
    assert designs["neuron-only"]["redundant_units"] == 8
    assert designs["bit-only"]["hardened_bits.weight"] == 2
    assert designs["bit-only"]["protected_fraction"] == 0.0


@pytest.mark.parametrize(
    ("variables", "key", "text"),
    [
        ({"array_rows": []}, "optimize.variables.array_rows", "empty"),
        ({"weight_bits": {"min": 8, "max": 4}}, "optimize.variables.weight_bits", "min 8 > max 4"),
        ({"weight_bits": [1, 4]}, "optimize.variables.weight_bits", "2..8"),
        ({"activation_bits": {"min": 4, "max": 9}}, "optimize.variables.activation_bits", "2..8"),
        ({"acc_bits": [16, 16]}, "optimize.variables.acc_bits", "repeat"),
        ({"colour": [1]}, "optimize.variables.colour", "unknown design variable"),
        ({"dataflow": ["ws", "diagonal"]}, "optimize.variables.dataflow", "not allowed"),
        (
            {"protected_fraction": [0.5]},
            "optimize.variables.protected_fraction",
            "no redundant units",
        ),
        (
            {"weight_bits": {"min": 2, "max": 8, "stride": 2}},
            "optimize.variables.weight_bits.stride",
            "unknown key",
        ),
    ],
)
def test_bad_variables_name_the_key(variables, key, text):
    workload = load_workload(DIGITS, NO_FAULTS)
    with pytest.raises(AccelsimError) as info:
        parse_optimize({"variables": variables}, workload=workload.config, file="w.yaml")
    assert info.value.key == key and text in str(info.value)
    assert info.value.file == "w.yaml"


def test_range_expands_and_reliability_needs_a_rate():
    opt = parse_optimize({"variables": {"protected_fraction": {"min": 0, "max": 0.3, "step": 0.1}}})
    assert opt.space.variables[0].values == (0.0, 0.1, 0.2, 0.3)
    workload = load_workload(DIGITS, NO_FAULTS)
    with pytest.raises(AccelsimError, match="fault rate") as info:
        parse_optimize(
            {"variables": {"array_rows": [4]}, "constraints": {"min_reliability": 0.9}},
            workload=workload.config,
        )
    assert info.value.key == "optimize.constraints.min_reliability"


def test_stratified_estimator_hardens_by_contribution_and_protection_removes_failures(tmp_path):
    from faults.strata import AllocationSettings, rank_bits
    from optimizer.estimators import StratifiedEstimator

    workload = load_workload(DIGITS, ["dataset.samples=16", "faults.samples=8"])
    section = {
        "variables": {
            "hardened_bits.accumulator": [0, 4, 32],
            "protected_fraction": [0.0, 1.0],
            "redundant_units": [8],
        },
        "constraints": {"min_reliability": 0.999},
        "certify": {"enabled": False},
    }
    opt = parse_optimize(section, workload=workload.config, file="test.yaml")
    estimator = StratifiedEstimator(
        cache_dir=tmp_path, settings=AllocationSettings(pilot=16, max_injections=20_000)
    )
    ev = DesignEvaluator(workload, opt, estimator=estimator)
    bare = ev({"hardened_bits.accumulator": 0, "protected_fraction": 0.0, "redundant_units": 8})
    four = ev({"hardened_bits.accumulator": 4, "protected_fraction": 0.0, "redundant_units": 8})
    full = ev({"hardened_bits.accumulator": 32, "protected_fraction": 0.0, "redundant_units": 8})
    every = ev({"hardened_bits.accumulator": 0, "protected_fraction": 1.0, "redundant_units": 8})
    # one quantisation and array: one store for the unprotected designs (hardening needs no
    # records of its own), one for the design that recomputes every neuron
    assert len(estimator._stores) == 2
    store = next(iter(estimator._stores.values()))
    weights, trials = next(iter(estimator._reference.values()))
    ranking = rank_bits(store, weights, trials)["accumulator"]
    chosen = four.metrics["hardened_bits"]["accumulator"]
    assert sorted(chosen) == sorted(ranking[:4])
    width = workload.config.quantization.acc_bits
    assert full.metrics["hardened_bits"]["accumulator"] == list(range(width))
    rel = {
        name: e.metrics["reliability"]
        for name, e in (("bare", bare), ("four", four), ("full", full), ("every", every))
    }
    for r in rel.values():
        assert r["failure_lo"] <= r["failure"] <= r["failure_hi"]
        assert r["failure"] <= r["failure_upper"] <= r["failure_hi"]
    assert rel["four"]["failure"] <= rel["bare"]["failure"]
    assert rel["full"]["failure"] <= rel["four"]["failure"]
    assert rel["full"]["expected_faults"] < rel["bare"]["expected_faults"]
    # the constraint is decided on the upper bound
    target = 1e-3
    for e in (bare, four, full):
        upper = max(e.metrics["reliability"]["failure_upper"], target * 1e-3)
        assert e.constraints["reliability"] == pytest.approx(np.log10(upper / target))
    # every neuron recomputed: no failure left, but the upper bound stays positive
    assert every.metrics["protected_neurons"] == sum(store.neurons.values())
    assert rel["every"]["failure"] == 0.0 and rel["every"]["failure_upper"] > 0.0
