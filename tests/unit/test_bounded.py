"""Bounded decoding: hostile JSON and YAML end in `BoundedInputError`, never worse."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.bounded import (
    MAX_DEPTH,
    BoundedInputError,
    check_depth,
    loads_json,
    loads_yaml,
    read_text,
)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def test_json_nested_a_thousand_deep_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(BoundedInputError, match="nested deeper than"):
        loads_json("[" * 1000 + "]" * 1000)


def test_json_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = json.dumps({"note": "[" * 500 + '\\"{' * 100})
    assert loads_json(text) == json.loads(text)


def test_json_at_the_depth_limit_is_accepted() -> None:
    assert loads_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_json_size_and_encoding_are_checked() -> None:
    with pytest.raises(BoundedInputError, match="larger than 10 bytes"):
        loads_json(b"[" + b"1," * 10 + b"1]", max_bytes=10)
    with pytest.raises(BoundedInputError, match="not UTF-8"):
        loads_json(b'{"a": "\xff"}')
    with pytest.raises(BoundedInputError, match="not JSON"):
        loads_json("{")


@settings(max_examples=2000, deadline=None)
@given(JSON_VALUES)
def test_json_round_trips_any_shallow_value(value: object) -> None:
    assert loads_json(json.dumps(value)) == value


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet='[]{}",:\\ 0a', max_size=200))
def test_json_garbage_raises_only_the_bounded_error(text: str) -> None:
    with contextlib.suppress(BoundedInputError):
        loads_json(text)


BOMB = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
"""


def test_yaml_alias_bomb_is_refused_while_composing() -> None:
    assert len(BOMB) < 1024
    with pytest.raises(BoundedInputError, match="YAML aliases"):
        loads_yaml(BOMB)


def test_yaml_a_few_anchors_and_merge_keys_still_work() -> None:
    text = "base: &base {cleanup_after_hours: 12}\noverrides:\n  - <<: *base\n    experiments: x\n"
    data = loads_yaml(text)
    assert data["overrides"][0] == {"cleanup_after_hours": 12, "experiments": "x"}


def test_yaml_deep_nesting_is_refused() -> None:
    with pytest.raises(BoundedInputError, match="nested deeper"):
        loads_yaml("[" * 5000 + "]" * 5000)
    with pytest.raises(BoundedInputError, match="nested deeper"):
        loads_yaml("".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "v")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(BoundedInputError, match="at line 3"):
        loads_yaml("a: 1\nb: 2\nc: d: e\n")


def test_read_text_stops_at_the_limit_on_an_endless_file() -> None:
    with pytest.raises(BoundedInputError, match="larger than 1024 bytes"):
        read_text(Path("/dev/zero"), max_bytes=1024)


def test_read_text_refuses_non_utf8_and_missing_files(tmp_path: Path) -> None:
    latin = tmp_path / "policy.yaml"
    latin.write_bytes("experiments: caf\xe9".encode("latin-1"))
    with pytest.raises(BoundedInputError, match="not UTF-8"):
        read_text(latin, max_bytes=1024)
    with pytest.raises(BoundedInputError, match="cannot read"):
        read_text(tmp_path / "missing.yaml", max_bytes=1024)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ab:-[]{}&*<> \n'\"!|", max_size=120))
def test_yaml_garbage_raises_only_the_bounded_error(text: str) -> None:
    with contextlib.suppress(BoundedInputError):
        loads_yaml(text)


def test_depth_of_a_decoded_value_is_checked_without_recursion() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(10_000):
        child: list[object] = []
        node.append(child)
        node = child
    with pytest.raises(BoundedInputError, match="nested deeper"):
        check_depth(deep)
    check_depth({"a": [{"b": 1}]})  # shallow values pass
