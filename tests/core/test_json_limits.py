"""The JSON depth limit and the storable-value checks, exactly at their boundaries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_persist._json import (
    INT64_MAX,
    INT64_MIN,
    MAX_JSON_DEPTH,
    canonical_json,
    check_storable,
    json_depth_exceeds,
)
from agent_persist.errors import CorruptCheckpointError, InvalidPayloadError
from agent_persist.stores._records import load_json
from agent_persist.testing.bad_input import deep


def depth(value: Any) -> int:
    """The nesting depth, the slow and obvious way."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def test_the_limit_is_exact_on_write_and_read() -> None:
    at_limit, beyond = deep(MAX_JSON_DEPTH), deep(MAX_JSON_DEPTH + 1)
    assert depth(at_limit) == MAX_JSON_DEPTH == 200
    text = canonical_json(at_limit)
    assert load_json(text, where="x") == at_limit
    with pytest.raises(InvalidPayloadError, match="deeper than the limit of 200"):
        canonical_json(beyond, what="payload")
    with pytest.raises(CorruptCheckpointError, match="deeper than the limit of 200"):
        load_json(json.dumps(beyond), where="x")


def test_far_too_deep_values_never_raise_recursion_error() -> None:
    very_deep: Any = []
    for _ in range(100_000):
        very_deep = [very_deep]
    with pytest.raises(InvalidPayloadError):
        canonical_json(very_deep)
    with pytest.raises(CorruptCheckpointError):
        load_json(b"[" * 100_000 + b"]" * 100_000, where="x")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4), children, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(json_values, st.integers(0, 12))
def test_the_fast_depth_check_agrees_with_a_walk(value: Any, limit: int) -> None:
    """Strings full of brackets, quotes and backslashes never fool the byte-level check."""
    for text in (canonical_json(value, max_depth=None), json.dumps(value).encode()):
        assert json_depth_exceeds(text, limit) == (depth(value) > limit)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": "x\x00"}, r"metadata\['a'\] holds a NUL"),
        ({"a\x00": 1}, "key with a NUL"),
        ([{"b": [INT64_MAX + 1]}], r"metadata\[0\]\['b'\]\[0\] is an integer beyond 64 bits"),
        ({"a": INT64_MIN - 1}, "beyond 64 bits"),
    ],
)
def test_storable_checks_name_the_path(value: Any, message: str) -> None:
    with pytest.raises(InvalidPayloadError, match=message):
        check_storable(value, what="metadata")


def test_storable_values_pass() -> None:
    check_storable({"a": [INT64_MAX, INT64_MIN, True, 1.5, None, "\u2028 🤖"]}, what="metadata")


def test_a_value_that_holds_itself_is_refused_and_the_encoder_recovers() -> None:
    """No recursion to the stack's end: refused at once, and the next value encodes."""
    looped: list[Any] = [1]
    looped.append({"again": looped})
    with pytest.raises(InvalidPayloadError, match="Circular reference"):
        canonical_json(looped)
    shared = {"x": 1}  # the same object twice is no cycle
    assert canonical_json([shared, shared, looped[0]]) == b'[{"x":1},{"x":1},1]'
