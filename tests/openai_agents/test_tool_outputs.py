"""Long tool outputs stored short in the history, in full in the session's audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.run_config import CallModelData, ModelInputData
from agents.testing import ScriptedModel, assistant_message, function_call
from oa_support import Backend

from agent_persist.stores.sql import SQLStore
from damage_support import GARBAGE, damage_log_item
from openai_agents_persist import ITEMS_LOG, StoreSession
from openai_agents_persist.errors import CorruptItemError
from openai_agents_persist.tool_outputs import (
    AUDIT_LOG,
    TOOL_OUTPUTS_LOG,
    StoreToolOutputs,
    full_tool_output,
    tool_output_reference,
)

FULL = "line one\n" + "x" * 5003  # 5,012 characters, as in issue 11


@function_tool
def read_log() -> str:
    """Read a long log."""
    return FULL


def outputs_in(items: Any) -> list[str]:
    return [item["output"] for item in items if item.get("type") == "function_call_output"]


def scripted() -> ScriptedModel:
    return ScriptedModel(
        [
            [function_call("read_log", {}, call_id="c1")],
            [assistant_message("read it")],
            [assistant_message("second")],
        ]
    )


@pytest.mark.parametrize("checkpoints", [False, True])
async def test_a_long_output_is_stored_short_with_a_reference_to_the_full_one(
    backend: Backend, checkpoints: bool
) -> None:
    assert len(FULL) == 5_012
    summaries: list[int] = []

    async def summarize(output: str) -> str:
        summaries.append(len(output))
        return f"a log of {output.count('x')} x"

    policy = StoreToolOutputs(max_chars=2_000, summarize=summarize)
    model = scripted()
    agent = Agent(name="a", tools=[read_log], model=model)
    config = RunConfig(call_model_input_filter=policy.model_input_filter)
    short = (
        "a log of 5003 x\n"
        f"[tool output of 5012 characters stored short; full output: {AUDIT_LOG}#0]"
    )
    async with backend.open() as store:
        session = StoreSession("s", store=store, tool_outputs=policy, checkpoints=checkpoints)
        await Runner.run(agent, "read", session=session, run_config=config)
        # the same turn's next model call saw the stored short form, reference included
        assert outputs_in(model.calls[1].input) == [short]
        await Runner.run(agent, "again", session=session, run_config=config)
        assert outputs_in(model.calls[2].input) == [short]
        [item] = [i for i in await session.get_items() if i.get("type") == "function_call_output"]
        assert item["output"] == short
        assert tool_output_reference(item) == (AUDIT_LOG, 0)
        assert await full_tool_output(session, item) == FULL
        [event] = await store.read_log("s", AUDIT_LOG)
        assert isinstance(event, dict)
        assert isinstance(event.pop("at"), float)
        assert event == {
            "event": "tool_call",
            "call_id": "c1",
            "name": "read_log",
            "input": "{}",
            "output": FULL,
            "chars": 5_012,
        }
        if isinstance(store, SQLStore):  # the full output is the tool-call row's output
            [row] = await store.read_audit_rows("s", "tool_calls")
            assert (row["seq"], row["call_id"], row["name"], row["output"]) == (
                1,
                "c1",
                "read_log",
                FULL,
            )
        assert summaries == [5_012]  # one summary, shared by the store and the same turn
        # the audit trail outlives clear_session; a new session reads it too
        await session.clear_session()
        assert await full_tool_output(StoreSession("s", store=store), item) == FULL


async def test_without_the_filter_the_same_turn_sees_the_full_output(backend: Backend) -> None:
    model = scripted()
    agent = Agent(name="a", tools=[read_log], model=model)
    async with backend.open() as store:
        session = StoreSession("s", store=store, tool_outputs=StoreToolOutputs(max_chars=100))
        await Runner.run(agent, "read", session=session)
        # the SDK builds the turn's next call from its own items, not from the session
        assert outputs_in(model.calls[1].input) == [FULL]
        await Runner.run(agent, "again", session=session)
        [sent] = outputs_in(model.calls[2].input)
        assert sent == FULL[:100] + (
            "\n[tool output of 5012 characters stored short; full output: audit#0]"
        )


async def test_short_outputs_and_references_that_point_nowhere(backend: Backend) -> None:
    policy = StoreToolOutputs(max_chars=10)
    small = {"type": "function_call_output", "call_id": "c0", "output": "short"}
    big = {"type": "function_call_output", "call_id": "c1", "output": "y" * 11}
    async with backend.open() as store:
        session = StoreSession("s", store=store, tool_outputs=policy)
        await session.add_items([small, big])  # pyright: ignore[reportArgumentType]
        first, second = await session.get_items()
        assert first == small
        assert await full_tool_output(session, first) == "short"
        assert await full_tool_output(session, second) == "y" * 11
        [event] = await store.read_log("s", AUDIT_LOG)  # no function_call: name unknown
        assert isinstance(event, dict)
        assert (event["name"], event["call_id"], "input" in event) == ("unknown", "c1", False)
        # a reference whose position moved is found by its call id; one to nothing raises
        await store.append("s", AUDIT_LOG, [{"call_id": "c9", "output": "z"}])
        moved = {**second, "output": "[full output: audit#5]", "call_id": "c9"}
        assert await full_tool_output(session, moved) == "z"
        with pytest.raises(CorruptItemError, match="'c7'"):
            await full_tool_output(session, {**moved, "call_id": "c7"})
        # a reference of the earlier tool_outputs log still resolves
        await store.append("s", TOOL_OUTPUTS_LOG, [{"call_id": "c8", "output": "old"}])
        old = {**second, "output": "[full output: tool_outputs#0]", "call_id": "c8"}
        assert await full_tool_output(session, old) == "old"
        # the function_call of an earlier write names the tool; a bad call id is left out
        call = {"type": "function_call", "call_id": "c2", "name": "t" * 300, "arguments": "{}"}
        await session.add_items([call])  # pyright: ignore[reportArgumentType]
        late = {"type": "function_call_output", "call_id": "c2", "output": "w" * 11}
        bad_id = {"type": "function_call_output", "call_id": "", "output": "v" * 11}
        await session.add_items([late, bad_id])  # pyright: ignore[reportArgumentType]
        *_, named, unnamed = await store.read_log("s", AUDIT_LOG)
        assert isinstance(named, dict)
        assert isinstance(unnamed, dict)
        assert (named["name"], named["input"], named["call_id"]) == ("t" * 256, "{}", "c2")
        assert (unnamed["name"], "call_id" in unnamed) == ("unknown", False)
    with pytest.raises(ValueError, match="max_chars"):
        StoreToolOutputs(max_chars=0)
    with pytest.raises(TypeError, match="tool_outputs"):
        StoreSession("s", store=store, tool_outputs="yes")  # pyright: ignore[reportArgumentType]


async def test_a_filter_before_the_save_summarises_once() -> None:
    calls: list[str] = []

    def summarize(output: str) -> str:
        calls.append(output)
        return "short"

    policy = StoreToolOutputs(max_chars=10, summarize=summarize)
    item = {"type": "function_call_output", "call_id": "c1", "output": "y" * 11}
    data = CallModelData(
        model_data=ModelInputData(input=[item], instructions="i"),  # pyright: ignore[reportArgumentType]
        agent=Agent(name="a"),
        context=None,
    )
    filtered = await policy.model_input_filter(data)
    assert (filtered.input, filtered.instructions) == ([{**item, "output": "short"}], "i")
    [stored], records = await policy.split([item], start=3)
    assert stored["output"] == (
        "short\n[tool output of 11 characters stored short; full output: audit#3]"
    )
    [record] = records
    assert isinstance(record.pop("at"), float)
    assert record == {
        "event": "tool_call",
        "call_id": "c1",
        "name": "unknown",
        "chars": 11,
        "output": "y" * 11,
    }
    assert calls == ["y" * 11]


async def test_a_damaged_old_item_does_not_refuse_a_long_output(durable_backend: Backend) -> None:
    """The tool's name is looked up around the damage; the write goes through."""
    policy = StoreToolOutputs(max_chars=10)
    old = {"type": "message", "role": "user", "content": "old"}
    call = {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"}
    async with durable_backend.open() as store:
        session = StoreSession("s", store=store, tool_outputs=policy, refresh_on_read=True)
        await session.add_items([old, call])  # pyright: ignore[reportArgumentType]
        await damage_log_item(
            durable_backend.url, "s", ITEMS_LOG, 0, GARBAGE, **durable_backend.options
        )
        output = {"type": "function_call_output", "call_id": "c1", "output": "y" * 11}
        await session.add_items([output])  # pyright: ignore[reportArgumentType]
        [event] = await store.read_log("s", AUDIT_LOG)
        assert isinstance(event, dict)
        assert (event["name"], event["input"], event["call_id"]) == ("lookup", "{}", "c1")
        assert await store.log_length("s", ITEMS_LOG) == 3
