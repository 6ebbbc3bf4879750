"""The strict YAML loader refuses what would make it build without bound, in one line."""

from __future__ import annotations

import pytest

from accelsim.errors import AccelsimError
from accelsim.yamlio import MAX_ALIASES, MAX_NESTING, parse_yaml


def test_nesting_up_to_the_limit_loads_and_beyond_it_is_one_line():
    ok = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert parse_yaml(f"k: {ok[2:-2]}") is not None
    deep = "[" * 50_000 + "]" * 50_000
    with pytest.raises(AccelsimError, match=f"nested deeper than {MAX_NESTING}") as info:
        parse_yaml(f"k: {deep}", source="w.yaml")
    assert "\n" not in str(info.value) and "line 1" in str(info.value)


def test_aliases_are_bounded():
    fine = "a: &a [1, 2]\n" + "".join(f"b{i}: *a\n" for i in range(MAX_ALIASES))
    assert len(parse_yaml(fine)) == MAX_ALIASES + 1
    laughs = fine + "c: *a\n"
    with pytest.raises(AccelsimError, match="aliases"):
        parse_yaml(laughs)


@pytest.mark.parametrize(
    ("text", "where"),
    [("name: a\x07b\n", "line 1, column 8"), ("x: 1\ny: \x00\n", "line 2, column 4")],
)
def test_forbidden_characters_name_their_line_and_column(text, where):
    with pytest.raises(AccelsimError) as info:
        parse_yaml(text, source="w.yaml")
    message = str(info.value)
    assert where in message and "U+00" in message and "\n" not in message
