"""The discrete design space: enumeration, encoding for the GPs, sampling, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from optimizer import DesignSpace, Variable


def small_space() -> DesignSpace:
    return DesignSpace(
        [
            Variable("rows", (4, 8, 16, 32)),
            Variable("bits", (4, 6, 8)),
            Variable("fraction", (0.0, 0.25, 0.5)),
        ]
    )


def test_enumeration_is_the_cartesian_product_in_order():
    space = small_space()
    expected = [
        {"rows": r, "bits": b, "fraction": f}
        for r, b, f in itertools.product((4, 8, 16, 32), (4, 6, 8), (0.0, 0.25, 0.5))
    ]
    assert space.size == 36 == len(space)
    assert space.enumerate() == expected
    assert [space.design_at(i) for i in space.all_indices()] == expected


def test_encoding_scales_ordinal_indices_to_unit_interval_and_decodes_back():
    space = small_space()
    encoded = np.array([space.encode(d) for d in space.enumerate()])
    assert encoded.min() == 0.0 and encoded.max() == 1.0
    # rows has 4 values: its encodings are 0, 1/3, 2/3, 1 whatever the values' units
    np.testing.assert_allclose(np.unique(encoded[:, 0]), [0, 1 / 3, 2 / 3, 1])
    for design, x in zip(space.enumerate(), encoded):
        assert space.decode(x) == design
    # a point between grid values decodes to the nearest one
    assert space.decode(np.array([0.30, 0.49, 0.99])) == {"rows": 8, "bits": 6, "fraction": 0.5}


def test_single_valued_variable_encodes_to_zero():
    space = DesignSpace([Variable("s", (7,)), Variable("t", (1, 2))])
    assert space.encode({"s": 7, "t": 2}).tolist() == [0.0, 1.0]


def test_values_from_yaml_lists_and_numpy_become_python_tuples():
    space = DesignSpace.from_mapping({"rows": [4, 8], "bits": np.array([4, 8])})
    assert space.variables[1].values == (4, 8)
    assert type(space.variables[1].values[0]) is int
    assert space.to_dict() == {
        "variables": [{"name": "rows", "values": [4, 8]}, {"name": "bits", "values": [4, 8]}]
    }


def test_sample_draws_distinct_designs_reproducibly_and_prefix_stable():
    space = small_space()
    a = space.sample(np.random.default_rng(3), 20)
    b = space.sample(np.random.default_rng(3), 20)
    longer = space.sample(np.random.default_rng(3), 30)
    assert a == b
    assert longer[:20] == a
    assert len({tuple(d.values()) for d in longer}) == 30
    assert len(space.sample(np.random.default_rng(0), 1000)) == space.size


def test_latin_hypercube_covers_every_variable_range_evenly():
    space = DesignSpace([Variable("x", tuple(range(10))), Variable("y", tuple(range(10)))])
    points = space.latin_hypercube(np.random.default_rng(5), 10)
    assert len(set(points)) == 10
    # 10 strata per variable with 10 values each: every value used exactly once per variable
    assert sorted(p[0] for p in points) == list(range(10))
    assert sorted(p[1] for p in points) == list(range(10))
    assert points == space.latin_hypercube(np.random.default_rng(5), 10)


def test_latin_hypercube_points_are_distinct_when_variables_have_few_values():
    space = DesignSpace([Variable("x", (0, 1)), Variable("y", (0, 1, 2))])
    points = space.latin_hypercube(np.random.default_rng(0), 6)
    assert sorted(points) == sorted(itertools.product(range(2), range(3)))


def test_emukit_space_has_one_discrete_parameter_per_variable():
    emukit_space = small_space().emukit_space()
    assert emukit_space.parameter_names == ["rows", "bits", "fraction"]
    assert emukit_space.parameters[1].domain == [0.0, 0.5, 1.0]


def test_index_rejects_value_outside_the_space_naming_the_key():
    with pytest.raises(AccelsimError) as err:
        small_space().index({"rows": 12, "bits": 8, "fraction": 0.0})
    assert err.value.key == "optimize.variables.rows"
    assert "4, 8, 16, 32" in str(err.value)


def test_index_rejects_missing_and_unknown_variables():
    with pytest.raises(AccelsimError, match=r"missing \['fraction'\], unknown \['cols'\]"):
        small_space().index({"rows": 4, "bits": 8, "cols": 2})


@pytest.mark.parametrize(
    ("mapping", "key", "fragment"),
    [
        ({"rows": []}, "optimize.variables.rows", "at least one value"),
        ({"rows": [8, 4]}, "optimize.variables.rows", "strictly increasing"),
        ({"rows": [4, 4, 8]}, "optimize.variables.rows", "strictly increasing"),
        ({"rows": [4, "8"]}, "optimize.variables.rows", "not a finite number"),
        ({"rows": [True, 2]}, "optimize.variables.rows", "not a finite number"),
        ({"rows": [1.0, float("nan")]}, "optimize.variables.rows", "not a finite number"),
        ({"rows": 8}, "optimize.variables.rows", "must be a list"),
        ({}, "optimize.variables", "at least one variable"),
    ],
)
def test_invalid_ranges_are_user_errors_with_key_path(mapping, key, fragment):
    with pytest.raises(AccelsimError) as err:
        DesignSpace.from_mapping(mapping, file="w.yaml")
    assert err.value.key == key
    assert err.value.file == "w.yaml"
    assert fragment in str(err.value)


def test_duplicate_variable_names_are_rejected():
    with pytest.raises(AccelsimError) as err:
        DesignSpace([Variable("rows", (1, 2)), Variable("rows", (3,))])
    assert err.value.key == "optimize.variables.rows"
    assert "duplicate" in str(err.value)
