"""``plain_json``: what ``normalize_json`` gives back, without copying what is plain already."""

from __future__ import annotations

import enum
import math
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_persist._json import (
    MAX_JSON_DEPTH,
    canonical_json,
    container_ids,
    normalize_json,
    plain_json,
)
from agent_persist.errors import InvalidPayloadError
from agent_persist.testing.bad_input import deep


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def containers(value: Any) -> list[Any]:
    """Every dict and list of ``value`` (with repeats, if it holds one twice)."""
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)  # pyright: ignore[reportUnknownArgumentType]
    return found


plain_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
plain = st.recursive(
    plain_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=30,
)
odd_leaves = (
    plain_leaves
    | st.just(float("nan"))
    | st.just(float("inf"))
    | st.just(Colour.RED)
    | st.builds(Name, st.text(max_size=3))
    | st.just("lone \ud800 surrogate")
    | st.builds(pow, st.just(2), st.just(20000))  # more digits than str() allows
    | st.builds(set, st.lists(st.integers(), max_size=2))
)
odd_keys = (
    st.text(max_size=3)
    | st.integers(-3, 3)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.builds(Name, st.text(max_size=3))
)
odd = st.recursive(
    odd_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(odd_keys, children, max_size=3)
        | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(plain)
def test_plain_json_comes_back_as_the_same_object(value: Any) -> None:
    assert plain_json(value) is value
    assert plain_json(value) == normalize_json(value)[0]


def outcome(function: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", function(value)
    except InvalidPayloadError:
        return "refused", None


@settings(max_examples=600, deadline=None)
@given(odd)
def test_anything_else_gives_what_normalize_json_gives(value: Any) -> None:
    before = pickle.dumps(value)
    expected = outcome(lambda v: normalize_json(v)[0], value)
    got = outcome(plain_json, value)
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert got[1] == expected[1]
        assert canonical_json(got[1]) == canonical_json(expected[1])
        found = containers(got[1])
        assert len({id(c) for c in found}) == len(found)  # a tree
    assert pickle.dumps(value) == before  # the input is never edited


def test_only_the_containers_leading_to_a_change_are_rebuilt() -> None:
    untouched: dict[str, Any] = {"messages": [{"content": "hi"}], "n": 1.5}
    path: dict[str, Any] = {"pair": (1, 2), "keep": ["a"]}
    value: dict[str, Any] = {"untouched": untouched, "path": path}
    result: Any = plain_json(value)
    assert result == {"untouched": untouched, "path": {"pair": [1, 2], "keep": ["a"]}}
    assert result is not value
    assert result["path"] is not path
    assert result["untouched"] is untouched
    assert result["path"]["keep"] is path["keep"]
    assert value["path"]["pair"] == (1, 2)


def test_keys_and_subclasses_become_what_json_makes_of_them() -> None:
    value = {"k": {1: "a", 2.5: "b"}, "t": {True: 1, False: 2}, "e": Colour.RED, "s": Name("x")}
    result: Any = plain_json(value)
    assert result == {"k": {"1": "a", "2.5": "b"}, "t": {"true": 1, "false": 2}, "e": 1, "s": "x"}
    assert type(result["e"]) is int
    assert type(result["s"]) is str


def test_an_object_met_twice_becomes_two_objects() -> None:
    shared: dict[str, Any] = {"x": [1]}
    result: Any = plain_json({"a": shared, "b": shared, "c": [shared]})
    assert result["a"] is shared
    assert result["b"] == shared
    assert result["b"] is not shared
    assert result["c"][0] == shared
    assert result["c"][0] is not shared
    assert result["b"]["x"] is not shared["x"]


@pytest.mark.parametrize(
    "value",
    [
        {"nan": float("nan")},
        [math.inf],
        {"set": {1}},
        {"lone": "\udfff"},
        {"\ud800": 1},
        {1: "a", "b": 2},  # keys json cannot sort
        {(1, 2): "tuple key"},
        [2**20000],
        [object()],
    ],
)
def test_what_is_not_json_is_refused(value: Any) -> None:
    with pytest.raises(InvalidPayloadError, match="is not plain JSON"):
        normalize_json(value)
    with pytest.raises(InvalidPayloadError, match="migrated payload is not plain JSON"):
        plain_json(value, what="migrated payload")


def test_cycles_and_depth_are_refused() -> None:
    cycle: list[Any] = [1]
    cycle.append({"back": cycle})
    with pytest.raises(InvalidPayloadError):
        plain_json(cycle)
    assert plain_json(deep(MAX_JSON_DEPTH)) is not None
    for too_deep in (deep(MAX_JSON_DEPTH + 1), deep(5000)):
        with pytest.raises(InvalidPayloadError, match=f"limit of {MAX_JSON_DEPTH} arrays"):
            plain_json(too_deep)
    nested_tuples: Any = ()
    for _ in range(MAX_JSON_DEPTH):
        nested_tuples = (nested_tuples,)
    with pytest.raises(InvalidPayloadError, match="nests deeper"):
        plain_json(nested_tuples)
    shared_deep = deep(MAX_JSON_DEPTH - 1)
    with pytest.raises(InvalidPayloadError, match="nests deeper"):
        plain_json([shared_deep, [shared_deep]])  # the copy of the shared one is too deep


def test_containers_not_known_get_their_own_and_known_ones_are_kept() -> None:
    """``known``: a migration's input containers stay; what came from elsewhere is copied."""
    kept = {"a": [1, 2]}
    outside = {"b": ["x"]}
    value = {"kept": kept, "outside": outside}
    known = container_ids(kept) | {id(value)}
    plain = plain_json(value, known=known)
    assert plain == {"kept": {"a": [1, 2]}, "outside": {"b": ["x"]}}
    assert plain["kept"] is kept
    assert plain["outside"] is not outside
    assert plain["outside"]["b"] is not outside["b"]
    assert container_ids(plain) <= known  # the next step's input
