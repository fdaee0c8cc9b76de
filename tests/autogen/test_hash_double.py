"""The hash model double's parallel tool calls, and that its default is unchanged."""

from __future__ import annotations

import pytest
from autogen_core import FunctionCall
from autogen_core.models import UserMessage
from autogen_core.tools import FunctionTool

from autogen_persist.testing import HashChatCompletionClient


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def lookup(key: str) -> str:
    """Look a key up."""
    return key


TOOLS = [FunctionTool(add, "Add."), FunctionTool(lookup, "Look up.")]


async def _tool_reply(client: HashChatCompletionClient) -> list[FunctionCall]:
    """The first reply (over a few prompts) that calls tools."""
    for index in range(50):
        result = await client.create([UserMessage(content=f"q{index}", source="user")], tools=TOOLS)
        if isinstance(result.content, list):
            return result.content
    raise AssertionError("no prompt made the double call a tool")


async def test_a_reply_holds_parallel_tool_calls_the_first_as_a_single_reply() -> None:
    single = await _tool_reply(HashChatCompletionClient(name="p", tool_every=2))
    parallel = await _tool_reply(HashChatCompletionClient(name="p", tool_every=2, parallel_tools=3))
    assert len(single) == 1
    assert len(parallel) == 3
    assert parallel[0] == single[0]
    assert len({call.id for call in parallel}) == 3
    assert {call.name for call in parallel} == {"add", "lookup"}


def test_the_default_configuration_is_unchanged_and_round_trips() -> None:
    default = HashChatCompletionClient(name="p", tool_every=2).dump_component()
    assert "parallel_tools" not in default.config
    parallel = HashChatCompletionClient(name="p", parallel_tools=2).dump_component()
    assert parallel.config["parallel_tools"] == 2
    loaded = HashChatCompletionClient.load_component(parallel)
    assert loaded.dump_component() == parallel
    assert HashChatCompletionClient.load_component(default).dump_component() == default


def test_parallel_tools_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="parallel_tools"):
        HashChatCompletionClient(parallel_tools=0)
