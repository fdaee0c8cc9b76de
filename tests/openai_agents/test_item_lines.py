"""Reading a session's JSON Lines at once: the splice agrees with unwrapping item by item."""

from __future__ import annotations

from typing import Any

import pytest

from agent_persist import canonical_json
from openai_agents_persist import ITEM_FORMATS
from openai_agents_persist._item_lines import current_items, parse_lines
from openai_agents_persist.items import ITEM_FORMAT_VERSION


def lines(*stored: Any) -> bytes:
    return b"\n".join(canonical_json(entry) for entry in stored)


def wrapped(item: Any, sdk: str = "0.24.0") -> dict[str, Any]:
    return {"v": ITEM_FORMAT_VERSION, "sdk": sdk, "item": item}


TRICKY: list[Any] = [
    {"role": "user", "content": 'a ,"sdk":"0.24.0","v":1}\n{"item": look-alike'},
    {"item": 1, "sdk": "0.24.0", "v": 1},  # an item shaped like a wrapper
    [{"item": 2, "sdk": "x", "v": 1}, {"item": 3}],
    "text",
    3.5,
    None,
]


@pytest.mark.parametrize(
    "sdks",
    [["0.24.0"] * 6, ["0.1.0", "0.1.0", "0.24.0", "0.1.0", "0.24.0", "1.0.0rc1"]],
)
def test_wrapped_items_of_any_sdk_versions_are_spliced(sdks: list[str]) -> None:
    stored = [wrapped(item, sdk) for item, sdk in zip(TRICKY, sdks, strict=True)]
    assert current_items(lines(*stored)) == TRICKY
    assert current_items(lines(stored[0])) == TRICKY[:1]
    assert current_items(b"") == []


@pytest.mark.parametrize(
    "stored",
    [
        [wrapped(1), {"role": "user"}],  # a bare item (format 0)
        [wrapped(1), {"v": 99, "sdk": "9", "item": 2}],  # a future format
        [wrapped(1), {"v": 1, "sdk": "s", "item": 2, "extra": 0}],
        [{"v": 1, "item": 2}, wrapped(1)],  # no sdk
        ["just a string", wrapped(1)],
    ],
)
def test_anything_else_takes_the_item_by_item_path(stored: list[Any]) -> None:
    data = lines(*stored)
    assert current_items(data) is None
    assert parse_lines(data) == stored


def test_a_line_that_does_not_parse_is_left_to_the_store() -> None:
    good = lines(wrapped(1))
    for damaged in (good + b"\n{", good + b"\n" + good[:-1], b"{\n}"):
        assert current_items(damaged) is None
        assert parse_lines(damaged) is None
    assert ITEM_FORMATS.unwrap_all(parse_lines(good) or [], where="t") == [1]
