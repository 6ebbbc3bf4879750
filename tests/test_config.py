"""The workload file: strict YAML, schema errors that name file, key and what is allowed."""

from __future__ import annotations

import pytest

from accelsim.config import load_workload_config, parse_workload
from accelsim.errors import AccelsimError
from accelsim.yamlio import parse_yaml


def parse(text: str):
    return parse_workload(parse_yaml(text, source="w.yaml"), file="w.yaml")


def error_of(text: str) -> str:
    with pytest.raises(AccelsimError) as info:
        parse(text)
    return str(info.value)


def test_minimal_workload_gets_documented_defaults():
    config = parse("model: m.npz\n")
    assert config.accelerator.array.rows == 16
    assert config.accelerator.array.dataflow == "ws"
    assert config.quantization.overflow == "wrap"
    assert config.faults is None


def test_unknown_key_names_its_path():
    assert error_of("model: m.npz\naccelerator: {array: {rowz: 4}}") == (
        "w.yaml: accelerator.array.rowz: unknown key"
    )


def test_negative_size_names_key_and_bound():
    message = error_of("model: m.npz\naccelerator: {array: {rows: -4}}")
    assert message.startswith("w.yaml: accelerator.array.rows:")
    assert "> 0" in message


def test_wrong_type_is_reported_not_coerced():
    assert "accelerator.buffers.input.capacity_kib" in error_of(
        "model: m.npz\naccelerator: {buffers: {input: {capacity_kib: lots}}}"
    )


def test_enumerations_list_what_is_allowed():
    message = error_of("model: m.npz\naccelerator: {array: {dataflow: rs}}")
    assert "'rs' is not allowed" in message and "'ws', 'os' or 'is'" in message


def test_missing_model_is_named():
    assert error_of("name: x\n") == "w.yaml: model: required key is missing"


def test_duplicate_keys_are_rejected_with_line():
    message = error_of("model: a\nbatch: 2\nbatch: 3\n")
    assert "duplicate key 'batch'" in message and "line 3" in message


def test_yaml_1_1_surprises_do_not_happen():
    # 1e-3 is a float, `on` is not a boolean, 017 is not octal 15
    assert parse("model: a\nfaults: {rate: 1e-3}").faults.rate == pytest.approx(1e-3)
    assert "double_buffer_weights" in error_of("model: a\naccelerator: {double_buffer_weights: on}")
    assert "batch" in error_of("model: a\nbatch: 017")


def test_reserved_msbs_must_leave_magnitude_bits():
    message = error_of("model: a\nquantization: {activation_bits: 4, reserved_msbs: 3}")
    assert message.startswith("w.yaml: quantization:") and "reserved_msbs" in message


def test_overrides_apply_before_validation():
    config = parse_workload(
        {"model": "a"}, file="w.yaml", overrides=["accelerator.array.rows=8", "batch=4"]
    )
    assert config.accelerator.array.rows == 8 and config.batch == 4
    with pytest.raises(AccelsimError, match="accelerator.array.rows"):
        parse_workload({"model": "a"}, file="w.yaml", overrides=["accelerator.array.rows=-1"])


def test_builtin_and_topology_models_are_sections():
    assert parse("model: {builtin: resnet18, input_size: 32}").model.builtin == "resnet18"
    assert "model.builtin" in error_of("model: {builtin: alexnet}")


def test_key_reference_in_docs_is_generated_from_the_schema():
    """docs/workload-keys.md is the schema's own output, so docs and code cannot drift."""
    from pathlib import Path

    from accelsim.schema_doc import schema_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "workload-keys.md").read_text()
    assert schema_markdown().strip() in doc, "regenerate: python -m accelsim schema"


def test_a_key_with_a_newline_still_gives_one_error_line(tmp_path):
    """Found by tests/test_fuzz_inputs.py: a YAML key holding a newline split the line."""
    path = tmp_path / "w.yaml"
    path.write_text('accelerator: {"\\n": 1}\n')
    with pytest.raises(AccelsimError) as info:
        load_workload_config(path)
    text = str(info.value)
    assert "\n" not in text and "accelerator.\\n: unknown key" in text
