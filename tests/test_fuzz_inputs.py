"""Fuzzing what users hand us: whatever the bytes, the only failure is the documented one
(an AccelsimError: one line naming the file), never another exception."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accelsim.config import parse_workload
from accelsim.errors import AccelsimError
from accelsim.ir import load_graph
from accelsim.npzio import load_npz
from accelsim.yamlio import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_TEXT = (ROOT / "workloads" / "digits_cnn.yaml").read_text(encoding="utf-8")
BASE = yaml.safe_load(BASE_TEXT)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc, prefix=()):
    for key, value in doc.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


PATHS = sorted(_paths(BASE))


def _one_line_error(call) -> None:
    try:
        call()
    except AccelsimError as exc:
        assert "\n" not in str(exc) and str(exc).strip()


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=4))
def test_any_value_at_any_key_is_accepted_or_one_line(mutations):
    doc = yaml.safe_load(BASE_TEXT)
    for path, value in mutations:
        node = doc
        for key in path[:-1]:
            node = node[key] if isinstance(node.get(key), dict) else node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    _one_line_error(lambda: parse_workload(doc, file="w.yaml"))


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_any_text_is_yaml_or_one_line(data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    _one_line_error(lambda: parse_yaml(text, source="w.yaml"))


@FUZZ
@given(st.integers(0, 400), st.binary(min_size=1, max_size=8))
def test_a_mutilated_yaml_is_yaml_or_one_line(at, junk):
    text = BASE_TEXT[:at] + junk.decode("latin-1") + BASE_TEXT[at:]

    def parse():
        raw = parse_yaml(text, source="w.yaml")
        return parse_workload(raw, file="w.yaml")

    _one_line_error(parse)


def _npz_with_header(header: dict, payload: bytes) -> bytes:
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", member.getvalue() + payload)
    return buffer.getvalue()


@FUZZ
@given(
    descr=st.sampled_from(["<f4", "<i8", "|u1", "<f8", "|b1", ">i4"]),
    shape=st.lists(st.integers(0, 2**40), max_size=4),
    payload=st.binary(max_size=64),
)
def test_any_npz_header_is_read_or_one_line(tmp_path_factory, descr, shape, payload):
    path = tmp_path_factory.mktemp("npz") / "f.npz"
    header = {"descr": descr, "fortran_order": False, "shape": tuple(shape)}
    path.write_bytes(_npz_with_header(header, payload))
    _one_line_error(lambda: load_npz(path))
    _one_line_error(lambda: load_graph(path))


@FUZZ
@given(at=st.integers(0, 6000), junk=st.binary(min_size=1, max_size=16))
@example(at=2598, junk=b"\x00")  # a NUL inside a member's .npy header (numpy's tokenizer)
def test_a_mutilated_graph_file_loads_or_is_one_line(tmp_path_factory, at, junk):
    original = (ROOT / "workloads" / "zoo" / "digits_mlp.npz").read_bytes()
    at = at % len(original)
    path = tmp_path_factory.mktemp("graph") / "g.npz"
    path.write_bytes(original[:at] + junk + original[at + len(junk) :])
    _one_line_error(lambda: load_graph(path))
